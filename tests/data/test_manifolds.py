"""Benchmark manifolds and ball / sphere samplers: shapes, determinism, the defining equations."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from subspaces._checks import InputTypeError, InvalidOptionError, ShapeError
from subspaces.data.manifolds import (
    BENCHMARK_MANIFOLDS,
    ManifoldSpec,
    _beta,
    benchmark_manifold,
    benchmark_manifold_names,
    hyperball,
    hypersphere,
    random_isometric_embedding,
)

NAMES = benchmark_manifold_names()


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def sample(name: str, n: int = 400, seed: int = 0, **kwargs: float) -> tuple[Tensor, int]:
    return benchmark_manifold(name, n, seed=seed, dtype=torch.float64, **kwargs)


def test_the_suite_has_the_standard_names_and_dimensions() -> None:
    assert len(NAMES) == 24
    assert NAMES[0] == "M1_Sphere" and NAMES[-1] == "Mp3_Paraboloid"
    spec = BENCHMARK_MANIFOLDS["M10d_Cubic"]
    assert isinstance(spec, ManifoldSpec)
    assert (spec.intrinsic_dimension, spec.ambient_dimension) == (70, 71)
    assert all(BENCHMARK_MANIFOLDS[n].name == n for n in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_shape_dtype_and_true_dimension(name: str) -> None:
    x, d = sample(name, n=50)
    spec = BENCHMARK_MANIFOLDS[name]
    assert x.shape == (50, spec.ambient_dimension)
    assert x.dtype == torch.float64
    assert d == spec.intrinsic_dimension
    assert bool(torch.isfinite(x).all())


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_points(name: str) -> None:
    a, _ = sample(name, n=30, seed=4)
    b, _ = sample(name, n=30, seed=4)
    c, _ = sample(name, n=30, seed=5)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)


def test_seed_is_an_int_or_a_generator() -> None:
    by_int = hyperball(10, 2, seed=3, dtype=torch.float64)
    by_generator = hyperball(10, 2, seed=_gen(3), dtype=torch.float64)
    torch.testing.assert_close(by_int, by_generator, rtol=0, atol=0)
    with pytest.raises(InputTypeError, match=r"seed must be an integer"):
        hyperball(10, 2, seed="3")  # type: ignore[arg-type]


def test_default_dtype_is_torch_default() -> None:
    x, _ = benchmark_manifold("M7_Roll", 10, seed=0)
    assert x.dtype == torch.get_default_dtype()


def test_sphere_points_have_unit_norm_and_zero_padding() -> None:
    x, _ = sample("M1_Sphere")
    torch.testing.assert_close(x.norm(dim=1), torch.ones(400, dtype=torch.float64))
    assert x.shape[1] == 11


def test_affine_3_to_5_spans_a_3_dimensional_affine_subspace() -> None:
    x, _ = sample("M2_Affine_3to5")
    s = torch.linalg.svdvals(x - x.mean(0))
    assert float(s[3] / s[0]) < 1e-12 and float(s[2] / s[0]) > 0.1


def test_swiss_roll_lies_on_its_spiral() -> None:
    x, _ = sample("M7_Roll")
    t = torch.sqrt(x[:, 0] ** 2 + x[:, 2] ** 2)
    assert bool(((t >= 1.5 * math.pi - 1e-9) & (t <= 4.5 * math.pi + 1e-9)).all())
    torch.testing.assert_close(x[:, 0], t * torch.cos(t))
    assert bool(((x[:, 1] >= 0) & (x[:, 1] <= 21)).all())


def test_helix_1d_satisfies_its_parametrization() -> None:
    x, _ = sample("M5a_Helix1d")
    t = torch.atan2(x[:, 1], x[:, 0])
    ring = torch.sqrt(x[:, 0] ** 2 + x[:, 1] ** 2)
    torch.testing.assert_close(ring, 2 + torch.cos(8 * t))
    torch.testing.assert_close(x[:, 2], torch.sin(8 * t))


def test_cube_surface_points_sit_on_a_face_of_the_unit_cube() -> None:
    x, _ = sample("M10a_Cubic", n=2000)
    assert bool(((x >= 0) & (x <= 1)).all())
    on_face = ((x == 0) | (x == 1)).sum(dim=1)
    assert bool((on_face >= 1).all())
    # faces are chosen uniformly: each of the 22 faces gets ~1/22 of the points
    face_counts = torch.stack([(x == 0).sum(0), (x == 1).sum(0)])
    assert int(face_counts.min()) > 2000 / 22 * 0.5


def test_moebius_band_radius_and_height() -> None:
    x, _ = sample("M11_Moebius")
    phi = torch.atan2(x[:, 1], x[:, 0])
    ring = torch.sqrt(x[:, 0] ** 2 + x[:, 1] ** 2)
    rad = (ring - 1) / (0.5 * torch.cos(5 * phi))
    ok = torch.cos(5 * phi).abs() > 0.1  # away from the zeros of the denominator
    torch.testing.assert_close(x[ok, 2], 0.5 * rad[ok] * torch.sin(5 * phi[ok]))
    assert bool((rad[ok].abs() <= 1 + 1e-9).all())


def test_paraboloid_last_base_coordinate_is_the_sum_of_squares() -> None:
    x, d = sample("Mp2_Paraboloid")
    base = x[:, : d + 1]
    torch.testing.assert_close(base[:, -1], (base[:, :-1] ** 2).sum(1))
    torch.testing.assert_close(x[:, d + 1 : 2 * (d + 1)], torch.sin(base))
    torch.testing.assert_close(x[:, 2 * (d + 1) :], base**2)


@pytest.mark.parametrize(
    ("name", "period"),
    [("M6_Nonlinear", 12), ("M8_Nonlinear", 24), ("Mbeta", 20), ("Mn1_Nonlinear", 36)],
)
def test_coordinates_repeat_with_the_defined_period(name: str, period: int) -> None:
    x, _ = sample(name)
    torch.testing.assert_close(x, x[:, :period].repeat(1, x.shape[1] // period))


def test_beta_sampler_has_the_beta_mean_and_variance() -> None:
    # Beta(10, 0.5): mean 10/10.5, variance ab/((a+b)²(a+b+1)); 40,000 draws: 5 standard errors
    b = _beta(10.0, 0.5, (200, 200), _gen(0)).flatten()
    mean, var = 10 / 10.5, 10 * 0.5 / (10.5**2 * 11.5)
    assert abs(float(b.mean()) - mean) < 5 * math.sqrt(var / b.numel())
    assert abs(float(b.var()) / var - 1) < 0.05
    assert bool(((b > 0) & (b < 1)).all())


def test_noise_is_isotropic_gaussian_of_the_given_std() -> None:
    clean, _ = sample("M9_Affine", n=3000, seed=1)
    noisy, _ = sample("M9_Affine", n=3000, seed=1, noise=0.1)
    # the same generator draws the manifold first, then the noise
    residual = noisy - clean
    assert abs(float(residual.std()) - 0.1) < 0.002
    assert abs(float(residual.mean())) < 0.002


def test_hyperball_is_uniform_in_the_ball() -> None:
    d = 5
    x = hyperball(20000, d, radius=2.0, seed=0, dtype=torch.float64)
    r = x.norm(dim=1)
    assert float(r.max()) <= 2.0
    # P(|x| < 2 · 0.5^(1/d)) = 1/2 for a uniform ball; 20,000 draws: 5 standard errors
    inside = float((r < 2.0 * 0.5 ** (1 / d)).double().mean())
    assert abs(inside - 0.5) < 5 * 0.5 / math.sqrt(20000)
    assert float(x.mean(0).abs().max()) < 0.05


def test_hypersphere_has_d_plus_one_coordinates_on_the_sphere() -> None:
    x = hypersphere(100, 3, radius=3.0, seed=0, dtype=torch.float64)
    assert x.shape == (100, 4)
    torch.testing.assert_close(x.norm(dim=1), torch.full((100,), 3.0, dtype=torch.float64))


def _distances(x: Tensor) -> Tensor:
    return (x[:, None, :] - x[None, :, :]).norm(dim=-1)


def test_isometric_embedding_keeps_every_distance() -> None:
    x = hyperball(60, 4, seed=0, dtype=torch.float64)
    y = random_isometric_embedding(x, 50, seed=1)
    assert y.shape == (60, 50)
    torch.testing.assert_close(_distances(y), _distances(x), rtol=1e-10, atol=1e-12)


def test_isometric_embedding_keeps_dtype() -> None:
    x = hyperball(10, 3, seed=0, dtype=torch.float32)
    assert random_isometric_embedding(x, 8, seed=1).dtype == torch.float32


# --- bad input --------------------------------------------------------------------------


def test_unknown_name_lists_the_choices() -> None:
    with pytest.raises(InvalidOptionError, match=r"name must be one of 'M1_Sphere'.*got 'M7'"):
        benchmark_manifold("M7", 10)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: benchmark_manifold("M7_Roll", 0), InvalidOptionError, r"n must be at least 1"),
        (
            lambda: benchmark_manifold("M7_Roll", 10, noise=-0.1),
            InvalidOptionError,
            r"noise must lie in \[0.0, inf\)",
        ),
        (lambda: hyperball(10, 0), InvalidOptionError, r"d must be at least 1, got 0"),
        (lambda: hyperball(10, 2, radius=0.0), InvalidOptionError, r"radius must lie in \(0.0"),
        (lambda: hypersphere(2.5, 2), InputTypeError, r"n must be an integer, got float"),  # type: ignore[arg-type]
        (
            lambda: random_isometric_embedding(torch.ones(5, 4), 3),
            InvalidOptionError,
            r"ambient_dimension must be at least the points' dimension 4, got 3",
        ),
        (
            lambda: random_isometric_embedding(torch.ones(5), 3),
            ShapeError,
            r"points must be a 2-D \(n, d\) array, got shape \(5,\)",
        ),
    ],
    ids=["n0", "noise", "ball-d0", "radius", "n-float", "embed-narrow", "embed-1d"],
)
def test_bad_arguments(call: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()  # type: ignore[operator]
