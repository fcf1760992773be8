"""Measures whose value the sample count fixes say so: MEASURES[name].caveat(n, d_x, d_y)
and a SmallSampleWarning with the same text, exactly when the criterion of
docs/measures.md ("Small samples") holds."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch

from subspaces import SmallSampleWarning
from subspaces._checks import InputTypeError, InvalidOptionError
from subspaces.similarity import (
    CCA,
    MEASURES,
    PWCCA,
    SVCCA,
    cca_correlations,
    cca_r2,
    linear_regression_r2,
    mean_cca,
    pairwise,
    pwcca,
    shape_metric,
    svcca,
)

F64 = torch.float64

# options some measures need to run at all on a dozen samples
_OPTIONS: dict[str, dict[str, Any]] = {
    "minibatch_cka": {"batch_size": 4, "drop_last": True},
    "eigenspace_overlap": {"n_components": 2},
    "mutual_knn": {"k": 3},
    "knn_jaccard": {"k": 3},
    "rank_similarity": {"k": 3},
    "cknna": {"k": 3},
    "second_order_cosine_similarity": {"k": 3},
    "relative_similarity": {"n_anchors": 4},
}


def _data(n: int, d_x: int, d_y: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d_x, generator=g, dtype=F64), torch.randn(n, d_y, generator=g, dtype=F64)


def _warnings_of(call: Any) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SmallSampleWarning)
        call()
    return [str(w.message) for w in caught if issubclass(w.category, SmallSampleWarning)]


_CCA_FUNCTIONS = {
    "cca_correlations": cca_correlations,
    "mean_cca": mean_cca,
    "cca_r2": cca_r2,
    "pwcca": pwcca,
}


@pytest.mark.parametrize("name", sorted(_CCA_FUNCTIONS))
@pytest.mark.parametrize(
    ("n", "d_x", "d_y", "warns"),
    [
        (17, 8, 8, False),  # d_x + d_y = 16 = n - 1: the boundary, no correlation forced
        (16, 8, 7, False),
        (16, 8, 8, True),  # 16 > 15: at least 1 of the 8 correlations is 1
        (15, 8, 8, True),  # 16 > 14: at least 2
        (9, 8, 3, True),  # n - 1 = 8 ≤ 8: every correlation is 1
        (40, 3, 8, False),
    ],
    ids=lambda v: str(v),
)
def test_cca_family_warns_exactly_when_widths_exceed_n_minus_1(
    name: str, n: int, d_x: int, d_y: int, warns: bool
) -> None:
    x, y = _data(n, d_x, d_y)
    texts = _warnings_of(lambda: _CCA_FUNCTIONS[name](x, y))
    caveat = MEASURES[name if name != "cca_correlations" else "mean_cca"].caveat(n, d_x, d_y)
    assert texts == ([caveat] if warns else [])
    assert (caveat is not None) is warns


def test_the_forced_correlations_are_there() -> None:
    x, y = _data(15, 8, 8)
    with pytest.warns(SmallSampleWarning, match=r"at least 2 of the 8 canonical correlations"):
        rho = cca_correlations(x, y)
    assert int((rho > 1 - 1e-9).sum()) == 2  # the bound is attained by generic data
    x, y = _data(9, 8, 3)
    with pytest.warns(SmallSampleWarning, match=r"n - 1 = 8 ≤ 8\): every canonical correlation"):
        assert float(mean_cca(x, y)) == pytest.approx(1.0, abs=1e-9)


def test_streaming_classes_warn_as_the_functions() -> None:
    x, y = _data(12, 8, 8)
    want = MEASURES["mean_cca"].caveat(12, 8, 8)
    for metric in (CCA(method="mean"), PWCCA()):
        metric.update(x[:6], y[:6])
        metric.update(x[6:], y[6:])
        assert _warnings_of(metric.compute) == [want]


@pytest.mark.parametrize(
    ("n", "options", "warns"),
    [
        (9, {}, True),  # predictor width 8 = n - 1: the fit interpolates
        (10, {}, False),
        (9, {"ridge": 0.1}, False),  # the ridge removes the degeneracy
        (9, {"direction": "y_to_x"}, False),  # predictor y has width 3
        (4, {"direction": "y_to_x"}, True),
        (9, {"direction": "symmetric"}, True),
    ],
    ids=lambda v: str(v),
)
def test_regression_warns_when_the_predictor_width_reaches_n_minus_1(
    n: int, options: dict[str, Any], warns: bool
) -> None:
    x, y = _data(n, 8, 3)
    texts = _warnings_of(lambda: linear_regression_r2(x, y, **options))
    caveat = MEASURES["linear_regression_r2"].caveat(n, 8, 3, **options)
    assert texts == ([caveat] if warns else [])
    assert (caveat is not None) is warns
    if warns and options.get("direction") != "symmetric":
        with pytest.warns(SmallSampleWarning, match="interpolates"):
            r2 = linear_regression_r2(x, y, **options)
        assert float(r2) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize(("alpha", "warns"), [(0.0, True), (0.5, False), (1.0, False)])
def test_shape_metric_warns_only_when_it_whitens_fully(alpha: float, warns: bool) -> None:
    x, y = _data(9, 8, 8)
    texts = _warnings_of(lambda: shape_metric(x, y, alpha=alpha))
    caveat = MEASURES["shape_metric"].caveat(9, 8, 8, alpha=alpha)
    assert texts == ([caveat] if warns else [])


def test_svcca_warns_on_the_directions_it_keeps() -> None:
    # 8 independent features each side: keep_variance=0.999 keeps (nearly) all of them
    x, y = _data(12, 8, 8)
    texts = _warnings_of(lambda: svcca(x, y, keep_variance=0.999))
    assert len(texts) == 1 and "kept directions" in texts[0]
    assert MEASURES["svcca"].caveat(12, 8, 8) is not None  # a warning implies a caveat
    # one dominant direction each side: 0.5 of the variance is 1 + 1 directions <= n - 1
    x[:, 0] *= 100
    y[:, 0] *= 100
    assert _warnings_of(lambda: svcca(x, y, keep_variance=0.5)) == []
    metric = SVCCA(keep_variance=0.5)
    metric.update(x, y)
    assert _warnings_of(metric.compute) == []
    assert MEASURES["svcca"].caveat(100, 8, 8) is None  # widths below n - 1: never


@pytest.mark.parametrize("name", sorted(MEASURES))
@pytest.mark.parametrize(("n", "d_x", "d_y"), [(9, 8, 8), (16, 8, 8), (17, 8, 8), (30, 8, 8)])
def test_caveat_agrees_with_the_warning_for_every_measure(
    name: str, n: int, d_x: int, d_y: int
) -> None:
    x, y = _data(n, d_x, d_y, seed=n)
    options = _OPTIONS.get(name, {})
    texts = _warnings_of(lambda: pairwise([x], [y], measure=name, progress=False, **options))
    caveat = MEASURES[name].caveat(n, d_x, d_y, **options)
    if name == "svcca":  # data-dependent (kept directions): a warning implies a caveat
        assert not texts or caveat is not None
    else:
        assert texts == ([] if caveat is None else [caveat])


def test_pairwise_warns_each_distinct_text_once() -> None:
    x, y = _data(9, 8, 8)
    texts = _warnings_of(lambda: pairwise([x, y, x + y], measure="mean_cca", progress=False))
    assert texts == [MEASURES["mean_cca"].caveat(9, 8, 8)]
    z = y[:, :3]
    texts = _warnings_of(lambda: pairwise([x, z], [y, z], measure="mean_cca", progress=False))
    assert sorted(texts) == sorted(
        {MEASURES["mean_cca"].caveat(9, a, b) for a in (8, 3) for b in (8, 3)} - {None}
    )


def test_the_warning_is_an_error_where_asked() -> None:
    x, y = _data(9, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallSampleWarning)
        with pytest.raises(SmallSampleWarning, match="every canonical correlation is 1"):
            pairwise([x], [y], measure="mean_cca", progress=False)


def test_caveat_is_one_line_of_text_for_the_users_case() -> None:
    text = MEASURES["mean_cca"].caveat(300, 384, 384)
    assert text is not None and "\n" not in text
    assert text.startswith("n = 300 samples for widths 384 and 384 (n - 1 = 299 ≤ 384)")
    assert MEASURES["mean_cca"].caveat(2500, 384, 384) is None
    assert MEASURES["linear_cka"].caveat(300, 384, 384) is None


@pytest.mark.parametrize(
    ("args", "error"),
    [((0, 3, 3), InvalidOptionError), ((10, 3, 2.5), InputTypeError)],
    ids=["zero-samples", "float-width"],
)
def test_caveat_checks_its_arguments(args: tuple[Any, ...], error: type) -> None:
    with pytest.raises(error, match=r"n|d_y"):
        MEASURES["mean_cca"].caveat(*args)


def test_cca_of_rank_deficient_data_warns_only_when_the_ranks_meet_the_criterion() -> None:
    # width 60 > n - 1 = 49, so the caveat (widths only) holds; but both sides have rank 10
    # and 10 + 10 <= 49: no correlation is forced, and the function (which knows the
    # ranks) does not warn
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 10, generator=g, dtype=F64) @ torch.randn(10, 60, generator=g, dtype=F64)
    y = torch.randn(50, 10, generator=g, dtype=F64) @ torch.randn(10, 60, generator=g, dtype=F64)
    assert MEASURES["mean_cca"].caveat(50, 60, 60) is not None
    rho: list[torch.Tensor] = []
    assert _warnings_of(lambda: rho.append(cca_correlations(x, y))) == []
    assert rho[0].numel() == 10
    assert float(rho[0].max()) < 0.99
    # at rank 30 + 30 > 49, 11 correlations are 1, and it warns the registry's text
    x = torch.randn(50, 30, generator=g, dtype=F64) @ torch.randn(30, 60, generator=g, dtype=F64)
    y = torch.randn(50, 30, generator=g, dtype=F64) @ torch.randn(30, 60, generator=g, dtype=F64)
    assert _warnings_of(lambda: rho.append(cca_correlations(x, y))) == [
        MEASURES["mean_cca"].caveat(50, 60, 60)
    ]
    assert int((rho[1] > 1 - 1e-8).sum()) == 30 + 30 - 49


@pytest.mark.parametrize(("d_x", "d_y"), [(50, 50), (60, 20)])
def test_the_cca_criterion_is_tight(d_x: int, d_y: int) -> None:
    # forced ones = d_x + d_y - (n - 1) (all once n - 1 <= max width), none one sample later
    for n in (d_x + 1, d_x + 2, d_x + d_y, d_x + d_y + 1):
        x, y = _data(n, d_x, d_y, seed=n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SmallSampleWarning)
            rho = cca_correlations(x, y)
        forced = max(0, min(d_x, n - 1) + min(d_y, n - 1) - (n - 1))
        assert int((rho > 1 - 1e-8).sum()) == forced
        assert (MEASURES["mean_cca"].caveat(n, d_x, d_y) is None) is (forced == 0)


def test_r2_cca_of_unrelated_data_averages_max_width_over_n_minus_1() -> None:
    # below the criterion the values are still inflated: E[R²_CCA] = max(d_x, d_y) / (n - 1)
    # for independent Gaussian data (docs/measures.md); 0.3 here
    values = [float(cca_r2(*_data(101, 20, 30, seed=s))) for s in range(60)]
    assert sum(values) / len(values) == pytest.approx(0.3, abs=0.01)


def test_symmetric_regression_with_one_wide_side_says_the_mean_is_at_least_half() -> None:
    x, y = _data(9, 8, 3)
    caveat = MEASURES["linear_regression_r2"].caveat(9, 8, 3, direction="symmetric")
    assert caveat is not None and "at least 0.5" in caveat and "from that side" in caveat
    with pytest.warns(SmallSampleWarning, match="at least 0.5"):
        r2 = linear_regression_r2(x, y, direction="symmetric")
    assert 0.5 <= float(r2) < 1.0
    # both sides wide: both fits interpolate and the mean is 1
    both = MEASURES["linear_regression_r2"].caveat(9, 8, 8, direction="symmetric")
    assert both is not None and "R² is 1 whatever the data" in both
