"""Streaming centered moments of one or two representations, accumulated in float64.

Most similarity measures between ``x`` (n × d1) and ``y`` (n × d2) are functions of the
centered scatter matrices ``Cxx = Xc^T Xc``, ``Cyy = Yc^T Yc`` and ``Cxy = Xc^T Yc`` (CKA, CCA,
Procrustes, shape metrics, regression). This module accumulates the sums they are built
from, chunk by chunk, so that

* the result is exact to float64 rounding although the products run in the input dtype:
  each chunk is centered on its own mean, its float32 product accumulates over at most
  ``chunk_size`` rows, and the chunk's mean is added back as a rank-one float64 term;
* every sum is taken about a *shift* (the first chunk's mean), not about the origin, so
  that centering at the end cancels nothing large: data far from the origin (a residual
  stream with a large mean) lose no precision, even in the fourth-order row-norm sums of
  debiased estimators;
* merging two states (shards, batches, or ranks of ``torch.distributed``) is adding them
  after bringing one to the other's shift (:func:`rebase_moments`); :class:`MomentsMetric`
  does this for ``torch.distributed`` before the states are summed across ranks;
* memory is O(d²) whatever n is.

The state is any object with the attributes named in :data:`MOMENT_STATES` (a
:class:`MomentSums`, or a :class:`MomentsMetric`), so that a function and a streaming class
share one code path.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import Tensor

from subspaces._checks import (
    DegenerateInputError,
    DeviceMismatchError,
    InputTypeError,
    InvalidOptionError,
    ShapeError,
    TooFewSamplesError,
    as_float_tensor,
    check_dense,
    check_finite,
    check_flag,
    check_magnitude,
    check_matrix,
    check_paired,
    check_positive_int,
    check_same_device,
)
from subspaces.linalg.constants import CHUNK_SIZE
from subspaces.linalg.metric import StreamingMetric
from subspaces.linalg.scaling import ldexp, magnitude_exponent, max_abs

__all__ = [
    "CHUNK_SIZE",
    "MOMENT_STATES",
    "CenteredMoments",
    "MomentSums",
    "MomentsMetric",
    "RowNormSums",
    "accumulate_moments",
    "center_moments",
    "check_moments",
    "check_variance",
    "merge_moments",
    "paired_moments",
    "paired_moments64",
    "rebase_moments",
    "require_moments",
]

_F64 = torch.float64

_ROW_NORM_STATES = (
    "sum_a",
    "sum_b",
    "sum_aa",
    "sum_bb",
    "sum_ab",
    "sum_ax",
    "sum_ay",
    "sum_bx",
    "sum_by",
)
_SHIFT_STATES = ("shift_x", "shift_y")
MOMENT_STATES = ("n", *_SHIFT_STATES, "sum_x", "sum_y", "sxx", "syy", "sxy", *_ROW_NORM_STATES)
"""Attribute names of a moment state: float64 tensors, empty until first use.

