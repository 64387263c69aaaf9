"""The reproduction's tables: per sweep, the accuracy each selector's pick reaches, regrets, correlations, and the
agreement of every label-free metric of the registry with accuracy."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from rankme.io.results_db import ResultStore
from rankme.metrics.registry import METRICS, canonical_metrics, computable
from rankme.paper.protocols import Sweep
from rankme.paper.runner import sweep_runs
from rankme.selection.rules import LABEL_FREE, SELECTORS, picked_accuracy, select_runs, sweep_points
from rankme.selection.stats import rank_correlations
from rankme.selection.warnings import SECONDARY, SelectionWarning, selection_warnings

__all__ = ["format_agreement", "format_correlations", "format_picks", "format_runs", "format_selection", "pick_warnings",
           "selection_tables", "tie_adjusted"]


def selection_tables(runs: ResultStore | Sequence[dict[str, Any]], sweeps: Sequence[Sweep], *,
                     tie: float | None = None) -> dict[str, Any]:
    """Per sweep: the value and accuracy each selector picks (in-distribution and OOD), regrets, correlations, the
    agreement of every label-free score, and the selection warnings of RankMe's pick.

    Args:
        runs: a results store, or stored runs (``{"config", "metrics"}`` dicts, e.g. one checkpoint epoch's).
        sweeps: the sweeps to tabulate (runs are matched to a sweep by config).
        tie: a regret at most this large counts as a tie (``tie_regret_rankme``); ``None``: no tie rule.

    Returns:
        ``{"sweeps": [row, ...], "mean_regret_rankme": ..., ...}``; each row's ``"warnings"`` are
        :class:`~rankme.selection.warnings.SelectionWarning` objects (``str(w)`` is their text).
    """
    out: dict[str, Any] = {"sweeps": [], "tie": tie}
    stored = runs.runs() if isinstance(runs, ResultStore) else runs
    all_runs = [{**r, "metrics": canonical_metrics(r["metrics"])} for r in stored]
    for sweep in sweeps:
        mine = sweep_runs(all_runs, sweep)
        if not mine:
            continue
        pts = sweep_points(mine, sweep.param)
        row: dict[str, Any] = {"sweep": sweep.name, "param": sweep.param, "points": [asdict(p) for p in pts],
                               "runs": len(mine)}
        for sel in SELECTORS:
            row[f"id_{sel}"] = picked_accuracy(pts, sel)
            row[f"ood_{sel}"] = picked_accuracy(pts, sel, ood=True)
            pick = select_runs(pts, sel) if sel != "random" else None
            row[f"pick_{sel}"] = None if pick is None else pick.value
        ranks = [float(r["metrics"]["rankme"]) for r in mine]
        row["corr_id"] = rank_correlations(ranks, [float(r["metrics"]["probe_acc"]) for r in mine])
        row["corr_ood"] = rank_correlations(ranks, [float(r["metrics"]["ood_probe_acc"]) for r in mine])
        row["agreement"] = _agreement(mine, pts, row["id_oracle"])
        row["regret_rankme"] = row["id_oracle"] - row["id_rankme"]
        row["regret_alpha_req"] = row["id_oracle"] - row["id_alpha_req"]
        if tie is not None:
            row["tie_regret_rankme"] = tie_adjusted(row["regret_rankme"], tie)
        row["warnings"] = pick_warnings(mine, pts, sweep.param)
        out["sweeps"].append(row)
    regrets = [r["regret_rankme"] for r in out["sweeps"]]
    out["mean_regret_rankme"] = sum(regrets) / len(regrets) if regrets else float("nan")
    if tie is not None:
        ties = [r["tie_regret_rankme"] for r in out["sweeps"]]
        out["mean_tie_regret_rankme"] = sum(ties) / len(ties) if ties else float("nan")
    ar = [r["regret_alpha_req"] for r in out["sweeps"] if r["regret_alpha_req"] == r["regret_alpha_req"]]
    out["mean_regret_alpha_req"] = sum(ar) / len(ar) if ar else float("nan")
    return out


def tie_adjusted(regret: float, spread: float) -> float:
    """A regret within the seed spread counts as a tie (0); otherwise it stands.

    Examples:
        >>> tie_adjusted(1.2, 1.5), tie_adjusted(3.0, 1.5)
        (0.0, 3.0)
    """
    return 0.0 if regret <= spread else regret


def pick_warnings(runs: Sequence[dict[str, Any]], pts: Sequence[Any], param: str) -> list[SelectionWarning]:
    """The selection warnings of RankMe's pick among a sweep's values (``pts`` from ``sweep_points(runs, param)``;
    seeds averaged: the standard error of a mean of seeds combines the runs' jackknife errors)."""
    se: list[float | None] = []
    for p in pts:
        errs = [r["metrics"].get("rankme_se") for r in runs if float(r["config"][param]) == p.value]
        se.append(None if not errs or any(e is None for e in errs) else
                  math.sqrt(sum(float(e) ** 2 for e in errs)) / len(errs))
    inv = [p.scores.get("invariance") for p in pts]
    return selection_warnings(
        [p.rankme for p in pts], names=[f"{param}={p.value:g}" for p in pts], values=[p.value for p in pts],
        param=param, se=se, secondary={k: [p.scores.get(k, math.nan) for p in pts] for k in SECONDARY},
        invariance=None if any(v is None for v in inv) else [float(v) for v in inv if v is not None])


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


def format_selection(tables: dict[str, Any], *, ood: bool = False) -> str:
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


def format_picks(tables: dict[str, Any]) -> str:
    """Per sweep: the value each selector picked, its accuracy, the regret of RankMe's pick, and its warnings."""
    tie = tables.get("tie")
    head = ["sweep", "oracle (labels)", "RankMe (argmax)", "plateau rule", "α-ReQ", "regret of RankMe"]
    head += ["tie-adjusted"] if tie is not None else []
    head += ["warnings on RankMe's pick"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in tables["sweeps"]:
        def pick(sel: str, r: dict[str, Any] = r) -> str:
            v = r.get(f"pick_{sel}")
            return "—" if v is None else f"{r['param']}={v:g} ({r[f'id_{sel}']:.1f}%)"

        cells = [r["sweep"], pick("oracle"), pick("rankme"), pick("rankme_plateau"), pick("alpha_req"),
                 f"{r['regret_rankme']:.1f}"]
        cells += [f"{r['tie_regret_rankme']:.1f}"] if tie is not None else []
        cells += ["; ".join(w.code for w in r["warnings"]) or "none"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_runs(tables: dict[str, Any]) -> str:
    """Every value of every sweep: the label-free scores (seeds averaged) next to the probe accuracies; the last
    column says which value RankMe picked and which the label oracle did (the report highlights RankMe's)."""
    names = [m for m, spec in METRICS.items() if (spec.selector or m in computable(["views"]))
             and any(m in p["scores"] for r in tables["sweeps"] for p in r["points"])]
    head = ["sweep", "value", "seeds", *(METRICS[m].label for m in names), "probe ID (%)", "probe OOD (%)", "pick"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in tables["sweeps"]:
        for p in r["points"]:
            scores = [f"{p['scores'][m]:.3g}" if m in p["scores"] else "—" for m in names]
            pick = ", ".join(who for who, sel in (("RankMe", "rankme"), ("label oracle", "oracle"))
                             if r.get(f"pick_{sel}") == p["value"])
            lines.append("| " + " | ".join([r["sweep"], f"{r['param']}={p['value']:g}", str(p["seeds"]), *scores,
                                            f"{p['acc']:.1f}", f"{p['ood_acc']:.1f}", pick]) + " |")
    return "\n".join(lines)
