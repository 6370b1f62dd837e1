"""``shrink``: a trained model + its training data + a byte budget → every tried compressed model and the best one.

The search (one :class:`~rmtcompress.shrink.SearchSpace`, see :data:`~rmtcompress.shrink.EFFORTS`):

1. carve a stratified validation split from ``(X, y)`` (:func:`rmtcompress.pruning.train_val_split`), or take the
   caller's ``(X_val, y_val)``; the training loop gets those validation rows and trains on the rest.
   Every selection — checkpoints inside the loop, and the final choice — reads validation accuracy only; test data,
   if given, is evaluated on each finished candidate for the report and read by nothing;
2. per weight format (``shared:2`` …) and allocation rule, the per-layer keep counts whose predicted file fits
   ``margin × budget`` (:func:`~rmtcompress.shrink.fit_allocation`), corrected by the exact size of a one-shot
   proxy file (:func:`rmtcompress.io.model_file_bytes`); plus uniform grid sparsities (all of them without a
   budget);
3. each distinct pruning target: gradual magnitude pruning (Zhu & Gupta; per-layer targets) from the trained weights
   with the package's training loop, then :func:`~rmtcompress.shrink.compact` (dead neurons out);
4. each weight format: :func:`rmtcompress.pruning.quantize_weights`, then fine-tuning of the tables and biases
   (codes and zeros fixed) with the same loop; biases are stored as float16 when that does not lower the
   validation accuracy;
5. the best few get k-level activations (:func:`rmtcompress.pruning.quantize_activations`) + fine-tuning;
6. :func:`~rmtcompress.shrink.select` picks the most accurate model within the budget, or the smallest within
   ``min_accuracy`` of the original.

Each candidate can be stored and read back through a :class:`Checkpoint` (``rmtcompress.lab`` keeps one in a sweeps
result store), so an interrupted search resumes where it stopped.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import math
import numbers
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Protocol

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import nn

from .._utils import validate_Xy
from ..core import MLPSpec
from ..errors import InvalidParameterError, RmtcompressWarning
from ..io import QUANTIZED_FORMAT_VERSION, model_file_bytes
from ..pruning import (
    Ensemble,
    GradualMagnitudeConfig,
    MagnitudeConfig,
    QuantizedConv2d,
    QuantizedLinear,
    TernaryWeightConfig,
    TrainConfig,
    UniformWeightConfig,
    WeightSharingConfig,
    augment_for,
    evaluate,
    make_mlp,
    prunable_layers,
    prune,
    quantize_activations,
    quantize_weights,
    remove,
    train,
    train_val_split,
)
from ._allocation import ALLOCATIONS, Allocation, fit_allocation, predict_layer_bits
from ._budget import format_bytes
from ._compact import compact
from ._config import SHRINK_RULES, Recipe, SearchSpace, WeightFormat, get_effort, parse_weight_format
from ._result import FrontierPoint, ShrinkResult, select

__all__ = ["Checkpoint", "ShrinkWarning", "fingerprint", "shrink"]

BIAS_OPTIONS = ("float16", "float32")
_CALIBRATION_ROWS = 4096
_PROXY_ROUNDS = 3
_WEIGHT_LAYERS = (nn.Linear, nn.Conv2d, QuantizedLinear, QuantizedConv2d)
_TRIM_ROUNDS = 6
_MAX_COMBINATIONS = 256  # ensemble_joint: member combinations tried at most (else each member's own best)


class ShrinkWarning(RmtcompressWarning):
    """Something the search could not do as asked (no candidate qualified, a step skipped)."""


class Checkpoint(Protocol):
    """Where finished candidates are kept so that an interrupted search resumes (``rmtcompress.lab`` has one).

    ``key`` identifies a candidate completely (fingerprints of the model and data, the seed, the search space and
    the recipe); a stored candidate is returned as its record (:meth:`FrontierPoint.record`) and its model.
    """

    def load(self, key: Mapping[str, Any]) -> tuple[dict[str, Any], nn.Module] | None:
        """The stored record and model of ``key``, or None."""

    def save(self, key: Mapping[str, Any], record: dict[str, Any], model: nn.Module) -> None:
        """Store a finished candidate."""


Progress = Callable[[int, int, str], None]


def fingerprint(*parts: Any) -> str:
    """sha256 over arrays / tensors / models (their state) / plain values: identifies the inputs of a search."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, nn.Module):
            for name, t in sorted(part.state_dict().items()):
                h.update(name.encode())
                h.update(t.detach().cpu().contiguous().numpy().tobytes())
            h.update(repr(part).encode())
        elif isinstance(part, torch.Tensor):
            h.update(part.detach().cpu().contiguous().numpy().tobytes())
        elif isinstance(part, np.ndarray):
            h.update(str(part.dtype).encode())
            h.update(str(part.shape).encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(repr(part).encode())
        h.update(b"\x00")
    return h.hexdigest()


# ============================================================================================ inputs


def _check_model(model: nn.Module, X: NDArray[np.float64], n_classes: int) -> None:
    """Clear errors for a model the search cannot use: no weight layer, NaN/inf, data of the wrong width."""
    layers = prunable_layers(model)  # raises when there is no nn.Linear / nn.Conv2d
    for name, p in model.named_parameters():
        bad = int((~torch.isfinite(p.detach())).sum())
        if bad:
            raise InvalidParameterError(f"parameter {name!r} of the model holds {bad} NaN/inf value(s)")
    first = layers[0][1]
    if isinstance(first, nn.Linear) and model is not first:
        head: nn.Module = model
        while isinstance(head, nn.Sequential) and len(head):
            head = head[0]
        if head is first and X.shape[1] != first.in_features:
            raise InvalidParameterError(
                f"X has {X.shape[1]} columns but the model's first layer {layers[0][0]!r} takes "
                f"{first.in_features} inputs"
            )
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.from_numpy(np.ascontiguousarray(X[:2], dtype=np.float32)))
    except RuntimeError as exc:
        raise InvalidParameterError(f"X (width {X.shape[1]}) does not fit the model: {exc}") from exc
    finally:
        model.train(was)
    if out.dim() != 2 or out.shape[1] < n_classes:
        raise InvalidParameterError(
            f"the model returns {tuple(out.shape[1:])} outputs per row, but y has {n_classes} classes"
        )


def _check_budget(budget_bytes: object, min_accuracy: object) -> tuple[int | None, float | None]:
    if budget_bytes is None and min_accuracy is None:
        raise InvalidParameterError(
            "give budget_bytes= (the most accurate model within it) or min_accuracy= (the smallest model within "
            "that much validation accuracy of the original), or both"
        )
    budget: int | None = None
    if budget_bytes is not None:
        if (
            isinstance(budget_bytes, bool)
            or not isinstance(budget_bytes, numbers.Integral)
            or budget_bytes <= 0
        ):
            raise InvalidParameterError(f"budget_bytes must be a positive integer; got {budget_bytes!r}")
        budget = int(budget_bytes)
    tol: float | None = None
    if min_accuracy is not None:
        if isinstance(min_accuracy, bool) or not isinstance(min_accuracy, numbers.Real):
            raise InvalidParameterError(f"min_accuracy must be a number in [0, 1); got {min_accuracy!r}")
        tol = float(min_accuracy)
        if not 0.0 <= tol < 1.0:
            raise InvalidParameterError(
                "min_accuracy is the largest allowed drop of validation accuracy from the original, in [0, 1) "
                f"(e.g. 0.01 = one point); got {min_accuracy!r}"
            )
    return budget, tol


