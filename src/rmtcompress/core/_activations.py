"""Activation functions known to the theory engine, and a registry by name.

Three families, chosen by what can be integrated against a Gaussian in closed form:

* :class:`StepActivation` — piecewise constant ``σ(t) = v_k`` on ``(b_k, b_{k+1})``: sign, the 2-level σ_T and the
  3-level σ_Q of NTK-LC (Gu et al. 2022, eq. of Fig. 1), the ternary σ_ter of TRF, the binary heuristic
  ``1{t<−1} + 1{t>1}``. Moments, Hermite coefficients: closed form. ``σ'`` is a sum of Dirac masses, so
  ``E[σ'²]`` is infinite and the NTK does not exist (only the CK does).
* :class:`LinearAbsActivation` — ``σ(t) = a·t + b·|t|``: ReLU (a = b = ½), leaky ReLU, abs, identity.
  Closed forms everywhere, including the arc-cosine 2-D kernels.
* :class:`SmoothActivation` — anything else given as a NumPy callable (tanh, erf, GELU, SiLU, sigmoid,
  polynomials, user functions); moments by breakpoint-aware composite Gauss–Legendre quadrature.

Every activation works on NumPy arrays (float64, theory) and on torch tensors (empirical kernels).
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.special as sps
import torch

from ..errors import InvalidParameterError

__all__ = [
    "Activation",
    "ActivationKind",
    "LinearAbsActivation",
    "PerNeuronStep",
    "SmoothActivation",
    "StepActivation",
    "activation_names",
    "binary_heuristic",
    "custom_activation",
    "get_activation",
    "leaky_relu",
    "polynomial",
    "register_activation",
    "relu",
    "sigma_q",
    "sigma_t",
    "sigma_ter",
    "sign",
]

ArrayF = np.ndarray


class ActivationKind(enum.StrEnum):
    """How an activation is integrated against a Gaussian."""

    STEP = "step"  # piecewise constant: closed forms, σ' is a Dirac comb (no NTK)
    LINEAR_ABS = "linear_abs"  # a·t + b·|t|: closed forms (arc-cosine)
    SMOOTH = "smooth"  # generic callable: quadrature


class Activation:
    """Base class. Subclasses are frozen dataclasses with a ``name``."""

    name: str
    kind: ActivationKind

    def numpy(self, t: ArrayF) -> ArrayF:
        """σ(t) elementwise on a float64 array."""
        raise NotImplementedError

    def torch(self, t: torch.Tensor) -> torch.Tensor:
        """σ(t) elementwise on a tensor (same dtype/device)."""
        raise NotImplementedError

    def derivative(self, t: ArrayF) -> ArrayF:
        """σ'(t) elementwise (only for activations with a square-integrable derivative)."""
        raise NotImplementedError

    @property
    def has_derivative(self) -> bool:
        """True when σ' is a function (so E[σ'²] and the NTK exist); False for step functions."""
        return self.kind is not ActivationKind.STEP

    def __call__(self, t: Any) -> Any:
        if isinstance(t, torch.Tensor):
            return self.torch(t)
        return self.numpy(np.asarray(t, dtype=np.float64))


