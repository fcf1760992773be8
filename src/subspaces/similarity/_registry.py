"""The measures :func:`subspaces.similarity.pairwise` knows by name.

Moment-based measures share each representation's mean and X^T X; neighborhood, RDM and
statistic measures compute each representation's neighbor lists, RDM or statistic once;
the rest are computed pair by pair.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import replace
from typing import Any

from torch import Tensor

from subspaces.linalg.scaling import rescaled
from subspaces.similarity import cca, cka, kernel_cka, neighbors, regression, rsa, shape, statistics
from subspaces.similarity._caveats import (
    cca_caveat,
    regression_caveat,
    shape_metric_caveat,
    svcca_caveat,
)
from subspaces.similarity.angles import eigenspace_overlap
from subspaces.similarity.cknna import cknna
from subspaces.similarity.pairwise import PairwiseMeasure, register_measure
from subspaces.similarity.relative import relative_similarity


def _cca_family(n: int, d_x: int, d_y: int, **options: Any) -> str | None:
    return cca_caveat(n, d_x, d_y)


def _debiased(options: dict[str, Any]) -> bool:
    return bool(options.get("debiased", False))


def _neighbor_options(options: dict[str, Any]) -> dict[str, Any]:
    return {key: options[key] for key in ("k", "metric", "chunk_size") if key in options}


def _neighbor_measure(name: str, core: Any) -> PairwiseMeasure:
    return PairwiseMeasure(
        name,
        symmetric=True,
        prepare=lambda x, **options: neighbors.neighbor_lists(x, **_neighbor_options(options)),
        compare=lambda ix, iy, **options: core(ix, iy),
        min_samples=2,
        options=("k", "metric", "chunk_size"),
    )


def _keyword_options(function: Any) -> tuple[str, ...]:
    params = inspect.signature(function).parameters.values()
    return tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY)


def _statistic_difference(name: str, statistic: Any) -> PairwiseMeasure:
    return PairwiseMeasure(
        name,
        symmetric=True,
        prepare=lambda x, **options: statistic(x, **options),
        compare=lambda a, b, **options: (a - b).abs(),
        min_samples=1,
        options=_keyword_options(statistic),
    )


def _without_dtype(core: Any) -> Any:
    """A moment core that needs no rank tolerance, so ignores the data's dtype."""

    def wrapped(m: Any, *, input_dtype: Any = None, **options: Any) -> Tensor:
        return core(m, **options)

    return wrapped


def _rdm(x: Tensor, **options: Any) -> Tensor:
    keep = {key: options[key] for key in ("dissimilarity", "chunk_size") if key in options}
    # RSA is invariant to scaling either side: an RDM of data brought into range (an exact
    # power of two) is compared, whose squared distances cannot overflow
    return rsa.rdm(rescaled(x), **keep)


def _compare_rdms(a: Tensor, b: Tensor, **options: Any) -> Tensor:
    return rsa.compare_rdms(a, b, method=options.get("method", "pearson"))


