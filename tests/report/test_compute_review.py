"""compute_results after review (issue 11): the comparisons between models alone
(``self_comparisons=False``, what ``subspaces compare A B`` asks for), every key written
described by the schema, intervals that hold their value, reasons that say which draw
failed, and the null's quantile named on the side of "alike"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import subspaces.report
from subspaces import InputTypeError, InvalidOptionError
from subspaces.report import (
    RESULTS_SCHEMA,
    ResultsFormatError,
    compute_results,
    render_report,
    validate_results,
)
from subspaces.report._depth import standard_error_interval
from subspaces.similarity import pairwise


def _x(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def _three_models(n: int = 50) -> dict[str, dict[str, torch.Tensor]]:
    base = _x(n, 5, 0)
    return {
        "A": {"a0": base, "a1": torch.tanh(base @ _x(5, 4, 1))},
        "B": {"b0": 2 * base + 0.3 * _x(n, 5, 2), "b1": torch.sin(base), "b2": _x(n, 3, 3)},
        "C": {"c0": torch.tanh(base @ _x(5, 6, 4))},
    }


_OPTIONS: dict[str, Any] = {
    "measures": ["linear_cka", "mutual_knn"],
    "geometry": False,
    "bootstrap": 3,
    "permutations": 2,
    "progress": False,
}


# --- self_comparisons -------------------------------------------------------------------


def test_without_self_comparisons_only_pairs_of_distinct_models_are_computed() -> None:
    models = _three_models()
    full = compute_results(models, **_OPTIONS)
    cross = compute_results(models, self_comparisons=False, **_OPTIONS)
    for name in ("linear_cka", "mutual_knn"):
        pairs = [(r["x_model"], r["y_model"]) for r in cross["similarity"][name]]
        assert pairs == [("A", "B"), ("A", "C"), ("B", "C")]
        by_pair = {(r["x_model"], r["y_model"]): r for r in full["similarity"][name]}
        for record in cross["similarity"][name]:
            assert record == by_pair[record["x_model"], record["y_model"]]
    # the depth section reads the right matrices, and draws the same rows
    assert cross["depth"] == full["depth"]
    assert cross["meta"]["options"]["self_comparisons"] is False
    assert full["meta"]["options"]["self_comparisons"] is True
    validate_results(cross)


def test_without_self_comparisons_the_progress_counts_a_third_of_the_matrices() -> None:
    models = {"A": {"h": _x(40, 5, 0)}, "B": {"h": _x(40, 5, 1)}}
    steps: dict[bool, list[str]] = {True: [], False: []}
    for keep in (True, False):
        compute_results(
            models,
            measures=["linear_cka"],
            geometry=False,
            bootstrap=0,
            permutations=0,
            self_comparisons=keep,
            progress=lambda what, done, total, keep=keep: steps[keep].append(what),
        )
    assert steps[True] == ["linear_cka: A × A", "linear_cka: A × B", "linear_cka: B × B"]
    assert steps[False] == ["linear_cka: A × B"]


def test_a_page_without_self_comparisons_promises_no_folded_heatmaps() -> None:
    models = {"A": {"h": _x(40, 5, 0)}, "B": {"h": _x(40, 5, 1)}}
    page = render_report(compute_results(models, self_comparisons=False, **_OPTIONS))
    assert "Each model with itself" not in page and "folded below" not in page
    assert "<dt>each model with itself</dt><dd>not computed (self_comparisons = false)" in page
    assert page.count('class="fig heatmap"') == 2  # A × B for each measure


def test_self_comparisons_false_with_one_model_is_refused() -> None:
    with pytest.raises(InvalidOptionError, match="leaves nothing to compute for one model"):
        compute_results({"A": {"h": _x(20, 3, 0)}}, self_comparisons=False, progress=False)


def test_self_comparisons_must_be_a_bool() -> None:
    with pytest.raises(InputTypeError, match="self_comparisons must be True or False"):
        compute_results(
            {"A": {"h": _x(20, 3, 0)}, "B": {"h": _x(20, 3, 1)}},
            self_comparisons="no",  # type: ignore[arg-type]
            progress=False,
        )


# --- the command line's compare asks for A × B only --------------------------------------


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every compute_results call of the command line: its options and its results."""
    calls: list[dict[str, Any]] = []
    real = subspaces.report.compute_results

    def recording(models: Any, **options: Any) -> dict[str, Any]:
        out = real(models, **options)
        calls.append({"options": options, "results": out})
        return out

    monkeypatch.setattr(subspaces.report, "compute_results", recording)
    return calls


