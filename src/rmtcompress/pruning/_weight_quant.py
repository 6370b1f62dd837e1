"""Weight quantization of trained nets: shared codebooks (Deep Compression), symmetric int-k, ternary (TWN / TTQ).

:func:`quantize_weights` returns a copy of a trained model in which every ``nn.Linear`` / ``nn.Conv2d`` is replaced
by a :class:`QuantizedLinear` / :class:`QuantizedConv2d`: integer **codes** with the weight's shape (code 0 is an
exact zero — pruned weights stay pruned), a float32 **table** of the non-zero values per scope group (one group per
layer, or one per output channel), and the float32 bias. The layer computes exactly ``x @ W_hat.T + b`` (or the
convolution with ``W_hat``), ``W_hat = table[group, codes]``.

The table has one of two forms (the module's ``scheme``):

* ``"codebook"`` — ``K`` free float32 values per group (``codebook`` parameter of shape ``(G, K)``); code ``j ≥ 1``
  means ``codebook[g, j − 1]``. Weight sharing and TTQ ternary use it.
* ``"symmetric"`` — one float32 scale ``s_g`` per group (``codebook`` parameter of shape ``(G, 1)``) and ``M``
  integer magnitudes: code ``j ∈ [1, M]`` means ``+j·s_g``, code ``M + j`` means ``−j·s_g``. Uniform int-k
  (``M = 2^(k−1) − 1``) and TWN ternary (``M = 1``) use it.

Configs (typed, frozen, validated; dispatched through a registry):

* :class:`WeightSharingConfig` — 1-D k-means (Lloyd) on the **non-zero** weights of each group, with
  :func:`rmtcompress.quant.lloyd_max_data_quantizer` (identity activation, no pinned zero level, deterministic
  quantile initialisation): ``2**bits`` centroids, each the mean of its cell, cell boundaries at the midpoints.
  A group with at most ``2**bits`` distinct non-zero values keeps them exactly. Optional shared-centroid
  fine-tuning (Han et al. 2016): the codebook is an ``nn.Parameter`` and ``W_hat`` is built from it in ``forward``,
  so the gradient of a centroid is the sum of the gradients of the weights that share it; codes (and hence the
  zeros) never change.
* :class:`UniformWeightConfig` — symmetric int-k: ``s_g = max|w| / (2^(k−1) − 1)`` (float32), code of ``w`` the
  rounded ``w / s_g``; zero exact (weights that round to 0 become exact zeros).
* :class:`TernaryWeightConfig` — ``{0, ±α}`` per group, TWN (Li et al. 2016): threshold ``Δ = t·mean|w|`` over the
  non-zero weights (``t = 0`` keeps exactly the existing zeros), ``α = mean |w|`` over ``|w| > Δ`` (the
  least-squares α). ``alpha="trained"`` gives TTQ-style (Zhu et al. 2017) separate positive and negative scales,
  fitted as the means of the positive and the negative kept weights, trained by the fine-tuning if any.

Fine-tuning (``finetune_epochs > 0``) needs training data ``(X, y)`` and runs :func:`rmtcompress.pruning.train`
(Adam, the package's seeded loop with a validation split carved from ``(X, y)`` and best-epoch selection) with only
the tables trainable. The k-level activations of :func:`rmtcompress.pruning.quantize_activations` may be applied
before or after (their straight-through gradient is used during fine-tuning).
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import nn
from torch.nn import functional as F

from .._utils import Config, Registry, validate_Xy
from ..errors import InvalidParameterError, QuantizerConvergenceWarning, RmtcompressWarning
from ..quant import MAX_DATA_SAMPLES, lloyd_max_data_quantizer
from ._fast_linear import LinearKernels
from ._fold import fold_batchnorm
from ._training import TrainConfig, train

__all__ = [
    "QuantizedConv2d",
    "QuantizedLinear",
    "TernaryWeightConfig",
    "UniformWeightConfig",
    "WeightQuantConfig",
    "WeightQuantWarning",
    "WeightSharingConfig",
    "kernel_plan",
    "quantize_weights",
    "quantized_layers",
    "use_fast_kernels",
]

BITS_MIN = 1
BITS_MAX = 8
SCOPES = ("layer", "channel")
SCHEMES = ("codebook", "symmetric")
CODES_DTYPE = torch.int16


class WeightQuantWarning(RmtcompressWarning):
    """A weight-quantization fit stopped early (e.g. Lloyd at its iteration cap); the result is still valid."""


# ============================================================================================ configs


def _check_bits(bits: object, lo: int = BITS_MIN) -> int:
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral) or not lo <= int(bits) <= BITS_MAX:
        raise InvalidParameterError(f"bits must be an integer in [{lo}, {BITS_MAX}]; got {bits!r}")
    return int(bits)


def _check_scope(scope: object) -> None:
    if scope not in SCOPES:
        raise InvalidParameterError(f"scope must be one of {', '.join(map(repr, SCOPES))}; got {scope!r}")


def _check_epochs(cfg: object, epochs: object, lr: object, batch_size: object) -> None:
    """Validate the fine-tuning fields of ``cfg`` and store them normalised (int, float, int)."""
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or int(epochs) < 0:
        raise InvalidParameterError(f"finetune_epochs must be an integer >= 0; got {epochs!r}")
    if (
        isinstance(lr, bool)
        or not isinstance(lr, numbers.Real)
        or not (math.isfinite(float(lr)) and float(lr) > 0)
    ):
        raise InvalidParameterError(f"lr must be a finite number > 0; got {lr!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or int(batch_size) < 1:
        raise InvalidParameterError(f"batch_size must be an integer >= 1; got {batch_size!r}")
    object.__setattr__(cfg, "finetune_epochs", int(epochs))
    object.__setattr__(cfg, "lr", float(lr))
    object.__setattr__(cfg, "batch_size", int(batch_size))


@dataclass(frozen=True)
class WeightSharingConfig(Config):
    """Deep-Compression weight sharing: a Lloyd (1-D k-means) codebook of the non-zero weights per group.

    Attributes:
        bits: 1 to 8: ``2**bits`` centroids per group (zero is not a centroid; zeros stay exact).
        scope: ``"layer"`` (one codebook per layer) or ``"channel"`` (one per output channel / row).
        finetune_epochs: Epochs of shared-centroid fine-tuning (needs ``X, y``); 0: none.
        lr: Adam learning rate of the fine-tuning.
        batch_size: Minibatch size of the fine-tuning.
        max_iter: Lloyd iteration cap per group (a :class:`WeightQuantWarning` says how many groups hit it).
        tol: Lloyd stops when no centroid moves by more than ``tol · std`` of the group's non-zero weights.
        max_samples: At most this many weights per group enter the Lloyd fit (a seeded subsample beyond).
    """

    bits: int = 2
    scope: Literal["layer", "channel"] = "layer"
    finetune_epochs: int = 0
    lr: float = 1e-3
    batch_size: int = 256
    max_iter: int = 100
    tol: float = 1e-9
    max_samples: int = MAX_DATA_SAMPLES

    def __post_init__(self) -> None:
        """Validate the fields (InvalidParameterError) and normalise them (Python int / float)."""
        object.__setattr__(self, "bits", _check_bits(self.bits))
        _check_scope(self.scope)
        _check_epochs(self, self.finetune_epochs, self.lr, self.batch_size)
        for name in ("max_iter", "max_samples"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or int(v) < 1:
                raise InvalidParameterError(f"{name} must be an integer >= 1; got {v!r}")
            object.__setattr__(self, name, int(v))
        if not (
            isinstance(self.tol, numbers.Real)
            and not isinstance(self.tol, bool)
            and math.isfinite(float(self.tol))
            and self.tol > 0
        ):
            raise InvalidParameterError(f"tol must be a finite number > 0; got {self.tol!r}")
        object.__setattr__(self, "tol", float(self.tol))


@dataclass(frozen=True)
class UniformWeightConfig(Config):
    """Symmetric int-k weights: ``s = max|w| / (2^(bits−1) − 1)`` per group, codes ``round(w / s)``, zero exact.

    Attributes:
        bits: 2 to 8 (int2 is ``{0, ±s}``; 1 bit has no symmetric non-zero level: use
            :class:`TernaryWeightConfig` or :class:`WeightSharingConfig`).
        scope: ``"channel"`` (one scale per output channel) or ``"layer"``.
    """

    bits: int = 8
    scope: Literal["layer", "channel"] = "channel"

    def __post_init__(self) -> None:
        """Validate the fields."""
        if (
            isinstance(self.bits, numbers.Integral)
            and not isinstance(self.bits, bool)
            and int(self.bits) == 1
        ):
            raise InvalidParameterError(
                "UniformWeightConfig needs bits in [2, 8] (symmetric int-1 has no non-zero level); "
                "use TernaryWeightConfig or WeightSharingConfig(bits=1)"
            )
        object.__setattr__(self, "bits", _check_bits(self.bits))
        _check_scope(self.scope)

    @property
    def finetune_epochs(self) -> int:
        """Uniform quantization is not fine-tuned (0)."""
        return 0


@dataclass(frozen=True)
class TernaryWeightConfig(Config):
    """Ternary weights ``{0, ±α}`` per group (TWN threshold and least-squares α; TTQ-style asymmetric scales).

    Attributes:
        scope: ``"layer"`` or ``"channel"``.
        alpha: ``"fitted"`` — one α per group, ``{0, +α, −α}`` (fine-tuning trains α); ``"trained"`` — TTQ-style
            ``{0, +α_p, −α_n}``, initialised at the means of the kept positive / negative weights and trained by
            the fine-tuning.
        threshold: ``t`` of ``Δ = t · mean|w|`` over the non-zero weights of the group (TWN: 0.7); weights with
            ``|w| ≤ Δ`` become 0. ``0`` keeps exactly the existing zeros.
        finetune_epochs: Epochs of scale fine-tuning (needs ``X, y``); 0: none.
        lr: Adam learning rate of the fine-tuning.
        batch_size: Minibatch size of the fine-tuning.
    """

    scope: Literal["layer", "channel"] = "layer"
    alpha: Literal["fitted", "trained"] = "fitted"
    threshold: float = 0.7
    finetune_epochs: int = 0
    lr: float = 1e-3
    batch_size: int = 256

    def __post_init__(self) -> None:
        """Validate the fields."""
        _check_scope(self.scope)
        if self.alpha not in ("fitted", "trained"):
            raise InvalidParameterError(f"alpha must be 'fitted' or 'trained'; got {self.alpha!r}")
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, numbers.Real) or not (math.isfinite(float(t)) and t >= 0):
            raise InvalidParameterError(f"threshold must be a finite number >= 0; got {t!r}")
        object.__setattr__(self, "threshold", float(t))
        _check_epochs(self, self.finetune_epochs, self.lr, self.batch_size)

    @property
    def bits(self) -> int:
        """Ternary codes take 2 bits in a fixed-width layout (their entropy is at most log2 3)."""
        return 2


WeightQuantConfig: TypeAlias = WeightSharingConfig | UniformWeightConfig | TernaryWeightConfig


# ============================================================================================ modules


class _QuantizedWeight(nn.Module):
    """Shared machinery of :class:`QuantizedLinear` and :class:`QuantizedConv2d` (codes, table, bias)."""

    codes: torch.Tensor
    magnitudes: torch.Tensor

    def __init__(
        self,
        codes: torch.Tensor | NDArray[Any],
        codebook: torch.Tensor | NDArray[Any],
        bias: torch.Tensor | NDArray[Any] | None,
        *,
        scheme: str,
        bits: int,
        levels: int | None = None,
        method: str = "",
    ) -> None:
        super().__init__()
        c = torch.as_tensor(np.asarray(codes) if isinstance(codes, np.ndarray) else codes)
        if c.dtype.is_floating_point or c.dtype == torch.bool or c.dim() < 2:
            raise InvalidParameterError(
                f"codes must be an integer tensor of the weight's shape; got {c.dtype}"
            )
        book = torch.as_tensor(codebook, dtype=torch.float32)
        if book.dim() != 2 or book.shape[1] < 1 or book.shape[0] not in (1, c.shape[0]):
            raise InvalidParameterError(
                f"codebook must have shape (1, K) or ({c.shape[0]}, K); got {tuple(book.shape)}"
            )
        if not torch.isfinite(book).all():
            raise InvalidParameterError("the codebook holds NaN or inf values")
        if scheme not in SCHEMES:
            raise InvalidParameterError(f"scheme must be one of {SCHEMES}; got {scheme!r}")
        if scheme == "symmetric":
            if levels is None or levels < 1 or book.shape[1] != 1:
                raise InvalidParameterError("a 'symmetric' table needs levels >= 1 and one scale per group")
            n_values = 2 * int(levels)
            mags = torch.arange(1, int(levels) + 1, dtype=torch.float32)
            self.register_buffer("magnitudes", torch.cat([mags, -mags]))
        else:
            n_values = int(book.shape[1])
            self.register_buffer("magnitudes", torch.zeros(0))
        if c.numel() and (int(c.min()) < 0 or int(c.max()) > n_values):
            raise InvalidParameterError(
                f"codes must lie in [0, {n_values}]; got [{int(c.min())}, {int(c.max())}]"
            )
        self.register_buffer("codes", c.to(CODES_DTYPE).contiguous())
        self.codebook = nn.Parameter(book.clone())
        if bias is None:
            self.bias: nn.Parameter | None = None
        else:
            b = torch.as_tensor(bias, dtype=torch.float32).reshape(-1)
            if b.numel() != c.shape[0]:
                raise InvalidParameterError(f"bias has {b.numel()} entries for {c.shape[0]} outputs")
            self.bias = nn.Parameter(b.clone())
        self.scheme = scheme
        self.bits = int(bits)
        self.levels = None if levels is None else int(levels)
        self.method = str(method)

    @property
    def scope(self) -> str:
        """``"layer"`` (one table) or ``"channel"`` (one table per output channel)."""
        return "layer" if self.codebook.shape[0] == 1 and self.codes.shape[0] != 1 else "channel"

    @property
    def n_values(self) -> int:
        """Number of non-zero table entries per group (codes run over ``0 … n_values``)."""
        return int(self.magnitudes.numel()) if self.scheme == "symmetric" else int(self.codebook.shape[1])

    def table(self) -> torch.Tensor:
        """The ``(G, n_values + 1)`` value table, column 0 the exact zero (differentiable in ``codebook``)."""
        vals = self.codebook * self.magnitudes if self.scheme == "symmetric" else self.codebook
        return F.pad(vals, (1, 0))

    def weight_hat(self) -> torch.Tensor:
        """``W_hat = table[group, codes]`` with the weight's shape (float32)."""
        out = self.codes.shape[0]
        idx = self.codes.reshape(out, -1).long()
        tab = self.table()
        w = tab[0][idx] if tab.shape[0] == 1 else tab.gather(1, idx)
        return w.reshape(self.codes.shape)

    @property
    def weight(self) -> torch.Tensor:
        """The dequantized weight ``W_hat`` (recomputed; differentiable in the codebook)."""
        return self.weight_hat()

    def nnz(self) -> int:
        """Number of non-zero codes."""
        return int(torch.count_nonzero(self.codes))

    def _repr_tail(self) -> str:
        return (
            f"scheme={self.scheme}, bits={self.bits}, scope={self.scope}, groups={self.codebook.shape[0]}, "
            f"nnz={self.nnz()}/{self.codes.numel()}, bias={self.bias is not None}"
        )


