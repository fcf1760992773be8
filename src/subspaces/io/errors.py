"""The error of stores and activation files, and the one way errors are put on one line.

:class:`StoreError` is what every problem with a store or an activation file raises;
:func:`one_line` is how an error's message is quoted inside another message (the readers
wrap numpy's, torch's and safetensors' errors) and how the command line prints errors.
"""

from __future__ import annotations

from subspaces._checks import SubspacesError

__all__ = ["StoreError", "one_line"]


class StoreError(SubspacesError, ValueError):
    """An activation store (or an activation file) is missing, incomplete, corrupt or
    inconsistent, or cannot be written as asked.

    Examples:
        >>> import tempfile
        >>> from subspaces.io import ActivationStore, StoreError
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     try:
        ...         ActivationStore.open(folder)
        ...     except StoreError as error:
        ...         print("no manifest.json" in str(error))
        True
    """


def one_line(error: BaseException) -> str:
    """An error's message on one line: every run of whitespace (newlines included) becomes
    one space; an error without a message gives its type's name.

    Args:
        error: any exception.

    Returns:
        The message, stripped, on one line.

    Examples:
        >>> from subspaces.io.errors import one_line
        >>> one_line(ValueError("bad header\\n  at byte 8"))
        'bad header at byte 8'
        >>> one_line(KeyError())
        'KeyError'
    """
    text = " ".join(str(error).split())
    return text or type(error).__name__
