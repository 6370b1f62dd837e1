"""Tests for :mod:`rmtcompress.pruning`: measures, masks, pruning rules, bounds, storage."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn

from rmtcompress.pruning._bounds import degradation_bound
from rmtcompress.pruning._configs import (
    GradualMagnitudeConfig,
    LotteryTicketConfig,
    LqAdaptiveConfig,
    MagnitudeConfig,
    SAPConfig,
)
from rmtcompress.pruning._masks import (
    MaskedOptimizerStep,
    apply_masks,
    current_sparsity,
    get_masks,
    register_gradient_masks,
    rewind_to,
)
from rmtcompress.pruning._measures import (
    compressibility,
    gini_index,
    lq_norm,
    lq_tail_bound,
    pq_index,
    sap_retained_bound,
)
from rmtcompress.pruning._rules import prune
from rmtcompress.pruning._sparse import model_storage_bytes, remove, storage_report


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny models: one torch thread (two spin-waiting threads are far slower on a shared 2-core box); restored."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _mlp(dims: tuple[int, ...] = (12, 16, 8, 3), seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


# ============================================================================================ measures


def test_lq_norm_hand_values() -> None:
    w = np.array([3.0, -4.0])
    assert lq_norm(w, 2.0) == pytest.approx(5.0)
    assert lq_norm(w, 1.0) == pytest.approx(7.0)
    assert lq_norm(w, 0.5) == pytest.approx((math.sqrt(3.0) + 2.0) ** 2)  # = 7 + 4√3
    assert lq_norm(w, math.inf) == pytest.approx(4.0)
    assert lq_norm(torch.tensor([[3.0], [-4.0]]), 0.5) == pytest.approx(lq_norm(w, 0.5))  # torch, flattened
    assert lq_norm(np.zeros(5), 0.5) == 0.0
    assert lq_norm(np.array([1e-200, 2e-200]), 0.5) == pytest.approx((1 + math.sqrt(2)) ** 2 * 1e-200)


def test_pq_index_hand_values() -> None:
    # one-hot, d = 4, p = 1/2, q = 1:  1 − 4^{1−2}·1/1 = 0.75
    assert pq_index([1.0, 0.0, 0.0, 0.0], 0.5, 1.0) == pytest.approx(0.75)
    # [1, 4]: ‖w‖_{1/2} = (1 + 2)² = 9, ‖w‖_1 = 5, d^{1−2} = 1/2  ⇒  1 − 9/10
    assert pq_index([1.0, -4.0], 0.5, 1.0) == pytest.approx(0.1)
    # [3, 4], p = 1, q = 2:  1 − 2^{1/2 − 1}·7/5
    assert pq_index(torch.tensor([3.0, 4.0]), 1.0, 2.0) == pytest.approx(1 - 7 / 5 / math.sqrt(2))
    assert pq_index(np.zeros(7)) == 0.0
    assert pq_index(np.zeros(0)) == 0.0


def test_pq_index_zero_on_constant_magnitude_and_grows_with_concentration() -> None:
    rng = np.random.default_rng(0)
    signs = rng.choice([-1.0, 1.0], size=50)
    for p, q in ((0.5, 1.0), (1.0, 2.0), (0.2, 1.7)):
        assert pq_index(2.5 * signs, p, q) == pytest.approx(0.0, abs=1e-12)
    values = [pq_index([1.0, t, t, t, t], 0.5, 1.0) for t in np.linspace(1.0, 0.0, 11)]
    assert values[0] == pytest.approx(0.0, abs=1e-12)
    assert all(b > a for a, b in itertools.pairwise(values))
    assert values[-1] == pytest.approx(1 - 5 ** (1 - 2))  # maximum 1 − d^{1/q−1/p}


def test_sap_bound_closed_forms() -> None:
    rng = np.random.default_rng(1)
    for _ in range(5):
        w = rng.standard_t(3, size=200)
        a = np.abs(w)
        assert sap_retained_bound(w, 0.5, 1.0) == pytest.approx(np.sum(np.sqrt(a)) ** 2 / np.sum(a))
        assert sap_retained_bound(w, 1.0, 2.0) == pytest.approx((np.sum(a) / np.sqrt(np.sum(a * a))) ** 2)
        eta = 0.3  # (1+η)^{−q/(q−p)} factor: exponent −2 for p = ½, q = 1
        assert sap_retained_bound(w, 0.5, 1.0, eta) == pytest.approx(
            (1 + eta) ** -2 * np.sum(np.sqrt(a)) ** 2 / np.sum(a)
        )
    assert sap_retained_bound(np.ones(10), 0.5, 1.0) == pytest.approx(10.0)  # constant: keep everything
    assert sap_retained_bound([0.0, 0.0, 5.0], 0.5, 1.0) == pytest.approx(1.0)  # one-hot: keep one


def test_gini_index_hand_values() -> None:
    assert gini_index(np.full(9, -3.0)) == pytest.approx(0.0, abs=1e-12)
    assert gini_index([0.0, 0.0, 0.0, 2.0]) == pytest.approx(1 - 1 / 4)
    assert gini_index([1.0, 2.0, 3.0]) == pytest.approx(4 / 18)
    assert gini_index(np.zeros(3)) == 0.0


def test_lq_tail_bound_dominates_true_tail() -> None:
    rng = np.random.default_rng(2)
    for q in (0.3, 0.5, 0.8):
        w = rng.standard_t(2, size=300)
        a = np.sort(np.abs(w))[::-1]
        for k in (0, 1, 5, 50, 299):
            assert a[k:].sum() <= lq_tail_bound(lq_norm(w, q), k, q) * (1 + 1e-12)


def test_measure_errors() -> None:
    with pytest.raises(ValueError, match="0 < p < q"):
        pq_index([1.0, 2.0], 1.0, 1.0)
    with pytest.raises(ValueError, match="0 < p < q"):
        pq_index([1.0, 2.0], 2.0, 1.0)
    with pytest.raises(ValueError, match="p must be > 0"):
        sap_retained_bound([1.0], 0.0, 1.0)
    with pytest.raises(ValueError, match="eta"):
        sap_retained_bound([1.0], 0.5, 1.0, eta=-1.0)
    with pytest.raises(ValueError, match="q must be > 0"):
        lq_norm([1.0], 0.0)
    with pytest.raises(ValueError, match="finite"):
        lq_norm([1.0, float("nan")], 0.5)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        lq_tail_bound(1.0, 3, 1.0)


def test_compressibility_summaries() -> None:
    model = _mlp()
    out = compressibility(model)
    assert set(out["layers"]) == {"0", "2", "4"}
    w0 = model[0].weight.detach()
    assert out["layers"]["0"]["pq_index_0.5_1"] == pytest.approx(pq_index(w0))
    assert out["layers"]["0"]["neurons"]["pq_index_0.5_1"]["max"] == pytest.approx(
        max(pq_index(row) for row in w0)
    )
    everything = torch.cat(
        [p.detach().reshape(-1) for n, p in model.named_parameters() if n.endswith("weight")]
    )
    assert out["model"]["gini"] == pytest.approx(gini_index(everything))
    prune(model, MagnitudeConfig(0.5))
    masked = compressibility(model)
    assert masked["layers"]["0"]["d"] == pytest.approx(w0.numel() - round(0.5 * w0.numel()))
    assert masked["layers"]["0"]["sparsity"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no prunable layer"):
        compressibility(nn.Sequential(nn.ReLU()))


# ============================================================================================ masks


def test_masks_are_plain_buffers_without_hooks() -> None:
    model = _mlp()
    prune(model, MagnitudeConfig(0.6))
    for layer in (model[0], model[2], model[4]):
        assert isinstance(layer.weight_mask, torch.Tensor) and layer.weight_mask.dtype == torch.bool
        assert "weight_mask" in dict(layer.named_buffers())
        assert isinstance(layer.weight, nn.Parameter) and not hasattr(layer, "weight_orig")
        assert not layer._forward_hooks and not layer._forward_pre_hooks
        assert torch.all(layer.weight[~layer.weight_mask] == 0)
    assert "0.weight_mask" in model.state_dict()


def test_magnitude_one_shot_keeps_exactly_the_largest() -> None:
    model = _mlp((30, 20, 10), seed=3)
    w0 = model[0].weight.detach().clone()
    w2 = model[2].weight.detach().clone()
    res = prune(model, MagnitudeConfig(0.7, scope="layer"))
    for w, layer in ((w0, model[0]), (w2, model[2])):
        n = w.numel()
        keep = n - round(0.7 * n)
        assert int(layer.weight_mask.sum()) == keep
        kept = w.abs()[layer.weight_mask]
        dropped = w.abs()[~layer.weight_mask]
        assert kept.min() >= dropped.max()
        assert torch.equal(torch.sort(kept).values, torch.sort(w.abs().reshape(-1)).values[n - keep :])
    assert res.layer_sparsity["0"] == pytest.approx(round(0.7 * 600) / 600)

    model = _mlp((30, 20, 10), seed=3)
    res = prune(model, MagnitudeConfig(0.7, scope="global"))
    all_w = torch.cat([w0.reshape(-1), w2.reshape(-1)]).abs()
    keep = all_w.numel() - round(0.7 * all_w.numel())
    assert res.n_total - res.n_pruned == keep
    threshold = torch.sort(all_w, descending=True).values[keep - 1]
    assert torch.equal(model[0].weight_mask, w0.abs() >= threshold)
    assert torch.equal(model[2].weight_mask, w2.abs() >= threshold)


def test_masks_only_shrink() -> None:
    model = _mlp(seed=4)
    prune(model, MagnitudeConfig(0.5))
    first = get_masks(model)
    with torch.no_grad():  # move surviving weights around; pruned ones must stay pruned
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    apply_masks(model)
    prune(model, MagnitudeConfig(0.8))
    for name, mask in get_masks(model).items():
        assert not torch.any(mask & ~first[name])


def test_masks_stay_applied_through_training_steps() -> None:
    torch.manual_seed(0)
    model = _mlp(seed=5)
    prune(model, MagnitudeConfig(0.75))
    masks = get_masks(model)
    X, y = torch.randn(64, 12), torch.randint(0, 3, (64,))
    opt = MaskedOptimizerStep(torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1), model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for _ in range(5):
        opt.zero_grad()
        nn.functional.cross_entropy(model(X), y).backward()
        opt.step()
    for name, mask in masks.items():
        w = dict(model.named_parameters())[f"{name}.weight"]
        assert torch.all(w[~mask] == 0)
        assert not torch.equal(w[mask], before[f"{name}.weight"][mask])  # the rest did train
        assert torch.equal(get_masks(model)[name], mask)

    # Without the wrapper a plain optimizer step breaks the zeros; apply_masks restores them.
    plain = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.5)
    for _ in range(2):
        plain.zero_grad()
        nn.functional.cross_entropy(model(X), y).backward()
        plain.step()
    assert torch.any(model[0].weight[~masks["0"]] != 0)
    apply_masks(model)
    assert torch.all(model[0].weight[~masks["0"]] == 0)


def test_gradient_hook_masks_grads() -> None:
    model = _mlp(seed=6)
    prune(model, MagnitudeConfig(0.5))
    assert register_gradient_masks(model) == 3
    assert register_gradient_masks(model) == 0  # idempotent
    nn.functional.cross_entropy(model(torch.randn(8, 12)), torch.randint(0, 3, (8,))).backward()
    assert torch.all(model[0].weight.grad[~model[0].weight_mask] == 0)
    assert torch.any(model[0].weight.grad[model[0].weight_mask] != 0)
    remove(model)
    model.zero_grad()
    nn.functional.cross_entropy(model(torch.randn(8, 12)), torch.randint(0, 3, (8,))).backward()
    assert torch.any(model[0].weight.grad == model[0].weight.grad)  # hook gone, no error


def test_prune_then_remove_keeps_outputs_and_exports_storage() -> None:
    model = _mlp((12, 16, 8, 3), seed=7)
    prune(model, MagnitudeConfig(0.8, scope="global"))
    x = torch.randn(32, 12)
    masked_out = model(x).detach()
    masks = get_masks(model)
    weights = {n: model.get_submodule(n).weight.detach().clone() for n in masks}
    layers = remove(model)
    assert torch.equal(model(x).detach(), masked_out)
    for name, layer in layers.items():
        module = model.get_submodule(name)
        assert "weight_mask" not in dict(module.named_buffers())
        assert torch.all(module.weight[~masks[name]] == 0)
        np.testing.assert_array_equal(layer.to_dense(), weights[name].numpy())
        np.testing.assert_array_equal(layer.mask(), masks[name].numpy())
        assert layer.nnz == int(masks[name].sum())
        assert layer.to_csr().nnz <= layer.nnz and layer.to_coo().shape == tuple(weights[name].shape)
        n, k = layer.numel, layer.nnz
        h = -(k / n) * math.log2(k / n) - (1 - k / n) * math.log2(1 - k / n)
        assert layer.nbytes()["entropy"] == pytest.approx(4 * k + n * h / 8)
    report = storage_report(layers)
    biases = sum(m.bias.numel() for m in model.modules() if isinstance(m, nn.Linear))
    assert report["dense_bytes"] == 4 * (report["numel"] + biases)
    assert report["entropy_bytes"] < report["bitmask_bytes"] < report["dense_bytes"]
    # the exported (mask-free) model is accounted by its non-zeros
    assert model_storage_bytes(model)["entropy_bytes"] == pytest.approx(report["entropy_bytes"])
    with pytest.raises(ValueError, match="no weight_mask"):
        remove(model)


def test_rewind_restores_init_values_under_mask() -> None:
    model = _mlp(seed=8)
    theta0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0).add_(1.0)  # "training"
    prune(model, LotteryTicketConfig(rate=0.5, rounds=1))
    rewind_to(model, theta0)
    for name, p in model.named_parameters():
        if name.endswith("weight"):
            mask = model.get_submodule(name[: -len(".weight")]).weight_mask
            assert torch.equal(p[mask], theta0[name][mask]) and torch.all(p[~mask] == 0)
        else:
            assert torch.equal(p, theta0[name])
    with pytest.raises(ValueError, match="no entry"):
        rewind_to(model, {})


# ============================================================================================ schedules


def test_gradual_schedule_hits_final_exactly_and_is_monotone() -> None:
    cfg = GradualMagnitudeConfig(
        final_sparsity=0.9, initial_sparsity=0.1, begin_step=10, end_step=107, frequency=20
    )
    values = [cfg.sparsity_at(t) for t in range(0, 200)]
    assert values[0] == 0.1 and values[10] == pytest.approx(0.1)
    assert values[107] == 0.9 and values[150] == 0.9
    assert values[106] < 0.9
    assert all(b >= a for a, b in itertools.pairwise(values))
    # cubic formula at the midpoint
    t = 10 + (107 - 10) / 2
    assert cfg.sparsity_at(int(t)) == pytest.approx(0.9 + (0.1 - 0.9) * (1 - (int(t) - 10) / 97) ** 3)
    updates = [t for t in range(200) if cfg.is_update_step(t)]
    assert updates == [10, 30, 50, 70, 90, 107]


def test_gradual_layer_sparsity_gives_each_layer_its_own_schedule() -> None:
    model = _mlp(seed=4)
    targets = {"0": 0.9, "2": 0.5}  # layer "4" falls back to final_sparsity
    cfg = GradualMagnitudeConfig(
        final_sparsity=0.25, begin_step=0, end_step=10, frequency=5, layer_sparsity=targets
    )
    assert cfg.layer_sparsity == (("0", 0.9), ("2", 0.5))  # normalised to sorted pairs (hashable)
    assert hash(cfg) == hash(
        GradualMagnitudeConfig(
            final_sparsity=0.25,
            begin_step=0,
            end_step=10,
            frequency=5,
            layer_sparsity=(("2", 0.5), ("0", 0.9)),
        )
    )
    assert (
        cfg.sparsity_at(10, "0") == 0.9 and cfg.sparsity_at(10, "4") == 0.25 and cfg.sparsity_at(10) == 0.25
    )
    assert 0.0 < cfg.sparsity_at(5, "0") < 0.9
    for step in (0, 5, 10):
        res = prune(model, cfg, step=step)
        for name in ("0", "2", "4"):
            n = model.get_submodule(name).weight.numel()
            assert res.layer_sparsity[name] == pytest.approx(round(cfg.sparsity_at(step, name) * n) / n)
    sizes = {n: model.get_submodule(n).weight.numel() for n in ("0", "2", "4")}
    expected = (0.9 * sizes["0"] + 0.5 * sizes["2"] + 0.25 * sizes["4"]) / sum(sizes.values())
    assert res.target_sparsity == pytest.approx(expected)
    with pytest.raises(ValueError, match="does not prune"):
        prune(_mlp(seed=4), cfg, step=10, layers=["2", "4"])  # names layer '0', which this step leaves alone


def test_gradual_layer_sparsity_is_validated() -> None:
    kw = {"final_sparsity": 0.5, "begin_step": 0, "end_step": 10, "frequency": 1}
    with pytest.raises(ValueError, match="layer_sparsity"):
        GradualMagnitudeConfig(**kw, layer_sparsity={"0": 1.0})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scope='layer'"):
        GradualMagnitudeConfig(**kw, scope="global", layer_sparsity={"0": 0.5})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="initial_sparsity"):
        GradualMagnitudeConfig(**kw, initial_sparsity=0.4, layer_sparsity={"0": 0.3})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one"):
        GradualMagnitudeConfig(**kw, layer_sparsity={})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="map layer names"):
        GradualMagnitudeConfig(**kw, layer_sparsity=((0, 0.5),))  # type: ignore[arg-type]


def test_gradual_prune_follows_schedule() -> None:
    model = _mlp(seed=9)
    cfg = GradualMagnitudeConfig(final_sparsity=0.8, begin_step=0, end_step=10, frequency=5)
    seen = []
    for step in (0, 5, 10):
        res = prune(model, cfg, step=step)
        seen.append(res.sparsity)
        assert res.target_sparsity == pytest.approx(cfg.sparsity_at(step))
    assert seen[0] == 0.0 and seen == sorted(seen)
    for rate in current_sparsity(model)[1].values():
        assert rate == pytest.approx(0.8, abs=0.02)
    with pytest.raises(ValueError, match="step="):
        prune(model, cfg)


def test_lottery_schedule_and_milestones() -> None:
    assert LotteryTicketConfig(rate=0.2, rounds=3).schedule() == pytest.approx((0.2, 0.36, 0.488))
    sched = LotteryTicketConfig(rate=0.5, milestones=(0.5, 0.8, 0.9, 0.95)).schedule()
    assert sched == pytest.approx((0.5, 0.75, 0.8, 0.9, 0.95))
    model = _mlp(seed=10)
    cfg = LotteryTicketConfig(rate=0.5, rounds=2, scope="global")
    assert prune(model, cfg).sparsity == pytest.approx(0.5, abs=1e-2)
    assert prune(model, cfg).sparsity == pytest.approx(0.75, abs=1e-2)
    with pytest.raises(ValueError, match="exhausted"):
        prune(model, cfg)


# ============================================================================================ SAP


def test_sap_layer_step_matches_formula() -> None:
    model = nn.Sequential(nn.Linear(40, 25))
    torch.manual_seed(11)
    with torch.no_grad():
        model[0].weight.copy_(torch.randn(25, 40) ** 3)  # heavy-tailed ⇒ compressible
    w = model[0].weight.detach().clone().reshape(-1)
    d = w.numel()
    m = math.ceil(sap_retained_bound(w, 0.5, 1.0) - 1e-9)
    for gamma in (1.0, 3.0):
        mdl = nn.Sequential(nn.Linear(40, 25))
        mdl.load_state_dict(model.state_dict())
        res = prune(mdl, SAPConfig(gamma=gamma, beta=0.9, scope="layer"))
        expect = math.floor(d * min(max(gamma * (1 - m / d), 0.0), 0.9))
        assert res.n_pruned == expect
        unit = res.details["units"][0]
        assert unit["m"] == m and unit["pq_index"] == pytest.approx(pq_index(w))
        assert w.abs()[mdl[0].weight_mask.reshape(-1)].min() >= w.abs()[~mdl[0].weight_mask.reshape(-1)].max()


def test_sap_neuron_and_global_scopes() -> None:
    model = _mlp((20, 12, 4), seed=12)
    w = model[0].weight.detach().clone()
    res = prune(model, SAPConfig(scope="neuron"))
    for j in range(w.shape[0]):
        row = w[j]
        m = math.ceil(sap_retained_bound(row) - 1e-9)
        expect = math.floor(row.numel() * min(max(1.0 - m / row.numel(), 0.0), 0.9))
        assert int((~model[0].weight_mask[j]).sum()) == expect
    assert res.sparsity > 0
    model = _mlp((20, 12, 4), seed=12)
    res = prune(model, SAPConfig(scope="global", gamma=2.0))
    assert res.details["units"][0]["unit"] == "global"
    before = res.sparsity
    res2 = prune(model, SAPConfig(scope="global", gamma=2.0))  # second step works on the unpruned entries
    assert res2.sparsity > before
    assert res2.details["units"][0]["d"] == res.n_total - res.n_pruned


# ============================================================================================ lq adaptive


def test_lq_adaptive_reaches_sparsity_and_allocates_by_c_power_q() -> None:
    model = _mlp((50, 40, 30, 5), seed=13)
    with torch.no_grad():
        model[0].weight.mul_(torch.rand(40, 1) * 3)  # spread the per-neuron ℓ_q norms
    res = prune(model, LqAdaptiveConfig(sparsity=0.8, q=0.5))
    for name, rate in res.layer_sparsity.items():
        n = model.get_submodule(name).weight.numel()
        assert rate == pytest.approx(round(0.8 * n) / n)
    info = res.details["layers"]["0"]
    k, c = np.asarray(info["k"]), np.asarray(info["c"])
    order = np.argsort(c)
    assert np.all(np.diff(k[order]) >= 0)  # more ℓ_q mass (× outgoing weight) ⇒ more weights kept
    inner = (k > 1) & (k < 50)
    ratio = k[inner] / c[inner] ** 0.5
    assert ratio.max() / ratio.min() < 1.6  # ∝ c^q up to integer rounding
    assert info["tail_bound"] <= info["lq_bound"]
    # global scope: overall count exact
    model = _mlp((50, 40, 30, 5), seed=13)
    res = prune(model, LqAdaptiveConfig(sparsity=0.9, scope="global"))
    assert res.n_pruned == round(0.9 * res.n_total)


def test_lq_bound_holds_on_random_two_layer_relu_net() -> None:
    torch.manual_seed(14)
    d_in, r, k_out = 30, 64, 3
    net = nn.Sequential(nn.Linear(d_in, r), nn.ReLU(), nn.Linear(r, k_out))
    with torch.no_grad():
        net[0].weight.copy_(torch.randn(r, d_in) * torch.rand(r, d_in) ** 4)  # soft-sparse rows
    dense = nn.Sequential(nn.Linear(d_in, r), nn.ReLU(), nn.Linear(r, k_out))
    dense.load_state_dict(net.state_dict())
    W, A = net[0].weight.detach().clone(), net[2].weight.detach().clone()
    res = prune(net, LqAdaptiveConfig(sparsity=0.7, q=0.5), layers=["0"])
    assert res.bound is not None
    mask = net[0].weight_mask
    # §3.2 bound with a_j = ‖A[:, j]‖_∞, L = 1, R = 1
    paper = float(torch.sum(A.abs().max(dim=0).values * (W * ~mask).abs().sum(dim=1)))
    assert res.details["layers"]["0"]["tail_bound"] == pytest.approx(paper)
    assert res.bound <= paper + 1e-9 <= res.details["layers"]["0"]["lq_bound"] + 1e-9
    x = torch.cat([torch.rand(4000, d_in) * 2 - 1, torch.sign(torch.randn(4000, d_in))])
    with torch.no_grad():
        gap = (dense(x) - net(x)).abs()
    assert float(gap.max()) <= res.bound * (1 + 1e-6)
    assert float(gap.max()) > 0
    # budget mode: the summed ℓ_q bound respects the budget
    net2 = nn.Sequential(nn.Linear(d_in, r), nn.ReLU(), nn.Linear(r, k_out))
    net2.load_state_dict(dense.state_dict())
    res2 = prune(net2, LqAdaptiveConfig(budget=5.0, q=0.5), layers=["0"])
    assert res2.details["lq_bound_total"] <= 5.0 and res2.sparsity > 0


def test_degradation_bound_is_certified_for_deeper_nets_and_refuses_convs() -> None:
    torch.manual_seed(15)
    net = _mlp((10, 20, 20, 4), seed=15)
    ref = _mlp((10, 20, 20, 4), seed=15)
    res = prune(net, MagnitudeConfig(0.6))
    x = torch.rand(3000, 10) * 2 - 1
    with torch.no_grad():
        assert float((ref(x) - net(x)).abs().max()) <= res.bound
    conv = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    with pytest.raises(ValueError, match="Conv2d"):
        degradation_bound(conv, {})
    res = prune(conv, MagnitudeConfig(0.5))  # still prunable; the bound is just unavailable
    assert res.bound is None and "Conv2d" in res.details["bound_note"]


def test_conv_layers_are_pruned_per_output_channel() -> None:
    torch.manual_seed(16)
    conv = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 4 * 4, 3)
    )
    res = prune(conv, LqAdaptiveConfig(sparsity=0.5))
    assert conv[0].weight_mask.shape == conv[0].weight.shape
    assert "input channel" in res.details["layers"]["0"]["a_note"]
    assert "column block" in res.details["layers"]["2"]["a_note"]
    res = prune(conv, SAPConfig(scope="neuron"))
    assert res.sparsity >= 0.5
    assert conv(torch.randn(2, 1, 8, 8)).shape == (2, 3)


# ============================================================================================ errors


def test_config_and_input_errors() -> None:
    for q in (0.0, 1.0, 1.5, -0.2):
        with pytest.raises(ValueError, match=r"q must lie in \(0, 1\)"):
            LqAdaptiveConfig(sparsity=0.5, q=q)
    with pytest.raises(ValueError, match="exactly one"):
        LqAdaptiveConfig(q=0.5)
    with pytest.raises(ValueError, match="exactly one"):
        LqAdaptiveConfig(sparsity=0.5, budget=1.0)
    for s in (1.0, -0.1, float("nan"), 1.5):
        with pytest.raises(ValueError, match="sparsity"):
            MagnitudeConfig(s)
    with pytest.raises(ValueError, match="sparsity"):
        MagnitudeConfig(True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scope"):
        MagnitudeConfig(0.5, scope="neuron")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="0 < p < q"):
        SAPConfig(p=1.0, q=1.0)
    with pytest.raises(ValueError, match="beta"):
        SAPConfig(beta=0.0)
    with pytest.raises(ValueError, match="end_step"):
        GradualMagnitudeConfig(0.5, begin_step=10, end_step=10, frequency=1)
    with pytest.raises(ValueError, match="initial_sparsity"):
        GradualMagnitudeConfig(0.5, begin_step=0, end_step=10, frequency=1, initial_sparsity=0.6)
    with pytest.raises(ValueError, match="rate"):
        LotteryTicketConfig(rate=0.0)
    with pytest.raises(ValueError, match="increasing"):
        LotteryTicketConfig(milestones=(0.5, 0.4))
    with pytest.raises(ValueError, match="rewind"):
        LotteryTicketConfig(rewind="epoch")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no prunable layer"):
        prune(nn.Sequential(nn.ReLU(), nn.Tanh()), MagnitudeConfig(0.5))
    with pytest.raises(ValueError, match="unknown layer"):
        prune(_mlp(), MagnitudeConfig(0.5), layers=["nope"])
    with pytest.raises(ValueError, match=r"not nn\.Linear"):
        prune(_mlp(), MagnitudeConfig(0.5), layers=["1"])
    with pytest.raises(ValueError, match="unknown pruning config"):
        prune(_mlp(), object())  # type: ignore[arg-type]
    import torch.nn.utils.prune as torch_prune

    torch_pruned = _mlp()
    torch_prune.l1_unstructured(torch_pruned[0], "weight", amount=0.5)
    with pytest.raises(ValueError, match="weight_orig"):
        prune(torch_pruned, MagnitudeConfig(0.5))


# ============================================================================================ ℓ_q criterion, SAP milestones


def _perturb(model: nn.Module, seed: int) -> None:
    """Pretend to train: move every weight (masked entries are zeroed again), so the ranking changes."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * p.abs().mean() * torch.randn(p.shape, generator=gen))
    apply_masks(model)