class QuantizedLinear(_QuantizedWeight):
    """``y = x @ W_hat.T + b`` with ``W_hat = table[group, codes]`` (see the module docstring).

    Args:
        codes: Integer codes, shape ``(out_features, in_features)``; 0 is an exact zero.
        codebook: ``(G, K)`` free values (``scheme="codebook"``) or ``(G, 1)`` scales (``"symmetric"``), G = 1 or
            ``out_features``.
        bias: ``(out_features,)`` or None.
        scheme: ``"codebook"`` or ``"symmetric"``.
        bits: Nominal bits per code (recorded; e.g. the config's bits).
        levels: ``M`` of the symmetric scheme (codes ``1..M`` = ``+j·s``, ``M+1..2M`` = ``−j·s``).
        method: Free-text name of the fit (``"sharing"``, ``"uniform"``, ``"ternary"``, ``"ttq"``).
    """

    def __init__(
        self,
        codes: torch.Tensor | NDArray[Any],
        codebook: torch.Tensor | NDArray[Any],
        bias: torch.Tensor | NDArray[Any] | None = None,
        *,
        scheme: str = "codebook",
        bits: int = 8,
        levels: int | None = None,
        method: str = "",
    ) -> None:
        """Validate and store codes (int16 buffer), the table (parameter) and the bias (parameter)."""
        super().__init__(codes, codebook, bias, scheme=scheme, bits=bits, levels=levels, method=method)
        if self.codes.dim() != 2:
            raise InvalidParameterError(
                f"QuantizedLinear codes must be 2-D; got shape {tuple(self.codes.shape)}"
            )
        self.out_features, self.in_features = (int(v) for v in self.codes.shape)
        self._kernels: LinearKernels | None = None

    def use_fast_kernel(self, enabled: bool = True, *, plan: str = "auto") -> QuantizedLinear:
        """Run inference (2-D float32 CPU inputs, no gradient needed) through the fastest of the layer's exact paths
        (:data:`rmtcompress.pruning.LINEAR_PATHS`: cached dense fp32, torch CSR, sparse × codebook kernels); each
        equals ``F.linear(x, W_hat, b)`` to float32 round-off. Training, gradients and other inputs keep the
        reference forward.

        Args:
            enabled: turn the fast paths on (a fresh plan) or off.
            plan: ``"auto"``: time the paths on the first batch of each batch-size bucket and keep the fastest;
                ``"fixed:<path>"``: always that path (deterministic).

        Returns:
            ``self``.
        """
        self._kernels = LinearKernels(plan) if enabled else None
        return self

    @property
    def fast(self) -> bool:
        """Whether inference runs through the planned fast paths (:meth:`use_fast_kernel`)."""
        return getattr(self, "_kernels", None) is not None

    def kernel_plan(self) -> list[dict[str, Any]]:
        """The path chosen per batch-size bucket so far, with the median timings (ms) that chose it (empty when
        the fast paths are off or before the first inference call)."""
        k = getattr(self, "_kernels", None)
        return [] if k is None else [e.to_dict() for e in k.planner.entries()]

    def _fast_ok(self, x: torch.Tensor) -> bool:
        if (
            x.dim() != 2
            or x.dtype != torch.float32
            or x.device.type != "cpu"
            or self.codes.device.type != "cpu"
        ):
            return False
        if not torch.is_grad_enabled():
            return True
        params = [self.codebook] + ([self.bias] if self.bias is not None else [])
        return not (x.requires_grad or any(p.requires_grad for p in params))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``F.linear(x, W_hat, b)`` (in the input's dtype), through the planned fast path when it is on and
        applies (:meth:`use_fast_kernel`)."""
        k = getattr(self, "_kernels", None)
        if k is not None and self._fast_ok(x):
            return k.forward(self, x)
        w = self.weight_hat().to(x.dtype)
        return F.linear(x, w, None if self.bias is None else self.bias.to(x.dtype))

    def extra_repr(self) -> str:
        """Shape and quantization summary."""
        return f"in_features={self.in_features}, out_features={self.out_features}, {self._repr_tail()}"


class QuantizedConv2d(_QuantizedWeight):
    """``conv2d(x, W_hat, b)`` with ``W_hat = table[group, codes]``; codes ``(out, in/groups, kh, kw)``.

    Args:
        codes, codebook, bias, scheme, bits, levels, method: As :class:`QuantizedLinear`.
        stride, padding, dilation, groups: As ``nn.Conv2d`` (``padding_mode="zeros"``).
    """

    def __init__(
        self,
        codes: torch.Tensor | NDArray[Any],
        codebook: torch.Tensor | NDArray[Any],
        bias: torch.Tensor | NDArray[Any] | None = None,
        *,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        scheme: str = "codebook",
        bits: int = 8,
        levels: int | None = None,
        method: str = "",
    ) -> None:
        """Validate and store codes, table, bias and the convolution settings."""
        super().__init__(codes, codebook, bias, scheme=scheme, bits=bits, levels=levels, method=method)
        if self.codes.dim() != 4:
            raise InvalidParameterError(
                f"QuantizedConv2d codes must be 4-D; got shape {tuple(self.codes.shape)}"
            )
        self.out_channels = int(self.codes.shape[0])
        self.in_channels = int(self.codes.shape[1]) * int(groups)
        self.kernel_size = (int(self.codes.shape[2]), int(self.codes.shape[3]))
        self.stride = _pair(stride)
        self.padding: tuple[int, int] | str = padding if isinstance(padding, str) else _pair(padding)
        self.dilation = _pair(dilation)
        self.groups = int(groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``F.conv2d(x, W_hat, b, stride, padding, dilation, groups)`` (in the input's dtype)."""
        w = self.weight_hat().to(x.dtype)
        b = None if self.bias is None else self.bias.to(x.dtype)
        return F.conv2d(x, w, b, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        """Shape, convolution settings and quantization summary."""
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, {self._repr_tail()}"
        )


def _pair(v: int | tuple[int, ...] | list[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return (int(v), int(v))
    t = tuple(int(x) for x in v)
    if len(t) != 2:
        raise InvalidParameterError(f"expected an int or a pair of ints; got {v!r}")
    return (t[0], t[1])


# ============================================================================================ fitting (NumPy)


@dataclass
class _Fit:
    """Result of fitting one layer: codes (weight shape), table values (G, P), scheme, levels."""

    codes: NDArray[np.int16]
    codebook: NDArray[np.float32]
    scheme: str
    bits: int
    levels: int | None
    method: str
    unconverged: int = 0


def _groups(w: NDArray[np.float64], scope: str) -> NDArray[np.float64]:
    """Rows of the (G, n/G) matrix of groups: the whole layer (G = 1) or one row per output channel."""
    out = w.shape[0]
    return w.reshape(1, -1) if scope == "layer" else w.reshape(out, -1)


def _fit_sharing(w: NDArray[np.float64], cfg: WeightSharingConfig, seed: int) -> _Fit:
    k = 2**cfg.bits
    rows = _groups(w, cfg.scope)
    codes = np.zeros(rows.shape, dtype=np.int16)
    book = np.zeros((rows.shape[0], k), dtype=np.float32)
    unconverged = 0
    for g, row in enumerate(rows):
        nz = np.flatnonzero(row)
        if nz.size == 0:
            continue
        v = row[nz]
        distinct = np.unique(v)
        if distinct.size <= k:
            levels = distinct
        else:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", QuantizerConvergenceWarning)
                q = lloyd_max_data_quantizer(
                    "identity",
                    v,
                    k,
                    keep_zero=False,
                    tol=cfg.tol,
                    max_iter=cfg.max_iter,
                    max_samples=cfg.max_samples,
                    seed=seed,
                    accelerate=False,
                )
            unconverged += any(issubclass(c.category, QuantizerConvergenceWarning) for c in caught)
            levels = np.asarray(q.levels, dtype=np.float64)
        lv32 = levels.astype(np.float32)
        book[g, : lv32.size] = lv32
        book[g, lv32.size :] = lv32[-1]  # unused padding entries (never referenced by a code)
        mids = 0.5 * (lv32[:-1].astype(np.float64) + lv32[1:].astype(np.float64))
        codes[g, nz] = (np.searchsorted(mids, v, side="right") + 1).astype(np.int16)
    return _Fit(codes.reshape(w.shape), book, "codebook", cfg.bits, None, "sharing", unconverged)


def _fit_uniform(w: NDArray[np.float64], cfg: UniformWeightConfig, seed: int) -> _Fit:
    del seed  # deterministic
    m = 2 ** (cfg.bits - 1) - 1
    rows = _groups(w, cfg.scope)
    amax = np.abs(rows).max(axis=1)
    scale = (amax.astype(np.float32) / np.float32(m)).astype(np.float32)
    safe = np.where(scale > 0, scale, np.float32(1.0)).astype(np.float64)
    q = np.clip(np.rint(rows / safe[:, None]), -m, m).astype(np.int64)
    codes = np.where(q > 0, q, np.where(q < 0, m - q, 0)).astype(np.int16)
    return _Fit(codes.reshape(w.shape), scale.reshape(-1, 1), "symmetric", cfg.bits, m, "uniform")


def _fit_ternary(w: NDArray[np.float64], cfg: TernaryWeightConfig, seed: int) -> _Fit:
    del seed  # deterministic
    rows = _groups(w, cfg.scope)
    codes = np.zeros(rows.shape, dtype=np.int16)
    pos_scale = np.zeros(rows.shape[0], dtype=np.float64)
    neg_scale = np.zeros(rows.shape[0], dtype=np.float64)
    sym_scale = np.zeros(rows.shape[0], dtype=np.float64)
    for g, row in enumerate(rows):
        a = np.abs(row)
        nz = a > 0
        if not nz.any():
            continue
        delta = cfg.threshold * float(a[nz].mean())
        keep = a > delta if cfg.threshold > 0 else nz
        pos, neg = keep & (row > 0), keep & (row < 0)
        codes[g, pos], codes[g, neg] = 1, 2
        if keep.any():
            sym_scale[g] = float(a[keep].mean())
        pos_scale[g] = float(row[pos].mean()) if pos.any() else sym_scale[g]
        neg_scale[g] = float(-row[neg].mean()) if neg.any() else sym_scale[g]
    if cfg.alpha == "fitted":
        return _Fit(
            codes.reshape(w.shape), sym_scale.astype(np.float32).reshape(-1, 1), "symmetric", 2, 1, "ternary"
        )
    book = np.stack([pos_scale, -neg_scale], axis=1).astype(np.float32)
    return _Fit(codes.reshape(w.shape), book, "codebook", 2, None, "ttq")


_Fitter = Callable[[NDArray[np.float64], Any, int], _Fit]
_FITTERS: Registry[type, _Fitter] = Registry("weight quantization config")
"""Registry: config type → fit of one layer's (masked) float64 weight (:func:`quantize_weights` dispatches on it)."""
_FITTERS.add(WeightSharingConfig, _fit_sharing)
_FITTERS.add(UniformWeightConfig, _fit_uniform)
_FITTERS.add(TernaryWeightConfig, _fit_ternary)


# ============================================================================================ model walk

_WEIGHT_LAYERS = (nn.Linear, nn.Conv2d, QuantizedLinear, QuantizedConv2d)


def quantized_layers(model: nn.Module) -> list[tuple[str, QuantizedLinear | QuantizedConv2d]]:
    """The ``(name, module)`` pairs of every :class:`QuantizedLinear` / :class:`QuantizedConv2d` of ``model``."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, QuantizedLinear | QuantizedConv2d)]


def use_fast_kernels(model: nn.Module, enabled: bool = True, *, plan: str = "auto") -> nn.Module:
    """Turn the planned fast inference paths of every :class:`QuantizedLinear` of ``model`` on (or off); see
    :meth:`QuantizedLinear.use_fast_kernel`. Returns ``model``."""
    for _, m in quantized_layers(model):
        if isinstance(m, QuantizedLinear):
            m.use_fast_kernel(enabled, plan=plan)
    return model


def kernel_plan(model: nn.Module) -> dict[str, list[dict[str, Any]]]:
    """Per :class:`QuantizedLinear` of ``model`` (by module name), the paths chosen so far and the timings that
    chose them (:meth:`QuantizedLinear.kernel_plan`)."""
    return {name: m.kernel_plan() for name, m in quantized_layers(model) if isinstance(m, QuantizedLinear)}


def _weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Linear / Conv2d layers (float or already quantized); refuse other modules that own parameters."""
    found: list[tuple[str, nn.Module]] = []
    for name, m in model.named_modules():
        if isinstance(m, _WEIGHT_LAYERS):
            if isinstance(m, nn.Conv2d) and m.padding_mode != "zeros":
                raise InvalidParameterError(
                    f"layer {name!r} is an nn.Conv2d with padding_mode={m.padding_mode!r}: only 'zeros' is supported"
                )
            found.append((name, m))
            continue
        if any(True for _ in m.parameters(recurse=False)):
            raise InvalidParameterError(
                f"layer {name or '<model>'!r} is a {type(m).__name__} with parameters: quantize_weights handles "
                "nn.Linear and nn.Conv2d, folds an nn.BatchNorm1d that directly follows an nn.Linear of an "
                "nn.Sequential into it, and passes parameter-free modules through (activations, dropout, pooling, "
                "flatten, k-level activation quantizers)"
            )
    if not found:
        raise InvalidParameterError("the model has no nn.Linear or nn.Conv2d layer to quantize")
    return found


def _float_weight(name: str, m: nn.Module) -> tuple[NDArray[np.float64], NDArray[np.float32] | None]:
    """Masked weight (float64) and bias (float32 or None) of a layer; refuses NaN / inf."""
    b_t: torch.Tensor | None
    if isinstance(m, QuantizedLinear | QuantizedConv2d):
        w_t = m.weight_hat().detach()
        b_t = m.bias
    else:
        assert isinstance(m, nn.Linear | nn.Conv2d)
        w_t = m.weight.detach()
        b_t = m.bias
        mask = getattr(m, "weight_mask", None)
        if isinstance(mask, torch.Tensor):
            w_t = w_t * mask.to(w_t.dtype).reshape(w_t.shape)
    w = w_t.cpu().to(torch.float64).numpy()
    if not np.isfinite(w).all():
        raise InvalidParameterError(f"layer {name!r} holds NaN or inf weights: cannot quantize them")
    b = None if b_t is None else b_t.detach().cpu().to(torch.float32).numpy().copy()
    if b is not None and not np.isfinite(b).all():
        raise InvalidParameterError(f"layer {name!r} has a NaN or inf bias")
    return w, b


def _build(fit: _Fit, bias: NDArray[np.float32] | None, old: nn.Module) -> QuantizedLinear | QuantizedConv2d:
    kw: dict[str, Any] = {"scheme": fit.scheme, "bits": fit.bits, "levels": fit.levels, "method": fit.method}
    codes = torch.from_numpy(fit.codes)
    book = torch.from_numpy(fit.codebook)
    b = None if bias is None else torch.from_numpy(bias)
    if isinstance(old, nn.Linear | QuantizedLinear):
        return QuantizedLinear(codes, book, b, **kw)
    assert isinstance(old, nn.Conv2d | QuantizedConv2d)
    return QuantizedConv2d(
        codes,
        book,
        b,
        stride=_pair(old.stride),
        padding=old.padding if isinstance(old.padding, str) else _pair(old.padding),
        dilation=_pair(old.dilation),
        groups=int(old.groups),
        **kw,
    )


def _set_child(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def _input_width(model: nn.Module, first: nn.Module) -> int | None:
    """Input width of ``model`` when its first module (in forward order of a Sequential) is a linear layer."""
    head: nn.Module = model
    while isinstance(head, nn.Sequential) and len(head) > 0:
        head = head[0]
    if head is first and isinstance(first, nn.Linear | QuantizedLinear):
        return int(first.in_features)
    return None


def _check_data(
    model: nn.Module, layers: list[tuple[str, nn.Module]], X: ArrayLike, y: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    Xa, ya = validate_Xy(X, y)
    width = _input_width(model, layers[0][1])
    if width is not None and Xa.shape[1] != width:
        raise InvalidParameterError(
            f"X has {Xa.shape[1]} columns but the model's first layer {layers[0][0]!r} takes {width} inputs"
        )
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.from_numpy(Xa[:1].astype(np.float32)))
    except RuntimeError as exc:
        raise InvalidParameterError(f"X (width {Xa.shape[1]}) does not fit the model: {exc}") from exc
    finally:
        model.train(was_training)
    n_out = int(out.shape[-1]) if out.dim() >= 1 else 1
    if ya.size and int(ya.max()) >= n_out:
        raise InvalidParameterError(f"y holds label {int(ya.max())} but the model has {n_out} outputs")
    return Xa, ya


def quantize_weights(
    model: nn.Module,
    config: WeightQuantConfig,
    *,
    X: ArrayLike | None = None,
    y: ArrayLike | None = None,
    seed: int = 0,
) -> nn.Module:
    """A copy of ``model`` whose ``nn.Linear`` / ``nn.Conv2d`` layers hold quantized weights (codes + tables).

    Args:
        model: A trained model (``nn.Sequential`` MLP / CNN, or any module whose weight layers are ``nn.Linear`` /
            ``nn.Conv2d`` and whose other modules own no parameters; a top-level ``nn.BatchNorm1d`` right after an
            ``nn.Linear`` is folded into it, see :func:`fold_batchnorm`). Pruned weights (exact zeros, or entries
            masked by a ``weight_mask`` buffer) stay exact zeros. Not modified. Layers that are already quantized
            are re-quantized from their dequantized weight.
        config: :class:`WeightSharingConfig`, :class:`UniformWeightConfig` or :class:`TernaryWeightConfig`.
        X: Training inputs ``(n, p)`` for the fine-tuning (a split the caller chose; never test data). Needed when
            ``config.finetune_epochs > 0``; when given, its width is checked against the model.
        y: Training labels ``(n,)``, with ``X``.
        seed: Seed of the Lloyd subsample (when a group exceeds ``max_samples``) and of the fine-tuning.

    Returns:
        The quantized copy in evaluation mode; every weight layer is a :class:`QuantizedLinear` /
        :class:`QuantizedConv2d` computing exactly with ``W_hat``; biases stay float32.

    Raises:
        InvalidParameterError: Unknown config type; no weight layer; a module with parameters that is not a
            Linear/Conv2d (named); NaN / inf weights (layer named); fine-tuning without ``X, y``; ``X`` whose width
            does not fit the model; a negative or non-integer seed.
    """
    if not isinstance(model, nn.Module):
        raise InvalidParameterError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    if type(config) not in _FITTERS:
        raise InvalidParameterError(
            f"config must be one of {', '.join(_FITTERS.names())}; got {type(config).__name__}"
        )
    fitter = _FITTERS.get(type(config))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or int(seed) < 0:
        raise InvalidParameterError(f"seed must be a non-negative integer; got {seed!r}")
    if isinstance(model, nn.Sequential):
        model = fold_batchnorm(model)  # evaluation-mode BatchNorm1d into the preceding nn.Linear
    layers = _weight_layers(model)
    epochs = int(config.finetune_epochs)
    if (X is None) != (y is None):
        raise InvalidParameterError("give both X and y (training inputs and labels), or neither")
    if epochs > 0 and X is None:
        raise InvalidParameterError(
            f"finetune_epochs={epochs} needs training data: pass X and y (a training split, never test data)"
        )
    data = None if X is None or y is None else _check_data(model, layers, X, y)
    fits = []
    for name, m in layers:
        w, b = _float_weight(name, m)
        fits.append((name, fitter(w, config, int(seed)), b, m))
    out = copy.deepcopy(model)
    unconverged = 0
    for name, fit, b, old in fits:
        _set_child(out, name, _build(fit, b, old))
        unconverged += fit.unconverged
    if unconverged:
        warnings.warn(
            f"Lloyd stopped at max_iter={getattr(config, 'max_iter', '?')} before converging in {unconverged} "
            "codebook group(s); their centroids are the last Lloyd iterate",
            WeightQuantWarning,
            stacklevel=2,
        )
    if epochs > 0 and data is not None:
        _finetune_tables(out, data[0], data[1], config, epochs, int(seed))
    return out.eval()


def _finetune_tables(
    model: nn.Module, X: NDArray[np.float64], y: NDArray[np.int64], config: Any, epochs: int, seed: int
) -> None:
    """Train only the tables (shared centroids / scales), codes fixed, with the package's training loop."""
    tables = {id(m.codebook) for _, m in quantized_layers(model)}
    saved = {name: p.requires_grad for name, p in model.named_parameters()}
    for p in model.parameters():
        p.requires_grad_(id(p) in tables)
    try:
        train(
            model,
            X,
            y,
            TrainConfig(epochs=epochs, lr=float(config.lr), batch_size=int(config.batch_size), seed=seed),
        )
    finally:
        for name, p in model.named_parameters():
            p.requires_grad_(saved[name])
