"""k-level quantized activations as :class:`~rmtcompress.activations.StepActivation` s.

A quantizer ``Q`` maps the *output* ``y = σ(t)`` of an activation to one of k levels
``v_0 < … < v_{k−1}`` (``Q(y) = v_j`` for ``θ_j ≤ y < θ_{j+1}``, thresholds ``θ_1 < … < θ_{k−1}``,
``θ_0 = −∞``, ``θ_k = +∞``). The quantized activation ``σ_q(t) = Q(σ(t))`` is piecewise constant in the
pre-activation ``t``: its breakpoints are the ``t`` where ``σ(t)`` crosses a threshold. It is returned as a
:class:`StepActivation`, so the whole theory engine (closed-form Gaussian moments, recursions, CK equivalents and
limits) covers it. A non-monotone σ (e.g. ``abs``) gives more breakpoints than ``k − 1``.

Three fits:

* :func:`lloyd_max_quantizer` — Lloyd–Max (minimum mean-squared error) quantizer of ``Y = σ(τξ)``, ξ ~ N(0, 1):
  alternate thresholds = midpoints of adjacent levels and levels = conditional means ``E[Y | Y in cell]`` until
  the levels stop moving. Cell probabilities and conditional means are computed by composite 16-node
  Gauss–Legendre quadrature over ξ ∈ [−14, 14], split at every ξ where σ(τξ) crosses a threshold (found by
  scanning σ on a grid of step 10⁻³ and refining each sign change by vectorised bisection to machine precision)
  and at the activation's declared breakpoints. Atoms of Y (flat pieces of σ, e.g. ReLU's ``P(Y = 0) = ½``)
  simply fall into the cell of their value. The fixed point is reached with safeguarded Newton steps on
  ``T(v) = v`` (T the Lloyd map; tridiagonal Jacobian, taken only where it lowers the Lloyd residual and the
  distortion Hessian is positive definite, else a plain Lloyd step): 3–6 iterations instead of hundreds to
  thousands for k ≥ 8.
* :func:`uniform_quantizer` — k evenly spaced levels over ``[q_lo, q_hi]``, thresholds at midpoints.
* :func:`lloyd_max_data_quantizer` — Lloyd–Max on the empirical law of ``σ(z)`` for observed pre-activations z.

The returned activation is **not centred**: centring (subtracting ``E[σ_q(τ_{ℓ−1}ξ)]`` at the running scale)
happens in the network / theory engine like for any other activation.

Example:
    >>> import rmtcompress as rc
    >>> from rmtcompress.quantizers import lloyd_max_quantizer
    >>> q = lloyd_max_quantizer("relu", 1.0, 4)
    >>> float(q.levels[0]), q.k
    (0.0, 4)
    >>> m = rc.gaussian_moments(q.activation, 1.0)   # closed form, the activation is a StepActivation
"""

from __future__ import annotations

import itertools
import math
import numbers
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import scipy.linalg
import scipy.special as sps

from .._utils import Registry, SeedLike, as_generator, check_int
from ..core import Activation, StepActivation, get_activation
from ..errors import InvalidParameterError, QuantizerConvergenceWarning
from ..theory import std_normal_pdf

__all__ = [
    "QUANTIZERS",
    "QUANTIZER_METHODS",
    "ActivationQuantizer",
    "QuantizerConvergenceWarning",
    "lloyd_max_data_quantizer",
    "lloyd_max_quantizer",
    "quantize_activation",
    "uniform_quantizer",
]

ArrayF = np.ndarray
QUANTIZER_METHODS: tuple[str, ...] = ("lloyd-max", "uniform", "lloyd-max-data")

K_MIN = 2
K_MAX = 256
MAX_DATA_SAMPLES = 1_000_000

_XI_HALF_WIDTH = 14.0  # N(0,1) mass beyond ±14 is ~1e-44
_SCAN_POINTS = 28_001  # ξ-grid step 1e-3 for locating threshold crossings
_SCAN = np.linspace(-_XI_HALF_WIDTH, _XI_HALF_WIDTH, _SCAN_POINTS)
_SUPPORT_HALF_WIDTH = 8.5  # distinct values are counted where the N(0,1) mass is not negligible
_DATA_GRID_POINTS = 20_001  # t-grid over the observed pre-activation range (data-fitted quantizers)
_DATA_GRID_PAD = 0.05  # the t-grid extends the observed range by 5 % on each side
_PANEL = 0.5  # maximal Gauss–Legendre panel width in ξ
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(16)
_ATOM_MIN_MASS = 1e-6  # an atom of σ(τξ) at 0 counts (keep_zero default) above this probability
_ATOM_PROBE = 50  # grid steps past the end of a zero run where σ must be visibly non-zero
_ATOM_REL_SIZE = 1e-8  # "visibly non-zero": |σ| > 1e-8 · std σ(τξ) (rules out float underflow, e.g. GELU)
_BISECT_MAX = 200


