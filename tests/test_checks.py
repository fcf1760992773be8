"""Input validation: every bad input gives a SubspacesError naming the argument."""

from __future__ import annotations

import math
from typing import Any

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
    NumericRangeError,
    ShapeError,
    TooFewSamplesError,
    as_float_tensor,
    check_choice,
    check_class_count,
    check_device,
    check_fits_in_memory,
    check_flag,
    check_float_dtype,
    check_label_range,
    check_labels,
    check_magnitude,
    check_matrix,
    check_not_constant,
    check_optional_int,
    check_optional_rtol,
    check_paired,
    check_positive_int,
    check_positive_ints,
    check_positive_real,
    check_same_device,
    check_scalar_in_range,
    check_seed,
    seed_generator,
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
    assert check_flag(value, name="center") is value


@pytest.mark.parametrize("value", [1, 0, None, "yes"], ids=repr)
def test_check_flag_refuses_non_booleans(value: object) -> None:
    with pytest.raises(InputTypeError, match=r"center must be True or False, got"):
        check_flag(value, name="center")


def test_check_label_range_accepts_labels_in_range() -> None:
    check_label_range(torch.tensor([0, 2, 1]), 3)


@pytest.mark.parametrize("labels", [[0, 3], [-1, 1]], ids=["above", "negative"])
def test_check_label_range_refuses_labels_out_of_range(labels: list[int]) -> None:
    with pytest.raises(ShapeError, match=r"labels must lie in \[0, 3\) .* 1 entries do not"):
        check_label_range(torch.tensor(labels), 3)


# ---------------------------------------------------------------------------------------
# Class counts and buffers sized from the data or an option (issue 9, item 1)


def test_class_count_is_the_largest_label_plus_one_by_default() -> None:
    assert check_class_count(torch.tensor([0, 2, 1, 2])) == 3


def test_class_count_honors_num_classes_with_empty_classes_allowed() -> None:
    assert check_class_count(torch.tensor([0, 1, 1]), 7, allow_empty=True) == 7


@pytest.mark.parametrize(
    ("labels", "num_classes", "match"),
    [
        ([0, 2, 2, 0], None, r"labels imply 3 classes \(max label 2\) but only 2 of them have "),
        ([0, 1, 2, 1], 5, r"labels imply 5 classes \(num_classes = 5\) but only 3 of them have "),
    ],
    ids=["gap-in-labels", "num_classes-above-the-labels"],
)
def test_class_count_refuses_empty_classes_when_every_class_is_needed(
    labels: list[int], num_classes: int | None, match: str
) -> None:
    with pytest.raises(TooFewSamplesError, match=match):
        check_class_count(torch.tensor(labels), num_classes)


def test_class_count_names_the_first_empty_classes_and_how_many_more() -> None:
    labels = torch.tensor([0, 1, 2, 10**12])
    with pytest.raises(TooFewSamplesError, match=r"empty: \[3, 4, 5, 6, 7, 8, 9, 10, 11, 12\] "):
        check_class_count(labels)


def test_class_count_refuses_a_stray_label_even_when_empty_classes_are_allowed() -> None:
    with pytest.raises(ShapeError, match=r"imply 1000000000001 classes .* only 4 samples"):
        check_class_count(torch.tensor([0, 1, 2, 10**12]), allow_empty=True)


@pytest.mark.parametrize("allow_empty", [False, True], ids=["every-class", "empty-allowed"])
@pytest.mark.parametrize("num_classes", [None, 3], ids=["inferred", "given"])
def test_class_count_refuses_negative_labels(allow_empty: bool, num_classes: int | None) -> None:
    with pytest.raises(ShapeError, match=r"labels must lie in \[0, 3\) .* \(min -1, max 2\)"):
        check_class_count(torch.tensor([0, 1, 2, -1]), num_classes, allow_empty=allow_empty)


def test_class_count_refuses_labels_above_num_classes() -> None:
    with pytest.raises(ShapeError, match=r"labels must lie in \[0, 2\) .* \(min 0, max 2\)"):
        check_class_count(torch.tensor([0, 1, 2]), 2, allow_empty=True)