# ============================================================================================ building blocks


@dataclass
class _Context:
    X: NDArray[np.float64]
    y: NDArray[np.int64]
    val_idx: NDArray[np.int64]
    fit_idx: NDArray[np.int64]
    space: SearchSpace
    seed: int
    val_fraction: float
    X_test: NDArray[np.float64] | None
    y_test: NDArray[np.int64] | None
    teacher: nn.Module | None = None
    order_seed: int | None = None  # an ensemble member's minibatch order (same split, other order)
    # the validation rows are the caller's X_val, appended to X (not a seeded split)
    explicit_val: bool = False

    def train_config(self, epochs: int) -> TrainConfig:
        # val_fraction 0 is a refit: every row trains, nothing selects an epoch, so the last one is kept and a
        # constant step size is annealed to 0 (the last epoch then is not one noisy step among many)
        every = self.val_fraction == 0
        schedule = "anneal" if every and self.space.lr_schedule == "constant" else self.space.lr_schedule
        return TrainConfig(
            epochs=epochs,
            batch_size=self.space.batch_size,
            lr=self.space.lr,
            val_fraction=self.val_fraction,
            select="last" if every else "best",
            seed=self.seed,
            order_seed=self.order_seed,
            distill=self.space.distill if self.teacher is not None else 0.0,
            temperature=self.space.temperature,
            lr_schedule=schedule,  # type: ignore[arg-type]
            label_smoothing=self.space.label_smoothing,
            ema=self.space.ema,
            weight_decay=self.space.weight_decay,
            augment=self.space.augment,
            dropout=self.space.dropout,
            mixup=self.space.mixup,
            sam=self.space.sam,
        )

    def fit(self, model: nn.Module, epochs: int, **kwargs: Any) -> None:
        """Train ``model`` in place for ``epochs`` on the training rows, selecting on the validation rows (a refit
        context, ``val_fraction`` 0: on every row, the last epoch kept); ``kwargs`` go to the training loop."""
        rows = self.val_idx if self.val_fraction > 0 else None
        train(model, self.X, self.y, self.train_config(epochs), teacher=self.teacher, val_rows=rows, **kwargs)

    @property
    def split_key(self) -> Any:
        """The validation split's part of a stored net's key."""
        return {"X_val_rows": int(self.val_idx.size)} if self.explicit_val else self.val_fraction

    def val_accuracy(self, model: nn.Module) -> float:
        return evaluate(model, self.X[self.val_idx], self.y[self.val_idx])[1]

    def test_accuracy(self, model: nn.Module) -> float | None:
        if self.X_test is None or self.y_test is None:
            return None
        return evaluate(model, self.X_test, self.y_test)[1]


def _layer_arrays(model: nn.Module) -> tuple[list[str], list[NDArray[np.float64]]]:
    layers = prunable_layers(model)
    names = [n for n, _ in layers]
    arrays = []
    for _, m in layers:
        weight = m._parameters["weight"]
        assert weight is not None
        w = weight.detach().to(torch.float64).cpu().numpy()
        mask = m._buffers.get("weight_mask")
        if mask is not None:
            w = w * mask.cpu().numpy()
        arrays.append(w)
    return names, arrays


def _oneshot(model: nn.Module, names: list[str], sparsity: Mapping[str, float]) -> nn.Module:
    """Copy of ``model`` pruned once by magnitude to the per-layer sparsities (masks made permanent)."""
    out = copy.deepcopy(model)
    for name in names:
        prune(out, MagnitudeConfig(sparsity=float(sparsity[name])), layers=[name])
    remove(out)
    return out


