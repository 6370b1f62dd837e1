"""Label-aware fine-tuning of a calibrated net's per-neuron quantizers (thresholds and levels), weights frozen.

:func:`rmtcompress.calibrate` fits each neuron's k-level step function to the distribution of its own
pre-activations, without labels. :func:`finetune` then moves those thresholds (and the hidden layers' levels) to
lower a classification loss, with the ternary codes, their scales and the bit budget unchanged: the result has the
same bytes on disk, the same ``log2(k)`` activation bits per neuron, and its readout is refitted in closed form
afterwards (:func:`rmtcompress.fit_readout`). It is quantization-aware fine-tuning of ``2k − 1`` numbers per
neuron, not training of the weights.

Parametrisation (hidden layer, neuron j, k levels): ``σ_j(z) = v_j + Σ_i D_ij · 1{z ≥ t_ij}``, i < k − 1, where
``v_j`` is the lowest level, ``t_ij`` the thresholds and ``D_ij`` the jumps, so the levels are
``v_j + cumsum(D)`` once the thresholds are sorted (:func:`_to_levels`; exact, including crossed thresholds). The
last layer, when the model reads it through thermometer indicators, only trains its thresholds.

Gradient (straight-through surrogate): the forward pass is exact (hard indicators); the backward pass replaces
``d 1{u ≥ 0}/du`` (a Dirac mass) by the derivative of ``sigmoid(u/s)``, i.e. ``sigmoid'(u/s)/s``, with a per-neuron
width ``s = temperature · std(z_j)`` measured on the calibration rows before training. This gives gradients with
respect to the thresholds (``−D·sigmoid'/s``) and to the inputs (``+D·sigmoid'/s``), the "surrogate gradient" of
spiking nets / the sigmoid STE of Yin et al. 2019. A temporary linear head (zero-initialised) is trained jointly
with cross-entropy; Adam with a cosine learning-rate decay; the state with the best accuracy on a stratified
validation split of the *training* rows (never test data) is kept.

Honesty note (see docs/compression.md): this uses the labels, which :func:`calibrate` does not; the dense original
it is compared with in ``benchmarks/ntklc/bench_finetune.py`` is reported both as is (random features + ridge, the issue's
reference) and with the same amount of label-aware fine-tuning of its own per-neuron biases and gains.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from numpy.typing import ArrayLike, NDArray
from tqdm.auto import tqdm

from .._utils import Config, check_int, check_positive, validate_Xy
from ..core import PerNeuronStep
from ..errors import InvalidParameterError
from ..kernels import csr_matmul_lanes
from ._model import CompressedMLP
from ._readout import LinearReadout, stratified_split

__all__ = ["FinetuneConfig", "FinetuneReport", "TrainedLayers", "finetune", "surrogate_step", "train_layers"]


@dataclass(frozen=True)
class FinetuneConfig(Config):
    """How :func:`finetune` trains the quantizers (frozen, validated; ``to_dict``/``from_dict``).

    Args:
        epochs: passes over the training part (≥ 1).
        lr: Adam learning rate of thresholds and levels (cosine-decayed to 0 over all steps).
        head_lr: Adam learning rate of the temporary linear head.
        batch_size: rows per step.
        temperature: width of the surrogate gradient, in units of each neuron's pre-activation std.
        train_levels: also train the hidden layers' levels (otherwise thresholds only).
        val_fraction: share of each class held out (from the training rows) to pick the best epoch, in (0, 0.5].
        n_scale_rows: training rows used to measure each neuron's pre-activation std.
        seed: seed of the validation split and of the minibatch order.
        matmul: how each layer's product with its fixed weights is computed: ``"dense"`` (a BLAS GEMM),
            ``"sparse"`` (:func:`rmtcompress.kernels.csr_matmul_lanes`: one multiply-add per kept weight and
            sample, forward and input gradient) or ``"auto"`` (sparse for layers with at most
            :data:`SPARSE_DENSITY` of their weights non-zero). Both compute the same products up to float32
            round-off (the summation order differs), so the trained values can differ in the last bits; a
            version-1 dict reads back as ``"dense"``, how it was trained.
    """

    # 2: field matmul (a version-1 dict reads as "dense")
    version: ClassVar[int] = 2

    epochs: int = 4
    lr: float = 1e-2
    head_lr: float = 1e-2
    batch_size: int = 256
    temperature: float = 0.5
    train_levels: bool = True
    val_fraction: float = 0.1
    n_scale_rows: int = 4096
    seed: int = 0
    matmul: str = "auto"

    @classmethod
    def _upgrade(cls, body: dict[str, Any], version: int) -> dict[str, Any]:
        if version < 2:
            body = {**body, "matmul": "dense"}
        return body

    def __post_init__(self) -> None:
        for name, minimum in (("epochs", 1), ("batch_size", 1), ("n_scale_rows", 2), ("seed", 0)):
            object.__setattr__(self, name, check_int(getattr(self, name), name, minimum))
        for name in ("lr", "head_lr", "temperature"):
            check_positive(getattr(self, name), name)
        vf = self.val_fraction
        if isinstance(vf, bool) or not isinstance(vf, (int, float)) or not 0.0 < float(vf) <= 0.5:
            raise InvalidParameterError(f"val_fraction must be in (0, 0.5], got {vf!r}")
        if not isinstance(self.train_levels, bool):
            raise InvalidParameterError(f"train_levels must be True or False, got {self.train_levels!r}")
        if self.matmul not in ("auto", "dense", "sparse"):
            raise InvalidParameterError(f"matmul must be 'auto', 'dense' or 'sparse', got {self.matmul!r}")


SPARSE_DENSITY = 0.15
"""``matmul="auto"`` multiplies a layer by the sparse kernel when at most this share of its weights is non-zero
(BENCHMARKS.md, the README snippet's rows: 5 % dense layers)."""


@dataclass(frozen=True)
class _CSR:
    """CSR arrays of W (forward) and of Wᵀ (input gradient)."""

    fwd: tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.float32]]
    bwd: tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.float32]]

    @classmethod
    def of(cls, w: torch.Tensor) -> _CSR:
        def arrays(m: np.ndarray) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.float32]]:
            c = sp.csr_matrix(m)
            return (c.indptr.astype(np.int64), c.indices.astype(np.int32), c.data.astype(np.float32))

        a = w.detach().to(torch.float32).cpu().numpy()
        return cls(arrays(a), arrays(np.ascontiguousarray(a.T)))


