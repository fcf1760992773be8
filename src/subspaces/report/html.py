"""The HTML report: one self-contained file drawn from a results dict.

:func:`write_report` draws every figure with matplotlib as inline SVG (text kept as escaped
SVG text, heatmap pixels as embedded ``data:`` PNG), fills the jinja2 template (autoescaped)
and writes ``report.html`` with ``results.json`` beside it. The page makes no request of
any kind: no script, no external font, style sheet or image, and a Content-Security-Policy
that forbids them (``default-src 'none'``), so it opens offline and a layer named
``<script>...`` is shown as text. It only draws numbers computed by
:func:`subspaces.report.compute_results`.
"""

from __future__ import annotations

import io
import math
import os
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import matplotlib
import numpy as np
from markupsafe import Markup
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter, MaxNLocator

from subspaces.report.schema import (
    _atomic_write_text,
    json_pointer,
    save_results,
    validate_results,
)

__all__ = ["render_report", "write_report"]

_RC: Any = {  # typed Any: matplotlib types rc keys as a Literal
    "svg.fonttype": "none",  # text stays text (escaped by matplotlib), not glyph paths
    "text.parse_math": False,  # a "$" in a layer name is a dollar, not mathtext
    "text.usetex": False,
    "font.family": "sans-serif",
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.labelsize": 9.5,
    "legend.fontsize": 8.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "image.interpolation": "nearest",
}
_ANNOTATE_MAX = 12  # annotate heatmap cells when both sides have at most this many layers
_LEGEND_MAX = 12  # beyond this many layers, a spectra figure uses a color bar, not a legend
_MODEL_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2"]
_UNSAFE_TAGS = {"script", "foreignobject", "iframe", "object", "embed", "a", "animate", "set"}
_TAG = re.compile(r"<\s*([A-Za-z][\w:.-]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>")
_ATTR = re.compile(r"([\w:.-]+)\s*=\s*(\"[^\"]*\"|'[^']*')")


# ---------------------------------------------------------------------------------------
# Figures


@contextmanager
def _style() -> Iterator[None]:
    with matplotlib.rc_context(_RC):
        yield


def _clean_svg(svg: str) -> str:
    """matplotlib's SVG made inline-safe: no prolog, metadata, comments or namespaces.

    The HTML parser gives inline ``<svg>`` its namespaces (``xlink:href`` included), so the
    page holds no URL at all. Every tag is then checked: no script-capable element, no
    event-handler attribute, and references only to ``#ids`` or ``data:`` images.
    """
    svg = re.sub(r"<\?xml.*?\?>", "", svg, flags=re.DOTALL)
    svg = re.sub(r"<!DOCTYPE.*?>", "", svg, flags=re.DOTALL)
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.DOTALL)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.DOTALL)
    svg = re.sub(r"\s+xmlns(?::\w+)?=\"[^\"]*\"", "", svg)
    for tag in _TAG.finditer(svg):
        name = tag.group(1).lower()
        if name in _UNSAFE_TAGS:
            raise RuntimeError(f"refusing to inline an SVG with a <{name}> element")
        for attr, value in _ATTR.findall(tag.group(2)):
            attr_l, value = attr.lower(), value[1:-1].strip()
            if attr_l.startswith("on"):
                raise RuntimeError(f"refusing to inline an SVG with an {attr} attribute")
            if attr_l.endswith("href") and not value.startswith(("#", "data:image/png;base64,")):
                raise RuntimeError(f"refusing to inline an SVG referring to {value[:40]!r}")
    return svg.strip()


@dataclass
class _Figures:
    """Draws figures as SVG, each with its own id salt so that ids never collide."""

    count: int = 0

    def svg(self, fig: Figure, *, tight: bool = True) -> Markup:
        """The figure as cleaned inline SVG; ``tight=False`` for constrained-layout figures."""
        self.count += 1
        buffer = io.StringIO()
        with matplotlib.rc_context({"svg.hashsalt": f"subspaces-figure-{self.count}"}):
            fig.savefig(
                buffer,
                format="svg",
                bbox_inches="tight" if tight else None,
                metadata={"Date": None},
            )
        return Markup(_clean_svg(buffer.getvalue()))


