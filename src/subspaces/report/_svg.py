"""Hand-drawn inline SVG for the report: heatmaps and line charts whose every mark has a title.

The page runs no script, so hover values come from SVG ``<title>`` elements, which every
browser shows as a tooltip. Each figure is an ``<svg class="fig">`` with a ``viewBox`` and
its natural ``width`` (the page's style sheet lets it shrink to the column), one
``<rect class="plot-area">`` per plot, its data marks in class ``mark`` (heatmap cells,
curve points, lines and bands) and its legends (a color bar, the line keys) in
``<g class="legend">`` groups placed outside the plot area. Every piece of text is escaped.
No element has an ``id``, so no figure can collide with another or with the page.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import matplotlib
import numpy as np
from markupsafe import Markup, escape
from matplotlib.ticker import LogLocator, MaxNLocator

GREY = "#d9d9d9"  # undefined cells
INK = "#1d2329"
MUTED = "#5b6670"
GRID = "#e6eaee"
CHAR = 0.6  # average glyph width of the sans-serif font, in ems (an estimate for layout)


def text_width(text: str, size: float) -> float:
    """An estimate of the width of ``text`` at ``size`` px (for layout only)."""
    return CHAR * size * len(text)


def _tokens(name: str) -> list[str]:
    return [t for t in re.split(r"([./_:\-\s])", name) if t]


def _common(lists: list[list[str]], *, reverse: bool = False) -> int:
    """How many leading (or trailing) tokens every list shares, leaving each one token."""
    if len(lists) < 2:
        return 0
    count = 0
    shortest = min(len(t) for t in lists) - 1
    while count < shortest:
        at = -1 - count if reverse else count
        if len({t[at] for t in lists}) != 1:
            break
        count += 1
    return count


def short_left(names: Sequence[str], limit: int) -> list[str]:
    """Names cut to about ``limit`` characters, keeping the part that tells them apart.

    Layer names share a start (``encoder.layer.``) and often an end (``.output.dense``):
    what the long names share is cut (shown as "…"), keeping the tokens around the part
    that differs, as many as fit (``…layer.3.output…``); a name that shares nothing is cut
    from the left (``…attention.output``). A name whose cut would match another's is shown
    whole. The full name goes in the figure's tooltip.
    """
    long = [_tokens(n) for n in dict.fromkeys(names) if len(n) > limit]
    head = _common(long)
    tail = _common(long, reverse=True)

    def cut(name: str) -> str:
        if len(name) <= limit:
            return name
        tokens = _tokens(name)
        lo, hi = head, len(tokens) - tail  # the differing core: tokens[lo:hi]
        if lo >= hi:
            lo, hi = len(tokens) - 1, len(tokens)
        core = "".join(tokens[lo:hi])
        while True:
            grew = False
            if lo > 0:
                text = tokens[lo - 1] + core
                if len(text) + (lo > 1) + (hi < len(tokens)) <= limit:
                    lo, core, grew = lo - 1, text, True
            if hi < len(tokens):
                text = core + tokens[hi]
                if len(text) + (lo > 0) + (hi + 1 < len(tokens)) <= limit:
                    hi, core, grew = hi + 1, text, True
            if not grew:
                break
        if len(core) > limit:  # one token longer than the limit: its end
            core = core[len(core) - limit + 1 :]
            lo = max(lo, 1)
        if lo > 0:
            core = "…" + core.lstrip("./_:- ")
        if hi < len(tokens):
            core = core.rstrip("./_:- ") + "…"
        return core

    out = [cut(name) for name in names]
    if len(set(out)) == len(set(names)):
        return out
    uses: dict[str, int] = {}
    for name in dict.fromkeys(names):
        uses[cut(name)] = uses.get(cut(name), 0) + 1
    return [name if uses[cut(name)] > 1 else cut(name) for name in names]


def _n(value: float) -> str:
    """A coordinate written with at most 2 decimals."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _text(
    x: float,
    y: float,
    text: str,
    *,
    size: float = 12,
    anchor: str = "start",
    color: str = INK,
    rotate: float | None = None,
    weight: str | None = None,
    cls: str | None = None,
    title: str | None = None,
) -> str:
    transform = f' transform="rotate({_n(rotate)} {_n(x)} {_n(y)})"' if rotate else ""
    bold = f' font-weight="{weight}"' if weight else ""
    klass = f' class="{cls}"' if cls else ""
    tip = f"<title>{escape(title)}</title>" if title else ""
    return (
        f'<text x="{_n(x)}" y="{_n(y)}" font-size="{_n(size)}" text-anchor="{anchor}" '
        f'fill="{color}"{bold}{klass}{transform}>{tip}{escape(text)}</text>'
    )


