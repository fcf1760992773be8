"""The report drawn from a results document of version 2 (issue 11, section 3).

The document is built by hand (:func:`v2_results`): two models of seven layers, a constant
layer whose every cell carries the one cause-level reason, a solver failure in one cell,
depth curves with bootstrap intervals and null baselines, caveats, an omitted default
measure, the resolved options and the stores the layers came from.
"""

from __future__ import annotations

import copy
import math
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from subspaces.report import SCHEMA_VERSION, json_pointer, render_report
from subspaces.report._figures import _depth_charts
from subspaces.report.html import _missing_groups
from subspaces.report.schema import _SPECTRUM_SCALARS

LAYERS = ["embeddings", *(f"encoder.layer.{i}.output.dense" for i in range(6))]
CONSTANT = "layer 'embeddings' of model 'cls' is constant: every input gives the same vector"
SOLVER = "NumericalError: linalg.svd failed to converge on mean × cls (procrustes_distance)"
MODEL_PATH = (
    "/home/someone/models/sentence-transformers/all-MiniLM-L6-v2/snapshots/"
    "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"
)
MEASURES = ["linear_cka", "procrustes_distance", "mutual_knn"]
INFO = {
    "linear_cka": {"label": "linear CKA", "kind": "similarity", "range": [0.0, 1.0]},
    "procrustes_distance": {
        "label": "Procrustes distance",
        "kind": "distance",
        "range": [0.0, math.sqrt(2.0)],
    },
    "mutual_knn": {"label": "mutual k-NN", "kind": "similarity", "range": [0.0, 1.0]},
}
OPTIONS = {"linear_cka": {"debiased": False}, "procrustes_distance": {}, "mutual_knn": {"k": 10}}


def _value(measure: str, i: int, j: int, same: bool) -> float:
    """Alike near the diagonal; two models' corresponding layers drift apart with depth."""
    alike = math.exp(-abs(i - j) / 3.0) * (1.0 if same else 0.95 - 0.05 * max(i, j))
    if measure == "procrustes_distance":
        return round(math.sqrt(2.0) * (1.0 - alike) * 0.8, 6)
    if measure == "mutual_knn":
        return round(0.7 * alike, 6)
    return round(alike, 6)


