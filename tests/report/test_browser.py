"""The report in a real browser: headless Chromium renders it, logs nothing, runs no script."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from subspaces.report import write_report

from .conftest import EVIL_LAYER

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "screenshot_report.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("screenshot_report", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("screenshot_report", module)
    spec.loader.exec_module(module)
    return module


shots = _load_script()
pytestmark = pytest.mark.skipif(
    shots.find_chromium() is None,
    reason="headless Chromium is not installed (Debian: apt-get install chromium); "
    "the report's browser checks need it",
)


@pytest.fixture(scope="module")
def browser_run(evil_results: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The report with a <script> layer and an <img onerror> model, opened in Chromium."""
    out = tmp_path_factory.mktemp("browser")
    page = write_report(evil_results, out, title="<script>console.error('title ran')</script>")
    return shots.open_in_chromium(page, out / "report.png", width=1400, height=2400)


def test_no_console_messages(browser_run: Any) -> None:
    # The page has no script: any console line is an error, a blocked request (CSP) or an
    # injected script that ran.
    assert browser_run.console == []


def test_screenshot_shows_rendered_figures(browser_run: Any) -> None:
    not_white, colors = shots.screenshot_stats(browser_run.screenshot)
    # a blank or unstyled page is ~0-2% non-white with a handful of colors; this page
    # (tables, 3 heatmaps, spectra) measures ~8% and thousands of colors
    assert not_white > 0.05, f"only {not_white:.1%} of the pixels are not white"
    assert colors > 500, f"only {colors} distinct colors: are the heatmaps drawn?"


def test_every_figure_is_in_the_rendered_page(browser_run: Any) -> None:
    # linear CKA × 3 pairs of models, its curve against depth for the one pair of distinct
    # models, 2 spectra, 3 charts of linear dimension, 6 of neural collapse
    assert len(re.findall(r"<svg\b", browser_run.dom)) == 3 + 1 + 2 + 3 + 6


def test_script_names_are_text_in_the_rendered_page(browser_run: Any) -> None:
    dom = browser_run.dom
    assert re.search(r"<script\b", dom, re.IGNORECASE) is None
    assert re.search(r"<img\b", dom, re.IGNORECASE) is None
    escaped = EVIL_LAYER.replace("<", "&lt;").replace(">", "&gt;")
    assert f"<td>{escaped}</td>" in dom  # shown as text in the summary table
    assert f">{escaped}</text>" in dom  # and in the figures' SVG text


def test_chromium_absent_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHROMIUM", str(tmp_path / "no-such-browser"))
    assert shots.find_chromium() is None
    with pytest.raises(FileNotFoundError, match="no chromium executable"):
        shots.open_in_chromium(tmp_path / "report.html", tmp_path / "shot.png")
