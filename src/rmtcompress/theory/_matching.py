"""NTK-LC activation matching (Gu et al. 2022, Corollary 1 / Algorithm 1; methods.md §1.9–1.12).

For an original net (σ_1, …, σ_L) at input scale τ_0 the compressed net uses step activations whose Gaussian
moments, evaluated at the compressed net's *own* running scale τ̃_{ℓ−1}, reproduce the original's at τ_{ℓ−1}:

* hidden layers ℓ < L, σ_T(t) = a·(1{t < s1} + 1{t > s2}):   E[σ']² = d1,  E[σ'']² = d2,  E[σ'² + σ̄σ''] = curv
  (optionally a soft (Var − τ_ℓ²) term, ``tau_anchor``, that pulls τ̃_ℓ towards τ_ℓ; with ``hidden="sigma_q"`` this
  narrows the last layer's infeasibility gap, but for 3×ReLU does not close it);
* last layer ℓ = L, σ_Q(t) = b1·(1{t<r1} + 1{t>r4}) + b2·1{r2 ≤ t ≤ r3}, r4 − r3 = r2 − r1:
  Var = τ_L², E[σ']² = d1, E[σ'']² = d2 (+ Q = 2·curv in the paper's formulation, where b1 = b2 = b is fixed by the
  amplitude identity b² = Q²/E''² + 4V of {0, b}-valued functions; ``last_layer="free"`` frees b1, b2 instead).

Equations are solved by seeded multi-start ``scipy.optimize.least_squares`` on relative residuals (weight 1 for hard
conditions, ``soft_weight`` for soft ones); the best start wins. Every equation's target, achieved value and
residual is reported; a hard condition left above ``tol`` marks the match infeasible, with the reason. Hard
conditions are solved first; soft ones are then minimised subject to them (SLSQP), so an unreachable soft condition
never degrades a reachable hard one.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import least_squares, minimize

from .._utils import check_tau
from ..core import Activation, StepActivation, resolve_activations, sigma_q, sigma_t
from ..errors import InvalidParameterError, MatchWarning
from ._moments import GaussianMoments, gaussian_moments

__all__ = ["EquationResidual", "LayerMatch", "MatchReport", "MatchWarning", "match_activations"]

_SQRT_2PI = math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class EquationResidual:
    """One matching equation.

    Attributes:
        name: ``d1`` (E[σ']²), ``d2`` (E[σ'']²), ``curv`` (E[σ'² + σ̄σ'']), ``Q`` (2·curv) or ``tau`` (Var = τ²).
        target: the original net's value (at τ_{ℓ−1}).
        achieved: the compressed activation's value (at τ̃_{ℓ−1}).
        residual: achieved − target.
        relative: residual / max(|target|, 1e-12).
        hard: whether the condition is required.
    """

    name: str
    target: float
    achieved: float
    residual: float
    relative: float
    hard: bool


@dataclass(frozen=True)
class LayerMatch:
    """Matching result of one layer."""

    layer: int
    kind: str
    params: dict[str, Any]
    activation: StepActivation
    tau_in_original: float
    tau_in_compressed: float
    tau_out_original: float
    tau_out_compressed: float
    center: float
    equations: tuple[EquationResidual, ...]
    feasible: bool
    note: str = ""

    @property
    def max_hard_residual(self) -> float:
        """Largest |relative residual| among hard equations."""
        return max((abs(e.relative) for e in self.equations if e.hard), default=0.0)


@dataclass(frozen=True)
class MatchReport:
    """Per-layer matching report of an NTK-LC compression."""

    layers: tuple[LayerMatch, ...]
    tau0: float
    mode: dict[str, Any] = field(default_factory=dict)

    @property
    def activations(self) -> list[StepActivation]:
        """The matched step activations, one per layer."""
        return [lm.activation for lm in self.layers]

    @property
    def centers(self) -> np.ndarray:
        """Centring constants E[σ̃_ℓ(τ̃_{ℓ−1}ξ)]."""
        return np.array([lm.center for lm in self.layers])

    @property
    def max_residual(self) -> float:
        """Largest |relative residual| over every equation of every layer (hard and soft)."""
        return max(abs(e.relative) for lm in self.layers for e in lm.equations)

    @property
    def max_hard_residual(self) -> float:
        """Largest |relative residual| over the hard equations."""
        return max(lm.max_hard_residual for lm in self.layers)

    @property
    def feasible(self) -> bool:
        """True when every hard equation is met to tolerance."""
        return all(lm.feasible for lm in self.layers)

    @property
    def explanation(self) -> str:
        """Why the infeasible layers are infeasible (empty when feasible)."""
        return "\n".join(f"layer {lm.layer}: {lm.note}" for lm in self.layers if lm.note)

    def table(self) -> str:
        """Human-readable table: one row per equation."""
        head = f"{'layer':>5} {'kind':>8} {'eq':>5} {'target':>12} {'achieved':>12} {'rel.resid':>10} {'hard':>5}  τ→τ̃"
        rows = [head, "-" * len(head)]
        for lm in self.layers:
            for i, e in enumerate(lm.equations):
                taus = f"  {lm.tau_in_original:.4f}→{lm.tau_in_compressed:.4f}" if i == 0 else ""
                rows.append(
                    f"{lm.layer:>5} {lm.kind:>8} {e.name:>5} {e.target:>12.6g} {e.achieved:>12.6g} "
                    f"{e.relative:>10.2e} {'yes' if e.hard else 'no':>5}{taus}"
                )
        rows.append(f"max relative residual {self.max_residual:.3e}; feasible: {self.feasible}")
        if self.explanation:
            rows.append(self.explanation)
        return "\n".join(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "tau0": self.tau0,
            "mode": self.mode,
            "feasible": self.feasible,
            "max_residual": self.max_residual,
            "max_hard_residual": self.max_hard_residual,
            "layers": [
                {
                    "layer": lm.layer,
                    "kind": lm.kind,
                    "params": lm.params,
                    "tau_in_original": lm.tau_in_original,
                    "tau_in_compressed": lm.tau_in_compressed,
                    "tau_out_original": lm.tau_out_original,
                    "tau_out_compressed": lm.tau_out_compressed,
                    "center": lm.center,
                    "feasible": lm.feasible,
                    "note": lm.note,
                    "equations": [e.__dict__ for e in lm.equations],
                }
                for lm in self.layers
            ],
        }


def _value(name: str, m: GaussianMoments) -> float:
    if name == "d1":
        return m.d1**2
    if name == "d2":
        return m.d2**2
    if name == "curv":
        return m.curv
    if name == "Q":
        return 2.0 * m.curv
    if name == "tau":
        return m.var
    raise InvalidParameterError(f"unknown matching condition {name!r}")


_CONDITIONS = ("d1", "d2", "curv", "Q", "tau")


def _solve(
    build: Callable[[np.ndarray], StepActivation],
    n_params: int,
    tau: float,
    targets: dict[str, float],
    weights: dict[str, float],
    starts: np.ndarray,
    relative: bool = True,
) -> tuple[np.ndarray, float]:
    names = list(targets)
    scale = np.array([max(abs(targets[k]), 1e-12) if relative else 1.0 for k in names])
    w = np.array([weights[k] for k in names])
    tgt = np.array([targets[k] for k in names])

    def resid(x: np.ndarray) -> np.ndarray:
        try:
            m = gaussian_moments(build(x), tau)
        except ValueError:
            return np.full(len(names), 1e6)
        vals = np.array([_value(k, m) for k in names])
        return w * (vals - tgt) / scale

    best_x, best_cost = starts[0], math.inf
    for x0 in starts:
        try:
            sol = least_squares(
                resid,
                x0,
                method="lm" if len(names) >= n_params else "trf",
                xtol=1e-15,
                ftol=1e-15,
                gtol=1e-15,
                max_nfev=500,
            )
        except ValueError:
            continue
        if sol.cost < best_cost:
            best_x, best_cost = sol.x, float(sol.cost)
        if best_cost < 1e-28:
            break
    return best_x, best_cost


def _solve_hard_soft(
    build: Callable[[np.ndarray], StepActivation],
    n_params: int,
    tau: float,
    targets: dict[str, float],
    weights: dict[str, float],
    hard: set[str],
    starts: np.ndarray,
    relative: bool,
    tol: float,
) -> np.ndarray:
    """Hard conditions first (least squares on them alone); if they can be met, minimise the weighted soft
    residuals subject to them (SLSQP equality constraints); otherwise the weighted compromise of everything."""
    hard_t = {k: v for k, v in targets.items() if k in hard}
    soft_t = {k: v for k, v in targets.items() if k not in hard}
    if not hard_t or not soft_t:
        return _solve(build, n_params, tau, targets, weights, starts, relative)[0]
    scale = {k: max(abs(v), 1e-12) if relative else 1.0 for k, v in targets.items()}

    def rel(x: np.ndarray, names: dict[str, float]) -> np.ndarray:
        try:
            m = gaussian_moments(build(x), tau)
        except ValueError:
            return np.full(len(names), 1e6)
        return np.array([(_value(k, m) - v) / scale[k] for k, v in names.items()])

    x_h, _ = _solve(build, n_params, tau, hard_t, {k: 1.0 for k in hard_t}, starts, relative)
    if (
        np.max(
            np.abs(
                rel(x_h, hard_t)
                * np.array([scale[k] for k in hard_t])
                / [max(abs(v), 1e-12) for v in hard_t.values()]
            )
        )
        > tol
    ):
        return _solve(build, n_params, tau, targets, weights, starts, relative)[0]
    w_soft = np.array([weights[k] for k in soft_t])
    res = minimize(
        lambda x: float(np.sum((w_soft * rel(x, soft_t)) ** 2)),
        x_h,
        method="SLSQP",
        constraints=[{"type": "eq", "fun": lambda x: rel(x, hard_t)}],
        options={"maxiter": 300, "ftol": 1e-14},
    )
    hard_ok = (
        np.max(
            np.abs(
                rel(res.x, hard_t)
                * np.array([scale[k] for k in hard_t])
                / [max(abs(v), 1e-12) for v in hard_t.values()]
            )
        )
        <= tol
    )
    return res.x if hard_ok else x_h


def _sigma_t_from(x: np.ndarray, tau: float) -> StepActivation:
    s1 = float(x[0]) * tau
    s2 = s1 + float(x[1]) ** 2 * tau
    return sigma_t(s1, s2, float(x[2]))


def _sigma_q_from(x: np.ndarray, tau: float, b: float | None) -> StepActivation:
    r1 = float(x[0]) * tau
    g1 = float(x[1]) ** 2 * tau
    g2 = float(x[2]) ** 2 * tau
    b1, b2 = (b, b) if b is not None else (float(x[3]), float(x[4]))
    return sigma_q(r1, r1 + g1, r1 + g1 + g2, r1 + 2 * g1 + g2, b1, b2)


def _explain(
    targets: dict[str, float], tau_in: float, tau_in_orig: float, b: float | None, hard: set[str]
) -> str:
    """Why a layer's hard conditions cannot all hold (rigorous Hermite bound first, then the amplitude bound)."""
    parts = []
    if {"tau", "d1", "d2"} <= hard:
        # Var σ(τ̃ξ) = Σ_k c_k², c_1 = τ̃ E[σ'], c_2 = τ̃² E[σ'']/√2  ⇒  Var ≥ τ̃² d1 + τ̃⁴ d2 / 2
        bound = tau_in**2 * targets["d1"] + 0.5 * tau_in**4 * targets["d2"]
        if targets["tau"] < bound:
            parts.append(
                f"the target variance τ² = {targets['tau']:.4g} is below the Hermite lower bound "
                f"τ̃²·d1 + τ̃⁴·d2/2 = {bound:.4g} that any activation with these d1, d2 has at the compressed input "
                f"scale τ̃ = {tau_in:.4g} (original {tau_in_orig:.4g}): no activation can match; make 'tau' soft, or "
                "pull τ̃ towards τ in the hidden layers (tau_anchor > 0, hidden='sigma_q'; this narrows the gap "
                "but did not close it for 3×ReLU)"
            )
    if b is not None and "d1" in hard and math.sqrt(targets["d1"]) > b / (_SQRT_2PI * tau_in):
        parts.append(
            f"E[σ'] = {math.sqrt(targets['d1']):.4g} is unreachable: a {{0, b}}-valued step function has "
            f"|E[σ']| ≤ b/(√(2π)τ̃) = {b / (_SQRT_2PI * tau_in):.4g} with b = {b:.4g} fixed by the amplitude identity"
        )
    if not parts:
        parts.append(
            "the conditions over-determine this step family (few-jump step functions carry more Hermite energy beyond "
            "order 2 than smooth activations); free the amplitudes (last_layer='free', hidden='sigma_q'), make "
            "conditions soft or add restarts"
        )
    return "; ".join(parts)


