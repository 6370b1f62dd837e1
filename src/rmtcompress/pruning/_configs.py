"""The pruning rules' configs: one frozen, validated dataclass per rule (``config.rule`` is the rule's name).

* :class:`MagnitudeConfig` (``oneshot``) — one-shot magnitude pruning, per layer or global: keep exactly the largest
  ``|w|``.
* :class:`LqAdaptiveConfig` (``lq``) — our reading of the neuron-wise adaptive rule of Yang et al. (2022, arXiv
  2206.05604). **The body of that paper was not available to us**; only its abstract was. The rule implemented here
  is derived from the standard best-k-term bound quoted in ``methods.md`` §3.2: for a two-layer net
  ``f(x) = Σ_j a_j σ(w_jᵀx + b_j)`` with an L-Lipschitz σ and ``‖x‖_∞ ≤ R``, keeping the ``k_j`` largest inputs of
  neuron j gives ``|f(x) − f̂(x)| ≤ L R Σ_j |a_j| ‖w_j − w_{j,(k_j)}‖_1 ≤ L R (q/(1−q)) Σ_j c_j k_j^{−ρ}`` with
  ``c_j = |a_j| ‖w_j‖_q`` and ``ρ = 1/q − 1``. Minimising ``Σ_j k_j`` under that bound (Lagrange) gives
  ``k_j ∝ c_j^q``; the proportionality constant is set to reach a target sparsity (the main knob) or a bound budget.
* :class:`SAPConfig` (``sap``) — one step of Sparsity-informed Adaptive Pruning (Diao et al., ICLR 2023) from the PQ
  index, scopes ``'layer' | 'neuron' | 'global'``; optional ``milestones`` clip the steps so the rounds land exactly
  on requested sparsities.
* :class:`GradualMagnitudeConfig` (``gmp``) — the Zhu & Gupta (2017) cubic sparsity schedule (used by Gale et al.
  2019).
* :class:`LotteryTicketConfig` (``lottery``) — iterative magnitude pruning with rewinding (Frankle & Carbin 2019).

The last two take ``criterion='magnitude' | 'lq'``: with ``'lq'`` each schedule step / round allocates its sparsity
across neurons with the same neuron-wise ℓ_q rule as :class:`LqAdaptiveConfig` (already-pruned weights stay pruned).
The rules themselves are in :mod:`._rules`; the training loops that apply schedules, rounds and rewinds in
:mod:`._training`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal, TypeAlias

from .._utils import Config, check_int
from ..errors import InvalidParameterError
from ._measures import _check_pq, _check_real

__all__ = [
    "GradualMagnitudeConfig",
    "LotteryTicketConfig",
    "LqAdaptiveConfig",
    "MagnitudeConfig",
    "PruneConfig",
    "SAPConfig",
]

Scope = Literal["layer", "global"]
SAPScope = Literal["layer", "neuron", "global"]
Criterion = Literal["magnitude", "lq"]


def _check_fraction(value: object, name: str, *, allow_zero: bool = True) -> float:
    v = _check_real(value, name)
    lo_ok = v >= 0.0 if allow_zero else v > 0.0
    if not (lo_ok and v < 1.0):
        raise InvalidParameterError(
            f"{name} must lie in {'[0, 1)' if allow_zero else '(0, 1)'}; got {value!r}"
        )
    return v


def _check_choice(value: object, name: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InvalidParameterError(f"{name} must be one of {choices}; got {value!r}")


def _check_criterion(owner: str, criterion: object, q: object) -> float:
    """Validate ``criterion`` ('magnitude' | 'lq') and the ℓ_q exponent ``q`` in (0, 1) (always checked); return q."""
    _check_choice(criterion, f"{owner}.criterion", ("magnitude", "lq"))
    qf = _check_real(q, f"{owner}.q")
    if not 0.0 < qf < 1.0:
        raise InvalidParameterError(
            f"{owner}.q must lie in (0, 1) (exponent of the ℓ_q quasi-norm); got {q!r}"
        )
    return qf


def _check_milestones(owner: str, milestones: object) -> tuple[float, ...] | None:
    """None, or a non-empty strictly increasing tuple of fractions in (0, 1)."""
    if milestones is None:
        return None
    if isinstance(milestones, str) or not isinstance(milestones, Iterable):
        raise InvalidParameterError(
            f"{owner}.milestones must be None or a tuple of sparsities; got {milestones!r}"
        )
    ms = [_check_fraction(m, "milestones entry", allow_zero=False) for m in milestones]
    if not ms or any(b <= a for a, b in itertools.pairwise(ms)):
        raise InvalidParameterError(
            f"milestones must be a non-empty strictly increasing tuple; got {milestones}"
        )
    return tuple(ms)


def _check_layer_sparsity(value: object, initial: float, scope: object) -> tuple[tuple[str, float], ...]:
    """``{name: s_f}`` or ``(name, s_f)`` pairs → sorted pairs, each ``initial ≤ s_f < 1``; ``scope='layer'`` only."""
    if isinstance(value, Mapping):
        pairs: list[object] = list(value.items())
    elif isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidParameterError(f"layer_sparsity must map layer names to sparsities; got {value!r}")
    else:
        pairs = list(value)
    norm: dict[str, float] = {}
    for pair in pairs:
        if not (isinstance(pair, tuple | list) and len(pair) == 2 and isinstance(pair[0], str)):
            raise InvalidParameterError(
                f"layer_sparsity must map layer names to sparsities; got the entry {pair!r}"
            )
        s_l = _check_fraction(pair[1], f"layer_sparsity[{pair[0]!r}]")
        if initial > s_l:
            raise InvalidParameterError(
                f"initial_sparsity ({initial}) must be <= layer_sparsity[{pair[0]!r}] ({s_l})"
            )
        if pair[0] in norm:
            raise InvalidParameterError(f"layer_sparsity names layer {pair[0]!r} twice")
        norm[pair[0]] = s_l
    if not norm:
        raise InvalidParameterError("layer_sparsity must name at least one layer (or be None)")
    if scope != "layer":
        raise InvalidParameterError(
            f"layer_sparsity needs scope='layer' (one schedule per layer); got scope={scope!r}"
        )
    return tuple(sorted(norm.items()))


@dataclass(frozen=True)
class MagnitudeConfig(Config):
    """One-shot magnitude pruning: keep exactly the ``round((1 − sparsity)·n)`` largest ``|w|``.

    Attributes:
        sparsity: Target fraction of pruned weights, in ``[0, 1)`` (per layer, or over all weights if global).
        scope: ``'layer'`` (every layer at the same sparsity) or ``'global'`` (one threshold across layers).
    """

    rule: ClassVar[str] = "oneshot"

    sparsity: float
    scope: Scope = "layer"

    def __post_init__(self) -> None:
        """Validate the fields (InvalidParameterError)."""
        object.__setattr__(self, "sparsity", _check_fraction(self.sparsity, "sparsity"))
        _check_choice(self.scope, "scope", ("layer", "global"))


@dataclass(frozen=True)
class LqAdaptiveConfig(Config):
    """Neuron-wise adaptive pruning from the ℓ_q bound — our reading of Yang et al. (2022), see module docstring.

    Per neuron j (a row of the weight, flattened over fan-in) keep ``k_j ∝ c_j^q`` of its largest inputs, with
    ``c_j = a_j ‖w_j‖_q``, ``a_j`` the ``outgoing_norm`` of column j of the next layer's weight (1 for the last layer
    or when the next layer cannot be matched; the next layer is the next ``nn.Linear``/``nn.Conv2d`` in registration
    order, whether or not it is pruned). The constant is chosen so that the target ``sparsity`` is reached
    exactly (``scope='layer'``: in every layer; ``'global'``: overall), or — if ``budget`` is given instead — as the
    smallest number of weights whose summed ℓ_q bound ``L R (q/(1−q)) Σ_j c_j k_j^{1−1/q}`` is ``≤ budget``
    (one constant for all layers).

    Attributes:
        sparsity: Target fraction of pruned weights in ``[0, 1)`` (the main knob). Exactly one of sparsity / budget.
        q: Exponent of the quasi-norm, in ``(0, 1)``.
        budget: Alternative knob: bound budget δ > 0.
        scope: ``'layer'`` or ``'global'`` (sparsity mode only).
        min_keep: Minimum number of kept inputs per neuron (``>= 0``; 1 keeps every neuron alive).
        lipschitz: Lipschitz constant L of the activation (1 for ReLU).
        input_bound: R, a bound on ``‖x‖_∞`` of the inputs (1 for pixels in [0, 1]).
        outgoing_norm: Norm of the outgoing column defining ``a_j``: ``'inf'`` (gives the max-output bound),
            ``'l1'`` or ``'l2'``.
    """

    rule: ClassVar[str] = "lq"

    sparsity: float | None = None
    q: float = 0.5
    budget: float | None = None
    scope: Scope = "layer"
    min_keep: int = 1
    lipschitz: float = 1.0
    input_bound: float = 1.0
    outgoing_norm: Literal["inf", "l1", "l2"] = "inf"

    def __post_init__(self) -> None:
        """Validate the fields (InvalidParameterError)."""
        set_ = object.__setattr__
        q = _check_real(self.q, "q")
        if not 0.0 < q < 1.0:
            raise InvalidParameterError(
                f"LqAdaptiveConfig.q must lie in (0, 1) (the ℓ_q quasi-norm); got {self.q!r}"
            )
        set_(self, "q", q)
        if (self.sparsity is None) == (self.budget is None):
            raise InvalidParameterError(
                "give exactly one of sparsity= (target fraction pruned) or budget= (bound value)"
            )
        if self.sparsity is not None:
            set_(self, "sparsity", _check_fraction(self.sparsity, "sparsity"))
        if self.budget is not None:
            b = _check_real(self.budget, "budget")
            if not (b > 0 and math.isfinite(b)):
                raise InvalidParameterError(f"budget must be finite and > 0; got {self.budget!r}")
            set_(self, "budget", b)
        _check_choice(self.scope, "scope", ("layer", "global"))
        set_(self, "min_keep", check_int(self.min_keep, "min_keep", 0))
        for name in ("lipschitz", "input_bound"):
            v = _check_real(getattr(self, name), name)
            if not (v > 0 and math.isfinite(v)):
                raise InvalidParameterError(f"{name} must be finite and > 0; got {v!r}")
            set_(self, name, v)
        _check_choice(self.outgoing_norm, "outgoing_norm", ("inf", "l1", "l2"))


@dataclass(frozen=True)
class SAPConfig(Config):
    """One step of Sparsity-informed Adaptive Pruning (Diao et al. 2023; methods.md §3.3).

    In each scope unit (a neuron = output row, a layer, or all weights): compute the PQ index ``I`` of the unpruned
    weights (d of them), the bound ``m = ceil(d (1+η)^{−q/(q−p)} (1−I)^{qp/(q−p)})``, the prune ratio
    ``c = clamp(γ (1 − m/d), 0, β)``, and prune the ``⌊d c⌋`` smallest-magnitude unpruned weights.

    Driving SAP to target sparsities: with ``milestones`` (increasing overall sparsities of the selected layers),
    a step whose proposed counts would take the overall sparsity past the next milestone not yet reached is clipped
    so that it lands exactly on it (``round(milestone · n_total)`` pruned weights): each unit's count ``⌊d c⌋`` is
    scaled down proportionally (largest-remainder rounding; with ``scope='global'`` the single count is simply
    capped), and inside a unit the smallest magnitudes still go first. Steps that stay below the next milestone are
    plain SAP steps. :func:`rmtcompress.training.train_iterative` then runs rounds until the last milestone is
    reached (``rounds`` becomes a cap); :func:`prune` refuses a step once the last milestone is reached.

    Attributes:
        p: Lower exponent, ``0 < p < q``.
        q: Upper exponent.
        eta: η ≥ 0.
        gamma: γ > 0 (aggressiveness).
        beta: β in ``(0, 1]``, the maximum fraction pruned per step.
        scope: ``'layer'``, ``'neuron'`` or ``'global'``.
        rounds: Number of prune/retrain rounds the training loop applies (``>= 1``); the maximum number of rounds
            when ``milestones`` is given.
        milestones: Optional strictly increasing overall sparsities in ``(0, 1)`` that the rounds land on exactly.
    """

    rule: ClassVar[str] = "sap"

    p: float = 0.5
    q: float = 1.0
    eta: float = 0.0
    gamma: float = 1.0
    beta: float = 0.9
    scope: SAPScope = "layer"
    rounds: int = 30
    milestones: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        """Validate the fields (InvalidParameterError)."""
        set_ = object.__setattr__
        set_(self, "milestones", _check_milestones("SAPConfig", self.milestones))
        p, q = _check_pq(self.p, self.q)
        set_(self, "p", p)
        set_(self, "q", q)
        eta = _check_real(self.eta, "eta")
        if not (eta >= 0 and math.isfinite(eta)):
            raise InvalidParameterError(f"eta must be finite and >= 0; got {self.eta!r}")
        gamma = _check_real(self.gamma, "gamma")
        if not (gamma > 0 and math.isfinite(gamma)):
            raise InvalidParameterError(f"gamma must be finite and > 0; got {self.gamma!r}")
        beta = _check_real(self.beta, "beta")
        if not 0.0 < beta <= 1.0:
            raise InvalidParameterError(f"beta must lie in (0, 1]; got {self.beta!r}")
        set_(self, "eta", eta)
        set_(self, "gamma", gamma)
        set_(self, "beta", beta)
        _check_choice(self.scope, "scope", ("layer", "neuron", "global"))
        set_(self, "rounds", check_int(self.rounds, "rounds", 1))


@dataclass(frozen=True)
class GradualMagnitudeConfig(Config):
    """Zhu & Gupta (2017) gradual magnitude pruning schedule (methods.md §4).

    ``s_t = s_f + (s_i − s_f)(1 − (t − t_0)/(t_end − t_0))^e`` for ``t_0 ≤ t ≤ t_end``, ``s_i`` before and ``s_f``
    after; masks are updated every ``frequency`` optimizer steps from ``begin_step`` and at ``end_step`` itself, so
    the final sparsity is reached exactly at ``end_step``.

    ``criterion`` chooses which weights each update removes: ``'magnitude'`` (Zhu & Gupta: the smallest ``|w|``) or
    ``'lq'``: the step's sparsity (per layer, or overall with ``scope='global'``) is allocated across neurons by the
    neuron-wise ℓ_q rule of :class:`LqAdaptiveConfig` (``k_j ∝ (a_j ‖w_j‖_q)^q`` kept inputs per neuron, at least 1
    while the neuron has any, the largest ``|w|`` inside the neuron), computed on the current unpruned weights;
    already-pruned weights stay pruned.

    Attributes:
        final_sparsity: ``s_f`` in ``[0, 1)``.
        begin_step: ``t_0 >= 0`` (optimizer steps completed).
        end_step: ``t_end > t_0``.
        frequency: Steps between mask updates (``>= 1``).
        initial_sparsity: ``s_i`` in ``[0, s_f]``.
        exponent: ``e > 0`` (3 = Zhu & Gupta; 1 = linear).
        scope: ``'layer'`` (TF model_pruning default) or ``'global'``.
        criterion: ``'magnitude'`` or ``'lq'``.
        q: Exponent of the ℓ_q rule, in ``(0, 1)`` (validated always, used with ``criterion='lq'``).
        layer_sparsity: Optional per-layer final sparsities ``{layer name: s_f}`` (a mapping or ``(name, s_f)``
            pairs, stored as sorted pairs) overriding ``final_sparsity`` for the layers it names, each following
            its own cubic schedule from ``initial_sparsity``; ``scope='layer'`` only. Layers the schedule prunes
            that it does not name use ``final_sparsity``; a name that the step does not prune is refused by
            :func:`~rmtcompress.pruning.prune`.
    """

    rule: ClassVar[str] = "gmp"

    final_sparsity: float
    begin_step: int
    end_step: int
    frequency: int
    initial_sparsity: float = 0.0
    exponent: float = 3.0
    scope: Scope = "layer"
    criterion: Criterion = "magnitude"
    q: float = 0.5
    layer_sparsity: Mapping[str, float] | tuple[tuple[str, float], ...] | None = None

    def __post_init__(self) -> None:
        """Validate the fields (InvalidParameterError)."""
        set_ = object.__setattr__
        set_(self, "q", _check_criterion("GradualMagnitudeConfig", self.criterion, self.q))
        sf = _check_fraction(self.final_sparsity, "final_sparsity")
        si = _check_fraction(self.initial_sparsity, "initial_sparsity")
        if si > sf:
            raise InvalidParameterError(f"initial_sparsity ({si}) must be <= final_sparsity ({sf})")
        b = check_int(self.begin_step, "begin_step", 0)
        e = check_int(self.end_step, "end_step", 0)
        if e <= b:
            raise InvalidParameterError(f"end_step ({e}) must be > begin_step ({b})")
        f = check_int(self.frequency, "frequency", 1)
        ex = _check_real(self.exponent, "exponent")
        if not (ex > 0 and math.isfinite(ex)):
            raise InvalidParameterError(f"exponent must be finite and > 0; got {self.exponent!r}")
        _check_choice(self.scope, "scope", ("layer", "global"))
        if self.layer_sparsity is not None:
            set_(self, "layer_sparsity", _check_layer_sparsity(self.layer_sparsity, si, self.scope))
        for name, value in (
            ("final_sparsity", sf),
            ("initial_sparsity", si),
            ("begin_step", b),
            ("end_step", e),
            ("frequency", f),
            ("exponent", ex),
        ):
            set_(self, name, value)

    def layer_targets(self) -> dict[str, float]:
        """``layer_sparsity`` as a dict (empty when None)."""
        if self.layer_sparsity is None:
            return {}
        return dict(self.layer_sparsity)

    def final_for(self, layer: str | None = None) -> float:
        """Final sparsity of ``layer`` (its ``layer_sparsity`` entry, else ``final_sparsity``)."""
        if layer is None:
            return float(self.final_sparsity)
        return float(self.layer_targets().get(layer, self.final_sparsity))

    def sparsity_at(self, step: int, layer: str | None = None) -> float:
        """Target sparsity after ``step`` completed optimizer steps (exactly the final one for step ≥ end).

        Args:
            step: Optimizer steps completed.
            layer: A layer name: its own schedule when ``layer_sparsity`` names it (default: ``final_sparsity``).
        """
        final = self.final_for(layer)
        if step >= self.end_step:
            return final
        if step <= self.begin_step:
            return float(self.initial_sparsity)
        frac = min(max((step - self.begin_step) / (self.end_step - self.begin_step), 0.0), 1.0)
        return float(final + (self.initial_sparsity - final) * (1.0 - frac) ** self.exponent)

    def is_update_step(self, step: int) -> bool:
        """Whether the masks are recomputed after ``step`` completed steps."""
        if step < self.begin_step or step > self.end_step:
            return False
        return step == self.end_step or (step - self.begin_step) % self.frequency == 0


@dataclass(frozen=True)
class LotteryTicketConfig(Config):
    """Iterative magnitude pruning with rewinding (Frankle & Carbin 2019).

    Each round prunes ``rate`` of the *remaining* weights by magnitude; the cumulative sparsity after round r is
    ``1 − (1 − rate)^r``. With ``milestones`` the geometric schedule is clipped so that it passes exactly through
    each milestone (a round that would overshoot one stops at it), and it ends at the last milestone; ``rounds`` is
    then derived. The loop in :func:`rmtcompress.training.train_iterative` rewinds unpruned weights to their
    initial values (``rewind='init'``) or keeps the trained ones (``'none'``, i.e. prune + fine-tune).

    ``criterion='lq'`` replaces the magnitude choice of each round by the neuron-wise ℓ_q allocation of
    :class:`LqAdaptiveConfig` at the round's cumulative sparsity (per layer, or overall with ``scope='global'``),
    computed on the trained unpruned weights; already-pruned weights stay pruned, so masks are nested.

    Attributes:
        rate: Fraction of remaining weights pruned per round, in ``(0, 1)``.
        rounds: Number of rounds (``>= 1``); ignored when ``milestones`` is given.
        rewind: ``'init'`` or ``'none'``.
        scope: ``'layer'`` or ``'global'``.
        milestones: Optional increasing cumulative sparsities in ``(0, 1)``.
        criterion: ``'magnitude'`` (Frankle & Carbin) or ``'lq'``.
        q: Exponent of the ℓ_q rule, in ``(0, 1)`` (validated always, used with ``criterion='lq'``).
    """

    rule: ClassVar[str] = "lottery"

    rate: float = 0.2
    rounds: int = 5
    rewind: Literal["init", "none"] = "init"
    scope: Scope = "layer"
    milestones: tuple[float, ...] | None = None
    criterion: Criterion = "magnitude"
    q: float = 0.5

    def __post_init__(self) -> None:
        """Validate the fields (InvalidParameterError)."""
        set_ = object.__setattr__
        set_(self, "rate", _check_fraction(self.rate, "rate", allow_zero=False))
        set_(self, "rounds", check_int(self.rounds, "rounds", 1))
        _check_choice(self.rewind, "rewind", ("init", "none"))
        _check_choice(self.scope, "scope", ("layer", "global"))
        set_(self, "q", _check_criterion("LotteryTicketConfig", self.criterion, self.q))
        set_(self, "milestones", _check_milestones("LotteryTicketConfig", self.milestones))

    def schedule(self) -> tuple[float, ...]:
        """Cumulative sparsity after each round."""
        if self.milestones is None:
            return tuple(1.0 - (1.0 - self.rate) ** r for r in range(1, self.rounds + 1))
        out: list[float] = []
        s = 0.0
        for target in self.milestones:
            while True:
                nxt = 1.0 - (1.0 - s) * (1.0 - self.rate)
                if nxt >= target - 1e-12:
                    s = target
                    out.append(s)
                    break
                s = nxt
                out.append(s)
        return tuple(out)


PruneConfig: TypeAlias = (
    MagnitudeConfig | LqAdaptiveConfig | SAPConfig | GradualMagnitudeConfig | LotteryTicketConfig
)
