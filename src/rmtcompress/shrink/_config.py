"""What :func:`rmtcompress.shrink.shrink` searches: the recipe of one candidate and the search spaces (effort levels).

A :class:`Recipe` is the structured record of how one candidate was made (pruning rule, per-layer allocation and
sparsities, weight format, activation levels, epochs). A :class:`SearchSpace` is a frozen, validated description of
what to try; the effort levels are entries of the :data:`EFFORTS` registry (``"quick"``, ``"default"``,
``"thorough"``; :func:`register_effort` adds one), never branches on a string.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .._utils import Config, Registry
from ..errors import InvalidParameterError
from ..pruning import TrainConfig
from ._allocation import ALLOCATIONS

__all__ = [
    "EFFORTS",
    "SHRINK_RULES",
    "WEIGHT_SCHEMES",
    "Recipe",
    "SearchSpace",
    "WeightFormat",
    "get_effort",
    "parse_weight_format",
    "register_effort",
]

SHRINK_RULES: Registry[str, str] = Registry("shrink pruning rule")
"""Pruning rules of the search: name → criterion of the gradual schedule, or ``'oneshot'`` (magnitude + fine-tuning)."""
SHRINK_RULES.add("gmp", "magnitude")
SHRINK_RULES.add("gmp-lq", "lq")
SHRINK_RULES.add("oneshot", "oneshot")

WEIGHT_SCHEMES: Registry[str, tuple[tuple[int, ...], bool]] = Registry("weight scheme")
"""Weight formats: scheme → (allowed bits, whether it takes a bits number)."""
WEIGHT_SCHEMES.add("shared", (tuple(range(1, 9)), True))  # Lloyd codebook of the non-zeros (Han et al.)
WEIGHT_SCHEMES.add("uniform", (tuple(range(2, 9)), True))  # symmetric per-channel scales
WEIGHT_SCHEMES.add("ternary", ((), False))  # {0, ±α}
WEIGHT_SCHEMES.add("float32", ((), False))  # kept values as float32 (the pruned-net file)


@dataclass(frozen=True)
class WeightFormat:
    """How kept weights are stored: a scheme of :data:`WEIGHT_SCHEMES` and its bits (None for schemes without).

    Attributes:
        scheme: ``'shared'``, ``'uniform'``, ``'ternary'`` or ``'float32'``.
        bits: Bits of the codes (1–8 for ``'shared'``, 2–8 for ``'uniform'``), None otherwise.
    """

    scheme: str
    bits: int | None = None

    def __post_init__(self) -> None:
        """Validate the fields."""
        allowed, takes_bits = WEIGHT_SCHEMES[self.scheme]  # unknown schemes raise, listing the known ones
        if takes_bits:
            if isinstance(self.bits, bool) or not isinstance(self.bits, numbers.Integral):
                raise InvalidParameterError(
                    f"weight scheme {self.scheme!r} needs integer bits; got {self.bits!r}"
                )
            if int(self.bits) not in allowed:
                raise InvalidParameterError(
                    f"bits of {self.scheme!r} weights must lie in {allowed[0]}..{allowed[-1]}; got {self.bits}"
                )
            object.__setattr__(self, "bits", int(self.bits))
        elif self.bits is not None:
            raise InvalidParameterError(f"weight scheme {self.scheme!r} takes no bits; got {self.bits!r}")

    @property
    def code_bits(self) -> float:
        """Bits per kept weight used to predict the size (the codes' upper bound)."""
        if self.scheme == "float32":
            return 32.0
        if self.scheme == "ternary":
            return 1.0
        assert self.bits is not None
        return float(self.bits)

    def __str__(self) -> str:
        return self.scheme if self.bits is None else f"{self.scheme}:{self.bits}"


def parse_weight_format(text: str | WeightFormat) -> WeightFormat:
    """``'shared:2'``, ``'uniform:8'``, ``'ternary'`` or ``'float32'`` → :class:`WeightFormat`."""
    if isinstance(text, WeightFormat):
        return text
    if not isinstance(text, str):
        raise InvalidParameterError(f"a weight format is a string like 'shared:2'; got {text!r}")
    scheme, _, bits = text.partition(":")
    if not bits:
        return WeightFormat(scheme)
    try:
        return WeightFormat(scheme, int(bits))
    except ValueError as exc:
        if isinstance(exc, InvalidParameterError):
            raise
        raise InvalidParameterError(f"bits in weight format {text!r} must be an integer") from None


@dataclass(frozen=True)
class Recipe:
    """How one candidate of the frontier was made (a structured, JSON-friendly record).

    Attributes:
        base: Which trained net it starts from (``'original'`` or ``'width=…'`` for nets trained from an MLPSpec).
        rule: Pruning rule (:data:`SHRINK_RULES`) or ``'none'``.
        allocation: Per-layer allocation rule (:data:`ALLOCATIONS`), ``'grid'`` for a uniform grid point, or
            ``'none'``.
        layer_sparsity: ``(layer name, target sparsity)`` pairs.
        weights: Weight format (``'shared:2'`` …).
        activation_bits: Bits of the k-level hidden activations (None: float activations).
        prune_epochs: Epochs of the pruning schedule and its fine-tuning.
        finetune_epochs: Epochs of fine-tuning after weight quantization (shared centroids / scales).
        activation_epochs: Epochs of fine-tuning after activation quantization.
        target_bytes: The byte target the allocation was fitted to (None for grid points).
        refit: The selected candidate's recipe run again on every row of the data, validation rows included
            (:class:`SearchSpace`'s ``refit``); such a point is never a candidate of the selection.
        members: For an ensemble (``base == 'ensemble'``), the recipes of its members, whose logits it averages;
            empty otherwise.
    """

    base: str = "original"
    rule: str = "none"
    allocation: str = "none"
    layer_sparsity: tuple[tuple[str, float], ...] = ()
    weights: str = "float32"
    activation_bits: int | None = None
    prune_epochs: int = 0
    finetune_epochs: int = 0
    activation_epochs: int = 0
    target_bytes: int | None = None
    refit: bool = False
    members: tuple[Recipe, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (layer sparsities as a mapping; ``refit`` and ``members`` only when set, so that the
        stored candidates of searches made before they existed keep their keys)."""
        out = asdict(self)
        out["layer_sparsity"] = {k: v for k, v in self.layer_sparsity}
        if not self.refit:
            del out["refit"]
        if self.members:
            out["members"] = [m.as_dict() for m in self.members]
        else:
            del out["members"]
        return out

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Recipe:
        """Inverse of :meth:`as_dict`."""
        r = dict(record)
        r["layer_sparsity"] = tuple((str(k), float(v)) for k, v in dict(r.get("layer_sparsity", {})).items())
        r["members"] = tuple(cls.from_dict(m) for m in r.get("members", ()))
        return cls(**r)

    @property
    def label(self) -> str:
        """A short human-readable label."""
        if self.members:
            inner = " + ".join(m.label for m in self.members)
            return f"ensemble of {len(self.members)} [{inner}]" + (" refit" if self.refit else "")
        parts = [self.base] if self.base != "original" or self.rule == "none" else []
        if self.rule == "none":
            parts.append("(trained, as is)")
        else:
            sp = ", ".join(f"{v:.3f}" for _, v in self.layer_sparsity)
            parts.append(f"{self.rule}/{self.allocation} [{sp}]")
        parts.append(self.weights)
        if self.activation_bits is not None:
            parts.append(f"act {self.activation_bits}b")
        if self.refit:
            parts.append("refit")
        return " ".join(parts)


def _check_fraction_tuple(values: object, name: str) -> tuple[float, ...]:
    if isinstance(values, str) or not hasattr(values, "__iter__"):
        raise InvalidParameterError(f"{name} must be a tuple of sparsities in (0, 1); got {values!r}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0.0 < float(v) < 1.0:
            raise InvalidParameterError(f"{name} entries must be sparsities in (0, 1); got {v!r}")
        out.append(float(v))
    return tuple(sorted(set(out)))


def _check_count(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise InvalidParameterError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


@dataclass(frozen=True)
class SearchSpace(Config):
    """What :func:`~rmtcompress.shrink.shrink` tries (one effort level); validated, frozen.

    Attributes:
        rules: Pruning rules (:data:`SHRINK_RULES`).
        allocations: Per-layer allocation rules for byte budgets (:data:`ALLOCATIONS`).
        weights: Weight formats (``'shared:2'``, ``'uniform:8'``, ``'ternary'``, ``'float32'``).
        sparsities: Grid of uniform sparsities: all of them without a budget; with a budget, those sparser than
            the budget's own allocation (at most ``grid_points`` per format), as extra candidates.
        grid_points: With a budget, how many grid sparsities per weight format besides the fitted allocation
            (the least sparse ones above it), tried only when the fitted overall sparsity is below ``grid_below``.
        grid_below: A budget whose fitted allocation is sparser than this gets no grid points (there, keeping more
            weights wins; on roomy budgets a sparser net can be more accurate).
        activation_bits: k-level hidden activations tried on the best candidates (None = float, always kept).
        activation_top: How many of the best candidates get the activation variants.
        prune_epochs: Epochs of each pruning run (schedule + fine-tuning at the final sparsity).
        prune_end: Fraction of those epochs after which the schedule reaches its final sparsity.
        finetune_epochs: Epochs of fine-tuning after weight quantization.
        activation_epochs: Epochs of fine-tuning after activation quantization.
        lr: Adam learning rate of pruning and fine-tuning.
        batch_size: Minibatch size.
        width_factors: Given an MLPSpec: trained widths as fractions of its widths.
        train_epochs: Given an MLPSpec: epochs of training each width.
        margin: The allocation aims at ``margin × budget`` (room for the codes' entropy after fine-tuning).
        distill: Weight of knowledge distillation from the original model in every training run of the search
            (pruning, fine-tuning, training other widths; :class:`rmtcompress.pruning.TrainConfig`'s ``distill``);
            0 = labels only. Given an MLPSpec there is no original, and it is unused.
        temperature: Distillation temperature.
        lr_schedule: Step-size schedule of every training run (``'constant'``, ``'cosine'`` or ``'anneal'``, see
            :class:`rmtcompress.pruning.TrainConfig`).
        label_smoothing: Label smoothing of the cross-entropy of every training run (0 = off).
        ema: Decay of the parameters' moving average in every training run (0 = off; see
            :class:`rmtcompress.pruning.TrainConfig`).
        weight_decay: L2 penalty of every training run (Adam's ``weight_decay``; 0 = off; see
            :class:`rmtcompress.pruning.TrainConfig`).
        augment: Augmentation of the training minibatches of every training run: ``'none'`` or, for rows that are
            flattened images, ``'shift:HxW[xC]:P[:flip]'`` (see :class:`rmtcompress.pruning.TrainConfig`).
        dropout: Dropout after every activation module in every training run (0 = off; see
            :class:`rmtcompress.pruning.TrainConfig`).
        mixup: ``α`` of mixup in every training run (0 = off; see :class:`rmtcompress.pruning.TrainConfig`).
        sam: Radius ``ρ`` of sharpness-aware minimization in every training run (0 = off; twice the training
            time; see :class:`rmtcompress.pruning.TrainConfig`).
        refit: After selection, run the selected candidate's recipe again (pruning to the same per-layer
            sparsities from the same start, weight format, trimming to the same byte target, fine-tuning,
            activation levels) on **every** row of the data, the validation rows included, with the step size
            annealed to 0 and the last epoch kept (nothing is left to select on); the refit model is returned as
            ``best`` when its file fits the budget. Its ``val_accuracy`` is the selected candidate's (the rows it
            trained on cannot judge it).
        refit_start: With ``refit``: when the selected candidate (or an ensemble's member) was pruned from a net
            the search trained itself (another width, an ensemble member, an MLPSpec's net), train that start net
            again first, from the same initialisation, on every row (the step size annealed to 0, the last epoch
            kept), and refit from it. The model you passed is never retrained.
        ensemble_size: With a budget and a plain MLP: also try the mean of this many nets of ``ensemble_width`` ×
            its hidden widths, trained with different seeds on the same rows (the first is the search's own net of
            that width), each shrunk to ``1 / ensemble_size`` of the budget and its best candidate (validation)
            kept; the ensemble is one more candidate, stored as one file (docs/shrink.md, "Ensembles"). 1 = off.
        ensemble_width: Width factor of the ensemble's members, in (0, 1].
        ensemble_joint: Choose the members' candidates together: of every combination (one candidate per member),
            the one whose mean has the highest validation accuracy (ties → fewer bytes); False keeps each member's
            own most accurate candidate.
    """

    rules: tuple[str, ...] = ("gmp",)
    allocations: tuple[str, ...] = ("global",)
    weights: tuple[str, ...] = ("shared:1", "shared:2", "shared:3")
    sparsities: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95, 0.98)
    grid_points: int = 1
    grid_below: float = 0.9
    activation_bits: tuple[int, ...] = (4,)
    activation_top: int = 1
    prune_epochs: int = 16
    prune_end: float = 0.6
    finetune_epochs: int = 2
    activation_epochs: int = 1
    lr: float = 1e-3
    batch_size: int = 256
    width_factors: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125)
    train_epochs: int = 20
    margin: float = 0.985
    distill: float = 0.0
    temperature: float = 4.0
    lr_schedule: str = "constant"
    label_smoothing: float = 0.0
    ema: float = 0.0
    weight_decay: float = 0.0
    augment: str = "none"
    dropout: float = 0.0
    mixup: float = 0.0
    sam: float = 0.0
    refit: bool = False
    refit_start: bool = False
    ensemble_size: int = 1
    ensemble_width: float = 0.25
    ensemble_joint: bool = False
    notes: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        """Validate every field (InvalidParameterError naming the field)."""
        registries: tuple[tuple[str, Registry[str, Any]], ...] = (
            ("rules", SHRINK_RULES),
            ("allocations", ALLOCATIONS),
        )
        for name, registry in registries:
            values = getattr(self, name)
            if isinstance(values, str) or not values:
                raise InvalidParameterError(f"{name} must be a non-empty tuple of names; got {values!r}")
            object.__setattr__(self, name, tuple(registry.canonical(v) for v in values))
        if isinstance(self.weights, str) or not self.weights:
            raise InvalidParameterError(f"weights must be a non-empty tuple of formats; got {self.weights!r}")
        object.__setattr__(self, "weights", tuple(str(parse_weight_format(w)) for w in self.weights))
        object.__setattr__(self, "sparsities", _check_fraction_tuple(self.sparsities, "sparsities"))
        bits = tuple(self.activation_bits)
        for b in bits:
            _check_count(b, "activation_bits entries", 1)
            if b > 8:
                raise InvalidParameterError(f"activation_bits entries must lie in 1..8; got {b}")
        object.__setattr__(self, "activation_bits", bits)
        for name, minimum in (
            ("grid_points", 0),
            ("activation_top", 0),
            ("prune_epochs", 1),
            ("finetune_epochs", 0),
            ("activation_epochs", 0),
            ("batch_size", 1),
            ("train_epochs", 1),
            ("ensemble_size", 1),
        ):
            _check_count(getattr(self, name), name, minimum)
        if not 0.0 <= float(self.grid_below) <= 1.0:
            raise InvalidParameterError(f"grid_below must lie in [0, 1]; got {self.grid_below!r}")
        if not 0.0 < float(self.prune_end) <= 1.0:
            raise InvalidParameterError(f"prune_end must lie in (0, 1]; got {self.prune_end!r}")
        if not (isinstance(self.lr, numbers.Real) and math.isfinite(self.lr) and self.lr > 0):
            raise InvalidParameterError(f"lr must be finite and > 0; got {self.lr!r}")
        factors = tuple(float(f) for f in self.width_factors)
        if not factors or any(not 0.0 < f <= 1.0 for f in factors):
            raise InvalidParameterError(f"width_factors must be non-empty, each in (0, 1]; got {factors}")
        object.__setattr__(self, "width_factors", factors)
        # the training loop's options are checked (and normalised) by the training loop's own config
        options = (
            "distill",
            "temperature",
            "lr_schedule",
            "label_smoothing",
            "ema",
            "augment",
            "weight_decay",
            "dropout",
            "mixup",
            "sam",
        )
        training = TrainConfig(**{name: getattr(self, name) for name in options})
        for name in options:
            object.__setattr__(self, name, getattr(training, name))
        for name in ("refit", "refit_start", "ensemble_joint"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                raise InvalidParameterError(f"{name} must be True or False; got {getattr(self, name)!r}")
            object.__setattr__(self, name, bool(getattr(self, name)))
        if int(self.ensemble_size) > 8:
            raise InvalidParameterError(f"ensemble_size must lie in 1..8; got {self.ensemble_size!r}")
        object.__setattr__(self, "ensemble_size", int(self.ensemble_size))
        w = self.ensemble_width
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not 0.0 < float(w) <= 1.0:
            raise InvalidParameterError(f"ensemble_width must be a number in (0, 1]; got {w!r}")
        object.__setattr__(self, "ensemble_width", float(w))
        if not 0.5 <= float(self.margin) <= 1.0:
            raise InvalidParameterError(f"margin must lie in [0.5, 1]; got {self.margin!r}")

    def formats(self) -> tuple[WeightFormat, ...]:
        """The weight formats as objects."""
        return tuple(parse_weight_format(w) for w in self.weights)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly dict of the fields (:meth:`to_dict` adds the type and version)."""
        return asdict(self)


EFFORTS: Registry[str, SearchSpace] = Registry("effort")
"""Search spaces by effort name."""
EFFORTS.add(
    "quick",
    SearchSpace(
        weights=("shared:2", "shared:4"),
        width_factors=(1.0,),
        sparsities=(0.8, 0.95),
        grid_points=0,
        activation_bits=(),
        activation_top=0,
        prune_epochs=2,
        finetune_epochs=1,
        train_epochs=5,
        notes="smoke runs and tests: two formats, short schedules",
    ),
)
EFFORTS.add(
    "default",
    SearchSpace(
        weights=("shared:2", "shared:3"),
        lr=2e-3,
        batch_size=128,
        label_smoothing=0.1,
        refit=True,
        ensemble_size=2,
        notes="≤ 10 min for a 784-512-512-10 MLP on 60k rows on 2 cores; shared 2- and 3-bit weights, Adam "
        "step 2e-3 on minibatches of 128, label smoothing 0.1, the selected recipe refit on every row, the mean of "
        "two ¼-width nets as one more candidate (chosen on held-out training rows, docs/shrink.md)",
    ),
)
EFFORTS.add(
    "thorough",
    SearchSpace(
        rules=("gmp", "gmp-lq"),
        allocations=("global", "lq", "pq", "uniform"),
        weights=("shared:1", "shared:2", "shared:3", "shared:4", "uniform:8", "float32"),
        grid_points=2,
        grid_below=1.0,
        activation_bits=(2, 4),
        activation_top=2,
        prune_epochs=24,
        finetune_epochs=3,
        width_factors=(1.0, 0.5, 0.25, 0.125),
        lr=2e-3,
        batch_size=128,
        label_smoothing=0.1,
        refit=True,
        ensemble_size=2,
        notes="every rule and allocation, longer schedules; the default effort's training settings",
    ),
)


def register_effort(name: str, space: SearchSpace) -> None:
    """Add an effort level (refused if the name is taken or ``space`` is not a :class:`SearchSpace`)."""
    if not isinstance(name, str) or not name:
        raise InvalidParameterError(f"an effort name must be a non-empty string; got {name!r}")
    if not isinstance(space, SearchSpace):
        raise InvalidParameterError(f"space must be a SearchSpace; got {type(space).__name__}")
    EFFORTS.add(name, space)


def get_effort(effort: str | SearchSpace) -> SearchSpace:
    """The search space of an effort name (or the space itself)."""
    if isinstance(effort, SearchSpace):
        return effort
    return EFFORTS[effort]  # unknown names raise, listing the registered ones
