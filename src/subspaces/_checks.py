"""Input validation: turn what users pass into validated tensors, with errors that help.

Every public function of the families calls one of these at its door. Numpy arrays and
torch tensors are accepted; half-precision inputs are promoted to float32, integer and
boolean inputs to float32 (float64 stays float64). Nothing is moved between devices.

Options are checked by one validator per kind, whose errors name the option and its valid
range (:class:`InputTypeError` for a wrong type, :class:`InvalidOptionError` for a value out
of range). A bool never passes as a number; numpy integers, floats and bools pass as Python
ones; NaN and ±inf never pass.

* sizes and counts (``k``, ``chunk_size``, ``epochs``): :func:`check_positive_int`, with
  ``minimum`` and ``maximum``; ``None`` meaning automatic (``n_components``):
  :func:`check_optional_int`; sequences of them (``ks``, ``hidden``): :func:`check_positive_ints`;
* reals in an interval (``alpha``, fractions): :func:`check_scalar_in_range`; positive reals
  (``sigma``, ``eps``, ``t``, ``lr``; with ``allow_zero`` penalties such as ``ridge``), bounded
  where larger values overflow: :func:`check_positive_real`; rank tolerances (``None`` = the
  method's default): :func:`check_optional_rtol`;
* choices among strings: :func:`check_choice`; flags: :func:`check_flag`;
* randomness (``seed``: an int, a ``torch.Generator`` or ``None``): :func:`check_seed`, and
  :func:`seed_generator` for the generator to draw with; ``dtype`` and ``device``:
  :func:`check_float_dtype`,
  :func:`check_device`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError
from torch import Tensor

from subspaces._errors import (
    DegenerateInputError,
    DeviceMismatchError,
    InputTypeError,
    InvalidOptionError,
    NonFiniteError,
    NumericalError,
    NumericRangeError,
    ShapeError,
    SmallSampleWarning,
    SubspacesError,
    TooFewSamplesError,
)

__all__ = [
    "MAX_RATE",
    "DegenerateInputError",
    "DeviceMismatchError",
    "InputTypeError",
    "InvalidOptionError",
    "NonFiniteError",
    "NotFittedError",
    "NumericRangeError",
    "NumericalError",
    "ShapeError",
    "SmallSampleWarning",
    "SubspacesError",
    "TooFewSamplesError",
    "as_float_tensor",
    "as_tensor",
    "check_choice",
    "check_class_count",
    "check_dense",
    "check_device",
    "check_finite",
    "check_fits_in_memory",
    "check_flag",
    "check_float_dtype",
    "check_label_range",
    "check_labels",
    "check_magnitude",
    "check_matrix",
    "check_not_constant",
    "check_optional_int",
    "check_optional_rtol",
    "check_paired",
    "check_positive_int",
    "check_positive_ints",
    "check_positive_real",
    "check_same_device",
    "check_scalar_in_range",
    "check_seed",
    "seed_generator",
]


class NotFittedError(SubspacesError, _SklearnNotFittedError):
    """A fitted estimator's method or attribute was used before ``fit`` / ``partial_fit``.

    It is scikit-learn's ``NotFittedError`` (a ``ValueError`` and an ``AttributeError``), so
    ``hasattr(estimator, "rotation_")`` is ``False`` before fitting and scikit-learn's
    ``check_is_fitted`` recognizes it.

    Examples:
        >>> issubclass(NotFittedError, AttributeError), issubclass(NotFittedError, ValueError)
        (True, True)
    """


_PROMOTE_TO_FLOAT32 = (torch.float16, torch.bfloat16)


def check_dense(t: Tensor, *, name: str = "x") -> Tensor:
    """Refuse, with :class:`InputTypeError`, a tensor that holds no dense data to read.

    A tensor on the meta device has a shape but no values: it is not data (and ``.to()``
    cannot give it any), so it is a wrong type of input rather than a
    :class:`DeviceMismatchError`, which is about two arguments on different devices.
    Sparse and nested tensors are refused too, before any value is read.

    Examples:
        >>> import torch
        >>> check_dense(torch.ones(2, 2)).shape
        torch.Size([2, 2])
        >>> check_dense(torch.empty(2, 2, device='meta'))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        subspaces.InputTypeError: x is a tensor on the meta device...
    """
    if t.device.type == "meta":
        raise InputTypeError(
            f"{name} is a tensor on the meta device, which has a shape {tuple(t.shape)} but no "
            "data; materialize it (load the weights, run the model on a real device) first."
        )
    if t.is_nested or t.layout != torch.strided:
        kind = "nested" if t.is_nested else f"{t.layout} (sparse)"
        raise InputTypeError(
            f"{name} is a {kind} tensor; subspaces needs a dense tensor: convert it with "
            f"{name}.to_dense() (or torch.nested.to_padded_tensor for nested tensors)."
        )
    return t


def _from_numpy(x: np.ndarray, name: str) -> Tensor:
    """A numpy array as a tensor, sharing memory where torch can."""
    if isinstance(x, np.ma.MaskedArray):
        masked = int(np.ma.count_masked(x))
        if masked:
            raise InputTypeError(
                f"{name} is a numpy masked array with {masked} masked entries, which subspaces "
                f"would read as ordinary values; drop or impute them (e.g. {name}.filled(value) "
                f"or {name}[~{name}.mask.any(axis=1)]) first."
            )
        x = np.ma.getdata(x)
    if x.dtype.kind not in "biufc":
        raise InputTypeError(
            f"{name} is a numpy array of dtype {x.dtype}; pass a numeric array "
            "(e.g. np.asarray(...).astype(np.float32))."
        )
    if x.dtype.kind in "fc" and x.dtype.itemsize > (8 if x.dtype.kind == "f" else 16):
        x = x.astype(np.float64 if x.dtype.kind == "f" else np.complex128)  # long double
    if not x.flags.writeable or any(stride < 0 for stride in x.strides):
        x = np.array(x, order="C", copy=True)  # torch.from_numpy needs both
    return torch.from_numpy(x) if x.dtype != np.float16 else torch.from_numpy(x).float()


def as_float_tensor(x: Any, *, name: str = "x") -> Tensor:
    """Return ``x`` as a floating-point tensor (float32 or wider), on its own device.

    numpy arrays are converted once (without copying where possible); float16 and
    bfloat16 are promoted to float32; integer and boolean inputs become float32;
    long double becomes float64; quantized tensors are dequantized. Refused with
    :class:`InputTypeError`: complex input, tensors that hold no dense data (meta device,
    sparse and nested layouts), numpy arrays of non-numeric dtype (object, structured,
    strings, dates) and masked arrays with masked entries, and anything that is neither a
    tensor nor an array (lists, tables: convert them first).

    Examples:
        >>> import numpy as np
        >>> as_float_tensor(np.arange(3)).dtype
        torch.float32
    """
    if isinstance(x, Tensor):
        t = check_dense(x, name=name)
        if t.is_quantized:
            t = t.dequantize()
    elif isinstance(x, np.ndarray):
        t = _from_numpy(x, name)
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


def as_tensor(x: Any, *, name: str = "x") -> Tensor:
    """``x`` as a tensor of its own dtype (network inputs, indices): tensors as they are,
    numpy arrays converted once; refused as :func:`as_float_tensor` refuses them (not an
    array, no dense data, a non-numeric or masked numpy array).

    Examples:
        >>> import numpy as np
        >>> as_tensor(np.arange(3)).dtype
        torch.int64
    """
    if isinstance(x, Tensor):
        return check_dense(x, name=name)
    if isinstance(x, np.ndarray):
        return _from_numpy(x, name)
    raise InputTypeError(
        f"{name} must be a torch.Tensor or a numpy.ndarray, got {type(x).__name__}. "
        "Convert it with torch.as_tensor(...) or np.asarray(...)."
    )


def _count_nonfinite(t: Tensor) -> tuple[int, int]:
    return int(torch.isnan(t).sum()), int(torch.isinf(t).sum())


def check_finite(t: Tensor, *, name: str = "x") -> Tensor:
    """Raise :class:`NonFiniteError` naming the count of NaN and Inf entries of ``t``.

    Examples:
        >>> import torch
        >>> check_finite(torch.tensor([1.0, float('nan')]))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        subspaces.NonFiniteError: x contains 1 NaN and 0 infinite entries...
    """
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

    Examples:
        >>> import numpy as np
        >>> t = check_matrix(np.zeros((5, 3)))
        >>> t.shape, t.dtype
        (torch.Size([5, 3]), torch.float64)
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
        check_magnitude(t, name=name)
    return t


_FLOAT64_MAGNITUDE_EXPONENT = 212
"""float64 data are accepted when their largest magnitude lies in [2**-212, 2**212]."""


def check_magnitude(t: Tensor, *, name: str = "x", top: float | None = None) -> Tensor:
    """Refuse float64 data whose largest magnitude lies outside [2**-212, 2**212].

    That is about 1.5e-64 to 6.6e63: beyond, fourth powers of the data (which CKA, HSIC and
    the debiased estimators sum) over- or underflow float64, so :class:`NumericRangeError`
    names the magnitude and asks for a rescale. All-zero data pass (other checks name
    them). float32 data are accepted at any finite scale: the measures bring them into range
    by exact powers of two (``subspaces.linalg.scaling``) or compute in float64. ``top``:
    the largest magnitude of ``t``, if the caller has it (no pass over ``t`` then).

    Examples:
        >>> import torch
        >>> check_magnitude(torch.tensor([1e300], dtype=torch.float64))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        subspaces.NumericRangeError: x is torch.float64 with largest magnitude 1e+300...
    """
    if t.dtype == torch.float32 or t.numel() == 0:
        return t
    if top is None:
        low, high = torch.aminmax(t.detach())
        top = max(-float(low), float(high))
    limit = 2.0**_FLOAT64_MAGNITUDE_EXPONENT
    if top == 0.0 or 1.0 / limit <= top <= limit:
        return t
    raise NumericRangeError(
        f"{name} is {t.dtype} with largest magnitude {top:.3g}, outside the range subspaces "
        f"supports for it ({1.0 / limit:.2g} to {limit:.2g}), where powers of the data "
        f"overflow or underflow; rescale {name} (e.g. divide it by {top:.3g})."
    )


def check_same_device(*tensors: Tensor, names: Sequence[str]) -> None:
    """Raise :class:`DeviceMismatchError` if the tensors are not on one device.

    Examples:
        >>> import torch
        >>> check_same_device(torch.ones(1), torch.ones(1), names=("x", "y"))
    """
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

    Examples:
        >>> import torch
        >>> x, y = check_paired(torch.ones(4, 2), torch.ones(4, 3, dtype=torch.float64))
        >>> x.dtype, y.dtype
        (torch.float64, torch.float64)
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
    """Validate class labels: a 1-D integer array with ``n`` entries, as an int64 tensor.

    Examples:
        >>> import numpy as np
        >>> check_labels(np.array([0, 2, 1]), 3).tolist()
        [0, 2, 1]
    """
    if isinstance(labels, np.ndarray):
        t = _from_numpy(labels, name)
    elif isinstance(labels, Tensor):
        t = check_dense(labels, name=name)
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


def _int_range(minimum: int, maximum: int | None) -> str:
    return f"at least {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"


def check_positive_int(
    value: Any, *, name: str, minimum: int = 1, maximum: int | None = None
) -> int:
    """A size or count option (``k``, ``n_anchors``, ``chunk_size``...): an integer (Python or
    numpy; never a bool, a float such as 2.5 or a string) in ``[minimum, maximum]``.

    Raises :class:`InputTypeError` for a wrong type, :class:`InvalidOptionError` for a value
    out of range; both name the option and its valid range.

    Examples:
        >>> check_positive_int(3, name="k")
        3
        >>> check_positive_int(0, name="k")
        Traceback (most recent call last):
        ...
        subspaces.InvalidOptionError: k must be at least 1, got 0.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InputTypeError(
            f"{name} must be an integer, got {type(value).__name__} ({value!r}); pass an "
            f"integer {_int_range(minimum, maximum)}."
        )
    if value < minimum or (maximum is not None and value > maximum):
        what = f"at least {minimum}" if value < minimum else f"at most {maximum}"
        raise InvalidOptionError(f"{name} must be {what}, got {value}.")
    return int(value)


