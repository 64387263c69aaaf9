"""Hugging Face ``RankMeTrainerCallback``: RankMe of chosen layers, reported through ``Trainer.log``.

>>> cb = RankMeTrainerCallback(probe_loader, taps="bert.encoder.layer.1").attach(trainer)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rankme.integrations import require
from rankme.monitor import CollapseAlarm, LidarViews, RankMeMonitor, default_forward

_tf = require("transformers", "transformers")

__all__ = ["RankMeTrainerCallback"]


class RankMeTrainerCallback(_tf.TrainerCallback):  # type: ignore[name-defined]
    """Score taps on a probe set at every evaluation (``on_evaluate``), or every ``every_n_steps`` steps.

    Values go through ``trainer.log`` so every reporting integration (TensorBoard, W&B, ...) and
    ``trainer.state.log_history`` receive them: use :meth:`attach` (it registers the callback and keeps the
    trainer). With an ``alarm`` and ``stop_on_collapse=True`` it sets ``control.should_training_stop``.
    """

    def __init__(
        self,
        probe_dataloader: Iterable[Any],
        taps: Any,
        *,
        every_n_steps: int | None = None,
        samples: int | None = 25_600,
        metrics: Sequence[str] = ("rankme",),
        pool: str = "mean",
        forward: Callable[[Any, Any], Any] = default_forward,
        alarm: CollapseAlarm | None = None,
        stop_on_collapse: bool = False,
        lidar: LidarViews | None = None,
    ) -> None:
        self.probe_dataloader, self.taps, self.samples, self.every_n_steps = probe_dataloader, taps, samples, every_n_steps
        self.metrics, self.pool, self.forward = list(metrics), pool, forward
        self.alarm, self.stop_on_collapse, self.lidar = alarm, stop_on_collapse, lidar
        self.trainer: Any = None
        self.history: list[dict[str, float]] = []
        self.stop_reason: str | None = None

    def attach(self, trainer: Any) -> RankMeTrainerCallback:
        """Register on ``trainer`` and keep it, so values are reported through ``trainer.log``."""
        self.trainer = trainer
        trainer.add_callback(self)
        return self

    def _evaluate(self, state: Any, control: Any, model: Any) -> None:
        if model is None:
            raise ValueError("RankMeTrainerCallback needs the model (the Trainer passes it to callbacks)")
        monitor = RankMeMonitor(model, self.taps, self.probe_dataloader, samples=self.samples,
                                metrics=self.metrics, pool=self.pool, forward=self.forward, alarm=self.alarm,
                                lidar=self.lidar)
        values = monitor.compute()
        self.history.append({"step": float(state.global_step), **values})
        if self.trainer is not None:
            self.trainer.log(dict(values))
        if monitor.last_alarm:
            self.stop_reason = monitor.last_alarm
            if self.stop_on_collapse:
                control.should_training_stop = True

    def on_evaluate(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if self.every_n_steps is None:
            self._evaluate(state, control, model)

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if self.every_n_steps is not None and state.global_step % self.every_n_steps == 0:
            self._evaluate(state, control, model)
