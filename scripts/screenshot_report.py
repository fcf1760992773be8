"""Open a subspaces report in headless Chromium: screenshot, console messages, parsed DOM.

Usage::

    python scripts/screenshot_report.py                       # a small example -> docs/report.png
    python scripts/screenshot_report.py --report out/report.html --out docs/report.png

Without ``--report`` it builds a report from two small random tanh networks (different
seeds) on scikit-learn's digits (shipped, no download) and screenshots it. It exits with
status 1 if the page logged anything to the console (an error, a blocked request, a script
that ran) or if the screenshot looks blank. tests/report/test_browser.py imports
:func:`open_in_chromium` and :func:`screenshot_stats` from here.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The path of a Chromium (or Chrome) executable, or None; $CHROMIUM overrides."""
    override = os.environ.get("CHROMIUM")
    if override:
        return shutil.which(override) or (override if Path(override).is_file() else None)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass(frozen=True)
class BrowserRun:
    """What headless Chromium saw: the console messages and the DOM after parsing."""

    console: list[str]  # every "CONSOLE" line Chromium logged (errors, warnings, logs)
    dom: str  # document.documentElement.outerHTML after load
    screenshot: Path


def open_in_chromium(
    page: Path, screenshot: Path, *, width: int = 1400, height: int = 2400, timeout: float = 90
) -> BrowserRun:
    """Load ``page`` in headless Chromium, save a ``width × height`` screenshot.

    Chromium runs with a throw-away profile, no sandbox, no GPU and no background network
    traffic; its console is logged to stderr (``--enable-logging=stderr``), from which the
    ``CONSOLE`` lines are kept.
    """
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError("no chromium executable found (install Debian's `chromium`)")
    with tempfile.TemporaryDirectory(prefix="subspaces-chromium-") as profile:
        command = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            f"--window-size={width},{height}",
            f"--screenshot={screenshot}",
            "--dump-dom",
            page.resolve().as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0 or not screenshot.is_file():
        raise RuntimeError(
            f"chromium exited with status {done.returncode}; stderr:\n{done.stderr[-3000:]}"
        )
    console = [line for line in done.stderr.splitlines() if re.search(r":CONSOLE[:(]", line)]
    return BrowserRun(console=console, dom=done.stdout, screenshot=screenshot)


def screenshot_stats(path: Path) -> tuple[float, int]:
    """(fraction of pixels that are not near-white, number of distinct colors)."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.int32)
    not_white = float((pixels.min(axis=2) < 235).mean())
    packed = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
    return not_white, int(np.unique(packed).size)


def example_report(out_dir: Path) -> Path:
    """A report of two random tanh networks (seeds 0 and 1) on 600 digits images."""
    import torch
    from sklearn.datasets import load_digits

    from subspaces.report import compute_results, write_report

    digits = load_digits()
    x = torch.tensor(digits.data[:600], dtype=torch.float32) / 16.0
    labels = torch.tensor(digits.target[:600])
    models = {}
    for seed in (0, 1):
        generator = torch.Generator().manual_seed(seed)
        h, layers = x, {"input": x}
        for i, width in enumerate((96, 64, 48, 32), start=1):
            w = torch.randn(h.shape[1], width, generator=generator) / h.shape[1] ** 0.5
            h = torch.tanh(2.0 * h @ w)
            layers[f"fc{i}"] = h
        models[f"seed {seed}"] = layers
    results = compute_results(models, labels=labels, progress=False)
    return write_report(results, out_dir, title="Two random tanh networks on digits")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, help="report.html to open (default: an example)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "report.png")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=2400)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="subspaces-report-") as tmp:
        page = args.report or example_report(Path(tmp))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        run = open_in_chromium(page, args.out, width=args.width, height=args.height)
    not_white, colors = screenshot_stats(args.out)
    print(f"wrote {args.out} ({not_white:.0%} non-white pixels, {colors} colors)")
    for line in run.console:
        print(f"console: {line}", file=sys.stderr)
    if run.console or not_white < 0.05 or colors < 32:
        print("the page logged console messages or looks blank", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
