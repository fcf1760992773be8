"""Every number of a report, computed by the families and kept as plain JSON.

:func:`compute_results` calls :func:`subspaces.similarity.pairwise` and the functions of
:mod:`subspaces.geometry` on the layers of one or more models and returns a JSON-serializable
dict; :func:`load_results` reads it back from ``results.json``. Nothing here computes a
measure: it only calls the families and records their values.

Results schema (``version`` 1; :data:`RESULTS_SCHEMA` is the same as JSON Schema)::

    {
      "version": 1,
      "meta": {
        "subspaces_version": "0.1.0",
        "created": "2025-01-01T12:00:00+00:00",     # UTC, ISO 8601
        "n_samples": 200,                           # rows of every representation
        "models": ["A", "B"],                       # in the order given
        "layers": {"A": ["l1", "l2"], ...},         # per model, in the order given
        "measures": ["linear_cka", ...],            # similarity measures computed
        "measure_options": {"mutual_knn": {"k": 10}, ...},   # options passed (JSON values)
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
                       "range": [0.0, 1.0]},        # null when not bounded / options change it
        ...
      },
      "similarity": {
        "linear_cka": [                              # one record per pair of models i <= j
          {"x_model": "A", "y_model": "A",           # A with itself: layers × layers
           "x_layers": ["l1", ...], "y_layers": ["l1", ...],
           "matrix": [[1.0, 0.8], [0.8, 1.0]]},     # matrix[i][j] = measure(x_i, y_j)
          {"x_model": "A", "y_model": "B", ...},
          ...
        ], ...
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
        "/geometry/A/l1/twonn_id": "DegenerateInputError: TwoNN: 12 points ...", ...
      }
    }

A key that is absent was not requested; a value that is ``null`` was requested but is
undefined for these data (a dead layer, duplicate points, a class with one sample, a NaN or
infinite result, a model without labels): ``missing`` maps its JSON pointer (RFC 6901:
``/``-separated keys and list indices, ``~`` written ``~0`` and ``/`` written ``~1``) to
the reason. Every float is finite. The scalar definitions are those of
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

import datetime
import json
import math
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

import subspaces
from subspaces._checks import (
    DegenerateInputError,
    InputTypeError,
    InvalidOptionError,
    ShapeError,
    SubspacesError,
    check_labels,
    check_matrix,
    check_positive_int,
    check_same_device,
)
from subspaces.geometry import covariance_spectrum, mle_id, neural_collapse, twonn
from subspaces.similarity import MEASURES, pairwise

__all__ = [
    "DEFAULT_MEASURES",
    "RESULTS_SCHEMA",
    "SCHEMA_VERSION",
    "ResultsFormatError",
    "compute_results",
    "json_pointer",
    "load_results",
    "save_results",
    "validate_results",
]

SCHEMA_VERSION = 1
"""The version of the results schema written by :func:`compute_results`."""

DEFAULT_MEASURES: tuple[str, ...] = ("linear_cka", "mean_cca", "procrustes_distance", "mutual_knn")
"""The similarity measures :func:`compute_results` computes by default."""

# Errors that the data themselves cause (a dead layer, duplicate points, too few samples
# for k, widths a measure cannot pair): recorded as a null with its reason. Any other error
# (an invalid option, a bug) propagates.
_DATA_ERRORS = (DegenerateInputError, ShapeError)

_SQRT2 = math.sqrt(2.0)
_HALF_PI = math.pi / 2
# label, kind, range at the measure's default options (docs/measures.md); None: unbounded.
_MEASURE_INFO: dict[str, tuple[str, str, tuple[float, float] | None]] = {
    "linear_cka": ("linear CKA", "similarity", (0.0, 1.0)),
    "mean_cca": ("mean CCA ρ̄", "similarity", (0.0, 1.0)),
    "cca_r2": ("R²_CCA", "similarity", (0.0, 1.0)),
    "svcca": ("SVCCA", "similarity", (0.0, 1.0)),
    "pwcca": ("PWCCA", "similarity", (0.0, 1.0)),
    "procrustes_distance": ("Procrustes distance", "distance", (0.0, _SQRT2)),
    "angular_procrustes_distance": (
        "angular Procrustes distance (rad)",
        "distance",
        (0.0, _HALF_PI),
    ),
    "shape_metric": ("shape metric (rad)", "distance", (0.0, _HALF_PI)),
    "permutation_procrustes_distance": ("permutation Procrustes distance", "distance", None),
    "mutual_knn": ("mutual kNN", "similarity", (0.0, 1.0)),
    "knn_jaccard": ("kNN Jaccard", "similarity", (0.0, 1.0)),
    "rank_similarity": ("rank similarity", "similarity", (0.0, 1.0)),
    "second_order_cosine_similarity": ("second-order cosine", "similarity", (-1.0, 1.0)),
    "cknna": ("CKNNA", "similarity", None),
    "rbf_cka": ("RBF CKA", "similarity", (0.0, 1.0)),
    "minibatch_cka": ("minibatch CKA", "similarity", None),
    "linear_regression_r2": ("linear regression R²", "similarity", (0.0, 1.0)),
    "eigenspace_overlap": ("eigenspace overlap", "similarity", (0.0, 1.0)),
    "rsa": ("RSA", "similarity", (-1.0, 1.0)),
    "relative_similarity": ("relative similarity", "similarity", (-1.0, 1.0)),
    "rsm_norm_difference": ("RSM norm difference", "distance", None),
    "magnitude_difference": ("magnitude difference", "distance", None),
    "concentricity_difference": ("concentricity difference", "distance", (0.0, 2.0)),
    "uniformity_difference": ("uniformity difference", "distance", None),
}

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
            },
        },
        "measure_info": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["label", "kind", "range"],
                "properties": {
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
    """A results dict or results.json that does not follow the results schema."""


# ---------------------------------------------------------------------------------------
# Small helpers


def json_pointer(*keys: str | int) -> str:
    """The RFC 6901 JSON pointer of a path of keys: ``json_pointer("a/b", 0) == "/a~1b/0"``."""
    return "".join("/" + str(key).replace("~", "~0").replace("/", "~1") for key in keys)


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class _Recorder:
    """Turns tensors into plain finite floats, recording why a value is null."""

    def __init__(self) -> None:
        self.missing: dict[str, str] = {}

    def null(self, pointer: str, reason: str) -> None:
        self.missing[pointer] = reason

    def number(self, value: Tensor | float | None, pointer: str, *, what: str) -> float | None:
        if value is None:
            return None
        v = float(value)
        if math.isfinite(v):
            return v
        self.null(pointer, f"{what} returned {v} (not a finite number) for these data")
        return None


class _Progress:
    """A tqdm bar, a caller's callback ``(description, done, total)``, or nothing."""

    def __init__(self, progress: bool | Callable[[str, int, int], None], total: int) -> None:
        self.callback = progress if callable(progress) else None
        self.total = total
        self.done = 0
        show = bool(progress) and self.callback is None and total > 0
        self.bar = tqdm(total=total, desc="subspaces results", disable=not show, leave=False)

    def step(self, description: str) -> None:
        self.done += 1
        self.bar.set_description_str(description, refresh=False)
        self.bar.update()
        if self.callback is not None:
            self.callback(description, self.done, self.total)

    def close(self) -> None:
        self.bar.close()


