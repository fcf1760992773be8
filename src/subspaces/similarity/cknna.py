"""Centered Kernel Nearest-Neighbor Alignment (Huh et al., 2024, "The Platonic
Representation Hypothesis"), as in their reference code.

CKNNA is the kernel alignment (HSIC) of two representations' linear kernels restricted to
the pairs that are k-nearest neighbors in both: CKA made local. The neighbors come from the
exact blocked kNN of :mod:`subspaces.similarity.neighbors` (cosine neighbors of the rows as
given, certified, ties to the lower index), and every HSIC term is computed from the
``(n, k)`` neighbor lists and their kernel values in O(nk log nk): nothing ``n × n`` is
allocated. Unlike the other neighborhood measures, ``debiased=False`` lets a point be its
own neighbor, as the reference does.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from subspaces._checks import DegenerateInputError, check_flag
from subspaces.linalg.ann import refuse_approximate
from subspaces.linalg.constants import CHUNK_SIZE
from subspaces.linalg.knn import KNNResult
from subspaces.similarity.neighbors import (
    _check_block,
    _check_k,
    _inverse_row_norms,
    _match_blocks,
    _neighbors,
    _validated,
)

__all__ = ["cknna"]


def _sparse_hsic(
    rows: Tensor, cols: Tensor, a: Tensor, b: Tensor, n: int, *, debiased: bool
) -> Tensor:
    """HSIC of two n × n matrices A, B given by their common support (rows, cols).

    Matches the reference's ``hsic_unbiased`` / ``hsic_biased`` on dense matrices, which
    need not be symmetric here: with u = A1, v = Aᵀ1 (and likewise for B),
      debiased: [tr(AB) + ΣA ΣB / ((n−1)(n−2)) − 2 1ᵀAB1 / (n−2)] / (n(n−3)), diagonal zeroed;
      biased:   tr(AHBH) = tr(AB) − 1ᵀBA1 / n − 1ᵀAB1 / n + ΣA ΣB / n².
    """
    if debiased:
        off = rows != cols
        rows, cols, a, b = rows[off], cols[off], a[off], b[off]
    keys = rows * n + cols
    if keys.numel():
        keys_sorted, order = keys.sort()
        transposed = cols * n + rows
        pos = torch.searchsorted(keys_sorted, transposed).clamp_(max=keys.numel() - 1)
        found = keys_sorted[pos] == transposed
        tr_ab = (a * torch.where(found, b[order][pos], torch.zeros_like(a))).sum()
    else:
        tr_ab = a.sum()  # an empty sum, 0
    row_a = torch.zeros(n, dtype=torch.float64, device=a.device).index_add_(0, rows, a)
    col_a = torch.zeros(n, dtype=torch.float64, device=a.device).index_add_(0, cols, a)
    row_b = torch.zeros(n, dtype=torch.float64, device=a.device).index_add_(0, rows, b)
    col_b = torch.zeros(n, dtype=torch.float64, device=a.device).index_add_(0, cols, b)
    sum_a, sum_b = a.sum(), b.sum()
    ab_ones = col_a @ row_b  # 1ᵀ A B 1
    if debiased:
        value = tr_ab + sum_a * sum_b / ((n - 1) * (n - 2)) - 2.0 * ab_ones / (n - 2)
        return value / (n * (n - 3))
    ba_ones = col_b @ row_a  # 1ᵀ B A 1
    return tr_ab - ba_ones / n - ab_ones / n + sum_a * sum_b / n**2


def _mutual_pairs(nx: KNNResult, ny: KNNResult) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(i, j, K_ij, L_ij) for every j in both i's X-neighbors and i's Y-neighbors."""
    rows_l, cols_l, a_l, b_l = [], [], [], []
    for start, stop, match in _match_blocks(nx.indices, ny.indices):
        r, pa, pb = match.nonzero(as_tuple=True)
        rows_l.append(r + start)
        cols_l.append(nx.indices[start:stop][r, pa])
        a_l.append(nx.values[start:stop][r, pa])
        b_l.append(ny.values[start:stop][r, pb])
    return torch.cat(rows_l), torch.cat(cols_l), torch.cat(a_l), torch.cat(b_l)


def _self_pairs(nx: KNNResult) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    n, k = nx.indices.shape
    rows = torch.arange(n, device=nx.indices.device).repeat_interleave(k)
    vals = nx.values.reshape(-1)
    return rows, nx.indices.reshape(-1), vals, vals


def _kernel_neighbors(
    t: Tensor, name: str, k: int, block: int, *, normalize: bool, exclude_self: bool
) -> KNNResult:
    """Each row's k largest kernel values and their columns.

    ``normalize``: the kernel of the L2-normalized rows, i.e. the cosine; its neighbors are
    the cosine neighbors of the rows as given (certified, exact), and its values
    1 − (1 − cos) from the kNN kernel's float64 values, computed from the rows as given:
    float32 and float64 inputs holding the same numbers give the same kernel entries
    (normalizing in float32 first would move them by ~1e-7 and, with near ties, change
    the neighbors). Otherwise the raw inner products.
    """
    if not normalize:
        return _neighbors(t, k, "inner_product", block, exclude_self=exclude_self)
    _inverse_row_norms(t, name)  # refuses zero rows, naming the argument
    found = _neighbors(t, k, "cosine", block, exclude_self=exclude_self)
    return KNNResult(1.0 - found.values, found.indices)


