"""Choice rules: which candidate (run, hyperparameter value) a label-free score picks, and the label oracle's.

A sweep varies one hyperparameter; runs with the same value (seeds) are averaged into one point. Selectors:
every label-free metric of the registry that is a selector (``rankme``, ``stable_rank``, ``nesum``, ``lidar``,
``alpha_req`` — α closest to 1 —, ...) picks its best :meth:`~rankme.metrics.registry.Metric.score`;
``rankme_plateau`` is the paper's rule (among values whose RankMe is within ``tol`` of the maximum, the extreme
hyperparameter value — ``extreme="min"`` by default); ``oracle`` picks the best probe accuracy (uses labels) and
``random`` is the expected accuracy of a uniform pick (the mean).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from rankme.core.errors import InputError, Note
from rankme.metrics.registry import METRICS, canonical_metrics, metric_names
from rankme.selection.candidates import Candidate
from rankme.selection.features import probe_test_rows
from rankme.selection.fewlabel import FewLabelCheck
from rankme.selection.labelcheck import verdict_of_records
from rankme.selection.recommend import recommend
from rankme.selection.record import Selection
from rankme.selection.stats import rank_correlations
from rankme.selection.warnings import (
    SECONDARY,
    few_label_warning,
    oracle_warning,
    selection_warnings,
)

__all__ = [
    "CAVEAT",
    "LABEL_FREE",
    "NOTHING_TO_COMPARE",
    "PLATEAU_TOL",
    "SELECTORS",
    "Selection",
    "SweepPoint",
    "choose",
    "picked_accuracy",
    "select_runs",
    "sweep_points",
]

PLATEAU_TOL = 0.01
"""Relative tolerance of the plateau rule: values within 1% of the maximum RankMe count as reaching it."""

SELECTORS = ("oracle", "rankme", "rankme_plateau", "alpha_req", "random")
"""The rows of the paper-shaped selection table."""
LABEL_FREE = metric_names(selector=True)
"""Label-free scores that select (from the registry)."""


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
        """The point's mean RankMe (NaN when its runs carry none)."""
        return self.scores.get("rankme", float("nan"))