def _check_models(models: Any, device: Any) -> dict[str, dict[str, Tensor]]:
    if not isinstance(models, Mapping) or not models:
        raise InputTypeError(
            "models must be a non-empty dict mapping a model name to a dict of layers "
            f"(layer name -> (n, d) tensor), got {type(models).__name__}"
            + (" (empty)" if isinstance(models, Mapping) else "")
            + "."
        )
    out: dict[str, dict[str, Tensor]] = {}
    for model, layers in models.items():
        if not isinstance(model, str):
            raise InputTypeError(f"model names must be strings, got {model!r}.")
        if not isinstance(layers, Mapping) or not layers:
            raise InputTypeError(
                f"models[{model!r}] must be a non-empty dict mapping a layer name to an (n, d) "
                f"tensor, got {type(layers).__name__}"
                + (" (empty)" if isinstance(layers, Mapping) else "")
                + "."
            )
        out[model] = {}
        for layer, x in layers.items():
            if not isinstance(layer, str):
                raise InputTypeError(
                    f"layer names must be strings, got {layer!r} in models[{model!r}]."
                )
            # detached: the results are numbers, no gradient flows through a report
            t = check_matrix(x, name=f"models[{model!r}][{layer!r}]").detach()
            out[model][layer] = t if device is None else t.to(device)
    everything = [(f"models[{m!r}][{k!r}]", t) for m, ls in out.items() for k, t in ls.items()]
    first_name, first = everything[0]
    for name, t in everything[1:]:
        if t.shape[0] != first.shape[0]:
            raise ShapeError(
                f"every layer must hold the same samples in the same order, but {first_name} "
                f"has {first.shape[0]} rows and {name} has {t.shape[0]} (shape "
                f"{tuple(t.shape)}); extract every layer of every model from the same inputs "
                "in the same order (the measures between models pair row i with row i)."
            )
    check_same_device(*(t for _, t in everything), names=[name for name, _ in everything])
    return out


