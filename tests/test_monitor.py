"""The plain-PyTorch monitor (it leaves training as it was: modes, grads, RNG, BatchNorm statistics), pooling
rules, the collapse alarm and the torchmetrics metric."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import rankme
from conftest import SMALL_Z, reference_rankme
from rankme.monitor import CollapseAlarm, CollapseWarning, RankMeMonitor, pool_output
from rankme.paper.models import digits_model


def _model_and_probe(n: int = 300):
    torch.manual_seed(0)
    model = digits_model(embedding_dim=48)
    x = torch.randn(n, 1, 8, 8)
    return model, x, DataLoader(TensorDataset(x, torch.zeros(n)), batch_size=64)


def test_monitor_equals_offline_engine_for_several_taps():
    model, x, probe = _model_and_probe()
    model.train()
    mon = RankMeMonitor(model, {"emb": "projector", "rep": "backbone", "fn": lambda m, b: m.represent(b[0]) * 2},
                        probe, metrics=["rankme", "stable_rank"])
    out = mon.compute()
    assert model.training  # mode restored
    assert not model.projector._forward_hooks and not model.backbone._forward_hooks  # hooks removed
    model.eval()
    with torch.no_grad():
        emb, rep = model(x).numpy(), model.represent(x).numpy()
    assert out["rankme/emb"] == pytest.approx(reference_rankme(emb), rel=1e-6)
    assert out["rankme/rep"] == pytest.approx(reference_rankme(rep), rel=1e-6)
    assert out["rankme/fn"] == pytest.approx(out["rankme/rep"], rel=1e-9)
    assert out["stable_rank/emb"] == pytest.approx(rankme.stable_rank(np.linalg.svd(emb, compute_uv=False)), rel=1e-6)


def test_monitor_samples_cap_truncates_in_batch_order():
    model, x, probe = _model_and_probe()
    out = RankMeMonitor(model, "projector", probe, samples=100).compute()
    model.eval()
    with torch.no_grad():
        emb = model(x[:100]).numpy()
    assert out["rankme/projector"] == pytest.approx(reference_rankme(emb), rel=1e-6)


def test_monitor_rejects_unknown_taps_and_metrics():
    model, _, probe = _model_and_probe()
    with pytest.raises(AttributeError, match="nope"):
        RankMeMonitor(model, "nope", probe)
    with pytest.raises(ValueError, match="unknown metric"):
        RankMeMonitor(model, "projector", probe, metrics=["effective_dim"])


def test_pooling_rules():
    t = torch.arange(24.0).reshape(2, 3, 4)
    assert torch.equal(pool_output(t), t.mean(1))
    assert torch.equal(pool_output(t, "cls"), t[:, 0])
    assert torch.equal(pool_output(t, "flatten"), t.reshape(2, 12))
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert torch.allclose(pool_output(t, mask=mask)[1], t[1, 0])
    assert pool_output((torch.ones(2, 5, 3, 3), "extra")).shape == (2, 5)
    assert pool_output({"last_hidden_state": torch.ones(2, 4, 6), "pooler": torch.ones(2, 6)}).shape == (2, 6)
    with pytest.raises(TypeError, match="cannot find a tensor"):
        pool_output(("a", 1))
    with pytest.raises(ValueError, match="pool must be"):
        pool_output(t, "max")


def test_collapse_alarm_rules():
    a = CollapseAlarm(threshold=2.0, warmup=0, patience=1)
    assert a.check("p", 1.5, 100, 10) and not a.check("p", 3.0, 100, 10)
    b = CollapseAlarm(relative_drop=0.5, warmup=0, patience=1)
    assert b.check("p", 10.0, 100, 10) is None
    assert "fell from 10.00 to 4.00" in (b.check("p", 4.0, 100, 10) or "")


def test_default_alarm_lets_a_healthy_run_dip_early_and_needs_a_streak():
    """A healthy run's RankMe often falls from its random-init value in the first evaluations."""
    alarm = CollapseAlarm(relative_drop=0.5)  # warm-up 1, patience 2
    healthy = [120.0, 40.0, 45.0, 60.0, 70.0]  # one big early drop, then recovery: never stops
    assert [alarm.check("p", v, 1000, 128) for v in healthy] == [None] * 5
    collapsing = CollapseAlarm(threshold=5.0)
    out = [collapsing.check("q", v, 1000, 128) for v in (60.0, 4.0, 3.0, 2.0)]
    assert out[:2] == [None, None] and "2 evaluations in a row" in out[2]
    with pytest.raises(ValueError, match="patience"):
        CollapseAlarm(patience=0)


