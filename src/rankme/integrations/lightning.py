"""Lightning ``RankMeCallback``: RankMe of chosen layers on a held-out probe set, logged like any metric.

>>> from rankme.integrations.lightning import RankMeCallback  # doctest: +SKIP
>>> trainer = L.Trainer(callbacks=[RankMeCallback(probe_loader, taps="projector")])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from rankme.integrations import require
from rankme.monitor import CollapseAlarm, LidarViews, RankMeMonitor, default_forward

try:  # the unified package first, then the standalone one
    _pl = require("lightning.pytorch", "lightning")
except ImportError:
    _pl = require("pytorch_lightning", "lightning")

__all__ = ["RankMeCallback"]


class RankMeCallback(_pl.Callback):  # type: ignore[name-defined]
    """Log ``rankme/<tap>`` (and other spectral metrics) through ``pl_module.log`` at the end of validation.

    Runs in eval mode under ``no_grad``; every ``every_n_epochs`` validation epochs, or every ``every_n_steps``
    training steps when given. Under DDP each rank embeds its share of the probe set, the state is all-reduced
    exactly, and every rank logs the same value. ``alarm`` (a :class:`~rankme.monitor.CollapseAlarm`) warns, and
    with ``stop_on_collapse=True`` sets ``trainer.should_stop``; the reason is kept in ``self.stop_reason``.
    """

    def __init__(
        self,
        probe_dataloader: Iterable[Any],
        taps: Any = "projector",
        *,
        every_n_epochs: int = 1,
        every_n_steps: int | None = None,
        samples: int | None = 25_600,
        metrics: Sequence[str] = ("rankme",),
        pool: str = "mean",
        forward: Callable[[Any, Any], Any] = default_forward,
        alarm: CollapseAlarm | None = None,
        stop_on_collapse: bool = False,
        lidar: LidarViews | None = None,
    ) -> None:
        super().__init__()
        if every_n_epochs < 1 or (every_n_steps is not None and every_n_steps < 1):
            raise ValueError("every_n_epochs and every_n_steps must be >= 1")
        self.probe_dataloader, self.taps, self.samples = probe_dataloader, taps, samples
        self.every_n_epochs, self.every_n_steps = every_n_epochs, every_n_steps
        self.metrics, self.pool, self.forward = list(metrics), pool, forward
        self.alarm, self.stop_on_collapse, self.lidar = alarm, stop_on_collapse, lidar
        self.history: list[dict[str, float]] = []
        self.stop_reason: str | None = None

    def _evaluate(self, trainer: Any, pl_module: Any) -> None:
        monitor = RankMeMonitor(pl_module, self.taps, self.probe_dataloader, samples=self.samples,
                                metrics=self.metrics, pool=self.pool, forward=self.forward, alarm=self.alarm,
                                lidar=self.lidar)
        values = monitor.compute()
        import torch

        for key, value in values.items():  # a float64 tensor: Lightning would round a Python float to float32
            pl_module.log(key, torch.tensor(value, dtype=torch.float64), on_step=self.every_n_steps is not None, on_epoch=self.every_n_steps is None,
                          sync_dist=False, rank_zero_only=False)
        self.history.append({"epoch": float(trainer.current_epoch), "step": float(trainer.global_step), **values})
        if monitor.last_alarm:
            self.stop_reason = monitor.last_alarm
            if self.stop_on_collapse:
                trainer.should_stop = True
                _pl.utilities.rank_zero_info(f"RankMeCallback stops training: {monitor.last_alarm}")

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking or self.every_n_steps is not None:
            return
        if (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self._evaluate(trainer, pl_module)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.every_n_steps is not None and trainer.global_step % self.every_n_steps == 0:
            self._evaluate(trainer, pl_module)

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "stop_reason": self.stop_reason,
                "alarm_previous": dict(self.alarm.previous) if self.alarm else {}}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
        self.stop_reason = state_dict.get("stop_reason")
        if self.alarm is not None:
            self.alarm.previous.update(state_dict.get("alarm_previous", {}))
