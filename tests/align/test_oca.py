"""OCA: orthogonal extension, its losses, prototypes and class retrieval."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from subspaces._checks import (
    DegenerateInputError,
    DeviceMismatchError,
    InputTypeError,
    InvalidOptionError,
    ShapeError,
    TooFewSamplesError,
)
from subspaces.align.oca import (
    OCAHead,
    OCALosses,
    OrthogonalExtension,
    oca_step,
    old_class_prototypes,
)
from subspaces.align.scores import class_retrieval

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _memory import address_space_headroom

MAPS = ["matrix_exp", "cayley", "householder"]


def _train_steps(head: OCAHead, n_steps: int, *, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    backbone = torch.nn.Linear(5, head.width)
    opt = torch.optim.Adam([*backbone.parameters(), *head.parameters()], lr=0.05)
    for _ in range(n_steps):
        x = torch.randn(16, 5, generator=g)
        y = torch.randint(0, head.num_classes, (16,), generator=g)
        oca_step(backbone, head, x, y, opt)


# --- the transformation -------------------------------------------------------------------


@pytest.mark.parametrize("orthogonal_map", MAPS)
def test_weight_stays_orthogonal_after_training(orthogonal_map: str) -> None:
    torch.manual_seed(0)
    head = OCAHead(torch.randn(3, 4), num_classes=5, extra_dim=3, orthogonal_map=orthogonal_map)
    before = head.extension.weight.detach().clone()
    _train_steps(head, 20)
    w = head.extension.weight.detach()
    assert not torch.allclose(w, before)  # it did learn
    # float32 parametrizations: WᵀW = I to a few ulps of 1 over a 7 × 7 product
    torch.testing.assert_close(w.T @ w, torch.eye(7), atol=1e-5, rtol=0)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), extra=st.integers(0, 4))
def test_distances_and_inner_products_are_preserved(seed: int, extra: int) -> None:
    torch.manual_seed(seed)
    ext = OrthogonalExtension(3, extra)
    a, b = torch.randn(6, 3 + extra), torch.randn(6, 3 + extra)
    with torch.no_grad():
        za, zb = ext(a), ext(b)
    # float32 rounding of a (≤ 7)-term product of O(1) numbers
    torch.testing.assert_close((za - zb).norm(dim=1), (a - b).norm(dim=1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(za @ zb.T, a @ b.T, atol=1e-5, rtol=1e-5)


def test_old_and_extra_parts_split_the_coordinates() -> None:
    ext = OrthogonalExtension(3, 2)
    h = torch.arange(10.0).reshape(2, 5)
    assert torch.equal(ext.old_part(h), h[:, :3])
    assert torch.equal(ext.extra_part(h), h[:, 3:])


def test_float64_module_keeps_float64() -> None:
    ext = OrthogonalExtension(2, 1, dtype=torch.float64)
    z = ext(torch.randn(4, 3, dtype=torch.float64))
    assert z.dtype == torch.float64
    w = ext.weight.detach()
    torch.testing.assert_close(w.T @ w, torch.eye(3, dtype=torch.float64), atol=1e-12, rtol=0)


# --- the losses -----------------------------------------------------------------------------


def test_losses_match_the_formula() -> None:
    torch.manual_seed(1)
    protos = torch.randn(3, 4)
    head = OCAHead(
        protos,
        num_classes=5,
        extra_dim=2,
        scale=2.0,
        label_smoothing=0.0,
        keep_prototype_lengths=False,
    )
    h = torch.randn(8, 6)
    y = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
    terms = head.losses(h, y)
    hb = F.normalize(h, dim=1)
    w = head.extension.weight
    new_ce = F.cross_entropy(hb @ w.T @ head.classifier.weight.T, y)
    keep = y < 3
    cos = F.normalize(hb[keep, :4], dim=1) @ F.normalize(protos, dim=1).T
    old_ce = F.cross_entropy(2.0 * cos, y[keep])
    align = (1 - cos[torch.arange(int(keep.sum())), y[keep]]).mean()
    torch.testing.assert_close(terms.new_classification, new_ce)
    torch.testing.assert_close(terms.old_classification, old_ce)
    torch.testing.assert_close(terms.alignment, align)
    torch.testing.assert_close(terms.total, new_ce + 2 * old_ce + align)


def test_kept_prototype_lengths_scale_the_old_logits_only() -> None:
    """Authors' variant: old logits ĥ_old Pᵀ on raw class means; the alignment stays 1 − cos."""
    torch.manual_seed(3)
    protos = torch.randn(3, 4)
    h, y = torch.randn(8, 6), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    head = OCAHead(
        protos, num_classes=3, extra_dim=2, label_smoothing=0.0, keep_prototype_lengths=True
    )
    unit = OCAHead(
        protos, num_classes=3, extra_dim=2, label_smoothing=0.0, keep_prototype_lengths=False
    )
    old = F.normalize(F.normalize(h, dim=1)[:, :4], dim=1)
    torch.testing.assert_close(head.old_logits(h), old @ protos.T)
    terms, unit_terms = head.losses(h, y), unit.losses(h, y)
    torch.testing.assert_close(terms.old_classification, F.cross_entropy(old @ protos.T, y))
    torch.testing.assert_close(terms.alignment, unit_terms.alignment)
    assert not torch.allclose(terms.old_classification, unit_terms.old_classification)


