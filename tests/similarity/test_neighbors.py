"""Neighborhood similarity measures: blocked versions against dense n × n references,
invariances, bounds and errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from subspaces._checks import DegenerateInputError, InvalidOptionError, ShapeError
from subspaces.linalg import CHUNK_SIZE
from subspaces.similarity.cknna import cknna
from subspaces.similarity.neighbors import (
    knn_jaccard,
    mutual_knn,
    neighbor_lists,
    rank_similarity,
    second_order_cosine_similarity,
)

Measure = Callable[..., torch.Tensor]
SET_MEASURES: dict[str, Measure] = {
    "mutual_knn": mutual_knn,
    "knn_jaccard": knn_jaccard,
    "rank_similarity": rank_similarity,
}
ALL_MEASURES: dict[str, Measure] = {
    **SET_MEASURES,
    "socs": second_order_cosine_similarity,
    "cknna": cknna,
}


# ---- dense n × n references, written from the definitions -------------------------------


def _dense_key(t: torch.Tensor, metric: str) -> torch.Tensor:
    """n × n matrix, larger = nearer, float64."""
    t = t.double()
    if metric == "cosine":
        tn = t / t.norm(dim=1, keepdim=True)
        return tn @ tn.T
    if metric == "inner_product":
        return t @ t.T
    return -torch.cdist(t, t)


def _dense_neighbors(t: torch.Tensor, k: int, metric: str, exclude_self: bool = True) -> list:
    key = _dense_key(t, metric)
    if exclude_self:
        key.fill_diagonal_(-torch.inf)
    return key.sort(dim=1, descending=True, stable=True).indices[:, :k].tolist()


def _dense_mutual_knn(x, y, k, metric="cosine") -> float:
    nx, ny = _dense_neighbors(x, k, metric), _dense_neighbors(y, k, metric)
    return sum(len(set(a) & set(b)) for a, b in zip(nx, ny, strict=True)) / (k * len(nx))


def _dense_jaccard(x, y, k, metric="cosine") -> float:
    nx, ny = _dense_neighbors(x, k, metric), _dense_neighbors(y, k, metric)
    terms = [len(set(a) & set(b)) / len(set(a) | set(b)) for a, b in zip(nx, ny, strict=True)]
    return sum(terms) / len(terms)


def _dense_rank_similarity(x, y, k, metric="cosine") -> float:
    nx, ny = _dense_neighbors(x, k, metric), _dense_neighbors(y, k, metric)
    scores = []
    for a, b in zip(nx, ny, strict=True):
        shared = set(a) & set(b)
        if not shared:
            scores.append(0.0)
            continue
        total = 0.0
        for j in shared:
            ra, rb = a.index(j) + 1, b.index(j) + 1
            total += 2.0 / ((1 + abs(ra - rb)) * (ra + rb))
        scores.append(total / sum(1.0 / r for r in range(1, len(shared) + 1)))
    return sum(scores) / len(scores)


def _dense_socs(x, y, k, method="similarity") -> float:
    cx, cy = _dense_key(x, "cosine"), _dense_key(y, "cosine")
    nx, ny = _dense_neighbors(x, k, "cosine"), _dense_neighbors(y, k, "cosine")
    out = []
    for i, (a, b) in enumerate(zip(nx, ny, strict=True)):
        union = sorted(set(a) | set(b))
        sx, sy = cx[i, union], cy[i, union]
        if method == "distance":
            sx, sy = 1 - sx, 1 - sy
        out.append(float(sx @ sy / (sx.norm() * sy.norm())))
    return sum(out) / len(out)


# ---- data --------------------------------------------------------------------------------


def _pair(seed: int, n: int = 60, d1: int = 6, d2: int = 5, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d1, generator=g, dtype=torch.float64)
    y = torch.tanh(x @ torch.randn(d1, d2, generator=g, dtype=torch.float64))
    y = y + 0.3 * torch.randn(n, d2, generator=g, dtype=torch.float64)
    return x.to(dtype), y.to(dtype)


@pytest.fixture
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    return _pair(0)


def _orthogonal(d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    return q


# ---- agreement with the dense references -------------------------------------------------


DENSE_SET = {
    "mutual_knn": _dense_mutual_knn,
    "knn_jaccard": _dense_jaccard,
    "rank_similarity": _dense_rank_similarity,
}


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "inner_product"])
@pytest.mark.parametrize("k", [1, 5, 59], ids=lambda k: f"k{k}")
@pytest.mark.parametrize("name", list(SET_MEASURES))
def test_set_measures_match_dense(pair: tuple, name: str, k: int, metric: str) -> None:
    x, y = pair
    got = SET_MEASURES[name](x, y, k=k, metric=metric, chunk_size=7)
    assert got.dtype == torch.float64
    assert got.ndim == 0
    # both count the same integers; only the float64 summation order differs
    assert float(got) == pytest.approx(DENSE_SET[name](x, y, k, metric), abs=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_set_measures_float32_input(dtype: torch.dtype) -> None:
    x, y = _pair(1, dtype=dtype)
    assert float(mutual_knn(x, y, k=4)) == pytest.approx(_dense_mutual_knn(x, y, 4), abs=1e-12)


@pytest.mark.parametrize("method", ["similarity", "distance"])
@pytest.mark.parametrize("k", [1, 6, 59], ids=lambda k: f"k{k}")
def test_socs_matches_dense(pair: tuple, k: int, method: str) -> None:
    x, y = pair
    got = second_order_cosine_similarity(x, y, k=k, method=method, chunk_size=9)
    # float64 cosines from gathered rows vs from a dense Gram: ~1e-15 apart
    assert float(got) == pytest.approx(_dense_socs(x, y, k, method), abs=1e-12)


# ---- properties --------------------------------------------------------------------------

seeds = st.integers(0, 2**31 - 1)
sizes = st.integers(12, 40)
neighbors = st.integers(1, 8)
settings_fast = settings(max_examples=25, deadline=None)


def _value(name: str, x: torch.Tensor, y: torch.Tensor, k: int, **kw) -> float:
    if name == "cknna":
        k = max(k, 2)
    return float(ALL_MEASURES[name](x, y, k=k, **kw))


@pytest.mark.parametrize("name", list(ALL_MEASURES))
@settings_fast
@given(seed=seeds, n=sizes, k=neighbors)
def test_invariant_to_orthogonal_transform_and_isotropic_scaling(
    name: str, seed: int, n: int, k: int
) -> None:
    x, y = _pair(seed, n=n)
    xt = 3.7 * x @ _orthogonal(x.shape[1], seed + 1)
    yt = 0.02 * y @ _orthogonal(y.shape[1], seed + 2)
    # neighbor sets are unchanged (float64, no near ties in continuous data); values to 1e-9
    assert _value(name, xt, yt, k) == pytest.approx(_value(name, x, y, k), abs=1e-9)


@pytest.mark.parametrize("name", list(SET_MEASURES))
@settings_fast
@given(seed=seeds, n=sizes, k=neighbors)
def test_euclidean_neighborhoods_are_translation_invariant(
    name: str, seed: int, n: int, k: int
) -> None:
    x, y = _pair(seed, n=n)
    shifted = _value(name, x + 5.0, y - 2.0, k, metric="euclidean")
    assert shifted == pytest.approx(_value(name, x, y, k, metric="euclidean"), abs=1e-12)


@pytest.mark.parametrize("name", list(ALL_MEASURES))
def test_cosine_neighborhoods_are_not_translation_invariant(name: str) -> None:
    # cosine neighbors of raw features change when the data move away from the origin
    x, y = _pair(3, n=40)
    assert _value(name, x + 2.0, y, 4) != pytest.approx(_value(name, x, y, 4), abs=1e-6)


@pytest.mark.parametrize("name", [*SET_MEASURES, "socs"])
@settings_fast
@given(seed=seeds, n=sizes, k=neighbors)
def test_symmetric(name: str, seed: int, n: int, k: int) -> None:
    x, y = _pair(seed, n=n)
    assert _value(name, y, x, k) == pytest.approx(_value(name, x, y, k), abs=1e-12)


@pytest.mark.parametrize("name", [*SET_MEASURES, "socs"])
@settings_fast
@given(seed=seeds, n=sizes, k=neighbors)
def test_in_unit_interval(name: str, seed: int, n: int, k: int) -> None:
    x, y = _pair(seed, n=n)
    # socs with similarity entries lies in [-1, 1]; distance entries are non-negative
    kw = {"method": "distance"} if name == "socs" else {}
    assert 0.0 <= _value(name, x, y, k, **kw) <= 1.0 + 1e-12


@pytest.mark.parametrize("name", list(ALL_MEASURES))
@settings_fast
@given(seed=seeds, n=sizes, k=neighbors)
def test_self_similarity_is_one(name: str, seed: int, n: int, k: int) -> None:
    x, _ = _pair(seed, n=n)
    assert _value(name, x, x, k) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("name", list(ALL_MEASURES))
@settings_fast
@given(seed=seeds, n=sizes, k=neighbors)
def test_permuting_samples_of_both_leaves_the_value(name: str, seed: int, n: int, k: int) -> None:
    x, y = _pair(seed, n=n)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    assert _value(name, x[perm], y[perm], k) == pytest.approx(_value(name, x, y, k), abs=1e-9)


@pytest.mark.parametrize("name", list(SET_MEASURES))
def test_unrelated_representations_score_near_chance(name: str) -> None:
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(400, 8, generator=g), torch.randn(400, 8, generator=g)
    assert _value(name, x, y, 5) < 0.1  # chance overlap is k / (n - 1) ~ 0.0125


def test_duplicates_are_neighbors_of_each_other() -> None:
    # self-exclusion by index: a duplicated sample finds its twin, not itself
    x, _ = _pair(6, n=30)
    x = torch.cat([x, x[:5]])
    assert float(mutual_knn(x, x.flip(1), k=1)) == pytest.approx(1.0)


def test_numpy_input_and_chunk_sizes_agree(pair: tuple) -> None:
    x, y = pair
    one = mutual_knn(x.numpy(), y.numpy(), k=5)
    assert float(one) == float(mutual_knn(x, y, k=5, chunk_size=1))


# ---- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ALL_MEASURES))
def test_k_at_least_n(pair: tuple, name: str) -> None:
    x, y = pair
    with pytest.raises(
        InvalidOptionError, match=r"k must be smaller than the number of samples, n = 60.*k=60"
    ):
        ALL_MEASURES[name](x, y, k=60)


@pytest.mark.parametrize("name", [*SET_MEASURES, "socs"])
def test_k_below_one(pair: tuple, name: str) -> None:
    x, y = pair
    with pytest.raises(InvalidOptionError, match="k must be at least 1, got 0"):
        ALL_MEASURES[name](x, y, k=0)


@pytest.mark.parametrize("name", list(ALL_MEASURES))
def test_mismatched_samples(pair: tuple, name: str) -> None:
    x, y = pair
    with pytest.raises(ShapeError, match=r"x has 60 rows.*y has 59"):
        ALL_MEASURES[name](x, y[:59], k=3)


@pytest.mark.parametrize("name", list(SET_MEASURES))
def test_unknown_metric(pair: tuple, name: str) -> None:
    x, y = pair
    with pytest.raises(InvalidOptionError, match="metric must be one of"):
        SET_MEASURES[name](x, y, metric="hamming")


def test_unknown_method(pair: tuple) -> None:
    x, y = pair
    with pytest.raises(InvalidOptionError, match="method must be one of"):
        second_order_cosine_similarity(x, y, method="rank")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", list(ALL_MEASURES))
def test_zero_rows_with_cosine(pair: tuple, name: str) -> None:
    x, y = pair
    x = x.clone()
    x[4] = 0.0
    with pytest.raises(DegenerateInputError, match="1 rows of zero norm"):
        _value(name, x, y, 3)


def test_socs_distance_entries_all_zero() -> None:
    # every sample has only exact duplicates as neighbors: cosine distances all 0
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    x = x.repeat_interleave(3, dim=0)
    with pytest.raises(DegenerateInputError, match="all-zero second-order vector"):
        second_order_cosine_similarity(x, x, k=2, method="distance")


@pytest.mark.parametrize("name", list(ALL_MEASURES))
def test_constant_representation(pair: tuple, name: str) -> None:
    x, y = pair
    with pytest.raises(DegenerateInputError, match="y has zero variance"):
        _value(name, x, torch.ones_like(y), 3)


def test_cknna_needs_four_samples() -> None:
    x = torch.randn(3, 2)
    with pytest.raises(ShapeError, match="at least 4"):
        cknna(x, x, k=2)


def test_chunk_size_must_be_positive(pair: tuple) -> None:
    x, y = pair
    with pytest.raises(InvalidOptionError, match="chunk_size must be at least 1"):
        mutual_knn(x, y, chunk_size=0)


# The fast exact neighbor sets (symmetric float32 blocks, near ties re-searched in float64).
def _sets(idx: torch.Tensor) -> torch.Tensor:
    return idx.sort(dim=1).values


@pytest.mark.parametrize("block", [4096, 7, 64], ids=["one-block", "block7", "block64"])
@pytest.mark.parametrize("k", [1, 5, 20])
def test_fast_cosine_sets_equal_the_exact_search(block: int, k: int) -> None:
    from subspaces.similarity.neighbors import _cosine_neighbor_sets, _neighbor_indices

    g = torch.Generator().manual_seed(k)
    x = torch.randn(150, 12, generator=g)
    torch.testing.assert_close(
        _sets(_cosine_neighbor_sets(x, k, block)), _sets(_neighbor_indices(x, k, "cosine", block))
    )


def test_fast_cosine_sets_with_duplicates_and_exact_ties() -> None:
    from subspaces.similarity.neighbors import _cosine_neighbor_sets, _neighbor_indices

    g = torch.Generator().manual_seed(0)
    base = torch.randn(40, 6, generator=g)
    x = torch.cat(
        [base, base[:10], 3 * base[10:20], torch.eye(6), -torch.eye(6)]
    )  # ties everywhere
    for k in (1, 3, 8):
        torch.testing.assert_close(
            _sets(_cosine_neighbor_sets(x, k, 16)), _sets(_neighbor_indices(x, k, "cosine", 16))
        )


def test_mutual_knn_uses_the_fast_sets_and_agrees_with_the_dense_definition() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(300, 16, generator=g)
    y = torch.tanh(x @ torch.randn(16, 10, generator=g))
    k = 7
    xn, yn = torch.nn.functional.normalize(x.double()), torch.nn.functional.normalize(y.double())
    sx, sy = xn @ xn.T, yn @ yn.T
    sx.fill_diagonal_(-torch.inf)
    sy.fill_diagonal_(-torch.inf)
    nx, ny = sx.topk(k, dim=1).indices, sy.topk(k, dim=1).indices
    overlap = torch.tensor(
        [len(set(a.tolist()) & set(b.tolist())) for a, b in zip(nx, ny, strict=True)]
    )
    assert float(mutual_knn(x, y, k=k)) == pytest.approx(
        float(overlap.double().mean() / k), abs=1e-12
    )


# ---- float32 input gives the neighbors of the same numbers in float64 ------------------


@pytest.fixture(scope="module")
def offset_digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Digits pixels in [0, 1] plus 100 (x) and a second view (y), float32 and float64.

    Every value is exact in float32 (multiples of 1/16 plus 100), so the float64 copies hold
    the same numbers. All cosines lie within ~1e-5 of 1 and many rows' k-th and (k+1)-th
    cosines are ~1e-8 apart: below the float32 screen's resolution.
    """
    datasets = pytest.importorskip("sklearn.datasets")
    pixels = torch.from_numpy(datasets.load_digits().data) / 16.0
    x64 = pixels + 100.0
    y64 = pixels[:, ::2] + 100.0  # every other pixel: a different set of neighborhoods
    x32, y32 = x64.float(), y64.float()
    assert torch.equal(x32.double(), x64) and torch.equal(y32.double(), y64)
    return x32, y32, x64, y64