def test_monitor_alarm_warns_on_collapsed_model():
    model = nn.Sequential(nn.Linear(4, 16))
    with torch.no_grad():
        model[0].weight.zero_()  # every input maps to the bias: rank 1
    probe = DataLoader(TensorDataset(torch.randn(64, 4)), batch_size=16)
    mon = RankMeMonitor(model, {"out": "0"}, probe, alarm=CollapseAlarm(fraction=0.1, warmup=0, patience=1))
    with pytest.warns(CollapseWarning, match="collapse") as caught:
        mon.compute()
    warned = caught.pop(CollapseWarning)
    assert mon.last_alarm == str(warned.message)  # the reason kept is the one warned
    assert warned.filename == __file__  # points at the user's compute() call, not inside the monitor


def test_torchmetrics_metric_matches_engine_and_reduces_in_chunks():
    from rankme.integrations.torchmetrics import RankMe

    z = torch.randn(500, 24) * torch.arange(1, 25) ** -1.0
    m = RankMe(dim=24)
    for chunk in z.split(77):
        m.update(chunk)
    assert float(m.compute()) == pytest.approx(rankme.rankme(z), rel=1e-10)
    mc = RankMe(dim=24, center=True, eigen=True)
    mc.update(z)
    assert float(mc.compute()) == pytest.approx(rankme.rankme(z, center=True, eigen=True), rel=1e-9)
    with pytest.raises(rankme.EmbeddingError, match="dim=24"):
        m.update(torch.randn(3, 5))
    m.reset()
    with pytest.raises(rankme.EmbeddingError, match="no rows"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.compute()


def test_missing_extra_names_it():
    from rankme.integrations import require

    with pytest.raises(ImportError, match=r"pip install 'rankme\[nothing\]'"):
        require("surely_not_a_module_xyz", "nothing")


def test_monitor_lidar_and_cluster_equal_offline_metrics():
    from rankme.metrics.cluster import cluster_learnability
    from rankme.metrics.lidar import lidar
    from rankme.monitor import LidarViews

    model, x, probe = _model_and_probe(n=300)
    calls = {"n": 0}

    def augment(batch):  # view j of every batch scales the input by 1 + 0.1·j: reproducible offline
        j = calls["n"] % 3
        calls["n"] += 1
        return (batch[0] * (1 + 0.1 * j), batch[1])

    mon = RankMeMonitor(model, "projector", probe, metrics=["rankme", "cluster"],
                        lidar=LidarViews(augment, views=3, samples=200))
    out = mon.compute()
    model.eval()
    with torch.no_grad():
        views = torch.stack([model(x[:200] * (1 + 0.1 * j)) for j in range(3)], dim=1).numpy()
        emb = model(x).numpy()
    assert out["lidar/projector"] == pytest.approx(lidar(views, 3), rel=1e-6)
    assert out["cluster/projector"] == pytest.approx(cluster_learnability(emb), abs=1e-9)
    assert calls["n"] == 3 * 4  # 200 LiDAR samples = 4 batches of ≤64 rows, 3 views each
    with pytest.raises(ValueError, match="needs lidar=LidarViews"):
        RankMeMonitor(model, "projector", probe, metrics=["lidar"])


def test_compute_gives_numpy_blas_one_thread_on_cpu_and_restores_it():
    from threadpoolctl import threadpool_info

    def blas_threads() -> list[int]:
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before, seen = blas_threads(), []

    def tap(model, batch):
        seen.append(blas_threads())  # what the Gram updates and eigen step will get
        return model(batch[0])

    model, x, probe = _model_and_probe()
    out = RankMeMonitor(model, {"emb": tap}, probe).compute()
    assert seen and all(t == [1] * len(before) for t in seen)
    assert blas_threads() == before
    model.eval()
    with torch.no_grad():
        assert out["rankme/emb"] == pytest.approx(reference_rankme(model(x).numpy()), rel=1e-6)


def test_monitor_restores_every_mode_grads_and_rng_and_builds_no_graph():
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16), torch.nn.Dropout(0.3),
                              torch.nn.Linear(16, 8))
    net.train()
    net[1].eval()  # a frozen BatchNorm
    net[0].requires_grad_(False)
    probe = torch.utils.data.DataLoader(torch.from_numpy(SMALL_Z.astype(np.float32)), batch_size=32, shuffle=True)
    modes = [m.training for m in net.modules()]
    grads = [p.requires_grad for p in net.parameters()]
    stats = net[1].running_mean.clone()
    torch.manual_seed(1)
    np.random.seed(1)
    expected = (torch.rand(3), np.random.rand(3))
    torch.manual_seed(1)
    np.random.seed(1)
    out = RankMeMonitor(net, "3", probe, pool="mean").compute()
    assert out["rankme/3"] > 1
    assert [m.training for m in net.modules()] == modes and [p.requires_grad for p in net.parameters()] == grads
    assert torch.equal(net[1].running_mean, stats)  # eval: BatchNorm statistics untouched
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])
    with pytest.raises(ValueError, match="pool must be one of"):
        RankMeMonitor(net, "3", probe, pool="max")


