"""Tests of subspaces.align.projected: CCA / PLS / PCA subspaces and projected alignment."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from subspaces import NotFittedError
from subspaces._checks import DegenerateInputError, InvalidOptionError, ShapeError
from subspaces.align.projected import (
    ProjectedAlignment,
    SubspaceProjection,
    project_moments,
    subspace_projection,
)
from subspaces.align.translators import LinearMap, Procrustes, linear_map
from subspaces.linalg.moments import paired_moments
from subspaces.similarity.cca import cca_correlations

F64 = torch.float64
FAST = settings(max_examples=25, deadline=None)
SEEDS = st.integers(0, 2**31 - 1)


def shared_latent(
    seed: int, n: int = 300, k: int = 3, private: float = 5.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x and y that share a k-dim latent z (exactly) plus loud private dimensions.

    x = [z, p_x] R_x + 1 (d1 = 10), y = [z M, p_y] R_y - 2 (d2 = 8), p independent with
    standard deviation ``private``; returns x, y and the true shared subspace of x
    (the first k rows of R_x, as a (d1, k) orthonormal basis).
    """
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, k, generator=g, dtype=F64)
    rx, _ = torch.linalg.qr(torch.randn(10, 10, generator=g, dtype=F64))
    ry, _ = torch.linalg.qr(torch.randn(8, 8, generator=g, dtype=F64))
    m = torch.randn(k, k, generator=g, dtype=F64) + 2 * torch.eye(k, dtype=F64)
    px = private * torch.randn(n, 10 - k, generator=g, dtype=F64)
    py = private * torch.randn(n, 8 - k, generator=g, dtype=F64)
    x = torch.cat([z, px], 1) @ rx + 1.0
    y = torch.cat([z @ m, py], 1) @ ry - 2.0
    return x, y, rx[:k].T


def subspace_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    """Sine of the largest principal angle between the column spaces of a and b."""
    qa, _ = torch.linalg.qr(a)
    qb, _ = torch.linalg.qr(b)
    cosines = torch.linalg.svdvals(qa.T @ qb)
    return float((1 - cosines.min() ** 2).clamp(min=0).sqrt())


# ---------------------------------------------------------------------------------------
# Projections


def test_cca_finds_the_shared_subspace() -> None:
    x, y, shared = shared_latent(0)
    bases = subspace_projection(x, y, method="cca", n_components=3)
    torch.testing.assert_close(bases.correlations, torch.ones(3, dtype=F64), atol=1e-10, rtol=0)
    # directions a live in the dual space: x a picks the shared coordinates; with an
    # orthogonal mixing R_x the directions span the shared rows of R_x.
    assert subspace_gap(bases.x_components, shared) < 1e-8


def test_pca_misses_the_shared_subspace_when_private_variance_dominates() -> None:
    x, y, shared = shared_latent(1)
    bases = subspace_projection(x, y, method="pca", n_components=3)
    assert subspace_gap(bases.x_components, shared) > 0.9


def test_cca_coordinates_are_white_and_correlate_canonically() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(200, 6, generator=g, dtype=F64)
    y = x[:, :4] @ torch.randn(4, 5, generator=g, dtype=F64)
    y = y + torch.randn(200, 5, generator=g, dtype=F64)
    proj = SubspaceProjection(method="cca", n_components=4).fit(x, y)
    zx, zy = proj.transform(x, y)
    eye = torch.eye(4, dtype=F64)
    torch.testing.assert_close(torch.cov(zx.T), eye, atol=1e-10, rtol=0)
    torch.testing.assert_close(torch.cov(zy.T), eye, atol=1e-10, rtol=0)
    cross = torch.cov(torch.cat([zx, zy], 1).T)[:4, 4:]
    rho = cca_correlations(x, y)[:4]
    torch.testing.assert_close(cross, torch.diag(rho), atol=1e-10, rtol=0)
    torch.testing.assert_close(proj.correlations_, rho, atol=1e-10, rtol=0)


@pytest.mark.parametrize("method", ["pls", "pca"])
def test_pls_and_pca_directions_are_orthonormal(method: str) -> None:
    x, y, _ = shared_latent(3)
    bases = subspace_projection(x, y, method=method, n_components=4)  # type: ignore[arg-type]
    eye = torch.eye(4, dtype=F64)
    torch.testing.assert_close(bases.x_components.T @ bases.x_components, eye, atol=1e-12, rtol=0)
    torch.testing.assert_close(bases.y_components.T @ bases.y_components, eye, atol=1e-12, rtol=0)


