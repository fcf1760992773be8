"""Backward-compatible representations through an orthogonal extension (OCA).

Ricci, Biondi, Pernici & Del Bimbo, "Backward-Compatible Aligned Representations via an
Orthogonal Transformation Layer" (2024). A retrieval system indexes a gallery with an *old*
model φ_old (features in R^d). A *new* model φ_new is trained so that

* its feature h ∈ R^(d+k) (L2-normalized) extends the old space: the first d coordinates
  h[:d] are pulled onto the old model's frozen class prototypes P ∈ R^(C×d) (the class means
  of old features, or the old classifier's weights), so that new queries can be compared
  directly with the old gallery, without re-indexing it (backfilling);
* the new classification loss reads h through a learned orthogonal map W ∈ O(d+k)
  (``torch.nn.utils.parametrizations.orthogonal``), z = W h, which preserves every inner
  product and distance of h while leaving the new classifier free to use all d + k
  directions, the k extra ones included.

The loss is L = w_new · CE(C z, y) + w_old · CE(s · ĥ[:d] P̂ᵀ, y) + w_align · (1 − cos(h[:d], P_y))
(ĥ, P̂: unit rows; s: ``scale``). The authors' code weighs the terms 5 : 10 : 5, i.e. the
defaults 1 : 2 : 1 here, with label smoothing 0.1. As in that code, the old logits use the
raw class means of unit old features, ĥ[:d] Pᵀ (the defaults of :func:`old_class_prototypes`
and :class:`OCAHead`), so each class's logit is scaled by ‖P_c‖ ≤ 1 (small for classes the
old model spreads out, e.g. classes it never saw); ``keep_prototype_lengths=False`` with
``old_class_prototypes(..., normalize=True)`` uses unit prototypes and one scale s instead.
One difference: the authors' orthogonal layer also has a bias (z = W h + b), which this
module omits.

At inference W is not needed: the retrieval feature is h itself (W is orthogonal, so new/new
retrieval on h and on W h is the same). Against an old gallery, a new query uses its first d
coordinates, :meth:`OCAHead.compatible_features` (truncation, as in the authors' evaluation).
Zero-padding the old gallery to d + k instead gives the same cosine ranking for each query
(it rescales a query's similarities by the constant ‖h[:d]‖ / ‖h‖) but not the same
Euclidean distances; this module uses truncation throughout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrizations

from subspaces._checks import (
    DegenerateInputError,
    DeviceMismatchError,
    InputTypeError,
    ShapeError,
    check_choice,
    check_class_count,
    check_device,
    check_fits_in_memory,
    check_flag,
    check_float_dtype,
    check_label_range,
    check_labels,
    check_matrix,
    check_positive_int,
    check_same_device,
    check_scalar_in_range,
)
from subspaces.align.translators import _check_ks
from subspaces.linalg.retrieval import unit_rows

__all__ = [
    "ClassRetrieval",
    "OCAHead",
    "OCALosses",
    "OrthogonalExtension",
    "class_retrieval",
    "oca_step",
    "old_class_prototypes",
]

_ORTHOGONAL_MAPS = ("matrix_exp", "cayley", "householder")


def _check_features(
    h: Any, *, width: int, name: str, device: torch.device, dtype: torch.dtype | None = None
) -> Tensor:
    """A 2-D float tensor of ``width`` columns on ``device`` (no finiteness sync: training path).

    float16 / bfloat16 features are promoted to float32 (``as_float_tensor``); where ``dtype``
    is given (the module multiplies ``h`` by its parameters), the result must have it.
    """
    t = check_matrix(h, name=name, min_samples=1, finite=False)
    if t.shape[1] != width:
        raise ShapeError(
            f"{name} must have {width} features (old dim + extra dim), got shape "
            f"{tuple(t.shape)}; check the width of the new model's embedding layer."
        )
    if t.device != device:
        raise DeviceMismatchError(
            f"{name} is on {t.device} but the module's parameters are on {device}; move one "
            "with .to(device) (subspaces never moves data between devices silently)."
        )
    if dtype is not None and t.dtype != dtype:
        raise InputTypeError(
            f"{name} has dtype {t.dtype} but the module's parameters are {dtype}; cast the "
            f"module with .to({t.dtype}) (prototypes from float64 old features make a float64 "
            "head: pass prototypes.float() for a float32 model)."
        )
    return t


_ORTHOGONAL_COPIES = 3  # (d + k)² matrices held: the weight, its parametrized original, W


class OrthogonalExtension(nn.Module):
    """A learned orthogonal map of the extended space R^(d+k): z = W h with WᵀW = I.

    W is an ``nn.Linear(d + k, d + k, bias=False)`` whose weight is parametrized on the
    orthogonal group by ``torch.nn.utils.parametrizations.orthogonal``, so it stays
    orthogonal (to float rounding) after any optimizer step. Being orthogonal, W preserves
    norms, inner products and distances: ‖W a − W b‖ = ‖a − b‖.

    The coordinates of h split into the old block h[:d] (:meth:`old_part`), which OCA
    trains to be comparable with the old model's features, and the extra block h[d:]
    (:meth:`extra_part`).

    Args:
        old_dim: d, the width of the old model's embedding.
        extra_dim: k >= 0, the number of added dimensions.
        orthogonal_map: how torch parametrizes W: ``"matrix_exp"`` (default), ``"cayley"``
            or ``"householder"``.
        device, dtype: where to create W (it follows ``.to()`` like any module).
    """

    def __init__(
        self,
        old_dim: int,
        extra_dim: int,
        *,
        orthogonal_map: str = "matrix_exp",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.old_dim = check_positive_int(old_dim, name="old_dim")
        self.extra_dim = check_positive_int(extra_dim, name="extra_dim", minimum=0)
        check_choice(orthogonal_map, name="orthogonal_map", choices=_ORTHOGONAL_MAPS)
        device = check_device(device)
        dtype = check_float_dtype(dtype)
        width = self.old_dim + self.extra_dim
        larger = "extra_dim" if self.extra_dim >= self.old_dim else "old_dim"
        check_fits_in_memory(
            _ORTHOGONAL_COPIES * width * width,
            dtype=dtype or torch.get_default_dtype(),
            device=device,
            name=larger,
            value=self.extra_dim if larger == "extra_dim" else self.old_dim,
            what=f"the orthogonal map (copies of a (d + k)² = {width}² matrix)",
        )
        linear = nn.Linear(width, width, bias=False, device=device, dtype=dtype)
        self.linear = parametrizations.orthogonal(linear, orthogonal_map=orthogonal_map)

    @property
    def width(self) -> int:
        """d + k, the width of the extended space."""
        return self.old_dim + self.extra_dim

    @property
    def weight(self) -> Tensor:
        """W, the current ``(d + k, d + k)`` orthogonal matrix (z = W h)."""
        weight = self.linear.weight
        if not isinstance(weight, Tensor):  # pragma: no cover - torch's typing says Module too
            raise TypeError("the orthogonal parametrization did not return a tensor")
        return weight

    def forward(self, h: Tensor) -> Tensor:
        """z = h Wᵀ for a batch ``h`` of shape ``(n, d + k)``."""
        h = _check_features(
            h, width=self.width, name="h", device=self.weight.device, dtype=self.weight.dtype
        )
        out: Tensor = self.linear(h)
        return out

    def old_part(self, h: Tensor) -> Tensor:
        """h[:, :d], the coordinates that live in the old model's space."""
        return _check_features(h, width=self.width, name="h", device=self.weight.device)[
            :, : self.old_dim
        ]

    def extra_part(self, h: Tensor) -> Tensor:
        """h[:, d:], the k added coordinates."""
        return _check_features(h, width=self.width, name="h", device=self.weight.device)[
            :, self.old_dim :
        ]


