"""float32 inputs at extreme scales (1e-30 .. 1e30): the right value or a clear error.

Every measure documented as invariant to isotropic scaling (docs/measures.md) must return, at
every scale, its value at scale 1 and nothing non-finite; every other measure must return the
float64 value on the same numbers or raise :class:`NumericRangeError`, never NaN, never a raw
exception. The data are 64 × 5 (paired: 64 × 4), float32, scaled by 10**e.

Tolerance. ``fl32(x · 10**e)`` is not ``x`` times an exact factor: each entry is rounded
afresh (relative 6e-8), so values move by that rounding times the measure's condition;
``rtol=2e-4`` covers the measures here with a wide margin. Discrete outputs (neighbor lists,
ranks, matchings) must agree exactly.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor

from subspaces import align as A
from subspaces import geometry as G
from subspaces import similarity as S
from subspaces._checks import NumericRangeError

SCALES = [1e-30, 1e-25, 1e-15, 1e20, 1e30]
RTOL = 2e-4

_N, _D = 64, 5


def _data() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(_N, _D, generator=g, dtype=torch.float64) + 0.3
    y = torch.tanh(x @ torch.randn(_D, 4, generator=g, dtype=torch.float64))
    y = y + 0.1 * torch.randn(_N, 4, generator=g, dtype=torch.float64)
    labels = torch.arange(_N) % 3
    x = x + 2.0 * torch.nn.functional.one_hot(labels, _D).to(torch.float64)  # class structure
    w = torch.randn(3, _D, generator=g, dtype=torch.float64)
    return x, y, labels, w


X, Y, LABELS, W = _data()
ANCHORS = torch.arange(8)


def _flat(v: Any) -> Tensor:
    """Every number in a result (a tensor, a dataclass of tensors, a tuple) as one vector."""
    if isinstance(v, Tensor):
        return v.detach().to(torch.float64).flatten()
    if dataclasses.is_dataclass(v):
        return _flat(tuple(getattr(v, f.name) for f in dataclasses.fields(v)))
    if isinstance(v, dict):
        return _flat(tuple(v[key] for key in sorted(v)))
    if isinstance(v, (tuple, list)):
        parts = [_flat(a) for a in v if a is not None and not isinstance(a, str)]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)
    return torch.tensor([float(v)], dtype=torch.float64)


def _stream(metric: Callable[[], Any], paired: bool = True) -> Callable[[Tensor, Tensor], Any]:
    """Update a streaming class with three uneven batches, then compute."""

    def run(x: Tensor, y: Tensor) -> Any:
        m = metric()
        for start, stop in ((0, 20), (20, 41), (41, _N)):
            if paired:
                m.update(x[start:stop], y[start:stop])
            else:
                m.update(x[start:stop])
        return m.compute()

    return run


def _stream_labels(metric: Callable[[], Any]) -> Callable[[Tensor, Tensor], Any]:
    def run(x: Tensor, y: Tensor) -> Any:
        m = metric()
        for start, stop in ((0, 20), (20, 41), (41, _N)):
            m.update(x[start:stop], LABELS[start:stop])
        return m.compute()

    return run


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(1)


def _projector(basis: Tensor) -> Tensor:
    return basis @ basis.T  # a subspace, whatever its basis' signs


def _collapse_invariants(r: Any) -> tuple[Tensor, ...]:
    return (
        r.nc1,
        r.trace_ratio,
        r.cdnv,
        r.equinorm_means,
        r.equiangularity_means,
        r.etf_distance_means,
        r.self_duality,
        r.between_rank * torch.ones(1),
    )


# Measures documented as invariant to isotropic scaling (of each side, where paired).
INVARIANT: dict[str, Callable[[Tensor, Tensor], Any]] = {
    # similarity: CKA
    "linear_cka": S.linear_cka,
    "linear_cka-debiased": lambda x, y: S.linear_cka(x, y, debiased=True),
    "LinearCKA": _stream(S.LinearCKA),
    "LinearCKA-debiased": _stream(lambda: S.LinearCKA(debiased=True)),
    "rbf_cka": S.rbf_cka,
    "rbf_cka-debiased": lambda x, y: S.rbf_cka(x, y, debiased=True),
    "minibatch_cka": lambda x, y: S.minibatch_cka(x, y, batch_size=16),
    "MinibatchCKA": _stream(S.MinibatchCKA),
    # similarity: CCA family, regression, shape metrics
    "cca_correlations": S.cca_correlations,
    "mean_cca": S.mean_cca,
    "cca_r2": S.cca_r2,
    "CCA": _stream(lambda: S.CCA(method="mean")),
    "svcca": S.svcca,
    "SVCCA": _stream(S.SVCCA),
    "pwcca": S.pwcca,
    "PWCCA": _stream(S.PWCCA),
    "linear_regression_r2": S.linear_regression_r2,
    "linear_regression_r2-ridge": lambda x, y: S.linear_regression_r2(x, y, ridge=0.1),
    "linear_regression_r2_both_ways": S.linear_regression_r2_both_ways,
    "LinearRegressionR2": _stream(S.LinearRegressionR2),
    "procrustes_distance": S.procrustes_distance,
    "angular_procrustes_distance": S.angular_procrustes_distance,
    "ProcrustesDistance": _stream(S.ProcrustesDistance),
    "shape_metric": S.shape_metric,
    "shape_metric-alpha0.5": lambda x, y: S.shape_metric(x, y, alpha=0.5),
    "ShapeMetric": _stream(lambda: S.ShapeMetric(alpha=0.5)),
    "permutation_procrustes_distance": S.permutation_procrustes_distance,
    "PermutationProcrustesDistance": _stream(S.PermutationProcrustesDistance),
    # similarity: RSA
    "rsa": S.rsa,
    "rsa-sqeuclidean-spearman": lambda x, y: S.rsa(
        x, y, dissimilarity="sqeuclidean", method="spearman"
    ),
    "rsa-correlation": lambda x, y: S.rsa(x, y, dissimilarity="correlation"),
    "rsa-cosine-kendall": lambda x, y: S.rsa(x, y, dissimilarity="cosine", method="kendall_tau_a"),
    "rsa-euclidean-cosine": lambda x, y: S.rsa(x, y, method="cosine"),
    "rdm-cosine": lambda x, y: S.rdm(x, dissimilarity="cosine"),
    "rdm-correlation": lambda x, y: S.rdm(x, dissimilarity="correlation"),
    "rsm_norm_difference-cosine": lambda x, y: S.rsm_norm_difference(x, y, rsm="cosine"),
    "rsm_norm_difference-correlation": lambda x, y: S.rsm_norm_difference(x, y, rsm="correlation"),
    "RSMNormDifference-cosine": _stream(lambda: S.RSMNormDifference(rsm="cosine")),
    "RSMNormDifference-correlation": _stream(lambda: S.RSMNormDifference(rsm="correlation")),
    # similarity: neighborhoods
    "mutual_knn": lambda x, y: S.mutual_knn(x, y, k=5),
    "mutual_knn-euclidean": lambda x, y: S.mutual_knn(x, y, k=5, metric="euclidean"),
    "knn_jaccard": lambda x, y: S.knn_jaccard(x, y, k=5),
    "rank_similarity": lambda x, y: S.rank_similarity(x, y, k=5, metric="euclidean"),
    "neighbor_lists": lambda x, y: S.neighbor_lists(x, k=5, metric="euclidean"),
    "second_order_cosine_similarity": lambda x, y: S.second_order_cosine_similarity(x, y, k=5),
    "cknna": lambda x, y: S.cknna(x, y, k=5),
    "cknna-unnormalized": lambda x, y: S.cknna(x, y, k=5, normalize=False),
    # similarity: subspaces
    "principal_angles": lambda x, y: S.principal_angles(x[:, :3], y[:, :2]),
    "grassmann_distance": lambda x, y: S.grassmann_distance(x[:, :3], y[:, :2]),
    "subspace_overlap": lambda x, y: S.subspace_overlap(x[:, :3], y[:, :2]),
    "subspace_of": lambda x, y: _projector(S.subspace_of(x, n_components=2)),
    "eigenspace_overlap": lambda x, y: S.eigenspace_overlap(x[:32], x[32:], n_components=2),
    # similarity: statistics
    "concentricity": lambda x, y: S.concentricity(x),
    "Concentricity": _stream(S.Concentricity, paired=False),
    "concentricity_difference": S.concentricity_difference,
    "ConcentricityDifference": _stream(S.ConcentricityDifference),
    "uniformity-normalize": lambda x, y: S.uniformity(x, normalize=True),
    "uniformity_difference-normalize": lambda x, y: S.uniformity_difference(x, y, normalize=True),
    # similarity: relative representations (x and its anchors scale together)
    "relative_representation": lambda x, y: S.relative_representation(x, x[ANCHORS]),
    "relative_representation-center": lambda x, y: S.relative_representation(
        x, x[ANCHORS], center=True
    ),
    "relative_representation-linear-normalize": lambda x, y: S.relative_representation(
        x, x[ANCHORS], similarity="linear", normalize=True
    ),
    "relative_representation-euclidean-normalize": lambda x, y: S.relative_representation(
        x, x[ANCHORS], similarity="euclidean", normalize=True
    ),
    "relative_similarity": lambda x, y: S.relative_similarity(x, y, anchor_indices=ANCHORS),
    "relative_similarity-euclidean": lambda x, y: S.relative_similarity(
        x, y, anchor_indices=ANCHORS, similarity="euclidean"
    ),
    "relative_retrieval": lambda x, y: S.relative_retrieval(x, y, anchor_indices=ANCHORS),
    "select_anchors-farthest_point": lambda x, y: S.select_anchors(
        x, n_anchors=5, method="farthest_point", seed=_gen()
    ),
    "pairwise-linear_cka": lambda x, y: S.pairwise([x, y]),
    "pairwise-rsa": lambda x, y: S.pairwise([x, y], measure="rsa"),
    "pairwise-mutual_knn": lambda x, y: S.pairwise([x, y], measure="mutual_knn", k=5),
    # geometry: spectrum
    "explained_variance_ratio": lambda x, y: G.covariance_spectrum(x).explained_variance_ratio,
    "effective_rank": lambda x, y: G.effective_rank(x),
    "effective_rank-eigen": lambda x, y: G.effective_rank(x, method="eigen"),
    "participation_ratio": lambda x, y: G.participation_ratio(x),
    "stable_rank": lambda x, y: G.stable_rank(x),
    "numerical_rank": lambda x, y: G.numerical_rank(x),
    "spectral_decay": lambda x, y: G.spectral_decay(x),
    "von_neumann_entropy": lambda x, y: G.von_neumann_entropy(x),
    "CovarianceSpectrum-ratio": lambda x, y: (
        _stream(G.CovarianceSpectrum, paired=False)(x, y).explained_variance_ratio
    ),
    # geometry: intrinsic dimension
    "twonn": lambda x, y: G.twonn(x),
    "twonn-mle": lambda x, y: G.twonn(x, method="mle"),
    "TwoNN": lambda x, y: G.TwoNN().fit(x).dimension_,
    "mle_id": lambda x, y: G.mle_id(x, k=10),
    "mle_id-pointwise": lambda x, y: G.mle_id(x, k=10, pointwise=True),
    "MLE": lambda x, y: G.MLE(k=10).fit(x).dimension_,
    "gride": lambda x, y: G.gride(x),
    "GRIDE": lambda x, y: G.GRIDE(k=(1, 4)).fit(x).dimension_,
    "gride_multiscale-dimension": lambda x, y: G.gride_multiscale(x, range_max=16).dimension,
    "correlation_dimension": lambda x, y: G.correlation_dimension(x),
    "CorrelationDimension": lambda x, y: G.CorrelationDimension().fit(x).dimension_,
    "id_scale_sweep-dimension": lambda x, y: G.id_scale_sweep(x, ks=[5, 10]).dimension,
    "local_pca_id": lambda x, y: G.local_pca_id(x),
    "local_pca_id-pointwise": lambda x, y: G.local_pca_id(x, pointwise=True, k=20),
    "local_pca_id-maxgap": lambda x, y: G.local_pca_id(x, method="maxgap"),
    "LocalPCA": lambda x, y: G.LocalPCA(pointwise=True, k=20).fit(x).dimension_pw_,
    # geometry: collapse
    "neural_collapse": lambda x, y: _collapse_invariants(
        G.neural_collapse(x, LABELS, classifier=W.to(x.dtype))
    ),
    "NeuralCollapse": lambda x, y: _collapse_invariants(
        _stream_labels(lambda: G.NeuralCollapse(num_classes=3, num_features=_D))(x, y)
    ),
    "mixup_geometry-cosines": lambda x, y: (lambda r: (r.cos_a, r.cos_b))(
        G.mixup_geometry(x, LABELS, (LABELS + 1) % 3, torch.linspace(0, 1, _N), W.float())
    ),
    "classifier_geometry-cos_true": lambda x, y: (
        G.classifier_geometry(x, LABELS, W.to(x.dtype)).cos_true
    ),
    "orthogonal_frame_distances": lambda x, y: G.orthogonal_frame_distances(
        x, LABELS, W.to(x.dtype)
    ),
    # align
    "unit_correlation": A.unit_correlation,
    "UnitCorrelation": _stream(A.UnitCorrelation),
    "joint_correlation": A.joint_correlation,
    "match_units": A.match_units,
    "unit_matching": A.unit_matching,
    "matched_correlation_curves": lambda x, y: A.matched_correlation_curves(x, y, seed=_gen()),
    "sparse_prediction-r2": lambda x, y: A.sparse_prediction(x, y, alphas=torch.tensor([0.01])).r2,
    "spectral_unit_clusters": lambda x, y: (
        A.spectral_unit_clusters(x, y, n_clusters=2, seed=_gen()).affinity
    ),
    "procrustes_map-rotation": lambda x, y: A.procrustes_map(x, y).rotation,
    "subspace_projection-cca": lambda x, y: (
        A.subspace_projection(x, y, n_components=3).correlations
    ),
    "subspace_projection-pls": lambda x, y: (
        A.subspace_projection(x, y, n_components=3, method="pls").correlations
    ),
    "relative_projection": lambda x, y: A.relative_projection(x, x[ANCHORS]),
    "RelativeProjection": lambda x, y: A.RelativeProjection(x[ANCHORS])(x),
    "translation_scores-cosine-retrieval": lambda x, y: (lambda s: (s.cosine, s.top_k, s.mrr))(
        A.translation_scores(x[:, :4] + 0.5 * y, y)
    ),
    "class_retrieval": lambda x, y: A.class_retrieval(x, x, LABELS, LABELS, exclude_self=True),
    "equivalence_distances": lambda x, y: A.equivalence_distances(x[:20]),
    "old_class_prototypes-normalize": lambda x, y: A.old_class_prototypes(
        x, LABELS, normalize=True
    ),
}


@functools.cache
def _at_scale_one(name: str, dtype: torch.dtype = torch.float32) -> Tensor:
    return _flat(INVARIANT[name](X.to(dtype), Y.to(dtype)))


@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"{s:.0e}")
@pytest.mark.parametrize("name", sorted(INVARIANT))
def test_scale_invariant_measure_is_unchanged_at_extreme_scales(name: str, scale: float) -> None:
    x, y = (X * scale).float(), (Y * scale).float()
    got, want = _flat(INVARIANT[name](x, y)), _at_scale_one(name)
    # NaN only where the measure has it at scale 1 too (e.g. unmatched units, empty bins)
    assert bool((torch.isfinite(got) | torch.isnan(want)).all()), f"{name}: {got}"
    torch.testing.assert_close(got, want, rtol=RTOL, atol=1e-6, equal_nan=True)


# float64 data are accepted while their largest magnitude lies in [2**-212, 2**212]
# (about 1.5e-64 to 6.6e63; the data here reach 4.5 × scale): the edges of that range.
@pytest.mark.parametrize("scale", [1e-63, 1e63], ids=lambda s: f"{s:.0e}")
@pytest.mark.parametrize("name", sorted(INVARIANT))
def test_float64_at_the_edges_of_its_range_is_unchanged(name: str, scale: float) -> None:
    got = _flat(INVARIANT[name](X * scale, Y * scale))
    want = _at_scale_one(name, torch.float64)
    # NaN only where the measure has it at scale 1 too (e.g. unmatched units, empty bins)
    assert bool((torch.isfinite(got) | torch.isnan(want)).all()), f"{name}: {got}"
    torch.testing.assert_close(got, want, rtol=RTOL, atol=1e-6, equal_nan=True)


# Measures that are not scale invariant: the float64 value on the same numbers, or a clear
# NumericRangeError where the result does not fit (never NaN, never a raw exception).
OTHERS: dict[str, Callable[[Tensor, Tensor], Any]] = {
    "rbf_cka-fixed-sigma": lambda x, y: S.rbf_cka(x, y, sigma=float(x.abs().max())),
    "rdm": lambda x, y: S.rdm(x),
    "rdm-sqeuclidean": lambda x, y: S.rdm(x, dissimilarity="sqeuclidean"),
    "rsm_norm_difference": S.rsm_norm_difference,
    "rsm_norm_difference-euclidean": lambda x, y: S.rsm_norm_difference(x, y, rsm="euclidean"),
    "RSMNormDifference": _stream(S.RSMNormDifference),
    "magnitude": lambda x, y: S.magnitude(x),
    "magnitude-mean_norm": lambda x, y: S.magnitude(x, method="mean_norm"),
    "Magnitude": _stream(S.Magnitude, paired=False),
    "magnitude_difference": S.magnitude_difference,
    "MagnitudeDifference": _stream(S.MagnitudeDifference),
    "uniformity": lambda x, y: S.uniformity(x),
    "uniformity-exclude_self": lambda x, y: S.uniformity(x, exclude_self=True),
    "uniformity_difference": S.uniformity_difference,
    "relative_representation-linear": lambda x, y: S.relative_representation(
        x, x[ANCHORS], similarity="linear"
    ),
    "relative_representation-euclidean": lambda x, y: S.relative_representation(
        x, x[ANCHORS], similarity="euclidean"
    ),
    "relative_representation-l1": lambda x, y: S.relative_representation(
        x, x[ANCHORS], similarity="l1"
    ),
    "relative_representation-linf": lambda x, y: S.relative_representation(
        x, x[ANCHORS], similarity="linf"
    ),
    "covariance_spectrum": lambda x, y: G.covariance_spectrum(x).eigenvalues,
    "CovarianceSpectrum": lambda x, y: (
        _stream(G.CovarianceSpectrum, paired=False)(x, y).eigenvalues
    ),
    "von_neumann_entropy-ridge": lambda x, y: G.von_neumann_entropy(x, ridge=0.1),
    "coding_rate": lambda x, y: G.coding_rate(x, eps=0.5),
    "CodingRate": _stream(lambda: G.CodingRate(eps=0.5), paired=False),
    "class_coding_rate": lambda x, y: G.class_coding_rate(x, LABELS, eps=0.5),
    "coding_rate_reduction": lambda x, y: G.coding_rate_reduction(x, LABELS, eps=0.5),
    "CodingRateReduction": _stream_labels(lambda: G.CodingRateReduction(num_classes=3, eps=0.5)),
    "gride_multiscale-radius": lambda x, y: G.gride_multiscale(x, range_max=16).radius,
    "id_scale_sweep-radius": lambda x, y: G.id_scale_sweep(x, ks=[5, 10]).radius,
    "neural_collapse": lambda x, y: G.neural_collapse(x, LABELS, classifier=W.to(x.dtype)),
    "NeuralCollapse": _stream_labels(lambda: G.NeuralCollapse(num_classes=3, num_features=_D)),
    "classifier_geometry": lambda x, y: G.classifier_geometry(x, LABELS, W.to(x.dtype)),
    "mixup_geometry": lambda x, y: G.mixup_geometry(
        x, LABELS, (LABELS + 1) % 3, torch.linspace(0, 1, _N, dtype=x.dtype), W.to(x.dtype)
    ),
    "translation_scores": lambda x, y: A.translation_scores(x[:, :4] + 0.5 * y, y),
    "procrustes_map": lambda x, y: A.procrustes_map(x, y, scale=True),
    "Procrustes": lambda x, y: A.Procrustes(scale=True).fit(x, y).transform(x),
    "linear_map": A.linear_map,
    "linear_map-ridge": lambda x, y: A.linear_map(x, y, ridge=0.1),
    "LinearTranslator": lambda x, y: A.LinearTranslator().fit(x, y).transform(x),
    "ProjectedAlignment": lambda x, y: A.ProjectedAlignment(n_components=3).fit(x, y).transform(x),
    "old_class_prototypes": lambda x, y: A.old_class_prototypes(x, LABELS),
}


@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"{s:.0e}")
@pytest.mark.parametrize("name", sorted(OTHERS))
def test_other_measure_gives_the_float64_value_or_a_clear_error(name: str, scale: float) -> None:
    x, y = (X * scale).float(), (Y * scale).float()
    want = _flat(OTHERS[name](x.double(), y.double()))
    try:
        got = _flat(OTHERS[name](x, y))
    except NumericRangeError as err:
        assert "rescale" in str(err)
        # refused only where the value itself does not fit float32
        size = want[torch.isfinite(want) & (want != 0)].abs()
        info = torch.finfo(torch.float32)
        assert bool(((size > info.max) | (size < info.smallest_normal)).any()), str(err)
        return
    assert bool((torch.isfinite(got) | torch.isnan(want)).all()), f"{name}: {got}"
    atol = 1e-6 * float(want[torch.isfinite(want)].abs().max())
    torch.testing.assert_close(got, want, rtol=RTOL, atol=atol, equal_nan=True)
