"""The HTML report: one self-contained file drawn from a results dict.

:func:`write_report` draws every figure as inline SVG (:mod:`subspaces.report._figures`):
heatmaps and line charts by hand (:mod:`subspaces.report._svg`: every cell and curve point
a mark with a ``<title>``, the value or the reason it is undefined, which the browser shows
on hover), covariance spectra with matplotlib (text kept as escaped SVG text). It fills
the jinja2 template (autoescaped) and writes ``report.html`` with ``results.json`` beside
it. The page makes no request of any kind: no script, no external font, style sheet or
image, and a Content-Security-Policy that forbids them (``default-src 'none'``), so it
opens offline and a layer named ``<script>...`` is shown as text. It only draws numbers
computed by :func:`subspaces.report.compute_results`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from subspaces.report._figures import (
    _COLLAPSE_PANELS,
    _DIMENSION_PANELS,
    _ID_PANELS,
    _by_layer,
    _depth_charts,
    _Figures,
    _fmt,
    _heatmap,
    _range_text,
    _short_names,
    _spectra,
    _style,
    _value,
    _widest,
)
from subspaces.report.schema import (
    _atomic_write_text,
    json_pointer,
    save_results,
    validate_results,
)

__all__ = ["render_report", "write_report"]

# ---------------------------------------------------------------------------------------
# The page


def _option_text(options: Mapping[str, Any] | None) -> str:
    """Options as ``k=10, debiased=false`` (JSON spelling of values, keys in given order)."""
    if not options:
        return ""
    parts = []
    for key, value in options.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif value is None:
            text = "none"
        elif isinstance(value, (list, tuple)):
            text = "(" + ", ".join(str(v) for v in value) + ")"
        elif isinstance(value, Mapping):
            text = "{" + _option_text(value) + "}"
        else:
            text = str(value)
        parts.append(f"{key}={text}")
    return ", ".join(parts)


def _settings(meta: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(name, value) rows of every option that shaped a number, for the page's header."""
    options = meta.get("options") or {}
    rows: list[tuple[str, str]] = []
    n = options.get("n_samples", meta.get("n_samples"))
    rows.append(("samples n", f"{n} inputs, the same for every layer"))
    dtypes = options.get("dtype") or {}
    if dtypes:
        kinds = set(dtypes.values())
        rows.append(
            (
                "dtype",
                f"{kinds.pop()} (every model)"
                if len(kinds) == 1 and len(dtypes) > 1
                else "; ".join(f"{m}: {d}" for m, d in dtypes.items()),
            )
        )
    # intervals and a null exist only on depth curves: two models or more, some measure
    # (otherwise both options are null whatever was asked, and saying "0" would be wrong)
    curves = len(meta.get("models") or []) > 1 and bool(meta.get("measures"))
    if curves and "bootstrap" in options:
        boot = options["bootstrap"]
        text = "none (bootstrap = 0)"
        if boot:
            text = (
                f"{boot.get('resamples')} resamples of the rows, "
                f"{float(boot.get('level', 0.95)):.0%} interval"
                + (f" ({boot['interval']})" if boot.get("interval") else "")
                + f", seed {boot.get('seed')}"
            )
            if boot.get("half_sample"):
                text += "; drawn as half samples without replacement for " + ", ".join(
                    boot["half_sample"]
                )
        rows.append(("bootstrap intervals", text))
    if curves and "null" in options:
        null = options["null"]
        text = "none (permutations = 0)"
        if null:
            level = float(null.get("level", 0.95))
            text = (
                f"{null.get('permutations')} permutations of the rows of the second model, "
                f"seed {null.get('seed')}; from the mean to the {level:.0%} quantile (the "
                f"{1 - level:.0%} quantile for a distance)"
            )
        rows.append(("null baseline", text))
    if options.get("self_comparisons") is False:
        rows.append(("each model with itself", "not computed (self_comparisons = false)"))
    geometry = []
    mle_k = options.get("mle_k", meta.get("mle_k"))
    if meta.get("geometry"):
        top = options.get("top_eigenvalues", meta.get("top_eigenvalues"))
        if top is not None:
            geometry.append(f"top {top} eigenvalues kept per layer")
        if meta.get("intrinsic_dimension") and mle_k is not None:
            geometry.append(f"MLE intrinsic dimension with k = {mle_k}")
        rows.append(("geometry", "; ".join(geometry) if geometry else "computed"))
    device = options.get("device", meta.get("device"))
    if device:
        rows.append(("device", str(device)))
    return rows


