"""The few-label check of a label-free pick: with B labels per class, which candidate does a cross-validated linear
probe prefer, and is RankMe's pick within the noise of that few-label pick?

The rules are pre-registered in docs/reproduction.md ("the few-label study"): B labels per class drawn stratified
from the labelled rows; a standardised multinomial logistic regression (C = 1, lbfgs) and a k-NN (k = min(5, B − 1),
cosine on standardised features), both scored by stratified cross-validation inside the labelled rows with
min(5, B) shuffled folds; the few-label pick is the best cross-validated linear accuracy, ties to the higher
RankMe; RankMe's pick is *within the few-label noise* when the 95 % interval of the paired bootstrap (2 000
resamples of the labelled rows' out-of-fold correctness, the same resamples for both) of the difference contains 0.
Labels check a label-free pick here; they never make it. Accuracies are in percent, differences in points.

The label-only computation (the "unlabelled" rule, the draw, the classifiers, the cross-validated accuracies and
the bootstrap) lives in :mod:`rankme.scoring.fewlabel`, one layer down, so the training monitor's few-label probe
runs the same code; its names are importable from here as before. This module adds the selection across
candidates: the few-label pick, the verdict and its statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rankme.core.errors import InputError
from rankme.scoring.fewlabel import (
    CV_REFUSAL,
    LINEAR_C,
    MAX_FOLDS,
    MAX_K,
    N_BOOT,
    CVAccuracy,
    _features,
    _plan,
    bootstrap_means,
    cv_accuracies,
    draw_budget,
    few_shot_accuracies,
    knn_k,
    labelled_rows,
    paired_difference,
)

__all__ = ["CV_REFUSAL", "LINEAR_C", "MAX_FOLDS", "MAX_K", "N_BOOT", "CVAccuracy", "CandidateAccuracy",
           "FewLabelCheck", "bootstrap_means", "cv_accuracies", "draw_budget", "few_label_check", "few_label_pick",
           "few_label_verdict", "few_shot_accuracies", "knn_k", "labelled_rows", "paired_difference"]


def few_label_pick(accuracies: Sequence[float], rankme: Sequence[float]) -> int:
    """The candidate with the highest accuracy; ties (equal accuracy) go to the higher RankMe, then the first.

    Examples:
        >>> few_label_pick([70.0, 75.0, 75.0], rankme=[9.0, 3.0, 5.0])
        2
    """
    acc, rk = np.asarray(accuracies, dtype=float), np.asarray(rankme, dtype=float)
    if acc.ndim != 1 or acc.shape != rk.shape or not acc.size:
        raise InputError(f"{acc.size} accuracies for {rk.size} RankMe values: need one of each per candidate",
                         param="accuracies", names=("rankme",))
    if np.isnan(acc).all():
        raise InputError("accuracies: all NaN; no candidate to pick", param="accuracies")
    tied = np.flatnonzero(acc == np.nanmax(acc))
    return int(tied[np.argmax(np.where(np.isnan(rk[tied]), -np.inf, rk[tied]))])


@dataclass(frozen=True)
class CandidateAccuracy:
    """One candidate's cross-validated accuracies (%) with 95 % bootstrap intervals, and its RankMe."""

    name: str
    rankme: float
    linear: float
    linear_lo: float
    linear_hi: float
    knn: float
    knn_lo: float
    knn_hi: float


