"""``compress(spec, config) -> CompressedMLP``: sparse ternary weights and quantized activations for a
fully-connected random-feature net (NTK-LC, Gu et al. 2022; methods.md §1.9–1.13), plus the readout.

A compressed layer stores its weights as int8 codes in {−1, 0, +1} with one scale 1/√(1−ε) (zero-mean,
unit-variance entries), its activation as a :class:`~rmtcompress.activations.StepActivation` (or the original
activation for ``method="weights-only"``) and a centring constant; the forward pass is the paper's
h_ℓ = (σ̃_ℓ(h_{ℓ−1} W̃_ℓᵀ) − c̃_ℓ)/√d_ℓ. Only the linear readout is trained (:func:`fit_readout`).

Methods (``NTKLCConfig.method``):

* ``"ntklc-paper"`` — the paper's recipe: σ_T / σ_Q solved so E[σ']², E[σ'']², E[σ'²+σ̄σ''] (and τ_L) match the
  original at the compressed net's own running scale (:func:`rmtcompress.matching.match_activations`).
* ``"lloyd-max"`` — a k-level Lloyd–Max quantizer of the original activation's output σ_ℓ(τ̃_{ℓ−1}ξ) at the running
  scale (level 0 kept exact when σ has an atom there, e.g. ReLU), then centred.
* ``"lloyd-max-data"`` — the same, fitted on the net's actual pre-activations on a sample of X.
* ``"uniform"`` — k evenly spaced levels.
* ``"lloyd-max-matched"`` — the least-distortion k-level quantizer whose E[σ']², E[σ'']² (and E[σ'²+σ̄σ''] in hidden
  layers) equal the original's: the paper's conditions as constraints, distortion as the objective
  (:mod:`rmtcompress.matched_quantizers`; needs k ≥ 3).

``readout_features="thermometer"`` (the default, chosen by the benchmark rule) feeds the readout
(``model.readout_inputs``) the k − 1 threshold indicators 1{z ≥ b_j} of each last-layer neuron instead of its level: the same 2-bit runtime code, but the readout learns each neuron's k levels
(the head has (k − 1)·d_L·K weights; counted in the memory).
* ``"weights-only"`` — ternary weights, original activations (the paper's "no activation quantization").
"""

from __future__ import annotations

import enum
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .._utils import (
    Config,
    Registry,
    check_int,
    check_sparsity,
    philox_ternary_codes,
    validate_X,
    validate_Xy,
)
from ..core import Activation, MLPSpec, StepActivation
from ..empirical import torch_generator
from ..errors import InvalidParameterError
from ..quant import (
    lloyd_max_data_quantizer,
    lloyd_max_quantizer,
    moment_matched_quantizer,
    uniform_quantizer,
)
from ..theory import (
    EquationResidual,
    LayerMatch,
    MatchReport,
    MatchWarning,
    estimate_tau0,
    gaussian_moments,
    match_activations,
)
from ._calibration import CalibrationConfig, calibrate as calibrate_model
from ._model import CompressedMLP
from ._readout import _fit_ridge_streamed, fit_sgd_readout

__all__ = [
    "COMPRESSION_METHODS",
    "DEFAULT_METHOD",
    "CompressedActivations",
    "CompressedMLP",
    "CompressionInputs",
    "CompressionMethod",
    "MLPSpec",
    "NTKLCConfig",
    "compress",
    "fit_readout",
    "register_compression_method",
    "ternary_codes",
]


class CompressionMethod(enum.StrEnum):
    """How the compressed activations are chosen (see the module docstring)."""

    NTKLC_PAPER = "ntklc-paper"
    LLOYD_MAX = "lloyd-max"
    LLOYD_MAX_DATA = "lloyd-max-data"
    UNIFORM = "uniform"
    LLOYD_MAX_MATCHED = "lloyd-max-matched"
    WEIGHTS_ONLY = "weights-only"


_BUILTIN_METHODS = frozenset(m.value for m in CompressionMethod)

COMPRESSION_METHODS: Registry[str, Callable[[CompressionInputs], CompressedActivations]] = Registry(
    "compression method"
)
"""Compression-method name → handler (:func:`register_compression_method`); :func:`compress` dispatches on it."""

