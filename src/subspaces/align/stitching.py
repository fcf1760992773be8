"""Trainable stitching layers: functional similarity of two networks' layers.

Model stitching (Lenc & Vedaldi, 2015, "Understanding image representations by measuring
their equivariance and equivalence"; Bansal, Nakkiran & Barak, 2021, "Revisiting Model
Stitching to Compare Neural Representations"; Csiszárik et al., 2021, "Similarity and
Matching of Neural Network Representations") asks whether layer ``i`` of network A can
*replace* layer ``j`` of network B. Both networks are frozen; only a small map ``S`` between
the two layers is trained:

    stitched(x) = back_B( S( front_A(x) ) ),     S(h) = h Wᵀ (+ b),

where ``front_A`` runs A from its input up to layer ``i`` and ``back_B`` runs B from layer
``j`` onwards. The accuracy of the stitched network on held-out data, against B's own, is a
*functional* similarity score: a small penalty (B's accuracy minus the stitched one) says
that A's layer ``i`` carries what B's layers after ``j`` need, in a linearly accessible form.

The stitch can be initialized in closed form by least squares on paired activations
(``front_A(x)`` against B's own layer ``j``), Csiszárik et al.'s "direct matching":

    W, b = argmin Σ_k ||y_k - W h_k - b||²  ⇒  Wᵀ = Cxx⁺ Cxy,  b = ȳ - W x̄,

with ``Cxx = Xcᵀ Xc``, ``Cxy = Xcᵀ Yc`` the centered scatter matrices (for a linear stitch,
without ``b``, the uncentered ``XᵀX`` and ``XᵀY``), and then fine-tuned on the task loss.
The closed form is :func:`~subspaces.align.translators.linear_map` (the same solver as
:class:`~subspaces.align.translators.LinearTranslator`, in ``nn.Linear`` layout here).

Public names: :class:`StitchingLayer` (with :meth:`StitchingLayer.from_least_squares`),
:class:`StitchedModel`, :func:`fit_stitch`, :func:`stitching_score`, :class:`StitchingScore`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from subspaces._base import Result
from subspaces._checks import (
    MAX_RATE,
    DegenerateInputError,
    InputTypeError,
    ShapeError,
    as_float_tensor,
    as_tensor,
    check_choice,
    check_dense,
    check_device,
    check_finite,
    check_fits_in_memory,
    check_flag,
    check_float_dtype,
    check_labels,
    check_positive_int,
    check_positive_real,
    check_same_device,
    seed_generator,
)
from subspaces.align.translators import linear_map

__all__ = [
    "StitchedModel",
    "StitchingLayer",
    "StitchingScore",
    "fit_stitch",
    "stitching_score",
]

_INITS = ("identity", "random", "zeros")
_LOSSES = ("cross_entropy", "mse")
_F64 = torch.float64


# --------------------------------------------------------------------------- closed form


# --------------------------------------------------------------------------- the stitch


class StitchingLayer(nn.Module):
    """A linear or affine stitch ``S(h) = h Wᵀ (+ b)`` between two layers' feature spaces.

    Applied along ``feature_dim`` of its input, so that for convolutional feature maps
    ``(n, c, h, w)`` with ``feature_dim=1`` it is the 1 × 1 convolution of Lenc & Vedaldi
    (2015) and Bansal et al. (2021); for ``(n, d)`` activations (the default, ``-1``) it is
    an ``nn.Linear``.

    Args:
        in_features: width of the layer the stitch reads (network A, layer i).
        out_features: width of the layer it feeds (network B, layer j).
        bias: affine (``True``) or linear (``False``) stitch.
        init: ``"identity"`` (``W = I``, rectangular when the widths differ: the first
            ``min(d1, d2)`` coordinates are copied, the rest are zero; ``b = 0``),
            ``"random"`` (``nn.Linear``'s uniform initialization, drawn from ``seed``)
            or ``"zeros"``. Use :meth:`fit_least_squares` or :meth:`from_least_squares`
            for the closed-form initialization from paired activations.
        feature_dim: the input's dimension holding the features.
        seed: random source of ``init="random"``: an ``int``, a ``torch.Generator`` or
            ``None`` (torch's global generator).
        device, dtype: of the parameters.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> h = torch.randn(30, 3, generator=g)
        >>> stitch = StitchingLayer.from_least_squares(h, h @ torch.randn(3, 2, generator=g) + 1.0)
        >>> stitch
        StitchingLayer(in_features=3, out_features=2, affine, feature_dim=-1)
        >>> StitchingLayer(4, 3, init="random", seed=0).weight.shape
        torch.Size([3, 4])
    """

    weight: nn.Parameter
    bias: nn.Parameter | None

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        init: str = "identity",
        feature_dim: int = -1,
        seed: int | torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int(in_features, name="in_features")
        self.out_features = check_positive_int(out_features, name="out_features")
        self.init = check_choice(init, name="init", choices=_INITS)
        self.feature_dim = _check_feature_dim(feature_dim)
        bias = check_flag(bias, name="bias")
        generator = seed_generator(seed)
        kw: dict[str, Any] = {"device": check_device(device), "dtype": check_float_dtype(dtype)}
        larger = "in_features" if self.in_features >= self.out_features else "out_features"
        check_fits_in_memory(
            self.out_features * (self.in_features + 1),
            dtype=kw["dtype"] or torch.get_default_dtype(),
            device=kw["device"],
            name=larger,
            value=getattr(self, larger),
            what=f"the stitch's (out, in) = ({self.out_features}, {self.in_features}) weight",
        )
        self.weight = nn.Parameter(torch.empty(self.out_features, self.in_features, **kw))
        self.bias = nn.Parameter(torch.empty(self.out_features, **kw)) if bias else None
        self.reset_parameters(seed=generator)

    def reset_parameters(self, *, seed: int | torch.Generator | None = None) -> None:
        """Re-initialize the parameters as ``init`` says (``seed``: the draws of ``"random"``)."""
        generator = seed_generator(seed)
        with torch.no_grad():
            if self.init == "identity":
                nn.init.eye_(self.weight)
            elif self.init == "zeros":
                self.weight.zero_()
            else:  # nn.Linear's default: U(-1/sqrt(d1), 1/sqrt(d1)) for weight and bias
                bound = 1.0 / math.sqrt(self.in_features)
                _uniform_(self.weight, bound, generator)
            if self.bias is not None:
                if self.init == "random":
                    bound = 1.0 / math.sqrt(self.in_features)
                    _uniform_(self.bias, bound, generator)
                else:
                    self.bias.zero_()

    @classmethod
    def from_least_squares(
        cls,
        x: Any,
        y: Any,
        *,
        bias: bool = True,
        ridge: float = 0.0,
        rtol: float | None = None,
        feature_dim: int = -1,
    ) -> StitchingLayer:
        """A stitch initialized by least squares from paired activations ``x → y``.

        Widths are read from the data; see :meth:`fit_least_squares` for the arguments.
        The parameters take the dtype of the data and live on its device.
        """
        tx, ty = _features_last(x, "x", feature_dim), _features_last(y, "y", feature_dim)
        stitch = cls(
            tx.shape[-1],
            ty.shape[-1],
            bias=bias,
            init="zeros",
            feature_dim=feature_dim,
            device=tx.device,
            dtype=torch.promote_types(tx.dtype, ty.dtype),
        )
        return stitch.fit_least_squares(x, y, ridge=ridge, rtol=rtol)

    def fit_least_squares(
        self, x: Any, y: Any, *, ridge: float = 0.0, rtol: float | None = None
    ) -> StitchingLayer:
        """Set the parameters to the least-squares map from ``x`` to ``y``; returns ``self``.

        ``x`` holds activations of the layer the stitch reads and ``y`` those of the layer it
        replaces, for the same inputs, in the stitch's layout (features along
        ``feature_dim``; the other dimensions, e.g. spatial positions, count as samples).
        The closed form is :func:`~subspaces.align.translators.linear_map` (affine if the
        stitch has a bias; ``ridge`` is its relative ridge, ``λ = ridge · tr(Cxx) / d1``,
        ``rtol`` its rank tolerance): ``Wᵀ = (Cxx + λI)⁺ Cxy``, ``b = ȳ − W x̄``, the
        minimum-norm solution for dead or collinear units, and the "direct matching"
        initialization of Csiszárik et al. (2021). Exact when ``y`` is an affine (linear)
        image of ``x``.
        """
        tx = _features_last(x, "x", self.feature_dim)
        ty = _features_last(y, "y", self.feature_dim)
        self._check_width(tx.shape[-1], self.in_features, "x", "in_features", tuple(tx.shape))
        self._check_width(ty.shape[-1], self.out_features, "y", "out_features", tuple(ty.shape))
        if tx.shape[:-1] != ty.shape[:-1]:
            raise ShapeError(
                f"x and y must hold the same samples (and positions) in the same order, but "
                f"x has shape {tuple(tx.shape)} and y {tuple(ty.shape)} with features last."
            )
        fitted = linear_map(
            tx.reshape(-1, tx.shape[-1]),
            ty.reshape(-1, ty.shape[-1]),
            bias=self.bias is not None,
            ridge=ridge,
            rtol=rtol,
        )
        with torch.no_grad():
            self.weight.copy_(fitted.weight.T.to(self.weight))
            if self.bias is not None:
                self.bias.copy_(fitted.bias.to(self.bias))
        return self

    @staticmethod
    def _check_width(
        got: int, expected: int, name: str, option: str, shape: tuple[int, ...]
    ) -> None:
        if got != expected:
            raise ShapeError(
                f"{name} has {got} features (shape {shape}, features last) but the stitch has "
                f"{option}={expected}; build the stitch with {option}={got} or check which "
                "layer the activations come from."
            )

    def forward(self, h: Tensor) -> Tensor:
        """Apply the stitch along ``feature_dim`` (``h`` a tensor of the stitch's dtype and
        device; checked without reading its values: NaN propagates, as in any layer)."""
        if not isinstance(h, Tensor):
            raise InputTypeError(
                f"the stitch's input must be a torch.Tensor, got {type(h).__name__}; convert "
                "it with torch.as_tensor(...)."
            )
        check_dense(h, name="the stitch's input")
        if h.dtype != self.weight.dtype:
            raise InputTypeError(
                f"the stitch's input has dtype {h.dtype} but its parameters are "
                f"{self.weight.dtype}; cast one of them (e.g. stitch.to({h.dtype}))."
            )
        check_same_device(h, self.weight, names=("the stitch's input", "its parameters"))
        if h.ndim == 0:
            raise ShapeError("the stitch's input is a 0-dim tensor; pass (n, in_features).")
        fd = self.feature_dim
        if not -h.ndim <= fd < h.ndim:
            raise ShapeError(
                f"the stitch's input has shape {tuple(h.shape)} ({h.ndim}-D), which has no "
                f"feature_dim={fd}."
            )
        if h.shape[fd] != self.in_features:
            raise ShapeError(
                f"the stitch's input has {h.shape[fd]} features along feature_dim={fd} (shape "
                f"{tuple(h.shape)}) but in_features={self.in_features}; the front of network A "
                "must end at a layer of that width (or build the stitch with "
                f"in_features={h.shape[fd]})."
            )
        moved = fd not in (-1, h.ndim - 1)
        if moved:
            h = h.movedim(fd, -1)
        out = nn.functional.linear(h, self.weight, self.bias)
        return out.movedim(-1, fd) if moved else out

    def extra_repr(self) -> str:
        kind = "affine" if self.bias is not None else "linear"
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, {kind}, "
            f"feature_dim={self.feature_dim}"
        )


def _uniform_(t: Tensor, bound: float, generator: torch.Generator | None) -> None:
    """Fill ``t`` with U(-bound, bound) drawn on the generator's device (an int seed gives a
    CPU generator), so a seed draws the same numbers for parameters on any device."""
    where = generator.device if generator is not None else t.device
    draw = torch.empty(t.shape, dtype=t.dtype, device=where).uniform_(
        -bound, bound, generator=generator
    )
    t.copy_(draw)


def _check_feature_dim(feature_dim: Any) -> int:
    if isinstance(feature_dim, (bool, np.bool_)) or not isinstance(feature_dim, (int, np.integer)):
        raise InputTypeError(
            f"feature_dim must be an integer (a dimension index, e.g. -1 or 1), got "
            f"{type(feature_dim).__name__} ({feature_dim!r})."
        )
    return int(feature_dim)


def _features_last(x: Any, name: str, feature_dim: int) -> Tensor:
    feature_dim = _check_feature_dim(feature_dim)
    t = as_float_tensor(x, name=name)
    if t.ndim < 2:
        raise ShapeError(
            f"{name} must have a samples dimension and a features dimension, got shape "
            f"{tuple(t.shape)}; reshape one sample to (1, d) or one feature to (n, 1)."
        )
    if not -t.ndim <= feature_dim < t.ndim:
        raise ShapeError(
            f"{name} has shape {tuple(t.shape)}, which has no feature_dim={feature_dim}."
        )
    if feature_dim in (-1, t.ndim - 1):
        return t
    if feature_dim in (0, -t.ndim):
        raise ShapeError(f"feature_dim={feature_dim} is the samples dimension of {name}.")
    return t.movedim(feature_dim, -1)


# --------------------------------------------------------------------------- stitched model


def _check_callable(part: Any, name: str) -> None:
    if not callable(part):
        raise InputTypeError(
            f"{name} must be a callable (an nn.Module or a function of a tensor), got "
            f"{type(part).__name__}."
        )


class StitchedModel(nn.Module):
    """``back(stitch(front(x)))``: network A up to layer i, a stitch, network B from layer j.

    ``front`` maps the model's input to the activations of A's layer ``i``; ``back`` maps
    activations of B's layer ``j`` to B's output. Either may be any callable (an
    ``nn.Module``, ``nn.Sequential`` slice such as ``net[:3]`` / ``net[3:]``, or a function).
    Both are frozen: ``front`` runs under ``torch.no_grad()``; :func:`fit_stitch` trains
    inside :meth:`frozen`, which turns off ``requires_grad`` of the parameters of ``front``
    and ``back`` and puts them in eval mode (batch-norm statistics and dropout of A and B
    stay fixed), and restores both afterwards: the modules passed in are not changed.
    ``train()`` sets the stitch's mode and leaves ``front`` and ``back`` in eval mode. Only
    the stitch trains (:func:`fit_stitch`, or your own loop over
    ``model.stitch.parameters()`` inside ``with model.frozen():``).

    Args:
        front: callable, input → A's layer ``i``.
        stitch: the map between the layers, usually a :class:`StitchingLayer`.
        back: callable, B's layer ``j`` → output (logits).

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)  # the networks' initialization
        >>> net_a = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> net_b = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(64, 2, generator=g)
        >>> labels = (x[:, 0] > 0).long()
        >>> model = StitchedModel(net_a[:2], StitchingLayer(4, 4), net_b[2:])
        >>> model(x).shape, [p.shape for p in model.stitch.parameters()]
        (torch.Size([64, 2]), [torch.Size([4, 4]), torch.Size([4])])
    """

    def __init__(
        self,
        front: Callable[[Tensor], Tensor],
        stitch: nn.Module,
        back: Callable[[Tensor], Tensor],
    ) -> None:
        super().__init__()
        _check_callable(front, "front")
        _check_callable(back, "back")
        if not isinstance(stitch, nn.Module):
            raise InputTypeError(
                f"stitch must be an nn.Module (e.g. a StitchingLayer), got {type(stitch).__name__}."
            )
        self.front = front
        self.stitch = stitch
        self.back = back

    def _frozen_modules(self) -> list[nn.Module]:
        return [p for p in (self.front, self.back) if isinstance(p, nn.Module)]

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Within the block, ``front`` and ``back`` do not train; restored on exit.

        Their parameters get ``requires_grad=False`` (no gradients are computed or stored
        for networks A and B) and their modules eval mode; each parameter's flag and each
        submodule's mode are put back as they were when the block ends, even on error.
        """
        modules = self._frozen_modules()
        flags = [[q.requires_grad for q in m.parameters()] for m in modules]
        modes = [[sub.training for sub in m.modules()] for m in modules]
        try:
            for m in modules:
                m.requires_grad_(False)
                m.eval()
            yield
        finally:
            for m, m_flags, m_modes in zip(modules, flags, modes, strict=True):
                for q, flag in zip(m.parameters(), m_flags, strict=True):
                    q.requires_grad_(flag)
                for sub, mode in zip(m.modules(), m_modes, strict=True):
                    sub.training = mode

    def train(self, mode: bool = True) -> StitchedModel:
        """Set the stitch's mode; the frozen front and back stay in eval mode."""
        super().train(mode)
        for part in self._frozen_modules():
            part.eval()
        return self

    def features(self, x: Tensor) -> Tensor:
        """``front(x)``, without gradients: the activations the stitch reads."""
        with torch.no_grad():
            return self.front(x)

    def head(self, h: Tensor) -> Tensor:
        """``back(stitch(h))`` for activations ``h`` of A's layer ``i``."""
        z = self.stitch(h)
        try:
            return self.back(z)
        except RuntimeError as err:
            text = str(err)
            if "shape" not in text and "size" not in text:
                raise
            raise ShapeError(
                f"back failed on the stitch's output of shape {tuple(z.shape)}: {text}. Check "
                "that the stitch's out_features is the width of the layer of network B where "
                "back starts."
            ) from err

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


