"""Approximate k-nearest neighbors (HNSW through faiss): recall, contract, options."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import torch

from subspaces._checks import InputTypeError, InvalidOptionError, ShapeError
from subspaces.data.manifolds import benchmark_manifold, random_isometric_embedding
from subspaces.linalg.ann import (
    ANNOptions,
    ApproximateKNNResult,
    ApproximateValue,
    approximate_knn,
    check_neighbor_search,
    recall_of,
)
from subspaces.linalg.knn import KNN_METRICS, KNNResult, knn

needs_faiss = pytest.mark.skipif(
    importlib.util.find_spec("faiss") is None, reason="faiss (subspaces[ann]) not installed"
)


def _gauss(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def _true_recall(approx: ApproximateKNNResult, exact: KNNResult, metric: str) -> float:
    """Recall of every query, ties with the exact k-th value counted as found."""
    kth = exact.values[:, -1:]
    inside = approx.values >= kth if metric == "inner_product" else approx.values <= kth
    return float(inside.sum(dim=1).clamp(max=exact.values.shape[1]).sum()) / exact.values.numel()


@needs_faiss
@pytest.mark.parametrize("metric", list(KNN_METRICS))
def test_recall_high_and_reported_exactly(metric: str) -> None:
    x = _gauss(800, 8)
    approx = approximate_knn(x, 10, metric=metric)
    exact = knn(x, 10, metric=metric)
    assert isinstance(approx, ApproximateKNNResult)
    assert approx.recall_queries == 800  # fewer queries than the sample: all of them
    assert approx.recall.dtype == torch.float64 and approx.recall.dim() == 0
    assert float(approx.recall) >= 0.95
    assert float(approx.recall) == pytest.approx(_true_recall(approx, exact, metric), abs=1e-12)
    agree = float((approx.indices == exact.indices).float().mean())
    assert agree >= 0.9


@needs_faiss
@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
def test_values_are_exact_for_the_returned_pairs(metric: str) -> None:
    x = _gauss(300, 6) + 3.0
    res = approximate_knn(x, 5, metric=metric)
    x64 = x.double()
    other = x64[res.indices]  # (n, k, d)
    if metric == "cosine":
        cos = (other * x64[:, None, :]).sum(-1) / (
            other.norm(dim=-1) * x64.norm(dim=-1, keepdim=True)
        )
        want = 1.0 - cos
    else:
        want = ((other - x64[:, None, :]) ** 2).sum(-1)
        if metric == "euclidean":
            want = want.sqrt()
    torch.testing.assert_close(res.values, want, rtol=1e-12, atol=1e-12)
    assert res.values.dtype == torch.float64 and res.indices.dtype == torch.int64
    assert bool((res.values[:, 1:] >= res.values[:, :-1]).all())  # nearest first


@needs_faiss
def test_self_excluded_by_index_duplicates_found() -> None:
    base = _gauss(200, 5)
    x = torch.cat([base, base])  # every point has one duplicate
    res = approximate_knn(x, 3)
    own = torch.arange(400)[:, None]
    assert not bool((res.indices == own).any())
    partner = torch.cat([torch.arange(200, 400), torch.arange(200)])
    assert bool((res.indices[:, 0] == partner).all())
    assert bool((res.values[:, 0] == 0).all())


@needs_faiss
def test_duplicates_of_low_rank_data_stay_at_distance_zero() -> None:
    sphere, _ = benchmark_manifold("M1_Sphere", 700, seed=0, dtype=torch.float32)
    base = random_isometric_embedding(sphere, 40, seed=1) + 5.0  # indexed in 11 coordinates
    x = torch.cat([base, base[:300]])
    res = approximate_knn(x, 2)
    assert bool((res.values[:300, 0] == 0).all()) and bool((res.values[700:, 0] == 0).all())
    assert bool((res.values[300:700, 0] > 0).all())
    exact = knn(x, 2)
    torch.testing.assert_close(res.values, exact.values, rtol=1e-9, atol=0.0)


@needs_faiss
def test_reference_set_and_no_self_exclusion() -> None:
    ref = _gauss(600, 6)
    q = _gauss(40, 6, seed=1)
    approx = approximate_knn(q, 4, reference=ref)
    exact = knn(q, 4, reference=ref)
    assert approx.indices.shape == (40, 4)
    assert float(approx.recall) == pytest.approx(_true_recall(approx, exact, "euclidean"))
    assert float(approx.recall) >= 0.95
    with pytest.raises(ShapeError, match="same number of rows"):
        approximate_knn(q, 4, reference=ref, exclude_self=True)
    with pytest.raises(ShapeError, match="number of features"):
        approximate_knn(q[:, :3], 4, reference=ref)


@needs_faiss
def test_low_rank_data_indexed_in_principal_coordinates() -> None:
    sphere, _ = benchmark_manifold("M1_Sphere", 3000, seed=0, dtype=torch.float32)
    x = random_isometric_embedding(sphere, 60, seed=1)  # rank 11 in R^60
    reduced = approximate_knn(x, 10, options=ANNOptions(recall_queries=300, seed=3))
    full = approximate_knn(x, 10, options=ANNOptions(recall_queries=300, reduce_rank=False))
    assert reduced.recall_queries == 300
    assert float(reduced.recall) >= 0.95 and float(full.recall) >= 0.95
    exact = knn(x, 10)
    assert float((reduced.indices == exact.indices).float().mean()) >= 0.9


@needs_faiss
def test_small_beam_lowers_the_reported_recall_truthfully() -> None:
    x = _gauss(1500, 16)
    low = approximate_knn(
        x, 20, options=ANNOptions(m=4, ef_construction=8, ef_search=1, recall_queries=1500)
    )
    exact = knn(x, 20)
    assert float(low.recall) == pytest.approx(_true_recall(low, exact, "euclidean"))
    assert float(low.recall) < 1.0


@needs_faiss
def test_recall_sample_is_seeded_and_inputs_accepted() -> None:
    x = _gauss(1200, 8)
    a = approximate_knn(x, 5, options=ANNOptions(recall_queries=100, seed=7))
    b = approximate_knn(x.numpy().astype(np.float64), 5, options=ANNOptions(recall_queries=100))
    assert a.recall_queries == b.recall_queries == 100
    assert float(a.recall) >= 0.9 and float(b.recall) >= 0.9
    assert b.values.dtype == torch.float64


@needs_faiss
def test_knn_keyword_selects_the_backend_and_exact_default_is_unchanged() -> None:
    x = _gauss(300, 5)
    exact = knn(x, 4)
    assert type(exact) is KNNResult
    torch.testing.assert_close(knn(x, 4, neighbors="exact").values, exact.values)
    approx = knn(x, 4, neighbors="approximate")
    assert isinstance(approx, ApproximateKNNResult)
    custom = knn(x, 4, neighbors=ANNOptions(ef_search=64, recall_queries=50))
    assert isinstance(custom, ApproximateKNNResult) and custom.recall_queries == 50


def test_bad_options_refused() -> None:
    x = _gauss(50, 3)
    with pytest.raises(InvalidOptionError, match="neighbors must be one of"):
        knn(x, 3, neighbors="approx")
    with pytest.raises(InvalidOptionError, match="neighbors must be one of"):
        check_neighbor_search(None)
    with pytest.raises(InvalidOptionError, match="m"):
        ANNOptions(m=1)
    with pytest.raises(InvalidOptionError, match="recall_queries"):
        ANNOptions(recall_queries=0)
    with pytest.raises(InputTypeError, match="ef_search"):
        ANNOptions(ef_search=2.5)  # type: ignore[arg-type]
    assert check_neighbor_search("exact") is None
    assert check_neighbor_search("approximate") == ANNOptions()
    opts = ANNOptions(m=8)
    assert check_neighbor_search(opts) is opts


@needs_faiss
def test_bad_arguments_of_the_search_refused() -> None:
    x = _gauss(20, 3)
    with pytest.raises(InvalidOptionError, match="k must be at most 19"):
        approximate_knn(x, 20)
    with pytest.raises(InvalidOptionError, match="metric"):
        approximate_knn(x, 2, metric="manhattan")
    with pytest.raises(InputTypeError, match="ANNOptions"):
        approximate_knn(x, 2, options={"m": 8})  # type: ignore[arg-type]


def test_missing_faiss_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss now raises ImportError
    with pytest.raises(ImportError, match=r"pip install subspaces\[ann\]"):
        approximate_knn(_gauss(10, 2), 2)


def test_recall_of_weights_by_sample_size() -> None:
    one = torch.tensor(1.0, dtype=torch.float64)
    a = ApproximateKNNResult(torch.zeros(1, 1), torch.zeros(1, 1, dtype=torch.long), one, 30)
    b = a._replace(recall=torch.tensor(0.6, dtype=torch.float64), recall_queries=10)
    recall, count = recall_of(a, b)
    assert count == 40 and float(recall) == pytest.approx(0.9)
    value = ApproximateValue(torch.tensor(2.0, dtype=torch.float64), recall, count)
    assert value.as_dict() == {"value": 2.0, "recall": pytest.approx(0.9), "recall_queries": 40}
    assert float(value) == 2.0