def test_old_terms_vanish_without_prototype_classes_in_batch() -> None:
    head = OCAHead(torch.eye(2), num_classes=4, extra_dim=1)
    terms = head.losses(torch.randn(5, 3), torch.tensor([2, 3, 2, 3, 3]))
    assert float(terms.old_classification) == 0.0
    assert float(terms.alignment) == 0.0
    torch.testing.assert_close(terms.total, terms.new_classification)


def test_prototypes_are_frozen_buffers() -> None:
    head = OCAHead(torch.randn(3, 4), num_classes=3, extra_dim=2)
    assert "prototypes" in dict(head.named_buffers())
    assert all(p is not head.prototypes for p in head.parameters())
    before = head.prototypes.clone()
    _train_steps(head, 5)
    assert torch.equal(head.prototypes, before)


def test_oca_step_lowers_the_loss_and_returns_detached_terms() -> None:
    torch.manual_seed(0)
    head = OCAHead(torch.eye(3), num_classes=3, extra_dim=2)
    backbone = torch.nn.Linear(3, 5)
    opt = torch.optim.Adam([*backbone.parameters(), *head.parameters()], lr=0.05)
    x, y = torch.eye(3).repeat(4, 1), torch.arange(3).repeat(4)
    first = oca_step(backbone, head, x, y, opt)
    for _ in range(60):
        last = oca_step(backbone, head, x, y, opt)
    assert isinstance(last, OCALosses)
    assert not last.total.requires_grad
    assert float(last.total) < 0.5 * float(first.total)


def test_compatible_features_are_unit_rows_of_the_old_width() -> None:
    head = OCAHead(torch.randn(3, 4), num_classes=3, extra_dim=2)
    f = head.compatible_features(torch.randn(7, 6))
    assert f.shape == (7, 4)
    torch.testing.assert_close(f.norm(dim=1), torch.ones(7))


def test_compatible_features_are_the_first_d_of_new_features_renormalized() -> None:
    head = OCAHead(torch.randn(3, 4), num_classes=3, extra_dim=2)
    h = torch.randn(7, 6)
    expected = F.normalize(head.new_features(h)[:, :4], dim=1)
    torch.testing.assert_close(head.compatible_features(h), expected)
    torch.testing.assert_close(head.new_features(h), F.normalize(h, dim=1))


def test_unnormalized_head_reads_the_raw_embedding() -> None:
    torch.manual_seed(2)
    head = OCAHead(torch.randn(3, 4), num_classes=3, extra_dim=2, normalize=False)
    h = 5.0 * torch.randn(6, 6)
    w, c = head.extension.weight, head.classifier.weight
    torch.testing.assert_close(head(h), h @ w.T @ c.T)
    torch.testing.assert_close(head.new_features(h), h)


def test_old_space_compatibility_on_a_constructed_problem() -> None:
    """Old model: class c ↦ prototype p_c + noise in R^4. A new linear model trained with OCA
    retrieves the old gallery by class; the same model trained without the old terms does
    not (its first d coordinates are an unrelated basis)."""
    g = torch.Generator().manual_seed(0)
    d, k, c = 4, 3, 4
    protos = torch.linalg.qr(torch.randn(d, d, generator=g))[0][:c]

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        y = torch.randint(0, c, (n,), generator=g)
        x = F.one_hot(y, c).float() + 0.2 * torch.randn(n, c, generator=g)
        x = torch.cat([x, torch.randn(n, 4, generator=g)], dim=1)  # 4 nuisance inputs
        old = protos[y] + 0.2 * torch.randn(n, d, generator=g)
        return x, y, old

    x_tr, y_tr, old_tr = sample(256)
    x_te, y_te, old_te = sample(200)
    prototypes = old_class_prototypes(old_tr, y_tr)

    def fit(old_weight: float, alignment_weight: float) -> float:
        torch.manual_seed(0)
        backbone = torch.nn.Linear(8, d + k)
        head = OCAHead(
            prototypes,
            num_classes=c,
            extra_dim=k,
            old_weight=old_weight,
            alignment_weight=alignment_weight,
        )
        opt = torch.optim.Adam([*backbone.parameters(), *head.parameters()], lr=0.05)
        for _ in range(80):
            oca_step(backbone, head, x_tr, y_tr, opt)
        with torch.no_grad():
            query = head.compatible_features(backbone(x_te))
        return float(class_retrieval(query, old_te, y_te, y_te).top_k[1])

    old_old = float(class_retrieval(old_te, old_te, y_te, y_te, exclude_self=True).top_k[1])
    compatible, independent = fit(2.0, 1.0), fit(0.0, 0.0)
    assert compatible >= old_old - 0.02  # deterministic seeds; values near 1.0
    assert compatible > 0.95
    assert independent < 0.6


