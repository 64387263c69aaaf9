"""The paper's experiment at this machine's scale: sweep one hyperparameter at a time, store every run, select
without labels, and compare with the label oracle (``rankme demo`` is its small version).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rankme.select import RIVALS, SELECTORS, picked_accuracy, rank_correlations, select_runs, sweep_points
from rankme.ssl.train import RunConfig, train_and_evaluate
from rankme.store import ResultStore

__all__ = [
    "DEMO_SWEEPS",
    "FULL_SWEEPS",
    "LONG_CHECKPOINTS",
    "LONG_SEEDS",
    "LONG_SWEEPS",
    "Sweep",
    "format_agreement",
    "format_correlations",
    "format_selection",
    "run_reproduction",
    "run_sweeps",
    "selection_tables",
    "sweep_runs",
]


@dataclass(frozen=True)
class Sweep:
    """One hyperparameter of one method, varied around ``base``."""

    name: str
    param: str
    values: tuple[float, ...]
    base: RunConfig

    def configs(self, seeds: Sequence[int]) -> list[RunConfig]:
        return [self.base.with_(**{self.param: v, "seed": s}) for s in seeds for v in self.values]


_FULL_BASE = RunConfig(num_samples=6000, epochs=8, rank_samples=2048)  # 4 800 train / 1 200 test
_SIM = _FULL_BASE.with_(method="simclr")
_VIC = _FULL_BASE.with_(method="vicreg")
_DINO = _FULL_BASE.with_(method="dino")

FULL_SWEEPS = (
    Sweep("SimCLR temperature", "temperature", (0.05, 0.1, 0.2, 0.5, 1.0, 2.0), _SIM),
    Sweep("SimCLR lr", "lr", (1e-4, 3e-4, 1e-3, 3e-3, 1e-2), _SIM),
    Sweep("SimCLR weight decay", "weight_decay", (0.0, 1e-3, 1e-2, 1e-1, 1.0), _SIM),
    Sweep("VICReg cov. weight", "cov", (0.0, 0.04, 0.2, 1.0, 5.0, 25.0), _VIC),
    Sweep("VICReg inv. weight", "inv", (1.0, 5.0, 25.0, 50.0, 100.0), _VIC),
    Sweep("VICReg lr", "lr", (1e-4, 3e-4, 1e-3, 3e-3, 1e-2), _VIC),
    Sweep("VICReg weight decay", "weight_decay", (0.0, 1e-3, 1e-2, 1e-1, 1.0), _VIC),
    Sweep("DINO teacher temp.", "teacher_temp", (0.01, 0.02, 0.04, 0.07, 0.1), _DINO),
    Sweep("DINO student temp.", "student_temp", (0.05, 0.1, 0.2, 0.4, 0.8), _DINO),
)
"""``rankme reproduce``: MNIST-1D (6 000 samples: 4 800 train / 1 200 test), 8 epochs, batch 256, AdamW; RankMe on
2 048 unlabeled training embeddings. The same scale as the demo, so the demo's runs are reused from a shared store."""

LONG_EPOCHS = 100
LONG_CHECKPOINTS = (8, 25, 50)
LONG_SEEDS = (0, 1)
LONG_SWEEPS = tuple(Sweep(s.name, s.param, s.values, s.base.with_(epochs=LONG_EPOCHS, schedule="cosine"))
                    for s in FULL_SWEEPS)
"""``rankme reproduce --protocol long`` (pre-registered in docs/reproduction.md): the nine grids of ``FULL_SWEEPS``
unchanged, 100 epochs with one warmup epoch then cosine decay to 0, seeds 0 and 1, every run also scored after
epochs 8, 25 and 50."""

DEMO_SWEEPS = (
    Sweep("SimCLR temperature", "temperature", (0.05, 0.1, 0.2, 0.5, 1.0), _SIM),
    Sweep("VICReg cov. weight", "cov", (0.0, 0.04, 0.2, 1.0, 5.0), _VIC),
)
"""``rankme demo``: two of those sweeps, 5 values each."""


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


