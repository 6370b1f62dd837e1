"""Compact files for pruned + weight-quantized trained nets (and their k-level activations).

The model is an ``nn.Sequential`` of :class:`~rmtcompress.pruning.QuantizedLinear` /
:class:`~rmtcompress.pruning.QuantizedConv2d` (from :func:`rmtcompress.pruning.quantize_weights`), plain
``nn.Linear`` / ``nn.Conv2d`` (stored as pruned float layers), :class:`~rmtcompress.pruning.QuantizedActivation`
(from :func:`rmtcompress.pruning.quantize_activations`) and parameter-free modules (``ReLU``, ``LeakyReLU``,
``Identity``, ``Tanh``, ``Sigmoid``, ``GELU``, ``Flatten``, ``Unflatten``, ``MaxPool2d``), optionally led by an
:class:`~rmtcompress.core.InputTransformLayer` (the preprocessing the net was trained with). It is stored in its
inference form (:func:`rmtcompress.pruning.inference_form`): dropout as ``Identity``, an ``nn.BatchNorm1d`` right
after a float ``nn.Linear`` folded into it.

The file is a binary record (no JSON: the header of a 10 kB net must not cost a kilobyte), specified field by field
in ``docs/format.md`` ("Quantized trained nets")::

    "RCQW" | version u8 | flags u8 | n_modules varint | module records | [names] | SHA-256 of all previous bytes

Per weight layer: its shape (and convolution settings), the scheme (codebook / symmetric / float), the number of
kept weights, the float32 table (codebook entries or one scale per group), the positions and codes, the bias
(float32, or float16 on request). Positions and codes are stored either

* ``"context"`` — the context-mixing binary arithmetic coder of :mod:`rmtcompress.io._context_coder`: each weight's
  "kept?" decision and code bits, with probabilities from its neighbours in the row (the previous input and the one
  ``lag`` inputs back, chosen by the encoder and stored), the counts its input column and its unit kept so far, and
  the code bits' own history; on trained layers it spends well below the order-0 entropy below (the measured
  savings are in docs/format.md); or
* ``"entropy"`` — one static rANS stream over all ``n`` weights with the alphabet ``{0 (pruned), 1 … K (codes)}``:
  its cost is ``n·H(codes incl. 0)`` = the mask at its entropy + the kept codes at their entropy (the chain rule),
  plus a frequency table of K 16-bit entries and a few bytes; or
* ``"bitmask"`` — one bit per weight for the positions, then a rANS stream of the kept weights' codes;

``"auto"`` (default) picks the smallest per layer. Float layers store the mask the same way (alphabet {0, 1})
and their kept values as float32. Loading checks the SHA-256 first and every field against its bounds: a truncated
or corrupted file raises :class:`~rmtcompress.errors.FormatError`, never a wrong model.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from .._utils import atomic_write_bytes
from ..core import InputTransformLayer
from ..errors import FormatError, InvalidParameterError, MissingFileError
from ..pruning import Ensemble, QuantizedActivation, QuantizedConv2d, QuantizedLinear, inference_form
from ._container import (
    BinaryReader,
    BinaryWriter,
    rans_decode_prefix,
    rans_encode,
    rans_frequencies,
    read_transform,
    sha256_bytes,
    write_transform,
)
from ._context_coder import choose_lag, context_decode, context_encode

__all__ = [
    "QUANTIZED_FORMAT_VERSION",
    "QUANTIZED_MAGIC",
    "QUANTIZED_READ_VERSIONS",
    "is_quantized_file",
    "is_quantized_model",
    "load_quantized",
    "quantized_file_bytes",
    "quantized_file_report",
    "quantized_from_bytes",
    "quantized_to_bytes",
    "save_quantized",
]

QUANTIZED_MAGIC = b"RCQW"
QUANTIZED_FORMAT_VERSION = 3
"""Version written for one net (2: the LeakyReLU and input-transform records; 3: context-coded positions); an
:class:`~rmtcompress.pruning.Ensemble` is written as version 4 (a member count, then each member's modules)."""
QUANTIZED_READ_VERSIONS = (1, 2, 3, 4)
"""Versions read (a version-1 file is a version-2 file without those records, a version-2 file a version-3 file
without context-coded positions, a version-3 file one net of a version-4 file)."""
_ENSEMBLE_VERSION = 4
_MAX_MEMBERS = 64
POSITIONS = ("auto", "context", "entropy", "bitmask")
_CONTEXT_MODE = 3  # the stream mode of context-coded positions + codes (modes 0-2: _stream's)
BIASES = ("float32", "float16")
_DIGEST = 32
_M = 1 << 16

# module kinds (one byte each)
_LINEAR, _CONV = 1, 2
_ACTS: dict[int, type[nn.Module]] = {10: nn.ReLU, 11: nn.Identity, 12: nn.Tanh, 13: nn.Sigmoid, 14: nn.GELU}
_LEAKY = 15
_FLATTEN, _UNFLATTEN, _MAXPOOL, _QACT = 20, 21, 22, 30
_INPUT = 40
_V2_KINDS = (_LEAKY, _INPUT)
_SCHEMES = ("codebook", "symmetric", "float")
_METHODS = ("", "sharing", "uniform", "ternary", "ttq", "float")
_PAD_MODES = ("explicit", "same", "valid")
_MAX_DIM = 1 << 31
_NAMES_FLAG = 0x80


# ============================================================================================ symbol streams


def _stream(symbols: NDArray[np.int64], alphabet: int) -> tuple[int, bytes]:
    """(mode, bytes) of a symbol stream: mode 0 empty, 1 one constant symbol (its varint), 2 the rANS model
    (``alphabet − 1`` uint16 frequencies; the last one is ``2^16 −`` their sum) followed by the rANS stream, whose
    end is implied by the symbol count."""
    w = BinaryWriter()
    if symbols.size == 0:
        return 0, b""
    counts = np.bincount(symbols, minlength=alphabet)
    present = np.flatnonzero(counts)
    if present.size == 1:
        w.uvarint(int(present[0]))
        return 1, w.getvalue()
    freqs = rans_frequencies(counts.tolist())
    w.u16(freqs[:-1])
    w.raw(rans_encode(symbols, freqs))
    return 2, w.getvalue()


def _read_stream(r: BinaryReader, mode: int, n: int, alphabet: int) -> NDArray[np.int64]:
    if mode == 0:
        if n:
            raise FormatError(f"an empty symbol stream for {n} symbols")
        return np.zeros(0, dtype=np.int64)
    if mode == 1:
        s = r.uvarint(alphabet - 1)
        return np.full(n, s, dtype=np.int64)
    if mode != 2:
        raise FormatError(f"unknown symbol-stream mode {mode}")
    head = r.u16(alphabet - 1).astype(np.int64)
    last = _M - int(head.sum())
    if last < 0:
        raise FormatError("rANS frequency table sums beyond 2^16")
    symbols, used = rans_decode_prefix(r.rest(), n, [*head.tolist(), last])
    r.skip(used)
    return symbols


def _class_map(scheme: str, table: NDArray[np.float32] | None, n_values: int, rows: int) -> NDArray[np.int64]:
    """``(rows, n_values + 1)`` context class of every symbol in every row: 0 pruned, 1 negative, 2 non-negative."""
    out = np.zeros((rows, n_values + 1), dtype=np.int64)
    if scheme == "float" or table is None:
        out[:, 1:] = 2
    elif scheme == "symmetric":  # codes 1..M are +j·s, M+1..2M are −j·s
        out[:, 1 : n_values // 2 + 1] = 2
        out[:, n_values // 2 + 1 :] = 1
    else:
        values = np.asarray(table, dtype=np.float32).reshape(-1, n_values)
        out[:, 1:] = np.where(values < 0, 1, 2)  # one row of values per group: 1 (a layer) or ``rows``
    return out


def _context_payload(codes: NDArray[np.int64], alphabet: int, cls_map: NDArray[np.int64]) -> bytes:
    """``lag`` (varint) + the context-coded stream of a layer's ``(rows, cols)`` symbols."""
    w = BinaryWriter()
    lag = choose_lag(codes != 0)
    w.uvarint(lag)
    w.raw(context_encode(codes, alphabet, lag, cls_map))
    return w.getvalue()


def _read_context(
    r: BinaryReader, rows: int, cols: int, alphabet: int, cls_map: NDArray[np.int64]
) -> NDArray[np.int64]:
    lag = r.uvarint(max(0, cols - 1))
    codes, used = context_decode(r.rest(), rows, cols, alphabet, lag, cls_map)
    r.skip(used)
    return codes.reshape(-1)


# ============================================================================================ writing


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def is_quantized_model(model: Any) -> bool:
    """True for an ``nn.Sequential`` holding a weight-quantized layer or a k-level activation quantizer, and for an
    :class:`~rmtcompress.pruning.Ensemble` (of ``nn.Sequential`` nets: this format is the one that stores them)."""
    if isinstance(model, Ensemble):
        return True
    return isinstance(model, nn.Sequential) and any(
        isinstance(m, QuantizedLinear | QuantizedConv2d | QuantizedActivation) for m in model.modules()
    )


@dataclass
class _LayerStats:
    """Bytes of one weight layer's parts (for :func:`quantized_file_report`)."""

    name: str
    kind: str
    shape: tuple[int, ...]
    scheme: str
    method: str
    bits: int
    scope: str
    nnz: int
    positions: str
    header_bytes: int = 0
    table_bytes: int = 0
    code_bytes: int = 0
    value_bytes: int = 0
    bias_bytes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _layer_arrays(
    name: str, m: nn.Module
) -> tuple[str, NDArray[np.int64], NDArray[np.float32], int, NDArray[np.float32] | None, Any]:
    """(scheme, codes/mask symbols, table or kept values, n_values, bias, module) of a weight layer."""
    if isinstance(m, QuantizedLinear | QuantizedConv2d):
        codes = m.codes.detach().cpu().numpy().astype(np.int64)
        table = m.codebook.detach().cpu().to(torch.float32).numpy()
        if not np.isfinite(table).all():
            raise InvalidParameterError(f"layer {name!r} has a NaN or inf codebook: refusing to store it")
        scheme = m.scheme
        n_values = m.n_values
    else:
        assert isinstance(m, nn.Linear | nn.Conv2d)
        w = m.weight.detach().cpu().to(torch.float32).numpy()
        mask = w != 0
        buf = getattr(m, "weight_mask", None)
        if isinstance(buf, torch.Tensor):
            mask &= buf.detach().cpu().numpy().astype(bool).reshape(w.shape)
        if not np.isfinite(w[mask]).all():
            raise InvalidParameterError(f"layer {name!r} holds NaN or inf weights: refusing to store them")
        codes = mask.astype(np.int64)
        table = w[mask].astype(np.float32)
        scheme, n_values = "float", 1
    bias = None
    b_t = m.bias
    if isinstance(b_t, torch.Tensor):
        bias = b_t.detach().cpu().to(torch.float32).numpy().copy()
        if not np.isfinite(bias).all():
            raise InvalidParameterError(f"layer {name!r} has a NaN or inf bias: refusing to store it")
    return scheme, codes, table, n_values, bias, m


def _write_weight_layer(w: BinaryWriter, name: str, m: nn.Module, positions: str, biases: str) -> _LayerStats:
    start = len(w)
    scheme, codes, table, n_values, bias, _ = _layer_arrays(name, m)
    conv = isinstance(m, nn.Conv2d | QuantizedConv2d)
    shape = tuple(int(v) for v in codes.shape)
    flat = codes.reshape(-1)
    n = flat.size
    nnz = int(np.count_nonzero(flat))
    method = "float" if scheme == "float" else str(getattr(m, "method", ""))
    if method not in _METHODS:
        method = ""
    scope = "channel" if scheme != "float" and table.shape[0] != 1 else "layer"
    bits = 32 if scheme == "float" else int(getattr(m, "bits", 8))
    # candidate encodings of positions + codes
    joint_mode, joint = _stream(flat, n_values + 1)
    split = np.packbits(flat != 0).tobytes()
    split_mode = 0
    if scheme != "float":
        split_mode, codes_part = _stream(flat[flat != 0] - 1, n_values)
        split += codes_part
    context = b""
    if positions in ("auto", "context") and n:
        rows = shape[0]
        cls_map = _class_map(scheme, None if scheme == "float" else table, n_values, rows)
        context = _context_payload(flat.reshape(rows, -1), n_values + 1, cls_map)
    choice = positions
    if positions == "auto":
        sizes = {"context": len(context) if n else math.inf, "entropy": len(joint), "bitmask": len(split)}
        choice = min(("entropy", "bitmask", "context"), key=lambda k: sizes[k])  # ties: the older encodings
    mode, payload = {
        "entropy": (joint_mode, joint),
        "bitmask": (split_mode, split),
        "context": (_CONTEXT_MODE, context),
    }[choice]
    w.u8(_CONV if conv else _LINEAR)
    for v in shape:
        w.uvarint(v)
    if conv:
        assert isinstance(m, nn.Conv2d | QuantizedConv2d)
        for v in _pair(m.stride):
            w.uvarint(v)
        pad = m.padding
        if isinstance(pad, str):
            w.u8(_PAD_MODES.index(pad))
        else:
            w.u8(0)
            for v in _pair(pad):
                w.uvarint(v)
        for v in _pair(m.dilation):
            w.uvarint(v)
        w.uvarint(int(m.groups))
    flags = (
        (1 if bias is not None else 0)
        | (2 if biases == "float16" and bias is not None else 0)
        | (4 if choice == "bitmask" else 0)
        | (8 if scope == "channel" else 0)
        | (_SCHEMES.index(scheme) << 4)
        | (mode << 6)
    )
    w.u8(flags)
    if not 1 <= bits <= 8 and scheme != "float":
        raise InvalidParameterError(f"layer {name!r}: bits must lie in [1, 8]; got {bits}")
    w.u8((0 if scheme == "float" else bits - 1) | (_METHODS.index(method) << 3))
    if scheme == "codebook":
        w.uvarint(n_values)
    elif scheme == "symmetric":
        w.uvarint(n_values // 2)
    header = len(w) - start
    t0 = len(w)
    if scheme != "float":
        w.f32(table)
    table_bytes = len(w) - t0
    w.raw(payload)
    code_bytes = len(payload)
    v0 = len(w)
    if scheme == "float":
        w.f32(table)
    value_bytes = len(w) - v0
    b0 = len(w)
    if bias is not None:
        if biases == "float16":
            if np.abs(bias).max(initial=0.0) > np.finfo(np.float16).max:
                raise InvalidParameterError(
                    f"layer {name!r} has biases beyond the float16 range: use float32"
                )
            w.f16(bias)
        else:
            w.f32(bias)
    return _LayerStats(
        name=name,
        kind="conv2d" if conv else "linear",
        shape=shape,
        scheme=scheme,
        method=method,
        bits=bits,
        scope=scope,
        nnz=nnz,
        positions=choice,
        header_bytes=header,
        table_bytes=table_bytes,
        code_bytes=code_bytes,
        value_bytes=value_bytes,
        bias_bytes=len(w) - b0,
        extra={"n": n},
    )


def _write_module(
    w: BinaryWriter, name: str, m: nn.Module, positions: str, biases: str
) -> _LayerStats | None:
    if isinstance(m, nn.Linear | nn.Conv2d | QuantizedLinear | QuantizedConv2d):
        if isinstance(m, nn.Conv2d) and m.padding_mode != "zeros":
            raise InvalidParameterError(
                f"layer {name!r}: only padding_mode='zeros' convolutions can be stored"
            )
        return _write_weight_layer(w, name, m, positions, biases)
    if isinstance(m, QuantizedActivation):
        w.u8(_QACT)
        bp = m.breakpoints.detach().cpu().numpy()
        w.uvarint(bp.size)
        w.f32(bp)
        w.f32(m.levels.detach().cpu().numpy())
        w.uvarint(int(m.k))
        w.u8(1 if m.straight_through else 0)
        w.f32([float(m.ste_low), float(m.ste_high)])
        return None
    if type(m) is nn.LeakyReLU:
        w.u8(_LEAKY)
        w.f64([float(m.negative_slope)])
        return None
    for code, cls in _ACTS.items():
        if type(m) is cls:
            if isinstance(m, nn.GELU) and m.approximate != "none":
                raise InvalidParameterError(f"layer {name!r}: only GELU(approximate='none') can be stored")
            w.u8(code)
            return None
    if type(m) is nn.Flatten:
        w.u8(_FLATTEN)
        w.svarint(m.start_dim)
        w.svarint(m.end_dim)
        return None
    if type(m) is nn.Unflatten:
        w.u8(_UNFLATTEN)
        w.svarint(int(m.dim))
        sizes = [int(v) for v in m.unflattened_size]
        w.uvarint(len(sizes))
        for v in sizes:
            w.uvarint(v)
        return None
    if type(m) is nn.MaxPool2d:
        if m.return_indices:
            raise InvalidParameterError(f"layer {name!r}: MaxPool2d with return_indices cannot be stored")
        w.u8(_MAXPOOL)
        for attr in ("kernel_size", "stride", "padding", "dilation"):
            for v in _pair(getattr(m, attr)):
                w.uvarint(v)
        w.u8(1 if m.ceil_mode else 0)
        return None
    raise InvalidParameterError(
        f"layer {name!r} is a {type(m).__name__}: quantized-net files store QuantizedLinear, QuantizedConv2d, "
        "nn.Linear, nn.Conv2d, QuantizedActivation, nn.ReLU, nn.LeakyReLU, nn.Identity, nn.Tanh, nn.Sigmoid, "
        "nn.GELU, nn.Flatten, nn.Unflatten, nn.MaxPool2d, dropout layers (stored as nn.Identity), an "
        "nn.BatchNorm1d right after a float nn.Linear (folded into it) and a first InputTransformLayer"
    )


def _member_children(model: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    """The checked children of one stored ``nn.Sequential`` in their inference form."""
    what = f"ensemble member {prefix.rstrip('.')!r}" if prefix else "the model"
    if not isinstance(model, nn.Sequential):
        raise InvalidParameterError(
            f"quantized-net files store an nn.Sequential (or an Ensemble of them); {what} is a "
            f"{type(model).__name__}"
        )
    kids = list(model.named_children())
    for i, (name, m) in enumerate(kids):
        if isinstance(m, nn.BatchNorm1d) and not (i and type(kids[i - 1][1]) is nn.Linear):
            raise InvalidParameterError(
                f"layer {prefix + name!r} is a BatchNorm1d after a "
                f"{type(kids[i - 1][1]).__name__ if i else 'nothing'}: only an nn.BatchNorm1d right after a float "
                "nn.Linear is stored (folded into it); rc.quantize_weights folds it before quantizing"
            )
    children = list(inference_form(model).named_children())
    if not any(isinstance(m, nn.Linear | nn.Conv2d | QuantizedLinear | QuantizedConv2d) for _, m in children):
        raise InvalidParameterError(f"{what} has no weight layer to store")
    return children


def _encode(model: nn.Module, positions: str, biases: str) -> tuple[bytes, list[_LayerStats], int]:
    if positions not in POSITIONS:
        raise InvalidParameterError(f"positions must be one of {', '.join(POSITIONS)}; got {positions!r}")
    if biases not in BIASES:
        raise InvalidParameterError(f"biases must be one of {', '.join(BIASES)}; got {biases!r}")
    ensemble = isinstance(model, Ensemble)
    members: list[nn.Module] = list(model.members) if isinstance(model, Ensemble) else [model]
    if len(members) > _MAX_MEMBERS:
        raise InvalidParameterError(
            f"an ensemble file holds at most {_MAX_MEMBERS} members; got {len(members)}"
        )
    prefixes = [f"members.{i}." for i in range(len(members))] if ensemble else [""]
    kids = [_member_children(m, p) for m, p in zip(members, prefixes, strict=True)]
    names_default = all(name == str(i) for children in kids for i, (name, _) in enumerate(children))
    w = BinaryWriter()
    w.raw(QUANTIZED_MAGIC)
    # a single net keeps version 3 (every reader of version 3 reads it); ensembles need version 4
    version = _ENSEMBLE_VERSION if ensemble else QUANTIZED_FORMAT_VERSION
    w.u8(version | (0 if names_default else _NAMES_FLAG))
    if ensemble:
        w.uvarint(len(members))
    stats: list[_LayerStats] = []
    for children, prefix in zip(kids, prefixes, strict=True):
        w.uvarint(len(children))
        for i, (name, m) in enumerate(children):
            if isinstance(m, InputTransformLayer):
                if i:
                    raise InvalidParameterError(
                        f"layer {prefix + name!r}: an InputTransformLayer must be the first module of the "
                        "nn.Sequential"
                    )
                w.u8(_INPUT)
                write_transform(w, m.transform)
                continue
            st = _write_module(w, prefix + name, m, positions, biases)
            if st is not None:
                stats.append(st)
        if not names_default:
            for name, _ in children:
                raw = name.encode("utf-8")
                w.uvarint(len(raw))
                w.raw(raw)
    body = w.getvalue()
    return body + sha256_bytes(body), stats, len(body)


def quantized_to_bytes(model: nn.Module, *, positions: str = "auto", biases: str = "float32") -> bytes:
    """The bytes of the quantized-net file of ``model``.

    Args:
        model: An ``nn.Sequential`` of the modules listed in the module docstring.
        positions: ``"auto"`` (per layer the smallest), ``"context"``, ``"entropy"`` or ``"bitmask"``.
        biases: ``"float32"`` (exact) or ``"float16"`` (lossy: the loaded biases are rounded to float16).

    Raises:
        InvalidParameterError: Not an ``nn.Sequential``, an unsupported module (named), no weight layer, NaN / inf
            weights, codebooks or biases, or an unknown option.
    """
    return _encode(model, positions, biases)[0]


def quantized_file_bytes(model: nn.Module, *, positions: str = "auto", biases: str = "float32") -> int:
    """Exact size in bytes of :func:`quantized_to_bytes` (encoded in memory, nothing written)."""
    return len(quantized_to_bytes(model, positions=positions, biases=biases))


def save_quantized(
    model: nn.Module, path: str | os.PathLike[str], *, positions: str = "auto", biases: str = "float32"
) -> None:
    """Write the quantized-net file atomically (temporary name, fsync, rename); nothing is written on error."""
    atomic_write_bytes(path, quantized_to_bytes(model, positions=positions, biases=biases), parents=False)


# ============================================================================================ reading


def is_quantized_file(data: bytes) -> bool:
    """True when ``data`` starts with the quantized-net magic."""
    return bytes(data[: len(QUANTIZED_MAGIC)]) == QUANTIZED_MAGIC


def _check_body(data: bytes) -> int:
    if not is_quantized_file(data):
        raise FormatError(
            f"not a quantized-net file: wrong magic {bytes(data[:4])!r} (expected {QUANTIZED_MAGIC!r})"
        )
    if len(data) < len(QUANTIZED_MAGIC) + 2 + _DIGEST:
        raise FormatError(f"truncated quantized-net file: only {len(data)} bytes")
    end = len(data) - _DIGEST
    if sha256_bytes(memoryview(data)[:end]) != bytes(data[end:]):
        raise FormatError("SHA-256 mismatch: the quantized-net file is truncated or corrupted")
    version = data[len(QUANTIZED_MAGIC)] & ~_NAMES_FLAG
    if version not in QUANTIZED_READ_VERSIONS:
        raise FormatError(
            f"unsupported quantized-net format version {version}; this library reads versions "
            f"{', '.join(map(str, QUANTIZED_READ_VERSIONS))}"
        )
    return end


def _read_weight_layer(
    r: BinaryReader, kind: int, stats: list[_LayerStats], name: str, version: int
) -> nn.Module:
    start = r.pos
    ndim = 2 if kind == _LINEAR else 4
    shape = tuple(r.uvarint(_MAX_DIM) for _ in range(ndim))
    if min(shape) < 1:
        raise FormatError(f"layer {name!r} has shape {list(shape)}")
    conv_kw: dict[str, Any] = {}
    if kind == _CONV:
        conv_kw["stride"] = (r.uvarint(_MAX_DIM), r.uvarint(_MAX_DIM))
        mode = r.u8()
        if mode >= len(_PAD_MODES):
            raise FormatError(f"layer {name!r}: unknown padding mode {mode}")
        conv_kw["padding"] = (r.uvarint(_MAX_DIM), r.uvarint(_MAX_DIM)) if mode == 0 else _PAD_MODES[mode]
        conv_kw["dilation"] = (r.uvarint(_MAX_DIM), r.uvarint(_MAX_DIM))
        conv_kw["groups"] = r.uvarint(_MAX_DIM)
        if conv_kw["groups"] < 1 or min(*conv_kw["stride"], *conv_kw["dilation"]) < 1:
            raise FormatError(f"layer {name!r}: invalid convolution settings {conv_kw}")
    flags = r.u8()
    has_bias, bias16, bitmask, channel = bool(flags & 1), bool(flags & 2), bool(flags & 4), bool(flags & 8)
    scheme_i, mode = (flags >> 4) & 3, flags >> 6
    if scheme_i >= len(_SCHEMES):
        raise FormatError(f"layer {name!r}: unknown scheme {scheme_i}")
    scheme = _SCHEMES[scheme_i]
    packed = r.u8()
    bits, method_i = (packed & 7) + 1, packed >> 3
    if method_i >= len(_METHODS):
        raise FormatError(f"layer {name!r}: unknown method {method_i}")
    n_values, levels = 1, None
    if scheme == "codebook":
        n_values = r.uvarint(1 << 15)
    elif scheme == "symmetric":
        levels = r.uvarint(1 << 14)
        n_values = 2 * levels
    else:
        bits = 32
    if n_values < 1:
        raise FormatError(f"layer {name!r}: empty table")
    n = int(np.prod(shape))
    header = r.pos - start
    groups = shape[0] if channel else 1
    t0 = r.pos
    table = None
    if scheme != "float":
        table = r.f32(groups * (n_values if scheme == "codebook" else 1))
        if not np.isfinite(table).all():
            raise FormatError(f"layer {name!r}: non-finite table values")
    table_bytes = r.pos - t0
    c0 = r.pos
    if bitmask:
        mask = np.unpackbits(r.u8s((n + 7) // 8), count=n).astype(bool)
        nnz = int(mask.sum())
        codes = mask.astype(np.int64)
        if scheme != "float":
            codes[mask] = _read_stream(r, mode, nnz, n_values) + 1
        elif mode:
            raise FormatError(f"layer {name!r}: a float layer with a code stream")
    elif mode == _CONTEXT_MODE:
        if version < 3:
            raise FormatError(
                f"layer {name!r}: context-coded positions do not exist in format version {version}"
            )
        codes = _read_context(
            r, shape[0], n // shape[0], n_values + 1, _class_map(scheme, table, n_values, shape[0])
        )
        nnz = int(np.count_nonzero(codes))
    else:
        codes = _read_stream(r, mode, n, n_values + 1)
        nnz = int(np.count_nonzero(codes))
    code_bytes = r.pos - c0
    v0 = r.pos
    values = r.f32(nnz) if scheme == "float" else None
    value_bytes = r.pos - v0
    b0 = r.pos
    bias = None
    if has_bias:
        bias = (r.f16(shape[0]).astype(np.float32) if bias16 else r.f32(shape[0])).copy()
        if not np.isfinite(bias).all():
            raise FormatError(f"layer {name!r}: non-finite bias")
    elif bias16:
        raise FormatError(f"layer {name!r}: float16 flag without a bias")
    stats.append(
        _LayerStats(
            name=name,
            kind="linear" if kind == _LINEAR else "conv2d",
            shape=shape,
            scheme=scheme,
            method=_METHODS[method_i],
            bits=bits,
            scope="channel" if channel else "layer",
            nnz=nnz,
            positions="bitmask" if bitmask else "context" if mode == _CONTEXT_MODE else "entropy",
            header_bytes=header,
            table_bytes=table_bytes,
            code_bytes=code_bytes,
            value_bytes=value_bytes,
            bias_bytes=r.pos - b0,
            extra={"n": n, "bias_dtype": "float16" if bias16 else "float32", "codes": codes},
        )
    )
    if scheme == "float":
        assert values is not None
        wt = np.zeros(n, dtype=np.float32)
        wt[codes != 0] = values
        mod: nn.Module
        if kind == _LINEAR:
            mod = nn.Linear(shape[1], shape[0], bias=has_bias)
        else:
            mod = nn.Conv2d(
                shape[1] * conv_kw["groups"], shape[0], (shape[2], shape[3]), bias=has_bias, **conv_kw
            )
        with torch.no_grad():
            mod.weight.copy_(torch.from_numpy(wt.reshape(shape)))
            if bias is not None:
                assert mod.bias is not None
                mod.bias.copy_(torch.from_numpy(bias))
        return mod
    assert table is not None
    book = table.reshape(groups, -1)
    kw: dict[str, Any] = {"scheme": scheme, "bits": bits, "levels": levels, "method": _METHODS[method_i]}
    c = torch.from_numpy(codes.reshape(shape).astype(np.int16))
    b = None if bias is None else torch.from_numpy(bias)
    try:
        if kind == _LINEAR:
            return QuantizedLinear(c, torch.from_numpy(book), b, **kw)
        return QuantizedConv2d(c, torch.from_numpy(book), b, **conv_kw, **kw)
    except InvalidParameterError as exc:
        raise FormatError(f"layer {name!r}: {exc}") from exc


def _read_module(r: BinaryReader, stats: list[_LayerStats], name: str, version: int) -> nn.Module:
    kind = r.u8()
    if kind in _V2_KINDS and version < 2:
        raise FormatError(f"module kind {kind} does not exist in format version {version}")
    if kind == _INPUT:
        # its own index in its net decides (an ensemble member's names carry a "m." prefix)
        if name.rsplit(".", 1)[-1] != "0":
            raise FormatError("an input-transform record must be the first module")
        return InputTransformLayer(read_transform(r))
    if kind == _LEAKY:
        slope = float(r.f64(1)[0])
        if not math.isfinite(slope):
            raise FormatError(f"module {name!r}: non-finite LeakyReLU slope")
        return nn.LeakyReLU(slope)
    if kind in (_LINEAR, _CONV):
        return _read_weight_layer(r, kind, stats, name, version)
    if kind in _ACTS:
        return _ACTS[kind]()
    if kind == _FLATTEN:
        return nn.Flatten(r.svarint(), r.svarint())
    if kind == _UNFLATTEN:
        dim = r.svarint()
        sizes = tuple(r.uvarint(_MAX_DIM) for _ in range(r.uvarint(16)))
        return nn.Unflatten(dim, sizes)
    if kind == _MAXPOOL:
        vals = [(r.uvarint(_MAX_DIM), r.uvarint(_MAX_DIM)) for _ in range(4)]
        ceil = r.u8()
        return nn.MaxPool2d(vals[0], vals[1], vals[2], vals[3], ceil_mode=bool(ceil))
    if kind == _QACT:
        m = r.uvarint(1 << 16)
        bp = r.f32(m)
        lv = r.f32(m + 1)
        k = r.uvarint(1 << 16)
        ste = r.u8()
        lo, hi = r.f32(2)
        try:
            return QuantizedActivation(
                torch.from_numpy(bp),
                torch.from_numpy(lv),
                straight_through=bool(ste),
                ste_range=(float(lo), float(hi)),
                k=k,
            )
        except (InvalidParameterError, ValueError) as exc:
            raise FormatError(f"module {name!r}: invalid k-level activation: {exc}") from exc
    raise FormatError(f"unknown module kind {kind} in the quantized-net file")


def _decode_member(
    r: BinaryReader, stats: list[_LayerStats], version: int, named: bool, prefix: str
) -> nn.Sequential:
    where = f" in {prefix.rstrip('.')}" if prefix else ""
    count = r.uvarint(1 << 16)
    if count < 1:
        raise FormatError(f"the quantized-net file holds no module{where}")
    first = len(stats)
    modules = [_read_module(r, stats, prefix + str(i), version) for i in range(count)]
    names = [str(i) for i in range(count)]
    if named:
        names = []
        for _ in range(count):
            try:
                names.append(r.raw(r.uvarint(1 << 12)).decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise FormatError(f"a module name is not UTF-8: {exc}") from exc
        if len(set(names)) != count or any(not s or "." in s for s in names):
            raise FormatError(f"invalid module names {names!r}")
        for st, i in zip(stats[first:], [i for i, m in enumerate(modules) if _is_weight(m)], strict=True):
            st.name = prefix + names[i]
    if len(stats) == first:
        raise FormatError(f"the quantized-net file holds no weight layer{where}")
    net = nn.Sequential()
    for name, mod in zip(names, modules, strict=True):
        net.add_module(name, mod)
    return net.eval()


def _decode(data: bytes) -> tuple[nn.Module, list[_LayerStats], int]:
    end = _check_body(data)
    named = bool(data[len(QUANTIZED_MAGIC)] & _NAMES_FLAG)
    r = BinaryReader(data, len(QUANTIZED_MAGIC) + 1, end)
    stats: list[_LayerStats] = []
    version = data[len(QUANTIZED_MAGIC)] & ~_NAMES_FLAG
    if version >= _ENSEMBLE_VERSION:
        n = r.uvarint(_MAX_MEMBERS)
        if n < 1:
            raise FormatError("the ensemble file holds no member")
        model: nn.Module = Ensemble(
            [_decode_member(r, stats, version, named, f"members.{i}.") for i in range(n)]
        ).eval()
    else:
        model = _decode_member(r, stats, version, named, "")
    if not r.at_end():
        raise FormatError(f"{r.end - r.pos} unexpected trailing bytes before the checksum")
    return model, stats, end


def _is_weight(m: nn.Module) -> bool:
    return isinstance(m, nn.Linear | nn.Conv2d | QuantizedLinear | QuantizedConv2d)


def quantized_from_bytes(data: bytes) -> nn.Module:
    """Rebuild the ``nn.Sequential`` (or :class:`~rmtcompress.pruning.Ensemble`) of a quantized-net file
    (evaluation mode).

    Raises:
        FormatError: Wrong magic or version, checksum mismatch (truncation, corruption), or inconsistent fields.
    """
    try:
        return _decode(data)[0]
    except FormatError:
        raise
    except (ValueError, TypeError, IndexError, OverflowError, RuntimeError) as exc:
        raise FormatError(f"inconsistent quantized-net file: {type(exc).__name__}: {exc}") from exc


def load_quantized(path: str | os.PathLike[str]) -> nn.Module:
    """Load a file written by :func:`save_quantized`.

    Raises:
        MissingFileError: If ``path`` does not exist.
        FormatError: See :func:`quantized_from_bytes`.
    """
    p = Path(path)
    if not p.exists():
        raise MissingFileError(f"no such model file: {p}")
    return quantized_from_bytes(p.read_bytes())


def _entropy_bytes(counts: NDArray[np.int64]) -> float:
    c = counts[counts > 0].astype(np.float64)
    n = c.sum()
    return float(-(c * np.log2(c / n)).sum() / 8.0) if n else 0.0


def quantized_file_report(
    path: str | os.PathLike[str] | None = None, *, data: bytes | None = None
) -> dict[str, Any]:
    """Per weight layer of a quantized-net file: shape, scheme, bits, scope, kept count, the bytes of its header,
    table, positions + codes, float values and bias, and the entropy bounds of its mask and codes; plus the file
    size, the bytes outside the layers (magic, version, module records, names, checksum). Checksum enforced.
    """
    if data is None:
        if path is None:
            raise InvalidParameterError("give a path or data")
        data = Path(path).read_bytes()
    net, stats, _ = _decode(data)
    first = next(iter((net.members[0] if isinstance(net, Ensemble) else net).children()))
    layers = []
    for st in stats:
        codes = st.extra["codes"]
        n = st.extra["n"]
        mask_bound = _entropy_bytes(np.array([n - st.nnz, st.nnz]))
        kept = codes[codes != 0]
        code_bound = 0.0 if st.scheme == "float" else _entropy_bytes(np.bincount(kept))
        total = st.header_bytes + st.table_bytes + st.code_bytes + st.value_bytes + st.bias_bytes
        layers.append(
            {
                "name": st.name,
                "type": st.kind,
                "shape": st.shape,
                "scheme": st.scheme,
                "method": st.method,
                "bits": st.bits,
                "scope": st.scope,
                "nnz": st.nnz,
                "density": st.nnz / n,
                "positions": st.positions,
                "bias_dtype": st.extra["bias_dtype"],
                "bytes": total,
                "header_bytes": st.header_bytes,
                "table_bytes": st.table_bytes,
                "code_bytes": st.code_bytes,
                "value_bytes": st.value_bytes,
                "bias_bytes": st.bias_bytes,
                "mask_entropy_bytes": mask_bound,
                "code_entropy_bytes": code_bound,
            }
        )
    return {
        "path": None if path is None else str(path),
        "magic": QUANTIZED_MAGIC.decode("ascii"),
        "format_version": data[len(QUANTIZED_MAGIC)] & ~_NAMES_FLAG,
        "members": len(net.members) if isinstance(net, Ensemble) else 1,
        "file_bytes": len(data),
        "other_bytes": len(data) - sum(layer["bytes"] for layer in layers),
        "checksum": "ok",
        "checksums_ok": True,  # enforced: a mismatch raises FormatError
        "input_transform": first.transform.describe() if isinstance(first, InputTransformLayer) else None,
        "layers": layers,
        "entropy_bound_bytes": sum(
            layer["mask_entropy_bytes"] + layer["code_entropy_bytes"] for layer in layers
        ),
        "bits_per_weight": 8.0 * len(data) / max(1, sum(math.prod(layer["shape"]) for layer in layers)),
    }
