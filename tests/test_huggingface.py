"""A real Hugging Face Trainer on a tiny randomly initialised transformer (built from a config, no download)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

transformers = pytest.importorskip("transformers")

from rankme.integrations.huggingface import RankMeTrainerCallback  # noqa: E402
from rankme.monitor import CollapseAlarm, RankMeMonitor  # noqa: E402


class _Tokens(Dataset):
    def __init__(self, n: int, seed: int, labels: bool = True) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(5, 100, (n, 12), generator=g)
        self.mask = torch.ones(n, 12, dtype=torch.long)
        self.mask[: n // 2, 8:] = 0  # padded rows: the masked mean must ignore them
        self.labels = torch.randint(0, 2, (n,), generator=g) if labels else None

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i):  # type: ignore[no-untyped-def]
        item = {"input_ids": self.ids[i], "attention_mask": self.mask[i]}
        if self.labels is not None:
            item["labels"] = self.labels[i]
        return item


def _trainer(tmp_path, steps: int = 4):
    cfg = transformers.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=64, max_position_embeddings=32, num_labels=2)
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(cfg)
    args = transformers.TrainingArguments(output_dir=str(tmp_path), max_steps=steps, eval_strategy="steps",
                                          eval_steps=2, per_device_train_batch_size=8, logging_steps=1,
                                          report_to=[], use_cpu=True, save_strategy="no", disable_tqdm=True)
    return transformers.Trainer(model=model, args=args, train_dataset=_Tokens(64, 0), eval_dataset=_Tokens(16, 1))


def test_trainer_logs_rankme_on_evaluate(tmp_path):
    trainer = _trainer(tmp_path)
    probe = DataLoader(_Tokens(96, 2, labels=False), batch_size=32)
    cb = RankMeTrainerCallback(probe, taps={"layer1": "bert.encoder.layer.1", "pooler": "bert.pooler"},
                               metrics=["rankme", "participation_ratio"]).attach(trainer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train()
    logged = [h for h in trainer.state.log_history if "rankme/layer1" in h]
    assert len(logged) == 2 and "participation_ratio/pooler" in logged[-1]
    again = RankMeMonitor(trainer.model, {"layer1": "bert.encoder.layer.1"}, probe).compute()
    assert logged[-1]["rankme/layer1"] == pytest.approx(again["rankme/layer1"], rel=1e-9)
    assert 1.0 <= logged[-1]["rankme/layer1"] <= 32.0
    assert cb.history[-1]["step"] == 4


def test_trainer_stops_on_alarm(tmp_path):
    trainer = _trainer(tmp_path, steps=6)
    probe = DataLoader(_Tokens(64, 2, labels=False), batch_size=32)
    cb = RankMeTrainerCallback(probe, taps="bert.pooler", alarm=CollapseAlarm(threshold=1e6, warmup=0, patience=1),
                               stop_on_collapse=True).attach(trainer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train()
    assert cb.stop_reason is not None and trainer.state.global_step == 2


def test_bad_configuration_and_taps_fail_before_training(tmp_path):
    probe = DataLoader(_Tokens(32, 2, labels=False), batch_size=16)
    for bad in (0, -3):
        with pytest.raises(ValueError, match="every_n_steps must be a positive integer"):
            RankMeTrainerCallback(probe, taps="bert.encoder", every_n_steps=bad)
    trainer = _trainer(tmp_path)
    RankMeTrainerCallback(probe, taps="bert.encoder.layer.9").attach(trainer)
    with pytest.raises(AttributeError, match="not a submodule"):
        trainer.train()
    assert trainer.state.global_step == 0


def test_callback_leaves_submodule_modes_as_found(tmp_path):
    probe = DataLoader(_Tokens(32, 2, labels=False), batch_size=16)
    trainer = _trainer(tmp_path)
    model = trainer.model
    model.train()
    model.bert.embeddings.eval()  # a frozen part
    modes = [m.training for m in model.modules()]
    cb = RankMeTrainerCallback(probe, taps="bert.encoder.layer.1").attach(trainer)
    cb.on_train_begin(trainer.args, trainer.state, trainer.control, model=model)
    cb._evaluate(trainer.state, trainer.control, model)
    assert [m.training for m in model.modules()] == modes and cb.history[-1]["rankme/bert.encoder.layer.1"] > 1


def test_trainer_logs_the_fewlabel_probe_every_second_evaluation(tmp_path):
    trainer = _trainer(tmp_path)  # 4 steps, an evaluation every 2: two evaluations
    probe = DataLoader(_Tokens(96, 2, labels=False), batch_size=32)
    y = _Tokens(96, 2).labels.numpy().copy()  # the probe rows' classes (same generator draws)
    y[::4] = -1  # a quarter unlabelled
    cb = RankMeTrainerCallback(probe, taps={"layer1": "bert.encoder.layer.1"}, labels=y, label_budget=10,
                               fewlabel_every=2).attach(trainer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train()
    scored = [h for h in trainer.state.log_history if "rankme/layer1" in h]
    probed = [h for h in trainer.state.log_history if "fewlabel_linear/layer1" in h]
    assert len(scored) == 2 and len(probed) == 1 and probed[0]["step"] == 4  # the 2nd evaluation only
    again = RankMeMonitor(trainer.model, {"layer1": "bert.encoder.layer.1"}, probe, labels=y, label_budget=10)
    offline = again.compute()
    for key in ("fewlabel_linear", "fewlabel_linear_lo", "fewlabel_linear_hi", "fewlabel_knn", "fewlabel_knn_lo",
                "fewlabel_knn_hi"):
        assert probed[0][f"{key}/layer1"] == offline[f"{key}/layer1"] == cb.history[-1][f"{key}/layer1"]
    assert len(again.fewlabel["layer1"].linear_correct) == 2 * 10
    assert "fewlabel_linear/layer1" not in cb.history[0]


def test_a_resumed_run_keeps_the_fewlabel_rhythm(tmp_path):
    """Evaluations at steps 2 and 4, the probe every second one: a run stopped after step 2 (checkpoint saved)
    and resumed with a new callback probes at step 4, as the uninterrupted run does. The trainer state restores
    the log history, not the callback: before, the resumed callback counted from 1 again and skipped the probe."""
    probe = DataLoader(_Tokens(96, 2, labels=False), batch_size=32)
    y = _Tokens(96, 2).labels.numpy().copy()

    def run(steps: int, resume: bool):
        trainer = _trainer(tmp_path, steps)
        trainer.args.save_strategy, trainer.args.save_steps = transformers.IntervalStrategy.STEPS, 2
        cb = RankMeTrainerCallback(probe, taps={"layer1": "bert.encoder.layer.1"}, labels=y, label_budget=10,
                                   fewlabel_every=2).attach(trainer)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.train(resume_from_checkpoint=str(tmp_path / "checkpoint-2") if resume else None)
        return trainer, cb

    first, _ = run(2, resume=False)
    assert [h["step"] for h in first.state.log_history if "rankme/layer1" in h] == [2]
    assert not any("fewlabel_linear/layer1" in h for h in first.state.log_history)
    resumed, cb = run(4, resume=True)
    assert [h["step"] for h in resumed.state.log_history if "fewlabel_linear/layer1" in h] == [4]
    assert len(cb.history) == 1 and "fewlabel_linear/layer1" in cb.history[0]
