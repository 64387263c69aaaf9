"""Analysis of the pre-registered long protocol (docs/reproduction.md): scores at every checkpoint epoch, the
probe's seed-to-seed spread and the ties it implies, the verdict, and how often each selection warning fires on
bad and on good picks. Everything here reads stored runs only."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from rankme.metrics.registry import canonical_metrics
from rankme.paper.protocols import Sweep
from rankme.paper.runner import sweep_runs
from rankme.paper.tables import pick_warnings, tie_adjusted
from rankme.selection.rules import sweep_points
from rankme.selection.warnings import LABEL_FREE_WARNINGS

__all__ = ["SUCCESS_REGRET", "format_warning_study", "runs_at_epoch", "seed_spread", "tie_adjusted", "warning_study"]

SUCCESS_REGRET = 0.5
"""Pre-registered success: tie-adjusted mean regret of the RankMe pick over the sweeps, in points."""


def runs_at_epoch(runs: Sequence[dict[str, Any]], epoch: int) -> list[dict[str, Any]]:
    """The runs as they were scored after ``epoch`` (their final metrics when ``epoch`` is their last one).

    Examples:
        >>> r = {"config": {"epochs": 4}, "metrics": {"rankme": 3.0, "checkpoints": {"2": {"rankme": 2.0}}}}
        >>> [x["metrics"]["rankme"] for x in runs_at_epoch([r], 2) + runs_at_epoch([r], 4)]
        [2.0, 3.0]
    """
    out = []
    for r in runs:
        if int(r["config"]["epochs"]) == epoch:
            metrics = {k: v for k, v in r["metrics"].items() if k != "checkpoints"}
        else:
            metrics = r["metrics"].get("checkpoints", {}).get(str(epoch))
        if metrics is not None:
            out.append({**r, "metrics": canonical_metrics(metrics)})
    return out


def seed_spread(runs: Sequence[dict[str, Any]], key: str = "probe_acc") -> tuple[float, int]:
    """Pooled standard deviation of one run's ``key`` across seeds: √(mean over configs of the unbiased seed
    variance), over configs that differ only by seed and have at least two seeds. Returns (s, configs used).

    Examples:
        >>> runs = [{"config": {"lr": lr, "seed": s}, "metrics": {"probe_acc": a}}
        ...         for lr, s, a in [(1, 0, 60.0), (1, 1, 62.0), (2, 0, 70.0), (2, 1, 70.0)]]
        >>> seed_spread(runs)
        (1.0, 2)
    """
    groups: dict[str, list[float]] = defaultdict(list)
    for r in runs:
        cfg = {k: v for k, v in r["config"].items() if k != "seed"}
        groups[repr(sorted(cfg.items()))].append(float(r["metrics"][key]))
    variances = [float(np.var(v, ddof=1)) for v in groups.values() if len(v) >= 2]
    if not variances:
        return float("nan"), 0
    return math.sqrt(float(np.mean(variances))), len(variances)


def warning_study(runs: Sequence[dict[str, Any]], sweeps: Sequence[Sweep], epochs: Sequence[int],
                  seeds: Sequence[int], tie: float) -> dict[str, Any]:
    """Each warning on every (sweep, epoch, seed) instance with one run per value, as a user would have.

    A pick is bad when its probe accuracy is more than ``tie`` below the best value's in that instance
    (``tie`` = s·√2, the standard deviation of a difference of two single runs). Returns the instances and,
    per warning, how often it fired on bad and on good picks.
    """
    instances: list[dict[str, Any]] = []
    for epoch in epochs:
        at = runs_at_epoch(runs, epoch)
        for sweep in sweeps:
            for seed in seeds:
                mine = [r for r in sweep_runs(at, sweep) if r["config"]["seed"] == seed]
                if len(mine) < 2:
                    continue
                pts = sweep_points(mine, sweep.param)  # one run per value
                acc = [p.acc for p in pts]
                pick = max(range(len(pts)), key=lambda i: pts[i].rankme)
                fired = pick_warnings(mine, pts, sweep.param)
                instances.append({"sweep": sweep.name, "epoch": epoch, "seed": seed, "pick": pts[pick].value,
                                  "shortfall": max(acc) - acc[pick], "bad": max(acc) - acc[pick] > tie,
                                  "warnings": [w.code for w in fired]})
    summary = {}
    bad = [i for i in instances if i["bad"]]
    good = [i for i in instances if not i["bad"]]
    for code in LABEL_FREE_WARNINGS:  # the pre-registered ones; the study has no labels
        summary[code] = {"bad": sum(code in i["warnings"] for i in bad), "good": sum(code in i["warnings"] for i in good)}
    any_w = {"bad": sum(bool(i["warnings"]) for i in bad), "good": sum(bool(i["warnings"]) for i in good)}
    return {"instances": instances, "summary": summary, "any": any_w, "n_bad": len(bad), "n_good": len(good),
            "tie": tie}


def format_warning_study(study: dict[str, Any]) -> str:
    """The hit / false-alarm table of :func:`warning_study` (markdown)."""
    nb, ng = study["n_bad"], study["n_good"]
    lines = ["| warning | fires on bad picks | fires on good picks |", "|---|---|---|"]

    def cell(k: int, n: int) -> str:
        return f"{k}/{n} ({100.0 * k / n:.0f}%)" if n else "—"

    for code, c in study["summary"].items():
        lines.append(f"| {code} | {cell(c['bad'], nb)} | {cell(c['good'], ng)} |")
    lines.append(f"| any of them | {cell(study['any']['bad'], nb)} | {cell(study['any']['good'], ng)} |")
    return "\n".join(lines)
