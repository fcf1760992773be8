"""Tests of trainable stitching layers (subspaces.align.stitching)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from subspaces._checks import (
    DegenerateInputError,
    InputTypeError,
    InvalidOptionError,
    ShapeError,
)
from subspaces.align.stitching import (
    StitchedModel,
    StitchingLayer,
    StitchingScore,
    fit_stitch,
    stitching_score,
)

# float32 least squares through float64 moments: errors of a few float32 ulps of the data.
LS_ATOL = 1e-4


def _net(seed: int, widths: tuple[int, ...] = (6, 10, 8, 3)) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(widths):
        layers += [nn.Linear(a, b), nn.Tanh()]
    return nn.Sequential(*layers[:-1]).eval()


def _data(n: int = 64, d: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------- closed form


def _closed_form(
    x: object, y: object, **options: object
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The closed-form stitch's (weight, bias) in nn.Linear layout."""
    stitch = StitchingLayer.from_least_squares(x, y, **options)  # type: ignore[arg-type]
    bias = stitch.bias.detach() if stitch.bias is not None else None
    return stitch.weight.detach(), bias


@given(seed=st.integers(0, 2**16), d1=st.integers(1, 6), d2=st.integers(1, 6))
@settings(max_examples=25, deadline=None)
def test_least_squares_recovers_a_known_affine_map(seed: int, d1: int, d2: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(40, d1, generator=g)
    m, c = torch.randn(d2, d1, generator=g), torch.randn(d2, generator=g)
    w, b = _closed_form(x, x @ m.T + c)
    assert b is not None
    torch.testing.assert_close(w, m, atol=LS_ATOL, rtol=LS_ATOL)
    torch.testing.assert_close(b, c, atol=LS_ATOL, rtol=LS_ATOL)


def test_least_squares_linear_has_no_bias_and_recovers_a_linear_map() -> None:
    x = _data(50, 4) + 3.0  # far from the origin: a linear fit must not center
    m = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
    w, b = _closed_form(x, x @ m.T, bias=False)
    assert b is None
    torch.testing.assert_close(w, m, atol=LS_ATOL, rtol=LS_ATOL)


def test_least_squares_matches_numpy_lstsq_on_noisy_data() -> None:
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(80, 5, generator=g), torch.randn(80, 3, generator=g)
    w, b = _closed_form(x.double(), y.double())
    design = np.hstack([x.double().numpy(), np.ones((80, 1))])
    coef = np.linalg.lstsq(design, y.double().numpy(), rcond=None)[0]
    np.testing.assert_allclose(w.numpy(), coef[:-1].T, atol=1e-10)  # float64 throughout
    assert b is not None
    np.testing.assert_allclose(b.numpy(), coef[-1], atol=1e-10)


def test_least_squares_handles_dead_units_with_the_minimum_norm_solution() -> None:
    x = _data(30, 4)
    x[:, 2] = 0.0  # a dead ReLU unit: rank-deficient Cxx
    m = torch.randn(3, 4, generator=torch.Generator().manual_seed(3))
    w, _ = _closed_form(x, x @ m.T)
    expected = m.clone()
    expected[:, 2] = 0.0  # the dead unit gets no weight
    torch.testing.assert_close(w, expected, atol=LS_ATOL, rtol=LS_ATOL)


def test_ridge_shrinks_the_weights() -> None:
    x = _data(40, 4)
    y = x @ torch.randn(2, 4, generator=torch.Generator().manual_seed(4)).T
    w0, _ = _closed_form(x, y)
    w1, _ = _closed_form(x, y, ridge=1.0)
    assert float(w1.norm()) < float(w0.norm())


def test_least_squares_accepts_numpy() -> None:
    x = _data(20, 3).numpy()
    w, _ = _closed_form(x, 2.0 * x)
    torch.testing.assert_close(w, 2.0 * torch.eye(3), atol=LS_ATOL, rtol=LS_ATOL)


def test_least_squares_refuses_different_sample_counts() -> None:
    with pytest.raises(ShapeError, match=r"same samples.*x has shape \(10, 3\) and y \(9, 3\)"):
        _closed_form(_data(10, 3), _data(9, 3))


def test_least_squares_refuses_constant_x() -> None:
    with pytest.raises(DegenerateInputError, match="x has zero variance"):
        _closed_form(torch.ones(10, 3), _data(10, 2))


def test_linear_least_squares_refuses_zero_x() -> None:
    with pytest.raises(DegenerateInputError, match="x has zero variance"):
        _closed_form(torch.zeros(10, 3), _data(10, 2), bias=False)


def test_least_squares_refuses_negative_ridge() -> None:
    with pytest.raises(InvalidOptionError, match=r"ridge must lie in \[0.0, inf\), got -1"):
        _closed_form(_data(10, 3), _data(10, 2), ridge=-1)


# ----------------------------------------------------------------------- the layer


@pytest.mark.parametrize("bias", [True, False], ids=["affine", "linear"])
def test_identity_stitch_is_the_identity(bias: bool) -> None:
    x = _data(8, 5)
    torch.testing.assert_close(StitchingLayer(5, 5, bias=bias)(x), x, atol=0.0, rtol=0.0)


def test_rectangular_identity_copies_the_leading_coordinates() -> None:
    x = _data(8, 5)
    out = StitchingLayer(5, 3)(x)
    torch.testing.assert_close(out, x[:, :3], atol=0.0, rtol=0.0)


def test_random_init_is_reproducible_from_a_generator() -> None:
    a = StitchingLayer(4, 3, init="random", seed=torch.Generator().manual_seed(0))
    b = StitchingLayer(4, 3, init="random", seed=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a.weight, b.weight, atol=0.0, rtol=0.0)
    assert float(a.weight.detach().abs().max()) <= 0.5 + 1e-7  # U(-1/sqrt(4), 1/sqrt(4))


def test_feature_dim_makes_a_one_by_one_convolution() -> None:
    stitch = StitchingLayer(3, 4, init="random", feature_dim=1)
    h = torch.randn(2, 3, 5, 5)
    conv = nn.Conv2d(3, 4, kernel_size=1)
    with torch.no_grad():
        conv.weight.copy_(stitch.weight[:, :, None, None])
        assert stitch.bias is not None
        conv.bias.copy_(stitch.bias)
    torch.testing.assert_close(stitch(h), conv(h), atol=1e-6, rtol=1e-6)


def test_from_least_squares_on_feature_maps_counts_positions_as_samples() -> None:
    h = torch.randn(4, 3, 5, 5, generator=torch.Generator().manual_seed(5))
    m = torch.randn(2, 3, generator=torch.Generator().manual_seed(6))
    target = torch.einsum("oc,nchw->nohw", m, h)
    stitch = StitchingLayer.from_least_squares(h, target, bias=False, feature_dim=1)
    torch.testing.assert_close(stitch.weight.detach(), m, atol=LS_ATOL, rtol=LS_ATOL)
    torch.testing.assert_close(stitch(h), target, atol=LS_ATOL, rtol=LS_ATOL)


def test_layer_refuses_input_of_the_wrong_width() -> None:
    with pytest.raises(
        ShapeError, match=r"input has 4 features along feature_dim=-1.*in_features=5"
    ):
        StitchingLayer(5, 5)(torch.zeros(3, 4))


def test_layer_refuses_a_missing_feature_dim() -> None:
    with pytest.raises(ShapeError, match=r"shape \(3, 4\) \(2-D\), which has no feature_dim=2"):
        StitchingLayer(4, 4, feature_dim=2)(torch.zeros(3, 4))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"in_features": 0, "out_features": 3},
            InvalidOptionError,
            "in_features must be at least 1",
        ),
        (
            {"in_features": 3, "out_features": 2.5},
            InputTypeError,
            "out_features must be an integer",
        ),
        (
            {"in_features": 3, "out_features": 3, "init": "eye"},
            InvalidOptionError,
            "init must be one of",
        ),
        (
            {"in_features": 3, "out_features": 3, "feature_dim": "1"},
            InputTypeError,
            "feature_dim must",
        ),
    ],
    ids=["zero-width", "float-width", "bad-init", "str-feature-dim"],
)
def test_layer_refuses_bad_options(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        StitchingLayer(**kwargs)


def test_fit_least_squares_refuses_width_mismatch() -> None:
    with pytest.raises(ShapeError, match=r"x has 4 features .* in_features=5"):
        StitchingLayer(5, 3).fit_least_squares(_data(10, 4), _data(10, 3))
    with pytest.raises(ShapeError, match=r"y has 2 features .* out_features=3"):
        StitchingLayer(4, 3).fit_least_squares(_data(10, 4), _data(10, 2))


def test_fit_least_squares_refuses_one_dimensional_activations() -> None:
    with pytest.raises(ShapeError, match=r"x must have a samples dimension.*shape \(10,\)"):
        StitchingLayer(1, 1).fit_least_squares(torch.zeros(10), torch.zeros(10, 1))


# ----------------------------------------------------------------------- stitched model


@pytest.mark.parametrize("init", ["identity", "least_squares"])
def test_self_stitch_at_the_same_layer_reproduces_the_network(init: str) -> None:
    net, x = _net(0), _data(64)
    if init == "identity":
        stitch = StitchingLayer(10, 10)
    else:
        h = net[:2](x).detach()
        stitch = StitchingLayer.from_least_squares(h, h)
    model = StitchedModel(net[:2], stitch, net[2:])
    torch.testing.assert_close(model(x), net(x), atol=LS_ATOL, rtol=LS_ATOL)


def test_self_stitch_scores_no_penalty() -> None:
    net, x = _net(0), _data(64)
    labels = net(x).argmax(1)
    score = stitching_score(
        StitchedModel(net[:2], StitchingLayer(10, 10), net[2:]), x, labels, reference=net
    )
    assert isinstance(score, StitchingScore)
    assert float(score.accuracy) == 1.0 and float(score.penalty) == 0.0
    assert float(score.relative_accuracy) == 1.0
    torch.testing.assert_close(score.loss, score.reference_loss, atol=1e-6, rtol=1e-6)
    assert score.n_samples == 64 and score.accuracy.dtype == torch.float64


def test_a_known_linear_relation_between_two_networks_is_recovered() -> None:
    # B's layer = M · A's layer + c exactly: B is A with its first layer's output mapped.
    net_a, x = _net(0), _data(128)
    m = torch.randn(7, 10, generator=torch.Generator().manual_seed(7))
    c = torch.randn(7, generator=torch.Generator().manual_seed(8))
    front_b = nn.Sequential(net_a[:2], nn.Linear(10, 7))
    with torch.no_grad():
        front_b[1].weight.copy_(m)
        front_b[1].bias.copy_(c)
    h_a, h_b = net_a[:2](x).detach(), front_b(x).detach()
    stitch = StitchingLayer.from_least_squares(h_a, h_b)
    torch.testing.assert_close(stitch.weight.detach(), m, atol=LS_ATOL, rtol=LS_ATOL)
    assert stitch.bias is not None
    torch.testing.assert_close(stitch.bias.detach(), c, atol=LS_ATOL, rtol=LS_ATOL)


def test_training_recovers_a_known_linear_relation() -> None:
    # Regress onto B's layer with back = identity, from a zero stitch: gradient descent on a
    # convex quadratic; 150 full-batch Adam steps bring the error far below the map's scale.
    g = torch.Generator().manual_seed(9)
    x = torch.randn(64, 3, generator=g)
    m = torch.randn(2, 3, generator=g)
    model = StitchedModel(
        nn.Identity(), StitchingLayer(3, 2, bias=False, init="zeros"), nn.Identity()
    )
    history = fit_stitch(model, x, x @ m.T, loss="mse", epochs=150, batch_size=64, lr=0.05, seed=0)
    assert history.shape == (150,) and history.dtype == torch.float64
    assert float(history[-1]) < 1e-3 * float(history[0])
    torch.testing.assert_close(model.stitch.weight.detach(), m, atol=2e-2, rtol=0.0)


def test_only_the_stitch_changes_during_training() -> None:
    net_a, net_b, x = _net(0), _net(1), _data(64)
    before_a = {k: v.clone() for k, v in net_a.state_dict().items()}
    before_b = {k: v.clone() for k, v in net_b.state_dict().items()}
    stitch = StitchingLayer(10, 10, init="random", seed=torch.Generator().manual_seed(0))
    w0 = stitch.weight.detach().clone()
    model = StitchedModel(net_a[:2], stitch, net_b[2:])
    fit_stitch(model, x, net_b(x).argmax(1), epochs=3, batch_size=16, lr=1e-2, seed=0)
    for k, v in net_a.state_dict().items():
        torch.testing.assert_close(v, before_a[k], atol=0.0, rtol=0.0)
    for k, v in net_b.state_dict().items():
        torch.testing.assert_close(v, before_b[k], atol=0.0, rtol=0.0)
    assert not torch.equal(stitch.weight.detach(), w0)
    assert all(p.grad is None for p in net_b.parameters())


def test_networks_passed_in_are_left_as_they_were() -> None:
    net_a, net_b, x = _net(0), _net(1), _data(64)
    net_b[2].weight.requires_grad_(False)  # a flag the user set must survive too
    net_a.train()
    model = StitchedModel(net_a[:2], StitchingLayer(10, 10), net_b[2:])
    fit_stitch(model, x, net_b(x).argmax(1), epochs=2, batch_size=16, seed=0)
    assert net_a.training and all(m.training for m in net_a.modules())
    assert not any(m.training for m in net_b.modules())  # was in eval mode, stays there
    flags = {name: p.requires_grad for name, p in net_b.named_parameters()}
    assert flags == {name: name != "2.weight" for name in flags}
    assert all(p.requires_grad for p in net_a.parameters())


def test_frozen_restores_flags_and_modes_after_an_error() -> None:
    net = _net(0).train()
    model = StitchedModel(net[:2], StitchingLayer(10, 10), net[2:])
    with pytest.raises(RuntimeError, match="boom"), model.frozen():
        assert not any(p.requires_grad for p in net.parameters()) and not net[0].training
        raise RuntimeError("boom")
    assert all(p.requires_grad for p in net.parameters()) and net[0].training


def test_frozen_parts_stay_in_eval_mode() -> None:
    front = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    model = StitchedModel(front, StitchingLayer(4, 4), nn.Identity()).train()
    assert model.stitch.training and not front.training
    x = _data(8, 4)
    torch.testing.assert_close(model(x), model(x), atol=0.0, rtol=0.0)  # no dropout


def test_any_callables_can_be_front_and_back() -> None:
    net, x = _net(0), _data(16)
    model = StitchedModel(lambda t: net[:2](t), StitchingLayer(10, 10), lambda t: net[2:](t))
    torch.testing.assert_close(model(x), net(x), atol=0.0, rtol=0.0)
    history = fit_stitch(model, x, net(x).argmax(1), epochs=2, seed=0, cache_front=False)
    assert history.shape == (2,)


@pytest.mark.parametrize("seed", [0, torch.Generator().manual_seed(0)], ids=["int", "generator"])
def test_training_is_reproducible_from_a_seed(seed: int | torch.Generator) -> None:
    net, x = _net(0), _data(32)
    labels = net(x).argmax(1)
    weights = []
    for _ in range(2):
        stitch = StitchingLayer(10, 10, init="random", seed=torch.Generator().manual_seed(1))
        s = seed if isinstance(seed, int) else torch.Generator().manual_seed(0)
        fit_stitch(
            StitchedModel(net[:2], stitch, net[2:]), x, labels, epochs=2, batch_size=8, seed=s
        )
        weights.append(stitch.weight.detach())
    torch.testing.assert_close(weights[0], weights[1], atol=0.0, rtol=0.0)


def test_progress_callback_gets_each_epoch() -> None:
    net, x = _net(0), _data(16)
    seen: list[tuple[int, float]] = []
    model = StitchedModel(net[:2], StitchingLayer(10, 10), net[2:])
    history = fit_stitch(
        model, x, net(x).argmax(1), epochs=3, seed=0, progress=lambda e, v: seen.append((e, v))
    )
    assert [e for e, _ in seen] == [1, 2, 3]
    assert [v for _, v in seen] == pytest.approx(history.tolist())


def test_model_refuses_front_of_the_wrong_width() -> None:
    net_a, net_b, x = _net(0, (6, 9, 8, 3)), _net(1), _data(16)
    model = StitchedModel(net_a[:2], StitchingLayer(10, 10), net_b[2:])
    with pytest.raises(
        ShapeError, match=r"input has 9 features.*in_features=10.*front of network A"
    ):
        fit_stitch(model, x, torch.zeros(16, dtype=torch.long), epochs=1)


def test_model_refuses_stitch_output_of_the_wrong_width() -> None:
    net, x = _net(0), _data(16)
    model = StitchedModel(net[:2], StitchingLayer(10, 7), net[2:])
    with pytest.raises(ShapeError, match=r"back failed on the stitch's output of shape \(16, 7\)"):
        model(x)


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (
            ("not callable", StitchingLayer(2, 2), nn.Identity()),
            InputTypeError,
            "front must be a callable",
        ),
        ((nn.Identity(), StitchingLayer(2, 2), 3), InputTypeError, "back must be a callable"),
        (
            (nn.Identity(), lambda t: t, nn.Identity()),
            InputTypeError,
            "stitch must be an nn.Module",
        ),
    ],
    ids=["front", "back", "stitch"],
)
def test_model_refuses_bad_parts(args: tuple, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        StitchedModel(*args)


# ----------------------------------------------------------------------- fit_stitch errors


def _model() -> StitchedModel:
    net = _net(0)
    return StitchedModel(net[:2], StitchingLayer(10, 10), net[2:])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"epochs": 0}, InvalidOptionError, "epochs must be at least 1"),
        ({"batch_size": 2.0}, InputTypeError, "batch_size must be an integer"),
        ({"lr": 0.0}, InvalidOptionError, r"lr must lie in \(0.0, 1000000.0\)"),
        ({"loss": "hinge"}, InvalidOptionError, "loss must be one of 'cross_entropy', 'mse'"),
        ({"seed": -1}, InvalidOptionError, "seed must be at least 0"),
    ],
    ids=["epochs", "batch-size", "lr", "loss", "seed"],
)
def test_fit_refuses_bad_options(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        fit_stitch(_model(), _data(8), torch.zeros(8, dtype=torch.long), **kwargs)


def test_fit_refuses_labels_of_another_length() -> None:
    with pytest.raises(ShapeError, match="targets has 7 entries but the representation has 8"):
        fit_stitch(_model(), _data(8), torch.zeros(7, dtype=torch.long))


@pytest.mark.parametrize(
    ("label", "shown"), [(10**7, r"\[0, 10000000\]"), (-100, r"\[-100, 2\]")], ids=["1e7", "-100"]
)
def test_fit_refuses_labels_outside_the_outputs(label: int, shown: str) -> None:
    # -100 is cross_entropy's ignore_index: without the check that sample would be skipped
    targets = torch.tensor([0, 1, 2, 0, 1, 2, 0, label])
    with pytest.raises(ShapeError, match=rf"targets hold classes in {shown} but the stitched "):
        fit_stitch(_model(), _data(8), targets, epochs=1)


def test_fit_refuses_mse_targets_of_another_length() -> None:
    with pytest.raises(ShapeError, match=r"targets must have one row per sample of x \(8\)"):
        fit_stitch(_model(), _data(8), torch.zeros(7, 3), loss="mse")


def test_fit_refuses_a_plain_module() -> None:
    with pytest.raises(InputTypeError, match="model must be a StitchedModel"):
        fit_stitch(nn.Linear(2, 2), _data(8), torch.zeros(8, dtype=torch.long))  # type: ignore[arg-type]


def test_fit_refuses_non_array_inputs() -> None:
    with pytest.raises(
        InputTypeError, match=r"x must be a torch\.Tensor or a numpy\.ndarray, got list"
    ):
        fit_stitch(_model(), [[0.0] * 6], torch.zeros(1, dtype=torch.long))


def test_fit_reports_a_diverging_loss() -> None:
    model = StitchedModel(nn.Identity(), StitchingLayer(2, 2), nn.Identity())
    x = torch.full((4, 2), 1e20)  # finite, but the squared error 4e40 overflows float32
    with pytest.raises(DegenerateInputError, match="training loss became inf at epoch 1"):
        fit_stitch(model, x, -x, loss="mse", epochs=1)


# ----------------------------------------------------------------------- score errors


def test_score_refuses_labels_out_of_range() -> None:
    net, x = _net(0), _data(8)
    with pytest.raises(ShapeError, match=r"classes in \[0, 5\] but model returns 3 logits"):
        stitching_score(_model(), x, torch.tensor([0, 1, 2, 5, 0, 1, 2, 0]), reference=net)


def test_score_checks_every_label_at_the_first_batch() -> None:
    net, x = _net(0), _data(8)
    calls = []

    def counted(t: torch.Tensor) -> torch.Tensor:
        calls.append(t.shape[0])
        return net(t)

    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 5])  # the stray label is in the last batch
    with pytest.raises(ShapeError, match=r"classes in \[0, 5\] but model returns 3 logits"):
        stitching_score(counted, x, labels, reference=net, batch_size=2)
    assert calls == [2]


