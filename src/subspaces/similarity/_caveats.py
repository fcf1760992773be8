"""When a measure's value is fixed by the sample count rather than by the data.

One text per criterion, shared by the measure's function (which warns
:class:`~subspaces._checks.SmallSampleWarning` with it) and its registry entry
(``MEASURES[name].caveat(n, d_x, d_y)``, which returns it), so that the two always agree.
The maths is in docs/measures.md ("Small samples"). Every function returns ``None`` when
the criterion does not hold.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from subspaces._checks import SmallSampleWarning

__all__ = [
    "cca_caveat",
    "collected_once",
    "kept_directions_caveat",
    "regression_caveat",
    "shape_metric_caveat",
    "svcca_caveat",
    "warn_small_sample",
]

_CCA_FIX = "use more samples than features, or reduce the widths first (e.g. svcca)"


def cca_caveat(n: int, d_x: int, d_y: int) -> str | None:
    """Canonical correlations forced to 1 by ``n`` samples of widths ``d_x``, ``d_y``.

    The centered column spaces lie in the (n - 1)-dimensional complement of the constant
    vector, so two of dimensions d_x, d_y meet in at least ``d_x + d_y - (n - 1)``
    dimensions: that many correlations are 1 whatever the data; all ``min(d_x, d_y)`` of
    them when ``n - 1 <= max(d_x, d_y)``.

    Examples:
        >>> print(cca_caveat(300, 384, 384))  # doctest: +ELLIPSIS
        n = 300 samples for widths 384 and 384 (n - 1 = 299 ≤ 384): every canonical ...
        >>> cca_caveat(10_000, 384, 384) is None
        True
    """
    free = n - 1
    k = min(d_x, d_y, max(free, 0))
    if free <= max(d_x, d_y):
        return (
            f"n = {n} samples for widths {d_x} and {d_y} (n - 1 = {free} ≤ {max(d_x, d_y)}): "
            f"every canonical correlation is 1 whatever the data; {_CCA_FIX}"
        )
    forced = d_x + d_y - free
    if forced > 0:
        return (
            f"n = {n} samples for widths {d_x} and {d_y} ({d_x} + {d_y} > n - 1 = {free}): "
            f"at least {forced} of the {k} canonical correlations are 1 whatever the data; "
            f"{_CCA_FIX}"
        )
    return None


def kept_directions_caveat(n: int, k_x: int, k_y: int) -> str | None:
    """SVCCA's criterion on the directions it kept, ``k_x + k_y > n - 1``.

    Examples:
        >>> print(kept_directions_caveat(100, 60, 50))  # doctest: +ELLIPSIS
        n = 100 samples for 60 and 50 kept directions (60 + 50 > n - 1 = 99): at least 11 ...
        >>> kept_directions_caveat(100, 40, 50) is None
        True
    """
    free = n - 1
    forced = k_x + k_y - free
    if forced <= 0:
        return None
    return (
        f"n = {n} samples for {k_x} and {k_y} kept directions ({k_x} + {k_y} > n - 1 = "
        f"{free}): at least {min(forced, k_x, k_y)} of the {min(k_x, k_y)} canonical "
        "correlations are 1 whatever the data; lower keep_variance or use more samples"
    )


def svcca_caveat(n: int, d_x: int, d_y: int, **options: Any) -> str | None:
    """SVCCA at widths ``d_x``, ``d_y``: degenerate only if the kept directions reach n - 1.

    Examples:
        >>> svcca_caveat(10_000, 384, 384) is None
        True
    """
    if d_x + d_y <= n - 1:
        return None
    return (
        f"n = {n} samples for widths {d_x} and {d_y} ({d_x} + {d_y} > n - 1 = {n - 1}): "
        "if SVCCA keeps more than n - 1 directions in all, some canonical correlations are "
        "1 whatever the data (it warns when it does); lower keep_variance or use more samples"
    )


def regression_caveat(n: int, d_x: int, d_y: int, **options: Any) -> str | None:
    """Least squares interpolates: R² is 1 whatever the target when the predictor's width
    reaches n - 1 (``ridge = 0``).

    ``options`` are the measure's: ``direction`` (``"x_to_y"``, ``"y_to_x"``,
    ``"symmetric"``) picks the predictor(s), ``ridge > 0`` removes the degeneracy.

    Examples:
        >>> print(regression_caveat(300, 384, 10))  # doctest: +ELLIPSIS
        n = 300 samples for predictor width 384 (n - 1 = 299 ≤ 384): the least-squares fit ...
        >>> regression_caveat(300, 384, 10, ridge=0.1) is None
        True
    """
    if float(options.get("ridge", 0.0) or 0.0) > 0.0:
        return None
    direction = options.get("direction", "x_to_y")
    widths = {"x_to_y": (d_x,), "y_to_x": (d_y,)}.get(direction, (d_x, d_y))
    wide = max(widths)
    if n - 1 > wide:
        return None
    if len(widths) == 2 and min(widths) < n - 1:
        # only the fit from the wide side interpolates; the mean of the two is then >= 1/2
        return (
            f"n = {n} samples for predictor width {wide} (n - 1 = {n - 1} ≤ {wide}): the "
            "least-squares fit from that side interpolates, so its R² is 1 whatever the data "
            "and the symmetric mean is at least 0.5; pass ridge > 0 or use more samples than "
            "features"
        )
    return (
        f"n = {n} samples for predictor width {wide} (n - 1 = {n - 1} ≤ {wide}): the "
        "least-squares fit interpolates and R² is 1 whatever the data; pass ridge > 0 or "
        "use more samples than features"
    )


def shape_metric_caveat(n: int, d_x: int, d_y: int, **options: Any) -> str | None:
    """The shape metric with ``alpha = 0`` whitens fully: it is a function of the canonical
    correlations and degenerates as they do (:func:`cca_caveat`).

    Examples:
        >>> shape_metric_caveat(300, 384, 384) is None  # alpha = 1 by default
        True
        >>> shape_metric_caveat(300, 384, 384, alpha=0.0) is not None
        True
    """
    if float(options.get("alpha", 1.0)) != 0.0:
        return None
    return cca_caveat(n, d_x, d_y)


_COLLECTOR: ContextVar[list[str] | None] = ContextVar("small_sample_collector", default=None)


def warn_small_sample(text: str | None) -> None:
    """Warn :class:`~subspaces._checks.SmallSampleWarning` with ``text`` (nothing if None);
    inside :func:`collected_once`, collect it instead.

    Examples:
        >>> warn_small_sample(None)
    """
    if text is None:
        return
    collector = _COLLECTOR.get()
    if collector is not None:
        collector.append(text)
    else:
        warnings.warn(text, SmallSampleWarning, stacklevel=2)


@contextmanager
def collected_once() -> Iterator[None]:
    """The texts warned inside, each distinct one warned once on leaving (many pairs, one
    warning per cause); nothing is warned if the block raises.

    Examples:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     with collected_once():
        ...         for _ in range(3):
        ...             warn_small_sample("n = 3 samples ...")
        >>> len(caught)
        1
    """
    texts: list[str] = []
    token = _COLLECTOR.set(texts)
    try:
        yield
    finally:
        _COLLECTOR.reset(token)
    for text in dict.fromkeys(texts):
        warnings.warn(text, SmallSampleWarning, stacklevel=3)
