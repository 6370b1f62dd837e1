"""Linear readouts trained on fixed (random) features (methods.md §1.13, §1.16, §1.17).

Only the linear head of a random-feature net is trained. Two trainers are provided:

* :func:`fit_ridge_readout` — one-hot ridge regression ("least-squares classifier") with λ chosen on a validation
  split, swept cheaply from one eigendecomposition (primal ``d×d`` Gram or dual ``n×n`` kernel, whichever is
  smaller);
* :func:`fit_sgd_readout` — multinomial logistic regression with PyTorch: logits + ``nn.CrossEntropyLoss``,
  shuffled minibatches, early stopping on a validation split.

**Test data never enters these functions.** The caller passes the *training* features and labels only; the
validation split used for λ selection / early stopping is carved (stratified, seeded) from them, and the returned
:class:`LinearReadout` is then evaluated by the caller on held-out data with :meth:`LinearReadout.score`. Any
feature normalisation must likewise be fitted on training data by the caller. This avoids the research code's bugs
(methods.md §1.16): double softmax, unshuffled class-sorted minibatches, model selection / early stopping on the
test set.

Shapes: features ``F`` are ``(n, d)`` (rows are samples; float32 or float64 — float32 inputs are not copied to
float64 as a whole, blocks are converted on the fly), labels ``y`` are ``(n,)`` integers (any values; the readout
keeps the sorted distinct labels in ``classes``), ``K`` is the number of classes.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

import numpy as np
import scipy.linalg
import torch
from numpy.typing import ArrayLike, NDArray
from torch import nn

from .._utils import (
    SeedLike,
    as_generator,
    check_int,
    check_positive,
    stratified_split_indices,
    validate_X,
    validate_Xy,
)
from ..errors import InvalidParameterError
from ..kernels import int8_gram_lower_, int_path_supported

__all__ = [
    "LambdaPath",
    "LinearReadout",
    "RidgeSolver",
    "default_lambda_grid",
    "fit_ridge_readout",
    "fit_sgd_readout",
    "ridge_path",
    "stratified_split",
]

LambdaPath = Literal["auto", "eigen", "search"]
"""How :func:`fit_ridge_readout` sweeps λ: ``"eigen"`` — every λ from one eigendecomposition; ``"search"`` — Cholesky
solves on part of the grid (primal only, for many features); ``"auto"`` — search above 4096 features."""

RidgeSolver = Literal["auto", "primal", "dual"]
"""``"primal"``: eigendecomposition of the ``d×d`` Gram FᵀF; ``"dual"``: of the ``n×n`` kernel FFᵀ; ``"auto"``:
dual when ``d > n`` (rows used for the fit), primal otherwise."""

_BLOCK_ELEMENTS = 1 << 23
"""Row blocks hold about this many entries (64 MiB in float64) when features are streamed."""

_DEFAULT_REL_LAMBDAS = np.logspace(-6.0, 2.0, 25)
"""Default λ grid, relative to trace(FcᵀFc)/d of the centred training features."""

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
Features = NDArray[np.float32] | NDArray[np.float64]


# ============================================================================================ validation


def _validate_features(F: ArrayLike, name: str = "F") -> Features:
    """Check a feature matrix; float32/float64 inputs are kept as they are (no float64 copy of a big float32 F).

    Args:
        F: Array-like of shape ``(n, d)``.
        name: Argument name for error messages.

    Returns:
        A C-contiguous float32 or float64 array of shape ``(n, d)``.

    Raises:
        ValueError: As :func:`rmtcompress._validation.validate_X` (not 2-D, empty, non-numeric, NaN/inf).
    """
    arr = np.asarray(F) if isinstance(F, np.ndarray) else None
    if arr is None or arr.dtype not in (np.float32, np.float64) or arr.ndim != 2 or arr.size == 0:
        return validate_X(F, name=name)  # converts to float64 or raises with the standard message
    arr = np.ascontiguousarray(arr)
    for rows in _row_blocks(arr.shape[0], arr.shape[1]):
        if not np.isfinite(arr[rows]).all():
            return validate_X(arr, name=name)  # raises, reporting the NaN/inf counts
    return arr


def _validate_labels(F: Features, y: ArrayLike) -> tuple[IntArray, IntArray, IntArray]:
    """Check labels against ``F``; return ``(y, classes, codes)`` with ``codes`` in ``0..K−1``.

    Raises:
        ValueError: If ``y`` is not 1-D integer-valued, ``len(y) != n``, or there are fewer than 2 classes.
    """
    # validate_Xy on the first column only: the length/label checks without converting all of F to float64.
    _, y_arr = validate_Xy(F[:, :1], y, min_classes=2, X_name="F", y_name="y")
    classes, codes = np.unique(y_arr, return_inverse=True)
    return y_arr, classes.astype(np.int64), codes.reshape(-1).astype(np.int64)


def _check_val_fraction(val_fraction: float) -> float:
    if isinstance(val_fraction, bool | np.bool_) or not isinstance(val_fraction, numbers.Real):
        raise InvalidParameterError(f"val_fraction must be a number in (0, 0.5]; got {val_fraction!r}")
    f = float(val_fraction)
    if not (math.isfinite(f) and 0.0 < f <= 0.5):
        raise InvalidParameterError(f"val_fraction must be in (0, 0.5]; got {val_fraction!r}")
    return f


def _check_lambdas(lambdas: ArrayLike) -> FloatArray:
    try:
        lam = np.asarray(lambdas, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"lambdas must be a sequence of positive numbers: {exc}") from exc
    if lam.size == 0:
        raise InvalidParameterError("lambdas must contain at least one value; got an empty sequence")
    if not np.isfinite(lam).all():
        raise InvalidParameterError(f"lambdas must be finite; got {lam.tolist()}")
    if (lam <= 0).any():
        raise InvalidParameterError(
            f"lambdas must all be > 0; got non-positive values {lam[lam <= 0].tolist()}"
        )
    return np.unique(lam)  # sorted ascending, duplicates dropped


def _check_choice(value: str, choices: tuple[str, ...], name: str) -> str:
    """``value`` if it is one of ``choices``; otherwise an error listing them."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices[:-1]) + f" or {choices[-1]!r}"
        raise InvalidParameterError(f"{name} must be {listed}; got {value!r}")
    return value


def _check_solver(solver: str) -> RidgeSolver:
    return cast(RidgeSolver, _check_choice(solver, get_args(RidgeSolver), "solver"))


def _check_lambda_path(path: str) -> LambdaPath:
    return cast(LambdaPath, _check_choice(path, get_args(LambdaPath), "lambda_path"))


