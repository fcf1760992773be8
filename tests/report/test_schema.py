"""The results document: JSON Schema, validation, JSON pointers, saving and loading."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from subspaces.report import (
    RESULTS_SCHEMA,
    SCHEMA_VERSION,
    ResultsFormatError,
    json_pointer,
    load_results,
    save_results,
    validate_results,
)

# --- schema ---------------------------------------------------------------------------


def test_results_validate_against_the_json_schema(results: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(results, RESULTS_SCHEMA)


def test_results_validate_against_the_json_schema_after_a_json_round_trip(
    results: dict[str, Any],
) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(json.loads(json.dumps(results)), RESULTS_SCHEMA)


def test_schema_is_itself_valid_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(RESULTS_SCHEMA)


def test_results_are_strict_json(results: dict[str, Any]) -> None:
    text = json.dumps(results, allow_nan=False)  # raises on NaN / inf
    assert json.loads(text) == results


def test_validate_results_accepts_computed_results(results: dict[str, Any]) -> None:
    assert validate_results(results) is results


# --- JSON pointers, validation, saving and loading --------------------------------------


@pytest.mark.parametrize(
    ("keys", "pointer"),
    [
        (("geometry", "A", "l1"), "/geometry/A/l1"),
        (("a/b", "c~d", 0), "/a~1b/c~0d/0"),
        (("",), "/"),
    ],
    ids=["plain", "escaped", "empty-key"],
)
def test_json_pointer(keys: tuple[Any, ...], pointer: str) -> None:
    assert json_pointer(*keys) == pointer


def _broken(results: dict[str, Any], edit: str) -> dict[str, Any]:
    bad = copy.deepcopy(results)
    if edit == "no-meta":
        del bad["meta"]
    elif edit == "null-without-reason":
        bad["similarity"]["linear_cka"][1]["matrix"][0][0] = None
    elif edit == "nan":
        bad["geometry"]["A"]["layer0"]["effective_rank"] = math.nan
    elif edit == "ragged-matrix":
        bad["similarity"]["linear_cka"][1]["matrix"][2].pop()
    elif edit == "unknown-model":
        bad["similarity"]["linear_cka"][1]["y_model"] = "C"
    elif edit == "string-value":
        bad["similarity"]["linear_cka"][0]["matrix"][0][1] = "0.5"
    elif edit == "model-twice":
        bad["meta"]["models"].append("A")
    elif edit == "layer-twice":
        bad["meta"]["layers"]["B"].append("layer0")
    elif edit == "measure-twice":
        bad["meta"]["measures"].append("linear_cka")
    elif edit == "pair-twice":
        bad["similarity"]["linear_cka"].append(bad["similarity"]["linear_cka"][1])
    elif edit == "other-layers":
        bad["similarity"]["linear_cka"][1]["y_layers"] = ["layer0", "layer1", "x"]
    elif edit == "geometry-layers":
        bad["geometry"]["B"]["x"] = bad["geometry"]["B"].pop("layer2")
    elif edit == "labels-of-unknown-model":
        bad["meta"]["labels"]["C"] = None
    elif edit == "unhashable-model":
        bad["meta"]["models"].append(["A"])
    elif edit == "no-options":
        del bad["meta"]["options"]
    elif edit == "no-caveats":
        del bad["measure_info"]["linear_cka"]["caveats"]
    elif edit == "depth-self-pair":
        bad["depth"]["linear_cka"][0]["y_model"] = "A"
    elif edit == "depth-out-of-range":
        bad["depth"]["linear_cka"][0]["depth"][2] = 1.5
    elif edit == "depth-short-values":
        bad["depth"]["linear_cka"][0]["value"].pop()
    elif edit == "depth-ci-not-a-pair":
        bad["depth"]["linear_cka"][0]["ci"][1] = [0.1]
    elif edit == "depth-ci-dropped":
        bad["depth"]["linear_cka"][0]["ci"] = None
    elif edit == "depth-null-without-reason":
        bad["depth"]["linear_cka"][0]["null"][0] = None
    elif edit == "depth-unknown-layer":
        bad["depth"]["linear_cka"][0]["x_layers"][0] = "x"
    return bad


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        ("no-meta", "the key 'meta' is missing"),
        ("null-without-reason", r"/similarity/linear_cka/1/matrix/0/0: is null but 'missing'"),
        ("nan", r"/geometry/A/layer0/effective_rank: holds nan"),
        ("ragged-matrix", r"/similarity/linear_cka/1/matrix: is not 3 × 3"),
        ("unknown-model", "model 'C' is not in meta.models"),
        ("string-value", r"matrix/0/1: expected a number"),
        ("model-twice", r"/meta/models: names \['A'\] more than once"),
        ("layer-twice", r"/meta/layers/B: names \['layer0'\] more than once"),
        ("measure-twice", r"/meta/measures: names a measure more than once"),
        ("pair-twice", r"/similarity/linear_cka/3: is a second record for 'A' × 'B'"),
        ("other-layers", r"/similarity/linear_cka/1/y_layers: is .* not the layers of 'B'"),
        ("geometry-layers", r"/geometry/B: has layers"),
        ("labels-of-unknown-model", r"/meta/labels: names models \['A', 'B', 'C'\]"),
        ("unhashable-model", r"/meta/models: expected a list of names"),
        ("no-options", r"/meta: the key 'options' is missing"),
        ("no-caveats", r"/measure_info/linear_cka: the key 'caveats' is missing"),
        ("depth-self-pair", r"/depth/linear_cka/0: pairs 'A' with 'A'"),
        ("depth-out-of-range", r"/depth/linear_cka/0/depth/2: expected a relative depth"),
        ("depth-short-values", r"/depth/linear_cka/0/value: has 2 entries, not 3"),
        ("depth-ci-not-a-pair", r"/depth/linear_cka/0/ci/1: expected \[low, high\]"),
        ("depth-ci-dropped", r"/depth/linear_cka/0/ci: is null but meta.options.bootstrap"),
        ("depth-null-without-reason", r"/depth/linear_cka/0/null/0: is null but 'missing'"),
        ("depth-unknown-layer", r"/depth/linear_cka/0/x_layers: is not 3 layers of 'A'"),
    ],
)
def test_validate_results_names_what_is_wrong(
    results: dict[str, Any], edit: str, match: str
) -> None:
    with pytest.raises(ResultsFormatError, match=match):
        validate_results(_broken(results, edit))


def test_results_from_a_newer_version_are_refused(results: dict[str, Any]) -> None:
    newer = {**results, "version": SCHEMA_VERSION + 1}
    with pytest.raises(ResultsFormatError, match="newer than this subspaces"):
        validate_results(newer)


def test_results_of_version_1_are_refused_with_the_way_to_rebuild_them(
    results: dict[str, Any],
) -> None:
    with pytest.raises(ResultsFormatError, match=r"version 1.*re-run `subspaces report`"):
        validate_results({**results, "version": 1})


def test_depth_lists_that_were_not_requested_are_null_without_reasons(
    results: dict[str, Any],
) -> None:
    bare = copy.deepcopy(results)
    bare["meta"]["options"]["bootstrap"] = bare["meta"]["options"]["null"] = None
    for records in bare["depth"].values():
        for record in records:
            record["ci"] = record["null"] = None
    assert validate_results(bare) is bare


def test_save_and_load_round_trip(results: dict[str, Any], tmp_path: Path) -> None:
    path = save_results(results, tmp_path / "sub" / "results.json")
    assert path.is_file()
    assert load_results(path) == results
    assert load_results(tmp_path / "sub") == results  # the folder works too
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]  # no temporary left


def test_load_results_refuses_a_truncated_file(results: dict[str, Any], tmp_path: Path) -> None:
    path = save_results(results, tmp_path / "results.json")
    path.write_text(path.read_text()[:200])
    with pytest.raises(ResultsFormatError, match=r"not valid JSON.*truncated"):
        load_results(path)


def test_load_results_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no results file at"):
        load_results(tmp_path / "nothing.json")


def test_load_results_refuses_a_key_given_twice(results: dict[str, Any], tmp_path: Path) -> None:
    path = save_results(results, tmp_path / "results.json")
    text = path.read_text()
    # a second "A" in geometry: json.loads would silently keep only the last
    path.write_text(text.replace('"geometry": {', '"geometry": {"A": {}, ', 1))
    with pytest.raises(ResultsFormatError, match=r"holds the key 'A' twice in one object"):
        load_results(path)


def test_load_results_refuses_a_file_nested_too_deeply(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ResultsFormatError, match="nested too deeply"):
        load_results(path)