def check_optional_int(
    value: Any, *, name: str, minimum: int = 1, maximum: int | None = None
) -> int | None:
    """A size option where ``None`` means automatic (``n_components``...): ``None``, or
    an integer as :func:`check_positive_int`.

    Examples:
        >>> check_optional_int(None, name="n_components") is None
        True
    """
    if value is None:
        return None
    return check_positive_int(value, name=name, minimum=minimum, maximum=maximum)


def check_optional_rtol(rtol: Any) -> float | None:
    """Validate a relative rank tolerance: ``None`` (the method's default) or in [0, 1).

    Examples:
        >>> check_optional_rtol(None), check_optional_rtol(1e-6)
        (None, 1e-06)
    """
    if rtol is None:
        return None
    return check_scalar_in_range(rtol, name="rtol", low=0.0, high=1.0, high_open=True)


def check_not_constant(t: Tensor, *, name: str, measure: str) -> None:
    """Raise :class:`DegenerateInputError` when every row of ``t`` is the same point.

    Examples:
        >>> import torch
        >>> check_not_constant(torch.ones(3, 2), name="x", measure="CKA")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        subspaces.DegenerateInputError: ...
    """
    if t.shape[0] and bool((t == t[:1]).all()):
        raise DegenerateInputError(
            f"{name} has zero variance (all {t.shape[0]} samples are the same point, shape "
            f"{tuple(t.shape)}), so {measure} is undefined; check that {name} is not a constant "
            "or dead layer."
        )


