"""Per-neuron calibration of a compressed net's k-level activations (issue #9, "lossless at equal width").

NTK-LC and the Lloyd–Max quantizers use **one** step function per layer, fitted to a standard Gaussian
pre-activation. On real data the neurons of one layer have different scales (a ternary row with more non-zeros, an
input direction with more energy), so a shared quantizer is too coarse for some neurons and wasted on others.
:func:`calibrate` keeps the ternary codes of a :class:`~rmtcompress.compress.CompressedMLP` and replaces every
layer's activation by a :class:`~rmtcompress.activations.PerNeuronStep` fitted on a sample of **training** rows,
layer after layer (each layer sees the calibrated layers before it):

* ``"scale"`` — the k-level Lloyd–Max quantizer Q of the spec's activation σ for a unit Gaussian, applied at the
  neuron's own scale: ``σ̂_j(z) = s_j·Q(z/s_j)`` with ``s_j`` the neuron's pre-activation standard deviation. For
  ReLU (positively homogeneous) this is the Lloyd–Max quantizer of ``ReLU(z_j)`` when ``z_j ~ N(0, s_j²)``: the
  scale equivariance that a shared quantizer breaks is restored per neuron.
* ``"data-lm"`` — ``"scale"`` refined by Lloyd iterations on the neuron's own outputs σ(z_j) (levels = conditional
  means, thresholds = midpoints); the lowest level stays at its Lloyd–Max value (ReLU's exact 0).
* ``"quantile"`` — thresholds at the neuron's empirical quantiles, levels = conditional means of σ(z_j) per cell.
  Meant for the **last** layer read through its thermometer indicators (the readout learns the levels). Hidden
  layers in this mode use ``quantiles`` (default ``i/k``: every code equally likely, the maximum-entropy code);
  the last layer uses ``last_quantiles``, by default the *spread* design :func:`spread_quantiles` — for k = 4 the
  10 %, 50 % and 90 % quantiles. Its indicators 1{z ≥ t} are the readout's features, and thresholds in the tails
  give it steps with even Hermite components (a threshold at the median is a pure odd sign function). How the
  spread design compares with the quartiles on Fashion-MNIST is measured in docs/compression.md ("'Lossless' at
  equal width").

Each calibrated output is centred per neuron on the sample (the centre is folded into the levels), so the model's
scalar centres are 0. The runtime code stays ``log2(k)`` bits per neuron; stored extra: float32 thresholds (and
levels) per neuron, counted by :func:`~rmtcompress.ntklc.model_memory`. Calibrated nets run through torch: the
packed CPU kernels and the packed file format take shared step activations only (a clear ``ValueError`` says so).

Measurements: docs/compression.md and BENCHMARKS.md (``benchmarks/ntklc/bench_equal_width.py``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from .._utils import Config, check_int, validate_X
from ..core import Activation, PerNeuronStep, get_activation
from ..errors import InvalidParameterError
from ..quant import lloyd_max_quantizer
from ._model import CompressedMLP

__all__ = ["CALIBRATION_MODES", "CalibrationConfig", "calibrate", "calibration_sample", "spread_quantiles"]

CALIBRATION_MODES = ("scale", "data-lm", "quantile")
SPREAD_RANGE = (0.1, 0.9)


def spread_quantiles(levels: int) -> tuple[float, ...]:
    """The default last-layer quantile probabilities of :func:`calibrate`: ``levels − 1`` values evenly spaced from
    0.1 to 0.9 (``(0.5,)`` for 2 levels); k = 4 gives ``(0.1, 0.5, 0.9)``.

    Raises:
        ValueError: if ``levels`` is not an integer in [2, 256].
    """
    if isinstance(levels, bool) or not isinstance(levels, int) or not 2 <= levels <= 256:
        raise InvalidParameterError(f"levels must be an integer in [2, 256], got {levels!r}")
    if levels == 2:
        return (0.5,)
    lo, hi = SPREAD_RANGE
    return tuple(float(x) for x in np.linspace(lo, hi, levels - 1))


def _check_probs(name: str, probs: tuple[float, ...] | None, levels: int) -> tuple[float, ...] | None:
    if probs is None:
        return None
    q = tuple(float(x) for x in probs)
    if len(q) != levels - 1:
        raise InvalidParameterError(f"{name} needs levels − 1 = {levels - 1} probabilities, got {len(q)}")
    if not all(0.0 < x < 1.0 for x in q) or any(b <= a for a, b in itertools.pairwise(q)):
        raise InvalidParameterError(f"{name} must be strictly increasing in (0, 1), got {q}")
    return q


@dataclass(frozen=True)
class CalibrationConfig(Config):
    """How :func:`calibrate` fits the per-neuron quantizers (frozen, validated; ``to_dict``/``from_dict``).

    Args:
        hidden: mode of the hidden layers 1 … L − 1: ``"scale"``, ``"data-lm"`` or ``"quantile"``.
        last: mode of layer L (default ``"quantile"``, read through thermometer indicators).
        levels: k, the number of levels per neuron (2 … 256); ``log2(k)`` bits at run time.
        quantiles: k − 1 strictly increasing probabilities in (0, 1) for hidden layers in ``"quantile"`` mode;
            default ``i/k`` (equiprobable codes).
        last_quantiles: the same for the last layer in ``"quantile"`` mode; default :func:`spread_quantiles`
            (``(0.1, 0.5, 0.9)`` for k = 4); pass ``tuple(i / k for i in range(1, k))`` for the quartile design.
        thermometer: the readout reads the last layer's k − 1 indicators 1{z ≥ t_ij} (learned levels).
        n_rows: training rows sampled for the fit (all rows when fewer).
        iters: Lloyd iterations of ``"data-lm"``.
        seed: seed of the row sample.
    """

    hidden: str = "scale"
    last: str = "quantile"
    levels: int = 4
    quantiles: tuple[float, ...] | None = None
    last_quantiles: tuple[float, ...] | None = None
    thermometer: bool = True
    n_rows: int = 8192
    iters: int = 30
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("hidden", "last"):
            mode = getattr(self, name)
            if mode not in CALIBRATION_MODES:
                raise InvalidParameterError(
                    f"{name} mode must be one of {', '.join(CALIBRATION_MODES)}, got {mode!r}"
                )
        if isinstance(self.levels, bool) or not isinstance(self.levels, int) or not 2 <= self.levels <= 256:
            raise InvalidParameterError(f"levels must be an integer in [2, 256], got {self.levels!r}")
        for name in ("quantiles", "last_quantiles"):
            object.__setattr__(self, name, _check_probs(name, getattr(self, name), self.levels))
        if isinstance(self.n_rows, bool) or not isinstance(self.n_rows, int) or self.n_rows < 2 * self.levels:
            raise InvalidParameterError(
                f"n_rows must be an integer ≥ 2·levels = {2 * self.levels}, got {self.n_rows!r}"
            )
        if isinstance(self.iters, bool) or not isinstance(self.iters, int) or self.iters < 0:
            raise InvalidParameterError(f"iters must be a non-negative integer, got {self.iters!r}")
        if not isinstance(self.thermometer, bool):
            raise InvalidParameterError(f"thermometer must be True or False, got {self.thermometer!r}")
        object.__setattr__(self, "seed", check_int(self.seed, "seed", 0))

    @property
    def probs(self) -> np.ndarray:
        """The quantile probabilities of hidden layers in ``"quantile"`` mode, shape (k − 1,)."""
        if self.quantiles is not None:
            return np.asarray(self.quantiles, dtype=np.float64)
        return np.arange(1, self.levels, dtype=np.float64) / self.levels

    @property
    def last_probs(self) -> np.ndarray:
        """The quantile probabilities of the last layer in ``"quantile"`` mode, shape (k − 1,)."""
        q = self.last_quantiles if self.last_quantiles is not None else spread_quantiles(self.levels)
        return np.asarray(q, dtype=np.float64)


def _codes(z: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Cell index of every z (n, d) for per-neuron thresholds T (k − 1, d): int array (n, d)."""
    idx = np.zeros(z.shape, dtype=np.int64)
    for t in T:
        idx += z >= t
    return idx


