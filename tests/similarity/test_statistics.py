"""Tests of magnitude, concentricity, uniformity and their differences (ReSi definitions)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from subspaces._checks import (
    DegenerateInputError,
    InvalidOptionError,
    ShapeError,
    TooFewSamplesError,
)
from subspaces.similarity.statistics import (
    Concentricity,
    ConcentricityDifference,
    Magnitude,
    MagnitudeDifference,
    concentricity,
    concentricity_difference,
    magnitude,
    magnitude_difference,
    uniformity,
    uniformity_difference,
)

# float64 inputs of a few dozen rows: every value agrees with its brute-force formula to
# rounding; 1e-10 leaves room for the different summation orders.
TOL = 1e-10
PROPERTY = settings(max_examples=25, deadline=None)
seeds = st.integers(0, 2**31 - 1)


def _data(seed: int, n: int = 15, d: int = 4, offset: float = 1.0) -> np.ndarray:
    # An offset keeps the mean row away from zero (concentricity needs it).
    return np.random.default_rng(seed).normal(size=(n, d)) + offset


def _orthogonal(seed: int, d: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q * np.sign(np.diag(r))


def _resi_uniformity(x: np.ndarray, t: float = 2.0) -> float:
    """ReSi's definition, brute force: log of the mean of exp(-t d²) over all n² pairs."""
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    return float(np.log(np.exp(-t * d2).sum() / x.shape[0] ** 2))


# --- closed forms ------------------------------------------------------------------------


def test_magnitude_is_norm_of_the_mean_row() -> None:
    x = _data(0)
    assert float(magnitude(x)) == pytest.approx(np.linalg.norm(x.mean(0)), rel=TOL)


def test_magnitude_mean_norm_is_mean_row_length() -> None:
    x = _data(0)
    expected = np.linalg.norm(x, axis=1).mean()
    assert float(magnitude(x, method="mean_norm")) == pytest.approx(expected, rel=TOL)


def test_concentricity_is_mean_cosine_to_the_mean_row() -> None:
    x = _data(1)
    m = x.mean(0)
    cosines = x @ m / (np.linalg.norm(x, axis=1) * np.linalg.norm(m))
    assert float(concentricity(x)) == pytest.approx(cosines.mean(), rel=TOL)


def test_concentricity_counts_a_zero_row_as_cosine_zero() -> None:
    x = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 0.0]])
    assert float(concentricity(x)) == pytest.approx(2 / 3)


def test_concentricity_is_one_when_all_rows_point_the_same_way() -> None:
    x = np.outer(np.arange(1.0, 6.0), [0.3, -1.0, 2.0])
    assert float(concentricity(x)) == pytest.approx(1.0, abs=TOL)


def test_uniformity_matches_resi_brute_force() -> None:
    x = 0.4 * _data(2)
    assert float(uniformity(x)) == pytest.approx(_resi_uniformity(x), rel=TOL)


def test_uniformity_with_other_temperature_matches_brute_force() -> None:
    x = 0.4 * _data(2)
    assert float(uniformity(x, t=0.5)) == pytest.approx(_resi_uniformity(x, 0.5), rel=TOL)


def test_uniformity_exclude_self_averages_over_distinct_pairs() -> None:
    x = 0.4 * _data(3)
    n = x.shape[0]
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    expected = np.log((np.exp(-2 * d2).sum() - n) / (n * (n - 1)))
    assert float(uniformity(x, exclude_self=True)) == pytest.approx(expected, rel=TOL)


def test_uniformity_normalize_uses_unit_rows() -> None:
    x = _data(4)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert float(uniformity(x, normalize=True)) == pytest.approx(_resi_uniformity(unit), rel=TOL)


def test_uniformity_of_far_apart_points_is_minus_log_n_without_underflow() -> None:
    x = 1e4 * _data(5)
    assert float(uniformity(x)) == pytest.approx(-math.log(15), rel=TOL)


def test_uniformity_of_far_apart_points_excluding_self_stays_finite() -> None:
    x = 30.0 * _data(5, n=4)
    value = float(uniformity(x, exclude_self=True))
    assert math.isfinite(value)
    assert value < -100.0