# Chosen by the rule of docs/compression.md (experiments.rank_methods on benchmarks/results/ntklc.json):
# tests/test_default_method.py fails when the benchmark ranks another method first.
DEFAULT_METHOD = CompressionMethod.LLOYD_MAX
DEFAULT_LEVELS = 4
DEFAULT_READOUT_FEATURES = "thermometer"
# With training data, compress() calibrates the default method by default (NTKLCConfig.calibrate=None): the best
# label-free row of the equal-width benchmark (benchmarks/results/equal_width.json) is CalibrationConfig()'s design,
# tests/ntklc/test_default_method.py fails when it ranks another calibration first.


_WEIGHT_SAMPLING = ("iid", "exact", "philox")
_READOUT_FEATURES = ("levels", "thermometer")
_HARD_CONDITIONS = ("d1", "d2", "curv", "Q", "tau")


@dataclass(frozen=True)
class NTKLCConfig(Config):
    """Configuration of :func:`compress` (frozen, validated on construction; ``to_dict``/``from_dict``).

    Attributes:
        sparsity: ε ∈ [0, 1), fraction of zero weights.
        method: a registered compression method (:data:`COMPRESSION_METHODS`); the built-in ones are the
            :class:`CompressionMethod` values and are stored as that enum.
        levels: activation levels k for the quantizer methods (2 ≤ k ≤ 256).
        seed: seed of the weights (and of the solver's starts), an integer in [0, 2**64).
        weight_sampling: ``"philox"`` (the default: i.i.d., each weight 0 w.p. ε, from the documented
            counter-based Philox mapping of :mod:`rmtcompress.philox`, so a saved model can store only the seed —
            ``rc.save(model, path, encoding="seed")``; it builds no slower than ``"iid"``, see BENCHMARKS.md),
            ``"iid"`` (the same law from torch's generator, the default before) or ``"exact"`` (exactly
            round(ε·size) zeros per layer and equal ± counts, as the research code).
        restarts, last_layer, hidden, tau_anchor, hard, on_infeasible: :func:`match_activations` options
            (``ntklc-paper`` only).
        data_sample: rows of X used by ``lloyd-max-data``.
        straight_through: step activations pass a smoothed gradient backward (for fine-tuning hidden layers).
        readout_features: ``"thermometer"`` (the readout reads the last layer's k − 1 threshold indicators) or
            ``"levels"`` (its quantized levels).
        calibrate: per-neuron calibration (:func:`~rmtcompress.ntklc.calibrate`, label-free) applied by
            :func:`compress` when it is given training data X. ``None`` (the default): calibrate the default
            method (:data:`DEFAULT_METHOD`) with the design that wins the equal-width benchmark,
            ``CalibrationConfig(levels=levels, seed=seed, thermometer=readout_features == "thermometer")``, and
            leave every other method as it is; without X nothing is calibrated. ``True``: that calibration for
            any method (X required). ``False``: never. A :class:`~rmtcompress.ntklc.CalibrationConfig`: that one
            (X required; its ``levels`` must equal ``levels``). :meth:`calibration` resolves it.
    """

    # 2: field calibrate, and weight_sampling defaults to "philox" (a version-1 dict reads as calibrate=False and,
    # when it leaves weight_sampling out, "iid": what it meant when written)
    version: ClassVar[int] = 2

    sparsity: float = 0.9
    method: str | CompressionMethod = DEFAULT_METHOD
    levels: int = DEFAULT_LEVELS
    seed: int = 0
    weight_sampling: str = "philox"
    restarts: int = 32
    last_layer: str = "paper"
    hidden: str = "sigma_t"
    tau_anchor: float = 0.0
    hard: tuple[str, ...] = _HARD_CONDITIONS
    on_infeasible: str = "warn"
    data_sample: int = 2048
    straight_through: bool = False
    readout_features: str = DEFAULT_READOUT_FEATURES
    calibrate: bool | CalibrationConfig | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "sparsity", check_sparsity(self.sparsity))
        name = COMPRESSION_METHODS.canonical(self.method, stacklevel=5)
        set_(self, "method", CompressionMethod(name) if name in _BUILTIN_METHODS else name)
        if (
            isinstance(self.levels, (bool, np.bool_))
            or not isinstance(self.levels, (int, np.integer))
            or not 2 <= int(self.levels) <= 256
        ):
            raise InvalidParameterError(f"levels must be an integer in 2..256, got {self.levels!r}")
        set_(self, "levels", int(self.levels))
        if self.weight_sampling not in _WEIGHT_SAMPLING:
            raise InvalidParameterError(
                f"weight_sampling must be 'iid', 'exact' or 'philox', got {self.weight_sampling!r}"
            )
        if self.readout_features not in _READOUT_FEATURES:
            raise InvalidParameterError(
                f"readout_features must be 'levels' or 'thermometer', got {self.readout_features!r}"
            )
        if self.method is CompressionMethod.LLOYD_MAX_MATCHED and self.levels < 3:
            raise InvalidParameterError(
                "lloyd-max-matched needs levels ≥ 3 (with 2 levels the conditions leave no freedom: use 'ntklc-paper')"
            )
        if self.last_layer not in ("paper", "free"):
            raise InvalidParameterError(f"last_layer must be 'paper' or 'free', got {self.last_layer!r}")
        if self.hidden not in ("sigma_t", "sigma_q"):
            raise InvalidParameterError(f"hidden must be 'sigma_t' or 'sigma_q', got {self.hidden!r}")
        if self.on_infeasible not in ("warn", "raise", "ignore"):
            raise InvalidParameterError(
                f"on_infeasible must be 'warn', 'raise' or 'ignore', got {self.on_infeasible!r}"
            )
        if not (
            isinstance(self.tau_anchor, (int, float, np.floating, np.integer))
            and not isinstance(self.tau_anchor, (bool, np.bool_))
            and math.isfinite(self.tau_anchor)
            and self.tau_anchor >= 0
        ):
            raise InvalidParameterError(f"tau_anchor must be a finite number ≥ 0, got {self.tau_anchor!r}")
        set_(self, "tau_anchor", float(self.tau_anchor))
        if (
            isinstance(self.hard, str)
            or not isinstance(self.hard, (tuple, list))
            or any(h not in _HARD_CONDITIONS for h in self.hard)
        ):
            raise InvalidParameterError(
                f"hard must be a tuple of conditions from {_HARD_CONDITIONS}, got {self.hard!r}"
            )
        set_(self, "hard", tuple(self.hard))
        if self.weight_sampling == "philox" and not (
            isinstance(self.seed, (int, np.integer))
            and not isinstance(self.seed, (bool, np.bool_))
            and 0 <= int(self.seed) < 2**64
        ):
            raise InvalidParameterError(
                f"weight_sampling='philox' needs an integer seed in [0, 2**64), got {self.seed!r}"
            )
        set_(self, "seed", check_int(self.seed, "seed", 0))
        if self.seed >= 2**64:
            raise InvalidParameterError(f"seed must be an integer in [0, 2**64), got {self.seed!r}")
        set_(self, "restarts", check_int(self.restarts, "restarts", 1))
        set_(self, "data_sample", check_int(self.data_sample, "data_sample", 1))
        if not isinstance(self.straight_through, (bool, np.bool_)):
            raise InvalidParameterError(
                f"straight_through must be True or False, got {self.straight_through!r}"
            )
        set_(self, "straight_through", bool(self.straight_through))
        cal = self.calibrate
        if isinstance(cal, Mapping):  # a CalibrationConfig dict (from_dict of a to_dict)
            cal = CalibrationConfig.from_dict(cal)
        if cal is not None and not isinstance(cal, (bool, np.bool_, CalibrationConfig)):
            raise InvalidParameterError(
                f"calibrate must be None, True, False or a CalibrationConfig, got {self.calibrate!r}"
            )
        if isinstance(cal, np.bool_):
            cal = bool(cal)
        if isinstance(cal, CalibrationConfig) and cal.levels != self.levels:
            raise InvalidParameterError(
                f"calibrate.levels ({cal.levels}) must equal levels ({self.levels}): the calibrated net has "
                "calibrate.levels levels per neuron"
            )
        set_(self, "calibrate", cal)

    @classmethod
    def _upgrade(cls, body: dict[str, Any], version: int) -> dict[str, Any]:
        if version < 2:  # before: compress never calibrated, and sampled i.i.d. with torch by default
            body = {"calibrate": False, "weight_sampling": "iid", **body}
        return body

    def calibration(self, n_rows: int | None) -> CalibrationConfig | None:
        """The :class:`~rmtcompress.ntklc.CalibrationConfig` :func:`compress` applies given ``n_rows`` rows of
        training data (``None``: no data), or None when it does not calibrate (see :attr:`calibrate`).

        Raises:
            InvalidParameterError: calibration was asked for explicitly (``True`` or a config) without data, or
                it applies and ``n_rows`` is below the ``2·levels`` rows it needs.
        """
        cal = self.calibrate
        if cal is False or (cal is None and (n_rows is None or self.method != DEFAULT_METHOD)):
            return None
        if n_rows is None:
            raise InvalidParameterError(
                "calibrate needs training data: pass X to compress, or NTKLCConfig(calibrate=False)"
            )
        out = (
            cal
            if isinstance(cal, CalibrationConfig)
            else CalibrationConfig(
                levels=self.levels, seed=self.seed, thermometer=self.readout_features == "thermometer"
            )
        )
        if n_rows < 2 * out.levels:
            raise InvalidParameterError(
                f"calibration (NTKLCConfig.calibrate, on by default when X is given) needs at least 2·levels = "
                f"{2 * out.levels} rows of X, got {n_rows}: pass more rows or NTKLCConfig(calibrate=False)"
            )
        return out


