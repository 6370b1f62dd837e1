"""The input preprocessing a model was trained with, as a frozen record that model files store.

A model trained on normalised data gives wrong answers on raw data, silently: :class:`InputTransform` is the fitted
preprocessing in a generic form, an affine per-feature map ``x ↦ (x − shift) / scale`` (shift and scale of length p,
or of length 1 for one value shared by every feature), plus the scale of the training inputs *after* the map
(``input_scale``). Fitted normalisers of the upper layers convert to it (``rmtcompress.lab.PaperNormalizer``:
shift = the training mean, scale = its one scale, input_scale = 1); the file formats of :mod:`rmtcompress.io`
store it; a loaded model applies it in ``predict`` (:class:`~rmtcompress.ntklc.CompressedMLP`) or as the first
module of its ``nn.Sequential`` (:class:`InputTransformLayer`).

**Scale check.** Two statistics of inputs X (n, p) as the model sees them (after the transform, or the raw inputs
when a model stores none) are compared with the training inputs' (:func:`check_input_scale`):

* the *scale*, their RMS row norm ``τ̂(X) = sqrt(mean_i ‖x_i‖²)`` (the paper's τ̂₀; 1 after the paper's
  normalisation): *far* when ``τ̂(X) / τ̂_train`` lies outside ``[1/2, 2]`` (:data:`INPUT_SCALE_TOLERANCE`);
* for batches of at least :data:`SPREAD_MIN_ROWS` = 16 rows, the *spread*, ``sqrt(Σ_i ‖x_i − x̄‖² / (n − 1))`` (the
  same around the batch mean): *far* when its ratio to the training spread lies outside ``[1/4, 4]``
  (:data:`INPUT_SPREAD_TOLERANCE`). This catches inputs normalised twice, which the scale alone misses (they collapse
  onto ``−mean/scale``, whose norm is about the training scale, with a spread ~1/scale: 0.03× on digits, 0.0005×
  on MNIST); a one-class batch of digits / MNIST / Fashion-MNIST keeps ≥ 0.58× of the spread.

Far inputs get an :class:`~rmtcompress.errors.InputScaleWarning`. Raw 0–16 digits pixels against a normalised
training set are about 60× off in scale; batches of correctly normalised rows stay within 0.8–1.3× (single rows
0.5–1.8× on Fashion-MNIST).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import nn

from .._utils import validate_X
from ..errors import InputScaleWarning, InvalidParameterError

__all__ = [
    "INPUT_SCALE_TOLERANCE",
    "INPUT_SPREAD_TOLERANCE",
    "SPREAD_MIN_ROWS",
    "InputTransform",
    "InputTransformLayer",
    "check_input_scale",
    "input_scale_ratio",
    "rms_row_norm",
]

INPUT_SCALE_TOLERANCE = 2.0
"""Inputs whose RMS row norm is more than this factor above or below the training inputs' are "far"."""

INPUT_SPREAD_TOLERANCE = 4.0
"""Batches whose spread (around their own mean) is more than this factor above or below the training's are "far"."""

SPREAD_MIN_ROWS = 16
"""The spread is checked for batches of at least this many rows (fewer rows estimate it too noisily)."""


def rms_row_norm(X: Any) -> float:
    """``sqrt(mean_i ‖x_i‖²)`` of a 2-D array or tensor (rows are samples); 0.0 for no rows."""
    if isinstance(X, torch.Tensor):
        x = X.detach().to(torch.float64)
        return float(torch.sqrt(torch.mean(torch.sum(x * x, dim=-1)))) if x.shape[0] else 0.0
    arr = np.asarray(X, dtype=np.float64)
    return float(np.sqrt(np.mean(np.einsum("ij,ij->i", arr, arr)))) if arr.shape[0] else 0.0


def _spread(X: Any) -> float:
    """``sqrt(Σ_i ‖x_i − x̄‖² / (n − 1))`` of a 2-D array or tensor with n ≥ 2 rows."""
    arr = (
        X.detach().to(torch.float64).cpu().numpy()
        if isinstance(X, torch.Tensor)
        else np.asarray(X, np.float64)
    )
    c = arr - arr.mean(axis=0)
    return float(np.sqrt(np.einsum("ij,ij->", c, c) / (arr.shape[0] - 1)))


def input_scale_ratio(X: Any, reference: float) -> float:
    """``rms_row_norm(X) / reference``: how far inputs are from a training scale (1.0 = the same scale)."""
    ref = float(reference)
    if not (math.isfinite(ref) and ref > 0.0):
        raise InvalidParameterError(
            f"the reference input scale must be a finite number > 0, got {reference!r}"
        )
    return rms_row_norm(X) / ref


