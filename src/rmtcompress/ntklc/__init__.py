"""NTK-LC compression: ternary weights and quantized activations matched to the original's kernel, readouts,
baselines, per-neuron calibration and label-aware fine-tuning.
"""

from __future__ import annotations

from ._baselines import (
    BASELINES as BASELINES,
    build_baseline as build_baseline,
)
from ._calibration import (
    CalibrationConfig as CalibrationConfig,
    calibrate as calibrate,
    calibration_sample as calibration_sample,
    fit_layer as fit_layer,
)
from ._compress import (
    DEFAULT_LEVELS as DEFAULT_LEVELS,
    DEFAULT_METHOD as DEFAULT_METHOD,
    CompressedMLP as CompressedMLP,
    CompressionMethod as CompressionMethod,
    NTKLCConfig as NTKLCConfig,
    compress as compress,
    fit_readout as fit_readout,
)
from ._finetune import (
    FinetuneConfig as FinetuneConfig,
    TrainedLayers as TrainedLayers,
    finetune as finetune,
    train_layers as train_layers,
)
from ._memory import model_memory as model_memory
from ._readout import (
    LinearReadout as LinearReadout,
    fit_ridge_readout as fit_ridge_readout,
    fit_sgd_readout as fit_sgd_readout,
)

__all__ = [
    "BASELINES",
    "DEFAULT_LEVELS",
    "DEFAULT_METHOD",
    "CalibrationConfig",
    "CompressedMLP",
    "CompressionMethod",
    "FinetuneConfig",
    "LinearReadout",
    "NTKLCConfig",
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
    "train_layers",
]
