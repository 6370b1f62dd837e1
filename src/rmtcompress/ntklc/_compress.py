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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .._utils import check_positive, check_sparsity, philox_ternary_codes, validate_X, validate_Xy
from ..core import Activation, MLPSpec, PerNeuronStep, StepActivation
from ..empirical import torch_generator
from ..errors import InvalidParameterError
from ..kernels import fast_features, unsupported_reason
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
    gaussian_moments,
    match_activations,
)
from ._memory import model_memory
from ._readout import LinearReadout, fit_ridge_readout, fit_sgd_readout

__all__ = [
    "DEFAULT_METHOD",
    "CompressedMLP",
    "CompressionMethod",
    "MLPSpec",
    "NTKLCConfig",
    "compress",
    "fit_readout",
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


# Chosen by the rule of docs/compression.md (experiments.rank_methods on benchmarks/results/ntklc.json):
# tests/test_default_method.py fails when the benchmark ranks another method first.
DEFAULT_METHOD = CompressionMethod.LLOYD_MAX
DEFAULT_LEVELS = 4
DEFAULT_READOUT_FEATURES = "thermometer"


@dataclass
class NTKLCConfig:
    """Configuration of :func:`compress` (validated on construction).

    Attributes:
        sparsity: ε ∈ [0, 1), fraction of zero weights.
        method: a :class:`CompressionMethod` value.
        levels: activation levels k for the quantizer methods (2 ≤ k ≤ 256).
        seed: seed of the weights (and of the solver's starts).
        weight_sampling: ``"iid"`` (each weight 0 w.p. ε), ``"exact"`` (exactly round(ε·size) zeros per layer and
            equal ± counts, as the research code) or ``"philox"`` (i.i.d. from the documented counter-based Philox
            mapping of :mod:`rmtcompress.philox`, so a saved model can store only the seed).
        restarts, last_layer, hidden, tau_anchor, hard, on_infeasible: :func:`match_activations` options
            (``ntklc-paper`` only).
        data_sample: rows of X used by ``lloyd-max-data``.
        straight_through: step activations pass a smoothed gradient backward (for fine-tuning hidden layers).
    """

    sparsity: float = 0.9
    method: str | CompressionMethod = DEFAULT_METHOD
    levels: int = DEFAULT_LEVELS
    seed: int = 0
    weight_sampling: str = "iid"
    restarts: int = 32
    last_layer: str = "paper"
    hidden: str = "sigma_t"
    tau_anchor: float = 0.0
    hard: tuple[str, ...] = ("d1", "d2", "curv", "Q", "tau")
    on_infeasible: str = "warn"
    data_sample: int = 2048
    straight_through: bool = False
    readout_features: str = DEFAULT_READOUT_FEATURES
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sparsity = check_sparsity(self.sparsity)
        try:
            self.method = CompressionMethod(self.method)
        except ValueError:
            valid = ", ".join(m.value for m in CompressionMethod)
            raise InvalidParameterError(
                f"unknown compression method {self.method!r}; valid: {valid}"
            ) from None
        if not isinstance(self.levels, (int, np.integer)) or not 2 <= int(self.levels) <= 256:
            raise InvalidParameterError(f"levels must be an integer in 2..256, got {self.levels!r}")
        if self.weight_sampling not in ("iid", "exact", "philox"):
            raise InvalidParameterError(
                f"weight_sampling must be 'iid', 'exact' or 'philox', got {self.weight_sampling!r}"
            )
        if self.readout_features not in ("levels", "thermometer"):
            raise InvalidParameterError(
                f"readout_features must be 'levels' or 'thermometer', got {self.readout_features!r}"
            )
        if self.method is CompressionMethod.LLOYD_MAX_MATCHED and int(self.levels) < 3:
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
            isinstance(self.tau_anchor, (int, float))
            and math.isfinite(self.tau_anchor)
            and self.tau_anchor >= 0
        ):
            raise InvalidParameterError(f"tau_anchor must be a finite number ≥ 0, got {self.tau_anchor!r}")
        valid_hard = ("d1", "d2", "curv", "Q", "tau")
        if isinstance(self.hard, str) or any(h not in valid_hard for h in self.hard):
            raise InvalidParameterError(
                f"hard must be a tuple of conditions from {valid_hard}, got {self.hard!r}"
            )
        self.hard = tuple(self.hard)
        if self.weight_sampling == "philox" and not (
            isinstance(self.seed, (int, np.integer)) and 0 <= int(self.seed) < 2**64
        ):
            raise InvalidParameterError(
                f"weight_sampling='philox' needs an integer seed in [0, 2**64), got {self.seed!r}"
            )
        check_positive(int(self.restarts), "restarts")
        check_positive(int(self.data_sample), "data_sample")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "sparsity": self.sparsity,
            "method": str(self.method),
            "levels": int(self.levels),
            "seed": self.seed,
            "weight_sampling": self.weight_sampling,
            "restarts": self.restarts,
            "last_layer": self.last_layer,
            "hidden": self.hidden,
            "tau_anchor": self.tau_anchor,
            "hard": list(self.hard),
            "straight_through": self.straight_through,
            "readout_features": self.readout_features,
        }


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


