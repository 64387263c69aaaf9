"""The reproduction end to end on a tiny sweep: training, store, resume, selectors, tables, report."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest

pytest.importorskip("mnist1d")
pytest.importorskip("matplotlib")

from scipy.stats import spearmanr

from conftest import reference_rankme
from rankme.io.results_db import ResultStore
from rankme.paper.protocols import Sweep
from rankme.paper.reproduce import run_reproduction
from rankme.paper.runner import run_sweeps
from rankme.paper.train import RunConfig, train_and_evaluate
from rankme.selection.rules import SweepPoint, picked_accuracy, select_runs, sweep_points
from rankme.selection.stats import rank_correlations

TINY = {"dataset": "mnist1d", "num_samples": 600, "epochs": 1, "batch_size": 64, "rank_samples": 256}
SWEEPS = (
    Sweep("SimCLR temperature", "temperature", (0.1, 0.5, 1.0), RunConfig(method="simclr", **TINY)),
    Sweep("VICReg cov. weight", "cov", (0.0, 1.0, 5.0), RunConfig(method="vicreg", **TINY)),
)


class _Interrupt(Exception):
    pass


@pytest.mark.slow  # trains a tiny sweep twice (~150 CPU s measured on the loaded 2-core machine)
def test_tiny_sweep_end_to_end_with_interruption_and_resume(tmp_path):
    calls = []

    def flaky(cfg):
        if len(calls) == 2:
            raise _Interrupt  # the machine goes down after two finished runs
        calls.append(cfg)
        return train_and_evaluate(cfg)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(_Interrupt):
            run_reproduction(tmp_path, SWEEPS, log=lambda m: None, train=flaky)
        store = ResultStore(tmp_path / "results.sqlite")
        assert len(store) == 2  # both finished runs survived
        store.close()
        result = run_reproduction(tmp_path, SWEEPS, log=lambda m: None)
    assert result["counts"]["ran"] == 4 and result["counts"]["cached"] == 2
    again = run_reproduction(tmp_path, SWEEPS, log=lambda m: None,
                             train=lambda cfg: pytest.fail("a finished run was trained again"))
    assert again["counts"]["ran"] == 0 and again["counts"]["cached"] == 6
    assert len(result["sweeps"]) == 2
    stored = list(ResultStore(tmp_path / "results.sqlite").runs())
    for row, sweep in zip(result["sweeps"], SWEEPS, strict=True):
        # recompute the table straight from the stored runs (one seed: a value is one run)
        mine = {r["config"][sweep.param]: r["metrics"] for r in stored
                if r["config"]["method"] == sweep.base.method and r["config"][sweep.param] in sweep.values}
        acc = {v: m["probe_acc"] for v, m in mine.items()}
        by_rank = max(mine, key=lambda v: mine[v]["rankme"])
        assert row["pick_oracle"] == max(acc, key=acc.get) and row["id_oracle"] == max(acc.values())
        assert row["pick_rankme"] == by_rank and row["id_rankme"] == acc[by_rank]
        assert row["id_random"] == pytest.approx(sum(acc.values()) / 3)
        assert row["regret_rankme"] == pytest.approx(max(acc.values()) - acc[by_rank])
        values = sorted(mine)
        rho = spearmanr([mine[v]["rankme"] for v in values], [acc[v] for v in values]).statistic
        assert row["runs"] == 3 and row["corr_id"]["spearman"] == pytest.approx(rho)
    html = (tmp_path / "report.html").read_text()
    assert "oracle (labels)" in html and html.count("data:image/png;base64,") == 2
    assert "Few labels against RankMe" in html and "Few labels against RankMe" in result["text"]
    assert {1, 2, 5, 10} <= set(result["analysis"]["fewlabel"]["budgets"])  # the few-label study was stored
    assert "RankMe (argmax)" in result["text"] and "Mean regret" in result["text"]
    assert "LiDAR" in result["text"] and "cluster learnability" in result["text"]
    agreement = result["sweeps"][0]["agreement"]
    assert set(agreement) >= {"rankme", "alpha_req", "lidar", "nesum", "stable_rank", "participation_ratio", "cluster"}


@pytest.mark.slow  # trains a run (~27 CPU s)
def test_run_metrics_equal_independent_references():
    """Every label-free score of a run equals the same quantity computed here from the run's own embeddings."""
    import torch
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from rankme.paper.train import _embed, evaluate_run, load_dataset, train_ssl

    cfg = RunConfig(method="dino", **TINY)
    data = load_dataset(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = train_ssl(cfg, data)
        m = evaluate_run(cfg, model, data)
    rows = np.random.default_rng(cfg.seed).permutation(len(data.x_train))[: cfg.rank_samples]
    emb = _embed(model, data.x_train[rows], "embedding")
    sv = np.linalg.svd(emb, compute_uv=False)
    cov = np.linalg.eigvalsh(np.cov(emb, rowvar=False))[::-1]
    assert m["n_rank"] == 256 and m["dim"] == 256
    np.testing.assert_allclose(m["singular_values"], sv, rtol=1e-6, atol=1e-9 * sv[0])
    assert m["rankme"] == pytest.approx(reference_rankme(emb), rel=1e-9)
    assert m["stable_rank"] == pytest.approx((sv**2).sum() / sv[0] ** 2, rel=1e-9)
    assert m["nesum"] == pytest.approx(cov.sum() / cov[0], rel=1e-8)
    assert m["rankme_repr"] == pytest.approx(reference_rankme(_embed(model, data.x_train[rows], "representation")),
                                            rel=1e-9)
    rtr, rte = _embed(model, data.x_train, "representation"), _embed(model, data.x_test, "representation")
    knn = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=20, metric="cosine"))
    assert m["knn_acc"] == pytest.approx(100 * knn.fit(rtr, data.y_train.numpy()).score(rte, data.y_test.numpy()))
    assert torch.is_tensor(data.x_train) and math.isfinite(m["alpha_req"])


