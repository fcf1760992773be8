"""Every number of a report, computed by the families and recorded as plain JSON.

:func:`compute_results` calls :func:`subspaces.similarity.pairwise` and the functions of
:mod:`subspaces.geometry` on the layers of one or more models and returns the results
document described in :mod:`subspaces.report.schema`. Nothing here computes a measure: it
only calls the families and records their values (a null with its reason where the data
leave one undefined).
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Callable, Mapping, Sequence
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
    check_labels,
    check_matrix,
    check_positive_int,
    check_same_device,
)
from subspaces.geometry import covariance_spectrum, mle_id, neural_collapse, twonn
from subspaces.report.schema import (
    _COLLAPSE_FIELDS,
    _SPECTRUM_SCALARS,
    SCHEMA_VERSION,
    json_pointer,
)
from subspaces.similarity import MEASURES, pairwise

__all__ = ["DEFAULT_MEASURES", "compute_results"]

DEFAULT_MEASURES: tuple[str, ...] = ("linear_cka", "mean_cca", "procrustes_distance", "mutual_knn")
"""The similarity measures :func:`compute_results` computes by default."""

# Errors that the data themselves cause (a dead layer, duplicate points, too few samples
# for k, widths a measure cannot pair): recorded as a null with its reason. Any other error
# (an invalid option, a bug) propagates.
_DATA_ERRORS = (DegenerateInputError, ShapeError)


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
    """How to read a measure: its label, kind and range, from its registry entry
    (:class:`subspaces.similarity.PairwiseMeasure`); the range only where both ends are
    known and the options are the defaults (a non-default option may change it: debiased
    CKA, the euclidean shape metric...)."""
    measure = MEASURES[name]
    low, high = measure.bounds
    known = low is not None and high is not None and not options
    return {"label": measure.label, "kind": measure.kind, "range": [low, high] if known else None}


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

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 6, generator=g)
        >>> models = {"A": {"l1": x, "l2": torch.tanh(x @ torch.randn(6, 4, generator=g))}}
        >>> from subspaces.report import compute_results
        >>> results = compute_results(models, measures=["linear_cka"], progress=False)
        >>> record = results["similarity"]["linear_cka"][0]  # model A with itself
        >>> [[round(v, 3) for v in row] for row in record["matrix"]]
        [[1.0, 0.624], [0.624, 1.0]]
        >>> round(results["geometry"]["A"]["l2"]["effective_rank"], 3)
        3.706
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