def sweep_points(runs: Iterable[dict[str, Any]], param: str) -> list[SweepPoint]:
    """Average runs (``{"config": {...}, "metrics": {...}}``) by the value of ``param``, sorted by value.

    Examples:
        >>> runs = [{"config": {"t": t, "seed": s}, "metrics": {"rankme": r, "alpha_req": 1.0, "probe_acc": a,
        ...          "ood_probe_acc": a}} for t, s, r, a in [(0.1, 0, 5, 60), (0.1, 1, 7, 62), (1.0, 0, 3, 50)]]
        >>> [(p.value, p.rankme, p.acc, p.seeds) for p in sweep_points(runs, "t")]
        [(0.1, 6.0, 61.0, 2), (1.0, 3.0, 50.0, 1)]
    """
    groups: dict[float, list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        groups[float(r["config"][param])].append(canonical_metrics(r["metrics"]))
    if not groups:
        raise InputError(f"no runs to select from for hyperparameter {param!r}", param="runs")

    def mean(ms: list[dict[str, Any]], k: str) -> float:
        vals = [float(m[k]) for m in ms if m.get(k) is not None and not math.isnan(float(m[k]))]
        return float(np.mean(vals)) if vals else float("nan")

    return [SweepPoint(v, mean(ms, "probe_acc"), mean(ms, "ood_probe_acc"), len(ms),
                       {k: mean(ms, k) for k in METRICS if any(k in m for m in ms)})
            for v, ms in sorted(groups.items())]


def select_runs(points: Sequence[SweepPoint], by: str, *, tol: float = PLATEAU_TOL,
                extreme: str = "min") -> SweepPoint | None:
    """The point a selector picks (``None`` for ``random``, whose value is the mean accuracy).

    Examples:
        >>> pts = [SweepPoint(v, acc, acc, 1, {"rankme": r, "alpha_req": a}) for v, r, a, acc in
        ...        [(1, 10.0, 1.5, 60), (2, 9.95, 1.0, 65), (3, 4.0, 0.8, 70)]]
        >>> [select_runs(pts, s).value for s in ("oracle", "rankme", "alpha_req")]
        [3, 1, 2]
        >>> select_runs(pts, "rankme_plateau", extreme="max").value   # 9.95 is within 1% of 10
        2
    """
    if by not in ("oracle", "random", "rankme_plateau") and by not in LABEL_FREE:
        raise InputError(f"unknown selector {by!r}; choose from oracle, random, rankme_plateau, {', '.join(LABEL_FREE)}",
                         param="by")
    if not points:
        raise InputError("no runs to select from", param="points")
    if by == "random":
        return None
    if by == "oracle":
        return max(points, key=lambda p: p.acc)
    if by != "rankme_plateau":
        ok = [p for p in points if not math.isnan(p.scores.get(by, float("nan")))]
        return max(ok, key=lambda p: METRICS[by].score(p.scores[by])) if ok else None
    top = max(p.rankme for p in points)
    plateau = [p for p in points if p.rankme >= (1 - tol) * top]
    if extreme not in ("min", "max"):
        raise InputError(f"extreme must be 'min' or 'max', got {extreme!r}", param="extreme")
    return (min if extreme == "min" else max)(plateau, key=lambda p: p.value)


def picked_accuracy(points: Sequence[SweepPoint], by: str, *, ood: bool = False, **kw: Any) -> float:
    """Probe accuracy of the point ``by`` picks (mean over points for ``random``)."""
    acc = (lambda p: p.ood_acc) if ood else (lambda p: p.acc)
    if by == "random":
        return float(np.mean([acc(p) for p in points]))
    p = select_runs(points, by, **kw)
    return float("nan") if p is None else acc(p)


REFERENCE_NOTE = ("the model's output after its own post-processing (pooling, normalisation): shown for "
                  "reference, not a layer, so not picked")
"""The note on a layer scan's model output, which is shown but never picked."""
CAVEAT = ("RankMe compares runs of one method scored on the same data and the same N (the paper's own caution); "
          "high rank is necessary, not sufficient")
NOTHING_TO_COMPARE = ("one candidate only: there is nothing to compare, so no pick and no warning means anything "
                      "(RankMe ranks candidates against each other; give two or more)")
"""The caveat of a selection with a single candidate (the line shown instead of the warnings)."""


def choose(candidates: Sequence[Candidate], *, param: str | None = None, extreme: str = "min",
           tol: float | None = None) -> Selection:
    """Rank by RankMe within each width K, pick the argmax and, if ``param`` is named, the paper's plateau pick over
    it (see :func:`select_runs`); attach the selection warnings of the pick; with probe accuracies, add the oracle,
    Spearman/Kendall and regret; with few-label accuracies (``Candidate.few_label``), the few-label check. Either
    label check that prefers another candidate beyond its noise adds the ``labels_disagree`` warning.

    Without ``param``, the ``edge`` warning reads the one numeric hyperparameter (other than ``seed``) that varies
    across the candidates, when exactly one does (a caveat says so); the plateau pick needs ``param`` named.

    When candidates have different widths K (the layers of a CNN), RankMe is bounded by min(N, K), so each width is
    ranked on its own (``picks``) and the overall pick uses the documented normalisation RankMe / min(N, K)
    (``best_rule`` says so); nothing is mixed silently.

    ``candidates`` are not changed: the pick (carrying its :class:`~rankme.selection.warnings.SelectionWarning`
    objects) and a layer scan's reference output (carrying its note) are new records in the result, so calling
    ``choose`` again on the same candidates gives the same selection.

    Examples:
        >>> cs = [Candidate(f"run{i}", "", 100, 8, {"rankme": r}, {"lr": lr}) for i, (r, lr) in
        ...       enumerate([(5.0, 0.1), (7.0, 0.3), (6.96, 0.2)])]
        >>> s = choose(cs, param="lr"); s.best.name, s.plateau.params["lr"], [w.code for w in s.warnings]
        ('run1', 0.2, ['edge'])
    """
    if not candidates:
        raise InputError("no candidates to choose from", param="candidates")
    if any("rankme" not in c.metrics for c in candidates):
        raise InputError("choose needs the 'rankme' metric of every candidate", param="candidates")
    # in a layer scan, a model output that is no layer's tensor (pooled, normalised) is shown for reference only;
    # it gets a note on a new record: the caller's candidates are never changed
    is_ref = [c.layer == "output" and any(o.name == c.name and o.layer not in ("", "output") for o in candidates)
              for c in candidates]
    cands = [replace(c, notes=list(c.notes) if REFERENCE_NOTE in c.notes else [*c.notes, REFERENCE_NOTE]) if r else c
             for c, r in zip(candidates, is_ref, strict=True)]
    reference = [c for c, r in zip(cands, is_ref, strict=True) if r]
    eligible = [c for c, r in zip(cands, is_ref, strict=True) if not r] or cands
    dims = sorted({c.dim for c in eligible}, reverse=True)
    groups = {k: sorted((c for c in eligible if c.dim == k), key=lambda c: -c.metrics["rankme"]) for k in dims}
    ranked = [c for k in dims for c in groups[k]] + sorted(reference, key=lambda c: -c.metrics["rankme"])
    picks = {k: g[0] for k, g in groups.items()}
    if len(dims) == 1:
        best, rule = ranked[0], "argmax RankMe"
    else:
        best = max(picks.values(), key=lambda c: c.metrics["rankme"] / max(min(c.n, c.dim), 1))
        rule = "argmax RankMe / min(N, K) over the widths' own picks (widths differ: RankMe is bounded by min(N, K))"
    caveats = [CAVEAT]
    if len(dims) > 1:
        caveats.append(f"{len(dims)} embedding widths K ({', '.join(map(str, dims))}): each width is ranked on its "
                       "own; across widths only RankMe / min(N, K) is compared")
    if any(c.n < c.dim for c in candidates):
        caveats.append("some candidates have fewer samples than features (N < K): their RankMe is at most N and "
                       "reads low (see each note); score at least 2K samples where you can")
    group = groups[best.dim]
    plateau = None if param is None else _plateau(ranked, group, param, extreme=extreme, tol=tol)
    swept = param if param is not None else _varying_param(group)
    if param is None and swept is not None:
        caveats.append(Note(f"the edge check read {swept}, the one hyperparameter that varies across the "
                            "candidates (name it, or another, with param=)", names=("param",)))
    if len(eligible) == 1:
        caveats.append(NOTHING_TO_COMPARE)
    fired = selection_warnings(
        [c.metrics["rankme"] for c in group], names=[c.label for c in group],
        values=[float(c.params[swept]) for c in group] if swept is not None else None, param=swept or "",
        se=[c.rankme_se for c in group],
        secondary={k: [c.metrics[k] for c in group] for k in SECONDARY if all(k in c.metrics for c in group)},
        invariance=[float(c.invariance) for c in group if c.invariance is not None]
        if all(c.invariance is not None for c in group) else None)
    scored = [c for c in ranked if c.probe_acc is not None]
    oracle = max(scored, key=lambda c: c.probe_acc or 0.0) if scored else None
    if oracle is not None and best.probe_acc is not None:
        w = oracle_warning(oracle.label, oracle.probe_acc or 0.0, best.label, best.probe_acc, probe_test_rows(best.n))
        fired += [w] if w is not None else []
    few = _few_label(ranked, best)
    if few is not None and (w := few_label_warning(few)) is not None:
        fired.append(w)
    picked = replace(best, warnings=list(fired))  # the pick carries its warnings (objects), on a new record
    swap = lambda c: picked if c is best else c  # noqa: E731
    ranked, picks = [swap(c) for c in ranked], {k: swap(c) for k, c in picks.items()}
    plateau = None if plateau is None else swap(plateau)
    correlations, regret = None, None
    if oracle is not None:
        oracle = swap(oracle)
        scored = [swap(c) for c in scored]
        correlations = rank_correlations([c.metrics["rankme"] for c in scored], [c.probe_acc or 0.0 for c in scored])
        regret = float((oracle.probe_acc or 0.0) - (picked.probe_acc or 0.0))
    rec = recommend([swap(c) for c in eligible], swept=swept, rankme_pick=picked, plateau=plateau, oracle=oracle,
                    few_label=few)
    return Selection(ranked, picked, plateau=plateau, param=param, oracle=oracle, correlations=correlations,
                     regret=regret, picks=picks, best_rule=rule, warnings=fired, caveats=caveats, few_label=few,
                     recommendation=rec)


def _varying_param(group: Sequence[Candidate]) -> str | None:
    """The one numeric hyperparameter other than ``seed`` whose value varies across ``group``, else ``None``.

    Examples:
        >>> cs = [Candidate("a", "", 9, 3, {"rankme": 1.0}, {"lr": lr, "seed": s, "act": "relu"})
        ...       for lr, s in [(0.1, 0), (0.2, 1), (0.3, 0)]]
        >>> _varying_param(cs), _varying_param(cs[:1])
        ('lr', None)
    """
    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(float(v))

    varying = [k for k in sorted(set().union(*(c.params for c in group))) if k != "seed"
               and all(number(c.params.get(k)) for c in group) and len({float(c.params[k]) for c in group}) > 1]
    return varying[0] if len(varying) == 1 else None


def _few_label(ranked: Sequence[Candidate], best: Candidate) -> FewLabelCheck | None:
    """The few-label check over the candidates that carry few-label accuracies (``None`` when the pick does not)."""
    have = [c for c in ranked if c.few_label is not None]
    at = [i for i, c in enumerate(have) if c is best]
    if not at:
        return None
    return verdict_of_records([c.few_label for c in have if c.few_label is not None], [c.label for c in have],
                              [c.metrics["rankme"] for c in have], at[0])


def _plateau(ranked: Sequence[Candidate], group: Sequence[Candidate], param: str, *, extreme: str,
             tol: float | None) -> Candidate | None:
    """The paper's plateau pick over ``param`` among the candidates of the pick's width (``group``)."""
    missing = [c.label for c in ranked if param not in c.params]
    if missing:
        raise InputError(f"hyperparameter param={param!r} is unknown for {missing[:3]}; known: "
                         f"{sorted(set().union(*(c.params for c in ranked)))}", param="param")
    try:
        runs = [{"config": {param: float(c.params[param])}, "metrics": {"rankme": c.metrics["rankme"],
                 "probe_acc": c.probe_acc if c.probe_acc is not None else math.nan}} for c in group]
    except (TypeError, ValueError) as e:
        raise InputError(f"hyperparameter param={param!r} must be numeric for the plateau rule",
                         param="param") from e
    point = select_runs(sweep_points(runs, param), "rankme_plateau", tol=PLATEAU_TOL if tol is None else tol,
                        extreme=extreme)
    if point is None:
        return None
    return max((c for c in group if float(c.params[param]) == point.value), key=lambda c: c.metrics["rankme"])
