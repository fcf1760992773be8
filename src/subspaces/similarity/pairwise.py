"""Many comparisons at once: a measure between every layer of one list and of another."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor
from tqdm.auto import tqdm

from subspaces._checks import (
    InputTypeError,
    InvalidOptionError,
    ShapeError,
    SubspacesError,
    check_flag,
    check_matrix,
    check_positive_int,
    check_same_device,
)
from subspaces.linalg.moments import CHUNK_SIZE, CenteredMoments, RowNormSums
from subspaces.linalg.scaling import check_no_overflow, ldexp, scale_exponent
from subspaces.similarity._caveats import collected_once

__all__ = ["MEASURES", "PairwiseMeasure", "closest_measures", "pairwise", "register_measure"]


@dataclass(frozen=True)
class PairwiseMeasure:
    """How :func:`pairwise` computes one measure with each representation's statistics shared.

    Exactly one of three routes is set:

    * ``from_moments(m, **options)``: the measure is a function of centered moments; each
      representation's mean and ``X^T X`` are computed once, one cross product per pair.
    * ``prepare(x, **options)`` and ``compare(px, py, **options)``: a per-representation
      summary (e.g. its k-nearest-neighbor graph) computed once, then compared per pair.
    * ``function(x, y, **options)``: computed from scratch for each pair.

    ``symmetric`` lets the list-with-itself case compute only the upper triangle;
    ``row_norms(options)`` says whether the moments need the row-norm sums (debiased
    estimators); ``min_samples`` is the fewest samples the measure accepts.
    ``float64_products`` forms the moments with float64 products (measures that whiten,
    such as CCA, amplify rounding by the condition number); ``from_moments`` then also
    receives ``input_dtype``, the dtype of the data, which sets its rank tolerance.
    ``options`` names the options the measure takes (see :meth:`accepted_options`).

    What the measure means, for reports and plots: ``label`` is its display name (default:
    ``name`` with spaces); ``kind`` is ``"similarity"`` (larger is more alike) or
    ``"distance"`` (0 when alike); ``higher_is_better`` says whether a larger value means
    more alike (``None``: unknown); ``bounds`` is its ``(low, high)`` range at the default
    options, ``None`` at an open end (a non-default option may change it, e.g. debiased
    CKA can be negative). ``small_sample(n, d_x, d_y, **options)`` gives, for measures
    whose value n samples of widths d_x, d_y fix whatever the data (the CCA family, least
    squares), the one-line reason; read it through :meth:`caveat`.

    Examples:
        >>> from subspaces.similarity import MEASURES
        >>> cka = MEASURES["linear_cka"]
        >>> cka.label, cka.kind, cka.higher_is_better, cka.bounds
        ('linear CKA', 'similarity', True, (0.0, 1.0))
        >>> MEASURES["procrustes_distance"].higher_is_better
        False
    """

    name: str
    symmetric: bool
    from_moments: Callable[..., Tensor] | None = None
    prepare: Callable[..., Any] | None = None
    compare: Callable[..., Tensor] | None = None
    function: Callable[..., Tensor] | None = None
    row_norms: Callable[[dict[str, Any]], bool] = field(default=lambda options: False)
    min_samples: int = 2
    float64_products: bool = False
    options: tuple[str, ...] | None = None
    label: str = ""
    kind: Literal["similarity", "distance"] = "similarity"
    higher_is_better: bool | None = None
    bounds: tuple[float | None, float | None] = (None, None)
    small_sample: Callable[..., str | None] | None = None

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name.replace("_", " "))

    def caveat(self, n: int, d_x: int, d_y: int, **options: Any) -> str | None:
        """Why this measure's value may mislead for ``n`` samples of widths ``d_x``, ``d_y``.

        One line of plain text when the sample count fixes the value (in whole or in part)
        whatever the data, e.g. every canonical correlation is 1 when
        ``n - 1 <= max(d_x, d_y)``; ``None`` otherwise and for the measures that never
        degenerate so. ``options`` are the measure's (e.g. ``ridge`` for regression);
        omitted ones take their defaults, and others are ignored. The measure's function
        warns :class:`~subspaces._checks.SmallSampleWarning` with the same text (SVCCA:
        see docs/measures.md, it warns on the directions it keeps).

        Examples:
            >>> from subspaces.similarity import MEASURES
            >>> print(MEASURES["mean_cca"].caveat(300, 384, 384))  # doctest: +ELLIPSIS
            n = 300 samples for widths 384 and 384 (n - 1 = 299 ≤ 384): every canonical ...
            >>> MEASURES["linear_cka"].caveat(300, 384, 384) is None
            True
        """
        for value, name in ((n, "n"), (d_x, "d_x"), (d_y, "d_y")):
            check_positive_int(value, name=name)
        if self.small_sample is None:
            return None
        return self.small_sample(int(n), int(d_x), int(d_y), **options)

    def accepted_options(self) -> tuple[str, ...] | None:
        """The options :func:`pairwise` passes on to this measure: ``options`` when set,
        else the keyword-only parameters of ``function`` or ``from_moments`` (but
        ``input_dtype``, which pairwise sets); ``None`` when they cannot be read (a callable
        taking ``**options``), and then any option is passed on."""
        if self.options is not None:
            return self.options
        core = self.function if self.function is not None else self.from_moments
        if core is None:
            return None
        params = inspect.signature(core).parameters.values()
        if any(p.kind is p.VAR_KEYWORD for p in params):
            return None
        return tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name != "input_dtype")


MEASURES: dict[str, PairwiseMeasure] = {}
"""The measures :func:`pairwise` knows, by name."""


def closest_measures(name: str, *, limit: int = 4) -> list[str]:
    """The registered measures a mistyped ``name`` most likely meant, best first.

    The measure itself when only case or ``-`` differ; otherwise names that begin or end
    with ``name`` (case and ``-`` ignored: ``"cca"`` gives the CCA
    family, ``"Linear-CKA"`` gives ``linear_cka``), then difflib's close matches
    (``"mutualknn"``); at most ``limit``, [] when none is close. Every "unknown measure"
    error of the package (:func:`pairwise`, the report, the command line) gives these.

    Examples:
        >>> from subspaces.similarity import closest_measures
        >>> closest_measures("linear-cka")
        ['linear_cka']
        >>> closest_measures("mutualknn")
        ['mutual_knn']
        >>> closest_measures("zzz")
        []
    """
    part = str(name).lower().replace("-", "_")
    if part in MEASURES:  # only the spelling differs
        return [part]
    known = sorted(MEASURES)
    close = [m for m in known if part and (m.startswith(part) or m.endswith(part))]
    close += difflib.get_close_matches(part, [m for m in known if m not in close], n=limit)
    return close[:limit]


def register_measure(measure: PairwiseMeasure) -> PairwiseMeasure:
    """Add (or replace) a measure that :func:`pairwise` can compute by name.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import MEASURES, PairwiseMeasure, pairwise, register_measure
        >>> mean_gap = PairwiseMeasure(
        ...     "mean_gap",
        ...     symmetric=True,
        ...     function=lambda x, y: (x.mean() - y.mean()).abs().double(),
        ...     kind="distance",
        ...     higher_is_better=False,
        ...     bounds=(0.0, None),
        ... )
        >>> _ = register_measure(mean_gap)
        >>> pairwise([torch.zeros(4, 2), torch.ones(4, 2)], measure="mean_gap").tolist()
        [[0.0, 1.0], [1.0, 0.0]]
        >>> del MEASURES["mean_gap"]
    """
    if not isinstance(measure, PairwiseMeasure):
        raise InputTypeError(
            f"measure must be a PairwiseMeasure, got {type(measure).__name__} ({measure!r})."
        )
    routes = [
        measure.from_moments is not None,
        measure.prepare is not None,
        measure.function is not None,
    ]
    if sum(routes) != 1 or (measure.prepare is None) != (measure.compare is None):
        raise InvalidOptionError(
            f"measure {measure.name!r} must set exactly one of from_moments, "
            "prepare + compare, or function"
        )
    if measure.kind not in ("similarity", "distance"):
        raise InvalidOptionError(
            f"measure {measure.name!r} has kind {measure.kind!r}; use 'similarity' or 'distance'."
        )
    MEASURES[measure.name] = measure
    return measure


def _required_options(spec: PairwiseMeasure) -> list[str]:
    """The keyword-only options of the measure's function (or moment core) without a
    default, which :func:`pairwise` cannot leave out."""
    core = spec.function if spec.function is not None else spec.from_moments
    if core is None:
        return []
    params = inspect.signature(core).parameters.values()
    return [
        p.name
        for p in params
        if p.kind is p.KEYWORD_ONLY and p.default is p.empty and p.name != "input_dtype"
    ]


def _as_named(
    reps: Sequence[Any] | Mapping[str, Any], *, name: str, min_samples: int
) -> tuple[list[Any], list[Tensor]]:
    if isinstance(reps, (str, bytes)) or not isinstance(reps, (Mapping, Sequence)):
        raise InputTypeError(
            f"{name} must be a list or dict of (n, d) representations, got "
            f"{type(reps).__name__}; wrap a single representation in a list: [x]."
        )
    items = list(reps.items()) if isinstance(reps, Mapping) else list(enumerate(reps))
    if not items:
        raise ShapeError(f"{name} is empty: pass a list (or dict) of (n, d) representations.")
    keys = [key for key, _ in items]
    return keys, [
        check_matrix(x, name=f"{name}[{key!r}]", min_samples=min_samples) for key, x in items
    ]


def _layer(key: Any, side: str) -> str:
    return f"layer {key!r} (of {side})"


def _renamed(error: SubspacesError, x: str, y: str | None) -> SubspacesError:
    """``error`` of the same class, its ``x`` / ``y`` replaced by the layers' names."""
    message = str(error)
    for side in ("x", "y"):  # the layer, not the argument, is what the caller can check
        message = message.replace(f"check that {side} is", "check that the layer is")
    first, _, rest = message.partition(" ")
    if first == "x":
        text = f"{x} {rest}"
    elif first == "y" and y is not None:
        text = f"{y} {rest}"
    else:
        text = f"{x}{'' if y is None else ' × ' + y}: {message}"
    try:
        return type(error)(text)
    except TypeError:  # an error class with another signature: keep it as it is
        return error


