"""Exact linear CKA at scale, side by side with the peers, on the machine it runs on.

Three benchmarks (results go to BENCHMARKS.md with the command that made them):

``exact``   X ~ N(0, 1) of n × d float32, Y = tanh(X A) + noise. Error against the float64
            value and time of: the naive float32 computation (three float32 products on
            centered data), ``subspaces.similarity.linear_cka``, ReSi's feature-space CKA (float32
            and float64), and the full-Gram PyPI peers (ckatorch, repsim) at the largest n each
            reaches under a memory cap (they need n × n memory).
``matrix``  an L × L layer matrix, one model with itself and model A against model B:
            ``pairwise`` against looping the fastest peer (ReSi feature-space CKA) over the pairs.
``stream``  n × d pairs streamed from safetensors shards on disk through ``LinearCKA``;
            peak resident memory of the process.

ReSi (Klabunde et al.) is not on PyPI and its package is also named ``repsim``, like K. You's
PyPI package; give its checkout with ``--resi-dir`` (a folder holding ReSi's ``repsim/``, e.g.
``git archive HEAD repsim | tar -x -C DIR`` in a clone). Without it, ReSi columns are skipped.

Usage::

    python benchmarks/bench_linear_cka.py exact  --n 50000 --d 768 --resi-dir DIR
    python benchmarks/bench_linear_cka.py matrix --n 20000 --d 768 --layers 12 --resi-dir DIR
    python benchmarks/bench_linear_cka.py stream --n 1000000 --d 768 --data-dir benchmarks/data
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from subspaces.similarity import LinearCKA, linear_cka, pairwise


def make_data(n: int, d: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    a = torch.randn(d, d, generator=g) / d**0.5
    y = torch.tanh(x @ a) + 0.1 * torch.randn(n, d, generator=g)
    return x, y


def naive_cka(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Three products on centered data, in the input's dtype."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    return (yc.T @ xc).pow(2).sum() / ((xc.T @ xc).norm() * (yc.T @ yc).norm())


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    fn()  # warm-up
    times, value = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), value


def load_resi(resi_dir: str | None) -> Callable[..., float] | None:
    """ReSi's ``centered_kernel_alignment`` without importing its heavy package ``__init__``."""
    if not resi_dir:
        return None
    root = Path(resi_dir)
    sys.path.insert(0, str(root))
    for name, sub in (("repsim", "repsim"), ("repsim.measures", "repsim/measures")):
        module = types.ModuleType(name)
        module.__path__ = [str(root / sub)]
        sys.modules[name] = module
    cka = importlib.import_module("repsim.measures.cka")
    return cka.centered_kernel_alignment  # type: ignore[no-any-return]


