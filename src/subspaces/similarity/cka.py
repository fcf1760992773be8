"""Linear centered kernel alignment (CKA), exact, in feature space, streaming."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from subspaces._checks import (
    DegenerateInputError,
    InputTypeError,
    TooFewSamplesError,
    check_flag,
    check_paired,
)
from subspaces.linalg.moments import (
    CHUNK_SIZE,
    CenteredMoments,
    check_moments,
    check_variance,
    paired_moments,
)
from subspaces.linalg.scaling import sqrt_product
from subspaces.linalg.streaming import PairedMomentsMetric

__all__ = ["LinearCKA", "linear_cka", "linear_cka_from_moments"]


def _hsic_debiased(cross_sq: Tensor, sq_xy: Tensor, sq_x: Tensor, sq_y: Tensor, n: int) -> Tensor:
    """Unbiased HSIC (Song et al. 2012) of linear kernels on centered data, times n(n-3).

    ``cross_sq`` = ||Xc^T Yc||_F², ``sq_xy`` = Σ_i ||xc_i||²||yc_i||², ``sq_x`` = Σ_i ||xc_i||².
    The same expression as Kornblith et al.'s ``feature_space_linear_cka(debiased=True)``.
    """
    return cross_sq - n / (n - 2.0) * sq_xy + sq_x * sq_y / ((n - 1.0) * (n - 2.0))


def linear_cka_from_moments(m: CenteredMoments, *, debiased: bool = False) -> Tensor:
    """Linear CKA from centered moments (the maths core shared by function and class).

    Examples:
        >>> import torch
        >>> from subspaces.similarity import linear_cka_from_moments
        >>> from subspaces.linalg.moments import paired_moments
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(linear_cka_from_moments(paired_moments(x, y))), 4)
        0.6838
    """
    check_moments(m, what="linear CKA", needs=("cxx", "cyy", "cxy"))
    assert m.cxx is not None and m.cyy is not None and m.cxy is not None
    debiased = check_flag(debiased, name="debiased")
    check_variance(m.cxx, m.mean_x, m.n, name="x", measure="CKA")
    check_variance(m.cyy, m.mean_y, m.n, name="y", measure="CKA")
    cross = (m.cxy * m.cxy).sum()
    self_x = (m.cxx * m.cxx).sum()
    self_y = (m.cyy * m.cyy).sum()
    if not debiased:
        return cross / sqrt_product(self_x, self_y)
    if m.row_norms is None:
        raise InputTypeError(
            "debiased CKA needs the row-norm sums, which m lacks; accumulate the moments with "
            "row_norms=True (paired_moments(x, y, row_norms=True))."
        )
    if m.n < 4:
        raise TooFewSamplesError(f"debiased CKA needs at least 4 samples, got {m.n}.")
    r = m.row_norms
    hxy = _hsic_debiased(cross, r.sq_xy, r.sq_x, r.sq_y, m.n)
    hxx = _hsic_debiased(self_x, r.sq_xx, r.sq_x, r.sq_x, m.n)
    hyy = _hsic_debiased(self_y, r.sq_yy, r.sq_y, r.sq_y, m.n)
    if float(hxx) <= 0.0 or float(hyy) <= 0.0:
        raise DegenerateInputError(
            "the debiased HSIC of a representation with itself is not positive "
            f"(x: {float(hxx):.3g}, y: {float(hyy):.3g}); the sample is too small or too "
            "degenerate for debiased CKA. Use more samples or debiased=False."
        )
    return hxy / sqrt_product(hxx, hyy)


def linear_cka(x: Any, y: Any, *, debiased: bool = False, chunk_size: int = CHUNK_SIZE) -> Tensor:
    """Linear CKA between two representations of the same inputs.

    CKA(X, Y) = ||Yc^T Xc||_F² / (||Xc^T Xc||_F ||Yc^T Yc||_F), Xc = X centered over samples
    (Kornblith et al., 2019). Computed in feature space (d1 × d2), never n × n, with float64
    accumulation of chunked products: exact to ~1e-9 on float32 input at n = 50,000.

    Invariant to orthogonal transforms, isotropic scaling and translation of either side;
    symmetric; in [0, 1], 1 when ``y`` is ``x`` up to those transforms.

    ``debiased=True`` replaces each HSIC by the unbiased estimator of Song et al. (2012), as
    in Kornblith's ``feature_space_linear_cka(..., debiased=True)`` and ckatorch's
    ``unbiased=True``; it is nearly unbiased for finite n and may be slightly negative.

    Args:
        x: (n, d1) representation. y: (n, d2) representation of the same n inputs.
        debiased: use the unbiased HSIC estimator (needs n >= 4).
        chunk_size: rows per float32 product.

    Returns:
        A 0-dim float64 tensor on the inputs' device.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import linear_cka
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(linear_cka(x, y)), 4)
        0.6838
        >>> round(float(linear_cka(x, y, debiased=True)), 4)
        0.6722
    """
    debiased = check_flag(debiased, name="debiased")
    x, y = check_paired(x, y, min_samples=4 if debiased else 2)
    moments = paired_moments(x, y, row_norms=debiased, chunk_size=chunk_size)
    return linear_cka_from_moments(moments, debiased=debiased)


class LinearCKA(PairedMomentsMetric):
    """Streaming linear CKA: ``update(x, y)`` per batch, ``compute()`` at the end.

    Equals :func:`linear_cka` on the concatenated batches, whatever the split, and under
    ``torch.distributed`` the global value over every rank's batches (states sum).

    Examples:
        >>> import torch
        >>> from subspaces.similarity import LinearCKA
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> metric = LinearCKA()
        >>> metric.update(x[:50], y[:50])
        >>> metric.update(x[50:], y[50:])
        >>> round(float(metric.compute()), 4)
        0.6838
    """

    higher_is_better = True

    def __init__(
        self, *, debiased: bool = False, chunk_size: int = CHUNK_SIZE, **kwargs: Any
    ) -> None:
        debiased = check_flag(debiased, name="debiased")
        super().__init__(
            row_norms=debiased, chunk_size=chunk_size, min_samples=4 if debiased else 2, **kwargs
        )
        self.debiased = debiased

    def compute(self) -> Tensor:
        """Linear CKA of every sample seen so far."""
        return linear_cka_from_moments(self.moments(), debiased=self.debiased)
