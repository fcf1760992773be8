"""Neural collapse and the geometry of a classifier's last layer, exact and streaming.

Notation: features ``h_i`` are the rows of ``x`` (n × d), ``y_i`` their classes in
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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import Tensor

from subspaces._base import Result
from subspaces._checks import (
    DegenerateInputError,
    DeviceMismatchError,
    InvalidOptionError,
    ShapeError,
    TooFewSamplesError,
    check_choice,
    check_fits_in_memory,
    check_flag,
    check_label_range,
    check_labels,
    check_matrix,
    check_optional_rtol,
    check_positive_int,
)
from subspaces.geometry._classes import (
    _F64,
    _block_rows,
    _check_bias,
    _check_classifier,
    _check_num_classes,
    _compute_dtype,
    _prepare,
)
from subspaces.linalg.decomp import psd_range
from subspaces.linalg.moments import CHUNK_SIZE
from subspaces.linalg.normalize import normalize_rows
from subspaces.linalg.scaling import ldexp, row_norms, scale_exponent, to_safe_range
from subspaces.linalg.streaming import DataclassResultMetric

__all__ = ["NeuralCollapse", "NeuralCollapseResult", "neural_collapse"]

_GLOBAL_MEANS = ("classes", "samples")


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
class NeuralCollapseResult(Result):
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

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> w = 5.0 * torch.eye(3, 4, dtype=torch.float64)  # classifier rows (C, d)
        >>> labels = torch.arange(60) % 3
        >>> x = w[labels] + 0.1 * torch.randn(60, 4, generator=g, dtype=torch.float64)
        >>> from subspaces.geometry import neural_collapse
        >>> result = neural_collapse(x, labels)
        >>> result.num_classes, result.num_samples, result.between_rank
        (3, 60, 2)
        >>> result.self_duality is None
        True
        >>> round(result.as_dict()['trace_ratio'], 4)
        0.0024
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


def _gram_geometry(v: Tensor, *, what: str) -> tuple[Tensor, Tensor, Tensor]:
    """(equinorm, equiangularity, ETF distance) of the rows of ``v`` (C × d, float64).

    The C × C Gram is visited in row blocks (memory O(block · C)); ||VVᵀ||_F = ||VᵀV||_F
    comes from the d × d side.
    """
    c = v.shape[0]
    unit = normalize_rows(
        v,
        rtol=1e-12,
        name=what,
        purpose="the angle between them",
        advice="check that the classes are separated (or that the classifier rows are non-zero)",
    )
    norms = row_norms(v)
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
    eqn_m, eqa_m, etf_m = _gram_geometry(centered, what="the centered class means")
    eqn_w = eqa_w = etf_w = nc3 = None
    if classifier is not None:
        w = classifier.to(_F64)
        eqn_w, eqa_w, etf_w = _gram_geometry(w, what="the classifier")
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
    x: Any,
    labels: Any,
    *,
    classifier: Any = None,
    bias: Any = None,
    num_classes: int | None = None,
    global_mean: str = "classes",
    rtol: float | None = None,
    cdnv_matrix: bool = False,
    chunk_size: int = CHUNK_SIZE,
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
        x: (n, d) features, e.g. penultimate-layer activations.
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

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> w = 5.0 * torch.eye(3, 4, dtype=torch.float64)  # classifier rows (C, d)
        >>> labels = torch.arange(60) % 3
        >>> x = w[labels] + 0.1 * torch.randn(60, 4, generator=g, dtype=torch.float64)
        >>> from subspaces.geometry import neural_collapse
        >>> result = neural_collapse(x, labels, classifier=w)
        >>> round(float(result.nc1), 4), round(float(result.self_duality), 4)
        (0.0009, 0.367)
        >>> float(result.nc4)
        0.0
    """
    x, y, w, b, c = _prepare(x, labels, classifier, bias, num_classes)
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


