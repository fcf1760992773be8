"""Paired retrieval ranks in row blocks (floor 1).

Query ``i`` should retrieve target ``i`` among all targets. Shared by the translation and
class-retrieval scores of :mod:`subspaces.align` and by relative retrieval in
:mod:`subspaces.similarity`, so they all rank the same way.
"""

from __future__ import annotations

import torch
from torch import Tensor

from subspaces.linalg.constants import CHUNK_SIZE, rows_within_budget

__all__ = ["paired_ranks"]


def paired_ranks(queries: Tensor, targets: Tensor, *, chunk_size: int = CHUNK_SIZE) -> Tensor:
    """``rank_i = #{j : <q_i, t_j> >= <q_i, t_i>}`` for every query, as float64.

    The score is the inner product of the rows as given (pass unit rows for cosine
    retrieval). The own target counts once, so ``rank_i >= 1``; ties count *against* the
    query, so a query scoring the same against every target (e.g. a zero row) gets rank n,
    never a hit. Queries are processed in chunks of rows, at most ``chunk_size`` and fewer
    where a chunk would exceed 256 MiB (:func:`~subspaces.linalg.constants.rows_within_budget`):
    memory O(chunk × n), never n × n. ``queries`` and ``targets``: validated ``(n, d)``
    tensors of one dtype and device (for cosine scores, rows from
    :func:`~subspaces.linalg.normalize.normalize_rows`).

    Examples:
        >>> import torch
        >>> q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        >>> t = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
        >>> paired_ranks(q, t).tolist()  # query 3 scores its own target lowest
        [1.0, 1.0, 3.0]
    """
    n = queries.shape[0]
    # per query row: its scores over the n targets and the boolean comparison with its own
    chunk = rows_within_budget(chunk_size, targets.shape[0] * (queries.element_size() + 1))
    ranks = torch.empty(n, dtype=torch.float64, device=queries.device)
    for start in range(0, n, chunk):
        scores = queries[start : start + chunk] @ targets.T  # (chunk, n)
        rows = torch.arange(scores.shape[0], device=queries.device)
        own = scores[rows, start + rows].unsqueeze(1)
        ranks[start : start + scores.shape[0]] = (scores >= own).sum(dim=1).to(torch.float64)
    return ranks
