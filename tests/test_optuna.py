"""The Optuna integration: objective = rankme's value, reports and pruning, SQLite resume, two worker processes."""

from __future__ import annotations

import multiprocessing as mp
import os

import numpy as np
import pytest

pytest.importorskip("optuna")
import optuna

import rankme
from rankme.integrations.optuna import create_study, rankme_objective, score
from rankme.scoring.source import sample_rows

N, K = 64, 16


@pytest.fixture(autouse=True)
def _quiet_optuna():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def rank_r(r: int, seed: int = 0) -> np.ndarray:
    """N×K embeddings with exactly r equal non-zero singular values (all 1), so RankMe = r up to ε."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((N, r)))
    p, _ = np.linalg.qr(rng.standard_normal((K, r)))
    return q @ p.T


def train_rank(trial, report):
    """A toy 'training' whose hyperparameter sets the rank of the embeddings: the best trial is the largest r."""
    return rank_r(trial.suggest_int("r", 1, 8), seed=trial.number)


def test_rank_r_helper_has_rankme_r():
    for r in (1, 3, 8):
        assert rankme.rankme(rank_r(r)) == pytest.approx(r, abs=1e-3)


@pytest.mark.parametrize("kind", ["numpy", "torch", "accumulator"])
def test_objective_value_equals_rankme_computed_directly(kind):
    z = np.random.default_rng(1).standard_normal((200, 12)) * np.arange(1, 13) ** -1.0
    expected = rankme.rankme(z)
    if kind == "torch":
        torch = pytest.importorskip("torch")
        out = torch.from_numpy(z).float()
        expected = rankme.rankme(out)
    elif kind == "accumulator":
        out = rankme.SpectrumAccumulator()
        out.update(z[:77])
        out.update(z[77:])
    else:
        out = z
    study = optuna.create_study(direction="maximize")
    study.optimize(rankme_objective(lambda trial, report: out, metrics=["stable_rank", "nesum"]), n_trials=1)
    t = study.trials[0]
    assert t.value == pytest.approx(expected, rel=1e-12)
    assert t.user_attrs["rankme"] == t.value
    assert t.user_attrs["n"] == 200 and t.user_attrs["dim"] == 12 and t.user_attrs["metric"] == "rankme"
    ref = out if kind == "torch" else z  # the float32 tensor itself, not its float64 source
    spec = rankme.compute_spectrum(ref)
    assert t.user_attrs["stable_rank"] == pytest.approx(rankme.stable_rank(spec.singular_values), rel=1e-9)
    centred = rankme.compute_spectrum(ref, center=True)
    assert t.user_attrs["nesum"] == pytest.approx(rankme.nesum(centred.eigenvalues), rel=1e-9)


def test_other_objective_metric_and_samples():
    z = np.random.default_rng(2).standard_normal((500, 8))
    rows = sample_rows(500, 100, seed=3)  # the rows `rankme score --samples 100 --seed 3` scores
    assert rows is not None and len(np.unique(rows)) == 100  # a subsample of 100 distinct rows, not all 500
    objective = rankme_objective(lambda trial, report: z, metric="stable_rank", samples=100, seed=3)
    study = optuna.create_study(direction="maximize")
    study.optimize(objective, n_trials=1)
    spec = rankme.compute_spectrum(z[rows])
    assert study.best_value == pytest.approx(rankme.stable_rank(spec.singular_values), rel=1e-12)
    assert study.best_trial.user_attrs["n"] == 100
    assert "rankme" not in study.best_trial.user_attrs


def test_best_trial_is_the_highest_rank():
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.GridSampler({"r": [2, 7, 4, 1]}))
    study.optimize(rankme_objective(train_rank), n_trials=4)
    assert study.best_params == {"r": 7}
    for t in study.trials:
        assert t.value == pytest.approx(t.params["r"], abs=1e-3)


def test_intermediate_reports_and_pruning():
    def train(trial, report):
        r = trial.suggest_int("r", 1, 8)
        for step in range(4):  # the rank grows during 'training' up to r
            report(step, rank_r(min(r, 1 + step)))
        return rank_r(r)

    sampler = optuna.samplers.GridSampler({"r": [1, 2, 6]})
    pruner = optuna.pruners.ThresholdPruner(lower=2.5, n_warmup_steps=2)  # prune RankMe < 2.5 from step 2 on
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    study.optimize(rankme_objective(train), n_trials=3)
    by_r = {t.params["r"]: t for t in study.trials}
    S = optuna.trial.TrialState
    assert by_r[1].state == S.PRUNED and by_r[2].state == S.PRUNED and by_r[6].state == S.COMPLETE
    # r=1 and r=2 are stopped at step 2 (RankMe 1 and 2 < 2.5): step 3 never ran
    assert sorted(by_r[1].intermediate_values) == sorted(by_r[2].intermediate_values) == [0, 1, 2]
    assert by_r[1].intermediate_values[2] == pytest.approx(1.0, abs=1e-3)
    assert by_r[2].intermediate_values[2] == pytest.approx(2.0, abs=1e-3)
    assert by_r[2].user_attrs["rankme"] == pytest.approx(2.0, abs=1e-3)  # the last scored value is kept
    steps = by_r[6].intermediate_values
    assert [round(steps[s], 3) for s in range(4)] == [1.0, 2.0, 3.0, 4.0]
    assert by_r[6].value == pytest.approx(6.0, abs=1e-3)


def test_none_return_uses_last_report_and_errors_are_clear():
    def train(trial, report):
        report(0, rank_r(2))
        report(1, rank_r(5))

    study = optuna.create_study(direction="maximize")
    study.optimize(rankme_objective(train), n_trials=1)
    assert study.best_value == pytest.approx(5.0, abs=1e-3)
    with pytest.raises(ValueError, match="never called report"):
        rankme_objective(lambda trial, report: None)(optuna.trial.FixedTrial({}))
    with pytest.raises(TypeError, match="cannot score a list"):
        rankme_objective(lambda trial, report: [[1.0]])(optuna.trial.FixedTrial({}))
    with pytest.raises(ValueError, match="unknown metric"):
        rankme_objective(train_rank, metric="rank_me")
    with pytest.raises(rankme.EmbeddingError, match="collapse"):
        score(np.zeros((10, 4)))


def test_sqlite_study_survives_interruption(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study = create_study("sweep")  # the default storage: ./rankme-optuna.db
    study.optimize(rankme_objective(train_rank), n_trials=2)
    first = [(t.number, t.params["r"], t.value) for t in study.trials]
    del study  # the "interruption": nothing of the first session is reused below
    assert (tmp_path / "rankme-optuna.db").exists()
    resumed = create_study("sweep", storage=str(tmp_path / "rankme-optuna.db"))
    assert [(t.number, t.params["r"], t.value) for t in resumed.trials] == first
    resumed.optimize(rankme_objective(train_rank), n_trials=2)
    done = [t for t in resumed.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert [t.number for t in done] == [0, 1, 2, 3]
    assert resumed.best_value == max(t.value for t in done)
    assert resumed.direction == optuna.study.StudyDirection.MAXIMIZE


def _worker(url: str, worker: int, n_trials: int) -> None:
    """One worker process: opens the shared study and runs its own trials."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = create_study("shared", storage=url)

    def train(trial, report):
        trial.set_user_attr("worker", worker)
        trial.set_user_attr("pid", os.getpid())
        return train_rank(trial, report)

    study.optimize(rankme_objective(train), n_trials=n_trials)


@pytest.mark.slow  # two worker processes (~6 s on the loaded 2-core machine)
def test_two_worker_processes_share_one_sqlite_study(tmp_path):
    """Both workers open a fresh file at once (so they also race to create its schema, which create_study retries)."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    ctx = mp.get_context("spawn")
    k = 3
    procs = [ctx.Process(target=_worker, args=(url, w, k)) for w in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    study = create_study("shared", storage=url)
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(study.trials) == len(done) == 2 * k
    assert sorted(t.number for t in done) == list(range(2 * k))
    assert sorted(t.user_attrs["worker"] for t in done) == [0] * k + [1] * k
    assert {t.user_attrs["pid"] for t in done} == {p.pid for p in procs}
    for t in done:
        assert t.value == pytest.approx(rankme.rankme(rank_r(t.params["r"], seed=t.number)), rel=1e-12)
        assert t.value == pytest.approx(t.params["r"], abs=1e-3)
    assert study.best_value == max(t.value for t in done)
