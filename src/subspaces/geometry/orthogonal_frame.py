"""Distances of a last layer to the imbalanced-classes orthogonal frame (Dang et al. 2023)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from subspaces._base import Result
from subspaces._checks import (
    DegenerateInputError,
    InvalidOptionError,
    ShapeError,
    check_positive_int,
    check_positive_real,
)
from subspaces.geometry._classes import (
    _F64,
    _as_vector,
    _prepare,
    _require_classifier,
)

__all__ = ["OrthogonalFrameDistances", "orthogonal_frame_distances", "orthogonal_frame_scales"]


# ---------------------------------------------------------------------------------------
# Imbalanced classes: the orthogonal frame of Dang et al. (2023)


@dataclass(frozen=True)
class OrthogonalFrameDistances(Result):
    """Distances of the last layer to the imbalanced-MSE orthogonal frame (Dang et al. 2023).

    Each distance is ||A/||A||_F - T/||T||_F||_F (in [0, 2]) between an observed C × C matrix
    A and its target T = diag(t):

    Attributes:
        classifier_gram: A = W Wᵀ, t_k = s_k^{2M}.
        mean_gram: A = H̄ᵀ H̄ (uncentered class means as columns of H̄), t_k = s_k^{2M} /
            (s_k^{2M} + N λ_H)².
        classifier_means: A = W H̄, t_k = s_k^{2M} / (s_k^{2M} + N λ_H).
        scales: (C,) the s_k used. target_classifier_gram, target_mean_gram,
        target_classifier_means: (C,) the target diagonals t.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> w = 5.0 * torch.eye(3, 4, dtype=torch.float64)  # classifier rows (C, d)
        >>> labels = torch.arange(60) % 3
        >>> x = w[labels] + 0.1 * torch.randn(60, 4, generator=g, dtype=torch.float64)
        >>> from subspaces.geometry import orthogonal_frame_distances
        >>> dist = orthogonal_frame_distances(x, labels, w)
        >>> round(dist.as_dict()['classifier_means'], 4)
        0.0046
        >>> dist.scales.shape
        torch.Size([3])
    """

    classifier_gram: Tensor
    mean_gram: Tensor
    classifier_means: Tensor
    scales: Tensor
    target_classifier_gram: Tensor
    target_mean_gram: Tensor
    target_classifier_means: Tensor


def _positive_float(value: Any, *, name: str) -> float:
    return check_positive_real(value, name=name)


def _effective_weight_decay(weight_decay: Any, depth: int) -> float:
    if isinstance(weight_decay, (np.ndarray, Tensor)):
        weight_decay = np.asarray(weight_decay, dtype=np.float64).ravel().tolist()
        if len(weight_decay) == 1 and depth != 1:
            weight_decay = weight_decay[0]
    if isinstance(weight_decay, Sequence) and not isinstance(weight_decay, str):
        values = [_positive_float(v, name="weight_decay") for v in weight_decay]
        if len(values) != depth:
            raise InvalidOptionError(
                f"weight_decay has {len(values)} entries but depth is {depth}; give one "
                "value per layer or a single number."
            )
        return math.exp(sum(math.log(v) for v in values) / depth)
    return _positive_float(weight_decay, name="weight_decay")


def orthogonal_frame_scales(
    class_counts: Any,
    *,
    depth: int = 1,
    feature_decay: float = 5e-4,
    weight_decay: float | Sequence[float] = 5e-4,
    n_samples: int | None = None,
) -> Tensor:
    """The s_k of the imbalanced bias-free MSE global minimizer (Dang et al. 2023).

    For the regularized deep linear model (1/2N)||W_M⋯W_1 H - Y||_F² + Σ_m (λ_W/2)||W_m||_F²
    + (λ_H/2)||H||_F² with n_k samples of class k (N = Σ n_k), the minimizer has collapsed
    features and orthogonal classifier rows; class k's share of the objective is
    g(s) = n_k λ_H / (2(s^{2M} + N λ_H)) + M λ_W s² / 2 and s_k minimizes it: the largest
    positive root of n_k λ_H s^{2M-2} = λ_W (s^{2M} + N λ_H)² when that beats s = 0
    (g(0) = n_k / 2N), else 0 (the class collapses to zero, "minority collapse"). For
    M = 1: s_k² = max(0, sqrt(n_k λ_H / λ_W) - N λ_H). This is our derivation from their
    model; per-layer decays λ_{W_m} enter through their geometric mean (balanced layers).

    Args:
        class_counts: (C,) n_k.
        depth: M, the number of linear layers between the features H and the outputs.
        feature_decay: λ_H. weight_decay: λ_W, or one value per layer.
        n_samples: N; default Σ n_k.

    Returns:
        (C,) float64 tensor of s_k ≥ 0.

    Examples:
        >>> from subspaces.geometry import orthogonal_frame_scales
        >>> scales = orthogonal_frame_scales([30, 20, 10])
        >>> [round(s, 4) for s in scales.tolist()]
        [2.3339, 2.1076, 1.7698]
    """
    counts = _as_vector(class_counts, name="class_counts").to(_F64)
    if counts.ndim != 1 or counts.numel() == 0 or bool((counts < 0).any()):
        raise ShapeError(
            f"class_counts must be a non-empty 1-D array of non-negative counts, got shape "
            f"{tuple(counts.shape)}."
        )
    m = check_positive_int(depth, name="depth")
    lam_h = _positive_float(feature_decay, name="feature_decay")
    lam_w = _effective_weight_decay(weight_decay, m)
    n = (
        float(counts.sum())
        if n_samples is None
        else float(check_positive_int(n_samples, name="n_samples"))
    )
    c = n * lam_h
    if m == 1:
        x = (torch.sqrt(counts * lam_h / lam_w) - c).clamp(min=0.0)
        return x.sqrt()
    # x = s²: ψ(x) = log(n_k λ_H) + (M-1) log x - log λ_W - 2 log(x^M + Nλ_H) rises then falls,
    # with its peak at x* = ((M-1) Nλ_H / (M+1))^{1/M}; the largest root lies beyond x*.
    peak = ((m - 1) * c / (m + 1)) ** (1.0 / m)
    safe = counts.clamp(min=1e-300)

    def psi(x: Tensor) -> Tensor:
        return (
            torch.log(safe * lam_h)
            + (m - 1) * torch.log(x)
            - math.log(lam_w)
            - 2 * torch.log(x**m + c)
        )

    lo = torch.full_like(counts, peak)
    hi = torch.maximum(lo, (safe * lam_h / lam_w) ** (1.0 / (m + 1))) * 2.0 + 1.0
    has_root = (psi(lo) > 0) & (counts > 0)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        up = psi(mid) > 0
        lo = torch.where(up, mid, lo)
        hi = torch.where(up, hi, mid)
    x = 0.5 * (lo + hi)
    g_root = counts * lam_h / (2 * (x**m + c)) + m * lam_w * x / 2
    g_zero = counts / (2 * n)
    x = torch.where(has_root & (g_root < g_zero), x, torch.zeros_like(x))
    return x.sqrt()


def _normalized_distance(a: Tensor, target_diag: Tensor, *, what: str) -> Tensor:
    a_norm = torch.linalg.matrix_norm(a)
    t_norm = target_diag.norm()
    if float(a_norm) == 0.0:
        raise DegenerateInputError(f"{what} is zero, so its direction is undefined.")
    if float(t_norm) == 0.0:
        raise DegenerateInputError(
            f"the target of {what} is zero: every s_k is 0 (the regularization collapses all "
            "classes); lower feature_decay / weight_decay or pass scales=."
        )
    diff = a / a_norm
    diff = diff - torch.diag(target_diag / t_norm)
    return torch.linalg.matrix_norm(diff)


def orthogonal_frame_distances(
    x: Any,
    labels: Any,
    classifier: Any,
    *,
    num_classes: int | None = None,
    depth: int = 1,
    feature_decay: float = 5e-4,
    weight_decay: float | Sequence[float] = 5e-4,
    n_samples: int | None = None,
    class_counts: Any = None,
    scales: Any = None,
) -> OrthogonalFrameDistances:
    """Distances of W Wᵀ, H̄ᵀH̄ and W H̄ to the imbalanced orthogonal frame of Dang et al.

    "Neural Collapse in Deep Linear Networks: From Balanced to Imbalanced Data" (Dang, Tran,
    Osher, Tran-The, Ho & Nguyen 2023): with imbalanced classes, bias-free MSE and weight
    decay, the last-layer classifier rows and class means converge to orthogonal vectors
    whose lengths depend on the class sizes, W Wᵀ ∝ diag(s_k^{2M}), H̄ᵀH̄ ∝ diag(s_k^{2M} /
    (s_k^{2M} + Nλ_H)²), W H̄ ∝ diag(s_k^{2M} / (s_k^{2M} + Nλ_H)). Each observed C × C matrix A
    is compared with its target T after Frobenius normalization: ||A/||A||_F - T/||T||_F||_F,
    in [0, 2], 0 at the predicted geometry (any common scale of W, of H̄).

    H̄ holds the *uncentered* class means (bias-free model). For a deep linear head
    W_M⋯W_1, pass the product as ``classifier`` and the features entering W_1; for an
    ordinary last layer, depth = 1. Invariant to rotations of the features (W → W Qᵀ), to
    sample order and to class relabeling (with the classifier's rows); not to translation.

    Args:
        x: (n, d) features. labels: (n,) classes in [0, C).
        classifier: (C, d) W (the product of the linear layers for depth > 1).
        num_classes: C; default the classifier's rows. Every class needs a sample (checked
            before anything is sized by C).
        depth: M. feature_decay: λ_H. weight_decay: λ_W (or one per layer): the training
            run's regularization; the defaults (5e-4, a common weight decay) are a guess.
        n_samples: N, the training-set size; default Σ n_k.
        class_counts: (C,) training class sizes n_k; default the counts of ``labels``.
        scales: (C,) s_k to use directly instead of solving for them
            (:func:`orthogonal_frame_scales`).

    Returns:
        An :class:`OrthogonalFrameDistances`.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> w = 5.0 * torch.eye(3, 4, dtype=torch.float64)  # classifier rows (C, d)
        >>> labels = torch.arange(60) % 3
        >>> x = w[labels] + 0.1 * torch.randn(60, 4, generator=g, dtype=torch.float64)
        >>> from subspaces.geometry import orthogonal_frame_distances
        >>> dist = orthogonal_frame_distances(x, labels, w)
        >>> round(float(dist.classifier_gram), 4), round(float(dist.mean_gram), 4)
        (0.0, 0.0089)
    """
    _require_classifier(classifier, measure="orthogonal_frame_distances")
    x, y, w_opt, _, c = _prepare(x, labels, classifier, None, num_classes, min_samples=1)
    w = _require_classifier(w_opt, measure="orthogonal_frame_distances")
    counts = torch.bincount(y, minlength=c).to(_F64)  # every class populated: _prepare
    n_k = counts if class_counts is None else _as_vector(class_counts, name="class_counts")
    if n_k.shape != (c,):
        raise ShapeError(
            f"class_counts must have one entry per class ({c},), got shape {tuple(n_k.shape)}."
        )
    m = check_positive_int(depth, name="depth")
    lam_h = _positive_float(feature_decay, name="feature_decay")
    if n_samples is not None:
        n_total = float(check_positive_int(n_samples, name="n_samples"))
    else:
        n_total = float(n_k.to(_F64).sum())
    if scales is not None:
        s = _as_vector(scales, name="scales").to(_F64)
        if s.shape != (c,) or bool((s < 0).any()) or not bool(torch.isfinite(s).all()):
            raise ShapeError(
                f"scales must hold ({c},) finite non-negative values, got shape {tuple(s.shape)}."
            )
    else:
        s = orthogonal_frame_scales(
            n_k.detach().to(x.device),
            depth=m,
            feature_decay=lam_h,
            weight_decay=weight_decay,
            n_samples=n_samples,
        )
    s = s.to(x.device)
    sums = torch.zeros(c, x.shape[1], dtype=_F64, device=x.device)
    sums.index_add_(0, y, x.to(_F64))
    means = sums / counts[:, None]  # (C, d): H̄ᵀ
    w64 = w.to(_F64)
    a = s ** (2 * m)
    t_ww = a
    t_hh = a / (a + n_total * lam_h) ** 2
    t_wh = a / (a + n_total * lam_h)
    return OrthogonalFrameDistances(
        classifier_gram=_normalized_distance(w64 @ w64.T, t_ww, what="W Wᵀ"),
        mean_gram=_normalized_distance(means @ means.T, t_hh, what="H̄ᵀ H̄"),
        classifier_means=_normalized_distance(w64 @ means.T, t_wh, what="W H̄"),
        scales=s,
        target_classifier_gram=t_ww,
        target_mean_gram=t_hh,
        target_classifier_means=t_wh,
    )
