"""Principal angles, Grassmann distances, principal subspaces and eigenspace overlap.

Tolerances: everything is computed in float64 from float64 bases, so closed forms and
invariances hold to ~1e-15 in the angles; we check to 1e-10 (absolute) leaving room for
condition numbers up to ~10 of the random changes of basis, except where stated.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from subspaces._checks import (
    DegenerateInputError,
    InputTypeError,
    InvalidOptionError,
    NonFiniteError,
    ShapeError,
    TooFewSamplesError,
)
from subspaces.similarity.angles import (
    GRASSMANN_DISTANCES,
    eigenspace_overlap,
    grassmann_distance,
    principal_angles,
    subspace_of,
    subspace_overlap,
)

ATOL = 1e-10
HALF_PI = math.pi / 2
TRUE_METRICS = [m for m in GRASSMANN_DISTANCES if m != "martin"]
fast = settings(max_examples=25, deadline=None)
# Per-metric property tests: the angle-level versions run with `fast`; each metric's
# formula only needs a few draws on top.
per_metric = settings(max_examples=8, deadline=None)
seeds = st.integers(0, 2**32 - 1)


def _e(d: int, *idx: int) -> np.ndarray:
    """The (d, len(idx)) basis of coordinate vectors e_idx."""
    out = np.zeros((d, len(idx)))
    for col, i in enumerate(idx):
        out[i, col] = 1.0
    return out


def _rotation(rng: np.random.Generator, d: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def _well_conditioned(rng: np.random.Generator, p: int) -> np.ndarray:
    """A random invertible p × p matrix with condition number at most 4."""
    return _rotation(rng, p) @ np.diag(rng.uniform(0.5, 2.0, p)) @ _rotation(rng, p)


def _pair_with_angles(theta: list[float], d: int) -> tuple[np.ndarray, np.ndarray]:
    """Bases of two m-dim subspaces of R^d (d >= 2m) whose principal angles are theta."""
    m = len(theta)
    a = _e(d, *range(m))
    b = np.zeros((d, m))
    for i, t in enumerate(theta):
        b[i, i] = math.cos(t)
        b[m + i, i] = math.sin(t)
    return a, b


def _angles_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return principal_angles(a, b).numpy()


# ----------------------------------------------------------------------------------------
# principal_angles: closed forms


@pytest.mark.parametrize(
    ("a_idx", "b_idx", "expected"),
    [
        ((0, 1), (0, 1), [0.0, 0.0]),
        ((0, 1), (1, 2), [0.0, HALF_PI]),
        ((0, 1), (2, 3), [HALF_PI, HALF_PI]),
        ((0,), (0, 1), [0.0]),
        ((2,), (0, 1), [HALF_PI]),
    ],
    ids=["same-plane", "planes-sharing-a-line", "orthogonal-planes", "line-in-plane", "line-perp"],
)
def test_angles_between_coordinate_subspaces(a_idx, b_idx, expected):
    got = _angles_np(_e(4, *a_idx), _e(4, *b_idx))
    np.testing.assert_allclose(got, expected, atol=ATOL)


@pytest.mark.parametrize("theta", [0.1, math.pi / 6, math.pi / 4, math.pi / 3, 1.5])
def test_rotated_line_gives_its_angle(theta):
    a = np.array([[1.0], [0.0], [0.0]])
    b = np.array([[math.cos(theta)], [math.sin(theta)], [0.0]])
    np.testing.assert_allclose(_angles_np(a, b), [theta], atol=ATOL)


def test_planted_angles_are_recovered_in_increasing_order():
    theta = [0.9, 0.2, 1.3]
    got = _angles_np(*_pair_with_angles(theta, 7))
    np.testing.assert_allclose(got, sorted(theta), atol=ATOL)


def test_identical_subspaces_in_different_bases_give_zeros():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((8, 3))
    b = a @ _well_conditioned(rng, 3)
    np.testing.assert_allclose(_angles_np(a, b), np.zeros(3), atol=ATOL)


def test_orthogonal_subspaces_give_right_angles():
    rng = np.random.default_rng(1)
    q = _rotation(rng, 6)
    np.testing.assert_allclose(_angles_np(q[:, :2], q[:, 2:5]), [HALF_PI] * 2, atol=ATOL)


@pytest.mark.parametrize(("eps", "rtol"), [(1e-9, 1e-6), (1e-12, 1e-3)], ids=["1e-9", "1e-12"])
def test_tiny_angles_are_accurate(eps, rtol):
    # arccos(cos 1e-9) is 0 in float64; the sine-based formula recovers the angle to an
    # absolute ~1e-16 (the rounding of the rotated bases), hence the relative tolerances.
    # Rotating the ambient space makes every coordinate non-trivial.
    rng = np.random.default_rng(2)
    r = _rotation(rng, 6)
    a, b = _pair_with_angles([eps, 0.5, 3 * eps], 6)
    got = principal_angles(r @ a, r @ b).numpy()
    np.testing.assert_allclose(got, [eps, 3 * eps, 0.5], rtol=rtol)


@pytest.mark.parametrize("distance", GRASSMANN_DISTANCES)
def test_tiny_angle_distances_are_accurate(distance):
    # Every distance is ~θ for one tiny angle θ; the product forms go through log1p/expm1.
    eps = 1e-9
    got = float(grassmann_distance(*_pair_with_angles([eps], 3), distance=distance))
    assert got == pytest.approx(eps, rel=1e-6)


# ----------------------------------------------------------------------------------------
# principal_angles: oracle and properties


@pytest.mark.parametrize(
    ("d", "p", "q"),
    [(5, 2, 2), (10, 3, 4), (10, 4, 3), (6, 4, 4), (20, 1, 5), (7, 7, 2)],
    ids=["5-2-2", "10-3-4", "10-4-3", "6-4-4-forced-overlap", "20-1-5", "7-full-2"],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_angles_match_scipy(d, p, q, seed):
    # scipy.linalg.subspace_angles returns the angles in decreasing order. Tolerance 1e-7:
    # scipy (1.17) indexes its arcsin/arccos mask in the order opposite to its angles, so
    # when the counts of angles below and above π/4 differ it takes some small angles from
    # arccos, accurate only to sqrt(eps) ~ 1.5e-8 (e.g. 2.6e-8 for the forced zero angles
    # of two 4-planes in R^6, where we return ~1e-16).
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((d, p)), rng.standard_normal((d, q))
    expected = scipy.linalg.subspace_angles(a, b)[::-1]
    np.testing.assert_allclose(_angles_np(a, b), expected, atol=1e-7)


@fast
@given(seed=seeds, d=st.integers(2, 8), p=st.integers(1, 4), q=st.integers(1, 4))
def test_angles_are_sorted_and_in_range(seed, d, p, q):
    p, q = min(p, d), min(q, d)
    rng = np.random.default_rng(seed)
    theta = _angles_np(rng.standard_normal((d, p)), rng.standard_normal((d, q)))
    assert theta.shape == (min(p, q),)
    assert np.all(np.diff(theta) >= 0)
    assert np.all((theta >= 0) & (theta <= HALF_PI))


@fast
@given(seed=seeds, d=st.integers(2, 8), p=st.integers(1, 4), q=st.integers(1, 4))
def test_angles_are_symmetric(seed, d, p, q):
    p, q = min(p, d), min(q, d)
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((d, p)), rng.standard_normal((d, q))
    np.testing.assert_allclose(_angles_np(a, b), _angles_np(b, a), atol=ATOL)


@fast
@given(seed=seeds, d=st.integers(2, 8), p=st.integers(1, 4), q=st.integers(1, 4))
def test_angles_invariant_to_change_of_basis(seed, d, p, q):
    p, q = min(p, d), min(q, d)
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((d, p)), rng.standard_normal((d, q))
    got = _angles_np(a @ _well_conditioned(rng, p), b @ _well_conditioned(rng, q))
    np.testing.assert_allclose(got, _angles_np(a, b), atol=ATOL)


@fast
@given(seed=seeds, d=st.integers(2, 8), p=st.integers(1, 4), q=st.integers(1, 4))
def test_angles_invariant_to_common_rotation(seed, d, p, q):
    p, q = min(p, d), min(q, d)
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((d, p)), rng.standard_normal((d, q))
    r = _rotation(rng, d)
    np.testing.assert_allclose(_angles_np(r @ a, r @ b), _angles_np(a, b), atol=ATOL)


def test_orthonormalize_false_agrees_on_orthonormal_bases():
    rng = np.random.default_rng(3)
    qa, _ = np.linalg.qr(rng.standard_normal((9, 3)))
    qb, _ = np.linalg.qr(rng.standard_normal((9, 2)))
    np.testing.assert_allclose(
        principal_angles(qa, qb, orthonormalize=False).numpy(), _angles_np(qa, qb), atol=ATOL
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_angles_are_float64_tensors_on_the_input_device(dtype):
    a = torch.eye(4, 2, dtype=dtype)
    out = principal_angles(a, a)
    assert out.dtype == torch.float64
    assert out.device == a.device


# ----------------------------------------------------------------------------------------
# grassmann_distance


def _closed_form(theta: np.ndarray, distance: str) -> float:
    """Each metric's formula from Ye & Lim (2016), written independently in numpy."""
    c = np.cos(theta)
    return {
        "geodesic": np.sqrt(np.sum(theta**2)),
        "chordal": np.sqrt(np.sum(np.sin(theta) ** 2)),
        "projection": np.sin(theta.max()),
        "procrustes": 2 * np.sqrt(np.sum(np.sin(theta / 2) ** 2)),
        "spectral": 2 * np.sin(theta.max() / 2),
        "asimov": theta.max(),
        "binet_cauchy": np.sqrt(1 - np.prod(c**2)),
        "fubini_study": np.arccos(np.prod(c)),
        "martin": np.sqrt(np.log(np.prod(1 / c**2))),
    }[distance]


