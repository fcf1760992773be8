"""A cap on this process's address space, to show that a call allocates nothing large.

``with address_space_headroom():`` lets the process grow by at most ``headroom`` bytes
(default 1 GiB) of virtual memory (Linux ``RLIMIT_AS``), then restores the limit. An
allocation beyond it fails at once with the allocator's error instead of taking the
machine's memory, so a test that expects the project's error before any large allocation
fails cleanly (with ``RuntimeError: ... can't allocate memory``) if one happens.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import pytest
import torch


def _virtual_size() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")  # pragma: no cover


@contextlib.contextmanager
def address_space_headroom(headroom: int = 1 << 30) -> Iterator[None]:
    """Cap the address space at its current size plus ``headroom`` bytes (Linux only)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("RLIMIT_AS and /proc/self/status are Linux features")
    import resource

    # start torch's thread pools first: threads created under the cap need stacks (8 MiB
    # each), and libgomp aborts the whole process when it cannot create one
    torch.ones(1 << 20).add_(1.0).sum()
    torch.ones(256, 256) @ torch.ones(256, 256)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _virtual_size() + headroom
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft != resource.RLIM_INFINITY:
        limit = min(limit, soft)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
