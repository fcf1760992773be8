"""Constants shared by the kernels of floor 1, each defined once."""

from __future__ import annotations

__all__ = ["CHUNK_SIZE"]

CHUNK_SIZE = 4096
"""Rows processed at once (``chunk_size``): the default of every function that works on the
rows of its input chunk by chunk, so that float32 products accumulate over at most this many
rows and working memory stays O(``CHUNK_SIZE`` · d).

Examples:
    >>> from subspaces.linalg import CHUNK_SIZE
    >>> CHUNK_SIZE
    4096
"""
