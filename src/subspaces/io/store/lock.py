"""One writer per store: the exclusive lock a :class:`~subspaces.io.StoreWriter` holds.

A writer holds an exclusive lock on ``.writer.lock`` in the store folder for its whole life
(``flock``; a byte-range lock on Windows); a second writer, in this process or another, is
refused with a :class:`~subspaces.io.StoreError` naming the holder's pid and host. The
operating system drops the lock when its process dies, so a writer killed with SIGKILL
leaves a lock file that the next writer takes over.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import sys
import time
from pathlib import Path

from subspaces.io.errors import StoreError
from subspaces.io.store._files import _BINARY, _NOFOLLOW
from subspaces.io.store.manifest import LOCK_NAME

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
