"""One config style: every config of the package is a frozen, validated dataclass with a lossless
``to_dict``/``from_dict`` round trip (hypothesis), a version, and ``replace``; registries and old spellings."""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from hypothesis import given, settings, strategies as st

import rmtcompress as rc
from rmtcompress import lab, ntklc, pruning, shrink
from rmtcompress._utils import Config, Registry, config_types
from rmtcompress.errors import InvalidParameterError, RmtcompressDeprecationWarning
from rmtcompress.lab._sweeps import SweepSummary, parse_sweep
from rmtcompress.ntklc._calibration import CALIBRATION_MODES
from rmtcompress.pruning._training import IterativeResult
from rmtcompress.rf import _trf

# ------------------------------------------------------------------------------------------------ strategies

finite = {"allow_nan": False, "allow_infinity": False}
fraction = st.floats(0.0, 1.0, exclude_max=True, **finite)  # [0, 1)
open_fraction = st.floats(0.0, 1.0, exclude_min=True, exclude_max=True, **finite)  # (0, 1)
positive = st.floats(0.0, 1e6, exclude_min=True, **finite)
non_negative = st.floats(0.0, 1e6, **finite)
seed = st.integers(0, 2**63)
milestones = st.none() | st.lists(open_fraction, min_size=1, max_size=4, unique=True).map(
    lambda v: tuple(sorted(v))
)


def _probs(draw: st.DrawFn, n: int) -> tuple[float, ...] | None:
    if draw(st.booleans()):
        return None
    return tuple(sorted(draw(st.lists(open_fraction, min_size=n, max_size=n, unique=True))))


@st.composite
def calibration_configs(draw: st.DrawFn, levels: int | None = None) -> rc.CalibrationConfig:
    levels = draw(st.integers(2, 8)) if levels is None else levels
    modes = st.sampled_from(CALIBRATION_MODES)
    return rc.CalibrationConfig(
        hidden=draw(modes),
        last=draw(modes),
        levels=levels,
        quantiles=_probs(draw, levels - 1),
        last_quantiles=_probs(draw, levels - 1),
        thermometer=draw(st.booleans()),
        n_rows=draw(st.integers(2 * levels, 10**6)),
        iters=draw(st.integers(0, 100)),
        seed=draw(seed),
    )


@st.composite
def ntklc_configs(draw: st.DrawFn) -> rc.NTKLCConfig:
    method = draw(st.sampled_from([m.value for m in rc.CompressionMethod]))
    levels = draw(st.integers(3 if method == "lloyd-max-matched" else 2, 256))
    calibrate = draw(
        st.sampled_from(["auto", "on", "off", "config"])
    )  # None, True, False or a nested CalibrationConfig of the same levels
    return rc.NTKLCConfig(
        sparsity=draw(fraction),
        method=method,
        levels=levels,
        calibrate={"auto": None, "on": True, "off": False}[calibrate]
        if calibrate != "config"
        else draw(calibration_configs(levels)),
        seed=draw(st.integers(0, 2**64 - 1)),
        weight_sampling=draw(st.sampled_from(["iid", "exact", "philox"])),
        restarts=draw(st.integers(1, 1000)),
        last_layer=draw(st.sampled_from(["paper", "free"])),
        hidden=draw(st.sampled_from(["sigma_t", "sigma_q"])),
        tau_anchor=draw(non_negative),
        hard=tuple(draw(st.lists(st.sampled_from(["d1", "d2", "curv", "Q", "tau"]), max_size=5))),
        on_infeasible=draw(st.sampled_from(["warn", "raise", "ignore"])),
        data_sample=draw(st.integers(1, 10**6)),
        straight_through=draw(st.booleans()),
        readout_features=draw(st.sampled_from(["levels", "thermometer"])),
    )


finetune_configs = st.builds(
    rc.FinetuneConfig,
    epochs=st.integers(1, 50),
    lr=positive,
    head_lr=positive,
    batch_size=st.integers(1, 4096),
    temperature=positive,
    train_levels=st.booleans(),
    val_fraction=st.floats(0.0, 0.5, exclude_min=True, **finite),
    n_scale_rows=st.integers(2, 10**6),
    seed=seed,
)

