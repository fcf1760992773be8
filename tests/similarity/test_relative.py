"""Tests of relative representations (Moschella et al., 2023)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from subspaces._checks import (
    DegenerateInputError,
    InputTypeError,
    InvalidOptionError,
    ShapeError,
    TooFewSamplesError,
)
from subspaces.similarity.relative import (
    relative_representation,
    relative_retrieval,
    relative_similarity,
    select_anchors,
)

# float64 inputs: values agree with their numpy formulas to rounding.
TOL = 1e-10
PROPERTY = settings(max_examples=25, deadline=None)
seeds = st.integers(0, 2**31 - 1)


def _data(seed: int, n: int = 20, d: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


def _orthogonal(seed: int, d: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q * np.sign(np.diag(r))


# --- select_anchors -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["random", "farthest_point", "kmeans"])
def test_select_anchors_returns_distinct_indices_in_range(method: str) -> None:
    idx = select_anchors(_data(0), n_anchors=7, method=method)
    assert idx.dtype == torch.int64
    assert idx.shape == (7,)
    assert len(set(idx.tolist())) == 7
    assert int(idx.min()) >= 0 and int(idx.max()) < 20


def test_random_anchors_are_reproducible_with_a_generator() -> None:
    first = select_anchors(_data(0), n_anchors=5, seed=torch.Generator().manual_seed(3))
    again = select_anchors(_data(0), n_anchors=5, seed=torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, again)


def test_farthest_point_starts_farthest_from_mean_then_maximizes_min_distance() -> None:
    x = np.array([[0.0], [1.0], [2.0], [10.0], [4.0]])  # mean 3.4: row 3 is farthest
    idx = select_anchors(x, n_anchors=3, method="farthest_point")
    # then row 0 (10 away from 10), then row 4 (min distance 4 to {10, 0})
    assert idx.tolist() == [3, 0, 4]


def test_farthest_point_with_duplicate_rows_still_returns_distinct_indices() -> None:
    x = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    idx = select_anchors(x, n_anchors=4, method="farthest_point")
    assert sorted(idx.tolist()) == [0, 1, 2, 3]


@PROPERTY
@given(seed=seeds, scale=st.floats(0.1, 10.0))
def test_farthest_point_is_equivariant_to_similarity_transforms(seed: int, scale: float) -> None:
    x = _data(seed)
    moved = scale * x @ _orthogonal(seed, 5) + np.random.default_rng(seed).normal(size=5)
    torch.testing.assert_close(
        select_anchors(moved, n_anchors=6, method="farthest_point"),
        select_anchors(x, n_anchors=6, method="farthest_point"),
    )


def _blobs(seed: int, k: int = 4, per: int = 15, d: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """k tight, far-apart clusters of ``per`` points; returns (points, cluster of each)."""
    rng = np.random.default_rng(seed)
    centers = 20.0 * np.eye(k, d) if k <= d else 20.0 * rng.normal(size=(k, d))
    labels = np.repeat(np.arange(k), per)
    return centers[labels] + 0.5 * rng.normal(size=(k * per, d)), labels


@pytest.mark.parametrize("seed", [0, 1, 2], ids=lambda s: f"seed{s}")
def test_kmeans_anchors_are_the_samples_nearest_each_cluster_mean(seed: int) -> None:
    x, labels = _blobs(seed)
    idx = select_anchors(x, n_anchors=4, method="kmeans", seed=torch.Generator().manual_seed(seed))
    # k-means on 4 separated blobs converges to the blob means: one anchor per blob, the
    # sample nearest its blob's mean.
    expected = set()
    for c in range(4):
        members = np.flatnonzero(labels == c)
        mean = x[members].mean(0)
        expected.add(int(members[np.argmin(((x[members] - mean) ** 2).sum(1))]))
    assert set(idx.tolist()) == expected


def test_kmeans_anchors_are_reproducible_with_a_generator() -> None:
    x = _data(0, n=60)
    first = select_anchors(x, n_anchors=8, method="kmeans", seed=torch.Generator().manual_seed(5))
    again = select_anchors(x, n_anchors=8, method="kmeans", seed=torch.Generator().manual_seed(5))
    torch.testing.assert_close(first, again)


def test_kmeans_with_duplicate_rows_still_returns_distinct_indices() -> None:
    x = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    idx = select_anchors(x, n_anchors=5, method="kmeans", seed=torch.Generator())
    assert sorted(idx.tolist()) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("k", [1, 20], ids=["one", "all"])
def test_kmeans_handles_one_and_all_samples(k: int) -> None:
    idx = select_anchors(_data(3), n_anchors=k, method="kmeans", seed=torch.Generator())
    assert sorted(idx.tolist()) == (list(range(20)) if k == 20 else idx.tolist())
    assert len(set(idx.tolist())) == k


# --- relative_representation --------------------------------------------------------------


@pytest.mark.parametrize(
    ("similarity", "order"),
    [("euclidean", 2), ("l1", 1), ("linf", np.inf)],
    ids=["euclidean", "l1", "linf"],
)
def test_distance_relative_representation_is_the_norm_of_differences(
    similarity: str, order: float
) -> None:
    x, anchors = _data(1), _data(2, n=4)
    expected = np.linalg.norm(x[:, None, :] - anchors[None], ord=order, axis=2)
    got = relative_representation(x, anchors, similarity=similarity)
    np.testing.assert_allclose(got.numpy(), expected, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("similarity", ["cosine", "linear", "euclidean", "l1", "linf"])
def test_normalize_gives_unit_relative_vectors(similarity: str) -> None:
    got = relative_representation(_data(1), _data(2, n=4), similarity=similarity, normalize=True)
    np.testing.assert_allclose(torch.linalg.vector_norm(got, dim=1).numpy(), 1.0, rtol=TOL)


@pytest.mark.parametrize("similarity", ["euclidean", "l1", "linf"])
def test_center_changes_nothing_for_distances(similarity: str) -> None:
    x, anchors = _data(1), _data(2, n=4)
    torch.testing.assert_close(
        relative_representation(x, anchors, similarity=similarity, center=True),
        relative_representation(x, anchors, similarity=similarity),
    )


def test_relative_representation_is_cosine_to_each_anchor() -> None:
    x, anchors = _data(1), _data(2, n=4)
    expected = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (
        anchors / np.linalg.norm(anchors, axis=1, keepdims=True)
    ).T
    got = relative_representation(x, anchors)
    assert got.shape == (20, 4)
    np.testing.assert_allclose(got.numpy(), expected, rtol=TOL, atol=TOL)


def test_relative_representation_linear_is_inner_products() -> None:
    x, anchors = _data(1), _data(2, n=4)
    got = relative_representation(x, anchors, similarity="linear")
    np.testing.assert_allclose(got.numpy(), x @ anchors.T, rtol=TOL, atol=TOL)


def test_relative_representation_center_subtracts_the_anchor_mean() -> None:
    x, anchors = _data(1), _data(2, n=4)
    shift = anchors.mean(0)
    expected = relative_representation(x - shift, anchors - shift)
    torch.testing.assert_close(relative_representation(x, anchors, center=True), expected)


def test_relative_representation_of_a_zero_row_is_zero() -> None:
    x = _data(1)
    x[0] = 0.0
    assert bool((relative_representation(x, _data(2, n=3))[0] == 0).all())


@PROPERTY
@given(seed=seeds, scale=st.floats(0.1, 10.0))
def test_relative_representation_invariant_to_rotation_and_scaling_of_both(
    seed: int, scale: float
) -> None:
    x, anchors = _data(seed), _data(seed + 1, n=6)
    q = scale * _orthogonal(seed, 5)
    torch.testing.assert_close(
        relative_representation(x @ q, anchors @ q),
        relative_representation(x, anchors),
        rtol=1e-9,
        atol=1e-9,
    )


@PROPERTY
@given(seed=seeds)
def test_centered_relative_representation_invariant_to_translation_of_both(seed: int) -> None:
    x, anchors = _data(seed), _data(seed + 1, n=6)
    shift = 3.0 * np.random.default_rng(seed).normal(size=5)
    torch.testing.assert_close(
        relative_representation(x + shift, anchors + shift, center=True),
        relative_representation(x, anchors, center=True),
        rtol=1e-9,
        atol=1e-9,
    )


# --- relative_similarity ------------------------------------------------------------------


def test_relative_similarity_is_mean_cosine_of_relative_vectors() -> None:
    x, y = _data(3), _data(4, d=3)
    idx = [0, 5, 7, 11]
    rx = relative_representation(x, x[idx]).numpy()
    ry = relative_representation(y, y[idx]).numpy()
    cos = (rx * ry).sum(1) / (np.linalg.norm(rx, axis=1) * np.linalg.norm(ry, axis=1))
    got = relative_similarity(x, y, anchor_indices=idx)
    assert float(got) == pytest.approx(cos.mean(), rel=TOL)
    assert got.dtype == torch.float64


def test_explicit_anchors_equal_anchor_indices() -> None:
    x, y = _data(3), _data(4, d=3)
    idx = np.array([1, 2, 9])
    assert float(relative_similarity(x, y, anchors_x=x[idx], anchors_y=y[idx])) == pytest.approx(
        float(relative_similarity(x, y, anchor_indices=idx)), rel=TOL
    )


def test_n_anchors_selects_the_same_rows_in_both_spaces() -> None:
    x, y = _data(3), _data(4, d=3)
    idx = select_anchors(x, n_anchors=6, seed=torch.Generator().manual_seed(1))
    got = relative_similarity(x, y, n_anchors=6, seed=torch.Generator().manual_seed(1))
    assert float(got) == pytest.approx(float(relative_similarity(x, y, anchor_indices=idx)))


@PROPERTY
@given(
    seed=seeds,
    scale=st.floats(0.1, 10.0),
    method=st.sampled_from(["random", "farthest_point", "kmeans"]),
)
def test_relative_similarity_of_a_rotated_scaled_copy_is_one(
    seed: int, scale: float, method: str
) -> None:
    x = _data(seed)
    y = scale * x @ _orthogonal(seed, 5)
    value = relative_similarity(
        x, y, n_anchors=5, method=method, seed=torch.Generator().manual_seed(seed)
    )
    assert float(value) == pytest.approx(1.0, abs=1e-9)


@PROPERTY
@given(seed=seeds)
def test_relative_similarity_is_symmetric_for_fixed_anchors(seed: int) -> None:
    x, y = _data(seed), _data(seed + 1, d=3)
    idx = np.random.default_rng(seed).permutation(20)[:4]
    assert float(relative_similarity(x, y, anchor_indices=idx)) == pytest.approx(
        float(relative_similarity(y, x, anchor_indices=idx)), rel=1e-12
    )


@PROPERTY
@given(seed=seeds)
def test_relative_similarity_lies_in_minus_one_one(seed: int) -> None:
    x, y = _data(seed), _data(seed + 1, d=3)
    value = float(relative_similarity(x, y, anchor_indices=[0, 1, 2]))
    assert -1.0 - TOL <= value <= 1.0 + TOL


@pytest.mark.parametrize("similarity", ["cosine", "linear", "euclidean", "l1", "linf"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_relative_similarity_of_x_with_itself_is_exactly_one(
    similarity: str, dtype: torch.dtype
) -> None:
    # float32 unit vectors summed in float64 gave 1 ± 1e-8; the self value is now exact
    g = torch.Generator().manual_seed(7)
    x = (torch.randn(200, 16, generator=g, dtype=torch.float64) * 3.0 + 1.0).to(dtype)
    for other in (x, x.clone()):
        value = relative_similarity(
            x, other, anchor_indices=torch.arange(0, 200, 9), similarity=similarity
        )
        assert float(value) == 1.0


def test_relative_similarity_counts_a_zero_relative_vector_as_zero() -> None:
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0]])
    anchors = torch.tensor([[1.0, 1.0], [2.0, 2.0]])  # row 3 is orthogonal to both
    value = relative_similarity(x, x, anchors_x=anchors, anchors_y=anchors)
    assert float(value) == 0.75


def test_centered_relative_similarity_is_invariant_to_translation() -> None:
    x, y = _data(5), _data(6, d=3)
    value = relative_similarity(x + 4.0, y, anchor_indices=[0, 3, 8], center=True)
    assert float(value) == pytest.approx(
        float(relative_similarity(x, y, anchor_indices=[0, 3, 8], center=True)), rel=1e-10
    )


# --- relative_retrieval -------------------------------------------------------------------


def _brute_force_retrieval(rx: np.ndarray, ry: np.ndarray) -> tuple[float, float]:
    ux = rx / np.linalg.norm(rx, axis=1, keepdims=True)
    uy = ry / np.linalg.norm(ry, axis=1, keepdims=True)
    scores = ux @ uy.T
    ranks = (scores >= np.diag(scores)[:, None]).sum(1)  # ties count against the query
    return float((ranks == 1).mean()), float((1.0 / ranks).mean())


@pytest.mark.parametrize("chunk_size", [1, 3, 20, 512], ids=lambda b: f"chunk{b}")
def test_relative_retrieval_matches_brute_force(chunk_size: int) -> None:
    x = _data(7)
    y = np.tanh(x @ np.random.default_rng(8).normal(size=(5, 4))) + 0.8 * _data(9, d=4)
    idx = [0, 4, 6, 13, 17]
    top1, mrr = _brute_force_retrieval(
        relative_representation(x, x[idx]).numpy(), relative_representation(y, y[idx]).numpy()
    )
    got = relative_retrieval(x, y, anchor_indices=idx, chunk_size=chunk_size)
    assert float(got.top_k[1]) == pytest.approx(top1, abs=TOL)
    assert float(got.mrr) == pytest.approx(mrr, rel=TOL)
    assert 0.0 < float(got.mrr) < 1.0


def test_relative_retrieval_of_a_rotated_copy_is_perfect() -> None:
    x = _data(10)
    got = relative_retrieval(x, 2.0 * x @ _orthogonal(1, 5), anchor_indices=[2, 3, 5, 7])
    assert float(got.top_k[1]) == 1.0
    assert float(got.mrr) == 1.0


def test_relative_retrieval_zero_relative_vectors_are_not_hits() -> None:
    # A zero row of x has a zero cosine relative vector, whose score with every row of y is
    # 0: a tie with its own counterpart, which must count as a miss, not rank 1. Rows 0-2
    # (the anchors) are retrieved perfectly from a rotated copy; rows 3-9 are zero.
    x = _data(11, n=10)
    y = x @ _orthogonal(2, 5)
    x[3:] = 0.0
    got = relative_retrieval(x, y, anchor_indices=[0, 1, 2])
    assert float(got.top_k[1]) == pytest.approx(0.3)
    assert float(got.mrr) == pytest.approx((3 + 7 / 10) / 10)


def test_relative_retrieval_duplicated_rows_tie_against_the_query() -> None:
    x = _data(12, n=6)
    x[5] = x[4]
    got = relative_retrieval(x, x, anchor_indices=[0, 1, 2])
    assert float(got.top_k[1]) == pytest.approx(4 / 6)
    assert float(got.mrr) == pytest.approx((4 + 0.5 + 0.5) / 6)


def _brute_force_top_k(rx: np.ndarray, ry: np.ndarray, k: int) -> float:
    ux = rx / np.linalg.norm(rx, axis=1, keepdims=True)
    uy = ry / np.linalg.norm(ry, axis=1, keepdims=True)
    scores = ux @ uy.T
    ranks = (scores >= np.diag(scores)[:, None]).sum(1)
    return float((ranks <= k).mean())


def test_relative_retrieval_top_k_for_every_cutoff() -> None:
    x = _data(7)
    y = np.tanh(x @ np.random.default_rng(8).normal(size=(5, 4))) + 0.8 * _data(9, d=4)
    idx = [0, 4, 6, 13, 17]
    rx = relative_representation(x, x[idx]).numpy()
    ry = relative_representation(y, y[idx]).numpy()
    got = relative_retrieval(x, y, anchor_indices=idx, ks=(5, 1, 3, 3))
    assert sorted(got.top_k) == [1, 3, 5]
    for k, value in got.top_k.items():
        assert value.dtype == torch.float64 and value.ndim == 0
        assert float(value) == pytest.approx(_brute_force_top_k(rx, ry, k), abs=TOL)
    assert sorted(relative_retrieval(x, y, anchor_indices=idx).top_k) == [1, 5]
    assert set(got.as_dict()) == {"top_k", "mrr"}


def test_relative_retrieval_rejects_bad_ks() -> None:
    with pytest.raises(InvalidOptionError, match="ks"):
        relative_retrieval(_data(0), _data(1), n_anchors=3, ks=(0,))


# --- seeds and the order of the samples ---------------------------------------------------


@pytest.mark.parametrize("method", ["random", "kmeans"])
def test_an_int_seed_repeats_the_anchors(method: str) -> None:
    x = _data(13, n=40)
    first = select_anchors(x, n_anchors=6, method=method, seed=11)
    assert torch.equal(first, select_anchors(x, n_anchors=6, method=method, seed=11))
    y = _data(14, n=40)
    a = relative_similarity(x, y, n_anchors=6, method=method, seed=11)
    assert float(a) == float(relative_similarity(x, y, n_anchors=6, method=method, seed=11))


def test_seed_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(InputTypeError, match="seed must be an integer"):
        select_anchors(_data(0), n_anchors=3, seed=1.5)  # type: ignore[arg-type]


def test_random_anchors_depend_on_the_order_of_the_rows() -> None:
    # The random subset is drawn by position: permuting the samples changes which inputs
    # are anchors, hence the value (docs/measures.md says so).
    x, y = _data(15, n=30), _data(16, n=30)
    perm = np.random.default_rng(0).permutation(30)
    before = float(relative_similarity(x, y, n_anchors=5, seed=0))
    after = float(relative_similarity(x[perm], y[perm], n_anchors=5, seed=0))
    assert before != pytest.approx(after, abs=1e-6)


def test_fixed_anchors_and_farthest_point_are_invariant_to_sample_order() -> None:
    x, y = _data(15, n=30), _data(16, n=30)
    perm = np.random.default_rng(0).permutation(30)
    inverse = np.argsort(perm)
    idx = [1, 7, 12, 20, 28]
    before = float(relative_similarity(x, y, anchor_indices=idx))
    after = float(relative_similarity(x[perm], y[perm], anchor_indices=inverse[idx].tolist()))
    assert after == pytest.approx(before, abs=1e-12)
    fp = float(relative_similarity(x, y, n_anchors=5, method="farthest_point"))
    fp_perm = float(relative_similarity(x[perm], y[perm], n_anchors=5, method="farthest_point"))
    assert fp_perm == pytest.approx(fp, abs=1e-12)


# --- errors -------------------------------------------------------------------------------


def test_select_anchors_rejects_more_anchors_than_samples() -> None:
    with pytest.raises(TooFewSamplesError, match="n_anchors=21 exceeds the 20 samples of x"):
        select_anchors(_data(0), n_anchors=21)


def test_select_anchors_rejects_unknown_method() -> None:
    with pytest.raises(
        InvalidOptionError, match="method must be one of 'random', 'farthest_point', 'kmeans'"
    ):
        select_anchors(_data(0), n_anchors=2, method="medoids")


def test_select_anchors_rejects_zero_kmeans_iterations() -> None:
    with pytest.raises(InvalidOptionError, match="max_iter must be at least 1, got 0"):
        select_anchors(_data(0), n_anchors=2, method="kmeans", max_iter=0)


def test_select_anchors_rejects_zero_anchors() -> None:
    with pytest.raises(InvalidOptionError, match="n_anchors must be at least 1, got 0"):
        select_anchors(_data(0), n_anchors=0)


def test_relative_similarity_rejects_a_single_anchor() -> None:
    with pytest.raises(InvalidOptionError, match="n_anchors must be at least 2, got 1"):
        relative_similarity(_data(0), _data(1), n_anchors=1)


def test_relative_similarity_rejects_a_single_anchor_index() -> None:
    with pytest.raises(TooFewSamplesError, match="anchor_indices holds 1 anchors"):
        relative_similarity(_data(0), _data(1), anchor_indices=[3])


def test_relative_similarity_rejects_a_single_explicit_anchor() -> None:
    x, y = _data(0), _data(1)
    with pytest.raises(TooFewSamplesError, match=r"anchors_x has 1 row .* at least 2 anchors"):
        relative_similarity(x, y, anchors_x=x[:1], anchors_y=y[:1])


def test_relative_representation_rejects_anchors_of_another_width() -> None:
    with pytest.raises(ShapeError, match=r"anchors has 3 features .* but x has 5"):
        relative_representation(_data(0), _data(1, n=4, d=3))


def test_relative_similarity_rejects_anchors_y_of_another_width() -> None:
    x, y = _data(0), _data(1, d=3)
    with pytest.raises(ShapeError, match=r"anchors_y has 5 features .* but y has 3"):
        relative_similarity(x, y, anchors_x=x[:3], anchors_y=x[:3])


def test_relative_similarity_rejects_different_anchor_counts() -> None:
    x, y = _data(0), _data(1)
    with pytest.raises(ShapeError, match="anchors_x has 3 rows and anchors_y 4"):
        relative_similarity(x, y, anchors_x=x[:3], anchors_y=y[:4])


@pytest.mark.parametrize("bad", [[0, 20], [-1, 3]], ids=["too_large", "negative"])
def test_relative_similarity_rejects_out_of_range_indices(bad: list[int]) -> None:
    with pytest.raises(ShapeError, match=r"anchor_indices must lie in \[0, 19\]"):
        relative_similarity(_data(0), _data(1), anchor_indices=bad)


def test_relative_similarity_rejects_float_indices() -> None:
    with pytest.raises(InputTypeError, match="anchor_indices must hold integer row indices"):
        relative_similarity(_data(0), _data(1), anchor_indices=np.array([0.0, 1.0]))


def test_relative_similarity_rejects_two_dimensional_indices() -> None:
    with pytest.raises(ShapeError, match=r"anchor_indices must be 1-D, got shape \(2, 2\)"):
        relative_similarity(_data(0), _data(1), anchor_indices=[[0, 1], [2, 3]])


def test_relative_similarity_rejects_indices_of_wrong_type() -> None:
    with pytest.raises(InputTypeError, match="anchor_indices must be a sequence"):
        relative_similarity(_data(0), _data(1), anchor_indices="0,1")


def test_relative_similarity_needs_some_anchors() -> None:
    with pytest.raises(InvalidOptionError, match="no anchors given: pass n_anchors"):
        relative_similarity(_data(0), _data(1))


def test_relative_similarity_rejects_two_ways_of_choosing_anchors() -> None:
    with pytest.raises(InvalidOptionError, match="got anchor_indices and n_anchors"):
        relative_similarity(_data(0), _data(1), anchor_indices=[0, 1], n_anchors=4)


def test_relative_similarity_needs_both_explicit_anchor_sets() -> None:
    x = _data(0)
    with pytest.raises(InvalidOptionError, match="anchors_y is missing"):
        relative_similarity(x, _data(1), anchors_x=x[:3])


def test_relative_representation_rejects_a_zero_anchor() -> None:
    anchors = _data(1, n=3)
    anchors[1] = 0.0
    with pytest.raises(DegenerateInputError, match=r"1 anchors of anchors are the zero vector"):
        relative_representation(_data(0), anchors)


def test_relative_similarity_rejects_unpaired_inputs() -> None:
    with pytest.raises(ShapeError, match="must hold the same samples"):
        relative_similarity(_data(0), _data(1, n=10), n_anchors=3)


def test_relative_retrieval_rejects_zero_chunk_size() -> None:
    with pytest.raises(InvalidOptionError, match="chunk_size must be at least 1"):
        relative_retrieval(_data(0), _data(1), n_anchors=3, chunk_size=0)


def test_relative_representation_rejects_a_single_anchor() -> None:
    x = _data(0)
    with pytest.raises(TooFewSamplesError, match=r"anchors has 1 row .* at least 2 anchors"):
        relative_representation(x, x[:1])


def test_large_inputs_cap_the_queries_per_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from subspaces.linalg.constants import rows_within_budget

    module = importlib.import_module("subspaces.linalg.retrieval")
    calls: list[tuple[int, int, int]] = []

    def three_rows(chunk_size: int, bytes_per_row: int, memory_budget: int = 0) -> int:
        rows = rows_within_budget(chunk_size, bytes_per_row, memory_budget=3 * bytes_per_row)
        calls.append((chunk_size, bytes_per_row, rows))
        return rows

    x = torch.randn(30, 5, generator=torch.Generator().manual_seed(0))
    y = x + 0.3 * torch.randn(30, 5, generator=torch.Generator().manual_seed(1))
    expected = relative_retrieval(x, y, n_anchors=6, seed=0, chunk_size=64)
    monkeypatch.setattr(module, "rows_within_budget", three_rows)
    got = relative_retrieval(x, y, n_anchors=6, seed=0, chunk_size=64)
    assert got.as_dict() == expected.as_dict()
    assert [(c, r) for c, _, r in calls] == [(64, 3)]
