"""Principal angles, Grassmann distances and eigenspace overlap between subspaces.

A subspace is given by a basis: a ``(D, p)`` matrix whose columns span it, in an ambient
space of dimension ``D``. :func:`subspace_of` turns a representation ``x`` (n × D) into such
a basis (its top principal subspace). Every measure here depends on the two subspaces only,
not on the bases chosen for them, and is unchanged by a common rotation of the ambient space.

Relation to CCA: for two representations of the same inputs, ``x`` (n × d1) and ``y``
(n × d2), the principal angles between the column spaces of the centered ``x`` and ``y``
in Rⁿ are the arccosines of their canonical correlations (Björck & Golub 1973). Those
angles are computed, in feature space and without n × n work, by
:mod:`subspaces.similarity.cca`; this module compares subspaces of one feature space.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from subspaces._checks import (
    DegenerateInputError,
    InvalidOptionError,
    ShapeError,
    as_float_tensor,
    check_choice,
    check_finite,
    check_flag,
    check_matrix,
    check_positive_int,
    check_same_device,
    check_scalar_in_range,
)
from subspaces.linalg.decomp import eigh, svdvals
from subspaces.linalg.moments import paired_moments

__all__ = [
    "GRASSMANN_DISTANCES",
    "eigenspace_overlap",
    "grassmann_distance",
    "principal_angles",
    "subspace_of",
    "subspace_overlap",
]

GRASSMANN_DISTANCES = (
    "geodesic",
    "chordal",
    "projection",
    "procrustes",
    "spectral",
    "asimov",
    "binet_cauchy",
    "fubini_study",
    "martin",
)
"""Names accepted by :func:`grassmann_distance` (Ye & Lim 2016, Table 2)."""

_UNEQUAL_DIMS = ("infinite", "schubert")
_F64 = torch.float64


def _check_basis(a: Any, *, name: str) -> tuple[Tensor, torch.dtype]:
    """Validate a basis matrix; return it in float64 and the dtype it arrived in."""
    t = as_float_tensor(a, name=name)
    if t.ndim != 2:
        hint = f" Pass a single vector as {name}.reshape(-1, 1)." if t.ndim == 1 else ""
        raise ShapeError(
            f"{name} must be a 2-D (D, p) basis whose p columns span a subspace of R^D, got "
            f"{t.ndim}-D with shape {tuple(t.shape)}.{hint}"
        )
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ShapeError(
            f"{name} has shape {tuple(t.shape)}: a basis needs at least one row and one column."
        )
    check_finite(t, name=name)
    return t.to(_F64), t.dtype


def _orthonormal(a: Tensor, dtype: torch.dtype, *, name: str, orthonormalize: bool) -> Tensor:
    """An orthonormal float64 basis of the column space of ``a`` (refusing rank deficiency).

    ``dtype`` is the dtype the basis arrived in: its rounding sets the rank tolerance.
    """
    d, p = a.shape
    if p > d:
        raise DegenerateInputError(
            f"{name} has shape {(d, p)}: {p} columns in R^{d} cannot be linearly independent. "
            f"Pass a basis with at most {d} columns (e.g. drop the dependent ones)."
        )
    eps = torch.finfo(dtype).eps
    if not orthonormalize:
        gram = a.T @ a
        err = float((gram - torch.eye(p, dtype=_F64, device=a.device)).abs().max())
        if err > math.sqrt(eps):
            raise DegenerateInputError(
                f"{name} is not orthonormal (max |{name}^T {name} - I| = {err:.3g}) although "
                "orthonormalize=False; pass orthonormal columns or leave orthonormalize=True."
            )
        return a
    q, r = torch.linalg.qr(a)
    s = svdvals(r)  # the singular values of a, from the small p × p factor
    s_max = float(s[0])
    tol = max(d, p) * eps * s_max
    rank = int((s > tol).sum())
    if rank < p:
        raise DegenerateInputError(
            f"{name} (shape {(d, p)}) has numerical rank {rank} < {p} columns (singular values "
            f"from {s_max:.3g} down to {float(s[-1]):.3g}), so its columns do not span a "
            f"{p}-dimensional subspace. Remove the dependent columns, or pass an orthonormal "
            f"basis of the span you mean (e.g. the first {rank} left singular vectors)."
        )
    return q


def _bases(a: Any, b: Any, *, orthonormalize: bool) -> tuple[Tensor, Tensor]:
    orthonormalize = check_flag(orthonormalize, name="orthonormalize")
    ta, dtype_a = _check_basis(a, name="a")
    tb, dtype_b = _check_basis(b, name="b")
    check_same_device(ta, tb, names=("a", "b"))
    if ta.shape[0] != tb.shape[0]:
        raise ShapeError(
            f"a and b must be subspaces of the same ambient space R^D, but a has shape "
            f"{tuple(ta.shape)} (D = {ta.shape[0]}) and b has shape {tuple(tb.shape)} "
            f"(D = {tb.shape[0]}); both need their columns in the same D coordinates."
        )
    qa = _orthonormal(ta, dtype_a, name="a", orthonormalize=orthonormalize)
    qb = _orthonormal(tb, dtype_b, name="b", orthonormalize=orthonormalize)
    return qa, qb


def _angles(qa: Tensor, qb: Tensor) -> Tensor:
    """Increasing principal angles between orthonormal bases (Knyazev & Argentati 2002)."""
    if qa.shape[1] < qb.shape[1]:
        qa, qb = qb, qa  # the angles are symmetric; project the narrower basis below
    cross = qa.T @ qb  # (p, q) with q <= p
    cosines = svdvals(cross).clamp(0.0, 1.0)  # decreasing
    # The sines of the same angles: singular values of the part of qb outside span(qa).
    sines = svdvals(qb - qa @ cross).flip(0).clamp(0.0, 1.0)  # increasing
    from_cos = torch.arccos(cosines)
    from_sin = torch.arcsin(sines)
    # arccos loses accuracy near 0 and arcsin near π/2: take each where it is well conditioned.
    return torch.where(cosines * cosines >= 0.5, from_sin, from_cos)


def principal_angles(a: Any, b: Any, *, orthonormalize: bool = True) -> Tensor:
    """Principal angles between the column spaces of ``a`` (D × p) and ``b`` (D × q).

    θ_1 ≤ … ≤ θ_m, m = min(p, q), in [0, π/2]: cos θ_i are the singular values of
    Qaᵀ Qb for orthonormal bases Qa, Qb (Björck & Golub 1973). Small angles are taken
    from the sines, the singular values of Qb − Qa Qaᵀ Qb (Knyazev & Argentati 2002), so
    that an angle of 1e-9 rad is exact to ~1e-7 relative where arccos would return 0.

    Invariant to a change of basis of either subspace (a → a G, G invertible) and to a
    common orthogonal transform of the ambient space (a → R a, b → R b); symmetric
    (the angles of (a, b) and (b, a) coincide). All zeros for one subspace, π/2 for
    orthogonal ones. For representations x (n×d1), y (n×d2) of the same inputs, the angles
    between their centered column spaces in Rⁿ are the arccosines of the canonical
    correlations: use :mod:`subspaces.similarity.cca` for those.

    Rank: the columns of each basis must be linearly independent. A basis whose numerical
    rank (singular values above max(D, p) · eps(dtype) · σ_max, numpy's convention) is
    below its number of columns raises :class:`DegenerateInputError` rather than silently
    comparing a smaller subspace than the one described.

    Args:
        a: (D, p) basis of the first subspace (columns), numpy or torch.
        b: (D, q) basis of the second subspace, same D and device.
        orthonormalize: orthonormalize the bases (QR in float64 with a rank check). With
            ``False`` the columns must already be orthonormal (checked to sqrt(eps)).

    Returns:
        A 1-D float64 tensor of the min(p, q) angles in radians, increasing, on the inputs'
        device (scipy.linalg.subspace_angles returns the same angles decreasing).

    Examples:
        >>> import torch
        >>> from subspaces.similarity import principal_angles
        >>> a = torch.eye(3)[:, :2]
        >>> b = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
        >>> [round(float(t), 4) for t in principal_angles(a, b)]
        [0.0, 0.7854]
    """
    qa, qb = _bases(a, b, orthonormalize=orthonormalize)
    return _angles(qa, qb)


def _distance_from_angles(theta: Tensor, distance: str) -> Tensor:
    """One of :data:`GRASSMANN_DISTANCES` from (padded) principal angles."""
    if distance == "geodesic":
        return torch.linalg.vector_norm(theta)
    if distance == "chordal":
        return torch.linalg.vector_norm(torch.sin(theta))
    if distance == "projection":
        return torch.sin(theta.max())
    if distance == "procrustes":
        return 2.0 * torch.linalg.vector_norm(torch.sin(theta / 2.0))
    if distance == "spectral":
        return 2.0 * torch.sin(theta.max() / 2.0)
    if distance == "asimov":
        return theta.max()
    # The product forms, through logarithms so that small angles keep their precision:
    # log Π cos²θ = Σ log1p(−sin²θ) (−inf as soon as one angle is π/2).
    sin = torch.sin(theta)
    log_cos2 = torch.log1p(-(sin * sin)).sum()
    if distance == "binet_cauchy":
        return torch.sqrt(-torch.expm1(log_cos2))
    if distance == "fubini_study":
        return torch.atan2(torch.sqrt(-torch.expm1(log_cos2)), torch.exp(0.5 * log_cos2))
    return torch.sqrt(-log_cos2)  # martin


def grassmann_distance(
    a: Any,
    b: Any,
    *,
    distance: str = "geodesic",
    unequal_dims: str = "infinite",
    orthonormalize: bool = True,
) -> Tensor:
    """A distance between the column spaces of ``a`` (D × p) and ``b`` (D × q).

    Every distance is a function of the principal angles θ_1 ≤ … ≤ θ_m
    (:func:`principal_angles`). Names and formulas follow one reference, Ye & Lim (2016),
    Table 2, itself after Edelman, Arias & Smith (1998) and Hamm & Lee (2008):

    ================  ===============================  ============================  ============
    ``distance``      formula                          as a matrix norm              range
    ================  ===============================  ============================  ============
    ``geodesic``      ||θ||₂                           arc length on Gr(p, D)        [0, √m π/2]
    ``chordal``       ||sin θ||₂                       ||Pa − Pb||_F / √2            [0, √m]
    ``projection``    sin θ_m                          ||Pa − Pb||₂                  [0, 1]
    ``procrustes``    ||2 sin(θ/2)||₂                  min_Q ||Qa − Qb Q||_F         [0, √(2m)]
    ``spectral``      2 sin(θ_m / 2)                   min_Q ||Qa − Qb Q||₂          [0, √2]
    ``asimov``        θ_m                                                            [0, π/2]
    ``binet_cauchy``  √(1 − Π cos²θ_i)                                               [0, 1]
    ``fubini_study``  arccos(Π cos θ_i)                                              [0, π/2]
    ``martin``        √(−Σ log cos²θ_i)                                              [0, ∞]
    ================  ===============================  ============================  ============

    Pa, Pb are the orthogonal projectors, Qa, Qb orthonormal bases, Q ranges over
    orthogonal matrices. Beware the names: Hamm & Lee (2008) call ||sin θ||₂ the
    "projection metric", and Edelman et al. call it the "projection F-norm" and
    ||2 sin(θ/2)||₂ the "chordal F-norm"; here they are ``chordal`` and ``procrustes``.

    Different dimensions (p ≠ q), ``unequal_dims``:

    * ``"infinite"`` (default): the distance on the doubly infinite Grassmannian
      Gr(∞, ∞) of Ye & Lim (2016, Sec. 7): the |p − q| missing angles count as π/2. So
      geodesic = √(|p − q| π²/4 + Σ θ_i²), chordal = √(|p − q| + Σ sin²θ_i),
      procrustes = √(2|p − q| + 4 Σ sin²(θ_i/2)); projection = 1, spectral = √2,
      asimov = fubini_study = π/2, binet_cauchy = 1 and martin = ∞ whatever the angles.
      A metric: positive between subspaces of different dimensions.
    * ``"schubert"``: Ye & Lim's distance from the smaller subspace to the set of
      subspaces of its dimension contained in the larger one (a Schubert variety): the
      same formula on the m = min(p, q) angles only. Zero when one subspace contains the
      other; not a metric across dimensions.

    For p = q both agree. Martin's distance is ∞ when some θ_i = π/2.

    Invariant to a change of basis of either subspace and to a common orthogonal transform
    of the ambient space; symmetric; zero exactly for equal subspaces (p = q). Every
    distance except ``martin`` satisfies the triangle inequality on Gr(p, D).

    Args:
        a: (D, p) basis of the first subspace. b: (D, q) basis of the second.
        distance: one of :data:`GRASSMANN_DISTANCES`.
        unequal_dims: ``"infinite"`` or ``"schubert"``, see above.
        orthonormalize: as in :func:`principal_angles`.

    Returns:
        A 0-dim float64 tensor on the inputs' device.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import grassmann_distance
        >>> a = torch.eye(3)[:, :1]
        >>> b = torch.tensor([[1.0], [1.0], [0.0]])
        >>> round(float(grassmann_distance(a, b)), 4)
        0.7854
        >>> round(float(grassmann_distance(a, b, distance="chordal")), 4)
        0.7071
    """
    check_choice(distance, name="distance", choices=GRASSMANN_DISTANCES)
    check_choice(unequal_dims, name="unequal_dims", choices=_UNEQUAL_DIMS)
    qa, qb = _bases(a, b, orthonormalize=orthonormalize)
    theta = _angles(qa, qb)
    missing = abs(qa.shape[1] - qb.shape[1])
    if missing and unequal_dims == "infinite":
        pad = torch.full((missing,), math.pi / 2, dtype=_F64, device=theta.device)
        theta = torch.cat([theta, pad])
    return _distance_from_angles(theta, distance)


def _top_eigenvectors(x: Tensor, *, k: int | None, variance: float | None, name: str) -> Tensor:
    d = x.shape[1]
    if k is not None and k > d:
        raise InvalidOptionError(
            f"n_components = {k} is larger than the feature dimension of {name} (shape "
            f"{tuple(x.shape)}, D = {d}); the top-k subspace needs n_components <= {d}."
        )
    cov = paired_moments(x).cxx
    if cov is None:  # pragma: no cover - paired_moments always accumulates X^T X here
        raise RuntimeError("the covariance of x was not accumulated")
    evals, evecs = eigh(cov)
    evals, evecs = evals.flip(0).clamp(min=0.0), evecs.flip(1)  # decreasing
    total = float(evals.sum())
    if total <= 0.0:
        raise DegenerateInputError(
            f"{name} has zero variance (every sample is the same point), so it has no "
            f"principal subspace; check that {name} is not a constant or dead layer."
        )
    # The covariance has rank at most n - 1; eigenvalues at the rounding level of x's dtype
    # (products run in that dtype) count as zero: their eigenvectors are not determined.
    tol = 100 * torch.finfo(x.dtype).eps * float(evals[0])
    rank = min(x.shape[0] - 1, int((evals > tol).sum()))
    if k is None:
        if variance is None:  # pragma: no cover - the callers check this
            raise InvalidOptionError("pass n_components or variance")
        ratio = torch.cumsum(evals, 0) / total
        k = min(int((ratio < variance - 1e-12).sum()) + 1, rank)
    if k > rank:
        raise DegenerateInputError(
            f"{name} (shape {tuple(x.shape)}) varies in only {rank} directions, so its top-{k} "
            f"principal subspace is not determined; use n_components <= {rank} (with n samples the "
            "covariance has rank at most n - 1)."
        )
    return evecs[:, :k]


def subspace_of(
    x: Any, *, n_components: int | None = None, variance: float | None = None
) -> Tensor:
    """The top principal subspace of a representation: an orthonormal D × k basis.

    The eigenvectors of the k largest eigenvalues of the covariance of ``x`` (n × D) after
    centering, computed from the D × D covariance accumulated in float64 (never an n × n
    Gram). Give exactly one of ``n_components`` (k), or ``variance``: the smallest k whose
    eigenvalues
    explain at least that fraction of the total variance.

    The subspace (not the basis, whose columns have arbitrary signs) is invariant to
    translation and isotropic scaling of ``x`` and equivariant to orthogonal transforms of
    its features: ``subspace_of(x @ R)`` spans ``Rᵀ`` times the span of ``subspace_of(x)``.
    It is unique when λ_k > λ_{k+1}; a k beyond the numerical rank of the covariance (at
    most n − 1; eigenvalues below 100 · eps(dtype) · λ_1 count as zero) raises
    :class:`DegenerateInputError`, and ``variance`` never picks more directions than
    that rank.

    Args:
        x: (n, D) representation, n >= 2.
        n_components: k, the dimension of the subspace, 1 <= k <= D.
        variance: fraction of variance to explain, in (0, 1].

    Returns:
        A (D, k) float64 tensor with orthonormal columns, on ``x``'s device, columns in
        decreasing order of variance.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import subspace_of
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> tuple(subspace_of(x, n_components=2).shape)
        (5, 2)
        >>> tuple(subspace_of(x, variance=0.5).shape)
        (5, 3)
    """
    t = check_matrix(x, name="x", min_samples=2)
    if (n_components is None) == (variance is None):
        raise InvalidOptionError(
            "pass exactly one of n_components (the subspace dimension) or variance (the "
            f"fraction of variance to explain); got n_components={n_components!r} and "
            f"variance={variance!r}."
        )
    k = None
    if n_components is not None:
        k = check_positive_int(n_components, name="n_components")
    else:
        variance = check_scalar_in_range(
            variance, name="variance", low=0.0, high=1.0, low_open=True
        )
    return _top_eigenvectors(t, k=k, variance=variance, name="x")


def _overlap(qa: Tensor, qb: Tensor) -> Tensor:
    cross = qa.T @ qb
    score = (cross * cross).sum() / max(qa.shape[1], qb.shape[1])
    return score.clamp(0.0, 1.0)


def subspace_overlap(a: Any, b: Any, *, orthonormalize: bool = True) -> Tensor:
    """Eigenspace overlap score of the column spaces of ``a`` (D × p) and ``b`` (D × q).

    EOS = ||Qaᵀ Qb||²_F / max(p, q) = Σ cos²θ_i / max(p, q), with Qa, Qb orthonormal
    bases and θ the principal angles (May et al. 2019, "On the downstream performance of
    compressed word embeddings", normalized by the larger dimension). Equivalently
    1 − chordal²/max(p, q) with the chordal distance of :func:`grassmann_distance` on
    Gr(∞, ∞).

    In [0, 1]: 1 for equal subspaces, 0 for orthogonal ones (and < 1 when p ≠ q).
    Invariant to a change of basis of either subspace and to a common orthogonal
    transform of the ambient space; symmetric.

    May et al. apply it to the left singular vectors (in Rⁿ) of two embedding matrices of
    the same n words; pass those as ``a`` and ``b`` to reproduce their score. For full-rank
    embeddings it is then Σ ρ_i² / max(d1, d2) with ρ the uncentered canonical correlations
    (see :mod:`subspaces.similarity.cca`).

    Args:
        a: (D, p) basis. b: (D, q) basis, same D and device.
        orthonormalize: as in :func:`principal_angles`.

    Returns:
        A 0-dim float64 tensor on the inputs' device.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import subspace_overlap
        >>> a = torch.eye(3)[:, :2]
        >>> b = torch.tensor([[1.0], [1.0], [0.0]])
        >>> round(float(subspace_overlap(a, b)), 4)
        0.5
    """
    qa, qb = _bases(a, b, orthonormalize=orthonormalize)
    return _overlap(qa, qb)


def eigenspace_overlap(x: Any, y: Any, *, n_components: int) -> Tensor:
    """Overlap of the top-k principal subspaces of two representations of one feature space.

    EOS = ||U_kᵀ V_k||²_F / k = (1/k) Σ cos²θ_i, with U_k, V_k the top-k eigenvectors of
    the covariances of ``x`` (n1 × D) and ``y`` (n2 × D) (:func:`subspace_of`) and θ their
    principal angles: the eigenspace overlap score of May et al. (2019) applied to the
    feature-space eigenspaces (:func:`subspace_overlap` on the two bases). The two
    representations must share their D features (e.g. one layer on two datasets, or
    before and after fine-tuning); they need not hold the same samples.

    In [0, 1]: 1 when the top-k eigenspaces coincide (e.g. identical covariances), 0 when
    they are orthogonal. Symmetric. Invariant to translation and isotropic scaling of
    either representation and to a common orthogonal transform of both (x → x R,
    y → y R); not to separate ones.

    Args:
        x: (n1, D) representation. y: (n2, D) representation, same D and device.
        n_components: k, the dimension of the eigenspaces, 1 <= k <= D, at most the rank of
            each covariance.

    Returns:
        A 0-dim float64 tensor on the inputs' device.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import eigenspace_overlap
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> z = torch.randn(100, 5, generator=g)
        >>> round(float(eigenspace_overlap(x, z, n_components=2)), 4)
        0.4173
        >>> round(float(eigenspace_overlap(x, 3 * x + 1, n_components=2)), 4)
        1.0
    """
    tx = check_matrix(x, name="x", min_samples=2)
    ty = check_matrix(y, name="y", min_samples=2)
    check_same_device(tx, ty, names=("x", "y"))
    if tx.shape[1] != ty.shape[1]:
        raise ShapeError(
            f"x and y must have the same features to compare their eigenspaces, got shapes "
            f"{tuple(tx.shape)} and {tuple(ty.shape)}; for representations of the same inputs "
            "with different widths use CCA-based measures instead."
        )
    k = check_positive_int(n_components, name="n_components")
    u = _top_eigenvectors(tx, k=k, variance=None, name="x")
    v = _top_eigenvectors(ty, k=k, variance=None, name="y")
    return _overlap(u, v)