class _SparseMatmul(torch.autograd.Function):
    """``h @ Wᵀ`` by the sparse kernel, with the input gradient ``g @ W`` by the same kernel on Wᵀ (W is fixed)."""

    @staticmethod
    def forward(ctx: Any, h: torch.Tensor, op: _CSR) -> torch.Tensor:
        ctx.op = op
        zt = csr_matmul_lanes(op.fwd[0], op.fwd[1], op.fwd[2], h.detach().T.contiguous().numpy())
        return torch.from_numpy(zt).T.contiguous()  # row-major, as the elementwise steps and torch.cat expect

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        op: _CSR = ctx.op
        gt = csr_matmul_lanes(op.bwd[0], op.bwd[1], op.bwd[2], grad.T.contiguous().numpy())
        return torch.from_numpy(gt).T, None


def _matmuls(weights: Sequence[torch.Tensor], mode: str) -> list[Callable[[torch.Tensor], torch.Tensor]]:
    """Per layer, ``h ↦ h @ Wᵀ`` by the dense or the sparse product (``mode`` as :class:`FinetuneConfig.matmul`)."""
    out: list[Callable[[torch.Tensor], torch.Tensor]] = []
    for w in weights:
        density = float((w != 0).sum()) / max(1, w.numel())
        if mode == "sparse" or (mode == "auto" and density <= SPARSE_DENSITY):
            out.append(functools.partial(_sparse_product, op=_CSR.of(w)))
        else:
            out.append(functools.partial(_dense_product, w=w))
    return out


