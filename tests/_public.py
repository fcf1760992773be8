"""The packages of subspaces, found by walking it: the contract tests (conventions,
estimators, streaming classes) cover a new family without being edited."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from types import ModuleType

import subspaces


def families() -> Iterator[tuple[str, ModuleType | BaseException]]:
    """(family, package) for every package below subspaces (nested ones are named after
    their top-level family), then subspaces itself, so that a name re-exported at the top
    belongs to its family; a package that fails to import comes as its error."""
    for info in pkgutil.walk_packages(subspaces.__path__, "subspaces.", onerror=lambda _: None):
        if not info.ispkg:
            continue
        family = info.name.split(".")[1]
        try:
            yield family, importlib.import_module(info.name)
        except Exception as error:  # a family mid-edit: its test fails, the others run
            yield family, error
    yield "subspaces", subspaces
