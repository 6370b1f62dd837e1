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

import numpy as np
import torch
from torch import nn

from ._validation import check_sparsity, check_widths
from .activations import Activation, resolve_activations
from .recursions import recursion

__all__ = ["RandomFeatureMLP", "WeightDistribution", "sample_weights", "torch_generator"]


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
        raise ValueError(f"unknown weight distribution {weights!r}; valid: {valid}") from None


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


def sample_weights(
    shape: tuple[int, int],
    *,
    distribution: str | WeightDistribution = "gaussian",
    sparsity: float = 0.0,
    generator: torch.Generator,
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
        generator: the torch generator (all randomness comes from it).
        dtype: output dtype.
        student_df: ν > 2 for ``student_t``.

    Returns:
        Tensor of ``shape`` and ``dtype``.
    """
    dist = _distribution(distribution)
    eps = check_sparsity(sparsity)
    if dist in (WeightDistribution.BERNOULLI, WeightDistribution.TERNARY):
        # one uniform per entry: −s below (1−ε)/2, +s from (1+ε)/2 up, 0 in between (s = 1/√(1−ε))
        u = torch.rand(shape, generator=generator, dtype=torch.float32)
        s = 1.0 / math.sqrt(1.0 - eps)
        return ((u >= (1.0 + eps) / 2.0).to(dtype) - (u < (1.0 - eps) / 2.0).to(dtype)) * s
    if dist is WeightDistribution.GAUSSIAN:
        w = torch.randn(shape, generator=generator, dtype=dtype)
    else:
        if not student_df > 2.0:
            raise ValueError(f"student_df must be > 2 for a finite variance, got {student_df}")
        # torch has no seeded Student-t sampler: draw a NumPy seed from the torch generator (reproducible).
        seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
        t = torch.from_numpy(np.random.default_rng(seed).standard_t(student_df, size=shape))
        w = (t * math.sqrt((student_df - 2.0) / student_df)).to(dtype)
    if eps > 0.0:
        keep = torch.rand(shape, generator=generator) >= eps
        w = w * keep.to(dtype) / math.sqrt(1.0 - eps)
    return w


class RandomFeatureMLP(nn.Module):
    """The dense random-feature net of the paper: bias-free layers, centred activations, 1/√d_ℓ output scaling.

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
        in_features: int,
        widths: Sequence[int],
        activations: Sequence[str | Activation] | str | Activation,
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
        dims = check_widths([in_features, *widths])
        acts = resolve_activations(activations)
        if len(acts) != len(dims) - 1:
            raise ValueError(
                f"got {len(dims) - 1} widths but {len(acts)} activations; give one activation per layer"
            )
        self.activations: tuple[Activation, ...] = tuple(acts)
        self.widths = dims[1:]
        self.weight_distribution = _distribution(weights)
        self.sparsity = check_sparsity(sparsity)
        rec = recursion(acts, tau0)
        self.register_buffer("centers", torch.tensor(rec.centers, dtype=dtype))
        gen = torch_generator(seed)
        self.layers = nn.ModuleList()
        for d_in, d_out in itertools.pairwise(dims):
            lin = nn.Linear(d_in, d_out, bias=False, dtype=dtype)
            with torch.no_grad():
                lin.weight.copy_(
                    sample_weights(
                        (d_out, d_in), distribution=weights, sparsity=sparsity, generator=gen, dtype=dtype
                    )
                )
            lin.weight.requires_grad_(trainable_hidden)
            self.layers.append(lin)
        self.readout: nn.Linear | None = None
        if out_features is not None:
            self.readout = nn.Linear(dims[-1], int(check_widths([out_features])[0]), bias=False, dtype=dtype)
            with torch.no_grad():
                self.readout.weight.copy_(torch.randn(self.readout.weight.shape, generator=gen, dtype=dtype))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last hidden layer h_L, shape (n, d_L)."""
        h = x
        centers = self.centers
        assert isinstance(centers, torch.Tensor)
        for ell, (lin, act, width) in enumerate(zip(self.layers, self.activations, self.widths, strict=True)):
            h = (act.torch(lin(h)) - centers[ell]) / math.sqrt(width)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Readout output (n, out_features), or h_L when there is no readout."""
        h = self.features(x)
        return h if self.readout is None else self.readout(h)
