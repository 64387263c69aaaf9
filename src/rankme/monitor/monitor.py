"""Score layers of a model on a fixed, held-out probe set: the plain-PyTorch monitor.

The framework callbacks in :mod:`rankme.integrations` are thin layers over :class:`RankMeMonitor`. The monitor
never changes the user's training: every submodule's train/eval mode, ``requires_grad`` and the random number
generators (torch CPU/CUDA, numpy, Python) are as they were after each pass, and no graph is built.
"""

from __future__ import annotations

import contextlib
import random
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rankme.core.checks import check_positive, warn_sample_size
from rankme.core.distributed import is_distributed, max_dim, raise_if_any_rank_failed, world
from rankme.core.errors import InputError
from rankme.core.optional import require
from rankme.core.resources import beside_a_cpu_model
from rankme.core.spectrum import SpectrumAccumulator
from rankme.metrics.lidar import LIDAR_DELTA, LidarAccumulator
from rankme.metrics.registry import check_metrics, compute_metrics, needing
from rankme.metrics.states import KeptRows, Spectra
from rankme.monitor.alarm import CollapseAlarm, CollapseWarning
from rankme.monitor.fewlabel import FewLabelProbe, LabelledRows, fewlabel_probe, fewlabel_values
from rankme.monitor.taps import (
    POOLS,
    TOKENS,
    TapCapture,
    TapSpec,
    batch_rows,
    default_forward,
    model_device,
    pool_output,
    tap_label,
    to_device,
    token_states,
    truncate,
)
from rankme.monitor.tokens import TokenPass, check_tokens
from rankme.scoring.engine import finish, state_of
from rankme.scoring.fewlabel import CVAccuracy
from rankme.scoring.options import scoring_options

__all__ = ["LidarViews", "RankMeMonitor", "check_tap"]

@dataclass(frozen=True)
class LidarViews:
    """How the monitor draws LiDAR's views: ``augment(batch) -> batch`` returns one augmented view of a probe
    batch (same structure); each of the first ``samples`` probe samples is a surrogate class with ``views`` (q)
    augmented views. δ and ε are :class:`~rankme.metrics.lidar.LidarAccumulator`'s."""

    augment: Callable[[Any], Any]
    views: int = 4
    samples: int | None = 1000
    delta: float | None = None

    def accumulator(self, dim: int) -> LidarAccumulator:
        """An empty :class:`~rankme.metrics.lidar.LidarAccumulator` for K = ``dim`` with these views and δ."""
        return LidarAccumulator(dim, self.views, delta=LIDAR_DELTA if self.delta is None else self.delta)



