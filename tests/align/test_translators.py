"""Tests of subspaces.align.translators: Procrustes, least-squares maps, translation scores."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from subspaces._checks import (
    DegenerateInputError,
    InputTypeError,
    InvalidOptionError,
    NonFiniteError,
    NotFittedError,
    ShapeError,
    TooFewSamplesError,
)
from subspaces.align.translators import (
    LinearTranslator,
    Procrustes,
    linear_map,
    procrustes_map,
)

F64 = torch.float64
FAST = settings(max_examples=25, deadline=None)
SEEDS = st.integers(0, 2**31 - 1)
# Exact recovery in float64: the fit goes through an SVD / eigh of well-conditioned d × d
# float64 matrices, so errors are a few hundred eps at most.
EXACT = 1e-10


def gaussian(seed: int, n: int = 40, d: int = 5) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=F64) + 3.0


def orthogonal(seed: int, d: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed + 1)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=F64))
    return q


# ---------------------------------------------------------------------------------------
# Exact recovery


@pytest.mark.parametrize("scale", [False, True], ids=["rotation", "rotation+scale"])
def test_procrustes_recovers_rotation_scale_and_shift(scale: bool) -> None:
    x, q = gaussian(0), orthogonal(0, 5)
    c = 2.5 if scale else 1.0
    shift = torch.arange(5, dtype=F64)
    y = c * x @ q + shift
    model = Procrustes(scale=scale).fit(x, y)
    torch.testing.assert_close(model.rotation_, q, atol=EXACT, rtol=0)
    torch.testing.assert_close(model.scale_, torch.tensor(c, dtype=F64), atol=EXACT, rtol=0)
    torch.testing.assert_close(model.transform(x), y, atol=EXACT, rtol=0)


def test_procrustes_without_centering_recovers_a_linear_rotation() -> None:
    x, q = gaussian(1), orthogonal(1, 5)
    model = Procrustes(center=False).fit(x, x @ q)
    torch.testing.assert_close(model.rotation_, q, atol=EXACT, rtol=0)
    assert torch.count_nonzero(model.x_mean_) == 0


@pytest.mark.parametrize("d1,d2", [(3, 5), (5, 3)], ids=["narrow-to-wide", "wide-to-narrow"])
def test_procrustes_different_widths_is_semi_orthogonal(d1: int, d2: int) -> None:
    x = gaussian(2, d=d1)
    w = orthogonal(2, max(d1, d2))[:d1, :d2]  # orthonormal rows or columns
    y = x @ w
    model = Procrustes().fit(x, y)
    eye = torch.eye(min(d1, d2), dtype=F64)
    gram = model.rotation_ @ model.rotation_.T if d1 < d2 else model.rotation_.T @ model.rotation_
    torch.testing.assert_close(gram, eye, atol=EXACT, rtol=0)
    if d1 < d2:  # an isometric embedding: y is recovered exactly
        torch.testing.assert_close(model.transform(x), y, atol=EXACT, rtol=0)


@pytest.mark.parametrize("center", [True, False], ids=["centered", "uncentered"])
@pytest.mark.parametrize("d1,d2", [(3, 5), (5, 3), (4, 4)], ids=["narrow", "wide", "square"])
def test_procrustes_scale_is_least_squares_for_the_fitted_map(
    center: bool, d1: int, d2: int
) -> None:
    # s must minimize ||s (x - μx) W - (y - μy)||_F for the W returned, whatever the widths:
    # s* = <Xc W, Yc> / ||Xc W||². With d1 > d2, ||Xc W|| < ||Xc||, so tr Σ / ||Xc||² (the
    # zero-padded problem's scale) would shrink every prediction.
    x, y = gaussian(20, d=d1), 2.0 * gaussian(21, d=d2) + x_part(gaussian(20, d=d1), d2)
    fitted = procrustes_map(x, y, center=center, scale=True)
    xc, yc = x - fitted.x_mean, y - fitted.y_mean
    xw = xc @ fitted.rotation
    best = (xw * yc).sum() / xw.square().sum()
    torch.testing.assert_close(fitted.scale, best, atol=1e-12, rtol=0)


def x_part(x: torch.Tensor, d2: int) -> torch.Tensor:
    """x's first d2 coordinates, zero-padded to d2: a y that correlates with x."""
    return torch.nn.functional.pad(x[:, :d2], (0, max(0, d2 - x.shape[1])))


@pytest.mark.parametrize("bias", [True, False], ids=["affine", "linear"])
def test_linear_translator_recovers_map(bias: bool) -> None:
    x = gaussian(3, d=4)
    g = torch.Generator().manual_seed(3)
    b_true = torch.randn(4, 6, generator=g, dtype=F64)
    offset = torch.randn(6, generator=g, dtype=F64) if bias else torch.zeros(6, dtype=F64)
    y = x @ b_true + offset
    model = LinearTranslator(bias=bias).fit(x, y)
    torch.testing.assert_close(model.weight_, b_true, atol=EXACT, rtol=0)
    torch.testing.assert_close(model.bias_, offset, atol=EXACT, rtol=0)
    assert model.rank_ == 4