magnitude_configs = st.builds(
    rc.MagnitudeConfig, sparsity=fraction, scope=st.sampled_from(["layer", "global"])
)


@st.composite
def lq_configs(draw: st.DrawFn) -> rc.LqAdaptiveConfig:
    budget_mode = draw(st.booleans())
    return rc.LqAdaptiveConfig(
        sparsity=None if budget_mode else draw(fraction),
        q=draw(open_fraction),
        budget=draw(positive) if budget_mode else None,
        scope=draw(st.sampled_from(["layer", "global"])),
        min_keep=draw(st.integers(0, 100)),
        lipschitz=draw(positive),
        input_bound=draw(positive),
        outgoing_norm=draw(st.sampled_from(["inf", "l1", "l2"])),
    )


@st.composite
def sap_configs(draw: st.DrawFn) -> rc.SAPConfig:
    q = draw(st.floats(1e-3, 10.0, **finite))
    p = draw(st.floats(0.0, q, exclude_min=True, exclude_max=True, **finite))
    return rc.SAPConfig(
        p=p,
        q=q,
        eta=draw(non_negative),
        gamma=draw(positive),
        beta=draw(st.floats(0.0, 1.0, exclude_min=True, **finite)),
        scope=draw(st.sampled_from(["layer", "neuron", "global"])),
        rounds=draw(st.integers(1, 100)),
        milestones=draw(milestones),
    )


@st.composite
def gmp_configs(draw: st.DrawFn) -> rc.GradualMagnitudeConfig:
    final = draw(fraction)
    begin = draw(st.integers(0, 10**6))
    scope = draw(st.sampled_from(["layer", "global"]))
    return rc.GradualMagnitudeConfig(
        final_sparsity=final,
        begin_step=begin,
        end_step=begin + draw(st.integers(1, 10**6)),
        frequency=draw(st.integers(1, 1000)),
        initial_sparsity=draw(st.floats(0.0, final, **finite)),
        exponent=draw(positive),
        scope=scope,
        criterion=draw(st.sampled_from(["magnitude", "lq"])),
        q=draw(open_fraction),
        layer_sparsity=draw(
            st.none()
            | st.dictionaries(
                st.sampled_from(["0", "2", "4", "net.fc"]),
                st.floats(final, 1.0, exclude_max=True, **finite),
                min_size=1,
            )
        )
        if scope == "layer"
        else None,
    )


search_spaces = st.builds(
    shrink.SearchSpace,
    rules=st.lists(st.sampled_from(["gmp", "gmp-lq", "oneshot"]), min_size=1, max_size=3, unique=True).map(
        tuple
    ),
    allocations=st.lists(st.sampled_from(["global", "uniform", "pq", "lq"]), min_size=1, unique=True).map(
        tuple
    ),
    weights=st.lists(
        st.sampled_from(["shared:1", "shared:3", "uniform:8", "ternary", "float32"]), min_size=1, unique=True
    ).map(tuple),
    sparsities=st.lists(open_fraction, min_size=1, max_size=5, unique=True).map(lambda v: tuple(sorted(v))),
    grid_points=st.integers(0, 5),
    grid_below=st.floats(0.0, 1.0, **finite),
    activation_bits=st.lists(st.integers(1, 8), max_size=3).map(tuple),
    prune_epochs=st.integers(1, 50),
    prune_end=st.floats(0.0, 1.0, exclude_min=True, **finite),
    lr=positive,
    width_factors=st.lists(st.floats(0.0, 1.0, exclude_min=True, **finite), min_size=1, max_size=3).map(
        tuple
    ),
    margin=st.floats(0.5, 1.0, **finite),
)


lottery_configs = st.builds(
    rc.LotteryTicketConfig,
    rate=open_fraction,
    rounds=st.integers(1, 100),
    rewind=st.sampled_from(["init", "none"]),
    scope=st.sampled_from(["layer", "global"]),
    milestones=milestones,
    criterion=st.sampled_from(["magnitude", "lq"]),
    q=open_fraction,
)

