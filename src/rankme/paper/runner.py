"""Run sweeps into a results store: every finished run is committed at once, so an interruption loses only the
runs in flight, and re-running resumes."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from rankme.io.store import ResultStore
from rankme.paper.protocols import Sweep
from rankme.paper.train import RunConfig, train_and_evaluate

__all__ = ["run_sweeps", "sweep_runs"]


def _one_thread() -> None:
    """Worker initializer: one BLAS/OpenMP/torch thread per worker, so ``workers`` processes share the cores."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)


def run_sweeps(store: ResultStore, sweeps: Sequence[Sweep], seeds: Sequence[int] = (0,),
               log: Callable[[str], None] = print,
               train: Callable[[RunConfig], dict[str, Any]] = train_and_evaluate,
               workers: int = 1) -> dict[str, float]:
    """Run every (sweep, value, seed) not already in ``store``; each finished run is committed at once.

    ``workers > 1`` trains that many runs at a time in separate processes with one thread each (small models use
    cores better that way); ``train`` must then be picklable (a module-level function). Results are stored by
    this process as they arrive, so an interruption loses only the runs in flight.
    Returns counts: runs done now, runs found in the store, and wall seconds.
    """
    t0, done = time.perf_counter(), 0
    todo, seen, total = [], set(), 0
    for sweep in sweeps:
        for cfg in sweep.configs(seeds):
            total += 1
            if cfg.key() not in store and cfg.key() not in seen:  # a method's default value is shared: once
                seen.add(cfg.key())
                todo.append((sweep, cfg))

    def finish(sweep: Sweep, cfg: RunConfig, metrics: dict[str, Any]) -> None:
        nonlocal done
        store.put(cfg.key(), sweep.name, asdict(cfg), metrics)
        done += 1
        log(f"[{done}/{len(todo)}] {sweep.name} = {getattr(cfg, sweep.param):g} (seed {cfg.seed}): "
            f"RankMe {metrics['rankme']:.1f}, probe {metrics['probe_acc']:.1f}% "
            f"({metrics.get('train_seconds', 0):.0f} s train, {metrics.get('eval_seconds', 0):.0f} s eval)")

    if workers <= 1 or len(todo) <= 1:
        for sweep, cfg in todo:
            finish(sweep, cfg, train(cfg))
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_one_thread)
        try:
            futures = {pool.submit(train, cfg): (sweep, cfg) for sweep, cfg in todo}
            for fut in as_completed(futures):
                finish(*futures[fut], fut.result())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return {"ran": done, "cached": total - len(todo), "seconds": time.perf_counter() - t0}


def sweep_runs(runs: Sequence[dict[str, Any]], sweep: Sweep) -> list[dict[str, Any]]:
    """The stored runs that belong to ``sweep``: its base config, any seed, one of its values. Matched by config,
    not by sweep name, since the run at the default value is shared by all sweeps of a method."""
    base = {k: v for k, v in asdict(sweep.base).items() if k not in (sweep.param, "seed")}
    return [r for r in runs if r["config"].get(sweep.param) in sweep.values
            and all(r["config"].get(k) == v for k, v in base.items())]