def test_monitor_warns_when_the_probe_set_is_smaller_than_k():
    net = torch.nn.Linear(8, 64)
    with pytest.warns(rankme.SampleSizeWarning, match="N=20 samples for K=64"):
        RankMeMonitor(net, "", [torch.randn(20, 8)]).compute()


# -- the few-label probe during training ---------------------------------------------------------------------------
def _probe_labels(x: torch.Tensor, unlabelled_every: int = 5) -> np.ndarray:
    """Four classes read off the probe inputs (which of the first 4 pixels is largest: the accuracies are not all
    chance), every ``unlabelled_every``-th row unlabelled (-1)."""
    y = x.reshape(len(x), -1)[:, :4].argmax(1).numpy()
    y[::unlabelled_every] = -1
    return y


def _offline_features(model, probe) -> np.ndarray:
    """The projector's rows batch by batch, as the monitor embeds them (the same float32 operations)."""
    model.eval()
    with torch.no_grad():
        return torch.cat([model(b[0]) for b in probe]).numpy().astype(np.float64)


def test_fewlabel_probe_is_the_computation_of_select_labels():
    from rankme.scoring.fewlabel import cv_accuracies
    from rankme.selection.labelcheck import few_label_job, label_plan

    model, x, probe = _model_and_probe()
    y = _probe_labels(x)
    mon = RankMeMonitor(model, "projector", probe, labels=y, label_budget=8, label_seed=3)
    out = mon.compute()
    feats = _offline_features(model, probe)
    _, run = few_label_job(label_plan(y, 8, seed=3))  # what `rankme select --labels y --label-budget 8 --seed 3` runs
    rec = run(feats)
    assert [out[f"fewlabel_{k}/projector"] for k in ("linear", "linear_lo", "linear_hi", "knn", "knn_lo", "knn_hi")] \
        == [rec[k] for k in ("linear", "linear_lo", "linear_hi", "knn", "knn_lo", "knn_hi")]
    cv = mon.fewlabel["projector"]
    assert len(cv.linear_correct) == 4 * 8 and cv.folds == 5 and cv.k == 5 and cv.linear > 25  # above chance
    assert "".join("1" if v else "0" for v in cv.linear_correct) == rec["linear_oof"]
    lo, hi = cv.linear_interval
    assert lo <= cv.linear <= hi and out["rankme/projector"] > 1
    # every labelled row (no budget): the labelled rows' features, nothing else
    mon_all = RankMeMonitor(model, "projector", probe, labels=y)
    pos = np.flatnonzero(y != -1)
    full = cv_accuracies(feats, pos, y[pos], seed=0)
    assert mon_all.compute()["fewlabel_knn/projector"] == full.knn
    assert np.array_equal(mon_all.fewlabel["projector"].knn_correct, full.knn_correct)


def test_fewlabel_every_n_evaluations_and_on_request():
    model, _, probe = _model_and_probe(n=128)
    mon = RankMeMonitor(model, "projector", probe, labels=np.arange(128) % 2, label_budget=4, fewlabel_every=2)
    keys = [sorted(k for k in mon.compute() if k.startswith("fewlabel")) for _ in range(4)]
    assert [len(k) for k in keys] == [0, 6, 0, 6]
    assert keys[1] == [f"fewlabel_{k}/projector" for k in ("knn", "knn_hi", "knn_lo", "linear", "linear_hi",
                                                            "linear_lo")]
    assert "fewlabel_linear/projector" in mon.compute(fewlabel=True)  # 5th: forced
    assert "fewlabel_linear/projector" not in mon.compute(fewlabel=False)  # 6th: due, skipped
    assert "fewlabel_linear/projector" not in RankMeMonitor(model, "projector", probe).compute(fewlabel=True)


