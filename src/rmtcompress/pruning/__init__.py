"""Trained-net compression: ℓq / PQ-index compressibility measures, masks, pruning rules, training loops and
k-level activation quantization and weight quantization (shared codebooks, int-k, ternary) of trained nets, and their
inference form (batch norm folded, dropout dropped).

Private modules: ``_measures`` (ℓq, PQ index, Gini, the compressibility summary), ``_masks`` (weight masks and
their upkeep), ``_configs`` (one frozen config per pruning rule), ``_rules`` (the rules, their registry and
``prune``), ``_bounds`` (certified degradation bounds), ``_sparse`` (``remove`` and honest storage bytes),
``_training`` (training loops and schedules), ``_augment`` (training-time image augmentation),
``_activation_quant`` and ``_weight_quant`` (trained-net quantization), ``_ensemble`` (the mean of several nets as
one model), ``_fold`` (the inference form),
``_fast_linear`` (the measured fast inference paths of quantized linear layers), ``_fused`` (whole-net fast
inference of sparse MLPs).
"""

from __future__ import annotations

from ._activation_quant import (
    FLOAT_ACTIVATIONS as FLOAT_ACTIVATIONS,
    QuantizedActivation as QuantizedActivation,
    activation_bits as activation_bits,
    quantize_activations as quantize_activations,
    runtime_memory as runtime_memory,
)
from ._augment import (
    ImageShift as ImageShift,
    augment_for as augment_for,
    parse_augment as parse_augment,
)
from ._configs import (
    GradualMagnitudeConfig as GradualMagnitudeConfig,
    LotteryTicketConfig as LotteryTicketConfig,
    LqAdaptiveConfig as LqAdaptiveConfig,
    MagnitudeConfig as MagnitudeConfig,
    PruneConfig as PruneConfig,
    SAPConfig as SAPConfig,
)
from ._ensemble import Ensemble as Ensemble
from ._fast_linear import LINEAR_PATHS as LINEAR_PATHS
from ._fold import (
    DROPOUT_MODULES as DROPOUT_MODULES,
    fold_batchnorm as fold_batchnorm,
    inference_form as inference_form,
)
from ._fused import (
    MLP_PATHS as MLP_PATHS,
    FusedMLP as FusedMLP,
)
from ._masks import (
    current_sparsity as current_sparsity,
    prunable_layers as prunable_layers,
)
from ._measures import (
    compressibility as compressibility,
    gini_index as gini_index,
    lq_norm as lq_norm,
    pq_index as pq_index,
)
from ._rules import (
    PRUNE_RULES as PRUNE_RULES,
    RULE_NAMES as RULE_NAMES,
    PruneResult as PruneResult,
    RuleStep as RuleStep,
    prune as prune,
    prune_config_type as prune_config_type,
    register_prune_rule as register_prune_rule,
)
from ._sparse import (
    model_storage_bytes as model_storage_bytes,
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
    kernel_plan as kernel_plan,
    quantize_weights as quantize_weights,
    quantized_layers as quantized_layers,
    use_fast_kernels as use_fast_kernels,
)

__all__ = [
    "DROPOUT_MODULES",
    "FLOAT_ACTIVATIONS",
    "LINEAR_PATHS",
    "MLP_PATHS",
    "PRUNE_RULES",
    "RULE_NAMES",
    "Ensemble",
    "FusedMLP",
    "GradualMagnitudeConfig",
    "ImageShift",
    "LotteryTicketConfig",
    "LqAdaptiveConfig",
    "MagnitudeConfig",
    "PruneConfig",
    "PruneResult",
    "QuantizedActivation",
    "QuantizedConv2d",
    "QuantizedLinear",
    "RuleStep",
    "SAPConfig",
    "TernaryWeightConfig",
    "TrainConfig",
    "UniformWeightConfig",
    "WeightQuantConfig",
    "WeightQuantWarning",
    "WeightSharingConfig",
    "activation_bits",
    "augment_for",
    "compressibility",
    "current_sparsity",
    "evaluate",
    "fold_batchnorm",
    "gini_index",
    "inference_form",
    "initial_state",
    "kernel_plan",
    "lq_norm",
    "make_cnn",
    "make_mlp",
    "model_storage_bytes",
    "parse_augment",
    "pq_index",
    "pq_trajectory_point",
    "prunable_layers",
    "prune",
    "prune_config_type",
    "quantize_activations",
    "quantize_weights",
    "quantized_layers",
    "register_prune_rule",
    "remove",
    "runtime_memory",
    "train",
    "train_iterative",
    "train_val_split",
    "use_fast_kernels",
]
