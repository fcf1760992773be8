"""Retrieval scores of the align family: translation on held-out pairs, class retrieval.

* :func:`translation_scores` scores translated rows against their paired targets: MSE,
  mean cosine, cross-space retrieval top-k accuracy and mean reciprocal rank;
* :func:`class_retrieval` ranks a gallery for each query and scores it by class labels
  (CMC top-k and mean average precision, as in the backward-compatibility literature).

Both rank by cosine similarity in row chunks (at most ``chunk_size`` rows, fewer where a
chunk would exceed 256 MiB: memory O(chunk × n), never n × n) with
the row normalization and paired ranks of :mod:`subspaces.linalg.retrieval`, and report
``top_k`` as ``{k: 0-dim float64 fraction of queries}``, as
:class:`~subspaces.similarity.relative.RelativeRetrieval` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from subspaces._base import Result
from subspaces._checks import (
    DegenerateInputError,
    ShapeError,
    check_flag,
    check_labels,
    check_matrix,
    check_paired,
    check_positive_int,
    check_positive_ints,
    check_same_device,
)
from subspaces.linalg.constants import CHUNK_SIZE, rows_within_budget
from subspaces.linalg.normalize import normalize_rows
from subspaces.linalg.retrieval import paired_ranks

__all__ = ["ClassRetrieval", "TranslationScores", "class_retrieval", "translation_scores"]

_F64 = torch.float64


@dataclass(frozen=True)
class TranslationScores(Result):
    """How well ``y_pred`` matches ``y_true`` row by row (see :func:`translation_scores`).

    ``mse`` and ``cosine`` are 0-dim float64 tensors; ``top_k`` maps each k to the
    retrieval top-k accuracy (0-dim float64 tensors in [0, 1]); ``mrr`` is the mean
    reciprocal rank in (0, 1].

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> y = torch.randn(20, 3, generator=g, dtype=torch.float64)
        >>> s = translation_scores(y + 0.01, y, ks=(1,))
        >>> s.as_dict()["top_k"], round(float(s.mrr), 4)
        ({1: 1.0}, 1.0)
    """

    mse: Tensor
    cosine: Tensor
    top_k: dict[int, Tensor]
    mrr: Tensor


def _check_ks(ks: Any) -> tuple[int, ...]:
    return tuple(sorted(set(check_positive_ints(ks, name="ks"))))


def translation_scores(
    y_pred: Any,
    y_true: Any,
    *,
    ks: Sequence[int] = (1, 5),
    chunk_size: int = CHUNK_SIZE,
) -> TranslationScores:
    """Score translated rows ``y_pred`` against their targets ``y_true`` (held-out pairs).

    * ``mse = (1 / (n d)) Σ_ij (ŷ_ij - y_ij)²`` (the mean over entries, as
      ``torch.nn.functional.mse_loss``), accumulated in float64; ≥ 0.
    * ``cosine = (1/n) Σ_i cos(ŷ_i, y_i)``, in [-1, 1].
    * Retrieval: row ``i`` of ``y_pred`` queries the gallery of all n rows of ``y_true`` by
      cosine similarity; ``rank_i = 1 + #{j ≠ i : cos(ŷ_i, y_j) ≥ cos(ŷ_i, y_i)}``. **Ties
      count against the true match** (a gallery row scoring exactly as high ranks above
      it), so duplicated targets never inflate the scores. ``top_k[k] = (1/n) Σ 1[rank_i ≤
      k]`` in [0, 1] (chance level k / n), ``mrr = (1/n) Σ 1 / rank_i`` in (0, 1].

    The scores are computed in row chunks of ``y_pred`` (at most ``chunk_size`` rows, fewer
    where a chunk would exceed 256 MiB): memory O(chunk × n), never n × n; the true match's
    score is read from the same product as the others, so a perfect translation ranks first
    even with rounding. Products run in the inputs' dtype
    (float32 ties are ties to ~1e-7; pass float64 for finer ranks).

    Invariant to a common rotation of both arguments; the retrieval scores also to
    rescaling any row.

    Args:
        y_pred: (n, d) translated rows. y_true: (n, d) their targets, in the same order.
        ks: the k of the top-k accuracies (default 1 and 5).
        chunk_size: query rows ranked at once: rows per chunk, at most ``chunk_size`` and
            fewer where a chunk would exceed 256 MiB.

    Returns:
        A :class:`TranslationScores`.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> y = torch.randn(20, 3, generator=g, dtype=torch.float64)
        >>> s = translation_scores(y.roll(1, dims=0), y, ks=(1, 5))
        >>> float(s.top_k[1]), round(float(s.cosine), 4)
        (0.0, -0.0997)
    """
    ks_ = _check_ks(ks)
    chunk = check_positive_int(chunk_size, name="chunk_size")
    pred, true = check_paired(y_pred, y_true, names=("y_pred", "y_true"), min_samples=1)
    if pred.shape[1] != true.shape[1]:
        raise ShapeError(
            f"y_pred and y_true must have the same width, got {pred.shape[1]} and "
            f"{true.shape[1]}; translate x into y's space first (e.g. Procrustes().fit(x, y))."
        )
    mse = (pred - true).to(_F64).square().sum() / pred.numel()
    p, t = normalize_rows(pred, name="y_pred"), normalize_rows(true, name="y_true")
    p64, t64 = pred.to(_F64), true.to(_F64)  # O(n d): the paired cosines in float64
    paired = (p64 * t64).sum(1) / (p64.norm(dim=1) * t64.norm(dim=1))
    cosine = paired.clamp(-1.0, 1.0).mean()
    ranks = paired_ranks(p, t, chunk_size=chunk)
    top_k = {k: (ranks <= k).to(_F64).mean() for k in ks_}
    return TranslationScores(mse=mse, cosine=cosine, top_k=top_k, mrr=ranks.reciprocal().mean())


@dataclass(frozen=True)
class ClassRetrieval(Result):
    """Class-level retrieval scores (0-dim float64 tensors, in [0, 1]).

    ``top_k`` maps each k to the fraction of queries whose first k gallery items hold one of
    their class (the CMC at k; ``top_k[1]`` is top-1 accuracy), as in
    :class:`TranslationScores`; ``mean_average_precision``: mean
    over queries of the average precision of the ranked gallery; ``n_queries``: queries with
    at least one relevant gallery item (the others are skipped).

    Examples:
        >>> import torch
        >>> q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> r = class_retrieval(q, q, torch.tensor([0, 1]), torch.tensor([0, 1]), ks=(1,))
        >>> r.as_dict()
        {'top_k': {1: 1.0}, 'mean_average_precision': 1.0, 'n_queries': 2}
    """

    top_k: dict[int, Tensor]
    mean_average_precision: Tensor
    n_queries: int


def class_retrieval(
    query: Any,
    gallery: Any,
    query_labels: Any,
    gallery_labels: Any,
    *,
    ks: Sequence[int] = (1, 5),
    exclude_self: bool = False,
    chunk_size: int = CHUNK_SIZE,
) -> ClassRetrieval:
    """Rank a gallery by cosine similarity to each query and score it by class labels.

    For query q, the gallery is sorted by cos(q, g) (descending; ties by lower gallery index);
    g is relevant when it has q's class. top-k = mean of [a relevant item in the first k]
    (CMC; top-1 accuracy at k = 1); AP(q) = (1/R) Σ_{r: item r relevant} precision@r;
    mAP = mean AP (the CMC and mAP of the backward-compatibility literature). For backward
    compatibility, pass new features of the queries and old features of the gallery, both
    d wide (:meth:`~subspaces.align.oca.OCAHead.compatible_features`).
    Invariant to positive rescaling of each row and to a common orthogonal map of both sides.
    Processed in row chunks of at most ``chunk_size`` queries, fewer where a chunk would
    exceed 256 MiB: memory O(chunk × n_gallery).

    Args:
        query: ``(n_q, d)`` query features. gallery: ``(n_g, d)`` gallery features.
        query_labels, gallery_labels: their integer classes.
        ks: the cut-offs of ``top_k`` (default 1 and 5).
        exclude_self: query i and gallery item i are the same sample (query set = gallery
            set, leave-one-out): item i is dropped from query i's ranking.
        chunk_size: queries ranked at once: rows per chunk, at most ``chunk_size`` and fewer
            where a chunk would exceed 256 MiB.

    Examples:
        >>> import torch
        >>> q = torch.tensor([[1.0, 0.0]])
        >>> gallery = torch.tensor([[1.0, 0.1], [0.9, 0.5], [0.0, 1.0]])
        >>> r = class_retrieval(q, gallery, torch.tensor([0]), torch.tensor([1, 0, 0]), ks=(1, 2))
        >>> float(r.top_k[1]), float(r.top_k[2]), round(float(r.mean_average_precision), 4)
        (0.0, 1.0, 0.5833)
    """
    q = check_matrix(query, name="query", min_samples=1)
    g = check_matrix(gallery, name="gallery", min_samples=1)
    if q.shape[1] != g.shape[1]:
        raise ShapeError(
            f"query and gallery must have the same width, got {tuple(q.shape)} and "
            f"{tuple(g.shape)}; compare a new model with an old gallery through its first d "
            "coordinates (OCAHead.compatible_features)."
        )
    check_same_device(q, g, names=("query", "gallery"))
    yq = check_labels(query_labels, q.shape[0], name="query_labels", device=q.device)
    yg = check_labels(gallery_labels, g.shape[0], name="gallery_labels", device=g.device)
    cutoffs = _check_ks(ks)
    chunk_size = check_positive_int(chunk_size, name="chunk_size")
    exclude_self = check_flag(exclude_self, name="exclude_self")
    if exclude_self and q.shape[0] != g.shape[0]:
        raise ShapeError(
            f"exclude_self needs the queries and the gallery to be the same samples, got "
            f"{q.shape[0]} queries and {g.shape[0]} gallery items."
        )
    dtype = torch.promote_types(q.dtype, g.dtype)
    qn = normalize_rows(q.to(dtype), name="query")
    gn = normalize_rows(g.to(dtype), name="gallery")
    n_g = g.shape[0]
    # Per query row, held at once over the n_g gallery items: the similarities (dtype), the
    # relevance masks (3 bool), the int64 order and the float64 relevance, cumsum, precision
    # and product.
    chunk_size = rows_within_budget(chunk_size, n_g * (qn.element_size() + 3 + 8 + 4 * 8))
    ranks = torch.arange(1, n_g + 1, device=q.device, dtype=torch.float64)
    hits = {k: torch.zeros((), dtype=torch.float64, device=q.device) for k in cutoffs}
    ap_sum = torch.zeros((), dtype=torch.float64, device=q.device)
    n_valid = 0
    for start in range(0, q.shape[0], chunk_size):
        stop = min(start + chunk_size, q.shape[0])
        sims = qn[start:stop] @ gn.T
        relevant = yq[start:stop, None] == yg[None, :]
        if exclude_self:
            rows = torch.arange(stop - start, device=q.device)
            sims[rows, rows + start] = -torch.inf
            relevant[rows, rows + start] = False
        order = sims.argsort(dim=1, descending=True, stable=True)  # ties: lower gallery index
        rel = relevant.gather(1, order)
        n_rel = rel.sum(dim=1)
        valid = n_rel > 0
        rel = rel[valid]
        relf = rel.double()
        precision = relf.cumsum(dim=1) / ranks
        ap_sum = ap_sum + ((precision * relf).sum(dim=1) / n_rel[valid].double()).sum()
        first_hit = rel.double().argmax(dim=1)  # rank - 1 of the first relevant item
        for k in cutoffs:
            hits[k] = hits[k] + (first_hit < k).double().sum()
        n_valid += int(valid.sum())
    if n_valid == 0:
        raise DegenerateInputError(
            "no query has a gallery item of its class, so retrieval scores are undefined; "
            "check the labels."
        )
    return ClassRetrieval({k: v / n_valid for k, v in hits.items()}, ap_sum / n_valid, n_valid)