def test_linear_translator_rank_deficient_gives_minimum_norm_solution() -> None:
    x = gaussian(4, d=3)
    x = torch.cat([x, x[:, :1]], 1)  # a duplicated feature: rank 3 of 4
    y = x[:, :1] * 2.0 + x[:, 1:2]
    model = LinearTranslator().fit(x, y)
    assert model.rank_ == 3
    expected = torch.tensor([[1.0], [1.0], [0.0], [1.0]], dtype=F64)  # weight split evenly
    torch.testing.assert_close(model.weight_, expected, atol=1e-9, rtol=0)


def test_ridge_shrinks_the_weights() -> None:
    x, y = gaussian(5), gaussian(6, d=3)
    norms = [float(linear_map(x, y, ridge=r).weight.norm()) for r in (0.0, 1.0, 10.0, 100.0)]
    assert norms == sorted(norms, reverse=True)


@pytest.mark.parametrize("bias", [True, False], ids=["affine", "linear"])
def test_ridge_is_relative_to_the_mean_eigenvalue(bias: bool) -> None:
    # B = (C + λ tr(C)/d I)⁻¹ G, C and G centered (affine) or raw (linear)
    x, y = gaussian(7), gaussian(8, d=3)
    xc, yc = (x - x.mean(0), y - y.mean(0)) if bias else (x, y)
    c = xc.T @ xc
    lam = 0.3 * torch.trace(c) / c.shape[0]
    expected = torch.linalg.solve(c + lam * torch.eye(5, dtype=F64), xc.T @ yc)
    fitted = linear_map(x, y, ridge=0.3, bias=bias)
    torch.testing.assert_close(fitted.weight, expected, atol=EXACT, rtol=0)
    assert fitted.rank == 5


def test_ridge_fit_does_not_change_when_the_data_are_rescaled() -> None:
    x, y = gaussian(9), gaussian(10, d=3)
    a = LinearTranslator(ridge=0.5).fit(x, y).transform(x)
    b = LinearTranslator(ridge=0.5).fit(1e3 * x, y).transform(1e3 * x)
    torch.testing.assert_close(a, b, atol=1e-9, rtol=1e-9)


# ---------------------------------------------------------------------------------------
# Streaming and invariances


@FAST
@given(seed=SEEDS, cuts=st.lists(st.integers(1, 39), max_size=4, unique=True))
def test_partial_fit_over_any_split_equals_fit(seed: int, cuts: list[int]) -> None:
    x, y = gaussian(seed), gaussian(seed + 7, d=3) * 5.0 - 40.0
    bounds = [0, *sorted(cuts), 40]
    for model, attribute in (
        (Procrustes(scale=True), "rotation_"),
        (LinearTranslator(ridge=0.5), "weight_"),
    ):
        one_shot = getattr(type(model)(**_options(model)).fit(x, y), attribute)
        for a, b in itertools.pairwise(bounds):
            model.partial_fit(x[a:b], y[a:b])
        assert model.n_samples_seen_ == 40
        torch.testing.assert_close(getattr(model, attribute), one_shot, atol=1e-10, rtol=0)


def _options(model: Procrustes | LinearTranslator) -> dict[str, object]:
    if isinstance(model, Procrustes):
        return {"center": model.center, "scale": model.scale}
    return {"bias": model.bias, "ridge": model.ridge}


@FAST
@given(seed=SEEDS)
def test_procrustes_predictions_equivariant_to_rotating_and_shifting_x(seed: int) -> None:
    x, y, q = gaussian(seed), gaussian(seed + 1), orthogonal(seed, 5)
    x_new = gaussian(seed + 2, n=7)

    def moved(a: torch.Tensor) -> torch.Tensor:
        return a @ q - 4.0

    base = Procrustes(scale=True).fit(x, y).transform(x_new)
    other = Procrustes(scale=True).fit(moved(x), y).transform(moved(x_new))
    torch.testing.assert_close(other, base, atol=1e-10, rtol=0)


@FAST
@given(seed=SEEDS)
def test_linear_predictions_invariant_to_invertible_maps_of_x(seed: int) -> None:
    x, y = gaussian(seed), gaussian(seed + 1, d=3)
    x_new = gaussian(seed + 2, n=7)
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(5, 5, generator=g, dtype=F64) + 3 * torch.eye(5, dtype=F64)
    base = LinearTranslator().fit(x, y).transform(x_new)
    other = LinearTranslator().fit(x @ a + 1.0, y).transform(x_new @ a + 1.0)
    torch.testing.assert_close(other, base, atol=1e-8, rtol=0)


def test_transform_keeps_float32_and_accepts_numpy() -> None:
    x = gaussian(8).float()
    model = Procrustes().fit(x.numpy(), (x @ orthogonal(8, 5).float()).numpy())
    out = model.transform(x.numpy())
    assert out.dtype == torch.float32
    assert out.shape == (40, 5)


# ---------------------------------------------------------------------------------------
# Scores


