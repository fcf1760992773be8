"""Benchmark manifolds with known intrinsic dimension, and ball / sphere samplers.

The standard suite of Hein & Audibert (2005), extended by Campadelli et al. (2015), in the
form that scikit-dimension's ``BenchmarkManifolds`` (after GeoMLE) made the common
reference: the same names, intrinsic and ambient dimensions and parametrizations, written
here from those definitions in torch. Every sampler is deterministic given a
``seed`` (an ``int``, or a ``torch.Generator`` that keeps its state between calls);
``seed=None`` uses torch's global generator.

Differences from scikit-dimension, on purpose:

- ``noise`` is the standard deviation of isotropic Gaussian noise added to every ambient
  coordinate (scikit-dimension's default adds uniform noise ``(U - 0.5) · noise``).
- ``M10*_Cubic`` picks a face of the (d+1)-cube uniformly at random for each point, a
  uniform sample of the cube's surface (scikit-dimension fills the faces in order and
  truncates, so the last faces get fewer points).
- ``M5a_Helix1d`` draws t uniformly in [0, 2π) (scikit-dimension shifts it by 2π/n).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor

from subspaces._base import Result
from subspaces._checks import (
    InvalidOptionError,
    NumericRangeError,
    ShapeError,
    as_float_tensor,
    check_choice,
    check_fits_in_memory,
    check_float_dtype,
    check_matrix,
    check_positive_int,
    check_positive_real,
    seed_generator,
)

__all__ = [
    "BENCHMARK_MANIFOLDS",
    "ManifoldSpec",
    "benchmark_manifold",
    "benchmark_manifold_names",
    "hyperball",
    "hypersphere",
    "random_isometric_embedding",
]

_F64 = torch.float64


@dataclass(frozen=True)
class ManifoldSpec(Result):
    """One benchmark manifold: its name, intrinsic and ambient dimensions, description.

    Examples:
        >>> from subspaces.data import BENCHMARK_MANIFOLDS
        >>> spec = BENCHMARK_MANIFOLDS["M7_Roll"]
        >>> spec.intrinsic_dimension, spec.ambient_dimension
        (2, 3)
        >>> sorted(spec.as_dict())
        ['ambient_dimension', 'description', 'intrinsic_dimension', 'name']
    """

    name: str
    intrinsic_dimension: int
    ambient_dimension: int
    description: str


def _uniform(n: int, d: int, g: torch.Generator | None) -> Tensor:
    return torch.rand(n, d, generator=g, dtype=_F64)


def _normal(n: int, d: int, g: torch.Generator | None) -> Tensor:
    return torch.randn(n, d, generator=g, dtype=_F64)


def _pad(x: Tensor, dim: int) -> Tensor:
    """Append zero coordinates up to ``dim`` columns."""
    if x.shape[1] == dim:
        return x
    return torch.cat([x, x.new_zeros(x.shape[0], dim - x.shape[1])], dim=1)


def _gamma(shape: float, n: int, g: torch.Generator | None) -> Tensor:
    """Gamma(shape, 1) samples by Marsaglia & Tsang (2000), with the boost for shape < 1."""
    if shape < 1.0:
        boost = torch.rand(n, generator=g, dtype=_F64).pow(1.0 / shape)
        return _gamma(shape + 1.0, n, g) * boost
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    out = torch.empty(n, dtype=_F64)
    filled = 0
    while filled < n:
        m = 2 * (n - filled) + 16
        z = torch.randn(m, generator=g, dtype=_F64)
        u = torch.rand(m, generator=g, dtype=_F64)
        v = (1.0 + c * z) ** 3
        ok = v > 0
        ok &= torch.log(u) < 0.5 * z * z + d - d * v + d * torch.log(v.clamp(min=1e-300))
        accepted = (d * v)[ok][: n - filled]
        out[filled : filled + accepted.numel()] = accepted
        filled += accepted.numel()
    return out


def _beta(a: float, b: float, size: tuple[int, int], g: torch.Generator | None) -> Tensor:
    count = size[0] * size[1]
    ga, gb = _gamma(a, count, g), _gamma(b, count, g)
    return (ga / (ga + gb)).reshape(size)


# --- the suite --------------------------------------------------------------------------


def _sphere(n: int, d: int, dim: int, g: torch.Generator | None) -> Tensor:
    v = _normal(n, d + 1, g)
    return _pad(v / v.norm(dim=1, keepdim=True), dim)


def _affine_3_to_5(n: int, d: int, dim: int, g: torch.Generator | None) -> Tensor:
    p = 4.0 * _uniform(n, 3, g)
    a = torch.tensor(
        [[1.2, -0.5, 0.0], [0.5, 0.9, 0.0], [-0.5, -0.2, 1.0], [0.4, -0.9, -0.1], [1.1, -0.3, 0.0]],
        dtype=_F64,
    )
    b = torch.tensor([3.0, -1.0, 0.0, 0.0, 8.0], dtype=_F64)
    return p @ a.T + b


def _nonlinear_4_to_6(n: int, d: int, dim: int, g: torch.Generator | None) -> Tensor:
    p0, p1, p2, p3 = _uniform(n, 4, g).unbind(1)
    return torch.stack(
        [
            p1**2 * torch.cos(2 * math.pi * p0),
            p2**2 * torch.sin(2 * math.pi * p0),
            p1 + p2 + (p1 - p3) ** 2,
            p1 - 2 * p2 + (p0 - p3) ** 2,
            -p1 - 2 * p2 + (p2 - p3) ** 2,
            p0**2 - p1**2 + p2**2 - p3**2,
        ],
        dim=1,
    )


def _nonlinear(n: int, d: int, dim: int, g: torch.Generator | None) -> Tensor:
    """Pairs (p_{i+1} cos 2π p_i, p_{i+1} sin 2π p_i), i = 1..d (cyclic), repeated to fill dim."""
    p = _uniform(n, d, g)
    radius = torch.roll(p, shifts=-1, dims=1)
    pairs = torch.stack(
        [radius * torch.cos(2 * math.pi * p), radius * torch.sin(2 * math.pi * p)], dim=2
    ).reshape(n, 2 * d)
    return pairs.repeat(1, dim // (2 * d))


def _helix_1d(n: int, d: int, dim: int, g: torch.Generator | None) -> Tensor:
    t = 2 * math.pi * _uniform(n, 1, g)[:, 0]
    ring = 2 + torch.cos(8 * t)
    return _pad(torch.stack([ring * torch.cos(t), ring * torch.sin(t), torch.sin(8 * t)], 1), dim)


def _helix_2d(n: int, d: int, dim: int, g: torch.Generator | None) -> Tensor:
    r, p = (10 * math.pi * _uniform(n, 2, g)).unbind(1)
    return _pad(torch.stack([r * torch.cos(p), r * torch.sin(p), 0.5 * p], 1), dim)


def _swiss_roll(n: int, d: int, dim: int, g: torch.Generator | None) -> Tensor:
    u = _uniform(n, 2, g)
    t = 1.5 * math.pi * (1 + 2 * u[:, 0])
    height = 21 * u[:, 1]
    return _pad(torch.stack([t * torch.cos(t), height, t * torch.sin(t)], 1), dim)


def _affine(n: int, d: int, dim: int, g: torch.Generator | None) -> Tensor:
    return _pad(5 * _uniform(n, d, g) - 2.5, dim)


def _cube_surface(n: int, d: int, dim: int, g: torch.Generator | None) -> Tensor:
    """Uniform on the surface of [0, 1]^(d+1): a random face, then uniform on it."""
    x = _uniform(n, d + 1, g)
    face = torch.randint(0, 2 * (d + 1), (n,), generator=g)
    rows = torch.arange(n)
    x[rows, face // 2] = (face % 2).to(_F64)
    return _pad(x, dim)


def _moebius(n: int, d: int, dim: int, g: torch.Generator | None) -> Tensor:
    u = _uniform(n, 2, g)
    phi = 2 * math.pi * u[:, 0]
    rad = 2 * u[:, 1] - 1
    ring = 1 + 0.5 * rad * torch.cos(5 * phi)
    return torch.stack(
        [ring * torch.cos(phi), ring * torch.sin(phi), 0.5 * rad * torch.sin(5 * phi)], 1
    )


def _gaussian(n: int, d: int, dim: int, g: torch.Generator | None) -> Tensor:
    return _pad(_normal(n, d, g), dim)


def _s_curve(n: int, d: int, dim: int, g: torch.Generator | None) -> Tensor:
    u = _uniform(n, 2, g)
    t = 3 * math.pi * (u[:, 0] - 0.5)
    p = 2 * u[:, 1]
    return _pad(torch.stack([torch.sin(t), p, torch.sign(t) * (torch.cos(t) - 1)], 1), dim)


def _spiral(n: int, d: int, dim: int, g: torch.Generator | None) -> Tensor:
    t = 10 * math.pi * _uniform(n, 1, g)[:, 0]
    return _pad(torch.stack([100 * torch.cos(t), 100 * torch.sin(t), t], 1), dim)


def _campadelli_beta(n: int, d: int, dim: int, g: torch.Generator | None) -> Tensor:
    x = _beta(10.0, 0.5, (n, d), g)
    t1 = x * torch.sin(torch.cos(2 * math.pi * x))
    t2 = x * torch.cos(torch.sin(2 * math.pi * x))
    return torch.cat([t1, t2, t1, t2], dim=1)


def _campadelli_nonlinear(n: int, d: int, dim: int, g: torch.Generator | None) -> Tensor:
    x = _uniform(n, d, g)
    xr = x.flip(1)  # column i holds x_{d-1-i}
    t1 = torch.tan(x * torch.cos(xr))
    t2 = torch.atan(xr * torch.sin(x))
    return torch.cat([t1, t2, t1, t2], dim=1)


def _paraboloid(n: int, d: int, dim: int, g: torch.Generator | None) -> Tensor:
    e = -torch.log1p(-_uniform(n, d + 1, g))  # Exp(1)
    x = 1.0 / (1.0 + e[:, 1:] / e[:, :1])  # multivariate Burr, alpha = 1
    base = torch.cat([x, (x * x).sum(1, keepdim=True)], dim=1)
    return torch.cat([base, torch.sin(base), base * base], dim=1)


_Sampler = Callable[[int, int, int, torch.Generator | None], Tensor]

_SUITE: tuple[tuple[str, int, int, str, _Sampler], ...] = (
    ("M1_Sphere", 10, 11, "10-sphere in R^11", _sphere),
    ("M2_Affine_3to5", 3, 5, "3-d affine space in R^5", _affine_3_to_5),
    ("M3_Nonlinear_4to6", 4, 6, "concentrated 4-d figure, mistakable for 3-d", _nonlinear_4_to_6),
    ("M4_Nonlinear", 4, 8, "nonlinear 4-d manifold in R^8", _nonlinear),
    ("M5a_Helix1d", 1, 3, "1-d helix in R^3", _helix_1d),
    ("M5b_Helix2d", 2, 3, "2-d helix (helicoid) in R^3", _helix_2d),
    ("M6_Nonlinear", 6, 36, "nonlinear 6-d manifold in R^36", _nonlinear),
    ("M7_Roll", 2, 3, "Swiss roll", _swiss_roll),
    ("M8_Nonlinear", 12, 72, "nonlinear, highly curved 12-d manifold in R^72", _nonlinear),
    ("M9_Affine", 20, 20, "20-d affine space (a cube) in R^20", _affine),
    ("M10a_Cubic", 10, 11, "surface of the 11-cube (10-d)", _cube_surface),
    ("M10b_Cubic", 17, 18, "surface of the 18-cube (17-d)", _cube_surface),
    ("M10c_Cubic", 24, 25, "surface of the 25-cube (24-d)", _cube_surface),
    ("M10d_Cubic", 70, 71, "surface of the 71-cube (70-d)", _cube_surface),
    ("M11_Moebius", 2, 3, "Möbius band, 10 times twisted", _moebius),
    ("M12_Norm", 20, 20, "isotropic 20-d Gaussian", _gaussian),
    ("M13a_Scurve", 2, 3, "2-d S-curve", _s_curve),
    ("M13b_Spiral", 1, 13, "1-d helix curve in R^13", _spiral),
    ("Mbeta", 10, 40, "10-d manifold with a smooth non-uniform (beta) density", _campadelli_beta),
    ("Mn1_Nonlinear", 18, 72, "nonlinearly embedded 18-d manifold", _campadelli_nonlinear),
    ("Mn2_Nonlinear", 24, 96, "nonlinearly embedded 24-d manifold", _campadelli_nonlinear),
    ("Mp1_Paraboloid", 3, 12, "3-d paraboloid, multivariate Burr density", _paraboloid),
    ("Mp2_Paraboloid", 6, 21, "6-d paraboloid, multivariate Burr density", _paraboloid),
    ("Mp3_Paraboloid", 9, 30, "9-d paraboloid, multivariate Burr density", _paraboloid),
)

BENCHMARK_MANIFOLDS: Mapping[str, ManifoldSpec] = MappingProxyType(
    {name: ManifoldSpec(name, d, dim, desc) for name, d, dim, desc, _ in _SUITE}
)
"""The benchmark suite by name: intrinsic and ambient dimension and a description."""

_SAMPLERS: dict[str, _Sampler] = {name: fn for name, _, _, _, fn in _SUITE}


def benchmark_manifold_names() -> tuple[str, ...]:
    """Names accepted by :func:`benchmark_manifold`, in the suite's order (M1 ... Mp3).

    Examples:
        >>> from subspaces.data import benchmark_manifold_names
        >>> benchmark_manifold_names()[:3]
        ('M1_Sphere', 'M2_Affine_3to5', 'M3_Nonlinear_4to6')
    """
    return tuple(BENCHMARK_MANIFOLDS)


def _finish(
    x: Tensor, noise: float, generator: torch.Generator | None, dtype: torch.dtype | None
) -> Tensor:
    if noise > 0.0:
        x = x + noise * torch.randn(x.shape, generator=generator, dtype=_F64)
    out = x.to(dtype or torch.get_default_dtype())
    if not bool(torch.isfinite(out).all()):
        raise NumericRangeError(
            f"the points overflow {out.dtype} (largest magnitude {float(x.abs().max()):.3g}); "
            "pass a smaller radius or noise, or dtype=torch.float64."
        )
    return out


def _check_noise(noise: Any) -> float:
    return check_positive_real(noise, name="noise", allow_zero=True)


def _check_sampling(
    n: int, d: int, *, names: tuple[str, str], seed: Any, dtype: Any
) -> tuple[torch.Generator | None, torch.dtype | None]:
    """The random source and dtype, and refuse an (n, d) sample that cannot fit in memory."""
    generator = seed_generator(seed)
    dtype = check_float_dtype(dtype)
    larger = names[0] if n >= d else names[1]
    check_fits_in_memory(
        n * d,
        dtype=_F64,
        device="cpu",
        name=larger,
        value=n if larger == names[0] else d,
        what=f"({n}, {d}) float64 points",
    )
    return generator, dtype


def benchmark_manifold(
    name: str,
    n: int,
    *,
    noise: float = 0.0,
    seed: int | torch.Generator | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[Tensor, int]:
    """Sample ``n`` points of a benchmark manifold of known intrinsic dimension.

    The suite of Hein & Audibert (2005, "Intrinsic dimensionality estimation of
    submanifolds in R^d") and Campadelli et al. (2015, "Intrinsic dimension estimation:
    relevant techniques and a benchmark framework"), with the names, dimensions and
    parametrizations of scikit-dimension's ``BenchmarkManifolds``: M1 sphere, M2 affine
    3-to-5, M3 nonlinear 4-to-6, M4/M6/M8 nonlinear (d = 4, 6, 12), M5a/b helices, M7 Swiss
    roll, M9 affine, M10a-d hypercube surfaces (d = 10, 17, 24, 70), M11 Möbius band, M12
    Gaussian, M13a S-curve, M13b spiral, Mbeta, Mn1/Mn2 nonlinear, Mp1-3 paraboloids. See
    :data:`BENCHMARK_MANIFOLDS` for each one's dimensions.

    Args:
        name: one of :func:`benchmark_manifold_names` (e.g. ``"M7_Roll"``).
        n: number of points.
        noise: standard deviation of isotropic Gaussian noise added to every ambient
            coordinate (0: points on the manifold).
        seed: an ``int`` or a (CPU) ``torch.Generator`` for reproducible samples; None uses
            torch's global generator.
        dtype: floating dtype of the points (default: torch's default dtype); they are
            computed in float64 and then cast.

    Returns:
        ``(points, intrinsic_dimension)``: an ``(n, ambient_dimension)`` tensor and an int.

    Examples:
        >>> from subspaces.data import benchmark_manifold
        >>> x, dim = benchmark_manifold("M7_Roll", 100, seed=0)
        >>> tuple(x.shape), dim
        ((100, 3), 2)
    """
    name = check_choice(name, name="name", choices=benchmark_manifold_names())
    n = check_positive_int(n, name="n")
    noise = _check_noise(noise)
    spec = BENCHMARK_MANIFOLDS[name]
    generator, dtype = _check_sampling(
        n, spec.ambient_dimension, names=("n", "name"), seed=seed, dtype=dtype
    )
    x = _SAMPLERS[name](n, spec.intrinsic_dimension, spec.ambient_dimension, generator)
    return _finish(x, noise, generator, dtype), spec.intrinsic_dimension


def hyperball(
    n: int,
    d: int,
    *,
    radius: float = 1.0,
    noise: float = 0.0,
    seed: int | torch.Generator | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """``n`` points uniform in the d-dimensional ball of ``radius`` in R^d (intrinsic dim d).

    A Gaussian direction scaled by ``radius · U^(1/d)``, U uniform in (0, 1): the same law
    as scikit-dimension's ``hyperBall(n, d)``.

    Args:
        n: number of points. d: the ball's dimension.
        radius: the ball's radius. noise: standard deviation of Gaussian noise added to
            every coordinate.
        seed: an ``int`` or a (CPU) ``torch.Generator`` for reproducible samples; None uses
            torch's global generator.
        dtype: floating dtype of the points (default: torch's default dtype).

    Returns:
        An ``(n, d)`` tensor.

    Examples:
        >>> from subspaces.data import hyperball
        >>> x = hyperball(500, 3, radius=2.0, seed=0)
        >>> tuple(x.shape), bool(x.norm(dim=1).max() <= 2.0)
        ((500, 3), True)
    """
    n = check_positive_int(n, name="n")
    d = check_positive_int(d, name="d")
    radius = check_positive_real(radius, name="radius")
    noise = _check_noise(noise)
    generator, dtype = _check_sampling(n, d, names=("n", "d"), seed=seed, dtype=dtype)
    v = _sphere(n, d - 1, d, generator)  # a uniform direction in R^d
    r = radius * _uniform(n, 1, generator).pow(1.0 / d)
    return _finish(v * r, noise, generator, dtype)


def hypersphere(
    n: int,
    d: int,
    *,
    radius: float = 1.0,
    noise: float = 0.0,
    seed: int | torch.Generator | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """``n`` points uniform on the d-sphere of ``radius`` in R^(d+1) (intrinsic dimension d).

    As scikit-dimension's ``hyperSphere(n, d)``: ``d`` is the sphere's own dimension, so the
    points have ``d + 1`` coordinates (a normalized Gaussian vector).

    Args:
        n: number of points. d: the sphere's own dimension.
        radius: the sphere's radius. noise: standard deviation of Gaussian noise added to
            every coordinate.
        seed: an ``int`` or a (CPU) ``torch.Generator`` for reproducible samples; None uses
            torch's global generator.
        dtype: floating dtype of the points (default: torch's default dtype).

    Returns:
        An ``(n, d + 1)`` tensor.

    Examples:
        >>> from subspaces.data import hypersphere
        >>> x = hypersphere(200, 2, radius=3.0, seed=0, dtype=torch.float64)
        >>> tuple(x.shape), round(float(x.norm(dim=1).mean()), 4)
        ((200, 3), 3.0)
    """
    n = check_positive_int(n, name="n")
    d = check_positive_int(d, name="d")
    radius = check_positive_real(radius, name="radius")
    noise = _check_noise(noise)
    generator, dtype = _check_sampling(n, d + 1, names=("n", "d"), seed=seed, dtype=dtype)
    return _finish(radius * _sphere(n, d, d + 1, generator), noise, generator, dtype)


def random_isometric_embedding(
    points: Any, ambient_dimension: int, *, seed: int | torch.Generator | None = None
) -> Tensor:
    """Embed ``(n, d)`` points isometrically in R^D by a random orthonormal map.

    ``y = x Q^T`` with ``Q`` a ``(D, d)`` matrix with orthonormal columns (QR of a Gaussian
    matrix, Haar-distributed), so all distances, hence the intrinsic dimension, are kept.
    Used to put a low-dimensional manifold in a wide representation space.

    Args:
        points: ``(n, d)`` array. ambient_dimension: ``D >= d``.
        seed: an ``int`` or a (CPU) ``torch.Generator`` for a reproducible map; None uses
            torch's global generator.

    Returns:
        An ``(n, D)`` tensor of the points' dtype, on their device.

    Examples:
        >>> from subspaces.data import hyperball, random_isometric_embedding
        >>> x = hyperball(50, 2, seed=0, dtype=torch.float64)
        >>> y = random_isometric_embedding(x, 10, seed=1)
        >>> tuple(y.shape), bool(torch.allclose(x @ x.T, y @ y.T))  # distances kept
        ((50, 10), True)
    """
    x = as_float_tensor(points, name="points")
    if x.ndim != 2:
        raise ShapeError(f"points must be a 2-D (n, d) array, got shape {tuple(x.shape)}.")
    x = check_matrix(x, name="points", min_samples=1)
    dim = check_positive_int(ambient_dimension, name="ambient_dimension")
    if dim < x.shape[1]:
        raise InvalidOptionError(
            f"ambient_dimension must be at least the points' dimension {x.shape[1]}, got {dim}; "
            "an isometric embedding cannot lower the dimension."
        )
    generator = seed_generator(seed)
    check_fits_in_memory(
        max(x.shape[0], x.shape[1]) * dim,
        dtype=_F64,
        device=x.device,
        name="ambient_dimension",
        value=dim,
        what=f"the (n, D) = ({x.shape[0]}, {dim}) embedding",
    )
    q, r = torch.linalg.qr(_normal(dim, x.shape[1], generator))
    q = q * torch.sign(torch.diagonal(r))[None, :]  # Haar measure: fix the signs
    return x @ q.to(device=x.device, dtype=x.dtype).T
