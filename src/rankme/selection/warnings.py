"""When not to trust a label-free pick: warnings from the paper's own cautions, none fitted to any sweep.

Pre-registered in docs/reproduction.md before the long protocol ran, and measured there (how often each fires on
bad picks and on good ones):

1. ``edge`` — the pick is the smallest or largest value swept (≥ 3 values). RankMe is known to favour the
   least-constrained setting: high rank is necessary, not sufficient.
2. ``no_signal`` — the spread of RankMe over the candidates, max − min, is at most 2·√(se₁² + se₂²), se being the
   row-sampling standard errors (grouped jackknife) of those two candidates: nothing to pick on.
3. ``disagreement`` — neither stable rank's nor NESum's best candidate is RankMe's (both computed from the same
   spectra).
4. ``least_invariant`` — with augmented views, the pick is the candidate whose embeddings vary most between
   views of one sample (largest view-to-view / total variance, ≥ 3 candidates).
5. ``labels_disagree`` — with labels, the labels prefer another candidate by more than their own noise: the
   few-label pick beats RankMe's pick and the 95 % paired-bootstrap interval of the difference excludes 0 (the
   pre-registered few-label rule), or the full-label oracle's probe accuracy exceeds the pick's by more than
   :func:`probe_noise` (twice the binomial standard error of the difference on the probe's test rows). Not measured
   on the sweeps above (it uses labels; it is a check, not a prediction).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rankme.core.deprecation import UNSET, renamed
from rankme.core.validation import Note
from rankme.metrics.registry import METRICS, metric_names

__all__ = ["EVIDENCE", "LABEL_FREE_WARNINGS", "SECONDARY", "WARNINGS", "SelectionWarning", "evidence", "few_label_warning",
           "no_warning_text", "oracle_warning", "probe_noise", "selection_warnings"]

LABEL_FREE_WARNINGS = ("edge", "no_signal", "disagreement", "least_invariant")
"""The warnings that need no labels: the four pre-registered before the long protocol and measured there."""
WARNINGS = (*LABEL_FREE_WARNINGS, "labels_disagree")
SECONDARY = metric_names(secondary=True)
"""The spectral scores the ``disagreement`` warning compares RankMe's pick with (stable rank and NESum)."""


EVIDENCE: dict[str, dict[str, tuple[int, int, int, int]]] = {
    "designed": {"edge": (30, 35, 12, 37), "no_signal": (0, 35, 1, 37), "disagreement": (25, 35, 14, 37),
                 "least_invariant": (27, 35, 15, 37), "any": (34, 35, 25, 37)},
    "held_out": {"edge": (11, 12, 14, 20), "disagreement": (12, 12, 11, 20), "any": (12, 12, 17, 20)},
}
"""How often each warning fired, as (on bad picks, bad picks, on good picks, good picks). ``designed``: the nine
sweeps of the long reproduction the warnings were defined beside (72 instances, docs/reproduction.md).
``held_out``: four sweeps of SimCLR, VICReg and DINO hyperparameters not among those nine, defined outside the
project and never used to design anything (32 instances, seed spread 1.99, bad = regret > s·√2); ``no_signal`` and
``least_invariant`` were not measured there. Both on MNIST-1D with a 1-D CNN: other data may differ."""


def evidence(code: str) -> str:
    """What a warning is worth, measured, in one sentence.

    Examples:
        >>> evidence("edge")
        'measured: fired on 30/35 bad and 12/37 good picks of the sweeps it was designed beside, and on 11/12 bad and 14/20 good picks of held-out sweeps: a hint, not a verdict'
    """
    d, h = EVIDENCE["designed"].get(code), EVIDENCE["held_out"].get(code)
    if d is None:
        return "not measured"
    out = f"measured: fired on {d[0]}/{d[1]} bad and {d[2]}/{d[3]} good picks of the sweeps it was designed beside"
    out += f", and on {h[0]}/{h[1]} bad and {h[2]}/{h[3]} good picks of held-out sweeps" if h else ""
    return out + ": a hint, not a verdict"


