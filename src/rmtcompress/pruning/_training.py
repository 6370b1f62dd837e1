"""A minimal, correct training loop for small MLPs / CNNs, with hooks for the pruning schedules of :mod:`.pruning`.

What "correct" means here (and what the research code of NTK-LC / SAP got wrong, methods.md §1.16 and §3.3):

* seeded, shuffled minibatches (``torch.Generator``), logits + ``nn.CrossEntropyLoss`` (no softmax layer);
* a **validation split carved from the training data** (stratified, seeded) drives every selection: best
  checkpoint and early stopping;
* the test split is **never** an input of the training functions. They take ``(X, y)`` training data only and an
  optional ``evaluate_on=(X_test, y_test)`` that is evaluated once on the final, already selected model (and, in
  :func:`train_iterative`, once per round on that round's selected model, for reporting). Nothing reads those
  numbers back; passing different ``evaluate_on`` data gives bit-identical weights (tested).

Pruning hooks:

* :func:`train` with ``schedule=GradualMagnitudeConfig(...)`` updates the masks at the scheduled steps (Zhu &
  Gupta; by magnitude, or by the neuron-wise ℓ_q allocation with ``criterion='lq'``); only checkpoints taken after
  ``end_step`` (i.e. at the final sparsity) are eligible for selection and early stopping starts counting only then.
* :func:`train_iterative` runs lottery-ticket rounds (:class:`~rmtcompress.pruning.LotteryTicketConfig`) or SAP
  rounds (:class:`~rmtcompress.pruning.SAPConfig`): train → select on validation → prune → rewind to the initial
  weights (or keep them, ``rewind='none'``) → train again, recording sparsity, accuracy, PQ index and bytes per round.
  SAP with ``milestones`` runs until the round that lands exactly on the last milestone (``rounds`` is a cap).
* masks are re-applied after every optimizer step (and gradients of masked entries are zeroed before it) through
  :class:`~rmtcompress.pruning.MaskedOptimizerStep`.

Thread count: these functions never change ``torch.get_num_threads()``; on a small shared CPU, one thread is often
much faster for these tiny models (set it in your script).
"""

from __future__ import annotations

import contextlib
import functools
import math
import numbers
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import nn
from tqdm.auto import tqdm

from .._utils import Config, check_int, stratified_split_indices, validate_Xy, warn_renamed_method
from ..errors import InvalidParameterError
from ._augment import augment_for, parse_augment
from ._configs import GradualMagnitudeConfig, LotteryTicketConfig, SAPConfig
from ._masks import (
    MaskedOptimizerStep,
    apply_masks,
    current_sparsity,
    prunable_layers,
    rewind_to,
    zero_masked_grads,
)
from ._measures import pq_index
from ._rules import prune
from ._sparse import model_storage_bytes

__all__ = [
    "IterativeResult",
    "RoundRecord",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "initial_state",
    "make_cnn",
    "make_mlp",
    "pq_trajectory_point",
    "train",
    "train_iterative",
    "train_val_split",
]


# ============================================================================================ models


def make_mlp(
    input_dim: int,
    hidden: tuple[int, ...] = (512, 512),
    n_classes: int = 10,
    *,
    activation: Literal["relu", "tanh"] = "relu",
    seed: int = 0,
) -> nn.Sequential:
    """A fully-connected net ``Linear → act → … → Linear`` (logits out), PyTorch default init, seeded.

    Args:
        input_dim: Number of input features.
        hidden: Hidden widths (may be empty: a linear classifier).
        n_classes: Number of outputs.
        activation: ``'relu'`` or ``'tanh'``.
        seed: Seed of the initialisation (the global torch RNG state is saved and restored).

    Returns:
        An ``nn.Sequential`` (supported by :func:`rmtcompress.pruning.degradation_bound`).

    Raises:
        ValueError: On non-positive sizes or an unknown activation.
    """
    dims = [input_dim, *hidden, n_classes]
    if any((not isinstance(d, int | np.integer)) or isinstance(d, bool) or d <= 0 for d in dims):
        raise InvalidParameterError(f"input_dim, hidden and n_classes must be positive integers; got {dims}")
    if activation not in ("relu", "tanh"):
        raise InvalidParameterError(f"activation must be 'relu' or 'tanh'; got {activation!r}")
    act: type[nn.Module] = nn.ReLU if activation == "relu" else nn.Tanh
    layers: list[nn.Module] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i in range(len(dims) - 1):
            layers.append(nn.Linear(int(dims[i]), int(dims[i + 1])))
            if i < len(dims) - 2:
                layers.append(act())
    return nn.Sequential(*layers)


