"""compute_results: meta, similarity matrices, geometry, labels per model, refusals."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

import subspaces
from subspaces import InputTypeError, InvalidOptionError, ShapeError
from subspaces.geometry import covariance_spectrum, mle_id, neural_collapse, twonn
from subspaces.report import (
    DEFAULT_MEASURES,
    SCHEMA_VERSION,
    compute_results,
    json_pointer,
    validate_results,
)
from subspaces.similarity import pairwise

from .conftest import N_CLASSES, N_SAMPLES

# Values are copied from the families' float64 outputs: equal to float64 rounding.
EXACT = {"rel": 1e-12, "abs": 1e-12}


def _small(n: int = 40, d: int = 5, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


# --- meta -----------------------------------------------------------------------------


def test_meta(results: dict[str, Any]) -> None:
    meta = results["meta"]
    assert results["version"] == SCHEMA_VERSION
    assert meta["subspaces_version"] == subspaces.__version__
    assert meta["n_samples"] == N_SAMPLES
    assert meta["models"] == ["A", "B"]
    assert meta["layers"] == {
        "A": ["layer0", "layer1", "layer2"],
        "B": ["layer0", "layer1", "layer2"],
    }
    assert meta["measures"] == list(DEFAULT_MEASURES)
    assert meta["has_labels"] is True
    assert meta["num_classes"] == N_CLASSES
    assert meta["class_counts"] == [N_SAMPLES // N_CLASSES] * N_CLASSES
    assert meta["device"] == "cpu"


def test_measure_info_names_the_default_ranges(results: dict[str, Any]) -> None:
    info = results["measure_info"]
    assert info["linear_cka"] == {
        "label": "linear CKA",
        "kind": "similarity",
        "range": [0.0, 1.0],
        "caveats": [],
    }
    assert info["procrustes_distance"]["kind"] == "distance"
    assert info["procrustes_distance"]["range"] == pytest.approx([0.0, math.sqrt(2)])


def test_nothing_is_missing_on_well_behaved_data(results: dict[str, Any]) -> None:
    assert results["missing"] == {}


# --- similarity -----------------------------------------------------------------------


@pytest.mark.parametrize("measure", DEFAULT_MEASURES)
def test_one_matrix_per_pair_of_models(results: dict[str, Any], measure: str) -> None:
    records = results["similarity"][measure]
    assert [(r["x_model"], r["y_model"]) for r in records] == [("A", "A"), ("A", "B"), ("B", "B")]
    for record in records:
        assert len(record["matrix"]) == len(record["x_layers"]) == 3
        assert all(len(row) == len(record["y_layers"]) == 3 for row in record["matrix"])


@pytest.mark.parametrize("measure", DEFAULT_MEASURES)
def test_matrices_are_pairwise_values(
    results: dict[str, Any], models_and_labels: Any, measure: str
) -> None:
    models, _ = models_and_labels
    expected = pairwise(models["A"], models["B"], measure=measure, progress=False)
    got = results["similarity"][measure][1]["matrix"]
    assert np.asarray(got) == pytest.approx(expected.numpy(), **EXACT)


def test_self_similarity_of_a_model_has_unit_cka_diagonal(results: dict[str, Any]) -> None:
    matrix = results["similarity"]["linear_cka"][0]["matrix"]
    assert [matrix[i][i] for i in range(3)] == pytest.approx([1.0] * 3, abs=1e-12)


def test_measure_options_are_passed_and_recorded(models_and_labels: Any) -> None:
    models, _ = models_and_labels
    out = compute_results(models, measures={"mutual_knn": {"k": 3}}, geometry=False, progress=False)
    expected = pairwise(models["A"], measure="mutual_knn", k=3, progress=False)
    assert np.asarray(out["similarity"]["mutual_knn"][0]["matrix"]) == pytest.approx(
        expected.numpy()
    )
    assert out["meta"]["measure_options"] == {"mutual_knn": {"k": 3, "metric": "cosine"}}
    assert out["measure_info"]["mutual_knn"]["range"] is None  # options may change the range


def test_a_dead_layer_gives_null_entries_with_reasons(models_and_labels: Any) -> None:
    models, _ = models_and_labels
    a = {**models["A"], "dead": torch.ones(N_SAMPLES, 3)}
    out = compute_results({"A": a}, measures=("linear_cka",), progress=False)
    matrix = out["similarity"]["linear_cka"][0]["matrix"]
    assert all(v is not None for row in matrix[:3] for v in row[:3])
    assert matrix[3] == [None] * 4 and [row[3] for row in matrix] == [None] * 4
    reason = out["missing"][json_pointer("similarity", "linear_cka", 0, "matrix", 0, 3)]
    assert reason == "layer 'dead' of model 'A' is constant: every input gives the same vector"
    assert matrix[0][0] == pytest.approx(1.0)


def test_a_dead_layer_gives_null_geometry_with_reasons(models_and_labels: Any) -> None:
    models, labels = models_and_labels
    a = {**models["A"], "dead": torch.ones(N_SAMPLES, 3)}
    out = compute_results({"A": a}, labels=labels, measures=(), progress=False)
    dead = out["geometry"]["A"]["dead"]
    assert dead["width"] == 3
    assert dead["effective_rank"] is None and dead["spectrum"] is None
    assert dead["total_variance"] == 0.0  # defined: a constant layer has no variance
    assert out["missing"]["/geometry/A/dead/effective_rank"] == (
        "layer 'dead' of model 'A' is constant: every input gives the same vector"
    )
    assert out["geometry"]["A"]["layer0"]["effective_rank"] is not None


# --- geometry -------------------------------------------------------------------------


def test_geometry_values_come_from_the_families(
    results: dict[str, Any], models_and_labels: Any
) -> None:
    models, labels = models_and_labels
    x = models["B"]["layer1"]
    got = results["geometry"]["B"]["layer1"]
    spectrum = covariance_spectrum(x)
    assert got["width"] == 12
    assert got["effective_rank"] == pytest.approx(float(spectrum.effective_rank()), **EXACT)
    assert got["participation_ratio"] == pytest.approx(
        float(spectrum.participation_ratio()), **EXACT
    )
    assert got["stable_rank"] == pytest.approx(float(spectrum.stable_rank()), **EXACT)
    assert got["spectrum"]["eigenvalues"] == pytest.approx(spectrum.eigenvalues.tolist(), **EXACT)
    assert got["twonn_id"] == pytest.approx(float(twonn(x)), **EXACT)
    assert got["mle_id"] == pytest.approx(float(mle_id(x, k=20)), **EXACT)
    nc = neural_collapse(x, labels)
    assert got["neural_collapse"]["nc1"] == pytest.approx(float(nc.nc1), **EXACT)
    assert got["neural_collapse"]["etf_distance"] == pytest.approx(
        float(nc.etf_distance_means), **EXACT
    )
    assert got["neural_collapse"]["num_classes"] == N_CLASSES


def test_explained_variance_ratios_sum_to_one(results: dict[str, Any]) -> None:
    spectrum = results["geometry"]["A"]["layer0"]["spectrum"]
    assert spectrum["n_eigenvalues"] == 16
    assert sum(spectrum["explained_variance_ratio"]) == pytest.approx(1.0)


def test_top_eigenvalues_limits_the_stored_spectrum() -> None:
    out = compute_results({"m": {"x": _small(d=8)}}, measures=(), top_eigenvalues=3, progress=False)
    spectrum = out["geometry"]["m"]["x"]["spectrum"]
    assert len(spectrum["eigenvalues"]) == len(spectrum["explained_variance_ratio"]) == 3
    assert spectrum["n_eigenvalues"] == 8


def test_duplicate_points_skip_intrinsic_dimension_with_a_reason() -> None:
    x = _small(n=30)
    x = torch.cat([x, x[:5]])  # 5 duplicated rows
    out = compute_results({"m": {"dup": x}}, measures=(), progress=False)
    layer = out["geometry"]["m"]["dup"]
    assert layer["twonn_id"] is None and layer["mle_id"] is None
    assert "duplicate" in out["missing"]["/geometry/m/dup/twonn_id"]
    assert layer["effective_rank"] is not None  # the spectrum is still defined


def test_mle_k_is_capped_by_the_number_of_samples() -> None:
    out = compute_results({"m": {"x": _small(n=12)}}, measures=(), progress=False)
    assert out["meta"]["mle_k"] == 11
    assert out["geometry"]["m"]["x"]["mle_id"] == pytest.approx(float(mle_id(_small(n=12), k=11)))


def test_a_class_with_one_sample_skips_neural_collapse_with_a_reason() -> None:
    labels = torch.tensor([0] * 20 + [1] * 19 + [2])
    out = compute_results({"m": {"x": _small()}}, labels=labels, measures=(), progress=False)
    assert out["geometry"]["m"]["x"]["neural_collapse"] is None
    assert "at least 2" in out["missing"]["/geometry/m/x/neural_collapse"]


def test_without_labels_there_is_no_neural_collapse(models_and_labels: Any) -> None:
    models, _ = models_and_labels
    out = compute_results(models, measures=(), intrinsic_dimension=False, progress=False)
    layer = out["geometry"]["A"]["layer0"]
    assert "neural_collapse" not in layer
    assert "twonn_id" not in layer and "mle_id" not in layer
    assert out["meta"]["has_labels"] is False and "num_classes" not in out["meta"]


def test_geometry_false_leaves_geometry_out(models_and_labels: Any) -> None:
    models, _ = models_and_labels
    out = compute_results(models, measures=("linear_cka",), geometry=False, progress=False)
    assert "geometry" not in out
    assert out["meta"]["geometry"] is False


def test_numpy_input_is_accepted() -> None:
    x = _small().numpy()
    out = compute_results(
        {"m": {"a": x, "b": np.tanh(x)}}, labels=np.arange(40) % 2, progress=False
    )
    assert out["similarity"]["linear_cka"][0]["matrix"][0][0] == pytest.approx(1.0)
    assert out["geometry"]["m"]["b"]["neural_collapse"] is not None


def test_tensors_that_require_grad_are_measured_without_warnings() -> None:
    x = _small().requires_grad_()
    out = compute_results({"m": {"a": x, "b": torch.tanh(x)}}, device="cpu", progress=False)
    assert out["similarity"]["linear_cka"][0]["matrix"][0][0] == pytest.approx(1.0)


def test_progress_callback_sees_every_step(models_and_labels: Any) -> None:
    models, _ = models_and_labels
    seen: list[tuple[str, int, int]] = []
    compute_results(
        models,
        measures=("linear_cka",),
        intrinsic_dimension=False,
        progress=lambda what, done, total: seen.append((what, done, total)),
    )
    # 1 measure × 3 pairs of models + 3 corresponding layers × (intervals, null baseline)
    # + 2 models × 3 layers
    assert [(done, total) for _, done, total in seen] == [(i, 15) for i in range(1, 16)]
    assert seen[0][0] == "linear_cka: A × A"
    assert seen[3][0] == "depth intervals: A / layer0 × B / layer0"


# --- labels: each model its own (issue 9, item 5) -------------------------------------


def _two_models(n: int = 40) -> dict[str, dict[str, torch.Tensor]]:
    return {"A": {"h": _small(n, seed=1)}, "B": {"h": _small(n, seed=2)}}


def test_each_model_is_measured_with_its_own_labels() -> None:
    models = _two_models()
    labels = {"A": torch.arange(40) % 2, "B": torch.arange(40) // 10}
    out = compute_results(
        models, labels=labels, measures=(), intrinsic_dimension=False, progress=False
    )
    for model in ("A", "B"):
        expected = neural_collapse(models[model]["h"], labels[model])
        got = out["geometry"][model]["h"]["neural_collapse"]
        assert got["nc1"] == pytest.approx(float(expected.nc1), **EXACT)
        assert got["num_classes"] == int(expected.num_classes)
    assert out["meta"]["labels"] == {
        "A": {"num_classes": 2, "class_counts": [20, 20]},
        "B": {"num_classes": 4, "class_counts": [10, 10, 10, 10]},
    }
    assert "num_classes" not in out["meta"]  # no one labeling shared by every model


def test_labels_shared_by_every_model_are_recorded_once_and_per_model(
    results: dict[str, Any],
) -> None:
    counts = {"num_classes": N_CLASSES, "class_counts": [N_SAMPLES // N_CLASSES] * N_CLASSES}
    assert results["meta"]["labels"] == {"A": counts, "B": counts}
    assert results["meta"]["warnings"] == []


def test_a_model_without_labels_gets_no_other_models_labels() -> None:
    out = compute_results(
        _two_models(),
        labels={"A": torch.arange(40) % 2},
        measures=(),
        intrinsic_dimension=False,
        progress=False,
    )
    assert out["geometry"]["A"]["h"]["neural_collapse"] is not None
    assert out["geometry"]["B"]["h"]["neural_collapse"] is None
    assert "model 'B' has no labels" in out["missing"]["/geometry/B/h/neural_collapse"]
    assert out["meta"]["labels"]["B"] is None and out["meta"]["num_classes"] == 2
    validate_results(out)


@pytest.mark.parametrize(
    ("labels_b", "warning"),
    [
        (torch.arange(40) // 20, "differ on 20 of 40 inputs;"),
        (1 - torch.arange(40) % 2, "differ on 40 of 40 inputs (the same classes under other"),
        (torch.arange(40) % 2, None),
    ],
    ids=["other-classes", "renumbered", "same"],
)
def test_labels_that_differ_between_models_are_flagged(
    labels_b: torch.Tensor, warning: str | None
) -> None:
    labels = {"A": torch.arange(40) % 2, "B": labels_b}
    out = compute_results(_two_models(), labels=labels, measures=(), geometry=False, progress=False)
    if warning is None:
        assert out["meta"]["warnings"] == []
    else:
        (text,) = out["meta"]["warnings"]
        assert text.startswith("the labels of A and B " + warning)


def test_labels_for_a_model_that_does_not_exist_are_refused() -> None:
    with pytest.raises(InvalidOptionError, match=r"labels names the models \['C'\]"):
        compute_results(_two_models(), labels={"C": torch.arange(40) % 2}, progress=False)


def test_one_models_labels_of_the_wrong_length_are_refused_by_name() -> None:
    labels = {"A": torch.arange(40) % 2, "B": torch.arange(39) % 2}
    with pytest.raises(ShapeError, match=r"labels\['B'\] has 39 entries"):
        compute_results(_two_models(), labels=labels, progress=False)


@pytest.mark.parametrize(
    ("stray", "reason"), [(-1, "holds class -1"), (10**12, "holds class 1000000000000")]
)
def test_labels_that_are_not_class_indices_leave_the_counts_null(stray: int, reason: str) -> None:
    labels = torch.arange(40) % 2
    labels[7] = stray  # counts sized by the largest label would not fit in memory
    out = compute_results(_two_models(), labels=labels, measures=(), geometry=False, progress=False)
    assert out["meta"]["labels"]["A"] == {"num_classes": None, "class_counts": None}
    assert reason in out["missing"]["/meta/labels/A/class_counts"]
    validate_results(out)


def test_models_that_differ_in_sample_count_are_refused() -> None:
    with pytest.raises(ShapeError, match=r"same inputs in the same order"):
        compute_results({"A": {"h": _small()}, "B": {"h": _small(n=30)}}, progress=False)


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("models", "error", "match"),
    [
        ([], InputTypeError, "models must be a non-empty dict"),
        ({}, InputTypeError, r"non-empty dict.*\(empty\)"),
        ({"m": {}}, InputTypeError, r"models\['m'\] must be a non-empty dict"),
        ({"m": [1, 2]}, InputTypeError, r"models\['m'\] must be"),
        ({1: {"x": torch.zeros(3, 2)}}, InputTypeError, "model names must be strings"),
        ({"m": {0: torch.zeros(3, 2)}}, InputTypeError, "layer names must be strings"),
        ({"m": {"x": torch.zeros(5)}}, ShapeError, r"models\['m'\]\['x'\] must be a 2-D"),
    ],
    ids=["list", "empty", "empty-model", "model-not-dict", "int-model", "int-layer", "1-D"],
)
def test_bad_models_are_refused(models: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        compute_results(models, progress=False)


def test_layers_with_different_samples_are_refused() -> None:
    with pytest.raises(ShapeError, match=r"same samples.*has 40 rows.*has 30"):
        compute_results({"a": {"x": _small()}, "b": {"y": _small(n=30)}}, progress=False)


def test_an_unknown_measure_is_refused() -> None:
    with pytest.raises(InvalidOptionError, match=r"unknown measure 'cka'.*known: .*linear_cka"):
        compute_results({"m": {"x": _small()}}, measures=("cka",), progress=False)


def test_measure_options_that_are_not_json_are_refused() -> None:
    with pytest.raises(InvalidOptionError, match="plain JSON values"):
        compute_results(
            {"m": {"x": _small()}}, measures={"mutual_knn": {"k": object()}}, progress=False
        )


def test_an_invalid_measure_option_propagates() -> None:
    with pytest.raises(InvalidOptionError, match="metric"):
        compute_results(
            {"m": {"x": _small()}}, measures={"mutual_knn": {"metric": "nope"}}, progress=False
        )


def test_labels_of_the_wrong_length_are_refused() -> None:
    with pytest.raises(ShapeError, match="labels has 39 entries but the representation has 40"):
        compute_results({"m": {"x": _small()}}, labels=torch.zeros(39, dtype=torch.long))


def test_mle_k_below_two_is_refused() -> None:
    with pytest.raises(InvalidOptionError, match="mle_k must be at least 2"):
        compute_results({"m": {"x": _small()}}, mle_k=1, progress=False)
