"""compute_results' depth curves (issue 11): corresponding layers, bootstrap intervals, null
baselines; and the shared statistics behind them against the families' own values."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from subspaces.report import compute_results, validate_results
from subspaces.report._depth import (
    _moments64,
    _Pair,
    corresponding_layers,
    standard_error_interval,
)
from subspaces.similarity import pairwise

# The draws form every moment in float64; pairwise forms CKA's in the data's float32
# (about 1e-7 relative), the CCA family's in float64 too.
_SAME = {"rel": 1e-6, "abs": 1e-9}


def _x(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def _related(n: int, *, noise: float = 0.5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """y a random linear map of x plus noise: alike, but not identical."""
    x = _x(n, 6, seed)
    return x, x @ _x(6, 5, seed + 1) + noise * _x(n, 5, seed + 2)


def _curve(x: torch.Tensor, y: torch.Tensor, measure: str, **options: Any) -> dict[str, Any]:
    out = compute_results(
        {"A": {"h": x}, "B": {"h": y}},
        measures=[measure],
        geometry=False,
        progress=False,
        **options,
    )
    validate_results(out)
    (curve,) = out["depth"][measure]
    return curve


# --- which layers correspond ----------------------------------------------------------


@pytest.mark.parametrize(
    ("n_x", "n_y", "expected"),
    [
        (3, 3, [(0, 0, 0.0), (1, 1, 0.5), (2, 2, 1.0)]),
        (1, 1, [(0, 0, 0.0)]),
        (3, 5, [(0, 0, 0.0), (1, 2, 0.5), (2, 4, 1.0)]),
        (5, 3, [(0, 0, 0.0), (2, 1, 0.5), (4, 2, 1.0)]),
        (4, 7, [(0, 0, 0.0), (1, 2, 1 / 3), (2, 4, 2 / 3), (3, 6, 1.0)]),
        (2, 4, [(0, 0, 0.0), (1, 3, 1.0)]),
        (1, 4, [(0, 0, 0.0)]),
    ],
    ids=["equal", "one-each", "fewer-x", "fewer-y", "4-of-7", "2-of-4", "single"],
)
def test_corresponding_layers(n_x: int, n_y: int, expected: list[tuple[int, int, float]]) -> None:
    got = corresponding_layers(n_x, n_y)
    assert [(i, j) for i, j, _ in got] == [(i, j) for i, j, _ in expected]
    assert [d for _, _, d in got] == pytest.approx([d for _, _, d in expected])


def test_a_tie_pairs_with_the_shallower_layer() -> None:
    # 3 layers against 4: the middle one (depth 0.5) is as near to 1/3 as to 2/3
    assert corresponding_layers(3, 4)[1] == (1, 1, 0.5)


def test_depth_records_pair_corresponding_layers_of_each_pair_of_models() -> None:
    x = _x(40, 4, 0)
    models = {
        "A": {f"a{i}": x @ _x(4, 3, i) for i in range(3)},
        "B": {f"b{i}": x @ _x(4, 3, 10 + i) for i in range(5)},
        "C": {f"c{i}": x @ _x(4, 3, 20 + i) for i in range(3)},
    }
    out = compute_results(
        models,
        measures=["linear_cka"],
        geometry=False,
        bootstrap=0,
        permutations=0,
        progress=False,
    )
    records = out["depth"]["linear_cka"]
    assert [(r["x_model"], r["y_model"]) for r in records] == [("A", "B"), ("A", "C"), ("B", "C")]
    assert records[0]["x_layers"] == ["a0", "a1", "a2"]
    assert records[0]["y_layers"] == ["b0", "b2", "b4"]
    assert records[2]["x_layers"] == ["b0", "b2", "b4"]
    assert records[2]["y_layers"] == ["c0", "c1", "c2"]
    assert records[1]["depth"] == [0.0, 0.5, 1.0]
    matrix = out["similarity"]["linear_cka"][1]["matrix"]  # A × B
    assert records[0]["value"] == [matrix[0][0], matrix[1][2], matrix[2][4]]


# --- the interval ---------------------------------------------------------------------


@pytest.mark.parametrize("measure", ["linear_cka", "procrustes_distance", "mutual_knn"])
def test_the_interval_contains_the_value_on_clean_data(measure: str) -> None:
    curve = _curve(*_related(300), measure, bootstrap=10, permutations=0)
    (value,), ((low, high),) = curve["value"], curve["ci"]
    assert low < value < high
    assert high - low < 0.2


def test_the_interval_narrows_with_more_samples() -> None:
    widths = []
    for n in (100, 1600):
        ((low, high),) = _curve(*_related(n), "linear_cka", bootstrap=20, permutations=0)["ci"]
        widths.append(high - low)
    # the standard error falls as 1/sqrt(n): 4 times narrower, up to the noise of 20 draws
    assert widths[1] < widths[0] / 2.5


def test_the_interval_is_value_plus_minus_t_standard_errors_clipped_to_the_range() -> None:
    draws = [0.9, 0.95, 1.0, 0.97]
    sd = float(torch.tensor(draws, dtype=torch.float64).std())
    t = 3.182446305284263  # Student's t, 3 degrees of freedom, 0.975
    low, high = standard_error_interval(0.8, draws, 0.95, None)
    assert (low, high) == pytest.approx((0.8 - t * sd, 0.8 + t * sd))
    assert standard_error_interval(0.98, draws, 0.95, (0.0, 1.0)) == pytest.approx(
        [0.98 - t * sd, 1.0]
    )


# --- the null baseline ----------------------------------------------------------------


def test_the_null_of_cka_is_near_zero_on_independent_data() -> None:
    curve = _curve(_x(400, 5, 0), _x(400, 5, 1), "linear_cka", bootstrap=0, permutations=20)
    ((mean, upper),) = curve["null"]
    # CKA of independent data of width 5 with 400 samples is about d/n ~ 0.01
    assert 0.0 < mean < upper < 0.06
    assert curve["value"][0] < upper + 0.03


@pytest.mark.parametrize("measure", ["linear_cka", "mutual_knn", "procrustes_distance"])
def test_related_data_lie_beyond_the_null(measure: str) -> None:
    curve = _curve(*_related(300), measure, bootstrap=0, permutations=10)
    ((mean, quantile),) = curve["null"]
    (value,) = curve["value"]
    if measure == "procrustes_distance":  # a distance: alike is below, the lower quantile
        assert value < quantile < mean
    else:
        assert value > quantile > mean


def test_draws_are_seeded_and_deterministic() -> None:
    x, y = _related(120)
    first = _curve(x, y, "mutual_knn", bootstrap=4, permutations=4, seed=3)
    again = _curve(x, y, "mutual_knn", bootstrap=4, permutations=4, seed=3)
    other = _curve(x, y, "mutual_knn", bootstrap=4, permutations=4, seed=4)
    assert (first["ci"], first["null"]) == (again["ci"], again["null"])
    assert (first["ci"], first["null"]) != (other["ci"], other["null"])


# --- the shared statistics equal the families' values -----------------------------------


@pytest.mark.parametrize(
    ("measure", "options"),
    [
        ("linear_cka", {}),
        ("linear_cka", {"debiased": True}),
        ("mean_cca", {}),
        ("procrustes_distance", {}),
        ("mutual_knn", {"k": 5}),
        ("rsa", {}),
        ("rbf_cka", {}),
    ],
    ids=["cka", "debiased-cka", "cca", "procrustes", "knn", "rsa", "function-route"],
)
def test_a_permuted_draw_equals_the_measure_on_permuted_rows(
    measure: str, options: dict[str, Any]
) -> None:
    x, y = _related(80)
    perm = torch.randperm(80, generator=torch.Generator().manual_seed(0))
    pair = _Pair(x, y, {measure: options})
    got = pair.permuted(measure, perm)
    expected = pairwise([x], [y[perm]], measure=measure, **options)[0, 0]
    assert float(got) == pytest.approx(float(expected), **_SAME)


@pytest.mark.parametrize("measure", ["linear_cka", "mean_cca", "mutual_knn"])
def test_a_bootstrap_draw_equals_the_measure_on_the_drawn_rows(measure: str) -> None:
    x, y = _related(80)
    rows = torch.randint(80, (80,), generator=torch.Generator().manual_seed(0))
    pair = _Pair(x, y, {measure: {}})
    moments = _moments64(x, y, rows, rows, self_terms=True, cross=True, row_norms=False)
    got = pair.on_rows(measure, rows, lambda: moments)
    expected = pairwise([x[rows]], [y[rows]], measure=measure)[0, 0]
    assert float(got) == pytest.approx(float(expected), **_SAME)