_MEASURES = [
    PairwiseMeasure(
        "linear_cka",
        symmetric=True,
        from_moments=cka.linear_cka_from_moments,
        row_norms=_debiased,
        min_samples=2,
    ),
    PairwiseMeasure("rbf_cka", symmetric=True, function=kernel_cka.rbf_cka, min_samples=2),
    PairwiseMeasure("minibatch_cka", symmetric=True, function=kernel_cka.minibatch_cka),
    PairwiseMeasure(
        "mean_cca",
        symmetric=True,
        from_moments=cca.mean_cca_from_moments,
        float64_products=True,
        small_sample=_cca_family,
    ),
    PairwiseMeasure(
        "cca_r2",
        symmetric=True,
        from_moments=cca.cca_r2_from_moments,
        float64_products=True,
        small_sample=_cca_family,
    ),
    PairwiseMeasure(
        "svcca",
        symmetric=True,
        from_moments=cca.svcca_from_moments,
        float64_products=True,
        small_sample=svcca_caveat,
    ),
    PairwiseMeasure(
        "pwcca",
        symmetric=False,
        from_moments=cca.pwcca_from_moments,
        float64_products=True,
        small_sample=_cca_family,
    ),
    PairwiseMeasure(
        "linear_regression_r2",
        symmetric=False,
        from_moments=regression.linear_regression_r2_from_moments,
        float64_products=True,
        small_sample=regression_caveat,
    ),
    PairwiseMeasure(
        "procrustes_distance",
        symmetric=True,
        from_moments=_without_dtype(shape.procrustes_distance_from_moments),
        float64_products=True,
        options=(),  # the distance is the measure's name
    ),
    PairwiseMeasure(
        "angular_procrustes_distance",
        symmetric=True,
        from_moments=_without_dtype(
            lambda m, **options: shape.procrustes_distance_from_moments(m, distance="angular")
        ),
        float64_products=True,
        options=(),
    ),
    PairwiseMeasure(
        "shape_metric",
        symmetric=True,
        from_moments=shape.shape_metric_from_moments,
        float64_products=True,
        small_sample=shape_metric_caveat,
    ),
    PairwiseMeasure(
        "permutation_procrustes_distance",
        symmetric=True,
        from_moments=_without_dtype(shape.permutation_procrustes_distance_from_moments),
        float64_products=True,
        options=("distance",),
    ),
    PairwiseMeasure(
        "rsa",
        symmetric=True,
        prepare=_rdm,
        compare=_compare_rdms,
        min_samples=3,
        options=("dissimilarity", "method", "chunk_size"),
    ),
    PairwiseMeasure("rsm_norm_difference", symmetric=True, function=rsa.rsm_norm_difference),
    _neighbor_measure("mutual_knn", neighbors.mutual_knn_from_neighbors),
    _neighbor_measure("knn_jaccard", neighbors.knn_jaccard_from_neighbors),
    _neighbor_measure("rank_similarity", neighbors.rank_similarity_from_neighbors),
    PairwiseMeasure("cknna", symmetric=False, function=cknna, min_samples=3),
    PairwiseMeasure(
        "second_order_cosine_similarity",
        symmetric=True,
        function=neighbors.second_order_cosine_similarity,
    ),
    _statistic_difference("magnitude_difference", statistics.magnitude),
    _statistic_difference("concentricity_difference", statistics.concentricity),
    _statistic_difference("uniformity_difference", statistics.uniformity),
    PairwiseMeasure("relative_similarity", symmetric=False, function=relative_similarity),
    PairwiseMeasure("eigenspace_overlap", symmetric=True, function=eigenspace_overlap),
]

_SQRT2 = math.sqrt(2.0)
_HALF_PI = math.pi / 2
_UNBOUNDED = (None, None)
_NON_NEGATIVE = (0.0, None)

# label, kind and range at the measure's default options (the range column of docs/measures.md);
# a similarity is higher when alike, a distance lower.
_META: dict[str, tuple[str, str, tuple[float | None, float | None]]] = {
    "linear_cka": ("linear CKA", "similarity", (0.0, 1.0)),
    "mean_cca": ("mean CCA ρ̄", "similarity", (0.0, 1.0)),
    "cca_r2": ("R²_CCA", "similarity", (0.0, 1.0)),
    "svcca": ("SVCCA", "similarity", (0.0, 1.0)),
    "pwcca": ("PWCCA", "similarity", (0.0, 1.0)),
    "procrustes_distance": ("Procrustes distance", "distance", (0.0, _SQRT2)),
    "angular_procrustes_distance": (
        "angular Procrustes distance (rad)",
        "distance",
        (0.0, _HALF_PI),
    ),
    "shape_metric": ("shape metric (rad)", "distance", (0.0, _HALF_PI)),
    "permutation_procrustes_distance": ("permutation Procrustes distance", "distance", (0.0, 2.0)),
    "mutual_knn": ("mutual kNN", "similarity", (0.0, 1.0)),
    "knn_jaccard": ("kNN Jaccard", "similarity", (0.0, 1.0)),
    "rank_similarity": ("rank similarity", "similarity", (0.0, 1.0)),
    "second_order_cosine_similarity": ("second-order cosine", "similarity", (-1.0, 1.0)),
    "cknna": ("CKNNA", "similarity", _UNBOUNDED),
    "rbf_cka": ("RBF CKA", "similarity", (0.0, 1.0)),
    "minibatch_cka": ("minibatch CKA", "similarity", (-1.0, 1.0)),
    "linear_regression_r2": ("linear regression R²", "similarity", (0.0, 1.0)),
    "eigenspace_overlap": ("eigenspace overlap", "similarity", (0.0, 1.0)),
    "rsa": ("RSA", "similarity", (-1.0, 1.0)),
    "relative_similarity": ("relative similarity", "similarity", (-1.0, 1.0)),
    "rsm_norm_difference": ("RSM norm difference", "distance", _NON_NEGATIVE),
    "magnitude_difference": ("magnitude difference", "distance", _NON_NEGATIVE),
    "concentricity_difference": ("concentricity difference", "distance", (0.0, 2.0)),
    "uniformity_difference": ("uniformity difference", "distance", _NON_NEGATIVE),
}

for _measure in _MEASURES:
    _label, _kind, _bounds = _META[_measure.name]
    register_measure(
        replace(
            _measure,
            label=_label,
            kind=_kind,  # type: ignore[arg-type]
            higher_is_better=_kind == "similarity",
            bounds=_bounds,
        )
    )
