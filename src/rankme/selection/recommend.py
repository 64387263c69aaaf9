"""The one answer of a selection: what to keep, the rule that chose it, how sure, and what labels would buy.

The candidates become options (a swept value with its seeds averaged, or one candidate), the pre-registered rule
(:func:`rankme.selection.decide.decide`) picks one, and the calibration (:mod:`rankme.selection.calibration`)
says how often picks made that way were within noise of the best in this project's studies. The other picks
(RankMe's argmax, the plateau rule, the few-label pick, the label oracle) are evidence under it, not rival answers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rankme.selection.calibration import Rate, Situation, budget_bucket, confidence, situation_of
from rankme.selection.candidates import Candidate
from rankme.selection.decide import MIN_SWITCH_PER_CLASS, RULE_METRIC, Decision, Option, decide
from rankme.selection.features import probe_test_rows
from rankme.selection.labelcheck import cv_from_record
from rankme.selection.warnings import CALIBRATION, HELD_OUT_REGRET

__all__ = ["PROGRESS_KEYS", "Recommendation", "recommend"]

PROGRESS_KEYS = frozenset({"epoch", "step", "global_step", "iteration", "iter"})
"""Hyperparameters that count training progress: their values are checkpoints of one run, not a sweep the studies
covered (the recommendation groups by them but says its confidence was not measured)."""
RULE = ("the highest participation ratio of the centred embeddings (pre-registered: it picked better than RankMe "
        "on every sweep set this project has)")


@dataclass(frozen=True)
class Recommendation:
    """What to keep (``keep``: a hyperparameter value, seeds averaged, or one candidate), the ``rule`` that chose it,
    how sure (``designed`` / ``held_out``: measured rates for this ``situation``, ``None`` where not measured) and
    what labels would buy; ``evidence``: the other picks, one line each."""

    keep: str
    rule: str
    situation: Situation
    designed: Rate | None
    held_out: Rate | None
    labels: str
    candidates: tuple[str, ...] = ()
    param: str | None = None
    value: float | None = None
    evidence: tuple[str, ...] = field(default_factory=tuple)
    basis: str = "label-free"

    @property
    def how_sure(self) -> str:
        """The measured confidence in words (or that it was not measured)."""
        rates = [r.sentence() for r in (self.designed, self.held_out) if r is not None]
        if not rates:
            return f"not measured: no study of this project covers this situation ({self.situation.describe()})"
        held = "" if self.held_out is not None else "; not measured on held-out sweeps" + _held_out_context()
        return f"picks made this way ({self.situation.describe()}) were " + "; ".join(rates) + held

    @property
    def short_rule(self) -> str:
        """The rule in a few words."""
        if self.basis == "few labels":
            return "the few-label pick, beyond the labels' noise"
        if self.basis == "all labels":
            return "the full-label probe's pick, beyond its noise"
        if self.basis == "fallback":
            return "RankMe's argmax (the participation ratio is missing)"
        return "the participation ratio's pick" + (" (labels checked)" if self.situation.labels != "none" else "")

    def line(self) -> str:
        """The one line a selection ends with: what to keep, the rule, how sure.

        Examples:
            >>> from rankme.selection.calibration import Rate
            >>> r = Recommendation("lr=0.3 (mean of 2 runs)", "…", Situation("none", False, "inside"),
            ...                    Rate(42, 47, 47, "the studies"), None, "")
            >>> print(r.line())
            keep lr=0.3 (mean of 2 runs) — the participation ratio's pick — how sure: 89 % of such picks were within noise of the best (42/47 designed-on, 95 % CI 77–95 %; held-out: not measured)
        """
        d, h = self.designed, self.held_out
        if d is None and h is None:
            sure = f"not measured ({self.situation.describe()}: no study covers it)"
        else:
            r = d if d is not None else h
            assert r is not None
            lo, hi = r.interval
            kind = "designed-on" if r is d else "held-out"
            sure = (f"{100 * r.p:.0f} % of such picks were within noise of the best ({r.good}/{r.decisions} {kind}, "
                    f"95 % CI {100 * lo:.0f}–{100 * hi:.0f} %" + ("; few cases" if r.few else ""))
            sure += "; held-out: not measured)" if h is None else f"; held-out {h.good}/{h.decisions})"
        return f"keep {self.keep} — {self.short_rule} — how sure: {sure}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``"recommendation"`` in ``--json``)."""
        return {"keep": self.keep, "param": self.param, "value": self.value, "candidates": list(self.candidates),
                "rule": self.rule, "basis": self.basis, "situation": self.situation.key,
                "situation_text": self.situation.describe(), "how_sure": self.how_sure,
                "designed": None if self.designed is None else self.designed.to_dict(),
                "held_out": None if self.held_out is None else self.held_out.to_dict(),
                "labels": self.labels, "evidence": list(self.evidence), "line": self.line()}


