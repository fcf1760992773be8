"""Streaming centred moments of one or two representations, accumulated in float64.

Most similarity measures between ``x`` (n × d1) and ``y`` (n × d2) are functions of the
centred scatter matrices ``Cxx = Xc^T Xc``, ``Cyy = Yc^T Yc`` and ``Cxy = Xc^T Yc`` (CKA, CCA,
Procrustes, shape metrics, regression). This module accumulates the sums they are built
from, chunk by chunk, so that

* the result is exact to float64 rounding although the products run in the input dtype:
  each chunk is centred on its own float64 mean, its float32 product accumulates over at
  most ``chunk_size`` rows, and the chunk's mean is added back as a rank-one float64 term;
* the state is a set of plain sums: merging two states (shards, batches, or ranks of
  ``torch.distributed``) is adding them;
* memory is O(d²) whatever n is.

The state is any object with the attributes named in :data:`MOMENT_STATES` (a
:class:`MomentSums`, or a ``torchmetrics.Metric`` that declared them as states), so that a
function and a streaming class share one code path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MOMENT_STATES",
    "CentredMoments",
    "MomentSums",
    "RowNormSums",
    "accumulate_moments",
    "centre_moments",
    "paired_moments",
]

DEFAULT_CHUNK_SIZE = 4096
"""Rows per chunk: float32 products accumulate over at most this many rows."""

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
MOMENT_STATES = ("n", "sum_x", "sum_y", "sxx", "syy", "sxy", *_ROW_NORM_STATES)
"""Attribute names of a moment state. All are float64 sums; empty tensors until first use.