def ternary_codes(
    shape: tuple[int, int], sparsity: float, generator: torch.Generator, exact: bool
) -> torch.Tensor:
    """int8 codes in {−1, 0, +1}: zero w.p. ε (or exactly round(ε·size) zeros), ± equally likely."""
    eps = check_sparsity(sparsity)
    size = shape[0] * shape[1]
    if exact:
        n_zero = round(eps * size)
        n_pos = (size - n_zero) // 2
        n_neg = size - n_zero - n_pos
        flat = torch.cat([torch.zeros(n_zero), torch.ones(n_pos), -torch.ones(n_neg)]).to(torch.int8)
        return flat[torch.randperm(size, generator=generator)].reshape(shape)
    u = torch.rand(shape, generator=generator)
    return ((u >= (1.0 + eps) / 2.0).to(torch.int8) - (u < (1.0 - eps) / 2.0).to(torch.int8)).to(torch.int8)


def _soft_report(
    original: Sequence[Activation],
    new: Sequence[Activation],
    tau0: float,
    hard: tuple[str, ...] = (),
    kind: str = "",
) -> MatchReport:
    """Moment residuals of compressed activations against the original (conditions in ``hard`` are flagged)."""
    layers: list[LayerMatch] = []
    t_orig, t_comp = tau0, tau0
    L = len(original)
    for ell, (a, b) in enumerate(zip(original, new, strict=True), start=1):
        mo, mc = gaussian_moments(a, t_orig), gaussian_moments(b, t_comp)
        names = ("d1", "d2", "curv", "tau") if ell < L else ("tau", "d1", "d2")
        vals_o = {"d1": mo.d1**2, "d2": mo.d2**2, "curv": mo.curv, "tau": mo.var}
        vals_c = {"d1": mc.d1**2, "d2": mc.d2**2, "curv": mc.curv, "tau": mc.var}
        eqs = tuple(
            EquationResidual(
                k,
                vals_o[k],
                vals_c[k],
                vals_c[k] - vals_o[k],
                (vals_c[k] - vals_o[k]) / max(abs(vals_o[k]), 1e-12),
                k in hard and not (k == "curv" and ell == L),
            )
            for k in names
        )
        feasible = all(abs(e.relative) <= 1e-6 for e in eqs if e.hard)
        params = (
            {"breakpoints": list(b.breakpoints), "values": list(b.values)}
            if isinstance(b, StepActivation)
            else {}
        )
        layers.append(
            LayerMatch(
                ell,
                kind or type(b).__name__,
                params,
                b if isinstance(b, StepActivation) else None,  # type: ignore[arg-type]
                t_orig,
                t_comp,
                math.sqrt(mo.var),
                math.sqrt(mc.var),
                mc.mean,
                eqs,
                feasible,
                "" if feasible else "the constrained quantizer did not meet its conditions",
            )
        )
        t_orig, t_comp = math.sqrt(mo.var), math.sqrt(mc.var)
    return MatchReport(tuple(layers), tau0, {"informational": not hard, "hard": list(hard)})