@pytest.mark.parametrize("distance", GRASSMANN_DISTANCES)
def test_distance_closed_forms(distance):
    theta = np.array([0.3, 0.7, 1.1])
    got = float(grassmann_distance(*_pair_with_angles(list(theta), 6), distance=distance))
    assert got == pytest.approx(_closed_form(theta, distance), abs=ATOL)


def _projector(a: np.ndarray) -> np.ndarray:
    q, _ = np.linalg.qr(a)
    return q @ q.T


@pytest.mark.parametrize(
    ("distance", "matrix_form"),
    [
        ("chordal", lambda pa, pb, qa, qb: np.linalg.norm(pa - pb, "fro") / math.sqrt(2)),
        ("projection", lambda pa, pb, qa, qb: np.linalg.norm(pa - pb, 2)),
        (
            "procrustes",
            lambda pa, pb, qa, qb: np.linalg.norm(
                qa - qb @ scipy.linalg.orthogonal_procrustes(qb, qa)[0], "fro"
            ),
        ),
    ],
    ids=["chordal=projector-F/sqrt2", "projection=projector-2norm", "procrustes=min_Q"],
)
def test_distance_matrix_norm_forms(distance, matrix_form):
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((7, 3)), rng.standard_normal((7, 3))
    qa, qb = np.linalg.qr(a)[0], np.linalg.qr(b)[0]
    expected = matrix_form(_projector(a), _projector(b), qa, qb)
    assert float(grassmann_distance(a, b, distance=distance)) == pytest.approx(expected, abs=ATOL)


