"""One-to-one unit matching and matched-correlation curves (Li et al., ICLR 2016).

A bipartite matching of the units of x to the units of y that maximizes the total
correlation (Hungarian algorithm), and the *semi-matching* in which each unit of x takes its
most correlated unit of y (not one-to-one): :func:`unit_matching`, :func:`match_units`, and
the sorted *matched correlation curves* the paper plots (:func:`matched_correlation_curves`).
The correlations are those of :mod:`~subspaces.align.unit_correlation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from subspaces._base import Result
from subspaces._checks import (
    check_choice,
    check_flag,
    check_matrix,
    check_positive_int,
    seed_generator,
)
from subspaces.align.unit_correlation import ConstantPolicy, unit_correlation
from subspaces.linalg.moments import CHUNK_SIZE

__all__ = [
    "MatchingCurves",
    "UnitMatching",
    "match_units",
    "matched_correlation_curves",
    "matched_correlation_curves_from_correlation",
    "unit_matching",
    "unit_matching_from_correlation",
]

_F64 = torch.float64

MatchMethod = Literal["hungarian", "semi"]
_METHODS = ("hungarian", "semi")


@dataclass(frozen=True)
class UnitMatching(Result):
    """A matching of the units of x to the units of y.

    ``indices`` (d1,) int64: the unit of y matched to each unit of x, -1 where a unit of x
    stays unmatched (one-to-one matching with d1 > d2). ``correlations`` (d1,) float64: the
    correlation of each matched pair, NaN where unmatched. ``method``: ``"hungarian"`` or
    ``"semi"``.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 4, generator=g, dtype=torch.float64)
        >>> m = unit_matching(x, x[:, [2, 0, 3, 1]])
        >>> m.indices.tolist(), m.matched.all().item()
        ([1, 3, 0, 2], True)
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

    Examples:
        >>> import torch
        >>> corr = torch.tensor([[0.9, 0.8], [0.85, 0.1]])
        >>> unit_matching_from_correlation(corr).indices.tolist()
        [1, 0]
        >>> unit_matching_from_correlation(corr, method="semi").indices.tolist()
        [0, 0]
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
    chunk_size: int = CHUNK_SIZE,
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

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 4, generator=g, dtype=torch.float64)
        >>> m = unit_matching(x, -x[:, [1, 0]], absolute=True)
        >>> m.indices.tolist(), [round(v, 4) for v in m.correlations.tolist()]
        ([1, 0, -1, -1], [-1.0, -1.0, nan, nan])
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
    chunk_size: int = CHUNK_SIZE,
) -> Tensor:
    """For each unit of ``x``, the index of its matched unit in ``y`` (-1 if unmatched).

    The ``indices`` of :func:`unit_matching` (see there for the methods, the options and
    which units stay unmatched): ``y[:, match_units(x, y)]`` lines the units of y up with
    those of x when every unit is matched (``d1 <= d2``, or ``method="semi"``). With
    ``d1 > d2`` one-to-one, the unmatched units of x get -1, which would index y's last
    column: keep ``unit_matching(x, y).matched`` rows only. Li et al. (2016).

    Returns:
        A (d1,) int64 tensor on the inputs' device.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 4, generator=g, dtype=torch.float64)
        >>> match_units(x, x[:, [3, 2, 1, 0]]).tolist()
        [3, 2, 1, 0]
    """
    return unit_matching(
        x, y, method=method, absolute=absolute, constant=constant, chunk_size=chunk_size
    ).indices


@dataclass(frozen=True)
class MatchingCurves(Result):
    """The matched-correlation curves of Li et al. (2016), figure 3 style.

    ``order`` (d1,): the units of x sorted by their semi-matching correlation, highest first.
    ``semi`` (d1,): semi-matching correlations in that order (non-increasing).
    ``one_to_one`` (d1,): the Hungarian matching's correlation of the same units (NaN for
    units left unmatched when d1 > d2). ``baseline`` (d1,) or ``None``: correlations under
    random assignments, each sorted highest first and averaged over ``n_random`` draws.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 4, generator=g, dtype=torch.float64)
        >>> c = matched_correlation_curves(x, x[:, [1, 0, 3, 2]], n_random=5, seed=0)
        >>> [round(v, 4) for v in c.semi.tolist()], c.baseline.shape
        ([1.0, 1.0, 1.0, 1.0], torch.Size([4]))
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
    seed: int | torch.Generator | None = None,
) -> MatchingCurves:
    """Matched-correlation curves from a precomputed (d1, d2) correlation matrix.

    See :func:`matched_correlation_curves`.

    Examples:
        >>> import torch
        >>> corr = torch.tensor([[0.9, 0.2], [0.8, 0.3]])
        >>> c = matched_correlation_curves_from_correlation(corr, n_random=0)
        >>> c.order.tolist(), [round(v, 4) for v in c.semi.tolist()]
        ([0, 1], [0.9, 0.8])
        >>> [round(v, 4) for v in c.one_to_one.tolist()]
        [0.9, 0.3]
    """
    corr = _check_correlation_matrix(correlation)
    n_random = check_positive_int(n_random, name="n_random", minimum=0)
    absolute = check_flag(absolute, name="absolute")
    generator = seed_generator(seed)
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
    seed: int | torch.Generator | None = None,
    chunk_size: int = CHUNK_SIZE,
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
        seed: the random baseline's draws: an ``int``, a ``torch.Generator`` or ``None``
            (torch's global generator).
        chunk_size: rows per float32 product.

    Returns:
        :class:`MatchingCurves` of float64 tensors on the inputs' device.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 4, generator=g, dtype=torch.float64)
        >>> c = matched_correlation_curves(x, x + 0.1 * x[:, [1, 2, 3, 0]], seed=0)
        >>> [round(v, 3) for v in c.one_to_one.tolist()]
        [0.996, 0.996, 0.995, 0.993]
        >>> bool((c.baseline < c.semi).all())
        True
    """
    corr = unit_correlation(x, y, constant=constant, chunk_size=chunk_size)
    return matched_correlation_curves_from_correlation(
        corr, n_random=n_random, absolute=absolute, seed=seed
    )
