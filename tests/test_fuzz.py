"""Fuzz: bad values of every kind against every public callable of the families.

Each public callable of ``similarity``, ``geometry``, ``align``, ``linalg`` and ``data`` (their
``__all__``, with the public methods of their classes) has an entry in :data:`REGISTRY`: a
valid call on tiny inputs (12 × 4). Every case changes ONE argument of that call to a bad
value of its kind (data: wrong ndim, empty, NaN, inf, meta device, sparse, complex, object,
structured, masked and string arrays, table-like objects, strings, lists, mismatched n,
extreme scales...; options: 0, -1, 2.5, True, None, 10**12, "3", NaN, inf, 1e-300, 1e300...)
and asserts that the outcome is a finite value or a :class:`~subspaces.SubspacesError`,
never a raw exception from inside nor NaN or inf returned silently. Values that are never
valid (a string for a number, 1 for a flag, NaN data...) must raise, and an option error
must name the option. Case ids read ``function-argument-value``.

Kinds of options are read from their annotations (``int``, ``float``, ``bool``,
``Literal[...]``...), so a new option is fuzzed without a new line here;
:func:`test_registry_covers_every_public_callable` fails for a public callable or method
without an entry, and :func:`test_every_argument_has_a_kind` for an argument of unknown kind.
"""

from __future__ import annotations

import functools
import inspect
import math
import typing
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import subspaces.align as align
import subspaces.data as data
import subspaces.geometry as geometry
import subspaces.linalg as linalg
import subspaces.similarity as similarity
from subspaces import SubspacesError
from subspaces._checks import InputTypeError, InvalidOptionError

PACKAGES = {
    "similarity": similarity,
    "geometry": geometry,
    "align": align,
    "linalg": linalg,
    "data": data,
}

# --------------------------------------------------------------------------- tiny valid inputs

_GEN = torch.Generator().manual_seed(0)
X = torch.randn(12, 4, generator=_GEN)
Y = X @ torch.randn(4, 3, generator=_GEN) + 0.1 * torch.randn(12, 3, generator=_GEN)
LABELS = torch.arange(12) % 3
H6 = torch.randn(12, 6, generator=_GEN)
CLASSIFIER = torch.randn(3, 4, generator=_GEN)
BASIS_A = torch.randn(6, 2, generator=_GEN)
BASIS_B = torch.randn(6, 3, generator=_GEN)
MOMENTS = linalg.paired_moments(X.double(), Y.double())
NEIGHBORS_X = similarity.neighbor_lists(X, k=3)
NEIGHBORS_Y = similarity.neighbor_lists(Y, k=3)
ANN = linalg.ANNOptions(ef_search=32)  # neighbors=ANN: the approximate search, options given


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(1)


def _net(d_in: int = 4, d_out: int = 3) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(d_in, 5), nn.ReLU(), nn.Linear(5, d_out))


class UserModelError(Exception):
    """Raised by the user's own network (:class:`UserNet`) on input it cannot take."""


