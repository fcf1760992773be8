"""normalize_rows: the one unit-row kernel (zero rows, row centering, extreme scales)."""

from __future__ import annotations

import pytest
import torch

from subspaces import DegenerateInputError, InvalidOptionError
from subspaces.linalg.normalize import normalize_rows


def test_rows_have_norm_one() -> None:
    t = torch.tensor([[3.0, 4.0], [0.0, -2.0]])
    torch.testing.assert_close(normalize_rows(t), torch.tensor([[0.6, 0.8], [0.0, -1.0]]))


def test_keeps_the_dtype() -> None:
    t = torch.tensor([[3.0, 4.0]], dtype=torch.float64)
    assert normalize_rows(t).dtype == torch.float64


def test_refuses_zero_rows_naming_them() -> None:
    with pytest.raises(
        DegenerateInputError,
        match=r"t has 1 rows of zero norm \(shape \(2, 2\), first indices \[0\]\)",
    ):
        normalize_rows(torch.tensor([[0.0, 0.0], [1.0, 0.0]]), name="t")


def test_message_says_what_is_undefined_and_what_to_do() -> None:
    with pytest.raises(DegenerateInputError, match="so the angle is undefined; drop it"):
        normalize_rows(torch.zeros(1, 2), purpose="the angle", advice="drop it")


def test_keep_leaves_zero_rows_zero() -> None:
    out = normalize_rows(torch.tensor([[0.0, 0.0], [0.0, 5.0]]), zero_rows="keep")
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0], [0.0, 1.0]]))


def test_rtol_counts_tiny_rows_as_zero() -> None:
    t = torch.tensor([[1e-14, 0.0], [1.0, 0.0]], dtype=torch.float64)
    normalize_rows(t)  # exact zero only by default
    with pytest.raises(DegenerateInputError, match="first indices \\[0\\]"):
        normalize_rows(t, rtol=1e-12)


def test_center_rows_gives_pearson_correlations() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 7, generator=g, dtype=torch.float64)
    z = normalize_rows(x, center_rows=True)
    torch.testing.assert_close(z @ z.T, torch.corrcoef(x))


def test_center_rows_refuses_constant_rows() -> None:
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    x[2] = 3.0
    x[5] = -1e-3
    with pytest.raises(DegenerateInputError, match=r"2 constant rows .*first indices \[2, 5\]"):
        normalize_rows(x, center_rows=True)


@pytest.mark.parametrize("scale", [1e-30, 1e-25, 1e20, 1e30], ids=lambda s: f"{s:g}")
def test_float32_at_extreme_scales_has_norm_one(scale: float) -> None:
    t = (torch.tensor([[3.0, 4.0], [-1.0, 0.0]], dtype=torch.float64) * scale).float()
    torch.testing.assert_close(normalize_rows(t), torch.tensor([[0.6, 0.8], [-1.0, 0.0]]))


@pytest.mark.parametrize(
    "options",
    [{"zero_rows": "drop"}, {"rtol": 1.0}, {"rtol": -0.1}],
    ids=["zero_rows", "rtol-high", "rtol-negative"],
)
def test_bad_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(InvalidOptionError):
        normalize_rows(torch.ones(2, 2), **options)  # type: ignore[arg-type]