@pytest.mark.parametrize("distance", GRASSMANN_DISTANCES)
def test_distance_is_zero_for_one_subspace(distance):
    rng = np.random.default_rng(5)
    a = rng.standard_normal((6, 3))
    assert float(grassmann_distance(a, a @ _well_conditioned(rng, 3), distance=distance)) == (
        pytest.approx(0.0, abs=1e-9)
    )


_INFINITE_LINE_IN_PLANE = {
    "geodesic": HALF_PI,
    "chordal": 1.0,
    "projection": 1.0,
    "procrustes": math.sqrt(2),
    "spectral": math.sqrt(2),
    "asimov": HALF_PI,
    "binet_cauchy": 1.0,
    "fubini_study": HALF_PI,
    "martin": math.inf,
}


@pytest.mark.parametrize("distance", GRASSMANN_DISTANCES)
def test_unequal_dims_infinite_counts_missing_angles_as_right(distance):
    # A line inside a plane: the one principal angle is 0, the missing one counts as π/2.
    got = float(grassmann_distance(_e(3, 0), _e(3, 0, 1), distance=distance))
    assert got == pytest.approx(_INFINITE_LINE_IN_PLANE[distance], abs=ATOL)


def test_unequal_dims_infinite_geodesic_closed_form():
    # Ye & Lim: sqrt(|p - q| π²/4 + Σ θ_i²), here p = 1, q = 3, θ = 0.4.
    a = np.array([[math.cos(0.4)], [0.0], [math.sin(0.4)], [0.0], [0.0]])
    b = _e(5, 0, 3, 4)
    expected = math.sqrt(2 * math.pi**2 / 4 + 0.4**2)
    assert float(grassmann_distance(a, b)) == pytest.approx(expected, abs=ATOL)


