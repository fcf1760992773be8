"""Tests of subspaces.geometry.mixup (Fisher, Meng & Papyan 2024)."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given

from subspaces._checks import (
    DegenerateInputError,
    InvalidOptionError,
    ShapeError,
)
from subspaces.geometry import (
    mixup_geometry,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _memory import address_space_headroom

from ._classes_data import (
    F64,
    FAST,
    SEEDS,
    orthogonal,
    simplex_etf,
)

# ---------------------------------------------------------------------------------------
# Mixup geometry (Fisher et al. 2024)


def mixup_case(seed: int = 0, n: int = 60, c: int = 4, d: int = 5) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    return {
        "x": torch.from_numpy(rng.normal(size=(n, d))),
        "labels_a": torch.from_numpy(rng.integers(0, c, size=n)),
        "labels_b": torch.from_numpy(rng.integers(0, c, size=n)),
        "lam": torch.from_numpy(rng.uniform(size=n)),
        "classifier": torch.from_numpy(rng.normal(size=(c, d))),
        "bias": torch.from_numpy(rng.normal(size=c)),
    }


def test_mixup_on_the_pair_boundary_and_on_the_classifier_row() -> None:
    w = simplex_etf(3, 4)
    features = torch.stack([w[0] + w[1], w[0], 2.0 * w[2]])
    result = mixup_geometry(
        features, torch.tensor([0, 0, 2]), torch.tensor([1, 1, 2]), 0.5, w, bins=2
    )
    assert float(result.margin[0]) == pytest.approx(0.0, abs=1e-12)  # on the 0|1 boundary
    assert float(result.cos_a[0]) == pytest.approx(float(result.cos_b[0]))
    assert float(result.cos_a[1]) == pytest.approx(1.0)
    # h = w_0: ((w_0 - w_1)·w_0)/||w_0 - w_1|| = (1 + 1/2)/sqrt(3) for a unit ETF with C = 3
    assert float(result.margin[1]) == pytest.approx(1.5 / math.sqrt(3.0))
    # same-class: distance 2·(1.5/sqrt 3) to the nearest boundary of class 2
    assert float(result.margin[2]) == pytest.approx(3.0 / math.sqrt(3.0))
    assert bool(result.same_class.tolist() == [False, False, True])


def test_mixup_same_class_margin_is_the_nearest_boundary() -> None:
    case = mixup_case(1)
    case["labels_b"] = case["labels_a"]
    result = mixup_geometry(**case)
    w, b, h = case["classifier"], case["bias"], case["x"]
    logits = h @ w.T + b
    for i in range(5):
        a = int(case["labels_a"][i])
        dists = [
            float((logits[i, a] - logits[i, k]) / (w[a] - w[k]).norm())
            for k in range(w.shape[0])
            if k != a
        ]
        assert float(result.margin[i]) == pytest.approx(min(dists))


def test_mixup_bins_are_means_of_their_samples() -> None:
    case = mixup_case(2)
    result = mixup_geometry(**case, bins=[0.0, 0.3, 0.7, 1.0])
    lam, same = case["lam"], result.same_class
    for kind, stats in (("same", result.same), ("different", result.different)):
        mask_kind = same if kind == "same" else ~same
        for i, (lo, hi) in enumerate([(0.0, 0.3), (0.3, 0.7), (0.7, 1.0)]):
            mask = mask_kind & (lam >= lo) & (lam < hi)
            assert int(stats.count[i]) == int(mask.sum())
            if mask.any():
                assert float(stats.cos_a[i]) == pytest.approx(float(result.cos_a[mask].mean()))
                assert float(stats.margin_std[i]) == pytest.approx(
                    float(result.margin[mask].std(unbiased=False)), abs=1e-12
                )
                assert float(stats.prob_b[i]) == pytest.approx(float(result.prob_b[mask].mean()))


def test_mixup_empty_bins_have_count_zero_and_nan_statistics() -> None:
    case = mixup_case(3)
    case["lam"] = torch.full_like(case["lam"], 0.95)
    result = mixup_geometry(**case, bins=4)
    assert int(result.different.count[0]) == 0
    assert math.isnan(float(result.different.margin[0]))


def test_mixup_swapping_the_pair_flips_the_margin() -> None:
    case = mixup_case(4)
    swapped = dict(case, labels_a=case["labels_b"], labels_b=case["labels_a"], lam=1 - case["lam"])
    a, b = mixup_geometry(**case), mixup_geometry(**swapped)
    diff = ~a.same_class
    torch.testing.assert_close(a.margin[diff], -b.margin[diff], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(a.cos_a, b.cos_b, rtol=0.0, atol=0.0)


@FAST
@given(seed=SEEDS)
def test_mixup_rotation_invariance(seed: int) -> None:
    case = mixup_case(seed)
    q = orthogonal(np.random.default_rng(seed), 5)
    rotated = dict(case, x=case["x"] @ q, classifier=case["classifier"] @ q)
    a, b = mixup_geometry(**case), mixup_geometry(**rotated)
    for name in ("cos_a", "cos_b", "margin", "prob_a", "prob_b"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"lam": 1.5}, InvalidOptionError, r"lam must lie in \[0.0, 1.0\]"),
        ({"lam": torch.full((60,), -0.1, dtype=F64)}, InvalidOptionError, r"lam must lie in"),
        ({"lam": torch.zeros(3)}, ShapeError, r"lam must be a number or hold one weight"),
        ({"bins": [0.5, 0.2]}, InvalidOptionError, r"bins must be a positive integer or an"),
        ({"bins": [0.2, 0.5]}, InvalidOptionError, r"lie outside the bins"),
        ({"labels_b": torch.full((60,), 4)}, ShapeError, r"labels_b must lie in \[0, 4\)"),
        ({"labels_a": torch.zeros(5, dtype=torch.int64)}, ShapeError, r"labels_a has 5 entries"),
        ({"classifier": torch.zeros(4, 5, dtype=F64)}, DegenerateInputError, r"zero norm"),
    ],
    ids=[
        "lam-scalar",
        "lam-negative",
        "lam-shape",
        "bins-order",
        "bins-range",
        "labels_b",
        "labels_a-length",
        "zero-classifier",
    ],
)
def test_mixup_bad_input(change: dict[str, Any], error: type, match: str) -> None:
    case = dict(mixup_case(5), **change)
    if "classifier" in change:
        case["bias"] = None
    with pytest.raises(error, match=match):
        mixup_geometry(**case)


def test_mixup_identical_classifier_rows() -> None:
    case = mixup_case(6)
    case["classifier"][1] = case["classifier"][0]
    with pytest.raises(DegenerateInputError, match=r"classifier rows 0 and 1 are identical"):
        mixup_geometry(**case)


def test_mixup_bins_that_cannot_fit_are_refused() -> None:
    with (
        address_space_headroom(),
        pytest.raises(
            InvalidOptionError, match=r"bins=1000000000000000 needs the λ bins and their statistics"
        ),
    ):
        mixup_geometry(**mixup_case(7), bins=10**15)