def _check_measures(measures: Any) -> dict[str, dict[str, Any]]:
    if isinstance(measures, str):
        measures = (measures,)
    if isinstance(measures, Mapping):
        items = [(name, dict(options or {})) for name, options in measures.items()]
    elif isinstance(measures, Sequence):
        items = [(name, {}) for name in measures]
    else:
        raise InputTypeError(
            "measures must be a sequence of measure names or a dict name -> options, "
            f"got {type(measures).__name__}."
        )
    out: dict[str, dict[str, Any]] = {}
    for name, options in items:
        if not isinstance(name, str) or name not in MEASURES:
            known = ", ".join(sorted(MEASURES))
            raise InvalidOptionError(f"unknown measure {name!r} in measures; known: {known}.")
        try:
            json.dumps(options, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise InvalidOptionError(
                f"the options of measure {name!r} must be plain JSON values (numbers, strings, "
                f"booleans) so that they can be recorded, got {options!r}."
            ) from error
        out[name] = options
    return out


def _measure_info(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    label, kind, bounds = _MEASURE_INFO.get(name, (name.replace("_", " "), "similarity", None))
    # A non-default option may change the range (debiased CKA, euclidean shape metric...).
    return {"label": label, "kind": kind, "range": list(bounds) if bounds and not options else None}


# ---------------------------------------------------------------------------------------
# Similarity


def _matrix(
    name: str,
    options: dict[str, Any],
    xs: dict[str, Tensor],
    ys: dict[str, Tensor] | None,
    where: list[str | int],
    rec: _Recorder,
) -> list[list[float | None]]:
    """``pairwise`` on whole lists; on a data error, pair by pair to isolate it."""
    try:
        values = pairwise(xs, ys, measure=name, progress=False, **options)
        rows: list[list[float | None]] = values.tolist()
        errors: dict[tuple[int, int], str] = {}
    except _DATA_ERRORS:
        rows, errors = _pair_by_pair(name, options, xs, ys)
    for (i, j), reason in errors.items():
        rec.null(json_pointer(*where, i, j), reason)
    what = f"measure {name!r}"
    return [
        [
            None if v is None else rec.number(v, json_pointer(*where, i, j), what=what)
            for j, v in enumerate(row)
        ]
        for i, row in enumerate(rows)
    ]


def _pair_by_pair(
    name: str, options: dict[str, Any], xs: dict[str, Tensor], ys: dict[str, Tensor] | None
) -> tuple[list[list[float | None]], dict[tuple[int, int], str]]:
    same = ys is None
    x_items = list(xs.items())
    y_items = x_items if ys is None else list(ys.items())
    symmetric = same and MEASURES[name].symmetric
    rows: list[list[float | None]] = [[None] * len(y_items) for _ in x_items]
    errors: dict[tuple[int, int], str] = {}
    for i, (xn, x) in enumerate(x_items):
        for j, (yn, y) in enumerate(y_items):
            if symmetric and j < i:
                rows[i][j] = rows[j][i]
                if (j, i) in errors:
                    errors[i, j] = (
                        f"(as entry [{j}][{i}], the measure being symmetric) " + (errors[j, i])
                    )
                continue
            try:
                if same and i == j:
                    value = pairwise({xn: x}, measure=name, progress=False, **options)
                else:
                    value = pairwise({xn: x}, {yn: y}, measure=name, progress=False, **options)
                rows[i][j] = float(value[0, 0])
            except _DATA_ERRORS as error:
                errors[i, j] = _reason(error)
    return rows, errors


# ---------------------------------------------------------------------------------------
# Geometry


def _layer_geometry(
    x: Tensor,
    labels: Tensor | str | None,
    *,
    pointer: list[str],
    intrinsic_dimension: bool,
    mle_k: int,
    top_eigenvalues: int,
    rec: _Recorder,
) -> dict[str, Any]:
    out: dict[str, Any] = {"width": int(x.shape[1])}
    try:
        spectrum = covariance_spectrum(x)
    except _DATA_ERRORS as error:
        reason = _reason(error)
        for key in (*_SPECTRUM_SCALARS, "spectrum"):
            out[key] = None
            rec.null(json_pointer(*pointer, key), reason)
    else:
        summary = spectrum.summary()
        for key in _SPECTRUM_SCALARS:
            if key in summary:
                out[key] = rec.number(summary[key], json_pointer(*pointer, key), what=key)
            else:
                out[key] = None
                rec.null(
                    json_pointer(*pointer, key),
                    f"{key} needs at least two non-zero eigenvalues; this layer has "
                    f"{int((spectrum.eigenvalues > 0).sum())}",
                )
        top = slice(0, top_eigenvalues)
        out["spectrum"] = {
            "eigenvalues": spectrum.eigenvalues[top].tolist(),
            "explained_variance_ratio": spectrum.explained_variance_ratio[top].tolist(),
            "n_eigenvalues": spectrum.n_features,
        }
    if intrinsic_dimension:
        estimators: dict[str, Callable[[], Tensor]] = {
            "twonn_id": lambda: twonn(x),
            "mle_id": lambda: mle_id(x, k=mle_k),
        }
        for key, estimate in estimators.items():
            try:
                out[key] = rec.number(estimate(), json_pointer(*pointer, key), what=key)
            except _DATA_ERRORS as error:
                out[key] = None
                rec.null(json_pointer(*pointer, key), _reason(error))
    if labels is not None:
        here = json_pointer(*pointer, "neural_collapse")
        if isinstance(labels, str):  # this model has no labels; the reason why not
            out["neural_collapse"] = None
            rec.null(here, labels)
            return out
        try:
            nc = neural_collapse(x, labels)
        except _DATA_ERRORS as error:
            out["neural_collapse"] = None
            rec.null(here, _reason(error))
        else:
            collapse: dict[str, Any] = {
                key: rec.number(getattr(nc, field), f"{here}/{key}", what=key)
                for key, field in _COLLAPSE_FIELDS.items()
            }
            collapse["between_rank"] = int(nc.between_rank)
            collapse["num_classes"] = int(nc.num_classes)
            out["neural_collapse"] = collapse
    return out


# ---------------------------------------------------------------------------------------
# Labels: each model its own


def _check_model_labels(
    labels: Any, names: Sequence[str], n: int, device: Any, on: torch.device
) -> dict[str, Tensor | None] | None:
    """Model name -> its validated labels (None: it has none); None when no model has any.

    ``labels`` is one ``(n,)`` array shared by every model, or a dict model name -> labels.
    """
    if labels is None:
        return None
    if isinstance(labels, Mapping):
        unknown = [key for key in labels if key not in names]
        if unknown:
            raise InvalidOptionError(
                f"labels names the models {unknown!r}, which are not in models "
                f"({list(names)!r}); key the labels by the names of models."
            )
        given = {name: labels.get(name) for name in names}
        where = {name: f"labels[{name!r}]" for name in names}
    else:
        given = dict.fromkeys(names, labels)
        where = dict.fromkeys(names, "labels")
    out: dict[str, Tensor | None] = {}
    for name, value in given.items():
        if value is None:
            out[name] = None
            continue
        if device is not None and isinstance(value, Tensor):
            value = value.to(device)
        out[name] = check_labels(value, n, name=where[name], device=on)
    return out if any(t is not None for t in out.values()) else None


def _label_summary(
    labels: Tensor, n: int, pointer: list[str], rec: _Recorder, what: str
) -> dict[str, Any]:
    """``{"num_classes", "class_counts"}`` of one model's labels, sized by n, never by a label.

    A label that is negative or names more classes than there are samples leaves both null
    (with the reason); neural collapse then gives its own error for that model.
    """
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= n:
        reason = (
            f"{what} holds class {low if low < 0 else high}, but class labels are indices "
            f"0..C-1 with at most n = {n} classes; relabel the classes as 0..C-1"
        )
        for key in ("num_classes", "class_counts"):
            rec.null(json_pointer(*pointer, key), reason)
        return {"num_classes": None, "class_counts": None}
    counts = torch.bincount(labels, minlength=high + 1)  # high < n: sized by the samples
    return {"num_classes": high + 1, "class_counts": [int(c) for c in counts.tolist()]}


def _labels_meta(
    labels_of: Mapping[str, Tensor | None] | None, n: int, rec: _Recorder, *, keyed: bool
) -> dict[str, Any]:
    """The meta entries on labels: per model, shared (when one labeling), warnings."""
    if labels_of is None:
        return {"warnings": []}
    per_model: dict[str, Any] = {}
    for model, t in labels_of.items():
        if t is None:
            per_model[model] = None
            rec.null(json_pointer("meta", "labels", model), f"model {model!r} has no labels")
        else:
            what = f"labels[{model!r}]" if keyed else "labels"
            per_model[model] = _label_summary(t, n, ["meta", "labels", model], rec, what)
    out: dict[str, Any] = {"labels": per_model}
    summaries = [v for v in per_model.values() if v is not None]
    tensors = [t for t in labels_of.values() if t is not None]
    if summaries[0]["num_classes"] is not None and all(
        torch.equal(t, tensors[0]) for t in tensors[1:]
    ):
        out["num_classes"] = summaries[0]["num_classes"]
        out["class_counts"] = summaries[0]["class_counts"]
    out["warnings"] = _label_warnings(labels_of, n)
    return out


def _labels_for_geometry(
    labels_of: Mapping[str, Tensor | None] | None, names: Sequence[str]
) -> dict[str, Tensor | str | None]:
    """Per model: its labels; None without labels anywhere; why not, for a model without."""
    if labels_of is None:
        return dict.fromkeys(names)
    labeled = [m for m, t in labels_of.items() if t is not None]
    return {
        model: labels_of[model]
        if labels_of[model] is not None
        else (
            f"model {model!r} has no labels (labels were given for {labeled!r}); each "
            "model is measured with its own labels only"
        )
        for model in names
    }


def _label_warnings(labels_of: Mapping[str, Tensor | None], n: int) -> list[str]:
    """One warning per labeled model whose labels differ from the first labeled model's."""
    labeled = [(name, t) for name, t in labels_of.items() if t is not None]
    if len(labeled) < 2:
        return []
    (first, reference), warnings = labeled[0], []
    for name, t in labeled[1:]:
        differ = int((t != reference).sum())
        if differ == 0:
            continue
        pairs = int(torch.unique(torch.stack([reference, t]), dim=1).shape[1])
        renamed = pairs == int(torch.unique(reference).numel()) == int(torch.unique(t).numel())
        warnings.append(
            f"the labels of {first} and {name} differ on {differ} of {n} inputs"
            + (" (the same classes under other numbers)" if renamed else "")
            + "; each model's neural collapse uses its own labels, but the similarities "
            "between models assume the same inputs in the same order: check that both "
            "were extracted from the same data"
        )
    return warnings


# ---------------------------------------------------------------------------------------
# The entry point


def compute_results(
    models: Mapping[str, Mapping[str, Any]],
    *,
    labels: Any = None,
    measures: Sequence[str] | Mapping[str, Mapping[str, Any]] = DEFAULT_MEASURES,
    geometry: bool = True,
    intrinsic_dimension: bool = True,
    progress: bool | Callable[[str, int, int], None] = True,
    device: str | torch.device | None = None,
    mle_k: int = 20,
    top_eigenvalues: int = 100,
) -> dict[str, Any]:
    """Every number of a report: layer × layer similarities and per-layer geometry.

    For every measure, a layer × layer matrix for each model with itself and for each pair
    of models (in the order given, pairs i <= j; the (B, A) matrix is the transpose of
    (A, B) for the symmetric measures), from :func:`subspaces.similarity.pairwise`. For
    every layer of every model (``geometry=True``): its covariance spectrum (top
    ``top_eigenvalues`` eigenvalues and explained-variance ratios), total variance,
    effective rank, participation ratio, stable rank, numerical rank, spectral decay and
    von Neumann entropy (:func:`subspaces.geometry.covariance_spectrum`); intrinsic dimension
    (``intrinsic_dimension=True``) by TwoNN (:func:`~subspaces.geometry.twonn`, Facco et al.
    2017) and MLE (:func:`~subspaces.geometry.mle_id`, Levina & Bickel 2005, with
    ``k = min(mle_k, n - 1)``); and with ``labels``, neural collapse
    (:func:`~subspaces.geometry.neural_collapse`, Papyan et al. 2020: NC1, trace ratio,
    CDNV, equinorm, equiangularity, distance to a simplex ETF). Definitions, ranges and
    invariances: docs/measures.md.

    Values the data leave undefined (a dead layer, duplicate points for TwoNN/MLE, a class
    with one sample, k >= n) are ``null``, and ``results["missing"]`` says why; invalid
    options raise. The schema is in this module's docstring and :data:`RESULTS_SCHEMA`.

    Args:
        models: model name -> ordered dict of layer name -> ``(n, d)`` tensor (numpy
            accepted). Every layer of every model holds the same n inputs in the same order.
        labels: ``(n,)`` integer classes shared by every model, or a dict model name ->
            that model's ``(n,)`` labels (a model left out, or None, has none), enabling
            neural collapse. Each model is measured with its own labels only: a model
            without labels gets a null ``neural_collapse`` and its reason, never another
            model's labels. Labels that differ between models are kept, and flagged in
            ``meta.warnings`` (the similarities between models assume the same inputs in
            the same order, which differing labels put in doubt).
        measures: names in :data:`subspaces.similarity.MEASURES`, or a dict name -> options
            passed to the measure (e.g. ``{"mutual_knn": {"k": 5}}``); ``()`` for none.
        geometry: compute the per-layer geometry.
        intrinsic_dimension: include the TwoNN and MLE intrinsic dimensions (the slowest
            part: exact k-nearest neighbors, O(n² d) per layer).
        progress: show a progress bar; or a callable ``(description, done, total)`` called
            after each step (for a caller's own progress display).
        device: move every representation (and the labels) there first; by default they
            stay where they are and must share one device.
        mle_k: neighbors of the MLE estimate (capped at n - 1).
        top_eigenvalues: how many leading eigenvalues of each layer to keep.

    Returns:
        A JSON-serializable dict (plain floats, ints, strings, lists; no NaN or inf).

    Raises:
        InputTypeError, ShapeError: ``models`` not a dict of dicts of (n, d) arrays, layers
            with different n, labels not (n,) integers.
        DeviceMismatchError: representations on several devices and ``device`` not given.
        InvalidOptionError: an unknown measure, or options it refuses; labels keyed by a
            name that is not a model.
    """
    layers_of = _check_models(models, device)
    chosen = _check_measures(measures)
    mle_k = check_positive_int(mle_k, name="mle_k", minimum=2)
    top_eigenvalues = check_positive_int(top_eigenvalues, name="top_eigenvalues")
    first = next(iter(next(iter(layers_of.values())).values()))
    n = int(first.shape[0])
    names = list(layers_of)
    labels_of = _check_model_labels(labels, names, n, device, first.device)
    model_pairs = [(a, b) for i, a in enumerate(names) for b in names[i:]]
    n_layers = sum(len(layers) for layers in layers_of.values())
    total = len(chosen) * len(model_pairs) + (n_layers if geometry else 0)
    rec = _Recorder()
    meta: dict[str, Any] = {
        "subspaces_version": subspaces.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "n_samples": n,
        "models": names,
        "layers": {m: list(layers) for m, layers in layers_of.items()},
        "measures": list(chosen),
        "measure_options": chosen,
        "geometry": bool(geometry),
        "intrinsic_dimension": bool(geometry and intrinsic_dimension),
        "has_labels": labels_of is not None,
        "device": str(first.device),
    }
    if geometry:
        meta["top_eigenvalues"] = top_eigenvalues
        if intrinsic_dimension:
            meta["mle_k"] = min(mle_k, n - 1)
    meta.update(_labels_meta(labels_of, n, rec, keyed=isinstance(labels, Mapping)))
    results: dict[str, Any] = {
        "version": SCHEMA_VERSION,
        "meta": meta,
        "measure_info": {name: _measure_info(name, opts) for name, opts in chosen.items()},
        "similarity": {},
    }
    bar = _Progress(progress, total)
    try:
        for name, options in chosen.items():
            records: list[dict[str, Any]] = []
            for a, b in model_pairs:
                where: list[str | int] = ["similarity", name, len(records), "matrix"]
                ys = None if a == b else layers_of[b]
                matrix = _matrix(name, options, layers_of[a], ys, where, rec)
                records.append(
                    {
                        "x_model": a,
                        "y_model": b,
                        "x_layers": list(layers_of[a]),
                        "y_layers": list(layers_of[b]),
                        "matrix": matrix,
                    }
                )
                bar.step(f"{name}: {a} × {b}")
            results["similarity"][name] = records
        if geometry:
            results["geometry"] = {}
            model_labels = _labels_for_geometry(labels_of, names)
            for model, layers in layers_of.items():
                results["geometry"][model] = {}
                for layer, x in layers.items():
                    results["geometry"][model][layer] = _layer_geometry(
                        x,
                        model_labels[model],
                        pointer=["geometry", model, layer],
                        intrinsic_dimension=intrinsic_dimension,
                        mle_k=min(mle_k, n - 1),
                        top_eigenvalues=top_eigenvalues,
                        rec=rec,
                    )
                    bar.step(f"geometry: {model} / {layer}")
    finally:
        bar.close()
    results["missing"] = rec.missing
    return results


# ---------------------------------------------------------------------------------------
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


def _check_nulls(value: Any, pointer: str, missing: Mapping[str, str]) -> None:
    if value is None:
        if pointer not in missing:
            raise _fail(pointer, "is null but 'missing' gives no reason for it")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _fail(pointer, f"holds {value}; results hold finite numbers or null")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_nulls(item, pointer + json_pointer(key), missing)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_nulls(item, pointer + json_pointer(i), missing)


def validate_results(results: Any) -> dict[str, Any]:
    """Check that ``results`` follows the results schema; return it unchanged.

    Checks the version, the required keys and their types, that model names and each
    model's layer names are distinct, that every matrix is ``len(x_layers) × len(y_layers)``
    and names the layers of its models in ``meta.layers``, that geometry covers the layers
    of ``meta``, that every float is finite and that every null has a reason in
    ``missing``. Raises :class:`ResultsFormatError` naming the JSON pointer at fault.
    """
    if not isinstance(results, dict):
        raise _fail("", f"expected a dict, got {type(results).__name__}")
    version = _need(results, "version", int, "")
    if version > SCHEMA_VERSION:
        raise ResultsFormatError(
            f"results have schema version {version}, newer than this subspaces "
            f"({subspaces.__version__}) reads ({SCHEMA_VERSION}); upgrade subspaces."
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
    info = _need(results, "measure_info", dict, "")
    similarity = _need(results, "similarity", dict, "")
    missing = _need(results, "missing", dict, "")
    for name in measures:
        _need(info, name, dict, "/measure_info")
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
    _check_nulls({k: v for k, v in results.items() if k != "missing"}, "", missing)
    return results


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
    """Write ``results`` as JSON (atomically: a temporary file, then a rename); return the path."""
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
