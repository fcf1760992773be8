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

from subspaces._checks import (
    DegenerateInputError,
    DeviceMismatchError,
    InputTypeError,
    InvalidOptionError,
    NonFiniteError,
    NotFittedError,
    NumericRangeError,
    ShapeError,
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
    "ShapeError",
    "SubspacesError",
    "TooFewSamplesError",
    "__version__",
]
