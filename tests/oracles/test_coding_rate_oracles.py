"""Coding rate R, R_c and ΔR against PyPI ``mcr2`` (D. Pai's implementation of MCR²).

``mcr2.primitives.coding_rate`` computes R = ½ logdet(I + d/ε² · ZᵀZ/m),
R_c = Σ_j (m_j/m) ½ logdet(I + d/ε² · Zᵀ Π_j Z / m_j) and ΔR through eigvalsh. It takes ε
(like us, unlike the original MCR² code, which takes ε²) and accepts a soft membership in
place of the one-hot matrix. Its ``Rc`` and ``DeltaR`` cast the membership to float32, so
``Z`` must be float32 too (an einsum of float64 Z with float32 membership fails): every
comparison runs mcr2 in float32 against our float64 result (checked against the definition
in float64 in tests/geometry/test_coding_rate.py). Tolerances, relative: 1e-6 when m > d
(float32 Gram products and eigenvalues; observed ≤ 2e-7); 1e-4 when m < d, where mcr2's
d × d matrices are rank-deficient and each of their zero eigenvalues comes back from a
float32 eigvalsh as ~eps32 · ||A||, adding log(1 + noise) per direction (observed ≤ 2.3e-5
at ε = 0.1, where ||A|| is largest).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from subspaces.geometry.coding_rate import class_coding_rate, coding_rate, coding_rate_reduction

mcr2_rate = pytest.importorskip("mcr2.primitives.coding_rate")

pytestmark = pytest.mark.oracle

SHAPES = {"tall": (200, 16), "wide": (12, 40)}
RTOL = {"tall": 1e-6, "wide": 1e-4}  # mcr2 in float32 (see the module docstring)
EPSILONS = [0.1, 0.5, math.sqrt(0.5), 2.0]


def features(seed: int, m: int, d: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(m, d)) @ rng.normal(size=(d, d)) + 0.2
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def hard_labels(seed: int, m: int, k: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    return np.concatenate([np.arange(k), rng.integers(0, k, size=m - k)])


def f32(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(a, dtype=torch.float32)


@pytest.mark.parametrize("eps", EPSILONS, ids=lambda e: f"eps{e:.3g}")
@pytest.mark.parametrize("shape", list(SHAPES))
def test_rate_matches_mcr2(shape: str, eps: float) -> None:
    z = features(0, *SHAPES[shape])
    expected = float(mcr2_rate.R(f32(z), eps))
    assert float(coding_rate(z, eps=eps)) == pytest.approx(expected, rel=RTOL[shape])


@pytest.mark.parametrize("eps", EPSILONS, ids=lambda e: f"eps{e:.3g}")
@pytest.mark.parametrize("shape", list(SHAPES))
def test_class_rate_with_hard_labels_matches_mcr2(shape: str, eps: float) -> None:
    m, d = SHAPES[shape]
    z, y = features(1, m, d), hard_labels(1, m)
    expected = float(mcr2_rate.Rc(f32(z), torch.nn.functional.one_hot(torch.as_tensor(y)), eps))
    assert float(class_coding_rate(z, y, eps=eps)) == pytest.approx(expected, rel=RTOL[shape])


@pytest.mark.parametrize("shape", list(SHAPES))
def test_class_rate_with_soft_membership_matches_mcr2(shape: str) -> None:
    m, d = SHAPES[shape]
    z = features(2, m, d)
    pi = np.random.default_rng(2).dirichlet(np.ones(5), size=m)
    expected = float(mcr2_rate.Rc(f32(z), f32(pi), 0.5))
    assert float(class_coding_rate(z, pi, eps=0.5)) == pytest.approx(expected, rel=RTOL[shape])


@pytest.mark.parametrize("eps", EPSILONS, ids=lambda e: f"eps{e:.3g}")
@pytest.mark.parametrize("shape", list(SHAPES))
def test_rate_reduction_matches_mcr2(shape: str, eps: float) -> None:
    m, d = SHAPES[shape]
    z, y = features(3, m, d), hard_labels(3, m)
    expected = float(mcr2_rate.DeltaR(f32(z), torch.nn.functional.one_hot(torch.as_tensor(y)), eps))
    got = coding_rate_reduction(z, y, eps=eps).reduction
    # ΔR is a difference of two rates: compare relative to the rate's size.
    scale = float(coding_rate(z, eps=eps))
    assert float(got) == pytest.approx(expected, abs=RTOL[shape] * scale)


def test_original_code_eps_squared_convention_is_our_eps_squared() -> None:
    """The original MCR² code's ``eps`` is ε²: its value e2 is our eps = sqrt(e2)."""
    z = features(4, 100, 8)
    e2 = 0.5  # the original code's default ``--eps``
    original_style = 0.5 * np.linalg.slogdet(np.eye(8) + 8 / (100 * e2) * z.T @ z)[1]
    assert float(coding_rate(z, eps=math.sqrt(e2))) == pytest.approx(original_style, rel=1e-12)
    assert float(mcr2_rate.R(f32(z), math.sqrt(e2))) == pytest.approx(
        original_style, rel=RTOL["tall"]
    )