# --------------------------------------------------------------------------------------------------------------
# Step functions
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=True)
class StepActivation(Activation):
    """Piecewise-constant activation.

    ``σ(t) = values[0]`` for ``t < breakpoints[0]``, ``values[k]`` on ``[breakpoints[k-1], breakpoints[k])``, and
    ``values[-1]`` for ``t ≥ breakpoints[-1]`` (the value at a breakpoint has probability zero under a Gaussian).

    Args:
        breakpoints: non-decreasing finite thresholds, length m ≥ 1.
        values: m + 1 finite levels.
        name: display name.
    """

    breakpoints: tuple[float, ...]
    values: tuple[float, ...]
    name: str = "step"
    kind: ActivationKind = field(default=ActivationKind.STEP, init=False)

    def __post_init__(self) -> None:
        bps = tuple(float(b) for b in self.breakpoints)
        vals = tuple(float(v) for v in self.values)
        if len(bps) < 1:
            raise InvalidParameterError("a step activation needs at least one breakpoint")
        if len(vals) != len(bps) + 1:
            raise InvalidParameterError(
                f"a step activation with {len(bps)} breakpoints needs {len(bps) + 1} values, got {len(vals)}"
            )
        if not all(math.isfinite(v) for v in bps + vals):
            raise InvalidParameterError(
                f"step activation {self.name!r}: breakpoints and values must be finite, got {bps}, {vals}"
            )
        if any(b2 < b1 for b1, b2 in itertools.pairwise(bps)):
            raise InvalidParameterError(
                f"step activation {self.name!r}: breakpoints must be non-decreasing, got {bps}"
            )
        object.__setattr__(self, "breakpoints", bps)
        object.__setattr__(self, "values", vals)

    @property
    def jumps(self) -> ArrayF:
        """Jump sizes ``values[k+1] − values[k]`` at each breakpoint, shape (m,)."""
        v = np.asarray(self.values)
        return np.diff(v)

    def numpy(self, t: ArrayF) -> ArrayF:
        t = np.asarray(t, dtype=np.float64)
        idx = np.searchsorted(np.asarray(self.breakpoints), t, side="right")
        return np.asarray(self.values)[idx]

    def torch(self, t: torch.Tensor) -> torch.Tensor:
        out = torch.full_like(t, self.values[0])
        for b, jump in zip(self.breakpoints, self.jumps, strict=True):
            if jump != 0.0:
                out = out + float(jump) * (t >= b).to(t.dtype)
        return out

    def derivative(self, t: ArrayF) -> ArrayF:
        raise InvalidParameterError(
            f"activation {self.name!r} is a step function: its derivative is a sum of Dirac masses, so E[σ'²] and the "
            "NTK do not exist; use the CK path"
        )