def _stores(tmp_path: Path) -> tuple[Path, Path, dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 6))
    a = {"l1": np.tanh(x @ rng.standard_normal((6, 5))), "l2": x @ rng.standard_normal((6, 4))}
    b = {"m1": np.tanh(x @ rng.standard_normal((6, 3)))}
    np.savez(tmp_path / "a.npz", **a)
    np.savez(tmp_path / "b.npz", **b)
    return tmp_path / "a.npz", tmp_path / "b.npz", a, b


def test_compare_of_two_stores_computes_the_pair_alone(
    tmp_path: Path, spy: list[dict[str, Any]]
) -> None:
    from subspaces.cli import app

    path_a, path_b, a, b = _stores(tmp_path)
    result = CliRunner().invoke(app, ["compare", str(path_a), str(path_b), "--json"])
    assert result.exit_code == 0, result.output
    (call,) = spy
    assert call["options"]["self_comparisons"] is False
    records = call["results"]["similarity"]["linear_cka"]
    assert [(r["x_model"], r["y_model"]) for r in records] == [("a", "b")]
    expected = pairwise(
        {k: torch.from_numpy(v) for k, v in a.items()},
        {k: torch.from_numpy(v) for k, v in b.items()},
    )
    values = json.loads(result.stdout)["measures"]["linear_cka"]["values"]
    np.testing.assert_allclose(np.array(values), expected.numpy(), rtol=1e-12)


def test_compare_of_one_store_computes_it_with_itself(
    tmp_path: Path, spy: list[dict[str, Any]]
) -> None:
    from subspaces.cli import app

    path_a, _, _, _ = _stores(tmp_path)
    result = CliRunner().invoke(app, ["compare", str(path_a), "--json"])
    assert result.exit_code == 0, result.output
    (call,) = spy
    assert call["options"]["self_comparisons"] is True
    values = json.loads(result.stdout)["measures"]["linear_cka"]["values"]
    assert np.diag(np.array(values)) == pytest.approx([1.0, 1.0])


# --- the schema describes every key the code writes --------------------------------------