train_configs = st.builds(
    pruning.TrainConfig,
    epochs=st.integers(1, 100),
    batch_size=st.integers(1, 4096),
    optimizer=st.sampled_from(["adam", "sgd"]),
    lr=positive,
    momentum=st.floats(0.0, 1.0, exclude_max=True, **finite),
    nesterov=st.booleans(),
    weight_decay=non_negative,
    val_fraction=st.floats(0.0, 0.5, exclude_min=True, **finite),
    patience=st.none() | st.integers(1, 100),
    grad_clip=st.none() | positive,
    select=st.sampled_from(["best", "last"]),
    seed=seed,
    eval_batch_size=st.integers(1, 10**5),
)

option_values = st.integers(-(10**6), 10**6) | st.text(max_size=8) | st.booleans() | non_negative
method_specs = st.builds(
    lab.MethodSpec,
    name=st.text(min_size=1, max_size=12),
    method=st.sampled_from([*ntklc.COMPRESSION_METHODS, *ntklc.BASELINES]),
    sparsity=fraction,
    levels=st.integers(2, 256),
    options=st.lists(st.tuples(st.text(max_size=12), option_values), max_size=4).map(tuple),
)

spectra_configs = st.builds(
    lab.SpectraConfig,
    preset=st.sampled_from(["fig2-left", "fig2-right"]),
    paper_size=st.booleans(),
    n=st.none() | st.integers(1, 10**5),
    p=st.none() | st.integers(1, 10**5),
    widths=st.none() | st.tuples(*[st.integers(1, 10**4)] * 3),
    draws=st.none() | st.integers(1, 10**4),
    dataset=st.sampled_from(["mnist-subset", "fashion-mnist"]),
    classes=st.lists(st.integers(0, 9), min_size=2, max_size=2, unique=True).map(tuple),
    seed=seed,
    dtype=st.sampled_from(["float32", "float64"]),
)

weight_sharing_configs = st.builds(
    pruning.WeightSharingConfig,
    bits=st.integers(1, 8),
    scope=st.sampled_from(["layer", "channel"]),
    finetune_epochs=st.integers(0, 50),
    lr=positive,
    batch_size=st.integers(1, 4096),
    max_iter=st.integers(1, 1000),
    tol=positive,
    max_samples=st.integers(1, 10**7),
)
uniform_weight_configs = st.builds(
    pruning.UniformWeightConfig, bits=st.integers(2, 8), scope=st.sampled_from(["layer", "channel"])
)
ternary_weight_configs = st.builds(
    pruning.TernaryWeightConfig,
    scope=st.sampled_from(["layer", "channel"]),
    alpha=st.sampled_from(["fitted", "trained"]),
    threshold=non_negative,
    finetune_epochs=st.integers(0, 50),
    lr=positive,
    batch_size=st.integers(1, 4096),
)

STRATEGIES: dict[type, st.SearchStrategy[Any]] = {
    rc.NTKLCConfig: ntklc_configs(),
    rc.CalibrationConfig: calibration_configs(),
    rc.FinetuneConfig: finetune_configs,
    rc.MagnitudeConfig: magnitude_configs,
    rc.LqAdaptiveConfig: lq_configs(),
    rc.SAPConfig: sap_configs(),
    rc.GradualMagnitudeConfig: gmp_configs(),
    rc.LotteryTicketConfig: lottery_configs,
    pruning.TrainConfig: train_configs,
    pruning.WeightSharingConfig: weight_sharing_configs,
    pruning.UniformWeightConfig: uniform_weight_configs,
    pruning.TernaryWeightConfig: ternary_weight_configs,
    lab.MethodSpec: method_specs,
    lab.SpectraConfig: spectra_configs,
    shrink.SearchSpace: search_spaces,
}


# ------------------------------------------------------------------------------------------------ round trips