def _peer_probe(args: argparse.Namespace) -> None:
    """Child process: one full-Gram peer at one n, under an address-space cap."""
    cap = int(args.mem_cap_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    x, y = make_data(args.n, args.d)
    if args.peer == "ckatorch":
        from ckatorch.core import cka_base

        def run() -> float:
            return float(cka_base(x.double(), y.double(), kernel="linear"))
    else:
        import repsim

        xn, yn = x.double().numpy(), y.double().numpy()

        def run() -> float:
            return float(repsim.cka([xn, yn], kernel_type="linear", estimator="gretton")[0, 1])

    t, v = timed(run, 1)
    ours_t, ours = timed(lambda: float(linear_cka(x, y)), 3)
    print(json.dumps({"n": args.n, "time": t, "value": v, "ours_time": ours_t, "ours": ours}))


def bench_exact(args: argparse.Namespace) -> None:
    x, y = make_data(args.n, args.d)
    t64, ref = timed(lambda: float(naive_cka(x.double(), y.double())), 1)
    rows = [("float64 reference (naive, float64 products)", t64, float(ref))]
    t_naive, v_naive = timed(lambda: float(naive_cka(x, y)), args.repeats)
    rows.append(("naive float32 (three float32 products)", t_naive, v_naive))
    t_ours, v_ours = timed(lambda: float(linear_cka(x, y)), args.repeats)
    rows.append(("subspaces linear_cka (float32 input)", t_ours, v_ours))
    resi = load_resi(args.resi_dir)
    if resi is not None:
        t, v = timed(lambda: resi(x, y, shape="nd"), args.repeats)
        rows.append(("ReSi feature-space CKA, float32", t, v))
        x64, y64 = x.double(), y.double()
        t, v = timed(lambda: resi(x64, y64, shape="nd"), 1)
        rows.append(("ReSi feature-space CKA, float64", t, v))
    print(f"exact linear CKA, n={args.n}, d={args.d}, {torch.get_num_threads()} threads\n")
    print("| computation | time (s) | ratio to naive float32 | abs. error vs float64 |")
    print("|---|---|---|---|")
    for name, t, v in rows:
        print(f"| {name} | {t:.3f} | {t / t_naive:.2f} | {abs(v - ref):.1e} |")
    print()
    print(
        "| full-Gram peer | largest n reached (of tried) | peer time (s) | ours at that n (s) | ratio |"
    )
    print("|---|---|---|---|---|")
    for peer in ("ckatorch", "repsim"):
        best = None
        for n in args.gram_ns:
            cmd = [
                sys.executable,
                __file__,
                "_probe",
                "--peer",
                peer,
                "--n",
                str(n),
                "--d",
                str(args.d),
                "--mem-cap-gb",
                str(args.mem_cap_gb),
            ]
            try:
                done = subprocess.run(
                    cmd, capture_output=True, text=True, timeout=args.probe_timeout
                )
            except subprocess.TimeoutExpired:
                break
            if done.returncode != 0:
                break
            best = json.loads(done.stdout.strip().splitlines()[-1])
        if best is None:
            print(
                f"| {peer} | none of {args.gram_ns} (cap {args.mem_cap_gb} GB, {args.probe_timeout:.0f} s) | - | - | - |"
            )
        else:
            print(
                f"| {peer} | {best['n']} (cap {args.mem_cap_gb} GB, {args.probe_timeout:.0f} s) | {best['time']:.2f} | "
                f"{best['ours_time']:.3f} | {best['time'] / best['ours_time']:.0f}x |"
            )


def bench_matrix(args: argparse.Namespace) -> None:
    resi = load_resi(args.resi_dir)
    g = torch.Generator().manual_seed(1)

    def model(seed: int) -> list[torch.Tensor]:
        g.manual_seed(seed)
        h = torch.randn(args.n, args.d, generator=g)
        layers = []
        for _ in range(args.layers):
            h = torch.tanh(h @ (torch.randn(args.d, args.d, generator=g) / args.d**0.5))
            layers.append(h)
        return layers

    a, b = model(1), model(2)
    print(f"{args.layers} x {args.layers} linear CKA matrix, n={args.n}, d={args.d}\n")
    print(
        "| case | pairs | subspaces pairwise (s) | loop: ReSi float32 (s) | speed-up"
        " | loop: ReSi float64, exact (s) | speed-up | max abs. diff. to ReSi float64 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for case, xs, ys in (("one model with itself", a, None), ("model A against model B", a, b)):
        t_ours, ours = timed(lambda xs=xs, ys=ys: pairwise(xs, ys, progress=False), 1)
        if resi is None:
            print(f"| {case} | - | {t_ours:.1f} | (no --resi-dir) | - | - | - | - |")
            continue
        targets = xs if ys is None else ys
        # A fair loop uses symmetry too: only i <= j when a model is compared with itself.
        pairs = [
            (i, j) for i in range(len(xs)) for j in range(len(targets)) if ys is not None or j >= i
        ]
        t0 = time.perf_counter()
        for i, j in pairs:
            resi(xs[i], targets[j], shape="nd")
        t32 = time.perf_counter() - t0
        xs64, targets64 = [x.double() for x in xs], [t.double() for t in targets]
        t0 = time.perf_counter()
        exact = {(i, j): resi(xs64[i], targets64[j], shape="nd") for i, j in pairs}
        t64 = time.perf_counter() - t0
        diff = max(abs(exact[p] - float(ours[p])) for p in pairs)
        print(
            f"| {case} | {len(pairs)} | {t_ours:.1f} | {t32:.1f} | {t32 / t_ours:.1f}x | {t64:.1f} | "
            f"{t64 / t_ours:.1f}x | {diff:.1e} |"
        )


def _write_shards(data_dir: Path, n: int, d: int, shard_rows: int) -> list[Path]:
    from safetensors.torch import save_file

    data_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    g = torch.Generator().manual_seed(3)
    a = torch.randn(d, d, generator=g) / d**0.5
    for k, start in enumerate(range(0, n, shard_rows)):
        path = data_dir / f"shard-{k:05d}.safetensors"
        paths.append(path)
        if path.exists():
            continue
        m = min(shard_rows, n - start)
        x = torch.randn(m, d, generator=g) * 2 + 1
        y = torch.tanh(x @ a) + 0.1 * torch.randn(m, d, generator=g)
        save_file({"x": x.contiguous(), "y": y.contiguous()}, str(path) + ".tmp")
        Path(str(path) + ".tmp").rename(path)
    return paths


def _stream_child(args: argparse.Namespace) -> None:
    from safetensors.torch import load_file

    paths = sorted(Path(args.data_dir).glob("shard-*.safetensors"))
    t0 = time.perf_counter()
    metric = LinearCKA()
    for path in paths:
        shard = load_file(str(path))
        metric.update(shard["x"], shard["y"])
        del shard
    value = float(metric.compute())
    elapsed = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(json.dumps({"value": value, "time": elapsed, "peak_gib": peak, "shards": len(paths)}))


def bench_stream(args: argparse.Namespace) -> None:
    data_dir = Path(args.data_dir)
    paths = _write_shards(data_dir, args.n, args.d, args.shard_rows)
    size = sum(p.stat().st_size for p in paths) / 2**30
    cmd = [sys.executable, __file__, "_stream", "--data-dir", str(data_dir)]
    out = json.loads(
        subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[-1]
    )
    print(
        f"streamed linear CKA, n={args.n}, d={args.d}, {out['shards']} shards, {size:.1f} GiB on disk\n"
    )
    print("| n | data on disk (GiB) | time (s) | peak RSS (GiB) | CKA |")
    print("|---|---|---|---|---|")
    print(
        f"| {args.n} | {size:.1f} | {out['time']:.1f} | {out['peak_gib']:.2f} | {out['value']:.6f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["exact", "matrix", "stream", "_probe", "_stream"])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--d", type=int, default=768)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--resi-dir", default=None)
    parser.add_argument("--gram-ns", type=int, nargs="+", default=[5_000, 10_000, 20_000, 30_000])
    parser.add_argument("--mem-cap-gb", type=float, default=16.0)
    parser.add_argument("--probe-timeout", type=float, default=600.0, help="seconds per peer probe")
    parser.add_argument("--peer", default="ckatorch")
    parser.add_argument("--data-dir", default="benchmarks/data/stream")
    parser.add_argument("--shard-rows", type=int, default=50_000)
    args = parser.parse_args()
    {
        "exact": bench_exact,
        "matrix": bench_matrix,
        "stream": bench_stream,
        "_probe": _peer_probe,
        "_stream": _stream_child,
    }[args.what](args)


if __name__ == "__main__":
    main()