def _svg(width: float, height: float, body: list[str], *, label: str, kind: str) -> Markup:
    w, h = math.ceil(width), math.ceil(height)
    return Markup(
        f'<svg class="fig {kind}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        f'aria-label="{escape(label)}" font-family="system-ui, \'DejaVu Sans\', sans-serif">'
        + "".join(body)
        + "</svg>"
    )


def color_of(cmap_name: str, value: float) -> str:
    """The hex color of ``value`` in [0, 1] on a matplotlib colormap."""
    r, g, b, _ = matplotlib.colormaps[cmap_name](float(np.clip(value, 0.0, 1.0)))
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def _dark(hex_color: str) -> bool:
    r, g, b = (int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.299 * r + 0.587 * g + 0.114 * b < 0.5


# ---------------------------------------------------------------------------------------
# Heatmap


@dataclass
class Heatmap:
    """A matrix of values, rows × columns, and what each cell's tooltip says."""

    title: str
    rows: Sequence[str]  # full layer names
    cols: Sequence[str]
    row_label: str  # "layer of A"
    col_label: str
    values: np.ndarray  # NaN = undefined
    tips: list[list[str]]  # the title of every cell
    vmin: float
    vmax: float
    reverse: bool = False  # distances: bright = alike, as for similarities
    scale_label: str = ""  # the color bar's name
    fmt: str = "{:.2f}"


def heatmap(spec: Heatmap, *, cell: float | None = None) -> Markup:
    """A heatmap as inline SVG: one ``<rect class="mark cell">`` with a title per cell.

    Undefined cells (NaN) are grey with "n/a"; values are written in the cells when a cell
    is large enough to hold them legibly. A color bar stands right of the matrix.
    """
    n_rows, n_cols = len(spec.rows), len(spec.cols)
    most = max(n_rows, n_cols, 1)
    size = cell or float(np.clip(420 / most, 14, 48))
    font = 12.0 if size >= 22 else max(8.0, size * 0.55)
    row_names = short_left(list(spec.rows), 20)
    col_names = short_left(list(spec.cols), 20)
    row_w = max((text_width(n, font) for n in row_names), default=10)
    col_w = max((text_width(n, font) for n in col_names), default=10)
    # the rotated column labels reach left of the first column: the margin holds them too
    left = max(22 + row_w + 8, 24 + col_w * 0.7071 - size / 2)
    top = 30.0
    diag = 0.7071
    bottom = 10 + col_w * diag + font * diag + 24
    grid_w, grid_h = size * n_cols, size * n_rows
    bar_x = left + grid_w + 10
    bar_w = 12.0
    right = bar_w + 10 + 30 + 16
    width = max(left + grid_w + right + 6, text_width(spec.title, 13) + 12)
    bar_h = max(grid_h, 120.0)  # a color bar tall enough for its ticks, even for one row
    row_span = max(grid_h, text_width(spec.row_label, 12))  # the rotated row axis label
    height = max(top + grid_h + bottom, top + bar_h + 8, top + row_span + 8)
    body: list[str] = [_text(6, 19, spec.title, size=13, weight="600")]
    body.append(
        f'<rect class="plot-area" x="{_n(left)}" y="{_n(top)}" width="{_n(grid_w)}" '
        f'height="{_n(grid_h)}" fill="none"/>'
    )
    span = spec.vmax - spec.vmin
    cmap = "viridis_r" if spec.reverse else "viridis"
    annotate = size >= 26
    value_font = min(12.0, size * 0.3)
    for i in range(n_rows):
        for j in range(n_cols):
            v = float(spec.values[i, j])
            x, y = left + j * size, top + i * size
            finite = math.isfinite(v)
            fill = color_of(cmap, (v - spec.vmin) / span) if finite else GREY
            body.append(
                f'<rect class="mark cell{"" if finite else " undefined"}" x="{_n(x)}" '
                f'y="{_n(y)}" width="{_n(size)}" height="{_n(size)}" fill="{fill}" '
                f'stroke="#fff" stroke-width="0.5"><title>{escape(spec.tips[i][j])}</title>'
                "</rect>"
            )
            if annotate:
                text = spec.fmt.format(v) if finite else "n/a"
                color = "#fff" if finite and _dark(fill) else INK
                body.append(
                    _text(
                        x + size / 2,
                        y + size / 2 + value_font * 0.35,
                        text,
                        size=value_font,
                        anchor="middle",
                        color=color,
                        cls="value",
                    )
                )
    for i, (name, full) in enumerate(zip(row_names, spec.rows, strict=True)):
        body.append(
            _text(
                left - 5,
                top + (i + 0.5) * size + font * 0.35,
                name,
                size=font,
                anchor="end",
                title=full if name != full else None,
            )
        )
    for j, (name, full) in enumerate(zip(col_names, spec.cols, strict=True)):
        x, y = left + (j + 0.5) * size + font * 0.3, top + grid_h + 8
        body.append(
            _text(
                x,
                y,
                name,
                size=font,
                anchor="end",
                rotate=-45,
                title=full if name != full else None,
            )
        )
    body.append(
        _text(left + grid_w / 2, height - 6, spec.col_label, size=12, anchor="middle", color=MUTED)
    )
    body.append(
        _text(
            12,
            top + row_span / 2,
            spec.row_label,
            size=12,
            anchor="middle",
            color=MUTED,
            rotate=-90,
        )
    )
    # the color bar (a legend: outside the matrix)
    steps = 48
    bar = ['<g class="legend colorbar">']
    for s in range(steps):
        frac = 1 - (s + 0.5) / steps
        bar.append(
            f'<rect x="{_n(bar_x)}" y="{_n(top + s * bar_h / steps)}" width="{_n(bar_w)}" '
            f'height="{_n(bar_h / steps + 0.4)}" fill="{color_of(cmap, frac)}"/>'
        )
    ticks = [t for t in MaxNLocator(nbins=4).tick_values(spec.vmin, spec.vmax)]
    ticks = [t for t in ticks if spec.vmin - 1e-9 <= t <= spec.vmax + 1e-9]
    for t in ticks:
        y = top + bar_h * (1 - (t - spec.vmin) / span)
        bar.append(
            f'<line x1="{_n(bar_x + bar_w)}" x2="{_n(bar_x + bar_w + 3)}" y1="{_n(y)}" '
            f'y2="{_n(y)}" stroke="{INK}"/>'
        )
        bar.append(_text(bar_x + bar_w + 5, y + 3.5, f"{t:.3g}", size=10))
    label = spec.scale_label
    if text_width(label, 11) > bar_h:
        label = label[: max(4, int(bar_h / (CHAR * 11)) - 1)] + "…"
    bar.append(
        _text(
            bar_x + bar_w + 40,
            top + bar_h / 2,
            label,
            size=11,
            anchor="middle",
            color=MUTED,
            rotate=-90,
            title=spec.scale_label,
        )
    )
    bar.append("</g>")
    body.extend(bar)
    return _svg(width, height, body, label=spec.title, kind="heatmap")


# ---------------------------------------------------------------------------------------
# Line charts


@dataclass
class Series:
    """One line: values at positions ``x``, each point with its tooltip.

    ``band`` is a shaded interval per point (a bootstrap interval), ``null`` a baseline per
    point drawn as a dotted band from its first to its second number; ``None`` entries are
    gaps. An undefined value (``None`` in ``y``) is a grey cross at the foot of the plot
    whose tooltip is its entry of ``tips`` (the reason).
    """

    name: str
    color: str
    x: Sequence[float]
    y: Sequence[float | None]
    tips: Sequence[str]
    dash: str | None = None
    band: Sequence[tuple[float, float] | None] | None = None
    null: Sequence[tuple[float, float] | None] | None = None
    null_tips: Sequence[str] | None = None


@dataclass
class Chart:
    """A line chart: axes, ticks, the series and the notes its legend adds."""

    title: str
    xlabel: str
    ylabel: str
    series: list[Series]
    xticks: Sequence[tuple[float, str, str]]  # (position, label, full name for the tooltip)
    ylim: tuple[float, float] | None = None
    log: bool = False
    legend: bool = True
    notes: list[tuple[str, str]] = field(default_factory=list)  # ("band" | "null", text)


def _segments(x: Sequence[float], y: Sequence[float | None]) -> list[list[tuple[float, float]]]:
    out: list[list[tuple[float, float]]] = [[]]
    for xi, yi in zip(x, y, strict=True):
        if yi is None or not math.isfinite(yi):
            if out[-1]:
                out.append([])
        else:
            out[-1].append((xi, yi))
    return [s for s in out if s]


def _band_segments(
    x: Sequence[float], band: Sequence[tuple[float, float] | None]
) -> list[list[tuple[float, float, float]]]:
    out: list[list[tuple[float, float, float]]] = [[]]
    for xi, b in zip(x, band, strict=True):
        if b is None:
            if out[-1]:
                out.append([])
        else:
            out[-1].append((xi, b[0], b[1]))
    return [s for s in out if s]


def _y_range(chart: Chart) -> tuple[float, float]:
    if chart.ylim is not None:
        return chart.ylim
    values: list[float] = []
    for s in chart.series:
        values += [v for v in s.y if v is not None and math.isfinite(v)]
        for extra in (s.band or []), (s.null or []):
            for b in extra:
                if b is not None:
                    values += [b[0], b[1]]
    if chart.log:
        values = [v for v in values if v > 0]
    if not values:
        return (1.0, 10.0) if chart.log else (0.0, 1.0)
    lo, hi = min(values), max(values)
    if chart.log:
        return (lo / 1.3, hi * 1.3) if hi > lo else (lo / 3, hi * 3)
    if hi <= lo:
        return lo - 0.5 * max(abs(lo), 1.0), hi + 0.5 * max(abs(hi), 1.0)
    pad = 0.06 * (hi - lo)
    return lo - pad, hi + pad


def _y_ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        decades = math.log10(hi) - math.log10(lo)
        subs = (1.0,) if decades > 2 else (1.0, 2.0, 5.0)
        ticks = LogLocator(base=10, subs=subs).tick_values(lo, hi)
    else:
        ticks = MaxNLocator(nbins=5).tick_values(lo, hi)
    return [float(t) for t in ticks if lo - 1e-12 <= t <= hi + 1e-12]


def _tick_text(t: float) -> str:
    if t != 0 and (abs(t) >= 1e5 or abs(t) < 1e-3):
        return f"{t:.0e}"
    return f"{t:.4g}"


def line_chart(chart: Chart, *, width: float = 560, plot_height: float = 230) -> Markup:
    """A line chart as inline SVG: every point a ``<circle class="mark point">`` with a title.

    Bands (bootstrap intervals) are shaded, null baselines dotted bands; the legend stands
    below the plot area, wrapped to the chart's width.
    """
    tick_font = 11.0
    xnames = [label for _, label, _ in chart.xticks]
    longest = max((text_width(n, tick_font) for n in xnames), default=0.0)
    rotate = longest > 0 and longest + 8 > (width - 80) / max(len(xnames), 1)
    lo, hi = _y_range(chart)
    yticks = _y_ticks(lo, hi, chart.log)
    ylabels = [_tick_text(t) for t in yticks]
    left = 26 + max((text_width(t, tick_font) for t in ylabels), default=12) + 8
    right = 14.0
    top = 30.0
    plot_w = width - left - right
    tick_h = (longest * 0.7071 + tick_font) if rotate else tick_font + 2
    xlabel_y = top + plot_height + 10 + tick_h + 16
    # the legend's entries, wrapped to the width
    entries: list[tuple[str, str]] = []  # (kind, text): kind "line:<i>" or a note kind
    if chart.legend:
        entries += [(f"line:{i}", s.name) for i, s in enumerate(chart.series)]
    entries += chart.notes
    rows: list[list[tuple[str, str, float]]] = [[]]
    used = 0.0
    for kind, text in entries:
        w = 30 + text_width(text, 11) + 14
        if rows[-1] and used + w > width - 12:
            rows.append([])
            used = 0.0
        rows[-1].append((kind, text, w))
        used += w
    rows = [r for r in rows if r]
    legend_top = xlabel_y + 10
    height = legend_top + 18 * len(rows) + 4
    xs = [p for p, _, _ in chart.xticks] or [0.0, 1.0]
    xmin, xmax = min(xs), max(xs)
    if xmax <= xmin:
        xmin, xmax = xmin - 0.5, xmax + 0.5
    xpad = 0.05 * (xmax - xmin)

    def px(x: float) -> float:
        return left + plot_w * (x - xmin + xpad) / (xmax - xmin + 2 * xpad)

    def py(y: float) -> float:
        if chart.log:
            y = max(y, lo)
            frac = (math.log10(y) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        else:
            frac = (y - lo) / (hi - lo)
        return top + plot_height * (1 - float(np.clip(frac, -0.02, 1.02)))

    body: list[str] = [_text(6, 19, chart.title, size=13, weight="600")]
    body.append(
        f'<rect class="plot-area" x="{_n(left)}" y="{_n(top)}" width="{_n(plot_w)}" '
        f'height="{_n(plot_height)}" fill="#fbfcfd" stroke="{GRID}"/>'
    )
    for t, label in zip(yticks, ylabels, strict=True):
        y = py(t)
        body.append(
            f'<line x1="{_n(left)}" x2="{_n(left + plot_w)}" y1="{_n(y)}" y2="{_n(y)}" '
            f'stroke="{GRID}"/>'
        )
        body.append(_text(left - 5, y + 4, label, size=tick_font, anchor="end", color=MUTED))
    for pos, label, full in chart.xticks:
        x = px(pos)
        body.append(
            f'<line x1="{_n(x)}" x2="{_n(x)}" y1="{_n(top + plot_height)}" '
            f'y2="{_n(top + plot_height + 4)}" stroke="{MUTED}"/>'
        )
        tip = full if full != label else None
        if rotate:
            body.append(
                _text(
                    x + 3,
                    top + plot_height + 12,
                    label,
                    size=tick_font,
                    anchor="end",
                    rotate=-45,
                    title=tip,
                )
            )
        else:  # centered under the tick, kept inside the figure
            half = text_width(label, tick_font) / 2
            cx = min(max(x, half + 2), width - half - 2)
            body.append(
                _text(cx, top + plot_height + 16, label, size=tick_font, anchor="middle", title=tip)
            )
    body.append(
        _text(left + plot_w / 2, xlabel_y, chart.xlabel, size=12, anchor="middle", color=MUTED)
    )
    ylabel = chart.ylabel
    ysize = float(np.clip(plot_height / (CHAR * max(len(ylabel), 1)), 10, 12))
    if text_width(ylabel, ysize) > plot_height:
        ylabel = ylabel[: max(4, int(plot_height / (CHAR * ysize)) - 1)] + "…"
    body.append(
        _text(
            12,
            top + plot_height / 2,
            ylabel,
            size=ysize,
            anchor="middle",
            color=MUTED,
            rotate=-90,
            title=chart.ylabel if ylabel != chart.ylabel else None,
        )
    )
    for s in chart.series:
        if s.null:
            for seg in _band_segments(s.x, s.null):
                upper = " ".join(f"{_n(px(x))},{_n(py(b))}" for x, _, b in seg)
                lower = " ".join(f"{_n(px(x))},{_n(py(a))}" for x, a, _ in reversed(seg))
                body.append(
                    f'<polygon class="mark null-band" points="{upper} {lower}" fill="{s.color}" '
                    f'fill-opacity="0.08" stroke="{s.color}" stroke-opacity="0.6" '
                    'stroke-dasharray="2 3"/>'
                )
        if s.band:
            for seg in _band_segments(s.x, s.band):
                upper = " ".join(f"{_n(px(x))},{_n(py(b))}" for x, _, b in seg)
                lower = " ".join(f"{_n(px(x))},{_n(py(a))}" for x, a, _ in reversed(seg))
                if len(seg) == 1:
                    x, a, b = seg[0]
                    body.append(
                        f'<line class="mark band" x1="{_n(px(x))}" x2="{_n(px(x))}" '
                        f'y1="{_n(py(a))}" y2="{_n(py(b))}" stroke="{s.color}" '
                        'stroke-opacity="0.45" stroke-width="6"/>'
                    )
                else:
                    body.append(
                        f'<polygon class="mark band" points="{upper} {lower}" '
                        f'fill="{s.color}" fill-opacity="0.2"/>'
                    )
    for rank, s in enumerate(chart.series):
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        for run in _segments(s.x, s.y):
            if len(run) > 1:
                points = " ".join(f"{_n(px(x))},{_n(py(y))}" for x, y in run)
                body.append(
                    f'<polyline class="mark line" points="{points}" fill="none" '
                    f'stroke="{s.color}" stroke-width="2"{dash}/>'
                )
        if s.null and s.null_tips:
            for x, base, tip in zip(s.x, s.null, s.null_tips, strict=True):
                if base is not None:
                    body.append(
                        f'<circle class="mark point null" cx="{_n(px(x))}" cy="{_n(py(base[0]))}" '
                        f'r="3" fill="#fff" stroke="{s.color}"><title>{escape(tip)}</title>'
                        "</circle>"
                    )
        for x, value, tip in zip(s.x, s.y, s.tips, strict=True):
            if value is not None and math.isfinite(value):
                body.append(
                    f'<circle class="mark point" cx="{_n(px(x))}" cy="{_n(py(value))}" r="4" '
                    f'fill="{s.color}" stroke="#fff"><title>{escape(tip)}</title></circle>'
                )
            else:
                cx, cy = px(x), top + plot_height - 7 - 11 * rank  # crosses stacked
                body.append(
                    f'<g class="mark point undefined"><title>{escape(tip)}</title>'
                    f'<rect x="{_n(cx - 6)}" y="{_n(cy - 6)}" width="12" height="12" '
                    'fill="#fff" fill-opacity="0"/>'
                    f'<path d="M{_n(cx - 4)},{_n(cy - 4)}L{_n(cx + 4)},{_n(cy + 4)}'
                    f'M{_n(cx - 4)},{_n(cy + 4)}L{_n(cx + 4)},{_n(cy - 4)}" '
                    f'stroke="{s.color}" stroke-width="2"/></g>'
                )
    if rows:
        body.append('<g class="legend">')
        for r, row in enumerate(rows):
            x = 8.0
            y = legend_top + 18 * r + 9
            for kind, text, w in row:
                if kind.startswith("line:"):
                    s = chart.series[int(kind.split(":")[1])]
                    dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
                    body.append(
                        f'<line x1="{_n(x)}" x2="{_n(x + 24)}" y1="{_n(y)}" y2="{_n(y)}" '
                        f'stroke="{s.color}" stroke-width="2"{dash}/>'
                        f'<circle cx="{_n(x + 12)}" cy="{_n(y)}" r="3.5" fill="{s.color}"/>'
                    )
                elif kind == "band":
                    body.append(
                        f'<rect x="{_n(x)}" y="{_n(y - 6)}" width="24" height="12" '
                        f'fill="{MUTED}" fill-opacity="0.25"/>'
                    )
                else:  # null
                    body.append(
                        f'<rect x="{_n(x)}" y="{_n(y - 6)}" width="24" height="12" '
                        f'fill="{MUTED}" fill-opacity="0.08" stroke="{MUTED}" '
                        'stroke-dasharray="2 3"/>'
                    )
                body.append(_text(x + 30, y + 4, text, size=11))
                x += w
        body.append("</g>")
    return _svg(width, height, body, label=chart.title, kind="chart")
