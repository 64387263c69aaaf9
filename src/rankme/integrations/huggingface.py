"""Hugging Face ``RankMeTrainerCallback``: RankMe of chosen layers, reported through ``Trainer.log``.

Examples:
    >>> cb = RankMeTrainerCallback(probe_loader, taps="bert.encoder.layer.1").attach(trainer)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rankme.core.errors import InputError
from rankme.core.optional import require
from rankme.integrations.loggers import log_spectra
from rankme.monitor.config import MonitorConfig
from rankme.monitor.monitor import RankMeMonitor

_tf = require("transformers", "transformers", "RankMeTrainerCallback")

__all__ = ["RankMeTrainerCallback"]


class RankMeTrainerCallback(_tf.TrainerCallback):  # type: ignore[name-defined]
    """Score taps on a probe set at every evaluation (``on_evaluate``), or every ``every_n_steps`` steps.

    Values go through ``trainer.log`` so every reporting integration (TensorBoard, W&B, ...) and
    ``trainer.state.log_history`` receive them: use :meth:`attach` (it registers the callback and keeps the
    trainer). Taps are checked when training begins. With an ``alarm`` and ``stop_on_collapse=True`` it sets
    ``control.should_training_stop``. With ``labels`` (one per probe row, -1 or NaN for unlabelled rows) and
    optionally ``label_budget``, every ``fewlabel_every``-th evaluation also logs each tap's cross-validated linear
    and k-NN accuracy with its 95 % interval (``fewlabel_linear/<tap>``, ``fewlabel_linear_lo/<tap>``, ...).
    Arguments: see :class:`~rankme.monitor.MonitorConfig`.
    """

    def __init__(self, probe_dataloader: Iterable[Any], taps: Any, **options: Any) -> None:
        self.config = MonitorConfig(taps, **options)
        self.probe_dataloader = probe_dataloader
        self.trainer: Any = None
        self.history: list[dict[str, float]] = []
        self.stop_reason: str | None = None
        self._monitor: RankMeMonitor | None = None

    def attach(self, trainer: Any) -> RankMeTrainerCallback:
        """Register on ``trainer`` and keep it, so values are reported through ``trainer.log``."""
        self.trainer = trainer
        trainer.add_callback(self)
        return self

    def _get_monitor(self, model: Any) -> RankMeMonitor:
        if model is None:
            raise InputError("RankMeTrainerCallback needs the model (the Trainer passes it to callbacks)",
                             param="model")
        self._monitor = self.config.build(model, self.probe_dataloader, reuse=self._monitor)
        return self._monitor

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        """Check the taps against the model before the first step."""
        self._get_monitor(model)

    def _evaluations_done(self, state: Any, monitor: RankMeMonitor) -> int:
        """Evaluations this run has made: this callback's history, or, after a resume from a checkpoint (whose
        trainer state keeps the log history, not this callback), the logged entries of its first value, so the
        few-label rhythm goes on where it was."""
        tap = next(iter(monitor.taps))
        first = f"rankme_seq_mean/{tap}" if monitor.tokens == "per-sequence" else f"{monitor.metrics[0]}/{tap}"
        return max(len(self.history), sum(first in h for h in getattr(state, "log_history", None) or ()))

    def _evaluate(self, state: Any, control: Any, model: Any) -> None:
        monitor = self._get_monitor(model)
        values = monitor.compute(fewlabel=self.config.fewlabel_due(self._evaluations_done(state, monitor) + 1))
        self.history.append({"step": float(state.global_step), **values})
        if self.trainer is not None:
            self.trainer.log(dict(values))
            if self.config.log_spectra and state.is_world_process_zero:
                for target in _report_targets(self.trainer):
                    log_spectra(target, monitor.spectra, int(state.global_step))
        if monitor.last_alarm:
            self.stop_reason = monitor.last_alarm
            if self.config.stop_on_collapse:
                control.should_training_stop = True

    def on_evaluate(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if self.config.every_n_steps is None:
            self._evaluate(state, control, model)

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        n = self.config.every_n_steps
        if n is not None and state.global_step % n == 0:
            self._evaluate(state, control, model)


def _report_targets(trainer: Any) -> list[Any]:
    """The TensorBoard writers and W&B runs of the trainer's ``report_to`` integrations (once they started)."""
    out = []
    for cb in trainer.callback_handler.callbacks:
        writer = getattr(cb, "tb_writer", None)
        if writer is not None:
            out.append(writer)
        run = getattr(getattr(cb, "_wandb", None), "run", None)
        if run is not None and getattr(cb, "_initialized", False):
            out.append(run)
    return out