def v2_results() -> dict[str, Any]:
    """A realistic results document of version 2 (the contract in issue 11)."""
    models = ["mean", "cls"]
    missing: dict[str, str] = {}
    similarity: dict[str, list[dict[str, Any]]] = {}
    depth: dict[str, list[dict[str, Any]]] = {}
    pairs = [("mean", "mean"), ("mean", "cls"), ("cls", "cls")]
    for name in MEASURES:
        records = []
        for r, (xm, ym) in enumerate(pairs):
            matrix: list[list[float | None]] = []
            for i in range(len(LAYERS)):
                row: list[float | None] = []
                for j in range(len(LAYERS)):
                    dead = (xm == "cls" and i == 0) or (ym == "cls" and j == 0)
                    failed = name == "procrustes_distance" and (xm, ym, i, j) == (
                        "mean",
                        "cls",
                        3,
                        4,
                    )
                    pointer = json_pointer("similarity", name, r, "matrix", i, j)
                    if dead or failed:
                        row.append(None)
                        missing[pointer] = CONSTANT if dead else SOLVER
                    else:
                        row.append(_value(name, i, j, xm == ym))
                matrix.append(row)
            records.append(
                {
                    "x_model": xm,
                    "y_model": ym,
                    "x_layers": LAYERS,
                    "y_layers": LAYERS,
                    "matrix": matrix,
                }
            )
        similarity[name] = records
        values: list[float | None] = []
        ci: list[list[float] | None] = []
        null: list[list[float] | None] = []
        for i in range(len(LAYERS)):
            if i == 0:
                for part in ("value", "ci", "null"):
                    missing[json_pointer("depth", name, 0, part, i)] = CONSTANT
                values.append(None)
                ci.append(None)
                null.append(None)
                continue
            v = _value(name, i, i, False)
            values.append(v)
            ci.append([round(v - 0.03, 6), round(v + 0.025, 6)])
            base = 1.25 if name == "procrustes_distance" else 0.02
            null.append([base, base + 0.04])
        depth[name] = [
            {
                "x_model": "mean",
                "y_model": "cls",
                "x_layers": LAYERS,
                "y_layers": LAYERS,
                "depth": [i / 6 for i in range(7)],
                "value": values,
                "ci": ci,
                "null": null,
            }
        ]
    geometry: dict[str, dict[str, Any]] = {}
    scalars = _SPECTRUM_SCALARS
    for m, model in enumerate(models):
        geometry[model] = {}
        for i, layer in enumerate(LAYERS):
            dead = model == "cls" and i == 0
            values_g: dict[str, Any] = {"width": 384}
            for k, key in enumerate(scalars):
                if dead and key != "total_variance":
                    values_g[key] = None
                    missing[json_pointer("geometry", model, layer, key)] = CONSTANT
                else:
                    values_g[key] = 0.0 if dead else round(10.0 + 3 * i + k + m, 3)
            if dead:
                values_g["spectrum"] = None
                missing[json_pointer("geometry", model, layer, "spectrum")] = CONSTANT
            else:
                eig = [round(5.0 / (t + 1) ** (1.0 + 0.1 * i), 6) for t in range(20)]
                total = sum(eig)
                values_g["spectrum"] = {
                    "eigenvalues": eig,
                    "explained_variance_ratio": [e / total for e in eig],
                    "n_eigenvalues": 384,
                }
            geometry[model][layer] = values_g
    measure_info = {name: {**INFO[name], "caveats": []} for name in MEASURES}
    measure_info["linear_cka"]["caveats"] = [
        "n = 120 samples against widths 384: linear CKA is biased upward when n is small "
        "against d (try debiased=True)"
    ]
    return {
        "version": SCHEMA_VERSION,
        "meta": {
            "subspaces_version": "0.1.0",
            "created": "2026-12-08T01:00:00+00:00",
            "n_samples": 120,
            "models": models,
            "layers": {model: list(LAYERS) for model in models},
            "measures": list(MEASURES),
            "measure_options": copy.deepcopy(OPTIONS),
            "options": {
                "n_samples": 120,
                "dtype": {"mean": "float32", "cls": "float32"},
                "measure_options": copy.deepcopy(OPTIONS),
                "mle_k": 20,
                "top_eigenvalues": 100,
                "device": "cpu",
                "bootstrap": {
                    "resamples": 200,
                    "level": 0.95,
                    "seed": 0,
                    "interval": "value ± t · standard deviation of the draws",
                    "half_sample": ["mutual_knn"],
                },
                "null": {"permutations": 20, "level": 0.95, "seed": 1},
            },
            "sources": {
                "mean": {
                    "path": "minilm/",
                    "model": MODEL_PATH,
                    "pooling": "mean",
                    "data": "plays.txt",
                    "dtype": "float32",
                },
                "cls": {
                    "path": "minilm_cls/",
                    "model": MODEL_PATH,
                    "pooling": "first",
                    "data": "plays.txt",
                    "dtype": "float32",
                },
            },
            "omitted_measures": {
                "mean_cca": "n = 120 samples ≤ width 384: every canonical correlation is 1 "
                "whatever the data"
            },
            "geometry": True,
            "intrinsic_dimension": False,
            "mle_k": 20,
            "top_eigenvalues": 100,
            "has_labels": False,
            "device": "cpu",
        },
        "measure_info": measure_info,
        "similarity": similarity,
        "depth": depth,
        "geometry": geometry,
        "missing": missing,
    }


# --- parsing helpers ---------------------------------------------------------------------


