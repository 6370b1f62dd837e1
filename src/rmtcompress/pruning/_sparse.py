"""Sparse storage of pruned layers: :func:`remove` makes the masks permanent (weights stay zero, buffers go) and
returns every pruned layer as a :class:`SparseLayer` (bitmask + values, also COO/CSR); :func:`storage_report` and
:func:`model_storage_bytes` count the honest bytes (32 bits per non-zero, the bitmask at its order-0 entropy, dense
biases).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from .._utils import binary_entropy_bits
from ..errors import InvalidParameterError
from ._masks import (
    MASK_NAME,
    _full_mask,
    _mask_of,
    _masked_modules,
    _set_mask,
    _unregister_gradient_mask,
    _weight,
    prunable_layers,
)

__all__ = ["SparseLayer", "model_storage_bytes", "remove", "storage_report"]


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