class UserNet(nn.Module):
    """A user's network: what it raises on bad input is the user's error, not ours."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: Tensor) -> Tensor:
        try:
            return self.inner(x)
        except Exception as exc:
            raise UserModelError(f"the user's network refused the input: {exc}") from exc


def _stitched() -> align.StitchedModel:
    torch.manual_seed(0)
    front, back = UserNet(nn.Linear(4, 4)), UserNet(nn.Linear(3, 3))
    return align.StitchedModel(front, align.StitchingLayer(4, 3), back)


# --------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Entry:
    """A valid call of ``target`` (a public function, class or method) on tiny inputs.

    ``call(**args)`` runs it (for a class or a method: building the object, using it and
    returning what a user would look at); ``args`` are the arguments that vary, by name;
    ``kinds`` the kinds of the arguments whose annotation does not say it;
    ``non_finite_fields`` the fields of the result documented to hold NaN (an empty bin...);
    ``propagates_nan`` marks layers of a training loop, which (as any torch layer, and
    without a host sync per step) give NaN for NaN or infinite input; ``user_inputs`` the
    arguments passed as they are to the user's own network, which decides what it takes.
    """

    target: Callable[..., Any]
    args: dict[str, Any]
    call: Callable[..., Any] | None = None
    kinds: dict[str, str] = field(default_factory=dict)
    non_finite_fields: tuple[str, ...] = ()
    propagates_nan: bool = False
    user_inputs: tuple[str, ...] = ()

    def run(self, **args: Any) -> Any:
        return (self.call or self.target)(**args)


def _method(
    make: Callable[[], Any], name: str, then: Callable[[Any, Any], Any] | None = None
) -> Callable[..., Any]:
    """Call method ``name`` of a fresh ``make()`` with the arguments given (then ``then``)."""

    def call(**args: Any) -> Any:
        obj = make()
        out = getattr(obj, name)(**args)
        return then(obj, out) if then else out

    return call


def _fitted(cls: type, *data: Any, **init: Any) -> Callable[[], Any]:
    return lambda: cls(**init).fit(*data)


PAIR = {"x": X, "y": Y}
ONE = {"x": X}
SPECTRUM = geometry.covariance_spectrum(X)

STREAMS: dict[Any, tuple[dict[str, Any], dict[str, Any]]] = {
    # streaming class: (valid constructor arguments, the data of one update)
    similarity.CCA: ({}, PAIR),
    similarity.PWCCA: ({}, PAIR),
    similarity.SVCCA: ({}, PAIR),
    similarity.Concentricity: ({}, ONE),
    similarity.ConcentricityDifference: ({}, PAIR),
    similarity.LinearCKA: ({}, PAIR),
    similarity.LinearRegressionR2: ({}, PAIR),
    similarity.Magnitude: ({}, ONE),
    similarity.MagnitudeDifference: ({}, PAIR),
    similarity.MinibatchCKA: ({}, PAIR),
    similarity.PermutationProcrustesDistance: ({}, {"x": X, "y": X[:, [1, 0, 3, 2]]}),
    similarity.ProcrustesDistance: ({}, PAIR),
    similarity.RSMNormDifference: ({}, PAIR),
    similarity.ShapeMetric: ({}, PAIR),
    geometry.CodingRate: ({"eps": 0.5}, {"x": X}),
    geometry.CodingRateReduction: ({"num_classes": 3, "eps": 0.5}, {"x": X, "labels": LABELS}),
    geometry.CovarianceSpectrum: ({}, ONE),
    geometry.NeuralCollapse: (
        {"num_classes": 3, "num_features": 4},
        {"x": X, "labels": LABELS},
    ),
    align.UnitCorrelation: ({}, PAIR),
}


def _update_compute(cls: type, init: dict[str, Any], batch: dict[str, Any]) -> Any:
    metric = cls(**init)
    metric.update(**batch)
    return metric.compute()


def _stream_entries() -> dict[str, Entry]:
    """Each streaming class: its constructor's options, and its update's data."""
    out = {}
    for cls, (init, batch) in STREAMS.items():
        out[cls.__name__] = Entry(
            cls, dict(init), call=lambda c=cls, b=batch, **i: _update_compute(c, i, b)
        )
        out[f"{cls.__name__}.update"] = Entry(
            cls.update, dict(batch), call=lambda c=cls, i=init, **b: _update_compute(c, i, b)
        )
    return out


ESTIMATORS: dict[type, tuple[dict[str, Any], dict[str, Any]]] = {
    # scikit-learn-style class: (valid constructor options, fit data)
    geometry.GRIDE: ({}, ONE),
    geometry.MLE: ({"k": 5}, ONE),
    geometry.CorrelationDimension: ({"k": (2, 5)}, ONE),
    geometry.LocalPCA: ({"k": 6}, ONE),
    geometry.TwoNN: ({}, ONE),
    align.LinearTranslator: ({}, PAIR),
    align.Procrustes: (
        {},
        {"x": X, "y": X @ torch.linalg.qr(torch.randn(4, 4, generator=_GEN))[0]},
    ),
    align.ProjectedAlignment: ({"n_components": 2}, PAIR),
    align.SubspaceProjection: ({"n_components": 2}, PAIR),
}


def _estimator_entries() -> dict[str, Entry]:
    """Each estimator: its constructor's options (then fit), and the data of each fitting
    method; for the translators also transform and score on the fitted estimator."""
    out = {}
    for cls, (init, data_args) in ESTIMATORS.items():
        out[cls.__name__] = Entry(
            cls, dict(init), call=lambda c=cls, d=data_args, **o: c(**o).fit(**d)
        )
        for name in ("fit", "partial_fit", "fit_transform"):
            if hasattr(cls, name):
                out[f"{cls.__name__}.{name}"] = Entry(
                    getattr(cls, name),
                    dict(data_args),
                    call=_method(functools.partial(cls, **init), name),
                )
    for cls in (geometry.GRIDE, geometry.MLE, geometry.LocalPCA, geometry.TwoNN):
        init, data_args = ESTIMATORS[cls]  # the approximate neighbor search (faiss)
        init = {**init, "neighbors": ANN}
        out[f"{cls.__name__}/approximate"] = Entry(
            cls, init, call=lambda c=cls, d=data_args, **o: c(**o).fit(**d)
        )
        out[f"{cls.__name__}.fit/approximate"] = Entry(
            cls.fit, dict(data_args), call=_method(functools.partial(cls, **init), "fit")
        )
    for cls in (align.LinearTranslator, align.Procrustes, align.ProjectedAlignment):
        init, data_args = ESTIMATORS[cls]
        fitted = _fitted(cls, *data_args.values(), **init)
        out[f"{cls.__name__}.transform"] = Entry(
            cls.transform, ONE, call=_method(fitted, "transform")
        )
        out[f"{cls.__name__}.score"] = Entry(
            cls.score, dict(data_args), call=_method(fitted, "score")
        )
    projected = _fitted(align.ProjectedAlignment, X, Y, n_components=2)
    out["ProjectedAlignment.transform_y"] = Entry(
        align.ProjectedAlignment.transform_y, {"y": Y}, call=_method(projected, "transform_y")
    )
    sub = _fitted(align.SubspaceProjection, X, Y, n_components=2)
    for name, args in (("transform", PAIR), ("transform_x", ONE), ("transform_y", {"y": Y})):
        out[f"SubspaceProjection.{name}"] = Entry(
            getattr(align.SubspaceProjection, name), dict(args), call=_method(sub, name)
        )
    return out


def _layer(
    target: Callable[..., Any],
    args: dict[str, Any],
    call: Callable[..., Any],
    user_inputs: tuple[str, ...] = (),
) -> Entry:
    """A layer of a training loop: NaN input may give NaN output (no host sync per step)."""
    return Entry(target, args, call=call, propagates_nan=True, user_inputs=user_inputs)


def _module_entries() -> dict[str, Entry]:
    prototypes = align.old_class_prototypes(X, LABELS, normalize=True)

    def head() -> align.OCAHead:
        return align.OCAHead(prototypes, num_classes=4, extra_dim=2)

    oca, ext, stitch = align.OCAHead, align.OrthogonalExtension, align.StitchingLayer
    return {
        "OCAHead": _layer(
            oca,
            {"prototypes": prototypes, "num_classes": 4, "extra_dim": 2},
            call=lambda **a: oca(**a).losses(torch.randn(12, 4 + a["extra_dim"]), LABELS),
        ),
        "OCAHead.losses": _layer(oca.losses, {"h": H6, "labels": LABELS}, _method(head, "losses")),
        **{
            f"OCAHead.{name}": _layer(getattr(oca, name), {"h": H6}, _method(head, name))
            for name in ("forward", "compatible_features", "new_features", "old_logits")
        },
        "OrthogonalExtension": _layer(
            ext,
            {"old_dim": 4, "extra_dim": 2},
            call=lambda **a: ext(**a)(torch.randn(12, a["old_dim"] + a["extra_dim"])),
        ),
        **{
            f"OrthogonalExtension.{name}": _layer(
                getattr(ext, name), {"h": H6}, _method(lambda: ext(4, 2), name)
            )
            for name in ("forward", "old_part", "extra_part")
        },
        "RelativeProjection": Entry(
            align.RelativeProjection,
            {"anchors": X[:4]},
            call=lambda **a: align.RelativeProjection(**a)(X),
        ),
        "RelativeProjection.from_encoder": Entry(
            align.RelativeProjection.from_encoder,
            {"encoder": UserNet(nn.Linear(4, 4)), "anchor_inputs": X[:4]},
            call=lambda **a: align.RelativeProjection.from_encoder(**a)(X),
            user_inputs=("anchor_inputs",),
        ),
        "RelativeProjection.forward": Entry(
            align.RelativeProjection.forward,
            {"z": X},
            call=_method(lambda: align.RelativeProjection(X[:4]), "forward"),
        ),
        "StitchingLayer": _layer(
            stitch,
            {"in_features": 4, "out_features": 3},
            call=lambda **a: stitch(**a)(torch.randn(12, a["in_features"])),
        ),
        "StitchingLayer.forward": _layer(
            stitch.forward, {"h": X}, _method(lambda: stitch(4, 3), "forward")
        ),
        "StitchingLayer.fit_least_squares": Entry(
            stitch.fit_least_squares, PAIR, call=_method(lambda: stitch(4, 3), "fit_least_squares")
        ),
        "StitchingLayer.from_least_squares": Entry(stitch.from_least_squares, PAIR),
        "StitchingLayer.reset_parameters": Entry(
            stitch.reset_parameters,
            {"seed": _gen()},
            call=_method(lambda: stitch(4, 3), "reset_parameters"),
        ),
        "StitchedModel": _layer(
            align.StitchedModel,
            {
                "front": UserNet(nn.Linear(4, 4)),
                "stitch": stitch(4, 3),
                "back": UserNet(nn.Linear(3, 3)),
            },
            call=lambda **a: align.StitchedModel(**a)(X),
        ),
        **{
            f"StitchedModel.{name}": _layer(
                getattr(align.StitchedModel, name),
                {"x": X} if name != "head" else {"h": X},
                _method(_stitched, name),
                user_inputs=("x",),
            )
            for name in ("forward", "features", "head")
        },
    }


def _result_method_entries() -> dict[str, Entry]:
    procrustes = align.procrustes_map(X, X)
    linear = align.linear_map(X, Y)
    bases = align.subspace_projection(X, Y, n_components=2)
    return {
        **{
            f"Spectrum.{name}": Entry(
                getattr(geometry.Spectrum, name), {}, call=_method(lambda: SPECTRUM, name)
            )
            for name in (
                "effective_rank",
                "numerical_rank",
                "spectral_decay",
                "von_neumann_entropy",
            )
        },
        "ProcrustesMap.apply": Entry(align.ProcrustesMap.apply, ONE, call=procrustes.apply),
        "LinearMap.apply": Entry(align.LinearMap.apply, ONE, call=linear.apply),
        "SubspaceBases.project_x": Entry(align.SubspaceBases.project_x, ONE, call=bases.project_x),
        "SubspaceBases.project_y": Entry(
            align.SubspaceBases.project_y, {"y": Y}, call=bases.project_y
        ),
        "NeuralCollapse.update_nc4": Entry(
            geometry.NeuralCollapse.update_nc4,
            {"x": X},
            call=_method(_collapse_with_classifier, "update_nc4", then=lambda m, _: m.compute()),
        ),
    }


def _collapse_with_classifier() -> geometry.NeuralCollapse:
    metric = geometry.NeuralCollapse(num_classes=3, classifier=CLASSIFIER)
    metric.update(X, LABELS)
    return metric


def _function_entries() -> dict[str, Entry]:
    s, g, a, lin, d = similarity, geometry, align, linalg, data
    joint = a.joint_correlation(X, Y)
    correlation = a.unit_correlation(X, Y)
    rdm_x, rdm_y = s.rdm(X), s.rdm(Y)
    relu = nn.Linear(4, 6)
    entries = {
        # similarity: paired measures
        **{
            name: Entry(getattr(s, name), dict(PAIR))
            for name in (
                "angular_procrustes_distance",
                "cca_correlations",
                "cca_r2",
                "concentricity_difference",
                "linear_cka",
                "linear_regression_r2",
                "linear_regression_r2_both_ways",
                "magnitude_difference",
                "mean_cca",
                "procrustes_distance",
                "pwcca",
                "rbf_cka",
                "rsa",
                "rsm_norm_difference",
                "shape_metric",
                "svcca",
                "uniformity_difference",
            )
        },
        "permutation_procrustes_distance": Entry(
            s.permutation_procrustes_distance, {"x": X, "y": X[:, [1, 0, 3, 2]]}
        ),
        **{
            name: Entry(getattr(s, name), {**PAIR, "k": 3})
            for name in (
                "cknna",
                "knn_jaccard",
                "mutual_knn",
                "rank_similarity",
                "second_order_cosine_similarity",
            )
        },
        "eigenspace_overlap": Entry(
            s.eigenspace_overlap, {"x": X, "y": X + 0.1, "n_components": 2}
        ),
        "minibatch_cka": Entry(s.minibatch_cka, {**PAIR, "batch_size": 6}),
        "relative_retrieval": Entry(s.relative_retrieval, {**PAIR, "n_anchors": 4, "seed": _gen()}),
        "relative_similarity": Entry(
            s.relative_similarity, {**PAIR, "n_anchors": 4, "seed": _gen()}
        ),
        "pairwise": Entry(s.pairwise, {"xs": [X, X[:, :2]], "ys": [Y]}),
        # similarity: one representation
        **{
            name: Entry(getattr(s, name), dict(ONE))
            for name in ("concentricity", "magnitude", "rdm", "uniformity")
        },
        "neighbor_lists": Entry(s.neighbor_lists, {"x": X, "k": 3}),
        "select_anchors": Entry(s.select_anchors, {"x": X, "n_anchors": 4, "seed": _gen()}),
        "subspace_of": Entry(s.subspace_of, {"x": X, "n_components": 2}),
        "relative_representation": Entry(s.relative_representation, {"x": X, "anchors": X[:4]}),
        # similarity: from precomputed statistics
        **{
            name: Entry(getattr(s, name), {"m": MOMENTS})
            for name in (
                "cca_correlations_from_moments",
                "cca_r2_from_moments",
                "linear_cka_from_moments",
                "linear_regression_r2_from_moments",
                "mean_cca_from_moments",
                "pwcca_from_moments",
                "shape_metric_from_moments",
                "svcca_from_moments",
                "procrustes_distance_from_moments",
            )
        },
        "permutation_procrustes_distance_from_moments": Entry(
            s.permutation_procrustes_distance_from_moments,
            {"m": lin.paired_moments(X.double(), X[:, [1, 0, 3, 2]].double())},
        ),
        **{
            name: Entry(getattr(s, name), {"ix": NEIGHBORS_X, "iy": NEIGHBORS_Y})
            for name in (
                "knn_jaccard_from_neighbors",
                "mutual_knn_from_neighbors",
                "rank_similarity_from_neighbors",
            )
        },
        "compare_rdms": Entry(s.compare_rdms, {"rdm_x": rdm_x, "rdm_y": rdm_y}),
        # similarity: subspaces
        **{
            name: Entry(getattr(s, name), {"a": BASIS_A, "b": BASIS_B})
            for name in ("grassmann_distance", "principal_angles", "subspace_overlap")
        },
        "register_measure": Entry(s.register_measure, {"measure": s.MEASURES["linear_cka"]}),
        # geometry
        **{
            name: Entry(getattr(g, name), dict(ONE))
            for name in (
                "covariance_spectrum",
                "effective_rank",
                "gride",
                "numerical_rank",
                "participation_ratio",
                "spectral_decay",
                "stable_rank",
                "twonn",
                "von_neumann_entropy",
            )
        },
        "gride_multiscale": Entry(g.gride_multiscale, dict(ONE)),
        "correlation_dimension": Entry(g.correlation_dimension, {"x": X, "k": (2, 5)}),
        "id_scale_sweep": Entry(g.id_scale_sweep, {"x": X, "ks": (3, 5), "seed": _gen()}),
        "local_pca_id": Entry(g.local_pca_id, {"x": X, "k": 6}),
        "mle_id": Entry(g.mle_id, {"x": X, "k": 5}),
        "coding_rate": Entry(g.coding_rate, {"x": X, "eps": 0.5}),
        "class_coding_rate": Entry(g.class_coding_rate, {"x": X, "labels": LABELS, "eps": 0.5}),
        "coding_rate_reduction": Entry(
            g.coding_rate_reduction, {"x": X, "labels": LABELS, "eps": 0.5}
        ),
        "classifier_geometry": Entry(
            g.classifier_geometry,
            {"x": X, "labels": LABELS, "classifier": CLASSIFIER, "bias": torch.zeros(3)},
        ),
        "compare_classifier_geometry": Entry(
            g.compare_classifier_geometry,
            {
                "a": g.classifier_geometry(X, LABELS, CLASSIFIER),
                "b": g.classifier_geometry(X, LABELS, -CLASSIFIER),
            },
        ),
        "mixup_geometry": Entry(
            g.mixup_geometry,
            {
                "x": X,
                "labels_a": LABELS,
                "labels_b": LABELS.roll(1),
                "lam": torch.linspace(0, 1, 12),
                "classifier": CLASSIFIER,
                "bias": torch.zeros(3),
                "bins": 4,
            },
            non_finite_fields=("result.same.", "result.different."),  # a bin without samples
        ),
        "neural_collapse": Entry(
            g.neural_collapse,
            {"x": X, "labels": LABELS, "classifier": CLASSIFIER, "bias": torch.zeros(3)},
        ),
        "orthogonal_frame_distances": Entry(
            g.orthogonal_frame_distances,
            {"x": X, "labels": LABELS, "classifier": CLASSIFIER},
        ),
        "orthogonal_frame_scales": Entry(
            g.orthogonal_frame_scales, {"class_counts": torch.tensor([4, 4, 4])}
        ),
        "spectrum_from_moments": Entry(
            g.spectrum_from_moments, {"m": lin.paired_moments(X.double())}
        ),
        # align
        **{
            name: Entry(getattr(a, name), dict(PAIR))
            for name in (
                "joint_correlation",
                "linear_map",
                "match_units",
                "procrustes_map",
                "unit_correlation",
            )
        },
        "unit_matching": Entry(
            a.unit_matching,
            dict(PAIR),
            non_finite_fields=("result.correlations",),  # as below
        ),
        "matched_correlation_curves": Entry(
            a.matched_correlation_curves,
            {**PAIR, "n_random": 2, "seed": _gen()},
            non_finite_fields=("result.one_to_one",),  # units left unmatched when d1 > d2
        ),
        "sparse_prediction": Entry(a.sparse_prediction, {**PAIR, "alphas": [0.1, 0.01]}),
        "spectral_unit_clusters": Entry(
            a.spectral_unit_clusters, {**PAIR, "n_clusters": 2, "n_init": 2, "seed": _gen()}
        ),
        "subspace_projection": Entry(a.subspace_projection, {**PAIR, "n_components": 2}),
        **{
            name: Entry(getattr(a, name), {"m": MOMENTS})
            for name in (
                "joint_correlation_from_moments",
                "linear_map_from_moments",
                "procrustes_map_from_moments",
                "unit_correlation_from_moments",
            )
        },
        "sparse_prediction_from_moments": Entry(
            a.sparse_prediction_from_moments, {"m": MOMENTS, "alphas": [0.1]}
        ),
        "subspace_projection_from_moments": Entry(
            a.subspace_projection_from_moments, {"m": MOMENTS, "n_components": 2}
        ),
        "project_moments": Entry(
            a.project_moments, {"m": MOMENTS, "bases": a.subspace_projection(X, Y, n_components=2)}
        ),
        "matched_correlation_curves_from_correlation": Entry(
            a.matched_correlation_curves_from_correlation,
            {"correlation": correlation, "n_random": 2, "seed": _gen()},
            non_finite_fields=("result.one_to_one",),
        ),
        "unit_matching_from_correlation": Entry(
            a.unit_matching_from_correlation,
            {"correlation": correlation},
            non_finite_fields=("result.correlations",),  # units left unmatched when d1 > d2
        ),
        "spectral_unit_clusters_from_correlation": Entry(
            a.spectral_unit_clusters_from_correlation,
            {"joint": joint, "n_clusters": 2, "n_init": 2, "seed": _gen()},
        ),
        "translation_scores": Entry(a.translation_scores, {"y_pred": Y + 0.01, "y_true": Y}),
        "class_retrieval": Entry(
            a.class_retrieval,
            {"query": X, "gallery": X, "query_labels": LABELS, "gallery_labels": LABELS},
        ),
        "relative_projection": Entry(a.relative_projection, {"x": X, "anchors": X[:4]}),
        "old_class_prototypes": Entry(
            a.old_class_prototypes, {"old_features": X, "labels": LABELS}
        ),
        "fit_classification_head": Entry(
            a.fit_classification_head,
            {"features": X, "labels": LABELS, "epochs": 2, "batch_size": 6},
        ),
        "fit_stitch": Entry(
            a.fit_stitch,
            {"model": _stitched(), "x": X, "targets": LABELS, "epochs": 2, "batch_size": 6},
            call=lambda **args: a.fit_stitch(**{**args, "model": _fresh(args["model"])}),
        ),
        "stitching_score": Entry(
            a.stitching_score,
            {"model": _stitched(), "x": X, "labels": LABELS, "reference": UserNet(_net(4, 3))},
        ),
        "oca_step": Entry(
            a.oca_step,
            {
                "model": UserNet(nn.Linear(4, 6)),
                "head": _FRESH,
                "x": X,
                "labels": LABELS,
                "optimizer": _FRESH,
            },
            call=_oca_step,
            propagates_nan=True,
            user_inputs=("x",),
        ),
        "equivalence_distances": Entry(
            a.equivalence_distances, {"weight": relu.weight.detach(), "bias": relu.bias.detach()}
        ),
        "merge_units": Entry(
            a.merge_units,
            {
                "weight": relu.weight.detach(),
                "bias": relu.bias.detach(),
                "next_weight": torch.randn(3, 6, generator=_GEN),
            },
        ),
        "merge_layers": Entry(a.merge_layers, {"layers": [nn.Linear(4, 6), nn.Linear(6, 3)]}),
        "merge_sequential": Entry(a.merge_sequential, {"model": _net()}),
        "feature_complexity": Entry(a.feature_complexity, {"model": _net()}),
        # linalg
        "paired_moments": Entry(lin.paired_moments, PAIR),
        "accumulate_moments": Entry(
            lin.accumulate_moments,
            {"state": lin.MomentSums(), **PAIR},
            call=lambda **args: _moments_after(lin.accumulate_moments, args),
        ),
        "center_moments": Entry(lin.center_moments, {"state": _sums(X, Y)}),
        "merge_moments": Entry(
            lin.merge_moments,
            {"state": _sums(X, Y), "other": _sums(X, Y)},
            call=lambda **args: _moments_after(lin.merge_moments, args),
        ),
        "rebase_moments": Entry(
            lin.rebase_moments,
            {"state": _sums(X, Y), "shift_x": torch.ones(4, dtype=torch.float64), "shift_y": None},
            call=lambda **args: _moments_after(lin.rebase_moments, args),
        ),
        # linalg: floor-1 building blocks
        "paired_moments64": Entry(lin.paired_moments64, PAIR),
        "check_moments": Entry(
            lin.check_moments, {"m": MOMENTS, "what": "CKA"}, kinds={"what": "message"}
        ),
        "require_moments": Entry(
            lin.require_moments, {"m": MOMENTS, "measure": "CCA"}, kinds={"measure": "message"}
        ),
        "check_variance": Entry(
            lin.check_variance,
            {
                "c": MOMENTS.cxx,
                "mean": MOMENTS.mean_x,
                "n": MOMENTS.n,
                "name": "x",
                "measure": "CKA",
            },
            kinds={"name": "message", "measure": "message"},
        ),
        "check_ridge": Entry(lin.check_ridge, {"ridge": 0.1}, kinds={"ridge": "real"}),
        "rows_within_budget": Entry(
            lin.rows_within_budget, {"chunk_size": 64, "bytes_per_row": 1024}
        ),
        "ridge_value": Entry(lin.ridge_value, {"c": MOMENTS.cxx, "ridge": 0.1}),
        "ridge_eigh": Entry(lin.ridge_eigh, {"c": MOMENTS.cxx, "ridge": 0.1}),
        "lstsq_from_moments": Entry(
            lin.lstsq_from_moments, {"c": MOMENTS.cxx, "cross": MOMENTS.cxy}
        ),
        "RidgeEigh.solve": Entry(
            lin.RidgeEigh.solve, {"rhs": MOMENTS.cxy}, call=lin.ridge_eigh(_cxx(MOMENTS)).solve
        ),
        "normalize_rows": Entry(
            lin.normalize_rows,
            {"x": X},
            kinds={"name": "message", "purpose": "message", "advice": "message"},
        ),
        "kmeans": Entry(lin.kmeans, {"x": X, "k": 3, "seed": 0}),
        "approximate_knn": Entry(lin.approximate_knn, {"x": X, "k": 3}),
        "ANNOptions": Entry(
            lin.ANNOptions,
            {},
            call=lambda **o: lin.approximate_knn(X, 3, options=lin.ANNOptions(**o)),
        ),
        # data
        "benchmark_manifold": Entry(
            d.benchmark_manifold, {"name": "M1_Sphere", "n": 12, "seed": _gen()}
        ),
        "benchmark_manifold_names": Entry(d.benchmark_manifold_names, {}),
        "hyperball": Entry(d.hyperball, {"n": 12, "d": 3, "seed": _gen()}),
        "hypersphere": Entry(d.hypersphere, {"n": 12, "d": 3, "seed": _gen()}),
        "random_isometric_embedding": Entry(
            d.random_isometric_embedding, {"points": X, "ambient_dimension": 6, "seed": _gen()}
        ),
    }
    # the approximate neighbor search of the neighbor-based functions (faiss)
    for name in ("knn_jaccard", "mutual_knn", "rank_similarity"):
        entries[f"{name}/approximate"] = Entry(
            getattr(s, name), {**PAIR, "k": 3, "neighbors": "approximate"}
        )
    for name in ("gride", "twonn", "gride_multiscale"):
        entries[f"{name}/approximate"] = Entry(
            getattr(g, name), {"x": X, "neighbors": "approximate"}
        )
    entries["mle_id/approximate"] = Entry(g.mle_id, {"x": X, "k": 5, "neighbors": "approximate"})
    entries["id_scale_sweep/approximate"] = Entry(
        g.id_scale_sweep, {"x": X, "ks": (3, 5), "seed": _gen(), "neighbors": "approximate"}
    )
    entries["local_pca_id/approximate"] = Entry(
        g.local_pca_id, {"x": X, "k": 6, "neighbors": "approximate"}
    )
    return entries


def _cxx(m: linalg.CenteredMoments) -> Tensor:
    assert m.cxx is not None
    return m.cxx


def _sums(x: Tensor, y: Tensor) -> linalg.MomentSums:
    state = linalg.MomentSums()
    linalg.accumulate_moments(state, x.double(), y.double())
    return state


def _moments_after(fn: Callable[..., Any], args: dict[str, Any]) -> Any:
    """Run an in-place moment update on a copy of the state, then center it."""
    import copy

    args = {k: copy.deepcopy(v) if isinstance(v, linalg.MomentSums) else v for k, v in args.items()}
    fn(**args)
    return linalg.center_moments(args["state"])


def _fresh(model: Any) -> Any:
    import copy

    return copy.deepcopy(model) if isinstance(model, nn.Module) else model


_FRESH = object()  # stands for a fresh OCAHead / optimizer built for each call


def _oca_step(**args: Any) -> Any:
    torch.manual_seed(0)
    args["model"] = _fresh(args["model"])  # the step trains it
    if args["head"] is _FRESH:
        prototypes = align.old_class_prototypes(X, LABELS, normalize=True)
        args["head"] = align.OCAHead(prototypes, num_classes=3, extra_dim=2)
    if args["optimizer"] is _FRESH:
        modules = [m for m in (args["head"], args["model"]) if isinstance(m, nn.Module)]
        params = [p for m in modules for p in m.parameters()]
        args["optimizer"] = torch.optim.SGD(params, lr=0.01)
    return align.oca_step(**args)


REGISTRY: dict[str, Entry] = {
    **_function_entries(),
    **_stream_entries(),
    **_estimator_entries(),
    **_module_entries(),
    **_result_method_entries(),
}

# Public names that are not fuzzed, and why.
NOT_FUZZED = {
    # result records: returned by the functions, not built by users from raw input
    **dict.fromkeys(
        [
            "RegressionR2",
            "RelativeRetrieval",
            "ClassifierGeometry",
            "ClassifierGeometryComparison",
            "GrideScales",
            "MixupBinStats",
            "MixupGeometry",
            "NeuralCollapseResult",
            "OrthogonalFrameDistances",
            "RateReduction",
            "ScaleSweep",
            "Spectrum",
            "ClassRetrieval",
            "JointCorrelation",
            "LinearMap",
            "MatchingCurves",
            "MergeReport",
            "OCALosses",
            "ProcrustesMap",
            "SparsePrediction",
            "StitchingScore",
            "SubspaceBases",
            "TranslationScores",
            "UnitClusters",
            "UnitMatching",
            "UnitMerge",
            "UnitMerging",
            "CenteredMoments",
            "RowNormSums",
            "ManifoldSpec",
            "ApproximateKNNResult",
            "ApproximateValue",
            "KMeans",
            "LeastSquares",
            "RidgeEigh",  # its solve() is fuzzed as RidgeEigh.solve
        ],
        "a result record",
    ),
    "MomentSums": "a state record of zeros (its fields are the state)",
    **dict.fromkeys(
        [
            "StreamingMetric",
            "MomentsMetric",
            "PairedMomentsMetric",
            "Float64MomentsMetric",
            "DataclassResultMetric",
        ],
        "an abstract base class (its subclasses are fuzzed)",
    ),
    "PairwiseMeasure": "a record of callables (fuzzed through register_measure and pairwise)",
    "closest_measures": "a lookup by name, no data: any string gives a list (tested in "
    "tests/similarity/test_pairwise.py)",
}

# Public methods taking arguments that are not fuzzed, and why.
METHODS_NOT_FUZZED = {
    "NeuralCollapse.forward": "torchmetrics' forward: update() and compute() on the batch",
    "NeuralCollapse.sync": "torchmetrics' distributed sync",
    "StitchedModel.train": "nn.Module.train",
    "StitchedModel.frozen": "a context manager without data",
}
# Methods not fuzzed on whichever class inherits them, and why.
INHERITED_NOT_FUZZED = {
    "merge_state": "torchmetrics' state merging (StreamingMetric only drops the cached result)",
}


# --------------------------------------------------------------------------- bad values

NAN, INF = math.nan, math.inf


class _FrameLike:
    """A pandas-like table: converts with ``np.asarray`` but is no array itself."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.values if dtype is None else self.values.astype(dtype)

    def to_numpy(self) -> np.ndarray:
        return self.values


