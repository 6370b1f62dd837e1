"""Random weights and the centred, 1/√d-scaled fully-connected net of Gu et al. 2022 (methods.md §1.2, §1.11).

Forward pass, rows are samples:  h_0 = x,  h_ℓ = (σ_ℓ(h_{ℓ−1} W_ℓᵀ) − c_ℓ) / √d_ℓ,  f = h_L wᵀ

W_ℓ ∈ R^{d_ℓ × d_{ℓ−1}} has i.i.d. zero-mean unit-variance entries (no 1/√fan-in on the weights; the 1/√d_ℓ scales
the layer *output*), c_ℓ = E[σ_ℓ(τ_{ℓ−1}ξ)] comes from the τ recursion (never from batch statistics).
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .._utils import check_sparsity, check_widths, validate_X, warn_deprecated
from ..core import Activation, MLPSpec
from ..errors import InvalidParameterError
from ..theory import recursion

__all__ = ["RandomFeatureMLP", "WeightDistribution", "WeightStream", "sample_weights", "torch_generator"]


class WeightDistribution(enum.StrEnum):
    """Zero-mean, unit-variance weight laws (the CK/NTK equivalents do not depend on which)."""

    GAUSSIAN = "gaussian"  # N(0, 1)
    BERNOULLI = "bernoulli"  # ±1 with probability ½
    TERNARY = "ternary"  # 0 w.p. ε, ±1/√(1−ε) w.p. (1−ε)/2 each (= bernoulli with sparsity ε)
    STUDENT_T = "student_t"  # t_ν · √((ν−2)/ν), heavy-tailed


def _distribution(weights: str | WeightDistribution) -> WeightDistribution:
    try:
        return WeightDistribution(weights)
    except ValueError:
        valid = ", ".join(w.value for w in WeightDistribution)
        raise InvalidParameterError(f"unknown weight distribution {weights!r}; valid: {valid}") from None


def torch_generator(seed: int | np.random.SeedSequence) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from an int or a NumPy ``SeedSequence``."""
    if isinstance(seed, np.random.SeedSequence):
        state = seed.generate_state(2, dtype=np.uint32)
        value = (int(state[0]) << 31) ^ int(state[1])
    else:
        value = int(seed)
    g = torch.Generator()
    g.manual_seed(value)
    return g


