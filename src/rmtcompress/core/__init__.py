"""Core objects every layer shares: activation functions (with their registry) and the MLP spec."""

from __future__ import annotations

from ._activations import (
    Activation as Activation,
    ActivationKind as ActivationKind,
    LinearAbsActivation as LinearAbsActivation,
    PerNeuronStep as PerNeuronStep,
    SmoothActivation as SmoothActivation,
    StepActivation as StepActivation,
    activation_names as activation_names,
    binary_heuristic as binary_heuristic,
    custom_activation as custom_activation,
    get_activation as get_activation,
    leaky_relu as leaky_relu,
    polynomial as polynomial,
    register_activation as register_activation,
    relu as relu,
    resolve_activations as resolve_activations,
    sigma_q as sigma_q,
    sigma_t as sigma_t,
    sigma_ter as sigma_ter,
    sign as sign,
)
from ._spec import (
    MLPSpec as MLPSpec,
)

__all__ = [
    "Activation",
    "ActivationKind",
    "LinearAbsActivation",
    "MLPSpec",
    "PerNeuronStep",
    "SmoothActivation",
    "StepActivation",
    "activation_names",
    "binary_heuristic",
    "custom_activation",
    "get_activation",
    "leaky_relu",
    "polynomial",
    "register_activation",
    "relu",
    "resolve_activations",
    "sigma_q",
    "sigma_t",
    "sigma_ter",
    "sign",
]