def _with(v: Tensor, value: float) -> Tensor:
    out = v.clone().to(torch.promote_types(v.dtype, torch.float32))
    out.view(-1)[0] = value
    return out


def _float_tensor_mutations(v: Tensor) -> dict[str, Any]:
    a = v.detach().numpy()
    bad: dict[str, Any] = {
        "none": None,
        "string": "x",
        "list": v.tolist(),
        "0d": v.flatten()[0].clone(),
        f"{v.ndim + 1}d": v[None].clone(),
        "empty": v[:0].clone(),
        "one_fewer": v[:-1].clone(),
        "nan": _with(v, NAN),
        "inf": _with(v, INF),
        "meta": v.to("meta"),
        "complex": v.to(torch.complex64),
        "int": v.round().long(),
        "uint8": v.abs().round().to(torch.uint8),
        "bool": v > 0,
        "float16": v.half(),
        "sparse": v.to_sparse(),
        "huge": v * 1e30,
        "tiny": v * 1e-30,
        "object_array": a.astype(object),
        "masked_array": np.ma.masked_array(a, mask=np.arange(a.size).reshape(a.shape) == 0),
        "structured_array": np.zeros(a.shape[0], dtype=[("a", "f4"), ("b", "f4")]),
        "longdouble": a.astype(np.longdouble),
        "string_array": a.astype(str),
        "frame_like": _FrameLike(a),
    }
    if v.ndim >= 1:
        bad["expanded"] = v[:1].expand_as(v)
    if v.ndim == 2:
        bad["1d"] = v.reshape(-1).clone()
        bad["no_columns"] = v[:, :0].clone()
        bad["non_contiguous"] = v.T.contiguous().T
    return bad


