"""Shared numerics (floor 1): streaming moments (here), PSD decompositions
(:mod:`subspaces.linalg.decomp`), exact nearest neighbors (:mod:`subspaces.linalg.knn`)
and paired retrieval ranks (:mod:`subspaces.linalg.retrieval`)."""

from subspaces.linalg.moments import (
    DEFAULT_CHUNK_SIZE,
    MOMENT_STATES,
    CenteredMoments,
    MomentsMetric,
    MomentSums,
    RowNormSums,
    accumulate_moments,
    center_moments,
    merge_moments,
    paired_moments,
    rebase_moments,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MOMENT_STATES",
    "CenteredMoments",
    "MomentSums",
    "MomentsMetric",
    "RowNormSums",
    "accumulate_moments",
    "center_moments",
    "merge_moments",
    "paired_moments",
    "rebase_moments",
]
