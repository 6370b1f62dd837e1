"""Tests for :mod:`rmtcompress.storage` — packed model files.

Round trips (every encoding: identical codes, bit-identical features and predictions), payload sizes against their
formulas and the entropy coder against the empirical-entropy bound, seed-regenerated layers, atomic saves, and the
error paths: every single-byte flip and every truncation of a file raises :class:`FormatError`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors.numpy
import torch

import rmtcompress as rc
from rmtcompress._utils import entropy_bound_bits
from rmtcompress._utils._philox import philox_ternary_codes
from rmtcompress.io import _ternary as storage
from rmtcompress.io._ternary import FormatError

SPEC = rc.MLPSpec(64, (96, 80, 40), ("relu",) * 3)
PAYLOAD_ENCODINGS = ("2bit", "base3", "bitmask", "entropy")


@pytest.fixture(scope="module", autouse=True)
def _single_threaded() -> Iterator[None]:
    """One torch thread (busy 2-core machine); the previous setting is restored."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn digits, normalised (NTK-LC convention)."""
    X, y = rc.load_digits_data()
    return rc.PaperNormalizer().fit(X).transform(X), y


@pytest.fixture(scope="module")
def model(digits: tuple[np.ndarray, np.ndarray]) -> rc.CompressedMLP:
    """A small compressed net (ε = 0.9, 4-level Lloyd–Max) with a ridge readout on digits."""
    X, y = digits
    m = rc.compress(SPEC, rc.NTKLCConfig(sparsity=0.9, method="lloyd-max", levels=4, seed=0))
    rc.fit_readout(m, X, y)
    return m


@pytest.fixture(scope="module")
def model_bytes(model: rc.CompressedMLP) -> bytes:
    return storage.to_bytes(model)


def _buffer(m: rc.CompressedMLP, i: int) -> torch.Tensor:
    w = getattr(m, f"w{i}")
    assert isinstance(w, torch.Tensor)
    return w


def _assert_same_model(a: rc.CompressedMLP, b: rc.CompressedMLP, X: np.ndarray) -> None:
    assert b.is_ternary == a.is_ternary
    for i in range(a.spec.depth):
        wa, wb = getattr(a, f"w{i}"), getattr(b, f"w{i}")
        assert isinstance(wa, torch.Tensor) and isinstance(wb, torch.Tensor)
        assert wa.dtype == wb.dtype and torch.equal(wa, wb)
    assert b.scales == a.scales
    assert torch.equal(b.centers, a.centers)  # type: ignore[arg-type]
    assert b.activations == a.activations or [x.name for x in b.activations] == [
        x.name for x in a.activations
    ]
    assert b.spec.input_dim == a.spec.input_dim and b.spec.widths == a.spec.widths
    for attr in (
        "method",
        "sparsity",
        "tau0",
        "running_tau",
        "thermometer",
        "activation_bits",
        "straight_through",
    ):
        assert getattr(b, attr) == getattr(a, attr), attr
    fa, fb = a.features(X), b.features(X)
    assert fa.dtype == fb.dtype and np.array_equal(fa, fb)
    if a.classifier is not None:
        assert b.classifier is not None
        assert np.array_equal(b.classifier.coef, a.classifier.coef)
        assert (
            b.classifier.coef.flags.f_contiguous == a.classifier.coef.flags.f_contiguous
        )  # same BLAS rounding
        assert np.array_equal(b.classifier.intercept, a.classifier.intercept)
        assert np.array_equal(b.classifier.classes, a.classifier.classes)
        assert b.classifier.classes.dtype == a.classifier.classes.dtype
        assert b.classifier.method == a.classifier.method
        assert np.array_equal(b.predict(X), a.predict(X))
        ra, rb = a.readout_inputs(X), b.readout_inputs(X)
        assert np.array_equal(ra, rb)
        assert np.array_equal(b.classifier.decision_function(rb), a.classifier.decision_function(ra))
    else:
        assert b.classifier is None


