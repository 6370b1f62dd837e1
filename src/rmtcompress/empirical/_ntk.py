"""Empirical neural tangent kernel (NTK) of a PyTorch network.

For a network ``f(·; θ)`` with trainable parameters ``θ`` and data ``X`` (``n`` rows), the empirical NTK is
the ``(n, n)`` Gram matrix of parameter gradients

    Θ(x_i, x_j) = Σ_θ ∂f(x_i)/∂θ · ∂f(x_j)/∂θ,

and, for a network with ``O > 1`` outputs, its trace over outputs ``Σ_o Θ_o``.

Two methods are provided:

``"structured"`` (default)
    Exact per-layer formula for networks whose trainable parameters all live in :class:`torch.nn.Linear`
    layers (anything without parameters may sit between them: activations, scalings, shifts, reshapes that
    keep samples apart). For a Linear layer ``z_ℓ = h_{ℓ-1} W_ℓᵀ + b_ℓ`` the per-sample gradient is
    ``∂f_o(x)/∂W_ℓ = δ_ℓ(x) h_{ℓ-1}(x)ᵀ`` with ``δ_ℓ = ∂f_o/∂z_ℓ``, hence

        Θ = Σ_o Σ_ℓ (δ_ℓ^o δ_ℓ^oᵀ) ∘ (h_{ℓ-1} h_{ℓ-1}ᵀ + [bias trainable]),

    where ``∘`` is the Hadamard product. The sum over outputs folds into the δ Gram by concatenating
    ``δ_ℓ^1, …, δ_ℓ^O`` along the feature axis. ``h`` and ``z`` are captured with forward hooks, and δ for all
    samples of a block comes from one backward pass of ``f_o.sum()`` per output (valid because samples do not
    interact). Cost per block pair ``O(B² Σ_ℓ (d_in + O·d_out))`` instead of ``O(B² · #params)``.

``"jacobian"``
    Reference oracle for any module: per-sample Jacobians via
    ``torch.func.vmap(torch.func.jacrev(functional_call))`` and the contraction ``J_I J_Jᵀ`` over all
    trainable parameters (and outputs).

Blocking scheme (both methods). Samples are split into row blocks of ``block_size``. A method turns a block
into per-sample *features* (structured: ``h`` and ``δ`` of each layer; jacobian: the flattened Jacobian) and
the kernel block ``Θ[I, J]`` is a function of the features of blocks ``I`` and ``J``. Only the upper block
triangle ``J ≥ I`` is computed and mirrored. If the features of all ``n`` samples fit in
:data:`FEATURE_CACHE_BYTES`, each block's features are computed once and kept (memory
``O(n² + n·feature_width)`` bounded by that cap); otherwise they are recomputed for every block pair, so the
working memory stays ``O(n² + block_size·feature_width)`` at the price of ``O(n_blocks²)`` passes. The
result is always assembled in a float64 NumPy array.

The model is never modified: it is deep-copied and cast to ``dtype``; hooks are registered on the copy only.
The model's train/eval mode is kept as is; put it in ``eval()`` mode if it has dropout.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from ..errors import InvalidParameterError

__all__ = ["FEATURE_CACHE_BYTES", "NTKMethod", "ntk_empirical"]

#: Upper bound (bytes) on the per-sample features kept for all ``n`` samples at once; above it, block
#: features are recomputed for every block pair instead (see the module docstring).
FEATURE_CACHE_BYTES: int = 1 << 30

_F = TypeVar("_F")


class NTKMethod(enum.StrEnum):
    """How :func:`ntk_empirical` computes the kernel."""

    STRUCTURED = "structured"
    """Per-layer formula; fast; all trainable parameters must belong to ``nn.Linear`` layers."""
    JACOBIAN = "jacobian"
    """``torch.func`` reference oracle: ``vmap(jacrev(functional_call))`` and a contraction; any module."""


# ----------------------------------------------------------------------------------------------------------
# Public entry point
# ----------------------------------------------------------------------------------------------------------


def ntk_empirical(
    model: nn.Module,
    X: Any,
    *,
    method: str | NTKMethod = "structured",
    block_size: int = 1024,
    trace_outputs: bool = True,
    dtype: torch.dtype = torch.float64,
) -> np.ndarray:
    """Empirical NTK ``Θ(x_i, x_j) = Σ_θ ∂f(x_i)/∂θ · ∂f(x_j)/∂θ`` of ``model`` on the rows of ``X``.

    The sum runs over all parameters with ``requires_grad=True``. For ``O > 1`` outputs the kernel is the
    trace over outputs, ``Σ_o Θ_o``. For the structured method (see the module docstring):

        Θ = Σ_o Σ_ℓ (δ_ℓ^o δ_ℓ^oᵀ) ∘ (h_{ℓ-1} h_{ℓ-1}ᵀ + [bias_ℓ trainable]),   δ_ℓ^o = ∂f_o/∂z_ℓ.

    Args:
        model: The network. It maps a batch ``(B, p)`` to ``(B,)`` or ``(B, O, ...)`` (flattened to
            ``(B, O)``) and must treat samples independently (no train-mode batch norm). It is deep-copied
            and cast to ``dtype``; the caller's module is left untouched. Computation runs on the device of
            its first parameter or buffer (CPU when it has none).
        X: Array-like (NumPy array, torch tensor, nested sequence) of shape ``(n, p)``; rows are samples.
            Converted to ``dtype``.
        method: ``"structured"`` (default) or ``"jacobian"``, or an :class:`NTKMethod`.
        block_size: Number of samples per row block (see the module docstring). Positive. Per-block
            feature memory is ``block_size · Σ_ℓ (d_in + O·d_out)`` values for ``"structured"`` but
            ``block_size · O · #params`` for ``"jacobian"``: lower it for the oracle on large models.
        trace_outputs: For ``O > 1`` outputs return ``Σ_o Θ_o``. ``False`` is only accepted for scalar
            outputs (per-output kernels are not supported).
        dtype: Floating torch dtype for the computation (``torch.float64`` by default; ``torch.float32`` is
            faster but less accurate).

    Returns:
        ``(n, n)`` float64 NumPy array, exactly symmetric (positive semi-definite up to round-off).

    Raises:
        ValueError: ``X`` is not 2-D, is empty, is not real numeric, contains NaN/inf, or its width does not
            match the first ``nn.Linear``'s ``in_features``; unknown ``method``; bad ``block_size`` or
            ``dtype``; ``O > 1`` with ``trace_outputs=False``; or (structured) the model has trainable
            parameters outside ``nn.Linear``, reuses a Linear within one forward, ties weights between
            Linears, feeds a Linear non-2-D input, or has train-mode batch norm.
        TypeError: ``model`` is not an ``nn.Module``.
    """
    ntk_method = _parse_method(method)
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise InvalidParameterError(f"block_size must be a positive integer, got {block_size!r}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise InvalidParameterError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    if not isinstance(model, nn.Module):
        raise InvalidParameterError(f"model must be a torch.nn.Module, got {type(model).__name__}")

    model_c = copy.deepcopy(model).to(dtype=dtype)
    device = _module_device(model_c)
    x = _validate_X(X, dtype=dtype, device=device)
    _check_input_width(model_c, x)

    if ntk_method is NTKMethod.STRUCTURED:
        theta = _ntk_structured(model_c, x, block_size=block_size, trace_outputs=trace_outputs)
    else:
        theta = _ntk_jacobian(model_c, x, block_size=block_size, trace_outputs=trace_outputs)
    # Symmetrise exactly: BLAS may round Θ[i, j] and Θ[j, i] differently inside diagonal blocks.
    theta += theta.T
    theta *= 0.5
    return theta


# ----------------------------------------------------------------------------------------------------------
# Validation helpers
# ----------------------------------------------------------------------------------------------------------


def _parse_method(method: str | NTKMethod) -> NTKMethod:
    valid = ", ".join(repr(m.value) for m in NTKMethod)
    if isinstance(method, NTKMethod):
        return method
    if isinstance(method, str):
        try:
            return NTKMethod(method.lower())
        except ValueError:
            pass
    raise InvalidParameterError(f"unknown NTK method {method!r}; valid methods are {valid}")


def _module_device(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for buf in model.buffers():
        return buf.device
    return torch.device("cpu")


def _validate_X(X: Any, *, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Check ``X`` is a finite real 2-D array with at least one row; return it as a ``dtype`` tensor."""
    if isinstance(X, torch.Tensor):
        arr = X.detach().cpu().numpy() if X.dtype != torch.bfloat16 else X.detach().cpu().float().numpy()
    else:
        arr = np.asarray(X)
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise InvalidParameterError(f"X must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise InvalidParameterError(
            f"X must be 2-D of shape (n_samples, n_features), got shape {tuple(arr.shape)}"
        )
    if arr.shape[0] == 0:
        raise InvalidParameterError(f"X must contain at least one sample, got shape {tuple(arr.shape)}")
    if np.issubdtype(arr.dtype, np.floating):
        n_nan = int(np.isnan(arr).sum())
        n_inf = int(np.isinf(arr).sum())
        if n_nan or n_inf:
            raise InvalidParameterError(f"X must be finite: found {n_nan} NaN and {n_inf} inf value(s)")
    return torch.as_tensor(arr).to(device=device, dtype=dtype)


