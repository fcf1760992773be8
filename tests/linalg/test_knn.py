"""Exact blocked k-nearest neighbours against brute force and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from subspaces._checks import DegenerateInputError, InvalidOptionError, ShapeError
from subspaces.linalg.knn import KNN_METRICS, KNNResult, _default_block_size, knn

METRICS = list(KNN_METRICS)


def _brute(
    x: torch.Tensor, ref: torch.Tensor, k: int, metric: str, exclude_self: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Full float64 distance matrix, stable sort: ties by lower index."""
    q, r = x.double(), ref.double()
    if metric == "inner_product":
        key = -(q @ r.T)
    elif metric == "cosine":
        qn = q / q.norm(dim=1, keepdim=True)
        rn = r / r.norm(dim=1, keepdim=True)
        key = 1.0 - qn @ rn.T
    else:
        diff = q[:, None, :] - r[None, :, :]
        key = (diff * diff).sum(-1)
        if metric == "euclidean":
            key = key.sqrt()
    if exclude_self:
        key.fill_diagonal_(torch.inf)
    vals, idx = key.sort(dim=1, stable=True)
    vals, idx = vals[:, :k], idx[:, :k]
    return (-vals if metric == "inner_product" else vals), idx


@pytest.fixture
def data() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(103, 7, generator=g) * 2 + 1


@pytest.mark.parametrize("rerank", [True, False], ids=["rerank", "screen-only"])
@pytest.mark.parametrize("block_size", [1, 10, 1000], ids=lambda b: f"block{b}")
@pytest.mark.parametrize("metric", METRICS)
def test_matches_brute_force(
    data: torch.Tensor, metric: str, block_size: int, rerank: bool
) -> None:
    vals, idx = knn(data, 5, metric=metric, block_size=block_size, rerank=rerank)
    ref_vals, ref_idx = _brute(data, data, 5, metric, exclude_self=True)
    assert torch.equal(idx, ref_idx)
    assert vals.dtype == torch.float64
    # re-ranked values are float64-exact on the float32 data; screen-only values carry
    # float32 rounding of ||a||² + ||b||² − 2a·b (~1e-7 relative to norms ~10)
    tol = 1e-12 if rerank else 1e-4
    torch.testing.assert_close(vals, ref_vals, rtol=tol, atol=tol)


