"""Functionally equivalent units and Iterative Feature Merging (IFM), data-free.

Chen, Zhou & Yan (2023), "Going Beyond Neural Network Feature Similarity: The Network
Feature Complexity and Its Interpretation Using Category Theory" (arXiv:2310.06756), call two
features of a layer *functionally equivalent* when one is a transformation of the other that
the next layer can absorb, so one of them can be removed without changing the network's
function. For a positively homogeneous activation (ReLU, LeakyReLU, max-pooling) the
transformation is a positive scale: if unit j's incoming weights and bias are
``v_j = c · v_i`` with ``c > 0`` then ``relu(v_j · [x, 1]) = c · relu(v_i · [x, 1])`` for
every input, and unit j is removed exactly by adding ``c · W_next[:, j]`` into
``W_next[:, i]``. Between purely linear layers any non-zero ``c`` works.

Iterative Feature Merging (IFM) repeats, layer by layer from the input: find the two
remaining units whose incoming directions are closest, merge them if their distance is
below a threshold, until no pair is. The number of units a layer keeps at a threshold is
its *feature complexity*. The paper's text beyond its abstract was not available to us; the
distance, the choice of the kept unit and the least-squares scale below are our choices,
stated in each docstring.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from subspaces._base import Result
from subspaces._checks import (
    DeviceMismatchError,
    InputTypeError,
    ShapeError,
    as_float_tensor,
    check_choice,
    check_finite,
    check_positive_int,
    check_scalar_in_range,
)

__all__ = [
    "MergeReport",
    "UnitMerge",
    "UnitMerging",
    "equivalence_distances",
    "feature_complexity",
    "merge_layers",
    "merge_sequential",
    "merge_units",
]

_ACTIVATIONS = ("relu", "identity")
DEFAULT_THRESHOLD = 1e-5

# Modules that commute with a positive per-unit scale and with dropping units (in eval mode).
_POSITIVE_HOMOGENEOUS = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
)
# Modules that commute with any per-unit scale (linear and acting on each unit separately).
_LINEAR_PER_UNIT = (
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Flatten,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
)


@dataclass(frozen=True)
class UnitMerge(Result):
    """One merge: unit ``removed`` of hidden layer ``layer`` folded into unit ``kept``.

    ``z_removed ≈ scale · z_kept`` after the activation; ``distance`` is the
    :func:`equivalence_distances` entry of the pair. Indices count the layer's units before
    any merge of that layer. A dead unit (zero incoming weights and a bias that keeps it at
    zero) is dropped with ``kept = -1`` and ``scale = 0``.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)  # the layers' initialization
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> with torch.no_grad():
        ...     net[0].weight[3] = 2.0 * net[0].weight[0]
        ...     net[0].bias[3] = 2.0 * net[0].bias[0]
        >>> _, report = merge_sequential(net)
        >>> m = report.merges[0]
        >>> m.layer, m.kept, m.removed, round(m.scale, 4)
        (0, 3, 0, 0.5)
    """

    layer: int
    kept: int
    removed: int
    scale: float
    distance: float


@dataclass(frozen=True)
class UnitMerging(Result):
    """The result of :func:`merge_units` on one layer.

    ``weight`` / ``bias`` are the layer's parameters restricted to the ``kept`` units (indices
    into the original units, increasing), ``next_weight`` the next layer's weight with the
    removed units folded in and their input slices dropped.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)  # the layers' initialization
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> with torch.no_grad():
        ...     net[0].weight[3] = 2.0 * net[0].weight[0]
        ...     net[0].bias[3] = 2.0 * net[0].bias[0]
        >>> r = merge_units(net[0].weight, net[0].bias, net[2].weight)
        >>> r.kept.tolist(), r.weight.shape, r.next_weight.shape
        ([1, 2, 3], torch.Size([3, 3]), torch.Size([2, 3]))
    """

    weight: Tensor
    bias: Tensor | None
    next_weight: Tensor
    kept: Tensor
    merges: tuple[UnitMerge, ...]


@dataclass(frozen=True)
class MergeReport(Result):
    """What :func:`merge_layers` / :func:`merge_sequential` did.

    ``units_before`` / ``units_after`` hold each hidden layer's width (the layers whose
    outputs feed another merged layer); ``units_after`` is the feature complexity at the
    threshold. Parameter counts are over the returned modules.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)  # the layers' initialization
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> with torch.no_grad():
        ...     net[0].weight[3] = 2.0 * net[0].weight[0]
        ...     net[0].bias[3] = 2.0 * net[0].bias[0]
        >>> _, report = merge_sequential(net)
        >>> report.units_before, report.units_after, report.parameters_removed
        ((4,), (3,), 6)
    """

    merges: tuple[UnitMerge, ...]
    units_before: tuple[int, ...]
    units_after: tuple[int, ...]
    parameters_before: int
    parameters_after: int
    threshold: float

    @property
    def parameters_removed(self) -> int:
        """``parameters_before - parameters_after``."""
        return self.parameters_before - self.parameters_after


def _incoming(weight: Tensor, bias: Tensor | None) -> Tensor:
    """(d, fan_in + 1) float64 incoming vectors: each unit's flattened weights and bias."""
    flat = weight.reshape(weight.shape[0], -1).to(torch.float64)
    b = (
        bias.to(torch.float64)
        if bias is not None
        else torch.zeros(weight.shape[0], dtype=torch.float64, device=weight.device)
    )
    return torch.cat([flat, b[:, None]], dim=1)