def _pruned_counts(model: nn.Module) -> dict[str, int]:
    return {name: int((~mask).sum()) for name, mask in get_masks(model).items()}


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_lq_criterion_lottery_hits_milestones_exactly_with_nested_masks(scope: str) -> None:
    model = _mlp((30, 20, 10, 4), seed=21)
    sizes = {n: m.weight.numel() for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    total = sum(sizes.values())
    cfg = LotteryTicketConfig(rate=0.5, milestones=(0.5, 0.8, 0.9), scope=scope, criterion="lq")  # type: ignore[arg-type]
    previous: dict[str, torch.Tensor] | None = None
    for r, target in enumerate(cfg.schedule()):
        res = prune(model, cfg)
        assert res.method == "lottery" and res.details["criterion"] == "lq"
        assert res.target_sparsity == pytest.approx(target)
        counts = _pruned_counts(model)
        if scope == "layer":
            assert counts == {n: round(target * size) for n, size in sizes.items()}
        else:
            assert sum(counts.values()) == round(target * total)
        masks = get_masks(model)
        if previous is not None:  # nested: nothing pruned earlier comes back
            for name, mask in masks.items():
                assert not torch.any(mask & ~previous[name])
        previous = masks
        _perturb(model, seed=r)
    with pytest.raises(ValueError, match="exhausted"):
        prune(model, cfg)


def test_lq_criterion_gradual_follows_schedule_exactly_with_nested_masks() -> None:
    model = _mlp((30, 20, 10, 4), seed=22)
    sizes = {n: m.weight.numel() for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    cfg = GradualMagnitudeConfig(
        final_sparsity=0.85, begin_step=0, end_step=10, frequency=3, criterion="lq", q=0.3
    )
    previous = {n: torch.ones(model.get_submodule(n).weight.shape, dtype=torch.bool) for n in sizes}
    for step in (0, 3, 6, 9, 10):
        res = prune(model, cfg, step=step)
        target = cfg.sparsity_at(step)
        assert res.details["criterion"] == "lq" and res.details["lq"]["q"] == 0.3
        assert _pruned_counts(model) == {n: round(target * size) for n, size in sizes.items()}
        masks = get_masks(model)
        for name, mask in masks.items():
            assert not torch.any(mask & ~previous[name])
        previous = masks
        _perturb(model, seed=100 + step)
    assert res.sparsity == pytest.approx(0.85, abs=1e-9 + 1 / min(sizes.values()))


def test_lq_criterion_allocates_differently_from_magnitude() -> None:
    # neuron 0: eight weights ≈ 10, neuron 1: eight weights ≈ 1, single (last) layer ⇒ a_j = 1.
    # Keep 8 of 16: magnitude keeps all of neuron 0 and nothing of neuron 1; the ℓ_q rule (q = ½) keeps
    # k_j ∝ ‖w_j‖_½^½ ≈ 25.3 : 8 ⇒ (6, 2) — not just the min_keep = 1 floor.
    def one_layer() -> nn.Sequential:
        layer = nn.Linear(8, 2, bias=False)
        with torch.no_grad():
            base = torch.arange(8, dtype=torch.float32) * 0.01
            layer.weight.copy_(torch.stack([10.0 + base, 1.0 + base]))
        return nn.Sequential(layer)

    for make_cfg in (
        lambda c: LotteryTicketConfig(rate=0.5, rounds=1, criterion=c),
        lambda c: GradualMagnitudeConfig(0.5, begin_step=0, end_step=1, frequency=1, criterion=c),
    ):
        mag, lq = one_layer(), one_layer()
        prune(mag, make_cfg("magnitude"), step=1)
        prune(lq, make_cfg("lq"), step=1)
        assert mag[0].weight_mask.sum(dim=1).tolist() == [8, 0]
        assert lq[0].weight_mask.sum(dim=1).tolist() == [6, 2]
        assert lq[0].weight_mask[1, -2:].all()  # inside a neuron the largest |w| are kept


def test_sap_milestones_land_exactly() -> None:
    for scope in ("global", "layer", "neuron"):
        model = _mlp((40, 30, 20, 5), seed=23)
        total = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
        cfg = SAPConfig(gamma=5.0, scope=scope, milestones=(0.3, 0.5))
        landed = []
        clipped = []
        for r in range(30):
            try:
                res = prune(model, cfg)
            except ValueError as exc:
                assert "exhausted" in str(exc)
                break
            clipped.append(res.details["clipped"])
            if res.target_sparsity is not None:  # landed on a milestone
                assert res.n_pruned == round(res.target_sparsity * total)
                assert res.details["n_proposed"] >= res.details["n_step"]
                assert res.details["n_step"] == sum(u["n_pruned"] for u in res.details["units"])
                landed.append(res.target_sparsity)
            else:
                assert not res.details["clipped"]
                assert res.n_pruned < round(res.details["next_milestone"] * total)
            _perturb(model, seed=r)
        else:
            pytest.fail("SAP never reached its last milestone")
        assert landed == [0.3, 0.5], scope
        assert clipped[0], scope  # γ = 5 proposes far more than 30 % in the first step: it was scaled down
        assert sum(_pruned_counts(model).values()) == round(0.5 * total)


def test_sap_milestone_below_reach_is_a_plain_step() -> None:
    plain, capped = _mlp(seed=24), _mlp(seed=24)
    a = prune(plain, SAPConfig(scope="layer"))
    b = prune(capped, SAPConfig(scope="layer", milestones=(0.99,)))
    assert not b.details["clipped"] and b.target_sparsity is None and b.details["next_milestone"] == 0.99
    for name, mask in get_masks(plain).items():
        assert torch.equal(mask, capped.get_submodule(name).weight_mask)
    assert a.n_pruned == b.n_pruned


def test_criterion_and_milestone_errors() -> None:
    with pytest.raises(ValueError, match="criterion"):
        LotteryTicketConfig(criterion="l1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="criterion"):
        GradualMagnitudeConfig(0.5, begin_step=0, end_step=10, frequency=1, criterion="random")  # type: ignore[arg-type]
    for q in (0.0, 1.0, 2.0, float("nan")):
        with pytest.raises(ValueError, match="q"):
            LotteryTicketConfig(criterion="lq", q=q)
        with pytest.raises(ValueError, match="q"):
            GradualMagnitudeConfig(0.5, begin_step=0, end_step=10, frequency=1, criterion="lq", q=q)
    with pytest.raises(ValueError, match="increasing"):
        SAPConfig(milestones=(0.5, 0.5))
    with pytest.raises(ValueError, match="milestones entry"):
        SAPConfig(milestones=(0.5, 1.0))
    with pytest.raises(ValueError, match="milestones"):
        SAPConfig(milestones=0.5)  # type: ignore[arg-type]
    assert SAPConfig(milestones=[0.2, 0.4]).milestones == (0.2, 0.4)  # type: ignore[arg-type]


def test_sap_milestone_missed_by_one_weight_counts_as_reached() -> None:
    """A clipped SAP step that lands a weight short of a milestone must not cost a round pruning that one weight."""
    from rmtcompress.pruning._rules import _sap_milestone

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(100, 100))
    total = 100 * 100
    mask = torch.ones(total, dtype=torch.bool)
    mask[: round(0.8 * total) - 1] = False  # one weight short of 0.8
    net[0].register_buffer("weight_mask", mask.reshape(100, 100))
    layers = [("0", net[0])]
    cfg = SAPConfig(milestones=(0.8, 0.9))
    milestone, cap = _sap_milestone(layers, cfg)
    assert milestone == 0.9 and cap == round(0.9 * total) - (round(0.8 * total) - 1)
    mask2 = torch.ones(total, dtype=torch.bool)
    mask2[: round(0.8 * total) - 10] = False
    net[0].weight_mask = mask2.reshape(100, 100)
    assert _sap_milestone(layers, cfg) == (0.8, 10)
