"""The CKA family: linear (biased, debiased), RBF (biased, debiased) and minibatch CKA.

Properties common to every CKA variant are parametrized over ``MEASURES`` (one maths each,
tested the same way); then the streaming classes, the RBF bandwidth, the minibatch estimator
and every error path. Comparisons with peer libraries live in tests/oracles/test_cka_oracles.py.

Tolerances: data are float64 unless a test says otherwise; invariances hold to rounding, and
1e-9 leaves room for the O(n²) float64 sums of the RBF kernels and for the median (an order
statistic) moving by one ulp under a transform.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import subspaces.similarity.kernel_cka as kernel_cka
from subspaces._checks import (
    DegenerateInputError,
    DeviceMismatchError,
    InputTypeError,
    InvalidOptionError,
    NonFiniteError,
    ShapeError,
    TooFewSamplesError,
    check_same_device,
)
from subspaces.similarity.cka import LinearCKA, linear_cka
from subspaces.similarity.kernel_cka import MinibatchCKA, minibatch_cka, rbf_cka

Measure = Callable[[Any, Any], torch.Tensor]


def _minibatch_halves(x: Any, y: Any) -> torch.Tensor:
    """Minibatch CKA on two batches (the first n // 2 rows and the rest)."""
    return minibatch_cka(x, y, batch_size=x.shape[0] // 2 + x.shape[0] % 2)


MEASURES: dict[str, Measure] = {
    "linear": linear_cka,
    "linear-debiased": partial(linear_cka, debiased=True),
    "rbf": rbf_cka,
    "rbf-debiased": partial(rbf_cka, debiased=True),
    "rbf-threshold-0.5": partial(rbf_cka, threshold=0.5),
    "minibatch": _minibatch_halves,
}
DEBIASED = {"linear-debiased", "rbf-debiased", "minibatch"}
# Minibatch CKA depends on which rows share a batch, so not on a permutation of the samples.
SAMPLE_ORDER_FREE = [name for name in MEASURES if name != "minibatch"]

SETTINGS = settings(max_examples=25, deadline=None)
TOL = 1e-9


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _pair(seed: int, n: int = 24, d1: int = 5, d2: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """A related, non-degenerate pair: y is a noisy nonlinear function of x, off-center."""
    g = _generator(seed)
    x = torch.randn(n, d1, generator=g, dtype=torch.float64) + 2.0
    w = torch.randn(d1, d2, generator=g, dtype=torch.float64)
    y = torch.tanh(x @ w) + 0.3 * torch.randn(n, d2, generator=g, dtype=torch.float64)
    return x, y


def _orthogonal(d: int, seed: int) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(d, d, generator=_generator(seed), dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


seeds = st.integers(0, 2**31 - 1)
sizes = st.integers(10, 24)
widths = st.integers(1, 5)


# --------------------------------------------------------------------------------------------
# Properties common to every variant.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MEASURES))
@SETTINGS
@given(seed=seeds, n=sizes, d1=widths, d2=widths)
def test_invariant_to_orthogonal_transforms(name: str, seed: int, n: int, d1: int, d2: int) -> None:
    x, y = _pair(seed, n, d1, d2)
    measure = MEASURES[name]
    rotated = measure(x @ _orthogonal(d1, seed + 1), y @ _orthogonal(d2, seed + 2))
    torch.testing.assert_close(rotated, measure(x, y), rtol=0, atol=TOL)


@pytest.mark.parametrize("name", list(MEASURES))
@SETTINGS
@given(
    seed=seeds,
    scale_x=st.floats(1e-2, 1e2),
    scale_y=st.floats(1e-2, 1e2),
)
def test_invariant_to_isotropic_scaling(
    name: str, seed: int, scale_x: float, scale_y: float
) -> None:
    x, y = _pair(seed)
    measure = MEASURES[name]
    torch.testing.assert_close(measure(scale_x * x, scale_y * y), measure(x, y), rtol=0, atol=TOL)


@pytest.mark.parametrize("name", list(MEASURES))
@SETTINGS
@given(seed=seeds, shift=st.floats(-10.0, 10.0))
def test_invariant_to_translation(name: str, seed: int, shift: float) -> None:
    # shifts up to ~30 standard deviations; larger ones: see the offset test below
    x, y = _pair(seed)
    g = _generator(seed + 3)
    vx = shift * torch.randn(x.shape[1], generator=g, dtype=torch.float64)
    vy = shift * torch.randn(y.shape[1], generator=g, dtype=torch.float64)
    measure = MEASURES[name]
    torch.testing.assert_close(measure(x + vx, y + vy), measure(x, y), rtol=0, atol=TOL)


@pytest.mark.parametrize("name", list(MEASURES))
def test_a_large_common_offset_changes_nothing(name: str) -> None:
    # Activations often sit far from the origin (LLM residual streams carry features with
    # mean in the hundreds). An offset of 1000 standard deviations must not cost accuracy:
    # moments are taken about a shift near the mean, so nothing large cancels.
    x, y = _pair(13, n=200, d1=16, d2=8)
    measure = MEASURES[name]
    torch.testing.assert_close(measure(x + 1000.0, y - 1000.0), measure(x, y), rtol=0, atol=TOL)


@pytest.mark.parametrize("name", SAMPLE_ORDER_FREE)
@SETTINGS
@given(seed=seeds)
def test_invariant_to_a_permutation_of_the_samples(name: str, seed: int) -> None:
    x, y = _pair(seed)
    perm = torch.randperm(x.shape[0], generator=_generator(seed))
    measure = MEASURES[name]
    torch.testing.assert_close(measure(x[perm], y[perm]), measure(x, y), rtol=0, atol=TOL)


@pytest.mark.parametrize("name", list(MEASURES))
@SETTINGS
@given(seed=seeds, n=sizes, d1=widths, d2=widths)
def test_symmetric(name: str, seed: int, n: int, d1: int, d2: int) -> None:
    x, y = _pair(seed, n, d1, d2)
    measure = MEASURES[name]
    torch.testing.assert_close(measure(y, x), measure(x, y), rtol=0, atol=TOL)


@pytest.mark.parametrize("name", list(MEASURES))
@SETTINGS
@given(seed=seeds, n=sizes, d1=widths, d2=widths, noise=st.floats(0.0, 10.0))
def test_in_range(name: str, seed: int, n: int, d1: int, d2: int, noise: float) -> None:
    # biased CKA is a cosine between PSD matrices: [0, 1]; debiased estimators: [-1, 1].
    x, y = _pair(seed, n, d1, d2)
    y = y + noise * torch.randn(y.shape, generator=_generator(seed + 5), dtype=torch.float64)
    value = float(MEASURES[name](x, y))
    low = -1.0 if name in DEBIASED else 0.0
    assert low - 1e-12 <= value <= 1.0 + 1e-12


@pytest.mark.parametrize("name", list(MEASURES))
@SETTINGS
@given(seed=seeds, scale=st.floats(1e-2, 1e2), n=sizes, d=widths)
def test_one_for_the_same_representation_up_to_similarity(
    name: str, seed: int, scale: float, n: int, d: int
) -> None:
    x, _ = _pair(seed, n, d)
    shift = torch.randn(d, generator=_generator(seed + 7), dtype=torch.float64)
    same = scale * (x @ _orthogonal(d, seed + 8) + shift)  # offset/std stays O(1)
    measure = MEASURES[name]
    torch.testing.assert_close(measure(x, x), torch.tensor(1.0, dtype=torch.float64))
    torch.testing.assert_close(
        measure(x, same), torch.tensor(1.0, dtype=torch.float64), rtol=0, atol=TOL
    )


@pytest.mark.parametrize("name", list(MEASURES))
def test_returns_a_float64_scalar_and_accepts_numpy(name: str) -> None:
    x, y = _pair(0)
    value = MEASURES[name](x.numpy(), y.numpy())
    assert value.shape == () and value.dtype == torch.float64
    torch.testing.assert_close(value, MEASURES[name](x, y), rtol=0, atol=0)


@pytest.mark.parametrize("name", list(MEASURES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_float32_input_within_1e7_of_float64(name: str, seed: int) -> None:
    # The same numbers in float32 and float64: only the arithmetic differs. Off-center data
    # (mean 2) and n = 300 stress the cancellations; errors measured ~1e-8.
    x, y = _pair(seed, n=300, d1=16, d2=8)
    x32, y32 = x.float(), y.float()
    measure = MEASURES[name]
    torch.testing.assert_close(
        measure(x32, y32), measure(x32.double(), y32.double()), rtol=0, atol=1e-7
    )


# --------------------------------------------------------------------------------------------
# Streaming classes.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("debiased", [False, True], ids=["biased", "debiased"])
@SETTINGS
@given(seed=seeds, cuts=st.lists(st.integers(1, 39), max_size=6, unique=True))
def test_linear_cka_streaming_over_any_split_equals_one_shot(
    debiased: bool, seed: int, cuts: list[int]
) -> None:
    x, y = _pair(seed, n=40)
    bounds = [0, *sorted(cuts), 40]
    metric = LinearCKA(debiased=debiased)
    for start, stop in itertools.pairwise(bounds):
        metric.update(x[start:stop], y[start:stop])
    torch.testing.assert_close(
        metric.compute(), linear_cka(x, y, debiased=debiased), rtol=0, atol=1e-12
    )


def test_linear_cka_reset_forgets_the_data() -> None:
    x, y = _pair(0)
    metric = LinearCKA()
    metric.update(x + 5.0, torch.randn_like(y))
    metric.reset()
    metric.update(x, y)
    torch.testing.assert_close(metric.compute(), linear_cka(x, y), rtol=0, atol=1e-12)


@SETTINGS
@given(seed=seeds, sizes=st.lists(st.integers(4, 12), min_size=1, max_size=6))
def test_minibatch_class_equals_function_on_the_same_batches(seed: int, sizes: list[int]) -> None:
    x, y = _pair(seed, n=sum(sizes))
    bounds = np.cumsum([0, *sizes]).tolist()
    batches = [(x[a:b], y[a:b]) for a, b in itertools.pairwise(bounds)]
    metric = MinibatchCKA()
    for bx, by in batches:
        metric.update(bx, by)
    expected = minibatch_cka([b[0] for b in batches], [b[1] for b in batches])
    torch.testing.assert_close(metric.compute(), expected, rtol=0, atol=1e-12)


def test_minibatch_class_reset_forgets_the_batches() -> None:
    x, y = _pair(0, n=20)
    metric = MinibatchCKA()
    metric.update(x[:10] * 3.0, y[10:])
    metric.reset()
    metric.update(x[:10], y[:10])
    metric.update(x[10:], y[10:])
    torch.testing.assert_close(
        metric.compute(), minibatch_cka(x, y, batch_size=10), rtol=0, atol=1e-12
    )


# --------------------------------------------------------------------------------------------
# RBF CKA: bandwidth, blocks, limits.
# --------------------------------------------------------------------------------------------


def _reference_rbf_cka(x: np.ndarray, y: np.ndarray, sx: float, sy: float, debiased: bool) -> float:
    """Full n × n Grams in numpy: biased via H K H, debiased via the Song et al. U-statistic."""
    n = x.shape[0]

    def gram(a: np.ndarray, s: float) -> np.ndarray:
        d = ((a[:, None, :] - a[None, :, :]) ** 2).sum(-1)
        return np.exp(-d / (2 * s * s))

    def hsic(k: np.ndarray, lg: np.ndarray) -> float:
        if not debiased:
            h = np.eye(n) - 1.0 / n
            return float(np.trace(k @ h @ lg @ h))
        k, lg = k - np.diag(np.diag(k)), lg - np.diag(np.diag(lg))
        one = np.ones(n)
        return float(
            np.trace(k @ lg)
            + (one @ k @ one) * (one @ lg @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * (one @ k @ lg @ one)
        )

    k, lg = gram(x, sx), gram(y, sy)
    return hsic(k, lg) / np.sqrt(hsic(k, k) * hsic(lg, lg))


def _kornblith_sigma(a: np.ndarray, threshold: float) -> float:
    """σ of Kornblith's gram_rbf: threshold · sqrt(np.median of all n² squared distances)."""
    d = ((a[:, None, :] - a[None, :, :]) ** 2).sum(-1)
    return threshold * float(np.sqrt(np.median(d)))


@pytest.mark.parametrize("n", [9, 10, 2, 3, 4], ids=lambda n: f"n{n}")
@pytest.mark.parametrize("debiased", [False, True], ids=["biased", "debiased"])
@pytest.mark.parametrize("threshold", [0.5, 1.0, 3.0])
def test_rbf_median_bandwidth_is_kornbliths(n: int, debiased: bool, threshold: float) -> None:
    # odd and even n (np.median averages the two middle values), and tiny n where the median
    # falls on the diagonal zeros (n = 2).
    if debiased and n < 4:
        pytest.skip("debiased needs n >= 4")
    x, y = (t.numpy() for t in _pair(n, n=n))
    expected = _reference_rbf_cka(
        x, y, _kornblith_sigma(x, threshold), _kornblith_sigma(y, threshold), debiased
    )
    value = rbf_cka(x, y, threshold=threshold, debiased=debiased)
    assert float(value) == pytest.approx(expected, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("debiased", [False, True], ids=["biased", "debiased"])
def test_rbf_explicit_sigma_matches_the_full_gram(debiased: bool) -> None:
    x, y = (t.numpy() for t in _pair(4, n=15))
    for sigma in [0.7, (0.7, 2.5)]:
        sx, sy = sigma if isinstance(sigma, tuple) else (sigma, sigma)
        expected = _reference_rbf_cka(x, y, sx, sy, debiased)
        value = rbf_cka(x, y, sigma=sigma, debiased=debiased)
        assert float(value) == pytest.approx(expected, rel=1e-10), sigma


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 25, 1000], ids=lambda b: f"block{b}")
@pytest.mark.parametrize("debiased", [False, True], ids=["biased", "debiased"])
def test_rbf_does_not_depend_on_the_chunk_size(chunk_size: int, debiased: bool) -> None:
    x, y = _pair(5, n=25)
    torch.testing.assert_close(
        rbf_cka(x, y, debiased=debiased, chunk_size=chunk_size),
        rbf_cka(x, y, debiased=debiased),
        rtol=0,
        atol=1e-13,
    )


@pytest.mark.parametrize("n", [41, 40], ids=["odd", "even"])
@pytest.mark.parametrize("sample", [64, 4096], ids=["small-sample", "large-sample"])
def test_rbf_sampled_median_bracket_is_still_exact(
    monkeypatch: pytest.MonkeyPatch, n: int, sample: int
) -> None:
    # Force the large-n path (sample pairs to bracket the median, one pass keeps the
    # bracket): the result must be the exact median whatever the sample.
    x, _ = _pair(6, n=n)
    exact = kernel_cka._median_sq_distance(x, 8)
    monkeypatch.setattr(kernel_cka, "_EXACT_MEDIAN_PAIRS", 10)
    monkeypatch.setattr(kernel_cka, "_MEDIAN_SAMPLE", sample)
    assert float(kernel_cka._median_sq_distance(x, 8)) == float(exact)


def test_rbf_median_bracket_that_misses_is_widened(monkeypatch: pytest.MonkeyPatch) -> None:
    x, _ = _pair(6, n=40)
    exact = kernel_cka._median_sq_distance(x, 8)
    monkeypatch.setattr(kernel_cka, "_EXACT_MEDIAN_PAIRS", 10)
    monkeypatch.setattr(kernel_cka, "_MEDIAN_SAMPLE", 256)
    bracket = kernel_cka._bracket
    calls: list[float] = []

    def missing_first(sample: torch.Tensor, ranks: list[int], n_pairs: int, width: float) -> Any:
        calls.append(width)
        if len(calls) == 1:  # a bracket above every distance: the wanted ranks fall below it
            return sample[-1] + 1.0, None
        return bracket(sample, ranks, n_pairs, width)

    monkeypatch.setattr(kernel_cka, "_bracket", missing_first)
    assert float(kernel_cka._median_sq_distance(x, 8)) == float(exact)
    assert calls == [5.0, 20.0]


def test_rbf_median_handles_tied_middle_values() -> None:
    # integer grid points: many equal distances, so both middle order statistics tie
    x = torch.tensor([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]], dtype=torch.float64)
    d = (x - x.T) ** 2
    assert float(kernel_cka._median_sq_distance(x, 2)) == float(np.median(d.numpy()))


def test_rbf_with_a_wide_kernel_tends_to_linear_cka() -> None:
    # exp(-D/2σ²) = 1 - D/2σ² + O(σ⁻⁴) and centering removes the rank-one parts of D, so
    # H K H ∝ H X Xᵀ H + O(σ⁻²): RBF CKA → linear CKA. At σ = 100 × the median distance the
    # O(σ⁻²) term is ~1e-5.
    x, y = _pair(7, n=30)
    sx = 100 * _kornblith_sigma(x.numpy(), 1.0)
    sy = 100 * _kornblith_sigma(y.numpy(), 1.0)
    assert float(rbf_cka(x, y, sigma=(sx, sy))) == pytest.approx(float(linear_cka(x, y)), abs=1e-4)


def test_rbf_fixed_sigma_is_not_scale_invariant() -> None:
    x, y = _pair(8)
    assert abs(float(rbf_cka(x, y, sigma=1.0)) - float(rbf_cka(10 * x, y, sigma=1.0))) > 1e-3


# --------------------------------------------------------------------------------------------
# Minibatch CKA: the estimator and its input forms.
# --------------------------------------------------------------------------------------------


def test_minibatch_with_one_batch_is_debiased_linear_cka() -> None:
    x, y = _pair(9, n=30)
    torch.testing.assert_close(
        minibatch_cka(x, y, batch_size=30),
        linear_cka(x, y, debiased=True),
        rtol=0,
        atol=1e-12,
    )


def test_minibatch_input_forms_agree() -> None:
    x, y = _pair(10, n=40)
    expected = minibatch_cka(x, y, batch_size=10)
    xs, ys = list(x.split(10)), list(y.split(10))
    forms = {
        "list": minibatch_cka(xs, ys),
        "tuple-of-numpy": minibatch_cka(tuple(b.numpy() for b in xs), tuple(b.numpy() for b in ys)),
        "3-D tensor": minibatch_cka(x.reshape(4, 10, -1), y.reshape(4, 10, -1)),
        "3-D numpy": minibatch_cka(x.reshape(4, 10, -1).numpy(), y.reshape(4, 10, -1).numpy()),
        "generators": minibatch_cka(iter(xs), iter(ys)),
    }
    for form, value in forms.items():
        torch.testing.assert_close(value, expected, rtol=0, atol=0, msg=form)


@pytest.mark.parametrize(
    ("n", "drop_last", "expected_sizes"),
    [(40, False, [10] * 4), (43, True, [10] * 4), (44, False, [10] * 4 + [4])],
    ids=["even-split", "drop-last", "remainder-4-kept"],
)
def test_minibatch_batch_size_splits_consecutive_rows(
    n: int, drop_last: bool, expected_sizes: list[int]
) -> None:
    x, y = _pair(11, n=n)
    bounds = np.cumsum([0, *expected_sizes]).tolist()
    xs = [x[a:b] for a, b in itertools.pairwise(bounds)]
    ys = [y[a:b] for a, b in itertools.pairwise(bounds)]
    torch.testing.assert_close(
        minibatch_cka(x, y, batch_size=10, drop_last=drop_last),
        minibatch_cka(xs, ys),
        rtol=0,
        atol=0,
    )


def test_minibatch_skips_a_constant_batch_but_counts_the_rest() -> None:
    # a constant batch contributes HSIC 0 (exactly, not rounding noise) to every sum
    x, y = _pair(12, n=20)
    constant = torch.full((5, x.shape[1]), 0.1, dtype=torch.float64)
    with_constant = minibatch_cka([x[:10], x[10:], constant], [y[:10], y[10:], y[:5]])
    metric = MinibatchCKA()
    metric.update(x[:10], y[:10])
    metric.update(x[10:], y[10:])
    metric.update(constant, y[:5])
    assert float(metric.n_batches) == 3.0
    hsic = kernel_cka._linear_hsic1(constant, y[:5])
    assert float(hsic[0]) == 0.0 and float(hsic[1]) == 0.0
    torch.testing.assert_close(metric.compute(), with_constant, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------------
# Errors.
# --------------------------------------------------------------------------------------------

ALL_MEASURES = {**MEASURES, "minibatch-one-batch": partial(minibatch_cka, batch_size=157)}


@pytest.mark.parametrize(
    "value",
    [0.0, 1.0, pytest.param(3.7, id="3.7-rounding-mean")],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("side", ["x", "y"])
@pytest.mark.parametrize("name", list(ALL_MEASURES))
def test_zero_variance_raises_degenerate_input(
    name: str, side: str, dtype: torch.dtype, value: float
) -> None:
    # n = 157 and 3.7 make the mean of the column differ from the entries by rounding, so an
    # exact "centered moments == 0" test would not fire: detection needs a tolerance.
    varying = torch.randn(157, 3, generator=_generator(0)).to(dtype)
    constant = torch.full((157, 2), value, dtype=dtype)
    x, y = (constant, varying) if side == "x" else (varying, constant)
    with pytest.raises(DegenerateInputError, match=rf"{side}|not positive"):
        ALL_MEASURES[name](x, y)


@pytest.mark.parametrize("name", list(ALL_MEASURES))
def test_mismatched_sample_counts_raise_shape_error(name: str) -> None:
    x, y = _pair(0, n=24)
    with pytest.raises(ShapeError, match="same samples in the same order"):
        ALL_MEASURES[name](x, y[:20])


@pytest.mark.parametrize("name", list(ALL_MEASURES))
def test_nan_is_counted_in_the_error(name: str) -> None:
    x, y = _pair(0, n=24)
    y[3, 1] = float("nan")
    y[5, 0] = float("inf")
    with pytest.raises(NonFiniteError, match="1 NaN and 1 infinite"):
        ALL_MEASURES[name](x, y)


@pytest.mark.parametrize(
    "measure",
    [partial(linear_cka, debiased=True), partial(rbf_cka, debiased=True)],
    ids=["linear", "rbf"],
)
def test_debiased_needs_four_samples(measure: Measure) -> None:
    x, y = _pair(0, n=3)
    with pytest.raises(TooFewSamplesError, match="at least 4"):
        measure(x, y)


def test_debiased_streaming_needs_four_samples() -> None:
    x, y = _pair(0, n=3)
    metric = LinearCKA(debiased=True)
    metric.update(x, y)
    with pytest.raises(TooFewSamplesError, match="seen 3 samples but needs at least 4"):
        metric.compute()


def test_check_same_device_names_both_devices() -> None:
    cpu, meta = torch.zeros(3, 2), torch.zeros(3, 2, device="meta")
    with pytest.raises(DeviceMismatchError, match="x on cpu, y on meta"):
        check_same_device(cpu, meta, names=("x", "y"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a second device")
@pytest.mark.parametrize("name", list(ALL_MEASURES))
def test_inputs_on_two_devices_raise(name: str) -> None:
    x, y = _pair(0, n=24)
    with pytest.raises(DeviceMismatchError, match="one device"):
        ALL_MEASURES[name](x, y.cuda())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a second device")
def test_minibatch_metric_on_another_device_raises() -> None:
    x, y = _pair(0, n=24)
    with pytest.raises(DeviceMismatchError, match=r"metric\.to\(device\)"):
        MinibatchCKA().update(x.cuda(), y.cuda())


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"sigma": 0.0}, InvalidOptionError, r"sigma must lie in \(0.0, inf\), got 0.0"),
        ({"sigma": -1.0}, InvalidOptionError, "sigma must lie in"),
        ({"sigma": "wide"}, InputTypeError, "sigma must be a real number"),
        ({"sigma": (1.0, 0.0)}, InvalidOptionError, r"sigma\[1\] must lie in"),
        ({"sigma": (1.0, 2.0, 3.0)}, InvalidOptionError, "pair"),
        ({"sigma": 1.0, "threshold": 0.5}, InvalidOptionError, "either sigma or threshold"),
        ({"threshold": 0.0}, InvalidOptionError, "threshold must lie in"),
        ({"chunk_size": 0}, InvalidOptionError, "chunk_size must be at least 1"),
        ({"chunk_size": 2.5}, InputTypeError, "chunk_size must be an integer"),
    ],
    ids=[
        "sigma-zero",
        "sigma-negative",
        "sigma-string",
        "sigma-pair-zero",
        "sigma-triple",
        "sigma-and-threshold",
        "threshold-zero",
        "block-zero",
        "block-float",
    ],
)
def test_rbf_bad_options(options: dict[str, Any], error: type[Exception], match: str) -> None:
    x, y = _pair(0)
    with pytest.raises(error, match=match):
        rbf_cka(x, y, **options)


def test_rbf_mostly_duplicate_samples_have_no_median_bandwidth() -> None:
    x = torch.zeros(10, 2, dtype=torch.float64)
    x[0] = 1.0  # 18 nonzero distances out of 100: the median is 0
    y = torch.randn(10, 2, generator=_generator(0), dtype=torch.float64)
    with pytest.raises(DegenerateInputError, match="pass sigma= explicitly"):
        rbf_cka(x, y)
    assert 0.0 <= float(rbf_cka(x, y, sigma=1.0)) <= 1.0


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda x, y: minibatch_cka(x, y), InvalidOptionError, "batch_size is needed"),
        (lambda x, y: minibatch_cka(x, y, batch_size=3), InvalidOptionError, "at least 4"),
        (
            lambda x, y: minibatch_cka(x, y, batch_size=10),
            TooFewSamplesError,
            "last minibatch holds 3 rows",
        ),
        (
            lambda x, y: minibatch_cka(x, y, batch_size=50, drop_last=True),
            TooFewSamplesError,
            "fewer than one batch of batch_size=50",
        ),
        (
            lambda x, y: minibatch_cka(x.reshape(1, 43, -1), y.reshape(1, 43, -1), batch_size=4),
            InvalidOptionError,
            "leave batch_size=None",
        ),
        (
            lambda x, y: minibatch_cka([x[:10], x[10:20]], [y[:10]]),
            ShapeError,
            "y ran out of batches after 1",
        ),
        (
            lambda x, y: minibatch_cka([x[:10], x[10:13]], [y[:10], y[10:13]]),
            TooFewSamplesError,
            r"x\[1\] has 3 samples",
        ),
        (lambda x, y: minibatch_cka([], []), TooFewSamplesError, "seen no batch"),
        (lambda x, y: minibatch_cka(x[:, 0], y), ShapeError, "got shape"),
        (lambda x, y: minibatch_cka(3.0, y), InputTypeError, "must be an array or an iterable"),
        (
            lambda x, y: minibatch_cka([x[:10]], [y[:12]]),
            ShapeError,
            "same samples in the same order",
        ),
    ],
    ids=[
        "2d-without-batch-size",
        "batch-size-3",
        "remainder-3",
        "drop-last-everything",
        "3d-with-batch-size",
        "fewer-y-batches",
        "batch-of-3",
        "no-batches",
        "1d",
        "not-iterable",
        "unpaired-batch",
    ],
)
def test_minibatch_bad_input(call: Any, error: type[Exception], match: str) -> None:
    x, y = _pair(0, n=43)
    with pytest.raises(error, match=match):
        call(x, y)


@pytest.mark.filterwarnings("ignore:The ``compute`` method of metric MinibatchCKA")
def test_minibatch_metric_compute_before_update_raises() -> None:
    with pytest.raises(TooFewSamplesError, match=r"call update\(x, y\)"):
        MinibatchCKA().compute()


def test_minibatch_metric_batch_of_three_raises() -> None:
    x, y = _pair(0, n=3)
    with pytest.raises(TooFewSamplesError, match="x has 3 samples"):
        MinibatchCKA().update(x, y)


def test_minibatch_metric_all_constant_batches_raise() -> None:
    metric = MinibatchCKA()
    metric.update(torch.ones(6, 2), torch.randn(6, 2, generator=_generator(0)))
    with pytest.raises(DegenerateInputError, match="not positive for minibatch CKA"):
        metric.compute()
