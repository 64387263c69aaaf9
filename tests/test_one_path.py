"""One path from a source to a result: every front end × every scoring option reaches the state that
:func:`rankme.scoring.engine.finish` reads — the test that would have caught each drift of the old copies
(``--dask --fast`` computing the exact value, no duplicate-rows note in ``rankme select``, float32 kept rows)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import rankme
import rankme.scoring.engine as engine
import rankme.scoring.result as result_mod
from rankme.cli import main
from rankme.io.files import EmbeddingSource
from rankme.scoring.options import ScoringOptions, scoring_options
from rankme.scoring.source import score_source

N, K = 240, 12


@pytest.fixture
def seen(monkeypatch):
    """Every call of the one metric step, with the options and the states it got."""
    calls: list[dict] = []
    real = result_mod.scored

    def spy(name, spectra, options, **kw):
        calls.append({"name": name, "options": options, **kw})
        return real(name, spectra, options, **kw)

    monkeypatch.setattr(result_mod, "scored", spy)
    monkeypatch.setattr(engine, "scored", spy)
    return calls


def _matrix(seed: int = 0, repeats: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((N, 6)) @ rng.standard_normal((6, K)) + 0.01 * rng.standard_normal((N, K))
    if repeats:
        z[N // 2:] = z[: N - N // 2]  # half the rows repeat the first half
    return z


def _runs(root: Path, repeats: bool = False) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, lr in enumerate((0.1, 0.3, 1.0)):
        p = root / f"lr={lr}.npy"
        np.save(p, _matrix(i, repeats))
        paths.append(p)
    return paths


OPTIONS = {
    "samples": ({"samples": 100, "seed": 3}, lambda o, c: o.samples == 100 and o.seed == 3),
    "estimate": ({"estimate": True}, lambda o, c: o.estimate),
    "precision": ({"precision": "float32"}, lambda o, c: o.precision == "float32"),
    "variant": ({"variant": {"center": True, "eigen": True}},
                lambda o, c: dict(o.variant) == {"center": True, "eigen": True}),
}


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_score_source_and_the_cli_pass_each_option_to_the_state(tmp_path, seen, option, capsys):
    kwargs, reached = OPTIONS[option]
    score_source(EmbeddingSource("z", _matrix()), ["rankme"], progress=False, **kwargs)
    assert reached(seen[-1]["options"], seen[-1])
    np.save(tmp_path / "z.npy", _matrix())
    flags = {"samples": ["--samples", "100", "--seed", "3"], "estimate": ["--fast"],
             "precision": ["--precision", "float32"], "variant": ["--center", "--eigen"]}[option]
    assert main(["score", str(tmp_path / "z.npy"), "--json", "--no-progress", *flags]) == 0
    capsys.readouterr()
    assert reached(seen[-1]["options"], seen[-1])


@pytest.mark.slow
@pytest.mark.parametrize("option", ["estimate", "samples", "precision", "variant"])
def test_the_dask_engine_swaps_only_the_accumulate_step(tmp_path, seen, option):
    pytest.importorskip("distributed")
    from rankme.integrations.dask import connect, score_shards

    kwargs, reached = OPTIONS[option]
    d = tmp_path / "shards"
    d.mkdir()
    z = np.random.default_rng(0).standard_normal((3000, 64))  # big enough for the fast option to estimate
    for i in range(3):
        np.save(d / f"part-{i}.npy", z[i * 1000:(i + 1) * 1000])
    client = connect("local", workers=2)
    try:
        on_dask = score_shards([d], client=client, **kwargs)
    finally:
        client.cluster.close()
        client.close()
    assert reached(seen[-1]["options"], seen[-1])
    here = score_source(EmbeddingSource("z", z), ["rankme"], progress=False, **kwargs)
    assert on_dask.metrics == pytest.approx(here.metrics, rel=1e-9)  # the same number, option included


def test_select_files_count_duplicates_and_keep_float64_rows(tmp_path, seen):
    paths = _runs(tmp_path / "runs", repeats=True)
    res = rankme.select(tmp_path / "runs", labels=np.arange(N) % 2, samples=200, seed=1, progress=False)
    fresh = [c for c in seen if c["rows"] is not None]
    assert fresh and all(c["rows"].dtype == np.float64 for c in fresh)  # the one kept-row dtype
    assert all(c["options"].samples == 200 and c["options"].seed == 1 for c in seen)
    for cand in res.candidates:  # the duplicate-rows note reaches select's candidates, as rankme score's rows
        assert any("distinct rows" in n for n in cand.notes), cand.notes
    assert len(paths) == len(res.candidates)
    again = rankme.select(tmp_path / "runs", out=tmp_path / "o", samples=200, seed=1, progress=False)
    cached = rankme.select(tmp_path / "runs", out=tmp_path / "o", samples=200, seed=1, progress=False)
    assert all(c.cached for c in cached.candidates)
    assert [c.notes for c in cached.candidates] == [c.notes for c in again.candidates]  # the record keeps them
    assert [c.metrics for c in cached.candidates] == [c.metrics for c in again.candidates]


def test_select_models_finish_on_the_same_path(tmp_path, seen):
    x = np.random.default_rng(0).standard_normal((200, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    res = rankme.select(model=["torch:select_models:mlp"], data=tmp_path / "x.npy", layers="all",
                        labels=np.arange(200) % 2, samples=150, seed=2, progress=False)
    assert {c["name"] for c in seen} == {res.candidates[0].name}
    assert all(c["options"].samples == 150 and c["options"].seed == 2 for c in seen)
    assert all(c["rows"] is not None and c["rows"].dtype == np.float64 for c in seen)


def test_the_monitor_finishes_on_the_same_path(seen):
    import torch

    from rankme.monitor import LidarViews, RankMeMonitor

    net = torch.nn.Sequential(torch.nn.Linear(8, 8))
    probe = [torch.randn(32, 8) for _ in range(4)]
    mon = RankMeMonitor(net, "0", probe, metrics=["rankme", "lidar"],
                        lidar=LidarViews(lambda b: b + 0.1 * torch.randn_like(b), views=3, samples=32))
    out = mon.compute()
    assert isinstance(mon.options, ScoringOptions) and mon.options.views == 3
    assert seen[-1]["options"] is mon.options and seen[-1]["views"] is not None
    assert set(out) == {"rankme/0", "lidar/0"}


def test_the_reproduction_scores_its_runs_on_the_same_path(seen):
    pytest.importorskip("mnist1d")
    import torch

    from rankme.paper.models import mnist1d_model
    from rankme.paper.train import RunConfig, evaluate_run, load_dataset

    cfg = RunConfig(method="simclr", num_samples=600, epochs=1, rank_samples=128)
    torch.manual_seed(0)
    scores = evaluate_run(cfg, mnist1d_model().eval(), load_dataset(cfg))
    first = seen[0]["options"]
    assert set(first.metrics) <= set(scores) and "rankme" in first.metrics


def test_options_are_checked_once_by_the_table():
    with pytest.raises(rankme.InputError, match="samples must be a positive integer, got 0") as e:
        scoring_options(samples=0)
    assert e.value.param == "samples"
    with pytest.raises(rankme.InputError) as e:
        scoring_options(variant={"centre": True})
    assert e.value.param == "variant"
    assert json.loads(json.dumps(scoring_options(variant={"eps": 0.0}).variant)) == [["eps", 0.0]]


def test_one_selection_record_with_failures_as_data_and_pure_renderers(tmp_path):
    import dataclasses

    import rankme.selection.select as pipeline
    from rankme.cli.errors import user_message
    from rankme.reporting.select_report import render_text, write_select_report
    from rankme.selection.record import Selection

    _runs(tmp_path / "runs")
    bad = _matrix(9)
    bad[7, 2] = np.nan
    np.save(tmp_path / "runs" / "lr=3.0.npy", bad)
    res = rankme.select(tmp_path / "runs", progress=False)
    assert rankme.select is pipeline.select  # the selection function itself, no wrapper copying fields
    assert type(res) is Selection and res.selection is res
    (failure,) = res.failures
    assert failure.name.endswith("lr=3.0.npy") and isinstance(failure.error, rankme.InputError)
    assert failure.error.kind == "non-finite" and failure.error.path == failure.name and failure.error.row == 7
    before = res.to_dict()
    assert f"not scored: {failure.message(user_message)}" in render_text(res, say=user_message)
    write_select_report(res, tmp_path / "r.html", say=user_message)
    assert res.to_dict() == before and res.failures == [failure]  # rendering changed nothing
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.notes = []  # type: ignore[misc]