@dataclass(frozen=True)
class CompressionInputs:
    """What a compression-method handler receives from :func:`compress`.

    Attributes:
        spec: the original architecture.
        config: the validated :class:`NTKLCConfig`.
        original: the original activations, one per layer (``spec.resolved_activations``).
        tau0: the input scale τ̂_0 (1.0 without data).
        X: the validated training data (n, p) as float64, or None.
        codes: the int8 ternary codes of every layer, (d_ℓ, d_{ℓ−1}).
        scales: the weight scale of every layer (1/√(1−ε)).
    """

    spec: MLPSpec
    config: NTKLCConfig
    original: tuple[Activation, ...]
    tau0: float
    X: np.ndarray | None
    codes: tuple[torch.Tensor, ...]
    scales: tuple[float, ...]


@dataclass(frozen=True)
class CompressedActivations:
    """What a compression-method handler returns: the compressed net's activations and how they were chosen.

    Attributes:
        activations: one activation per layer.
        centers: the centring constant c̃_ℓ of every layer.
        running_tau: the pre-activation scale every layer's activation was fitted at.
        report: per-layer moment residuals against the original (:class:`MatchReport`).
        bits: activation bits per layer (None: log2 of each step activation's number of levels).
    """

    activations: list[Activation]
    centers: list[float]
    running_tau: list[float]
    report: MatchReport
    bits: list[float] | None = None


