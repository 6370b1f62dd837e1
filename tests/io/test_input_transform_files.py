"""Model files carry the input preprocessing: every format stores the input transform, the loaded model applies it,
old (version-1) files without it still load, a corrupt record is a FormatError."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors.numpy
import torch
from torch import nn

import rmtcompress as rc
from rmtcompress.core import InputTransform, InputTransformLayer
from rmtcompress.errors import FormatError, InputScaleWarning, InvalidParameterError
from rmtcompress.io import inspect, load, save, to_file_bytes
from rmtcompress.io._container import METADATA_KEY, METADATA_SHA256_KEY
from rmtcompress.pruning import (
    MagnitudeConfig,
    TrainConfig,
    UniformWeightConfig,
    make_mlp,
    prune,
    quantize_activations,
    quantize_weights,
    train,
)


@pytest.fixture(scope="module")
def task() -> Any:
    """Raw digits (pixels 0..16), the train split's normaliser and the normalised train split."""
    X, y = rc.load_digits_data()
    Xtr, ytr, Xte, yte = X[:1400], y[:1400], X[1400:], y[1400:]
    t = rc.PaperNormalizer().fit(Xtr).to_input_transform()
    return Xtr, ytr, Xte, yte, t


@pytest.fixture(scope="module")
def ntklc(task: Any) -> rc.CompressedMLP:
    Xtr, ytr, _, _, t = task
    Xn = t.apply(Xtr)
    m = rc.compress(rc.MLPSpec(64, (64, 32), "relu"), rc.NTKLCConfig(seed=0), X=Xn)
    rc.fit_readout(m, Xn, ytr)
    return m


@pytest.fixture(scope="module")
def mlp(task: Any) -> nn.Sequential:
    Xtr, ytr, _, _, t = task
    torch.set_num_threads(1)
    m = make_mlp(64, (32,), 10, seed=0)
    train(m, t.apply(Xtr), ytr, TrainConfig(epochs=4, lr=1e-2, seed=0))
    prune(m, MagnitudeConfig(sparsity=0.7))
    return m


def _with_transform(net: nn.Module, t: InputTransform) -> nn.Sequential:
    return nn.Sequential(OrderedDict([("input", InputTransformLayer(t)), *net.named_children()]))


def _logits(net: nn.Module, X: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(X.astype(np.float32))).numpy()


def test_ntklc_file_stores_the_transform(ntklc: rc.CompressedMLP, task: Any, tmp_path: Path) -> None:
    _, _, Xte, yte, t = task
    expected = ntklc.predict(t.apply(Xte))  # the in-memory net on normalised inputs
    with pytest.warns(InputScaleWarning, match=r"the inputs have RMS row norm .*× the training inputs' \(1"):
        wrong = ntklc.score(Xte, yte)  # raw pixels into a net without the record (checked against tau0)
    ntklc.set_input_transform(t)
    try:
        path = tmp_path / "m.rmt"
        save(ntklc, path)
        m = load(path)
    finally:
        ntklc.set_input_transform(None)
    assert m.input_transform == t
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputScaleWarning)
        np.testing.assert_array_equal(m.predict(Xte), expected)  # raw pixels in, the right answers out
        acc = m.score(Xte, yte)
    assert acc == ntklc.score(t.apply(Xte), yte) and acc > wrong + 0.2
    with pytest.warns(InputScaleWarning, match="spread around their mean .* normalised twice"):
        m.predict(t.apply(Xte))  # the old workflow: already normalised inputs
    assert inspect(path)["input_transform"] == t.describe()
    assert inspect(path)["format_version"] == 2


def test_without_a_transform_nothing_changes(ntklc: rc.CompressedMLP) -> None:
    data = to_file_bytes(ntklc)
    assert b"input_transform" not in data and rc.io.from_bytes(data).input_transform is None