def _rewrite(data: bytes, mutate: Callable[[dict[str, Any]], None], *, resign: bool = True) -> bytes:
    """Edit the JSON document of a file (re-signing its checksum unless ``resign`` is False)."""
    tensors = safetensors.numpy.load(data)
    n = int.from_bytes(data[:8], "little")
    meta = json.loads(data[8 : 8 + n])["__metadata__"]
    doc = json.loads(meta[storage.METADATA_KEY])
    mutate(doc)
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    sha = hashlib.sha256(text.encode()).hexdigest() if resign else meta[storage.METADATA_SHA256_KEY]
    return bytes(
        safetensors.numpy.save(
            tensors, metadata={storage.METADATA_KEY: text, storage.METADATA_SHA256_KEY: sha}
        )
    )


def _tensor_span(data: bytes, name: str) -> tuple[int, int]:
    n = int.from_bytes(data[:8], "little")
    begin, end = json.loads(data[8 : 8 + n])[name]["data_offsets"]
    return 8 + n + begin, 8 + n + end


# ================================================================================================ round trips


@pytest.mark.parametrize("encoding", ["auto", *PAYLOAD_ENCODINGS])
def test_round_trip_every_encoding(
    encoding: str, model: rc.CompressedMLP, digits: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    path = tmp_path / "m.rmtc.safetensors"
    storage.save(model, path, encoding=encoding)
    loaded = storage.load(path)
    _assert_same_model(model, loaded, digits[0])
    info = storage.inspect(path)
    expected = "entropy" if encoding == "auto" else encoding  # entropy wins at ε = 0.9
    assert [layer["encoding"] for layer in info["layers"]] == [expected] * 3
    assert loaded.match_report is None


def test_per_layer_encodings(model: rc.CompressedMLP, digits: tuple[np.ndarray, np.ndarray]) -> None:
    data = storage.to_bytes(model, ["2bit", "bitmask", "base3"])
    _assert_same_model(model, storage.from_bytes(data), digits[0])
    with pytest.raises(ValueError, match="per-layer encodings"):
        storage.to_bytes(model, ["2bit", "bitmask"])


def test_model_without_readout(digits: tuple[np.ndarray, np.ndarray]) -> None:
    m = rc.compress(rc.MLPSpec(64, (30, 20), ("relu", "tanh")), rc.NTKLCConfig(sparsity=0.5, seed=3))
    loaded = storage.from_bytes(storage.to_bytes(m))
    _assert_same_model(m, loaded, digits[0])
    with pytest.raises(ValueError, match="readout is not trained"):
        loaded.predict(digits[0])


def test_thermometer_readout(digits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = digits
    m = rc.compress(
        rc.MLPSpec(64, (48, 32), ("relu", "relu")),
        rc.NTKLCConfig(sparsity=0.8, seed=1, readout_features="thermometer"),
    )
    rc.fit_readout(m, X, y)
    assert m.thermometer
    _assert_same_model(m, storage.from_bytes(storage.to_bytes(m, "entropy")), X)


def test_weights_only_registry_activations(digits: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    spec = rc.MLPSpec(64, (40, 30, 20), ("relu", "tanh", rc.leaky_relu(0.1)))
    m = rc.compress(spec, rc.NTKLCConfig(sparsity=0.7, method="weights-only", seed=2))
    path = tmp_path / "w.safetensors"
    storage.save(m, path)
    loaded = storage.load(path)
    _assert_same_model(m, loaded, digits[0])
    assert [a.name for a in loaded.activations] == ["relu", "tanh", "leaky_relu(0.1)"]
    assert loaded.spec.activations[:2] == ("relu", "tanh")
    arch = storage.inspect(path)["metadata"]["architecture"]
    assert [a["kind"] for a in arch["activations"]] == ["linear_abs", "registry", "linear_abs"]
    assert [a["kind"] for a in arch["spec_activations"]] == ["name", "name", "linear_abs"]


def test_unrebuildable_activation_is_refused() -> None:
    custom = rc.custom_activation(np.sin, name="my_sin", torch_fn=torch.sin)
    m = rc.compress(rc.MLPSpec(8, (6,), (custom,)), rc.NTKLCConfig(method="weights-only", seed=0))
    with pytest.raises(ValueError, match=r"my_sin.*cannot be stored"):
        storage.to_bytes(m)
    impostor = rc.SmoothActivation("tanh", np.sin, torch_fn=torch.sin)  # registry name, other function
    m2 = rc.compress(rc.MLPSpec(8, (6,), (impostor,)), rc.NTKLCConfig(method="weights-only", seed=0))
    with pytest.raises(ValueError, match=r"'tanh'.*cannot be stored"):
        storage.to_bytes(m2)


def test_float_baseline_round_trip(digits: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    X, y = digits
    b = rc.build_baseline("heuristic-sparsification", rc.MLPSpec(64, (50, 30), ("relu", "relu")), seed=4)
    rc.fit_readout(b, X, y)
    assert not b.is_ternary
    path = tmp_path / "b.safetensors"
    storage.save(b, path)
    _assert_same_model(b, storage.load(path), X)
    info = storage.inspect(path)
    assert [layer["encoding"] for layer in info["layers"]] == ["float32", "float32"]
    assert info["layers"][0]["bits_per_weight"] == 32.0
    with pytest.raises(ValueError, match="float weights"):
        storage.to_bytes(b, "2bit")
    bh = rc.build_baseline("binary-heuristic", rc.MLPSpec(64, (20, 10), ("relu", "relu")), seed=1)
    _assert_same_model(bh, storage.from_bytes(storage.to_bytes(bh, "bitmask")), X)


def test_save_argument_errors(model: rc.CompressedMLP) -> None:
    with pytest.raises(ValueError, match="unknown encoding"):
        storage.to_bytes(model, "zip")
    with pytest.raises(ValueError, match="float-weight models"):
        storage.to_bytes(model, "float32")
    with pytest.raises(ValueError, match="CompressedMLP"):
        storage.to_bytes(torch.nn.Linear(2, 2))  # type: ignore[arg-type]


# ================================================================================================ encodings


def _random_codes(rng: np.random.Generator, shape: tuple[int, int], eps: float) -> np.ndarray:
    u = rng.random(shape)
    return ((u >= (1 + eps) / 2).astype(np.int8) - (u < (1 - eps) / 2).astype(np.int8)).astype(np.int8)


@pytest.mark.parametrize("eps", [0.0, 0.3, 0.9, 0.99])
@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (3, 3), (13, 17), (64, 129)])
def test_codec_round_trip_and_size_formulas(eps: float, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(hash((eps, shape)) % 2**32)
    codes = _random_codes(rng, shape, eps)
    n = codes.size
    nnz = int(np.count_nonzero(codes))
    formulas = {"2bit": -(-n // 4), "base3": -(-n // 5), "bitmask": -(-n // 8) + -(-nnz // 8)}
    sizes = {}
    for enc in PAYLOAD_ENCODINGS:
        e = storage.encode_codes(codes, enc)
        assert e.payload.dtype == np.uint8 and e.payload.ndim == 1
        if enc in formulas:
            assert e.payload.size == formulas[enc], enc
        sizes[enc] = e.payload.size
        back = storage.decode_codes(e.payload, enc, e.counts, e.params)
        assert back.dtype == np.int8 and np.array_equal(back.reshape(shape), codes), enc
    auto = storage.encode_codes(codes, "auto")
    assert auto.payload.size == min(sizes.values())


@pytest.mark.parametrize("value", [-1, 0, 1])
def test_constant_layers(value: int) -> None:
    codes = np.full((7, 9), value, dtype=np.int8)
    for enc in PAYLOAD_ENCODINGS:
        e = storage.encode_codes(codes, enc)
        assert np.array_equal(storage.decode_codes(e.payload, enc, e.counts, e.params).reshape(7, 9), codes)
    e = storage.encode_codes(codes, "entropy")
    assert e.payload.size == 4  # one symbol: only the final state


def test_bit_layouts_are_as_documented() -> None:
    codes = np.array([0, 1, -1, 1, -1, 0, 0, 1, 1], dtype=np.int8)
    # 2bit: 0 → 00, +1 → 01, −1 → 11, first code in the least significant bits
    assert storage.encode_codes(codes, "2bit").payload.tolist() == [
        0b01_11_01_00,
        0b01_00_00_11,
        0b00_00_00_01,
    ]
    # base3: trit = code mod 3, little-endian digits
    assert storage.encode_codes(codes, "base3").payload.tolist() == [
        0 + 1 * 3 + 2 * 9 + 1 * 27 + 2 * 81,
        0 + 0 * 3 + 1 * 9 + 1 * 27,
    ]
    # bitmask: np.packbits (first bit is the MSB) of code != 0, then of the signs (1 = negative) of the non-zeros
    assert storage.encode_codes(codes, "bitmask").payload.tolist() == [0b01111001, 0b10000000, 0b01010000]


def test_invalid_codes_refused() -> None:
    with pytest.raises(ValueError, match=r"\{-1, 0, \+1\}"):
        storage.encode_codes(np.array([[0, 2]]), "2bit")
    with pytest.raises(ValueError, match="integers"):
        storage.encode_codes(np.array([[0.0, 1.0]]), "2bit")


def test_malformed_payloads_raise_format_error() -> None:
    codes = _random_codes(np.random.default_rng(0), (20, 30), 0.9)
    counts = storage.ternary_counts(codes)
    e = storage.encode_codes(codes, "entropy")
    rng = np.random.default_rng(1)
    for _ in range(50):  # valid-length garbage must never crash or hang the rANS decoder
        junk = rng.integers(0, 256, size=e.payload.size, dtype=np.uint8)
        with pytest.raises(FormatError):
            storage.decode_codes(junk, "entropy", counts, e.params)
    with pytest.raises(FormatError, match="trailing"):
        storage.decode_codes(np.concatenate([e.payload, [7]]).astype(np.uint8), "entropy", counts, e.params)
    with pytest.raises(FormatError, match="ends too early"):
        storage.decode_codes(e.payload[:-1], "entropy", counts, e.params)
    with pytest.raises(FormatError, match="frequency table"):
        storage.decode_codes(e.payload, "entropy", counts, {"prob_bits": 16, "freqs": [1, 2, 3]})
    two = storage.encode_codes(codes, "2bit").payload.copy()
    two[0] = 0b10
    with pytest.raises(FormatError, match="0b10"):
        storage.decode_codes(two, "2bit", counts)
    b3 = storage.encode_codes(codes, "base3").payload.copy()
    b3[0] = 250
    with pytest.raises(FormatError, match="243"):
        storage.decode_codes(b3, "base3", counts)
    with pytest.raises(FormatError, match="bytes, expected"):
        storage.decode_codes(b3[:-1], "base3", counts)
    with pytest.raises(FormatError, match="counts"):
        storage.decode_codes(
            storage.encode_codes(codes, "2bit").payload, "2bit", (counts[0] - 1, counts[1] + 1, counts[2])
        )


def test_entropy_coder_near_bound_fast() -> None:
    codes = _random_codes(np.random.default_rng(5), (400, 500), 0.9)
    e = storage.encode_codes(codes, "entropy")
    bound = entropy_bound_bits(e.counts)
    assert 8 * e.payload.size <= 1.05 * bound
    assert 8 * e.payload.size >= bound - 64  # sanity: no code beats the bound by more than rounding


@pytest.mark.parametrize("eps", [0.5, 0.9, 0.95])
def test_entropy_coder_2000x2000(eps: float) -> None:
    codes = philox_ternary_codes(1, 0, (2000, 2000), eps)
    e = storage.encode_codes(codes, "entropy")
    bound = entropy_bound_bits(e.counts)
    assert 8 * e.payload.size <= 1.05 * bound
    assert 8 * e.payload.size <= 1.001 * bound + 64  # in practice within 0.1 %
    assert np.array_equal(
        storage.decode_codes(e.payload, "entropy", e.counts, e.params).reshape(2000, 2000), codes
    )


def test_pure_python_rans_matches_compiled() -> None:
    """The interpreted fallback (no numba) writes and reads the same stream as the compiled kernel."""
    codes = _random_codes(np.random.default_rng(9), (30, 40), 0.8).reshape(-1)
    e = storage.encode_codes(codes, "entropy")
    freqs = np.asarray(e.params["freqs"], dtype=np.int64)
    cum = np.array([0, freqs[0], freqs[0] + freqs[1]], dtype=np.int64)
    sym = np.array([1, 0, 2], dtype=np.uint8)[codes.astype(np.int64) + 1]
    out = np.zeros(2 * sym.size + 4, dtype=np.uint8)
    start = storage._rans_encode_impl(sym, freqs, cum, out)
    assert np.array_equal(out[start:], e.payload)
    back = np.zeros(sym.size, dtype=np.uint8)
    assert storage._rans_decode_impl(e.payload, freqs, cum, back) == 0
    assert np.array_equal(back, sym)


def test_entropy_bound_helper() -> None:
    assert entropy_bound_bits([5, 0, 0]) == 0.0
    assert entropy_bound_bits([2, 1, 1]) == pytest.approx(6.0)
    assert entropy_bound_bits([]) == 0.0


# ================================================================================================ seed mode


@pytest.fixture(scope="module")
def seeded_model(digits: tuple[np.ndarray, np.ndarray]) -> rc.CompressedMLP:
    """The compressed net with its codes replaced by Philox codes of seed 7, declared with ``with_weight_seed``."""
    X, y = digits
    m = rc.compress(SPEC, rc.NTKLCConfig(sparsity=0.9, method="lloyd-max", levels=4, seed=0))
    for i in range(SPEC.depth):
        w = getattr(m, f"w{i}")
        w.copy_(torch.from_numpy(philox_ternary_codes(7, i, tuple(w.shape), 0.9)))
    m = m.with_weight_seed(7)
    rc.fit_readout(m, X, y)
    return m


def test_seed_round_trip(
    seeded_model: rc.CompressedMLP, digits: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    path = tmp_path / "seed.safetensors"
    storage.save(seeded_model, path, encoding="seed")
    loaded = storage.load(path)
    _assert_same_model(seeded_model, loaded, digits[0])
    assert loaded.weight_seed == 7
    info = storage.inspect(path)
    assert [layer["encoding"] for layer in info["layers"]] == ["seed"] * 3
    assert all(layer["bytes"] == 0 and layer["seed"] == 7 for layer in info["layers"])
    assert set(info["tensors"]) == {"readout.coef", "readout.intercept"}
    entropy_size = len(storage.to_bytes(seeded_model, "entropy"))
    assert path.stat().st_size < entropy_size
    # weight_seed survives other encodings too
    assert storage.from_bytes(storage.to_bytes(seeded_model, "2bit")).weight_seed == 7


def test_seed_requires_weight_seed(model: rc.CompressedMLP) -> None:
    assert getattr(model, "weight_seed", None) is None
    with pytest.raises(ValueError, match=r"not generated from a Philox seed.*weight_sampling='philox'"):
        storage.to_bytes(model, "seed")


def test_seed_from_compress(digits: tuple[np.ndarray, np.ndarray]) -> None:
    """``compress(weight_sampling="philox")`` models store as their seed."""
    cfg = rc.NTKLCConfig(sparsity=0.9, seed=11, weight_sampling="philox")
    m = rc.compress(rc.MLPSpec(64, (50, 30), ("relu", "relu")), cfg)
    assert m.weight_seed == 11
    loaded = storage.from_bytes(storage.to_bytes(m, "seed"))
    _assert_same_model(m, loaded, digits[0])


def test_seed_checks_codes(seeded_model: rc.CompressedMLP) -> None:
    w0 = _buffer(seeded_model, 0)
    old = int(w0[0, 0])
    try:
        w0[0, 0] = 1 - abs(old)
        with pytest.raises(ValueError, match=r"layer 0: .*not philox_ternary_codes\(seed=7"):
            storage.to_bytes(seeded_model, "seed")
        storage.to_bytes(seeded_model, ["2bit", "seed", "seed"])  # the other layers are still seed codes
    finally:
        w0[0, 0] = old
    with pytest.raises(ValueError, match="seed=8"):
        storage.to_bytes(seeded_model.with_weight_seed(8), "seed")


def test_seed_regeneration_is_verified(
    seeded_model: rc.CompressedMLP, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = storage.to_bytes(seeded_model, "seed")

    def drifted(seed: int, layer: int, shape: tuple[int, int], sparsity: float) -> np.ndarray:
        c = philox_ternary_codes(seed, layer, shape, sparsity)
        c[0, 0] = 1 - abs(c[0, 0])
        return c

    monkeypatch.setattr(storage, "philox_ternary_codes", drifted)
    with pytest.raises(FormatError, match="regenerated from seed 7 differ"):
        storage.from_bytes(data)


def test_seed_layer_metadata_errors(seeded_model: rc.CompressedMLP) -> None:
    data = storage.to_bytes(seeded_model, "seed")

    def algo(doc: dict[str, Any]) -> None:
        doc["layers"][1]["algorithm"] = "mt19937"

    with pytest.raises(FormatError, match="unknown seed algorithm"):
        storage.from_bytes(_rewrite(data, algo))

    def other_seed(doc: dict[str, Any]) -> None:
        doc["layers"][2]["seed"] = 8

    with pytest.raises(FormatError, match="differ"):
        storage.from_bytes(_rewrite(data, other_seed))


# ================================================================================================ atomic save


def test_interrupted_save_keeps_previous_file(
    model: rc.CompressedMLP, seeded_model: rc.CompressedMLP, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.safetensors"
    storage.save(model, path)
    before = path.read_bytes()

    def half_then_fail(f: Any, data: bytes) -> None:
        f.write(data[: len(data) // 2])
        raise OSError("disk full (simulated)")

    monkeypatch.setattr("rmtcompress._utils._files._write_all", half_then_fail)
    with pytest.raises(OSError, match="simulated"):
        storage.save(seeded_model, path, encoding="2bit")
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.safetensors"]
    monkeypatch.undo()
    storage.save(seeded_model, path, encoding="2bit")
    assert storage.load(path).weight_seed == 7
    assert os.listdir(tmp_path) == ["model.safetensors"]


def test_save_into_missing_folder(model: rc.CompressedMLP, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        storage.save(model, tmp_path / "nope" / "m.safetensors")


# ================================================================================================ errors


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        storage.load(tmp_path / "absent.safetensors")
    with pytest.raises(FileNotFoundError):
        storage.inspect(tmp_path / "absent.safetensors")


def test_every_truncation_raises(model_bytes: bytes) -> None:
    for cut in range(len(model_bytes)):
        with pytest.raises(FormatError):
            storage.from_bytes(model_bytes[:cut])
    with pytest.raises(FormatError):
        storage.from_bytes(model_bytes + b"\x00")


def test_truncated_file_on_disk(model_bytes: bytes, tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    path.write_bytes(model_bytes[: len(model_bytes) * 2 // 3])
    with pytest.raises(FormatError, match="truncated"):
        storage.load(path)


def test_every_single_byte_flip_raises(model_bytes: bytes) -> None:
    """A flipped byte anywhere — length prefix, safetensors header, rmtcompress JSON, payloads — is caught."""
    data = bytearray(model_bytes)
    for pos in range(len(data)):
        for mask in (0x01, 0xFF):
            data[pos] ^= mask
            try:
                with pytest.raises(FormatError):
                    storage.from_bytes(bytes(data))
            finally:
                data[pos] ^= mask


@pytest.mark.parametrize("name", ["w0", "w1", "w2", "readout.coef", "readout.intercept"])
def test_payload_flip_names_tensor(name: str, model_bytes: bytes, tmp_path: Path) -> None:
    begin, end = _tensor_span(model_bytes, name)
    data = bytearray(model_bytes)
    data[(begin + end) // 2] ^= 0x10
    path = tmp_path / "flipped.safetensors"
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError, match=f"checksum mismatch in tensor '{name}'"):
        storage.load(path)
    info = storage.inspect(path)  # reports, does not raise
    assert info["tensors"][name]["checksum"] == "mismatch"
    assert not info["checksums_ok"]
    assert all(v["checksum"] == "ok" for k, v in info["tensors"].items() if k != name)


def test_not_safetensors(tmp_path: Path) -> None:
    for content in (b"", b"abc", b"hello, this is a text file\n" * 10, b"\xff" * 64):
        path = tmp_path / "x.bin"
        path.write_bytes(content)
        with pytest.raises(FormatError, match="safetensors"):
            storage.load(path)
    npz = tmp_path / "a.npz"
    np.savez(npz, a=np.arange(10))
    with pytest.raises(FormatError, match="safetensors"):
        storage.load(npz)


def test_plain_safetensors_file_is_not_a_model(tmp_path: Path) -> None:
    path = tmp_path / "plain.safetensors"
    safetensors.numpy.save_file({"w": np.zeros((2, 2), dtype=np.float32)}, str(path))
    with pytest.raises(FormatError, match="not an rmtcompress file"):
        storage.load(path)


def test_wrong_magic(model_bytes: bytes) -> None:
    def magic(doc: dict[str, Any]) -> None:
        doc["magic"] = "notrmt"

    with pytest.raises(FormatError, match="wrong magic 'notrmt'"):
        storage.from_bytes(_rewrite(model_bytes, magic))


def test_unknown_format_version(model_bytes: bytes) -> None:
    def v2(doc: dict[str, Any]) -> None:
        doc["format_version"] = 2

    with pytest.raises(FormatError, match="unsupported rmtcompress format version 2"):
        storage.from_bytes(_rewrite(model_bytes, v2))

    def vstr(doc: dict[str, Any]) -> None:
        doc["format_version"] = "1"

    with pytest.raises(FormatError, match="format_version must be an integer"):
        storage.from_bytes(_rewrite(model_bytes, vstr))
    assert storage.FORMAT_VERSION == 1


def test_metadata_checksum(model_bytes: bytes) -> None:
    def scale(doc: dict[str, Any]) -> None:
        doc["scales"][0] = 3.0

    with pytest.raises(FormatError, match="metadata checksum mismatch"):
        storage.from_bytes(_rewrite(model_bytes, scale, resign=False))


def _mutations() -> dict[str, tuple[Callable[[dict[str, Any]], None], str]]:
    def widths(doc: dict[str, Any]) -> None:
        doc["architecture"]["widths"][1] = 81

    def shape(doc: dict[str, Any]) -> None:
        doc["layers"][0]["shape"] = [64, 96]

    def counts(doc: dict[str, Any]) -> None:
        doc["layers"][2]["counts"][0] += 1

    def counts_moved(doc: dict[str, Any]) -> None:
        c = doc["layers"][2]["counts"]
        c[0], c[1] = c[0] - 1, c[1] + 1

    def encoding(doc: dict[str, Any]) -> None:
        doc["layers"][1]["encoding"] = "2bit"

    def unknown_encoding(doc: dict[str, Any]) -> None:
        doc["layers"][1]["encoding"] = "lzma"

    def centers(doc: dict[str, Any]) -> None:
        doc["centers"] = doc["centers"][:2]

    def tensor_entry(doc: dict[str, Any]) -> None:
        doc["tensors"]["w3"] = dict(doc["tensors"]["w0"])

    def tensor_sha(doc: dict[str, Any]) -> None:
        doc["tensors"]["w1"]["sha256"] = "0" * 64

    def tensor_dtype(doc: dict[str, Any]) -> None:
        doc["tensors"]["w1"]["dtype"] = "int8"

    def classes(doc: dict[str, Any]) -> None:
        doc["readout"]["classes"] = doc["readout"]["classes"][:-1]

    def activation(doc: dict[str, Any]) -> None:
        doc["architecture"]["activations"][0] = {
            "kind": "step",
            "name": "x",
            "breakpoints": [0.0],
            "values": [1.0],
        }

    def activation_kind(doc: dict[str, Any]) -> None:
        doc["architecture"]["activations"][0]["kind"] = "pickle"

    def spec_activation(doc: dict[str, Any]) -> None:
        doc["architecture"]["spec_activations"][0] = {"kind": "name", "name": "no-such-activation"}

    def freqs(doc: dict[str, Any]) -> None:
        doc["layers"][0]["freqs"] = [65536, 0, 0]

    def nan_scale(doc: dict[str, Any]) -> None:
        doc["scales"][0] = "nan"

    def no_layers(doc: dict[str, Any]) -> None:
        del doc["layers"]

    def layer_tensor(doc: dict[str, Any]) -> None:
        doc["layers"][1]["tensor"] = "w0"

    return {
        "widths": (widths, "shape"),
        "shape": (shape, "shape"),
        "counts": (counts, "counts"),
        "counts_moved": (counts_moved, "counts|malformed"),
        "encoding": (encoding, "2bit payload"),
        "unknown_encoding": (unknown_encoding, "not valid"),
        "centers": (centers, "centers"),
        "tensor_entry": (tensor_entry, "missing"),
        "tensor_sha": (tensor_sha, "checksum mismatch in tensor 'w1'"),
        "tensor_dtype": (tensor_dtype, "metadata says int8"),
        "classes": (classes, "readout"),
        "activation": (activation, "activation"),
        "activation_kind": (activation_kind, "unknown activation kind"),
        "spec_activation": (spec_activation, "no-such-activation"),
        "freqs": (freqs, "frequency table"),
        "nan_scale": (nan_scale, "scales"),
        "no_layers": (no_layers, "layers"),
        "layer_tensor": (layer_tensor, "already used"),
    }


@pytest.mark.parametrize("case", sorted(_mutations()))
def test_metadata_inconsistencies(case: str, model_bytes: bytes) -> None:
    mutate, match = _mutations()[case]
    with pytest.raises(FormatError, match=match):
        storage.from_bytes(_rewrite(model_bytes, mutate))


def test_missing_and_extra_tensors(model_bytes: bytes) -> None:
    tensors = safetensors.numpy.load(model_bytes)
    n = int.from_bytes(model_bytes[:8], "little")
    meta = json.loads(model_bytes[8 : 8 + n])["__metadata__"]
    fewer = {k: v for k, v in tensors.items() if k != "w2"}
    with pytest.raises(FormatError, match=r"missing \['w2'\]"):
        storage.from_bytes(bytes(safetensors.numpy.save(fewer, metadata=meta)))
    more = {**tensors, "extra": np.zeros(3, dtype=np.uint8)}
    with pytest.raises(FormatError, match=r"unexpected \['extra'\]"):
        storage.from_bytes(bytes(safetensors.numpy.save(more, metadata=meta)))


# ================================================================================================ inspect


def test_inspect(model: rc.CompressedMLP, tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    storage.save(model, path, encoding=["2bit", "base3", "entropy"])
    info = storage.inspect(path)
    assert info["magic"] == "rmtcompress" and info["format_version"] == 1
    assert info["library_version"] == rc.__version__
    assert info["file_bytes"] == path.stat().st_size
    assert info["header_bytes"] + info["payload_bytes"] == info["file_bytes"]
    assert info["metadata_checksum"] == "ok" and info["checksums_ok"]
    assert info["architecture"]["widths"] == (96, 80, 40)
    shapes = [(96, 64), (80, 96), (40, 80)]
    for layer, shape, enc in zip(info["layers"], shapes, ["2bit", "base3", "entropy"], strict=True):
        n = shape[0] * shape[1]
        assert layer["shape"] == shape and layer["encoding"] == enc and layer["checksum"] == "ok"
        assert layer["bits_per_weight"] == pytest.approx(8 * layer["bytes"] / n)
        assert sum(layer["counts"].values()) == n
        assert 0 < layer["entropy_bound_bits_per_weight"] < math.log2(3)
    assert info["layers"][0]["bytes"] == -(-96 * 64 // 4)
    assert info["layers"][1]["bytes"] == -(-80 * 96 // 5)
    assert info["layers"][2]["ratio_to_bound"] < 1.1
    assert info["readout"]["classes"] == list(range(10))
    # the default readout sees the thermometer indicators: (k − 1)·d_L = 3·40 inputs
    assert model.thermometer
    assert info["readout"]["coef_shape"] == (3 * 40, 10)
    assert info["tensors"]["readout.coef"]["dtype"] == "float64"
    md = info["metadata"]
    assert md["model"]["method"] == "lloyd-max" and md["model"]["sparsity"] == 0.9
    assert md["architecture"]["activations"][0]["kind"] == "step"
    assert len(md["centers"]) == 3 and len(md["scales"]) == 3
    assert set(md["tensors"]) == {"w0", "w1", "w2", "readout.coef", "readout.intercept"}
    assert all(len(t["sha256"]) == 64 for t in md["tensors"].values())
    json.dumps(info, default=str)  # printable


def test_inspect_rejects_non_model_files(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("not a model")
    with pytest.raises(FormatError):
        storage.inspect(path)