def _cell_means(r: np.ndarray, idx: np.ndarray, k: int, fallback: np.ndarray) -> np.ndarray:
    """Per-neuron mean of r (n, d) over each cell of idx; ``fallback[i]`` where cell i is empty. (k, d)."""
    out = np.array(fallback, dtype=np.float64, copy=True)
    for i in range(k):
        m = idx == i
        cnt = m.sum(0)
        s = np.where(m, r, 0.0).sum(0)
        out[i] = np.where(cnt > 0, s / np.maximum(cnt, 1), out[i])
    return out


def fit_layer(
    z: np.ndarray,
    sigma_name: str | Activation,
    mode: str,
    cfg: CalibrationConfig,
    probs: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron thresholds (k − 1, d) and levels (k, d), float64, from pre-activations z (n, d) (see module doc).

    ``probs`` overrides the quantile probabilities of ``"quantile"`` mode (default ``cfg.probs``)."""
    sigma = get_activation(sigma_name)
    k = cfg.levels
    r = sigma.numpy(z)
    if mode == "quantile":
        T = np.quantile(z, cfg.probs if probs is None else probs, axis=0)
        T = np.maximum.accumulate(T, axis=0)
        mids = sigma.numpy(np.concatenate([T[:1], 0.5 * (T[:-1] + T[1:]), T[-1:]], axis=0))
        return T, _cell_means(r, _codes(z, T), k, mids)
    q = lloyd_max_quantizer(sigma, 1.0, k)
    t0 = np.asarray(q.thresholds, dtype=np.float64)[:, None]
    v0 = np.asarray(q.levels, dtype=np.float64)[:, None]
    s = z.std(axis=0)[None, :]
    T, V = t0 * s, v0 * s
    if mode == "data-lm":
        for _ in range(cfg.iters):
            new = _cell_means(r, _codes(z, T), k, V)
            new[0] = V[0]
            V = np.maximum.accumulate(new, axis=0)
            T = 0.5 * (V[:-1] + V[1:])
    return T, V


_CHUNK_ELEMENTS = 1 << 22
"""Neurons are fitted in column chunks of about this many pre-activations (the fit is per neuron): the
temporaries of a 8192 × 4000 layer stay near 32 MB each instead of 262 MB."""


def _fit_layer_chunked(
    z: np.ndarray, sigma_name: str | Activation, mode: str, cfg: CalibrationConfig, probs: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fit_layer` over column chunks of z, with each neuron's levels centred on the sample (its mean output
    subtracted); the same numbers as one call, since every step is per neuron."""
    step = max(1, _CHUNK_ELEMENTS // max(z.shape[0], 1))
    Ts, Vs = [], []
    for start in range(0, z.shape[1], step):
        zc = z[:, start : start + step]
        T, V = fit_layer(zc, sigma_name, mode, cfg, probs)
        a = V[_codes(zc, T), np.arange(zc.shape[1])]
        Ts.append(T)
        Vs.append(V - a.mean(axis=0)[None, :])
    return np.concatenate(Ts, axis=1), np.concatenate(Vs, axis=1)


def calibration_sample(X: np.ndarray, cfg: CalibrationConfig) -> torch.Tensor:
    """The rows of X (n, p) that :func:`calibrate` fits on, float32 (min(n, cfg.n_rows), p): drawn without
    replacement with ``cfg.seed``, kept in their original order."""
    rng = np.random.default_rng(cfg.seed)
    rows = np.sort(rng.choice(X.shape[0], size=min(cfg.n_rows, X.shape[0]), replace=False))
    return torch.from_numpy(np.ascontiguousarray(X[rows], dtype=np.float32))


def calibrate(
    model: CompressedMLP,
    X: np.ndarray,
    config: CalibrationConfig | None = None,
    *,
    progress: bool | None = None,
) -> CompressedMLP:
    """A copy of ``model`` (same codes/weights and scales) with per-neuron k-level activations fitted on X.

    Args:
        model: a :class:`CompressedMLP` (ternary or float weights); its readout is not copied (refit it).
        X: training inputs (n, p), float, finite — never test data.
        config: :class:`CalibrationConfig` (default: ``"scale"`` hidden layers, quantile last layer at :func:`spread_quantiles`, k = 4,
            thermometer readout).
        progress: A progress bar over the layers on stderr: ``True``, ``False``, or ``None`` (default) for only
            when stderr is a terminal.

    Returns:
        A new :class:`CompressedMLP` with :class:`~rmtcompress.activations.PerNeuronStep` activations, zero
        centres, and the step ``"calibrated"`` (with ``config.to_dict()``) added to its provenance
        (``method = model.method + "+calibrated"``).

    Raises:
        ValueError: if ``model`` is not a CompressedMLP, X has the wrong shape or NaN/inf, or has fewer rows than
            ``2·levels``.
    """
    cfg = config if config is not None else CalibrationConfig()
    if not isinstance(model, CompressedMLP):
        raise InvalidParameterError(f"calibrate needs a CompressedMLP, got {type(model).__name__}")
    Xa = validate_X(X)
    spec = model.spec
    if Xa.shape[1] != spec.input_dim:
        raise InvalidParameterError(f"X has {Xa.shape[1]} features but the model expects {spec.input_dim}")
    if Xa.shape[0] < 2 * cfg.levels:
        raise InvalidParameterError(
            f"calibration needs at least 2·levels = {2 * cfg.levels} rows, got {Xa.shape[0]}"
        )
    h = calibration_sample(Xa, cfg)
    acts: list[PerNeuronStep] = []
    bar = tqdm(
        range(spec.depth),
        desc="calibrate",
        unit="layer",
        leave=False,
        disable=None if progress is None else not progress,
        postfix=f"n={h.shape[0]}",
    )
    with torch.no_grad():
        for i in bar:
            z = (h @ model.weight(i).T).numpy().astype(np.float64)
            last = i == spec.depth - 1
            mode = cfg.last if last else cfg.hidden
            T, V = _fit_layer_chunked(z, spec.activations[i], mode, cfg, cfg.last_probs if last else None)
            act = PerNeuronStep(T, V, name=f"per-neuron {mode} (k={cfg.levels})")
            acts.append(act)
            h = act.torch(torch.from_numpy(z.astype(np.float32))) / math.sqrt(spec.widths[i])
    return model.with_activations(
        acts,
        [0.0] * spec.depth,
        provenance=model.provenance.then("calibrated", cfg),
        thermometer=cfg.thermometer,
    )
