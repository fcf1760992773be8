"""The report on the MiniLM pair (issue 11): real, small, and degenerate in three ways.

all-MiniLM-L6-v2 over 120 speeches, mean pooling against first-token pooling: n = 120 < d =
384 (mean CCA is 1 whatever the data), and the first token's embeddings layer is constant
(the same [CLS] vector for every input).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from subspaces.report import compute_results, validate_results
from subspaces.similarity import MEASURES

CONSTANT = "layer 'embeddings' of model 'cls' is constant: every input gives the same vector"


@pytest.fixture(scope="module")
def minilm_results(minilm_pair: dict[str, Any]) -> dict[str, Any]:
    from subspaces.io import open_activations

    models, sources = {}, {}
    for name in ("mean", "cls"):
        store = open_activations(minilm_pair[name])
        models[name] = {layer: store.load(layer) for layer in store.layers}
        sources[name] = {
            "path": minilm_pair[name],
            "pooling": store.metadata["extraction"]["pooling"],
            "data": minilm_pair["texts"].name,
        }
    return compute_results(
        models,
        sources=sources,
        intrinsic_dimension=False,
        bootstrap=4,
        permutations=4,
        progress=False,
    )


def test_the_report_is_valid_json_of_version_2(minilm_results: dict[str, Any]) -> None:
    assert validate_results(json.loads(json.dumps(minilm_results, allow_nan=False)))


def test_mean_cca_is_left_out_because_n_is_below_the_width(
    minilm_results: dict[str, Any],
) -> None:
    meta = minilm_results["meta"]
    assert meta["omitted_measures"] == {"mean_cca": MEASURES["mean_cca"].caveat(120, 384, 384)}
    assert meta["measures"] == ["linear_cka", "procrustes_distance", "mutual_knn"]


def test_the_constant_embeddings_layer_is_one_cause(minilm_results: dict[str, Any]) -> None:
    # per measure: cls × cls row and column 0 (13 cells), mean × cls column 0 (7), the first
    # depth point's value, interval and null (3); geometry: 6 scalars and the spectrum
    assert Counter(minilm_results["missing"].values()) == {CONSTANT: 3 * (13 + 7 + 3) + 7}


def test_corresponding_layers_are_alike_beyond_chance(minilm_results: dict[str, Any]) -> None:
    (curve,) = minilm_results["depth"]["linear_cka"]
    assert (
        curve["x_layers"]
        == curve["y_layers"]
        == ["embeddings", *(f"layer_{i}" for i in range(1, 7))]
    )
    assert curve["value"][0] is None
    for value, (low, high), (chance, upper) in zip(
        curve["value"][1:], curve["ci"][1:], curve["null"][1:], strict=True
    ):
        assert low <= value <= high
        assert chance < upper < low  # the whole interval above chance


def test_what_shaped_the_numbers_is_recorded(
    minilm_results: dict[str, Any], minilm_pair: dict[str, Any]
) -> None:
    meta = minilm_results["meta"]
    assert meta["options"]["dtype"] == {"mean": "float32", "cls": "float32"}
    assert meta["options"]["n_samples"] == 120
    assert meta["options"]["measure_options"]["mutual_knn"] == {"k": 10, "metric": "cosine"}
    assert meta["sources"]["cls"] == {
        "path": str(minilm_pair["cls"]),
        "pooling": "first",
        "data": "plays.txt",
    }
