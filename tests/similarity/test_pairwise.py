"""pairwise: the matrix equals the measure applied pair by pair."""

from __future__ import annotations

import inspect

import pytest
import torch

import subspaces.similarity as sim
from subspaces._checks import InvalidOptionError, ShapeError
from subspaces.similarity import MEASURES, PairwiseMeasure, linear_cka, pairwise, register_measure


@pytest.fixture
def layers() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 8, generator=g, dtype=torch.float64)
    out = []
    for width in (8, 5, 12):
        x = torch.tanh(x @ torch.randn(x.shape[1], width, generator=g, dtype=torch.float64)) + 1.0
        out.append(x)
    return out


def _loop(xs: list[torch.Tensor], ys: list[torch.Tensor], **options: object) -> torch.Tensor:
    return torch.tensor(
        [[float(linear_cka(a, b, **options)) for b in ys] for a in xs], dtype=torch.float64
    )


@pytest.mark.parametrize("debiased", [False, True], ids=["biased", "debiased"])
def test_list_with_itself_equals_loop_and_is_symmetric(layers: list, debiased: bool) -> None:
    m = pairwise(layers, debiased=debiased)
    torch.testing.assert_close(m, _loop(layers, layers, debiased=debiased), rtol=0, atol=1e-12)
    torch.testing.assert_close(m, m.T)
    torch.testing.assert_close(m.diag(), torch.ones(3, dtype=torch.float64), rtol=0, atol=1e-15)


@pytest.mark.parametrize("debiased", [False, True], ids=["biased", "debiased"])
def test_two_lists_equal_loop(layers: list, debiased: bool) -> None:
    ys = [layers[2], layers[0]]
    m = pairwise(layers, ys, debiased=debiased)
    assert m.shape == (3, 2)
    torch.testing.assert_close(m, _loop(layers, ys, debiased=debiased), rtol=0, atol=1e-12)


def test_small_chunks_give_the_same_matrix(layers: list) -> None:
    torch.testing.assert_close(
        pairwise(layers, chunk_size=17), pairwise(layers), rtol=0, atol=1e-12
    )


def test_float32_layers_are_exact_to_float64(layers: list) -> None:
    m32 = pairwise([x.float() for x in layers])
    m64 = _loop([x.float().double() for x in layers], [x.float().double() for x in layers])
    # float32 products over 200 rows: ~1e-7 error on cross entries that nearly cancel
    torch.testing.assert_close(m32, m64, rtol=0, atol=1e-6)


def test_dict_input(layers: list) -> None:
    named = {"a": layers[0], "b": layers[1]}
    torch.testing.assert_close(pairwise(named), pairwise(layers[:2]))


def test_custom_function_measure(layers: list) -> None:
    spec = PairwiseMeasure("neg_cka", symmetric=False, function=lambda x, y: -linear_cka(x, y))
    torch.testing.assert_close(
        pairwise(layers, measure=spec), -_loop(layers, layers), rtol=0, atol=1e-12
    )


