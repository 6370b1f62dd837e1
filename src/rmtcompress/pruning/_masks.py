"""Explicit weight masks of prunable layers (``nn.Linear`` / ``nn.Conv2d``).

:func:`rmtcompress.pruning.prune` registers a boolean buffer ``weight_mask`` next to each pruned ``weight`` and
zeroes the masked entries in place. Nothing else changes: no forward hooks, no re-parametrisation (``weight`` stays an
ordinary ``nn.Parameter``), so the masked model runs at plain speed and its ``state_dict`` holds ``weight`` and
``weight_mask`` side by side. Because nothing intercepts the forward pass, an optimizer step can move masked weights
away from zero (momentum, weight decay); call :func:`apply_masks` after *every* optimizer step, or wrap the
optimizer in :class:`MaskedOptimizerStep`, which zeroes the gradients of masked entries before the step and
re-applies the masks after it. :func:`register_gradient_masks` is the alternative for hand-written loops: a gradient
hook on each masked parameter (explicit, changes no storage). :func:`rewind_to` is the lottery-ticket rewind.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import torch
from torch import nn

from ..errors import InvalidParameterError

__all__ = [
    "MASK_NAME",
    "MaskedOptimizerStep",
    "apply_masks",
    "current_sparsity",
    "get_masks",
    "prunable_layers",
    "register_gradient_masks",
    "rewind_to",
    "zero_masked_grads",
]

MASK_NAME = "weight_mask"
_HOOK_ATTR = "_rmt_mask_grad_hook"
_PRUNABLE = (nn.Linear, nn.Conv2d)


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


def _rows(t: torch.Tensor) -> torch.Tensor:
    """View a weight (out, ...) as (out, fan_in)."""
    return t.reshape(t.shape[0], -1)


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
