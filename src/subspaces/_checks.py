"""Input validation: turn what users pass into validated tensors, with errors that help.

Every public function of the families calls one of these at its door. Numpy arrays and
torch tensors are accepted; half-precision inputs are promoted to float32, integer and
boolean inputs to float32 (float64 stays float64). Nothing is moved between devices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "DegenerateInputError",
    "DeviceMismatchError",
    "InputTypeError",
    "InvalidOptionError",
    "NonFiniteError",
    "NotFittedError",
    "ShapeError",
    "SubspacesError",
    "TooFewSamplesError",
    "as_float_tensor",
    "check_choice",
    "check_finite",
    "check_flag",
    "check_label_range",
    "check_labels",
    "check_matrix",
    "check_not_constant",
    "check_optional_rtol",
    "check_paired",
    "check_positive_int",
    "check_same_device",
    "check_scalar_in_range",
]


class SubspacesError(Exception):
    """Base class of every error raised by subspaces on bad input."""


class InputTypeError(SubspacesError, TypeError):
    """An argument has a type subspaces cannot use (not an array, not a number...)."""


class ShapeError(SubspacesError, ValueError):
    """An argument has the wrong number of dimensions or the wrong size."""


class TooFewSamplesError(ShapeError):
    """Fewer samples than the estimator needs."""


class NonFiniteError(SubspacesError, ValueError):
    """An argument contains NaN or infinite entries."""


class DeviceMismatchError(SubspacesError, ValueError):
    """Arguments that are used together live on different devices."""


class DegenerateInputError(SubspacesError, ValueError):
    """The input makes the measure undefined, e.g. a representation with zero variance."""


class InvalidOptionError(SubspacesError, ValueError):
    """A keyword option has a value outside what the method accepts."""


class NotFittedError(SubspacesError, ValueError, AttributeError):
    """A fitted estimator's method or attribute was used before ``fit`` / ``partial_fit``.

    Also an ``AttributeError``, so ``hasattr(estimator, "rotation_")`` is ``False`` before
    fitting, as in scikit-learn.
    """


_PROMOTE_TO_FLOAT32 = (torch.float16, torch.bfloat16)


def as_float_tensor(x: Any, *, name: str = "x") -> Tensor:
    """Return ``x`` as a floating-point tensor (float32 or wider), on its own device.

    numpy arrays are converted once (without copying where possible); float16 and
    bfloat16 are promoted to float32; integer and boolean inputs become float32.
    Complex input is refused.
    """
    if isinstance(x, Tensor):
        t = x
    elif isinstance(x, np.ndarray):
        if x.dtype == object:
            raise InputTypeError(
                f"{name} is a numpy array of dtype object; pass a numeric array "
                "(e.g. np.asarray(...).astype(np.float32))."
            )
        if not x.flags.writeable or any(stride < 0 for stride in x.strides):
            x = np.array(x, order="C", copy=True)  # torch.from_numpy needs both
        t = torch.from_numpy(x) if x.dtype != np.float16 else torch.from_numpy(x).float()
    else:
        raise InputTypeError(
            f"{name} must be a torch.Tensor or a numpy.ndarray, got {type(x).__name__}. "
            "Convert it with torch.as_tensor(...) or np.asarray(...)."
        )
    if t.is_complex():
        raise InputTypeError(f"{name} has complex dtype {t.dtype}; subspaces works on real data.")
    if t.dtype in _PROMOTE_TO_FLOAT32 or not t.is_floating_point():
        t = t.to(torch.float32)
    return t


def _count_nonfinite(t: Tensor) -> tuple[int, int]:
    return int(torch.isnan(t).sum()), int(torch.isinf(t).sum())


def check_finite(t: Tensor, *, name: str = "x") -> Tensor:
    """Raise :class:`NonFiniteError` naming the count of NaN and Inf entries of ``t``."""
    # One reduction first (no n × d mask): NaN or Inf anywhere makes the sum non-finite; a
    # non-finite sum of finite values (overflow) falls through to the exact check.
    if t.numel() and bool(torch.isfinite(t.sum())):
        return t
    if not bool(torch.isfinite(t).all()):
        n_nan, n_inf = _count_nonfinite(t)
        raise NonFiniteError(
            f"{name} contains {n_nan} NaN and {n_inf} infinite entries out of {t.numel()} "
            f"(shape {tuple(t.shape)}); remove or impute them before measuring."
        )
    return t


def check_matrix(x: Any, *, name: str = "x", min_samples: int = 2, finite: bool = True) -> Tensor:
    """Validate a representation: a 2-D ``(n, d)`` float tensor with ``n >= min_samples``.

    Args:
        x: numpy array or torch tensor, samples as rows.
        name: the argument's name, used in error messages.
        min_samples: the fewest rows the caller's estimator needs.
        finite: refuse NaN and infinite entries.
    """
    t = as_float_tensor(x, name=name)
    if t.ndim != 2:
        hint = (
            f" Reshape it with {name}.reshape(-1, 1) if it holds one feature, "
            f"or {name}.reshape(1, -1) if it holds one sample."
            if t.ndim == 1
            else f" Flatten the trailing dimensions with {name}.reshape({name}.shape[0], -1)."
            if t.ndim > 2
            else ""
        )
        raise ShapeError(
            f"{name} must be a 2-D (n_samples, n_features) array, got {t.ndim}-D with shape "
            f"{tuple(t.shape)}.{hint}"
        )
    if t.shape[1] == 0:
        raise ShapeError(f"{name} has shape {tuple(t.shape)}: it needs at least one feature.")
    if t.shape[0] < min_samples:
        raise TooFewSamplesError(
            f"{name} has {t.shape[0]} samples (shape {tuple(t.shape)}), but this measure needs "
            f"at least {min_samples}."
        )
    if finite:
        check_finite(t, name=name)
    return t


def check_same_device(*tensors: Tensor, names: Sequence[str]) -> None:
    """Raise :class:`DeviceMismatchError` if the tensors are not on one device."""
    devices = [t.device for t in tensors]
    if any(dev != devices[0] for dev in devices[1:]):
        listing = ", ".join(f"{n} on {d}" for n, d in zip(names, devices, strict=True))
        raise DeviceMismatchError(
            f"inputs must be on one device, got {listing}; move them with .to(device) first "
            "(subspaces never moves data between devices silently)."
        )


def check_paired(
    x: Any,
    y: Any,
    *,
    names: tuple[str, str] = ("x", "y"),
    min_samples: int = 2,
    same_features: bool = False,
    finite: bool = True,
) -> tuple[Tensor, Tensor]:
    """Validate two representations of the same inputs: same n, same device, common dtype.

    Args:
        x, y: ``(n, d1)`` and ``(n, d2)`` arrays, rows in the same order.
        names: the arguments' names, for messages.
        min_samples: the fewest rows the estimator needs.
        same_features: also require ``d1 == d2``.
        finite: refuse NaN and infinite entries.

    Returns:
        Both as tensors of their common floating dtype (the wider of the two).
    """
    tx = check_matrix(x, name=names[0], min_samples=min_samples, finite=finite)
    ty = check_matrix(y, name=names[1], min_samples=min_samples, finite=finite)
    if tx.shape[0] != ty.shape[0]:
        raise ShapeError(
            f"{names[0]} and {names[1]} must hold the same samples in the same order, but "
            f"{names[0]} has {tx.shape[0]} rows (shape {tuple(tx.shape)}) and {names[1]} has "
            f"{ty.shape[0]} (shape {tuple(ty.shape)})."
        )
    if same_features and tx.shape[1] != ty.shape[1]:
        raise ShapeError(
            f"this measure needs {names[0]} and {names[1]} to have the same number of features, "
            f"got {tx.shape[1]} and {ty.shape[1]}; project them to a common dimension first "
            "(e.g. with PCA) or use a measure that allows different widths."
        )
    check_same_device(tx, ty, names=names)
    dtype = torch.promote_types(tx.dtype, ty.dtype)
    return tx.to(dtype), ty.to(dtype)


def check_labels(labels: Any, n: int, *, name: str = "labels", device: Any = None) -> Tensor:
    """Validate class labels: a 1-D integer array with ``n`` entries, as an int64 tensor."""
    if isinstance(labels, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(labels))
    elif isinstance(labels, Tensor):
        t = labels
    else:
        raise InputTypeError(
            f"{name} must be a torch.Tensor or a numpy.ndarray of integers, got "
            f"{type(labels).__name__}."
        )
    if t.is_floating_point():
        if not bool(torch.all(t == torch.round(t))):
            raise InputTypeError(f"{name} must hold integer class indices, got dtype {t.dtype}.")
        t = t.long()
    elif t.dtype == torch.bool or t.is_complex():
        raise InputTypeError(f"{name} must hold integer class indices, got dtype {t.dtype}.")
    if t.ndim != 1:
        raise ShapeError(
            f"{name} must be 1-D with one entry per sample, got shape {tuple(t.shape)}."
        )
    if t.shape[0] != n:
        raise ShapeError(
            f"{name} has {t.shape[0]} entries but the representation has {n} samples; "
            "pass one label per row."
        )
    if device is not None and t.device != torch.device(device):
        raise DeviceMismatchError(
            f"{name} is on {t.device} but the representation is on {device}; move it with .to()."
        )
    return t.long()


def check_positive_int(value: Any, *, name: str, minimum: int = 1) -> int:
    """Validate an integer option such as ``k`` or ``n_anchors``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputTypeError(f"{name} must be an integer, got {type(value).__name__} ({value!r}).")
    if value < minimum:
        raise InvalidOptionError(f"{name} must be at least {minimum}, got {value}.")
    return int(value)


