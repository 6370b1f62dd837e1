"""Inference form of a trained ``nn.Sequential``: evaluation-mode ``BatchNorm1d`` folded into the preceding
``nn.Linear``, dropout layers replaced by ``nn.Identity`` (what they compute at inference).

Folding (the batch-norm's evaluation mode uses its running statistics μ, σ², its affine γ, β and ε):
``BN(W x + b) = g ⊙ (W x + b − μ) + β`` with ``g = γ / sqrt(σ² + ε)``, so the folded layer has
``W' = diag(g) W`` and ``b' = g ⊙ (b − μ) + β`` (computed in float64, stored in the layer's dtype): the outputs equal
the original net's in evaluation mode up to float rounding. Pruned weights (exact zeros or entries masked by a
``weight_mask`` buffer) stay exact zeros.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import InvalidParameterError

__all__ = ["DROPOUT_MODULES", "fold_batchnorm", "inference_form"]

DROPOUT_MODULES: tuple[type[nn.Module], ...] = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)
"""Dropout layers: the identity at inference."""


def _folded(lin: nn.Linear, bn: nn.BatchNorm1d, where: str) -> nn.Linear:
    if bn.running_mean is None or bn.running_var is None:
        raise InvalidParameterError(
            f"{where}: a BatchNorm1d without running statistics (track_running_stats=False) normalises with each "
            "batch's own statistics and cannot be folded"
        )
    if bn.num_features != lin.out_features:
        raise InvalidParameterError(
            f"{where}: BatchNorm1d({bn.num_features}) follows an nn.Linear with {lin.out_features} outputs"
        )
    dt = lin.weight.dtype
    w = lin.weight.detach().to(torch.float64)
    mask = getattr(lin, "weight_mask", None)
    if isinstance(mask, torch.Tensor):
        w = w * mask.detach().to(torch.float64).reshape(w.shape)
    b = (
        lin.bias.detach().to(torch.float64)
        if lin.bias is not None
        else torch.zeros(lin.out_features, dtype=torch.float64)
    )
    mean = bn.running_mean.detach().to(torch.float64)
    g = torch.rsqrt(bn.running_var.detach().to(torch.float64) + float(bn.eps))
    beta = torch.zeros_like(mean)
    if bn.affine:
        assert bn.weight is not None and bn.bias is not None
        g = g * bn.weight.detach().to(torch.float64)
        beta = bn.bias.detach().to(torch.float64)
    out = nn.Linear(lin.in_features, lin.out_features, bias=True).to(dtype=dt, device=lin.weight.device)
    with torch.no_grad():
        out.weight.copy_((w * g[:, None]).to(dt))
        assert out.bias is not None
        out.bias.copy_(((b - mean) * g + beta).to(dt))
    return out


def fold_batchnorm(model: nn.Sequential) -> nn.Sequential:
    """``model`` with every top-level ``nn.BatchNorm1d`` that directly follows an ``nn.Linear`` folded into it
    (evaluation-mode statistics) and replaced by ``nn.Identity`` (indices and names kept); ``model`` itself when it
    has no ``BatchNorm1d`` child. The input is not modified.

    Raises:
        InvalidParameterError: A ``BatchNorm1d`` that does not directly follow an ``nn.Linear`` (named), or one
            without running statistics.
    """
    children = list(model.named_children())
    if not any(isinstance(m, nn.BatchNorm1d) for _, m in children):
        return model
    out = copy.deepcopy(model)
    for i, (name, m) in enumerate(children):
        if not isinstance(m, nn.BatchNorm1d):
            continue
        prev_name, prev = children[i - 1] if i else ("", None)
        if not isinstance(prev, nn.Linear):
            raise InvalidParameterError(
                f"layer {name!r} is a BatchNorm1d after {type(prev).__name__ if prev is not None else 'nothing'}: "
                "only a BatchNorm1d directly after an nn.Linear is supported (folded into it); put it there or "
                "remove it"
            )
        setattr(out, prev_name, _folded(prev, m, f"layer {name!r}"))
        setattr(out, name, nn.Identity())
    return out


def inference_form(model: nn.Sequential) -> nn.Sequential:
    """:func:`fold_batchnorm`, and top-level dropout layers replaced by ``nn.Identity``; ``model`` itself when
    there is nothing to change."""
    folded = fold_batchnorm(model)
    if not any(isinstance(m, DROPOUT_MODULES) for m in folded.children()):
        return folded
    out = folded if folded is not model else copy.deepcopy(model)
    for name, m in list(out.named_children()):
        if isinstance(m, DROPOUT_MODULES):
            setattr(out, name, nn.Identity())
    return out
