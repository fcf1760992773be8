"""The manifest of an activation store: its format, reading it, checking it against the
shards.

The format (``manifest.json`` and the shard layout) is described in
:mod:`subspaces.io.store`. :func:`_read_manifest` parses and checks the structure;
:func:`_check_shards` checks it against the files of the folder (names, byte sizes,
safetensors headers, row counts; no symbolic links).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from subspaces.io.errors import StoreError, one_line
from subspaces.io.store._files import _open_in_store, _safetensors_offsets, _symlink_error

__all__ = ["FORMAT", "FORMAT_VERSION", "LABELS_KEY", "LOCK_NAME", "MANIFEST_NAME", "shard_name"]

FORMAT = "subspaces-activation-store"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
LABELS_KEY = "__labels__"
# the writer's lock file (see subspaces.io.store.lock); readers ignore it
LOCK_NAME = ".writer.lock"
# a manifest is small (about 100 bytes a shard and 80 a tensor); refuse absurd ones unread
_MAX_MANIFEST_BYTES = 256 * 2**20
_SHARD_RE = re.compile(r"^shard-(\d{5,})\.safetensors$")
_TMP_RE = re.compile(r"^\.(.+)\.tmp-\d+(?:-[0-9a-f]+)?$")

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


def shard_name(index: int) -> str:
    """The file name of shard ``index``: ``shard-00000.safetensors``, ...

    Examples:
        >>> from subspaces.io import shard_name
        >>> shard_name(3)
        'shard-00003.safetensors'
    """
    return f"shard-{index:05d}.safetensors"


def _dump_manifest(manifest: Mapping[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


def _is_store_file(name: str) -> bool:
    return (
        name in (MANIFEST_NAME, LOCK_NAME)
        or bool(_SHARD_RE.match(name))
        or bool(_TMP_RE.match(name))
    )


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
            f"({one_line(err)}); extract the store at {path.parent} again."
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
