"""Exact k-nearest neighbours by blocked top-k, with float64 re-ranking.

One kernel for every method that needs neighbours (mutual kNN alignment, CKNNA, Jaccard and
rank similarity, TwoNN and MLE intrinsic dimension...). Queries are processed in row blocks:
for each block the ``block × m`` score matrix against the ``m`` reference points is one
matmul in the input's dtype (norms precomputed), ``torch.topk`` keeps a few more candidates
than asked for, and those candidates are re-scored exactly in float64 and sorted. Memory is
O(block × m); nothing ``n × n`` is ever allocated. Work happens on the inputs' device.

Why re-rank: in float32, ``||a||² + ||b||² − 2 a·b`` loses digits to cancellation when two
points are close relative to their norms (the error is ~1e-7 · ||a||², not ~1e-7 · ||a − b||²),
which misorders near neighbours and, worse for ratio estimators such as TwoNN, makes small
distances inaccurate. The float32 scores are therefore only used to *screen* candidates: the
``k + extra`` best are kept (``extra = 8 + k // 4``) and their distances recomputed in float64
directly (``||a − b||²`` from the differences, cosine from float64 dot products and norms).
For the Euclidean metrics the data are first centred (one copy of the reference), which
leaves distances unchanged and removes the cancellation due to a common offset. The result is
exact up to float64 rounding, unless more than ``extra`` points lie within float32 rounding
of the k-th neighbour's screening score (for cosine: cosines equal to ~1e-7; pass float64
input for clusters that tight), in which case the float32 screen decides which of those
near-tied points are kept. ``rerank=False`` skips the re-scoring (faster, float32-exact).

Ties are broken deterministically: among candidates with equal (float64) values, the lower
reference index comes first. Exact ties at the screening boundary (e.g. a point duplicated
more than ``k + extra`` times) are resolved by a stable sort of the affected rows, so lower
indices also win there (this relies on duplicated rows getting bitwise-equal float32
scores, as they do with the CPU BLAS we tested; if they did not, which of a large group of
duplicates is reported would follow the float32 rounding, the values being equal anyway).

Self-exclusion (``exclude_self=True``) removes query ``i``'s own row ``i`` from the reference
*by index*, not by value, so a duplicate of a point is still reported as its neighbour at
distance 0 while the point itself never is.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor

from subspaces._checks import (
    DegenerateInputError,
    InvalidOptionError,
    ShapeError,
    check_choice,
    check_matrix,
    check_positive_int,
    check_same_device,
)

__all__ = ["DEFAULT_MEMORY_BUDGET", "KNN_METRICS", "KNNResult", "knn"]

Metric = Literal["euclidean", "sqeuclidean", "cosine", "inner_product"]

KNN_METRICS: tuple[str, ...] = ("euclidean", "sqeuclidean", "cosine", "inner_product")
"""Metrics :func:`knn` accepts. ``inner_product`` is a similarity (larger is nearer)."""

DEFAULT_MEMORY_BUDGET = 256 * 2**20
"""Bytes of working memory per block used to choose the block size when none is given."""

_NORM_CHUNK = 4096
_RERANK_ELEMENTS = 1 << 17  # gathered elements per re-ranking sub-block (~1 MiB float64)


class KNNResult(NamedTuple):
    """The k nearest neighbours of each query, nearest first.

    Attributes:
        values: ``(n_queries, k)`` float64: distances for ``euclidean``, ``sqeuclidean`` and
            ``cosine`` (1 − cosine similarity), ascending; inner products for
            ``inner_product``, descending.
        indices: ``(n_queries, k)`` int64 rows of the reference set.
    """

    values: Tensor
    indices: Tensor


def _extra_candidates(k: int) -> int:
    return 8 + k // 4


def _row_sq_norms64(t: Tensor) -> Tensor:
    """Squared row norms in float64, chunked so no float64 copy of ``t`` is made."""
    out = torch.empty(t.shape[0], dtype=torch.float64, device=t.device)
    for start in range(0, t.shape[0], _NORM_CHUNK):
        chunk = t[start : start + _NORM_CHUNK].to(torch.float64)
        out[start : start + chunk.shape[0]] = (chunk * chunk).sum(dim=1)
    return out


def _column_mean64(t: Tensor) -> Tensor:
    """Column means accumulated in float64, chunked."""
    total = torch.zeros(t.shape[1], dtype=torch.float64, device=t.device)
    for start in range(0, t.shape[0], _NORM_CHUNK):
        total += t[start : start + _NORM_CHUNK].to(torch.float64).sum(dim=0)
    return total / t.shape[0]


def _default_block_size(
    n_reference: int, *, itemsize: int, memory_budget: int = DEFAULT_MEMORY_BUDGET
) -> int:
    """Query rows per block so that one block's working memory stays within the budget.

    Per query row: the score row and the top-k workspace (``2 · m · itemsize`` bytes); the
    re-ranking works in fixed sub-blocks of 2**17 gathered elements (not counted).
    """
    per_row = 2 * n_reference * itemsize
    return max(1, min(memory_budget // max(per_row, 1), 1 << 20))


def _screen_scores(
    q: Tensor,
    ref: Tensor,
    metric: str,
    ref_sq: Tensor,
    ref_inv_norm: Tensor | None,
) -> Tensor:
    """Block score matrix, larger is nearer, in the input dtype (one matmul).

    Terms constant along a row (the query's own norm) are left out: they do not change the
    ranking within the row.
    """
    dots = q @ ref.T
    if metric in ("euclidean", "sqeuclidean"):
        # -(||r||² - 2 q·r) = 2 q·r - ||r||²
        return dots.mul_(2.0).sub_(ref_sq.to(dots.dtype)[None, :])
    if metric == "cosine":
        assert ref_inv_norm is not None
        return dots.mul_(ref_inv_norm.to(dots.dtype)[None, :])
    return dots


def _fast_values(scores: Tensor, metric: str, q_sq: Tensor) -> Tensor:
    """Turn screening scores into the reported values, in float64 (``rerank=False``)."""
    s = scores.to(torch.float64)
    if metric in ("euclidean", "sqeuclidean"):
        sq = (q_sq[:, None] - s).clamp_(min=0.0)
        return sq.sqrt_() if metric == "euclidean" else sq
    if metric == "cosine":  # the screen already holds the cosine of the normalised query
        return (1.0 - s).clamp_(0.0, 2.0)
    return s


def _exact_values(
    q: Tensor,
    ref: Tensor,
    idx: Tensor,
    metric: str,
    q_sq: Tensor,
    ref_sq: Tensor,
) -> Tensor:
    """Float64 values of the candidates ``idx`` (b, c) for the queries ``q`` (b, d).

    Processed in sub-blocks of ~2**17 gathered elements so that the float64 copies stay
    small and hot in cache (larger sub-blocks were 2-5× slower on CPU).
    """
    b, c = idx.shape
    out = torch.empty(b, c, dtype=torch.float64, device=q.device)
    step = max(1, _RERANK_ELEMENTS // max(c * q.shape[1], 1))
    for start in range(0, b, step):
        stop = min(start + step, b)
        ids = idx[start:stop]
        g = ref.index_select(0, ids.reshape(-1)).reshape(stop - start, c, -1)
        g = g.to(torch.float64)
        q64 = q[start:stop].to(torch.float64)
        if metric in ("euclidean", "sqeuclidean"):
            g.sub_(q64[:, None, :])
            sq = g.mul_(g).sum(dim=2)
            out[start:stop] = sq.sqrt_() if metric == "euclidean" else sq
            continue
        dots = g.mul_(q64[:, None, :]).sum(dim=2)
        if metric == "cosine":
            denom = (q_sq[start:stop, None] * ref_sq[ids]).sqrt_()
            dots = (1.0 - dots / denom).clamp_(0.0, 2.0)
        out[start:stop] = dots
    return out


def _order(values: Tensor, idx: Tensor, *, descending: bool) -> tuple[Tensor, Tensor]:
    """Sort each row by value, ties by lower index (two stable passes)."""
    idx_sorted, perm = idx.sort(dim=1)
    vals = values.gather(1, perm)
    vals, perm = vals.sort(dim=1, descending=descending, stable=True)
    return vals, idx_sorted.gather(1, perm)


def _knn_blocked(
    queries: Tensor,
    ref: Tensor,
    k: int,
    *,
    metric: str,
    exclude_self: bool,
    rerank: bool,
    block_size: int | None,
    memory_budget: int,
) -> KNNResult:
    """The kernel behind :func:`knn`; inputs already validated."""
    n_q = queries.shape[0]
    m = ref.shape[0]
    available = m - 1 if exclude_self else m
    n_cand = min(available, k + _extra_candidates(k)) if rerank else k
    if block_size is None:
        block_size = _default_block_size(
            m, itemsize=ref.element_size(), memory_budget=memory_budget
        )
    device = queries.device
    exact_queries, exact_ref = queries, ref  # re-scored from the data as given
    if metric in ("euclidean", "sqeuclidean"):
        # distances are translation invariant: centre (one copy) so that a common offset does
        # not swamp the float32 screen with cancellation error
        centre = _column_mean64(ref).to(ref.dtype)
        same = queries is ref
        ref = ref - centre
        queries = ref if same else queries - centre
    ref_sq = _row_sq_norms64(ref)
    q_sq_all = ref_sq if queries is ref else _row_sq_norms64(queries)
    ref_inv_norm: Tensor | None = None
    if metric == "cosine":
        for name, sq in (("reference", ref_sq), ("queries", q_sq_all)):
            n_zero = int((sq == 0).sum())
            if n_zero:
                raise DegenerateInputError(
                    f"the {name} have {n_zero} rows of zero norm, for which the cosine is "
                    "undefined; drop those rows or use metric='euclidean'."
                )
        ref_inv_norm = ref_sq.rsqrt()
    descending = metric == "inner_product"
    out_vals = torch.empty(n_q, k, dtype=torch.float64, device=device)
    out_idx = torch.empty(n_q, k, dtype=torch.long, device=device)
    for start in range(0, n_q, block_size):
        stop = min(start + block_size, n_q)
        q = queries[start:stop]
        q_sq = q_sq_all[start:stop]
        q_screen = q * q_sq.rsqrt().to(q.dtype)[:, None] if metric == "cosine" else q
        scores = _screen_scores(q_screen, ref, metric, ref_sq, ref_inv_norm)
        if exclude_self:
            rows = torch.arange(stop - start, device=device)
            scores[rows, rows + start] = -torch.inf
        n_take = n_cand + 1 if n_cand < available else n_cand
        top_vals, top_idx = torch.topk(scores, n_take, dim=1, largest=True, sorted=True)
        if n_take > n_cand:
            # exact ties straddling the screening boundary: a stable sort keeps lower indices
            tied = top_vals[:, n_cand - 1] == top_vals[:, n_cand]
            if bool(tied.any()):
                tied_rows = tied.nonzero().squeeze(1)
                full = scores[tied_rows].sort(dim=1, descending=True, stable=True)
                top_vals[tied_rows] = full.values[:, :n_take]
                top_idx[tied_rows] = full.indices[:, :n_take]
            top_vals, top_idx = top_vals[:, :n_cand], top_idx[:, :n_cand]
        if rerank:
            vals = _exact_values(
                exact_queries[start:stop], exact_ref, top_idx, metric, q_sq, ref_sq
            )
        else:
            vals = _fast_values(top_vals, metric, q_sq)
        vals, idx = _order(vals, top_idx, descending=descending)
        out_vals[start:stop] = vals[:, :k]
        out_idx[start:stop] = idx[:, :k]
    return KNNResult(out_vals, out_idx)


def knn(
    x: Any,
    k: int,
    *,
    reference: Any = None,
    metric: Metric = "euclidean",
    exclude_self: bool | None = None,
    rerank: bool = True,
    block_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> KNNResult:
    """Exact k nearest neighbours of each row of ``x``, by blocked top-k.

    For each query ``q`` (a row of ``x``) and each reference point ``r`` (a row of
    ``reference``, default ``x`` itself) the metric is

    - ``euclidean``: ||q − r||, ``sqeuclidean``: ||q − r||²,
    - ``cosine``: 1 − q·r / (||q|| ||r||) (a distance, as in scikit-learn and scipy),
    - ``inner_product``: q·r (a similarity: the k *largest* are returned).

    Queries are processed in blocks of ``block_size`` rows; each block costs one matmul and
    O(block × m) memory (``m`` reference rows). The float32 (or input-dtype) scores screen
    ``k + 8 + k // 4`` candidates whose values are then recomputed exactly in float64 and
    sorted (``rerank=True``, see the module docstring); ties go to the lower index.
    Works on the inputs' device.

    Args:
        x: ``(n, d)`` queries.
        k: neighbours per query, ``1 <= k <= m`` (``m − 1`` when excluding self).
        reference: ``(m, d)`` points to search; default: ``x`` itself.
        metric: one of ``"euclidean"``, ``"sqeuclidean"``, ``"cosine"``, ``"inner_product"``.
        exclude_self: drop reference row ``i`` from query ``i``'s candidates (by index, so
            duplicates of a point are still found). Default: ``True`` when ``reference`` is
            not given, ``False`` otherwise; ``True`` with a ``reference`` requires as many
            queries as reference rows (query ``i`` is reference row ``i``).
        rerank: recompute the candidates' values in float64 (default). ``False`` returns the
            screening values (float32 arithmetic on float32 input), slightly faster.
        block_size: query rows per block; default: as many as fit ``memory_budget`` bytes.
        memory_budget: bytes of working memory per block when ``block_size`` is not given.

    Returns:
        A :class:`KNNResult` ``(values, indices)``, both ``(n, k)``, nearest first: float64
        values and int64 reference indices.

    Raises:
        InvalidOptionError: ``k`` out of range, an unknown metric, a bad block size.
        ShapeError: ``reference`` with another number of features than ``x``.
        DegenerateInputError: a zero row with ``metric="cosine"``.
    """
    metric_name = check_choice(metric, name="metric", choices=KNN_METRICS)
    queries = check_matrix(x, name="x", min_samples=1)
    if reference is None:
        ref = queries
        if exclude_self is None:
            exclude_self = True
    else:
        ref = check_matrix(reference, name="reference", min_samples=1)
        check_same_device(queries, ref, names=("x", "reference"))
        if ref.shape[1] != queries.shape[1]:
            raise ShapeError(
                f"reference must have the same number of features as x, got reference of shape "
                f"{tuple(ref.shape)} and x of shape {tuple(queries.shape)}."
            )
        dtype = torch.promote_types(queries.dtype, ref.dtype)
        queries, ref = queries.to(dtype), ref.to(dtype)
        if exclude_self is None:
            exclude_self = False
        if exclude_self and ref.shape[0] != queries.shape[0]:
            raise ShapeError(
                f"exclude_self=True pairs query i with reference row i, so x and reference need "
                f"the same number of rows; got {queries.shape[0]} and {ref.shape[0]}. Pass "
                "exclude_self=False to search the whole reference set."
            )
    k = check_positive_int(k, name="k")
    available = ref.shape[0] - 1 if exclude_self else ref.shape[0]
    if k > available:
        bound = (
            f"n - 1 = {available} (each point's own row is excluded)"
            if exclude_self
            else f"the number of reference rows, {available}"
        )
        raise InvalidOptionError(
            f"k must be at most {bound}, got k={k}; use a smaller k or more samples."
        )
    if block_size is not None:
        block_size = check_positive_int(block_size, name="block_size")
    memory_budget = check_positive_int(memory_budget, name="memory_budget")
    return _knn_blocked(
        queries,
        ref,
        k,
        metric=metric_name,
        exclude_self=bool(exclude_self),
        rerank=rerank,
        block_size=block_size,
        memory_budget=memory_budget,
    )
