"""THE decision rule: which option to keep, from label-free scores and, when there are any, labels.

Pre-registered in docs/select.md ("The recommendation") before the runs that measured it. One pure function,
:func:`decide`, over :class:`Option` records: ``rankme select`` builds them from its candidates
(:mod:`rankme.selection.recommend`) and the reproduction from its stored runs (:mod:`rankme.paper.recommend`), so
the same code makes the pick a user sees and the pick the studies judge.

- Without labels: the highest centred participation ratio (:data:`RULE_METRIC`; ties to the higher RankMe).
- With a few labels (B = the smallest class count): the few-label pick (best cross-validated linear accuracy)
  replaces it only when B ≥ :data:`MIN_SWITCH_PER_CLASS` and the 95 % paired-bootstrap interval of their
  difference excludes 0.
- With every row labelled (the full-label oracle): the oracle's pick replaces it when it is better by more than
  the probe's noise (:func:`rankme.selection.warnings.probe_noise`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rankme.core.errors import InputError
from rankme.selection.fewlabel import N_BOOT, few_label_pick, paired_difference
from rankme.selection.warnings import probe_noise

__all__ = ["MIN_SWITCH_PER_CLASS", "RULE_METRIC", "Decision", "Option", "decide", "label_free_choice"]

RULE_METRIC = "participation_ratio"
"""The label-free rule's score (registry name): the centred participation ratio (Σλ)²/Σλ²."""
MIN_SWITCH_PER_CLASS = 5
"""Fewer labels per class than this never override the label-free pick (they are shown, not obeyed)."""


@dataclass(frozen=True)
class Option:
    """One thing a user could keep: a hyperparameter value (its seeds averaged) or one candidate.

    ``score`` is the label-free rule's score (:data:`RULE_METRIC`, divided by min(N, K) when widths differ),
    ``rankme`` the tie-break; ``value`` the swept value, if any. With a few labels: ``few_accuracy`` (mean
    cross-validated linear accuracy, %) and ``few_correct`` (mean out-of-fold correctness per labelled row, the same
    rows for every option). With every row labelled: ``oracle_accuracy`` (%), tested on ``n_test`` rows.
    """

    name: str
    score: float
    rankme: float
    value: float | None = None
    few_accuracy: float | None = None
    few_correct: Any = None
    oracle_accuracy: float | None = None


@dataclass(frozen=True)
class Decision:
    """What :func:`decide` kept and why: ``keep`` and ``label_free`` are indices into the options; ``basis`` is
    ``"label-free"``, ``"few labels"`` or ``"all labels"`` (what made ``keep``); ``labels`` what was given
    (``"none"``, ``"few"``, ``"all"``); ``labelled`` the labels' own pick (``None`` without labels); ``difference``
    (labels' pick − label-free pick, points, with its 95 % interval) when they differ; ``separated``: the labels
    told them apart beyond their noise."""

    keep: int
    label_free: int
    basis: str
    labels: str
    per_class: int | None = None
    labelled: int | None = None
    difference: tuple[float, float, float] | None = None
    separated: bool = False

    @property
    def switched(self) -> bool:
        """The labels overrode the label-free pick."""
        return self.keep != self.label_free


def _finite(v: float | None) -> bool:
    return v is not None and not math.isnan(v)


def label_free_choice(options: Sequence[Option]) -> int:
    """The label-free rule: the option with the highest ``score``; ties (equal score) to the higher RankMe, then
    the first. Options without a score are never picked unless none has one (then RankMe decides).

    Examples:
        >>> label_free_choice([Option("a", 3.0, 9.0), Option("b", 5.0, 2.0), Option("c", 5.0, 4.0)])
        2
        >>> label_free_choice([Option("a", math.nan, 9.0), Option("b", math.nan, 7.0)])
        0
    """
    if not options:
        raise InputError("no options to decide between", param="options")
    scored = [i for i, o in enumerate(options) if _finite(o.score)]
    if not scored:
        return max(range(len(options)), key=lambda i: (options[i].rankme, -i))
    return max(scored, key=lambda i: (options[i].score, options[i].rankme, -i))


def decide(options: Sequence[Option], *, per_class: int | None = None, n_test: int | None = None, seed: int = 0,
           n_boot: int = N_BOOT) -> Decision:
    """The pre-registered rule over ``options``.

    Args:
        options: the options, each with its label-free score and whatever labels gave it.
        per_class: labelled rows of the smallest class in the few-label check (B), when it ran.
        n_test: test rows of the full-label oracle, when it ran.
        seed: the paired bootstrap's seed (the few-label check's).
        n_boot: bootstrap resamples.

    Returns:
        The :class:`Decision`.

    Examples:
        >>> opts = [Option("lr=0.1", 30.0, 50.0), Option("lr=0.3", 20.0, 60.0)]
        >>> decide(opts).keep
        0
        >>> few = [Option(o.name, o.score, o.rankme, few_accuracy=a, few_correct=np.array(c, float))
        ...        for o, a, c in zip(opts, (50.0, 100.0), ([1, 0] * 50, [1] * 100))]
        >>> d = decide(few, per_class=50); d.keep, d.basis, d.separated
        (1, 'few labels', True)
        >>> decide(few, per_class=2).keep   # too few labels per class to override
        0
    """
    lf = label_free_choice(options)
    if any(_finite(o.oracle_accuracy) for o in options):
        accs = [float(o.oracle_accuracy) if o.oracle_accuracy is not None and _finite(o.oracle_accuracy)
                else -math.inf for o in options]
        best = max(range(len(options)), key=lambda i: (accs[i], options[i].rankme, -i))
        a, b = accs[best], accs[lf] if math.isfinite(accs[lf]) else 0.0
        gap = a - b
        sep = best != lf and gap > probe_noise(a, b, n_test or 1)
        return Decision(best if sep else lf, lf, "all labels" if sep else "label-free", "all", None, best,
                        None if best == lf else (gap, math.nan, math.nan), sep)
    have = [i for i, o in enumerate(options) if _finite(o.few_accuracy) and o.few_correct is not None]
    if not have or lf not in have:
        return Decision(lf, lf, "label-free", "none")
    sub = [options[i] for i in have]
    pick = have[few_label_pick([float(o.few_accuracy or 0.0) for o in sub], [o.rankme for o in sub])]
    if pick == lf:
        return Decision(lf, lf, "label-free", "few", per_class, pick)
    diff = paired_difference(np.asarray(options[pick].few_correct, float), np.asarray(options[lf].few_correct, float),
                             seed, n_boot)
    sep = not (diff[1] <= 0.0 <= diff[2])
    switch = sep and per_class is not None and per_class >= MIN_SWITCH_PER_CLASS
    return Decision(pick if switch else lf, lf, "few labels" if switch else "label-free", "few", per_class, pick,
                    diff, sep)
