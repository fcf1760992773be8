"""k-means (Lloyd's algorithm with k-means++ seeding), the one clustering kernel (floor 1).

k-means minimizes the inertia ``Σ_i min_j ||x_i - c_j||²`` over ``k`` centers. Seeding
(k-means++, Arthur & Vassilvitskii 2007): the first center is a row drawn uniformly, each
next one a row drawn with probability proportional to its squared distance to the nearest
center chosen so far (rows already chosen are never drawn again, so duplicate rows still
give ``k`` distinct seeds). Lloyd's iterations then alternate assignment to the nearest
center and moving each center to the mean of its rows (an empty cluster keeps its center),
until the assignment no longer changes or ``max_iter`` iterations have run. With
``n_init > 1`` the run of least inertia is kept (the first among equals).

Distances and means are computed in float64 from the differences ``x_i - c_j`` (not from
``||x||² - 2 x·c + ||c||²``, which cancels for nearby points), so the assignment is exact
to float64 rounding whatever the input dtype; memory is O(n · k + n · d) (a float64 copy
of ``x``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from subspaces._base import Result
from subspaces._checks import (
    InvalidOptionError,
    check_matrix,
    check_positive_int,
    seed_generator,
)

__all__ = ["KMeans", "kmeans"]

_F64 = torch.float64


@dataclass(frozen=True)
class KMeans(Result):
    """The result of :func:`kmeans`.

    Attributes:
        labels: ``(n,)`` int64 cluster of each row, in ``[0, k)``.
        centers: ``(k, d)`` float64 cluster means (in the input's units).
        inertia: 0-dim float64 ``Σ_i ||x_i - c_{labels_i}||²``.
        n_iter: Lloyd iterations of the kept run.

    Examples:
        >>> import torch
        >>> x = torch.tensor([[0.0], [0.1], [5.0], [5.1]])
        >>> result = kmeans(x, 2, seed=0)
        >>> sorted(round(c, 4) for c in result.centers.flatten().tolist())
        [0.05, 5.05]
    """

    labels: Tensor
    centers: Tensor
    inertia: Tensor
    n_iter: int


def _squared_distances(x: Tensor, centers: Tensor) -> Tensor:
    """(n, k) squared Euclidean distances in float64, from the differences."""
    return torch.cdist(x, centers, compute_mode="donot_use_mm_for_euclid_dist").square()


def _draw(weights: Tensor, generator: torch.Generator | None) -> int:
    """One index drawn with probability proportional to ``weights`` (on the generator's device)."""
    device = generator.device if generator is not None else weights.device
    return int(torch.multinomial(weights.to(device, _F64), 1, generator=generator))


def _seed_centers(x: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
    """k-means++ seeding on distinct rows of ``x`` (float64)."""
    n = x.shape[0]
    seeds = [_draw(torch.ones(n, dtype=_F64, device=x.device), generator)]
    nearest = _squared_distances(x, x[seeds[0]][None])[:, 0]
    taken = torch.zeros(n, dtype=torch.bool, device=x.device)
    taken[seeds[0]] = True
    for _ in range(k - 1):
        weights = nearest.masked_fill(taken, 0.0)
        if not bool((weights > 0).any()):  # fewer distinct rows than k: any untaken row
            weights = (~taken).to(_F64)
        nxt = _draw(weights, generator)
        seeds.append(nxt)
        taken[nxt] = True
        nearest = torch.minimum(nearest, _squared_distances(x, x[nxt][None])[:, 0])
    return x[seeds].clone()


def _lloyd(x: Tensor, centers: Tensor, max_iter: int) -> tuple[Tensor, Tensor, int]:
    k = centers.shape[0]
    assign = torch.argmin(_squared_distances(x, centers), dim=1)
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        sums = torch.zeros(k, x.shape[1], dtype=_F64, device=x.device)
        sums.index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k)
        filled = counts > 0
        centers[filled] = sums[filled] / counts[filled, None]
        new_assign = torch.argmin(_squared_distances(x, centers), dim=1)
        if bool((new_assign == assign).all()):
            break
        assign = new_assign
    return assign, centers, n_iter


def kmeans(
    x: Any,
    k: int,
    *,
    n_init: int = 1,
    max_iter: int = 300,
    seed: int | torch.Generator | None = None,
) -> KMeans:
    """Cluster the rows of ``x`` into ``k`` groups: k-means++ seeding, Lloyd's iterations.

    Minimizes the inertia ``Σ_i min_j ||x_i - c_j||²`` locally (see the module docstring);
    the best of ``n_init`` seedings is kept. Assignment in float64 whatever the dtype.

    Args:
        x: ``(n, d)`` data.
        k: clusters, ``1 <= k <= n``.
        n_init: seedings to run; the one of least inertia is returned.
        max_iter: the most Lloyd iterations per seeding.
        seed: an ``int``, a ``torch.Generator`` or ``None`` (torch's global generator).

    Returns:
        A :class:`KMeans` (labels, float64 centers, inertia, iterations).

    Raises:
        InvalidOptionError: ``k`` out of range, ``n_init`` or ``max_iter`` below 1.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.cat([torch.randn(20, 2, generator=g), torch.randn(20, 2, generator=g) + 10])
        >>> labels = kmeans(x, 2, seed=0).labels.tolist()
        >>> len(set(labels[:20])), len(set(labels[20:])), labels[0] != labels[20]
        (1, 1, True)
    """
    t = check_matrix(x, name="x", min_samples=1)
    k = check_positive_int(k, name="k")
    n = t.shape[0]
    if k > n:
        raise InvalidOptionError(
            f"k={k} exceeds the {n} rows of x (shape {tuple(t.shape)}); use at most {n} clusters."
        )
    n_init = check_positive_int(n_init, name="n_init")
    max_iter = check_positive_int(max_iter, name="max_iter")
    generator = seed_generator(seed, device=t.device)
    x64 = t.to(_F64)
    best: tuple[Tensor, Tensor, int] | None = None
    best_inertia = float("inf")
    for _ in range(n_init):
        labels, centers, n_iter = _lloyd(x64, _seed_centers(x64, k, generator), max_iter)
        inertia = float((x64 - centers[labels]).square().sum())
        if best is None or inertia < best_inertia:
            best, best_inertia = (labels, centers, n_iter), inertia
    assert best is not None
    labels, centers, n_iter = best
    return KMeans(labels, centers, (x64 - centers[labels]).square().sum(), n_iter)
