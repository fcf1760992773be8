"""Tests of relative projection and zero-shot stitching (Moschella et al., 2023)."""

from __future__ import annotations

import sys
from pathlib import Path

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
    TooFewSamplesError,
)
from subspaces.align.relative import (
    RelativeProjection,
    fit_classification_head,
    relative_projection,
)
from subspaces.similarity.relative import relative_representation, relative_similarity

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _memory import address_space_headroom

# float64 inputs throughout: invariances hold to rounding, ~1e-12 relative; 1e-9 leaves
# room for the condition of cosines near ±1 and of scales up to 10.
TOL = 1e-9
PROPERTY = settings(max_examples=25, deadline=None)
seeds = st.integers(0, 2**31 - 1)
scales = st.floats(0.1, 10.0)
ALL = ["cosine", "linear", "euclidean", "l1", "linf"]
ROTATION_INVARIANT = ["cosine", "linear", "euclidean"]
DISTANCES = ["euclidean", "l1", "linf"]


def _data(seed: int, n: int = 20, d: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


def _orthogonal(seed: int, d: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q * np.sign(np.diag(r))


def _signed_permutation(seed: int, d: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.eye(d)[rng.permutation(d)] * rng.choice([-1.0, 1.0], size=d)


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=TOL, atol=TOL)


# --- relative_projection: values -----------------------------------------------------------


@pytest.mark.parametrize("similarity", ALL)
def test_relative_projection_is_the_shared_relative_representation(similarity: str) -> None:
    x, anchors = _data(0), _data(1, n=6)
    _close(
        relative_projection(x, anchors, similarity=similarity),
        relative_representation(x, anchors, similarity=similarity),
    )


def test_relative_projection_cosine_formula() -> None:
    x, anchors = _data(0), _data(1, n=6)
    unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(
        relative_projection(x, anchors).numpy(), unit(x) @ unit(anchors).T, rtol=1e-12
    )


def test_relative_projection_is_differentiable_in_points_and_anchors() -> None:
    x = torch.tensor(_data(0), requires_grad=True)
    anchors = torch.tensor(_data(1, n=4), requires_grad=True)
    relative_projection(x, anchors, similarity="euclidean").sum().backward()
    assert x.grad is not None and anchors.grad is not None
    assert bool(torch.isfinite(x.grad).all())


# --- relative_projection: invariances ------------------------------------------------------


@PROPERTY
@given(seed=seeds, similarity=st.sampled_from(ROTATION_INVARIANT))
def test_invariant_to_rotation_of_points_and_anchors(seed: int, similarity: str) -> None:
    x, anchors, q = _data(seed), _data(seed + 1, n=6), _orthogonal(seed, 5)
    _close(
        relative_projection(x @ q, anchors @ q, similarity=similarity),
        relative_projection(x, anchors, similarity=similarity),
    )


@PROPERTY
@given(seed=seeds, similarity=st.sampled_from(ALL))
def test_invariant_to_signed_coordinate_permutations(seed: int, similarity: str) -> None:
    x, anchors, p = _data(seed), _data(seed + 1, n=6), _signed_permutation(seed, 5)
    _close(
        relative_projection(x @ p, anchors @ p, similarity=similarity),
        relative_projection(x, anchors, similarity=similarity),
    )


@pytest.mark.parametrize("similarity", ["l1", "linf"])
def test_l1_and_linf_change_under_a_general_rotation(similarity: str) -> None:
    # 45° in the plane: (1, 0) and (0, 0) stay 1 apart in every norm before; after, the
    # difference (1/√2, 1/√2) has L1 norm √2 and L∞ norm 1/√2.
    c = np.sqrt(0.5)
    q = np.array([[c, c], [-c, c]])
    x, anchors = np.array([[1.0, 0.0]]), np.array([[0.0, 0.0], [3.0, 1.0]])
    before = relative_projection(x, anchors, similarity=similarity)
    after = relative_projection(x @ q, anchors @ q, similarity=similarity)
    assert float(before[0, 0]) == pytest.approx(1.0)
    assert float(after[0, 0]) == pytest.approx(np.sqrt(2.0) if similarity == "l1" else c)


@PROPERTY
@given(seed=seeds, scale=scales, sign=st.sampled_from([-1.0, 1.0]))
def test_cosine_invariant_to_isotropic_scaling(seed: int, scale: float, sign: float) -> None:
    x, anchors = _data(seed), _data(seed + 1, n=6)
    c = sign * scale
    _close(relative_projection(c * x, c * anchors), relative_projection(x, anchors))


@PROPERTY
@given(seed=seeds, scale=scales, similarity=st.sampled_from(ALL))
def test_normalized_projection_invariant_to_isotropic_scaling(
    seed: int, scale: float, similarity: str
) -> None:
    x, anchors = _data(seed), _data(seed + 1, n=6)
    _close(
        relative_projection(scale * x, scale * anchors, similarity=similarity, normalize=True),
        relative_projection(x, anchors, similarity=similarity, normalize=True),
    )


@PROPERTY
@given(seed=seeds, scale=scales, similarity=st.sampled_from(["linear", *DISTANCES]))
def test_without_normalize_linear_and_distances_scale_with_the_space(
    seed: int, scale: float, similarity: str
) -> None:
    # Not invariant: the linear relative vector scales by c², the distances by c.
    x, anchors = _data(seed), _data(seed + 1, n=6)
    power = 2 if similarity == "linear" else 1
    _close(
        relative_projection(scale * x, scale * anchors, similarity=similarity),
        scale**power * relative_projection(x, anchors, similarity=similarity),
    )


@PROPERTY
@given(seed=seeds, similarity=st.sampled_from(DISTANCES))
def test_distances_invariant_to_translation(seed: int, similarity: str) -> None:
    x, anchors = _data(seed), _data(seed + 1, n=6)
    shift = 3.0 * np.random.default_rng(seed).normal(size=5)
    _close(
        relative_projection(x + shift, anchors + shift, similarity=similarity),
        relative_projection(x, anchors, similarity=similarity),
    )


@PROPERTY
@given(seed=seeds, similarity=st.sampled_from(["cosine", "linear"]))
def test_centered_cosine_and_linear_invariant_to_translation(seed: int, similarity: str) -> None:
    x, anchors = _data(seed), _data(seed + 1, n=6)
    shift = 3.0 * np.random.default_rng(seed).normal(size=5)
    _close(
        relative_projection(x + shift, anchors + shift, similarity=similarity, center=True),
        relative_projection(x, anchors, similarity=similarity, center=True),
    )


@pytest.mark.parametrize("similarity", ["cosine", "linear"])
def test_uncentered_cosine_and_linear_change_under_translation(similarity: str) -> None:
    x, anchors = _data(0), _data(1, n=6)
    moved = relative_projection(x + 5.0, anchors + 5.0, similarity=similarity)
    assert not torch.allclose(moved, relative_projection(x, anchors, similarity=similarity))


@PROPERTY
@given(seed=seeds, scale=scales, similarity=st.sampled_from(["cosine", "euclidean"]))
def test_centered_normalized_invariant_to_similarity_transforms(
    seed: int, scale: float, similarity: str
) -> None:
    # Y = c X Q + v (netrep's test): cosine needs center, euclidean needs normalize.
    x, anchors = _data(seed), _data(seed + 1, n=6)
    q, v = _orthogonal(seed, 5), np.random.default_rng(seed).normal(size=5)
    opts = {"similarity": similarity, "center": True, "normalize": True}
    _close(
        relative_projection(scale * x @ q + v, scale * anchors @ q + v, **opts),
        relative_projection(x, anchors, **opts),
    )


def test_no_similarity_is_invariant_to_an_anisotropic_map() -> None:
    x, anchors = _data(0), _data(1, n=6)
    stretch = np.diag([1.0, 1.0, 1.0, 1.0, 5.0])
    for similarity in ALL:
        moved = relative_projection(x @ stretch, anchors @ stretch, similarity=similarity)
        base = relative_projection(x, anchors, similarity=similarity)
        assert not torch.allclose(moved, base, rtol=1e-3, atol=1e-3), similarity


# --- RelativeProjection --------------------------------------------------------------------


def test_module_forward_equals_the_function() -> None:
    z, anchors = torch.tensor(_data(0)), torch.tensor(_data(1, n=6))
    proj = RelativeProjection(anchors, similarity="l1", normalize=True)
    _close(proj(z), relative_projection(z, anchors, similarity="l1", normalize=True))


def test_module_holds_anchors_as_an_untrained_buffer() -> None:
    proj = RelativeProjection(torch.tensor(_data(1, n=6)))
    assert list(proj.parameters()) == []
    assert "anchors" in proj.state_dict()
    assert proj.to(torch.float32).anchors.dtype == torch.float32


def test_from_encoder_embeds_the_anchor_inputs_without_gradient() -> None:
    encoder = nn.Linear(5, 3).double()
    inputs = torch.tensor(_data(2, n=6))
    proj = RelativeProjection.from_encoder(encoder, inputs, similarity="euclidean")
    assert not proj.anchors.requires_grad
    _close(proj.anchors, encoder(inputs).detach())


def test_module_passes_gradients_to_the_encoder() -> None:
    encoder = nn.Linear(5, 3).double()
    proj = RelativeProjection.from_encoder(encoder, torch.tensor(_data(2, n=6)))
    proj(encoder(torch.tensor(_data(0)))).sum().backward()
    assert encoder.weight.grad is not None and bool(encoder.weight.grad.abs().sum() > 0)


def test_extra_repr_names_the_options() -> None:
    proj = RelativeProjection(torch.tensor(_data(1, n=6)), similarity="linf")
    assert "n_anchors=6, width=5, similarity='linf'" in repr(proj)


@pytest.mark.parametrize("similarity", ["cosine", "euclidean"])
def test_head_trained_on_one_space_transfers_exactly_to_a_rotated_scaled_copy(
    similarity: str,
) -> None:
    # Encoder A = encoder B followed by 3 × an orthogonal map: zero-shot stitching through
    # the relative space (normalized, for euclidean's scale) gives B's predictions exactly.
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(60, 8, generator=gen, dtype=torch.float64)
    labels = (inputs[:, 0] > 0).long() + (inputs[:, 1] > 0).long()
    encoder_b = nn.Sequential(nn.Linear(8, 6), nn.Tanh()).double()
    q = torch.tensor(3.0 * _orthogonal(4, 6))
    encoder_a = lambda t: encoder_b(t) @ q  # noqa: E731
    anchor_inputs = inputs[:10]
    opts = {"similarity": similarity, "normalize": True}
    proj_b = RelativeProjection.from_encoder(encoder_b, anchor_inputs, **opts)
    proj_a = RelativeProjection.from_encoder(encoder_a, anchor_inputs, **opts)
    with torch.no_grad():  # training inside no_grad still works
        head = fit_classification_head(proj_b(encoder_b(inputs)), labels, epochs=20)
        _close(head(proj_a(encoder_a(inputs))), head(proj_b(encoder_b(inputs))))


# --- fit_classification_head ---------------------------------------------------------------


def _separable(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(90) % 3
    centers = 6.0 * torch.eye(3, 4)
    return centers[labels] + 0.3 * torch.randn(90, 4, generator=gen), labels


@pytest.mark.parametrize("hidden", [(), (16,)], ids=["linear", "mlp"])
def test_head_fits_separable_classes(hidden: tuple[int, ...]) -> None:
    x, y = _separable(0)
    head = fit_classification_head(x, y, hidden=hidden, epochs=30)
    with torch.no_grad():
        assert bool((head(x).argmax(1) == y).all())


def test_head_layers_follow_hidden_widths() -> None:
    x, y = _separable(0)
    head = fit_classification_head(x, y, hidden=(7, 5), num_classes=4, epochs=1)
    linears = [m for m in head if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(4, 7), (7, 5), (5, 4)]
    assert sum(isinstance(m, nn.ReLU) for m in head) == 2


def test_head_is_reproducible_and_leaves_the_global_random_state() -> None:
    x, y = _separable(1)
    state = torch.random.get_rng_state()
    first = fit_classification_head(x, y, epochs=3, seed=7)
    assert torch.equal(torch.random.get_rng_state(), state)
    again = fit_classification_head(x, y, epochs=3, seed=7)
    for a, b in zip(first.parameters(), again.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_head_trains_in_the_features_dtype() -> None:
    x, y = _separable(0)
    head = fit_classification_head(x.double(), y, epochs=1)
    assert next(head.parameters()).dtype == torch.float64
    assert not head.training


# --- errors --------------------------------------------------------------------------------


def test_relative_projection_rejects_anchors_not_in_the_space() -> None:
    with pytest.raises(ShapeError, match=r"anchors has 3 features .* but x has 5"):
        relative_projection(_data(0), _data(1, n=4, d=3))


def test_module_rejects_outputs_of_another_width() -> None:
    proj = RelativeProjection(torch.tensor(_data(1, n=4, d=3)))
    with pytest.raises(ShapeError, match=r"anchors has 3 features .* but x has 5"):
        proj(torch.tensor(_data(0)))


def test_module_rejects_a_single_anchor() -> None:
    with pytest.raises(TooFewSamplesError, match=r"anchors has 1 row .* at least 2 anchors"):
        RelativeProjection(torch.tensor(_data(1, n=1)))


@pytest.mark.parametrize("similarity", ALL)
def test_relative_projection_rejects_a_single_anchor(similarity: str) -> None:
    # As the module and the paired measures do: one anchor gives a ±1 cosine vector.
    with pytest.raises(TooFewSamplesError, match=r"anchors has 1 row .* at least 2 anchors"):
        relative_projection(_data(0), _data(1, n=1), similarity=similarity)


def test_relative_projection_rejects_no_anchors() -> None:
    with pytest.raises(TooFewSamplesError, match=r"anchors has 0 samples"):
        relative_projection(_data(0), np.zeros((0, 5)))


def test_relative_projection_rejects_one_dimensional_anchors() -> None:
    with pytest.raises(ShapeError, match="anchors must be a 2-D"):
        relative_projection(_data(0), np.ones(5))


def test_relative_projection_rejects_unknown_similarity() -> None:
    with pytest.raises(InvalidOptionError, match="similarity must be one of 'cosine'"):
        relative_projection(_data(0), _data(1, n=4), similarity="angular")


def test_module_rejects_unknown_similarity() -> None:
    with pytest.raises(InvalidOptionError, match="similarity must be one of"):
        RelativeProjection(torch.tensor(_data(1, n=4)), similarity="dot")


def test_cosine_projection_rejects_a_zero_anchor() -> None:
    anchors = _data(1, n=3)
    anchors[2] = 0.0
    with pytest.raises(DegenerateInputError, match="1 anchors of anchors are the zero vector"):
        relative_projection(_data(0), anchors)


def test_paired_relative_comparison_rejects_different_n() -> None:
    with pytest.raises(ShapeError, match=r"x has 20 rows .* y has 10"):
        relative_similarity(_data(0), _data(1, n=10), n_anchors=3)


def test_from_encoder_rejects_a_non_callable() -> None:
    with pytest.raises(InputTypeError, match="encoder must be callable"):
        RelativeProjection.from_encoder("encoder", torch.zeros(3, 2))  # type: ignore[arg-type]


def test_head_rejects_labels_of_another_length() -> None:
    x, y = _separable(0)
    with pytest.raises(ShapeError, match="labels has 89 entries but the representation has 90"):
        fit_classification_head(x, y[:-1])


def test_head_rejects_negative_labels() -> None:
    x, y = _separable(0)
    with pytest.raises(ShapeError, match=r"labels must lie in \[0, 2\) .* \(min -1, max 1\)"):
        fit_classification_head(x, y - 1)


@pytest.mark.parametrize("label", [10**9, 2**62], ids=["1e9", "2**62"])
def test_head_refuses_a_stray_label_before_anything_is_sized_by_it(label: int) -> None:
    x, y = _separable(0)
    y[5] = label
    with (
        address_space_headroom(),
        pytest.raises(
            ShapeError, match=rf"labels imply {label + 1} classes .* only 90 samples.* num_classes="
        ),
    ):
        fit_classification_head(x, y, epochs=1)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("num_classes", 10**12, r"num_classes=1000000000000 needs the head's layer"),
        ("hidden", (10**12,), r"hidden=1000000000000 needs the head's layer"),
    ],
    ids=["num_classes", "hidden"],
)
def test_head_widths_that_cannot_fit_are_refused(option: str, value: object, message: str) -> None:
    x, y = _separable(0)
    with address_space_headroom(), pytest.raises(InvalidOptionError, match=message):
        fit_classification_head(x, y, epochs=1, **{option: value})


def test_head_rejects_too_few_classes() -> None:
    x, y = _separable(0)
    with pytest.raises(ShapeError, match=r"labels must lie in \[0, 2\) .* \(min 0, max 2\)"):
        fit_classification_head(x, y, num_classes=2)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("hidden", (0,), r"hidden\[0\] must be at least 1"),
        ("epochs", 0, "epochs must be at least 1"),
        ("batch_size", 0, "batch_size must be at least 1"),
        ("lr", 0.0, r"lr must lie in \(0.0, 1000000.0\)"),
        ("weight_decay", -1.0, r"weight_decay must lie in \[0.0, 1000000.0\)"),
    ],
    ids=["hidden", "epochs", "batch_size", "lr", "weight_decay"],
)
def test_head_rejects_bad_training_options(option: str, value: object, message: str) -> None:
    x, y = _separable(0)
    with pytest.raises(InvalidOptionError, match=message):
        fit_classification_head(x, y, **{option: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("option", ["center", "normalize"])
def test_relative_projection_module_refuses_non_boolean_flags(option: str) -> None:
    with pytest.raises(InputTypeError, match=f"{option} must be True or False, got 1"):
        RelativeProjection(torch.randn(3, 2), **{option: 1})  # type: ignore[arg-type]


def test_classification_head_takes_a_generator_or_the_global_state() -> None:
    x = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] > 0).long()
    a = fit_classification_head(x, y, epochs=2, seed=torch.Generator().manual_seed(5))
    b = fit_classification_head(x, y, epochs=2, seed=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a(x), b(x), atol=0.0, rtol=0.0)
    torch.manual_seed(3)
    c = fit_classification_head(x, y, epochs=2, seed=None)
    torch.manual_seed(3)
    d = fit_classification_head(x, y, epochs=2, seed=None)
    torch.testing.assert_close(c(x), d(x), atol=0.0, rtol=0.0)
