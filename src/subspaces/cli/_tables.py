"""Tables that stay readable at 80 columns, and the summary of what was undefined."""

from __future__ import annotations

import re
import shutil
import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.text import Text

from subspaces.cli._app import out

if TYPE_CHECKING:
    pass

# ----------------------------------------------------------------------------- tables

_LABEL_WIDTH = 12  # a column label longer than this is shortened or wrapped
_SEPARATOR = re.compile(r"[^._/:\- ]*[._/:\- ]?")


def _width() -> int:
    """The terminal's width (``COLUMNS`` first; 80 when output is not a terminal)."""
    return max(40, shutil.get_terminal_size((80, 24)).columns)


def _common_prefix(strings: Sequence[str]) -> str:
    """The longest string that every string starts with, compared character by character."""
    first, last = min(strings), max(strings)
    size = next(
        (i for i, (x, y) in enumerate(zip(first, last, strict=False)) if x != y), len(first)
    )
    return first[:size]


def _affixes(labels: Sequence[str]) -> tuple[str, str]:
    """The prefix and suffix that every label shares, cut at a separator (``.``, ``_``,
    ``/``, ``:``, ``-``), when what is left of each label is distinct and not empty; else
    ``("", "")``. ``encoder.layer.10.attention.output`` ... -> ``("encoder.layer.",
    ".attention.output")``."""
    if len(labels) < 2:
        return "", ""
    prefix = _common_prefix(labels)
    prefix = prefix[: max(prefix.rfind(c) for c in "._/:-") + 1]
    rests = [label[len(prefix) :] for label in labels]
    suffix = _common_prefix([rest[::-1] for rest in rests])[::-1]
    cuts = [i for i, c in enumerate(suffix) if c in "._/:-"]
    suffix = suffix[cuts[0] :] if cuts else ""
    short = [rest[: len(rest) - len(suffix)] for rest in rests]
    if not all(short) or len(set(short)) < len(short):
        return "", ""
    return prefix, suffix


def _wrap(label: str, width: int) -> list[str]:
    """A label over lines of at most ``width`` characters, broken after separators
    (``encoder.`` / ``layer.10.`` / ``output``) and inside a part only when it is longer than
    a line."""
    lines: list[str] = []
    line = ""
    for part in (p for p in _SEPARATOR.findall(label) if p):
        while len(part.rstrip()) > width:
            if line:
                lines.append(line.rstrip())
                line = ""
            lines.append(part[:width])
            part = part[width:]
        if line and len(line) + len(part.rstrip()) > width:
            lines.append(line.rstrip())
            line = ""
        line += part
    if line.strip() or not lines:
        lines.append(line.rstrip())
    return lines


