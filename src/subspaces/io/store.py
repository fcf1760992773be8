"""Activation stores: a folder of safetensors shards plus ``manifest.json``.

Layout of a store folder::

    manifest.json
    shard-00000.safetensors
    shard-00001.safetensors
    ...

Shard ``k`` holds rows ``[k * shard_size, (k + 1) * shard_size)`` of every layer (the last
shard may hold fewer): one tensor per layer, named after the layer, of shape
``(rows, *feature_shape)``, plus an int64 ``__labels__`` tensor of shape ``(rows,)`` when
the store has labels. Its safetensors header metadata is
``{"subspaces_shard": "<k>"}`` (one key: safetensors writes metadata keys in an
unspecified order, and a store's bytes must not depend on it).

``manifest.json`` (format version 1; keys in this order, written with ``indent=2``; it
holds no timestamp, so two runs over the same data give the same bytes)::

    {
      "format": "subspaces-activation-store",
      "format_version": 1,
      "complete": true,            # false while the extraction runs or after it was killed
      "layers": ["embeddings", "layer_1"],          # in order
      "features": {"embeddings": {"shape": [384], "dtype": "float32"}, ...},
      "has_labels": false,         # null until the first shard is written
      "n_samples": 300,            # rows in all listed shards
      "shard_size": 128,           # rows per shard (null until the first write)
      "shards": [{"file": "shard-00000.safetensors", "n_samples": 128,
                  "bytes": 393424, "sha256": "…",             # of the whole file
                  "tensor_sha256": {"embeddings": "…", ...}}, # of each tensor's bytes
                 ...],
      "metadata": {...}            # free-form JSON: the model and data it came from
    }

``tensor_sha256`` was added within format version 1: stores written before it lack the key
and are read as before (older versions of subspaces ignore it).

Integrity on read: an :class:`ActivationStore` (opened with the default ``verify=True``)
checks every tensor it reads against its ``tensor_sha256`` as it reads it, so a read costs
one pass over the bytes it returns, never a second pass over the store; a shard without
per-tensor checksums (older stores) is checked against its ``sha256`` the first time it is
read, once per opened store. A mismatch raises :class:`StoreError` naming the shard and the
store. Shards and the manifest are opened without following symbolic links: a link is
refused, so a store never reads a file outside its folder. :meth:`ActivationStore.verify`
checks everything at once.

Writes are atomic: each file is written to a temporary file in the same folder, flushed,
fsync-ed and renamed over its final name (``os.replace``); the manifest is rewritten the
same way after every shard. A process killed at any moment therefore leaves complete shards
listed in the manifest, perhaps one complete shard that the manifest does not list yet, and
perhaps temporary files: a resumed :class:`StoreWriter` deletes the last two and continues
after the last listed shard.

One writer per folder: a :class:`StoreWriter` holds an exclusive lock on ``.writer.lock`` in
the folder for its whole life (``flock``; a byte-range lock on Windows), and a second writer,
in this process or another, is refused with a :class:`StoreError` naming the holder's pid
and host. The operating system drops the lock when its process dies, so a writer killed
with SIGKILL leaves a lock file that the next writer takes over. The lock is advisory (it
binds subspaces' writers, not other programs) and needs a filesystem with working locks
(local disks do; some network filesystems do not). A store being written always has an
incomplete manifest (a rewrite marks it incomplete before deleting anything), which readers
refuse.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import re
import secrets
import socket
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save as _safetensors_save
from torch import Tensor

from subspaces._checks import (
    InputTypeError,
    ShapeError,
    SubspacesError,
    check_labels,
    check_positive_int,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "LABELS_KEY",
    "LOCK_NAME",
    "MANIFEST_NAME",
    "ActivationStore",
    "StoreError",
    "StoreWriter",
    "shard_name",
]

FORMAT = "subspaces-activation-store"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
LABELS_KEY = "__labels__"
# the writer's lock file (see the module docstring); readers ignore it
LOCK_NAME = ".writer.lock"
# a manifest is small (about 100 bytes a shard and 80 a tensor); refuse absurd ones unread
_MAX_MANIFEST_BYTES = 256 * 2**20
# rows per shard when not given: as many as fit in about this many bytes (bounded below)
_TARGET_SHARD_BYTES = 256 * 2**20
_MAX_AUTO_SHARD_ROWS = 65536
_SHARD_RE = re.compile(r"^shard-(\d{5,})\.safetensors$")
_TMP_RE = re.compile(r"^\.(.+)\.tmp-\d+(?:-[0-9a-f]+)?$")
_HASH_CHUNK = 2**20

_DTYPES: dict[str, torch.dtype] = {
    "float64": torch.float64,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64,
    "int32": torch.int32,
    "int16": torch.int16,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
}
_DTYPE_NAMES = {v: k for k, v in _DTYPES.items()}
# dtype names in a safetensors header
_SAFETENSORS_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
}


class StoreError(SubspacesError, ValueError):
    """An activation store (or an activation file) is missing, incomplete, corrupt or
    inconsistent, or cannot be written as asked."""


def shard_name(index: int) -> str:
    """The file name of shard ``index``: ``shard-00000.safetensors``, ..."""
    return f"shard-{index:05d}.safetensors"


# --------------------------------------------------------------------------- file helpers


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temporary file, flush, fsync, ``os.replace``.

    The temporary file's name is new (pid and a random token) and created exclusively, so
    nothing else writes or renames it; an ``OSError`` (disk full...) is a :class:`StoreError`
    naming the file.
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise StoreError(
                f"cannot write {path.name} in the activation store at {path.parent}: {err}."
            ) from err
        raise
    _fsync_dir(path.parent)


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BINARY = getattr(os, "O_BINARY", 0)


def _open_in_store(folder: Path, name: str) -> int:
    """A read-only descriptor of the file ``name`` in the store ``folder``.

    Symbolic links are refused (opened with ``O_NOFOLLOW`` where the platform has it, so a
    link swapped in after a check is refused too): a store reads only its own files.
    """
    path = folder / name
    if path.is_symlink():
        raise _symlink_error(folder, name)
    try:
        return os.open(path, os.O_RDONLY | _NOFOLLOW | _BINARY)
    except OSError as err:
        if err.errno == errno.ELOOP or path.is_symlink():
            raise _symlink_error(folder, name) from None
        if isinstance(err, FileNotFoundError):
            raise StoreError(
                f"{name} is listed in the manifest of the activation store at {folder} but "
                "missing; the store is damaged: extract it again."
            ) from None
        raise StoreError(
            f"{name} in the activation store at {folder} cannot be opened: {err}."
        ) from None


def _symlink_error(folder: Path, name: str) -> StoreError:
    return StoreError(
        f"{name} in the activation store at {folder} is a symbolic link (to "
        f"{os.readlink(folder / name) if (folder / name).is_symlink() else 'another file'}); a "
        "store reads only the files in its own folder: copy the file there, or extract the "
        "store again."
    )


def _sha256_fd(
    fd: int, ranges: Mapping[str, tuple[int, int]] | None = None
) -> tuple[str, dict[str, str]]:
    """sha256 of the whole file open at ``fd`` and, in the same pass, of each byte range
    ``{key: (begin, end)}`` (the tensors of a shard)."""
    whole = hashlib.sha256()
    parts = {key: hashlib.sha256() for key in ranges or {}}
    spans = sorted((begin, end, key) for key, (begin, end) in (ranges or {}).items())
    offset = 0
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, _HASH_CHUNK):
        view = memoryview(chunk)
        whole.update(view)
        stop = offset + len(chunk)
        for begin, end, key in spans:
            if begin < stop and end > offset:
                parts[key].update(view[max(begin, offset) - offset : min(end, stop) - offset])
        offset = stop
    return whole.hexdigest(), {key: h.hexdigest() for key, h in parts.items()}


def _sha256_file(folder: Path, name: str) -> str:
    fd = _open_in_store(folder, name)
    try:
        return _sha256_fd(fd)[0]
    finally:
        os.close(fd)


def _read_exactly(fd: int, offset: int, out: memoryview) -> int:
    """Read ``len(out)`` bytes at ``offset`` into ``out``; return how many were there."""
    os.lseek(fd, offset, os.SEEK_SET)
    done = 0
    with os.fdopen(os.dup(fd), "rb", buffering=0) as fh:
        while done < len(out):
            n = fh.readinto(out[done:])
            if not n:
                break
            done += n
    return done


def _safetensors_offsets(data: bytes | memoryview) -> tuple[int, dict[str, tuple[int, int]]]:
    """(size of the header, ``{key: (begin, end)}`` file offsets) of a safetensors file's
    first bytes (at least its header)."""
    n = int.from_bytes(bytes(data[:8]), "little")
    header = json.loads(bytes(data[8 : 8 + n]))
    return 8 + n, {
        key: (8 + n + int(info["data_offsets"][0]), 8 + n + int(info["data_offsets"][1]))
        for key, info in header.items()
        if key != "__metadata__"
    }


# --------------------------------------------------------------------------- writer lock


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    # lock one byte far past the holder's note, so that a refused writer can still read it
    _WIN_LOCK_OFFSET = 2**30

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        with contextlib.suppress(OSError):
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class _WriterLock:
    """The exclusive lock of one store's writer: ``flock`` on ``LOCK_NAME`` (see the module
    docstring). The file holds a note naming the holder (pid, host, start time, token) for
    the error a refused writer gets; it is deleted on release."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME
        self.token = secrets.token_hex(8)
        self._pid = os.getpid()
        self._fd: int | None = None
        for _ in range(100):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _BINARY, 0o644)
            except OSError as err:
                raise StoreError(
                    f"cannot write an activation store at {folder}: its lock file {LOCK_NAME} "
                    f"cannot be opened ({err})."
                ) from None
            if not _try_lock(fd):
                holder = self._holder(fd)
                os.close(fd)
                raise StoreError(
                    f"cannot write the activation store at {folder}: another writer holds it "
                    f"({holder}); one writer per store: wait for that one to finish or stop it, "
                    "then run again (an interrupted extraction resumes)."
                )
            # a writer that finished between our open and our lock deleted the file we
            # locked: lock the file now at that path instead
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path, follow_symlinks=False))
            except OSError:
                same = False
            if same:
                break
            _unlock(fd)
            os.close(fd)
        else:  # pragma: no cover - a lock file deleted and recreated 100 times in a row
            raise StoreError(f"cannot lock the activation store at {folder}; run again.")
        self._fd = fd
        note = {
            "pid": self._pid,
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "token": self.token,
        }
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, json.dumps(note).encode())
        except OSError as err:
            self.release()
            raise StoreError(
                f"cannot write an activation store at {folder}: its lock file {LOCK_NAME} "
                f"cannot be written ({err})."
            ) from None

    @staticmethod
    def _holder(fd: int) -> str:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            note = json.loads(os.read(fd, 4096))
            return f"pid {int(note['pid'])} on host {note['host']}, since {note['started']}"
        except (OSError, ValueError, TypeError, KeyError):
            return "another process, which has not written its pid yet"

    def release(self) -> None:
        """Delete the lock file and unlock (idempotent). In a forked child, only close the
        inherited descriptor: the lock is its parent's."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if os.getpid() == self._pid:
                # while still locked, so that nobody locks the file we delete (Windows
                # cannot delete an open file: there the file stays)
                with contextlib.suppress(OSError):
                    self.path.unlink(missing_ok=True)
                _unlock(fd)
        finally:
            os.close(fd)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter shutdown
            self.release()


def _dump_manifest(manifest: Mapping[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


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


def _is_store_file(name: str) -> bool:
    return (
        name in (MANIFEST_NAME, LOCK_NAME)
        or bool(_SHARD_RE.match(name))
        or bool(_TMP_RE.match(name))
    )


# --------------------------------------------------------------------------- manifest checks


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST_NAME
    if not folder.exists():
        raise StoreError(f"no activation store at {folder}: the folder does not exist.")
    if not folder.is_dir():
        raise StoreError(
            f"{folder} is a file, not an activation store folder; read single files with "
            "subspaces.io.read_array or open_activations."
        )
    if not path.is_file() and not path.is_symlink():
        raise StoreError(
            f"{folder} is not an activation store: it has no {MANIFEST_NAME}. If an extraction "
            "was writing there, it was stopped before its first write: run it again."
        )
    fd = _open_in_store(folder, MANIFEST_NAME)
    try:
        size = os.fstat(fd).st_size
        if size > _MAX_MANIFEST_BYTES:
            raise StoreError(
                f"{path} is {size} bytes, more than a store's manifest can be "
                f"({_MAX_MANIFEST_BYTES} bytes at most); it is not a manifest written by "
                "subspaces: extract the store again."
            )
        with os.fdopen(os.dup(fd), "rb") as fh:
            raw = fh.read(_MAX_MANIFEST_BYTES + 1)
    finally:
        os.close(fd)
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise StoreError(
            f"{path} is nested too deeply to be a store's manifest (JSON lists or objects "
            "inside each other thousands of levels deep); extract the store again."
        ) from None
    except (ValueError, UnicodeDecodeError) as err:
        raise StoreError(f"{path} is not valid JSON ({err}); the store cannot be read.") from None
    if not isinstance(manifest, dict):
        raise StoreError(f"{path} must hold a JSON object, got {type(manifest).__name__}.")
    _check_manifest_structure(manifest, path)
    return manifest


_MANIFEST_KEYS: dict[str, Any] = {
    "format": str,
    "format_version": int,
    "complete": bool,
    "layers": list,
    "features": dict,
    "has_labels": (bool, type(None)),
    "n_samples": int,
    "shard_size": (int, type(None)),
    "shards": list,
    "metadata": dict,
}


def _check_manifest_structure(manifest: dict[str, Any], path: Path) -> None:
    for key, kind in _MANIFEST_KEYS.items():
        if key not in manifest:
            raise StoreError(f"{path} is malformed: it has no {key!r} entry.")
        if not isinstance(manifest[key], kind):
            raise StoreError(
                f"{path} is malformed: {key!r} is {manifest[key]!r} "
                f"({type(manifest[key]).__name__})."
            )
    if manifest["format"] != FORMAT:
        raise StoreError(f"{path} has format {manifest['format']!r}, expected {FORMAT!r}.")
    if manifest["format_version"] > FORMAT_VERSION:
        raise StoreError(
            f"{path} has format version {manifest['format_version']}, newer than this "
            f"subspaces reads ({FORMAT_VERSION}); upgrade subspaces."
        )
    for i, shard in enumerate(manifest["shards"]):
        ok = (
            isinstance(shard, dict)
            and isinstance(shard.get("file"), str)
            and isinstance(shard.get("n_samples"), int)
            and isinstance(shard.get("bytes"), int)
            and isinstance(shard.get("sha256"), str)
        )
        digests = shard.get("tensor_sha256") if isinstance(shard, dict) else None
        if ok and digests is not None:
            ok = isinstance(digests, dict) and all(
                isinstance(v, str) and len(v) == 64 for v in digests.values()
            )
        if not ok:
            raise StoreError(
                f"{path} is malformed: shard entry {i} is {shard!r}; expected "
                '{"file": str, "n_samples": int, "bytes": int, "sha256": str} and '
                'perhaps "tensor_sha256": {name: sha256}.'
            )
    for name, info in manifest["features"].items():
        ok = (
            isinstance(info, dict)
            and isinstance(info.get("shape"), list)
            and all(isinstance(s, int) and s >= 0 for s in info["shape"])
            and info.get("dtype") in _DTYPES
        )
        if not ok:
            raise StoreError(
                f"{path} is malformed: features[{name!r}] is {info!r}; expected "
                f'{{"shape": [ints], "dtype": one of {sorted(_DTYPES)}}}.'
            )


def _check_shards(
    folder: Path, manifest: dict[str, Any], *, complete: bool
) -> list[dict[str, tuple[int, int]]]:
    """Check the manifest against the folder: file names, sizes, headers, counts; no links.

    Returns each shard's ``{key: (begin, end)}`` byte offsets of its tensors.
    """
    layers: list[str] = manifest["layers"]
    features: dict[str, Any] = manifest["features"]
    shards: list[dict[str, Any]] = manifest["shards"]
    where = folder / MANIFEST_NAME
    if complete:
        missing = [name for name in layers if name not in features]
        extra = [name for name in features if name not in layers]
        if missing or extra:
            raise StoreError(
                f"{where} disagrees with itself: 'features' describes {sorted(features)} but "
                f"'layers' is {layers}."
            )
        if not shards:
            raise StoreError(f"{where} lists no shards: the store holds no samples.")
        if not isinstance(manifest["has_labels"], bool) or manifest["shard_size"] is None:
            raise StoreError(
                f"{where} is malformed: a complete store needs has_labels and shard_size."
            )
    total = sum(int(s["n_samples"]) for s in shards)
    if total != manifest["n_samples"]:
        raise StoreError(
            f"{where} disagrees with its shards: it says n_samples = {manifest['n_samples']}, "
            f"but its {len(shards)} shards hold {total} rows."
        )
    shard_size = manifest["shard_size"]
    offsets: list[dict[str, tuple[int, int]]] = []
    for index, shard in enumerate(shards):
        expected = shard_name(index)
        if shard["file"] != expected:
            raise StoreError(
                f"{where} lists {shard['file']!r} as shard {index}; expected {expected!r}."
            )
        rows = int(shard["n_samples"])
        last = index == len(shards) - 1
        if shard_size is not None and (rows > shard_size or (not last and rows != shard_size)):
            raise StoreError(
                f"{where} disagrees with itself: {expected} holds {rows} rows but shards hold "
                f"{shard_size} rows (the last one at most {shard_size})."
            )
        path = folder / expected
        if path.is_symlink():
            raise _symlink_error(folder, expected)
        if not path.is_file():
            raise StoreError(
                f"{expected} is listed in {where} but missing from {folder}; the store is "
                "damaged: extract it again."
            )
        size = path.stat().st_size
        if size != shard["bytes"]:
            raise StoreError(
                f"{expected} is truncated or corrupt: {size} bytes on disk, but {where} records "
                f"{shard['bytes']} bytes; extract the store again."
            )
        offsets.append(_check_shard_header(path, manifest, rows=rows, index=index))
    if complete:
        listed = {s["file"] for s in shards}
        unlisted = sorted(
            p.name for p in folder.iterdir() if _SHARD_RE.match(p.name) and p.name not in listed
        )
        if unlisted:
            raise StoreError(
                f"{folder} holds {', '.join(unlisted)}, which {where} does not list: the "
                "manifest disagrees with its shards; extract the store again."
            )
    return offsets


def _check_shard_header(
    path: Path, manifest: dict[str, Any], *, rows: int, index: int
) -> dict[str, tuple[int, int]]:
    """Check one shard's safetensors header against the manifest; return its tensors'
    ``{key: (begin, end)}`` byte offsets in the file."""
    layers: list[str] = manifest["layers"]
    features: dict[str, Any] = manifest["features"]
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            keys = set(fh.keys())
            header_meta = fh.metadata() or {}
            shapes = {k: list(fh.get_slice(k).get_shape()) for k in keys}
            dtypes = {k: fh.get_slice(k).get_dtype() for k in keys}
    except Exception as err:  # safetensors raises its own error types for a bad header
        raise StoreError(
            f"{path.name} is truncated or corrupt: its safetensors header cannot be read "
            f"({' '.join(str(err).split())}); extract the store at {path.parent} again."
        ) from None
    expected_keys = set(layers) | ({LABELS_KEY} if manifest["has_labels"] else set())
    if keys != expected_keys:
        missing = sorted(expected_keys - keys)
        extra = sorted(keys - expected_keys)
        parts = []
        if missing:
            parts.append(f"lacks {missing}")
        if extra:
            parts.append(f"has {extra} that the manifest does not list")
        raise StoreError(
            f"the manifest of the activation store at {path.parent} disagrees with "
            f"{path.name}: the shard {' and '.join(parts)} "
            f"(manifest layers: {layers}, labels: {manifest['has_labels']})."
        )
    if header_meta.get("subspaces_shard") not in (None, str(index)):
        raise StoreError(
            f"{path.name} in the activation store at {path.parent} says it is shard "
            f"{header_meta.get('subspaces_shard')}, but it sits "
            f"at position {index}: shards were renamed or swapped; extract the store again."
        )
    for key in [*layers, LABELS_KEY] if manifest["has_labels"] else layers:
        if key == LABELS_KEY:
            want_shape, want_dtype = [rows], "int64"
        else:
            want_shape = [rows, *features[key]["shape"]]
            want_dtype = features[key]["dtype"]
        got_dtype = _SAFETENSORS_DTYPES.get(dtypes[key], dtypes[key])
        if shapes[key] != want_shape or got_dtype != want_dtype:
            raise StoreError(
                f"the manifest of the activation store at {path.parent} disagrees with "
                f"{path.name}: {key!r} has shape "
                f"{tuple(shapes[key])} and dtype {got_dtype} in the shard, but the manifest "
                f"says shape {tuple(want_shape)} and dtype {want_dtype}."
            )
    digests = manifest["shards"][index].get("tensor_sha256")
    if digests is not None and set(digests) != expected_keys:
        raise StoreError(
            f"the manifest of the activation store at {path.parent} disagrees with "
            f"{path.name}: it records checksums for {sorted(digests)}, but the shard holds "
            f"{sorted(expected_keys)}; extract the store again."
        )
    fd = _open_in_store(path.parent, path.name)
    try:
        head = os.read(fd, 8)
        size = int.from_bytes(head, "little")
        raw = head + os.read(fd, size)
        begin_of_data, offsets = _safetensors_offsets(raw)
        if len(raw) != begin_of_data or set(offsets) != keys:
            raise ValueError("the header changed while it was read")
    except (OSError, ValueError, TypeError, KeyError, IndexError) as err:
        raise StoreError(
            f"{path.name} in the activation store at {path.parent} is truncated or corrupt: its "
            f"header cannot be read ({err}); extract the store again."
        ) from None
    finally:
        os.close(fd)
    return offsets


# --------------------------------------------------------------------------- reader


class ActivationStore:
    """A read-only view of an activation store folder (see the module docstring).

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
        labels: the ``(n_samples,)`` int64 labels, or None; loaded on first access.
        shard_sizes: rows per shard.
        verify_reads: reads are checked against the manifest's checksums (``verify``).
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


