"""Exact blocked k-nearest neighbors against brute force and scikit-learn."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from subspaces._checks import (
    DegenerateInputError,
    InvalidOptionError,
    NumericRangeError,
    ShapeError,
)
from subspaces.linalg import CHUNK_SIZE
from subspaces.linalg.constants import MEMORY_BUDGET, rows_within_budget
from subspaces.linalg.knn import DEFAULT_MEMORY_BUDGET, KNN_METRICS, KNNResult, knn

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
@pytest.mark.parametrize("chunk_size", [1, 10, 1000], ids=lambda b: f"block{b}")
@pytest.mark.parametrize("metric", METRICS)
def test_matches_brute_force(
    data: torch.Tensor, metric: str, chunk_size: int, rerank: bool
) -> None:
    vals, idx = knn(data, 5, metric=metric, chunk_size=chunk_size, rerank=rerank)
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
    vals, idx = knn(data.double(), 5, metric=metric, chunk_size=13)
    # sklearn returns self first (distance 0) on data without duplicates
    assert np.array_equal(sk_idx[:, 0], np.arange(len(x)))
    assert np.array_equal(idx.numpy(), sk_idx[:, 1:])
    np.testing.assert_allclose(vals.numpy(), sk_dist[:, 1:], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("k", [1, 102], ids=["k1", "k=n-1"])
@pytest.mark.parametrize("metric", METRICS)
def test_extreme_k(data: torch.Tensor, metric: str, k: int) -> None:
    vals, idx = knn(data, k, metric=metric, chunk_size=17)
    ref_vals, ref_idx = _brute(data, data, k, metric, exclude_self=True)
    assert torch.equal(idx, ref_idx)
    torch.testing.assert_close(vals, ref_vals, rtol=1e-12, atol=1e-12)


def test_k_equal_n_minus_one_lists_every_other_point(data: torch.Tensor) -> None:
    _, idx = knn(data, data.shape[0] - 1, chunk_size=7)
    rows = torch.arange(data.shape[0])
    assert not bool((idx == rows[:, None]).any())
    assert torch.equal(idx.sort(dim=1).values.sum(1), rows.sum() - rows)


@pytest.mark.parametrize("metric", METRICS)
def test_float64_input(data: torch.Tensor, metric: str) -> None:
    x = data.double()
    vals, idx = knn(x, 4, metric=metric, chunk_size=9)
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
    vals, idx = knn(x, 2, metric=metric, chunk_size=4)
    for i, twin in [(0, 10), (1, 11), (2, 12), (10, 0), (11, 1), (12, 2)]:
        assert int(idx[i, 0]) == twin
        assert float(vals[i, 0]) == pytest.approx(0.0, abs=1e-12)
    assert not bool((idx == torch.arange(13)[:, None]).any())


@pytest.mark.parametrize("chunk_size", [1, 3, 50], ids=lambda b: f"block{b}")
@pytest.mark.parametrize("metric", METRICS)
def test_ties_go_to_the_lower_index(metric: str, chunk_size: int) -> None:
    x = torch.ones(40, 3)  # every point is every other's duplicate
    vals, idx = knn(x, 5, metric=metric, chunk_size=chunk_size)
    for i in (0, 1, 4, 39):
        expected = [j for j in range(40) if j != i][:5]
        assert idx[i].tolist() == expected
    assert bool((vals == vals[:, :1]).all())


def test_ties_beyond_the_candidate_margin_go_to_the_lower_index() -> None:
    # 30 duplicates of one point plus a far cloud: the tie group is larger than k + extra
    g = torch.Generator().manual_seed(2)
    x = torch.cat([torch.randn(20, 4, generator=g) * 10 + 50, torch.zeros(30, 4) + 1.0])
    _, idx = knn(x, 3, chunk_size=7)
    assert idx[49].tolist() == [20, 21, 22]
    assert idx[20].tolist() == [21, 22, 23]


def test_common_offset_does_not_cost_precision() -> None:
    # points 1e-3 apart around a center at distance ~1e3: ||a||² ~ 1e6, so the naive float32
    # ||a||² + ||b||² − 2a·b has errors ~0.1, far above the squared distances ~1e-6; centering
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


# ---- float32 input gives the neighbors of the same numbers in float64 ------------------


def _near_tie_case(case: str) -> torch.Tensor:
    """float32 data whose neighbor gaps lie below the float32 screen's rounding."""
    g = torch.Generator().manual_seed(5)
    if case == "offset":  # cosines of rows within ~1e-6 of 1, gaps ~1e-9
        return (torch.randn(300, 8, generator=g, dtype=torch.float64) + 1e3).float()
    if case == "tight-clusters":  # 10 clusters of 40 points, spread 1e-4 around unit centers
        centers = torch.randn(10, 32, generator=g, dtype=torch.float64).repeat_interleave(40, 0)
        return (centers + 1e-4 * torch.randn(400, 32, generator=g, dtype=torch.float64)).float()
    # rows at ~1e4 with unit spread: inner products ~1e8·d resolve to ~1e1 in float32
    return (torch.randn(300, 16, generator=g, dtype=torch.float64) * 0.1 + 1e4).float()


