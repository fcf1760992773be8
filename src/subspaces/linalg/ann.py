"""Approximate k-nearest neighbors (HNSW, through faiss), with their measured recall.

The exact search of :mod:`subspaces.linalg.knn` stays the default everywhere. Every
neighbor-based function takes ``neighbors="exact"`` (the default) or
``neighbors="approximate"``; an :class:`ANNOptions` given instead of the string selects the
approximate search with those options. The approximate search is faiss's HNSW graph
(``IndexHNSWFlat``; ``pip install subspaces[ann]``), chosen over IVF-Flat by measurement:
on a 10-sphere in R^100 (n = 100,000, k = 20) IVF-Flat with 1,024 lists reached a recall of
0.86 with 16 lists probed in 10 s, HNSW (``m = 16``, ``ef_search = 32``) 0.99 in 1.5 s.
Low intrinsic dimension, the case where neighbor-based estimators matter, is where graph
search does best.

How it searches.

1. Index space. For the distance metrics the rows are first mapped, as the exact tree path
   does, to their principal coordinates (:func:`subspaces.linalg.knn` module docstring):
   unit rows for ``cosine``, centered at the reference mean, projected onto the leading
   principal directions up to the data's *numerical rank* (what is dropped is at the
   level of the input's rounding, so distances are unchanged). Data of low rank in a wide
   space (a 10-sphere in R^100 spans 11 dimensions) are thus indexed in ``r`` instead of
   ``d`` dimensions: building the graph is ~10× faster there. Full-rank data (found with a
   cheap probe) are indexed as given. ``inner_product`` is indexed as given.
2. Graph. ``IndexHNSWFlat`` in float32 (``m`` links per node, ``ef_construction``), all
   reference rows added; then each query asks for ``k`` neighbors (``k + 1`` when its own
   row is excluded) with a beam of ``ef_search``.
3. Self-exclusion, as the exact path: query ``i``'s own row ``i`` is removed *by index*
   (when the graph did not return it, the farthest candidate is dropped instead), so a
   duplicate of a point is still its neighbor at distance 0. A query left with fewer than
   ``k`` candidates (rare; a disconnected graph) is searched exactly.
4. Values. The returned neighbors' values are recomputed in float64 and sorted (ties to
   the lower index): from the float64 principal coordinates when the rows were projected
   (equal to the data's values up to the input's rounding, at a tenth of the cost of
   gathering ``d``-dimensional rows; pairs at a distance near 0, such as duplicates, are
   re-valued from the data so that they stay exactly 0), otherwise from the data as given
   by the exact path's formula. Only *which* neighbors are returned is approximate.
5. Recall. ``recall_queries`` queries (seeded) are also searched exactly against the whole
   reference set (cheap: one blocked matmul); the recall is the fraction of their
   approximate neighbors whose value is within the exact ``k``-th value (ties count as
   found), averaged over the sample. It is returned beside the neighbors, and beside
   every value computed from them (:class:`ApproximateValue`).

The graph is built on several threads, so two runs can return slightly different
neighbors (faiss inserts points concurrently).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from subspaces._base import Result
from subspaces._checks import (
    InputTypeError,
    InvalidOptionError,
    check_choice,
    check_flag,
    check_positive_int,
    check_seed,
    seed_generator,
)
from subspaces.linalg.knn import (
    KNN_METRICS,
    _check_cosine_norms,
    _check_queries,
    _exact_values,
    _fit_subspace,
    _order,
    _probe_rank,
    _project,
    _row_sq_norms64,
    knn,
)
from subspaces.linalg.scaling import magnitude_exponent

__all__ = [
    "NEIGHBOR_SEARCHES",
    "ANNOptions",
    "ApproximateKNNResult",
    "ApproximateValue",
    "approximate_knn",
    "check_neighbor_search",
    "recall_of",
    "refuse_approximate",
    "with_recall",
]

NEIGHBOR_SEARCHES: tuple[str, ...] = ("exact", "approximate")
"""Values of the ``neighbors`` option of every neighbor-based function."""

_SEARCH_ROWS = 1 << 16  # queries per faiss search call (bounds the candidate buffers)
_C_INT_MAX = 2**31 - 1  # faiss's graph and beam sizes are C ints


@dataclass(frozen=True)
class ANNOptions:
    """Options of the approximate search; pass one as ``neighbors=ANNOptions(...)``.

    Attributes:
        m: links per node of the HNSW graph (faiss's ``M``); more is slower to build and
            more accurate.
        ef_construction: beam width while building the graph.
        ef_search: beam width of each query (at least ``k + 1``); ``None``:
            ``max(16, 2 (k + 1))``. Recall grows with it, and falls as the intrinsic
            dimension grows (on a 10-sphere in R^100, n = 100,000: 0.998 for k = 2 at 16;
            0.996 for k = 20 at 42, 0.999 at 64).
        recall_queries: queries whose exact neighbors are searched to measure the recall
            (all queries when there are fewer).
        seed: the sample of recall queries: an int (default 0, reproducible), a
            ``torch.Generator`` or ``None`` (torch's global generator).
        reduce_rank: index the principal coordinates up to the data's numerical rank
            (distances unchanged; see the module docstring); ``False`` indexes the rows.

    Examples:
        >>> ANNOptions(ef_search=64).ef_search
        64
    """

    m: int = 16
    ef_construction: int = 40
    ef_search: int | None = None
    recall_queries: int = 1000
    seed: int | torch.Generator | None = 0
    reduce_rank: bool = True

    def __post_init__(self) -> None:
        # stored as Python ints: faiss takes C ints (at most 2**31 - 1), not numpy integers
        for name, minimum in (("m", 2), ("ef_construction", 1), ("recall_queries", 1)):
            value = check_positive_int(
                getattr(self, name), name=name, minimum=minimum, maximum=_C_INT_MAX
            )
            object.__setattr__(self, name, value)
        if self.ef_search is not None:
            value = check_positive_int(self.ef_search, name="ef_search", maximum=_C_INT_MAX)
            object.__setattr__(self, "ef_search", value)
        object.__setattr__(self, "seed", check_seed(self.seed, name="seed"))
        object.__setattr__(self, "reduce_rank", check_flag(self.reduce_rank, name="reduce_rank"))


class ApproximateKNNResult(NamedTuple):
    """Approximate k nearest neighbors of each query, nearest first, with their recall.

    Attributes:
        values: ``(n_queries, k)`` float64 values of the returned pairs (as
            :class:`~subspaces.linalg.knn.KNNResult`; see the module docstring).
        indices: ``(n_queries, k)`` int64 rows of the reference set.
        recall: 0-dim float64: the fraction of the exact ``k`` nearest neighbors found,
            measured on ``recall_queries`` sampled queries.
        recall_queries: how many queries the recall was measured on.

    Examples:
        >>> import torch
        >>> r = ApproximateKNNResult(torch.zeros(2, 1, dtype=torch.float64),
        ...                          torch.tensor([[1], [0]]),
        ...                          torch.tensor(1.0, dtype=torch.float64), 2)
        >>> r.indices[:, 0].tolist(), float(r.recall), r.recall_queries
        ([1, 0], 1.0, 2)
    """

    values: Tensor
    indices: Tensor
    recall: Tensor
    recall_queries: int


@dataclass(frozen=True)
class ApproximateValue(Result):
    """A number computed from approximate neighbors, with the search's measured recall.

    What a function whose exact result is a number returns with
    ``neighbors="approximate"``.

    Attributes:
        value: 0-dim float64, the number the exact call returns.
        recall: 0-dim float64, recall@k of the neighbor search (the mean over the searches
            when the value needs several).
        recall_queries: queries the recall was measured on (over all searches).

    Examples:
        >>> import torch
        >>> r = ApproximateValue(torch.tensor(9.5, dtype=torch.float64),
        ...                      torch.tensor(0.99, dtype=torch.float64), 1000)
        >>> r.as_dict()
        {'value': 9.5, 'recall': 0.99, 'recall_queries': 1000}
    """

    value: Tensor
    recall: Tensor
    recall_queries: int

    def __float__(self) -> float:
        return float(self.value)


def check_neighbor_search(neighbors: Any, *, name: str = "neighbors") -> ANNOptions | None:
    """Read a ``neighbors`` option: ``None`` for the exact search, else the approximate
    search's :class:`ANNOptions`.

    Accepts ``"exact"``, ``"approximate"`` (default options) or an :class:`ANNOptions`;
    anything else raises :class:`~subspaces.InvalidOptionError`. Does not need faiss.

    Examples:
        >>> check_neighbor_search("exact") is None
        True
        >>> check_neighbor_search("approximate").m
        16
    """
    if isinstance(neighbors, ANNOptions):
        return neighbors
    choice = check_choice(neighbors, name=name, choices=NEIGHBOR_SEARCHES)
    return ANNOptions() if choice == "approximate" else None


def with_recall(value: Tensor, *searches: ApproximateKNNResult | None) -> Any:
    """``value`` itself after exact searches (``None``); after approximate ones, an
    :class:`ApproximateValue` with their recall (:func:`recall_of`).

    Examples:
        >>> import torch
        >>> v = torch.tensor(9.5, dtype=torch.float64)
        >>> with_recall(v, None) is v
        True
        >>> r = ApproximateKNNResult(torch.zeros(1, 1), torch.zeros(1, 1, dtype=torch.long),
        ...                          torch.tensor(0.75, dtype=torch.float64), 4)
        >>> with_recall(v, r).as_dict()
        {'value': 9.5, 'recall': 0.75, 'recall_queries': 4}
    """
    done = [s for s in searches if s is not None]
    if not done:
        return value
    recall, count = recall_of(*done)
    return ApproximateValue(value, recall.to(value.device), count)


def refuse_approximate(neighbors: Any, *, measure: str, why: str) -> None:
    """Check ``neighbors`` for a measure that has only the exact search: refuse
    ``"approximate"`` (and bad values) with an :class:`~subspaces.InvalidOptionError`.

    Examples:
        >>> refuse_approximate("exact", measure="cknna", why="it needs exact masks.")
        >>> refuse_approximate("approximate", measure="cknna", why="it needs exact masks.")
        Traceback (most recent call last):
        ...
        subspaces.InvalidOptionError: cknna supports only neighbors='exact', ...
    """
    if check_neighbor_search(neighbors) is not None:
        raise InvalidOptionError(
            f"{measure} supports only neighbors='exact', got neighbors={neighbors!r}: {why}"
        )


def recall_of(*results: ApproximateKNNResult) -> tuple[Tensor, int]:
    """``(recall, recall_queries)`` over several searches: the mean recall weighted by
    their sample sizes, and the total sample size.

    Examples:
        >>> import torch
        >>> a = ApproximateKNNResult(torch.zeros(1, 1), torch.zeros(1, 1, dtype=torch.long),
        ...                          torch.tensor(1.0, dtype=torch.float64), 10)
        >>> b = a._replace(recall=torch.tensor(0.5, dtype=torch.float64))
        >>> recall, count = recall_of(a, b)
        >>> round(float(recall), 3), count
        (0.75, 20)
    """
    total = sum(r.recall_queries for r in results)
    recall = sum(r.recall.double().cpu() * r.recall_queries for r in results) / total
    return torch.as_tensor(recall, dtype=torch.float64).reshape(()), total


def _import_faiss() -> Any:
    try:
        import faiss  # type: ignore[import-not-found, unused-ignore]  # the ann extra
    except ImportError:
        raise ImportError(
            "neighbors='approximate' needs the optional dependency 'faiss'; install it with "
            "`pip install subspaces[ann]` (or `pip install faiss-cpu`)."
        ) from None
    return faiss


def _default_ef_search(k: int) -> int:
    return max(16, 2 * (k + 1))


class _IndexRows(NamedTuple):
    """The float32 rows the graph indexes and searches, and, when they are principal
    coordinates, those coordinates in float64 (``None`` otherwise)."""

    queries32: np.ndarray
    ref32: np.ndarray
    queries64: Tensor | None
    ref64: Tensor | None


def _index_rows(queries: Tensor, ref: Tensor, metric: str, reduce_rank: bool) -> _IndexRows:
    """Principal coordinates up to the numerical rank (of the unit rows for ``cosine``), or
    the rows as given (full-rank data, ``inner_product``, ``reduce_rank=False``).

    The float32 copies are scaled by a power of two into float32's safe range (the order is
    unchanged).
    """
    same = queries is ref
    coords: tuple[Tensor, Tensor] | None = None
    if metric != "inner_product" and reduce_rank and ref.shape[0] > 1:
        d = ref.shape[1]
        if _probe_rank(ref, metric) < d:
            sub = _fit_subspace(queries, ref, metric)
            if sub.rank < d:
                r64 = _project(ref, sub, metric)
                coords = (r64 if same else _project(queries, sub, metric), r64)
    if coords is not None:
        q_src, r_src = coords
    else:
        q_src, r_src = queries, ref
    top = max(float(r_src.abs().max()), float(q_src.abs().max()))
    e = magnitude_exponent(top, torch.float32)

    def as32(t: Tensor) -> np.ndarray:
        out = np.empty((t.shape[0], t.shape[1]), dtype=np.float32)
        for lo in range(0, t.shape[0], _SEARCH_ROWS):
            chunk = t[lo : lo + _SEARCH_ROWS].to(torch.float64)
            if metric == "cosine" and coords is None:
                chunk = chunk / chunk.norm(dim=1, keepdim=True)
            out[lo : lo + chunk.shape[0]] = (chunk * 2.0**-e).to(torch.float32).numpy()
        return out

    r32 = as32(r_src)
    q32 = r32 if same else as32(q_src)
    if coords is None:
        return _IndexRows(q32, r32, None, None)
    return _IndexRows(q32, r32, coords[0], coords[1])


def _coordinate_values(q64: Tensor, r64: Tensor, idx: Tensor, metric: str) -> Tensor:
    """Float64 values of the pairs ``(q, idx)`` from principal coordinates: squared
    distances summed over ``r`` coordinates instead of ``d`` (``cosine``: half the squared
    distance of the unit rows)."""
    b, c = idx.shape
    out = torch.empty(b, c, dtype=torch.float64)
    step = max(1, (1 << 20) // max(c * r64.shape[1], 1))
    for lo in range(0, b, step):
        ids = idx[lo : lo + step]
        diff = r64.index_select(0, ids.reshape(-1)).reshape(ids.shape[0], c, -1)
        diff.sub_(q64[lo : lo + step, None, :])
        out[lo : lo + ids.shape[0]] = diff.mul_(diff).sum(dim=2)
    if metric == "euclidean":
        return out.sqrt_()
    if metric == "cosine":
        return out.mul_(0.5).clamp_(0.0, 2.0)
    return out


def _keep_mask(idx: Tensor, own: Tensor | None, k: int) -> Tensor:
    """Which ``k`` of ``idx``'s columns to keep: all but the first entry equal to ``own``
    (by index) or, where a row lacks it, all but the last one."""
    mark = torch.zeros_like(idx, dtype=torch.bool)
    if own is not None:
        mark = idx == own[:, None]
        mark &= mark.cumsum(dim=1) == 1
    mark[~mark.any(dim=1), -1] = True
    return ~mark if idx.shape[1] > k else torch.ones_like(mark)


def _exact_rows(
    queries: Tensor, ref: Tensor, k: int, metric: str, own: Tensor | None
) -> tuple[Tensor, Tensor]:
    """Exact ``(values, indices)`` of the query rows, excluding row ``own[i]`` by index."""
    want = k if own is None else k + 1
    res = knn(queries, want, reference=ref, metric=metric, exclude_self=False)  # type: ignore[arg-type]
    keep = _keep_mask(res.indices, own, k)
    n = queries.shape[0]
    return res.values[keep].reshape(n, k), res.indices[keep].reshape(n, k)


def approximate_knn(
    x: Any,
    k: int,
    *,
    reference: Any = None,
    metric: str = "euclidean",
    exclude_self: bool | None = None,
    options: ANNOptions | None = None,
) -> ApproximateKNNResult:
    """Approximate k nearest neighbors of each row of ``x`` (HNSW), with measured recall.

    The same contract as :func:`subspaces.linalg.knn.knn` (metrics, self-exclusion by
    index, float64 values of the returned pairs, nearest first, ties to the lower index;
    values from principal coordinates for data of low numerical rank),
    except that a returned neighbor may not be among the exact ``k`` nearest: the recall
    says how often it is. See the module docstring for the index and its defaults.
    ``knn(x, k, neighbors="approximate")`` calls this.

    Args:
        x: ``(n, d)`` queries.
        k: neighbors per query, ``1 <= k <= m`` (``m − 1`` when excluding self).
        reference: ``(m, d)`` points to search; default: ``x`` itself.
        metric: ``"euclidean"``, ``"sqeuclidean"``, ``"cosine"`` or ``"inner_product"``.
        exclude_self: as in :func:`~subspaces.linalg.knn.knn` (default ``True`` without a
            ``reference``).
        options: :class:`ANNOptions` (graph size, beam widths, recall sample); default
            ``ANNOptions()``.

    Returns:
        An :class:`ApproximateKNNResult` ``(values, indices, recall, recall_queries)`` on
        the input's device.

    Raises:
        ImportError: faiss is not installed (``pip install subspaces[ann]``).
        InvalidOptionError: ``k`` out of range, an unknown metric.
        ShapeError: ``reference`` with another number of features than ``x``.

    Examples:
        >>> import torch
        >>> x = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
        >>> res = approximate_knn(x, 5)
        >>> res.indices.shape, float(res.recall) > 0.9, res.recall_queries
        (torch.Size([500, 5]), True, 500)
    """
    faiss = _import_faiss()
    opts = ANNOptions() if options is None else options
    if not isinstance(opts, ANNOptions):
        raise InputTypeError(
            f"options must be an ANNOptions or None, got {type(opts).__name__} ({opts!r})."
        )
    metric_name = check_choice(metric, name="metric", choices=KNN_METRICS)
    queries, ref, exclude_self = _check_queries(x, reference, exclude_self)
    exclude = check_flag(exclude_self, name="exclude_self")
    k = check_positive_int(k, name="k")
    available = ref.shape[0] - 1 if exclude else ref.shape[0]
    if k > available:
        raise InvalidOptionError(
            f"k must be at most {available} (the reference rows"
            f"{', less the query itself' if exclude else ''}), got k={k}; use a smaller k or "
            "more samples."
        )
    device = queries.device
    same = ref is queries
    q_cpu = queries.detach().cpu()
    r_cpu = q_cpu if same else ref.detach().cpu()
    if metric_name == "cosine":
        r_sq = _row_sq_norms64(r_cpu)
        q_sq = r_sq if same else _row_sq_norms64(q_cpu)
        _check_cosine_norms(r_sq, q_sq)
    else:
        r_sq = q_sq = torch.empty(0, dtype=torch.float64)

    rows32 = _index_rows(q_cpu, r_cpu, metric_name, opts.reduce_rank)
    q32, r32 = rows32.queries32, rows32.ref32
    dim = r32.shape[1]
    faiss_metric = faiss.METRIC_INNER_PRODUCT if metric_name == "inner_product" else faiss.METRIC_L2
    index = faiss.IndexHNSWFlat(dim, opts.m, faiss_metric)
    index.hnsw.efConstruction = opts.ef_construction
    index.add(r32)
    want = k + 1 if exclude else k
    index.hnsw.efSearch = max(
        want, opts.ef_search if opts.ef_search is not None else _default_ef_search(k)
    )
    tiny = 0.0
    if rows32.ref64 is not None and rows32.queries64 is not None:
        # rounding of a value from coordinates of norm <= R: ~(r + 8) eps64 R² (squared
        # distances; its root for euclidean); pairs below a generous multiple are re-valued
        big = max(float(rows32.ref64.abs().max()), float(rows32.queries64.abs().max()))
        scale = 1024.0 * (dim + 8) * float(torch.finfo(torch.float64).eps) * dim * big * big
        tiny = math.sqrt(scale) if metric_name == "euclidean" else scale
    n_q = q_cpu.shape[0]
    out_vals = torch.empty(n_q, k, dtype=torch.float64)
    out_idx = torch.empty(n_q, k, dtype=torch.int64)
    descending = metric_name == "inner_product"
    for start in range(0, n_q, _SEARCH_ROWS):
        stop = min(start + _SEARCH_ROWS, n_q)
        _, found = index.search(q32[start:stop], want)
        idx = torch.from_numpy(np.asarray(found, dtype=np.int64))
        own = torch.arange(start, stop) if exclude else None
        idx = idx[_keep_mask(idx, own, k)].reshape(stop - start, k)
        short = (idx < 0).any(dim=1).nonzero().squeeze(1)
        if short.numel():
            rows = short + start
            _, idx[short] = _exact_rows(
                q_cpu[rows], r_cpu, k, metric_name, rows if exclude else None
            )
        if rows32.ref64 is not None and rows32.queries64 is not None:
            vals = _coordinate_values(rows32.queries64[start:stop], rows32.ref64, idx, metric_name)
            # (near) duplicates: the projection's rounding must not turn an exact 0 into 1e-16
            near = (vals <= tiny).any(dim=1).nonzero().squeeze(1)
            if near.numel():
                rows = near + start
                q_sq_rows = q_sq[rows] if q_sq.numel() else q_sq
                vals[near] = _exact_values(
                    q_cpu[rows], r_cpu, idx[near], metric_name, q_sq_rows, r_sq
                )
        else:
            q_sq_rows = q_sq[start:stop] if q_sq.numel() else q_sq
            vals = _exact_values(q_cpu[start:stop], r_cpu, idx, metric_name, q_sq_rows, r_sq)
        out_vals[start:stop], out_idx[start:stop] = _order(vals, idx, descending=descending)

    count = min(opts.recall_queries, n_q)
    if count == n_q:
        sample = torch.arange(n_q)
    else:
        gen = seed_generator(opts.seed)
        sample = torch.randperm(n_q, generator=gen)[:count].sort().values
    exact_vals, _ = _exact_rows(q_cpu[sample], r_cpu, k, metric_name, sample if exclude else None)
    # the sample's approximate neighbors valued as the exact search values them
    q_sq_rows = q_sq[sample] if q_sq.numel() else q_sq
    got = _exact_values(q_cpu[sample], r_cpu, out_idx[sample], metric_name, q_sq_rows, r_sq)
    kth = exact_vals[:, -1:]
    inside = got >= kth if descending else got <= kth
    hits = inside.sum(dim=1).clamp(max=k).sum().to(torch.float64)
    recall = (hits / (count * k)).to(device)
    return ApproximateKNNResult(out_vals.to(device), out_idx.to(device), recall, count)
