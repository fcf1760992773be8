"""Tests of subspaces.geometry.orthogonal_frame (Dang et al. 2023)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given

from subspaces._checks import (
    DegenerateInputError,
    InvalidOptionError,
    ShapeError,
    TooFewSamplesError,
)
from subspaces.geometry import (
    orthogonal_frame_distances,
    orthogonal_frame_scales,
)

from ._classes_data import (
    F64,
    FAST,
    SEEDS,
    SIGMA,
    clustered,
    etf_with_isotropic_noise,
    orthogonal,
)

# ---------------------------------------------------------------------------------------
# Imbalanced classes: orthogonal frame (Dang et al. 2023)

COUNTS = [60.0, 30.0, 12.0, 5.0]


def _objective(s: torch.Tensor, n_k: torch.Tensor, n: float, depth: int, lh: float, lw: float):
    x = s**2
    return n_k * lh / (2 * (x**depth + n * lh)) + depth * lw * x / 2


def test_scales_for_one_layer_have_the_closed_form() -> None:
    n_k = torch.tensor(COUNTS, dtype=F64)
    s = orthogonal_frame_scales(n_k, feature_decay=1e-3, weight_decay=2e-3)
    expected = (torch.sqrt(n_k * 1e-3 / 2e-3) - n_k.sum() * 1e-3).clamp(min=0).sqrt()
    torch.testing.assert_close(s, expected, rtol=1e-14, atol=0.0)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_scales_minimize_each_class_share_of_the_objective(depth: int) -> None:
    # g(s) on a fine grid never goes below g(s_k): s_k is the global minimizer per class.
    n_k = torch.tensor(COUNTS, dtype=F64)
    lh, lw = 2e-3, 1e-3
    s = orthogonal_frame_scales(n_k, depth=depth, feature_decay=lh, weight_decay=lw)
    grid = torch.linspace(0.0, 3.0 * float(s.max()) + 1.0, 20001, dtype=F64)
    for k in range(len(COUNTS)):
        at_s = _objective(s[k], n_k[k], n_k.sum(), depth, lh, lw)
        on_grid = _objective(grid, n_k[k], n_k.sum(), depth, lh, lw)
        assert float(at_s) <= float(on_grid.min()) + 1e-12


def test_minority_classes_collapse_to_zero() -> None:
    s = orthogonal_frame_scales(
        torch.tensor([1000.0, 1.0], dtype=F64), feature_decay=1e-2, weight_decay=1e-2
    )
    assert float(s[0]) > 0 and float(s[1]) == 0.0


def test_per_layer_weight_decays_enter_by_their_geometric_mean() -> None:
    n_k = torch.tensor(COUNTS, dtype=F64)
    a = orthogonal_frame_scales(n_k, depth=2, feature_decay=1e-3, weight_decay=[1e-3, 4e-3])
    b = orthogonal_frame_scales(n_k, depth=2, feature_decay=1e-3, weight_decay=2e-3)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=0.0)


def frame_data(
    depth: int, seed: int = 0, noise: float = 0.05
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Features and classifier exactly at the predicted geometry, symmetric noise around
    the class means (so that H̄ is exact)."""
    options = {"depth": depth, "feature_decay": 1e-3, "weight_decay": 1e-3}
    n_k = torch.tensor(COUNTS, dtype=F64)
    s = orthogonal_frame_scales(n_k, **options)
    a = s ** (2 * depth)
    d = 6
    q = orthogonal(np.random.default_rng(seed), d)[:, :4]  # orthonormal columns
    w = (a.sqrt()[:, None] * q.T) * 1.7  # any common scale
    h_bar = w / (a + n_k.sum() * 1e-3)[:, None] * 0.3
    xs, ys = [], []
    rng = np.random.default_rng(seed + 1)
    for k, n in enumerate(COUNTS):
        e = torch.from_numpy(rng.normal(size=(int(n) // 2, d))) * noise
        xs.append(h_bar[k] + torch.cat([e, -e]))
        ys.append(torch.full((2 * (int(n) // 2),), k))
    # the odd class (5 samples) gets its mean once more: H̄ unchanged
    xs.append(h_bar[3:4])
    ys.append(torch.tensor([3]))
    return torch.cat(xs), torch.cat(ys), w, options


@pytest.mark.parametrize("depth", [1, 2])
def test_orthogonal_frame_distances_vanish_at_the_targets(depth: int) -> None:
    x, y, w, options = frame_data(depth)
    result = orthogonal_frame_distances(x, y, w, **options)
    for name in ("classifier_gram", "mean_gram", "classifier_means"):
        assert float(getattr(result, name)) == pytest.approx(0.0, abs=1e-12), name


def test_orthogonal_frame_distances_see_a_balanced_etf_as_off_target() -> None:
    x, y, means = etf_with_isotropic_noise(4, 5, SIGMA)
    result = orthogonal_frame_distances(x, y, means)
    assert float(result.classifier_gram) > 0.1


@FAST
@given(seed=SEEDS)
def test_orthogonal_frame_distances_are_rotation_and_relabeling_invariant(seed: int) -> None:
    x, y, w, _ = clustered(seed, c=4, d=6)
    rng = np.random.default_rng(seed)
    q = orthogonal(rng, 6)
    perm = torch.from_numpy(rng.permutation(4))
    w2 = torch.empty_like(w)
    w2[perm] = w
    base = orthogonal_frame_distances(x, y, w)
    for other in (
        orthogonal_frame_distances(x @ q, y, w @ q),
        orthogonal_frame_distances(x, perm[y], w2),
    ):
        for name in ("classifier_gram", "mean_gram", "classifier_means"):
            assert float(getattr(other, name)) == pytest.approx(
                float(getattr(base, name)), rel=1e-9, abs=1e-12
            )


def test_orthogonal_frame_scales_can_be_given() -> None:
    x, y, w, options = frame_data(1)
    s = orthogonal_frame_scales(torch.tensor(COUNTS), **options)
    result = orthogonal_frame_distances(x, y, w, scales=s, feature_decay=1e-3)
    assert float(result.mean_gram) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"class_counts": [1.0, 2.0]}, ShapeError, r"class_counts must have one entry per class"),
        ({"scales": [1.0, -1.0, 1.0, 1.0]}, ShapeError, r"scales must hold \(4,\) finite"),
        ({"depth": 2, "weight_decay": [1e-3]}, InvalidOptionError, r"weight_decay has 1 entries"),
        ({"feature_decay": 0.0}, InvalidOptionError, r"feature_decay must lie in \(0.0, inf\)"),
        ({"feature_decay": 10.0, "weight_decay": 10.0}, DegenerateInputError, r"every s_k is 0"),
    ],
    ids=["class_counts", "scales", "weight_decay", "feature_decay", "all-collapsed"],
)
def test_orthogonal_frame_bad_input(kwargs: dict[str, Any], error: type, match: str) -> None:
    x, y, w, _ = clustered(0)
    with pytest.raises(error, match=match):
        orthogonal_frame_distances(x, y, w, **kwargs)


def test_orthogonal_frame_refuses_a_class_without_samples() -> None:
    x, y, w, _ = clustered(0)
    keep = y != 1
    with pytest.raises(TooFewSamplesError, match=r"labels imply 4 classes .* \(empty: \[1\]\)"):
        orthogonal_frame_distances(x[keep], y[keep], w)


def test_orthogonal_frame_needs_a_classifier() -> None:
    x, y, _, _ = clustered(0)
    with pytest.raises(
        InvalidOptionError, match=r"orthogonal_frame_distances needs the classifier"
    ):
        orthogonal_frame_distances(x, y, None)
