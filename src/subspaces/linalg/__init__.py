"""Shared numerics (floor 1): streaming moments (:mod:`subspaces.linalg.moments`), the bases
of the streaming classes (:mod:`subspaces.linalg.streaming`), least squares with the one
relative ridge (:mod:`subspaces.linalg.lstsq`), row normalization
(:mod:`subspaces.linalg.normalize`), k-means (:mod:`subspaces.linalg.kmeans`), PSD
decompositions (:mod:`subspaces.linalg.decomp`), solvers whose failures are retried and then
the package's errors (:mod:`subspaces.linalg.robust`), exact nearest neighbors
(:mod:`subspaces.linalg.knn`), approximate ones (:mod:`subspaces.linalg.ann`) and paired
retrieval ranks (:mod:`subspaces.linalg.retrieval`).

``CHUNK_SIZE`` is the default ``chunk_size`` (rows processed at once) of every function;
functions whose chunk holds a (rows × n) block take fewer rows where a chunk would exceed
``MEMORY_BUDGET`` (256 MiB), through :func:`~subspaces.linalg.constants.rows_within_budget`.
"""

from subspaces.linalg.ann import ANNOptions, ApproximateKNNResult, ApproximateValue, approximate_knn
from subspaces.linalg.constants import CHUNK_SIZE, MEMORY_BUDGET, rows_within_budget
from subspaces.linalg.kmeans import KMeans, kmeans
from subspaces.linalg.lstsq import (
    LeastSquares,
    RidgeEigh,
    check_ridge,
    lstsq_from_moments,
    ridge_eigh,
    ridge_value,
)
from subspaces.linalg.metric import StreamingMetric
from subspaces.linalg.moments import (
    MOMENT_STATES,
    CenteredMoments,
    MomentsMetric,
    MomentSums,
    RowNormSums,
    accumulate_moments,
    center_moments,
    check_moments,
    check_variance,
    merge_moments,
    paired_moments,
    paired_moments64,
    rebase_moments,
    require_moments,
)
from subspaces.linalg.normalize import normalize_rows
from subspaces.linalg.streaming import (
    DataclassResultMetric,
    Float64MomentsMetric,
    PairedMomentsMetric,
)

__all__ = [
    "CHUNK_SIZE",
    "MEMORY_BUDGET",
    "MOMENT_STATES",
    "ANNOptions",
    "ApproximateKNNResult",
    "ApproximateValue",
    "CenteredMoments",
    "DataclassResultMetric",
    "Float64MomentsMetric",
    "KMeans",
    "LeastSquares",
    "MomentSums",
    "MomentsMetric",
    "PairedMomentsMetric",
    "RidgeEigh",
    "RowNormSums",
    "StreamingMetric",
    "accumulate_moments",
    "approximate_knn",
    "center_moments",
    "check_moments",
    "check_ridge",
    "check_variance",
    "kmeans",
    "lstsq_from_moments",
    "merge_moments",
    "normalize_rows",
    "paired_moments",
    "paired_moments64",
    "rebase_moments",
    "require_moments",
    "ridge_eigh",
    "ridge_value",
    "rows_within_budget",
]