def _first_linear(model: nn.Module) -> nn.Linear | None:
    for m in model.modules():
        if isinstance(m, nn.Linear):
            return m
    return None


def _check_input_width(model: nn.Module, x: torch.Tensor) -> None:
    """Check ``x.shape[1]`` against the first registered ``nn.Linear``'s ``in_features``.

    Registration order need not be call order (a custom module may register its head first), so on a
    mismatch a one-sample probe forward decides: if it fails, the mismatch is reported as a ValueError.
    """
    first = _first_linear(model)
    if first is None or first.in_features == x.shape[1]:
        return
    try:
        with torch.no_grad():
            model(x[:1])
    except Exception as exc:
        raise InvalidParameterError(
            f"X has {x.shape[1]} features per sample but the model's first nn.Linear expects "
            f"in_features={first.in_features}"
        ) from exc


def _as_2d_output(out: Any, n: int, trace_outputs: bool) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        raise InvalidParameterError(f"model must return a tensor, got {type(out).__name__}")
    if out.ndim == 0 or out.shape[0] != n:
        raise InvalidParameterError(
            f"model output must have the batch dimension first: got shape {tuple(out.shape)} "
            f"for {n} sample(s)"
        )
    out2 = out.reshape(n, -1)
    _check_outputs(out2.shape[1], trace_outputs)
    return out2


