"""subspaces: the geometry of neural networks."""

from subspaces._checks import SubspacesError

__version__ = "0.1.0"

__all__ = ["SubspacesError", "__version__"]
