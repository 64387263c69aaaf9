"""Label-free selection among runs, and how it compares with the label oracle.

Rival scores (``lidar``, ``nesum``, ``stable_rank``, ``participation_ratio``, ``cluster``) select by argmax too.

A sweep varies one hyperparameter; runs with the same value (seeds) are averaged into one point. Selectors:
``rankme`` (argmax), ``rankme_plateau`` (the paper's rule: among values whose RankMe is within ``tol`` of the
maximum, the extreme hyperparameter value — ``extreme="min"`` by default), ``alpha_req`` (α closest to 1, as its
paper suggests), ``oracle`` (best probe accuracy, uses labels) and ``random`` (the expected accuracy of a uniform
pick, i.e. the mean).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "PLATEAU_TOL",
    "RIVALS",
    "SCORES",
    "SELECTORS",
    "SweepPoint",
    "picked_accuracy",
    "rank_correlations",
    "select_runs",
    "sweep_points",
]

PLATEAU_TOL = 0.01
"""Relative tolerance of the plateau rule: values within 1% of the maximum RankMe count as reaching it."""

SELECTORS = ("oracle", "rankme", "rankme_plateau", "alpha_req", "random")
SCORES = ("rankme", "alpha", "lidar", "nesum", "stable_rank", "participation_ratio", "cluster")
"""Label-free scores a run may carry; every one but ``alpha`` is used by argmax (``alpha``: closest to 1)."""
RIVALS = ("lidar", "nesum", "stable_rank", "participation_ratio", "cluster")


@dataclass(frozen=True)
class SweepPoint:
    """One hyperparameter value of a sweep: accuracies and label-free ``scores`` averaged over its seeds."""

    value: float
    acc: float
    ood_acc: float
    seeds: int
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def rankme(self) -> float:
        return self.scores.get("rankme", float("nan"))

    @property
    def alpha(self) -> float:
        return self.scores.get("alpha", float("nan"))


def sweep_points(runs: Iterable[dict[str, Any]], param: str) -> list[SweepPoint]:
    """Average runs (``{"config": {...}, "metrics": {...}}``) by the value of ``param``, sorted by value.

    >>> runs = [{"config": {"t": t, "seed": s}, "metrics": {"rankme": r, "alpha": 1.0, "probe_acc": a,
    ...          "ood_probe_acc": a}} for t, s, r, a in [(0.1, 0, 5, 60), (0.1, 1, 7, 62), (1.0, 0, 3, 50)]]
    >>> [(p.value, p.rankme, p.acc, p.seeds) for p in sweep_points(runs, "t")]
    [(0.1, 6.0, 61.0, 2), (1.0, 3.0, 50.0, 1)]
    """
    groups: dict[float, list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        groups[float(r["config"][param])].append(r["metrics"])
    if not groups:
        raise ValueError(f"no runs to select from for hyperparameter {param!r}")

    def mean(ms: list[dict[str, Any]], k: str) -> float:
        vals = [float(m[k]) for m in ms if m.get(k) is not None and not math.isnan(float(m[k]))]
        return float(np.mean(vals)) if vals else float("nan")

    return [SweepPoint(v, mean(ms, "probe_acc"), mean(ms, "ood_probe_acc"), len(ms),
                       {k: mean(ms, k) for k in SCORES if any(k in m for m in ms)})
            for v, ms in sorted(groups.items())]


def select_runs(points: Sequence[SweepPoint], by: str, *, tol: float = PLATEAU_TOL,
                extreme: str = "min") -> SweepPoint | None:
    """The point a selector picks (``None`` for ``random``, whose value is the mean accuracy).

    >>> pts = [SweepPoint(v, acc, acc, 1, {"rankme": r, "alpha": a}) for v, r, a, acc in
    ...        [(1, 10.0, 1.5, 60), (2, 9.95, 1.0, 65), (3, 4.0, 0.8, 70)]]
    >>> [select_runs(pts, s).value for s in ("oracle", "rankme", "alpha_req")]
    [3, 1, 2]
    >>> select_runs(pts, "rankme_plateau", extreme="max").value   # 9.95 is within 1% of 10
    2
    """
    if by not in SELECTORS and by not in RIVALS:
        raise ValueError(f"unknown selector {by!r}; choose from {SELECTORS + RIVALS}")
    if not points:
        raise ValueError("no runs to select from")
    if by == "random":
        return None
    if by == "oracle":
        return max(points, key=lambda p: p.acc)
    if by == "rankme" or by in RIVALS:
        ok = [p for p in points if not math.isnan(p.scores.get(by, float("nan")))]
        return max(ok, key=lambda p: p.scores[by]) if ok else None
    if by == "alpha_req":
        ok = [p for p in points if not math.isnan(p.alpha)]
        return min(ok, key=lambda p: abs(p.alpha - 1.0)) if ok else None
    top = max(p.rankme for p in points)
    plateau = [p for p in points if p.rankme >= (1 - tol) * top]
    if extreme not in ("min", "max"):
        raise ValueError(f"extreme must be 'min' or 'max', got {extreme!r}")
    return (min if extreme == "min" else max)(plateau, key=lambda p: p.value)


def picked_accuracy(points: Sequence[SweepPoint], by: str, ood: bool = False, **kw: Any) -> float:
    """Probe accuracy of the point ``by`` picks (mean over points for ``random``)."""
    acc = (lambda p: p.ood_acc) if ood else (lambda p: p.acc)
    if by == "random":
        return float(np.mean([acc(p) for p in points]))
    p = select_runs(points, by, **kw)
    return float("nan") if p is None else acc(p)


def rank_correlations(x: Sequence[float], y: Sequence[float], n_boot: int = 1000,
                      seed: int = 0) -> dict[str, float]:
    """Spearman ρ and Kendall τ of x vs y with bootstrap 95% CIs (resampling pairs).

    >>> r = rank_correlations([1, 2, 3, 4, 5], [2, 4, 5, 8, 9])
    >>> round(r["spearman"], 9), round(r["kendall"], 9)
    (1.0, 1.0)
    """
    from scipy.stats import kendalltau, spearmanr

    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = ~(np.isnan(xa) | np.isnan(ya))
    xa, ya = xa[keep], ya[keep]
    if len(xa) < 3:
        nan = float("nan")
        return {"spearman": nan, "spearman_lo": nan, "spearman_hi": nan, "kendall": nan, "kendall_lo": nan,
                "kendall_hi": nan, "n": float(len(xa))}
    rng = np.random.default_rng(seed)
    boots: dict[str, list[float]] = {"spearman": [], "kendall": []}
    for _ in range(n_boot):
        idx = rng.integers(0, len(xa), len(xa))
        if np.ptp(xa[idx]) == 0 or np.ptp(ya[idx]) == 0:
            continue
        boots["spearman"].append(float(spearmanr(xa[idx], ya[idx]).statistic))
        boots["kendall"].append(float(kendalltau(xa[idx], ya[idx]).statistic))
    out = {"spearman": float(spearmanr(xa, ya).statistic), "kendall": float(kendalltau(xa, ya).statistic),
           "n": float(len(xa))}
    for k, vals in boots.items():
        lo, hi = np.percentile(vals, [2.5, 97.5]) if vals else (float("nan"), float("nan"))
        out[f"{k}_lo"], out[f"{k}_hi"] = float(lo), float(hi)
    return out
