"""Degradation bounds of pruned MLPs.

:func:`degradation_bound` propagates element-wise interval bounds through a chain of ``Linear`` layers and Lipschitz
activations (``nn.Sequential`` MLPs) and returns a certified bound on ``max_k |f_k(x) − f̂_k(x)|`` over all inputs
with ``‖x‖_∞ ≤ R``. For a two-layer net pruned in its first layer it is at most
``L R Σ_j ‖a_{·j}‖_∞ ‖w_j − ŵ_j‖_1`` — the bound of §3.2. For deeper nets it is valid but loose.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from ..errors import InvalidParameterError
from ._masks import get_masks

__all__ = ["degradation_bound"]


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