def _undescribed(value: Any, schema: Any, path: str = "") -> list[str]:
    """Keys of ``value`` that ``schema`` names nowhere (free-form objects excepted)."""
    if not isinstance(schema, dict):
        return []
    if "oneOf" in schema:
        kinds = {"null": type(None), "object": dict, "array": list}
        for option in schema["oneOf"]:
            if isinstance(value, kinds.get(option.get("type"), ())):
                return _undescribed(value, option, path)
        return []
    out: list[str] = []
    if isinstance(value, dict):
        named = schema.get("properties", {})
        rest = schema.get("additionalProperties")
        free = not named and rest is None  # e.g. a measure's options: any keys
        for key, item in value.items():
            if key in named:
                out += _undescribed(item, named[key], f"{path}/{key}")
            elif isinstance(rest, dict):
                out += _undescribed(item, rest, f"{path}/{key}")
            elif not free:
                out.append(f"{path}/{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            out += _undescribed(item, schema["items"], f"{path}/{i}")
    return out


def test_the_schema_describes_every_key_that_compute_results_writes() -> None:
    x = _x(60, 5, 0)
    out = compute_results(
        {"A": {"a": x, "b": torch.tanh(x), "c": torch.ones(60, 2)}, "B": {"d": 2 * x}},
        labels={"A": torch.arange(60) % 3},
        bootstrap=2,
        permutations=2,
        sources={"A": {"path": "runs/a", "pooling": "mean"}},
        progress=False,
    )
    assert _undescribed(json.loads(json.dumps(out)), RESULTS_SCHEMA) == []


def test_a_depth_list_without_its_option_is_refused() -> None:
    out = compute_results(
        {"A": {"h": _x(30, 3, 0)}, "B": {"h": _x(30, 3, 1)}},
        measures=["linear_cka"],
        geometry=False,
        bootstrap=2,
        permutations=0,
        progress=False,
    )
    out["meta"]["options"]["bootstrap"] = None
    with pytest.raises(ResultsFormatError, match=r"is a list but meta\.options\.bootstrap is null"):
        validate_results(out)


# --- intervals and reasons ----------------------------------------------------------------


def test_an_interval_clipped_to_the_range_still_holds_its_value() -> None:
    # a value a rounding error above its range: the interval reaches it, not only the bound
    low, high = standard_error_interval(1.0 + 1e-12, [0.98, 0.99, 1.0], 0.95, (0.0, 1.0))
    assert low < 1.0 + 1e-12 <= high


def test_a_failed_half_sample_says_which_rows_it_drew() -> None:
    # k = 10 neighbors exist among all 15 rows, not among a half-sample of 7
    out = compute_results(
        {"A": {"h": _x(15, 4, 0)}, "B": {"h": _x(15, 4, 1)}},
        measures={"mutual_knn": {"k": 10}},
        geometry=False,
        bootstrap=2,
        permutations=2,
        progress=False,
    )
    (curve,) = out["depth"]["mutual_knn"]
    assert curve["value"][0] is not None and curve["null"][0] is not None
    assert curve["ci"] == [None]
    reason = out["missing"]["/depth/mutual_knn/0/ci/0"]
    assert reason.startswith(
        "the bootstrap draws (a half-sample of 7 of the 15 rows, drawn without replacement) "
        "failed: InvalidOptionError: k must be smaller than the number of samples, n = 7"
    )


# --- the page's header --------------------------------------------------------------------


def test_a_page_of_one_model_claims_no_bootstrap_count() -> None:
    page = render_report(
        compute_results({"A": {"h": _x(30, 3, 0)}}, measures=["linear_cka"], progress=False)
    )
    assert "bootstrap = 0" not in page and "permutations = 0" not in page
    assert "<dt>bootstrap intervals</dt>" not in page and "<dt>null baseline</dt>" not in page


def test_a_page_without_intervals_says_that_none_were_asked_for() -> None:
    models = {"A": {"h": _x(30, 3, 0)}, "B": {"h": _x(30, 3, 1)}}
    options = {**_OPTIONS, "bootstrap": 0, "permutations": 0}
    page = render_report(compute_results(models, **options))
    assert "<dt>bootstrap intervals</dt><dd>none (bootstrap = 0)</dd>" in page
    assert "<dt>null baseline</dt><dd>none (permutations = 0)</dd>" in page


# --- named measures ------------------------------------------------------------------------


def test_a_named_measure_missing_a_required_option_is_refused_before_any_compute() -> None:
    steps: list[str] = []
    with pytest.raises(InvalidOptionError, match="no anchors given: pass n_anchors"):
        compute_results(
            {"A": {"h": _x(40, 5, 0)}, "B": {"h": _x(40, 5, 1)}},
            measures=["relative_similarity"],
            progress=lambda what, done, total: steps.append(what),
        )
    assert steps == []


def test_a_measure_that_draws_at_random_gets_the_reports_seed() -> None:
    models = {"A": {"h": _x(60, 5, 0)}, "B": {"h": torch.tanh(_x(60, 5, 0))}}
    options = {"measures": {"relative_similarity": {"n_anchors": 10}}, "geometry": False}
    runs = [compute_results(models, seed=3, progress=False, **options) for _ in range(2)]
    assert runs[0]["similarity"] == runs[1]["similarity"] and runs[0]["depth"] == runs[1]["depth"]
    assert runs[0]["meta"]["options"]["measure_options"]["relative_similarity"]["seed"] == 3
    expected = pairwise(
        models["A"], models["B"], measure="relative_similarity", n_anchors=10, seed=3
    )
    assert runs[0]["similarity"]["relative_similarity"][1]["matrix"] == [[float(expected[0, 0])]]


def test_a_seed_does_not_hide_a_measures_range() -> None:
    from subspaces.report._inputs import measure_info

    assert measure_info("relative_similarity", {"seed": 3}, [])["range"] == [-1.0, 1.0]
    assert measure_info("relative_similarity", {"center": True}, [])["range"] is None


def test_caveats_follow_the_measure_options() -> None:
    """A ridge or alpha > 0 is not decided by the sample count; alpha = 0 is (n < d)."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(20, 30, generator=g), torch.randn(20, 30, generator=g)
    measures = {
        "linear_regression_r2": {"ridge": 0.1},
        "shape_metric": {"alpha": 0.0},
    }
    results = compute_results(
        {"A": {"l": x}, "B": {"l": y}},
        measures=measures,
        geometry=False,
        bootstrap=0,
        permutations=0,
        progress=False,
    )
    info = results["measure_info"]
    assert info["linear_regression_r2"]["caveats"] == []
    assert info["shape_metric"]["caveats"], info["shape_metric"]