@pytest.mark.parametrize(
    ("value", "error"), [(0, InvalidOptionError), (2.5, InputTypeError)], ids=["zero", "float"]
)
def test_class_count_validates_num_classes(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"num_classes must"):
        check_class_count(torch.tensor([0, 1]), value)


def test_fits_in_memory_accepts_what_fits() -> None:
    check_fits_in_memory(
        1000, dtype=torch.float64, device="cpu", name="num_classes", value=10, what="a buffer"
    )


def test_fits_in_memory_refuses_more_than_the_device_holds() -> None:
    with pytest.raises(
        InvalidOptionError, match=r"num_classes=10\*\*12 needs .* \(8\.0 PB\), more than the"
    ):
        check_fits_in_memory(
            10**15,
            dtype=torch.float64,
            device="cpu",
            name="num_classes",
            value="10**12",
            what="a (C, 1000) buffer",
        )


@pytest.mark.parametrize("scale", [1e-70, 1e70, 1e200], ids=lambda s: f"{s:g}")
def test_float64_beyond_the_supported_magnitudes_is_refused(scale: float) -> None:
    x = torch.randn(5, 3, dtype=torch.float64) * scale
    match = r"x is torch.float64 with largest magnitude .*rescale x"
    with pytest.raises(NumericRangeError, match=match):
        check_matrix(x)


@pytest.mark.parametrize("scale", [1e-45, 1e-30, 1e30, 3e38], ids=lambda s: f"{s:g}")
def test_float32_at_any_finite_scale_is_accepted(scale: float) -> None:
    x = (torch.tensor([[1.0, -0.5], [0.25, 0.0]], dtype=torch.float64) * scale).float()
    assert check_matrix(x) is x


def test_float64_zeros_and_ordinary_scales_are_accepted() -> None:
    assert check_magnitude(torch.zeros(2, 2, dtype=torch.float64)).shape == (2, 2)
    assert check_magnitude(torch.full((2, 2), 1e60, dtype=torch.float64)).shape == (2, 2)


# ---------------------------------------------------------------------------------------
# Inputs that hold no ordinary array data (issue 9, item 8)


def test_meta_tensor_is_refused_before_any_value_is_read() -> None:
    with pytest.raises(InputTypeError, match=r"x is a tensor on the meta device, .*no data"):
        check_matrix(torch.ones(5, 3, device="meta"))


def test_meta_labels_are_refused_before_any_value_is_read() -> None:
    with pytest.raises(InputTypeError, match=r"labels is a tensor on the meta device"):
        check_labels(torch.zeros(5, dtype=torch.long, device="meta"), 5)


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.ones(5, 3).to_sparse(),
        lambda: torch.ones(5, 3).to_sparse_csr(),
        lambda: torch.nested.nested_tensor([torch.ones(2, 3), torch.ones(4, 3)]),
    ],
    ids=["sparse-coo", "sparse-csr", "nested"],
)
@pytest.mark.filterwarnings("ignore:.*in (beta|prototype) (state|stage):UserWarning")
def test_sparse_and_nested_tensors_are_refused(make: Any) -> None:
    with pytest.raises(InputTypeError, match=r"x is a .* tensor; subspaces needs a dense"):
        check_matrix(make())


@pytest.mark.parametrize(
    "array",
    [
        np.zeros(5, dtype=[("a", "f4"), ("b", "f4")]),
        np.array([["a", "b"], ["c", "d"]]),
        np.array([[b"a"]]),
        np.zeros((2, 2), dtype="datetime64[s]"),
    ],
    ids=["structured", "str", "bytes", "datetime"],
)
def test_non_numeric_numpy_dtypes_are_refused(array: np.ndarray) -> None:
    with pytest.raises(InputTypeError, match=r"x is a numpy array of dtype .*; pass a numeric"):
        check_matrix(array)


def test_masked_array_with_masked_entries_is_refused() -> None:
    a = np.ma.masked_array(np.ones((4, 2)), mask=[[1, 0], [0, 0], [0, 0], [0, 0]])
    with pytest.raises(InputTypeError, match=r"x is a numpy masked array with 1 masked entr"):
        check_matrix(a)


