"""Score layers of a model on a fixed, held-out probe set: taps, pooling, the plain-PyTorch monitor, the alarm.

The framework callbacks in :mod:`rankme.integrations` are thin layers over :class:`RankMeMonitor`.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rankme.metrics import METRICS, compute_metrics
from rankme.spectrum import SpectrumAccumulator

__all__ = ["MONITOR_EXTRA_METRICS", "CollapseAlarm", "CollapseWarning", "LidarViews", "RankMeMonitor",
           "default_forward", "pool_output"]

MONITOR_EXTRA_METRICS = ("lidar", "cluster")
"""Metrics beyond the spectral registry: ``lidar`` (needs ``lidar=LidarViews(...)``) and ``cluster``
(cluster learnability of the pooled probe embeddings, :func:`rankme.cluster.cluster_learnability`)."""


@dataclass(frozen=True)
class LidarViews:
    """How the monitor draws LiDAR's views: ``augment(batch) -> batch`` returns one augmented view of a probe
    batch (same structure); each of the first ``samples`` probe samples is a surrogate class with ``views`` (q)
    augmented views. δ and ε are :class:`rankme.lidar.LidarAccumulator`'s."""

    augment: Callable[[Any], Any]
    views: int = 4
    samples: int | None = 1000
    delta: float | None = None

    def accumulator(self, dim: int) -> Any:
        """An empty :class:`rankme.lidar.LidarAccumulator` for K = ``dim`` with these views and δ."""
        from rankme.lidar import LIDAR_DELTA, LidarAccumulator

        return LidarAccumulator(dim, self.views, delta=LIDAR_DELTA if self.delta is None else self.delta)

TapSpec = str | Callable[[Any, Any], Any]


class CollapseWarning(UserWarning):
    """Emitted when the collapse alarm trips."""


_OUTPUT_KEYS = ("sentence_embedding", "last_hidden_state", "token_embeddings", "pooler_output")


def _first_tensor(out: Any) -> Any:
    import torch

    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, Mapping):
        for key in _OUTPUT_KEYS:
            if isinstance(out.get(key), torch.Tensor):
                return out[key]
        values = list(out.values())
    elif isinstance(out, (tuple, list)):
        values = list(out)
    else:
        values = []
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    for v in tensors:  # features are floating point; token ids and masks are not
        if v.is_floating_point():
            return v
    if tensors:
        return tensors[0]
    raise TypeError(f"cannot find a tensor in a module output of type {type(out).__name__}")


def pool_output(out: Any, pool: str = "mean", mask: Any = None) -> Any:
    """Turn a module output into a (batch, features) matrix by a documented rule.

    The output is the tensor itself, else the first floating-point tensor of a tuple/list, or of a dict /
    Hugging Face ``ModelOutput`` after its ``sentence_embedding``, ``last_hidden_state``, ``token_embeddings`` or
    ``pooler_output``. Then, by rank: 2-D (B, K) is kept; 3-D (B, T, K) is
    averaged over T (tokens; with ``mask`` (B, T) only over unmasked tokens) or takes token 0 with
    ``pool="cls"``; 4-D and higher (B, C, H, W, ...) are averaged over the spatial dims. ``pool="flatten"``
    reshapes anything to (B, -1) instead.

    >>> import torch
    >>> pool_output(torch.ones(2, 3, 4)).shape, pool_output(torch.ones(2, 5, 7, 7)).shape
    (torch.Size([2, 4]), torch.Size([2, 5]))
    """
    t = _first_tensor(out).detach()
    if pool == "flatten" or t.dim() == 2:
        return t.reshape(t.shape[0], -1)
    if pool not in ("mean", "cls"):
        raise ValueError(f"pool must be 'mean', 'cls' or 'flatten', got {pool!r}")
    if t.dim() == 1:
        return t.reshape(-1, 1)
    if t.dim() == 3:
        if pool == "cls":
            return t[:, 0]
        if mask is not None and tuple(mask.shape) == tuple(t.shape[:2]):
            m = mask.to(t.dtype).unsqueeze(-1)
            return (t * m).sum(1) / m.sum(1).clamp_min(1)
        return t.mean(1)
    return t.flatten(2).mean(-1)


