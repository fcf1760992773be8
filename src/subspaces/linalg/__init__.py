"""Shared numerics (floor 1): streaming moments, decompositions, nearest neighbours."""

from subspaces.linalg.moments import (
    DEFAULT_CHUNK_SIZE,
    MOMENT_STATES,
    CentredMoments,
    MomentSums,
    RowNormSums,
    accumulate_moments,
    centre_moments,
    paired_moments,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MOMENT_STATES",
    "CentredMoments",
    "MomentSums",
    "RowNormSums",
    "accumulate_moments",
    "centre_moments",
    "paired_moments",
]