def test_pca_pairs_coordinates_with_non_negative_covariance() -> None:
    x, y, _ = shared_latent(4, private=0.1)
    bases = subspace_projection(x, y, method="pca", n_components=3)
    assert bool((bases.correlations >= 0).all())


def test_pls_maximizes_covariance() -> None:
    x, y, _ = shared_latent(5)
    bases = subspace_projection(x, y, method="pls", n_components=1)
    m = paired_moments(x, y)
    assert m.cxy is not None
    top = torch.linalg.svdvals(m.cxy)[0]
    cov = bases.x_components[:, 0] @ m.cxy @ bases.y_components[:, 0]
    torch.testing.assert_close(cov, top, atol=1e-9, rtol=1e-12)


def test_project_moments_equals_moments_of_projected_rows() -> None:
    x, y, _ = shared_latent(6)
    bases = subspace_projection(x[:200], y[:200], method="cca", n_components=2)
    direct = paired_moments(bases.project_x(x), bases.project_y(y))
    via = project_moments(paired_moments(x, y), bases)
    for name in ("mean_x", "mean_y", "cxx", "cyy", "cxy"):
        torch.testing.assert_close(getattr(via, name), getattr(direct, name), atol=1e-9, rtol=0)


@FAST
@given(seed=SEEDS, cuts=st.lists(st.integers(1, 119), max_size=3, unique=True))
def test_partial_fit_over_any_split_equals_fit(seed: int, cuts: list[int]) -> None:
    g = torch.Generator().manual_seed(seed)  # noisy: distinct correlations, unique directions
    x = torch.randn(120, 6, generator=g, dtype=F64) * 3.0 + 5.0
    y = x[:, :4] @ torch.randn(4, 5, generator=g, dtype=F64)
    y = y + torch.randn(120, 5, generator=g, dtype=F64)
    bounds = [0, *sorted(cuts), 120]
    one_shot = ProjectedAlignment(method="cca", n_components=3).fit(x, y)
    streamed = ProjectedAlignment(method="cca", n_components=3)
    for a, b in itertools.pairwise(bounds):
        streamed.partial_fit(x[a:b], y[a:b])
    torch.testing.assert_close(streamed.transform(x), one_shot.transform(x), atol=1e-8, rtol=0)


# ---------------------------------------------------------------------------------------
# The pipeline


@pytest.mark.parametrize("translator", ["procrustes", "linear"])
def test_cca_projection_makes_retrieval_perfect_where_naive_alignment_fails(
    translator: str,
) -> None:
    x, y, _ = shared_latent(7, n=400)
    train, test = slice(0, 300), slice(300, 400)
    naive = ProjectedAlignment(method="none", translator=translator).fit(x[train], y[train])  # type: ignore[arg-type]
    projected = ProjectedAlignment(method="cca", n_components=3, translator=translator).fit(
        x[train], y[train]
    )  # type: ignore[arg-type]
    assert float(projected.score(x[test], y[test]).top_k[1]) == 1.0
    assert float(naive.score(x[test], y[test]).top_k[1]) < 0.5


def test_method_none_is_plain_procrustes() -> None:
    x, y, _ = shared_latent(8)
    a = ProjectedAlignment(method="none").fit(x, y).transform(x)
    b = Procrustes().fit(x, y).transform(x)
    torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_transform_y_projects_into_the_translated_space() -> None:
    x, y, _ = shared_latent(9)
    model = ProjectedAlignment(method="pls", n_components=2, translator="linear").fit(x, y)
    assert model.transform(x).shape == (300, 2)
    assert model.transform_y(y).shape == (300, 2)
    assert model.bases_ is not None


# ---------------------------------------------------------------------------------------
# Errors


def test_too_many_components_raises() -> None:
    x, y, _ = shared_latent(0)
    with pytest.raises(InvalidOptionError, match="n_components=9 but method='pca' offers only 8"):
        subspace_projection(x, y, method="pca", n_components=9)


def test_cca_components_limited_by_rank() -> None:
    x, y, _ = shared_latent(0)
    x = torch.cat([x[:, :2], x[:, :2]], 1)  # rank 2
    with pytest.raises(InvalidOptionError, match="offers only 2 directions"):
        subspace_projection(x, y, method="cca", n_components=3)


