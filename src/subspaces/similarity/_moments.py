"""The step every moment-based measure of this family starts from (private to similarity).

CCA (:mod:`~subspaces.similarity.cca`), linear regression
(:mod:`~subspaces.similarity.regression`) and the shape metrics
(:mod:`~subspaces.similarity.shape`) validate the pair, accumulate its centered moments
with float64 products, and take their default rank tolerance from the inputs' dtype.
"""

from __future__ import annotations

from typing import Any

import torch

from subspaces._checks import check_paired
from subspaces.linalg.moments import CenteredMoments, paired_moments64


def paired_float64_moments(
    x: Any, y: Any, *, chunk_size: int
) -> tuple[CenteredMoments, torch.dtype]:
    """Validate ``x`` and ``y`` as a pair and form their centered moments (float64 products).

    Returns the moments and the pair's common input dtype (float32 or float64), from which
    the ``*_from_moments`` cores take their default rank tolerance.
    """
    tx, ty = check_paired(x, y)
    return paired_moments64(tx, ty, chunk_size=chunk_size), tx.dtype
