"""Mutual k-NN alignment (k = 10): subspaces (blocked top-k) vs platonic-rep (n × n masks).

Data: X ~ N(0, 1) of shape (n, 768), Y = tanh(X A) + 0.1 ε with A ~ N(0, 1/768), float32.
The peer, ``AlignmentMetrics.mutual_knn`` of minyoungg/platonic-rep, is called as its
pipeline calls it, on L2-normalized features; ours takes the raw features (cosine
neighbors). Both values are printed and checked to agree (within one neighbor swap,
1 / (n k), since the peer ranks in float32 and we re-rank in float64).

Then our own run at a large n (default 100,000; the peer's n × n masks cannot run there) is
timed in a fresh subprocess whose peak resident memory is read with
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (tracemalloc does not see torch's allocations).

Getting the peer (it is never committed here): either

    git clone https://github.com/minyoungg/platonic-rep /tmp/platonic-rep

or, from a bare mirror of it,

    mkdir -p /tmp/platonic-rep
    git --git-dir=<mirror>/repo archive HEAD | tar -x -C /tmp/platonic-rep

(``git --git-dir=<mirror> worktree add /tmp/platonic-rep HEAD`` works too). Its
``metrics.py`` imports torchaudio only for another metric; a stub is installed when
torchaudio is absent.

Usage:

    python benchmarks/bench_mutual_knn.py --peer-dir /tmp/platonic-rep            # both parts
    python benchmarks/bench_mutual_knn.py --peer-dir /tmp/platonic-rep --large-n 0  # n=5,000 only

Prints one markdown table row (the header goes to stderr):

    | n | d | k | subspaces (s) | platonic-rep (s) | speed-up | values | large n | time (s) | peak RSS (GiB) |
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import types
from typing import Any

import torch

HEADER = (
    "| n | d | k | subspaces (s) | platonic-rep (s) | speed-up | values (ours / peer) "
    "| large n | time (s) | peak RSS (GiB) |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def make_data(n: int, d: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    a = torch.randn(d, d, generator=g) / d**0.5
    y = torch.tanh(x @ a) + 0.1 * torch.randn(n, d, generator=g)
    return x, y


def load_peer(peer_dir: str) -> Any:
    if "torchaudio" not in sys.modules and importlib.util.find_spec("torchaudio") is None:
        stub = types.ModuleType("torchaudio")
        stub.functional = types.ModuleType("torchaudio.functional")  # type: ignore[attr-defined]
        sys.modules["torchaudio"] = stub
        sys.modules["torchaudio.functional"] = stub.functional  # type: ignore[attr-defined]
    sys.path.insert(0, os.path.abspath(peer_dir))
    with contextlib.redirect_stdout(sys.stderr):  # it prints a hint about pymp on import
        return importlib.import_module("metrics")


def timed(fn: Any, repeats: int) -> tuple[float, float]:
    """Median wall time of ``repeats`` calls (after one warm-up) and the last value."""
    value = float(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        value = float(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def child_large(n: int, d: int, k: int) -> None:
    """Run in a fresh process: time our mutual_knn at n and report peak RSS as JSON."""
    from subspaces.similarity.neighbors import mutual_knn

    x, y = make_data(n, d)
    start = time.perf_counter()
    value = float(mutual_knn(x, y, k=k))
    elapsed = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    data_bytes = 2 * x.numel() * x.element_size()
    print(
        json.dumps(
            {"time": elapsed, "value": value, "peak_rss": peak_kib * 1024, "data_bytes": data_bytes}
        )
    )


def run_large(n: int, d: int, k: int, threads: int | None) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child-large", str(n), "--d", str(d), "--k", str(k)]
    if threads:
        cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-dir", help="checkout of minyoungg/platonic-rep")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--d", type=int, default=768)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--large-n", type=int, default=100_000, help="0 to skip")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--child-large", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child_large is not None:
        child_large(args.child_large, args.d, args.k)
        return

    from subspaces.similarity.neighbors import mutual_knn

    x, y = make_data(args.n, args.d)
    ours_t, ours_v = timed(lambda: mutual_knn(x, y, k=args.k), args.repeats)
    peer_cell, speed_cell, value_cell = "n/a", "n/a", f"{ours_v:.6f} / n/a"
    if args.peer_dir:
        metrics = load_peer(args.peer_dir)
        normalize = torch.nn.functional.normalize

        def peer() -> float:
            xn, yn = normalize(x, p=2, dim=-1), normalize(y, p=2, dim=-1)
            return float(metrics.AlignmentMetrics.mutual_knn(xn, yn, topk=args.k))

        peer_t, peer_v = timed(peer, args.repeats)
        swap = 1.0 / (args.n * args.k)
        if abs(ours_v - peer_v) > swap + 1e-6:
            raise SystemExit(f"values differ: ours {ours_v!r}, platonic-rep {peer_v!r}")
        peer_cell, speed_cell = f"{peer_t:.2f}", f"{peer_t / ours_t:.1f}×"
        value_cell = f"{ours_v:.6f} / {peer_v:.6f}"
    large_cells = "— | — | —"
    if args.large_n:
        res = run_large(args.large_n, args.d, args.k, args.threads)
        large_cells = f"{args.large_n:,} | {res['time']:.1f} | {res['peak_rss'] / 2**30:.2f}"
    print(HEADER, file=sys.stderr)
    print(
        f"| {args.n:,} | {args.d} | {args.k} | {ours_t:.2f} | {peer_cell} | {speed_cell} "
        f"| {value_cell} | {large_cells} |"
    )


if __name__ == "__main__":
    main()
