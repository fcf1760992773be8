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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrizations

from subspaces._base import Result
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
    check_scalar_in_range,
)

__all__ = [
    "OCAHead",
    "OCALosses",
    "OrthogonalExtension",
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

    Examples:
        >>> import torch
        >>> _ = torch.manual_seed(0)  # W's initialization
        >>> ext = OrthogonalExtension(3, 2)
        >>> w = ext.weight.detach()
        >>> bool(torch.allclose(w.T @ w, torch.eye(5), atol=1e-5))
        True
        >>> ext.extra_part(torch.ones(4, 5)).shape
        torch.Size([4, 2])
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
class OCALosses(Result):
    """The terms of the OCA loss for one batch (0-dim tensors, differentiable).

    ``total`` = new_weight · ``new_classification`` + old_weight · ``old_classification``
    + alignment_weight · ``alignment``. The old terms average over the samples whose class
    has a prototype; they are 0 when the batch holds none.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> old = torch.randn(40, 3, generator=g)
        >>> labels = torch.arange(40) % 4
        >>> prototypes = old_class_prototypes(old, labels)
        >>> _ = torch.manual_seed(0)  # the head's initialization
        >>> head = OCAHead(prototypes, num_classes=4, extra_dim=2)
        >>> terms = head.losses(torch.randn(8, 5, generator=g), labels[:8])
        >>> sorted(terms.as_dict())
        ['alignment', 'new_classification', 'old_classification', 'total']
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

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> old = torch.randn(40, 3, generator=g)
        >>> labels = torch.arange(40) % 4
        >>> prototypes = old_class_prototypes(old, labels)
        >>> prototypes.shape, bool((prototypes.norm(dim=1) <= 1).all())
        (torch.Size([4, 3]), True)
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

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> old = torch.randn(40, 3, generator=g)
        >>> labels = torch.arange(40) % 4
        >>> prototypes = old_class_prototypes(old, labels)
        >>> _ = torch.manual_seed(0)  # the head's initialization
        >>> head = OCAHead(prototypes, num_classes=6, extra_dim=2)
        >>> h = torch.randn(8, 5, generator=g)
        >>> head(h).shape, head.old_logits(h).shape, head.compatible_features(h).shape
        (torch.Size([8, 6]), torch.Size([8, 4]), torch.Size([8, 3]))
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

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> old = torch.randn(40, 3, generator=g)
        >>> labels = torch.arange(40) % 4
        >>> prototypes = old_class_prototypes(old, labels)
        >>> _ = torch.manual_seed(0)  # initializations
        >>> model = torch.nn.Linear(6, 5)
        >>> head = OCAHead(prototypes, num_classes=4, extra_dim=2)
        >>> opt = torch.optim.SGD([*model.parameters(), *head.parameters()], lr=0.1)
        >>> inputs = torch.randn(40, 6, generator=g)
        >>> first = oca_step(model, head, inputs, labels, opt).total
        >>> for _ in range(20):
        ...     last = oca_step(model, head, inputs, labels, opt).total
        >>> bool(last < first), last.requires_grad
        (True, False)
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
