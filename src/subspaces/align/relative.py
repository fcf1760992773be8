"""Relative projection and zero-shot stitching (Moschella et al., ICLR 2023).

Two encoders trained from different seeds embed the same inputs in spaces that differ,
roughly, by an angle-preserving map. Described by its similarities to a fixed set of anchor
*inputs* (each embedded by the encoder at hand), a sample gets nearly the same relative
vector from both encoders. So a head trained on encoder B's relative space can be applied
to encoder A's relative space with no training on A: zero-shot stitching.

* :func:`relative_projection` — x ↦ (s(x, a_1), ..., s(x, a_k)) for the similarity
  functions of Moschella et al. (cosine) and Cannistraci et al. (ICLR 2024, "From Bricks to
  Bridges": Euclidean, L1, L∞), plus plain inner products;
* :class:`RelativeProjection` — the same as an ``nn.Module`` holding the anchors, built from
  an encoder and anchor inputs with :meth:`RelativeProjection.from_encoder`;
* :func:`fit_classification_head` — trains a linear or MLP head with cross-entropy on
  features (e.g. B's relative representation), to be applied to A's.

Anchor selection (given, random, farthest-point, k-means nearest samples) is
:func:`subspaces.similarity.relative.select_anchors`; the maths is shared with
:func:`subspaces.similarity.relative.relative_representation`.

Example::

    proj_b = RelativeProjection.from_encoder(encoder_b, x_train[anchor_idx])
    head = fit_classification_head(proj_b(encoder_b(x_train)), y_train)
    proj_a = RelativeProjection.from_encoder(encoder_a, x_train[anchor_idx])
    stitched = nn.Sequential(encoder_a, proj_a, head)  # no training on A
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
from torch import Tensor, nn

from subspaces._checks import (
    MAX_RATE,
    InputTypeError,
    check_choice,
    check_class_count,
    check_fits_in_memory,
    check_flag,
    check_labels,
    check_matrix,
    check_positive_int,
    check_positive_ints,
    check_positive_real,
    check_seed,
)
from subspaces.similarity.relative import (
    RELATIVE_SIMILARITIES,
    RelativeKind,
    relative_representation,
)

__all__ = [
    "RelativeProjection",
    "fit_classification_head",
    "relative_projection",
]


def relative_projection(
    x: Any,
    anchors: Any,
    *,
    similarity: RelativeKind = "cosine",
    center: bool = False,
    normalize: bool = False,
) -> Tensor:
    """Relative projection of the rows of ``x`` onto ``anchors`` (Moschella et al., 2023).

    r(x_i)_j = s(x_i, a_j) for the k anchors a_j embedded in the same space as ``x``:

    ==============  ==========================  ============================================
    ``similarity``  s(x, a)                     invariant to (one map on points and anchors)
    ==============  ==========================  ============================================
    ``"cosine"``    <x, a> / (‖x‖ ‖a‖)          orthogonal maps, isotropic scaling c ≠ 0
    ``"linear"``    <x, a>                      orthogonal maps
    ``"euclidean"`` ‖x − a‖₂                    orthogonal maps, translation
    ``"l1"``        ‖x − a‖₁                    translation, signed coordinate permutations
    ``"linf"``      ‖x − a‖∞                    translation, signed coordinate permutations
    ==============  ==========================  ============================================

    ``center=True`` subtracts the anchors' mean from points and anchors first, adding
    translation invariance to cosine and linear. ``normalize=True`` rescales each relative
    vector to unit Euclidean norm, adding isotropic-scaling invariance to linear (whose
    vector scales by c²) and to the distances (which scale by |c|). None is invariant to a
    general (anisotropic) linear map. Cosine is the paper's choice; the distances are those
    of Cannistraci et al. (2024), whose point is that different model pairs are related by
    different transformation classes. Entries in [-1, 1] for cosine, >= 0 for distances.

    Args:
        x: (n, d) representation, e.g. an encoder's output.
        anchors: (k, d) anchor inputs embedded by the same encoder, k >= 2 (with one
            anchor a cosine relative vector is ±1 and carries nothing).
        similarity: ``"cosine"``, ``"linear"``, ``"euclidean"``, ``"l1"`` or ``"linf"``.
        center: center on the anchors' mean first.
        normalize: scale each relative vector to unit norm.

    Returns:
        An (n, k) tensor in the common dtype of ``x`` and ``anchors``, on their device,
        differentiable with respect to both.

    Raises:
        ShapeError: ``anchors`` has another width than ``x`` (they are not in its space),
            or either is not 2-D.
        TooFewSamplesError: fewer than 2 anchors.
        DegenerateInputError: a zero anchor with cosine.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(30, 4, generator=g)
        >>> q = torch.linalg.qr(torch.randn(4, 4, generator=g))[0]
        >>> r = relative_projection(x, x[:5])
        >>> r.shape
        torch.Size([30, 5])
        >>> moved = relative_projection(3.0 * x @ q, 3.0 * x[:5] @ q)  # rotated and scaled
        >>> bool(torch.allclose(r, moved, atol=1e-5))
        True
    """
    return relative_representation(
        x, anchors, similarity=similarity, center=center, normalize=normalize
    )


class RelativeProjection(nn.Module):
    """``nn.Module`` mapping an encoder's output to its relative space over fixed anchors.

    ``forward(z)`` is :func:`relative_projection` ``(z, anchors, ...)``; the anchors (the
    anchor inputs embedded by the same encoder) are a buffer, so they follow ``.to()`` and
    are saved in the state dict but are not trained. For zero-shot stitching, build one per
    encoder from the *same* anchor inputs (:meth:`from_encoder`) and put a head trained on
    one encoder's relative space after the other's projection.

    Args:
        anchors: (k, d) anchors in the encoder's output space, k >= 2 (with one anchor a
            cosine relative vector is ±1 and carries nothing).
        similarity, center, normalize: as in :func:`relative_projection`.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(30, 4, generator=g)
        >>> q = torch.linalg.qr(torch.randn(4, 4, generator=g))[0]
        >>> proj = RelativeProjection.from_encoder(torch.nn.Identity(), x[:5])
        >>> proj(x).shape
        torch.Size([30, 5])
        >>> proj
        RelativeProjection(n_anchors=5, width=4, similarity='cosine', center=False, normalize=False)
    """

    anchors: Tensor

    def __init__(
        self,
        anchors: Any,
        *,
        similarity: RelativeKind = "cosine",
        center: bool = False,
        normalize: bool = False,
    ) -> None:
        super().__init__()
        self.similarity = cast(
            RelativeKind, check_choice(similarity, name="similarity", choices=RELATIVE_SIMILARITIES)
        )
        self.center = check_flag(center, name="center")
        self.normalize = check_flag(normalize, name="normalize")
        a = check_matrix(anchors, name="anchors", min_samples=1)
        relative_representation(a[:1], a, similarity=self.similarity)  # validates the anchors
        self.register_buffer("anchors", a.detach().clone())

    @classmethod
    def from_encoder(
        cls,
        encoder: Callable[[Tensor], Tensor],
        anchor_inputs: Tensor,
        *,
        similarity: RelativeKind = "cosine",
        center: bool = False,
        normalize: bool = False,
    ) -> RelativeProjection:
        """Embed ``anchor_inputs`` with ``encoder`` (no gradient) and hold them as anchors.

        Put the encoder in eval mode first if it has dropout or batch norm. The encoder's
        output must be (k, d); flatten it inside the encoder otherwise.
        """
        if not callable(encoder):
            raise InputTypeError(
                f"encoder must be callable (an nn.Module or a function), got "
                f"{type(encoder).__name__}."
            )
        with torch.no_grad():
            anchors = encoder(anchor_inputs)
        return cls(anchors, similarity=similarity, center=center, normalize=normalize)

    def forward(self, z: Tensor) -> Tensor:
        """The (n, k) relative representation of the encoder output ``z`` (n, d)."""
        return relative_projection(
            z,
            self.anchors,
            similarity=self.similarity,
            center=self.center,
            normalize=self.normalize,
        )

    def extra_repr(self) -> str:
        k, d = self.anchors.shape
        return (
            f"n_anchors={k}, width={d}, similarity={self.similarity!r}, center={self.center}, "
            f"normalize={self.normalize}"
        )


_TRAINING_COPIES = 4  # a trained parameter, its gradient and Adam's two moments


def fit_classification_head(
    features: Any,
    labels: Any,
    *,
    hidden: Sequence[int] = (),
    num_classes: int | None = None,
    epochs: int = 100,
    lr: float = 1e-2,
    weight_decay: float = 0.0,
    batch_size: int = 128,
    seed: int | torch.Generator | None = 0,
) -> nn.Sequential:
    """Train a linear (``hidden=()``) or ReLU MLP classification head on fixed features.

    Minimizes the mean cross-entropy of ``head(features)`` against ``labels`` with Adam
    over ``epochs`` passes of shuffled mini-batches. Used for zero-shot stitching: fit on
    encoder B's relative representation, then apply to encoder A's (Moschella et al., 2023);
    or on absolute features as the baseline that should fail across encoders.

    Reproducible by default: an int ``seed`` sets the initialization (under
    :func:`torch.random.fork_rng`, so the global random state is left as it was) and the
    batch order; a ``torch.Generator`` is drawn from for both; ``None`` uses the global
    random state (as :func:`~subspaces.align.stitching.fit_stitch` takes it). Trains on the
    features' device (with gradients enabled even under ``torch.no_grad()``); returns the head in
    eval mode, in the features' dtype.

    Args:
        features: (n, d) inputs of the head (detached: the encoder is not trained).
        labels: (n,) integer classes in [0, num_classes).
        hidden: widths of hidden layers (ReLU); empty for a linear head.
        num_classes: number of outputs; default ``labels.max() + 1``, which must not exceed
            n (a larger label is refused as a likely stray: pass num_classes to mean it).
            A num_classes given is honored, empty classes included, unless the head
            cannot fit in the device's memory.
        epochs, lr, weight_decay, batch_size: Adam's training schedule; ``lr`` in (0, 1e6)
            and ``weight_decay`` in [0, 1e6) (larger steps overflow float32 parameters).
        seed: int seed in [0, 2**63 - 1], generator or ``None`` (global state) of
            initialization and batch order.

    Returns:
        An ``nn.Sequential`` mapping (m, d) features to (m, num_classes) logits.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(30, 4, generator=g)
        >>> q = torch.linalg.qr(torch.randn(4, 4, generator=g))[0]
        >>> labels = (x[:, 0] > 0).long()
        >>> head = fit_classification_head(x, labels, epochs=100, lr=0.1, seed=0)
        >>> float((head(x).argmax(1) == labels).float().mean())
        1.0
    """
    x = check_matrix(features, name="features", min_samples=2).detach()
    y = check_labels(labels, x.shape[0], device=x.device)
    widths = list(check_positive_ints(hidden, name="hidden", allow_empty=True))
    epochs = check_positive_int(epochs, name="epochs")
    batch_size = check_positive_int(batch_size, name="batch_size")
    lr = check_positive_real(lr, name="lr", high=MAX_RATE)
    weight_decay = check_positive_real(
        weight_decay, name="weight_decay", allow_zero=True, high=MAX_RATE
    )
    seed = check_seed(seed)
    # a given num_classes is honored (empty classes allowed); an inferred one must be <= n
    num_classes = check_class_count(y, num_classes, allow_empty=True)
    sizes = [x.shape[1], *widths, num_classes]
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        option, value = ("num_classes", b) if i == len(widths) else ("hidden", widths[i])
        check_fits_in_memory(
            _TRAINING_COPIES * (a * b + b),
            dtype=x.dtype,
            device=x.device,
            name=option,
            value=value,
            what=f"the head's layer {a} → {b} (weights, gradients and Adam's two moments)",
        )
    if isinstance(seed, torch.Generator):
        order: torch.Generator | None = seed
        init_seed: int | None = int(torch.randint(0, 2**62, (1,), generator=seed))
    elif seed is None:
        order, init_seed = None, None
    else:
        init_seed = seed
        order = torch.Generator().manual_seed(init_seed)
    with torch.random.fork_rng(devices=[], enabled=init_seed is not None):
        if init_seed is not None:
            torch.manual_seed(init_seed)
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(itertools.pairwise(sizes)):
            if i:
                layers.append(nn.ReLU())
            layers.append(nn.Linear(a, b))
        head = nn.Sequential(*layers).to(device=x.device, dtype=x.dtype)
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
    n = x.shape[0]
    head.train()
    with torch.enable_grad():  # also when called under torch.no_grad()
        for _ in range(epochs):
            for idx in torch.randperm(n, generator=order).to(x.device).split(batch_size):
                opt.zero_grad()
                loss = nn.functional.cross_entropy(head(x[idx]), y[idx])
                loss.backward()
                opt.step()
    return head.eval()
