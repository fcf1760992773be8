"""CKNNA: the sparse HSIC terms against dense n × n references written from the reference
code's definition, its relation to debiased linear CKA, symmetry and errors. The properties
it shares with the neighborhood measures (invariances, bounds, input errors) are tested with
them in test_neighbors.py."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from subspaces._checks import DegenerateInputError, InvalidOptionError
from subspaces.similarity.cka import linear_cka
from subspaces.similarity.cknna import _cknna_terms, cknna

seeds = st.integers(0, 2**31 - 1)
sizes = st.integers(12, 40)
settings_fast = settings(max_examples=25, deadline=None)


# ---- dense n × n references, written from the definitions -------------------------------


def _hsic_unbiased(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Song et al. (2012) unbiased HSIC, diagonals zeroed, tr(AB) for non-symmetric A, B."""
    n = a.shape[0]
    a, b = a.clone().fill_diagonal_(0), b.clone().fill_diagonal_(0)
    value = (
        torch.trace(a @ b) + a.sum() * b.sum() / ((n - 1) * (n - 2)) - 2 * (a @ b).sum() / (n - 2)
    )
    return value / (n * (n - 3))


def _hsic_biased(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    n = a.shape[0]
    h = torch.eye(n, dtype=a.dtype) - 1.0 / n
    return torch.trace(a @ h @ b @ h)


def _dense_cknna(x, y, k, *, normalize=True, unbiased=True) -> tuple[float, float, float]:
    x, y = x.double(), y.double()
    if normalize:
        x, y = x / x.norm(dim=1, keepdim=True), y / y.norm(dim=1, keepdim=True)
    kx, ky = x @ x.T, y @ y.T

    def mask(kern: torch.Tensor) -> torch.Tensor:
        key = kern.clone()
        if unbiased:
            key.fill_diagonal_(-torch.inf)
        idx = key.sort(dim=1, descending=True, stable=True).indices[:, :k]
        return torch.zeros_like(kern).scatter_(1, idx, 1.0)

    mx, my = mask(kx), mask(ky)
    hsic = _hsic_unbiased if unbiased else _hsic_biased
    m = mx * my
    return (
        float(hsic(m * kx, m * ky)),
        float(hsic(mx * kx, mx * kx)),
        float(hsic(my * ky, my * ky)),
    )


def _pair(seed: int, n: int = 60, d1: int = 6, d2: int = 5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d1, generator=g, dtype=torch.float64)
    y = torch.tanh(x @ torch.randn(d1, d2, generator=g, dtype=torch.float64))
    return x, y + 0.3 * torch.randn(n, d2, generator=g, dtype=torch.float64)


@pytest.fixture
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    return _pair(0)


# ---- agreement with the dense references -------------------------------------------------


@pytest.mark.parametrize("normalize", [True, False], ids=["normalized", "raw"])
@pytest.mark.parametrize("unbiased", [True, False], ids=["unbiased", "biased"])
@pytest.mark.parametrize("k", [2, 7, 59], ids=lambda k: f"k{k}")
def test_cknna_terms_match_dense(pair: tuple, k: int, unbiased: bool, normalize: bool) -> None:
    x, y = pair
    terms = _cknna_terms(x, y, k=k, debiased=unbiased, normalize=normalize, chunk_size=11)
    dense = _dense_cknna(x, y, k, unbiased=unbiased, normalize=normalize)
    for got, want in zip(terms, dense, strict=True):
        # sparse O(nk) sums vs dense n × n matrix products, both float64
        assert float(got) == pytest.approx(want, rel=1e-9, abs=1e-14)


def test_cknna_biased_with_self_neighbors_matches_dense(pair: tuple) -> None:
    # unbiased=False lets a point be its own neighbor (the diagonal is the largest cosine)
    x, y = pair
    kl, kk, ll = _dense_cknna(x, y, 5, unbiased=False)
    assert float(cknna(x, y, k=5, debiased=False)) == pytest.approx(kl / (kk * ll) ** 0.5)


def test_cknna_full_neighborhood_is_debiased_cka_of_normalized_rows(pair: tuple) -> None:
    x, y = pair
    xn, yn = x / x.norm(dim=1, keepdim=True), y / y.norm(dim=1, keepdim=True)
    want = linear_cka(xn, yn, debiased=True)
    assert float(cknna(x, y, k=x.shape[0] - 1)) == pytest.approx(float(want), rel=1e-9)


def test_cknna_unbiased_is_not_exactly_symmetric(pair: tuple) -> None:
    # the masked kernels are not symmetric, so 1ᵀAB1 ≠ 1ᵀBA1: documented, small
    x, y = pair
    xy, yx = float(cknna(x, y, k=5)), float(cknna(y, x, k=5))
    assert xy != yx
    assert abs(xy - yx) < 0.05 * abs(xy)


# ---- properties and errors ---------------------------------------------------------------


@settings_fast
@given(seed=seeds, n=sizes, k=st.integers(2, 8))
def test_biased_cknna_symmetric(seed: int, n: int, k: int) -> None:
    x, y = _pair(seed, n=n)
    forward = float(cknna(x, y, k=k, debiased=False))
    assert float(cknna(y, x, k=k, debiased=False)) == pytest.approx(forward, abs=1e-12)


def test_cknna_k_below_two(pair: tuple) -> None:
    x, y = pair
    with pytest.raises(InvalidOptionError, match="k must be at least 2, got 1"):
        cknna(x, y, k=1)


def test_cknna_degenerate_self_alignment() -> None:
    # positive 1-D samples all normalize to 1: the kernel is constant and, with every other
    # sample a neighbor, its unbiased self-alignment is exactly 0
    x = torch.arange(1.0, 7.0, dtype=torch.float64)[:, None]
    y = torch.randn(6, 2, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    with pytest.raises(DegenerateInputError, match="kNN-masked HSIC of x with itself is 0"):
        cknna(x, y, k=5)
