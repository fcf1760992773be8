"""Reading an activation store with and without integrity checks: what verification costs.

A store of L layers × n samples × d float32 features (about 300 MB by default, in shards of
``--shard-size`` rows) is written once; then each way of reading it opens the store and
loads every layer (``ActivationStore.load``) and the labels, as ``subspaces compare`` and
``report`` do:

``safetensors``     the reader before per-read checks (``safe_open(...).get_tensor`` per layer
                    and shard), for reference
``verify=False``    ``ActivationStore.open(path, verify=False)``: no checks (``--no-verify``)
``verify=True``     the default: each tensor checked against its sha256 as it is read
``per-shard``       the default on a store written before per-tensor checksums: each shard
                    hashed whole on its first read, once per opened store
``verify()``        the explicit full check (one pass over every file), alone

and, for scale, the computation that follows the loading in ``subspaces compare``: the
L × L linear-CKA matrix of the loaded layers (``pairwise``). Times are medians of
``--repeats`` runs after a warm-up, with the files in the page cache (the case where
reading is cheapest, so the checks' share is largest); from a cold disk, reading takes
longer and the checks' share shrinks.

Usage::

    python benchmarks/bench_store_read.py --n 8192 --d 768 --layers 12    # ~300 MB
    python benchmarks/bench_store_read.py --n 1024 --d 256 --layers 4     # a quick check
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from subspaces.io import MANIFEST_NAME, ActivationStore, StoreWriter
from subspaces.similarity import pairwise


def write_store(path: Path, *, n: int, d: int, layers: int, shard_size: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    mixes = [torch.randn(d, d, generator=g) * (1.5 / d**0.5) for _ in range(layers)]
    names = [f"layer_{i}" for i in range(layers)]
    with StoreWriter(path, layers=names, shard_size=shard_size) as writer:
        for start in range(0, n, shard_size):
            rows = x[start : start + shard_size]
            batch = {}
            for name, mix in zip(names, mixes, strict=True):
                rows = torch.tanh(rows @ mix)  # a deep tanh network's layers
                batch[name] = rows
            writer.write(batch, labels=torch.arange(start, start + rows.shape[0]) % 10)


def without_tensor_checksums(src: Path, dst: Path) -> None:
    """A copy of the store as written before per-tensor checksums (hard links to the shards)."""
    dst.mkdir()
    for p in src.iterdir():
        if p.name != MANIFEST_NAME:
            (dst / p.name).hardlink_to(p)
    manifest = json.loads((src / MANIFEST_NAME).read_text())
    for shard in manifest["shards"]:
        del shard["tensor_sha256"]
    (dst / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")


def load_all(path: Path, *, verify: bool) -> dict[str, torch.Tensor]:
    store = ActivationStore.open(path, verify=verify)
    layers = {name: store.load(name) for name in store.layers}
    assert store.labels is not None
    return layers


def load_all_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """The reader before per-read checks: safe_open + get_tensor, per layer and shard."""
    store = ActivationStore.open(path, verify=False)
    shards = sorted(path.glob("shard-*.safetensors"))
    out = {}
    for name in [*store.layers, "__labels__"]:
        parts = []
        for shard in shards:
            with safe_open(str(shard), framework="pt", device="cpu") as fh:
                parts.append(fh.get_tensor(name))
        out[name] = torch.cat(parts)
    return out


def timed(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up: files in the page cache
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=8192)
    parser.add_argument("--d", type=int, default=768)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--shard-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--no-compute", action="store_true", help="skip the CKA matrix")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(dir=args.data_dir))
    try:
        store_path, old_path = root / "store", root / "store-per-shard"
        write_store(
            store_path,
            n=args.n,
            d=args.d,
            layers=args.layers,
            shard_size=args.shard_size,
            seed=args.seed,
        )
        without_tensor_checksums(store_path, old_path)
        size = sum(p.stat().st_size for p in store_path.iterdir()) / 1e6
        n_shards = len(list(store_path.glob("shard-*")))
        print(
            f"store: {args.layers} layers × {args.n} samples × {args.d} float32 = {size:.0f} MB "
            f"in {n_shards} shards; torch {torch.__version__}, {torch.get_num_threads()} threads"
        )
        rows: list[tuple[str, float]] = [
            ("safetensors get_tensor (reader before this change)", 0.0),
            ("`verify=False` (`--no-verify`)", 0.0),
            ("**`verify=True` (default), per-tensor sha256**", 0.0),
            ("`verify=True`, store without per-tensor checksums (per shard)", 0.0),
            ("`ActivationStore.verify()` alone (full check, one pass)", 0.0),
        ]
        fns: list[Callable[[], Any]] = [
            lambda: load_all_safetensors(store_path),
            lambda: load_all(store_path, verify=False),
            lambda: load_all(store_path, verify=True),
            lambda: load_all(old_path, verify=True),
            lambda: ActivationStore.open(store_path, verify=False).verify(),
        ]
        rows = [(label, timed(fn, args.repeats)) for (label, _), fn in zip(rows, fns, strict=True)]
        base = rows[1][1]
        print()
        print("| open + load every layer and the labels | time (s) | MB/s | vs `verify=False` |")
        print("|---|---|---|---|")
        for label, seconds in rows:
            print(f"| {label} | {seconds:.3f} | {size / seconds:.0f} | {seconds / base:.2f} |")
        if not args.no_compute:
            layers = load_all(store_path, verify=False)
            seconds = timed(lambda: pairwise(layers, measure="linear_cka", progress=False), 1)
            check = rows[2][1] - base
            print(
                f"\nfor scale: the {args.layers} × {args.layers} linear-CKA matrix of the loaded "
                f"layers (`pairwise`) takes {seconds:.3f} s; the default check adds {check:.3f} s "
                f"({100 * check / (seconds + base):.1f}% of loading + computing)"
            )
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
