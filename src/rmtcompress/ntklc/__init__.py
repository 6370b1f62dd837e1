"""NTK-LC compression: ternary weights and quantized activations matched to the original's kernel, readouts,
baselines, per-neuron calibration and label-aware fine-tuning.
"""

from __future__ import annotations

from ._baselines import (
    BASELINES as BASELINES,
    BaselineInputs as BaselineInputs,
    build_baseline as build_baseline,
    register_baseline as register_baseline,
)
from ._calibration import (
    CalibrationConfig as CalibrationConfig,
    calibrate as calibrate,
    calibration_sample as calibration_sample,
    fit_layer as fit_layer,
    spread_quantiles as spread_quantiles,
)
from ._compress import (
    COMPRESSION_METHODS as COMPRESSION_METHODS,
    DEFAULT_LEVELS as DEFAULT_LEVELS,
    DEFAULT_METHOD as DEFAULT_METHOD,
    CompressedActivations as CompressedActivations,
    CompressedMLP as CompressedMLP,
    CompressionInputs as CompressionInputs,
    CompressionMethod as CompressionMethod,
    NTKLCConfig as NTKLCConfig,
    compress as compress,
    fit_readout as fit_readout,
    register_compression_method as register_compression_method,
    ternary_codes as ternary_codes,
)
from ._finetune import (
    FinetuneConfig as FinetuneConfig,
    TrainedLayers as TrainedLayers,
    finetune as finetune,
    train_layers as train_layers,
)
from ._memory import model_memory as model_memory
from ._model import NET_PATHS as NET_PATHS
from ._provenance import (
    Provenance as Provenance,
    ProvenanceStep as ProvenanceStep,
)
from ._readout import (
    LinearReadout as LinearReadout,
    fit_ridge_readout as fit_ridge_readout,
    fit_sgd_readout as fit_sgd_readout,
)

__all__ = [
    "BASELINES",
    "COMPRESSION_METHODS",
    "DEFAULT_LEVELS",
    "DEFAULT_METHOD",
    "NET_PATHS",
    "BaselineInputs",
    "CalibrationConfig",
    "CompressedActivations",
    "CompressedMLP",
    "CompressionInputs",
    "CompressionMethod",
    "FinetuneConfig",
    "LinearReadout",
    "NTKLCConfig",
    "Provenance",
    "ProvenanceStep",
    "TrainedLayers",
    "build_baseline",
    "calibrate",
    "calibration_sample",
    "compress",
    "finetune",
    "fit_layer",
    "fit_readout",
    "fit_ridge_readout",
    "fit_sgd_readout",
    "model_memory",
    "register_baseline",
    "register_compression_method",
    "spread_quantiles",
    "ternary_codes",
    "train_layers",
]
