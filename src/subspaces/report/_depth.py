"""Depth curves: the similarity of corresponding layers of two models, with its uncertainty.

For each pair of distinct models and each measure, the layers are paired by relative depth
(:func:`corresponding_layers`) and each pair carries three things:

* ``value``: the measure on the pair, read from the similarity matrix (not recomputed, so
  it equals :func:`subspaces.similarity.pairwise`);
* ``ci``: a bootstrap interval at ``level``, ``value ± t · sd``: sd the standard
  deviation of the measure over ``B`` seeded draws of the rows (its bootstrap standard
  error), t the ``(1 + level) / 2`` quantile of Student's t with B - 1 degrees of freedom,
  clipped to the measure's range when it is known;
* ``null``: the chance level, the same measure with the rows of y permuted (the pairing of
  inputs destroyed, each side's own structure kept): ``[mean, q]`` over ``P`` seeded
  permutations, ``q`` the quantile at ``level`` on the side of "alike" (the upper
  quantile for a similarity, the lower one for a distance). A value beyond ``q`` is one
  that fewer than ``1 - level`` of the permutations reach.

Why a standard-error interval and not the percentile interval of the draws: the measures
of this package are biased in n (CKA, CCA and neighborhood measures of fewer distinct rows
read more alike), and a bootstrap draw holds about 63% distinct rows; the percentile
interval then sits beside the value rather than around it (on MiniLM with n = 120 < d =
384 it excluded the value at every layer), while the spread of the draws is still a fair
estimate of the standard error. With few draws (the default is 20) t also widens the
interval for the uncertainty of sd itself (t = 2.09 at 20 draws, 2.26 at 10, against
1.96), where the percentiles of 20 values would cover at most about 90% (of 10, 80%), not
95%. On all-MiniLM-L6-v2 over 300 inputs, the spread of the draws was within 30% of the
spread of each measure over independent samples of the same size (40 samples of one
layer pair): 15-25% wider for CKA and Procrustes (conservative), 15-20% narrower for
mutual kNN's half-samples.

How rows are drawn depends on how the measure uses them:

* Moment measures (CKA, the CCA family, Procrustes...: functions of means and X^T X):
  n rows drawn *with replacement* (the ordinary bootstrap); a row drawn twice weighs twice
  in the moments, which is what the bootstrap means.
* Every other measure (nearest neighbors, RDMs, kernels...): a row drawn twice would be
  its own nearest neighbor at distance 0 in both representations, which inflates every
  neighborhood measure. ``m = n // 2`` rows are drawn *without replacement*
  ("half-sampling"): the spread of a statistic over half-samples is, to first order, its
  spread over samples of size n (the variance of a mean of m rows drawn without
  replacement is (σ²/m)(1 - m/n) = σ²/n at m = n/2). Their level at n/2 differs from the
  value at n (the k nearest of fewer rows are farther), which the interval ignores: it
  uses their spread only.

Draws are shared by every measure and every pair of layers (the same seeded rows), each
layer pair's statistics are computed once per draw and shared by its measures (one set
of float64 moments for all the moment measures; the full data's own scatter matrices
once for all permutations, only the cross product per permutation; a neighbor list
relabeled rather than searched again under a permutation).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from subspaces.linalg import (
    CHUNK_SIZE,
    CenteredMoments,
    MomentSums,
    RowNormSums,
    accumulate_moments,
    center_moments,
)
from subspaces.report._cells import Recorder, failure
from subspaces.report.schema import json_pointer
from subspaces.similarity import MEASURES

__all__ = ["corresponding_layers", "depth_curves"]


def corresponding_layers(n_x: int, n_y: int) -> list[tuple[int, int, float]]:
    """``(i, j, depth)`` triples pairing layer i of x with layer j of y.

    Equal counts pair by index, at relative depth ``i / (L - 1)`` (0 for L = 1). Otherwise
    every layer of the model with fewer layers is paired with the layer of the other at the
    nearest relative depth (the shallower on a tie), and the depth is the former's.

    Examples:
        >>> from subspaces.report._depth import corresponding_layers
        >>> corresponding_layers(3, 5)
        [(0, 0, 0.0), (1, 2, 0.5), (2, 4, 1.0)]
    """
    fewer, more = min(n_x, n_y), max(n_x, n_y)
    out: list[tuple[int, int, float]] = []
    for s in range(fewer):
        depth = s / (fewer - 1) if fewer > 1 else 0.0
        m = s if fewer == more else _nearest(s, fewer, more)
        out.append((s, m, depth) if n_x <= n_y else (m, s, depth))
    return out


def _nearest(s: int, fewer: int, more: int) -> int:
    """The layer of ``more`` (>= 2) layers nearest the relative depth of layer s of
    ``fewer``, the shallower on a tie: |j/(more-1) - s/(fewer-1)| compared in integers."""
    if fewer == 1:
        return 0
    return min(range(more), key=lambda j: (abs(j * (fewer - 1) - s * (more - 1)), j))


# ---------------------------------------------------------------------------------------
# Draws of one layer pair


def _moments64(
    x: Tensor,
    y: Tensor,
    rows_x: Tensor | None,
    rows_y: Tensor | None,
    *,
    self_terms: bool,
    cross: bool,
    row_norms: bool,
) -> CenteredMoments:
    """Float64 centered moments of ``x[rows_x]`` and ``y[rows_y]``, a chunk at a time."""
    state = MomentSums()
    n = x.shape[0] if rows_x is None else rows_x.numel()
    for start in range(0, n, CHUNK_SIZE):
        end = start + CHUNK_SIZE
        xb = x[start:end] if rows_x is None else x[rows_x[start:end]]
        yb = y[start:end] if rows_y is None else y[rows_y[start:end]]
        accumulate_moments(
            state,
            xb.to(torch.float64),
            yb.to(torch.float64),
            self_terms=self_terms,
            cross=cross,
            row_norms=row_norms,
        )
    return center_moments(state)


def _centered_row_norms(x: Tensor, y: Tensor, own: CenteredMoments) -> tuple[Tensor, Tensor]:
    """Float64 ``||x_i - mean_x||²`` and ``||y_i - mean_y||²`` for every row i."""
    assert own.mean_y is not None
    mx, my = own.mean_x, own.mean_y

    def norms(t: Tensor, mean: Tensor) -> Tensor:
        chunks = range(0, t.shape[0], CHUNK_SIZE)
        return torch.cat(
            [(t[s : s + CHUNK_SIZE].to(torch.float64) - mean).square().sum(1) for s in chunks]
        )

    return norms(x, mx), norms(y, my)


def _relabeled(prepared: Any, perm: Tensor) -> Any:
    """A prepared summary of y, as it would be for ``y[perm]``; None when unknown.

    Only neighbor lists are relabeled: an ``(n, k)`` integer tensor of row indices (row i
    lists the rows nearest to row i). Row i of ``y[perm]`` is row ``perm[i]`` of y, and row
    j of y is row ``inverse[j]`` of ``y[perm]``.
    """
    if (
        not isinstance(prepared, Tensor)
        or prepared.dim() != 2
        or prepared.shape[0] != perm.numel()
        or prepared.dtype.is_floating_point
        or prepared.dtype.is_complex
        or prepared.dtype == torch.bool
    ):
        return None
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(perm.numel(), device=perm.device)
    return inverse[prepared[perm]]


class _Pair:
    """One layer pair (x, y) and the measures to evaluate on its draws."""

    def __init__(self, x: Tensor, y: Tensor, chosen: Mapping[str, Mapping[str, Any]]) -> None:
        self.x, self.y = x, y
        self.chosen = chosen
        self.input_dtype = torch.promote_types(x.dtype, y.dtype)
        self.cache: dict[Any, tuple[Any, Exception | None]] = {}

    def shared(self, key: Any, make: Callable[[], Any]) -> Any:
        """``make()`` once per key (its failure too, raised again for each measure)."""
        if key not in self.cache:
            try:
                self.cache[key] = (make(), None)
            except Exception as error:
                failure(error)  # re-raises a fatal error
                self.cache[key] = (None, error)
        value, failed = self.cache[key]
        if failed is not None:
            raise failed
        return value

    def row_norms(self) -> bool:
        return any(
            MEASURES[name].from_moments is not None and MEASURES[name].row_norms(dict(opts))
            for name, opts in self.chosen.items()
        )

    def from_moments(self, name: str, m: CenteredMoments) -> Tensor:
        spec = MEASURES[name]
        assert spec.from_moments is not None
        options = {k: v for k, v in self.chosen[name].items() if k != "chunk_size"}
        if spec.float64_products:
            options["input_dtype"] = self.input_dtype
        return spec.from_moments(m, **options)

    def on_rows(self, name: str, rows: Tensor, moments: Callable[[], CenteredMoments]) -> Tensor:
        """The measure on the rows ``rows`` of both sides (a bootstrap draw)."""
        spec, options = MEASURES[name], dict(self.chosen[name])
        if spec.from_moments is not None:
            return self.from_moments(name, self.shared("moments", moments))
        x, y = self.x[rows], self.y[rows]
        if spec.prepare is not None and spec.compare is not None:
            return spec.compare(spec.prepare(x, **options), spec.prepare(y, **options), **options)
        assert spec.function is not None
        return spec.function(x, y, **options)

    def permuted(self, name: str, perm: Tensor) -> Tensor:
        """The measure on x and ``y[perm]`` (one draw of the null)."""
        spec, options = MEASURES[name], dict(self.chosen[name])
        x, y = self.x, self.y
        if spec.from_moments is not None:
            own = self.shared(
                "own",
                lambda: _moments64(x, y, None, None, self_terms=True, cross=False, row_norms=False),
            )
            c = self.shared(
                "cross",
                lambda: _moments64(x, y, None, perm, self_terms=False, cross=True, row_norms=False),
            )
            norms = None
            if self.row_norms():  # p_i = ||x_i - mean_x||², q_i likewise, paired as permuted
                p, q = self.shared("row norms", lambda: _centered_row_norms(x, y, own))
                qp = q[perm]
                norms = RowNormSums(p.sum(), q.sum(), p @ p, q @ q, p @ qp)
            m = CenteredMoments(c.n, own.mean_x, own.mean_y, own.cxx, own.cyy, c.cxy, norms)
            return self.from_moments(name, m)
        if spec.prepare is not None and spec.compare is not None:
            prepare, compare = spec.prepare, spec.compare
            px = self.shared(("prepared x", name), lambda: prepare(x, **options))
            py = self.shared(("prepared y", name), lambda: prepare(y, **options))
            relabeled = _relabeled(py, perm)
            py_perm = prepare(y[perm], **options) if relabeled is None else relabeled
            return compare(px, py_perm, **options)
        assert spec.function is not None
        return spec.function(x, y[perm], **options)


# ---------------------------------------------------------------------------------------
# Intervals


def _quantiles(values: Sequence[float], qs: Sequence[float]) -> list[float]:
    t = torch.tensor(list(values), dtype=torch.float64)
    return [float(v) for v in torch.quantile(t, torch.tensor(list(qs), dtype=torch.float64))]


def standard_error_interval(
    value: float, draws: Sequence[float], level: float, bounds: Sequence[float] | None
) -> list[float]:
    """``value ± t · sd``: sd the standard deviation of the B draws (the bootstrap standard
    error), t the ``(1 + level) / 2`` quantile of Student's t with B - 1 degrees of
    freedom; clipped to ``bounds`` (the measure's range) when known, never past the value
    itself (a value a rounding error outside its range stays inside its interval)."""
    from scipy.stats import t as student

    b = len(draws)
    mean = sum(draws) / b
    sd = (sum((v - mean) ** 2 for v in draws) / (b - 1)) ** 0.5
    half = float(student.ppf((1 + level) / 2, b - 1)) * sd
    out = [value - half, value + half]
    if bounds is not None:
        low, high = min(bounds[0], value), max(bounds[1], value)
        out = [min(max(v, low), high) for v in out]
    return out


def null_summary(values: Sequence[float], level: float, higher_is_alike: bool) -> list[float]:
    """``[mean, q]``: q the quantile at ``level`` on the side of "alike"."""
    (q,) = _quantiles(values, [level if higher_is_alike else 1 - level])
    return [sum(values) / len(values), q]


# ---------------------------------------------------------------------------------------
# The section


@dataclass
class _Point:
    measure: str
    record: int
    k: int
    value: float


@dataclass
class _Group:
    x: Tensor
    y: Tensor
    where: str  # "model 'A' layer 'l1' × model 'B' layer 'l1'", for progress
    points: list[_Point] = field(default_factory=list)


def depth_curves(
    layers_of: Mapping[str, Mapping[str, Tensor]],
    chosen: Mapping[str, Mapping[str, Any]],
    similarity: Mapping[str, Sequence[Mapping[str, Any]]],
    model_pairs: Sequence[tuple[str, str]],
    rec: Recorder,
    *,
    bootstrap: int,
    permutations: int,
    level: float,
    seed: int,
    ranges: Mapping[str, Sequence[float] | None],
    step: Callable[[str], None],
) -> dict[str, list[dict[str, Any]]]:
    """The ``depth`` section of the results (see the module docstring); fills ``rec``."""
    models = list(layers_of)
    distinct = [(a, b) for i, a in enumerate(models) for b in models[i + 1 :]]
    groups: dict[tuple[str, str, str, str], _Group] = {}
    out: dict[str, list[dict[str, Any]]] = {}
    for name in chosen:
        out[name] = []
        for a, b in distinct:
            r = len(out[name])
            s = model_pairs.index((a, b))
            matrix = similarity[name][s]["matrix"]
            la, lb = list(layers_of[a]), list(layers_of[b])
            pairs = corresponding_layers(len(la), len(lb))
            record: dict[str, Any] = {
                "x_model": a,
                "y_model": b,
                "x_layers": [la[i] for i, _, _ in pairs],
                "y_layers": [lb[j] for _, j, _ in pairs],
                "depth": [d for _, _, d in pairs],
                "value": [matrix[i][j] for i, j, _ in pairs],
                "ci": [None] * len(pairs) if bootstrap else None,
                "null": [None] * len(pairs) if permutations else None,
            }
            for k, (i, j, _) in enumerate(pairs):
                key = (a, la[i], b, lb[j])
                if key not in groups:  # every pair, computed or not: one progress step each
                    where = f"{a} / {la[i]} × {b} / {lb[j]}"
                    groups[key] = _Group(layers_of[a][la[i]], layers_of[b][lb[j]], where)
                value = matrix[i][j]
                if value is None:
                    reason = rec.missing[json_pointer("similarity", name, s, "matrix", i, j)]
                    for part in ("value", "ci", "null"):
                        if record[part] is not None:
                            rec.null(json_pointer("depth", name, r, part, k), reason)
                    continue
                groups[key].points.append(_Point(name, r, k, value))
            out[name].append(record)
    for group in groups.values():
        if bootstrap:
            if group.points:
                _bootstrap(group, chosen, out, rec, bootstrap, level, seed, ranges)
            step(f"depth intervals: {group.where}")
        if permutations:
            if group.points:
                _null(group, chosen, out, rec, permutations, level, seed)
            step(f"depth null baseline: {group.where}")
    return out


def _draws(
    group: _Group,
    chosen: Mapping[str, Mapping[str, Any]],
    rec: Recorder,
    count: int,
    evaluate: Callable[[_Pair, str], Tensor],
    advance: Callable[[_Pair], None],
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """``count`` draws of every measure of the group: the values, or why not."""
    names = [p.measure for p in group.points]
    pair = _Pair(group.x, group.y, {name: chosen[name] for name in names})
    values: dict[str, list[float]] = {name: [] for name in names}
    failed: dict[str, str] = {}
    for _ in range(count):
        for key in ("moments", "cross"):  # statistics of the previous draw
            pair.cache.pop(key, None)
        advance(pair)
        for name in names:
            if name in failed:
                continue
            try:
                v = float(rec.call(name, evaluate, pair, name))
            except Exception as error:
                failed[name] = failure(error)
                continue
            if v != v or v in (float("inf"), float("-inf")):
                failed[name] = f"measure {name!r} returned {v} (not a finite number) on a draw"
            else:
                values[name].append(v)
    return values, failed


def _bootstrap(
    group: _Group,
    chosen: Mapping[str, Mapping[str, Any]],
    out: dict[str, list[dict[str, Any]]],
    rec: Recorder,
    count: int,
    level: float,
    seed: int,
    ranges: Mapping[str, Sequence[float] | None],
) -> None:
    n = group.x.shape[0]
    device = group.x.device
    generator = torch.Generator().manual_seed(seed)
    rows: dict[str, Tensor] = {}

    def advance(pair: _Pair) -> None:
        # both draws every time: the rows do not depend on which measures are computed
        rows["with"] = torch.randint(n, (n,), generator=generator).to(device)
        rows["half"] = torch.randperm(n, generator=generator)[: n // 2].to(device)

    def evaluate(pair: _Pair, name: str) -> Tensor:
        moment = MEASURES[name].from_moments is not None
        drawn = rows["with"] if moment else rows["half"]
        return pair.on_rows(
            name,
            drawn,
            lambda: _moments64(
                pair.x,
                pair.y,
                drawn,
                drawn,
                self_terms=True,
                cross=True,
                row_norms=pair.row_norms(),
            ),
        )

    values, failed = _draws(group, chosen, rec, count, evaluate, advance)
    for p in group.points:
        where = json_pointer("depth", p.measure, p.record, "ci", p.k)
        if p.measure in failed:
            # the measure itself was defined on all n rows: say which rows a draw held
            drawn = (
                f"n rows drawn with replacement from the {n}"
                if MEASURES[p.measure].from_moments is not None
                else f"a half-sample of {n // 2} of the {n} rows, drawn without replacement"
            )
            rec.null(where, f"the bootstrap draws ({drawn}) failed: {failed[p.measure]}")
            continue
        interval = standard_error_interval(p.value, values[p.measure], level, ranges.get(p.measure))
        out[p.measure][p.record]["ci"][p.k] = interval


def _null(
    group: _Group,
    chosen: Mapping[str, Mapping[str, Any]],
    out: dict[str, list[dict[str, Any]]],
    rec: Recorder,
    count: int,
    level: float,
    seed: int,
) -> None:
    n = group.x.shape[0]
    device = group.x.device
    generator = torch.Generator().manual_seed(seed + 1)
    perm: dict[str, Tensor] = {}

    def advance(pair: _Pair) -> None:
        perm["perm"] = torch.randperm(n, generator=generator).to(device)

    def evaluate(pair: _Pair, name: str) -> Tensor:
        return pair.permuted(name, perm["perm"])

    values, failed = _draws(group, chosen, rec, count, evaluate, advance)
    for p in group.points:
        where = json_pointer("depth", p.measure, p.record, "null", p.k)
        if p.measure in failed:
            rec.null(where, f"the null baseline (rows of y permuted) failed: {failed[p.measure]}")
            continue
        alike = MEASURES[p.measure].higher_is_better is not False
        out[p.measure][p.record]["null"][p.k] = null_summary(values[p.measure], level, alike)
