"""Constants shared by the kernels of floor 1, each defined once."""

from __future__ import annotations

from subspaces._checks import check_positive_int

__all__ = ["CHUNK_SIZE", "MEMORY_BUDGET", "rows_within_budget"]

CHUNK_SIZE = 4096
"""Rows processed at once (``chunk_size``): the default of every function that works on the
rows of its input chunk by chunk, so that float32 products accumulate over at most this many
rows and working memory stays O(``CHUNK_SIZE`` · d).

Examples:
    >>> from subspaces.linalg import CHUNK_SIZE
    >>> CHUNK_SIZE
    4096
"""

MEMORY_BUDGET = 256 * 2**20
"""Bytes of working memory per chunk (256 MiB) for functions whose chunk holds a
``(rows × n)`` block, n the other side (gallery, samples, reference rows): such a chunk
holds fewer than ``chunk_size`` rows where needed to stay within it
(:func:`rows_within_budget`).

Examples:
    >>> from subspaces.linalg.constants import MEMORY_BUDGET
    >>> MEMORY_BUDGET // 2**20
    256
"""


def rows_within_budget(
    chunk_size: int, bytes_per_row: int, *, memory_budget: int = MEMORY_BUDGET
) -> int:
    """Rows per chunk: at most ``chunk_size``, and fewer where a chunk of rows that each hold
    ``bytes_per_row`` bytes at once would exceed ``memory_budget``; at least 1.

    ``max(1, min(chunk_size, memory_budget // bytes_per_row))``. The caller counts every
    array a row holds at the same time (e.g. a float32 score row and its int64 order over
    n gallery items: ``n * (4 + 8)`` bytes). Chunking only changes which independent rows
    are processed together, never the result.

    Examples:
        >>> rows_within_budget(4096, 100_000 * 12)  # float32 + int64 over 100k columns
        223
        >>> rows_within_budget(4096, 1_000 * 4), rows_within_budget(4096, 10**12)
        (4096, 1)
    """
    chunk_size = check_positive_int(chunk_size, name="chunk_size")
    bytes_per_row = check_positive_int(bytes_per_row, name="bytes_per_row", minimum=0)
    memory_budget = check_positive_int(memory_budget, name="memory_budget")
    return max(1, min(chunk_size, memory_budget // max(bytes_per_row, 1)))