def test_selectors_on_a_hand_made_table():
    pts = [SweepPoint(v, acc, ood, 2, {"rankme": r, "alpha_req": a, "lidar": li})
           for v, r, a, acc, ood, li in [(0.1, 50.0, 2.0, 60.0, 30.0, 9.0), (0.2, 80.0, 1.3, 66.0, 35.0, 3.0),
                                         (0.5, 79.5, 1.05, 65.0, 36.0, 5.0), (1.0, 20.0, 0.2, 55.0, 25.0, 1.0)]]
    assert select_runs(pts, "oracle").value == 0.2
    assert select_runs(pts, "rankme").value == 0.2
    assert select_runs(pts, "rankme_plateau", extreme="max").value == 0.5  # 79.5 within 1% of 80
    assert select_runs(pts, "rankme_plateau", tol=0.001, extreme="max").value == 0.2
    assert select_runs(pts, "alpha_req").value == 0.5
    assert select_runs(pts, "random") is None
    assert select_runs(pts, "lidar").value == 0.1
    assert select_runs(pts, "nesum") is None  # no run carries that score
    assert picked_accuracy(pts, "random") == pytest.approx(61.5)
    assert picked_accuracy(pts, "alpha_req", ood=True) == 36.0
    with pytest.raises(ValueError, match="unknown selector"):
        select_runs(pts, "accuracy")
    with pytest.raises(ValueError, match="no runs"):
        sweep_points([], "lr")


def test_rank_correlations_bootstrap_interval_contains_estimate():
    r = rank_correlations([1, 2, 3, 4, 5, 6, 7, 8], [1, 3, 2, 4, 6, 5, 8, 7])
    assert r["spearman_lo"] <= r["spearman"] <= r["spearman_hi"]
    assert r["kendall_lo"] <= r["kendall"] <= r["kendall_hi"]
    assert math.isnan(rank_correlations([1, 2], [2, 1])["spearman"])


def test_rank_correlations_bootstrap_equals_a_scipy_loop():
    """The vectorised bootstrap gives the intervals of a plain loop over scipy's spearmanr/kendalltau (ties too)."""
    from scipy.stats import kendalltau, spearmanr

    rng = np.random.default_rng(3)
    for case in range(6):
        x = rng.normal(size=12)
        y = x + rng.normal(size=12)
        if case % 2:
            x, y = np.round(x), np.round(y)
        r = rank_correlations(x, y, n_boot=150, seed=case)
        boot = np.random.default_rng(case)
        sp, kt = [], []
        for _ in range(150):
            i = boot.integers(0, 12, 12)
            if np.ptp(x[i]) == 0 or np.ptp(y[i]) == 0:
                continue
            sp.append(spearmanr(x[i], y[i]).statistic)
            kt.append(kendalltau(x[i], y[i]).statistic)
        assert [r["spearman_lo"], r["spearman_hi"]] == pytest.approx(np.percentile(sp, [2.5, 97.5]), abs=1e-12)
        assert [r["kendall_lo"], r["kendall_hi"]] == pytest.approx(np.percentile(kt, [2.5, 97.5]), abs=1e-12)


def test_store_rejects_non_database(tmp_path):
    bad = tmp_path / "x.sqlite"
    bad.write_text("not a database " * 100)
    with pytest.raises(ValueError, match="not a rankme results store"):
        ResultStore(bad)