def test_neighbor_lists_float32_equal_float64_on_offset_digits(offset_digits: tuple) -> None:
    x32, _, x64, _ = offset_digits
    assert torch.equal(neighbor_lists(x32, k=10), neighbor_lists(x64, k=10))


def test_fast_cosine_sets_float32_equal_float64_on_offset_digits(offset_digits: tuple) -> None:
    # all 1797 × 10 slots of the sets behind mutual_knn and knn_jaccard
    from subspaces.similarity.neighbors import _neighbor_sets

    x32, _, x64, _ = offset_digits
    assert torch.equal(
        _sets(_neighbor_sets(x32, 10, "cosine", CHUNK_SIZE)),
        _sets(_neighbor_sets(x64, 10, "cosine", CHUNK_SIZE)),
    )


@pytest.mark.parametrize("name", sorted(ALL_MEASURES))
def test_measures_float32_equal_float64_on_offset_digits(offset_digits: tuple, name: str) -> None:
    # the same neighbor sets, and kernel values computed in float64 from the same numbers:
    # equal to float64 rounding (the sums run in one order; 1e-12 leaves room for none)
    x32, y32, x64, y64 = offset_digits
    measure = ALL_MEASURES[name]
    assert float(measure(x32, y32, k=10)) == pytest.approx(
        float(measure(x64, y64, k=10)), rel=0.0, abs=1e-12
    )


@pytest.mark.parametrize("offset", [0.0, 1e2, 1e3, 1e4], ids=lambda o: f"offset{o:g}")
@pytest.mark.parametrize("spread", [1.0, 1e-2], ids=["spread1", "spread0.01"])
def test_fast_cosine_sets_float32_equal_float64_over_offsets(offset: float, spread: float) -> None:
    # clusters shifted far from the origin: every cosine agrees with its neighbors' to ~7
    # digits or more; the certified sets are those of the float64 cosines, slot for slot
    from subspaces.similarity.neighbors import _neighbor_indices, _neighbor_sets

    g = torch.Generator().manual_seed(int(offset) + 1)
    centers = torch.randn(8, 10, generator=g, dtype=torch.float64).repeat_interleave(25, 0)
    x64 = centers + spread * torch.randn(200, 10, generator=g, dtype=torch.float64) + offset
    x32 = x64.float()
    expected = _sets(_neighbor_indices(x32.double(), 6, "cosine", CHUNK_SIZE))
    assert torch.equal(_sets(_neighbor_sets(x32, 6, "cosine", 64)), expected)
    assert torch.equal(_sets(_neighbor_indices(x32, 6, "cosine", 64)), expected)
