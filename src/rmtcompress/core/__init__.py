"""Core objects every layer shares: activation functions (with their registry), the MLP spec and the stored input
transform (the preprocessing a model was trained with)."""

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
from ._transform import (
    INPUT_SCALE_TOLERANCE as INPUT_SCALE_TOLERANCE,
    INPUT_SPREAD_TOLERANCE as INPUT_SPREAD_TOLERANCE,
    SPREAD_MIN_ROWS as SPREAD_MIN_ROWS,
    InputTransform as InputTransform,
    InputTransformLayer as InputTransformLayer,
    check_input_scale as check_input_scale,
    input_scale_ratio as input_scale_ratio,
    rms_row_norm as rms_row_norm,
)

__all__ = [
    "INPUT_SCALE_TOLERANCE",
    "INPUT_SPREAD_TOLERANCE",
    "SPREAD_MIN_ROWS",
    "Activation",
    "ActivationKind",
    "InputTransform",
    "InputTransformLayer",
    "LinearAbsActivation",
    "MLPSpec",
    "PerNeuronStep",
    "SmoothActivation",
    "StepActivation",
    "activation_names",
    "binary_heuristic",
    "check_input_scale",
    "custom_activation",
    "get_activation",
    "input_scale_ratio",
    "leaky_relu",
    "polynomial",
    "register_activation",
    "relu",
    "resolve_activations",
    "rms_row_norm",
    "sigma_q",
    "sigma_t",
    "sigma_ter",
    "sign",
]