def _integer_tensor_mutations(v: Tensor) -> dict[str, Any]:
    return {
        "none": None,
        "string": "x",
        "list": v.tolist(),
        "0d": v.flatten()[0].clone(),
        f"{v.ndim + 1}d": v[None].clone(),
        "empty": v[:0].clone(),
        "one_fewer": v[:-1].clone(),
        "negative": _with_int(v, -1),
        "stray_huge": _with_int(v, 10**7),
        "fractional": v.double() + 0.5,
        "float_integral": v.double(),
        "nan": _with(v.double(), NAN),
        "bool": v > 0,
        "meta": v.to("meta"),
        "complex": v.to(torch.complex64),
        "numpy": v.numpy(),
        "object_array": v.numpy().astype(object),
        "masked_array": np.ma.masked_array(
            v.numpy(), mask=np.arange(v.numel()).reshape(v.shape) == 0
        ),
    }


def _with_int(v: Tensor, value: int) -> Tensor:
    out = v.clone()
    out.view(-1)[0] = value
    return out


def _object_mutations(v: Any) -> dict[str, Any]:
    bad: dict[str, Any] = {"none": None, "string": "x", "number": 3, "tensor": X}
    if isinstance(v, (list, tuple)):
        bad["empty_list"] = []
        bad["list_of_strings"] = ["x", "y"]
    if v is None:
        bad.pop("none")
    return bad