def _distances(v: Tensor, activation: str) -> tuple[Tensor, Tensor]:
    """Pairwise direction distances of the rows of ``v`` and the mask of zero rows."""
    norms = torch.linalg.vector_norm(v, dim=1)
    zero = norms == 0
    u = v / torch.where(zero, torch.ones_like(norms), norms)[:, None]
    gram = u @ u.T
    gram = (0.5 * (gram + gram.T)).clamp(-1.0, 1.0)  # exactly symmetric
    if activation == "identity":
        gram = gram.abs()
    dist = torch.sqrt((2.0 - 2.0 * gram).clamp_min(0.0))
    dist.masked_fill_(zero[:, None] | zero[None, :], math.inf)
    dist.fill_diagonal_(0.0)
    return dist, zero


def _check_weight(weight: Any, bias: Any, *, name: str) -> tuple[Tensor, Tensor | None]:
    """The weight and bias as float tensors, detached (merging is data-free: no gradient)."""
    w = as_float_tensor(weight, name=name).detach()
    if w.ndim < 2:
        raise ShapeError(
            f"{name} must have at least 2 dimensions (out_units, in_features, ...), got shape "
            f"{tuple(w.shape)}; pass a Linear's or Conv's .weight."
        )
    if w.shape[0] == 0:
        raise ShapeError(f"{name} has shape {tuple(w.shape)}: it needs at least one unit.")
    check_finite(w, name=name)
    if bias is None:
        return w, None
    b = as_float_tensor(bias, name="bias").detach()
    if b.shape != (w.shape[0],):
        raise ShapeError(
            f"bias must have one entry per unit of {name}, shape ({w.shape[0]},), got shape "
            f"{tuple(b.shape)}."
        )
    check_finite(b, name="bias")
    _check_device(b, "bias", w, name)
    return w, b.to(w.dtype)


def _check_device(t: Tensor, name: str, w: Tensor, w_name: str) -> None:
    """Raise :class:`DeviceMismatchError` unless ``t`` is on the weight's device."""
    if t.device != w.device:
        raise DeviceMismatchError(
            f"{name} is on {t.device} but {w_name} is on {w.device}; move it with .to()."
        )


def equivalence_distances(weight: Any, bias: Any = None, *, activation: str = "relu") -> Tensor:
    """Pairwise distances between the units of a layer, zero for functionally equivalent ones.

    With ``v_k`` = unit k's flattened incoming weights and bias and ``u_k = v_k / ||v_k||``:
    ``relu``: ``D[i, j] = ||u_i - u_j||`` (0 iff ``v_j = c v_i`` with ``c > 0``, so that
    ``relu(z_j) = c relu(z_i)``), in [0, 2]; ``identity``: ``min(||u_i - u_j||, ||u_i + u_j||)``
    (0 iff ``v_j = c v_i`` with any ``c ≠ 0``), in [0, √2]. Equivalently
    ``D = sqrt(2 - 2 cos)`` (with ``|cos|`` for ``identity``). Symmetric, zero diagonal,
    invariant to a positive rescaling of any unit; ``inf`` off the diagonal for a unit with
    all-zero incoming weights and bias. Data-free (Chen, Zhou & Yan, 2023, arXiv:2310.06756).

    Args:
        weight: ``(d, fan_in)`` Linear weight or ``(d, c_in, k_h, k_w)`` Conv weight.
        bias: ``(d,)`` or ``None`` (no bias).
        activation: ``"relu"`` for any positively homogeneous activation (ReLU, LeakyReLU,
            max-pooling), ``"identity"`` for no activation before the next linear layer.

    Returns:
        ``(d, d)`` float64 tensor on the weight's device.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)  # the layers' initialization
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> with torch.no_grad():
        ...     net[0].weight[3] = 2.0 * net[0].weight[0]
        ...     net[0].bias[3] = 2.0 * net[0].bias[0]
        >>> d = equivalence_distances(net[0].weight, net[0].bias)
        >>> d.shape, round(float(d[0, 3]), 6)
        (torch.Size([4, 4]), 0.0)
    """
    activation = check_choice(activation, name="activation", choices=_ACTIVATIONS)
    w, b = _check_weight(weight, bias, name="weight")
    return _distances(_incoming(w, b), activation)[0]


