"""The report's figures: heatmaps, depth curves and by-layer charts, covariance spectra.

Heatmaps and line charts are drawn by :mod:`subspaces.report._svg` (every cell and curve
point with a ``<title>``: its value, or the reason it is undefined); covariance spectra by
matplotlib, its SVG cleaned for inlining (:func:`_clean_svg`: no script-capable element,
no event handler, no reference outside the page). Each function takes the results
document (or a part of it) and returns inline SVG markup.
"""

from __future__ import annotations

import io
import math
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import matplotlib
import numpy as np
from markupsafe import Markup, escape
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter

from subspaces.report import _svg
from subspaces.report.schema import (
    json_pointer,
)

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

    def svg(self, fig: Figure, *, label: str, tight: bool = True) -> Markup:
        """The figure as cleaned inline SVG named ``label`` (for screen readers and checks).

        ``tight=False`` for constrained-layout figures.
        """
        self.count += 1
        buffer = io.StringIO()
        with matplotlib.rc_context({"svg.hashsalt": f"subspaces-figure-{self.count}"}):
            fig.savefig(
                buffer,
                format="svg",
                bbox_inches="tight" if tight else None,
                metadata={"Date": None},
            )
        svg = _clean_svg(buffer.getvalue())
        named = f'<svg class="fig mpl" role="img" aria-label="{escape(label)}"'
        return Markup(named + svg[len("<svg") :] if svg.startswith("<svg") else svg)


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


def _widest(svgs: Sequence[Markup | None]) -> int:
    """The natural width in px of the widest figure (a grid's column: none is shrunk)."""
    widths = [int(m.group(1)) for s in svgs if s for m in [re.search(r' width="(\d+)"', s)] if m]
    return max([360, *widths])


def _model_names(models: Sequence[str]) -> dict[str, str]:
    """Model names for figures: cut to 40 characters, distinct names kept distinct."""
    unique = list(dict.fromkeys(models))
    return dict(zip(unique, _short_names(unique, 40), strict=True))


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
    """What the color scale of a measure spans: its range and which end means alike."""
    bounds = info.get("range")
    best = "1 = identical" if info["kind"] == "similarity" else "0 = identical"
    if bounds is None:
        return f"{info['label']}  (color range: data, {_fmt(vmin)} to {_fmt(vmax)})"
    lo, hi = bounds
    if info["kind"] == "distance":
        best = "0 = same shape"
    return f"{info['label']}  (range [{_fmt(lo)}, {_fmt(hi)}], {best})"


def _scale(info: Mapping[str, Any], values: np.ndarray) -> tuple[float, float]:
    """The color (or axis) range of a measure: its nominal range, widened to the data."""
    finite = values[np.isfinite(values)]
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
    return vmin, vmax


def _reason_at(missing: Mapping[str, str], *keys: str | int) -> str:
    """The reason recorded for the null at ``keys`` (or at its nearest recorded parent)."""
    for end in range(len(keys), 0, -1):
        reason = missing.get(json_pointer(*keys[:end]))
        if reason:
            return reason
    return "not computed"


def _heatmap(
    name: str,
    index: int,
    record: Mapping[str, Any],
    info: Mapping[str, Any],
    missing: Mapping[str, str],
    *,
    small: bool = False,
) -> Markup | None:
    """One layer × layer heatmap: every cell a rect whose title holds its value or reason."""
    matrix = np.array([_nan(row) for row in record["matrix"]], dtype=float)
    if matrix.size == 0:
        return None
    x_model, y_model = record["x_model"], record["y_model"]
    short = _model_names([x_model, y_model])
    vmin, vmax = _scale(info, matrix)
    tips = []
    for i, row in enumerate(record["x_layers"]):
        line = []
        for j, col in enumerate(record["y_layers"]):
            where = f"{x_model} / {row}  ×  {y_model} / {col}"
            v = matrix[i, j]
            if math.isfinite(v):
                line.append(f"{where}\n{info['label']} = {_fmt(float(v), 4)}")
            else:
                reason = _reason_at(missing, "similarity", name, index, "matrix", i, j)
                line.append(f"{where}\n{info['label']}: undefined. {reason}")
        tips.append(line)
    most = max(matrix.shape)
    cell = float(np.clip((240 if small else 460) / most, 14, 34 if small else 50))
    spec = _svg.Heatmap(
        title=f"{info['label']}: {short[x_model]} × {short[y_model]}",
        rows=record["x_layers"],
        cols=record["y_layers"],
        row_label=f"layer of {short[x_model]}",
        col_label=f"layer of {short[y_model]}",
        values=matrix,
        tips=tips,
        vmin=vmin,
        vmax=vmax,
        reverse=info["kind"] != "similarity",
        scale_label=info["label"],
    )
    return _svg.heatmap(spec, cell=cell)