def test_every_config_of_the_package_has_a_round_trip_test() -> None:
    ours = {name: cls for name, cls in config_types().items() if cls.__module__.startswith("rmtcompress.")}
    assert set(ours.values()) == set(STRATEGIES), "a Config subclass without a strategy here"
    for cls in ours.values():
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
        assert isinstance(cls.version, int) and cls.version >= 1
        assert "extra" not in {f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("cls", list(STRATEGIES), ids=lambda c: c.__name__)
def test_round_trip(cls: type[Config]) -> None:
    @settings(max_examples=60, deadline=None)
    @given(STRATEGIES[cls])
    def check(cfg: Config) -> None:
        d = cfg.to_dict()
        assert d["type"] == cls.__name__ and d["version"] == cls.version
        assert {f.name for f in dataclasses.fields(cls)} | {"type", "version"} == set(d)  # type: ignore[arg-type]
        assert cls.from_dict(d) == cfg
        through_json = json.loads(json.dumps(d, allow_nan=False))
        assert cls.from_dict(through_json) == cfg
        assert Config.from_dict(through_json) == cfg  # the base class picks the type
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(cfg, dataclasses.fields(cls)[0].name, None)  # type: ignore[arg-type]

    check()


def test_ntklc_to_dict_keeps_every_field() -> None:
    cfg = rc.NTKLCConfig(sparsity=0.5, method="uniform", levels=8, on_infeasible="ignore", data_sample=7)
    d = cfg.to_dict()
    assert d["on_infeasible"] == "ignore" and d["data_sample"] == 7  # both were dropped before
    assert d["method"] == "uniform" and d["hard"] == ["d1", "d2", "curv", "Q", "tau"]
    back = rc.NTKLCConfig.from_dict(d)
    assert back.method is rc.CompressionMethod.UNIFORM and back == cfg


def test_ntklc_nested_calibration_and_version_1_dicts() -> None:
    cal = rc.CalibrationConfig(hidden="data-lm", levels=4, last_quantiles=(0.2, 0.5, 0.8), seed=3)
    cfg = rc.NTKLCConfig(calibrate=cal)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d["version"] == 2 and d["calibrate"] == cal.to_dict()
    assert rc.NTKLCConfig.from_dict(d).calibrate == cal
    # a version-1 dict was written before compress calibrated: it reads back as calibrate=False
    old = {k: v for k, v in rc.NTKLCConfig().to_dict().items() if k != "calibrate"} | {"version": 1}
    assert rc.NTKLCConfig.from_dict(old).calibrate is False
    assert rc.NTKLCConfig.from_dict({**old, "version": 2}).calibrate is None
    # … and i.i.d. torch sampling when it leaves weight_sampling out (the default then); an explicit value stays
    assert rc.NTKLCConfig.from_dict({"version": 1, "sparsity": 0.5}).weight_sampling == "iid"
    assert rc.NTKLCConfig.from_dict({"version": 1, "weight_sampling": "exact"}).weight_sampling == "exact"
    assert rc.NTKLCConfig.from_dict({"sparsity": 0.5}).weight_sampling == "philox"  # version 2: the default
    with pytest.raises(
        InvalidParameterError, match="calibrate must be None, True, False or a CalibrationConfig"
    ):
        rc.NTKLCConfig(calibrate="scale")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match=r"calibrate.levels \(4\) must equal levels \(8\)"):
        rc.NTKLCConfig(levels=8, calibrate=rc.CalibrationConfig())
    with pytest.raises(InvalidParameterError, match="n_rows"):  # the nested dict is validated too
        rc.NTKLCConfig.from_dict({**d, "calibrate": {**d["calibrate"], "n_rows": 1}})