@dataclass(frozen=True)
class FewLabelCheck:
    """The few-label pick, every candidate's accuracies, and whether RankMe's pick is within the few-label noise
    (``difference``: few-label pick's linear CV accuracy − RankMe pick's, points, with its paired 95 % interval)."""

    candidates: tuple[CandidateAccuracy, ...]
    pick: int
    rankme_pick: int
    difference: float
    difference_lo: float
    difference_hi: float
    within_noise: bool
    n_labelled: int
    classes: int
    per_class: int
    folds: int
    k: int
    seed: int
    n_boot: int
    statement: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (candidates as a list of dicts, plus the picked names)."""
        d = asdict(self)
        d["candidates"] = [asdict(c) for c in self.candidates]
        d["pick_name"], d["rankme_pick_name"] = (self.candidates[i].name for i in (self.pick, self.rankme_pick))
        return d


def _statement(c: tuple[CandidateAccuracy, ...], pick: int, rp: int, diff: tuple[float, float, float],
               within: bool, n: int, per_class: int) -> str:
    on = f"{n} labelled rows ({per_class}+ per class)"
    if pick == rp:
        return (f"The few labels pick RankMe's pick too ({c[pick].name}: cross-validated linear accuracy "
                f"{c[pick].linear:.1f}% on {on}).")
    gap = (f"{c[pick].linear:.1f}% vs {c[rp].linear:.1f}%, difference {diff[0]:.1f} points (95% CI {diff[1]:.1f} "
           f"to {diff[2]:.1f})")
    if within:
        return (f"RankMe's pick {c[rp].name} is within the few-label noise of the few-label pick {c[pick].name} "
                f"({gap} on {on}).")
    return (f"The labels disagree with RankMe's pick: {c[pick].name} beats {c[rp].name} ({gap}, which excludes 0, "
            f"on {on}).")


def few_label_check(candidates_X: Sequence[Any], y_labelled: Any, idx: Any, rankme_pick: int, seed: int = 0, *,
                    rankme: Sequence[float], names: Sequence[str] | None = None,
                    n_boot: int = N_BOOT) -> FewLabelCheck:
    """Check a label-free pick with a few labels.

    Args:
        candidates_X: each candidate's representations of the same n rows (n × d_i; d may differ).
        y_labelled: the labels of the rows ``idx`` (e.g. ``y[draw_budget(y, B, seed)]``); none unlabelled.
        idx: the labelled rows (indices into each candidate's rows).
        rankme_pick: the index of the candidate RankMe (or another label-free rule) picked.
        seed: folds, and the bootstrap resamples (the same for every candidate and the difference).
        rankme: every candidate's RankMe (the few-label pick's tie-break: higher RankMe).
        names: candidate names for the statement (default ``candidate i``).
        n_boot: bootstrap resamples.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> y = np.repeat([0, 1], 10); good = y[:, None] + 0.1 * rng.standard_normal((20, 3))
        >>> bad = rng.standard_normal((20, 3))
        >>> r = few_label_check([bad, good], y, np.arange(20), rankme_pick=0, rankme=[9.0, 5.0], names=["a", "b"])
        >>> r.pick, r.within_noise, r.statement.startswith("The labels disagree with RankMe's pick: b beats a")
        (1, False, True)
    """
    xs = [_features(x, f"candidates_X[{i}]", "candidates_X") for i, x in enumerate(candidates_X)]
    if not xs:
        raise InputError("candidates_X: no candidates; pass each candidate's representations of the same rows",
                         param="candidates_X")
    if len({len(x) for x in xs}) > 1:
        raise InputError(f"candidates_X: row counts {[len(x) for x in xs]} differ; every candidate must represent "
                         "the same rows", param="candidates_X")
    _check_candidates(len(xs), rankme, rankme_pick, names)
    rows = np.asarray(idx)
    if rows.ndim != 1 or len(np.unique(rows)) != len(rows):
        raise InputError("idx: need 1-D labelled row indices without repeats", param="idx")
    given = len(np.asarray(y_labelled))
    kept, y = labelled_rows(y_labelled)
    if given != len(rows):
        raise InputError(f"y_labelled: {given} label(s) for the {len(rows)} rows of idx; pass the labels of exactly "
                         "the rows idx (e.g. y[draw_budget(y, B, seed)])", param="y_labelled", names=("idx",))
    if len(kept) != given:
        raise InputError(f"y_labelled: {given - len(kept)} of {given} label(s) mark unlabelled rows (-1, NaN or "
                         "empty); keep only labelled rows (labelled_rows, draw_budget)", param="y_labelled")
    per_class, _, _ = _plan(y)
    cvs = [cv_accuracies(x, rows, y, seed, n_boot) for x in xs]
    return few_label_verdict(cvs, rankme_pick, seed, rankme=rankme, names=names, n_boot=n_boot,
                             classes=len(np.unique(y)), per_class=per_class)


def _check_candidates(n: int, rankme: Sequence[float], rankme_pick: int, names: Sequence[str] | None) -> None:
    if len(rankme) != n:
        raise InputError(f"rankme: {len(rankme)} value(s) for {n} candidates; need one per candidate", param="rankme")
    if isinstance(rankme_pick, bool) or not 0 <= int(rankme_pick) < n:
        raise InputError(f"rankme_pick={rankme_pick!r}: need a candidate index in [0, {n})", param="rankme_pick")
    if names is not None and len(names) != n:
        raise InputError(f"names: {len(names)} name(s) for {n} candidates", param="names")


def few_label_verdict(cvs: Sequence[CVAccuracy], rankme_pick: int, seed: int = 0, *, rankme: Sequence[float],
                      names: Sequence[str] | None = None, n_boot: int = N_BOOT, classes: int,
                      per_class: int) -> FewLabelCheck:
    """The few-label pick and the noise rule of :func:`few_label_check` from each candidate's cross-validated
    accuracies on the same labelled rows (``classes`` classes, ``per_class`` the smallest class count): what
    ``rankme select`` and the Optuna helper call on their stored accuracies (:mod:`rankme.selection.labelcheck`)."""
    if not cvs:
        raise InputError("no candidates to check", param="cvs")
    if len({len(c.linear_correct) for c in cvs}) > 1:
        raise InputError("the candidates' few-label accuracies are over different row counts; judge every "
                         "candidate on the same labelled rows", param="cvs")
    _check_candidates(len(cvs), rankme, rankme_pick, names)
    rk = [float(v) for v in rankme]
    label_names = [f"candidate {i}" for i in range(len(cvs))] if names is None else [str(n) for n in names]
    cands = tuple(CandidateAccuracy(label_names[i], rk[i], c.linear, *c.linear_interval, c.knn, *c.knn_interval)
                  for i, c in enumerate(cvs))
    rp, n = int(rankme_pick), len(cvs[0].linear_correct)
    pick = few_label_pick([c.linear for c in cvs], rk)
    diff = paired_difference(cvs[pick].linear_correct, cvs[rp].linear_correct, seed, n_boot)
    within = pick == rp or bool(diff[1] <= 0.0 <= diff[2])
    return FewLabelCheck(cands, pick, rp, *diff, within, n, classes, per_class, cvs[0].folds, cvs[0].k, seed,
                         n_boot, _statement(cands, pick, rp, diff, within, n, per_class))
