"""The pruning rules and :func:`prune`, which applies one pruning *step* of a rule to a model in place.

:func:`prune` dispatches on the type of its config through :data:`PRUNE_RULES` (:func:`register_prune_rule` adds a
rule), installs the masks (:mod:`._masks`), computes the certified degradation bound (:mod:`._bounds`) and returns a
:class:`PruneResult` named by the rule (``config.rule``; :data:`RULE_NAMES` maps names back to config types).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from .._utils import Registry
from ..errors import InvalidParameterError
from ._bounds import degradation_bound
from ._configs import (
    GradualMagnitudeConfig,
    LotteryTicketConfig,
    LqAdaptiveConfig,
    MagnitudeConfig,
    PruneConfig,
    SAPConfig,
)
from ._masks import _full_mask, _rows, _set_mask, _weight, current_sparsity, prunable_layers
from ._measures import pq_index, sap_retained_bound

__all__ = [
    "PRUNE_RULES",
    "RULE_NAMES",
    "PruneResult",
    "RuleStep",
    "prune",
    "prune_config_type",
    "register_prune_rule",
]


# ============================================================================================ results


@dataclass
class PruneResult:
    """What one call of :func:`prune` did.

    Attributes:
        method: Name of the rule, ``config.rule``: ``'oneshot'``, ``'lq'``, ``'sap'``, ``'gmp'`` or ``'lottery'``
            (the CLI's spellings; before this release ``'magnitude'``, ``'lq_adaptive'``, ``'gradual_magnitude'``
            and ``'lottery_ticket'``).
        masks: Copies of the new masks (bool tensors, True = kept), keyed by layer name.
        layer_sparsity: Achieved fraction pruned per layer.
        sparsity: Achieved fraction pruned over all selected weights.
        n_pruned: Number of pruned weights (cumulative, all selected layers).
        n_total: Number of selected weights.
        target_sparsity: The target of this step when the rule has one (None for SAP / budget mode).
        bound: Certified bound on ``max_k |f_k(x) − f̂_k(x)|`` for ``‖x‖_∞ ≤ input_bound`` between the model just
            before and just after this step (:func:`degradation_bound`); None when the architecture is not a
            supported chain (the reason is in ``details['bound_note']``).
        details: Rule-specific diagnostics (SAP: PQ index, m, ratios per unit; ℓ_q rule: ``k_j``, ``c_j``, the
            ℓ_q and tail bound terms per layer; ...).
    """

    method: str
    masks: dict[str, torch.Tensor]
    layer_sparsity: dict[str, float]
    sparsity: float
    n_pruned: int
    n_total: int
    target_sparsity: float | None = None
    bound: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-friendly summary (masks left out)."""
        return {
            "method": self.method,
            "sparsity": self.sparsity,
            "layer_sparsity": dict(self.layer_sparsity),
            "n_pruned": self.n_pruned,
            "n_total": self.n_total,
            "target_sparsity": self.target_sparsity,
            "bound": self.bound,
            "details": _jsonable(self.details),
        }


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray | torch.Tensor):
        arr = obj.detach().cpu().numpy() if isinstance(obj, torch.Tensor) else obj
        if arr.size > 64:
            return {
                "shape": list(arr.shape),
                "mean": float(arr.mean()),
                "min": float(arr.min()),
                "max": float(arr.max()),
            }
        return arr.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


# ============================================================================================ pruning rules