def test_from_dict_refuses_bad_dicts() -> None:
    d = rc.MagnitudeConfig(0.5).to_dict()
    with pytest.raises(InvalidParameterError, match=r"unknown MagnitudeConfig field.*'bogus'"):
        rc.MagnitudeConfig.from_dict({**d, "bogus": 1})
    with pytest.raises(InvalidParameterError, match="describes a 'SAPConfig', not a MagnitudeConfig"):
        rc.MagnitudeConfig.from_dict({**d, "type": "SAPConfig"})
    with pytest.raises(InvalidParameterError, match="version 2, newer than the version 1"):
        rc.MagnitudeConfig.from_dict({**d, "version": 2})
    with pytest.raises(InvalidParameterError, match="version must be an integer"):
        rc.MagnitudeConfig.from_dict({**d, "version": "1"})
    with pytest.raises(InvalidParameterError, match="sparsity"):
        rc.MagnitudeConfig.from_dict({**d, "sparsity": 1.5})
    with pytest.raises(InvalidParameterError, match="unknown config type 'Nope'"):
        Config.from_dict({**d, "type": "Nope"})
    with pytest.raises(InvalidParameterError, match="must be a mapping"):
        rc.MagnitudeConfig.from_dict([("sparsity", 0.5)])  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="missing"):  # a required field left out
        rc.MagnitudeConfig.from_dict({"scope": "layer"})
    # type and version may be left out: a plain dict of fields
    assert rc.SAPConfig.from_dict({"p": 0.25, "milestones": [0.5, 0.9]}) == rc.SAPConfig(
        p=0.25, milestones=(0.5, 0.9)
    )


def test_replace_validates_and_configs_are_frozen() -> None:
    cfg = rc.NTKLCConfig()
    assert cfg.replace(levels=8).levels == 8 and cfg.levels == 4
    with pytest.raises(InvalidParameterError, match="levels"):
        cfg.replace(levels=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.sparsity = 0.5  # type: ignore[misc]
    with pytest.raises(TypeError):
        rc.NTKLCConfig(extra={})  # type: ignore[call-arg]
    assert hash(cfg) == hash(rc.NTKLCConfig())


def test_older_versions_go_through_upgrade() -> None:
    @dataclasses.dataclass(frozen=True)
    class _ToyConfig(Config):
        version: ClassVar[int] = 2
        width: int = 1

        @classmethod
        def _upgrade(cls, body: dict[str, Any], version: int) -> dict[str, Any]:
            if version == 1:  # version 1 called the field "size"
                body = {("width" if k == "size" else k): v for k, v in body.items()}
            return body

    assert _ToyConfig.from_dict({"type": "_ToyConfig", "version": 1, "size": 3}) == _ToyConfig(3)
    assert _ToyConfig(5).to_dict() == {"type": "_ToyConfig", "version": 2, "width": 5}


def test_validation_normalises_values() -> None:
    assert rc.SAPConfig(milestones=[0.2, 0.5]).milestones == (0.2, 0.5)  # type: ignore[arg-type]
    assert type(rc.MagnitudeConfig(0).sparsity) is float
    assert rc.NTKLCConfig(hard=["d1"]).hard == ("d1",)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="seed"):
        rc.NTKLCConfig(seed=-1)
    with pytest.raises(InvalidParameterError, match="straight_through"):
        rc.NTKLCConfig(straight_through="yes")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="unknown method 'bogus'"):
        lab.MethodSpec("x", "bogus")
    with pytest.raises(InvalidParameterError, match="dtype"):
        lab.SpectraConfig(dtype="float16")


# ------------------------------------------------------------------------------------------------ registries


def test_registry_basics() -> None:
    reg: Registry[str, int] = Registry("widget", aliases={"old_name": "new-name"})
    reg.register("new-name")(1)
    reg.add("other", 2)
    assert reg.get("other") == 2 and "other" in reg and reg.keys() == ("new-name", "other")
    with pytest.raises(InvalidParameterError, match="already registered"):
        reg.add("other", 3)
    with pytest.raises(InvalidParameterError, match=r"unknown widget 'nope'; valid: new-name, other"):
        reg.get("nope")
    with pytest.warns(RmtcompressDeprecationWarning, match="'old_name' is now spelled 'new-name'"):
        assert reg.get("old_name") == 1
    assert reg.unregister("other") == 2 and "other" not in reg
    with pytest.raises(InvalidParameterError, match="unknown widget"):
        reg.get(["unhashable"])