@pytest.mark.parametrize(
    "args,kwargs,match",
    [
        (("none", 3), {}, "n_components must be None"),
        (("pls", 2), {"ridge": 0.1}, "ridge applies to method='cca'"),
        (("cca", 2), {"translator": "mlp"}, "translator must be one of"),
        (("svd", 2), {}, "method must be one of"),
        (("cca", 2), {"translator": "linear", "scale": True}, "scale=True applies to"),
        (("cca", 2), {"ridge": -1.0}, "ridge must lie in"),
    ],
    ids=["none-with-k", "ridge-pls-procrustes", "bad-translator", "svd", "scale-linear", "ridge<0"],
)
def test_projected_alignment_bad_options(
    args: tuple[object, ...], kwargs: dict[str, object], match: str
) -> None:
    x, y, _ = shared_latent(0)
    method, n_components = (*args, None)[:2]
    model = ProjectedAlignment(method=method, n_components=n_components, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionError, match=match):  # stored as given, checked at fit
        model.fit(x, y)


def test_projected_alignment_without_n_components_uses_every_direction() -> None:
    x, y, _ = shared_latent(0)
    model = ProjectedAlignment(method="pls").fit(x, y)
    assert model.bases_ is not None
    assert model.bases_.x_components.shape[1] == min(x.shape[1], y.shape[1])


def test_ridge_shrinks_the_linear_translator_between_pls_projections() -> None:
    x, y, _ = shared_latent(0)
    plain = ProjectedAlignment(method="pls", n_components=2, translator="linear").fit(x, y)
    ridged = ProjectedAlignment(method="pls", n_components=2, translator="linear", ridge=1.0)
    assert ridged.fit(x, y).transform(x).norm() < plain.transform(x).norm()


def test_ridge_applies_to_the_cca_whitening_and_to_the_linear_translator() -> None:
    # one ridge, two uses: the CCA directions of subspace_projection(ridge=λ), then the
    # ridge least-squares map linear_map(ridge=λ) between the projected representations
    x, y, _ = shared_latent(2)
    x, y = x.double(), y.double()
    model = ProjectedAlignment(method="cca", n_components=2, translator="linear", ridge=0.5)
    model.fit(x, y)
    bases = subspace_projection(x, y, method="cca", n_components=2, ridge=0.5)
    assert model.bases_ is not None
    torch.testing.assert_close(model.bases_.x_components, bases.x_components)
    torch.testing.assert_close(model.bases_.y_components, bases.y_components)
    expected = linear_map(bases.project_x(x), bases.project_y(y), ridge=0.5)
    fitted = model.translator_map_
    assert isinstance(fitted, LinearMap)
    torch.testing.assert_close(fitted.weight, expected.weight)
    unridged = linear_map(bases.project_x(x), bases.project_y(y))
    assert not torch.allclose(fitted.weight, unridged.weight, atol=1e-6)


def test_cca_ridge_is_the_relative_ridge_of_each_scatter() -> None:
    # directions: whiten C + λ tr(C)/d I on each side, then the SVD of the whitened cross scatter
    x, y, _ = shared_latent(1)
    m = paired_moments(x.double(), y.double())
    assert m.cxx is not None and m.cyy is not None and m.cxy is not None

    def inv_sqrt(c: torch.Tensor) -> torch.Tensor:
        c = c + 0.5 * torch.trace(c) / c.shape[0] * torch.eye(c.shape[0], dtype=c.dtype)
        e, v = torch.linalg.eigh(c)
        return v @ torch.diag(e.rsqrt()) @ v.T

    wx, wy = inv_sqrt(m.cxx), inv_sqrt(m.cyy)
    expected = torch.linalg.svdvals(wx @ m.cxy @ wy)[:2]
    bases = subspace_projection(x, y, method="cca", n_components=2, ridge=0.5)
    a, b = bases.x_components, bases.y_components
    cross = (a.T @ m.cxy @ b).diagonal() / (m.n - 1)
    torch.testing.assert_close(cross, expected, atol=1e-8, rtol=1e-8)


def test_transform_before_fit_raises() -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        SubspaceProjection(method="cca", n_components=2).transform_x(torch.zeros(3, 4))
    with pytest.raises(NotFittedError, match="not fitted"):
        ProjectedAlignment(method="cca", n_components=2).transform(torch.zeros(3, 4))


def test_wrong_width_at_transform_raises() -> None:
    x, y, _ = shared_latent(0)
    proj = SubspaceProjection(method="pls", n_components=2).fit(x, y)
    with pytest.raises(ShapeError, match="y has 10 features"):
        proj.transform_y(x)


def test_different_n_raises() -> None:
    x, y, _ = shared_latent(0)
    with pytest.raises(ShapeError, match="same samples in the same order"):
        ProjectedAlignment(method="cca", n_components=2).fit(x, y[:-1])


def test_constant_side_raises() -> None:
    x, _, _ = shared_latent(0)
    with pytest.raises(DegenerateInputError, match="y has zero variance"):
        subspace_projection(x, torch.ones(300, 4), method="cca", n_components=1)