# --------------------------------------------------------------------------- training


def _as_inputs(x: Any, name: str) -> Tensor:
    """Network inputs: tensors as they are; numpy converted (float arrays to float32)."""
    t = as_tensor(x, name=name)
    if isinstance(x, np.ndarray) and t.is_floating_point():
        t = t.to(torch.float32)
    if t.ndim == 0 or t.shape[0] == 0:
        raise ShapeError(
            f"{name} must hold at least one sample along its first dimension, got shape "
            f"{tuple(t.shape)}."
        )
    return t


def _check_targets(targets: Any, n: int, loss: str | Callable[..., Tensor], device: Any) -> Tensor:
    if loss == "cross_entropy":
        return check_labels(targets, n, name="targets", device=device)
    if isinstance(targets, Tensor) and not targets.is_floating_point() and callable(loss):
        t = targets
    else:
        t = check_finite(as_float_tensor(targets, name="targets"), name="targets")
    if t.ndim == 0 or t.shape[0] != n:
        raise ShapeError(
            f"targets must have one row per sample of x ({n}), got shape {tuple(t.shape)}."
        )
    return t


def _loss_fn(loss: str | Callable[[Tensor, Tensor], Tensor]) -> Callable[[Tensor, Tensor], Tensor]:
    if callable(loss):
        return loss
    loss = check_choice(loss, name="loss", choices=_LOSSES)
    if loss == "cross_entropy":
        return nn.functional.cross_entropy
    return nn.functional.mse_loss


