"""Exact power-of-two rescaling: ordinary data untouched, extreme scales brought into range."""

from __future__ import annotations

import math

import pytest
import torch

from subspaces._checks import NumericRangeError
from subspaces.linalg.scaling import (
    check_no_overflow,
    ldexp,
    max_abs,
    rescaled,
    row_norms,
    safe_band_exponent,
    scale_exponent,
    sqrt_product,
    to_safe_range,
    unscale,
)


@pytest.mark.parametrize(("dtype", "band"), [(torch.float32, 16), (torch.float64, 128)])
def test_safe_band_is_an_eighth_of_the_exponent_range(dtype: torch.dtype, band: int) -> None:
    assert safe_band_exponent(dtype) == band


@pytest.mark.parametrize("top", [2.0**-16, 1e-3, 1.0, 255.0, 2.0**16], ids=str)
def test_data_inside_the_band_is_returned_as_is(top: float) -> None:
    x = torch.tensor([[top, -0.5 * top], [0.25 * top, 0.0]])
    out, e = to_safe_range(x)
    assert e == 0
    assert out is x


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("scale", [1e-45, 1e-30, 1e-20, 1e20, 1e30, 3e38], ids=lambda s: f"{s:g}")
def test_extreme_data_is_scaled_exactly_to_below_one(dtype: torch.dtype, scale: float) -> None:
    x = torch.tensor([[1.0, -3.0], [0.5, 2.0]], dtype=torch.float64).mul(scale / 3.0).to(dtype)
    out, e = to_safe_range(x)
    if dtype == torch.float64 and 2.0**-128 <= scale <= 2.0**128:
        assert e == 0
        return
    assert 0.5 <= max_abs(out) < 1.0
    # exact: the mantissas are unchanged, so scaling back gives the input bit for bit
    assert torch.equal(ldexp(out, e), x)


def test_a_signed_maximum_counts_by_magnitude() -> None:
    x = torch.tensor([-1e30, 1.0])
    assert scale_exponent(x) == math.frexp(float(torch.tensor(-1e30)))[1]


@pytest.mark.parametrize(
    "values", [[float("nan"), 1.0], [1.0, float("nan")]], ids=["first", "last"]
)
def test_max_abs_of_data_with_nan_is_nan(values: list[float]) -> None:
    assert math.isnan(max_abs(torch.tensor(values)))


def test_zero_data_needs_no_scaling() -> None:
    assert scale_exponent(torch.zeros(3, 2)) == 0
    assert scale_exponent(torch.zeros(0, 2)) == 0


def test_joint_exponent_comes_from_the_largest_input() -> None:
    a, b = torch.full((2, 2), 1e-30), torch.full((2, 2), 1e30)
    assert scale_exponent(a, b) == scale_exponent(b)


def test_ldexp_applies_exponents_beyond_the_dtype_range_in_steps() -> None:
    tiny = torch.tensor([1e-45])  # float32 subnormal: 2**-149
    assert float(ldexp(tiny, 149)) == 1.0
    assert torch.equal(ldexp(ldexp(tiny, 200), -200), tiny)


def test_rescaled_keeps_dtype_and_device() -> None:
    x = torch.full((3, 2), 1e25, dtype=torch.float32)
    out = rescaled(x)
    assert out.dtype == torch.float32
    assert out.device == x.device


def test_unscale_returns_the_result_in_the_data_units() -> None:
    value = torch.tensor(0.75, dtype=torch.float64)
    assert float(unscale(value, 100, name="x", what="the norm")) == 0.75 * 2.0**100


def test_unscale_refuses_a_result_that_overflows_its_dtype() -> None:
    value = torch.tensor(0.75, dtype=torch.float32)
    match = r"the squared norm of x .*1e\+30.*overflow in torch.float32"
    with pytest.raises(NumericRangeError, match=match):
        unscale(value, 200, name="x", what="the squared norm", top=1e30)


def test_unscale_refuses_a_non_zero_result_that_underflows_its_dtype() -> None:
    value = torch.tensor([0.75, 0.0], dtype=torch.float32)
    with pytest.raises(NumericRangeError, match=r"underflow in torch.float32.*rescale x"):
        unscale(value, -200, name="x", what="the squared distances")


def test_unscale_keeps_exact_zeros() -> None:
    value = torch.tensor([0.0, 0.5], dtype=torch.float64)
    assert unscale(value, -20, name="x", what="the distances").tolist() == [0.0, 2.0**-21]


def test_check_no_overflow_names_the_result() -> None:
    with pytest.raises(NumericRangeError, match=r"the norm of x cannot be represented: overflow"):
        check_no_overflow(torch.tensor([1.0, float("inf")]), name="x", what="the norm")


def test_sqrt_product_is_the_plain_formula_for_ordinary_values() -> None:
    a, b = torch.tensor(2.0, dtype=torch.float64), torch.tensor(3.0, dtype=torch.float64)
    assert torch.equal(sqrt_product(a, b), torch.sqrt(a * b))


@pytest.mark.parametrize("value", [1e-200, 1e200], ids=str)
def test_sqrt_product_survives_a_product_out_of_range(value: float) -> None:
    a = torch.tensor(value, dtype=torch.float64)
    torch.testing.assert_close(sqrt_product(a, a), a, rtol=1e-15, atol=0.0)


@pytest.mark.parametrize("scale", [1e-25, 1.0, 1e20], ids=["1e-25", "1", "1e20"])
@pytest.mark.parametrize("n", [3, 5000], ids=["one-chunk", "chunks"])
def test_row_norms_are_the_float64_norms_of_float32_rows_at_any_scale(scale: float, n: int) -> None:
    x = torch.randn(n, 7, generator=torch.Generator().manual_seed(0)) * scale
    expected = torch.linalg.vector_norm(x.double(), dim=1)
    torch.testing.assert_close(row_norms(x), expected, rtol=1e-15, atol=0)
    assert row_norms(x, keepdim=True).shape == (n, 1)