def no_warning_text(*, labels: bool = False) -> str:
    """What the absence of a warning was checked for and what it is worth (the line shown instead of warnings);
    ``labels``: the pick was checked with labels (and they agree with it within their noise).

    Examples:
        >>> no_warning_text().split(";")[0]
        'no warning fired (edge, no signal, disagreement and least invariant were checked where their inputs exist)'
        >>> no_warning_text(labels=True).split(";")[-1]
        ' the labels given agree with the pick within their noise'
    """
    h = EVIDENCE["held_out"]["any"]
    checked = "edge, no signal, disagreement, least invariant and labels disagree" if labels else \
        "edge, no signal, disagreement and least invariant"
    return Note(f"no warning fired ({checked} were checked where their inputs "
                f"exist); that is no guarantee: on held-out sweeps some warning fired on {h[0]} of {h[1]} bad picks "
                f"but also on {h[2]} of {h[3]} good ones, so the few picks without one are too few to vouch for; "
                + ("the labels given agree with the pick within their noise" if labels
                   else "check the pick with a few labels (labels=)"), names=() if labels else ("labels",))


def probe_noise(acc_a: float, acc_b: float, n_test: int) -> float:
    """The full-label oracle's noise (points): twice the binomial standard error of the difference of two test
    accuracies (%) on ``n_test`` test rows, 2·√(a(1−a)/m + b(1−b)/m) — the same "twice the noise" as ``no_signal``
    (unpaired, so if anything it errs towards not warning).

    Examples:
        >>> round(probe_noise(90.0, 50.0, 100), 2)
        11.66
    """
    a, b, m = acc_a / 100.0, acc_b / 100.0, max(int(n_test), 1)
    return 200.0 * math.sqrt((a * (1 - a) + b * (1 - b)) / m)


def oracle_warning(oracle: str, oracle_acc: float, pick: str, pick_acc: float,
                   n_test: int) -> SelectionWarning | None:
    """``labels_disagree`` from the full-label oracle: its pick beats RankMe's by more than :func:`probe_noise`.

    Examples:
        >>> str(oracle_warning("b", 90.0, "a", 50.0, 100)).split(":")[0]
        '[labels_disagree] the labels disagree with the pick'
        >>> oracle_warning("b", 52.0, "a", 50.0, 100) is None
        True
    """
    gap, noise = oracle_acc - pick_acc, probe_noise(oracle_acc, pick_acc, n_test)
    if oracle == pick or gap <= noise:
        return None
    return SelectionWarning("labels_disagree", (
        f"the labels disagree with the pick: the full-label oracle (linear probe) prefers {oracle} "
        f"({oracle_acc:.1f}% vs {pick_acc:.1f}% on {n_test} test rows), a gap of {gap:.1f} points, more than the "
        f"probe's noise ({noise:.1f})"))


def few_label_warning(check: Any) -> SelectionWarning | None:
    """``labels_disagree`` from the few-label check (a :class:`rankme.selection.fewlabel.FewLabelCheck`): RankMe's
    pick is outside the few-label noise of the few-label pick."""
    if check.within_noise:
        return None
    c = check.candidates
    return SelectionWarning("labels_disagree", (
        f"the labels disagree with the pick: the few labels prefer {c[check.pick].name} to {c[check.rankme_pick].name} "
        f"by {check.difference:.1f} points of cross-validated linear accuracy (95% CI {check.difference_lo:.1f} to "
        f"{check.difference_hi:.1f}, which excludes 0; {check.n_labelled} labelled rows), beyond the few-label noise"))


@dataclass(frozen=True)
class SelectionWarning:
    """One reason to doubt a pick: its ``code`` (one of :data:`WARNINGS`) and a sentence for the reader."""

    code: str
    message: str

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


def _argbest(name: str, values: Sequence[float]) -> int | None:
    scored = [(METRICS[name].score(v), i) for i, v in enumerate(values) if v is not None and not math.isnan(v)]
    return max(scored)[1] if scored else None