@pytest.mark.parametrize("chunk_size", [1, 4, 14, 100], ids=lambda b: f"block{b}")
def test_uniformity_does_not_depend_on_chunk_size(chunk_size: int) -> None:
    x = 0.5 * _data(6)
    assert float(uniformity(x, chunk_size=chunk_size)) == pytest.approx(
        float(uniformity(x)), rel=TOL
    )


def test_differences_are_absolute_differences() -> None:
    x, y = _data(7), 2.0 * _data(8, n=9, d=3)
    assert float(magnitude_difference(x, y)) == pytest.approx(
        abs(float(magnitude(x)) - float(magnitude(y))), rel=TOL
    )
    assert float(concentricity_difference(x, y)) == pytest.approx(
        abs(float(concentricity(x)) - float(concentricity(y))), rel=TOL
    )
    assert float(uniformity_difference(x, y)) == pytest.approx(
        abs(float(uniformity(x)) - float(uniformity(y))), rel=TOL
    )


@pytest.mark.parametrize(
    "function",
    [magnitude, concentricity, uniformity],
    ids=["magnitude", "concentricity", "uniformity"],
)
def test_statistics_return_float64_scalars(function) -> None:  # type: ignore[no-untyped-def]
    out = function(torch.tensor(_data(9), dtype=torch.float32))
    assert out.dtype == torch.float64
    assert out.ndim == 0


# --- properties ---------------------------------------------------------------------------


@PROPERTY
@given(seed=seeds, method=st.sampled_from(["norm_of_mean", "mean_norm"]))
def test_magnitude_invariant_to_orthogonal_transforms(seed: int, method: str) -> None:
    x = _data(seed)
    assert float(magnitude(x @ _orthogonal(seed, 4), method=method)) == pytest.approx(
        float(magnitude(x, method=method)), rel=1e-9
    )


@PROPERTY
@given(
    seed=seeds, scale=st.floats(0.1, 10.0), method=st.sampled_from(["norm_of_mean", "mean_norm"])
)
def test_magnitude_scales_with_the_data(seed: int, scale: float, method: str) -> None:
    x = _data(seed)
    assert float(magnitude(scale * x, method=method)) == pytest.approx(
        scale * float(magnitude(x, method=method)), rel=1e-9
    )


@PROPERTY
@given(seed=seeds)
def test_norm_of_mean_is_at_most_mean_norm(seed: int) -> None:
    x = _data(seed, offset=0.0)
    assert float(magnitude(x)) <= float(magnitude(x, method="mean_norm")) + TOL


@PROPERTY
@given(seed=seeds, scale=st.floats(0.1, 10.0))
def test_concentricity_invariant_to_orthogonal_transforms_and_scaling(
    seed: int, scale: float
) -> None:
    x = _data(seed)
    assert float(concentricity(scale * x @ _orthogonal(seed, 4))) == pytest.approx(
        float(concentricity(x)), rel=1e-9
    )


@PROPERTY
@given(seed=seeds)
def test_concentricity_lies_in_minus_one_one(seed: int) -> None:
    value = float(concentricity(_data(seed, offset=0.2)))
    assert -1.0 - TOL <= value <= 1.0 + TOL


@PROPERTY
@given(seed=seeds)
def test_uniformity_invariant_to_orthogonal_transforms_and_translation(seed: int) -> None:
    x = 0.5 * _data(seed)
    shift = np.random.default_rng(seed).normal(size=4)
    assert float(uniformity(x @ _orthogonal(seed, 4) + shift)) == pytest.approx(
        float(uniformity(x)), rel=1e-9
    )


@PROPERTY
@given(seed=seeds)
def test_normalized_uniformity_invariant_to_row_scaling(seed: int) -> None:
    x = _data(seed)
    scales = np.random.default_rng(seed).uniform(0.2, 5.0, size=(15, 1))
    assert float(uniformity(scales * x, normalize=True)) == pytest.approx(
        float(uniformity(x, normalize=True)), rel=1e-9
    )


