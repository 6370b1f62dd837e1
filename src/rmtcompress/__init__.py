"""rmtcompress — compress wide fully-connected nets with random-matrix-theory guarantees, and measure it.

Public façade (``import rmtcompress as rc``); X has shape (n, p) with rows as samples, y int labels (n,), kernels are
(n, n) float64 NumPy arrays.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .activations import (
    Activation as Activation,
)
from .activations import (
    ActivationKind as ActivationKind,
)
from .activations import (
    LinearAbsActivation as LinearAbsActivation,
)
from .activations import (
    SmoothActivation as SmoothActivation,
)
from .activations import (
    StepActivation as StepActivation,
)
from .activations import (
    activation_names as activation_names,
)
from .activations import (
    binary_heuristic as binary_heuristic,
)
from .activations import (
    custom_activation as custom_activation,
)
from .activations import (
    get_activation as get_activation,
)
from .activations import (
    leaky_relu as leaky_relu,
)
from .activations import (
    polynomial as polynomial,
)
from .activations import (
    register_activation as register_activation,
)
from .activations import (
    relu as relu,
)
from .activations import (
    sigma_q as sigma_q,
)
from .activations import (
    sigma_t as sigma_t,
)
from .activations import (
    sigma_ter as sigma_ter,
)
from .activations import (
    sign as sign,
)
from .baselines import BASELINES as BASELINES
from .baselines import build_baseline as build_baseline
from .compress import (
    CompressedMLP as CompressedMLP,
)
from .compress import (
    CompressionMethod as CompressionMethod,
)
from .compress import (
    NTKLCConfig as NTKLCConfig,
)
from .compress import (
    compress as compress,
)
from .compress import (
    fit_readout as fit_readout,
)
from .datasets import (
    PaperNormalizer as PaperNormalizer,
)
from .datasets import (
    load_array_file as load_array_file,
)
from .datasets import (
    load_cifar10_batches as load_cifar10_batches,
)
from .datasets import (
    load_digits_data as load_digits_data,
)
from .datasets import (
    load_fashion_mnist as load_fashion_mnist,
)
from .datasets import (
    load_idx_dataset as load_idx_dataset,
)
from .datasets import (
    load_mnist_subset as load_mnist_subset,
)
from .datasets import (
    make_gmm as make_gmm,
)
from .datasets import (
    select_classes as select_classes,
)
from .empirical_ck import ck_empirical as ck_empirical
from .empirical_ntk import NTKMethod as NTKMethod
from .empirical_ntk import ntk_empirical as ntk_empirical
from .equivalents import (
    ClassStatistics as ClassStatistics,
)
from .equivalents import (
    ck_equivalent as ck_equivalent,
)
from .equivalents import (
    class_statistics as class_statistics,
)
from .equivalents import (
    estimate_tau0 as estimate_tau0,
)
from .equivalents import (
    ntk_equivalent as ntk_equivalent,
)
from .gaussian_moments import GaussianMoments as GaussianMoments
from .gaussian_moments import gaussian_moments as gaussian_moments
from .limits import ck_limit as ck_limit
from .limits import ntk_limit as ntk_limit
from .matching import MatchReport as MatchReport
from .matching import MatchWarning as MatchWarning
from .matching import match_activations as match_activations
from .memory import (
    MemoryReport as MemoryReport,
)
from .memory import (
    memory_report as memory_report,
)
from .memory import (
    paper_memory_bits as paper_memory_bits,
)
from .memory import (
    ternary_entropy_bits as ternary_entropy_bits,
)
from .models import (
    RandomFeatureMLP as RandomFeatureMLP,
)
from .models import (
    WeightDistribution as WeightDistribution,
)
from .models import (
    sample_weights as sample_weights,
)
from .quantizers import (
    ActivationQuantizer as ActivationQuantizer,
)
from .quantizers import (
    lloyd_max_data_quantizer as lloyd_max_data_quantizer,
)
from .quantizers import (
    lloyd_max_quantizer as lloyd_max_quantizer,
)
from .quantizers import (
    quantize_activation as quantize_activation,
)
from .quantizers import (
    uniform_quantizer as uniform_quantizer,
)
from .readout import LinearReadout as LinearReadout
from .readout import fit_ridge_readout as fit_ridge_readout
from .readout import fit_sgd_readout as fit_sgd_readout
from .recursions import Recursion as Recursion
from .recursions import recursion as recursion
from .spec import MLPSpec as MLPSpec
from .spectra import (
    SpectralComparison as SpectralComparison,
)
from .spectra import (
    compare_kernels as compare_kernels,
)
from .spectra import (
    plot_comparison as plot_comparison,
)
from .storage import FormatError as FormatError
from .storage import load as load
from .storage import save as save