def test_masked_array_without_masked_entries_is_its_data() -> None:
    a = np.ma.masked_array(np.arange(8.0).reshape(4, 2), mask=False)
    torch.testing.assert_close(
        check_matrix(a), torch.arange(8.0, dtype=torch.float64).reshape(4, 2)
    )


def test_longdouble_becomes_float64() -> None:
    a = np.arange(8, dtype=np.longdouble).reshape(4, 2)
    assert check_matrix(a).dtype == torch.float64


@pytest.mark.filterwarnings("ignore:.*quantized tensor creation.*deprecated:UserWarning")
def test_quantized_tensor_is_dequantized() -> None:
    q = torch.quantize_per_tensor(torch.arange(8.0).reshape(4, 2), 0.5, 0, torch.quint8)
    torch.testing.assert_close(check_matrix(q), torch.arange(8.0).reshape(4, 2))


def test_pandas_like_object_is_refused_with_a_conversion_hint() -> None:
    class Frame:
        def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
            return np.ones((3, 2))

    with pytest.raises(InputTypeError, match=r"got Frame\. Convert it with .*np\.asarray"):
        check_matrix(Frame())


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.arange(12.0).reshape(3, 4).T,
        lambda: torch.arange(4.0)[None].expand(3, 4),
        lambda: torch.arange(24.0).reshape(6, 4)[::2],
    ],
    ids=["transposed", "zero-stride", "strided-rows"],
)
def test_non_contiguous_tensors_keep_their_values(make: Any) -> None:
    t = make()
    torch.testing.assert_close(check_matrix(t), t.contiguous())


@pytest.mark.parametrize(
    "dtype", [torch.uint8, torch.bool, torch.int16, torch.int32, torch.uint32], ids=str
)
def test_integer_and_boolean_tensors_become_float32(dtype: torch.dtype) -> None:
    t = check_matrix(torch.ones(3, 2, dtype=dtype))
    assert t.dtype == torch.float32 and bool((t == 1).all())


# ---------------------------------------------------------------------------------------
# One validator per kind of option (issue 9, item 7)