def check_flag(value: Any, *, name: str) -> bool:
    """A boolean option: ``True`` or ``False``, or a numpy bool (not 0/1, ``None`` or a
    string, which would be read by truth value).

    Examples:
        >>> check_flag(True, name="center")
        True
    """
    if not isinstance(value, (bool, np.bool_)):
        raise InputTypeError(
            f"{name} must be True or False, got {value!r} of type {type(value).__name__}."
        )
    return bool(value)


def check_label_range(labels: Tensor, num_classes: int, *, name: str = "labels") -> None:
    """Class indices must lie in ``[0, num_classes)`` (validated labels, e.g. from
    :func:`check_labels`); raises :class:`ShapeError` naming how many do not and the range.

    Examples:
        >>> import torch
        >>> check_label_range(torch.tensor([0, 1, 2]), 3)
    """
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


_SHOWN_CLASSES = 10  # empty classes named in an error


def check_class_count(
    labels: Tensor, num_classes: Any = None, *, name: str = "labels", allow_empty: bool = False
) -> int:
    """The number of classes C of validated ``labels`` (e.g. from :func:`check_labels`),
    checked against the samples before anything is sized by it.

    C is ``num_classes`` when given (every label must then lie in [0, C)), else
    ``max(labels) + 1``; negative labels are refused either way (:class:`ShapeError`, as
    :func:`check_label_range`). The check itself takes O(n) memory for n labels, whatever
    values they hold.

    * ``allow_empty=False``, for measures that need every class populated (class means,
      prototypes): every class 0..C-1 must hold a sample, else :class:`TooFewSamplesError`
      naming how many classes the labels imply, how many are populated and the first
      empty ones. A C larger than n is therefore always refused.
    * ``allow_empty=True``, for classifier heads and the like: empty classes are accepted,
      but only up to a C given explicitly. An inferred C larger than n is refused as a
      likely stray label (:class:`ShapeError`); pass ``num_classes`` to mean it. A
      ``num_classes`` given explicitly is honored: check the buffers it sizes with
      :func:`check_fits_in_memory`.

    Examples:
        >>> import torch
        >>> check_class_count(torch.tensor([0, 2, 1, 2]))
        3
    """
    n = labels.numel()
    low, high = (int(v) for v in torch.aminmax(labels)) if n else (0, -1)
    inferred = num_classes is None
    c = high + 1 if inferred else check_positive_int(num_classes, name="num_classes")
    if low < 0 or high >= c:
        check_label_range(labels, max(c, 1), name=name)  # raises, naming the entries
    if allow_empty:
        if inferred and c > n:
            raise ShapeError(
                f"{name} imply {c} classes (max label {high}) but there are only {n} samples, "
                f"so at least {c - n} classes would be empty: a stray label? Relabel the "
                f"classes as 0..C-1, or pass num_classes={c} if they really are numbered up "
                f"to {high}."
            )
        return c
    present = torch.unique(labels)  # sized by n, never by C
    populated = present.numel()
    if populated < c:
        # the first empty classes lie below populated + _SHOWN_CLASSES: no arange of length C
        head = torch.arange(min(c, populated + _SHOWN_CLASSES), device=labels.device)
        empty = head[~torch.isin(head, present)][:_SHOWN_CLASSES].tolist()
        more = c - populated - len(empty)
        listing = f"{empty} and {more} more" if more else f"{empty}"
        source = f"max label {high}" if inferred else f"num_classes = {c}"
        smaller = "" if inferred else ", pass a smaller num_classes"
        raise TooFewSamplesError(
            f"{name} imply {c} classes ({source}) but only {populated} of them have samples "
            f"(empty: {listing}), and every class needs samples here; relabel the classes "
            f"as 0..{max(populated - 1, 0)} (e.g. torch.unique({name}, return_inverse=True)"
            f"[1]){smaller} or gather samples of the empty classes."
        )
    return c


