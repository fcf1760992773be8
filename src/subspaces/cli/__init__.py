"""The ``subspaces`` command line: extract activations, compare layers, measure, report.

Exit codes: 0 success; 1 an unexpected failure (a bug: run again with --debug for the
traceback); 2 bad usage or input (a missing file, a store that is incomplete or corrupt,
an unknown measure, a missing optional dependency...); 130 an extraction interrupted by
Ctrl-C (the store is partial; the same command resumes it). Errors are one line on stderr
unless --debug. Nothing printed is read as rich markup. docs/cli.md describes every command.

Importing this package is light (no torch, transformers or scikit-learn), so that
``subspaces --help`` starts at once; each command imports what it needs.

Modules: :mod:`~subspaces.cli._app` (the application, consoles, errors, reading inputs),
:mod:`~subspaces.cli._tables` (tables at any terminal width), :mod:`~subspaces.cli._extract`
and :mod:`~subspaces.cli._commands` (the commands).
"""

from subspaces.cli import _commands, _extract  # noqa: F401  (they register the commands)
from subspaces.cli._app import UsageError, app

__all__ = ["UsageError", "app"]
