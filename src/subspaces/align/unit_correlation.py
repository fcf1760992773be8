"""Unit correlations between two networks (Convergent Learning, Li et al., ICLR 2016).

Li, Yosinski, Clune, Lipson and Hopcroft ask whether two networks trained from different
initializations learn the same units. They compare units by the Pearson correlation of their
activations over a data set: :func:`unit_correlation` (between the networks),
:func:`joint_correlation` (between and within) and the streaming :class:`UnitCorrelation`.
The matchings built on them live in :mod:`~subspaces.align.unit_matching` (one-to-one),
:mod:`~subspaces.align.sparse_prediction` (one-to-many) and
:mod:`~subspaces.align.unit_clusters` (many-to-many).

Everything is computed from the float64 centered moments of :mod:`subspaces.linalg.moments`
(memory O((d1 + d2)²) whatever the number of samples), so :class:`UnitCorrelation` streams
over batches and its :meth:`~UnitCorrelation.moments` feed the ``*_from_moments`` functions.
For convolutional layers, pass every spatial position as a sample (the paper's choice):
``acts.permute(0, 2, 3, 1).reshape(-1, channels)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from subspaces._base import Result
from subspaces._checks import (
    DegenerateInputError,
    check_choice,
    check_matrix,
    check_paired,
)
from subspaces.linalg.moments import (
    CHUNK_SIZE,
    CenteredMoments,
    check_moments,
    paired_moments,
)
from subspaces.linalg.streaming import PairedMomentsMetric

__all__ = [
    "JointCorrelation",
    "UnitCorrelation",
    "joint_correlation",
    "joint_correlation_from_moments",
    "unit_correlation",
    "unit_correlation_from_moments",
]

_F64 = torch.float64
_EPS64 = torch.finfo(_F64).eps

ConstantPolicy = Literal["raise", "zero"]
_CONSTANT_CHOICES = ("raise", "zero")


@dataclass(frozen=True)
class JointCorrelation(Result):
    """Correlations between and within the units of two representations (float64).

    ``cross`` is (d1, d2): ``cross[i, j] = corr(x_i, y_j)``; ``within_x`` (d1, d1) and
    ``within_y`` (d2, d2) are the within-network correlation matrices (ones on the diagonal).
    ``constant_x`` / ``constant_y`` flag the units with zero variance (only possible with
    ``constant="zero"``; their correlations with every other unit are 0).

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 3, generator=g, dtype=torch.float64)
        >>> j = joint_correlation(x, -2.0 * x[:, [2, 0, 1]])
        >>> j.cross.shape, j.within_y.shape, [round(v, 4) for v in j.cross[:, 0].tolist()]
        (torch.Size([3, 3]), torch.Size([3, 3]), [0.0593, 0.0075, -1.0])
    """

    cross: Tensor
    within_x: Tensor
    within_y: Tensor
    constant_x: Tensor
    constant_y: Tensor


def _unit_scales(
    scatter_diag: Tensor, mean: Tensor, n: int, *, name: str, constant: str
) -> tuple[Tensor, Tensor]:
    """Per-unit root scatter sqrt(Σ (x_i - mean)²) and the mask of constant units.

    A unit is constant when its scatter is below 64 · eps64 · n · mean², i.e. its relative
    variation is below ~1e-7 (float32 resolution): the rounding a constant unit leaves in
    the float64 moments is far smaller.
    """
    var = scatter_diag.clamp_min(0.0)
    floor = 64.0 * _EPS64 * n * mean * mean
    const = var <= floor
    count = int(const.sum())
    if count and constant == "raise":
        idx = torch.nonzero(const).flatten()[:10].tolist()
        more = ", ..." if count > 10 else ""
        raise DegenerateInputError(
            f"{name} has {count} constant unit(s) out of {var.numel()} (zero variance over the "
            f"{n} samples), at indices [{', '.join(map(str, idx))}{more}]; the correlation of a "
            f"constant unit is undefined. Drop them first (e.g. {name}[:, {name}.std(0) > 0]) "
            "or pass constant='zero' to give them correlation 0 with every other unit."
        )
    scale = torch.where(const, torch.ones_like(var), var.sqrt())
    return scale, const


def _correlation(
    c: Tensor, scale_a: Tensor, const_a: Tensor, scale_b: Tensor, const_b: Tensor
) -> Tensor:
    r = c / torch.outer(scale_a, scale_b)
    r = r.clamp(-1.0, 1.0)
    return r.masked_fill(const_a[:, None] | const_b[None, :], 0.0)


def _require(m: CenteredMoments, *, need_y: bool = True) -> tuple[Tensor, Tensor, Tensor]:
    needs = ("cxx", "cyy", "cxy", "mean_y") if need_y else ("cxx",)
    check_moments(m, what="unit correlations", needs=needs)
    assert m.cxx is not None and m.cyy is not None and m.cxy is not None
    return m.cxx, m.cyy, m.cxy


def _scaled_moments(
    m: CenteredMoments, constant: str
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``cxx, cyy, cxy`` and each side's unit scales and kept-unit masks."""
    check_choice(constant, name="constant", choices=_CONSTANT_CHOICES)
    cxx, cyy, cxy = _require(m)
    assert m.mean_y is not None
    sx, kx = _unit_scales(torch.diagonal(cxx), m.mean_x, m.n, name="x", constant=constant)
    sy, ky = _unit_scales(torch.diagonal(cyy), m.mean_y, m.n, name="y", constant=constant)
    return cxx, cyy, cxy, sx, kx, sy, ky


