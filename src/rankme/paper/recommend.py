"""The recommendation rule judged on stored runs (pre-registered in docs/select.md, "The recommendation").

The rule is :func:`rankme.selection.decide.decide`, the same function ``rankme select`` calls. Here every
(sweep, seed, epoch) instance of a store written by the reproduction runner becomes options (one run per value),
with the few-label accuracies the store keeps; per budget and draw the rule decides, and its regret is set beside
RankMe's pick's and the few-label pick's. The calibration table (how often picks in each situation were within
noise of the best) is counted from the same decisions.

``python -m rankme.paper.recommend`` prints the tables from the committed stores; ``--write`` regenerates
:data:`rankme.selection.warnings.CALIBRATION` from them.
"""

from __future__ import annotations

import argparse
import json
import math
import pprint
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rankme.core.errors import InputError
from rankme.paper.fewlabel_scores import correctness_from_bits
from rankme.paper.longrun import runs_at_epoch, seed_spread
from rankme.paper.protocols import FULL_SWEEPS, LONG_CHECKPOINTS, LONG_EPOCHS, LONG_SWEEPS, Sweep
from rankme.paper.runner import sweep_runs
from rankme.paper.tables import tie_adjusted
from rankme.selection.calibration import BUDGET_BUCKETS, budget_bucket, situation_of
from rankme.selection.decide import RULE_METRIC, Option, decide
from rankme.selection.rules import select_runs, sweep_points

__all__ = ["STUDIES", "calibration_table", "format_rule_study", "main", "rule_study", "study_runs"]

ROOT = Path(__file__).resolve().parents[3]
STUDIES: tuple[tuple[str, str, tuple[Sweep, ...], tuple[int, ...]], ...] = (
    ("the 8-epoch few-label study", "docs/data/fewlabel-full/results.sqlite", FULL_SWEEPS, (8,)),
    ("the long protocol", "docs/data/long-fewlabel/results.sqlite", LONG_SWEEPS, (*LONG_CHECKPOINTS, LONG_EPOCHS)),
)
"""The designed-on studies the calibration is counted from: (name, committed store, sweeps, epochs scored)."""
SEEDS = (0, 1)


def _options(pts: Sequence[Any], param: str, few: Sequence[dict[str, Any]] | None = None) -> list[Option]:
    """One option per sweep value; with ``few``, each value's stored few-label draw (linear accuracy and
    out-of-fold correctness)."""
    return [Option(f"{param}={p.value:g}", p.scores.get(RULE_METRIC, math.nan), p.rankme, p.value,
                   None if few is None else float(few[i]["linear"]),
                   None if few is None else correctness_from_bits(few[i]["linear_oof"]))
            for i, p in enumerate(pts)]


def _instance(mine: list[dict[str, Any]], param: str, tie: float) -> list[dict[str, Any]]:
    """Every decision of one instance (one run per value): label-free, then per budget and draw."""
    mine = sorted(mine, key=lambda r: float(r["config"][param]))
    pts = sweep_points(mine, param)
    if len(pts) != len(mine) or len(pts) < 2:
        return []
    acc, values = [p.acc for p in pts], [p.value for p in pts]
    best = max(acc)
    rk_point = select_runs(pts, "rankme")
    rk = pts.index(rk_point) if rk_point is not None else 0
    out = []

    def record(budget: int | None, draw: int | None, d: Any) -> None:
        out.append({"budget": budget, "draw": draw, "rule": best - acc[d.keep], "rankme": best - acc[rk],
                    "label_free": best - acc[d.label_free],
                    "few": None if d.labelled is None else best - acc[d.labelled],
                    "cell": situation_of(d, values).key, "good": best - acc[d.keep] <= tie * math.sqrt(2)})

    record(None, None, decide(_options(pts, param)))
    stores = [r["metrics"].get("fewlabel") for r in mine]
    if all(isinstance(s, dict) for s in stores):
        budgets = [s["budgets"] for s in stores if s is not None]
        for key in sorted(set.intersection(*(set(b) for b in budgets)), key=int):
            if int(key) < BUDGET_BUCKETS[0]:
                continue  # 1 label per class: no cross-validated accuracy
            for d in range(min(len(b[key]) for b in budgets)):
                entries = [b[key][d] for b in budgets]
                if len({e["rows"] for e in entries}) != 1:
                    raise InputError(f"{param}: the runs' few-label rows differ (budget {key}, draw {d})",
                                     param="runs")
                record(int(key), d, decide(_options(pts, param, entries), per_class=int(key), seed=d))
    return out


def rule_study(runs: Sequence[dict[str, Any]], sweeps: Sequence[Sweep], epochs: Sequence[int],
               seeds: Sequence[int] = SEEDS) -> dict[str, Any]:
    """Every decision of the rule on ``runs`` (a store's runs) at each of ``epochs``: per instance (sweep, seed,
    epoch) the label-free decision and, where the runs store few-label accuracies, one per budget and draw.

    Returns:
        ``decisions`` (each with its instance, budget, draw, the regrets of the rule's pick, RankMe's pick, the
        label-free rule's pick and the few-label pick, its calibration cell and whether it was within noise of
        the best) and ``spread`` per epoch (the seed spread s; regrets ≤ s count as ties, ≤ s·√2 as good).
    """
    decisions, spread = [], {}
    for epoch in epochs:
        at = runs_at_epoch(runs, epoch)
        s, configs = seed_spread(at)
        if not configs:
            continue
        spread[epoch] = s
        for sweep in sweeps:
            for seed in seeds:
                mine = [r for r in sweep_runs(at, sweep) if r["config"]["seed"] == seed]
                for d in _instance(mine, sweep.param, s):
                    decisions.append({**d, "instance": (sweep.name, seed, epoch), "tie": s})
    return {"decisions": decisions, "spread": spread}


