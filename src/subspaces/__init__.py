"""subspaces: the geometry of neural networks.

Measure, compare, align and learn the subspaces that networks form in their
representations and weights. The families:

* :mod:`subspaces.similarity`: compare two representations of the same inputs (CKA, CCA,
  Procrustes, RSA, neighborhoods, principal angles, ...), and layer × layer matrices.
* :mod:`subspaces.geometry`: measure one representation (spectrum, intrinsic dimension,
  neural collapse, coding rate).
* :mod:`subspaces.align`: map between spaces (Procrustes, linear and affine translators,
  relative representations and stitching, neuron matching, backward-compatible extension,
  feature merging).
* :mod:`subspaces.linalg`: the shared numerics (streaming float64 moments, blocked kNN).
* :mod:`subspaces.data`: generated data with known geometry.

The face:

* :mod:`subspaces.io`: activation stores (safetensors shards, checked on every read),
  activation files, and extraction from torch and Hugging Face models.
* :mod:`subspaces.report`: every number of a report as ``results.json``, and the
  self-contained HTML report; the ``subspaces`` command line (:mod:`subspaces.cli`).

Every error the package raises on purpose is a :class:`SubspacesError`; its kinds (bad
shapes, types, options, degenerate input, ...) are exported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from subspaces._errors import (
    DegenerateInputError,
    DeviceMismatchError,
    InputTypeError,
    InvalidOptionError,
    NonFiniteError,
    NumericalError,
    NumericRangeError,
    ShapeError,
    SmallSampleWarning,
    SubspacesError,
    TooFewSamplesError,
)

__version__ = "0.1.0"

__all__ = [
    "DegenerateInputError",
    "DeviceMismatchError",
    "InputTypeError",
    "InvalidOptionError",
    "NonFiniteError",
    "NotFittedError",
    "NumericRangeError",
    "NumericalError",
    "ShapeError",
    "SmallSampleWarning",
    "SubspacesError",
    "TooFewSamplesError",
    "__version__",
]

if TYPE_CHECKING:
    from subspaces._checks import NotFittedError


def __getattr__(name: str) -> Any:
    """:class:`NotFittedError`, imported from :mod:`subspaces._checks` on first use: it is
    also scikit-learn's, and ``import subspaces`` (and so ``subspaces --help``) stays free of
    torch and scikit-learn. The other error classes import nothing (:mod:`subspaces._errors`).
    """
    if name == "NotFittedError":
        from subspaces._checks import NotFittedError

        globals()[name] = NotFittedError
        return NotFittedError
    raise AttributeError(f"module 'subspaces' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
