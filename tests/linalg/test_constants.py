"""The shared constants of floor 1: the default chunk size and the per-chunk memory cap."""

from __future__ import annotations

from subspaces.linalg import CHUNK_SIZE, MEMORY_BUDGET, rows_within_budget


def test_rows_within_budget_keeps_chunk_size_when_it_fits() -> None:
    assert rows_within_budget(CHUNK_SIZE, 1_000 * 4) == CHUNK_SIZE
    assert rows_within_budget(7, 1) == 7


def test_rows_within_budget_caps_a_large_gallery() -> None:
    # class_retrieval's float32 row over 100k gallery items: the similarities, 3 bool masks,
    # the int64 order and four float64 arrays
    per_row = 100_000 * (4 + 3 + 8 + 4 * 8)
    rows = rows_within_budget(CHUNK_SIZE, per_row)
    assert 1 <= rows < CHUNK_SIZE
    assert rows * per_row <= MEMORY_BUDGET < (rows + 1) * per_row


def test_rows_within_budget_is_at_least_one_row() -> None:
    assert rows_within_budget(CHUNK_SIZE, 10**12) == 1
    assert rows_within_budget(CHUNK_SIZE, 10, memory_budget=1) == 1
    assert rows_within_budget(5, 0) == 5


def test_memory_budget_is_256_mib() -> None:
    assert MEMORY_BUDGET == 256 * 2**20
