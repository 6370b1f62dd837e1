"""ℓ_q compressibility measures and weight pruning with explicit masks.

Two families of tools live here.

**Measures** (pure functions of a weight array, NumPy or torch, always flattened):
:func:`lq_norm`, :func:`pq_index` (Diao et al., ICLR 2023), :func:`sap_retained_bound` (the retained-count lower
bound ``m`` of SAP), :func:`gini_index`, and :func:`compressibility`, which summarises them per neuron, per layer and
for the whole model over every ``nn.Linear`` / ``nn.Conv2d`` weight.

**Pruning** with explicit masks. :func:`prune` registers a boolean buffer ``weight_mask`` next to each pruned
``weight`` and zeroes the masked entries in place. Nothing else changes: no forward hooks, no re-parametrisation
(``weight`` stays an ordinary ``nn.Parameter``), so the masked model runs at plain speed and its ``state_dict``
holds ``weight`` and ``weight_mask`` side by side. Because nothing intercepts the forward pass, an optimizer step
can move masked weights away from zero (momentum, weight decay); call :func:`apply_masks` after *every* optimizer
step, or wrap the optimizer in :class:`MaskedOptimizerStep`, which zeroes the gradients of masked entries before the
step and re-applies the masks after it. :func:`register_gradient_masks` is the alternative for hand-written loops: a
gradient hook on each masked parameter (explicit, changes no storage). :func:`remove` makes the masks permanent
(weights stay zero, buffers go) and returns every pruned layer as bitmask + values (also COO/CSR) for storage.

Pruning rules (one typed, validated config each; ``prune(model, config)`` applies one pruning *step*):

* :class:`MagnitudeConfig` — one-shot magnitude pruning, per layer or global: keep exactly the largest ``|w|``.
* :class:`LqAdaptiveConfig` — our reading of the neuron-wise adaptive rule of Yang et al. (2022, arXiv 2206.05604).
  **The body of that paper was not available to us**; only its abstract was. The rule implemented here is derived
  from the standard best-k-term bound quoted in ``methods.md`` §3.2: for a two-layer net
  ``f(x) = Σ_j a_j σ(w_jᵀx + b_j)`` with an L-Lipschitz σ and ``‖x‖_∞ ≤ R``, keeping the ``k_j`` largest inputs of
  neuron j gives ``|f(x) − f̂(x)| ≤ L R Σ_j |a_j| ‖w_j − w_{j,(k_j)}‖_1 ≤ L R (q/(1−q)) Σ_j c_j k_j^{−ρ}`` with
  ``c_j = |a_j| ‖w_j‖_q`` and ``ρ = 1/q − 1``. Minimising ``Σ_j k_j`` under that bound (Lagrange) gives
  ``k_j ∝ c_j^q``; the proportionality constant is set to reach a target sparsity (the main knob) or a bound budget.
* :class:`SAPConfig` — one step of Sparsity-informed Adaptive Pruning (Diao et al., ICLR 2023) from the PQ index,
  scopes ``'layer' | 'neuron' | 'global'``; optional ``milestones`` clip the steps so the rounds land exactly on
  requested sparsities.
* :class:`GradualMagnitudeConfig` — the Zhu & Gupta (2017) cubic sparsity schedule (used by Gale et al. 2019).
* :class:`LotteryTicketConfig` — iterative magnitude pruning with rewinding (Frankle & Carbin 2019).

The last two take ``criterion='magnitude' | 'lq'``: with ``'lq'`` each schedule step / round allocates its sparsity
across neurons with the same neuron-wise ℓ_q rule as :class:`LqAdaptiveConfig` (already-pruned weights stay pruned).

The training loops that apply schedules, rounds and rewinds are in :mod:`rmtcompress.training`.

Degradation bounds. :func:`degradation_bound` propagates element-wise interval bounds through a chain of
``Linear`` layers and Lipschitz activations (``nn.Sequential`` MLPs) and returns a certified bound on
``max_k |f_k(x) − f̂_k(x)|`` over all inputs with ``‖x‖_∞ ≤ R``. For a two-layer net pruned in its first layer it is
at most ``L R Σ_j ‖a_{·j}‖_∞ ‖w_j − ŵ_j‖_1`` — the bound of §3.2. For deeper nets it is valid but loose.
"""

from __future__ import annotations

import copy
import itertools
import math
import numbers
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from .._utils import binary_entropy_bits, check_int
from ..errors import InvalidParameterError

__all__ = [
    "GradualMagnitudeConfig",
    "LotteryTicketConfig",
    "LqAdaptiveConfig",
    "MagnitudeConfig",
    "MaskedOptimizerStep",
    "PruneConfig",
    "PruneResult",
    "SAPConfig",
    "SparseLayer",
    "apply_masks",
    "compressibility",
    "current_sparsity",
    "degradation_bound",
    "get_masks",
    "gini_index",
    "lq_norm",
    "lq_tail_bound",
    "model_storage_bytes",
    "pq_index",
    "prunable_layers",
    "prune",
    "register_gradient_masks",
    "remove",
    "rewind_to",
    "sap_retained_bound",
    "storage_report",
    "zero_masked_grads",
]

ArrayLikeW: TypeAlias = NDArray[Any] | torch.Tensor | Sequence[float]
Scope = Literal["layer", "global"]
SAPScope = Literal["layer", "neuron", "global"]
Criterion = Literal["magnitude", "lq"]

MASK_NAME = "weight_mask"
_HOOK_ATTR = "_rmt_mask_grad_hook"
_PRUNABLE = (nn.Linear, nn.Conv2d)


# ============================================================================================ measures