def _keep_top(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Bool mask keeping exactly the ``k`` largest entries of a 1-D score vector (ties broken by index)."""
    mask = torch.zeros_like(scores, dtype=torch.bool)
    if k > 0:
        order = torch.argsort(scores, descending=True, stable=True)
        mask[order[:k]] = True
    return mask


def _magnitude_scores(module: nn.Module) -> torch.Tensor:
    """|w| with already-pruned entries at −inf (so masks only ever shrink)."""
    w = _weight(module).detach()
    s = w.abs().to(torch.float64).reshape(-1)
    return s.masked_fill(~_full_mask(module).reshape(-1), -math.inf)


def _magnitude_masks(
    layers: list[tuple[str, nn.Module]], sparsity: float, scope: str
) -> dict[str, torch.Tensor]:
    """Masks keeping the largest |w| at the given sparsity (per layer or global); never revives pruned weights."""
    masks: dict[str, torch.Tensor] = {}
    if scope == "layer":
        for name, m in layers:
            scores = _magnitude_scores(m)
            n = scores.numel()
            alive = int(torch.isfinite(scores).sum())
            keep = min(alive, n - round(sparsity * n))
            masks[name] = _keep_top(scores, keep).reshape(_weight(m).shape)
        return masks
    all_scores = torch.cat([_magnitude_scores(m) for _, m in layers])
    n = all_scores.numel()
    alive = int(torch.isfinite(all_scores).sum())
    keep_all = _keep_top(all_scores, min(alive, n - round(sparsity * n)))
    start = 0
    for name, m in layers:
        size = _weight(m).numel()
        masks[name] = keep_all[start : start + size].reshape(_weight(m).shape)
        start += size
    return masks


def _outgoing_norms(
    layers: list[tuple[str, nn.Module]], index: int, norm: str
) -> tuple[NDArray[np.float64], str]:
    """``a_j`` for the neurons of ``layers[index]`` from the next prunable layer's (masked) weight columns."""
    name, module = layers[index]
    n_out = _weight(module).shape[0]
    if index + 1 >= len(layers):
        return np.ones(n_out), "last layer: a_j = 1"
    nxt_name, nxt = layers[index + 1]
    w = (_weight(nxt).detach() * _full_mask(nxt)).to(torch.float64)
    if isinstance(nxt, nn.Conv2d) and nxt.in_channels == n_out and nxt.groups == 1:
        cols = w.transpose(0, 1).reshape(n_out, -1)
        note = f"a_j from conv {nxt_name!r} input channel j"
    elif isinstance(nxt, nn.Linear) and nxt.in_features == n_out:
        cols = w.t()
        note = f"a_j from column j of {nxt_name!r}"
    elif isinstance(nxt, nn.Linear) and nxt.in_features % n_out == 0:
        # channel-major flatten after a conv: channel j owns a contiguous block of columns
        cols = w.reshape(w.shape[0], n_out, -1).transpose(0, 1).reshape(n_out, -1)
        note = f"a_j from the column block of channel j in {nxt_name!r}"
    else:
        return np.ones(n_out), f"next layer {nxt_name!r} does not chain with {name!r}: a_j = 1"
    a = cols.abs()
    if norm == "inf":
        vals = a.max(dim=1).values
    elif norm == "l1":
        vals = a.sum(dim=1)
    else:
        vals = torch.sqrt((a * a).sum(dim=1))
    return vals.cpu().numpy(), note


def _row_lq(w_rows: NDArray[np.float64], q: float) -> NDArray[np.float64]:
    """‖row‖_q for every row of a 2-D magnitude array (masked entries already 0)."""
    top = w_rows.max(axis=1)
    safe = np.where(top > 0, top, 1.0)
    return np.where(top > 0, safe * np.sum((w_rows / safe[:, None]) ** q, axis=1) ** (1.0 / q), 0.0)


def _allocate(
    c: NDArray[np.float64], lo: NDArray[np.int64], hi: NDArray[np.int64], q: float, total: int
) -> NDArray[np.int64]:
    """Integers ``lo ≤ k_j ≤ hi`` with ``Σ k_j = total`` and ``k_j ≈ κ c_j^q`` (bisection on κ, largest remainder)."""
    if total <= int(lo.sum()):
        return lo.copy()
    if total >= int(hi.sum()):
        return hi.copy()
    base = np.power(np.maximum(c, 0.0), q)
    positive = base > 0

    def counts(kappa: float) -> NDArray[np.float64]:
        return np.clip(kappa * base, lo, hi).astype(np.float64)

    # k(κ) is continuous and non-decreasing in κ; find κ with Σ k = total.
    lo_k, hi_k = 0.0, 1.0
    while counts(hi_k).sum() < total:
        hi_k *= 2.0
        if hi_k > 1e300 or not positive.any():
            break
    for _ in range(200):
        mid = 0.5 * (lo_k + hi_k)
        if counts(mid).sum() < total:
            lo_k = mid
        else:
            hi_k = mid
    real = counts(hi_k)
    k = np.floor(real).astype(np.int64)
    k = np.clip(k, lo, hi)
    short = total - int(k.sum())
    if short > 0:
        frac = np.where(k < hi, real - k, -np.inf)
        order = np.argsort(-frac, kind="stable")
        for j in order:
            if short == 0:
                break
            if k[j] < hi[j]:
                k[j] += 1
                short -= 1
        # still short only if fractional ties ran out; fill anywhere below the cap
        for j in np.argsort(-base, kind="stable"):
            if short == 0:
                break
            add = min(short, int(hi[j] - k[j]))
            k[j] += add
            short -= add
    elif short < 0:
        for j in np.argsort(real - np.floor(real), kind="stable"):
            if short == 0:
                break
            if k[j] > lo[j]:
                k[j] -= 1
                short += 1
    return k


def _lq_bound_terms(
    c: NDArray[np.float64], k: NDArray[np.int64], hi: NDArray[np.int64], q: float
) -> NDArray[np.float64]:
    """Per-neuron ℓ_q tail bound ``(q/(1−q)) c_j k_j^{1−1/q}`` (0 where nothing is removed; c_j at k_j = 0)."""
    out = np.zeros_like(c)
    removed = k < hi
    pos = removed & (k > 0)
    out[pos] = q / (1.0 - q) * c[pos] * k[pos].astype(np.float64) ** (1.0 - 1.0 / q)
    zero = removed & (k == 0)
    out[zero] = c[zero]
    return out


def _lq_adaptive(
    layers: list[tuple[str, nn.Module]], chain: list[tuple[str, nn.Module]], cfg: LqAdaptiveConfig
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    q = float(cfg.q)
    info: list[dict[str, Any]] = []
    position = {name: i for i, (name, _) in enumerate(chain)}
    for name, m in layers:
        w = _rows(_weight(m).detach()).to(torch.float64)
        alive = _rows(_full_mask(m))
        mag = (w.abs() * alive).cpu().numpy()
        a, note = _outgoing_norms(chain, position[name], cfg.outgoing_norm)
        c = a * _row_lq(mag, q)
        hi = alive.sum(dim=1).cpu().numpy().astype(np.int64)
        lo = np.minimum(hi, cfg.min_keep).astype(np.int64)
        info.append(
            {
                "name": name,
                "module": m,
                "mag": mag,
                "alive": alive,
                "a": a,
                "c": c,
                "lo": lo,
                "hi": hi,
                "note": note,
            }
        )

    scale = cfg.lipschitz * cfg.input_bound
    if cfg.sparsity is not None:
        s = float(cfg.sparsity)
        if cfg.scope == "layer":
            for d in info:
                n = d["mag"].size
                d["k"] = _allocate(d["c"], d["lo"], d["hi"], q, n - round(s * n))
        else:
            c_all = np.concatenate([d["c"] for d in info])
            lo_all = np.concatenate([d["lo"] for d in info])
            hi_all = np.concatenate([d["hi"] for d in info])
            n = sum(d["mag"].size for d in info)
            k_all = _allocate(c_all, lo_all, hi_all, q, n - round(s * n))
            start = 0
            for d in info:
                r = d["c"].size
                d["k"] = k_all[start : start + r]
                start += r
    else:
        budget = float(cfg.budget)  # type: ignore[arg-type]
        c_all = np.concatenate([d["c"] for d in info])
        lo_all = np.concatenate([d["lo"] for d in info])
        hi_all = np.concatenate([d["hi"] for d in info])
        base = np.power(c_all, q)

        def ks(kappa: float) -> NDArray[np.int64]:
            return np.clip(np.ceil(kappa * base), lo_all, hi_all).astype(np.int64)

        def bound(kappa: float) -> float:
            return scale * float(_lq_bound_terms(c_all, ks(kappa), hi_all, q).sum())

        lo_k, hi_k = 0.0, 1.0
        while bound(hi_k) > budget and hi_k < 1e300:
            hi_k *= 2.0
        for _ in range(200):
            mid = 0.5 * (lo_k + hi_k)
            if bound(mid) > budget:
                lo_k = mid
            else:
                hi_k = mid
        k_all = ks(hi_k)
        start = 0
        for d in info:
            r = d["c"].size
            d["k"] = k_all[start : start + r]
            start += r

    masks: dict[str, torch.Tensor] = {}
    per_layer: dict[str, Any] = {}
    for d in info:
        m = d["module"]
        mag = d["mag"]
        alive = d["alive"].cpu().numpy()
        k = d["k"]
        keep = np.zeros_like(alive, dtype=bool)
        scores = np.where(alive, mag, -np.inf)
        order = np.argsort(-scores, axis=1, kind="stable")
        for j in range(mag.shape[0]):
            keep[j, order[j, : int(k[j])]] = True
        removed_l1 = np.sum(np.where(keep, 0.0, mag), axis=1)
        lq_terms = _lq_bound_terms(d["c"], k, d["hi"], q)
        per_layer[d["name"]] = {
            "k": k.copy(),
            "c": d["c"].copy(),
            "a": d["a"].copy(),
            "a_note": d["note"],
            "lq_bound": scale * float(lq_terms.sum()),
            "tail_bound": scale * float(np.sum(d["a"] * removed_l1)),
        }
        masks[d["name"]] = torch.from_numpy(keep).reshape(_weight(m).shape)
    details = {
        "q": q,
        "layers": per_layer,
        "lq_bound_total": float(sum(v["lq_bound"] for v in per_layer.values())),
        "tail_bound_total": float(sum(v["tail_bound"] for v in per_layer.values())),
        "bound_reading": (
            "L·R·Σ_j a_j‖w_j − w_j,(k_j)‖_1 (tail) ≤ L·R·(q/(1−q))·Σ_j c_j k_j^{1−1/q} (lq), per layer; a certified "
            "bound on the output change only for a 2-layer net pruned in its first layer (our reading of Yang et "
            "al. 2022 — the paper body was not available)"
        ),
    }
    return masks, details


def _sap_units(layers: list[tuple[str, nn.Module]], scope: str) -> list[tuple[str, list[tuple[str, None]]]]:
    """Scope units (global or one per layer) as lists of (layer name, None = whole layer)."""
    if scope == "global":
        return [("global", [(name, None) for name, _ in layers])]
    return [(name, [(name, None)]) for name, _ in layers]


def _sap_step(
    layers: list[tuple[str, nn.Module]], cfg: SAPConfig, cap: int | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """One SAP step; with ``cap`` (milestones) the total number of newly pruned weights is at most ``cap``.

    Pass 1 computes every unit's SAP count ``⌊d c⌋`` (a unit = a neuron, a layer or everything); if their sum
    exceeds ``cap`` the counts are scaled down proportionally to sum to ``cap`` exactly (largest remainder, via
    :func:`_allocate` with exponent 1). Pass 2 prunes, in each unit, that many smallest unpruned magnitudes.
    """
    p, q, eta = float(cfg.p), float(cfg.q), float(cfg.eta)
    by_name = dict(layers)
    new_masks = {name: _rows(_full_mask(m)).clone() for name, m in layers}
    mags = {name: _rows(_weight(m).detach()).abs().to(torch.float64) for name, m in layers}
    unit_stats: list[dict[str, Any]] = []

    # ---- pass 1: SAP's own counts
    neuron_plans: list[dict[str, Any]] = []
    unit_plans: list[dict[str, Any]] = []
    if cfg.scope == "neuron":
        for name, _m in layers:
            mask_t = new_masks[name]
            mag_np = (mags[name] * mask_t).cpu().numpy()
            alive_np = mask_t.cpu().numpy().copy()
            d_rows = alive_np.sum(axis=1)
            pqi_rows = np.zeros(len(d_rows))
            m_rows = np.zeros(len(d_rows))
            proposed_rows = np.zeros(len(d_rows), dtype=np.int64)
            for j in range(len(d_rows)):
                dj = int(d_rows[j])
                if dj == 0:
                    continue
                row = mag_np[j, alive_np[j]]
                pqi_rows[j] = pq_index(row, p, q)
                m_rows[j] = math.ceil(sap_retained_bound(row, p, q, eta) - 1e-9)
                c_j = min(max(cfg.gamma * (1.0 - min(1.0, m_rows[j] / dj)), 0.0), cfg.beta)
                proposed_rows[j] = math.floor(dj * c_j)
            neuron_plans.append(
                {
                    "name": name,
                    "mag": mag_np,
                    "alive": alive_np,
                    "d_rows": d_rows,
                    "pqi_rows": pqi_rows,
                    "m_rows": m_rows,
                    "proposed": proposed_rows,
                }
            )
        proposed = (
            np.concatenate([plan["proposed"] for plan in neuron_plans])
            if neuron_plans
            else np.zeros(0, dtype=np.int64)
        )
    else:
        for unit, parts in _sap_units(layers, cfg.scope):
            vals = torch.cat([mags[name][new_masks[name]] for name, _ in parts])
            d = vals.numel()
            if d == 0:
                unit_plans.append({"unit": unit, "parts": parts, "vals": vals, "proposed": 0, "stats": None})
                continue
            v_np = vals.cpu().numpy()
            pqi = pq_index(v_np, p, q)
            m_bound = math.ceil(sap_retained_bound(v_np, p, q, eta) - 1e-9)
            ratio = min(1.0, m_bound / d)
            c = min(max(cfg.gamma * (1.0 - ratio), 0.0), cfg.beta)
            stats = {
                "unit": unit,
                "d": d,
                "pq_index": pqi,
                "m": m_bound,
                "retain_ratio": ratio,
                "prune_ratio": c,
            }
            unit_plans.append(
                {"unit": unit, "parts": parts, "vals": vals, "proposed": math.floor(d * c), "stats": stats}
            )
        proposed = np.array([plan["proposed"] for plan in unit_plans], dtype=np.int64)

    # ---- clip to the milestone
    n_proposed = int(proposed.sum())
    clipped = cap is not None and n_proposed > cap
    if clipped:
        assert cap is not None
        zeros = np.zeros_like(proposed)
        final = _allocate(proposed.astype(np.float64), zeros, proposed, 1.0, int(cap))
    else:
        final = proposed

    # ---- pass 2: prune the smallest unpruned magnitudes of each unit
    if cfg.scope == "neuron":
        start = 0
        for plan in neuron_plans:
            alive_np, mag_np = plan["alive"], plan["mag"]
            rows = alive_np.shape[0]
            counts = final[start : start + rows]
            start += rows
            order_np = np.argsort(np.where(alive_np, mag_np, np.inf), axis=1, kind="stable")
            for row_idx in np.flatnonzero(counts).tolist():
                alive_np[row_idx, order_np[row_idx, : int(counts[row_idx])]] = False
            new_masks[plan["name"]] = torch.from_numpy(alive_np)
            unit_stats.append(
                {
                    "unit": plan["name"],
                    "scope": "neuron",
                    "d_mean": float(plan["d_rows"].mean()),
                    "pq_index_mean": float(plan["pqi_rows"].mean()),
                    "m_mean": float(plan["m_rows"].mean()),
                    "n_proposed": int(plan["proposed"].sum()),
                    "n_pruned": int(counts.sum()),
                }
            )
    else:
        for plan, n_prune in zip(unit_plans, final.tolist(), strict=True):
            if plan["stats"] is None:
                unit_stats.append(
                    {"unit": plan["unit"], "d": 0, "pq_index": 0.0, "m": 0, "prune_ratio": 0.0, "n_pruned": 0}
                )
                continue
            vals, parts = plan["vals"], plan["parts"]
            if n_prune > 0:
                # prune exactly the n smallest unpruned magnitudes of the unit (ties by position)
                order = torch.argsort(vals, stable=True)[:n_prune]
                drop = torch.zeros(vals.numel(), dtype=torch.bool)
                drop[order] = True
                start = 0
                for name, _ in parts:
                    mask = new_masks[name]
                    cnt = int(mask.sum())
                    flat_idx = torch.nonzero(mask.reshape(-1)).reshape(-1)
                    sel = flat_idx[drop[start : start + cnt]]
                    flat = mask.reshape(-1).clone()
                    flat[sel] = False
                    new_masks[name] = flat.reshape(mask.shape)
                    start += cnt
            unit_stats.append({**plan["stats"], "n_proposed": plan["proposed"], "n_pruned": int(n_prune)})
    masks = {name: new_masks[name].reshape(_weight(by_name[name]).shape) for name, _ in layers}
    details = {
        "p": p,
        "q": q,
        "eta": eta,
        "gamma": cfg.gamma,
        "beta": cfg.beta,
        "scope": cfg.scope,
        "units": unit_stats,
        "n_proposed": n_proposed,
        "n_step": int(final.sum()),
        "clipped": bool(clipped),
    }
    return masks, details


def _sap_milestone(layers: list[tuple[str, nn.Module]], cfg: SAPConfig) -> tuple[float, int]:
    """Next milestone not yet reached and how many more weights reach it exactly (``round(m·n_total)`` pruned).

    A milestone missed by at most ``max(1, 10⁻⁴·n_total)`` weights (per-unit rounding of a clipped step) counts as
    reached, so no round is spent pruning a handful of weights."""
    assert cfg.milestones is not None
    total = sum(_weight(m).numel() for _, m in layers)
    pruned = sum(int((~_full_mask(m)).sum()) for _, m in layers)
    slack = max(1, round(1e-4 * total))
    for milestone in cfg.milestones:
        goal = round(milestone * total)
        if goal - pruned > slack:
            return milestone, goal - pruned
    raise InvalidParameterError(
        f"the SAP milestones are exhausted: the model is already at sparsity {pruned / total:.4f} "
        f"(milestones {cfg.milestones})"
    )


def _lt_target(layers: list[tuple[str, nn.Module]], cfg: LotteryTicketConfig) -> float:
    """Next cumulative sparsity of the schedule strictly above the current one."""
    sizes = [_weight(m).numel() for _, m in layers]
    total = sum(sizes)
    pruned = sum(int((~_full_mask(m)).sum()) for _, m in layers)
    current = pruned / total
    # per-layer rounding can leave the achieved sparsity up to 1/n_layer below a reached target
    tol = 1.0 / min(sizes) if cfg.scope == "layer" else 1.0 / total
    for s in cfg.schedule():
        if s > current + tol:
            return s
    raise InvalidParameterError(
        f"the lottery-ticket schedule is exhausted: the model is already at sparsity {current:.4f} "
        f"(schedule {cfg.schedule()})"
    )


def _criterion_masks(
    model: nn.Module,
    selected: list[tuple[str, nn.Module]],
    target: float,
    scope: str,
    criterion: str,
    q: float,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Masks at sparsity ``target`` chosen by magnitude or by the neuron-wise ℓ_q allocation of :func:`_lq_adaptive`.

    The ℓ_q branch is :class:`LqAdaptiveConfig` with ``sparsity=target`` (and the defaults ``min_keep=1``,
    ``outgoing_norm='inf'``) applied to the current unpruned weights: it never revives a pruned weight.
    """
    if criterion == "magnitude":
        return _magnitude_masks(selected, target, scope), {"criterion": "magnitude"}
    lq_cfg = LqAdaptiveConfig(sparsity=target, q=q, scope="global" if scope == "global" else "layer")
    masks, lq_details = _lq_adaptive(selected, prunable_layers(model), lq_cfg)
    return masks, {"criterion": "lq", "lq": lq_details}


@dataclass
class RuleStep:
    """What a pruning rule's handler returns to :func:`prune`: the new masks (True = kept) of the selected
    layers, rule-specific ``details`` and the step's target sparsity (None when the rule has none)."""

    masks: dict[str, torch.Tensor]
    details: dict[str, Any] = field(default_factory=dict)
    target: float | None = None


PruneRule: TypeAlias = Callable[[nn.Module, list[tuple[str, nn.Module]], Any, "int | None"], RuleStep]

PRUNE_RULES: Registry[type, PruneRule] = Registry("pruning config")
"""Config type → handler (:func:`register_prune_rule`); :func:`prune` dispatches on the type of its config."""

RULE_NAMES: Registry[str, type] = Registry(
    "pruning rule",
    aliases={
        "magnitude": "oneshot",
        "lq_adaptive": "lq",
        "gradual_magnitude": "gmp",
        "lottery_ticket": "lottery",
    },
)
"""Rule name (``config.rule``, ``PruneResult.method``, the CLI's spelling) → config type. The spellings of the
results before this release (``magnitude``, ``lq_adaptive``, ``gradual_magnitude``, ``lottery_ticket``) resolve
with a deprecation warning."""


def register_prune_rule(config_type: type) -> Callable[[PruneRule], PruneRule]:
    """Decorator: register the handler of a pruning config type (a frozen :class:`~rmtcompress._utils.Config`
    dataclass with a class-level ``rule`` name); :func:`prune` dispatches to it.

    The handler is called as ``handler(model, selected, config, step)`` (``selected``: the ``(name, module)``
    pairs to prune, ``step``: the ``step=`` argument of :func:`prune`) and returns a :class:`RuleStep`. It must
    not revive pruned weights; :func:`prune` installs the masks, computes the bound and the result.
    """

    def deco(handler: PruneRule) -> PruneRule:
        name = getattr(config_type, "rule", None)
        if not isinstance(name, str) or not name:
            raise InvalidParameterError(
                f"{config_type.__name__} needs a class-level rule name (rule: ClassVar[str])"
            )
        PRUNE_RULES.register(config_type)(handler)
        RULE_NAMES.register(name)(config_type)
        return handler

    return deco


def prune_config_type(name: str) -> type:
    """The config class of the pruning rule called ``name`` (``'oneshot'``, ``'lq'``, ``'sap'``, ``'gmp'``,
    ``'lottery'``); the old result spellings warn (RmtcompressDeprecationWarning)."""
    return RULE_NAMES.get(name)


@register_prune_rule(MagnitudeConfig)
def _oneshot_rule(
    model: nn.Module, selected: list[tuple[str, nn.Module]], config: MagnitudeConfig, step: int | None
) -> RuleStep:
    target = float(config.sparsity)
    return RuleStep(_magnitude_masks(selected, target, config.scope), {}, target)


@register_prune_rule(LqAdaptiveConfig)
def _lq_rule(
    model: nn.Module, selected: list[tuple[str, nn.Module]], config: LqAdaptiveConfig, step: int | None
) -> RuleStep:
    masks, details = _lq_adaptive(selected, prunable_layers(model), config)
    return RuleStep(masks, details, None if config.sparsity is None else float(config.sparsity))


@register_prune_rule(SAPConfig)
def _sap_rule(
    model: nn.Module, selected: list[tuple[str, nn.Module]], config: SAPConfig, step: int | None
) -> RuleStep:
    if config.milestones is None:
        masks, details = _sap_step(selected, config)
        return RuleStep(masks, details)
    milestone, cap = _sap_milestone(selected, config)
    masks, details = _sap_step(selected, config, cap=cap)
    details["next_milestone"] = milestone
    # landed exactly on the milestone (clipped, or SAP's own count)
    return RuleStep(masks, details, milestone if details["n_step"] == cap else None)


@register_prune_rule(GradualMagnitudeConfig)
def _gmp_rule(
    model: nn.Module, selected: list[tuple[str, nn.Module]], config: GradualMagnitudeConfig, step: int | None
) -> RuleStep:
    if step is None:
        raise InvalidParameterError(
            "prune(..., GradualMagnitudeConfig) needs step= (optimizer steps completed)"
        )
    if config.layer_sparsity is None:
        target = config.sparsity_at(int(step))
        masks, details = _criterion_masks(model, selected, target, config.scope, config.criterion, config.q)
    else:  # one schedule per layer
        names = {n for n, _ in selected}
        unknown = sorted(set(config.layer_targets()) - names)
        if unknown:
            raise InvalidParameterError(
                f"layer_sparsity names {unknown}, which this step does not prune; pruned layers are {sorted(names)}"
            )
        masks = {}
        per_layer: dict[str, Any] = {}
        for name, m in selected:
            layer_masks, per_layer[name] = _criterion_masks(
                model, [(name, m)], config.sparsity_at(int(step), name), "layer", config.criterion, config.q
            )
            masks.update(layer_masks)
        sizes = {n: _weight(m).numel() for n, m in selected}
        goals = {n: config.sparsity_at(int(step), n) for n in sizes}
        target = sum(goals[n] * k for n, k in sizes.items()) / sum(sizes.values())
        details = {"layers": per_layer, "layer_targets": goals}
    details["step"] = int(step)
    return RuleStep(masks, details, target)


@register_prune_rule(LotteryTicketConfig)
def _lottery_rule(
    model: nn.Module, selected: list[tuple[str, nn.Module]], config: LotteryTicketConfig, step: int | None
) -> RuleStep:
    target = _lt_target(selected, config)
    masks, details = _criterion_masks(model, selected, target, config.scope, config.criterion, config.q)
    return RuleStep(masks, details, target)


def prune(
    model: nn.Module,
    config: PruneConfig,
    *,
    step: int | None = None,
    layers: Iterable[str] | None = None,
) -> PruneResult:
    """Apply one pruning step to ``model`` in place: update the ``weight_mask`` buffers and zero pruned weights.

    Masks only ever shrink: weights already pruned stay pruned (a target below the current sparsity keeps them).
    The rule is the handler registered for ``type(config)`` (:func:`register_prune_rule`):

    * :class:`MagnitudeConfig` (``'oneshot'``): one-shot, exact count.
    * :class:`LqAdaptiveConfig` (``'lq'``): the ℓ_q neuron-wise rule; ``result.details`` holds ``k_j``, ``c_j``
      and the per-layer ℓ_q / tail bound terms.
    * :class:`SAPConfig` (``'sap'``): one SAP step (the training loop applies ``config.rounds`` of them); with
      ``milestones`` clipped so as not to pass the next milestone (``target_sparsity`` = that milestone when the
      step lands on it, else None; ``details['clipped']`` says whether SAP's counts were scaled down).
    * :class:`GradualMagnitudeConfig` (``'gmp'``): pruning to ``config.sparsity_at(step)`` (``step`` required) by
      magnitude or, with ``criterion='lq'``, by the neuron-wise ℓ_q allocation.
    * :class:`LotteryTicketConfig` (``'lottery'``): pruning to the next sparsity of ``config.schedule()`` above the
      current one (magnitude or ℓ_q criterion; rewinding is the training loop's job, see :func:`rewind_to`).

    Args:
        model: The model (modified in place).
        config: One of the config dataclasses.
        step: Optimizer steps completed (gradual magnitude only).
        layers: Optional names of the layers to prune (default: every ``nn.Linear`` / ``nn.Conv2d``).

    Returns:
        A :class:`PruneResult` whose ``method`` is the rule's name (``config.rule``).

    Raises:
        InvalidParameterError: If the model has no prunable layer, ``config`` has no registered rule, ``step`` is
            missing for the gradual schedule, or the lottery-ticket schedule / SAP milestones are exhausted.
    """
    kind = next((k for k in type(config).__mro__ if k in PRUNE_RULES), None)
    if kind is None:
        raise InvalidParameterError(
            f"unknown pruning config {type(config).__name__}; expected one of {', '.join(PRUNE_RULES.names())}"
        )
    handler = PRUNE_RULES.get(kind)
    selected = prunable_layers(model, layers)
    ruled = handler(model, selected, config, step)
    masks, details = ruled.masks, ruled.details

    lipschitz = config.lipschitz if isinstance(config, LqAdaptiveConfig) else 1.0
    input_bound = config.input_bound if isinstance(config, LqAdaptiveConfig) else 1.0
    bound: float | None
    try:
        bound = degradation_bound(model, masks, input_bound=input_bound, lipschitz=lipschitz)
    except ValueError as exc:
        bound = None
        details["bound_note"] = str(exc)

    by_name = dict(selected)
    for name, mask in masks.items():
        _set_mask(by_name[name], mask)
    overall, per_layer = current_sparsity(model, [n for n, _ in selected])
    n_total = sum(_weight(m).numel() for _, m in selected)
    n_pruned = sum(int((~_full_mask(m)).sum()) for _, m in selected)
    return PruneResult(
        method=kind.rule,  # type: ignore[attr-defined]
        masks={k: v.detach().clone() for k, v in masks.items()},
        layer_sparsity=per_layer,
        sparsity=overall,
        n_pruned=n_pruned,
        n_total=n_total,
        target_sparsity=ruled.target,
        bound=bound,
        details=details,
    )
