"""Models own their state (issue 19 item 5): the classifier, fine-tune report, weight seed and fast path go through
methods (the old attribute assignments warn), provenance is a structured record, and ``forward`` has one meaning."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import rmtcompress as rc
from rmtcompress import io as rio
from rmtcompress.errors import InvalidParameterError, RmtcompressDeprecationWarning
from rmtcompress.lab import load_task
from rmtcompress.ntklc import Provenance, ProvenanceStep

SPEC = rc.MLPSpec(64, (40, 24), ("relu", "relu"))


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn digits (first 600 training rows, normalised on the training split)."""
    task = load_task("digits", seed=0)
    return np.asarray(task.X_train[:600]), np.asarray(task.y_train[:600])


@pytest.fixture()
def model(data: tuple[np.ndarray, np.ndarray]) -> rc.CompressedMLP:
    X, y = data
    m = rc.compress(SPEC, rc.NTKLCConfig(sparsity=0.8, levels=4, seed=2), X=X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RmtcompressDeprecationWarning)
        rc.fit_readout(m, X, y)  # through set_classifier: no deprecation warning
    return m


def test_set_classifier_validates_and_predicts(model: rc.CompressedMLP, data: Any) -> None:
    X, _ = data
    clf = model.classifier
    assert clf is not None and clf.coef.shape[0] == model.readout_dim == 3 * 24  # thermometer, k = 4
    scores = model.decision_function(X)
    np.testing.assert_array_equal(scores, clf.decision_function(np.asarray(model.readout_inputs(X))))
    np.testing.assert_array_equal(model.predict(X), clf.classes[np.argmax(scores, axis=1)])
    with pytest.raises(InvalidParameterError, match="must be a LinearReadout"):
        model.set_classifier("ridge")  # type: ignore[arg-type]
    short = rc.LinearReadout(clf.coef[:10], clf.intercept, clf.classes, "ridge", {})
    with pytest.raises(InvalidParameterError, match="reads 10 inputs but this model gives 72"):
        model.set_classifier(short)
    assert model.set_classifier(None) is model and model.classifier is None
    with pytest.raises(InvalidParameterError, match="not trained"):
        model.decision_function(X)


def test_old_attribute_assignments_warn_and_still_work(model: rc.CompressedMLP, data: Any) -> None:
    clf = model.classifier
    with pytest.warns(RmtcompressDeprecationWarning, match=r"set_classifier\(classifier\)"):
        model.classifier = None
    assert model.classifier is None
    with pytest.warns(RmtcompressDeprecationWarning, match=r"set_classifier"):
        model.classifier = clf
    assert model.classifier is clf
    with pytest.warns(RmtcompressDeprecationWarning, match=r"with_weight_seed\(seed\)"):
        model.weight_seed = 5
    assert model.weight_seed == 5
    with pytest.warns(RmtcompressDeprecationWarning, match="finetune_report=report"):
        model.finetune_report = "r"
    assert model.finetune_report == "r"
    with pytest.warns(RmtcompressDeprecationWarning, match=r"use_fast_kernel\(enabled\)"):
        model.fast = True
    assert model.fast
    with pytest.raises(AttributeError):
        model.method = "other"  # type: ignore[misc]


def test_fast_kernel_and_weight_seed_through_methods(model: rc.CompressedMLP, data: Any) -> None:
    X, _ = data
    plain = model.features(X)
    assert model.use_fast_kernel(True) is model and model.fast
    np.testing.assert_array_equal(model.features(X), plain)
    model.use_fast_kernel(False)
    seeded = model.with_weight_seed(9)
    assert seeded.weight_seed == 9 and model.weight_seed is None
    assert seeded.classifier is model.classifier and seeded.method == model.method
    np.testing.assert_array_equal(seeded.features(X), plain)
    np.testing.assert_array_equal(seeded.predict(X), model.predict(X))
    with pytest.raises(InvalidParameterError, match="weight_seed"):
        model.with_weight_seed(-1)


