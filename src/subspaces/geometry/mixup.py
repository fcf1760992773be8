"""The geometry of mixed samples at the last layer, bin by bin of the mixing weight
(Fisher, Meng & Papyan 2024)."""

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
    as_float_tensor,
    check_finite,
    check_fits_in_memory,
    check_label_range,
    check_labels,
    check_positive_int,
    check_same_device,
    check_scalar_in_range,
)
from subspaces.geometry._classes import (
    _F64,
    _as_vector,
    _block_rows,
    _check_nonzero_rows,
    _compute_dtype,
    _prepare,
    _require_classifier,
)

__all__ = ["MixupBinStats", "MixupGeometry", "mixup_geometry"]


# ---------------------------------------------------------------------------------------
# Mixup geometry (Fisher et al. 2024)


@dataclass(frozen=True)
class MixupBinStats(Result):
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

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> w = 5.0 * torch.eye(3, 4, dtype=torch.float64)  # classifier rows (C, d)
        >>> labels = torch.arange(60) % 3
        >>> x = w[labels] + 0.1 * torch.randn(60, 4, generator=g, dtype=torch.float64)
        >>> from subspaces.geometry import mixup_geometry
        >>> lam = torch.linspace(0, 1, 60, dtype=torch.float64)
        >>> other = (labels + 1) % 3
        >>> h = lam[:, None] * w[labels] + (1 - lam[:, None]) * w[other]  # mixed
        >>> stats = mixup_geometry(h, labels, other, lam, w, bins=2).different
        >>> [round(v, 3) for v in stats.lam.tolist()]
        [0.246, 0.754]
        >>> sorted(stats.as_dict())[:3]
        ['abs_margin', 'cos_a', 'cos_b']
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
class MixupGeometry(Result):
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

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> w = 5.0 * torch.eye(3, 4, dtype=torch.float64)  # classifier rows (C, d)
        >>> labels = torch.arange(60) % 3
        >>> x = w[labels] + 0.1 * torch.randn(60, 4, generator=g, dtype=torch.float64)
        >>> from subspaces.geometry import mixup_geometry
        >>> lam = torch.linspace(0, 1, 60, dtype=torch.float64)
        >>> geo = mixup_geometry(x, labels, labels, lam, w, bins=3)
        >>> geo.same.count.tolist(), geo.different.count.tolist()
        ([20.0, 20.0, 20.0], [0.0, 0.0, 0.0])
        >>> bool(geo.same_class.all())
        True
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
    x: Any,
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
        x: (n, d) features of the mixed inputs.
        labels_a, labels_b: (n,) the two classes of each mix, in [0, C).
        lam: the weight of ``labels_a``: a number for all samples or (n,) values in [0, 1].
        classifier: (C, d) last-layer weight W. bias: (C,) its bias.
        bins: number of equal-width λ bins on [0, 1], or increasing bin edges.

    Returns:
        A :class:`MixupGeometry`.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> w = 5.0 * torch.eye(3, 4, dtype=torch.float64)  # classifier rows (C, d)
        >>> labels = torch.arange(60) % 3
        >>> x = w[labels] + 0.1 * torch.randn(60, 4, generator=g, dtype=torch.float64)
        >>> from subspaces.geometry import mixup_geometry
        >>> lam = torch.linspace(0, 1, 60, dtype=torch.float64)
        >>> other = (labels + 1) % 3
        >>> h = lam[:, None] * w[labels] + (1 - lam[:, None]) * w[other]  # mixed
        >>> geo = mixup_geometry(h, labels, other, lam, w, bins=2)
        >>> geo.bin_edges.tolist()
        [0.0, 0.5, 1.0]
        >>> geo.different.count.tolist()
        [30.0, 30.0]
        >>> [round(v, 3) for v in geo.different.cos_a.tolist()]
        [0.325, 0.918]
    """
    _require_classifier(classifier, measure="mixup_geometry")
    x, ya, w_opt, b, c = _prepare(
        x,
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
        check_same_device(x, weight, names=("x", "lam"))
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
