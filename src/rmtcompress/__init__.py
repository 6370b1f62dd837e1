"""rmtcompress — compress neural networks with random-matrix-theory guarantees where they hold, and measure it.

Public façade (``import rmtcompress as rc``): every name below lives in one layer subpackage (see
``docs/architecture.md``) and is imported on first use (PEP 562), so ``import rmtcompress`` stays light and
``rmtcompress --help`` does not load torch, numba or scikit-learn. X has shape (n, p) with rows as samples, y int
labels (n,), kernels are (n, n) float64 NumPy arrays.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._utils import __version__ as __version__
from .errors import (
    FormatError as FormatError,
    InvalidParameterError as InvalidParameterError,
    RmtcompressError as RmtcompressError,
    RmtcompressWarning as RmtcompressWarning,
)

# name -> layer subpackage that defines it, grouped bottom-up by layer
_LAZY: dict[str, str] = {}

# core: activations and net specs
_LAZY.update(
    dict.fromkeys(
        (
            "Activation",
            "ActivationKind",
            "LinearAbsActivation",
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
            "sigma_q",
            "sigma_t",
            "sigma_ter",
            "sign",
            "MLPSpec",
        ),
        "core",
    )
)
# theory: Gaussian moments, recursions, CK/NTK equivalents and limits, matching, spectra
_LAZY.update(
    dict.fromkeys(
        (
            "ClassStatistics",
            "ck_equivalent",
            "class_statistics",
            "estimate_tau0",
            "ntk_equivalent",
            "ck_limit",
            "ntk_limit",
            "MatchReport",
            "MatchWarning",
            "match_activations",
            "GaussianMoments",
            "gaussian_moments",
            "Recursion",
            "recursion",
            "SpectralComparison",
            "compare_kernels",
            "plot_comparison",
        ),
        "theory",
    )
)
# quant: activation quantizers and memory accounting
_LAZY.update(
    dict.fromkeys(
        (
            "MemoryReport",
            "memory_report",
            "paper_memory_bits",
            "ternary_entropy_bits",
            "ActivationQuantizer",
            "lloyd_max_data_quantizer",
            "lloyd_max_quantizer",
            "quantize_activation",
            "uniform_quantizer",
        ),
        "quant",
    )
)
# kernels: packed ternary CPU kernels
_LAZY.update(dict.fromkeys((), "kernels"))
# empirical: random-feature nets and sampled CK/NTK
_LAZY.update(
    dict.fromkeys(
        (
            "ck_empirical",
            "RandomFeatureMLP",
            "WeightDistribution",
            "sample_weights",
            "NTKMethod",
            "ntk_empirical",
        ),
        "empirical",
    )
)
# ntklc: NTK-LC compression, readouts, calibration, fine-tuning
_LAZY.update(
    dict.fromkeys(
        (
            "BASELINES",
            "build_baseline",
            "CalibrationConfig",
            "calibrate",
            "CompressedMLP",
            "CompressionMethod",
            "NTKLCConfig",
            "compress",
            "fit_readout",
            "FinetuneConfig",
            "finetune",
            "LinearReadout",
            "fit_ridge_readout",
            "fit_sgd_readout",
            "register_baseline",
            "register_compression_method",
        ),
        "ntklc",
    )
)
# rf: ternary and low-precision random features (scikit-learn transformers)
_LAZY.update(dict.fromkeys(("LowPrecisionRFF", "TernaryRandomFeatures"), "rf"))
# pruning: compressibility measures, pruning rules, training, trained-net quantization
_LAZY.update(
    dict.fromkeys(
        (
            "QuantizedActivation",
            "activation_bits",
            "quantize_activations",
            "runtime_memory",
            "GradualMagnitudeConfig",
            "LotteryTicketConfig",
            "LqAdaptiveConfig",
            "MagnitudeConfig",
            "SAPConfig",
            "compressibility",
            "gini_index",
            "lq_norm",
            "pq_index",
            "prune",
            "register_prune_rule",
            "remove",
            "QuantizedConv2d",
            "QuantizedLinear",
            "TernaryWeightConfig",
            "UniformWeightConfig",
            "WeightSharingConfig",
            "quantize_weights",
        ),
        "pruning",
    )
)
# io: packed checksummed files
_LAZY.update(dict.fromkeys(("load", "save", "model_file_bytes", "load_user_model"), "io"))
# shrink: a trained model to a byte budget (rc.shrink is the function; the subpackage module is callable too)
_LAZY.update(
    dict.fromkeys(("shrink", "ShrinkResult", "SearchSpace", "FrontierPoint", "parse_bytes"), "shrink")
)
# lab: datasets, experiments, sweeps, reports
_LAZY.update(
    dict.fromkeys(
        (
            "PaperNormalizer",
            "load_array_file",
            "load_cifar10_batches",
            "load_digits_data",
            "load_fashion_mnist",
            "load_idx_dataset",
            "load_mnist_subset",
            "make_gmm",
            "select_classes",
        ),
        "lab",
    )
)

SUBPACKAGES = (
    "core",
    "theory",
    "quant",
    "kernels",
    "empirical",
    "ntklc",
    "rf",
    "pruning",
    "io",
    "shrink",
    "lab",
)

__all__ = [
    "FormatError",
    "InvalidParameterError",
    "RmtcompressError",
    "RmtcompressWarning",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    """Import a façade name's layer (or a layer itself) on first use and cache it in the module namespace."""
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name in SUBPACKAGES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *SUBPACKAGES})