def make_cnn(
    input_shape: tuple[int, int, int] = (1, 28, 28),
    n_classes: int = 10,
    *,
    channels: tuple[int, int] = (16, 32),
    seed: int = 0,
) -> nn.Sequential:
    """A small CNN taking *flattened* images: ``Unflatten → [Conv3×3 → ReLU → MaxPool2] × 2 → Flatten → Linear``.

    Args:
        input_shape: ``(C, H, W)`` of one image; H and W divisible by 4 (28×28 Fashion-MNIST, 8×8 digits).
        n_classes: Number of outputs.
        channels: Output channels of the two convolutions.
        seed: Seed of the initialisation (global torch RNG state restored).

    Returns:
        An ``nn.Sequential`` whose input is ``(n, C·H·W)``.

    Raises:
        ValueError: If H or W is not divisible by 4, or sizes are not positive.
    """
    c, h, w = (int(v) for v in input_shape)
    if min(c, h, w, n_classes, *channels) <= 0 or h % 4 or w % 4:
        raise InvalidParameterError(
            f"input_shape must be positive with H, W divisible by 4; got {input_shape}"
        )
    c1, c2 = channels
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Unflatten(1, (c, h, w)),
            nn.Conv2d(c, c1, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(c2 * (h // 4) * (w // 4), n_classes),
        )


def initial_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the model's parameters (the θ_0 that lottery-ticket / SAP rounds rewind to)."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


# ============================================================================================ config


LR_SCHEDULES = ("constant", "cosine", "anneal")
"""Step-size schedules of :class:`TrainConfig` (see its ``lr_schedule``)."""


@dataclass(frozen=True)
class TrainConfig(Config):
    """Hyper-parameters of :func:`train` (frozen, validated in ``__post_init__``, InvalidParameterError).

    Attributes:
        epochs: Passes over the training part (``>= 1``).
        batch_size: Minibatch size.
        optimizer: ``'adam'`` or ``'sgd'``.
        lr: Learning rate.
        momentum: SGD momentum.
        nesterov: SGD Nesterov momentum.
        weight_decay: L2 penalty (optimizer's ``weight_decay``).
        val_fraction: Fraction of every class of the training data held out for validation, in ``[0, 0.5]``; 0
            trains on every row with no validation (``select`` must then be ``'last'`` and ``patience`` None; the
            validation numbers of the history and the result are NaN).
        patience: Early stopping after this many epochs without validation improvement (None: off).
        grad_clip: Max gradient norm (None: off).
        select: ``'best'`` (best validation accuracy, ties → lower validation loss) or ``'last'``.
        seed: Seed of the split and of the minibatch order.
        order_seed: Seed of the minibatch order (and of the augmentation draws) when it should differ from the
            split's: runs that share one validation split but see their rows in other orders (the members of an
            ensemble). None (the default) uses ``seed``.
        eval_batch_size: Batch size of evaluation passes.
        distill: Weight ``α`` in ``[0, 1]`` of knowledge distillation (Hinton et al. 2015) when :func:`train` is
            given a ``teacher``: the loss is ``(1 − α)·CE(student, y) + α·T²·KL(softmax(teacher/T) ‖
            softmax(student/T))``. 0 (the default) is plain cross-entropy.
        temperature: The distillation temperature ``T > 0``.
        lr_schedule: ``'constant'`` (the default), ``'cosine'``: the step size decays from ``lr`` to 0 along a
            half cosine over the run's optimizer steps, or ``'anneal'``: constant while a gradual pruning schedule
            runs (up to its ``end_step``), then the half cosine to 0 over the remaining steps (without a schedule,
            the same as ``'cosine'``).
        label_smoothing: Label smoothing ``ε`` in ``[0, 1)`` of the cross-entropy (``torch.nn.CrossEntropyLoss``'s
            ``label_smoothing``); 0 (the default) is plain cross-entropy. Validation loss stays unsmoothed.
        ema: Decay ``d`` in ``[0, 1)`` of an exponential moving average of the parameters (Polyak averaging),
            updated after every optimizer step once a gradual pruning schedule has ended (from the first step
            without one): ``θ̄ ← d·θ̄ + (1 − d)·θ``. Validation, selection and the returned model use the average;
            0 (the default) is off.
        augment: Augmentation of every training minibatch (never of validation rows): ``'none'`` (the default) or
            ``'shift:HxW[xC]:P[:flip]'``, random translations by up to ``P`` pixels (and left-right mirror images)
            of rows read as ``C × H × W`` images (:mod:`rmtcompress.pruning._augment`); the row width must match.
        dropout: Probability in ``[0, 1)`` of zeroing each output of every activation module (``nn.ReLU``,
            ``nn.Tanh``, …) in training steps, survivors scaled by ``1 / (1 − p)`` (inverted dropout, drawn from
            the run's seeded generator; forward hooks removed after the run, so the model is unchanged);
            validation and the returned model run without it. 0 (the default) is off.
        mixup: ``α > 0`` of mixup (Zhang et al. 2018): every training minibatch is replaced by ``λ·x + (1 − λ)·x[π]``
            with ``π`` a random permutation of its rows and ``λ ~ Beta(α, α)``, and the loss by ``λ·ℓ(y) + (1 −
            λ)·ℓ(y[π])`` (distillation targets mixed alike), all drawn from the run's seeded generator. 0 (the
            default) is off.
        sam: Radius ``ρ > 0`` of sharpness-aware minimization (Foret et al. 2021): every step first moves the
            parameters by ``ρ·g / ‖g‖`` along the minibatch gradient ``g`` (masked entries excluded), takes the
            gradient there on the same minibatch, moves back and steps with it; twice the forward and backward
            passes. 0 (the default) is off.
    """

    epochs: int = 10
    batch_size: int = 128
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    val_fraction: float = 0.1
    patience: int | None = None
    grad_clip: float | None = None
    select: Literal["best", "last"] = "best"
    seed: int = 0
    order_seed: int | None = None
    eval_batch_size: int = 4096
    distill: float = 0.0
    temperature: float = 4.0
    lr_schedule: Literal["constant", "cosine", "anneal"] = "constant"
    label_smoothing: float = 0.0
    ema: float = 0.0
    augment: str = "none"
    dropout: float = 0.0
    mixup: float = 0.0
    sam: float = 0.0

    def __post_init__(self) -> None:
        """Validate the fields."""
        set_ = object.__setattr__
        parse_augment(self.augment)
        for name in ("epochs", "batch_size", "eval_batch_size"):
            set_(self, name, check_int(getattr(self, name), name, 1))
        if self.optimizer not in ("adam", "sgd"):
            raise InvalidParameterError(f"optimizer must be 'adam' or 'sgd'; got {self.optimizer!r}")
        for name in ("lr", "momentum", "weight_decay", "val_fraction", "grad_clip", "distill", "temperature"):
            v = getattr(self, name)
            if v is None and name == "grad_clip":
                continue
            if isinstance(v, bool | np.bool_) or not isinstance(v, numbers.Real):
                raise InvalidParameterError(f"{name} must be a real number; got {v!r}")
            set_(self, name, float(v))
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise InvalidParameterError(f"lr must be finite and > 0; got {self.lr!r}")
        if not (0 <= self.momentum < 1):
            raise InvalidParameterError(f"momentum must lie in [0, 1); got {self.momentum!r}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise InvalidParameterError(f"weight_decay must be finite and >= 0; got {self.weight_decay!r}")
        if not (0.0 <= self.distill <= 1.0):
            raise InvalidParameterError(f"distill must lie in [0, 1]; got {self.distill!r}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise InvalidParameterError(f"temperature must be finite and > 0; got {self.temperature!r}")
        if not (0 <= self.val_fraction <= 0.5):
            raise InvalidParameterError(f"val_fraction must lie in [0, 0.5]; got {self.val_fraction!r}")
        if self.patience is not None and (
            isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 1
        ):
            raise InvalidParameterError(f"patience must be None or an integer >= 1; got {self.patience!r}")
        if self.grad_clip is not None and not (math.isfinite(self.grad_clip) and self.grad_clip > 0):
            raise InvalidParameterError(f"grad_clip must be None or finite > 0; got {self.grad_clip!r}")
        if not isinstance(self.nesterov, bool | np.bool_):
            raise InvalidParameterError(f"nesterov must be True or False; got {self.nesterov!r}")
        set_(self, "nesterov", bool(self.nesterov))
        if self.lr_schedule not in LR_SCHEDULES:
            raise InvalidParameterError(
                f"lr_schedule must be one of {LR_SCHEDULES}; got {self.lr_schedule!r}"
            )
        ls = self.label_smoothing
        if isinstance(ls, bool | np.bool_) or not isinstance(ls, numbers.Real) or not 0.0 <= float(ls) < 1.0:
            raise InvalidParameterError(f"label_smoothing must lie in [0, 1); got {ls!r}")
        set_(self, "label_smoothing", float(ls))
        d = self.ema
        if isinstance(d, bool | np.bool_) or not isinstance(d, numbers.Real) or not 0.0 <= float(d) < 1.0:
            raise InvalidParameterError(f"ema must lie in [0, 1); got {d!r}")
        set_(self, "ema", float(d))
        q = self.dropout
        if isinstance(q, bool | np.bool_) or not isinstance(q, numbers.Real) or not 0.0 <= float(q) < 1.0:
            raise InvalidParameterError(f"dropout must lie in [0, 1); got {q!r}")
        set_(self, "dropout", float(q))
        for name in ("mixup", "sam"):
            v = getattr(self, name)
            if (
                isinstance(v, bool | np.bool_)
                or not isinstance(v, numbers.Real)
                or not 0.0 <= float(v) < math.inf
            ):
                raise InvalidParameterError(f"{name} must be a finite number >= 0; got {v!r}")
            set_(self, name, float(v))
        if self.select not in ("best", "last"):
            raise InvalidParameterError(f"select must be 'best' or 'last'; got {self.select!r}")
        if self.val_fraction == 0 and (self.select != "last" or self.patience is not None):
            raise InvalidParameterError(
                "val_fraction=0 leaves no validation rows: it needs select='last' and patience=None; "
                f"got select={self.select!r}, patience={self.patience!r}"
            )
        set_(self, "seed", check_int(self.seed, "seed", 0))
        if self.order_seed is not None:
            set_(self, "order_seed", check_int(self.order_seed, "order_seed", 0))


# ============================================================================================ data


def train_val_split(
    y: NDArray[np.int64], val_fraction: float, seed: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Seeded stratified split of row indices: ``max(1, round(val_fraction·n_c))`` rows of each class to validation.

    Args:
        y: Labels, shape ``(n,)``.
        val_fraction: In ``(0, 0.5]``.
        seed: Seed.

    Returns:
        ``(train_idx, val_idx)``, sorted and disjoint.

    Raises:
        ValueError: If a class has fewer than 2 samples.
    """
    return stratified_split_indices(
        y, val_fraction, np.random.default_rng(seed), rounding="half_even", draw="choice", both_parts=True
    )


def _explicit_split(val_rows: ArrayLike, n: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``(train_idx, val_idx)`` for explicit validation row indices of ``n`` rows (checked: integers in range,
    no repeats, at least one row on each side)."""
    rows = np.asarray(val_rows)
    if rows.ndim != 1 or rows.size == 0 or not np.issubdtype(rows.dtype, np.integer):
        raise InvalidParameterError("val_rows must be a non-empty 1-D array of integer row indices")
    if rows.min() < 0 or rows.max() >= n:
        raise InvalidParameterError(f"val_rows must lie in [0, {n}): the rows of X")
    va_idx = np.unique(rows).astype(np.int64)
    if va_idx.size != rows.size:
        raise InvalidParameterError("val_rows repeats a row")
    if va_idx.size == n:
        raise InvalidParameterError("val_rows takes every row of X: none would train")
    keep = np.ones(n, dtype=bool)
    keep[va_idx] = False
    return np.flatnonzero(keep).astype(np.int64), va_idx


_DROPOUT_AFTER = (nn.ReLU, nn.Tanh, nn.GELU, nn.Sigmoid, nn.LeakyReLU, nn.ELU, nn.SiLU)


def _dropout_targets(model: nn.Module, p: float) -> list[nn.Module]:
    """The activation modules dropout acts on (none when ``p`` is 0); InvalidParameterError when ``p`` > 0 and the
    model has none."""
    if p <= 0:
        return []
    acts: list[nn.Module] = [m for m in model.modules() if isinstance(m, _DROPOUT_AFTER)]
    if not acts:
        raise InvalidParameterError(
            "dropout needs activation modules (nn.ReLU, nn.Tanh, …) to act on; the model has none"
        )
    return acts


@contextlib.contextmanager
def _dropout(acts: list[nn.Module], p: float, gen: torch.Generator) -> Iterator[None]:
    """Inverted dropout with probability ``p`` on the output of each module of ``acts`` while it is in training
    mode, drawn from ``gen``; the hooks are removed on leaving."""

    def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor:
        if not module.training:
            return output
        keep = torch.rand(output.shape, generator=gen) >= p
        return output * keep / (1.0 - p)

    handles = [m.register_forward_hook(hook) for m in acts]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _tensors(X: NDArray[np.float64], y: NDArray[np.int64]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)), torch.from_numpy(y.astype(np.int64))


@torch.no_grad()
def _teacher_probabilities(teacher: nn.Module, X: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """The teacher's softened class probabilities ``softmax(logits / T)`` on ``X`` (eval mode, no gradient)."""
    was = teacher.training
    teacher.eval()
    try:
        with torch.no_grad():
            logits = torch.cat(
                [
                    teacher(X[i : i + config.eval_batch_size])
                    for i in range(0, X.shape[0], config.eval_batch_size)
                ]
            )
    finally:
        teacher.train(was)
    if logits.dim() != 2:
        raise InvalidParameterError(
            f"the teacher returns {tuple(logits.shape[1:])} outputs per row, not logits"
        )
    return torch.softmax(logits.to(torch.float32) / config.temperature, dim=1)


def _distill_loss(logits: torch.Tensor, soft: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T² · KL(soft ‖ softmax(logits / T))`` averaged over rows (Hinton et al.'s scaling keeps gradients ~T-free)."""
    if logits.shape[1] != soft.shape[1]:
        raise InvalidParameterError(
            f"the teacher has {soft.shape[1]} outputs but the model {logits.shape[1]}; distillation needs the same classes"
        )
    log_p = torch.log_softmax(logits / temperature, dim=1)
    return nn.functional.kl_div(log_p, soft, reduction="batchmean") * temperature**2


def _loss(
    loss_fn: nn.Module, logits: torch.Tensor, y: torch.Tensor, soft: torch.Tensor | None, config: TrainConfig
) -> torch.Tensor:
    """The training loss of one minibatch: cross-entropy (label smoothing in ``loss_fn``), with distillation."""
    loss: torch.Tensor = loss_fn(logits, y)
    if soft is not None:
        loss = (1.0 - config.distill) * loss + config.distill * _distill_loss(
            logits, soft, config.temperature
        )
    return loss


def _backward(
    model: nn.Module,
    loss_fn: nn.Module,
    config: TrainConfig,
    x: torch.Tensor,
    y: torch.Tensor,
    soft: torch.Tensor | None,
    mix: tuple[float, torch.Tensor] | None,
) -> torch.Tensor:
    """Forward and backward pass of one (mixed) minibatch; returns its loss (gradients accumulate in ``.grad``)."""
    logits = model(x)
    if mix is None:
        loss = _loss(loss_fn, logits, y, soft, config)
    else:
        lam, perm = mix
        loss = lam * _loss(loss_fn, logits, y, soft, config) + (1.0 - lam) * _loss(
            loss_fn, logits, y[perm], None if soft is None else soft[perm], config
        )
    loss.backward()
    return loss


def _mixup_draw(
    rng: np.random.Generator | None, alpha: float, n: int, gen: torch.Generator
) -> tuple[float, torch.Tensor] | None:
    """``(λ, π)`` of one mixup minibatch of ``n`` rows (None when mixup is off)."""
    if rng is None:
        return None
    return float(rng.beta(alpha, alpha)), torch.randperm(n, generator=gen)


def _sam_second_pass(
    model: nn.Module,
    params: list[nn.Parameter],
    rho: float,
    opt: MaskedOptimizerStep,
    batch_loss: Callable[[], torch.Tensor],
) -> None:
    """Sharpness-aware minimization's second pass: with the gradients of the first pass in ``.grad``, move the
    parameters by ``ρ·g/‖g‖`` (masked entries excluded), recompute the gradients there, and move back."""
    zero_masked_grads(model)
    live: list[torch.Tensor] = [p for p in params if p.grad is not None]
    if not live:
        return
    with torch.no_grad():
        grads = [p.grad for p in live if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        if not bool(torch.isfinite(norm)) or float(norm) == 0.0:
            return
        eps = [g * (rho / norm) for g in grads]
        torch._foreach_add_(live, eps)
    opt.zero_grad()
    batch_loss()
    with torch.no_grad():
        torch._foreach_sub_(live, eps)


def _evaluate_tensors(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch: int) -> tuple[float, float]:
    was_training = model.training
    model.eval()
    loss_sum = 0.0
    correct = 0
    with torch.no_grad():  # no autograd graph: evaluation only
        for i in range(0, X.shape[0], batch):
            logits = model(X[i : i + batch])
            loss_sum += float(nn.functional.cross_entropy(logits, y[i : i + batch], reduction="sum"))
            correct += int((logits.argmax(dim=1) == y[i : i + batch]).sum())
    model.train(was_training)
    n = X.shape[0]
    if n == 0:  # no validation rows (val_fraction=0)
        return math.nan, math.nan
    return loss_sum / n, correct / n


def evaluate(model: nn.Module, X: ArrayLike, y: ArrayLike, *, batch_size: int = 4096) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy of ``model`` on ``(X, y)`` (evaluation mode, no gradient).

    Args:
        model: A classifier returning logits.
        X: Inputs, shape ``(n, p)``.
        y: Integer labels, shape ``(n,)``.
        batch_size: Evaluation batch size.

    Returns:
        ``(loss, accuracy)``.
    """
    Xa, ya = validate_Xy(X, y)
    Xt, yt = _tensors(Xa, ya)
    return _evaluate_tensors(model, Xt, yt, batch_size)


# ============================================================================================ train


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    Attributes:
        history: One dict per epoch: ``epoch``, ``step``, ``train_loss``, ``val_loss``, ``val_accuracy``,
            ``sparsity``, ``eligible`` (could be selected), ``seconds``.
        best_epoch: Epoch (1-based) of the selected checkpoint.
        val_accuracy: Validation accuracy of the selected model.
        val_loss: Validation loss of the selected model.
        test_accuracy: Accuracy on ``evaluate_on`` (None if not given), measured after selection.
        test_loss: Loss on ``evaluate_on``.
        steps: Optimizer steps taken.
        seconds: Wall time.
        sparsity: Overall sparsity of the selected model (0 without masks).
        n_train: Training rows actually used (after the validation split).
        n_val: Validation rows.
        prune_events: Summaries of the gradual-schedule mask updates (step, target, achieved).
    """

    history: list[dict[str, Any]]
    best_epoch: int
    val_accuracy: float
    val_loss: float
    test_accuracy: float | None
    test_loss: float | None
    steps: int
    seconds: float
    sparsity: float
    n_train: int
    n_val: int
    prune_events: list[dict[str, Any]] = field(default_factory=list)


def _make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(
        params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
    )


def _swap_in(params: list[nn.Parameter], values: list[torch.Tensor] | None) -> list[torch.Tensor] | None:
    """Copy ``values`` into ``params`` (nothing when None); returns the values the parameters held before."""
    if values is None:
        return None
    with torch.no_grad():
        before = [p.detach().clone() for p in params]
        torch._foreach_copy_([p.data for p in params], values)
    return before


def _sparsity_or_zero(model: nn.Module) -> float:
    try:
        return current_sparsity(model)[0]
    except ValueError:
        return 0.0


def train(
    model: nn.Module,
    X: ArrayLike,
    y: ArrayLike,
    config: TrainConfig,
    *,
    schedule: GradualMagnitudeConfig | None = None,
    layers: list[str] | None = None,
    evaluate_on: tuple[ArrayLike, ArrayLike] | None = None,
    log: Callable[[dict[str, Any]], None] | None = None,
    teacher: nn.Module | None = None,
    progress: bool | None = False,
    val_rows: ArrayLike | None = None,
) -> TrainResult:
    """Train ``model`` in place on training data only; the validation split is carved from ``(X, y)``.

    Existing ``weight_mask`` buffers are honoured (fine-tuning a pruned model): masked gradients are zeroed before
    and masks re-applied after every optimizer step.

    Args:
        model: A classifier returning logits (modified in place; ends as the selected checkpoint).
        X: Training inputs, shape ``(n, p)``.
        y: Training labels, shape ``(n,)``.
        config: Hyper-parameters.
        schedule: Optional gradual pruning schedule (steps = optimizer steps completed; magnitude or ℓ_q
            criterion).
        layers: Layers the schedule prunes (default: every Linear/Conv2d).
        evaluate_on: Optional ``(X_test, y_test)`` evaluated once, after training and selection.
        log: Optional callback receiving each epoch's history dict.
        teacher: Optional classifier whose logits on the training part are distilled into ``model`` with weight
            ``config.distill`` (read once, in eval mode, never trained; validation selection still reads labels).
        progress: A progress bar over the optimizer steps on stderr (epoch, validation accuracy, sparsity):
            ``False`` (default: callers that train many models show their own), ``True``, or ``None`` for only
            when stderr is a terminal.
        val_rows: Optional indices of the rows of ``(X, y)`` to validate on, instead of the seeded split of
            ``config.val_fraction`` (which must then be non-zero); every other row trains.

    Returns:
        A :class:`TrainResult`.

    Raises:
        ValueError: On invalid data, or a schedule whose ``end_step`` exceeds the number of optimizer steps.
    """
    t0 = time.perf_counter()
    Xa, ya = validate_Xy(X, y, min_classes=2)
    if config.val_fraction == 0:
        if val_rows is not None:
            raise InvalidParameterError("val_rows needs a config with val_fraction > 0 (it selects on them)")
        # every row trains; nothing to validate on (select='last', checked by the config)
        tr_idx, va_idx = np.arange(ya.size), np.arange(0)
    elif val_rows is not None:
        tr_idx, va_idx = _explicit_split(val_rows, ya.size)
    else:
        tr_idx, va_idx = train_val_split(ya, config.val_fraction, config.seed)
    Xtr, ytr = _tensors(Xa[tr_idx], ya[tr_idx])
    Xva, yva = _tensors(Xa[va_idx], ya[va_idx])
    n_train = Xtr.shape[0]
    augment = augment_for(config.augment, Xtr.shape[1])
    dropped = _dropout_targets(model, config.dropout)  # refused before anything is trained
    steps_per_epoch = math.ceil(n_train / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    if schedule is not None and schedule.end_step > total_steps:
        raise InvalidParameterError(
            f"schedule.end_step={schedule.end_step} exceeds the {total_steps} optimizer steps of this run "
            f"({config.epochs} epochs × {steps_per_epoch} steps)"
        )
    gen = torch.Generator().manual_seed(int(config.seed if config.order_seed is None else config.order_seed))
    inner = _make_optimizer(model, config)
    opt = MaskedOptimizerStep(inner, model)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    schedule_end = schedule.end_step if schedule is not None else 0
    anneal_from = 0 if config.lr_schedule == "cosine" else schedule_end
    params = list(model.parameters())
    averaged: list[torch.Tensor] | None = None  # the EMA of the parameters (config.ema > 0)
    soft = (
        _teacher_probabilities(teacher, Xtr, config) if teacher is not None and config.distill > 0 else None
    )
    events: list[dict[str, Any]] = []
    # λ ~ Beta(α, α) of mixup, from a NumPy generator seeded by the run's own (torch has no seeded Beta draw)
    mix_rng = (
        np.random.default_rng(int(torch.randint(2**62, (1,), generator=gen))) if config.mixup > 0 else None
    )

    def maybe_prune(step: int) -> None:
        if schedule is not None and schedule.is_update_step(step):
            res = prune(model, schedule, step=step, layers=layers)
            events.append({"step": step, "target": res.target_sparsity, "sparsity": res.sparsity})

    apply_masks(model)
    step = 0
    maybe_prune(0)
    history: list[dict[str, Any]] = []
    best: dict[str, torch.Tensor] | None = None
    best_key: tuple[float, float] | None = None
    best_epoch = 0
    stale = 0
    model.train()
    bar = tqdm(
        total=total_steps,
        desc="train",
        unit="step",
        leave=False,
        disable=None if progress is None else not progress,
    )
    with _dropout(dropped, config.dropout, gen):  # hooks on the activations, removed after the loop
        for epoch in range(1, config.epochs + 1):
            perm = torch.randperm(n_train, generator=gen)
            loss_sum = 0.0
            last = history[-1] if history else None
            bar.set_postfix_str(
                f"epoch {epoch}/{config.epochs}"
                + (f", val {last['val_accuracy']:.3f}, sparsity {last['sparsity']:.2f}" if last else "")
            )
            for i in range(0, n_train, config.batch_size):
                bar.update(1)
                idx = perm[i : i + config.batch_size]
                opt.zero_grad()
                if config.lr_schedule != "constant" and step >= anneal_from:
                    frac = (step - anneal_from) / max(1, total_steps - anneal_from)
                    for group in inner.param_groups:
                        group["lr"] = 0.5 * config.lr * (1.0 + math.cos(math.pi * frac))
                xb = Xtr[idx] if augment is None else augment(Xtr[idx], gen)
                yb, soft_b = ytr[idx], None if soft is None else soft[idx]
                mix = _mixup_draw(mix_rng, config.mixup, idx.numel(), gen)
                if mix is not None:
                    xb = mix[0] * xb + (1.0 - mix[0]) * xb[mix[1]]
                batch_loss = functools.partial(_backward, model, loss_fn, config, xb, yb, soft_b, mix)
                loss = batch_loss()
                if config.sam > 0:
                    _sam_second_pass(model, params, config.sam, opt, batch_loss)
                if config.grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                opt.step()
                loss_sum += float(loss.detach()) * idx.numel()
                step += 1
                maybe_prune(step)
                if config.ema > 0 and step >= schedule_end:
                    with torch.no_grad():
                        if averaged is None:
                            averaged = [p.detach().clone() for p in params]
                        else:
                            torch._foreach_lerp_(averaged, [p.detach() for p in params], 1.0 - config.ema)
            live = _swap_in(params, averaged)
            val_loss, val_acc = _evaluate_tensors(model, Xva, yva, config.eval_batch_size)
            eligible = step >= schedule_end
            record = {
                "epoch": epoch,
                "step": step,
                "train_loss": loss_sum / n_train,
                "val_loss": val_loss,
                "val_accuracy": val_acc,
                "sparsity": _sparsity_or_zero(model),
                "eligible": eligible,
                "seconds": time.perf_counter() - t0,
            }
            history.append(record)
            if log is not None:
                log(record)
            stop = False
            if eligible:
                key = (val_acc, -val_loss)
                if best_key is None or key > best_key:
                    best_key = key
                    best_epoch = epoch
                    stale = 0
                    if config.select == "best":
                        best = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    stale += 1
                    stop = config.patience is not None and stale >= config.patience
            _swap_in(params, live)
            if stop:
                break
    bar.close()
    _swap_in(params, averaged)  # 'last' (or nothing eligible) ends on the average too
    if config.select == "best" and best is not None:
        model.load_state_dict(best)
    else:
        best_epoch = history[-1]["epoch"]
    model.eval()
    val_loss, val_acc = _evaluate_tensors(model, Xva, yva, config.eval_batch_size)
    test_loss = test_acc = None
    if evaluate_on is not None:
        test_loss, test_acc = evaluate(
            model, evaluate_on[0], evaluate_on[1], batch_size=config.eval_batch_size
        )
    return TrainResult(
        history=history,
        best_epoch=best_epoch,
        val_accuracy=val_acc,
        val_loss=val_loss,
        test_accuracy=test_acc,
        test_loss=test_loss,
        steps=step,
        seconds=time.perf_counter() - t0,
        sparsity=_sparsity_or_zero(model),
        n_train=n_train,
        n_val=Xva.shape[0],
        prune_events=events,
    )


# ============================================================================================ iterative


@dataclass
class RoundRecord:
    """One round of :func:`train_iterative` (round 0 = the dense model).

    Attributes:
        round: Round index.
        sparsity: Overall sparsity during this round's training.
        layer_sparsity: Per-layer sparsity.
        val_accuracy: Validation accuracy of the selected checkpoint.
        val_loss: Its validation loss.
        test_accuracy: Accuracy on ``evaluate_on`` (reporting only).
        test_loss: Loss on ``evaluate_on``.
        pq_index: PQ index (p=½, q=1) of all unpruned weights of the trained model.
        pq_index_layers: Same per layer.
        entropy_bytes: Honest storage of the trained model (:func:`rmtcompress.pruning.model_storage_bytes`).
        prune: Summary of the pruning step that produced this round's masks (None for round 0).
        seconds: Wall time of the round.
    """

    round: int
    sparsity: float
    layer_sparsity: dict[str, float]
    val_accuracy: float
    val_loss: float
    test_accuracy: float | None
    test_loss: float | None
    pq_index: float
    pq_index_layers: dict[str, float]
    entropy_bytes: float
    prune: dict[str, Any] | None
    seconds: float


@dataclass
class IterativeResult:
    """Outcome of :func:`train_iterative`: one :class:`RoundRecord` per round (the model ends at the last round)."""

    method: str
    rounds: list[RoundRecord]

    def to_dicts(self) -> list[dict[str, Any]]:
        """JSON-friendly list of the rounds."""
        return [asdict(r) for r in self.rounds]

    def as_dicts(self) -> list[dict[str, Any]]:
        """Deprecated spelling of :meth:`to_dicts` (RmtcompressDeprecationWarning)."""
        warn_renamed_method(self, "as_dicts", "to_dicts")
        return self.to_dicts()


def pq_trajectory_point(
    model: nn.Module, p: float = 0.5, q: float = 1.0, layers: list[str] | None = None
) -> tuple[float, dict[str, float]]:
    """PQ index of all unpruned weights (global) and per layer — one point of a PQ-index trajectory."""
    per: dict[str, float] = {}
    all_vals: list[NDArray[np.float64]] = []
    for name, m in prunable_layers(model, layers):
        w = m._parameters["weight"]
        assert w is not None
        mask = m._buffers.get("weight_mask")
        vals = w.detach().abs().to(torch.float64)
        vals = vals[mask] if mask is not None else vals.reshape(-1)
        arr = vals.cpu().numpy()
        per[name] = pq_index(arr, p, q)
        all_vals.append(arr)
    return pq_index(np.concatenate(all_vals), p, q), per


def _last_milestone_reached(model: nn.Module, cfg: SAPConfig, layers: list[str] | None) -> bool:
    """Whether the pruned count has reached ``round(last milestone · n_total)`` (False without milestones)."""
    if cfg.milestones is None:
        return False
    pruned = total = 0
    for _, m in prunable_layers(model, layers):
        mask = m._buffers.get("weight_mask")
        weight = m._parameters["weight"]
        assert weight is not None
        total += weight.numel()
        pruned += 0 if mask is None else int((~mask).sum())
    return pruned >= round(cfg.milestones[-1] * total)


def train_iterative(
    model: nn.Module,
    X: ArrayLike,
    y: ArrayLike,
    config: TrainConfig,
    prune_config: LotteryTicketConfig | SAPConfig,
    *,
    rounds: int | None = None,
    rewind: Literal["init", "none"] | None = None,
    init: dict[str, torch.Tensor] | None = None,
    pretrained: bool = False,
    stop_at_sparsity: float | None = None,
    layers: list[str] | None = None,
    evaluate_on: tuple[ArrayLike, ArrayLike] | None = None,
    on_round: Callable[[RoundRecord, nn.Module], None] | None = None,
    progress: bool | None = False,
) -> IterativeResult:
    """Prune–rewind–retrain rounds (lottery ticket or SAP), selection on the validation split only.

    Round 0 trains the dense model (skipped when ``pretrained=True``: the model passed in is already trained from
    ``init``). Each later round: prune the trained model (one LT / SAP step) → rewind the unpruned weights to
    ``init`` (``rewind='init'``) or keep the trained values (``'none'``) → train ``config.epochs`` epochs with the
    masks enforced → keep the best validation checkpoint. The SAP code (Diao et al.) also rewinds to init every
    round.

    Args:
        model: The model (modified in place; ends as the last round's selected checkpoint).
        X: Training inputs (validation carved from them with ``config.seed``, same split every round).
        y: Training labels.
        config: Training hyper-parameters of every round.
        prune_config: :class:`LotteryTicketConfig` or :class:`SAPConfig`.
        rounds: Number of pruning rounds (default: ``len(prune_config.schedule())`` for LT, ``prune_config.rounds``
            for SAP). SAP with ``milestones`` stops after the round that lands on the last milestone (``rounds``
            is then a cap: SAP's own prune ratio may shrink so much that it is not reached).
        rewind: ``'init'`` / ``'none'``; default ``prune_config.rewind`` for LT, ``'init'`` for SAP.
        init: θ_0 (from :func:`initial_state`); default: the model's parameters at the call.
        pretrained: The model is already trained (round 0 is only evaluated); requires ``init``.
        stop_at_sparsity: Stop after the first round whose sparsity reaches this value.
        layers: Layers to prune (default all Linear/Conv2d).
        evaluate_on: Optional ``(X_test, y_test)``; each round's *selected* model is evaluated once, for reporting.
        on_round: Optional callback ``(record, model)`` after each round (e.g. to save the model).
        progress: A progress bar over each training run (see :func:`train`); default off.

    Returns:
        An :class:`IterativeResult`.

    Raises:
        ValueError: On a wrong config type, ``pretrained`` without ``init``, or invalid arguments.
    """
    if isinstance(prune_config, LotteryTicketConfig):
        method = prune_config.rule
        n_rounds = len(prune_config.schedule()) if rounds is None else rounds
        rw = prune_config.rewind if rewind is None else rewind
    elif isinstance(prune_config, SAPConfig):
        method = prune_config.rule
        n_rounds = prune_config.rounds if rounds is None else rounds
        rw = "init" if rewind is None else rewind
    else:
        raise InvalidParameterError(
            f"prune_config must be LotteryTicketConfig or SAPConfig; got {type(prune_config).__name__}"
        )
    if isinstance(n_rounds, bool) or not isinstance(n_rounds, int) or n_rounds < 0:
        raise InvalidParameterError(f"rounds must be a non-negative integer; got {n_rounds!r}")
    if rw not in ("init", "none"):
        raise InvalidParameterError(f"rewind must be 'init' or 'none'; got {rw!r}")
    if pretrained and init is None:
        raise InvalidParameterError(
            "pretrained=True needs init= (the parameters the trained model started from)"
        )
    theta0 = initial_state(model) if init is None else {k: v.detach().clone() for k, v in init.items()}
    Xa, ya = validate_Xy(X, y, min_classes=2)
    records: list[RoundRecord] = []

    def finish(r: int, res: TrainResult | None, prune_summary: dict[str, Any] | None, t_start: float) -> None:
        if res is None:  # pretrained round 0: evaluate only
            _, va_idx = train_val_split(ya, config.val_fraction, config.seed)
            val_loss, val_acc = evaluate(model, Xa[va_idx], ya[va_idx], batch_size=config.eval_batch_size)
            test_loss = test_acc = None
            if evaluate_on is not None:
                test_loss, test_acc = evaluate(model, *evaluate_on, batch_size=config.eval_batch_size)
        else:
            val_loss, val_acc = res.val_loss, res.val_accuracy
            test_loss, test_acc = res.test_loss, res.test_accuracy
        overall, per = current_sparsity(model, layers)
        pqi, pqi_layers = pq_trajectory_point(model, layers=layers)
        rec = RoundRecord(
            round=r,
            sparsity=overall,
            layer_sparsity=per,
            val_accuracy=val_acc,
            val_loss=val_loss,
            test_accuracy=test_acc,
            test_loss=test_loss,
            pq_index=pqi,
            pq_index_layers=pqi_layers,
            entropy_bytes=float(model_storage_bytes(model)["entropy_bytes"]),
            prune=prune_summary,
            seconds=time.perf_counter() - t_start,
        )
        records.append(rec)
        if on_round is not None:
            on_round(rec, model)

    t = time.perf_counter()
    res0 = None if pretrained else train(model, Xa, ya, config, evaluate_on=evaluate_on, progress=progress)
    finish(0, res0, None, t)
    for r in range(1, n_rounds + 1):
        t = time.perf_counter()
        step = prune(model, prune_config, layers=layers)
        if rw == "init":
            rewind_to(model, theta0)
        res = train(model, Xa, ya, config, evaluate_on=evaluate_on, progress=progress)
        summary = step.summary()
        finish(r, res, summary, t)
        if stop_at_sparsity is not None and records[-1].sparsity >= stop_at_sparsity - 1e-12:
            break
        if isinstance(prune_config, LotteryTicketConfig) and r >= len(prune_config.schedule()):
            break
        if isinstance(prune_config, SAPConfig) and _last_milestone_reached(model, prune_config, layers):
            break
    return IterativeResult(method=method, rounds=records)
