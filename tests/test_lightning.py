"""A real Lightning Trainer (CPU) with RankMeCallback: logged values, collapse alarm, and 2-process DDP."""

from __future__ import annotations

import csv
import json
import os
import sys
import warnings
from pathlib import Path

import pytest
import torch

pytest.importorskip("lightning")
import lightning as L

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from lightning_vicreg import LitVICReg, digits_loaders

import rankme
from rankme.integrations.lightning import RankMeCallback
from rankme.monitor import CollapseAlarm, LidarViews


def _trainer(tmp_path, callback, max_epochs, **kw):
    return L.Trainer(max_epochs=max_epochs, accelerator="cpu", callbacks=[callback], enable_progress_bar=False,
                     enable_model_summary=False, logger=L.pytorch.loggers.CSVLogger(tmp_path), log_every_n_steps=1,
                     enable_checkpointing=False, **kw)


def _probe_embeddings(module, probe):
    module.eval()
    with torch.no_grad():
        return torch.cat([module.model(b[0]) for b in probe])


@pytest.mark.slow  # a Lightning fit (~12 CPU s measured on the loaded 2-core machine)
def test_callback_logs_through_csv_logger_and_matches_offline(tmp_path):
    torch.manual_seed(0)
    train, val, probe = digits_loaders(probe_size=256)
    cb = RankMeCallback(probe, taps=["projector", "backbone"], metrics=["rankme", "stable_rank"])
    module = LitVICReg()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _trainer(tmp_path, cb, 2).fit(module, train, val)
    rows = list(csv.DictReader(open(next(Path(tmp_path).rglob("metrics.csv")))))
    logged = [float(r["rankme/projector"]) for r in rows if r.get("rankme/projector")]
    assert len(logged) == 2 and len(cb.history) == 2
    assert any(r.get("stable_rank/backbone") for r in rows)
    offline = rankme.rankme(_probe_embeddings(module, probe))
    assert logged[-1] == pytest.approx(offline, rel=1e-9)
    assert cb.state_dict()["history"][-1]["rankme/projector"] == pytest.approx(offline, rel=1e-12)


@pytest.mark.parametrize("collapse", [True, pytest.param(False, marks=pytest.mark.slow)])  # False: ~8 CPU s
def test_collapsing_run_trips_the_alarm_and_stops(tmp_path, collapse):
    torch.manual_seed(0)
    train, val, probe = digits_loaders(probe_size=256)
    cb = RankMeCallback(probe, taps="projector", alarm=CollapseAlarm(threshold=2.0, warmup=0, patience=1), stop_on_collapse=True)
    trainer = _trainer(tmp_path, cb, 3)
    weights = {"var": 0.0, "cov": 0.0} if collapse else {}  # invariance only collapses the BN-free MLP
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(LitVICReg(mlp=True, lr=1e-2, **weights), train, val)
    if collapse:
        assert cb.stop_reason is not None and "below the threshold 2" in cb.stop_reason
        assert trainer.current_epoch < 2 and len(cb.history) == 1
        assert cb.history[-1]["rankme/projector"] < 2.0
    else:
        assert cb.stop_reason is None and len(cb.history) == 3


