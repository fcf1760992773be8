"""Tests of subspaces.geometry.collapse: neural collapse (NC1-NC4, CDNV, ETF distances)
and its streaming class."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from subspaces._checks import (
    DegenerateInputError,
    InvalidOptionError,
    ShapeError,
    TooFewSamplesError,
)
from subspaces.geometry import (
    NeuralCollapse,
    neural_collapse,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _distributed import ProcessGroupPool, distributed_available, rank_rows
from _memory import address_space_headroom

from ._classes_data import (
    F64,
    FAST,
    SCALARS,
    SEEDS,
    SIGMA,
    assert_results_close,
    clustered,
    etf_with_isotropic_noise,
    naive_collapse,
    orthogonal,
    simplex_etf,
)

# ---------------------------------------------------------------------------------------
# Closed forms on an exact simplex ETF with isotropic noise

ETF_SHAPES = [(2, 3), (3, 4), (5, 8), (10, 12)]


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
    metric = NeuralCollapse(num_classes=4, classifier=w, bias=b)
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
    metric = NeuralCollapse(num_classes=4, classifier=w, bias=b)
    metric.update(x, y)
    assert metric.compute().nc4 is None
    metric.update_nc4(x[:10])
    metric.update_nc4(x[10:])
    expected = neural_collapse(x, y, classifier=w, bias=b).nc4
    assert float(metric.compute().nc4) == pytest.approx(float(expected))


def test_update_after_update_nc4_starts_a_new_first_pass() -> None:
    x, y, w, _ = clustered(12)
    metric = NeuralCollapse(num_classes=4, classifier=w)
    metric.update(x, y)
    metric.update_nc4(x)
    metric.update(x, y)
    assert metric.compute().nc4 is None


def test_reset_forgets_both_passes() -> None:
    x, y, w, _ = clustered(13)
    metric = NeuralCollapse(num_classes=4, classifier=w)
    metric.update(x + 100.0, y)
    metric.update_nc4(x)
    metric.reset()
    metric.update(x, y)
    metric.update_nc4(x)
    assert_results_close(metric.compute(), neural_collapse(x, y, classifier=w))


def test_calling_the_metric_updates_it_and_returns_none() -> None:
    x, y, _, _ = clustered(14)
    metric = NeuralCollapse(num_classes=4, num_features=6)
    assert metric(x, y) is None
    assert_results_close(metric.compute(), neural_collapse(x, y))


def test_compute_midway_then_more_batches() -> None:
    # compute() flushes the pending sums and releases the shifts; later batches pick new ones.
    x, y, _, _ = clustered(15, per_class=(4, 8))
    order = torch.argsort(y, stable=True)
    first = torch.cat([order[y[order] == k][:2] for k in range(4)])  # 2 samples per class
    rest = torch.cat([order[y[order] == k][2:] for k in range(4)])
    metric = NeuralCollapse(num_classes=4, num_features=6)
    metric.update(x[first], y[first])
    midway = metric.compute()
    assert_results_close(midway, neural_collapse(x[first], y[first]))
    metric.update(x[rest], y[rest])
    assert_results_close(
        metric.compute(), neural_collapse(x[torch.cat([first, rest])], y[torch.cat([first, rest])])
    )


def test_merge_state_of_two_shards() -> None:
    x, y, w, b = clustered(16)
    first, second = (
        NeuralCollapse(num_classes=4, classifier=w, bias=b),
        NeuralCollapse(num_classes=4, classifier=w),
    )
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
    metric = NeuralCollapse(num_classes=4, num_features=6)
    metric.update(x[:half], y[:half])
    metric.update(x[half:], y[half:])
    assert_results_close(metric.compute(), neural_collapse(x, y), rtol=1e-8)


def test_float64_then_float32_batches() -> None:
    # A shift set from float64 data is rounded to float32, so float32 batches use it exactly.
    x, y, _, _ = clustered(18, per_class=(6, 9))
    x32 = x.float()
    metric = NeuralCollapse(num_classes=4, num_features=6)
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
    metric = NeuralCollapse(num_classes=c, classifier=w)
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
    with pytest.raises(
        DegenerateInputError, match=r"the classifier has 1 rows of zero norm .*first indices \[1\]"
    ):
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
        NeuralCollapse(num_classes=3)


def test_streaming_takes_num_classes_from_the_classifier() -> None:
    w = torch.eye(3, 4, dtype=F64)
    metric = NeuralCollapse(classifier=w)
    assert (metric.num_classes, metric.num_features) == (3, 4)
    with pytest.raises(InvalidOptionError, match=r"needs num_classes \(C\) or a classifier"):
        NeuralCollapse(num_features=4)


def test_streaming_batch_of_another_width() -> None:
    metric = NeuralCollapse(num_classes=3, num_features=4)
    with pytest.raises(ShapeError, match=r"features have 5 columns .* num_features=4"):
        metric.update(torch.randn(6, 5), torch.zeros(6, dtype=torch.int64))


def test_streaming_labels_out_of_range() -> None:
    metric = NeuralCollapse(num_classes=3, num_features=4)
    with pytest.raises(ShapeError, match=r"labels must lie in \[0, 3\)"):
        metric.update(torch.randn(2, 4), torch.tensor([0, 3]))


def test_streaming_nc4_without_classifier() -> None:
    metric = NeuralCollapse(num_classes=3, num_features=4)
    with pytest.raises(InvalidOptionError, match=r"NC4 needs the classifier"):
        metric.update_nc4(torch.randn(2, 4))


@pytest.mark.filterwarnings("ignore:The ``compute`` method:UserWarning")
def test_streaming_compute_before_any_data() -> None:
    metric = NeuralCollapse(num_classes=3, num_features=4)
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
    metric = NeuralCollapse(num_classes=4, num_features=5)
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
        NeuralCollapse(num_classes=10**12, num_features=16)


# ---------------------------------------------------------------------------------------
# Under torch.distributed (2 CPU ranks over gloo)


def _collapse_on_ranks(
    rank: int, world_size: int, x: np.ndarray, y: np.ndarray, w: np.ndarray
) -> dict[str, float]:
    rows = rank_rows(len(y), rank, world_size)
    metric = NeuralCollapse(num_classes=int(w.shape[0]), classifier=torch.from_numpy(w))
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
