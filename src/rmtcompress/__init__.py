"""rmtcompress — compress wide fully-connected nets with random-matrix-theory guarantees, and measure it.

Public façade (``import rmtcompress as rc``); X has shape (n, p) with rows as samples, y int labels (n,), kernels are
(n, n) float64 NumPy arrays.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .activations import (
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
    sigma_q as sigma_q,
    sigma_t as sigma_t,
    sigma_ter as sigma_ter,
    sign as sign,
)
from .baselines import BASELINES as BASELINES, build_baseline as build_baseline
from .calibration import CalibrationConfig as CalibrationConfig, calibrate as calibrate
from .compress import (
    CompressedMLP as CompressedMLP,
    CompressionMethod as CompressionMethod,
    NTKLCConfig as NTKLCConfig,
    compress as compress,
    fit_readout as fit_readout,
)
from .datasets import (
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
from .empirical_ck import ck_empirical as ck_empirical
from .empirical_ntk import NTKMethod as NTKMethod, ntk_empirical as ntk_empirical
from .equivalents import (
    ClassStatistics as ClassStatistics,
    ck_equivalent as ck_equivalent,
    class_statistics as class_statistics,
    estimate_tau0 as estimate_tau0,
    ntk_equivalent as ntk_equivalent,
)
from .finetune import FinetuneConfig as FinetuneConfig, finetune as finetune
from .gaussian_moments import GaussianMoments as GaussianMoments, gaussian_moments as gaussian_moments
from .limits import ck_limit as ck_limit, ntk_limit as ntk_limit
from .matching import (
    MatchReport as MatchReport,
    MatchWarning as MatchWarning,
    match_activations as match_activations,
)
from .memory import (
    MemoryReport as MemoryReport,
    memory_report as memory_report,
    paper_memory_bits as paper_memory_bits,
    ternary_entropy_bits as ternary_entropy_bits,
)
from .models import (
    RandomFeatureMLP as RandomFeatureMLP,
    WeightDistribution as WeightDistribution,
    sample_weights as sample_weights,
)
from .pruning import (
    GradualMagnitudeConfig as GradualMagnitudeConfig,
    LotteryTicketConfig as LotteryTicketConfig,
    LqAdaptiveConfig as LqAdaptiveConfig,
    MagnitudeConfig as MagnitudeConfig,
    SAPConfig as SAPConfig,
    compressibility as compressibility,
    gini_index as gini_index,
    lq_norm as lq_norm,
    pq_index as pq_index,
    prune as prune,
    remove as remove,
)
from .quantizers import (
    ActivationQuantizer as ActivationQuantizer,
    lloyd_max_data_quantizer as lloyd_max_data_quantizer,
    lloyd_max_quantizer as lloyd_max_quantizer,
    quantize_activation as quantize_activation,
    uniform_quantizer as uniform_quantizer,
)
from .readout import (
    LinearReadout as LinearReadout,
    fit_ridge_readout as fit_ridge_readout,
    fit_sgd_readout as fit_sgd_readout,
)
from .recursions import Recursion as Recursion, recursion as recursion
from .spec import MLPSpec as MLPSpec
from .spectra import (
    SpectralComparison as SpectralComparison,
    compare_kernels as compare_kernels,
    plot_comparison as plot_comparison,
)
from .storage import FormatError as FormatError, load as load, save as save
from .trained_quantization import (
    QuantizedActivation as QuantizedActivation,
    activation_bits as activation_bits,
    quantize_activations as quantize_activations,
    runtime_memory as runtime_memory,
)
from .trf import LowPrecisionRFF as LowPrecisionRFF, TernaryRandomFeatures as TernaryRandomFeatures
