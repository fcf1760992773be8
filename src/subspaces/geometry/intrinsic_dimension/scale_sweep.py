"""Intrinsic dimension against neighborhood size: MLE, GRIDE or decimated TwoNN per scale."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from subspaces._base import Result
from subspaces._checks import (
    DegenerateInputError,
    InputTypeError,
    InvalidOptionError,
    TooFewSamplesError,
    check_choice,
    check_positive_int,
    check_scalar_in_range,
    check_seed,
)
from subspaces.geometry.intrinsic_dimension._common import (
    _DUPLICATE_POLICIES,
    Duplicates,
    _check_data,
    _check_neighbors,
    _duplicate_mask,
    _neighbor_search,
    _scalar,
)
from subspaces.geometry.intrinsic_dimension.gride import _gride_at
from subspaces.geometry.intrinsic_dimension.mle import _mle_pointwise_from_distances
from subspaces.geometry.intrinsic_dimension.twonn import _twonn_from_ratios
from subspaces.linalg.ann import (
    ANNOptions,
    ApproximateKNNResult,
    check_neighbor_search,
    recall_of,
)
from subspaces.linalg.constants import CHUNK_SIZE

__all__ = ["SWEEP_METHODS", "ScaleSweep", "id_scale_sweep"]


SWEEP_METHODS: tuple[str, ...] = ("mle", "gride", "twonn")
"""``method`` values of :func:`id_scale_sweep`."""


@dataclass(frozen=True)
class ScaleSweep(Result):
    """Intrinsic dimension against neighborhood size (one entry per scale).

    Attributes:
        scale: the neighborhood sizes k (int64; their meaning depends on ``method``).
        dimension: the ID estimate at each scale (float64).
        radius: the mean distance, at that scale, that the estimate looks at (float64).
        method: the estimator used.
        recall, recall_queries: with ``neighbors="approximate"``, the recall of the
            neighbor searches (0-dim float64) and their sample size; ``None`` otherwise.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(400, 3, generator=g, dtype=torch.float64)
        >>> from subspaces.geometry import id_scale_sweep
        >>> sweep = id_scale_sweep(x, ks=[2, 4], method="gride")
        >>> sweep.method, sweep.scale.tolist()
        ('gride', [2, 4])
        >>> list(sweep.as_dict())
        ['scale', 'dimension', 'radius', 'method', 'recall', 'recall_queries']
    """

    scale: Tensor
    dimension: Tensor
    radius: Tensor
    method: str
    recall: Tensor | None = None
    recall_queries: int | None = None


def _default_scales(method: str, n: int) -> list[int]:
    if method == "mle":
        return [k for k in (5, 10, 20, 40, 80) if k <= n - 1] or [min(2, n - 1)]
    if method == "gride":
        return [k for k in (1, 2, 4, 8, 16, 32) if 2 * k <= n - 1]
    return [k for k in (1, 2, 4, 8, 16, 32) if n // k >= 3]


def _check_scales(ks: Any, method: str, n: int) -> list[int]:
    if ks is None:
        scales = _default_scales(method, n)
    else:
        if isinstance(ks, (str, bytes)) or not isinstance(ks, (Sequence, Tensor)):
            raise InputTypeError(
                f"ks must be a sequence of positive integers, got {type(ks).__name__}."
            )
        scales = [
            int(check_positive_int(int(k) if isinstance(k, Tensor) else k, name="ks")) for k in ks
        ]
        if not scales:
            raise InvalidOptionError("ks is empty; pass at least one neighborhood size.")
    for k in scales:
        if method == "mle":
            if k < 2:
                raise InvalidOptionError(f"method='mle' needs every k >= 2 in ks, got {k}.")
            _check_neighbors(n, k, estimator="id_scale_sweep(method='mle')", what="k")
        elif method == "gride":
            _check_neighbors(n, 2 * k, estimator="id_scale_sweep(method='gride')", what="2k")
        elif n // k < 3:
            raise TooFewSamplesError(
                f"id_scale_sweep(method='twonn') splits the n={n} samples into k={k} random "
                f"subsets of n // k = {n // k} points, fewer than the 3 TwoNN needs; use "
                "smaller ks or more samples."
            )
    if not scales:
        raise TooFewSamplesError(f"x has {n} samples, too few for any scale of method={method!r}.")
    return scales


def id_scale_sweep(
    x: Any,
    *,
    ks: Sequence[int] | None = None,
    method: Literal["mle", "gride", "twonn"] = "mle",
    discard_fraction: float = 0.1,
    duplicates: Duplicates = "raise",
    seed: int | torch.Generator | None = None,
    chunk_size: int = CHUNK_SIZE,
    neighbors: str | ANNOptions = "exact",
) -> ScaleSweep:
    """Intrinsic dimension against neighborhood size: the ID depends on scale.

    - ``method="mle"``: :func:`mle_id` with each k in ``ks`` (default 5, 10, 20, 40, 80);
      radius = mean distance to the k-th neighbor.
    - ``method="gride"``: :func:`gride` with k=(k, 2k) (default k = 1, 2, ..., 32);
      radius = mean distance to the 2k-th neighbor.
    - ``method="twonn"``: decimation (Facco et al., 2017): the samples are split at random
      into k disjoint subsets of n // k points (default k = 1, 2, ..., 32), TwoNN is fitted
      on each and the estimates averaged; radius = mean second-neighbor distance within the
      subsets. Needs ``seed`` for reproducible splits.

    One kNN search with the largest k serves every scale (except for decimation). A plateau
    of the curve is the ID; a rise at small radius is noise, a fall at large radius curvature.

    Args:
        x: ``(n, d)`` points.
        ks: neighborhood sizes (positive integers); default as above, limited by n.
        method: ``"mle"``, ``"gride"`` or ``"twonn"``.
        discard_fraction: TwoNN's discarded fraction (``method="twonn"``).
        duplicates: ``"raise"`` or ``"drop"`` (see :func:`twonn`).
        seed: an int, a CPU ``torch.Generator`` or ``None`` (torch's global generator) for the
            random splits of ``method="twonn"``.
        chunk_size: the most query rows per block of the k-nearest-neighbor search.
        neighbors: ``"exact"`` (default) or ``"approximate"`` (or an
            :class:`~subspaces.linalg.ann.ANNOptions`); the recall is then reported in the
            result.

    Returns:
        A :class:`ScaleSweep`.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(400, 3, generator=g, dtype=torch.float64)
        >>> from subspaces.geometry import id_scale_sweep
        >>> sweep = id_scale_sweep(x, ks=[5, 10, 20])
        >>> sweep.scale.tolist()
        [5, 10, 20]
        >>> [round(d, 2) for d in sweep.dimension.tolist()]
        [3.01, 3.1, 3.07]
        >>> sweep = id_scale_sweep(x, ks=[1, 2], method="twonn", seed=0)
        >>> [round(d, 2) for d in sweep.dimension.tolist()]
        [2.76, 2.88]
    """
    t = _check_data(x)
    how = check_choice(method, name="method", choices=SWEEP_METHODS)
    policy = check_choice(duplicates, name="duplicates", choices=_DUPLICATE_POLICIES)
    fraction = check_scalar_in_range(
        discard_fraction, name="discard_fraction", low=0.0, high=1.0, high_open=True
    )
    seed = check_seed(seed)
    options = check_neighbor_search(neighbors)
    searches: list[ApproximateKNNResult | None] = []
    generator = torch.Generator().manual_seed(seed) if isinstance(seed, int) else seed
    n = t.shape[0]
    scales = _check_scales(ks, how, n)
    dims: list[Tensor] = []
    radii: list[Tensor] = []
    if how == "twonn":
        for k in scales:
            perm = torch.randperm(n, generator=generator).to(t.device)
            size = n // k
            sub_dims, sub_radii = [], []
            for part in range(k):
                sub = t[perm[part * size : (part + 1) * size]]
                r, search = _neighbor_search(sub, 2, chunk_size, options)
                searches.append(search)
                keep = _duplicate_mask(r[:, 0] == 0, policy, estimator="TwoNN")
                d, _, _ = _twonn_from_ratios(
                    r[keep, 1] / r[keep, 0], discard_fraction=fraction, method="linear"
                )
                sub_dims.append(_scalar(d, t.device))
                sub_radii.append(r[keep, 1].mean())
            dims.append(torch.stack(sub_dims).mean())
            radii.append(torch.stack(sub_radii).mean())
    elif how == "mle":
        dist, search = _neighbor_search(t, max(scales), chunk_size, options)
        searches.append(search)
        dist = dist[_duplicate_mask(dist[:, 0] == 0, policy, estimator="MLE")]
        for k in scales:
            local = _mle_pointwise_from_distances(dist[:, :k], unbiased=False)
            inverse_mean = float((1.0 / local).mean())
            if inverse_mean <= 0.0:
                raise DegenerateInputError(
                    f"MLE: for every point all k={k} nearest neighbors are at the same "
                    "distance, so the estimate is infinite; the data look like a lattice. "
                    "Use larger ks."
                )
            dims.append(_scalar(1.0 / inverse_mean, t.device))
            radii.append(dist[:, k - 1].mean())
    else:
        dist, search = _neighbor_search(t, 2 * max(scales), chunk_size, options)
        searches.append(search)
        for k in scales:
            d, _ = _gride_at(dist, k, 2 * k, policy)
            dims.append(d)
            radii.append(dist[:, 2 * k - 1].mean())
    return ScaleSweep(
        scale=torch.tensor(scales, dtype=torch.long, device=t.device),
        dimension=torch.stack([_scalar(d, t.device) for d in dims]),
        radius=torch.stack([_scalar(r, t.device) for r in radii]),
        method=how,
        **_recall_fields(searches),
    )


def _recall_fields(searches: list[ApproximateKNNResult | None]) -> dict[str, Any]:
    done = [s for s in searches if s is not None]
    if not done:
        return {}
    recall, count = recall_of(*done)
    return {"recall": recall, "recall_queries": count}