@pytest.mark.parametrize("distance", GRASSMANN_DISTANCES)
def test_unequal_dims_schubert_is_zero_for_contained_subspace(distance):
    got = grassmann_distance(_e(3, 0), _e(3, 0, 1), distance=distance, unequal_dims="schubert")
    assert float(got) == pytest.approx(0.0, abs=ATOL)


@pytest.mark.parametrize("distance", GRASSMANN_DISTANCES)
@per_metric
@given(seed=seeds, d=st.integers(2, 7), p=st.integers(1, 3), q=st.integers(1, 3))
def test_distance_invariant_to_change_of_basis(distance, seed, d, p, q):
    p, q = min(p, d), min(q, d)
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((d, p)), rng.standard_normal((d, q))
    expected = grassmann_distance(a, b, distance=distance)
    got = grassmann_distance(
        a @ _well_conditioned(rng, p), b @ _well_conditioned(rng, q), distance=distance
    )
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=1e-9)


@pytest.mark.parametrize("distance", GRASSMANN_DISTANCES)
@per_metric
@given(seed=seeds, d=st.integers(2, 7), p=st.integers(1, 3), q=st.integers(1, 3))
def test_distance_invariant_to_common_rotation(distance, seed, d, p, q):
    p, q = min(p, d), min(q, d)
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((d, p)), rng.standard_normal((d, q))
    r = _rotation(rng, d)
    expected = grassmann_distance(a, b, distance=distance)
    got = grassmann_distance(r @ a, r @ b, distance=distance)
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=1e-9)


@pytest.mark.parametrize("distance", GRASSMANN_DISTANCES)
@per_metric
@given(seed=seeds, d=st.integers(2, 7), p=st.integers(1, 3), q=st.integers(1, 3))
def test_distance_is_symmetric(distance, seed, d, p, q):
    p, q = min(p, d), min(q, d)
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((d, p)), rng.standard_normal((d, q))
    torch.testing.assert_close(
        grassmann_distance(a, b, distance=distance),
        grassmann_distance(b, a, distance=distance),
        atol=ATOL,
        rtol=1e-9,
    )


@pytest.mark.parametrize("distance", TRUE_METRICS)
@per_metric
@given(seed=seeds, d=st.integers(2, 6), p=st.integers(1, 3))
def test_triangle_inequality_same_dimension(distance, seed, d, p):
    p = min(p, d)
    rng = np.random.default_rng(seed)
    a, b, c = (rng.standard_normal((d, p)) for _ in range(3))

    def dist(u, v):
        return float(grassmann_distance(u, v, distance=distance))

    assert dist(a, c) <= dist(a, b) + dist(b, c) + 1e-12


@pytest.mark.parametrize("distance", TRUE_METRICS)
@per_metric
@given(seed=seeds, d=st.integers(2, 6), dims=st.tuples(*[st.integers(1, 4)] * 3))
def test_triangle_inequality_on_doubly_infinite_grassmannian(distance, seed, d, dims):
    rng = np.random.default_rng(seed)
    a, b, c = (rng.standard_normal((d, min(p, d))) for p in dims)

    def dist(u, v):
        return float(grassmann_distance(u, v, distance=distance))

    assert dist(a, c) <= dist(a, b) + dist(b, c) + 1e-12


def test_distance_is_a_0dim_float64_tensor():
    out = grassmann_distance(torch.eye(3, 1), torch.eye(3, 2), distance="chordal")
    assert out.shape == ()
    assert out.dtype == torch.float64


# ----------------------------------------------------------------------------------------
# subspace_of