@PROPERTY
@given(seed=seeds, scale=st.floats(0.01, 10.0))
def test_uniformity_lies_between_minus_log_n_and_zero(seed: int, scale: float) -> None:
    value = float(uniformity(scale * _data(seed)))
    assert -math.log(15) - TOL <= value <= 0.0


@PROPERTY
@given(seed=seeds)
def test_statistics_invariant_to_sample_permutation(seed: int) -> None:
    x = 0.5 * _data(seed)
    perm = np.random.default_rng(seed).permutation(15)
    for function in (magnitude, concentricity, uniformity):
        assert float(function(x[perm])) == pytest.approx(float(function(x)), rel=1e-10)


@PROPERTY
@given(seed=seeds)
def test_differences_are_symmetric_and_zero_on_self(seed: int) -> None:
    x, y = 0.5 * _data(seed), 0.5 * _data(seed + 1, n=11, d=3)
    for function in (magnitude_difference, concentricity_difference, uniformity_difference):
        assert float(function(x, y)) == pytest.approx(float(function(y, x)), rel=1e-12)
        assert float(function(x, x)) == 0.0


# --- streaming ----------------------------------------------------------------------------

cuts_strategy = st.lists(st.integers(1, 14), max_size=4, unique=True)


def _batches(n: int, cuts: list[int]) -> list[tuple[int, int]]:
    return list(itertools.pairwise([0, *sorted(cuts), n]))


@PROPERTY
@given(seed=seeds, cuts=cuts_strategy, method=st.sampled_from(["norm_of_mean", "mean_norm"]))
def test_streaming_magnitude_equals_one_shot(seed: int, cuts: list[int], method: str) -> None:
    x = _data(seed)
    metric = Magnitude(method=method)
    for a, b in _batches(15, cuts):
        metric.update(x[a:b])
    assert float(metric.compute()) == pytest.approx(float(magnitude(x, method=method)), rel=1e-12)


@PROPERTY
@given(seed=seeds, cuts=cuts_strategy)
def test_streaming_concentricity_equals_one_shot(seed: int, cuts: list[int]) -> None:
    x = _data(seed)
    metric = Concentricity()
    for a, b in _batches(15, cuts):
        metric.update(x[a:b])
    assert float(metric.compute()) == pytest.approx(float(concentricity(x)), rel=1e-12)


@PROPERTY
@given(seed=seeds, cuts=cuts_strategy)
def test_streaming_differences_equal_one_shot(seed: int, cuts: list[int]) -> None:
    x, y = _data(seed), 3.0 * _data(seed + 1, d=2)
    magnitudes, concentricities = MagnitudeDifference(), ConcentricityDifference()
    for a, b in _batches(15, cuts):
        magnitudes.update(x[a:b], y[a:b])
        concentricities.update(x[a:b], y[a:b])
    assert float(magnitudes.compute()) == pytest.approx(
        float(magnitude_difference(x, y)), rel=1e-10, abs=1e-12
    )
    assert float(concentricities.compute()) == pytest.approx(
        float(concentricity_difference(x, y)), rel=1e-10, abs=1e-12
    )


def test_streaming_difference_accepts_batches_of_different_lengths() -> None:
    x, y = _data(10), _data(11, n=7)
    metric = MagnitudeDifference(method="mean_norm")
    metric.update(x[:5], y[:2])
    metric.update(x[5:], y[2:])
    assert float(metric.compute()) == pytest.approx(
        float(magnitude_difference(x, y, method="mean_norm")), rel=1e-12
    )


# --- errors -------------------------------------------------------------------------------


def test_magnitude_rejects_unknown_mode() -> None:
    with pytest.raises(
        InvalidOptionError, match="method must be one of 'norm_of_mean', 'mean_norm'"
    ):
        magnitude(_data(0), method="max")  # type: ignore[arg-type]


def test_streaming_magnitude_rejects_unknown_mode() -> None:
    with pytest.raises(InvalidOptionError, match="got 'l1'"):
        MagnitudeDifference(method="l1")  # type: ignore[arg-type]


