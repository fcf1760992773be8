"""Many-to-many unit matching: spectral clustering of both networks' units (Li et al., 2016).

The graph has the units of both networks as nodes and |correlation| (or its positive part)
as edge weights, from :func:`~subspaces.align.unit_correlation.joint_correlation`; a
cluster holding units of both networks is a many-to-many match.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from subspaces._base import Result
from subspaces._checks import (
    InputTypeError,
    InvalidOptionError,
    check_choice,
    check_positive_int,
    check_seed,
)
from subspaces.align.unit_correlation import ConstantPolicy, JointCorrelation, joint_correlation
from subspaces.linalg.decomp import eigh
from subspaces.linalg.kmeans import kmeans
from subspaces.linalg.moments import CHUNK_SIZE
from subspaces.linalg.normalize import normalize_rows

__all__ = ["UnitClusters", "spectral_unit_clusters", "spectral_unit_clusters_from_correlation"]

_F64 = torch.float64

Affinity = Literal["absolute", "positive"]
_AFFINITIES = ("absolute", "positive")


@dataclass(frozen=True)
class UnitClusters(Result):
    """Clusters of the units of both networks.

    ``labels_x`` (d1,) and ``labels_y`` (d2,) int64 in [0, n_clusters), numbered in order of
    first appearance over the units of x then y. ``affinity`` ((d1 + d2), (d1 + d2)) float64:
    the graph that was clustered (x's units first).

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> z = torch.randn(200, 2, generator=g, dtype=torch.float64)
        >>> noise = 0.3 * torch.randn(200, 4, generator=g, dtype=torch.float64)
        >>> x = z[:, [0, 0, 1, 1]] + noise
        >>> y = z[:, [1, 0]]
        >>> c = spectral_unit_clusters(x, y, n_clusters=2, seed=0)
        >>> c.labels_x.tolist(), c.labels_y.tolist(), c.affinity.shape
        ([0, 0, 1, 1], [1, 0], torch.Size([6, 6]))
    """

    labels_x: Tensor
    labels_y: Tensor
    n_clusters: int
    affinity: Tensor


def _first_appearance(labels: Tensor, k: int) -> Tensor:
    """Renumber cluster labels so that they appear in increasing order."""
    mapping = torch.full((k,), -1, dtype=torch.int64, device=labels.device)
    nxt = 0
    for lab in labels.tolist():
        if int(mapping[lab]) < 0:
            mapping[lab] = nxt
            nxt += 1
    return mapping[labels]


def spectral_unit_clusters_from_correlation(
    joint: JointCorrelation,
    *,
    n_clusters: int,
    affinity: Affinity = "absolute",
    n_init: int = 10,
    seed: int | torch.Generator | None = None,
) -> UnitClusters:
    """Spectral clustering of units from a :class:`JointCorrelation` (the maths core).

    See :func:`spectral_unit_clusters`.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> z = torch.randn(200, 2, generator=g, dtype=torch.float64)
        >>> noise = 0.3 * torch.randn(200, 4, generator=g, dtype=torch.float64)
        >>> x = z[:, [0, 0, 1, 1]] + noise
        >>> y = z[:, [1, 0]]
        >>> from subspaces.align import joint_correlation
        >>> joint = joint_correlation(x, y)
        >>> c = spectral_unit_clusters_from_correlation(joint, n_clusters=2, seed=0)
        >>> c.n_clusters, c.labels_y.tolist()
        (2, [1, 0])
    """
    check_choice(affinity, name="affinity", choices=_AFFINITIES)
    n_init = check_positive_int(n_init, name="n_init")
    seed = check_seed(seed)
    if not isinstance(joint, JointCorrelation):
        raise InputTypeError(
            f"joint must be a JointCorrelation (from joint_correlation), got "
            f"{type(joint).__name__}."
        )
    d1, d2 = joint.cross.shape
    n_clusters = check_positive_int(n_clusters, name="n_clusters")
    if n_clusters > d1 + d2:
        raise InvalidOptionError(
            f"n_clusters={n_clusters} exceeds the {d1 + d2} units of x and y together "
            f"({d1} + {d2}); pass at most {d1 + d2}."
        )
    joint_matrix = torch.cat(
        [
            torch.cat([joint.within_x, joint.cross], 1),
            torch.cat([joint.cross.T, joint.within_y], 1),
        ],
        0,
    ).to(_F64)
    a = joint_matrix.abs() if affinity == "absolute" else joint_matrix.clamp_min(0.0)
    a.fill_diagonal_(1.0)
    inv_sqrt_deg = a.sum(1).rsqrt()
    normalized = inv_sqrt_deg[:, None] * a * inv_sqrt_deg[None, :]
    _, vectors = eigh(0.5 * (normalized + normalized.T))
    embedding = vectors[:, -n_clusters:]
    embedding = normalize_rows(embedding, zero_rows="keep")
    labels = kmeans(embedding, n_clusters, n_init=n_init, seed=seed).labels
    labels = _first_appearance(labels, n_clusters)
    return UnitClusters(labels[:d1], labels[d1:], n_clusters, a)


def spectral_unit_clusters(
    x: Any,
    y: Any,
    *,
    n_clusters: int,
    affinity: Affinity = "absolute",
    n_init: int = 10,
    constant: ConstantPolicy = "raise",
    seed: int | torch.Generator | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> UnitClusters:
    """Many-to-many matching: spectral clustering of the units of both networks together.

    The graph has the d1 + d2 units as nodes and affinity A = |R| (``"absolute"``) or
    max(R, 0) (``"positive"``), where R = [[R_xx, R_xy], [R_xyᵀ, R_yy]] stacks the within-
    and between-network correlation matrices (Li et al., 2016, section 5: clusters of units
    that share a subspace across the two networks) and A_ii = 1. Normalized spectral
    clustering (Ng, Jordan and Weiss, 2002): the top ``n_clusters`` eigenvectors of
    D^(-1/2) A D^(-1/2) (D the degree matrix), rows scaled to unit length, clustered by
    k-means (:func:`~subspaces.linalg.kmeans.kmeans`: k-means++ seeding, best of ``n_init``
    runs, ``seed`` for the draws).
    A cluster holding units of both networks is a many-to-many match.

    Invariant to a positive affine map of each unit (and, with ``"absolute"``, to sign
    flips); labels are numbered in order of first appearance (units of x first).

    Args:
        x: (n, d1) activations. y: (n, d2) activations of the same n inputs.
        n_clusters: the number of clusters, at most d1 + d2.
        affinity: ``"absolute"`` (|correlation|) or ``"positive"`` (negatives cut to 0).
        n_init: k-means restarts.
        constant: zero-variance units: ``"raise"`` or ``"zero"`` (such a unit is then
            linked to nothing but itself).
        seed: k-means seeding: an ``int``, a ``torch.Generator`` or ``None`` (torch's global
            generator).
        chunk_size: rows per float32 product.

    Returns:
        :class:`UnitClusters` (labels of the units of x and of y, and the affinity).

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> z = torch.randn(200, 2, generator=g, dtype=torch.float64)
        >>> noise = 0.3 * torch.randn(200, 4, generator=g, dtype=torch.float64)
        >>> x = z[:, [0, 0, 1, 1]] + noise
        >>> y = z[:, [1, 0]]
        >>> c = spectral_unit_clusters(x, -y, n_clusters=2, seed=0)
        >>> c.labels_x.tolist(), c.labels_y.tolist()
        ([0, 0, 1, 1], [1, 0])
    """
    joint = joint_correlation(x, y, constant=constant, chunk_size=chunk_size)
    return spectral_unit_clusters_from_correlation(
        joint, n_clusters=n_clusters, affinity=affinity, n_init=n_init, seed=seed
    )