if TYPE_CHECKING:  # static view of the lazy names, for type checkers and IDEs
    from .core import (
        Activation as Activation,
        ActivationKind as ActivationKind,
        LinearAbsActivation as LinearAbsActivation,
        MLPSpec as MLPSpec,
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
        sigma_q as sigma_q,
        sigma_t as sigma_t,
        sigma_ter as sigma_ter,
        sign as sign,
    )
    from .empirical import (
        NTKMethod as NTKMethod,
        RandomFeatureMLP as RandomFeatureMLP,
        WeightDistribution as WeightDistribution,
        ck_empirical as ck_empirical,
        ntk_empirical as ntk_empirical,
        sample_weights as sample_weights,
    )
    from .io import (
        load as load,
        load_user_model as load_user_model,
        model_file_bytes as model_file_bytes,
        save as save,
    )
    from .lab import (
        PaperNormalizer as PaperNormalizer,
        load_array_file as load_array_file,
        load_cifar10_batches as load_cifar10_batches,
        load_digits_data as load_digits_data,
        load_fashion_mnist as load_fashion_mnist,
        load_idx_dataset as load_idx_dataset,
        load_mnist_subset as load_mnist_subset,
        make_gmm as make_gmm,
        select_classes as select_classes,
    )
    from .ntklc import (
        BASELINES as BASELINES,
        CalibrationConfig as CalibrationConfig,
        CompressedMLP as CompressedMLP,
        CompressionMethod as CompressionMethod,
        FinetuneConfig as FinetuneConfig,
        LinearReadout as LinearReadout,
        NTKLCConfig as NTKLCConfig,
        build_baseline as build_baseline,
        calibrate as calibrate,
        compress as compress,
        finetune as finetune,
        fit_readout as fit_readout,
        fit_ridge_readout as fit_ridge_readout,
        fit_sgd_readout as fit_sgd_readout,
        register_baseline as register_baseline,
        register_compression_method as register_compression_method,
    )
    from .pruning import (
        GradualMagnitudeConfig as GradualMagnitudeConfig,
        LotteryTicketConfig as LotteryTicketConfig,
        LqAdaptiveConfig as LqAdaptiveConfig,
        MagnitudeConfig as MagnitudeConfig,
        QuantizedActivation as QuantizedActivation,
        QuantizedConv2d as QuantizedConv2d,
        QuantizedLinear as QuantizedLinear,
        SAPConfig as SAPConfig,
        TernaryWeightConfig as TernaryWeightConfig,
        UniformWeightConfig as UniformWeightConfig,
        WeightSharingConfig as WeightSharingConfig,
        activation_bits as activation_bits,
        compressibility as compressibility,
        gini_index as gini_index,
        lq_norm as lq_norm,
        pq_index as pq_index,
        prune as prune,
        quantize_activations as quantize_activations,
        quantize_weights as quantize_weights,
        register_prune_rule as register_prune_rule,
        remove as remove,
        runtime_memory as runtime_memory,
    )
    from .quant import (
        ActivationQuantizer as ActivationQuantizer,
        MemoryReport as MemoryReport,
        lloyd_max_data_quantizer as lloyd_max_data_quantizer,
        lloyd_max_quantizer as lloyd_max_quantizer,
        memory_report as memory_report,
        paper_memory_bits as paper_memory_bits,
        quantize_activation as quantize_activation,
        ternary_entropy_bits as ternary_entropy_bits,
        uniform_quantizer as uniform_quantizer,
    )
    from .rf import (
        LowPrecisionRFF as LowPrecisionRFF,
        TernaryRandomFeatures as TernaryRandomFeatures,
    )
    from .shrink import (
        FrontierPoint as FrontierPoint,
        SearchSpace as SearchSpace,
        ShrinkResult as ShrinkResult,
        parse_bytes as parse_bytes,
        shrink as shrink,
    )
    from .theory import (
        ClassStatistics as ClassStatistics,
        GaussianMoments as GaussianMoments,
        MatchReport as MatchReport,
        MatchWarning as MatchWarning,
        Recursion as Recursion,
        SpectralComparison as SpectralComparison,
        ck_equivalent as ck_equivalent,
        ck_limit as ck_limit,
        class_statistics as class_statistics,
        compare_kernels as compare_kernels,
        estimate_tau0 as estimate_tau0,
        gaussian_moments as gaussian_moments,
        match_activations as match_activations,
        ntk_equivalent as ntk_equivalent,
        ntk_limit as ntk_limit,
        plot_comparison as plot_comparison,
        recursion as recursion,
    )
