"""The code in the README and in docs/ runs as written (```python blocks; ```py blocks are
illustrations that need the reader's own model)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL)


@pytest.mark.parametrize("page", [p for p in PAGES if _python_blocks(p)], ids=lambda p: p.name)
def test_examples_run_in_order(page: Path) -> None:
    namespace: dict[str, object] = {}
    for block in _python_blocks(page):
        # the README's quickstart uses n = 5000; a tenth is enough to run every line
        exec(compile(block.replace("5000", "500"), str(page), "exec"), namespace)


def test_the_test_run_includes_every_docstring_example() -> None:
    # docs/conventions.md: CI runs every `>>>` example of src/subspaces (pytest's doctest
    # runner, configured in pyproject.toml; the repository's conftest.py sets the examples up).
    config = (ROOT / "pyproject.toml").read_text()
    options = re.search(r"\[tool\.pytest\.ini_options\](.*?)(?:\n\[|\Z)", config, re.DOTALL)
    assert options is not None
    section = options.group(1)
    assert re.search(r'testpaths\s*=\s*\[[^\]]*"src/subspaces"', section)
    assert re.search(r"addopts\s*=.*--doctest-modules", section)
    assert all(flag in section for flag in ("NORMALIZE_WHITESPACE", "ELLIPSIS", "NUMBER"))
    assert (ROOT / "conftest.py").is_file()  # outside the package: not installed with it
