"""Small argument-validation helpers shared across :mod:`rmtcompress`.

Every helper raises :class:`ValueError` (or :class:`TypeError` for an argument of a
completely wrong kind) with a message that names the offending argument and says what
was expected and what was received, so that user errors never surface as an opaque
traceback from deep inside NumPy.

Conventions enforced here:

* data matrices ``X`` are ``float64`` C-contiguous arrays of shape ``(n, p)``
  (rows are samples);
* label vectors ``y`` are ``int64`` arrays of shape ``(n,)``;
* randomness is always driven by an explicit seed (``int``,
  :class:`numpy.random.SeedSequence` or :class:`numpy.random.Generator`); ``None``
  is refused so that every run is reproducible.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidParameterError

__all__ = [
    "SeedLike",
    "as_generator",
    "check_positive",
    "check_sparsity",
    "check_widths",
    "validate_X",
    "validate_Xy",
]

SeedLike = int | np.integer[Any] | np.random.SeedSequence | np.random.Generator
"""Accepted types for an explicit random seed."""

_Num = TypeVar("_Num", int, float)


def _describe(value: object) -> str:
    """Short ``repr`` of a value for an error message (truncated to 80 characters)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def validate_X(X: ArrayLike, name: str = "X") -> NDArray[np.float64]:
    """Check a data matrix and return it as a float64 C-contiguous array.

    Args:
        X: Array-like of shape ``(n, p)`` with real numeric (or boolean) entries.
        name: Name of the argument, used in error messages.

    Returns:
        ``float64`` C-contiguous array of shape ``(n, p)``. A copy is made only when
        the input is not already ``float64`` and C-contiguous.

    Raises:
        ValueError: If ``X`` is not 2-D, is empty (``n == 0`` or ``p == 0``), is not
            real-numeric (strings, objects, complex numbers), or contains NaN/inf
            entries (the message reports how many of each).
    """
    try:
        arr = np.asarray(X)
    except (ValueError, TypeError) as exc:  # ragged nested lists, etc.
        raise InvalidParameterError(f"{name} could not be converted to a numeric array: {exc}") from exc
    if arr.dtype.kind not in "biuf":
        raise InvalidParameterError(
            f"{name} must contain real numbers; got an array of dtype {arr.dtype} (kind {arr.dtype.kind!r})"
        )
    if arr.ndim != 2:
        raise InvalidParameterError(
            f"{name} must be a 2-D array of shape (n, p); got {arr.ndim}-D shape {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidParameterError(f"{name} must be non-empty; got shape {arr.shape}")
    out = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.isfinite(out).all():
        n_nan = int(np.isnan(out).sum())
        n_inf = int(np.isinf(out).sum())
        raise InvalidParameterError(
            f"{name} must be finite; found {n_nan} NaN and {n_inf} inf entries out of {out.size}"
        )
    return out


def _validate_y(y: ArrayLike, name: str = "y") -> NDArray[np.int64]:
    """Check a label vector and return it as an int64 array of shape ``(n,)``."""
    try:
        arr = np.asarray(y)
    except (ValueError, TypeError) as exc:
        raise InvalidParameterError(f"{name} could not be converted to an integer array: {exc}") from exc
    if arr.ndim != 1:
        raise InvalidParameterError(
            f"{name} must be a 1-D array of labels; got {arr.ndim}-D shape {arr.shape}"
        )
    kind = arr.dtype.kind
    if kind in "biu":
        if kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
            raise InvalidParameterError(f"{name} contains labels too large for int64 (max {arr.max()})")
        return np.ascontiguousarray(arr, dtype=np.int64)
    if kind == "f":
        finite = np.isfinite(arr)
        if not finite.all():
            raise InvalidParameterError(f"{name} must be finite; found {int((~finite).sum())} NaN/inf labels")
        whole = arr == np.round(arr)
        if not whole.all():
            bad = int(np.flatnonzero(~whole)[0])
            raise InvalidParameterError(
                f"{name} must be integer-valued; {int((~whole).sum())} entries are not whole numbers "
                f"(first at index {bad}: {arr[bad]!r})"
            )
        if arr.size and np.abs(arr).max() > 2.0**53:
            raise InvalidParameterError(f"{name} contains float labels too large to be represented exactly")
        return np.ascontiguousarray(arr, dtype=np.int64)
    raise InvalidParameterError(f"{name} must contain integer labels; got an array of dtype {arr.dtype}")


def validate_Xy(
    X: ArrayLike,
    y: ArrayLike,
    *,
    min_per_class: int | None = None,
    min_classes: int | None = None,
    X_name: str = "X",
    y_name: str = "y",
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Check a data matrix together with its labels.

    Args:
        X: Array-like of shape ``(n, p)``; see :func:`validate_X`.
        y: Array-like of shape ``(n,)`` with integer labels. Floating-point labels that
            are whole numbers (e.g. ``1.0``) are accepted and cast to ``int64``.
        min_per_class: If given, every class present in ``y`` must have at least this
            many samples (e.g. ``2`` when class covariances are estimated). ``None``
            (default) disables the check.
        min_classes: If given, ``y`` must contain at least this many distinct classes (``2`` to train a
            classifier). ``None`` (default) disables the check.
        X_name: Name used for ``X`` in error messages.
        y_name: Name used for ``y`` in error messages.

    Returns:
        ``(X, y)`` with ``X`` a float64 C-contiguous array of shape ``(n, p)`` and ``y``
        an int64 array of shape ``(n,)``.

    Raises:
        ValueError: On any problem with ``X`` (see :func:`validate_X`), if ``y`` is not
            1-D / not integer-valued / not finite, if ``len(y) != n`` (both numbers are
            reported), or if a class has fewer than ``min_per_class`` samples (the class
            and its count are reported), or if ``y`` has fewer than ``min_classes`` distinct classes.
    """
    X_arr = validate_X(X, name=X_name)
    y_arr = _validate_y(y, name=y_name)
    if y_arr.shape[0] != X_arr.shape[0]:
        raise InvalidParameterError(
            f"{y_name} has {y_arr.shape[0]} labels but {X_name} has {X_arr.shape[0]} rows; they must match"
        )
    if min_per_class is not None:
        min_per_class = check_positive(int(min_per_class), "min_per_class")
        classes, counts = np.unique(y_arr, return_counts=True)
        too_small = counts < min_per_class
        if too_small.any():
            detail = ", ".join(
                f"class {int(c)} has {int(k)}"
                for c, k in zip(classes[too_small], counts[too_small], strict=True)
            )
            raise InvalidParameterError(f"every class needs at least {min_per_class} samples; {detail}")
    if min_classes is not None:
        min_classes = check_positive(int(min_classes), "min_classes")
        present = np.unique(y_arr)
        if present.size < min_classes:
            found = (
                f"only class {int(present[0])}"
                if present.size == 1
                else f"{present.size} classes ({', '.join(str(int(c)) for c in present)})"
            )
            raise InvalidParameterError(
                f"{y_name} must contain at least {min_classes} classes to train a classifier; got {found} "
                f"({y_arr.size} samples)"
            )
    return X_arr, y_arr


def check_positive(value: _Num, name: str) -> _Num:
    """Check that a scalar is a finite, strictly positive real number.

    Args:
        value: The number to check (``int`` or ``float``; ``bool`` is refused).
        name: Name of the argument, used in error messages.

    Returns:
        ``value`` unchanged.

    Raises:
        ValueError: If ``value`` is not a real number, is a ``bool``, is NaN/inf, or is
            ``<= 0``.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise InvalidParameterError(f"{name} must be a positive number; got {_describe(value)}")
    if not math.isfinite(float(value)):
        raise InvalidParameterError(f"{name} must be finite; got {value!r}")
    if value <= 0:
        raise InvalidParameterError(f"{name} must be > 0; got {value!r}")
    return value


def check_int(value: object, name: str, minimum: int | None = 1, maximum: int | None = None) -> int:
    """Check that ``value`` is an integer in ``[minimum, maximum]`` and return it as ``int``.

    Python and NumPy integers are accepted; ``bool`` and floats (even whole ones) are refused.

    Args:
        value: The value to check.
        name: Name of the argument, used in error messages.
        minimum: Smallest accepted value (``None``: no lower bound).
        maximum: Largest accepted value (``None``: no upper bound).

    Returns:
        ``int(value)``.

    Raises:
        InvalidParameterError: ``"<name> must be an integer …; got …"`` for a non-integer, ``"<name> must be >=
            <minimum>; got …"`` or ``"<name> must be in [<minimum>, <maximum>]; got …"`` for one out of range.
    """
    if minimum is None:
        span = "" if maximum is None else f" <= {maximum}"
    else:
        span = f" >= {minimum}" if maximum is None else f" in [{minimum}, {maximum}]"
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise InvalidParameterError(
            f"{name} must be an integer{span}; got {type(value).__name__} {_describe(value)}"
        )
    v = int(value)
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        raise InvalidParameterError(f"{name} must be{span}; got {v}")
    return v


def check_sparsity(eps: float) -> float:
    """Check a sparsity level ``ε`` (fraction of entries set to zero).

    Args:
        eps: Sparsity level; must satisfy ``0 <= eps < 1`` and be finite.

    Returns:
        ``eps`` as a Python ``float``.

    Raises:
        ValueError: If ``eps`` is not a real number, is NaN/inf, or lies outside ``[0, 1)``.
    """
    if isinstance(eps, bool | np.bool_) or not isinstance(eps, numbers.Real):
        raise InvalidParameterError(f"sparsity eps must be a real number in [0, 1); got {_describe(eps)}")
    value = float(eps)
    if not math.isfinite(value):
        raise InvalidParameterError(f"sparsity eps must be finite; got {eps!r}")
    if not 0.0 <= value < 1.0:
        raise InvalidParameterError(f"sparsity eps must satisfy 0 <= eps < 1; got {eps!r}")
    return value


def check_widths(widths: Iterable[int | np.integer[Any]]) -> tuple[int, ...]:
    """Check a sequence of layer widths.

    Args:
        widths: Non-empty iterable of positive integers (Python or NumPy integers;
            ``bool`` and floats are refused).

    Returns:
        The widths as a tuple of Python ``int``.

    Raises:
        ValueError: If ``widths`` is empty or not iterable, or if an entry is not an
            integer or is ``<= 0`` (the message names the offending index and value).
    """
    if isinstance(widths, str | bytes) or not isinstance(widths, Iterable):
        raise InvalidParameterError(
            f"widths must be a sequence of positive integers; got {_describe(widths)}"
        )
    items = list(widths)
    if not items:
        raise InvalidParameterError("widths must contain at least one width; got an empty sequence")
    out: list[int] = []
    for i, w in enumerate(items):
        if isinstance(w, bool | np.bool_) or not isinstance(w, numbers.Integral):
            raise InvalidParameterError(f"widths[{i}] must be an integer; got {_describe(w)}")
        if w <= 0:
            raise InvalidParameterError(f"widths[{i}] must be a positive integer; got {int(w)}")
        out.append(int(w))
    return tuple(out)


def as_generator(seed: SeedLike) -> np.random.Generator:
    """Turn an explicit seed into a :class:`numpy.random.Generator`.

    Args:
        seed: A non-negative ``int`` (or NumPy integer), a
            :class:`numpy.random.SeedSequence`, or a :class:`numpy.random.Generator`
            (returned as is, so its state is shared with the caller). ``None`` is
            refused: every randomized function requires an explicit seed.

    Returns:
        A :class:`numpy.random.Generator`.

    Raises:
        ValueError: If ``seed`` is ``None``, a ``bool``, a negative integer, or of any
            other type.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    if seed is None:
        raise InvalidParameterError(
            "seed=None is not accepted: pass an explicit int, numpy.random.SeedSequence or "
            "numpy.random.Generator so that results are reproducible"
        )
    if isinstance(seed, bool | np.bool_) or not isinstance(seed, numbers.Integral):
        raise InvalidParameterError(
            "seed must be an int, numpy.random.SeedSequence or numpy.random.Generator; "
            f"got {type(seed).__name__} {_describe(seed)}"
        )
    if seed < 0:
        raise InvalidParameterError(f"seed must be a non-negative integer; got {int(seed)}")
    return np.random.default_rng(int(seed))


def check_tau(tau: object, name: str = "tau") -> float:
    """A positive, finite scale τ as float (``ValueError`` naming ``name`` otherwise)."""
    try:
        t = float(tau)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} must be a positive number, got {tau!r}") from None
    if not math.isfinite(t) or t <= 0.0:
        raise InvalidParameterError(f"{name} must be positive and finite, got {tau!r}")
    return t
