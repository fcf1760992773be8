"""StoreError and one_line: the one way an error is put on one line (readers, store, CLI)."""

from __future__ import annotations

import pytest

from subspaces import SubspacesError
from subspaces.io import StoreError
from subspaces.io.errors import one_line


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (ValueError("bad header\n  at byte 8\n"), "bad header at byte 8"),
        (OSError("  spaces\tand tabs  "), "spaces and tabs"),
        (KeyError(), "KeyError"),
        (RuntimeError(""), "RuntimeError"),
    ],
    ids=["lines", "whitespace", "no-message", "empty-message"],
)
def test_one_line(error: BaseException, line: str) -> None:
    assert one_line(error) == line


def test_store_error_is_a_subspaces_value_error() -> None:
    assert issubclass(StoreError, SubspacesError) and issubclass(StoreError, ValueError)


def test_the_store_and_the_command_line_share_one_line() -> None:
    import subspaces.cli._app as cli
    import subspaces.io.readers as readers
    import subspaces.io.store.manifest as manifest

    assert readers.one_line is one_line and manifest.one_line is one_line
    assert cli._one_line(ValueError("a [b]\nc")) == "a [b] c"  # printed without rich markup
