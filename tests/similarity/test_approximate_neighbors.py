"""Neighborhood similarity with neighbors="approximate": close to exact, recall reported."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from subspaces._checks import InvalidOptionError
from subspaces.linalg.ann import ANNOptions, ApproximateValue
from subspaces.similarity.cknna import cknna
from subspaces.similarity.neighbors import (
    knn_jaccard,
    mutual_knn,
    rank_similarity,
    second_order_cosine_similarity,
)

needs_faiss = pytest.mark.skipif(
    importlib.util.find_spec("faiss") is None, reason="faiss (subspaces[ann]) not installed"
)


@pytest.fixture(scope="module")
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1500, 12, generator=g)
    y = torch.tanh(x @ torch.randn(12, 16, generator=g)) + 0.1 * torch.randn(1500, 16, generator=g)
    return x, y


@needs_faiss
@pytest.mark.parametrize("fn", [mutual_knn, knn_jaccard, rank_similarity])
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_close_to_exact_with_recall(fn, metric: str, pair) -> None:  # type: ignore[no-untyped-def]
    x, y = pair
    exact = fn(x, y, k=10, metric=metric)
    assert isinstance(exact, torch.Tensor)  # the default is unchanged
    assert torch.equal(fn(x, y, k=10, metric=metric, neighbors="exact"), exact)
    approx = fn(x, y, k=10, metric=metric, neighbors="approximate")
    assert isinstance(approx, ApproximateValue)
    assert approx.recall_queries == 2000  # 1,000 sampled queries on each side
    assert float(approx.recall) >= 0.95
    assert abs(float(approx.value) - float(exact)) <= 0.03


@needs_faiss
def test_options_object(pair) -> None:  # type: ignore[no-untyped-def]
    x, y = pair
    res = mutual_knn(x, y, k=5, neighbors=ANNOptions(recall_queries=100))
    assert isinstance(res, ApproximateValue) and res.recall_queries == 200


@pytest.mark.parametrize("fn", [mutual_knn, knn_jaccard, rank_similarity])
def test_unknown_keyword_refused(fn, pair) -> None:  # type: ignore[no-untyped-def]
    x, y = pair
    with pytest.raises(InvalidOptionError, match="neighbors must be one of"):
        fn(x[:50], y[:50], k=5, neighbors="fast")


@pytest.mark.parametrize("fn", [cknna, second_order_cosine_similarity])
def test_exact_only_measures_refuse_approximate(fn, pair) -> None:  # type: ignore[no-untyped-def]
    x, y = pair
    with pytest.raises(InvalidOptionError, match="supports only neighbors='exact'"):
        fn(x[:50], y[:50], k=5, neighbors="approximate")
    exact = fn(x[:50], y[:50], k=5)
    assert torch.equal(fn(x[:50], y[:50], k=5, neighbors="exact"), exact)
