"""The results document: its schema, validation, and saving and loading ``results.json``.

:func:`~subspaces.report.compute_results` (in :mod:`subspaces.report.compute`) fills the
document; :func:`validate_results` checks one against the schema below,
:func:`save_results` writes it atomically and :func:`load_results` reads it back.

Results schema (``version`` 2; :data:`RESULTS_SCHEMA` is the same as JSON Schema)::

    {
      "version": 2,
      "meta": {
        "subspaces_version": "0.1.0",
        "created": "2025-01-01T12:00:00+00:00",     # UTC, ISO 8601
        "n_samples": 200,                           # rows of every representation
        "models": ["A", "B"],                       # in the order given
        "layers": {"A": ["l1", "l2"], ...},         # per model, in the order given
        "measures": ["linear_cka", ...],            # similarity measures computed
        "measure_options": {"mutual_knn": {"k": 10, "metric": "cosine"}, ...},
                                                    # = options.measure_options
        "omitted_measures": {                       # default measures left out because
          "mean_cca": "n = 300 samples for widths ...: every canonical correlation is 1 ..."},
                                                    # their value is meaningless for these
                                                    # data ({} when none, or when the
                                                    # measures were named)
        "options": {                                # every option that shaped a number,
          "n_samples": 200,                         # resolved (defaults filled in)
          "dtype": {"A": "float32", "B": "float32"},  # of each model's activations
          "measure_options": {"linear_cka": {"debiased": false}, ...},  # incl. defaults
          "mle_k": 20, "top_eigenvalues": 100,      # only when they were used (geometry)
          "device": "cpu",
          "self_comparisons": true,                 # each model against itself computed
          "bootstrap": {"resamples": 20, "level": 0.95, "seed": 0,   # or null: no intervals
                        "interval": "value ± t · standard deviation of the draws",
                        "half_sample": ["mutual_knn"]},  # drawn as n // 2 rows without
                                                    # replacement (the rest: n rows with)
          "null": {"permutations": 10, "level": 0.95, "seed": 1}},   # or null: no baseline
        "sources": {"A": {"path": "runs/a", "pooling": "mean", ...}, ...},  # where each
                                                    # model's layers came from, as the caller
                                                    # said ({} when unknown)
        "geometry": true, "intrinsic_dimension": true,       # what was requested
        "mle_k": 20,                                # neighbors of the MLE estimate
        "top_eigenvalues": 100,                     # eigenvalues kept per layer (at most)
        "has_labels": true,                         # some model has labels
        "labels": {                                 # only with labels: per model
          "A": {"num_classes": 4, "class_counts": [50, ...]},  # classes 0..C-1
          "B": null},                               # a model without labels
        "num_classes": 4, "class_counts": [50, ...],         # only when every model with
                                                    # labels has the same labels
        "warnings": ["the labels of A and B differ on 40 of 200 inputs; ..."],
        "device": "cpu"
      },
      "measure_info": {                              # how to read each measure
        "linear_cka": {"label": "linear CKA", "kind": "similarity",  # or "distance"
                       "range": [0.0, 1.0],         # null when not bounded / options change it
                       "caveats": []},              # why its values may mislead for these
                                                    # data (n small against d...), and the
                                                    # warnings it raised while computing
        ...
      },
      "similarity": {
        "linear_cka": [                              # one record per pair of models i <= j
                                                     # (i < j: self_comparisons false)
          {"x_model": "A", "y_model": "A",           # A with itself: layers × layers
           "x_layers": ["l1", ...], "y_layers": ["l1", ...],
           "matrix": [[1.0, 0.8], [0.8, 1.0]]},     # matrix[i][j] = measure(x_i, y_j)
          {"x_model": "A", "y_model": "B", ...},
          ...
        ], ...
      },
      "depth": {                                     # present with 2 models or more
        "linear_cka": [                              # one record per pair of models i < j
          {"x_model": "A", "y_model": "B",
           "x_layers": ["l1", "l2", "l3"], "y_layers": ["l1", "l3", "l5"],  # corresponding
           "depth": [0.0, 0.5, 1.0],                # relative depth, i / (L - 1) of the model
                                                    # with fewer layers (0 for L = 1)
           "value": [0.9, null, 0.7],               # = the similarity matrix entry
           "ci": [[0.88, 0.93], null, [0.6, 0.75]], # bootstrap interval at the level; the
                                                    # whole list null when not requested
           "null": [[0.02, 0.05], null, ...]},      # the measure with the rows of y permuted:
                                                    # [mean, quantile at the level on the side
                                                    # of "alike"]; null when not requested
          ...], ...
      },
      "geometry": {                                  # present when geometry=True
        "A": {
          "l1": {
            "width": 64,                             # d, the layer's number of features
            "total_variance": 3.2,                   # tr Σ (activation units²)
            "effective_rank": 12.0, "participation_ratio": 8.1, "stable_rank": 3.0,
            "numerical_rank": 64.0, "spectral_decay": 1.1, "von_neumann_entropy": 2.0,
            "spectrum": {"eigenvalues": [...],       # top eigenvalues of Σ, decreasing
                         "explained_variance_ratio": [...],   # λ_i / Σλ for the same i
                         "n_eigenvalues": 64},      # d, how many exist in all
            "twonn_id": 7.5, "mle_id": 8.0,          # when intrinsic_dimension=True
            "neural_collapse": {                     # with labels; null (and a reason
                                                     # in missing) for a model without
              "nc1": ..., "trace_ratio": ..., "cdnv": ..., "equinorm": ...,
              "equiangularity": ..., "etf_distance": ..., "between_rank": 3,
              "num_classes": 4}
          }, ...
        }, ...
      },
      "missing": {                                   # why each null is null
        "/geometry/A/l1/twonn_id": "DegenerateInputError: TwoNN: 12 points ...",
        "/similarity/mutual_knn/1/matrix/0/0":
            "layer 'emb' of model 'B' is constant: every input gives the same vector", ...
      }
    }

A key that is absent was not requested; a value that is ``null`` was requested but could
not be computed (a constant layer, duplicate points, a class with one sample, a NaN or
infinite result, a model without labels, a solver that failed, any error in that one
cell): ``missing`` maps its JSON pointer (RFC 6901: ``/``-separated keys and list indices,
``~`` written ``~0`` and ``/`` written ``~1``) to the reason, one string per cause (every
cell of a constant layer has the same reason), ``"<ErrorType>: <message>"`` for an error.
Exceptions: the options in ``meta`` (``null`` is an option's value there, e.g.
``rtol: null``), a measure's ``range`` (null: not known for these options), and a depth
record's ``ci`` or ``null`` list that is null as a whole because no bootstrap or
permutation was requested (``meta.options.bootstrap`` or ``meta.options.null`` is null).
Every float is finite. The scalar definitions are those of
:mod:`subspaces.geometry` (docs/measures.md).

Models and labels: model names are the keys of ``models`` (distinct, as dict keys are) and
name every record, so two models never merge; layer names are per model. Every model holds
the same n inputs in the same order (refused otherwise). Each model's neural collapse uses
that model's own labels; where the labeled models' labels differ, the results are still
computed (a second labeling of the same inputs, e.g. coarse and fine classes, is legitimate)
and ``meta.warnings`` says on how many inputs they differ, because it may also mean that the
models saw different inputs or the same inputs in another order, which would make every
similarity between them meaningless.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import subspaces
from subspaces._checks import SubspacesError

__all__ = [
    "RESULTS_SCHEMA",
    "SCHEMA_VERSION",
    "ResultsFormatError",
    "json_pointer",
    "load_results",
    "save_results",
    "validate_results",
]

SCHEMA_VERSION = 2
"""The version of the results schema written by :func:`~subspaces.report.compute_results`.

