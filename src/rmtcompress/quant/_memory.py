"""Memory accounting of fully-connected random-feature nets with a linear head (methods.md §1.14).

Architecture counted here: input dimension ``p``, hidden widths ``(d_1, ..., d_L)`` and a linear head with
``K = n_classes`` outputs, i.e. the weight matrices

    W_1 ∈ R^{d_1 × p},  W_ℓ ∈ R^{d_ℓ × d_{ℓ−1}} (ℓ = 2..L),  head ∈ R^{K × d_L}.

Notation used in every formula below::

    N_hid   = p·d_1 + Σ_{ℓ=2..L} d_{ℓ−1}·d_ℓ        (hidden weights)
    N_head  = K·d_L                                  (head weights; the head bias adds K values where stated)
    N_neur  = Σ_ℓ d_ℓ                                (neurons / activations per sample)
    H(ε)    = −ε·log2 ε − (1−ε)·log2((1−ε)/2)        (entropy of a sparse ternary weight, bits)

Three conventions are provided, all as pure functions:

* :func:`paper_memory_bits` — the NTK-LC paper's convention (Gu et al. 2022, Fig. 3/4 x-axis), with its
  ``2·d_L`` head slip corrected to ``K·d_L``;
* :func:`dense_fp32_bytes` — a dense float32 net of the same widths (weights only);
* :func:`memory_report` — an honest count at the entropy bound of sparse ternary weights, plus the two above.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .._utils import check_int, check_sparsity, check_widths, ternary_entropy_bits
from ..errors import InvalidParameterError

__all__ = [
    "MemoryReport",
    "dense_fp32_bytes",
    "hidden_weight_counts",
    "layer_constants",
    "memory_report",
    "paper_memory_bits",
]

_QUANTIZED_MAX_BITS = 8
"""Activations with at most this many bits are treated as quantized (levels and thresholds stored)."""


def hidden_weight_counts(p: int, widths: Iterable[int]) -> tuple[int, ...]:
    """Number of weights of each hidden layer.

    Args:
        p: Input dimension (positive integer).
        widths: Hidden widths ``(d_1, ..., d_L)``, positive integers.

    Returns:
        ``(p·d_1, d_1·d_2, ..., d_{L−1}·d_L)``, a tuple of length ``L``.

    Raises:
        ValueError: If ``p`` is not a positive integer or a width is not a positive integer.
    """
    p = check_int(p, "p")
    ws = check_widths(widths)
    fan_in = (p, *ws[:-1])
    return tuple(a * b for a, b in zip(fan_in, ws, strict=True))


def paper_memory_bits(
    p: int, widths: Iterable[int], n_classes: int, *, sparsity: float | None = None
) -> float:
    """Memory in bits under the NTK-LC paper's convention (methods.md §1.14).

    Dense (``sparsity=None``)::

        bits = 32·(N_hid + K·d_L) + 32·N_neur

    Compressed (``sparsity=ε``)::

        bits = (1−ε)·N_hid + N_neur + 32·K·d_L

    i.e. 32 bits per weight and per neuron for the dense net; 1 bit per non-zero hidden weight (zeros free, index
    overhead ignored) and 1 bit per neuron for the compressed net. Deviations from the research code, on purpose:
    the head is counted as ``K·d_L`` (the code wrote ``2·d_L`` for 10 classes), and in the compressed net the head
    stays float (32 bits per weight) because it is trained in floating point — the paper counted it at 1 bit per
    non-zero like the hidden weights. Per-layer scale constants are ignored, as in the paper; the head bias is not
    counted.

    Args:
        p: Input dimension.
        widths: Hidden widths ``(d_1, ..., d_L)``.
        n_classes: Number of head outputs ``K``.
        sparsity: ``None`` for the dense original, or ε ∈ [0, 1) for the sparse ternary compressed net.

    Returns:
        Memory in bits (a float: ``(1−ε)·N_hid`` need not be an integer).

    Raises:
        ValueError: On a non-positive ``p``, width or ``n_classes``, or ε outside [0, 1).
    """
    counts = hidden_weight_counts(p, widths)
    ws = check_widths(widths)
    k = check_int(n_classes, "n_classes")
    n_hid = sum(counts)
    n_head = k * ws[-1]
    n_neur = sum(ws)
    if sparsity is None:
        return float(32 * (n_hid + n_head) + 32 * n_neur)
    eps = check_sparsity(sparsity)
    return float((1.0 - eps) * n_hid + n_neur + 32 * n_head)


def dense_fp32_bytes(p: int, widths: Iterable[int], n_classes: int) -> int:
    """Bytes of the weights of a dense float32 net with the same widths.

    ``bytes = 4·(N_hid + K·d_L)`` — weights only (no biases, no activations), e.g. for ``p = 784``,
    widths ``(2000, 2000, 1000)`` and 10 classes: ``4·(784·2000 + 2000·2000 + 2000·1000 + 1000·10)``.

    Args:
        p: Input dimension.
        widths: Hidden widths ``(d_1, ..., d_L)``.
        n_classes: Number of head outputs ``K``.

    Returns:
        Number of bytes (int).

    Raises:
        ValueError: On a non-positive ``p``, width or ``n_classes``.
    """
    counts = hidden_weight_counts(p, widths)
    ws = check_widths(widths)
    k = check_int(n_classes, "n_classes")
    return 4 * (sum(counts) + k * ws[-1])


def layer_constants(activation_bits: int) -> int:
    """Number of scalar constants stored per hidden layer.

    One weight scale (1/√(1−ε), or the 1/√d output scale folded with it) and one centring constant ``c_ℓ``; for
    quantized activations (``activation_bits <= 8``) also the ``2^b − 1`` non-zero output levels and up to
    ``2·(2^b − 1)`` thresholds (a non-monotone step function such as σ_T(t) = a·(1_{t<s1} + 1_{t>s2}) has two
    thresholds per non-zero level). For ``b = 1`` (σ_T: a, s1, s2) this gives 5, for ``b = 2`` 11 (an upper bound for
    σ_Q: b1, b2, r1..r4). Wider activations are treated as unquantized (floating point): 2 constants.

    Args:
        activation_bits: Bits per activation value, ``>= 1``.

    Returns:
        The number of constants per hidden layer.

    Raises:
        ValueError: If ``activation_bits`` is not an integer ``>= 1``.
    """
    b = check_int(activation_bits, "activation_bits")
    if b > _QUANTIZED_MAX_BITS:
        return 2
    nonzero_levels = 2**b - 1
    return 2 + nonzero_levels + 2 * nonzero_levels


def _activation_bits(activation_bits: int | Sequence[int], n_layers: int) -> tuple[int, ...]:
    """Broadcast ``activation_bits`` (int or per-layer sequence) to one value per hidden layer."""
    if isinstance(activation_bits, Sequence) and not isinstance(activation_bits, str | bytes):
        if len(activation_bits) != n_layers:
            raise InvalidParameterError(
                f"activation_bits has {len(activation_bits)} entries but there are {n_layers} hidden layers"
            )
        return tuple(check_int(b, f"activation_bits[{i}]") for i, b in enumerate(activation_bits))
    return (check_int(activation_bits, "activation_bits"),) * n_layers


@dataclass(frozen=True)
class MemoryReport:
    """Memory of a sparse-ternary random-feature net with a float linear head.

    Byte counts are floats because expected counts such as ``(1−ε)·N_hid`` or ``N_hid·H(ε)/8`` need not be whole.
    ``accounting`` names the convention of :attr:`total_bytes`: ``"entropy_bound"`` (ideal entropy coding of
    i.i.d. sparse ternary weights; achievable to within a few percent with arithmetic coding).

    Attributes:
        p: Input dimension.
        widths: Hidden widths ``(d_1, ..., d_L)``.
        n_classes: Head outputs ``K``.
        sparsity: ε.
        activation_bits: Bits per activation value of each hidden layer ``(b_1, ..., b_L)``.
        head_bits: Bits per head parameter.
        scale_bits: Bits per per-layer constant.
        hidden_weights: ``N_hid``.
        nonzero_hidden_weights: Expected non-zeros ``(1−ε)·N_hid``.
        head_weights: ``K·d_L``.
        head_biases: ``K``.
        neurons: ``N_neur = Σ d_ℓ``.
        bits_per_hidden_weight: ``H(ε)``.
        hidden_weight_bytes: ``N_hid·H(ε)/8``.
        head_bytes: ``(K·d_L + K)·head_bits/8``.
        constants_per_layer: ``C(b_ℓ)`` of each hidden layer, see :func:`layer_constants`.
        constant_bytes: ``Σ_ℓ C(b_ℓ)·scale_bits/8``.
        total_bytes: ``hidden_weight_bytes + head_bytes + constant_bytes``.
        accounting: ``"entropy_bound"``.
        packed_2bit_bytes: Same net with every hidden weight packed in 2 bits (fixed length, no entropy coding).
        paper_bits: :func:`paper_memory_bits` with ``sparsity=ε``.
        paper_dense_bits: :func:`paper_memory_bits` with ``sparsity=None``.
        paper_compression_ratio: ``paper_dense_bits / paper_bits``.
        dense_fp32_bytes: :func:`dense_fp32_bytes` of the same widths.
        dense_reference_bytes: The dense reference the ratio is taken against.
        compression_ratio: ``dense_reference_bytes / total_bytes``.
        activation_bytes_per_sample: ``Σ_ℓ d_ℓ·b_ℓ/8`` (run-time activations of one sample).
        activation_bytes_per_sample_fp32: ``N_neur·4``.
    """

    p: int
    widths: tuple[int, ...]
    n_classes: int
    sparsity: float
    activation_bits: tuple[int, ...]
    head_bits: int
    scale_bits: int
    hidden_weights: int
    nonzero_hidden_weights: float
    head_weights: int
    head_biases: int
    neurons: int
    bits_per_hidden_weight: float
    hidden_weight_bytes: float
    head_bytes: float
    constants_per_layer: tuple[int, ...]
    constant_bytes: float
    total_bytes: float
    accounting: str
    packed_2bit_bytes: float
    paper_bits: float
    paper_dense_bits: float
    paper_compression_ratio: float
    dense_fp32_bytes: int
    dense_reference_bytes: float
    compression_ratio: float
    activation_bytes_per_sample: float
    activation_bytes_per_sample_fp32: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of all fields (``widths`` as a list)."""
        out = dataclasses.asdict(self)
        out["widths"] = list(self.widths)
        out["activation_bits"] = list(self.activation_bits)
        out["constants_per_layer"] = list(self.constants_per_layer)
        return out


