"""TwoNN, MLE and GRIDE at n = 1,000,000 with neighbors="approximate" (HNSW through faiss).

Data: the 10-sphere S^10 (``benchmark_manifold("M1_Sphere")``, 10-dimensional, rank 11),
mapped isometrically into R^D (D = 100) by a random orthonormal map, float32, as in
``bench_intrinsic_dimension.py``.

Two parts (results go to BENCHMARKS.md with the command that made them):

``deviation``  at each n of ``--exact-ns`` (default 100,000 and 200,000): each estimator with
               ``neighbors="exact"`` and ``"approximate"``: both times, the recall, and the
               relative deviation |approximate − exact| / exact.
``large``      at ``--n`` (default 1,000,000): each estimator with ``neighbors="approximate"``
               only: time (search, recall sample and estimate together), recall, estimate.

Estimators: TwoNN (linear fit, 10% discarded; k = 2), MLE (k = 20, inverse averaging) and
GRIDE (k = (1, 2), its default). Each call runs its own neighbor search, as a user's call
would. The recall is measured by the library on 1,000 seeded queries (``ANNOptions``).

Usage::

    python benchmarks/bench_approximate_intrinsic_dimension.py             # both parts
    python benchmarks/bench_approximate_intrinsic_dimension.py --exact-ns   # large only
    python benchmarks/bench_approximate_intrinsic_dimension.py --quick      # a smoke test
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from subspaces.data.manifolds import benchmark_manifold, random_isometric_embedding
from subspaces.geometry import gride, mle_id, twonn

ESTIMATORS: dict[str, Callable[..., Any]] = {
    "TwoNN": lambda x, neighbors: twonn(x, neighbors=neighbors),
    "MLE k=20": lambda x, neighbors: mle_id(x, k=20, neighbors=neighbors),
    "GRIDE k=(1,2)": lambda x, neighbors: gride(x, neighbors=neighbors),
}


def make_data(n: int, d: int, seed: int = 0) -> torch.Tensor:
    """n points of S^10 in R^d, float32."""
    sphere, _ = benchmark_manifold("M1_Sphere", n, seed=seed, dtype=torch.float32)
    return random_isometric_embedding(sphere, d, seed=seed + 1)


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - start, value


def bench_deviation(ns: list[int], d: int, seed: int) -> None:
    print(f"\nExact and approximate, S^10 in R^{d}, {torch.get_num_threads()} torch threads\n")
    print(
        "| n | estimator | exact (s) | exact estimate | approximate (s) | recall "
        "| approximate estimate | rel. deviation |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for n in ns:
        x = make_data(n, d, seed)
        for name, fn in ESTIMATORS.items():
            t_exact, exact = timed(fn, x, "exact")
            t_approx, approx = timed(fn, x, "approximate")
            dev = abs(float(approx.value) - float(exact)) / abs(float(exact))
            print(
                f"| {n:,} | {name} | {t_exact:.1f} | {float(exact):.4f} | {t_approx:.1f} "
                f"| {float(approx.recall):.4f} | {float(approx.value):.4f} | {dev:.1e} |",
                flush=True,
            )


def bench_large(n: int, d: int, seed: int) -> None:
    made, x = timed(make_data, n, d, seed)
    print(
        f"\nApproximate only, S^10 in R^{d}, n={n:,} (data made in {made:.1f} s), "
        f"{torch.get_num_threads()} torch threads\n"
    )
    print("| n | estimator | time (s) | recall | estimate |")
    print("|---|---|---|---|---|")
    total = 0.0
    for name, fn in ESTIMATORS.items():
        t, res = timed(fn, x, "approximate")
        total += t
        print(
            f"| {n:,} | {name} | {t:.1f} | {float(res.recall):.4f} | {float(res.value):.4f} |",
            flush=True,
        )
    print(f"\n<!-- all three: {total:.1f} s -->")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="size of the large part")
    parser.add_argument(
        "--exact-ns",
        type=int,
        nargs="*",
        default=[100_000, 200_000],
        help="sizes of the exact-vs-approximate part (none: skip it)",
    )
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.exact_ns, args.d = 1500, [1000], 20
    if args.exact_ns:
        bench_deviation(args.exact_ns, args.d, args.seed)
    if not args.skip_large:
        bench_large(args.n, args.d, args.seed)


if __name__ == "__main__":
    sys.exit(main())
