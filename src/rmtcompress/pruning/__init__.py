"""Trained-net compression: ℓq / PQ-index compressibility measures, masks, pruning rules, training loops and
k-level activation quantization and weight quantization (shared codebooks, int-k, ternary) of trained nets.
"""

from __future__ import annotations

from ._activation_quant import (
    QuantizedActivation as QuantizedActivation,
    activation_bits as activation_bits,
    quantize_activations as quantize_activations,
    runtime_memory as runtime_memory,
)
from ._pruning import (
    GradualMagnitudeConfig as GradualMagnitudeConfig,
    LotteryTicketConfig as LotteryTicketConfig,
    LqAdaptiveConfig as LqAdaptiveConfig,
    MagnitudeConfig as MagnitudeConfig,
    SAPConfig as SAPConfig,
    compressibility as compressibility,
    current_sparsity as current_sparsity,
    gini_index as gini_index,
    lq_norm as lq_norm,
    model_storage_bytes as model_storage_bytes,
    pq_index as pq_index,
    prunable_layers as prunable_layers,
    prune as prune,
    remove as remove,
)
from ._training import (
    TrainConfig as TrainConfig,
    evaluate as evaluate,
    initial_state as initial_state,
    make_cnn as make_cnn,
    make_mlp as make_mlp,
    pq_trajectory_point as pq_trajectory_point,
    train as train,
    train_iterative as train_iterative,
    train_val_split as train_val_split,
)
from ._weight_quant import (
    QuantizedConv2d as QuantizedConv2d,
    QuantizedLinear as QuantizedLinear,
    TernaryWeightConfig as TernaryWeightConfig,
    UniformWeightConfig as UniformWeightConfig,
    WeightQuantConfig as WeightQuantConfig,
    WeightQuantWarning as WeightQuantWarning,
    WeightSharingConfig as WeightSharingConfig,
    quantize_weights as quantize_weights,
    quantized_layers as quantized_layers,
)

__all__ = [
    "GradualMagnitudeConfig",
    "LotteryTicketConfig",
    "LqAdaptiveConfig",
    "MagnitudeConfig",
    "QuantizedActivation",
    "QuantizedConv2d",
    "QuantizedLinear",
    "SAPConfig",
    "TernaryWeightConfig",
    "TrainConfig",
    "UniformWeightConfig",
    "WeightQuantConfig",
    "WeightQuantWarning",
    "WeightSharingConfig",
    "activation_bits",
    "compressibility",
    "current_sparsity",
    "evaluate",
    "gini_index",
    "initial_state",
    "lq_norm",
    "make_cnn",
    "make_mlp",
    "model_storage_bytes",
    "pq_index",
    "pq_trajectory_point",
    "prunable_layers",
    "prune",
    "quantize_activations",
    "quantize_weights",
    "quantized_layers",
    "remove",
    "runtime_memory",
    "train",
    "train_iterative",
    "train_val_split",
]