@pytest.mark.parametrize("chunk_size", [CHUNK_SIZE, 7], ids=["one-block", "block7"])
@pytest.mark.parametrize("case", ["offset", "tight-clusters", "large-norms"])
@pytest.mark.parametrize("metric", METRICS)
def test_float32_gives_the_neighbors_of_the_same_numbers_in_float64(
    metric: str, case: str, chunk_size: int
) -> None:
    # the float32 screen cannot order these neighbors; rows whose screen is not certified
    # are searched again in float64, so the answer is that of the float64 input, bit for bit
    x = _near_tie_case(case)
    got = knn(x, 10, metric=metric, method="brute", chunk_size=chunk_size)
    want = knn(x.double(), 10, metric=metric, method="brute", chunk_size=chunk_size)
    assert torch.equal(got.indices, want.indices)
    assert torch.equal(got.values, want.values)


@pytest.mark.parametrize("metric", METRICS)
def test_float64_input_is_exact_on_near_ties(metric: str) -> None:
    # neighbor gaps of ~1e-9 are far above float64 rounding: the dense float64 reference
    # (another summation order) gives the same lists
    x = _near_tie_case("tight-clusters").double()
    _, idx = knn(x, 10, metric=metric, method="brute")
    assert torch.equal(idx, _brute(x, x, 10, metric, exclude_self=True)[1])


@pytest.mark.parametrize("metric", METRICS)
def test_float32_queries_against_a_reference_near_ties(metric: str) -> None:
    x = _near_tie_case("offset")
    queries, ref = x[:40], x[40:]
    got = knn(queries, 10, reference=ref, metric=metric, method="brute", chunk_size=16)
    want = knn(queries.double(), 10, reference=ref.double(), metric=metric, method="brute")
    assert torch.equal(got.indices, want.indices)
    assert torch.equal(got.values, want.values)


@pytest.mark.parametrize("metric", METRICS)
def test_reduced_precision_matmuls_keep_the_float64_neighbors(metric: str) -> None:
    # with TF32 / bfloat16 matmuls allowed the screen's bound is that of the reduced
    # precision: more queries take the float64 search, the answer does not change
    x = _near_tie_case("offset")
    want = knn(x.double(), 10, metric=metric, method="brute")
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        got = knn(x, 10, metric=metric, method="brute")
    finally:
        torch.set_float32_matmul_precision(previous)
    assert torch.equal(got.indices, want.indices)
    assert torch.equal(got.values, want.values)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    log_scale=st.integers(-30, 30),
    offset=st.sampled_from([0.0, 1.0, -30.0, 1e2, 1e3, 1e4]),
    spread=st.sampled_from([1.0, 1e-3]),
    k=st.integers(1, 12),
    metric=st.sampled_from(METRICS),
)
def test_float32_equals_float64_over_offsets_and_scales(
    seed: int, log_scale: int, offset: float, spread: float, k: int, metric: str
) -> None:
    # clusters of varying tightness, shifted by `offset` and scaled by 10**log_scale: the
    # float32 input has the float64 input's neighbors and values (the same numbers)
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(6, 5, generator=g, dtype=torch.float64).repeat_interleave(12, 0)
    x = centers + spread * torch.randn(72, 5, generator=g, dtype=torch.float64) + offset
    x = (x * 10.0**log_scale).float()
    got = knn(x, k, metric=metric, method="brute", chunk_size=32)
    want = knn(x.double(), k, metric=metric, method="brute", chunk_size=32)
    assert torch.equal(got.indices, want.indices)
    assert torch.equal(got.values, want.values)


