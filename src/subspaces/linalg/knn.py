"""Exact k-nearest neighbors by blocked top-k, with certified float64 re-ranking.

One kernel for every method that needs neighbors (mutual kNN alignment, CKNNA, Jaccard and
rank similarity, TwoNN and MLE intrinsic dimension...). Queries are processed in row blocks:
for each block the ``block × m`` score matrix against the ``m`` reference points is one
matmul in the input's dtype (norms precomputed), ``torch.topk`` keeps a few more candidates
than asked for, and those candidates are re-scored exactly in float64 and sorted. Memory is
O(block × m); nothing ``n × n`` is ever allocated. Work happens on the inputs' device.

What "exact" means. The neighbors of a query are the k reference points with the
smallest *reported value* (the float64 value below; the largest for ``inner_product``),
ties going to the lower reference index. The reported value of a pair is computed in
float64 from the data as given, by one fixed formula (``||a − b||²`` from the differences;
``1 − a·b / sqrt(||a||² ||b||²)`` from float64 dot products and norms), so it depends only
on the two rows' numbers: float32 input and its float64 copy (the same numbers) get the
same neighbors and the same values (the same float64 arithmetic on the same numbers),
and ``method="brute"`` and ``"tree"`` the same neighbors.

Screen, re-rank, certify. In float32, ``||a||² + ||b||² − 2 a·b`` loses digits to
cancellation when two points are close relative to their norms (the error is
~1e-7 · ||a||², not ~1e-7 · ||a − b||²), which misorders near neighbors and, worse for
ratio estimators such as TwoNN, makes small distances inaccurate. The input-dtype scores
are therefore only used to *screen* candidates: the ``k + extra`` best are kept
(``extra = 8 + k // 4``) and their values recomputed in float64 as above. The screen runs
on rows moved to where float32 keeps the digits that decide the ranking: for the Euclidean
metrics the data centered on the reference mean (distances are translation invariant; a
common offset no longer cancels), for cosine the unit rows centered on the mean unit row,
formed in float64 (``1 − cos = ||â − b̂||² / 2`` is translation invariant in the unit
vectors, so rows that share a large offset are screened on how they differ, not on cosines
equal to 7 digits). Each query is then *certified*: the best screening score left out,
widened by a rigorous bound on the screen's rounding (the matmul's, Higham's
``γ_d ||q|| ||r||`` for any summation order; the rounding of the stored rows and norms;
underflow; TF32 or bfloat16 factors when ``torch.set_float32_matmul_precision`` or
``torch.backends.cuda.matmul.allow_tf32`` allow them) and by the float64 re-scoring's own
rounding, must lie strictly beyond the k-th reported value; then no point left out can
reach or tie the k-th. A query that fails (neighbor gaps below the screen's resolution,
as in tight clusters or float32 cosines of rows with a large common offset; exact ties
beyond the margin; scores that overflow) is searched again in float64: its scores against
every reference row are recomputed in float64 (reference chunk by chunk) and every point
whose value could be the k-th or nearer, however many tie, is re-scored and sorted. The
result is therefore exact in the sense above whatever the data; failing queries cost a
float64 pass over the reference (none on ordinary data: Gaussian, ReLU or offset clouds of
2,000 points, d = 8 to 768, k = 2 or 10, certified every query). ``rerank=False`` skips
the re-scoring and the certificate (faster; values and order from the float32 screen).

Ties are broken deterministically: among candidates with equal (float64) values, the lower
reference index comes first; the certificate sends exact ties at the screening boundary
(e.g. a point duplicated more than ``k + extra`` times) to the float64 search, which keeps
every tied point, so lower indices win there too.

Self-exclusion (``exclude_self=True``) removes query ``i``'s own row ``i`` from the reference
*by index*, not by value, so a duplicate of a point is still reported as its neighbor at
distance 0 while the point itself never is.

Tree path (``method="tree"``, or chosen by ``"auto"``). Brute force costs O(n² d), hopeless
for n = 10⁶ on a CPU, but data from a low-dimensional source often have low *numerical
rank* even in a wide ambient space (a 10-sphere isometrically embedded in R^100 spans an
11-dimensional affine subspace). The tree path

1. maps the points to their "geometry": the rows themselves for ``euclidean`` and
   ``sqeuclidean``, the L2-normalized rows for ``cosine`` (1 − cos = ||u − v||² / 2 on unit
   vectors, so the order is the same);
2. centers them at the reference mean and forms the float64 scatter matrix of the
   reference and query points (``d × d``, chunked), and ``eigh``;
3. keeps the ``r`` leading principal directions, ``r`` the numerical rank: the fewest
   directions whose discarded variance is at most ``d · eps64`` of the total (the rounding
   floor of a float64 eigendecomposition) plus ``eps_in² Σ_i ||x_i||²`` (the rounding of
   the input's storage, e.g. float32, which puts a little variance in every direction), so
   what is dropped is indistinguishable from rounding; a residual ``ε`` off the subspace
   changes a distance ``δ`` only by ~``ε² / 2δ``;
4. builds ``scipy.spatial.cKDTree`` on the ``r`` principal coordinates and asks it for
   ``k + 1`` neighbors of each query (``k + 2`` with self-exclusion; its own row is then
   dropped by index), re-scores them exactly as the brute path does (float64, from the
   data as given) and sorts them, ties by lower index;
5. certifies each query: projection never lengthens a difference, so every point the
   tree did *not* return, lying farther than the farthest returned one in principal
   coordinates, is farther in truth too, provided that farthest distance exceeds the k-th
   exact value plus a rounding margin (``64 (d + 1) eps64`` times the data's largest norm;
   for cosine also on the squared scale, where its rounding is absolute). Queries that fail
   (exact ties, duplicates, near ties, points off the subspace) get every reference point
   inside that radius from a ball query, re-scored and sorted the same way.

The result is therefore exact whatever rank is used; the rank criterion only decides how
fast it is (a too-small rank would send many queries to the ball search). Exact ties,
including groups of duplicates larger than any candidate margin, go to the lower index as
in the brute path; where the brute path's float32 screen is itself inexact (more than
``extra`` points within float32 rounding of the k-th), the tree's float64 answer is the
exact one.

``method="auto"`` takes the tree for CPU tensors, a tree metric, at least ``4096`` queries
and reference rows, ``d <= n / 8`` (the ``n d²`` scatter matrix then costs little next to
``n² d``), and numerical rank ``r <= 12`` for ``k <= 4``, ``r <= 10`` for ``k <= 32``,
``r <= 8`` beyond (first probed on 104 evenly spaced rows, a lower bound on the full rank,
so full-rank data are rejected for O(104² d)); GPU tensors always go to the blocked search.
The thresholds were measured on 2 CPU cores, d = 100, float32, n = 20,000, with a rank-r
Gaussian (intrinsic dimension r, the tree's worst case). k = 2: tree 0.34 / 0.80 / 1.60 /
2.63 s for r = 8 / 10 / 12 / 14, brute force 1.54 s. r = 10: tree 1.02 / 1.24 / 1.56 /
2.21 s for k = 5 / 10 / 20 / 50, brute force 1.6 / 1.8 / 2.1 s for k = 10 / 20 / 50;
r = 8, k = 50: tree 1.22 s. Smaller n favors brute force slightly (n = 8192, k = 2:
tree 0.10 / 0.31 / 0.54 s for r = 8 / 12 / 16, brute 0.28 s; n = 4096, r = 5: 0.022 s
against 0.077 s; n = 1000: even), larger n the tree (brute force grows as n²). A k-d tree
degrades quickly with intrinsic dimension: TwoNN on a 10-sphere in R^100 (rank 11) takes
0.95 s at n = 20,000 (brute force 1.55 s), but would need ~9 minutes at n = 10⁶, against
9 s for a 4-sphere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
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
from subspaces.linalg.constants import CHUNK_SIZE, MEMORY_BUDGET, rows_within_budget
from subspaces.linalg.decomp import eigh, eigvalsh
from subspaces.linalg.scaling import ldexp, scale_exponent, unscale

if TYPE_CHECKING:  # ann imports this module; it is imported lazily in knn()
    from subspaces.linalg.ann import ANNOptions, ApproximateKNNResult

__all__ = ["DEFAULT_MEMORY_BUDGET", "KNN_METHODS", "KNN_METRICS", "KNNResult", "knn"]

Metric = Literal["euclidean", "sqeuclidean", "cosine", "inner_product"]
Method = Literal["auto", "brute", "tree"]

KNN_METRICS: tuple[str, ...] = ("euclidean", "sqeuclidean", "cosine", "inner_product")
"""Metrics :func:`knn` accepts. ``inner_product`` is a similarity (larger is nearer)."""

DEFAULT_MEMORY_BUDGET = MEMORY_BUDGET
"""Bytes of working memory per block (:data:`~subspaces.linalg.constants.MEMORY_BUDGET`,
256 MiB): a block holds fewer than ``chunk_size`` query rows where needed to stay within it."""

KNN_METHODS: tuple[str, ...] = ("auto", "brute", "tree")
"""Search methods of :func:`knn`: automatic choice, blocked brute force, k-d tree."""

_STORE_CHUNK = 1024  # rows per float64 chunk when forming the screen rows (stays in cache)
_RERANK_ELEMENTS = 1 << 17  # gathered elements per re-ranking sub-block (~1 MiB float64)

_EPS64 = float(torch.finfo(torch.float64).eps)
_TREE_METRICS = ("euclidean", "sqeuclidean", "cosine")
_AUTO_MAX_RANK = 12  # largest numerical rank for which method="auto" takes the tree (k <= 4)
_AUTO_MIN_POINTS = 4096  # fewer queries or reference rows: brute force is as fast
_RANK_PROBE_ROWS = 8 * (_AUTO_MAX_RANK + 1)
_TREE_SLACK = 64.0  # rounding margin of the tree's certificate, in units of (d + 1)·eps64
_BALL_ROWS = 1024  # uncertified queries per ball search


class KNNResult(NamedTuple):
    """The k nearest neighbors of each query, nearest first.

    Attributes:
        values: ``(n_queries, k)`` float64: distances for ``euclidean``, ``sqeuclidean`` and
            ``cosine`` (1 − cosine similarity), ascending; inner products for
            ``inner_product``, descending.
        indices: ``(n_queries, k)`` int64 rows of the reference set.

    Examples:
        >>> import torch
        >>> values, indices = knn(torch.tensor([[0.0], [2.0], [5.0]]), 1)
        >>> indices.flatten().tolist(), values.flatten().tolist()
        ([1, 0, 1], [2.0, 2.0, 3.0])
    """

    values: Tensor
    indices: Tensor


def _extra_candidates(k: int) -> int:
    return 8 + k // 4


def _row_sq_norms64(t: Tensor) -> Tensor:
    """Squared row norms in float64, chunked so no float64 copy of ``t`` is made."""
    out = torch.empty(t.shape[0], dtype=torch.float64, device=t.device)
    for start in range(0, t.shape[0], _STORE_CHUNK):
        chunk = t[start : start + _STORE_CHUNK].to(torch.float64, copy=True)
        out[start : start + chunk.shape[0]] = chunk.mul_(chunk).sum(dim=1)
    return out


def _column_mean64(t: Tensor) -> Tensor:
    """Column means accumulated in float64, chunked."""
    total = torch.zeros(t.shape[1], dtype=torch.float64, device=t.device)
    for start in range(0, t.shape[0], CHUNK_SIZE):
        total += t[start : start + CHUNK_SIZE].to(torch.float64).sum(dim=0)
    return total / t.shape[0]


def _matmul_rounding(dtype: torch.dtype, device: torch.device) -> tuple[float, float]:
    """``(u, delta)``: unit roundoff of arithmetic in ``dtype``, and the relative rounding of
    each matmul factor beyond it.

    ``delta`` is 0 unless float32 products may run on reduced-precision factors: TF32
    (``2**-11``) with ``torch.set_float32_matmul_precision("high")`` or
    ``torch.backends.cuda.matmul.allow_tf32`` on a CUDA device, bfloat16 (``2**-8``) with
    ``"medium"``.
    """
    u = float(torch.finfo(dtype).eps) / 2.0
    delta = 0.0
    if dtype == torch.float32:
        precision = torch.get_float32_matmul_precision()
        if precision == "medium":
            delta = 2.0**-8
        elif precision == "high" or (
            device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32
        ):
            delta = 2.0**-11
    return u, delta


def _screen_error(
    q_norm: Tensor, r_max: float, d: int, dtype: torch.dtype, device: torch.device, metric: str
) -> Tensor:
    """Bound on the screen's error: ``|2 (s − σ)|`` for the distance metrics, whose score
    ``s = q·r − ||r||² / 2`` (``||r||²`` from float64) estimates the squared distance as
    ``||q||² − 2 s``; ``|s − σ|`` for ``inner_product`` (``s = q·r``). ``s`` as computed in
    ``dtype``, ``σ`` its exact value for the stored vectors, for a query of norm ``q_norm``
    and every reference row of norm at most ``r_max``.

    The matmul: ``(3 delta + 2 gamma) ||q|| ||r||`` with ``gamma = (d + 2) u / (1 − (d + 2) u)``
    (Higham's bound for any summation order, FMA or not; Cauchy–Schwarz on Σ|q_l r_l|); the
    rounding of ``||r||² / 2`` to ``dtype`` and of the subtraction, doubled,
    ``3 u (||q|| ||r|| + ||r||²)``;
    underflow and flushed subnormals, ``(d + 4) tiny (1 + ||q|| + ||r||)²``. Infinite where
    a score could overflow ``dtype`` (every such row then fails its certificate).
    """
    u, delta = _matmul_rounding(dtype, device)
    info = torch.finfo(dtype)
    gamma = (d + 2) * u / (1.0 - (d + 2) * u) if (d + 2) * u < 0.5 else torch.inf
    qr = q_norm * r_max
    dot = (3.0 * delta + 2.0 * gamma) * qr
    under = (d + 4) * float(info.tiny) * (1.0 + q_norm + r_max).square()
    if metric == "inner_product":
        err = dot + under
        size = qr
    else:
        err = 2.0 * dot + 3.0 * u * (qr + r_max * r_max) + (d + 2) * _EPS64 * r_max**2 + under
        size = 2.0 * qr + r_max * r_max
    return torch.where(size < float(info.max) / 8, err, torch.inf)


def _value_bounds(
    w_est: Tensor, err: Tensor, delta: Tensor, metric: str, d: int
) -> tuple[Tensor, Tensor]:
    """Bounds on the reported float64 value (:func:`_exact_values`) of distance metrics.

    ``w_est``: a screen's estimate of the squared distance of the stored vectors in screen
    space (centered rows; centered unit rows for ``cosine``), within ``err``; ``delta``: how
    far the stored vectors' distance can lie from the data's (their rounding). The float64
    re-scoring adds a relative ``(d + 8) eps64`` (absolute for ``cosine``, whose value
    ``1 − cos = ||u − v||² / 2`` on unit vectors is computed from a cosine of magnitude
    <= 1). NaN bounds (overflow) become −inf / +inf: such a point is always a candidate.
    """
    c64 = (d + 8) * _EPS64
    lo_d = ((w_est - err).clamp(min=0.0).sqrt() - delta).clamp(min=0.0)
    hi_d = (w_est + err).clamp(min=0.0).sqrt() + delta
    if metric == "euclidean":
        lo, hi = lo_d * (1.0 - c64), hi_d * (1.0 + c64)
    elif metric == "sqeuclidean":
        lo, hi = lo_d.square() * (1.0 - c64), hi_d.square() * (1.0 + c64)
    else:
        lo, hi = lo_d.square() / 2.0 - c64, hi_d.square() / 2.0 + c64
    lo = torch.where(lo.isnan(), -torch.inf, lo)
    hi = torch.where(hi.isnan(), torch.inf, hi)
    return lo, hi


@dataclass(frozen=True)
class _ScreenSpace:
    """Where the screen's scores are computed: rows mapped so that float32 keeps the digits
    that decide the ranking.

    ``euclidean`` / ``sqeuclidean``: ``x − shift``, the reference's column mean (distances
    are translation invariant; a common offset no longer costs digits to cancellation).
    ``cosine``: ``x / ||x|| − shift``, formed in float64, ``shift`` the mean of the
    reference's unit rows when its squared norm is at least 1/4 (else none: centering would
    not tighten the bound): ``1 − cos(a, b) = ||â − b̂||² / 2`` is translation invariant in
    the unit vectors, so data whose rows all point the same way (a large common offset)
    are screened on their small differences, not on cosines that agree to 7 digits.
    ``inner_product``: the rows as given.
    """

    metric: str
    shift: Tensor | None

    def to64(self, t: Tensor, raw_sq: Tensor) -> Tensor:
        """Rows of ``t`` (squared norms ``raw_sq``, float64) in screen space, float64."""
        g = t.to(torch.float64, copy=True)
        if self.metric == "cosine":
            g.div_(raw_sq.sqrt()[:, None])
        if self.shift is not None:
            g.sub_(self.shift)
        return g

    def stored(self, t: Tensor, raw_sq: Tensor) -> tuple[Tensor, Tensor]:
        """``t`` in screen space in its own dtype (one copy) and the float64 squared norms
        of the stored rows. Each stored coordinate is within ``3 u`` (relative, ``u`` the
        dtype's unit roundoff) of its exact value: Euclidean ``t − shift`` and uncentered
        unit rows ``t · ||t||⁻¹`` in the input dtype (the shift is representable there),
        centered unit rows formed in float64 chunk by chunk, then rounded (in the dtype
        their rounding would be relative to ``||t̂||``, not to the small ``||t̂ − shift||``).
        """
        if self.metric == "inner_product":
            return t, raw_sq
        if self.metric != "cosine":
            assert self.shift is not None
            out = t - self.shift.to(t.dtype)
        elif self.shift is None:
            out = t * raw_sq.rsqrt().to(t.dtype)[:, None]
        else:
            out = torch.empty_like(t)
            for start in range(0, t.shape[0], _STORE_CHUNK):
                stop = start + _STORE_CHUNK
                out[start:stop] = self.to64(t[start:stop], raw_sq[start:stop])
        return out, _row_sq_norms64(out)


def _screen_space(ref: Tensor, metric: str, ref_raw_sq: Tensor) -> _ScreenSpace:
    if metric == "inner_product":
        return _ScreenSpace(metric, None)
    if metric != "cosine":
        # the mean rounded to the input dtype: rows near it are then centered exactly
        return _ScreenSpace(metric, _column_mean64(ref).to(ref.dtype).to(torch.float64))
    # the mean unit row only sets the shift (any one vector does): one matvec in the dtype
    mean = (ref_raw_sq.rsqrt().to(ref.dtype) @ ref).to(torch.float64) / ref.shape[0]
    if not bool(mean.isfinite().all()):  # norms beyond the dtype's range: in float64
        mean = torch.zeros(ref.shape[1], dtype=torch.float64, device=ref.device)
        for start in range(0, ref.shape[0], CHUNK_SIZE):
            stop = start + CHUNK_SIZE
            mean += ref_raw_sq[start:stop].rsqrt() @ ref[start:stop].to(torch.float64)
        mean /= ref.shape[0]
    return _ScreenSpace(metric, mean if float(mean @ mean) >= 0.25 else None)


@dataclass(frozen=True)
class _Prepared:
    """A blocked search's data, prepared once: the rows as given (for the float64
    re-scoring) with their float64 squared norms, and the rows in screen space, stored in
    the input dtype, with the float64 squared norms of the stored rows."""

    metric: str
    space: _ScreenSpace
    queries: Tensor
    ref: Tensor
    q_raw_sq: Tensor
    ref_raw_sq: Tensor
    q_screen: Tensor
    ref_screen: Tensor
    q_sq: Tensor
    ref_sq: Tensor


def _prepare(
    queries: Tensor, ref: Tensor, metric: str, *, ref_raw_sq: Tensor | None = None
) -> _Prepared:
    """Norms, screen space and stored screen rows (``ref_raw_sq``: the reference's float64
    squared norms, if the caller has them)."""
    same = queries is ref
    if ref_raw_sq is None:
        ref_raw_sq = _row_sq_norms64(ref)
    q_raw_sq = ref_raw_sq if same else _row_sq_norms64(queries)
    if metric == "cosine":
        _check_cosine_norms(ref_raw_sq, q_raw_sq)
    space = _screen_space(ref, metric, ref_raw_sq)
    ref_screen, ref_sq = space.stored(ref, ref_raw_sq)
    q_screen, q_sq = (ref_screen, ref_sq) if same else space.stored(queries, q_raw_sq)
    return _Prepared(
        metric, space, queries, ref, q_raw_sq, ref_raw_sq, q_screen, ref_screen, q_sq, ref_sq
    )


def _key_bounds(
    scores: Tensor,
    q_sq: Tensor,
    r_max: float,
    d: int,
    metric: str,
    dtype: torch.dtype,
    raw_scale: Tensor,
) -> tuple[Tensor, Tensor]:
    """Lower and upper bounds on the sort key (the reported float64 value; its negative for
    ``inner_product``) of every point with screen score ``scores`` (rows: queries).

    ``q_sq``: the queries' squared norms in screen space (float64, of the stored vectors);
    ``r_max``: the largest stored reference norm; ``raw_scale``: ``||q|| · max ||r||`` of
    the data as given (the float64 rounding of an inner product).
    """
    s = scores.to(torch.float64)
    q_norm = q_sq.sqrt()
    err = _screen_error(q_norm, r_max, d, dtype, scores.device, metric)[:, None]
    if metric == "inner_product":
        e = err + (d + 8) * _EPS64 * raw_scale[:, None]
        return -(s + e), -(s - e)
    u = float(torch.finfo(dtype).eps) / 2.0
    delta = 3.0 * u * (q_norm + r_max)  # the stored rows' rounding (:meth:`_ScreenSpace.stored`)
    if metric == "cosine":
        delta = delta + 4.0 * (d + 6) * _EPS64
    return _value_bounds(q_sq[:, None] - 2.0 * s, err, delta[:, None], metric, d)


def _screen_scores(q: Tensor, ref: Tensor, metric: str, ref_half_sq: Tensor) -> Tensor:
    """Block score matrix, larger is nearer, in the input dtype (one matmul), on rows in
    screen space: ``q·r − ||r||² / 2`` (= ``(||q||² − ||q − r||²) / 2``; the row constant
    is left out) for the distance metrics (``ref_half_sq``: ``||r||² / 2`` in the input
    dtype), ``q·r`` for ``inner_product``."""
    dots = q @ ref.T
    if metric == "inner_product":
        return dots
    return dots.sub_(ref_half_sq[None, :])


def _fast_values(scores: Tensor, metric: str, q_sq: Tensor) -> Tensor:
    """Turn screening scores into the reported values, in float64 (``rerank=False``)."""
    s = scores.to(torch.float64)
    if metric == "inner_product":
        return s
    sq = (q_sq[:, None] - 2.0 * s).clamp_(min=0.0)
    if metric == "cosine":  # ||â − b̂||² / 2 = 1 − cos
        return sq.mul_(0.5).clamp_(max=2.0)
    return sq.sqrt_() if metric == "euclidean" else sq


def _exact_values(
    q: Tensor,
    ref: Tensor,
    idx: Tensor,
    metric: str,
    q_sq: Tensor,
    ref_sq: Tensor,
) -> Tensor:
    """Float64 values of the candidates ``idx`` (b, c) for the queries ``q`` (b, d).

    ``q_sq`` / ``ref_sq``: float64 squared norms of the data as given (used by ``cosine``).
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


