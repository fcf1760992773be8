"""The inputs of :func:`~subspaces.report.compute_results`, all checked before any compute.

Models (every layer of every model holds the same inputs: a mismatch names both layers and
their models), measures (a name not known gets a "did you mean"; options given by the user
are tried on small random data first, so that an option the measure refuses stops the
report before its compute, not after), the defaults each measure fills in (recorded with
the results), the caller's sources, constant layers (found once, one reason each) and
labels (each model its own).
"""

from __future__ import annotations

import inspect
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

import subspaces.similarity
from subspaces._checks import (
    InputTypeError,
    InvalidOptionError,
    ShapeError,
    check_labels,
    check_matrix,
    check_same_device,
)
from subspaces.report._cells import Recorder, failure
from subspaces.report.schema import json_pointer
from subspaces.similarity import MEASURES, closest_measures, pairwise

# Options of a measure that shape no value (how much is computed at once), left out of the
# recorded options.
_NOT_SHAPING = frozenset({"chunk_size", "progress", "input_dtype"})

# Rows of the random data on which user-given measure options are tried before any compute,
# first few, then (when refused) up to as many as the data, within a cheap limit.
_PROBE_ROWS = 64
_PROBE_LIMIT = 4096


def check_models(models: Any, device: Any) -> dict[str, dict[str, Tensor]]:
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
    everything = [(m, k, t) for m, ls in out.items() for k, t in ls.items()]
    first_model, first_layer, first = everything[0]
    for model, layer, t in everything[1:]:
        if t.shape[0] != first.shape[0]:
            raise ShapeError(
                f"every layer must hold the same samples in the same order, but layer "
                f"{first_layer!r} of model {first_model!r} has {first.shape[0]} rows and layer "
                f"{layer!r} of model {model!r} has {t.shape[0]} (shape {tuple(t.shape)}); "
                "extract every layer of every model from the same inputs in the same order "
                "(the measures between models pair row i with row i)."
            )
    check_same_device(
        *(t for _, _, t in everything), names=[f"models[{m!r}][{k!r}]" for m, k, _ in everything]
    )
    return out


def _unknown_measure(name: Any) -> InvalidOptionError:
    known = sorted(MEASURES)
    close = closest_measures(name) if isinstance(name, str) else []
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return InvalidOptionError(
        f"unknown measure {name!r} in measures;{hint} known: {', '.join(known)}."
    )