class RankMeMonitor:
    """RankMe (and any metric of the registry) of chosen layers on a fixed probe set, exact under DDP.

    ``taps``: a submodule name (``"projector"``, ``"backbone.layer4"``), a list of them, or a dict mapping a
    label to a name or to a callable ``(model, batch) -> embeddings``. Each tap's outputs are captured with a
    forward hook, pooled by :func:`~rankme.monitor.taps.pool_output` and copied when the module runs (later
    in-place ops do not change them; a module run several times per forward is scored on its last call, with a
    warning: see :class:`~rankme.monitor.taps.TapCapture`), and streamed into one accumulator per tap, all in
    one pass.

    Under ``torch.distributed`` each rank embeds every ``world_size``-th batch of the probe loader (``shard=True``;
    pass ``shard=False`` if the loader already yields a per-rank shard), the accumulators are all-reduced, and
    every rank returns the same values, equal to one process scoring the whole probe set.

    **Few-label probe.** With ``labels`` (one per scored probe row, in the loader's order; -1, NaN, ``None`` or an
    empty string for an unlabelled row), every ``fewlabel_every``-th evaluation also returns, per tap, the
    cross-validated linear and k-NN accuracy (%) of the tap's pooled features on the labelled rows, with their 95 %
    bootstrap intervals: ``fewlabel_linear/<tap>``, ``fewlabel_linear_lo/<tap>``, ``fewlabel_linear_hi/<tap>``,
    ``fewlabel_knn/<tap>``, ``fewlabel_knn_lo/<tap>``, ``fewlabel_knn_hi/<tap>``. ``label_budget=B`` uses B labelled
    rows per class, drawn once with ``label_seed``. It is the code of ``rankme select --labels``
    (:mod:`rankme.scoring.fewlabel`); only the labelled rows' features are kept (under DDP, gathered from every
    rank); the training run is left as it was (modes, grads, random generators).

    Args:
        model: the module whose taps are scored.
        taps: see above.
        probe_loader: the probe batches (the same rows, in the same order, at every evaluation).
        samples: probe rows scored (the first ones; ``None``: all).
        metrics: names from the metric registry.
        pool: pooling rule of :func:`~rankme.monitor.taps.pool_output`.
        forward: how a batch is fed to the model.
        shard: under DDP, embed every ``world_size``-th batch on each rank.
        alarm: a :class:`~rankme.monitor.CollapseAlarm`, or ``None``.
        lidar: how to draw LiDAR's augmented views.
        labels: a few labels of the probe rows for the few-label probe, or ``None``.
        label_budget: labels per class drawn from ``labels`` (≥ 2), or ``None`` for every labelled row.
        label_seed: the draw, the cross-validation folds and the bootstrap resamples.
        fewlabel_every: run the few-label probe at every this-many-th evaluation (1: every one).
        tokens: score each tap's unpooled (B, T, K) token states instead of pooled vectors, padding left out by the
            batch's ``attention_mask``: ``"all"`` (every real token a row: ``"<metric>/<tap>"`` as pooled) or
            ``"per-sequence"`` (each probe sequence's own RankMe: ``"rankme_seq_mean/<tap>"``, ``_std``,
            ``_q05`` … ``_q95``); ``None`` (default): pooled by ``pool``. Not with labels, LiDAR, or (per
            sequence) other metrics or the alarm.

    Examples:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
        >>> net[1].eval()                                         # a submodule the user froze in eval mode
        Dropout(p=0.5, inplace=False)
        >>> mon = RankMeMonitor(net, "0", [torch.eye(4)])
        >>> round(mon.compute()["rankme/0"], 2) > 1, net.training, net[1].training   # modes as they were
        (True, True, False)
    """

    def __init__(
        self,
        model: Any,
        taps: TapSpec | Sequence[str] | Mapping[str, TapSpec],
        probe_loader: Iterable[Any],
        *,
        samples: int | None = None,
        metrics: Sequence[str] = ("rankme",),
        pool: str = "mean",
        forward: Callable[[Any, Any], Any] = default_forward,
        shard: bool = True,
        alarm: CollapseAlarm | None = None,
        lidar: LidarViews | None = None,
        labels: Any = None,
        label_budget: int | None = None,
        label_seed: int = 0,
        fewlabel_every: int = 1,
        tokens: str | None = None,
    ) -> None:
        if isinstance(taps, str) or callable(taps):
            taps = {tap_label(taps): taps}
        elif not isinstance(taps, Mapping):
            taps = {str(t): t for t in taps}
        if pool not in POOLS:
            raise InputError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}", param="pool")
        if not taps:
            raise InputError("no taps given: name at least one submodule (e.g. 'projector') or pass a callable",
                             param="taps")
        check_positive(samples, "samples", none_ok=True, what=" of probe rows (or None for all)")
        self.model, self.taps, self.probe_loader = model, dict(taps), probe_loader
        self.samples, self.pool, self.forward = samples, pool, forward
        self.metrics = check_metrics(list(metrics))
        check_tokens(tokens, metrics=self.metrics, labels=labels, lidar=lidar, alarm=alarm)
        self.shard, self.alarm, self.lidar, self.tokens = shard, alarm, lidar, tokens
        self.last_alarm: str | None = None
        self.fewlabel_probe = fewlabel_probe(labels, label_budget, label_seed, fewlabel_every)
        self.fewlabel: dict[str, CVAccuracy] = {}
        """Each tap's cross-validated accuracies (out-of-fold correctness included) from the last probe."""
        self.evaluations = 0
        views = needing(self.metrics, "views")
        if views and lidar is None:
            raise InputError(f"metric {' and '.join(views)} needs lidar=LidarViews(augment, views=q): the "
                             "augmentation that makes views", param="lidar", names=("metrics", "views"))
        if lidar is not None and not views:
            self.metrics.append("lidar")
        # the scoring options, checked once (the probe rows are limited by ``samples`` as they stream, above)
        self.options = scoring_options(self.metrics, views=lidar.views if lidar is not None else None,
                                       duplicates=False)
        for name, tap in self.taps.items():
            if isinstance(tap, str):
                self.taps[name] = check_tap(model, tap)
            elif not callable(tap):
                raise TypeError(f"tap {name!r} must be a submodule name or a callable (model, batch) -> tensor")

    def accumulate(self, sink: Callable[[str, Any], None] | None = None, *,
                   row_sink: Callable[[str, Any, int], None] | None = None) -> dict[str, SpectrumAccumulator]:
        """One pass over the probe set in eval mode without gradients; returns one reduced accumulator per tap.

        Args:
            sink: if given, ``sink(tap, embeddings)`` also receives every pooled (B, K) batch (e.g. to keep
                features for a label oracle).
            row_sink: if given, ``row_sink(tap, embeddings, start)`` receives them with the probe row of the
                batch's first row (counted over the whole probe set, under DDP too).
        """
        torch = require("torch", "torch", "monitoring a model")
        rank, size = world() if self.shard else (0, 1)
        accs = {name: SpectrumAccumulator() for name in self.taps}
        self._lidar_accs: dict[str, LidarAccumulator] = {}
        capture = TapCapture(self.model, {n: t for n, t in self.taps.items() if isinstance(t, str)},
                             TOKENS if self.tokens else self.pool)
        self._token_pass = TokenPass(self.tokens, list(self.taps)) if self.tokens else None
        device = model_device(self.model)
        modes = [(m, m.training) for m in self.model.modules()]
        self.model.eval()
        seen = 0
        error: BaseException | None = None
        try:
            with torch.no_grad(), beside_a_cpu_model(device), _rng_preserved(torch, device):
                for i, batch in enumerate(self.probe_loader):
                    rows = batch_rows(batch)
                    if self.samples is not None:
                        if seen >= self.samples:
                            break
                        if seen + rows > self.samples:
                            batch, rows = truncate(batch, self.samples - seen), self.samples - seen
                    seen += rows
                    if i % size != rank:
                        continue
                    batch = to_device(batch, device)
                    for name, pooled in self._embed(batch, capture).items():
                        if self._token_pass is not None:  # token states: the tokens are the rows
                            pooled = self._token_pass.add_tap(name, pooled, accs[name], seen - rows)
                            if pooled is None:
                                continue
                        else:
                            accs[name].update(pooled, row_offset=seen - rows)  # global probe row (DDP too)
                        if sink is not None:
                            sink(name, pooled)
                        if row_sink is not None:
                            row_sink(name, pooled, seen - rows)
                    self._lidar_views(batch, capture, seen - rows)
        except Exception as e:  # under DDP the other ranks must not wait forever in the all-reduce below
            error = e
        finally:
            capture.remove()
            for module, mode in modes:  # every submodule's own mode (a frozen BatchNorm stays in eval)
                module.training = mode
        raise_if_any_rank_failed(error)
        if is_distributed() and self.tokens != "per-sequence":
            for name in self.taps:
                accs[name] = _with_global_dim(accs[name], name)
                accs[name].all_reduce()
        return accs

    def _embed(self, batch: Any, capture: TapCapture) -> dict[str, Any]:
        """One forward pass: the pooled (B, K) output of every tap."""
        mask = batch.get("attention_mask") if isinstance(batch, Mapping) else None
        captured = capture.run(lambda: self.forward(self.model, batch), mask) if capture.handles else {}
        def own(tap: Any) -> Any:  # a callable tap's output, as the hooks give theirs
            out = tap(self.model, batch)
            return token_states(out, mask) if self.tokens else pool_output(out, self.pool, mask)

        return {name: own(tap) if callable(tap) else captured[name] for name, tap in self.taps.items()}

    def _lidar_views(self, batch: Any, capture: TapCapture, start: int) -> None:
        """Add q augmented views of this batch's first samples (up to ``lidar.samples``) to the LiDAR states."""
        torch = require("torch", "torch", "monitoring a model")
        spec = self.lidar
        if spec is None or (spec.samples is not None and start >= spec.samples):
            return
        keep = batch_rows(batch) if spec.samples is None else min(batch_rows(batch), spec.samples - start)
        views = [self._embed(truncate(spec.augment(batch), keep), capture) for _ in range(spec.views)]
        for name in self.taps:
            e = torch.stack([v[name] for v in views], dim=1)  # (B, q, K)
            if name not in self._lidar_accs:
                self._lidar_accs[name] = spec.accumulator(int(e.shape[-1]))
            self._lidar_accs[name].update(e)

    def compute(self, fewlabel: bool | None = None) -> dict[str, float]:
        """``{"<metric>/<tap>": value}`` for every tap and metric; checks the alarm (see ``last_alarm``).

        Args:
            fewlabel: run the few-label probe now (``True``), not now (``False``), or when due (``None``: every
                ``fewlabel_every``-th call); ignored without ``labels``.
        """
        self.evaluations += 1
        probe = self.fewlabel_probe
        due = probe is not None and (probe.due(self.evaluations) if fewlabel is None else bool(fewlabel))
        with beside_a_cpu_model(model_device(self.model)):
            return self._compute(due)

    def _compute(self, fewlabel: bool = False) -> dict[str, float]:
        out: dict[str, float] = {}
        self.last_alarm = None
        want_rows = bool(needing(self.metrics, "rows"))
        kept = {name: KeptRows(np.float64) for name in self.taps}
        probe = self.fewlabel_probe if fewlabel else None
        if probe is not None and is_distributed() and not self.shard:
            raise InputError("labels align with the probe rows of one loader; with shard=False each rank's loader is "
                             "its own shard: pass shard=True (every rank the same loader) for the few-label probe",
                             param="labels", names=("shard",))
        labelled = LabelledRows(probe.positions) if probe is not None else None
        accs = self.accumulate(sink=(lambda t, z: kept[t](z)) if want_rows else None, row_sink=labelled)
        self.spectra: dict[str, Spectra] = {}
        self.notes: dict[str, list[str]] = {}
        if self.tokens == "per-sequence" and self._token_pass is not None:  # a distribution per tap, no spectrum
            return {k: v for name in self.taps for k, v in self._token_pass.values(name, _gather_parts).items()}
        for name, acc in accs.items():
            warn_sample_size(acc.n, int(acc.dim or 0), stacklevel=4)  # probe set smaller than K: biased low
            lid = None
            if self.lidar is not None:  # every rank reduces, including one that drew no LiDAR batch
                lid = (self._lidar_accs.get(name) or self.lidar.accumulator(int(acc.dim or 0))).all_reduce()
            rows = _gather_rows(kept[name], name) if want_rows else None
            # the taps were the accumulate step; the one finish (each K×K eigen step at most once)
            result = finish(state_of(name, acc, self.options, views=lid, rows=rows), self.options)
            assert result.spectra is not None
            self.spectra[name], self.notes[name] = result.spectra, result.notes
            for metric, value in result.metrics.items():
                out[f"{metric}/{name}"] = value
            if self.alarm is not None:
                rank = out.get(f"rankme/{name}")
                if rank is None:
                    rank = compute_metrics(result.spectra, ["rankme"])["rankme"]
                reason = self.alarm.check(name, rank, acc.n, int(acc.dim or 0))
                if reason and self.last_alarm is None:
                    self.last_alarm = reason
                    warnings.warn(reason, CollapseWarning, stacklevel=3)  # the caller of compute()
        if probe is not None and labelled is not None:
            out.update(self._fewlabel(probe, labelled, {name: acc.n for name, acc in accs.items()}))
        return out

    def _fewlabel(self, probe: FewLabelProbe, labelled: LabelledRows, n_rows: dict[str, int]) -> dict[str, float]:
        """The few-label probe of every tap from its kept labelled rows (gathered across ranks); the random
        generators are restored afterwards, as for the pass itself."""
        torch = require("torch", "torch", "monitoring a model")
        out: dict[str, float] = {}
        with _rng_preserved(torch, model_device(self.model)):
            for name in self.taps:
                probe.check_rows(int(n_rows[name]), name)
                cv = probe.score(labelled.rows(name, _gather_parts))
                self.fewlabel[name] = cv
                out.update(fewlabel_values(cv, name))
        return out