# --- prototypes -----------------------------------------------------------------------------


def test_prototypes_are_normalized_class_means_of_unit_features() -> None:
    f = np.array([[2.0, 0.0], [0.0, 3.0], [0.0, -1.0], [1.0, 1.0]])
    y = np.array([0, 0, 1, 1])
    p = old_class_prototypes(f, y, normalize=False)
    expected0 = torch.tensor([0.5, 0.5], dtype=torch.float64)
    expected1 = torch.tensor([0.5**1.5, (0.5**0.5 - 1) / 2], dtype=torch.float64)
    torch.testing.assert_close(p, torch.stack([expected0, expected1]))
    pn = old_class_prototypes(f, y, normalize=True)
    torch.testing.assert_close(pn.norm(dim=1), torch.ones(2, dtype=torch.float64))


def test_prototypes_missing_class_raises() -> None:
    with pytest.raises(
        TooFewSamplesError, match=r"labels imply 3 classes .* only 2 of them .* \(empty: \[1\]\)"
    ):
        old_class_prototypes(torch.randn(4, 2), torch.tensor([0, 2, 0, 2]))


@pytest.mark.parametrize("label", [10**9, 2**62], ids=["1e9", "2**62"])
def test_prototypes_stray_label_is_refused_before_anything_is_sized_by_it(label: int) -> None:
    y = torch.arange(300) % 3
    y[5] = label
    with address_space_headroom(), pytest.raises(TooFewSamplesError, match=r"only 4 of them"):
        old_class_prototypes(torch.randn(300, 16), y)


def test_prototypes_num_classes_beyond_the_samples_is_refused_before_allocating() -> None:
    y = torch.arange(300) % 3
    with (
        address_space_headroom(),
        pytest.raises(
            TooFewSamplesError, match=r"imply 1000000000000 classes \(num_classes = 1000000000000\)"
        ),
    ):
        old_class_prototypes(torch.randn(300, 16), y, num_classes=10**12)


def test_prototypes_label_above_num_classes_raises() -> None:
    with pytest.raises(
        ShapeError, match=r"labels must lie in \[0, 2\) .* 1 entries do not \(min 0, max 3\)"
    ):
        old_class_prototypes(torch.randn(4, 2), torch.tensor([0, 1, 3, 1]), num_classes=2)


def test_prototypes_zero_feature_raises() -> None:
    f = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    with pytest.raises(DegenerateInputError, match="1 all-zero rows"):
        old_class_prototypes(f, torch.tensor([0, 0]))


def test_prototypes_opposite_features_raise() -> None:
    f = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    with pytest.raises(DegenerateInputError, match=r"mean old feature of classes \[0\] is zero"):
        old_class_prototypes(f, torch.tensor([0, 0]))


# --- bad input ------------------------------------------------------------------------------


def test_negative_extra_dim_raises() -> None:
    with pytest.raises(InvalidOptionError, match="extra_dim must be at least 0, got -1"):
        OrthogonalExtension(4, -1)


def test_zero_old_dim_raises() -> None:
    with pytest.raises(InvalidOptionError, match="old_dim must be at least 1, got 0"):
        OrthogonalExtension(0, 2)


def test_unknown_orthogonal_map_raises() -> None:
    with pytest.raises(InvalidOptionError, match="orthogonal_map must be one of"):
        OrthogonalExtension(2, 2, orthogonal_map="qr")


@pytest.mark.parametrize("width", [4, 9], ids=["narrow", "wide"])
def test_wrong_feature_width_raises(width: int) -> None:
    head = OCAHead(torch.randn(3, 4), num_classes=3, extra_dim=2)
    with pytest.raises(ShapeError, match=rf"h must have 6 features .* got shape \(5, {width}\)"):
        head.losses(torch.randn(5, width), torch.zeros(5, dtype=torch.long))