def test_score_refuses_outputs_that_are_not_logits() -> None:
    x = _data(8)
    with pytest.raises(ShapeError, match=r"reference must return \(batch, num_classes\) logits"):
        stitching_score(_model(), x, torch.zeros(8, dtype=torch.long), reference=lambda t: t[:, 0])


def test_score_refuses_a_non_callable_reference() -> None:
    with pytest.raises(InputTypeError, match="reference must be a callable"):
        stitching_score(_model(), _data(8), torch.zeros(8, dtype=torch.long), reference=None)  # type: ignore[arg-type]


def test_relative_accuracy_refuses_a_useless_reference() -> None:
    zero = torch.zeros((), dtype=torch.float64)
    score = StitchingScore(zero, zero, zero, zero, zero, 4)
    with pytest.raises(DegenerateInputError, match="reference network has accuracy 0"):
        score.relative_accuracy


def test_score_restores_training_mode() -> None:
    net = _net(0).train()
    model = _model().train()
    stitching_score(model, _data(8), torch.zeros(8, dtype=torch.long), reference=net)
    assert net.training and model.stitch.training


def test_progress_bar_runs(capsys: pytest.CaptureFixture[str]) -> None:
    net, x = _net(0), _data(16)
    model = StitchedModel(net[:2], StitchingLayer(10, 10), net[2:])
    fit_stitch(model, x, net(x).argmax(1), epochs=2, seed=0, progress=True)
    assert "fit_stitch" in capsys.readouterr().err