@dataclass(frozen=True)
class OCALosses:
    """The terms of the OCA loss for one batch (0-dim tensors, differentiable).

    ``total`` = new_weight · ``new_classification`` + old_weight · ``old_classification``
    + alignment_weight · ``alignment``. The old terms average over the samples whose class
    has a prototype; they are 0 when the batch holds none.
    """

    total: Tensor
    new_classification: Tensor
    old_classification: Tensor
    alignment: Tensor


def old_class_prototypes(
    old_features: Any, labels: Any, *, num_classes: int | None = None, normalize: bool = False
) -> Tensor:
    """The old model's class prototypes: P_c = mean of the unit old features of class c.

    P_c = (1/n_c) Σ_{i: y_i = c} f_i / ‖f_i‖ (the authors' prototypes; ‖P_c‖ ≤ 1 measures how
    tightly the old model groups class c), scaled to unit length when ``normalize``.
    Computed in float64 and returned in the features' dtype, on their device. Following the
    authors, the old model is run on the *new* training data, so classes the old model never
    saw also get a prototype (where the old model maps them).

    Args:
        old_features: ``(n, d)`` old-model features of the new training set.
        labels: ``(n,)`` integer classes in ``[0, num_classes)``.
        num_classes: the number of prototypes C (default ``labels.max() + 1``); every class
            must occur (checked before anything is sized by C).
        normalize: return unit-length prototypes (default False, as the authors).

    Raises:
        ShapeError: labels out of [0, C) (negative labels included).
        TooFewSamplesError: a class 0..C-1 has no sample (e.g. one stray large label).
        DegenerateInputError: a feature or prototype is zero.
    """
    f = check_matrix(old_features, name="old_features", min_samples=1)
    normalize = check_flag(normalize, name="normalize")
    y = check_labels(labels, f.shape[0], device=f.device)
    c = check_class_count(y, num_classes)  # every class populated: C <= n, before allocating
    norms = f.double().norm(dim=1, keepdim=True)
    if bool((norms == 0).any()):
        raise DegenerateInputError(
            f"old_features has {int((norms == 0).sum())} all-zero rows; their direction, and "
            "so the prototype, is undefined. Drop them or check the old model."
        )
    sums = torch.zeros(c, f.shape[1], dtype=torch.float64, device=f.device)
    sums.index_add_(0, y, f.double() / norms)
    counts = torch.bincount(y, minlength=c)
    protos = sums / counts.unsqueeze(1).double()
    lengths = protos.norm(dim=1, keepdim=True)
    if bool((lengths < 1e-12).any()):
        bad = (lengths.flatten() < 1e-12).nonzero().flatten().tolist()
        raise DegenerateInputError(
            f"the mean old feature of classes {bad} is zero; their prototype has no direction."
        )
    if normalize:
        protos = protos / lengths
    return protos.to(f.dtype)


