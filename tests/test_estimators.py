"""The estimator contract (docs/conventions.md), checked on every estimator.

Every class with a ``fit`` method in the ``__all__`` of ``subspaces`` or one of its
subpackages (not a ``torch.nn.Module``, not a ``torchmetrics.Metric``) is found
automatically, so a new family is covered without editing this file; the data its ``fit``
takes (an entry in ``FIT_DATA``) is the one thing to add. For each estimator:

- it inherits ``subspaces._base.Estimator`` and is default-constructible;
- the constructor's parameters are keyword-only, each stored unchanged under its own name;
- ``get_params`` round-trips, ``sklearn.base.clone`` works and gives equal params;
- ``set_params`` works; ``__init__`` validates nothing, ``fit`` refuses a nonsense value of
  every parameter with a :class:`subspaces.SubspacesError`;
- fitted attributes (names ending in ``_``) and methods such as ``transform`` / ``score``
  raise :class:`subspaces.NotFittedError` before ``fit``;
- ``fit`` returns ``self``; ``fit_transform`` exists only where ``transform`` does.

Run one family with ``-k geometry`` (test ids are ``family.Class``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import sklearn.base
import torch
from torchmetrics import Metric

from subspaces import NotFittedError, SubspacesError
from subspaces._base import Estimator
from tests._public import families

# A value no parameter accepts: __init__ must store it, fit must refuse it.
NONSENSE = "not-a-valid-value"

# Methods that need no fit (scikit-learn's machinery and the fitting methods themselves).
NO_FIT_NEEDED = {"fit", "partial_fit", "fit_transform", "get_params", "set_params"}


def _manifold(n: int = 300, seed: int = 0) -> tuple[torch.Tensor]:
    """Points of a curved 2-dimensional surface in R^6 (for intrinsic-dimension fits)."""
    g = torch.Generator().manual_seed(seed)
    u, v = (
        torch.rand(n, generator=g, dtype=torch.float64),
        torch.rand(n, generator=g, dtype=torch.float64),
    )
    x = torch.stack([u, v, torch.sin(3 * u), torch.cos(2 * v), u * v, u - v**2], dim=1)
    return (x,)


def _paired(n: int = 60, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Paired rows ``x`` (n, 6), ``y`` (n, 4) with a shared signal (for translators)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g, dtype=torch.float64) + 1.0
    w = torch.randn(6, 4, generator=g, dtype=torch.float64)
    return x, torch.tanh(x @ w) + 0.1 * torch.randn(n, 4, generator=g, dtype=torch.float64)


# The arguments of fit, per estimator (class name -> function returning the positional args).
FIT_DATA: dict[str, Callable[[], tuple[Any, ...]]] = {
    # geometry: intrinsic dimension
    "TwoNN": _manifold,
    "MLE": _manifold,
    "GRIDE": _manifold,
    "LocalPCA": _manifold,
    "CorrelationDimension": _manifold,
    # align: translators and projections
    "Procrustes": _paired,
    "LinearTranslator": _paired,
    "ProjectedAlignment": _paired,
    "SubspaceProjection": _paired,
}


# ------------------------------------------------------------------------------ discovery


def _discover() -> tuple[dict[str, type], dict[str, str]]:
    found: dict[str, type] = {}
    errors: dict[str, str] = {}
    seen: set[int] = set()
    for family, package in families():
        if isinstance(package, BaseException):
            errors[f"{family}.<import>"] = f"{type(package).__name__}: {package}"
            continue
        for name in getattr(package, "__all__", ()):
            obj = getattr(package, name, None)
            if (
                not inspect.isclass(obj)
                or id(obj) in seen
                or not callable(getattr(obj, "fit", None))
                or issubclass(obj, (torch.nn.Module, Metric, BaseException))
            ):
                continue
            seen.add(id(obj))
            found[f"{family}.{name}"] = obj
    return found, errors


ESTIMATORS, IMPORT_ERRORS = _discover()
IDS = sorted(ESTIMATORS) + sorted(IMPORT_ERRORS)


def _class(case_id: str) -> type:
    if case_id in IMPORT_ERRORS:
        pytest.fail(f"{case_id}: the package does not import: {IMPORT_ERRORS[case_id]}")
    return ESTIMATORS[case_id]


def _fit_args(cls: type) -> tuple[Any, ...]:
    if cls.__name__ not in FIT_DATA:
        pytest.fail(
            f"{cls.__name__} ({cls.__module__}) is an estimator without fit data: add "
            f"FIT_DATA[{cls.__name__!r}] = <function returning fit's arguments> to "
            "tests/test_estimators.py"
        )
    return FIT_DATA[cls.__name__]()


def _init_parameters(cls: type) -> list[inspect.Parameter]:
    return [
        p
        for p in inspect.signature(cls).parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    return bool(a is b or a == b)


def _same_params(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)


def _fitted_attributes(cls: type, fitted: Any) -> list[str]:
    """Public names ending in ``_``: set by fit, or properties of the class."""
    names = {n for n in vars(fitted) if n.endswith("_") and not n.startswith("_")}
    names |= {
        n
        for n in dir(cls)
        if n.endswith("_")
        and not n.startswith("_")
        and isinstance(inspect.getattr_static(cls, n), property)
    }
    return sorted(names)


def _methods_needing_fit(cls: type) -> list[str]:
    """Public methods of subspaces (not scikit-learn's) other than the fitting ones."""
    out = []
    for name in dir(cls):
        if name.startswith("_") or name in NO_FIT_NEEDED:
            continue
        attr = inspect.getattr_static(cls, name)
        fn = attr.__func__ if isinstance(attr, (classmethod, staticmethod)) else attr
        if isinstance(attr, (classmethod, staticmethod)) or not inspect.isfunction(fn):
            continue
        if fn.__module__.startswith("subspaces") and fn.__module__ != Estimator.__module__:
            out.append(name)
    return sorted(out)


def _call_with(method: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """Call ``method`` with as many of fit's arguments as it has required positional ones."""
    required = [
        p
        for p in inspect.signature(method).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    return method(*args[: len(required)])


# ------------------------------------------------------------------------------ the contract


@pytest.mark.parametrize("case_id", IDS)
def test_inherits_estimator_and_is_default_constructible(case_id: str) -> None:
    cls = _class(case_id)
    assert issubclass(cls, Estimator), f"{cls.__name__} must inherit subspaces._base.Estimator"
    cls()


@pytest.mark.parametrize("case_id", IDS)
def test_constructor_is_keyword_only_and_stores_each_parameter(case_id: str) -> None:
    cls = _class(case_id)
    bad = [
        f"{p.name} ({'positional' if p.kind != p.KEYWORD_ONLY else 'no default'})"
        for p in _init_parameters(cls)
        if p.kind != p.KEYWORD_ONLY or p.default is p.empty
    ]
    assert not bad, f"{cls.__name__}(...): every parameter keyword-only with a default: {bad}"
    estimator = cls()
    changed = [
        p.name
        for p in _init_parameters(cls)
        if not _same(getattr(estimator, p.name, inspect.Parameter.empty), p.default)
    ]
    assert not changed, f"{cls.__name__}: parameters not stored unchanged by __init__: {changed}"


@pytest.mark.parametrize("case_id", IDS)
def test_get_params_round_trips_and_clone_gives_equal_params(case_id: str) -> None:
    cls = _class(case_id)
    estimator = cls()
    params = estimator.get_params()
    assert set(params) == {p.name for p in _init_parameters(cls)}
    assert _same_params(cls(**params).get_params(), params)
    copy = sklearn.base.clone(estimator)
    assert type(copy) is cls and copy is not estimator
    assert _same_params(copy.get_params(), params)
    # clone of a fitted estimator: the same parameters, and not fitted
    fitted = cls().fit(*_fit_args(cls))
    copy = sklearn.base.clone(fitted)
    assert _same_params(copy.get_params(), fitted.get_params())
    for name in _fitted_attributes(cls, fitted):
        with pytest.raises(NotFittedError):
            getattr(copy, name)


@pytest.mark.parametrize("case_id", IDS)
def test_set_params_stores_and_fit_refuses_nonsense(case_id: str) -> None:
    cls = _class(case_id)
    args = _fit_args(cls)
    refused_in_init, accepted_by_fit, not_stored = [], [], []
    for p in _init_parameters(cls):
        try:
            cls(**{p.name: NONSENSE})
        except Exception as error:
            refused_in_init.append(f"{p.name} ({type(error).__name__})")
        estimator = cls()
        assert estimator.set_params(**{p.name: NONSENSE}) is estimator
        if estimator.get_params()[p.name] is not NONSENSE:
            not_stored.append(p.name)
        try:
            estimator.fit(*args)
        except SubspacesError:
            continue
        except Exception as error:
            accepted_by_fit.append(f"{p.name} (raised {type(error).__name__}, not SubspacesError)")
        else:
            accepted_by_fit.append(f"{p.name} (fit accepted it)")
    problems = []
    if refused_in_init:
        problems.append(f"__init__ validates (fit must): {refused_in_init}")
    if not_stored:
        problems.append(f"set_params did not store: {not_stored}")
    if accepted_by_fit:
        problems.append(f"fit did not refuse {NONSENSE!r} for: {accepted_by_fit}")
    assert not problems, f"{cls.__name__}: " + "; ".join(problems)


@pytest.mark.parametrize("case_id", IDS)
def test_attributes_and_methods_before_fit_raise_not_fitted(case_id: str) -> None:
    cls = _class(case_id)
    args = _fit_args(cls)
    attributes = _fitted_attributes(cls, cls().fit(*args))
    assert attributes, f"{cls.__name__}.fit sets no attribute ending in '_'"
    offenders = []
    for name in attributes:
        try:
            getattr(cls(), name)
        except NotFittedError:
            continue
        except Exception as error:
            offenders.append(f"{name} raised {type(error).__name__}")
        else:
            offenders.append(f"{name} returned a value")
    for name in _methods_needing_fit(cls):
        try:
            _call_with(getattr(cls(), name), args)
        except NotFittedError:
            continue
        except Exception as error:
            offenders.append(f"{name}() raised {type(error).__name__}")
        else:
            offenders.append(f"{name}() returned a value")
    assert not offenders, f"{cls.__name__} before fit, not NotFittedError: {offenders}"


@pytest.mark.parametrize("case_id", IDS)
def test_fit_returns_self(case_id: str) -> None:
    cls = _class(case_id)
    estimator = cls()
    assert estimator.fit(*_fit_args(cls)) is estimator
    if callable(getattr(cls, "partial_fit", None)):
        estimator = cls()
        assert estimator.partial_fit(*_fit_args(cls)) is estimator


@pytest.mark.parametrize("case_id", IDS)
def test_fit_transform_only_where_transform(case_id: str) -> None:
    cls = _class(case_id)
    has = {name: callable(getattr(cls, name, None)) for name in ("fit_transform", "transform")}
    assert has["transform"] or not has["fit_transform"], f"{cls.__name__} has fit_transform only"


def test_clone_works_on_every_estimator() -> None:
    """The issue's must-show: ``sklearn.base.clone`` on every estimator, in one list."""
    failures = []
    for case_id, cls in sorted(ESTIMATORS.items()):
        try:
            estimator = cls()
            copy = sklearn.base.clone(estimator)
            assert _same_params(copy.get_params(), estimator.get_params())
        except Exception as error:
            failures.append(f"{case_id}: {type(error).__name__}: {error}")
    assert not failures, "clone fails on:\n" + "\n".join(failures)
    assert {"geometry.TwoNN", "align.Procrustes"} <= set(ESTIMATORS), sorted(ESTIMATORS)