class _Marks(HTMLParser):
    """Every element with its attributes and the text of the <title> it holds directly."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[dict[str, Any]] = []
        self.stack: list[dict[str, Any]] = []
        self.in_title: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = {"tag": tag, "attrs": dict(attrs), "title": None}
        self.elements.append(element)
        if tag == "title" and self.stack:
            self.in_title = self.stack[-1]
        if tag not in ("meta", "br", "img", "input", "link"):
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append({"tag": tag, "attrs": dict(attrs), "title": None})

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = None
        while self.stack:
            if self.stack.pop()["tag"] == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.in_title is not None:
            self.in_title["title"] = (self.in_title["title"] or "") + data


def _elements(page: str) -> list[dict[str, Any]]:
    parser = _Marks()
    parser.feed(page)
    return parser.elements


def _with_class(page: str, *names: str) -> list[dict[str, Any]]:
    return [
        e for e in _elements(page) if set(names) <= set((e["attrs"].get("class") or "").split())
    ]


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return v2_results()


@pytest.fixture(scope="module")
def v2_page(doc: dict[str, Any]) -> str:
    return render_report(doc, title="MiniLM pair")


def _section(page: str, name: str) -> str:
    return page.split(f'<section id="{name}">')[1].split("</section>")[0]


# --- links ---------------------------------------------------------------------------------


def _dangling(page: str) -> set[str]:
    ids = set(re.findall(r'\sid="([^"]+)"', page))
    targets = set(re.findall(r'href="#([^"]*)"', page))
    return targets - ids


def test_every_link_in_the_v2_page_has_its_target(v2_page: str) -> None:
    assert re.findall(r'href="#', v2_page)  # the page does link within itself
    assert _dangling(v2_page) == set()


def test_every_link_in_the_computed_page_has_its_target(results: dict[str, Any]) -> None:
    assert _dangling(render_report(results)) == set()


def test_every_link_in_a_page_without_geometry_or_missing_has_its_target(
    tiny_results: dict[str, Any],
) -> None:
    bare = {k: v for k, v in tiny_results.items() if k != "geometry"}
    page = render_report(bare)
    assert _dangling(page) == set()
    assert 'href="#missing"' not in page and 'href="#depth"' not in page


# --- hover values --------------------------------------------------------------------------


def test_every_heatmap_cell_has_a_title_with_its_value(doc: dict[str, Any], v2_page: str) -> None:
    cells = _with_class(v2_page, "mark", "cell")
    assert len(cells) == 3 * 3 * 7 * 7  # measures × pairs of models × 7 × 7 layers
    titles = [c["title"] for c in cells]
    assert all(titles)
    record = doc["similarity"]["linear_cka"][1]  # mean × cls, cross-model
    value = record["matrix"][2][3]
    tip = f"mean / {LAYERS[2]}  ×  cls / {LAYERS[3]}\nlinear CKA = {value:.4g}"
    assert tip in titles


def test_undefined_cells_are_grey_with_their_reason(v2_page: str) -> None:
    undefined = _with_class(v2_page, "mark", "cell", "undefined")
    assert len(undefined) == 3 * (7 + 13) + 1  # the constant layer's cells, one solver failure
    assert {c["attrs"]["fill"] for c in undefined} == {"#d9d9d9"}
    assert sum(CONSTANT in c["title"] for c in undefined) == 3 * (7 + 13)
    assert sum(SOLVER in c["title"] for c in undefined) == 1


def test_every_curve_point_has_a_title_with_its_value(doc: dict[str, Any], v2_page: str) -> None:
    depth = _section(v2_page, "depth")
    points = _with_class(depth, "mark", "point")
    assert points and all(p["title"] for p in points)
    record = doc["depth"]["linear_cka"][0]
    value, (lo, hi) = record["value"][3], record["ci"][3]
    wanted = [
        p["title"]
        for p in points
        if p["title"].startswith(f"linear CKA, mean / {LAYERS[3]}  ↔  cls / {LAYERS[3]}")
    ]
    assert len(wanted) == 1
    assert f"= {value:.4g}" in wanted[0]
    assert f"95% CI [{lo:.3g}, {hi:.3g}]" in wanted[0]
    assert "null mean 0.02" in wanted[0]
    # 3 measures × 6 defined values, their 6 null baselines, and 1 undefined point each
    assert len(points) == 3 * (6 + 6 + 1)
    crosses = _with_class(depth, "point", "undefined")
    assert len(crosses) == 3 and all(CONSTANT in c["title"] for c in crosses)


def test_every_geometry_curve_point_has_a_title(v2_page: str) -> None:
    points = _with_class(_section(v2_page, "dimension"), "mark", "point")
    assert len(points) == 3 * 2 * 7  # 3 panels × 2 models × 7 layers
    assert all(p["title"] for p in points)
    assert any(
        p["title"].startswith("cls, layer embeddings: undefined. " + CONSTANT) for p in points
    )


def test_long_layer_names_are_cut_with_the_full_name_in_the_title(v2_page: str) -> None:
    heatmap = v2_page.split('class="fig heatmap"')[1]
    assert f"<title>{LAYERS[3]}</title>…layer.2.output…</text>" in heatmap
    assert ">embeddings</text>" in heatmap  # short names stay whole


def test_heatmaps_scale_with_the_page(v2_page: str) -> None:
    for svg in re.findall(r'<svg class="fig heatmap"[^>]*>', v2_page):
        assert re.search(r'viewBox="0 0 \d+ \d+"', svg)
    assert "figure svg { max-width: 100%; height: auto;" in v2_page


# --- depth ---------------------------------------------------------------------------------


def test_depth_comes_first_with_bands_and_null(v2_page: str) -> None:
    order = [
        m.start()
        for m in (
            re.search(f'<section id="{s}">', v2_page) for s in ("depth", "similarity", "summary")
        )
        if m
    ]
    assert len(order) == 3 and order == sorted(order)
    depth = _section(v2_page, "depth")
    # similarity measures in [0, 1] share a chart; the distance has its own axis
    assert depth.count('class="fig chart"') == 2
    assert "mean × cls: linear CKA, mutual k-NN" in depth
    assert "mean × cls: Procrustes distance" in depth
    assert len(_with_class(depth, "mark", "band")) == 3
    assert len(_with_class(depth, "mark", "null-band")) == 3
    assert "95% bootstrap interval (200 resamples)" in depth
    assert "null: rows permuted (20×), mean to 95% quantile" in depth
    # a distance's null lies on the side of "alike", its lower quantile (1 - level)
    assert "null: rows permuted (20×), mean to 5% quantile" in depth


def test_depth_without_intervals_or_null_draws_lines_only(doc: dict[str, Any]) -> None:
    plain = copy.deepcopy(doc)
    for records in plain["depth"].values():
        for record in records:
            record["ci"] = record["null"] = None
    plain["meta"]["options"]["bootstrap"] = plain["meta"]["options"]["null"] = None
    (pair,) = _depth_charts(plain)
    svg = "".join(pair["charts"])
    assert "mark point" in svg and "mark band" not in svg and "null-band" not in svg
    assert "bootstrap interval" not in svg


def test_depth_of_models_of_different_depths_names_both_layers(doc: dict[str, Any]) -> None:
    uneven = copy.deepcopy(doc)
    record = uneven["depth"]["linear_cka"][0]
    record["y_layers"] = ["a", "a", "b", "b", "c", "c", "d"]
    (pair,) = _depth_charts(uneven)
    assert "…layer.2.output… ↔ b" in pair["charts"][0] or "↔ b</text>" in pair["charts"][0]


def test_a_report_without_depth_has_no_depth_section(results: dict[str, Any]) -> None:
    no_depth = {k: v for k, v in results.items() if k != "depth"}
    page = render_report(no_depth)
    assert 'id="depth"' not in page and 'href="#depth"' not in page


# --- self-comparisons ------------------------------------------------------------------------


def test_cross_model_heatmaps_first_and_self_comparisons_folded(v2_page: str) -> None:
    similarity = _section(v2_page, "similarity")
    block = similarity.split('id="measure-linear_cka"')[1].split('id="measure-')[0]
    shown, folded = block.split("<details>")
    assert "linear CKA: mean × cls" in shown
    assert "linear CKA: mean × mean" not in shown
    assert "Each model with itself (2 heatmaps)" in folded
    assert "linear CKA: mean × mean" in folded and "linear CKA: cls × cls" in folded


# --- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "<dt>samples n</dt><dd>120 inputs, the same for every layer</dd>",
        "<dt>dtype</dt><dd>float32 (every model)</dd>",
        "<dt>bootstrap intervals</dt><dd>200 resamples of the rows, 95% interval "
        "(value ± t · standard deviation of the draws), seed 0; drawn as half samples "
        "without replacement for mutual_knn</dd>",
        "<dt>null baseline</dt><dd>20 permutations of the rows of the second model, seed 1; "
        "from the mean to the 95% quantile (the 5% quantile for a distance)</dd>",
        "<dt>device</dt><dd>cpu</dd>",
        "<th>path</th><th>model</th><th>pooling</th><th>data</th><th>dtype</th>",
        f'<tr><td>cls</td><td>7</td><td>minilm_cls/</td><td class="long">{MODEL_PATH}</td>'
        "<td>first</td><td>plays.txt</td><td>float32</td></tr>",
    ],
    ids=["n", "dtype", "bootstrap", "null", "device", "source-columns", "source-row"],
)
def test_the_header_shows_every_option(v2_page: str, text: str) -> None:
    header = v2_page.split("<header>")[1].split("</header>")[0]
    assert text in header


@pytest.mark.parametrize(
    ("measure", "text"),
    [
        ("linear_cka", "<code>linear_cka</code>, debiased=false; similarity, range [0, 1]"),
        ("mutual_knn", "<code>mutual_knn</code>, k=10; similarity, range [0, 1]"),
        ("procrustes_distance", "<code>procrustes_distance</code>; distance, range [0, 1.41]"),
    ],
)
def test_each_measure_heading_shows_its_options(v2_page: str, measure: str, text: str) -> None:
    heading = v2_page.split(f'<h3 id="measure-{measure}">')[1].split("</h3>")[0]
    assert text in heading


def test_caveats_are_a_visible_note_under_their_measure(v2_page: str) -> None:
    block = v2_page.split('<h3 id="measure-linear_cka">')[1].split("<h3 ")[0]
    assert '<div class="note caveats">' in block
    assert "<strong>Caveat:</strong> n = 120 samples against widths 384" in block
    other = v2_page.split('<h3 id="measure-mutual_knn">')[1].split("</section>")[0]
    assert "Caveat:" not in other


def test_omitted_default_measures_are_named_with_their_reason(v2_page: str) -> None:
    header = v2_page.split("<header>")[1].split("</header>")[0]
    assert "<code>mean_cca</code>" in header
    assert "every canonical correlation is 1 whatever the data" in header


def test_v1_results_render_without_the_v2_parts(tiny_results: dict[str, Any]) -> None:
    page = render_report(tiny_results)
    assert "Where the layers came from" not in page
    assert "Left out:" not in page and "Caveat:" not in page
    assert 'id="depth"' not in page
    assert "<dt>samples n</dt><dd>30 inputs" in page


# --- undefined values grouped by cause -----------------------------------------------------


def test_undefined_values_are_one_line_per_cause(v2_page: str) -> None:
    causes = _with_class(_section(v2_page, "missing"), "cause")
    assert len(causes) == 2
    section = _section(v2_page, "missing")
    lines = re.findall(r'<li class="cause">(.*?)</li>', section, re.DOTALL)
    constant = [line for line in lines if "is constant" in line]
    assert len(constant) == 1
    # 3 measures × 20 cells, 3 depth points, 7 geometry values
    assert constant[0].startswith('<span class="count">70 values</span>')
    assert '<a href="#measure-linear_cka">linear CKA heatmaps</a>: 20' in constant[0]
    assert '<a href="#depth">similarity against depth</a>: 3' in constant[0]
    assert '<a href="#summary">per-layer geometry</a>: 7' in constant[0]
    solver = [line for line in lines if "NumericalError" in line]
    assert solver[0].startswith('<span class="count">1 value</span>')


def test_grouping_counts_each_undefined_depth_point_once(doc: dict[str, Any]) -> None:
    groups = _missing_groups(doc, {"depth"})
    (constant,) = [g for g in groups if g["reason"] == CONSTANT]
    depth = [s for s in constant["sections"] if s["anchor"] == "depth"]
    assert depth == [{"text": "similarity against depth", "count": 3, "anchor": "depth"}]


def test_grouping_links_only_to_sections_on_the_page(doc: dict[str, Any]) -> None:
    groups = _missing_groups(doc, set())
    assert all(s["anchor"] is None for g in groups for s in g["sections"])


def test_the_nav_counts_undefined_values(v2_page: str) -> None:
    assert '<a href="#missing">Undefined values (71)</a>' in v2_page


# --- computed documents of unusual shapes ---------------------------------------------------


@pytest.fixture(scope="module")
def uneven_page() -> str:
    """Three models of 1, 3 and 14 layers (long names), computed, drawn."""
    import torch

    from subspaces.report import compute_results

    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 6, generator=g)
    deep = {
        f"transformer.encoder.block.{i}.layer.1.DenseReluDense": torch.tanh(x * (1 + 0.1 * i))
        for i in range(14)
    }
    models = {
        "one": {"only": x},
        "three": {"a": x, "b": torch.tanh(x), "c": x.square()},
        "deep": deep,
    }
    results = compute_results(
        models,
        measures=("linear_cka", "procrustes_distance"),
        geometry=False,
        bootstrap=5,
        permutations=3,
        progress=False,
    )
    return render_report(results)


def test_models_of_different_depths_render_with_every_mark_titled(uneven_page: str) -> None:
    assert _dangling(uneven_page) == set()
    depth = _section(uneven_page, "depth")
    assert depth.count('class="fig chart"') == 3 * 2  # 3 pairs × (similarity, distance)
    marks = _with_class(uneven_page, "mark", "cell") + _with_class(depth, "mark", "point")
    assert marks and all(m["title"] for m in marks)
    # 3 × 14 heatmap: 14-layer names cut to the part that differs, whole in the title
    assert "<title>transformer.encoder.block.11.layer.1.DenseReluDense</title>" in uneven_page
    assert "…block.11.layer.1…</text>" in uneven_page