``n`` samples; ``sum_x``, ``sum_y`` column sums; ``sxx``, ``syy``, ``sxy`` raw second
moments (X^T X, Y^T Y, X^T Y); and, only when row-norm sums are requested (debiased
estimators), with ``a_i = ||x_i||²`` and ``b_i = ||y_i||²``: ``sum_a`` = Σ a_i, ``sum_b``,
``sum_aa`` = Σ a_i², ``sum_bb``, ``sum_ab`` = Σ a_i b_i, ``sum_ax`` = Σ a_i x_i, ``sum_ay``,
``sum_bx``, ``sum_by``.
"""


def _empty(device: torch.device | str | None = None) -> Tensor:
    return torch.zeros(0, dtype=torch.float64, device=device)


@dataclass
class MomentSums:
    """A moment state held in a plain object (the functional path's counterpart of a Metric)."""

    n: Tensor = field(default_factory=_empty)
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
        merged = MomentSums()
        for name in MOMENT_STATES:
            a, b = getattr(self, name), getattr(other, name)
            setattr(
                merged,
                name,
                b.clone() if a.numel() == 0 else a.clone() if b.numel() == 0 else a + b,
            )
        return merged


@dataclass(frozen=True)
class RowNormSums:
    """Sums of centred squared row norms, p_i = ||x_i - mean_x||², q_i = ||y_i - mean_y||².

    ``sq_x`` = Σ p_i, ``sq_y`` = Σ q_i, ``sq_xx`` = Σ p_i², ``sq_yy`` = Σ q_i²,
    ``sq_xy`` = Σ p_i q_i.
    """

    sq_x: Tensor
    sq_y: Tensor
    sq_xx: Tensor
    sq_yy: Tensor
    sq_xy: Tensor


@dataclass(frozen=True)
class CentredMoments:
    """Centred second moments of paired data, in float64.

    ``cxx``, ``cyy``, ``cxy`` are scatter matrices (sums over samples of centred outer
    products, not divided by n); covariances are ``cxx / (n - 1)``. Entries not requested
    when accumulating are ``None``. ``row_norms`` holds, for debiased estimators, the
    :class:`RowNormSums` of the centred rows.
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


def _raw_product(xc: Tensor, sx: Tensor, mx: Tensor, yc: Tensor, sy: Tensor, my: Tensor) -> Tensor:
    """Σ_i x_i y_i^T over a chunk in float64, from the product of chunk-centred data.

    ``mx``/``my`` are the chunk means rounded to the data's dtype, ``xc = x - mx`` and
    ``sx = Σ xc`` (float64, nearly zero); then
    ``Σ x y^T = xc^T yc + mx sy^T + sx my^T + m mx my^T``, every rank-one term in float64.
    """
    product = (xc.T @ yc).to(torch.float64)
    product += torch.outer(mx, sy) + torch.outer(sx, my) + xc.shape[0] * torch.outer(mx, my)
    return product


def accumulate_moments(
    state: Any,
    x: Tensor,
    y: Tensor | None = None,
    *,
    self_terms: bool = True,
    cross: bool = True,
    row_norms: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> None:
    """Add the samples ``x`` (and paired ``y``) to ``state`` in place.

    Args:
        state: an object with the attributes :data:`MOMENT_STATES`.
        x: ``(m, d1)`` floating tensor. y: ``(m, d2)`` paired tensor or ``None``.
        self_terms: accumulate ``X^T X`` (and ``Y^T Y``).
        cross: accumulate ``X^T Y`` (ignored without ``y``).
        row_norms: also accumulate the row-norm sums that debiased estimators need.
        chunk_size: rows per float32 product.
    """
    m = x.shape[0]
    if m == 0:
        return
    f64 = torch.float64
    _add(state, "n", torch.tensor(float(m), dtype=f64, device=x.device))
    for start in range(0, m, chunk_size):
        xb = x[start : start + chunk_size]
        mx = xb.mean(0)  # any shift near the mean will do: sx below makes it exact
        xc = xb - mx
        sx, mx64 = xc.sum(0, dtype=f64), mx.to(f64)
        _add(state, "sum_x", xb.shape[0] * mx64 + sx)
        if self_terms:
            _add(state, "sxx", _raw_product(xc, sx, mx64, xc, sx, mx64))
        if y is not None:
            yb = y[start : start + chunk_size]
            my = yb.mean(0)
            yc = yb - my
            sy, my64 = yc.sum(0, dtype=f64), my.to(f64)
            _add(state, "sum_y", yb.shape[0] * my64 + sy)
            if self_terms:
                _add(state, "syy", _raw_product(yc, sy, my64, yc, sy, my64))
            if cross:
                _add(state, "sxy", _raw_product(xc, sx, mx64, yc, sy, my64))
        if row_norms:
            if y is None:
                raise ValueError("row-norm sums need paired data y")
            x64, y64 = xb.to(f64), y[start : start + chunk_size].to(f64)
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


def centre_moments(state: Any) -> CentredMoments:
    """Turn raw sums into centred scatter matrices (float64). The state must have seen data."""
    if state.n.numel() == 0 or float(state.n) == 0:
        raise ValueError("no samples have been accumulated yet; call update() first")
    n_t = state.n
    n = round(float(n_t))
    mean_x = state.sum_x / n_t
    mean_y = state.sum_y / n_t if state.sum_y.numel() else None

    def centred(s: Tensor, mean_a: Tensor | None, mean_b: Tensor | None) -> Tensor | None:
        if s.numel() == 0 or mean_a is None or mean_b is None:
            return None
        return s - n_t * torch.outer(mean_a, mean_b)

    cxx = centred(state.sxx, mean_x, mean_x)
    cyy = centred(state.syy, mean_y, mean_y)
    cxy = centred(state.sxy, mean_x, mean_y)
    if cxx is not None:
        cxx = 0.5 * (cxx + cxx.T)
    if cyy is not None:
        cyy = 0.5 * (cyy + cyy.T)
    norms = None
    if state.sum_ab.numel() and mean_y is not None and state.sxx.numel() and state.syy.numel():
        norms = _centred_row_norm_sums(state, mean_x, mean_y, n_t)
    return CentredMoments(n, mean_x, mean_y, cxx, cyy, cxy, norms)


def _centred_row_norm_sums(state: Any, mx: Tensor, my: Tensor, n: Tensor) -> RowNormSums:
    """The :class:`RowNormSums` from raw sums (no second pass over the data).

    For rows p, q of two representations with means mp, mq, raw squared norms a, b and
    u_i = p_i·mp, v_i = q_i·mq: ||pc_i||² = a_i - 2u_i + |mp|², and
    Σ||pc_i||²||qc_i||² = Σab - 2(Σa q)·mq + |mq|²Σa - 2(Σb p)·mp + 4 mp^T P^T Q mq
    - 2|mq|²Σu + |mp|²Σb - 2|mp|²Σv + n|mp|²|mq|².
    """
    norm2 = {"x": mx @ mx, "y": my @ my}
    mean = {"x": mx, "y": my}
    col = {"x": state.sum_x, "y": state.sum_y}
    sq = {"x": state.sum_a, "y": state.sum_b}
    fourth = {"xx": state.sum_aa, "yy": state.sum_bb, "xy": state.sum_ab}
    weighted = {"xx": state.sum_ax, "xy": state.sum_ay, "yx": state.sum_bx, "yy": state.sum_by}
    raw = {"xx": state.sxx, "yy": state.syy, "xy": state.sxy}

    def single(p: str) -> Tensor:
        return sq[p] - 2 * (col[p] @ mean[p]) + n * norm2[p]

    def double(p: str, q: str) -> Tensor:
        u, v = col[p] @ mean[p], col[q] @ mean[q]
        return (
            fourth[p + q]
            - 2 * (weighted[p + q] @ mean[q])
            + norm2[q] * sq[p]
            - 2 * (weighted[q + p] @ mean[p])
            + 4 * (mean[p] @ raw[p + q] @ mean[q])
            - 2 * norm2[q] * u
            + norm2[p] * sq[q]
            - 2 * norm2[p] * v
            + n * norm2[p] * norm2[q]
        )

    return RowNormSums(
        single("x"), single("y"), double("x", "x"), double("y", "y"), double("x", "y")
    )


def paired_moments(
    x: Tensor,
    y: Tensor | None = None,
    *,
    self_terms: bool = True,
    cross: bool = True,
    row_norms: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> CentredMoments:
    """One-shot centred moments of ``x`` (and ``y``): accumulate, then centre."""
    state = MomentSums()
    accumulate_moments(
        state, x, y, self_terms=self_terms, cross=cross, row_norms=row_norms, chunk_size=chunk_size
    )
    return centre_moments(state)