class _TwoViews:
    """A deterministic augmentation: calls alternate x·1.1 and x·0.9, so the views can be rebuilt offline
    (a class, not a closure: ddp_spawn pickles the callback)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, batch):
        scale = 1.1 if self.calls % 2 == 0 else 0.9
        self.calls += 1
        return (batch[0] * scale, *batch[1:])


class _RecordingCallback(RankMeCallback):
    """Writes, per rank, what the callback computed and an offline single-process reference."""

    def __init__(self, probe, out_dir: str) -> None:
        super().__init__(probe, taps="projector", metrics=["rankme", "cluster"],
                         lidar=LidarViews(_TwoViews(), views=2, samples=None))
        self.out_dir = out_dir

    def _evaluate(self, trainer, pl_module) -> None:  # type: ignore[override]
        super()._evaluate(trainer, pl_module)
        with torch.no_grad():
            was = pl_module.training
            pl_module.eval()
            emb = torch.cat([pl_module.model(b[0]) for b in self.probe_dataloader])
            x = torch.cat([b[0] for b in self.probe_dataloader])
            views = torch.stack([pl_module.model(x * 1.1), pl_module.model(x * 0.9)], dim=1)
            pl_module.train(was)
        last = self.history[-1]
        record = {"rank": trainer.global_rank, "value": last["rankme/projector"], "offline": rankme.rankme(emb),
                  "lidar": last["lidar/projector"], "offline_lidar": rankme.lidar(views, 2),
                  "cluster": last["cluster/projector"]}
        path = os.path.join(self.out_dir, f"rank{trainer.global_rank}-epoch{trainer.current_epoch}.json")
        with open(path, "w") as fh:
            json.dump(record, fh)


@pytest.mark.slow
def test_two_process_ddp_logs_equal_values_on_both_ranks(tmp_path):
    torch.manual_seed(0)
    train, val, probe = digits_loaders(probe_size=256)
    cb = _RecordingCallback(probe, str(tmp_path))
    trainer = _trainer(tmp_path, cb, 1, strategy="ddp_spawn", devices=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(LitVICReg(), train, val)
    recs = [json.loads(p.read_text()) for p in sorted(Path(tmp_path).glob("rank*-epoch0.json"))]
    assert [r["rank"] for r in recs] == [0, 1]
    assert recs[0]["value"] == recs[1]["value"]
    assert recs[0]["lidar"] == recs[1]["lidar"] == pytest.approx(recs[0]["offline_lidar"], rel=1e-6)
    assert recs[0]["cluster"] == recs[1]["cluster"] and 0.0 <= recs[0]["cluster"] <= 1.0  # shards gathered
    for r in recs:
        # same rows, Gram summed in another order: equal to float64 rounding, which on these near-low-rank
        # embeddings (RankMe ≈ 5 of 128) is the engine's documented 1e-6 accuracy floor
        assert r["value"] == pytest.approx(r["offline"], rel=1e-6)


@pytest.mark.slow  # two Lightning fits (~14 CPU s)
def test_no_validation_loader_still_logs_and_a_wrong_tap_fails_before_training(tmp_path):
    torch.manual_seed(0)
    train, _, probe = digits_loaders(probe_size=256)
    cb = RankMeCallback(probe, taps="projector")  # resolves to model.projector: no alias needed
    module = LitVICReg()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _trainer(tmp_path / "a", cb, 2).fit(module, train)  # SSL pretraining without a validation loader
    rows = list(csv.DictReader(open(next(Path(tmp_path / "a").rglob("metrics.csv")))))
    logged = [float(r["rankme/projector"]) for r in rows if r.get("rankme/projector")]
    assert len(logged) == 2 and logged[-1] == pytest.approx(rankme.rankme(_probe_embeddings(module, probe)), rel=1e-9)
    bad = RankMeCallback(probe, taps="projektor")
    trainer = _trainer(tmp_path / "b", bad, 2)
    with pytest.raises(AttributeError, match=r"'projektor' is not a submodule.*model\.projector"):
        trainer.fit(LitVICReg(), train)
    assert trainer.global_step == 0  # refused at fit start, not after an epoch


def test_callback_evaluation_leaves_every_submodule_mode_as_found(tmp_path):
    _, _, probe = digits_loaders(probe_size=128)
    module = LitVICReg()
    module.train()
    module.model.backbone[1].eval()  # a BatchNorm the user froze
    modes = [m.training for m in module.modules()]
    cb = RankMeCallback(probe, taps="backbone")
    trainer = _trainer(tmp_path, cb, 1)
    trainer.strategy.connect(module)  # what fit() does before any hook
    cb.on_fit_start(trainer, module)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cb._evaluate(trainer, module)
    assert [m.training for m in module.modules()] == modes
    with pytest.raises(ValueError, match="every_n_steps must be a positive integer"):
        RankMeCallback(probe, every_n_steps=0)


@pytest.mark.slow  # Lightning fits (~7 and ~24 CPU s)
@pytest.mark.parametrize("every_n_steps", [None, 5])
def test_history_steps_equal_the_logger_steps(tmp_path, every_n_steps):
    torch.manual_seed(0)
    train, val, probe = digits_loaders(probe_size=128)
    cb = RankMeCallback(probe, taps="projector", every_n_steps=every_n_steps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _trainer(tmp_path, cb, 2).fit(LitVICReg(), train, val)
    rows = list(csv.DictReader(open(next(Path(tmp_path).rglob("metrics.csv")))))
    logged = [(int(r["step"]), float(r["rankme/projector"])) for r in rows if r.get("rankme/projector")]
    assert logged == [(int(h["step"]), pytest.approx(h["rankme/projector"], rel=1e-6)) for h in cb.history]
    assert len(logged) == (2 if every_n_steps is None else 4)  # logged where computed, never repeated