def test_prepared_measure_prepares_each_representation_once(layers: list) -> None:
    calls: list[int] = []

    def prepare(x: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return x.mean(0)

    spec = PairwiseMeasure(
        "mean_gap",
        symmetric=True,
        prepare=prepare,
        compare=lambda a, b: (a.mean() - b.mean()).abs(),
    )
    m = pairwise(layers, measure=spec)
    assert len(calls) == 3
    torch.testing.assert_close(m, m.T)


def test_unknown_measure_lists_the_known_ones(layers: list) -> None:
    with pytest.raises(
        InvalidOptionError, match=r"unknown measure 'nope'; known measures: .*linear_cka"
    ):
        pairwise(layers, measure="nope")


@pytest.mark.parametrize(
    ("typed", "meant"),
    [("linear-cka", ["linear_cka"]), ("cca", ["cca_r2", "mean_cca", "pwcca", "svcca"])],
)
def test_unknown_measure_says_what_was_meant(layers: list, typed: str, meant: list) -> None:
    from subspaces.similarity import closest_measures

    assert closest_measures(typed) == meant
    hint = " or ".join(repr(m) for m in meant)
    with pytest.raises(InvalidOptionError) as raised:
        pairwise(layers, measure=typed)
    assert f"unknown measure {typed!r} (did you mean {hint}?)" in str(raised.value)


def test_different_sample_counts_are_refused(layers: list) -> None:
    with pytest.raises(ShapeError, match=r"xs\[0\] has 200 rows and ys\[0\] has shape \(199, 8\)"):
        pairwise(layers, [layers[0][:199]])


def test_empty_list_is_refused() -> None:
    with pytest.raises(ShapeError, match="xs is empty"):
        pairwise([])


def test_bad_entry_is_named(layers: list) -> None:
    with pytest.raises(ShapeError, match=r"xs\['bad'\] must be a 2-D"):
        pairwise({"good": layers[0], "bad": layers[0][:, 0]})


def test_a_measure_needs_exactly_one_route() -> None:
    with pytest.raises(InvalidOptionError, match="exactly one of"):
        register_measure(PairwiseMeasure("broken", symmetric=True))
    assert "broken" not in MEASURES


# Every registered measure, computed by pairwise (shared statistics), equals its function.
_FUNCTIONS = {
    "linear_cka": (sim.linear_cka, {}),
    "rbf_cka": (sim.rbf_cka, {}),
    "minibatch_cka": (sim.minibatch_cka, {"batch_size": 20}),
    "mean_cca": (sim.mean_cca, {}),
    "cca_r2": (sim.cca_r2, {}),
    "svcca": (sim.svcca, {"keep_variance": 0.9}),
    "pwcca": (sim.pwcca, {}),
    "linear_regression_r2": (sim.linear_regression_r2, {}),
    "procrustes_distance": (sim.procrustes_distance, {}),
    "angular_procrustes_distance": (sim.angular_procrustes_distance, {}),
    "shape_metric": (sim.shape_metric, {"alpha": 0.5}),
    "permutation_procrustes_distance": (sim.permutation_procrustes_distance, {}),
    "rsa": (sim.rsa, {"method": "spearman"}),
    "rsm_norm_difference": (sim.rsm_norm_difference, {}),
    "mutual_knn": (sim.mutual_knn, {"k": 5}),
    "knn_jaccard": (sim.knn_jaccard, {"k": 5}),
    "rank_similarity": (sim.rank_similarity, {"k": 5}),
    "cknna": (sim.cknna, {"k": 5}),
    "second_order_cosine_similarity": (sim.second_order_cosine_similarity, {"k": 5}),
    "magnitude_difference": (sim.magnitude_difference, {}),
    "concentricity_difference": (sim.concentricity_difference, {}),
    "uniformity_difference": (sim.uniformity_difference, {}),
    "relative_similarity": (sim.relative_similarity, {"anchor_indices": torch.arange(0, 60, 6)}),
    "eigenspace_overlap": (sim.eigenspace_overlap, {"n_components": 3}),
}


def test_every_registered_measure_is_tested() -> None:
    assert set(_FUNCTIONS) == set(MEASURES)


@pytest.mark.parametrize("name", sorted(_FUNCTIONS))
def test_registered_measure_equals_its_function(name: str) -> None:
    g = torch.Generator().manual_seed(7)
    base = torch.randn(60, 6, generator=g, dtype=torch.float64)
    layers = [
        torch.tanh(base @ torch.randn(6, 6, generator=g, dtype=torch.float64)) + 0.5
        for _ in range(3)
    ]
    function, options = _FUNCTIONS[name]
    expected = torch.tensor(
        [[float(function(a, b, **options)) for b in layers] for a in layers], dtype=torch.float64
    )
    # moment-based measures share centered statistics: equal to float64 rounding
    torch.testing.assert_close(
        pairwise(layers, measure=name, **options), expected, rtol=1e-9, atol=1e-9
    )


def _self_layers() -> list[torch.Tensor]:
    # float32, anisotropic and offset: the cases where the shape distances' self value used
    # to read as rounding noise (~1e-8) that differed between the two routes
    g = torch.Generator().manual_seed(11)
    base = torch.randn(80, 6, generator=g, dtype=torch.float64)
    scales = torch.logspace(0, -3, 6, dtype=torch.float64)
    return [
        (
            torch.tanh(base @ torch.randn(6, 6, generator=g, dtype=torch.float64)) * scales + 3.0
        ).float()
        for _ in range(3)
    ]


@pytest.mark.parametrize("name", sorted(_FUNCTIONS))
def test_registered_measure_diagonal_equals_its_self_value(name: str) -> None:
    layers = _self_layers()
    function, options = _FUNCTIONS[name]
    diagonal = pairwise(layers, measure=name, **options).diag()
    expected = torch.tensor([float(function(x, x, **options)) for x in layers], dtype=torch.float64)
    # both routes give the same self value, to float64 rounding (the shape distances: 0)
    torch.testing.assert_close(diagonal, expected, rtol=0, atol=1e-12)


def _keyword_options(function: object) -> set[str]:
    params = inspect.signature(function).parameters.values()  # type: ignore[arg-type]
    return {p.name for p in params if p.kind is p.KEYWORD_ONLY} - {"chunk_size"}


@pytest.mark.parametrize("name", sorted(_FUNCTIONS))
def test_pairwise_takes_the_options_of_the_single_pair_function(name: str) -> None:
    # chunk_size is pairwise's own (passed on); neighbors="approximate" gives no matrix entry
    accepted = set(MEASURES[name].accepted_options() or ()) - {"chunk_size", "neighbors"}
    assert accepted == _keyword_options(_FUNCTIONS[name][0]) - {"neighbors"}


@pytest.mark.parametrize("name", sorted(_FUNCTIONS))
def test_pairwise_refuses_an_option_its_measure_does_not_take(name: str) -> None:
    # issue 9, item 7: an unknown option raised a raw TypeError, or was silently ignored
    x = torch.randn(12, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(InvalidOptionError, match=rf"measure '{name}' takes no option 'k_nn'"):
        pairwise([x, x], measure=name, k_nn=3)


# ---- measure metadata on the registry ------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MEASURES))
def test_every_measure_states_its_label_direction_and_bounds(name: str) -> None:
    spec = MEASURES[name]
    assert isinstance(spec.label, str) and spec.label
    assert spec.kind in ("similarity", "distance")
    assert spec.higher_is_better is (spec.kind == "similarity")
    low, high = spec.bounds
    assert low is None or isinstance(low, float)
    assert high is None or isinstance(high, float)
    if low is not None and high is not None:
        assert low < high
    if spec.kind == "distance" and low is not None:
        assert low == 0.0


def test_measure_metadata_defaults_and_refusal() -> None:
    spec = PairwiseMeasure("my_gap", symmetric=True, function=lambda x, y: x.sum() - y.sum())
    assert spec.label == "my gap"
    assert spec.bounds == (None, None) and spec.higher_is_better is None
    bad = PairwiseMeasure("bad", symmetric=True, function=spec.function, kind="angle")  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionError, match="kind"):
        register_measure(bad)


def test_measure_values_lie_in_their_bounds() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(40, 6, generator=g, dtype=torch.float64)
    layers = [
        x,
        x @ torch.randn(6, 5, generator=g, dtype=torch.float64),
        torch.randn(40, 4, generator=g, dtype=torch.float64),
    ]
    options = {
        "minibatch_cka": {"batch_size": 20},
        "relative_similarity": {"n_anchors": 5, "seed": 0},
    }
    for name, spec in MEASURES.items():
        if name == "eigenspace_overlap":
            continue  # needs one feature space
        values = pairwise(layers, measure=name, **options.get(name, {}))
        low, high = spec.bounds
        if low is not None:
            assert float(values.min()) >= low - 1e-9, name
        if high is not None:
            assert float(values.max()) <= high + 1e-9, name


def test_pairwise_passes_chunk_size_to_measures_that_take_one() -> None:
    x = torch.randn(30, 5, generator=torch.Generator().manual_seed(0))
    layers = [x, x**2, x + 1.0]
    torch.testing.assert_close(
        pairwise(layers, measure="rsa", chunk_size=4), pairwise(layers, measure="rsa")
    )
    with pytest.raises(InvalidOptionError, match="chunk_size must be at least 1"):
        pairwise(layers, measure="uniformity_difference", chunk_size=0)
