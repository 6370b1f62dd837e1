"""k-level quantized hidden activations for *trained* ``nn.Sequential`` MLPs (e.g. pruned ones), with an STE.

:func:`quantize_activations` returns a copy of a trained MLP whose hidden ``nn.ReLU`` modules are replaced by
:class:`QuantizedActivation` modules: per-layer k-level step functions of the pre-activation, fitted on the net's
actual pre-activations of a calibration sample. Everything else is copied unchanged (``copy.deepcopy``), including
the ``weight_mask`` buffers of :mod:`rmtcompress.pruning`, so a pruned net stays pruned and can be fine-tuned with
:func:`rmtcompress.training.train` (which keeps masked weights at zero).

Fitting (one quantizer per hidden layer, all neurons of the layer pooled):

* ``method="lloyd-max-data"`` — :func:`rmtcompress.quantizers.lloyd_max_data_quantizer` on ``ReLU(z)`` for the
  observed pre-activations ``z``, with ``keep_zero=True``: level 0 is pinned, so every zero of the ReLU stays an
  exact zero (ReLU sparsity is kept; small positive outputs below the first threshold become zero too). The other
  levels satisfy the Lloyd–Max conditions on the calibration data: each level is the mean of the ReLU outputs in its
  cell, each threshold the midpoint of its two levels.
* ``method="uniform"`` — k evenly spaced levels on ``[0, q_hi]``, ``q_hi = min(max y, mean y + 3·std y)`` with
  ``y = ReLU(z)`` over the calibration sample (the clipping rule of
  :func:`rmtcompress.quantizers.uniform_quantizer`, applied to the empirical law instead of a Gaussian), thresholds
  at the midpoints; level 0 exact.

Calibration is sequential: layer ℓ's quantizer is fitted on the pre-activations computed with layers ``< ℓ`` already
quantized, i.e. on exactly the inputs it sees in the returned model.

Since ReLU is the identity on ``t > 0`` and every threshold is positive, the breakpoints in ``t`` are the output
thresholds themselves: ``σ_q(t) = v_j`` for ``θ_j ≤ t < θ_{j+1}`` (``θ_0 = −∞``), which is the
:class:`rmtcompress.activations.StepActivation` convention. Gradient: the step function has zero derivative almost
everywhere, so ``straight_through=True`` (default) back-propagates the derivative of the clipped identity
``clamp(t, v_0, v_{k−1})`` instead (the "clipped ReLU" straight-through estimator of Cai et al. 2017, HWGQ): 1 on
``v_0 < t < v_{k−1}``, 0 elsewhere. The forward value is the quantized one either way.

Memory: :func:`activation_bits` gives ``⌈log2 k⌉`` bits per quantized hidden activation and 32 per float one;
:func:`runtime_memory` adds, for a batch size, the bytes of the hidden activations at those bit widths to the honest
weight bytes of :func:`rmtcompress.pruning.model_storage_bytes` and the quantizer tables.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import nn

from .._utils import Registry, check_int, validate_X
from ..core import StepActivation
from ..errors import InvalidParameterError
from ..quant import K_MAX, K_MIN, MAX_DATA_SAMPLES, ActivationQuantizer, lloyd_max_data_quantizer
from ._sparse import model_storage_bytes

__all__ = [
    "QuantizedActivation",
    "activation_bits",
    "quantize_activations",
    "runtime_memory",
]

FLOAT_ACTIVATION_BITS = 32
_UNIFORM_CLIP = 3.0
# element-wise float activations of trained nets (public: shrink's dead-neuron folding uses the same list)
FLOAT_ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.ReLU6,
    nn.Tanh,
    nn.Sigmoid,
    nn.Hardtanh,
    nn.GELU,
    nn.SiLU,
    nn.ELU,
    nn.Softsign,
)


class QuantizedActivation(nn.Module):
    """Element-wise k-level step activation ``σ_q(t) = levels[#{breakpoints ≤ t}]`` as an explicit module.

    ``breakpoints`` (m, non-decreasing, in pre-activation units) and ``levels`` (m + 1) are buffers, so they travel
    with ``state_dict`` / ``deepcopy`` / ``.to()``. The module has no parameters.

    Args:
        breakpoints: Thresholds in ``t`` (length m ≥ 1, finite, non-decreasing).
        levels: The m + 1 output values (finite).
        straight_through: Back-propagate the derivative of ``clamp(t, ste_low, ste_high)`` (True) or nothing
            (False: the step function's zero derivative; layers below get no gradient through it).
        ste_range: ``(low, high)`` window of the straight-through estimator; default ``(min levels, max levels)``
            (for a ReLU quantizer with level 0 exact: the clipped-ReLU STE).
        k: Number of distinct output levels the quantizer was fitted with (default: distinct values of ``levels``);
            drives :attr:`bits`.
        quantizer: Optional :class:`~rmtcompress.quantizers.ActivationQuantizer` it came from (kept for inspection;
            not saved in ``state_dict``).

    Raises:
        ValueError: On empty / non-finite / unsorted breakpoints, a levels length other than m + 1, or a bad
            ``ste_range``.
    """

    breakpoints: torch.Tensor
    levels: torch.Tensor
    ste_low: torch.Tensor
    ste_high: torch.Tensor

    def __init__(
        self,
        breakpoints: Sequence[float] | NDArray[Any] | torch.Tensor,
        levels: Sequence[float] | NDArray[Any] | torch.Tensor,
        *,
        straight_through: bool = True,
        ste_range: tuple[float, float] | None = None,
        k: int | None = None,
        quantizer: ActivationQuantizer | None = None,
    ) -> None:
        """Validate and store the step function as buffers."""
        super().__init__()
        step = StepActivation(
            tuple(float(b) for b in torch.as_tensor(breakpoints).reshape(-1).tolist()),
            tuple(float(v) for v in torch.as_tensor(levels).reshape(-1).tolist()),
            name="quantized_activation",
        )  # validates: m >= 1, m + 1 values, finite, non-decreasing
        low, high = (min(step.values), max(step.values)) if ste_range is None else ste_range
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            raise InvalidParameterError(f"ste_range must be finite with low <= high; got {ste_range!r}")
        n_levels = len(set(step.values)) if k is None else int(k)
        if not K_MIN <= n_levels <= K_MAX:
            raise InvalidParameterError(f"k must lie in [{K_MIN}, {K_MAX}]; got {n_levels}")
        self.register_buffer("breakpoints", torch.tensor(step.breakpoints, dtype=torch.float32))
        self.register_buffer("levels", torch.tensor(step.values, dtype=torch.float32))
        self.register_buffer("ste_low", torch.tensor(float(low), dtype=torch.float32))
        self.register_buffer("ste_high", torch.tensor(float(high), dtype=torch.float32))
        self.straight_through = bool(straight_through)
        self.k = n_levels
        self.quantizer = quantizer

    @property
    def bits(self) -> int:
        """Bits per stored activation, ``⌈log2 k⌉``."""
        return max(1, math.ceil(math.log2(self.k)))

    def step_activation(self) -> StepActivation:
        """The same function as a :class:`~rmtcompress.activations.StepActivation` (theory engine form)."""
        return StepActivation(
            tuple(float(b) for b in self.breakpoints.tolist()),
            tuple(float(v) for v in self.levels.tolist()),
            name="quantized_activation",
        )

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """Quantized values; with the STE, gradients of ``clamp(t, ste_low, ste_high)``."""
        bp = self.breakpoints.to(t.dtype)
        idx = torch.bucketize(t.detach(), bp, right=True)  # #{b ≤ t}
        out = self.levels.to(t.dtype)[idx]
        if self.straight_through and torch.is_grad_enabled() and t.requires_grad:
            surrogate = torch.clamp(t, self.ste_low.to(t.dtype), self.ste_high.to(t.dtype))
            out = out + (surrogate - surrogate.detach())  # value unchanged (x − x = 0 exactly)
        return out

    def extra_repr(self) -> str:
        """Levels, bits and the gradient mode."""
        levels = ", ".join(f"{v:.4g}" for v in self.levels.tolist())
        return f"k={self.k}, bits={self.bits}, levels=({levels}), straight_through={self.straight_through}"


# ============================================================================================ fitting


def _check_levels(levels: object) -> int:
    return check_int(levels, "levels", K_MIN, K_MAX)


# method name → fit(pre-activations z, k, max_samples, seed) of a k-level quantizer of ReLU(z); quantize_activations
# dispatches on it. "lloyd_max_data" (the underscore spelling some callers used) warns for one release.
_FITS: Registry[str, Callable[[NDArray[np.float64], int, int, int], ActivationQuantizer]] = Registry(
    "quantizer method", aliases={"lloyd_max_data": "lloyd-max-data"}
)


@_FITS.register("lloyd-max-data")
def _lloyd_max_data_fit(z: NDArray[np.float64], k: int, max_samples: int, seed: int) -> ActivationQuantizer:
    """Lloyd–Max on the empirical law of ReLU(z), level 0 pinned."""
    return lloyd_max_data_quantizer("relu", z, k, keep_zero=True, max_samples=max_samples, seed=seed)


@_FITS.register("uniform")
def _uniform_data_fit(z: NDArray[np.float64], k: int, max_samples: int, seed: int) -> ActivationQuantizer:
    return _uniform_fit(z, k)


def _uniform_fit(z: NDArray[np.float64], k: int) -> ActivationQuantizer:
    """Uniform k-level quantizer of ``ReLU(z)`` on ``[0, min(max y, mean y + 3 std y)]`` (level 0 exact)."""
    y = np.maximum(z, 0.0)
    q_hi = min(float(y.max()), float(y.mean()) + _UNIFORM_CLIP * float(y.std()))
    if not q_hi > 0.0:
        raise InvalidParameterError(
            "uniform quantizer: ReLU(z) is 0 on the whole calibration sample (a dead layer)"
        )
    levels = np.linspace(0.0, q_hi, k)
    thresholds = 0.5 * (levels[:-1] + levels[1:])
    distortion = float(np.mean((y - levels[np.searchsorted(thresholds, y, side="right")]) ** 2))
    levels.setflags(write=False)
    thresholds.setflags(write=False)
    return ActivationQuantizer(
        activation=StepActivation(
            tuple(thresholds.tolist()), tuple(levels.tolist()), name=f"uniform-data[k={k}]"
        ),
        levels=levels,
        thresholds=thresholds,
        source="relu",
        tau=None,
        method="uniform-data",
        distortion=distortion,
        bits=math.log2(k),
        iterations=0,
    )


def quantize_activations(
    model: nn.Module,
    X_sample: ArrayLike,
    *,
    levels: int = 4,
    method: Literal["lloyd-max-data", "uniform"] = "lloyd-max-data",
    straight_through: bool = True,
    max_samples: int = MAX_DATA_SAMPLES,
    seed: int = 0,
) -> nn.Sequential:
    """Copy of a trained ``nn.Sequential`` MLP with every top-level ``nn.ReLU`` replaced by a k-level quantizer.

    Args:
        model: A trained ``nn.Sequential`` (e.g. :func:`rmtcompress.training.make_mlp`), possibly pruned (its
            ``weight_mask`` buffers are kept). Not modified.
        X_sample: Calibration inputs, shape ``(n, p)`` (e.g. a few thousand training rows; no test data).
        levels: Number of levels k, 2 ≤ k ≤ 256 (``⌈log2 k⌉`` bits per activation).
        method: ``'lloyd-max-data'`` (Lloyd–Max on the empirical law, level 0 pinned) or ``'uniform'``.
        straight_through: Give the quantized activations the clipped straight-through gradient (for fine-tuning).
        max_samples: At most this many pre-activation values per layer are used by the Lloyd–Max fit (a seeded
            uniform subsample otherwise).
        seed: Seed of that subsample.

    Returns:
        The quantized copy, in evaluation mode, each :class:`QuantizedActivation` keeping its fitted
        :class:`~rmtcompress.quantizers.ActivationQuantizer` as ``.quantizer``.

    Raises:
        ValueError: If ``model`` is not an ``nn.Sequential`` or has no top-level ``nn.ReLU``; ``levels`` is not an
            integer in [2, 256]; ``method`` is unknown; ``X_sample`` is not a finite 2-D array or does not fit the
            model; or a layer's ReLU output is constant on the sample (nothing to quantize).
    """
    if not isinstance(model, nn.Sequential):
        raise InvalidParameterError(
            f"quantize_activations needs an nn.Sequential MLP; got {type(model).__name__}"
        )
    k = _check_levels(levels)
    fit = _FITS.get(method)
    if not any(isinstance(m, nn.ReLU) for m in model):
        raise InvalidParameterError(
            "the model has no top-level nn.ReLU to replace (only ReLU activations of the nn.Sequential are "
            "quantized)"
        )
    X = validate_X(X_sample, "X_sample")
    out = copy.deepcopy(model)
    out.eval()
    param = next(out.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    h = torch.from_numpy(X).to(dtype)
    with torch.no_grad():
        for idx, module in enumerate(list(out)):
            if isinstance(module, nn.ReLU):
                z = h.detach().cpu().numpy().astype(np.float64).reshape(-1)
                fitted = fit(z, k, max_samples, seed)
                step = fitted.activation
                quant = QuantizedActivation(
                    step.breakpoints,
                    step.values,
                    straight_through=straight_through,
                    k=k,
                    quantizer=fitted,
                ).to(device=h.device)
                out[idx] = quant
                module = quant
            try:
                h = module(h)
            except RuntimeError as exc:
                raise InvalidParameterError(
                    f"X_sample does not fit the model at module {idx} ({module}): {exc}"
                ) from exc
    return out


# ============================================================================================ memory


def activation_bits(model: nn.Module) -> dict[str, int]:
    """Bits per hidden activation value, per activation module (in registration order).

    Args:
        model: Any module; its :class:`QuantizedActivation` modules count ``⌈log2 k⌉`` bits, its float element-wise
            activations (``ReLU``, ``LeakyReLU``, ``ReLU6``, ``Tanh``, ``Sigmoid``, ``Hardtanh``, ``GELU``, ``SiLU``,
            ``ELU``, ``Softsign``) 32 bits.

    Returns:
        Module name → bits.

    Raises:
        ValueError: If ``model`` is not an ``nn.Module``.
    """
    if not isinstance(model, nn.Module):
        raise InvalidParameterError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    out: dict[str, int] = {}
    for name, m in model.named_modules():
        if isinstance(m, QuantizedActivation):
            out[name] = m.bits
        elif isinstance(m, FLOAT_ACTIVATIONS):
            out[name] = FLOAT_ACTIVATION_BITS
    return out


def runtime_memory(model: nn.Module, batch_size: int = 1) -> dict[str, Any]:
    """Runtime memory of an ``nn.Sequential`` MLP for a batch: honest weight bytes + quantizer tables + activations.

    Activation bytes count every hidden activation output of the batch at its bit width (:func:`activation_bits`),
    ``batch_size · width · bits / 8`` per activation module (width = ``out_features`` of the nearest preceding
    ``nn.Linear``); the input and the logits are not counted. ``activation_bytes`` sums all hidden layers (all kept,
    e.g. for training); ``peak_activation_bytes`` is the largest single one (layer-by-layer inference needs about
    that plus its input). Weights: :func:`rmtcompress.pruning.model_storage_bytes` (32 bits per non-zero + bitmask at
    its entropy + biases); quantizer tables: 32 bits per level and breakpoint.

    Args:
        model: An ``nn.Sequential`` of ``nn.Linear`` layers and activations (float or quantized).
        batch_size: Number of samples in flight (``>= 1``).

    Returns:
        Dict with ``batch_size``, ``weight_bytes``, ``quantizer_bytes``, ``activation_bytes``,
        ``peak_activation_bytes``, ``total_bytes`` (weights + tables + all activations) and ``layers`` (per
        activation module: width, bits, bytes).

    Raises:
        ValueError: If ``batch_size`` is not a positive integer, or an activation has no preceding ``nn.Linear``.
    """
    check_int(batch_size, "batch_size", 1)
    bits = activation_bits(model)
    layers: dict[str, dict[str, float]] = {}
    width: int | None = None
    table_bytes = 0.0
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            width = int(m.out_features)
        if name in bits:
            if width is None:
                raise InvalidParameterError(
                    f"activation {name!r} has no preceding nn.Linear: its width is unknown"
                )
            layers[name] = {
                "width": width,
                "bits": bits[name],
                "bytes": int(batch_size) * width * bits[name] / 8.0,
            }
        if isinstance(m, QuantizedActivation):
            table_bytes += 4.0 * (m.levels.numel() + m.breakpoints.numel())
    weight_bytes = float(model_storage_bytes(model)["entropy_bytes"])
    act_bytes = float(sum(v["bytes"] for v in layers.values()))
    return {
        "batch_size": int(batch_size),
        "weight_bytes": weight_bytes,
        "quantizer_bytes": table_bytes,
        "activation_bytes": act_bytes,
        "peak_activation_bytes": float(max((v["bytes"] for v in layers.values()), default=0.0)),
        "total_bytes": weight_bytes + table_bytes + act_bytes,
        "layers": layers,
    }
