"""Reading an activation store: :class:`ActivationStore`, every read checked as it happens.

See :mod:`subspaces.io.store` for the format and the integrity guarantees.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from subspaces.io.errors import StoreError
from subspaces.io.store._files import _identity, _open_in_store, _read_exactly, _sha256_fd
from subspaces.io.store.manifest import _DTYPES, LABELS_KEY, _check_shards, _read_manifest

__all__ = ["ActivationStore"]


class ActivationStore:
    """A read-only view of an activation store folder (see :mod:`subspaces.io.store`).

    Open with :meth:`open`; it checks the manifest against the shards (file names, byte
    sizes, safetensors headers, row counts) and refuses an incomplete, truncated or
    inconsistent store with a :class:`StoreError` saying what is wrong. Every read is then
    checked against the manifest's checksums as it happens (unless opened with
    ``verify=False``); :meth:`verify` checks the whole store at once.

    Attributes:
        path: the store folder.
        layers: layer names, in extraction order.
        n_samples: rows per layer.
        n_shards: number of shard files.
        feature_shapes: ``{layer: per-sample shape}``, e.g. ``(384,)``; ``(t, d)`` for
            layers extracted with ``pooling="all"``.
        dtypes: ``{layer: torch dtype as stored}``.
        metadata: the free-form metadata dict (model, data, extraction options).
        fingerprint: what identifies the inputs the store was written from (sha256 of the
            data and of the model's weights, the options), as recorded by
            :func:`~subspaces.io.extract`; None when none was recorded.
        resumed_from: on a store returned by :func:`~subspaces.io.extract` or
            :func:`~subspaces.io.extract_hf`, the samples it already held when the call
            began (0: extracted from scratch; ``n_samples``: it was complete, nothing was
            run); None on a store opened with :meth:`open`.
        labels: the ``(n_samples,)`` int64 labels, or None; loaded on first access.
        shard_sizes: rows per shard.
        verify_reads: reads are checked against the manifest's checksums (``verify``).

    Examples:
        >>> import tempfile, torch
        >>> from subspaces.io import ActivationStore, StoreWriter
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     with StoreWriter(folder, layers=["a", "b"], shard_size=4) as writer:
        ...         batch = {"a": torch.ones(6, 3), "b": torch.zeros(6, 2)}
        ...         writer.write(batch, labels=torch.arange(6) % 2)
        ...     store = ActivationStore.open(folder)
        ...     shards = [tuple(batch["a"].shape) for batch in store.iter_batches("a")]
        ...     print(store.n_samples, tuple(store.load("a").shape), shards, store.labels.tolist())
        6 (6, 3) [(4, 3), (2, 3)] [0, 1, 0, 1, 0, 1]
    """

    def __init__(
        self,
        path: Path,
        manifest: dict[str, Any],
        *,
        offsets: list[dict[str, tuple[int, int]]] | None = None,
        verify: bool = True,
    ) -> None:
        self.path = path
        self._manifest = manifest
        self.layers: list[str] = list(manifest["layers"])
        self.n_samples: int = int(manifest["n_samples"])
        self.feature_shapes: dict[str, tuple[int, ...]] = {
            name: tuple(manifest["features"][name]["shape"]) for name in self.layers
        }
        self.dtypes: dict[str, torch.dtype] = {
            name: _DTYPES[manifest["features"][name]["dtype"]] for name in self.layers
        }
        self.metadata: dict[str, Any] = dict(manifest["metadata"])
        fingerprint = manifest.get("fingerprint")
        self.fingerprint: dict[str, Any] | None = (
            dict(fingerprint) if isinstance(fingerprint, dict) else None
        )
        self.resumed_from: int | None = None
        self.shard_sizes: list[int] = [int(s["n_samples"]) for s in manifest["shards"]]
        self.n_shards: int = len(self.shard_sizes)
        self.has_labels: bool = bool(manifest["has_labels"])
        self.verify_reads: bool = bool(verify)
        self._offsets = _check_shards(path, manifest, complete=True) if offsets is None else offsets
        # shards without per-tensor checksums, checked whole: index -> the file's identity
        self._verified: dict[int, tuple[int, int, int, int]] = {}
        self._labels: Tensor | None = None

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, verify: bool = True) -> ActivationStore:
        """Open the store in folder ``path``.

        Checks the manifest against the shards (names, sizes, headers, row counts; no
        symbolic links) at once. With ``verify=True`` (the default) every tensor read by
        :meth:`load`, :meth:`iter_batches` and :attr:`labels` is checked against the
        checksum in the manifest as it is read (one pass over the bytes read, no second
        pass over the store; stores written before per-tensor checksums are checked a whole
        shard at a time, once per opened store), and a mismatch raises :class:`StoreError`
        naming the shard. ``verify=False`` skips those checks, for stores you trust when
        reading speed matters (the command line's ``--no-verify``). :meth:`verify` checks
        the whole store at once.
        """
        folder = Path(path)
        manifest = _read_manifest(folder)
        if not manifest["complete"]:
            n_done = manifest["n_samples"]
            raise StoreError(
                f"the activation store at {folder} is incomplete: its extraction was "
                f"interrupted after {n_done} samples in {len(manifest['shards'])} complete "
                "shards, or is still running. Run the extraction again to resume it (or wait "
                "for the running one to finish)."
            )
        offsets = _check_shards(folder, manifest, complete=True)
        return cls(folder, manifest, offsets=offsets, verify=verify)

    @property
    def manifest(self) -> dict[str, Any]:
        """A copy of the parsed ``manifest.json``."""
        copy: dict[str, Any] = json.loads(json.dumps(self._manifest))
        return copy

    def __len__(self) -> int:
        return self.n_samples

    def __contains__(self, layer: object) -> bool:
        return layer in self.layers

    def __repr__(self) -> str:
        return (
            f"ActivationStore({str(self.path)!r}, n_samples={self.n_samples}, "
            f"layers={self.layers}, n_shards={self.n_shards}, labels={self.has_labels})"
        )

    def _check_layer(self, layer: Any) -> str:
        if layer not in self.layers:
            raise StoreError(
                f"layer {layer!r} is not in the store at {self.path}; its layers are {self.layers}."
            )
        return str(layer)

    def _corrupt(self, name: str, what: str) -> StoreError:
        return StoreError(
            f"{name} in the activation store at {self.path} is corrupt: {what}; the file "
            "changed after it was written: extract the store again."
        )

    def verify(self) -> None:
        """Check every shard's byte size, sha256 and per-tensor checksums against the
        manifest, now.

        Reads the whole store once (each shard in one pass). Raises :class:`StoreError`
        naming the first shard that differs. Reading with ``verify=True`` (the default of
        :meth:`open`) checks what it reads without this.
        """
        for index, shard in enumerate(self._manifest["shards"]):
            name = shard["file"]
            fd = _open_in_store(self.path, name)
            try:
                size = os.fstat(fd).st_size
                if size != shard["bytes"]:
                    raise StoreError(
                        f"{name} in the activation store at {self.path} is truncated or "
                        f"corrupt: {size} bytes on disk, the manifest records {shard['bytes']}; "
                        "extract the store again."
                    )
                digest, parts = _sha256_fd(fd, self._offsets[index])
                identity = _identity(fd)  # of the file hashed, whatever is at its name now
            finally:
                os.close(fd)
            if digest != shard["sha256"]:
                raise self._corrupt(
                    name, f"its sha256 is {digest}, the manifest records {shard['sha256']}"
                )
            for key, recorded in (shard.get("tensor_sha256") or {}).items():
                if parts[key] != recorded:
                    raise self._corrupt(
                        name, f"the sha256 of {key!r} differs from the one its manifest records"
                    )
            self._verified[index] = identity

    def _check_whole_shard(self, fd: int, index: int) -> None:
        """Check a shard that has no per-tensor checksums against its sha256, unless this
        very file (device, inode, size, mtime) was checked before."""
        shard = self._manifest["shards"][index]
        identity = _identity(fd)
        if self._verified.get(index) == identity:
            return
        if identity[2] != shard["bytes"]:
            raise StoreError(
                f"{shard['file']} in the activation store at {self.path} is truncated or "
                f"corrupt: {identity[2]} bytes on disk, the manifest records {shard['bytes']}; "
                "extract the store again."
            )
        digest = _sha256_fd(fd)[0]
        if digest != shard["sha256"]:
            raise self._corrupt(
                shard["file"], f"its sha256 is {digest}, the manifest records {shard['sha256']}"
            )
        self._verified[index] = identity

    def _read(
        self, index: int, keys: Sequence[str], *, into: Tensor | None = None
    ) -> dict[str, Tensor]:
        """The tensors ``keys`` of shard ``index``, checked as they are read (verify=True).

        ``into``: a contiguous CPU tensor of the stored dtype and shape to read the one key
        into, in place of a new tensor.
        """
        shard = self._manifest["shards"][index]
        name = shard["file"]
        digests = shard.get("tensor_sha256")
        fd = _open_in_store(self.path, name)
        try:
            if self.verify_reads and digests is None:
                self._check_whole_shard(fd, index)
            out: dict[str, Tensor] = {}
            for key in keys:
                begin, end = self._offsets[index][key]
                shape: tuple[int, ...]
                if key == LABELS_KEY:
                    dtype, shape = torch.int64, (self.shard_sizes[index],)
                else:
                    dtype = self.dtypes[key]
                    shape = (self.shard_sizes[index], *self.feature_shapes[key])
                target = torch.empty(shape, dtype=dtype) if into is None else into
                raw = target.reshape(-1).view(torch.uint8)
                if raw.numel() != end - begin:  # the header was validated against the shape
                    raise StoreError(
                        f"{name} in the activation store at {self.path} is corrupt: {key!r} "
                        f"takes {end - begin} bytes, not the {raw.numel()} of its shape."
                    )
                view = raw.numpy().data
                if _read_exactly(fd, begin, view) != len(view):
                    raise StoreError(
                        f"{name} in the activation store at {self.path} is truncated: it ends "
                        f"inside {key!r}; extract the store again."
                    )
                if (
                    self.verify_reads
                    and digests is not None
                    and hashlib.sha256(view).hexdigest() != digests[key]
                ):
                    raise self._corrupt(
                        name, f"the bytes of {key!r} differ from the sha256 its manifest records"
                    )
                if sys.byteorder == "big" and target.element_size() > 1:  # pragma: no cover
                    swapped = raw.view(-1, target.element_size()).flip(1).reshape(-1)
                    target = swapped.view(dtype).reshape(shape)
                out[key] = target
        finally:
            os.close(fd)
        return out

    @property
    def labels(self) -> Tensor | None:
        """The ``(n_samples,)`` int64 labels, or None if the store has none (cached)."""
        if not self.has_labels:
            return None
        if self._labels is None:
            parts = [self._read(i, [LABELS_KEY])[LABELS_KEY] for i in range(self.n_shards)]
            self._labels = torch.cat(parts)
        return self._labels

    def load(
        self,
        layer: str,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        flatten: bool = False,
    ) -> Tensor:
        """All rows of one layer as one tensor.

        Args:
            layer: a name in :attr:`layers`.
            dtype: cast to this dtype (default: as stored).
            device: put the result there (default: CPU). Shards are copied in one at a time.
            flatten: return ``(n, prod(feature_shape))`` for layers stored with more than one
                feature dimension (``pooling="all"`` gives ``(n, t, d)``; ``flatten=True``
                gives ``(n, t * d)``, token-major).

        Returns:
            ``(n_samples, *feature_shape)`` tensor (``(n, d)`` for pooled layers).
        """
        name = self._check_layer(layer)
        shape = self.feature_shapes[name]
        out = torch.empty((self.n_samples, *shape), dtype=dtype or self.dtypes[name], device=device)
        # read straight into the result when it is what is stored (no second copy)
        direct = out.dtype == self.dtypes[name] and out.device.type == "cpu"
        start = 0
        for index, rows in enumerate(self.shard_sizes):
            part = out[start : start + rows]
            if direct and sys.byteorder == "little":
                self._read(index, [name], into=part)
            else:
                part.copy_(self._read(index, [name])[name])
            start += rows
        return out.reshape(self.n_samples, -1) if flatten else out

    def iter_batches(
        self,
        layers: str | Sequence[str] | None = None,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        flatten: bool = False,
        labels: bool = False,
    ) -> Iterator[dict[str, Tensor]]:
        """Yield the store shard by shard: ``{layer: (rows, *feature_shape)}`` per shard.

        Memory is one shard of the requested layers. Feed the batches to the families'
        streaming classes (``metric.update(batch["a"], batch["b"])``) to measure a store
        larger than memory exactly. Each shard is checked as it is read (``verify=True``).

        Args:
            layers: one name, a list of names, or None for every layer.
            dtype, device, flatten: as in :meth:`load`.
            labels: also yield the shard's labels under the key ``"__labels__"``
                (:data:`LABELS_KEY`); refused if the store has none.
        """
        if layers is None:
            names = list(self.layers)
        elif isinstance(layers, str):
            names = [self._check_layer(layers)]
        else:
            names = [self._check_layer(name) for name in layers]
        if labels and not self.has_labels:
            raise StoreError(f"the store at {self.path} has no labels; call with labels=False.")
        keys = [*names, LABELS_KEY] if labels else names
        for index in range(self.n_shards):
            batch: dict[str, Tensor] = {}
            for key, t in self._read(index, keys).items():
                if key != LABELS_KEY:
                    if dtype is not None:
                        t = t.to(dtype)
                    if flatten:
                        t = t.reshape(t.shape[0], -1)
                if device is not None:
                    t = t.to(device)
                batch[key] = t
            yield batch