def memory_report(
    p: int,
    widths: Iterable[int],
    n_classes: int,
    *,
    sparsity: float,
    activation_bits: int | Sequence[int],
    head_bits: int = 32,
    scale_bits: int = 32,
    dense_reference_bytes: float | None = None,
) -> MemoryReport:
    """Honest memory of a sparse ternary net at the entropy bound, next to the paper's convention.

    ``total_bytes`` (``accounting = "entropy_bound"``)::

        N_hid·H(ε)/8 + (K·d_L + K)·head_bits/8 + Σ_ℓ C(b_ℓ)·scale_bits/8

    where C(b) = :func:`layer_constants` (weight scale, centring constant, activation levels and thresholds).
    Unlike the paper, the head (weights and bias) is counted at ``head_bits`` per value and the per-layer constants
    are counted. Run-time activation memory per sample is ``Σ_ℓ d_ℓ·b_ℓ/8`` bytes (fp32: ``4·N_neur``).

    Args:
        p: Input dimension.
        widths: Hidden widths ``(d_1, ..., d_L)``.
        n_classes: Head outputs ``K``.
        sparsity: ε ∈ [0, 1) of the ternary hidden weights.
        activation_bits: Bits per activation value (1 for σ_T, 2 for σ_Q, 32 for float activations): one int for
            all hidden layers, or one per hidden layer (e.g. ``(1, 1, 2)`` for σ_T, σ_T, σ_Q).
        head_bits: Bits per head parameter (default 32, float32).
        scale_bits: Bits per per-layer constant (default 32).
        dense_reference_bytes: Size of the dense model to compare against (e.g. an original net of other widths);
            default: :func:`dense_fp32_bytes` of the same widths.

    Returns:
        A :class:`MemoryReport`.

    Raises:
        ValueError: On a non-positive ``p``, width, ``n_classes``, ``head_bits`` or ``scale_bits``, ε outside
            [0, 1), an ``activation_bits`` entry ``< 1`` (or a sequence of the wrong length), or a non-positive /
            non-finite ``dense_reference_bytes``.
    """
    ws = check_widths(widths)
    counts = hidden_weight_counts(p, ws)
    k = check_int(n_classes, "n_classes")
    eps = check_sparsity(sparsity)
    a_bits = _activation_bits(activation_bits, len(ws))
    h_bits = check_int(head_bits, "head_bits")
    s_bits = check_int(scale_bits, "scale_bits")

    n_hid = sum(counts)
    n_head = k * ws[-1]
    n_neur = sum(ws)
    h = ternary_entropy_bits(eps)
    hidden_bytes = n_hid * h / 8.0
    head_bytes = (n_head + k) * h_bits / 8.0
    c_per_layer = tuple(layer_constants(b) for b in a_bits)
    const_bytes = sum(c_per_layer) * s_bits / 8.0
    total = hidden_bytes + head_bytes + const_bytes
    dense = dense_fp32_bytes(p, ws, k)
    if dense_reference_bytes is None:
        reference = float(dense)
    else:
        if isinstance(dense_reference_bytes, bool) or not isinstance(dense_reference_bytes, numbers.Real):
            raise InvalidParameterError(
                f"dense_reference_bytes must be a positive number; got {dense_reference_bytes!r}"
            )
        reference = float(dense_reference_bytes)
        if not (math.isfinite(reference) and reference > 0):
            raise InvalidParameterError(
                f"dense_reference_bytes must be finite and > 0; got {dense_reference_bytes!r}"
            )
    paper = paper_memory_bits(p, ws, k, sparsity=eps)
    paper_dense = paper_memory_bits(p, ws, k, sparsity=None)
    return MemoryReport(
        p=int(p),
        widths=ws,
        n_classes=k,
        sparsity=eps,
        activation_bits=a_bits,
        head_bits=h_bits,
        scale_bits=s_bits,
        hidden_weights=n_hid,
        nonzero_hidden_weights=(1.0 - eps) * n_hid,
        head_weights=n_head,
        head_biases=k,
        neurons=n_neur,
        bits_per_hidden_weight=h,
        hidden_weight_bytes=hidden_bytes,
        head_bytes=head_bytes,
        constants_per_layer=c_per_layer,
        constant_bytes=const_bytes,
        total_bytes=total,
        accounting="entropy_bound",
        packed_2bit_bytes=n_hid * 2 / 8.0 + head_bytes + const_bytes,
        paper_bits=paper,
        paper_dense_bits=paper_dense,
        paper_compression_ratio=paper_dense / paper,
        dense_fp32_bytes=dense,
        dense_reference_bytes=reference,
        compression_ratio=reference / total,
        activation_bytes_per_sample=sum(d * b for d, b in zip(ws, a_bits, strict=True)) / 8.0,
        activation_bytes_per_sample_fp32=n_neur * 4.0,
    )
