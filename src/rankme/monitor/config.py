"""One validated configuration for every training-loop integration (Lightning, Hugging Face, plain PyTorch)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from rankme.core.checks import check_positive
from rankme.core.errors import InputError
from rankme.core.guidance import PAPER_SAMPLES
from rankme.metrics.registry import check_metrics
from rankme.monitor.alarm import CollapseAlarm
from rankme.monitor.fewlabel import fewlabel_probe
from rankme.monitor.monitor import LidarViews, RankMeMonitor
from rankme.monitor.taps import POOLS, default_forward
from rankme.monitor.tokens import check_tokens

__all__ = ["MonitorConfig"]


@dataclass
class MonitorConfig:
    """What to score, how often, and what to do on collapse; checked when built.

    Every argument but ``taps`` is keyword-only.

    Args:
        taps: submodule name(s), or a dict of label → name or callable (see :class:`RankMeMonitor`).
        every_n_epochs: score every this many epochs (≥ 1).
        every_n_steps: score every this many training steps instead (≥ 1), or ``None``.
        samples: probe rows scored (``None``: the whole probe loader; default the paper's 25 600).
        metrics: names from the metric registry.
        pool: pooling rule of :func:`~rankme.monitor.taps.pool_output`.
        forward: how a batch is fed to the model.
        alarm: a :class:`CollapseAlarm`, or ``None``.
        stop_on_collapse: stop training when the alarm trips.
        lidar: how to draw augmented views, for ``lidar``/``invariance``.
        log_spectra: also log each tap's singular-value spectrum (histogram and figure) to the TensorBoard and
            W&B loggers the training loop has.
        labels: a few labels of the probe rows (one per scored probe row, in the probe loader's order; -1, NaN,
            ``None`` or an empty string for unlabelled rows): every ``fewlabel_every``-th evaluation also logs each
            tap's cross-validated linear and k-NN accuracy with its 95 % interval (``fewlabel_linear/<tap>``,
            ``fewlabel_linear_lo/<tap>``, ...; see :class:`RankMeMonitor`).
        label_budget: use this many labelled rows per class (≥ 2), drawn once from ``labels`` with
            ``label_seed``; ``None``: every labelled row.
        label_seed: the draw, the cross-validation folds and the bootstrap resamples.
        fewlabel_every: the few-label probe runs at every this-many-th evaluation (the N-th, 2N-th, ...).
        tokens: ``"all"`` or ``"per-sequence"`` to score the taps' token states (see :class:`RankMeMonitor`);
            ``None``: pooled.

    Examples:
        >>> MonitorConfig("projector", every_n_steps=0)
        Traceback (most recent call last):
        ...
        rankme.core.errors.InputError: every_n_steps must be a positive integer or None, got 0
    """

    taps: Any = "projector"
    _: KW_ONLY
    every_n_epochs: int = 1
    every_n_steps: int | None = None
    samples: int | None = PAPER_SAMPLES
    metrics: list[str] = field(default_factory=lambda: ["rankme"])
    pool: str = "mean"
    forward: Callable[[Any, Any], Any] = default_forward
    alarm: CollapseAlarm | None = None
    stop_on_collapse: bool = False
    lidar: LidarViews | None = None
    log_spectra: bool = True
    labels: Any = None
    label_budget: int | None = None
    label_seed: int = 0
    fewlabel_every: int = 1
    tokens: str | None = None

    def __post_init__(self) -> None:
        check_positive(self.every_n_epochs, "every_n_epochs")
        check_positive(self.every_n_steps, "every_n_steps", none_ok=True, what=" or None")
        check_positive(self.samples, "samples", none_ok=True, what=" or None")
        if self.pool not in POOLS:
            raise InputError(f"pool must be one of {', '.join(POOLS)}, got {self.pool!r}", param="pool")
        self.metrics = check_metrics(list(self.metrics))
        if self.stop_on_collapse and self.alarm is None:
            raise InputError("stop_on_collapse=True needs an alarm=CollapseAlarm(...) to decide what collapse is",
                             param="stop_on_collapse", names=("alarm",))
        fewlabel_probe(self.labels, self.label_budget, self.label_seed, self.fewlabel_every)  # refused now
        check_tokens(self.tokens, metrics=self.metrics, labels=self.labels, lidar=self.lidar, alarm=self.alarm)

    def fewlabel_due(self, evaluation: int) -> bool | None:
        """Whether the ``evaluation``-th evaluation (from 1) runs the few-label probe; ``None`` without labels.

        A callback counts its evaluations in its history (restored with a checkpoint), so the rhythm survives a
        resumed run.

        Examples:
            >>> cfg = MonitorConfig("0", labels=[0, 0, 1, 1], fewlabel_every=2)
            >>> [cfg.fewlabel_due(e) for e in (1, 2, 3, 4)], MonitorConfig("0").fewlabel_due(1)
            ([False, True, False, True], None)
        """
        return None if self.labels is None else evaluation % self.fewlabel_every == 0

    def build(self, model: Any, probe_loader: Iterable[Any], *, taps: Any = None,
              reuse: RankMeMonitor | None = None) -> RankMeMonitor:
        """The :class:`RankMeMonitor` of ``model`` on ``probe_loader`` with this configuration.

        Args:
            model: the module whose taps are scored (checked against it here).
            probe_loader: the probe batches.
            taps: taps to use instead of the configured ones.
            reuse: a monitor built earlier: returned as it is when it watches this same ``model`` and
                ``probe_loader`` (and ``taps`` is not overridden), so a callback builds one per model, not one per
                evaluation.

        Examples:
            >>> import torch
            >>> cfg, probe = MonitorConfig("0", samples=None), [torch.eye(4)]
            >>> net, other = torch.nn.Sequential(torch.nn.Linear(4, 4)), torch.nn.Sequential(torch.nn.Linear(4, 4))
            >>> mon = cfg.build(net, probe)
            >>> cfg.build(net, probe, reuse=mon) is mon, cfg.build(other, probe, reuse=mon) is mon
            (True, False)
        """
        if reuse is not None and taps is None and reuse.model is model and reuse.probe_loader is probe_loader:
            return reuse
        return RankMeMonitor(model, self.taps if taps is None else taps, probe_loader, samples=self.samples,
                             metrics=self.metrics, pool=self.pool, forward=self.forward, alarm=self.alarm,
                             lidar=self.lidar, labels=self.labels, label_budget=self.label_budget,
                             label_seed=self.label_seed, fewlabel_every=self.fewlabel_every, tokens=self.tokens)