def _data_mutations(v: Any) -> dict[str, Any]:
    if isinstance(v, Tensor) and v.is_floating_point():
        return _float_tensor_mutations(v)
    if isinstance(v, Tensor):
        return _integer_tensor_mutations(v)
    return _object_mutations(v)


# Bad values of each kind of option, by id. Those in REFUSED must raise a SubspacesError naming
# the option (they are never valid); the others (0, -1, 10**12, 1e-300...) may be valid for
# some options and must give a finite value or a SubspacesError.
OPTION_VALUES: dict[str, dict[str, Any]] = {
    "flag": {"0": 0, "1": 1, "yes": "yes", "None": None},
    "int": {
        "0": 0,
        "-1": -1,
        "2.5": 2.5,
        "True": True,
        "None": None,
        "1e12": 10**12,
        "str": "3",
        "nan": NAN,
    },
    "real": {
        "0": 0.0,
        "-1": -1.0,
        "nan": NAN,
        "inf": INF,
        "1e-300": 1e-300,
        "1e300": 1e300,
        "True": True,
        "str": "x",
        "None": None,
    },
    "choice": {"nope": "nope", "None": None, "3": 3, "list": ["a"]},
    "generator": {"str": "x", "3": 3, "True": True},
    "seed": {"2.5": 2.5, "True": True, "str": "x", "1e30": 10**30, "-1": -1},
    "dtype": {"int64": torch.int64, "complex64": torch.complex64, "str": "float32", "3": 3},
    "device": {"nope": "nope", "3": 3, "meta": "meta"},
    "ints": {
        "empty": (),
        "0": (0,),
        "-1": (-1,),
        "2.5": (2.5,),
        "True": (True,),
        "str": "3",
        "None": None,
        "1e12": (10**12,),
    },
    # names of fields (check_moments' needs)
    "names": {"nope": ("nope",), "str": "cxx", "None": None, "3": (3,)},
    # free text that only goes into messages (name=, measure=...): no bad value
    "message": {},
}
REFUSED: dict[str, set[str]] = {
    "flag": {"0", "1", "yes", "None"},
    "int": {"2.5", "True", "None", "str", "nan"},
    "real": {"nan", "inf", "True", "str", "None"},
    "choice": {"nope", "None", "3", "list"},
    "generator": {"str", "3", "True"},
    "seed": {"2.5", "True", "str", "1e30", "-1"},
    "dtype": {"int64", "complex64", "str", "3"},
    "device": {"nope", "3", "meta"},
    "ints": {"2.5", "True", "str", "None"},
    "names": {"nope", "str", "None", "3"},
}
# Iteration counts: 10**12 is valid and only slow, so it is not among their bad values.
ITERATION_OPTIONS = {"epochs", "max_iter", "n_init", "n_random"}
OPTION_VALUES["iterations"] = {k: v for k, v in OPTION_VALUES["int"].items() if k != "1e12"}
REFUSED["iterations"] = REFUSED["int"]
for _kind_name in ("int", "real", "flag", "ints"):  # None means "automatic" for these
    OPTION_VALUES[f"optional_{_kind_name}"] = {
        k: v for k, v in OPTION_VALUES[_kind_name].items() if v is not None
    }
    REFUSED[f"optional_{_kind_name}"] = REFUSED[_kind_name] - {"None"}

