"""Tests of RDMs, RSA and the RSM norm difference (peers: tests/oracles/test_rsa_oracles.py)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from subspaces._checks import (
    DegenerateInputError,
    InvalidOptionError,
    NonFiniteError,
    ShapeError,
    TooFewSamplesError,
)
from subspaces.similarity.rsa import (
    RDM_COMPARISONS,
    RDM_DISSIMILARITIES,
    RSMNormDifference,
    compare_rdms,
    rdm,
    rsa,
    rsm_norm_difference,
)

# float64 data of a few dozen points: values agree to rounding, so 1e-10 is generous.
TOL = 1e-10
PROPERTY = settings(max_examples=25, deadline=None)


def _data(seed: int, n: int = 12, d: int = 4) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


def _paired(seed: int, n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = np.tanh(x @ rng.normal(size=(4, 6))) + 0.3 * rng.normal(size=(n, 6))
    return x, y


def _orthogonal(seed: int, d: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q * np.sign(np.diag(r))


seeds = st.integers(0, 2**31 - 1)
scales = st.floats(0.1, 10.0)


# --- rdm ----------------------------------------------------------------------------------


def test_rdm_condensed_order_is_row_major_upper_triangle() -> None:
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]], dtype=torch.float64)
    # pairs (0,1) (0,2) (0,3) (1,2) (1,3) (2,3)
    expected = torch.tensor([1.0, 3.0, 7.0, 2.0, 6.0, 4.0], dtype=torch.float64)
    torch.testing.assert_close(rdm(x), expected)


def test_rdm_index_formula_locates_each_pair() -> None:
    x = _data(0, n=9)
    condensed = rdm(x).numpy()
    n = 9
    for i, j in [(0, 1), (2, 5), (7, 8), (3, 4)]:
        position = n * i - i * (i + 1) // 2 + j - i - 1
        assert condensed[position] == pytest.approx(np.linalg.norm(x[i] - x[j]), rel=TOL)


@pytest.mark.parametrize("metric", RDM_DISSIMILARITIES)
def test_rdm_square_is_symmetric_with_zero_diagonal_and_matches_condensed(metric: str) -> None:
    x = _data(1)
    full = rdm(x, dissimilarity=metric, square=True)
    torch.testing.assert_close(full, full.T)
    assert bool((full.diagonal() == 0).all())
    iu = torch.triu_indices(12, 12, offset=1)
    torch.testing.assert_close(full[iu[0], iu[1]], rdm(x, dissimilarity=metric))


@pytest.mark.parametrize("chunk_size", [1, 3, 11, 100], ids=lambda b: f"block{b}")
@pytest.mark.parametrize("metric", RDM_DISSIMILARITIES)
def test_rdm_does_not_depend_on_chunk_size(metric: str, chunk_size: int) -> None:
    x = _data(2)
    torch.testing.assert_close(
        rdm(x, dissimilarity=metric, chunk_size=chunk_size),
        rdm(x, dissimilarity=metric, chunk_size=512),
        rtol=TOL,
        atol=TOL,
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_rdm_keeps_input_dtype(dtype: torch.dtype) -> None:
    assert rdm(torch.randn(5, 3, dtype=dtype)).dtype == dtype


def test_rdm_accepts_numpy_and_returns_tensor() -> None:
    out = rdm(_data(3))
    assert isinstance(out, torch.Tensor)
    assert out.shape == (66,)


@pytest.mark.parametrize("metric", ["correlation", "cosine"])
def test_rdm_angular_values_lie_in_zero_two(metric: str) -> None:
    values = rdm(_data(4, n=30, d=2), dissimilarity=metric)
    assert float(values.min()) >= 0.0
    assert float(values.max()) <= 2.0


# --- compare_rdms -------------------------------------------------------------------------


def test_compare_rdms_equals_rsa_on_the_same_rdms() -> None:
    x, y = _paired(5)
    for compare in RDM_COMPARISONS:
        direct = rsa(x, y, dissimilarity="correlation", method=compare)
        via = compare_rdms(
            rdm(x, dissimilarity="correlation"),
            rdm(y, dissimilarity="correlation"),
            method=compare,
        )
        assert float(via) == pytest.approx(float(direct), abs=TOL)


def test_kendall_tau_a_of_rdm_with_ties_against_itself_is_below_one() -> None:
    # 4 values, pairs: 6, tied pairs: 1 (the two 1.0s) -> tau-a = 1 - 1/6.
    v = torch.tensor([1.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    assert float(compare_rdms(v, v, method="kendall_tau_a")) == pytest.approx(5 / 6)


def test_kendall_tau_a_of_reversed_order_is_minus_one() -> None:
    v = torch.arange(10, dtype=torch.float64)
    assert float(compare_rdms(v, v.flip(0), method="kendall_tau_a")) == -1.0


# --- rsa: values and properties -----------------------------------------------------------


@pytest.mark.parametrize("compare", RDM_COMPARISONS)
@pytest.mark.parametrize("metric", RDM_DISSIMILARITIES)
def test_rsa_of_a_representation_with_itself_is_one(metric: str, compare: str) -> None:
    x = _data(6)
    assert float(rsa(x, x, dissimilarity=metric, method=compare)) == pytest.approx(1.0, abs=TOL)


@pytest.mark.parametrize("compare", RDM_COMPARISONS)
def test_rsa_blockwise_equals_one_block(compare: str) -> None:
    x, y = _paired(7, n=20)
    one = rsa(x, y, method=compare)
    for block in (1, 4, 7):
        assert float(rsa(x, y, method=compare, chunk_size=block)) == pytest.approx(
            float(one), abs=TOL
        )


def test_rsa_returns_float64_scalar_on_input_device() -> None:
    x, y = _paired(8)
    out = rsa(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32))
    assert out.dtype == torch.float64
    assert out.ndim == 0
    assert out.device == torch.device("cpu")


@PROPERTY
@given(
    seed=seeds,
    compare=st.sampled_from(RDM_COMPARISONS),
    metric=st.sampled_from(RDM_DISSIMILARITIES),
)
def test_rsa_is_symmetric(seed: int, compare: str, metric: str) -> None:
    x, y = _paired(seed)
    assert float(rsa(x, y, dissimilarity=metric, method=compare)) == pytest.approx(
        float(rsa(y, x, dissimilarity=metric, method=compare)),
        abs=TOL,
    )


@PROPERTY
@given(
    seed=seeds,
    compare=st.sampled_from(RDM_COMPARISONS),
    metric=st.sampled_from(RDM_DISSIMILARITIES),
)
def test_rsa_lies_in_minus_one_one(seed: int, compare: str, metric: str) -> None:
    x, y = _paired(seed)
    value = float(rsa(x, y, dissimilarity=metric, method=compare))
    assert -1.0 - TOL <= value <= 1.0 + TOL


@PROPERTY
@given(seed=seeds, scale=scales, compare=st.sampled_from(RDM_COMPARISONS))
def test_rsa_euclidean_invariant_to_orthogonal_scaling_and_translation(
    seed: int, scale: float, compare: str
) -> None:
    x, y = _paired(seed)
    rng = np.random.default_rng(seed + 1)
    moved = scale * x @ _orthogonal(seed, 4) + rng.normal(size=4)
    assert float(rsa(moved, y, method=compare)) == pytest.approx(
        float(rsa(x, y, method=compare)),
        abs=1e-8,
    )


@PROPERTY
@given(seed=seeds, compare=st.sampled_from(RDM_COMPARISONS))
def test_rsa_cosine_rdm_invariant_to_orthogonal_and_row_scaling(seed: int, compare: str) -> None:
    x, y = _paired(seed)
    rng = np.random.default_rng(seed + 2)
    row_scales = rng.uniform(0.2, 5.0, size=(x.shape[0], 1))
    moved = row_scales * (x @ _orthogonal(seed, 4))
    assert float(rsa(moved, y, dissimilarity="cosine", method=compare)) == pytest.approx(
        float(rsa(x, y, dissimilarity="cosine", method=compare)),
        abs=1e-8,
    )


@PROPERTY
@given(seed=seeds, compare=st.sampled_from(RDM_COMPARISONS))
def test_rsa_correlation_rdm_invariant_to_row_affine_and_feature_permutation(
    seed: int, compare: str
) -> None:
    x, y = _paired(seed)
    rng = np.random.default_rng(seed + 3)
    row_scales = rng.uniform(0.2, 5.0, size=(x.shape[0], 1))
    row_shifts = rng.normal(size=(x.shape[0], 1))
    moved = row_scales * x[:, rng.permutation(4)] + row_shifts
    assert float(rsa(moved, y, dissimilarity="correlation", method=compare)) == pytest.approx(
        float(rsa(x, y, dissimilarity="correlation", method=compare)),
        abs=1e-8,
    )


@PROPERTY
@given(seed=seeds, compare=st.sampled_from(["spearman", "kendall_tau_a"]))
def test_rank_comparisons_do_not_see_monotone_transforms_of_the_rdm(
    seed: int, compare: str
) -> None:
    x, y = _paired(seed)
    assert float(rsa(x, y, dissimilarity="euclidean", method=compare)) == pytest.approx(
        float(rsa(x, y, dissimilarity="sqeuclidean", method=compare)),
        abs=TOL,
    )


@PROPERTY
@given(seed=seeds, compare=st.sampled_from(RDM_COMPARISONS))
def test_rsa_invariant_to_sample_permutation(seed: int, compare: str) -> None:
    x, y = _paired(seed)
    perm = np.random.default_rng(seed).permutation(x.shape[0])
    assert float(rsa(x[perm], y[perm], method=compare)) == pytest.approx(
        float(rsa(x, y, method=compare)),
        abs=TOL,
    )


# --- rsm_norm_difference -------------------------------------------------------------------

RSMS = ("linear", "cosine", "correlation", "euclidean", "sqeuclidean")


@pytest.mark.parametrize("rsm", RSMS)
def test_rsm_norm_difference_matches_dense_frobenius_norm(rsm: str) -> None:
    x, y = _paired(9)
    tx, ty = torch.tensor(x), torch.tensor(y)

    def dense(z: torch.Tensor) -> torch.Tensor:
        if rsm == "linear":
            return z @ z.T
        if rsm == "cosine":
            u = torch.nn.functional.normalize(z, dim=1)
            return u @ u.T
        if rsm == "correlation":
            return torch.corrcoef(z)
        d = torch.cdist(z, z)
        return d if rsm == "euclidean" else d**2

    expected = torch.linalg.matrix_norm(dense(tx) - dense(ty))
    got = rsm_norm_difference(x, y, rsm=rsm, chunk_size=5)
    assert float(got) == pytest.approx(float(expected), rel=1e-10)


@pytest.mark.parametrize("rsm", RSMS)
def test_rsm_norm_difference_of_a_representation_with_itself_is_zero(rsm: str) -> None:
    x = _data(10)
    assert float(rsm_norm_difference(x, x, rsm=rsm)) == pytest.approx(0.0, abs=1e-6)


@PROPERTY
@given(seed=seeds, rsm=st.sampled_from(RSMS))
def test_rsm_norm_difference_is_symmetric_and_satisfies_triangle_inequality(
    seed: int, rsm: str
) -> None:
    x, y = _paired(seed)
    z = np.random.default_rng(seed + 4).normal(size=x.shape)
    xy = float(rsm_norm_difference(x, y, rsm=rsm))
    assert xy == pytest.approx(float(rsm_norm_difference(y, x, rsm=rsm)), rel=1e-9)
    xz = float(rsm_norm_difference(x, z, rsm=rsm))
    zy = float(rsm_norm_difference(z, y, rsm=rsm))
    assert xy <= xz + zy + 1e-9


@PROPERTY
@given(seed=seeds, scale=scales, rsm=st.sampled_from(RSMS))
def test_rsm_norm_difference_invariances(seed: int, scale: float, rsm: str) -> None:
    x, y = _paired(seed)
    rng = np.random.default_rng(seed + 5)
    if rsm == "correlation":  # not orthogonal: row-wise affine maps and feature permutations
        rows = x.shape[0]
        moved = rng.uniform(0.2, 5.0, (rows, 1)) * x[:, rng.permutation(4)] + rng.normal(
            size=(rows, 1)
        )
    else:
        moved = x @ _orthogonal(seed, 4)
    if rsm == "cosine":
        moved = scale * moved
    if rsm in ("euclidean", "sqeuclidean"):
        moved = moved + rng.normal(size=4)
    assert float(rsm_norm_difference(moved, y, rsm=rsm)) == pytest.approx(
        float(rsm_norm_difference(x, y, rsm=rsm)),
        rel=1e-8,
        abs=1e-8,
    )


def test_linear_rsm_norm_difference_is_not_scale_invariant() -> None:
    x, y = _paired(11)
    assert float(rsm_norm_difference(2 * x, y)) != pytest.approx(float(rsm_norm_difference(x, y)))


@PROPERTY
@given(
    seed=seeds,
    cuts=st.lists(st.integers(1, 19), max_size=4, unique=True),
    rsm=st.sampled_from(["linear", "cosine", "correlation"]),
)
def test_streaming_rsm_norm_difference_equals_one_shot_for_any_split(
    seed: int, cuts: list[int], rsm: str
) -> None:
    x, y = _paired(seed, n=20)
    metric = RSMNormDifference(rsm=rsm)
    bounds = [0, *sorted(cuts), 20]
    for a, b in itertools.pairwise(bounds):
        metric.update(x[a:b], y[a:b])
    assert float(metric.compute()) == pytest.approx(
        float(rsm_norm_difference(x, y, rsm=rsm)),
        rel=1e-10,
    )


def test_streaming_rsm_norm_difference_reset_forgets() -> None:
    x, y = _paired(12)
    metric = RSMNormDifference()
    metric.update(x * 5, y)
    metric.reset()
    metric.update(x, y)
    assert float(metric.compute()) == pytest.approx(float(rsm_norm_difference(x, y)), rel=1e-12)


# --- errors ---------------------------------------------------------------------------------


def test_rdm_rejects_unknown_metric() -> None:
    with pytest.raises(InvalidOptionError, match=r"dissimilarity must be one of .*got 'manhattan'"):
        rdm(_data(0), dissimilarity="manhattan")


def test_rsa_rejects_unknown_comparison() -> None:
    with pytest.raises(InvalidOptionError, match=r"method must be one of .*got 'kendall'"):
        rsa(_data(0), _data(1), method="kendall")


def test_rsm_norm_difference_rejects_unknown_rsm() -> None:
    with pytest.raises(InvalidOptionError, match=r"rsm must be one of .*got 'rbf'"):
        rsm_norm_difference(_data(0), _data(1), rsm="rbf")


def test_streaming_rsm_norm_difference_rejects_distance_rsm() -> None:
    with pytest.raises(InvalidOptionError, match="rsm must be one of 'linear', 'cosine', 'corr"):
        RSMNormDifference(rsm="euclidean")


def test_rdm_rejects_zero_chunk_size() -> None:
    with pytest.raises(InvalidOptionError, match="chunk_size must be at least 1, got 0"):
        rdm(_data(0), chunk_size=0)


def test_cosine_rdm_rejects_zero_rows() -> None:
    x = _data(0)
    x[3] = 0.0
    with pytest.raises(
        DegenerateInputError, match=r"x has 1 rows of zero norm \(shape .*first indices \[3\]\)"
    ):
        rdm(x, dissimilarity="cosine")


def test_correlation_rdm_rejects_rows_constant_across_features() -> None:
    x = _data(0)
    x[[2, 5]] = 4.0
    with pytest.raises(DegenerateInputError, match=r"2 constant rows .*\[2, 5\]"):
        rsa(_data(1), x, dissimilarity="correlation")


@pytest.mark.parametrize("compare", ["pearson", "spearman", "kendall_tau_a"])
def test_rsa_rejects_a_constant_rdm(compare: str) -> None:
    simplex = np.eye(4)  # every pair at distance sqrt(2)
    with pytest.raises(DegenerateInputError, match="the RDM of x is constant"):
        rsa(simplex, _data(0, n=4), method=compare)


def test_rsa_cosine_rejects_an_all_zero_rdm() -> None:
    with pytest.raises(DegenerateInputError, match="the RDM of y is all zeros"):
        rsa(_data(0, n=4), np.ones((4, 3)), method="cosine")


def test_rsa_needs_three_samples_for_correlations() -> None:
    with pytest.raises(TooFewSamplesError, match=r"x has 2 samples .*at least 3"):
        rsa(_data(0, n=2), _data(1, n=2))


def test_rsa_rejects_unpaired_inputs() -> None:
    with pytest.raises(ShapeError, match=r"x has 12 rows .* y has 10"):
        rsa(_data(0), _data(1, n=10))


def test_rsa_rejects_nan() -> None:
    x = _data(0)
    x[0, 0] = math.nan
    with pytest.raises(NonFiniteError, match="x contains 1 NaN"):
        rsa(x, _data(1))


def test_compare_rdms_rejects_different_lengths() -> None:
    with pytest.raises(ShapeError, match="got 6 and 10 entries"):
        compare_rdms(torch.rand(6), torch.rand(10))


def test_compare_rdms_rejects_square_matrices() -> None:
    with pytest.raises(ShapeError, match=r"rdm_x must be a 1-D condensed RDM .*shape \(4, 4\)"):
        compare_rdms(torch.rand(4, 4), torch.rand(6))


@pytest.mark.filterwarnings("ignore:The ``compute`` method:UserWarning")
def test_streaming_rsm_norm_difference_compute_before_update() -> None:
    with pytest.raises(TooFewSamplesError, match="has seen no samples"):
        RSMNormDifference().compute()


def test_streaming_rsm_norm_difference_rejects_width_change() -> None:
    metric = RSMNormDifference()
    metric.update(_data(0, d=4), _data(1, d=3))
    with pytest.raises(
        ShapeError, match="this batch has 5 and 3 features but earlier batches had 4"
    ):
        metric.update(_data(0, d=5), _data(1, d=3))


def test_large_inputs_cap_the_rows_per_block(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from subspaces.linalg.constants import rows_within_budget

    module = importlib.import_module("subspaces.similarity.rsa")
    calls: list[tuple[int, int, int]] = []

    def three_rows(chunk_size: int, bytes_per_row: int, memory_budget: int = 0) -> int:
        rows = rows_within_budget(chunk_size, bytes_per_row, memory_budget=3 * bytes_per_row)
        calls.append((chunk_size, bytes_per_row, rows))
        return rows

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(25, 4, generator=g), torch.randn(25, 3, generator=g)
    expected_rdm = rdm(x, chunk_size=64)
    expected_rsa = rsa(x, y, chunk_size=64)
    expected_norm = rsm_norm_difference(x, y, rsm="euclidean", chunk_size=64)
    monkeypatch.setattr(module, "rows_within_budget", three_rows)
    # float32 products of other block shapes: equal up to float32 rounding
    torch.testing.assert_close(rdm(x, chunk_size=64), expected_rdm, rtol=1e-6, atol=0)
    torch.testing.assert_close(rsa(x, y, chunk_size=64), expected_rsa, rtol=1e-6, atol=0)
    got_norm = rsm_norm_difference(x, y, rsm="euclidean", chunk_size=64)
    torch.testing.assert_close(got_norm, expected_norm, rtol=1e-6, atol=0)
    assert [(c, r) for c, _, r in calls] == [(64, 3)] * 3
    # rdm: the float32 block and its upper copy per row, at least
    assert calls[0][1] >= 25 * 2 * 4
