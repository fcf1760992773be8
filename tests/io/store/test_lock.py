"""One writer per store: the writer's lock, within one process and across real processes."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from subspaces.io import (
    LOCK_NAME,
    MANIFEST_NAME,
    ActivationStore,
    StoreError,
    StoreWriter,
    extract,
)

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="real-process tests fork (POSIX); the lock itself is portable"
)

ROWS = 5


def _rows(start: int, stop: int) -> dict[str, torch.Tensor]:
    return {"a": torch.arange(start * 3, stop * 3, dtype=torch.float32).reshape(-1, 3)}


def _writer(path: Path) -> StoreWriter:
    return StoreWriter(path, layers=["a"], shard_size=2)


# --------------------------------------------------------------------------- one process


def test_second_writer_is_refused_naming_the_holder(tmp_path: Path) -> None:
    first = _writer(tmp_path / "s")
    pid, host = os.getpid(), socket.gethostname()
    with pytest.raises(
        StoreError, match=rf"another writer holds it \(pid {pid} on host {host}, since .*wait"
    ):
        _writer(tmp_path / "s")
    first.write(_rows(0, 1))
    first.close()


def test_refused_writer_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s"
    first = _writer(path)
    first.write(_rows(0, 3))
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    with pytest.raises(StoreError, match="another writer holds it"):
        StoreWriter(path, layers=["a"], shard_size=2, resume=False)
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    first.close()


def _end_cleanly(path: Path) -> None:
    with _writer(path) as writer:
        writer.write(_rows(0, ROWS))


def _end_with_an_exception(path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), _writer(path) as writer:
        writer.write(_rows(0, ROWS))
        raise RuntimeError("boom")


def _end_with_nothing_written(path: Path) -> None:
    with pytest.raises(StoreError, match="nothing was written"), _writer(path):
        pass


@pytest.mark.parametrize(
    "end",
    [_end_cleanly, _end_with_an_exception, _end_with_nothing_written],
    ids=["close", "exception", "nothing-written"],
)
def test_lock_is_released_when_the_writer_ends(tmp_path: Path, end: Any) -> None:
    path = tmp_path / "s"
    end(path)
    assert not (path / LOCK_NAME).exists()
    with _writer(path) as writer:  # a new writer is let in
        if not writer.complete:
            writer.write(_rows(0, ROWS))


def test_writer_of_a_complete_store_releases_the_lock_on_close(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with _writer(path) as writer:
        writer.write(_rows(0, ROWS))
    resumed = _writer(path)
    assert resumed.complete
    resumed.close()
    assert not (path / LOCK_NAME).exists()


def test_extract_is_refused_while_a_writer_holds_the_store(tmp_path: Path) -> None:
    path = tmp_path / "s"
    holder = StoreWriter(path, layers=["0"])
    with pytest.raises(StoreError, match=rf"another writer holds it \(pid {os.getpid()}"):
        extract(nn.Sequential(nn.Linear(3, 2)), torch.ones(4, 3), modules=["0"], out=path)
    holder.write({"0": torch.ones(1, 2)})
    holder.close()


class _FailsToEval(nn.Sequential):
    def train(self, mode: bool = True) -> _FailsToEval:
        if not mode:
            raise RuntimeError("this model cannot be put in eval mode")
        return super().train(mode)


def test_extract_that_fails_before_its_first_batch_releases_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with pytest.raises(RuntimeError, match="cannot be put in eval mode") as failure:
        extract(_FailsToEval(nn.Linear(3, 2)), torch.ones(4, 3), modules=["0"], out=path)
    # the traceback (kept alive here, as a notebook keeps it) must not keep the lock
    assert failure.value is not None
    assert not (path / LOCK_NAME).exists()
    model = nn.Sequential(nn.Linear(3, 2))
    assert len(extract(model, torch.ones(4, 3), modules=["0"], out=path, resume=False)) == 4


def test_stale_lock_file_does_not_stop_readers_or_writers(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with _writer(path) as writer:
        writer.write(_rows(0, ROWS))
    (path / LOCK_NAME).write_text(json.dumps({"pid": 999999, "host": "gone", "started": "then"}))
    assert ActivationStore.open(path).load("a").shape == (ROWS, 3)  # ignored by readers
    rewritten = StoreWriter(path, layers=["a"], resume=False)  # not taken for a foreign file
    rewritten.write(_rows(0, 1))
    rewritten.close()
    assert ActivationStore.open(path).n_samples == 1 and not (path / LOCK_NAME).exists()


def test_rewrite_marks_the_store_incomplete_before_deleting_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s"
    with _writer(path) as writer:
        writer.write(_rows(0, ROWS))
    seen: list[bool] = []
    original = Path.unlink

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if self.parent == path and self.name.startswith("shard-"):
            seen.append(json.loads((path / MANIFEST_NAME).read_text())["complete"])
        original(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    StoreWriter(path, layers=["a"], resume=False)
    assert seen and not any(seen)


def test_temporary_files_have_unique_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subspaces.io.store._files as store_module

    names: list[str] = []
    original = os.replace

    def replace(src: Any, dst: Any) -> None:
        names.append(Path(src).name)
        original(src, dst)

    monkeypatch.setattr(store_module.os, "replace", replace)
    with _writer(tmp_path / "s") as writer:
        writer.write(_rows(0, ROWS))
    manifests = [n for n in names if n.startswith(f".{MANIFEST_NAME}.tmp-{os.getpid()}-")]
    assert len(manifests) == len(set(manifests)) > 1


# --------------------------------------------------------------------------- real processes


def _hold(path: str, ready: Any) -> None:
    """Child: open a writer, store 2 shards (5 rows, 1 buffered), then wait to be killed."""
    writer = _writer(Path(path))
    writer.write(_rows(0, ROWS))
    ready.set()
    time.sleep(120)


def test_second_process_is_refused_then_takes_over_after_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "s"
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    child = context.Process(target=_hold, args=(str(path), ready))
    child.start()
    try:
        assert ready.wait(60), "the writer process did not start"
        with pytest.raises(StoreError, match=rf"another writer holds it \(pid {child.pid} on"):
            _writer(path)
        with pytest.raises(StoreError, match=rf"another writer holds it \(pid {child.pid} on"):
            extract(nn.Sequential(nn.Linear(3, 2)), torch.ones(4, 3), modules=["0"], out=path)
    finally:
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join(60)
    assert child.exitcode == -signal.SIGKILL
    assert (path / LOCK_NAME).exists()  # left by the killed writer, no longer locked
    with _writer(path) as writer:  # takes the stale lock over and resumes
        assert writer.n_done == 4
        writer.write(_rows(4, ROWS + 2))
    torch.testing.assert_close(ActivationStore.open(path).load("a"), _rows(0, ROWS + 2)["a"])
    assert not (path / LOCK_NAME).exists()


class _Slow(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.01)
        return x


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 4), _Slow(), nn.Tanh())


def _extract(out: Path) -> ActivationStore:
    x = torch.linspace(-1, 1, 240).reshape(40, 6)
    return extract(_model(), x, modules=["0", "2"], out=out, batch_size=2, shard_size=4)


def _race(out: str, start: Any) -> None:
    start.wait(60)
    try:
        _extract(Path(out))
    except StoreError as err:
        sys.exit(3 if "another writer holds it" in str(err) else 4)


def test_two_processes_extracting_into_one_folder(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    start = context.Event()
    out = tmp_path / "store"
    racers = [context.Process(target=_race, args=(str(out), start)) for _ in range(2)]
    for racer in racers:
        racer.start()
    start.set()
    for racer in racers:
        racer.join(120)
    codes = sorted(racer.exitcode for racer in racers)
    # one extracts; the other is refused (or, had it come after, finds the store complete)
    assert codes in ([0, 3], [0, 0]), codes
    reference = _extract(tmp_path / "reference")
    store = ActivationStore.open(out)
    store.verify()
    for name in reference.layers:
        torch.testing.assert_close(store.load(name), reference.load(name), rtol=0, atol=0)
    assert (out / MANIFEST_NAME).read_bytes() == (
        tmp_path / "reference" / MANIFEST_NAME
    ).read_bytes()