def test_concentricity_rejects_centered_data() -> None:
    x = _data(0)
    with pytest.raises(DegenerateInputError, match="mean row of x is the zero vector"):
        concentricity(x - x.mean(0))


def test_concentricity_rejects_float32_data_centered_up_to_rounding() -> None:
    x = torch.tensor(_data(0), dtype=torch.float32)
    with pytest.raises(DegenerateInputError, match="mean row of x is the zero vector"):
        concentricity(x - x.mean(0))


def test_streaming_concentricity_rejects_centered_data() -> None:
    x = _data(0)
    metric = Concentricity()
    metric.update(x - x.mean(0))
    with pytest.raises(DegenerateInputError, match="mean row of x is the zero vector"):
        metric.compute()


def test_concentricity_difference_names_the_degenerate_side() -> None:
    y = np.array([[1.0, 2.0], [-1.0, -2.0]])
    with pytest.raises(DegenerateInputError, match="mean row of x is the zero vector"):
        concentricity_difference(y, _data(0, d=2))


@pytest.mark.parametrize("t", [0.0, -1.0, math.inf], ids=["zero", "negative", "inf"])
def test_uniformity_rejects_non_positive_or_infinite_temperature(t: float) -> None:
    with pytest.raises(InvalidOptionError, match=r"t must lie in \(0.0, inf\)"):
        uniformity(_data(0), t=t)


def test_uniformity_normalize_rejects_zero_rows() -> None:
    x = _data(0)
    x[4] = 0.0
    with pytest.raises(DegenerateInputError, match="x has 1 zero rows"):
        uniformity(x, normalize=True)


def test_uniformity_needs_two_samples() -> None:
    with pytest.raises(TooFewSamplesError, match="x has 1 samples"):
        uniformity(_data(0, n=1))


def test_uniformity_difference_needs_two_samples_on_each_side() -> None:
    with pytest.raises(TooFewSamplesError, match="y has 1 samples"):
        uniformity_difference(_data(0), _data(0, n=1))


@pytest.mark.filterwarnings("ignore:The ``compute`` method:UserWarning")
def test_streaming_compute_before_update() -> None:
    with pytest.raises(TooFewSamplesError, match="Concentricity has seen no samples of x"):
        Concentricity().compute()


@pytest.mark.filterwarnings("ignore:The ``compute`` method:UserWarning")
def test_streaming_difference_compute_without_y() -> None:
    metric = MagnitudeDifference()
    metric.update(_data(0), _data(1))
    metric.reset()
    with pytest.raises(TooFewSamplesError, match="has seen no samples of x"):
        metric.compute()


def test_streaming_rejects_width_change() -> None:
    metric = Magnitude()
    metric.update(_data(0, d=4))
    with pytest.raises(
        ShapeError, match="this batch of x has 3 features but earlier batches had 4"
    ):
        metric.update(_data(0, d=3))


def test_large_inputs_cap_the_rows_per_block(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from subspaces.linalg.constants import rows_within_budget

    module = importlib.import_module("subspaces.similarity.statistics")
    calls: list[tuple[int, int, int]] = []

    def three_rows(chunk_size: int, bytes_per_row: int, memory_budget: int = 0) -> int:
        rows = rows_within_budget(chunk_size, bytes_per_row, memory_budget=3 * bytes_per_row)
        calls.append((chunk_size, bytes_per_row, rows))
        return rows

    x = torch.randn(25, 4, generator=torch.Generator().manual_seed(0))
    expected = uniformity(x, chunk_size=64)
    monkeypatch.setattr(module, "rows_within_budget", three_rows)
    # float32 products of other block shapes: equal up to float32 rounding
    torch.testing.assert_close(uniformity(x, chunk_size=64), expected, rtol=1e-6, atol=0)
    (chunk_size, per_row, rows) = calls[0]
    assert (chunk_size, rows, len(calls)) == (64, 3, 1)
    assert per_row >= 25 * (2 * 4 + 8)  # the float32 block, its copy, the float64 copy
