"""Fast inference paths of a :class:`~rmtcompress.pruning.QuantizedLinear` and their measured choice.

A quantized layer can be computed several ways, all equal to its reference ``F.linear(x, W_hat, b)`` to float32
round-off (:data:`LINEAR_PATHS`):

* ``torch_dense_fp32`` — ``F.linear`` with ``W_hat`` dequantized once and cached (the reference rebuilds it from the
  codes on every call);
* ``torch_csr`` — ``W_hat`` as a ``torch.sparse_csr`` tensor, ``torch.sparse.addmm`` on the transposed input;
* ``codebook_rows`` / ``codebook_rows_serial`` / ``codebook_blocked`` / ``codebook_blocked_serial`` — the numba
  sparse × codebook kernels of :func:`rmtcompress.kernels.codebook_csr_matmul` on the positions grouped by code.

:class:`LinearKernels` (owned by the layer, see :meth:`QuantizedLinear.use_fast_kernel`) packs the layouts once
(again when the codes, table or bias change in place; all layouts are kept, the dense one included, so the fast
paths trade memory for speed), and a :class:`~rmtcompress.kernels.KernelPlanner` times the
paths on the first batch of each batch-size bucket and keeps the fastest. ``torch.ao`` dynamic int8 is not a
candidate: it rounds the activations to 8 bits, so it does not compute the layer.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from .._utils import Registry
from ..kernels import CodebookCSR, KernelPlanner, codebook_csr_matmul

__all__ = ["LINEAR_PATHS", "LinearKernels"]


@dataclass(frozen=True)
class _Packed:
    """Every layout of one state of the layer (codes, table, bias)."""

    key: tuple[Any, ...]
    refs: tuple[Any, ...]  # the tensors the key names, held so that their ids cannot be reused while cached
    weight: torch.Tensor
    csr: torch.Tensor
    bias: torch.Tensor | None
    positions: CodebookCSR
    table: np.ndarray
    bias_np: np.ndarray | None
    shape: tuple[int, int]
    density: float


_Path = Callable[[_Packed, torch.Tensor], torch.Tensor]
LINEAR_PATHS: Registry[str, _Path] = Registry("quantized linear path")
"""Registry: path name → ``(packed layouts, x (n, d_in) float32) → (n, d_out) float32``."""


@LINEAR_PATHS.register("torch_dense_fp32")
def _dense(p: _Packed, x: torch.Tensor) -> torch.Tensor:
    return F.linear(x, p.weight, p.bias)


@LINEAR_PATHS.register("torch_csr")
def _csr(p: _Packed, x: torch.Tensor) -> torch.Tensor:
    xt = x.T.contiguous()
    yt = torch.sparse.mm(p.csr, xt) if p.bias is None else torch.sparse.addmm(p.bias[:, None], p.csr, xt)
    return yt.T.contiguous()


def _codebook(path: str) -> _Path:
    def run(p: _Packed, x: torch.Tensor) -> torch.Tensor:
        xa = x.detach().numpy()
        return torch.from_numpy(codebook_csr_matmul(xa, p.positions, p.table, p.bias_np, path=path))

    return run


LINEAR_PATHS.add("codebook_rows", _codebook("rows"))
LINEAR_PATHS.add("codebook_rows_serial", _codebook("rows_serial"))
LINEAR_PATHS.add("codebook_blocked", _codebook("blocked"))
LINEAR_PATHS.add("codebook_blocked_serial", _codebook("blocked_serial"))


def _state(module: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """(key, tensors): identity and version counter of every buffer and parameter of ``module`` (for a quantized
    layer: codes, magnitudes, table, bias) — an in-place change bumps the version, a replaced tensor changes the
    identity. Read from the module's dicts directly (this runs on every call)."""
    tensors = (*module._buffers.values(), *module._parameters.values())
    return tuple((id(t), None if t is None else t._version) for t in tensors), tensors


class LinearKernels:
    """The packed layouts and the kernel plan of one quantized linear layer.

    Args:
        plan: ``"auto"`` (measure) or ``"fixed:<path>"`` with a path of :data:`LINEAR_PATHS`.
    """

    def __init__(self, plan: str = "auto") -> None:
        self.planner = KernelPlanner(plan, paths=LINEAR_PATHS.names())
        self._packed: _Packed | None = None
        self._candidates: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (and deep-copied) as the plan setting only: the packed layouts are rebuilt from the layer and the
        timings belong to the machine that measured them."""
        return {"plan": self.planner.plan}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["plan"])  # type: ignore[misc]

    def packed(self, module: Any) -> _Packed:
        """The layouts of ``module``'s current codes, table and bias (rebuilt when any changed)."""
        key, refs = _state(module)
        p = self._packed
        if p is not None and p.key == key:
            return p
        self._candidates = {}
        with torch.no_grad():
            w = module.weight_hat().detach().to(torch.float32).contiguous()
            table = module.table().detach().to(torch.float32).cpu().numpy()
            b = None if module.bias is None else module.bias.detach().to(torch.float32).contiguous()
        codes = module.codes.detach().cpu().numpy()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            csr = w.to_sparse_csr()
        positions = CodebookCSR.from_codes(codes, n_values=module.n_values)
        d_out, d_in = positions.shape
        p = _Packed(
            key=key,
            refs=refs,
            weight=w,
            csr=csr,
            bias=b,
            positions=positions,
            table=np.ascontiguousarray(table),
            bias_np=None if b is None else b.numpy(),
            shape=(d_out, d_in),
            density=round(positions.nnz / max(1, d_out * d_in), 6),
        )
        self._packed = p
        return p

    def forward(self, module: Any, x: torch.Tensor) -> torch.Tensor:
        """``module``'s output for a 2-D float32 CPU batch, through the planned path."""
        p = self.packed(module)
        if x.shape[0] == 0:
            return _dense(p, x)
        candidates = self._candidates
        if not candidates:
            candidates = {name: _bind(LINEAR_PATHS.get(name), p) for name in LINEAR_PATHS.names()}
            self._candidates = candidates
        return self.planner.run(x, candidates, layer="linear", shape=p.shape, density=p.density)


def _bind(fn: Callable[[Any, torch.Tensor], torch.Tensor], p: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x ↦ fn(p, x)``: a path bound to its packed layouts."""
    return lambda x: fn(p, x)
