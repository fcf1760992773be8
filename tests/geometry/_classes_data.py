"""Data and comparisons shared by the tests of a classifier's last layer."""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import settings
from hypothesis import strategies as st

from subspaces.geometry import (
    NeuralCollapseResult,
)

F64 = torch.float64
SIGMA = 0.1
SEEDS = st.integers(0, 2**31 - 1)
FAST = settings(max_examples=25, deadline=None)
SCALARS = (
    "nc1",
    "trace_ratio",
    "cdnv",
    "equinorm_means",
    "equiangularity_means",
    "etf_distance_means",
    "equinorm_classifier",
    "equiangularity_classifier",
    "etf_distance_classifier",
    "self_duality",
    "nc4",
)


# ---------------------------------------------------------------------------------------
# Data


def orthogonal(rng: np.random.Generator, d: int) -> torch.Tensor:
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return torch.from_numpy(q)


def simplex_etf(c: int, d: int, seed: int = 0) -> torch.Tensor:
    """(C, d) unit-norm rows of a simplex ETF, randomly rotated in R^d (d >= C - 1)."""
    centering = torch.eye(c, dtype=F64) - torch.full((c, c), 1.0 / c, dtype=F64)
    basis, _, _ = torch.linalg.svd(centering)  # first C-1 columns span the centered space
    rows = centering @ basis[:, : c - 1] * math.sqrt(c / (c - 1.0))  # (C, C-1), unit norm
    embedded = torch.zeros(c, d, dtype=F64)
    embedded[:, : c - 1] = rows
    return embedded @ orthogonal(np.random.default_rng(seed), d).T


def etf_with_isotropic_noise(
    c: int, d: int, sigma: float, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Features μ_c ± σ√d q_j (j = 1..d, q an orthonormal basis): within-class covariance
    exactly σ² I and class means exactly the unit-norm ETF rows. Returns (x, labels, means)."""
    means = simplex_etf(c, d, seed)
    q = orthogonal(np.random.default_rng(seed + 1), d)
    noise = torch.cat([q, -q]) * sigma * math.sqrt(d)  # (2d, d), mean 0, covariance σ² I
    x = (means[:, None, :] + noise[None, :, :]).reshape(-1, d)
    labels = torch.arange(c).repeat_interleave(2 * d)
    return x, labels, means


def clustered(
    seed: int, c: int = 4, d: int = 6, per_class: tuple[int, int] = (2, 7), noise: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random imbalanced classes around random centers; a random classifier and bias."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(per_class[0], per_class[1] + 1, size=c)
    labels = np.repeat(np.arange(c), sizes)
    rng.shuffle(labels)
    centers = rng.normal(size=(c, d)) * 2.0 + rng.normal(size=d)
    x = centers[labels] + noise * rng.normal(size=(labels.size, d))
    w = rng.normal(size=(c, d))
    b = rng.normal(size=c)
    return (torch.from_numpy(x), torch.from_numpy(labels), torch.from_numpy(w), torch.from_numpy(b))


def naive_collapse(
    x: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor | None = None,
    *,
    global_mean: str = "classes",
) -> dict[str, float]:
    """Textbook formulas, one step at a time, float64, loops where the paper sums."""
    x, w = x.double(), w.double()
    c = int(y.max()) + 1
    means = torch.stack([x[y == k].mean(0) for k in range(c)])
    mu_g = means.mean(0) if global_mean == "classes" else x.mean(0)
    within = sum(torch.outer(x[i] - means[y[i]], x[i] - means[y[i]]) for i in range(len(y)))
    within = within / len(y)
    m = means - mu_g
    between = m.T @ m / c
    nc1 = torch.trace(within @ torch.linalg.pinv(between, hermitian=True)) / c
    var = torch.stack([((x[y == k] - means[k]) ** 2).sum(1).mean() for k in range(c)])
    cdnv = np.mean(
        [
            float((var[i] + var[j]) / (2 * ((means[i] - means[j]) ** 2).sum()))
            for i in range(c)
            for j in range(c)
            if i != j
        ]
    )

    def geometry(v: torch.Tensor) -> tuple[float, float, float]:
        norms = v.norm(dim=1)
        cos = [
            float(v[i] @ v[j] / (norms[i] * norms[j])) for i in range(c) for j in range(c) if i != j
        ]
        gram = v @ v.T
        etf = torch.eye(c, dtype=F64) - 1.0 / c
        dist = (gram / gram.norm() - etf / etf.norm()).norm()
        return (
            float(norms.std() / norms.mean()),
            float(np.mean([abs(v + 1.0 / (c - 1)) for v in cos])),
            float(dist),
        )

    eqn_m, eqa_m, etf_m = geometry(m)
    eqn_w, eqa_w, etf_w = geometry(w)
    nc3 = float(((w.T / w.norm() - m.T / m.norm()) ** 2).sum())
    logits = x @ w.T + (0 if b is None else b.double())
    nearest = torch.cdist(x, means).argmin(1)
    nc4 = float((logits.argmax(1) != nearest).double().mean())
    return {
        "nc1": float(nc1),
        "trace_ratio": float(torch.trace(within) / torch.trace(between)),
        "cdnv": cdnv,
        "equinorm_means": eqn_m,
        "equiangularity_means": eqa_m,
        "etf_distance_means": etf_m,
        "equinorm_classifier": eqn_w,
        "equiangularity_classifier": eqa_w,
        "etf_distance_classifier": etf_w,
        "self_duality": nc3,
        "nc4": nc4,
    }


def assert_results_close(
    a: NeuralCollapseResult,
    b: NeuralCollapseResult,
    *,
    rtol: float = 1e-9,
    atol: float = 1e-12,
    skip: tuple[str, ...] = (),
) -> None:
    for name in SCALARS:
        if name in skip:
            continue
        va, vb = getattr(a, name), getattr(b, name)
        if va is None or vb is None:
            assert va is None and vb is None, name
            continue
        np.testing.assert_allclose(float(va), float(vb), rtol=rtol, atol=atol, err_msg=name)