# Bad data that no public callable accepts (the others, e.g. None, lists, int dtypes, empty
# or huge inputs, may be valid for some arguments): a SubspacesError (or the user's own
# network refusing them), never a value. NaN and inf join them except for layers.
REFUSED_DATA = {
    "string",
    "object_array",
    "structured_array",
    "string_array",
    "complex",
    "frame_like",
    "masked_array",
    "meta",
    "sparse",
}
NON_FINITE_DATA = {"nan", "inf"}


def _must_raise(entry: Entry, case: Case) -> bool:
    if case.argument in entry.user_inputs:
        return False
    if case.kind == "data":
        return case.value_id in REFUSED_DATA or (
            case.value_id in NON_FINITE_DATA and not entry.propagates_nan
        )
    return case.value_id in REFUSED.get(case.kind, set())


ANNOTATION_KINDS = {
    "bool": "flag",
    "bool | None": "optional_flag",
    "int": "int",
    "int | None": "optional_int",
    "float": "real",
    "float | None": "optional_real",
    "float | Sequence[float]": "real",
    "torch.Generator | None": "generator",
    "int | torch.Generator | None": "seed",
    "torch.dtype": "dtype",
    "torch.dtype | None": "dtype",
    "torch.device | str | None": "device",
    "str": "choice",
    "str | PairwiseMeasure": "choice",
    "str | Callable[[Tensor, Tensor], Tensor]": "choice",
    "bool | Callable[[int, float], None]": "optional_flag",
    "Sequence[int]": "ints",
    "Sequence[int] | None": "optional_ints",
    "float | tuple[float, float] | None": "optional_real",
    "int | Sequence[float]": "int",
    "tuple[int, int | None]": "ints",
    "str | ANNOptions": "choice",  # "exact" or "approximate" (or an ANNOptions)
    "int | tuple[int, int]": "int",
    "tuple[str, ...]": "names",
}
DATA_ANNOTATIONS = {
    "Any",
    "Tensor",
    "Tensor | None",
    "Any | None",
    "CenteredMoments",
    "SubspaceBases",
    "JointCorrelation",
    "ClassifierGeometry",
    "StitchedModel",
    "PairwiseMeasure",
    "OCAHead",
    "nn.Module",
    "nn.Sequential",
    "nn.Sequential | Sequence[nn.Module]",
    "Sequence[nn.Module]",
    "Callable[[Tensor], Tensor]",
    "torch.optim.Optimizer",
    "Sequence[Any] | Mapping[str, Any]",
    "Sequence[Any] | Mapping[str, Any] | None",
    "ANNOptions | None",
}