@dataclass(frozen=True, eq=False)
class ActivationQuantizer:
    """A k-level quantized activation and how it was fitted.

    Attributes:
        activation: ``σ_q(t) = Q(σ(t))`` as a :class:`StepActivation` of the pre-activation t (breakpoints in t,
            values = levels). Not centred.
        levels: (k,) output levels ``v_0 < … < v_{k−1}``.
        thresholds: (k − 1,) decision thresholds in output space (midpoints of adjacent levels).
        source: registry name (or ``name``) of the quantized activation σ.
        tau: the pre-activation scale τ the quantizer was fitted at (``None`` if fitted on data).
        method: ``"lloyd-max"``, ``"uniform"`` or ``"lloyd-max-data"`` (``"uniform-data"`` for the trained-net
            quantizers of :func:`rmtcompress.pruning.quantize_activations`).
        distortion: ``E[(σ(τξ) − σ_q(τξ))²]`` (Gaussian fits) or its empirical mean over the (sub)sample.
        bits: ``log2(k)``.
        iterations: Lloyd iterations performed (0 for the uniform quantizer).
    """

    activation: StepActivation
    levels: np.ndarray
    thresholds: np.ndarray
    source: str
    tau: float | None
    method: str
    distortion: float
    bits: float
    iterations: int

    @property
    def k(self) -> int:
        """Number of levels."""
        return int(self.levels.size)

    def quantize(self, y: Any) -> ArrayF:
        """Apply the output-space quantizer ``Q`` to activation outputs ``y`` (any shape).

        Args:
            y: values of σ.

        Returns:
            float64 array of the same shape with entries in :attr:`levels`.
        """
        arr = np.asarray(y, dtype=np.float64)
        return np.asarray(self.levels[np.searchsorted(self.thresholds, arr, side="right")], dtype=np.float64)


# ------------------------------------------------------------------------------------------------ validation


def _check_k(k: Any) -> int:
    return check_int(k, "k (number of levels)", K_MIN, K_MAX)