``n`` samples; ``shift_x``, ``shift_y`` the points the sums are taken about (below, x and y
stand for ``x - shift_x`` and ``y - shift_y``); ``sum_x``, ``sum_y`` column sums; ``sxx``,
``syy``, ``sxy`` second moments (X^T X, Y^T Y, X^T Y); and, only when row-norm sums are
requested (debiased estimators), with ``a_i = ||x_i||²`` and ``b_i = ||y_i||²``: ``sum_a`` =
Σ a_i, ``sum_b``, ``sum_aa`` = Σ a_i², ``sum_bb``, ``sum_ab`` = Σ a_i b_i, ``sum_ax`` =
Σ a_i x_i, ``sum_ay``, ``sum_bx``, ``sum_by``. All but the shifts are sums over samples.
"""


def _empty(device: torch.device | str | None = None) -> Tensor:
    return torch.zeros(0, dtype=torch.float64, device=device)


@dataclass
class MomentSums:
    """A moment state held in a plain object (the functional path's counterpart of a Metric).

    Examples:
        >>> import torch
        >>> a, b = MomentSums(), MomentSums()
        >>> accumulate_moments(a, torch.tensor([[1.0], [2.0]]))
        >>> accumulate_moments(b, torch.tensor([[3.0], [6.0]]))
        >>> m = center_moments(a + b)
        >>> m.n, m.mean_x.tolist(), m.cxx.tolist()
        (4, [3.0], [[14.0]])
    """

    n: Tensor = field(default_factory=_empty)
    shift_x: Tensor = field(default_factory=_empty)
    shift_y: Tensor = field(default_factory=_empty)
    sum_x: Tensor = field(default_factory=_empty)
    sum_y: Tensor = field(default_factory=_empty)
    sxx: Tensor = field(default_factory=_empty)
    syy: Tensor = field(default_factory=_empty)
    sxy: Tensor = field(default_factory=_empty)
    sum_a: Tensor = field(default_factory=_empty)
    sum_b: Tensor = field(default_factory=_empty)
    sum_aa: Tensor = field(default_factory=_empty)
    sum_bb: Tensor = field(default_factory=_empty)
    sum_ab: Tensor = field(default_factory=_empty)
    sum_ax: Tensor = field(default_factory=_empty)
    sum_ay: Tensor = field(default_factory=_empty)
    sum_bx: Tensor = field(default_factory=_empty)
    sum_by: Tensor = field(default_factory=_empty)

    def __add__(self, other: MomentSums) -> MomentSums:
        """Merge two states over disjoint samples (a state that never saw data is neutral)."""
        merged = copy.deepcopy(self)
        merge_moments(merged, other)
        return merged


@dataclass(frozen=True)
class RowNormSums:
    """Sums of centered squared row norms, p_i = ||x_i - mean_x||², q_i = ||y_i - mean_y||².

    ``sq_x`` = Σ p_i, ``sq_y`` = Σ q_i, ``sq_xx`` = Σ p_i², ``sq_yy`` = Σ q_i²,
    ``sq_xy`` = Σ p_i q_i.

    Examples:
        >>> import torch
        >>> x = torch.tensor([[0.0], [2.0]])
        >>> norms = paired_moments(x, 2 * x, row_norms=True).row_norms
        >>> float(norms.sq_x), float(norms.sq_y), float(norms.sq_xy)
        (2.0, 8.0, 8.0)
    """

    sq_x: Tensor
    sq_y: Tensor
    sq_xx: Tensor
    sq_yy: Tensor
    sq_xy: Tensor


@dataclass(frozen=True)
class CenteredMoments:
    """Centered second moments of paired data, in float64.

    ``cxx``, ``cyy``, ``cxy`` are scatter matrices (sums over samples of centered outer
    products, not divided by n); covariances are ``cxx / (n - 1)``. Entries not requested
    when accumulating are ``None``. ``row_norms`` holds, for debiased estimators, the
    :class:`RowNormSums` of the centered rows.

    Examples:
        >>> import torch
        >>> m = paired_moments(torch.tensor([[1.0], [3.0]]), torch.tensor([[2.0], [0.0]]))
        >>> m.n, m.mean_x.tolist(), m.cxx.tolist(), m.cxy.tolist()
        (2, [2.0], [[2.0]], [[-2.0]])
    """

    n: int
    mean_x: Tensor
    mean_y: Tensor | None
    cxx: Tensor | None
    cyy: Tensor | None
    cxy: Tensor | None
    row_norms: RowNormSums | None = None


def _add(state: Any, name: str, value: Tensor) -> None:
    current = getattr(state, name)
    setattr(state, name, value if current.numel() == 0 else current + value)


def _get(state: Any, name: str) -> Tensor:
    return cast(Tensor, getattr(state, name))


def _check_state(state: Any, *, name: str = "state") -> Any:
    """Refuse (:class:`InputTypeError`) an object that is not a moment state."""
    missing = [attr for attr in MOMENT_STATES if not isinstance(getattr(state, attr, None), Tensor)]
    if missing:
        raise InputTypeError(
            f"{name} must be a moment state (a MomentSums or a MomentsMetric, with the tensor "
            f"attributes of MOMENT_STATES), got {type(state).__name__} without {missing[0]!r}."
        )
    return state


def _check_width(state: Any, attr: str, t: Tensor, name: str) -> None:
    """``t`` must have the width and device of the sums ``state`` already holds."""
    held = _get(state, attr)
    if held.numel() and t.shape[-1] != held.shape[0]:
        raise ShapeError(
            f"{name} has {t.shape[-1]} features but the state holds sums of {held.shape[0]}; "
            "every batch must come from the same representation."
        )
    if held.numel() and t.device != held.device:
        raise DeviceMismatchError(
            f"{name} is on {t.device} but the state is on {held.device}; move it with .to()."
        )


_MOMENT_PARTS = ("mean_x", "mean_y", "cxx", "cyy", "cxy", "row_norms")
"""The optional fields of :class:`CenteredMoments` that ``check_moments(needs=...)`` names."""


def check_moments(
    m: Any, *, what: str, needs: tuple[str, ...] = ("cxx", "cyy", "cxy", "mean_y")
) -> CenteredMoments:
    """Refuse an ``m`` that is not a :class:`CenteredMoments` or lacks a field ``what`` uses.

    Args:
        m: the moments to check.
        what: the measure, for the message.
        needs: the fields of ``m`` the measure uses (``cxx``, ``cyy``, ``cxy``, ``mean_y``).

    Returns:
        ``m`` unchanged.

    Raises:
        InputTypeError: ``m`` is not a :class:`CenteredMoments`.
        InvalidOptionError: a field of ``needs`` is ``None`` (accumulated without it).

    Examples:
        >>> import torch
        >>> m = paired_moments(torch.randn(10, 3, generator=torch.Generator().manual_seed(0)))
        >>> check_moments(m, what="the spectrum", needs=("cxx",)).n
        10
    """
    if not isinstance(m, CenteredMoments):
        raise InputTypeError(
            f"m must be CenteredMoments (from subspaces.linalg.paired_moments or a streaming "
            f"class's moments()), got {type(m).__name__}."
        )
    if not isinstance(needs, (tuple, list)) or not all(p in _MOMENT_PARTS for p in needs):
        raise InvalidOptionError(
            f"needs must be a tuple of moment fields among {', '.join(_MOMENT_PARTS)}, got "
            f"{needs!r}."
        )
    lacking = [part for part in needs if getattr(m, part) is None]
    if lacking:
        parts = "the self and cross moments of x and y" if len(needs) > 1 else "the scatter of x"
        raise InvalidOptionError(
            f"m has no {lacking[0]}, which {what} uses: the measures from moments need {parts} "
            "(accumulate them with self_terms=True, cross=True, as paired_moments(x, y) does)."
        )
    return m


def require_moments(m: Any, measure: str) -> tuple[Tensor, Tensor, Tensor]:
    """The scatters ``(cxx, cyy, cxy)`` of paired moments, refusing moments without them.

    Args:
        m: :class:`CenteredMoments` of paired ``(x, y)``.
        measure: the measure, for the message.

    Raises:
        InputTypeError, InvalidOptionError: as :func:`check_moments`.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> m = paired_moments(torch.randn(10, 3, generator=g), torch.randn(10, 2, generator=g))
        >>> [tuple(c.shape) for c in require_moments(m, "CCA")]
        [(3, 3), (2, 2), (3, 2)]
    """
    check_moments(m, what=measure, needs=("cxx", "cyy", "cxy"))
    assert m.cxx is not None and m.cyy is not None and m.cxy is not None
    return m.cxx, m.cyy, m.cxy


def check_variance(c: Tensor, mean: Tensor | None, n: int, *, name: str, measure: str) -> Tensor:
    """Refuse a scatter matrix ``c`` that is zero to float64 rounding; return ``tr(c)``.

    A centered scatter formed as ``Σ x xᵀ - n μ μᵀ`` keeps, for a constant representation,
    rounding of order ``eps64 · n · |μ|²``: ``tr(c) ≤ 8 · d · eps64 · n · |μ|²`` counts as
    zero variance. Pass ``mean=None`` for a raw (uncentered) second moment: then only an
    exact zero (or NaN) trace is refused.

    Args:
        c: ``(d, d)`` scatter (or raw second moment) in float64.
        mean: the mean that was subtracted, or ``None``.
        n: the number of samples summed.
        name: the input's name (``"x"``), for the message.
        measure: what needs the variance, for the message.

    Returns:
        ``tr(c)``, a 0-dim tensor.

    Raises:
        DegenerateInputError: every sample is the same point.

    Examples:
        >>> import torch
        >>> m = paired_moments(torch.arange(8.0).reshape(4, 2))
        >>> float(check_variance(m.cxx, m.mean_x, m.n, name="x", measure="CKA"))
        40.0
    """
    c = check_matrix(c, name="c", min_samples=1, finite=False)
    if c.shape[0] != c.shape[1]:
        raise ShapeError(f"c must be a square (d, d) scatter, got shape {tuple(c.shape)}.")
    check_finite(c, name="c")
    if mean is not None:
        mean = check_finite(as_float_tensor(mean, name="mean"), name="mean")
        if mean.shape != (c.shape[0],):
            raise ShapeError(
                f"mean must have shape ({c.shape[0]},) to match c of shape {tuple(c.shape)}, "
                f"got {tuple(mean.shape)}."
            )
        check_same_device(c, mean, names=("c", "mean"))
    n = check_positive_int(n, name="n", minimum=0)
    total = torch.trace(c)
    mean_sq = float(mean @ mean) if mean is not None else 0.0
    floor = 8.0 * c.shape[0] * torch.finfo(_F64).eps * n * mean_sq
    if not float(total) > floor:
        raise DegenerateInputError(
            f"{name} has zero variance (every sample is the same point), so {measure} is "
            f"undefined; check that {name} is not a constant or dead layer."
        )
    return total


def _raw_product(
    xc: Tensor, sx: Tensor, mx: Tensor, yc: Tensor, sy: Tensor, my: Tensor, scale: int = 0
) -> Tensor:
    """Σ_i (x_i - s)(y_i - t)^T over a chunk in float64, from the product of centered data.

    ``xc = x - m̂x`` with m̂x the chunk mean rounded to the data's dtype, ``sx = Σ xc``
    (float64, nearly zero) and ``mx = m̂x - s`` in float64 (likewise for y); then
    ``Σ (x - s)(y - t)^T = xc^T yc + mx sy^T + sx my^T + m mx my^T``, the rank-one terms
    in float64. ``xc``, ``yc`` may have been divided by powers of two whose exponents add
    up to ``scale`` (``sx``, ``mx``, ``sy``, ``my`` are in the data's units): the float64
    product is multiplied back by ``2**scale``, exactly.
    """
    product = ldexp((xc.T @ yc).to(torch.float64), scale)
    product += torch.outer(mx, sy) + torch.outer(sx, my) + xc.shape[0] * torch.outer(mx, my)
    return product


def _chunk_exponents(t: Tensor, chunk_size: int, name: str) -> list[int]:
    """For each chunk of ``chunk_size`` rows of ``t``, the power of two that brings it into
    range (:func:`~subspaces.linalg.scaling.scale_exponent`: 0 for ordinary data).

    One pass over ``t``, which also refuses what :func:`~subspaces._checks.check_matrix`
    refuses at the doors (non-finite entries, float64 beyond the supported magnitudes), so
    that nothing is added to a state before the whole batch is known to be valid.
    """
    tops = [max_abs(t[start : start + chunk_size]) for start in range(0, t.shape[0], chunk_size)]
    if not all(math.isfinite(top) for top in tops):
        check_finite(t, name=name)  # raises, counting the NaN and infinite entries
    check_magnitude(t, name=name, top=max(tops, default=0.0))
    return [magnitude_exponent(top, t.dtype) for top in tops]


def _centered_chunk(rows: Tensor, shift: Tensor, e: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A chunk centered on its own mean, in its dtype, divided by ``2**e``.

    Returns ``(xc, sx, mx, total)``: ``xc = (rows - m̂) · 2**-e`` (``e`` from
    :func:`_chunk_exponents`, 0 for ordinary data, so that float32 products neither overflow
    nor underflow at extreme scales), and in float64 in the data's units
    ``sx = Σ (rows - m̂)``, ``mx = m̂ - shift`` and the chunk's column sum about ``shift``,
    ``total = m · mx + sx``.
    """
    scaled = ldexp(rows, -e)
    mean = scaled.mean(0)  # any point near the mean will do: sx below makes it exact
    xc = scaled - mean
    # xc is centered: a float32 sum is exact enough
    sx = ldexp(xc.sum(0).to(torch.float64), e)
    mx = ldexp(mean.to(torch.float64), e) - shift
    return xc, sx, mx, rows.shape[0] * mx + sx


def accumulate_moments(
    state: Any,
    x: Tensor,
    y: Tensor | None = None,
    *,
    self_terms: bool = True,
    cross: bool = True,
    row_norms: bool = False,
    about_origin: bool = False,
    chunk_size: int = CHUNK_SIZE,
) -> None:
    """Add the samples ``x`` (and paired ``y``) to ``state`` in place.

    Args:
        state: an object with the attributes :data:`MOMENT_STATES`.
        x: ``(m, d1)`` floating tensor. y: ``(m, d2)`` paired tensor or ``None``.
        self_terms: accumulate ``X^T X`` (and ``Y^T Y``).
        cross: accumulate ``X^T Y`` (ignored without ``y``).
        row_norms: also accumulate the row-norm sums that debiased estimators need.
        about_origin: on a fresh state, take sums about 0 instead of the first chunk's
            mean, so that ``state.sxx`` is the raw second moment (uncentered measures).
        chunk_size: rows per product.

    Input that :func:`~subspaces._checks.check_matrix` refuses (NaN or infinite entries,
    float64 beyond the supported magnitudes...) raises before ``state`` is changed.

    Examples:
        >>> import torch
        >>> state = MomentSums()
        >>> accumulate_moments(state, torch.tensor([[1.0], [2.0]]))
        >>> accumulate_moments(state, torch.tensor([[6.0]]))
        >>> int(state.n), center_moments(state).mean_x.tolist()
        (3, [3.0])
    """
    _check_state(state)
    # finite values are checked with the chunks' scales below, in the same pass
    if y is None:
        x = check_matrix(x, name="x", min_samples=0, finite=False)
    else:
        x, y = check_paired(x, y, min_samples=0, finite=False)
        _check_width(state, "sum_y", y, "y")
    _check_width(state, "sum_x", x, "x")
    for flag, flag_name in (
        (self_terms, "self_terms"),
        (cross, "cross"),
        (row_norms, "row_norms"),
        (about_origin, "about_origin"),
    ):
        check_flag(flag, name=flag_name)
    chunk_size = check_positive_int(chunk_size, name="chunk_size")
    m = x.shape[0]
    if m == 0:
        return
    if row_norms and y is None:
        raise InvalidOptionError("row_norms=True needs paired data y (row-norm sums of x and y).")
    x_exponents = _chunk_exponents(x, chunk_size, "x")
    y_exponents = _chunk_exponents(y, chunk_size, "y") if y is not None else []
    f64 = torch.float64
    if _get(state, "shift_x").numel() == 0:
        first = slice(0, chunk_size)
        state.shift_x = _shift_for(x[first], about_origin)
        if y is not None:
            state.shift_y = _shift_for(y[first], about_origin)
    shift_x, shift_y = _get(state, "shift_x"), _get(state, "shift_y")
    _add(state, "n", torch.tensor(float(m), dtype=f64, device=x.device))
    for i, start in enumerate(range(0, m, chunk_size)):
        xb = x[start : start + chunk_size]
        ex = x_exponents[i]
        xc, sx, mx64, total_x = _centered_chunk(xb, shift_x, ex)
        _add(state, "sum_x", total_x)
        if self_terms:
            _add(state, "sxx", _raw_product(xc, sx, mx64, xc, sx, mx64, 2 * ex))
        if y is not None:
            yb = y[start : start + chunk_size]
            ey = y_exponents[i]
            yc, sy, my64, total_y = _centered_chunk(yb, shift_y, ey)
            _add(state, "sum_y", total_y)
            if self_terms:
                _add(state, "syy", _raw_product(yc, sy, my64, yc, sy, my64, 2 * ey))
            if cross:
                _add(state, "sxy", _raw_product(xc, sx, mx64, yc, sy, my64, ex + ey))
            if row_norms:
                x64, y64 = xb.to(f64) - shift_x, yb.to(f64) - shift_y
                a = (x64 * x64).sum(1)
                b = (y64 * y64).sum(1)
                _add(state, "sum_a", a.sum())
                _add(state, "sum_b", b.sum())
                _add(state, "sum_aa", a @ a)
                _add(state, "sum_bb", b @ b)
                _add(state, "sum_ab", a @ b)
                _add(state, "sum_ax", a @ x64)
                _add(state, "sum_ay", a @ y64)
                _add(state, "sum_bx", b @ x64)
                _add(state, "sum_by", b @ y64)


def _shift_for(rows: Tensor, about_origin: bool) -> Tensor:
    mean = rows.mean(0, dtype=torch.float64)
    return torch.zeros_like(mean) if about_origin else mean


def rebase_moments(state: Any, shift_x: Tensor, shift_y: Tensor | None = None) -> None:
    """Re-express every sum of ``state`` about new shifts, in place (exact algebra).

    With δ = new - old shift, x' = x - δ, u_i = x_i·δ and c = |δ|² (likewise v, cy for
    y): Σx' = Σx - nδ, X'^T Y' = X^T Y - δ(Σy)^T - (Σx)δy^T + nδδy^T, and for the row
    norms a'_i = a_i - 2u_i + c, expanded with Σu = Σx·δ, Σu² = δ^T X^T X δ, Σ a u =
    (Σ a x)·δ, Σ u x = X^T X δ, Σ u v = δ^T X^T Y δy. When the shifts are close (both near
    the data mean) nothing large cancels.

    Examples:
        >>> import torch
        >>> state = MomentSums()
        >>> accumulate_moments(state, torch.tensor([[1.0], [3.0]]))
        >>> rebase_moments(state, torch.zeros(1, dtype=torch.float64))
        >>> state.sum_x.tolist(), state.sxx.tolist()  # now sums about the origin
        ([4.0], [[10.0]])
    """
    _check_state(state)
    for shift, shift_name, attr in ((shift_x, "shift_x", "sum_x"), (shift_y, "shift_y", "sum_y")):
        if shift is None and shift_name == "shift_y":
            continue
        if not isinstance(shift, Tensor) or not shift.is_floating_point() or shift.ndim != 1:
            raise InputTypeError(
                f"{shift_name} must be a 1-D floating tensor (one entry per feature), got "
                f"{type(shift).__name__} {getattr(shift, 'shape', '')}."
            )
        check_dense(shift, name=shift_name)
        _check_width(state, attr, shift, shift_name)
        if not bool(torch.isfinite(shift).all()):
            raise InvalidOptionError(f"{shift_name} must be finite.")
    n = _get(state, "n")
    if n.numel() == 0:
        return
    names = ("sum_x", "sum_y", "sxx", "syy", "sxy", *_ROW_NORM_STATES)
    old = {name: _get(state, name) for name in names}
    has = {name: t.numel() > 0 for name, t in old.items()}
    dx = shift_x - _get(state, "shift_x")
    sx = old["sum_x"]
    has_y = _get(state, "shift_y").numel() > 0 and shift_y is not None
    new: dict[str, Tensor] = {"sum_x": sx - n * dx}
    if has["sxx"]:
        sxx = old["sxx"]
        new["sxx"] = sxx - torch.outer(dx, sx) - torch.outer(sx, dx) + n * torch.outer(dx, dx)
    if has_y:
        assert shift_y is not None
        dy = shift_y - _get(state, "shift_y")
        sy = old["sum_y"]
        new["sum_y"] = sy - n * dy
        if has["syy"]:
            syy = old["syy"]
            new["syy"] = syy - torch.outer(dy, sy) - torch.outer(sy, dy) + n * torch.outer(dy, dy)
        if has["sxy"]:
            sxy = old["sxy"]
            new["sxy"] = sxy - torch.outer(dx, sy) - torch.outer(sx, dy) + n * torch.outer(dx, dy)
        if has["sum_ab"]:
            new.update(_rebase_row_norms(old, n, dx, dy))
    for name, value in new.items():
        setattr(state, name, value)
    state.shift_x = shift_x.clone()
    if has_y:
        assert shift_y is not None
        state.shift_y = shift_y.clone()


def _rebase_row_norms(o: dict[str, Tensor], n: Tensor, dx: Tensor, dy: Tensor) -> dict[str, Tensor]:
    sx, sy, sxx, syy, sxy = o["sum_x"], o["sum_y"], o["sxx"], o["syy"], o["sxy"]
    cx, cy = dx @ dx, dy @ dy
    ux, vy = sx @ dx, sy @ dy  # Σu, Σv

    def own(
        sum_a: Tensor,
        sum_aa: Tensor,
        sum_ax: Tensor,
        s: Tensor,
        ss: Tensor,
        d: Tensor,
        c: Tensor,
        u: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        new_aa = (
            sum_aa - 4 * (sum_ax @ d) + 2 * c * sum_a + 4 * (d @ ss @ d) - 4 * c * u + n * c * c
        )
        new_ax = sum_ax - 2 * (ss @ d) + c * s - d * sum_a + 2 * d * u - n * c * d
        return sum_a - 2 * u + n * c, new_aa, new_ax

    sum_a, sum_aa, sum_ax = own(o["sum_a"], o["sum_aa"], o["sum_ax"], sx, sxx, dx, cx, ux)
    sum_b, sum_bb, sum_by = own(o["sum_b"], o["sum_bb"], o["sum_by"], sy, syy, dy, cy, vy)
    a, b = o["sum_a"], o["sum_b"]
    sum_ab = (
        o["sum_ab"]
        - 2 * (o["sum_ay"] @ dy)
        + cy * a
        - 2 * (o["sum_bx"] @ dx)
        + 4 * (dx @ sxy @ dy)
        - 2 * cy * ux
        + cx * b
        - 2 * cx * vy
        + n * cx * cy
    )
    sum_ay = o["sum_ay"] - 2 * (sxy.T @ dx) + cx * sy - dy * a + 2 * dy * ux - n * cx * dy
    sum_bx = o["sum_bx"] - 2 * (sxy @ dy) + cy * sx - dx * b + 2 * dx * vy - n * cy * dx
    return {
        "sum_a": sum_a,
        "sum_b": sum_b,
        "sum_aa": sum_aa,
        "sum_bb": sum_bb,
        "sum_ab": sum_ab,
        "sum_ax": sum_ax,
        "sum_ay": sum_ay,
        "sum_bx": sum_bx,
        "sum_by": sum_by,
    }


def merge_moments(state: Any, other: Any) -> None:
    """Add the samples summarized by ``other`` to ``state``, in place (``other`` unchanged).

    Examples:
        >>> import torch
        >>> a, b = MomentSums(), MomentSums()
        >>> accumulate_moments(a, torch.tensor([[0.0], [2.0]]))
        >>> accumulate_moments(b, torch.tensor([[4.0]]))
        >>> merge_moments(a, b)
        >>> center_moments(a).cxx.tolist()
        [[8.0]]
    """
    _check_state(state)
    _check_state(other, name="other")
    if _get(other, "sum_x").numel():
        _check_width(state, "sum_x", _get(other, "sum_x"), "other")
    if _get(other, "sum_y").numel():
        _check_width(state, "sum_y", _get(other, "sum_y"), "other")
    if _get(other, "n").numel() == 0:
        return
    if _get(state, "n").numel() == 0:
        for name in MOMENT_STATES:
            setattr(state, name, _get(other, name).clone())
        return
    incoming = MomentSums(**{name: _get(other, name) for name in MOMENT_STATES})
    shift_y = _get(state, "shift_y")
    rebase_moments(incoming, _get(state, "shift_x"), shift_y if shift_y.numel() else None)
    for name in MOMENT_STATES:
        if name not in _SHIFT_STATES:
            _add(state, name, _get(incoming, name))


def center_moments(state: Any) -> CenteredMoments:
    """Centered scatter matrices (float64) of everything ``state`` has seen.

    Raises:
        TooFewSamplesError: ``state`` has seen no sample.

    Examples:
        >>> import torch
        >>> state = MomentSums()
        >>> accumulate_moments(state, torch.tensor([[1.0, 0.0], [3.0, 2.0]]))
        >>> center_moments(state).cxx.tolist()
        [[2.0, 2.0], [2.0, 2.0]]
    """
    n_t = _get(_check_state(state), "n")
    if n_t.numel() == 0 or float(n_t) == 0:
        raise TooFewSamplesError("no samples have been accumulated yet; call update() first")
    c = MomentSums(**{name: _get(state, name) for name in MOMENT_STATES})
    mean_x = c.shift_x + c.sum_x / n_t
    mean_y = c.shift_y + c.sum_y / n_t if c.sum_y.numel() else None
    rebase_moments(c, mean_x, mean_y)

    def symmetric(t: Tensor) -> Tensor | None:
        return 0.5 * (t + t.T) if t.numel() else None

    norms = None
    if c.sum_ab.numel():
        norms = RowNormSums(c.sum_a, c.sum_b, c.sum_aa, c.sum_bb, c.sum_ab)
    return CenteredMoments(
        round(float(n_t)),
        mean_x,
        mean_y,
        symmetric(c.sxx),
        symmetric(c.syy),
        c.sxy if c.sxy.numel() else None,
        norms,
    )


def paired_moments(
    x: Tensor,
    y: Tensor | None = None,
    *,
    self_terms: bool = True,
    cross: bool = True,
    row_norms: bool = False,
    chunk_size: int = CHUNK_SIZE,
) -> CenteredMoments:
    """One-shot centered moments of ``x`` (and ``y``): accumulate, then center.

    Args:
        x: ``(n, d1)`` data. y: ``(n, d2)`` paired data or ``None``.
        self_terms, cross, row_norms, chunk_size: as :func:`accumulate_moments`.

    Examples:
        >>> import torch
        >>> x = torch.randn(100, 3, generator=torch.Generator().manual_seed(0))
        >>> m = paired_moments(x)
        >>> bool(torch.allclose(m.cxx / (m.n - 1), torch.cov(x.T).double(), atol=1e-6))
        True
    """
    state = MomentSums()
    accumulate_moments(
        state, x, y, self_terms=self_terms, cross=cross, row_norms=row_norms, chunk_size=chunk_size
    )
    return center_moments(state)


def paired_moments64(
    x: Tensor, y: Tensor | None = None, *, chunk_size: int = CHUNK_SIZE
) -> CenteredMoments:
    """Centered moments with float64 products, each chunk upcast: memory stays O(chunk · d).

    Whitening, pseudo-inverses and least squares amplify rounding by the condition number
    of ``Cxx``: with float32 products CCA on float32 data errs by about
    ``1e-8 · cond(Xc)²``, with float64 products only float64 rounding remains.

    Args:
        x: ``(n, d1)`` data. y: ``(n, d2)`` paired data or ``None``.
        chunk_size: rows upcast and multiplied at once.

    Examples:
        >>> import torch
        >>> x = torch.randn(100, 3, generator=torch.Generator().manual_seed(0))
        >>> m = paired_moments64(x, 2 * x)
        >>> bool(torch.allclose(m.cxy, 2 * m.cxx))
        True
    """
    if y is None:
        x = check_matrix(x, name="x", min_samples=0, finite=False)
    else:
        x, y = check_paired(x, y, min_samples=0, finite=False)
    chunk_size = check_positive_int(chunk_size, name="chunk_size")
    state = MomentSums()
    for start in range(0, x.shape[0], chunk_size):
        xb = x[start : start + chunk_size].to(_F64)
        yb = None if y is None else y[start : start + chunk_size].to(_F64)
        accumulate_moments(state, xb, yb, chunk_size=chunk_size)
    return center_moments(state)


def _first(stacked: Tensor) -> Tensor:
    """Reduction of the shift states across ranks: they are equal after the rebase."""
    return stacked[0]


class MomentsMetric(StreamingMetric):
    """A ``torchmetrics.Metric`` whose states are the moment sums of :data:`MOMENT_STATES`.

    Subclasses call :func:`accumulate_moments` on ``self`` in ``update`` and
    :func:`center_moments` in ``compute``. Under ``torch.distributed`` every rank first
    re-expresses its sums about one common shift (one all-reduce), then the sums are added;
    ``forward`` merges batch states the same way. Every rank must have seen at least one
    batch before ``compute()`` (states are sized by the first batch).

    Examples:
        >>> import torch
        >>> class Variance(MomentsMetric):
        ...     def update(self, x):
        ...         accumulate_moments(self, x)
        ...     def compute(self):
        ...         m = center_moments(self)
        ...         return m.cxx / (m.n - 1)
        >>> metric = Variance()
        >>> metric.update(torch.tensor([[1.0], [2.0]]))
        >>> metric.update(torch.tensor([[3.0]]))
        >>> float(metric.compute())
        1.0
    """

    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name in MOMENT_STATES:
            reduce = _first if name in _SHIFT_STATES else "sum"
            self.add_state(name, default=torch.zeros(0, dtype=torch.float64), dist_reduce_fx=reduce)

    def _state(self, name: str) -> Tensor:
        return _get(self, name)

    def _sync_dist(self, dist_sync_fn: Any = None, process_group: Any = None) -> None:
        group = process_group or self.process_group
        n = self._state("n")
        if n.numel():
            shifts: list[Tensor | None] = []
            for name in _SHIFT_STATES:
                shift = self._state(name)
                if shift.numel() == 0:
                    shifts.append(None)
                    continue
                weighted = torch.cat([shift * n, n.reshape(1)])
                torch.distributed.all_reduce(weighted, group=group)
                shifts.append(weighted[:-1] / weighted[-1])
            assert shifts[0] is not None
            rebase_moments(self, shifts[0], shifts[1])
        if dist_sync_fn is None:
            super()._sync_dist(process_group=process_group)
        else:
            super()._sync_dist(dist_sync_fn, process_group=process_group)

    def _reduce_states(self, incoming_state: dict[str, Any]) -> None:
        # forward() merges the running states (incoming) with one batch's (self).
        batch = MomentSums(**{name: self._state(name) for name in MOMENT_STATES})
        for name in MOMENT_STATES:
            setattr(self, name, incoming_state[name])
        merge_moments(self, batch)
        rest = {k: v for k, v in incoming_state.items() if k not in MOMENT_STATES}
        if rest:
            saved = self._defaults
            self._defaults = {k: v for k, v in saved.items() if k not in MOMENT_STATES}
            try:
                super()._reduce_states(rest)
            finally:
                self._defaults = saved