def _dead(v: Tensor, zero: Tensor, negative_is_dead: bool) -> Tensor:
    """Units whose output is always zero: zero weights and zero bias.

    With ``negative_is_dead`` (a ReLU follows) also zero weights and a negative bias:
    ``relu(b) = 0``. Not under LeakyReLU or max-pooling alone, which keep a constant ``b < 0``
    (times the slope) non-zero; such units are all parallel and merge with each other instead.
    """
    weights_zero = (v[:, :-1] == 0).all(dim=1)
    if negative_is_dead:
        return weights_zero & (v[:, -1] <= 0)
    return zero


def merge_units(
    weight: Any,
    bias: Any,
    next_weight: Any,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    activation: str = "relu",
    layer: int = 0,
) -> UnitMerging:
    """Iterative Feature Merging of one layer's units, folded into the next layer's weight.

    Repeatedly take the pair (i, j) of remaining units with the smallest
    :func:`equivalence_distances` ``D[i, j] <= threshold``; keep the unit with the larger
    incoming norm ``||v_i||``, remove j and set ``W_next[:, i] += c · W_next[:, j]`` with the
    least-squares scale ``c = <v_j, v_i> / ||v_i||²`` (``c > 0`` required for ``relu``). Since
    kept units' incoming weights never change, this equals one pass over the pairs sorted by
    distance. Units that always output zero (zero weights, and zero or — for ``relu`` —
    negative bias, which assumes the ReLU max(z, 0) itself; :func:`merge_sequential` keeps
    negative-bias units when only LeakyReLU or max-pooling follow) are dropped. With
    ``threshold`` near 0 only exact equivalences merge and the network's function is
    unchanged up to rounding; larger thresholds approximate.
    The number of units removed is non-decreasing in ``threshold``.

    Args:
        weight: ``(d, fan_in, ...)`` this layer's weight (Linear or Conv).
        bias: ``(d,)`` or ``None``.
        next_weight: ``(m, d, ...)``: the next layer's weight, its dimension 1 indexing this
            layer's units (reshape a Linear after a Flatten to ``(m, d, h·w)`` first).
        threshold: the largest distance merged, in [0, 2].
        activation: ``"relu"`` (positive scales only) or ``"identity"`` (any non-zero scale).
        layer: the index stored in each :class:`UnitMerge`.

    Returns:
        A :class:`UnitMerging` with new tensors (the inputs are not modified).

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)  # the layers' initialization
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> with torch.no_grad():
        ...     net[0].weight[3] = 2.0 * net[0].weight[0]
        ...     net[0].bias[3] = 2.0 * net[0].bias[0]
        >>> r = merge_units(net[0].weight, net[0].bias, net[2].weight)
        >>> len(r.merges), r.merges[0].kept, r.merges[0].removed
        (1, 3, 0)
    """
    activation = check_choice(activation, name="activation", choices=_ACTIVATIONS)
    threshold = check_scalar_in_range(threshold, name="threshold", low=0.0, high=2.0)
    layer = check_positive_int(layer, name="layer", minimum=0)
    return _merge_units(
        weight,
        bias,
        next_weight,
        threshold=threshold,
        activation=activation,
        layer=layer,
        negative_is_dead=activation == "relu",
    )