def match_activations(
    activations: Sequence[str | Activation] | str | Activation,
    tau0: float = 1.0,
    *,
    last_layer: str = "paper",
    hidden: str = "sigma_t",
    tau_anchor: float = 0.0,
    hard: Sequence[str] = ("d1", "d2", "curv", "Q", "tau"),
    soft_weight: float = 1e-2,
    restarts: int = 32,
    seed: int = 0,
    tol: float = 1e-6,
    on_infeasible: str = "warn",
    objective: str = "absolute",
) -> MatchReport:
    """Solve σ_T (layers 1..L−1) and σ_Q (layer L) so the compressed net has the original's CK scalars.

    Args:
        activations: the original activations, one per layer.
        tau0: input scale τ_0 (τ̂_0 of the data; 1 after the paper's normalisation).
        last_layer: ``"paper"`` (b1 = b2 from the amplitude identity, match τ, d1, d2, Q) or ``"free"``
            (b1, b2 free, match τ, d1, d2).
        hidden: ``"sigma_t"`` (the paper's 2-level σ_T) or ``"sigma_q"`` (3 levels {b1, 0, b2}, 5 parameters: room to
            also pull τ̃_ℓ towards τ_ℓ through ``tau_anchor``).
        tau_anchor: weight of a soft (Var − τ_ℓ²) term in the hidden layers (0 = the paper's recipe).
        hard: conditions that must hold; the others get ``soft_weight``.
        soft_weight: residual weight of soft conditions.
        restarts: random starts per layer (seeded, deterministic).
        seed: seed of the starts.
        tol: relative residual above which a hard condition is declared unmet.
        objective: ``"absolute"`` (the paper's Σ (achieved − target)², default) or ``"relative"`` (each residual
            divided by |target|); they differ only where the equations cannot all hold.
        on_infeasible: ``"warn"`` (MatchWarning, report flags it), ``"raise"`` (ValueError) or ``"ignore"``.

    Returns:
        :class:`MatchReport` (its ``activations`` and ``centers`` define the compressed net).
    """
    acts = resolve_activations(activations)
    t0 = check_tau(tau0)
    if last_layer not in ("paper", "free"):
        raise InvalidParameterError(f"last_layer must be 'paper' or 'free', got {last_layer!r}")
    if hidden not in ("sigma_t", "sigma_q"):
        raise InvalidParameterError(f"hidden must be 'sigma_t' or 'sigma_q', got {hidden!r}")
    if objective not in ("absolute", "relative"):
        raise InvalidParameterError(f"objective must be 'absolute' or 'relative', got {objective!r}")
    if on_infeasible not in ("warn", "raise", "ignore"):
        raise InvalidParameterError(
            f"on_infeasible must be 'warn', 'raise' or 'ignore', got {on_infeasible!r}"
        )
    unknown = [h for h in hard if h not in _CONDITIONS]
    if unknown:
        raise InvalidParameterError(f"unknown hard conditions {unknown}; valid: {list(_CONDITIONS)}")
    if not (tau_anchor >= 0.0 and math.isfinite(tau_anchor)):
        raise InvalidParameterError(f"tau_anchor must be ≥ 0, got {tau_anchor}")
    if not (soft_weight > 0.0 and math.isfinite(soft_weight)):
        raise InvalidParameterError(f"soft_weight must be > 0, got {soft_weight}")
    if int(restarts) < 1:
        raise InvalidParameterError(f"restarts must be ≥ 1, got {restarts}")
    rng = np.random.default_rng(seed)
    L = len(acts)
    tau_orig, tau_comp = t0, t0
    layers: list[LayerMatch] = []
    for ell, act in enumerate(acts, start=1):
        m = gaussian_moments(act, tau_orig)
        tau_out = math.sqrt(m.var)
        last = ell == L
        b: float | None = None
        if not last:
            targets = {"d1": m.d1**2, "d2": m.d2**2, "curv": m.curv}
            if tau_anchor > 0.0:  # soft by construction: a hidden τ̃ may differ from τ (Corollary 1)
                targets["tau"] = m.var
            kind = hidden
        else:
            targets = {"tau": m.var, "d1": m.d1**2, "d2": m.d2**2}
            if last_layer == "paper":
                targets["Q"] = 2.0 * m.curv
                if m.d2 == 0.0:
                    raise InvalidParameterError(
                        f"layer {ell}: E[σ''] = 0 for {act.name!r}, the amplitude identity b² = Q²/E''² + 4V is "
                        "undefined; use last_layer='free'"
                    )
                b = math.sqrt((2.0 * m.curv) ** 2 / m.d2**2 + 4.0 * m.var)
            kind = "sigma_q"
        weights = {k: (1.0 if k in hard else soft_weight) for k in targets}
        hard_set = {k for k in targets if k in hard and not (k == "tau" and not last)}
        if not last and "tau" in targets:
            weights["tau"] = tau_anchor
        if kind == "sigma_t":
            starts = np.column_stack(
                [
                    rng.normal(0.0, 1.5, restarts),
                    rng.uniform(0.3, 2.0, restarts),
                    rng.normal(0.0, 2.0, restarts),
                ]
            )
            starts[0] = (1.0, 1.1, 2.4)  # near the reference solution of methods.md §1.10 (in units of τ)

            def build(x: np.ndarray, _t: float = tau_comp, _b: float | None = None) -> StepActivation:
                return _sigma_t_from(x, _t)

            x = _solve_hard_soft(
                build, 3, tau_comp, targets, weights, hard_set, starts, objective == "relative", tol
            )
            new = build(x)
            params = {"s1": new.breakpoints[0], "s2": new.breakpoints[1], "a": new.values[0]}
        else:
            cols = [
                rng.normal(-1.0, 1.0, restarts),
                rng.uniform(0.2, 1.5, restarts),
                rng.uniform(0.2, 1.5, restarts),
            ]
            if b is None:
                amp = 2.0 * tau_out
                cols += [rng.normal(amp, amp, restarts), rng.normal(0.0, amp, restarts)]
            starts = np.column_stack(cols)

            def build(x: np.ndarray, _t: float = tau_comp, _b: float | None = b) -> StepActivation:
                return _sigma_q_from(x, _t, _b)

            x = _solve_hard_soft(
                build,
                3 if b is not None else 5,
                tau_comp,
                targets,
                weights,
                hard_set,
                starts,
                objective == "relative",
                tol,
            )
            new = build(x)
            bp = new.breakpoints
            params = {
                "r1": bp[0],
                "r2": bp[1],
                "r3": bp[2],
                "r4": bp[3],
                "b1": new.values[0],
                "b2": new.values[2],
            }
        note = ""
        mc = gaussian_moments(new, tau_comp)
        eqs = []
        for k, tgt in targets.items():
            val = _value(k, mc)
            is_hard = k in hard and not (k == "tau" and not last)
            eqs.append(EquationResidual(k, tgt, val, val - tgt, (val - tgt) / max(abs(tgt), 1e-12), is_hard))
        feasible = all(abs(e.relative) <= tol for e in eqs if e.hard)
        if not feasible:
            note = _explain(targets, tau_comp, tau_orig, b if last else None, hard_set)
        layers.append(
            LayerMatch(
                ell,
                kind,
                params,
                new,
                tau_orig,
                tau_comp,
                tau_out,
                math.sqrt(mc.var),
                mc.mean,
                tuple(eqs),
                feasible,
                note,
            )
        )
        tau_orig, tau_comp = tau_out, math.sqrt(mc.var)
    report = MatchReport(
        tuple(layers),
        t0,
        {
            "last_layer": last_layer,
            "hidden": hidden,
            "tau_anchor": tau_anchor,
            "objective": objective,
            "hard": list(hard),
            "soft_weight": soft_weight,
            "restarts": int(restarts),
            "seed": seed,
            "tol": tol,
        },
    )
    if not report.feasible:
        msg = f"activation matching left hard conditions unmet (max relative residual {report.max_hard_residual:.3g}):\n{report.explanation}"
        if on_infeasible == "raise":
            raise InvalidParameterError(msg)
        if on_infeasible == "warn":
            warnings.warn(msg, MatchWarning, stacklevel=2)
    return report
