"""Neighborhood similarity: do two representations give the same samples the same neighbors?

Every measure here is built on the blocked exact kNN of :mod:`subspaces.linalg.knn`: each
representation's ``k`` nearest neighbors are found with O(block × n) memory, and the
measures are then computed from the ``(n, k)`` neighbor lists (and their similarities) only.
Nothing ``n × n`` is allocated. A sample is never its own neighbor (self-exclusion by index,
so duplicated points are still neighbors of each other). Ties between equally near points go
to the lower index. CKNNA, a kernel alignment on these neighbors, is in
:mod:`subspaces.similarity.cknna`.

Exact means: the neighbors are those of the similarities computed in float64 from the
data as given (the kNN kernel's certified screen re-searches in float64 any sample whose
float32 screen cannot decide), and every similarity a measure uses (CKNNA's kernel
entries, second-order cosines) is computed in float64 from the data as given. So float32
input and the same numbers in float64 give the same neighbor lists and the same values
(to float64 rounding of the final sums), whatever the offset or scale of the data.

Neighbors are defined by cosine similarity by default, as in the references: Huh et al.
L2-normalize features and rank by inner product, which is the cosine; ReSi ranks with
scikit-learn's cosine metric. Cosine neighborhoods are invariant to orthogonal transforms
and isotropic scaling of either representation, not to translation. ``metric="euclidean"``
gives neighborhoods that are also translation invariant; ``"inner_product"`` ranks by raw
dot products (invariant to orthogonal transforms and positive scaling only).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal, overload

import torch
from torch import Tensor

from subspaces._checks import (
    DegenerateInputError,
    InputTypeError,
    InvalidOptionError,
    ShapeError,
    check_choice,
    check_dense,
    check_matrix,
    check_not_constant,
    check_paired,
    check_positive_int,
    check_same_device,
)
from subspaces.linalg.ann import (
    ANNOptions,
    ApproximateKNNResult,
    ApproximateValue,
    approximate_knn,
    check_neighbor_search,
    refuse_approximate,
    with_recall,
)
from subspaces.linalg.constants import CHUNK_SIZE
from subspaces.linalg.knn import (
    _EPS64,
    DEFAULT_MEMORY_BUDGET,
    KNN_METRICS,
    KNNResult,
    _knn_blocked,
    _prepare,
    _row_sq_norms64,
    _screen_error,
    _value_bounds,
)
from subspaces.linalg.scaling import rescaled

__all__ = [
    "knn_jaccard",
    "knn_jaccard_from_neighbors",
    "mutual_knn",
    "mutual_knn_from_neighbors",
    "neighbor_lists",
    "rank_similarity",
    "rank_similarity_from_neighbors",
    "second_order_cosine_similarity",
]

NeighborMetric = Literal["cosine", "euclidean", "sqeuclidean", "inner_product"]

# elements of the (rows, k, k) neighbor-comparison tensors processed at once
_MATCH_ELEMENTS = 1 << 22


def _check_k(k: Any, n: int, *, minimum: int = 1) -> int:
    k = check_positive_int(k, name="k", minimum=minimum)
    if k >= n:
        raise InvalidOptionError(
            f"k must be smaller than the number of samples, n = {n} (a sample is not its own "
            f"neighbor), got k={k}; use k <= {n - 1} or more samples."
        )
    return k


def _validated(x: Any, y: Any, *, min_samples: int = 2) -> tuple[Tensor, Tensor]:
    tx, ty = check_paired(x, y, min_samples=min_samples)
    check_not_constant(tx, name="x", measure="a neighborhood measure")
    check_not_constant(ty, name="y", measure="a neighborhood measure")
    # every measure here is invariant to scaling either side: an exact power of two brings
    # data at extreme scales into range (float32 squares of 1e20 overflow, of 1e-25 vanish)
    return rescaled(tx), rescaled(ty)


def _check_block(chunk_size: Any) -> int:
    return check_positive_int(chunk_size, name="chunk_size")


def _neighbors(
    t: Tensor, k: int, metric: str, chunk_size: int, *, exclude_self: bool = True
) -> KNNResult:
    return _knn_blocked(
        t,
        t,
        k,
        metric=metric,
        exclude_self=exclude_self,
        rerank=True,
        chunk_size=chunk_size,
        memory_budget=DEFAULT_MEMORY_BUDGET,
    )


def _paired_neighbors(
    x: Any,
    y: Any,
    k: Any,
    metric: Any,
    chunk_size: Any,
    *,
    sets_only: bool = False,
    neighbors: Any = "exact",
) -> tuple[Tensor, Tensor, int, list[ApproximateKNNResult]]:
    """Validate and return the (n, k) neighbor index lists of x and y, and the approximate
    searches (none for ``neighbors="exact"``).

    ``sets_only``: the caller uses each list as a set (mutual kNN, Jaccard), so the order
    within a list may follow float32 scores; the sets are still exact (see
    :func:`_cosine_neighbor_sets`).
    """
    metric = check_choice(metric, name="metric", choices=KNN_METRICS)
    options = check_neighbor_search(neighbors)
    tx, ty = _validated(x, y)
    k = _check_k(k, tx.shape[0])
    block = _check_block(chunk_size)
    if options is not None:
        sx, sy = (
            approximate_knn(t, k, metric=metric, exclude_self=True, options=options)
            for t in (tx, ty)
        )
        return sx.indices, sy.indices, k, [sx, sy]
    find = _neighbor_sets if sets_only else _neighbor_indices
    return find(tx, k, metric, block), find(ty, k, metric, block), k, []


def _neighbor_indices(t: Tensor, k: int, metric: str, block: int) -> Tensor:
    return _neighbors(t, k, metric, block).indices


def _neighbor_sets(t: Tensor, k: int, metric: str, block: int) -> Tensor:
    if metric == "cosine" and t.dtype == torch.float32 and k + 1 < t.shape[0]:
        return _cosine_neighbor_sets(t, k, block)
    return _neighbor_indices(t, k, metric, block)


_SET_BLOCK = 2048  # the most rows per block of the symmetric score products
_GATHER_ELEMENTS = 1 << 17  # gathered float64 elements per sub-block (~1 MiB)


def _cosine_neighbor_sets(t: Tensor, k: int, block: int) -> Tensor:
    """The exact sets of the k cosine-nearest neighbors (self excluded) of float32 rows.

    Rows are screened as centered unit vectors, â_i = x_i / ||x_i|| − mean_j x_j / ||x_j||
    (formed in float64, stored in float32; the kNN kernel's screen space, which centers
    when the mean unit row has squared norm >= 1/4, i.e. when the rows share a direction):
    then S_ij = â_i·â_j − ||â_i||² / 2 − ||â_j||² / 2 = −||â_i − â_j||² / 2 = cos − 1,
    with the float32 digits spent on how the rows differ, not on cosines that all agree to
    7 digits when the rows share a large offset (uncentered: S_ij = â_i·â_j, one product
    and no correction, as the unit rows' norms are 1 to rounding). S is symmetric, so
    only its upper block triangle is computed: each product of rows I with rows J (J > I)
    gives candidates to both. Each row keeps its k + 1 best float32 scores, and its set
    is certified when the upper bound of the k-th's float64 value (1 − cos, as
    :func:`subspaces.linalg.knn.knn` reports it) lies strictly below the lower bound of
    the (k+1)-th's, the bounds being those of the float32 rounding of S
    (:func:`subspaces.linalg.knn._value_bounds`): no tie, no swap possible. The other
    rows (near ties) are searched again by the certified kNN kernel, whose tie rule
    (lower index first) then decides. The order within a set follows the float32 scores:
    use these lists as sets only.
    """
    n, d = t.shape
    raw_sq = _row_sq_norms64(t)
    if bool((raw_sq == 0).any()):
        _inverse_row_norms(t, "x")  # raises the zero-row error
    prep = _prepare(t, t, "cosine", ref_raw_sq=raw_sq)
    unit, sq = prep.ref_screen, prep.ref_sq
    centered = prep.space.shift is not None
    half = (0.5 * sq).to(t.dtype)
    size = min(block, _SET_BLOCK, n)
    keep = k + 1
    best_vals = torch.full((n, keep), -torch.inf, dtype=t.dtype, device=t.device)
    best_idx = torch.zeros((n, keep), dtype=torch.long, device=t.device)

    def offer(rows: slice, scores: Tensor, col0: int) -> None:
        vals, idx = scores.topk(min(keep, scores.shape[1]), dim=1)
        merged_vals = torch.cat([best_vals[rows], vals], 1)
        merged_idx = torch.cat([best_idx[rows], idx + col0], 1)
        top, pos = merged_vals.topk(keep, dim=1)
        best_vals[rows], best_idx[rows] = top, merged_idx.gather(1, pos)

    starts = range(0, n, size)
    for i0 in starts:
        rows_i = slice(i0, min(i0 + size, n))
        for j0 in starts:
            if j0 < i0:
                continue
            rows_j = slice(j0, min(j0 + size, n))
            scores = unit[rows_i] @ unit[rows_j].T
            if centered:
                scores.sub_(half[rows_i, None]).sub_(half[None, rows_j])
            if j0 == i0:
                scores.fill_diagonal_(-torch.inf)
                offer(rows_i, scores, j0)
            else:
                offer(rows_i, scores, j0)
                offer(rows_j, scores.T, i0)
    # the product â_i·â_j is within err_g = (3 delta + 2 gamma_d) R² of exact (R the largest
    # ||â||). Centered: S = â_i·â_j − |â_i|²/2 − |â_j|²/2 adds u R² (the halves' rounding) and
    # 3.5 u R² (the two subtractions), and w = −2 S. Not centered (the unit rows as they
    # are, |â|² = 1 up to their rounding): w = 2 − 2 â_i·â_j, off by |â_i|² + |â_j|² − 2.
    r = float(sq.max()) ** 0.5
    u = float(torch.finfo(t.dtype).eps) / 2.0
    r_t = torch.full((1,), r, dtype=torch.float64, device=t.device)
    err_g = _screen_error(r_t, r, d, t.dtype, t.device, "inner_product")
    s_kk = best_vals[:, k - 1 : k + 1].to(torch.float64)
    if centered:
        err = 2.0 * (err_g + 5.0 * u * r * r) + (d + 2) * _EPS64 * r * r
        w_est = -2.0 * s_kk
    else:
        err = 2.0 * err_g + 2.0 * float((sq - 1.0).abs().max()) + (d + 2) * _EPS64 * r * r
        w_est = 2.0 - 2.0 * s_kk
    delta = 6.0 * u * r + 4.0 * (d + 6) * _EPS64  # the stored rows' rounding, 3u each
    lo, hi = _value_bounds(w_est, err, torch.full_like(err, delta), "cosine", d)
    open_rows = (~(hi[:, 0] < lo[:, 1])).nonzero().squeeze(1)
    if not open_rows.numel():
        return best_idx[:, :k].clone()
    # mostly near ties: the full certified search
    unsure = None if open_rows.numel() > n // 2 else open_rows
    found = _knn_blocked(
        t,
        t,
        k,
        metric="cosine",
        exclude_self=True,
        rerank=True,
        chunk_size=block,
        memory_budget=DEFAULT_MEMORY_BUDGET,
        prepared=prep,
        rows=unsure,
    ).indices
    if unsure is None:
        return found
    out = best_idx[:, :k].clone()
    out[unsure] = found
    return out


def _match_blocks(ix: Tensor, iy: Tensor) -> Iterator[tuple[int, int, Tensor]]:
    """Yield ``(start, stop, match)`` with match[r, a, b] = (ix[r, a] == iy[r, b])."""
    n, k = ix.shape
    step = max(1, _MATCH_ELEMENTS // (k * k))
    for start in range(0, n, step):
        stop = min(start + step, n)
        yield start, stop, ix[start:stop, :, None] == iy[start:stop, None, :]


def _check_neighbor_lists(ix: Any, iy: Any) -> tuple[Tensor, Tensor]:
    """Two ``(n, k)`` integer tensors of neighbor indices in [0, n), of one shape and device."""
    for t, name in ((ix, "ix"), (iy, "iy")):
        if not isinstance(t, Tensor):
            raise InputTypeError(
                f"{name} must be an (n, k) integer tensor of neighbor indices (from "
                f"neighbor_lists), got {type(t).__name__}."
            )
        check_dense(t, name=name)
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise InputTypeError(f"{name} must hold integer indices, got dtype {t.dtype}.")
        if t.ndim != 2 or t.shape[0] == 0 or t.shape[1] == 0:
            raise ShapeError(
                f"{name} must be a non-empty (n, k) matrix of neighbor indices, got shape "
                f"{tuple(t.shape)}."
            )
    if ix.shape != iy.shape:
        raise ShapeError(
            f"ix and iy must list the same k neighbors of the same n samples, got shapes "
            f"{tuple(ix.shape)} and {tuple(iy.shape)}."
        )
    check_same_device(ix, iy, names=("ix", "iy"))
    n = ix.shape[0]
    for t, name in ((ix, "ix"), (iy, "iy")):
        low, high = (int(v) for v in torch.aminmax(t))
        if low < 0 or high >= n:
            raise ShapeError(
                f"{name} must hold sample indices in [0, {n}), got values in [{low}, {high}]."
            )
    return ix, iy


def _overlap_counts(ix: Tensor, iy: Tensor) -> Tensor:
    """|N_x(i) ∩ N_y(i)| for every i, as int64 (neighbor lists hold distinct indices)."""
    counts = torch.empty(ix.shape[0], dtype=torch.long, device=ix.device)
    for start, stop, match in _match_blocks(ix, iy):
        counts[start:stop] = match.sum(dim=(1, 2))
    return counts


@overload
def mutual_knn(
    x: Any,
    y: Any,
    *,
    k: int = ...,
    metric: NeighborMetric = ...,
    chunk_size: int = ...,
    neighbors: Literal["exact"] = ...,
) -> Tensor: ...


@overload
def mutual_knn(
    x: Any,
    y: Any,
    *,
    k: int = ...,
    metric: NeighborMetric = ...,
    chunk_size: int = ...,
    neighbors: Literal["approximate"] | ANNOptions,
) -> ApproximateValue: ...


def mutual_knn(
    x: Any,
    y: Any,
    *,
    k: int = 10,
    metric: NeighborMetric = "cosine",
    chunk_size: int = CHUNK_SIZE,
    neighbors: str | ANNOptions = "exact",
) -> Tensor | ApproximateValue:
    """Mutual k-nearest-neighbor alignment (Huh et al., 2024, "The Platonic Representation
    Hypothesis").

    m_kNN(X, Y) = (1/n) Σ_i |N_k^X(i) ∩ N_k^Y(i)| / k, where N_k^X(i) are the ``k`` nearest
    neighbors of sample ``i`` among the other samples of ``X``.

    As in the reference code (``AlignmentMetrics.mutual_knn`` applied to L2-normalized
    features by ``measure_alignment.compute_score``), neighbors are ranked by cosine
    similarity and a sample is not its own neighbor. The reference's optional outlier
    clipping (``prepare_features``, 95th-percentile clamp) is a preprocessing step, not part
    of the measure, and is not applied here. Unlike the reference (full ``n × n`` masks and
    argsort), this is blocked: O(block × n) memory. With cosine neighbors on float32 data
    only the upper block triangle of the symmetric score matrix (of the unit rows centered
    in float64) is computed and each set is certified against the float32 rounding bound
    (near ties re-searched by the certified kNN kernel): exact sets for half the products.

    Invariances: with cosine neighbors, orthogonal transforms and isotropic scaling of either
    side; with ``metric="euclidean"`` also translation. Symmetric; in [0, 1]; 1 when both give
    every sample the same neighbors.

    Args:
        x: ``(n, d1)`` representation. y: ``(n, d2)`` representation of the same n inputs.
        k: neighbors per sample, ``1 <= k < n``.
        metric: how neighbors are ranked: ``"cosine"`` (default, as the reference),
            ``"euclidean"`` (or ``"sqeuclidean"``, the same neighbors), ``"inner_product"``.
        chunk_size: the most query rows per kNN block (default ``CHUNK_SIZE``; fewer
            where a block would exceed 256 MiB).
        neighbors: ``"exact"`` (default) or ``"approximate"`` (or an
            :class:`~subspaces.linalg.ann.ANNOptions`): the neighbor search of each side
            (:mod:`subspaces.linalg.ann`).

    Returns:
        A 0-dim float64 tensor on the inputs' device; with ``neighbors="approximate"`` an
        :class:`~subspaces.linalg.ann.ApproximateValue` ``(value, recall, recall_queries)``
        (the recall averaged over both sides' searches).

    Examples:
        >>> import torch
        >>> from subspaces.similarity import mutual_knn
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 8, generator=g)
        >>> y = x + 0.3 * torch.randn(50, 8, generator=g)
        >>> round(float(mutual_knn(x, y, k=5)), 4)
        0.62
    """
    ix, iy, k, searches = _paired_neighbors(
        x, y, k, metric, chunk_size, sets_only=True, neighbors=neighbors
    )
    return with_recall(mutual_knn_from_neighbors(ix, iy), *searches)


def neighbor_lists(
    x: Any, *, k: int = 10, metric: NeighborMetric = "cosine", chunk_size: int = CHUNK_SIZE
) -> Tensor:
    """The ``(n, k)`` indices of each sample's nearest neighbors (itself excluded), nearest
    first: what the ``*_from_neighbors`` functions compare, computed once per representation
    (e.g. by :func:`~subspaces.similarity.pairwise`).

    Examples:
        >>> import torch
        >>> from subspaces.similarity import neighbor_lists
        >>> x = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
        >>> tuple(neighbor_lists(x, k=5).shape)
        (50, 5)
    """
    chosen = check_choice(metric, name="metric", choices=KNN_METRICS)
    t = check_matrix(x, name="x", min_samples=2)
    check_not_constant(t, name="x", measure="a neighborhood measure")
    t = rescaled(t)  # the neighbors do not depend on the scale: bring extreme data into range
    return _neighbors(t, _check_k(k, t.shape[0]), chosen, _check_block(chunk_size)).indices


def mutual_knn_from_neighbors(ix: Tensor, iy: Tensor) -> Tensor:
    """:func:`mutual_knn` from two ``(n, k)`` neighbor lists.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import neighbor_lists, mutual_knn_from_neighbors
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 8, generator=g)
        >>> y = x + 0.3 * torch.randn(50, 8, generator=g)
        >>> ix, iy = neighbor_lists(x, k=5), neighbor_lists(y, k=5)
        >>> round(float(mutual_knn_from_neighbors(ix, iy)), 4)
        0.62
    """
    ix, iy = _check_neighbor_lists(ix, iy)
    return _overlap_counts(ix, iy).to(torch.float64).mean() / ix.shape[1]


def knn_jaccard_from_neighbors(ix: Tensor, iy: Tensor) -> Tensor:
    """:func:`knn_jaccard` from two ``(n, k)`` neighbor lists.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import neighbor_lists, knn_jaccard_from_neighbors
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 8, generator=g)
        >>> y = x + 0.3 * torch.randn(50, 8, generator=g)
        >>> ix, iy = neighbor_lists(x, k=5), neighbor_lists(y, k=5)
        >>> round(float(knn_jaccard_from_neighbors(ix, iy)), 4)
        0.4849
    """
    ix, iy = _check_neighbor_lists(ix, iy)
    c = _overlap_counts(ix, iy).to(torch.float64)
    return (c / (2 * ix.shape[1] - c)).mean()


@overload
def knn_jaccard(
    x: Any,
    y: Any,
    *,
    k: int = ...,
    metric: NeighborMetric = ...,
    chunk_size: int = ...,
    neighbors: Literal["exact"] = ...,
) -> Tensor: ...


@overload
def knn_jaccard(
    x: Any,
    y: Any,
    *,
    k: int = ...,
    metric: NeighborMetric = ...,
    chunk_size: int = ...,
    neighbors: Literal["approximate"] | ANNOptions,
) -> ApproximateValue: ...


def knn_jaccard(
    x: Any,
    y: Any,
    *,
    k: int = 10,
    metric: NeighborMetric = "cosine",
    chunk_size: int = CHUNK_SIZE,
    neighbors: str | ANNOptions = "exact",
) -> Tensor | ApproximateValue:
    """Mean Jaccard index of the k-nearest-neighbor sets (Klabunde et al., 2023; ReSi's
    ``JaccardSimilarity``).

    J(X, Y) = (1/n) Σ_i |N_k^X(i) ∩ N_k^Y(i)| / |N_k^X(i) ∪ N_k^Y(i)|, and since both sets
    have ``k`` elements, the i-th term is c_i / (2k − c_i) with c_i the overlap.

    ReSi ranks by scikit-learn's cosine metric (our default) and removes self by dropping the
    first of ``k + 1`` neighbors; we exclude self by index, which differs only when a point
    has exact duplicates. Invariances: as :func:`mutual_knn`. Symmetric; in [0, 1].

    Args:
        x: ``(n, d1)`` representation. y: ``(n, d2)`` representation of the same n inputs.
        k: neighbors per sample, ``1 <= k < n``.
        metric: how neighbors are ranked (see :func:`mutual_knn`).
        chunk_size: the most query rows per kNN block (default ``CHUNK_SIZE``; fewer
            where a block would exceed 256 MiB).
        neighbors: ``"exact"`` (default) or ``"approximate"`` (see :func:`mutual_knn`).

    Returns:
        A 0-dim float64 tensor on the inputs' device (an
        :class:`~subspaces.linalg.ann.ApproximateValue` with ``neighbors="approximate"``).

    Examples:
        >>> import torch
        >>> from subspaces.similarity import knn_jaccard
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 8, generator=g)
        >>> y = x + 0.3 * torch.randn(50, 8, generator=g)
        >>> round(float(knn_jaccard(x, y, k=5)), 4)
        0.4849
    """
    ix, iy, k, searches = _paired_neighbors(
        x, y, k, metric, chunk_size, sets_only=True, neighbors=neighbors
    )
    return with_recall(knn_jaccard_from_neighbors(ix, iy), *searches)


@overload
def rank_similarity(
    x: Any,
    y: Any,
    *,
    k: int = ...,
    metric: NeighborMetric = ...,
    chunk_size: int = ...,
    neighbors: Literal["exact"] = ...,
) -> Tensor: ...


@overload
def rank_similarity(
    x: Any,
    y: Any,
    *,
    k: int = ...,
    metric: NeighborMetric = ...,
    chunk_size: int = ...,
    neighbors: Literal["approximate"] | ANNOptions,
) -> ApproximateValue: ...


def rank_similarity(
    x: Any,
    y: Any,
    *,
    k: int = 10,
    metric: NeighborMetric = "cosine",
    chunk_size: int = CHUNK_SIZE,
    neighbors: str | ANNOptions = "exact",
) -> Tensor | ApproximateValue:
    """Rank similarity of the k-nearest-neighbor lists (Wang et al., 2022; as in ReSi's
    ``RankSimilarity``, Klabunde et al., 2023).

    For sample i, with r_X(j) the rank (1 = nearest) of j among i's neighbors in X and
    C_i = N_k^X(i) ∩ N_k^Y(i):

        s_i = (1 / v_i) Σ_{j ∈ C_i} 2 / ((1 + |r_X(j) − r_Y(j)|) (r_X(j) + r_Y(j))),
        v_i = Σ_{r=1}^{|C_i|} 1/r,

    and s_i = 0 when C_i is empty; the measure is (1/n) Σ_i s_i. Note that the normalizer
    v_i counts only the *shared* neighbors (as ReSi does), so one shared neighbor at rank 1
    in both lists scores 1 for that sample: this measures agreement of the ranks of the
    shared neighbors more than the size of the overlap (combine with :func:`knn_jaccard`).

    Ranks depend on the order within the lists, so ties between equally near points matter:
    they go to the lower index. Self-exclusion by index (ReSi drops the first neighbor,
    which differs with duplicated points). Invariances: as :func:`mutual_knn`. Symmetric;
    in [0, 1]; 1 when both lists agree in order.

    Args:
        x: ``(n, d1)`` representation. y: ``(n, d2)`` representation of the same n inputs.
        k: neighbors per sample, ``1 <= k < n``.
        metric: how neighbors are ranked (see :func:`mutual_knn`).
        chunk_size: the most query rows per kNN block (default ``CHUNK_SIZE``; fewer
            where a block would exceed 256 MiB).
        neighbors: ``"exact"`` (default) or ``"approximate"`` (see :func:`mutual_knn`).

    Returns:
        A 0-dim float64 tensor on the inputs' device (an
        :class:`~subspaces.linalg.ann.ApproximateValue` with ``neighbors="approximate"``).

    Examples:
        >>> import torch
        >>> from subspaces.similarity import rank_similarity
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 8, generator=g)
        >>> y = x + 0.3 * torch.randn(50, 8, generator=g)
        >>> round(float(rank_similarity(x, y, k=5)), 4)
        0.5866
    """
    ix, iy, k, searches = _paired_neighbors(x, y, k, metric, chunk_size, neighbors=neighbors)
    return with_recall(rank_similarity_from_neighbors(ix, iy), *searches)


def rank_similarity_from_neighbors(ix: Tensor, iy: Tensor) -> Tensor:
    """:func:`rank_similarity` from two ``(n, k)`` neighbor lists, nearest first.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import neighbor_lists, rank_similarity_from_neighbors
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 8, generator=g)
        >>> y = x + 0.3 * torch.randn(50, 8, generator=g)
        >>> ix, iy = neighbor_lists(x, k=5), neighbor_lists(y, k=5)
        >>> round(float(rank_similarity_from_neighbors(ix, iy)), 4)
        0.5866
    """
    ix, iy = _check_neighbor_lists(ix, iy)
    k = ix.shape[1]
    device = ix.device
    ranks = torch.arange(1, k + 1, dtype=torch.float64, device=device)
    weight = 2.0 / ((1.0 + (ranks[:, None] - ranks[None, :]).abs()) * (ranks[:, None] + ranks))
    harmonic = torch.cat([torch.ones(1, dtype=torch.float64, device=device), ranks.reciprocal()])
    harmonic = harmonic.cumsum(0) - 1.0  # harmonic[c] = Σ_{r=1}^{c} 1/r, harmonic[0] = 0
    harmonic[0] = 1.0  # c = 0: the score is 0 / 1
    total = torch.zeros((), dtype=torch.float64, device=device)
    for _, _, match in _match_blocks(ix, iy):
        score = (match * weight).sum(dim=(1, 2))
        total = total + (score / harmonic[match.sum(dim=(1, 2))]).sum()
    return total / ix.shape[0]


def _pair_cosines(t: Tensor, inv_norm: Tensor, cand: Tensor) -> Tensor:
    """cos(t_i, t_cand[i, a]) in float64 for an (n, c) candidate table, chunked."""
    n, c = cand.shape
    out = torch.empty(n, c, dtype=torch.float64, device=t.device)
    step = max(1, _GATHER_ELEMENTS // (c * t.shape[1]))  # small float64 gathers stay in cache
    for start in range(0, n, step):
        stop = min(start + step, n)
        idx = cand[start:stop]
        g = t.index_select(0, idx.reshape(-1)).reshape(stop - start, c, -1).to(torch.float64)
        q = t[start:stop].to(torch.float64)
        dots = torch.bmm(g, q[:, :, None]).squeeze(2)
        out[start:stop] = dots * inv_norm[start:stop, None] * inv_norm[idx]
    return out


def _inverse_row_norms(t: Tensor, name: str) -> Tensor:
    sq = _row_sq_norms64(t)
    n_zero = int((sq == 0).sum())
    if n_zero:
        raise DegenerateInputError(
            f"{name} has {n_zero} rows of zero norm, for which the cosine is undefined; drop "
            "those samples or use a measure with metric='euclidean'."
        )
    return sq.rsqrt()


def second_order_cosine_similarity(
    x: Any,
    y: Any,
    *,
    k: int = 10,
    method: Literal["similarity", "distance"] = "similarity",
    chunk_size: int = CHUNK_SIZE,
    neighbors: str = "exact",
) -> Tensor:
    """Second-order cosine similarity (Hamilton, Leskovec & Jurafsky, 2016).

    For sample i, let U_i = N_k^X(i) ∪ N_k^Y(i) (cosine neighbors, self excluded), and
    s^X_i = (cos(x_i, x_j))_{j ∈ U_i}, s^Y_i likewise. Then

        SOCS(X, Y) = (1/n) Σ_i cos(s^X_i, s^Y_i).

    ``method="similarity"`` follows the paper (vectors of cosine similarities);
    ``method="distance"`` follows ReSi's ``second_order_cosine_similarity``, whose vectors
    hold cosine *distances* 1 − cos (another value in general).

    Invariant to orthogonal transforms and isotropic scaling of either side, not to
    translation. Symmetric. In [−1, 1] with similarity entries (in [0, 1] when all the
    neighbor cosines are non-negative, and always with distance entries); 1 when y = x.

    Args:
        x: ``(n, d1)`` representation. y: ``(n, d2)`` representation of the same n inputs.
        k: neighbors per sample, ``1 <= k < n``.
        method: ``"similarity"`` (the paper) or ``"distance"`` (ReSi).
        chunk_size: the most query rows per kNN block (default ``CHUNK_SIZE``; fewer
            where a block would exceed 256 MiB).
        neighbors: ``"exact"`` only (``"approximate"`` raises
            :class:`~subspaces.InvalidOptionError`).

    Returns:
        A 0-dim float64 tensor on the inputs' device.

    Raises:
        DegenerateInputError: a zero row, or a sample whose second-order vector is zero
            (only possible with ``method="distance"`` when all its neighbors coincide
            with it).

    Examples:
        >>> import torch
        >>> from subspaces.similarity import second_order_cosine_similarity
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 8, generator=g)
        >>> y = x + 0.3 * torch.randn(50, 8, generator=g)
        >>> round(float(second_order_cosine_similarity(x, y, k=5)), 4)
        0.9193
    """
    entries = check_choice(method, name="method", choices=("similarity", "distance"))
    refuse_approximate(
        neighbors,
        measure="second_order_cosine_similarity",
        why="its value compares cosines over the union of both neighbor sets, which an "
        "approximate search would change without a recall to report per sample.",
    )
    tx, ty = _validated(x, y)
    k = _check_k(k, tx.shape[0])
    block = _check_block(chunk_size)
    inv_x = _inverse_row_norms(tx, "x")
    inv_y = _inverse_row_norms(ty, "y")
    ix = _neighbors(tx, k, "cosine", block).indices
    iy = _neighbors(ty, k, "cosine", block).indices
    cand = torch.cat([ix, iy], dim=1)
    shared = torch.empty(iy.shape, dtype=torch.bool, device=iy.device)
    for start, stop, match in _match_blocks(ix, iy):
        shared[start:stop] = match.any(dim=1)
    keep = torch.cat([torch.ones_like(ix, dtype=torch.bool), ~shared], dim=1).to(torch.float64)
    sx = _pair_cosines(tx, inv_x, cand)
    sy = _pair_cosines(ty, inv_y, cand)
    if entries == "distance":
        sx, sy = 1.0 - sx, 1.0 - sy
    sx, sy = sx * keep, sy * keep
    nx, ny = (sx * sx).sum(dim=1), (sy * sy).sum(dim=1)
    bad = (nx == 0) | (ny == 0)
    if bool(bad.any()):
        raise DegenerateInputError(
            f"{int(bad.sum())} samples have an all-zero second-order vector (every neighbor "
            "coincides with the sample), so their cosine is undefined; remove duplicated "
            "points or use method='similarity'."
        )
    return ((sx * sy).sum(dim=1) / (nx * ny).sqrt()).mean()
