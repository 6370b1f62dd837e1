"""The compressed net: :class:`CompressedMLP` — ternary (or float) weights, step activations, centring constants and
a linear readout, with the state it owns (classifier, weight seed, provenance, fast-kernel switch).

Built by :func:`rmtcompress.ntklc.compress`; :func:`rmtcompress.ntklc.calibrate` and
:func:`rmtcompress.ntklc.finetune` return new ones from it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .._utils import check_int, validate_X, validate_Xy, warn_deprecated
from ..core import Activation, InputTransform, MLPSpec, PerNeuronStep, StepActivation, check_input_scale
from ..errors import InvalidParameterError
from ..kernels import KernelPlanner, fast_features, prepare, unsupported_reason
from ..theory import MatchReport
from ._memory import model_memory
from ._provenance import Provenance
from ._readout import LinearReadout

__all__ = ["NET_PATHS", "CompressedMLP"]


class _StraightThroughStep(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, t: torch.Tensor, act: StepActivation, width: float) -> torch.Tensor:
        ctx.save_for_backward(t)
        ctx.act, ctx.width = act, width
        return act.torch(t)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (t,) = ctx.saved_tensors
        act, w = ctx.act, ctx.width
        slope = torch.zeros_like(t)
        for b, jump in zip(act.breakpoints, act.jumps, strict=True):
            slope += float(jump) / (2.0 * w) * (torch.abs(t - b) < w).to(t.dtype)
        return grad * slope, None, None


class CompressedMLP(nn.Module):
    """A compressed random-feature net: packed-ternary (or float) weights, step activations, trained readout.

    Use :func:`compress` to build one. ``features(X)`` gives the last hidden layer (NumPy in → NumPy out, tensors
    stay tensors), ``decision_function(X)`` / ``predict(X)`` the class scores / labels once :func:`fit_readout`
    has trained the classifier.

    ``forward(x)`` (``model(x)``) is the network's own output: the last hidden layer h_L (n, d_L), the same as
    ``features`` on a tensor. The net has no output layer of its own; the fitted classifier is separate state
    (:attr:`classifier`, set by :meth:`set_classifier`), and ``forward`` never includes it. This is the meaning of
    ``forward`` for every model of the package (:class:`~rmtcompress.empirical.RandomFeatureMLP` returns its
    random output layer, or h_L without one).

    The model owns its state: the classifier is set with :meth:`set_classifier`, the packed-kernel path with
    :meth:`use_fast_kernel`, the Philox weight seed and the fine-tuning report come with the constructor (or
    :meth:`with_weight_seed` / :meth:`with_activations`), and :attr:`provenance` records the method and the steps
    that made the net (:attr:`method` is its label, e.g. ``"lloyd-max+calibrated"``).

    ``input_transform`` (constructor argument or :meth:`set_input_transform`) is the preprocessing the net was
    trained with (an :class:`~rmtcompress.core.InputTransform`, e.g. the training normaliser): ``predict``,
    ``decision_function`` and ``score`` take *raw* inputs and apply it first (:meth:`model_inputs`); ``features``,
    ``readout_inputs`` and ``forward`` take the net's own (already transformed) inputs. Model files store it.
    """

    def __init__(
        self,
        spec: MLPSpec,
        activations: Sequence[Activation],
        centers: Sequence[float],
        *,
        codes: Sequence[torch.Tensor] | None = None,
        scales: Sequence[float] | None = None,
        weights: Sequence[torch.Tensor] | None = None,
        method: str = "custom",
        sparsity: float = 0.0,
        activation_bits: Sequence[float] | None = None,
        match_report: MatchReport | None = None,
        tau0: float = 1.0,
        straight_through: bool = False,
        running_tau: Sequence[float] | None = None,
        thermometer: bool = False,
        weight_seed: int | None = None,
        provenance: Provenance | None = None,
        finetune_report: Any = None,
        input_transform: InputTransform | None = None,
    ) -> None:
        """Args as the attributes; ``method`` is a label (``"lloyd-max"``, or with steps
        ``"lloyd-max+calibrated"``) read into :attr:`provenance` unless ``provenance`` is given (it wins);
        ``weight_seed`` is the Philox seed the codes were generated from; ``finetune_report`` the
        :class:`~rmtcompress.ntklc.FinetuneReport` of :func:`~rmtcompress.finetune`; ``input_transform`` the
        preprocessing of raw inputs (:meth:`set_input_transform`)."""
        super().__init__()
        if (codes is None) == (weights is None):
            raise InvalidParameterError("give either ternary codes (+ scales) or float weights")
        if provenance is not None and not isinstance(provenance, Provenance):
            raise InvalidParameterError(f"provenance must be a Provenance, got {type(provenance).__name__}")
        self.spec = spec
        self.activations: tuple[Activation, ...] = tuple(activations)
        self._provenance = provenance if provenance is not None else Provenance.parse(method)
        self.sparsity = float(sparsity)
        self.tau0 = float(tau0)
        self.match_report = match_report
        self.straight_through = straight_through
        self.thermometer = bool(thermometer) and isinstance(activations[-1], (StepActivation, PerNeuronStep))
        self.running_tau = tuple(running_tau) if running_tau is not None else None
        self.register_buffer("centers", torch.tensor(list(centers), dtype=torch.float32))
        self._ternary = codes is not None
        self.scales = tuple(float(s) for s in (scales or [1.0] * spec.depth))
        mats = codes if codes is not None else weights
        assert mats is not None
        for i, m in enumerate(mats):
            expected = (spec.widths[i], spec.input_dim if i == 0 else spec.widths[i - 1])
            if tuple(m.shape) != expected:
                raise InvalidParameterError(
                    f"layer {i + 1} weights have shape {tuple(m.shape)}, expected {expected}"
                )
            self.register_buffer(f"w{i}", m.to(torch.int8) if self._ternary else m.to(torch.float32))
        self.activation_bits = tuple(
            activation_bits
            if activation_bits is not None
            else [
                math.log2(len(set(a.values)))
                if isinstance(a, StepActivation)
                else math.log2(a.n_levels)
                if isinstance(a, PerNeuronStep)
                else 32.0
                for a in self.activations
            ]
        )
        self._classifier: LinearReadout | None = None
        self._finetune_report: Any = finetune_report
        if weight_seed is not None:
            weight_seed = check_int(weight_seed, "weight_seed", 0)
        self._weight_seed: int | None = weight_seed
        self._fast = (
            False  # NumPy inputs go through rmtcompress.kernels (use_fast_kernel; rc.load turns it on)
        )
        self._planner: KernelPlanner | None = None  # the measured choice among NET_PATHS (use_fast_kernel)
        self._input_transform: InputTransform | None = None
        self.set_input_transform(input_transform)

    # ---------------------------------------------------------------------------------------------- owned state

    @property
    def is_ternary(self) -> bool:
        """True when the hidden weights are stored as ternary codes."""
        return self._ternary

    @property
    def provenance(self) -> Provenance:
        """The method that built the net and the steps applied since, each with its config."""
        return self._provenance

    @property
    def method(self) -> str:
        """The provenance as a label: the method, then ``"+"`` and each step (``"lloyd-max+calibrated"``)."""
        return self._provenance.label

    @property
    def classifier(self) -> LinearReadout | None:
        """The fitted linear classifier on :meth:`readout_inputs` (None until :func:`fit_readout` or
        :meth:`set_classifier`)."""
        return self._classifier

    @classifier.setter
    def classifier(self, value: LinearReadout | None) -> None:
        warn_deprecated("setting CompressedMLP.classifier", "model.set_classifier(classifier)")
        self.set_classifier(value)

    def set_classifier(self, classifier: LinearReadout | None) -> CompressedMLP:
        """Install a fitted classifier (or remove it with None); its ``coef`` must have one row per readout input
        (:attr:`readout_dim`). Returns the model."""
        if classifier is not None:
            if not isinstance(classifier, LinearReadout):
                raise InvalidParameterError(
                    f"the classifier must be a LinearReadout, got {type(classifier).__name__}"
                )
            if classifier.coef.shape[0] != self.readout_dim:
                raise InvalidParameterError(
                    f"the classifier reads {classifier.coef.shape[0]} inputs but this model gives "
                    f"{self.readout_dim} (readout_inputs)"
                )
        self._classifier = classifier
        return self

    @property
    def readout_dim(self) -> int:
        """Number of readout inputs per row: d_L, or (k − 1)·d_L with thermometer features."""
        last, width = self.activations[-1], self.spec.widths[-1]
        if self.thermometer and isinstance(last, StepActivation):
            return width * len(last.breakpoints)
        if self.thermometer and isinstance(last, PerNeuronStep):
            return width * (last.n_levels - 1)
        return width

    @property
    def finetune_report(self) -> Any:
        """The :class:`~rmtcompress.ntklc.FinetuneReport` of :func:`~rmtcompress.finetune` (None otherwise)."""
        return self._finetune_report

    @finetune_report.setter
    def finetune_report(self, value: Any) -> None:
        warn_deprecated(
            "setting CompressedMLP.finetune_report", "model.with_activations(..., finetune_report=report)"
        )
        self._finetune_report = value

    @property
    def weight_seed(self) -> int | None:
        """The Philox seed the ternary codes were generated from (the ``"seed"`` file encoding stores only it), or
        None."""
        return self._weight_seed

    @weight_seed.setter
    def weight_seed(self, value: int | None) -> None:
        warn_deprecated("setting CompressedMLP.weight_seed", "model.with_weight_seed(seed)")
        self._weight_seed = None if value is None else check_int(value, "weight_seed", 0)

    @property
    def input_transform(self) -> InputTransform | None:
        """The preprocessing ``predict``/``decision_function``/``score`` apply to raw inputs (None: inputs are used
        as given)."""
        return self._input_transform

    def set_input_transform(self, transform: InputTransform | None) -> CompressedMLP:
        """Record the preprocessing the net was trained with (None removes it); returns the net.

        Raises:
            InvalidParameterError: Not an :class:`~rmtcompress.core.InputTransform`, or one for another number of
                features than ``spec.input_dim``.
        """
        if transform is not None:
            if not isinstance(transform, InputTransform):
                raise InvalidParameterError(
                    f"input_transform must be an rc.core.InputTransform or None, got {type(transform).__name__}"
                )
            if transform.n_features != self.spec.input_dim:
                raise InvalidParameterError(
                    f"the input transform maps {transform.n_features} features but the net takes "
                    f"{self.spec.input_dim}"
                )
        self._input_transform = transform
        return self

    @property
    def fast(self) -> bool:
        """Whether NumPy inputs run through the packed CPU kernels (:meth:`use_fast_kernel`)."""
        return self._fast

    @fast.setter
    def fast(self, value: bool) -> None:
        warn_deprecated("setting CompressedMLP.fast", "model.use_fast_kernel(enabled)")
        self.use_fast_kernel(bool(value))

    def _copy(
        self,
        activations: Sequence[Activation],
        centers: Sequence[float],
        **changes: Any,
    ) -> CompressedMLP:
        mats = [getattr(self, f"w{i}") for i in range(self.spec.depth)]
        common: dict[str, Any] = {
            "scales": self.scales,
            "sparsity": self.sparsity,
            "tau0": self.tau0,
            "thermometer": self.thermometer,
            "weight_seed": self._weight_seed,
            "provenance": self._provenance,
            "input_transform": self._input_transform,
            **changes,
        }
        return (
            CompressedMLP(self.spec, activations, centers, codes=mats, **common)
            if self._ternary
            else CompressedMLP(self.spec, activations, centers, weights=mats, **common)
        )

    def with_activations(
        self,
        activations: Sequence[Activation],
        centers: Sequence[float],
        *,
        provenance: Provenance | None = None,
        method: str | None = None,
        thermometer: bool | None = None,
        finetune_report: Any = None,
    ) -> CompressedMLP:
        """A new net with the same codes (or weights), scales, sparsity, τ0, weight seed and input transform, and the
        given activations and centres; no classifier. ``provenance`` defaults to this net's (``method``, a label, is
        the older way to give it); ``thermometer`` defaults to this net's."""
        if provenance is None:
            provenance = Provenance.parse(method) if method is not None else self._provenance
        return self._copy(
            activations,
            centers,
            provenance=provenance,
            thermometer=self.thermometer if thermometer is None else thermometer,
            finetune_report=finetune_report,
        )

    def with_weight_seed(self, seed: int | None) -> CompressedMLP:
        """A new net sharing this one's codes, activations, centres, classifier and the rest, that records ``seed``
        as the Philox seed of its codes (checked against the codes when saved with the ``"seed"`` encoding)."""
        out = self._copy(
            self.activations,
            [float(c) for c in self.centers],  # type: ignore[union-attr]
            weight_seed=seed,
            activation_bits=self.activation_bits,
            match_report=self.match_report,
            straight_through=self.straight_through,
            running_tau=self.running_tau,
            finetune_report=self._finetune_report,
        )
        out.set_classifier(self._classifier)
        if self._fast:
            planner = getattr(self, "_planner", None)
            out.use_fast_kernel(True, plan=planner.plan if planner is not None else "auto")
        return out

    def weight(self, layer: int) -> torch.Tensor:
        """Dense float32 weight of hidden layer ``layer`` (0-based), scale applied."""
        w = getattr(self, f"w{layer}")
        assert isinstance(w, torch.Tensor)
        return w.to(torch.float32) * self.scales[layer] if self._ternary else w

    def _forward_features(self, x: torch.Tensor, thermometer: bool = False) -> torch.Tensor:
        h = x
        centers = self.centers
        assert isinstance(centers, torch.Tensor)
        for i, act in enumerate(self.activations):
            z = h @ self.weight(i).T
            if thermometer and i == len(self.activations) - 1:
                if isinstance(act, PerNeuronStep):
                    return act.indicators(z) / math.sqrt(self.spec.widths[i])
                assert isinstance(act, StepActivation)
                ind = [(z >= b).to(z.dtype) for b in act.breakpoints]
                return torch.cat(ind, dim=1) / math.sqrt(self.spec.widths[i])
            if self.straight_through and isinstance(act, StepActivation) and torch.is_grad_enabled():
                width = 0.5 * (self.running_tau[i] if self.running_tau else 1.0)
                a = _StraightThroughStep.apply(z, act, width)
            else:
                a = act.torch(z)
            h = (a - centers[i]) / math.sqrt(self.spec.widths[i])
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The network's output: the last hidden layer h_L (n, d_L) for a float tensor x (n, p) (the net has no
        output layer; the fitted classifier is :meth:`decision_function`)."""
        return self._forward_features(x)

    def use_fast_kernel(self, enabled: bool = True, *, plan: str = "auto") -> CompressedMLP:
        """Route NumPy inputs of ``features``/``readout_inputs``/``predict`` through the fastest of the exact paths
        :data:`NET_PATHS` (same features as the reference wherever no pre-activation ties a breakpoint within
        float rounding); raises ``ValueError`` for nets the packed kernels do not support (float weights, smooth
        activations).

        Args:
            enabled: turn the fast paths on (with a fresh plan) or off.
            plan: ``"auto"``: on the first call of each batch-size bucket, time every eligible path on that batch
                and keep the fastest (:meth:`kernel_plan` shows the choice and its timings); ``"fixed:<path>"``:
                always that path.
        """
        if enabled:
            why = unsupported_reason(self)
            if why:
                raise InvalidParameterError(
                    f"the fast kernels need ternary weights and step activations in every layer: {why}"
                )
            self._planner = KernelPlanner(plan, paths=NET_PATHS)
        else:
            self._planner = None
        self._fast = bool(enabled)
        return self

    def kernel_plan(self) -> dict[str, list[dict[str, Any]]]:
        """The path of :data:`NET_PATHS` chosen per batch-size bucket so far, with the median timings (ms) that
        chose it: ``{"net": [{"batch", "path", "mode", "timings_ms", …}, …]}`` (empty when the fast paths are off
        or before the first call)."""
        planner = getattr(self, "_planner", None)
        return {} if planner is None else planner.report()

    def _net_paths(self, readout_inputs: bool) -> dict[str, Any]:
        """The eligible whole-net paths, as functions of a float32 (n, p) array."""
        net = prepare(self)
        thermo = readout_inputs and self.thermometer

        def packed(path: str) -> Any:
            return lambda X32: fast_features(net, X32, path=path, readout_inputs=readout_inputs)  # type: ignore[arg-type]

        def reference(X32: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return self._forward_features(torch.from_numpy(X32), thermometer=thermo).numpy()

        paths: dict[str, Any] = {name: packed(kernel) for name, kernel in _PACKED_PATHS.items()}
        if not net.blocked_ok:
            del paths["packed_blocked"]
        if torch.backends.quantized.engine in ("none", ""):
            del paths["torch_int8"]
        paths["torch_dense_fp32"] = reference
        return paths

    def _fast_features(self, X: Any, readout_inputs: bool) -> Any:
        Xa = validate_X(X)
        if Xa.shape[1] != self.spec.input_dim:
            raise InvalidParameterError(
                f"X has {Xa.shape[1]} features but the model expects {self.spec.input_dim}"
            )
        X32 = np.ascontiguousarray(Xa, dtype=np.float32)
        planner = getattr(self, "_planner", None)
        if planner is None:  # turned on before kernel plans existed (an older pickle)
            planner = self._planner = KernelPlanner("auto", paths=NET_PATHS)
        if X32.shape[0] == 0:
            return fast_features(self, X32, readout_inputs=readout_inputs)
        return planner.run(
            X32,
            self._net_paths(readout_inputs),
            layer="net-readout" if readout_inputs and self.thermometer else "net",
            shape=(self.spec.input_dim, *self.spec.widths),
            density=1.0 - self.sparsity,
        )

    def features(self, X: Any, *, batch_size: int = 4096) -> Any:
        """Last hidden layer h_L; NumPy (n, p) → NumPy float32 (n, d_L), tensor → tensor."""
        if self._fast and not isinstance(X, torch.Tensor):
            return self._fast_features(X, readout_inputs=False)
        return _features(self, X, batch_size)

    def readout_inputs(self, X: Any, *, batch_size: int = 4096) -> Any:
        """What the readout sees: h_L, or with ``thermometer`` the k − 1 indicators 1{z ≥ b_j}/√d_L of each
        last-layer pre-activation z, shape (n, (k − 1)·d_L) (same 2-bit runtime code, learned levels)."""
        if not self.thermometer:
            return self.features(X, batch_size=batch_size)
        if self._fast and not isinstance(X, torch.Tensor):
            return self._fast_features(X, readout_inputs=True)
        return _features(self, X, batch_size, lambda x: self._forward_features(x, thermometer=True))

    def _trained_classifier(self) -> LinearReadout:
        if self._classifier is None:
            raise InvalidParameterError(
                "the readout is not trained: call rc.fit_readout(model, X_train, y_train) first"
            )
        return self._classifier

    def model_inputs(self, X: Any, *, stacklevel: int = 1) -> np.ndarray:
        """Raw inputs → the net's inputs: validated float64 (n, p), the input transform applied.

        NumPy arrays, lists and tensors of any real dtype (on any device) are accepted. Warns
        (:class:`~rmtcompress.errors.InputScaleWarning`) when the result's RMS row norm is outside [1/2, 2]× the
        training inputs' (``input_transform.input_scale``, else ``tau0``) or, for 16 rows or more, its spread outside
        [1/4, 4]× ``input_transform.input_spread`` (see :mod:`rmtcompress.core`).

        Raises:
            InvalidParameterError: Not a finite 2-D real array, or the wrong number of features.
        """
        if isinstance(X, torch.Tensor):
            if X.is_complex() or X.dtype == torch.bool:
                raise InvalidParameterError(f"X must hold real numbers, got a {X.dtype} tensor")
            X = X.detach().cpu().to(torch.float64).numpy()
        Xa = validate_X(X)
        if Xa.shape[1] != self.spec.input_dim:
            raise InvalidParameterError(
                f"X has {Xa.shape[1]} features but the model expects {self.spec.input_dim}"
            )
        t = self._input_transform
        if t is not None:
            Xa = t.apply(Xa)
        reference = t.input_scale if t is not None and t.input_scale is not None else self.tau0
        where = "the inputs (after the stored input transform)" if t is not None else "the inputs"
        spread = None if t is None else t.input_spread
        check_input_scale(Xa, reference, spread_reference=spread, what=where, stacklevel=stacklevel + 1)
        return Xa

    def decision_function(self, X: Any) -> np.ndarray:
        """Class scores (n, K) of the fitted classifier for raw inputs X (:meth:`model_inputs`; columns in
        ``classifier.classes`` order)."""
        clf = self._trained_classifier()
        return clf.decision_function(np.asarray(self.readout_inputs(self.model_inputs(X, stacklevel=2))))

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (n,) of raw inputs X (NumPy or tensor of any real dtype) from the trained readout."""
        clf = self._trained_classifier()
        return clf.predict(np.asarray(self.readout_inputs(self.model_inputs(X, stacklevel=2))))

    def score(self, X: Any, y: Any) -> float:
        """Accuracy on (X, y).

        Raises:
            InvalidParameterError: ``y`` not 1-D integer labels, of another length than X, or holding labels the
                readout does not know (they are named).
        """
        clf = self._trained_classifier()
        if isinstance(y, torch.Tensor):
            y = y.detach().cpu().numpy()
        Xa = self.model_inputs(X, stacklevel=2)
        _, ya = validate_Xy(Xa[:, :1], y)
        unknown = np.setdiff1d(np.unique(ya), np.asarray(clf.classes))
        if unknown.size:
            shown = ", ".join(str(int(v)) for v in unknown[:10]) + (" …" if unknown.size > 10 else "")
            known = ", ".join(str(int(v)) for v in np.asarray(clf.classes)[:20])
            raise InvalidParameterError(
                f"y holds {unknown.size} label(s) the readout never saw: {shown} (its classes: {known})"
            )
        return float(np.mean(clf.predict(np.asarray(self.readout_inputs(Xa))) == ya))

    def memory(self, n_classes: int | None = None) -> dict[str, float]:
        """Memory of this net + a linear head of ``n_classes`` outputs: the paper's convention and the entropy bound
        of what is stored (:func:`~rmtcompress.ntklc.model_memory`).

        Args:
            n_classes: number of classes K of the head (≥ 1); default: the fitted classifier's.

        Raises:
            InvalidParameterError: ``n_classes`` is left out before a readout is trained (the head's size is
                unknown), or is not a positive integer.
        """
        if n_classes is None:
            if self._classifier is None:
                raise InvalidParameterError(
                    "memory() counts the linear head, whose size depends on the number of classes: pass it "
                    "(model.memory(n_classes)) or train the readout first (rc.fit_readout)"
                )
            return model_memory(self, len(self._classifier.classes))
        return model_memory(self, check_int(n_classes, "n_classes", 1))