@contextmanager
def _named(x: str, y: str | None = None) -> Iterator[None]:
    """Errors of the package raised inside name the layer(s) ``x`` (and ``y``)."""
    try:
        yield
    except InvalidOptionError:  # about the options, not the layers
        raise
    except SubspacesError as error:
        renamed = _renamed(error, x, y)
        if renamed is error:
            raise
        raise renamed from error


def pairwise(
    xs: Sequence[Any] | Mapping[str, Any],
    ys: Sequence[Any] | Mapping[str, Any] | None = None,
    *,
    measure: str | PairwiseMeasure = "linear_cka",
    progress: bool | None = None,
    chunk_size: int | None = None,
    **options: Any,
) -> Tensor:
    """The matrix of ``measure`` between every representation of ``xs`` and of ``ys``.

    ``result[i, j] = measure(xs[i], ys[j], **options)``. With ``ys=None`` the list is
    compared with itself; a symmetric measure then computes only the upper triangle.
    Each representation's own statistics are computed once (its mean and ``X^T X`` for
    moment-based measures such as CKA, CCA and Procrustes; its neighbor graph for
    neighborhood measures): a list of L layers with itself costs L + L(L-1)/2 products of
    n × d × d, against 3 L(L+1)/2 for a loop over the pairs i <= j. Centering uses each
    representation's mean and products accumulate in float64, as in the single-pair
    functions.

    Args:
        xs: list or dict of ``(n, d_i)`` representations of the same n inputs (e.g. the
            layers of one model). Dict keys are used in error messages.
        ys: a second list (e.g. the layers of another model), or ``None``.
        measure: a name in :data:`MEASURES` (``sorted(MEASURES)`` lists them) or a
            :class:`PairwiseMeasure`.
        progress: show a progress bar; ``None`` shows one when there are more than 16 pairs.
        chunk_size: rows processed at once: per float32 product for moment-based measures
            (default :data:`~subspaces.linalg.CHUNK_SIZE`), and passed on to the measures
            that take a ``chunk_size`` of their own (RSA, RBF CKA, uniformity...; default
            theirs).
        **options: passed to the measure (e.g. ``debiased=True``, ``k=10``).

    Returns:
        A ``(len(xs), len(ys))`` float64 tensor on the inputs' device.

    Raises:
        SubspacesError: the single-pair error of the measure (same class), naming the
            layer(s) by key: ``layer 'embeddings' (of ys) has zero variance ...``.

    Warns:
        SmallSampleWarning: once per distinct reason, when the sample count fixes the
            value of some pairs (:meth:`PairwiseMeasure.caveat`).

    Examples:
        >>> import torch
        >>> from subspaces.similarity import pairwise
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> m = pairwise([x, y, x + 1], measure="linear_cka")
        >>> [[round(float(v), 4) for v in row] for row in m]
        [[1.0, 0.6838, 1.0], [0.6838, 1.0, 0.6838], [1.0, 0.6838, 1.0]]
    """
    if isinstance(measure, str):
        if measure not in MEASURES:
            close = closest_measures(measure)
            hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
            known = ", ".join(sorted(MEASURES))
            raise InvalidOptionError(f"unknown measure {measure!r}{hint}; known measures: {known}.")
        spec = MEASURES[measure]
    elif isinstance(measure, PairwiseMeasure):
        spec = measure
    else:
        raise InvalidOptionError(
            f"measure must be a name in MEASURES (e.g. 'linear_cka') or a PairwiseMeasure, "
            f"got {type(measure).__name__} ({measure!r})."
        )
    if progress is not None:
        check_flag(progress, name="progress")
    if chunk_size is not None:
        chunk_size = check_positive_int(chunk_size, name="chunk_size")
    accepted = spec.accepted_options()
    forward = spec.from_moments is None and accepted is not None and "chunk_size" in accepted
    if chunk_size is not None and forward:
        options = {**options, "chunk_size": chunk_size}
    unknown = sorted(set(options) - set(accepted)) if accepted is not None else []
    if unknown:
        listing = ", ".join(accepted) if accepted else "none"
        raise InvalidOptionError(
            f"measure {spec.name!r} takes no option {unknown[0]!r}; its options are: {listing}."
        )
    missing = [name for name in _required_options(spec) if name not in options]
    if missing:
        raise InvalidOptionError(
            f"measure {spec.name!r} needs the option {missing[0]!r}, which has no default; "
            f"pass it to pairwise (e.g. pairwise(xs, ys, measure={spec.name!r}, "
            f"{missing[0]}=...))."
        )
    x_keys, xs_t = _as_named(xs, name="xs", min_samples=spec.min_samples)
    same = ys is None
    y_side = "xs" if same else "ys"
    y_keys, ys_t = (
        (x_keys, xs_t) if ys is None else _as_named(ys, name="ys", min_samples=spec.min_samples)
    )
    n = xs_t[0].shape[0]
    everything = xs_t if same else xs_t + ys_t
    names = [f"xs[{k!r}]" for k in x_keys] + ([] if same else [f"ys[{k!r}]" for k in y_keys])
    for name, t in zip(names, everything, strict=True):
        if t.shape[0] != n:
            raise ShapeError(
                f"every representation must hold the same samples, but {names[0]} has {n} "
                f"rows and {name} has shape {tuple(t.shape)}; pass the layers of the same "
                "inputs (e.g. stores extracted from the same texts)."
            )
    check_same_device(*everything, names=names)
    x_names = [_layer(k, "xs") for k in x_keys]
    y_names = [_layer(k, y_side) for k in y_keys]
    upper = same and spec.symmetric
    pairs = [(i, j) for i in range(len(xs_t)) for j in range(len(ys_t)) if not upper or j >= i]
    show = len(pairs) > 16 if progress is None else progress
    bar = tqdm(total=len(pairs), desc=f"pairwise {spec.name}", disable=not show, leave=False)
    out = torch.full(
        (len(xs_t), len(ys_t)), float("nan"), dtype=torch.float64, device=xs_t[0].device
    )
    with collected_once():
        try:
            if spec.from_moments is not None:
                chunk = CHUNK_SIZE if chunk_size is None else chunk_size
                names_xy = (x_names, y_names)
                _moment_route(spec, xs_t, ys_t, same, pairs, out, bar, chunk, options, names_xy)
            elif spec.prepare is not None and spec.compare is not None:
                px = []
                for x, name in zip(xs_t, x_names, strict=True):
                    with _named(name):
                        px.append(spec.prepare(x, **options))
                py = px
                if not same:
                    py = []
                    for y, name in zip(ys_t, y_names, strict=True):
                        with _named(name):
                            py.append(spec.prepare(y, **options))
                for i, j in pairs:
                    with _named(x_names[i], y_names[j]):
                        out[i, j] = spec.compare(px[i], py[j], **options)
                    bar.update()
            else:
                assert spec.function is not None
                for i, j in pairs:
                    with _named(x_names[i], y_names[j]):
                        out[i, j] = spec.function(xs_t[i], ys_t[j], **options)
                    bar.update()
        finally:
            bar.close()
    if upper:
        lower = torch.tril_indices(len(xs_t), len(xs_t), offset=-1)
        out[lower[0], lower[1]] = out[lower[1], lower[0]]
    return out


