"""One-to-one unit matching and matched-correlation curves (Convergent Learning)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from subspaces._checks import (
    InvalidOptionError,
)
from subspaces.align import (
    match_units,
    matched_correlation_curves,
    unit_matching,
    unit_matching_from_correlation,
)
from tests.align._units import F64, gen, mixed


@pytest.mark.parametrize("method", ["hungarian", "semi"])
@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=["float32", "float64"])
def test_permuted_copy_matches_with_the_permutation(method: str, dtype: torch.dtype) -> None:
    x = mixed(200, 16, 15, dtype)
    perm = torch.randperm(16, generator=gen(16))
    y = x[:, perm]
    idx = match_units(x, y, method=method)  # type: ignore[arg-type]
    # y[:, j] = x[:, perm[j]], so unit i of x is unit argsort(perm)[i] of y
    assert idx.tolist() == torch.argsort(perm).tolist()
    assert torch.equal(y[:, idx], x)


def test_permuted_copy_has_matched_correlation_one() -> None:
    x = mixed(100, 6, 17)
    result = unit_matching(x, x[:, [3, 1, 0, 5, 4, 2]] * 2 + 7)
    torch.testing.assert_close(result.correlations, torch.ones(6, dtype=F64))
    assert result.method == "hungarian" and bool(result.matched.all())


def test_hungarian_is_one_to_one_when_x_is_narrower() -> None:
    idx = match_units(mixed(80, 4, 18), mixed(80, 7, 19))
    assert len(set(idx.tolist())) == 4 and bool((idx >= 0).all()) and bool((idx < 7).all())


def test_hungarian_leaves_extra_units_of_x_unmatched() -> None:
    x = mixed(80, 6, 20)
    y = x[:, [4, 0, 2]]  # units 1, 3 and 5 of x have no copy in y
    result = unit_matching(x, y)
    assert result.indices.tolist() == [1, -1, 2, -1, 0, -1]
    assert result.matched.tolist() == [True, False, True, False, True, False]
    assert bool(torch.isnan(result.correlations[~result.matched]).all())


def test_hungarian_maximizes_the_total_correlation() -> None:
    corr = torch.rand(5, 5, generator=gen(21), dtype=F64) * 2 - 1
    best = max(
        sum(float(corr[i, p[i]]) for i in range(5)) for p in itertools.permutations(range(5))
    )
    result = unit_matching_from_correlation(corr)
    assert float(result.correlations.sum()) == pytest.approx(best, abs=1e-12)


def test_semi_matching_reuses_a_unit_hungarian_does_not() -> None:
    y = mixed(100, 3, 22)
    noise = torch.randn(100, 2, generator=gen(23), dtype=F64)
    x = y[:, [0, 0]] + 0.1 * noise  # two units of x both resemble unit 0 of y
    assert match_units(x, y, method="semi").tolist() == [0, 0]
    assert len(set(match_units(x, y).tolist())) == 2


def test_absolute_matches_a_negated_copy() -> None:
    x = mixed(100, 5, 24)
    y = -x[:, [2, 0, 1, 4, 3]]
    assert match_units(x, y, absolute=True).tolist() == [1, 2, 0, 4, 3]
    result = unit_matching(x, y, absolute=True)
    torch.testing.assert_close(result.correlations, -torch.ones(5, dtype=F64))


def test_matching_from_numpy_correlation() -> None:
    corr = np.array([[0.1, 0.9], [0.8, 0.7]])
    assert unit_matching_from_correlation(corr).indices.tolist() == [1, 0]
    assert unit_matching_from_correlation(corr, method="semi").indices.tolist() == [1, 0]


def test_unknown_method_is_refused() -> None:
    with pytest.raises(InvalidOptionError, match="method must be one of 'hungarian', 'semi'"):
        match_units(torch.randn(5, 2), torch.randn(5, 2), method="greedy")  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    d1=st.integers(1, 6),
    d2=st.integers(1, 6),
    method=st.sampled_from(["hungarian", "semi"]),
)
def test_permuting_units_of_y_permutes_the_match(seed: int, d1: int, d2: int, method: str) -> None:
    x, y = mixed(40, d1, seed), mixed(40, d2, seed + 1)
    perm = torch.randperm(d2, generator=gen(seed + 2))
    before = match_units(x, y, method=method)  # type: ignore[arg-type]
    after = match_units(x, y[:, perm], method=method)  # type: ignore[arg-type]
    inverse = torch.argsort(perm)
    expected = torch.where(before >= 0, inverse[before.clamp_min(0)], before)
    assert after.tolist() == expected.tolist()


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    log_scale=st.lists(st.floats(-3, 3), min_size=4, max_size=4),
    shift=st.floats(-100, 100),
    method=st.sampled_from(["hungarian", "semi"]),
)
def test_match_is_invariant_to_positive_affine_maps_of_units(
    seed: int, log_scale: list[float], shift: float, method: str
) -> None:
    x, y = mixed(40, 4, seed), mixed(40, 4, seed + 1)
    scale = torch.tensor(log_scale, dtype=F64).exp()
    before = match_units(x, y, method=method)  # type: ignore[arg-type]
    after = match_units(x * scale + shift, y / scale - shift, method=method)  # type: ignore[arg-type]
    assert after.tolist() == before.tolist()


def test_curves_of_a_permuted_copy_are_one_above_the_baseline() -> None:
    x = mixed(200, 8, 25)
    curves = matched_correlation_curves(x, x[:, torch.randperm(8, generator=gen(26))])
    ones = torch.ones(8, dtype=F64)
    torch.testing.assert_close(curves.semi, ones)
    torch.testing.assert_close(curves.one_to_one, ones)
    assert curves.baseline is not None and float(curves.baseline.mean()) < 0.9


def test_curves_semi_is_sorted_and_at_least_one_to_one() -> None:
    curves = matched_correlation_curves(mixed(100, 6, 27), mixed(100, 6, 28), n_random=0)
    assert bool((curves.semi[:-1] >= curves.semi[1:]).all())
    assert bool((curves.semi >= curves.one_to_one - 1e-12).all())
    assert curves.baseline is None
    assert sorted(curves.order.tolist()) == list(range(6))


def test_curves_baseline_is_reproducible_with_a_seed() -> None:
    x, y = mixed(60, 5, 29), mixed(60, 3, 30)
    a = matched_correlation_curves(x, y, seed=0).baseline
    b = matched_correlation_curves(x, y, seed=0).baseline
    assert a is not None and b is not None and torch.equal(a, b) and a.shape == (5,)


def test_curves_refuse_negative_draws() -> None:
    with pytest.raises(InvalidOptionError, match="n_random must be at least 0"):
        matched_correlation_curves(torch.randn(5, 2), torch.randn(5, 2), n_random=-1)


def test_absolute_curves_report_magnitudes() -> None:
    x = mixed(100, 5, 49)
    curves = matched_correlation_curves(x, -x[:, [1, 0, 2, 4, 3]], absolute=True)
    torch.testing.assert_close(curves.semi, torch.ones(5, dtype=F64))
    torch.testing.assert_close(curves.one_to_one, torch.ones(5, dtype=F64))
    assert curves.baseline is not None and bool((curves.baseline >= 0).all())
