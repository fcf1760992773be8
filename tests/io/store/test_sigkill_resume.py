"""SIGKILL an extraction at any moment, run it again: the store is byte-identical.

A child process runs :func:`subspaces.io.extract` on a small model over deterministic data
(410 samples, batches of 7, shards of 20 rows: batches straddle shard boundaries and the
last shard is partial) and is killed with SIGKILL:

* at chosen moments, by patching the store's atomic write in the child: half-way through
  writing a shard or the manifest (a partial temporary file is left), or just after a
  shard's rename but before the manifest lists it, for the first, a middle and the last
  shard and the final "complete" manifest;
* at random moments, from the parent (twice in a row: the resumed run is killed too), in
  forked children and once in a fresh interpreter.

The killed store must be refused by ActivationStore.open with a message saying what to do;
running the same extraction again must finish it with exactly the files (names and bytes)
of an uninterrupted run.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from subspaces.io import MANIFEST_NAME, ActivationStore, StoreError

pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork") or not hasattr(signal, "SIGKILL"), reason="needs fork and SIGKILL"
)

WORKER = r'''
import os
import signal
import sys
import time

import torch
from torch import nn

torch.set_num_threads(1)
N, BATCH, SHARD = 410, 7, 20


class Slow(nn.Module):
    """Identity that sleeps, so that a kill at a random moment lands mid-extraction."""

    def forward(self, x):
        time.sleep(0.004)
        return x


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.Tanh(), Slow(), nn.Linear(32, 8))


def build_data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(N, 16, generator=g), torch.randint(0, 5, (N,), generator=g)


def run(out):
    from subspaces.io import extract

    x, y = build_data()
    return extract(build_model(), x, modules=["0", "1", "3"], out=out, batch_size=BATCH,
                   shard_size=SHARD, labels=y, progress=False)


def install_kill(mode, at):
    """SIGKILL this process at the at-th atomic write: half-way ("mid-write") or just after
    the rename ("after-rename")."""
    import subspaces.io.store.writer as store

    original = store._atomic_write
    count = [0]

    def patched(path, data):
        count[0] += 1
        if count[0] == at:
            if mode == "mid-write":
                tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
                with open(tmp, "wb") as fh:
                    fh.write(data[: len(data) // 2])
                    fh.flush()
            else:
                original(path, data)
            os.kill(os.getpid(), signal.SIGKILL)
        return original(path, data)

    store._atomic_write = patched


if __name__ == "__main__":
    import subspaces.io  # so that a kill after "ready" lands in the extraction itself

    print("ready", flush=True)
    run(sys.argv[1])
'''

_worker: dict[str, Any] = {"__name__": "sigkill_worker"}
exec(compile(WORKER, "sigkill_worker", "exec"), _worker)


def _files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("reference") / "store"
    _worker["run"](out)
    files = _files(out)
    assert len(files) == 1 + 21  # manifest + 20 full shards + the partial one
    return files


def _child(out: str, mode: str | None, at: int) -> None:
    if mode is not None:
        _worker["install_kill"](mode, at)
    _worker["run"](out)


def _fork(
    out: Path, *, mode: str | None = None, at: int = 0, kill_after: float | None = None
) -> int:
    """Run the extraction in a forked child; return its exit code (-9 if killed)."""
    process = multiprocessing.get_context("fork").Process(target=_child, args=(str(out), mode, at))
    process.start()
    assert process.pid is not None
    if kill_after is not None:
        time.sleep(kill_after)
        os.kill(process.pid, signal.SIGKILL)
    process.join(120)
    if process.is_alive():  # pragma: no cover - a hang is a failure, not a wait
        os.kill(process.pid, signal.SIGKILL)
        process.join()
        pytest.fail("the extraction child hung")
    assert process.exitcode is not None
    return process.exitcode


def _assert_refused_then_resumes(out: Path, reference: dict[str, bytes]) -> None:
    manifest = out / MANIFEST_NAME
    if manifest.is_file() and json.loads(manifest.read_text())["complete"]:
        ActivationStore.open(out)  # killed after the very last write: already complete
    else:
        with pytest.raises(
            StoreError, match=r"Run the extraction again to resume|has no manifest\.json"
        ):
            ActivationStore.open(out)
    store = _worker["run"](out)
    assert store.n_samples == 410
    assert _files(out) == reference


# (mode, at-th atomic write, samples the killed store lists): write 1 is the first manifest;
# shard k is write 2 + 2k and its manifest 3 + 2k; the partial shard 20 is write 42 and its
# manifest, which also marks the store complete, write 43.
KILL_POINTS = [
    ("mid-write", 1, None),
    ("after-rename", 1, 0),
    ("mid-write", 8, 60),
    ("after-rename", 8, 60),
    ("mid-write", 9, 60),
    ("after-rename", 9, 80),
    ("after-rename", 42, 400),
    ("mid-write", 43, 400),
    ("after-rename", 43, 410),
]


@pytest.mark.parametrize(
    ("mode", "at", "listed"), KILL_POINTS, ids=[f"{m}-write-{a}" for m, a, _ in KILL_POINTS]
)
def test_kill_at_a_chosen_write_then_resume(
    tmp_path: Path, reference: dict[str, bytes], mode: str, at: int, listed: int | None
) -> None:
    out = tmp_path / "store"
    assert _fork(out, mode=mode, at=at) == -signal.SIGKILL
    if listed is None:
        assert not (out / MANIFEST_NAME).exists()
    else:
        assert json.loads((out / MANIFEST_NAME).read_text())["n_samples"] == listed
    if mode == "mid-write":
        assert any(p.name.startswith(".") for p in out.iterdir())  # the partial temporary file
    _assert_refused_then_resumes(out, reference)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_kill_twice_at_random_moments_then_resume(
    tmp_path: Path, reference: dict[str, bytes], seed: int
) -> None:
    rng = random.Random(seed)
    out = tmp_path / "store"
    for _ in range(2):  # the resumed run is killed too
        _fork(out, kill_after=rng.uniform(0.0, 0.3))
    _assert_refused_then_resumes(out, reference)


def test_kill_a_fresh_interpreter_then_resume(tmp_path: Path, reference: dict[str, bytes]) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out = tmp_path / "store"
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(
        [sys.executable, str(script), str(out)], stdout=subprocess.PIPE, env=env, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    time.sleep(random.Random(7).uniform(0.05, 0.3))
    process.send_signal(signal.SIGKILL)
    assert process.wait(60) == -signal.SIGKILL  # killed mid-extraction, not finished
    process.stdout.close()
    _assert_refused_then_resumes(out, reference)
