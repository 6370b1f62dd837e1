"""Baselines of the NTK-LC paper's Fig. 3/4 (methods.md §1.11, §1.15), built as :class:`CompressedMLP` s.

* ``dense``: Gaussian weights, original activations (the red curve) — a float-weight CompressedMLP equal in
  distribution to :class:`~rmtcompress.models.RandomFeatureMLP`.
* ``heuristic-sparsification``: Gaussian weights with a uniform random fraction ε zeroed and **no** rescaling
  (purple; "breaks Assumption 1").
* ``binary-heuristic``: sparse ternary weights with σ(t) = 1{t < −1} + 1{t > 1} on all layers or only the first two
  (green; the paper's Fig. 4 applies it to the first two layers only).
* ``magnitude-pruning``: one-shot magnitude pruning (keep the largest 1 − ε fraction of |w| per layer) of the
  untrained random Gaussian weights, no rescaling — what the paper's orange curve did (not Gale et al.'s gradual
  pruning of a trained net).

Centring constants use each layer's actual pre-activation scale τ·√(mean W²) so the features stay centred.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

import torch

from .._utils import Registry, check_sparsity
from ..core import Activation, MLPSpec, binary_heuristic
from ..empirical import sample_weights, torch_generator
from ..theory import gaussian_moments
from ._compress import CompressedMLP, ternary_codes

__all__ = ["BASELINES", "BaselineInputs", "build_baseline", "register_baseline"]


@dataclass(frozen=True)
class BaselineInputs:
    """What a baseline builder receives from :func:`build_baseline`.

    Attributes:
        name: the baseline's registered name (recorded as the model's method).
        spec: the architecture.
        sparsity: the validated ε.
        generator: the seeded torch generator every weight is drawn from, in layer order.
        tau0: the input scale τ_0.
    """

    name: str
    spec: MLPSpec
    sparsity: float
    generator: torch.Generator
    tau0: float

    @property
    def shapes(self) -> list[tuple[int, int]]:
        """(d_ℓ, d_{ℓ−1}) of every layer."""
        dims = [self.spec.input_dim, *self.spec.widths]
        return [(dims[i + 1], dims[i]) for i in range(self.spec.depth)]


BaselineBuilder: TypeAlias = Callable[[BaselineInputs], CompressedMLP]

BASELINES: Registry[str, BaselineBuilder] = Registry("baseline")
"""Baseline name → builder (:func:`register_baseline`); ``name in BASELINES`` and iteration give the names."""


def register_baseline(name: str) -> Callable[[BaselineBuilder], BaselineBuilder]:
    """Decorator: register a baseline builder under ``name`` (:func:`build_baseline` dispatches to it; the
    experiments and sweeps accept ``name`` as a method). The builder takes :class:`BaselineInputs` and returns a
    :class:`CompressedMLP` with an untrained readout."""
    return BASELINES.register(name)


def _float_net(
    spec: MLPSpec,
    weights: list[torch.Tensor],
    acts: list[Activation],
    tau0: float,
    method: str,
    sparsity: float,
) -> CompressedMLP:
    centers, running, tau = [], [], tau0
    for w, act in zip(weights, acts, strict=True):
        t_in = tau * math.sqrt(float(torch.mean(w.double() ** 2)))
        m = gaussian_moments(act, t_in)
        centers.append(m.mean)
        running.append(t_in)
        tau = math.sqrt(m.var)
    return CompressedMLP(
        spec, acts, centers, weights=weights, method=method, sparsity=sparsity, tau0=tau0, running_tau=running
    )


@register_baseline("dense")
def _dense(b: BaselineInputs) -> CompressedMLP:
    ws = [sample_weights(s, distribution="gaussian", generator=b.generator) for s in b.shapes]
    return _float_net(b.spec, ws, b.spec.resolved_activations, b.tau0, b.name, 0.0)


@register_baseline("heuristic-sparsification")
def _heuristic_sparsification(b: BaselineInputs) -> CompressedMLP:
    ws = []
    for s in b.shapes:
        w = sample_weights(s, distribution="gaussian", generator=b.generator)
        keep = torch.rand(s, generator=b.generator) >= b.sparsity
        ws.append(w * keep)
    return _float_net(b.spec, ws, b.spec.resolved_activations, b.tau0, b.name, b.sparsity)


def _binary_heuristic_net(b: BaselineInputs, n_bin: int) -> CompressedMLP:
    """Ternary weights (same law as the compressed net), binary activation on the first ``n_bin`` layers."""
    spec, eps, tau0 = b.spec, b.sparsity, b.tau0
    codes = [ternary_codes(s, eps, b.generator, exact=False) for s in b.shapes]
    scale = 1.0 / math.sqrt(1.0 - eps)
    acts = spec.resolved_activations
    new_acts: list[Activation] = [binary_heuristic() if i < n_bin else a for i, a in enumerate(acts)]
    centers, running, tau = [], [], tau0
    for act in new_acts:
        m = gaussian_moments(act, tau)
        centers.append(m.mean)
        running.append(tau)
        tau = math.sqrt(m.var)
    bits = [1.0 if i < n_bin else 32.0 for i in range(spec.depth)]
    return CompressedMLP(
        spec,
        new_acts,
        centers,
        codes=codes,
        scales=[scale] * spec.depth,
        method=b.name,
        sparsity=eps,
        activation_bits=bits,
        tau0=tau0,
        running_tau=running,
    )


@register_baseline("binary-heuristic")
def _binary_heuristic(b: BaselineInputs) -> CompressedMLP:
    return _binary_heuristic_net(b, b.spec.depth)


@register_baseline("binary-heuristic-first2")
def _binary_heuristic_first2(b: BaselineInputs) -> CompressedMLP:
    return _binary_heuristic_net(b, min(2, b.spec.depth))


@register_baseline("magnitude-pruning")
def _magnitude_pruning(b: BaselineInputs) -> CompressedMLP:
    ws = []
    for s in b.shapes:
        w = sample_weights(s, distribution="gaussian", generator=b.generator)
        k = round(b.sparsity * w.numel())
        if k > 0:
            thr = torch.kthvalue(w.abs().flatten(), k).values
            w = w * (w.abs() > thr)
        ws.append(w)
    return _float_net(b.spec, ws, b.spec.resolved_activations, b.tau0, b.name, b.sparsity)


def build_baseline(
    name: str, spec: MLPSpec, *, sparsity: float = 0.9, seed: int = 0, tau0: float = 1.0
) -> CompressedMLP:
    """Build the baseline registered as ``name`` (:data:`BASELINES`) for ``spec`` (weights drawn from ``seed``)."""
    builder = BASELINES.get(name)
    eps = check_sparsity(sparsity)
    return builder(BaselineInputs(name, spec, eps, torch_generator(seed), tau0))