def _flat(w: ArrayLikeW, name: str = "w") -> NDArray[np.float64]:
    """Flatten a NumPy array / torch tensor / sequence into a float64 vector of magnitudes (finite checked)."""
    if isinstance(w, torch.Tensor):
        arr = w.detach().to("cpu", torch.float64).reshape(-1).numpy()
    else:
        try:
            arr = np.asarray(w, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError(f"{name} must be a numeric array or tensor: {exc}") from exc
    if not np.isfinite(arr).all():
        raise InvalidParameterError(
            f"{name} must be finite; found {int((~np.isfinite(arr)).sum())} NaN/inf entries"
        )
    return np.abs(arr)


def _check_real(value: object, name: str) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise InvalidParameterError(f"{name} must be a real number; got {value!r}")
    out = float(value)
    if math.isnan(out):
        raise InvalidParameterError(f"{name} must not be NaN")
    return out


def _power_mean(a: NDArray[np.float64], r: float) -> float:
    """``(mean a^r)^{1/r}`` for non-negative ``a`` (not all zero), computed on ``a / max a`` to avoid under/overflow."""
    top = float(a.max())
    if math.isinf(r):
        return top
    return top * float(np.mean((a / top) ** r)) ** (1.0 / r)


def lq_norm(w: ArrayLikeW, q: float) -> float:
    """ℓ_q (quasi-)norm ``(Σ_i |w_i|^q)^{1/q}`` of the flattened weights.

    For ``0 < q < 1`` this is the sparsity-sensitive quasi-norm of Yang et al. (2022): at fixed ℓ_2 norm it is small
    when the mass is concentrated on few entries. ``q ≥ 1`` (including ``math.inf``) gives the usual norms.

    Args:
        w: Weights (NumPy array, torch tensor or sequence), any shape; flattened.
        q: Exponent, ``q > 0`` (``math.inf`` allowed).

    Returns:
        The (quasi-)norm as a Python float; ``0.0`` for an empty or all-zero input.

    Raises:
        ValueError: If ``q <= 0`` or is NaN, or if ``w`` is not numeric / not finite.
    """
    qf = _check_real(q, "q")
    if qf <= 0:
        raise InvalidParameterError(
            f"q must be > 0 (0 < q < 1 for the ℓ_q quasi-norm, q >= 1 for a norm); got {q!r}"
        )
    a = _flat(w)
    if a.size == 0 or not a.any():
        return 0.0
    if math.isinf(qf):
        return float(a.max())
    # ‖w‖_q = d^{1/q} · power-mean_q
    return _power_mean(a, qf) * a.size ** (1.0 / qf)


def _check_pq(p: float, q: float) -> tuple[float, float]:
    pf, qf = _check_real(p, "p"), _check_real(q, "q")
    if pf <= 0:
        raise InvalidParameterError(f"p must be > 0; got {p!r}")
    if math.isinf(pf) or math.isinf(qf):
        raise InvalidParameterError(f"p and q must be finite; got p={p!r}, q={q!r}")
    if pf >= qf:
        raise InvalidParameterError(f"the PQ index needs 0 < p < q; got p={p!r}, q={q!r}")
    return pf, qf


def pq_index(w: ArrayLikeW, p: float = 0.5, q: float = 1.0) -> float:
    """PQ index ``I_{p,q}(w) = 1 − d^{1/q − 1/p} ‖w‖_p / ‖w‖_q`` (Diao et al., ICLR 2023).

    Equivalently ``1 − M_p / M_q`` with ``M_r = (mean |w_i|^r)^{1/r}`` the power mean; since ``M_p ≤ M_q`` for
    ``p < q`` it lies in ``[0, 1 − d^{1/q − 1/p}]``: 0 for a constant-magnitude vector, larger = sparser (more
    compressible). Tiny negative round-off is clipped to 0.

    Args:
        w: Weights, any shape; flattened (``d`` = number of entries). Pass only the unpruned entries to follow the
            SAP code (d = number of unpruned weights).
        p: Lower exponent, ``0 < p < q``.
        q: Upper exponent.

    Returns:
        The index as a float; ``0.0`` for an empty or all-zero vector.

    Raises:
        ValueError: If not ``0 < p < q`` (both finite), or ``w`` is not numeric / finite.
    """
    pf, qf = _check_pq(p, q)
    a = _flat(w)
    if a.size == 0 or not a.any():
        return 0.0
    value = 1.0 - _power_mean(a, pf) / _power_mean(a, qf)
    return max(0.0, value)


def sap_retained_bound(w: ArrayLikeW, p: float = 0.5, q: float = 1.0, eta: float = 0.0) -> float:
    """SAP's lower bound ``m`` on the number of entries to keep (Diao et al. 2023; methods.md §3.3).

    If the ``r`` largest-magnitude entries carry all but a fraction of the ℓ_p mass,
    ``‖w‖_p^p ≤ (1+η) ‖w_r‖_p^p``, then ``r ≥ m`` with::

        m = d (1+η)^{−q/(q−p)} (1 − I_{p,q}(w))^{qp/(q−p)}

    Closed forms at ``η = 0``: ``p=½, q=1`` gives ``(Σ√|w_i|)² / Σ|w_i|``; ``p=1, q=2`` gives ``(‖w‖_1/‖w‖_2)²``.
    The value is returned unrounded (SAP uses ``ceil(m)``).

    Args:
        w: Weights, any shape; flattened.
        p: Lower exponent, ``0 < p < q``.
        q: Upper exponent.
        eta: Tolerance ``η ≥ 0`` on the discarded ℓ_p mass.

    Returns:
        ``m`` as a float in ``(0, d]``; ``0.0`` for an empty vector, ``d (1+η)^{−q/(q−p)}`` for an all-zero one
        (the PQ index is 0 there, as in the SAP code).

    Raises:
        ValueError: On invalid ``p``, ``q``, negative or non-finite ``eta``, or a non-numeric ``w``.
    """
    pf, qf = _check_pq(p, q)
    ef = _check_real(eta, "eta")
    if ef < 0 or math.isinf(ef):
        raise InvalidParameterError(f"eta must be finite and >= 0; got {eta!r}")
    a = _flat(w)
    d = a.size
    if d == 0:
        return 0.0
    index = pq_index(a, pf, qf)
    return float(d * (1.0 + ef) ** (-qf / (qf - pf)) * (1.0 - index) ** (qf * pf / (qf - pf)))


def gini_index(w: ArrayLikeW) -> float:
    """Gini index of the magnitudes (Hurley & Rickard 2009), the sparsity measure SAP compares against.

    ``G = 1 − 2 Σ_k (c_(k)/‖c‖_1) (N − k + ½)/N`` with ``c_(1) ≤ … ≤ c_(N)`` the sorted magnitudes: 0 for a
    constant-magnitude vector, ``1 − 1/N`` for a one-hot vector.

    Args:
        w: Weights, any shape; flattened.

    Returns:
        The index in ``[0, 1)``; ``0.0`` for an empty or all-zero vector.

    Raises:
        ValueError: If ``w`` is not numeric / not finite.
    """
    a = np.sort(_flat(w))
    n = a.size
    total = float(a.sum())
    if n == 0 or total == 0.0:
        return 0.0
    k = np.arange(1, n + 1, dtype=np.float64)
    return float(max(0.0, 1.0 - 2.0 * np.sum((a / total) * (n - k + 0.5) / n)))


def lq_tail_bound(lq: float, k: int, q: float) -> float:
    """Best-k-term ℓ_1 tail bound ``‖w − w_(k)‖_1 ≤ (q/(1−q)) ‖w‖_q k^{1 − 1/q}`` (k ≥ 1), ``‖w‖_q`` at k = 0.

    Follows from ``|w|_(i) ≤ ‖w‖_q i^{−1/q}`` and ``Σ_{i>k} i^{−1/q} ≤ ∫_k^∞ t^{−1/q} dt`` (methods.md §3.2).

    Args:
        lq: ``‖w‖_q`` (non-negative).
        k: Number of kept entries (``>= 0``).
        q: Exponent in ``(0, 1)``.

    Returns:
        The bound (a float).

    Raises:
        ValueError: If ``q`` is outside ``(0, 1)``, ``k < 0`` or ``lq < 0``.
    """
    if not 0.0 < q < 1.0:
        raise InvalidParameterError(f"q must lie in (0, 1); got {q!r}")
    if k < 0 or lq < 0:
        raise InvalidParameterError(f"k and lq must be >= 0; got k={k}, lq={lq}")
    if k == 0:
        return float(lq)
    return float(q / (1.0 - q) * lq * k ** (1.0 - 1.0 / q))


# ============================================================================================ layers & masks


def prunable_layers(model: nn.Module, layers: Iterable[str] | None = None) -> list[tuple[str, nn.Module]]:
    """The ``(name, module)`` pairs of every ``nn.Linear`` / ``nn.Conv2d`` of ``model``, in registration order.

    Args:
        model: Any ``nn.Module``.
        layers: Optional names (as in ``model.named_modules()``) restricting the selection.

    Returns:
        The selected layers, in registration order (treated as the forward order by the adaptive rule).

    Raises:
        ValueError: If no layer qualifies, a requested name is unknown or not prunable, or a layer was pruned
            with ``torch.nn.utils.prune`` (re-parametrised ``weight_orig``; refused on purpose).
    """
    if not isinstance(model, nn.Module):
        raise InvalidParameterError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    found: list[tuple[str, nn.Module]] = [
        (name, m) for name, m in model.named_modules() if isinstance(m, _PRUNABLE)
    ]
    if layers is not None:
        wanted = [layers] if isinstance(layers, str) else list(layers)
        known = {name: m for name, m in model.named_modules()}
        for name in wanted:
            if name not in known:
                raise InvalidParameterError(
                    f"unknown layer {name!r}; prunable layers are {[n for n, _ in found]}"
                )
            if not isinstance(known[name], _PRUNABLE):
                raise InvalidParameterError(
                    f"layer {name!r} is a {type(known[name]).__name__}, not nn.Linear/nn.Conv2d"
                )
        keep = set(wanted)
        found = [(n, m) for n, m in found if n in keep]
    if not found:
        raise InvalidParameterError(
            "the model has no prunable layer (nn.Linear or nn.Conv2d)"
            + ("" if layers is None else f" among layers={list(layers)}")
        )
    for name, m in found:
        if hasattr(m, "weight_orig"):
            raise InvalidParameterError(
                f"layer {name!r} was pruned with torch.nn.utils.prune (weight_orig + forward hook); call "
                "torch.nn.utils.prune.remove first — rmtcompress only uses explicit weight_mask buffers"
            )
        if not isinstance(getattr(m, "weight", None), nn.Parameter):
            raise InvalidParameterError(f"layer {name!r} has no weight parameter")
    return found


def _weight(module: nn.Module) -> torch.Tensor:
    w = module._parameters.get("weight")
    if w is None:
        raise InvalidParameterError(f"{type(module).__name__} has no weight parameter")
    return w


def _mask_of(module: nn.Module) -> torch.Tensor | None:
    return module._buffers.get(MASK_NAME)


def _full_mask(module: nn.Module) -> torch.Tensor:
    m = _mask_of(module)
    if m is None:
        return torch.ones_like(_weight(module), dtype=torch.bool)
    return m


def _set_mask(module: nn.Module, mask: torch.Tensor) -> None:
    w = _weight(module)
    mask = mask.to(device=w.device, dtype=torch.bool).reshape(w.shape).clone()
    if _mask_of(module) is None:
        module.register_buffer(MASK_NAME, mask)
    else:
        module._buffers[MASK_NAME] = mask
    with torch.no_grad():
        w.masked_fill_(~mask, 0.0)


def _masked_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    for name, m in model.named_modules():
        if _mask_of(m) is not None:
            yield name, m


def get_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of every ``weight_mask`` buffer of ``model`` (bool tensors), keyed by module name."""
    return {name: _full_mask(m).detach().clone() for name, m in _masked_modules(model)}


@torch.no_grad()
def apply_masks(model: nn.Module) -> int:
    """Zero every masked weight in place (``weight[~weight_mask] = 0``).

    Call it after every optimizer step: momentum and weight decay move masked weights otherwise (the masks are
    explicit buffers, no forward hook enforces them).

    Args:
        model: A model with ``weight_mask`` buffers (modules without one are left alone).

    Returns:
        The number of masked modules.
    """
    count = 0
    for _, m in _masked_modules(model):
        _weight(m).masked_fill_(~_full_mask(m), 0.0)
        count += 1
    return count


@torch.no_grad()
def zero_masked_grads(model: nn.Module) -> None:
    """Set the gradient of every masked weight entry to zero (so optimizer moments do not accumulate there)."""
    for _, m in _masked_modules(model):
        g = _weight(m).grad
        if g is not None:
            g.masked_fill_(~_full_mask(m), 0.0)


def register_gradient_masks(model: nn.Module) -> int:
    """Register, on each masked ``weight``, a gradient hook returning ``grad * weight_mask``.

    This is an explicit, documented alternative to :func:`zero_masked_grads` for hand-written loops: the hook is a
    *gradient* hook on the parameter (``Tensor.register_hook``), it changes no storage and no forward computation.
    The hook reads the module's *current* mask at call time, so mask updates are honoured. :func:`remove` unregisters
    it. Weight decay and momentum can still move masked weights: keep calling :func:`apply_masks` after each step.

    Args:
        model: A model with ``weight_mask`` buffers.

    Returns:
        The number of hooks registered (modules that already had one are skipped).
    """
    count = 0
    for _, m in _masked_modules(model):
        if getattr(m, _HOOK_ATTR, None) is not None:
            continue

        def hook(grad: torch.Tensor, module: nn.Module = m) -> torch.Tensor:
            mask = _mask_of(module)
            return grad if mask is None else grad * mask.to(grad.dtype)

        object.__setattr__(m, _HOOK_ATTR, _weight(m).register_hook(hook))
        count += 1
    return count


def _unregister_gradient_mask(module: nn.Module) -> None:
    handle = getattr(module, _HOOK_ATTR, None)
    if handle is not None:
        handle.remove()
        object.__delattr__(module, _HOOK_ATTR)


class MaskedOptimizerStep:
    """Wrap an optimizer so that each ``step()`` respects the masks of ``model``.

    ``step()`` does: zero the gradients of masked entries → ``optimizer.step()`` → :func:`apply_masks`. Masks that
    change between steps (gradual pruning) are read afresh each time.

    Example:
        >>> opt = MaskedOptimizerStep(torch.optim.Adam(model.parameters()), model)  # doctest: +SKIP
        >>> loss.backward(); opt.step(); opt.zero_grad()                              # doctest: +SKIP
    """

    def __init__(self, optimizer: torch.optim.Optimizer, model: nn.Module) -> None:
        """Store the optimizer and the model whose masks are enforced."""
        self.optimizer = optimizer
        self.model = model

    def step(self) -> None:
        """Masked gradient → optimizer step → re-apply masks."""
        zero_masked_grads(self.model)
        self.optimizer.step()
        apply_masks(self.model)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forward to the wrapped optimizer."""
        self.optimizer.zero_grad(set_to_none=set_to_none)


def current_sparsity(model: nn.Module, layers: Iterable[str] | None = None) -> tuple[float, dict[str, float]]:
    """Fraction of masked weights overall and per layer (unmasked layers count as dense).

    Args:
        model: The model.
        layers: Optional layer names (default: every ``nn.Linear`` / ``nn.Conv2d``).

    Returns:
        ``(overall, per_layer)``: overall = pruned / total over the selected weights.
    """
    per: dict[str, float] = {}
    pruned = total = 0
    for name, m in prunable_layers(model, layers):
        mask = _full_mask(m)
        k = int((~mask).sum())
        per[name] = k / mask.numel()
        pruned += k
        total += mask.numel()
    return pruned / total, per


@torch.no_grad()
def rewind_to(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Copy parameter values from ``state`` (e.g. the state_dict at initialisation) into ``model``, keep its masks.

    Masked entries are zeroed again afterwards, so the result is ``θ_0 ⊙ mask`` — the lottery-ticket rewind.

    Args:
        model: The (masked) model.
        state: A mapping from parameter names (as in ``model.named_parameters()``) to tensors; buffers in it are
            ignored (masks are never rewound).

    Raises:
        ValueError: If a parameter of the model is missing from ``state`` or has another shape.
    """
    for name, param in model.named_parameters():
        if name not in state:
            raise InvalidParameterError(f"rewind state has no entry for parameter {name!r}")
        src = state[name]
        if tuple(src.shape) != tuple(param.shape):
            raise InvalidParameterError(
                f"rewind state {name!r} has shape {tuple(src.shape)}, parameter {tuple(param.shape)}"
            )
        param.copy_(src.to(param.device, param.dtype))
    apply_masks(model)


# ============================================================================================ configs


def _check_fraction(value: object, name: str, *, allow_zero: bool = True) -> float:
    v = _check_real(value, name)
    lo_ok = v >= 0.0 if allow_zero else v > 0.0
    if not (lo_ok and v < 1.0):
        raise InvalidParameterError(
            f"{name} must lie in {'[0, 1)' if allow_zero else '(0, 1)'}; got {value!r}"
        )
    return v


def _check_choice(value: object, name: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InvalidParameterError(f"{name} must be one of {choices}; got {value!r}")


def _check_criterion(owner: str, criterion: object, q: object) -> None:
    """Validate ``criterion`` ('magnitude' | 'lq') and the ℓ_q exponent ``q`` in (0, 1) (always checked)."""
    _check_choice(criterion, f"{owner}.criterion", ("magnitude", "lq"))
    qf = _check_real(q, f"{owner}.q")
    if not 0.0 < qf < 1.0:
        raise InvalidParameterError(
            f"{owner}.q must lie in (0, 1) (exponent of the ℓ_q quasi-norm); got {q!r}"
        )


def _check_milestones(owner: str, milestones: object) -> tuple[float, ...] | None:
    """None, or a non-empty strictly increasing tuple of fractions in (0, 1)."""
    if milestones is None:
        return None
    if isinstance(milestones, str) or not isinstance(milestones, Iterable):
        raise InvalidParameterError(
            f"{owner}.milestones must be None or a tuple of sparsities; got {milestones!r}"
        )
    ms = [_check_fraction(m, "milestones entry", allow_zero=False) for m in milestones]
    if not ms or any(b <= a for a, b in itertools.pairwise(ms)):
        raise InvalidParameterError(
            f"milestones must be a non-empty strictly increasing tuple; got {milestones}"
        )
    return tuple(ms)


@dataclass(frozen=True)
class MagnitudeConfig:
    """One-shot magnitude pruning: keep exactly the ``round((1 − sparsity)·n)`` largest ``|w|``.

    Attributes:
        sparsity: Target fraction of pruned weights, in ``[0, 1)`` (per layer, or over all weights if global).
        scope: ``'layer'`` (every layer at the same sparsity) or ``'global'`` (one threshold across layers).
    """

    sparsity: float
    scope: Scope = "layer"

    def __post_init__(self) -> None:
        """Validate the fields (ValueError)."""
        _check_fraction(self.sparsity, "sparsity")
        _check_choice(self.scope, "scope", ("layer", "global"))


@dataclass(frozen=True)
class LqAdaptiveConfig:
    """Neuron-wise adaptive pruning from the ℓ_q bound — our reading of Yang et al. (2022), see module docstring.

    Per neuron j (a row of the weight, flattened over fan-in) keep ``k_j ∝ c_j^q`` of its largest inputs, with
    ``c_j = a_j ‖w_j‖_q``, ``a_j`` the ``outgoing_norm`` of column j of the next layer's weight (1 for the last layer
    or when the next layer cannot be matched; the next layer is the next ``nn.Linear``/``nn.Conv2d`` in registration
    order, whether or not it is pruned). The constant is chosen so that the target ``sparsity`` is reached
    exactly (``scope='layer'``: in every layer; ``'global'``: overall), or — if ``budget`` is given instead — as the
    smallest number of weights whose summed ℓ_q bound ``L R (q/(1−q)) Σ_j c_j k_j^{1−1/q}`` is ``≤ budget``
    (one constant for all layers).

    Attributes:
        sparsity: Target fraction of pruned weights in ``[0, 1)`` (the main knob). Exactly one of sparsity / budget.
        q: Exponent of the quasi-norm, in ``(0, 1)``.
        budget: Alternative knob: bound budget δ > 0.
        scope: ``'layer'`` or ``'global'`` (sparsity mode only).
        min_keep: Minimum number of kept inputs per neuron (``>= 0``; 1 keeps every neuron alive).
        lipschitz: Lipschitz constant L of the activation (1 for ReLU).
        input_bound: R, a bound on ``‖x‖_∞`` of the inputs (1 for pixels in [0, 1]).
        outgoing_norm: Norm of the outgoing column defining ``a_j``: ``'inf'`` (gives the max-output bound),
            ``'l1'`` or ``'l2'``.
    """

    sparsity: float | None = None
    q: float = 0.5
    budget: float | None = None
    scope: Scope = "layer"
    min_keep: int = 1
    lipschitz: float = 1.0
    input_bound: float = 1.0
    outgoing_norm: Literal["inf", "l1", "l2"] = "inf"

    def __post_init__(self) -> None:
        """Validate the fields (ValueError)."""
        q = _check_real(self.q, "q")
        if not 0.0 < q < 1.0:
            raise InvalidParameterError(
                f"LqAdaptiveConfig.q must lie in (0, 1) (the ℓ_q quasi-norm); got {self.q!r}"
            )
        if (self.sparsity is None) == (self.budget is None):
            raise InvalidParameterError(
                "give exactly one of sparsity= (target fraction pruned) or budget= (bound value)"
            )
        if self.sparsity is not None:
            _check_fraction(self.sparsity, "sparsity")
        if self.budget is not None:
            b = _check_real(self.budget, "budget")
            if not (b > 0 and math.isfinite(b)):
                raise InvalidParameterError(f"budget must be finite and > 0; got {self.budget!r}")
        _check_choice(self.scope, "scope", ("layer", "global"))
        check_int(self.min_keep, "min_keep", 0)
        for name in ("lipschitz", "input_bound"):
            v = _check_real(getattr(self, name), name)
            if not (v > 0 and math.isfinite(v)):
                raise InvalidParameterError(f"{name} must be finite and > 0; got {v!r}")
        _check_choice(self.outgoing_norm, "outgoing_norm", ("inf", "l1", "l2"))


@dataclass(frozen=True)
class SAPConfig:
    """One step of Sparsity-informed Adaptive Pruning (Diao et al. 2023; methods.md §3.3).

    In each scope unit (a neuron = output row, a layer, or all weights): compute the PQ index ``I`` of the unpruned
    weights (d of them), the bound ``m = ceil(d (1+η)^{−q/(q−p)} (1−I)^{qp/(q−p)})``, the prune ratio
    ``c = clamp(γ (1 − m/d), 0, β)``, and prune the ``⌊d c⌋`` smallest-magnitude unpruned weights.

    Driving SAP to target sparsities: with ``milestones`` (increasing overall sparsities of the selected layers),
    a step whose proposed counts would take the overall sparsity past the next milestone not yet reached is clipped
    so that it lands exactly on it (``round(milestone · n_total)`` pruned weights): each unit's count ``⌊d c⌋`` is
    scaled down proportionally (largest-remainder rounding; with ``scope='global'`` the single count is simply
    capped), and inside a unit the smallest magnitudes still go first. Steps that stay below the next milestone are
    plain SAP steps. :func:`rmtcompress.training.train_iterative` then runs rounds until the last milestone is
    reached (``rounds`` becomes a cap); :func:`prune` refuses a step once the last milestone is reached.

    Attributes:
        p: Lower exponent, ``0 < p < q``.
        q: Upper exponent.
        eta: η ≥ 0.
        gamma: γ > 0 (aggressiveness).
        beta: β in ``(0, 1]``, the maximum fraction pruned per step.
        scope: ``'layer'``, ``'neuron'`` or ``'global'``.
        rounds: Number of prune/retrain rounds the training loop applies (``>= 1``); the maximum number of rounds
            when ``milestones`` is given.
        milestones: Optional strictly increasing overall sparsities in ``(0, 1)`` that the rounds land on exactly.
    """

    p: float = 0.5
    q: float = 1.0
    eta: float = 0.0
    gamma: float = 1.0
    beta: float = 0.9
    scope: SAPScope = "layer"
    rounds: int = 30
    milestones: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        """Validate the fields (ValueError)."""
        object.__setattr__(self, "milestones", _check_milestones("SAPConfig", self.milestones))
        _check_pq(self.p, self.q)
        eta = _check_real(self.eta, "eta")
        if not (eta >= 0 and math.isfinite(eta)):
            raise InvalidParameterError(f"eta must be finite and >= 0; got {self.eta!r}")
        gamma = _check_real(self.gamma, "gamma")
        if not (gamma > 0 and math.isfinite(gamma)):
            raise InvalidParameterError(f"gamma must be finite and > 0; got {self.gamma!r}")
        beta = _check_real(self.beta, "beta")
        if not 0.0 < beta <= 1.0:
            raise InvalidParameterError(f"beta must lie in (0, 1]; got {self.beta!r}")
        _check_choice(self.scope, "scope", ("layer", "neuron", "global"))
        check_int(self.rounds, "rounds", 1)


@dataclass(frozen=True)
class GradualMagnitudeConfig:
    """Zhu & Gupta (2017) gradual magnitude pruning schedule (methods.md §4).

    ``s_t = s_f + (s_i − s_f)(1 − (t − t_0)/(t_end − t_0))^e`` for ``t_0 ≤ t ≤ t_end``, ``s_i`` before and ``s_f``
    after; masks are updated every ``frequency`` optimizer steps from ``begin_step`` and at ``end_step`` itself, so
    the final sparsity is reached exactly at ``end_step``.

    ``criterion`` chooses which weights each update removes: ``'magnitude'`` (Zhu & Gupta: the smallest ``|w|``) or
    ``'lq'``: the step's sparsity (per layer, or overall with ``scope='global'``) is allocated across neurons by the
    neuron-wise ℓ_q rule of :class:`LqAdaptiveConfig` (``k_j ∝ (a_j ‖w_j‖_q)^q`` kept inputs per neuron, at least 1
    while the neuron has any, the largest ``|w|`` inside the neuron), computed on the current unpruned weights;
    already-pruned weights stay pruned.

    Attributes:
        final_sparsity: ``s_f`` in ``[0, 1)``.
        begin_step: ``t_0 >= 0`` (optimizer steps completed).
        end_step: ``t_end > t_0``.
        frequency: Steps between mask updates (``>= 1``).
        initial_sparsity: ``s_i`` in ``[0, s_f]``.
        exponent: ``e > 0`` (3 = Zhu & Gupta; 1 = linear).
        scope: ``'layer'`` (TF model_pruning default) or ``'global'``.
        criterion: ``'magnitude'`` or ``'lq'``.
        q: Exponent of the ℓ_q rule, in ``(0, 1)`` (validated always, used with ``criterion='lq'``).
        layer_sparsity: Optional per-layer final sparsities ``{layer name: s_f}`` (a mapping or ``(name, s_f)``
            pairs, stored as sorted pairs) overriding ``final_sparsity`` for the layers it names, each following
            its own cubic schedule from ``initial_sparsity``; ``scope='layer'`` only. Layers the schedule prunes
            that it does not name use ``final_sparsity``; a name that is not pruned is refused by :func:`prune`.
    """

    final_sparsity: float
    begin_step: int
    end_step: int
    frequency: int
    initial_sparsity: float = 0.0
    exponent: float = 3.0
    scope: Scope = "layer"
    criterion: Criterion = "magnitude"
    q: float = 0.5
    layer_sparsity: Mapping[str, float] | tuple[tuple[str, float], ...] | None = None

    def __post_init__(self) -> None:
        """Validate the fields (ValueError)."""
        _check_criterion("GradualMagnitudeConfig", self.criterion, self.q)
        sf = _check_fraction(self.final_sparsity, "final_sparsity")
        si = _check_fraction(self.initial_sparsity, "initial_sparsity")
        if si > sf:
            raise InvalidParameterError(f"initial_sparsity ({si}) must be <= final_sparsity ({sf})")
        if self.layer_sparsity is not None:
            pairs = (
                list(self.layer_sparsity.items())
                if isinstance(self.layer_sparsity, Mapping)
                else list(self.layer_sparsity)
            )
            norm: dict[str, float] = {}
            for pair in pairs:
                if not (isinstance(pair, tuple | list) and len(pair) == 2 and isinstance(pair[0], str)):
                    raise InvalidParameterError(
                        f"layer_sparsity must map layer names to sparsities; got the entry {pair!r}"
                    )
                s_l = _check_fraction(pair[1], f"layer_sparsity[{pair[0]!r}]")
                if si > s_l:
                    raise InvalidParameterError(
                        f"initial_sparsity ({si}) must be <= layer_sparsity[{pair[0]!r}] ({s_l})"
                    )
                if pair[0] in norm:
                    raise InvalidParameterError(f"layer_sparsity names layer {pair[0]!r} twice")
                norm[pair[0]] = s_l
            if not norm:
                raise InvalidParameterError("layer_sparsity must name at least one layer (or be None)")
            if self.scope != "layer":
                raise InvalidParameterError(
                    f"layer_sparsity needs scope='layer' (one schedule per layer); got scope={self.scope!r}"
                )
            object.__setattr__(self, "layer_sparsity", tuple(sorted(norm.items())))
        b = check_int(self.begin_step, "begin_step", 0)
        e = check_int(self.end_step, "end_step", 0)
        if e <= b:
            raise InvalidParameterError(f"end_step ({e}) must be > begin_step ({b})")
        check_int(self.frequency, "frequency", 1)
        ex = _check_real(self.exponent, "exponent")
        if not (ex > 0 and math.isfinite(ex)):
            raise InvalidParameterError(f"exponent must be finite and > 0; got {self.exponent!r}")
        _check_choice(self.scope, "scope", ("layer", "global"))

    def layer_targets(self) -> dict[str, float]:
        """``layer_sparsity`` as a dict (empty when None)."""
        if self.layer_sparsity is None:
            return {}
        return dict(self.layer_sparsity)

    def final_for(self, layer: str | None = None) -> float:
        """Final sparsity of ``layer`` (its ``layer_sparsity`` entry, else ``final_sparsity``)."""
        return float(
            self.layer_targets().get(layer, self.final_sparsity) if layer is not None else self.final_sparsity
        )

    def sparsity_at(self, step: int, layer: str | None = None) -> float:
        """Target sparsity after ``step`` completed optimizer steps (exactly the final one for step ≥ end).

        Args:
            step: Optimizer steps completed.
            layer: A layer name: its own schedule when ``layer_sparsity`` names it (default: ``final_sparsity``).
        """
        final = self.final_for(layer)
        if step >= self.end_step:
            return final
        if step <= self.begin_step:
            return float(self.initial_sparsity)
        frac = min(max((step - self.begin_step) / (self.end_step - self.begin_step), 0.0), 1.0)
        return float(final + (self.initial_sparsity - final) * (1.0 - frac) ** self.exponent)

    def is_update_step(self, step: int) -> bool:
        """Whether the masks are recomputed after ``step`` completed steps."""
        if step < self.begin_step or step > self.end_step:
            return False
        return step == self.end_step or (step - self.begin_step) % self.frequency == 0


@dataclass(frozen=True)
class LotteryTicketConfig:
    """Iterative magnitude pruning with rewinding (Frankle & Carbin 2019).

    Each round prunes ``rate`` of the *remaining* weights by magnitude; the cumulative sparsity after round r is
    ``1 − (1 − rate)^r``. With ``milestones`` the geometric schedule is clipped so that it passes exactly through
    each milestone (a round that would overshoot one stops at it), and it ends at the last milestone; ``rounds`` is
    then derived. The loop in :func:`rmtcompress.training.train_iterative` rewinds unpruned weights to their
    initial values (``rewind='init'``) or keeps the trained ones (``'none'``, i.e. prune + fine-tune).

    ``criterion='lq'`` replaces the magnitude choice of each round by the neuron-wise ℓ_q allocation of
    :class:`LqAdaptiveConfig` at the round's cumulative sparsity (per layer, or overall with ``scope='global'``),
    computed on the trained unpruned weights; already-pruned weights stay pruned, so masks are nested.

    Attributes:
        rate: Fraction of remaining weights pruned per round, in ``(0, 1)``.
        rounds: Number of rounds (``>= 1``); ignored when ``milestones`` is given.
        rewind: ``'init'`` or ``'none'``.
        scope: ``'layer'`` or ``'global'``.
        milestones: Optional increasing cumulative sparsities in ``(0, 1)``.
        criterion: ``'magnitude'`` (Frankle & Carbin) or ``'lq'``.
        q: Exponent of the ℓ_q rule, in ``(0, 1)`` (validated always, used with ``criterion='lq'``).
    """

    rate: float = 0.2
    rounds: int = 5
    rewind: Literal["init", "none"] = "init"
    scope: Scope = "layer"
    milestones: tuple[float, ...] | None = None
    criterion: Criterion = "magnitude"
    q: float = 0.5

    def __post_init__(self) -> None:
        """Validate the fields (ValueError)."""
        _check_fraction(self.rate, "rate", allow_zero=False)
        check_int(self.rounds, "rounds", 1)
        _check_choice(self.rewind, "rewind", ("init", "none"))
        _check_choice(self.scope, "scope", ("layer", "global"))
        _check_criterion("LotteryTicketConfig", self.criterion, self.q)
        object.__setattr__(self, "milestones", _check_milestones("LotteryTicketConfig", self.milestones))

    def schedule(self) -> tuple[float, ...]:
        """Cumulative sparsity after each round."""
        if self.milestones is None:
            return tuple(1.0 - (1.0 - self.rate) ** r for r in range(1, self.rounds + 1))
        out: list[float] = []
        s = 0.0
        for target in self.milestones:
            while True:
                nxt = 1.0 - (1.0 - s) * (1.0 - self.rate)
                if nxt >= target - 1e-12:
                    s = target
                    out.append(s)
                    break
                s = nxt
                out.append(s)
        return tuple(out)


PruneConfig: TypeAlias = (
    MagnitudeConfig | LqAdaptiveConfig | SAPConfig | GradualMagnitudeConfig | LotteryTicketConfig
)


# ============================================================================================ results


@dataclass
class PruneResult:
    """What one call of :func:`prune` did.

    Attributes:
        method: Name of the rule (``'magnitude'``, ``'lq_adaptive'``, ``'sap'``, ``'gradual_magnitude'``,
            ``'lottery_ticket'``).
        masks: Copies of the new masks (bool tensors, True = kept), keyed by layer name.
        layer_sparsity: Achieved fraction pruned per layer.
        sparsity: Achieved fraction pruned over all selected weights.
        n_pruned: Number of pruned weights (cumulative, all selected layers).
        n_total: Number of selected weights.
        target_sparsity: The target of this step when the rule has one (None for SAP / budget mode).
        bound: Certified bound on ``max_k |f_k(x) − f̂_k(x)|`` for ``‖x‖_∞ ≤ input_bound`` between the model just
            before and just after this step (:func:`degradation_bound`); None when the architecture is not a
            supported chain (the reason is in ``details['bound_note']``).
        details: Rule-specific diagnostics (SAP: PQ index, m, ratios per unit; ℓ_q rule: ``k_j``, ``c_j``, the
            ℓ_q and tail bound terms per layer; ...).
    """

    method: str
    masks: dict[str, torch.Tensor]
    layer_sparsity: dict[str, float]
    sparsity: float
    n_pruned: int
    n_total: int
    target_sparsity: float | None = None
    bound: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-friendly summary (masks left out)."""
        return {
            "method": self.method,
            "sparsity": self.sparsity,
            "layer_sparsity": dict(self.layer_sparsity),
            "n_pruned": self.n_pruned,
            "n_total": self.n_total,
            "target_sparsity": self.target_sparsity,
            "bound": self.bound,
            "details": _jsonable(self.details),
        }


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray | torch.Tensor):
        arr = obj.detach().cpu().numpy() if isinstance(obj, torch.Tensor) else obj
        if arr.size > 64:
            return {
                "shape": list(arr.shape),
                "mean": float(arr.mean()),
                "min": float(arr.min()),
                "max": float(arr.max()),
            }
        return arr.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