CompressionHandler: TypeAlias = Callable[[CompressionInputs], CompressedActivations]


def register_compression_method(name: str) -> Callable[[CompressionHandler], CompressionHandler]:
    """Decorator: register a compression-method handler under ``name`` (``NTKLCConfig(method=name)`` then
    validates, and :func:`compress` dispatches to it). The handler takes :class:`CompressionInputs` and returns
    :class:`CompressedActivations`; the ternary codes and the readout are :func:`compress`'s business."""
    return COMPRESSION_METHODS.register(name)


@register_compression_method(CompressionMethod.NTKLC_PAPER.value)
def _ntklc_paper(inp: CompressionInputs) -> CompressedActivations:
    cfg = inp.config
    report = match_activations(
        inp.original,
        inp.tau0,
        last_layer=cfg.last_layer,
        hidden=cfg.hidden,
        tau_anchor=cfg.tau_anchor,
        hard=cfg.hard,
        restarts=cfg.restarts,
        seed=cfg.seed,
        on_infeasible=cfg.on_infeasible,
    )
    return CompressedActivations(
        list(report.activations),
        report.centers.tolist(),
        [lm.tau_in_compressed for lm in report.layers],
        report,
    )


# a quantizer method chooses layer i's step activation from (inputs, layer, σ, τ of the original, τ of the
# compressed net, that layer's pre-activations on the data sample or None)
_LayerQuantizer: TypeAlias = Callable[
    [CompressionInputs, int, Activation, float, float, "torch.Tensor | None"], StepActivation
]


def _quantized(
    inp: CompressionInputs, quantizer: _LayerQuantizer, *, data: bool = False
) -> CompressedActivations:
    """Layer after layer, the k-level step activation ``quantizer`` picks at the running scale, centred by its
    Gaussian mean; with ``data`` the layers also see the net's actual pre-activations on a row sample of X."""
    cfg, spec = inp.config, inp.spec
    dims = [spec.input_dim, *spec.widths]
    acts: list[Activation] = []
    centers: list[float] = []
    running: list[float] = []
    tau = tau_orig = inp.tau0
    h = None
    if data:
        if inp.X is None:
            raise InvalidParameterError(
                f"method {str(cfg.method)!r} needs training data X to fit the quantizers"
            )
        rows = np.random.default_rng(cfg.seed).permutation(inp.X.shape[0])[: cfg.data_sample]
        h = torch.from_numpy(inp.X[rows]).to(torch.float32)
    for i, act in enumerate(inp.original):
        w = inp.codes[i].to(torch.float32) * inp.scales[i] if h is not None else None
        z = h @ w.T if h is not None and w is not None else None
        step = quantizer(inp, i, act, tau_orig, tau, z)
        m = gaussian_moments(step, tau)
        acts.append(step)
        centers.append(m.mean)
        running.append(tau)
        if z is not None:
            h = (step.torch(z) - m.mean) / math.sqrt(dims[i + 1])
        tau = math.sqrt(m.var)
        tau_orig = math.sqrt(gaussian_moments(act, tau_orig).var)
    matched = cfg.method is CompressionMethod.LLOYD_MAX_MATCHED
    hard = ("d1", "d2", "curv") if matched else ()
    report = _soft_report(inp.original, acts, inp.tau0, hard=hard, kind=f"q{cfg.levels}")
    return CompressedActivations(acts, centers, running, report, [math.log2(cfg.levels)] * spec.depth)


def _lloyd_max_layer(
    inp: CompressionInputs, i: int, act: Activation, tau_orig: float, tau: float, z: torch.Tensor | None
) -> StepActivation:
    return lloyd_max_quantizer(act, tau, inp.config.levels).activation


