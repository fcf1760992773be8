"""Tests of subspaces.linalg.decomp: eigh, rank, pseudo-inverse (square root) of PSD matrices."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from subspaces._checks import (
    DegenerateInputError,
    InvalidOptionError,
    NumericRangeError,
    ShapeError,
)
from subspaces.linalg.decomp import (
    default_rtol,
    eigh,
    eigvalsh,
    numerical_rank,
    psd_eigh,
    psd_inv_sqrt,
    psd_pinv,
    psd_range,
    psd_sqrt,
    svd,
    svdvals,
)

F64 = torch.float64


def low_rank_psd(d: int, rank: int, seed: int, dtype: torch.dtype = F64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    b = torch.randn(d, rank, generator=g, dtype=F64)
    return (b @ b.T).to(dtype)


def test_psd_eigh_reconstructs_with_decreasing_nonnegative_eigenvalues() -> None:
    c = low_rank_psd(6, 6, seed=0)
    evals, evecs = psd_eigh(c)
    assert evals.dtype == F64 and evecs.dtype == F64
    assert torch.all(evals[:-1] >= evals[1:])
    assert torch.all(evals >= 0)
    # float64 reconstruction: rounding of order eps64 · ||c||
    torch.testing.assert_close(evecs @ torch.diag(evals) @ evecs.T, c, rtol=1e-12, atol=1e-12)


def test_psd_eigh_clips_negative_rounding_to_zero() -> None:
    c = low_rank_psd(5, 2, seed=1)
    c = c - 1e-14 * torch.eye(5, dtype=F64)  # tiny negative eigenvalues
    evals, _ = psd_eigh(c)
    assert float(evals.min()) == 0.0


def test_psd_eigh_symmetrises_its_input() -> None:
    c = low_rank_psd(4, 4, seed=2)
    skew = torch.triu(torch.ones(4, 4, dtype=F64), diagonal=1) * 1e-3
    evals, _ = psd_eigh(c + skew - skew.T)  # the antisymmetric part is dropped
    torch.testing.assert_close(evals, psd_eigh(c)[0], rtol=1e-12, atol=1e-12)


def test_psd_eigh_computes_in_float64_from_float32() -> None:
    evals, evecs = psd_eigh(low_rank_psd(4, 4, seed=3, dtype=torch.float32))
    assert evals.dtype == F64 and evecs.dtype == F64


@pytest.mark.parametrize("rank", [0, 1, 3, 6], ids=lambda r: f"rank{r}")
def test_numerical_rank_of_a_low_rank_product(rank: int) -> None:
    c = low_rank_psd(6, rank, seed=4) if rank else torch.zeros(6, 6, dtype=F64)
    assert numerical_rank(c) == rank


def test_numerical_rank_follows_the_explicit_tolerance() -> None:
    c = torch.diag(torch.tensor([1.0, 1e-3, 1e-9], dtype=F64))
    assert numerical_rank(c) == 3  # default d·eps64 ≈ 7e-16
    assert numerical_rank(c, rtol=1e-6) == 2
    assert numerical_rank(c, rtol=1e-2) == 1
    assert numerical_rank(c, rtol=default_rtol(3, torch.float32)) == 2


def test_default_rtol_is_d_times_eps() -> None:
    assert default_rtol(10, torch.float32) == 10 * torch.finfo(torch.float32).eps
    assert default_rtol(7, torch.float64) == 7 * torch.finfo(torch.float64).eps


def test_psd_range_returns_the_range_basis() -> None:
    c = low_rank_psd(5, 2, seed=5)
    evals, basis = psd_range(c)
    assert evals.shape == (2,) and basis.shape == (5, 2)
    torch.testing.assert_close(basis.T @ basis, torch.eye(2, dtype=F64), rtol=0, atol=1e-12)
    torch.testing.assert_close(basis @ basis.T @ c, c, rtol=1e-10, atol=1e-10)


def test_psd_range_of_zero_matrix_is_empty() -> None:
    evals, basis = psd_range(torch.zeros(3, 3))
    assert evals.numel() == 0 and basis.shape == (3, 0)


def test_psd_inv_sqrt_whitens_a_full_rank_matrix() -> None:
    c = low_rank_psd(5, 8, seed=6)
    w = psd_inv_sqrt(c)
    torch.testing.assert_close(w @ c @ w, torch.eye(5, dtype=F64), rtol=0, atol=1e-10)
    torch.testing.assert_close(w, w.T)


def test_psd_inv_sqrt_of_rank_deficient_matrix_gives_the_range_projector() -> None:
    c = low_rank_psd(5, 3, seed=7)
    w = psd_inv_sqrt(c)
    _, basis = psd_range(c)
    torch.testing.assert_close(w @ c @ w, basis @ basis.T, rtol=0, atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), d=st.integers(1, 6), rank=st.integers(1, 6))
def test_psd_pinv_satisfies_the_penrose_conditions(seed: int, d: int, rank: int) -> None:
    c = low_rank_psd(d, min(rank, d), seed=seed)
    p = psd_pinv(c)
    # the matrices have entries O(d); the pseudo-inverse of a random Wishart-like matrix is
    # well conditioned on its range, so float64 rounding stays below 1e-8 relative
    scale = float(c.abs().max())
    torch.testing.assert_close(c @ p @ c, c, rtol=0, atol=1e-8 * scale)
    torch.testing.assert_close(p @ c @ p, p, rtol=0, atol=1e-8 * float(p.abs().max()))
    torch.testing.assert_close(c @ p, (c @ p).T, rtol=0, atol=1e-8)


def test_psd_pinv_matches_torch_pinv_with_the_same_tolerance() -> None:
    c = low_rank_psd(6, 4, seed=8)
    expected = torch.linalg.pinv(c, rtol=1e-10, hermitian=True)
    torch.testing.assert_close(psd_pinv(c, rtol=1e-10), expected, rtol=1e-9, atol=1e-12)


def test_psd_pinv_of_zero_matrix_is_zero() -> None:
    assert torch.equal(psd_pinv(torch.zeros(3, 3, dtype=F64)), torch.zeros(3, 3, dtype=F64))


def test_psd_sqrt_squares_back() -> None:
    c = low_rank_psd(4, 6, seed=9)
    s = psd_sqrt(c)
    torch.testing.assert_close(s @ s, c, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "bad",
    [torch.zeros(3, 4), torch.zeros(3), torch.zeros(0, 0)],
    ids=["rectangular", "vector", "empty"],
)
def test_non_square_matrix_is_refused(bad: torch.Tensor) -> None:
    with pytest.raises(ShapeError, match="square"):
        psd_eigh(bad)


def test_non_tensor_is_refused() -> None:
    with pytest.raises(ShapeError, match=r"must be a torch\.Tensor, got list"):
        psd_pinv([[1.0]])  # type: ignore[arg-type]


@pytest.mark.parametrize("rtol", [-0.1, 1.0, 2.0], ids=["negative", "one", "two"])
def test_rtol_outside_unit_interval_is_refused(rtol: float) -> None:
    with pytest.raises(InvalidOptionError, match=r"rtol must be a real number in \[0, 1\)"):
        psd_inv_sqrt(torch.eye(2), rtol=rtol)


def test_default_rtol_refuses_integer_dtype() -> None:
    with pytest.raises(InvalidOptionError, match="dtype must be a floating dtype"):
        default_rtol(3, torch.int64)


_DECOMPOSITIONS = {
    "eigh": lambda a: eigh(a)[0],
    "eigvalsh": eigvalsh,
    "svd": lambda a: svd(a)[1],
    "svdvals": svdvals,
}


@pytest.mark.parametrize("name", sorted(_DECOMPOSITIONS))
def test_a_matrix_with_overflowed_entries_is_a_numeric_range_error(name: str) -> None:
    a = torch.eye(3)
    a[0, 1] = a[1, 0] = float("inf")  # e.g. a float32 scatter of data near 1e20
    with pytest.raises(NumericRangeError, match=r"2 infinite or NaN entries.*overflowed"):
        _DECOMPOSITIONS[name](a)


@pytest.mark.parametrize("name", sorted(_DECOMPOSITIONS))
def test_no_convergence_is_retried_in_float64(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = getattr(torch.linalg, name)

    def fails_in_float32(t: torch.Tensor, *args: object, **kwargs: object) -> object:
        if t.dtype == torch.float32:
            raise torch.linalg.LinAlgError("linalg: the algorithm failed to converge")
        return real(t, *args, **kwargs)

    monkeypatch.setattr(torch.linalg, name, fails_in_float32)
    a = (low_rank_psd(4, 4, seed=3) * 1e6).float()
    got = _DECOMPOSITIONS[name](a)
    assert got.dtype == torch.float32
    want = real(a.double())[0] if name == "eigh" else real(a.double())
    want = want[1] if name == "svd" else want
    torch.testing.assert_close(got.double(), want, rtol=1e-6, atol=0.0)


def test_no_convergence_even_in_float64_is_a_degenerate_input_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def never(t: torch.Tensor) -> torch.Tensor:
        raise torch.linalg.LinAlgError("linalg.eigh: the algorithm failed to converge")

    monkeypatch.setattr(torch.linalg, "eigh", never)
    with pytest.raises(DegenerateInputError, match=r"eigh did not converge on the matrix"):
        eigh(torch.eye(2))


def test_scatter_tolerance_is_the_option_or_the_scatter_default() -> None:
    from subspaces.linalg.decomp import scatter_rtol, scatter_tolerance

    assert scatter_tolerance(None, 7, torch.float32) == scatter_rtol(7, torch.float32)
    assert scatter_tolerance(1e-9, 7, torch.float32) == 1e-9
    with pytest.raises(InvalidOptionError, match="data_dtype must be a floating"):
        scatter_tolerance(None, 7, torch.int64)
