"""Streaming neural-collapse accumulators at scale: time and peak memory.

``NeuralCollapse`` over n samples of C classes × d dimensions, generated batch by batch
(never held at once): class centers on a sphere plus isotropic noise, and a classifier
near the centered class means.
Timed separately: the first pass (``update``: per-class sums and one d × d scatter in float64),
``compute()`` (NC1-NC3, CDNV, ETF distances), the second pass (``update_nc4``) and, for
scale, the floor that any exact method pays: accumulating Σ h hᵀ of the same batches with
one float32 product each. Data generation is excluded from the times (each batch is made
before its clock starts). Peak resident memory of the process (and of the GPU with
``--device cuda``) is reported; states and pending buffers take 8 (2 C d + d² + 4 C) + C bytes.

Usage::

    python benchmarks/bench_collapse.py --n 1000000 --classes 1000 --d 512
    python benchmarks/bench_collapse.py --n 20000 --classes 100 --d 64     # a quick check
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable, Iterator

import torch

from subspaces.geometry.collapse import NeuralCollapse


def make_centers(classes: int, d: int, seed: int, device: str) -> torch.Tensor:
    """Class centers of norm 4 in random directions."""
    g = torch.Generator(device=device).manual_seed(seed)
    centers = torch.randn(classes, d, generator=g, device=device)
    return 4.0 * centers / centers.norm(dim=1, keepdim=True)


def batches(
    centers: torch.Tensor, n: int, batch: int, seed: int, noise: float
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The same n samples, in the same batches, every time it is called with the same seed."""
    device = centers.device
    g = torch.Generator(device=device).manual_seed(seed + 1)
    classes, d = centers.shape
    for start in range(0, n, batch):
        m = min(batch, n - start)
        labels = torch.randint(0, classes, (m,), generator=g, device=device)
        yield centers[labels] + noise * torch.randn(m, d, generator=g, device=device), labels


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed_pass(
    args: argparse.Namespace,
    centers: torch.Tensor,
    step: Callable[[torch.Tensor, torch.Tensor], None],
) -> float:
    total = 0.0
    for x, y in batches(centers, args.n, args.batch, args.seed, args.noise):
        sync(args.device)
        t0 = time.perf_counter()
        step(x, y)
        sync(args.device)
        total += time.perf_counter() - t0
    return total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--batch", type=int, default=8192)
    parser.add_argument("--chunk-size", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=0.1, help="within-class std per dim")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-floor", action="store_true", help="skip the plain XᵀX floor")
    args = parser.parse_args()

    centers = make_centers(args.classes, args.d, args.seed, args.device)
    g = torch.Generator(device=args.device).manual_seed(args.seed + 2)
    # a classifier close to self-dual (rows near the centered class means): NC4 is informative
    w = (
        centers
        - centers.mean(0)
        + 0.5 * torch.randn(centers.shape, generator=g, device=args.device)
    )
    metric = NeuralCollapse(num_classes=args.classes, classifier=w, chunk_size=args.chunk_size)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()

    first = timed_pass(args, centers, metric.update)
    sync(args.device)
    t0 = time.perf_counter()
    result = metric.compute()
    sync(args.device)
    t_compute = time.perf_counter() - t0
    second = timed_pass(args, centers, lambda x, _y: metric.update_nc4(x))
    final = metric.compute()

    floor = float("nan")
    if not args.no_floor:
        acc = torch.zeros(args.d, args.d, dtype=torch.float64, device=args.device)

        def plain(x: torch.Tensor, _y: torch.Tensor) -> None:
            acc.add_((x.T @ x).double())

        floor = timed_pass(args, centers, plain)

    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    gpu = (
        f"{torch.cuda.max_memory_allocated() / 2**30:.2f}"
        if args.device.startswith("cuda")
        else "-"
    )
    state_mib = (
        8 * (2 * args.classes * args.d + args.d**2 + 4 * args.classes) + args.classes
    ) / 2**20
    device = (
        torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else f"cpu ({torch.get_num_threads()} threads)"
    )
    print(
        f"NeuralCollapse streaming, n={args.n}, C={args.classes}, d={args.d}, "
        f"batch={args.batch}, chunk={args.chunk_size}, {device}\n"
    )
    print(
        "| n | C | d | first pass (s) | compute (s) | NC4 pass (s) | plain float32 XᵀX (s) "
        "| states (MiB) | peak RSS (GiB) | peak GPU (GiB) | NC1 | NC4 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {args.n} | {args.classes} | {args.d} | {first:.2f} | {t_compute:.2f} | {second:.2f} "
        f"| {floor:.2f} | {state_mib:.1f} | {peak_rss:.2f} | {gpu} | {float(result.nc1):.4g} "
        f"| {float(final.nc4):.4g} |"
    )


if __name__ == "__main__":
    main()