def selection_warnings(rankme: Sequence[float], *, names: Sequence[str] | None = None,
                       values: Sequence[float] | None = None, param: str = "the hyperparameter",
                       se: Sequence[float | None] | None = None, secondary: Mapping[str, Sequence[float]] | None = None,
                       invariance: Sequence[float] | None = None,
                       labels: Sequence[str] | None = None) -> list[SelectionWarning]:
    """The warnings that apply to RankMe's pick (its argmax) among candidates.

    Args:
        rankme: RankMe of each candidate.
        names: the candidates' names, for the messages (default ``#1``, ``#2``, ...).
        values: the swept hyperparameter value of each candidate (enables ``edge``).
        param: the hyperparameter's name, for the messages.
        se: RankMe's row-sampling standard error of each candidate (enables ``no_signal``).
        secondary: other registry scores of each candidate, e.g. ``{"stable_rank": [...], "nesum": [...]}``
            (enables ``disagreement``, which uses those of :data:`SECONDARY` present).
        invariance: view-to-view / total variance of each candidate (enables ``least_invariant``).
        labels: deprecated name of ``names`` (``labels`` elsewhere means class labels).

    Returns:
        The warnings that fire, in the order of :data:`WARNINGS`.

    Examples:
        >>> w = selection_warnings([10.0, 12.0, 30.0], values=[1.0, 5.0, 25.0], param="lr")
        >>> [x.code for x in w]
        ['edge']
        >>> [x.code for x in selection_warnings([40.0, 41.0, 40.5], se=[0.4, 0.4, 0.4])]
        ['no_signal']
    """
    n = len(rankme)
    if n == 0:
        raise ValueError("no candidates")
    if labels is not None:
        names = renamed("labels", "names", labels, UNSET if names is None else names)
    for what, seq in (("names", names), ("values", values), ("se", se), ("invariance", invariance),
                      *((k, v) for k, v in (secondary or {}).items())):
        if seq is not None and len(seq) != n:
            raise ValueError(f"{what} has {len(seq)} entries for {n} candidates")
    names = list(names) if names is not None else [f"#{i + 1}" for i in range(n)]
    pick = max(range(n), key=lambda i: rankme[i])
    out: list[SelectionWarning] = []
    if values is not None and len(set(values)) >= 3:
        lo, hi = min(values), max(values)
        if values[pick] in (lo, hi):
            side = "smallest" if values[pick] == lo else "largest"
            out.append(SelectionWarning("edge", (
                f"RankMe picks the {side} {param} swept ({values[pick]:g}), at the edge of the range. RankMe is known "
                "to favour the least-constrained setting (high rank is necessary, not sufficient): extend the range "
                "past it, or check the pick with another criterion")))
    if se is not None and n >= 2:
        lo_i = min(range(n), key=lambda i: rankme[i])
        a, b = se[pick], se[lo_i]
        if a is not None and b is not None:
            spread, noise = rankme[pick] - rankme[lo_i], 2.0 * math.hypot(a, b)
            if spread <= noise:
                out.append(SelectionWarning("no_signal", (
                    f"RankMe spans only {spread:.3g} across the candidates, within twice its sampling noise "
                    f"({noise:.3g}): there is no signal to pick on")))
    present = {k: v for k, v in (secondary or {}).items() if k in SECONDARY}
    if present:
        picks = {k: _argbest(k, v) for k, v in present.items()}
        if all(p is not None and p != pick for p in picks.values()):
            others = ", ".join(f"{METRICS[k].label} picks {names[p]}" for k, p in picks.items() if p is not None)
            out.append(SelectionWarning("disagreement", f"{others}, not RankMe's {names[pick]}"))
    if invariance is not None and n >= 3:
        worst = max(range(n), key=lambda i: invariance[i])
        if worst == pick:
            out.append(SelectionWarning("least_invariant", (
                f"the pick {names[pick]} is the least augmentation-invariant candidate (view-to-view / total variance "
                f"{invariance[pick]:.2f}, others {min(invariance):.2f}–{sorted(invariance)[-2]:.2f}): its rank may "
                "come from variation the augmentations should remove")))
    return out