NET_PATHS = ("packed_popcount", "packed_blocked", "packed_gather", "torch_int8", "torch_dense_fp32")
"""The whole-net paths of a fast :class:`CompressedMLP` (:meth:`CompressedMLP.use_fast_kernel`): the packed kernels
of :mod:`rmtcompress.kernels` (``FastMLP`` paths popcount, blocked and gather — layer 1 by additions, hidden layers by
bit-plane popcounts, blocked packed counts or gathers over the compact index lists), ``torch_int8`` (layer 1 by the
reference's float32 GEMM, hidden layers by torch's dynamic-int8 GEMM on one-hot level planes: exact counts) and
``torch_dense_fp32`` (the reference forward itself)."""
_PACKED_PATHS = {
    "packed_popcount": "popcount",
    "packed_blocked": "blocked",
    "packed_gather": "gather",
    "torch_int8": "int8",
}


def _features(model: nn.Module, X: Any, batch_size: int, fn: Any = None) -> Any:
    forward = fn if fn is not None else model
    if isinstance(X, torch.Tensor):
        return forward(X)
    Xa = validate_X(X)
    spec = getattr(model, "spec", None)
    if spec is not None and Xa.shape[1] != spec.input_dim:
        raise InvalidParameterError(f"X has {Xa.shape[1]} features but the model expects {spec.input_dim}")
    out = []
    with torch.no_grad():
        for start in range(0, Xa.shape[0], batch_size):
            xb = torch.from_numpy(Xa[start : start + batch_size]).to(torch.float32)
            out.append(forward(xb).numpy())
    return np.concatenate(out, axis=0) if out else np.empty((0, 0), dtype=np.float32)
