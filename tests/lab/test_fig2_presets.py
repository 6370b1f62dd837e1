"""The Fig. 2 presets of :func:`rmtcompress.lab.run_spectra` at toy size, on the real data they name.

What is checked:

* ``fig2-right`` on the MNIST 5k subset: the preset is what the paper's caption says — classes 6 vs 8 in equal
  numbers with the first n/2 rows of class 6, the paper's normalisation (τ̂_0 = 1), activations [poly, ReLU, ReLU],
  symmetric Bernoulli (±1) weights — and the sampled E[K] with those weights converges to the exact (Gaussian-law)
  limit as draws are added: with 8× the draws the error shrinks like noise (≈ 1/√8) and ends below 0.15 relative;
  its paper-size configuration is n = 3200, widths (2000, 2000, 1000), 1000 draws;
* the report gives ‖K − K̃‖₂ (what the paper quotes) beside the relative error, and they agree with each other and
  with the kernels themselves: op_error = ‖K − K̃‖₂ and rel_error = op_error/‖K‖₂ recomputed from the captured
  kernels, for every comparison of the report, in the JSON written to disk too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rmtcompress as rc
from rmtcompress.lab import SpectraConfig, _fig2, run_spectra

pytestmark = pytest.mark.usefixtures("single_threaded")


class _Capture:
    """Wraps the kernel functions run_spectra calls and keeps their inputs and outputs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.kernels: dict[str, np.ndarray] = {}
        self.calls: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
        for name in ("ck_empirical", "ck_equivalent", "ck_limit"):
            monkeypatch.setattr(_fig2, name, self._wrap(name, getattr(_fig2, name)))

    def _wrap(self, name: str, fn: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> np.ndarray:
            self.calls[name] = (args, kwargs)
            self.kernels[name] = np.asarray(fn(*args, **kwargs))
            return self.kernels[name]

        return wrapped


def _check_errors(report: dict[str, Any], kernels: dict[str, np.ndarray]) -> None:
    K = {
        "sampled": kernels["ck_empirical"],
        "equivalent": kernels["ck_equivalent"],
        "limit": kernels["ck_limit"],
    }
    for key, (a, b) in {
        "sampled_vs_equivalent": ("sampled", "equivalent"),
        "limit_vs_equivalent": ("limit", "equivalent"),
        "sampled_vs_limit": ("sampled", "limit"),
    }.items():
        s = report[key]
        op = np.linalg.norm(K[a] - K[b], 2)
        norm = np.linalg.norm(K[a], 2)
        assert s["op_error"] == pytest.approx(op, rel=1e-9), key
        assert s["ref_norm"] == pytest.approx(norm, rel=1e-9), key
        assert s["rel_error"] == pytest.approx(s["op_error"] / s["ref_norm"], rel=1e-12), key
        assert s["rel_error"] == pytest.approx(op / norm, rel=1e-9), key
        assert s["op_error"] > 0.0


def test_fig2_right_is_the_papers_setting_and_converges_with_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    assert SpectraConfig(preset="fig2-right", paper_size=True).resolved() == {
        "n": 3200,
        "p": 784,
        "widths": (2000, 2000, 1000),
        "draws": 1000,
    }
    images = _fig2.load_mnist_subset()  # ≈ 4 s to parse: once for both runs
    monkeypatch.setattr(_fig2, "load_mnist_subset", lambda: images)
    errors = {}
    for draws in (4, 32):
        cap = _Capture(monkeypatch)
        report = run_spectra(SpectraConfig(preset="fig2-right", n=160, widths=(256, 256, 128), draws=draws))
        (X, acts, widths), kw = cap.calls["ck_empirical"]
        assert report["n"] == report["n_requested"] == 160
        assert report["activations"] == ["poly", "relu", "relu"] == list(acts)
        assert report["weights"] == "bernoulli" == kw["weights"]
        assert list(widths) == [256, 256, 128] and kw["draws"] == draws
        assert "classes 6 vs 8, 80 per class" in report["data"]
        assert X.shape == (160, 784)
        assert rc.estimate_tau0(X) == pytest.approx(1.0, abs=1e-12)  # the paper's normalisation
        y = cap.calls["ck_equivalent"][0][1]
        np.testing.assert_array_equal(y, np.repeat([0, 1], 80))  # first n/2 rows: class 6
        _check_errors(report, cap.kernels)
        errors[draws] = report["sampled_vs_limit"]["rel_error"]
    assert errors[32] < 0.15, errors
    assert errors[32] < 0.6 * errors[4], errors  # noise: ≈ √(4/32) = 0.35 expected


def test_fig2_left_report_gives_the_absolute_and_relative_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cap = _Capture(monkeypatch)
    report = run_spectra(
        SpectraConfig(preset="fig2-left", n=128, p=64, widths=(64, 64, 32), draws=3), tmp_path
    )
    _check_errors(report, cap.kernels)
    on_disk = json.loads((tmp_path / "fig2-left.json").read_text())
    for key in ("sampled_vs_equivalent", "limit_vs_equivalent", "sampled_vs_limit"):
        for field in ("op_error", "rel_error", "ref_norm"):
            assert on_disk[key][field] == pytest.approx(report[key][field], rel=1e-15)


def test_draw_ranges_combine_into_the_whole_run() -> None:
    """ck_empirical over draws [0, 2) and [2, 5), weighted by their counts, is the run over [0, 5)."""
    X = np.random.default_rng(0).standard_normal((12, 6))
    kw: dict[str, Any] = {"weights": "gaussian", "seed": 3, "dtype": "float64"}
    whole = rc.ck_empirical(X, ["relu", "relu"], [16, 8], draws=5, **kw)
    a = rc.ck_empirical(X, ["relu", "relu"], [16, 8], draws=2, first_draw=0, **kw)
    b = rc.ck_empirical(X, ["relu", "relu"], [16, 8], draws=3, first_draw=2, **kw)
    np.testing.assert_allclose((2 * a + 3 * b) / 5, whole, rtol=1e-12, atol=1e-14)
    assert not np.allclose(a, b)  # other draws
    with pytest.raises(ValueError, match="first_draw"):
        rc.ck_empirical(X, ["relu"], [4], draws=1, first_draw=-1)


def test_an_interrupted_checkpointed_run_resumes_to_the_one_pass_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """checkpoint_every: a run stopped after its first chunk leaves <preset>.partial.npz; started again it reads
    those draws back (resumed_draws), computes the rest and gives the one-pass kernel; the checkpoint is then
    gone, and a checkpoint of other settings is refused by name."""
    cfg = SpectraConfig(preset="fig2-left", n=24, p=16, widths=(16, 16, 8), draws=5, dtype="float64")
    one = _Capture(monkeypatch)
    run_spectra(cfg)
    whole = one.kernels["ck_empirical"]
    monkeypatch.undo()
    real = _fig2.ck_empirical
    calls: list[int] = []

    def flaky(*args: Any, **kwargs: Any) -> np.ndarray:
        calls.append(kwargs["first_draw"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return np.asarray(real(*args, **kwargs))

    monkeypatch.setattr(_fig2, "ck_empirical", flaky)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_spectra(cfg, out, checkpoint_every=2)
    state = out / "fig2-left.partial.npz"
    assert state.exists() and calls == [0, 2]
    monkeypatch.setattr(_fig2, "ck_empirical", real)
    cap = _Capture(monkeypatch)
    report = run_spectra(cfg, out, checkpoint_every=2)
    assert report["resumed_draws"] == 2 and not state.exists()
    assert cap.calls["ck_empirical"][1]["first_draw"] == 4  # only the draws not read back were computed
    emp = json.loads((out / "fig2-left.json").read_text())["sampled_vs_equivalent"]["op_error"]
    K_eq = cap.kernels["ck_equivalent"]
    np.testing.assert_allclose(emp, np.linalg.norm(whole - K_eq, 2), rtol=1e-10)
    # a checkpoint of other settings is refused, naming the file
    monkeypatch.setattr(_fig2, "ck_empirical", flaky)
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        run_spectra(cfg, out, checkpoint_every=2)
    monkeypatch.setattr(_fig2, "ck_empirical", real)
    other = SpectraConfig(preset="fig2-left", n=24, p=16, widths=(16, 16, 8), draws=5, seed=1)
    with pytest.raises(rc.InvalidParameterError, match=r"partial\.npz"):
        run_spectra(other, out, checkpoint_every=2)
    with pytest.raises(rc.InvalidParameterError, match="output folder"):
        run_spectra(cfg, None, checkpoint_every=2)
