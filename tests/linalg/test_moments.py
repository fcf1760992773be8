"""Streaming centred moments: exact, mergeable, order-free."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from subspaces.linalg.moments import MomentSums, accumulate_moments, centre_moments, paired_moments


def _reference(x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    x, y = x.double(), y.double()
    xc, yc = x - x.mean(0), y - y.mean(0)
    p, q = (xc * xc).sum(1), (yc * yc).sum(1)
    return {
        "cxx": xc.T @ xc,
        "cyy": yc.T @ yc,
        "cxy": xc.T @ yc,
        "sq_x": p.sum(),
        "sq_y": q.sum(),
        "sq_xx": p @ p,
        "sq_yy": q @ q,
        "sq_xy": p @ q,
    }


@pytest.fixture
def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(257, 6, generator=g, dtype=torch.float64) * 3 + 10  # far from the origin
    y = torch.tanh(x @ torch.randn(6, 4, generator=g, dtype=torch.float64)) + 2
    return x, y


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 4096], ids=lambda c: f"chunk{c}")
def test_centred_moments_match_two_pass_reference(data: tuple, chunk_size: int) -> None:
    x, y = data
    m = paired_moments(x, y, row_norms=True, chunk_size=chunk_size)
    ref = _reference(x, y)
    assert m.n == 257
    torch.testing.assert_close(m.mean_x, x.mean(0), rtol=1e-12, atol=1e-12)
    for name in ("cxx", "cyy", "cxy"):
        torch.testing.assert_close(getattr(m, name), ref[name], rtol=1e-9, atol=1e-9)
    assert m.row_norms is not None
    for name in ("sq_x", "sq_y", "sq_xx", "sq_yy", "sq_xy"):
        # fourth-order sums from raw moments: cancellation grows with (mean/std)^4 ~ 1e2 here
        torch.testing.assert_close(getattr(m.row_norms, name), ref[name], rtol=1e-9, atol=1e-6)


def test_float32_products_are_exact_to_float64_rounding_of_the_input() -> None:
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(20000, 32, generator=g) + 5).float()
    m = paired_moments(x, x)
    ref = _reference(x, x)
    rel = (m.cxx - ref["cxx"]).norm() / ref["cxx"].norm()
    assert rel < 1e-6  # a single float32 product over 20,000 rows is off by ~1e-4 here


@given(cuts=st.lists(st.integers(min_value=0, max_value=257), max_size=6))
@settings(max_examples=25, deadline=None)
def test_any_split_merged_equals_one_shot(cuts: list[int]) -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(257, 5, generator=g, dtype=torch.float64)
    y = torch.randn(257, 3, generator=g, dtype=torch.float64)
    bounds = [0, *sorted(cuts), 257]
    states = []
    for lo, hi in itertools.pairwise(bounds):
        s = MomentSums()
        accumulate_moments(s, x[lo:hi], y[lo:hi], row_norms=True)
        states.append(s)
    merged = states[0]
    for s in states[1:]:
        merged = merged + s
    m, ref = centre_moments(merged), paired_moments(x, y, row_norms=True)
    torch.testing.assert_close(m.cxy, ref.cxy, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(m.cxx, ref.cxx, rtol=1e-10, atol=1e-10)
    assert m.row_norms is not None and ref.row_norms is not None
    torch.testing.assert_close(m.row_norms.sq_xy, ref.row_norms.sq_xy, rtol=1e-10, atol=1e-10)


def test_self_moments_only() -> None:
    x = torch.randn(50, 4, dtype=torch.float64)
    m = paired_moments(x)
    assert m.cxy is None and m.cyy is None and m.mean_y is None
    torch.testing.assert_close(m.cxx, torch.cov(x.T) * 49)


def test_centre_before_any_update_is_an_error() -> None:
    with pytest.raises(ValueError, match="no samples have been accumulated"):
        centre_moments(MomentSums())


def test_empty_batch_is_a_no_op(data: tuple) -> None:
    x, y = data
    s = MomentSums()
    accumulate_moments(s, x[:0], y[:0])
    accumulate_moments(s, x, y)
    torch.testing.assert_close(centre_moments(s).cxy, paired_moments(x, y).cxy)