def _cknna_terms(
    x: Any,
    y: Any,
    *,
    k: int = 10,
    normalize: bool = True,
    debiased: bool = True,
    chunk_size: int = CHUNK_SIZE,
) -> tuple[Tensor, Tensor, Tensor]:
    """The three alignments (KL, KK, LL) behind :func:`cknna`, float64 0-dim tensors."""
    normalize = check_flag(normalize, name="normalize")
    debiased = check_flag(debiased, name="debiased")
    tx, ty = _validated(x, y, min_samples=4 if debiased else 2)
    n = tx.shape[0]
    k = _check_k(k, n, minimum=2)
    block = _check_block(chunk_size)
    # debiased: a point is not its own neighbor (the reference fills the diagonal with -inf)
    nx = _kernel_neighbors(tx, "x", k, block, normalize=normalize, exclude_self=debiased)
    ny = _kernel_neighbors(ty, "y", k, block, normalize=normalize, exclude_self=debiased)
    kl = _sparse_hsic(*_mutual_pairs(nx, ny), n, debiased=debiased)
    kk = _sparse_hsic(*_self_pairs(nx), n, debiased=debiased)
    ll = _sparse_hsic(*_self_pairs(ny), n, debiased=debiased)
    return kl, kk, ll


def cknna(
    x: Any,
    y: Any,
    *,
    k: int = 10,
    normalize: bool = True,
    debiased: bool = True,
    chunk_size: int = CHUNK_SIZE,
    neighbors: str = "exact",
) -> Tensor:
    """Centered Kernel Nearest-Neighbor Alignment (Huh et al., 2024), as in their code.

    With K = X̂X̂ᵀ and L = ŶŶᵀ the linear kernels of the L2-normalized rows (``normalize``),
    let M_ij = 1[j ∈ kNN_K(i) and j ∈ kNN_L(i)] (neighbors by kernel value, self excluded
    when ``debiased``) and M^K_ij = 1[j ∈ kNN_K(i)]. Then

        CKNNA(X, Y) = HSIC(M∘K, M∘L) / sqrt(HSIC(M^K∘K, M^K∘K) · HSIC(M^L∘L, M^L∘L)),

    with HSIC Song et al.'s unbiased estimator (``debiased=True``, the reference's default
    ``unbiased=True``)
    or tr(AHBH) (``debiased=False``). This is the definition of the reference implementation
    (``AlignmentMetrics.cknna`` in minyoungg/platonic-rep, used for the paper's figures),
    which masks the kernels *before* centering; the paper's appendix writes the alignment as a
    row-centered sum over mutual neighbors instead. Differences from the reference code:
    it allocates several ``n × n`` matrices, we never do (M∘K has at most ``k`` entries per
    row, so every HSIC term is computed from the ``(n, k)`` neighbor lists in O(nk log nk));
    and it divides by sqrt(KK · LL) + 1e-6, we divide by sqrt(KK · LL) exactly (the 1e-6 is a
    relative change of order 1e-6 / sqrt(KK · LL), up to ~1e-2 at n ~ 1e3 and growing with n).
    With ``k = n − 1`` and ``debiased=True`` it equals debiased linear CKA of the normalized
    rows.

    The masked kernels are not symmetric, so the debiased value is not exactly symmetric in
    (x, y) (the 1ᵀAB1 term); ``debiased=False`` is symmetric. Invariant to orthogonal
    transforms and isotropic scaling of either side (with ``normalize``), not translation.
    1 when y = x; typically in [0, 1] but not bounded by construction (it can be slightly
    negative).

    Args:
        x: ``(n, d1)`` representation. y: ``(n, d2)`` representation of the same n inputs.
        k: neighbors per sample, ``2 <= k < n`` (the reference requires k >= 2).
        normalize: L2-normalize rows first (the reference pipeline does); ``False`` uses the
            raw inner products as kernel and neighbor ranking. The normalized kernel's
            entries are the cosines computed in float64 from the rows as given (not from
            rows normalized in float32), and its neighbors the exact cosine neighbors.
        debiased: debiased HSIC and self excluded from the neighbors (reference default).
        chunk_size: the most query rows per kNN block (default ``CHUNK_SIZE``; fewer
            where a block would exceed 256 MiB).
        neighbors: ``"exact"`` only: the kernel-masked HSICs need the exact neighbor masks
            (``"approximate"`` raises :class:`~subspaces.InvalidOptionError`).

    Returns:
        A 0-dim float64 tensor on the inputs' device.

    Raises:
        DegenerateInputError: a zero row with ``normalize``, or a non-positive
            self-alignment HSIC(M^K∘K, M^K∘K) (too few samples or a degenerate kernel).

    Examples:
        >>> import torch
        >>> from subspaces.similarity import cknna
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 8, generator=g)
        >>> y = x + 0.3 * torch.randn(50, 8, generator=g)
        >>> round(float(cknna(x, y, k=5)), 4)
        0.6576
    """
    refuse_approximate(
        neighbors,
        measure="cknna",
        why="its kernel-masked HSICs (and the self-alignment terms they are divided by) need "
        "the exact neighbor masks.",
    )
    kl, kk, ll = _cknna_terms(
        x, y, k=k, normalize=normalize, debiased=debiased, chunk_size=chunk_size
    )
    for name, value in (("x", kk), ("y", ll)):
        if float(value) <= 0.0:
            raise DegenerateInputError(
                f"the kNN-masked HSIC of {name} with itself is {float(value):.3g} (not positive), "
                "so CKNNA is undefined; use more samples, a larger k, or debiased=False."
            )
    return kl / torch.sqrt(kk * ll)