def _sources(meta: Mapping[str, Any]) -> dict[str, Any] | None:
    """A table of where each model's layers came from: one row per model."""
    sources = meta.get("sources") or {}
    if not sources:
        return None
    preferred = ["path", "model", "pooling", "data", "dtype"]
    keys = [k for k in preferred if any(k in (s or {}) for s in sources.values())]
    keys += sorted({k for s in sources.values() for k in (s or {})} - set(keys))
    rows = []
    for model in meta["models"]:
        source = sources.get(model) or {}
        cells = ["—" if source.get(k) is None else _option_text({"": source[k]})[1:] for k in keys]
        rows.append({"model": model, "layers": len(meta["layers"][model]), "cells": cells})
    return {"columns": keys, "rows": rows}


def _pointer_keys(pointer: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]


def _missing_groups(results: Mapping[str, Any], anchors: set[str]) -> list[dict[str, Any]]:
    """Undefined values grouped by cause: one entry per distinct reason string.

    Each entry gives the reason, how many values it leaves undefined and in which sections
    (a depth point counts once, its interval and null baseline with it), each linked to its
    section when the page has it.
    """
    info = results["measure_info"]
    groups: dict[str, dict[tuple[str, str | None], set[tuple[str, ...]]]] = {}
    section: tuple[str, str | None]
    for pointer, reason in results["missing"].items():
        keys = _pointer_keys(pointer)
        head = keys[0] if keys else ""
        if head == "similarity" and len(keys) > 1:
            label = info.get(keys[1], {}).get("label", keys[1])
            section = (f"{label} heatmaps", f"measure-{keys[1]}")
            cell = tuple(keys)
        elif head == "depth" and len(keys) > 1:
            section = ("similarity against depth", "depth")
            cell = (*keys[:3], keys[-1])  # /depth/m/r/{value,ci,null}/i: one point
        elif head == "geometry":
            section = ("per-layer geometry", "summary")
            cell = tuple(keys)
        else:
            section = (head or "results", None)
            cell = tuple(keys)
        groups.setdefault(reason, {}).setdefault(section, set()).add(cell)
    out: list[dict[str, Any]] = []
    for reason, sections in groups.items():
        total = sum(len(cells) for cells in sections.values())
        out.append(
            {
                "reason": reason,
                "count": total,
                "sections": [
                    {
                        "text": text,
                        "count": len(cells),
                        "anchor": anchor if anchor in anchors else None,
                    }
                    for (text, anchor), cells in sections.items()
                ],
            }
        )
    out.sort(key=lambda g: (-g["count"], g["reason"]))
    return out