def _check_cosine_norms(ref_sq: Tensor, q_sq: Tensor) -> None:
    """Refuse zero rows for the cosine metric (its value is undefined there)."""
    for name, sq in (("reference", ref_sq), ("queries", q_sq)):
        n_zero = int((sq == 0).sum())
        if n_zero:
            raise DegenerateInputError(
                f"the {name} have {n_zero} rows of zero norm, for which the cosine is "
                "undefined; drop those rows or use metric='euclidean'."
            )


def _order(values: Tensor, idx: Tensor, *, descending: bool) -> tuple[Tensor, Tensor]:
    """Sort each row by value, ties by lower index (two stable passes)."""
    idx_sorted, perm = idx.sort(dim=1)
    vals = values.gather(1, perm)
    vals, perm = vals.sort(dim=1, descending=descending, stable=True)
    return vals, idx_sorted.gather(1, perm)


def _float64_search(
    rows: Tensor,
    queries: Tensor,
    ref: Tensor,
    k: int,
    *,
    metric: str,
    space: _ScreenSpace,
    exclude_self: bool,
    q_raw_sq: Tensor,
    ref_raw_sq: Tensor,
    memory_budget: int,
) -> tuple[Tensor, Tensor]:
    """Exact top-k of the queries ``rows`` whose float32 screen was not certified.

    Their scores against every reference row are recomputed in float64 (in screen space,
    reference chunk by chunk, nothing of size ``m × d`` in float64); every point whose key
    could be at most the k-th smallest upper bound (:func:`_key_bounds` at float64
    precision) is a candidate, however many tie; the candidates are re-scored by
    :func:`_exact_values` and sorted, ties by lower index. ``queries`` / ``ref``: the data
    as given; ``q_raw_sq`` (of the ``rows``) / ``ref_raw_sq``: their float64 squared norms.
    """
    m, d = ref.shape
    descending = metric == "inner_product"
    group = max(1, memory_budget // (24 * m))
    out_vals = torch.empty(rows.shape[0], k, dtype=torch.float64, device=ref.device)
    out_idx = torch.empty(rows.shape[0], k, dtype=torch.long, device=ref.device)
    for lo_row in range(0, rows.shape[0], group):
        ids = rows[lo_row : lo_row + group]
        f = ids.shape[0]
        q_rows = queries.index_select(0, ids)
        q_sq_raw = q_raw_sq[lo_row : lo_row + group]
        q64 = space.to64(q_rows, q_sq_raw)
        q_sq = (q64 * q64).sum(dim=1)
        scores = torch.empty(f, m, dtype=torch.float64, device=ref.device)
        r_max_sq = 0.0
        for start in range(0, m, CHUNK_SIZE):
            stop = min(start + CHUNK_SIZE, m)
            r64 = space.to64(ref[start:stop], ref_raw_sq[start:stop])
            r_sq = (r64 * r64).sum(dim=1)
            r_max_sq = max(r_max_sq, float(r_sq.max()))
            dots = q64 @ r64.T
            scores[:, start:stop] = dots if descending else dots.sub_(0.5 * r_sq[None, :])
        raw_scale = (q_sq_raw * float(ref_raw_sq.max())).sqrt() if descending else q_sq
        lo, hi = _key_bounds(scores, q_sq, r_max_sq**0.5, d, metric, torch.float64, raw_scale)
        del scores
        if exclude_self:
            own = torch.arange(f, device=ref.device)
            lo[own, ids] = torch.inf
            hi[own, ids] = torch.inf
        hi_k = hi.kthvalue(k, dim=1).values
        candidate = lo <= hi_k[:, None]
        if exclude_self:
            candidate[own, ids] = False
        n_cand = min(int(candidate.sum(dim=1).max()) + int(exclude_self), m)
        cand = lo.topk(max(n_cand, k), dim=1, largest=False).indices
        del lo, hi, candidate
        vals = _exact_values(q_rows, ref, cand, metric, q_sq_raw, ref_raw_sq)
        if exclude_self:
            vals.masked_fill_(cand == ids[:, None], -torch.inf if descending else torch.inf)
        vals, cand = _order(vals, cand, descending=descending)
        out_vals[lo_row : lo_row + f] = vals[:, :k]
        out_idx[lo_row : lo_row + f] = cand[:, :k]
    return out_vals, out_idx


def _knn_blocked(
    queries: Tensor,
    ref: Tensor,
    k: int,
    *,
    metric: str,
    exclude_self: bool,
    rerank: bool,
    chunk_size: int,
    memory_budget: int,
    prepared: _Prepared | None = None,
    rows: Tensor | None = None,
) -> KNNResult:
    """The kernel behind :func:`knn`; inputs already validated.

    Screen in the input dtype on rows in screen space (:class:`_ScreenSpace`), keep
    ``k + extra`` candidates, re-score them in float64 and sort; then certify each query:
    the best score left out must be too low, by the screen's rounding bound
    (:func:`_key_bounds`), for its point to reach or tie the k-th value. Queries that
    fail (near ties below the screen's resolution, exact ties beyond the margin, scores
    that overflow) are searched again in float64 (:func:`_float64_search`).

    ``prepared``: :func:`_prepare` of these ``queries``, ``ref`` and ``metric``, if the
    caller has it. ``rows``: search only these query rows (int64 indices; the result's
    rows follow them).
    """
    p = prepared if prepared is not None else _prepare(queries, ref, metric)
    d = ref.shape[1]
    m = ref.shape[0]
    n_q = queries.shape[0] if rows is None else rows.shape[0]
    available = m - 1 if exclude_self else m
    n_cand = min(available, k + _extra_candidates(k)) if rerank else k
    # Per query row: the score row and the top-k workspace (2 · m · itemsize bytes); the
    # re-ranking works in fixed sub-blocks of 2**17 gathered elements (not counted).
    rows_per_block = rows_within_budget(
        chunk_size, 2 * m * ref.element_size(), memory_budget=memory_budget
    )
    device = queries.device
    ref_half_sq = (0.5 * p.ref_sq).to(ref.dtype)
    r_max = float(p.ref_sq.max()) ** 0.5
    raw_r_max = float(p.ref_raw_sq.max()) ** 0.5
    descending = metric == "inner_product"
    certify = rerank and n_cand < available
    out_vals = torch.empty(n_q, k, dtype=torch.float64, device=device)
    out_idx = torch.empty(n_q, k, dtype=torch.long, device=device)
    for start in range(0, n_q, rows_per_block):
        stop = min(start + rows_per_block, n_q)
        if rows is None:
            ids = torch.arange(start, stop, device=device)
            q_screen, q_sq = p.q_screen[start:stop], p.q_sq[start:stop]
            q_exact, q_raw_sq = p.queries[start:stop], p.q_raw_sq[start:stop]
        else:
            ids = rows[start:stop]
            q_screen, q_sq = p.q_screen[ids], p.q_sq[ids]
            q_exact, q_raw_sq = p.queries[ids], p.q_raw_sq[ids]
        scores = _screen_scores(q_screen, p.ref_screen, metric, ref_half_sq)
        if exclude_self:
            scores[torch.arange(stop - start, device=device), ids] = -torch.inf
        n_take = n_cand + 1 if n_cand < available else n_cand
        top_vals, top_idx = torch.topk(scores, n_take, dim=1, largest=True, sorted=True)
        left_out = top_vals[:, n_cand] if n_take > n_cand else None
        if n_take > n_cand:
            # exact ties straddling the screening boundary: a stable sort keeps lower indices
            tied = top_vals[:, n_cand - 1] == top_vals[:, n_cand]
            if bool(tied.any()):
                tied_rows = tied.nonzero().squeeze(1)
                full = scores[tied_rows].sort(dim=1, descending=True, stable=True)
                top_vals[tied_rows] = full.values[:, :n_take]
                top_idx[tied_rows] = full.indices[:, :n_take]
            top_vals, top_idx = top_vals[:, :n_cand], top_idx[:, :n_cand]
        del scores
        if rerank:
            vals = _exact_values(q_exact, p.ref, top_idx, metric, q_raw_sq, p.ref_raw_sq)
        else:
            vals = _fast_values(top_vals, metric, q_sq)
        vals, idx = _order(vals, top_idx, descending=descending)
        out_vals[start:stop] = vals[:, :k]
        out_idx[start:stop] = idx[:, :k]
        if not certify or left_out is None:
            continue
        raw_scale = (q_raw_sq.sqrt() * raw_r_max) if descending else q_sq
        lo, _ = _key_bounds(left_out[:, None], q_sq, r_max, d, metric, ref.dtype, raw_scale)
        kth = vals[:, k - 1]
        open_rows = (~(lo[:, 0] > (-kth if descending else kth))).nonzero().squeeze(1)
        if open_rows.numel():
            redo = ids[open_rows]
            out_vals[open_rows + start], out_idx[open_rows + start] = _float64_search(
                redo,
                p.queries,
                p.ref,
                k,
                metric=metric,
                space=p.space,
                exclude_self=exclude_self,
                q_raw_sq=p.q_raw_sq[redo],
                ref_raw_sq=p.ref_raw_sq,
                memory_budget=memory_budget,
            )
    return KNNResult(out_vals, out_idx)


# ---- tree path: exact kNN through a k-d tree on the data's principal coordinates ---------


@dataclass(frozen=True)
class _Subspace:
    """The affine subspace the tree works in.

    ``center`` (d,) and ``basis`` (d, r), float64, orthonormal columns, leading principal
    direction first; ``max_raw`` / ``max_geometry``: the largest row norm of the data as
    given and of the centered geometry points (scales for the rounding margin).
    """

    center: Tensor
    basis: Tensor
    max_raw: float
    max_geometry: float

    @property
    def rank(self) -> int:
        return int(self.basis.shape[1])


def _numerical_rank(eigenvalues: Tensor, d: int, *, noise_floor: float = 0.0) -> int:
    """Fewest leading principal directions whose discarded variance is negligible.

    ``r`` is the smallest count with ``Σ_{i>r} λ_i <= d · eps64 · Σ_i λ_i + noise_floor``
    (eigenvalues of the centered scatter matrix, negatives from rounding clipped to 0).
    ``d · eps64 · Σλ`` is the rounding floor of a float64 eigendecomposition (``eigh``
    resolves eigenvalues only to ~``d · eps64 · λ_max``); ``noise_floor`` is the storage
    rounding of the input, ``eps_in² · Σ_i ||x_i||²`` (every coordinate of a float32 row
    carries up to ``eps32 · |x_il| / 2`` of it, in every direction). What is dropped is
    thus indistinguishable from rounding: a point's residual off the subspace is of the
    order of its storage precision, and changes a distance ``δ`` by ~``residual² / (2δ)``.
    """
    ev = eigenvalues.to(torch.float64).clamp(min=0.0).sort(descending=True).values
    total = float(ev.sum())
    if total == 0.0:
        return 0
    tail = ev.flip(0).cumsum(0).flip(0)  # tail[i] = Σ_{j >= i} λ_j, non-increasing
    return int((tail > d * _EPS64 * total + noise_floor).sum())


def _storage_eps2(t: Tensor) -> float:
    """Squared machine epsilon of the input's dtype (float64 and wider: eps64²)."""
    return float(torch.finfo(t.dtype).eps) ** 2 if t.is_floating_point() else _EPS64**2


def _geometry64(chunk: Tensor, metric: str) -> Tensor:
    """Rows in float64 as the tree sees them: L2-normalized for ``cosine``. Never in place."""
    g = chunk.to(torch.float64)
    if metric == "cosine":
        g = g / (g * g).sum(dim=1, keepdim=True).sqrt()
    return g


def _probe_rank(ref: Tensor, metric: str) -> int:
    """Numerical rank of a few evenly spaced rows (a lower bound on the full set's rank).

    Costs ``s² d`` with ``s = _RANK_PROBE_ROWS``: it rejects the tree cheaply for full-rank
    data before the ``m d²`` scatter matrix is formed.
    """
    m = ref.shape[0]
    s = min(m, _RANK_PROBE_ROWS)
    rows = torch.linspace(0, m - 1, s, dtype=torch.float64).round().long()
    raw = ref[rows].to(torch.float64)
    g = _geometry64(raw, metric)
    floor = _storage_eps2(ref) * float((g * g).sum())
    g = g - g.mean(dim=0)
    return _numerical_rank(eigvalsh(g @ g.T), ref.shape[1], noise_floor=floor)


def _fit_subspace(queries: Tensor, ref: Tensor, metric: str) -> _Subspace:
    """Principal subspace of the (geometry) points of ``ref`` and ``queries``, in float64.

    Center: the reference mean. Scatter matrix about it over both sets (chunked, float64),
    ``eigh``, rank by :func:`_numerical_rank` (at least 1).
    """
    d = ref.shape[1]
    total = torch.zeros(d, dtype=torch.float64)
    for start in range(0, ref.shape[0], CHUNK_SIZE):
        total += _geometry64(ref[start : start + CHUNK_SIZE], metric).sum(dim=0)
    center = total / ref.shape[0]
    scatter = torch.zeros(d, d, dtype=torch.float64)
    max_raw = max_geometry = sum_sq = 0.0
    for t in (ref,) if queries is ref else (ref, queries):
        for start in range(0, t.shape[0], CHUNK_SIZE):
            raw = t[start : start + CHUNK_SIZE].to(torch.float64)
            g = _geometry64(raw, metric)
            sq = (g * g).sum(dim=1)
            sum_sq += float(sq.sum())
            max_raw = max(max_raw, float((raw * raw).sum(dim=1).max().sqrt()))
            g = g - center
            scatter.addmm_(g.T, g)
            max_geometry = max(max_geometry, float((g * g).sum(dim=1).max().sqrt()))
    eigenvalues, vectors = eigh(scatter)
    floor = _storage_eps2(ref) * sum_sq
    r = max(_numerical_rank(eigenvalues, d, noise_floor=floor), 1)
    basis = vectors[:, -r:].flip(1).contiguous()
    return _Subspace(center, basis, max_raw, max_geometry)


def _project(t: Tensor, sub: _Subspace, metric: str) -> Tensor:
    """``(n, r)`` float64 principal coordinates ``(g − center) · basis``, chunked."""
    out = torch.empty(t.shape[0], sub.rank, dtype=torch.float64)
    for start in range(0, t.shape[0], CHUNK_SIZE):
        g = _geometry64(t[start : start + CHUNK_SIZE], metric) - sub.center
        out[start : start + g.shape[0]] = g @ sub.basis
    return out


def _pair_values(
    queries: Tensor,
    ref: Tensor,
    qi: Tensor,
    rj: Tensor,
    metric: str,
    q_sq: Tensor,
    ref_sq: Tensor,
) -> Tensor:
    """Float64 values of the pairs ``(queries[qi], ref[rj])``, as :func:`_exact_values`."""
    out = torch.empty(qi.shape[0], dtype=torch.float64)
    step = max(1, _RERANK_ELEMENTS // max(queries.shape[1], 1))
    for start in range(0, qi.shape[0], step):
        i, j = qi[start : start + step], rj[start : start + step]
        g = ref.index_select(0, j).to(torch.float64)
        q64 = queries.index_select(0, i).to(torch.float64)
        if metric in ("euclidean", "sqeuclidean"):
            g = g - q64
            sq = (g * g).sum(dim=1)
            out[start : start + i.shape[0]] = sq.sqrt() if metric == "euclidean" else sq
        else:
            dots = (g * q64).sum(dim=1)
            denom = (q_sq[i] * ref_sq[j]).sqrt()
            out[start : start + i.shape[0]] = (1.0 - dots / denom).clamp(0.0, 2.0)
    return out


def _ball_radius(kth: Tensor, metric: str, sub: _Subspace, d: int) -> Tensor:
    """Radius in principal coordinates that holds every point whose exact value is <= kth.

    Orthogonal projection never lengthens a difference, so a point at exact distance
    ``δ`` is within ``δ`` of the query in principal coordinates, up to rounding; the
    rounding margin is ``_TREE_SLACK · (d + 1) · eps64`` times the data's scale (the largest
    raw and centered row norms: errors of centering, projecting, the tree's arithmetic and
    the float64 re-scoring), and for ``cosine`` (value 1 − cos, whose rounding is absolute,
    ~eps64, near 0) the same margin on ``2 · value = ||u − v||²`` of the unit vectors.
    """
    unit = _TREE_SLACK * (d + 1) * _EPS64
    if metric == "cosine":
        return (2.0 * kth + unit).sqrt() + unit * (sub.max_geometry + 1.0)
    dist = kth if metric == "euclidean" else kth.sqrt()
    return dist + unit * (sub.max_raw + sub.max_geometry)


def _ball_rerank(
    tree: Any,
    points: Tensor,
    radii: Tensor,
    query_ids: Tensor,
    queries: Tensor,
    ref: Tensor,
    k: int,
    *,
    metric: str,
    exclude_self: bool,
    q_sq: Tensor,
    ref_sq: Tensor,
    cover: float,
) -> tuple[Tensor, Tensor]:
    """Exact top-k of the queries ``query_ids`` from every reference point in their balls.

    ``cover``: a radius holding every reference point (used if rounding ever left a ball
    with fewer than k other points).
    """
    lists = tree.query_ball_point(points.numpy(), radii.numpy(), workers=-1, return_sorted=False)
    lengths = torch.tensor([len(c) for c in lists], dtype=torch.long)
    rj = torch.from_numpy(np.concatenate([np.asarray(c, dtype=np.int64) for c in lists]))
    row = torch.repeat_interleave(torch.arange(len(lists)), lengths)
    qi = query_ids[row]
    vals = _pair_values(queries, ref, qi, rj, metric, q_sq, ref_sq)
    if exclude_self:
        vals[rj == qi] = torch.inf
    short = (
        torch.zeros(len(lists), dtype=torch.long).index_add_(0, row, torch.isfinite(vals).long())
        < k
    )
    if bool(short.any()):
        if float(radii[short].min()) >= cover:
            raise RuntimeError("knn(method='tree'): the ball search lost points; please report.")
        # rounding beyond the margin (never observed): widen those balls to everything
        return _ball_rerank(
            tree,
            points,
            torch.where(short, torch.full_like(radii, cover), radii),
            query_ids,
            queries,
            ref,
            k,
            metric=metric,
            exclude_self=exclude_self,
            q_sq=q_sq,
            ref_sq=ref_sq,
            cover=cover,
        )
    # sort by (row, value, index): three stable passes, least significant key first
    perm = rj.sort(stable=True).indices
    perm = perm[vals[perm].sort(stable=True).indices]
    perm = perm[row[perm].sort(stable=True).indices]
    offsets = torch.cumsum(lengths, 0) - lengths
    take = (offsets[:, None] + torch.arange(k)[None, :]).reshape(-1)
    pick = perm[take]
    return vals[pick].reshape(-1, k), rj[pick].reshape(-1, k)


def _knn_tree(
    queries: Tensor,
    ref: Tensor,
    k: int,
    *,
    metric: str,
    exclude_self: bool,
    chunk_size: int,
    subspace: _Subspace | None = None,
) -> KNNResult:
    """Exact kNN through a k-d tree (scipy's cKDTree) on the principal coordinates.

    Each query asks the tree for ``k + 1`` neighbors (one more for its own row when
    excluding self); their values are recomputed exactly in float64 from the data as given
    (as the blocked path does) and sorted, ties by lower index. A query is *certified* when
    the farthest point the tree returned lies beyond the radius (:func:`_ball_radius`) of
    its k-th exact value: every point not returned is then strictly farther in principal
    coordinates, hence (projection shortens) strictly farther in truth, and cannot enter or
    tie into the top k. Uncertified queries (exact ties, duplicates, near ties within
    rounding, data off the subspace) get every reference point inside that radius from a
    ball query, re-scored and sorted the same way.
    """
    device = queries.device
    if device.type != "cpu":  # scipy works on the CPU; results go back to the input's device
        q_cpu = queries.cpu()
        res = _knn_tree(
            q_cpu,
            q_cpu if ref is queries else ref.cpu(),
            k,
            metric=metric,
            exclude_self=exclude_self,
            chunk_size=chunk_size,
            subspace=subspace,
        )
        return KNNResult(res.values.to(device), res.indices.to(device))
    from scipy.spatial import cKDTree

    same = queries is ref
    queries, ref = queries.detach(), ref.detach()
    if same:
        queries = ref
    if metric == "cosine":
        ref_sq = _row_sq_norms64(ref)
        q_sq_all = ref_sq if same else _row_sq_norms64(queries)
        _check_cosine_norms(ref_sq, q_sq_all)
    else:
        ref_sq = q_sq_all = torch.empty(0, dtype=torch.float64)
    sub = subspace if subspace is not None else _fit_subspace(queries, ref, metric)
    d = ref.shape[1]
    proj_ref = _project(ref, sub, metric)
    tree = cKDTree(proj_ref.numpy())
    n_q, m = queries.shape[0], ref.shape[0]
    n_tree = min(m, k + 1 + int(exclude_self))
    complete = n_tree == m  # every reference point is a candidate: nothing to certify
    block = chunk_size
    cover = 2.0 * sub.max_geometry * (1.0 + 1e-6) + 1.0  # beyond every projected distance
    out_vals = torch.empty(n_q, k, dtype=torch.float64)
    out_idx = torch.empty(n_q, k, dtype=torch.long)
    for start in range(0, n_q, block):
        stop = min(start + block, n_q)
        pq = proj_ref[start:stop] if same else _project(queries[start:stop], sub, metric)
        dist_np, idx_np = tree.query(pq.numpy(), k=n_tree, workers=-1)
        idx = torch.from_numpy(np.asarray(idx_np, dtype=np.int64).reshape(stop - start, n_tree))
        vals = _exact_values(queries[start:stop], ref, idx, metric, q_sq_all[start:stop], ref_sq)
        if exclude_self:
            own = torch.arange(start, stop)[:, None]
            vals.masked_fill_(idx == own, torch.inf)
        vals, idx = _order(vals, idx, descending=False)
        vals, idx = vals[:, :k].contiguous(), idx[:, :k].contiguous()
        if not complete:
            farthest = torch.from_numpy(
                np.asarray(dist_np, dtype=np.float64).reshape(stop - start, n_tree)[:, -1]
            )
            radius = _ball_radius(vals[:, -1], metric, sub, d)
            open_rows = (~(farthest > radius)).nonzero().squeeze(1)
            for lo in range(0, open_rows.shape[0], _BALL_ROWS):
                rows = open_rows[lo : lo + _BALL_ROWS]
                vals[rows], idx[rows] = _ball_rerank(
                    tree,
                    pq[rows],
                    radius[rows],
                    rows + start,
                    queries,
                    ref,
                    k,
                    metric=metric,
                    exclude_self=exclude_self,
                    q_sq=q_sq_all,
                    ref_sq=ref_sq,
                    cover=cover,
                )
        out_vals[start:stop] = vals
        out_idx[start:stop] = idx
    return KNNResult(out_vals, out_idx)


def _auto_max_rank(k: int) -> int:
    """Largest numerical rank for which ``"auto"`` takes the tree, given k (measured).

    A k-d tree's cost grows with k (and steeply with the intrinsic dimension), brute force's
    hardly: 12 for k <= 4 (TwoNN), 10 for k <= 32 (MLE, GRIDE), 8 beyond.
    """
    if k <= 4:
        return _AUTO_MAX_RANK
    return _AUTO_MAX_RANK - 2 if k <= 32 else _AUTO_MAX_RANK - 4


def _check_queries(x: Any, reference: Any, exclude_self: Any) -> tuple[Tensor, Tensor, Any]:
    """The queries, the reference set (the queries themselves when ``None``) at a common dtype,
    and ``exclude_self`` with its default (``True`` without a reference) filled in."""
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
    return queries, ref, exclude_self


def _select_method(
    queries: Tensor, ref: Tensor, metric: str, method: str, k: int
) -> tuple[str, _Subspace | None]:
    """Resolve ``method="auto"``: ``("tree", subspace)`` or ``("brute", None)``.

    The tree is chosen when all of these hold (the cost model behind each is in the
    module docstring): the metric is Euclidean, squared Euclidean or cosine; the data are
    on the CPU; both sets have at least ``_AUTO_MIN_POINTS`` rows; ``d <= n / 8``
    (``n``: the smaller set), so that the ``n d²`` scatter matrix stays cheap next to the
    ``n² d`` brute force; a probe of ``_RANK_PROBE_ROWS`` rows and then the full scatter
    matrix give a numerical rank ``r <=`` :func:`_auto_max_rank` ``(k)``.
    """
    if method == "brute":
        return "brute", None
    if method == "tree":
        return "tree", None
    n = min(queries.shape[0], ref.shape[0])
    d = ref.shape[1]
    if (
        metric not in _TREE_METRICS
        or queries.device.type != "cpu"
        or n < _AUTO_MIN_POINTS
        or d > n // 8
    ):
        return "brute", None
    r = ref.detach()
    q = r if queries is ref else queries.detach()
    if metric == "cosine":
        sq = _row_sq_norms64(r)
        _check_cosine_norms(sq, sq if q is r else _row_sq_norms64(q))
    max_rank = _auto_max_rank(k)
    if d > max_rank and _probe_rank(r, metric) > max_rank:
        return "brute", None
    sub = _fit_subspace(q, r, metric)
    if sub.rank > max_rank:
        return "brute", None
    return "tree", sub


def knn(
    x: Any,
    k: int,
    *,
    reference: Any = None,
    metric: Metric = "euclidean",
    exclude_self: bool | None = None,
    rerank: bool = True,
    chunk_size: int = CHUNK_SIZE,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    method: Method = "auto",
    neighbors: str | ANNOptions = "exact",
) -> KNNResult | ApproximateKNNResult:
    """Exact k nearest neighbors of each row of ``x``, by blocked top-k or a k-d tree.

    For each query ``q`` (a row of ``x``) and each reference point ``r`` (a row of
    ``reference``, default ``x`` itself) the metric is

    - ``euclidean``: ||q − r||, ``sqeuclidean``: ||q − r||²,
    - ``cosine``: 1 − q·r / (||q|| ||r||) (a distance, as in scikit-learn and scipy),
    - ``inner_product``: q·r (a similarity: the k *largest* are returned).

    Queries are processed in blocks of at most ``chunk_size`` rows (fewer where one block
    would exceed ``memory_budget`` bytes); each block costs one matmul and
    O(block × m) memory (``m`` reference rows). The float32 (or input-dtype) scores screen
    ``k + 8 + k // 4`` candidates whose values are then recomputed exactly in float64 and
    sorted (``rerank=True``, see the module docstring); ties go to the lower index. Each
    query's screen is certified against its rounding bound, and a query it cannot
    certify (near ties below float32 resolution) is searched again in float64, so the
    neighbors are those of the float64 values whatever the data: float32 input gives the
    neighbors and values of the same numbers in float64. Works on the inputs' device.

    ``method="tree"`` instead projects the data onto their principal coordinates (an
    isometry for data of low numerical rank ``r``) and searches a k-d tree there, about
    O(n log n) for small ``r`` instead of O(n² d); it returns the same neighbors and
    values as the blocked search (exact float64 values, ties to the lower index), for the
    ``euclidean``, ``sqeuclidean`` and ``cosine`` metrics, on the CPU (other devices: the
    search runs on the CPU and the results move back). ``method="auto"`` (default) takes
    the tree when it is faster: CPU data, a tree metric, at least 4096 queries and
    reference rows, ``d <= n / 8`` and numerical rank ``r <= 12`` (``10`` for ``k > 4``,
    ``8`` for ``k > 32``); otherwise the blocked search. See the module docstring for the
    rank criterion, the exactness argument and the timings behind the thresholds.

    Args:
        x: ``(n, d)`` queries.
        k: neighbors per query, ``1 <= k <= m`` (``m − 1`` when excluding self).
        reference: ``(m, d)`` points to search; default: ``x`` itself.
        metric: one of ``"euclidean"``, ``"sqeuclidean"``, ``"cosine"``, ``"inner_product"``.
        exclude_self: drop reference row ``i`` from query ``i``'s candidates (by index, so
            duplicates of a point are still found). Default: ``True`` when ``reference`` is
            not given, ``False`` otherwise; ``True`` with a ``reference`` requires as many
            queries as reference rows (query ``i`` is reference row ``i``).
        rerank: recompute the candidates' values in float64 and certify the screen
            (default). ``False`` returns the screening values and order (float32 arithmetic
            on float32 input, uncertified: near ties may be misordered), slightly faster.
        chunk_size: the most query rows per block (default
            :data:`~subspaces.linalg.CHUNK_SIZE`).
        memory_budget: bytes of working memory per block (default 256 MiB): blocks hold
            fewer than ``chunk_size`` rows where needed to stay within it (brute force only).
        method: ``"auto"``, ``"brute"`` (blocked top-k) or ``"tree"`` (k-d tree on the
            principal coordinates; ignores ``rerank``: its values are always the float64
            ones, and ``chunk_size`` is then the number of queries per tree search).
        neighbors: ``"exact"`` (default) or ``"approximate"``, or an
            :class:`~subspaces.linalg.ann.ANNOptions`: an HNSW graph search instead
            (:func:`~subspaces.linalg.ann.approximate_knn`, needs ``pip install
            subspaces[ann]``) returning an
            :class:`~subspaces.linalg.ann.ApproximateKNNResult`, the neighbors with their
            measured recall; ``rerank``, ``chunk_size``, ``memory_budget`` and ``method``
            then do not apply.

    Returns:
        A :class:`KNNResult` ``(values, indices)``, both ``(n, k)``, nearest first: float64
        values and int64 reference indices (with ``neighbors="approximate"``, an
        :class:`~subspaces.linalg.ann.ApproximateKNNResult` with the recall too).

    Raises:
        InvalidOptionError: ``k`` out of range, an unknown metric or method, a bad
            ``chunk_size``, ``method="tree"`` with ``metric="inner_product"``, an unknown
            ``neighbors``.
        ShapeError: ``reference`` with another number of features than ``x``.
        DegenerateInputError: a zero row with ``metric="cosine"``.

    Examples:
        >>> import torch
        >>> x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
        >>> result = knn(x, 2)
        >>> result.indices.tolist(), result.values[0].tolist()
        ([[1, 2], [0, 2], [1, 0], [2, 1]], [1.0, 3.0])
    """
    from subspaces.linalg.ann import approximate_knn, check_neighbor_search

    options = check_neighbor_search(neighbors)
    if options is not None:
        return approximate_knn(
            x, k, reference=reference, metric=metric, exclude_self=exclude_self, options=options
        )
    metric_name = check_choice(metric, name="metric", choices=KNN_METRICS)
    queries, ref, exclude_self = _check_queries(x, reference, exclude_self)
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
    chunk_size = check_positive_int(chunk_size, name="chunk_size")
    memory_budget = check_positive_int(memory_budget, name="memory_budget")
    how = check_choice(method, name="method", choices=KNN_METHODS)
    if how == "tree" and metric_name not in _TREE_METRICS:
        raise InvalidOptionError(
            f"method='tree' supports metric 'euclidean', 'sqeuclidean' or 'cosine', got "
            f"metric={metric_name!r}; use method='brute' (or 'auto') for it."
        )
    # an exact power of two brings data at extreme scales into range (float32 squares of
    # 1e20 overflow, of 1e-25 underflow); the neighbors are unchanged, the values scaled back
    e = scale_exponent(queries, ref)
    if e:
        same = ref is queries
        queries = ldexp(queries, -e)
        ref = queries if same else ldexp(ref, -e)
    how, subspace = _select_method(queries, ref, metric_name, how, k)
    if how == "tree":
        result = _knn_tree(
            queries,
            ref,
            k,
            metric=metric_name,
            exclude_self=bool(exclude_self),
            chunk_size=chunk_size,
            subspace=subspace,
        )
    else:
        result = _knn_blocked(
            queries,
            ref,
            k,
            metric=metric_name,
            exclude_self=bool(exclude_self),
            rerank=rerank,
            chunk_size=chunk_size,
            memory_budget=memory_budget,
        )
    power = {"euclidean": 1, "sqeuclidean": 2, "inner_product": 2}.get(metric_name, 0)
    if not (e and power):
        return result
    what = {"euclidean": "the distances", "sqeuclidean": "the squared distances"}
    values = unscale(result.values, power * e, name="x", what=what.get(metric_name, "the dots"))
    return KNNResult(values, result.indices)