@pytest.mark.parametrize("metric", METRICS)
def test_queries_against_a_reference(data: torch.Tensor, metric: str) -> None:
    queries, ref = data[:20] * 0.5 + 0.1, data[20:]
    vals, idx = knn(queries, 6, reference=ref, metric=metric, chunk_size=6)
    ref_vals, ref_idx = _brute(queries, ref, 6, metric, exclude_self=False)
    assert torch.equal(idx, ref_idx)
    torch.testing.assert_close(vals, ref_vals, rtol=1e-12, atol=1e-12)


def test_reference_of_itself_includes_self_unless_excluded(data: torch.Tensor) -> None:
    _, idx = knn(data, 1, reference=data)
    assert torch.equal(idx[:, 0], torch.arange(data.shape[0]))
    _, idx = knn(data, 1, reference=data, exclude_self=True)
    assert torch.equal(idx, knn(data, 1).indices)


def test_k_up_to_n_without_self_exclusion(data: torch.Tensor) -> None:
    _, idx = knn(data, data.shape[0], exclude_self=False, chunk_size=11)
    assert torch.equal(idx.sort(dim=1).values, torch.arange(103).expand(103, -1))


def test_inner_product_is_descending(data: torch.Tensor) -> None:
    vals, _ = knn(data, 10, metric="inner_product")
    assert bool((vals[:, :-1] >= vals[:, 1:]).all())


def test_knn_blocks_use_the_shared_memory_budget() -> None:
    assert DEFAULT_MEMORY_BUDGET == MEMORY_BUDGET == 256 * 2**20
    b = rows_within_budget(1 << 20, 2 * 100_000 * 4)  # float32 score row + top-k workspace
    assert b >= 1
    assert b * 2 * 100_000 * 4 <= MEMORY_BUDGET


def test_chunk_size_default_is_the_shared_constant(data: torch.Tensor) -> None:
    import inspect

    assert inspect.signature(knn).parameters["chunk_size"].default == CHUNK_SIZE
    a = knn(data, 4, memory_budget=1)  # one query row per block
    b = knn(data, 4, chunk_size=3)
    torch.testing.assert_close(a.values, b.values)
    torch.testing.assert_close(a.indices, b.indices)


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


def test_chunk_size_must_be_positive(data: torch.Tensor) -> None:
    with pytest.raises(InvalidOptionError, match="chunk_size must be at least 1"):
        knn(data, 3, chunk_size=0)


def test_one_dimensional_input() -> None:
    with pytest.raises(ShapeError, match="must be a 2-D"):
        knn(torch.zeros(10), 3)


# ---- tree path (method="tree" / "auto") -------------------------------------------------

TREE_METRICS = ["euclidean", "sqeuclidean", "cosine"]