def _sparse_product(h: torch.Tensor, op: _CSR) -> torch.Tensor:
    out: torch.Tensor = _SparseMatmul.apply(h, op)
    return out


def _dense_product(h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return h @ w.T


@dataclass
class FinetuneReport:
    """What :func:`finetune` did: per-epoch mean training loss and validation accuracy (net + jointly trained
    head), the epoch whose state was kept (1-based), the sizes of the training and validation parts, the config."""

    train_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    best_epoch: int = 0
    n_train: int = 0
    n_val: int = 0
    config: dict[str, Any] = field(default_factory=dict)


class _SurrogateStep(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, u: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(u, s)
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        u, s = ctx.saved_tensors
        g = torch.sigmoid(u / s)
        return grad * g * (1.0 - g) / s, None


def surrogate_step(u: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``1{u ≥ 0}`` (exact, same dtype as u) whose gradient is ``sigmoid'(u/s)/s`` (s > 0, broadcast to u)."""
    out: torch.Tensor = _SurrogateStep.apply(u, s)
    return out


def _to_levels(v0: np.ndarray, T: np.ndarray, D: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds (k−1, d) sorted per neuron and levels (k, d) of ``v0 + Σ_i D_i·1{z ≥ T_i}`` (the same function)."""
    order = np.argsort(T, axis=0, kind="stable")
    Ts = np.take_along_axis(T, order, axis=0)
    Ds = np.take_along_axis(D, order, axis=0)
    return Ts, np.concatenate([v0[None, :], v0[None, :] + np.cumsum(Ds, axis=0)], axis=0)


class _Layer(torch.nn.Module):
    s: torch.Tensor

    def __init__(
        self, act: PerNeuronStep, scale: torch.Tensor, train_levels: bool, indicators_only: bool
    ) -> None:
        super().__init__()
        lev = torch.from_numpy(np.asarray(act.levels, dtype=np.float32))
        self.t = torch.nn.Parameter(torch.from_numpy(np.asarray(act.thresholds, dtype=np.float32)))
        self.v0 = torch.nn.Parameter(lev[0].clone(), requires_grad=train_levels and not indicators_only)
        self.d = torch.nn.Parameter(lev[1:] - lev[:-1], requires_grad=train_levels and not indicators_only)
        self.register_buffer("s", scale)
        self.indicators_only = indicators_only

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        ind = [surrogate_step(z - self.t[i], self.s) for i in range(self.t.shape[0])]
        if self.indicators_only:
            return torch.cat(ind, dim=1)
        out = self.v0.expand_as(z)
        for i, a in enumerate(ind):
            out = out + self.d[i] * a
        return out


@dataclass
class TrainedLayers:
    """What :func:`train_layers` returns: the layer modules and head in their kept (best-validation) state, the
    label set, the validation rows, the report and the net's forward function (inputs → head scores)."""

    layers: list[torch.nn.Module]
    head: torch.nn.Linear
    classes: np.ndarray
    val_indices: np.ndarray
    report: FinetuneReport
    forward: Callable[[torch.Tensor], torch.Tensor]


def train_layers(
    make_layer: Callable[[int, torch.Tensor], tuple[torch.nn.Module, torch.Tensor]],
    weights: Sequence[torch.Tensor],
    centers: Sequence[float],
    X: np.ndarray,
    y: np.ndarray,
    cfg: FinetuneConfig,
    progress: bool | None = None,
) -> TrainedLayers:
    """Train per-neuron activation parameters of a fixed-weight MLP, jointly with a linear head (cross-entropy).

    ``make_layer(i, z)`` receives layer i's pre-activations (float32, ``(n_scale_rows, d_i)``) of the net built so
    far and returns the trainable activation module of layer i and its output on ``z`` (used to go on). Layer i's
    output ``a`` feeds layer i + 1 as ``(a − centers[i]) / √d_i``; the last layer's output feeds the head as is.
    Adam (``cfg.lr`` for the layers, ``cfg.head_lr`` for the zero-initialised head), cosine decay, minibatches in a
    seeded order, the state with the best accuracy on a stratified validation split of (X, y) is kept.
    X (n, p) and y (n,) must be validated by the caller; weights[i] is (d_i, d_{i−1}) float32.
    """
    classes, yc = np.unique(y, return_inverse=True)
    tr, va = stratified_split(yc, val_fraction=cfg.val_fraction, seed=cfg.seed)
    Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    yt = torch.from_numpy(yc.astype(np.int64))
    depth = len(weights)
    norms = [math.sqrt(w.shape[0]) for w in weights]
    rows = torch.from_numpy(np.sort(tr[: min(cfg.n_scale_rows, tr.size)]))
    mm = _matmuls(weights, cfg.matmul)
    layers: list[torch.nn.Module] = []
    with torch.no_grad():
        h = Xt[rows]
        for i in range(depth):
            layer, a = make_layer(i, mm[i](h))
            layers.append(layer)
            h = a if i == depth - 1 else (a - centers[i]) / norms[i]
    head = torch.nn.Linear(h.shape[1], classes.size)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    q_params = [p for layer in layers for p in layer.parameters() if p.requires_grad]
    opt = torch.optim.Adam(
        [{"params": q_params, "lr": cfg.lr}, {"params": list(head.parameters()), "lr": cfg.head_lr}]
    )
    steps = cfg.epochs * math.ceil(tr.size / cfg.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: 0.5 * (1.0 + math.cos(math.pi * min(k, steps) / steps))
    )

    def forward(x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, layer in enumerate(layers):
            a = layer(mm[i](h))
            h = a if i == depth - 1 else (a - centers[i]) / norms[i]
        out: torch.Tensor = head(h)
        return out

    def val_accuracy() -> float:
        with torch.no_grad():
            correct = 0
            for b in range(0, va.size, 4096):
                idx = torch.from_numpy(va[b : b + 4096])
                correct += int((forward(Xt[idx]).argmax(1) == yt[idx]).sum())
        return correct / va.size

    def snapshot() -> tuple[list[dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
        states = [{k: v.detach().clone() for k, v in layer.state_dict().items()} for layer in layers]
        return states, {k: v.detach().clone() for k, v in head.state_dict().items()}

    report = FinetuneReport(n_train=int(tr.size), n_val=int(va.size), config=dict(cfg.__dict__))
    gen = torch.Generator().manual_seed(cfg.seed)
    tr_t = torch.from_numpy(tr)
    best_acc, (best_layers, best_head) = -1.0, snapshot()
    bar = tqdm(
        total=steps,
        desc="finetune",
        unit="batch",
        leave=False,
        disable=None if progress is None else not progress,
    )
    for epoch in range(cfg.epochs):
        perm = tr_t[torch.randperm(tr.size, generator=gen)]
        total = 0.0
        bar.set_postfix_str(
            f"epoch {epoch + 1}/{cfg.epochs}" + (f", val {best_acc:.3f}" if best_acc >= 0 else "")
        )
        for b in range(0, perm.numel(), cfg.batch_size):
            bar.update(1)
            idx = perm[b : b + cfg.batch_size]
            loss = torch.nn.functional.cross_entropy(forward(Xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * idx.numel()
        report.train_loss.append(total / tr.size)
        acc = val_accuracy()
        report.val_accuracy.append(acc)
        if acc > best_acc:
            best_acc, (best_layers, best_head) = acc, snapshot()
            report.best_epoch = len(report.val_accuracy)
    bar.close()
    for layer, state in zip(layers, best_layers, strict=True):
        layer.load_state_dict(state)
    head.load_state_dict(best_head)
    return TrainedLayers(layers, head, classes, va, report, forward)


def finetune(
    model: CompressedMLP,
    X: ArrayLike,
    y: ArrayLike,
    config: FinetuneConfig | None = None,
    *,
    progress: bool | None = None,
) -> CompressedMLP:
    """A copy of a calibrated ``model`` whose per-neuron thresholds (and hidden levels) are trained on (X, y).

    Args:
        model: a :class:`CompressedMLP` whose activations are all :class:`~rmtcompress.activations.PerNeuronStep`
            (the output of :func:`rmtcompress.calibrate`); its codes/weights and scales are kept, its readout is not
            (refit it with :func:`rmtcompress.fit_readout`).
        X: training inputs (n, p), finite — never test data.
        y: training labels (n,), at least 2 rows per class.
        config: :class:`FinetuneConfig`.
        progress: A progress bar over the minibatches on stderr (epoch, best validation accuracy so far): ``True``,
            ``False``, or ``None`` (default) for only when stderr is a terminal.

    Returns:
        A new :class:`CompressedMLP` with the same codes, trained :class:`PerNeuronStep` activations (same k),
        the step ``"finetuned"`` (with ``config.to_dict()``) added to its provenance (``method = model.method +
        "+finetuned"``), ``finetune_report`` (:class:`FinetuneReport`) and the jointly trained head as classifier.

    Raises:
        ValueError: model of another type or with a non-per-neuron activation, X/y of the wrong shape, NaN/inf,
            a class with fewer than 2 rows.
    """
    cfg = config if config is not None else FinetuneConfig()
    if not isinstance(model, CompressedMLP):
        raise InvalidParameterError(f"finetune needs a CompressedMLP, got {type(model).__name__}")
    bad = [i + 1 for i, a in enumerate(model.activations) if not isinstance(a, PerNeuronStep)]
    if bad:
        raise InvalidParameterError(
            f"finetune needs per-neuron step activations in every layer (run rmtcompress.calibrate first); "
            f"layer(s) {bad} are not"
        )
    Xa, ya = validate_Xy(X, y, min_per_class=2)
    spec = model.spec
    if Xa.shape[1] != spec.input_dim:
        raise InvalidParameterError(f"X has {Xa.shape[1]} features but the model expects {spec.input_dim}")
    depth = spec.depth
    W = [model.weight(i).detach().clone() for i in range(depth)]
    acts: list[PerNeuronStep] = list(model.activations)  # type: ignore[arg-type]
    thermo = model.thermometer
    centers_t = model.centers
    assert isinstance(centers_t, torch.Tensor)
    centers = [float(c) for c in centers_t]

    def make_layer(i: int, z: torch.Tensor) -> tuple[torch.nn.Module, torch.Tensor]:
        s = (cfg.temperature * z.std(dim=0)).clamp_min(1e-6)
        layer = _Layer(acts[i], s, cfg.train_levels, indicators_only=i == depth - 1 and thermo)
        return layer, layer(z)

    run = train_layers(make_layer, W, centers, Xa, ya, cfg, progress=progress)
    report = run.report
    new_acts = []
    for i, layer in enumerate(run.layers):
        assert isinstance(layer, _Layer)
        t = layer.t.detach().double().numpy()
        if layer.indicators_only:
            T = np.sort(t, axis=0)
            V = np.asarray(acts[i].levels, dtype=np.float64)
        else:
            T, V = _to_levels(layer.v0.detach().double().numpy(), t, layer.d.detach().double().numpy())
        new_acts.append(PerNeuronStep(T, V, name=f"{acts[i].name} finetuned"))
    out = model.with_activations(
        new_acts, centers, provenance=model.provenance.then("finetuned", cfg), finetune_report=report
    )
    # the jointly trained head, in the model's readout_inputs convention (features / √d_L)
    last_norm = math.sqrt(spec.widths[-1])
    out.set_classifier(
        LinearReadout(
            coef=run.head.weight.detach().double().numpy().T * last_norm,
            intercept=run.head.bias.detach().double().numpy(),
            classes=run.classes,
            method="finetune-head",
            info={
                "val_accuracy": max(report.val_accuracy),
                "val_indices": run.val_indices,
                "n_train": report.n_train,
                "n_val": report.n_val,
            },
        )
    )
    return out
