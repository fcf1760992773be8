"""Representational similarity analysis (RSA) and the RSM norm difference.

A representational dissimilarity matrix (RDM) holds the n(n-1)/2 pairwise dissimilarities
of the rows of a representation; RSA compares two representations of the same inputs by
correlating their RDMs (Kriegeskorte, Mur & Bandettini, 2008). The RDM is n × n by nature:
it is built here in row blocks, so that

* :func:`rdm` holds the condensed vector (n(n-1)/2 entries) plus one block of
  ``chunk × n`` products (chunk: at most ``chunk_size`` rows, fewer where a block would
  exceed 256 MiB);
* :func:`rsa` with ``method="pearson"`` or ``"cosine"`` never holds an RDM: it accumulates
  float64 statistics block by block, in O(chunk × n) memory;
* ``method="spearman"`` and ``"kendall_tau_a"`` rank all entries, so they hold both
  condensed RDMs, their ranks and the sort's indices: at peak about 48 bytes per pair,
  48 × n(n-1)/2 bytes (n = 10,000: 2.4 GB; n = 20,000: 9.6 GB). Subsample the inputs
  where that is too much.

The condensed order is that of ``scipy.spatial.distance.pdist``: row-major over the upper
triangle, (0, 1), (0, 2), ..., (0, n-1), (1, 2), ..., (n-2, n-1); the entry of pair
(i, j), i < j, sits at ``n*i - i*(i+1)//2 + j - i - 1``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
from torch import Tensor

from subspaces._checks import (
    DegenerateInputError,
    ShapeError,
    TooFewSamplesError,
    as_float_tensor,
    check_choice,
    check_flag,
    check_matrix,
    check_paired,
    check_positive_int,
    check_same_device,
)
from subspaces.linalg.constants import CHUNK_SIZE, rows_within_budget
from subspaces.linalg.metric import StreamingMetric
from subspaces.linalg.normalize import normalize_rows
from subspaces.linalg.scaling import (
    check_no_overflow,
    ldexp,
    max_abs,
    rescaled,
    to_safe_range,
    unscale,
)

__all__ = [
    "RDM_COMPARISONS",
    "RDM_DISSIMILARITIES",
    "RSM_KINDS",
    "RSMNormDifference",
    "compare_rdms",
    "rdm",
    "rsa",
    "rsm_norm_difference",
]

RdmDissimilarity = Literal["euclidean", "sqeuclidean", "correlation", "cosine"]
RdmComparison = Literal["pearson", "spearman", "kendall_tau_a", "cosine"]
RsmKind = Literal["linear", "cosine", "correlation", "euclidean", "sqeuclidean"]

RDM_DISSIMILARITIES: tuple[str, ...] = ("euclidean", "sqeuclidean", "correlation", "cosine")
"""Dissimilarities :func:`rdm` computes (as in ``scipy.spatial.distance.pdist``)."""
RDM_COMPARISONS: tuple[str, ...] = ("pearson", "spearman", "kendall_tau_a", "cosine")
"""How :func:`rsa` and :func:`compare_rdms` compare two RDMs."""
RSM_KINDS: tuple[str, ...] = ("linear", "cosine", "correlation", "euclidean", "sqeuclidean")
"""Similarity / dissimilarity matrices :func:`rsm_norm_difference` compares."""


_FEATURE_SPACE_RSMS = ("linear", "cosine", "correlation")


# --------------------------------------------------------------------------------------------
# Building RDMs in row blocks


def _unit_rows(x: Tensor, *, center_rows: bool, name: str, metric: str) -> Tensor:
    """Unit rows (centered first for the correlation dissimilarity), zero rows refused."""
    return normalize_rows(
        x,
        center_rows=center_rows,
        name=name,
        purpose=f"the {metric} dissimilarity",
        advice="drop those samples or use a Euclidean dissimilarity",
    )


def _prepare(x: Tensor, metric: str, name: str) -> tuple[Tensor, Tensor | None]:
    """Per-row preprocessing shared by every block: (rows, squared norms or None)."""
    if metric in ("euclidean", "sqeuclidean"):
        # Distances are translation invariant: centering on the (float64) mean shrinks the
        # norms and so the cancellation in |a|² + |b|² - 2 a·b.
        z = x - x.mean(dim=0, dtype=torch.float64).to(x.dtype)
        return z, (z * z).sum(dim=1)
    return _unit_rows(x, center_rows=metric == "correlation", name=name, metric=metric), None


def _block(z: Tensor, sq: Tensor | None, start: int, stop: int, metric: str) -> Tensor:
    """Dissimilarities of rows ``start:stop`` to rows ``start:``, a (b, n - start) block.

    Squared distances for both Euclidean metrics (the square root is taken on the upper
    triangle only, in :func:`_condensed_blocks`).
    """
    if sq is not None:
        d2 = torch.addmm(sq[None, start:], z[start:stop], z[start:].T, alpha=-2.0)
        return d2.add_(sq[start:stop, None]).clamp_min_(0.0)  # squared: sqrt after extraction
    return torch.addmm(
        torch.ones((), dtype=z.dtype, device=z.device), z[start:stop], z[start:].T, alpha=-1.0
    ).clamp_(0.0, 2.0)


def _condensed_offset(n: int, i: int) -> int:
    """Position in the condensed vector of the first pair (i, i + 1)."""
    return n * i - i * (i + 1) // 2


def _condensed_blocks(
    z: Tensor, sq: Tensor | None, metric: str, chunk_size: int
) -> Iterator[tuple[int, Tensor]]:
    """Yield ``(offset, values)``: the condensed entries of rows ``start:stop``, in order."""
    n = z.shape[0]
    for start in range(0, n - 1, chunk_size):
        stop = min(start + chunk_size, n - 1)
        block = _block(z, sq, start, stop, metric)
        # Row r of the block is sample start + r; its pairs j > start + r are columns > r.
        upper = torch.cat([block[r, r + 1 :] for r in range(stop - start)])
        if metric == "euclidean":
            upper.sqrt_()
        yield _condensed_offset(n, start), upper


def _n_pairs(n: int) -> int:
    return n * (n - 1) // 2


def rdm(
    x: Any,
    *,
    dissimilarity: RdmDissimilarity = "euclidean",
    square: bool = False,
    chunk_size: int = CHUNK_SIZE,
) -> Tensor:
    """Representational dissimilarity matrix of the rows of ``x``.

    ``dissimilarity`` (as ``scipy.spatial.distance.pdist``):

    * ``"euclidean"``: ||x_i - x_j||; ``"sqeuclidean"``: ||x_i - x_j||²;
    * ``"correlation"``: 1 - Pearson correlation of rows i and j across features;
    * ``"cosine"``: 1 - cos(x_i, x_j).

    The rsatoolbox ``"euclidean"`` RDM is ours ``"sqeuclidean"`` divided by the number of
    features. Correlation and cosine values are clipped to [0, 2].

    Invariances: euclidean / sqeuclidean to orthogonal transforms and translation;
    cosine to orthogonal transforms and positive scaling of each row; correlation to
    permutations of features, positive scaling of each row and adding a constant to every
    feature of a row. Entries are >= 0 (<= 2 for correlation and cosine).

    Args:
        x: (n, d) representation, n >= 2.
        dissimilarity: the dissimilarity.
        square: return the symmetric n × n matrix (zero diagonal) instead of the condensed
            vector. Needs n × n memory.
        chunk_size: rows per block of products: at most ``chunk_size`` and fewer where a
            block would exceed 256 MiB (memory O(chunk × n)).

    Returns:
        The condensed vector of the n(n-1)/2 pairs i < j in ``pdist`` order (row-major
        upper triangle: the pair (i, j) at ``n*i - i*(i+1)//2 + j - i - 1``), or the square
        matrix; in ``x``'s dtype, on its device.

    Raises:
        DegenerateInputError: for ``"cosine"``, a zero row; for ``"correlation"``, a row
            that is constant across features.
        NumericRangeError: (squared) distances that do not fit ``x``'s dtype, e.g.
            ``"sqeuclidean"`` for float32 data beyond 1e19 or below 1e-19 (cast to float64);
            the computation itself is brought into range by an exact power of two.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import rdm
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> d = rdm(x[:4])
        >>> tuple(d.shape), round(float(d[0]), 4)
        ((6,), 3.5374)
    """
    dissimilarity = cast(
        RdmDissimilarity,
        check_choice(dissimilarity, name="dissimilarity", choices=RDM_DISSIMILARITIES),
    )
    chunk_size = check_positive_int(chunk_size, name="chunk_size")
    square = check_flag(square, name="square")
    t = check_matrix(x, name="x", min_samples=2)
    # an exact power of two brings extreme data into range; distances are scaled back
    scaled, e = to_safe_range(t)
    z, sq = _prepare(scaled, dissimilarity, "x")
    n = t.shape[0]
    # per row: its block of products and its upper-triangle copy
    chunk_size = rows_within_budget(chunk_size, n * 2 * z.element_size())
    out = torch.empty(_n_pairs(n), dtype=t.dtype, device=t.device)
    for offset, values in _condensed_blocks(z, sq, dissimilarity, chunk_size):
        out[offset : offset + values.numel()] = values
    power = {"euclidean": 1, "sqeuclidean": 2}.get(dissimilarity, 0)
    what = "the distances" if power == 1 else "the squared distances"
    if power and e:  # the largest magnitude only names the input in an error message
        out = unscale(out, power * e, name="x", what=what, top=max_abs(t))
    if not square:
        return out
    full = torch.zeros(n, n, dtype=t.dtype, device=t.device)
    iu = torch.triu_indices(n, n, offset=1, device=t.device)
    full[iu[0], iu[1]] = out
    full[iu[1], iu[0]] = out
    return full


# --------------------------------------------------------------------------------------------
# Comparing two RDMs


@dataclass
class _PairedStats:
    """Mergeable float64 sums for the Pearson correlation or cosine of two long vectors.

    ``centered=True``: count, means and centered sums of squares and products, merged as in
    Chan et al. (1979), stable however large the mean. ``centered=False``: raw dot products.
    """

    centered: bool
    count: float = 0.0
    mean_a: float = 0.0
    mean_b: float = 0.0
    aa: float = 0.0
    bb: float = 0.0
    ab: float = 0.0

    def add(self, a: Tensor, b: Tensor) -> None:
        if a.numel() == 0:
            return
        a64, b64 = a.to(torch.float64), b.to(torch.float64)
        if not self.centered:
            self.aa += float(a64 @ a64)
            self.bb += float(b64 @ b64)
            self.ab += float(a64 @ b64)
            return
        k = float(a64.numel())
        ma, mb = float(a64.mean()), float(b64.mean())
        ac, bc = a64 - ma, b64 - mb
        total = self.count + k
        da, db = ma - self.mean_a, mb - self.mean_b
        weight = self.count * k / total
        self.aa += float(ac @ ac) + da * da * weight
        self.bb += float(bc @ bc) + db * db * weight
        self.ab += float(ac @ bc) + da * db * weight
        self.mean_a += da * k / total
        self.mean_b += db * k / total
        self.count = total

    def value(self, names: tuple[str, str]) -> float:
        """Pearson correlation (centered) or cosine (not) of everything added."""
        for name, norm in zip(names, (self.aa, self.bb), strict=True):
            if norm > 0.0:
                continue
            if self.centered:
                raise DegenerateInputError(
                    f"the RDM of {name} is constant (every pair of samples equally "
                    "dissimilar), so its correlation with another RDM is undefined; check "
                    f"that {name} has more than two distinct samples and is not a constant layer."
                )
            raise DegenerateInputError(
                f"the RDM of {name} is all zeros (every sample is the same point), so its "
                "cosine with another RDM is undefined."
            )
        return self.ab / math.sqrt(self.aa * self.bb)


def _average_ranks(v: Tensor) -> tuple[Tensor, Tensor]:
    """1-based ranks with ties averaged (scipy's ``rankdata``), float64; and the tie counts."""
    sorted_v, order = torch.sort(v, stable=True)
    _, counts = torch.unique_consecutive(sorted_v, return_counts=True)
    ends = torch.cumsum(counts, 0).to(torch.float64)
    average = ends - (counts.to(torch.float64) - 1.0) / 2.0
    ranks = torch.empty(v.numel(), dtype=torch.float64, device=v.device)
    ranks[order] = torch.repeat_interleave(average, counts)
    return ranks, counts


def _tied_pairs(v: Tensor) -> int:
    """Number of pairs (i < j) with v_i == v_j."""
    counts = torch.unique(v, return_counts=True)[1].to(torch.int64)
    return int((counts * (counts - 1) // 2).sum())


def _kendall_tau_a(a: Tensor, b: Tensor, names: tuple[str, str]) -> float:
    """Kendall's tau-a = (concordant - discordant) / (m(m-1)/2), in O(m log m).

    scipy's ``kendalltau`` (a merge-sort count) returns tau-b =
    (C - D) / sqrt((T - T_a)(T - T_b)), T = m(m-1)/2, T_a / T_b the pairs tied in a / b.
    C - D is an integer recovered from it exactly (rounded) and divided by T instead.
    """
    from scipy.stats import kendalltau

    m = a.numel()
    total = m * (m - 1) // 2
    ties = (_tied_pairs(a), _tied_pairs(b))
    for name, tied in zip(names, ties, strict=True):
        if tied == total:
            raise DegenerateInputError(
                f"the RDM of {name} is constant (every pair of samples equally dissimilar), "
                "so its rank correlation with another RDM is undefined."
            )
    tau_b = kendalltau(
        a.detach().cpu().numpy(), b.detach().cpu().numpy(), method="asymptotic"
    ).statistic
    concordant_minus_discordant = round(
        float(tau_b) * math.sqrt(total - ties[0]) * math.sqrt(total - ties[1])
    )
    return concordant_minus_discordant / total


def _compare_vectors(a: Tensor, b: Tensor, compare: str, names: tuple[str, str]) -> float:
    if compare == "kendall_tau_a":
        return _kendall_tau_a(a, b, names)
    if compare == "spearman":
        a, b = _average_ranks(a)[0], _average_ranks(b)[0]
    stats = _PairedStats(centered=compare != "cosine")
    stats.add(a, b)
    return stats.value(names)


def _min_samples(compare: str) -> int:
    # Correlations of RDMs need at least three pairs to be informative, hence n >= 3.
    return 2 if compare == "cosine" else 3


def compare_rdms(rdm_x: Any, rdm_y: Any, *, method: RdmComparison = "pearson") -> Tensor:
    """Compare two condensed RDMs (as returned by :func:`rdm`) of the same n samples.

    ``method``: ``"pearson"`` (rsatoolbox ``"corr"``), ``"spearman"`` (Pearson of ranks,
    ties averaged; rsatoolbox ``"spearman"``), ``"kendall_tau_a"`` (Kendall's tau-a,
    (C - D)/(m(m-1)/2), recommended by Nili et al. 2014 when RDMs have ties; rsatoolbox
    ``"tau-a"``) or ``"cosine"`` (uncentered; rsatoolbox ``"cosine"``). All in [-1, 1].
    Tau-a of an RDM with itself is 1 - (tied pairs)/(m(m-1)/2), not 1, when it has ties.

    Args:
        rdm_x, rdm_y: 1-D tensors or arrays of the same length m.
        method: the comparison.

    Returns:
        A 0-dim float64 tensor on the inputs' device.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import compare_rdms, rdm
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(compare_rdms(rdm(x), rdm(y), method="spearman")), 4)
        0.6849
    """
    check_choice(method, name="method", choices=RDM_COMPARISONS)
    vectors = []
    for name, v in (("rdm_x", rdm_x), ("rdm_y", rdm_y)):
        t = check_matrix(_as_column(v, name), name=name, min_samples=2)
        vectors.append(t[:, 0])
    a, b = vectors
    if a.numel() != b.numel():
        raise ShapeError(
            f"rdm_x and rdm_y must describe the same pairs of samples, got {a.numel()} and "
            f"{b.numel()} entries; compute both with rdm() on representations of the same inputs."
        )
    check_same_device(a, b, names=("rdm_x", "rdm_y"))
    value = _compare_vectors(a, b, method, ("rdm_x", "rdm_y"))
    return torch.tensor(value, dtype=torch.float64, device=a.device)


def _as_column(v: Any, name: str) -> Any:
    """A 1-D RDM as an (m, 1) matrix for check_matrix."""
    t = as_float_tensor(v, name=name)  # refuses non-arrays and tensors without dense data
    if t.ndim != 1:
        raise ShapeError(
            f"{name} must be a 1-D condensed RDM (as returned by rdm()), got shape "
            f"{tuple(t.shape)}; for a square matrix use scipy.spatial.distance.squareform "
            "or rdm(..., square=False)."
        )
    return t.reshape(-1, 1)


def rsa(
    x: Any,
    y: Any,
    *,
    dissimilarity: RdmDissimilarity = "euclidean",
    method: RdmComparison = "pearson",
    chunk_size: int = CHUNK_SIZE,
) -> Tensor:
    """Representational similarity analysis: the correlation of the two representations' RDMs.

    RSA(X, Y) = compare(rdm(X), rdm(Y)) over the n(n-1)/2 pairs of samples (Kriegeskorte
    et al., 2008), with RDMs as in :func:`rdm` and comparisons as in :func:`compare_rdms`
    (Kendall's tau-a as in Nili et al., 2014 and rsatoolbox ``"tau-a"``).

    Invariances: those of the RDM (euclidean: orthogonal transforms and translation of
    either side; cosine: orthogonal transforms and per-row scaling; correlation: feature
    permutations, per-row scaling and shifts), plus isotropic scaling of either side for
    every comparison, plus any strictly increasing transform of the RDM for ``"spearman"``
    and ``"kendall_tau_a"`` (so euclidean and sqeuclidean give the same value).
    Symmetric in x and y; in [-1, 1]; 1 for y = x (for tau-a only when the RDM has no ties).

    Memory: ``"pearson"`` and ``"cosine"`` are accumulated block by block, O(chunk × n) with
    chunk at most ``chunk_size`` rows, fewer where a block would exceed 256 MiB;
    ``"spearman"`` and ``"kendall_tau_a"`` hold both condensed RDMs and their ranks, at peak
    about 48 × n(n-1)/2 bytes (n = 10,000: 2.4 GB). Kendall's tau-a runs on the CPU (scipy's
    O(m log m) merge-sort count), so its RDMs are copied there from a GPU.

    Args:
        x: (n, d1) representation. y: (n, d2) representation of the same n inputs (n >= 3,
            or n >= 2 for ``method="cosine"``).
        dissimilarity: dissimilarity of the RDMs.
        method: how the RDMs are compared.
        chunk_size: rows per block: at most ``chunk_size`` and fewer where a block would
            exceed 256 MiB (memory O(chunk × n)).

    Returns:
        A 0-dim float64 tensor on the inputs' device.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import rsa
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(rsa(x, y)), 4)
        0.7009
        >>> round(float(rsa(x, y, dissimilarity="cosine", method="kendall_tau_a")), 4)
        0.4607
    """
    check_choice(dissimilarity, name="dissimilarity", choices=RDM_DISSIMILARITIES)
    check_choice(method, name="method", choices=RDM_COMPARISONS)
    chunk_size = check_positive_int(chunk_size, name="chunk_size")
    tx, ty = check_paired(x, y, min_samples=_min_samples(method))
    # every comparison is invariant to scaling either side: bring extreme data into range
    zx, sqx = _prepare(rescaled(tx), dissimilarity, "x")
    zy, sqy = _prepare(rescaled(ty), dissimilarity, "y")
    # per row, held at once: both sides' blocks and upper-triangle copies, and the four
    # float64 vectors of the running statistics
    per_row = tx.shape[0] * (2 * zx.element_size() + 2 * zy.element_size() + 4 * 8)
    chunk_size = rows_within_budget(chunk_size, per_row)
    blocks = zip(
        _condensed_blocks(zx, sqx, dissimilarity, chunk_size),
        _condensed_blocks(zy, sqy, dissimilarity, chunk_size),
        strict=True,
    )
    if method in ("pearson", "cosine"):
        stats = _PairedStats(centered=method == "pearson")
        for (_, a), (_, b) in blocks:
            stats.add(a, b)
        value = stats.value(("x", "y"))
    else:
        m = _n_pairs(tx.shape[0])
        a = torch.empty(m, dtype=zx.dtype, device=zx.device)
        b = torch.empty(m, dtype=zy.dtype, device=zy.device)
        for (offset, va), (_, vb) in blocks:
            a[offset : offset + va.numel()] = va
            b[offset : offset + vb.numel()] = vb
        value = _compare_vectors(a, b, method, ("x", "y"))
    return torch.tensor(value, dtype=torch.float64, device=tx.device)


# --------------------------------------------------------------------------------------------
# RSM norm difference


def _rsm_rows(x: Tensor, kind: str, name: str) -> Tensor:
    """Rows whose linear kernel is the RSM of ``kind`` (feature-space kinds only)."""
    if kind == "linear":
        return x
    return _unit_rows(x, center_rows=kind == "correlation", name=name, metric=kind)


def _accumulate_gram_sums(
    state: Any, x: Tensor, y: Tensor, *, chunk_size: int = CHUNK_SIZE
) -> None:
    """Add X^T X, Y^T Y, X^T Y of the rows ``x``, ``y`` to ``state`` in float64 (exact products)."""
    for start in range(0, x.shape[0], chunk_size):
        xb = x[start : start + chunk_size].to(torch.float64)
        yb = y[start : start + chunk_size].to(torch.float64)
        for attr, value in (("sxx", xb.T @ xb), ("syy", yb.T @ yb), ("sxy", xb.T @ yb)):
            current = getattr(state, attr)
            setattr(state, attr, value if current.numel() == 0 else current + value)


def _norm_difference_from_grams(sxx: Tensor, syy: Tensor, sxy: Tensor) -> Tensor:
    """||X X^T - Y Y^T||_F = sqrt(||X^T X||² + ||Y^T Y||² - 2 ||X^T Y||²), clipped at 0."""
    squared = (sxx * sxx).sum() + (syy * syy).sum() - 2.0 * (sxy * sxy).sum()
    return squared.clamp_min(0.0).sqrt()


@dataclass
class _GramSums:
    sxx: Tensor
    syy: Tensor
    sxy: Tensor


def rsm_norm_difference(
    x: Any,
    y: Any,
    *,
    rsm: RsmKind = "linear",
    chunk_size: int = CHUNK_SIZE,
) -> Tensor:
    """Frobenius norm of the difference of the two representational similarity matrices.

    m(X, Y) = ||S_X - S_Y||_F, S the n × n RSM (Klabunde et al., 2023, "RSM norm
    difference"; with the linear kernel it is the PIP loss of Yin & Shen, 2018):

    * ``"linear"``: S = X X^T. Computed in feature space,
      ||X X^T - Y Y^T||_F² = ||X^T X||_F² + ||Y^T Y||_F² - 2 ||X^T Y||_F², with float64
      products (O(n d²) time, O(d²) memory). Invariant to orthogonal transforms of either
      side only.
    * ``"cosine"``: S_ij = cos(x_i, x_j) (rows normalized, then linear). Also invariant to
      isotropic and per-row positive scaling. Equal to the norm difference of the cosine
      *distance* matrices.
    * ``"correlation"``: S_ij = Pearson correlation of rows i and j across features (rows
      centered and normalized, then linear). Invariant to feature permutations and positive
      affine maps of each row (a_i x_i + b_i 1), not to rotations.
    * ``"euclidean"`` / ``"sqeuclidean"``: S = the (squared) distance matrix, built in row
      blocks (O(n² d) time, O(chunk × n) memory, chunk at most ``chunk_size`` rows and fewer
      where a block would exceed 256 MiB). Invariant to orthogonal transforms
      and translation.

    Not normalized: it grows with n (about n times the typical entry difference) and with
    the scale of the data. Symmetric, a metric between RSMs, 0 iff the RSMs agree.

    ReSi's implementation uses ``"euclidean"`` but takes ``numpy.linalg.norm(..., ord=2)``
    of the square matrices, which is the spectral norm, not the Frobenius norm its comment
    intends; we follow the paper's Frobenius norm.

    Args:
        x: (n, d1) representation. y: (n, d2) representation of the same n inputs.
        rsm: which RSM.
        chunk_size: rows per block for the distance RSMs: at most ``chunk_size`` and fewer
            where a block would exceed 256 MiB.

    Returns:
        A 0-dim float64 tensor on the inputs' device.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import rsm_norm_difference
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(rsm_norm_difference(x, y, rsm="cosine")), 4)
        42.7008
    """
    check_choice(rsm, name="rsm", choices=RSM_KINDS)
    chunk_size = check_positive_int(chunk_size, name="chunk_size")
    tx, ty = check_paired(x, y, min_samples=2)
    if rsm in _FEATURE_SPACE_RSMS:
        state = _GramSums(*(torch.zeros(0, dtype=torch.float64) for _ in range(3)))
        _accumulate_gram_sums(state, _rsm_rows(tx, rsm, "x"), _rsm_rows(ty, rsm, "y"))
        return _norm_difference_from_grams(state.sxx, state.syy, state.sxy)
    # each side brought into range by an exact power of two, its distances scaled back in
    # float64 (float32 data at any scale: no overflow; float64 data may overflow, refused)
    (sx, ex), (sy, ey) = to_safe_range(tx), to_safe_range(ty)
    power = 1 if rsm == "euclidean" else 2
    zx, sqx = _prepare(sx, rsm, "x")
    zy, sqy = _prepare(sy, rsm, "y")
    # per row, held at once: both sides' blocks and upper-triangle copies, and up to five
    # float64 vectors (both sides cast and rescaled, their difference)
    per_row = tx.shape[0] * (2 * zx.element_size() + 2 * zy.element_size() + 5 * 8)
    chunk_size = rows_within_budget(chunk_size, per_row)
    total = torch.zeros((), dtype=torch.float64, device=tx.device)
    for (_, a), (_, b) in zip(
        _condensed_blocks(zx, sqx, rsm, chunk_size),
        _condensed_blocks(zy, sqy, rsm, chunk_size),
        strict=True,
    ):
        diff = ldexp(a.to(torch.float64), power * ex) - ldexp(b.to(torch.float64), power * ey)
        total += diff @ diff
    # Both triangles; the diagonals are zero on both sides.
    return check_no_overflow((2.0 * total).sqrt(), name="x, y", what="the RSM norm difference")


class RSMNormDifference(StreamingMetric):
    """Streaming RSM norm difference for the feature-space RSMs (linear, cosine, correlation).

    ``update(x, y)`` per batch of paired rows, ``compute()`` at the end: equals
    :func:`rsm_norm_difference` on the concatenated batches, whatever the split, and under
    ``torch.distributed`` the global value (the float64 states X^T X, Y^T Y, X^T Y sum).

    Args:
        rsm: ``"linear"``, ``"cosine"`` or ``"correlation"`` (the distance RSMs are not sums
            over samples and have no streaming form).

    Examples:
        >>> import torch
        >>> from subspaces.similarity import RSMNormDifference
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> metric = RSMNormDifference(rsm="linear")
        >>> metric.update(x[:50], y[:50])
        >>> metric.update(x[50:], y[50:])
        >>> round(float(metric.compute()), 4)
        640.741
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = False

    sxx: Tensor
    syy: Tensor
    sxy: Tensor

    def __init__(self, *, rsm: RsmKind = "linear", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rsm = check_choice(rsm, name="rsm", choices=_FEATURE_SPACE_RSMS)
        for name in ("sxx", "syy", "sxy"):
            self.add_state(name, default=torch.zeros(0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, x: Any, y: Any) -> None:
        """Add a batch of paired rows: ``x`` (m, d1) and ``y`` (m, d2)."""
        tx, ty = check_paired(x, y, min_samples=1)
        if self.sxy.numel() and (tx.shape[1], ty.shape[1]) != tuple(self.sxy.shape):
            raise ShapeError(
                f"this batch has {tx.shape[1]} and {ty.shape[1]} features but earlier batches had "
                f"{self.sxy.shape[0]} and {self.sxy.shape[1]}; every batch must come from the "
                "same two layers."
            )
        _accumulate_gram_sums(self, _rsm_rows(tx, self.rsm, "x"), _rsm_rows(ty, self.rsm, "y"))

    def compute(self) -> Tensor:
        """The RSM norm difference of every sample seen so far."""
        if self.sxy.numel() == 0:
            raise TooFewSamplesError(
                "RSMNormDifference has seen no samples; call update() before compute()."
            )
        return _norm_difference_from_grams(self.sxx, self.syy, self.sxy)
