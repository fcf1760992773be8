"""Compare two representations of the same inputs.

Every measure takes ``x`` (n × d1) and ``y`` (n × d2), numpy or torch, rows in the same
order. Measures that are sums over samples also exist as streaming classes
(``update(x, y)`` / ``compute()`` / ``reset()``) that sync across torch.distributed ranks.
"""

from subspaces.similarity.cka import LinearCKA, linear_cka

__all__ = ["LinearCKA", "linear_cka"]