class _PlainLogFormatter(LogFormatter):
    """matplotlib's choice of which log ticks to label, written as plain numbers (0.1, 20)."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return _fmt(x, 2) if super().__call__(x, pos) else ""


def _log_scale(ax: Axes, axis: str) -> None:
    """A log axis labeled in plain text (the default labels are mathtext, which is off).

    Minor ticks (2, 3, 5 ...) are labeled too when the axis spans less than two decades.
    """
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_formatter(_PlainLogFormatter(labelOnlyBase=False))
    target.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.4)))


def _short(name: str, limit: int = 28) -> str:
    """A name cut to ``limit`` characters for a figure (the tables show it whole)."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _short_middle(name: str, limit: int) -> str:
    """A name cut to ``limit`` characters in its middle, keeping its start and its end."""
    if len(name) <= limit:
        return name
    head = limit // 2
    return name[:head] + "…" + name[len(name) - (limit - 1 - head) :]


def _short_names(names: Sequence[str], limit: int = 28) -> list[str]:
    """Names cut for a figure, distinct names kept distinct.

    Cut at the end if that keeps them apart, else in the middle; a name whose cut would
    still match another's is shown whole (two models or layers never share a label).
    """
    for cut in (_short, _short_middle):
        out = [cut(name, limit) for name in names]
        if len(set(out)) == len(set(names)):
            return out
    uses = Counter(_short(name, limit) for name in dict.fromkeys(names))
    return [name if uses[_short(name, limit)] > 1 else _short(name, limit) for name in names]


def _nan(values: Sequence[float | None]) -> np.ndarray:
    return np.array([math.nan if v is None else float(v) for v in values], dtype=float)


def _fmt(value: float | None, digits: int = 3) -> str:
    """``digits`` significant digits; whole numbers up to 1e5 in full; "—" for None."""
    if value is None:
        return "—"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.{digits - 1}e}"
    if abs(value) >= 10**digits:
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def _range_text(info: Mapping[str, Any], vmin: float, vmax: float) -> str:
    bounds = info.get("range")
    best = "1 = identical" if info["kind"] == "similarity" else "0 = identical"
    if bounds is None:
        return f"{info['label']}  (color range: data, {_fmt(vmin)} to {_fmt(vmax)})"
    lo, hi = bounds
    if info["kind"] == "distance":
        best = "0 = same shape"
    return f"{info['label']}  (range [{_fmt(lo)}, {_fmt(hi)}], {best})"