def _summary(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One table per model: rows of (text, reason-or-None) cells."""
    geometry = results.get("geometry") or {}
    missing = results.get("missing", {})
    meta = results["meta"]
    columns: list[tuple[str, str, str]] = [  # (heading, key, unit/tooltip)
        ("width d", "width", "number of features"),
        ("total variance", "total_variance", "tr Σ, activation units²"),
        ("effective rank", "effective_rank", "dimensions (Roy & Vetterli 2007)"),
        ("participation ratio", "participation_ratio", "dimensions, (Σλ)²/Σλ²"),
        ("stable rank", "stable_rank", "dimensions, Σλ/λ₁"),
    ]
    if meta.get("intrinsic_dimension"):
        columns += [
            ("TwoNN ID", "twonn_id", "intrinsic dimension, Facco et al. 2017"),
            (
                "MLE ID",
                "mle_id",
                f"intrinsic dimension, Levina & Bickel 2005, k={meta.get('mle_k')}",
            ),
        ]
    if meta.get("has_labels"):
        columns += [
            ("NC1", "neural_collapse.nc1", "Tr(Σ_W Σ_B⁺)/C, 0 = collapsed"),
            ("CDNV", "neural_collapse.cdnv", "class-distance normalized variance"),
        ]
    tables = []
    for model in meta["models"]:
        layers = geometry.get(model)
        if not layers:
            continue
        rows = []
        for layer, values in layers.items():
            cells = []
            for _, key, _ in columns:
                value = _value(values, key)
                reason = None
                if value is None:
                    pointer = json_pointer("geometry", model, layer, *key.split("."))
                    parent = json_pointer("geometry", model, layer, key.split(".")[0])
                    reason = missing.get(pointer) or missing.get(parent) or "not computed"
                text = str(value) if key == "width" else _fmt(value)
                cells.append({"text": text, "reason": reason})
            rows.append({"layer": layer, "cells": cells})
        tables.append({"model": model, "rows": rows})
    return [
        {"headings": [(h, tip) for h, _, tip in columns], "model": t["model"], "rows": t["rows"]}
        for t in tables
    ]


def _classes(info: Mapping[str, Any] | None) -> str:
    if info is None:
        return "none"
    if info.get("num_classes") is None:
        return "not class indices 0..C-1"
    counts = ", ".join(str(c) for c in info["class_counts"])
    return f"{info['num_classes']} classes ({counts} samples)"


def _labels_text(meta: Mapping[str, Any]) -> str | None:
    """What the labels were: one labeling shared by the models, or each model's own."""
    if not meta.get("has_labels"):
        return None
    per_model = meta.get("labels")
    if per_model is None:  # results written before labels were kept per model
        return _classes(meta)
    if "num_classes" not in meta:
        return "each model its own: " + "; ".join(
            f"{model}: {_classes(info)}" for model, info in per_model.items()
        )
    text = _classes(meta)
    unlabeled = [model for model, info in per_model.items() if info is None]
    if len(per_model) > 1 and not unlabeled:
        text += ", the same for every model"
    elif unlabeled:
        labeled = [model for model in per_model if model not in unlabeled]
        text += f" for {', '.join(labeled)}; no labels for {', '.join(unlabeled)}"
    return text


def render_report(results: Mapping[str, Any], *, title: str | None = None) -> str:
    """The report's HTML as a string (what :func:`write_report` writes).

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 6, generator=g)
        >>> models = {"A": {"l1": x, "l2": torch.tanh(x @ torch.randn(6, 4, generator=g))}}
        >>> from subspaces.report import compute_results, render_report
        >>> results = compute_results(
        ...     models, measures=["linear_cka"], geometry=False, progress=False
        ... )
        >>> page = render_report(results, title="One model")
        >>> page.startswith("<!DOCTYPE html>"), "One model" in page
        (True, True)
    """
    results = validate_results(dict(results))
    meta = results["meta"]
    figures = _Figures()
    model_names = dict(zip(meta["models"], _short_names(meta["models"], 40), strict=True))
    missing = results["missing"]
    measure_options = (meta.get("options") or {}).get("measure_options") or meta.get(
        "measure_options", {}
    )
    similarity = []
    for name in meta["measures"]:
        info = results["measure_info"][name]
        cross: list[dict[str, Any]] = []
        self_maps: list[dict[str, Any]] = []
        for r, record in enumerate(results["similarity"][name]):
            same = record["x_model"] == record["y_model"]
            entry = {
                "x_model": record["x_model"],
                "y_model": record["y_model"],
                "svg": _heatmap(
                    name, r, record, info, missing, small=same and len(meta["models"]) > 1
                ),
            }
            (self_maps if same and len(meta["models"]) > 1 else cross).append(entry)
        similarity.append(
            {
                "name": name,
                "info": info,
                "options": _option_text(measure_options.get(name)),
                "caveats": list(info.get("caveats") or []),
                "scale": _range_text(info, *(info.get("range") or (0.0, 1.0))),
                "maps": cross,
                "self_maps": self_maps,
            }
        )
    depth = _depth_charts(results)
    geometry = results.get("geometry") or {}
    with _style():
        spectra = [
            {"model": model, "svg": _spectra(figures, model_names[model], layers)}
            for model, layers in geometry.items()
        ]
    dims = _by_layer(results, _DIMENSION_PANELS) if geometry else []
    ids = _by_layer(results, _ID_PANELS) if geometry and meta.get("intrinsic_dimension") else []
    collapse = _by_layer(results, _COLLAPSE_PANELS) if geometry and meta.get("has_labels") else []
    anchors = {"summary"}
    if depth:
        anchors.add("depth")
    if similarity:
        anchors |= {"similarity", *(f"measure-{block['name']}" for block in similarity)}
    omitted = meta.get("omitted_measures") or {}
    groups = _missing_groups(results, anchors)
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    environment.filters["fmt"] = _fmt
    template = environment.from_string(
        resources.files("subspaces.report").joinpath("template.html.j2").read_text("utf-8")
    )
    return template.render(
        title=title or "subspaces report: " + " vs ".join(meta["models"]),
        meta=meta,
        labels=_labels_text(meta),
        warnings=meta.get("warnings", []),
        settings=_settings(meta),
        sources=_sources(meta),
        omitted=sorted(omitted.items()),
        depth=depth,
        similarity=similarity,
        paired=len(meta["models"]) > 1 and all(len(b["maps"]) == 1 for b in similarity),
        any_self=any(b["self_maps"] for b in similarity),
        map_width=_widest([m["svg"] for b in similarity for m in b["maps"]]),
        summary=_summary(results),
        spectra=[s for s in spectra if s["svg"] is not None] or spectra,
        dims=dims,
        ids=ids,
        collapse=collapse,
        collapse_classes=(
            f"{meta['num_classes']} classes"
            if "num_classes" in meta
            else "each model with its own labels"
        ),
        missing_groups=groups,
        undefined=sum(group["count"] for group in groups),
        missing=sorted(missing.items()),
    )


def write_report(
    results: Mapping[str, Any], out_dir: str | os.PathLike[str], *, title: str | None = None
) -> Path:
    """Write ``out_dir/report.html`` and the raw numbers as ``out_dir/results.json``.

    The HTML is one self-contained file that opens offline: every figure is inline SVG, the
    style sheet is inline, there is no script, and its Content-Security-Policy forbids any
    external request; hovering a heatmap cell or a curve point shows its value (an SVG
    ``<title>``). In order:

    * the header: the models, every option that shaped a number (samples, dtype, bootstrap
      and null-baseline settings, geometry options, device; ``meta.options``), where each
      model's layers came from (``meta.sources``), the default measures left out and why
      (``meta.omitted_measures``) and the warnings of ``meta.warnings``;
    * per pair of distinct models, corresponding-layer similarity against relative depth
      (``depth``): one line per measure, measures of one kind and range on a shared axis,
      the bootstrap interval as a shaded band and the null baseline (rows permuted) as a
      dotted band, an undefined point as a cross at the foot of the plot;
    * per measure, its options and caveats (``measure_info[name].caveats``) beside its
      heading, the layer × layer heatmaps between models (color bar with the measure's
      range; values written in the cells while they are legible; undefined cells grey),
      each model with itself folded in a ``<details>`` (when computed:
      ``compute_results(self_comparisons=False)`` leaves them out);
    * per model and layer, a geometry table (width, total variance, effective rank,
      participation ratio, stable rank, TwoNN and MLE intrinsic dimension, NC1 and CDNV
      with labels); covariance spectra; linear and intrinsic dimension and neural collapse
      by layer, one chart per statistic;
    * the undefined values grouped by cause: one line per distinct reason in ``missing``,
      with how many values it leaves undefined and in which sections (linked), then every
      pointer in a folded table.

    Parts whose keys are absent (results of version 1, no depth, no geometry) are left out,
    and the page links only to sections it holds. Names are escaped everywhere (HTML and
    SVG text); long layer names are cut in figures keeping the part that tells them apart
    (the whole name in the tooltip), and names cut short stay distinct. Both files are
    written atomically.

    Args:
        results: from :func:`~subspaces.report.compute_results` or
            :func:`~subspaces.report.load_results`.
        out_dir: the folder to write into (created if needed).
        title: the page's title; default names the models.

    Returns:
        The path of ``report.html``.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 6, generator=g)
        >>> models = {"A": {"l1": x, "l2": torch.tanh(x @ torch.randn(6, 4, generator=g))}}
        >>> import tempfile
        >>> from subspaces.report import compute_results, load_results, write_report
        >>> results = compute_results(
        ...     models, measures=["linear_cka"], geometry=False, progress=False
        ... )
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = write_report(results, folder)
        ...     print(path.name, load_results(folder)["meta"]["models"])
        report.html ['A']
    """
    out = Path(out_dir)
    page = render_report(results, title=title)
    save_results(results, out / "results.json")
    target = out / "report.html"
    _atomic_write_text(target, page)
    return target
