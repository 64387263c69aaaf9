"""Lightning ``RankMeCallback``: RankMe of chosen layers on a held-out probe set, logged like any metric.

Examples:
    >>> from rankme.integrations.lightning import RankMeCallback  # doctest: +SKIP
    >>> trainer = L.Trainer(callbacks=[RankMeCallback(probe_loader, taps="projector")])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rankme.core.optional import MissingExtraError, require
from rankme.integrations.loggers import log_spectra
from rankme.monitor.config import MonitorConfig
from rankme.monitor.monitor import RankMeMonitor

try:  # the unified package first, then the standalone one
    _pl = require("lightning.pytorch", "lightning", "RankMeCallback")
except MissingExtraError:
    _pl = require("pytorch_lightning", "lightning", "RankMeCallback")

__all__ = ["RankMeCallback"]

_LEGACY_ALARM_KEYS = ("previous", "seen", "streak")
"""The alarm's state was saved as ``alarm_<key>`` entries of the callback's state before it had its own."""


class RankMeCallback(_pl.Callback):  # type: ignore[name-defined]
    """Log ``rankme/<tap>`` (and any registry metric) through ``pl_module.log``.

    Scores at the end of validation every ``every_n_epochs`` epochs; when no validation ran in an epoch (SSL
    pretraining often has no validation loader), at the end of that training epoch instead. With
    ``every_n_steps``, every that many training steps. Runs in eval mode under ``no_grad`` and leaves every
    submodule's mode, ``requires_grad`` and the random generators as they were. Under DDP each rank embeds its
    share of the probe set, the state is all-reduced exactly, and every rank logs the same value.

    Taps are names of submodules of the LightningModule; a name found once below it (``"projector"`` for
    ``self.model.projector``) is accepted too. They are checked when fitting starts. ``alarm`` (a
    :class:`~rankme.monitor.CollapseAlarm`) warns, and with ``stop_on_collapse=True`` sets ``trainer.should_stop``;
    the reason is kept in ``self.stop_reason``. With ``labels`` (one per probe row, -1 or NaN for unlabelled rows)
    and optionally ``label_budget`` (labels per class), every ``fewlabel_every``-th evaluation also logs each tap's
    cross-validated linear and k-NN accuracy with its 95 % interval (``fewlabel_linear/<tap>``,
    ``fewlabel_linear_lo/<tap>``, ...), the computation of ``rankme select --labels``. Arguments: see
    :class:`~rankme.monitor.MonitorConfig`.
    """

    def __init__(self, probe_dataloader: Iterable[Any], taps: Any = "projector", **options: Any) -> None:
        super().__init__()
        self.config = MonitorConfig(taps, **options)
        self.probe_dataloader = probe_dataloader
        self.history: list[dict[str, float]] = []
        self.stop_reason: str | None = None
        self._monitor: RankMeMonitor | None = None
        self._scored_epoch = -1

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        """Check the taps against the module before the first epoch (a wrong name fails here, not an epoch later)."""
        self._monitor = self.config.build(pl_module, self.probe_dataloader)

    def _evaluate(self, trainer: Any, pl_module: Any) -> None:
        import torch

        monitor = self._monitor = self.config.build(pl_module, self.probe_dataloader, reuse=self._monitor)
        values = monitor.compute(fewlabel=self.config.fewlabel_due(len(self.history) + 1))
        step = max(int(trainer.global_step) - 1, 0)  # the step Lightning's loggers give this point
        if self.config.every_n_steps is None:
            for key, value in values.items():  # float64 tensors: Lightning would round a Python float to float32
                pl_module.log(key, torch.tensor(value, dtype=torch.float64), on_step=False, on_epoch=True,
                              sync_dist=False, rank_zero_only=False)
        else:  # straight to the loggers: self.log(on_step=True) here would repeat the value at every later step
            for lg in trainer.loggers:
                lg.log_metrics(dict(values), step=step)
        self.history.append({"epoch": float(trainer.current_epoch), "step": float(step), **values})
        if self.config.log_spectra and trainer.is_global_zero:
            for lg in trainer.loggers:  # TensorBoard / W&B get the spectra as histograms and figures
                log_spectra(lg.experiment, monitor.spectra, step)
        self._scored_epoch = trainer.current_epoch
        if monitor.last_alarm:
            self.stop_reason = monitor.last_alarm
            if self.config.stop_on_collapse:
                trainer.should_stop = True
                _pl.utilities.rank_zero_info(f"RankMeCallback stops training: {monitor.last_alarm}")

    def _due(self, trainer: Any) -> bool:
        return (self.config.every_n_steps is None and (trainer.current_epoch + 1) % self.config.every_n_epochs == 0
                and self._scored_epoch != trainer.current_epoch)

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.sanity_checking and self._due(trainer):
            self._evaluate(trainer, pl_module)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self._due(trainer):  # no validation ran this epoch
            self._evaluate(trainer, pl_module)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        n = self.config.every_n_steps
        if n is not None and trainer.global_step % n == 0:
            self._evaluate(trainer, pl_module)

    def state_dict(self) -> dict[str, Any]:
        """The history, the stop reason and the collapse alarm's running state (``alarm``: its
        :meth:`~rankme.monitor.CollapseAlarm.state_dict`, ``None`` without an alarm)."""
        alarm = self.config.alarm
        return {"history": self.history, "stop_reason": self.stop_reason,
                "alarm": None if alarm is None else alarm.state_dict()}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`; a checkpoint written before the alarm had its own state (keys
        ``alarm_previous``, ``alarm_seen``, ``alarm_streak``) resumes too."""
        self.history = list(state_dict.get("history", []))
        self.stop_reason = state_dict.get("stop_reason")
        alarm, saved = self.config.alarm, state_dict.get("alarm")
        if saved is None and any(f"alarm_{k}" in state_dict for k in _LEGACY_ALARM_KEYS):
            saved = {k: state_dict.get(f"alarm_{k}", {}) for k in _LEGACY_ALARM_KEYS}
        if alarm is not None and saved is not None:
            alarm.load_state_dict(saved)
