"""Shared numerics (floor 1): streaming moments, decompositions, nearest neighbours."""

from subspaces.linalg.knn import KNN_METHODS, KNN_METRICS, KNNResult, knn
from subspaces.linalg.moments import (
    DEFAULT_CHUNK_SIZE,
    MOMENT_STATES,
    CentredMoments,
    MomentsMetric,
    MomentSums,
    RowNormSums,
    accumulate_moments,
    centre_moments,
    merge_moments,
    paired_moments,
    rebase_moments,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "KNN_METHODS",
    "KNN_METRICS",
    "MOMENT_STATES",
    "CentredMoments",
    "KNNResult",
    "MomentSums",
    "MomentsMetric",
    "RowNormSums",
    "accumulate_moments",
    "centre_moments",
    "knn",
    "merge_moments",
    "paired_moments",
    "rebase_moments",
]
