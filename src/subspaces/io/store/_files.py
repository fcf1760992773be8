"""File primitives of activation stores: atomic writes, no-follow opens, hashing.

Every file of a store is written through a temporary file, fsync-ed and renamed
(:func:`_atomic_write`), opened for reading without following symbolic links
(:func:`_open_in_store`), and hashed in one pass with its tensors (:func:`_sha256_fd`).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from subspaces.io.errors import StoreError

_HASH_CHUNK = 2**20


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


def _identity(fd: int) -> tuple[int, int, int, int]:
    """(device, inode, size, mtime) of the file open at ``fd``: a file checked once."""
    st = os.fstat(fd)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