class OCAHead(nn.Module):
    """The training head of OCA: frozen old prototypes, orthogonal map W and new classifier.

    Put it on top of the new model's embedding h ∈ R^(d+k). With h̄ = h / ‖h‖
    (``normalize=True``), ĥ_old = h̄[:d] / ‖h̄[:d]‖ and P̂ the unit prototypes:

    * new logits: ``forward(h)`` = C (W h̄), W orthogonal (:class:`OrthogonalExtension`),
      C a bias-free ``nn.Linear(d + k, num_classes)``;
    * old logits: ``old_logits(h)`` = s · ĥ_old P̂ᵀ, against frozen prototypes (a buffer);
      with ``keep_prototype_lengths``, s · ĥ_old Pᵀ (class c's logit scaled by ‖P_c‖);
    * :meth:`losses` = w_new · CE(new logits) + w_old · CE(old logits)
      + w_align · mean(1 − cos(h̄[:d], P_y)), the old terms over samples whose class has a
      prototype (class index < number of prototypes).

    Retrieval: new/new uses :meth:`new_features` (h̄, all d + k coordinates); new/old uses
    :meth:`compatible_features` (h̄[:d], unit length) against the old gallery's features.

    Args:
        prototypes: ``(C_old, d)`` frozen old-space class vectors: :func:`old_class_prototypes`
            or the old classifier's weight rows; d sets the old width.
        num_classes: classes of the new classifier.
        extra_dim: k >= 0, dimensions added to the old d.
        new_weight, old_weight, alignment_weight: loss weights (authors: 5, 10, 5 → 1, 2, 1).
        scale: s > 0, multiplier of the old cosine logits (authors' code: 1, with
            ``keep_prototype_lengths``).
        label_smoothing: in [0, 1), for both cross-entropies (authors: 0.1).
        normalize: L2-normalize h first (authors: yes).
        keep_prototype_lengths: old logits s · ĥ_old Pᵀ on the prototypes as given (the
            default, as in the authors' code, with the raw class means of unit old features
            from :func:`old_class_prototypes`, lengths ≤ 1); ``False``: unit prototypes,
            s · ĥ_old P̂ᵀ. The alignment term is a cosine either way.
        orthogonal_map: the parametrization of W, see :class:`OrthogonalExtension`.
    """

    prototypes: Tensor
    prototype_lengths: Tensor

    def __init__(
        self,
        prototypes: Any,
        *,
        num_classes: int,
        extra_dim: int,
        new_weight: float = 1.0,
        old_weight: float = 2.0,
        alignment_weight: float = 1.0,
        scale: float = 1.0,
        label_smoothing: float = 0.1,
        normalize: bool = True,
        keep_prototype_lengths: bool = True,
        orthogonal_map: str = "matrix_exp",
    ) -> None:
        super().__init__()
        p = check_matrix(prototypes, name="prototypes", min_samples=1)
        lengths = p.to(torch.float64).norm(dim=1).to(p.dtype)  # float32 squares overflow at 1e20
        if bool((lengths == 0).any()):
            bad = (lengths == 0).nonzero().flatten().tolist()
            raise DegenerateInputError(
                f"prototypes rows {bad} are zero vectors; a prototype needs a direction."
            )
        self.num_classes = check_positive_int(num_classes, name="num_classes")
        extra = check_positive_int(extra_dim, name="extra_dim", minimum=0)
        width = p.shape[1] + extra
        larger = "extra_dim" if extra > self.num_classes else "num_classes"
        check_fits_in_memory(
            self.num_classes * width,
            dtype=p.dtype,
            device=p.device,
            name=larger,
            value=extra if larger == "extra_dim" else self.num_classes,
            what=f"the new classifier (C, d + k) = ({self.num_classes}, {width})",
        )
        self.new_weight = check_scalar_in_range(new_weight, name="new_weight", low=0, high=1e9)
        self.old_weight = check_scalar_in_range(old_weight, name="old_weight", low=0, high=1e9)
        self.alignment_weight = check_scalar_in_range(
            alignment_weight, name="alignment_weight", low=0, high=1e9
        )
        self.scale = check_scalar_in_range(scale, name="scale", low=0, high=1e9, low_open=True)
        self.label_smoothing = check_scalar_in_range(
            label_smoothing, name="label_smoothing", low=0, high=1, high_open=True
        )
        self.normalize = check_flag(normalize, name="normalize")
        dtype = p.dtype
        self.register_buffer("prototypes", (p / lengths.unsqueeze(1)).detach().clone())
        # per-class logit scale: ‖P_c‖ (authors' code) or 1 (unit prototypes)
        keep = check_flag(keep_prototype_lengths, name="keep_prototype_lengths")
        kept = lengths.detach().clone() if keep else torch.ones_like(lengths)
        self.register_buffer("prototype_lengths", kept)
        self.extension = OrthogonalExtension(
            p.shape[1], extra_dim, orthogonal_map=orthogonal_map, device=p.device, dtype=dtype
        )
        self.classifier = nn.Linear(
            self.extension.width, self.num_classes, bias=False, device=p.device, dtype=dtype
        )

    @property
    def old_dim(self) -> int:
        """d, the width of the old space."""
        return self.extension.old_dim

    @property
    def width(self) -> int:
        """d + k, the width the new model's embedding must have."""
        return self.extension.width

    def _prepare(self, h: Any, *, multiplied: bool = True) -> Tensor:
        """h̄ after validation; ``multiplied``: h meets the parameters, so needs their dtype."""
        t = _check_features(
            h,
            width=self.width,
            name="h",
            device=self.prototypes.device,
            dtype=self.prototypes.dtype if multiplied else None,
        )
        return F.normalize(t, dim=1) if self.normalize else t

    def new_features(self, h: Tensor) -> Tensor:
        """The new retrieval feature h̄ (``(n, d + k)``; unit rows when ``normalize``)."""
        return self._prepare(h, multiplied=False)

    def compatible_features(self, h: Tensor) -> Tensor:
        """h̄[:, :d] scaled to unit rows: new features to compare with an old gallery."""
        return F.normalize(self._prepare(h, multiplied=False)[:, : self.old_dim], dim=1)

    def forward(self, h: Tensor) -> Tensor:
        """New-class logits C (W h̄), shape ``(n, num_classes)``."""
        z: Tensor = self.extension.linear(self._prepare(h))
        logits: Tensor = self.classifier(z)
        return logits

    def old_logits(self, h: Tensor) -> Tensor:
        """s · ‖P_c‖ · cos(h̄[:d], P_c) for every prototype c (‖P_c‖ = 1 unless
        ``keep_prototype_lengths``), shape ``(n, C_old)``."""
        old = F.normalize(self._prepare(h)[:, : self.old_dim], dim=1)
        return self.scale * (old @ self.prototypes.T) * self.prototype_lengths

    def losses(self, h: Tensor, labels: Any) -> OCALosses:
        """The OCA loss terms for a batch of new embeddings ``h`` and their ``labels``."""
        hb = self._prepare(h)
        y = check_labels(labels, hb.shape[0], device=hb.device)
        check_label_range(y, self.num_classes)
        new_logits = self.classifier(self.extension.linear(hb))
        new_ce = F.cross_entropy(new_logits, y, label_smoothing=self.label_smoothing)
        has_proto = y < self.prototypes.shape[0]
        if bool(has_proto.any()):
            old = F.normalize(hb[has_proto, : self.old_dim], dim=1)
            y_old = y[has_proto]
            cos = old @ self.prototypes.T
            old_ce = F.cross_entropy(
                self.scale * cos * self.prototype_lengths,
                y_old,
                label_smoothing=self.label_smoothing,
            )
            alignment = (1.0 - cos.gather(1, y_old.unsqueeze(1))).mean()
        else:
            old_ce = alignment = new_ce.new_zeros(())
        total = (
            self.new_weight * new_ce + self.old_weight * old_ce + self.alignment_weight * alignment
        )
        return OCALosses(total, new_ce, old_ce, alignment)