@pytest.mark.parametrize(
    "value", [3, np.int64(3), np.int32(3), np.uint8(3)], ids=["int", "int64", "int32", "uint8"]
)
def test_positive_int_accepts_python_and_numpy_integers(value: object) -> None:
    assert check_positive_int(value, name="k") == 3


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (-1, InvalidOptionError, r"k must be at least 1, got -1"),
        (np.bool_(True), InputTypeError, r"k must be an integer, got bool .*at least 1"),
        ("3", InputTypeError, r"k must be an integer, got str \('3'\); pass an integer at least"),
        (None, InputTypeError, r"k must be an integer, got NoneType"),
        (float("nan"), InputTypeError, r"k must be an integer, got float"),
        (7, InvalidOptionError, r"k must be at most 5, got 7"),
    ],
    ids=["negative", "numpy-bool", "string", "None", "nan", "above-maximum"],
)
def test_positive_int_refuses(value: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        check_positive_int(value, name="k", maximum=5 if value == 7 else None)


def test_optional_int_passes_none_and_checks_the_rest() -> None:
    assert check_optional_int(None, name="n_components") is None
    assert check_optional_int(np.int64(4), name="n_components") == 4
    with pytest.raises(InvalidOptionError, match=r"n_components must be at least 1, got 0"):
        check_optional_int(0, name="n_components")


@pytest.mark.parametrize(
    "value",
    [float("inf"), float("-inf"), float("nan"), 10**400],
    ids=["inf", "-inf", "nan", "1e400"],
)
def test_scalar_in_range_refuses_non_finite_values_whatever_the_bounds(value: object) -> None:
    with pytest.raises(InvalidOptionError, match=r"sigma must lie in \(0.0, inf\), got"):
        check_scalar_in_range(
            value, name="sigma", low=0.0, high=math.inf, low_open=True, high_open=True
        )


@pytest.mark.parametrize("value", [True, "0.5", None, [0.5]], ids=["bool", "str", "None", "list"])
def test_scalar_in_range_refuses_non_numbers_naming_the_interval(value: object) -> None:
    with pytest.raises(InputTypeError, match=r"alpha must be a real number in \[0, 1\], got"):
        check_scalar_in_range(value, name="alpha", low=0, high=1)


def test_scalar_in_range_accepts_numpy_numbers_and_appends_the_hint() -> None:
    assert check_scalar_in_range(np.float32(0.5), name="alpha", low=0, high=1) == 0.5
    with pytest.raises(InvalidOptionError, match=r"got 2\. Use alpha=1 for"):
        check_scalar_in_range(2, name="alpha", low=0, high=1, hint="Use alpha=1 for ...")


def test_positive_real_states_its_interval() -> None:
    assert check_positive_real(1e-300, name="sigma") == 1e-300
    assert check_positive_real(0, name="ridge", allow_zero=True) == 0.0
    with pytest.raises(InvalidOptionError, match=r"sigma must lie in \(0.0, inf\), got 0"):
        check_positive_real(0, name="sigma")


@pytest.mark.parametrize(
    "value", [None, 3, ["a"], np.array(["a"])], ids=["None", "int", "list", "array"]
)
def test_choice_refuses_non_strings_listing_the_choices(value: object) -> None:
    with pytest.raises(InvalidOptionError, match=r"metric must be one of 'a', 'b'; got"):
        check_choice(value, name="metric", choices=("a", "b"))


def test_check_flag_accepts_numpy_booleans() -> None:
    assert check_flag(np.bool_(True), name="center") is True


def test_seed_generator_turns_a_seed_into_a_generator() -> None:
    g = torch.Generator()
    assert seed_generator(g) is g and seed_generator(None) is None
    a = torch.rand(3, generator=seed_generator(5))
    b = torch.rand(3, generator=seed_generator(np.int64(5)))
    assert torch.equal(a, b)
    assert seed_generator(5, device="cpu").device == torch.device("cpu")
    with pytest.raises(InputTypeError, match=r"seed must be an integer .* got str"):
        seed_generator("5")
    with pytest.raises(InvalidOptionError, match=r"my_seed must be at least 0"):
        seed_generator(-1, name="my_seed")


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (-1, InvalidOptionError),
        (2**63, InvalidOptionError),
        (2.5, InputTypeError),
        (True, InputTypeError),
    ],
    ids=["negative", "2**63", "float", "bool"],
)
def test_seed_refuses_what_torch_cannot_seed(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"seed must be"):
        check_seed(value)


def test_seed_accepts_ints_generators_and_none() -> None:
    g = torch.Generator()
    assert check_seed(np.int64(7)) == 7 and check_seed(g) is g and check_seed(None) is None


@pytest.mark.parametrize("value", [torch.int64, "float32", 3], ids=["int64", "str", "int"])
def test_float_dtype_refuses_what_is_not_a_floating_dtype(value: object) -> None:
    with pytest.raises(InputTypeError, match=r"dtype must be a floating torch.dtype"):
        check_float_dtype(value)


def test_device_refuses_unknown_devices() -> None:
    assert check_device("cpu") == torch.device("cpu")
    with pytest.raises(InvalidOptionError, match=r"device='nope' is not a device torch knows"):
        check_device("nope")
    with pytest.raises(InputTypeError, match=r"device must be a torch.device"):
        check_device(3)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("15", r"ks must be a sequence of integers"),
        ((), r"ks must hold at least one"),
        ((1, 0), r"ks\[1\] must be at least 1"),
    ],
    ids=["string", "empty", "zero-entry"],
)
def test_positive_ints_checks_every_entry(value: object, message: str) -> None:
    with pytest.raises(SubspacesError, match=message):
        check_positive_ints(value, name="ks")


def test_every_error_class_is_exported_by_the_package() -> None:
    import subspaces
    from subspaces import _checks

    errors = {
        name
        for name, value in vars(_checks).items()
        if isinstance(value, type) and issubclass(value, _checks.SubspacesError)
    }
    assert errors <= set(subspaces.__all__)
