"""Remove dead hidden neurons of a pruned ``nn.Sequential`` MLP: the same function with narrower layers.

A hidden neuron j between two ``nn.Linear`` layers A → σ → B (σ element-wise) is *dead* when

* its incoming row ``A.weight[j]`` is all zero: it outputs the constant ``σ(A.bias[j])``, which is folded into the
  next bias, ``B.bias += B.weight[:, j] σ(A.bias[j])``; or
* its outgoing column ``B.weight[:, j]`` is all zero: nothing reads it.

Either way the neuron is deleted from A's rows and B's columns. The compacted net computes the same function up to
float32 rounding of the folded bias (tested), stores fewer biases and codes fewer positions. Masks
(``weight_mask``) are carried along. Convolutions are left alone (a zero-padded convolution does not see a constant
channel as a constant).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import InvalidParameterError
from ..pruning import FLOAT_ACTIVATIONS, QuantizedActivation

__all__ = ["compact"]

# element-wise activations a dead neuron's constant goes through (evaluated on the bias itself)
_ELEMENTWISE: tuple[type[nn.Module], ...] = (*FLOAT_ACTIVATIONS, nn.Identity, nn.Dropout)


def _is_elementwise(module: nn.Module) -> bool:
    if isinstance(module, _ELEMENTWISE):
        return True
    # k-level quantized activations (rmtcompress.pruning.QuantizedActivation) are element-wise step functions
    return isinstance(module, QuantizedActivation) and not list(module.parameters())


def _select(linear: nn.Linear, rows: torch.Tensor | None, cols: torch.Tensor | None) -> nn.Linear:
    w = linear.weight.detach()
    mask = linear._buffers.get("weight_mask")
    if rows is not None:
        w = w[rows]
        mask = None if mask is None else mask[rows]
    if cols is not None:
        w = w[:, cols]
        mask = None if mask is None else mask[:, cols]
    out = nn.Linear(w.shape[1], w.shape[0], bias=linear.bias is not None, dtype=w.dtype)
    with torch.no_grad():
        out.weight.copy_(w)
        if linear.bias is not None:
            b = linear.bias.detach()
            out.bias.copy_(b if rows is None else b[rows])
    if mask is not None:
        out.register_buffer("weight_mask", mask.clone())
    return out


@torch.no_grad()
def compact(model: nn.Module) -> nn.Module:
    """A copy of ``model`` without dead hidden neurons between consecutive ``nn.Linear`` layers.

    Args:
        model: An ``nn.Sequential`` (other modules are returned as an unchanged copy). Pairs ``Linear → element-wise
            activation(s) → Linear`` are compacted; anything else between two Linear layers stops the pair.

    Returns:
        The compacted copy (``model`` is not modified). At least one neuron is kept in every layer.

    Raises:
        InvalidParameterError: If ``model`` is not an ``nn.Module``.
    """
    if not isinstance(model, nn.Module):
        raise InvalidParameterError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    out = copy.deepcopy(model)
    if not isinstance(out, nn.Sequential):
        return out
    mods = list(out)
    i = 0
    while i < len(mods):
        if not isinstance(mods[i], nn.Linear):
            i += 1
            continue
        j = i + 1
        while j < len(mods) and _is_elementwise(mods[j]):
            j += 1
        if j >= len(mods) or not isinstance(mods[j], nn.Linear):
            i = j
            continue
        a, b = mods[i], mods[j]
        assert isinstance(a, nn.Linear) and isinstance(b, nn.Linear)
        if b.in_features != a.out_features:
            i = j
            continue
        dead_in = (a.weight == 0).all(dim=1)
        dead_out = (b.weight == 0).all(dim=0)
        dead = dead_in | dead_out
        if bool(dead.all()):  # keep one neuron so that the layer stays a layer
            dead[0] = False
        if bool(dead.any()):
            folding = dead_in & ~dead_out & dead
            if bool(folding.any()):
                const = torch.zeros(1, a.out_features, dtype=a.weight.dtype)
                if a.bias is not None:
                    const[0] = a.bias.detach()
                for m in mods[i + 1 : j]:
                    const = m.eval()(const)
                const = torch.where(folding, const[0], torch.zeros_like(const[0]))
                if b.bias is None:
                    b.bias = nn.Parameter(torch.zeros(b.out_features, dtype=b.weight.dtype))
                b.bias.add_(b.weight.detach() @ const)
            keep = torch.nonzero(~dead).reshape(-1)
            mods[i] = _select(a, keep, None)
            mods[j] = _select(b, None, keep)
        i = j
    return nn.Sequential(*mods).train(out.training)