def selection_tables(store: ResultStore, sweeps: Sequence[Sweep]) -> dict[str, Any]:
    """Per sweep: the accuracy each selector's pick reaches (in-distribution and OOD), regrets, correlations."""
    out: dict[str, Any] = {"sweeps": []}
    all_runs = list(store.runs())
    for sweep in sweeps:
        runs = sweep_runs(all_runs, sweep)
        if not runs:
            continue
        pts = sweep_points(runs, sweep.param)
        row: dict[str, Any] = {"sweep": sweep.name, "param": sweep.param, "points": [asdict(p) for p in pts],
                               "runs": len(runs)}
        for sel in SELECTORS:
            row[f"id_{sel}"] = picked_accuracy(pts, sel)
            row[f"ood_{sel}"] = picked_accuracy(pts, sel, ood=True)
            pick = select_runs(pts, sel) if sel != "random" else None
            row[f"pick_{sel}"] = None if pick is None else pick.value
        ranks = [float(r["metrics"]["rankme"]) for r in runs]
        row["corr_id"] = rank_correlations(ranks, [float(r["metrics"]["probe_acc"]) for r in runs])
        row["corr_ood"] = rank_correlations(ranks, [float(r["metrics"]["ood_probe_acc"]) for r in runs])
        row["agreement"] = _agreement(runs, pts, row["id_oracle"])
        row["regret_rankme"] = row["id_oracle"] - row["id_rankme"]
        row["regret_alpha_req"] = row["id_oracle"] - row["id_alpha_req"]
        out["sweeps"].append(row)
    regrets = [r["regret_rankme"] for r in out["sweeps"]]
    out["mean_regret_rankme"] = sum(regrets) / len(regrets) if regrets else float("nan")
    ar = [r["regret_alpha_req"] for r in out["sweeps"] if r["regret_alpha_req"] == r["regret_alpha_req"]]
    out["mean_regret_alpha_req"] = sum(ar) / len(ar) if ar else float("nan")
    return out


AGREEMENT_METRICS = ("rankme", "alpha", *RIVALS)
_LABELS = {"rankme": "RankMe", "alpha": "α-ReQ (closeness of α to 1)", "lidar": "LiDAR", "nesum": "NESum",
           "stable_rank": "stable rank", "participation_ratio": "participation ratio",
           "cluster": "cluster learnability"}


def _score(metrics: dict[str, Any], name: str) -> float:
    v = metrics.get(name)
    if v is None:
        return float("nan")
    return -abs(float(v) - 1.0) if name == "alpha" else float(v)


def _agreement(runs: list[dict[str, Any]], pts: list[Any], oracle: float) -> dict[str, dict[str, float]]:
    """Each label-free score vs probe accuracy over the sweep's runs, and the regret of the run it picks."""
    out = {}
    for name in AGREEMENT_METRICS:
        xs = [_score(r["metrics"], name) for r in runs]
        if all(x != x for x in xs):
            continue
        c = rank_correlations(xs, [float(r["metrics"]["probe_acc"]) for r in runs], n_boot=200)
        o = rank_correlations(xs, [float(r["metrics"]["ood_probe_acc"]) for r in runs], n_boot=0)
        sel = "alpha_req" if name == "alpha" else name
        out[name] = {"spearman": c["spearman"], "spearman_lo": c["spearman_lo"], "spearman_hi": c["spearman_hi"],
                     "kendall": c["kendall"], "ood_spearman": o["spearman"],
                     "regret": oracle - picked_accuracy(pts, sel)}
    return out


def format_agreement(tables: dict[str, Any]) -> str:
    """Per metric, over the sweeps: mean Spearman/Kendall with accuracy, mean regret, sweeps where it has the
    smallest regret (ties shared)."""
    sw = tables["sweeps"]
    lines = ["| metric | mean Spearman ρ (ID) | mean Kendall τ (ID) | mean Spearman ρ (OOD) | mean regret | "
             "best-or-tied sweeps |", "|---|---|---|---|---|---|"]
    for name in AGREEMENT_METRICS:
        rows = [r["agreement"][name] for r in sw if name in r.get("agreement", {})]
        if not rows:
            continue
        wins = sum(1 for r in sw if name in r["agreement"] and r["agreement"][name]["regret"] <= min(
            a["regret"] for a in r["agreement"].values()) + 1e-9)

        def avg(k: str, rows: list[dict[str, float]] = rows) -> float:
            vals = [x[k] for x in rows if x[k] == x[k]]
            return sum(vals) / len(vals) if vals else float("nan")

        lines.append(f"| {_LABELS[name]} | {avg('spearman'):.2f} | {avg('kendall'):.2f} | {avg('ood_spearman'):.2f} | "
                     f"{avg('regret'):.2f} | {wins}/{len(rows)} |")
    return "\n".join(lines)


