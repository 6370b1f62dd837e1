"""The one container module of the model files (issue 19): every format builds on it.

* safetensors + JSON files (the ternary and pruned formats): :func:`encode_container` / :func:`parse_container`
  (tensors, one JSON document under the metadata key ``"rmtcompress"`` with the dtype, shape and SHA-256 of every
  tensor, the document's own SHA-256 under ``"rmtcompress.sha256"``, magic and version checks),
  :func:`container_magic` (the magic of a file's document, for dispatch), the typed metadata readers
  (``meta_int`` …) and :func:`as_format_error`;

* :func:`rans_frequencies`, :func:`rans_encode`, :func:`rans_decode` — a byte-wise rANS coder over any alphabet of
  up to 65 536 symbols with a static model (integer frequencies summing to 2¹⁶, quantised from the symbol counts);
  the stream costs the empirical entropy ``n·H(counts/n)`` plus a few bytes (the final 32-bit state) and the
  frequency-rounding loss (a fraction of a percent).
* :class:`BinaryWriter` / :class:`BinaryReader` — little-endian records (LEB128 varints, float64 / float32 /
  float16 arrays, raw bytes); every read past the end raises :class:`~rmtcompress.errors.FormatError` ("truncated");
* the stored input transform (:class:`~rmtcompress.core.InputTransform`, the preprocessing a model was trained
  with) in both container kinds: :func:`transform_to_record` / :func:`transform_from_record` (a JSON record + two
  float64 tensors) and :func:`write_transform` / :func:`read_transform` (a binary record).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import safetensors.numpy
from numpy.typing import NDArray

from ..core import InputTransform
from ..errors import FormatError, InvalidParameterError

__all__ = [
    "METADATA_KEY",
    "METADATA_SHA256_KEY",
    "RANS_L",
    "RANS_PROB_BITS",
    "BinaryReader",
    "BinaryWriter",
    "Parsed",
    "as_format_error",
    "container_magic",
    "encode_container",
    "is_int",
    "meta_bool",
    "meta_float",
    "meta_floats",
    "meta_int",
    "meta_obj",
    "meta_str",
    "parse_container",
    "rans_cumulative",
    "rans_decode",
    "rans_decode_impl",
    "rans_decode_prefix",
    "rans_encode",
    "rans_encode_impl",
    "rans_frequencies",
    "read_transform",
    "sha256_bytes",
    "sha256_hex",
    "transform_from_record",
    "transform_to_record",
    "write_transform",
]

RANS_PROB_BITS = 16
"""The rANS model's frequencies sum to 2**RANS_PROB_BITS."""

RANS_L = 1 << 23
"""Lower bound of the rANS state (state ∈ [RANS_L, 256·RANS_L) between symbols)."""

_RANS_M = 1 << RANS_PROB_BITS

Bytes = NDArray[np.uint8]


# ============================================================================================ rANS