def _held_out_context() -> str:
    pr, rk = HELD_OUT_REGRET["participation_ratio"], HELD_OUT_REGRET["rankme"]
    return (f" (there, this rule's mean regret was {pr[0]:.2f} and {pr[1]:.2f} points against RankMe's "
            f"{rk[0]:.2f} and {rk[1]:.2f})")


def _groups(cands: Sequence[Candidate], swept: str | None) -> tuple[list[list[Candidate]], list[float] | None]:
    """Candidates grouped into options: by swept value when every candidate has a numeric one (seeds averaged),
    else one each."""
    if swept is not None and len({c.dim for c in cands}) == 1:
        try:
            values = sorted({float(c.params[swept]) for c in cands})
        except (KeyError, TypeError, ValueError):
            values = []
        if values:
            return [[c for c in cands if float(c.params[swept]) == v] for v in values], values
    return [[c] for c in cands], None


def _mean(xs: Sequence[float | None]) -> float:
    vals = [float(x) for x in xs if x is not None and not math.isnan(float(x))]
    return float(np.mean(vals)) if vals else math.nan


def _few(members: Sequence[Candidate]) -> tuple[float | None, Any]:
    recs = [c.few_label for c in members if c.few_label is not None]
    if not recs or len(recs) != len(members):
        return None, None
    cvs = [cv_from_record(r) for r in recs]
    return _mean([cv.linear for cv in cvs]), np.mean([cv.linear_correct.astype(float) for cv in cvs], axis=0)


def _name(members: Sequence[Candidate], swept: str | None, value: float | None, outputs: bool = False) -> str:
    if value is None:  # encoders compared by their outputs alone are named as given (no "[output]")
        return members[0].name if outputs else members[0].label
    seeds = f" (mean of {len(members)} runs)" if len(members) > 1 else f" ({members[0].label})"
    return f"{swept}={value:g}{seeds}"


def _options(groups: Sequence[Sequence[Candidate]], swept: str | None, values: Sequence[float] | None,
             mixed: bool) -> list[Option]:
    outputs = all(c.layer in ("", "output") for g in groups for c in g)
    out = []
    for i, members in enumerate(groups):
        norm = [max(min(c.n, c.dim), 1) if mixed else 1 for c in members]
        score = _mean([c.metrics.get(RULE_METRIC, math.nan) / k for c, k in zip(members, norm, strict=True)])
        few_acc, few_correct = _few(members)
        probe = _mean([c.probe_acc for c in members]) if all(c.probe_acc is not None for c in members) else None
        out.append(Option(_name(members, swept, None if values is None else values[i], outputs), score,
                          _mean([c.metrics["rankme"] for c in members]), None if values is None else values[i],
                          few_acc, few_correct, probe))
    return out


def _rule_text(d: Decision, options: Sequence[Option], fallback: bool) -> str:
    if fallback:
        return (f"RankMe's argmax, because the {RULE_METRIC.replace('_', ' ')} is missing for some candidate (not "
                "the pre-registered rule)")
    lf = options[d.label_free].name
    if d.basis == "few labels" and d.difference is not None:
        x, lo, hi = d.difference
        return (f"the few labels: {options[d.keep].name} beats the label-free pick {lf} by {x:.1f} points of "
                f"cross-validated accuracy (95 % CI {lo:.1f} to {hi:.1f}, excluding 0; {d.per_class}+ per class)")
    if d.basis == "all labels" and d.difference is not None:
        return (f"the labels: the full-label probe prefers {options[d.keep].name} to the label-free pick {lf} by "
                f"{d.difference[0]:.1f} points, more than the probe's noise")
    text = RULE
    if d.labels == "few" and d.labelled is not None and d.labelled != d.keep:
        why = ("they cannot tell it from the few-label pick" if not d.separated else
               f"fewer than {MIN_SWITCH_PER_CLASS} labels per class never override it")
        text += f"; the labels were checked and {why} ({options[d.labelled].name})"
    elif d.labels != "none":
        text += "; the labels agree" if d.labelled == d.keep else "; the labels were checked"
    return text


