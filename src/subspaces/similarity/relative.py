"""Relative representations (Moschella et al., ICLR 2023).

A sample is re-described by its similarities to a set of anchor samples:
r(x_i) = (cos(x_i, a_1), ..., cos(x_i, a_k)). Two spaces that differ by an angle-preserving
map (rotation, reflection, isotropic scaling) give the same relative representation when
the anchors are the same inputs embedded in each space, so relative representations of two
models can be compared directly ("Relative representations enable zero-shot latent space
communication"). Cannistraci et al. (ICLR 2024, "From Bricks to Bridges: Product of
Invariances to Enhance Latent Space Communication") add distance-based relative
representations (Euclidean, L1, L∞) with other invariances.

* :func:`select_anchors` picks anchor rows (random, greedy farthest-point, or the samples
  nearest to k-means centers);
* :func:`relative_representation` maps rows to their (n, k) relative representation;
* :func:`relative_similarity` is the mean cosine similarity of the paired relative vectors;
* :func:`relative_retrieval` is the paper's retrieval check: is each sample's relative
  vector in ``x`` closest to its own relative vector in ``y`` (top-1, mean reciprocal rank)?

Invariances of r under one map T applied to both the points and the anchors (✓: r is
unchanged; "norm.": unchanged after ``normalize=True``; "center": with ``center=True``):

==========  ==========  ===========  =========  ====================================
similarity  orthogonal  isotropic    transl-    r_j(x)
            (rotation,  scaling      ation
            reflection) (c ≠ 0)
==========  ==========  ===========  =========  ====================================
cosine      ✓           ✓            center     <x, a_j> / (‖x‖ ‖a_j‖)
linear      ✓           norm.        center     <x, a_j>
euclidean   ✓           norm.        ✓          ‖x − a_j‖₂
l1          signed      norm.        ✓          ‖x − a_j‖₁
            perm. only
linf        signed      norm.        ✓          ‖x − a_j‖∞
            perm. only
==========  ==========  ===========  =========  ====================================

"signed perm." = permutations and sign flips of the coordinates (the isometries of the L1
and L∞ norms); a general rotation changes L1 and L∞ distances.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import torch
from torch import Tensor

from subspaces._base import Result
from subspaces._checks import (
    DegenerateInputError,
    InputTypeError,
    InvalidOptionError,
    ShapeError,
    TooFewSamplesError,
    check_choice,
    check_flag,
    check_matrix,
    check_paired,
    check_positive_int,
    check_positive_ints,
    check_same_device,
    seed_generator,
)
from subspaces.linalg.constants import CHUNK_SIZE
from subspaces.linalg.kmeans import kmeans
from subspaces.linalg.normalize import normalize_rows
from subspaces.linalg.retrieval import paired_ranks
from subspaces.linalg.scaling import ldexp, rescaled, row_norms, scale_exponent, unscale

__all__ = [
    "ANCHOR_METHODS",
    "RELATIVE_SIMILARITIES",
    "RelativeRetrieval",
    "relative_representation",
    "relative_retrieval",
    "relative_similarity",
    "select_anchors",
]

AnchorMethod = Literal["random", "farthest_point", "kmeans"]
RelativeKind = Literal["cosine", "linear", "euclidean", "l1", "linf"]

ANCHOR_METHODS: tuple[str, ...] = ("random", "farthest_point", "kmeans")
RELATIVE_SIMILARITIES: tuple[str, ...] = ("cosine", "linear", "euclidean", "l1", "linf")
"""``"cosine"`` (the paper's choice), ``"linear"`` (plain inner products), or the distances
``"euclidean"``, ``"l1"`` and ``"linf"`` (Cannistraci et al., 2024)."""

_DISTANCE_P = {"euclidean": 2.0, "l1": 1.0, "linf": float("inf")}
DEFAULT_KMEANS_ITER = 100

MIN_ANCHORS = 2
"""Fewest anchors for comparing relative vectors: with one, every cosine is ±1."""


def select_anchors(
    x: Any,
    *,
    n_anchors: int,
    method: AnchorMethod = "random",
    seed: int | torch.Generator | None = None,
    max_iter: int = DEFAULT_KMEANS_ITER,
) -> Tensor:
    """Choose ``n_anchors`` distinct rows of ``x`` as anchors; returns their indices.

    * ``"random"``: a uniformly random subset (``torch.randperm``; pass ``seed`` for
      reproducibility), in the order drawn. The paper's choice. The subset is drawn by
      position, so it depends on the order of the rows.
    * ``"farthest_point"``: greedy max-min (farthest-point) sampling. Deterministic: it
      starts at the row farthest from the mean row, then repeatedly adds the row whose
      Euclidean distance to the nearest chosen anchor is largest (ties: lowest index).
      The choice is equivariant to rotations, translations and scaling of ``x``. O(n k d)
      time, O(n d) memory. If ``x`` has fewer distinct rows than ``n_anchors``, duplicate
      rows are chosen once the distinct ones are used up.
    * ``"kmeans"``: k-means with ``n_anchors`` centers (k-means++ seeding, then Lloyd
      iterations until the assignment stops changing or ``max_iter``), and for each center
      the index of the sample nearest to it, so that the anchors are actual inputs that
      can be embedded by another model. Distinct: centers are served in order of their
      distance to their nearest sample, each taking the nearest sample not yet taken.
      Returned in the order of the centers' seeding. Reproducible with ``seed``
      (the seeding is random). An empty cluster keeps its previous center. O(n k d) time
      per iteration, O(n k) memory.

    Args:
        x: (n, d) representation. Anchors are rows of it (with paired representations,
            use the same indices in both).
        n_anchors: how many, 1 <= n_anchors <= n.
        method: how to choose.
        seed: an int, a ``torch.Generator`` or ``None`` (torch's global generator) for
            ``"random"`` and ``"kmeans"`` (ignored by ``"farthest_point"``).
        max_iter: the most Lloyd iterations of ``"kmeans"`` (ignored otherwise).

    Returns:
        A (n_anchors,) int64 tensor of distinct row indices on ``x``'s device.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import select_anchors
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> select_anchors(x, n_anchors=3, method="farthest_point").tolist()
        [78, 22, 95]
        >>> len(select_anchors(x, n_anchors=3, seed=0))
        3
    """
    check_choice(method, name="method", choices=ANCHOR_METHODS)
    k = check_positive_int(n_anchors, name="n_anchors")
    generator = seed_generator(seed)
    t = check_matrix(x, name="x", min_samples=1)
    n = t.shape[0]
    if k > n:
        raise TooFewSamplesError(
            f"n_anchors={k} exceeds the {n} samples of x (shape {tuple(t.shape)}); choose at "
            f"most {n} anchors or pass more samples."
        )
    max_iter = check_positive_int(max_iter, name="max_iter")
    t = rescaled(t)  # the choice does not depend on the scale: keep squares in range
    if method == "random":
        device = generator.device if generator is not None else t.device
        return torch.randperm(n, generator=generator, device=device)[:k].to(t.device)
    if method == "kmeans":
        return _kmeans_anchors(t, k, generator, max_iter)
    return _farthest_point(t, k)


def _farthest_point(x: Tensor, k: int) -> Tensor:
    mean = x.mean(dim=0, dtype=torch.float64).to(x.dtype)
    first = int(torch.argmax(((x - mean) ** 2).sum(dim=1)))
    chosen = [first]
    nearest = ((x - x[first]) ** 2).sum(dim=1)
    taken = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    taken[first] = True
    for _ in range(k - 1):
        # Chosen rows never come back, even when only duplicates (distance 0) remain.
        nxt = int(torch.argmax(nearest.masked_fill(taken, -1.0)))
        chosen.append(nxt)
        taken[nxt] = True
        nearest = torch.minimum(nearest, ((x - x[nxt]) ** 2).sum(dim=1))
    return torch.tensor(chosen, dtype=torch.int64, device=x.device)


def _kmeans_anchors(x: Tensor, k: int, generator: torch.Generator | None, max_iter: int) -> Tensor:
    """The samples nearest the k-means centers (:func:`~subspaces.linalg.kmeans.kmeans`),
    distinct: centers closest to a sample choose first."""
    centers = kmeans(x, k, max_iter=max_iter, seed=generator).centers
    dist = torch.cdist(x.to(torch.float64), centers, compute_mode="donot_use_mm_for_euclid_dist")
    order = torch.argsort(dist.min(dim=0).values, stable=True)
    chosen = torch.empty(k, dtype=torch.int64, device=x.device)
    free = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
    for c in order.tolist():
        pick = int(torch.argmin(dist[:, c].masked_fill(~free, float("inf"))))
        chosen[c] = pick
        free[pick] = False
    return chosen


def _norms(x: Tensor, *, keepdim: bool = False) -> Tensor:
    """Row norms taken in float64 (no float32 square overflows or vanishes), in x's dtype."""
    return row_norms(x, keepdim=keepdim).to(x.dtype)


_POWER = {"cosine": 0, "linear": 2}
"""The degree of each relative similarity in the data (1 for the distances)."""


def _scaled_relative(
    x: Tensor, anchors: Tensor, similarity: str, center: bool, name: str
) -> tuple[Tensor, int]:
    """The relative representation of ``x · 2**-e`` and the power of two to undo it.

    ``x`` and its anchors share one exact power of two that brings them into range
    (float32 squares of 1e20 overflow, of 1e-25 vanish); the result times ``2**p`` (the
    second value, ``p`` = degree × e) is the relative representation of ``x``.
    """
    e = scale_exponent(x, anchors)
    r = _raw_relative(ldexp(x, -e), ldexp(anchors, -e), similarity, center, name)
    return r, _POWER.get(similarity, 1) * e


def _relative(
    x: Tensor,
    anchors: Tensor,
    similarity: str,
    center: bool,
    name: str,
    *,
    normalize: bool = False,
) -> Tensor:
    """The relative representation of validated tensors of the same width."""
    r, power = _scaled_relative(x, anchors, similarity, center, name)
    if normalize:
        return normalize_rows(r, zero_rows="keep")
    return unscale(r, power, name="x", what=f"the {similarity} relative representation")


def _raw_relative(x: Tensor, anchors: Tensor, similarity: str, center: bool, name: str) -> Tensor:
    if similarity in _DISTANCE_P:  # translation invariant already: centering changes nothing
        return torch.cdist(
            x, anchors, p=_DISTANCE_P[similarity], compute_mode="donot_use_mm_for_euclid_dist"
        )
    if center:
        shift = anchors.mean(dim=0, dtype=torch.float64).to(anchors.dtype)
        x, anchors = x - shift, anchors - shift
    if similarity == "linear":
        return x @ anchors.T
    norms = _norms(anchors)
    zero = norms == 0
    if bool(zero.any()):
        first = zero.nonzero()[:5, 0].tolist()
        where = " after centering on their mean" if center else ""
        raise DegenerateInputError(
            f"{int(zero.sum())} anchors of {name} are the zero vector{where} (first indices "
            f"{first}), so the cosine to them is undefined; choose other anchors."
        )
    return normalize_rows(x, zero_rows="keep") @ (anchors / norms[:, None]).T


def _check_anchors(anchors: Any, x: Tensor, *, name: str, x_name: str) -> Tensor:
    a = check_matrix(anchors, name=name, min_samples=1)
    if a.shape[0] < MIN_ANCHORS:
        raise TooFewSamplesError(
            f"{name} has {a.shape[0]} row (shape {tuple(a.shape)}) but relative "
            f"representations need at least {MIN_ANCHORS} anchors (with one, every cosine "
            "relative vector is ±1); pass more anchor inputs (the paper uses hundreds)."
        )
    if a.shape[1] != x.shape[1]:
        raise ShapeError(
            f"{name} must have the width of {x_name}: {name} has {a.shape[1]} features (shape "
            f"{tuple(a.shape)}) but {x_name} has {x.shape[1]} (shape {tuple(x.shape)}); the "
            f"anchors must be embedded in the same space as {x_name}."
        )
    check_same_device(x, a, names=(x_name, name))
    return a.to(torch.promote_types(a.dtype, x.dtype))


def relative_representation(
    x: Any,
    anchors: Any,
    *,
    similarity: RelativeKind = "cosine",
    center: bool = False,
    normalize: bool = False,
) -> Tensor:
    """Relative representation of the rows of ``x`` with respect to ``anchors``.

    r(x_i)_j = s(x_i, a_j), an (n, k) matrix, with s one of

    * ``"cosine"``: <x_i, a_j> / (‖x_i‖ ‖a_j‖) (Moschella et al., 2023; a zero row of ``x``
      gives a zero relative vector);
    * ``"linear"``: the inner product <x_i, a_j>;
    * ``"euclidean"``, ``"l1"``, ``"linf"``: the distance ‖x_i − a_j‖ in the L2, L1 or L∞
      norm (Cannistraci et al., 2024). These are dissimilarities: larger is farther.

    ``center=True`` first subtracts the anchors' mean from rows and anchors, making cosine
    and linear also invariant to translation (a variant; the paper uses raw cosines; the
    distances are translation invariant already, so it changes nothing for them).
    ``normalize=True`` divides each relative vector by its Euclidean norm (zero vectors stay
    zero), which makes every similarity invariant to isotropic scaling: under x, a ↦ c x,
    c a the linear vector scales by c² and the distance vectors by |c|.

    Invariances, when one map is applied to ``x`` and ``anchors`` alike (see the module's
    table): cosine — orthogonal maps and isotropic scaling (and any positive rescaling of
    single rows of ``x`` or of single anchors); linear — orthogonal maps; euclidean —
    orthogonal maps and translation; l1, linf — translation and signed permutations of the
    coordinates, not general rotations. Entries in [-1, 1] for cosine, >= 0 for distances.

    Args:
        x: (n, d) representation.
        anchors: (k, d) anchors in the same space (e.g. ``x[select_anchors(x, ...)]``),
            k >= 2.
        similarity: ``"cosine"``, ``"linear"``, ``"euclidean"``, ``"l1"`` or ``"linf"``.
        center: center on the anchors' mean first.
        normalize: scale each relative vector to unit Euclidean norm.

    Returns:
        An (n, k) tensor in the common dtype of ``x`` and ``anchors``, on their device.
        Differentiable with respect to ``x`` and ``anchors``.

    Raises:
        ShapeError: ``anchors`` has another width than ``x``.
        TooFewSamplesError: fewer than 2 anchors.
        DegenerateInputError: a zero anchor (cosine).
        NumericRangeError: values that do not fit the dtype (e.g. ``"linear"`` products of
            float32 data beyond 1e19); data at any other scale are brought into range by an
            exact power of two, so cosines and normalized vectors never over- or underflow.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import relative_representation
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> r = relative_representation(x, x[:3])
        >>> tuple(r.shape), round(float(r[0, 0]), 4)
        ((100, 3), 1.0)
    """
    check_choice(similarity, name="similarity", choices=RELATIVE_SIMILARITIES)
    center = check_flag(center, name="center")
    normalize = check_flag(normalize, name="normalize")
    t = check_matrix(x, name="x", min_samples=1)
    a = _check_anchors(anchors, t, name="anchors", x_name="x")
    return _relative(t.to(a.dtype), a, similarity, center, "anchors", normalize=normalize)


def _check_indices(anchor_indices: Any, n: int, device: torch.device) -> Tensor:
    if isinstance(anchor_indices, Tensor):
        idx = anchor_indices
    elif isinstance(anchor_indices, (np.ndarray, list, tuple, range)):
        idx = torch.as_tensor(np.asarray(anchor_indices))
    else:
        raise InputTypeError(
            "anchor_indices must be a sequence, numpy array or tensor of row indices, got "
            f"{type(anchor_indices).__name__}."
        )
    if idx.is_floating_point() or idx.is_complex() or idx.dtype == torch.bool:
        raise InputTypeError(
            f"anchor_indices must hold integer row indices, got dtype {idx.dtype}; a boolean "
            "mask can be turned into indices with mask.nonzero()[:, 0]."
        )
    if idx.ndim != 1:
        raise ShapeError(f"anchor_indices must be 1-D, got shape {tuple(idx.shape)}.")
    if idx.numel() < MIN_ANCHORS:
        raise TooFewSamplesError(
            f"anchor_indices holds {idx.numel()} anchors but at least {MIN_ANCHORS} are needed "
            "(with one anchor every relative vector is ±1)."
        )
    low, high = int(idx.min()), int(idx.max())
    if low < 0 or high >= n:
        bad = idx[(idx < 0) | (idx >= n)][:5].tolist()
        raise ShapeError(
            f"anchor_indices must lie in [0, {n - 1}] (x and y have {n} samples), got "
            f"out-of-range entries {bad}."
        )
    return idx.to(device=device, dtype=torch.int64)


def _resolve_anchors(
    x: Tensor,
    y: Tensor,
    *,
    anchors_x: Any,
    anchors_y: Any,
    anchor_indices: Any,
    n_anchors: int | None,
    method: str,
    seed: int | torch.Generator | None,
) -> tuple[Tensor, Tensor]:
    """The anchors in each space, from explicit anchors, indices, or a selection on ``x``."""
    explicit = anchors_x is not None or anchors_y is not None
    given = [
        name
        for name, on in (
            ("anchors_x/anchors_y", explicit),
            ("anchor_indices", anchor_indices is not None),
            ("n_anchors", n_anchors is not None),
        )
        if on
    ]
    if len(given) > 1:
        raise InvalidOptionError(
            f"pass only one way of choosing anchors, got {' and '.join(given)}: either "
            "anchors_x with anchors_y, or anchor_indices (rows of both x and y), or n_anchors "
            "(with method)."
        )
    if explicit:
        if anchors_x is None or anchors_y is None:
            missing = "anchors_y" if anchors_y is None else "anchors_x"
            raise InvalidOptionError(
                f"{missing} is missing: explicit anchors need both anchors_x (in the space of "
                "x) and anchors_y (the same inputs in the space of y)."
            )
        ax = _check_anchors(anchors_x, x, name="anchors_x", x_name="x")
        ay = _check_anchors(anchors_y, y, name="anchors_y", x_name="y")
        if ax.shape[0] != ay.shape[0]:
            raise ShapeError(
                f"anchors_x and anchors_y must be the same inputs in both spaces, but anchors_x "
                f"has {ax.shape[0]} rows and anchors_y {ay.shape[0]}."
            )
        return ax, ay
    if anchor_indices is not None:
        idx = _check_indices(anchor_indices, x.shape[0], x.device)
        return x[idx], y[idx]
    if n_anchors is None:
        raise InvalidOptionError(
            "no anchors given: pass n_anchors (e.g. n_anchors=300, chosen on x with method), "
            "anchor_indices, or anchors_x and anchors_y."
        )
    k = check_positive_int(n_anchors, name="n_anchors", minimum=MIN_ANCHORS)
    idx = select_anchors(x, n_anchors=k, method=cast(AnchorMethod, method), seed=seed)
    return x[idx], y[idx]


def _paired_relative(
    x: Any,
    y: Any,
    *,
    anchors_x: Any,
    anchors_y: Any,
    anchor_indices: Any,
    n_anchors: int | None,
    method: str,
    similarity: str,
    center: bool,
    seed: int | torch.Generator | None,
) -> tuple[Tensor, Tensor]:
    """The relative representations of x and y, each times its own power of two (the
    callers compare them by cosine, which does not depend on it)."""
    check_choice(method, name="method", choices=ANCHOR_METHODS)
    check_choice(similarity, name="similarity", choices=RELATIVE_SIMILARITIES)
    center = check_flag(center, name="center")
    tx, ty = check_paired(x, y, min_samples=1)
    ax, ay = _resolve_anchors(
        tx,
        ty,
        anchors_x=anchors_x,
        anchors_y=anchors_y,
        anchor_indices=anchor_indices,
        n_anchors=n_anchors,
        method=method,
        seed=seed,
    )
    rx = _scaled_relative(tx.to(ax.dtype), ax, similarity, center, "anchors_x")[0]
    ry = _scaled_relative(ty.to(ay.dtype), ay, similarity, center, "anchors_y")[0]
    return rx, ry


def _row_cosines(rx: Tensor, ry: Tensor) -> Tensor:
    """cos(rx_i, ry_i) in float64, 0 where either row is zero.

    Computed as <rx_i, ry_i> / sqrt(|rx_i|² |ry_i|²), so identical rows give exactly 1
    (sqrt(s · s) = s in binary floating point while s · s is a normal number; otherwise
    the factors' roots are multiplied instead).
    """
    a, b = rx.to(torch.float64), ry.to(torch.float64)
    dot, sx, sy = (a * b).sum(1), (a * a).sum(1), (b * b).sum(1)
    product = sx * sy
    normal = torch.isfinite(product) & (product >= torch.finfo(torch.float64).tiny)
    den = torch.where(normal, product.sqrt(), sx.sqrt() * sy.sqrt())
    return torch.where(den > 0, dot / torch.where(den > 0, den, 1.0), 0.0)


def relative_similarity(
    x: Any,
    y: Any,
    *,
    anchors_x: Any = None,
    anchors_y: Any = None,
    anchor_indices: Any = None,
    n_anchors: int | None = None,
    method: AnchorMethod = "random",
    similarity: RelativeKind = "cosine",
    center: bool = False,
    seed: int | torch.Generator | None = None,
) -> Tensor:
    """Mean cosine similarity of the paired relative representations of ``x`` and ``y``.

    s(X, Y) = (1/n) Σ_i cos(r_X(x_i), r_Y(y_i)), r as in :func:`relative_representation`
    with the same anchor inputs in both spaces (Moschella et al., 2023). Anchors come from,
    in this order of precedence (exactly one may be given):

    * ``anchors_x`` and ``anchors_y``: the anchor inputs embedded in each space;
    * ``anchor_indices``: rows of both ``x`` and ``y`` (the samples are paired);
    * ``n_anchors`` with ``method``: chosen by :func:`select_anchors` on ``x`` (so
      ``"farthest_point"`` makes the measure depend on which side is ``x``), same rows in y.

    A sample whose relative vector is zero counts with cosine 0.

    Invariant to orthogonal transforms and isotropic scaling of either side (anchors
    transformed with their space); with ``center=True`` also to translation. Those are the
    cosine's; other ``similarity`` values keep the invariances of
    :func:`relative_representation` and, since relative vectors are compared by cosine,
    also isotropic scaling (euclidean: orthogonal, scaling, translation; l1/linf:
    signed coordinate permutations, scaling, translation; linear: orthogonal, scaling).
    In [-1, 1] (distance-based relative vectors are non-negative, so in [0, 1] and
    typically near 1); 1 when y is x up to those transforms (exactly 1 when y holds the
    same numbers as x: each sample's cosine is taken in float64 from the relative vectors);
    symmetric in x and y for fixed anchors.

    Args:
        x: (n, d1) representation. y: (n, d2) representation of the same n inputs.
        anchors_x, anchors_y: (k, d1) and (k, d2) anchors, k >= 2.
        anchor_indices: k >= 2 row indices in [0, n).
        n_anchors: how many anchors to select (2 <= n_anchors <= n).
        method: ``"random"``, ``"farthest_point"`` or ``"kmeans"`` (see
            :func:`select_anchors`).
        similarity: the relative representation's similarity (see
            :func:`relative_representation`).
        center: center each space on its anchors' mean first.
        seed: an int, a ``torch.Generator`` or ``None`` for ``method="random"`` and
            ``"kmeans"``.

    Returns:
        A 0-dim float64 tensor on the inputs' device.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import relative_similarity
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> z = y @ torch.randn(4, 5, generator=g)
        >>> round(float(relative_similarity(x, z, anchor_indices=[0, 1, 2, 3])), 4)
        0.5995
        >>> round(float(relative_similarity(x, 2 * x, n_anchors=10, seed=0)), 4)
        1.0
    """
    rx, ry = _paired_relative(
        x,
        y,
        anchors_x=anchors_x,
        anchors_y=anchors_y,
        anchor_indices=anchor_indices,
        n_anchors=n_anchors,
        method=method,
        similarity=similarity,
        center=center,
        seed=seed,
    )
    return _row_cosines(rx, ry).mean()


@dataclass(frozen=True)
class RelativeRetrieval(Result):
    """Retrieval of each sample of ``x`` among all samples of ``y`` by relative vectors.

    ``top_k`` maps each k to the fraction of samples whose own counterpart is among their k
    most similar (``top_k[1]`` is top-1 accuracy); ``mrr`` is the mean reciprocal rank of
    the counterpart. 0-dim float64 tensors.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import relative_retrieval
        >>> x = torch.randn(40, 6, generator=torch.Generator().manual_seed(0))
        >>> found = relative_retrieval(x, 2 * x, n_anchors=8, seed=0)
        >>> round(float(found.top_k[1]), 4), round(float(found.mrr), 4)
        (1.0, 1.0)
    """

    top_k: dict[int, Tensor]
    mrr: Tensor


def relative_retrieval(
    x: Any,
    y: Any,
    *,
    anchors_x: Any = None,
    anchors_y: Any = None,
    anchor_indices: Any = None,
    n_anchors: int | None = None,
    method: AnchorMethod = "random",
    similarity: RelativeKind = "cosine",
    center: bool = False,
    seed: int | torch.Generator | None = None,
    ks: Sequence[int] = (1, 5),
    chunk_size: int = CHUNK_SIZE,
) -> RelativeRetrieval:
    """Top-k accuracies and mean reciprocal rank of matching relative representations.

    For each sample i, the relative vector r_X(x_i) queries all r_Y(y_j) by cosine
    similarity; rank_i = 1 + #{j ≠ i : cos(r_X(x_i), r_Y(y_j)) ≥ cos(r_X(x_i), r_Y(y_i))}
    (ties count against the query, as in
    :func:`subspaces.align.scores.translation_scores`, so that a zero relative
    vector, whose cosine with every row is 0, or duplicated rows never score a hit).
    top_k[k] = mean_i [rank_i <= k] (top-1 accuracy at k = 1), MRR = mean_i 1/rank_i,
    as in the retrieval tables of Moschella et al. (2023). Direction x → y; swap the
    arguments for y → x. Computed in chunks of queries (at most ``chunk_size``, fewer where a
    chunk would exceed 256 MiB): O(chunk × n) memory.

    Same anchor options and invariances as :func:`relative_similarity`. MRR in (0, 1],
    top-k in [0, 1]; 1 when y is x up to an angle-preserving map (and no two relative
    vectors coincide). Chance level: top_k[k] ≈ k/n.

    Args:
        x: (n, d1) representation (the queries). y: (n, d2) representation of the same n
            inputs (the candidates).
        anchors_x, anchors_y, anchor_indices, n_anchors, method, similarity, center, seed:
            the anchors and relative representation, as in :func:`relative_similarity`.
        ks: the cut-offs k of ``top_k`` (default 1 and 5).
        chunk_size: queries ranked at once: rows per chunk, at most ``chunk_size`` and fewer
            where a chunk would exceed 256 MiB (memory O(chunk × n)).

    Returns:
        A :class:`RelativeRetrieval` with ``top_k`` (a dict from k to a 0-dim float64 tensor)
        and ``mrr``.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import relative_retrieval
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> found = relative_retrieval(x, -3 * x, n_anchors=10, seed=0)
        >>> {k: round(float(v), 4) for k, v in found.top_k.items()}, round(float(found.mrr), 4)
        ({1: 1.0, 5: 1.0}, 1.0)
    """
    cutoffs = tuple(sorted(set(check_positive_ints(ks, name="ks"))))
    chunk_size = check_positive_int(chunk_size, name="chunk_size")
    rx, ry = _paired_relative(
        x,
        y,
        anchors_x=anchors_x,
        anchors_y=anchors_y,
        anchor_indices=anchor_indices,
        n_anchors=n_anchors,
        method=method,
        similarity=similarity,
        center=center,
        seed=seed,
    )
    dtype = torch.promote_types(rx.dtype, ry.dtype)
    ranks = paired_ranks(
        normalize_rows(rx.to(dtype), zero_rows="keep"),
        normalize_rows(ry.to(dtype), zero_rows="keep"),
        chunk_size=chunk_size,
    )
    top_k = {k: (ranks <= k).to(torch.float64).mean() for k in cutoffs}
    return RelativeRetrieval(top_k=top_k, mrr=ranks.reciprocal().mean())