class WeightStream:
    """Seeded, block-invariant stream of zero-mean unit-variance weights.

    Entries are drawn row-major from NumPy generators (values and sparsity mask from two independent children of
    one ``SeedSequence``), in float32 for Gaussian and uniform draws, so a matrix is the same whatever its dtype and
    however it is split into row blocks (which :func:`rmtcompress.ck_empirical` relies on to stream weights).

    Args:
        seed: an int or a ``numpy.random.SeedSequence``.
        distribution: a :class:`WeightDistribution` value.
        sparsity: ε ∈ [0, 1): zero w.p. ε, survivors scaled by 1/√(1−ε).
        student_df: ν > 2 for ``student_t``.
    """

    def __init__(
        self,
        seed: int | np.random.SeedSequence,
        distribution: str | WeightDistribution = "gaussian",
        sparsity: float = 0.0,
        student_df: float = 5.0,
    ) -> None:
        self.distribution = _distribution(distribution)
        self.sparsity = check_sparsity(sparsity)
        if self.distribution is WeightDistribution.STUDENT_T and not student_df > 2.0:
            raise InvalidParameterError(f"student_df must be > 2 for a finite variance, got {student_df}")
        self.student_df = float(student_df)
        ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(int(seed))
        values, mask = ss.spawn(2)
        self._values = np.random.default_rng(values)
        self._mask = np.random.default_rng(mask)

    def draw(self, rows: int, cols: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The next ``rows`` rows of the stream as a (rows, cols) tensor."""
        shape = (rows, cols)
        eps = self.sparsity
        dist = self.distribution
        if dist in (WeightDistribution.BERNOULLI, WeightDistribution.TERNARY):
            # one uniform per entry: −s below (1−ε)/2, +s from (1+ε)/2 up, 0 in between (s = 1/√(1−ε))
            u = self._values.random(shape, dtype=np.float32)
            w = (u >= (1.0 + eps) / 2.0).astype(np.float32) - (u < (1.0 - eps) / 2.0).astype(np.float32)
            return torch.from_numpy(w).to(dtype) * (1.0 / math.sqrt(1.0 - eps))
        if dist is WeightDistribution.GAUSSIAN:
            w64 = self._values.standard_normal(shape, dtype=np.float32).astype(np.float64)
        else:
            nu = self.student_df
            w64 = self._values.standard_t(nu, size=shape) * math.sqrt((nu - 2.0) / nu)
        if eps > 0.0:
            keep = self._mask.random(shape, dtype=np.float32) >= eps
            w64 = w64 * keep / math.sqrt(1.0 - eps)
        return torch.from_numpy(w64).to(dtype)


def sample_weights(
    shape: tuple[int, int],
    *,
    distribution: str | WeightDistribution = "gaussian",
    sparsity: float = 0.0,
    generator: torch.Generator | int,
    dtype: torch.dtype = torch.float32,
    student_df: float = 5.0,
) -> torch.Tensor:
    """Draw an i.i.d. zero-mean unit-variance weight matrix.

    With ``sparsity`` ε > 0 every entry is zeroed with probability ε and the survivors are scaled by 1/√(1−ε), so
    the variance stays 1 (``distribution="ternary"`` is exactly this applied to ±1 entries).

    Args:
        shape: (rows, cols).
        distribution: a :class:`WeightDistribution` value.
        sparsity: ε ∈ [0, 1).
        generator: a torch generator (one seed is drawn from it) or an int seed; the values come from a
            :class:`WeightStream`, so they do not depend on ``dtype``.
        dtype: output dtype.
        student_df: ν > 2 for ``student_t``.

    Returns:
        Tensor of ``shape`` and ``dtype``.
    """
    seed = (
        int(torch.randint(0, 2**62, (1,), generator=generator).item())
        if isinstance(generator, torch.Generator)
        else int(generator)
    )
    return WeightStream(seed, distribution, sparsity, student_df).draw(shape[0], shape[1], dtype)


class RandomFeatureMLP(nn.Module):
    """The dense random-feature net of the paper: bias-free layers, centred activations, 1/√d_ℓ output scaling.

    ``forward(x)`` (``model(x)``) is the network's own output: its random output layer ``readout`` (the f(x) whose
    NTK :func:`~rmtcompress.ntk_empirical` computes), or the last hidden layer h_L when built with
    ``out_features=None``. ``features(X)`` is always h_L. A classifier fitted on the features
    (:func:`rmtcompress.fit_readout`, installed with :meth:`set_classifier`) is separate state that ``forward``
    never includes: its scores are :meth:`decision_function`, its labels :meth:`predict`. The same holds for
    :class:`~rmtcompress.CompressedMLP`, whose ``forward`` is h_L (it has no output layer).

    Args:
        in_features: p.
        widths: (d_1, …, d_L).
        activations: one per layer (names or :class:`Activation`).
        weights: hidden weight law (:class:`WeightDistribution`).
        sparsity: ε for the hidden weights.
        out_features: readout size (N(0, 1) init, trainable); ``None`` for no readout (forward returns h_L).
        tau0: input scale used for the centring constants (τ̂_0 of the data; 1 after the paper's normalisation).
        seed: seed of every random draw.
        trainable_hidden: register hidden weights as trainable (for NTK computations); frozen by default.
        dtype: parameter dtype.
    """

    def __init__(
        self,
        in_features: int | MLPSpec,
        widths: Sequence[int] | None = None,
        activations: Sequence[str | Activation] | str | Activation | None = None,
        *,
        weights: str | WeightDistribution = "gaussian",
        sparsity: float = 0.0,
        out_features: int | None = 1,
        tau0: float = 1.0,
        seed: int = 0,
        trainable_hidden: bool = False,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if isinstance(in_features, MLPSpec):
            if widths is not None or activations is not None:
                raise InvalidParameterError(
                    "pass either an MLPSpec or (in_features, widths, activations), not both"
                )
            spec = in_features
        else:
            if widths is None or activations is None:
                raise InvalidParameterError("RandomFeatureMLP needs widths and activations (or an MLPSpec)")
            if isinstance(activations, (str, Activation)):
                activations = [activations] * len(tuple(widths))
            spec = MLPSpec(int(in_features), tuple(widths), tuple(activations))
        self.spec: MLPSpec = spec
        self._dtype: torch.dtype = dtype
        dims = (spec.input_dim, *spec.widths)
        acts = spec.resolved_activations
        self.activations: tuple[Activation, ...] = tuple(acts)
        self.widths = dims[1:]
        self.weight_distribution = _distribution(weights)
        self.sparsity = check_sparsity(sparsity)
        rec = recursion(acts, tau0)
        self.register_buffer("centers", torch.tensor(rec.centers, dtype=dtype))
        # layer ℓ's weights come from child ℓ of SeedSequence(seed), the readout from child L
        children = np.random.SeedSequence(int(seed)).spawn(len(dims))
        self.layers = nn.ModuleList()
        for (d_in, d_out), child in zip(itertools.pairwise(dims), children, strict=False):
            lin = nn.Linear(d_in, d_out, bias=False, dtype=dtype)
            with torch.no_grad():
                lin.weight.copy_(WeightStream(child, weights, sparsity).draw(d_out, d_in, dtype))
            lin.weight.requires_grad_(trainable_hidden)
            self.layers.append(lin)
        self._classifier: Any = None  # a LinearReadout (rmtcompress.fit_readout → set_classifier)
        self.readout: nn.Linear | None = None
        if out_features is not None:
            self.readout = nn.Linear(dims[-1], int(check_widths([out_features])[0]), bias=False, dtype=dtype)
            with torch.no_grad():
                shape = self.readout.weight.shape
                self.readout.weight.copy_(WeightStream(children[-1]).draw(shape[0], shape[1], dtype))

    def features(self, x: Any, *, batch_size: int = 4096) -> Any:
        """Last hidden layer h_L, shape (n, d_L): tensor → tensor; NumPy (n, p) → NumPy float32 (batched, no grad)."""
        if not isinstance(x, torch.Tensor):
            Xa = validate_X(x)
            if Xa.shape[1] != self.spec.input_dim:
                raise InvalidParameterError(
                    f"X has {Xa.shape[1]} features but the model expects {self.spec.input_dim}"
                )
            dtype = self._dtype
            with torch.no_grad():
                parts = [
                    self.features(torch.from_numpy(Xa[i : i + batch_size]).to(dtype)).numpy()
                    for i in range(0, Xa.shape[0], batch_size)
                ]
            return np.concatenate(parts, axis=0).astype(np.float32, copy=False)
        h = x
        centers = self.centers
        assert isinstance(centers, torch.Tensor)
        for ell, (lin, act, width) in enumerate(zip(self.layers, self.activations, self.widths, strict=True)):
            h = (act.torch(lin(h)) - centers[ell]) / math.sqrt(width)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The network's output: its random output layer (n, out_features), or h_L when it has none; never the
        fitted classifier (:meth:`decision_function`)."""
        h = self.features(x)
        return h if self.readout is None else self.readout(h)

    @property
    def classifier(self) -> Any:
        """The linear classifier fitted on :meth:`features` (a ``LinearReadout``), or None."""
        return self._classifier

    @classifier.setter
    def classifier(self, value: Any) -> None:
        warn_deprecated("setting RandomFeatureMLP.classifier", "model.set_classifier(classifier)")
        self.set_classifier(value)

    def set_classifier(self, classifier: Any) -> RandomFeatureMLP:
        """Install a fitted classifier on :meth:`features` (anything with ``coef`` of d_L rows, ``predict`` and
        ``decision_function``: a ``LinearReadout``), or remove it with None. Returns the model."""
        if classifier is not None:
            coef = getattr(classifier, "coef", None)
            if coef is None or not callable(getattr(classifier, "predict", None)):
                raise InvalidParameterError(
                    f"the classifier must be a fitted LinearReadout, got {type(classifier).__name__}"
                )
            if np.shape(coef)[0] != self.widths[-1]:
                raise InvalidParameterError(
                    f"the classifier reads {np.shape(coef)[0]} features but this model gives {self.widths[-1]}"
                )
        self._classifier = classifier
        return self

    def _trained_classifier(self) -> Any:
        if self._classifier is None:
            raise InvalidParameterError(
                "the readout is not trained: call rc.fit_readout(model, X_train, y_train) first"
            )
        return self._classifier

    def decision_function(self, X: Any) -> np.ndarray:
        """Class scores (n, K) of the fitted classifier on :meth:`features`."""
        return np.asarray(self._trained_classifier().decision_function(np.asarray(self.features(X))))

    def predict(self, X: Any) -> np.ndarray:
        """Class labels from the classifier trained by :func:`rmtcompress.fit_readout`."""
        return np.asarray(self._trained_classifier().predict(np.asarray(self.features(X))))

    def score(self, X: Any, y: Any) -> float:
        """Accuracy on (X, y)."""
        return float(np.mean(self.predict(X) == np.asarray(y)))