def _merge_units(
    weight: Any,
    bias: Any,
    next_weight: Any,
    *,
    threshold: float,
    activation: str,
    layer: int,
    negative_is_dead: bool,
) -> UnitMerging:
    w, b = _check_weight(weight, bias, name="weight")
    nxt = as_float_tensor(next_weight, name="next_weight").detach()
    if nxt.ndim < 2 or nxt.shape[1] != w.shape[0]:
        raise ShapeError(
            f"next_weight must have shape (m, {w.shape[0]}, ...) so that its dimension 1 indexes "
            f"the {w.shape[0]} units of weight (shape {tuple(w.shape)}), got shape "
            f"{tuple(nxt.shape)}; the layers must be consecutive."
        )
    check_finite(nxt, name="next_weight")
    _check_device(nxt, "next_weight", w, "weight")
    v = _incoming(w, b)
    dist, zero = _distances(v, activation)
    norms_list = (v * v).sum(dim=1).tolist()  # one transfer, read in the loop
    d = w.shape[0]
    alive = [True] * d
    merges: list[UnitMerge] = []
    new_next = nxt.clone()
    n_alive = d
    for k in _dead(v, zero, negative_is_dead).nonzero().flatten().tolist():
        if n_alive > 1:  # a layer keeps at least one unit
            alive[k] = False
            n_alive -= 1
            merges.append(UnitMerge(layer, -1, int(k), 0.0, 0.0))
    iu, ju = torch.triu_indices(d, d, offset=1, device=w.device)
    pair_dist = dist[iu, ju]
    candidates = (pair_dist <= threshold).nonzero().flatten()
    order = candidates[torch.argsort(pair_dist[candidates], stable=True)]
    for a, c, dist_ac in zip(
        iu[order].tolist(), ju[order].tolist(), pair_dist[order].tolist(), strict=True
    ):
        if not (alive[a] and alive[c]):
            continue
        keep, drop = (a, c) if norms_list[a] >= norms_list[c] else (c, a)
        scale = float(v[drop] @ v[keep]) / norms_list[keep]
        if activation == "relu" and scale <= 0:
            continue
        new_next[:, keep] += scale * new_next[:, drop]
        alive[drop] = False
        merges.append(UnitMerge(layer, keep, drop, scale, float(dist_ac)))
    kept = torch.tensor([k for k in range(d) if alive[k]], dtype=torch.int64, device=w.device)
    return UnitMerging(
        weight=w[kept].clone(),
        bias=None if b is None else b[kept].clone(),
        next_weight=new_next[:, kept].clone(),
        kept=kept,
        merges=tuple(merges),
    )


_Layer = nn.Linear | nn.Conv2d


def _as_layer(module: nn.Module, *, where: str) -> _Layer:
    if isinstance(module, nn.Linear):
        return module
    if isinstance(module, nn.Conv2d):
        if module.groups != 1:
            raise InputTypeError(
                f"{where} is a grouped Conv2d (groups={module.groups}); merging handles "
                "groups=1 only."
            )
        return module
    raise InputTypeError(
        f"{where} is {type(module).__name__}; merging handles nn.Linear and nn.Conv2d layers."
    )


def _next_as_units(
    nxt: _Layer, d: int, *, where: str, after_conv: bool
) -> tuple[Tensor, tuple[int, ...]]:
    """The next layer's weight as (m, d, ...) and the shape to restore after merging."""
    weight = nxt.weight.detach()
    if isinstance(nxt, nn.Linear):
        if nxt.in_features == d:
            return weight, tuple(weight.shape)
        if after_conv and nxt.in_features % d == 0:  # Flatten of (d, h, w): channel-major
            return weight.reshape(weight.shape[0], d, -1), tuple(weight.shape)
    elif isinstance(nxt, nn.Conv2d) and nxt.in_channels == d and nxt.groups == 1:
        return weight, tuple(weight.shape)
    raise ShapeError(
        f"{where} ({type(nxt).__name__} with weight shape {tuple(weight.shape)}) does not take "
        f"the previous layer's {d} units as input (nor, after a Conv2d, a multiple of {d} "
        "flattened features); the layers must be consecutive."
    )


def _replace(module: _Layer, weight: Tensor, bias: Tensor | None) -> None:
    old = module.weight
    module.weight = nn.Parameter(weight.to(old.dtype).contiguous(), requires_grad=old.requires_grad)
    if module.bias is not None and bias is not None:
        module.bias = nn.Parameter(
            bias.to(old.dtype).contiguous(), requires_grad=module.bias.requires_grad
        )
    if isinstance(module, nn.Linear):
        module.out_features = weight.shape[0]
        module.in_features = weight.shape[1]
    elif isinstance(module, nn.Conv2d):
        module.out_channels = weight.shape[0]
        module.in_channels = weight.shape[1]


def _count(modules: Sequence[nn.Module]) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