def test_provenance_records_each_step_with_its_config(model: rc.CompressedMLP, data: Any) -> None:
    X, y = data
    assert model.provenance == Provenance("lloyd-max") and model.method == "lloyd-max"
    cal_cfg = rc.CalibrationConfig(hidden="data-lm", n_rows=300, seed=1)
    cal = rc.calibrate(model, X, cal_cfg)
    assert cal.method == "lloyd-max+calibrated"
    (step,) = cal.provenance.steps
    assert step.name == "calibrated" and rc.CalibrationConfig.from_dict(step.config) == cal_cfg
    ft_cfg = rc.FinetuneConfig(epochs=1, seed=3)
    ft = rc.finetune(cal, X, y, ft_cfg)
    assert ft.method == "lloyd-max+calibrated+finetuned"
    assert [s.name for s in ft.provenance.steps] == ["calibrated", "finetuned"]
    assert rc.FinetuneConfig.from_dict(ft.provenance.steps[1].config) == ft_cfg
    assert ft.finetune_report is not None and ft.finetune_report.config == dict(ft_cfg.__dict__)
    assert ft.classifier is not None and ft.classifier.method == "finetune-head"
    assert model.provenance.steps == ()  # records are immutable: the input keeps its own


def test_provenance_label_parse_and_dict_round_trip() -> None:
    p = Provenance("lloyd-max").then("calibrated", rc.CalibrationConfig()).then("finetuned", {"epochs": 2})
    assert p.label == "lloyd-max+calibrated+finetuned"
    back = Provenance.parse(p.label)
    assert back.label == p.label and all(s.config == {} for s in back.steps)
    assert Provenance.from_dict(p.to_dict()) == p
    assert Provenance.parse("dense") == Provenance("dense", ())
    for bad in ("", "a++b", "+a"):
        with pytest.raises(InvalidParameterError):
            Provenance.parse(bad)
    with pytest.raises(InvalidParameterError, match="without '\\+'"):
        ProvenanceStep("a+b", {})
    # the constructor's method label is read into the record
    m = rc.CompressedMLP(
        rc.MLPSpec(3, (2,), ("relu",)), ["relu"], [0.0], weights=[torch.ones(2, 3)], method="x+y"
    )
    assert m.provenance == Provenance("x", (ProvenanceStep("y", {}),))


def test_files_keep_the_label_and_load_through_methods(
    model: rc.CompressedMLP, data: Any, tmp_path: Path
) -> None:
    X, _ = data
    path = tmp_path / "m.safetensors"
    rio.save(model, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RmtcompressDeprecationWarning)
        back = rio.load(path)
    assert back.method == model.method and back.provenance == model.provenance
    assert back.fast and back.classifier is not None
    np.testing.assert_array_equal(back.predict(X), model.predict(X))
    cal = rc.calibrate(model, X, rc.CalibrationConfig(n_rows=300))
    rc.fit_readout(cal, X, data[1])
    cal_back = rio.from_bytes(rio.to_bytes(cal, "2bit"))
    assert cal_back.method == "lloyd-max+calibrated"  # files store the label; steps load without configs
    assert cal_back.provenance == Provenance.parse("lloyd-max+calibrated")


def test_forward_is_the_networks_own_output(data: Any) -> None:
    X, y = data
    x = torch.from_numpy(X[:50]).float()
    comp = rc.compress(SPEC, rc.NTKLCConfig(sparsity=0.5, seed=0, readout_features="levels"), X=X)
    rc.fit_readout(comp, X, y)
    with torch.no_grad():
        assert torch.equal(comp(x), comp.features(x))  # no output layer: h_L
    rf = rc.RandomFeatureMLP(SPEC, out_features=3, seed=1)
    with torch.no_grad():
        assert rf.readout is not None and torch.equal(rf(x), rf.readout(rf.features(x)))
        assert torch.equal(rc.RandomFeatureMLP(SPEC, out_features=None, seed=1)(x), rf.features(x))
    rc.fit_readout(rf, X, y)
    assert rf.classifier is not None
    np.testing.assert_array_equal(
        rf.decision_function(X[:50]), rf.classifier.decision_function(np.asarray(rf.features(X[:50])))
    )
    np.testing.assert_array_equal(rf.predict(X[:50]), rf.classifier.predict(np.asarray(rf.features(X[:50]))))
    with pytest.warns(RmtcompressDeprecationWarning, match="set_classifier"):
        rf.classifier = None
    with pytest.raises(InvalidParameterError, match="not trained"):
        rf.decision_function(X[:5])
    with pytest.raises(InvalidParameterError, match="reads 72 features but this model gives 24"):
        rf.set_classifier(_wide(comp))


def _wide(comp: rc.CompressedMLP) -> Any:
    clf = comp.classifier
    assert clf is not None
    return rc.LinearReadout(np.zeros((72, clf.coef.shape[1])), clf.intercept, clf.classes, "ridge", {})
