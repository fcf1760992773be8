"""Neuron matching between two networks (Convergent Learning, Li et al., ICLR 2016).

Li, Yosinski, Clune, Lipson and Hopcroft ask whether two networks trained from different
initializations learn the same units. They compare units by the Pearson correlation of their
activations over a data set and align the networks at three granularities:

* **one-to-one**: a bipartite matching of the units of x to the units of y that maximizes the
  total correlation (Hungarian algorithm), and the *semi-matching* in which each unit of x
  takes its most correlated unit of y (not one-to-one); :func:`match_units`,
  :func:`unit_matching`, and the sorted *matched correlation curves* the paper plots
  (:func:`matched_correlation_curves`);
* **one-to-many**: each unit of y predicted from all units of x by an L1-penalized linear
  regression (lasso): how many units of x are needed (:func:`sparse_prediction`);
* **many-to-many**: spectral clustering of the graph whose nodes are the units of both
  networks and whose edge weights are |correlation| (:func:`spectral_unit_clusters`).

Everything is computed from the float64 centered moments of :mod:`subspaces.linalg.moments`
(memory O((d1 + d2)²) whatever the number of samples), so :class:`UnitCorrelation` streams
over batches and its :meth:`~UnitCorrelation.moments` feed the ``*_from_moments`` functions.
For convolutional layers, pass every spatial position as a sample (the paper's choice):
``acts.permute(0, 2, 3, 1).reshape(-1, channels)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from subspaces._checks import (
    DegenerateInputError,
    InputTypeError,
    InvalidOptionError,
    check_choice,
    check_flag,
    check_generator,
    check_matrix,
    check_paired,
    check_positive_int,
    check_positive_real,
)
from subspaces.linalg.decomp import eigh
from subspaces.linalg.moments import (
    DEFAULT_CHUNK_SIZE,
    CenteredMoments,
    check_moments,
    paired_moments,
)
from subspaces.similarity._streaming import PairedMomentsMetric

__all__ = [
    "JointCorrelation",
    "MatchingCurves",
    "SparsePrediction",
    "UnitClusters",
    "UnitCorrelation",
    "UnitMatching",
    "joint_correlation",
    "joint_correlation_from_moments",
    "match_units",
    "matched_correlation_curves",
    "matched_correlation_curves_from_correlation",
    "sparse_prediction",
    "sparse_prediction_from_moments",
    "spectral_unit_clusters",
    "spectral_unit_clusters_from_correlation",
    "unit_correlation",
    "unit_correlation_from_moments",
    "unit_matching",
    "unit_matching_from_correlation",
]

_F64 = torch.float64
_EPS64 = torch.finfo(_F64).eps

ConstantPolicy = Literal["raise", "zero"]
MatchMethod = Literal["hungarian", "semi"]
Affinity = Literal["absolute", "positive"]
_CONSTANT_CHOICES = ("raise", "zero")
_METHODS = ("hungarian", "semi")
_AFFINITIES = ("absolute", "positive")


# ---------------------------------------------------------------------------------------
# Unit correlations


@dataclass(frozen=True)
class JointCorrelation:
    """Correlations between and within the units of two representations (float64).

    ``cross`` is (d1, d2): ``cross[i, j] = corr(x_i, y_j)``; ``within_x`` (d1, d1) and
    ``within_y`` (d2, d2) are the within-network correlation matrices (ones on the diagonal).
    ``constant_x`` / ``constant_y`` flag the units with zero variance (only possible with
    ``constant="zero"``; their correlations with every other unit are 0).
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
    """Cross and within-network unit correlations from centered moments (the maths core)."""
    cxx, cyy, cxy, sx, kx, sy, ky = _scaled_moments(m, constant)
    within_x = _correlation(cxx, sx, kx, sx, kx)
    within_y = _correlation(cyy, sy, ky, sy, ky)
    within_x.fill_diagonal_(1.0)
    within_y.fill_diagonal_(1.0)
    return JointCorrelation(_correlation(cxy, sx, kx, sy, ky), within_x, within_y, kx, ky)