@pytest.mark.parametrize("kind", ["pruned", "quantized", "activations"])
def test_sequential_files_store_the_transform(
    mlp: nn.Sequential, task: Any, tmp_path: Path, kind: str
) -> None:
    Xtr, _, Xte, _, t = task
    if kind == "quantized":
        net = quantize_weights(mlp, UniformWeightConfig(bits=4))
    elif kind == "activations":
        net = quantize_activations(mlp, t.apply(Xtr), levels=4)
    else:
        net = mlp
    wrapped = _with_transform(net, t)
    path = tmp_path / "net.rmt"
    save(wrapped, path)
    loaded = load(path)
    first = next(iter(loaded.children()))
    assert isinstance(first, InputTransformLayer) and first.transform == t
    assert list(dict(loaded.named_children())) == list(dict(wrapped.named_children()))
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputScaleWarning)
        np.testing.assert_allclose(_logits(loaded, Xte), _logits(net, t.apply(Xte)), rtol=0, atol=1e-5)
    assert inspect(path)["input_transform"] == t.describe()
    with pytest.warns(InputScaleWarning, match="normalised twice"):
        _logits(loaded, t.apply(Xte))  # already normalised: normalised twice


def test_transform_must_come_first(mlp: nn.Sequential, task: Any) -> None:
    t = task[4]
    net = nn.Sequential(*mlp.children(), InputTransformLayer(InputTransform(10, [0.0], [1.0])))
    with pytest.raises(InvalidParameterError, match="must be the first module"):
        to_file_bytes(net)
    with pytest.raises(InvalidParameterError, match="must be the first module"):
        to_file_bytes(
            nn.Sequential(*quantize_weights(mlp, UniformWeightConfig(bits=4)), InputTransformLayer(t))
        )
    m = rc.compress(rc.MLPSpec(64, (8,), "relu"))
    with pytest.raises(InvalidParameterError, match="maps 3 features but the net takes 64"):
        m.set_input_transform(InputTransform(3, [0.0], [1.0]))


# --------------------------------------------------------------------------------------------- old files, corruption


