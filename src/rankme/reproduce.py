"""The paper's experiment at this machine's scale: sweep one hyperparameter at a time, store every run, select
without labels, and compare with the label oracle (``rankme demo`` is its small version).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rankme.select import SELECTORS, picked_accuracy, rank_correlations, select_runs, sweep_points
from rankme.ssl.train import RunConfig, train_and_evaluate
from rankme.store import ResultStore

__all__ = [
    "DEMO_SWEEPS",
    "FULL_SWEEPS",
    "Sweep",
    "format_correlations",
    "format_selection",
    "run_reproduction",
    "run_sweeps",
    "selection_tables",
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


_SIM = RunConfig(method="simclr")
_VIC = RunConfig(method="vicreg")
_DINO = RunConfig(method="dino")

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
"""``rankme reproduce --full``: MNIST-1D (12 000 samples), 15 epochs."""

_DEMO_BASE = {"num_samples": 6000, "epochs": 8, "rank_samples": 2048}
DEMO_SWEEPS = (
    Sweep("SimCLR temperature", "temperature", (0.05, 0.1, 0.2, 0.5, 1.0), _SIM.with_(**_DEMO_BASE)),
    Sweep("VICReg cov. weight", "cov", (0.0, 0.04, 0.2, 1.0, 5.0), _VIC.with_(**_DEMO_BASE)),
)
"""``rankme demo``: the same on a smaller MNIST-1D (6 000 samples, 8 epochs), two sweeps × 5 values."""


def run_sweeps(store: ResultStore, sweeps: Sequence[Sweep], seeds: Sequence[int] = (0,),
               log: Callable[[str], None] = print,
               train: Callable[[RunConfig], dict[str, Any]] = train_and_evaluate) -> dict[str, float]:
    """Run every (sweep, value, seed) not already in ``store``; each finished run is committed at once.

    Returns counts: runs done now, runs found in the store, and wall seconds.
    """
    t0, done, cached = time.perf_counter(), 0, 0
    todo = [(s, c) for s in sweeps for c in s.configs(seeds)]
    for i, (sweep, cfg) in enumerate(todo, 1):
        if cfg.key() in store:
            cached += 1
            continue
        metrics = train(cfg)
        store.put(cfg.key(), sweep.name, asdict(cfg), metrics)
        done += 1
        log(f"[{i}/{len(todo)}] {sweep.name} = {getattr(cfg, sweep.param):g} (seed {cfg.seed}): "
            f"RankMe {metrics['rankme']:.1f}, probe {metrics['probe_acc']:.1f}% "
            f"({metrics.get('train_seconds', 0):.0f} s train)")
    return {"ran": done, "cached": cached, "seconds": time.perf_counter() - t0}


def selection_tables(store: ResultStore, sweeps: Sequence[Sweep]) -> dict[str, Any]:
    """Per sweep: the accuracy each selector's pick reaches (in-distribution and OOD), regrets, correlations."""
    out: dict[str, Any] = {"sweeps": []}
    for sweep in sweeps:
        runs = [r for r in store.runs(sweep.name)
                if all(r["config"].get(k) == v for k, v in asdict(sweep.base).items() if k not in (sweep.param, "seed"))]
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
        row["regret_rankme"] = row["id_oracle"] - row["id_rankme"]
        row["regret_alpha_req"] = row["id_oracle"] - row["id_alpha_req"]
        out["sweeps"].append(row)
    regrets = [r["regret_rankme"] for r in out["sweeps"]]
    out["mean_regret_rankme"] = sum(regrets) / len(regrets) if regrets else float("nan")
    ar = [r["regret_alpha_req"] for r in out["sweeps"] if r["regret_alpha_req"] == r["regret_alpha_req"]]
    out["mean_regret_alpha_req"] = sum(ar) / len(ar) if ar else float("nan")
    return out


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
                     train: Callable[[RunConfig], dict[str, Any]] = train_and_evaluate) -> dict[str, Any]:
    """Run (or resume) the sweeps into ``out_dir/results.sqlite``, then write tables, plots and ``report.html``.

    Returns the tables plus ``text`` (what the CLI prints) and the paths written.
    """
    from rankme.report import plot_rank_vs_accuracy, plot_spectra, write_report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    store = ResultStore(out / "results.sqlite")
    try:
        counts = run_sweeps(store, sweeps, seeds, log=log, train=train)
        tables = selection_tables(store, sweeps)
        names = {s.name for s in sweeps}
        runs = [r for r in store.runs() if r["sweep"] in names]
    finally:
        store.close()
    id_table, ood_table, corr = format_selection(tables), format_selection(tables, ood=True), format_correlations(tables)
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
    ], [("RankMe vs linear-probe accuracy (each point is one run)", scatter),
        ("Singular-value spectra of the best and worst run of each method", spectra)])
    text = "\n\n".join([intro, "In-distribution probe accuracy (%) of the picked run:\n" + id_table,
                        "Out-of-distribution probe accuracy (%):\n" + ood_table, corr, f"Report: {report}"])
    return {**tables, "text": text, "report": str(report), "counts": counts}
