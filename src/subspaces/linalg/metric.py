"""The base of every streaming class (floor 1): a ``torchmetrics.Metric`` whose
``merge_state`` drops the cached result.

torchmetrics caches ``compute()`` and clears the cache in ``update`` and ``reset``, but not
in ``merge_state``: a metric computed, then merged with another, would go on returning the
value before the merge. Every streaming class of the package inherits :class:`StreamingMetric`
(directly or through :class:`~subspaces.linalg.moments.MomentsMetric` and
:class:`~subspaces.linalg.streaming.DataclassResultMetric`), so a merge is always seen.
"""

from __future__ import annotations

from typing import Any

from torchmetrics import Metric

__all__ = ["StreamingMetric"]


class StreamingMetric(Metric):
    """A ``torchmetrics.Metric`` whose ``compute()`` after ``merge_state`` sees the merge.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import LinearCKA, linear_cka
        >>> g = torch.Generator().manual_seed(0)
        >>> x, y = torch.randn(40, 3, generator=g), torch.randn(40, 2, generator=g)
        >>> a, b = LinearCKA(), LinearCKA()
        >>> a.update(x[:20], y[:20]); b.update(x[20:], y[20:])
        >>> _ = a.compute()  # cached ...
        >>> a.merge_state(b)  # ... and dropped by the merge
        >>> bool(torch.isclose(a.compute(), linear_cka(x, y)))
        True
    """

    def merge_state(self, incoming_state: Any) -> None:
        """Add another metric's (or a state dict's) samples; the cached result is dropped."""
        super().merge_state(incoming_state)
        self._computed = None
