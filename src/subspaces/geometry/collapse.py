"""Neural collapse and the geometry of a classifier's last layer, exact and streaming.

Notation: features ``h_i`` are the rows of ``features`` (n × d), ``y_i`` their classes in
``0..C-1``, ``n_c`` the class sizes, ``N = Σ n_c``; ``μ_c`` the class means, ``μ_G`` the global
mean, ``M`` the d × C matrix of centered class means ``μ_c - μ_G`` (its transpose, C × d, is
what :attr:`NeuralCollapseResult.class_means` minus ``global_mean`` holds); the classifier
``W`` is C × d (rows ``w_c``, as in ``torch.nn.Linear(d, C).weight``) with optional bias
``b`` (C,); logits are ``W h + b``.

Measures of :func:`neural_collapse` (Papyan, Han & Donoho 2020, "Prevalence of neural
collapse during the terminal phase of deep learning training"):

* NC1 = Tr(Σ_W Σ_B⁺) / C with Σ_W = (1/N) Σ_i (h_i - μ_{y_i})(h_i - μ_{y_i})ᵀ (an average over
  all samples) and Σ_B = (1/C) Σ_c (μ_c - μ_G)(μ_c - μ_G)ᵀ (an average over classes).
  **Choices, where public copies differ.** (i) We keep the paper's 1/C, which makes NC1
  the average over classes that Papyan et al. define. Many public copies (the
  ``svds(Sb, k=C-1)`` recipe below) return ``np.trace(Sw @ inv_Sb)`` without it, i.e. C
  times our value; some divide by C. (ii) Σ_B⁺ is the Moore–Penrose pseudo-inverse on
  Σ_B's *numerical range*: eigenvalues above ``rtol · λ_max`` (default
  ``rtol = max(C, d) · eps(float64)``, the rank rule of ``numpy.linalg.matrix_rank``; Σ_B
  is formed in float64 from float64 class means, so float64 rounding is its only error).
  Many copies instead invert the top C - 1 eigenpairs of ``scipy.sparse.linalg.svds(Sb,
  k=C-1)``, which fails when d <= C - 1 (e.g. 1,000 classes in 512 dimensions, where the
  rank is at most d) and inverts rounding noise when the class means span fewer than C - 1
  directions; others use ``np.linalg.pinv`` with its default cut-off. On full-rank data
  all agree up to the 1/C. The rank used is reported as ``between_rank``.
  **μ_G** is by default the mean of the class means (``global_mean="classes"``), so that
  class means forming a simplex ETF are recognized as one whatever the class sizes; with
  ``global_mean="samples"`` it is the mean of all samples, Papyan et al.'s literal
  definition. The two coincide for balanced classes.
* The quotient Tr(Σ_W) / Tr(Σ_B), a scale-free within/between ratio without inverse.
* CDNV (Galanti, György & Hutter 2022, "On the role of neural collapse in transfer
  learning"): V(c, c') = (σ_c² + σ_c'²) / (2 ||μ_c - μ_c'||²), σ_c² = (1/n_c) Σ_{y_i=c}
  ||h_i - μ_c||² (the class's mean squared distance to its mean); reported as the mean over
  the C(C-1)/2 pairs, and optionally as the C × C matrix (zero diagonal).
* NC2 equinorm: Std_c ||μ_c - μ_G|| / Avg_c ||μ_c - μ_G|| (standard deviation with
  Bessel's correction, as ``torch.std``); equiangularity: Avg_{c≠c'} |cos(μ_c - μ_G,
  μ_c' - μ_G) + 1/(C-1)|; the same for the classifier rows ``w_c`` (not centered).
* Distance to a simplex ETF: || G/||G||_F - E/||E||_F ||_F with G = MᵀM (C × C Gram of the
  centered means) or G = W Wᵀ (classifier rows) and E = I - 11ᵀ/C: the simplex ETF
  sqrt(C/(C-1)) P (I - 11ᵀ/C) (P with orthonormal columns) has Gram C/(C-1) E. Zero exactly
  when the vectors form a simplex ETF of any scale and orientation (equal norms and
  cosines -1/(C-1)); in [0, 2].
* NC3 self-duality: || Wᵀ/||W||_F - M/||M||_F ||_F² (both d × C); in [0, 4], 0 when the
  classifier rows are the centered class means up to one positive scale.
* NC4: the fraction of samples whose network prediction argmax_c (W h + b)_c differs from
  the nearest-class-center prediction argmin_c ||h - μ_c||; in [0, 1].

Invariances: every measure is invariant to the order of the samples, to a relabeling of
the classes (with the classifier's rows and bias permuted alike), and to a rotation
``h → Q h`` of the features (with ``W → W Qᵀ``). All but NC4 are also invariant to a
positive rescaling and to a translation of the features (NC4 too when there is no bias,
for rescaling only).

The streaming class :class:`NeuralCollapse` keeps, in float64, per-class counts, sums and
sums of squared norms, and ONE d × d matrix Σ_i h_i h_iᵀ: memory O(C·d + d²) whatever n.
Rows are centered on a per-class shift (the class's mean in the first chunk where it
appears) before the product, which runs in the input dtype; the exact rank-one
corrections are added in float64, once, before the states are read or synced. So the
within-class scatter keeps its accuracy when features are collapsed (within-class
variation far below the means' norms: float32 features with a squared ratio of 1e10 give
NC1 to ~1e-6 relative), at the cost of one input-dtype product per chunk, as for a plain
Σ h hᵀ. :func:`neural_collapse` runs the same code on the whole data.

Also here: :func:`orthogonal_frame_distances` (imbalanced classes, Dang et al. 2023),
:func:`mixup_geometry` (Fisher et al. 2024) and :func:`classifier_geometry` /
:func:`compare_classifier_geometry` (the classification-loss geometry of "Understanding
Robustness Lottery", 2022).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

from subspaces._checks import (
    DegenerateInputError,
    DeviceMismatchError,
    InputTypeError,
    InvalidOptionError,
    ShapeError,
    TooFewSamplesError,
    as_float_tensor,
    check_choice,
    check_class_count,
    check_finite,
    check_fits_in_memory,
    check_flag,
    check_label_range,
    check_labels,
    check_matrix,
    check_optional_rtol,
    check_positive_int,
    check_positive_real,
    check_same_device,
    check_scalar_in_range,
)
from subspaces.linalg.decomp import psd_range
from subspaces.linalg.moments import DEFAULT_CHUNK_SIZE
from subspaces.linalg.scaling import ldexp, row_norms, scale_exponent, to_safe_range

__all__ = [
    "ClassifierGeometry",
    "ClassifierGeometryComparison",
    "MixupBinStats",
    "MixupGeometry",
    "NeuralCollapse",
    "NeuralCollapseResult",
    "OrthogonalFrameDistances",
    "classifier_geometry",
    "compare_classifier_geometry",
    "mixup_geometry",
    "neural_collapse",
    "orthogonal_frame_distances",
    "orthogonal_frame_scales",
]

_F64 = torch.float64
_GLOBAL_MEANS = ("classes", "samples")
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
    features: Any,
    labels: Any,
    classifier: Any,
    bias: Any,
    num_classes: Any,
    *,
    min_samples: int = 2,
    labels_name: str = "labels",
    every_class: bool = True,
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None, int]:
    x = check_matrix(features, name="features", min_samples=min_samples).detach()
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


# ---------------------------------------------------------------------------------------
# The streaming state and its update (one maths core for the function and the class)

_STATES = ("count", "class_sum", "class_sq", "scatter")
_PENDING = ("pending_shift", "pending_shift_set", "pending_count", "pending_rsum", "pending_rsq")


@dataclass
class _CollapseSums:
    """The sums :class:`NeuralCollapse` keeps, held in a plain object for the function.

    ``count`` (C,), ``class_sum`` (C, d), ``class_sq`` (C,) and ``scatter`` (d, d) are the
    float64 sums n_c, Σ h, Σ ||h||² and Σ h hᵀ once :func:`_collapse_flush` has run; the
    ``pending_*`` buffers hold what :func:`_collapse_update` added since, relative to a
    per-class shift.
    """

    count: Tensor
    class_sum: Tensor
    class_sq: Tensor
    scatter: Tensor
    pending_shift: Tensor
    pending_shift_set: Tensor
    pending_count: Tensor
    pending_rsum: Tensor
    pending_rsq: Tensor


def _zero_sums(num_classes: int, d: int, device: Any) -> _CollapseSums:
    def zeros(*shape: int, dtype: torch.dtype = _F64) -> Tensor:
        return torch.zeros(shape, dtype=dtype, device=device)

    return _CollapseSums(
        count=zeros(num_classes),
        class_sum=zeros(num_classes, d),
        class_sq=zeros(num_classes),
        scatter=zeros(d, d),
        pending_shift=zeros(num_classes, d),
        pending_shift_set=zeros(num_classes, dtype=torch.bool),
        pending_count=zeros(num_classes),
        pending_rsum=zeros(num_classes, d),
        pending_rsq=zeros(num_classes),
    )


def _collapse_update(state: Any, x: Tensor, labels: Tensor, *, chunk_size: int) -> None:
    """Add rows ``x`` of classes ``labels`` to ``state`` in place (then flush before use).

    Each class c gets a shift t_c, its mean in the first chunk where it appears (rounded to
    float32, so that it converts exactly to the data's dtype); rows are centered on it,
    r_i = h_i - t_{y_i}, and the chunk adds Σ r rᵀ (one product in x's dtype, so its
    rounding is relative to the within-class scatter, not to the class means) to
    ``scatter``, and n_c, s_c = Σ r_i and Σ ||r_i||² to the pending per-class buffers.
    :func:`_collapse_flush` later adds the exact rank-one terms in float64 (below).

    At extreme scales (float32 squares of 1e20 overflow, those of 1e-25 vanish) the chunk
    and its residuals are divided by exact powers of two before their sums and products,
    which are scaled back in float64 (nothing changes for ordinary data).
    """
    for start in range(0, x.shape[0], chunk_size):
        xb = x[start : start + chunk_size]
        yb = labels[start : start + chunk_size]
        classes, inverse, counts = torch.unique(yb, return_inverse=True, return_counts=True)
        k = classes.shape[0]
        fresh = ~state.pending_shift_set[classes]
        if bool(fresh.any()):
            scaled, e = to_safe_range(xb)
            means = _group_sum(scaled, inverse, k) / counts.to(xb.dtype)[:, None]
            new = classes[fresh]
            # rounded to float32 in range, then scaled back exactly
            state.pending_shift[new] = ldexp(means[fresh].to(torch.float32).to(_F64), e)
            state.pending_shift_set[new] = True
        residual, e = to_safe_range(xb - state.pending_shift[classes].to(xb.dtype)[inverse])
        state.scatter += ldexp((residual.T @ residual).to(_F64), 2 * e)
        # index_put_ with accumulate: much faster than index_add_ on CPU; classes are unique
        state.pending_count.index_put_((classes,), counts.to(_F64), accumulate=True)
        r_sum = ldexp(_group_sum(residual, inverse, k).to(_F64), e)
        state.pending_rsum.index_put_((classes,), r_sum, accumulate=True)
        r_sq = ldexp(_group_sum((residual * residual).sum(1), inverse, k).to(_F64), 2 * e)
        state.pending_rsq.index_put_((classes,), r_sq, accumulate=True)


def _collapse_flush(state: Any) -> None:
    """Turn the pending sums into raw sums, exactly: with t_c the shift, s_c = Σ r_i,

    Σ h hᵀ = Σ r rᵀ + Σ_c (t_c s_cᵀ + s_c t_cᵀ + n_c t_c t_cᵀ) = Σ r rᵀ + sym(Tᵀ(n T + 2 S)),
    Σ_{y_i=c} h_i = n_c t_c + s_c, Σ_{y_i=c} ||h_i||² = Σ ||r_i||² + 2 t_c·s_c + n_c ||t_c||²;

    one C × d × d product in float64 for the whole stream (not one per chunk). The shifts
    are then released: the next update picks new ones.
    """
    n = state.pending_count
    if not bool((n > 0).any()):
        return
    t, s_sum = state.pending_shift, state.pending_rsum
    n_col = n[:, None]
    cross = t.T @ (n_col * t + 2.0 * s_sum)
    state.scatter += 0.5 * (cross + cross.T)
    state.scatter.copy_(0.5 * (state.scatter + state.scatter.T))
    state.class_sum += n_col * t + s_sum
    state.class_sq += state.pending_rsq + 2.0 * (t * s_sum).sum(1) + n * (t * t).sum(1)
    state.count += n
    for name in _PENDING:
        getattr(state, name).zero_()


def _group_sum(values: Tensor, inverse: Tensor, groups: int) -> Tensor:
    """Σ of ``values`` rows per group ``inverse`` (groups × ...), in ``values``' dtype."""
    out = torch.zeros((groups, *values.shape[1:]), dtype=values.dtype, device=values.device)
    return out.index_put_((inverse,), values, accumulate=True)


# ---------------------------------------------------------------------------------------
# The maths core


@dataclass(frozen=True)
class NeuralCollapseResult:
    """The neural-collapse measures of one layer (see the module docstring for formulas).

    Scalars are 0-dim float64 tensors. Entries that need the classifier are ``None`` when
    none was given; ``nc4`` is also ``None`` after a single streaming pass (see
    :class:`NeuralCollapse`); ``cdnv_matrix`` only when requested.

    Attributes:
        nc1: Tr(Σ_W Σ_B⁺)/C (Papyan et al. 2020, with their 1/C), ≥ 0, 0 at collapse.
        trace_ratio: Tr(Σ_W)/Tr(Σ_B), ≥ 0.
        cdnv: mean over class pairs of (σ_c² + σ_c'²)/(2||μ_c - μ_c'||²) (Galanti et al.).
        equinorm_means: Std/Avg of ||μ_c - μ_G|| (NC2), ≥ 0.
        equiangularity_means: Avg_{c≠c'} |cos(μ_c - μ_G, μ_c' - μ_G) + 1/(C-1)| (NC2).
        etf_distance_means: ||MᵀM/||MᵀM||_F - E/||E||_F||_F, E the simplex-ETF Gram; in [0, 2].
        equinorm_classifier, equiangularity_classifier, etf_distance_classifier: the same
            for the classifier rows w_c (not centered).
        self_duality: NC3, ||Wᵀ/||W||_F - M/||M||_F||_F², in [0, 4].
        nc4: fraction of samples where argmax(W h + b) differs from the nearest class mean.
        cdnv_matrix: (C, C) pairwise CDNV, zero diagonal.
        class_means: (C, d) μ_c. global_mean: (d,) μ_G. class_counts: (C,) n_c.
        class_variances: (C,) σ_c², the mean squared distance to the class mean.
        between_rank: numerical rank of Σ_B, the number of directions Σ_B⁺ inverts.
        num_samples: N. num_classes: C.
    """

    nc1: Tensor
    trace_ratio: Tensor
    cdnv: Tensor
    equinorm_means: Tensor
    equiangularity_means: Tensor
    etf_distance_means: Tensor
    equinorm_classifier: Tensor | None
    equiangularity_classifier: Tensor | None
    etf_distance_classifier: Tensor | None
    self_duality: Tensor | None
    nc4: Tensor | None
    cdnv_matrix: Tensor | None
    class_means: Tensor
    global_mean: Tensor
    class_counts: Tensor
    class_variances: Tensor
    between_rank: int
    num_samples: int
    num_classes: int


def _check_class_counts(count: Tensor, *, minimum: int, what: str) -> None:
    short = (count < minimum).nonzero().flatten()
    if short.numel():
        shown = short[:10].tolist()
        counts = [round(float(count[i])) for i in shown]
        more = f" (and {short.numel() - len(shown)} more)" if short.numel() > len(shown) else ""
        raise TooFewSamplesError(
            f"classes {shown}{more} have {counts} samples, but {what} needs at least "
            f"{minimum} per class; drop those classes (and their classifier rows) or "
            "gather more samples."
        )


def _equinorm(norms: Tensor) -> Tensor:
    return norms.std() / norms.mean()


def _unit_rows(v: Tensor, *, what: str) -> tuple[Tensor, Tensor]:
    norms = v.norm(dim=1)
    scale = norms.max()
    zero = (norms <= 1e-12 * scale).nonzero().flatten() if float(scale) > 0 else None
    if zero is None or zero.numel():
        which = "all" if zero is None else str(zero[:10].tolist())
        raise DegenerateInputError(
            f"{what} {which} have zero norm, so their angles are undefined; check that the "
            "classes are separated (or that the classifier rows are non-zero)."
        )
    return v / norms[:, None], norms


def _gram_geometry(v: Tensor, *, what: str) -> tuple[Tensor, Tensor, Tensor]:
    """(equinorm, equiangularity, ETF distance) of the rows of ``v`` (C × d, float64).

    The C × C Gram is visited in row blocks (memory O(block · C)); ||VVᵀ||_F = ||VᵀV||_F
    comes from the d × d side.
    """
    c = v.shape[0]
    unit, norms = _unit_rows(v, what=what)
    gram_norm = torch.linalg.matrix_norm(v.T @ v) if v.shape[1] < c else None
    if gram_norm is None:
        gram_norm = torch.linalg.matrix_norm(v @ v.T)
    etf_norm = math.sqrt(c - 1.0)  # ||I - 11ᵀ/C||_F
    off = 1.0 / (c - 1.0)
    angular = torch.zeros((), dtype=_F64, device=v.device)
    etf_sq = torch.zeros((), dtype=_F64, device=v.device)
    rows = _block_rows(c)
    for start in range(0, c, rows):
        stop = min(start + rows, c)
        cos = unit[start:stop] @ unit.T
        gram = v[start:stop] @ v.T
        target = torch.full_like(gram, -1.0 / c)
        idx = torch.arange(start, stop, device=v.device)
        target[idx - start, idx] += 1.0
        etf_sq += ((gram / gram_norm - target / etf_norm) ** 2).sum()
        dev = (cos + off).abs()
        dev[idx - start, idx] = 0.0
        angular += dev.sum()
    return _equinorm(norms), angular / (c * (c - 1.0)), etf_sq.clamp(min=0.0).sqrt()


def _between_range(centered: Tensor, rtol: float | None) -> tuple[Tensor, Tensor]:
    """Eigenpairs of Σ_B = MᵀM... on its numerical range: ((r,), (d, r)), via the smaller side."""
    c, d = centered.shape
    tol = rtol if rtol is not None else max(c, d) * float(torch.finfo(_F64).eps)
    if c <= d:
        evals, vecs = psd_range(centered @ centered.T / c, rtol=tol)
        basis = centered.T @ vecs / torch.sqrt(c * evals)[None, :]
        return evals, basis
    return psd_range(centered.T @ centered / c, rtol=tol)


def _pairwise_cdnv(
    centered: Tensor, variances: Tensor, *, want_matrix: bool
) -> tuple[Tensor, Tensor | None]:
    c = centered.shape[0]
    sq = (centered * centered).sum(1)
    total = torch.zeros((), dtype=_F64, device=centered.device)
    matrix = torch.zeros(c, c, dtype=_F64, device=centered.device) if want_matrix else None
    rows = _block_rows(c)
    for start in range(0, c, rows):
        stop = min(start + rows, c)
        scale = sq[start:stop, None] + sq[None, :]
        dist2 = (scale - 2.0 * centered[start:stop] @ centered.T).clamp(min=0.0)
        idx = torch.arange(start, stop, device=centered.device)
        tied_mask = dist2 <= 1e-12 * scale
        tied_mask[idx - start, idx] = False
        dist2[idx - start, idx] = 1.0  # the diagonal is set to 0 below
        tied = tied_mask.nonzero()
        if tied.numel():
            i, j = int(tied[0, 0]) + start, int(tied[0, 1])
            raise DegenerateInputError(
                f"classes {i} and {j} have the same mean, so their CDNV (which divides by "
                "the squared distance between class means) is undefined; merge or drop one."
            )
        value = (variances[start:stop, None] + variances[None, :]) / (2.0 * dist2)
        value[idx - start, idx] = 0.0
        total += value.sum()
        if matrix is not None:
            matrix[start:stop] = value
    return total / (c * (c - 1.0)), matrix


def _collapse_compute(
    state: Any,
    *,
    classifier: Tensor | None,
    global_mean: str,
    rtol: float | None,
    cdnv_matrix: bool,
    nc4: Tensor | None,
) -> NeuralCollapseResult:
    count = cast(Tensor, state.count)
    c = count.shape[0]
    _check_class_counts(count, minimum=2, what="within-class variability (NC1, CDNV)")
    n_total = count.sum()
    means = state.class_sum / count[:, None]
    mu_g = means.mean(0) if global_mean == "classes" else state.class_sum.sum(0) / n_total
    centered = means - mu_g
    variances = (state.class_sq / count - (means * means).sum(1)).clamp(min=0.0)
    trace_w = (variances * count).sum() / n_total
    trace_b = (centered * centered).sum() / c
    if float(trace_b) <= 1e-15 * float((means * means).sum() / c):
        raise DegenerateInputError(
            "every class has the same mean feature (the between-class covariance is zero), "
            "so NC1 and the other collapse measures are undefined; check the features and labels."
        )
    within = (state.scatter - (means * count[:, None]).T @ means) / n_total
    within = 0.5 * (within + within.T)
    evals, basis = _between_range(centered, rtol)
    # Σ_W is PSD; rounding of S - Σ n μ μᵀ can leave it a hair indefinite at exact collapse
    nc1 = ((((within @ basis) * basis).sum(0) / evals).sum() / c).clamp(min=0.0)
    cdnv, cdnv_mat = _pairwise_cdnv(centered, variances, want_matrix=cdnv_matrix)
    eqn_m, eqa_m, etf_m = _gram_geometry(centered, what="centered class means of classes")
    eqn_w = eqa_w = etf_w = nc3 = None
    if classifier is not None:
        w = classifier.to(_F64)
        eqn_w, eqa_w, etf_w = _gram_geometry(w, what="classifier rows")
        nc3 = ((w / w.norm() - centered / centered.norm()) ** 2).sum()
    return NeuralCollapseResult(
        nc1=nc1,
        trace_ratio=trace_w / trace_b,
        cdnv=cdnv,
        equinorm_means=eqn_m,
        equiangularity_means=eqa_m,
        etf_distance_means=etf_m,
        equinorm_classifier=eqn_w,
        equiangularity_classifier=eqa_w,
        etf_distance_classifier=etf_w,
        self_duality=nc3,
        nc4=nc4,
        cdnv_matrix=cdnv_mat,
        class_means=means,
        global_mean=mu_g,
        class_counts=count.clone(),
        class_variances=variances,
        between_rank=int(evals.shape[0]),
        num_samples=round(float(n_total)),
        num_classes=c,
    )


def _nc4_mismatches(
    x: Tensor, means: Tensor, mu_g: Tensor, classifier: Tensor, bias: Tensor | None
) -> Tensor:
    """Count of rows where argmax(W h + b) differs from argmin_c ||h - μ_c|| (int64, 0-dim).

    Products in the wider of the features' and classifier's dtypes (at least float32), as
    the network computes its logits; the nearest-center rule uses ||μ_c - μ_G||² - 2 (h -
    μ_G)·(μ_c - μ_G), i.e. distances after a common shift by μ_G.
    """
    dtype = _compute_dtype(x, classifier)
    w = classifier.to(dtype)
    b = None if bias is None else bias.to(dtype)
    # the nearest-center rule does not depend on the scale: it runs on the features divided
    # by an exact power of two that keeps its squares in range (0 for ordinary data)
    e = scale_exponent(x)
    centers = ldexp(means - mu_g, -e).to(dtype)
    shift = ldexp(mu_g, -e).to(dtype)
    sq = (centers * centers).sum(1)
    mismatched = torch.zeros((), dtype=torch.int64, device=x.device)
    rows = _block_rows(means.shape[0])
    for start in range(0, x.shape[0], rows):
        xb = x[start : start + rows].to(dtype)
        logits = xb @ w.T
        if b is not None:
            logits = logits + b
        nearest = (sq[None, :] - 2.0 * (ldexp(xb, -e) - shift) @ centers.T).argmin(1)
        mismatched += (logits.argmax(1) != nearest).sum()
    return mismatched


def neural_collapse(
    features: Any,
    labels: Any,
    *,
    classifier: Any = None,
    bias: Any = None,
    num_classes: int | None = None,
    global_mean: str = "classes",
    rtol: float | None = None,
    cdnv_matrix: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> NeuralCollapseResult:
    """Neural-collapse measures NC1-NC4, CDNV and distances to a simplex ETF of one layer.

    NC1 = Tr(Σ_W Σ_B⁺)/C and Tr(Σ_W)/Tr(Σ_B); CDNV = mean over pairs of (σ_c² + σ_c'²) /
    (2||μ_c - μ_c'||²); NC2 equinorm Std/Avg ||μ_c - μ_G|| and equiangularity Avg |cos +
    1/(C-1)| for class means and classifier rows; the ETF distance of their Grams; NC3
    ||Wᵀ/||W||_F - M/||M||_F||_F²; NC4 the disagreement of argmax(Wh + b) with the nearest
    class mean. Papyan, Han & Donoho (2020); CDNV Galanti et al. (2022). The normalizations,
    and which of the public variants (1/C, pseudo-inverse rank, μ_G) we follow and why, are
    in the module docstring of :mod:`subspaces.geometry.collapse`.

    Invariant to sample order, class relabeling (permute the classifier's rows and bias
    alike) and rotations of the features (with W → W Qᵀ); all but NC4 to positive scaling
    and translation of the features (NC4 to scaling when there is no bias). All are ≥ 0,
    and 0 at exact collapse onto a simplex ETF with a self-dual classifier.

    Within-class scatter accumulates in float64 from class-centered products (exact to
    float64 rounding of the class-mean terms, input-dtype rounding of the within-class
    part); work O(n d² + C d² + C² d) plus O(n C d) for NC4, memory O(C d + d²) plus
    blocks of at most 4M entries for the C × C and n × C products.

    Args:
        features: (n, d) representation, e.g. penultimate-layer activations.
        labels: (n,) integer classes in [0, C).
        classifier: (C, d) last-layer weight W (``nn.Linear(d, C).weight``); enables the
            classifier's NC2, NC3 and NC4.
        bias: (C,) last-layer bias b (used by NC4 only).
        num_classes: C; default the classifier's rows, else ``max(labels) + 1``. Every class
            needs at least 2 samples; C is checked against the labels before anything is
            sized by it, so an empty class (e.g. one stray label of 10**9, or C > n) is
            refused at once.
        global_mean: ``"classes"`` (μ_G = mean of class means, default) or ``"samples"``
            (mean of all samples); identical for balanced classes.
        rtol: relative eigenvalue cut-off of Σ_B⁺; default ``max(C, d) · eps(float64)``.
        cdnv_matrix: also return the (C, C) matrix of pairwise CDNV.
        chunk_size: rows per input-dtype product.

    Returns:
        A :class:`NeuralCollapseResult`.

    Raises:
        ShapeError: labels not matching n or out of [0, C) (negative labels included);
            classifier not (C, d); bias not (C,).
        TooFewSamplesError: fewer than 2 classes, a class 0..C-1 without samples (raised
            before any (C, d) buffer exists) or with fewer than 2 samples.
        DegenerateInputError: all class means equal, two equal class means (CDNV), a class
            mean at the global mean or a zero classifier row (angles undefined).
    """
    x, y, w, b, c = _prepare(features, labels, classifier, bias, num_classes)
    global_mean = check_choice(global_mean, name="global_mean", choices=_GLOBAL_MEANS)
    cdnv_matrix = check_flag(cdnv_matrix, name="cdnv_matrix")
    rtol = check_optional_rtol(rtol)
    chunk_size = check_positive_int(chunk_size, name="chunk_size")
    state = _zero_sums(c, x.shape[1], x.device)
    _collapse_update(state, x, y, chunk_size=chunk_size)
    _collapse_flush(state)
    result = _collapse_compute(
        state, classifier=w, global_mean=global_mean, rtol=rtol, cdnv_matrix=cdnv_matrix, nc4=None
    )
    if w is None:
        return result
    mismatched = _nc4_mismatches(x, result.class_means, result.global_mean, w, b)
    nc4 = mismatched.to(_F64) / x.shape[0]
    return _replace_nc4(result, nc4)


def _replace_nc4(result: NeuralCollapseResult, nc4: Tensor) -> NeuralCollapseResult:
    fields = {name: getattr(result, name) for name in result.__dataclass_fields__}
    fields["nc4"] = nc4
    return NeuralCollapseResult(**fields)


# ---------------------------------------------------------------------------------------
# The streaming class


class NeuralCollapse(Metric):
    """Streaming neural-collapse measures: the :func:`neural_collapse` of all batches seen.

    States (float64, summed across ``torch.distributed`` ranks): per-class counts (C,),
    sums (C, d) and sums of squared norms (C,), one d × d matrix Σ_i h_i h_iᵀ, and two NC4
    counters; plus per-rank pending buffers (per-class shifts and sums relative to them,
    (C, d) and (C,)) that :meth:`sync` — hence ``compute()`` — flushes into the states first.
    Memory O(C·d + d²) — 1,000 classes × 512 dims is 10 MB — whatever the number of
    samples. ``compute()`` equals the function on the concatenated batches, for any split.

    NC4 compares each sample's prediction with its nearest class mean, so it needs the
    means first: a second pass. ``compute()`` after the first pass returns ``nc4=None``;
    then call :meth:`update_nc4` on the same data (its first call fixes the class means
    from everything seen, synced across ranks: under ``torch.distributed`` every rank must
    call it, like ``compute()``), and ``compute()`` again. Calling :meth:`update` after
    :meth:`update_nc4` starts a new first pass and clears the NC4 counters.

    Calling the metric (``forward``) only updates it and returns ``None``: a batch's own
    collapse measures are not meaningful (classes missing, too few samples).

    Args:
        num_classes: C, honored as given: a batch (or a rank) may lack classes that other
            batches bring; ``compute()`` needs every class with 2 samples. A C whose states
            exceed the device's memory is refused (:class:`InvalidOptionError`).
        num_features: d; default the classifier's columns (one of the two is needed).
        classifier: (C, d) last-layer weight, for the classifier's NC2, NC3 and NC4.
        bias: (C,) last-layer bias (NC4).
        global_mean, rtol, cdnv_matrix, chunk_size: as in :func:`neural_collapse`.

    Example:
        >>> metric = NeuralCollapse(10, classifier=model.fc.weight)   # doctest: +SKIP
        >>> for h, y in loader: metric.update(h, y)                    # doctest: +SKIP
        >>> first = metric.compute()                                   # doctest: +SKIP
        >>> for h, _ in loader: metric.update_nc4(h)                   # doctest: +SKIP
        >>> metric.compute().nc4                                       # doctest: +SKIP
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better: bool | None = None

    def __init__(
        self,
        num_classes: int,
        num_features: int | None = None,
        *,
        classifier: Any = None,
        bias: Any = None,
        global_mean: str = "classes",
        rtol: float | None = None,
        cdnv_matrix: bool = False,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        c = _check_num_classes(num_classes)
        w = (
            None
            if classifier is None
            else check_matrix(classifier, name="classifier", min_samples=1)
        )
        if num_features is None:
            if w is None:
                raise InvalidOptionError(
                    "NeuralCollapse needs num_features (d) or a classifier (C, d) to size its "
                    "states; pass num_features=features.shape[1]."
                )
            num_features = w.shape[1]
        d = check_positive_int(num_features, name="num_features")
        device = None if w is None else w.device
        if w is not None:
            w = _check_classifier(w, c, d, device).detach()
        b = None if bias is None else _check_bias(bias, c, device).detach()
        if b is not None and w is None:
            raise InvalidOptionError("bias was given without classifier; pass classifier=W too.")
        self.num_classes = c
        self.num_features = d
        self.global_mean = check_choice(global_mean, name="global_mean", choices=_GLOBAL_MEANS)
        self.rtol = check_optional_rtol(rtol)
        self.cdnv_matrix = check_flag(cdnv_matrix, name="cdnv_matrix")
        self.chunk_size = check_positive_int(chunk_size, name="chunk_size")
        self.register_buffer("classifier", w, persistent=False)
        self.register_buffer("bias", b, persistent=False)
        self.register_buffer("_nc4_means", None, persistent=False)
        self.register_buffer("_nc4_global", None, persistent=False)
        per_class, shared = 3 * c * d + 5 * c, d * d
        check_fits_in_memory(
            per_class + shared,
            dtype=_F64,
            device=device,
            name="num_classes" if per_class >= shared else "num_features",
            value=c if per_class >= shared else d,
            what=f"the float64 states of NeuralCollapse (three (C, d) = ({c}, {d}) and one "
            "(d, d) matrices)",
        )
        zeros = _zero_sums(c, d, device)
        for name in _STATES:
            self.add_state(name, default=getattr(zeros, name), dist_reduce_fx="sum")
        for name in _PENDING:  # per-rank work in progress, flushed into the states by sync()
            self.register_buffer(name, getattr(zeros, name), persistent=False)
        for name in ("nc4_mismatch", "nc4_count"):
            default = torch.zeros((), dtype=_F64, device=device)
            self.add_state(name, default=default, dist_reduce_fx="sum")

    def _tensor(self, name: str) -> Tensor:
        return cast(Tensor, getattr(self, name))

    def _optional(self, name: str) -> Tensor | None:
        return cast("Tensor | None", getattr(self, name))

    def _set_frozen_means(self, means: Tensor | None, mu_g: Tensor | None) -> None:
        setattr(self, "_nc4_means", means)  # noqa: B010 - registered buffers
        setattr(self, "_nc4_global", mu_g)  # noqa: B010

    def _check_batch(self, features: Any) -> Tensor:
        x = check_matrix(features, name="features", min_samples=1)
        if x.shape[1] != self.num_features:
            raise ShapeError(
                f"features have {x.shape[1]} columns (shape {tuple(x.shape)}) but this "
                f"NeuralCollapse was built for num_features={self.num_features}; every batch "
                "must come from the same layer."
            )
        state_device = self._tensor("scatter").device
        if x.device != state_device:
            raise DeviceMismatchError(
                f"features are on {x.device} but the metric's states are on {state_device}; "
                "move the metric with metric.to(features.device)."
            )
        return x

    def update(self, features: Any, labels: Any) -> None:
        """Add a batch: ``features`` (m, d) and their classes ``labels`` (m,) in [0, C)."""
        x = self._check_batch(features)
        y = check_labels(labels, x.shape[0], device=x.device)
        check_label_range(y, self.num_classes)
        if self._optional("_nc4_means") is not None:
            self._clear_nc4()
        _collapse_update(self, x, y, chunk_size=self.chunk_size)

    def _clear_nc4(self) -> None:
        self._set_frozen_means(None, None)
        self.nc4_mismatch = torch.zeros_like(self._tensor("nc4_mismatch"))
        self.nc4_count = torch.zeros_like(self._tensor("nc4_count"))

    def update_nc4(self, features: Any) -> None:
        """Second pass: count the samples where the classifier and the nearest class mean
        disagree (NC4). The class means are those of every :meth:`update` so far."""
        classifier = self._optional("classifier")
        if classifier is None:
            raise InvalidOptionError(
                "NC4 needs the classifier: build NeuralCollapse(..., classifier=W, bias=b)."
            )
        x = self._check_batch(features)
        means, mu_g = self._optional("_nc4_means"), self._optional("_nc4_global")
        if means is None or mu_g is None:
            with self.sync_context(
                dist_sync_fn=self.dist_sync_fn, should_sync=self._to_sync, should_unsync=True
            ):
                count = self._tensor("count")
                _check_class_counts(count, minimum=1, what="NC4 (class means)")
                class_sum = self._tensor("class_sum")
                means = class_sum / count[:, None]
                if self.global_mean == "classes":
                    mu_g = means.mean(0)
                else:
                    mu_g = class_sum.sum(0) / count.sum()
            self._set_frozen_means(means, mu_g)
        mismatched = _nc4_mismatches(x, means, mu_g, classifier, self._optional("bias"))
        self.nc4_mismatch = self._tensor("nc4_mismatch") + mismatched.to(_F64)
        self.nc4_count = self._tensor("nc4_count") + float(x.shape[0])

    def compute(self) -> NeuralCollapseResult:
        """The collapse measures of every sample seen (``nc4`` after :meth:`update_nc4`)."""
        seen = float(self._tensor("nc4_count"))
        nc4 = self._tensor("nc4_mismatch") / seen if seen > 0 else None
        return _collapse_compute(
            self,
            classifier=self._optional("classifier"),
            global_mean=self.global_mean,
            rtol=self.rtol,
            cdnv_matrix=self.cdnv_matrix,
            nc4=nc4,
        )

    def forward(self, *args: Any, **kwargs: Any) -> None:
        """Update with a batch (as :meth:`update`); returns ``None``."""
        self.update(*args, **kwargs)

    def reset(self) -> None:
        """Forget every sample (both passes)."""
        super().reset()
        self._set_frozen_means(None, None)
        for name in _PENDING:
            self._tensor(name).zero_()

    def sync(self, *args: Any, **kwargs: Any) -> None:
        """Flush this rank's pending sums into the states, then sync them (torchmetrics)."""
        _collapse_flush(self)
        super().sync(*args, **kwargs)

    def merge_state(self, incoming_state: Any) -> None:
        """Merge another :class:`NeuralCollapse`'s (or a state dict's) samples into this one."""
        _collapse_flush(self)
        if isinstance(incoming_state, NeuralCollapse):
            _collapse_flush(incoming_state)
        super().merge_state(incoming_state)

    def _wrap_compute(self, compute: Callable[..., Any]) -> Callable[..., Any]:
        # torchmetrics' wrapper clones results through apply_to_collection, which refuses
        # frozen dataclasses, and caches them; here: sync, compute, unsync, no cache.
        @functools.wraps(compute)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with self.sync_context(
                dist_sync_fn=self.dist_sync_fn,
                should_sync=self._to_sync,
                should_unsync=self._should_unsync,
            ):
                return compute(*args, **kwargs)

        return wrapped


# ---------------------------------------------------------------------------------------
# Imbalanced classes: the orthogonal frame of Dang et al. (2023)


@dataclass(frozen=True)
class OrthogonalFrameDistances:
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
    features: Any,
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
        features: (n, d) features. labels: (n,) classes in [0, C).
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
    """
    _require_classifier(classifier, measure="orthogonal_frame_distances")
    x, y, w_opt, _, c = _prepare(features, labels, classifier, None, num_classes, min_samples=1)
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


# ---------------------------------------------------------------------------------------
# Mixup geometry (Fisher et al. 2024)


@dataclass(frozen=True)
class MixupBinStats:
    """Per-bin means over mixed samples of one kind (same-class or different-class pairs).

    Each attribute is a (B,) float64 tensor over the λ bins; a bin with no sample has
    ``count`` 0 and NaN statistics.

    Attributes:
        count: samples in the bin. lam: their mean λ.
        cos_a, cos_b: mean cosine of the feature with w_a, w_b.
        margin: mean signed distance to the decision boundary (see :class:`MixupGeometry`).
        margin_std: its standard deviation (population, 0 for one sample).
        abs_margin: mean |margin|.
        prob_a, prob_b: mean softmax probability of classes a and b (calibration: mixup
            trains them towards λ and 1 - λ).
        in_pair: fraction predicted as a or b.
    """

    count: Tensor
    lam: Tensor
    cos_a: Tensor
    cos_b: Tensor
    margin: Tensor
    margin_std: Tensor
    abs_margin: Tensor
    prob_a: Tensor
    prob_b: Tensor
    in_pair: Tensor


@dataclass(frozen=True)
class MixupGeometry:
    """Last-layer geometry of mixed-up samples, split by pair kind and by λ bin.

    A sample is the feature h of the input λ x_a + (1 - λ) x_b (label λ e_a + (1 - λ) e_b).
    ``margin`` is a signed Euclidean distance to a decision boundary, positive on class a's
    side: for a ≠ b, to the a|b boundary, ((w_a - w_b)·h + b_a - b_b)/||w_a - w_b||; for
    a = b, to the nearest boundary of class a's region, min_{c≠a} ((w_a - w_c)·h + b_a -
    b_c)/||w_a - w_c||. Fisher et al. find same-class mixups aligned with w_a (large cos_a,
    margin > 0) and different-class mixups on "channels" along the a|b boundary, their
    margin moving with λ.

    Attributes:
        bin_edges: (B + 1,) λ bin edges; bin i is [e_i, e_{i+1}), the last one closed.
        same, different: :class:`MixupBinStats` of same-class and different-class pairs.
        same_class: (n,) bool. bin_index: (n,) int64.
        cos_a, cos_b, margin, prob_a, prob_b: (n,) per-sample values (float64).
    """

    bin_edges: Tensor
    same: MixupBinStats
    different: MixupBinStats
    same_class: Tensor
    bin_index: Tensor
    cos_a: Tensor
    cos_b: Tensor
    margin: Tensor
    prob_a: Tensor
    prob_b: Tensor


_BIN_VECTORS = 40  # (B,) float64 vectors held for B bins: edges, 2 kinds × counts, means


def _bin_edges(bins: Any, device: Any) -> Tensor:
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        count = check_positive_int(bins, name="bins")
        check_fits_in_memory(
            _BIN_VECTORS * count,
            dtype=_F64,
            device=device,
            name="bins",
            value=count,
            what="the λ bins and their statistics",
        )
        return torch.linspace(0.0, 1.0, count + 1, dtype=_F64, device=device)
    edges = _as_vector(bins, name="bins").to(_F64).to(device)
    if edges.ndim != 1 or edges.numel() < 2 or bool((edges[1:] <= edges[:-1]).any()):
        raise InvalidOptionError(
            f"bins must be a positive integer or an increasing 1-D array of at least 2 edges, "
            f"got {tuple(edges.shape)} values."
        )
    return edges


def _bin_stats(values: dict[str, Tensor], index: Tensor, mask: Tensor, nbins: int) -> MixupBinStats:
    idx = index[mask]
    count = torch.bincount(idx, minlength=nbins).to(_F64)

    def mean_of(v: Tensor) -> Tensor:
        total = torch.zeros(nbins, dtype=_F64, device=v.device).index_add_(0, idx, v[mask])
        return total / count  # NaN for an empty bin (0 / 0), documented

    margin = mean_of(values["margin"])
    second = mean_of(values["margin"] ** 2)
    return MixupBinStats(
        count=count,
        lam=mean_of(values["lam"]),
        cos_a=mean_of(values["cos_a"]),
        cos_b=mean_of(values["cos_b"]),
        margin=margin,
        margin_std=(second - margin**2).clamp(min=0.0).sqrt(),
        abs_margin=mean_of(values["margin"].abs()),
        prob_a=mean_of(values["prob_a"]),
        prob_b=mean_of(values["prob_b"]),
        in_pair=mean_of(values["in_pair"]),
    )


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


def _row_distances(w: Tensor) -> Tensor:
    """(C, C) float64 distances ||w_a - w_c|| between classifier rows; distinct rows required."""
    w64 = w.to(_F64)
    sq = (w64 * w64).sum(1)
    scale = sq[:, None] + sq[None, :]
    dist2 = (scale - 2.0 * w64 @ w64.T).clamp(min=0.0)
    tied = dist2 <= 1e-12 * scale
    tied.fill_diagonal_(False)
    if bool(tied.any()):
        i, j = (int(v) for v in tied.nonzero()[0])
        raise DegenerateInputError(
            f"classifier rows {i} and {j} are identical, so the decision boundary between "
            f"classes {i} and {j} is undefined; check the classifier."
        )
    return dist2.sqrt()


def mixup_geometry(
    features: Any,
    labels_a: Any,
    labels_b: Any,
    lam: Any,
    classifier: Any,
    *,
    bias: Any = None,
    bins: int | Sequence[float] = 10,
) -> MixupGeometry:
    """How mixed-up samples sit relative to the classifier (Fisher, Meng & Papyan 2024).

    "Pushing Boundaries: Mixup's Influence on Neural Collapse": for the features h of
    inputs λ x_a + (1 - λ) x_b, split by same-class (a = b) and different-class pairs and by
    λ (binned), the mean cosine of h with the classifier rows w_a and w_b, the signed
    distance of h to the decision boundary (see :class:`MixupGeometry`), the softmax
    probabilities of a and b and how often the prediction is a or b. Per-sample values
    are returned too, for plots.

    Invariant to rotations of the features (W → W Qᵀ) and to class relabeling; the cosines
    to isotropic scaling. Swapping (a, b, λ) for (b, a, 1 - λ) describes the same sample:
    canonicalise beforehand if you want λ ≥ 1/2 only.

    Args:
        features: (n, d) features of the mixed inputs.
        labels_a, labels_b: (n,) the two classes of each mix, in [0, C).
        lam: the weight of ``labels_a``: a number for all samples or (n,) values in [0, 1].
        classifier: (C, d) last-layer weight W. bias: (C,) its bias.
        bins: number of equal-width λ bins on [0, 1], or increasing bin edges.

    Returns:
        A :class:`MixupGeometry`.
    """
    _require_classifier(classifier, measure="mixup_geometry")
    x, ya, w_opt, b, c = _prepare(
        features,
        labels_a,
        classifier,
        bias,
        None,
        min_samples=1,
        labels_name="labels_a",
        every_class=False,
    )
    w = _require_classifier(w_opt, measure="mixup_geometry")
    yb = check_labels(labels_b, x.shape[0], name="labels_b", device=x.device)
    check_label_range(yb, c, name="labels_b")
    if isinstance(lam, Tensor) and lam.ndim == 0:
        lam = float(lam)
    if isinstance(lam, (int, float, np.floating, np.integer)) and not isinstance(lam, bool):
        weight = torch.full(
            (x.shape[0],),
            check_scalar_in_range(lam, name="lam", low=0.0, high=1.0),
            dtype=_F64,
            device=x.device,
        )
    else:
        weight = as_float_tensor(lam, name="lam").to(_F64)
        if weight.shape != (x.shape[0],):
            raise ShapeError(
                f"lam must be a number or hold one weight per sample ({x.shape[0]},), got "
                f"shape {tuple(weight.shape)}."
            )
        check_same_device(x, weight, names=("features", "lam"))
        check_finite(weight, name="lam")
        if bool(((weight < 0) | (weight > 1)).any()):
            raise InvalidOptionError(
                f"lam must lie in [0, 1], got values from {float(weight.min())} to "
                f"{float(weight.max())}."
            )
    edges = _bin_edges(bins, x.device)
    if bool(((weight < edges[0]) | (weight > edges[-1])).any()):
        raise InvalidOptionError(
            f"some lam values lie outside the bins [{float(edges[0])}, {float(edges[-1])}]; "
            "widen the bin edges."
        )
    nbins = edges.numel() - 1
    index = (torch.bucketize(weight, edges, right=True) - 1).clamp(0, nbins - 1)

    dtype = _compute_dtype(x, w, b)
    wf = w.to(dtype)
    bf = None if b is None else b.to(dtype)
    row_norms = _check_nonzero_rows(wf, what="classifier rows", fix="check the classifier.")
    feat_norms = _check_nonzero_rows(
        x.to(dtype), what="feature rows", fix="drop those samples (e.g. dead units everywhere)."
    )
    pair_dist = _row_distances(w)
    same = ya == yb
    n = x.shape[0]
    names = ("cos_a", "cos_b", "margin", "prob_a", "prob_b", "in_pair")
    out = {k: torch.empty(n, dtype=_F64, device=x.device) for k in names}
    rows = _block_rows(c)
    for start in range(0, n, rows):
        sl = slice(start, min(start + rows, n))
        xb = x[sl].to(dtype)
        a, bb = ya[sl], yb[sl]
        logits = xb @ wf.T
        if bf is not None:
            logits = logits + bf
        logits64 = logits.to(_F64)
        log_p = torch.log_softmax(logits, dim=1)
        out["prob_a"][sl] = log_p.gather(1, a[:, None]).squeeze(1).exp().to(_F64)
        out["prob_b"][sl] = log_p.gather(1, bb[:, None]).squeeze(1).exp().to(_F64)
        norm_h = feat_norms[sl]
        out["cos_a"][sl] = ((xb * wf[a]).sum(1) / (norm_h * row_norms[a])).to(_F64)
        out["cos_b"][sl] = ((xb * wf[bb]).sum(1) / (norm_h * row_norms[bb])).to(_F64)
        pred = logits.argmax(1)
        out["in_pair"][sl] = ((pred == a) | (pred == bb)).to(_F64)
        # signed distances to every boundary of class a: (z_a - z_c) / ||w_a - w_c||
        za = logits64.gather(1, a[:, None])
        dist = pair_dist[a]
        dist.scatter_(1, a[:, None], 1.0)
        to_boundary = (za - logits64) / dist
        to_pair = to_boundary.gather(1, bb[:, None]).squeeze(1)
        to_boundary.scatter_(1, a[:, None], math.inf)
        nearest = to_boundary.min(1).values
        out["margin"][sl] = torch.where(same[sl], nearest, to_pair)
    values = dict(out)
    values["lam"] = weight
    return MixupGeometry(
        bin_edges=edges,
        same=_bin_stats(values, index, same, nbins),
        different=_bin_stats(values, index, ~same, nbins),
        same_class=same,
        bin_index=index,
        cos_a=out["cos_a"],
        cos_b=out["cos_b"],
        margin=out["margin"],
        prob_a=out["prob_a"],
        prob_b=out["prob_b"],
    )


# ---------------------------------------------------------------------------------------
# Classification-loss geometry ("Understanding Robustness Lottery", 2022)


@dataclass(frozen=True)
class ClassifierGeometry:
    """The factors of each sample's logits, z_c = ||w_c|| ||h|| cos θ_c + b_c.

    Attributes:
        feature_norm: (n,) ||h||. row_norms: (C,) ||w_c||.
        cos_true: (n,) cos θ_y between h and its class's row w_y.
        logit_true: (n,) z_y. margin: (n,) z_y - max_{c≠y} z_c (> 0 iff correct, ties aside).
        predicted: (n,) argmax_c z_c. correct: (n,) bool. labels: (n,) y.
        accuracy, mean_feature_norm, mean_cos_true, mean_margin, median_margin,
        mean_row_norm: 0-dim summaries.
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
    features: Any, labels: Any, classifier: Any, *, bias: Any = None
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
        features: (n, d) penultimate features. labels: (n,) classes in [0, C).
        classifier: (C, d) last-layer weight. bias: (C,) last-layer bias.

    Returns:
        A :class:`ClassifierGeometry` (per-sample values and summaries, float64).
    """
    _require_classifier(classifier, measure="classifier_geometry")
    x, y, w_opt, b, c = _prepare(
        features, labels, classifier, bias, None, min_samples=1, every_class=False
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
class ClassifierGeometryComparison:
    """Model b against model a on the same inputs: changes are b - a.

    Attributes:
        feature_norm_change, cos_true_change, margin_change: (n,) per-sample changes.
        row_norm_change: (C,). agreement: fraction of samples with the same prediction.
        accuracy_a, accuracy_b: accuracies. gained: fraction wrong in a and right in b;
        lost: right in a and wrong in b.
        mean_feature_norm_change, mean_cos_true_change, mean_margin_change: 0-dim means.
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