def _rewrite(data: bytes, mutate: Callable[[dict[str, Any], dict[str, np.ndarray]], None]) -> bytes:
    """Edit a safetensors file's JSON document and tensors, re-signing the document (tensor table recomputed)."""
    tensors = dict(safetensors.numpy.load(data))
    n = int.from_bytes(data[:8], "little")
    doc = json.loads(json.loads(data[8 : 8 + n])["__metadata__"][METADATA_KEY])
    mutate(doc, tensors)
    doc["tensors"] = {
        k: {"dtype": a.dtype.name, "shape": list(a.shape), "sha256": hashlib.sha256(a.tobytes()).hexdigest()}
        for k, a in tensors.items()
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    meta = {METADATA_KEY: text, METADATA_SHA256_KEY: hashlib.sha256(text.encode()).hexdigest()}
    return bytes(safetensors.numpy.save(tensors, metadata=meta))


def _as_version_1(doc: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
    doc["format_version"] = 1


def test_version_1_files_still_load(ntklc: rc.CompressedMLP, mlp: nn.Sequential, task: Any) -> None:
    Xte = task[2]
    old = _rewrite(to_file_bytes(ntklc), _as_version_1)  # what the previous release wrote
    m = rc.io.from_bytes(old)
    assert m.input_transform is None
    np.testing.assert_array_equal(m.readout_inputs(Xte[:20]), ntklc.readout_inputs(Xte[:20]))
    old_pruned = rc.io.pruned_from_bytes(_rewrite(to_file_bytes(mlp), _as_version_1))
    np.testing.assert_array_equal(
        _logits(old_pruned, Xte), _logits(rc.io.pruned_from_bytes(to_file_bytes(mlp)), Xte)
    )
    q = quantize_weights(mlp, UniformWeightConfig(bits=4))
    data = bytearray(to_file_bytes(q, "entropy"))  # version 3 without context-coded positions
    assert data[4] & 0x7F == 3
    data[4] = (data[4] & 0x80) | 1
    body = bytes(data[:-32])
    old_q = rc.io.quantized_from_bytes(body + hashlib.sha256(body).digest())
    np.testing.assert_array_equal(_logits(old_q, Xte), _logits(q, Xte))


def test_version_1_cannot_hold_a_transform(ntklc: rc.CompressedMLP, mlp: nn.Sequential, task: Any) -> None:
    t = task[4]
    ntklc.set_input_transform(t)
    try:
        data = to_file_bytes(ntklc)
    finally:
        ntklc.set_input_transform(None)
    with pytest.raises(FormatError, match="version-1 file cannot hold"):
        rc.io.from_bytes(_rewrite(data, _as_version_1))
    with pytest.raises(FormatError, match="unknown layer type 'input_transform'"):
        rc.io.pruned_from_bytes(_rewrite(to_file_bytes(_with_transform(mlp, t)), _as_version_1))
    q = bytearray(to_file_bytes(_with_transform(quantize_weights(mlp, UniformWeightConfig(bits=4)), t)))
    q[4] = (q[4] & 0x80) | 1
    body = bytes(q[:-32])
    with pytest.raises(FormatError, match="kind 40 does not exist in format version 1"):
        rc.io.quantized_from_bytes(body + hashlib.sha256(body).digest())


def _ntklc_doc(key: str, value: Any) -> Callable[[dict[str, Any], dict[str, np.ndarray]], None]:
    def mutate(doc: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
        doc["input_transform"][key] = value

    return mutate


def _negative_scale(doc: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
    tensors["input.scale"] = -tensors["input.scale"]


def _float32_shift(doc: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
    tensors["input.shift"] = tensors["input.shift"].astype(np.float32)


def _drop_shift(doc: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
    del tensors["input.shift"]


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (_ntklc_doc("kind", "log"), "kind must be 'affine'"),
        (_ntklc_doc("n_features", 63), "1 or 63 values"),
        (_ntklc_doc("input_scale", -1.0), "input_scale"),
        (_ntklc_doc("input_scale", "big"), "input_scale"),
        (_ntklc_doc("shift_tensor", "w0"), "must be float64"),
        (_negative_scale, "scale must be > 0"),
        (_float32_shift, "must be float64"),
        (_drop_shift, "must be float64 of 1 or 64 values, got missing"),
    ],
)
def test_corrupt_transform_record_is_a_format_error(
    ntklc: rc.CompressedMLP, task: Any, mutate: Callable[..., None], match: str
) -> None:
    ntklc.set_input_transform(task[4])
    try:
        data = to_file_bytes(ntklc)
    finally:
        ntklc.set_input_transform(None)
    with pytest.raises(FormatError, match=match):
        rc.io.from_bytes(_rewrite(data, mutate))


def test_corrupt_binary_transform_record(mlp: nn.Sequential, task: Any) -> None:
    t = task[4]
    q = quantize_weights(mlp, UniformWeightConfig(bits=4))
    data = bytearray(to_file_bytes(_with_transform(q, t)))
    # record: kind 40 | u8 1 | uv 64 | uv 64, f64×64 shift | uv 1, f64 scale | u8 flags | f64 scale, spread
    start = data.index(bytes([40, 1, 64, 64]))
    scale_at = start + 4 + 8 * 64 + 1
    data[scale_at : scale_at + 8] = np.array([-1.0]).tobytes()
    body = bytes(data[:-32])
    with pytest.raises(FormatError, match=r"invalid input transform: .*scale must be > 0"):
        rc.io.quantized_from_bytes(body + hashlib.sha256(body).digest())
    flipped = bytearray(to_file_bytes(_with_transform(q, t)))
    flipped[start + 10] ^= 1
    with pytest.raises(FormatError, match="SHA-256 mismatch"):
        rc.io.quantized_from_bytes(bytes(flipped))