def _device_memory(device: torch.device) -> int | None:
    """Total memory of ``device`` in bytes (physical memory for the CPU), or None if unknown."""
    if device.type == "cpu":
        try:
            pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):  # not a POSIX system
            return None
        return pages * page_size if pages > 0 and page_size > 0 else None
    if device.type == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.get_device_properties(device).total_memory)
    return None


def _format_bytes(nbytes: int) -> str:
    value = float(nbytes)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if value < 1000.0 or unit == "PB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{nbytes} B"
        value /= 1000.0
    raise AssertionError("unreachable")  # pragma: no cover


def check_fits_in_memory(
    numel: int, *, dtype: torch.dtype, device: Any, name: str, value: Any, what: str
) -> None:
    """Refuse, before allocating, ``numel`` entries of ``dtype`` on ``device`` that the
    option ``name = value`` asks for (``what`` describes them), when they exceed the
    device's total memory: physical memory for the CPU, the GPU's memory for CUDA, no
    bound where it is unknown. The option is honored otherwise: this turns an absurd
    value into an :class:`InvalidOptionError` instead of an allocator crash; it does not
    promise that every allocation below the bound succeeds.

    Examples:
        >>> import torch
        >>> check_fits_in_memory(
        ...     10, dtype=torch.float64, device="cpu", name="k", value=10, what="distances"
        ... )
    """
    dev = torch.device("cpu") if device is None else torch.device(device)
    total = _device_memory(dev)
    nbytes = int(numel) * dtype.itemsize
    if total is not None and nbytes > total:
        raise InvalidOptionError(
            f"{name}={value} needs {what} of {int(numel):,} {str(dtype).removeprefix('torch.')} "
            f"entries ({_format_bytes(nbytes)}), more than the {_format_bytes(total)} of "
            f"memory of {dev}; pass a smaller {name}."
        )