@dataclass(frozen=True, eq=False)
class PerNeuronStep(Activation):
    """A layer of k-level step functions, one per neuron: ``σ_j(t) = levels[i, j]`` for
    ``thresholds[i−1, j] ≤ t < thresholds[i, j]`` (``levels[0, j]`` below the first threshold).

    Not a scalar function, so the theory engine (Gaussian moments, equivalents) does not take it: it is what
    :func:`rmtcompress.calibrate` fits on training data for a compressed random-feature net. Runtime code:
    ``log2(k)`` bits per neuron.

    Args:
        thresholds: float array (k − 1, d), non-decreasing along axis 0, finite.
        levels: float array (k, d), finite.
        name: display name.
    """

    thresholds: np.ndarray
    levels: np.ndarray
    name: str = "per-neuron-step"
    kind: ActivationKind = field(default=ActivationKind.STEP, init=False)
    _thr_torch: torch.Tensor = field(init=False, repr=False, compare=False)
    _lev_torch: torch.Tensor = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        t = np.array(self.thresholds, dtype=np.float64)
        v = np.array(self.levels, dtype=np.float64)
        if t.ndim != 2 or v.ndim != 2 or t.shape[0] < 1:
            raise InvalidParameterError(
                f"per-neuron step: thresholds must be (k−1, d) and levels (k, d), got {t.shape} and {v.shape}"
            )
        if v.shape != (t.shape[0] + 1, t.shape[1]):
            raise InvalidParameterError(
                f"per-neuron step: {t.shape[0]} thresholds per neuron need levels of shape "
                f"{(t.shape[0] + 1, t.shape[1])}, got {v.shape}"
            )
        if not (np.isfinite(t).all() and np.isfinite(v).all()):
            raise InvalidParameterError("per-neuron step: thresholds and levels must be finite")
        if np.any(np.diff(t, axis=0) < 0):
            raise InvalidParameterError("per-neuron step: thresholds must be non-decreasing for every neuron")
        t.setflags(write=False)
        v.setflags(write=False)
        object.__setattr__(self, "thresholds", t)
        object.__setattr__(self, "levels", v)
        object.__setattr__(self, "_thr_torch", torch.from_numpy(t.copy()))
        object.__setattr__(self, "_lev_torch", torch.from_numpy(v.copy()))

    @property
    def width(self) -> int:
        """Number of neurons d."""
        return int(self.thresholds.shape[1])

    @property
    def n_levels(self) -> int:
        """Number of levels k."""
        return int(self.levels.shape[0])

    def _check(self, t: Any) -> None:
        if t.ndim < 1 or t.shape[-1] != self.width:
            raise InvalidParameterError(
                f"per-neuron step of width {self.width} got input of shape {tuple(t.shape)}"
            )

    def codes(self, t: torch.Tensor) -> torch.Tensor:
        """Level index in {0, …, k − 1} of every entry of t (…, d), int64."""
        self._check(t)
        thr = self._thr_torch.to(dtype=t.dtype, device=t.device)
        return (t.unsqueeze(-2) >= thr).sum(-2)

    def indicators(self, t: torch.Tensor) -> torch.Tensor:
        """Thermometer code: ``[1{t ≥ thresholds[i]} for i < k − 1]`` concatenated on the last axis, (…, (k−1)·d)."""
        self._check(t)
        thr = self._thr_torch.to(dtype=t.dtype, device=t.device)
        return torch.cat([(t >= thr[i]).to(t.dtype) for i in range(thr.shape[0])], dim=-1)

    def numpy(self, t: ArrayF) -> ArrayF:
        t = np.asarray(t, dtype=np.float64)
        self._check(t)
        idx = (t[..., None, :] >= self.thresholds).sum(-2)
        return np.take_along_axis(
            np.broadcast_to(self.levels, (*t.shape[:-1], *self.levels.shape)), idx[..., None, :], axis=-2
        )[..., 0, :]

    def torch(self, t: torch.Tensor) -> torch.Tensor:
        idx = self.codes(t)
        lev = self._lev_torch.to(dtype=t.dtype, device=t.device)
        out = torch.zeros_like(t)
        for i in range(lev.shape[0]):
            out = torch.where(idx == i, lev[i], out)
        return out

    def derivative(self, t: ArrayF) -> ArrayF:
        raise InvalidParameterError(f"activation {self.name!r} is a step function: no derivative, so no NTK")


def sign() -> StepActivation:
    """sign(t) ∈ {−1, 1}."""
    return StepActivation((0.0,), (-1.0, 1.0), name="sign")


def sigma_t(s1: float, s2: float, a: float) -> StepActivation:
    """The 2-level σ_T of NTK-LC: ``a·(1{t < s1} + 1{t > s2})``, s1 ≤ s2 (values {0, a})."""
    if not s1 <= s2:
        raise InvalidParameterError(f"sigma_t needs s1 <= s2, got s1={s1}, s2={s2}")
    return StepActivation((s1, s2), (a, 0.0, a), name=f"sigma_t({s1:.4g},{s2:.4g},{a:.4g})")


def sigma_q(r1: float, r2: float, r3: float, r4: float, b1: float, b2: float) -> StepActivation:
    """The 3-level σ_Q of NTK-LC: ``b1·(1{t<r1} + 1{t>r4}) + b2·1{r2 ≤ t ≤ r3}``, r1 ≤ r2 ≤ r3 ≤ r4."""
    if not r1 <= r2 <= r3 <= r4:
        raise InvalidParameterError(f"sigma_q needs r1 <= r2 <= r3 <= r4, got {(r1, r2, r3, r4)}")
    return StepActivation(
        (r1, r2, r3, r4),
        (b1, 0.0, b2, 0.0, b1),
        name=f"sigma_q({r1:.3g},{r2:.3g},{r3:.3g},{r4:.3g},{b1:.3g},{b2:.3g})",
    )


