"""Tests for :mod:`rmtcompress._validation`."""

from __future__ import annotations

import numpy as np
import pytest

from rmtcompress._utils._validation import (
    as_generator,
    check_int,
    check_positive,
    check_sparsity,
    check_widths,
    validate_X,
    validate_Xy,
)

# ---------------------------------------------------------------------------------------------- validate_X


def test_validate_X_converts_to_float64_c_contiguous() -> None:
    X = np.arange(12, dtype=np.int32).reshape(3, 4).T  # Fortran-ordered int view
    out = validate_X(X)
    assert out.dtype == np.float64
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, X)


def test_validate_X_no_copy_when_already_ok() -> None:
    X = np.ones((2, 3))
    assert validate_X(X) is X


def test_validate_X_accepts_nested_lists() -> None:
    assert validate_X([[1, 2], [3, 4]]).shape == (2, 2)


@pytest.mark.parametrize("bad", [np.ones(3), np.ones((2, 2, 2)), np.float64(1.0)])
def test_validate_X_rejects_wrong_ndim(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"X must be a 2-D array"):
        validate_X(bad)


@pytest.mark.parametrize("shape", [(0, 3), (3, 0)])
def test_validate_X_rejects_empty(shape: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match=r"non-empty"):
        validate_X(np.ones(shape))


def test_validate_X_reports_nan_and_inf_counts() -> None:
    X = np.ones((3, 3))
    X[0, 0] = np.nan
    X[1, 1] = np.nan
    X[2, 2] = -np.inf
    with pytest.raises(ValueError, match=r"found 2 NaN and 1 inf entries out of 9"):
        validate_X(X, name="features")


def test_validate_X_uses_name() -> None:
    with pytest.raises(ValueError, match=r"^X_train must be a 2-D"):
        validate_X(np.ones(4), name="X_train")


@pytest.mark.parametrize(
    "bad", [np.array([["a", "b"]]), np.array([[1 + 1j, 2]]), np.array([[object(), 1]], dtype=object)]
)
def test_validate_X_rejects_non_real(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"must contain real numbers"):
        validate_X(bad)


def test_validate_X_rejects_ragged_lists() -> None:
    with pytest.raises(ValueError, match=r"could not be converted"):
        validate_X([[1, 2], [3]])


# --------------------------------------------------------------------------------------------- validate_Xy


def test_validate_Xy_ok_and_casts_whole_floats() -> None:
    X, y = validate_Xy(np.zeros((3, 2)), np.array([0.0, 1.0, 2.0]))
    assert X.dtype == np.float64
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, [0, 1, 2])


def test_validate_Xy_accepts_bool_and_uint_labels() -> None:
    _, y = validate_Xy(np.zeros((2, 2)), np.array([True, False]))
    np.testing.assert_array_equal(y, [1, 0])
    _, y = validate_Xy(np.zeros((2, 2)), np.array([3, 4], dtype=np.uint8))
    assert y.dtype == np.int64


def test_validate_Xy_length_mismatch_reports_both_numbers() -> None:
    with pytest.raises(ValueError, match=r"y has 4 labels but X has 3 rows"):
        validate_Xy(np.zeros((3, 2)), np.zeros(4, dtype=int))


def test_validate_Xy_rejects_fractional_labels() -> None:
    with pytest.raises(
        ValueError, match=r"integer-valued; 1 entries are not whole numbers \(first at index 1"
    ):
        validate_Xy(np.zeros((3, 2)), np.array([0.0, 0.5, 1.0]))


def test_validate_Xy_rejects_nan_labels() -> None:
    with pytest.raises(ValueError, match=r"y must be finite"):
        validate_Xy(np.zeros((2, 2)), np.array([0.0, np.nan]))


def test_validate_Xy_rejects_2d_and_string_labels() -> None:
    with pytest.raises(ValueError, match=r"y must be a 1-D array"):
        validate_Xy(np.zeros((2, 2)), np.zeros((2, 1), dtype=int))
    with pytest.raises(ValueError, match=r"integer labels; got an array of dtype <U1"):
        validate_Xy(np.zeros((2, 2)), np.array(["a", "b"]))


def test_validate_Xy_min_per_class() -> None:
    X = np.zeros((5, 2))
    y = np.array([0, 0, 1, 2, 2])
    validate_Xy(X, y)  # no check by default
    validate_Xy(X, y, min_per_class=1)
    with pytest.raises(ValueError, match=r"at least 2 samples; class 1 has 1"):
        validate_Xy(X, y, min_per_class=2)
    with pytest.raises(ValueError, match=r"class 0 has 2, class 1 has 1, class 2 has 2"):
        validate_Xy(X, y, min_per_class=3)