@pytest.mark.parametrize(
    ("metric", "sk_metric"), [("euclidean", "euclidean"), ("cosine", "cosine")]
)
def test_matches_sklearn(data: torch.Tensor, metric: str, sk_metric: str) -> None:
    from sklearn.neighbors import NearestNeighbors

    x = data.double().numpy()
    nn = NearestNeighbors(n_neighbors=6, metric=sk_metric, algorithm="brute").fit(x)
    sk_dist, sk_idx = nn.kneighbors(x)
    vals, idx = knn(data.double(), 5, metric=metric, block_size=13)
    # sklearn returns self first (distance 0) on data without duplicates
    assert np.array_equal(sk_idx[:, 0], np.arange(len(x)))
    assert np.array_equal(idx.numpy(), sk_idx[:, 1:])
    np.testing.assert_allclose(vals.numpy(), sk_dist[:, 1:], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("k", [1, 102], ids=["k1", "k=n-1"])
@pytest.mark.parametrize("metric", METRICS)
def test_extreme_k(data: torch.Tensor, metric: str, k: int) -> None:
    vals, idx = knn(data, k, metric=metric, block_size=17)
    ref_vals, ref_idx = _brute(data, data, k, metric, exclude_self=True)
    assert torch.equal(idx, ref_idx)
    torch.testing.assert_close(vals, ref_vals, rtol=1e-12, atol=1e-12)


def test_k_equal_n_minus_one_lists_every_other_point(data: torch.Tensor) -> None:
    _, idx = knn(data, data.shape[0] - 1, block_size=7)
    rows = torch.arange(data.shape[0])
    assert not bool((idx == rows[:, None]).any())
    assert torch.equal(idx.sort(dim=1).values.sum(1), rows.sum() - rows)


@pytest.mark.parametrize("metric", METRICS)
def test_float64_input(data: torch.Tensor, metric: str) -> None:
    x = data.double()
    vals, idx = knn(x, 4, metric=metric, block_size=9)
    ref_vals, ref_idx = _brute(x, x, 4, metric, exclude_self=True)
    assert torch.equal(idx, ref_idx)
    torch.testing.assert_close(vals, ref_vals, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("metric", METRICS)
def test_numpy_input(data: torch.Tensor, metric: str) -> None:
    out = knn(data.numpy(), 3, metric=metric)
    assert isinstance(out, KNNResult)
    assert torch.equal(out.indices, knn(data, 3, metric=metric).indices)


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
def test_duplicates_excluded_by_index_not_value(metric: str) -> None:
    g = torch.Generator().manual_seed(1)
    base = torch.randn(10, 5, generator=g)
    x = torch.cat([base, base[:3]])  # rows 10, 11, 12 duplicate rows 0, 1, 2
    vals, idx = knn(x, 2, metric=metric, block_size=4)
    for i, twin in [(0, 10), (1, 11), (2, 12), (10, 0), (11, 1), (12, 2)]:
        assert int(idx[i, 0]) == twin
        assert float(vals[i, 0]) == pytest.approx(0.0, abs=1e-12)
    assert not bool((idx == torch.arange(13)[:, None]).any())


@pytest.mark.parametrize("block_size", [1, 3, 50], ids=lambda b: f"block{b}")
@pytest.mark.parametrize("metric", METRICS)
def test_ties_go_to_the_lower_index(metric: str, block_size: int) -> None:
    x = torch.ones(40, 3)  # every point is every other's duplicate
    vals, idx = knn(x, 5, metric=metric, block_size=block_size)
    for i in (0, 1, 4, 39):
        expected = [j for j in range(40) if j != i][:5]
        assert idx[i].tolist() == expected
    assert bool((vals == vals[:, :1]).all())


def test_ties_beyond_the_candidate_margin_go_to_the_lower_index() -> None:
    # 30 duplicates of one point plus a far cloud: the tie group is larger than k + extra
    g = torch.Generator().manual_seed(2)
    x = torch.cat([torch.randn(20, 4, generator=g) * 10 + 50, torch.zeros(30, 4) + 1.0])
    _, idx = knn(x, 3, block_size=7)
    assert idx[49].tolist() == [20, 21, 22]
    assert idx[20].tolist() == [21, 22, 23]


def test_common_offset_does_not_cost_precision() -> None:
    # points 1e-3 apart around a centre at distance ~1e3: ||a||² ~ 1e6, so the naive float32
    # ||a||² + ||b||² − 2a·b has errors ~0.1, far above the squared distances ~1e-6; centring
    # first (distances are translation invariant) removes the cancellation
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(60, 8, generator=g, dtype=torch.float64) * 1e-3 + 400.0).float()
    ref_vals, ref_idx = _brute(x, x, 3, "euclidean", exclude_self=True)
    sq = (x * x).sum(1)
    naive = (sq[:, None] + sq[None, :] - 2 * x @ x.T).fill_diagonal_(torch.inf)
    assert not torch.equal(naive.sort(dim=1, stable=True).indices[:, :3], ref_idx)
    for rerank in (True, False):
        vals, idx = knn(x, 3, rerank=rerank)
        assert torch.equal(idx, ref_idx)
        torch.testing.assert_close(vals, ref_vals, rtol=1e-12, atol=0.0)


def test_rerank_makes_small_distances_exact() -> None:
    # pairs 1e-4 apart in a cloud of spread 1: float32 squared distances carry errors ~1e-7,
    # i.e. ~3e-4 on a distance of 1e-4; the float64 re-scoring is exact
    g = torch.Generator().manual_seed(4)
    base = torch.randn(30, 8, generator=g)
    x = torch.cat([base, base + 1e-4 * torch.randn(30, 8, generator=g)])
    ref_vals, ref_idx = _brute(x, x, 2, "euclidean", exclude_self=True)
    vals, idx = knn(x, 2)
    assert torch.equal(idx, ref_idx)
    torch.testing.assert_close(vals, ref_vals, rtol=1e-12, atol=0.0)
    fast_vals, _ = knn(x, 2, rerank=False)
    assert float((fast_vals[:, 0] / ref_vals[:, 0] - 1).abs().max()) > 1e-2


@pytest.mark.parametrize("metric", METRICS)
def test_queries_against_a_reference(data: torch.Tensor, metric: str) -> None:
    queries, ref = data[:20] * 0.5 + 0.1, data[20:]
    vals, idx = knn(queries, 6, reference=ref, metric=metric, block_size=6)
    ref_vals, ref_idx = _brute(queries, ref, 6, metric, exclude_self=False)
    assert torch.equal(idx, ref_idx)
    torch.testing.assert_close(vals, ref_vals, rtol=1e-12, atol=1e-12)


def test_reference_of_itself_includes_self_unless_excluded(data: torch.Tensor) -> None:
    _, idx = knn(data, 1, reference=data)
    assert torch.equal(idx[:, 0], torch.arange(data.shape[0]))
    _, idx = knn(data, 1, reference=data, exclude_self=True)
    assert torch.equal(idx, knn(data, 1).indices)


def test_k_up_to_n_without_self_exclusion(data: torch.Tensor) -> None:
    _, idx = knn(data, data.shape[0], exclude_self=False, block_size=11)
    assert torch.equal(idx.sort(dim=1).values, torch.arange(103).expand(103, -1))


def test_inner_product_is_descending(data: torch.Tensor) -> None:
    vals, _ = knn(data, 10, metric="inner_product")
    assert bool((vals[:, :-1] >= vals[:, 1:]).all())


def test_default_block_size_respects_the_budget() -> None:
    b = _default_block_size(100_000, itemsize=4, memory_budget=256 * 2**20)
    assert b >= 1
    assert b * 2 * 100_000 * 4 <= 256 * 2**20
    assert _default_block_size(10**9, itemsize=8, memory_budget=1) == 1


def test_small_memory_budget_gives_the_same_answer(data: torch.Tensor) -> None:
    small = knn(data, 4, memory_budget=1)
    assert torch.equal(small.indices, knn(data, 4).indices)


# ---- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [0, -3], ids=["zero", "negative"])
def test_k_below_one(data: torch.Tensor, k: int) -> None:
    with pytest.raises(InvalidOptionError, match="k must be at least 1"):
        knn(data, k)


def test_k_too_large(data: torch.Tensor) -> None:
    with pytest.raises(InvalidOptionError, match=r"k must be at most n - 1 = 102.*got k=103"):
        knn(data, 103)


def test_k_too_large_for_reference(data: torch.Tensor) -> None:
    with pytest.raises(InvalidOptionError, match="number of reference rows, 5, got k=6"):
        knn(data, 6, reference=data[:5])


def test_k_not_integer(data: torch.Tensor) -> None:
    with pytest.raises(TypeError, match="k must be an integer"):
        knn(data, 2.5)  # type: ignore[arg-type]


def test_unknown_metric(data: torch.Tensor) -> None:
    with pytest.raises(InvalidOptionError, match="metric must be one of"):
        knn(data, 3, metric="manhattan")  # type: ignore[arg-type]


def test_reference_feature_mismatch(data: torch.Tensor) -> None:
    with pytest.raises(ShapeError, match=r"same number of features.*\(5, 3\)"):
        knn(data, 3, reference=torch.zeros(5, 3))


def test_exclude_self_needs_paired_reference(data: torch.Tensor) -> None:
    with pytest.raises(ShapeError, match="exclude_self=True pairs query i with reference row i"):
        knn(data, 3, reference=data[:50], exclude_self=True)


def test_cosine_zero_rows(data: torch.Tensor) -> None:
    x = data.clone()
    x[[3, 7]] = 0.0
    with pytest.raises(DegenerateInputError, match="2 rows of zero norm"):
        knn(x, 3, metric="cosine")


def test_block_size_must_be_positive(data: torch.Tensor) -> None:
    with pytest.raises(InvalidOptionError, match="block_size must be at least 1"):
        knn(data, 3, block_size=0)


def test_one_dimensional_input() -> None:
    with pytest.raises(ShapeError, match="must be a 2-D"):
        knn(torch.zeros(10), 3)
