"""Packed files for pruned *trained* MLPs: the storage form of :func:`rmtcompress.pruning.remove`, on disk.

A file is a safetensors container like the ternary format of :mod:`rmtcompress.storage` (same metadata keys,
SHA-256 of every tensor and of the JSON document, atomic write), with magic ``"rmtcompress-pruned"``. Per
``nn.Linear`` of an ``nn.Sequential`` it stores

* the positions of the kept weights (row-major over the ``(out, in)`` weight; ``nn.Conv2d`` weights
  ``(out, in/groups, kh, kw)`` the same way, with stride / padding / dilation / groups), in one of

  - ``"bitmask"`` — one bit per weight, ⌈n/8⌉ bytes;
  - ``"entropy"`` — the mask as a binary rANS stream with a static model from its counts (the ternary coder of
    :mod:`rmtcompress.storage` with an empty −1 symbol): within a fraction of a percent of n·H(density) bits;
  - ``"dense"`` — nothing (every weight kept; for unpruned layers);
  - ``"auto"`` — per layer, the smallest of these;

* the kept values, ``"float32"`` (exact) or ``"float16"`` (lossy: relative error ≤ 2⁻¹¹ per weight within the
  float16 range; values beyond ±65 504 are refused), and the float32 bias.

Parameter-free modules between them are recorded with their settings: ``nn.ReLU``, ``nn.LeakyReLU`` (its slope),
``nn.Identity``, ``nn.Tanh``, ``nn.Sigmoid``, ``nn.GELU``, ``nn.Flatten``, ``nn.Unflatten``, ``nn.MaxPool2d``. The
net is stored in its inference form (:func:`rmtcompress.pruning.inference_form`): dropout layers as ``nn.Identity``,
an ``nn.BatchNorm1d`` right after an ``nn.Linear`` folded into it. A first module
:class:`~rmtcompress.core.InputTransformLayer` (the preprocessing the net was trained with) is stored as the input
transform record. Anything else (or a convolution with a non-zero padding mode) is refused with an
InvalidParameterError that lists what is supported.
Weights masked by a ``weight_mask`` buffer and exact zeros are both stored as pruned; the loaded model is a plain
``nn.Sequential`` whose pruned weights are exactly zero (no mask buffers), so its outputs equal the masked
model's (bit for bit with float32 values).

The layout (metadata document fields) is specified in ``docs/format.md`` ("Pruned trained nets").
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from .._utils import atomic_write_bytes, entropy_bound_bits
from ..core import InputTransformLayer
from ..errors import FormatError, InvalidParameterError, MissingFileError
from ..pruning import inference_form
from ._container import (
    as_format_error,
    container_magic,
    encode_container,
    meta_float,
    parse_container,
    rans_decode,
    rans_encode,
    rans_frequencies,
    transform_from_record,
    transform_to_record,
)

__all__ = [
    "PRUNED_FORMAT_VERSION",
    "PRUNED_MAGIC",
    "PRUNED_READ_VERSIONS",
    "is_pruned_file",
    "load_pruned",
    "pruned_file_bytes",
    "pruned_from_bytes",
    "pruned_to_bytes",
    "save_pruned",
]

PRUNED_MAGIC = "rmtcompress-pruned"
PRUNED_FORMAT_VERSION = 2
"""Version written (2: ``input_transform`` and ``leaky_relu`` entries)."""
PRUNED_READ_VERSIONS = (1, 2)
"""Versions read (a version-1 file is a version-2 file without those entries)."""
POSITION_ENCODINGS = ("bitmask", "entropy", "dense")
VALUE_DTYPES = ("float32", "float16")

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "identity": nn.Identity,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
}


def _mask_and_weight(module: nn.Linear | nn.Conv2d) -> tuple[NDArray[np.bool_], NDArray[np.float32]]:
    w = module.weight.detach().cpu().to(torch.float32).numpy()
    mask = w != 0
    buf = getattr(module, "weight_mask", None)
    if isinstance(buf, torch.Tensor):
        mask &= buf.detach().cpu().numpy().astype(bool).reshape(w.shape)
    return mask, w


def _encode_positions(flat: NDArray[np.bool_], encoding: str) -> NDArray[np.uint8]:
    if encoding == "dense":
        return np.zeros(0, dtype=np.uint8)
    if encoding == "bitmask":
        return np.packbits(flat)
    nnz = int(flat.sum())
    freqs = rans_frequencies((flat.size - nnz, 0, nnz))
    return rans_encode(np.where(flat, 2, 0), freqs)  # symbols of the ternary coder: 0 → 0, +1 → 2


def _decode_positions(payload: NDArray[np.uint8], encoding: str, n: int, nnz: int) -> NDArray[np.bool_]:
    if encoding == "dense":
        if nnz != n or payload.size:
            raise FormatError(f"a 'dense' layer must keep all {n} weights and carry no position payload")
        return np.ones(n, dtype=bool)
    if encoding == "bitmask":
        if payload.size != (n + 7) // 8:
            raise FormatError(f"bitmask of {payload.size} bytes for {n} weights (expected {(n + 7) // 8})")
        flat = np.unpackbits(payload, count=n).astype(bool)
    elif encoding == "entropy":
        if nnz in (0, n):
            raise FormatError("an entropy-coded mask needs both kept and pruned weights")
        flat = rans_decode(payload, n, rans_frequencies((n - nnz, 0, nnz))) != 0
    else:
        raise FormatError(f"unknown position encoding {encoding!r} (known: {', '.join(POSITION_ENCODINGS)})")
    if int(flat.sum()) != nnz:
        raise FormatError(f"the position payload holds {int(flat.sum())} kept weights, metadata says {nnz}")
    return flat


def _best_encoding(flat: NDArray[np.bool_]) -> tuple[str, NDArray[np.uint8]]:
    if flat.all():
        return "dense", _encode_positions(flat, "dense")
    options = [("bitmask", _encode_positions(flat, "bitmask"))]
    if flat.any():
        options.append(("entropy", _encode_positions(flat, "entropy")))
    return min(options, key=lambda kv: kv[1].size)


def _ints(v: Any) -> Any:
    """A conv/pool hyper-parameter as JSON: an int, a list of ints, or a padding string ('same' / 'valid')."""
    if isinstance(v, str):
        return v
    return int(v) if isinstance(v, int) else [int(x) for x in v]


_SUPPORTED = (
    "nn.Linear, nn.Conv2d, nn.ReLU, nn.LeakyReLU, nn.Identity, nn.Tanh, nn.Sigmoid, nn.GELU, nn.MaxPool2d, "
    "nn.Flatten, nn.Unflatten, dropout layers (stored as nn.Identity), nn.BatchNorm1d right after an nn.Linear "
    "(folded into it) and a first InputTransformLayer"
)


def _describe(model: nn.Module) -> list[tuple[str, str, nn.Module]]:
    out: list[tuple[str, str, nn.Module]] = []
    for i, (name, m) in enumerate(model.named_children()):
        if isinstance(m, InputTransformLayer):
            if i:
                raise InvalidParameterError(
                    f"layer {name!r}: an InputTransformLayer must be the first module of the nn.Sequential"
                )
            out.append((name, "input_transform", m))
        elif type(m) is nn.LeakyReLU:
            out.append((name, "leaky_relu", m))
        elif isinstance(m, nn.Linear):
            out.append((name, "linear", m))
        elif isinstance(m, nn.Conv2d):
            if m.padding_mode != "zeros":
                raise InvalidParameterError(
                    f"layer {name!r}: only padding_mode='zeros' convolutions can be stored"
                )
            out.append((name, "conv2d", m))
        elif isinstance(m, nn.MaxPool2d):
            if m.return_indices:
                raise InvalidParameterError(f"layer {name!r}: MaxPool2d with return_indices cannot be stored")
            out.append((name, "maxpool2d", m))
        elif isinstance(m, (nn.Flatten, nn.Unflatten)):
            out.append((name, "flatten" if isinstance(m, nn.Flatten) else "unflatten", m))
        else:
            kind = next((k for k, cls in _ACTIVATIONS.items() if type(m) is cls), None)
            if kind is None:
                raise InvalidParameterError(
                    f"layer {name!r} is a {type(m).__name__}: pruned files store {_SUPPORTED}"
                )
            out.append((name, kind, m))
    if not any(kind in ("linear", "conv2d") for _, kind, _ in out):
        raise InvalidParameterError("the model has no nn.Linear or nn.Conv2d layer to store")
    return out


def pruned_to_bytes(model: nn.Module, *, values: str = "float32", positions: str = "auto") -> bytes:
    """The packed file of a pruned ``nn.Sequential`` MLP, as bytes.

    Args:
        model: ``nn.Sequential`` of ``nn.Linear`` (weights (out, in), optional bias) and parameter-free modules
            (see the module docstring); ``weight_mask`` buffers are honoured.
        values: ``"float32"`` (exact) or ``"float16"`` (lossy) for the kept weights.
        positions: ``"auto"``, ``"bitmask"``, ``"entropy"`` or ``"dense"`` (only for layers with nothing pruned).

    Raises:
        ValueError: Unsupported module, no linear layer, unknown option, non-finite weights, or float16 overflow.
    """
    if values not in VALUE_DTYPES:
        raise InvalidParameterError(f"values must be one of {', '.join(VALUE_DTYPES)}, got {values!r}")
    if positions not in (*POSITION_ENCODINGS, "auto"):
        raise InvalidParameterError(
            f"positions must be 'auto' or one of {', '.join(POSITION_ENCODINGS)}, got {positions!r}"
        )
    if not isinstance(model, nn.Sequential):
        raise InvalidParameterError(f"save_pruned stores an nn.Sequential, got {type(model).__name__}")
    model = inference_form(model)
    sequence: list[dict[str, Any]] = []
    tensors: dict[str, np.ndarray] = {}
    for name, kind, m in _describe(model):
        if kind == "input_transform":
            assert isinstance(m, InputTransformLayer)
            sequence.append({"name": name, "type": kind, **transform_to_record(m.transform, tensors, name)})
            continue
        if kind == "leaky_relu":
            assert isinstance(m, nn.LeakyReLU)
            sequence.append({"name": name, "type": kind, "negative_slope": float(m.negative_slope)})
            continue
        if kind == "flatten":
            assert isinstance(m, nn.Flatten)
            sequence.append({"name": name, "type": kind, "start_dim": m.start_dim, "end_dim": m.end_dim})
            continue
        if kind == "unflatten":
            assert isinstance(m, nn.Unflatten)
            sequence.append(
                {"name": name, "type": kind, "dim": int(m.dim), "sizes": [int(v) for v in m.unflattened_size]}
            )
            continue
        if kind == "maxpool2d":
            assert isinstance(m, nn.MaxPool2d)
            sequence.append(
                {
                    "name": name,
                    "type": kind,
                    **{k: _ints(getattr(m, k)) for k in ("kernel_size", "stride", "padding", "dilation")},
                    "ceil_mode": bool(m.ceil_mode),
                }
            )
            continue
        if kind not in ("linear", "conv2d"):
            sequence.append({"name": name, "type": kind})
            continue
        assert isinstance(m, (nn.Linear, nn.Conv2d))
        mask, w = _mask_and_weight(m)
        if not np.isfinite(w[mask]).all():
            raise InvalidParameterError(f"layer {name!r} holds NaN or inf weights: refusing to store them")
        flat = mask.reshape(-1)
        if positions == "auto":
            enc, payload = _best_encoding(flat)
        else:
            if positions == "dense" and not flat.all():
                raise InvalidParameterError(
                    f"layer {name!r} has pruned weights: 'dense' positions cannot store it"
                )
            enc, payload = positions, _encode_positions(flat, positions)
        kept = w.reshape(-1)[flat]
        if values == "float16":
            if kept.size and np.abs(kept).max() > np.finfo(np.float16).max:
                raise InvalidParameterError(
                    f"layer {name!r} has weights beyond the float16 range: use values='float32'"
                )
            kept_arr: np.ndarray = kept.astype(np.float16)
        else:
            kept_arr = kept.astype(np.float32)
        idx = len(tensors)
        key = f"{kind}{idx}"
        tensors[f"{key}.positions"] = payload
        tensors[f"{key}.values"] = kept_arr
        entry: dict[str, Any] = {
            "name": name,
            "type": kind,
            "tensor": key,
            "shape": [int(v) for v in w.shape],
            "nnz": int(flat.sum()),
            "positions": enc,
            "values": values,
            "bias": m.bias is not None,
        }
        if isinstance(m, nn.Conv2d):
            entry.update(
                {k: _ints(getattr(m, k)) for k in ("stride", "padding", "dilation")}
                | {"groups": int(m.groups)}
            )
        if m.bias is not None:
            b = m.bias.detach().cpu().to(torch.float32).numpy()
            if not np.isfinite(b).all():
                raise InvalidParameterError(f"layer {name!r} has a NaN or inf bias: refusing to store it")
            tensors[f"{key}.bias"] = b.copy()
        sequence.append(entry)
    doc = {"magic": PRUNED_MAGIC, "format_version": PRUNED_FORMAT_VERSION, "sequence": sequence}
    return encode_container(tensors, doc)


def pruned_file_bytes(model: nn.Module, *, values: str = "float32", positions: str = "auto") -> int:
    """Exact size in bytes of the file :func:`save_pruned` writes for ``model`` (the honest size of a pruned net)."""
    return len(pruned_to_bytes(model, values=values, positions=positions))


def save_pruned(
    model: nn.Module, path: str | os.PathLike[str], *, values: str = "float32", positions: str = "auto"
) -> None:
    """Write the packed file of a pruned ``nn.Sequential`` atomically (temporary name, fsync, rename).

    Raises:
        ValueError: See :func:`pruned_to_bytes` (nothing is written).
        OSError: If the file cannot be written (any previous file is left intact).
    """
    atomic_write_bytes(path, pruned_to_bytes(model, values=values, positions=positions), parents=False)


def is_pruned_file(data: bytes) -> bool:
    """True when ``data`` parses as a pruned-net file header (magic only; contents are checked by the loader)."""
    return container_magic(data) == PRUNED_MAGIC


def _build(doc: dict[str, Any], tensors: dict[str, np.ndarray]) -> nn.Sequential:
    seq = doc["sequence"]
    if not isinstance(seq, list) or not seq:
        raise FormatError("the pruned-net metadata has an empty layer sequence")
    modules: dict[str, nn.Module] = {}
    used: set[str] = set()
    prev_out: int | None = None
    v2 = doc["format_version"] >= 2
    for i, e in enumerate(seq):
        name, kind = str(e["name"]), e["type"]
        if kind == "input_transform" and v2 and i == 0:
            transform, names = transform_from_record(e, tensors, f"sequence[0] ({name!r})")
            modules[name] = InputTransformLayer(transform)
            used |= names
            prev_out = transform.n_features
        elif kind == "leaky_relu" and v2:
            modules[name] = nn.LeakyReLU(meta_float(e["negative_slope"], f"{name}.negative_slope"))
        elif kind == "flatten":
            modules[name] = nn.Flatten(int(e["start_dim"]), int(e["end_dim"]))
        elif kind in _ACTIVATIONS:
            modules[name] = _ACTIVATIONS[kind]()
        elif kind == "unflatten":
            modules[name] = nn.Unflatten(int(e["dim"]), tuple(int(v) for v in e["sizes"]))
        elif kind == "maxpool2d":
            modules[name] = nn.MaxPool2d(
                e["kernel_size"], e["stride"], e["padding"], e["dilation"], ceil_mode=bool(e["ceil_mode"])
            )
        elif kind in ("linear", "conv2d"):
            shape = [int(v) for v in e["shape"]]
            if len(shape) != (2 if kind == "linear" else 4) or min(shape) < 1:
                raise FormatError(f"layer {name!r} has shape {shape}")
            if kind == "linear" and prev_out is not None and shape[1] != prev_out:
                raise FormatError(
                    f"layer {name!r} takes {shape[1]} inputs but the previous layer gives {prev_out}"
                )
            n = int(np.prod(shape))
            key, nnz = str(e["tensor"]), int(e["nnz"])
            if not 0 <= nnz <= n:
                raise FormatError(f"layer {name!r}: nnz {nnz} outside [0, {n}]")
            flat = _decode_positions(tensors[f"{key}.positions"], str(e["positions"]), n, nnz)
            vals = tensors[f"{key}.values"]
            if vals.shape != (nnz,) or vals.dtype.name != e["values"] or e["values"] not in VALUE_DTYPES:
                raise FormatError(
                    f"layer {name!r}: values are {vals.dtype.name}{list(vals.shape)}, expected {nnz}"
                )
            w = np.zeros(n, dtype=np.float32)
            w[flat] = vals.astype(np.float32)
            mod: nn.Linear | nn.Conv2d
            if kind == "linear":
                mod = nn.Linear(shape[1], shape[0], bias=bool(e["bias"]))
            else:
                groups = int(e["groups"])
                mod = nn.Conv2d(
                    shape[1] * groups,
                    shape[0],
                    (shape[2], shape[3]),
                    stride=e["stride"],
                    padding=e["padding"],
                    dilation=e["dilation"],
                    groups=groups,
                    bias=bool(e["bias"]),
                )
            with torch.no_grad():
                mod.weight.copy_(torch.from_numpy(w.reshape(shape)))
                if e["bias"]:
                    b = tensors[f"{key}.bias"]
                    if b.shape != (shape[0],):
                        raise FormatError(
                            f"layer {name!r}: bias shape {list(b.shape)}, expected [{shape[0]}]"
                        )
                    assert mod.bias is not None
                    mod.bias.copy_(torch.from_numpy(b.astype(np.float32)))
                    used.add(f"{key}.bias")
            used.update((f"{key}.positions", f"{key}.values"))
            modules[name] = mod
            prev_out = shape[0] if kind == "linear" else None
        else:
            raise FormatError(f"unknown layer type {kind!r} in the pruned-net metadata")
    unused = sorted(set(tensors) - used)
    if unused:
        raise FormatError(f"tensors not referenced by any layer: {unused}")
    net = nn.Sequential()
    for name, module in modules.items():
        net.add_module(name, module)
    return net.eval()


def pruned_from_bytes(data: bytes) -> nn.Sequential:
    """Rebuild the ``nn.Sequential`` of a pruned-net file's bytes.

    Raises:
        FormatError: Truncated or corrupted data (checksums are enforced), a wrong magic (e.g. a ternary
            rmtcompress file) or version, or metadata inconsistent with the payloads.
    """
    with as_format_error():
        parsed = parse_container(data, strict=True, magic=PRUNED_MAGIC, version_expected=PRUNED_READ_VERSIONS)
        return _build(parsed.doc, parsed.tensors)
    raise AssertionError("unreachable")  # pragma: no cover


def load_pruned(path: str | os.PathLike[str]) -> nn.Sequential:
    """Load a file written by :func:`save_pruned` (pruned weights exactly zero, no mask buffers, eval mode).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        FormatError: See :func:`pruned_from_bytes`.
    """
    p = Path(path)
    if not p.exists():
        raise MissingFileError(f"no such model file: {p}")
    return pruned_from_bytes(p.read_bytes())


def pruned_file_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Per linear layer of a pruned-net file: shape, kept count, density, bytes of positions / values / bias and the
    mask's entropy bound in bytes; plus the file size and the input transform's summary (checksums enforced: the
    whole file is decoded).

    Raises:
        FileNotFoundError, FormatError: As :func:`load_pruned`.
    """
    data = Path(path).read_bytes()
    with as_format_error():
        parsed = parse_container(data, strict=True, magic=PRUNED_MAGIC, version_expected=PRUNED_READ_VERSIONS)
        net = _build(parsed.doc, parsed.tensors)
        first = next(iter(net.children()))
        transform = first.transform.describe() if isinstance(first, InputTransformLayer) else None
        layers = []
        for e in parsed.doc["sequence"]:
            if e["type"] not in ("linear", "conv2d"):
                continue
            key = e["tensor"]
            n = int(np.prod([int(v) for v in e["shape"]]))
            nnz = int(e["nnz"])
            bias = parsed.tensors.get(f"{key}.bias")
            layers.append(
                {
                    "name": e["name"],
                    "shape": tuple(e["shape"]),
                    "nnz": nnz,
                    "density": nnz / n,
                    "positions": e["positions"],
                    "values": e["values"],
                    "position_bytes": int(parsed.tensors[f"{key}.positions"].nbytes),
                    "value_bytes": int(parsed.tensors[f"{key}.values"].nbytes),
                    "bias_bytes": 0 if bias is None else int(bias.nbytes),
                    "mask_entropy_bound_bytes": entropy_bound_bits((n - nnz, 0, nnz)) / 8.0,
                }
            )
    return {
        "path": str(path),
        "magic": PRUNED_MAGIC,
        "format_version": parsed.doc["format_version"],
        "file_bytes": len(data),
        "header_bytes": parsed.header_bytes,
        "payload_bytes": int(sum(a.nbytes for a in parsed.tensors.values())),
        "checksums_ok": True,  # enforced: a mismatch raises FormatError
        "input_transform": transform,
        "layers": layers,
    }
