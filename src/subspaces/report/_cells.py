"""One cell of a report at a time: its failure and its warnings recorded, never raised.

A report is thousands of independent values. Whatever goes wrong while computing one of
them (a solver that does not converge, data that leave the value undefined, a bug) costs
that value only: it becomes ``null`` and ``missing`` maps its JSON pointer to
``"<ErrorType>: <message>"``. Only the errors that no later cell could escape propagate:
:data:`FATAL_ERRORS` (out of memory) and what is not an :class:`Exception` (Ctrl-C).
Warnings that the measures raise while computing (e.g.
:class:`subspaces._checks.SmallSampleWarning`) are caught and kept as that measure's
caveats, never shown on the console.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import Tensor

from subspaces._checks import SmallSampleWarning

T = TypeVar("T")

FATAL_ERRORS: tuple[type[BaseException], ...] = (MemoryError,) + (
    (torch.OutOfMemoryError,) if hasattr(torch, "OutOfMemoryError") else ()
)
"""Errors that stop a report (no other cell would fare better); every other exception
raised inside one cell costs that cell only."""


def failure(error: Exception) -> str:
    """The reason a cell is null: ``"<ErrorType>: <message>"``; re-raises a fatal error."""
    if isinstance(error, FATAL_ERRORS):
        raise error
    return f"{type(error).__name__}: {error}"


class Recorder:
    """The ``missing`` reasons, each measure's caveats and the report's warnings."""

    def __init__(self) -> None:
        self.missing: dict[str, str] = {}
        self.caveats: dict[str, list[str]] = {}
        self.warnings: list[str] = []

    def null(self, pointer: str, reason: str) -> None:
        self.missing[pointer] = reason

    def caveat(self, measure: str, text: str) -> None:
        kept = self.caveats.setdefault(measure, [])
        if text not in kept:
            kept.append(text)

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    def number(self, value: Tensor | float | None, pointer: str, *, what: str) -> float | None:
        """``value`` as a plain float; a non-finite value is null with its reason."""
        if value is None:
            return None
        v = float(value)
        if math.isfinite(v):
            return v
        self.null(pointer, f"{what} returned {v} (not a finite number) for these data")
        return None

    def call(self, measure: str | None, function: Callable[..., T], /, *args: Any, **kw: Any) -> T:
        """``function(*args, **kw)``, its warnings kept: as caveats of ``measure``, or as
        the report's warnings when ``measure`` is None. Exceptions propagate."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = function(*args, **kw)
        for w in caught:
            text = str(w.message)
            if not issubclass(w.category, SmallSampleWarning):
                text = f"{w.category.__name__}: {text}"
            if measure is None:
                self.warn(text)
            else:
                self.caveat(measure, text)
        return out
