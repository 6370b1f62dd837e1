"""Activation quantizers (Lloyd–Max, uniform, moment-matched) and the memory accounting of quantized nets."""

from __future__ import annotations

# The entropy of a sparse ternary weight is computed in _utils (with the package's other entropies); it is part of
# the memory model published here.
from .._utils import ternary_entropy_bits as ternary_entropy_bits
from ._matched import (
    MatchedQuantizer as MatchedQuantizer,
    moment_matched_quantizer as moment_matched_quantizer,
)
from ._memory import (
    MemoryReport as MemoryReport,
    memory_report as memory_report,
    paper_memory_bits as paper_memory_bits,
)
from ._quantizers import (
    K_MAX as K_MAX,
    K_MIN as K_MIN,
    MAX_DATA_SAMPLES as MAX_DATA_SAMPLES,
    QUANTIZER_METHODS as QUANTIZER_METHODS,
    QUANTIZERS as QUANTIZERS,
    ActivationQuantizer as ActivationQuantizer,
    lloyd_max_data_quantizer as lloyd_max_data_quantizer,
    lloyd_max_quantizer as lloyd_max_quantizer,
    quantize_activation as quantize_activation,
    uniform_quantizer as uniform_quantizer,
)

__all__ = [
    "K_MAX",
    "K_MIN",
    "MAX_DATA_SAMPLES",
    "QUANTIZERS",
    "QUANTIZER_METHODS",
    "ActivationQuantizer",
    "MatchedQuantizer",
    "MemoryReport",
    "lloyd_max_data_quantizer",
    "lloyd_max_quantizer",
    "memory_report",
    "moment_matched_quantizer",
    "paper_memory_bits",
    "quantize_activation",
    "ternary_entropy_bits",
    "uniform_quantizer",
]