def check_input_scale(
    X: Any,
    reference: float | None,
    *,
    spread_reference: float | None = None,
    what: str = "the inputs",
    stacklevel: int = 1,
) -> float:
    """Warn (:class:`~rmtcompress.errors.InputScaleWarning`) when inputs are far from the training ones (see the
    module docstring: the scale, and for batches of ≥ 16 rows the spread).

    Args:
        X: The inputs as the model sees them (after its input transform), 2-D.
        reference: The training inputs' RMS row norm at the same point; None: no scale check.
        spread_reference: The training inputs' spread (same definition); None: no spread check.
        what: How the message names the inputs.
        stacklevel: Which caller the warning names (1: the caller of this function, as :func:`warnings.warn`).

    Returns:
        The scale ratio ``rms_row_norm(X) / reference`` (NaN without a reference or rows).
    """
    n = int(X.shape[0]) if hasattr(X, "shape") else len(X)
    if n == 0:
        return math.nan
    problems = []
    ratio = math.nan
    if reference is not None:
        ratio = input_scale_ratio(X, reference)
        tol = INPUT_SCALE_TOLERANCE
        if not 1.0 / tol <= ratio <= tol:
            problems.append(
                f"RMS row norm {ratio * reference:.4g}, {ratio:.3g}× the training inputs' ({reference:.4g}; far: "
                f"outside [1/{tol:g}, {tol:g}]×)"
            )
    if spread_reference is not None and n >= SPREAD_MIN_ROWS:
        spread = _spread(X)
        r = spread / float(spread_reference)
        tol = INPUT_SPREAD_TOLERANCE
        if not 1.0 / tol <= r <= tol:
            problems.append(
                f"spread around their mean {spread:.4g}, {r:.3g}× the training inputs' ({spread_reference:.4g}; "
                f"far: outside [1/{tol:g}, {tol:g}]×{'; normalised twice?' if r < 1 else ''})"
            )
    if problems:
        warnings.warn(
            f"{what} have {' and '.join(problems)}: the predictions are likely wrong. Give the model raw features "
            "of the same kind as its training data (a stored input transform is applied for you), not features "
            "normalised or scaled another way",
            InputScaleWarning,
            stacklevel=stacklevel + 1,
        )
    return ratio


