"""Every number of a report, computed by the families and recorded as plain JSON.

:func:`compute_results` calls :func:`subspaces.similarity.pairwise` and the functions of
:mod:`subspaces.geometry` on the layers of one or more models and returns the results
document described in :mod:`subspaces.report.schema`. Nothing here computes a measure: it
only calls the families and records their values, and a null with its reason wherever one
cell could not be computed (a constant layer, a solver that failed, any other error in that
cell alone). Options are checked before anything is computed.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

import subspaces
from subspaces._checks import (
    InputTypeError,
    InvalidOptionError,
    check_positive_int,
    check_scalar_in_range,
)
from subspaces.geometry import covariance_spectrum, mle_id, neural_collapse, twonn
from subspaces.report._cells import Recorder, failure
from subspaces.report._depth import corresponding_layers, depth_curves
from subspaces.report._inputs import (
    check_measures,
    check_model_labels,
    check_models,
    check_sources,
    constant_layers,
    dtype_of,
    labels_for_geometry,
    labels_meta,
    measure_caveats,
    measure_info,
    probe_options,
    resolved_options,
)
from subspaces.report.schema import (
    _COLLAPSE_FIELDS,
    _SPECTRUM_SCALARS,
    SCHEMA_VERSION,
    json_pointer,
)
from subspaces.similarity import MEASURES, pairwise

__all__ = ["DEFAULT_BOOTSTRAP", "DEFAULT_MEASURES", "DEFAULT_PERMUTATIONS", "compute_results"]

DEFAULT_MEASURES: tuple[str, ...] = ("linear_cka", "mean_cca", "procrustes_distance", "mutual_knn")
"""The similarity measures :func:`compute_results` computes by default, less those whose
value is meaningless for the data at hand (``MEASURES[name].caveat(n, d_x, d_y)``)."""

DEFAULT_BOOTSTRAP = 20
"""Draws of the rows behind each depth point's interval (``bootstrap``). Each draw costs
one more evaluation of every measure on every pair of corresponding layers. The standard
deviation of B draws is itself uncertain, by about 1/sqrt(2(B - 1)) of its value: ±16% at
20 draws (±24% at 10), which Student's t with B - 1 degrees of freedom accounts for (t =
2.09 at 20 draws, 2.26 at 10, 1.96 for infinitely many), so fewer draws give intervals
that are wider on average and more uneven from one depth to the next, not too narrow. On
all-MiniLM-L6-v2 over 300 inputs (2 poolings × 7 layers × 384 features), the spread of
the draws was within 30% of the spread of the measures over independent samples of the
same size (larger for CKA and Procrustes, smaller for mutual kNN's half-samples). On 2,500
inputs with the default measures, a whole report took 54 s on one CPU core, 28 s of it
for the intervals and 8 s for the null baseline."""

DEFAULT_PERMUTATIONS = 10
"""Permutations behind each depth point's null baseline (``permutations``). Its mean is
good to a fraction of the spread of the null; its quantile at the level (0.95) lies
between the two most extreme of 10 permutations, rough but rarely near the value of layers
that correspond (chance level for the MiniLM pair above: linear CKA 0.01 to 0.05 against
values of 0.5 to 0.75)."""


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


# ---------------------------------------------------------------------------------------
# Similarity


def _matrix(
    name: str,
    options: dict[str, Any],
    xs: dict[str, Tensor],
    ys: dict[str, Tensor] | None,
    dead: tuple[Mapping[str, str], Mapping[str, str]],
    where: list[str | int],
    rec: Recorder,
) -> list[list[float | None]]:
    """``pairwise`` on the layers that are not constant; on any error, pair by pair so
    that the error costs its own cells only. ``dead``: layer -> reason, of x and of y."""
    x_names = list(xs)
    y_names = x_names if ys is None else list(ys)
    live_x = {k: t for k, t in xs.items() if k not in dead[0]}
    live_y = None if ys is None else {k: t for k, t in ys.items() if k not in dead[1]}
    values: dict[tuple[str, str], float] = {}
    errors: dict[tuple[str, str], str] = {}
    if live_x and (live_y is None or live_y):
        try:
            block = rec.call(
                name, pairwise, live_x, live_y, measure=name, progress=False, **options
            )
        except Exception as error:
            failure(error)  # a fatal error stops here
            values, errors = _pair_by_pair(name, options, live_x, live_y, rec)
        else:
            cols = list(live_x if live_y is None else live_y)
            for i, a in enumerate(live_x):
                for j, b in enumerate(cols):
                    values[a, b] = float(block[i, j])
    rows: list[list[float | None]] = []
    for i, a in enumerate(x_names):
        row: list[float | None] = []
        for j, b in enumerate(y_names):
            pointer = json_pointer(*where, i, j)
            reason = dead[0].get(a) or dead[1].get(b) or errors.get((a, b))
            if reason is not None:
                rec.null(pointer, reason)
                row.append(None)
            else:
                row.append(rec.number(values[a, b], pointer, what=f"measure {name!r}"))
        rows.append(row)
    return rows


def _pair_by_pair(
    name: str,
    options: dict[str, Any],
    xs: dict[str, Tensor],
    ys: dict[str, Tensor] | None,
    rec: Recorder,
) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], str]]:
    same = ys is None
    y_items = xs if ys is None else ys
    symmetric = same and MEASURES[name].symmetric
    values: dict[tuple[str, str], float] = {}
    errors: dict[tuple[str, str], str] = {}
    x_names = list(xs)
    for i, a in enumerate(x_names):
        for j, b in enumerate(y_items):
            if symmetric and j < i:
                if (b, a) in errors:
                    errors[a, b] = errors[b, a]
                else:
                    values[a, b] = values[b, a]
                continue
            try:
                if same and a == b:
                    value = rec.call(
                        name, pairwise, {a: xs[a]}, measure=name, progress=False, **options
                    )
                else:
                    value = rec.call(
                        name,
                        pairwise,
                        {a: xs[a]},
                        {b: y_items[b]},
                        measure=name,
                        progress=False,
                        **options,
                    )
                values[a, b] = float(value[0, 0])
            except Exception as error:
                errors[a, b] = failure(error)
    return values, errors


# ---------------------------------------------------------------------------------------
# Geometry


def _layer_geometry(
    x: Tensor,
    labels: Tensor | str | None,
    *,
    pointer: list[str],
    constant: str | None,
    intrinsic_dimension: bool,
    mle_k: int,
    top_eigenvalues: int,
    rec: Recorder,
) -> dict[str, Any]:
    out: dict[str, Any] = {"width": int(x.shape[1])}
    keys = [*_SPECTRUM_SCALARS, "spectrum"]
    if intrinsic_dimension:
        keys += ["twonn_id", "mle_id"]
    if labels is not None:
        keys.append("neural_collapse")
    if constant is not None:  # every input the same vector: no variance, nothing else
        for key in keys:
            out[key] = 0.0 if key == "total_variance" else None
            if out[key] is None:
                rec.null(json_pointer(*pointer, key), constant)
        return out
    try:
        spectrum = rec.call(None, covariance_spectrum, x)
        summary = spectrum.summary()
    except Exception as error:
        reason = failure(error)
        for key in (*_SPECTRUM_SCALARS, "spectrum"):
            out[key] = None
            rec.null(json_pointer(*pointer, key), reason)
    else:
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
                value = rec.call(None, estimate)
            except Exception as error:
                out[key] = None
                rec.null(json_pointer(*pointer, key), failure(error))
            else:
                out[key] = rec.number(value, json_pointer(*pointer, key), what=key)
    if labels is not None:
        here = json_pointer(*pointer, "neural_collapse")
        if isinstance(labels, str):  # this model has no labels; the reason why not
            out["neural_collapse"] = None
            rec.null(here, labels)
            return out
        try:
            nc = rec.call(None, neural_collapse, x, labels)
        except Exception as error:
            out["neural_collapse"] = None
            rec.null(here, failure(error))
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
# The entry point


def compute_results(
    models: Mapping[str, Mapping[str, Any]],
    *,
    labels: Any = None,
    measures: Sequence[str] | Mapping[str, Mapping[str, Any]] | None = None,
    geometry: bool = True,
    intrinsic_dimension: bool = True,
    self_comparisons: bool = True,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    permutations: int = DEFAULT_PERMUTATIONS,
    level: float = 0.95,
    seed: int = 0,
    sources: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool | Callable[[str, int, int], None] = True,
    device: str | torch.device | None = None,
    mle_k: int = 20,
    top_eigenvalues: int = 100,
) -> dict[str, Any]:
    """Every number of a report: layer × layer similarities, depth curves, per-layer geometry.

    **Similarity.** For every measure, a layer × layer matrix for each model with itself and
    for each pair of models (in the order given, pairs i <= j; the (B, A) matrix is the
    transpose of (A, B) for the symmetric measures), from
    :func:`subspaces.similarity.pairwise`. ``self_comparisons=False`` leaves out each model
    with itself (pairs i < j only: with M models, M(M - 1)/2 matrices instead of
    M(M + 1)/2; for two models a third of the work), as ``subspaces compare A B`` does.

    **Depth** (two models or more). For each measure and each pair of distinct models, the
    similarity of corresponding layers against relative depth: equal layer counts pair by
    index (depth ``i / (L - 1)``); otherwise each layer of the model with fewer layers is
    paired with the layer of the other at the nearest relative depth. Each point carries
    its value (the matrix entry), a bootstrap interval at ``level`` and a null baseline.
    The interval is ``value ± t · sd``, sd the standard deviation of the measure over
    ``bootstrap`` seeded draws of the rows and t Student's quantile with
    ``bootstrap - 1`` degrees of freedom, clipped to the measure's range: moment measures
    (CKA, CCA, Procrustes...) draw n rows with replacement; the others (neighbors, RDMs,
    kernels), for which a duplicated row would be its own nearest neighbor, draw n // 2
    rows without replacement (whose spread matches that of n rows to first order). Not the
    percentile interval of the draws: these measures are biased in n, and draws of ~63%
    distinct rows read more alike, so percentiles sit beside the value. The null baseline
    is ``[mean, q]`` of the measure over ``permutations`` seeded permutations of the rows
    of y (inputs unpaired, each side's structure kept), q the quantile at ``level`` on the
    side of "alike" (upper for a similarity, lower for a distance): a value beyond q is
    rarely reached by chance. Every measure and pair sees the same draws (``seed`` for the
    rows, ``seed + 1`` for the permutations): the results are deterministic. Cost: every
    measure is evaluated ``bootstrap + permutations`` more times per corresponding pair
    (statistics shared within a draw). Pass ``bootstrap=0, permutations=0`` for the
    values alone (no more compute than the matrices).

    **Geometry** (``geometry=True``), for every layer of every model: its covariance
    spectrum (top ``top_eigenvalues`` eigenvalues and explained-variance ratios), total
    variance, effective rank, participation ratio, stable rank, numerical rank, spectral
    decay and von Neumann entropy (:func:`subspaces.geometry.covariance_spectrum`);
    intrinsic dimension (``intrinsic_dimension=True``) by TwoNN
    (:func:`~subspaces.geometry.twonn`, Facco et al. 2017) and MLE
    (:func:`~subspaces.geometry.mle_id`, Levina & Bickel 2005, with
    ``k = min(mle_k, n - 1)``); and with ``labels``, neural collapse
    (:func:`~subspaces.geometry.neural_collapse`, Papyan et al. 2020: NC1, trace ratio,
    CDNV, equinorm, equiangularity, distance to a simplex ETF). Definitions, ranges and
    invariances: docs/measures.md.

    **What cannot be computed costs its cell only.** A value that the data leave undefined
    or whose computation raised any error (a solver that did not converge, too few samples
    for k, a bug) is ``null`` and ``results["missing"]`` maps its JSON pointer to the
    reason, ``"<ErrorType>: <message>"``; only running out of memory (and Ctrl-C) stops the
    report. Reasons are per cause, so that a reader groups by them: a constant layer
    (every input the same vector, found once before any compute) gives every cell that
    involves it the one reason ``"layer 'L' of model 'M' is constant: every input gives
    the same vector"``. Invalid options are refused before anything is computed: every named
    measure (and every measure given options) is tried on small random data first.

    **Measures that mislead for these data.** With ``measures=None`` the report computes
    :data:`DEFAULT_MEASURES` less every measure whose value is meaningless for n samples
    of these widths (``MEASURES[name].caveat(n, d_x, d_y)``, e.g. mean CCA is 1 whatever
    the data when n - 1 <= d), listed with the reason in ``meta.omitted_measures``. Named
    measures are computed as given, and ``measure_info[name].caveats`` says why their
    values may mislead (the caveat, and every warning the measure raised while computing,
    which never reaches the console).

    **What shaped the numbers** is in ``meta.options``: n, each model's dtype, every
    measure's options with its defaults filled in, ``mle_k``, ``top_eigenvalues``, the
    device, whether each model was compared with itself, the bootstrap (resamples, level,
    seed, how the interval is made, which measures are half-sampled) and the null
    (permutations, level, seed);
    ``meta.sources`` holds what the caller said about where each model's layers came from.
    The schema is in :mod:`subspaces.report.schema` and :data:`RESULTS_SCHEMA`.

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
        measures: ``None`` (the defaults, less the meaningless ones), names in
            :data:`subspaces.similarity.MEASURES`, or a dict name -> options passed to the
            measure (e.g. ``{"mutual_knn": {"k": 5}}``); ``()`` for none.
        geometry: compute the per-layer geometry.
        self_comparisons: compute each model's layers against its own (the matrices
            (A, A)); False for the comparisons between models only. Recorded as
            ``meta.options.self_comparisons``. With one model there is nothing else to
            compare, and False is refused.
        intrinsic_dimension: include the TwoNN and MLE intrinsic dimensions (the slowest
            part of the geometry: exact k-nearest neighbors, O(n² d) per layer).
        bootstrap: draws of the rows behind each depth point's interval: 0 for none (``ci``
            is null) or at least 2; default :data:`DEFAULT_BOOTSTRAP`.
        permutations: permutations behind each depth point's null baseline; 0 for none
            (``null`` is null). Default :data:`DEFAULT_PERMUTATIONS`.
        level: the confidence level of the intervals and the quantile of the null, in (0, 1).
        seed: seeds the draws and permutations (an int, recorded), and every measure that
            draws at random and was given no seed of its own (relative_similarity's
            anchors), so that the results are the same from run to run.
        sources: model name -> where its layers came from (e.g. the store's path, model,
            pooling, data file), recorded as ``meta.sources``; JSON values (paths become
            strings).
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
            with different n (naming both layers and their models), labels not (n,)
            integers.
        DeviceMismatchError: representations on several devices and ``device`` not given.
        InvalidOptionError: an unknown measure, or options it refuses; labels or sources
            keyed by a name that is not a model; ``bootstrap`` negative or 1,
            ``permutations`` negative, a ``level`` outside (0, 1); ``self_comparisons=False``
            with one model.

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

        Two models: the depth curve of corresponding layers, its interval and chance level.

        >>> noise = torch.randn(50, 6, generator=g)
        >>> b = {"h1": 2 * x + 0.5 * noise, "h2": torch.randn(50, 3, generator=g)}  # unrelated
        >>> results = compute_results(
        ...     {"A": models["A"], "B": b}, measures=["linear_cka"], geometry=False,
        ...     bootstrap=20, permutations=20, progress=False,
        ... )
        >>> (curve,) = results["depth"]["linear_cka"]
        >>> curve["x_layers"], curve["y_layers"], curve["depth"]
        (['l1', 'l2'], ['h1', 'h2'], [0.0, 1.0])
        >>> [round(v, 2) for v in curve["value"]]  # alike, then unrelated
        [0.94, 0.04]
        >>> [[round(v, 2) for v in ci] for ci in curve["ci"]]  # 95% intervals
        [[0.93, 0.96], [0.0, 0.11]]
        >>> [[round(v, 2) for v in null] for null in curve["null"]]  # chance: [mean, 95%]
        [[0.09, 0.13], [0.06, 0.11]]
    """
    layers_of = check_models(models, device)
    first = next(iter(next(iter(layers_of.values())).values()))
    n = int(first.shape[0])
    names = list(layers_of)
    widths = [int(t.shape[1]) for layers in layers_of.values() for t in layers.values()]
    omitted: dict[str, str] = {}
    if measures is None:
        chosen: dict[str, dict[str, Any]] = {}
        for name in DEFAULT_MEASURES:
            why = measure_caveats(name, n, widths)
            if why:
                omitted[name] = why[0]
            else:
                chosen[name] = {}
    else:
        chosen = check_measures(measures)
    mle_k = check_positive_int(mle_k, name="mle_k", minimum=2)
    top_eigenvalues = check_positive_int(top_eigenvalues, name="top_eigenvalues")
    bootstrap = check_positive_int(bootstrap, name="bootstrap", minimum=0)
    if bootstrap == 1:
        raise InvalidOptionError(
            "bootstrap must be 0 (no intervals) or at least 2 (an interval needs the spread "
            "of several draws), got 1."
        )
    permutations = check_positive_int(permutations, name="permutations", minimum=0)
    level = check_scalar_in_range(
        level, name="level", low=0.0, high=1.0, low_open=True, high_open=True
    )
    seed = check_positive_int(seed, name="seed", minimum=0, maximum=2**63 - 2)
    if not isinstance(self_comparisons, bool):
        raise InputTypeError(
            f"self_comparisons must be True or False, got {type(self_comparisons).__name__}."
        )
    if not self_comparisons and len(names) < 2:
        raise InvalidOptionError(
            f"self_comparisons=False leaves nothing to compute for one model ({names[0]!r}): "
            "the only matrices it has are its layers against its own; pass "
            "self_comparisons=True, or give two models or more."
        )
    recorded_sources = check_sources(sources, names)
    labels_of = check_model_labels(labels, names, n, device, first.device)
    for name, options in chosen.items():
        # a named measure is tried even without options: one that needs some (the anchors
        # of relative_similarity) is refused here, not in every one of its cells
        if options or measures is not None:
            probe_options(name, options, n)
    resolved = {name: resolved_options(name, options) for name, options in chosen.items()}
    for name, options in chosen.items():
        # a measure that draws at random (relative_similarity's anchors) with no seed of
        # its own would differ from run to run: it gets the report's seed, recorded
        if resolved[name].get("seed", 0) is None and "seed" not in options:
            options["seed"] = resolved[name]["seed"] = seed

    rec = Recorder()
    for name in chosen:
        for text in measure_caveats(name, n, widths, chosen[name]):
            rec.caveat(name, text)
    dead = constant_layers(layers_of)
    dead_of = {m: {k: r for (mm, k), r in dead.items() if mm == m} for m in names}
    model_pairs = [
        (a, b) for i, a in enumerate(names) for b in names[i if self_comparisons else i + 1 :]
    ]
    distinct = [(a, b) for a, b in model_pairs if a != b]
    depth_pairs = sum(
        len(corresponding_layers(len(layers_of[a]), len(layers_of[b]))) for a, b in distinct
    )
    n_layers = sum(len(layers) for layers in layers_of.values())
    depth_steps = depth_pairs * ((bootstrap > 0) + (permutations > 0)) if chosen else 0
    total = len(chosen) * len(model_pairs) + (n_layers if geometry else 0) + depth_steps
    with_depth = len(names) >= 2
    options_meta: dict[str, Any] = {
        "n_samples": n,
        "dtype": {m: dtype_of(layers) for m, layers in layers_of.items()},
        "measure_options": resolved,
        "device": str(first.device),
        "self_comparisons": self_comparisons,
        "bootstrap": {
            "resamples": bootstrap,
            "level": level,
            "seed": seed,
            "interval": "value ± t · standard deviation of the draws",
            "half_sample": [name for name in chosen if MEASURES[name].from_moments is None],
        }
        if with_depth and bootstrap and chosen
        else None,
        "null": {"permutations": permutations, "level": level, "seed": seed + 1}
        if with_depth and permutations and chosen
        else None,
    }
    meta: dict[str, Any] = {
        "subspaces_version": subspaces.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "n_samples": n,
        "models": names,
        "layers": {m: list(layers) for m, layers in layers_of.items()},
        "measures": list(chosen),
        "measure_options": resolved,
        "omitted_measures": omitted,
        "options": options_meta,
        "sources": recorded_sources,
        "geometry": bool(geometry),
        "intrinsic_dimension": bool(geometry and intrinsic_dimension),
        "has_labels": labels_of is not None,
        "device": str(first.device),
    }
    if geometry:
        meta["top_eigenvalues"] = options_meta["top_eigenvalues"] = top_eigenvalues
        if intrinsic_dimension:
            meta["mle_k"] = options_meta["mle_k"] = min(mle_k, n - 1)
    meta.update(labels_meta(labels_of, n, rec, keyed=isinstance(labels, Mapping)))
    results: dict[str, Any] = {"version": SCHEMA_VERSION, "meta": meta, "measure_info": {}}
    results["similarity"] = {}
    bar = _Progress(progress, total)
    try:
        for name, options in chosen.items():
            records: list[dict[str, Any]] = []
            for a, b in model_pairs:
                where: list[str | int] = ["similarity", name, len(records), "matrix"]
                ys = None if a == b else layers_of[b]
                pair_dead = (dead_of[a], dead_of[b])
                matrix = _matrix(name, options, layers_of[a], ys, pair_dead, where, rec)
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
        ranges = {name: measure_info(name, chosen[name], [])["range"] for name in chosen}
        if with_depth:
            results["depth"] = depth_curves(
                layers_of,
                chosen,
                results["similarity"],
                model_pairs,
                rec,
                bootstrap=bootstrap,
                permutations=permutations,
                level=level,
                seed=seed,
                ranges=ranges,
                step=bar.step,
            )
        if geometry:
            results["geometry"] = {}
            model_labels = labels_for_geometry(labels_of, names)
            for model, layers in layers_of.items():
                results["geometry"][model] = {}
                for layer, x in layers.items():
                    results["geometry"][model][layer] = _layer_geometry(
                        x,
                        model_labels[model],
                        pointer=["geometry", model, layer],
                        constant=dead.get((model, layer)),
                        intrinsic_dimension=intrinsic_dimension,
                        mle_k=min(mle_k, n - 1),
                        top_eigenvalues=top_eigenvalues,
                        rec=rec,
                    )
                    bar.step(f"geometry: {model} / {layer}")
    finally:
        bar.close()
    results["measure_info"] = {
        name: measure_info(name, chosen[name], rec.caveats.get(name, [])) for name in chosen
    }
    meta["warnings"] = [*meta["warnings"], *rec.warnings]
    results["missing"] = rec.missing
    return results