# ---------------------------------------------------------------------------------------
# Depth: corresponding layers of two models, against relative depth

_MEASURE_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]


def _pair_layer_label(x_layer: str, y_layer: str) -> str:
    return x_layer if x_layer == y_layer else f"{x_layer} ↔ {y_layer}"


def _interval(value: Any) -> tuple[float, float] | None:
    if not isinstance(value, (list, tuple)) or len(value) != 2 or None in value:
        return None
    return float(value[0]), float(value[1])


def _depth_charts(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per pair of distinct models: charts of corresponding-layer similarity against depth.

    Measures of the same kind and range share a chart (one line each); any other measure
    has its own, so every axis is in its measure's units. Bootstrap intervals are shaded
    bands, the null baseline (the measure with the rows of one model permuted) a dotted band.
    """
    depth = results.get("depth") or {}
    meta = results["meta"]
    info_all = results["measure_info"]
    missing = results["missing"]
    options = meta.get("options") or {}
    boot = options.get("bootstrap") or {}
    null_opts = options.get("null") or {}
    level = float(boot.get("level") or null_opts.get("level") or 0.95)
    order = [m for m in meta["measures"] if m in depth] + [
        m for m in depth if m not in meta["measures"]
    ]
    pairs: dict[tuple[str, str], list[tuple[str, int, Mapping[str, Any]]]] = {}
    for name in order:
        if name not in info_all:
            continue
        for r, record in enumerate(depth[name] or []):
            pairs.setdefault((record["x_model"], record["y_model"]), []).append((name, r, record))
    out = []
    short = _model_names(meta["models"])
    for (x_model, y_model), entries in pairs.items():
        groups: dict[tuple[Any, ...], list[tuple[str, int, Mapping[str, Any]]]] = {}
        for entry in entries:
            info = info_all[entry[0]]
            rng = info.get("range")
            key = (info["kind"], tuple(rng)) if rng is not None else ("own", entry[0])
            groups.setdefault(key, []).append(entry)
        charts = []
        for key, members in groups.items():
            series = []
            ticks: dict[float, tuple[tuple[str, str], str]] = {}
            any_ci = any_null = False
            values_all: list[float] = []
            for name, r, record in members:
                info = info_all[name]
                # the null's quantile lies on the side of "alike": upper for a similarity,
                # lower (1 - level) for a distance
                q_text = f"{(level if info['kind'] == 'similarity' else 1 - level):.0%} quantile"
                color = _MEASURE_COLORS[order.index(name) % len(_MEASURE_COLORS)]
                xs = [float(d) for d in record.get("depth", [])]
                vals = record.get("value", [])
                ci = record.get("ci")
                null = record.get("null")
                xl, yl = record.get("x_layers", []), record.get("y_layers", [])
                tips, null_tips = [], []
                for i, d in enumerate(xs):
                    where = f"{x_model} / {xl[i]}  ↔  {y_model} / {yl[i]} (depth {d:.2f})"
                    ticks.setdefault(d, ((xl[i], yl[i]), where))
                    v = vals[i] if i < len(vals) else None
                    if v is None:
                        reason = _reason_at(missing, "depth", name, r, "value", i)
                        tips.append(f"{info['label']}, {where}\nundefined. {reason}")
                    else:
                        values_all.append(float(v))
                        text = f"{info['label']}, {where}\n= {_fmt(float(v), 4)}"
                        band = _interval(ci[i]) if ci else None
                        if band:
                            text += f"; {level:.0%} CI [{_fmt(band[0])}, {_fmt(band[1])}]"
                        base = _interval(null[i]) if null else None
                        if base:
                            text += f"; null mean {_fmt(base[0])}, {q_text} {_fmt(base[1])}"
                        tips.append(text)
                    base = _interval(null[i]) if null else None
                    null_tips.append(
                        f"null baseline for {info['label']}, {where}: rows of {y_model} "
                        f"permuted; mean {_fmt(base[0])}, {q_text} {_fmt(base[1])}"
                        if base
                        else ""
                    )
                band_list = [_interval(b) for b in ci] if ci else None
                null_list = [_interval(b) for b in null] if null else None
                any_ci = any_ci or bool(band_list and any(band_list))
                any_null = any_null or bool(null_list and any(null_list))
                for extra in (band_list or []) + (null_list or []):
                    if extra:
                        values_all += list(extra)
                series.append(
                    _svg.Series(
                        name=info["label"],
                        color=color,
                        x=xs,
                        y=[None if v is None else float(v) for v in vals],
                        tips=tips,
                        band=band_list,
                        null=null_list,
                        null_tips=null_tips,
                    )
                )
            info0 = info_all[members[0][0]]
            ylim = None
            if key[0] != "own":
                ylim = _scale(info0, np.array(values_all or [math.nan], dtype=float))
            if len(members) == 1:
                ylabel = info0["label"]
            else:
                lo, hi = info0["range"]
                ylabel = f"{info0['kind']} in [{_fmt(lo)}, {_fmt(hi)}]"
            best = "1 = alike" if info0["kind"] == "similarity" else "0 = alike"
            notes = []
            if any_ci:
                resamples = boot.get("resamples")
                notes.append(
                    (
                        "band",
                        f"{level:.0%} bootstrap interval"
                        + (f" ({resamples} resamples)" if resamples else ""),
                    )
                )
            if any_null:
                perms = null_opts.get("permutations")
                side = level if info0["kind"] == "similarity" else 1 - level
                notes.append(
                    (
                        "null",
                        f"null: rows permuted{f' ({perms}×)' if perms else ''}, "
                        f"mean to {side:.0%} quantile",
                    )
                )
            pairs_at = [t[0] for t in ticks.values()]
            x_cut = _svg.short_left([x for x, _ in pairs_at], 16)
            y_cut = _svg.short_left([y for _, y in pairs_at], 16)
            names = [
                a if x == y else _pair_layer_label(a, b)
                for (x, y), a, b in zip(pairs_at, x_cut, y_cut, strict=True)
            ]
            charts.append(
                _svg.line_chart(
                    _svg.Chart(
                        title=f"{short[x_model]} × {short[y_model]}: "
                        + ", ".join(info_all[m[0]]["label"] for m in members),
                        xlabel=f"relative depth (layer of {short[x_model]} ↔ "
                        f"layer of {short[y_model]})",
                        ylabel=f"{ylabel}, {best}",
                        series=series,
                        xticks=[
                            (d, cut, full)
                            for (d, (_, full)), cut in zip(ticks.items(), names, strict=True)
                        ],
                        ylim=ylim,
                        notes=notes,
                    )
                )
            )
        out.append({"x_model": x_model, "y_model": y_model, "charts": charts})
    return out


def _layer_colors(count: int) -> list[Any]:
    cmap = matplotlib.colormaps["viridis"]
    return [cmap(0.9 * i / max(count - 1, 1)) for i in range(count)]


def _spectra(figures: _Figures, model: str, layers: Mapping[str, Any]) -> Markup | None:
    short = dict(zip(layers, _short_names(list(layers)), strict=True))
    named = [(short[name], g["spectrum"]) for name, g in layers.items() if g.get("spectrum")]
    if not named:
        return None
    fig = Figure(figsize=(9.0, 3.7))
    left, right = fig.subplots(1, 2)
    colors = _layer_colors(len(named))
    salt = figures.count + 1
    tips: dict[str, str] = {}  # the id of each curve: its tooltip
    full = [name for name, g in layers.items() if g.get("spectrum")]
    for k, ((name, spectrum), color) in enumerate(zip(named, colors, strict=True)):
        eig = np.asarray(spectrum["eigenvalues"], dtype=float)
        ratio = np.asarray(spectrum["explained_variance_ratio"], dtype=float)
        index = np.arange(1, eig.size + 1)
        positive = eig > 0
        marker = "o" if eig.size <= 4 else None  # a line of one point is invisible
        (line,) = left.plot(
            index[positive], eig[positive], color=color, lw=1.4, marker=marker, label=name
        )
        line.set_gid(f"data-{salt}-{k}-eig")
        tips[f"data-{salt}-{k}-eig"] = (
            f"{model} / {full[k]}: λ₁ = {_fmt(float(eig[0]), 4)}, "
            f"λ{eig.size} = {_fmt(float(eig[-1]), 4)}"
        )
        (line,) = right.plot(
            index, np.cumsum(ratio), color=color, lw=1.4, marker=marker, label=name
        )
        line.set_gid(f"data-{salt}-{k}-ratio")
        top = min(10, ratio.size)
        tips[f"data-{salt}-{k}-ratio"] = (
            f"{model} / {full[k]}: the top {top} components hold "
            f"{float(np.sum(ratio[:top])):.1%} of the variance"
        )
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
    for a, ax in enumerate((left, right)):
        ax.patch.set_gid(f"plot-area-{salt}-{a}")  # the browser checks find the plot areas
    if len(named) <= _LEGEND_MAX:  # beside the plot, never over the curves
        legend = right.legend(title="layer", loc="upper left", bbox_to_anchor=(1.02, 1.0))
        legend.set_frame_on(False)
        legend.set_gid(f"legend-{salt}")
    else:
        mappable = matplotlib.cm.ScalarMappable(
            norm=Normalize(0, len(named) - 1), cmap=matplotlib.colormaps["viridis"]
        )
        bar = fig.colorbar(mappable, ax=[left, right], fraction=0.03, pad=0.02)
        ticks = np.unique(np.linspace(0, len(named) - 1, 6).round().astype(int))
        bar.set_ticks(ticks.tolist(), labels=[named[t][0] for t in ticks])
        bar.set_label("layer (depth)")
    svg = str(figures.svg(fig, label=f"covariance spectra of {model}"))
    for gid, tip in tips.items():  # a title on each curve: hover names the layer
        svg = svg.replace(f'<g id="{gid}">', f'<g id="{gid}"><title>{escape(tip)}</title>', 1)
    return Markup(svg)


@dataclass
class _Panel:
    title: str
    ylabel: str
    key: str  # a geometry key, or "neural_collapse.<key>"
    log: bool = False
    lines: list[tuple[str, str | None]] = field(default_factory=list)  # (key suffix, dash)


def _value(geometry: Mapping[str, Any], key: str) -> float | None:
    if key.startswith("neural_collapse."):
        nc = geometry.get("neural_collapse")
        return None if not nc else nc.get(key.split(".", 1)[1])
    value = geometry.get(key)
    return value if isinstance(value, (int, float)) else None


def _by_layer(
    results: Mapping[str, Any],
    panels: Sequence[_Panel],
) -> list[Markup]:
    """One line chart per panel: a geometry statistic against layer, one line per model."""
    geometry = results.get("geometry") or {}
    missing = results["missing"]
    models = list(geometry)
    short = _model_names(models)
    shared = all(list(geometry[m]) == list(geometry[models[0]]) for m in models)
    out = []
    for panel in panels:
        series = []
        for m, model in enumerate(models):
            color = _MODEL_COLORS[m % len(_MODEL_COLORS)]
            layers = list(geometry[model])
            for suffix, dash in panel.lines or [("", None)]:
                key = panel.key + suffix
                values = [_value(geometry[model][layer], key) for layer in layers]
                if not any(v is not None and math.isfinite(v) for v in values):
                    continue
                name = short[model]
                if panel.lines:
                    name += f", {_LINE_NAMES.get(suffix, suffix)}"
                tips = []
                for layer, v in zip(layers, values, strict=True):
                    if v is None:
                        reason = _reason_at(missing, "geometry", model, layer, *key.split("."))
                        tips.append(f"{name}, layer {layer}: undefined. {reason}")
                    else:
                        tips.append(f"{name}, layer {layer}\n{panel.ylabel} = {_fmt(v, 4)}")
                series.append(
                    _svg.Series(
                        name=name,
                        color=color,
                        x=list(range(len(layers))),
                        y=values,
                        tips=tips,
                        dash=dash,
                    )
                )
        if not series:
            continue
        positive = all(v > 0 for s in series for v in s.y if v is not None and math.isfinite(v))
        if shared:
            names = list(geometry[models[0]])
            cut = _svg.short_left(names, 18)
            ticks = [(float(i), c, n) for i, (c, n) in enumerate(zip(cut, names, strict=True))]
            xlabel = "layer"
        else:
            most = max(len(geometry[m]) for m in models)
            ticks = [(float(i), str(i), f"layer {i}") for i in range(most)]
            xlabel = "layer index (depth, in each model's order)"
        # the axis names the unit where the whole label does not fit (the title names the
        # statistic; every point's tooltip gives the whole label)
        axis = panel.ylabel
        if len(axis) > 26:
            axis = re.sub(r"^.*\((.*)\)$", r"\1", axis)
        out.append(
            _svg.line_chart(
                _svg.Chart(
                    title=panel.title,
                    xlabel=xlabel,
                    ylabel=axis,
                    series=series,
                    xticks=ticks,
                    log=panel.log and positive,
                    legend=len(series) > 1,
                ),
                width=560 if len(panels) == 1 else 420,
                plot_height=200,
            )
        )
    return out


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
        lines=[("twonn_id", None), ("mle_id", "6 4")],
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
