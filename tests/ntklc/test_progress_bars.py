"""Progress bars of fit_readout and finetune (issue 21: the README's main snippet ran minutes without output).

The bar goes to stderr, names each phase, and changes nothing in the result; by default it shows only on a terminal.
"""

from __future__ import annotations

import numpy as np
import pytest

import rmtcompress as rc


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    X, y = rc.load_digits_data()
    return rc.PaperNormalizer().fit(X).transform(X[:600]), y[:600]


def _model(X: np.ndarray) -> rc.CompressedMLP:
    return rc.compress(rc.MLPSpec(64, (96, 64), ("relu", "relu")), rc.NTKLCConfig(sparsity=0.9), X=X)


def test_fit_readout_bar_names_its_phases_and_changes_nothing(
    data: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    X, y = data
    quiet, shown = _model(X), _model(X)
    rc.fit_readout(quiet, X, y, progress=False)
    assert capsys.readouterr().err == ""
    rc.fit_readout(shown, X, y, progress=True)
    err = capsys.readouterr().err
    for phase in ("Gram (n=600)", "λ path", "refit", "phase 3/3 done"):
        assert phase in err, phase
    assert np.array_equal(quiet.decision_function(X), shown.decision_function(X))


def test_fit_readout_bar_is_off_when_stderr_is_not_a_terminal(
    data: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    X, y = data
    rc.fit_readout(_model(X), X, y)  # progress=None: pytest's captured stderr is not a TTY
    assert capsys.readouterr().err == ""


def test_finetune_bar_counts_batches_and_epochs(
    data: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    X, y = data
    model = _model(X)
    rc.fit_readout(model, X, y)
    cfg = rc.FinetuneConfig(epochs=2, batch_size=100)
    quiet = rc.finetune(model, X, y, cfg, progress=False)
    assert capsys.readouterr().err == ""
    shown = rc.finetune(model, X, y, cfg, progress=True)
    err = capsys.readouterr().err
    n_batches = 2 * int(np.ceil(quiet.finetune_report.n_train / 100))
    assert f"0/{n_batches} " in err and "epoch 2/2, val 0." in err  # total = epochs × batches
    assert np.array_equal(quiet.decision_function(X), shown.decision_function(X))


def test_calibrate_bar_counts_layers(
    data: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    X, _ = data
    base = rc.compress(
        rc.MLPSpec(64, (96, 64), ("relu", "relu")), rc.NTKLCConfig(sparsity=0.9, calibrate=False), X=X
    )
    quiet = rc.calibrate(base, X, progress=False)
    assert capsys.readouterr().err == ""
    shown = rc.calibrate(base, X, progress=True)
    err = capsys.readouterr().err
    assert "calibrate:" in err and "/2 " in err and "n=600" in err
    assert np.array_equal(quiet.features(X), shown.features(X))