def _check_outputs(n_out: int, trace_outputs: bool) -> None:
    if n_out > 1 and not trace_outputs:
        raise InvalidParameterError(
            f"the model has {n_out} outputs per sample; only scalar outputs or the trace over outputs "
            "(trace_outputs=True) are supported"
        )


# ----------------------------------------------------------------------------------------------------------
# Generic blocked Gram assembly
# ----------------------------------------------------------------------------------------------------------


def _blocked_gram(
    n: int,
    block_size: int,
    features: Callable[[slice], _F],
    pair_gram: Callable[[_F, _F], torch.Tensor],
    feature_bytes: Callable[[_F], int],
) -> np.ndarray:
    """Assemble the ``(n, n)`` float64 kernel from per-block features (upper block triangle, mirrored).

    Args:
        n: Number of samples.
        block_size: Rows per block.
        features: Maps a row slice to that block's features.
        pair_gram: Maps features of blocks ``I`` and ``J`` to the ``(|I|, |J|)`` kernel block.
        feature_bytes: Size in bytes of one block's features (decides caching, see the module docstring).

    Returns:
        ``(n, n)`` float64 NumPy array (upper and lower block triangles filled; not yet symmetrised).
    """
    blocks = [slice(s, min(s + block_size, n)) for s in range(0, n, block_size)]
    out = np.empty((n, n), dtype=np.float64)
    cache: dict[int, _F] = {}
    first = features(blocks[0])
    per_sample = feature_bytes(first) / max(blocks[0].stop - blocks[0].start, 1)
    use_cache = per_sample * n <= FEATURE_CACHE_BYTES
    cache[0] = first

    def get(k: int) -> _F:
        if k in cache:
            return cache[k]
        f = features(blocks[k])
        if use_cache:
            cache[k] = f
        return f

    for i, bi in enumerate(blocks):
        fi = get(i)
        if not use_cache:
            cache = {i: fi}  # keep only the current row block
        for j in range(i, len(blocks)):
            bj = blocks[j]
            fj = fi if j == i else get(j)
            g = pair_gram(fi, fj).detach().to(device="cpu", dtype=torch.float64).numpy()
            out[bi, bj] = g
            if j != i:
                out[bj, bi] = g.T
    return out


# ----------------------------------------------------------------------------------------------------------
# Structured method
# ----------------------------------------------------------------------------------------------------------


