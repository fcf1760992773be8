"""Generated data with known geometry: the standard benchmark manifolds of intrinsic dimension."""

from subspaces.data.manifolds import (
    BENCHMARK_MANIFOLDS,
    ManifoldSpec,
    benchmark_manifold,
    benchmark_manifold_names,
    hyperball,
    hypersphere,
    random_isometric_embedding,
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