def _gradual(
    model: nn.Module, ctx: _Context, names: list[str], sparsity: Mapping[str, float], rule: str
) -> nn.Module:
    """Copy of ``model`` pruned by the rule to the per-layer sparsities, fine-tuned, masks made permanent."""
    out = copy.deepcopy(model)
    space = ctx.space
    criterion = SHRINK_RULES[rule]
    if criterion == "oneshot":
        for name in names:
            prune(out, MagnitudeConfig(sparsity=float(sparsity[name])), layers=[name])
        ctx.fit(out, space.prune_epochs)
    else:
        n_fit = ctx.fit_idx.size
        total = math.ceil(n_fit / space.batch_size) * space.prune_epochs
        end = max(1, min(total, round(space.prune_end * total)))
        schedule = GradualMagnitudeConfig(
            final_sparsity=0.0,
            begin_step=0,
            end_step=end,
            frequency=max(1, end // 30),
            criterion=criterion,  # type: ignore[arg-type]
            layer_sparsity={n: float(sparsity[n]) for n in names},
        )
        ctx.fit(out, space.prune_epochs, schedule=schedule, layers=names)
    remove(out)
    return out


def _weight_config(
    fmt: WeightFormat,
) -> WeightSharingConfig | UniformWeightConfig | TernaryWeightConfig | None:
    if fmt.scheme == "shared":
        assert fmt.bits is not None
        return WeightSharingConfig(bits=fmt.bits, scope="layer")
    if fmt.scheme == "uniform":
        assert fmt.bits is not None
        return UniformWeightConfig(bits=fmt.bits, scope="channel")
    if fmt.scheme == "ternary":
        return TernaryWeightConfig(scope="layer", alpha="trained", threshold=0.0)
    return None  # float32: the pruned float net


def _quantize(model: nn.Module, fmt: WeightFormat, seed: int) -> nn.Module:
    cfg = _weight_config(fmt)
    if cfg is None:
        return copy.deepcopy(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RmtcompressWarning)  # Lloyd's iteration cap: the last iterate is fine
        return quantize_weights(model, cfg, seed=seed)


def _file_bytes(model: nn.Module, biases: str) -> int:
    """Exact file size; float16 biases are an option of the quantized-net format only."""
    if biases == "float32":
        return model_file_bytes(model)
    return model_file_bytes(model, biases=biases)


def _round_biases(model: nn.Module) -> nn.Module:
    out = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in out.named_parameters():
            if name.endswith("bias"):
                p.copy_(p.to(torch.float16).to(p.dtype))
    return out


def _stats(model: nn.Module) -> tuple[float, tuple[int, ...]]:
    zeros = total = 0
    widths: list[int] = []
    for m in model.modules():
        w = getattr(m, "weight", None)
        if isinstance(w, torch.Tensor) and isinstance(m, _WEIGHT_LAYERS):
            zeros += int((w.detach() == 0).sum())
            total += w.numel()
            widths.append(int(w.shape[0]))
    return (zeros / total if total else 0.0), tuple(widths)


# ============================================================================================ allocation


def _proxy_bytes(
    base: nn.Module,
    names: list[str],
    sizes: NDArray[np.int64],
    counts: NDArray[np.int64],
    fmt: WeightFormat,
    seed: int,
) -> int:
    sparsity = {n: 1.0 - float(k) / float(s) for n, k, s in zip(names, counts, sizes, strict=True)}
    proxy = compact(_oneshot(base, names, sparsity))
    q = _quantize(proxy, fmt, seed)
    return _file_bytes(_round_biases(q), "float16" if fmt.scheme != "float32" else "float32")


def _fit_counts(
    base: nn.Module,
    names: list[str],
    allocation: Allocation,
    fmt: WeightFormat,
    target_bytes: float,
    seed: int,
) -> NDArray[np.int64] | None:
    """Keep counts whose exact proxy file fits ``target_bytes``: predict, measure the fixed costs, correct.

    Returns the largest verified counts, or None when even one weight per layer does not fit.
    """
    sizes = np.array(allocation.sizes, dtype=np.int64)
    floor = np.ones_like(sizes)

    def fit(overhead: float) -> NDArray[np.int64]:
        try:
            return fit_allocation(allocation, 8.0 * target_bytes, fmt.code_bits, overhead_bits=overhead)
        except InvalidParameterError:
            return floor

    best: NDArray[np.int64] | None = None
    counts = fit(0.0)
    # bits by which proxies landed above the target so far: the fixed costs can shrink with the counts, so the
    # plain correction alone may approach the target from above without reaching it
    overshoot = 0.0
    for _ in range(_PROXY_ROUNDS):
        actual = _proxy_bytes(base, names, sizes, counts, fmt, seed)
        if actual <= target_bytes:
            if best is None or counts.sum() > best.sum():
                best = counts
            if actual >= 0.97 * target_bytes or np.array_equal(counts, sizes):
                break
        else:
            overshoot += 8.0 * (actual - target_bytes)
        predicted = float(predict_layer_bits(sizes, counts, fmt.code_bits).sum())
        nxt = fit(8.0 * actual - predicted + overshoot)
        if np.array_equal(nxt, counts):
            break
        counts = nxt
    if best is None and _proxy_bytes(base, names, sizes, floor, fmt, seed) <= target_bytes:
        best = floor
    return best


def _trim(net: nn.Module, q: nn.Module, fmt: WeightFormat, target_bytes: int, seed: int) -> nn.Module:
    """``q`` (the quantized ``net``) if its file fits ``target_bytes``, else ``net`` pruned a little further (one shot,
    by magnitude, every layer's kept count scaled alike), compacted and quantized again until it fits.

    Gradual pruning keeps each layer's count but not which neurons die, so the compacted net can be a few per cent
    larger than the one-shot proxy the allocation was fitted on; the codes (fixed from here on) fix the file size.
    """
    biases = "float32" if fmt.scheme == "float32" else "float16"
    for _ in range(_TRIM_ROUNDS):
        actual = _file_bytes(_round_biases(q) if biases == "float16" else q, biases)
        if actual <= target_bytes:
            return q
        names, arrays = _layer_arrays(net)
        sizes = np.array([a.size for a in arrays], dtype=np.int64)
        counts = np.array([int(np.count_nonzero(a)) for a in arrays], dtype=np.int64)
        payload = predict_layer_bits(sizes, counts, fmt.code_bits)
        overhead = 8.0 * actual - float(payload.sum())
        lo, hi = 0.0, 1.0
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            k = np.maximum(np.floor(mid * counts), 1)
            if float(predict_layer_bits(sizes, k, fmt.code_bits).sum()) + overhead <= 8.0 * target_bytes:
                lo = mid
            else:
                hi = mid
        keep = np.maximum(np.floor(min(lo, 0.995) * counts), 1).astype(np.int64)
        net = compact(
            _oneshot(net, names, {n: 1.0 - k / z for n, k, z in zip(names, keep, sizes, strict=True)})
        )
        q = _quantize(net, fmt, seed)
    return q


def _counts_at_sparsity(allocation: Allocation, sparsity: float) -> NDArray[np.int64]:
    """Counts of ``allocation`` keeping ``(1 − sparsity)`` of all weights (bisection on λ)."""
    sizes = np.array(allocation.sizes, dtype=np.int64)
    goal = (1.0 - sparsity) * float(sizes.sum())
    lo, hi = 0.0, allocation.lam_max
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if float(allocation.counts(mid).sum()) <= goal:
            lo = mid
        else:
            hi = mid
    return np.maximum(allocation.counts(lo), 1)


# ============================================================================================ the search


@dataclass(frozen=True)
class _Planned:
    base: str
    rule: str
    allocation: str
    sparsity: tuple[tuple[str, float], ...]
    fmt: WeightFormat
    target_bytes: int | None

    def recipe(self, space: SearchSpace) -> Recipe:
        return Recipe(
            base=self.base,
            rule=self.rule,
            allocation=self.allocation,
            layer_sparsity=self.sparsity,
            weights=str(self.fmt),
            prune_epochs=space.prune_epochs,
            finetune_epochs=space.finetune_epochs if self.fmt.scheme != "float32" else 0,
            target_bytes=self.target_bytes,
        )


def _plan(
    bases: Mapping[str, nn.Module],
    space: SearchSpace,
    budget: int | None,
    seed: int,
    smallest: int | None,
    notes: list[str],
) -> list[_Planned]:
    plans: list[_Planned] = []
    seen: set[tuple[Any, ...]] = set()

    def add(p: _Planned) -> None:
        key = (p.base, p.rule, p.sparsity, str(p.fmt))
        if key not in seen:
            seen.add(key)
            plans.append(p)

    for base_name, base in bases.items():
        names, arrays = _layer_arrays(base)
        allocations = {a: ALLOCATIONS[a](arrays) for a in space.allocations}
        for rule in space.rules:
            for fmt in space.formats():
                fitted_sparsity: float | None = None
                for alloc_name, alloc in allocations.items():
                    sizes = np.array(alloc.sizes, dtype=np.int64)
                    if budget is not None:
                        target = max(space.margin * budget, min(float(budget), float(smallest or 0)))
                        fitted = _fit_counts(base, names, alloc, fmt, target, seed)
                        if fitted is None:
                            notes.append(
                                f"{fmt} weights with the {alloc_name} allocation cannot reach {budget:,} B"
                            )
                            continue
                        counts = fitted
                        sp = tuple(
                            (n, round(1.0 - float(k) / float(s), 6))
                            for n, k, s in zip(names, counts, sizes, strict=True)
                        )
                        add(_Planned(base_name, rule, alloc_name, sp, fmt, int(target)))
                        overall = 1.0 - float(counts.sum()) / float(sizes.sum())
                        fitted_sparsity = (
                            overall if fitted_sparsity is None else min(fitted_sparsity, overall)
                        )
                grid = list(space.sparsities)
                alloc_name = space.allocations[0]
                alloc = allocations[alloc_name]
                sizes = np.array(alloc.sizes, dtype=np.int64)
                if budget is not None:
                    if fitted_sparsity is None:
                        continue  # the format does not reach the budget at all
                    # a roomy budget: sparser grid points too (pruning also regularises); a tight one: none
                    roomy = fitted_sparsity < space.grid_below
                    grid = [s for s in grid if roomy and s > fitted_sparsity + 1e-3][: space.grid_points]
                for s in grid:
                    counts = _counts_at_sparsity(alloc, s)
                    sp = tuple(
                        (n, round(1.0 - float(k) / float(z), 6))
                        for n, k, z in zip(names, counts, sizes, strict=True)
                    )
                    add(_Planned(base_name, rule, alloc_name, sp, fmt, None))
    return plans


def _mlp_shape(model: nn.Module) -> tuple[int, tuple[int, ...], str] | None:
    """``(input_dim, hidden widths, activation)`` of a plain ``Linear → ReLU|Tanh → … → Linear`` Sequential."""
    if not isinstance(model, nn.Sequential) or len(model) == 0:
        return None
    mods = list(model)
    linears = [m for m in mods[0::2] if isinstance(m, nn.Linear)]
    acts = mods[1::2]
    if len(mods) % 2 == 0 or len(linears) != len(mods[0::2]):
        return None
    kinds = {type(a) for a in acts}
    if kinds and kinds not in ({nn.ReLU}, {nn.Tanh}):
        return None
    act = "tanh" if kinds == {nn.Tanh} else "relu"
    return int(linears[0].in_features), tuple(int(m.out_features) for m in linears[:-1]), act


_TRAIN_DEFAULTS = {f.name: f.default for f in fields(TrainConfig)}


def _training_options(ctx: _Context) -> dict[str, Any]:
    """The training options that change a stored net, beyond epochs, lr and batch size — only the non-default ones,
    so that stores written before they existed still match a default search."""
    cfg = ctx.train_config(1)
    out: dict[str, Any] = {}
    if cfg.distill > 0:
        out["distill"] = [cfg.distill, cfg.temperature, fingerprint(ctx.teacher)]
    if cfg.lr_schedule != "constant":
        out["lr_schedule"] = cfg.lr_schedule
    # in this order (it is the order of the keys of stored nets); each only when it differs from its default
    for name in ("label_smoothing", "ema", "weight_decay", "augment", "dropout", "mixup", "sam"):
        if getattr(cfg, name) != _TRAIN_DEFAULTS[name]:
            out[name] = getattr(cfg, name)
    return out


def _start_shape(model: nn.Module | MLPSpec) -> tuple[int, tuple[int, ...], str] | None:
    """``(input_dim, hidden widths, activation)`` of an MLPSpec (checked: one activation, ReLU or tanh) or of a plain
    MLP Sequential; None for other models (their widths cannot be scaled)."""
    if not isinstance(model, MLPSpec):
        return _mlp_shape(model)
    acts = {getattr(a, "name", a) for a in model.activations}
    if len(acts) != 1 or not acts <= {"relu", "tanh"}:
        raise InvalidParameterError(
            f"an MLPSpec for shrink needs one activation, 'relu' or 'tanh', for all layers; got {model.activations}"
        )
    return model.input_dim, model.widths, str(acts.pop())


def _bases(
    model: nn.Module | MLPSpec,
    ctx: _Context,
    n_classes: int,
    progress: Progress | None,
    notes: list[str],
    checkpoint: Checkpoint | None,
    data_key: str,
) -> dict[str, nn.Module]:
    """The trained nets the search starts from: the model itself, and nets of other widths trained on ``(X, y)``."""
    bases: dict[str, nn.Module] = {}
    factors = list(ctx.space.width_factors)
    shape = _start_shape(model)
    if not isinstance(model, MLPSpec):
        bases["original"] = copy.deepcopy(model).eval()
        factors = [f for f in factors if f < 1.0]
        if factors and shape is None:
            notes.append("width candidates skipped: the model is not a plain Linear/ReLU|Tanh nn.Sequential")
            factors = []
    for f in factors:
        assert shape is not None
        name, net = _width_net(shape, f, ctx, n_classes, progress, checkpoint, data_key, bases)
        bases[name] = net
    return bases


def _width_net(
    shape: tuple[int, tuple[int, ...], str],
    factor: float,
    ctx: _Context,
    n_classes: int,
    progress: Progress | None,
    checkpoint: Checkpoint | None,
    data_key: str,
    known: Mapping[str, nn.Module],
    member: int = 0,
) -> tuple[str, nn.Module]:
    """The net of ``factor`` × the hidden widths trained on ``ctx``'s rows (read back from the store when there),
    named ``width=…``; ``member`` m > 0 is the m-th other net of that width (ensembles): initialised with and
    shuffled by the seed of ``ctx`` (whose ``order_seed`` is set), named ``width=… #m+1``."""
    input_dim, hidden, act = shape
    widths = tuple(max(1, round(factor * w)) for w in hidden)
    name = (
        "width=" + "-".join(map(str, (input_dim, *widths, n_classes))) + (f" #{member + 1}" if member else "")
    )
    if name in known:
        return name, known[name]
    init_seed = ctx.seed if ctx.order_seed is None else ctx.order_seed
    key = {
        "kind": "shrink-base",
        "data": data_key,
        "seed": ctx.seed,
        "val_fraction": ctx.split_key,
        "net": name,
        "activation": act,
        "train": [ctx.space.train_epochs, ctx.space.lr, ctx.space.batch_size],
        **_training_options(ctx),
    }
    if ctx.order_seed is not None:
        key["order_seed"] = ctx.order_seed
    stored = None if checkpoint is None else checkpoint.load(key)
    if stored is not None:
        return name, stored[1].eval()
    if progress is not None:
        progress(0, 0, f"training {name}")
    net = make_mlp(input_dim, widths, n_classes, activation=act, seed=init_seed)  # type: ignore[arg-type]
    ctx.fit(net, ctx.space.train_epochs)
    net.eval()
    if checkpoint is not None:
        checkpoint.save(key, {"kind": "base", "net": name}, net)
    return name, net


def _member_seed(seed: int, member: int) -> int:
    """The seed of an ensemble's ``member``-th net (initialisation and minibatch order); member 0 is the search's."""
    return seed + 7919 * member


def _members(
    model: nn.Module | MLPSpec,
    ctx: _Context,
    n_classes: int,
    bases: Mapping[str, nn.Module],
    progress: Progress | None,
    checkpoint: Checkpoint | None,
    data_key: str,
) -> dict[str, tuple[nn.Module, _Context]]:
    """The ensemble's member nets (and the context each trains in), in order; empty when the model's shape has no
    widths to scale. The first member is the search's own net of ``ensemble_width`` (the model itself at width 1)."""
    space = ctx.space
    shape = _start_shape(model)
    if shape is None:
        return {}
    out: dict[str, tuple[nn.Module, _Context]] = {}
    f = space.ensemble_width
    for m in range(space.ensemble_size):
        if m == 0 and f == 1.0 and "original" in bases:
            out["original"] = (bases["original"], ctx)
            continue
        member_ctx = ctx if m == 0 else replace(ctx, order_seed=_member_seed(ctx.seed, m))
        name, net = _width_net(shape, f, member_ctx, n_classes, progress, checkpoint, data_key, bases, m)
        out[name] = (net, member_ctx)
    return out


def _choose_members(choices: list[list[FrontierPoint]], ctx: _Context, joint: bool) -> list[FrontierPoint]:
    """One candidate per member (``choices[m]``: member m's candidates within its share): each member's most
    accurate one on validation (ties → smaller); with ``joint``, the combination whose mean (the model the ensemble
    candidate will be) is most accurate on validation (ties → fewer bytes)."""
    own = [max(c, key=lambda p: (p.val_accuracy, -p.file_bytes)) for c in choices]
    if not joint:
        return own
    best, best_key = own, (-1.0, 0)
    for combo in itertools.product(*choices):
        models = [p.model for p in combo]
        assert all(m is not None for m in models)
        key = (ctx.val_accuracy(Ensemble(models)), -sum(p.file_bytes for p in combo))  # type: ignore[arg-type]
        if key > best_key:
            best, best_key = list(combo), key
    return best


def _ensemble(
    points: list[FrontierPoint], ctx: _Context, budget: int | None, refit_of: FrontierPoint | None = None
) -> FrontierPoint:
    """One candidate averaging the members' models (their file in one: float16 biases unless every member kept
    float32 ones and the float32 file fits). With ``refit_of`` (the ensemble candidate whose members ``points``
    refit), the refit's point: its validation accuracy is the candidate's, since the refits trained on those rows."""
    t = time.perf_counter()
    models = [p.model for p in points]
    assert all(m is not None for m in models)
    biases = "float32" if all(p.biases == "float32" for p in points) else "float16"
    ens: nn.Module = Ensemble(models)  # type: ignore[arg-type]
    if biases == "float32" and budget is not None and _file_bytes(ens, biases) > budget:
        biases = "float16"
    # a copy either way: the members' own frontier points keep their models
    ens = _round_biases(ens) if biases == "float16" else copy.deepcopy(ens)
    first = points[0].recipe
    recipe = Recipe(
        base="ensemble",
        rule="ensemble",
        allocation=first.allocation,
        weights="+".join(dict.fromkeys(p.recipe.weights for p in points)),
        prune_epochs=first.prune_epochs,
        finetune_epochs=first.finetune_epochs,
        target_bytes=budget,
        refit=refit_of is not None,
        members=tuple(p.recipe for p in points),
    )
    sparsity, widths = _stats(ens)
    return FrontierPoint(
        recipe=recipe,
        val_accuracy=ctx.val_accuracy(ens) if refit_of is None else refit_of.val_accuracy,
        file_bytes=_file_bytes(ens, biases),
        test_accuracy=ctx.test_accuracy(ens),
        biases=biases,
        sparsity=sparsity,
        widths=widths,
        seconds=sum(p.seconds for p in points) + time.perf_counter() - t,
        model=ens.eval(),
    )


def _retrained(start: nn.Module, every: _Context) -> nn.Module:
    """A fresh net of ``start``'s architecture (a plain MLP the search trained), from the initialisation the search
    gave it, trained on every row of the refit context ``every`` for the space's ``train_epochs``."""
    shape = _mlp_shape(start)
    if shape is None:
        raise InvalidParameterError(
            "refit_start retrains only plain Linear/ReLU|Tanh nn.Sequential start nets"
        )
    input_dim, hidden, act = shape
    n_classes = int([m for m in start.modules() if isinstance(m, nn.Linear)][-1].out_features)
    init_seed = every.seed if every.order_seed is None else every.order_seed
    net = make_mlp(input_dim, hidden, n_classes, activation=act, seed=init_seed)  # type: ignore[arg-type]
    every.fit(net, every.space.train_epochs)
    return net.eval()


def _refit(parent: FrontierPoint, base: nn.Module, ctx: _Context, seed: int) -> FrontierPoint:
    """The selected candidate's recipe run again on every row of ``ctx``'s data (validation rows included), from the
    same start net: pruning to the same per-layer sparsities, the same weight format trimmed to the same byte target
    (the candidate's file size for a grid point), fine-tuning, the same activation levels; float16 biases when the
    candidate has them. Its ``val_accuracy`` is the candidate's: the validation rows trained it."""
    t = time.perf_counter()
    recipe = replace(parent.recipe, refit=True)
    n = ctx.y.size
    every = replace(ctx, val_idx=np.arange(0), fit_idx=np.arange(n), val_fraction=0.0)
    if ctx.space.refit_start and recipe.base != "original":
        base = _retrained(base, every)
    names = [name for name, _ in recipe.layer_sparsity]
    net = compact(_gradual(base, every, names, dict(recipe.layer_sparsity), recipe.rule))
    fmt = parse_weight_format(recipe.weights)
    q = _quantize(net, fmt, seed)
    q = _trim(net, q, fmt, recipe.target_bytes or parent.file_bytes, seed)
    if fmt.scheme != "float32" and recipe.finetune_epochs > 0:
        every.fit(q, recipe.finetune_epochs)
    if recipe.activation_bits is not None:
        calib = every.X[:: max(1, n // _CALIBRATION_ROWS)]
        q = quantize_activations(q, calib, levels=2**recipe.activation_bits, seed=seed)
        if recipe.activation_epochs > 0:
            every.fit(q, recipe.activation_epochs)
    if parent.biases == "float16":
        q = _round_biases(q)
    sparsity, widths = _stats(q)
    return FrontierPoint(
        recipe=recipe,
        val_accuracy=parent.val_accuracy,
        file_bytes=_file_bytes(q, parent.biases),
        test_accuracy=ctx.test_accuracy(q),
        biases=parent.biases,
        sparsity=sparsity,
        widths=widths,
        seconds=time.perf_counter() - t,
        model=q.eval(),
    )


def _check_extra(
    X_extra: ArrayLike | None, y_extra: ArrayLike | None, name: str, width: int
) -> tuple[NDArray[np.float64], NDArray[np.int64]] | None:
    """Validated optional data beside the training data (``name`` ``'test'`` or ``'val'``): both arrays or
    neither (None), of the training data's ``width`` (InvalidParameterError otherwise)."""
    if (X_extra is None) != (y_extra is None):
        raise InvalidParameterError(f"give both X_{name} and y_{name}, or neither")
    if X_extra is None or y_extra is None:
        return None
    Xe, ye = validate_Xy(X_extra, y_extra, X_name=f"X_{name}", y_name=f"y_{name}")
    if Xe.shape[1] != width:
        raise InvalidParameterError(f"X_{name} has {Xe.shape[1]} columns, X has {width}")
    return Xe, ye


def _check_data(
    X: ArrayLike, y: ArrayLike, X_test: ArrayLike | None, y_test: ArrayLike | None
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64] | None, NDArray[np.int64] | None]:
    """Validated training data and optional test data of the same width (InvalidParameterError otherwise)."""
    Xa, ya = validate_Xy(X, y)
    test = _check_extra(X_test, y_test, "test", Xa.shape[1])
    return (Xa, ya, None, None) if test is None else (Xa, ya, *test)


def refit(
    point: FrontierPoint,
    start: nn.Module,
    X: ArrayLike,
    y: ArrayLike,
    effort: str | SearchSpace = "default",
    seed: int = 0,
    *,
    X_test: ArrayLike | None = None,
    y_test: ArrayLike | None = None,
) -> FrontierPoint:
    """Run a frontier point's recipe again on every row of ``(X, y)``: what :func:`shrink` does to the selected
    candidate when the search space has ``refit``, for any candidate you pick.

    Args:
        point: A pruned candidate of a :class:`~rmtcompress.shrink.ShrinkResult`'s frontier (not an original).
        start: The net it was pruned from: the original model for ``recipe.base == "original"``, else the frontier's
            ``width=… (trained, as is)`` model of the same base.
        X: Inputs to train on, every row (no validation split is carved).
        y: Labels.
        effort: The search space the point came from (its training settings: step size, minibatch, label
            smoothing, pruning epochs and schedule end). Distillation is not applied: there is no teacher here.
        seed: Seed of the minibatch order and the Lloyd subsamples (the search's seed reproduces its refit).
        X_test: Optional test inputs, evaluated for the report.
        y_test: Test labels, with ``X_test``.

    Returns:
        The refit's :class:`~rmtcompress.shrink.FrontierPoint` (``recipe.refit`` True, ``model`` set); its
        ``val_accuracy`` is ``point``'s, since the refit has no validation rows of its own. Its file is trimmed to the
        point's byte target (its own file size for a grid point).

    Raises:
        InvalidParameterError: A point that was not pruned, a start net whose layers do not match the recipe,
            invalid data.
    """
    if not isinstance(point, FrontierPoint) or point.recipe.rule == "none":
        raise InvalidParameterError("refit needs a pruned candidate of a frontier (not an original model)")
    if point.recipe.members:
        raise InvalidParameterError(
            "an ensemble is refit member by member: call refit on each member's own frontier point (the "
            "recipes in point.recipe.members) with that member's start net, and average them with "
            "rc.pruning.Ensemble"
        )
    if not isinstance(start, nn.Module):
        raise InvalidParameterError(f"start must be an nn.Module; got {type(start).__name__}")
    names = {name for name, _ in prunable_layers(start)}
    missing = [name for name, _ in point.recipe.layer_sparsity if name not in names]
    if missing:
        raise InvalidParameterError(
            f"start has no weight layers named {missing}: it is not the candidate's start net"
        )
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InvalidParameterError(f"seed must be a non-negative integer; got {seed!r}")
    space = get_effort(effort)
    Xa, ya, Xt, yt = _check_data(X, y, X_test, y_test)
    _check_model(start, Xa, int(ya.max()) + 1)
    empty = np.arange(0)
    return _refit(point, start, _Context(Xa, ya, empty, empty, space, int(seed), 0.0, Xt, yt), int(seed))


def _finish_point(
    model: nn.Module, recipe: Recipe, ctx: _Context, seconds: float, allow_fp16: bool, budget: int | None
) -> FrontierPoint:
    """Choose the bias storage on validation, measure the file, evaluate (validation; test for the report).

    Float16 biases are kept unless float32 ones are more accurate on validation and still fit the budget.
    """
    val = ctx.val_accuracy(model)
    biases = "float32"
    if allow_fp16:
        rounded = _round_biases(model)
        val16 = ctx.val_accuracy(rounded)
        if val16 >= val or (budget is not None and _file_bytes(model, "float32") > budget):
            model, val, biases = rounded, val16, "float16"
    sparsity, widths = _stats(model)
    return FrontierPoint(
        recipe=recipe,
        val_accuracy=val,
        file_bytes=_file_bytes(model, biases),
        test_accuracy=ctx.test_accuracy(model),
        biases=biases,
        sparsity=sparsity,
        widths=widths,
        seconds=seconds,
        model=model.eval(),
    )


def shrink(
    model: nn.Module | MLPSpec,
    X: ArrayLike,
    y: ArrayLike,
    budget_bytes: int | None = None,
    min_accuracy: float | None = None,
    seed: int = 0,
    effort: str | SearchSpace = "default",
    *,
    X_test: ArrayLike | None = None,
    y_test: ArrayLike | None = None,
    val_fraction: float | None = None,
    checkpoint: Checkpoint | None = None,
    progress: Progress | None = None,
    X_val: ArrayLike | None = None,
    y_val: ArrayLike | None = None,
) -> ShrinkResult:
    """Shrink a trained net to a byte budget: prune × allocate × quantize weights × quantize activations, select on
    validation.

    Args:
        model: A trained classifier returning logits whose weight layers are ``nn.Linear`` / ``nn.Conv2d``
            (``nn.Sequential`` MLPs and CNNs), or an :class:`~rmtcompress.MLPSpec` whose widths (times
            ``width_factors`` of the search space) are trained first (ReLU or tanh, Adam).
        X: Training inputs ``(n, p)`` — the data the model was trained on (or more of its kind); the validation
            split is carved from it, unless ``X_val`` is given.
        y: Training labels ``(n,)``.
        budget_bytes: Largest file size (bytes) of the selected model.
        min_accuracy: Largest allowed drop of validation accuracy from the original, in ``[0, 1)``: with it the
            smallest model within that drop is selected (within ``budget_bytes`` too, if given).
        seed: Seed of the split, the training runs and the Lloyd subsamples.
        effort: Name of a registered search space (:data:`~rmtcompress.shrink.EFFORTS`) or a
            :class:`~rmtcompress.shrink.SearchSpace`.
        X_test: Optional test inputs: every candidate is evaluated on them for the report; selection never reads
            them.
        y_test: Test labels, with ``X_test``.
        val_fraction: Fraction of every class of ``(X, y)`` held out for validation, in ``(0, 0.5]`` (default 0.1;
            not with ``X_val``).
        checkpoint: Optional store of finished candidates (resume).
        progress: Optional callback ``(done, total, message)``.
        X_val: Optional validation inputs to select on instead of a split of ``(X, y)``: every row of ``X`` then
            trains. Rows the model never saw make the selection fair to it (a split of rows it trained on flatters
            the candidates pruned from it over the nets the search trains). The refit (``SearchSpace.refit``) trains
            on them too, like on the split's rows.
        y_val: Validation labels, with ``X_val`` (classes of ``y``).

    Returns:
        A :class:`~rmtcompress.shrink.ShrinkResult` (``.best``, ``.frontier``, ``.plot(path)``, ``.table()``).

    Raises:
        InvalidParameterError: No budget nor tolerance; a budget below the smallest model the search reaches (the
            message names that size); data whose width does not fit the model; NaN/inf weights; a layer the weight
            quantizer does not support (named); invalid arguments.
    """
    t0 = time.perf_counter()
    budget, tol = _check_budget(budget_bytes, min_accuracy)
    space = get_effort(effort)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InvalidParameterError(f"seed must be a non-negative integer; got {seed!r}")
    seed = int(seed)
    Xa, ya, Xt, yt = _check_data(X, y, X_test, y_test)
    n_classes = int(ya.max()) + 1
    teacher = copy.deepcopy(model).eval() if isinstance(model, nn.Module) and space.distill > 0 else None
    if X_val is None and y_val is None:
        val_fraction = 0.1 if val_fraction is None else val_fraction
        TrainConfig(val_fraction=val_fraction, select="last")  # validates val_fraction (a number in [0, 0.5])
        if val_fraction == 0:
            raise InvalidParameterError(
                "val_fraction must lie in (0, 0.5]: the search selects on a validation split"
            )
        fit_idx, val_idx = train_val_split(ya, val_fraction, seed)
        ctx = _Context(Xa, ya, val_idx, fit_idx, space, seed, val_fraction, Xt, yt, teacher)
    else:
        if val_fraction is not None:
            raise InvalidParameterError("give val_fraction or X_val, not both: X_val is the validation split")
        val = _check_extra(X_val, y_val, "val", Xa.shape[1])
        assert val is not None  # one of them was given
        Xv, yv = val
        if int(yv.max()) >= n_classes:
            raise InvalidParameterError(
                f"y_val has label {int(yv.max())}, but y's classes are 0 … {n_classes - 1}"
            )
        n, m = ya.size, yv.size
        Xa, ya = np.concatenate([Xa, Xv]), np.concatenate([ya, yv])
        fit_idx, val_idx = np.arange(n, dtype=np.int64), np.arange(n, n + m, dtype=np.int64)
        # the training loop reads the rows, not the fraction (which only has to be positive)
        val_fraction = min(0.5, m / (n + m))
        ctx = _Context(
            Xa, ya, val_idx, fit_idx, space, seed, val_fraction, Xt, yt, teacher, explicit_val=True
        )
    notes: list[str] = []
    if ctx.explicit_val:
        notes.append(f"validation: the {ctx.val_idx.size:,} rows of X_val (every row of X trains)")

    if isinstance(model, MLPSpec):
        if model.input_dim != Xa.shape[1]:
            raise InvalidParameterError(
                f"X has {Xa.shape[1]} columns but the MLPSpec takes {model.input_dim}"
            )
    elif isinstance(model, nn.Module):
        _check_model(model, Xa, n_classes)
    else:
        raise InvalidParameterError(f"model must be an nn.Module or an MLPSpec; got {type(model).__name__}")
    augment_for(space.augment, Xa.shape[1])  # refused before anything is trained or written
    # the smallest model the space reaches: one weight per layer (so every hidden layer compacts to one neuron),
    # the cheapest format, float16 biases; measured on the architecture before anything is trained
    if isinstance(model, MLPSpec):
        template: nn.Module = make_mlp(model.input_dim, model.widths, n_classes, seed=seed)
    else:
        template = model
    cheapest = min(space.formats(), key=lambda f: f.code_bits)
    names, arrays = _layer_arrays(template)
    floor_sizes = np.array([a.size for a in arrays], dtype=np.int64)
    smallest = _proxy_bytes(template, names, floor_sizes, np.ones_like(floor_sizes), cheapest, seed)
    if budget is not None and budget < smallest:
        raise InvalidParameterError(
            f"a budget of {budget:,} B ({format_bytes(budget)}) is below the smallest model this search reaches: "
            f"{smallest:,} B ({format_bytes(smallest)}, one weight per layer, {cheapest} weights, float16 biases)"
        )
    data_key = fingerprint(Xa, ya)
    bases = _bases(model, ctx, n_classes, progress, notes, checkpoint, data_key)
    originals = [
        FrontierPoint(
            recipe=Recipe(base=name),
            val_accuracy=ctx.val_accuracy(net),
            file_bytes=_file_bytes(net, "float32"),
            test_accuracy=ctx.test_accuracy(net),
            sparsity=_stats(net)[0],
            widths=_stats(net)[1],
            model=net,
        )
        for name, net in bases.items()
    ]
    original = originals[0]

    plans = _plan(bases, space, budget, seed, smallest, notes)
    # the start nets and the context each trains in (ensemble members: their own minibatch order)
    starts: dict[str, tuple[nn.Module, _Context]] = {name: (b, ctx) for name, b in bases.items()}
    members: dict[str, tuple[nn.Module, _Context]] = {}
    member_plans: list[_Planned] = []
    share = 0 if budget is None else budget // space.ensemble_size  # each member's bytes
    if space.ensemble_size > 1:
        if budget is None:
            notes.append("ensembles skipped: they need a byte budget (each member gets its share)")
        else:
            members = _members(model, ctx, n_classes, bases, progress, checkpoint, data_key)
            if not members:
                notes.append("ensembles skipped: the model is not a plain Linear/ReLU|Tanh nn.Sequential")
            member_notes: list[str] = []
            member_space = replace(space, grid_points=0)
            member_plans = _plan(
                {n: b for n, (b, _) in members.items()}, member_space, share, seed, None, member_notes
            )
            notes.extend(f"ensemble member ({share:,} B): {n}" for n in member_notes)
            starts.update(members)
    # what a candidate's training depends on besides its recipe (so equal recipes of two spaces are shared)
    space_key = {k: getattr(space, k) for k in ("prune_end", "lr", "batch_size", "train_epochs")}
    space_key.update(_training_options(ctx))
    base_keys = {name: fingerprint(b) for name, (b, _) in starts.items()}
    # test data is not part of a candidate's identity: it only adds a reported number, re-measured on reuse;
    # the file format is (its coder fixes the sizes the allocation is fitted to)

    def key_of(recipe: Recipe) -> dict[str, Any]:
        key = {
            "kind": "shrink-candidate",
            "format": QUANTIZED_FORMAT_VERSION,
            "base": base_keys[recipe.base],
            "data": data_key,
            "seed": seed,
            "val_fraction": ctx.split_key,
            "space": space_key,
            "recipe": recipe.as_dict(),
        }
        order = starts[recipe.base][1].order_seed
        if order is not None:
            key["order_seed"] = order
        # only a refit from a retrained start depends on refit_start (absent otherwise: older stores match)
        if recipe.refit and space.refit_start and recipe.base != "original":
            key["refit_start"] = True
        return key

    frontier: list[FrontierPoint] = list(originals)
    total = (
        len(plans)
        + len(member_plans)
        + space.activation_top * len(space.activation_bits)
        + int(space.refit) * (len(members) if members else 1)
    )
    done = 0

    def report(message: str) -> None:
        if progress is not None:
            progress(done, total, message)

    def stored_or(recipe: Recipe, build: Callable[[], FrontierPoint]) -> FrontierPoint:
        """The point of ``recipe`` read back from the store, or built (and stored)."""
        key = key_of(recipe)
        if checkpoint is not None:
            stored = checkpoint.load(key)
            if stored is not None:
                point = FrontierPoint.from_record(stored[0], stored[1])
                point.test_accuracy = ctx.test_accuracy(stored[1])  # reported only
                return point
        point = build()
        if checkpoint is not None:
            assert point.model is not None
            checkpoint.save(key, point.record(), point.model)
        return point

    def run(recipe: Recipe, make: Callable[[], tuple[nn.Module, float]], allow_fp16: bool) -> FrontierPoint:
        def build() -> FrontierPoint:
            t = time.perf_counter()
            net, extra = make()
            return _finish_point(net, recipe, ctx, time.perf_counter() - t + extra, allow_fp16, budget)

        return stored_or(recipe, build)

    pruned_cache: dict[tuple[Any, ...], tuple[nn.Module, float]] = {}

    def pruned(plan: _Planned) -> tuple[nn.Module, float]:
        key = (plan.base, plan.rule, plan.sparsity)
        if key not in pruned_cache:
            t = time.perf_counter()
            names = [n for n, _ in plan.sparsity]
            start, start_ctx = starts[plan.base]
            net = _gradual(start, start_ctx, names, dict(plan.sparsity), plan.rule)
            pruned_cache[key] = (compact(net), time.perf_counter() - t)
            return pruned_cache[key]
        return pruned_cache[key][0], 0.0

    member_points: dict[str, list[int]] = {name: [] for name in members}
    for plan in [*plans, *member_plans]:
        recipe = plan.recipe(space)
        report(f"{recipe.label}")

        def make(plan: _Planned = plan) -> tuple[nn.Module, float]:
            net, seconds = pruned(plan)
            q = _quantize(net, plan.fmt, seed)
            if plan.target_bytes is not None:  # the codes fix the file size: trim before fine-tuning
                q = _trim(net, q, plan.fmt, plan.target_bytes, seed)
            if plan.fmt.scheme != "float32" and space.finetune_epochs > 0:
                plan_ctx = starts[plan.base][1]
                plan_ctx.fit(q, space.finetune_epochs)
            return q.eval(), seconds

        frontier.append(run(recipe, make, plan.fmt.scheme != "float32"))
        done += 1
        # a member's choices: its start net's fitted candidates (not grid points) whose file fits its share
        if plan.base in member_points and plan.target_bytes is not None and frontier[-1].file_bytes <= share:
            member_points[plan.base].append(len(frontier) - 1)
        report(f"{recipe.label}: {frontier[-1].file_bytes:,} B, val {100 * frontier[-1].val_accuracy:.2f} %")

    # k-level activations on the best candidates (validation order, within the budget)
    if space.activation_bits and space.activation_top:
        ranked = sorted(
            (
                i
                for i in range(len(originals), len(frontier))
                if budget is None or frontier[i].file_bytes <= budget
            ),
            key=lambda i: -frontier[i].val_accuracy,
        )[: space.activation_top]
        calib = ctx.X[ctx.fit_idx[:: max(1, ctx.fit_idx.size // _CALIBRATION_ROWS)]]
        for i in ranked:
            parent = frontier[i]
            for bits in space.activation_bits:
                recipe = replace(
                    parent.recipe, activation_bits=bits, activation_epochs=space.activation_epochs
                )
                report(recipe.label)

                def make_act(parent: FrontierPoint = parent, bits: int = bits) -> tuple[nn.Module, float]:
                    assert parent.model is not None
                    net = quantize_activations(parent.model, calib, levels=2**bits, seed=seed)
                    if space.activation_epochs > 0:
                        ctx.fit(net, space.activation_epochs)
                    return net.eval(), 0.0

                try:
                    frontier.append(run(recipe, make_act, True))
                except InvalidParameterError as exc:  # e.g. no top-level ReLU to quantize
                    notes.append(f"activation quantization skipped for {parent.recipe.label}: {exc}")
                    break
                done += 1
                report(f"{recipe.label}: val {100 * frontier[-1].val_accuracy:.2f} %")

    # the ensemble: its members' candidates within their shares, chosen on validation
    parts: list[FrontierPoint] = []
    if members:
        if all(member_points.values()):
            choices = [[frontier[i] for i in idx] for idx in member_points.values()]
            combinations = math.prod(len(c) for c in choices)
            joint = space.ensemble_joint and combinations <= _MAX_COMBINATIONS
            if space.ensemble_joint and not joint:
                notes.append(
                    f"ensemble_joint: {combinations:,} combinations of member candidates exceed "
                    f"{_MAX_COMBINATIONS}; each member's own most accurate candidate is used"
                )
            parts = _choose_members(choices, ctx, joint)
            frontier.append(_ensemble(parts, ctx, budget))
            report(f"{frontier[-1].recipe.label}: val {100 * frontier[-1].val_accuracy:.2f} %")
        else:
            notes.append("ensemble skipped: a member has no candidate within its share of the budget")

    best = select(
        frontier, budget_bytes=budget, min_accuracy=tol, reference_val_accuracy=original.val_accuracy
    )
    if best is None and tol is not None:
        best = select(
            frontier, budget_bytes=budget, min_accuracy=None, reference_val_accuracy=original.val_accuracy
        )
        msg = (
            f"no candidate is within {tol:g} of the original's validation accuracy "
            f"{100 * original.val_accuracy:.2f} %"
            + (f" and within {budget:,} B" if budget is not None else "")
            + "; the most accurate one within the budget is selected instead"
        )
        notes.append(msg)
        warnings.warn(msg, ShrinkWarning, stacklevel=2)
    if best is not None and space.refit and frontier[best].recipe.rule != "none":
        parent = frontier[best]
        recipe = replace(parent.recipe, refit=True)
        report(recipe.label)
        if parent.recipe.members:
            refits = []
            for p in parts:
                start, start_ctx = starts[p.recipe.base]
                refits.append(
                    stored_or(
                        replace(p.recipe, refit=True),
                        lambda p=p, start=start, start_ctx=start_ctx: _refit(p, start, start_ctx, seed),
                    )
                )
                done += 1
                report(f"{refits[-1].recipe.label}: {refits[-1].file_bytes:,} B")
            point = _ensemble(refits, ctx, budget, refit_of=parent)
        else:
            start, start_ctx = starts[parent.recipe.base]
            point = stored_or(recipe, lambda: _refit(parent, start, start_ctx, seed))
            done += 1
        if budget is None or point.file_bytes <= budget:
            frontier.append(point)
            best = len(frontier) - 1
            report(f"{recipe.label}: {point.file_bytes:,} B")
        else:
            notes.append(
                f"the refit of the selected candidate is {point.file_bytes:,} B, above the budget; "
                "the candidate itself is kept"
            )
    if best is None:
        msg = (
            "no candidate fits the budget (the allocation overshot); try a larger budget or a smaller margin"
        )
        notes.append(msg)
        warnings.warn(msg, ShrinkWarning, stacklevel=2)
    return ShrinkResult(
        frontier=frontier,
        best_index=best,
        budget_bytes=budget,
        min_accuracy=tol,
        original=original,
        smallest_reachable=smallest,
        space=space.as_dict(),
        seconds=time.perf_counter() - t0,
        notes=notes,
    )