def _identity(fd: int) -> tuple[int, int, int, int]:
    """(device, inode, size, mtime) of the file open at ``fd``: a file checked once."""
    st = os.fstat(fd)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


# --------------------------------------------------------------------------- writer


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
        resume: with an existing store of the same ``layers``, ``metadata`` (and
            ``shard_size`` if given), keep its complete shards: :attr:`n_done` says how many
            samples are stored and the producer must skip them (shards are always whole
            multiples of ``shard_size``, so the next row written is row ``n_done``).
            Unlisted shards and temporary files of the interrupted run are deleted. An
            existing *complete* store is kept as is (:attr:`complete` is True; writing to it
            is refused). ``resume=False`` deletes an existing store's files and starts over.
        shard_size: rows per shard; default: as many rows as fit in about 256 MiB (at least
            1, at most 65536), fixed from the first write and recorded in the manifest.

    Attributes:
        n_done: samples already stored when the writer was opened.
        n_written: samples accepted so far, ``n_done`` included.
        complete: the store is marked complete.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        layers: Sequence[str],
        metadata: Mapping[str, Any] | None = None,
        resume: bool = True,
        shard_size: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.layers = _check_layers(layers)
        self.metadata = _normalize_metadata(metadata)
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
        return {
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
        if manifest["layers"] != self.layers:
            raise StoreError(
                f"cannot resume the store at {folder}: it was started with layers "
                f"{manifest['layers']}, this run writes {self.layers}; {hint}."
            )
        if manifest["metadata"] != self.metadata:
            old, new = manifest["metadata"], self.metadata
            differ = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise StoreError(
                f"cannot resume the store at {folder}: its metadata differs from this run's "
                f"in {differ} (stored {[old.get(k) for k in differ]}, now "
                f"{[new.get(k) for k in differ]}); {hint}."
            )
        stored_size = manifest["shard_size"]
        wanted = self._requested_shard_size
        if wanted is not None and stored_size is not None and stored_size != wanted:
            raise StoreError(
                f"cannot resume the store at {folder}: it was started with shard_size "
                f"{stored_size}, this run asks for {wanted}; {hint}."
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