Version 2 (issue 11) added ``meta.options``, ``meta.sources``, ``meta.omitted_measures``,
``measure_info[name].caveats`` and the ``depth`` section; version 1 files are refused
with the advice to compute them again."""

# the per-layer scalars of the covariance spectrum, and of neural collapse (our key: the
# field of subspaces.geometry's NeuralCollapseResult it comes from)
_SPECTRUM_SCALARS = (
    "total_variance",
    "effective_rank",
    "participation_ratio",
    "stable_rank",
    "numerical_rank",
    "spectral_decay",
    "von_neumann_entropy",
)
_COLLAPSE_FIELDS = {  # our key: NeuralCollapseResult field
    "nc1": "nc1",
    "trace_ratio": "trace_ratio",
    "cdnv": "cdnv",
    "equinorm": "equinorm_means",
    "equiangularity": "equiangularity_means",
    "etf_distance": "etf_distance_means",
}

_NUMBER = {"type": "number"}
_NULLABLE_NUMBER = {"type": ["number", "null"]}
_NAME_LIST = {"type": "array", "items": {"type": "string"}}
_NUMBER_LIST = {"type": "array", "items": _NUMBER}
_NUMBER_PAIR = {"type": "array", "items": _NUMBER, "minItems": 2, "maxItems": 2}
_NULLABLE_PAIRS = {  # a depth record's ci / null: null (not requested) or one pair per point
    "oneOf": [
        {"type": "null"},
        {"type": "array", "items": {"oneOf": [{"type": "null"}, _NUMBER_PAIR]}},
    ]
}

RESULTS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "subspaces results",
    "type": "object",
    "required": ["version", "meta", "measure_info", "similarity", "missing"],
    "properties": {
        "version": {"const": SCHEMA_VERSION},
        "meta": {
            "type": "object",
            "required": [
                "subspaces_version",
                "created",
                "n_samples",
                "models",
                "layers",
                "measures",
                "measure_options",
                "geometry",
                "intrinsic_dimension",
                "has_labels",
                "options",
                "sources",
                "omitted_measures",
            ],
            "properties": {
                "subspaces_version": {"type": "string"},
                "created": {"type": "string"},
                "n_samples": {"type": "integer", "minimum": 1},
                "models": {**_NAME_LIST, "minItems": 1, "uniqueItems": True},
                "layers": {
                    "type": "object",
                    "additionalProperties": {**_NAME_LIST, "uniqueItems": True},
                },
                "measures": {**_NAME_LIST, "uniqueItems": True},
                "measure_options": {"type": "object", "additionalProperties": {"type": "object"}},
                "geometry": {"type": "boolean"},
                "intrinsic_dimension": {"type": "boolean"},
                "mle_k": {"type": "integer"},
                "top_eigenvalues": {"type": "integer"},
                "has_labels": {"type": "boolean"},
                "labels": {
                    "type": "object",
                    "additionalProperties": {
                        "oneOf": [
                            {"type": "null"},
                            {
                                "type": "object",
                                "required": ["num_classes", "class_counts"],
                                "properties": {
                                    "num_classes": {"type": ["integer", "null"]},
                                    "class_counts": {
                                        "oneOf": [
                                            {"type": "null"},
                                            {"type": "array", "items": {"type": "integer"}},
                                        ]
                                    },
                                },
                            },
                        ]
                    },
                },
                "num_classes": {"type": "integer"},
                "class_counts": {"type": "array", "items": {"type": "integer"}},
                "warnings": _NAME_LIST,
                "device": {"type": "string"},
                "omitted_measures": {"type": "object", "additionalProperties": {"type": "string"}},
                "sources": {"type": "object", "additionalProperties": {"type": "object"}},
                "options": {
                    "type": "object",
                    "required": [
                        "n_samples",
                        "dtype",
                        "measure_options",
                        "device",
                        "bootstrap",
                        "null",
                    ],
                    "properties": {
                        "n_samples": {"type": "integer", "minimum": 1},
                        "dtype": {"type": "object", "additionalProperties": {"type": "string"}},
                        "measure_options": {
                            "type": "object",
                            "additionalProperties": {"type": "object"},
                        },
                        "mle_k": {"type": "integer"},
                        "top_eigenvalues": {"type": "integer"},
                        "device": {"type": "string"},
                        "self_comparisons": {"type": "boolean"},
                        "bootstrap": {
                            "oneOf": [
                                {"type": "null"},
                                {
                                    "type": "object",
                                    "required": ["resamples", "level", "seed"],
                                    "properties": {
                                        "resamples": {"type": "integer", "minimum": 2},
                                        "level": _NUMBER,
                                        "seed": {"type": "integer"},
                                        "interval": {"type": "string"},
                                        "half_sample": _NAME_LIST,
                                    },
                                },
                            ]
                        },
                        "null": {
                            "oneOf": [
                                {"type": "null"},
                                {
                                    "type": "object",
                                    "required": ["permutations", "level", "seed"],
                                    "properties": {
                                        "permutations": {"type": "integer", "minimum": 1},
                                        "level": _NUMBER,
                                        "seed": {"type": "integer"},
                                    },
                                },
                            ]
                        },
                    },
                },
            },
        },
        "measure_info": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["label", "kind", "range", "caveats"],
                "properties": {
                    "caveats": _NAME_LIST,
                    "label": {"type": "string"},
                    "kind": {"enum": ["similarity", "distance"]},
                    "range": {
                        "oneOf": [
                            {"type": "null"},
                            {"type": "array", "items": _NUMBER, "minItems": 2, "maxItems": 2},
                        ]
                    },
                },
            },
        },
        "similarity": {
            "type": "object",
            "additionalProperties": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["x_model", "y_model", "x_layers", "y_layers", "matrix"],
                    "properties": {
                        "x_model": {"type": "string"},
                        "y_model": {"type": "string"},
                        "x_layers": _NAME_LIST,
                        "y_layers": _NAME_LIST,
                        "matrix": {
                            "type": "array",
                            "items": {"type": "array", "items": _NULLABLE_NUMBER},
                        },
                    },
                },
            },
        },
        "depth": {
            "type": "object",
            "additionalProperties": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": [
                        "x_model",
                        "y_model",
                        "x_layers",
                        "y_layers",
                        "depth",
                        "value",
                        "ci",
                        "null",
                    ],
                    "properties": {
                        "x_model": {"type": "string"},
                        "y_model": {"type": "string"},
                        "x_layers": _NAME_LIST,
                        "y_layers": _NAME_LIST,
                        "depth": {
                            "type": "array",
                            "items": {**_NUMBER, "minimum": 0, "maximum": 1},
                        },
                        "value": {"type": "array", "items": _NULLABLE_NUMBER},
                        "ci": _NULLABLE_PAIRS,
                        "null": _NULLABLE_PAIRS,
                    },
                },
            },
        },
        "geometry": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "required": ["width", *_SPECTRUM_SCALARS, "spectrum"],
                    "properties": {
                        "width": {"type": "integer", "minimum": 1},
                        **{key: _NULLABLE_NUMBER for key in _SPECTRUM_SCALARS},
                        "spectrum": {
                            "oneOf": [
                                {"type": "null"},
                                {
                                    "type": "object",
                                    "required": [
                                        "eigenvalues",
                                        "explained_variance_ratio",
                                        "n_eigenvalues",
                                    ],
                                    "properties": {
                                        "eigenvalues": _NUMBER_LIST,
                                        "explained_variance_ratio": _NUMBER_LIST,
                                        "n_eigenvalues": {"type": "integer"},
                                    },
                                },
                            ]
                        },
                        "twonn_id": _NULLABLE_NUMBER,
                        "mle_id": _NULLABLE_NUMBER,
                        "neural_collapse": {
                            "oneOf": [
                                {"type": "null"},
                                {
                                    "type": "object",
                                    "required": [*_COLLAPSE_FIELDS, "between_rank", "num_classes"],
                                    "properties": {
                                        **{key: _NULLABLE_NUMBER for key in _COLLAPSE_FIELDS},
                                        "between_rank": {"type": "integer"},
                                        "num_classes": {"type": "integer"},
                                    },
                                },
                            ]
                        },
                    },
                },
            },
        },
        "missing": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
"""The results schema as JSON Schema (draft 2020-12), for tools that validate it."""


class ResultsFormatError(SubspacesError, ValueError):
    """A results dict or results.json that does not follow the results schema.

    Examples:
        >>> from subspaces.report import ResultsFormatError, validate_results
        >>> try:
        ...     validate_results({"version": 2})
        ... except ResultsFormatError as error:
        ...     print(str(error).split(".")[0])
        results: the key 'meta' is missing
    """


# ---------------------------------------------------------------------------------------


def json_pointer(*keys: str | int) -> str:
    """The RFC 6901 JSON pointer of a path of keys: ``json_pointer("a/b", 0) == "/a~1b/0"``.

    Examples:
        >>> from subspaces.report import json_pointer
        >>> json_pointer("geometry", "A/B", "l1", 0)
        '/geometry/A~1B/l1/0'
    """
    return "".join("/" + str(key).replace("~", "~0").replace("/", "~1") for key in keys)


# Validation, saving, loading


def _fail(where: str, problem: str) -> ResultsFormatError:
    return ResultsFormatError(
        f"results{where or ''}: {problem}. The results must be a dict written by "
        "subspaces.report.compute_results (schema version "
        f"{SCHEMA_VERSION}); recompute them if the file was edited or truncated."
    )


def _need(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise _fail(where, f"the key {key!r} is missing")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise _fail(f"{where}/{key}", f"expected {names}, got {type(value).__name__}")
    return value


def _check_nulls(
    value: Any, pointer: str, missing: Mapping[str, str], exempt: frozenset[str] = frozenset()
) -> None:
    if pointer in exempt:  # options (null is a value there), lists not requested
        return
    if value is None:
        if pointer not in missing:
            raise _fail(pointer, "is null but 'missing' gives no reason for it")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _fail(pointer, f"holds {value}; results hold finite numbers or null")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_nulls(item, pointer + json_pointer(key), missing, exempt)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_nulls(item, pointer + json_pointer(i), missing, exempt)


def validate_results(results: Any) -> dict[str, Any]:
    """Check that ``results`` follows the results schema; return it unchanged.

    Checks the version (a version 1 document is refused with the advice to compute it
    again), the required keys and their types, that model names and each model's layer
    names are distinct, that every matrix is ``len(x_layers) × len(y_layers)`` and names the
    layers of its models in ``meta.layers``, that every depth record pairs two distinct
    models' layers with one value, interval and null baseline per point (``ci`` / ``null``
    null as a whole exactly when ``meta.options`` did not request them), that geometry
    covers the layers of ``meta``, that every float is finite and that every null has a
    reason in ``missing``. Raises :class:`ResultsFormatError` naming the JSON pointer at
    fault.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 6, generator=g)
        >>> models = {"A": {"l1": x, "l2": torch.tanh(x @ torch.randn(6, 4, generator=g))}}
        >>> from subspaces.report import compute_results, validate_results
        >>> results = compute_results(
        ...     models, measures=["linear_cka"], geometry=False, progress=False
        ... )
        >>> validate_results(results) is results
        True
    """
    if not isinstance(results, dict):
        raise _fail("", f"expected a dict, got {type(results).__name__}")
    version = _need(results, "version", int, "")
    if version > SCHEMA_VERSION:
        raise ResultsFormatError(
            f"results have schema version {version}, newer than this subspaces "
            f"({subspaces.__version__}) reads ({SCHEMA_VERSION}); upgrade subspaces."
        )
    if 1 <= version < SCHEMA_VERSION:
        raise ResultsFormatError(
            f"results have schema version {version}, written by an older subspaces; this "
            f"subspaces ({subspaces.__version__}) reads version {SCHEMA_VERSION}, which adds "
            "the depth curves, the resolved options and the caveats of each measure. Compute "
            "them again from the activations: re-run `subspaces report` on the stores (or "
            "subspaces.report.compute_results)."
        )
    if version != SCHEMA_VERSION:
        raise _fail("/version", f"unknown schema version {version}")
    meta = _need(results, "meta", dict, "")
    _need(meta, "n_samples", int, "/meta")
    models = _need(meta, "models", list, "/meta")
    layers = _need(meta, "layers", dict, "/meta")
    measures = _need(meta, "measures", list, "/meta")
    for key, names in (("models", models), ("measures", measures)):
        if not all(isinstance(name, str) for name in names):
            raise _fail(f"/meta/{key}", "expected a list of names (strings)")
    if not models or set(models) != set(layers):
        raise _fail("/meta/layers", f"names models {sorted(layers)}, meta.models {models}")
    twice = sorted({m for m in models if models.count(m) > 1})
    if twice:
        raise _fail("/meta/models", f"names {twice} more than once; model names are distinct")
    for model, names in layers.items():
        where = json_pointer("meta", "layers", model)
        if not isinstance(names, list) or not all(isinstance(k, str) for k in names):
            raise _fail(where, "expected a list of layer names")
        twice = sorted({k for k in names if names.count(k) > 1})
        if twice:
            raise _fail(where, f"names {twice} more than once; a model's layers are distinct")
    if "warnings" in meta:
        warnings = _need(meta, "warnings", list, "/meta")
        if not all(isinstance(w, str) for w in warnings):
            raise _fail("/meta/warnings", "expected a list of strings")
    if len(set(measures)) != len(measures):
        raise _fail("/meta/measures", f"names a measure more than once: {measures}")
    if "labels" in meta:
        labeled = _need(meta, "labels", dict, "/meta")
        if set(labeled) != set(models):
            raise _fail("/meta/labels", f"names models {sorted(labeled)}, meta.models {models}")
    options = _need(meta, "options", dict, "/meta")
    for key in ("dtype", "measure_options"):
        _need(options, key, dict, "/meta/options")
    for key in ("bootstrap", "null"):
        if key not in options:
            raise _fail("/meta/options", f"the key {key!r} is missing")
        if options[key] is not None and not isinstance(options[key], dict):
            raise _fail(f"/meta/options/{key}", "expected a dict or null")
    _need(meta, "sources", dict, "/meta")
    omitted = _need(meta, "omitted_measures", dict, "/meta")
    if not all(isinstance(v, str) for v in omitted.values()):
        raise _fail("/meta/omitted_measures", "expected a dict measure -> reason (a string)")
    info = _need(results, "measure_info", dict, "")
    similarity = _need(results, "similarity", dict, "")
    missing = _need(results, "missing", dict, "")
    for name in measures:
        entry = _need(info, name, dict, "/measure_info")
        caveats = _need(entry, "caveats", list, json_pointer("measure_info", name))
        if not all(isinstance(c, str) for c in caveats):
            raise _fail(json_pointer("measure_info", name, "caveats"), "expected strings")
        records = _need(similarity, name, list, "/similarity")
        pairs: set[tuple[str, str]] = set()
        for r, record in enumerate(records):
            where = json_pointer("similarity", name, r)
            if not isinstance(record, dict):
                raise _fail(where, "expected a dict")
            xm = _need(record, "x_model", str, where)
            ym = _need(record, "y_model", str, where)
            for model in (xm, ym):
                if model not in layers:
                    raise _fail(where, f"model {model!r} is not in meta.models")
            if (xm, ym) in pairs:
                raise _fail(where, f"is a second record for {xm!r} × {ym!r}")
            pairs.add((xm, ym))
            xl = _need(record, "x_layers", list, where)
            yl = _need(record, "y_layers", list, where)
            for key, model, names in (("x_layers", xm, xl), ("y_layers", ym, yl)):
                if names != layers[model]:
                    raise _fail(
                        f"{where}/{key}", f"is {names}, not the layers of {model!r} in meta.layers"
                    )
            matrix = _need(record, "matrix", list, where)
            if len(matrix) != len(xl) or any(
                not isinstance(row, list) or len(row) != len(yl) for row in matrix
            ):
                raise _fail(where + "/matrix", f"is not {len(xl)} × {len(yl)}")
            for i, row in enumerate(matrix):
                for j, v in enumerate(row):
                    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                        raise _fail(f"{where}/matrix/{i}/{j}", f"expected a number, got {v!r}")
    if "geometry" in results:
        geometry = _need(results, "geometry", dict, "")
        for model, model_layers in geometry.items():
            where = json_pointer("geometry", model)
            if model not in layers or not isinstance(model_layers, dict):
                raise _fail(where, "names a model not in meta.models, or is not a dict")
            if list(model_layers) != layers[model]:
                raise _fail(where, f"has layers {list(model_layers)}, meta.layers {layers[model]}")
            for layer, values in model_layers.items():
                if not isinstance(values, dict):
                    raise _fail(where + json_pointer(layer), "expected a dict")
                _need(values, "width", int, where + json_pointer(layer))
    exempt = {"/meta/options", "/meta/measure_options", "/meta/sources"}
    # a null range says "not known for these options", a value of its own
    exempt |= {json_pointer("measure_info", name, "range") for name in info}
    if "depth" in results:
        exempt |= _check_depth(results, layers, measures, options)
    checked = {k: v for k, v in results.items() if k != "missing"}
    _check_nulls(checked, "", missing, frozenset(exempt))
    return results


def _check_depth(
    results: Mapping[str, Any],
    layers: Mapping[str, list[str]],
    measures: list[str],
    options: Mapping[str, Any],
) -> set[str]:
    """Check the depth section; return the pointers of the lists that were not requested."""
    depth = _need(results, "depth", dict, "")
    unrequested: set[str] = set()
    for name, records in depth.items():
        if name not in measures:
            raise _fail(json_pointer("depth", name), "names a measure not in meta.measures")
        if not isinstance(records, list):
            raise _fail(json_pointer("depth", name), "expected a list of records")
        for r, record in enumerate(records):
            where = json_pointer("depth", name, r)
            if not isinstance(record, dict):
                raise _fail(where, "expected a dict")
            xm = _need(record, "x_model", str, where)
            ym = _need(record, "y_model", str, where)
            if xm not in layers or ym not in layers or xm == ym:
                raise _fail(where, f"pairs {xm!r} with {ym!r}: two distinct models of meta")
            size = len(_need(record, "depth", list, where))
            for key, model in (("x_layers", xm), ("y_layers", ym)):
                names = _need(record, key, list, where)
                if len(names) != size or any(k not in layers[model] for k in names):
                    raise _fail(
                        f"{where}/{key}", f"is not {size} layers of {model!r} in meta.layers"
                    )
            for i, d in enumerate(record["depth"]):
                if isinstance(d, bool) or not isinstance(d, (int, float)) or not 0 <= d <= 1:
                    raise _fail(f"{where}/depth/{i}", f"expected a relative depth, got {d!r}")
            values = _need(record, "value", list, where)
            if len(values) != size:
                raise _fail(f"{where}/value", f"has {len(values)} entries, not {size}")
            for key, option in (("ci", "bootstrap"), ("null", "null")):
                if key not in record:
                    raise _fail(where, f"the key {key!r} is missing")
                pairs = record[key]
                if pairs is None:
                    if options.get(option) is not None:
                        raise _fail(f"{where}/{key}", f"is null but meta.options.{option} is set")
                    unrequested.add(f"{where}/{key}")
                    continue
                if options.get(option) is None:
                    raise _fail(f"{where}/{key}", f"is a list but meta.options.{option} is null")
                if not isinstance(pairs, list) or len(pairs) != size:
                    raise _fail(f"{where}/{key}", f"expected null or a list of {size} entries")
                for i, pair in enumerate(pairs):
                    if pair is not None and (
                        not isinstance(pair, list)
                        or len(pair) != 2
                        or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in pair)
                    ):
                        raise _fail(f"{where}/{key}/{i}", f"expected [low, high], got {pair!r}")
    return unrequested


def _atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as handle:  # mode from the umask, as open() does
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_results(results: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``results`` as JSON (atomically: a temporary file, then a rename); return the path.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 6, generator=g)
        >>> models = {"A": {"l1": x, "l2": torch.tanh(x @ torch.randn(6, 4, generator=g))}}
        >>> import os, tempfile
        >>> from subspaces.report import compute_results, load_results, save_results
        >>> results = compute_results(
        ...     models, measures=["linear_cka"], geometry=False, progress=False
        ... )
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = save_results(results, os.path.join(folder, "results.json"))
        ...     print(path.name, load_results(path)["similarity"] == results["similarity"])
        results.json True
    """
    checked = validate_results(dict(results))
    target = Path(path)
    _atomic_write_text(
        target, json.dumps(checked, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    )
    return target


def load_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read results written by :func:`save_results` or :func:`~subspaces.report.write_report`.

    Args:
        path: a ``results.json`` file, or a report folder holding one.

    Returns:
        The results dict, validated (:func:`validate_results`).

    Raises:
        FileNotFoundError: no such file. ResultsFormatError: not JSON, nested too deeply, a key
            given twice in one object, or not the schema.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 6, generator=g)
        >>> models = {"A": {"l1": x, "l2": torch.tanh(x @ torch.randn(6, 4, generator=g))}}
        >>> import os, tempfile
        >>> from subspaces.report import compute_results, load_results, save_results
        >>> results = compute_results(
        ...     models, measures=["linear_cka"], geometry=False, progress=False
        ... )
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     _ = save_results(results, os.path.join(folder, "results.json"))
        ...     again = load_results(folder)  # the folder of a report, or the file itself
        >>> again["meta"]["layers"]
        {'A': ['l1', 'l2']}
    """
    target = Path(path)
    if target.is_dir():
        target = target / "results.json"
    if not target.is_file():
        raise FileNotFoundError(
            f"no results file at {target}; pass the results.json written beside a report."
        )
    try:
        results = json.loads(target.read_text(encoding="utf-8"), object_pairs_hook=_unique_keys)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ResultsFormatError(
            f"{target} is not valid JSON ({error}); it may be truncated. Recompute the results."
        ) from error
    except RecursionError:
        raise ResultsFormatError(
            f"{target} is nested too deeply to be a results file (JSON lists or objects "
            "inside one another thousands of levels deep); recompute the results."
        ) from None
    except _DuplicateKeyError as error:
        raise ResultsFormatError(
            f"{target} holds the key {error.args[0]!r} twice in one object (JSON keeps only "
            "the last, which would drop a model or a layer); recompute the results."
        ) from None
    return validate_results(results)


class _DuplicateKeyError(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads`` hook: a dict, refusing a key given twice (JSON would keep the last)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(key)
        out[key] = value
    return out
