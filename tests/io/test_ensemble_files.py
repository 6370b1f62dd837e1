"""Ensembles (rc.pruning.Ensemble) in quantized-net files: format version 4, one file for all members."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

from rmtcompress.errors import FormatError, InvalidParameterError
from rmtcompress.io import inspect, load, model_file_bytes, save, to_file_bytes
from rmtcompress.pruning import (
    Ensemble,
    MagnitudeConfig,
    QuantizedActivation,
    WeightSharingConfig,
    make_mlp,
    prune,
    quantize_activations,
    quantize_weights,
    remove,
)


def _member(
    seed: int, widths: tuple[int, ...] = (16, 8), bits: int = 2, sparsity: float = 0.7
) -> nn.Sequential:
    net = make_mlp(12, widths, 3, seed=seed)
    prune(net, MagnitudeConfig(sparsity=sparsity))
    remove(net)
    return quantize_weights(net, WeightSharingConfig(bits=bits), seed=seed).eval()


def test_forward_is_the_mean_of_the_members() -> None:
    a, b, c = _member(0), _member(1, (5,)), _member(2, bits=3)
    x = torch.randn(6, 12)
    with torch.no_grad():
        torch.testing.assert_close(Ensemble([a, b, c])(x), (a(x) + b(x) + c(x)) / 3)
        torch.testing.assert_close(Ensemble([a])(x), a(x))
    with pytest.raises(InvalidParameterError, match="at least one member"):
        Ensemble([])
    with pytest.raises(InvalidParameterError, match="member 1"):
        Ensemble([a, "net"])  # type: ignore[list-item]


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(1, 4),
    seed=st.integers(0, 1000),
    widths=st.lists(st.integers(1, 9), min_size=1, max_size=2),
    biases=st.sampled_from(["float32", "float16"]),
)
def test_round_trip_and_size_are_the_members_files_less_their_shared_parts(
    n: int, seed: int, widths: list[int], biases: str
) -> None:
    members = [_member(seed + m, tuple(widths)) for m in range(n)]
    ens = Ensemble(members).eval()
    data = to_file_bytes(ens, biases=biases)
    # one magic, version byte and checksum for all (4 + 1 + 32 bytes), plus the member count (one byte)
    singles = [model_file_bytes(m, biases=biases) for m in members]
    assert len(data) == sum(singles) - 37 * (n - 1) + 1
    assert data[4] == 4 and all(to_file_bytes(m, biases=biases)[4] == 3 for m in members)  # single nets: v3
    from rmtcompress.io import quantized_from_bytes

    back = quantized_from_bytes(data)
    assert isinstance(back, Ensemble) and len(back.members) == n
    x = torch.randn(5, 12)
    with torch.no_grad():
        want = ens(x) if biases == "float32" else None
        got = back(x)
        if want is not None:
            torch.testing.assert_close(got, want, rtol=0, atol=0)
        for m_back, m in zip(back.members, members, strict=True):
            for (name, p), (_, q) in zip(m_back.named_parameters(), m.named_parameters(), strict=True):
                if biases == "float16" and name.endswith("bias"):
                    q = q.to(torch.float16).to(torch.float32)
                torch.testing.assert_close(p, q, rtol=0, atol=0, msg=name)


def test_save_load_inspect_and_activation_quantizers(tmp_path: Path) -> None:
    rows = torch.rand(64, 12).numpy().astype(np.float64)
    a = quantize_activations(_member(0), rows, levels=4, seed=0)
    b = _member(1, (6, 6))
    ens = Ensemble([a, b]).eval()
    path = tmp_path / "ens.rmtc"
    save(ens, path)
    assert path.stat().st_size == model_file_bytes(ens)
    back = load(path)
    assert isinstance(back, Ensemble) and any(isinstance(m, QuantizedActivation) for m in back.modules())
    x = torch.rand(9, 12)
    with torch.no_grad():
        torch.testing.assert_close(back(x), ens(x), rtol=0, atol=0)
    report = inspect(path)
    assert report["members"] == 2 and report["format_version"] == 4
    assert [layer["name"] for layer in report["layers"]] == [
        "members.0.0",
        "members.0.2",
        "members.0.4",
        "members.1.0",
        "members.1.2",
        "members.1.4",
    ]
    assert report["file_bytes"] == path.stat().st_size
    single = tmp_path / "one.rmtc"
    save(b, single)
    assert inspect(single)["members"] == 1 and inspect(single)["format_version"] == 3


def test_bad_ensembles_are_refused_and_leave_no_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.rmtc"
    with pytest.raises(InvalidParameterError, match=r"member 'members\.1'.*Linear"):
        save(Ensemble([_member(0), nn.Linear(12, 3)]), path)
    with pytest.raises(InvalidParameterError, match="no weight layer"):
        save(Ensemble([_member(0), nn.Sequential(nn.ReLU())]), path)
    nan = _member(1)
    with torch.no_grad():
        nan[0].bias[0] = float("nan")
    with pytest.raises(InvalidParameterError, match=r"members\.1\.0.*NaN"):
        save(Ensemble([_member(0), nan]), path)
    assert not path.exists() and not list(tmp_path.iterdir())


def _resign(body: bytes) -> bytes:
    return body + hashlib.sha256(body).digest()


def test_corrupt_ensemble_files_raise_format_error(tmp_path: Path) -> None:
    data = to_file_bytes(Ensemble([_member(0), _member(1)]))
    body = data[:-32]
    assert body[5] == 2  # the member count
    cases = {
        "no member": _resign(body[:5] + b"\x00" + body[6:]),
        "a missing member": _resign(body[:5] + b"\x03" + body[6:]),
        "trailing bytes": _resign(body[:5] + b"\x01" + body[6:]),
        "truncated": data[:-40],
        "flipped byte": data[:50] + bytes([data[50] ^ 0xFF]) + data[51:],
    }
    for what, bad in cases.items():
        path = tmp_path / "x.rmtc"
        path.write_bytes(bad)
        with pytest.raises(FormatError):
            load(path)
        with pytest.raises(FormatError):
            inspect(path)
        assert what


def test_cli_inspect_names_the_ensemble(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from rmtcompress.cli import main

    path = tmp_path / "ens.rmtc"
    save(Ensemble([_member(0), _member(1)]), path)
    res = CliRunner().invoke(main, ["inspect", str(path)])
    assert res.exit_code == 0, res.output
    assert "ensemble of 2 quantized nets, format RCQW v4" in res.output and "members.1.4" in res.output


def test_members_with_input_transforms_round_trip() -> None:
    from rmtcompress.core import InputTransform, InputTransformLayer
    from rmtcompress.io import quantized_from_bytes

    t = InputTransform(12, [0.0], [2.0])
    ens = Ensemble([nn.Sequential(InputTransformLayer(t), *_member(s)) for s in (0, 1)]).eval()
    back = quantized_from_bytes(to_file_bytes(ens))
    assert all(isinstance(m[0], InputTransformLayer) for m in back.members)
    x = torch.rand(4, 12)
    with torch.no_grad():
        torch.testing.assert_close(back(x), ens(x), rtol=0, atol=0)


def test_cli_predict_averages_the_members(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from rmtcompress.cli import main

    ens = Ensemble([_member(0), _member(1, (6,))]).eval()
    path, data, out = tmp_path / "ens.rmtc", tmp_path / "x.npz", tmp_path / "pred.npy"
    save(ens, path)
    X = np.random.default_rng(0).random((40, 12))
    np.savez(data, X=X)
    res = CliRunner().invoke(main, ["predict", str(path), str(data), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    got = np.load(out)
    with torch.no_grad():
        want = ens(torch.from_numpy(X.astype(np.float32))).numpy()
    np.testing.assert_allclose(got[:, 1:], want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got[:, 0], want.argmax(1))