@dataclass
class _Own:
    """A representation's own statistics, computed once."""

    mean: Tensor  # float64
    mean_cast: Tensor  # in the data's dtype, used for centering (of the data times 2**-exponent)
    residual: Tensor  # Σ (x - mean_cast), float64: makes the centering exact
    cxx: Tensor
    row_sq: Tensor | None  # ||x_i - mean||², float64, for debiased estimators
    exponent: int = 0  # products are formed on x · 2**-exponent (extreme scales), then undone


def _scaled_chunk(x: Tensor, start: int, chunk_size: int, dtype: torch.dtype, e: int) -> Tensor:
    return ldexp(x[start : start + chunk_size].to(dtype), -e)


def _own_statistics(x: Tensor, *, dtype: torch.dtype, row_norms: bool, chunk_size: int) -> _Own:
    n = x.shape[0]
    starts = range(0, n, chunk_size)
    # An exact power of two keeps the products in range at extreme scales (float32 squares
    # of 1e20 overflow, of 1e-25 vanish); the float64 sums are scaled back (0 if ordinary).
    e = scale_exponent(x)
    # The mean only sets the centering point: chunk sums in the data's dtype are enough,
    # since the residual below makes the centering exact.
    total = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device)
    for start in starts:
        total += _scaled_chunk(x, start, chunk_size, x.dtype, e).sum(0).to(torch.float64)
    mean_cast = (total / n).to(dtype)
    residual = torch.zeros_like(total)
    cxx = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64, device=x.device)
    for start in starts:
        c = _scaled_chunk(x, start, chunk_size, dtype, e) - mean_cast
        residual += c.sum(0).to(torch.float64)
        cxx += (c.T @ c).to(torch.float64)
    delta = residual / n
    cxx -= n * torch.outer(delta, delta)
    mean = ldexp(mean_cast.to(torch.float64) + delta, e)
    residual, cxx = ldexp(residual, e), ldexp(cxx, 2 * e)
    check_no_overflow(cxx, name="a representation", what="the second moments")
    row_sq = None
    if row_norms:  # ||x_i - mean||² in float64, for debiased estimators
        row_sq = torch.cat(
            [(x[s : s + chunk_size].to(torch.float64) - mean).square().sum(1) for s in starts]
        )
    return _Own(mean, mean_cast, residual, 0.5 * (cxx + cxx.T), row_sq, e)