def _uniform_layer(
    inp: CompressionInputs, i: int, act: Activation, tau_orig: float, tau: float, z: torch.Tensor | None
) -> StepActivation:
    return uniform_quantizer(act, tau, inp.config.levels).activation


def _matched_layer(
    inp: CompressionInputs, i: int, act: Activation, tau_orig: float, tau: float, z: torch.Tensor | None
) -> StepActivation:
    levels = inp.config.levels
    conds = ("d1", "d2", "curv") if i < inp.spec.depth - 1 else ("d1", "d2")
    mq = moment_matched_quantizer(act, tau_orig, tau, levels, conditions=conds)
    if not mq.converged:
        warnings.warn(
            f"layer {i + 1}: no {levels}-level quantizer met {conds} (relative residuals "
            f"{mq.residuals}); using it anyway, see the match report",
            MatchWarning,
            stacklevel=5,
        )
    return mq.activation


def _data_layer(
    inp: CompressionInputs, i: int, act: Activation, tau_orig: float, tau: float, z: torch.Tensor | None
) -> StepActivation:
    assert z is not None
    return lloyd_max_data_quantizer(act, z.numpy(), inp.config.levels, seed=inp.config.seed).activation


@register_compression_method(CompressionMethod.LLOYD_MAX.value)
def _lloyd_max(inp: CompressionInputs) -> CompressedActivations:
    return _quantized(inp, _lloyd_max_layer)


@register_compression_method(CompressionMethod.LLOYD_MAX_DATA.value)
def _lloyd_max_data(inp: CompressionInputs) -> CompressedActivations:
    return _quantized(inp, _data_layer, data=True)


@register_compression_method(CompressionMethod.UNIFORM.value)
def _uniform(inp: CompressionInputs) -> CompressedActivations:
    return _quantized(inp, _uniform_layer)


@register_compression_method(CompressionMethod.LLOYD_MAX_MATCHED.value)
def _lloyd_max_matched(inp: CompressionInputs) -> CompressedActivations:
    return _quantized(inp, _matched_layer)


@register_compression_method(CompressionMethod.WEIGHTS_ONLY.value)
def _weights_only(inp: CompressionInputs) -> CompressedActivations:
    acts = list(inp.original)
    report = _soft_report(inp.original, acts, inp.tau0, kind="original")
    return CompressedActivations(
        acts,
        report.centers.tolist(),
        [lm.tau_in_compressed for lm in report.layers],
        report,
        [32.0] * inp.spec.depth,
    )


def compress(spec: MLPSpec, config: NTKLCConfig | None = None, X: np.ndarray | None = None) -> CompressedMLP:
    """Build the compressed net for ``spec``.

    Draws the ternary codes (``config.weight_sampling``), then dispatches to the handler registered for
    ``config.method`` (:func:`register_compression_method`) for the activations.

    Args:
        spec: the original architecture.
        config: :class:`NTKLCConfig` (default: ``NTKLCConfig()``).
        X: optional (n, p) training data (never test data): τ̂_0 is estimated from it (Lemma 2; 1.0 without data,
            the value after the paper's normalisation); required by ``lloyd-max-data``; with X the net is also
            calibrated per neuron as ``config.calibrate`` says (by default for the default method: the best
            label-free net of the equal-width benchmark; ``NTKLCConfig(calibrate=False)`` keeps the shared
            quantizers).

    Returns:
        :class:`CompressedMLP` with ``match_report`` (per-layer residuals; ``max_residual``) — or, when calibrated,
        the net :func:`~rmtcompress.ntklc.calibrate` returns (per-neuron activations, provenance step
        ``"calibrated"`` with its config, ``match_report`` None: the shared activations it reported on are gone).

    Raises:
        InvalidParameterError: bad spec, config or X (see also :meth:`NTKLCConfig.calibration`).
    """
    cfg = config if config is not None else NTKLCConfig()
    if not isinstance(spec, MLPSpec):
        raise InvalidParameterError(f"spec must be an rc.MLPSpec, got {type(spec).__name__}")
    if not isinstance(cfg, NTKLCConfig):
        raise InvalidParameterError(f"config must be an rc.NTKLCConfig, got {type(cfg).__name__}")
    handler = COMPRESSION_METHODS.get(str(cfg.method))
    Xa = None
    if X is not None:
        Xa = validate_X(X)
        if Xa.shape[1] != spec.input_dim:
            raise InvalidParameterError(
                f"X has {Xa.shape[1]} features but spec.input_dim is {spec.input_dim}"
            )
    calibration = cfg.calibration(None if Xa is None else Xa.shape[0])
    tau0 = estimate_tau0(Xa) if Xa is not None else 1.0
    gen = torch_generator(cfg.seed)
    dims = [spec.input_dim, *spec.widths]
    if cfg.weight_sampling == "philox":
        codes = [
            torch.from_numpy(philox_ternary_codes(cfg.seed, i, (dims[i + 1], dims[i]), cfg.sparsity))
            for i in range(spec.depth)
        ]
    else:
        codes = [
            ternary_codes((dims[i + 1], dims[i]), cfg.sparsity, gen, cfg.weight_sampling == "exact")
            for i in range(spec.depth)
        ]
    scales = [1.0 / math.sqrt(1.0 - cfg.sparsity)] * spec.depth
    inputs = CompressionInputs(
        spec, cfg, tuple(spec.resolved_activations), tau0, Xa, tuple(codes), tuple(scales)
    )
    out = handler(inputs)
    model = CompressedMLP(
        spec,
        out.activations,
        out.centers,
        codes=codes,
        scales=scales,
        method=str(cfg.method),
        sparsity=cfg.sparsity,
        activation_bits=out.bits,
        match_report=out.report,
        tau0=tau0,
        straight_through=cfg.straight_through,
        running_tau=out.running_tau,
        thermometer=cfg.readout_features == "thermometer",
        weight_seed=cfg.seed if cfg.weight_sampling == "philox" else None,
    )
    if calibration is None:
        return model
    assert Xa is not None
    return calibrate_model(model, Xa, calibration)


