"""The analysis of the pre-registered few-label study (docs/reproduction.md) from stored runs (what they store:
:mod:`rankme.paper.fewlabel_scores`): per budget, the regret of the few-label pick beside RankMe's on the same
(sweep, seed) instances, the smallest budget that beats RankMe, and how often RankMe's pick is within the
few-label noise."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rankme.core.errors import InputError
from rankme.paper.fewlabel_scores import correctness_from_bits
from rankme.paper.protocols import Sweep
from rankme.paper.runner import sweep_runs
from rankme.paper.tables import tie_adjusted
from rankme.selection.fewlabel import CV_REFUSAL, few_label_pick, paired_difference
from rankme.selection.rules import select_runs, sweep_points

__all__ = ["few_label_study", "format_few_label_study"]

def _mean(xs: Sequence[float]) -> float:
    return float(np.mean(xs)) if len(xs) else float("nan")


def _instance(mine: list[dict[str, Any]], sweep: Sweep, seed: int, tie: float | None) -> dict[str, Any] | None:
    """One (sweep, seed) instance: per budget the few-label pick's regret in every draw, beside RankMe's."""
    mine = sorted(mine, key=lambda r: float(r["config"][sweep.param]))
    pts = sweep_points(mine, sweep.param)
    if len(pts) != len(mine) or len(mine) < 2:
        return None  # not one run per value
    acc, rk = [p.acc for p in pts], [p.rankme for p in pts]
    rankme_point = select_runs(pts, "rankme")
    if rankme_point is None:
        return None
    rp, best = pts.index(rankme_point), max(acc)

    def adj(regret: float) -> float:
        return regret if tie is None else tie_adjusted(regret, tie)

    stores = [r["metrics"]["fewlabel"]["budgets"] for r in mine]
    inst: dict[str, Any] = {"sweep": sweep.name, "seed": seed, "rankme_raw": best - acc[rp],
                            "rankme_tie": adj(best - acc[rp]), "budgets": {}}
    for key in set.intersection(*(set(s) for s in stores)):
        draws = min(len(s[key]) for s in stores)
        row: dict[str, Any] = {k: _mean([s[key][d][k] for s in stores for d in range(draws)])
                               for k in ("shot_linear", "shot_knn")}
        if int(key) >= 2:
            raw, knn_raw, within = [], [], 0
            for d in range(draws):
                es = [s[key][d] for s in stores]
                if len({e["rows"] for e in es}) != 1:
                    raise InputError(f"{sweep.name}, seed {seed}: the runs' few-label rows differ (budget {key}, draw "
                                     f"{d}); they must be scored on the same data to be compared", param="runs")
                pick = few_label_pick([e["linear"] for e in es], rk)
                raw.append(best - acc[pick])
                knn_raw.append(best - acc[few_label_pick([e["knn"] for e in es], rk)])
                a, b = (correctness_from_bits(es[i]["linear_oof"]) for i in (pick, rp))
                _, lo, hi = paired_difference(a, b, seed=d)
                within += pick == rp or lo <= 0.0 <= hi
            row.update(raw=_mean(raw), tie=_mean([adj(x) for x in raw]), knn_raw=_mean(knn_raw),
                       knn_tie=_mean([adj(x) for x in knn_raw]), within=within, draws=draws)
        inst["budgets"][int(key)] = row
    return inst


def few_label_study(runs: Sequence[dict[str, Any]], sweeps: Sequence[Sweep], seeds: Sequence[int],
                    tie: float | None) -> dict[str, Any] | None:
    """The pre-registered analysis over every (sweep, seed) instance of ``runs`` (scored at one epoch) whose runs
    all store few-label accuracies; ``None`` when none do (a store from before the study).

    Returns:
        ``instances`` (per instance and budget), ``budgets`` (per budget: the mean over instances of the
        draw-averaged few-label regret, tie-adjusted and raw, the k-NN pick's as a diagnostic, RankMe's on the
        same instances, RankMe's pick within the few-label noise in ``within`` of ``decisions``, the mean
        few-shot test accuracies), ``smallest`` (the smallest budget whose few-label pick has a strictly lower
        mean tie-adjusted regret than RankMe's, or ``None``), ``tie`` and the mean evaluation ``seconds``.
    """
    instances, seconds = [], []
    for sweep in sweeps:
        for seed in seeds:
            mine = [r for r in sweep_runs(runs, sweep) if r["config"]["seed"] == seed]
            if mine and all(isinstance(r["metrics"].get("fewlabel"), dict) for r in mine):
                inst = _instance(mine, sweep, seed, tie)
                if inst is not None:
                    instances.append(inst)
                    seconds += [float(r["metrics"]["fewlabel"].get("seconds", float("nan"))) for r in mine]
    if not instances:
        return None
    budgets: dict[int, dict[str, Any]] = {}
    for b in sorted({b for i in instances for b in i["budgets"]}):
        have = [i for i in instances if b in i["budgets"]]
        rows = [i["budgets"][b] for i in have]
        s: dict[str, Any] = {"instances": len(have), "shot_linear": _mean([r["shot_linear"] for r in rows]),
                             "shot_knn": _mean([r["shot_knn"] for r in rows]),
                             "rankme_tie": _mean([i["rankme_tie"] for i in have]),
                             "rankme_raw": _mean([i["rankme_raw"] for i in have])}
        if b >= 2:
            s.update({k: _mean([r[k] for r in rows]) for k in ("tie", "raw", "knn_tie", "knn_raw")})
            s.update(within=sum(r["within"] for r in rows), decisions=sum(r["draws"] for r in rows))
        budgets[b] = s
    beats = [b for b, s in budgets.items() if b >= 2 and s["tie"] < s["rankme_tie"]]
    return {"instances": instances, "budgets": budgets, "smallest": min(beats) if beats else None, "tie": tie,
            "seconds": _mean([x for x in seconds if x == x])}


def format_few_label_study(study: dict[str, Any]) -> str:
    """The study's table (markdown) and its two sentences: the smallest budget that beats RankMe, the cost."""
    lines = ["| labels per class | instances | few-label pick: mean regret, tie-adjusted (raw) | RankMe's pick, same "
             "instances | k-NN pick (diagnostic) | RankMe's pick within the few-label noise | few-shot test "
             "accuracy, linear / k-NN (%) |", "|---|---|---|---|---|---|---|"]
    for b, s in study["budgets"].items():
        shot = f"{s['shot_linear']:.1f} / {s['shot_knn']:.1f}"
        if b < 2:
            lines.append(f"| {b} | {s['instances']} | not defined for selection ({CV_REFUSAL}) | — | — | — | {shot} |")
            continue
        lines.append(f"| {b} | {s['instances']} | {s['tie']:.2f} ({s['raw']:.2f}) | {s['rankme_tie']:.2f} "
                     f"({s['rankme_raw']:.2f}) | {s['knn_tie']:.2f} ({s['knn_raw']:.2f}) | {s['within']}/"
                     f"{s['decisions']} ({100.0 * s['within'] / max(s['decisions'], 1):.0f}%) | {shot} |")
    tie = study["tie"]
    rule = (f"regrets within the seed spread {tie:.2f} count as 0" if tie is not None else "no tie rule (one seed)")
    sel = [b for b in study["budgets"] if b >= 2]
    verdict = (f"Smallest budget at which few-label selection beats RankMe (strictly lower mean tie-adjusted "
               f"regret): **{study['smallest']} labels per class**." if study["smallest"] is not None else
               f"No budget up to {max(sel, default=0)} labels per class beat RankMe (strictly lower mean "
               "tie-adjusted regret).")
    return "\n".join(lines) + (f"\n\n{verdict} Regret: label oracle's probe accuracy − the picked run's, per (sweep, "
                               f"seed) instance, averaged over the draws ({rule}). Few-label evaluation cost: "
                               f"{study['seconds']:.1f} s per scored run on average.")
