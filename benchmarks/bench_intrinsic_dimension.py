"""TwoNN and MLE intrinsic dimension at scale, side by side with the peers.

Data: the 10-sphere S^10 (``benchmark_manifold("M1_Sphere")``, 10-dimensional, in R^11),
mapped isometrically into R^D by a random orthonormal map, float32 (as activations are).
Every implementation gets the same points (the peers the float64 copy of the float32
values), so estimates can be checked against each other.

Two benchmarks (results go to BENCHMARKS.md with the command that made them):

``compare``  n = 20,000 × 100 by default: ``subspaces`` TwoNN (linear fit, 10% discarded) and
             MLE (k = 20, MacKay-Ghahramani averaging) against scikit-dimension's
             ``TwoNN()`` and ``MLE()`` (same definitions and defaults) and, with
             ``--dadapy-python``, DADApy's ``Data(X).compute_id_2NN()`` (the same TwoNN
             linear fit). DADApy pins numpy<2, so it runs in its own virtual environment: the
             data go to a .npy file and that environment's python times the call in a
             subprocess.
``large``    n = 1,000,000 × 100 by default: ``subspaces`` TwoNN and MLE only. The exact kNN
             costs n² D multiply-adds (2·10^14 flops at 1M × 100): it is a GPU job, or a long
             one on a CPU. ``--chunk-size`` sets the query rows per block (the score block is
             block × n floats; a few hundred rows keep the matmul efficient).

Each prints markdown table rows: implementation, estimator, time, estimate, and the relative
difference from the ``subspaces`` estimate.

Usage::

    python benchmarks/bench_intrinsic_dimension.py compare --n 20000 --d 100 \\
        --dadapy-python /path/to/dadapy-venv/bin/python
    python benchmarks/bench_intrinsic_dimension.py large --n 1000000 --d 100 --chunk-size 256
    python benchmarks/bench_intrinsic_dimension.py compare --n 2000  # a quick check
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from subspaces.data.manifolds import benchmark_manifold, random_isometric_embedding
from subspaces.geometry.intrinsic_dimension import mle_id, twonn
from subspaces.linalg import CHUNK_SIZE

DADAPY_SCRIPT = """
import json, sys, time
import numpy as np
from dadapy import Data
x = np.load(sys.argv[1])
start = time.perf_counter()
data = Data(x)
result = data.compute_id_2NN()
elapsed = time.perf_counter() - start
estimate = result[0] if isinstance(result, tuple) else data.intrinsic_dim
print(json.dumps({"time": elapsed, "estimate": float(estimate)}))
"""


def make_data(n: int, d: int, seed: int = 0) -> torch.Tensor:
    """n points of S^10 in R^d, float32."""
    sphere, _ = benchmark_manifold("M1_Sphere", n, seed=seed, dtype=torch.float32)
    return random_isometric_embedding(sphere, d, seed=seed + 1)


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Best wall time of ``repeats`` runs, and the last result."""
    best, value = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def row(impl: str, estimator: str, seconds: float, estimate: float, reference: float) -> None:
    rel = abs(estimate - reference) / abs(reference)
    print(f"| {impl} | {estimator} | {seconds:.2f} | {estimate:.6f} | {rel:.1e} |")


def header(title: str) -> None:
    print(f"{title}, {torch.get_num_threads()} torch threads\n")
    print("| implementation | estimator | time (s) | estimate | rel. diff. from subspaces |")
    print("|---|---|---|---|---|")


def run_dadapy(python: str, x: np.ndarray) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.npy"
        np.save(path, x)
        out = subprocess.run(
            [python, "-c", DADAPY_SCRIPT, str(path)],
            check=True,
            capture_output=True,
            text=True,
        )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def bench_compare(args: argparse.Namespace) -> None:
    x = make_data(args.n, args.d, args.seed)
    x64 = x.double().numpy()  # the peers get exactly the same points
    header(f"TwoNN and MLE, S^10 in R^{args.d}, n={args.n}")
    t_twonn, ours_twonn = timed(lambda: float(twonn(x, chunk_size=args.chunk_size)), args.repeats)
    t_mle, ours_mle = timed(
        lambda: float(mle_id(x, k=20, chunk_size=args.chunk_size)), args.repeats
    )
    row("subspaces", "TwoNN", t_twonn, ours_twonn, ours_twonn)
    row("subspaces", "MLE k=20", t_mle, ours_mle, ours_mle)
    if not args.skip_skdim:
        import skdim

        t, ref = timed(lambda: float(skdim.id.TwoNN().fit(x64).dimension_), 1)
        row("scikit-dimension", "TwoNN", t, ref, ours_twonn)
        print(f"<!-- speed-up TwoNN vs scikit-dimension: {t / t_twonn:.1f}x -->")
        t, ref = timed(lambda: float(skdim.id.MLE().fit(x64, n_neighbors=20).dimension_), 1)
        row("scikit-dimension", "MLE k=20", t, ref, ours_mle)
        print(f"<!-- speed-up MLE vs scikit-dimension: {t / t_mle:.1f}x -->")
    if args.dadapy_python:
        res = run_dadapy(args.dadapy_python, x64)
        row("DADApy (own venv)", "TwoNN", res["time"], res["estimate"], ours_twonn)
        print(f"<!-- speed-up TwoNN vs DADApy: {res['time'] / t_twonn:.1f}x -->")


def bench_large(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    x = make_data(args.n, args.d, args.seed)
    if args.device != "cpu":
        x = x.to(args.device)
    made = time.perf_counter() - t0
    header(
        f"TwoNN and MLE, S^10 in R^{args.d}, n={args.n} on {x.device} (data made in {made:.0f} s)"
    )

    def sync() -> None:
        if x.device.type == "cuda":
            torch.cuda.synchronize()

    def run(fn: Callable[[], torch.Tensor]) -> tuple[float, float]:
        sync()
        start = time.perf_counter()
        value = float(fn())
        sync()
        return time.perf_counter() - start, value

    t, ours_twonn = run(lambda: twonn(x, chunk_size=args.chunk_size))
    row("subspaces", "TwoNN", t, ours_twonn, ours_twonn)
    t, ours_mle = run(lambda: mle_id(x, k=20, chunk_size=args.chunk_size))
    row("subspaces", "MLE k=20", t, ours_mle, ours_mle)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="bench", required=True)
    compare = sub.add_parser("compare", help="subspaces vs scikit-dimension (and DADApy)")
    compare.add_argument("--n", type=int, default=20_000)
    compare.add_argument("--d", type=int, default=100)
    compare.add_argument("--repeats", type=int, default=3)
    compare.add_argument("--chunk-size", type=int, default=CHUNK_SIZE)
    compare.add_argument("--skip-skdim", action="store_true")
    compare.add_argument("--dadapy-python", default=None, help="python of a venv with dadapy")
    compare.add_argument("--seed", type=int, default=0)
    large = sub.add_parser("large", help="subspaces alone at n = 1,000,000")
    large.add_argument("--n", type=int, default=1_000_000)
    large.add_argument("--d", type=int, default=100)
    large.add_argument("--chunk-size", type=int, default=256)
    large.add_argument("--device", default="cpu", help="e.g. cuda")
    large.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    {"compare": bench_compare, "large": bench_large}[args.bench](args)


if __name__ == "__main__":
    sys.exit(main())