class _StraightThroughStep(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, t: torch.Tensor, act: StepActivation, width: float) -> torch.Tensor:
        ctx.save_for_backward(t)
        ctx.act, ctx.width = act, width
        return act.torch(t)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (t,) = ctx.saved_tensors
        act, w = ctx.act, ctx.width
        slope = torch.zeros_like(t)
        for b, jump in zip(act.breakpoints, act.jumps, strict=True):
            slope += float(jump) / (2.0 * w) * (torch.abs(t - b) < w).to(t.dtype)
        return grad * slope, None, None


class CompressedMLP(nn.Module):
    """A compressed random-feature net: packed-ternary (or float) weights, step activations, trained readout.

    Use :func:`compress` to build one. ``features(X)`` gives the last hidden layer (NumPy in → NumPy out, tensors
    stay tensors), ``predict(X)`` the labels once :func:`fit_readout` has trained the head.
    """

    def __init__(
        self,
        spec: MLPSpec,
        activations: Sequence[Activation],
        centers: Sequence[float],
        *,
        codes: Sequence[torch.Tensor] | None = None,
        scales: Sequence[float] | None = None,
        weights: Sequence[torch.Tensor] | None = None,
        method: str = "custom",
        sparsity: float = 0.0,
        activation_bits: Sequence[float] | None = None,
        match_report: MatchReport | None = None,
        tau0: float = 1.0,
        straight_through: bool = False,
        running_tau: Sequence[float] | None = None,
        thermometer: bool = False,
    ) -> None:
        super().__init__()
        if (codes is None) == (weights is None):
            raise InvalidParameterError("give either ternary codes (+ scales) or float weights")
        self.spec = spec
        self.activations: tuple[Activation, ...] = tuple(activations)
        self.method = method
        self.sparsity = float(sparsity)
        self.tau0 = float(tau0)
        self.match_report = match_report
        self.straight_through = straight_through
        self.thermometer = bool(thermometer) and isinstance(activations[-1], (StepActivation, PerNeuronStep))
        self.running_tau = tuple(running_tau) if running_tau is not None else None
        self.register_buffer("centers", torch.tensor(list(centers), dtype=torch.float32))
        self._ternary = codes is not None
        self.scales = tuple(float(s) for s in (scales or [1.0] * spec.depth))
        mats = codes if codes is not None else weights
        assert mats is not None
        for i, m in enumerate(mats):
            expected = (spec.widths[i], spec.input_dim if i == 0 else spec.widths[i - 1])
            if tuple(m.shape) != expected:
                raise InvalidParameterError(
                    f"layer {i + 1} weights have shape {tuple(m.shape)}, expected {expected}"
                )
            self.register_buffer(f"w{i}", m.to(torch.int8) if self._ternary else m.to(torch.float32))
        self.activation_bits = tuple(
            activation_bits
            if activation_bits is not None
            else [
                math.log2(len(set(a.values)))
                if isinstance(a, StepActivation)
                else math.log2(a.n_levels)
                if isinstance(a, PerNeuronStep)
                else 32.0
                for a in self.activations
            ]
        )
        self.classifier: LinearReadout | None = None
        self.finetune_report: Any = None  # set by rmtcompress.finetune (a FinetuneReport)
        self.weight_seed: int | None = None  # set when the codes come from rmtcompress.philox (seed mode)
        self.fast = False  # NumPy inputs go through rmtcompress.kernels (set by rc.load, or use_fast_kernel)

    @property
    def is_ternary(self) -> bool:
        """True when the hidden weights are stored as ternary codes."""
        return self._ternary

    def with_activations(
        self,
        activations: Sequence[Activation],
        centers: Sequence[float],
        *,
        method: str,
        thermometer: bool | None = None,
    ) -> CompressedMLP:
        """A new net with the same codes (or weights), scales, sparsity, τ0 and weight seed, and the given
        activations and centres; no readout. ``thermometer`` defaults to this net's."""
        mats = [getattr(self, f"w{i}") for i in range(self.spec.depth)]
        common: dict[str, Any] = {
            "scales": self.scales,
            "method": method,
            "sparsity": self.sparsity,
            "tau0": self.tau0,
            "thermometer": self.thermometer if thermometer is None else thermometer,
        }
        out = (
            CompressedMLP(self.spec, activations, centers, codes=mats, **common)
            if self._ternary
            else CompressedMLP(self.spec, activations, centers, weights=mats, **common)
        )
        out.weight_seed = self.weight_seed
        return out

    def weight(self, layer: int) -> torch.Tensor:
        """Dense float32 weight of hidden layer ``layer`` (0-based), scale applied."""
        w = getattr(self, f"w{layer}")
        assert isinstance(w, torch.Tensor)
        return w.to(torch.float32) * self.scales[layer] if self._ternary else w

    def _forward_features(self, x: torch.Tensor, thermometer: bool = False) -> torch.Tensor:
        h = x
        centers = self.centers
        assert isinstance(centers, torch.Tensor)
        for i, act in enumerate(self.activations):
            z = h @ self.weight(i).T
            if thermometer and i == len(self.activations) - 1:
                if isinstance(act, PerNeuronStep):
                    return act.indicators(z) / math.sqrt(self.spec.widths[i])
                assert isinstance(act, StepActivation)
                ind = [(z >= b).to(z.dtype) for b in act.breakpoints]
                return torch.cat(ind, dim=1) / math.sqrt(self.spec.widths[i])
            if self.straight_through and isinstance(act, StepActivation) and torch.is_grad_enabled():
                width = 0.5 * (self.running_tau[i] if self.running_tau else 1.0)
                a = _StraightThroughStep.apply(z, act, width)
            else:
                a = act.torch(z)
            h = (a - centers[i]) / math.sqrt(self.spec.widths[i])
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Last hidden layer h_L (n, d_L) for a float tensor x (n, p)."""
        return self._forward_features(x)

    def use_fast_kernel(self, enabled: bool = True) -> CompressedMLP:
        """Route NumPy inputs of ``features``/``readout_inputs``/``predict`` through the packed add/popcount CPU
        kernels of :mod:`rmtcompress.kernels` (same features wherever no pre-activation ties a breakpoint within
        float rounding); raises ``ValueError`` for nets the kernels do not support (float weights, smooth activations)."""
        if enabled:
            why = unsupported_reason(self)
            if why:
                raise InvalidParameterError(
                    f"the fast kernels need ternary weights and step activations in every layer: {why}"
                )
        self.fast = bool(enabled)
        return self

    def _fast(self, X: Any, readout_inputs: bool) -> Any:
        Xa = validate_X(X)
        if Xa.shape[1] != self.spec.input_dim:
            raise InvalidParameterError(
                f"X has {Xa.shape[1]} features but the model expects {self.spec.input_dim}"
            )
        return fast_features(self, Xa.astype(np.float32), readout_inputs=readout_inputs)

    def features(self, X: Any, *, batch_size: int = 4096) -> Any:
        """Last hidden layer h_L; NumPy (n, p) → NumPy float32 (n, d_L), tensor → tensor."""
        if self.fast and not isinstance(X, torch.Tensor):
            return self._fast(X, readout_inputs=False)
        return _features(self, X, batch_size)

    def readout_inputs(self, X: Any, *, batch_size: int = 4096) -> Any:
        """What the readout sees: h_L, or with ``thermometer`` the k − 1 indicators 1{z ≥ b_j}/√d_L of each
        last-layer pre-activation z, shape (n, (k − 1)·d_L) (same 2-bit runtime code, learned levels)."""
        if not self.thermometer:
            return self.features(X, batch_size=batch_size)
        if self.fast and not isinstance(X, torch.Tensor):
            return self._fast(X, readout_inputs=True)
        return _features(self, X, batch_size, lambda x: self._forward_features(x, thermometer=True))

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (n,) from the trained readout."""
        if self.classifier is None:
            raise InvalidParameterError(
                "the readout is not trained: call rc.fit_readout(model, X_train, y_train) first"
            )
        return self.classifier.predict(np.asarray(self.readout_inputs(X)))

    def score(self, X: Any, y: Any) -> float:
        """Accuracy on (X, y)."""
        return float(np.mean(self.predict(X) == np.asarray(y)))

    def memory(self, n_classes: int | None = None) -> dict[str, float]:
        """Memory of this net + a linear head: the paper's convention and the entropy bound of what is stored."""
        k = n_classes if n_classes is not None else (len(self.classifier.classes) if self.classifier else 10)
        return model_memory(self, k)


