"""The two shapes every family shares: fitted estimators and rich results (floor 1).

- :class:`Estimator`: the base of every class with a ``fit`` step. It is scikit-learn's
  ``BaseEstimator``, so ``get_params``, ``set_params``, ``repr`` and ``sklearn.base.clone``
  work; constructors only store their keyword arguments and ``fit`` validates them.
- :class:`Result`: the base of every frozen dataclass a function or ``compute()`` returns;
  :meth:`Result.as_dict` gives plain Python values for JSON and tables.

docs/conventions.md states the contract both implement.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sklearn.base import BaseEstimator
from torch import Tensor

from subspaces._checks import NotFittedError

__all__ = ["Estimator", "Result", "plain"]


class Estimator(BaseEstimator):
    """Base class of the estimators: keyword-only parameters, validated in ``fit``.

    A subclass's ``__init__`` takes only keyword arguments with defaults and stores each
    one unchanged under its own name (scikit-learn's rule, which ``get_params`` and
    ``clone`` rely on). ``fit`` checks them and sets the learned attributes, whose names end
    in ``_``. Methods that need a fit call :meth:`_check_fitted` first.

    Examples:
        >>> from subspaces.geometry import TwoNN
        >>> from sklearn.base import clone
        >>> clone(TwoNN(discard_fraction=0.2)).get_params()["discard_fraction"]
        0.2
    """

    def __sklearn_is_fitted__(self) -> bool:
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: a learned attribute (``dimension_``) read
        # before ``fit`` is a NotFittedError (an AttributeError, so hasattr stays False).
        prop = getattr(type(self), name, None)
        if isinstance(prop, property) and prop.fget is not None:
            return prop.fget(self)  # re-raise the property's own, more precise error
        if name.endswith("_") and not name.startswith("_") and not self.__sklearn_is_fitted__():
            self._check_fitted(name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _check_fitted(self, what: str | None = None) -> None:
        """Raise :class:`~subspaces.NotFittedError` unless ``fit`` has run."""
        if not self.__sklearn_is_fitted__():
            name = type(self).__name__
            use = f"{what} needs" if what else "this needs"
            raise NotFittedError(f"{name} is not fitted: {use} {name}.fit(...) first.")


def plain(value: Any) -> Any:
    """``value`` in plain Python: 0-dim tensors as numbers, tensors as nested lists.

    Examples:
        >>> import torch
        >>> plain({"r": torch.tensor(0.5), "v": torch.tensor([1, 2]), "k": (1, "a")})
        {'r': 0.5, 'v': [1, 2], 'k': [1, 'a']}
    """
    if isinstance(value, Result):
        return value.as_dict()
    if isinstance(value, Tensor):
        return value.item() if value.dim() == 0 else value.tolist()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


class Result:
    """Mixin of the frozen dataclasses returned by functions and ``compute()``.

    Examples:
        >>> import dataclasses, torch
        >>> @dataclasses.dataclass(frozen=True)
        ... class Pair(Result):
        ...     value: torch.Tensor
        ...     name: str
        >>> Pair(torch.tensor(0.5, dtype=torch.float64), "a").as_dict()
        {'value': 0.5, 'name': 'a'}
    """

    def as_dict(self) -> dict[str, Any]:
        """The fields as plain Python values (numbers, lists, strings, nested dicts)."""
        if not dataclasses.is_dataclass(self):  # pragma: no cover - a misuse of the mixin
            raise TypeError(f"{type(self).__name__} must be a dataclass to use Result")
        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