def test_validate_Xy_min_classes() -> None:
    X = np.zeros((4, 2))
    validate_Xy(X, np.array([7, 7, 7, 7]))  # no check by default
    validate_Xy(X, np.array([0, 1, 1, 1]), min_classes=2)
    with pytest.raises(
        ValueError, match=r"labels must contain at least 2 classes .* got only class 7 \(4 samples\)"
    ):
        validate_Xy(X, np.array([7, 7, 7, 7]), min_classes=2, y_name="labels")
    with pytest.raises(ValueError, match=r"at least 3 classes .* got 2 classes \(0, 1\)"):
        validate_Xy(X, np.array([0, 1, 1, 1]), min_classes=3)


# ----------------------------------------------------------------------------------------------- scalars


def test_check_positive() -> None:
    assert check_positive(3, "n") == 3
    assert check_positive(0.5, "lr") == 0.5
    for bad in (0, -1, -0.5):
        with pytest.raises(ValueError, match=r"lr must be > 0"):
            check_positive(bad, "lr")
    for nonfinite in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"lr must be finite"):
            check_positive(nonfinite, "lr")
    with pytest.raises(ValueError, match=r"lr must be a positive number"):
        check_positive(True, "lr")
    with pytest.raises(ValueError, match=r"lr must be a positive number"):
        check_positive("1", "lr")  # type: ignore[type-var]


def test_check_sparsity() -> None:
    assert check_sparsity(0) == 0.0
    assert check_sparsity(0.9) == 0.9
    assert isinstance(check_sparsity(0), float)
    for bad in (1, 1.0, -0.1, 2.0):
        with pytest.raises(ValueError, match=r"0 <= eps < 1"):
            check_sparsity(bad)
    with pytest.raises(ValueError, match=r"finite"):
        check_sparsity(float("nan"))
    with pytest.raises(ValueError, match=r"real number"):
        check_sparsity("0.5")  # type: ignore[arg-type]


def test_check_widths() -> None:
    assert check_widths([10, np.int64(5)]) == (10, 5)
    assert check_widths(range(1, 4)) == (1, 2, 3)
    with pytest.raises(ValueError, match=r"widths\[2\] must be a positive integer; got 0"):
        check_widths([3, 4, 0])
    with pytest.raises(ValueError, match=r"widths\[1\] must be a positive integer; got -2"):
        check_widths((3, -2))
    with pytest.raises(ValueError, match=r"widths\[0\] must be an integer; got 2.5"):
        check_widths([2.5])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"widths\[0\] must be an integer"):
        check_widths([True])
    with pytest.raises(ValueError, match=r"empty"):
        check_widths([])
    with pytest.raises(ValueError, match=r"sequence of positive integers"):
        check_widths(5)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ seeds


def test_as_generator_int_is_reproducible() -> None:
    a = as_generator(123).standard_normal(5)
    b = as_generator(np.int64(123)).standard_normal(5)
    np.testing.assert_array_equal(a, b)


def test_as_generator_passes_generator_through() -> None:
    g = np.random.default_rng(0)
    assert as_generator(g) is g


def test_as_generator_accepts_seed_sequence() -> None:
    ss = np.random.SeedSequence(7)
    a = as_generator(ss).random(3)
    b = np.random.default_rng(np.random.SeedSequence(7)).random(3)
    np.testing.assert_array_equal(a, b)


def test_as_generator_rejects_none_and_bad_types() -> None:
    with pytest.raises(ValueError, match=r"seed=None is not accepted"):
        as_generator(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"non-negative"):
        as_generator(-1)
    with pytest.raises(ValueError, match=r"got float"):
        as_generator(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"got bool"):
        as_generator(True)


# ---------------------------------------------------------------------------------------------- check_int


def test_check_int_accepts_python_and_numpy_integers() -> None:
    assert check_int(3, "n") == 3
    out = check_int(np.int64(4), "n", 0, 4)
    assert out == 4 and type(out) is int
    assert check_int(-7, "label", None) == -7


@pytest.mark.parametrize("bad", [2.0, 2.5, True, np.bool_(True), "3", None])
def test_check_int_refuses_non_integers(bad: object) -> None:
    with pytest.raises(ValueError, match=r"n must be an integer >= 1; got"):
        check_int(bad, "n")


def test_check_int_range_messages() -> None:
    with pytest.raises(ValueError, match=r"^n must be >= 1; got 0$"):
        check_int(0, "n")
    with pytest.raises(ValueError, match=r"^k must be in \[2, 256\]; got 257$"):
        check_int(257, "k", 2, 256)
    with pytest.raises(ValueError, match=r"^k must be an integer in \[2, 256\]; got float 2.5$"):
        check_int(2.5, "k", 2, 256)
    with pytest.raises(ValueError, match=r"^m must be <= 3; got 4$"):
        check_int(4, "m", None, 3)
    with pytest.raises(TypeError, match=r"^label must be an integer; got str 'a'$"):
        check_int("a", "label", None)