def test_registered_compression_method_is_dispatched() -> None:
    @ntklc.register_compression_method("test-sign")
    def _sign(inp: ntklc.CompressionInputs) -> ntklc.CompressedActivations:
        acts: list[rc.Activation] = [rc.sign()] * inp.spec.depth
        report = rc.match_activations(["relu"] * inp.spec.depth, inp.tau0, on_infeasible="ignore", restarts=2)
        return ntklc.CompressedActivations(acts, [0.0] * inp.spec.depth, [1.0] * inp.spec.depth, report)

    try:
        cfg = rc.NTKLCConfig(method="test-sign", sparsity=0.5)
        assert cfg.method == "test-sign" and rc.NTKLCConfig.from_dict(cfg.to_dict()) == cfg
        model = rc.compress(rc.MLPSpec(6, (8, 4), ("relu", "relu")), cfg)
        assert model.method == "test-sign" and all(a.name == rc.sign().name for a in model.activations)
        assert lab.MethodSpec("s", "test-sign").method == "test-sign"
    finally:
        ntklc.COMPRESSION_METHODS.unregister("test-sign")
    with pytest.raises(
        InvalidParameterError, match="unknown compression method 'test-sign'; valid: ntklc-paper"
    ):
        rc.NTKLCConfig(method="test-sign")


def test_registered_baseline_is_dispatched() -> None:
    @ntklc.register_baseline("test-dense-seeded")
    def _b(b: ntklc.BaselineInputs) -> rc.CompressedMLP:
        return ntklc.BASELINES.get("dense")(b)

    try:
        spec = rc.MLPSpec(6, (8,), ("relu",))
        a = rc.build_baseline("test-dense-seeded", spec, seed=3)
        d = rc.build_baseline("dense", spec, seed=3)
        assert a.method == "test-dense-seeded" and (a.weight(0) == d.weight(0)).all()
    finally:
        ntklc.BASELINES.unregister("test-dense-seeded")
    with pytest.raises(InvalidParameterError, match="unknown baseline 'nope'; valid: dense, heuristic"):
        rc.build_baseline("nope", rc.MLPSpec(6, (8,), ("relu",)))


def test_registered_prune_rule_is_dispatched() -> None:
    @dataclasses.dataclass(frozen=True)
    class _KeepFirstConfig(Config):
        rule: ClassVar[str] = "test-keep-first"

    @pruning.register_prune_rule(_KeepFirstConfig)
    def _keep_first(model: Any, selected: Any, config: Any, step: Any) -> pruning.RuleStep:
        masks = {}
        for name, mod in selected:
            m = torch.zeros_like(mod.weight, dtype=torch.bool)
            m[:, 0] = True
            masks[name] = m
        return pruning.RuleStep(masks, {"note": 1}, None)

    try:
        net = pruning.make_mlp(5, [4], 3, seed=0)
        res = rc.prune(net, _KeepFirstConfig())
        assert res.method == "test-keep-first" and res.details["note"] == 1
        assert pruning.prune_config_type("test-keep-first") is _KeepFirstConfig
    finally:
        pruning.PRUNE_RULES.unregister(_KeepFirstConfig)
        pruning.RULE_NAMES.unregister("test-keep-first")
    with pytest.raises(
        InvalidParameterError, match="unknown pruning config _KeepFirstConfig; expected one of"
    ):
        rc.prune(pruning.make_mlp(5, [4], 3, seed=0), _KeepFirstConfig())


def test_prune_rule_names_and_their_old_spellings() -> None:
    assert pruning.RULE_NAMES.keys() == ("oneshot", "lq", "sap", "gmp", "lottery")
    for cls in (rc.MagnitudeConfig, rc.LqAdaptiveConfig, rc.SAPConfig, rc.GradualMagnitudeConfig):
        assert pruning.prune_config_type(cls.rule) is cls  # type: ignore[attr-defined]
    old = {
        "magnitude": rc.MagnitudeConfig,
        "lq_adaptive": rc.LqAdaptiveConfig,
        "gradual_magnitude": rc.GradualMagnitudeConfig,
        "lottery_ticket": rc.LotteryTicketConfig,
    }
    for name, cls in old.items():
        with pytest.warns(RmtcompressDeprecationWarning, match=f"'{name}' is now spelled '{cls.rule}'"):  # type: ignore[attr-defined]
            assert pruning.prune_config_type(name) is cls
    net = pruning.make_mlp(5, [4], 3, seed=0)
    assert rc.prune(net, rc.GradualMagnitudeConfig(0.5, 0, 4, 1), step=4).method == "gmp"


