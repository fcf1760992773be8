"""Row normalization at any finite scale (floor 1): the one unit-row kernel of the package.

``normalize_rows(x)`` divides each row by its Euclidean norm, ``x_i / ||x_i||``, for cosine
scores, correlation dissimilarities, angles between class means and spectral embeddings.
Scale-safe: ``x`` is first brought into range by an exact power of two
(:func:`~subspaces.linalg.scaling.rescaled`) and the norms are taken in float64, so no
norm overflows (float32 squares of 1e20) or vanishes (squares of 1e-25).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from subspaces._checks import (
    DegenerateInputError,
    check_choice,
    check_finite,
    check_flag,
    check_matrix,
    check_scalar_in_range,
)
from subspaces.linalg.scaling import rescaled, row_norms

__all__ = ["normalize_rows"]

_ZERO_ROWS = ("raise", "keep")
_SHOWN = 5  # indices of zero rows named in an error


def normalize_rows(
    x: Tensor,
    *,
    center_rows: bool = False,
    zero_rows: Literal["raise", "keep"] = "raise",
    rtol: float = 0.0,
    name: str = "x",
    purpose: str = "their cosine similarity",
    advice: str = "remove them",
) -> Tensor:
    """The rows of ``x`` divided by their Euclidean norm, ``x_i / ||x_i||``, in ``x``'s dtype.

    With ``center_rows=True`` each row first loses its mean over the features,
    ``z_i = x_i - mean(x_i)``, so that ``z_i / ||z_i||`` gives Pearson correlations between
    rows (RSA's correlation dissimilarity).

    A row is *zero* when its norm is at most ``rtol`` times the largest row norm (exactly
    zero with the default ``rtol=0``); a centered row also when its norm is within rounding
    of its mean (``64 · eps · max_j |x_ij|``: a constant row).

    Args:
        x: ``(n, d)`` floating tensor (NaN and infinite entries are refused).
        center_rows: subtract each row's mean over its features first.
        zero_rows: ``"raise"`` (default): refuse zero rows; ``"keep"``: leave them zero.
        rtol: relative norm below which a row counts as zero, in [0, 1).
        name: the input's name, for the message.
        purpose: what is undefined for a zero row, for the message.
        advice: what to do about it, for the message.

    Returns:
        ``(n, d)`` unit rows (zero rows stay zero with ``zero_rows="keep"``).

    Raises:
        DegenerateInputError: with ``zero_rows="raise"``, a zero (or, centered, constant)
            row, counted and named in the message.

    Examples:
        >>> import torch
        >>> normalize_rows(torch.tensor([[3.0, 4.0], [0.0, -2.0]]))
        tensor([[ 0.6000,  0.8000],
                [ 0.0000, -1.0000]])
        >>> normalize_rows(torch.tensor([[1.0, 3.0]]), center_rows=True)
        tensor([[-0.7071,  0.7071]])
    """
    center_rows = check_flag(center_rows, name="center_rows")
    zero_rows = check_choice(zero_rows, name="zero_rows", choices=_ZERO_ROWS)  # type: ignore[assignment]
    rtol = check_scalar_in_range(rtol, name="rtol", low=0.0, high=1.0, high_open=True)
    x = check_finite(check_matrix(x, name=name, min_samples=0, finite=False), name=name)
    x = rescaled(x)
    z = x - x.mean(dim=1, keepdim=True) if center_rows else x
    norms = row_norms(z, keepdim=True)
    floor = torch.zeros_like(norms)
    if rtol > 0.0 and norms.numel():
        floor = floor + rtol * norms.max()
    if center_rows:  # a constant row, once centered, is zero up to the rounding of its mean
        rounding = x.abs().amax(dim=1, keepdim=True).to(norms.dtype)
        floor = torch.maximum(floor, rounding * (64 * torch.finfo(x.dtype).eps))
    zero = (norms <= floor).squeeze(1)
    if zero_rows == "keep":
        return (
            z
            / torch.where(zero[:, None], torch.ones_like(norms), norms).to(z.dtype)
            * (~zero[:, None]).to(z.dtype)
        )
    if bool(zero.any()):
        kind = (
            "constant rows (zero variance across features)" if center_rows else "rows of zero norm"
        )
        first = zero.nonzero()[:_SHOWN, 0].tolist()
        raise DegenerateInputError(
            f"{name} has {int(zero.sum())} {kind} (shape {tuple(x.shape)}, first indices "
            f"{first}), so {purpose} is undefined; {advice}."
        )
    return z / norms.to(z.dtype)
