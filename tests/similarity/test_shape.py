"""Tests of subspaces.similarity.shape: Procrustes, permutation Procrustes, shape metrics."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from subspaces._checks import DegenerateInputError, InvalidOptionError, ShapeError
from subspaces.linalg.moments import paired_moments
from subspaces.similarity.cca import cca_correlations
from subspaces.similarity.shape import (
    PermutationProcrustesDistance,
    ProcrustesDistance,
    ShapeMetric,
    angular_procrustes_distance,
    permutation_procrustes_distance,
    procrustes_distance,
    procrustes_distance_from_moments,
    shape_metric,
    shape_metric_from_moments,
)

F64 = torch.float64
SEEDS = st.integers(0, 2**31 - 1)
FAST = settings(max_examples=25, deadline=None)
Measure = Callable[[np.ndarray, np.ndarray], torch.Tensor]

# Every distance of this module, by name, as a function of (x, y).
DISTANCES: dict[str, Measure] = {
    "procrustes": procrustes_distance,
    "angular": angular_procrustes_distance,
    "shape-a0-angular": lambda x, y: shape_metric(x, y, alpha=0.0),
    "shape-a0.3-euclid": lambda x, y: shape_metric(x, y, alpha=0.3, distance="euclidean"),
    "shape-a0.7-angular": lambda x, y: shape_metric(x, y, alpha=0.7),
    "perm-euclid": permutation_procrustes_distance,
    "perm-angular": lambda x, y: permutation_procrustes_distance(x, y, distance="angular"),
}
ORTHOGONAL_INVARIANT = [k for k in DISTANCES if not k.startswith("perm")]


def correlated(seed: int, n: int = 60, d1: int = 4, d2: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))
    x = z @ rng.normal(size=(3, d1)) + 0.5 * rng.normal(size=(n, d1)) + rng.normal(size=d1)
    y = z @ rng.normal(size=(3, d2)) + 0.5 * rng.normal(size=(n, d2)) - 1.0
    return x, y


def orthogonal(rng: np.random.Generator, d: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q


def prenormalized(a: np.ndarray) -> np.ndarray:
    ac = a - a.mean(0)
    return ac / np.linalg.norm(ac)


# ---------------------------------------------------------------------------------------
# Closed forms and identities


def test_procrustes_equals_the_residual_of_the_svd_alignment() -> None:
    x, y = correlated(0, d1=4, d2=3)
    a, b = prenormalized(x), np.hstack([prenormalized(y), np.zeros((60, 1))])
    u, _, vt = np.linalg.svd(a.T @ b)
    residual = np.linalg.norm(a @ u @ vt - b)  # Schönemann's solution, computed on the data
    assert float(procrustes_distance(x, y)) == pytest.approx(residual, abs=1e-10)
    cosine = 1.0 - residual**2 / 2.0
    assert float(angular_procrustes_distance(x, y)) == pytest.approx(math.acos(cosine), abs=1e-9)


def test_zero_padding_the_smaller_side_changes_nothing() -> None:
    x, y = correlated(1, d1=5, d2=3)
    y_padded = np.hstack([y, np.zeros((60, 2))])
    for name, measure in DISTANCES.items():
        torch.testing.assert_close(measure(x, y), measure(x, y_padded), msg=name)


def test_a_dead_feature_changes_nothing() -> None:
    x, y = correlated(18, d1=4, d2=3)
    x_dead = np.hstack([x, np.full((60, 1), 0.7)])
    for name, measure in DISTANCES.items():
        torch.testing.assert_close(measure(x, y), measure(x_dead, y), msg=name)


def test_shape_metric_at_alpha_one_is_procrustes() -> None:
    x, y = correlated(2)
    torch.testing.assert_close(shape_metric(x, y), angular_procrustes_distance(x, y))
    torch.testing.assert_close(shape_metric(x, y, distance="euclidean"), procrustes_distance(x, y))


def test_shape_metric_at_alpha_zero_is_the_arccos_of_mean_cca() -> None:
    x, y = correlated(3, d1=4, d2=3)
    rho = cca_correlations(x, y)
    expected = torch.arccos(rho.sum() / math.sqrt(4 * 3))
    torch.testing.assert_close(shape_metric(x, y, alpha=0.0), expected, rtol=0, atol=1e-10)


def test_shape_metric_is_continuous_in_alpha() -> None:
    x, y = correlated(4)
    values = [float(shape_metric(x, y, alpha=a)) for a in (0.0, 1e-9, 0.5, 1.0 - 1e-9, 1.0)]
    assert values[0] == pytest.approx(values[1], abs=1e-6)
    assert values[3] == pytest.approx(values[4], abs=1e-6)


def brute_force_permutation(x: np.ndarray, y: np.ndarray) -> float:
    a, b = prenormalized(x), prenormalized(y)
    return min(np.linalg.norm(a[:, list(p)] - b) for p in itertools.permutations(range(a.shape[1])))


@pytest.mark.parametrize("seed", [5, 6, 7], ids=lambda s: f"seed{s}")
def test_permutation_procrustes_matches_brute_force(seed: int) -> None:
    x, y = correlated(seed, d1=5, d2=5)
    expected = brute_force_permutation(x, y)
    assert float(permutation_procrustes_distance(x, y)) == pytest.approx(expected, abs=1e-10)


@FAST
@given(seed=SEEDS)
def test_permutation_distance_is_at_least_the_orthogonal_one(seed: int) -> None:
    x, y = correlated(seed)
    assert float(permutation_procrustes_distance(x, y)) >= float(procrustes_distance(x, y)) - 1e-12


def test_permutation_distance_can_exceed_sqrt_two_for_anticorrelated_neurons() -> None:
    x, _ = correlated(8, d1=1, d2=1)
    assert float(permutation_procrustes_distance(x, -x)) == pytest.approx(2.0, abs=1e-10)
    assert float(procrustes_distance(x, -x)) == pytest.approx(0.0, abs=1e-7)


# ---------------------------------------------------------------------------------------
# Properties


# Distances near 0 come from cos θ = 1 - δ, so they resolve only to sqrt(2δ). The centered
# moments are formed from raw sums, so δ ~ eps64 · (|mean| / std)², which is below 1e-12
# for the scales and shifts drawn here: distances of 0 read as at most ~1.5e-6 (observed
# at most 1e-6 over 120 draws).
ZERO_TOL = 1e-5


@FAST
@given(seed=SEEDS, scale=st.floats(0.1, 10.0), name=st.sampled_from(ORTHOGONAL_INVARIANT))
def test_distance_is_zero_for_a_similarity_transform(seed: int, scale: float, name: str) -> None:
    x, _ = correlated(seed)
    rng = np.random.default_rng(seed)
    y = scale * x @ orthogonal(rng, 4) + rng.normal(size=4) * 5.0
    assert float(DISTANCES[name](x, y)) == pytest.approx(0.0, abs=ZERO_TOL)


@FAST
@given(seed=SEEDS, scale=st.floats(0.1, 10.0), name=st.sampled_from(sorted(DISTANCES)))
def test_distance_is_zero_for_a_permuted_scaled_translated_copy(
    seed: int, scale: float, name: str
) -> None:
    x, _ = correlated(seed)
    rng = np.random.default_rng(seed)
    y = scale * x[:, rng.permutation(4)] - 3.0
    assert float(DISTANCES[name](x, y)) == pytest.approx(0.0, abs=ZERO_TOL)


@FAST
@given(seed=SEEDS, name=st.sampled_from(sorted(DISTANCES)))
def test_distance_is_symmetric(seed: int, name: str) -> None:
    x, y = correlated(seed, d1=4, d2=3)
    torch.testing.assert_close(DISTANCES[name](x, y), DISTANCES[name](y, x), rtol=0, atol=1e-12)


@FAST
@given(seed=SEEDS, name=st.sampled_from(sorted(DISTANCES)))
def test_triangle_inequality_on_related_triples(seed: int, name: str) -> None:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(40, 4)) @ rng.normal(size=(4, 4))
    x = base + rng.uniform(0.1, 1.0) * rng.normal(size=(40, 4))
    y = base @ orthogonal(rng, 4) + rng.uniform(0.1, 1.0) * rng.normal(size=(40, 4))
    z = base[:, rng.permutation(4)] + rng.uniform(0.1, 1.0) * rng.normal(size=(40, 4))
    d = DISTANCES[name]
    dxy, dyz, dxz = float(d(x, y)), float(d(y, z)), float(d(x, z))
    assert dxz <= dxy + dyz + 1e-9
    assert dxy <= dxz + dyz + 1e-9


@FAST
@given(seed=SEEDS, name=st.sampled_from(sorted(DISTANCES)))
def test_distance_lies_in_its_range(seed: int, name: str) -> None:
    x, y = correlated(seed, d1=3, d2=5)
    value = float(DISTANCES[name](x, y))
    upper = math.pi if name == "perm-angular" else 2.0 if name == "perm-euclid" else math.sqrt(2)
    upper = math.pi / 2 if "angular" in name and not name.startswith("perm") else upper
    assert 0.0 <= value <= upper + 1e-12


@FAST
@given(seed=SEEDS)
def test_shape_metric_at_alpha_zero_is_invariant_to_invertible_maps(seed: int) -> None:
    x, y = correlated(seed)
    rng = np.random.default_rng(seed)
    q1, q2 = orthogonal(rng, 4), orthogonal(rng, 4)
    a = q1 @ np.diag(rng.uniform(0.5, 2.0, size=4)) @ q2
    torch.testing.assert_close(
        shape_metric(x @ a, y, alpha=0.0), shape_metric(x, y, alpha=0.0), rtol=0, atol=1e-8
    )


def test_shape_metric_between_zero_and_one_is_not_invariant_to_anisotropic_scaling() -> None:
    x, y = correlated(9)
    stretched = x * np.array([10.0, 1.0, 1.0, 0.1])
    for alpha in (0.3, 1.0):
        gap = abs(
            float(shape_metric(stretched, y, alpha=alpha)) - float(shape_metric(x, y, alpha=alpha))
        )
        assert gap > 1e-3


def test_rank_deficient_side_is_handled() -> None:
    x, y = correlated(10)
    x_dup = np.hstack([x, x[:, :1] + x[:, 1:2]])
    for alpha in (0.0, 0.5):
        torch.testing.assert_close(
            shape_metric(x_dup, y, alpha=alpha).isfinite(), torch.tensor(True)
        )
    torch.testing.assert_close(
        shape_metric(x_dup, y, alpha=0.0), shape_metric(x, y, alpha=0.0), rtol=0, atol=1e-9
    )


@pytest.mark.parametrize("name", sorted(DISTANCES))
def test_float32_and_float64_agree(name: str) -> None:
    x, y = correlated(11, n=200)
    d64 = DISTANCES[name](torch.tensor(x, dtype=F64), torch.tensor(y, dtype=F64))  # type: ignore[arg-type]
    x32, y32 = torch.tensor(x).float(), torch.tensor(y).float()
    d32 = DISTANCES[name](x32, y32)  # type: ignore[arg-type]
    # products run in float64: float32 input gives the float64 result of the same values
    same = DISTANCES[name](x32.double(), y32.double())  # type: ignore[arg-type]
    torch.testing.assert_close(d32, same, rtol=0, atol=1e-12)
    # the distances are O(1) here; rounding the data to float32 moves them by ~1e-7
    torch.testing.assert_close(d32, d64, rtol=0, atol=1e-5)


def test_results_are_float64_scalars_on_the_input_device() -> None:
    x, y = correlated(12)
    for name, measure in DISTANCES.items():
        value = measure(torch.tensor(x).float(), torch.tensor(y).float())  # type: ignore[arg-type]
        assert value.shape == () and value.dtype == F64 and value.device.type == "cpu", name


# ---------------------------------------------------------------------------------------
# Streaming


@FAST
@given(seed=SEEDS, cuts=st.lists(st.integers(1, 59), max_size=5))
def test_streaming_equals_one_shot_over_any_split(seed: int, cuts: list[int]) -> None:
    x, y = correlated(seed, d1=4, d2=3)
    metrics = {
        "procrustes": (ProcrustesDistance(), procrustes_distance(x, y)),
        "angular": (
            ProcrustesDistance(distance="angular"),
            angular_procrustes_distance(x, y),
        ),
        "shape": (ShapeMetric(alpha=0.4), shape_metric(x, y, alpha=0.4)),
        "shape0": (
            ShapeMetric(alpha=0.0, distance="euclidean"),
            shape_metric(x, y, alpha=0.0, distance="euclidean"),
        ),
        "perm": (PermutationProcrustesDistance(), permutation_procrustes_distance(x, y)),
    }
    edges = [0, *sorted(set(cuts)), x.shape[0]]
    for a, b in itertools.pairwise(edges):
        for metric, _ in metrics.values():
            metric.update(x[a:b], y[a:b])
    for name, (metric, expected) in metrics.items():
        torch.testing.assert_close(metric.compute(), expected, rtol=0, atol=1e-10, msg=name)


def test_from_moments_cores_match_the_functions() -> None:
    x, y = correlated(13)
    m = paired_moments(torch.tensor(x), torch.tensor(y))
    torch.testing.assert_close(procrustes_distance_from_moments(m), procrustes_distance(x, y))
    torch.testing.assert_close(
        shape_metric_from_moments(m, alpha=0.5, input_dtype=F64), shape_metric(x, y, alpha=0.5)
    )


# ---------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("name", sorted(DISTANCES))
@pytest.mark.parametrize("side", ["x", "y"])
def test_zero_variance_is_refused(name: str, side: str) -> None:
    x, y = correlated(14)
    if side == "x":
        x = np.full_like(x, 0.3)
    else:
        y = np.zeros_like(y)
    with pytest.raises(DegenerateInputError, match=f"{side} has zero variance"):
        DISTANCES[name](x, y)


def test_different_sample_counts_are_refused() -> None:
    x, y = correlated(15)
    with pytest.raises(ShapeError, match="same samples in the same order"):
        procrustes_distance(x, y[:10])


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan")], ids=["negative", "above-one", "nan"])
def test_alpha_outside_unit_interval_is_refused(alpha: float) -> None:
    x, y = correlated(16)
    with pytest.raises(InvalidOptionError, match=r"alpha must lie in \[0.0, 1.0\]"):
        shape_metric(x, y, alpha=alpha)
    with pytest.raises(InvalidOptionError, match="alpha must lie in"):
        ShapeMetric(alpha=alpha)


@pytest.mark.parametrize(
    "build",
    [
        lambda: ShapeMetric(distance="cosine"),  # type: ignore[arg-type]
        lambda: ProcrustesDistance(distance="cosine"),  # type: ignore[arg-type]
        lambda: PermutationProcrustesDistance(distance="cosine"),  # type: ignore[arg-type]
        lambda: shape_metric(*correlated(17), distance="cosine"),  # type: ignore[arg-type]
        lambda: permutation_procrustes_distance(*correlated(17), distance="cosine"),  # type: ignore[arg-type]
    ],
    ids=["ShapeMetric", "ProcrustesDistance", "PermutationProcrustesDistance", "shape", "perm"],
)
def test_unknown_distance_is_refused(build: Callable[[], object]) -> None:
    with pytest.raises(InvalidOptionError, match="distance must be one of 'euclidean', 'angular'"):
        build()


# ---------------------------------------------------------------------------------------
# Identical inputs: exactly 0 (not the ~1e-8..1e-6 of arccos(1 − rounding))


def _self_case(case: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(21)
    if case == "digits":  # dead pixels, integer values: alpha = 0 read 2.9e-7 here
        datasets = pytest.importorskip("sklearn.datasets")
        return torch.from_numpy(datasets.load_digits().data)
    x = torch.randn(300, 20, generator=g, dtype=F64)
    if case == "anisotropic-f32":
        return (x * torch.logspace(0, -3, 20, dtype=F64)).float()
    return (x + 100.0).float()  # offset-f32


SELF_DISTANCES: dict[str, Measure] = {
    **DISTANCES,
    "shape-a0-euclid": lambda x, y: shape_metric(x, y, alpha=0.0, distance="euclidean"),
    "shape-a1-angular": lambda x, y: shape_metric(x, y, alpha=1.0),
}


@pytest.mark.parametrize("case", ["anisotropic-f32", "offset-f32", "digits"])
@pytest.mark.parametrize("name", sorted(SELF_DISTANCES))
def test_self_distance_is_exactly_zero(name: str, case: str) -> None:
    x = _self_case(case)
    assert float(SELF_DISTANCES[name](x, x)) == 0.0
    assert float(SELF_DISTANCES[name](x, x.clone())) == 0.0


@pytest.mark.parametrize(
    "metric",
    [ProcrustesDistance(), ShapeMetric(alpha=0.0), PermutationProcrustesDistance()],
    ids=["procrustes", "shape-a0", "permutation"],
)
def test_streaming_self_distance_is_exactly_zero(metric: object) -> None:
    x = _self_case("anisotropic-f32")
    metric.update(x[:100], x[:100])  # type: ignore[attr-defined]
    metric.update(x[100:], x[100:])  # type: ignore[attr-defined]
    assert float(metric.compute()) == 0.0  # type: ignore[attr-defined]