def sigma_ter(s_minus: float, s_plus: float) -> StepActivation:
    """The ternary activation of TRF: ``1{t > s_plus} − 1{t < s_minus}``, s_minus ≤ s_plus (values {−1, 0, 1})."""
    if not s_minus <= s_plus:
        raise InvalidParameterError(f"sigma_ter needs s_minus <= s_plus, got {s_minus}, {s_plus}")
    return StepActivation((s_minus, s_plus), (-1.0, 0.0, 1.0), name=f"sigma_ter({s_minus:.4g},{s_plus:.4g})")


def binary_heuristic() -> StepActivation:
    """The NTK-LC paper's heuristic binary activation ``1{t < −1} + 1{t > 1}``."""
    return StepActivation((-1.0, 1.0), (1.0, 0.0, 1.0), name="binary_heuristic")


# --------------------------------------------------------------------------------------------------------------
# a·t + b·|t|
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=True)
class LinearAbsActivation(Activation):
    """``σ(t) = a·t + b·|t|`` — ReLU is (½, ½), leaky ReLU with slope s is ((1+s)/2, (1−s)/2), abs is (0, 1)."""

    a: float
    b: float
    name: str = "linear_abs"
    kind: ActivationKind = field(default=ActivationKind.LINEAR_ABS, init=False)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.a) and math.isfinite(self.b)):
            raise InvalidParameterError(f"linear_abs activation needs finite a, b, got {self.a}, {self.b}")
        object.__setattr__(self, "a", float(self.a))
        object.__setattr__(self, "b", float(self.b))

    @property
    def breakpoints(self) -> tuple[float, ...]:
        """The kink at 0 (empty for a linear function)."""
        return (0.0,) if self.b != 0.0 else ()

    def numpy(self, t: ArrayF) -> ArrayF:
        t = np.asarray(t, dtype=np.float64)
        return self.a * t + self.b * np.abs(t)

    def torch(self, t: torch.Tensor) -> torch.Tensor:
        if self.a == 0.5 and self.b == 0.5:
            return torch.relu(t)
        return self.a * t + self.b * torch.abs(t)

    def derivative(self, t: ArrayF) -> ArrayF:
        t = np.asarray(t, dtype=np.float64)
        return self.a + self.b * np.sign(t)


def relu() -> LinearAbsActivation:
    """max(t, 0)."""
    return LinearAbsActivation(0.5, 0.5, name="relu")


def leaky_relu(negative_slope: float = 0.01) -> LinearAbsActivation:
    """max(t, s·t) for slope s."""
    s = float(negative_slope)
    return LinearAbsActivation((1.0 + s) / 2.0, (1.0 - s) / 2.0, name=f"leaky_relu({s:g})")


# --------------------------------------------------------------------------------------------------------------
# Generic (quadrature)
# --------------------------------------------------------------------------------------------------------------


def _numeric_derivative(fn: Callable[[ArrayF], ArrayF]) -> Callable[[ArrayF], ArrayF]:
    def d(t: ArrayF) -> ArrayF:
        t = np.asarray(t, dtype=np.float64)
        h = 1e-5 * np.maximum(1.0, np.abs(t))
        return (np.asarray(fn(t + h)) - np.asarray(fn(t - h))) / (2.0 * h)

    return d