def test_one_dimensional_features_raise() -> None:
    head = OCAHead(torch.randn(3, 4), num_classes=3, extra_dim=2)
    with pytest.raises(ShapeError, match="h must be a 2-D"):
        head(torch.randn(6))


def test_labels_out_of_range_raise() -> None:
    head = OCAHead(torch.randn(3, 4), num_classes=3, extra_dim=2)
    with pytest.raises(ShapeError, match=r"labels must lie in \[0, 3\) .* \(min 0, max 5\)"):
        head.losses(torch.randn(2, 6), torch.tensor([0, 5]))


def test_label_count_mismatch_raises() -> None:
    head = OCAHead(torch.randn(3, 4), num_classes=3, extra_dim=2)
    with pytest.raises(ShapeError, match="labels has 3 entries but the representation has 2"):
        head.losses(torch.randn(2, 6), torch.tensor([0, 1, 2]))


def test_head_num_classes_that_cannot_fit_is_refused() -> None:
    with (
        address_space_headroom(),
        pytest.raises(
            InvalidOptionError, match=r"num_classes=1000000000000 needs the new classifier"
        ),
    ):
        OCAHead(torch.randn(3, 4), num_classes=10**12, extra_dim=2)


def test_extension_extra_dim_that_cannot_fit_is_refused() -> None:
    with (
        address_space_headroom(),
        pytest.raises(
            InvalidOptionError, match=r"extra_dim=1000000000000 needs the orthogonal map"
        ),
    ):
        OrthogonalExtension(4, 10**12)


def test_zero_prototype_raises() -> None:
    with pytest.raises(DegenerateInputError, match=r"prototypes rows \[1\] are zero vectors"):
        OCAHead(torch.tensor([[1.0, 0.0], [0.0, 0.0]]), num_classes=2, extra_dim=1)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("scale", 0.0, r"scale must lie in \(0"),
        ("label_smoothing", 1.0, r"label_smoothing must lie in \[0, 1\), got 1.0"),
        ("old_weight", -1.0, r"old_weight must lie in \[0"),
    ],
    ids=["scale", "label_smoothing", "old_weight"],
)
def test_bad_head_options_raise(option: str, value: float, message: str) -> None:
    with pytest.raises(InvalidOptionError, match=message):
        OCAHead(torch.randn(2, 3), num_classes=2, extra_dim=1, **{option: value})


def test_features_of_another_dtype_raise() -> None:
    # float64 old features give float64 prototypes and a float64 head: a float32 model's
    # embedding must get a clear error, not torch's matmul dtype error
    head = OCAHead(torch.randn(3, 4, dtype=torch.float64), num_classes=3, extra_dim=2)
    with pytest.raises(
        InputTypeError,
        match=r"h has dtype torch\.float32 but the module's parameters are torch\.float64",
    ):
        head.losses(torch.randn(5, 6), torch.zeros(5, dtype=torch.long))
    with pytest.raises(InputTypeError, match=r"h has dtype torch\.float32"):
        head.extension(torch.randn(5, 6))
    # retrieval features only slice and normalize: any float dtype is fine
    assert head.compatible_features(torch.randn(5, 6)).dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a second device")
def test_features_on_another_device_raise() -> None:
    head = OCAHead(torch.randn(3, 4), num_classes=3, extra_dim=2)
    with pytest.raises(DeviceMismatchError, match="h is on cuda:0 but the module's parameters"):
        head(torch.randn(2, 6, device="cuda"))


def test_features_without_data_raise() -> None:
    # a meta tensor has no values to compute on (issue 9, item 8): the project's error, first
    head = OCAHead(torch.randn(3, 4), num_classes=3, extra_dim=2)
    with pytest.raises(InputTypeError, match="h is a tensor on the meta device"):
        head(torch.empty(2, 6, device="meta"))


@pytest.mark.parametrize("scale", [1e30, 1e-30], ids=["1e30", "1e-30"])
def test_prototypes_at_extreme_float32_scales_keep_unit_directions(scale: float) -> None:
    # issue 9: float32 squares of 1e30 overflowed the prototype lengths, so the unit
    # prototypes became 0 and the old-class loss NaN
    p = torch.randn(3, 4, generator=torch.Generator().manual_seed(0)) * scale
    head = OCAHead(p, num_classes=3, extra_dim=2)
    assert bool(torch.isfinite(head.prototype_lengths).all())
    torch.testing.assert_close(head.prototypes.norm(dim=1), torch.ones(3))