def _low_rank(
    n: int, rank: int, dim: int, seed: int, *, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """A ``rank``-dim Gaussian rotated into R^dim and shifted (float64 maths, then cast)."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
    z = torch.randn(n, rank, generator=g, dtype=torch.float64) * torch.linspace(3, 1, rank)
    shift = torch.randn(dim, generator=g, dtype=torch.float64)
    return (z @ q[:, :rank].T + shift).to(dtype)


def _same_result(a: KNNResult, b: tuple[torch.Tensor, torch.Tensor]) -> None:
    # the two paths re-score the same pairs in float64 from the same data (equal to the
    # last bit in practice); the full-matrix reference _brute sums in another order, and its
    # cosine (from normalized rows) is off by ~1e-16 absolute near 0
    assert torch.equal(a.indices, b[1])
    torch.testing.assert_close(a.values, b[0], rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("metric", TREE_METRICS)
def test_tree_matches_brute_on_low_rank_data(metric: str, dtype: torch.dtype) -> None:
    x = _low_rank(300, 5, 60, seed=10, dtype=dtype)
    tree = knn(x, 6, metric=metric, method="tree")
    brute = knn(x, 6, metric=metric, method="brute")
    _same_result(tree, brute)
    _same_result(tree, _brute(x, x, 6, metric, exclude_self=True))


@pytest.mark.parametrize("metric", TREE_METRICS)
def test_tree_matches_brute_on_low_dimensional_data(metric: str) -> None:
    g = torch.Generator().manual_seed(11)
    x = torch.randn(400, 3, generator=g) * torch.tensor([5.0, 1.0, 0.2]) + 2.0
    _same_result(knn(x, 4, metric=metric, method="tree"), knn(x, 4, metric=metric, method="brute"))


def test_tree_values_are_bitwise_those_of_brute_force() -> None:
    x = _low_rank(200, 4, 30, seed=12)
    tree, brute = knn(x, 5, method="tree"), knn(x, 5, method="brute")
    assert torch.equal(tree.indices, brute.indices)
    assert torch.equal(tree.values, brute.values)


@pytest.mark.parametrize("metric", TREE_METRICS)
def test_tree_queries_against_a_reference(metric: str) -> None:
    x = _low_rank(250, 4, 40, seed=13)
    queries, ref = x[:50] * 0.5, x[50:]  # scaling keeps them in the linear span, not affine
    tree = knn(queries, 7, reference=ref, metric=metric, method="tree")
    _same_result(tree, _brute(queries, ref, 7, metric, exclude_self=False))


def test_tree_queries_off_the_subspace() -> None:
    # full-rank queries against low-rank reference: the subspace spans both, still exact
    ref = _low_rank(300, 3, 20, seed=14)
    queries = torch.randn(30, 20, generator=torch.Generator().manual_seed(15))
    tree = knn(queries, 5, reference=ref, method="tree")
    _same_result(tree, _brute(queries, ref, 5, "euclidean", exclude_self=False))


def test_tree_exclude_self_with_a_paired_reference() -> None:
    x = _low_rank(120, 3, 10, seed=16)
    tree = knn(x, 4, reference=x.clone(), exclude_self=True, method="tree")
    _same_result(tree, _brute(x, x, 4, "euclidean", exclude_self=True))


@pytest.mark.parametrize("metric", TREE_METRICS)
def test_tree_duplicates_excluded_by_index_not_value(metric: str) -> None:
    base = _low_rank(40, 3, 12, seed=17)
    x = torch.cat([base, base[:5], base[:5], base[:5]])  # rows 0..4 have three copies each
    tree = knn(x, 3, metric=metric, method="tree")
    # (not the full-matrix _brute: its cosine of a duplicate pair is ±1e-16, not 0)
    _same_result(tree, knn(x, 3, metric=metric, method="brute"))
    assert not bool((tree.indices == torch.arange(x.shape[0])[:, None]).any())
    assert tree.indices[0].tolist() == [40, 45, 50]


@pytest.mark.parametrize("metric", TREE_METRICS)
def test_tree_ties_go_to_the_lower_index(metric: str) -> None:
    x = torch.ones(40, 3)  # every point is every other's duplicate: one tie group of 40
    vals, idx = knn(x, 5, metric=metric, method="tree")
    for i in (0, 1, 4, 39):
        assert idx[i].tolist() == [j for j in range(40) if j != i][:5]
    assert bool((vals == 0).all())


def test_tree_tie_groups_larger_than_the_candidate_margin() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.cat([torch.randn(20, 4, generator=g) * 10 + 50, torch.zeros(30, 4) + 1.0])
    _, idx = knn(x, 3, method="tree")
    assert idx[49].tolist() == [20, 21, 22]
    assert idx[20].tolist() == [21, 22, 23]


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean"])
def test_tree_exact_ties_on_a_grid(metric: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # an integer grid in a coordinate plane of R^9, shifted by integers: every distance is
    # exact in float arithmetic, so 4 neighbors tie at 1 and 4 at sqrt(2) around k = 6
    a, b = torch.meshgrid(torch.arange(9.0), torch.arange(7.0), indexing="ij")
    x = torch.zeros(63, 9)
    x[:, 2], x[:, 5] = a.reshape(-1), b.reshape(-1)
    x += torch.arange(9.0) * 3
    seen = _count_ball_searches(monkeypatch)
    for k in (1, 3, 4, 6, 8):
        tree = knn(x, k, metric=metric, method="tree")
        _same_result(tree, _brute(x, x, k, metric, exclude_self=True))
    assert sum(seen) > 0  # the ties at the k-th place were settled by the ball search


@pytest.mark.parametrize("k", [1, 119], ids=["k1", "k=n-1"])
def test_tree_extreme_k(k: int) -> None:
    x = _low_rank(120, 2, 6, seed=18)
    _same_result(knn(x, k, method="tree"), _brute(x, x, k, "euclidean", exclude_self=True))


def test_tree_on_full_rank_data_is_still_exact() -> None:
    x = torch.randn(150, 8, generator=torch.Generator().manual_seed(19))
    _same_result(knn(x, 5, method="tree", chunk_size=16), knn(x, 5, method="brute"))


def _count_ball_searches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the queries sent to the tree path's ball search."""
    import subspaces.linalg.knn as knn_module

    seen: list[int] = []
    original = knn_module._ball_rerank

    def counting(tree: Any, points: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        seen.append(points.shape[0])
        return original(tree, points, *args, **kwargs)

    monkeypatch.setattr(knn_module, "_ball_rerank", counting)
    return seen


def test_tree_with_a_too_small_subspace_is_still_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    # force a 2-dim projection of 5-dim data: distances are under-estimated, most queries
    # fail the certificate and go to the ball search, and the answer stays exact
    from subspaces.linalg.knn import _fit_subspace, _knn_tree, _Subspace

    seen = _count_ball_searches(monkeypatch)
    x = _low_rank(200, 5, 15, seed=20, dtype=torch.float64)
    sub = _fit_subspace(x, x, "euclidean")
    small = _Subspace(sub.center, sub.basis[:, :2], sub.max_raw, sub.max_geometry)
    got = _knn_tree(
        x, x, 4, metric="euclidean", exclude_self=True, chunk_size=CHUNK_SIZE, subspace=small
    )
    _same_result(got, _brute(x, x, 4, "euclidean", exclude_self=True))
    assert sum(seen) > 100


def test_tree_cosine_on_a_linear_subspace() -> None:
    x = _low_rank(200, 4, 30, seed=21)
    x = x - x.mean(dim=0)  # a linear (not affine) subspace: rank 4 after normalizing
    _same_result(
        knn(x, 5, metric="cosine", method="tree"), _brute(x, x, 5, "cosine", exclude_self=True)
    )


@pytest.mark.parametrize(
    ("dtype", "offset", "noise", "expected"),
    [
        (torch.float32, 0.0, 0.0, 5),
        (torch.float64, 0.0, 0.0, 5),
        (torch.float32, 1e3, 0.0, 5),  # float32 storage noise ~1e-4 in every direction
        (torch.float64, 1e3, 0.0, 5),
        (torch.float64, 0.0, 1e-6, 60),  # real variance in every direction
        (torch.float32, 0.0, 1e-3, 60),
    ],
    ids=["f32", "f64", "f32-offset", "f64-offset", "f64-noisy", "f32-noisy"],
)
def test_numerical_rank_of_embedded_data(
    dtype: torch.dtype, offset: float, noise: float, expected: int
) -> None:
    from subspaces.linalg.knn import _fit_subspace

    g = torch.Generator().manual_seed(23)
    x = _low_rank(500, 5, 60, seed=22, dtype=torch.float64) + offset * torch.randn(60, generator=g)
    x = (x + noise * torch.randn(x.shape, generator=g, dtype=torch.float64)).to(dtype)
    assert _fit_subspace(x, x, "euclidean").rank == expected


def test_auto_takes_the_tree_for_low_rank_data() -> None:
    from subspaces.linalg.knn import _select_method

    x = _low_rank(5000, 5, 60, seed=24)
    how, sub = _select_method(x, x, "euclidean", "auto", 3)
    assert how == "tree"
    assert sub is not None and sub.rank == 5
    _same_result(knn(x, 3), knn(x, 3, method="brute"))


@pytest.mark.parametrize(
    ("case", "metric"),
    [
        ("full-rank", "euclidean"),
        ("low-rank", "inner_product"),
        ("small", "euclidean"),
        ("wide", "euclidean"),
    ],
)
def test_auto_falls_back_to_brute_force(case: str, metric: str) -> None:
    from subspaces.linalg.knn import _select_method

    g = torch.Generator().manual_seed(25)
    x = {
        "full-rank": lambda: torch.randn(5000, 60, generator=g),
        "low-rank": lambda: _low_rank(5000, 5, 60, seed=26),
        "small": lambda: _low_rank(500, 5, 60, seed=26),
        "wide": lambda: _low_rank(4100, 5, 600, seed=26),
    }[case]()
    assert _select_method(x, x, metric, "auto", 3) == ("brute", None)


@pytest.mark.parametrize(("k", "expected"), [(2, "tree"), (10, "brute"), (40, "brute")])
def test_auto_rank_threshold_depends_on_k(k: int, expected: str) -> None:
    # rank 11 (the benchmark's 10-sphere in R^100): the tree wins for TwoNN's k = 2 only
    from subspaces.linalg.knn import _select_method

    x = _low_rank(4200, 11, 40, seed=28)
    assert _select_method(x, x, "euclidean", "auto", k)[0] == expected


def test_auto_rank_8_takes_the_tree_for_large_k() -> None:
    from subspaces.linalg.knn import _select_method

    x = _low_rank(4200, 8, 40, seed=29)
    assert _select_method(x, x, "euclidean", "auto", 50)[0] == "tree"


def test_auto_on_small_inputs_keeps_the_screen_values() -> None:
    # below the size threshold "auto" is the blocked search: rerank=False still returns the
    # float32 screening values
    x = _low_rank(100, 3, 10, seed=27)
    fast = knn(x, 2, rerank=False)
    assert torch.equal(fast.values, knn(x, 2, rerank=False, method="brute").values)


def test_tree_rejects_inner_product(data: torch.Tensor) -> None:
    with pytest.raises(InvalidOptionError, match="method='tree' supports metric"):
        knn(data, 3, metric="inner_product", method="tree")


def test_unknown_method(data: torch.Tensor) -> None:
    with pytest.raises(InvalidOptionError, match="method must be one of"):
        knn(data, 3, method="ball")  # type: ignore[arg-type]


def test_tree_cosine_zero_rows(data: torch.Tensor) -> None:
    x = data.clone()
    x[5] = 0.0
    with pytest.raises(DegenerateInputError, match="1 rows of zero norm"):
        knn(x, 3, metric="cosine", method="tree")


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    rank=st.integers(1, 6),
    k=st.integers(1, 9),
    n_dup=st.integers(0, 15),
    metric=st.sampled_from(TREE_METRICS),
)
def test_tree_equals_brute_force_property(
    seed: int, rank: int, k: int, n_dup: int, metric: str
) -> None:
    # low-rank data in R^12 with some rows repeated (ties, duplicates of duplicates)
    x = _low_rank(60, rank, 12, seed=seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.cat([x, x[torch.randint(0, 60, (n_dup,), generator=g)]])
    _same_result(knn(x, k, metric=metric, method="tree"), knn(x, k, metric=metric, method="brute"))


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine", "inner_product"])
@pytest.mark.parametrize("scale", [1e-30, 1e-25, 1e20, 1e30], ids=lambda s: f"{s:g}")
def test_float32_at_extreme_scales_finds_the_same_neighbors(metric: str, scale: float) -> None:
    # an exact power of two brings the data into range; values come back in the data's units
    g = torch.Generator().manual_seed(11)
    x = torch.randn(120, 6, generator=g, dtype=torch.float64)
    ref = knn(x.float(), 4, metric=metric, method="brute")
    got = knn((x * scale).float(), 4, metric=metric, method="brute")
    truth = knn(x * scale, 4, metric=metric, method="brute")
    assert torch.equal(got.indices, ref.indices)
    torch.testing.assert_close(got.values, truth.values, rtol=1e-6, atol=0.0)


def test_float64_beyond_the_supported_magnitudes_is_refused() -> None:
    x = torch.randn(20, 3, dtype=torch.float64) * 1e200
    with pytest.raises(NumericRangeError, match=r"largest magnitude .*rescale x"):
        knn(x, 2, metric="sqeuclidean")