def _size_or_classifier(size: Any, w: Tensor | None, axis: int, what: str, hint: str) -> Any:
    """``size``, or when ``None`` the classifier's extent along ``axis`` (one of the two needed)."""
    if size is not None:
        return size
    if w is None:
        name = what.split()[0]
        raise InvalidOptionError(
            f"NeuralCollapse needs {what} or a classifier (C, d) to size its states; pass "
            f"{name}={hint}."
        )
    return w.shape[axis]


class NeuralCollapse(DataclassResultMetric):
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
            exceed the device's memory is refused (:class:`InvalidOptionError`). Default: the
            classifier's rows (one of the two is needed).
        num_features: d; default the classifier's columns (one of the two is needed).
        classifier: (C, d) last-layer weight, for the classifier's NC2, NC3 and NC4.
        bias: (C,) last-layer bias (NC4).
        global_mean, rtol, cdnv_matrix, chunk_size: as in :func:`neural_collapse`.

    Examples:
        >>> import torch
        >>> from subspaces.geometry import NeuralCollapse
        >>> w = 5.0 * torch.eye(3, 4, dtype=torch.float64)  # classifier rows (C, d)
        >>> labels = torch.arange(60) % 3
        >>> g = torch.Generator().manual_seed(0)
        >>> x = w[labels] + 0.1 * torch.randn(60, 4, generator=g, dtype=torch.float64)
        >>> metric = NeuralCollapse(num_classes=3, classifier=w)
        >>> for xb, yb in zip(x.split(25), labels.split(25)):  # first pass: NC1-NC3
        ...     metric.update(xb, yb)
        >>> first = metric.compute()
        >>> round(float(first.nc1), 4), first.nc4 is None
        (0.0009, True)
        >>> for xb in x.split(25):  # second pass: NC4 against the class means
        ...     metric.update_nc4(xb)
        >>> float(metric.compute().nc4)
        0.0
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better: bool | None = None

    def __init__(
        self,
        *,
        num_classes: int | None = None,
        num_features: int | None = None,
        classifier: Any = None,
        bias: Any = None,
        global_mean: str = "classes",
        rtol: float | None = None,
        cdnv_matrix: bool = False,
        chunk_size: int = CHUNK_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        w = (
            None
            if classifier is None
            else check_matrix(classifier, name="classifier", min_samples=1)
        )
        c = _check_num_classes(_size_or_classifier(num_classes, w, 0, "num_classes (C)", "C"))
        num_features = _size_or_classifier(num_features, w, 1, "num_features (d)", "x.shape[1]")
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

    def _check_batch(self, x: Any) -> Tensor:
        x = check_matrix(x, name="x", min_samples=1)
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
                "move the metric with metric.to(x.device)."
            )
        return x

    def update(self, x: Any, labels: Any) -> None:
        """Add a batch: features ``x`` (m, d) and their classes ``labels`` (m,) in [0, C)."""
        x = self._check_batch(x)
        y = check_labels(labels, x.shape[0], device=x.device)
        check_label_range(y, self.num_classes)
        if self._optional("_nc4_means") is not None:
            self._clear_nc4()
        _collapse_update(self, x, y, chunk_size=self.chunk_size)

    def _clear_nc4(self) -> None:
        self._set_frozen_means(None, None)
        self.nc4_mismatch = torch.zeros_like(self._tensor("nc4_mismatch"))
        self.nc4_count = torch.zeros_like(self._tensor("nc4_count"))

    def update_nc4(self, x: Any) -> None:
        """Second pass: count the samples where the classifier and the nearest class mean
        disagree (NC4). The class means are those of every :meth:`update` so far."""
        classifier = self._optional("classifier")
        if classifier is None:
            raise InvalidOptionError(
                "NC4 needs the classifier: build NeuralCollapse(..., classifier=W, bias=b)."
            )
        x = self._check_batch(x)
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
        self._clear_computed()  # a change of the states outside update()

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
