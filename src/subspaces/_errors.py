"""The error classes of subspaces, in a module that imports nothing.

:mod:`subspaces._checks` re-exports them beside the validators that raise them (import them
from there, or from :mod:`subspaces`); they live here so that code that must start light
(``import subspaces``, the command line's ``--help``) can use them without importing torch.
:class:`~subspaces._checks.NotFittedError`, which is also scikit-learn's, stays in
:mod:`subspaces._checks`.
"""

from __future__ import annotations

__all__ = [
    "DegenerateInputError",
    "DeviceMismatchError",
    "InputTypeError",
    "InvalidOptionError",
    "NonFiniteError",
    "NumericRangeError",
    "NumericalError",
    "ShapeError",
    "SmallSampleWarning",
    "SubspacesError",
    "TooFewSamplesError",
]


class SubspacesError(Exception):
    """Base class of every error raised by subspaces on bad input.

    Examples:
        >>> issubclass(InvalidOptionError, SubspacesError)
        True
    """


class InputTypeError(SubspacesError, TypeError):
    """An argument has a type subspaces cannot use (not an array, not a number...).

    Examples:
        >>> from subspaces._checks import check_matrix
        >>> try:
        ...     check_matrix([[1.0, 2.0]])
        ... except InputTypeError as error:
        ...     print(str(error).split(".")[0])
        x must be a torch
    """


class ShapeError(SubspacesError, ValueError):
    """An argument has the wrong number of dimensions or the wrong size.

    Examples:
        >>> from subspaces._checks import check_paired
        >>> import torch
        >>> try:
        ...     check_paired(torch.ones(3, 2), torch.ones(4, 2))
        ... except ShapeError:
        ...     print("refused")
        refused
    """


class TooFewSamplesError(ShapeError):
    """Fewer samples than the estimator needs.

    Examples:
        >>> from subspaces._checks import check_matrix
        >>> import torch
        >>> try:
        ...     check_matrix(torch.ones(1, 3), min_samples=2)
        ... except TooFewSamplesError:
        ...     print("refused")
        refused
    """


class NonFiniteError(SubspacesError, ValueError):
    """An argument contains NaN or infinite entries.

    Examples:
        >>> from subspaces._checks import check_finite
        >>> import torch
        >>> try:
        ...     check_finite(torch.tensor([float("inf")]))
        ... except NonFiniteError:
        ...     print("refused")
        refused
    """


class DeviceMismatchError(SubspacesError, ValueError):
    """Arguments that are used together live on different devices.

    Examples:
        >>> issubclass(DeviceMismatchError, ValueError)
        True
    """


class DegenerateInputError(SubspacesError, ValueError):
    """The input makes the measure undefined, e.g. a representation with zero variance.

    Examples:
        >>> from subspaces._checks import check_not_constant
        >>> import torch
        >>> try:
        ...     check_not_constant(torch.ones(3, 2), name="x", measure="CKA")
        ... except DegenerateInputError:
        ...     print("refused")
        refused
    """


class NumericalError(DegenerateInputError):
    """A linear-algebra solver failed on these data even on the safer paths.

    Raised by the decompositions of :mod:`subspaces.linalg.robust` (and so by every measure
    that whitens, projects or decomposes) when ``torch.linalg`` fails to converge or returns
    non-finite values, first as called, then in float64, then on a slightly regularized
    matrix. The message names the operation, the matrix's shape and what to do. It is a
    :class:`DegenerateInputError`: the data (not the code) make the value uncomputable, so
    code that records undefined values per cell records it too.

    Examples:
        >>> issubclass(NumericalError, DegenerateInputError)
        True
    """


class SmallSampleWarning(UserWarning):
    """A measure's value is (partly) fixed by the sample count, not by the data.

    Warned, with a one-line reason, by the measures that degenerate when the number of
    samples n is small against the widths d (e.g. every canonical correlation is 1 when
    ``n - 1 <= max(d_x, d_y)``); the same text is
    ``subspaces.similarity.MEASURES[name].caveat(n, d_x, d_y)``.

    Examples:
        >>> issubclass(SmallSampleWarning, UserWarning)
        True
    """


class NumericRangeError(SubspacesError, ValueError):
    """Finite input whose magnitude the computation cannot represent in its dtype.

    Raised where a result (or a quantity it needs) would overflow or underflow, e.g. the
    squares of float64 values near 1e200; rescale the input or cast it to float64.

    Examples:
        >>> from subspaces._checks import check_magnitude
        >>> import torch
        >>> try:
        ...     check_magnitude(torch.tensor([1e200], dtype=torch.float64))
        ... except NumericRangeError:
        ...     print("refused")
        refused
    """


class InvalidOptionError(SubspacesError, ValueError):
    """A keyword option has a value outside what the method accepts.

    Examples:
        >>> from subspaces._checks import check_choice
        >>> try:
        ...     check_choice("fast", name="neighbors", choices=("exact", "approximate"))
        ... except InvalidOptionError:
        ...     print("refused")
        refused
    """


# Tracebacks and reprs name the public home of each class (``subspaces.ShapeError``), not
# this private module.
for _name in __all__:
    globals()[_name].__module__ = "subspaces"
del _name