def test_run_sweeps_counts(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    fake = lambda cfg: {"rankme": 1.0, "probe_acc": 50.0, "ood_probe_acc": 40.0, "alpha_req": 1.0}  # noqa: E731
    assert run_sweeps(store, SWEEPS[:1], seeds=(0, 1), log=lambda m: None, train=fake)["ran"] == 6
    assert run_sweeps(store, SWEEPS[:1], seeds=(0, 1), log=lambda m: None, train=fake)["cached"] == 6


@pytest.mark.slow  # two worker processes train, then the same run here (~26 CPU s)
def test_two_worker_processes_store_the_same_runs(tmp_path):
    sweep = (Sweep("SimCLR temperature", "temperature", (0.1, 0.5), RunConfig(method="simclr", **TINY)),)
    store = ResultStore(tmp_path / "r.sqlite")
    lines: list[str] = []
    counts = run_sweeps(store, sweep, log=lines.append, workers=2)
    assert counts["ran"] == 2 and len(store) == 2
    assert lines[0].startswith("training 2 run(s), 2 at a time") and [ln[:4] for ln in lines[1:]] == ["[1/2", "[2/2"]
    runs = {r["config"]["temperature"]: r["metrics"] for r in store.runs()}
    solo = train_and_evaluate(sweep[0].configs([0])[0])  # the same run in this process (other thread count)
    assert runs[0.1]["rankme"] == pytest.approx(solo["rankme"], rel=1e-3)
    assert runs[0.1]["probe_acc"] == pytest.approx(solo["probe_acc"], abs=3.0)
    store.close()


def test_cosine_schedule_warms_up_then_decays_to_zero():
    import torch

    from rankme.paper.train import _scheduler

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = _scheduler(RunConfig(epochs=3, schedule="cosine"), opt, steps_per_epoch=4)
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])  # linear warmup over the first epoch
    assert lrs[4] == pytest.approx(1.0) and all(a >= b for a, b in itertools.pairwise(lrs[3:]))
    assert lrs[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 7 / 8)))  # cosine: 7 of 8 decay steps done
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        _scheduler(RunConfig(schedule="linear"), opt, 4)


def test_projector_width_is_a_run_parameter():
    import torch

    from rankme.paper.train import _base_model

    assert _base_model(RunConfig(embedding_dim=64))(torch.zeros(2, 1, 40)).shape == (2, 64)
    assert _base_model(RunConfig(dataset="digits"))(torch.zeros(2, 1, 8, 8)).shape == (2, 128)
    with pytest.raises(ValueError, match="embedding_dim must be a positive projector width"):
        _base_model(RunConfig(embedding_dim=0))


@pytest.mark.slow  # trains with checkpoint scoring (~115 CPU s)
def test_checkpoint_scores_leave_the_trained_model_unchanged():
    """The long protocol scores runs mid-training; the final run must equal one trained without checkpoints."""
    cfg = RunConfig(method="vicreg", **{**TINY, "epochs": 3, "schedule": "cosine"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with_ckpt = train_and_evaluate(cfg, checkpoints=(1, 2))
        plain = train_and_evaluate(cfg)
    assert sorted(with_ckpt["checkpoints"]) == ["1", "2"] and "checkpoints" not in plain
    for k in ("rankme", "probe_acc", "lidar", "invariance", "rankme_se", "singular_values"):
        assert with_ckpt[k] == plain[k], k
    early = with_ckpt["checkpoints"]["1"]
    assert early["singular_values"] != plain["singular_values"]  # a different (earlier) model was scored
    assert 0.0 < early["invariance"] < 1.0 and early["rankme_se"] > 0.0


def test_each_finished_run_says_elapsed_time_and_what_is_left(tmp_path):
    lines: list[str] = []
    fake = {"rankme": 10.0, "probe_acc": 50.0, "train_seconds": 1.0, "eval_seconds": 1.0}
    store = ResultStore(tmp_path / "results.sqlite")
    run_sweeps(store, SWEEPS[:1], log=lines.append, train=lambda cfg: dict(fake))
    assert lines[0].startswith("training 3 run(s), 1 at a time (0 already in the store)")
    assert [line.split("]")[0] for line in lines[1:]] == ["[1/3", "[2/3", "[3/3"]
    assert all(" elapsed, about " in line and line.endswith(" left)") for line in lines[1:])
    assert lines[-1].endswith("about 0 s left)")


def test_the_first_lines_name_what_trains_and_the_estimate_counts_the_workers(tmp_path):
    from rankme.paper.runner import time_left

    lines: list[str] = []
    fake = {"rankme": 10.0, "probe_acc": 50.0, "train_seconds": 30.0, "eval_seconds": 30.0}
    store = ResultStore(tmp_path / "results.sqlite")
    run_sweeps(store, SWEEPS[:1], log=lines.append, train=lambda cfg: dict(fake))
    assert "Now training: " in lines[0] and f"{SWEEPS[0].name} = " in lines[0]
    assert lines[1].endswith("about 2 min 00 s left)")  # two 60-second runs left, one worker
    # 10 runs of 60 s on 2 workers: after the first, 9 left ≈ 4.5 rounds (elapsed / done would say 9 minutes)
    assert time_left([60.0], 9, 2) == 270.0 and time_left([60.0], 1, 2) == 60.0