@contextlib.contextmanager
def _eval_mode(*parts: Any) -> Iterator[None]:
    modules = [p for p in parts if isinstance(p, nn.Module)]
    modes = [m.training for m in modules]
    try:
        for m in modules:
            m.eval()
        yield
    finally:
        for m, mode in zip(modules, modes, strict=True):
            m.train(mode)


def _batched(fn: Callable[[Tensor], Tensor], x: Tensor, batch_size: int) -> Tensor:
    return torch.cat([fn(chunk) for chunk in x.split(batch_size)])


def fit_stitch(
    model: StitchedModel,
    x: Any,
    targets: Any,
    *,
    loss: str | Callable[[Tensor, Tensor], Tensor] = "cross_entropy",
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    seed: int | torch.Generator | None = 0,
    cache_front: bool = True,
    progress: bool | Callable[[int, float], None] = False,
) -> Tensor:
    """Train the stitch of ``model`` (A and B frozen) with Adam; returns the epoch losses.

    Minimizes ``mean_k loss(back(S(front(x_k))), t_k)`` over the stitch's parameters only,
    in mini-batches drawn without replacement each epoch (Bansal et al., 2021, train the
    stitch on the task loss). The default ``loss="cross_entropy"`` takes class labels;
    ``"mse"`` regresses the outputs onto float ``targets`` of the output's shape (e.g. B's
    logits or B's layer-``j`` activations with ``back`` the identity); a callable
    ``(output, targets) -> scalar`` is used as given. The stitch ends in eval mode.

    Args:
        model: a :class:`StitchedModel`; its stitch is trained in place.
        x: ``(n, ...)`` network inputs (on the model's device). targets: ``(n,)`` class
            indices in [0, C) for the C outputs (all checked at the first step; negative
            ones, cross_entropy's ignore_index -100 included, are refused), or ``(n, ...)``
            targets.
        loss: ``"cross_entropy"``, ``"mse"`` or a callable.
        epochs, batch_size, lr, weight_decay: Adam's schedule; ``lr`` in (0, 1e6) and
            ``weight_decay`` in [0, 1e6) (:data:`~subspaces._checks.MAX_RATE`: larger steps
            overflow float32 parameters).
        seed: batch order: an int in [0, 2**63 - 1] (default 0, so runs repeat) seeds a fresh
            CPU generator,
            a ``torch.Generator`` is used as given, ``None`` draws from torch's global
            generator (as :func:`~subspaces.align.relative.fit_classification_head`).
        cache_front: compute ``front(x)`` once (the front is frozen and in eval mode, so this
            changes nothing but the time, unless the front is random in eval mode).
        progress: show a tqdm bar over epochs, or a callable ``(epoch, mean_loss)`` called
            after each epoch.

    Returns:
        ``(epochs,)`` float64 tensor: the mean training loss of each epoch.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)  # the networks' initialization
        >>> net_a = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> net_b = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(64, 2, generator=g)
        >>> labels = (x[:, 0] > 0).long()
        >>> model = StitchedModel(net_a[:2], StitchingLayer(4, 4), net_b[2:])
        >>> losses = fit_stitch(model, x, labels, epochs=5, lr=0.01, seed=0)
        >>> losses.shape, bool(losses[-1] < losses[0])
        (torch.Size([5]), True)
    """
    if not isinstance(model, StitchedModel):
        raise InputTypeError(
            f"model must be a StitchedModel (front, stitch, back), got {type(model).__name__}."
        )
    tx = _as_inputs(x, "x")
    n = tx.shape[0]
    loss_fn = _loss_fn(loss)
    tt = _check_targets(targets, n, loss, tx.device)
    epochs = check_positive_int(epochs, name="epochs")
    batch_size = check_positive_int(batch_size, name="batch_size")
    lr = check_positive_real(lr, name="lr", high=MAX_RATE)
    weight_decay = check_positive_real(
        weight_decay, name="weight_decay", allow_zero=True, high=MAX_RATE
    )
    params = [p for p in model.stitch.parameters() if p.requires_grad]
    if not params:
        raise InputTypeError("the stitch has no trainable parameters; nothing to fit.")
    generator = seed_generator(seed)
    cache_front = check_flag(cache_front, name="cache_front")
    if not callable(progress):
        check_flag(progress, name="progress")
    # class labels must index the outputs: checked on every label at the first step
    classes = (int(tt.min()), int(tt.max())) if loss == "cross_entropy" else None

    if cache_front:
        with _eval_mode(model.front):
            feats = _batched(model.features, tx, max(batch_size, 1024))

        def step_out(idx: Tensor) -> Tensor:
            return model.head(feats[idx])
    else:

        def step_out(idx: Tensor) -> Tensor:
            return model(tx[idx])

    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    callback = progress if callable(progress) else None
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc="fit_stitch", unit="epoch")
    history = torch.empty(epochs, dtype=_F64)
    stitch_mode = model.stitch.training
    try:
        with model.frozen():
            model.stitch.train()
            for epoch in range(epochs):
                total = torch.zeros((), dtype=_F64, device=tx.device)
                order = torch.randperm(n, generator=generator).to(tx.device)
                for idx in order.split(batch_size):
                    opt.zero_grad(set_to_none=True)
                    out = step_out(idx)
                    if classes is not None and out.ndim >= 2:
                        _check_classes_in_outputs(
                            classes,
                            out.shape[1],
                            name="targets",
                            returns="the stitched model gives",
                        )
                        classes = None
                    value = loss_fn(out, tt[idx])
                    value.backward()
                    opt.step()
                    total += value.detach().to(_F64) * idx.numel()
                mean = float(total) / n
                if not math.isfinite(mean):
                    raise DegenerateInputError(
                        f"the stitch's training loss became {mean} at epoch {epoch + 1}; lower lr "
                        f"(now {lr}) or check the inputs for extreme values."
                    )
                history[epoch] = mean
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{mean:.4g}")
                if callback is not None:
                    callback(epoch + 1, mean)
    finally:
        model.stitch.train(stitch_mode)
        if bar is not None:
            bar.close()
    return history