def rans_encode_impl(sym: Any, freq: Any, cum: Any, out: Any) -> int:  # pragma: no cover - jitted
    """Encode ``sym`` (symbol indices) backwards into the end of ``out``; return the start offset."""
    x = RANS_L
    pos = out.shape[0]
    for i in range(sym.shape[0] - 1, -1, -1):
        s = sym[i]
        f = freq[s]
        x_max = ((RANS_L >> RANS_PROB_BITS) << 8) * f
        while x >= x_max:
            pos -= 1
            out[pos] = x & 0xFF
            x >>= 8
        x = (x // f) * _RANS_M + (x % f) + cum[s]
    pos -= 4
    out[pos] = x & 0xFF
    out[pos + 1] = (x >> 8) & 0xFF
    out[pos + 2] = (x >> 16) & 0xFF
    out[pos + 3] = (x >> 24) & 0xFF
    return pos


def rans_decode_impl(
    stream: Any, freq: Any, cum: Any, lut: Any, out: Any
) -> int:  # pragma: no cover - jitted
    """Decode ``out.shape[0]`` symbols (``lut``: slot → symbol) from the start of ``stream``.

    Returns the number of bytes the stream occupies (≥ 4) on success, < 0 when it is malformed.
    """
    nbytes = stream.shape[0]
    if nbytes < 4:
        return -1
    x = (
        np.int64(stream[0])
        | (np.int64(stream[1]) << 8)
        | (np.int64(stream[2]) << 16)
        | (np.int64(stream[3]) << 24)
    )
    pos = 4
    for i in range(out.shape[0]):
        slot = x & (_RANS_M - 1)
        s = lut[slot]
        out[i] = s
        x = freq[s] * (x >> RANS_PROB_BITS) + slot - cum[s]
        while x < RANS_L:
            if pos >= nbytes:
                return -2
            x = (x << 8) | np.int64(stream[pos])
            pos += 1
    if x != RANS_L:
        return -3
    return pos


_KERNELS: dict[str, Callable[..., int]] = {}


def _kernel(name: str) -> Callable[..., int]:
    """The numba-compiled rANS loop (compiled on first use; pure Python when numba is unavailable)."""
    if not _KERNELS:
        impls: dict[str, Callable[..., int]] = {"encode": rans_encode_impl, "decode": rans_decode_impl}
        try:
            import numba
        except ImportError:  # pragma: no cover - numba is a dependency
            _KERNELS.update(impls)
        else:
            _KERNELS.update({k: numba.njit(cache=False, nogil=True)(f) for k, f in impls.items()})
    return _KERNELS[name]


def rans_frequencies(counts: Sequence[int]) -> tuple[int, ...]:
    """Static rANS model: integer frequencies summing to 2¹⁶, quantised from the symbol counts.

    ``f_s = max(1, ⌊(2·c_s·M + n) / (2n)⌋)`` for every symbol with ``c_s > 0`` (0 otherwise), then the largest
    frequency (the first one on ties) absorbs the difference to ``M = 2¹⁶``. The decoder reads the frequencies from
    the file, so only the encoder depends on this rule.

    Args:
        counts: Symbol counts (at most 2¹⁶ symbols, positive sum).

    Returns:
        One frequency per symbol.

    Raises:
        InvalidParameterError: On an empty alphabet, a non-positive total, or more than 2¹⁶ present symbols.
    """
    c = [int(v) for v in counts]
    n = sum(c)
    if n <= 0 or any(v < 0 for v in c):
        raise InvalidParameterError("cannot build a frequency table from empty or negative counts")
    if sum(1 for v in c if v > 0) > _RANS_M:
        raise InvalidParameterError(f"at most {_RANS_M} distinct symbols can be rANS-coded")
    f = [max(1, (2 * ci * _RANS_M + n) // (2 * n)) if ci > 0 else 0 for ci in c]
    big = int(np.argmax(f))
    f[big] += _RANS_M - sum(f)
    while f[big] < 1:  # pathological rounding: take the excess from the other large frequencies
        j = int(np.argmax([v if i != big else 0 for i, v in enumerate(f)]))
        take = min(f[j] - 1, 1 - f[big])
        f[j] -= take
        f[big] += take
    return tuple(f)


def rans_cumulative(freqs: Sequence[int] | NDArray[np.int64]) -> NDArray[np.int64]:
    return np.concatenate([[0], np.cumsum(np.asarray(freqs, dtype=np.int64))[:-1]]).astype(np.int64)


def rans_encode(symbols: NDArray[Any], freqs: Sequence[int]) -> Bytes:
    """rANS stream of ``symbols`` (integers in ``[0, len(freqs))``, each with a positive frequency).

    Args:
        symbols: 1-D integer symbol indices.
        freqs: The model (:func:`rans_frequencies`), summing to 2¹⁶.

    Returns:
        The byte stream (1-D uint8; at least 4 bytes).
    """
    sym = np.ascontiguousarray(symbols, dtype=np.int64).reshape(-1)
    f = np.asarray(freqs, dtype=np.int64)
    if int(f.sum()) != _RANS_M:
        raise InvalidParameterError(f"rANS frequencies must sum to {_RANS_M}; got {int(f.sum())}")
    if sym.size and (sym.min() < 0 or sym.max() >= f.size or np.any(f[sym] <= 0)):
        raise InvalidParameterError("a symbol has no frequency in the rANS model")
    out = np.zeros(2 * sym.size + 8, dtype=np.uint8)
    start = _kernel("encode")(sym, f, rans_cumulative(freqs), out)
    return out[start:].copy()


def rans_decode(stream: NDArray[np.uint8], n: int, freqs: Sequence[int]) -> NDArray[np.int64]:
    """Decode ``n`` symbols of a :func:`rans_encode` stream that fills ``stream`` exactly.

    Raises:
        FormatError: A frequency table that does not sum to 2¹⁶, or a malformed stream (too short, ends early,
            wrong final state, trailing bytes).
    """
    out, used = rans_decode_prefix(stream, n, freqs)
    if used != len(stream):
        raise FormatError("entropy-coded payload is malformed: the rANS stream has trailing bytes")
    return out


def rans_decode_prefix(
    buffer: NDArray[np.uint8], n: int, freqs: Sequence[int]
) -> tuple[NDArray[np.int64], int]:
    """Decode ``n`` symbols of a :func:`rans_encode` stream at the start of ``buffer`` (which may continue).

    The stream's end is implied: decoding stops after ``n`` symbols, when the state is back at its initial value.

    Returns:
        ``(symbols, bytes used)``.

    Raises:
        FormatError: As :func:`rans_decode` (a stream that does not end in the initial state).
    """
    f = np.asarray(freqs, dtype=np.int64)
    if f.ndim != 1 or f.size == 0 or np.any(f < 0) or int(f.sum()) != _RANS_M:
        raise FormatError(f"invalid rANS frequency table (must be non-negative and sum to {_RANS_M})")
    lut = np.repeat(np.arange(f.size, dtype=np.int64), f)
    out = np.zeros(int(n), dtype=np.int64)
    status = _kernel("decode")(np.ascontiguousarray(buffer, dtype=np.uint8), f, rans_cumulative(f), lut, out)
    if status < 0:
        why = {
            -1: "shorter than its 4-byte state",
            -2: "ends too early",
            -3: "does not end in the initial state",
        }
        raise FormatError(f"entropy-coded payload is malformed: the rANS stream {why.get(status, status)}")
    return out, int(status)


# ============================================================================================ binary records


def sha256_bytes(data: bytes | memoryview) -> bytes:
    """The 32-byte SHA-256 digest of ``data``."""
    return hashlib.sha256(data).digest()


class BinaryWriter:
    """Append-only little-endian record writer (see :class:`BinaryReader` for the matching reads)."""

    def __init__(self) -> None:
        """Start an empty buffer."""
        self._buf = bytearray()

    def __len__(self) -> int:
        """Bytes written so far."""
        return len(self._buf)

    def getvalue(self) -> bytes:
        """The bytes written so far."""
        return bytes(self._buf)

    def raw(self, data: bytes | bytearray | NDArray[np.uint8]) -> None:
        """Append raw bytes."""
        self._buf += bytes(data) if not isinstance(data, np.ndarray) else data.astype(np.uint8).tobytes()

    def u8(self, v: int) -> None:
        """Append one byte."""
        if not 0 <= int(v) < 256:
            raise InvalidParameterError(f"byte value out of range: {v}")
        self._buf.append(int(v))

    def uvarint(self, v: int) -> None:
        """Append an unsigned LEB128 varint."""
        v = int(v)
        if v < 0:
            raise InvalidParameterError(f"unsigned varint got {v}")
        while True:
            b = v & 0x7F
            v >>= 7
            if v:
                self._buf.append(b | 0x80)
            else:
                self._buf.append(b)
                return

    def svarint(self, v: int) -> None:
        """Append a signed (zig-zag) varint."""
        v = int(v)
        self.uvarint(2 * v if v >= 0 else -2 * v - 1)

    def f64(self, values: Any) -> None:
        """Append float64 values (little-endian)."""
        self._buf += np.ascontiguousarray(values, dtype="<f8").reshape(-1).tobytes()

    def f32(self, values: Any) -> None:
        """Append float32 values (little-endian)."""
        self._buf += np.ascontiguousarray(values, dtype="<f4").reshape(-1).tobytes()

    def f16(self, values: Any) -> None:
        """Append float16 values (little-endian)."""
        self._buf += np.ascontiguousarray(values, dtype="<f2").reshape(-1).tobytes()

    def u16(self, values: Any) -> None:
        """Append uint16 values (little-endian)."""
        self._buf += np.ascontiguousarray(values, dtype="<u2").reshape(-1).tobytes()


class BinaryReader:
    """Reads the records of :class:`BinaryWriter`; any read past the end raises FormatError."""

    def __init__(self, data: bytes | memoryview, start: int = 0, end: int | None = None) -> None:
        """Read ``data[start:end]``."""
        self._data = memoryview(data)
        self.pos = int(start)
        self.end = len(self._data) if end is None else int(end)

    def _take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > self.end:
            raise FormatError(f"truncated file: needed {n} more bytes at offset {self.pos}")
        view = self._data[self.pos : self.pos + n]
        self.pos += n
        return view

    def at_end(self) -> bool:
        """True when every byte has been read."""
        return self.pos == self.end

    def raw(self, n: int) -> bytes:
        """Read ``n`` raw bytes."""
        return bytes(self._take(int(n)))

    def u8(self) -> int:
        """Read one byte."""
        return int(self._take(1)[0])

    def uvarint(self, limit: int = 1 << 62) -> int:
        """Read an unsigned LEB128 varint (at most 9 bytes, value ≤ ``limit``)."""
        v = 0
        for shift in range(0, 63, 7):
            b = self.u8()
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                if v > limit:
                    raise FormatError(f"value {v} exceeds its limit {limit} at offset {self.pos}")
                return v
        raise FormatError(f"varint longer than 9 bytes at offset {self.pos}")

    def svarint(self) -> int:
        """Read a signed (zig-zag) varint."""
        u = self.uvarint()
        return u >> 1 if not u & 1 else -((u + 1) >> 1)

    def f64(self, n: int) -> NDArray[np.float64]:
        """Read ``n`` float64 values."""
        return np.frombuffer(self._take(8 * int(n)), dtype="<f8").astype(np.float64)

    def f32(self, n: int) -> NDArray[np.float32]:
        """Read ``n`` float32 values."""
        return np.frombuffer(self._take(4 * int(n)), dtype="<f4").astype(np.float32)

    def f16(self, n: int) -> NDArray[np.float16]:
        """Read ``n`` float16 values."""
        return np.frombuffer(self._take(2 * int(n)), dtype="<f2").astype(np.float16)

    def u16(self, n: int) -> NDArray[np.uint16]:
        """Read ``n`` uint16 values."""
        return np.frombuffer(self._take(2 * int(n)), dtype="<u2").astype(np.uint16)

    def rest(self) -> NDArray[np.uint8]:
        """The unread bytes (without consuming them)."""
        return np.frombuffer(self._data[self.pos : self.end], dtype=np.uint8)

    def skip(self, n: int) -> None:
        """Consume ``n`` bytes."""
        self._take(int(n))

    def u8s(self, n: int) -> NDArray[np.uint8]:
        """Read ``n`` bytes as a uint8 array."""
        return np.frombuffer(self._take(int(n)), dtype=np.uint8).copy()


# ============================================================================================ safetensors + JSON

METADATA_KEY = "rmtcompress"
"""safetensors metadata key of the JSON document."""
METADATA_SHA256_KEY = "rmtcompress.sha256"
"""safetensors metadata key of the document's SHA-256 (hex)."""


def is_int(v: Any) -> bool:
    """True for a JSON integer (not a bool)."""
    return isinstance(v, int) and not isinstance(v, bool)


def meta_int(v: Any, where: str, minimum: int | None = None) -> int:
    """A metadata integer (≥ ``minimum``), or FormatError naming the field."""
    if not is_int(v) or (minimum is not None and v < minimum):
        bound = "" if minimum is None else f" ≥ {minimum}"
        raise FormatError(f"metadata field {where} must be an integer{bound}, got {v!r}")
    return int(v)


def meta_float(v: Any, where: str) -> float:
    """A finite metadata number, or FormatError naming the field."""
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise FormatError(f"metadata field {where} must be a finite number, got {v!r}")
    return float(v)


def meta_floats(v: Any, where: str, length: int | None = None) -> list[float]:
    """A list of finite numbers (of ``length``), or FormatError naming the field."""
    if not isinstance(v, list) or (length is not None and len(v) != length):
        size = "" if length is None else f" of length {length}"
        raise FormatError(f"metadata field {where} must be a list{size}, got {v!r}")
    return [meta_float(x, f"{where}[{i}]") for i, x in enumerate(v)]


def meta_str(v: Any, where: str) -> str:
    """A metadata string, or FormatError naming the field."""
    if not isinstance(v, str):
        raise FormatError(f"metadata field {where} must be a string, got {v!r}")
    return v


def meta_bool(v: Any, where: str) -> bool:
    """A metadata boolean, or FormatError naming the field."""
    if not isinstance(v, bool):
        raise FormatError(f"metadata field {where} must be true or false, got {v!r}")
    return v


def meta_obj(v: Any, where: str) -> dict[str, Any]:
    """A metadata object (dict), or FormatError naming the field."""
    if not isinstance(v, dict):
        raise FormatError(f"metadata field {where} must be an object, got {type(v).__name__}")
    return v


def sha256_hex(arr: np.ndarray) -> str:
    """Hex SHA-256 of an array's little-endian bytes."""
    le = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
    return hashlib.sha256(le.tobytes()).hexdigest()


@dataclass
class Parsed:
    """A parsed safetensors model file (see :func:`parse_container`)."""

    doc: dict[str, Any]
    tensors: dict[str, np.ndarray]
    header_checksum: str  # "ok" | "mismatch" | "missing"
    file_bytes: int
    header_bytes: int
    checksums: dict[str, str] = field(default_factory=dict)


def parse_container(
    data: bytes, *, strict: bool, magic: str, version_expected: int | Sequence[int]
) -> Parsed:
    """Parse a safetensors model file: tensors, the JSON document (magic and version checked), checksums.

    Args:
        data: The file's bytes.
        strict: Raise on any checksum mismatch (the document's or a tensor's); otherwise record it.
        magic: Expected ``doc["magic"]``.
        version_expected: The ``doc["format_version"]`` this reader knows (one, or several: old versions it still
            reads).

    Raises:
        FormatError: Not a safetensors file, no rmtcompress document, wrong magic or version, tensors that do not
            match the document, or (strict) a checksum mismatch.
    """
    if len(data) < 8:
        raise FormatError(f"not a safetensors file: only {len(data)} bytes")
    try:
        tensors = safetensors.numpy.load(bytes(data))
    except Exception as exc:  # SafetensorError and friends
        raise FormatError(
            f"not a valid safetensors file (truncated, corrupted or another format): {exc}"
        ) from exc
    n_header = int.from_bytes(data[:8], "little")
    try:
        header = json.loads(bytes(data[8 : 8 + n_header]).decode("utf-8"))
        meta = header.get("__metadata__") or {}
    except (ValueError, AttributeError) as exc:
        raise FormatError(f"unreadable safetensors header: {exc}") from exc
    if not isinstance(meta, dict) or METADATA_KEY not in meta:
        raise FormatError(f"not an rmtcompress file: the safetensors metadata has no {METADATA_KEY!r} entry")
    text = meta[METADATA_KEY]
    digest = meta.get(METADATA_SHA256_KEY)
    if not isinstance(text, str):
        raise FormatError(f"metadata entry {METADATA_KEY!r} is not a string")
    if digest is None:
        status = "missing"
    else:
        status = "ok" if digest == hashlib.sha256(text.encode("utf-8")).hexdigest() else "mismatch"
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise FormatError(
            f"the rmtcompress metadata is not valid JSON (metadata checksum: {status}): {exc}"
        ) from exc
    if not isinstance(doc, dict) or doc.get("magic") != magic:
        got = doc.get("magic") if isinstance(doc, dict) else None
        raise FormatError(f"not an rmtcompress file of this kind: wrong magic {got!r} (expected {magic!r})")
    version = doc.get("format_version")
    if not is_int(version):
        raise FormatError(f"format_version must be an integer, got {version!r}")
    known = (version_expected,) if isinstance(version_expected, int) else tuple(version_expected)
    if version not in known:
        raise FormatError(
            f"unsupported {magic} format version {version}; this library reads version "
            f"{', '.join(map(str, known))}"
        )
    if strict and status != "ok":
        raise FormatError(
            f"metadata checksum {status}: the {METADATA_KEY!r} JSON does not match its {METADATA_SHA256_KEY!r} "
            "(the file header is corrupted)"
        )
    parsed = Parsed(doc, tensors, status, len(data), 8 + n_header)
    table = meta_obj(doc.get("tensors"), "tensors")
    missing = sorted(set(table) - set(tensors))
    extra = sorted(set(tensors) - set(table))
    if missing or extra:
        raise FormatError(f"tensors inconsistent with the metadata: missing {missing}, unexpected {extra}")
    for name, entry in table.items():
        e = meta_obj(entry, f"tensors.{name}")
        arr = tensors[name]
        shape = e.get("shape")
        if arr.dtype.name != e.get("dtype") or not isinstance(shape, list) or list(arr.shape) != shape:
            raise FormatError(
                f"tensor {name!r} is {arr.dtype.name}{list(arr.shape)}, metadata says {e.get('dtype')}{shape}"
            )
        ok = sha256_hex(arr) == e.get("sha256")
        parsed.checksums[name] = "ok" if ok else "mismatch"
        if strict and not ok:
            raise FormatError(f"checksum mismatch in tensor {name!r}: the payload is corrupted")
    return parsed


@contextlib.contextmanager
def as_format_error() -> Iterator[None]:
    """Turn any error raised while interpreting a file's content into a :class:`FormatError`."""
    try:
        yield
    except FormatError:
        raise
    except (
        KeyError,
        TypeError,
        ValueError,
        IndexError,
        OverflowError,
        AttributeError,
        RecursionError,
    ) as exc:
        raise FormatError(f"inconsistent rmtcompress metadata: {type(exc).__name__}: {exc}") from exc


def encode_container(tensors: dict[str, np.ndarray], doc: dict[str, Any]) -> bytes:
    """A safetensors file holding ``tensors`` and the JSON ``doc`` (plus a ``"tensors"`` table of every tensor's dtype,
    shape and SHA-256, and the document's SHA-256 under :data:`METADATA_SHA256_KEY`).

    Raises:
        InvalidParameterError: If ``doc`` holds a non-finite number.
    """
    doc = dict(doc)
    doc["tensors"] = {
        name: {"dtype": arr.dtype.name, "shape": list(arr.shape), "sha256": sha256_hex(arr)}
        for name, arr in tensors.items()
    }
    try:
        text = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=True)
    except ValueError as exc:
        raise InvalidParameterError(
            f"the model holds a non-finite number and cannot be stored: {exc}"
        ) from exc
    metadata = {METADATA_KEY: text, METADATA_SHA256_KEY: hashlib.sha256(text.encode("utf-8")).hexdigest()}
    return bytes(safetensors.numpy.save(tensors, metadata=metadata))


def container_magic(data: bytes) -> str | None:
    """The ``magic`` of a safetensors model file's JSON document, or None when ``data`` is not one (header only:
    nothing is verified; the loaders check everything)."""
    try:
        n = int.from_bytes(data[:8], "little")
        if len(data) < 8 or n > len(data) - 8:
            return None
        meta = json.loads(bytes(data[8 : 8 + n]).decode("utf-8")).get("__metadata__") or {}
        magic = json.loads(meta.get(METADATA_KEY, "{}")).get("magic")
    except (ValueError, AttributeError, UnicodeDecodeError, TypeError):
        return None
    return magic if isinstance(magic, str) else None


# ============================================================================================ input transform

_TRANSFORM_KIND = "affine"
_MAX_FEATURES = 1 << 31


def transform_to_record(
    t: InputTransform, tensors: dict[str, np.ndarray], prefix: str = "input"
) -> dict[str, Any]:
    """The JSON record of an input transform; its shift and scale go into ``tensors`` as float64
    ``<prefix>.shift`` / ``<prefix>.scale`` (exact).

    The record: ``{"kind": "affine", "n_features": p, "shift_tensor", "scale_tensor", "input_scale": float|null,
    "input_spread": float|null}``.
    """
    if not isinstance(t, InputTransform):
        raise InvalidParameterError(f"an input transform must be an InputTransform, got {type(t).__name__}")
    shift, scale = f"{prefix}.shift", f"{prefix}.scale"
    tensors[shift] = np.ascontiguousarray(t.shift, dtype=np.float64)
    tensors[scale] = np.ascontiguousarray(t.scale, dtype=np.float64)
    return {
        "kind": _TRANSFORM_KIND,
        "n_features": t.n_features,
        "shift_tensor": shift,
        "scale_tensor": scale,
        "input_scale": t.input_scale,
        "input_spread": t.input_spread,
    }


def transform_from_record(
    rec: Any, tensors: dict[str, np.ndarray], where: str = "input_transform"
) -> tuple[InputTransform, set[str]]:
    """Rebuild an input transform from its JSON record and the file's tensors.

    Returns:
        The transform and the names of the two tensors it used.

    Raises:
        FormatError: An unknown kind, a missing or ill-typed tensor, non-finite values, a scale ≤ 0, lengths other
            than 1 or ``n_features``, or a bad ``input_scale``.
    """
    r = meta_obj(rec, where)
    if r.get("kind") != _TRANSFORM_KIND:
        raise FormatError(f"{where}.kind must be {_TRANSFORM_KIND!r}, got {r.get('kind')!r}")
    p = meta_int(r.get("n_features"), f"{where}.n_features", 1)
    arrays = []
    names = set()
    for key in ("shift_tensor", "scale_tensor"):
        name = meta_str(r.get(key), f"{where}.{key}")
        arr = tensors.get(name)
        if arr is None or arr.dtype != np.float64 or arr.ndim != 1 or arr.size not in (1, p):
            got = "missing" if arr is None else f"{arr.dtype}{list(arr.shape)}"
            raise FormatError(f"{where}.{key}: tensor {name!r} must be float64 of 1 or {p} values, got {got}")
        arrays.append(np.array(arr, dtype=np.float64, copy=True))
        names.add(name)
    refs = []
    for key in ("input_scale", "input_spread"):
        v = r.get(key)
        refs.append(None if v is None else meta_float(v, f"{where}.{key}"))
    try:
        return InputTransform(p, arrays[0], arrays[1], refs[0], refs[1]), names
    except InvalidParameterError as exc:
        raise FormatError(f"{where}: {exc}") from exc


def write_transform(w: BinaryWriter, t: InputTransform) -> None:
    """Binary record: ``u8`` kind (1 affine) | ``uv`` p | ``uv`` m, ``f64``×m shift | ``uv`` m, ``f64``×m scale |
    ``u8`` flags (bit 0: input scale follows, bit 1: input spread follows) | those ``f64`` (m ∈ {1, p})."""
    w.u8(1)
    w.uvarint(t.n_features)
    for arr in (t.shift, t.scale):
        w.uvarint(arr.size)
        w.f64(arr)
    w.u8((t.input_scale is not None) | ((t.input_spread is not None) << 1))
    for v in (t.input_scale, t.input_spread):
        if v is not None:
            w.f64([v])


def read_transform(r: BinaryReader) -> InputTransform:
    """Read a :func:`write_transform` record.

    Raises:
        FormatError: An unknown kind, out-of-range lengths, non-finite values, a scale ≤ 0, a truncated record.
    """
    kind = r.u8()
    if kind != 1:
        raise FormatError(f"unknown input-transform kind {kind}")
    p = r.uvarint(_MAX_FEATURES)
    arrays = []
    for name in ("shift", "scale"):
        m = r.uvarint(_MAX_FEATURES)
        if m not in (1, p):
            raise FormatError(f"input transform {name} has {m} values for {p} features")
        arrays.append(r.f64(m))
    flags = r.u8()
    if flags > 3:
        raise FormatError(f"input transform: invalid flags {flags}")
    refs = [float(r.f64(1)[0]) if flags & bit else None for bit in (1, 2)]
    try:
        return InputTransform(p, arrays[0], arrays[1], refs[0], refs[1])
    except InvalidParameterError as exc:
        raise FormatError(f"invalid input transform: {exc}") from exc
