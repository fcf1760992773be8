"""Tests of subspaces.geometry.classifier ("Understanding Robustness Lottery")."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given

from subspaces._checks import (
    DegenerateInputError,
    InputTypeError,
    ShapeError,
)
from subspaces.geometry import (
    classifier_geometry,
    compare_classifier_geometry,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _memory import address_space_headroom

from ._classes_data import (
    F64,
    FAST,
    SEEDS,
    clustered,
    orthogonal,
)

# ---------------------------------------------------------------------------------------
# Classifier geometry ("Understanding Robustness Lottery")


def test_classifier_geometry_on_a_hand_example() -> None:
    w = torch.eye(2, dtype=F64)
    features = torch.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=F64)
    result = classifier_geometry(features, torch.tensor([0, 0]), w, bias=torch.tensor([0.0, 0.5]))
    torch.testing.assert_close(result.feature_norm, torch.tensor([10.0, 5.0], dtype=F64).sqrt())
    torch.testing.assert_close(result.cos_true, torch.tensor([3 / 10**0.5, 1 / 5**0.5], dtype=F64))
    torch.testing.assert_close(result.margin, torch.tensor([1.5, -1.5], dtype=F64))
    assert result.correct.tolist() == [True, False]
    assert float(result.accuracy) == 0.5


@FAST
@given(seed=SEEDS)
def test_classifier_margin_is_positive_exactly_when_correct(seed: int) -> None:
    x, y, w, b = clustered(seed)
    result = classifier_geometry(x, y, w, bias=b)
    assert torch.equal(result.margin > 0, result.correct)


@FAST
@given(seed=SEEDS)
def test_classifier_geometry_rotation_invariance(seed: int) -> None:
    x, y, w, b = clustered(seed)
    q = orthogonal(np.random.default_rng(seed), x.shape[1])
    a = classifier_geometry(x, y, w, bias=b)
    r = classifier_geometry(x @ q, y, w @ q, bias=b)
    for name in ("feature_norm", "row_norms", "cos_true", "margin"):
        torch.testing.assert_close(getattr(a, name), getattr(r, name), rtol=1e-9, atol=1e-10)


def test_compare_a_model_with_itself() -> None:
    x, y, w, b = clustered(30)
    g = classifier_geometry(x, y, w, bias=b)
    cmp = compare_classifier_geometry(g, g)
    assert float(cmp.agreement) == 1.0 and float(cmp.gained) == float(cmp.lost) == 0.0
    assert float(cmp.margin_change.abs().max()) == 0.0


def test_compare_dense_and_pruned() -> None:
    # "Pruning" half of the classifier's columns: changes are the differences b - a.
    x, y, w, b = clustered(31)
    pruned = w.clone()
    pruned[:, ::2] = 0.0
    dense_g = classifier_geometry(x, y, w, bias=b)
    pruned_g = classifier_geometry(x, y, pruned, bias=b)
    cmp = compare_classifier_geometry(dense_g, pruned_g)
    torch.testing.assert_close(cmp.margin_change, pruned_g.margin - dense_g.margin)
    torch.testing.assert_close(cmp.row_norm_change, pruned_g.row_norms - dense_g.row_norms)
    assert float(cmp.accuracy_b - cmp.accuracy_a) == pytest.approx(float(cmp.gained - cmp.lost))


def test_compare_needs_the_same_samples() -> None:
    x, y, w, b = clustered(32)
    a = classifier_geometry(x, y, w, bias=b)
    other = classifier_geometry(x[:-1], y[:-1], w, bias=b)
    with pytest.raises(ShapeError, match=r"a and b must describe the same samples"):
        compare_classifier_geometry(a, other)


def test_compare_needs_classifier_geometries() -> None:
    x, y, w, _ = clustered(33)
    a = classifier_geometry(x, y, w)
    with pytest.raises(InputTypeError, match=r"b must be a ClassifierGeometry"):
        compare_classifier_geometry(a, "dense")  # type: ignore[arg-type]


def test_classifier_geometry_zero_feature_row() -> None:
    x, y, w, _ = clustered(34)
    x = x.clone()
    x[2] = 0.0
    with pytest.raises(
        DegenerateInputError, match=r"1 feature rows have zero norm \(first: \[2\]\)"
    ):
        classifier_geometry(x, y, w)


def test_classifier_geometry_allows_classes_without_samples() -> None:
    x, y, w, b = clustered(36)
    keep = y != 2  # class 2 keeps its classifier row but has no sample
    result = classifier_geometry(x[keep], y[keep], w, bias=b)
    assert result.row_norms.shape == (4,)


def test_classifier_geometry_refuses_a_stray_label() -> None:
    x, y, w, _ = clustered(37)
    y = y.clone()
    y[0] = 10**9
    with address_space_headroom(), pytest.raises(ShapeError, match=r"labels must lie in \[0, 4\)"):
        classifier_geometry(x, y, w)


def test_classifier_geometry_wrong_classifier_shape() -> None:
    x, y, _, _ = clustered(35)
    with pytest.raises(ShapeError, match=r"= \(4, 6\), got \(4, 5\)"):
        classifier_geometry(x, y, torch.randn(4, 5, dtype=F64))