def _pair(n: int, ox: _Own, oy: _Own, cxy: Tensor) -> CenteredMoments:
    norms = None
    if ox.row_sq is not None and oy.row_sq is not None:
        px, py = ox.row_sq, oy.row_sq
        norms = RowNormSums(px.sum(), py.sum(), px @ px, py @ py, px @ py)
    return CenteredMoments(n, ox.mean, oy.mean, ox.cxx, oy.cxx, cxy, norms)


def _moment_route(
    spec: PairwiseMeasure,
    xs: list[Tensor],
    ys: list[Tensor],
    same: bool,
    pairs: list[tuple[int, int]],
    out: Tensor,
    bar: Any,
    chunk_size: int,
    options: dict[str, Any],
    names: tuple[list[str], list[str]],
) -> None:
    assert spec.from_moments is not None
    x_names, y_names = names
    need_norms = spec.row_norms(options)
    data_dtype = xs[0].dtype
    for t in (*xs, *ys):
        data_dtype = torch.promote_types(data_dtype, t.dtype)
    # One dtype for every product: the data's, or float64 for measures that whiten.
    dtype = torch.float64 if spec.float64_products else data_dtype
    if spec.float64_products:
        options = {**options, "input_dtype": data_dtype}

    def own(t: Tensor) -> _Own:
        return _own_statistics(t, dtype=dtype, row_norms=need_norms, chunk_size=chunk_size)

    def owns(ts: list[Tensor], names: list[str]) -> list[_Own]:
        stats = []
        for t, name in zip(ts, names, strict=True):
            with _named(name):
                stats.append(own(t))
        return stats

    own_x = owns(xs, x_names)
    own_y = own_x if same else owns(ys, y_names)
    n = xs[0].shape[0]
    for i, x in enumerate(xs):
        # A representation with itself reuses its own X^T X: no product, and exactly 1 for CKA.
        cols = [j for (a, j) in pairs if a == i and not (same and j == i)]
        if same and (i, i) in pairs:
            with _named(x_names[i], y_names[i]):
                out[i, i] = spec.from_moments(_pair(n, own_x[i], own_x[i], own_x[i].cxx), **options)
            bar.update()
        if not cols:
            continue
        cross = {
            j: torch.zeros(x.shape[1], ys[j].shape[1], dtype=torch.float64, device=x.device)
            for j in cols
        }
        ex = own_x[i].exponent
        for start in range(0, n, chunk_size):
            xc = _scaled_chunk(x, start, chunk_size, dtype, ex) - own_x[i].mean_cast
            for j in cols:
                ey = own_y[j].exponent
                yc = _scaled_chunk(ys[j], start, chunk_size, dtype, ey) - own_y[j].mean_cast
                cross[j] += (xc.T @ yc).to(torch.float64)
        dx = own_x[i].residual / n
        for j in cols:
            oy = own_y[j]
            cxy = ldexp(cross.pop(j), ex + oy.exponent) - n * torch.outer(dx, oy.residual / n)
            with _named(x_names[i], y_names[j]):
                out[i, j] = spec.from_moments(_pair(n, own_x[i], oy, cxy), **options)
            bar.update()
