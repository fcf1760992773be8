"""Input validation: every bad input gives a SubspacesError naming the argument."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from subspaces import SubspacesError
from subspaces._checks import (
    DegenerateInputError,
    DeviceMismatchError,
    InputTypeError,
    InvalidOptionError,
    NonFiniteError,
    ShapeError,
    TooFewSamplesError,
    as_float_tensor,
    check_choice,
    check_flag,
    check_label_range,
    check_labels,
    check_matrix,
    check_not_constant,
    check_optional_rtol,
    check_paired,
    check_positive_int,
    check_same_device,
    check_scalar_in_range,
)


def test_numpy_is_accepted_and_converted_once() -> None:
    a = np.arange(6, dtype=np.float64).reshape(3, 2)
    t = check_matrix(a)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float64
    assert np.shares_memory(a, t.numpy())


def test_read_only_numpy_is_copied_not_refused() -> None:
    a = np.ones((3, 2), dtype=np.float32)
    a.setflags(write=False)
    assert check_matrix(a).shape == (3, 2)


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        (torch.float16, torch.float32),
        (torch.bfloat16, torch.float32),
        (torch.int64, torch.float32),
        (torch.float32, torch.float32),
        (torch.float64, torch.float64),
    ],
    ids=["float16", "bfloat16", "int64", "float32", "float64"],
)
def test_dtype_promotion(dtype: torch.dtype, expected: torch.dtype) -> None:
    assert as_float_tensor(torch.ones(2, 2, dtype=dtype)).dtype == expected


def test_numpy_float16_is_promoted() -> None:
    assert as_float_tensor(np.ones((2, 2), dtype=np.float16)).dtype == torch.float32


def test_list_is_refused_with_a_hint() -> None:
    with pytest.raises(
        InputTypeError, match=r"x must be a torch.Tensor or a numpy.ndarray, got list"
    ):
        check_matrix([[1.0, 2.0]])


def test_object_array_is_refused() -> None:
    with pytest.raises(InputTypeError, match="dtype object"):
        check_matrix(np.array([[1, "a"]], dtype=object))


def test_complex_is_refused() -> None:
    with pytest.raises(InputTypeError, match="complex"):
        check_matrix(torch.ones(3, 2, dtype=torch.complex64))


def test_1d_input_suggests_reshape() -> None:
    with pytest.raises(
        ShapeError, match=r"got 1-D with shape \(5,\)\. Reshape it with x.reshape\(-1, 1\)"
    ):
        check_matrix(torch.ones(5))


def test_3d_input_suggests_flatten() -> None:
    with pytest.raises(ShapeError, match=r"got 3-D with shape \(4, 2, 3\)\. Flatten"):
        check_matrix(torch.ones(4, 2, 3))


def test_zero_features_refused() -> None:
    with pytest.raises(ShapeError, match="at least one feature"):
        check_matrix(torch.ones(4, 0))


def test_too_few_samples_names_the_minimum() -> None:
    with pytest.raises(TooFewSamplesError, match=r"y has 3 samples \(shape \(3, 2\)\).*at least 4"):
        check_matrix(torch.ones(3, 2), name="y", min_samples=4)


def test_nonfinite_entries_are_counted() -> None:
    x = torch.ones(5, 3)
    x[0, 0] = float("nan")
    x[1, 1] = float("nan")
    x[2, 2] = float("inf")
    with pytest.raises(NonFiniteError, match=r"x contains 2 NaN and 1 infinite entries out of 15"):
        check_matrix(x)


def test_different_sample_counts() -> None:
    with pytest.raises(ShapeError, match=r"x has 5 rows \(shape \(5, 2\)\) and y has 4"):
        check_paired(torch.ones(5, 2), torch.ones(4, 3))


def test_same_features_required() -> None:
    with pytest.raises(ShapeError, match="same number of features, got 2 and 3"):
        check_paired(torch.randn(5, 2), torch.randn(5, 3), same_features=True)


def test_paired_promotes_to_common_dtype() -> None:
    x, y = check_paired(torch.randn(4, 2), torch.randn(4, 3, dtype=torch.float64))
    assert x.dtype == y.dtype == torch.float64


def test_device_mismatch_names_both_devices() -> None:
    with pytest.raises(DeviceMismatchError, match=r"got x on cpu, y on meta"):
        check_same_device(torch.ones(2), torch.ones(2, device="meta"), names=("x", "y"))


def test_every_error_is_a_subspaces_error_and_a_builtin() -> None:
    with pytest.raises(SubspacesError):
        check_matrix(torch.ones(5))
    with pytest.raises(ValueError):
        check_matrix(torch.ones(5))
    with pytest.raises(TypeError):
        check_matrix("not an array")


@pytest.mark.parametrize(
    ("labels", "error", "message"),
    [
        (
            torch.zeros(4, dtype=torch.long),
            ShapeError,
            "labels has 4 entries but the representation has 5",
        ),
        (
            torch.zeros(5, 1, dtype=torch.long),
            ShapeError,
            r"1-D with one entry per sample, got shape \(5, 1\)",
        ),
        (torch.full((5,), 0.5), InputTypeError, "integer class indices"),
        (torch.zeros(5, dtype=torch.bool), InputTypeError, "integer class indices"),
        ([0, 1, 2, 3, 4], InputTypeError, "got list"),
    ],
    ids=["wrong-length", "2d", "fractional", "bool", "list"],
)
def test_bad_labels(labels: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        check_labels(labels, 5)


def test_integer_valued_float_labels_are_accepted() -> None:
    assert check_labels(np.array([0.0, 1.0, 2.0]), 3).dtype == torch.long


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (0, InvalidOptionError, "k must be at least 1, got 0"),
        (2.5, InputTypeError, "k must be an integer"),
        (True, InputTypeError, "k must be an integer"),
    ],
    ids=["zero", "float", "bool"],
)
def test_positive_int(value: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        check_positive_int(value, name="k")


def test_scalar_in_range() -> None:
    assert check_scalar_in_range(0.5, name="alpha", low=0, high=1) == 0.5
    with pytest.raises(InvalidOptionError, match=r"alpha must lie in \[0, 1\], got 1.5"):
        check_scalar_in_range(1.5, name="alpha", low=0, high=1)
    with pytest.raises(InvalidOptionError, match=r"must lie in \(0, 1\]"):
        check_scalar_in_range(0.0, name="keep", low=0, high=1, low_open=True)
    with pytest.raises(InvalidOptionError):
        check_scalar_in_range(float("nan"), name="alpha", low=0, high=1)


def test_choice() -> None:
    assert check_choice("a", name="metric", choices=("a", "b")) == "a"
    with pytest.raises(InvalidOptionError, match=r"metric must be one of 'a', 'b'; got 'c'"):
        check_choice("c", name="metric", choices=("a", "b"))


def test_negative_strides_are_accepted() -> None:
    a = np.arange(12, dtype=np.float32).reshape(6, 2)[::-1]
    torch.testing.assert_close(check_matrix(a), torch.tensor(a.copy()))


def test_optional_rtol() -> None:
    assert check_optional_rtol(None) is None
    assert check_optional_rtol(1e-6) == 1e-6
    with pytest.raises(InvalidOptionError, match=r"rtol must lie in \[0.0, 1.0\)"):
        check_optional_rtol(1.0)


def test_not_constant() -> None:
    check_not_constant(torch.randn(4, 2), name="x", measure="CKA")
    with pytest.raises(
        DegenerateInputError, match=r"x has zero variance \(all 4 samples .*so CKA is"
    ):
        check_not_constant(torch.ones(4, 2), name="x", measure="CKA")


@pytest.mark.parametrize("value", [True, False])
def test_check_flag_returns_booleans(value: bool) -> None:
    assert check_flag(value, name="centre") is value


@pytest.mark.parametrize("value", [1, 0, None, "yes", np.bool_(True)], ids=repr)
def test_check_flag_refuses_non_booleans(value: object) -> None:
    with pytest.raises(InputTypeError, match=r"centre must be True or False, got"):
        check_flag(value, name="centre")


def test_check_label_range_accepts_labels_in_range() -> None:
    check_label_range(torch.tensor([0, 2, 1]), 3)


@pytest.mark.parametrize("labels", [[0, 3], [-1, 1]], ids=["above", "negative"])
def test_check_label_range_refuses_labels_out_of_range(labels: list[int]) -> None:
    with pytest.raises(ShapeError, match=r"labels must lie in \[0, 3\) .* 1 entries do not"):
        check_label_range(torch.tensor(labels), 3)