def _features(model: nn.Module, X: Any, batch_size: int, fn: Any = None) -> Any:
    forward = fn if fn is not None else model
    if isinstance(X, torch.Tensor):
        return forward(X)
    Xa = validate_X(X)
    spec = getattr(model, "spec", None)
    if spec is not None and Xa.shape[1] != spec.input_dim:
        raise InvalidParameterError(f"X has {Xa.shape[1]} features but the model expects {spec.input_dim}")
    out = []
    with torch.no_grad():
        for start in range(0, Xa.shape[0], batch_size):
            xb = torch.from_numpy(Xa[start : start + batch_size]).to(torch.float32)
            out.append(forward(xb).numpy())
    return np.concatenate(out, axis=0) if out else np.empty((0, 0), dtype=np.float32)


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


def compress(spec: MLPSpec, config: NTKLCConfig | None = None, X: np.ndarray | None = None) -> CompressedMLP:
    """Build the compressed net for ``spec``.

    Args:
        spec: the original architecture.
        config: :class:`NTKLCConfig` (default: ``NTKLCConfig()``).
        X: optional (n, p) training data: τ̂_0 is estimated from it (Lemma 2; 1.0 without data, the value after
            the paper's normalisation); required by ``lloyd-max-data``.

    Returns:
        :class:`CompressedMLP` with ``match_report`` (per-layer residuals; ``max_residual``).
    """
    cfg = config if config is not None else NTKLCConfig()
    if not isinstance(spec, MLPSpec):
        raise InvalidParameterError(f"spec must be an rc.MLPSpec, got {type(spec).__name__}")
    method = CompressionMethod(cfg.method)
    Xa = None
    if X is not None:
        Xa = validate_X(X)
        if Xa.shape[1] != spec.input_dim:
            raise InvalidParameterError(
                f"X has {Xa.shape[1]} features but spec.input_dim is {spec.input_dim}"
            )
    tau0 = float(np.sqrt(np.mean(np.einsum("ij,ij->i", Xa, Xa)))) if Xa is not None else 1.0
    original = spec.resolved_activations
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
    scale = 1.0 / math.sqrt(1.0 - cfg.sparsity)
    scales = [scale] * spec.depth
    bits: list[float] | None = None
    if method is CompressionMethod.NTKLC_PAPER:
        report = match_activations(
            original,
            tau0,
            last_layer=cfg.last_layer,
            hidden=cfg.hidden,
            tau_anchor=cfg.tau_anchor,
            hard=cfg.hard,
            restarts=cfg.restarts,
            seed=cfg.seed,
            on_infeasible=cfg.on_infeasible,
        )
        acts: list[Activation] = list(report.activations)
        centers = report.centers.tolist()
        running = [lm.tau_in_compressed for lm in report.layers]
    elif method is CompressionMethod.WEIGHTS_ONLY:
        acts = list(original)
        report = _soft_report(original, acts, tau0, kind="original")
        centers = report.centers.tolist()
        running = [lm.tau_in_compressed for lm in report.layers]
        bits = [32.0] * spec.depth
    else:
        acts, centers, running = [], [], []
        tau = tau0
        tau_orig = tau0
        h = None
        if method is CompressionMethod.LLOYD_MAX_DATA:
            if Xa is None:
                raise InvalidParameterError(
                    "method 'lloyd-max-data' needs training data X to fit the quantizers"
                )
            rows = np.random.default_rng(cfg.seed).permutation(Xa.shape[0])[: cfg.data_sample]
            h = torch.from_numpy(Xa[rows]).to(torch.float32)
        for i, act in enumerate(original):
            if method is CompressionMethod.LLOYD_MAX:
                q = lloyd_max_quantizer(act, tau, int(cfg.levels))
            elif method is CompressionMethod.UNIFORM:
                q = uniform_quantizer(act, tau, int(cfg.levels))
            elif method is CompressionMethod.LLOYD_MAX_MATCHED:
                conds = ("d1", "d2", "curv") if i < spec.depth - 1 else ("d1", "d2")
                mq = moment_matched_quantizer(act, tau_orig, tau, int(cfg.levels), conditions=conds)
                if not mq.converged:
                    warnings.warn(
                        f"layer {i + 1}: no {cfg.levels}-level quantizer met {conds} (relative residuals "
                        f"{mq.residuals}); using it anyway, see the match report",
                        MatchWarning,
                        stacklevel=2,
                    )
            else:
                assert h is not None
                z = h @ (codes[i].to(torch.float32) * scales[i]).T
                q = lloyd_max_data_quantizer(act, z.numpy(), int(cfg.levels), seed=cfg.seed)
            step = mq.activation if method is CompressionMethod.LLOYD_MAX_MATCHED else q.activation
            m = gaussian_moments(step, tau)
            acts.append(step)
            centers.append(m.mean)
            running.append(tau)
            if h is not None:
                h = (step.torch(h @ (codes[i].to(torch.float32) * scales[i]).T) - m.mean) / math.sqrt(
                    dims[i + 1]
                )
            tau = math.sqrt(m.var)
            tau_orig = math.sqrt(gaussian_moments(act, tau_orig).var)
        hard = ("d1", "d2", "curv") if method is CompressionMethod.LLOYD_MAX_MATCHED else ()
        report = _soft_report(original, acts, tau0, hard=hard, kind=f"q{int(cfg.levels)}")
        bits = [math.log2(int(cfg.levels))] * spec.depth
    model = CompressedMLP(
        spec,
        acts,
        centers,
        codes=codes,
        scales=scales,
        method=str(method),
        sparsity=cfg.sparsity,
        activation_bits=bits,
        match_report=report,
        tau0=tau0,
        straight_through=cfg.straight_through,
        running_tau=running,
        thermometer=cfg.readout_features == "thermometer",
    )
    if cfg.weight_sampling == "philox":
        model.weight_seed = int(cfg.seed)
    return model


def fit_readout(
    model: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    *,
    method: str = "ridge",
    **kwargs: Any,
) -> nn.Module:
    """Train the linear readout of ``model`` in place on (X, y) — training data only — and return the model.

    Args:
        model: a :class:`CompressedMLP` or :class:`~rmtcompress.models.RandomFeatureMLP` (anything with ``features``).
        X: (n, p) training inputs.
        y: (n,) integer labels.
        method: ``"ridge"`` (closed form, λ on a validation split carved from (X, y)) or ``"sgd"`` (logits +
            cross-entropy, shuffled minibatches, early stopping on a validation split carved from (X, y)).
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
    F = np.asarray(inputs(Xa))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        readout = (
            fit_ridge_readout(F, ya, **kwargs) if method == "ridge" else fit_sgd_readout(F, ya, **kwargs)
        )
    model.classifier = readout  # type: ignore[assignment]
    return model
