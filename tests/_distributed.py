"""Run test code in several processes joined by a torch.distributed (gloo, CPU) group.

``ProcessGroupPool(world_size)`` starts the processes once (``spawn``), each joined to a gloo
group through a ``TCPStore`` that the parent opens on a free port (the OS picks it: no race
between finding a port and binding it). ``pool.run(fn, *args)`` then calls
``fn(rank, world_size, *args)`` on every rank and returns the results in rank order, so that
many parametrized tests share one start-up (a second or two of importing torch).

``fn`` and ``args`` travel by pickle: ``fn`` must be a module-level function (or a
``functools.partial`` of one), data plain Python values or numpy arrays, and results too
(return ``float(t)`` or ``t.numpy()``, not tensors). A failure on any rank, or no answer within
``timeout`` seconds, closes the pool (the next ``run`` starts a fresh one) and raises
``DistributedRunError`` with the rank's traceback (a failure that leaves every other rank
able to answer keeps the pool).

``streaming_on_ranks`` is a ready-made ``fn`` for the commonest check: every rank feeds its
share of the rows to a streaming metric and returns ``compute()``; compare with the one-shot
value (see ``check_streaming_matches_one_shot``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

__all__ = [
    "DistributedRunError",
    "ProcessGroupPool",
    "assert_plain_close",
    "check_streaming_matches_one_shot",
    "distributed_available",
    "rank_rows",
    "streaming_on_ranks",
    "to_plain",
]

_STOP = "stop"


class DistributedRunError(RuntimeError):
    """A rank failed, died, or did not answer in time."""


def distributed_available() -> bool:
    """Whether this torch build can run a gloo group."""
    return dist.is_available() and dist.is_gloo_available()


def _worker(
    rank: int,
    world_size: int,
    port: int,
    timeout: float,
    tasks: Any,
    results: Any,
) -> None:
    torch.set_num_threads(1)
    try:
        store = dist.TCPStore("127.0.0.1", port, world_size, is_master=False)
        dist.init_process_group(
            "gloo",
            store=store,
            rank=rank,
            world_size=world_size,
            timeout=timedelta(seconds=timeout),
        )
    except BaseException:
        results.put((rank, False, traceback.format_exc()))
        return
    results.put((rank, True, "ready"))
    try:
        while True:
            task = tasks.get()
            if task == _STOP:
                break
            fn, args = task
            try:
                results.put((rank, True, fn(rank, world_size, *args)))
            except BaseException:
                results.put((rank, False, traceback.format_exc()))
    finally:
        dist.destroy_process_group()
    # Skip the interpreter's slow teardown of torch: every result has been read by now.
    results.close()
    results.join_thread()
    os._exit(0)


class ProcessGroupPool:
    """``world_size`` processes in one gloo group, reused across calls of :meth:`run`.

    Args:
        world_size: number of ranks.
        timeout: seconds to wait for start-up and for each call's results; also the gloo
            collective timeout, so that a rank left waiting by a failed peer gives up.
        grace: after a rank fails, seconds to wait for the others before closing the pool.
    """

    def __init__(self, world_size: int = 2, *, timeout: float = 60.0, grace: float = 5.0) -> None:
        self.world_size = world_size
        self.timeout = timeout
        self.grace = grace
        self._processes: list[Any] = []
        self._tasks: list[Any] = []
        self._results: Any = None
        self._store: Any = None

    def __enter__(self) -> ProcessGroupPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        self._store = dist.TCPStore(
            "127.0.0.1", 0, self.world_size, is_master=True, wait_for_workers=False
        )
        self._results = ctx.Queue()
        self._tasks = [ctx.Queue() for _ in range(self.world_size)]
        self._processes = [
            ctx.Process(
                target=_worker,
                args=(
                    rank,
                    self.world_size,
                    self._store.port,
                    self.timeout,
                    self._tasks[rank],
                    self._results,
                ),
                daemon=True,
            )
            for rank in range(self.world_size)
        ]
        for p in self._processes:
            p.start()
        self._collect("start-up")

    def _collect(self, what: str) -> list[Any]:
        """Every rank's answer; on a failure, wait a little for the others, then raise.

        If every rank answered (the others did not hang in a collective waiting for the
        failed one), the pool stays usable; otherwise it is closed.
        """
        deadline = time.monotonic() + self.timeout
        answers: dict[int, Any] = {}
        failures: dict[int, str] = {}
        while len(answers) + len(failures) < self.world_size:
            try:
                rank, ok, value = self._results.get(timeout=0.2)
            except queue.Empty:
                dead = [i for i, p in enumerate(self._processes) if not p.is_alive()]
                if dead or time.monotonic() > deadline:
                    reason = f"ranks {dead} died" if dead else f"no answer in {self.timeout} s"
                    self.close()
                    report = "".join(f"\nrank {r}:\n{tb}" for r, tb in sorted(failures.items()))
                    raise DistributedRunError(f"{what}: {reason}{report}") from None
                continue
            if ok:
                answers[rank] = value
            else:
                failures[rank] = value
                deadline = min(deadline, time.monotonic() + self.grace)
        if failures:
            report = "".join(f"\nrank {r}:\n{tb}" for r, tb in sorted(failures.items()))
            raise DistributedRunError(f"{what} failed on ranks {sorted(failures)}:{report}")
        return [answers[r] for r in range(self.world_size)]

    def run(self, fn: Callable[..., Any], *args: Any) -> list[Any]:
        """``fn(rank, world_size, *args)`` on every rank; the results in rank order."""
        if not self._processes:
            self._start()
        for q in self._tasks:
            q.put((fn, args))
        return self._collect(getattr(fn, "__name__", repr(fn)))

    def close(self) -> None:
        """Stop the processes (politely, then by force) and forget them."""
        for q in self._tasks:
            with contextlib.suppress(OSError, ValueError):  # a queue already closed
                q.put(_STOP)
        deadline = time.monotonic() + 5.0
        for p in self._processes:
            p.join(timeout=max(0.0, deadline - time.monotonic()))
        for p in self._processes:
            if p.is_alive():
                p.kill()
                p.join(timeout=5.0)
        self._processes, self._tasks, self._results, self._store = [], [], None, None


def rank_rows(n: int, rank: int, world_size: int) -> slice:
    """The contiguous rows of ``n`` that ``rank`` owns (the first ranks get one more if uneven)."""
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def streaming_on_ranks(
    rank: int,
    world_size: int,
    metric_factory: Callable[[], Any],
    x: np.ndarray,
    y: np.ndarray | None,
    batch_size: int,
) -> Any:
    """Feed this rank's rows of ``(x, y)`` (or of ``x`` alone when ``y`` is None) to
    ``metric_factory()`` in batches; ``compute()``.

    The metric syncs its states across ranks in ``compute()``; the result comes back through
    :func:`to_plain` (a float, a numpy array, or a dict for a dataclass result).
    """
    metric = metric_factory()
    rows = rank_rows(x.shape[0], rank, world_size)
    xr = torch.from_numpy(x[rows])
    yr = None if y is None else torch.from_numpy(y[rows])
    for start in range(0, xr.shape[0], batch_size):
        batch = slice(start, start + batch_size)
        if yr is None:
            metric.update(xr[batch])
        else:
            metric.update(xr[batch], yr[batch])
    return to_plain(metric.compute())


def to_plain(value: Any) -> Any:
    """Tensors as floats (0-dim) or numpy arrays, recursively through dataclasses (as
    dicts), dicts, lists and tuples: what pickles cheaply and compares with numpy."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
        return float(t) if t.ndim == 0 else t.numpy()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_plain(v) for v in value)
    return value


