"""Labels, class counts and classifier weights checked alike for every measure of a
classifier's last layer (neural collapse, orthogonal frame, mixup, classifier geometry)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from subspaces._checks import (
    DegenerateInputError,
    DeviceMismatchError,
    InputTypeError,
    InvalidOptionError,
    ShapeError,
    TooFewSamplesError,
    as_float_tensor,
    check_class_count,
    check_finite,
    check_labels,
    check_matrix,
    check_positive_int,
)
from subspaces.linalg.scaling import row_norms

_F64 = torch.float64
_BLOCK_ENTRIES = 1 << 22  # entries of an n × C (or C × C) block held at once


# ---------------------------------------------------------------------------------------
# Validation shared by every function of the module


def _check_num_classes(num_classes: Any, *, name: str = "num_classes") -> int:
    c = check_positive_int(num_classes, name=name)
    if c < 2:
        raise TooFewSamplesError(
            f"{name} is {c}, but collapse measures need at least 2 classes; pass the "
            "features of a classification layer with two or more classes."
        )
    return c


def _check_classifier(classifier: Any, num_classes: int | None, d: int, device: Any) -> Tensor:
    w = check_matrix(classifier, name="classifier", min_samples=1)
    rows = num_classes if num_classes is not None else w.shape[0]
    if w.shape != (rows, d):
        hint = (
            " It looks transposed: pass classifier.T (rows are classes, as in "
            "torch.nn.Linear(d, C).weight)."
            if w.shape == (d, rows)
            else ""
        )
        raise ShapeError(
            f"classifier must have shape (num_classes, n_features) = ({rows}, {d}), got "
            f"{tuple(w.shape)}.{hint}"
        )
    if device is not None and w.device != torch.device(device):
        raise DeviceMismatchError(
            f"classifier is on {w.device} but the features are on {device}; move it with .to()."
        )
    return w


def _check_bias(bias: Any, num_classes: int, device: Any) -> Tensor:
    b = as_float_tensor(bias, name="bias")
    if b.ndim != 1 or b.shape[0] != num_classes:
        raise ShapeError(
            f"bias must be 1-D with one entry per class ({num_classes},), got shape "
            f"{tuple(b.shape)}."
        )
    check_finite(b, name="bias")
    if device is not None and b.device != torch.device(device):
        raise DeviceMismatchError(
            f"bias is on {b.device} but the features are on {device}; move it with .to()."
        )
    return b


def _resolve_classes(
    labels: Tensor, num_classes: Any, classifier: Any, *, every_class: bool, name: str
) -> int:
    """C: ``num_classes``, else the classifier's rows, else ``max(labels) + 1``; checked
    against the labels before anything is sized by it (:func:`check_class_count`): labels in
    [0, C) and, when ``every_class``, every class populated (so C <= n)."""
    given = None
    if num_classes is not None:
        given = _check_num_classes(num_classes)
    elif classifier is not None and hasattr(classifier, "shape") and len(classifier.shape) == 2:
        given = _check_num_classes(int(classifier.shape[0]), name="classifier.shape[0]")
    c = check_class_count(labels, given, name=name, allow_empty=not every_class)
    if c < 2:
        raise TooFewSamplesError(
            f"labels hold {c} class(es) (max label {c - 1}), but collapse measures need at "
            "least 2 classes."
        )
    return c


def _prepare(
    x: Any,
    labels: Any,
    classifier: Any,
    bias: Any,
    num_classes: Any,
    *,
    min_samples: int = 2,
    labels_name: str = "labels",
    every_class: bool = True,
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None, int]:
    x = check_matrix(x, name="x", min_samples=min_samples).detach()
    y = check_labels(labels, x.shape[0], name=labels_name, device=x.device)
    c = _resolve_classes(y, num_classes, classifier, every_class=every_class, name=labels_name)
    w = None if classifier is None else _check_classifier(classifier, c, x.shape[1], x.device)
    if bias is not None and w is None:
        raise InvalidOptionError("bias was given without classifier; pass classifier=W too.")
    b = None if bias is None else _check_bias(bias, c, x.device)
    # measurements, not losses: no autograd graph through n × C logits
    return x, y, None if w is None else w.detach(), None if b is None else b.detach(), c


def _require_classifier(w: Tensor | None, *, measure: str) -> Tensor:
    if w is None:
        raise InvalidOptionError(f"{measure} needs the classifier (C, d); got classifier=None.")
    return w


def _compute_dtype(*tensors: Tensor | None) -> torch.dtype:
    dtype = torch.float32
    for t in tensors:
        if t is not None:
            dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def _as_vector(value: Any, *, name: str) -> Tensor:
    """A small option given as a list, tuple, numpy array or tensor, as a float tensor."""
    if isinstance(value, (list, tuple)):
        try:
            value = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise InputTypeError(f"{name} must hold numbers, got {value!r}.") from err
    return check_finite(as_float_tensor(value, name=name), name=name)


def _block_rows(width: int) -> int:
    return max(1, _BLOCK_ENTRIES // max(width, 1))


def _check_nonzero_rows(v: Tensor, *, what: str, fix: str) -> Tensor:
    """The rows' norms in float64 (no float32 square overflows or vanishes at any scale)."""
    norms = row_norms(v)
    zero = (norms == 0).nonzero().flatten()
    if zero.numel():
        raise DegenerateInputError(
            f"{zero.numel()} {what} have zero norm (first: {zero[:10].tolist()}), so their "
            f"cosines are undefined; {fix}"
        )
    return norms