def joint_correlation_from_moments(
    m: CenteredMoments, *, constant: ConstantPolicy = "raise"
) -> JointCorrelation:
    """Cross and within-network unit correlations from centered moments (the maths core).

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 3, generator=g, dtype=torch.float64)
        >>> from subspaces.linalg.moments import paired_moments
        >>> j = joint_correlation_from_moments(paired_moments(x, x + 1.0))
        >>> [round(v, 4) for v in j.cross.diagonal().tolist()]
        [1.0, 1.0, 1.0]
    """
    cxx, cyy, cxy, sx, kx, sy, ky = _scaled_moments(m, constant)
    within_x = _correlation(cxx, sx, kx, sx, kx)
    within_y = _correlation(cyy, sy, ky, sy, ky)
    within_x.fill_diagonal_(1.0)
    within_y.fill_diagonal_(1.0)
    return JointCorrelation(_correlation(cxy, sx, kx, sy, ky), within_x, within_y, kx, ky)


def unit_correlation_from_moments(
    m: CenteredMoments, *, constant: ConstantPolicy = "raise"
) -> Tensor:
    """The (d1, d2) unit correlation matrix from centered moments (the maths core).

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 3, generator=g, dtype=torch.float64)
        >>> from subspaces.linalg.moments import paired_moments
        >>> r = unit_correlation_from_moments(paired_moments(x, 5.0 * x[:, :2]))
        >>> r.shape, [round(v, 4) for v in r.diagonal().tolist()]
        (torch.Size([3, 2]), [1.0, 1.0])
    """
    _, _, cxy, sx, kx, sy, ky = _scaled_moments(m, constant)
    return _correlation(cxy, sx, kx, sy, ky)


