"""Whole-net fast inference of a sparse (pruned, weight-quantized) MLP: :class:`FusedMLP`.

``FusedMLP(model)`` wraps an ``nn.Sequential`` of ``nn.Linear`` / :class:`~rmtcompress.pruning.QuantizedLinear`
layers with ``nn.ReLU`` between them (``nn.Dropout`` and ``nn.Identity`` are passed through: the fast paths run in
eval mode only), optionally after a leading :class:`~rmtcompress.core.InputTransformLayer` (a loaded model file's
stored preprocessing, applied first, with its scale check). Its inference runs through the fastest of the paths of :data:`MLP_PATHS`, measured on the first
batch of each batch-size bucket (:class:`~rmtcompress.kernels.KernelPlanner`):

* ``layers`` — the wrapped model's own forward (with whatever per-layer fast kernels it has turned on);
* ``torch_dense_fp32`` — ``F.linear`` + ReLU with the dequantized weights, cached;
* ``sparse_b1`` / ``sparse_b16`` / ``sparse_b64`` — :func:`rmtcompress.kernels.sparse_mlp_forward` (all layers in
  one numba call, activations feature-major between layers) with blocks of 1, 16 or 64 samples.

Every path equals the wrapped model's output to float32 round-off. The packed layouts are rebuilt when a weight,
codebook, code or bias changes (in place or replaced). Training, gradients and other inputs run the wrapped model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .._utils import Registry
from ..core import InputTransformLayer
from ..errors import InvalidParameterError
from ..kernels import KernelPlanner, SparseMLP, sparse_mlp_forward
from ._ensemble import Ensemble
from ._fast_linear import _bind, _state
from ._weight_quant import QuantizedLinear

__all__ = ["MLP_PATHS", "FusedMLP"]

_PASS_THROUGH = (nn.Dropout, nn.Identity)


@dataclass(frozen=True)
class _Packed:
    key: tuple[Any, ...]
    refs: tuple[Any, ...]
    weights: tuple[torch.Tensor, ...]
    biases: tuple[torch.Tensor | None, ...]
    relu: tuple[bool, ...]
    sparse: SparseMLP
    shape: tuple[int, ...]
    density: float


_Path = Callable[[_Packed, torch.Tensor], torch.Tensor]
MLP_PATHS: Registry[str, _Path] = Registry("fused MLP path")
"""Registry: path name → ``(packed layouts, x (n, d_in) float32) → (n, d_out) float32``; ``layers`` (the wrapped
model's forward) is added by :class:`FusedMLP` itself."""


@MLP_PATHS.register("torch_dense_fp32")
def _dense(p: _Packed, x: torch.Tensor) -> torch.Tensor:
    h = x
    for w, b, relu in zip(p.weights, p.biases, p.relu, strict=True):
        h = F.linear(h, w, b)
        if relu:
            h = F.relu(h)
    return h


def _sparse(block: int) -> _Path:
    def run(p: _Packed, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(sparse_mlp_forward(x.detach().numpy(), p.sparse, block=block))

    return run


MLP_PATHS.add("sparse_b1", _sparse(1))
MLP_PATHS.add("sparse_b16", _sparse(16))
MLP_PATHS.add("sparse_b64", _sparse(64))


def _structure(model: nn.Module) -> tuple[nn.Module | None, list[nn.Module], list[tuple[nn.Module, bool]]]:
    """(a leading input transform or None, the modules after it, (weight layer, ReLU after it) pairs) of a supported
    Sequential; a clear error for anything else."""
    if isinstance(model, Ensemble):
        raise InvalidParameterError(
            "FusedMLP runs one net; for an Ensemble fuse each member: Ensemble([FusedMLP(m) for m in model.members])"
        )
    if not isinstance(model, nn.Sequential):
        raise InvalidParameterError(
            f"FusedMLP takes an nn.Sequential of Linear / QuantizedLinear layers and ReLUs; got {type(model).__name__}"
        )
    children = list(model.named_children())
    prefix = None
    if children and isinstance(
        children[0][1], InputTransformLayer
    ):  # a loaded model file's stored preprocessing
        prefix = children[0][1]
        children = children[1:]
    layers: list[tuple[nn.Module, bool]] = []
    for name, m in children:
        if isinstance(m, nn.Linear | QuantizedLinear):
            layers.append((m, False))
        elif isinstance(m, nn.ReLU):
            if not layers or layers[-1][1]:
                raise InvalidParameterError(
                    f"module {name!r}: a ReLU must follow a Linear / QuantizedLinear layer (and only one)"
                )
            layers[-1] = (layers[-1][0], True)
        elif not isinstance(m, _PASS_THROUGH):
            raise InvalidParameterError(
                f"module {name!r} is a {type(m).__name__}: FusedMLP supports nn.Linear, QuantizedLinear, nn.ReLU "
                "(after a layer), nn.Dropout and nn.Identity, after an optional leading InputTransformLayer"
            )
    if not layers:
        raise InvalidParameterError("the model has no Linear / QuantizedLinear layer")
    return prefix, [m for _, m in children], layers


def _weight_and_bias(m: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The (dequantized) weight and the bias of a Linear / QuantizedLinear layer."""
    if isinstance(m, QuantizedLinear):
        return m.weight_hat(), m.bias
    assert isinstance(m, nn.Linear)
    return m.weight, m.bias


class FusedMLP(nn.Module):
    """Planned whole-net inference of a sparse MLP (see the module docstring).

    Args:
        model: ``nn.Sequential`` of ``nn.Linear`` / ``QuantizedLinear`` layers, ``nn.ReLU`` after any of them,
            ``nn.Dropout`` / ``nn.Identity`` anywhere. It is held (not copied): its parameters are this module's.
        plan: ``"auto"`` (time the paths on the first batch of each batch-size bucket, keep the fastest) or
            ``"fixed:<path>"`` with a path of :data:`MLP_PATHS` or ``"layers"``.

    Raises:
        InvalidParameterError: an unsupported module (named), a model without weight layers, or a bad plan.
    """

    def __init__(self, model: nn.Module, *, plan: str = "auto") -> None:
        super().__init__()
        self._prefix, self._rest, self._layers = _structure(model)
        self.model = model
        self._planner = KernelPlanner(plan, paths=("layers", *MLP_PATHS.names()))
        self._packed: _Packed | None = None
        self._candidates: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the packed layouts and timings (rebuilt and re-measured after loading)."""
        state = dict(self.__dict__)
        state["_planner"] = KernelPlanner(self._planner.plan, paths=("layers", *MLP_PATHS.names()))
        state["_packed"] = None
        state["_candidates"] = {}
        return state

    def _layers_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The wrapped model's own forward after its input transform (the ``layers`` path)."""
        return _run_modules(self._rest, x)

    def kernel_plan(self) -> list[dict[str, Any]]:
        """The path chosen per batch-size bucket so far, with the median timings (ms) that chose it."""
        return [e.to_dict() for e in self._planner.entries()]

    def _fast_ok(self, x: torch.Tensor) -> bool:
        """Eval mode, a 2-D float32 CPU input and no gradient needed (checked cheaply first: this runs per call)."""
        if self.training or x.dim() != 2 or x.dtype != torch.float32 or x.device.type != "cpu":
            return False
        if not torch.is_grad_enabled():
            return True
        return not (x.requires_grad or any(p.requires_grad for p in self.model.parameters()))

    def _pack(self) -> _Packed | None:
        """The packed layouts of the current weights (rebuilt when any changed); None when a tensor is not on
        the CPU."""
        states = [_state(m) for m, _ in self._layers]
        key = tuple(k for k, _ in states)
        p = self._packed
        if p is not None and p.key == key:
            return p
        weights: list[torch.Tensor] = []
        biases: list[torch.Tensor | None] = []
        if any(t is not None and t.device.type != "cpu" for _, refs in states for t in refs):
            return None
        with torch.no_grad():
            for m, _ in self._layers:
                w, b = _weight_and_bias(m)
                weights.append(w.detach().to(torch.float32).contiguous())
                biases.append(None if b is None else b.detach().to(torch.float32).contiguous())
        relu = tuple(r for _, r in self._layers)
        sparse = SparseMLP.from_layers(
            [w.numpy() for w in weights], [None if b is None else b.numpy() for b in biases], relu
        )
        total = sum(int(w.numel()) for w in weights)
        p = _Packed(
            key=key,
            refs=tuple(t for _, refs in states for t in refs),
            weights=tuple(weights),
            biases=tuple(biases),
            relu=relu,
            sparse=sparse,
            shape=tuple(int(v) for v in sparse.dims),
            density=round(sparse.nnz / max(1, total), 6),
        )
        self._packed = p
        self._candidates = {}
        return p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The wrapped model's output, through the planned path when it applies (eval mode, 2-D float32 CPU input,
        no gradient needed)."""
        if not self._fast_ok(x):
            return self.model(x)
        p = self._pack()
        if p is None or x.shape[0] == 0:
            return self.model(x)
        if self._prefix is not None:
            x = self._prefix(x)  # the stored input transform (and its scale check), then the fused layers
        candidates = self._candidates
        if not candidates:
            candidates = {"layers": self._layers_forward}
            candidates.update({name: _bind(MLP_PATHS.get(name), p) for name in MLP_PATHS.names()})
            self._candidates = candidates
        return self._planner.run(x, candidates, layer="mlp", shape=p.shape, density=p.density)


def _run_modules(modules: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    for m in modules:
        x = m(x)
    return x