# ============================================================================================ helpers


def _row_blocks(n: int, d: int) -> Iterator[slice]:
    step = max(1, _BLOCK_ELEMENTS // max(d, 1))
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


def _index_blocks(rows: IntArray, d: int, elements: int = _BLOCK_ELEMENTS) -> Iterator[IntArray]:
    """``rows`` in consecutive blocks of at most ``elements // d`` rows (at least one)."""
    step = max(1, elements // max(d, 1))
    for start in range(0, rows.size, step):
        yield rows[start : start + step]


def _rows64(F: Features, rows: IntArray) -> FloatArray:
    """``F[rows]`` as float64 (one copy)."""
    return np.asarray(F[rows], dtype=np.float64)


def _stratified(
    codes: IntArray, classes: IntArray, val_fraction: float, rng: np.random.Generator
) -> IntArray:
    """Validation indices: ``max(1, floor(f·n_c + 0.5))`` random rows of each class ``c`` (sorted)."""
    labels = classes[codes]  # the labels again, so that an error names the class, not its code
    return stratified_split_indices(labels, val_fraction, rng, rounding="half_up", draw="permutation")[1]


def stratified_split(
    y: ArrayLike, *, val_fraction: float = 0.1, seed: SeedLike = 0
) -> tuple[IntArray, IntArray]:
    """Seeded stratified train/validation split of row indices.

    Every class ``c`` with ``n_c`` samples contributes ``max(1, round(val_fraction·n_c))`` randomly chosen rows to
    the validation part (so each class appears in both parts); the rest is the training part. This is the split
    used inside :func:`fit_ridge_readout` and :func:`fit_sgd_readout` (same seed → same split).

    Args:
        y: Integer labels, shape ``(n,)``.
        val_fraction: Fraction of each class put in validation, in (0, 0.5].
        seed: Explicit seed (int, ``SeedSequence`` or ``Generator``).

    Returns:
        ``(train_idx, val_idx)``: sorted, disjoint int64 index arrays whose union is ``0..n−1``.

    Raises:
        ValueError: On invalid labels, fewer than 2 classes, ``val_fraction`` outside (0, 0.5], or a class with
            fewer than 2 samples.
    """
    f = _check_val_fraction(val_fraction)
    y_arr = np.asarray(y)
    if y_arr.ndim != 1 or y_arr.size == 0:
        raise InvalidParameterError(f"y must be a non-empty 1-D array of labels; got shape {y_arr.shape}")
    _, classes, codes = _validate_labels(np.zeros((y_arr.size, 1)), y_arr)
    val_idx = _stratified(codes, classes, f, as_generator(seed))
    mask = np.ones(codes.size, dtype=bool)
    mask[val_idx] = False
    return np.flatnonzero(mask).astype(np.int64), val_idx


def _one_hot(codes: IntArray, n_classes: int) -> FloatArray:
    T = np.zeros((codes.size, n_classes))
    T[np.arange(codes.size), codes] = 1.0
    return T


# ============================================================================================ readout


@dataclass(frozen=True, eq=False)
class LinearReadout:
    """A trained linear classifier ``scores = F @ coef + intercept``.

    Attributes:
        coef: Weights, shape ``(d, K)``, float64.
        intercept: Biases, shape ``(K,)``, float64.
        classes: The original labels, sorted, shape ``(K,)``; column ``k`` of the scores is class ``classes[k]``.
        method: ``"ridge"`` or ``"sgd"``.
        info: Training record (chosen λ, validation accuracy per λ / losses per epoch, ``n_train``, ``n_val``,
            ``val_indices`` — the rows of the given training data used for validation, ...).
    """

    coef: FloatArray
    intercept: FloatArray
    classes: IntArray
    method: str
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        coef = np.array(self.coef, dtype=np.float64)
        intercept = np.array(self.intercept, dtype=np.float64).reshape(-1)
        classes = np.array(self.classes).reshape(-1)
        if coef.ndim != 2:
            raise InvalidParameterError(f"coef must be 2-D of shape (d, K); got shape {coef.shape}")
        if intercept.shape != (coef.shape[1],) or classes.shape != (coef.shape[1],):
            raise InvalidParameterError(
                f"intercept and classes must have shape (K,) = ({coef.shape[1]},); got {intercept.shape} and "
                f"{classes.shape}"
            )
        for arr in (coef, intercept, classes):
            arr.setflags(write=False)
        object.__setattr__(self, "coef", coef)
        object.__setattr__(self, "intercept", intercept)
        object.__setattr__(self, "classes", classes)

    @property
    def n_features(self) -> int:
        """Number of input features ``d``."""
        return int(self.coef.shape[0])

    @property
    def n_classes(self) -> int:
        """Number of classes ``K``."""
        return int(self.coef.shape[1])

    def decision_function(self, F: ArrayLike) -> FloatArray:
        """Class scores (logits for ``"sgd"``, regression outputs for ``"ridge"``).

        Args:
            F: Features, shape ``(n, d)``.

        Returns:
            Scores, shape ``(n, K)``, float64.

        Raises:
            ValueError: If ``F`` is invalid or its number of columns differs from ``d``.
        """
        arr = _validate_features(F)
        if arr.shape[1] != self.n_features:
            raise InvalidParameterError(
                f"F has {arr.shape[1]} features but the readout was fitted on {self.n_features} features"
            )
        out = np.empty((arr.shape[0], self.n_classes))
        for rows in _row_blocks(arr.shape[0], arr.shape[1]):
            out[rows] = np.asarray(arr[rows], dtype=np.float64) @ self.coef + self.intercept
        return out

    def predict(self, F: ArrayLike) -> IntArray:
        """Predicted labels (values from ``classes``), shape ``(n,)``."""
        return np.asarray(self.classes[np.argmax(self.decision_function(F), axis=1)])

    def score(self, F: ArrayLike, y: ArrayLike) -> float:
        """Accuracy of :meth:`predict` on ``(F, y)``.

        Args:
            F: Features, shape ``(n, d)``.
            y: True labels, shape ``(n,)``.

        Returns:
            Fraction of correct predictions.
        """
        arr = _validate_features(F)
        _, y_arr = validate_Xy(arr[:, :1], y, X_name="F", y_name="y")
        return float(np.mean(self.predict(arr) == y_arr))


# ============================================================================================ ridge


@dataclass
class _Stats:
    """Uncentred sufficient statistics of shifted rows ``B = F[rows] − shift`` and targets ``T[rows]``."""

    shift: FloatArray  # (d,)
    G: FloatArray  # BᵀB (d, d)
    fsum: FloatArray  # Σ rows of B (d,)
    FT: FloatArray  # BᵀT (d, K)
    tsum: FloatArray  # Σ rows of T (K,)
    n: int

    def __add__(self, other: _Stats) -> _Stats:
        if not np.array_equal(self.shift, other.shift):
            raise InvalidParameterError("internal error: statistics with different shifts cannot be added")
        return _Stats(self.shift, self.G + other.G, self.fsum + other.fsum, self.FT + other.FT,
                      self.tsum + other.tsum, self.n + other.n)  # fmt: skip

    def centred(self, center: bool) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """``(Gc, FTc, mean, tbar)``: Gram and cross-product (centred when ``center``) and the row means.

        Centring uses ``Σ(b − μ)(b − μ)ᵀ = BᵀB − n·μμᵀ`` on the shifted rows; with the shift close to the column
        means this is free of cancellation.
        """
        d, K = self.FT.shape
        if not center:
            if np.any(self.shift != 0):
                raise InvalidParameterError("internal error: uncentred statistics must use a zero shift")
            return self.G.copy(), self.FT.copy(), np.zeros(d), np.zeros(K)
        mu = self.fsum / self.n
        tbar = self.tsum / self.n
        Gc = self.G - self.n * np.outer(mu, mu)
        Gc = 0.5 * (Gc + Gc.T)
        return Gc, self.FT - self.n * np.outer(mu, tbar), self.shift + mu, tbar


class _LazyFeatures:
    """An ``(n, d)`` feature matrix computed on demand, one row block at a time: ``F[idx] = fn(X[idx])`` in float32.

    The ridge code indexes it like an array and never holds it whole (60 000 × 12 000 features are 2.9 GB in
    float32): :func:`fit_readout` streams a model's features through it.
    """

    def __init__(self, fn: Callable[[Any], Any], X: NDArray[np.float64], d: int) -> None:
        self._fn = fn
        self._X = X
        self.shape = (int(X.shape[0]), int(d))

    def __getitem__(self, idx: IntArray) -> NDArray[np.float32]:
        out = np.ascontiguousarray(np.asarray(self._fn(self._X[idx]), dtype=np.float32))
        if out.shape != (len(idx), self.shape[1]):
            raise InvalidParameterError(
                f"the feature map gave shape {out.shape} for {len(idx)} rows; expected ({len(idx)}, {self.shape[1]})"
            )
        if not np.isfinite(out).all():
            raise InvalidParameterError(
                f"the model's features hold {int((~np.isfinite(out)).sum())} NaN/inf values: cannot fit a readout"
            )
        return out


def _gram_stats(
    F: Features | _LazyFeatures,
    rows: IntArray,
    T: FloatArray,
    shift: FloatArray,
    G32: NDArray[np.float32] | None = None,
) -> _Stats:
    """Stream row blocks of ``F[rows]`` (64 MiB each) and accumulate :class:`_Stats` (never forms ``n×n``).

    By default the blocks are converted to float64 and the Gram is a new float64 ``d×d`` matrix. Given a zeroed
    Fortran-ordered float32 ``G32``, the blocks stay float32 and BLAS ``ssyrk`` adds each block's Gram to the
    **lower triangle** of ``G32`` in place (half the flops and bytes; :class:`_SearchRidge`); the returned
    statistics hold ``G32`` as their Gram."""
    d, K = F.shape[1], T.shape[1]
    dtype = np.float64 if G32 is None else np.float32
    G64 = np.zeros((d, d)) if G32 is None else None
    fsum = np.zeros(d)
    FT = np.zeros((d, K))
    shifted = shift.astype(dtype)
    for idx in _index_blocks(rows, d, (8 * _BLOCK_ELEMENTS) // np.dtype(dtype).itemsize):  # 64 MiB blocks
        B: NDArray[Any] = np.asarray(
            F[idx], dtype=dtype
        )  # row indexing gives a fresh array: shifted in place
        B -= shifted
        if G64 is None:
            _syrk_into(G32, B, 1.0)  # type: ignore[arg-type]
        else:
            G64 += B.T @ B
        fsum += B.sum(axis=0, dtype=np.float64)
        FT += B.T @ T[idx].astype(dtype)
    gram: Any = G32 if G64 is None else G64
    return _Stats(shift, gram, fsum, FT, T[rows].sum(axis=0), int(rows.size))


def _syrk_into(C: NDArray[np.float32], B: NDArray[np.float32], beta: float) -> None:
    """``C ← BᵀB + β·C`` on the lower triangle of the Fortran-ordered float32 ``C``, in place (BLAS ``ssyrk``)."""
    out = scipy.linalg.blas.ssyrk(1.0, B.T, beta=beta, c=C, trans=0, lower=1, overwrite_c=1)
    if not np.shares_memory(out, C):  # pragma: no cover - f2py copies only a non-Fortran or non-float32 C
        C[...] = out


def _column_mean(F: Features | _LazyFeatures, rows: IntArray) -> FloatArray:
    """Column means of ``F[rows]`` (the shift of :func:`_gram_stats`). For :class:`_LazyFeatures` only the first
    row block is read: the shift needs only to be near the means (centring itself is exact), and a full pass
    would compute every feature twice."""
    if isinstance(F, _LazyFeatures):
        first = next(_index_blocks(rows, F.shape[1]))
        return np.asarray(F[first].mean(axis=0, dtype=np.float64))
    total = np.zeros(F.shape[1])
    for idx in _index_blocks(rows, F.shape[1]):
        total += _rows64(F, idx).sum(axis=0)
    return total / rows.size


def _resolve(solver: RidgeSolver, n: int, d: int) -> Literal["primal", "dual"]:
    if solver == "auto":
        return "dual" if d > n else "primal"
    return solver


class _EigenRidge:
    """Ridge fits for many λ from one symmetric eigendecomposition.

    Solves ``min_W ‖Tc − Fc W‖² + λ‖W‖²`` on the rows ``rows`` (``Fc``, ``Tc`` centred on those rows when
    ``center``), i.e. ``W(λ) = (FcᵀFc + λI)⁻¹FcᵀTc = Fcᵀ(FcFcᵀ + λI)⁻¹Tc``.

    * primal: ``FcᵀFc = V diag(s) Vᵀ`` (``d×d``), ``W(λ) = V diag(1/(s+λ)) VᵀFcᵀTc``;
    * dual: ``FcFcᵀ = U diag(s) Uᵀ`` (``n×n``), ``W(λ) = FcᵀU diag(1/(s+λ)) UᵀTc``.

    Scores of other rows ``F'`` are ``(F' − mean) W(λ) + tbar = P diag(1/(s+λ)) C + tbar`` with ``P`` projected
    once, so each extra λ costs ``O(m·r·K)``.
    """

    def __init__(
        self, F: Features, rows: IntArray, T: FloatArray, *, center: bool, solver: RidgeSolver
    ) -> None:
        n, d = int(rows.size), F.shape[1]
        self.kind = _resolve(solver, n, d)
        self.Fc: FloatArray | None = None
        self.stats: _Stats | None = None
        if self.kind == "primal":
            shift = _column_mean(F, rows) if center else np.zeros(d)
            self.stats = _gram_stats(F, rows, T, shift)
            Gc, FTc, self.mean, self.tbar = self.stats.centred(center)
            self.trace = float(np.trace(Gc))
            s, V = scipy.linalg.eigh(Gc, driver="evd", check_finite=False, overwrite_a=True)
            self.basis = V  # (d, d)
            self.C = V.T @ FTc  # (d, K)
        else:
            Fc = _rows64(F, rows)
            Tr = T[rows]
            self.mean = Fc.mean(axis=0) if center else np.zeros(d)
            self.tbar = Tr.mean(axis=0) if center else np.zeros(T.shape[1])
            Fc -= self.mean
            Kmat = Fc @ Fc.T
            self.trace = float(np.trace(Kmat))
            s, U = scipy.linalg.eigh(Kmat, driver="evd", check_finite=False, overwrite_a=True)
            self.basis = U  # (n, n)
            self.C = U.T @ (Tr - self.tbar)  # (n, K)
            self.Fc = Fc
        self.s = np.maximum(s, 0.0)  # PSD up to rounding

    def project(self, F: Features, rows: IntArray) -> FloatArray:
        """``P`` of shape ``(len(rows), r)`` such that ``scores(λ) = P @ (C / (s + λ)) + tbar``."""
        X = _rows64(F, rows)
        X -= self.mean
        if self.Fc is None:
            return X @ self.basis
        return (X @ self.Fc.T) @ self.basis

    def scores(self, P: FloatArray, lam: float) -> FloatArray:
        """Scores ``(m, K)`` of the projected rows for one λ."""
        return P @ (self.C / (self.s + lam)[:, None]) + self.tbar

    def coef(self, lam: float) -> tuple[FloatArray, FloatArray]:
        """``(W, b)`` with ``W`` of shape ``(d, K)`` and ``b = tbar − mean @ W``."""
        Z = self.basis @ (self.C / (self.s + lam)[:, None])
        W = Z if self.Fc is None else self.Fc.T @ Z
        return W, self.tbar - self.mean @ W


_EIGEN_MAX_D = 4096
"""Above this many features the primal λ path is searched by Cholesky solves (:class:`_SearchRidge`): an ``eigh`` of
a large ``d×d`` Gram costs as much as many factorisations (``benchmarks/ntklc/bench_ridge_linalg.py``)."""


def _blocked_matmul(A32: NDArray[np.float32], X: FloatArray) -> FloatArray:
    """``A32 @ X`` in float64 for a Fortran-ordered float32 ``A32``, without a float64 copy of it."""
    out = np.zeros((A32.shape[0], X.shape[1]))
    for cols in _row_blocks(A32.shape[1], A32.shape[0]):
        out += A32[:, cols].astype(np.float64) @ X[cols]
    return out


def _symmetrize_from_lower(A: NDArray[np.float32]) -> None:
    """Copy the lower triangle of the Fortran-ordered ``A`` onto its upper triangle, in place, strip by strip."""
    d = A.shape[0]
    for cols in _row_blocks(d, 1 << 13):  # strips of 1024 columns (8M entries): small temporaries
        a, b = cols.start, cols.stop
        diag = A[a:b, a:b]
        diag[...] = np.tril(diag) + np.tril(diag, -1).T
        A[a:b, b:] = A[b:, a:b].T


def _solve_shifted32(
    Gc: NDArray[np.float32], B: FloatArray, lam: float, work: NDArray[np.float32]
) -> FloatArray | None:
    """Solve ``(Gc + λI) X = B``: a float32 Cholesky of ``Gc + λI`` in ``work`` (both Fortran-ordered, so LAPACK
    works in place) and two steps of iterative refinement with float64 residuals; a float64 factorisation when
    float32 is not positive definite. None when neither is (λ below the rounding of the Gram)."""
    np.copyto(work, Gc)
    work[np.diag_indices_from(work)] += np.float32(lam)
    try:
        factor = scipy.linalg.cho_factor(work, lower=True, overwrite_a=True, check_finite=False)
    except np.linalg.LinAlgError:
        A = Gc.astype(np.float64)
        A[np.diag_indices_from(A)] += lam
        try:
            factor64 = scipy.linalg.cho_factor(A, lower=True, overwrite_a=True, check_finite=False)
        except np.linalg.LinAlgError:
            return None
        return np.asarray(scipy.linalg.cho_solve(factor64, B, check_finite=False))
    X = np.asarray(scipy.linalg.cho_solve(factor, B.astype(np.float32), check_finite=False), dtype=np.float64)
    for _ in range(2):
        R = B - _blocked_matmul(Gc, X) - lam * X
        X += scipy.linalg.cho_solve(factor, R.astype(np.float32), check_finite=False)
    return X


def _int_gram(
    F: _LazyFeatures, rows: IntArray, T: FloatArray, G: NDArray[np.float32]
) -> tuple[FloatArray, FloatArray, FloatArray] | None:
    """The centred Gram of ``F[rows]`` into ``G`` (float32, full) by int8 GEMMs, when the features are integer
    multiples ``c·s`` (|c| ≤ 127) of one scale s — thermometer indicators 1{z ≥ b}/√d_L are — and the counts
    stay exact (rows · max|c|² < 2²⁴); returns ``(mean, tbar, FTc)``, or None (``G`` then holds garbage) when the
    features are not such codes or this torch has no int8 product.

    The counts ``CᵀC`` are exact integers; centring ``s²(CᵀC − n·μμᵀ)`` is done in float64 per strip and rounded
    once to float32, so this Gram is at least as accurate as the float32 ``ssyrk`` one.
    """
    if not int_path_supported():
        return None
    d, K = F.shape[1], T.shape[1]
    n = int(rows.size)
    scale: float | None = None
    top = 0
    csum = np.zeros(d)
    FT = np.zeros((d, K))
    for idx in _index_blocks(rows, d, 2 * _BLOCK_ELEMENTS):  # 64 MiB of float32 features per block
        Fb = F[idx]
        if scale is None:
            nz = np.abs(Fb[Fb != 0])
            if nz.size == 0:
                return None
            scale = float(nz.min())
        codes = np.rint(Fb / np.float32(scale))
        top = max(top, int(np.abs(codes).max()))
        if top > 127 or n * top * top >= 1 << 24 or not np.array_equal(codes * np.float32(scale), Fb):
            return None
        c8 = codes.astype(np.int8)
        int8_gram_lower_(G, c8)
        csum += c8.sum(axis=0, dtype=np.int64)
        FT += (codes.T @ T[idx].astype(np.float32)).astype(np.float64)  # exact: integer sums < 2²⁴
    assert scale is not None
    mu = csum / n  # code means
    s2 = scale * scale
    for cols in _row_blocks(d, d):  # centre the lower triangle in float64, one rounding to float32
        a = cols.start
        block = G[a:, cols].astype(np.float64)
        block -= n * np.outer(mu[a:], mu[cols])
        G[a:, cols] = (s2 * block).astype(np.float32)
    _symmetrize_from_lower(G)
    tbar = T[rows].mean(axis=0)
    FTc = scale * (FT - n * np.outer(mu, tbar))
    return scale * mu, tbar, FTc


class _SearchRidge:
    """Primal ridge fits one λ at a time (float32 Cholesky + refinement), for large ``d``.

    The centred Gram of the rows ``rows`` is accumulated in float32 by ``ssyrk`` over large row blocks (each block
    shifted by the first block's column means, then centred exactly) and centred in place: with one float32 work
    matrix for the factorisations this path holds ``2·4·d²`` bytes (1.15 GB at d = 12 000), against an
    eigendecomposition's float64 Gram, eigenvectors and workspace (about 4.6 GB there).
    """

    def __init__(self, F: Features | _LazyFeatures, rows: IntArray, T: FloatArray) -> None:
        d = F.shape[1]
        G = np.zeros((d, d), dtype=np.float32, order="F")
        n = int(rows.size)
        self.gram = "int8"
        coded = _int_gram(F, rows, T, G) if isinstance(F, _LazyFeatures) else None
        if coded is not None:
            mean, self.tbar, self.FTc = coded
        else:
            self.gram = "float32"
            G[...] = 0.0
            stats = _gram_stats(F, rows, T, _column_mean(F, rows), G)
            mu = stats.fsum / n
            self.tbar = stats.tsum / n
            _symmetrize_from_lower(G)
            for cols in _row_blocks(d, d):  # centre in place: G −= n·μμᵀ
                G[:, cols] -= (n * np.outer(mu, mu[cols])).astype(np.float32)
            self.FTc = stats.FT - n * np.outer(mu, self.tbar)
            mean = stats.shift + mu
        self.Gc = G
        self.mean = mean
        self.n = n
        self.trace = float(np.trace(G, dtype=np.float64))
        self.work = np.empty_like(G, order="F")

    def coef(self, lam: float) -> tuple[FloatArray, FloatArray] | None:
        W = _solve_shifted32(self.Gc, self.FTc, lam, self.work)
        return None if W is None else (W, self.tbar - self.mean @ W)

    def add_rows(self, Fv: NDArray[np.float32], Tv: FloatArray) -> None:
        """Fold more rows (e.g. the validation part) into the centred statistics, in place:
        ``Gc ← Gc + Gcᵥ + (n nᵥ / (n + nᵥ)) δδᵀ`` with ``δ`` the difference of the two means (the same for ``FTc``).
        ``Fv`` is centred in place (it is consumed: no second copy of the rows)."""
        n, nv = self.n, Fv.shape[0]
        mu_v = Fv.mean(axis=0, dtype=np.float64)
        t_v = Tv.mean(axis=0)
        Bv = Fv
        Bv -= mu_v.astype(np.float32)
        _syrk_into(self.work, Bv, 0.0)
        _symmetrize_from_lower(self.work)
        self.Gc += self.work
        c = n * nv / (n + nv)
        delta, tdelta = self.mean - mu_v, self.tbar - t_v
        for cols in _row_blocks(self.Gc.shape[0], self.Gc.shape[1]):
            self.Gc[:, cols] += (c * np.outer(delta, delta[cols])).astype(np.float32)
        self.FTc = self.FTc + (Bv.T @ (Tv - t_v).astype(np.float32)) + c * np.outer(delta, tdelta)
        self.mean = (n * self.mean + nv * mu_v) / (n + nv)
        self.tbar = (n * self.tbar + nv * t_v) / (n + nv)
        self.n = n + nv


def _search_grid(score: Callable[[float], float], grid: FloatArray) -> FloatArray:
    """Validation accuracy on part of an ascending λ grid: every fourth value from the largest, then up to two
    neighbours on each side of the best of those (ties → larger λ). Unevaluated entries are NaN: at most 11 of the
    25 default values are fitted, assuming accuracy varies smoothly between neighbouring λ."""
    accs = np.full(grid.size, np.nan)
    for i in range(grid.size - 1, -1, -4):
        accs[i] = score(float(grid[i]))
    centre = int(np.flatnonzero(accs == np.nanmax(accs))[-1])
    for j in (centre - 1, centre + 1, centre - 2, centre + 2):
        if 0 <= j < grid.size and np.isnan(accs[j]):
            accs[j] = score(float(grid[j]))
    return accs


def _cholesky_solve(A: FloatArray, B: FloatArray, lam: float) -> FloatArray:
    """Solve ``(A + λI) X = B`` for symmetric PSD ``A`` (modified in place)."""
    A[np.diag_indices_from(A)] += lam
    return np.asarray(
        scipy.linalg.cho_solve(scipy.linalg.cho_factor(A, check_finite=False), B, check_finite=False)
    )


def _direct_ridge(
    F: Features,
    rows: IntArray,
    T: FloatArray,
    lam: float,
    *,
    solver: RidgeSolver,
    stats: _Stats | None = None,
) -> tuple[FloatArray, FloatArray, Literal["primal", "dual"]]:
    """Centred ridge solution for one λ by Cholesky (primal ``d×d`` or dual ``n×n``); returns ``(W, b, kind)``.

    ``stats`` (statistics of the same rows, e.g. train + validation summed) skips the data pass of the primal form.
    """
    kind = _resolve(solver, int(rows.size), F.shape[1])
    if kind == "primal":
        if stats is None:
            stats = _gram_stats(F, rows, T, _column_mean(F, rows))
        Gc, FTc, mean, tbar = stats.centred(True)
        W = _cholesky_solve(Gc, FTc, lam)
        return W, tbar - mean @ W, kind
    Fc = _rows64(F, rows)
    Tr = T[rows]
    mean = Fc.mean(axis=0)
    tbar = Tr.mean(axis=0)
    Fc -= mean
    alpha = _cholesky_solve(Fc @ Fc.T, Tr - tbar, lam)
    W = Fc.T @ alpha
    return W, tbar - mean @ W, kind


def default_lambda_grid(scale: float) -> FloatArray:
    """The default λ grid: 25 log-spaced values ``scale·10^{−6} … scale·10^{2}``.

    Args:
        scale: ``trace(FcᵀFc)/d`` of the centred training features (the average eigenvalue of the Gram matrix);
            a non-positive scale (constant features) is replaced by 1.

    Returns:
        The grid, shape ``(25,)``, ascending.
    """
    s = float(scale)
    if not (math.isfinite(s) and s > 0):
        s = 1.0
    return np.asarray(s * _DEFAULT_REL_LAMBDAS, dtype=np.float64)


def ridge_path(
    F: ArrayLike,
    Y: ArrayLike,
    lambdas: ArrayLike,
    *,
    fit_intercept: bool = True,
    solver: RidgeSolver = "auto",
) -> tuple[FloatArray, FloatArray]:
    """Ridge solutions for several λ from one eigendecomposition.

    With ``fit_intercept`` the features and targets are centred (``Fc = F − mean``, ``Yc = Y − mean``) and
    ``W(λ) = (FcᵀFc + λI)⁻¹ FcᵀYc``, ``b(λ) = mean(Y) − mean(F) @ W(λ)``; without it ``W(λ) = (FᵀF + λI)⁻¹FᵀY``
    and ``b = 0``. λ is absolute (not scaled by ``n``).

    Args:
        F: Features, shape ``(n, d)``.
        Y: Targets, shape ``(n, K)`` (a 1-D ``(n,)`` target is treated as ``(n, 1)``).
        lambdas: Positive regularisation strengths, shape ``(L,)``; used in the order given.
        fit_intercept: Centre features and targets (fit an unpenalised intercept).
        solver: ``"primal"`` (``d×d`` eigendecomposition), ``"dual"`` (``n×n``) or ``"auto"`` (dual iff ``d > n``).

    Returns:
        ``(coefs, intercepts)`` of shapes ``(L, d, K)`` and ``(L, K)``.

    Raises:
        ValueError: On invalid ``F``/``Y``, mismatched lengths, empty or non-positive ``lambdas``, unknown solver.
    """
    F_arr = _validate_features(F)
    Y_raw = np.asarray(Y)
    Y_arr = validate_X(Y_raw.reshape(-1, 1) if Y_raw.ndim == 1 else Y_raw, name="Y")
    if Y_arr.shape[0] != F_arr.shape[0]:
        raise InvalidParameterError(
            f"Y has {Y_arr.shape[0]} rows but F has {F_arr.shape[0]} rows; they must match"
        )
    _check_lambdas(lambdas)
    lam_in = np.asarray(lambdas, dtype=np.float64).reshape(-1)  # the given order is kept
    rows = np.arange(F_arr.shape[0], dtype=np.int64)
    eig = _EigenRidge(F_arr, rows, Y_arr, center=bool(fit_intercept), solver=_check_solver(solver))
    coefs = np.empty((lam_in.size, F_arr.shape[1], Y_arr.shape[1]))
    intercepts = np.empty((lam_in.size, Y_arr.shape[1]))
    for i, lam in enumerate(lam_in):
        coefs[i], intercepts[i] = eig.coef(float(lam))
    return coefs, intercepts


def fit_ridge_readout(
    F: ArrayLike,
    y: ArrayLike,
    *,
    lambdas: ArrayLike | None = None,
    val_fraction: float = 0.1,
    seed: SeedLike = 0,
    refit: bool = True,
    solver: RidgeSolver = "auto",
    lambda_path: LambdaPath = "auto",
    stage: Callable[[str], None] | None = None,
) -> LinearReadout:
    """One-hot ridge ("least-squares") classifier with λ chosen on a stratified validation split.

    Pass **training data only**: a validation part (``val_fraction`` of each class, seeded, see
    :func:`stratified_split`) is carved from ``(F, y)``; for each λ the centred ridge problem
    ``min ‖Tc − Fc W‖² + λ‖W‖²`` (one-hot targets ``T``, intercept from centring) is solved on the training part
    and scored by validation accuracy (argmax of the outputs). The best λ wins, ties going to the larger λ. With
    ``lambda_path="eigen"`` all λ come from one eigendecomposition: of the ``d×d`` Gram FᵀF (streamed over row
    blocks in float64; no ``n×n`` matrix) or, when ``d > n_train``, of the ``n_train×n_train`` kernel (dual form).
    With ``"search"`` (primal only) λ are fitted one at a time by float32 Cholesky solves with float64 iterative
    refinement, on every fourth grid value and then the neighbours of the best (at most 11 of the default 25):
    ``"auto"`` picks it for more than 4096 features, where one ``eigh`` costs many factorisations. With
    ``refit`` the chosen λ is refitted on train + validation, with the same absolute λ.

    Args:
        F: Training features, shape ``(n, d)``, float32 or float64.
        y: Training labels, shape ``(n,)``, any integers.
        lambdas: Candidate λ (absolute, > 0); default: :func:`default_lambda_grid` of ``trace(FcᵀFc)/d`` of the
            training part, i.e. 25 values from 1e-6 to 1e2 times the mean Gram eigenvalue.
        val_fraction: Fraction of each class held out for validation, in (0, 0.5].
        seed: Explicit seed of the split.
        refit: Refit on all given rows with the chosen λ (otherwise keep the training-part fit).
        solver: ``"auto"``, ``"primal"`` or ``"dual"`` (see :data:`RidgeSolver`); ``"auto"`` is right unless testing.
        lambda_path: ``"auto"``, ``"eigen"`` or ``"search"`` (see :data:`LambdaPath`).
        stage: Optional callback, called with the name of each phase as it starts (``"Gram"``, ``"λ path"``,
            ``"refit"``): what :func:`~rmtcompress.fit_readout`'s progress bar shows.

    Returns:
        A :class:`LinearReadout` with ``method="ridge"``; ``info`` holds ``lambda`` (chosen), ``lambdas``,
        ``val_accuracy`` (per λ; NaN where the search did not fit it), ``best_val_accuracy``, ``lambda_scale``,
        ``n_train``, ``n_val``, ``n_fit`` (rows of the final fit), ``val_indices``, ``refit``, ``solver`` (sweep),
        ``refit_solver``, ``lambda_path``, ``val_fraction``.

    Raises:
        ValueError: If ``F`` is not 2-D or has NaN/inf, ``len(y) != n``, ``y`` has a single class or a class with
            fewer than 2 samples, ``val_fraction`` is outside (0, 0.5], ``lambdas`` is empty or has non-positive
            values, ``solver`` or ``lambda_path`` is unknown, or ``lambda_path="search"`` meets the dual form.
    """
    if isinstance(F, _LazyFeatures):  # from _fit_ridge_streamed: rows are checked as they are computed
        F_arr: Features | _LazyFeatures = F
        _, classes, codes = _validate_labels(np.zeros((F.shape[0], 1)), y)
    else:
        F_arr = _validate_features(F)
        _, classes, codes = _validate_labels(F_arr, y)
    return _fit_ridge(F_arr, classes, codes, lambdas, val_fraction, seed, refit, solver, lambda_path, stage)


def _fit_ridge_streamed(
    fn: Callable[[Any], Any], X: NDArray[np.float64], y: ArrayLike, **options: Any
) -> LinearReadout:
    """:func:`fit_ridge_readout` (same ``options``) on the features ``fn(X)``, computed block by block and never
    held whole."""
    d = int(np.asarray(fn(X[:1])).shape[1])
    return fit_ridge_readout(_LazyFeatures(fn, X, d), y, **options)  # type: ignore[arg-type]


def _fit_ridge(
    F_arr: Features | _LazyFeatures,
    classes: IntArray,
    codes: IntArray,
    lambdas: ArrayLike | None,
    val_fraction: float,
    seed: SeedLike,
    refit: bool,
    solver: RidgeSolver,
    lambda_path: LambdaPath,
    stage: Callable[[str], None] | None,
) -> LinearReadout:
    f = _check_val_fraction(val_fraction)
    lam_user = None if lambdas is None else _check_lambdas(lambdas)
    kind = _check_solver(solver)
    path = _check_lambda_path(lambda_path)
    K = classes.size
    val_idx = _stratified(codes, classes, f, as_generator(seed))
    mask = np.ones(codes.size, dtype=bool)
    mask[val_idx] = False
    train_idx = np.flatnonzero(mask).astype(np.int64)
    T = _one_hot(codes, K)
    say = stage if stage is not None else (lambda _: None)
    d = F_arr.shape[1]
    sweep_kind = _resolve(kind, int(train_idx.size), d)
    if path == "search" and sweep_kind == "dual":
        raise InvalidParameterError(
            f"lambda_path='search' fits the primal form only, but {d} features > {train_idx.size} training rows "
            "use the dual one: pass lambda_path='eigen' or solver='primal'"
        )
    if path == "auto":
        path = "search" if sweep_kind == "primal" and d > _EIGEN_MAX_D else "eigen"
    y_val = codes[val_idx]

    say("Gram")
    if path == "search":
        search = _SearchRidge(F_arr, train_idx, T)
        scale = search.trace / d
        grid = default_lambda_grid(scale) if lam_user is None else lam_user
        say("λ path")
        Fv = np.empty((val_idx.size, d), dtype=np.float32)
        at = 0
        for idx in _index_blocks(val_idx, d):
            Fv[at : at + idx.size] = F_arr[idx]
            at += idx.size

        def score(lam: float) -> float:
            fit = search.coef(lam)
            if fit is None:
                return -1.0  # not positive definite in floating point: never chosen
            out = Fv @ fit[0].astype(np.float32) + fit[1]
            return float(np.mean(np.argmax(out, axis=1) == y_val))

        accs = _search_grid(score, grid)
        best = int(np.flatnonzero(accs == np.nanmax(accs))[-1])
        lam_star = float(grid[best])
        if refit:
            say("refit")
            search.add_rows(Fv, T[val_idx])
        del Fv
        fitted = search.coef(lam_star)
        if fitted is None:
            raise InvalidParameterError(
                f"ridge: the Gram matrix + λI is not positive definite in floating point at λ = {lam_star:g}"
            )
        W, b = fitted
        gram_kind = search.gram
        refit_kind: str = "primal"
        n_fit = int(codes.size if refit else train_idx.size)
        eig_kind: str = "primal"
    else:
        gram_kind = "float64"
        eig = _EigenRidge(F_arr, train_idx, T, center=True, solver=kind)  # type: ignore[arg-type]
        scale = eig.trace / d
        grid = default_lambda_grid(scale) if lam_user is None else lam_user
        say("λ path")
        P = eig.project(F_arr, val_idx)  # type: ignore[arg-type]
        accs = np.array([np.mean(np.argmax(eig.scores(P, float(lam)), axis=1) == y_val) for lam in grid])
        del P
        best = int(np.flatnonzero(accs == accs.max())[-1])  # grid ascending: ties → larger λ
        lam_star = float(grid[best])
        eig_kind = eig.kind
        if refit:
            say("refit")
            all_idx = np.arange(codes.size, dtype=np.int64)
            stats = None
            if eig.stats is not None and _resolve(kind, int(all_idx.size), d) == "primal":
                stats = eig.stats + _gram_stats(F_arr, val_idx, T, eig.stats.shift)
            del eig
            W, b, refit_kind = _direct_ridge(F_arr, all_idx, T, lam_star, solver=kind, stats=stats)  # type: ignore[arg-type]
            n_fit = int(all_idx.size)
        else:
            W, b = eig.coef(lam_star)
            refit_kind = eig.kind
            n_fit = int(train_idx.size)
    info: dict[str, Any] = {
        "lambda": lam_star,
        "lambdas": grid.tolist(),
        "val_accuracy": accs.tolist(),
        "best_val_accuracy": float(accs[best]),
        "lambda_scale": float(scale),
        "n_train": int(train_idx.size),
        "n_val": int(val_idx.size),
        "n_fit": n_fit,
        "val_indices": val_idx,
        "val_fraction": f,
        "refit": bool(refit),
        "solver": eig_kind,
        "refit_solver": refit_kind,
        "lambda_path": path,
        "gram": gram_kind,
    }
    return LinearReadout(coef=W, intercept=b, classes=classes, method="ridge", info=info)


# ============================================================================================ SGD


def _torch_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**63 - 1))


def fit_sgd_readout(
    F: ArrayLike,
    y: ArrayLike,
    *,
    epochs: int = 100,
    lr: float = 1e-2,
    batch_size: int = 256,
    weight_decay: float = 0.0,
    val_fraction: float = 0.1,
    patience: int = 10,
    seed: SeedLike = 0,
    optimizer: str = "adam",
) -> LinearReadout:
    """Multinomial logistic regression (softmax cross-entropy) trained with minibatch SGD/Adam in PyTorch.

    Pass **training data only**. A stratified validation part (:func:`stratified_split`, same seed convention) is
    carved from ``(F, y)``; the model ``nn.Linear(d, K)`` (zero-initialised, with bias) is trained on the rest with
    ``nn.CrossEntropyLoss`` on the raw logits (no softmax layer), reshuffling the training rows every epoch with a
    seeded ``torch.Generator``. After every epoch the validation loss is computed; the parameters with the lowest
    validation loss are kept and restored at the end, and training stops after ``patience`` epochs without
    improvement. The final model is trained on the training part only (no refit). Training runs in float32 on the
    CPU with the process's torch thread settings (untouched); it is deterministic for a given seed and thread count.
    Small problems are dominated by per-batch overhead: on a shared machine OpenMP spin-waiting can make several
    threads far slower than one, so callers may want ``torch.set_num_threads(1)`` around small fits.

    Args:
        F: Training features, shape ``(n, d)``.
        y: Training labels, shape ``(n,)``, any integers.
        epochs: Maximum number of epochs (>= 1).
        lr: Learning rate (> 0).
        batch_size: Minibatch size (>= 1); the last batch of an epoch may be smaller (no row is dropped).
        weight_decay: L2 penalty coefficient on the weights (not the bias), >= 0, passed to the optimizer.
        val_fraction: Fraction of each class held out for early stopping, in (0, 0.5].
        patience: Stop after this many epochs without a lower validation loss (>= 1).
        seed: Explicit seed (split, then torch generator for the shuffling).
        optimizer: ``"adam"`` (``torch.optim.Adam``) or ``"sgd"`` (``torch.optim.SGD``, momentum 0.9).

    Returns:
        A :class:`LinearReadout` with ``method="sgd"``; ``info`` holds ``train_loss``, ``val_loss``,
        ``val_accuracy`` (per epoch), ``best_epoch`` (0-based), ``best_val_loss``, ``epochs_run``,
        ``stopped_early``, ``diverged``, ``n_train``, ``n_val``, ``val_indices`` and the hyper-parameters.

    Raises:
        ValueError: On invalid ``F``/``y`` (as :func:`fit_ridge_readout`), non-positive ``lr``/``epochs``/
            ``batch_size``/``patience``, negative ``weight_decay``, or an unknown optimizer.
    """
    F_arr = _validate_features(F)
    _, classes, codes = _validate_labels(F_arr, y)
    f = _check_val_fraction(val_fraction)
    n_epochs = check_int(epochs, "epochs", 1)
    bs = check_int(batch_size, "batch_size", 1)
    pat = check_int(patience, "patience", 1)
    lr_ = float(check_positive(lr, "lr"))
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, numbers.Real):
        raise InvalidParameterError(f"weight_decay must be a number >= 0; got {weight_decay!r}")
    wd = float(weight_decay)
    if not (math.isfinite(wd) and wd >= 0):
        raise InvalidParameterError(f"weight_decay must be finite and >= 0; got {weight_decay!r}")
    if optimizer not in ("adam", "sgd"):
        raise InvalidParameterError(f"optimizer must be 'adam' or 'sgd'; got {optimizer!r}")

    K = classes.size
    d = F_arr.shape[1]
    rng = as_generator(seed)
    val_idx = _stratified(codes, classes, f, rng)
    mask = np.ones(codes.size, dtype=bool)
    mask[val_idx] = False
    train_idx = np.flatnonzero(mask).astype(np.int64)
    gen = torch.Generator()
    gen.manual_seed(_torch_seed(rng))

    X_tr = torch.from_numpy(np.asarray(F_arr[train_idx], dtype=np.float32))
    X_val = torch.from_numpy(np.asarray(F_arr[val_idx], dtype=np.float32))
    y_tr = torch.from_numpy(codes[train_idx])
    y_val = torch.from_numpy(codes[val_idx])
    n_tr = int(train_idx.size)

    model = torch.nn.utils.skip_init(nn.Linear, d, K, bias=True)  # no draw from torch's global RNG
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    groups: list[dict[str, Any]] = [
        {"params": [model.weight], "weight_decay": wd},
        {"params": [model.bias], "weight_decay": 0.0},
    ]
    opt: torch.optim.Optimizer
    if optimizer == "adam":
        opt = torch.optim.Adam(groups, lr=lr_)
    else:
        opt = torch.optim.SGD(groups, lr=lr_, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    train_losses: list[float] = []
    val_losses: list[float] = []
    val_accs: list[float] = []
    best_loss = math.inf
    best_epoch = -1
    best_state = (model.weight.detach().clone(), model.bias.detach().clone())
    bad_epochs = 0
    diverged = False
    for epoch in range(n_epochs):
        model.train()
        perm = torch.randperm(n_tr, generator=gen)
        total = 0.0
        for start in range(0, n_tr, bs):
            idx = perm[start : start + bs]
            loss = loss_fn(model(X_tr[idx]), y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * int(idx.numel())
        model.eval()
        with torch.no_grad():
            logits = model(X_val)
            v_loss = float(loss_fn(logits, y_val))
            v_acc = float((logits.argmax(dim=1) == y_val).double().mean())
        train_losses.append(total / n_tr)
        val_losses.append(v_loss)
        val_accs.append(v_acc)
        if not (math.isfinite(v_loss) and math.isfinite(train_losses[-1])):
            diverged = True
            break
        if v_loss < best_loss:
            best_loss, best_epoch, bad_epochs = v_loss, epoch, 0
            best_state = (model.weight.detach().clone(), model.bias.detach().clone())
        else:
            bad_epochs += 1
            if bad_epochs >= pat:
                break

    weight, bias = best_state
    info: dict[str, Any] = {
        "train_loss": train_losses,
        "val_loss": val_losses,
        "val_accuracy": val_accs,
        "best_epoch": best_epoch,
        "best_val_loss": best_loss,
        "best_val_accuracy": val_accs[best_epoch] if best_epoch >= 0 else float("nan"),
        "epochs_run": len(val_losses),
        "stopped_early": len(val_losses) < n_epochs and not diverged,
        "diverged": diverged,
        "n_train": n_tr,
        "n_val": int(val_idx.size),
        "val_indices": val_idx,
        "val_fraction": f,
        "optimizer": optimizer,
        "lr": lr_,
        "batch_size": bs,
        "weight_decay": wd,
        "patience": pat,
        "epochs": n_epochs,
    }
    return LinearReadout(
        coef=weight.numpy().astype(np.float64).T,
        intercept=bias.numpy().astype(np.float64),
        classes=classes,
        method="sgd",
        info=info,
    )