# --------------------------------------------------------------------------- the score


@dataclass(frozen=True)
class StitchingScore(Result):
    """Held-out accuracy of a stitched network against the network it borrows its back from.

    ``accuracy`` and ``loss`` (mean cross-entropy) are the stitched network's;
    ``reference_accuracy`` and ``reference_loss`` those of network B alone; ``penalty =
    reference_accuracy - accuracy`` is Bansal et al.'s stitching penalty (0 or below: A's
    layer serves B as well as B's own). All 0-dim float64 tensors; accuracies in [0, 1].

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)  # the networks' initialization
        >>> net_a = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> net_b = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(64, 2, generator=g)
        >>> labels = (x[:, 0] > 0).long()
        >>> model = StitchedModel(net_a[:2], StitchingLayer(4, 4), net_b[2:])
        >>> score = stitching_score(model, x, labels, reference=net_b)
        >>> sorted(score.as_dict())
        ['accuracy', 'loss', 'n_samples', 'penalty', 'reference_accuracy', 'reference_loss']
    """

    accuracy: Tensor
    loss: Tensor
    reference_accuracy: Tensor
    reference_loss: Tensor
    penalty: Tensor
    n_samples: int

    @property
    def relative_accuracy(self) -> Tensor:
        """``accuracy / reference_accuracy`` (Csiszárik et al., 2021)."""
        if float(self.reference_accuracy) == 0.0:
            raise DegenerateInputError(
                "the reference network has accuracy 0 on these samples, so the relative "
                "accuracy is undefined; use the penalty instead."
            )
        return self.accuracy / self.reference_accuracy


