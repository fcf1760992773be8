"""The small store every test of subspaces.io.store writes, and manifest helpers."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from subspaces.io import MANIFEST_NAME, StoreWriter

N, SHARD = 23, 5  # 4 full shards and a partial one of 3 rows


def _data(n: int = N, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "a": torch.randn(n, 4, generator=g),
        "b": torch.randn(n, 3, 2, generator=g).to(torch.float64),
    }


def _labels(n: int = N) -> torch.Tensor:
    return torch.arange(n) % 3


def _write(path: Path, *, batch: int = 4, labels: bool = True, n: int = N, **kw: object) -> None:
    data = _data(n)
    with StoreWriter(path, layers=["a", "b"], shard_size=SHARD, **kw) as writer:  # type: ignore[arg-type]
        for start in range(0, n, batch):
            rows = {k: v[start : start + batch] for k, v in data.items()}
            writer.write(rows, labels=_labels(n)[start : start + batch] if labels else None)


def _manifest(path: Path) -> dict:
    return json.loads((path / MANIFEST_NAME).read_text())


def _rewrite_manifest(path: Path, manifest: dict) -> None:
    (path / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