def format_selection(tables: dict[str, Any], ood: bool = False) -> str:
    """The paper-shaped table: rows = selectors, columns = sweeps, cells = probe accuracy of the picked run."""
    sw = tables["sweeps"]
    pre = "ood_" if ood else "id_"
    head = "| selector | " + " | ".join(r["sweep"] for r in sw) + " |"
    lines = [head, "|" + "---|" * (len(sw) + 1)]
    names = {"oracle": "oracle (labels)", "rankme": "RankMe (argmax)", "rankme_plateau": "RankMe (plateau rule)",
             "alpha_req": "α-ReQ (α closest to 1)", "random": "random (expected)"}
    for sel in SELECTORS:
        lines.append(f"| {names[sel]} | " + " | ".join(f"{r[pre + sel]:.1f}" for r in sw) + " |")
    return "\n".join(lines)


def format_correlations(tables: dict[str, Any]) -> str:
    """Per sweep: Spearman / Kendall of RankMe with probe accuracy (95% bootstrap CI) and regrets."""
    lines = ["| sweep | runs | Spearman ρ (95% CI) | Kendall τ (95% CI) | OOD Spearman ρ | regret RankMe | "
             "regret α-ReQ |", "|---|---|---|---|---|---|---|"]
    for r in tables["sweeps"]:
        c, o = r["corr_id"], r["corr_ood"]
        lines.append(f"| {r['sweep']} | {r['runs']} | {c['spearman']:.2f} ({c['spearman_lo']:.2f}, "
                     f"{c['spearman_hi']:.2f}) | {c['kendall']:.2f} ({c['kendall_lo']:.2f}, {c['kendall_hi']:.2f}) | "
                     f"{o['spearman']:.2f} | {r['regret_rankme']:.1f} | {r['regret_alpha_req']:.1f} |")
    lines.append(f"\nMean regret over {len(tables['sweeps'])} sweeps: RankMe {tables['mean_regret_rankme']:.2f} "
                 f"points, α-ReQ {tables['mean_regret_alpha_req']:.2f} points.")
    return "\n".join(lines)


def run_reproduction(out_dir: str | Path, sweeps: Sequence[Sweep], seeds: Sequence[int] = (0,),
                     title: str = "rankme: label-free hyperparameter selection",
                     log: Callable[[str], None] = print,
                     train: Callable[[RunConfig], dict[str, Any]] = train_and_evaluate,
                     workers: int = 1) -> dict[str, Any]:
    """Run (or resume) the sweeps into ``out_dir/results.sqlite``, then write tables, plots and ``report.html``.

    Returns the tables plus ``text`` (what the CLI prints) and the paths written.
    """
    from rankme.report import plot_rank_vs_accuracy, plot_spectra, write_report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    store = ResultStore(out / "results.sqlite")
    try:
        counts = run_sweeps(store, sweeps, seeds, log=log, train=train, workers=workers)
        tables = selection_tables(store, sweeps)
        stored = list(store.runs())
        keys = {r["key"] for s in sweeps for r in sweep_runs(stored, s)}
        runs = [r for r in stored if r["key"] in keys]
    finally:
        store.close()
    id_table, ood_table, corr = format_selection(tables), format_selection(tables, ood=True), format_correlations(tables)
    agree = format_agreement(tables)
    scatter = plot_rank_vs_accuracy(runs, out / "rank_vs_accuracy.png")
    spectra = plot_spectra(runs, out / "spectra.png")
    data = sweeps[0].base.dataset if sweeps else "?"
    intro = (f"{len(runs)} runs on {data} ({counts['ran']} trained now, {counts['cached']} from the store, "
             f"{counts['seconds']:.0f} s). RankMe is computed on {sweeps[0].base.rank_samples} unlabeled training "
             "embeddings; accuracy is a linear probe on representations (labels used only here).")
    report = write_report(out / "report.html", title, [
        ("Setup", intro),
        ("In-distribution probe accuracy (%) of the picked run", id_table),
        ("Out-of-distribution probe accuracy (%) of the picked run", ood_table),
        ("Agreement of RankMe with accuracy, and regret (oracle − pick, points)", corr),
        ("All label-free metrics: agreement with accuracy and regret of their pick", agree),
    ], [("RankMe vs linear-probe accuracy (each point is one run)", scatter),
        ("Singular-value spectra of the best and worst run of each method", spectra)])
    text = "\n\n".join([intro, "In-distribution probe accuracy (%) of the picked run:\n" + id_table,
                        "Out-of-distribution probe accuracy (%):\n" + ood_table, corr,
                        "All label-free metrics:\n" + agree, f"Report: {report}"])
    return {**tables, "text": text, "report": str(report), "counts": counts}