def _buy(d: Decision) -> str:
    buy = CALIBRATION.get("buy", {})
    if not buy or d.labels == "all":
        return ""
    fmt = lambda b: f"{b} per class {buy[b]['without']:.2f} → {buy[b]['with']:.2f}"  # noqa: E731
    n = max(v["instances"] for v in buy.values())
    tail = f" points of mean tie-adjusted regret on the designed-on studies' sweeps ({n} instances)"
    if d.labels == "none":
        return "what labels would buy: " + "; ".join(fmt(b) for b in sorted(buy, key=int)) + tail
    now = budget_bucket(int(d.per_class or 2))
    more = [b for b in sorted(buy, key=int) if int(b) > now]
    if not more:
        return f"more labels: {now}+ per class is the largest budget studied ({fmt(str(now))}{tail})"
    return f"more labels: {fmt(str(now))}; " + "; ".join(fmt(b) for b in more) + tail


def recommend(cands: Sequence[Candidate], *, swept: str | None, rankme_pick: Candidate,
              plateau: Candidate | None = None, oracle: Candidate | None = None,
              few_label: Any = None) -> Recommendation:
    """The recommendation over the eligible candidates ``cands`` (a layer scan's reference output excluded).

    Args:
        cands: the candidates, with their metrics (``participation_ratio`` and ``rankme``), params, probe
            accuracies and few-label records.
        swept: the swept hyperparameter (named or found), to average seeds and place the pick in its range.
        rankme_pick: RankMe's argmax (shown as evidence).
        plateau: the paper's plateau pick, if any (evidence).
        oracle: the full-label oracle's pick, if any (evidence).
        few_label: the few-label check of RankMe's pick, if any (evidence).

    Examples:
        >>> cs = [Candidate(f"run{i}", "", 100, 8, {"rankme": r, "participation_ratio": p}, {"lr": lr})
        ...       for i, (r, p, lr) in enumerate([(5.0, 3.0, 0.1), (7.0, 4.0, 0.3), (6.0, 2.0, 1.0)])]
        >>> rec = recommend(cs, swept="lr", rankme_pick=cs[1]); rec.keep, rec.situation.key
        ('lr=0.3 (run1)', 'none/kept/inside')
    """
    mixed = len({c.dim for c in cands}) > 1
    groups, values = _groups(cands, swept)
    options = _options(groups, swept, values, mixed)
    fallback = any(math.isnan(o.score) for o in options)
    rec = next((c.few_label for c in cands if c.few_label is not None), None)
    d = decide(options, per_class=None if rec is None else int(rec["per_class"]),
               n_test=probe_test_rows(min(c.n for c in cands)), seed=0 if rec is None else int(rec["seed"]))
    situation = situation_of(d, None if swept in PROGRESS_KEYS else values)
    rates = {"designed": None, "held_out": None} if fallback else confidence(situation)
    evidence = [f"RankMe's pick (the paper's criterion, argmax RankMe): {rankme_pick.label}"]
    if plateau is not None:
        evidence.append(f"the paper's plateau rule: {plateau.label}")
    if few_label is not None:
        evidence.append(f"few-label pick: {few_label.candidates[few_label.pick].name}")
    if oracle is not None:
        evidence.append(f"label oracle (full-label probe): {oracle.label}")
    kept = groups[d.keep]
    return Recommendation(options[d.keep].name, _rule_text(d, options, fallback), situation, rates["designed"],
                          rates["held_out"], _buy(d), tuple(c.label for c in kept),
                          swept if values is not None else None, None if values is None else values[d.keep],
                          tuple(evidence), "fallback" if fallback else d.basis)