def check_choice(value: Any, *, name: str, choices: Sequence[str]) -> str:
    """A string option, one of ``choices`` (anything else, ``None`` and non-strings included,
    is an :class:`InvalidOptionError` listing the choices).

    Examples:
        >>> check_choice("exact", name="neighbors", choices=("exact", "approximate"))
        'exact'
    """
    if not isinstance(value, str) or value not in choices:
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
    hint: str = "",
) -> float:
    """A real option in an interval, e.g. ``alpha`` in [0, 1]: a Python or numpy number
    (never a bool or a string), finite whatever the bounds (NaN and ±inf are refused).

    Raises :class:`InputTypeError` for a wrong type, :class:`InvalidOptionError` for a value
    outside the interval; both name the option and the interval, then ``hint``.

    Examples:
        >>> check_scalar_in_range(0.5, name="alpha", low=0.0, high=1.0)
        0.5
    """
    left, right = "(" if low_open else "[", ")" if high_open else "]"
    interval = f"{left}{low}, {high}{right}"
    tail = f" {hint}" if hint else ""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.floating, np.integer)
    ):
        raise InputTypeError(
            f"{name} must be a real number in {interval}, got {type(value).__name__} "
            f"({value!r}).{tail}"
        )
    try:
        v = float(value)
    except OverflowError:  # an int beyond float64
        v = math.inf if value > 0 else -math.inf
    too_low = v <= low if low_open else v < low
    too_high = v >= high if high_open else v > high
    if too_low or too_high or not math.isfinite(v):
        raise InvalidOptionError(f"{name} must lie in {interval}, got {value}.{tail}")
    return v


MAX_RATE = 1e6
"""Upper bound of learning rates and weight decays: beyond, an optimizer step overflows the
float32 parameters (and any value far below already diverges)."""