def _heatmap(
    figures: _Figures,
    record: Mapping[str, Any],
    info: Mapping[str, Any],
    model_names: Mapping[str, str],
) -> Markup | None:
    matrix = np.array([_nan(row) for row in record["matrix"]], dtype=float)
    rows = _short_names(record["x_layers"])
    cols = _short_names(record["y_layers"])
    x_model, y_model = model_names[record["x_model"]], model_names[record["y_model"]]
    if matrix.size == 0:
        return None
    finite = matrix[np.isfinite(matrix)]
    bounds = info.get("range")
    if bounds is not None:
        vmin, vmax = float(bounds[0]), float(bounds[1])
        if finite.size:  # values a little outside the nominal range (rounding, debiasing)
            vmin, vmax = min(vmin, float(finite.min())), max(vmax, float(finite.max()))
    elif finite.size:
        vmin, vmax = float(finite.min()), float(finite.max())
    else:
        vmin, vmax = 0.0, 1.0
    if vmax <= vmin:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    cmap = matplotlib.colormaps["viridis" if info["kind"] == "similarity" else "viridis_r"]
    cmap = cmap.with_extremes(bad="#d9d9d9")
    longest = max((len(name) for name in [*rows, *cols]), default=1)
    label_space = min(0.065 * longest, 2.5)
    width = min(2.2 + label_space + 0.48 * len(cols), 15.0)
    height = min(1.5 + label_space + 0.42 * len(rows), 15.0)
    fig = Figure(figsize=(max(width, 4.8), max(height, 3.6)))
    ax = fig.subplots()
    image = ax.imshow(
        np.ma.masked_invalid(matrix), cmap=cmap, norm=Normalize(vmin, vmax), aspect="auto"
    )
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    most = max(len(rows), len(cols))
    tick_size = 10 if most <= 16 else max(4.5, 10 - 0.09 * most)
    ax.set_xticks(range(len(cols)), labels=cols, rotation=45, ha="right", fontsize=tick_size)
    ax.set_yticks(range(len(rows)), labels=rows, fontsize=tick_size)
    ax.set_xlabel(f"layer of {y_model}")
    ax.set_ylabel(f"layer of {x_model}")
    title = f"{info['label']}: {x_model} × {y_model}"
    ax.set_title(title if len(title) <= 48 else f"{info['label']}\n{x_model} × {y_model}")
    bar = fig.colorbar(image, ax=ax, fraction=0.06, pad=0.03)
    bar.set_label(_range_text(info, vmin, vmax))
    if len(rows) <= _ANNOTATE_MAX and len(cols) <= _ANNOTATE_MAX:
        for i in range(len(rows)):
            for j in range(len(cols)):
                v = matrix[i, j]
                if math.isfinite(v):
                    r, g, b, _ = cmap(Normalize(vmin, vmax)(v))
                    dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
                    text, color = f"{v:.2f}", "white" if dark else "black"
                else:
                    text, color = "n/a", "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=9, color=color)
    return figures.svg(fig)


def _layer_colors(count: int) -> list[Any]:
    cmap = matplotlib.colormaps["viridis"]
    return [cmap(0.9 * i / max(count - 1, 1)) for i in range(count)]


def _spectra(figures: _Figures, model: str, layers: Mapping[str, Any]) -> Markup | None:
    short = dict(zip(layers, _short_names(list(layers)), strict=True))
    named = [(short[name], g["spectrum"]) for name, g in layers.items() if g.get("spectrum")]
    if not named:
        return None
    fig = Figure(figsize=(10.5, 3.9))
    left, right = fig.subplots(1, 2)
    colors = _layer_colors(len(named))
    for (name, spectrum), color in zip(named, colors, strict=True):
        eig = np.asarray(spectrum["eigenvalues"], dtype=float)
        ratio = np.asarray(spectrum["explained_variance_ratio"], dtype=float)
        index = np.arange(1, eig.size + 1)
        positive = eig > 0
        marker = "o" if eig.size <= 4 else None  # a line of one point is invisible
        left.plot(index[positive], eig[positive], color=color, lw=1.4, marker=marker, label=name)
        right.plot(index, np.cumsum(ratio), color=color, lw=1.4, marker=marker, label=name)
    _log_scale(left, "x")
    _log_scale(left, "y")
    left.set_xlabel("eigenvalue index i (1 = largest)")
    left.set_ylabel("eigenvalue λᵢ of the covariance\n(variance, activation units²)")
    left.set_title("covariance spectrum by layer")
    _log_scale(right, "x")
    right.set_ylim(0, 1.02)
    right.set_xlabel("number of leading components")
    right.set_ylabel("cumulative explained variance (fraction)")
    right.set_title("variance explained by the top components")
    fig.suptitle(model, fontweight="bold")
    if len(named) <= _LEGEND_MAX:
        right.legend(title="layer", loc="lower right", frameon=False)
    else:
        mappable = matplotlib.cm.ScalarMappable(
            norm=Normalize(0, len(named) - 1), cmap=matplotlib.colormaps["viridis"]
        )
        bar = fig.colorbar(mappable, ax=[left, right], fraction=0.03, pad=0.02)
        ticks = np.unique(np.linspace(0, len(named) - 1, 6).round().astype(int))
        bar.set_ticks(ticks.tolist(), labels=[named[t][0] for t in ticks])
        bar.set_label("layer (depth)")
    return figures.svg(fig)


