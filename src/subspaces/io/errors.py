"""The error of stores and activation files, and the one way errors are put on one line.

:class:`StoreError` is what every problem with a store or an activation file raises;
:func:`one_line` is how an error's message is quoted inside another message (the readers
wrap numpy's, torch's and safetensors' errors) and how the command line prints errors.
"""

from __future__ import annotations

from subspaces._checks import SubspacesError

__all__ = ["ExtractionInterrupted", "StoreError", "StoreMismatchError", "one_line"]

# what a mismatch error advises in Python; the command line words it with its own options
RESTART_HINT = (
    "pass resume=False to extract again from scratch (this deletes the store's files) or "
    "choose another folder"
)


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


class StoreMismatchError(StoreError):
    """An existing store at the output folder was written from other inputs (data, model
    weights, options, layers or metadata) than this run's, so it can be neither resumed nor
    reused.

    The message names every difference (what was stored against what is given now) and the
    remedies. Attributes: ``path`` (the store folder), ``differences`` (one phrase each)
    and ``complete`` (the stored extraction had finished).

    Examples:
        >>> from subspaces.io import StoreMismatchError
        >>> error = StoreMismatchError("acts", ["option pooling: 'mean' stored, 'first' now"])
        >>> str(error).startswith("cannot resume the store at acts: it was written from other")
        True
        >>> error.differences
        ["option pooling: 'mean' stored, 'first' now"]
        >>> str(error.with_hint("run again with --restart")).endswith("--restart.")
        True
    """

    def __init__(
        self,
        path: object,
        differences: list[str],
        *,
        complete: bool = False,
        hint: str = RESTART_HINT,
    ) -> None:
        self.path = path
        self.differences = list(differences)
        self.complete = complete
        action = "reuse the complete" if complete else "resume the"
        super().__init__(
            f"cannot {action} store at {path}: it was written from other inputs than this "
            f"run's: {'; '.join(self.differences)}; {hint}."
        )

    def with_hint(self, hint: str) -> StoreMismatchError:
        """The same error with another remedy (the command line names its own options)."""
        return StoreMismatchError(self.path, self.differences, complete=self.complete, hint=hint)


class ExtractionInterrupted(KeyboardInterrupt):
    """Ctrl-C (a ``KeyboardInterrupt``) stopped an extraction: the store holds the samples
    of its complete shards and the same call resumes it.

    A ``KeyboardInterrupt``, so ``except KeyboardInterrupt`` still catches it. Attributes:
    ``path`` (the store folder), ``n_stored`` (samples in the store's complete shards) and
    ``n_total`` (samples of the data, None when unknown).

    Examples:
        >>> from subspaces.io import ExtractionInterrupted
        >>> stop = ExtractionInterrupted("acts", 128, 300)
        >>> print(str(stop).split(";")[0])
        interrupted: the store at acts is partial (128 of 300 samples written)
        >>> isinstance(stop, KeyboardInterrupt), stop.n_stored, stop.n_total
        (True, 128, 300)
    """

    def __init__(self, path: object, n_stored: int, n_total: int | None) -> None:
        self.path = path
        self.n_stored = n_stored
        self.n_total = n_total
        of = "" if n_total is None else f" of {n_total}"
        super().__init__(
            f"interrupted: the store at {path} is partial ({n_stored}{of} samples written); "
            "the same extraction resumes it (resume=False starts over)"
        )


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