def test_score_method_uses_held_out_pairs() -> None:
    x, q = gaussian(12, n=60), orthogonal(12, 5)
    y = x @ q
    model = Procrustes().fit(x[:40], y[:40])
    s = model.score(x[40:], y[40:], ks=(1,))
    assert float(s.top_k[1]) == 1.0
    assert float(s.mse) < 1e-20


# ---------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("cls", [Procrustes, LinearTranslator], ids=["procrustes", "linear"])
def test_fit_different_n_raises(cls: type) -> None:
    with pytest.raises(ShapeError, match=r"x has 40 rows .* y has 39"):
        cls().fit(gaussian(0), gaussian(1, n=39))


@pytest.mark.parametrize("cls", [Procrustes, LinearTranslator], ids=["procrustes", "linear"])
def test_transform_wrong_width_raises(cls: type) -> None:
    model = cls().fit(gaussian(0), gaussian(1, d=3))
    with pytest.raises(ShapeError, match=r"x has 4 features .* fitted with 5"):
        model.transform(gaussian(2, d=4))


def test_score_wrong_target_width_raises() -> None:
    model = Procrustes().fit(gaussian(0), gaussian(1, d=3))
    with pytest.raises(ShapeError, match=r"y has 5 features .* fitted with 3"):
        model.score(gaussian(2), gaussian(3))


def test_score_different_n_raises() -> None:
    model = Procrustes().fit(gaussian(0), gaussian(1, d=3))
    with pytest.raises(ShapeError, match=r"x has 40 rows and y has 39"):
        model.score(gaussian(2), gaussian(3, n=39, d=3))


@pytest.mark.parametrize("cls", [Procrustes, LinearTranslator], ids=["procrustes", "linear"])
def test_transform_before_fit_raises(cls: type) -> None:
    with pytest.raises(NotFittedError, match=r"not fitted.* call fit"):
        cls().transform(gaussian(0))


def test_attribute_before_fit_is_missing() -> None:
    assert not hasattr(Procrustes(), "rotation_")
    assert not hasattr(LinearTranslator(), "n_samples_seen_")


def test_set_params_after_fit_solves_again_on_the_same_rows() -> None:
    x, q = gaussian(3), orthogonal(3, 5)
    model = Procrustes().fit(x, 2.0 * x @ q)
    assert float(model.scale_) == 1.0
    model.set_params(scale=True)
    assert float(model.scale_) == pytest.approx(2.0)
    assert model.n_samples_seen_ == x.shape[0]


def test_estimators_clone_with_their_parameters() -> None:
    from sklearn.base import clone

    model = LinearTranslator(bias=False, ridge=0.1, chunk_size=7).fit(gaussian(0), gaussian(1))
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "weight_")


def test_non_finite_input_raises() -> None:
    x = gaussian(0)
    x[3, 2] = float("nan")
    with pytest.raises(NonFiniteError, match="x contains 1 NaN"):
        Procrustes().fit(x, gaussian(1))


def test_fit_with_one_row_raises() -> None:
    with pytest.raises(TooFewSamplesError, match="at least 2"):
        LinearTranslator().fit(gaussian(0, n=1), gaussian(1, n=1))


def test_partial_fit_width_change_raises() -> None:
    model = Procrustes().partial_fit(gaussian(0), gaussian(1))
    with pytest.raises(ShapeError, match="this batch has 4 and 5 features"):
        model.partial_fit(gaussian(2, d=4), gaussian(3))


@pytest.mark.parametrize("side", ["x", "y"])
def test_procrustes_constant_side_raises(side: str) -> None:
    x, y = gaussian(0), gaussian(1)
    if side == "x":
        x = torch.ones_like(x) * 7.0
    else:
        y = torch.ones_like(y) * 7.0
    with pytest.raises(DegenerateInputError, match=f"{side} has zero variance"):
        procrustes_map(x, y)


def test_linear_constant_x_raises() -> None:
    with pytest.raises(DegenerateInputError, match="x has zero variance"):
        linear_map(torch.ones(10, 3), gaussian(1, n=10))


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"ridge": -1.0}, InvalidOptionError, "ridge must lie in"),
        ({"bias": 1}, InputTypeError, "bias must be True or False"),
        ({"rtol": 2.0}, InvalidOptionError, "rtol must lie in"),
    ],
    ids=["negative-ridge", "int-bias", "rtol"],
)
def test_linear_translator_bad_options(kwargs: dict[str, object], error: type, match: str) -> None:
    model = LinearTranslator(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(error, match=match):  # stored as given, checked at fit
        model.fit(gaussian(0), gaussian(1, d=3))


def test_procrustes_bad_flag() -> None:
    model = Procrustes(center="yes")  # type: ignore[arg-type]
    assert model.center == "yes"  # stored as given, checked at fit
    with pytest.raises(InputTypeError, match="center must be True or False"):
        model.fit(gaussian(0), gaussian(1))


def test_numpy_and_torch_fits_agree() -> None:
    x, y = gaussian(13), gaussian(14, d=3)
    a = procrustes_map(x.numpy(), y.numpy(), scale=True)
    b = procrustes_map(x, y, scale=True)
    np.testing.assert_allclose(a.rotation.numpy(), b.rotation.numpy(), atol=0)