def check_positive_real(
    value: Any, *, name: str, allow_zero: bool = False, high: float = math.inf, hint: str = ""
) -> float:
    """A positive real option (bandwidths, temperatures, learning rates; with ``allow_zero``
    penalties such as ``ridge``): finite, in (0, high) or [0, high).

    Examples:
        >>> check_positive_real(0.0, name="ridge", allow_zero=True)
        0.0
    """
    return check_scalar_in_range(
        value, name=name, low=0.0, high=high, low_open=not allow_zero, high_open=True, hint=hint
    )


_MAX_SEED = 2**63 - 1


def check_seed(value: Any, *, name: str = "seed") -> int | torch.Generator | None:
    """A seed option: an integer in [0, 2**63 - 1], a ``torch.Generator`` or ``None``.

    Examples:
        >>> check_seed(7), check_seed(None)
        (7, None)
    """
    if value is None or isinstance(value, torch.Generator):
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InputTypeError(
            f"{name} must be an integer in [0, 2**63 - 1], a torch.Generator or None, got "
            f"{type(value).__name__} ({value!r})."
        )
    return check_positive_int(value, name=name, minimum=0, maximum=_MAX_SEED)


def seed_generator(value: Any, *, name: str = "seed", device: Any = None) -> torch.Generator | None:
    """The random source of a ``seed`` option (:func:`check_seed`), ready for torch's samplers.

    An ``int`` gives a new ``torch.Generator`` on ``device`` (default the CPU) seeded with
    it, so the same seed draws the same numbers; a ``torch.Generator`` is returned as given
    (it keeps its state between calls); ``None`` stays ``None`` (torch's global generator).

    Examples:
        >>> import torch
        >>> a = torch.rand(2, generator=seed_generator(3))
        >>> b = torch.rand(2, generator=seed_generator(3))
        >>> bool(torch.equal(a, b)), seed_generator(None)
        (True, None)
    """
    seed = check_seed(value, name=name)
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    where = torch.device("cpu") if device is None else torch.device(device)
    return torch.Generator(device=where).manual_seed(seed)


def check_float_dtype(value: Any, *, name: str = "dtype", optional: bool = True) -> Any:
    """A dtype option: a floating ``torch.dtype`` (or ``None`` when ``optional``).

    Examples:
        >>> import torch
        >>> check_float_dtype(torch.float64)
        torch.float64
    """
    if value is None and optional:
        return None
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        allowed = "a floating torch.dtype (e.g. torch.float32)" + (" or None" if optional else "")
        raise InputTypeError(f"{name} must be {allowed}, got {value!r}.")
    return value


def check_device(value: Any, *, name: str = "device") -> torch.device | None:
    """A device option: ``None``, a ``torch.device`` or a device string such as ``"cuda:0"``,
    of a kind torch knows; the meta device is refused (it holds no data to compute on).

    Examples:
        >>> check_device("cpu")
        device(type='cpu')
    """
    if value is None:
        return None
    if not isinstance(value, (str, torch.device)):
        raise InputTypeError(
            f"{name} must be a torch.device, a device string or None, got "
            f"{type(value).__name__} ({value!r})."
        )
    try:
        device = torch.device(value)
    except RuntimeError as exc:
        raise InvalidOptionError(
            f"{name}={value!r} is not a device torch knows (e.g. 'cpu', 'cuda:0')."
        ) from exc
    if device.type == "meta":
        raise InvalidOptionError(
            f"{name}='meta' holds no data; build on a real device (e.g. 'cpu', 'cuda')."
        )
    return device


def check_positive_ints(
    values: Any, *, name: str, minimum: int = 1, allow_empty: bool = False
) -> tuple[int, ...]:
    """A sequence-of-integers option (``ks``, ``hidden``): each checked as
    :func:`check_positive_int`, named ``name[i]``.

    Examples:
        >>> check_positive_ints([1, 5], name="ks")
        (1, 5)
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise InputTypeError(
            f"{name} must be a sequence of integers (e.g. a tuple), got {type(values).__name__} "
            f"({values!r})."
        )
    if not values and not allow_empty:
        raise InvalidOptionError(f"{name} must hold at least one integer, got {values!r}.")
    return tuple(
        check_positive_int(v, name=f"{name}[{i}]", minimum=minimum) for i, v in enumerate(values)
    )
