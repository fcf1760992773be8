"""Tests of subspaces.geometry.collapse: neural collapse (NC1-NC4, CDNV, ETF distances),
its streaming class, the imbalanced orthogonal frame, mixup geometry and classifier geometry."""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from subspaces._checks import (
    DegenerateInputError,
    InputTypeError,
    InvalidOptionError,
    ShapeError,
    TooFewSamplesError,
)
from subspaces.geometry.collapse import (
    NeuralCollapse,
    NeuralCollapseResult,
    classifier_geometry,
    compare_classifier_geometry,
    mixup_geometry,
    neural_collapse,
    orthogonal_frame_distances,
    orthogonal_frame_scales,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _distributed import ProcessGroupPool, distributed_available, rank_rows
from _memory import address_space_headroom

F64 = torch.float64
SEEDS = st.integers(0, 2**31 - 1)
FAST = settings(max_examples=25, deadline=None)
SCALARS = (
    "nc1",
    "trace_ratio",
    "cdnv",
    "equinorm_means",
    "equiangularity_means",
    "etf_distance_means",
    "equinorm_classifier",
    "equiangularity_classifier",
    "etf_distance_classifier",
    "self_duality",
    "nc4",
)


# ---------------------------------------------------------------------------------------
# Data


def orthogonal(rng: np.random.Generator, d: int) -> torch.Tensor:
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return torch.from_numpy(q)


def simplex_etf(c: int, d: int, seed: int = 0) -> torch.Tensor:
    """(C, d) unit-norm rows of a simplex ETF, randomly rotated in R^d (d >= C - 1)."""
    centering = torch.eye(c, dtype=F64) - torch.full((c, c), 1.0 / c, dtype=F64)
    basis, _, _ = torch.linalg.svd(centering)  # first C-1 columns span the centered space
    rows = centering @ basis[:, : c - 1] * math.sqrt(c / (c - 1.0))  # (C, C-1), unit norm
    embedded = torch.zeros(c, d, dtype=F64)
    embedded[:, : c - 1] = rows
    return embedded @ orthogonal(np.random.default_rng(seed), d).T


def etf_with_isotropic_noise(
    c: int, d: int, sigma: float, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Features μ_c ± σ√d q_j (j = 1..d, q an orthonormal basis): within-class covariance
    exactly σ² I and class means exactly the unit-norm ETF rows. Returns (x, labels, means)."""
    means = simplex_etf(c, d, seed)
    q = orthogonal(np.random.default_rng(seed + 1), d)
    noise = torch.cat([q, -q]) * sigma * math.sqrt(d)  # (2d, d), mean 0, covariance σ² I
    x = (means[:, None, :] + noise[None, :, :]).reshape(-1, d)
    labels = torch.arange(c).repeat_interleave(2 * d)
    return x, labels, means


def clustered(
    seed: int, c: int = 4, d: int = 6, per_class: tuple[int, int] = (2, 7), noise: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random imbalanced classes around random centers; a random classifier and bias."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(per_class[0], per_class[1] + 1, size=c)
    labels = np.repeat(np.arange(c), sizes)
    rng.shuffle(labels)
    centers = rng.normal(size=(c, d)) * 2.0 + rng.normal(size=d)
    x = centers[labels] + noise * rng.normal(size=(labels.size, d))
    w = rng.normal(size=(c, d))
    b = rng.normal(size=c)
    return (torch.from_numpy(x), torch.from_numpy(labels), torch.from_numpy(w), torch.from_numpy(b))


def naive_collapse(
    x: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor | None = None,
    *,
    global_mean: str = "classes",
) -> dict[str, float]:
    """Textbook formulas, one step at a time, float64, loops where the paper sums."""
    x, w = x.double(), w.double()
    c = int(y.max()) + 1
    means = torch.stack([x[y == k].mean(0) for k in range(c)])
    mu_g = means.mean(0) if global_mean == "classes" else x.mean(0)
    within = sum(torch.outer(x[i] - means[y[i]], x[i] - means[y[i]]) for i in range(len(y)))
    within = within / len(y)
    m = means - mu_g
    between = m.T @ m / c
    nc1 = torch.trace(within @ torch.linalg.pinv(between, hermitian=True)) / c
    var = torch.stack([((x[y == k] - means[k]) ** 2).sum(1).mean() for k in range(c)])
    cdnv = np.mean(
        [
            float((var[i] + var[j]) / (2 * ((means[i] - means[j]) ** 2).sum()))
            for i in range(c)
            for j in range(c)
            if i != j
        ]
    )

    def geometry(v: torch.Tensor) -> tuple[float, float, float]:
        norms = v.norm(dim=1)
        cos = [
            float(v[i] @ v[j] / (norms[i] * norms[j])) for i in range(c) for j in range(c) if i != j
        ]
        gram = v @ v.T
        etf = torch.eye(c, dtype=F64) - 1.0 / c
        dist = (gram / gram.norm() - etf / etf.norm()).norm()
        return (
            float(norms.std() / norms.mean()),
            float(np.mean([abs(v + 1.0 / (c - 1)) for v in cos])),
            float(dist),
        )

    eqn_m, eqa_m, etf_m = geometry(m)
    eqn_w, eqa_w, etf_w = geometry(w)
    nc3 = float(((w.T / w.norm() - m.T / m.norm()) ** 2).sum())
    logits = x @ w.T + (0 if b is None else b.double())
    nearest = torch.cdist(x, means).argmin(1)
    nc4 = float((logits.argmax(1) != nearest).double().mean())
    return {
        "nc1": float(nc1),
        "trace_ratio": float(torch.trace(within) / torch.trace(between)),
        "cdnv": cdnv,
        "equinorm_means": eqn_m,
        "equiangularity_means": eqa_m,
        "etf_distance_means": etf_m,
        "equinorm_classifier": eqn_w,
        "equiangularity_classifier": eqa_w,
        "etf_distance_classifier": etf_w,
        "self_duality": nc3,
        "nc4": nc4,
    }


def assert_results_close(
    a: NeuralCollapseResult,
    b: NeuralCollapseResult,
    *,
    rtol: float = 1e-9,
    atol: float = 1e-12,
    skip: tuple[str, ...] = (),
) -> None:
    for name in SCALARS:
        if name in skip:
            continue
        va, vb = getattr(a, name), getattr(b, name)
        if va is None or vb is None:
            assert va is None and vb is None, name
            continue
        np.testing.assert_allclose(float(va), float(vb), rtol=rtol, atol=atol, err_msg=name)


# ---------------------------------------------------------------------------------------
# Closed forms on an exact simplex ETF with isotropic noise

ETF_SHAPES = [(2, 3), (3, 4), (5, 8), (10, 12)]
SIGMA = 0.1


def _closed_form(name: str, c: int, d: int) -> float:
    s2 = SIGMA**2
    return {
        "nc1": s2 * (c - 1) ** 2 / c,  # Σ_B⁺ = (C-1) P, Σ_W = σ² I
        "trace_ratio": s2 * d,  # Tr Σ_W = σ² d, Tr Σ_B = (1/C) Σ ||μ_c||² = 1
        "cdnv": s2 * d * (c - 1) / (2 * c),  # σ_c² = σ² d, ||μ_c - μ_c'||² = 2C/(C-1)
    }.get(name, 0.0)


@pytest.mark.parametrize("shape", ETF_SHAPES, ids=[f"C{c}-d{d}" for c, d in ETF_SHAPES])
@pytest.mark.parametrize("name", SCALARS)
def test_closed_form_on_simplex_etf_with_isotropic_noise(name: str, shape: tuple[int, int]) -> None:
    # float64 data built exactly: only rounding separates the values from the closed forms.
    c, d = shape
    x, y, means = etf_with_isotropic_noise(c, d, SIGMA, seed=c)
    result = neural_collapse(x, y, classifier=3.0 * means, bias=torch.zeros(c, dtype=F64))
    assert float(getattr(result, name)) == pytest.approx(_closed_form(name, c, d), abs=1e-10)


def test_closed_form_nc1_in_float32() -> None:
    # float32 features: the within-class product runs in float32 on class-centered rows, so
    # NC1 is exact to float32 rounding of the inputs (~1e-7 relative).
    c, d = 6, 8
    x, y, _ = etf_with_isotropic_noise(c, d, SIGMA, seed=3)
    result = neural_collapse(x.float(), y)
    assert float(result.nc1) == pytest.approx(SIGMA**2 * (c - 1) ** 2 / c, rel=1e-5)


def test_perfect_collapse_gives_zero_nc1() -> None:
    means = simplex_etf(4, 5)
    y = torch.arange(4).repeat(3)
    result = neural_collapse(means[y], y)
    # exact zero up to float64 rounding of Σ h hᵀ - Σ n μ μᵀ
    assert float(result.nc1) == pytest.approx(0.0, abs=1e-14)
    assert float(result.cdnv) == pytest.approx(0.0, abs=1e-14)


def test_between_rank_is_c_minus_one_on_an_etf() -> None:
    x, y, _ = etf_with_isotropic_noise(5, 8, SIGMA)
    assert neural_collapse(x, y).between_rank == 4


# ---------------------------------------------------------------------------------------
# Agreement with a second, textbook computation


@pytest.mark.parametrize("global_mean", ["classes", "samples"])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", SCALARS)
def test_matches_textbook_formulas(name: str, seed: int, global_mean: str) -> None:
    # Random imbalanced classes, full-rank Σ_B (C - 1 < d); both float64 computations.
    x, y, w, b = clustered(seed, c=4, d=6)
    ours = neural_collapse(x, y, classifier=w, bias=b, global_mean=global_mean)
    ref = naive_collapse(x, y, w, b, global_mean=global_mean)
    assert float(getattr(ours, name)) == pytest.approx(ref[name], rel=1e-9, abs=1e-12)


def test_nc1_is_papyan_notebook_value_divided_by_c() -> None:
    # The widely copied notebook: svds(Sb, k=C-1), trace(Sw @ inv_Sb) without 1/C.
    from scipy.sparse.linalg import svds

    x, y, _, _ = clustered(5, c=5, d=8)
    c = 5
    means = torch.stack([x[y == k].mean(0) for k in range(c)])
    m = (means - means.mean(0)).numpy()
    sb = m.T @ m / c
    xc = (x - means[y]).numpy()
    sw = xc.T @ xc / len(y)
    vecs, vals, _ = svds(sb, k=c - 1)
    notebook = np.trace(sw @ (vecs @ np.diag(vals**-1) @ vecs.T))
    assert float(neural_collapse(x, y).nc1) * c == pytest.approx(notebook, rel=1e-8)


def test_global_means_agree_for_balanced_classes() -> None:
    x, y, _ = etf_with_isotropic_noise(4, 5, 0.3, seed=2)
    x = x + 0.7  # translate: μ_G away from the origin
    a = neural_collapse(x, y, global_mean="classes")
    b = neural_collapse(x, y, global_mean="samples")
    assert_results_close(a, b)


def test_rank_deficient_between_class_scatter_uses_its_numerical_range() -> None:
    # Five class means in a 2-D plane of R^6: Σ_B has rank 2; NC1 inverts only those two
    # directions (a fixed rank C - 1 = 4 would divide by rounding noise).
    rng = np.random.default_rng(0)
    plane = rng.normal(size=(2, 6))
    centers = rng.normal(size=(5, 2)) @ plane
    y = np.repeat(np.arange(5), 6)
    noise = 0.2 * rng.normal(size=(5, 3, 6))
    noise = np.concatenate([noise, -noise], axis=1).reshape(30, 6)  # class means exact
    x = torch.from_numpy(centers[y] + noise)
    yt = torch.from_numpy(y)
    result = neural_collapse(x, yt)
    assert result.between_rank == 2
    w = torch.from_numpy(rng.normal(size=(5, 6)))
    assert float(result.nc1) == pytest.approx(naive_collapse(x, yt, w)["nc1"], rel=1e-8)


def test_more_classes_than_dimensions() -> None:
    # C - 1 > d: Σ_B has rank d (the svds(k=C-1) recipe cannot even run here).
    x, y, w, b = clustered(3, c=9, d=4)
    result = neural_collapse(x, y, classifier=w, bias=b)
    assert result.between_rank == 4
    assert float(result.nc1) == pytest.approx(naive_collapse(x, y, w, b)["nc1"], rel=1e-8)


def test_collapsed_float32_features_keep_their_within_class_scatter() -> None:
    # Class means of norm ~100, within-class spread 1e-3 (ratio 1e10 in squares): a plain
    # float32 Σ h hᵀ would lose NC1 entirely; class-centered products keep ~1e-5 relative.
    rng = np.random.default_rng(0)
    c, d, n = 10, 16, 2000
    centers = rng.normal(size=(c, d)) * 100 + 50
    y = np.arange(n) % c
    x32 = torch.from_numpy(centers[y] + 1e-3 * rng.normal(size=(n, d))).float()
    yt = torch.from_numpy(y)
    reference = neural_collapse(x32.double(), yt)
    result = neural_collapse(x32, yt, chunk_size=256)
    assert float(result.nc1) == pytest.approx(float(reference.nc1), rel=1e-4)
    assert float(result.cdnv) == pytest.approx(float(reference.cdnv), rel=1e-4)


def test_cdnv_matrix_is_symmetric_with_zero_diagonal_and_mean_cdnv() -> None:
    x, y, _, _ = clustered(4, c=5, d=6)
    result = neural_collapse(x, y, cdnv_matrix=True)
    matrix = result.cdnv_matrix
    assert matrix is not None
    torch.testing.assert_close(matrix, matrix.T, rtol=1e-12, atol=0.0)
    assert bool((torch.diagonal(matrix) == 0).all())
    assert float(matrix.sum() / (5 * 4)) == pytest.approx(float(result.cdnv), rel=1e-12)


def test_nc4_counts_disagreement_with_the_nearest_mean() -> None:
    # A bias that makes the network predict class 0 everywhere: it disagrees with the
    # nearest class mean on every sample of the other C - 1 classes.
    c = 4
    x, y, means = etf_with_isotropic_noise(c, 5, 0.05)
    bias = torch.tensor([100.0, 0.0, 0.0, 0.0], dtype=F64)
    result = neural_collapse(x, y, classifier=means, bias=bias)
    assert float(result.nc4) == pytest.approx((c - 1) / c)


def test_without_classifier_the_classifier_fields_are_none() -> None:
    x, y, _ = etf_with_isotropic_noise(3, 4, SIGMA)
    result = neural_collapse(x, y)
    for name in ("equinorm_classifier", "etf_distance_classifier", "self_duality", "nc4"):
        assert getattr(result, name) is None


def test_numpy_input_gives_the_tensor_result() -> None:
    x, y, w, b = clustered(7)
    a = neural_collapse(x.numpy(), y.numpy(), classifier=w.numpy(), bias=b.numpy())
    assert_results_close(a, neural_collapse(x, y, classifier=w, bias=b), rtol=0.0, atol=0.0)


def test_scalars_are_0_dim_float64() -> None:
    x, y, w, b = clustered(8)
    result = neural_collapse(x.float(), y, classifier=w.float(), bias=b.float())
    for name in SCALARS:
        value = getattr(result, name)
        assert value.ndim == 0 and value.dtype == F64, name


# ---------------------------------------------------------------------------------------
# Invariances (hypothesis)


@FAST
@given(seed=SEEDS)
def test_label_permutation_invariance(seed: int) -> None:
    x, y, w, b = clustered(seed)
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(4))
    # class k becomes perm[k]: rows of the classifier move alike
    w2, b2 = torch.empty_like(w), torch.empty_like(b)
    w2[perm], b2[perm] = w, b
    a = neural_collapse(x, y, classifier=w, bias=b)
    relabeled = neural_collapse(x, perm[y], classifier=w2, bias=b2)
    assert_results_close(a, relabeled)


@FAST
@given(seed=SEEDS)
def test_rotation_invariance(seed: int) -> None:
    x, y, w, b = clustered(seed)
    q = orthogonal(np.random.default_rng(seed), x.shape[1])
    a = neural_collapse(x, y, classifier=w, bias=b)
    rotated = neural_collapse(x @ q, y, classifier=w @ q, bias=b)
    assert_results_close(a, rotated, rtol=1e-8, atol=1e-10)


@FAST
@given(seed=SEEDS)
def test_sample_order_invariance(seed: int) -> None:
    x, y, w, b = clustered(seed)
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(y)))
    a = neural_collapse(x, y, classifier=w, bias=b)
    assert_results_close(a, neural_collapse(x[order], y[order], classifier=w, bias=b))


@FAST
@given(seed=SEEDS, scale=st.floats(0.01, 100.0), shift=st.floats(-10.0, 10.0))
def test_scale_and_translation_invariance_without_classifier(
    seed: int, scale: float, shift: float
) -> None:
    x, y, _, _ = clustered(seed)
    a = neural_collapse(x, y)
    assert_results_close(a, neural_collapse(scale * x + shift, y), rtol=1e-7, atol=1e-9)


@FAST
@given(seed=SEEDS, scale=st.floats(0.01, 100.0), shift=st.floats(-10.0, 10.0))
def test_scale_and_translation_invariance_with_classifier(
    seed: int, scale: float, shift: float
) -> None:
    # NC3 uses centered, normalized means: invariant too; NC4 changes under translation.
    x, y, w, _ = clustered(seed)
    a = neural_collapse(x, y, classifier=w)
    moved = neural_collapse(scale * x + shift, y, classifier=w)
    assert_results_close(a, moved, rtol=1e-7, atol=1e-9, skip=("nc4",))
    scaled = neural_collapse(scale * x, y, classifier=w)
    # equal but for a sample that rounding moves across a tie (none expected)
    assert float(scaled.nc4) == pytest.approx(float(a.nc4), abs=1.5 / len(y))


@FAST
@given(seed=SEEDS, cuts=st.lists(st.integers(1, 30), min_size=1, max_size=5))
def test_streaming_over_any_split_equals_one_shot(seed: int, cuts: list[int]) -> None:
    x, y, w, b = clustered(seed)
    bounds = sorted({0, len(y), *(min(c, len(y)) for c in cuts)})
    metric = NeuralCollapse(4, classifier=w, bias=b)
    for lo, hi in itertools.pairwise(bounds):
        metric.update(x[lo:hi], y[lo:hi])
    for lo, hi in itertools.pairwise(bounds):
        metric.update_nc4(x[lo:hi])
    assert_results_close(metric.compute(), neural_collapse(x, y, classifier=w, bias=b))


@FAST
@given(seed=SEEDS, chunk=st.integers(1, 40))
def test_chunk_size_does_not_change_the_result(seed: int, chunk: int) -> None:
    x, y, _, _ = clustered(seed)
    assert_results_close(neural_collapse(x, y, chunk_size=chunk), neural_collapse(x, y))


# ---------------------------------------------------------------------------------------
# The streaming class


def test_streaming_first_pass_has_no_nc4_and_the_second_pass_adds_it() -> None:
    x, y, w, b = clustered(11)
    metric = NeuralCollapse(4, classifier=w, bias=b)
    metric.update(x, y)
    assert metric.compute().nc4 is None
    metric.update_nc4(x[:10])
    metric.update_nc4(x[10:])
    expected = neural_collapse(x, y, classifier=w, bias=b).nc4
    assert float(metric.compute().nc4) == pytest.approx(float(expected))


def test_update_after_update_nc4_starts_a_new_first_pass() -> None:
    x, y, w, _ = clustered(12)
    metric = NeuralCollapse(4, classifier=w)
    metric.update(x, y)
    metric.update_nc4(x)
    metric.update(x, y)
    assert metric.compute().nc4 is None


def test_reset_forgets_both_passes() -> None:
    x, y, w, _ = clustered(13)
    metric = NeuralCollapse(4, classifier=w)
    metric.update(x + 100.0, y)
    metric.update_nc4(x)
    metric.reset()
    metric.update(x, y)
    metric.update_nc4(x)
    assert_results_close(metric.compute(), neural_collapse(x, y, classifier=w))


def test_calling_the_metric_updates_it_and_returns_none() -> None:
    x, y, _, _ = clustered(14)
    metric = NeuralCollapse(4, num_features=6)
    assert metric(x, y) is None
    assert_results_close(metric.compute(), neural_collapse(x, y))


def test_compute_midway_then_more_batches() -> None:
    # compute() flushes the pending sums and releases the shifts; later batches pick new ones.
    x, y, _, _ = clustered(15, per_class=(4, 8))
    order = torch.argsort(y, stable=True)
    first = torch.cat([order[y[order] == k][:2] for k in range(4)])  # 2 samples per class
    rest = torch.cat([order[y[order] == k][2:] for k in range(4)])
    metric = NeuralCollapse(4, num_features=6)
    metric.update(x[first], y[first])
    midway = metric.compute()
    assert_results_close(midway, neural_collapse(x[first], y[first]))
    metric.update(x[rest], y[rest])
    assert_results_close(
        metric.compute(), neural_collapse(x[torch.cat([first, rest])], y[torch.cat([first, rest])])
    )


def test_merge_state_of_two_shards() -> None:
    x, y, w, b = clustered(16)
    first, second = NeuralCollapse(4, classifier=w, bias=b), NeuralCollapse(4, classifier=w)
    first.update(x[:15], y[:15])
    second.update(x[15:], y[15:])
    first.merge_state(second)
    expected = neural_collapse(x, y, classifier=w)
    assert_results_close(first.compute(), expected, skip=("nc4",))


def test_class_means_that_drift_between_batches() -> None:
    # The shift of a class is its mean in its first batch; later samples far from it are
    # still summed exactly (float64 data: agreement to rounding).
    x, y, _, _ = clustered(17)
    x = x.clone()
    half = len(y) // 2
    x[half:] += 1000.0 * (y[half:, None] + 1)
    metric = NeuralCollapse(4, num_features=6)
    metric.update(x[:half], y[:half])
    metric.update(x[half:], y[half:])
    assert_results_close(metric.compute(), neural_collapse(x, y), rtol=1e-8)


def test_float64_then_float32_batches() -> None:
    # A shift set from float64 data is rounded to float32, so float32 batches use it exactly.
    x, y, _, _ = clustered(18, per_class=(6, 9))
    x32 = x.float()
    metric = NeuralCollapse(4, num_features=6)
    metric.update(x[:20], y[:20])
    metric.update(x32[20:], y[20:])
    expected = neural_collapse(torch.cat([x[:20], x32[20:].double()]), y)
    assert_results_close(metric.compute(), expected, rtol=1e-6, atol=1e-9)


def test_thousand_classes_by_512_dims_streams_like_one_shot() -> None:
    # 1,000 classes × 512 dims, 3 samples per class (C - 1 > d: Σ_B of rank 512), float32,
    # streamed in 7 batches; states 6 MB. float32 products: agreement to ~1e-6.
    g = torch.Generator().manual_seed(0)
    c, d = 1000, 512
    centers = torch.randn(c, d, generator=g)
    y = torch.arange(c).repeat(3)[torch.randperm(3 * c, generator=g)]
    x = centers[y] + 0.3 * torch.randn(3 * c, d, generator=g)
    w = torch.randn(c, d, generator=g)
    metric = NeuralCollapse(c, classifier=w)
    for xb, yb in zip(x.chunk(7), y.chunk(7), strict=True):
        metric.update(xb, yb)
    for xb in x.chunk(7):
        metric.update_nc4(xb)
    streamed = metric.compute()
    one_shot = neural_collapse(x, y, classifier=w)
    assert streamed.between_rank == d
    assert_results_close(streamed, one_shot, rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------------------------------
# Bad input


def test_labels_not_matching_n() -> None:
    x, y, _, _ = clustered(0)
    with pytest.raises(ShapeError, match=r"labels has 5 entries but the representation has"):
        neural_collapse(x, y[:5])


def test_class_with_one_sample() -> None:
    x, y, _ = etf_with_isotropic_noise(3, 4, SIGMA)
    keep = torch.ones(len(y), dtype=torch.bool)
    keep[(y == 2).nonzero().flatten()[1:]] = False
    with pytest.raises(TooFewSamplesError, match=r"classes \[2\] have \[1\] samples"):
        neural_collapse(x[keep], y[keep])


def test_absent_class() -> None:
    x, y, _ = etf_with_isotropic_noise(3, 4, SIGMA)
    with pytest.raises(
        TooFewSamplesError,
        match=r"labels imply 4 classes \(num_classes = 4\) but only 3 of them have samples "
        r"\(empty: \[3\]\)",
    ):
        neural_collapse(x, y, num_classes=4)


@pytest.mark.parametrize(
    "shape, match",
    [
        (
            (3, 5),
            r"classifier must have shape \(num_classes, n_features\) = \(3, 4\), got \(3, 5\)",
        ),
        ((4, 3), r"looks transposed"),
    ],
    ids=["wrong-width", "transposed"],
)
def test_classifier_of_the_wrong_shape(shape: tuple[int, int], match: str) -> None:
    x, y, _ = etf_with_isotropic_noise(3, 4, SIGMA)
    with pytest.raises(ShapeError, match=match):
        neural_collapse(x, y, classifier=torch.randn(*shape, dtype=F64), num_classes=3)


def test_classifier_that_is_not_2d() -> None:
    x, y, _ = etf_with_isotropic_noise(3, 4, SIGMA)
    with pytest.raises(ShapeError, match=r"classifier must be a 2-D"):
        neural_collapse(x, y, classifier=torch.randn(12))


def test_bias_of_the_wrong_length() -> None:
    x, y, means = etf_with_isotropic_noise(3, 4, SIGMA)
    with pytest.raises(ShapeError, match=r"bias must be 1-D with one entry per class \(3,\)"):
        neural_collapse(x, y, classifier=means, bias=torch.zeros(4))


def test_bias_without_classifier() -> None:
    x, y, _ = etf_with_isotropic_noise(3, 4, SIGMA)
    with pytest.raises(InvalidOptionError, match=r"bias was given without classifier"):
        neural_collapse(x, y, bias=torch.zeros(3))


@pytest.mark.parametrize(
    "kwargs", [{}, {"num_classes": 1}], ids=["one-label-value", "num_classes-1"]
)
def test_fewer_than_two_classes(kwargs: dict[str, Any]) -> None:
    x = torch.randn(6, 3, dtype=F64)
    with pytest.raises(TooFewSamplesError, match=r"at least 2 classes"):
        neural_collapse(x, torch.zeros(6, dtype=torch.int64), **kwargs)


@pytest.mark.parametrize("bad", [3, -1], ids=["too-large", "negative"])
def test_labels_out_of_range_of_num_classes(bad: int) -> None:
    x, y, _ = etf_with_isotropic_noise(3, 4, SIGMA)
    y = y.clone()
    y[0] = bad
    with pytest.raises(ShapeError, match=r"labels must lie in \[0, 3\)"):
        neural_collapse(x, y, num_classes=3)


def test_all_class_means_equal() -> None:
    e, f = torch.randn(6, 3, dtype=F64), torch.randn(6, 3, dtype=F64)
    x = torch.cat([e, -e, f, -f]) + 1.0  # both classes have mean (1, 1, 1)
    y = torch.arange(2).repeat_interleave(12)
    with pytest.raises(DegenerateInputError, match=r"every class has the same mean feature"):
        neural_collapse(x, y)


def test_two_classes_with_equal_means() -> None:
    x, y, means = etf_with_isotropic_noise(3, 4, SIGMA)
    x = x.clone()
    x[y == 1] += means[0] - means[1]
    with pytest.raises(DegenerateInputError, match=r"classes 0 and 1 have the same mean"):
        neural_collapse(x, y)


def test_zero_classifier_row() -> None:
    x, y, means = etf_with_isotropic_noise(3, 4, SIGMA)
    w = means.clone()
    w[1] = 0.0
    with pytest.raises(DegenerateInputError, match=r"classifier rows \[1\] have zero norm"):
        neural_collapse(x, y, classifier=w)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"global_mean": "median"}, r"global_mean must be one of 'classes', 'samples'"),
        ({"rtol": 1.5}, r"rtol must lie in \[0.0, 1.0\)"),
        ({"chunk_size": 0}, r"chunk_size must be at least 1"),
    ],
    ids=["global_mean", "rtol", "chunk_size"],
)
def test_invalid_options(kwargs: dict[str, Any], match: str) -> None:
    x, y, _ = etf_with_isotropic_noise(3, 4, SIGMA)
    with pytest.raises(InvalidOptionError, match=match):
        neural_collapse(x, y, **kwargs)


def test_streaming_needs_num_features_or_classifier() -> None:
    with pytest.raises(InvalidOptionError, match=r"needs num_features \(d\) or a classifier"):
        NeuralCollapse(3)


def test_streaming_batch_of_another_width() -> None:
    metric = NeuralCollapse(3, num_features=4)
    with pytest.raises(ShapeError, match=r"features have 5 columns .* num_features=4"):
        metric.update(torch.randn(6, 5), torch.zeros(6, dtype=torch.int64))


def test_streaming_labels_out_of_range() -> None:
    metric = NeuralCollapse(3, num_features=4)
    with pytest.raises(ShapeError, match=r"labels must lie in \[0, 3\)"):
        metric.update(torch.randn(2, 4), torch.tensor([0, 3]))


def test_streaming_nc4_without_classifier() -> None:
    metric = NeuralCollapse(3, num_features=4)
    with pytest.raises(InvalidOptionError, match=r"NC4 needs the classifier"):
        metric.update_nc4(torch.randn(2, 4))


def test_streaming_compute_before_any_data() -> None:
    metric = NeuralCollapse(3, num_features=4)
    with pytest.raises(TooFewSamplesError, match=r"classes \[0, 1, 2\] have \[0, 0, 0\] samples"):
        metric.compute()


def _three_classes_with_one_label(label: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(300, 16, generator=torch.Generator().manual_seed(0))
    y = torch.arange(300) % 3
    y[5] = label
    return x, y


@pytest.mark.parametrize(
    ("label", "error", "match"),
    [
        (10**7, TooFewSamplesError, r"labels imply 10000001 classes \(max label 10000000\) but "),
        (10**9, TooFewSamplesError, r"imply 1000000001 classes .* only 4 of them have samples"),
        (2**62, TooFewSamplesError, r"imply 4611686018427387905 classes"),
        (-1, ShapeError, r"labels must lie in \[0, 3\) .* \(min -1, max 2\)"),
    ],
    ids=["1e7", "1e9", "2**62", "negative"],
)
def test_a_stray_label_is_refused_before_anything_is_sized_by_it(
    label: int, error: type[Exception], match: str
) -> None:
    x, y = _three_classes_with_one_label(label)
    with address_space_headroom(), pytest.raises(error, match=match):
        neural_collapse(x, y)


def test_num_classes_beyond_the_samples_is_refused_before_allocating() -> None:
    x, y = _three_classes_with_one_label(0)
    with address_space_headroom(), pytest.raises(TooFewSamplesError, match=r"imply 10000000 "):
        neural_collapse(x, y, num_classes=10**7)


def test_streaming_honors_num_classes_missing_from_early_batches() -> None:
    x, y, _ = etf_with_isotropic_noise(4, 5, SIGMA)
    order = torch.argsort(y, stable=True)  # class 3 only in the last batch
    metric = NeuralCollapse(4, num_features=5)
    for xb, yb in zip(x[order].chunk(4), y[order].chunk(4), strict=True):
        metric.update(xb, yb)
    assert_results_close(metric.compute(), neural_collapse(x, y), rtol=1e-9, atol=1e-12)


def test_streaming_num_classes_that_cannot_fit_is_refused() -> None:
    with (
        address_space_headroom(),
        pytest.raises(
            InvalidOptionError, match=r"num_classes=1000000000000 needs the float64 states"
        ),
    ):
        NeuralCollapse(10**12, num_features=16)


# ---------------------------------------------------------------------------------------
# Under torch.distributed (2 CPU ranks over gloo)


def _collapse_on_ranks(
    rank: int, world_size: int, x: np.ndarray, y: np.ndarray, w: np.ndarray
) -> dict[str, float]:
    rows = rank_rows(len(y), rank, world_size)
    metric = NeuralCollapse(int(w.shape[0]), classifier=torch.from_numpy(w))
    xr, yr = torch.from_numpy(x[rows]), torch.from_numpy(y[rows])
    for start in range(0, len(yr), 7):
        metric.update(xr[start : start + 7], yr[start : start + 7])
    for start in range(0, len(yr), 7):
        metric.update_nc4(xr[start : start + 7])
    result = metric.compute()
    return {name: float(getattr(result, name)) for name in SCALARS}


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessGroupPool]:
    with ProcessGroupPool(2, timeout=60.0) as p:
        yield p


@pytest.mark.distributed
@pytest.mark.skipif(not distributed_available(), reason="torch.distributed with gloo needed")
def test_every_rank_gets_the_one_shot_result(pool: ProcessGroupPool) -> None:
    # float64 data and states: only the summation order differs between ranks and one-shot.
    x, y, w, _ = clustered(21, c=4, d=5, per_class=(5, 9))
    expected = neural_collapse(x, y, classifier=w)
    for value in pool.run(_collapse_on_ranks, x.numpy(), y.numpy(), w.numpy()):
        for name in SCALARS:
            assert value[name] == pytest.approx(float(getattr(expected, name)), rel=1e-9)


# ---------------------------------------------------------------------------------------
# Imbalanced classes: orthogonal frame (Dang et al. 2023)

COUNTS = [60.0, 30.0, 12.0, 5.0]


def _objective(s: torch.Tensor, n_k: torch.Tensor, n: float, depth: int, lh: float, lw: float):
    x = s**2
    return n_k * lh / (2 * (x**depth + n * lh)) + depth * lw * x / 2


def test_scales_for_one_layer_have_the_closed_form() -> None:
    n_k = torch.tensor(COUNTS, dtype=F64)
    s = orthogonal_frame_scales(n_k, feature_decay=1e-3, weight_decay=2e-3)
    expected = (torch.sqrt(n_k * 1e-3 / 2e-3) - n_k.sum() * 1e-3).clamp(min=0).sqrt()
    torch.testing.assert_close(s, expected, rtol=1e-14, atol=0.0)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_scales_minimize_each_class_share_of_the_objective(depth: int) -> None:
    # g(s) on a fine grid never goes below g(s_k): s_k is the global minimizer per class.
    n_k = torch.tensor(COUNTS, dtype=F64)
    lh, lw = 2e-3, 1e-3
    s = orthogonal_frame_scales(n_k, depth=depth, feature_decay=lh, weight_decay=lw)
    grid = torch.linspace(0.0, 3.0 * float(s.max()) + 1.0, 20001, dtype=F64)
    for k in range(len(COUNTS)):
        at_s = _objective(s[k], n_k[k], n_k.sum(), depth, lh, lw)
        on_grid = _objective(grid, n_k[k], n_k.sum(), depth, lh, lw)
        assert float(at_s) <= float(on_grid.min()) + 1e-12


def test_minority_classes_collapse_to_zero() -> None:
    s = orthogonal_frame_scales(
        torch.tensor([1000.0, 1.0], dtype=F64), feature_decay=1e-2, weight_decay=1e-2
    )
    assert float(s[0]) > 0 and float(s[1]) == 0.0


def test_per_layer_weight_decays_enter_by_their_geometric_mean() -> None:
    n_k = torch.tensor(COUNTS, dtype=F64)
    a = orthogonal_frame_scales(n_k, depth=2, feature_decay=1e-3, weight_decay=[1e-3, 4e-3])
    b = orthogonal_frame_scales(n_k, depth=2, feature_decay=1e-3, weight_decay=2e-3)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=0.0)


def frame_data(
    depth: int, seed: int = 0, noise: float = 0.05
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Features and classifier exactly at the predicted geometry, symmetric noise around
    the class means (so that H̄ is exact)."""
    options = {"depth": depth, "feature_decay": 1e-3, "weight_decay": 1e-3}
    n_k = torch.tensor(COUNTS, dtype=F64)
    s = orthogonal_frame_scales(n_k, **options)
    a = s ** (2 * depth)
    d = 6
    q = orthogonal(np.random.default_rng(seed), d)[:, :4]  # orthonormal columns
    w = (a.sqrt()[:, None] * q.T) * 1.7  # any common scale
    h_bar = w / (a + n_k.sum() * 1e-3)[:, None] * 0.3
    xs, ys = [], []
    rng = np.random.default_rng(seed + 1)
    for k, n in enumerate(COUNTS):
        e = torch.from_numpy(rng.normal(size=(int(n) // 2, d))) * noise
        xs.append(h_bar[k] + torch.cat([e, -e]))
        ys.append(torch.full((2 * (int(n) // 2),), k))
    # the odd class (5 samples) gets its mean once more: H̄ unchanged
    xs.append(h_bar[3:4])
    ys.append(torch.tensor([3]))
    return torch.cat(xs), torch.cat(ys), w, options


@pytest.mark.parametrize("depth", [1, 2])
def test_orthogonal_frame_distances_vanish_at_the_targets(depth: int) -> None:
    x, y, w, options = frame_data(depth)
    result = orthogonal_frame_distances(x, y, w, **options)
    for name in ("classifier_gram", "mean_gram", "classifier_means"):
        assert float(getattr(result, name)) == pytest.approx(0.0, abs=1e-12), name


def test_orthogonal_frame_distances_see_a_balanced_etf_as_off_target() -> None:
    x, y, means = etf_with_isotropic_noise(4, 5, SIGMA)
    result = orthogonal_frame_distances(x, y, means)
    assert float(result.classifier_gram) > 0.1


@FAST
@given(seed=SEEDS)
def test_orthogonal_frame_distances_are_rotation_and_relabeling_invariant(seed: int) -> None:
    x, y, w, _ = clustered(seed, c=4, d=6)
    rng = np.random.default_rng(seed)
    q = orthogonal(rng, 6)
    perm = torch.from_numpy(rng.permutation(4))
    w2 = torch.empty_like(w)
    w2[perm] = w
    base = orthogonal_frame_distances(x, y, w)
    for other in (
        orthogonal_frame_distances(x @ q, y, w @ q),
        orthogonal_frame_distances(x, perm[y], w2),
    ):
        for name in ("classifier_gram", "mean_gram", "classifier_means"):
            assert float(getattr(other, name)) == pytest.approx(
                float(getattr(base, name)), rel=1e-9, abs=1e-12
            )


def test_orthogonal_frame_scales_can_be_given() -> None:
    x, y, w, options = frame_data(1)
    s = orthogonal_frame_scales(torch.tensor(COUNTS), **options)
    result = orthogonal_frame_distances(x, y, w, scales=s, feature_decay=1e-3)
    assert float(result.mean_gram) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"class_counts": [1.0, 2.0]}, ShapeError, r"class_counts must have one entry per class"),
        ({"scales": [1.0, -1.0, 1.0, 1.0]}, ShapeError, r"scales must hold \(4,\) finite"),
        ({"depth": 2, "weight_decay": [1e-3]}, InvalidOptionError, r"weight_decay has 1 entries"),
        ({"feature_decay": 0.0}, InvalidOptionError, r"feature_decay must lie in \(0.0, inf\)"),
        ({"feature_decay": 10.0, "weight_decay": 10.0}, DegenerateInputError, r"every s_k is 0"),
    ],
    ids=["class_counts", "scales", "weight_decay", "feature_decay", "all-collapsed"],
)
def test_orthogonal_frame_bad_input(kwargs: dict[str, Any], error: type, match: str) -> None:
    x, y, w, _ = clustered(0)
    with pytest.raises(error, match=match):
        orthogonal_frame_distances(x, y, w, **kwargs)


def test_orthogonal_frame_refuses_a_class_without_samples() -> None:
    x, y, w, _ = clustered(0)
    keep = y != 1
    with pytest.raises(TooFewSamplesError, match=r"labels imply 4 classes .* \(empty: \[1\]\)"):
        orthogonal_frame_distances(x[keep], y[keep], w)


def test_orthogonal_frame_needs_a_classifier() -> None:
    x, y, _, _ = clustered(0)
    with pytest.raises(
        InvalidOptionError, match=r"orthogonal_frame_distances needs the classifier"
    ):
        orthogonal_frame_distances(x, y, None)


# ---------------------------------------------------------------------------------------
# Mixup geometry (Fisher et al. 2024)


def mixup_case(seed: int = 0, n: int = 60, c: int = 4, d: int = 5) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    return {
        "features": torch.from_numpy(rng.normal(size=(n, d))),
        "labels_a": torch.from_numpy(rng.integers(0, c, size=n)),
        "labels_b": torch.from_numpy(rng.integers(0, c, size=n)),
        "lam": torch.from_numpy(rng.uniform(size=n)),
        "classifier": torch.from_numpy(rng.normal(size=(c, d))),
        "bias": torch.from_numpy(rng.normal(size=c)),
    }


def test_mixup_on_the_pair_boundary_and_on_the_classifier_row() -> None:
    w = simplex_etf(3, 4)
    features = torch.stack([w[0] + w[1], w[0], 2.0 * w[2]])
    result = mixup_geometry(
        features, torch.tensor([0, 0, 2]), torch.tensor([1, 1, 2]), 0.5, w, bins=2
    )
    assert float(result.margin[0]) == pytest.approx(0.0, abs=1e-12)  # on the 0|1 boundary
    assert float(result.cos_a[0]) == pytest.approx(float(result.cos_b[0]))
    assert float(result.cos_a[1]) == pytest.approx(1.0)
    # h = w_0: ((w_0 - w_1)·w_0)/||w_0 - w_1|| = (1 + 1/2)/sqrt(3) for a unit ETF with C = 3
    assert float(result.margin[1]) == pytest.approx(1.5 / math.sqrt(3.0))
    # same-class: distance 2·(1.5/sqrt 3) to the nearest boundary of class 2
    assert float(result.margin[2]) == pytest.approx(3.0 / math.sqrt(3.0))
    assert bool(result.same_class.tolist() == [False, False, True])


def test_mixup_same_class_margin_is_the_nearest_boundary() -> None:
    case = mixup_case(1)
    case["labels_b"] = case["labels_a"]
    result = mixup_geometry(**case)
    w, b, h = case["classifier"], case["bias"], case["features"]
    logits = h @ w.T + b
    for i in range(5):
        a = int(case["labels_a"][i])
        dists = [
            float((logits[i, a] - logits[i, k]) / (w[a] - w[k]).norm())
            for k in range(w.shape[0])
            if k != a
        ]
        assert float(result.margin[i]) == pytest.approx(min(dists))


def test_mixup_bins_are_means_of_their_samples() -> None:
    case = mixup_case(2)
    result = mixup_geometry(**case, bins=[0.0, 0.3, 0.7, 1.0])
    lam, same = case["lam"], result.same_class
    for kind, stats in (("same", result.same), ("different", result.different)):
        mask_kind = same if kind == "same" else ~same
        for i, (lo, hi) in enumerate([(0.0, 0.3), (0.3, 0.7), (0.7, 1.0)]):
            mask = mask_kind & (lam >= lo) & (lam < hi)
            assert int(stats.count[i]) == int(mask.sum())
            if mask.any():
                assert float(stats.cos_a[i]) == pytest.approx(float(result.cos_a[mask].mean()))
                assert float(stats.margin_std[i]) == pytest.approx(
                    float(result.margin[mask].std(unbiased=False)), abs=1e-12
                )
                assert float(stats.prob_b[i]) == pytest.approx(float(result.prob_b[mask].mean()))


def test_mixup_empty_bins_have_count_zero_and_nan_statistics() -> None:
    case = mixup_case(3)
    case["lam"] = torch.full_like(case["lam"], 0.95)
    result = mixup_geometry(**case, bins=4)
    assert int(result.different.count[0]) == 0
    assert math.isnan(float(result.different.margin[0]))


def test_mixup_swapping_the_pair_flips_the_margin() -> None:
    case = mixup_case(4)
    swapped = dict(case, labels_a=case["labels_b"], labels_b=case["labels_a"], lam=1 - case["lam"])
    a, b = mixup_geometry(**case), mixup_geometry(**swapped)
    diff = ~a.same_class
    torch.testing.assert_close(a.margin[diff], -b.margin[diff], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(a.cos_a, b.cos_b, rtol=0.0, atol=0.0)


@FAST
@given(seed=SEEDS)
def test_mixup_rotation_invariance(seed: int) -> None:
    case = mixup_case(seed)
    q = orthogonal(np.random.default_rng(seed), 5)
    rotated = dict(case, features=case["features"] @ q, classifier=case["classifier"] @ q)
    a, b = mixup_geometry(**case), mixup_geometry(**rotated)
    for name in ("cos_a", "cos_b", "margin", "prob_a", "prob_b"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"lam": 1.5}, InvalidOptionError, r"lam must lie in \[0.0, 1.0\]"),
        ({"lam": torch.full((60,), -0.1, dtype=F64)}, InvalidOptionError, r"lam must lie in"),
        ({"lam": torch.zeros(3)}, ShapeError, r"lam must be a number or hold one weight"),
        ({"bins": [0.5, 0.2]}, InvalidOptionError, r"bins must be a positive integer or an"),
        ({"bins": [0.2, 0.5]}, InvalidOptionError, r"lie outside the bins"),
        ({"labels_b": torch.full((60,), 4)}, ShapeError, r"labels_b must lie in \[0, 4\)"),
        ({"labels_a": torch.zeros(5, dtype=torch.int64)}, ShapeError, r"labels_a has 5 entries"),
        ({"classifier": torch.zeros(4, 5, dtype=F64)}, DegenerateInputError, r"zero norm"),
    ],
    ids=[
        "lam-scalar",
        "lam-negative",
        "lam-shape",
        "bins-order",
        "bins-range",
        "labels_b",
        "labels_a-length",
        "zero-classifier",
    ],
)
def test_mixup_bad_input(change: dict[str, Any], error: type, match: str) -> None:
    case = dict(mixup_case(5), **change)
    if "classifier" in change:
        case["bias"] = None
    with pytest.raises(error, match=match):
        mixup_geometry(**case)


def test_mixup_identical_classifier_rows() -> None:
    case = mixup_case(6)
    case["classifier"][1] = case["classifier"][0]
    with pytest.raises(DegenerateInputError, match=r"classifier rows 0 and 1 are identical"):
        mixup_geometry(**case)


def test_mixup_bins_that_cannot_fit_are_refused() -> None:
    with (
        address_space_headroom(),
        pytest.raises(
            InvalidOptionError, match=r"bins=1000000000000000 needs the λ bins and their statistics"
        ),
    ):
        mixup_geometry(**mixup_case(7), bins=10**15)


# ---------------------------------------------------------------------------------------
# Classifier geometry ("Understanding Robustness Lottery")


def test_classifier_geometry_on_a_hand_example() -> None:
    w = torch.eye(2, dtype=F64)
    features = torch.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=F64)
    result = classifier_geometry(features, torch.tensor([0, 0]), w, bias=torch.tensor([0.0, 0.5]))
    torch.testing.assert_close(result.feature_norm, torch.tensor([10.0, 5.0], dtype=F64).sqrt())
    torch.testing.assert_close(result.cos_true, torch.tensor([3 / 10**0.5, 1 / 5**0.5], dtype=F64))
    torch.testing.assert_close(result.margin, torch.tensor([1.5, -1.5], dtype=F64))
    assert result.correct.tolist() == [True, False]
    assert float(result.accuracy) == 0.5


@FAST
@given(seed=SEEDS)
def test_classifier_margin_is_positive_exactly_when_correct(seed: int) -> None:
    x, y, w, b = clustered(seed)
    result = classifier_geometry(x, y, w, bias=b)
    assert torch.equal(result.margin > 0, result.correct)


@FAST
@given(seed=SEEDS)
def test_classifier_geometry_rotation_invariance(seed: int) -> None:
    x, y, w, b = clustered(seed)
    q = orthogonal(np.random.default_rng(seed), x.shape[1])
    a = classifier_geometry(x, y, w, bias=b)
    r = classifier_geometry(x @ q, y, w @ q, bias=b)
    for name in ("feature_norm", "row_norms", "cos_true", "margin"):
        torch.testing.assert_close(getattr(a, name), getattr(r, name), rtol=1e-9, atol=1e-10)


def test_compare_a_model_with_itself() -> None:
    x, y, w, b = clustered(30)
    g = classifier_geometry(x, y, w, bias=b)
    cmp = compare_classifier_geometry(g, g)
    assert float(cmp.agreement) == 1.0 and float(cmp.gained) == float(cmp.lost) == 0.0
    assert float(cmp.margin_change.abs().max()) == 0.0


def test_compare_dense_and_pruned() -> None:
    # "Pruning" half of the classifier's columns: changes are the differences b - a.
    x, y, w, b = clustered(31)
    pruned = w.clone()
    pruned[:, ::2] = 0.0
    dense_g = classifier_geometry(x, y, w, bias=b)
    pruned_g = classifier_geometry(x, y, pruned, bias=b)
    cmp = compare_classifier_geometry(dense_g, pruned_g)
    torch.testing.assert_close(cmp.margin_change, pruned_g.margin - dense_g.margin)
    torch.testing.assert_close(cmp.row_norm_change, pruned_g.row_norms - dense_g.row_norms)
    assert float(cmp.accuracy_b - cmp.accuracy_a) == pytest.approx(float(cmp.gained - cmp.lost))


def test_compare_needs_the_same_samples() -> None:
    x, y, w, b = clustered(32)
    a = classifier_geometry(x, y, w, bias=b)
    other = classifier_geometry(x[:-1], y[:-1], w, bias=b)
    with pytest.raises(ShapeError, match=r"a and b must describe the same samples"):
        compare_classifier_geometry(a, other)


def test_compare_needs_classifier_geometries() -> None:
    x, y, w, _ = clustered(33)
    a = classifier_geometry(x, y, w)
    with pytest.raises(InputTypeError, match=r"b must be a ClassifierGeometry"):
        compare_classifier_geometry(a, "dense")  # type: ignore[arg-type]


def test_classifier_geometry_zero_feature_row() -> None:
    x, y, w, _ = clustered(34)
    x = x.clone()
    x[2] = 0.0
    with pytest.raises(
        DegenerateInputError, match=r"1 feature rows have zero norm \(first: \[2\]\)"
    ):
        classifier_geometry(x, y, w)


def test_classifier_geometry_allows_classes_without_samples() -> None:
    x, y, w, b = clustered(36)
    keep = y != 2  # class 2 keeps its classifier row but has no sample
    result = classifier_geometry(x[keep], y[keep], w, bias=b)
    assert result.row_norms.shape == (4,)


def test_classifier_geometry_refuses_a_stray_label() -> None:
    x, y, w, _ = clustered(37)
    y = y.clone()
    y[0] = 10**9
    with address_space_headroom(), pytest.raises(ShapeError, match=r"labels must lie in \[0, 4\)"):
        classifier_geometry(x, y, w)


def test_classifier_geometry_wrong_classifier_shape() -> None:
    x, y, _, _ = clustered(35)
    with pytest.raises(ShapeError, match=r"= \(4, 6\), got \(4, 5\)"):
        classifier_geometry(x, y, torch.randn(4, 5, dtype=F64))
