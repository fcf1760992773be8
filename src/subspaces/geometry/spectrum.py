"""The covariance spectrum of one representation and the scalars built on it.

Every measure here is a function of the eigenvalues λ_1 ≥ ... ≥ λ_d ≥ 0 of the sample
covariance ``Σ = Xcᵀ Xc / (n - 1)`` (``Xc`` = ``x`` centered over samples), computed from the
float64 streaming scatter matrix of :mod:`subspaces.linalg.moments` (d × d, never n × n):

* :func:`covariance_spectrum`: the eigenvalues and explained-variance ratios λ_i / Σλ;
* :func:`effective_rank`: Roy & Vetterli (2007), exp of the entropy of the normalized
  singular values of ``Xc`` (σ_i = sqrt((n - 1) λ_i));
* :func:`participation_ratio`: (Σλ)² / Σλ²;
* :func:`stable_rank`: ||Xc||_F² / ||Xc||_2² = Σλ / λ_1;
* :func:`numerical_rank`: #{σ_i > rtol · σ_1};
* :func:`spectral_decay`: the power-law exponent α of λ_i ∝ i^(-α) (Stringer et al. 2019;
  α-ReQ, Agrawal et al. 2022);
* :func:`von_neumann_entropy`: -tr(ρ log ρ), ρ = Σ / tr Σ ("Information Shapes Koopman
  Representation").

All are invariant to translation, orthogonal transforms of the features and the order of
the samples, and all but the eigenvalues themselves to isotropic scaling. Each has a
function, and the streaming class
:class:`CovarianceSpectrum` returns the :class:`Spectrum` from which every scalar follows
(``spectrum.effective_rank()``, ``spectrum.summary()``): one maths core,
:func:`spectrum_from_moments`.

**Resolution.** A spectrum computed through ``Xcᵀ Xc`` squares the condition number: the
products carry the rounding of the input dtype (``eps`` ≈ 1.2e-7 for float32), and the
final centering ``Σ x xᵀ - n x̄ x̄ᵀ`` loses about ``eps64 · n · ||x̄||²`` when the data sit
far from the origin. Eigenvalues at or below that level
(``max(max(d, 4) · eps(dtype) · λ_1, 4 · eps64 · n ||x̄||² / (n - 1))``, the field
``noise_floor``) are indistinguishable from rounding and reported as exactly 0, so that
rank-deficient data give exact zeros (and an effective rank of 1 for rank-one data rather
than one inflated by noise directions). Singular-value ratios σ_i / σ_1 below about
``sqrt(max(d, 4) · eps(dtype))`` are therefore not resolved (~3.5e-4 · sqrt(d) for float32).
A representation whose variance is zero to that level raises
:class:`~subspaces._checks.DegenerateInputError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from subspaces._base import Result
from subspaces._checks import (
    DegenerateInputError,
    InvalidOptionError,
    ShapeError,
    TooFewSamplesError,
    check_choice,
    check_flag,
    check_float_dtype,
    check_matrix,
    check_positive_int,
    check_positive_real,
    check_scalar_in_range,
)
from subspaces.linalg.decomp import eigvalsh
from subspaces.linalg.moments import (
    CHUNK_SIZE,
    CenteredMoments,
    MomentsMetric,
    accumulate_moments,
    center_moments,
    check_moments,
    paired_moments,
)
from subspaces.linalg.streaming import DataclassResultMetric

__all__ = [
    "CovarianceSpectrum",
    "Spectrum",
    "covariance_spectrum",
    "effective_rank",
    "numerical_rank",
    "participation_ratio",
    "spectral_decay",
    "spectrum_from_moments",
    "stable_rank",
    "von_neumann_entropy",
]

_F64 = torch.float64
_EPS64 = float(torch.finfo(_F64).eps)
EffectiveRankMethod = Literal["singular", "eigen"]


def _entropy(p: Tensor) -> Tensor:
    """Shannon entropy (nats) of a probability vector, with 0 log 0 = 0."""
    positive = p[p > 0]
    return -(positive * positive.log()).sum()


def _check_fit_range(fit_range: Any) -> tuple[int, int | None]:
    if not isinstance(fit_range, (tuple, list)) or len(fit_range) != 2:
        raise InvalidOptionError(
            "fit_range must be a pair (first, last) of 1-based eigenvalue ranks, last "
            f"inclusive or None for all; got {fit_range!r}."
        )
    first = check_positive_int(fit_range[0], name="fit_range[0]")
    if fit_range[1] is None:
        return first, None
    last = check_positive_int(fit_range[1], name="fit_range[1]")
    if last <= first:
        raise InvalidOptionError(
            f"fit_range must span at least two ranks (first < last), got {tuple(fit_range)}."
        )
    return first, last


@dataclass(frozen=True)
class Spectrum(Result):
    """The spectrum of a sample covariance, and every scalar summary of it.

    Attributes:
        eigenvalues: ``(d,)`` float64, decreasing, ≥ 0: eigenvalues of ``Σ = Xcᵀ Xc / (n-1)``;
            those at or below ``noise_floor`` are exactly 0 (see the module notes).
        explained_variance_ratio: ``(d,)`` float64, λ_i / Σ_j λ_j (sums to 1).
        n_samples: the n the covariance was computed from.
        input_dtype: the least precise dtype of the data (sets the default tolerances).
        noise_floor: the rounding level below which eigenvalues were set to 0 (covariance
            units).

    Scalars (0-dim float64 tensors on the eigenvalues' device), as methods so that options
    can be passed: :meth:`effective_rank`, :meth:`participation_ratio`,
    :meth:`stable_rank`, :meth:`numerical_rank`, :meth:`spectral_decay`,
    :meth:`von_neumann_entropy`; :meth:`summary` returns all of them with their defaults.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> scale = torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)
        >>> x = torch.randn(100, 3, generator=g, dtype=torch.float64) * scale
        >>> from subspaces.geometry import covariance_spectrum
        >>> spec = covariance_spectrum(x)
        >>> spec.n_features, spec.n_samples
        (3, 100)
        >>> round(float(spec.effective_rank()), 3), round(float(spec.participation_ratio()), 3)
        (2.723, 1.974)
        >>> sorted(spec.summary())[:3]
        ['effective_rank', 'numerical_rank', 'participation_ratio']
        >>> spec.as_dict()['input_dtype']
        'float64'
    """

    eigenvalues: Tensor
    explained_variance_ratio: Tensor
    n_samples: int
    input_dtype: torch.dtype
    noise_floor: float

    def as_dict(self) -> dict[str, Any]:
        """The fields as plain Python values; ``input_dtype`` as its name (``"float32"``)."""
        out = super().as_dict()
        out["input_dtype"] = str(self.input_dtype).removeprefix("torch.")
        return out

    @property
    def n_features(self) -> int:
        """d, the number of features."""
        return int(self.eigenvalues.shape[0])

    @property
    def total_variance(self) -> Tensor:
        """tr Σ = Σ_i λ_i, 0-dim float64."""
        return self.eigenvalues.sum()

    @property
    def singular_values(self) -> Tensor:
        """Singular values of the centered data ``Xc``: σ_i = sqrt((n - 1) λ_i), ``(d,)``."""
        return ((self.n_samples - 1) * self.eigenvalues).sqrt()

    def effective_rank(self, *, method: EffectiveRankMethod = "singular") -> Tensor:
        """Effective rank, exp(H(p)) with H the Shannon entropy (nats) and 0 log 0 = 0.

        ``method="singular"`` (default, Roy & Vetterli 2007): p_i = σ_i / Σ_j σ_j with σ_i
        the singular values of the centered data, i.e. p_i ∝ sqrt(λ_i). ``method="eigen"``:
        p_i = λ_i / Σ_j λ_j (the explained-variance ratios), which equals
        exp(:meth:`von_neumann_entropy`) at ``ridge=0``; it is smaller for any non-flat
        spectrum. In [1, numerical rank]; d for isotropic data, 1 for rank one.
        """
        which = check_choice(method, name="method", choices=("singular", "eigen"))
        weights = self.eigenvalues.sqrt() if which == "singular" else self.eigenvalues
        return _entropy(weights / weights.sum()).exp()

    def participation_ratio(self) -> Tensor:
        """(Σ λ_i)² / Σ λ_i², in [1, numerical rank]; d for isotropic data (Gao et al. 2017)."""
        lam = self.eigenvalues
        return lam.sum().square() / lam.square().sum()

    def stable_rank(self) -> Tensor:
        """||Xc||_F² / ||Xc||_2² = Σ λ_i / λ_1, in [1, numerical rank] (Rudelson & Vershynin)."""
        return self.eigenvalues.sum() / self.eigenvalues[0]

    def numerical_rank(self, *, rtol: float | None = None) -> Tensor:
        """Count of singular values of ``Xc`` above ``rtol · σ_1`` (as a float64 tensor).

        The default ``rtol`` is numpy's ``matrix_rank`` default, ``max(n, d) · eps`` of the
        input dtype. Whatever ``rtol``, eigenvalues below the resolution of the covariance
        route (``noise_floor``, about ``sqrt(max(d, 4) · eps)`` in σ_i / σ_1) count as 0.
        """
        if rtol is None:
            tol = max(self.n_samples, self.n_features) * float(torch.finfo(self.input_dtype).eps)
        else:
            tol = check_scalar_in_range(rtol, name="rtol", low=0.0, high=1.0, high_open=True)
        sigma = self.eigenvalues.sqrt()
        return (sigma > tol * sigma[0]).sum().to(_F64)

    def spectral_decay(
        self, *, fit_range: tuple[int, int | None] = (1, None), weighted: bool = False
    ) -> Tensor:
        """Power-law exponent α of the spectrum, λ_i ≈ c · i^(-α).

        α = -slope of the least-squares line through (log i, log λ_i) for the 1-based ranks
        ``fit_range = (first, last)`` (``last`` inclusive; None = up to the last non-zero
        eigenvalue). Ranks beyond the numerical rank are dropped (log 0 is not a power
        law). ``weighted=True`` weights point i by 1/i, as in the code of Stringer et al.
        (2019), which makes the fit uniform in log i. Presets: Stringer et al. fit ranks
        ``(12, 500)`` weighted; the α-ReQ reference code (Agrawal et al. 2022, reptrix) fits
        ranks ``(6, 100)`` weighted. The default fits every non-zero eigenvalue, unweighted.
        α = 1 is the 1/n spectrum of mouse V1; exact for an exact power law.
        """
        first, last = _check_fit_range(fit_range)
        weighted = check_flag(weighted, name="weighted")
        positive = int((self.eigenvalues > 0).sum())
        stop = positive if last is None else min(last, positive)
        if stop - first + 1 < 2:
            raise DegenerateInputError(
                f"fit_range {tuple(fit_range)} holds {max(stop - first + 1, 0)} non-zero "
                f"eigenvalues (the spectrum has {positive}); a power-law fit needs at least two. "
                "Choose a range within the numerical rank."
            )
        ranks = torch.arange(first, stop + 1, dtype=_F64, device=self.eigenvalues.device)
        log_i = ranks.log()
        log_lam = self.eigenvalues[first - 1 : stop].log()
        w = 1.0 / ranks if weighted else torch.ones_like(ranks)
        w = w / w.sum()
        xc = log_i - (w * log_i).sum()
        yc = log_lam - (w * log_lam).sum()
        return -(w * xc * yc).sum() / (w * xc * xc).sum()

    def von_neumann_entropy(self, *, ridge: float = 0.0) -> Tensor:
        """Von Neumann entropy S = -tr(ρ log ρ) = -Σ μ_i log μ_i (nats) of ρ = Σ_r / tr Σ_r.

        Σ_r = Σ + r · (tr Σ / d) I with the relative ``ridge`` r ≥ 0 (the Koopman paper adds
        a multiple of I for stability in training; relative to the mean variance, so the
        entropy does not change when the data are rescaled; with r = 0 the closed forms are
        exact). In [0, log d]: log d for isotropic data, 0 for rank one (at r = 0). exp(S)
        is ``effective_rank(method="eigen")`` at r = 0.
        """
        r = check_positive_real(ridge, name="ridge", allow_zero=True)
        lam = self.eigenvalues + r * self.eigenvalues.mean()
        return _entropy(lam / lam.sum())

    def summary(self) -> dict[str, Tensor]:
        """Every scalar at its default options, as a dict of 0-dim float64 tensors.

        Keys: ``total_variance``, ``effective_rank``, ``participation_ratio``,
        ``stable_rank``, ``numerical_rank``, ``von_neumann_entropy`` and, where at least two
        eigenvalues are non-zero, ``spectral_decay``.
        """
        out = {
            "total_variance": self.total_variance,
            "effective_rank": self.effective_rank(),
            "participation_ratio": self.participation_ratio(),
            "stable_rank": self.stable_rank(),
            "numerical_rank": self.numerical_rank(),
            "von_neumann_entropy": self.von_neumann_entropy(),
        }
        if int((self.eigenvalues > 0).sum()) >= 2:
            out["spectral_decay"] = self.spectral_decay()
        return out


# ---------------------------------------------------------------------------------------
# The maths core


def spectrum_from_moments(m: CenteredMoments, *, input_dtype: torch.dtype = _F64) -> Spectrum:
    """The :class:`Spectrum` of centered moments (the core shared by functions and class).

    Args:
        m: moments of one representation with its scatter ``cxx`` (n ≥ 2).
        input_dtype: the dtype the data arrived in (float32 or float64): sets the rounding
            level of the products, hence ``noise_floor``.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 3, generator=g, dtype=torch.float64)
        >>> from subspaces.geometry import spectrum_from_moments
        >>> from subspaces.linalg.moments import paired_moments
        >>> spec = spectrum_from_moments(paired_moments(x))
        >>> [round(v, 3) for v in spec.eigenvalues.tolist()]
        [1.175, 0.889, 0.795]
    """
    check_moments(m, what="the covariance spectrum", needs=("cxx",))
    assert m.cxx is not None
    check_float_dtype(input_dtype, name="input_dtype", optional=False)
    if m.n < 2:
        raise TooFewSamplesError(f"a sample covariance needs at least 2 samples, got {m.n}.")
    d = m.cxx.shape[0]
    evals = eigvalsh(0.5 * (m.cxx + m.cxx.T).to(_F64)).flip(0).clamp(min=0.0)
    top = float(evals[0])
    centering_noise = 4.0 * _EPS64 * m.n * float(m.mean_x.to(_F64) @ m.mean_x.to(_F64))
    if top <= centering_noise or top == 0.0:
        raise DegenerateInputError(
            f"x has zero variance (all {m.n} samples are the same point, up to float64 "
            "rounding), so its covariance spectrum is undefined; check that x is not a "
            "constant or dead layer."
        )
    relative = max(d, 4) * float(torch.finfo(input_dtype).eps)
    floor = max(relative * top, centering_noise)
    evals = torch.where(evals > floor, evals, torch.zeros_like(evals)) / (m.n - 1)
    return Spectrum(
        eigenvalues=evals,
        explained_variance_ratio=evals / evals.sum(),
        n_samples=m.n,
        input_dtype=input_dtype,
        noise_floor=floor / (m.n - 1),
    )


def _spectrum(x: Any, chunk_size: int) -> Spectrum:
    check_positive_int(chunk_size, name="chunk_size")
    t = check_matrix(x, name="x", min_samples=2)
    return spectrum_from_moments(paired_moments(t, chunk_size=chunk_size), input_dtype=t.dtype)


def covariance_spectrum(x: Any, *, chunk_size: int = CHUNK_SIZE) -> Spectrum:
    """Eigenvalues and explained-variance ratios of the sample covariance of ``x``.

    Σ = Xcᵀ Xc / (n - 1), Xc = x centered over samples; eigenvalues decreasing, clipped at 0,
    and those at rounding level set to 0 (see the module notes). Computed from the float64
    streaming scatter matrix (d × d), never n × n. Invariant to translation, orthogonal
    transforms of the features (the eigenvalues) and sample order.

    Args:
        x: (n, d) representation, n ≥ 2.
        chunk_size: rows per float32 product.

    Returns:
        A :class:`Spectrum`; its methods give every scalar of this module.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> scale = torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)
        >>> x = torch.randn(100, 3, generator=g, dtype=torch.float64) * scale
        >>> from subspaces.geometry import covariance_spectrum
        >>> spec = covariance_spectrum(x)
        >>> [round(v, 3) for v in spec.eigenvalues.tolist()]
        [8.846, 4.003, 0.844]
        >>> [round(v, 3) for v in spec.explained_variance_ratio.tolist()]
        [0.646, 0.292, 0.062]
    """
    return _spectrum(x, chunk_size)


def effective_rank(
    x: Any, *, method: EffectiveRankMethod = "singular", chunk_size: int = CHUNK_SIZE
) -> Tensor:
    """Effective rank of ``x`` (Roy & Vetterli 2007): exp of the entropy of its spectrum.

    erank = exp(-Σ p_i log p_i), p_i = σ_i / Σ_j σ_j, σ_i the singular values of the
    *centered* data ``Xc`` (σ_i = sqrt((n - 1) λ_i)), following the paper, which defines it on
    singular values. ``method="eigen"`` uses p_i = λ_i / Σλ instead (the covariance-eigenvalue
    version some papers use; smaller for any non-flat spectrum). RankMe (Garrido et al.
    2023) is the singular-value version on *uncentered* embeddings, so it differs from this
    by the mean. In [1, numerical rank]: d for isotropic data, 1 for rank-one data.
    Invariant to translation, isotropic scaling, orthogonal transforms, sample order.

    Args:
        x: (n, d) representation, n ≥ 2.
        method: ``"singular"`` (default) or ``"eigen"``.
        chunk_size: rows per float32 product.

    Returns:
        A 0-dim float64 tensor on ``x``'s device.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> scale = torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)
        >>> x = torch.randn(100, 3, generator=g, dtype=torch.float64) * scale
        >>> from subspaces.geometry import effective_rank
        >>> round(float(effective_rank(x)), 3)
        2.723
        >>> round(float(effective_rank(x, method="eigen")), 3)
        2.256
    """
    return _spectrum(x, chunk_size).effective_rank(method=method)


def participation_ratio(x: Any, *, chunk_size: int = CHUNK_SIZE) -> Tensor:
    """Participation ratio (Σλ_i)² / Σλ_i² of the covariance eigenvalues of ``x``.

    A linear dimensionality (Gao et al. 2017; Recanatesi et al.): in [1, numerical rank],
    d for isotropic data, 1 for rank one. Invariant to translation, isotropic scaling,
    orthogonal transforms and sample order.

    Returns:
        A 0-dim float64 tensor on ``x``'s device.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> scale = torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)
        >>> x = torch.randn(100, 3, generator=g, dtype=torch.float64) * scale
        >>> from subspaces.geometry import participation_ratio
        >>> round(float(participation_ratio(x)), 3)
        1.974
    """
    return _spectrum(x, chunk_size).participation_ratio()


def stable_rank(x: Any, *, chunk_size: int = CHUNK_SIZE) -> Tensor:
    """Stable rank ||Xc||_F² / ||Xc||_2² = Σλ_i / λ_1 of the centered data ``Xc``.

    In [1, numerical rank]; d for isotropic data, 1 for rank one (Rudelson & Vershynin
    2007). Invariant to translation, isotropic scaling, orthogonal transforms, sample order.

    Returns:
        A 0-dim float64 tensor on ``x``'s device.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> scale = torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)
        >>> x = torch.randn(100, 3, generator=g, dtype=torch.float64) * scale
        >>> from subspaces.geometry import stable_rank
        >>> round(float(stable_rank(x)), 3)
        1.548
    """
    return _spectrum(x, chunk_size).stable_rank()


def numerical_rank(x: Any, *, rtol: float | None = None, chunk_size: int = CHUNK_SIZE) -> Tensor:
    """Numerical rank of the centered data: #{σ_i > rtol · σ_1}, σ the singular values of Xc.

    The default ``rtol = max(n, d) · eps`` of the input dtype is numpy's ``matrix_rank``
    default. The σ_i come from the covariance eigenvalues, which resolve σ_i / σ_1 only
    down to about ``sqrt(max(d, 4) · eps)`` (see the module notes): smaller singular values
    count as 0 whatever ``rtol``. Invariant to translation, orthogonal transforms, sample
    order and scaling.

    Args:
        x: (n, d) representation, n ≥ 2.
        rtol: relative tolerance on singular values, in [0, 1).

    Returns:
        The rank as a 0-dim float64 tensor on ``x``'s device.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> basis = torch.randn(2, 5, generator=g, dtype=torch.float64)
        >>> x = torch.randn(100, 2, generator=g, dtype=torch.float64) @ basis
        >>> from subspaces.geometry import numerical_rank
        >>> float(numerical_rank(x))  # rank 2 in R^5
        2.0
    """
    return _spectrum(x, chunk_size).numerical_rank(rtol=rtol)


def spectral_decay(
    x: Any,
    *,
    fit_range: tuple[int, int | None] = (1, None),
    weighted: bool = False,
    chunk_size: int = CHUNK_SIZE,
) -> Tensor:
    """Power-law decay exponent α of the covariance spectrum, λ_i ≈ c · i^(-α).

    Least squares of log λ_i on log i over the 1-based ranks ``fit_range = (first, last)``
    (``last`` inclusive, None = all non-zero eigenvalues; ranks beyond the numerical rank
    are dropped); ``weighted=True`` weights rank i by 1/i as Stringer et al.'s code does.
    Stringer et al. (2019) fit ranks (12, 500) weighted and find α ≈ 1 in mouse V1; α-ReQ
    (Agrawal et al. 2022) relates α to generalization, its reference code fitting ranks
    (6, 100) weighted. Invariant to translation, scaling, orthogonal transforms and
    sample order. Exact on an exact power law.

    Returns:
        α as a 0-dim float64 tensor on ``x``'s device.

    Examples:
        >>> import torch
        >>> from subspaces.geometry import spectral_decay
        >>> scales = torch.arange(1, 21, dtype=torch.float64) ** -0.5  # λ_i ∝ i^-1
        >>> g = torch.Generator().manual_seed(0)
        >>> q = torch.linalg.qr(torch.randn(200, 20, generator=g, dtype=torch.float64)).Q
        >>> x = q * scales
        >>> round(float(spectral_decay(x)), 3)
        1.0
    """
    return _spectrum(x, chunk_size).spectral_decay(fit_range=fit_range, weighted=weighted)


def von_neumann_entropy(x: Any, *, ridge: float = 0.0, chunk_size: int = CHUNK_SIZE) -> Tensor:
    """Von Neumann entropy of the normalized covariance of ``x`` (nats).

    As in "Information Shapes Koopman Representation": center Z, Σ = Zᵀ Z / (N - 1) + ε I,
    ρ = Σ / tr Σ, S = -tr(ρ log ρ) = -Σ μ_i log μ_i over the eigenvalues μ of ρ (0 log 0 = 0),
    with ε = ridge · tr(Zᵀ Z / (N - 1)) / d, the relative ridge (default 0). In [0, log d]:
    log d for isotropic data, 0 for rank-one data (at ridge 0). Invariant to translation,
    isotropic scaling, orthogonal transforms and sample order.

    Returns:
        A 0-dim float64 tensor on ``x``'s device.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> scale = torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)
        >>> x = torch.randn(100, 3, generator=g, dtype=torch.float64) * scale
        >>> from subspaces.geometry import von_neumann_entropy
        >>> round(float(von_neumann_entropy(x)), 3)
        0.814
        >>> round(float(von_neumann_entropy(x, ridge=0.1)), 3)
        0.869
        >>> round(float(von_neumann_entropy(1e3 * x, ridge=0.1)), 3)  # the ridge is relative
        0.869
    """
    return _spectrum(x, chunk_size).von_neumann_entropy(ridge=ridge)


# ---------------------------------------------------------------------------------------
# Streaming


class CovarianceSpectrum(DataclassResultMetric, MomentsMetric):
    """Streaming covariance spectrum: ``update(x)`` per batch, ``compute()`` at the end.

    ``compute()`` returns the :class:`Spectrum` of every sample seen so far, equal to
    :func:`covariance_spectrum` of the concatenated batches whatever the split; take any
    scalar from it (``metric.compute().effective_rank()``, ``.summary()``). States are
    float64 sums (O(d²) memory), summed across ``torch.distributed`` ranks; each rank must
    have seen at least one batch before ``compute()`` (states are sized by the first batch).

    Examples:
        >>> import torch
        >>> from subspaces.geometry import CovarianceSpectrum, effective_rank
        >>> x = torch.randn(100, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> metric = CovarianceSpectrum()
        >>> for xb in x.split(30):
        ...     metric.update(xb)
        >>> spec = metric.compute()
        >>> round(float(spec.effective_rank()), 6) == round(float(effective_rank(x)), 6)
        True
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better: bool | None = None

    def __init__(self, *, chunk_size: int = CHUNK_SIZE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.chunk_size = check_positive_int(chunk_size, name="chunk_size")
        self.add_state("input_eps", default=torch.tensor(0.0, dtype=_F64), dist_reduce_fx="max")

    def update(self, x: Any) -> None:
        """Add a batch of rows ``x`` (m, d)."""
        t = check_matrix(x, name="x", min_samples=1)
        sum_x = self._state("sum_x")
        if sum_x.numel() and t.shape[1] != sum_x.shape[0]:
            raise ShapeError(
                f"this batch has {t.shape[1]} features but earlier batches had "
                f"{sum_x.shape[0]}; every batch must come from the same layer."
            )
        accumulate_moments(self, t, chunk_size=self.chunk_size)
        current = self._state("input_eps")
        eps = torch.tensor(torch.finfo(t.dtype).eps, dtype=_F64, device=current.device)
        self.input_eps = torch.maximum(current, eps)

    def input_dtype(self) -> torch.dtype:
        """The least precise dtype seen so far (float32 or float64)."""
        eps = float(self._state("input_eps"))
        return _F64 if 0.0 < eps <= _EPS64 else torch.float32

    def compute(self) -> Spectrum:
        """The :class:`Spectrum` of every sample seen so far."""
        n = self._state("n")
        seen = 0 if n.numel() == 0 else round(float(n))
        if seen < 2:
            raise TooFewSamplesError(
                f"CovarianceSpectrum has seen {seen} samples but needs at least 2; call "
                "update() with more data before compute()."
            )
        return spectrum_from_moments(center_moments(self), input_dtype=self.input_dtype())