def check_measures(measures: Any) -> dict[str, dict[str, Any]]:
    if isinstance(measures, str):
        measures = (measures,)
    if isinstance(measures, Mapping):
        items = [(name, dict(options or {})) for name, options in measures.items()]
    elif isinstance(measures, Sequence):
        items = [(name, {}) for name in measures]
    else:
        raise InputTypeError(
            "measures must be None (the defaults), a sequence of measure names or a dict "
            f"name -> options, got {type(measures).__name__}."
        )
    out: dict[str, dict[str, Any]] = {}
    for name, options in items:
        if not isinstance(name, str) or name not in MEASURES:
            raise _unknown_measure(name)
        try:
            json.dumps(options, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise InvalidOptionError(
                f"the options of measure {name!r} must be plain JSON values (numbers, strings, "
                f"booleans) so that they can be recorded, got {options!r}."
            ) from error
        out[name] = options
    return out


def measure_caveats(
    name: str, n: int, widths: Sequence[int], options: Mapping[str, Any] | None = None
) -> list[str]:
    """Why the values of ``name`` with these ``options`` may mislead for n samples of these
    widths (distinct texts, the widest pairs first); [] when nothing is known against it.
    The options count: ``linear_regression_r2`` with a ridge, or ``shape_metric`` with
    ``alpha > 0``, is not decided by the sample count."""
    caveat = MEASURES[name].caveat
    out: list[str] = []
    ordered = sorted(set(widths), reverse=True)
    for d_x in ordered:
        for d_y in ordered:
            text = caveat(n, d_x, d_y, **dict(options or {}))
            if text and text not in out:
                out.append(text)
    return out


def probe_options(name: str, options: Mapping[str, Any], n: int) -> None:
    """Refuse options the measure refuses, before any compute: the measure is tried on
    small random data of ``_PROBE_ROWS`` rows, and when that refuses, again on
    ``min(n, _PROBE_LIMIT)`` rows (an option such as ``k`` is valid only against the number
    of samples); an error that persists there is raised. Errors of the random data
    themselves are not the options' fault and are ignored."""
    g = torch.Generator().manual_seed(0)
    sizes = sorted({min(n, _PROBE_ROWS), min(n, _PROBE_LIMIT)})
    for i, m in enumerate(sizes):
        x, y = torch.randn(m, 5, generator=g), torch.randn(m, 4, generator=g)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pairwise([x], [y], measure=name, progress=False, **options)
        except (InvalidOptionError, TypeError):
            if i == len(sizes) - 1:
                raise
        except Exception as error:  # the random data, not the options: not refused
            failure(error)  # but a fatal error is raised
            return
        else:
            return


def _plain(value: Any) -> Any:
    """A default value as JSON: numbers, strings, booleans, None and lists as they are."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return str(value).removeprefix("torch.")


def resolved_options(name: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """Every option that shapes the values of ``name``: the given ones, then the defaults
    of the others (from the signature of ``subspaces.similarity.<name>``, else of the
    measure's core), restricted to the options :func:`pairwise` passes on."""
    spec = MEASURES[name]
    accepted = spec.accepted_options()
    public = getattr(subspaces.similarity, name, None)
    if inspect.ismodule(public):
        public = getattr(public, name, None)
    defaults: dict[str, Any] = {}
    for function in (public, spec.function, spec.from_moments):
        if not callable(function):
            continue
        try:
            parameters = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):
            continue
        for p in parameters:
            if (
                p.kind is p.KEYWORD_ONLY
                and p.default is not p.empty
                and p.name not in _NOT_SHAPING
                and (accepted is None or p.name in accepted)
            ):
                defaults.setdefault(p.name, _plain(p.default))
    return {**defaults, **{k: v for k, v in given.items() if k not in _NOT_SHAPING}}


def measure_info(name: str, given: Mapping[str, Any], caveats: list[str]) -> dict[str, Any]:
    """How to read a measure: its label, kind and range, from its registry entry
    (:class:`subspaces.similarity.PairwiseMeasure`), and its caveats for these data; the
    range only where both ends are known and no given option differs from its default (a
    non-default option may change it: debiased CKA, the euclidean shape metric...)."""
    measure = MEASURES[name]
    low, high = measure.bounds
    defaults = resolved_options(name, {})
    changed = any(
        k != "seed" and (k not in defaults or defaults[k] != v)  # a seed moves no bound
        for k, v in given.items()
    )
    known = low is not None and high is not None and not changed
    return {
        "label": measure.label,
        "kind": measure.kind,
        "range": [low, high] if known else None,
        "caveats": caveats,
    }


def check_sources(sources: Any, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    if sources is None:
        return {}
    if not isinstance(sources, Mapping):
        raise InputTypeError(
            f"sources must be a dict model name -> dict, got {type(sources).__name__}."
        )
    unknown = [key for key in sources if key not in names]
    if unknown:
        raise InvalidOptionError(
            f"sources names the models {unknown!r}, which are not in models ({list(names)!r}); "
            "key the sources by the names of models."
        )

    def plain(value: Any) -> Any:
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        raise TypeError

    out: dict[str, dict[str, Any]] = {}
    for model, source in sources.items():
        if not isinstance(source, Mapping):
            raise InputTypeError(
                f"sources[{model!r}] must be a dict (e.g. {{'path': ..., 'pooling': ...}}), "
                f"got {type(source).__name__}."
            )
        try:
            out[model] = json.loads(json.dumps(dict(source), default=plain, allow_nan=False))
        except (TypeError, ValueError) as error:
            raise InvalidOptionError(
                f"sources[{model!r}] must hold plain JSON values (strings, numbers, paths), "
                f"got {dict(source)!r}."
            ) from error
    return out


def dtype_of(layers: Mapping[str, Tensor]) -> str:
    kinds = sorted({str(t.dtype).removeprefix("torch.") for t in layers.values()})
    return ", ".join(kinds)


def constant_layers(layers_of: Mapping[str, Mapping[str, Tensor]]) -> dict[tuple[str, str], str]:
    """``(model, layer) -> reason`` for every layer whose rows are all the same vector."""
    out: dict[tuple[str, str], str] = {}
    for model, layers in layers_of.items():
        for layer, x in layers.items():
            if bool((x == x[:1]).all()):
                out[model, layer] = (
                    f"layer {layer!r} of model {model!r} is constant: every input gives the "
                    "same vector"
                )
    return out


# ---------------------------------------------------------------------------------------
# Labels: each model its own


def check_model_labels(
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
    labels: Tensor, n: int, pointer: list[str], rec: Recorder, what: str
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


def labels_meta(
    labels_of: Mapping[str, Tensor | None] | None, n: int, rec: Recorder, *, keyed: bool
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


def labels_for_geometry(
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