@torch.no_grad()
def _merge_chain(
    layers: Sequence[nn.Module],
    activations: Sequence[str],
    *,
    threshold: float,
    names: Sequence[str],
    negative_is_dead: Sequence[bool],
) -> tuple[list[_Layer], MergeReport]:
    typed = [_as_layer(m, where=n) for m, n in zip(layers, names, strict=True)]
    widths = [int(m.weight.shape[0]) for m in typed]
    for i in range(len(typed) - 1):
        # validate before copying
        _next_as_units(
            typed[i + 1], widths[i], where=names[i + 1], after_conv=isinstance(typed[i], nn.Conv2d)
        )
    new = [copy.deepcopy(m) for m in typed]
    merges: list[UnitMerge] = []
    after: list[int] = []
    for i in range(len(new) - 1):
        cur, nxt = new[i], new[i + 1]
        d = cur.weight.shape[0]
        nxt_w, restore = _next_as_units(
            nxt, d, where=names[i + 1], after_conv=isinstance(cur, nn.Conv2d)
        )
        bias = cur.bias.detach() if cur.bias is not None else None
        result = _merge_units(
            cur.weight.detach(),
            bias,
            nxt_w,
            threshold=threshold,
            activation=activations[i],
            layer=i,
            negative_is_dead=negative_is_dead[i],
        )
        _replace(cur, result.weight, result.bias)
        folded = result.next_weight.reshape(restore[0], -1, *restore[2:])
        _replace(nxt, folded, None)
        merges.extend(result.merges)
        after.append(int(result.kept.numel()))
    report = MergeReport(
        merges=tuple(merges),
        units_before=tuple(widths[:-1]),
        units_after=tuple(after),
        parameters_before=_count(layers),
        parameters_after=_count(new),
        threshold=threshold,
    )
    return new, report


def merge_layers(
    layers: Sequence[nn.Module],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    activation: str = "relu",
) -> tuple[list[nn.Linear | nn.Conv2d], MergeReport]:
    """Iterative Feature Merging through a chain of layers, e.g. an MLP's ``nn.ModuleList``.

    ``layers`` are consecutive ``nn.Linear`` / ``nn.Conv2d`` modules with the same
    ``activation`` between each pair (a Linear may follow a Conv2d through a channel-major
    Flatten); the last layer's outputs are the network's and are not merged. Each hidden
    layer is merged with :func:`merge_units` in order from the input, folding into the next
    layer, whose units are then compared with their folded weights. Returns new modules
    (deep copies; the inputs are untouched) and a :class:`MergeReport`. Chen, Zhou & Yan
    (2023), arXiv:2310.06756.

    Args:
        layers: at least two layers.
        threshold: the largest :func:`equivalence_distances` merged, in [0, 2].
        activation: ``"relu"`` (any positively homogeneous activation; units with zero
            weights and a negative bias are dropped as dead, which holds for ReLU itself:
            use :func:`merge_sequential` for LeakyReLU or max-pooling alone) or
            ``"identity"``.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)  # the layers' initialization
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> with torch.no_grad():
        ...     net[0].weight[3] = 2.0 * net[0].weight[0]
        ...     net[0].bias[3] = 2.0 * net[0].bias[0]
        >>> layers, report = merge_layers([net[0], net[2]])
        >>> layers[0].out_features, layers[1].in_features, report.units_after
        (3, 3, (3,))
    """
    activation = check_choice(activation, name="activation", choices=_ACTIVATIONS)
    threshold = check_scalar_in_range(threshold, name="threshold", low=0.0, high=2.0)
    if (isinstance(layers, nn.Module) and not isinstance(layers, nn.ModuleList)) or not (
        isinstance(layers, (Sequence, nn.ModuleList)) and not isinstance(layers, (str, bytes))
    ):
        raise InputTypeError(
            f"layers must be a sequence of layers (a list or nn.ModuleList), got "
            f"{type(layers).__name__}; for an nn.Sequential use merge_sequential."
        )
    layers = list(layers)
    if len(layers) < 2:
        raise ShapeError(
            f"layers must hold at least 2 layers (a hidden layer and the one it feeds), got "
            f"{len(layers)}."
        )
    names = [f"layers[{i}]" for i in range(len(layers))]
    gaps = len(layers) - 1
    return _merge_chain(
        layers,
        [activation] * gaps,
        threshold=threshold,
        names=names,
        negative_is_dead=[activation == "relu"] * gaps,
    )