def _check_positive_float(value: Any, name: str) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise InvalidParameterError(f"{name} must be a positive finite number; got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v <= 0.0:
        raise InvalidParameterError(f"{name} must be a positive finite number; got {value!r}")
    return v


def _check_positive_int(value: Any, name: str) -> int:
    return check_int(value, name, 1)


def _check_keep_zero(keep_zero: Any) -> bool | None:
    if keep_zero is None or isinstance(keep_zero, bool | np.bool_):
        return None if keep_zero is None else bool(keep_zero)
    raise InvalidParameterError(f"keep_zero must be None, True or False; got {keep_zero!r}")


def _resolve(activation: str | Activation) -> tuple[Activation, str]:
    act = get_activation(activation)  # ValueError for unknown names, lists the known ones
    source = activation.strip().lower() if isinstance(activation, str) else act.name
    return act, source


# ------------------------------------------------------------------------------------------------ numerics


def _bracket_crossings(
    fn: Callable[[ArrayF], ArrayF], x: ArrayF, y: ArrayF, th: ArrayF, xscale: float
) -> tuple[ArrayF, ArrayF, ArrayF]:
    """Points where ``fn`` crosses each of the sorted thresholds ``th``, located on the grid (x, y = fn(x)).

    A crossing of θ lies in grid cell i when ``(y_i ≥ θ) ≠ (y_{i+1} ≥ θ)``; the bracket is then halved
    (vectorised over all brackets) until it is one or two floats wide (or ``2·eps·max(|x|, xscale)``). Crossings
    that enter and leave a grid cell together are not seen.

    Returns:
        (points, threshold index, side) — the right end of each final bracket (first point on the far side of θ),
        the index into ``th`` of the threshold crossed, and whether ``fn ≥ θ`` on the left of the crossing.
    """
    lo_y = np.minimum(y[:-1], y[1:])
    hi_y = np.maximum(y[:-1], y[1:])
    start = np.searchsorted(th, lo_y, side="right")  # thresholds in (lo_y, hi_y] are crossed
    stop = np.searchsorted(th, hi_y, side="right")
    counts = stop - start
    total = int(counts.sum())
    if total == 0:
        return np.empty(0), np.empty(0, dtype=np.int64), np.empty(0, dtype=bool)
    seg = np.repeat(np.arange(counts.size), counts)
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    which = np.repeat(start, counts) + offsets
    theta = th[which]
    a = x[seg].copy()
    b = x[seg + 1].copy()
    side_a = y[seg] >= theta
    eps = np.finfo(np.float64).eps
    for _ in range(_BISECT_MAX):
        m = 0.5 * (a + b)
        active = (m > a) & (m < b) & ((b - a) > 2.0 * eps * np.maximum(np.abs(m), xscale))
        if not active.any():
            break
        idx = np.flatnonzero(active)
        same = (fn(m[idx]) >= theta[idx]) == side_a[idx]
        a[idx[same]] = m[idx[same]]
        b[idx[~same]] = m[idx[~same]]
    return b, which, side_a


def _find_crossings(
    fn: Callable[[ArrayF], ArrayF], x: ArrayF, y: ArrayF, thresholds: ArrayF, xscale: float
) -> ArrayF:
    """Sorted points where ``fn`` crosses any of ``thresholds`` (see :func:`_bracket_crossings`)."""
    points, _, _ = _bracket_crossings(fn, x, y, np.sort(np.asarray(thresholds, dtype=np.float64)), xscale)
    return np.sort(points)


def _gauss_legendre(edges: ArrayF) -> tuple[ArrayF, ArrayF, ArrayF]:
    """Composite 16-node Gauss–Legendre rule on each interval of ``edges`` (panels ≤ 0.5 wide).

    Returns nodes, plain (un-weighted by a density) weights and the interval index of each node.
    """
    widths = np.diff(edges)
    n_pan = np.maximum(1, np.ceil(widths / _PANEL)).astype(np.int64)
    pan_int = np.repeat(np.arange(widths.size), n_pan)
    pan_idx = np.arange(pan_int.size) - np.repeat(np.cumsum(n_pan) - n_pan, n_pan)
    h = widths[pan_int] / n_pan[pan_int]
    lo = edges[pan_int] + pan_idx * h
    nodes = lo[:, None] + 0.5 * h[:, None] * (1.0 + _GL_NODES[None, :])
    weights = 0.5 * h[:, None] * _GL_WEIGHTS[None, :]
    return nodes.ravel(), weights.ravel(), np.repeat(pan_int, _GL_NODES.size)


def _weighted_quantiles(y: ArrayF, w: ArrayF, probs: ArrayF) -> ArrayF:
    order = np.argsort(y, kind="stable")
    ys, ws = y[order], w[order]
    cum = np.cumsum(ws)
    mid = (cum - 0.5 * ws) / cum[-1]
    return np.asarray(np.interp(probs, mid, ys), dtype=np.float64)


def _fill_distinct(values: ArrayF, lo: float, hi: float, n: int) -> ArrayF:
    """n strictly increasing values: the distinct ``values`` plus midpoints of the widest gaps of [lo, hi]."""
    u = np.unique(values)
    while u.size < n:
        ext = np.unique(np.concatenate(([lo], u, [hi])))
        gaps = np.diff(ext)
        i = int(np.argmax(gaps))
        mid = 0.5 * (ext[i] + ext[i + 1])
        if not ext[i] < mid < ext[i + 1]:
            raise InvalidParameterError(
                "cannot place distinct initial levels: the output range is too narrow"
            )
        u = np.unique(np.append(u, mid))
    return u[:n] if u.size > n else u


def _zero_runs(y: ArrayF, spread: float) -> list[tuple[int, int]]:
    """Index ranges [i0, i1] (≥ 2 grid points) where ``y == 0`` exactly and σ visibly leaves 0 at an end.

    A run counts only when, ``_ATOM_PROBE`` grid points past one of its interior ends, ``|σ|`` exceeds
    ``1e-8 · spread``: a genuine flat piece at 0 (ReLU, a zero level of a step function), not the float underflow
    of a smooth tail (GELU(t) is exactly 0.0 in float64 for t < −8.3).
    """
    n = y.size
    z = np.concatenate(([False], y == 0.0, [False]))
    change = np.flatnonzero(np.diff(z.astype(np.int8)))
    runs: list[tuple[int, int]] = []
    for i0, end in zip(change[::2], change[1::2], strict=True):
        i1 = int(end) - 1
        if i1 - i0 < 1:
            continue
        genuine = False
        if i1 < n - 1:
            genuine |= abs(float(y[min(i1 + _ATOM_PROBE, n - 1)])) > _ATOM_REL_SIZE * spread
        if i0 > 0:
            genuine |= abs(float(y[max(int(i0) - _ATOM_PROBE, 0)])) > _ATOM_REL_SIZE * spread
        if genuine:
            runs.append((int(i0), i1))
    return runs


def _init_levels(
    quantile: Callable[[ArrayF, bool], ArrayF], lo: float, hi: float, k: int, keep_zero: bool
) -> tuple[ArrayF, int | None]:
    """Initial levels at the quantiles (j + ½)/k of Y, made strictly increasing.

    With ``keep_zero`` the k − 1 free levels start at the quantiles (j + ½)/(k − 1) of Y | Y ≠ 0 and the level 0 is
    added; returns the levels and the index of the pinned 0 level (None without ``keep_zero``).
    """
    if not keep_zero:
        return _fill_distinct(quantile((np.arange(k) + 0.5) / k, False), lo, hi, k), None
    q = quantile((np.arange(k - 1) + 0.5) / (k - 1), True)
    q = q[q != 0.0]
    levels = _fill_distinct(np.concatenate((q, [0.0])), min(lo, 0.0), max(hi, 0.0), k)
    pins = np.flatnonzero(levels == 0.0)
    return levels, int(pins[0])


# ------------------------------------------------------------------------------------------------ the two laws


class _GaussianLaw:
    """Law of Y = σ(τξ), ξ ~ N(0, 1), truncated to ξ ∈ [−14, 14]."""

    def __init__(self, act: Activation, tau: float, source: str) -> None:
        self.act = act
        self.tau = tau
        self.source = source
        kinks = np.asarray(getattr(act, "breakpoints", ()), dtype=np.float64) / tau
        self.kinks = kinks[np.abs(kinks) < _XI_HALF_WIDTH]
        with np.errstate(all="ignore"):
            self.y_scan = self.fn(_SCAN)
        if not np.all(np.isfinite(self.y_scan)):
            raise InvalidParameterError(
                f"activation {source!r} returned non-finite values on the Gaussian range |t| <= 14·tau "
                f"(tau = {tau:g}); cannot quantize it"
            )
        edges = np.unique(np.concatenate(([-_XI_HALF_WIDTH, _XI_HALF_WIDTH], self.kinks)))
        x, w0, _ = _gauss_legendre(edges)
        self.base_x, self.base_w = x, w0 * std_normal_pdf(x)
        self.base_y = self.fn(x)
        mass = float(self.base_w.sum())
        self.mean = float(self.base_w @ self.base_y) / mass
        self.var = float(self.base_w @ (self.base_y - self.mean) ** 2) / mass
        self.std = math.sqrt(max(self.var, 0.0))
        central = self.y_scan[np.abs(_SCAN) <= _SUPPORT_HALF_WIDTH]
        self.n_distinct = int(np.unique(central).size)
        self.y_min = float(self.y_scan.min())
        self.y_max = float(self.y_scan.max())

    def fn(self, xi: ArrayF) -> ArrayF:
        return np.asarray(self.act.numpy(self.tau * np.asarray(xi, dtype=np.float64)), dtype=np.float64)

    def validate(self, k: int) -> None:
        if self.n_distinct < 2 or not self.std > 1e-300:
            raise InvalidParameterError(
                f"activation {self.source!r} has no spread at tau = {self.tau:g}: σ(τξ) is constant for "
                "|ξ| <= 8.5 (Var ≈ 0), so there is no mass to quantize"
            )
        if self.n_distinct < k:
            raise InvalidParameterError(
                f"activation {self.source!r} takes only {self.n_distinct} distinct values at tau = {self.tau:g}; "
                f"cannot fit k = {k} levels (use k <= {self.n_distinct})"
            )

    def zero_atom_mass(self) -> float:
        cdf = sps.ndtr(_SCAN)
        return float(sum(cdf[i1] - cdf[i0] for i0, i1 in _zero_runs(self.y_scan, self.std)))

    def quantile(self, probs: ArrayF, nonzero_only: bool) -> ArrayF:
        y, w = self.base_y, self.base_w
        if nonzero_only:
            keep = (y != 0.0) & (w > 0.0)
            y, w = y[keep], w[keep]
        return _weighted_quantiles(y, w, probs)

    def cdf_below(self, thetas: ArrayF) -> ArrayF:
        """``P(σ(τξ) < θ)`` for each θ, from the crossings of θ: ``1{σ(−14τ) < θ} + Σ_c ±Φ(−c)``."""
        order = np.argsort(thetas)
        th = np.asarray(thetas, dtype=np.float64)[order]
        points, which, side_a = _bracket_crossings(self.fn, _SCAN, self.y_scan, th, 1.0)
        out = (self.y_scan[0] < th).astype(np.float64)
        np.add.at(out, which, np.where(side_a, 1.0, -1.0) * sps.ndtr(-points))
        res = np.empty_like(out)
        res[order] = out
        return res

    def density(self, thresholds: ArrayF) -> ArrayF:
        """Density of Y at each threshold (central difference of :meth:`cdf_below`, step 10⁻⁶·std)."""
        h = 1e-6 * self.std
        f = self.cdf_below(np.concatenate((thresholds + h, thresholds - h)))
        m = thresholds.size
        return np.maximum(f[:m] - f[m:], 0.0) / (2.0 * h)

    def partition(self, thresholds: ArrayF) -> tuple[ArrayF, ArrayF, ArrayF, ArrayF, ArrayF, ArrayF]:
        """Cell decomposition of ξ ∈ [−14, 14] for ``thresholds``.

        Returns crossings (sorted ξ), interval edges, the cell of each interval, and quadrature nodes x, weights w
        (including the N(0,1) density) and cell index of each node.
        """
        crossings = _find_crossings(self.fn, _SCAN, self.y_scan, thresholds, 1.0)
        inner = crossings[(crossings > -_XI_HALF_WIDTH) & (crossings < _XI_HALF_WIDTH)]
        edges = np.unique(np.concatenate(([-_XI_HALF_WIDTH, _XI_HALF_WIDTH], inner, self.kinks)))
        mids = 0.5 * (edges[:-1] + edges[1:])
        cell_of_interval = np.searchsorted(thresholds, self.fn(mids), side="right")
        x, w0, interval = _gauss_legendre(edges)
        return crossings, edges, cell_of_interval, x, w0 * std_normal_pdf(x), cell_of_interval[interval]

    def cell_sums(self, thresholds: ArrayF, k: int) -> tuple[ArrayF, ArrayF]:
        *_, x, w, cell = self.partition(thresholds)
        y = self.fn(x)
        return np.bincount(cell, w, minlength=k), np.bincount(cell, w * y, minlength=k)

    def distortion(self, thresholds: ArrayF, levels: ArrayF) -> float:
        *_, x, w, cell = self.partition(thresholds)
        return float(w @ (self.fn(x) - levels[cell]) ** 2)

    def step_activation(self, thresholds: ArrayF, levels: ArrayF, name: str) -> StepActivation:
        crossings, edges, cell_of_interval, *_ = self.partition(thresholds)
        del crossings
        return _merge_to_step(edges * self.tau, levels[cell_of_interval], name)


class _EmpiricalLaw:
    """Empirical law of Y = σ(z) over a (sub)sample of pre-activations z."""

    def __init__(self, act: Activation, z: ArrayF, source: str) -> None:
        self.act = act
        self.source = source
        with np.errstate(all="ignore"):
            y = np.asarray(act.numpy(z), dtype=np.float64)
        if not np.all(np.isfinite(y)):
            raise InvalidParameterError(
                f"activation {source!r} returned non-finite values on the pre-activation sample"
            )
        order = np.argsort(y, kind="stable")
        self.z = z
        self.y = y
        self.y_sorted = y[order]
        self.n = y.size
        self.mean = float(np.mean(y))
        self.std = float(np.std(y))
        self.n_distinct = int(np.unique(y).size)
        z_lo, z_hi = float(z.min()), float(z.max())
        span = z_hi - z_lo
        pad = _DATA_GRID_PAD * span if span > 0.0 else max(1.0, abs(z_lo))
        self.t_grid = np.linspace(z_lo - pad, z_hi + pad, _DATA_GRID_POINTS)
        with np.errstate(all="ignore"):
            self.y_grid = np.asarray(act.numpy(self.t_grid), dtype=np.float64)
        if not np.all(np.isfinite(self.y_grid)):
            raise InvalidParameterError(
                f"activation {source!r} returned non-finite values on the observed pre-activation range"
            )
        self.t_scale = max(abs(float(self.t_grid[0])), abs(float(self.t_grid[-1])))

    def fn(self, t: ArrayF) -> ArrayF:
        return np.asarray(self.act.numpy(np.asarray(t, dtype=np.float64)), dtype=np.float64)

    def validate(self, k: int) -> None:
        if self.n_distinct < 2 or not self.std > 0.0:
            raise InvalidParameterError(
                f"σ(z) of {self.source!r} is constant on the pre-activation sample: no mass to quantize"
            )
        if self.n_distinct < k:
            raise InvalidParameterError(
                f"σ(z) of {self.source!r} takes only {self.n_distinct} distinct values on the pre-activation "
                f"sample; cannot fit k = {k} levels"
            )

    def zero_atom_mass(self) -> float:
        runs = _zero_runs(self.y_grid, self.std)
        if not runs:
            return 0.0
        h = float(self.t_grid[1] - self.t_grid[0])
        inside = np.zeros(self.n, dtype=bool)
        for i0, i1 in runs:
            inside |= (self.z >= self.t_grid[i0] - h) & (self.z <= self.t_grid[i1] + h)
        return float(np.count_nonzero(inside & (self.y == 0.0))) / self.n

    def quantile(self, probs: ArrayF, nonzero_only: bool) -> ArrayF:
        y = self.y_sorted[self.y_sorted != 0.0] if nonzero_only else self.y_sorted
        return np.asarray(np.quantile(y, probs), dtype=np.float64)

    @property
    def y_min(self) -> float:
        return float(self.y_sorted[0])

    @property
    def y_max(self) -> float:
        return float(self.y_sorted[-1])

    def density(self, thresholds: ArrayF) -> ArrayF:
        """Kernel-free density estimate of Y at each threshold: sample fraction in [θ − h, θ + h] / 2h.

        ``h = 1.06·std·n^(−1/5)`` (Silverman), capped at a quarter of the distance to the neighbouring thresholds.
        """
        h = np.full(thresholds.size, 1.06 * self.std * self.n ** (-0.2))
        if thresholds.size > 1:
            gaps = np.diff(thresholds)
            near = np.minimum(np.concatenate(([np.inf], gaps)), np.concatenate((gaps, [np.inf])))
            h = np.minimum(h, 0.25 * near)
        h = np.maximum(h, 1e-300)
        hi = np.searchsorted(self.y_sorted, thresholds + h, side="left")
        lo = np.searchsorted(self.y_sorted, thresholds - h, side="left")
        return np.asarray((hi - lo) / (self.n * 2.0 * h), dtype=np.float64)

    def cell_sums(self, thresholds: ArrayF, k: int) -> tuple[ArrayF, ArrayF]:
        bounds = np.concatenate(([0], np.searchsorted(self.y_sorted, thresholds, side="left"), [self.n]))
        prob = np.diff(bounds).astype(np.float64) / self.n
        s1 = np.array([self.y_sorted[a:b].sum() for a, b in itertools.pairwise(bounds)]) / self.n
        return prob, s1

    def distortion(self, thresholds: ArrayF, levels: ArrayF) -> float:
        cell = np.searchsorted(thresholds, self.y, side="right")
        return float(np.mean((self.y - levels[cell]) ** 2))

    def step_activation(self, thresholds: ArrayF, levels: ArrayF, name: str) -> StepActivation:
        crossings = _find_crossings(self.fn, self.t_grid, self.y_grid, thresholds, self.t_scale)
        edges = np.unique(np.concatenate(([self.t_grid[0], self.t_grid[-1]], crossings)))
        mids = 0.5 * (edges[:-1] + edges[1:])
        cells = np.searchsorted(thresholds, self.fn(mids), side="right")
        return _merge_to_step(edges, levels[cells], name)


_Law = _GaussianLaw | _EmpiricalLaw


def _merge_to_step(edges: ArrayF, interval_levels: ArrayF, name: str) -> StepActivation:
    """StepActivation from interval edges (outer two = range ends) and the level of each interval."""
    keep = np.concatenate(([True], interval_levels[1:] != interval_levels[:-1]))
    values = interval_levels[keep]
    breakpoints = edges[:-1][keep][1:]
    if breakpoints.size == 0:
        raise InvalidParameterError(
            f"quantizer {name}: σ_q is constant over the whole range (a single level is used)"
        )
    return StepActivation(tuple(float(b) for b in breakpoints), tuple(float(v) for v in values), name=name)


def _lloyd_map(law: _Law, levels: ArrayF, pin: int | None) -> tuple[ArrayF, ArrayF]:
    """One Lloyd update ``T(v)``: levels ← conditional means of the midpoint cells (empty cells keep theirs)."""
    k = levels.size
    prob, s1 = law.cell_sums(0.5 * (levels[:-1] + levels[1:]), k)
    new = levels.copy()
    filled = prob > 0.0
    new[filled] = s1[filled] / prob[filled]
    if pin is not None:
        new[pin] = 0.0
    if np.any(np.diff(new) < 0.0):  # cannot happen in exact arithmetic (cells are ordered); guard rounding
        new = np.sort(new)
    return new, prob


def _newton_candidate(law: _Law, v: ArrayF, tv: ArrayF, prob: ArrayF, pin: int | None) -> ArrayF | None:
    """Newton step for the fixed point ``T(v) = v`` (tridiagonal Jacobian of the Lloyd map).

    With thresholds θ_j = (v_{j−1} + v_j)/2 and f the density of Y, ``∂T_j/∂θ_j = f(θ_j)(T_j − θ_j)/p_j`` and
    ``∂T_j/∂θ_{j+1} = f(θ_{j+1})(θ_{j+1} − T_j)/p_j``. Returns None when a cell is empty or the step leaves the
    levels unordered.
    """
    if np.any(prob <= 0.0):
        return None
    k = v.size
    th = 0.5 * (v[:-1] + v[1:])
    dens = law.density(th)
    d_lo = np.zeros(k)
    d_hi = np.zeros(k)
    d_lo[1:] = dens * (tv[1:] - th) / prob[1:]
    d_hi[:-1] = dens * (th - tv[:-1]) / prob[:-1]
    diag = 0.5 * (d_lo + d_hi)  # J[j, j]
    upper = 0.5 * d_hi[:-1]  # J[j, j+1]
    lower = 0.5 * d_lo[1:]  # J[j+1, j]
    rhs = tv - v
    if pin is not None:  # the pinned level does not move: its row of I − J becomes the identity row
        diag[pin] = 0.0
        rhs[pin] = 0.0
        if pin < k - 1:
            upper[pin] = 0.0
            lower[pin] = 0.0
        if pin > 0:
            upper[pin - 1] = 0.0
            lower[pin - 1] = 0.0
    # Newton also converges to saddle points of the distortion, which Lloyd leaves. Hessian of the distortion
    # ∝ diag(p)(I − J): take the step only where all eigenvalues of J are < 1 (J is similar to the symmetric
    # tridiagonal matrix with off-diagonal √(J[j,j+1]·J[j+1,j]), entries ≥ 0 when every T_j lies in its cell).
    prod = upper * lower
    if np.any(prod < 0.0) or not np.all(np.isfinite(diag)):
        return None
    if k > 1:
        top = scipy.linalg.eigvalsh_tridiagonal(diag, np.sqrt(prod), select="i", select_range=(k - 1, k - 1))
        lam = float(top[0])
    else:
        lam = float(diag[0])
    if not lam < 1.0 - 1e-9:
        return None
    ab = np.zeros((3, k))
    ab[0, 1:] = -upper  # A = I − J, A[j, j+1]
    ab[1, :] = 1.0 - diag
    ab[2, :-1] = -lower  # A[j+1, j]
    try:
        delta = scipy.linalg.solve_banded((1, 1), ab, rhs)
    except (np.linalg.LinAlgError, ValueError):
        return None
    cand = v + delta
    if pin is not None:
        cand[pin] = 0.0
    if not (np.all(np.isfinite(cand)) and np.all(np.diff(cand) > 0.0)):
        return None
    return cand


def _lloyd(
    law: _Law, k: int, keep_zero: bool, tol: float, max_iter: int, accelerate: bool = True
) -> tuple[ArrayF, int]:
    """Lloyd–Max fixed point, Newton-accelerated.

    Each iteration tries a Newton step on ``T(v) − v = 0`` and keeps it when it lowers the Lloyd residual
    ``max|T(v) − v|``; otherwise it takes the plain Lloyd step ``v ← T(v)``. Stops when the residual is
    ≤ ``tol·std Y`` and returns ``T(v)`` (so every level is the conditional mean of its cell up to that residual).
    ``accelerate=False`` takes plain Lloyd steps only (1-D k-means: on a finite sample the cells stop changing
    after finitely many steps, and the residual is then exactly 0; the Newton steps, built for smooth laws, can
    cycle on samples of a few dozen points). Deterministic. Returns (levels, number of level updates).
    """
    levels, pin = _init_levels(law.quantile, law.y_min, law.y_max, k, keep_zero)
    target = tol * law.std
    tv, prob = _lloyd_map(law, levels, pin)
    res = float(np.max(np.abs(tv - levels)))
    iterations = 0
    while res > target and iterations < max_iter:
        iterations += 1
        cand = _newton_candidate(law, levels, tv, prob, pin) if accelerate else None
        if cand is not None:
            tc, pc = _lloyd_map(law, cand, pin)
            rc = float(np.max(np.abs(tc - cand)))
            if rc < res:
                levels, tv, prob, res = cand, tc, pc, rc
                continue
        levels = tv
        tv, prob = _lloyd_map(law, levels, pin)
        res = float(np.max(np.abs(tv - levels)))
    if res > target:
        warnings.warn(
            f"Lloyd–Max for {law.source!r} (k = {k}) did not converge in {max_iter} iterations "
            f"(last level change {res:.3g}, target {target:.3g}); returning the last iterate",
            QuantizerConvergenceWarning,
            stacklevel=3,
        )
    return tv, iterations


def _resolve_keep_zero(law: _Law, keep_zero: bool | None) -> bool:
    if keep_zero is not None:
        return keep_zero
    return law.zero_atom_mass() > _ATOM_MIN_MASS


def _finish(
    law: _Law, levels: ArrayF, method: str, tau: float | None, iterations: int, name: str
) -> ActivationQuantizer:
    levels = np.asarray(levels, dtype=np.float64)
    thresholds = 0.5 * (levels[:-1] + levels[1:])
    activation = law.step_activation(thresholds, levels, name)
    distortion = law.distortion(thresholds, levels)
    levels.setflags(write=False)
    thresholds.setflags(write=False)
    return ActivationQuantizer(
        activation=activation,
        levels=levels,
        thresholds=thresholds,
        source=law.source,
        tau=tau,
        method=method,
        distortion=distortion,
        bits=math.log2(levels.size),
        iterations=iterations,
    )


# ------------------------------------------------------------------------------------------------ public API


def lloyd_max_quantizer(
    activation: str | Activation,
    tau: float,
    k: int,
    *,
    keep_zero: bool | None = None,
    tol: float = 1e-12,
    max_iter: int = 1000,
) -> ActivationQuantizer:
    """Lloyd–Max (minimum-MSE) k-level quantizer of ``Y = σ(τξ)``, ξ ~ N(0, 1), as a step activation.

    Iterates thresholds = midpoints of adjacent levels, levels = ``E[Y | Y in cell]`` from levels at the
    quantiles ``(j + ½)/k`` of Y (deterministic; Newton-accelerated, see the module docstring). Cell integrals use breakpoint-aware composite Gauss–Legendre
    quadrature over ξ ∈ [−14, 14] split at the threshold crossings of σ(τξ) (see the module docstring); a
    non-monotone σ yields more than ``k − 1`` breakpoints. Crossings are located on a ξ-grid of step 10⁻³: a
    σ that crosses a threshold and comes back within 10⁻³·τ is not resolved.

    Args:
        activation: a registered name (``rc.activation_names()``) or an :class:`Activation`.
        tau: scale τ > 0 of the pre-activation (e.g. τ_{ℓ−1} of the layer's input).
        k: number of levels, 2 ≤ k ≤ 256.
        keep_zero: keep a level at exactly 0 (pinned, never updated). Default: True when σ(τξ) has an atom at 0
            of probability > 10⁻⁶ coming from a genuine flat piece of σ (ReLU: ½; the float underflow of a smooth
            tail, as GELU's for t < −8.3, does not count), else False. For ReLU the pinned level is the lowest one;
            in general it is the level whose cell holds 0 (the middle one of a ternary σ). ``True`` is also allowed
            for σ without an atom at 0: the k − 1 free levels start at the quantiles of Y | Y ≠ 0, the 0 level is
            pinned, and the result is the best quantizer constrained to have 0 as a level.
        tol: stop when the largest level change is ≤ ``tol · std σ(τξ)``.
        max_iter: iteration cap; hitting it emits :class:`QuantizerConvergenceWarning` and returns the last
            iterate.

    Returns:
        :class:`ActivationQuantizer` with ``method="lloyd-max"``. Its ``activation`` is not centred.

    Raises:
        ValueError: k not an integer in [2, 256]; τ not positive and finite; unknown activation name; σ(τξ) has
            no spread ("no mass to quantize") or fewer than k distinct values; σ non-finite on |t| ≤ 14τ;
            bad tol / max_iter / keep_zero.
    """
    k_ = _check_k(k)
    t = _check_positive_float(tau, "tau")
    tol_ = _check_positive_float(tol, "tol")
    max_iter_ = _check_positive_int(max_iter, "max_iter")
    kz = _check_keep_zero(keep_zero)
    act, source = _resolve(activation)
    law = _GaussianLaw(act, t, source)
    law.validate(k_)
    pin = _resolve_keep_zero(law, kz)
    levels, iterations = _lloyd(law, k_, pin, tol_, max_iter_)
    return _finish(law, levels, "lloyd-max", t, iterations, f"lloyd-max[{source},k={k_},tau={t:.4g}]")


def uniform_quantizer(
    activation: str | Activation, tau: float, k: int, *, clip: float = 3.0
) -> ActivationQuantizer:
    """Uniform k-level quantizer of ``Y = σ(τξ)``: evenly spaced levels, thresholds at midpoints.

    The levels span ``[q_lo, q_hi]`` with ``q_lo = max(min Y, E Y − clip·std Y)`` and
    ``q_hi = min(max Y, E Y + clip·std Y)``, where min/max are taken over ξ ∈ [−14, 14] (the essential range of
    Y up to mass 10⁻⁴⁴). ReLU thus gets ``q_lo = 0`` (level 0 exact); the identity gets ``±clip·τ``.

    Args:
        activation: a registered name or an :class:`Activation`.
        tau: scale τ > 0 of the pre-activation.
        k: number of levels, 2 ≤ k ≤ 256.
        clip: half-width of the level range in standard deviations of Y (> 0).

    Returns:
        :class:`ActivationQuantizer` with ``method="uniform"`` and ``iterations=0``.

    Raises:
        ValueError: as :func:`lloyd_max_quantizer`, and clip not positive and finite.
    """
    k_ = _check_k(k)
    t = _check_positive_float(tau, "tau")
    c = _check_positive_float(clip, "clip")
    act, source = _resolve(activation)
    law = _GaussianLaw(act, t, source)
    law.validate(k_)
    q_lo = max(law.y_min, law.mean - c * law.std)
    q_hi = min(law.y_max, law.mean + c * law.std)
    if not q_hi > q_lo:
        raise InvalidParameterError(
            f"uniform quantizer of {source!r}: empty level range [{q_lo:g}, {q_hi:g}]"
        )
    levels = np.linspace(q_lo, q_hi, k_)
    return _finish(law, levels, "uniform", t, 0, f"uniform[{source},k={k_},tau={t:.4g}]")


def lloyd_max_data_quantizer(
    activation: str | Activation,
    preactivations: Any,
    k: int,
    *,
    keep_zero: bool | None = None,
    tol: float = 1e-12,
    max_iter: int = 1000,
    max_samples: int = MAX_DATA_SAMPLES,
    seed: SeedLike = 0,
    accelerate: bool = True,
) -> ActivationQuantizer:
    """Lloyd–Max quantizer fitted to the empirical law of ``σ(z)`` for observed pre-activations z.

    The Lloyd iteration runs exactly on the (sub)sample (cells = contiguous runs of the sorted outputs), and stops
    when the cells no longer change (or the level change is ≤ ``tol · std``). There is no τ: the t-domain
    breakpoints are the t where σ(t) crosses a threshold, located on a grid of 20 001 points over the observed
    range ``[min z, max z]`` extended by 5 % on each side and bisected to machine precision. Outside that grid σ_q
    keeps the level of its outermost interval, and a crossing pair closer than the grid step is not resolved.

    Args:
        activation: a registered name or an :class:`Activation`.
        preactivations: observed pre-activations, any shape (flattened); finite real numbers.
        k: number of levels, 2 ≤ k ≤ 256.
        keep_zero: as :func:`lloyd_max_quantizer`; the default detects a genuine flat piece of σ at 0 on the
            observed range holding more than 10⁻⁶ of the sample.
        tol: level-change tolerance relative to the sample std of σ(z).
        max_iter: iteration cap (:class:`QuantizerConvergenceWarning` when hit).
        max_samples: at most this many values are used (a uniform subsample without replacement otherwise).
        seed: seed of the subsampling (int, SeedSequence or Generator; ``None`` refused).
        accelerate: Newton-accelerated Lloyd (default) or plain Lloyd steps only (``False``: 1-D k-means, which
            ends exactly on stable cells; used for weight sharing, where groups can be a few dozen weights).

    Returns:
        :class:`ActivationQuantizer` with ``method="lloyd-max-data"``, ``tau=None`` and the empirical distortion.

    Raises:
        ValueError: bad k / activation / options; empty, non-numeric or non-finite sample; σ(z) constant or with
            fewer than k distinct values.
    """
    k_ = _check_k(k)
    tol_ = _check_positive_float(tol, "tol")
    max_iter_ = _check_positive_int(max_iter, "max_iter")
    n_max = _check_positive_int(max_samples, "max_samples")
    kz = _check_keep_zero(keep_zero)
    act, source = _resolve(activation)
    try:
        z = np.asarray(preactivations)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(
            f"preactivations could not be converted to a numeric array: {exc}"
        ) from exc
    if z.dtype.kind not in "biuf":
        raise InvalidParameterError(f"preactivations must be real numbers; got an array of dtype {z.dtype}")
    z = np.asarray(z, dtype=np.float64).ravel()
    if z.size == 0:
        raise InvalidParameterError("preactivations is empty: nothing to fit")
    bad = ~np.isfinite(z)
    if bad.any():
        raise InvalidParameterError(
            f"preactivations contain {int(np.isnan(z).sum())} NaN and {int(np.isinf(z).sum())} infinite values"
        )
    rng = as_generator(seed)  # validated even when no subsampling is needed (None is refused)
    if z.size > n_max:
        z = z[np.sort(rng.choice(z.size, size=n_max, replace=False))]
    law = _EmpiricalLaw(act, z, source)
    law.validate(k_)
    pin = _resolve_keep_zero(law, kz)
    levels, iterations = _lloyd(law, k_, pin, tol_, max_iter_, accelerate=bool(accelerate))
    return _finish(law, levels, "lloyd-max-data", None, iterations, f"lloyd-max-data[{source},k={k_}]")


QuantizerHandler: TypeAlias = Callable[..., ActivationQuantizer]

QUANTIZERS: Registry[str, QuantizerHandler] = Registry(
    "quantizer method", aliases={"lloyd_max": "lloyd-max", "lloyd_max_data": "lloyd-max-data"}
)
"""Quantizer method name → ``handler(activation, tau, k, **kw)`` (:func:`quantize_activation` dispatches on it).
The underscore spellings of earlier releases (``lloyd_max``, ``lloyd_max_data``) resolve with a deprecation
warning."""


def _needs_tau(method: str, tau: float | None) -> float:
    if tau is None:
        raise InvalidParameterError(f"method {method!r} needs tau (the pre-activation scale)")
    return tau


@QUANTIZERS.register("lloyd-max")
def _lloyd_max_handler(
    activation: str | Activation, tau: float | None, k: int, **kw: Any
) -> ActivationQuantizer:
    return lloyd_max_quantizer(activation, _needs_tau("lloyd-max", tau), k, **kw)


@QUANTIZERS.register("uniform")
def _uniform_handler(
    activation: str | Activation, tau: float | None, k: int, **kw: Any
) -> ActivationQuantizer:
    return uniform_quantizer(activation, _needs_tau("uniform", tau), k, **kw)


@QUANTIZERS.register("lloyd-max-data")
def _lloyd_max_data_handler(
    activation: str | Activation, tau: float | None, k: int, **kw: Any
) -> ActivationQuantizer:
    if tau is not None:
        raise InvalidParameterError(
            "method 'lloyd-max-data' is fitted on data: pass tau=None and preactivations=..."
        )
    if "preactivations" not in kw:
        raise InvalidParameterError("method 'lloyd-max-data' needs preactivations=<observed pre-activations>")
    z = kw.pop("preactivations")
    return lloyd_max_data_quantizer(activation, z, k, **kw)


def quantize_activation(
    activation: str | Activation, tau: float | None, k: int, method: str = "lloyd-max", **kw: Any
) -> ActivationQuantizer:
    """Dispatch to a quantizer by method name (:data:`QUANTIZERS`).

    Args:
        activation: a registered name or an :class:`Activation`.
        tau: pre-activation scale for the Gaussian fits; must be ``None`` for ``"lloyd-max-data"``.
        k: number of levels, 2 ≤ k ≤ 256.
        method: ``"lloyd-max"`` (:func:`lloyd_max_quantizer`), ``"uniform"`` (:func:`uniform_quantizer`) or
            ``"lloyd-max-data"`` (:func:`lloyd_max_data_quantizer`, needs ``preactivations=``). The old spellings
            ``"lloyd_max"`` / ``"lloyd_max_data"`` still work for one release, with a
            :class:`~rmtcompress.errors.RmtcompressDeprecationWarning`.
        **kw: passed on to the chosen function.

    Returns:
        :class:`ActivationQuantizer`.

    Raises:
        InvalidParameterError: unknown method, tau given to / preactivations missing from the data method, plus
            the errors of the chosen function.
    """
    return QUANTIZERS.get(method)(activation, tau, k, **kw)