def assert_plain_close(actual: Any, expected: Any, *, rtol: float, atol: float, where: str) -> None:
    """``np.testing.assert_allclose`` through the structures that :func:`to_plain` returns."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys(), where
        for key in expected:
            assert_plain_close(
                actual[key], expected[key], rtol=rtol, atol=atol, where=f"{where}.{key}"
            )
    elif isinstance(expected, (list, tuple)):
        assert isinstance(actual, (list, tuple)) and len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_plain_close(a, e, rtol=rtol, atol=atol, where=f"{where}[{i}]")
    elif expected is None or isinstance(expected, (str, bool, torch.dtype)):
        assert actual == expected, where
    else:
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=where)


def check_streaming_matches_one_shot(
    pool: ProcessGroupPool,
    metric_factory: Callable[[], Any],
    one_shot: Callable[..., Any],
    x: np.ndarray,
    y: np.ndarray | None,
    *,
    batch_size: int,
    rtol: float = 1e-10,
    atol: float = 1e-12,
) -> Sequence[Any]:
    """Every rank's synced ``compute()`` equals ``one_shot(x, y)`` (``one_shot(x)`` for a
    metric of one representation, ``y=None``) computed here on all rows.

    Results may be tensors or (nested) dataclasses of tensors; they are compared field by
    field after :func:`to_plain`.

    ``metric_factory`` must pickle (a class, or ``functools.partial(Class, **options)``).
    Each rank updates with its contiguous share of the rows (see :func:`rank_rows`), in
    batches of ``batch_size``. Returns the per-rank values.
    """
    data = (x,) if y is None else (x, y)
    expected = to_plain(one_shot(*(torch.from_numpy(a) for a in data)))
    values = pool.run(streaming_on_ranks, metric_factory, x, y, batch_size)
    for rank, value in enumerate(values):
        where = f"rank {rank} of {pool.world_size}"
        assert_plain_close(value, expected, rtol=rtol, atol=atol, where=where)
    return values