@dataclass(frozen=True, eq=False)
class SmoothActivation(Activation):
    """Generic activation given by callables; Gaussian moments by composite Gauss–Legendre quadrature.

    Args:
        name: display name.
        fn: σ on float64 NumPy arrays.
        dfn: σ' on NumPy arrays (central differences if None).
        torch_fn: σ on tensors (falls back to NumPy round-trip through ``fn`` if None; no autograd then).
        breakpoints: points where σ or σ' is not smooth (quadrature panels are split there).
    """

    name: str
    fn: Callable[[ArrayF], ArrayF]
    dfn: Callable[[ArrayF], ArrayF] | None = None
    torch_fn: Callable[[torch.Tensor], torch.Tensor] | None = None
    breakpoints: tuple[float, ...] = ()
    kind: ActivationKind = field(default=ActivationKind.SMOOTH, init=False)

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise InvalidParameterError(f"activation {self.name!r}: fn must be callable")
        bps = tuple(sorted(float(b) for b in self.breakpoints))
        if not all(math.isfinite(b) for b in bps):
            raise InvalidParameterError(f"activation {self.name!r}: breakpoints must be finite, got {bps}")
        object.__setattr__(self, "breakpoints", bps)
        probe = np.asarray(self.fn(np.linspace(-3.0, 3.0, 7)), dtype=np.float64)
        if probe.shape != (7,):
            raise InvalidParameterError(
                f"activation {self.name!r}: fn must act elementwise on a NumPy array (shape (7,) -> {probe.shape})"
            )
        if not np.all(np.isfinite(probe)):
            raise InvalidParameterError(f"activation {self.name!r}: fn returned non-finite values on [-3, 3]")
        if bps:
            b = np.asarray(bps)
            delta = 1e-9 * np.maximum(1.0, np.abs(b))
            gap = np.abs(
                np.asarray(self.fn(b + delta), dtype=np.float64)
                - np.asarray(self.fn(b - delta), dtype=np.float64)
            )
            jumps = tuple(
                float(x)
                for x, g in zip(bps, gap, strict=True)
                if g > 1e-6 * (1.0 + float(np.max(np.abs(probe))))
            )
        else:
            jumps = ()
        object.__setattr__(self, "_jump_points", jumps)

    @property
    def has_derivative(self) -> bool:
        """False when ``fn`` jumps at one of its declared breakpoints (σ' then has a Dirac mass)."""
        return not getattr(self, "_jump_points", ())

    def numpy(self, t: ArrayF) -> ArrayF:
        return np.asarray(self.fn(np.asarray(t, dtype=np.float64)), dtype=np.float64)

    def torch(self, t: torch.Tensor) -> torch.Tensor:
        if self.torch_fn is not None:
            return self.torch_fn(t)
        out = self.numpy(t.detach().cpu().numpy().astype(np.float64))
        return torch.from_numpy(out).to(dtype=t.dtype, device=t.device)

    def derivative(self, t: ArrayF) -> ArrayF:
        if not self.has_derivative:
            raise InvalidParameterError(
                f"activation {self.name!r} jumps at {list(getattr(self, '_jump_points', ()))}: its derivative has "
                "Dirac masses, so E[σ'²] and the NTK do not exist"
            )
        d = self.dfn if self.dfn is not None else _numeric_derivative(self.fn)
        return np.asarray(d(np.asarray(t, dtype=np.float64)), dtype=np.float64)


