"""compute_results, version 2 (issue 11): one failure costs one cell, reasons per cause,
measures that mislead for the data, the options that shaped the numbers."""

from __future__ import annotations

import dataclasses
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from subspaces import InputTypeError, InvalidOptionError, ShapeError
from subspaces._checks import SmallSampleWarning
from subspaces.report import compute_results, json_pointer, validate_results
from subspaces.similarity import MEASURES, pairwise

CONSTANT = "layer 'emb' of model 'cls' is constant: every input gives the same vector"


def _x(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def _widths_models(n: int = 60) -> dict[str, dict[str, torch.Tensor]]:
    """Two models whose layers all have distinct widths: a width pair names one cell."""
    base = _x(n, 4, 0)
    a = {f"a{i}": torch.tanh(base @ _x(4, d, 10 + i)) for i, d in enumerate((5, 7, 6))}
    b = {f"b{i}": torch.tanh(base @ _x(4, d, 20 + i)) for i, d in enumerate((8, 9, 4))}
    return {"A": a, "B": b}


def _fail_on_widths(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    """linear_cka raises ``error`` on the pair of widths (7, 9) only: A/a1 × B/b1."""
    spec = MEASURES["linear_cka"]
    core = spec.from_moments
    assert core is not None

    def failing(m: Any, **options: Any) -> torch.Tensor:
        if m.cxx.shape[0] == 7 and m.cyy.shape[0] == 9:
            raise error
        return core(m, **options)

    monkeypatch.setitem(MEASURES, "linear_cka", dataclasses.replace(spec, from_moments=failing))


# --- one failure costs one cell -------------------------------------------------------


def test_a_solver_failure_in_one_cell_leaves_every_other_cell(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    models = _widths_models()
    expected = pairwise(models["A"], models["B"], measure="linear_cka").numpy()
    _fail_on_widths(
        monkeypatch, torch.linalg.LinAlgError("linalg.svd: The algorithm failed to converge")
    )
    out = compute_results(
        models,
        measures=["linear_cka"],
        geometry=False,
        bootstrap=3,
        permutations=2,
        progress=False,
    )
    matrix = out["similarity"]["linear_cka"][1]["matrix"]  # A × B
    assert matrix[1][1] is None
    reason = out["missing"][json_pointer("similarity", "linear_cka", 1, "matrix", 1, 1)]
    assert reason == "_LinAlgError: linalg.svd: The algorithm failed to converge"
    others = [(i, j) for i in range(3) for j in range(3) if (i, j) != (1, 1)]
    assert [matrix[i][j] for i, j in others] == pytest.approx([expected[i, j] for i, j in others])
    # the depth point of that pair carries the same reason; the others are computed
    curve = out["depth"]["linear_cka"][0]
    assert curve["value"][1] is None and curve["ci"][1] is None and curve["null"][1] is None
    assert out["missing"][json_pointer("depth", "linear_cka", 0, "value", 1)] == reason
    assert curve["value"][0] == pytest.approx(expected[0, 0])
    assert curve["ci"][2] is not None and curve["null"][2] is not None
    assert set(out["missing"].values()) == {reason}
    validate_results(out)


@pytest.mark.parametrize("error", [MemoryError(), KeyboardInterrupt()], ids=["memory", "ctrl-c"])
def test_running_out_of_memory_or_ctrl_c_still_stops_the_report(
    monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    _fail_on_widths(monkeypatch, error)
    with pytest.raises(type(error)):
        compute_results(_widths_models(), measures=["linear_cka"], geometry=False, progress=False)


def test_a_failure_in_one_geometry_value_costs_that_value_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import subspaces.report.compute as compute

    def broken(x: Any, **options: Any) -> Any:
        raise RuntimeError("a bug in twonn")

    monkeypatch.setattr(compute, "twonn", broken)
    out = compute_results({"m": {"h": _x(40, 5, 0)}}, measures=(), progress=False)
    layer = out["geometry"]["m"]["h"]
    assert layer["twonn_id"] is None and layer["mle_id"] is not None
    assert out["missing"] == {"/geometry/m/h/twonn_id": "RuntimeError: a bug in twonn"}


# --- a constant layer: one reason for every cell that involves it ----------------------


def test_a_constant_layer_gives_one_reason_to_every_cell_that_involves_it() -> None:
    base = _x(50, 6, 0)
    models = {
        "mean": {f"h{i}": torch.tanh(base @ _x(6, 5, i)) for i in range(3)},
        "cls": {"emb": torch.ones(50, 4) * 0.3, "h1": base @ _x(6, 4, 7), "h2": base.sin()},
    }
    steps: list[tuple[int, int]] = []
    out = compute_results(
        models,
        measures=["linear_cka", "mutual_knn"],
        intrinsic_dimension=False,
        bootstrap=2,
        permutations=2,
        progress=lambda what, done, total: steps.append((done, total)),
    )
    validate_results(out)
    # 2 measures × 3 pairs of models + 3 corresponding pairs × 2 + 6 layers, each once
    assert steps == [(i, 18) for i in range(1, 19)]
    # similarity: cls × cls row and column 0 (5 cells), mean × cls column 0 (3 cells);
    # depth: the first point's value, interval and null; geometry: all but width and
    # total variance (6 spectrum scalars and the spectrum): per measure 8 + 3, and 7
    assert Counter(out["missing"].values()) == {CONSTANT: 2 * (8 + 3) + 7}
    for name in ("linear_cka", "mutual_knn"):
        self_cls = out["similarity"][name][2]["matrix"]
        assert self_cls[0] == [None] * 3 and [row[0] for row in self_cls] == [None] * 3
        assert self_cls[1][2] is not None
    emb = out["geometry"]["cls"]["emb"]
    assert emb["width"] == 4 and emb["total_variance"] == 0.0 and emb["effective_rank"] is None


def test_a_row_count_mismatch_names_the_model_and_the_layer() -> None:
    models = {"A": {"h": _x(40, 3, 0)}, "B": {"emb": _x(40, 3, 1), "h": _x(30, 3, 2)}}
    with pytest.raises(
        ShapeError,
        match=r"layer 'h' of model 'A' has 40 rows and layer 'h' of "
        r"model 'B' has 30",
    ):
        compute_results(models, progress=False)


# --- measures that mislead for the data -----------------------------------------------


def test_a_default_measure_meaningless_for_the_data_is_left_out_with_its_reason() -> None:
    x = _x(30, 40, 0)  # n = 30 samples < width 40: every canonical correlation is 1
    out = compute_results(
        {"A": {"a": x}, "B": {"b": torch.tanh(x)}},
        geometry=False,
        bootstrap=0,
        permutations=0,
        progress=False,
    )
    reason = MEASURES["mean_cca"].caveat(30, 40, 40)
    assert reason is not None and "every canonical correlation is 1" in reason
    assert out["meta"]["omitted_measures"] == {"mean_cca": reason}
    assert out["meta"]["measures"] == ["linear_cka", "procrustes_distance", "mutual_knn"]
    assert "mean_cca" not in out["similarity"] and "mean_cca" not in out["measure_info"]


def test_a_named_measure_is_computed_with_its_caveat_and_no_warning_escapes() -> None:
    x = _x(30, 40, 0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = compute_results(
            {"A": {"a": x}, "B": {"b": torch.tanh(x)}},
            measures=["mean_cca"],
            geometry=False,
            bootstrap=2,
            permutations=2,
            progress=False,
        )
    assert not [w for w in caught if issubclass(w.category, SmallSampleWarning)]
    assert out["measure_info"]["mean_cca"]["caveats"] == [MEASURES["mean_cca"].caveat(30, 40, 40)]
    assert out["meta"]["omitted_measures"] == {}
    assert out["similarity"]["mean_cca"][1]["matrix"] == [[pytest.approx(1.0)]]  # degenerate


def test_caveats_are_empty_where_nothing_is_known_against_a_measure() -> None:
    out = compute_results({"m": {"h": _x(80, 4, 0)}}, geometry=False, progress=False)
    assert {name: info["caveats"] for name, info in out["measure_info"].items()} == {
        name: [] for name in out["meta"]["measures"]
    }


# --- what shaped the numbers ----------------------------------------------------------


def test_every_option_that_shaped_a_number_is_recorded(tmp_path: Path) -> None:
    models = {"A": {"h": _x(40, 5, 0)}, "B": {"h": _x(40, 5, 1).double()}}
    out = compute_results(
        models,
        measures={"mutual_knn": {"k": 5}, "linear_cka": {}},
        bootstrap=4,
        permutations=3,
        level=0.9,
        seed=7,
        sources={"A": {"path": tmp_path / "a", "pooling": "mean"}},
        mle_k=8,
        top_eigenvalues=3,
        progress=False,
    )
    resolved = {"mutual_knn": {"k": 5, "metric": "cosine"}, "linear_cka": {"debiased": False}}
    assert out["meta"]["options"] == {
        "n_samples": 40,
        "dtype": {"A": "float32", "B": "float64"},
        "measure_options": resolved,
        "device": "cpu",
        "self_comparisons": True,
        "bootstrap": {
            "resamples": 4,
            "level": 0.9,
            "seed": 7,
            "interval": "value ± t · standard deviation of the draws",
            "half_sample": ["mutual_knn"],
        },
        "null": {"permutations": 3, "level": 0.9, "seed": 8},
        "mle_k": 8,
        "top_eigenvalues": 3,
    }
    assert out["meta"]["measure_options"] == resolved
    assert out["meta"]["sources"] == {"A": {"path": str(tmp_path / "a"), "pooling": "mean"}}
    assert out["measure_info"]["linear_cka"]["range"] == [0.0, 1.0]  # defaults, as given
    validate_results(out)


def test_one_model_records_no_bootstrap_and_no_null() -> None:
    out = compute_results({"m": {"h": _x(40, 5, 0)}}, measures=["linear_cka"], progress=False)
    assert out["meta"]["options"]["bootstrap"] is None and out["meta"]["options"]["null"] is None
    assert "depth" not in out and out["meta"]["sources"] == {}


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"measures": {"mutual_knn": {"k": 45}}}, InvalidOptionError, "k must be smaller"),
        ({"measures": {"mutual_knn": {"metric": "nope"}}}, InvalidOptionError, "metric"),
        ({"measures": {"mutual_knn": {"k": "5"}}}, InputTypeError, "k must be an integer"),
        ({"measures": ["linear_cak"]}, InvalidOptionError, "Did you mean 'linear_cka'"),
        ({"bootstrap": 1}, InvalidOptionError, "bootstrap must be 0 .* or at least 2"),
        ({"permutations": -1}, InvalidOptionError, "permutations must be at least 0"),
        ({"level": 1.0}, InvalidOptionError, r"level must lie in \(0.0, 1.0\)"),
        ({"seed": -1}, InvalidOptionError, "seed must be at least 0"),
        ({"sources": {"C": {}}}, InvalidOptionError, r"sources names the models \['C'\]"),
        ({"sources": {"A": {"when": object()}}}, InvalidOptionError, "plain JSON values"),
    ],
    ids=[
        "k-too-large",
        "bad-metric",
        "k-string",
        "typo",
        "one-draw",
        "negative-permutations",
        "level",
        "seed",
        "unknown-source",
        "source-not-json",
    ],
)
def test_invalid_options_are_refused_before_any_compute(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    steps: list[str] = []
    models = {"A": {"h": _x(40, 5, 0)}, "B": {"h": _x(40, 5, 1)}}
    with pytest.raises(error, match=match):
        compute_results(models, progress=lambda what, done, total: steps.append(what), **options)
    assert steps == []


def test_the_compare_path_equals_pairwise() -> None:
    models = _widths_models()
    out = compute_results(
        models,
        measures=["linear_cka", "mutual_knn"],
        geometry=False,
        bootstrap=0,
        permutations=0,
        progress=False,
    )
    for name in ("linear_cka", "mutual_knn"):
        expected = pairwise(models["A"], models["B"], measure=name).numpy()
        assert np.asarray(out["similarity"][name][1]["matrix"]) == pytest.approx(
            expected, rel=1e-12, abs=1e-12
        )
        assert out["depth"][name][0]["ci"] is None and out["depth"][name][0]["null"] is None
    assert out["meta"]["options"]["bootstrap"] is None and out["meta"]["options"]["null"] is None
    validate_results(out)
