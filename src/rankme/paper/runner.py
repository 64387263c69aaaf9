"""Run sweeps into a results store: every finished run is committed at once, so an interruption loses only the
runs in flight, and re-running resumes."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from typing import Any

from rankme.io.results_db import ResultStore
from rankme.paper.protocols import Sweep
from rankme.paper.train import RunConfig, train_and_evaluate

__all__ = ["run_sweeps", "sweep_runs", "time_left"]


def _worker_init() -> None:
    """Worker initializer: one BLAS/OpenMP/torch thread per worker (``workers`` processes share the cores), and a
    watchdog that ends the worker when its parent dies (kill -9 included), so no orphan keeps training."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(3)

    threading.Thread(target=watch, name="rankme-parent-watch", daemon=True).start()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (e.g. ``kill``) stops like Ctrl-C: workers are ended and finished runs are already stored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _clock(seconds: float) -> str:
    """A duration as ``1 min 05 s`` / ``42 s``.

    Examples:
        >>> _clock(65.2), _clock(42.0)
        ('1 min 05 s', '42 s')
    """
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def time_left(durations: Sequence[float], remaining: int, workers: int) -> float:
    """Seconds left: the runs still to finish × the mean run's own duration, shared by the workers (elapsed time
    over finished runs would count the first runs' parallel time once per run: 2× off with 2 workers).

    Examples:
        >>> time_left([60.0], 9, 2)
        270.0
    """
    if not durations or remaining <= 0:
        return 0.0
    return remaining * (sum(durations) / len(durations)) / max(1, min(workers, remaining))


def run_sweeps(store: ResultStore, sweeps: Sequence[Sweep], seeds: Sequence[int] = (0,),
               log: Callable[[str], None] = print,
               train: Callable[[RunConfig], dict[str, Any]] = train_and_evaluate,
               workers: int = 1, poll_seconds: float = 5.0) -> dict[str, float]:
    """Run every (sweep, value, seed) not already in ``store``; each finished run is committed at once.

    ``workers > 1`` trains that many runs at a time in separate processes with one thread each (small models use
    cores better that way); ``train`` must then be picklable (a module-level function). Each run is claimed in
    the store before it is trained, so processes sharing a store split the work; runs another live process
    holds are waited for. Ctrl-C or SIGTERM stops at once: workers are ended, every finished run is already
    stored, and re-running resumes. Workers end by themselves if this process is killed.

    Returns:
        Counts: runs trained now (``ran``), found in the store (``cached``), finished by other processes
        (``elsewhere``), and wall ``seconds``.
    """
    t0, done = time.perf_counter(), 0
    durations: list[float] = []
    todo: list[tuple[Sweep, RunConfig]] = []
    distinct: set[str] = set()
    for sweep in sweeps:
        for cfg in sweep.configs(seeds):
            if cfg.key() not in distinct:  # a method's default value is shared by its sweeps: once
                distinct.add(cfg.key())
                if cfg.key() not in store:
                    todo.append((sweep, cfg))
    total = len(distinct)

    def finish(sweep: Sweep, cfg: RunConfig, metrics: dict[str, Any]) -> None:
        nonlocal done
        store.put(cfg.key(), sweep.name, asdict(cfg), metrics)
        done += 1
        elapsed = time.perf_counter() - t0
        took = float(metrics.get("train_seconds", 0)) + float(metrics.get("eval_seconds", 0))
        durations.append(took if took > 0 else elapsed / done)
        log(f"[{done}/{len(todo)}] {sweep.name} = {getattr(cfg, sweep.param):g} (seed {cfg.seed}): "
            f"RankMe {metrics['rankme']:.1f}, probe {metrics['probe_acc']:.1f}% "
            f"({metrics.get('train_seconds', 0):.0f} s train, {metrics.get('eval_seconds', 0):.0f} s eval; "
            f"{_clock(elapsed)} elapsed, about {_clock(time_left(durations, len(todo) - done, workers))} left)")

    if todo:
        first = ", ".join(f"{sw.name} = {getattr(cfg, sw.param):g} (seed {cfg.seed})" for sw, cfg in todo[:workers])
        log(f"training {len(todo)} run(s), {max(workers, 1)} at a time ({total - len(todo)} already in the store); "
            f"a line as each one finishes. Now training: {first}")
    pending, waited = list(todo), False
    with _sigterm_as_interrupt():
        while pending:
            _train_claimed(store, pending, train, workers, finish)
            pending = [(sw, cfg) for sw, cfg in pending if cfg.key() not in store]
            if pending:
                if not waited:
                    log(f"{len(pending)} run(s) are being trained by another process on this store; waiting for them")
                    waited = True
                time.sleep(poll_seconds)
    elsewhere = len(todo) - done
    return {"ran": done, "cached": total - len(todo), "elsewhere": elsewhere, "seconds": time.perf_counter() - t0}


def _train_claimed(store: ResultStore, jobs: list[tuple[Sweep, RunConfig]],
                   train: Callable[[RunConfig], dict[str, Any]], workers: int,
                   finish: Callable[[Sweep, RunConfig, dict[str, Any]], None]) -> None:
    """Train the jobs this process can claim, claiming each one just before it starts (so processes sharing the
    store split the work); claims of runs cut short are released."""
    queue = list(jobs)
    if workers <= 1:
        for sweep, cfg in queue:
            if store.claim(cfg.key()):
                try:
                    finish(sweep, cfg, train(cfg))
                finally:
                    store.release(cfg.key())  # no-op once stored
        return
    import multiprocessing as mp

    pool = mp.get_context("spawn").Pool(workers, initializer=_worker_init)
    inflight: dict[Any, tuple[Sweep, RunConfig]] = {}
    try:
        while queue or inflight:
            while queue and len(inflight) < workers:
                sweep, cfg = queue.pop(0)
                if store.claim(cfg.key()):
                    inflight[pool.apply_async(train, (cfg,))] = (sweep, cfg)
            for result in [r for r in inflight if r.ready()]:
                sweep, cfg = inflight.pop(result)
                finish(sweep, cfg, result.get())
            if inflight:
                time.sleep(0.05)
        pool.close()
    except BaseException:
        pool.terminate()  # Ctrl-C / SIGTERM / a failed run: stop the workers now, not after their runs
        raise
    finally:
        for _, cfg in inflight.values():
            store.release(cfg.key())
        pool.join()


def sweep_runs(runs: Sequence[dict[str, Any]], sweep: Sweep) -> list[dict[str, Any]]:
    """The stored runs that belong to ``sweep``: its base config, any seed, one of its values. Matched by config,
    not by sweep name, since the run at the default value is shared by all sweeps of a method."""
    base = {k: v for k, v in asdict(sweep.base).items() if k not in (sweep.param, "seed")}
    return [r for r in runs if r["config"].get(sweep.param) in sweep.values
            and all(r["config"].get(k) == v for k, v in base.items())]
