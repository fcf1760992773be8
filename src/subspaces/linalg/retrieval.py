"""Paired retrieval ranks in row blocks (floor 1).

Query ``i`` should retrieve target ``i`` among all targets. Shared by
:func:`subspaces.align.translators.translation_scores` and
:func:`subspaces.similarity.relative.relative_retrieval`, so both rank the same way.
"""

from __future__ import annotations

import torch
from torch import Tensor

from subspaces._checks import DegenerateInputError
from subspaces.linalg.scaling import rescaled, row_norms

__all__ = ["paired_ranks", "unit_rows"]


def unit_rows(t: Tensor, *, name: str) -> Tensor:
    """The rows of ``t`` divided by their Euclidean norm, for cosine scores, in ``t``'s dtype.

    At any finite scale: ``t`` is first brought into range by an exact power of two
    (:func:`~subspaces.linalg.scaling.rescaled`) and the norms are taken in float64, so no
    norm overflows (float32 squares of 1e20) or vanishes (squares of 1e-25).

    Raises:
        DegenerateInputError: a row of zero norm (its cosine with anything is undefined).
    """
    t = rescaled(t)
    norms = row_norms(t, keepdim=True)
    zero = int((norms == 0).sum())
    if zero:
        raise DegenerateInputError(
            f"{name} has {zero} rows of zero norm (shape {tuple(t.shape)}), whose cosine "
            "similarity is undefined; remove them."
        )
    return t / norms.to(t.dtype)


def paired_ranks(queries: Tensor, targets: Tensor, *, block_size: int) -> Tensor:
    """``rank_i = #{j : <q_i, t_j> >= <q_i, t_i>}`` for every query, as float64.

    The score is the inner product of the rows as given (pass unit rows for cosine
    retrieval). The own target counts once, so ``rank_i >= 1``; ties count *against* the
    query, so a query scoring the same against every target (e.g. a zero row) gets rank n,
    never a hit. Queries are processed ``block_size`` at a time: memory O(block × n), never
    n × n. ``queries`` and ``targets``: validated ``(n, d)`` tensors of one dtype and device.
    """
    n = queries.shape[0]
    ranks = torch.empty(n, dtype=torch.float64, device=queries.device)
    for start in range(0, n, block_size):
        scores = queries[start : start + block_size] @ targets.T  # (block, n)
        rows = torch.arange(scores.shape[0], device=queries.device)
        own = scores[rows, start + rows].unsqueeze(1)
        ranks[start : start + scores.shape[0]] = (scores >= own).sum(dim=1).to(torch.float64)
    return ranks
