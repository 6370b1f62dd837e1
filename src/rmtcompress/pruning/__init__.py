"""Trained-net compression: ℓq / PQ-index compressibility measures, masks, pruning rules, training loops and
k-level activation quantization of trained nets.
"""

from __future__ import annotations

from ._activation_quant import (
    QuantizedActivation as QuantizedActivation,
    activation_bits as activation_bits,
    quantize_activations as quantize_activations,
    runtime_memory as runtime_memory,
)
from ._pruning import (
    PRUNE_RULES as PRUNE_RULES,
    RULE_NAMES as RULE_NAMES,
    GradualMagnitudeConfig as GradualMagnitudeConfig,
    LotteryTicketConfig as LotteryTicketConfig,
    LqAdaptiveConfig as LqAdaptiveConfig,
    MagnitudeConfig as MagnitudeConfig,
    PruneConfig as PruneConfig,
    PruneResult as PruneResult,
    RuleStep as RuleStep,
    SAPConfig as SAPConfig,
    compressibility as compressibility,
    current_sparsity as current_sparsity,
    gini_index as gini_index,
    lq_norm as lq_norm,
    pq_index as pq_index,
    prune as prune,
    prune_config_type as prune_config_type,
    register_prune_rule as register_prune_rule,
    remove as remove,
)
from ._training import (
    TrainConfig as TrainConfig,
    evaluate as evaluate,
    initial_state as initial_state,
    make_mlp as make_mlp,
    train as train,
    train_iterative as train_iterative,
)

__all__ = [
    "PRUNE_RULES",
    "RULE_NAMES",
    "GradualMagnitudeConfig",
    "LotteryTicketConfig",
    "LqAdaptiveConfig",
    "MagnitudeConfig",
    "PruneConfig",
    "PruneResult",
    "QuantizedActivation",
    "RuleStep",
    "SAPConfig",
    "TrainConfig",
    "activation_bits",
    "compressibility",
    "current_sparsity",
    "evaluate",
    "gini_index",
    "initial_state",
    "lq_norm",
    "make_mlp",
    "pq_index",
    "prune",
    "prune_config_type",
    "quantize_activations",
    "register_prune_rule",
    "remove",
    "runtime_memory",
    "train",
    "train_iterative",
]
