"""Intrinsic dimension with neighbors="approximate": close to exact, recall reported."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from subspaces._checks import InvalidOptionError
from subspaces.data.manifolds import benchmark_manifold, random_isometric_embedding
from subspaces.geometry import GRIDE, MLE, TwoNN, gride, gride_multiscale, mle_id, twonn
from subspaces.linalg.ann import ANNOptions, ApproximateValue

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("faiss") is None, reason="faiss (subspaces[ann]) not installed"
)


@pytest.fixture(scope="module")
def sphere() -> torch.Tensor:
    points, _ = benchmark_manifold("M1_Sphere", 3000, seed=0, dtype=torch.float32)
    return random_isometric_embedding(points, 40, seed=1)


CASES = [
    (twonn, {}),
    (mle_id, {"k": 10}),
    (gride, {"k": (2, 4)}),
]


@pytest.mark.parametrize(("fn", "kwargs"), CASES, ids=["twonn", "mle", "gride"])
def test_function_close_to_exact_with_recall(fn, kwargs, sphere: torch.Tensor) -> None:  # type: ignore[no-untyped-def]
    exact = fn(sphere, **kwargs)
    assert isinstance(exact, torch.Tensor)  # the default is unchanged
    assert torch.equal(fn(sphere, neighbors="exact", **kwargs), exact)
    approx = fn(sphere, neighbors="approximate", **kwargs)
    assert isinstance(approx, ApproximateValue)
    assert approx.value.dtype == torch.float64 and approx.value.dim() == 0
    assert approx.recall_queries == 1000
    assert float(approx.recall) >= 0.95
    assert abs(float(approx.value) - float(exact)) <= 0.02 * float(exact)
    assert set(approx.as_dict()) == {"value", "recall", "recall_queries"}


def test_options_object_selects_the_approximate_search(sphere: torch.Tensor) -> None:
    res = twonn(sphere, neighbors=ANNOptions(recall_queries=200, seed=1))
    assert isinstance(res, ApproximateValue) and res.recall_queries == 200


def test_mle_pointwise_value_is_the_local_estimates(sphere: torch.Tensor) -> None:
    res = mle_id(sphere, k=10, pointwise=True, neighbors="approximate")
    assert isinstance(res, ApproximateValue)
    assert res.value.shape == (sphere.shape[0],)


def test_gride_multiscale_reports_recall(sphere: torch.Tensor) -> None:
    exact = gride_multiscale(sphere, range_max=16)
    assert exact.recall is None and exact.recall_queries is None
    approx = gride_multiscale(sphere, range_max=16, neighbors="approximate")
    assert approx.recall is not None and float(approx.recall) >= 0.95
    torch.testing.assert_close(approx.dimension, exact.dimension, rtol=0.03, atol=0.0)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [(TwoNN, {}), (MLE, {"k": 10}), (GRIDE, {"k": (2, 4)})],
    ids=["TwoNN", "MLE", "GRIDE"],
)
def test_estimators_take_the_keyword(cls, kwargs, sphere: torch.Tensor) -> None:  # type: ignore[no-untyped-def]
    exact = cls(**kwargs).fit(sphere)
    assert exact.recall_ is None
    approx = cls(neighbors="approximate", **kwargs).fit(sphere)
    assert float(approx.recall_) >= 0.95 and approx.recall_queries_ == 1000
    assert abs(float(approx.dimension_) - float(exact.dimension_)) <= 0.02 * float(exact.dimension_)
    assert cls(neighbors="approximate", **kwargs).get_params()["neighbors"] == "approximate"


@pytest.mark.parametrize("fn", [twonn, mle_id, gride, gride_multiscale])
def test_bad_keyword_refused(fn, sphere: torch.Tensor) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidOptionError, match="neighbors must be one of"):
        fn(sphere[:50], neighbors="fast")
    with pytest.raises(InvalidOptionError, match="neighbors must be one of"):
        TwoNN(neighbors="fast").fit(sphere[:50])


def test_local_pca_pointwise_neighborhoods(sphere: torch.Tensor) -> None:
    from subspaces.geometry import LocalPCA, local_pca_id

    x = sphere[:1000]
    exact = local_pca_id(x, pointwise=True, k=30)
    approx = local_pca_id(x, pointwise=True, k=30, neighbors="approximate")
    assert isinstance(approx, ApproximateValue) and float(approx.recall) >= 0.95
    assert float((approx.value == exact).double().mean()) >= 0.95
    # the global estimate uses no neighbors: returned as is
    assert torch.equal(local_pca_id(x, neighbors="approximate"), local_pca_id(x))
    est = LocalPCA(pointwise=True, k=30, neighbors="approximate").fit(x)
    assert float(est.recall_) >= 0.95


def test_correlation_dimension_refuses_approximate(sphere: torch.Tensor) -> None:
    from subspaces.geometry import CorrelationDimension, correlation_dimension

    with pytest.raises(InvalidOptionError, match="supports only neighbors='exact'"):
        correlation_dimension(sphere[:100], neighbors="approximate")
    with pytest.raises(InvalidOptionError, match="supports only neighbors='exact'"):
        CorrelationDimension(neighbors="approximate").fit(sphere[:100])
    assert torch.equal(
        correlation_dimension(sphere[:100], neighbors="exact"), correlation_dimension(sphere[:100])
    )


@pytest.mark.parametrize("method", ["mle", "gride", "twonn"])
def test_scale_sweep_reports_recall(method: str, sphere: torch.Tensor) -> None:
    from subspaces.geometry import id_scale_sweep

    ks = [1, 2] if method != "mle" else [5, 10]
    exact = id_scale_sweep(sphere, ks=ks, method=method, seed=0)
    assert exact.recall is None and exact.recall_queries is None
    approx = id_scale_sweep(sphere, ks=ks, method=method, seed=0, neighbors="approximate")
    assert approx.recall is not None and float(approx.recall) >= 0.95
    assert approx.recall_queries is not None and approx.recall_queries >= 1000
    torch.testing.assert_close(approx.dimension, exact.dimension, rtol=0.03, atol=0.0)
