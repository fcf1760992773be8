"""Streaming centered moments: exact, mergeable, order-free."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from subspaces._checks import (
    DegenerateInputError,
    InputTypeError,
    InvalidOptionError,
    NonFiniteError,
    NumericRangeError,
)
from subspaces.linalg import CHUNK_SIZE
from subspaces.linalg.moments import (
    MomentSums,
    accumulate_moments,
    center_moments,
    check_variance,
    paired_moments,
    paired_moments64,
    rebase_moments,
    require_moments,
)


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
def test_centered_moments_match_two_pass_reference(data: tuple, chunk_size: int) -> None:
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
    m, ref = center_moments(merged), paired_moments(x, y, row_norms=True)
    torch.testing.assert_close(m.cxy, ref.cxy, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(m.cxx, ref.cxx, rtol=1e-10, atol=1e-10)
    assert m.row_norms is not None and ref.row_norms is not None
    torch.testing.assert_close(m.row_norms.sq_xy, ref.row_norms.sq_xy, rtol=1e-10, atol=1e-10)


def test_self_moments_only() -> None:
    x = torch.randn(50, 4, dtype=torch.float64)
    m = paired_moments(x)
    assert m.cxy is None and m.cyy is None and m.mean_y is None
    torch.testing.assert_close(m.cxx, torch.cov(x.T) * 49)


def test_center_before_any_update_is_an_error() -> None:
    with pytest.raises(ValueError, match="no samples have been accumulated"):
        center_moments(MomentSums())


def test_empty_batch_is_a_no_op(data: tuple) -> None:
    x, y = data
    s = MomentSums()
    accumulate_moments(s, x[:0], y[:0])
    accumulate_moments(s, x, y)
    torch.testing.assert_close(center_moments(s).cxy, paired_moments(x, y).cxy)


@pytest.mark.parametrize("offset", [1e3, 1e6], ids=["offset1e3", "offset1e6"])
def test_far_from_the_origin_loses_nothing(offset: float) -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(300, 5, generator=g, dtype=torch.float64)
    y = torch.randn(300, 4, generator=g, dtype=torch.float64)
    near, far = (
        paired_moments(x, y, row_norms=True, chunk_size=64),
        paired_moments(x + offset, y - offset, row_norms=True, chunk_size=64),
    )
    for name in ("cxx", "cyy", "cxy"):
        torch.testing.assert_close(getattr(far, name), getattr(near, name), rtol=1e-9, atol=1e-9)
    assert far.row_norms is not None and near.row_norms is not None
    torch.testing.assert_close(far.row_norms.sq_xy, near.row_norms.sq_xy, rtol=1e-9, atol=0)
    torch.testing.assert_close(far.row_norms.sq_xx, near.row_norms.sq_xx, rtol=1e-9, atol=0)


def test_rebase_is_exact_algebra() -> None:
    g = torch.Generator().manual_seed(4)
    x = torch.randn(40, 3, generator=g, dtype=torch.float64)
    y = torch.randn(40, 2, generator=g, dtype=torch.float64)
    a, b = MomentSums(), MomentSums()
    accumulate_moments(a, x, y, row_norms=True)
    accumulate_moments(b, x, y, row_norms=True)
    rebase_moments(
        b, torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    )
    ca, cb = center_moments(a), center_moments(b)
    torch.testing.assert_close(ca.cxy, cb.cxy)
    assert ca.row_norms is not None and cb.row_norms is not None
    torch.testing.assert_close(ca.row_norms.sq_xy, cb.row_norms.sq_xy)


def test_states_with_different_shifts_merge_exactly() -> None:
    g = torch.Generator().manual_seed(5)
    x = torch.randn(100, 3, generator=g, dtype=torch.float64)
    y = torch.randn(100, 2, generator=g, dtype=torch.float64)
    first, second = MomentSums(), MomentSums()
    accumulate_moments(first, x[:50] + 7, y[:50], row_norms=True)
    accumulate_moments(second, x[50:] - 7, y[50:], row_norms=True)  # another shift
    both = torch.cat([x[:50] + 7, x[50:] - 7])
    merged, ref = center_moments(first + second), paired_moments(both, y, row_norms=True)
    torch.testing.assert_close(merged.cxx, ref.cxx)
    assert merged.row_norms is not None and ref.row_norms is not None
    torch.testing.assert_close(merged.row_norms.sq_xx, ref.row_norms.sq_xx)


def test_about_origin_gives_raw_second_moments() -> None:
    x = torch.randn(30, 3, dtype=torch.float64) + 4
    s = MomentSums()
    accumulate_moments(s, x, about_origin=True)
    torch.testing.assert_close(s.sxx, x.T @ x)


@pytest.mark.parametrize("scale", [1e-30, 1e-25, 1e20, 1e30, 1e38], ids=lambda s: f"{s:g}")
def test_float32_chunks_at_extreme_scales_give_the_float64_moments(scale: float) -> None:
    # each chunk is brought into range by a power of two before its float32 product
    g = torch.Generator().manual_seed(6)
    x64 = torch.randn(300, 5, generator=g, dtype=torch.float64) + 1
    y64 = torch.randn(300, 3, generator=g, dtype=torch.float64)
    x, y = (x64 * scale / 8).float(), (y64 * scale / 8).float()
    m = paired_moments(x, y, row_norms=True, chunk_size=64)
    ref = _reference(x, y)
    for name in ("cxx", "cyy", "cxy"):  # float32 products: ~1e-7 of the norm
        assert float((getattr(m, name) - ref[name]).norm() / ref[name].norm()) < 1e-6
    assert m.row_norms is not None
    torch.testing.assert_close(m.row_norms.sq_xy, ref["sq_xy"], rtol=1e-9, atol=0.0)


def test_batches_of_very_different_scales_merge_exactly() -> None:
    # a batch at 1e-30 in column 0, then one at 1e30 in column 1: each entry of the scatter
    # comes from one batch, so the small one must stay visible (not turn into NaN or 0)
    g = torch.Generator().manual_seed(7)
    x64 = torch.zeros(200, 2, dtype=torch.float64)
    x64[:100, 0] = torch.randn(100, generator=g, dtype=torch.float64) * 1e-30
    x64[100:, 1] = torch.randn(100, generator=g, dtype=torch.float64) * 1e30
    state = MomentSums()
    accumulate_moments(state, x64[:100].float())
    accumulate_moments(state, x64[100:].float())
    ref = _reference(x64.float(), x64.float())["cxx"]
    torch.testing.assert_close(
        center_moments(state).cxx.diagonal(), ref.diagonal(), rtol=1e-6, atol=0.0
    )


@pytest.mark.parametrize("bad", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_refused_batch_leaves_the_state_unchanged(bad: float) -> None:
    # the bad value sits in the second chunk: nothing of the first may have been added
    x = torch.randn(20, 3)
    state = MomentSums()
    accumulate_moments(state, x)
    before = {name: getattr(state, name).clone() for name in ("n", "sum_x", "sxx")}
    batch = torch.randn(20, 3)
    batch[15, 1] = bad
    with pytest.raises(
        NonFiniteError, match=r"x contains \d NaN and \d infinite entries out of 60"
    ):
        accumulate_moments(state, batch, chunk_size=8)
    for name, value in before.items():
        assert torch.equal(getattr(state, name), value), name


def test_float64_data_whose_powers_overflow_are_refused() -> None:
    x = torch.randn(10, 3, dtype=torch.float64) * 1e200
    with pytest.raises(NumericRangeError, match=r"largest magnitude .*rescale x"):
        accumulate_moments(MomentSums(), x)


# --- check_variance, require_moments, paired_moments64 ----------------------------------------


def test_check_variance_returns_the_trace() -> None:
    x = torch.randn(30, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    m = paired_moments(x)
    assert m.cxx is not None
    total = check_variance(m.cxx, m.mean_x, m.n, name="x", measure="CKA")
    torch.testing.assert_close(total, torch.trace(m.cxx))


@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_check_variance_refuses_a_constant_representation(offset: float) -> None:
    m = paired_moments(torch.full((20, 4), 3.0, dtype=torch.float64) + offset)
    assert m.cxx is not None
    with pytest.raises(DegenerateInputError, match=r"x has zero variance .* so CKA is undefined"):
        check_variance(m.cxx, m.mean_x, m.n, name="x", measure="CKA")


def test_check_variance_of_a_raw_moment_refuses_only_zero() -> None:
    c = torch.diag(torch.tensor([1e-300, 0.0], dtype=torch.float64))
    check_variance(c, None, 10, name="x", measure="the map")
    with pytest.raises(DegenerateInputError, match="the map"):
        check_variance(
            torch.zeros(2, 2, dtype=torch.float64), None, 10, name="x", measure="the map"
        )


def test_require_moments_needs_the_cross_moments() -> None:
    x = torch.randn(10, 2, generator=torch.Generator().manual_seed(0))
    with pytest.raises(InvalidOptionError, match="m has no cyy, which CCA uses"):
        require_moments(paired_moments(x), "CCA")
    with pytest.raises(InputTypeError, match="m must be CenteredMoments"):
        require_moments(object(), "CCA")


@pytest.mark.parametrize("chunk_size", [1, 7, CHUNK_SIZE])
def test_paired_moments64_equals_float64_data(chunk_size: int) -> None:
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(40, 3, generator=g), torch.randn(40, 2, generator=g)
    got = paired_moments64(x, y, chunk_size=chunk_size)
    ref = paired_moments(x.double(), y.double())
    for name in ("cxx", "cyy", "cxy", "mean_x", "mean_y"):
        torch.testing.assert_close(getattr(got, name), getattr(ref, name))
    alone = paired_moments64(x, chunk_size=chunk_size)
    assert alone.cyy is None and alone.cxx is not None


def test_one_chunk_size_default() -> None:
    import inspect

    from subspaces.linalg.knn import knn

    assert CHUNK_SIZE == 4096
    default = inspect.signature(paired_moments).parameters["chunk_size"].default
    assert default is CHUNK_SIZE
    assert "chunk_size" in inspect.signature(knn).parameters