def polynomial(coefficients: Sequence[float], name: str | None = None) -> SmoothActivation:
    """σ(t) = Σ_k c_k t^k (coefficients in increasing degree)."""
    c = np.asarray([float(x) for x in coefficients], dtype=np.float64)
    if c.ndim != 1 or c.size == 0 or not np.all(np.isfinite(c)):
        raise InvalidParameterError(
            f"polynomial needs a non-empty list of finite coefficients, got {coefficients!r}"
        )
    p = np.polynomial.Polynomial(c)
    dp = p.deriv()
    coeffs = [float(x) for x in c]

    def torch_poly(t: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(t)
        for k in reversed(range(len(coeffs))):
            out = out * t + coeffs[k]
        return out

    return SmoothActivation(
        name=name or "poly(" + ",".join(f"{x:g}" for x in coeffs) + ")",
        fn=lambda t: p(t),
        dfn=lambda t: dp(t),
        torch_fn=torch_poly,
    )


def custom_activation(
    fn: Callable[[ArrayF], ArrayF],
    *,
    name: str = "custom",
    derivative: Callable[[ArrayF], ArrayF] | None = None,
    torch_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    breakpoints: Sequence[float] = (),
) -> SmoothActivation:
    """Wrap a user callable (NumPy, elementwise) as an activation; declare kinks/jumps in ``breakpoints``."""
    return SmoothActivation(
        name=name, fn=fn, dfn=derivative, torch_fn=torch_fn, breakpoints=tuple(breakpoints)
    )


_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _gelu_np(t: ArrayF) -> ArrayF:
    return 0.5 * t * (1.0 + sps.erf(t / _SQRT2))


def _dgelu_np(t: ArrayF) -> ArrayF:
    return 0.5 * (1.0 + sps.erf(t / _SQRT2)) + t * _INV_SQRT_2PI * np.exp(-0.5 * t * t)


def _silu_np(t: ArrayF) -> ArrayF:
    return t * sps.expit(t)


def _dsilu_np(t: ArrayF) -> ArrayF:
    s = sps.expit(t)
    return s * (1.0 + t * (1.0 - s))


def _tanh() -> SmoothActivation:
    return SmoothActivation("tanh", np.tanh, lambda t: 1.0 - np.tanh(t) ** 2, torch.tanh)


def _erf() -> SmoothActivation:
    return SmoothActivation(
        "erf", lambda t: sps.erf(t), lambda t: 2.0 / math.sqrt(math.pi) * np.exp(-t * t), torch.erf
    )


def _gelu() -> SmoothActivation:
    return SmoothActivation("gelu", _gelu_np, _dgelu_np, torch.nn.functional.gelu)


def _silu() -> SmoothActivation:
    return SmoothActivation("silu", _silu_np, _dsilu_np, torch.nn.functional.silu)


def _sigmoid() -> SmoothActivation:
    return SmoothActivation(
        "sigmoid", lambda t: sps.expit(t), lambda t: sps.expit(t) * (1.0 - sps.expit(t)), torch.sigmoid
    )


def _poly_default() -> SmoothActivation:
    # The NTK-LC Fig. 2 (right) uses a "poly" first layer whose coefficients we could not read; we take the
    # quadratic t + t²/2 (non-zero first and second Hermite components, so both α_1 and α_2/α_3 are exercised).
    return polynomial([0.0, 1.0, 0.5], name="poly")


_REGISTRY: dict[str, Callable[[], Activation]] = {
    "relu": relu,
    "leaky_relu": leaky_relu,
    "abs": lambda: LinearAbsActivation(0.0, 1.0, name="abs"),
    "identity": lambda: LinearAbsActivation(1.0, 0.0, name="identity"),
    "sign": sign,
    "binary_heuristic": binary_heuristic,
    "tanh": _tanh,
    "erf": _erf,
    "gelu": _gelu,
    "silu": _silu,
    "sigmoid": _sigmoid,
    "poly": _poly_default,
}


def register_activation(name: str, factory: Callable[[], Activation], *, overwrite: bool = False) -> None:
    """Make ``get_activation(name)`` return ``factory()``."""
    key = name.strip().lower()
    if not key:
        raise InvalidParameterError("activation name must be non-empty")
    if key in _REGISTRY and not overwrite:
        raise InvalidParameterError(
            f"activation {key!r} is already registered (pass overwrite=True to replace it)"
        )
    _REGISTRY[key] = factory


def activation_names() -> list[str]:
    """Names accepted by :func:`get_activation`."""
    return sorted(_REGISTRY)


def get_activation(spec: str | Activation) -> Activation:
    """Resolve a name (case-insensitive, e.g. ``"relu"``) or pass an :class:`Activation` through."""
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key in _REGISTRY:
            return _REGISTRY[key]()
        raise InvalidParameterError(f"unknown activation {spec!r}; known: {', '.join(activation_names())}")
    raise InvalidParameterError(
        f"an activation must be a registered name or an Activation, got {type(spec).__name__}"
    )


def resolve_activations(specs: Sequence[str | Activation] | str | Activation) -> list[Activation]:
    """Resolve a list of activation specs (a single spec is a one-layer list)."""
    if isinstance(specs, (str, Activation)):
        specs = [specs]
    out = [get_activation(s) for s in specs]
    if not out:
        raise InvalidParameterError("at least one activation (one per layer) is required")
    return out
