"""Functionally equivalent units and Iterative Feature Merging (subspaces.align.merging)."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from subspaces._checks import InputTypeError, InvalidOptionError, ShapeError
from subspaces.align.merging import (
    MergeReport,
    equivalence_distances,
    feature_complexity,
    merge_layers,
    merge_sequential,
    merge_units,
)

# Exact merges only reorder float32 sums: outputs agree to a few ulps of their magnitude (~1).
ATOL = 1e-5


def _mlp(widths: list[int], seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    mods: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        mods.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods).eval()


@torch.no_grad()
def _copy_unit(layer: nn.Linear | nn.Conv2d, src: int, dst: int, scale: float) -> None:
    layer.weight[dst] = scale * layer.weight[src]
    if layer.bias is not None:
        layer.bias[dst] = scale * layer.bias[src]


@pytest.mark.parametrize("scale", [1.0, 0.25, 3.7], ids=["duplicate", "scale-0.25", "scale-3.7"])
def test_positively_scaled_unit_merges_exactly(scale: float) -> None:
    model = _mlp([6, 5, 4])
    _copy_unit(model[0], 1, 3, scale)
    merged, report = merge_sequential(model)
    x = torch.randn(50, 6)
    torch.testing.assert_close(merged(x), model(x), atol=ATOL, rtol=0)
    assert report.units_after == (4,)
    # one hidden unit gone: its 6 weights and bias, and its column of the 4 × 5 next weight
    assert report.parameters_removed == 6 + 1 + 4
    assert sum(p.numel() for p in merged.parameters()) == report.parameters_after


def test_merge_records_pair_and_scale() -> None:
    model = _mlp([6, 5, 4])
    _copy_unit(model[0], 1, 3, 3.0)  # unit 3 has the larger norm, so unit 1 is removed
    _, report = merge_sequential(model)
    (merge,) = report.merges
    assert (merge.layer, merge.kept, merge.removed) == (0, 3, 1)
    assert merge.scale == pytest.approx(1 / 3, rel=1e-6)
    assert merge.distance < 1e-6


def test_negative_scale_is_not_merged_through_relu() -> None:
    model = _mlp([6, 5, 4])
    _copy_unit(model[0], 1, 3, -2.0)
    _, report = merge_sequential(model, threshold=0.1)
    assert report.units_after == (5,)


def test_negative_scale_merges_between_linear_layers() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.Identity(), nn.Linear(5, 4)).eval()
    _copy_unit(model[0], 1, 3, -2.0)
    merged, report = merge_sequential(model)
    x = torch.randn(50, 6)
    torch.testing.assert_close(merged(x), model(x), atol=ATOL, rtol=0)
    assert report.units_after == (4,)
    assert report.merges[0].scale == pytest.approx(-0.5, rel=1e-6)


def test_doubled_network_merges_back_to_its_width() -> None:
    model = _mlp([8, 6, 5, 3])
    wide = _mlp([8, 12, 10, 3])
    with torch.no_grad():
        # every unit twice (the copy scaled by 2), each pair's outgoing weights a third each
        wide[0].weight.copy_(torch.cat([model[0].weight, 2 * model[0].weight]))
        wide[0].bias.copy_(torch.cat([model[0].bias, 2 * model[0].bias]))
        w2 = torch.cat([model[2].weight, model[2].weight], dim=1) / 3
        wide[2].weight.copy_(torch.cat([w2, 2 * w2], dim=0))
        wide[2].bias.copy_(torch.cat([model[2].bias, 2 * model[2].bias]))
        wide[4].weight.copy_(torch.cat([model[4].weight, model[4].weight], dim=1) / 3)
        wide[4].bias.copy_(model[4].bias)
    merged, report = merge_sequential(wide)
    assert report.units_after == (6, 5)
    x = torch.randn(40, 8)
    torch.testing.assert_close(merged(x), wide(x), atol=ATOL, rtol=0)
    torch.testing.assert_close(merged(x), model(x), atol=ATOL, rtol=0)


def test_conv_pool_flatten_linear_chain_merges_exactly() -> None:
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 3, 3),
        nn.LeakyReLU(0.1),
        nn.Flatten(),
        nn.Linear(3 * 2 * 2, 2),
    ).eval()
    _copy_unit(model[0], 0, 2, 0.3)
    _copy_unit(model[3], 2, 1, 4.0)
    merged, report = merge_sequential(model)
    assert report.units_after == (3, 2)
    assert merged[6].in_features == 2 * 2 * 2
    x = torch.randn(7, 2, 8, 8)
    torch.testing.assert_close(merged(x), model(x), atol=ATOL, rtol=0)


def test_input_model_is_not_modified() -> None:
    model = _mlp([6, 5, 4])
    _copy_unit(model[0], 1, 3, 2.0)
    before = copy.deepcopy(model.state_dict())
    merge_sequential(model)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], atol=0, rtol=0)
    assert model[0].out_features == 5


def test_merge_layers_on_module_list() -> None:
    model = _mlp([6, 5, 4, 3])
    _copy_unit(model[2], 0, 2, 1.5)
    layers = nn.ModuleList([model[0], model[2], model[4]])
    new, report = merge_layers(layers)
    assert [layer.out_features for layer in new] == [5, 3, 3]
    assert report.units_after == (5, 3)
    assert isinstance(report, MergeReport)


def test_dead_unit_is_dropped() -> None:
    model = _mlp([6, 5, 4])
    with torch.no_grad():
        model[0].weight[2] = 0.0
        model[0].bias[2] = -0.5  # relu(-0.5) = 0 for every input
    merged, report = merge_sequential(model)
    assert report.merges[0].kept == -1
    x = torch.randn(30, 6)
    torch.testing.assert_close(merged(x), model(x), atol=ATOL, rtol=0)


def test_a_layer_keeps_at_least_one_unit() -> None:
    model = _mlp([3, 4, 2])
    for k in (1, 2, 3):
        _copy_unit(model[0], 0, k, float(k))
    merged, report = merge_sequential(model)
    assert report.units_after == (1,)
    x = torch.randn(30, 3)
    torch.testing.assert_close(merged(x), model(x), atol=ATOL, rtol=0)


@pytest.mark.parametrize("seed", [0, 1, 2], ids=lambda s: f"seed{s}")
def test_units_removed_non_decreasing_in_threshold(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    w, b, nxt = (
        torch.randn(30, 4, generator=gen),
        torch.randn(30, generator=gen),
        torch.randn(5, 30),
    )
    counts = [
        int(merge_units(w, b, nxt, threshold=t).kept.numel())
        for t in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.4, 2.0)
    ]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] == 30 and counts[-1] < 30


def test_feature_complexity_first_layer_monotone() -> None:
    model = _mlp([4, 40, 10, 3], seed=3)
    first = [int(feature_complexity(model, threshold=t)[0]) for t in (0.0, 0.3, 0.6, 0.9)]
    assert first == sorted(first, reverse=True)


def test_feature_complexity_of_module_list_is_int64() -> None:
    model = _mlp([6, 5, 4])
    _copy_unit(model[0], 1, 3, 2.0)
    out = feature_complexity([model[0], model[2]])
    assert out.dtype == torch.int64 and out.tolist() == [4]


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    scales=st.lists(st.floats(0.05, 20.0), min_size=6, max_size=6),
)
def test_distances_invariant_to_positive_unit_scaling(seed: int, scales: list[float]) -> None:
    gen = torch.Generator().manual_seed(seed)
    w, b = torch.randn(6, 5, generator=gen, dtype=torch.float64), torch.randn(6, generator=gen)
    c = torch.tensor(scales, dtype=torch.float64)
    d = equivalence_distances(w, b.double())
    d_scaled = equivalence_distances(c[:, None] * w, c * b.double())
    torch.testing.assert_close(d_scaled, d, atol=1e-7, rtol=0)  # sqrt of ~1e-15 rounding


@pytest.mark.parametrize(
    "activation,bound", [("relu", 2.0), ("identity", 2**0.5)], ids=["relu", "identity"]
)
def test_distances_symmetric_in_range(activation: str, bound: float) -> None:
    d = equivalence_distances(torch.randn(7, 3), torch.randn(7), activation=activation)
    assert d.dtype == torch.float64
    torch.testing.assert_close(d, d.T, atol=0, rtol=0)
    assert bool((d.diagonal() == 0).all())
    assert float(d.min()) >= 0 and float(d.max()) <= bound + 1e-12


def test_distance_of_zero_unit_is_infinite() -> None:
    w = torch.randn(3, 4)
    w[1] = 0.0
    d = equivalence_distances(w, None)
    assert bool(torch.isinf(d[1, [0, 2]]).all()) and float(d[1, 1]) == 0.0


# ---- errors ----


def test_error_next_weight_not_consecutive() -> None:
    with pytest.raises(ShapeError, match=r"next_weight must have shape \(m, 5, \.\.\.\).*\(4, 6\)"):
        merge_units(torch.randn(5, 3), torch.randn(5), torch.randn(4, 6))


def test_error_bias_shape() -> None:
    with pytest.raises(ShapeError, match=r"bias must have one entry per unit.*\(5,\).*\(4,\)"):
        merge_units(torch.randn(5, 3), torch.randn(4), torch.randn(2, 5))


def test_error_weight_one_dimensional() -> None:
    with pytest.raises(ShapeError, match=r"weight must have at least 2 dimensions.*\(5,\)"):
        equivalence_distances(torch.randn(5))


def test_error_layers_mismatched() -> None:
    with pytest.raises(ShapeError, match=r"layers\[1\] \(Linear.*\(3, 7\).*previous layer's 5"):
        merge_layers([nn.Linear(4, 5), nn.Linear(7, 3)])


def test_error_too_few_layers() -> None:
    with pytest.raises(ShapeError, match="at least 2 layers"):
        merge_layers([nn.Linear(4, 5)])


def test_error_unsupported_layer() -> None:
    with pytest.raises(InputTypeError, match=r"layers\[0\] is Conv1d"):
        merge_layers([nn.Conv1d(2, 3, 1), nn.Linear(3, 2)])


def test_error_grouped_conv() -> None:
    with pytest.raises(InputTypeError, match=r"grouped Conv2d \(groups=2\)"):
        merge_layers([nn.Conv2d(2, 4, 1, groups=2), nn.Conv2d(4, 2, 1)])


def test_error_module_between_layers() -> None:
    model = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2))
    with pytest.raises(InputTypeError, match=r"model\[1\] is BatchNorm1d.*fold normalization"):
        merge_sequential(model)


def test_error_not_sequential() -> None:
    with pytest.raises(InputTypeError, match=r"model must be an nn\.Sequential, got Linear"):
        merge_sequential(nn.Linear(3, 2))  # type: ignore[arg-type]


def test_error_sequential_with_one_layer() -> None:
    with pytest.raises(ShapeError, match=r"at least 2 nn\.Linear / nn\.Conv2d layers.*found 1"):
        merge_sequential(nn.Sequential(nn.Linear(3, 2), nn.ReLU()))


def test_error_module_passed_to_merge_layers() -> None:
    with pytest.raises(InputTypeError, match=r"for an nn\.Sequential use merge_sequential"):
        merge_layers(nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2)))


@pytest.mark.parametrize("threshold", [-0.1, 2.5], ids=["negative", "above-2"])
def test_error_threshold_out_of_range(threshold: float) -> None:
    with pytest.raises(InvalidOptionError, match=r"threshold must lie in \[0.0, 2.0\]"):
        merge_units(torch.randn(3, 2), None, torch.randn(2, 3), threshold=threshold)


def test_error_unknown_activation() -> None:
    with pytest.raises(InvalidOptionError, match="activation must be one of 'relu', 'identity'"):
        equivalence_distances(torch.randn(3, 2), activation="tanh")


# ---- review fixes ----


@pytest.mark.parametrize(
    "between",
    [nn.LeakyReLU(0.1), nn.MaxPool1d(1)],
    ids=["leaky-relu", "max-pool"],
)
def test_negative_bias_unit_is_kept_without_relu(between: nn.Module) -> None:
    # zero weights, bias -0.5: LeakyReLU gives the constant -0.05, max-pooling -0.5, not 0
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), between, nn.Linear(5, 4)).eval()
    with torch.no_grad():
        model[0].weight[2] = 0.0
        model[0].bias[2] = -0.5
    merged, report = merge_sequential(model)
    assert report.units_after == (5,) and report.merges == ()
    x = torch.randn(30, 6)
    torch.testing.assert_close(merged(x), model(x), atol=ATOL, rtol=0)


def test_negative_bias_units_merge_with_each_other_under_leaky_relu() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.LeakyReLU(0.1), nn.Linear(5, 4)).eval()
    with torch.no_grad():
        model[0].weight[[1, 3]] = 0.0
        model[0].bias[1], model[0].bias[3] = -0.5, -2.0  # parallel: the same constant × 4
    merged, report = merge_sequential(model)
    assert report.units_after == (4,) and report.merges[0].kept == 3
    x = torch.randn(30, 6)
    torch.testing.assert_close(merged(x), model(x), atol=ATOL, rtol=0)


def test_error_linear_wider_than_a_multiple_is_not_read_as_flatten() -> None:
    # Linear(4, 5) cannot feed Linear(10, 3): 10 = 2 · 5 is a flatten only after a Conv2d
    with pytest.raises(ShapeError, match=r"layers\[1\] \(Linear.*\(3, 10\).*previous layer's 5"):
        merge_layers([nn.Linear(4, 5), nn.Linear(10, 3)])