def _parameters(target: Callable[..., Any]) -> list[inspect.Parameter]:
    skip = (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    params = inspect.signature(target).parameters.values()
    return [p for p in params if p.kind not in skip and p.name not in ("self", "cls")]


def _kind(entry: Entry, param: inspect.Parameter) -> str | None:
    """The kind of ``param``: data, or an option kind of :data:`OPTION_VALUES`; None if unknown."""
    if param.name in entry.kinds:
        return entry.kinds[param.name]
    annotation = param.annotation
    if not isinstance(annotation, str):
        annotation = getattr(annotation, "__name__", str(annotation))
    if annotation in DATA_ANNOTATIONS:
        return "data"
    if annotation == "int" and param.name in ITERATION_OPTIONS:
        return "iterations"
    if annotation in ANNOTATION_KINDS:
        return ANNOTATION_KINDS[annotation]
    if annotation.startswith("Literal["):
        return "choice"
    alias = getattr(entry.target, "__globals__", {}).get(annotation)
    if alias is None:
        module = inspect.getmodule(entry.target)
        alias = getattr(module, annotation, None)
    if typing.get_origin(alias) is typing.Literal:
        return "choice"
    return None


@dataclass(frozen=True)
class Case:
    name: str
    argument: str
    kind: str
    value_id: str
    value: Any

    @property
    def id(self) -> str:
        return f"{self.name}-{self.argument}-{self.value_id}"


def _cases() -> Iterator[Case]:
    for name, entry in REGISTRY.items():
        for param in _parameters(entry.target):
            kind = _kind(entry, param)
            if kind == "data" or (kind is None and param.name in entry.args):
                kind = "data"
                values = _data_mutations(entry.args.get(param.name, param.default))
            elif kind is not None:
                values = OPTION_VALUES[kind]
            else:
                continue  # reported by test_registry_covers_every_public_callable
            for value_id, value in values.items():
                yield Case(name, param.name, kind, value_id, value)


# Cases that fail until a known bug is fixed (strict: they fail once it is); empty now.
XFAIL: dict[str, str] = {}

CASES = list(_cases())


def _params() -> list[Any]:
    out = []
    for case in CASES:
        marks = []
        if case.id in XFAIL:
            marks.append(pytest.mark.xfail(strict=True, reason=XFAIL[case.id]))
        out.append(pytest.param(case, id=case.id, marks=marks))
    return out


# --------------------------------------------------------------------------- the checks


def _non_finite_paths(value: Any, path: str = "result") -> Iterator[str]:
    """Where ``value`` holds NaN or ±inf (or a tensor without data)."""
    if isinstance(value, Tensor):
        if value.device.type == "meta":
            yield f"{path} (a meta tensor)"
        elif (value.is_floating_point() or value.is_complex()) and not bool(
            torch.isfinite(value).all()
        ):
            yield path
    elif isinstance(value, float):
        if not math.isfinite(value):
            yield path
    elif isinstance(value, nn.Module):
        for pname, p in value.named_parameters():
            yield from _non_finite_paths(p.detach(), f"{path}.{pname}")
    elif is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            yield from _non_finite_paths(getattr(value, f.name), f"{path}.{f.name}")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _non_finite_paths(v, f"{path}[{k!r}]")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _non_finite_paths(v, f"{path}[{i}]")


# Inputs for which a layer of a training loop (Entry.propagates_nan) may return NaN.
NAN_PROPAGATING_INPUTS = {"nan", "inf", "huge"}


def check_outcome(entry: Entry, args: dict[str, Any], case: Case | None = None) -> None:
    """The call gives a value without NaN or raises a SubspacesError (for a bad option, an
    option error naming it); for the valid call (``case`` None) it must give a value.

    A :class:`UserModelError` is the user's own network refusing its input: not ours.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = entry.run(**args)
        except (SubspacesError, UserModelError) as exc:
            if case is None:
                raise
            if case.kind != "data" and isinstance(exc, (InvalidOptionError, InputTypeError)):
                assert case.argument in str(exc), f"the error does not name {case.argument}: {exc}"
            return
        except Exception as exc:
            raise AssertionError(f"raw {type(exc).__name__}: {exc}") from exc
    if case is not None and _must_raise(entry, case):
        raise AssertionError(f"{case.argument}={case.value_id} was accepted (gave {out!r:.80})")
    if entry.propagates_nan and case is not None and case.value_id in NAN_PROPAGATING_INPUTS:
        return
    documented = entry.non_finite_fields or ("\0",)
    bad = [p for p in _non_finite_paths(out) if not p.startswith(documented)]
    assert not bad, f"NaN or inf returned silently in {', '.join(bad)}"


@pytest.mark.parametrize("case", _params())
def test_bad_value_gives_a_value_or_a_subspaces_error(case: Case) -> None:
    entry = REGISTRY[case.name]
    check_outcome(entry, {**entry.args, case.argument: case.value}, case)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_valid_call_succeeds(name: str) -> None:
    entry = REGISTRY[name]
    check_outcome(entry, entry.args)


_NUMPY_KINDS = {"int", "optional_int", "iterations", "real", "optional_real", "flag"}


def _numpy_scalar_cases() -> Iterator[Any]:
    for name, entry in REGISTRY.items():
        for param in _parameters(entry.target):
            value = entry.args.get(param.name, param.default)
            if _kind(entry, param) in _NUMPY_KINDS and isinstance(value, (bool, int, float)):
                yield pytest.param(name, param.name, id=f"{name}-{param.name}")


@pytest.mark.parametrize(("name", "argument"), list(_numpy_scalar_cases()))
def test_numpy_scalars_are_accepted_as_options(name: str, argument: str) -> None:
    entry = REGISTRY[name]
    param = inspect.signature(entry.target).parameters[argument]
    value = entry.args.get(argument, param.default)
    as_numpy = (
        np.bool_ if isinstance(value, bool) else np.int64 if isinstance(value, int) else np.float64
    )
    check_outcome(entry, {**entry.args, argument: as_numpy(value)})


# --------------------------------------------------------------------------- coverage


def _public_callables() -> Iterator[tuple[str, Any]]:
    for package in PACKAGES.values():
        for name in package.__all__:
            obj = getattr(package, name)
            if callable(obj):
                yield name, obj


def _public_methods(cls: type) -> Iterator[str]:
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        fn = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
        if inspect.isfunction(fn) and _parameters(fn):
            yield name


def test_registry_covers_every_public_callable() -> None:
    missing = []
    for name, obj in _public_callables():
        if name not in REGISTRY and name not in NOT_FUZZED:
            missing.append(name)
        if inspect.isclass(obj):
            for klass in obj.__mro__:
                if not klass.__module__.startswith("subspaces"):
                    continue
                for method in _public_methods(klass):
                    key = f"{name}.{method}"
                    if (
                        key not in REGISTRY
                        and key not in METHODS_NOT_FUZZED
                        and method not in INHERITED_NOT_FUZZED
                        and name not in NOT_FUZZED
                    ):
                        missing.append(key)
    assert not sorted(set(missing)), f"no fuzz entry for {sorted(set(missing))}"


def test_every_argument_has_a_kind() -> None:
    unknown = [
        f"{name}({param.name}: {param.annotation})"
        for name, entry in REGISTRY.items()
        for param in _parameters(entry.target)
        if _kind(entry, param) is None and param.name not in entry.args
    ]
    assert not unknown, (
        f"arguments of unknown kind (add them to ANNOTATION_KINDS or kinds=): {unknown}"
    )
