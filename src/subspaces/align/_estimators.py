"""The estimator scaffolding of the align family (private): fits over paired moment sums.

:class:`_PairedSumsFit` is the base of every align estimator that is a function of the
float64 centered moments of paired rows (:class:`~subspaces.align.translators.Procrustes`,
:class:`~subspaces.align.translators.LinearTranslator`,
:class:`~subspaces.align.projected.SubspaceProjection`,
:class:`~subspaces.align.projected.ProjectedAlignment`): ``fit`` / ``partial_fit`` add
rows to a :class:`_PairedSums` (a ``torchmetrics.Metric`` kept apart from the estimator, so
that its sums sync across ``torch.distributed`` ranks) and the subclass's ``_solve`` turns
the centered moments into the fitted map. :class:`_MomentTranslator` adds ``transform``,
``fit_transform`` and ``score``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

import torch
from torch import Tensor

from subspaces._base import Estimator
from subspaces._checks import (
    NotFittedError,
    ShapeError,
    check_matrix,
    check_paired,
    check_positive_int,
    check_same_device,
)
from subspaces.align.scores import TranslationScores, translation_scores
from subspaces.linalg.moments import (
    CenteredMoments,
    MomentsMetric,
    MomentSums,
    accumulate_moments,
    center_moments,
)
from subspaces.linalg.streaming import DataclassResultMetric

_F64 = torch.float64


def _checked_rows(a: Any, *, name: str, fitted: Tensor, what: str) -> Tensor:
    """``a`` as a validated ``(m, d)`` tensor for a map fitted on ``d = fitted.shape[0]``
    features: finite, m >= 1, on ``fitted``'s device."""
    t = check_matrix(a, name=name, min_samples=1)
    width = fitted.shape[0]
    if t.shape[1] != width:
        raise ShapeError(
            f"{name} has {t.shape[1]} features (shape {tuple(t.shape)}) but the {what} was "
            f"fitted with {width}; pass rows of the representation it was fitted on."
        )
    check_same_device(t, fitted, names=(name, f"the {what}"))
    return t


def _accumulate(state: MomentSums, x: Tensor, y: Tensor, *, chunk_size: int) -> None:
    """Add paired rows to ``state`` with float64 products (each chunk upcast, O(chunk·d))."""
    for start in range(0, x.shape[0], chunk_size):
        xb = x[start : start + chunk_size].to(_F64)
        yb = y[start : start + chunk_size].to(_F64)
        accumulate_moments(state, xb, yb, chunk_size=chunk_size)


class _Fitted(Protocol):
    """A fitted map: anything with ``apply(x)`` on a validated tensor."""

    def apply(self, x: Tensor) -> Tensor: ...  # pragma: no cover


_Self = TypeVar("_Self", bound="_PairedSumsFit")


class _PairedSums(DataclassResultMetric, MomentsMetric):
    """The float64 paired moment sums behind the estimators of this family.

    A ``torchmetrics.Metric`` (:class:`~subspaces.linalg.moments.MomentsMetric`): under
    ``torch.distributed``, ``compute()`` adds every rank's sums (about one common shift)
    and returns the centered moments of all rows.
    """

    is_differentiable = False
    higher_is_better: bool | None = None
    n: Tensor
    sum_x: Tensor
    sum_y: Tensor

    def __init__(self, *, chunk_size: int) -> None:
        super().__init__()
        self.chunk_size = chunk_size

    def update(self, x: Tensor, y: Tensor) -> None:
        _accumulate(self, x, y, chunk_size=self.chunk_size)  # type: ignore[arg-type]

    def compute(self) -> CenteredMoments:
        return center_moments(self)

    def global_moments(self) -> CenteredMoments:
        """The centered moments of every rank's rows (this rank's outside ``torch.distributed``)."""
        return self.compute()


