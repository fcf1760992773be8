"""The report's layout in headless Chromium at 900 and 1400 px: no empty figure, no legend
over the data, no figure wider than the page (issue 11, section 3).

The shipped page runs no script (its Content-Security-Policy forbids any). To measure the
rendered page, the test writes a copy without that policy and with a small inline script
that reads every figure's ``getBoundingClientRect`` (with every ``<details>`` opened) and
writes the measurements into the DOM, which ``--dump-dom`` returns. A screenshot of each
width is kept beside the page for a person to look at.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest

from subspaces.report import write_report

from .test_browser import shots
from .test_html_v2 import v2_results

pytestmark = pytest.mark.skipif(
    shots.find_chromium() is None,
    reason="headless Chromium is not installed (Debian: apt-get install chromium); "
    "the report's browser checks need it",
)

WIDTHS = (900, 1400)

PROBE = """<script>
(function () {
  document.querySelectorAll("details").forEach(function (d) { d.open = true; });
  function box(e) {
    var r = e.getBoundingClientRect();
    return [r.left, r.top, r.right, r.bottom];
  }
  var out = {page: document.documentElement.clientWidth,
             scroll: document.documentElement.scrollWidth,
             main: box(document.querySelector("main")), figures: []};
  document.querySelectorAll("svg").forEach(function (svg) {
    if (svg.parentElement.closest("svg")) { return; }
    var outer = svg.getBoundingClientRect();
    var clipped = Array.from(svg.querySelectorAll("text")).filter(function (t) {
      var r = t.getBoundingClientRect();
      return r.width > 0 && (r.left < outer.left - 1 || r.right > outer.right + 1 ||
                             r.top < outer.top - 1 || r.bottom > outer.bottom + 1);
    }).map(function (t) { return t.textContent; });
    out.figures.push({
      clipped: clipped,
      label: svg.getAttribute("aria-label") || svg.querySelector("title, text") &&
             (svg.querySelector("title, text").textContent || ""),
      box: box(svg),
      legends: Array.from(svg.querySelectorAll('.legend, [id^="legend"]')).map(box),
      plots: Array.from(svg.querySelectorAll('.plot-area, [id^="plot-area"]')).map(box),
      marks: svg.querySelectorAll('.mark, [id^="data-"]').length
    });
  });
  var pre = document.createElement("pre");
  pre.id = "layout-probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""


def _probe_copy(page: Path) -> Path:
    """A copy of ``page`` without its CSP and with the measuring script (test only)."""
    text = page.read_text(encoding="utf-8")
    text, removed = re.subn(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text)
    assert removed == 1  # the shipped page has its policy
    probe = page.with_name("probe.html")
    probe.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    return probe


def _measure(page: Path, width: int) -> dict[str, Any]:
    shot = page.with_name(f"report-{width}.png")
    run = shots.open_in_chromium(_probe_copy(page), shot, width=width, height=3000)
    found = re.search(r'<pre id="layout-probe">(.*?)</pre>', run.dom, re.DOTALL)
    assert found is not None, "the measuring script did not run"
    out = json.loads(html.unescape(found.group(1)))
    out["console"] = run.console
    out["screenshot"] = str(shot)
    return out


@pytest.fixture(scope="module")
def pages(results: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two reports: the hand-built version-2 document and the computed one of conftest."""
    out = {}
    for name, doc in (("v2", v2_results()), ("computed", results)):
        folder = tmp_path_factory.mktemp(f"layout-{name}")
        out[name] = write_report(doc, folder, title=f"layout check: {name}")
    return out


@pytest.fixture(scope="module", params=[(p, w) for p in ("v2", "computed") for w in WIDTHS])
def layout(request: pytest.FixtureRequest, pages: dict[str, Path]) -> dict[str, Any]:
    name, width = request.param
    return _measure(pages[name], width)


def _overlap(a: list[float], b: list[float], slack: float = 1.0) -> bool:
    """Whether two boxes (left, top, right, bottom) overlap by more than ``slack`` px."""
    return min(a[2], b[2]) - max(a[0], b[0]) > slack and min(a[3], b[3]) - max(a[1], b[1]) > slack


def test_the_probe_page_logs_nothing(layout: dict[str, Any]) -> None:
    assert layout["console"] == []


def test_every_figure_has_a_size_and_data(layout: dict[str, Any]) -> None:
    figures = layout["figures"]
    assert len(figures) >= 10
    empty = [
        f["label"]
        for f in figures
        if f["box"][2] - f["box"][0] < 50 or f["box"][3] - f["box"][1] < 50 or f["marks"] < 1
    ]
    assert empty == []


def test_every_figure_fits_the_page(layout: dict[str, Any]) -> None:
    right = layout["main"][2]
    wide = [f["label"] for f in layout["figures"] if f["box"][2] > right + 1 or f["box"][0] < 0]
    assert wide == []


def test_nothing_is_wider_than_the_window(layout: dict[str, Any]) -> None:
    assert layout["scroll"] <= layout["page"]


def test_no_text_is_cut_off_by_its_figure(layout: dict[str, Any]) -> None:
    assert {f["label"]: f["clipped"] for f in layout["figures"] if f["clipped"]} == {}


def test_every_figure_has_a_plot_area(layout: dict[str, Any]) -> None:
    assert [f["label"] for f in layout["figures"] if not f["plots"]] == []


def test_no_legend_covers_a_plot(layout: dict[str, Any]) -> None:
    covering = [
        f["label"]
        for f in layout["figures"]
        for legend in f["legends"]
        for plot in f["plots"]
        if _overlap(legend, plot)
    ]
    assert covering == []


def test_no_two_legends_overlap(layout: dict[str, Any]) -> None:
    overlapping = [
        f["label"]
        for f in layout["figures"]
        for i, a in enumerate(f["legends"])
        for b in f["legends"][i + 1 :]
        if _overlap(a, b)
    ]
    assert overlapping == []


def test_figures_do_not_overlap_each_other(layout: dict[str, Any]) -> None:
    boxes = [f["box"] for f in layout["figures"]]
    overlapping = [
        (layout["figures"][i]["label"], layout["figures"][j]["label"])
        for i in range(len(boxes))
        for j in range(i + 1, len(boxes))
        if _overlap(boxes[i], boxes[j])
    ]
    assert overlapping == []


def test_screenshots_show_the_figures(layout: dict[str, Any]) -> None:
    not_white, colors = shots.screenshot_stats(Path(layout["screenshot"]))
    assert not_white > 0.05 and colors > 200


def test_the_probe_sees_a_legend_over_a_plot_and_a_cut_label(tmp_path: Path) -> None:
    # the checks above can fail: a legend inside its plot area, a label past the edge
    bad = (
        '<svg class="fig" viewBox="0 0 200 100" width="200" height="100">'
        '<rect class="plot-area" x="10" y="10" width="150" height="80" fill="none"/>'
        '<circle class="mark" cx="50" cy="50" r="4"/>'
        '<g class="legend"><rect x="100" y="20" width="50" height="20"/></g>'
        '<text x="170" y="60" font-size="12">a label cut by the edge</text></svg>'
    )
    page = tmp_path / "report.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'\"></head><body><main>" + bad + "</main></body></html>",
        encoding="utf-8",
    )
    (figure,) = _measure(page, 900)["figures"]
    assert figure["marks"] == 1
    assert _overlap(figure["legends"][0], figure["plots"][0])
    assert figure["clipped"] == ["a label cut by the edge"]