def test_fewlabel_labels_are_checked_before_training_and_against_the_probe_rows():
    model, x, probe = _model_and_probe(n=128)
    y = _probe_labels(x)
    with pytest.raises(ValueError, match="label_budget=4 needs labels"):
        RankMeMonitor(model, "projector", probe, label_budget=4)
    with pytest.raises(ValueError, match=r"label_budget=40: class \d has only \d+ labelled row"):
        RankMeMonitor(model, "projector", probe, labels=y, label_budget=40)
    with pytest.raises(ValueError, match="label_budget must be"):
        RankMeMonitor(model, "projector", probe, labels=y, label_budget=1)
    with pytest.raises(ValueError, match="one label per probe row"):
        RankMeMonitor(model, "projector", probe, labels=np.zeros((128, 2)))
    with pytest.raises(ValueError, match="fewlabel_every must be a positive integer"):
        RankMeMonitor(model, "projector", probe, labels=y, fewlabel_every=0)
    mon = RankMeMonitor(model, "projector", probe, labels=y, samples=100)
    with pytest.raises(ValueError, match="128 labels for the 100 probe rows tap 'projector' scored"):
        mon.compute()


def _train(with_monitor: str, steps: int = 6) -> tuple[list[torch.Tensor], tuple]:
    """A few SGD steps of a model with dropout and BatchNorm whose loop draws from torch, numpy and Python's
    generators; after every step: no monitor, the RankMe monitor, or the monitor with the few-label probe (over a
    shuffling probe loader)."""
    import random

    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    net = nn.Sequential(nn.Linear(8, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 16))
    net[0].bias.requires_grad_(False)  # a frozen parameter
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    g = torch.Generator().manual_seed(1)
    probe_x = torch.randn(96, 8, generator=g)
    probe = DataLoader(TensorDataset(probe_x), batch_size=20, shuffle=False)
    labels = (probe_x[:, 0] > 0).long().numpy()
    labels[::5] = -1
    mon = None
    if with_monitor != "none":
        kw = {"labels": labels, "label_budget": 6} if with_monitor == "fewlabel" else {}
        mon = RankMeMonitor(net, {"out": "4", "hidden": "2"}, probe, **kw)
    net.train()
    for _ in range(steps):
        x = torch.randn(32, 8) + float(np.random.rand()) + random.random()
        loss = net(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if mon is not None:
            out = mon.compute()
            assert ("fewlabel_linear/out" in out) == (with_monitor == "fewlabel")
            assert net.training and net[3].training and not net[0].bias.requires_grad
    state = [t.detach().clone() for t in (*net.parameters(), *net.buffers())]
    return state, (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())


def test_fewlabel_probe_leaves_training_bit_identical():
    plain, rng_plain = _train("none")
    for mode in ("rankme", "fewlabel"):
        state, rng = _train(mode)
        assert all(torch.equal(a, b) for a, b in zip(plain, state, strict=True)), mode
        assert torch.equal(rng[0], rng_plain[0]) and np.array_equal(rng[1], rng_plain[1]) and rng[2] == rng_plain[2]


def test_torchmetrics_fewlabel_probe_equals_the_select_computation():
    from rankme.integrations.torchmetrics import RankMe
    from rankme.scoring.fewlabel import cv_accuracies, draw_budget

    g = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 3
    z = torch.randn(200, 12, generator=g) + 0.8 * torch.nn.functional.one_hot(y, 12)
    y_seen = y.clone()
    y_seen[1::3] = -1  # a third of the rows unlabelled
    m = RankMe(dim=12, label_budget=10, label_seed=2)
    for zs, ys in zip(z.split(64), y_seen.split(64), strict=True):
        assert m(zs, labels=ys) is None  # calling it only updates: a batch is too few labels
    out = m.compute()
    assert float(out["rankme"]) == pytest.approx(rankme.rankme(z), rel=1e-10)
    idx = draw_budget(y_seen.numpy(), 10, seed=2)
    cv = cv_accuracies(z.numpy().astype(np.float64), idx, y_seen.numpy()[idx], seed=2)
    assert [float(out[k]) for k in ("fewlabel_linear", "fewlabel_linear_lo", "fewlabel_knn_hi")] == \
        [cv.linear, cv.linear_interval[0], cv.knn_interval[1]]
    plain = RankMe(dim=12)
    with pytest.raises(ValueError, match="built without the few-label probe"):
        plain.update(z, labels=y)
    empty = RankMe(dim=12, fewlabel=True)
    empty.update(z)
    with pytest.raises(ValueError, match="no labelled row reached update"):
        empty.compute()
