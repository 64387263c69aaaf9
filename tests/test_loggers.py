"""The monitor's spectra land where people look: read back from TensorBoard event files and W&B offline runs
(real Lightning and Hugging Face trainers, no mocks)."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


@pytest.fixture(autouse=True)
def _fresh_wandb():
    """W&B keeps process-wide settings (its run directory among them): start and end every test clean."""
    wandb = pytest.importorskip("wandb")
    wandb.teardown()
    yield
    wandb.teardown()


def _events(root: Path) -> EventAccumulator:
    files = sorted(root.rglob("events.out.tfevents.*"))
    assert files, f"no event file under {root}"
    acc = EventAccumulator(str(files[0].parent), size_guidance={"histograms": 0, "images": 0, "scalars": 0})
    acc.Reload()
    return acc


def _wandb_history(root: Path) -> dict:
    """The last logged value of every key of the newest W&B offline run, read from its ``run-*.wandb`` file (a
    LevelDB-style log of ``wandb_internal_pb2.Record`` protobufs, as ``wandb sync`` reads it)."""
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    files = sorted(root.rglob("offline-run-*/run-*.wandb"))
    assert files, f"no W&B offline run under {root}"
    raw = files[-1].read_bytes()
    pos, buf, out = 7, b"", {}  # 7-byte file header, then records in 32 KiB blocks
    while pos + 7 <= len(raw):
        if 32768 - pos % 32768 < 7:
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", raw[pos : pos + 7])
        data, pos = raw[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 0:
            break
        buf = data if kind in (1, 2) else buf + data
        if kind in (1, 4):  # a whole record
            rec = pb.Record()
            rec.ParseFromString(buf)
            if rec.WhichOneof("record_type") == "history":
                for item in rec.history.item:
                    out[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return out


def test_plain_monitor_spectra_to_a_summary_writer(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    from rankme.integrations.loggers import log_spectra
    from rankme.monitor import RankMeMonitor

    net = torch.nn.Linear(8, 16)
    mon = RankMeMonitor(net, "", [torch.randn(64, 8)])
    mon.compute()
    writer = SummaryWriter(tmp_path / "tb")
    assert log_spectra(writer, mon.spectra, step=7)
    writer.close()
    acc = _events(tmp_path / "tb")
    (hist,) = acc.Histograms("spectrum/")
    sv = mon.spectra[""](center=False).singular_values
    expected = np.log10(sv[:9] / sv[0])
    assert hist.step == 7 and hist.histogram_value.num == 9  # affine map of 8-d inputs: rank 9; the null space
    # (7 σ at the Gram's rounding floor, ~1e-8·σ_max) is noise and is left out
    assert hist.histogram_value.min == pytest.approx(expected.min()) and hist.histogram_value.max == 0.0
    assert hist.histogram_value.sum == pytest.approx(expected.sum())
    assert "spectrum_plot/" in acc.Tags()["images"]


@pytest.mark.slow  # a Lightning fit with TensorBoard and W&B (~12 CPU s measured on the loaded machine)
def test_lightning_tensorboard_and_wandb_loggers_receive_the_spectra(tmp_path, monkeypatch):
    pytest.importorskip("lightning")
    pytest.importorskip("wandb")
    import sys

    import lightning as L

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from lightning_vicreg import LitVICReg, digits_loaders

    from rankme.integrations.lightning import RankMeCallback

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    torch.manual_seed(0)
    train, val, probe = digits_loaders(probe_size=256)
    tb = L.pytorch.loggers.TensorBoardLogger(tmp_path / "tb", name="run")
    wb = L.pytorch.loggers.WandbLogger(save_dir=str(tmp_path), offline=True, project="rankme-test")
    cb = RankMeCallback(probe, taps="projector")
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", callbacks=[cb], logger=[tb, wb], enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, log_every_n_steps=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(LitVICReg(), train, val)
    wb.experiment.finish()
    acc = _events(tmp_path / "tb")
    hists = acc.Histograms("spectrum/projector")
    assert len(hists) == 2 and hists[-1].histogram_value.num == 128  # K = 128, N = 256: every σ positive
    assert acc.Scalars("rankme/projector")[-1].value == pytest.approx(cb.history[-1]["rankme/projector"], rel=1e-6)
    logged = _wandb_history(tmp_path)
    assert logged["spectrum/projector/_type"] == "histogram" and sum(logged["spectrum/projector/values"]) == 128
    assert logged["spectrum_plot/projector/_type"] == "image-file"
    assert logged["rankme/projector"] == pytest.approx(cb.history[-1]["rankme/projector"], rel=1e-6)


@pytest.mark.slow  # a transformers Trainer run (~8 CPU s)
def test_huggingface_report_to_tensorboard_and_wandb(tmp_path, monkeypatch):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("wandb")
    from torch.utils.data import DataLoader

    from rankme.integrations.huggingface import RankMeTrainerCallback
    from test_huggingface import _Tokens

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_PROJECT", "rankme-test")
    cfg = transformers.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=64, max_position_embeddings=32, num_labels=2)
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(cfg)
    args = transformers.TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=4, eval_strategy="steps",
                                          eval_steps=2, per_device_train_batch_size=8, logging_steps=1,
                                          report_to=["tensorboard", "wandb"],
                                          use_cpu=True, save_strategy="no", disable_tqdm=True)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=_Tokens(64, 0), eval_dataset=_Tokens(16, 1))
    RankMeTrainerCallback(DataLoader(_Tokens(96, 2, labels=False), batch_size=32),
                          taps={"layer1": "bert.encoder.layer.1"}).attach(trainer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train()
    import wandb

    wandb.finish()
    acc = _events(tmp_path / "out")  # the Trainer's TensorBoard run directory
    assert [h.step for h in acc.Histograms("spectrum/layer1")] == [2, 4]
    assert _wandb_history(tmp_path)["spectrum/layer1/_type"] == "histogram"
    assert os.path.isdir(tmp_path / "wandb")


@pytest.mark.slow  # a Lightning fit with TensorBoard (~10 CPU s on the loaded machine)
def test_lightning_fewlabel_probe_read_back_from_tensorboard(tmp_path):
    pytest.importorskip("lightning")
    import sys

    import lightning as L
    from sklearn.datasets import load_digits

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from lightning_vicreg import LitVICReg, digits_loaders

    from rankme.integrations.lightning import RankMeCallback
    from rankme.monitor.fewlabel import FEWLABEL_KEYS
    from rankme.selection.labelcheck import few_label_job, label_plan

    torch.manual_seed(0)
    train, val, probe = digits_loaders(probe_size=256)
    _, digits = load_digits(return_X_y=True)  # the probe rows' classes: digits_loaders' permutation, seed 0
    labels = digits[torch.randperm(len(digits), generator=torch.Generator().manual_seed(0))[:256].numpy()]
    labels[::3] = -1  # a third of the probe rows unlabelled
    tb = L.pytorch.loggers.TensorBoardLogger(tmp_path / "tb", name="run")
    cb = RankMeCallback(probe, taps="projector", labels=labels, label_budget=5, fewlabel_every=2, log_spectra=False)
    module = LitVICReg()
    trainer = L.Trainer(max_epochs=4, accelerator="cpu", callbacks=[cb], logger=tb, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, log_every_n_steps=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, train, val)
    acc = _events(tmp_path / "tb")
    rank_steps = [s.step for s in acc.Scalars("rankme/projector")]
    assert len(rank_steps) == 4
    for key in FEWLABEL_KEYS:
        logged = acc.Scalars(f"{key}/projector")
        assert [s.step for s in logged] == rank_steps[1::2]  # epochs 2 and 4: every 2nd evaluation
        assert [s.value for s in logged] == [pytest.approx(h[f"{key}/projector"], rel=1e-6)
                                             for h in cb.history if f"{key}/projector" in h]
    lin, lo, hi = (acc.Scalars(f"fewlabel_linear{s}/projector")[-1].value for s in ("", "_lo", "_hi"))
    assert lo <= lin <= hi and lin > 10.0 * 1.5  # ten digit classes: well above chance (10 %)
    # the last values are `rankme select --labels`' few-label check of the trained projector's probe features
    module.eval()
    with torch.no_grad():
        feats = torch.cat([module.model(b[0]) for b in probe]).numpy().astype(np.float64)
    rec = few_label_job(label_plan(labels, 5, seed=0))[1](feats)
    assert [cb.history[-1][f"{key}/projector"] for key in FEWLABEL_KEYS] == \
        [rec[k] for k in ("linear", "linear_lo", "linear_hi", "knn", "knn_lo", "knn_hi")]
