"""Solvers whose failures are the package's errors: retried in float64, then regularized,
then a NumericalError naming the operation (subspaces.linalg.robust)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from subspaces import NumericalError
from subspaces._checks import DegenerateInputError, NumericRangeError, ShapeError
from subspaces.linalg import robust
from subspaces.linalg.robust import REGULARIZATION, cholesky, eigh, eigvalsh, svd, svdvals

F64 = torch.float64

# name of the torch.linalg op -> (the robust wrapper, the part of its result compared)
_OPS: dict[str, tuple[Callable[..., Any], Callable[[Any], torch.Tensor]]] = {
    "eigh": (eigh, lambda r: r[0]),
    "eigvalsh": (eigvalsh, lambda r: r),
    "svd": (svd, lambda r: r[1]),
    "svdvals": (svdvals, lambda r: r),
    "cholesky": (cholesky, lambda r: r),
}


def _spd(d: int = 5, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d + 3, d, generator=g, dtype=F64)
    return (a.T @ a * 1e3).to(dtype)


class _Failing:
    """torch.linalg.<name> that fails (or returns NaN) on its first ``times`` calls."""

    def __init__(self, name: str, times: int, *, nan: bool = False) -> None:
        self.real = getattr(torch.linalg, name)
        self.times, self.nan = times, nan
        self.dtypes: list[torch.dtype] = []

    def __call__(self, t: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        self.dtypes.append(t.dtype)
        result = self.real(t, *args, **kwargs)
        if len(self.dtypes) > self.times:
            return result
        if not self.nan:
            raise torch.linalg.LinAlgError(f"linalg.{self.name}: failed to converge (test)")
        if isinstance(result, tuple):
            return tuple(torch.full_like(r, float("nan")) for r in result)
        return torch.full_like(result, float("nan"))

    @property
    def name(self) -> str:
        return str(self.real.__name__).removeprefix("linalg_")


@pytest.mark.parametrize("name", sorted(_OPS))
def test_a_failure_in_float32_is_retried_in_float64(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _Failing(name, times=1)
    monkeypatch.setattr(torch.linalg, name, fake)
    a = _spd()
    wrapper, part = _OPS[name]
    got = part(wrapper(a))
    assert fake.dtypes == [torch.float32, F64]
    assert got.dtype == torch.float32
    want = part(fake.real(a.double()))
    torch.testing.assert_close(got.double(), want, rtol=1e-6, atol=1e-6 * float(want.abs().max()))


@pytest.mark.parametrize("name", sorted(_OPS))
@pytest.mark.parametrize("nan", [False, True], ids=["raises", "returns-nan"])
def test_a_failure_in_float64_too_is_retried_regularized(
    name: str, nan: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _Failing(name, times=2, nan=nan)
    monkeypatch.setattr(torch.linalg, name, fake)
    a = _spd()
    wrapper, part = _OPS[name]
    got = part(wrapper(a)).double()
    assert fake.dtypes == [torch.float32, F64, F64]  # as called, float64, regularized
    assert bool(torch.isfinite(got).all())
    want = part(fake.real(a.double()))
    # Weyl: values move by at most δ ‖A‖_F (cholesky: the ridge δ tr(A)/d moves L as little)
    bound = 10 * REGULARIZATION * float(torch.linalg.matrix_norm(a.double()))
    torch.testing.assert_close(
        got, want, rtol=1e-6, atol=max(bound, 1e-6 * float(want.abs().max()))
    )


@pytest.mark.parametrize("name", sorted(_OPS))
def test_a_failure_on_every_path_is_a_numerical_error(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _Failing(name, times=10**6)
    monkeypatch.setattr(torch.linalg, name, fake)
    wrapper, _ = _OPS[name]
    with pytest.raises(NumericalError) as info:
        wrapper(_spd(d=4), what="the scatter of x")
    message = str(info.value)
    assert f"torch.linalg.{name} did not converge on the scatter of x" in message
    assert "shape (4, 4), torch.float32" in message
    assert "even in float64 and with a relative regularization of 1e-10" in message
    assert "failed to converge (test)" in message  # the solver's own words
    assert isinstance(info.value, DegenerateInputError)  # recorded per cell by callers
    assert len(fake.dtypes) == 3


def test_float64_input_skips_the_float64_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _Failing("eigh", times=10**6)
    monkeypatch.setattr(torch.linalg, "eigh", fake)
    with pytest.raises(NumericalError, match=r"shape \(5, 5\), torch.float64"):
        eigh(_spd(dtype=F64))
    assert fake.dtypes == [F64, F64]  # as called, then regularized


@pytest.mark.parametrize("name", sorted(_OPS))
@pytest.mark.parametrize("bad", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_non_finite_input_is_refused_before_any_solver(
    name: str, bad: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _Failing(name, times=0)
    monkeypatch.setattr(torch.linalg, name, fake)
    a = _spd()
    a[1, 2] = bad
    kind = "1 NaN, 0 infinite" if bad != bad else "0 NaN, 1 infinite"
    with pytest.raises(NumericRangeError, match=rf"1 infinite or NaN entries \({kind}"):
        _OPS[name][0](a)
    assert fake.dtypes == []  # the solver never saw it


def test_a_vector_is_refused() -> None:
    with pytest.raises(ShapeError, match=r"must be a matrix .* got shape \(3,\)"):
        eigvalsh(torch.ones(3))


def test_batches_are_regularized_matrix_by_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _Failing("eigvalsh", times=1)  # float64: as called, then regularized
    monkeypatch.setattr(torch.linalg, "eigvalsh", fake)
    a = torch.stack([_spd(seed=1, dtype=F64), 1e-6 * _spd(seed=2, dtype=F64)])
    got = eigvalsh(a)
    want = fake.real(a)
    for g, w in zip(got, want, strict=True):  # each within δ ‖A_i‖_F of its own matrix
        assert float((g - w).abs().max()) <= REGULARIZATION * float(w.abs().sum())


def test_cholesky_of_a_covariance_rounded_indefinite_takes_the_ridge() -> None:
    # a rank-one covariance whose rounding left a pivot of -1e-14: no factor as it is
    a = torch.tensor([[1.0, 1.0], [1.0, 1.0 - 1e-14]], dtype=F64) * 8.0
    with pytest.raises(torch.linalg.LinAlgError):
        torch.linalg.cholesky(a)
    factor = cholesky(a)
    torch.testing.assert_close(factor @ factor.T, a, rtol=0, atol=1e-8)


@pytest.mark.parametrize("scale", [2.0**3, 2.0**-5, 1.0], ids=["odd-up", "odd-down", "one"])
def test_cholesky_rescales_exactly(scale: float, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _Failing("cholesky", times=1)
    monkeypatch.setattr(torch.linalg, "cholesky", fake)
    a = torch.tensor([[4.0, 2.0], [2.0, 2.0]]) * scale
    torch.testing.assert_close(cholesky(a), fake.real(a))


def test_cholesky_of_an_indefinite_matrix_says_what_to_check() -> None:
    with pytest.raises(NumericalError, match=r"cholesky did not converge.*not positive definite"):
        cholesky(torch.tensor([[1.0, 0.0], [0.0, -1.0]]))


def test_decomp_re_exports_the_robust_solvers() -> None:
    from subspaces.linalg import decomp

    assert decomp.eigh is robust.eigh and decomp.svd is robust.svd
    assert decomp.eigvalsh is robust.eigvalsh and decomp.svdvals is robust.svdvals


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", sorted(_OPS))
def test_half_precision_is_solved_in_float64_and_returned_in_its_dtype(
    name: str, dtype: torch.dtype
) -> None:
    # torch.linalg has no float16/bfloat16 kernels (NotImplementedError); the wrapper goes
    # straight to the float64 path
    wrapper, part = _OPS[name]
    a = _spd(4, dtype=F64) / 1e3
    got = part(wrapper(a.to(dtype)))
    want = part(wrapper(a.to(dtype).to(F64)))
    assert got.dtype == dtype
    assert torch.allclose(got.to(F64), want, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("name", ["eigvalsh", "svdvals"])
def test_a_result_beyond_the_dtype_range_is_refused_not_returned_as_inf(name: str) -> None:
    a = torch.full((4, 4), 3e38, dtype=torch.float32)  # finite; its top value 1.2e39 is not
    with pytest.raises(NumericRangeError, match=rf"torch.linalg.{name} .* exceeds the range"):
        _OPS[name][0](a)
    assert float(_OPS[name][1](_OPS[name][0](a.to(F64))).abs().max()) == pytest.approx(1.2e39)


def test_the_bound_of_a_regularized_eigh_is_the_jitter_norm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a = _spd(5, dtype=F64)
    assert robust.eigh_with_bound(a)[2] == 0.0  # nothing added
    monkeypatch.setattr(torch.linalg, "eigh", _Failing("eigh", 1))
    evals, _, bound = robust.eigh_with_bound(a)
    assert bound == pytest.approx(REGULARIZATION * float(torch.linalg.matrix_norm(a)), rel=1e-12)
    want = torch.linalg.eigvalsh(a)
    assert float((evals - want).abs().max()) <= bound  # Weyl


def test_a_regularized_retry_keeps_a_null_space_null(monkeypatch: pytest.MonkeyPatch) -> None:
    # the jitter lifts the zero eigenvalues of a rank-5 scatter to about ±1e-10 of its norm,
    # above scatter_rtol for float64 data; psd_eigh sets them back to 0, so the numerical
    # range, hence CCA's number of correlations and its mean, do not change
    from subspaces.linalg.decomp import psd_range
    from subspaces.similarity import cca_correlations

    g = torch.Generator().manual_seed(0)
    z = torch.randn(200, 5, generator=g, dtype=F64)
    x = z @ torch.randn(5, 10, generator=g, dtype=F64)  # rank 5, width 10
    y = z[:, :3] @ torch.randn(3, 8, generator=g, dtype=F64)
    y = y + 0.3 * torch.randn(200, 8, generator=g, dtype=F64)
    xc = x - x.mean(0)
    before_rank = psd_range(xc.T @ xc, rtol=1e-13)[0].numel()
    before = cca_correlations(x, y)
    real = torch.linalg.eigh
    calls: list[int] = []

    def every_first_try_fails(t: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) % 2 == 1:  # each matrix: the plain try fails, the regularized one runs
            raise torch.linalg.LinAlgError("linalg.eigh: failed to converge (test)")
        return real(t, *args, **kwargs)

    monkeypatch.setattr(torch.linalg, "eigh", every_first_try_fails)
    assert psd_range(xc.T @ xc, rtol=1e-13)[0].numel() == before_rank == 5
    after = cca_correlations(x, y)
    assert len(calls) >= 6
    assert after.numel() == before.numel() == 5
    assert torch.allclose(after, before, atol=1e-8)
