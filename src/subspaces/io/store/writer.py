"""Writing an activation store: :class:`StoreWriter`, shard by shard, atomic and resumable.

See :mod:`subspaces.io.store` for the format and what a killed writer leaves behind.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import torch
from safetensors.torch import save as _safetensors_save
from torch import Tensor

from subspaces._checks import InputTypeError, ShapeError, check_labels, check_positive_int
from subspaces.io.errors import StoreError, StoreMismatchError
from subspaces.io.store._files import _atomic_write, _safetensors_offsets, _sha256_file
from subspaces.io.store.lock import _WriterLock
from subspaces.io.store.manifest import (
    _DTYPE_NAMES,
    _DTYPES,
    _SHARD_RE,
    _TMP_RE,
    FORMAT,
    FORMAT_VERSION,
    LABELS_KEY,
    LOCK_NAME,
    MANIFEST_NAME,
    _check_shards,
    _dump_manifest,
    _is_store_file,
    _read_manifest,
    shard_name,
)
from subspaces.io.store.reader import ActivationStore

__all__ = ["StoreWriter"]

# rows per shard when not given: as many as fit in about this many bytes (bounded below)
_TARGET_SHARD_BYTES = 256 * 2**20
_MAX_AUTO_SHARD_ROWS = 65536


def _normalize_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InputTypeError(
            f"metadata must be a dict of JSON values, got {type(metadata).__name__}."
        )
    try:
        normalized = json.loads(json.dumps(dict(metadata), allow_nan=False))
    except RecursionError:
        raise InputTypeError(
            "metadata is nested too deeply for JSON (a dict or list inside itself, or "
            "hundreds of levels); give a flat dict of JSON values."
        ) from None
    except (TypeError, ValueError) as err:
        raise InputTypeError(
            f"metadata must hold only JSON values (str, int, float, bool, None, lists and "
            f"dicts with str keys); json could not encode it: {err}."
        ) from None
    return dict(normalized)


def _short(value: Any) -> str:
    """A stored value as a message shows it: sha256 digests cut to 12 hex digits."""
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return f"{value[:12]}…"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    return repr(value)


# how a message names a fingerprint's top-level entries (others: "option NAME")
_FINGERPRINT_LABELS = {
    "data": "the data differ",
    "labels": "the labels differ",
    "model": "the model's weights differ",
    "tokenizer": "the tokenizer differs",
}


def _fingerprint_differences(old: Any, new: Any) -> list[str]:
    """One phrase per differing entry of two fingerprints (stored ``old``, given ``new``):
    ``"the data differ (sha256 1a2b… stored, sha256 9f8e… now)"``,
    ``"option pooling: 'mean' stored, 'first' now"``."""
    if old is None:
        return [
            "the store records no fingerprint of its inputs (it was written by an older "
            "subspaces or by a StoreWriter given none), so they cannot be checked"
        ]
    if new is None or not isinstance(old, dict):
        return ["the store records a fingerprint of its inputs and this run gives none"]
    phrases: list[str] = []

    def differing(was: dict[str, Any], now: dict[str, Any]) -> list[str]:
        return [k for k in [*now, *(k for k in was if k not in now)] if was.get(k) != now.get(k)]

    for key in differing(old, new):
        was, now = old.get(key), new.get(key)
        if key == "options" and isinstance(was, dict) and isinstance(now, dict):
            phrases.extend(
                f"option {name}: {_short(was.get(name))} stored, {_short(now.get(name))} now"
                for name in differing(was, now)
            )
            continue
        if isinstance(was, dict) and isinstance(now, dict):
            parts = differing(was, now)
            shown = ", ".join(
                f"{k} {_short(was.get(k))} stored, {_short(now.get(k))} now" for k in parts
            )
        else:
            parts = []
            shown = f"{_short(was)} stored, {_short(now)} now"
        label = _FINGERPRINT_LABELS.get(key, key + " differs")
        if key == "model" and isinstance(was, dict) and parts == ["config_sha256"]:
            label = "the model's configuration differs"  # config.json, not the weights
        phrases.append(f"{label} ({shown})")
    return phrases


def _check_layers(layers: Any) -> list[str]:
    if isinstance(layers, str) or not isinstance(layers, Sequence):
        raise InputTypeError(
            f"layers must be a list of layer names, got {type(layers).__name__} ({layers!r})."
        )
    names = list(layers)
    if not names:
        raise InputTypeError("layers is empty; name at least one layer.")
    for name in names:
        if not isinstance(name, str) or not name:
            raise InputTypeError(f"every layer name must be a non-empty str, got {name!r}.")
    if LABELS_KEY in names:
        raise InputTypeError(f"{LABELS_KEY!r} is reserved for labels; rename that layer.")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputTypeError(f"layers must be distinct, got {duplicates} more than once.")
    return names


class StoreWriter:
    """Write an activation store, shard by shard, atomically and resumably.

    Use as a context manager::

        with StoreWriter(path, layers=["a", "b"], metadata={"model": "mlp"}) as writer:
            for i, batch in enumerate(batches):
                if (i + 1) * batch_size <= writer.n_done:
                    continue  # already stored by an interrupted run
                writer.write({"a": ..., "b": ...}, labels=...)

    Rows are buffered and a shard is written every ``shard_size`` rows; every write is
    atomic and followed by an atomic rewrite of the manifest. ``close()`` (called on a
    clean exit of the ``with`` block) writes the last partial shard and marks the store
    complete; on an exception the buffered rows are dropped and the store stays incomplete
    and resumable.

    One writer per store: the writer holds an exclusive lock on the folder's
    ``.writer.lock`` from its creation until :meth:`close` (or the end of the ``with``
    block); another writer meanwhile, in any process, raises :class:`StoreError` naming the
    holder's pid. A lock left by a killed process is taken over.

    Args:
        path: the store folder (created if needed). It must be new, empty or a store.
        layers: layer names, in order; each :meth:`write` gives one tensor per layer.
        metadata: free-form JSON-serializable dict stored in the manifest (model, data).
        fingerprint: JSON dict that identifies the inputs the store is written from
            (:func:`~subspaces.io.extract` records sha256 digests of the data and the
            model's weights, and the options); stored in the manifest as ``fingerprint``
            and compared on resume. None (the default) records none.
        resume: with an existing store of the same ``fingerprint``, ``layers``,
            ``metadata`` (and ``shard_size`` if given), keep its complete shards:
            :attr:`n_done` says how many samples are stored and the producer must skip
            them (shards are always whole multiples of ``shard_size``, so the next row
            written is row ``n_done``).
            Unlisted shards and temporary files of the interrupted run are deleted. An
            existing *complete* store is kept as is (:attr:`complete` is True; writing to it
            is refused). A store written from other inputs raises
            :class:`~subspaces.io.StoreMismatchError` naming what differs. ``resume=False``
            deletes an existing store's files (only a store's: the manifest, shards and
            temporary files) and starts over, once it holds the store's lock.
        shard_size: rows per shard; default: as many rows as fit in about 256 MiB (at least
            1, at most 65536), fixed from the first write and recorded in the manifest.

    Attributes:
        n_done: samples already stored when the writer was opened.
        n_stored: samples in the store's complete shards now (what a crash would keep).
        n_written: samples accepted so far, ``n_done`` included.
        complete: the store is marked complete.

    Examples:
        >>> import tempfile, torch
        >>> from subspaces.io import StoreWriter
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     meta = {"model": "mlp"}
        ...     with StoreWriter(folder, layers=["fc1"], shard_size=2, metadata=meta) as writer:
        ...         for start in range(0, 5, 2):
        ...             writer.write({"fc1": torch.full((min(2, 5 - start), 3), float(start))})
        ...     store = writer.open()
        ...     print(store.n_samples, store.n_shards, store.metadata)
        5 3 {'model': 'mlp'}
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        layers: Sequence[str],
        metadata: Mapping[str, Any] | None = None,
        fingerprint: Mapping[str, Any] | None = None,
        resume: bool = True,
        shard_size: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.layers = _check_layers(layers)
        self.metadata = _normalize_metadata(metadata)
        self.fingerprint = None if fingerprint is None else _normalize_metadata(fingerprint)
        self._requested_shard_size = (
            None if shard_size is None else check_positive_int(shard_size, name="shard_size")
        )
        self._buffer: dict[str, list[Tensor]] = {name: [] for name in self.layers}
        self._label_buffer: list[Tensor] = []
        self._n_buffered = 0
        self._closed = False
        self._lock: _WriterLock | None = None
        try:
            self._manifest = self._prepare(resume=resume)
        except BaseException:
            self._release()
            raise
        self.n_done: int = int(self._manifest["n_samples"])
        self.n_written: int = self.n_done
        self.complete: bool = bool(self._manifest["complete"])

    # -- set-up

    def _fresh_manifest(self) -> dict[str, Any]:
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "complete": False,
            "layers": list(self.layers),
            "features": {},
            "has_labels": None,
            "n_samples": 0,
            "shard_size": self._requested_shard_size,
            "shards": [],
            "metadata": self.metadata,
        }
        if self.fingerprint is not None:
            manifest["fingerprint"] = self.fingerprint
        return manifest

    def _prepare(self, *, resume: bool) -> dict[str, Any]:
        folder = self.path
        if folder.exists() and not folder.is_dir():
            raise StoreError(f"cannot write an activation store at {folder}: it is a file.")
        folder.mkdir(parents=True, exist_ok=True)
        foreign = sorted(p.name for p in folder.iterdir() if not _is_store_file(p.name))
        if foreign:
            shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
            raise StoreError(
                f"cannot write an activation store at {folder}: the folder holds files that "
                f"are not a store's ({shown}); choose a new or empty folder."
            )
        # from here on this writer alone changes the folder (another one is refused)
        self._lock = _WriterLock(folder)
        for p in folder.iterdir():  # leftovers of an interrupted write
            if _TMP_RE.match(p.name):
                p.unlink(missing_ok=True)
        manifest_path = folder / MANIFEST_NAME
        if resume and manifest_path.is_file():
            manifest = self._resumable(folder)
        else:
            # an incomplete manifest first, so that no reader takes the folder for the old
            # store while its shards are deleted
            manifest = self._fresh_manifest()
            _atomic_write(manifest_path, _dump_manifest(manifest))
            for p in folder.iterdir():
                if _is_store_file(p.name) and p.name not in (MANIFEST_NAME, LOCK_NAME):
                    p.unlink(missing_ok=True)
            return manifest
        # drop complete shards the manifest does not list (written just before a kill)
        listed = {s["file"] for s in manifest["shards"]}
        for p in folder.iterdir():
            if _SHARD_RE.match(p.name) and p.name not in listed:
                p.unlink(missing_ok=True)
        return manifest

    def _resumable(self, folder: Path) -> dict[str, Any]:
        hint = "pass resume=False to start over (this deletes its shards) or choose another folder"
        try:
            manifest = _read_manifest(folder)
        except StoreError as err:
            raise StoreError(f"cannot resume the store at {folder}: {err} ({hint}).") from None
        complete = bool(manifest["complete"])
        stored = manifest.get("fingerprint")
        if stored != self.fingerprint:
            raise StoreMismatchError(
                folder, _fingerprint_differences(stored, self.fingerprint), complete=complete
            )
        if manifest["layers"] != self.layers:
            raise StoreMismatchError(
                folder,
                [f"layers {manifest['layers']} stored, {self.layers} now"],
                complete=complete,
            )
        if manifest["metadata"] != self.metadata:
            old, new = manifest["metadata"], self.metadata
            differ = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise StoreMismatchError(
                folder,
                [
                    f"the metadata differ in {differ} ({[old.get(k) for k in differ]} "
                    f"stored, {[new.get(k) for k in differ]} now)"
                ],
                complete=complete,
            )
        stored_size = manifest["shard_size"]
        wanted = self._requested_shard_size
        if wanted is not None and stored_size is not None and stored_size != wanted:
            raise StoreMismatchError(
                folder,
                [f"shard_size {stored_size} stored, {wanted} now"],
                complete=complete,
            )
        if stored_size is None and wanted is not None:
            manifest["shard_size"] = wanted
        try:
            _check_shards(folder, manifest, complete=bool(manifest["complete"]))
            # shards that the run will build on are hashed now; a complete store is
            # returned as it is (ActivationStore.verify checks it on demand)
            for shard in [] if manifest["complete"] else manifest["shards"]:
                if _sha256_file(folder, shard["file"]) != shard["sha256"]:
                    raise StoreError(f"{shard['file']} is corrupt: its sha256 differs")
        except StoreError as err:
            raise StoreError(f"cannot resume the store at {folder}: {err} ({hint}).") from None
        return manifest

    # -- writing

    @property
    def n_stored(self) -> int:
        """Samples in the store's complete shards: what the store keeps if the run stops now."""
        return int(self._manifest["n_samples"])

    @property
    def data_read(self) -> dict[str, Any] | None:
        """The digest of the first rows of streamed data, ``{"rows": r, "sha256": h}``,
        recorded by :func:`~subspaces.io.extract` (None when there is none)."""
        value = self._manifest.get("data_read")
        return dict(value) if isinstance(value, dict) else None

    def _note_data_read(self, rows: int, sha256: str) -> None:
        """Record the digest of the first ``rows`` rows of streamed input data; written with
        the manifest's next rewrite (after the next shard, or at :meth:`close`)."""
        self._manifest["data_read"] = {"rows": int(rows), "sha256": sha256}

    # set by extract for streamed data: stored rows -> the digest of the most rows read
    # (at most that many) whose digest is known, recorded with each shard
    _data_read_at: Callable[[int], tuple[int, str] | None] | None = None

    @property
    def shard_size(self) -> int | None:
        """Rows per shard (None until fixed by the first write when left to default)."""
        size = self._manifest["shard_size"]
        return None if size is None else int(size)

    def write(self, batch: Mapping[str, Any], labels: Any = None) -> None:
        """Append rows: ``batch`` maps every layer name to a ``(rows, ...)`` tensor/array.

        ``labels`` is a ``(rows,)`` integer array, given with every write or with none.
        Tensors are detached and copied to CPU. Each layer's per-sample shape and dtype are
        fixed by the first write (or by the resumed store).
        """
        if self._closed:
            raise StoreError(f"the writer for {self.path} is closed; open a new StoreWriter.")
        if self.complete:
            raise StoreError(
                f"the store at {self.path} is already complete ({self.n_done} samples); "
                "pass resume=False to write it again."
            )
        tensors = self._check_batch(batch)
        rows = next(iter(tensors.values())).shape[0]
        label_tensor = self._check_batch_labels(labels, rows)
        self._record_features(tensors)  # only once the whole batch is valid
        self._manifest["has_labels"] = label_tensor is not None
        for name, t in tensors.items():
            self._buffer[name].append(t)
        if label_tensor is not None:
            self._label_buffer.append(label_tensor)
        self._n_buffered += rows
        self.n_written += rows
        if self._manifest["shard_size"] is None:
            self._manifest["shard_size"] = self._auto_shard_size()
        while self._n_buffered >= self._manifest["shard_size"]:
            self._flush(int(self._manifest["shard_size"]))

    def _auto_shard_size(self) -> int:
        row_bytes = 0
        for name in self.layers:
            info = self._manifest["features"][name]
            row_bytes += (
                math.prod(info["shape"])
                * torch.empty((), dtype=_DTYPES[info["dtype"]]).element_size()
            )
        return max(1, min(_MAX_AUTO_SHARD_ROWS, _TARGET_SHARD_BYTES // max(row_bytes, 1)))

    def _check_batch(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        if not isinstance(batch, Mapping):
            raise InputTypeError(
                f"batch must be a dict mapping layer names to tensors, got {type(batch).__name__}."
            )
        missing = [n for n in self.layers if n not in batch]
        extra = sorted(str(k) for k in batch if k not in self.layers)
        if missing or extra:
            raise ShapeError(
                f"batch must hold exactly the layers {self.layers}; missing {missing}, "
                f"unexpected {extra}."
            )
        features = self._manifest["features"]
        tensors: dict[str, Tensor] = {}
        rows: int | None = None
        for name in self.layers:
            value = batch[name]
            if isinstance(value, np.ndarray):
                if value.dtype == object:
                    raise InputTypeError(f"batch[{name!r}] is a numpy array of dtype object.")
                value = torch.from_numpy(np.ascontiguousarray(value))
            if not isinstance(value, Tensor):
                raise InputTypeError(
                    f"batch[{name!r}] must be a tensor or numpy array, got {type(value).__name__}."
                )
            if value.ndim < 1:
                raise ShapeError(f"batch[{name!r}] is 0-D; give (rows, ...) tensors.")
            if value.dtype not in _DTYPE_NAMES:
                raise InputTypeError(
                    f"batch[{name!r}] has dtype {value.dtype}; a store holds {sorted(_DTYPES)}."
                )
            if rows is None:
                rows = value.shape[0]
            elif value.shape[0] != rows:
                raise ShapeError(
                    f"every layer of a batch must have the same number of rows; "
                    f"batch[{self.layers[0]!r}] has {rows}, batch[{name!r}] has "
                    f"{value.shape[0]}."
                )
            shape, dtype = list(value.shape[1:]), _DTYPE_NAMES[value.dtype]
            if name in features:
                info = features[name]
                if info["shape"] != shape or info["dtype"] != dtype:
                    raise ShapeError(
                        f"batch[{name!r}] has per-sample shape {tuple(shape)} and dtype "
                        f"{dtype}, but this store holds shape {tuple(info['shape'])} and dtype "
                        f"{info['dtype']} for that layer; every batch must match (outputs kept "
                        "per token need inputs padded to one fixed length)."
                    )
            tensors[name] = value.detach().to("cpu")
        return tensors

    def _record_features(self, tensors: Mapping[str, Tensor]) -> None:
        features = self._manifest["features"]
        if all(name in features for name in self.layers):
            return
        self._manifest["features"] = {
            name: features.get(name) or {"shape": list(t.shape[1:]), "dtype": _DTYPE_NAMES[t.dtype]}
            for name, t in tensors.items()
        }

    def _check_batch_labels(self, labels: Any, rows: int) -> Tensor | None:
        has = self._manifest["has_labels"]
        given = labels is not None
        if has is not None and has != given:
            raise StoreError(
                f"labels must be given with every write or with none; this store "
                f"{'has' if has else 'has no'} labels, and this write "
                f"{'gives' if given else 'gives none'}."
            )
        if not given:
            return None
        return check_labels(labels, rows).detach().to("cpu")

    def _flush(self, rows: int, *, last: bool = False) -> None:
        """Write the first ``rows`` buffered rows as the next shard, then the manifest
        (marked complete when ``last``: the final shard and completion land together)."""
        tensors: dict[str, Tensor] = {}
        for name in self.layers:
            joined = (
                torch.cat(self._buffer[name])
                if len(self._buffer[name]) > 1
                else (self._buffer[name][0])
            )
            tensors[name] = joined[:rows].contiguous().clone()
            self._buffer[name] = [joined[rows:]] if joined.shape[0] > rows else []
        if self._manifest["has_labels"]:
            joined = torch.cat(self._label_buffer)
            tensors[LABELS_KEY] = joined[:rows].contiguous().clone()
            self._label_buffer = [joined[rows:]] if joined.shape[0] > rows else []
        self._n_buffered -= rows
        index = len(self._manifest["shards"])
        data = _safetensors_save(tensors, metadata={"subspaces_shard": str(index)})
        name = shard_name(index)
        _atomic_write(self.path / name, data)
        view = memoryview(data)
        offsets = _safetensors_offsets(view)[1]
        self._manifest["shards"].append(
            {
                "file": name,
                "n_samples": rows,
                "bytes": len(data),
                "sha256": hashlib.sha256(view).hexdigest(),
                "tensor_sha256": {
                    key: hashlib.sha256(view[offsets[key][0] : offsets[key][1]]).hexdigest()
                    for key in tensors
                },
            }
        )
        self._manifest["n_samples"] += rows
        self._manifest["complete"] = last
        if self._data_read_at is not None:
            known = self._data_read_at(int(self._manifest["n_samples"]))
            if known is not None:
                self._note_data_read(*known)
        _atomic_write(self.path / MANIFEST_NAME, _dump_manifest(self._manifest))

    def _release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    def close(self) -> None:
        """Write the last partial shard, mark the store complete and release the writer's
        lock (idempotent)."""
        if self._closed:
            return
        if self.complete:
            self._closed = True
            self._release()
            return
        if self._manifest["n_samples"] + self._n_buffered == 0:
            raise StoreError(
                f"nothing was written to the store at {self.path}; a store needs at least one "
                "sample."
            )
        if self._n_buffered:
            self._flush(self._n_buffered, last=True)
        else:
            self._manifest["complete"] = True
            _atomic_write(self.path / MANIFEST_NAME, _dump_manifest(self._manifest))
        self._closed = True
        self.complete = True
        self._release()

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                self.close()
            else:  # keep the complete shards; the store stays incomplete and resumable
                self._buffer = {name: [] for name in self.layers}
                self._label_buffer = []
                self._n_buffered = 0
                self._closed = True
        finally:
            self._release()

    def open(self, *, verify: bool = True) -> ActivationStore:
        """Open the finished store for reading (after :meth:`close`); ``verify`` as in
        :meth:`ActivationStore.open`."""
        return ActivationStore.open(self.path, verify=verify)
