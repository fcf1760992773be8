"""write_report: one self-contained, offline, escaped HTML page and results.json beside it."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import torch
from markupsafe import escape

from subspaces.report import (
    ResultsFormatError,
    compute_results,
    load_results,
    render_report,
    write_report,
)
from subspaces.report._figures import _clean_svg, _depth_charts

from .conftest import EVIL_LAYER, EVIL_MODEL

# line charts: 3 of linear dimension, 1 of intrinsic dimension, 6 of neural collapse
N_GEOMETRY_CHARTS = 3 + 1 + 6


@pytest.fixture(scope="module")
def report_dir(results: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    write_report(results, out)
    return out


@pytest.fixture(scope="module")
def page(report_dir: Path) -> str:
    return (report_dir / "report.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def evil_page(evil_results: dict[str, Any]) -> str:
    return render_report(evil_results, title="<script>alert('title')</script>")


# --- files ----------------------------------------------------------------------------


def test_write_report_writes_report_and_results(
    tiny_results: dict[str, Any], tmp_path: Path
) -> None:
    path = write_report(tiny_results, tmp_path / "new" / "folder", title="T")
    assert path == tmp_path / "new" / "folder" / "report.html"
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.html", "results.json"]
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_results_json_beside_the_report_round_trips(
    results: dict[str, Any], report_dir: Path
) -> None:
    assert load_results(report_dir / "results.json") == results


def test_report_rebuilt_from_results_json_is_identical(report_dir: Path, page: str) -> None:
    rebuilt = render_report(load_results(report_dir / "results.json"))
    assert rebuilt == page  # figures are deterministic (fixed SVG id salts, no dates)


def test_write_report_refuses_results_that_break_the_schema(
    tiny_results: dict[str, Any], tmp_path: Path
) -> None:
    broken = {k: v for k, v in tiny_results.items() if k != "similarity"}
    with pytest.raises(ResultsFormatError, match="the key 'similarity' is missing"):
        write_report(broken, tmp_path)
    assert not (tmp_path / "report.html").exists()


# --- self-contained and offline ---------------------------------------------------------

_REFERENCE = re.compile(
    r"""(?:\b(?:src|href|xlink:href|action|poster|srcset|data)\s*=\s*["']?([^"'\s>]*))"""
    r"""|(?:url\(\s*["']?([^"')\s]*))|(?:@import\s+["']?([^"';\s]*))""",
    re.IGNORECASE,
)


def test_every_reference_is_local(page: str) -> None:
    references = {a or b or c for a, b, c in _REFERENCE.findall(page)}
    outside = {
        ref
        for ref in references
        if not (ref.startswith(("#", "data:image/png;base64,")) or ref == "results.json")
    }
    assert outside == set()
    assert not any(ref.startswith("data:") for ref in references)  # heatmaps are vector


def test_page_holds_no_url_at_all(page: str) -> None:
    assert "http://" not in page and "https://" not in page  # not even an SVG namespace


def test_page_has_no_script_and_a_strict_content_security_policy(page: str) -> None:
    assert re.search(r"<\s*script", page, re.IGNORECASE) is None
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    assert csp is not None and "default-src 'none'" in csp.group(1)
    assert "script-src" not in csp.group(1)  # so scripts fall back to 'none'


def test_page_has_no_external_fonts_or_stylesheets(page: str) -> None:
    assert "@font-face" not in page and "<link" not in page


# --- content ---------------------------------------------------------------------------


def test_one_inline_svg_per_figure(page: str, results: dict[str, Any]) -> None:
    heatmaps = sum(len(records) for records in results["similarity"].values())
    depth = sum(len(pair["charts"]) for pair in _depth_charts(results))
    assert page.count('<svg class="fig heatmap"') == heatmaps
    assert page.count('<svg class="fig chart"') == depth + N_GEOMETRY_CHARTS
    assert page.count('<svg class="fig mpl"') == 2  # spectra, one per model
    assert page.count("<svg") == heatmaps + depth + N_GEOMETRY_CHARTS + 2
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page and "<metadata>" not in page


def test_summary_table_has_one_row_per_layer(page: str, results: dict[str, Any]) -> None:
    summary = page.split('id="summary"')[1].split("</section>")[0]
    assert summary.count("<table>") == 2
    for heading in ("width d", "effective rank", "participation ratio", "TwoNN ID", "NC1"):
        assert f">{heading}</th>" in summary
    assert summary.count("<td>layer1</td>") == 2
    width = results["geometry"]["A"]["layer0"]["width"]
    assert f"<tr><td>layer0</td><td>{width}</td>" in summary


@pytest.mark.parametrize(
    "text",
    [
        "linear CKA: A × B",  # heatmap title
        "layer of A",  # heatmap axes
        "linear CKA  (range [0, 1], 1 = identical)",  # color bar: name and range
        "Procrustes distance  (range [0, 1.41], 0 = same shape)",
        "covariance spectrum by layer",
        "eigenvalue index i (1 = largest)",
        "(variance, activation units²)",
        "effective rank (dimensions)",
        "intrinsic dimension (dimensions)",
        "NC1 (unitless; 0 = collapsed)",
    ],
)
def test_figures_are_labeled(page: str, text: str) -> None:
    assert html.escape(text, quote=False) in page


def test_small_heatmaps_are_annotated(page: str, results: dict[str, Any]) -> None:
    value = results["similarity"]["linear_cka"][1]["matrix"][0][1]
    assert f">{value:.2f}</text>" in page


@pytest.mark.parametrize(("layers", "annotated"), [(13, True), (20, False)])
def test_heatmaps_are_annotated_while_cells_hold_a_legible_number(
    layers: int, annotated: bool
) -> None:
    x = torch.randn(30, 4, generator=torch.Generator().manual_seed(0))
    models = {"m": {f"l{i}": x + 0.1 * i * x.square() for i in range(layers)}}
    out = compute_results(models, measures=("linear_cka",), geometry=False, progress=False)
    page = render_report(out)
    assert page.count("<svg") == 1
    assert (">1.00</text>" in page) is annotated
    assert page.count('<rect class="mark cell') == layers * layers  # hover values in any case


def test_log_axes_are_labeled_in_plain_text(page: str) -> None:
    assert "mathdefault" not in page and "$" not in page


def test_missing_values_are_listed_with_their_reason(tmp_path: Path) -> None:
    x = torch.randn(30, 4, generator=torch.Generator().manual_seed(0))
    out = compute_results(
        {"m": {"ok": x, "dead": torch.zeros(30, 2)}}, measures=("linear_cka",), progress=False
    )
    page = render_report(out)
    assert 'id="missing"' in page
    assert "/geometry/m/dead/effective_rank" in page
    reason = out["missing"]["/geometry/m/dead/effective_rank"]
    assert f'class="missing" title="{escape(reason)}"' in page


def test_report_without_similarity(tiny_results: dict[str, Any]) -> None:
    geometry_only = {**tiny_results, "similarity": {}, "measure_info": {}}
    geometry_only["meta"] = {**tiny_results["meta"], "measures": []}
    page = render_report(geometry_only)
    assert page.count("<svg") == 1 + 3  # spectra, linear dimension (3 charts)
    assert 'id="similarity"' not in page


def test_report_without_geometry(tiny_results: dict[str, Any]) -> None:
    similarity_only = {k: v for k, v in tiny_results.items() if k != "geometry"}
    page = render_report(similarity_only)
    assert page.count("<svg") == 1 and "Per-layer geometry was not computed" in page


def test_default_title_names_the_models(page: str) -> None:
    assert "<title>subspaces report: A vs B</title>" in page


# --- escaping --------------------------------------------------------------------------


def test_script_layer_name_is_text_in_html_and_svg(evil_page: str) -> None:
    assert EVIL_LAYER not in evil_page
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f"<td>{escaped}</td>" in evil_page  # summary table
    assert f">{escaped}</text>" in evil_page  # SVG tick labels and legends
    assert re.search(r"<\s*script", evil_page, re.IGNORECASE) is None


class _Attributes(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.names |= {name for name, _ in attrs}


def test_event_handler_model_name_is_text(evil_page: str) -> None:
    assert EVIL_MODEL not in evil_page
    assert "<img" not in evil_page
    parsed = _Attributes()
    parsed.feed(evil_page)
    assert "img" not in parsed.tags
    assert {name for name in parsed.names if name.startswith("on")} == set()
    assert "&lt;img src=x onerror=" in evil_page


def test_title_is_escaped(evil_page: str) -> None:
    assert "<title>&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt;</title>" in evil_page


def test_dollar_signs_in_names_are_literal(evil_page: str) -> None:
    assert "price in $x$ &amp; &lt;b&gt;bold&lt;/b&gt;</text>" in evil_page


@pytest.mark.parametrize(
    ("svg", "match"),
    [
        ("<svg><script>alert(1)</script></svg>", "<script>"),
        ("<svg><foreignObject></foreignObject></svg>", "<foreignobject>"),
        ('<svg><g onload="alert(1)"></g></svg>', "onload"),
        ('<svg><image xlink:href="https://x.org/a.png"/></svg>', "referring to 'https://x.org"),
    ],
    ids=["script", "foreign-object", "handler", "external-image"],
)
def test_inlined_svg_is_checked(svg: str, match: str) -> None:
    with pytest.raises(RuntimeError, match=match):
        _clean_svg(svg)


# --- several models: distinct names, each model's labels (issue 9, item 5) --------------

LONG = "experiment-with-a-long-common-prefix-run-000"


@pytest.mark.parametrize(
    ("names", "short"),
    [
        (["a", "b"], ["a", "b"]),
        (["x" * 30 + "1", "y" * 30 + "1"], ["x" * 27 + "…", "y" * 27 + "…"]),
        (
            ["p" * 30 + "1", "p" * 30 + "2"],
            ["p" * 14 + "…" + "p" * 12 + "1", "p" * 14 + "…" + "p" * 12 + "2"],
        ),
        (
            ["q" * 30 + "1" + "q" * 29, "q" * 30 + "2" + "q" * 29],
            ["q" * 30 + "1" + "q" * 29, "q" * 30 + "2" + "q" * 29],
        ),
        (["same" * 8, "same" * 8], ["same" * 6 + "sam…", "same" * 6 + "sam…"]),
    ],
    ids=["short", "differ-at-start", "differ-at-end", "differ-in-middle", "one-name-twice"],
)
def test_names_cut_for_figures_stay_distinct(names: list[str], short: list[str]) -> None:
    from subspaces.report._figures import _short_names

    assert _short_names(names) == short


@pytest.fixture(scope="module")
def two_labelings() -> dict[str, Any]:
    """Two models whose names share a long start, each with its own labels."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(40, 5, generator=g), torch.randn(40, 5, generator=g)
    return compute_results(
        {f"{LONG}1/store": {"h": a}, f"{LONG}2/store": {"h": b}},
        labels={f"{LONG}1/store": torch.arange(40) % 2, f"{LONG}2/store": torch.arange(40) // 10},
        measures=("linear_cka",),
        intrinsic_dimension=False,
        progress=False,
    )


def test_models_named_alike_keep_distinct_names_in_figures(two_labelings: dict[str, Any]) -> None:
    page = render_report(two_labelings)
    for i in (1, 2):
        name = f"{LONG}{i}/store"  # cut in the middle: the start alone would merge them
        assert f">{name[:20]}…{name[-19:]}</text>" in page  # legends
        assert f"<caption>{name}</caption>" in page  # tables: the whole name


def test_labels_that_differ_are_a_warning_in_the_report(two_labelings: dict[str, Any]) -> None:
    page = render_report(two_labelings)
    assert '<div class="warnings" role="alert">' in page
    assert f"the labels of {LONG}1/store and {LONG}2/store differ on 30 of 40 inputs" in page


def test_the_report_names_each_models_labels(two_labelings: dict[str, Any]) -> None:
    page = render_report(two_labelings)
    assert (
        f"<dd>each model its own: {LONG}1/store: 2 classes (20, 20 samples); "
        f"{LONG}2/store: 4 classes (10, 10, 10, 10 samples)</dd>"
    ) in page
    assert "Neural collapse by layer (each model with its own labels)" in page


def test_results_without_per_model_labels_still_render() -> None:
    x = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
    results = compute_results(
        {"m": {"h": x}},
        labels=torch.arange(40) % 2,
        measures=(),
        intrinsic_dimension=False,
        progress=False,
    )
    meta = {k: v for k, v in results["meta"].items() if k not in ("labels", "warnings")}
    page = render_report({**results, "meta": meta})  # as written before labels per model
    assert "<dd>2 classes (20, 20 samples)</dd>" in page and 'role="alert"' not in page