def fit_readout(
    model: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    *,
    method: str = "ridge",
    progress: bool | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Train the linear readout of ``model`` in place on (X, y) — training data only — and return the model.

    Args:
        model: a :class:`CompressedMLP` or :class:`~rmtcompress.models.RandomFeatureMLP` (anything with ``features``).
        X: (n, p) training inputs.
        y: (n,) integer labels.
        method: ``"ridge"`` (closed form, λ on a validation split carved from (X, y)) or ``"sgd"`` (logits +
            cross-entropy, shuffled minibatches, early stopping on a validation split carved from (X, y)).
        progress: Show a progress bar on stderr naming each phase with its elapsed time (ridge: Gram — the features
            are computed block by block into it and never held whole —, λ path, refit; sgd: features, sgd): ``True``,
            ``False``, or ``None`` (default) for only when stderr is a terminal.
        **kwargs: passed to :func:`~rmtcompress.readout.fit_ridge_readout` / ``fit_sgd_readout``.
    """
    Xa, ya = validate_Xy(X, y, min_per_class=2)
    if method not in ("ridge", "sgd"):
        raise InvalidParameterError(f"readout method must be 'ridge' or 'sgd', got {method!r}")
    inputs: Any = getattr(model, "readout_inputs", None) or getattr(model, "features", None)
    if inputs is None:
        raise InvalidParameterError(
            f"{type(model).__name__} has no features(X): cannot train a readout on it"
        )
    stages = ["Gram", "λ path", "refit"] if method == "ridge" else ["features", "sgd"]
    with tqdm(
        total=len(stages),
        desc="fit_readout",
        bar_format="{desc}: phase {n}/{total} done [{elapsed}] {postfix}",
        disable=None if progress is None else not progress,
    ) as bar:
        started: list[str] = []

        def stage(name: str) -> None:
            if started:  # the previous phase is finished
                bar.update(1)
            started.append(name)
            bar.set_postfix_str(f"{name} (n={Xa.shape[0]})")

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if method == "ridge":  # features streamed block by block into the Gram, never held whole
                readout = _fit_ridge_streamed(inputs, Xa, ya, stage=stage, **kwargs)
            else:
                stage("features")
                F = np.asarray(inputs(Xa))
                stage("sgd")
                readout = fit_sgd_readout(F, ya, **kwargs)
        bar.update(bar.total - bar.n)
    set_classifier = getattr(model, "set_classifier", None)
    if set_classifier is not None:
        set_classifier(readout)
    else:  # a duck-typed model of the caller's: the attribute the package's models expose
        model.classifier = readout  # type: ignore[assignment]
    return model
