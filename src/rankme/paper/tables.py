"""The reproduction's tables: per sweep, the accuracy each selector's pick reaches, regrets, correlations, and the
agreement of every label-free metric of the registry with accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from rankme.io.store import ResultStore
from rankme.metrics.registry import METRICS, canonical_metrics
from rankme.paper.protocols import Sweep
from rankme.paper.runner import sweep_runs
from rankme.selection.rules import LABEL_FREE, SELECTORS, picked_accuracy, select_runs, sweep_points
from rankme.selection.stats import rank_correlations

__all__ = ["format_agreement", "format_correlations", "format_selection", "selection_tables"]


def selection_tables(store: ResultStore, sweeps: Sequence[Sweep]) -> dict[str, Any]:
    """Per sweep: the accuracy each selector's pick reaches (in-distribution and OOD), regrets, correlations."""
    out: dict[str, Any] = {"sweeps": []}
    all_runs = [{**r, "metrics": canonical_metrics(r["metrics"])} for r in store.runs()]
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


AGREEMENT_METRICS = LABEL_FREE
"""Every label-free selector of the registry, in registry order."""


def _score(metrics: dict[str, Any], name: str) -> float:
    v = metrics.get(name)
    return float("nan") if v is None else METRICS[name].score(v)


def _agreement(runs: list[dict[str, Any]], pts: list[Any], oracle: float) -> dict[str, dict[str, float]]:
    """Each label-free score vs probe accuracy over the sweep's runs, and the regret of the run it picks."""
    out = {}
    for name in AGREEMENT_METRICS:
        xs = [_score(r["metrics"], name) for r in runs]
        if all(x != x for x in xs):
            continue
        c = rank_correlations(xs, [float(r["metrics"]["probe_acc"]) for r in runs], n_boot=200)
        o = rank_correlations(xs, [float(r["metrics"]["ood_probe_acc"]) for r in runs], n_boot=0)
        out[name] = {"spearman": c["spearman"], "spearman_lo": c["spearman_lo"], "spearman_hi": c["spearman_hi"],
                     "kendall": c["kendall"], "ood_spearman": o["spearman"],
                     "regret": oracle - picked_accuracy(pts, name)}
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

        lines.append(f"| {METRICS[name].label} | {avg('spearman'):.2f} | {avg('kendall'):.2f} | {avg('ood_spearman'):.2f} | "
                     f"{avg('regret'):.2f} | {wins}/{len(rows)} |")
    return "\n".join(lines)


def format_selection(tables: dict[str, Any], ood: bool = False) -> str:
    """The paper-shaped table: rows = selectors, columns = sweeps, cells = probe accuracy of the picked run."""
    sw = tables["sweeps"]
    pre = "ood_" if ood else "id_"
    head = "| selector | " + " | ".join(r["sweep"] for r in sw) + " |"
    lines = [head, "|" + "---|" * (len(sw) + 1)]
    names = {"oracle": "oracle (labels)", "rankme": "RankMe (argmax)", "rankme_plateau": "RankMe (plateau rule)",
             "random": "random (expected)"}
    for sel in SELECTORS:
        lines.append(f"| {names.get(sel) or METRICS[sel].label} | " + " | ".join(f"{r[pre + sel]:.1f}" for r in sw) + " |")
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