def unit_correlation(
    x: Any,
    y: Any | None = None,
    *,
    constant: ConstantPolicy = "raise",
    chunk_size: int = CHUNK_SIZE,
) -> Tensor:
    """Pearson correlation between every unit of ``x`` and every unit of ``y``.

    corr(x_i, y_j) = Σ_s (x_si - x̄_i)(y_sj - ȳ_j) / sqrt(Σ_s (x_si - x̄_i)² Σ_s (y_sj - ȳ_j)²),
    over the n samples s (Li et al., 2016, section 2; for convolutional layers every spatial
    position is a sample). With ``y=None``,
    the within-network correlation of ``x`` with itself (ones on the diagonal).

    Invariant to a positive affine map of each unit (a negative scale flips the sign);
    in [-1, 1]. Built from float64 moments: memory O(d1 · d2) whatever n is.

    Args:
        x: (n, d1) activations. y: (n, d2) activations of the same n inputs, or ``None``.
        constant: what to do with a unit of zero variance: ``"raise"`` a
            :class:`~subspaces._checks.DegenerateInputError` (default), or ``"zero"``: give
            it correlation 0 with every other unit (1 with itself).
        chunk_size: rows per float32 product.

    Returns:
        A (d1, d2) float64 tensor on the inputs' device ((d1, d1) when ``y`` is ``None``).

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 3, generator=g, dtype=torch.float64)
        >>> r = unit_correlation(x, 3.0 * x[:, [1, 0]] + 1.0)
        >>> [[round(v, 4) for v in row] for row in r[:2].tolist()]
        [[-0.1601, 1.0], [1.0, -0.1601]]
    """
    check_choice(constant, name="constant", choices=_CONSTANT_CHOICES)
    if y is None:
        tx = check_matrix(x, name="x")
        m = paired_moments(tx, chunk_size=chunk_size)
        assert m.cxx is not None
        sx, kx = _unit_scales(torch.diagonal(m.cxx), m.mean_x, m.n, name="x", constant=constant)
        within = _correlation(m.cxx, sx, kx, sx, kx)
        return within.fill_diagonal_(1.0)
    tx, ty = check_paired(x, y)
    return unit_correlation_from_moments(
        paired_moments(tx, ty, chunk_size=chunk_size), constant=constant
    )


def joint_correlation(
    x: Any, y: Any, *, constant: ConstantPolicy = "raise", chunk_size: int = CHUNK_SIZE
) -> JointCorrelation:
    """Between- and within-network unit correlations of ``x`` (n, d1) and ``y`` (n, d2).

    See :func:`unit_correlation` for the definition and the options; Li et al. (2016) study
    the within-network matrices beside the between-network one, and cluster all of them
    together (:func:`spectral_unit_clusters`).

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 3, generator=g, dtype=torch.float64)
        >>> j = joint_correlation(x, x[:, :2])
        >>> [round(v, 4) for v in j.within_x.diagonal().tolist()]
        [1.0, 1.0, 1.0]
    """
    tx, ty = check_paired(x, y)
    return joint_correlation_from_moments(
        paired_moments(tx, ty, chunk_size=chunk_size), constant=constant
    )


class UnitCorrelation(PairedMomentsMetric):
    """Streaming unit correlations: ``update(x, y)`` per batch, ``compute()`` at the end.

    ``compute()`` returns the (d1, d2) matrix of :func:`unit_correlation` on the
    concatenated batches, whatever the split (and under ``torch.distributed`` over every
    rank's batches: the states are moment sums). :meth:`joint` adds the within-network
    matrices; :meth:`moments` feeds :func:`sparse_prediction_from_moments`.

    Args:
        constant: as in :func:`unit_correlation`.
        chunk_size: rows per float32 product inside one update.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 3, generator=g, dtype=torch.float64)
        >>> metric = UnitCorrelation()
        >>> metric.update(x[:60], x[:60, [1, 0]])
        >>> metric.update(x[60:], x[60:, [1, 0]])
        >>> [[round(v, 4) for v in row] for row in metric.compute()[:2].tolist()]
        [[-0.1601, 1.0], [1.0, -0.1601]]
    """

    def __init__(
        self,
        *,
        constant: ConstantPolicy = "raise",
        chunk_size: int = CHUNK_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(chunk_size=chunk_size, min_samples=2, **kwargs)
        check_choice(constant, name="constant", choices=_CONSTANT_CHOICES)
        self.constant: ConstantPolicy = constant

    def compute(self) -> Tensor:
        """The (d1, d2) unit correlation matrix of every sample seen so far."""
        return unit_correlation_from_moments(self.moments(), constant=self.constant)

    def joint(self) -> JointCorrelation:
        """Between- and within-network correlations of every sample seen so far."""
        return joint_correlation_from_moments(self.moments(), constant=self.constant)