def check_tap(model: Any, tap: str) -> str:
    """The full name of submodule ``tap`` of ``model``: the name itself, or the one submodule whose name ends with
    ``.<tap>`` (so ``"projector"`` finds ``model.projector`` inside a LightningModule without an alias).

    Raises:
        AttributeError: when no submodule matches (naming valid ones) or several do (naming them).

    Examples:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Sequential(torch.nn.Linear(2, 2)))
        >>> check_tap(net, "0.0"), check_tap(net, "0")
        ('0.0', '0')
        >>> check_tap(torch.nn.Sequential(torch.nn.Linear(2, 2)), "proj")
        Traceback (most recent call last):
        ...
        AttributeError: tap 'proj' is not a submodule of Sequential; valid names include: 0
    """
    try:
        model.get_submodule(tap)
        return tap
    except AttributeError:
        pass
    names = [n for n, _ in model.named_modules() if n]
    found = [n for n in names if n.endswith("." + tap)]
    if len(found) == 1:
        return found[0]
    if found:
        raise AttributeError(f"tap {tap!r} matches several submodules of {type(model).__name__}: {found}; give the "
                             "full name")
    shown = ", ".join(names[:25]) + (f", ... ({len(names)} in all)" if len(names) > 25 else "")
    raise AttributeError(f"tap {tap!r} is not a submodule of {type(model).__name__}; valid names include: "
                         f"{shown or '(it has no submodules)'}")


