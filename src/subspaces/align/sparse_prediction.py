"""One-to-many unit matching: sparse prediction of each unit by lasso (Li et al., ICLR 2016).

Each unit of y is predicted from all units of x by an L1-penalized linear regression
(lasso): how many units of x does it need? Solved by coordinate descent on float64
covariance moments (:mod:`subspaces.linalg.moments`), for all units of y at once.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from subspaces._base import Result
from subspaces._checks import (
    DegenerateInputError,
    InputTypeError,
    InvalidOptionError,
    check_flag,
    check_paired,
    check_positive_int,
    check_positive_real,
)
from subspaces.align.unit_correlation import _require
from subspaces.linalg.moments import CHUNK_SIZE, CenteredMoments, paired_moments

__all__ = ["SparsePrediction", "sparse_prediction", "sparse_prediction_from_moments"]

_F64 = torch.float64
_EPS64 = torch.finfo(_F64).eps


@dataclass(frozen=True)
class SparsePrediction(Result):
    """Lasso predictions of each unit of y from the units of x, one per penalty.

    ``alphas`` (p,): the penalties, in the order given. ``weights`` (p, d1, d2) and
    ``intercepts`` (p, d2): ``y ≈ x @ weights[k] + intercepts[k]`` in the inputs' raw
    units, whatever ``standardize`` was. ``n_predictors`` (p, d2) int64: the units of x with
    a nonzero weight for each unit of y. ``r2`` (p, d2): the in-sample coefficient of
    determination 1 - RSS / TSS; ``nmse`` = 1 - r2 is the paper's normalized squared error.
    ``converged`` (p,) bool: whether coordinate descent met ``tol`` within ``max_iter``.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(200, 5, generator=g, dtype=torch.float64)
        >>> y = torch.stack([x[:, 0] - 2.0 * x[:, 3], x[:, 1]], 1)
        >>> p = sparse_prediction(x, y, alphas=[0.1, 0.01])
        >>> p.weights.shape, p.n_predictors.tolist()
        (torch.Size([2, 5, 2]), [[2, 1], [2, 1]])
        >>> [[round(v, 3) for v in row] for row in p.r2.tolist()]
        [[0.979, 0.99], [1.0, 1.0]]
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

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(200, 5, generator=g, dtype=torch.float64)
        >>> y = torch.stack([x[:, 0] - 2.0 * x[:, 3], x[:, 1]], 1)
        >>> from subspaces.linalg.moments import paired_moments
        >>> p = sparse_prediction_from_moments(paired_moments(x, y), alphas=[1.0, 0.0])
        >>> p.n_predictors.tolist(), bool(p.converged.all())
        ([[0, 1], [5, 5]], True)
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
    chunk_size: int = CHUNK_SIZE,
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

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(200, 5, generator=g, dtype=torch.float64)
        >>> y = torch.stack([x[:, 0] - 2.0 * x[:, 3], x[:, 1]], 1)
        >>> p = sparse_prediction(x, y, alphas=0.05)
        >>> p.n_predictors.tolist(), [round(v, 2) for v in p.weights[0, [0, 3], 0].tolist()]
        ([[2, 1]], [0.88, -1.89])
    """
    tx, ty = check_paired(x, y)
    return sparse_prediction_from_moments(
        paired_moments(tx, ty, chunk_size=chunk_size),
        alphas=alphas,
        standardize=standardize,
        max_iter=max_iter,
        tol=tol,
    )
