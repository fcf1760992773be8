"""paired_ranks: the chunked rank kernel behind the retrieval scores of align and similarity."""

from __future__ import annotations

import pytest
import torch

from subspaces.linalg.retrieval import paired_ranks


def _reference(q: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    scores = q @ t.T  # the whole n x n matrix: fine for a reference on small n
    own = scores.diagonal().unsqueeze(1)
    return (scores >= own).sum(dim=1).to(torch.float64)


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 64])
def test_chunks_equal_the_dense_reference(chunk_size: int) -> None:
    g = torch.Generator().manual_seed(0)
    q, t = torch.randn(20, 4, generator=g), torch.randn(20, 4, generator=g)
    torch.testing.assert_close(paired_ranks(q, t, chunk_size=chunk_size), _reference(q, t))


def test_own_target_first_gives_rank_one() -> None:
    t = torch.eye(5, dtype=torch.float64)
    assert paired_ranks(t, t, chunk_size=2).tolist() == [1.0] * 5


def test_ties_count_against_the_query() -> None:
    t = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # targets 0 and 1 coincide
    q = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])  # query 2 is a zero row
    assert paired_ranks(q, t, chunk_size=2).tolist() == [2.0, 2.0, 3.0]


def test_default_chunk_size_equals_small_chunks() -> None:
    g = torch.Generator().manual_seed(1)
    q, t = torch.randn(30, 3, generator=g), torch.randn(30, 3, generator=g)
    torch.testing.assert_close(paired_ranks(q, t), paired_ranks(q, t, chunk_size=4))


def test_large_target_sets_cap_the_rows_per_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from subspaces.linalg.constants import rows_within_budget

    module = importlib.import_module("subspaces.linalg.retrieval")
    calls: list[tuple[int, int, int]] = []

    def three_rows(chunk_size: int, bytes_per_row: int, memory_budget: int = 0) -> int:
        rows = rows_within_budget(chunk_size, bytes_per_row, memory_budget=3 * bytes_per_row)
        calls.append((chunk_size, bytes_per_row, rows))
        return rows

    g = torch.Generator().manual_seed(0)
    q, t = torch.randn(20, 4, generator=g), torch.randn(20, 4, generator=g)
    expected = _reference(q, t)
    monkeypatch.setattr(module, "rows_within_budget", three_rows)
    torch.testing.assert_close(paired_ranks(q, t, chunk_size=64), expected, rtol=0, atol=0)
    assert calls == [(64, 20 * (4 + 1), 3)]  # float32 scores and their comparison per row
