"""Compare two representations of the same inputs.

Every measure takes ``x`` (n × d1) and ``y`` (n × d2), numpy or torch, rows in the same
order. Measures that are sums over samples also exist as streaming classes
(``update(x, y)`` / ``compute()`` / ``reset()``) that sync across torch.distributed ranks.
:func:`pairwise` computes any of them between every pair of layers.
"""

from subspaces.similarity import _registry  # noqa: F401  (registers the measures)
from subspaces.similarity.cka import LinearCKA, linear_cka
from subspaces.similarity.pairwise import MEASURES, PairwiseMeasure, pairwise, register_measure

__all__ = ["MEASURES", "LinearCKA", "PairwiseMeasure", "linear_cka", "pairwise", "register_measure"]