class _PairedSumsFit(Estimator):
    """``fit`` / ``partial_fit`` over float64 sums of paired rows, shared by every estimator
    of this family that is a function of the centered moments.

    A subclass's ``__init__`` stores its keyword-only parameters (``chunk_size`` among
    them) unchanged; ``_check_params`` validates them at ``fit`` / ``partial_fit``, and
    ``_solve(centered moments)`` turns the sums into the fitted map. ``partial_fit`` only
    adds to the sums; ``_solve`` runs when the solution is first needed and is cached until
    the next batch or ``set_params``. Under ``torch.distributed`` the sums of all ranks are
    added first (every rank must have ``partial_fit`` at least one batch and then use the
    estimator at the same point, e.g. call ``transform`` or read an attribute: that is a
    collective step), so each rank feeds its own share of the rows to ``partial_fit`` and
    every rank gets the fit on all.
    """

    chunk_size: int

    def _check_params(self) -> None:
        """Validate the parameters (subclasses extend); raises on an invalid value."""
        check_positive_int(self.chunk_size, name="chunk_size")

    def _solve(self, m: CenteredMoments) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _new_state(self) -> None:
        self._state = _PairedSums(chunk_size=check_positive_int(self.chunk_size, name="chunk_size"))
        self._input_dtype = torch.float64
        self._solution: Any = None

    def __sklearn_is_fitted__(self) -> bool:
        state = getattr(self, "_state", None)
        return state is not None and bool(state.n.numel()) and float(state.n) > 0

    def set_params(self: _Self, **params: Any) -> _Self:
        """Set parameters (scikit-learn's ``set_params``); the next use solves again."""
        super().set_params(**params)
        self._solution = None
        return self

    @property
    def n_samples_seen_(self) -> int:
        """Paired rows seen since the last ``fit`` (by this process)."""
        self._check_fitted("n_samples_seen_")
        return round(float(self._state.n))

    def fit(self: _Self, x: Any, y: Any) -> _Self:
        """Fit on paired rows ``x`` (n, d1), ``y`` (n, d2), forgetting earlier data."""
        self._check_params()
        tx, ty = check_paired(x, y, min_samples=2)
        self._new_state()
        self._add(tx, ty)
        self._solved()  # solve now, so that degenerate data fail here
        return self

    def partial_fit(self: _Self, x: Any, y: Any) -> _Self:
        """Add paired rows; any split of the rows gives the same fit as one ``fit``."""
        self._check_params()
        tx, ty = check_paired(x, y, min_samples=1)
        if getattr(self, "_state", None) is None:
            self._new_state()
        self._add(tx, ty)
        return self

    def _add(self, tx: Tensor, ty: Tensor) -> None:
        if self._state.sum_x.numel():
            d1, d2 = self._state.sum_x.shape[0], self._state.sum_y.shape[0]
            if (tx.shape[1], ty.shape[1]) != (d1, d2):
                raise ShapeError(
                    f"this batch has {tx.shape[1]} and {ty.shape[1]} features but earlier "
                    f"batches had {d1} and {d2}; call fit() to start again on other data."
                )
            check_same_device(tx, self._state.sum_x, names=("x", "the fitted state"))
        self._state.update(tx, ty)
        if torch.finfo(tx.dtype).eps > torch.finfo(self._input_dtype).eps:
            self._input_dtype = tx.dtype
        self._solution = None

    def _check_side(self, a: Any, *, name: str, width: int, what: str) -> Tensor:
        t = check_matrix(a, name=name, min_samples=1)
        if t.shape[1] != width:
            raise ShapeError(
                f"{name} has {t.shape[1]} features (shape {tuple(t.shape)}) but this "
                f"{type(self).__name__} was fitted with {width}; pass rows of {what}."
            )
        check_same_device(t, self._state.sum_x, names=(name, "the fitted state"))
        return t

    def _solved(self) -> Any:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted; call fit(x, y) with paired "
                "training rows first."
            )
        if self._solution is None:
            moments = self._state.global_moments()  # all ranks' rows
            total = round(float(moments.n))
            if total < 2:
                raise NotFittedError(
                    f"this {type(self).__name__} is not fitted (it has seen {total} paired "
                    "rows, and needs at least 2); call fit(x, y) with paired training rows first."
                )
            self._solution = self._solve(moments)
        return self._solution


class _MomentTranslator(_PairedSumsFit):
    """Shared transform / score of the translators fitted from moments.

    The map is solved when first needed (``transform``, ``score`` or an attribute) and
    cached until the next ``partial_fit``.
    """

    def _solve(self, m: CenteredMoments) -> _Fitted:  # pragma: no cover
        raise NotImplementedError

    def _fitted(self) -> _Fitted:
        fitted: _Fitted = self._solved()
        return fitted

    def transform(self, x: Any) -> Tensor:
        """Translate rows of x into y's space: an ``(m, d2)`` tensor in x's dtype."""
        fitted = self._fitted()
        d1 = self._state.sum_x.shape[0]
        t = self._check_side(x, name="x", width=d1, what="the representation fitted as x")
        return fitted.apply(t)

    def fit_transform(self, x: Any, y: Any) -> Tensor:
        """``fit(x, y)`` then ``transform(x)``."""
        return self.fit(x, y).transform(x)

    def score(self, x: Any, y: Any, *, ks: Sequence[int] = (1, 5)) -> TranslationScores:
        """:func:`~subspaces.align.scores.translation_scores` of ``transform(x)`` against
        ``y`` (held-out pairs), ranked ``chunk_size`` queries at a time."""
        pred = self.transform(x)
        d2 = self._state.sum_y.shape[0]
        target = self._check_side(y, name="y", width=d2, what="the representation fitted as y")
        if target.shape[0] != pred.shape[0]:
            raise ShapeError(
                f"x and y must hold the same samples in the same order, but x has "
                f"{pred.shape[0]} rows and y has {target.shape[0]}."
            )
        return translation_scores(
            pred, self._target(self._fitted(), target), ks=ks, chunk_size=self.chunk_size
        )

    def _target(self, fitted: _Fitted, y: Tensor) -> Tensor:
        """Where ``score`` compares the translations: y itself (projected, in subclasses)."""
        return y