def default_forward(model: Any, batch: Any) -> Any:
    """Run ``model`` on a probe batch: dict → ``model(**batch)``; (x, y, ...) → ``model(x)``; tensor → ``model(x)``."""
    if isinstance(batch, Mapping):
        return model(**batch)
    if isinstance(batch, (tuple, list)):
        return model(batch[0])
    return model(batch)


def _to_device(batch: Any, device: Any) -> Any:
    import torch

    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _batch_rows(batch: Any) -> int:
    import torch

    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    if isinstance(batch, Mapping):
        return _batch_rows(next(iter(batch.values())))
    if isinstance(batch, (tuple, list)):
        return _batch_rows(batch[0])
    raise TypeError(f"cannot tell the batch size of a {type(batch).__name__}")


def _truncate(batch: Any, rows: int) -> Any:
    import torch

    if isinstance(batch, torch.Tensor):
        return batch[:rows]
    if isinstance(batch, Mapping):
        return {k: _truncate(v, rows) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(_truncate(v, rows) for v in batch)
    return batch


@dataclass
class CollapseAlarm:
    """Trips when a tap's RankMe is below ``threshold``, below ``fraction`` · min(N, K), or drops by more than
    ``relative_drop`` (e.g. 0.5 = halves) since the previous evaluation.

    >>> alarm = CollapseAlarm(fraction=0.1)
    >>> alarm.check("proj", 3.0, n=1000, dim=128)
    'rankme/proj = 3.00 is below 0.1 x min(N, K) = 12.80 (collapse)'
    """

    threshold: float | None = None
    fraction: float | None = None
    relative_drop: float | None = None
    previous: dict[str, float] = field(default_factory=dict)

    def check(self, tap: str, value: float, n: int, dim: int) -> str | None:
        """The reason the alarm trips for this value, or ``None``; remembers the value for the next drop check."""
        reason = None
        prev = self.previous.get(tap)
        if self.threshold is not None and value < self.threshold:
            reason = f"rankme/{tap} = {value:.2f} is below the threshold {self.threshold:g} (collapse)"
        elif self.fraction is not None and value < self.fraction * min(n, dim):
            reason = (f"rankme/{tap} = {value:.2f} is below {self.fraction:g} x min(N, K) = "
                      f"{self.fraction * min(n, dim):.2f} (collapse)")
        elif self.relative_drop is not None and prev is not None and value < (1 - self.relative_drop) * prev:
            reason = f"rankme/{tap} fell from {prev:.2f} to {value:.2f} (more than {self.relative_drop:.0%} drop)"
        self.previous[tap] = value
        return reason


class RankMeMonitor:
    """RankMe (and other spectral metrics) of chosen layers on a fixed probe set, exact under DDP.

    ``taps``: a submodule name (``"projector"``, ``"backbone.layer4"``), a list of them, or a dict mapping a
    label to a name or to a callable ``(model, batch) -> embeddings``. Each tap's outputs are captured with a
    forward hook, pooled by :func:`pool_output`, and streamed into one accumulator per tap, all in one pass.

    Under ``torch.distributed`` each rank embeds every ``world_size``-th batch of the probe loader (``shard=True``;
    pass ``shard=False`` if the loader already yields a per-rank shard), the accumulators are all-reduced, and
    every rank returns the same values, equal to one process scoring the whole probe set.
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
    ) -> None:
        if isinstance(taps, str) or callable(taps):
            taps = {_label(taps): taps}
        elif not isinstance(taps, Mapping):
            taps = {str(t): t for t in taps}
        self.model, self.taps, self.probe_loader = model, dict(taps), probe_loader
        self.samples, self.metrics, self.pool, self.forward = samples, list(metrics), pool, forward
        self.shard, self.alarm, self.lidar = shard, alarm, lidar
        self.last_alarm: str | None = None
        unknown = [m for m in self.metrics if m not in METRICS and m not in MONITOR_EXTRA_METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; choose from {sorted(METRICS) + list(MONITOR_EXTRA_METRICS)}")
        if "lidar" in self.metrics and lidar is None:
            raise ValueError("metric 'lidar' needs lidar=LidarViews(augment, views=q): the augmentation that makes views")
        if lidar is not None and "lidar" not in self.metrics:
            self.metrics.append("lidar")
        for name, tap in self.taps.items():
            if isinstance(tap, str):
                model.get_submodule(tap)  # raises AttributeError naming the missing submodule
            elif not callable(tap):
                raise TypeError(f"tap {name!r} must be a submodule name or a callable (model, batch) -> tensor")

    def accumulate(self, sink: Callable[[str, Any], None] | None = None) -> dict[str, SpectrumAccumulator]:
        """One pass over the probe set in eval mode without gradients; returns one reduced accumulator per tap.

        ``sink(tap, embeddings)``, if given, also receives every pooled (B, K) batch (e.g. to keep features for a
        label oracle)."""
        import torch
        import torch.distributed as dist

        distributed = dist.is_available() and dist.is_initialized()
        rank, world = (dist.get_rank(), dist.get_world_size()) if distributed and self.shard else (0, 1)
        accs = {name: SpectrumAccumulator() for name in self.taps}
        self._lidar_accs: dict[str, Any] = {}
        captured: dict[str, Any] = {}
        hooks = [self.model.get_submodule(t).register_forward_hook(_capture(captured, name))
                 for name, t in self.taps.items() if isinstance(t, str)]
        device = _model_device(self.model)
        was_training = self.model.training
        self.model.eval()
        seen = 0
        try:
            with torch.no_grad(), _host_blas_single_thread(device):
                for i, batch in enumerate(self.probe_loader):
                    rows = _batch_rows(batch)
                    if self.samples is not None:
                        if seen >= self.samples:
                            break
                        if seen + rows > self.samples:
                            batch, rows = _truncate(batch, self.samples - seen), self.samples - seen
                    seen += rows
                    if i % world != rank:
                        continue
                    batch = _to_device(batch, device)
                    for name, pooled in self._embed(batch, hooks, captured).items():
                        accs[name].update(pooled)
                        if sink is not None:
                            sink(name, pooled)
                    self._lidar_views(batch, hooks, captured, seen - rows)
        finally:
            for h in hooks:
                h.remove()
            self.model.train(was_training)
        if distributed:
            for name in self.taps:
                accs[name] = _with_global_dim(accs[name], name)
                accs[name].all_reduce()
        return accs

    def _embed(self, batch: Any, hooks: list[Any], captured: dict[str, Any]) -> dict[str, Any]:
        """One forward pass: the pooled (B, K) output of every tap."""
        captured.clear()
        if hooks:
            self.forward(self.model, batch)
        mask = batch.get("attention_mask") if isinstance(batch, Mapping) else None
        return {name: pool_output(tap(self.model, batch) if callable(tap) else captured[name], self.pool, mask)
                for name, tap in self.taps.items()}

    def _lidar_views(self, batch: Any, hooks: list[Any], captured: dict[str, Any], start: int) -> None:
        """Add q augmented views of this batch's first samples (up to ``lidar.samples``) to the LiDAR states."""
        import torch

        spec = self.lidar
        if spec is None or (spec.samples is not None and start >= spec.samples):
            return
        keep = _batch_rows(batch) if spec.samples is None else min(_batch_rows(batch), spec.samples - start)
        views = [self._embed(_truncate(spec.augment(batch), keep), hooks, captured) for _ in range(spec.views)]
        for name in self.taps:
            e = torch.stack([v[name] for v in views], dim=1)  # (B, q, K)
            if name not in self._lidar_accs:
                self._lidar_accs[name] = spec.accumulator(int(e.shape[-1]))
            self._lidar_accs[name].update(e)

    def compute(self) -> dict[str, float]:
        """``{"<metric>/<tap>": value}`` for every tap and metric; checks the alarm (see ``last_alarm``)."""
        with _host_blas_single_thread(_model_device(self.model)):
            return self._compute()

    def _compute(self) -> dict[str, float]:
        out: dict[str, float] = {}
        self.last_alarm = None
        feats: dict[str, list[Any]] = {name: [] for name in self.taps}
        want_cluster = "cluster" in self.metrics
        accs = self.accumulate(sink=(lambda t, z: feats[t].append(z.double().cpu())) if want_cluster else None)
        spectral = [m for m in self.metrics if m in METRICS]
        for name, acc in accs.items():
            spectra = functools.lru_cache(maxsize=2)(acc.spectrum)  # each K×K eigen step at most once
            for metric, value in compute_metrics(spectra, spectral).items():
                out[f"{metric}/{name}"] = value
            if self.lidar is not None:  # every rank reduces, including one that drew no LiDAR batch
                lid = self._lidar_accs.get(name) or self.lidar.accumulator(int(acc.dim or 0))
                out[f"lidar/{name}"] = lid.all_reduce().lidar()
            if want_cluster:
                out[f"cluster/{name}"] = _cluster(feats[name], name)
            if self.alarm is not None:
                rank = out.get(f"rankme/{name}")
                if rank is None:
                    rank = compute_metrics(spectra, ["rankme"])["rankme"]
                reason = self.alarm.check(name, rank, acc.n, int(acc.dim or 0))
                if reason and self.last_alarm is None:
                    self.last_alarm = reason
                    warnings.warn(reason, CollapseWarning, stacklevel=2)
        return out


def _cluster(chunks: list[Any], name: str) -> float:
    """Cluster learnability of the pooled probe embeddings (under DDP: of every rank's shard, gathered)."""
    import numpy as np
    import torch
    import torch.distributed as dist

    from rankme.cluster import cluster_learnability

    parts = [torch.cat(chunks).numpy()] if chunks else []
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        gathered: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, parts)
        parts = [p for rank_parts in gathered for p in rank_parts]
    if not parts:
        raise ValueError(f"tap {name!r}: no probe rows to cluster")
    return cluster_learnability(np.concatenate(parts))