def test_quantizer_methods_use_the_hyphenated_spelling() -> None:
    q = rc.quantize_activation("relu", 1.0, 4, method="lloyd-max")
    assert q.method == "lloyd-max" and q.activation.name.startswith("lloyd-max[")
    with pytest.warns(RmtcompressDeprecationWarning, match="'lloyd_max' is now spelled 'lloyd-max'"):
        old = rc.quantize_activation("relu", 1.0, 4, method="lloyd_max")
    assert (old.levels == q.levels).all()
    z = [-1.0, 0.5, 1.5, 2.0, 3.0, -0.2, 0.7]
    with pytest.warns(
        RmtcompressDeprecationWarning, match="'lloyd_max_data' is now spelled 'lloyd-max-data'"
    ):
        d = rc.quantize_activation("tanh", None, 3, method="lloyd_max_data", preactivations=z)
    assert d.method == "lloyd-max-data"


def test_trained_net_quantizer_spellings() -> None:
    net = pruning.make_mlp(6, [8], 3, seed=0)
    X = torch.randn(64, 6, generator=torch.Generator().manual_seed(0)).numpy()
    new = pruning.quantize_activations(net, X, levels=3, method="lloyd-max-data")
    with pytest.warns(
        RmtcompressDeprecationWarning, match="'lloyd_max_data' is now spelled 'lloyd-max-data'"
    ):
        old = pruning.quantize_activations(net, X, levels=3, method="lloyd_max_data")  # type: ignore[arg-type]
    assert torch.equal(new(torch.from_numpy(X)), old(torch.from_numpy(X)))
    uni = pruning.quantize_activations(net, X, levels=3, method="uniform")
    q = next(m for m in uni if isinstance(m, rc.QuantizedActivation)).quantizer
    assert q.method == "uniform-data" and q.activation.name == "uniform-data[k=3]"


# ------------------------------------------------------------------------------------------------ as_dict → to_dict


def _sweep_spec() -> Any:
    return parse_sweep(
        {"sweep": {"name": "s", "task": "digits", "root_seed": 1, "seeds": 1}, "grid": {"sparsity": [0.5]}}
    )


def _sweep_summary() -> Any:
    return SweepSummary("s", Path("r"), Path("r/s.db"), 1, 0, 1, 1, 0, 0, 0.1, "serial")


AS_DICT_OWNERS: list[tuple[str, Callable[[], Any]]] = [
    ("Recursion", lambda: rc.recursion(["relu", "tanh"], 1.0)),
    ("KernelCoefficients", lambda: _trf.ternary_coefficients(-1.0, 1.0, 1.0)),
    ("MemoryBits", lambda: _trf.memory_bits("rff", 8, 4, 10)),
    ("SweepSpec", _sweep_spec),
    ("SweepSummary", _sweep_summary),
]


@pytest.mark.parametrize(("name", "make"), AS_DICT_OWNERS, ids=[n for n, _ in AS_DICT_OWNERS])
def test_as_dict_is_a_deprecated_alias_of_to_dict(name: str, make: Callable[[], Any]) -> None:
    obj = make()
    assert type(obj).__name__ == name
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = obj.to_dict()
    with pytest.warns(
        RmtcompressDeprecationWarning, match=rf"{name}\.as_dict\(\) is now spelled to_dict\(\)"
    ):
        old = obj.as_dict()
    assert json.dumps(old, sort_keys=True, default=str) == json.dumps(new, sort_keys=True, default=str)


def test_as_dicts_is_a_deprecated_alias_of_to_dicts() -> None:
    res = IterativeResult("lottery", [])
    with pytest.warns(RmtcompressDeprecationWarning, match=r"as_dicts\(\) is now spelled to_dicts\(\)"):
        assert res.as_dicts() == res.to_dicts() == []