def check_optional_rtol(rtol: Any) -> float | None:
    """Validate a relative rank tolerance: ``None`` (the method's default) or in [0, 1)."""
    if rtol is None:
        return None
    return check_scalar_in_range(rtol, name="rtol", low=0.0, high=1.0, high_open=True)


def check_not_constant(t: Tensor, *, name: str, measure: str) -> None:
    """Raise :class:`DegenerateInputError` when every row of ``t`` is the same point."""
    if t.shape[0] and bool((t == t[:1]).all()):
        raise DegenerateInputError(
            f"{name} has zero variance (all {t.shape[0]} samples are the same point, shape "
            f"{tuple(t.shape)}), so {measure} is undefined; check that {name} is not a constant "
            "or dead layer."
        )


def check_flag(value: Any, *, name: str) -> bool:
    """A boolean option: ``True`` or ``False`` (not 0/1, ``None`` or a string)."""
    if not isinstance(value, bool):
        raise InputTypeError(
            f"{name} must be True or False, got {value!r} of type {type(value).__name__}."
        )
    return value


def check_label_range(labels: Tensor, num_classes: int, *, name: str = "labels") -> None:
    """Class indices must lie in ``[0, num_classes)`` (validated labels, e.g. from
    :func:`check_labels`); raises :class:`ShapeError` naming how many do not and the range."""
    if labels.numel() == 0:
        return
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        bad = labels[(labels < 0) | (labels >= num_classes)]
        raise ShapeError(
            f"{name} must lie in [0, {num_classes}) (num_classes = {num_classes}), but "
            f"{bad.numel()} entries do not (min {low}, max {high}); relabel the classes as "
            "0..C-1 or pass the right num_classes / classifier."
        )


def check_choice(value: Any, *, name: str, choices: Sequence[str]) -> str:
    """Validate a string option against the accepted ``choices``."""
    if value not in choices:
        listing = ", ".join(repr(c) for c in choices)
        raise InvalidOptionError(f"{name} must be one of {listing}; got {value!r}.")
    return str(value)


def check_scalar_in_range(
    value: Any,
    *,
    name: str,
    low: float,
    high: float,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Validate a real option lying in an interval, e.g. ``alpha`` in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise InputTypeError(f"{name} must be a real number, got {type(value).__name__}.")
    v = float(value)
    too_low = v <= low if low_open else v < low
    too_high = v >= high if high_open else v > high
    if too_low or too_high or v != v:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        raise InvalidOptionError(f"{name} must lie in {left}{low}, {high}{right}, got {value}.")
    return v
