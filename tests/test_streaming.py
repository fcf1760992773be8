"""The streaming contract (docs/conventions.md), checked on every streaming class.

Every subclass of ``torchmetrics.Metric`` in the ``__all__`` of ``subspaces`` or one of its
subpackages is found automatically, so a new family is covered without editing this file;
its case in ``CASES`` (the function it must agree with, the data it takes) is the one thing
to add. For each class:

- the constructor is keyword-only and every parameter has a default (``Class()`` works);
- ``update`` over two batches then ``compute()`` equals the function on the concatenation;
- ``merge_state`` of two instances (one batch each) equals one instance on both batches;
- ``reset()`` returns to the empty state (same states as a new instance, same result after);
- under ``torch.distributed`` (2 gloo processes, ONE spawned group for every class) each rank
  updates with its share of the rows and gets the one-shot value.

Run one family with ``-k similarity`` (test ids are ``family.Class``).
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from torchmetrics import Metric

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _distributed import (
    ProcessGroupPool,
    assert_plain_close,
    check_streaming_matches_one_shot,
    distributed_available,
    to_plain,
)

from subspaces._base import Result
from tests._public import families

# Streaming machinery, not measures (no function to match): these bases, and any Metric of
# floor 1 (subspaces.linalg) that has no entry in CASES.
BASES = {"MomentsMetric", "PairedMomentsMetric", "Float64MomentsMetric", "DataclassResultMetric"}


@dataclasses.dataclass(frozen=True)
class Case:
    """How to check one streaming class against its function.

    Attributes:
        function: the function's name in the family package the class is exported from.
        data: ``"paired"`` (``update(x, y)``), ``"single"`` (``update(x)``) or ``"labeled"``
            (``update(features, labels)``, 3 classes).
        kwargs: options given to the class (only where a default cannot do).
        function_kwargs: options given to the function.
        batch_dependent: the value depends on the batches (minibatch CKA): the function is
            called with ``batch_size`` equal to the rows per ``update``.
        required: constructor options without which the class cannot be built (its states
            are sized by them, e.g. ``num_classes``); every other one has a default.
    """

    function: str
    data: str = "paired"
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    function_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    batch_dependent: bool = False
    required: frozenset[str] = frozenset()


CASES: dict[str, Case] = {
    # similarity
    "LinearCKA": Case("linear_cka"),
    "MinibatchCKA": Case("minibatch_cka", batch_dependent=True),
    "CCA": Case("cca_correlations"),
    "SVCCA": Case("svcca"),
    "PWCCA": Case("pwcca"),
    "LinearRegressionR2": Case("linear_regression_r2"),
    "ProcrustesDistance": Case("procrustes_distance"),
    "ShapeMetric": Case("shape_metric"),
    "PermutationProcrustesDistance": Case("permutation_procrustes_distance"),
    "RSMNormDifference": Case("rsm_norm_difference"),
    "MagnitudeDifference": Case("magnitude_difference"),
    "ConcentricityDifference": Case("concentricity_difference"),
    "Magnitude": Case("magnitude", data="single"),
    "Concentricity": Case("concentricity", data="single"),
    # geometry
    "CovarianceSpectrum": Case("covariance_spectrum", data="single"),
    "CodingRate": Case(
        "coding_rate", data="single", kwargs={"eps": 0.5}, function_kwargs={"eps": 0.5}
    ),
    "CodingRateReduction": Case(
        "coding_rate_reduction",
        data="labeled",
        kwargs={"eps": 0.5, "num_classes": 3},
        function_kwargs={"eps": 0.5},
        required=frozenset({"num_classes"}),
    ),
    "NeuralCollapse": Case(
        "neural_collapse",
        data="labeled",
        kwargs={"num_classes": 3, "num_features": 6},
        function_kwargs={"num_classes": 3},
        required=frozenset({"num_classes", "num_features"}),
    ),
    # align
    "UnitCorrelation": Case("unit_correlation"),
}

N = 80  # rows in all; two batches of 40 here, 4 batches of 10 per rank under DDP
DDP_BATCH = 10
RTOL, ATOL = 1e-9, 1e-10  # float64 states: only the order of summation differs


# ------------------------------------------------------------------------------ discovery


def _discover() -> tuple[dict[str, tuple[str, ModuleType, type]], dict[str, str]]:
    found: dict[str, tuple[str, ModuleType, type]] = {}
    errors: dict[str, str] = {}
    seen: set[int] = set()
    for family, package in families():
        if isinstance(package, BaseException):
            errors[f"{family}.<import>"] = f"{type(package).__name__}: {package}"
            continue
        for name in getattr(package, "__all__", ()):
            obj = getattr(package, name, None)
            if not (inspect.isclass(obj) and issubclass(obj, Metric)) or id(obj) in seen:
                continue
            seen.add(id(obj))
            machinery = name in BASES or (family == "linalg" and name not in CASES)
            if not machinery:
                found[f"{family}.{name}"] = (family, package, obj)
    return found, errors


STREAMING, IMPORT_ERRORS = _discover()
IDS = sorted(STREAMING) + sorted(IMPORT_ERRORS)


def _class(case_id: str) -> tuple[type, Case, ModuleType]:
    if case_id in IMPORT_ERRORS:
        pytest.fail(f"{case_id}: the package does not import: {IMPORT_ERRORS[case_id]}")
    _, package, cls = STREAMING[case_id]
    if cls.__name__ not in CASES:
        pytest.fail(
            f"{cls.__name__} ({cls.__module__}) is a streaming class without a case: add "
            f"CASES[{cls.__name__!r}] = Case('<its function>', data=...) to tests/test_streaming.py"
        )
    return cls, CASES[cls.__name__], package


def _function(case: Case, package: ModuleType, cls: type) -> Callable[..., Any]:
    fn = getattr(package, case.function, None)
    if fn is None:
        pytest.fail(
            f"{cls.__name__}'s function {case.function!r} is not in {package.__name__}: "
            "update its entry in CASES (tests/test_streaming.py)"
        )
    return partial(fn, **case.function_kwargs)


# ------------------------------------------------------------------------------ data


def _data(kind: str, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    if kind == "labeled":
        labels = np.arange(N) % 3  # every contiguous share holds every class
        means = 3.0 * rng.standard_normal((3, 6))
        return means[labels] + rng.standard_normal((N, 6)), labels
    x = rng.standard_normal((N, 6)) + 3.0
    if kind == "single":
        return (x,)
    y = np.tanh(x @ rng.standard_normal((6, 4))) + 0.2 * rng.standard_normal((N, 4))
    return x, y


def _batches(data: tuple[np.ndarray, ...], half: int) -> tuple[tuple[torch.Tensor, ...], ...]:
    first = tuple(torch.from_numpy(a[:half]) for a in data)
    second = tuple(torch.from_numpy(a[half:]) for a in data)
    return first, second


def _expected(case: Case, package: ModuleType, cls: type, data: tuple, batch: int) -> Any:
    fn = _function(case, package, cls)
    if case.batch_dependent:
        fn = partial(fn, batch_size=batch)
    return to_plain(fn(*(torch.from_numpy(a) for a in data)))


def _new(cls: type, case: Case) -> Any:
    return cls(**case.kwargs)


# ------------------------------------------------------------------------------ the contract


@pytest.mark.parametrize("case_id", IDS)
def test_constructor_is_keyword_only_with_defaults(case_id: str) -> None:
    cls, case, _ = _class(case_id)
    bad = [
        f"{p.name} ({'positional' if p.kind != p.KEYWORD_ONLY else 'no default'})"
        for p in inspect.signature(cls).parameters.values()
        if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        and (p.kind != p.KEYWORD_ONLY or (p.default is p.empty and p.name not in case.required))
    ]
    assert not bad, f"{cls.__name__}(...): every parameter keyword-only with a default: {bad}"
    cls(**{name: case.kwargs[name] for name in case.required})  # default-constructible


@pytest.mark.parametrize("case_id", IDS)
def test_two_batches_equal_the_function_on_all_rows(case_id: str) -> None:
    cls, case, package = _class(case_id)
    data = _data(case.data, seed=len(case_id))
    metric = _new(cls, case)
    for batch in _batches(data, N // 2):
        metric.update(*batch)
    expected = _expected(case, package, cls, data, N // 2)
    assert_plain_close(to_plain(metric.compute()), expected, rtol=RTOL, atol=ATOL, where=case_id)


def _result_problems(value: Any, where: str) -> list[str]:
    """docs/conventions.md, "What functions return": float64 tensors on the input's device,
    or frozen dataclasses inheriting ``subspaces._base.Result`` (checked field by field)."""
    if isinstance(value, torch.Tensor):
        return [] if value.dtype == torch.float64 else [f"{where} is {value.dtype}, not float64"]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        problems = []
        if not isinstance(value, Result):
            problems.append(f"{where} ({type(value).__name__}) does not inherit Result")
        if not type(value).__dataclass_params__.frozen:
            problems.append(f"{where} ({type(value).__name__}) is not frozen")
        return problems
    return [f"{where} is a {type(value).__name__}, not a tensor or a Result dataclass"]


@pytest.mark.parametrize("case_id", IDS)
def test_compute_returns_a_float64_tensor_or_a_result(case_id: str) -> None:
    cls, case, _ = _class(case_id)
    data = _data(case.data, seed=len(case_id) + 4)
    metric = _new(cls, case)
    # float32 data: the result is float64 all the same
    metric.update(
        *(torch.from_numpy(a if a.dtype.kind == "i" else a.astype(np.float32)) for a in data)
    )
    problems = _result_problems(metric.compute(), f"{cls.__name__}.compute()")
    assert not problems, "; ".join(problems)


@pytest.mark.parametrize("case_id", IDS)
def test_merge_state_equals_one_instance_on_both_batches(case_id: str) -> None:
    cls, case, package = _class(case_id)
    data = _data(case.data, seed=len(case_id) + 1)
    first, second = _batches(data, N // 2)
    one, other, both = _new(cls, case), _new(cls, case), _new(cls, case)
    one.update(*first)
    other.update(*second)
    both.update(*first)
    both.update(*second)
    one.compute()  # cached: the merge must drop it (torchmetrics' merge_state does not)
    one.merge_state(other)
    merged = to_plain(one.compute())
    assert_plain_close(merged, to_plain(both.compute()), rtol=RTOL, atol=ATOL, where=case_id)
    expected = _expected(case, package, cls, data, N // 2)
    assert_plain_close(merged, expected, rtol=RTOL, atol=ATOL, where=case_id)


def _states(metric: Any) -> dict[str, Any]:
    return {name: to_plain(value) for name, value in metric.metric_state.items()}


@pytest.mark.parametrize("case_id", IDS)
def test_reset_returns_to_the_empty_state(case_id: str) -> None:
    cls, case, _ = _class(case_id)
    data = _data(case.data, seed=len(case_id) + 2)
    first, second = _batches(data, N // 2)
    used, fresh = _new(cls, case), _new(cls, case)
    used.update(*first)
    used.reset()
    empty = _states(fresh)
    after = _states(used)
    assert after.keys() == empty.keys()
    for name in empty:
        a, e = np.asarray(after[name]), np.asarray(empty[name])
        assert a.shape == e.shape, (
            f"{case_id}: state {name} is {a.shape} after reset, not {e.shape}"
        )
        np.testing.assert_array_equal(a, e, err_msg=f"{case_id}: state {name} after reset")
    used.update(*second)
    fresh.update(*second)
    assert_plain_close(
        to_plain(used.compute()), to_plain(fresh.compute()), rtol=0, atol=0, where=case_id
    )


# ------------------------------------------------------------------------------ distributed


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessGroupPool]:
    with ProcessGroupPool(2, timeout=60.0) as p:
        yield p


@pytest.mark.distributed
@pytest.mark.skipif(not distributed_available(), reason="torch.distributed with gloo needed")
@pytest.mark.parametrize("case_id", IDS)
def test_every_rank_gets_the_one_shot_value(pool: ProcessGroupPool, case_id: str) -> None:
    cls, case, package = _class(case_id)
    data = _data(case.data, seed=len(case_id) + 3)
    fn = _function(case, package, cls)
    if case.batch_dependent:  # each rank's 40 rows in batches of DDP_BATCH
        fn = partial(fn, batch_size=DDP_BATCH)
    factory = partial(cls, **case.kwargs)
    x, y = data[0], (data[1] if len(data) > 1 else None)
    check_streaming_matches_one_shot(
        pool, factory, fn, x, y, batch_size=DDP_BATCH, rtol=RTOL, atol=ATOL
    )


def test_discovery_finds_the_known_streaming_classes() -> None:
    names = {cls.__name__ for _, _, cls in STREAMING.values()}
    assert {"LinearCKA", "CovarianceSpectrum"} <= names, sorted(names)
