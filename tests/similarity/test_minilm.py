"""The user's case of issue 11 on real data: all-MiniLM-L6-v2 over 120 speeches, mean and
first-token ([CLS]) pooling. The CLS embeddings layer is constant, its layers 1-4 nearly
constant (relative spread 1e-3), and n = 120 < width 384."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from subspaces import SmallSampleWarning
from subspaces._checks import DegenerateInputError
from subspaces.similarity import MEASURES, pairwise


def _load(path: Any, layers: tuple[str, ...]) -> dict[str, torch.Tensor]:
    from subspaces.io import ActivationStore

    store = ActivationStore.open(Path(path))
    return {layer: store.load(layer) for layer in layers}


@pytest.fixture(scope="module")
def minilm(minilm_pair: dict[str, Any]) -> dict[str, dict[str, torch.Tensor]]:
    return {
        "mean": _load(minilm_pair["mean"], ("layer_1", "layer_6")),
        "cls": _load(minilm_pair["cls"], ("embeddings", "layer_1", "layer_3", "layer_6")),
    }


def test_the_constant_cls_layer_is_named(minilm: dict[str, dict[str, torch.Tensor]]) -> None:
    assert float(minilm["cls"]["embeddings"].double().std(0).max()) == 0.0
    for measure in ("mean_cca", "linear_cka", "procrustes_distance"):
        constant = r"layer 'embeddings' \(of ys\) has zero"
        with pytest.raises(DegenerateInputError, match=constant), warnings.catch_warnings():
            warnings.simplefilter("ignore", SmallSampleWarning)
            pairwise(minilm["mean"], minilm["cls"], measure=measure, progress=False)


def test_mean_cca_of_120_samples_of_width_384_says_it_is_1_whatever_the_data(
    minilm: dict[str, dict[str, torch.Tensor]],
) -> None:
    cls = {k: v for k, v in minilm["cls"].items() if k != "embeddings"}
    caveat = MEASURES["mean_cca"].caveat(120, 384, 384)
    assert caveat is not None and "every canonical correlation is 1" in caveat
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SmallSampleWarning)
        values = pairwise(minilm["mean"], cls, measure="mean_cca", progress=False)
    assert [str(w.message) for w in caught] == [caveat]
    # what the user saw, now explained: 1.00 in every cell, nearly constant layers included
    torch.testing.assert_close(values, torch.ones_like(values), rtol=0, atol=1e-6)


@pytest.mark.parametrize("measure", ["svcca", "linear_cka", "shape_metric", "mutual_knn"])
def test_near_constant_layers_give_finite_values(
    measure: str, minilm: dict[str, dict[str, torch.Tensor]]
) -> None:
    cls = {k: v for k, v in minilm["cls"].items() if k != "embeddings"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        values = pairwise(cls, minilm["mean"], measure=measure, progress=False)
    assert values.shape == (3, 2)
    assert bool(torch.isfinite(values).all())
    low, high = MEASURES[measure].bounds
    assert low is None or float(values.min()) >= low - 1e-9
    assert high is None or float(values.max()) <= high + 1e-9
