"""paired_ranks: the blocked rank kernel behind translation_scores and relative_retrieval."""

from __future__ import annotations

import pytest
import torch

from subspaces import DegenerateInputError
from subspaces.linalg.retrieval import paired_ranks, unit_rows


def _reference(q: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    scores = q @ t.T  # the whole n x n matrix: fine for a reference on small n
    own = scores.diagonal().unsqueeze(1)
    return (scores >= own).sum(dim=1).to(torch.float64)


@pytest.mark.parametrize("block_size", [1, 3, 7, 64])
def test_blocks_equal_the_dense_reference(block_size: int) -> None:
    g = torch.Generator().manual_seed(0)
    q, t = torch.randn(20, 4, generator=g), torch.randn(20, 4, generator=g)
    torch.testing.assert_close(paired_ranks(q, t, block_size=block_size), _reference(q, t))


def test_own_target_first_gives_rank_one() -> None:
    t = torch.eye(5, dtype=torch.float64)
    assert paired_ranks(t, t, block_size=2).tolist() == [1.0] * 5


def test_ties_count_against_the_query() -> None:
    t = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # targets 0 and 1 coincide
    q = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])  # query 2 is a zero row
    assert paired_ranks(q, t, block_size=2).tolist() == [2.0, 2.0, 3.0]


def test_unit_rows_have_norm_one() -> None:
    t = torch.tensor([[3.0, 4.0], [0.0, -2.0]])
    torch.testing.assert_close(unit_rows(t, name="t"), torch.tensor([[0.6, 0.8], [0.0, -1.0]]))


def test_unit_rows_refuses_zero_rows() -> None:
    with pytest.raises(DegenerateInputError, match=r"t has 1 rows of zero norm \(shape \(2, 2\)\)"):
        unit_rows(torch.tensor([[0.0, 0.0], [1.0, 0.0]]), name="t")


@pytest.mark.parametrize("scale", [1e-30, 1e-25, 1e20, 1e30], ids=lambda s: f"{s:g}")
def test_unit_rows_of_float32_at_extreme_scales_have_norm_one(scale: float) -> None:
    t = (torch.tensor([[3.0, 4.0], [-1.0, 0.0]], dtype=torch.float64) * scale).float()
    out = unit_rows(t, name="t")
    torch.testing.assert_close(out, torch.tensor([[0.6, 0.8], [-1.0, 0.0]]))