# ============================================================================================ pruning rules


def _rows(t: torch.Tensor) -> torch.Tensor:
    """View a weight (out, ...) as (out, fan_in)."""
    return t.reshape(t.shape[0], -1)


def _keep_top(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Bool mask keeping exactly the ``k`` largest entries of a 1-D score vector (ties broken by index)."""
    mask = torch.zeros_like(scores, dtype=torch.bool)
    if k > 0:
        order = torch.argsort(scores, descending=True, stable=True)
        mask[order[:k]] = True
    return mask


def _magnitude_scores(module: nn.Module) -> torch.Tensor:
    """|w| with already-pruned entries at −inf (so masks only ever shrink)."""
    w = _weight(module).detach()
    s = w.abs().to(torch.float64).reshape(-1)
    return s.masked_fill(~_full_mask(module).reshape(-1), -math.inf)


def _magnitude_masks(
    layers: list[tuple[str, nn.Module]], sparsity: float, scope: str
) -> dict[str, torch.Tensor]:
    """Masks keeping the largest |w| at the given sparsity (per layer or global); never revives pruned weights."""
    masks: dict[str, torch.Tensor] = {}
    if scope == "layer":
        for name, m in layers:
            scores = _magnitude_scores(m)
            n = scores.numel()
            alive = int(torch.isfinite(scores).sum())
            keep = min(alive, n - round(sparsity * n))
            masks[name] = _keep_top(scores, keep).reshape(_weight(m).shape)
        return masks
    all_scores = torch.cat([_magnitude_scores(m) for _, m in layers])
    n = all_scores.numel()
    alive = int(torch.isfinite(all_scores).sum())
    keep_all = _keep_top(all_scores, min(alive, n - round(sparsity * n)))
    start = 0
    for name, m in layers:
        size = _weight(m).numel()
        masks[name] = keep_all[start : start + size].reshape(_weight(m).shape)
        start += size
    return masks


def _outgoing_norms(
    layers: list[tuple[str, nn.Module]], index: int, norm: str
) -> tuple[NDArray[np.float64], str]:
    """``a_j`` for the neurons of ``layers[index]`` from the next prunable layer's (masked) weight columns."""
    name, module = layers[index]
    n_out = _weight(module).shape[0]
    if index + 1 >= len(layers):
        return np.ones(n_out), "last layer: a_j = 1"
    nxt_name, nxt = layers[index + 1]
    w = (_weight(nxt).detach() * _full_mask(nxt)).to(torch.float64)
    if isinstance(nxt, nn.Conv2d) and nxt.in_channels == n_out and nxt.groups == 1:
        cols = w.transpose(0, 1).reshape(n_out, -1)
        note = f"a_j from conv {nxt_name!r} input channel j"
    elif isinstance(nxt, nn.Linear) and nxt.in_features == n_out:
        cols = w.t()
        note = f"a_j from column j of {nxt_name!r}"
    elif isinstance(nxt, nn.Linear) and nxt.in_features % n_out == 0:
        # channel-major flatten after a conv: channel j owns a contiguous block of columns
        cols = w.reshape(w.shape[0], n_out, -1).transpose(0, 1).reshape(n_out, -1)
        note = f"a_j from the column block of channel j in {nxt_name!r}"
    else:
        return np.ones(n_out), f"next layer {nxt_name!r} does not chain with {name!r}: a_j = 1"
    a = cols.abs()
    if norm == "inf":
        vals = a.max(dim=1).values
    elif norm == "l1":
        vals = a.sum(dim=1)
    else:
        vals = torch.sqrt((a * a).sum(dim=1))
    return vals.cpu().numpy(), note


def _row_lq(w_rows: NDArray[np.float64], q: float) -> NDArray[np.float64]:
    """‖row‖_q for every row of a 2-D magnitude array (masked entries already 0)."""
    top = w_rows.max(axis=1)
    safe = np.where(top > 0, top, 1.0)
    return np.where(top > 0, safe * np.sum((w_rows / safe[:, None]) ** q, axis=1) ** (1.0 / q), 0.0)


def _allocate(
    c: NDArray[np.float64], lo: NDArray[np.int64], hi: NDArray[np.int64], q: float, total: int
) -> NDArray[np.int64]:
    """Integers ``lo ≤ k_j ≤ hi`` with ``Σ k_j = total`` and ``k_j ≈ κ c_j^q`` (bisection on κ, largest remainder)."""
    if total <= int(lo.sum()):
        return lo.copy()
    if total >= int(hi.sum()):
        return hi.copy()
    base = np.power(np.maximum(c, 0.0), q)
    positive = base > 0

    def counts(kappa: float) -> NDArray[np.float64]:
        return np.clip(kappa * base, lo, hi).astype(np.float64)

    # k(κ) is continuous and non-decreasing in κ; find κ with Σ k = total.
    lo_k, hi_k = 0.0, 1.0
    while counts(hi_k).sum() < total:
        hi_k *= 2.0
        if hi_k > 1e300 or not positive.any():
            break
    for _ in range(200):
        mid = 0.5 * (lo_k + hi_k)
        if counts(mid).sum() < total:
            lo_k = mid
        else:
            hi_k = mid
    real = counts(hi_k)
    k = np.floor(real).astype(np.int64)
    k = np.clip(k, lo, hi)
    short = total - int(k.sum())
    if short > 0:
        frac = np.where(k < hi, real - k, -np.inf)
        order = np.argsort(-frac, kind="stable")
        for j in order:
            if short == 0:
                break
            if k[j] < hi[j]:
                k[j] += 1
                short -= 1
        # still short only if fractional ties ran out; fill anywhere below the cap
        for j in np.argsort(-base, kind="stable"):
            if short == 0:
                break
            add = min(short, int(hi[j] - k[j]))
            k[j] += add
            short -= add
    elif short < 0:
        for j in np.argsort(real - np.floor(real), kind="stable"):
            if short == 0:
                break
            if k[j] > lo[j]:
                k[j] -= 1
                short += 1
    return k


def _lq_bound_terms(
    c: NDArray[np.float64], k: NDArray[np.int64], hi: NDArray[np.int64], q: float
) -> NDArray[np.float64]:
    """Per-neuron ℓ_q tail bound ``(q/(1−q)) c_j k_j^{1−1/q}`` (0 where nothing is removed; c_j at k_j = 0)."""
    out = np.zeros_like(c)
    removed = k < hi
    pos = removed & (k > 0)
    out[pos] = q / (1.0 - q) * c[pos] * k[pos].astype(np.float64) ** (1.0 - 1.0 / q)
    zero = removed & (k == 0)
    out[zero] = c[zero]
    return out


def _lq_adaptive(
    layers: list[tuple[str, nn.Module]], chain: list[tuple[str, nn.Module]], cfg: LqAdaptiveConfig
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    q = float(cfg.q)
    info: list[dict[str, Any]] = []
    position = {name: i for i, (name, _) in enumerate(chain)}
    for name, m in layers:
        w = _rows(_weight(m).detach()).to(torch.float64)
        alive = _rows(_full_mask(m))
        mag = (w.abs() * alive).cpu().numpy()
        a, note = _outgoing_norms(chain, position[name], cfg.outgoing_norm)
        c = a * _row_lq(mag, q)
        hi = alive.sum(dim=1).cpu().numpy().astype(np.int64)
        lo = np.minimum(hi, cfg.min_keep).astype(np.int64)
        info.append(
            {
                "name": name,
                "module": m,
                "mag": mag,
                "alive": alive,
                "a": a,
                "c": c,
                "lo": lo,
                "hi": hi,
                "note": note,
            }
        )

    scale = cfg.lipschitz * cfg.input_bound
    if cfg.sparsity is not None:
        s = float(cfg.sparsity)
        if cfg.scope == "layer":
            for d in info:
                n = d["mag"].size
                d["k"] = _allocate(d["c"], d["lo"], d["hi"], q, n - round(s * n))
        else:
            c_all = np.concatenate([d["c"] for d in info])
            lo_all = np.concatenate([d["lo"] for d in info])
            hi_all = np.concatenate([d["hi"] for d in info])
            n = sum(d["mag"].size for d in info)
            k_all = _allocate(c_all, lo_all, hi_all, q, n - round(s * n))
            start = 0
            for d in info:
                r = d["c"].size
                d["k"] = k_all[start : start + r]
                start += r
    else:
        budget = float(cfg.budget)  # type: ignore[arg-type]
        c_all = np.concatenate([d["c"] for d in info])
        lo_all = np.concatenate([d["lo"] for d in info])
        hi_all = np.concatenate([d["hi"] for d in info])
        base = np.power(c_all, q)

        def ks(kappa: float) -> NDArray[np.int64]:
            return np.clip(np.ceil(kappa * base), lo_all, hi_all).astype(np.int64)

        def bound(kappa: float) -> float:
            return scale * float(_lq_bound_terms(c_all, ks(kappa), hi_all, q).sum())

        lo_k, hi_k = 0.0, 1.0
        while bound(hi_k) > budget and hi_k < 1e300:
            hi_k *= 2.0
        for _ in range(200):
            mid = 0.5 * (lo_k + hi_k)
            if bound(mid) > budget:
                lo_k = mid
            else:
                hi_k = mid
        k_all = ks(hi_k)
        start = 0
        for d in info:
            r = d["c"].size
            d["k"] = k_all[start : start + r]
            start += r

    masks: dict[str, torch.Tensor] = {}
    per_layer: dict[str, Any] = {}
    for d in info:
        m = d["module"]
        mag = d["mag"]
        alive = d["alive"].cpu().numpy()
        k = d["k"]
        keep = np.zeros_like(alive, dtype=bool)
        scores = np.where(alive, mag, -np.inf)
        order = np.argsort(-scores, axis=1, kind="stable")
        for j in range(mag.shape[0]):
            keep[j, order[j, : int(k[j])]] = True
        removed_l1 = np.sum(np.where(keep, 0.0, mag), axis=1)
        lq_terms = _lq_bound_terms(d["c"], k, d["hi"], q)
        per_layer[d["name"]] = {
            "k": k.copy(),
            "c": d["c"].copy(),
            "a": d["a"].copy(),
            "a_note": d["note"],
            "lq_bound": scale * float(lq_terms.sum()),
            "tail_bound": scale * float(np.sum(d["a"] * removed_l1)),
        }
        masks[d["name"]] = torch.from_numpy(keep).reshape(_weight(m).shape)
    details = {
        "q": q,
        "layers": per_layer,
        "lq_bound_total": float(sum(v["lq_bound"] for v in per_layer.values())),
        "tail_bound_total": float(sum(v["tail_bound"] for v in per_layer.values())),
        "bound_reading": (
            "L·R·Σ_j a_j‖w_j − w_j,(k_j)‖_1 (tail) ≤ L·R·(q/(1−q))·Σ_j c_j k_j^{1−1/q} (lq), per layer; a certified "
            "bound on the output change only for a 2-layer net pruned in its first layer (our reading of Yang et "
            "al. 2022 — the paper body was not available)"
        ),
    }
    return masks, details


def _sap_units(layers: list[tuple[str, nn.Module]], scope: str) -> list[tuple[str, list[tuple[str, None]]]]:
    """Scope units (global or one per layer) as lists of (layer name, None = whole layer)."""
    if scope == "global":
        return [("global", [(name, None) for name, _ in layers])]
    return [(name, [(name, None)]) for name, _ in layers]


def _sap_step(
    layers: list[tuple[str, nn.Module]], cfg: SAPConfig, cap: int | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """One SAP step; with ``cap`` (milestones) the total number of newly pruned weights is at most ``cap``.

    Pass 1 computes every unit's SAP count ``⌊d c⌋`` (a unit = a neuron, a layer or everything); if their sum
    exceeds ``cap`` the counts are scaled down proportionally to sum to ``cap`` exactly (largest remainder, via
    :func:`_allocate` with exponent 1). Pass 2 prunes, in each unit, that many smallest unpruned magnitudes.
    """
    p, q, eta = float(cfg.p), float(cfg.q), float(cfg.eta)
    by_name = dict(layers)
    new_masks = {name: _rows(_full_mask(m)).clone() for name, m in layers}
    mags = {name: _rows(_weight(m).detach()).abs().to(torch.float64) for name, m in layers}
    unit_stats: list[dict[str, Any]] = []

    # ---- pass 1: SAP's own counts
    neuron_plans: list[dict[str, Any]] = []
    unit_plans: list[dict[str, Any]] = []
    if cfg.scope == "neuron":
        for name, _m in layers:
            mask_t = new_masks[name]
            mag_np = (mags[name] * mask_t).cpu().numpy()
            alive_np = mask_t.cpu().numpy().copy()
            d_rows = alive_np.sum(axis=1)
            pqi_rows = np.zeros(len(d_rows))
            m_rows = np.zeros(len(d_rows))
            proposed_rows = np.zeros(len(d_rows), dtype=np.int64)
            for j in range(len(d_rows)):
                dj = int(d_rows[j])
                if dj == 0:
                    continue
                row = mag_np[j, alive_np[j]]
                pqi_rows[j] = pq_index(row, p, q)
                m_rows[j] = math.ceil(sap_retained_bound(row, p, q, eta) - 1e-9)
                c_j = min(max(cfg.gamma * (1.0 - min(1.0, m_rows[j] / dj)), 0.0), cfg.beta)
                proposed_rows[j] = math.floor(dj * c_j)
            neuron_plans.append(
                {
                    "name": name,
                    "mag": mag_np,
                    "alive": alive_np,
                    "d_rows": d_rows,
                    "pqi_rows": pqi_rows,
                    "m_rows": m_rows,
                    "proposed": proposed_rows,
                }
            )
        proposed = (
            np.concatenate([plan["proposed"] for plan in neuron_plans])
            if neuron_plans
            else np.zeros(0, dtype=np.int64)
        )
    else:
        for unit, parts in _sap_units(layers, cfg.scope):
            vals = torch.cat([mags[name][new_masks[name]] for name, _ in parts])
            d = vals.numel()
            if d == 0:
                unit_plans.append({"unit": unit, "parts": parts, "vals": vals, "proposed": 0, "stats": None})
                continue
            v_np = vals.cpu().numpy()
            pqi = pq_index(v_np, p, q)
            m_bound = math.ceil(sap_retained_bound(v_np, p, q, eta) - 1e-9)
            ratio = min(1.0, m_bound / d)
            c = min(max(cfg.gamma * (1.0 - ratio), 0.0), cfg.beta)
            stats = {
                "unit": unit,
                "d": d,
                "pq_index": pqi,
                "m": m_bound,
                "retain_ratio": ratio,
                "prune_ratio": c,
            }
            unit_plans.append(
                {"unit": unit, "parts": parts, "vals": vals, "proposed": math.floor(d * c), "stats": stats}
            )
        proposed = np.array([plan["proposed"] for plan in unit_plans], dtype=np.int64)

    # ---- clip to the milestone
    n_proposed = int(proposed.sum())
    clipped = cap is not None and n_proposed > cap
    if clipped:
        assert cap is not None
        zeros = np.zeros_like(proposed)
        final = _allocate(proposed.astype(np.float64), zeros, proposed, 1.0, int(cap))
    else:
        final = proposed

    # ---- pass 2: prune the smallest unpruned magnitudes of each unit
    if cfg.scope == "neuron":
        start = 0
        for plan in neuron_plans:
            alive_np, mag_np = plan["alive"], plan["mag"]
            rows = alive_np.shape[0]
            counts = final[start : start + rows]
            start += rows
            order_np = np.argsort(np.where(alive_np, mag_np, np.inf), axis=1, kind="stable")
            for row_idx in np.flatnonzero(counts).tolist():
                alive_np[row_idx, order_np[row_idx, : int(counts[row_idx])]] = False
            new_masks[plan["name"]] = torch.from_numpy(alive_np)
            unit_stats.append(
                {
                    "unit": plan["name"],
                    "scope": "neuron",
                    "d_mean": float(plan["d_rows"].mean()),
                    "pq_index_mean": float(plan["pqi_rows"].mean()),
                    "m_mean": float(plan["m_rows"].mean()),
                    "n_proposed": int(plan["proposed"].sum()),
                    "n_pruned": int(counts.sum()),
                }
            )
    else:
        for plan, n_prune in zip(unit_plans, final.tolist(), strict=True):
            if plan["stats"] is None:
                unit_stats.append(
                    {"unit": plan["unit"], "d": 0, "pq_index": 0.0, "m": 0, "prune_ratio": 0.0, "n_pruned": 0}
                )
                continue
            vals, parts = plan["vals"], plan["parts"]
            if n_prune > 0:
                # prune exactly the n smallest unpruned magnitudes of the unit (ties by position)
                order = torch.argsort(vals, stable=True)[:n_prune]
                drop = torch.zeros(vals.numel(), dtype=torch.bool)
                drop[order] = True
                start = 0
                for name, _ in parts:
                    mask = new_masks[name]
                    cnt = int(mask.sum())
                    flat_idx = torch.nonzero(mask.reshape(-1)).reshape(-1)
                    sel = flat_idx[drop[start : start + cnt]]
                    flat = mask.reshape(-1).clone()
                    flat[sel] = False
                    new_masks[name] = flat.reshape(mask.shape)
                    start += cnt
            unit_stats.append({**plan["stats"], "n_proposed": plan["proposed"], "n_pruned": int(n_prune)})
    masks = {name: new_masks[name].reshape(_weight(by_name[name]).shape) for name, _ in layers}
    details = {
        "p": p,
        "q": q,
        "eta": eta,
        "gamma": cfg.gamma,
        "beta": cfg.beta,
        "scope": cfg.scope,
        "units": unit_stats,
        "n_proposed": n_proposed,
        "n_step": int(final.sum()),
        "clipped": bool(clipped),
    }
    return masks, details


def _sap_milestone(layers: list[tuple[str, nn.Module]], cfg: SAPConfig) -> tuple[float, int]:
    """Next milestone not yet reached and how many more weights reach it exactly (``round(m·n_total)`` pruned).

    A milestone missed by at most ``max(1, 10⁻⁴·n_total)`` weights (per-unit rounding of a clipped step) counts as
    reached, so no round is spent pruning a handful of weights."""
    assert cfg.milestones is not None
    total = sum(_weight(m).numel() for _, m in layers)
    pruned = sum(int((~_full_mask(m)).sum()) for _, m in layers)
    slack = max(1, round(1e-4 * total))
    for milestone in cfg.milestones:
        goal = round(milestone * total)
        if goal - pruned > slack:
            return milestone, goal - pruned
    raise InvalidParameterError(
        f"the SAP milestones are exhausted: the model is already at sparsity {pruned / total:.4f} "
        f"(milestones {cfg.milestones})"
    )


def _lt_target(layers: list[tuple[str, nn.Module]], cfg: LotteryTicketConfig) -> float:
    """Next cumulative sparsity of the schedule strictly above the current one."""
    sizes = [_weight(m).numel() for _, m in layers]
    total = sum(sizes)
    pruned = sum(int((~_full_mask(m)).sum()) for _, m in layers)
    current = pruned / total
    # per-layer rounding can leave the achieved sparsity up to 1/n_layer below a reached target
    tol = 1.0 / min(sizes) if cfg.scope == "layer" else 1.0 / total
    for s in cfg.schedule():
        if s > current + tol:
            return s
    raise InvalidParameterError(
        f"the lottery-ticket schedule is exhausted: the model is already at sparsity {current:.4f} "
        f"(schedule {cfg.schedule()})"
    )


def _criterion_masks(
    model: nn.Module,
    selected: list[tuple[str, nn.Module]],
    target: float,
    scope: str,
    criterion: str,
    q: float,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Masks at sparsity ``target`` chosen by magnitude or by the neuron-wise ℓ_q allocation of :func:`_lq_adaptive`.

    The ℓ_q branch is :class:`LqAdaptiveConfig` with ``sparsity=target`` (and the defaults ``min_keep=1``,
    ``outgoing_norm='inf'``) applied to the current unpruned weights: it never revives a pruned weight.
    """
    if criterion == "magnitude":
        return _magnitude_masks(selected, target, scope), {"criterion": "magnitude"}
    lq_cfg = LqAdaptiveConfig(sparsity=target, q=q, scope="global" if scope == "global" else "layer")
    masks, lq_details = _lq_adaptive(selected, prunable_layers(model), lq_cfg)
    return masks, {"criterion": "lq", "lq": lq_details}


def prune(
    model: nn.Module,
    config: PruneConfig,
    *,
    step: int | None = None,
    layers: Iterable[str] | None = None,
) -> PruneResult:
    """Apply one pruning step to ``model`` in place: update the ``weight_mask`` buffers and zero pruned weights.

    Masks only ever shrink: weights already pruned stay pruned (a target below the current sparsity keeps them).

    * :class:`MagnitudeConfig`: one-shot, exact count.
    * :class:`LqAdaptiveConfig`: the ℓ_q neuron-wise rule; ``result.details`` holds ``k_j``, ``c_j`` and the
      per-layer ℓ_q / tail bound terms.
    * :class:`SAPConfig`: one SAP step (the training loop applies ``config.rounds`` of them); with ``milestones``
      clipped so as not to pass the next milestone (``target_sparsity`` = that milestone when the step lands on
      it, else None; ``details['clipped']`` says whether SAP's counts were scaled down).
    * :class:`GradualMagnitudeConfig`: pruning to ``config.sparsity_at(step)`` (``step`` required) by magnitude or,
      with ``criterion='lq'``, by the neuron-wise ℓ_q allocation.
    * :class:`LotteryTicketConfig`: pruning to the next sparsity of ``config.schedule()`` above the current one
      (magnitude or ℓ_q criterion; rewinding is the training loop's job, see :func:`rewind_to`).

    Args:
        model: The model (modified in place).
        config: One of the config dataclasses.
        step: Optimizer steps completed (gradual magnitude only).
        layers: Optional names of the layers to prune (default: every ``nn.Linear`` / ``nn.Conv2d``).

    Returns:
        A :class:`PruneResult`.

    Raises:
        ValueError: If the model has no prunable layer, ``config`` has the wrong type, ``step`` is missing for the
            gradual schedule, or the lottery-ticket schedule / SAP milestones are exhausted.
    """
    selected = prunable_layers(model, layers)
    target: float | None = None
    details: dict[str, Any] = {}
    if isinstance(config, MagnitudeConfig):
        method, target = "magnitude", float(config.sparsity)
        masks = _magnitude_masks(selected, target, config.scope)
    elif isinstance(config, GradualMagnitudeConfig):
        if step is None:
            raise InvalidParameterError(
                "prune(..., GradualMagnitudeConfig) needs step= (optimizer steps completed)"
            )
        method = "gradual_magnitude"
        if config.layer_sparsity is None:
            target = config.sparsity_at(int(step))
            masks, details = _criterion_masks(
                model, selected, target, config.scope, config.criterion, config.q
            )
        else:
            names = {n for n, _ in selected}
            unknown = sorted(set(config.layer_targets()) - names)
            if unknown:
                raise InvalidParameterError(
                    f"layer_sparsity names {unknown}, which this step does not prune; pruned layers are "
                    f"{sorted(names)}"
                )
            masks = {}
            per_details: dict[str, Any] = {}
            for name, m in selected:
                s_l = config.sparsity_at(int(step), name)
                layer_masks, per_details[name] = _criterion_masks(
                    model, [(name, m)], s_l, "layer", config.criterion, config.q
                )
                masks.update(layer_masks)
            sizes = {n: _weight(m).numel() for n, m in selected}
            target = sum(config.sparsity_at(int(step), n) * k for n, k in sizes.items()) / sum(sizes.values())
            details = {
                "layers": per_details,
                "layer_targets": {n: config.sparsity_at(int(step), n) for n in sizes},
            }
        details["step"] = int(step)
    elif isinstance(config, LotteryTicketConfig):
        method = "lottery_ticket"
        target = _lt_target(selected, config)
        masks, details = _criterion_masks(model, selected, target, config.scope, config.criterion, config.q)
    elif isinstance(config, LqAdaptiveConfig):
        method = "lq_adaptive"
        target = None if config.sparsity is None else float(config.sparsity)
        masks, details = _lq_adaptive(selected, prunable_layers(model), config)
    elif isinstance(config, SAPConfig):
        method = "sap"
        if config.milestones is None:
            masks, details = _sap_step(selected, config)
        else:
            milestone, cap = _sap_milestone(selected, config)
            masks, details = _sap_step(selected, config, cap=cap)
            details["next_milestone"] = milestone
            if details["n_step"] == cap:  # landed exactly on the milestone (clipped, or SAP's own count)
                target = milestone
    else:
        raise InvalidParameterError(
            f"unknown pruning config {type(config).__name__}; expected MagnitudeConfig, LqAdaptiveConfig, "
            "SAPConfig, GradualMagnitudeConfig or LotteryTicketConfig"
        )

    lipschitz = config.lipschitz if isinstance(config, LqAdaptiveConfig) else 1.0
    input_bound = config.input_bound if isinstance(config, LqAdaptiveConfig) else 1.0
    bound: float | None
    try:
        bound = degradation_bound(model, masks, input_bound=input_bound, lipschitz=lipschitz)
    except ValueError as exc:
        bound = None
        details["bound_note"] = str(exc)

    by_name = dict(selected)
    for name, mask in masks.items():
        _set_mask(by_name[name], mask)
    overall, per_layer = current_sparsity(model, [n for n, _ in selected])
    n_total = sum(_weight(m).numel() for _, m in selected)
    n_pruned = sum(int((~_full_mask(m)).sum()) for _, m in selected)
    return PruneResult(
        method=method,
        masks={k: v.detach().clone() for k, v in masks.items()},
        layer_sparsity=per_layer,
        sparsity=overall,
        n_pruned=n_pruned,
        n_total=n_total,
        target_sparsity=target,
        bound=bound,
        details=details,
    )


# ============================================================================================ bounds

_ACTIVATION_LIPSCHITZ: dict[type[nn.Module], float] = {
    nn.ReLU: 1.0,
    nn.Tanh: 1.0,
    nn.Sigmoid: 0.25,
    nn.Hardtanh: 1.0,
    nn.ReLU6: 1.0,
    nn.Softsign: 1.0,
}


def degradation_bound(
    model: nn.Module,
    masks: Mapping[str, torch.Tensor] | None = None,
    *,
    input_bound: float = 1.0,
    lipschitz: float | None = None,
) -> float:
    """Certified bound on ``max_k |f_k(x) − f̂_k(x)|`` over all inputs with ``‖x‖_∞ ≤ input_bound``.

    ``f`` uses the model's current weights ``W``, ``f̂`` the masked weights ``Ŵ = W ⊙ mask``. Element-wise bounds are
    propagated through the chain (``u`` bounds ``|h|``, ``e`` bounds ``|h − ĥ|``)::

        Linear:      e ← |W − Ŵ| u + |Ŵ| e,     u ← |W| u + |b|
        activation:  e ← L e,                   u ← |σ(0)| + L u

    For a two-layer net pruned in its first layer this gives ``L R max_k Σ_j |a_kj| ‖w_j − ŵ_j‖_1``, i.e. at most the
    bound ``L R Σ_j ‖a_{·j}‖_∞ ‖w_j − ŵ_j‖_1`` of methods.md §3.2. Deeper nets get a valid but loose bound.

    Args:
        model: A chain of ``nn.Linear`` layers and element-wise activations (``ReLU``, ``LeakyReLU``, ``Tanh``,
            ``Sigmoid``, ``Hardtanh``, ``ReLU6``, ``Softsign``) plus ``Identity`` / ``Flatten`` / ``Dropout``
            (identity at evaluation), in registration order — e.g. an ``nn.Sequential`` MLP.
        masks: Layer name → bool mask (True = kept). Default: the model's own ``weight_mask`` buffers — but then
            the weights are already zero, so pass the masks *before* they are applied to measure a pruning step.
        input_bound: R > 0.
        lipschitz: Override the Lipschitz constant of every activation (default: the known constants).

    Returns:
        The bound (a float).

    Raises:
        ValueError: For a module that is not supported (convolutions, normalisation, custom blocks).
    """
    if not input_bound > 0:
        raise InvalidParameterError(f"input_bound must be > 0; got {input_bound!r}")
    if masks is None:
        masks = get_masks(model)
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    u: NDArray[np.float64] | None = None
    e: NDArray[np.float64] | None = None
    for name, m in leaves:
        if isinstance(m, nn.Linear):
            W = m.weight.detach().to(torch.float64).cpu().numpy()
            mask = masks.get(name)
            What = W if mask is None else W * mask.reshape(W.shape).cpu().numpy()
            b = (
                np.zeros(W.shape[0])
                if m.bias is None
                else np.abs(m.bias.detach().to(torch.float64).cpu().numpy())
            )
            if u is None or e is None:
                u = np.full(W.shape[1], float(input_bound))
                e = np.zeros(W.shape[1])
            if u.size != W.shape[1]:
                raise InvalidParameterError(
                    f"layer {name!r} expects {W.shape[1]} inputs but the chain provides {u.size}"
                )
            e = np.abs(W - What) @ u + np.abs(What) @ e
            u = np.abs(W) @ u + b
        elif isinstance(m, nn.Identity | nn.Flatten | nn.Dropout):
            continue
        elif isinstance(m, nn.LeakyReLU) or type(m) in _ACTIVATION_LIPSCHITZ:
            if isinstance(m, nn.LeakyReLU):
                lip = max(1.0, abs(float(m.negative_slope)))
                s0 = 0.0
            else:
                lip = _ACTIVATION_LIPSCHITZ[type(m)]
                s0 = 0.5 if isinstance(m, nn.Sigmoid) else 0.0
            if lipschitz is not None:
                lip = float(lipschitz)
            if u is None or e is None:
                raise InvalidParameterError("degradation_bound: the chain must start with an nn.Linear layer")
            e = lip * e
            u = s0 + lip * u
        else:
            raise InvalidParameterError(
                f"degradation_bound supports chains of nn.Linear and element-wise activations only; module "
                f"{name!r} is a {type(m).__name__}"
            )
    if e is None:
        raise InvalidParameterError("degradation_bound: the model has no nn.Linear layer")
    return float(e.max())


# ============================================================================================ storage


@dataclass(frozen=True)
class SparseLayer:
    """A pruned layer in storage form: packed bitmask + the kept values (row-major order), plus the bias.

    Attributes:
        name: Module name.
        shape: Weight shape.
        bitmask: ``np.packbits`` of the flattened mask (uint8, big bit order).
        values: Kept weights, float32, in row-major order of the mask's True entries.
        bias: The bias (float32) or None.
    """

    name: str
    shape: tuple[int, ...]
    bitmask: NDArray[np.uint8]
    values: NDArray[np.float32]
    bias: NDArray[np.float32] | None

    @property
    def numel(self) -> int:
        """Number of weight entries."""
        return int(np.prod(self.shape))

    @property
    def nnz(self) -> int:
        """Number of kept weights."""
        return int(self.values.size)

    def mask(self) -> NDArray[np.bool_]:
        """The boolean mask, shape ``shape``."""
        return np.unpackbits(self.bitmask, count=self.numel).astype(bool).reshape(self.shape)

    def to_dense(self) -> NDArray[np.float32]:
        """The dense weight (zeros where pruned)."""
        out = np.zeros(self.numel, dtype=np.float32)
        out[self.mask().reshape(-1)] = self.values
        return out.reshape(self.shape)

    def to_csr(self) -> Any:
        """``scipy.sparse.csr_array`` of the weight viewed as (out, fan_in)."""
        import scipy.sparse as sp

        return sp.csr_array(self.to_dense().reshape(self.shape[0], -1))

    def to_coo(self) -> Any:
        """``scipy.sparse.coo_array`` of the weight viewed as (out, fan_in)."""
        import scipy.sparse as sp

        return sp.coo_array(self.to_dense().reshape(self.shape[0], -1))

    def nbytes(self) -> dict[str, float]:
        """Byte counts of this layer's weights under several encodings (bias not included).

        ``entropy``: 32 bits per kept value + the bitmask at its order-0 entropy ``numel·h2(density)`` bits (the
        honest figure used by the benchmark); ``bitmask``: values + 1 bit per entry; ``csr``: values + int32 column
        indices + int32 row pointers; ``dense``: 32 bits per entry.
        """
        n, k = self.numel, self.nnz
        rows = self.shape[0]
        return {
            "dense": 4.0 * n,
            "entropy": 4.0 * k + n * binary_entropy_bits(k / n) / 8.0,
            "bitmask": 4.0 * k + math.ceil(n / 8),
            "csr": 4.0 * k + 4.0 * k + 4.0 * (rows + 1),
        }


@torch.no_grad()
def remove(model: nn.Module) -> dict[str, SparseLayer]:
    """Make the masks permanent: zero masked weights, delete the ``weight_mask`` buffers and gradient hooks.

    The model afterwards is a plain dense model whose pruned weights are exactly zero (identical outputs).

    Args:
        model: A model with ``weight_mask`` buffers.

    Returns:
        Layer name → :class:`SparseLayer` (bitmask + values + bias) for every layer that had a mask.

    Raises:
        ValueError: If the model has no mask.
    """
    masked = list(_masked_modules(model))
    if not masked:
        raise InvalidParameterError(
            "the model has no weight_mask buffer: nothing to remove (call prune first)"
        )
    out: dict[str, SparseLayer] = {}
    for name, m in masked:
        mask = _full_mask(m)
        w = _weight(m)
        w.masked_fill_(~mask, 0.0)
        flat_mask = mask.reshape(-1).cpu().numpy().astype(bool)
        values = w.detach().reshape(-1).cpu().numpy()[flat_mask].astype(np.float32)
        bias_t = m._parameters.get("bias")
        bias = None if bias_t is None else bias_t.detach().cpu().numpy().astype(np.float32).copy()
        out[name] = SparseLayer(
            name=name,
            shape=tuple(int(s) for s in w.shape),
            bitmask=np.packbits(flat_mask),
            values=values,
            bias=bias,
        )
        _unregister_gradient_mask(m)
        del m._buffers[MASK_NAME]
    return out


def storage_report(layers: Mapping[str, SparseLayer], dense_params: int = 0) -> dict[str, Any]:
    """Total bytes of a pruned model from :func:`remove`'s output.

    Args:
        layers: Output of :func:`remove`.
        dense_params: Number of other parameters stored densely at 32 bits (e.g. layers that were not pruned).

    Returns:
        Dict with ``entropy_bytes`` (the honest count: 32 bits per non-zero + bitmask at its entropy + biases and
        other parameters at 32 bits), ``bitmask_bytes``, ``csr_bytes``, ``dense_bytes`` (same model unpruned),
        ``nnz``, ``numel`` and per-layer details.
    """
    per = {}
    totals = {"entropy": 0.0, "bitmask": 0.0, "csr": 0.0, "dense": 0.0}
    extra = 4.0 * dense_params
    nnz = numel = 0
    for name, layer in layers.items():
        b = layer.nbytes()
        bias_bytes = 0.0 if layer.bias is None else 4.0 * layer.bias.size
        for key in totals:
            totals[key] += b[key] + bias_bytes
        per[name] = {"nnz": layer.nnz, "numel": layer.numel, **{f"{k}_bytes": v for k, v in b.items()}}
        nnz += layer.nnz
        numel += layer.numel
    return {
        "entropy_bytes": totals["entropy"] + extra,
        "bitmask_bytes": totals["bitmask"] + extra,
        "csr_bytes": totals["csr"] + extra,
        "dense_bytes": totals["dense"] + extra,
        "nnz": nnz,
        "numel": numel,
        "layers": per,
    }


def model_storage_bytes(model: nn.Module) -> dict[str, Any]:
    """:func:`storage_report` of a copy of ``model`` (the model itself is untouched).

    Prunable layers without a mask (e.g. after :func:`remove`) are stored by their non-zero entries (a trained dense
    weight has none exactly zero, so it counts as fully kept); every parameter outside the prunable layers' weights
    and biases counts at 32 bits.
    """
    clone = copy.deepcopy(model)
    for _, m in prunable_layers(clone):
        if _mask_of(m) is None:
            _set_mask(m, _weight(m).detach() != 0)
    layers = remove(clone)
    counted = set()
    for name in layers:
        counted.add(f"{name}.weight" if name else "weight")
        counted.add(f"{name}.bias" if name else "bias")
    other = sum(p.numel() for n, p in clone.named_parameters() if n not in counted)
    return storage_report(layers, dense_params=other)


# ============================================================================================ summaries


def _summary(values: NDArray[np.float64]) -> dict[str, float]:
    if values.size == 0:
        return {"mean": 0.0, "median": 0.0, "min": 0.0, "max": 0.0}
    return {
        "mean": float(values.mean()),
        "median": float(np.median(values)),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def _measures(v: NDArray[np.float64], q: float) -> dict[str, float]:
    d = v.size
    l1 = float(v.sum())
    return {
        "d": float(d),
        "lq_norm": lq_norm(v, q),
        "lq_over_l1": lq_norm(v, q) / l1 if l1 > 0 else 0.0,
        "pq_index_0.5_1": pq_index(v, 0.5, 1.0),
        "pq_index_1_2": pq_index(v, 1.0, 2.0),
        "sap_m_0.5_1": sap_retained_bound(v, 0.5, 1.0),
        "sap_m_ratio_0.5_1": sap_retained_bound(v, 0.5, 1.0) / d if d else 0.0,
        "gini": gini_index(v),
    }


def compressibility(model: nn.Module, q: float = 0.5, *, masked: bool = True) -> dict[str, Any]:
    """Compressibility summaries of every ``nn.Linear`` / ``nn.Conv2d`` weight: per neuron, per layer, whole model.

    Measures: ℓ_q quasi-norm, ``‖w‖_q/‖w‖_1``, PQ index (p=½, q=1 and p=1, q=2), SAP bound m (p=½, q=1) and
    m/d, Gini index. With ``masked=True`` only unpruned entries count (d = number of unpruned weights, as in the
    SAP code); a weight exactly zero but unmasked still counts.

    Args:
        model: The model.
        q: Exponent of the ℓ_q quasi-norm (``q > 0``).
        masked: Use only unpruned entries.

    Returns:
        ``{"model": measures over all weights, "layers": {name: measures + "neurons": {measure: summary}}}``;
        neuron summaries give mean/median/min/max over rows of the per-neuron ℓ_q norm, PQ index and Gini index.

    Raises:
        ValueError: If the model has no prunable layer or ``q <= 0``.
    """
    if not q > 0:
        raise InvalidParameterError(f"q must be > 0; got {q!r}")
    selected = prunable_layers(model)
    layers_out: dict[str, Any] = {}
    all_vals: list[NDArray[np.float64]] = []
    for name, m in selected:
        w = _rows(_weight(m).detach()).abs().to(torch.float64).cpu().numpy()
        alive = _rows(_full_mask(m)).cpu().numpy() if masked else np.ones_like(w, dtype=bool)
        vals = w[alive]
        all_vals.append(vals)
        rows_lq = np.array([lq_norm(w[j, alive[j]], q) for j in range(w.shape[0])])
        rows_pq = np.array([pq_index(w[j, alive[j]], 0.5, 1.0) for j in range(w.shape[0])])
        rows_gini = np.array([gini_index(w[j, alive[j]]) for j in range(w.shape[0])])
        layers_out[name] = {
            **_measures(vals, q),
            "shape": list(_weight(m).shape),
            "sparsity": 1.0 - vals.size / w.size,
            "neurons": {
                "lq_norm": _summary(rows_lq),
                "pq_index_0.5_1": _summary(rows_pq),
                "gini": _summary(rows_gini),
            },
        }
    everything = np.concatenate(all_vals) if all_vals else np.zeros(0)
    return {"q": q, "model": _measures(everything, q), "layers": layers_out}
