"""Exact power-of-two rescaling of data at extreme scales (floor 1).

float32 holds finite values up to 3.4e38, but the squares of values beyond about 1.8e19
overflow and those of values below about 1e-19 underflow (to subnormal numbers or 0). A
measure that forms Gram matrices, squared distances, norms or scatter matrices in the
input's dtype therefore returns NaN, inf, or a wrong "degenerate" answer on finite data at
such scales. Multiplying by a power of two changes the exponent of every entry and not its
mantissa, so it is exact (short of overflow or underflow) and commutes with rounding:

* a measure invariant to isotropic scaling computes on :func:`rescaled` data (each input
  on its own when each side's scale cancels);
* a measure that is homogeneous in the data computes on the rescaled data and multiplies
  its result back by the matching power of two (:func:`unscale`), in float64 where the
  result may not fit the input's dtype;
* a sum over chunks (streaming moments) scales each chunk before its product and scales the
  float64 product back, so the sums over chunks of different scales stay exact.

Data whose largest magnitude lies in the *safe band* ``[2**-b, 2**b]``, ``b`` =
:func:`safe_band_exponent` (16 for float32, 128 for float64), are left untouched, so results
on ordinary inputs are bit-identical to computing on them directly. Inside that band fourth
powers of the largest entry, summed over up to ``2**31`` terms, stay normal numbers.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from subspaces._checks import NumericRangeError
from subspaces.linalg.constants import CHUNK_SIZE

__all__ = [
    "check_no_overflow",
    "ldexp",
    "magnitude_exponent",
    "max_abs",
    "rescaled",
    "row_norms",
    "safe_band_exponent",
    "scale_exponent",
    "sqrt_product",
    "to_safe_range",
    "unscale",
]


def safe_band_exponent(dtype: torch.dtype) -> int:
    """``b`` of the safe band ``[2**-b, 2**b]`` of ``dtype``: an eighth of its exponent range.

    float32: 16 (about 1.5e-5 to 6.6e4); float64: 128 (about 2.9e-39 to 3.4e38).

    Examples:
        >>> import torch
        >>> safe_band_exponent(torch.float32), safe_band_exponent(torch.float64)
        (16, 128)
    """
    return _max_exponent(dtype) // 8


def _max_exponent(dtype: torch.dtype) -> int:
    """The exponent ``E`` with ``finfo(dtype).max = f · 2**E``, f in [0.5, 1): 128 for float32."""
    return math.frexp(float(torch.finfo(dtype).max))[1]


def max_abs(*tensors: Tensor) -> float:
    """The largest magnitude over every entry of ``tensors`` (0.0 when all are empty; NaN
    when an entry is NaN, inf when one is infinite).

    Examples:
        >>> import torch
        >>> max_abs(torch.tensor([1.0, -3.0]), torch.tensor([2.0]))
        3.0
    """
    top = 0.0
    for t in tensors:
        if t.numel():
            low, high = (float(v) for v in torch.aminmax(t.detach()))
            if math.isnan(low) or math.isnan(high):  # max() below would drop NaN
                return math.nan
            top = max(top, -low, high)
    return top


def scale_exponent(*tensors: Tensor) -> int:
    """The power of two ``e`` to divide ``tensors`` by, jointly, to bring them into range.

    0 when their largest magnitude ``m`` lies in the safe band of their (widest) dtype, or
    when every entry is zero; otherwise the exponent of ``m`` (``m = f · 2**e``,
    ``f`` in [0.5, 1)), so that ``m · 2**-e`` lies in [0.5, 1).

    Examples:
        >>> import torch
        >>> scale_exponent(torch.tensor([1.0])), scale_exponent(torch.tensor([2.0**40])) > 0
        (0, True)
    """
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return magnitude_exponent(max_abs(*tensors), dtype)


def magnitude_exponent(top: float, dtype: torch.dtype) -> int:
    """:func:`scale_exponent` of data of ``dtype`` whose largest magnitude is ``top``
    (0 for 0 and for a non-finite ``top``).

    Examples:
        >>> import torch
        >>> magnitude_exponent(1.0, torch.float32)
        0
    """
    if top == 0.0 or not math.isfinite(top):
        return 0
    band = safe_band_exponent(dtype)
    if 2.0**-band <= top <= 2.0**band:
        return 0
    return math.frexp(top)[1]


def ldexp(t: Tensor, e: int) -> Tensor:
    """``t · 2**e`` in ``t``'s dtype: exact unless an entry overflows or underflows.

    ``e`` may exceed the dtype's exponent range (the factor is applied in steps); ``e = 0``
    returns ``t`` itself, without a copy.

    Examples:
        >>> import torch
        >>> ldexp(torch.tensor([3.0]), 2).tolist()
        [12.0]
    """
    if e == 0:
        return t
    step = max(_max_exponent(t.dtype) // 2, 1) if t.is_floating_point() else 512
    out = t
    while e != 0:
        k = max(-step, min(step, e))
        out = out * (2.0**k)
        e -= k
    return out


def to_safe_range(t: Tensor) -> tuple[Tensor, int]:
    """``(t · 2**-e, e)`` with ``e`` = :func:`scale_exponent` ``(t)``: ``(t, 0)`` in the band.

    Examples:
        >>> import torch
        >>> t, e = to_safe_range(torch.tensor([1e30]))
        >>> bool(t.abs().max() < 2.0**16), e > 0
        (True, True)
    """
    e = scale_exponent(t)
    return ldexp(t, -e), e


def rescaled(t: Tensor) -> Tensor:
    """``t`` times a power of two that brings it into the safe band (``t`` itself if it is).

    Examples:
        >>> import torch
        >>> rescaled(torch.tensor([1.0, 2.0])).tolist()  # already in range: unchanged
        [1.0, 2.0]
    """
    return to_safe_range(t)[0]


def unscale(value: Tensor, e: int, *, name: str, what: str, top: float | None = None) -> Tensor:
    """``value · 2**e``: a result computed on rescaled data, brought back to the data's units.

    Args:
        value: the result computed on data divided by a power of two.
        e: the power of two to multiply it by.
        name: the input's name, and ``what`` the result's (for the error message).
        top: the input's largest magnitude, if known (for the error message).

    Raises:
        NumericRangeError: a result overflows ``value``'s dtype, or a non-zero result
            underflows it (becomes subnormal or 0); cast the input to float64 first where
            the result may not fit the input's dtype.

    Examples:
        >>> import torch
        >>> unscale(torch.tensor(3.0), 2, name='x', what='the norm').item()
        12.0
    """
    out = ldexp(value, e)
    if e == 0 or out.numel() == 0:
        return out
    if e > 0:
        bad = not bool(torch.isfinite(out).all())
    else:
        tiny = torch.finfo(value.dtype).smallest_normal
        bad = bool(((out.abs() < tiny) & (value != 0)).any())
    if bad:
        size = f" (largest magnitude {top:.3g})" if top is not None else ""
        kind = "overflow" if e > 0 else "underflow"
        limit = torch.finfo(value.dtype).max if e > 0 else torch.finfo(value.dtype).smallest_normal
        raise NumericRangeError(
            f"{what} of {name}{size} cannot be represented: {kind} in {value.dtype} "
            f"(beyond {limit:.3g}); rescale {name} or cast it to float64."
        )
    return out


def check_no_overflow(value: Tensor, *, name: str, what: str) -> Tensor:
    """``value`` itself, or :class:`NumericRangeError` if an entry is infinite or NaN.

    For results computed from finite (validated) data, where a non-finite entry can only
    come from an overflow, e.g. fourth powers of float64 data near 1e80.

    Examples:
        >>> import torch
        >>> check_no_overflow(torch.tensor(1.0), name='x', what='the sum').item()
        1.0
    """
    if value.numel() and not bool(torch.isfinite(value).all()):
        raise NumericRangeError(
            f"{what} of {name} cannot be represented: overflow in {value.dtype} (beyond "
            f"{torch.finfo(value.dtype).max:.3g}); rescale {name} (e.g. divide it by its "
            "largest magnitude)."
        )
    return value


def sqrt_product(a: Tensor, b: Tensor) -> Tensor:
    """``√(a · b)`` of non-negative 0-dim tensors, without overflow or underflow of ``a · b``.

    Equal to ``torch.sqrt(a * b)`` whenever that product is a normal number (so ordinary
    values are unchanged bit for bit); otherwise ``√a · √b``, e.g. for the product of two
    fourth-order sums of float64 data near 1e60.

    Examples:
        >>> import torch
        >>> big = torch.tensor(1e300, dtype=torch.float64)
        >>> f"{sqrt_product(big, big).item():.0e}"
        '1e+300'
    """
    product = a * b
    if bool(torch.isfinite(product)) and float(product) >= torch.finfo(product.dtype).tiny:
        return torch.sqrt(product)
    return torch.sqrt(a) * torch.sqrt(b)


def row_norms(t: Tensor, *, keepdim: bool = False) -> Tensor:
    """The Euclidean norms of the rows of ``t``, in float64.

    Taken in float64 row chunks, so no square overflows or vanishes for float32 rows at any
    scale (squares of 1e20 or 1e-25) and no float64 copy of ``t`` is made. Pass data already
    brought into range (:func:`rescaled`) where the norms of float64 rows may overflow.

    Examples:
        >>> import torch
        >>> row_norms(torch.tensor([[3.0, 4.0], [1e20, 0.0]])).tolist()
        [5.0, 1e+20]
    """
    if t.shape[0] <= CHUNK_SIZE:
        return torch.linalg.vector_norm(t, dim=1, keepdim=keepdim, dtype=torch.float64)
    return torch.cat(
        [
            torch.linalg.vector_norm(chunk, dim=1, keepdim=keepdim, dtype=torch.float64)
            for chunk in t.split(CHUNK_SIZE)
        ]
    )
