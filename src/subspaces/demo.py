"""The built-in demo: how alike are two networks trained from different seeds?

Trains two small MLPs on scikit-learn's digits (shipped with scikit-learn, no download)
from different seeds, records every layer on the held-out digits into two activation
stores, and writes the report comparing them layer by layer (similarity) and showing how
their geometry changes with depth (spectrum, effective rank, intrinsic dimension, neural
collapse). Under a minute on 2 CPU cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from subspaces._base import Result

__all__ = ["DemoData", "digits_split", "hidden_layer_names", "train_mlp"]

WIDTHS = (64, 128, 128, 64)


@dataclass(frozen=True)
class DemoData(Result):
    """Digits scaled to [0, 1], split 60/40 with a fixed seed.

    Attributes:
        x_train, y_train: the training images ``(n, 64)`` and their digits ``(n,)``.
        x_test, y_test: the held-out images and digits.

    Examples:
        >>> from subspaces.demo import digits_split
        >>> data = digits_split(seed=0)
        >>> tuple(data.x_train.shape), tuple(data.x_test.shape)
        ((1078, 64), (719, 64))
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def digits_split(*, seed: int = 0) -> DemoData:
    """scikit-learn's 8 × 8 digits (1,797 images), 60% train / 40% held out.

    Args:
        seed: the seed of the random split.

    Returns:
        The split, as :class:`DemoData`.

    Examples:
        >>> from subspaces.demo import digits_split
        >>> data = digits_split(seed=0)
        >>> len(data.y_train) + len(data.y_test), int(data.y_test.max())
        (1797, 9)
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:  # pragma: no cover - scikit-learn is a dependency
        raise ImportError("the demo needs scikit-learn: pip install scikit-learn") from error
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    cut = int(0.6 * len(y))
    train, test = order[:cut], order[cut:]
    return DemoData(x[train], y[train], x[test], y[test])


def train_mlp(
    data: DemoData, *, seed: int, epochs: int = 60, batch_size: int = 64
) -> torch.nn.Sequential:
    """A ReLU MLP (64-128-128-64) trained with Adam; deterministic given ``seed``.

    Args:
        data: the digits split (:func:`digits_split`).
        seed: the seed of the initial weights and of the batch order.
        epochs: passes over the training images.
        batch_size: images per step.

    Returns:
        The trained network, in eval mode.

    Examples:
        >>> from subspaces.demo import DemoData, digits_split, train_mlp
        >>> data = digits_split(seed=0)
        >>> small = DemoData(data.x_train[:128], data.y_train[:128], data.x_test, data.y_test)
        >>> net = train_mlp(small, seed=0, epochs=1)
        >>> sum(p.numel() for p in net.parameters()), net.training
        (37898, False)
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = []
    width_in = data.x_train.shape[1]
    for width in WIDTHS:
        layers += [torch.nn.Linear(width_in, width), torch.nn.ReLU()]
        width_in = width
    model = torch.nn.Sequential(*layers, torch.nn.Linear(width_in, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    n = len(data.y_train)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            batch = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(
                model(data.x_train[batch]), data.y_train[batch]
            )
            loss.backward()
            optimizer.step()
    model.eval()
    return model


def hidden_layer_names(model: torch.nn.Sequential) -> dict[str, str]:
    """Module name -> readable layer name: each ReLU output, then the logits.

    Examples:
        >>> import torch
        >>> from subspaces.demo import hidden_layer_names
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
        >>> hidden_layer_names(net)
        {'1': 'relu1', '2': 'logits'}
    """
    names = {}
    count = 0
    for name, module in model.named_children():
        if isinstance(module, torch.nn.ReLU):
            count += 1
            names[name] = f"relu{count}"
    names[str(len(model) - 1)] = "logits"
    return names


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The fraction of ``x`` that ``model`` classifies as ``y``.

    Examples:
        >>> import torch
        >>> round(accuracy(torch.nn.Identity(), torch.eye(3), torch.tensor([0, 1, 1])), 4)
        0.6667
    """
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def default_out() -> Path:
    """Where the demo writes its stores and report by default.

    Examples:
        >>> default_out().name
        'subspaces-demo'
    """
    return Path("subspaces-demo")
