"""Per-layer sparsity allocation on the bytes axis (issue 20, part 3): pure functions of weight arrays.

An **allocation rule** turns the trained weights of the prunable layers into a monotone family of per-layer keep
counts ``k_l(λ)``, ``0 ≤ λ ≤ λ_max``, with ``k_l(λ_max) = n_l`` (every weight kept). :func:`fit_allocation` then
finds, by bisection on λ, the largest counts whose predicted storage fits a byte budget. The rules (registry
:data:`ALLOCATIONS`):

* ``"uniform"`` — every layer at the same density: ``k_l = λ n_l`` (layer-wise magnitude pruning's allocation).
* ``"global"`` — one magnitude threshold across layers: ``k_l = #{|w| ≥ t}`` with ``t`` the ``λ``-th largest
  magnitude overall (global magnitude pruning's allocation).
* ``"pq"`` — by the PQ index (Diao et al., ICLR 2023): SAP's retained-count bound of layer l at ``p = ½, q = 1``,
  ``m_l = n_l (1 − I_l)`` (methods.md §3.3), is the number of weights the layer needs; ``k_l = min(n_l, λ m_l)``.
  A more compressible layer (larger PQ index) keeps fewer of its weights.
* ``"lq"`` — by the ℓ_q quasi-norm (our reading of Yang et al. 2022, as in
  :class:`~rmtcompress.pruning.LqAdaptiveConfig` with ``scope='global'``): neuron j of layer l keeps
  ``min(fan_in, λ c_j^q)`` weights with ``c_j = a_j ‖w_j‖_q`` (``a_j`` the largest outgoing magnitude, 1 for the
  output layer); ``k_l`` sums them over the layer's neurons.

The byte predictor (:func:`predict_layer_bits`) counts what a pruned, weight-quantized layer stores and is
independent of the rule: the positions of the kept weights at their order-0 entropy ``n h₂(k/n)`` bits plus
``bits`` per kept weight for the codes. Fixed costs (codebooks, biases, the container's header) do not depend on λ
and are passed in as ``overhead_bits``; the caller measures them once on a real file and corrects the prediction
with the exact file size (:func:`rmtcompress.shrink.shrink` does).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .._utils import Registry
from ..errors import InvalidParameterError
from ..pruning import lq_norm, pq_index

__all__ = [
    "ALLOCATIONS",
    "Allocation",
    "allocation_names",
    "fit_allocation",
    "predict_layer_bits",
    "register_allocation",
]

CountsFn = Callable[[float], NDArray[np.int64]]


@dataclass(frozen=True)
class Allocation:
    """A monotone family of per-layer keep counts: ``counts(λ)`` for ``0 ≤ λ ≤ lam_max``.

    Attributes:
        rule: Name of the rule that built it.
        sizes: Number of weights per layer ``n_l``.
        counts: λ ↦ keep counts (int64, non-decreasing in λ, ``counts(lam_max) == sizes``).
        lam_max: The λ at which every weight is kept.
        weights: The rule's per-layer measure, for reports (PQ index, ℓ_q mass, …; empty if none).
    """

    rule: str
    sizes: tuple[int, ...]
    counts: CountsFn
    lam_max: float
    weights: tuple[float, ...] = ()


def _rows(w: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.abs(np.asarray(w, dtype=np.float64)).reshape(w.shape[0], -1)


def _uniform(weights: Sequence[NDArray[np.float64]]) -> Allocation:
    sizes = np.array([w.size for w in weights], dtype=np.int64)

    def counts(lam: float) -> NDArray[np.int64]:
        return np.minimum(sizes, np.round(lam * sizes)).astype(np.int64)

    return Allocation("uniform", tuple(int(s) for s in sizes), counts, 1.0)


def _global(weights: Sequence[NDArray[np.float64]]) -> Allocation:
    sizes = np.array([w.size for w in weights], dtype=np.int64)
    mags = [np.sort(np.abs(np.asarray(w, dtype=np.float64)).reshape(-1)) for w in weights]
    everything = np.sort(np.concatenate(mags))[::-1]
    total = everything.size

    def counts(lam: float) -> NDArray[np.int64]:
        k = round(min(max(lam, 0.0), 1.0) * total)
        if k <= 0:
            return np.zeros(len(weights), dtype=np.int64)
        t = everything[k - 1]
        return np.array([m.size - np.searchsorted(m, t, side="left") for m in mags], dtype=np.int64)

    return Allocation("global", tuple(int(s) for s in sizes), counts, 1.0)


def _pq(weights: Sequence[NDArray[np.float64]]) -> Allocation:
    sizes = np.array([w.size for w in weights], dtype=np.int64)
    index = np.array([pq_index(np.asarray(w), 0.5, 1.0) for w in weights])
    need = np.maximum(sizes * (1.0 - index), 1.0)  # SAP's m at p = ½, q = 1, η = 0

    def counts(lam: float) -> NDArray[np.int64]:
        return np.minimum(sizes, np.round(lam * need)).astype(np.int64)

    return Allocation(
        "pq", tuple(int(s) for s in sizes), counts, float(np.max(sizes / need)), tuple(index.tolist())
    )


def _lq(weights: Sequence[NDArray[np.float64]], q: float = 0.5) -> Allocation:
    sizes = np.array([w.size for w in weights], dtype=np.int64)
    rows = [_rows(w) for w in weights]
    per_layer: list[NDArray[np.float64]] = []
    for i, r in enumerate(rows):
        if i + 1 < len(rows) and rows[i + 1].shape[1] % r.shape[0] == 0:
            nxt = rows[i + 1].reshape(rows[i + 1].shape[0], r.shape[0], -1)
            a = nxt.max(axis=(0, 2))  # largest outgoing magnitude of each neuron / channel
        else:
            a = np.ones(r.shape[0])
        c = a * np.array([lq_norm(row, q) for row in r])
        per_layer.append(np.power(np.maximum(c, 0.0), q))
    fan_in = [r.shape[1] for r in rows]
    positive = [b[b > 0] for b in per_layer]
    smallest = min((float(b.min()) for b in positive if b.size), default=1.0)
    lam_max = max(fan_in) / smallest

    def counts(lam: float) -> NDArray[np.int64]:
        return np.array(
            [
                min(int(n), int(np.sum(np.minimum(f, np.round(lam * b)))))
                for n, f, b in zip(sizes, fan_in, per_layer, strict=True)
            ],
            dtype=np.int64,
        )

    mass = tuple(float(b.sum()) for b in per_layer)
    return Allocation("lq", tuple(int(s) for s in sizes), counts, float(lam_max), mass)


AllocationRule = Callable[[Sequence[NDArray[np.float64]]], Allocation]

ALLOCATIONS: Registry[str, AllocationRule] = Registry("allocation rule")
"""Allocation rules by name: weight arrays of the prunable layers → :class:`Allocation`."""
ALLOCATIONS.add("uniform", _uniform)
ALLOCATIONS.add("global", _global)
ALLOCATIONS.add("pq", _pq)
ALLOCATIONS.add("lq", _lq)


def register_allocation(name: str, rule: AllocationRule) -> None:
    """Add an allocation rule under ``name`` (refused if the name is taken)."""
    if not isinstance(name, str) or not name:
        raise InvalidParameterError(f"an allocation name must be a non-empty string; got {name!r}")
    ALLOCATIONS.add(name, rule)


def allocation_names() -> tuple[str, ...]:
    """The registered allocation rules."""
    return ALLOCATIONS.names()


def _h2(p: NDArray[np.float64]) -> NDArray[np.float64]:
    p = np.clip(p, 0.0, 1.0)
    out = np.zeros_like(p)
    inner = (p > 0) & (p < 1)
    q = p[inner]
    out[inner] = -q * np.log2(q) - (1 - q) * np.log2(1 - q)
    return out


def predict_layer_bits(
    sizes: NDArray[np.int64], counts: NDArray[np.int64], bits: float
) -> NDArray[np.float64]:
    """Predicted payload bits per layer: positions at their order-0 entropy plus ``bits`` per kept weight.

    Args:
        sizes: Weights per layer ``n_l``.
        counts: Kept weights per layer ``k_l``.
        bits: Code bits per kept weight (an upper bound of the codes' entropy; 32 for float32 values).

    Returns:
        ``n_l h₂(k_l/n_l) + bits·k_l`` per layer.
    """
    n = np.asarray(sizes, dtype=np.float64)
    k = np.asarray(counts, dtype=np.float64)
    return n * _h2(k / np.maximum(n, 1.0)) + float(bits) * k


def fit_allocation(
    allocation: Allocation,
    budget_bits: float,
    bits: float,
    *,
    overhead_bits: float = 0.0,
    min_counts: NDArray[np.int64] | None = None,
) -> NDArray[np.int64]:
    """The largest keep counts of ``allocation`` whose predicted storage fits ``budget_bits``.

    Args:
        allocation: The rule's family of counts.
        budget_bits: Total budget in bits.
        bits: Code bits per kept weight.
        overhead_bits: Fixed bits (codebooks, biases, header) subtracted from the budget first.
        min_counts: Per-layer lower bounds on the counts (default 1 per layer, so no layer is cut off).

    Returns:
        Keep counts per layer (int64).

    Raises:
        InvalidParameterError: If even ``min_counts`` does not fit (the message gives the smallest size).
    """
    sizes = np.array(allocation.sizes, dtype=np.int64)
    floor = np.ones_like(sizes) if min_counts is None else np.minimum(np.asarray(min_counts), sizes)

    def cost(lam: float) -> float:
        k = np.maximum(allocation.counts(lam), floor)
        return float(predict_layer_bits(sizes, k, bits).sum()) + overhead_bits

    smallest = cost(0.0)
    if smallest > budget_bits:
        raise InvalidParameterError(
            f"a budget of {budget_bits / 8:,.0f} B is below the smallest model this allocation reaches "
            f"({math.ceil(smallest / 8):,} B predicted)"
        )
    lo, hi = 0.0, float(allocation.lam_max)
    if cost(hi) <= budget_bits:
        return np.maximum(allocation.counts(hi), floor)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if cost(mid) <= budget_bits:
            lo = mid
        else:
            hi = mid
    return np.maximum(allocation.counts(lo), floor)