def _planted(seed: int, n: int = 200, d: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Data whose covariance has a clear top-2 subspace (variances 100, 64, 1, ...)."""
    rng = np.random.default_rng(seed)
    basis = _rotation(rng, d)
    scales = np.array([10.0, 8.0] + [1.0] * (d - 2))
    x = (rng.standard_normal((n, d)) * scales) @ basis.T + 5.0
    return x, basis[:, :2]


def test_subspace_of_recovers_the_top_eigenvectors():
    x, _ = _planted(0)
    xc = x - x.mean(0)
    _, evecs = np.linalg.eigh(xc.T @ xc)
    top = evecs[:, ::-1][:, :2].copy()
    got = subspace_of(x, n_components=2)
    np.testing.assert_allclose(_angles_np(got.numpy(), top), [0.0, 0.0], atol=1e-9)


def test_subspace_of_returns_orthonormal_float64_columns():
    x, _ = _planted(1)
    u = subspace_of(torch.as_tensor(x, dtype=torch.float32), n_components=3)
    assert u.shape == (6, 3)
    assert u.dtype == torch.float64
    torch.testing.assert_close(u.T @ u, torch.eye(3, dtype=torch.float64), atol=1e-12, rtol=0)


@pytest.mark.parametrize(
    ("variance", "expected_k"),
    [(0.5, 1), (0.8, 2), (0.99, 3), (1.0, 3)],
    ids=["0.5", "0.8", "0.99", "1.0"],
)
def test_subspace_of_chooses_k_by_variance_explained(variance, expected_k):
    # Rows ±sqrt(λ_i) e_i: mean 0, covariance ∝ diag(6, 3, 1, 0, 0), so the variance
    # explained by the top 1, 2, 3 directions is 0.6, 0.9, 1.0 exactly.
    lam = np.array([6.0, 3.0, 1.0])
    x = np.zeros((6, 5))
    for i, value in enumerate(lam):
        x[2 * i, i], x[2 * i + 1, i] = math.sqrt(value), -math.sqrt(value)
    assert subspace_of(x, variance=variance).shape == (5, expected_k)


def test_subspace_of_variance_one_stops_at_the_rank_of_float32_data():
    # Rank-2 float32 data in R^5: rounding leaves tiny non-zero eigenvalues that
    # variance=1.0 must not pick up.
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((100, 2)) @ rng.standard_normal((2, 5))).astype(np.float32)
    assert subspace_of(x, variance=1.0).shape == (5, 2)


def test_subspace_of_keeps_small_but_real_float32_directions():
    # A direction with 1e-3 of the top variance is well above float32 rounding.
    rng = np.random.default_rng(10)
    x = (rng.standard_normal((100, 3)) * np.array([1.0, 0.5, 0.03])).astype(np.float32)
    assert subspace_of(x, n_components=3).shape == (3, 3)


@fast
@given(seed=seeds, shift=st.floats(-100, 100), scale=st.floats(0.01, 100))
def test_subspace_of_invariant_to_translation_and_scaling(seed, shift, scale):
    x, _ = _planted(seed % 1000)
    u = subspace_of(x, n_components=2).numpy()
    v = subspace_of(scale * x + shift, n_components=2).numpy()
    np.testing.assert_allclose(_angles_np(u, v), [0.0, 0.0], atol=1e-7)


@fast
@given(seed=seeds)
def test_subspace_of_is_rotation_equivariant(seed):
    rng = np.random.default_rng(seed)
    x, _ = _planted(seed % 1000)
    r = _rotation(rng, 6)
    u = subspace_of(x, n_components=2).numpy()
    v = subspace_of(x @ r, n_components=2).numpy()
    np.testing.assert_allclose(_angles_np(r.T @ u, v), [0.0, 0.0], atol=1e-7)


# ----------------------------------------------------------------------------------------
# eigenspace_overlap and subspace_overlap


def test_eigenspace_overlap_is_one_for_identical_covariances():
    x, _ = _planted(2)
    y = 3.0 - x[::-1]  # same covariance, other samples order and mean
    assert float(eigenspace_overlap(x, y, n_components=2)) == pytest.approx(1.0, abs=1e-12)


def test_eigenspace_overlap_is_zero_for_orthogonal_eigenspaces():
    rng = np.random.default_rng(3)
    x = np.zeros((50, 5))
    y = np.zeros((40, 5))
    x[:, :2] = rng.standard_normal((50, 2))
    y[:, 2:4] = rng.standard_normal((40, 2))
    assert float(eigenspace_overlap(x, y, n_components=2)) == pytest.approx(0.0, abs=1e-12)


def test_eigenspace_overlap_of_planted_partial_overlap():
    # Top-2 eigenspaces span(e1, e2) and span(e1, e3): overlap (1 + 0) / 2.
    rng = np.random.default_rng(4)
    z = rng.standard_normal((300, 5))
    x = z * np.array([10.0, 5.0, 0.0, 0.0, 0.0])
    y = z * np.array([10.0, 0.0, 5.0, 0.0, 0.0])
    assert float(eigenspace_overlap(x, y, n_components=2)) == pytest.approx(0.5, abs=1e-12)


@fast
@given(seed=seeds)
def test_eigenspace_overlap_invariant_to_common_rotation(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((60, 6)) * np.array([6.0, 5.0, 4.0, 1.0, 1.0, 1.0])
    y = rng.standard_normal((70, 6)) @ _well_conditioned(rng, 6) * 3.0
    r = _rotation(rng, 6)
    expected = eigenspace_overlap(x, y, n_components=3)
    torch.testing.assert_close(
        eigenspace_overlap(x @ r, y @ r, n_components=3), expected, atol=1e-8, rtol=0
    )


@fast
@given(seed=seeds)
def test_eigenspace_overlap_is_symmetric_and_in_unit_interval(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((30, 5)), rng.standard_normal((30, 5))
    s = float(eigenspace_overlap(x, y, n_components=2))
    assert 0.0 <= s <= 1.0
    assert s == pytest.approx(float(eigenspace_overlap(y, x, n_components=2)), abs=1e-12)


@fast
@given(seed=seeds, d=st.integers(2, 8), p=st.integers(1, 4), q=st.integers(1, 4))
def test_subspace_overlap_is_one_minus_scaled_squared_chordal(seed, d, p, q):
    # EOS = Σ cos²θ / max(p, q) = 1 − chordal²/max(p, q) on the doubly infinite Grassmannian.
    p, q = min(p, d), min(q, d)
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((d, p)), rng.standard_normal((d, q))
    chordal = float(grassmann_distance(a, b, distance="chordal"))
    expected = 1.0 - chordal**2 / max(p, q)
    assert float(subspace_overlap(a, b)) == pytest.approx(expected, abs=1e-12)


def test_subspace_overlap_normalizes_by_the_larger_dimension():
    # May et al. (2019): a line inside a plane overlaps 1/2.
    assert float(subspace_overlap(_e(4, 0), _e(4, 0, 1))) == pytest.approx(0.5, abs=ATOL)


# ----------------------------------------------------------------------------------------
# errors


def test_error_different_ambient_dimension():
    with pytest.raises(ShapeError, match=r"same ambient space.*\(D = 4\).*\(D = 5\)"):
        principal_angles(np.eye(4, 2), np.eye(5, 2))


@pytest.mark.parametrize(
    "func", [principal_angles, grassmann_distance, subspace_overlap], ids=lambda f: f.__name__
)
def test_error_rank_deficient_basis(func):
    b = np.array([[1.0, 2.0], [1.0, 2.0], [0.0, 0.0]])
    with pytest.raises(DegenerateInputError, match=r"b \(shape \(3, 2\)\) has numerical rank 1"):
        func(np.eye(3, 2), b)


def test_error_rank_deficient_float32_basis_uses_float32_tolerance():
    a = np.array([[1.0, 1.0], [0.0, 1e-9], [0.0, 0.0]], dtype=np.float32)
    with pytest.raises(DegenerateInputError, match="numerical rank 1"):
        principal_angles(a, np.eye(3, 2))


def test_error_more_columns_than_ambient_dimension():
    with pytest.raises(DegenerateInputError, match=r"3 columns in R\^2 cannot be"):
        principal_angles(np.ones((2, 3)), np.eye(2, 1))


def test_error_not_orthonormal_when_orthonormalize_is_false():
    with pytest.raises(DegenerateInputError, match="a is not orthonormal"):
        principal_angles(2 * np.eye(3, 2), np.eye(3, 2), orthonormalize=False)


@pytest.mark.parametrize(
    ("shape", "hint"), [((3,), "reshape"), ((2, 2, 2), "3-D")], ids=["1-D", "3-D"]
)
def test_error_basis_not_2d(shape, hint):
    with pytest.raises(ShapeError, match=rf"a must be a 2-D \(D, p\) basis.*{hint}"):
        principal_angles(np.ones(shape), np.eye(3, 1))


def test_error_empty_basis():
    with pytest.raises(ShapeError, match="at least one row and one column"):
        principal_angles(np.ones((3, 0)), np.eye(3, 1))


def test_error_non_finite_basis():
    a = np.eye(3, 2)
    a[0, 0] = np.nan
    with pytest.raises(NonFiniteError, match="a contains 1 NaN"):
        principal_angles(a, np.eye(3, 2))


def test_error_basis_of_wrong_type():
    with pytest.raises(InputTypeError, match=r"b must be a torch\.Tensor or a numpy\.ndarray"):
        principal_angles(np.eye(3, 2), [[1.0], [0.0], [0.0]])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"distance": "euclid"}, "distance must be one of"),
        ({"unequal_dims": "pad"}, "unequal_dims must be one of"),
    ],
    ids=["distance", "unequal_dims"],
)
def test_error_bad_distance_option(kwargs, match):
    with pytest.raises(InvalidOptionError, match=match):
        grassmann_distance(np.eye(3, 1), np.eye(3, 1), **kwargs)


def test_error_k_larger_than_dimension():
    x, _ = _planted(5)
    with pytest.raises(
        InvalidOptionError, match=r"n_components = 7 is larger than the feature dimension"
    ):
        subspace_of(x, n_components=7)


def test_error_eigenspace_overlap_k_larger_than_dimension():
    x, _ = _planted(5)
    with pytest.raises(
        InvalidOptionError, match=r"n_components = 9 is larger than the feature dimension"
    ):
        eigenspace_overlap(x, x, n_components=9)


def test_error_k_beyond_covariance_rank():
    x = np.random.default_rng(6).standard_normal((3, 5))  # rank of the covariance: 2
    with pytest.raises(
        DegenerateInputError, match=r"varies in only 2 directions.*n_components <= 2"
    ):
        subspace_of(x, n_components=3)


@pytest.mark.parametrize(
    "kwargs", [{}, {"n_components": 2, "variance": 0.9}], ids=["neither", "both"]
)
def test_error_subspace_of_needs_exactly_one_of_k_or_variance(kwargs):
    with pytest.raises(InvalidOptionError, match="exactly one of n_components"):
        subspace_of(_planted(7)[0], **kwargs)


@pytest.mark.parametrize("variance", [0.0, 1.5], ids=["zero", "above-one"])
def test_error_variance_out_of_range(variance):
    with pytest.raises(InvalidOptionError, match=r"variance must lie in \(0.0, 1.0\]"):
        subspace_of(_planted(7)[0], variance=variance)


def test_error_k_not_positive():
    with pytest.raises(InvalidOptionError, match="n_components must be at least 1"):
        subspace_of(_planted(7)[0], n_components=0)


def test_error_zero_variance_representation():
    with pytest.raises(DegenerateInputError, match="x has zero variance"):
        subspace_of(np.ones((10, 3)), n_components=1)


def test_error_zero_variance_in_eigenspace_overlap():
    with pytest.raises(DegenerateInputError, match="y has zero variance"):
        eigenspace_overlap(_planted(8)[0], np.ones((10, 6)), n_components=1)


def test_error_representation_not_2d():
    with pytest.raises(ShapeError, match="x must be a 2-D"):
        subspace_of(np.ones(5), n_components=1)


def test_error_too_few_samples():
    with pytest.raises(TooFewSamplesError, match="x has 1 samples"):
        subspace_of(np.ones((1, 3)), n_components=1)


def test_error_eigenspace_overlap_different_features():
    with pytest.raises(ShapeError, match=r"same features.*\(20, 4\) and \(20, 5\)"):
        eigenspace_overlap(np.ones((20, 4)), np.ones((20, 5)), n_components=1)