def oca_step(
    model: Callable[[Tensor], Tensor],
    head: OCAHead,
    x: Tensor,
    labels: Tensor,
    optimizer: torch.optim.Optimizer,
) -> OCALosses:
    """One optimizer step of OCA training: h = model(x), loss = head.losses(h, labels).

    Zeroes the gradients, back-propagates ``total`` and steps ``optimizer`` (which should
    hold the parameters of ``model`` and ``head``). Usable inside any training loop; returns
    the detached loss terms for logging.
    """
    if not callable(model):
        raise InputTypeError(
            f"model must be a callable (an nn.Module or a function of a tensor), got "
            f"{type(model).__name__}."
        )
    if not isinstance(head, OCAHead):
        raise InputTypeError(f"head must be an OCAHead, got {type(head).__name__}.")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise InputTypeError(
            f"optimizer must be a torch.optim.Optimizer (holding the parameters of model and "
            f"head), got {type(optimizer).__name__}."
        )
    optimizer.zero_grad()
    terms = head.losses(model(x), labels)
    terms.total.backward()
    optimizer.step()
    return OCALosses(
        *(
            t.detach()
            for t in (
                terms.total,
                terms.new_classification,
                terms.old_classification,
                terms.alignment,
            )
        )
    )


@dataclass(frozen=True)
class ClassRetrieval:
    """Class-level retrieval scores (0-dim float64 tensors, in [0, 1]).

    ``top_k`` maps each k to the fraction of queries whose first k gallery items hold one of
    their class (the CMC at k; ``top_k[1]`` is top-1 accuracy), as in
    :class:`~subspaces.align.translators.TranslationScores`; ``mean_average_precision``: mean
    over queries of the average precision of the ranked gallery; ``n_queries``: queries with
    at least one relevant gallery item (the others are skipped).
    """

    top_k: dict[int, Tensor]
    mean_average_precision: Tensor
    n_queries: int

    def as_dict(self) -> dict[str, float]:
        """Plain floats, keyed ``top1``, ``top5``..., ``map`` (for tables)."""
        out = {f"top{k}": float(v) for k, v in self.top_k.items()}
        out["map"] = float(self.mean_average_precision)
        return out