def _check_classes_in_outputs(
    classes: tuple[int, int], width: int, *, name: str, returns: str
) -> None:
    """Class indices ``[low, high]`` (of all samples) must index the ``width`` outputs;
    negative ones too are refused (cross_entropy would skip -100, its ignore_index)."""
    low, high = classes
    if low < 0 or high >= width:
        raise ShapeError(
            f"{name} hold classes in [{low}, {high}] but {returns} {width} logits per sample; "
            "pass class indices 0..C-1 of the network's outputs."
        )


@torch.no_grad()
def _accuracy_and_loss(
    fn: Callable[[Tensor], Tensor], x: Tensor, labels: Tensor, batch_size: int, name: str
) -> tuple[Tensor, Tensor]:
    correct = torch.zeros((), dtype=_F64, device=labels.device)
    total_loss = torch.zeros((), dtype=_F64, device=labels.device)
    classes = (int(labels.min()), int(labels.max()))  # every label, checked at the first batch
    for xb, yb in zip(x.split(batch_size), labels.split(batch_size), strict=True):
        logits = fn(xb)
        if logits.ndim != 2 or logits.shape[0] != xb.shape[0]:
            raise ShapeError(
                f"{name} must return (batch, num_classes) logits, got shape {tuple(logits.shape)} "
                f"for a batch of {xb.shape[0]}."
            )
        _check_classes_in_outputs(
            classes, logits.shape[1], name="labels", returns=f"{name} returns"
        )
        correct += (logits.argmax(dim=1) == yb).sum().to(_F64)
        total_loss += nn.functional.cross_entropy(logits.to(_F64), yb, reduction="sum")
    n = labels.shape[0]
    if not bool(torch.isfinite(total_loss)):
        raise DegenerateInputError(
            f"{name} returned non-finite logits (loss {float(total_loss)}); check x for NaN "
            "or infinite entries and the network for overflow."
        )
    return correct / n, total_loss / n


