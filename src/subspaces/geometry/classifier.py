"""The classification-loss geometry of a last layer: z_c = ||w_c|| ||h|| cos θ_c + b_c
("Understanding Robustness Lottery", Li et al. 2022)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from subspaces._base import Result
from subspaces._checks import (
    InputTypeError,
    ShapeError,
)
from subspaces.geometry._classes import (
    _F64,
    _block_rows,
    _check_nonzero_rows,
    _compute_dtype,
    _prepare,
    _require_classifier,
)

__all__ = [
    "ClassifierGeometry",
    "ClassifierGeometryComparison",
    "classifier_geometry",
    "compare_classifier_geometry",
]


# ---------------------------------------------------------------------------------------
# Classification-loss geometry ("Understanding Robustness Lottery", 2022)


@dataclass(frozen=True)
class ClassifierGeometry(Result):
    """The factors of each sample's logits, z_c = ||w_c|| ||h|| cos θ_c + b_c.

    Attributes:
        feature_norm: (n,) ||h||. row_norms: (C,) ||w_c||.
        cos_true: (n,) cos θ_y between h and its class's row w_y.
        logit_true: (n,) z_y. margin: (n,) z_y - max_{c≠y} z_c (> 0 iff correct, ties aside).
        predicted: (n,) argmax_c z_c. correct: (n,) bool. labels: (n,) y.
        accuracy, mean_feature_norm, mean_cos_true, mean_margin, median_margin,
        mean_row_norm: 0-dim summaries.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> w = 5.0 * torch.eye(3, 4, dtype=torch.float64)  # classifier rows (C, d)
        >>> labels = torch.arange(60) % 3
        >>> x = w[labels] + 0.1 * torch.randn(60, 4, generator=g, dtype=torch.float64)
        >>> from subspaces.geometry import classifier_geometry
        >>> geo = classifier_geometry(x, labels, w)
        >>> geo.margin.shape, geo.row_norms.tolist()
        (torch.Size([60]), [5.0, 5.0, 5.0])
        >>> round(geo.as_dict()['mean_feature_norm'], 3)
        4.987
    """

    feature_norm: Tensor
    row_norms: Tensor
    cos_true: Tensor
    logit_true: Tensor
    margin: Tensor
    predicted: Tensor
    correct: Tensor
    labels: Tensor
    accuracy: Tensor
    mean_feature_norm: Tensor
    mean_cos_true: Tensor
    mean_margin: Tensor
    median_margin: Tensor
    mean_row_norm: Tensor


def classifier_geometry(
    x: Any, labels: Any, classifier: Any, *, bias: Any = None
) -> ClassifierGeometry:
    """Per-sample geometry of a softmax classifier's logits (feature norm, angle, margin).

    The classification loss depends on the logits z_c = w_c·h + b_c = ||w_c|| ||h|| cos θ_c
    + b_c; "Understanding Robustness Lottery: A Geometric Visual Comparative Analysis of
    Neural Network Pruning Approaches" (2022) decomposes them into the feature norm ||h||,
    the classifier row norms ||w_c||, the cosine between h and its class row w_y, and the
    margin z_y - max_{c≠y} z_c, to compare models (e.g. dense and pruned) on the same
    inputs: see :func:`compare_classifier_geometry`.

    Invariant to rotations of the features (W → W Qᵀ), class relabeling and sample order
    (per-sample values permute along). Norms and margins scale with the features.

    Args:
        x: (n, d) penultimate features. labels: (n,) classes in [0, C).
        classifier: (C, d) last-layer weight. bias: (C,) last-layer bias.

    Returns:
        A :class:`ClassifierGeometry` (per-sample values and summaries, float64).

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> w = 5.0 * torch.eye(3, 4, dtype=torch.float64)  # classifier rows (C, d)
        >>> labels = torch.arange(60) % 3
        >>> x = w[labels] + 0.1 * torch.randn(60, 4, generator=g, dtype=torch.float64)
        >>> from subspaces.geometry import classifier_geometry
        >>> geo = classifier_geometry(x, labels, w)
        >>> float(geo.accuracy), round(float(geo.mean_cos_true), 3)
        (1.0, 0.999)
        >>> round(float(geo.mean_margin), 2)
        24.65
    """
    _require_classifier(classifier, measure="classifier_geometry")
    x, y, w_opt, b, c = _prepare(
        x, labels, classifier, bias, None, min_samples=1, every_class=False
    )
    w = _require_classifier(w_opt, measure="classifier_geometry")
    dtype = _compute_dtype(x, w, b)
    wf = w.to(dtype)
    row_norms = _check_nonzero_rows(wf, what="classifier rows", fix="check the classifier.")
    feat_norms = _check_nonzero_rows(
        x.to(dtype), what="feature rows", fix="drop those samples (e.g. dead units everywhere)."
    )
    n = x.shape[0]
    cos_true = torch.empty(n, dtype=_F64, device=x.device)
    logit_true = torch.empty(n, dtype=_F64, device=x.device)
    margin = torch.empty(n, dtype=_F64, device=x.device)
    predicted = torch.empty(n, dtype=torch.int64, device=x.device)
    rows = _block_rows(c)
    for start in range(0, n, rows):
        sl = slice(start, min(start + rows, n))
        xb = x[sl].to(dtype)
        yb = y[sl]
        logits = xb @ wf.T
        if b is not None:
            logits = logits + b.to(dtype)
        zy = logits.gather(1, yb[:, None]).squeeze(1)
        others = logits.scatter(1, yb[:, None], -math.inf)
        logit_true[sl] = zy.to(_F64)
        margin[sl] = (zy - others.max(1).values).to(_F64)
        predicted[sl] = logits.argmax(1)
        cos_true[sl] = ((xb * wf[yb]).sum(1) / (feat_norms[sl] * row_norms[yb])).to(_F64)
    correct = predicted == y
    fn64 = feat_norms.to(_F64)
    return ClassifierGeometry(
        feature_norm=fn64,
        row_norms=row_norms.to(_F64),
        cos_true=cos_true,
        logit_true=logit_true,
        margin=margin,
        predicted=predicted,
        correct=correct,
        labels=y,
        accuracy=correct.to(_F64).mean(),
        mean_feature_norm=fn64.mean(),
        mean_cos_true=cos_true.mean(),
        mean_margin=margin.mean(),
        median_margin=margin.median(),
        mean_row_norm=row_norms.to(_F64).mean(),
    )


@dataclass(frozen=True)
class ClassifierGeometryComparison(Result):
    """Model b against model a on the same inputs: changes are b - a.

    Attributes:
        feature_norm_change, cos_true_change, margin_change: (n,) per-sample changes.
        row_norm_change: (C,). agreement: fraction of samples with the same prediction.
        accuracy_a, accuracy_b: accuracies. gained: fraction wrong in a and right in b;
        lost: right in a and wrong in b.
        mean_feature_norm_change, mean_cos_true_change, mean_margin_change: 0-dim means.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> w = 5.0 * torch.eye(3, 4, dtype=torch.float64)  # classifier rows (C, d)
        >>> labels = torch.arange(60) % 3
        >>> x = w[labels] + 0.1 * torch.randn(60, 4, generator=g, dtype=torch.float64)
        >>> from subspaces.geometry import classifier_geometry, compare_classifier_geometry
        >>> a = classifier_geometry(x, labels, w)
        >>> diff = compare_classifier_geometry(a, a)
        >>> float(diff.agreement), int(diff.gained), int(diff.lost)
        (1.0, 0, 0)
    """

    feature_norm_change: Tensor
    cos_true_change: Tensor
    margin_change: Tensor
    row_norm_change: Tensor
    agreement: Tensor
    accuracy_a: Tensor
    accuracy_b: Tensor
    gained: Tensor
    lost: Tensor
    mean_feature_norm_change: Tensor
    mean_cos_true_change: Tensor
    mean_margin_change: Tensor


def compare_classifier_geometry(
    a: ClassifierGeometry, b: ClassifierGeometry
) -> ClassifierGeometryComparison:
    """Compare two models' :func:`classifier_geometry` on the same inputs (e.g. dense vs pruned).

    Per-sample changes (b - a) of feature norm, cosine with the true class row and margin;
    changes of classifier row norms; prediction agreement; the fractions of samples a model
    gains (wrong in a, right in b) or loses. Both must describe the same samples with the
    same labels and the same number of classes.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> w = 5.0 * torch.eye(3, 4, dtype=torch.float64)  # classifier rows (C, d)
        >>> labels = torch.arange(60) % 3
        >>> x = w[labels] + 0.1 * torch.randn(60, 4, generator=g, dtype=torch.float64)
        >>> from subspaces.geometry import classifier_geometry, compare_classifier_geometry
        >>> a = classifier_geometry(x, labels, w)
        >>> b = classifier_geometry(x, labels, 0.5 * w)
        >>> diff = compare_classifier_geometry(a, b)
        >>> float(diff.agreement), round(float(diff.mean_margin_change), 2)
        (1.0, -12.33)
    """
    for name, g in (("a", a), ("b", b)):
        if not isinstance(g, ClassifierGeometry):
            raise InputTypeError(
                f"{name} must be a ClassifierGeometry (from classifier_geometry), got "
                f"{type(g).__name__}."
            )
    if a.labels.shape != b.labels.shape or not torch.equal(a.labels, b.labels):
        raise ShapeError(
            f"a and b must describe the same samples with the same labels, got {a.labels.shape[0]} "
            f"and {b.labels.shape[0]} samples (or different labels); measure both models on the "
            "same inputs in the same order."
        )
    if a.row_norms.shape != b.row_norms.shape:
        raise ShapeError(
            f"a and b must have the same number of classes, got {a.row_norms.shape[0]} and "
            f"{b.row_norms.shape[0]}."
        )
    fn = b.feature_norm - a.feature_norm
    cs = b.cos_true - a.cos_true
    mg = b.margin - a.margin
    return ClassifierGeometryComparison(
        feature_norm_change=fn,
        cos_true_change=cs,
        margin_change=mg,
        row_norm_change=b.row_norms - a.row_norms,
        agreement=(a.predicted == b.predicted).to(_F64).mean(),
        accuracy_a=a.accuracy,
        accuracy_b=b.accuracy,
        gained=(~a.correct & b.correct).to(_F64).mean(),
        lost=(a.correct & ~b.correct).to(_F64).mean(),
        mean_feature_norm_change=fn.mean(),
        mean_cos_true_change=cs.mean(),
        mean_margin_change=mg.mean(),
    )