def _gap_activation(gap: Sequence[tuple[int, nn.Module]]) -> str:
    activation = "identity"
    for index, module in gap:
        if isinstance(module, _POSITIVE_HOMOGENEOUS):
            activation = "relu"
        elif not isinstance(module, _LINEAR_PER_UNIT):
            raise InputTypeError(
                f"model[{index}] is {type(module).__name__}, which merging cannot pass through "
                "(allowed between layers: ReLU, LeakyReLU, max/avg pooling, Flatten, Dropout, "
                "Identity); fold normalization layers into the preceding layer first, or merge "
                "the layers around it separately with merge_layers."
            )
    return activation


def merge_sequential(
    model: nn.Sequential, *, threshold: float = DEFAULT_THRESHOLD
) -> tuple[nn.Sequential, MergeReport]:
    """Iterative Feature Merging of an ``nn.Sequential`` of Linear / Conv2d layers.

    Between two consecutive parametric layers only modules that commute with a per-unit scale
    and with dropping units may appear: ReLU, LeakyReLU and max-pooling (then positive scales
    merge), average pooling, Flatten, Dropout and Identity (any non-zero scale merges if there
    is no ReLU-like module). Modules before the first and after the last parametric layer are
    kept as they are. The model is compared in eval mode (Dropout off). Returns a new model
    (a deep copy; ``model`` is untouched) and a :class:`MergeReport` whose layer indices count
    the parametric layers. Chen, Zhou & Yan (2023), arXiv:2310.06756.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)  # the layers' initialization
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> with torch.no_grad():
        ...     net[0].weight[3] = 2.0 * net[0].weight[0]
        ...     net[0].bias[3] = 2.0 * net[0].bias[0]
        >>> merged, report = merge_sequential(net)
        >>> x = torch.randn(5, 3)
        >>> bool(torch.allclose(merged(x), net(x), atol=1e-6)), merged[0].out_features
        (True, 3)
    """
    if not isinstance(model, nn.Sequential):
        raise InputTypeError(
            f"model must be an nn.Sequential, got {type(model).__name__}; for other models pass "
            "their consecutive layers to merge_layers."
        )
    threshold = check_scalar_in_range(threshold, name="threshold", low=0.0, high=2.0)
    children = list(model)
    positions = [i for i, m in enumerate(children) if isinstance(m, (nn.Linear, nn.Conv2d))]
    if len(positions) < 2:
        raise ShapeError(
            f"model must contain at least 2 nn.Linear / nn.Conv2d layers to merge, found "
            f"{len(positions)}."
        )
    activations = [
        _gap_activation([(k, children[k]) for k in range(a + 1, b)])
        for a, b in itertools.pairwise(positions)
    ]
    # a unit with zero weights and a negative bias is dead only if a ReLU zeroes it
    relu_after = [
        any(isinstance(children[k], nn.ReLU) for k in range(a + 1, b))
        for a, b in itertools.pairwise(positions)
    ]
    layers = [children[p] for p in positions]
    new_layers, report = _merge_chain(
        layers,
        activations,
        threshold=threshold,
        names=[f"model[{p}]" for p in positions],
        negative_is_dead=relu_after,
    )
    new_model = copy.deepcopy(model)
    for p, layer in zip(positions, new_layers, strict=True):
        new_model[p] = layer
    report = MergeReport(
        merges=report.merges,
        units_before=report.units_before,
        units_after=report.units_after,
        parameters_before=sum(p.numel() for p in model.parameters()),
        parameters_after=sum(p.numel() for p in new_model.parameters()),
        threshold=threshold,
    )
    return new_model, report


def feature_complexity(
    model: nn.Sequential | Sequence[nn.Module],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    activation: str = "relu",
) -> Tensor:
    """The number of units each hidden layer keeps after Iterative Feature Merging.

    Chen, Zhou & Yan's (2023) feature complexity: the count of functionally inequivalent
    features per layer at the merging ``threshold`` (``units_after`` of
    :func:`merge_sequential` for an ``nn.Sequential``, else of :func:`merge_layers` with
    ``activation``). Between 1 and the layer's width.

    Returns:
        A 1-D int64 tensor, one entry per hidden layer.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)  # the layers' initialization
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> with torch.no_grad():
        ...     net[0].weight[3] = 2.0 * net[0].weight[0]
        ...     net[0].bias[3] = 2.0 * net[0].bias[0]
        >>> feature_complexity(net).tolist()
        [3]
    """
    check_choice(activation, name="activation", choices=_ACTIVATIONS)  # also when unused
    if isinstance(model, nn.Sequential):
        _, report = merge_sequential(model, threshold=threshold)
    else:
        _, report = merge_layers(model, threshold=threshold, activation=activation)
    return torch.tensor(report.units_after, dtype=torch.int64)
