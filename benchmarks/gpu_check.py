"""The CUDA paths checked and timed: exact kNN, moments, linear CKA, mean CCA, the robust
solvers and neural collapse.

Each path runs on the accelerator and on the CPU from the same float32 data; the check is
that both give the same answer (neighbor indices equal, values within float32 rounding of
the float64 accumulation), the timing is the median of repeated runs on each device
(``torch.cuda.synchronize`` around each GPU run). Results print as a Markdown table, ready
for BENCHMARKS.md, and go to ``--out`` when given. The script exits 1 when a check fails.

Usage::

    python benchmarks/gpu_check.py                      # on a machine with CUDA
    python benchmarks/gpu_check.py --quick --device cpu  # smoke test of the script itself

``scripts/gpu_check.sh`` runs it together with the CUDA-only tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from subspaces.geometry import neural_collapse
from subspaces.linalg import paired_moments
from subspaces.linalg.knn import knn
from subspaces.linalg.robust import svdvals
from subspaces.similarity import linear_cka, mean_cca

SIZES = {
    "full": {"n": 200_000, "d": 512, "knn_n": 50_000, "classes": 100},
    "quick": {"n": 2_000, "d": 32, "knn_n": 1_000, "classes": 10},
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device, repeats: int) -> tuple[float, Any]:
    """Median seconds of ``repeats`` runs after one warm-up, and the last output."""
    out = fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        out = fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def _tensors(value: Any) -> list[torch.Tensor]:
    """Every tensor in a result: a tensor, a tuple of them, or a dataclass's fields."""
    if isinstance(value, torch.Tensor):
        return [value]
    if dataclasses.is_dataclass(value):
        return [t for f in dataclasses.fields(value) for t in _tensors(getattr(value, f.name))]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    return []


def agree(a: Any, b: Any) -> float:
    """The largest relative difference between two results' floating tensors (inf if
    integer tensors differ or the structures do not match)."""
    ta, tb = _tensors(a), _tensors(b)
    if len(ta) != len(tb):
        return float("inf")
    worst = 0.0
    for u, v in zip(ta, tb, strict=True):
        u, v = u.detach().cpu(), v.detach().cpu()
        if u.shape != v.shape:
            return float("inf")
        if not u.is_floating_point():
            worst = max(worst, 0.0 if torch.equal(u, v) else float("inf"))
            continue
        u, v = u.double(), v.double()
        finite = torch.isfinite(u) & torch.isfinite(v)
        if not torch.equal(torch.isfinite(u), torch.isfinite(v)):
            return float("inf")
        scale = u[finite].abs().max().item() if finite.any() else 1.0
        diff = (u[finite] - v[finite]).abs().max().item() if finite.any() else 0.0
        worst = max(worst, diff / max(scale, 1e-300))
    return worst


def cases(size: dict[str, int]) -> dict[str, tuple[Callable[[torch.device], Any], float]]:
    """Each path: a function of the device, and the relative tolerance of its check."""
    g = torch.Generator().manual_seed(0)
    n, d = size["n"], size["d"]
    x = torch.randn(n, d, generator=g)
    y = torch.tanh(x @ torch.randn(d, d, generator=g) / d**0.5)
    labels = torch.randint(size["classes"], (n,), generator=g)
    features = x + 3.0 * torch.randn(size["classes"], d, generator=g)[labels]
    q = x[: size["knn_n"]]
    on: dict[torch.device, dict[str, torch.Tensor]] = {}

    def data(device: torch.device) -> dict[str, torch.Tensor]:
        if device not in on:
            on[device] = {
                "x": x.to(device),
                "y": y.to(device),
                "q": q.to(device),
                "labels": labels.to(device),
                "features": features.to(device),
            }
        return on[device]

    return {
        "exact kNN (k = 10)": (lambda dev: knn(data(dev)["q"], 10), 1e-6),
        "centered moments": (lambda dev: paired_moments(data(dev)["x"], data(dev)["y"]), 1e-5),
        "linear CKA": (lambda dev: linear_cka(data(dev)["x"], data(dev)["y"]), 1e-5),
        # the CCA family's solver path (linalg.robust: float64 retry, then regularized)
        "mean CCA": (lambda dev: mean_cca(data(dev)["x"], data(dev)["y"]), 1e-5),
        "robust svdvals": (lambda dev: svdvals(data(dev)["x"][:4096].double()), 1e-8),
        "neural collapse": (
            lambda dev: neural_collapse(data(dev)["features"], data(dev)["labels"]),
            1e-4,
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--device", default="cuda", help="the accelerator (default cuda)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="also write the Markdown table here")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to check (use --device cpu for a smoke test)")
        return 1
    size = SIZES["quick" if args.quick else "full"]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    lines = [
        f"Device: {name}; n = {size['n']:,}, d = {size['d']} (kNN: {size['knn_n']:,} queries "
        f"of {size['knn_n']:,} points), median of {args.repeats} runs.",
        "",
        f"| path | CPU (s) | {device.type} (s) | speed-up | max relative difference | check |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    failed = False
    for label, (fn, rtol) in cases(size).items():
        cpu_time, cpu_out = timed(lambda fn=fn: fn(torch.device("cpu")), torch.device("cpu"), 1)
        dev_time, dev_out = timed(lambda fn=fn: fn(device), device, args.repeats)
        diff = agree(cpu_out, dev_out)
        ok = diff <= rtol
        failed |= not ok
        lines.append(
            f"| {label} | {cpu_time:.3f} | {dev_time:.4f} | {cpu_time / dev_time:.1f}× | "
            f"{diff:.1e} | {'ok' if ok else 'FAILED'} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