def _gather_parts(parts: list[Any]) -> list[Any]:
    """Every rank's ``parts`` (picklable), in rank order, on every rank; one process: ``parts``."""
    if world()[1] > 1:
        size = world()[1]
        dist = require("torch.distributed", "torch")
        gathered: list[Any] = [None] * size
        dist.all_gather_object(gathered, parts)
        parts = [p for rank_parts in gathered for p in rank_parts]
    return parts


def _gather_rows(kept: KeptRows, name: str) -> np.ndarray:
    """The pooled probe embeddings of a tap (under DDP: every rank's shard, gathered), as float64 rows."""
    parts = _gather_parts([kept.array()] if kept.parts else [])
    if not parts:
        raise InputError(f"tap {name!r}: no probe rows", param="probe_loader")
    return np.concatenate(parts)


@contextlib.contextmanager
def _rng_preserved(torch: Any, device: Any) -> Iterator[None]:
    """Restore torch's (CPU and the model's CUDA device), numpy's and Python's global generators afterwards:
    a shuffling probe loader or an augmentation must not move the training run's random stream."""
    np_state, py_state = np.random.get_state(), random.getstate()
    devices = [device] if getattr(device, "type", "cpu") == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


def _with_global_dim(acc: SpectrumAccumulator, name: str) -> SpectrumAccumulator:
    """A rank that got no batch must still know K before the all-reduce: take the max over ranks."""
    k = max_dim(acc.dim)
    if k == 0:
        raise InputError(f"tap {name!r}: the probe set produced no rows on any rank", param="probe_loader")
    return SpectrumAccumulator(k, precision=acc.precision) if acc.dim is None else acc