@dataclass
class _LayerSpec:
    """A Linear layer with at least one trainable parameter."""

    name: str
    module: nn.Linear
    weight: bool  # weight trainable
    bias: bool  # bias present and trainable


@dataclass
class _Capture:
    """What the forward hook of one layer recorded during one block's forward pass."""

    calls: int = 0
    h: torch.Tensor | None = None  # (B, d_in) input, detached copy
    z: torch.Tensor | None = None  # (B, d_out) output, in the graph


@dataclass
class _LayerFeat:
    h: torch.Tensor | None  # (B, d_in) when the weight is trainable
    delta: torch.Tensor  # (B, O·d_out): δ^1, …, δ^O concatenated
    bias: bool


@dataclass
class _StructuredFeat:
    layers: list[_LayerFeat] = field(default_factory=list)
    n: int = 0


def _is_plain_linear(m: nn.Module) -> bool:
    return isinstance(m, nn.Linear) and type(m).forward is nn.Linear.forward


def _structured_specs(model: nn.Module) -> list[_LayerSpec]:
    """Collect the trainable Linear layers; reject models the structured formula does not cover."""
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training:
            raise InvalidParameterError(
                f"module {name!r} is a batch norm in training mode, which couples samples; call "
                "model.eval() or use method='jacobian'"
            )
    owner: dict[int, str] = {}
    specs: list[_LayerSpec] = []
    for name, m in model.named_modules():
        if not _is_plain_linear(m):
            continue
        assert isinstance(m, nn.Linear)
        w = m.weight.requires_grad
        b = m.bias is not None and m.bias.requires_grad
        for p in (m.weight, m.bias):
            if p is None or not p.requires_grad:
                continue
            if id(p) in owner:
                raise InvalidParameterError(
                    f"nn.Linear layers {owner[id(p)]!r} and {name!r} share a trainable parameter; the "
                    "structured NTK does not support tied weights, use method='jacobian'"
                )
            owner[id(p)] = name
        if w or b:
            specs.append(_LayerSpec(name=name, module=m, weight=w, bias=b))
    outside = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in owner]
    if outside:
        shown = ", ".join(outside[:5]) + (", …" if len(outside) > 5 else "")
        raise InvalidParameterError(
            f"the structured NTK needs every trainable parameter to belong to an nn.Linear layer, but "
            f"{len(outside)} do not ({shown}); use method='jacobian'"
        )
    return specs