def _summary(decisions: Sequence[dict[str, Any]], budget: int | None) -> dict[str, Any]:
    rows = [d for d in decisions if d["budget"] == budget]
    tie = lambda k: float(np.mean([tie_adjusted(d[k], d["tie"]) for d in rows]))  # noqa: E731
    raw = lambda k: float(np.mean([d[k] for d in rows]))  # noqa: E731
    out: dict[str, Any] = {"decisions": len(rows), "instances": len({d["instance"] for d in rows})}
    for k in ("rule", "rankme", "label_free") + (("few",) if budget is not None else ()):
        out[k] = (tie(k), raw(k)) if rows else (math.nan, math.nan)
    return out


def format_rule_study(study: dict[str, Any], title: str = "") -> str:
    """Per epoch and budget: the rule's mean regret, tie-adjusted (raw), beside RankMe's pick's and the few-label
    pick's on the same instances (markdown)."""
    lines = [f"{title}\n" if title else "",
             "| epoch | labels per class | decisions (instances) | the rule | label-free rule | RankMe's pick | "
             "few-label pick |", "|---|---|---|---|---|---|---|"]
    f = lambda v: f"{v[0]:.2f} ({v[1]:.2f})"  # noqa: E731
    for epoch in sorted({d["instance"][2] for d in study["decisions"]}):
        mine = [d for d in study["decisions"] if d["instance"][2] == epoch]
        for b in sorted({d["budget"] for d in mine}, key=lambda x: -1 if x is None else x):
            s = _summary(mine, b)
            lines.append(f"| {epoch} | {'none' if b is None else b} | {s['decisions']} ({s['instances']}) | "
                         f"{f(s['rule'])} | {f(s['label_free'])} | {f(s['rankme'])} | "
                         f"{'—' if b is None else f(s['few'])} |")
    return "\n".join(x for x in lines if x)


def calibration_table(studies: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The data of :data:`rankme.selection.warnings.CALIBRATION` from ``(name, rule_study(...))`` pairs (all
    designed-on): per situation cell [good, decisions, instances], and per studied budget what those labels bought
    (the rule's mean tie-adjusted regret with them and without, on the same instances)."""
    cells: dict[str, list[Any]] = defaultdict(lambda: [0, 0, set()])
    buy: dict[str, dict[str, Any]] = {}
    for name, study in studies:
        for d in study["decisions"]:
            c = cells[d["cell"]]
            c[0] += int(d["good"])
            c[1] += 1
            c[2].add((name, *d["instance"]))
    everything = [{**d, "instance": (name, *d["instance"])} for name, s in studies for d in s["decisions"]]
    label_free = {d["instance"]: d for d in everything if d["budget"] is None}
    for b in BUDGET_BUCKETS:
        rows = [d for d in everything if d["budget"] is not None and budget_bucket(d["budget"]) == b]
        if rows:
            with_ = float(np.mean([tie_adjusted(d["rule"], d["tie"]) for d in rows]))
            without = float(np.mean([tie_adjusted(label_free[d["instance"]]["rule"], d["tie"]) for d in rows]))
            buy[str(b)] = {"with": round(with_, 2), "without": round(without, 2),
                           "instances": len({d["instance"] for d in rows})}
    return {"sources": {"designed": " and ".join(n for n, _ in studies) + " (MNIST-1D, 1-D CNN; designed-on)",
                        "held_out": "held-out sweeps"},
            "cells": {"designed": {k: [v[0], v[1], len(v[2])] for k, v in sorted(cells.items())}, "held_out": {}},
            "buy": buy}


def study_runs(path: str | Path) -> list[dict[str, Any]]:
    """The runs of a committed store, read without writing to it (a copy of the file is opened)."""
    import shutil
    import tempfile

    from rankme.io.results_db import ResultStore

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "results.sqlite"
        shutil.copyfile(path, copy)
        store = ResultStore(copy)
        try:
            return list(store.runs())
        finally:
            store.close()


def _write(table: dict[str, Any]) -> Path:
    """Replace the generated CALIBRATION literal in rankme/selection/warnings.py."""
    import rankme.selection.warnings as w

    path = Path(w.__file__)
    text = path.read_text()
    start, end = "# --- CALIBRATION: generated", "# --- end of CALIBRATION ---"
    i, j = text.index(start), text.index(end)
    head = text[i:text.index("\n", i) + 1]
    body = "CALIBRATION: dict[str, Any] = " + json.dumps(table, indent=4, sort_keys=True) + "\n"
    path.write_text(text[:i] + head + body + text[j:])
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Print the rule's regrets per study, epoch and budget and the calibration; ``--write`` regenerates the table."""
    p = argparse.ArgumentParser(prog="python -m rankme.paper.recommend", description=__doc__.split("\n\n")[0])
    p.add_argument("--write", action="store_true", help="regenerate rankme.selection.warnings.CALIBRATION")
    args = p.parse_args(argv)
    studies = []
    for name, path, sweeps, epochs in STUDIES:
        study = rule_study(study_runs(ROOT / path), sweeps, epochs)
        studies.append((name, study))
        print(format_rule_study(study, f"{name} ({path})"), end="\n\n")
    table = calibration_table(studies)
    pprint.pprint(table, width=116)
    if args.write:
        print(f"written: {_write(table)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