def stitching_score(
    model: Callable[[Tensor], Tensor],
    x: Any,
    labels: Any,
    *,
    reference: Callable[[Tensor], Tensor],
    batch_size: int = 1024,
) -> StitchingScore:
    """Stitched accuracy and loss on held-out data, beside network B's own: the penalty.

    ``penalty = acc(B) - acc(back_B ∘ S ∘ front_A)`` on ``(x, labels)`` (Bansal et al.,
    2021; Lenc & Vedaldi, 2015, report the same as an "equivalence" of layers). Range of the
    accuracies [0, 1]; the penalty lies in [-1, 1], ≈ 0 when the layers are functionally
    equivalent up to the stitch's class of maps. Evaluated without gradients, with modules
    in eval mode (restored afterwards), in batches of ``batch_size``.

    Args:
        model: the stitched network (a :class:`StitchedModel`), input → logits.
        x: ``(n, ...)`` held-out inputs. labels: ``(n,)`` class indices in [0, C) for the
            C logits (all checked at the first batch, before the others run).
        reference: network B, input → logits.
        batch_size: rows per forward pass.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)  # the networks' initialization
        >>> net_a = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> net_b = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(64, 2, generator=g)
        >>> labels = (x[:, 0] > 0).long()
        >>> model = StitchedModel(net_b[:2], StitchingLayer(4, 4), net_b[2:])
        >>> score = stitching_score(model, x, labels, reference=net_b)
        >>> float(score.penalty), score.n_samples
        (0.0, 64)
    """
    _check_callable(model, "model")
    _check_callable(reference, "reference")
    tx = _as_inputs(x, "x")
    tl = check_labels(labels, tx.shape[0], device=tx.device)
    batch_size = check_positive_int(batch_size, name="batch_size")
    with _eval_mode(model, reference):
        acc, loss = _accuracy_and_loss(model, tx, tl, batch_size, "model")
        ref_acc, ref_loss = _accuracy_and_loss(reference, tx, tl, batch_size, "reference")
    return StitchingScore(acc, loss, ref_acc, ref_loss, ref_acc - acc, tx.shape[0])