def unit_correlation_from_moments(
    m: CenteredMoments, *, constant: ConstantPolicy = "raise"
) -> Tensor:
    """The (d1, d2) unit correlation matrix from centered moments (the maths core)."""
    _, _, cxy, sx, kx, sy, ky = _scaled_moments(m, constant)
    return _correlation(cxy, sx, kx, sy, ky)


def unit_correlation(
    x: Any,
    y: Any | None = None,
    *,
    constant: ConstantPolicy = "raise",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
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
    x: Any, y: Any, *, constant: ConstantPolicy = "raise", chunk_size: int = DEFAULT_CHUNK_SIZE
) -> JointCorrelation:
    """Between- and within-network unit correlations of ``x`` (n, d1) and ``y`` (n, d2).

    See :func:`unit_correlation` for the definition and the options; Li et al. (2016) study
    the within-network matrices beside the between-network one, and cluster all of them
    together (:func:`spectral_unit_clusters`).
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
    """

    def __init__(
        self,
        *,
        constant: ConstantPolicy = "raise",
        chunk_size: int = DEFAULT_CHUNK_SIZE,
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


# ---------------------------------------------------------------------------------------
# One-to-one: bipartite matching and semi-matching


@dataclass(frozen=True)
class UnitMatching:
    """A matching of the units of x to the units of y.

    ``indices`` (d1,) int64: the unit of y matched to each unit of x, -1 where a unit of x
    stays unmatched (one-to-one matching with d1 > d2). ``correlations`` (d1,) float64: the
    correlation of each matched pair, NaN where unmatched. ``method``: ``"hungarian"`` or
    ``"semi"``.
    """

    indices: Tensor
    correlations: Tensor
    method: str

    @property
    def matched(self) -> Tensor:
        """Boolean mask (d1,) of the units of x that have a match."""
        return self.indices >= 0


def _check_correlation_matrix(corr: Any, *, name: str = "correlation") -> Tensor:
    t = check_matrix(corr, name=name, min_samples=1)
    return t.to(_F64)


def unit_matching_from_correlation(
    correlation: Any, *, method: MatchMethod = "hungarian", absolute: bool = False
) -> UnitMatching:
    """Match units from a precomputed (d1, d2) correlation matrix (the maths core).

    See :func:`unit_matching`. ``correlation`` may be any (d1, d2) score matrix where
    higher means more alike.
    """
    check_choice(method, name="method", choices=_METHODS)
    absolute = check_flag(absolute, name="absolute")
    corr = _check_correlation_matrix(correlation)
    score = corr.abs() if absolute else corr
    d1 = corr.shape[0]
    rows = torch.arange(d1, device=corr.device)
    if method == "semi":
        indices = score.argmax(dim=1)
    else:
        # scipy needs host memory: d1 × d2 only, the data never leaves its device.
        r, c = linear_sum_assignment(score.detach().cpu().numpy(), maximize=True)
        indices = torch.full((d1,), -1, dtype=torch.int64, device=corr.device)
        indices[torch.as_tensor(r, device=corr.device)] = torch.as_tensor(
            c, dtype=torch.int64, device=corr.device
        )
    matched = indices >= 0
    values = corr[rows, indices.clamp_min(0)]
    values = torch.where(matched, values, torch.full_like(values, float("nan")))
    return UnitMatching(indices, values, method)


def unit_matching(
    x: Any,
    y: Any,
    *,
    method: MatchMethod = "hungarian",
    absolute: bool = False,
    constant: ConstantPolicy = "raise",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> UnitMatching:
    """Match each unit of ``x`` to a unit of ``y`` by the correlation of their activations.

    With r = :func:`unit_correlation` (x, y) (or |r| when ``absolute=True``):

    * ``"hungarian"``: the one-to-one assignment π maximizing Σ_i r[i, π(i)], found by the
      Hungarian algorithm (``scipy.optimize.linear_sum_assignment``). With d1 <= d2 every
      unit of x gets a distinct unit of y; with d1 > d2 only d2 units of x are matched (those
      of the optimal assignment) and the others get index -1 (correlation NaN).
    * ``"semi"``: the semi-matching π(i) = argmax_j r[i, j]: each unit of x takes its most
      correlated unit of y, several units of x may share one (first index on ties).

    Li et al. (2016), section 3 ("bipartite matching" and "semi-matching"). Invariant to a
    positive affine map of each unit; permuting the units of y permutes the indices. A copy
    of x with permuted units is matched back to the permutation.

    Args:
        x: (n, d1) activations. y: (n, d2) activations of the same n inputs.
        method: ``"hungarian"`` (one-to-one) or ``"semi"`` (each unit to its best match).
        absolute: match on |correlation| (a unit and its negation count as a match).
        constant: zero-variance units: ``"raise"`` or ``"zero"`` (see :func:`unit_correlation`).
        chunk_size: rows per float32 product.

    Returns:
        :class:`UnitMatching` (indices and matched correlations, on the inputs' device).
    """
    check_choice(method, name="method", choices=_METHODS)
    corr = unit_correlation(x, y, constant=constant, chunk_size=chunk_size)
    return unit_matching_from_correlation(corr, method=method, absolute=absolute)


def match_units(
    x: Any,
    y: Any,
    *,
    method: MatchMethod = "hungarian",
    absolute: bool = False,
    constant: ConstantPolicy = "raise",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Tensor:
    """For each unit of ``x``, the index of its matched unit in ``y`` (-1 if unmatched).

    The ``indices`` of :func:`unit_matching` (see there for the methods, the options and
    which units stay unmatched): ``y[:, match_units(x, y)]`` lines the units of y up with
    those of x when every unit is matched (``d1 <= d2``, or ``method="semi"``). With
    ``d1 > d2`` one-to-one, the unmatched units of x get -1, which would index y's last
    column: keep ``unit_matching(x, y).matched`` rows only. Li et al. (2016).

    Returns:
        A (d1,) int64 tensor on the inputs' device.
    """
    return unit_matching(
        x, y, method=method, absolute=absolute, constant=constant, chunk_size=chunk_size
    ).indices


@dataclass(frozen=True)
class MatchingCurves:
    """The matched-correlation curves of Li et al. (2016), figure 3 style.

    ``order`` (d1,): the units of x sorted by their semi-matching correlation, highest first.
    ``semi`` (d1,): semi-matching correlations in that order (non-increasing).
    ``one_to_one`` (d1,): the Hungarian matching's correlation of the same units (NaN for
    units left unmatched when d1 > d2). ``baseline`` (d1,) or ``None``: correlations under
    random assignments, each sorted highest first and averaged over ``n_random`` draws.
    """

    order: Tensor
    semi: Tensor
    one_to_one: Tensor
    baseline: Tensor | None


def _random_assignment(d1: int, d2: int, generator: torch.Generator | None, device: Any) -> Tensor:
    """A random assignment of d1 units to d2: concatenated random permutations of range(d2)."""
    gen_device = generator.device if generator is not None else device
    reps = -(-d1 // d2)
    perms = [torch.randperm(d2, generator=generator, device=gen_device) for _ in range(reps)]
    return torch.cat(perms)[:d1].to(device)


def matched_correlation_curves_from_correlation(
    correlation: Any,
    *,
    n_random: int = 10,
    absolute: bool = False,
    generator: torch.Generator | None = None,
) -> MatchingCurves:
    """Matched-correlation curves from a precomputed (d1, d2) correlation matrix.

    See :func:`matched_correlation_curves`.
    """
    corr = _check_correlation_matrix(correlation)
    n_random = check_positive_int(n_random, name="n_random", minimum=0)
    absolute = check_flag(absolute, name="absolute")
    generator = check_generator(generator)
    semi = unit_matching_from_correlation(corr, method="semi", absolute=absolute)
    hung = unit_matching_from_correlation(corr, method="hungarian", absolute=absolute)
    semi_values, one_values = semi.correlations, hung.correlations
    if absolute:
        semi_values, one_values = semi_values.abs(), one_values.abs()
    order = torch.argsort(semi_values, descending=True, stable=True)
    baseline = None
    if n_random:
        d1, d2 = corr.shape
        rows = torch.arange(d1, device=corr.device)
        draws = []
        for _ in range(n_random):
            cols = _random_assignment(d1, d2, generator, corr.device)
            values = corr[rows, cols]
            values = values.abs() if absolute else values
            draws.append(torch.sort(values, descending=True).values)
        baseline = torch.stack(draws).mean(0)
    return MatchingCurves(order, semi_values[order], one_values[order], baseline)


def matched_correlation_curves(
    x: Any,
    y: Any,
    *,
    n_random: int = 10,
    absolute: bool = False,
    constant: ConstantPolicy = "raise",
    generator: torch.Generator | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> MatchingCurves:
    """The curves of matched correlation Li et al. (2016) plot (their figure 3).

    For each unit of x: its correlation with its semi-matched unit of y and with its
    one-to-one (Hungarian) partner, units sorted by the semi-matching correlation, highest
    first. The semi-matching curve lies on or above the one-to-one curve unit by unit; where
    the two part, several units of x compete for one unit of y. ``baseline`` gives the same
    for random one-to-one assignments (each of the d1 units to a distinct unit of y while
    d1 <= d2, y reused ceil(d1 / d2) times otherwise), each sorted, averaged over
    ``n_random`` draws: the chance level.

    Args:
        x: (n, d1) activations. y: (n, d2) activations of the same n inputs.
        n_random: random assignments for the baseline (0: no baseline).
        absolute: match on and report |correlation| (all three curves).
        constant: zero-variance units: ``"raise"`` or ``"zero"``.
        generator: ``torch.Generator`` for the random baseline.
        chunk_size: rows per float32 product.

    Returns:
        :class:`MatchingCurves` of float64 tensors on the inputs' device.
    """
    corr = unit_correlation(x, y, constant=constant, chunk_size=chunk_size)
    return matched_correlation_curves_from_correlation(
        corr, n_random=n_random, absolute=absolute, generator=generator
    )


# ---------------------------------------------------------------------------------------
# One-to-many: sparse prediction (lasso) on covariance moments


@dataclass(frozen=True)
class SparsePrediction:
    """Lasso predictions of each unit of y from the units of x, one per penalty.

    ``alphas`` (p,): the penalties, in the order given. ``weights`` (p, d1, d2) and
    ``intercepts`` (p, d2): ``y ≈ x @ weights[k] + intercepts[k]`` in the inputs' raw
    units, whatever ``standardize`` was. ``n_predictors`` (p, d2) int64: the units of x with
    a nonzero weight for each unit of y. ``r2`` (p, d2): the in-sample coefficient of
    determination 1 - RSS / TSS; ``nmse`` = 1 - r2 is the paper's normalized squared error.
    ``converged`` (p,) bool: whether coordinate descent met ``tol`` within ``max_iter``.
    """

    alphas: Tensor
    weights: Tensor
    intercepts: Tensor
    n_predictors: Tensor
    r2: Tensor
    converged: Tensor
    standardize: bool

    @property
    def nmse(self) -> Tensor:
        """Normalized mean squared error RSS / TSS = 1 - r2, per penalty and unit of y."""
        return 1.0 - self.r2


def _check_alphas(alphas: Any) -> list[float]:
    if isinstance(alphas, (int, float, np.floating, np.integer)) and not isinstance(alphas, bool):
        values: Sequence[Any] = [alphas]
    elif isinstance(alphas, Tensor):
        values = alphas.detach().flatten().tolist()
    elif isinstance(alphas, (Sequence, np.ndarray)) and not isinstance(alphas, str):
        values = list(np.asarray(alphas, dtype=object).ravel())
    else:
        raise InputTypeError(
            f"alphas must be a number or a sequence of numbers, got {type(alphas).__name__}."
        )
    if not values:
        raise InvalidOptionError("alphas is empty; pass at least one penalty, e.g. [0.01, 0.1].")
    out = []
    for a in values:
        if isinstance(a, bool) or not isinstance(a, (int, float, np.floating, np.integer)):
            raise InputTypeError(f"alphas must hold real numbers, got {a!r}.")
        v = float(a)
        if not np.isfinite(v) or v < 0:
            raise InvalidOptionError(f"alphas must be finite and >= 0, got {a!r}.")
        out.append(v)
    return out


def _lasso_cd(
    gram: Tensor, cross: Tensor, alpha: float, start: Tensor, *, max_iter: int, tol: float
) -> tuple[Tensor, bool]:
    """Cyclic coordinate descent on ½ wᵀ G w - cᵀ w + α |w|₁, for every column of ``cross``.

    ``gram`` (d1, d1) positive semi-definite, ``cross`` (d1, d2): the d2 problems are solved
    together (one coordinate sweep updates row k of W for all of them). The gradient
    ``R = G W - C`` is kept up to date by rank-one corrections: O(d1 · d2) per coordinate,
    O(d1² · d2) per sweep, memory O(d1 · (d1 + d2)). Stops when the largest change of a
    sweep is at most ``tol`` times the largest weight (scikit-learn's criterion).
    """
    w = start.clone()
    grad = gram @ w - cross
    diag = torch.diagonal(gram).tolist()
    active = [(k, d, 1.0 / d) for k, d in enumerate(diag) if d > 0]
    softshrink = torch.nn.functional.softshrink
    for _ in range(max_iter):
        before = w.clone()
        for k, d, inv_d in active:
            wk = w[k]
            new = softshrink(wk * d - grad[k], alpha) * inv_d
            delta = new - wk
            w[k] = new
            grad.addr_(gram[k], delta)  # gram is symmetric: row k is column k
        w_max = float(w.abs().max()) if w.numel() else 0.0
        change = float((w - before).abs().max()) if w.numel() else 0.0
        if change == 0.0 or change <= tol * w_max:
            return w, True
    return w, False


def sparse_prediction_from_moments(
    m: CenteredMoments,
    *,
    alphas: Any,
    standardize: bool = True,
    max_iter: int = 1000,
    tol: float = 1e-6,
) -> SparsePrediction:
    """Lasso from every unit of x to each unit of y, from centered moments (the maths core).

    See :func:`sparse_prediction`. ``m`` needs ``cxx``, ``cyy`` and ``cxy`` (e.g. from
    :func:`~subspaces.linalg.moments.paired_moments` or :meth:`UnitCorrelation.moments`).
    """
    alpha_list = _check_alphas(alphas)
    max_iter = check_positive_int(max_iter, name="max_iter")
    tol = check_positive_real(tol, name="tol")
    standardize = check_flag(standardize, name="standardize")
    cxx, cyy, cxy = _require(m)
    assert m.mean_y is not None
    n = m.n
    var_y = torch.diagonal(cyy) / n
    const_y = var_y <= 64.0 * _EPS64 * m.mean_y * m.mean_y
    if bool(const_y.any()):
        idx = torch.nonzero(const_y).flatten()[:10].tolist()
        raise DegenerateInputError(
            f"y has {int(const_y.sum())} constant unit(s) (zero variance) at indices {idx}; "
            "there is nothing to predict and R² is undefined. Drop them first "
            "(e.g. y[:, y.std(0) > 0])."
        )
    var_x = torch.diagonal(cxx) / n
    const_x = var_x <= 64.0 * _EPS64 * m.mean_x * m.mean_x
    sd_x = torch.where(const_x, torch.ones_like(var_x), var_x.sqrt())
    sd_y = var_y.sqrt()
    gram, cross = cxx / n, cxy / n
    gram = gram.masked_fill(const_x[:, None] | const_x[None, :], 0.0)
    cross = cross.masked_fill(const_x[:, None], 0.0)
    if standardize:
        gram = gram / torch.outer(sd_x, sd_x)
        cross = cross / torch.outer(sd_x, sd_y)
        total = torch.ones_like(var_y)
    else:
        total = var_y
    d1, d2 = cxy.shape
    order = sorted(range(len(alpha_list)), key=lambda i: -alpha_list[i])
    w = torch.zeros(d1, d2, dtype=_F64, device=cxy.device)
    weights: list[Tensor] = [w] * len(alpha_list)
    converged = [True] * len(alpha_list)
    for i in order:  # largest penalty first, warm-starting the next
        w, ok = _lasso_cd(gram, cross, alpha_list[i], w, max_iter=max_iter, tol=tol)
        weights[i], converged[i] = w, ok
        if not ok:
            warnings.warn(
                f"sparse_prediction: coordinate descent did not converge for alpha="
                f"{alpha_list[i]:g} in max_iter={max_iter} sweeps; raise max_iter or alpha "
                "(small penalties on strongly correlated units converge slowly).",
                UserWarning,
                stacklevel=3,
            )
    w_all = torch.stack(weights)  # (p, d1, d2) in the fitted space
    # RSS / n = var - 2 wᵀc + wᵀ G w (in the fitted space), per unit of y
    rss = (
        total
        - 2.0 * (w_all * cross).sum(1)
        + (w_all * torch.einsum("ab,pbj->paj", gram, w_all)).sum(1)
    )
    r2 = 1.0 - rss.clamp_min(0.0) / total
    raw = w_all * (sd_y[None, None, :] / sd_x[None, :, None]) if standardize else w_all
    intercepts = m.mean_y[None, :] - torch.einsum("a,paj->pj", m.mean_x, raw)
    return SparsePrediction(
        alphas=torch.tensor(alpha_list, dtype=_F64, device=cxy.device),
        weights=raw,
        intercepts=intercepts,
        n_predictors=(w_all != 0).sum(1),
        r2=r2,
        converged=torch.tensor(converged, device=cxy.device),
        standardize=standardize,
    )


def sparse_prediction(
    x: Any,
    y: Any,
    *,
    alphas: Any,
    standardize: bool = True,
    max_iter: int = 1000,
    tol: float = 1e-6,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> SparsePrediction:
    """Predict each unit of ``y`` from all units of ``x`` with an L1 penalty (lasso).

    For each unit j of y and each penalty α, the weights w (d1,) and intercept b minimize

        1/(2n) Σ_s (y_sj - b - x_s · w)² + α ||w||₁,

    scikit-learn's ``Lasso(alpha=α)`` objective, on z-scored units (population standard
    deviation, like ``StandardScaler``) when ``standardize=True`` (default: the penalty is
    then comparable across units and invariant to rescaling them), on the raw units
    otherwise. Li et al. (2016), section 4 (sparse, few-to-one mappings learned with an L1
    penalty): how few units of x does each unit of y need? Their table reports the
    normalized squared error (:attr:`SparsePrediction.nmse`) as the penalty grows.

    Solved by coordinate descent on the covariance form ½ wᵀ S w - sᵀ w + α ||w||₁ (S the
    covariance of x, s its covariance with y_j), from float64 moments: memory
    O(d1 · (d1 + d2)), never n × d, for all units of y at once; penalties are solved from
    the largest down, each warm-starting the next. Units of x with zero variance never
    predict (weight 0); a unit of y with zero variance raises
    :class:`~subspaces._checks.DegenerateInputError`.

    Args:
        x: (n, d1) predictors. y: (n, d2) targets, the same n inputs.
        alphas: one penalty or a sequence of penalties (>= 0).
        standardize: fit on z-scored units (weights are returned in raw units either way).
        max_iter: coordinate sweeps per penalty (a UserWarning when not converged).
        tol: stop when a sweep changes no weight by more than ``tol`` × the largest weight.
        chunk_size: rows per float32 product.

    Returns:
        :class:`SparsePrediction` (weights, intercepts, predictors per unit, R², per α).
    """
    tx, ty = check_paired(x, y)
    return sparse_prediction_from_moments(
        paired_moments(tx, ty, chunk_size=chunk_size),
        alphas=alphas,
        standardize=standardize,
        max_iter=max_iter,
        tol=tol,
    )


# ---------------------------------------------------------------------------------------
# Many-to-many: spectral clustering of the joint correlation graph


@dataclass(frozen=True)
class UnitClusters:
    """Clusters of the units of both networks.

    ``labels_x`` (d1,) and ``labels_y`` (d2,) int64 in [0, n_clusters), numbered in order of
    first appearance over the units of x then y. ``affinity`` ((d1 + d2), (d1 + d2)) float64:
    the graph that was clustered (x's units first).
    """

    labels_x: Tensor
    labels_y: Tensor
    n_clusters: int
    affinity: Tensor


def _uniform(generator: torch.Generator | None, device: Any, size: int = 1) -> Tensor:
    gen_device = generator.device if generator is not None else device
    return torch.rand(size, generator=generator, device=gen_device, dtype=_F64).to(device)


def _kmeans(
    points: Tensor, k: int, *, n_init: int, generator: torch.Generator | None, max_iter: int = 300
) -> Tensor:
    """Lloyd's k-means with k-means++ seeding, best of ``n_init`` runs by inertia."""
    n = points.shape[0]
    best_labels, best_inertia = None, float("inf")
    for _ in range(n_init):
        first = int((_uniform(generator, points.device) * n).long().clamp_max(n - 1))
        centers = [points[first]]
        dist = ((points - points[first]) ** 2).sum(1)
        for _ in range(1, k):
            total = dist.sum()
            if float(total) <= 0:
                pick = int((_uniform(generator, points.device) * n).long().clamp_max(n - 1))
            else:
                cdf = torch.cumsum(dist / total, 0)
                u = _uniform(generator, points.device)
                pick = int(torch.searchsorted(cdf, u).clamp_max(n - 1))
            centers.append(points[pick])
            dist = torch.minimum(dist, ((points - points[pick]) ** 2).sum(1))
        c = torch.stack(centers)
        labels = torch.cdist(points, c).argmin(1)
        for _ in range(max_iter):
            for j in range(k):
                members = labels == j
                if bool(members.any()):
                    c[j] = points[members].mean(0)
            new = torch.cdist(points, c).argmin(1)
            if bool((new == labels).all()):
                break
            labels = new
        inertia = float(((points - c[labels]) ** 2).sum())
        if inertia < best_inertia - 1e-12:
            best_labels, best_inertia = labels, inertia
    assert best_labels is not None
    return best_labels


def _first_appearance(labels: Tensor, k: int) -> Tensor:
    """Renumber cluster labels so that they appear in increasing order."""
    mapping = torch.full((k,), -1, dtype=torch.int64, device=labels.device)
    nxt = 0
    for lab in labels.tolist():
        if int(mapping[lab]) < 0:
            mapping[lab] = nxt
            nxt += 1
    return mapping[labels]


def spectral_unit_clusters_from_correlation(
    joint: JointCorrelation,
    *,
    n_clusters: int,
    affinity: Affinity = "absolute",
    n_init: int = 10,
    generator: torch.Generator | None = None,
) -> UnitClusters:
    """Spectral clustering of units from a :class:`JointCorrelation` (the maths core).

    See :func:`spectral_unit_clusters`.
    """
    check_choice(affinity, name="affinity", choices=_AFFINITIES)
    n_init = check_positive_int(n_init, name="n_init")
    generator = check_generator(generator)
    if not isinstance(joint, JointCorrelation):
        raise InputTypeError(
            f"joint must be a JointCorrelation (from joint_correlation), got "
            f"{type(joint).__name__}."
        )
    d1, d2 = joint.cross.shape
    n_clusters = check_positive_int(n_clusters, name="n_clusters")
    if n_clusters > d1 + d2:
        raise InvalidOptionError(
            f"n_clusters={n_clusters} exceeds the {d1 + d2} units of x and y together "
            f"({d1} + {d2}); pass at most {d1 + d2}."
        )
    joint_matrix = torch.cat(
        [
            torch.cat([joint.within_x, joint.cross], 1),
            torch.cat([joint.cross.T, joint.within_y], 1),
        ],
        0,
    ).to(_F64)
    a = joint_matrix.abs() if affinity == "absolute" else joint_matrix.clamp_min(0.0)
    a.fill_diagonal_(1.0)
    inv_sqrt_deg = a.sum(1).rsqrt()
    normalized = inv_sqrt_deg[:, None] * a * inv_sqrt_deg[None, :]
    _, vectors = eigh(0.5 * (normalized + normalized.T))
    embedding = vectors[:, -n_clusters:]
    embedding = embedding / embedding.norm(dim=1, keepdim=True).clamp_min(1e-300)
    labels = _kmeans(embedding, n_clusters, n_init=n_init, generator=generator)
    labels = _first_appearance(labels, n_clusters)
    return UnitClusters(labels[:d1], labels[d1:], n_clusters, a)


def spectral_unit_clusters(
    x: Any,
    y: Any,
    *,
    n_clusters: int,
    affinity: Affinity = "absolute",
    n_init: int = 10,
    constant: ConstantPolicy = "raise",
    generator: torch.Generator | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> UnitClusters:
    """Many-to-many matching: spectral clustering of the units of both networks together.

    The graph has the d1 + d2 units as nodes and affinity A = |R| (``"absolute"``) or
    max(R, 0) (``"positive"``), where R = [[R_xx, R_xy], [R_xyᵀ, R_yy]] stacks the within-
    and between-network correlation matrices (Li et al., 2016, section 5: clusters of units
    that share a subspace across the two networks) and A_ii = 1. Normalized spectral
    clustering (Ng, Jordan and Weiss, 2002): the top ``n_clusters`` eigenvectors of
    D^(-1/2) A D^(-1/2) (D the degree matrix), rows scaled to unit length, clustered by
    k-means (k-means++ seeding, best of ``n_init`` runs, ``generator`` for the draws).
    A cluster holding units of both networks is a many-to-many match.

    Invariant to a positive affine map of each unit (and, with ``"absolute"``, to sign
    flips); labels are numbered in order of first appearance (units of x first).

    Args:
        x: (n, d1) activations. y: (n, d2) activations of the same n inputs.
        n_clusters: the number of clusters, at most d1 + d2.
        affinity: ``"absolute"`` (|correlation|) or ``"positive"`` (negatives cut to 0).
        n_init: k-means restarts.
        constant: zero-variance units: ``"raise"`` or ``"zero"`` (such a unit is then
            linked to nothing but itself).
        generator: ``torch.Generator`` for k-means seeding.
        chunk_size: rows per float32 product.

    Returns:
        :class:`UnitClusters` (labels of the units of x and of y, and the affinity).
    """
    joint = joint_correlation(x, y, constant=constant, chunk_size=chunk_size)
    return spectral_unit_clusters_from_correlation(
        joint, n_clusters=n_clusters, affinity=affinity, n_init=n_init, generator=generator
    )
