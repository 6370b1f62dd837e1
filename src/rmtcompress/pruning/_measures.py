"""ℓ_q compressibility measures: pure functions of a weight array (NumPy or torch, always flattened), and their
per-neuron / per-layer / whole-model summary over a model's prunable weights.

:func:`lq_norm`, :func:`pq_index` (Diao et al., ICLR 2023), :func:`sap_retained_bound` (the retained-count lower
bound ``m`` of SAP), :func:`gini_index`, :func:`lq_tail_bound`, and :func:`compressibility`, which summarises them
per neuron, per layer and for the whole model over every ``nn.Linear`` / ``nn.Conv2d`` weight.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from ..errors import InvalidParameterError
from ._masks import _full_mask, _rows, _weight, prunable_layers

__all__ = ["compressibility", "gini_index", "lq_norm", "lq_tail_bound", "pq_index", "sap_retained_bound"]

ArrayLikeW: TypeAlias = NDArray[Any] | torch.Tensor | Sequence[float]


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