def _ntk_structured(model: nn.Module, x: torch.Tensor, *, block_size: int, trace_outputs: bool) -> np.ndarray:
    specs = _structured_specs(model)
    captures = [_Capture() for _ in specs]

    def make_hook(k: int) -> Callable[[nn.Module, tuple[Any, ...], torch.Tensor], torch.Tensor]:
        def hook(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
            cap = captures[k]
            cap.calls += 1
            cap.h = inputs[0].detach().clone()
            cap.z = output
            # Hand a copy downstream so in-place ops (e.g. ReLU(inplace=True)) cannot rewrite z's history.
            return output.clone()

        return hook

    handles = [s.module.register_forward_hook(make_hook(k)) for k, s in enumerate(specs)]
    try:

        def features(rows: slice) -> _StructuredFeat:
            return _structured_block(model, specs, captures, x[rows], trace_outputs)

        return _blocked_gram(x.shape[0], block_size, features, _structured_pair, _structured_bytes)
    finally:
        for hd in handles:
            hd.remove()


def _structured_block(
    model: nn.Module,
    specs: Sequence[_LayerSpec],
    captures: Sequence[_Capture],
    xb: torch.Tensor,
    trace_outputs: bool,
) -> _StructuredFeat:
    """Forward + ``O`` backward passes over one block: per-layer ``h`` (B, d_in) and ``δ`` (B, O·d_out)."""
    b = xb.shape[0]
    for cap in captures:
        cap.calls, cap.h, cap.z = 0, None, None
    with torch.enable_grad():
        out = _as_2d_output(model(xb), b, trace_outputs)
    used: list[int] = []
    for k, (spec, cap) in enumerate(zip(specs, captures, strict=True)):
        if cap.calls > 1:
            raise InvalidParameterError(
                f"nn.Linear {spec.name!r} was called {cap.calls} times in one forward pass; the structured "
                "NTK needs each trainable Linear to be used once, use method='jacobian'"
            )
        if cap.calls == 0:
            continue  # never called: its parameters get zero gradient and contribute nothing
        assert cap.h is not None and cap.z is not None
        if cap.h.ndim != 2 or cap.h.shape[0] != b:
            raise InvalidParameterError(
                f"nn.Linear {spec.name!r} received input of shape {tuple(cap.h.shape)}; the structured NTK "
                f"needs one row per sample ({b}, in_features), use method='jacobian'"
            )
        used.append(k)

    n_out = out.shape[1]
    zs: list[torch.Tensor] = []
    for k in used:
        z = captures[k].z
        assert z is not None
        zs.append(z)
    grads: list[list[torch.Tensor]] = [[] for _ in used]
    for o in range(n_out):
        gs: Sequence[torch.Tensor | None]
        if out.requires_grad and zs:
            gs = torch.autograd.grad(out[:, o].sum(), zs, retain_graph=o + 1 < n_out, allow_unused=True)
        else:
            gs = [None] * len(zs)
        for slot, z, g in zip(grads, zs, gs, strict=True):
            slot.append(torch.zeros_like(z) if g is None else g.detach())

    feat = _StructuredFeat(n=b)
    for k, slot in zip(used, grads, strict=True):
        spec, cap = specs[k], captures[k]
        delta = slot[0] if n_out == 1 else torch.cat(slot, dim=1)
        feat.layers.append(_LayerFeat(h=cap.h if spec.weight else None, delta=delta, bias=spec.bias))
    for cap in captures:  # release the graph
        cap.h, cap.z = None, None
    return feat


def _structured_pair(fi: _StructuredFeat, fj: _StructuredFeat) -> torch.Tensor:
    """``Σ_ℓ (δ_I δ_Jᵀ) ∘ (h_I h_Jᵀ + [bias])`` for two blocks; ``(|I|, |J|)``."""
    g: torch.Tensor | None = None
    for li, lj in zip(fi.layers, fj.layers, strict=True):
        d = li.delta @ lj.delta.T
        if li.h is not None and lj.h is not None:
            hh = li.h @ lj.h.T
            if li.bias:
                hh += 1.0
            d = d * hh
        g = d if g is None else g.add_(d)
    if g is None:
        return torch.zeros(fi.n, fj.n, dtype=torch.float64)
    return g


def _structured_bytes(f: _StructuredFeat) -> int:
    total = 0
    for lf in f.layers:
        total += lf.delta.numel() * lf.delta.element_size()
        if lf.h is not None:
            total += lf.h.numel() * lf.h.element_size()
    return total


# ----------------------------------------------------------------------------------------------------------
# Jacobian (reference) method
# ----------------------------------------------------------------------------------------------------------


def _ntk_jacobian(model: nn.Module, x: torch.Tensor, *, block_size: int, trace_outputs: bool) -> np.ndarray:
    n = x.shape[0]
    with torch.no_grad():
        probe = model(x[:1])
    _check_outputs(_as_2d_output(probe, 1, trace_outputs).shape[1], trace_outputs)

    trainable = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    constants: dict[str, torch.Tensor] = {
        name: p.detach() for name, p in model.named_parameters() if not p.requires_grad
    }
    constants.update({name: b_.detach() for name, b_ in model.named_buffers()})
    if not trainable:
        return np.zeros((n, n), dtype=np.float64)

    def f_single(params: dict[str, torch.Tensor], xi: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, (params, constants), (xi.unsqueeze(0),))
        return out.reshape(-1)  # (O,)

    per_sample_jac = vmap(jacrev(f_single), in_dims=(None, 0))

    def features(rows: slice) -> list[torch.Tensor]:
        xb = x[rows]
        jac: dict[str, torch.Tensor] = per_sample_jac(trainable, xb)  # name -> (B, O, *param.shape)
        # Flattening (O, *param.shape) together makes J_I J_Jᵀ the trace over outputs.
        return [jac[name].reshape(xb.shape[0], -1) for name in trainable]

    def pair(fi: list[torch.Tensor], fj: list[torch.Tensor]) -> torch.Tensor:
        g = torch.einsum("ik,jk->ij", fi[0], fj[0])
        for a, b in zip(fi[1:], fj[1:], strict=True):
            g += torch.einsum("ik,jk->ij", a, b)
        return g

    def nbytes(f: list[torch.Tensor]) -> int:
        return sum(t.numel() * t.element_size() for t in f)

    return _blocked_gram(n, block_size, features, pair, nbytes)