def _label(tap: TapSpec) -> str:
    return tap if isinstance(tap, str) else getattr(tap, "__name__", "tap")


def _capture(store: dict[str, Any], name: str) -> Callable[..., None]:
    def hook(module: Any, inputs: Any, output: Any) -> None:
        # a dict passed along and filled in by later modules (sentence-transformers) is copied as it is now
        store[name] = dict(output) if isinstance(output, Mapping) else output

    return hook


def _host_blas_single_thread(device: Any) -> Any:
    """While a CPU model runs, numpy's BLAS (Gram updates, eigen step) gets one thread: after each call its idle
    threads keep spinning on the cores torch's threads need, which made the monitor's pass 6x slower on 2 cores
    (bench/bench_monitor.py) and slowed the training step after it. GPU models: no change."""
    import contextlib

    if getattr(device, "type", "cpu") != "cpu":
        return contextlib.nullcontext()
    return _blas_controller().limit(limits=1, user_api="blas")


@functools.lru_cache(maxsize=1)
def _blas_controller() -> Any:
    """One threadpoolctl controller per process: finding the loaded BLAS libraries costs ~1.5 ms per call."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _model_device(model: Any) -> Any:
    import torch

    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _with_global_dim(acc: SpectrumAccumulator, name: str) -> SpectrumAccumulator:
    """A rank that got no batch must still know K before the all-reduce: take the max over ranks."""
    import torch
    import torch.distributed as dist

    dev = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    k = torch.tensor([acc.dim or 0], device=dev)
    dist.all_reduce(k, op=dist.ReduceOp.MAX)
    if int(k) == 0:
        raise ValueError(f"tap {name!r}: the probe set produced no rows on any rank")
    return SpectrumAccumulator(int(k), precision=acc.precision) if acc.dim is None else acc
