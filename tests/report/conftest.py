"""Small activations shared by the report tests: two "models" of 3 layers, n = 200, 4 classes."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor

N_SAMPLES = 200
N_CLASSES = 4
EVIL_LAYER = "<script>alert(1)</script>"
EVIL_MODEL = '<img src=x onerror="alert(2)">'


def make_models(*, seed: int = 0) -> tuple[dict[str, dict[str, Tensor]], Tensor]:
    """Two random tanh networks (seeds 1, 2) on class-structured inputs, and their labels."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(N_SAMPLES) % N_CLASSES
    inputs = torch.randn(N_SAMPLES, 10, generator=g)
    inputs[:, :N_CLASSES] += 3.0 * torch.nn.functional.one_hot(labels, N_CLASSES)
    models: dict[str, dict[str, Tensor]] = {}
    for model_seed, name in ((1, "A"), (2, "B")):
        gm = torch.Generator().manual_seed(model_seed)
        h, layers = inputs, {}
        for i, width in enumerate((16, 12, 6)):
            h = torch.tanh(h @ torch.randn(h.shape[1], width, generator=gm) / h.shape[1] ** 0.5)
            layers[f"layer{i}"] = h
        models[name] = layers
    return models, labels


@pytest.fixture(scope="session")
def models_and_labels() -> tuple[dict[str, dict[str, Tensor]], Tensor]:
    return make_models()


@pytest.fixture(scope="session")
def results(models_and_labels: Any) -> dict[str, Any]:
    from subspaces.report import compute_results

    models, labels = models_and_labels
    return compute_results(models, labels=labels, progress=False)


@pytest.fixture(scope="session")
def evil_results(models_and_labels: Any) -> dict[str, Any]:
    """Results whose names try to inject HTML: a <script> layer, an <img onerror> model."""
    from subspaces.report import compute_results

    models, labels = models_and_labels
    a = dict(models["A"])
    a[EVIL_LAYER] = a.pop("layer2")
    a["price in $x$ & <b>bold</b>"] = a.pop("layer1")
    return compute_results(
        {"A": a, EVIL_MODEL: models["B"]},
        labels=labels,
        measures=("linear_cka",),
        intrinsic_dimension=False,
        progress=False,
    )


@pytest.fixture(scope="session")
def tiny_results() -> dict[str, Any]:
    """One model of two layers, one measure: for tests that only need some report."""
    from subspaces.report import compute_results

    x = torch.randn(30, 4, generator=torch.Generator().manual_seed(0))
    return compute_results(
        {"m": {"a": x, "b": torch.tanh(x)}},
        measures=("linear_cka",),
        intrinsic_dimension=False,
        progress=False,
    )