def _vector(values: ArrayLike, name: str, n_features: int) -> NDArray[np.float64]:
    try:
        arr = np.array(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"input transform {name} must be numbers: {exc}") from exc
    if arr.size not in (1, n_features):
        raise InvalidParameterError(
            f"input transform {name} must hold 1 or n_features={n_features} values, got {arr.size}"
        )
    if not np.isfinite(arr).all():
        raise InvalidParameterError(f"input transform {name} must be finite")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class InputTransform:
    """Frozen affine per-feature input map ``x ↦ (x − shift) / scale`` plus the training inputs' scale and spread
    after it.

    Attributes:
        n_features: p, the number of input features.
        shift: float64 (p,) or (1,) (one value for every feature).
        scale: float64 (p,) or (1,), every entry > 0.
        input_scale: RMS row norm ``sqrt(mean_i ‖t(x_i)‖²)`` of the transformed training inputs (> 0), or None
            when unknown (no scale check then).
        input_spread: their spread ``sqrt(Σ_i ‖t(x_i) − mean‖² / (n − 1))`` (> 0), or None (no spread check).
    """

    n_features: int
    shift: NDArray[np.float64]
    scale: NDArray[np.float64]
    input_scale: float | None = None
    input_spread: float | None = None

    def __post_init__(self) -> None:
        p = self.n_features
        if isinstance(p, bool) or not isinstance(p, int | np.integer) or int(p) < 1:
            raise InvalidParameterError(f"input transform n_features must be a positive integer, got {p!r}")
        object.__setattr__(self, "n_features", int(p))
        object.__setattr__(self, "shift", _vector(self.shift, "shift", int(p)))
        scale = _vector(self.scale, "scale", int(p))
        if (scale <= 0).any():
            raise InvalidParameterError("input transform scale must be > 0 for every feature")
        object.__setattr__(self, "scale", scale)
        for name in ("input_scale", "input_spread"):
            v = getattr(self, name)
            if v is None:
                continue
            if (
                isinstance(v, bool)
                or not isinstance(v, int | float | np.integer | np.floating)
                or not (math.isfinite(float(v)) and float(v) > 0.0)
            ):
                raise InvalidParameterError(f"{name} must be a finite number > 0 or None, got {v!r}")
            object.__setattr__(self, name, float(v))

    @classmethod
    def identity(
        cls, n_features: int, input_scale: float | None = None, input_spread: float | None = None
    ) -> InputTransform:
        """No preprocessing (shift 0, scale 1), optionally with the training inputs' scale and spread for the check."""
        return cls(n_features, np.zeros(1), np.ones(1), input_scale, input_spread)

    @property
    def is_identity(self) -> bool:
        """True when the map leaves inputs unchanged."""
        return bool((self.shift == 0.0).all() and (self.scale == 1.0).all())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InputTransform):
            return NotImplemented
        return (
            self.n_features == other.n_features
            and np.array_equal(self.shift, other.shift)
            and np.array_equal(self.scale, other.scale)
            and self.input_scale == other.input_scale
            and self.input_spread == other.input_spread
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        def short(a: NDArray[np.float64]) -> str:
            return f"{a[0]:.6g}" if a.size == 1 else f"<{a.size} values>"

        return (
            f"InputTransform(n_features={self.n_features}, shift={short(self.shift)}, "
            f"scale={short(self.scale)}, input_scale={self.input_scale!r}, input_spread={self.input_spread!r})"
        )

    def apply(self, X: Any) -> Any:
        """``(X − shift) / scale``: NumPy (n, p) → float64 NumPy (validated: 2-D, finite, p columns); a tensor →
        a tensor of its floating dtype (float32 for integer tensors), computed in float64."""
        if isinstance(X, torch.Tensor):
            if X.dim() < 1 or X.shape[-1] != self.n_features:
                raise InvalidParameterError(
                    f"the input has {X.shape[-1] if X.dim() else 0} features but the input transform expects "
                    f"{self.n_features}"
                )
            dtype = X.dtype if X.is_floating_point() else torch.float32
            shift = torch.tensor(self.shift, dtype=torch.float64, device=X.device)
            scale = torch.tensor(self.scale, dtype=torch.float64, device=X.device)
            return ((X.to(torch.float64) - shift) / scale).to(dtype)
        Xa = validate_X(X)
        if Xa.shape[1] != self.n_features:
            raise InvalidParameterError(
                f"X has {Xa.shape[1]} features but the input transform expects {self.n_features}"
            )
        return (Xa - self.shift) / self.scale

    def check(self, X_transformed: Any, *, what: str = "the inputs", stacklevel: int = 1) -> float:
        """:func:`check_input_scale` of already transformed inputs against :attr:`input_scale` and
        :attr:`input_spread`."""
        return check_input_scale(
            X_transformed,
            self.input_scale,
            spread_reference=self.input_spread,
            what=what,
            stacklevel=stacklevel + 1,
        )

    def describe(self) -> dict[str, Any]:
        """A short JSON-friendly summary (no arrays): kind, features, shift/scale kinds and the training scale."""

        def kind(a: NDArray[np.float64], neutral: float) -> str:
            if a.size == 1:
                return "none" if a[0] == neutral else f"shared {a[0]:.6g}"
            return "per-feature"

        return {
            "kind": "affine",
            "n_features": self.n_features,
            "shift": kind(self.shift, 0.0),
            "scale": kind(self.scale, 1.0),
            "input_scale": self.input_scale,
            "input_spread": self.input_spread,
        }


class InputTransformLayer(nn.Module):
    """:class:`InputTransform` as the first module of an ``nn.Sequential``: it maps the raw inputs and warns
    (:class:`~rmtcompress.errors.InputScaleWarning`) when the mapped batch is far from the training scale.

    The model files store it as the model's input-transform record; a loaded net with one starts with it.
    """

    def __init__(self, transform: InputTransform) -> None:
        """Wrap ``transform`` (an :class:`InputTransform`)."""
        super().__init__()
        if not isinstance(transform, InputTransform):
            raise InvalidParameterError(
                f"InputTransformLayer needs an rc InputTransform, got {type(transform).__name__}"
            )
        self.transform = transform

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The transformed batch (same floating dtype; computed in float64)."""
        out = self.transform.apply(x)
        if x.dim() == 2:
            with torch.no_grad():
                self.transform.check(out, stacklevel=4)  # forward ← Module._call_impl ← __call__ ← caller
        return out

    def extra_repr(self) -> str:
        d = self.transform.describe()
        return (
            f"n_features={d['n_features']}, shift={d['shift']}, scale={d['scale']}, "
            f"input_scale={d['input_scale']}, input_spread={d['input_spread']}"
        )