@dataclass
class _Panel:
    title: str
    ylabel: str
    key: str  # a geometry key, or "neural_collapse.<key>"
    log: bool = False
    lines: list[tuple[str, str]] = field(default_factory=list)  # (key suffix, line style)


def _value(geometry: Mapping[str, Any], key: str) -> float | None:
    if key.startswith("neural_collapse."):
        nc = geometry.get("neural_collapse")
        return None if not nc else nc.get(key.split(".", 1)[1])
    value = geometry.get(key)
    return value if isinstance(value, (int, float)) else None


def _by_layer(
    figures: _Figures,
    geometry: Mapping[str, Mapping[str, Any]],
    panels: Sequence[_Panel],
    *,
    columns: int,
    suptitle: str,
) -> Markup | None:
    models = list(geometry)
    model_names = dict(zip(models, _short_names(models, 40), strict=True))
    shared = all(list(geometry[m]) == list(geometry[models[0]]) for m in models)
    layer_lists = [_short_names(list(geometry[m])) for m in models]
    longest = max((len(n) for names in layer_lists for n in names), default=1) if shared else 2
    per_layer = max(len(names) for names in layer_lists)
    # Panels side by side while they fit in about 14 inches; many layers: one per row.
    width_each = min(max(3.6 if columns > 1 else 6.5, 0.3 * per_layer + 1.6), 12.0)
    columns = max(1, min(columns, int(14.0 // width_each)))
    rows = math.ceil(len(panels) / columns)
    extra = min(0.06 * longest, 1.6)
    fig = Figure(
        figsize=(width_each * columns + 0.4, (2.9 + extra) * rows + 0.5), layout="constrained"
    )
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
    anything = False
    for ax, panel in zip(axes, panels, strict=False):
        drawn = False
        for m, model in enumerate(models):
            color = _MODEL_COLORS[m % len(_MODEL_COLORS)]
            for suffix, style in panel.lines or [("", "-")]:
                key = panel.key + suffix
                values = _nan([_value(g, key) for g in geometry[model].values()])
                if not np.isfinite(values).any():
                    continue
                name = model_names[model]
                label = f"{name}, {_LINE_NAMES.get(suffix, suffix)}" if panel.lines else name
                ax.plot(
                    np.arange(values.size),
                    values,
                    style,
                    marker="o",
                    ms=4,
                    lw=1.5,
                    color=color,
                    label=label,
                )
                drawn = True
        ax.set_title(panel.title)
        ax.set_ylabel(panel.ylabel)
        if panel.log and drawn:
            data = [ln.get_ydata() for ln in ax.get_lines()]
            finite = np.concatenate([np.asarray(d, dtype=float) for d in data])
            finite = finite[np.isfinite(finite)]
            if finite.size and (finite > 0).all():
                _log_scale(ax, "y")
        if shared:
            ax.set_xticks(
                range(len(layer_lists[0])), labels=layer_lists[0], rotation=40, ha="right"
            )
            ax.set_xlabel("layer")
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("layer index (depth, in each model's order)")
        if drawn:
            anything = True
            if len(models) > 1 or panel.lines:
                ax.legend(frameon=False)
        else:
            ax.text(0.5, 0.5, "not available", ha="center", va="center", transform=ax.transAxes)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    if not anything:
        return None
    fig.suptitle(suptitle)
    return figures.svg(fig, tight=False)


_LINE_NAMES = {"twonn_id": "TwoNN", "mle_id": "MLE"}

_DIMENSION_PANELS = [
    _Panel("effective rank (Roy & Vetterli)", "effective rank (dimensions)", "effective_rank"),
    _Panel(
        "participation ratio (Σλ)²/Σλ²", "participation ratio (dimensions)", "participation_ratio"
    ),
    _Panel("stable rank Σλ/λ₁", "stable rank (dimensions)", "stable_rank"),
]
_ID_PANELS = [
    _Panel(
        "intrinsic dimension: TwoNN (solid), MLE (dashed)",
        "intrinsic dimension (dimensions)",
        "",
        lines=[("twonn_id", "-"), ("mle_id", "--")],
    )
]
_COLLAPSE_PANELS = [
    _Panel(
        "NC1 = Tr(Σ_W Σ_B⁺)/C", "NC1 (unitless; 0 = collapsed)", "neural_collapse.nc1", log=True
    ),
    _Panel(
        "trace ratio Tr Σ_W / Tr Σ_B",
        "trace ratio (unitless)",
        "neural_collapse.trace_ratio",
        log=True,
    ),
    _Panel(
        "CDNV (class-distance normalized variance)",
        "CDNV (unitless)",
        "neural_collapse.cdnv",
        log=True,
    ),
    _Panel(
        "equinorm of class means (NC2)", "std / mean of ‖μ_c − μ_G‖", "neural_collapse.equinorm"
    ),
    _Panel(
        "equiangularity of class means (NC2)",
        "mean |cos + 1/(C−1)|",
        "neural_collapse.equiangularity",
    ),
    _Panel("distance to a simplex ETF", "ETF distance (0 to 2)", "neural_collapse.etf_distance"),
]


# ---------------------------------------------------------------------------------------
# The page


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
    with _style():
        similarity = []
        for name in meta["measures"]:
            info = results["measure_info"][name]
            maps = [
                {
                    "x_model": r["x_model"],
                    "y_model": r["y_model"],
                    "svg": _heatmap(figures, r, info, model_names),
                }
                for r in results["similarity"][name]
            ]
            large = any(
                max(len(r["x_layers"]), len(r["y_layers"])) > _ANNOTATE_MAX
                for r in results["similarity"][name]
            )
            similarity.append(
                {
                    "name": name,
                    "info": info,
                    "options": meta["measure_options"].get(name) or {},
                    "maps": maps,
                    "large": large,
                }
            )
        geometry = results.get("geometry") or {}
        spectra = [
            {"model": model, "svg": _spectra(figures, model_names[model], layers)}
            for model, layers in geometry.items()
        ]
        dims = (
            _by_layer(
                figures,
                geometry,
                _DIMENSION_PANELS,
                columns=3,
                suptitle="Linear dimensionality by layer (from the covariance spectrum)",
            )
            if geometry
            else None
        )
        ids = (
            _by_layer(
                figures,
                geometry,
                _ID_PANELS,
                columns=1,
                suptitle="Intrinsic (non-linear) dimension by layer",
            )
            if geometry and meta.get("intrinsic_dimension")
            else None
        )
        collapse = (
            _by_layer(
                figures,
                geometry,
                _COLLAPSE_PANELS,
                columns=3,
                suptitle="Neural collapse by layer ("
                + (
                    f"{meta['num_classes']} classes)"
                    if "num_classes" in meta
                    else "each model with its own labels)"
                ),
            )
            if geometry and meta.get("has_labels")
            else None
        )
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
        similarity=similarity,
        summary=_summary(results),
        spectra=spectra,
        dims=dims,
        ids=ids,
        collapse=collapse,
        missing=sorted(results["missing"].items()),
    )


def write_report(
    results: Mapping[str, Any], out_dir: str | os.PathLike[str], *, title: str | None = None
) -> Path:
    """Write ``out_dir/report.html`` and the raw numbers as ``out_dir/results.json``.

    The HTML is one self-contained file that opens offline: every figure is inline SVG drawn
    by matplotlib, the style sheet is inline, there is no script, and its
    Content-Security-Policy forbids any external request. It holds a summary table (per
    model and layer: width, total variance, effective rank, participation ratio, stable
    rank, TwoNN and MLE intrinsic dimension, NC1 and CDNV with labels), a layer × layer
    heatmap per measure and pair of models (color bar with the measure's name and range,
    values annotated up to 12 × 12), covariance spectra by layer, linear and intrinsic
    dimension by layer, neural collapse by layer, and the reason for every missing value;
    the warnings of ``meta.warnings`` (labels that differ between models) stand at the
    top. Names are escaped everywhere (HTML and SVG text); names cut short in a figure stay
    distinct (cut in the middle, or shown whole, where cutting the end would merge two).
    Both files are written atomically.

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