def _table(
    rows: Sequence[str],
    columns: Sequence[str],
    cells: Sequence[Sequence[str]],
    *,
    width: int,
    shorten_columns: bool = True,
) -> list[str]:
    """A table as lines of at most ``width`` characters (unless one column and the row
    labels alone are wider), every label readable in full.

    Labels longer than a column (row labels: than a third of the width) lose the prefix and
    suffix they all share, shown once above the table (``columns:
    encoder.layer.<column>.attention.output``; column labels only with ``shorten_columns``),
    then wrap at separators; the columns are split into even blocks that fit the width, each
    block repeating the row labels.
    """
    lines: list[str] = []
    value_width = max((len(cell) for row in cells for cell in row), default=1)
    if shorten_columns and max(map(len, columns), default=0) > max(_LABEL_WIDTH, value_width):
        prefix, suffix = _affixes(columns)
        if prefix or suffix:
            lines.append(f"columns: {prefix}<column>{suffix}")
            columns = [c[len(prefix) : len(c) - len(suffix)] for c in columns]
    if max(map(len, rows), default=0) > width // 3:
        prefix, suffix = _affixes(rows)
        if prefix or suffix:
            lines.append(f"rows: {prefix}<row>{suffix}")
            rows = [r[len(prefix) : len(r) - len(suffix)] for r in rows]
    widths = [  # a column: its values, its label up to a line of _LABEL_WIDTH (or a word)
        max(
            max((len(row[j]) for row in cells), default=1),
            min(len(label), max([_LABEL_WIDTH, *map(len, label.split())])),
        )
        for j, label in enumerate(columns)
    ]
    row_width = min(max(map(len, rows), default=1), max(_LABEL_WIDTH, width // 3))
    row_lines = [_wrap(row, row_width) for row in rows]
    for n, block in enumerate(_blocks(widths, width - row_width)):
        heads = [_wrap(columns[j], widths[j]) for j in block]
        height = max(map(len, heads))
        if n:
            lines.append("")
        for k in range(height):
            parts = [" " * row_width]
            for j, head in zip(block, heads, strict=True):
                at = k - (height - len(head))  # labels sit on the rule
                parts.append((head[at] if at >= 0 else "").rjust(widths[j]))
            lines.append("  ".join(parts).rstrip())
        lines.append("─" * (row_width + sum(widths[j] + 2 for j in block)))
        for i, labels in enumerate(row_lines):
            for k, label in enumerate(labels):
                values = [(cells[i][j] if k == 0 else "").rjust(widths[j]) for j in block]
                lines.append("  ".join([label.ljust(row_width), *values]).rstrip())
    return lines


def _blocks(widths: Sequence[int], room: int) -> list[list[int]]:
    """The columns (by index, in order) in as few blocks as fit ``room`` characters (two
    spaces before each column; at least one column a block), as even in count as fit."""
    fitted: list[list[int]] = []
    used = room
    for j, size in enumerate(widths):
        if used + size + 2 > room and (not fitted or fitted[-1]):
            fitted.append([])
            used = 0
        fitted[-1].append(j)
        used += size + 2
    count = len(fitted)
    per = -(-len(widths) // count) if widths else 1
    even = [list(range(i, min(i + per, len(widths)))) for i in range(0, len(widths), per)]
    if len(even) == count and all(sum(widths[j] + 2 for j in b) <= room for b in even):
        return even
    return fitted


def _print_table(title: str, lines: Sequence[str]) -> None:
    out.print(Text(title, style="bold"))
    for line in lines:
        out.print(line)
    out.print()


def _missing_cells(
    results: Mapping[str, Any], prefix: Sequence[str | int]
) -> list[tuple[tuple[str, ...], str]]:
    """The undefined values under a place of the results (``["similarity", name, 1,
    "matrix"]``): (the keys below it, the reason) per entry of ``results["missing"]``."""
    from subspaces.report import json_pointer

    head = json_pointer(*prefix) + "/"
    found = []
    for pointer, reason in results.get("missing", {}).items():
        if pointer.startswith(head):
            keys = tuple(
                key.replace("~1", "/").replace("~0", "~") for key in pointer[len(head) :].split("/")
            )
            found.append((keys, reason))
    return found


def _print_summary(
    missing: Sequence[tuple[str, str]], results: Mapping[str, Any], measures: Sequence[str]
) -> None:
    """After the tables: the undefined values grouped by reason (one line per reason with
    its count and measures), then the measures' caveats and the measures left out."""
    if missing:
        groups: dict[str, list[str]] = {}
        for what, reason in missing:
            groups.setdefault(reason, []).append(what)
        out.print(Text("undefined (shown as -):", style="bold"))
        for reason, whats in groups.items():
            named = ", ".join(dict.fromkeys(whats))
            count = f"{len(whats)} value{'s' if len(whats) > 1 else ''}"
            _print_item(f"{count} ({named}): {reason}")
    caveats = [
        (name, caveat)
        for name in measures
        for caveat in results.get("measure_info", {}).get(name, {}).get("caveats", [])
    ]
    if caveats:
        out.print(Text("caveats:", style="bold"))
        for name, caveat in caveats:
            _print_item(f"{name}: {caveat}")
    omitted = results.get("meta", {}).get("omitted_measures", {})
    if omitted:
        out.print(Text("left out:", style="bold"))
        for name, reason in omitted.items():
            _print_item(f"{name}: {reason}")


def _print_item(text: str) -> None:
    """An item of a summary, indented, wrapped at the terminal's width between words."""
    out.print(
        textwrap.fill(
            text,
            width=_width(),
            initial_indent="  ",
            subsequent_indent="    ",
            break_long_words=False,
            break_on_hyphens=False,
        )
    )