def class_retrieval(
    query: Any,
    gallery: Any,
    query_labels: Any,
    gallery_labels: Any,
    *,
    ks: Sequence[int] = (1, 5),
    exclude_self: bool = False,
    block_size: int = 512,
) -> ClassRetrieval:
    """Rank a gallery by cosine similarity to each query and score it by class labels.

    For query q, the gallery is sorted by cos(q, g) (descending; ties by lower gallery index);
    g is relevant when it has q's class. top-k = mean of [a relevant item in the first k]
    (CMC; top-1 accuracy at k = 1); AP(q) = (1/R) Σ_{r: item r relevant} precision@r;
    mAP = mean AP (the CMC and mAP of the backward-compatibility literature). For backward
    compatibility, pass new features of the queries and old features of the gallery, both
    d wide (:meth:`OCAHead.compatible_features`).
    Invariant to positive rescaling of each row and to a common orthogonal map of both sides.
    Processed in row blocks: memory O(block_size × n_gallery).

    Args:
        query: ``(n_q, d)`` query features. gallery: ``(n_g, d)`` gallery features.
        query_labels, gallery_labels: their integer classes.
        ks: the cut-offs of ``top_k`` (default 1 and 5).
        exclude_self: query i and gallery item i are the same sample (query set = gallery
            set, leave-one-out): item i is dropped from query i's ranking.
        block_size: queries per block.
    """
    q = check_matrix(query, name="query", min_samples=1)
    g = check_matrix(gallery, name="gallery", min_samples=1)
    if q.shape[1] != g.shape[1]:
        raise ShapeError(
            f"query and gallery must have the same width, got {tuple(q.shape)} and "
            f"{tuple(g.shape)}; compare a new model with an old gallery through its first d "
            "coordinates (OCAHead.compatible_features)."
        )
    check_same_device(q, g, names=("query", "gallery"))
    yq = check_labels(query_labels, q.shape[0], name="query_labels", device=q.device)
    yg = check_labels(gallery_labels, g.shape[0], name="gallery_labels", device=g.device)
    cutoffs = _check_ks(ks)
    block_size = check_positive_int(block_size, name="block_size")
    exclude_self = check_flag(exclude_self, name="exclude_self")
    if exclude_self and q.shape[0] != g.shape[0]:
        raise ShapeError(
            f"exclude_self needs the queries and the gallery to be the same samples, got "
            f"{q.shape[0]} queries and {g.shape[0]} gallery items."
        )
    dtype = torch.promote_types(q.dtype, g.dtype)
    qn = unit_rows(q.to(dtype), name="query")
    gn = unit_rows(g.to(dtype), name="gallery")
    n_g = g.shape[0]
    ranks = torch.arange(1, n_g + 1, device=q.device, dtype=torch.float64)
    hits = {k: torch.zeros((), dtype=torch.float64, device=q.device) for k in cutoffs}
    ap_sum = torch.zeros((), dtype=torch.float64, device=q.device)
    n_valid = 0
    for start in range(0, q.shape[0], block_size):
        stop = min(start + block_size, q.shape[0])
        sims = qn[start:stop] @ gn.T
        relevant = yq[start:stop, None] == yg[None, :]
        if exclude_self:
            rows = torch.arange(stop - start, device=q.device)
            sims[rows, rows + start] = -torch.inf
            relevant[rows, rows + start] = False
        order = sims.argsort(dim=1, descending=True, stable=True)  # ties: lower gallery index
        rel = relevant.gather(1, order)
        n_rel = rel.sum(dim=1)
        valid = n_rel > 0
        rel = rel[valid]
        relf = rel.double()
        precision = relf.cumsum(dim=1) / ranks
        ap_sum = ap_sum + ((precision * relf).sum(dim=1) / n_rel[valid].double()).sum()
        first_hit = rel.double().argmax(dim=1)  # rank - 1 of the first relevant item
        for k in cutoffs:
            hits[k] = hits[k] + (first_hit < k).double().sum()
        n_valid += int(valid.sum())
    if n_valid == 0:
        raise DegenerateInputError(
            "no query has a gallery item of its class, so retrieval scores are undefined; "
            "check the labels."
        )
    return ClassRetrieval({k: v / n_valid for k, v in hits.items()}, ap_sum / n_valid, n_valid)
