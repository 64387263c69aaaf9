"""The few-label check of a label-free pick: with B labels per class, which candidate does a cross-validated linear
probe prefer, and is RankMe's pick within the noise of that few-label pick?

The rules are pre-registered in docs/reproduction.md ("the few-label study"): B labels per class drawn stratified
from the labelled rows; a standardised multinomial logistic regression (C = 1, lbfgs) and a k-NN (k = min(5, B − 1),
cosine on standardised features), both scored by stratified cross-validation inside the labelled rows with
min(5, B) shuffled folds; the few-label pick is the best cross-validated linear accuracy, ties to the higher
RankMe; RankMe's pick is *within the few-label noise* when the 95 % interval of the paired bootstrap (2 000
resamples of the labelled rows' out-of-fold correctness, the same resamples for both) of the difference contains 0.
Labels check a label-free pick here; they never make it. Accuracies are in percent, differences in points.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rankme.core.errors import InputError
from rankme.core.optional import to_numpy
from rankme.selection.oracles import knn_model, linear_model

__all__ = ["CV_REFUSAL", "N_BOOT", "CVAccuracy", "CandidateAccuracy", "FewLabelCheck", "bootstrap_means",
           "cv_accuracies", "draw_budget", "few_label_check", "few_label_pick", "few_label_verdict",
           "few_shot_accuracies", "knn_k", "labelled_rows", "paired_difference"]

LINEAR_C, MAX_FOLDS, MAX_K = 1.0, 5, 5
N_BOOT = 2000
"""Bootstrap resamples of the labelled rows (the pre-registered 2 000)."""
CV_REFUSAL = "needs ≥ 2 labels per class for cross-validation"
_CHUNK = 2**22  # bootstrap indices generated at most this many at a time (n ≤ 2 097 rows: one call)


def _missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, str):
        s = v.strip()
        return s in ("", "-1") or s.lower() == "nan"
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)):
        return bool(math.isnan(float(v)) or float(v) == -1)
    return False


def labelled_rows(y: Any) -> tuple[np.ndarray, np.ndarray]:
    """The rows that carry a label and their cleaned labels: the one place the "unlabelled" rule lives.

    A row is unlabelled when its label is -1 (integers, or -1.0), NaN, ``None``, or an empty string (also the text
    ``"-1"`` or ``"nan"``, as a labels text file writes them). Integral float labels become integers; string labels
    are stripped.

    Examples:
        >>> labelled_rows([3, -1, 0, 3])
        (array([0, 2, 3]), array([3, 0, 3]))
        >>> labelled_rows([1.0, float("nan"), 2.0])[1]
        array([1, 2])
        >>> labelled_rows(["cat", "", " dog ", "nan"])
        (array([0, 2]), array(['cat', 'dog'], dtype='<U3'))
    """
    arr = to_numpy(y) if hasattr(y, "detach") else np.asarray(y)
    if arr.ndim != 1:
        raise InputError(f"labels: shape {arr.shape}; need one label per row (a 1-D array)", param="labels")
    kind = arr.dtype.kind
    if kind in "iu":
        keep = arr != -1
    elif kind == "f":
        keep = ~np.isnan(arr) & (arr != -1)
    elif kind == "b":
        keep = np.ones(len(arr), bool)
    elif kind in "USO":
        keep = np.array([not _missing(v) for v in arr.tolist()], bool)
    else:
        raise InputError(f"labels: dtype {arr.dtype} is not a class label; use integers or strings", param="labels")
    idx = np.flatnonzero(keep)
    kept = arr[idx]
    if kind in "USO":
        vals = kept.tolist()
        if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in vals):
            kept = np.asarray(vals, dtype=float)
            kind = "f"
        else:
            kept = np.asarray([str(v).strip() for v in vals])
    if kind == "f" and kept.size and np.all(kept == np.round(kept)):
        kept = kept.astype(np.int64)
    return idx, kept


def _classes(labels: np.ndarray, what: str = "labels") -> tuple[np.ndarray, np.ndarray]:
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        raise InputError(f"{what}: {len(labels)} labelled row(s) of {len(classes)} class(es); the few-label check "
                         "needs labels of at least two classes", param=what)
    return classes, counts


def draw_budget(y: Any, budget: int, seed: int = 0) -> np.ndarray:
    """Indices (into ``y``, sorted) of ``budget`` labelled rows per class, drawn at random with ``seed``.

    The draw depends only on the labels, ``budget`` and ``seed``, so every candidate scored on the same rows is
    judged on the same labelled rows.

    Examples:
        >>> y = [0, 0, 0, 1, 1, 1, -1]
        >>> idx = draw_budget(y, 2, seed=0)
        >>> len(idx), sorted(np.asarray(y)[idx].tolist())
        (4, [0, 0, 1, 1])
        >>> draw_budget(y, 4)
        Traceback (most recent call last):
        ...
        rankme.core.errors.InputError: budget=4: class 0 has only 3 labelled row(s); choose budget ≤ 3 or label more rows
    """
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise InputError(f"budget={budget!r}: need a whole number ≥ 1 of labels per class", param="budget")
    idx, labels = labelled_rows(y)
    classes, counts = _classes(labels)
    if counts.min() < budget:
        c = classes[int(np.argmin(counts))]
        raise InputError(f"budget={budget}: class {c} has only {counts.min()} labelled row(s); choose budget ≤ "
                         f"{counts.min()} or label more rows", param="budget", names=("labels",))
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([rng.choice(idx[labels == c], int(budget), replace=False) for c in classes]))


def knn_k(per_class: int) -> int:
    """The k-NN's k for ``per_class`` labels per class: min(5, B − 1), and 1 when B = 1 (few-shot only).

    Examples:
        >>> [knn_k(b) for b in (1, 2, 5, 10, 50)]
        [1, 1, 4, 5, 5]
    """
    return max(1, min(MAX_K, int(per_class) - 1))


def bootstrap_means(values: Any, seed: int = 0, n_boot: int = N_BOOT) -> np.ndarray:
    """Means of each row of ``values`` (m × n) over ``n_boot`` resamples of its n columns, the same resamples for
    every row: (m × n_boot). The resamples depend only on (n, seed, n_boot), so every candidate and every
    difference judged at one seed uses the same ones; for n ≤ 2 097 they are
    ``default_rng(seed).integers(0, n, (n_boot, n))``.

    Examples:
        >>> bootstrap_means([[1.0, 1.0, 1.0]], n_boot=3)
        array([[1., 1., 1.]])
    """
    v = np.atleast_2d(np.asarray(values, dtype=float))
    n = v.shape[1]
    rng = np.random.default_rng(seed)
    out, step = [], max(1, min(n_boot, _CHUNK // max(n, 1)))
    for start in range(0, n_boot, step):
        rows = rng.integers(0, n, (min(step, n_boot - start), n))
        out.append(v[:, rows].mean(axis=2))
    return np.concatenate(out, axis=1) if out else np.empty((len(v), 0))


def _interval(means: np.ndarray) -> tuple[float, float]:
    if means.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(100.0 * means, [2.5, 97.5])
    return float(lo), float(hi)


def paired_difference(correct_a: Any, correct_b: Any, seed: int = 0,
                      n_boot: int = N_BOOT) -> tuple[float, float, float]:
    """Accuracy of A − accuracy of B (points) on the same labelled rows, with the 95 % paired-bootstrap interval.

    Examples:
        >>> paired_difference([1, 1, 0, 1], [1, 1, 0, 1])
        (0.0, 0.0, 0.0)
    """
    a, b = np.asarray(correct_a, dtype=float), np.asarray(correct_b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise InputError(f"correctness vectors of shapes {a.shape} and {b.shape}: need 1-D, over the same rows",
                         param="correct_a", names=("correct_b",))
    d = a - b
    return (100.0 * float(d.mean()), *_interval(bootstrap_means(d[None], seed, n_boot)[0]))


@dataclass(frozen=True)
class CVAccuracy:
    """Cross-validated accuracies (%) of one candidate on a labelled subset, its out-of-fold correctness (one
    entry per labelled row, in the order given) and 95 % bootstrap intervals (NaN when ``n_boot`` is 0)."""

    linear: float
    knn: float
    linear_correct: np.ndarray
    knn_correct: np.ndarray
    linear_interval: tuple[float, float]
    knn_interval: tuple[float, float]
    folds: int
    k: int


def _plan(labels: np.ndarray) -> tuple[int, int, int]:
    classes, counts = _classes(labels)
    b = int(counts.min())
    if b < 2:
        raise InputError(f"labels: class {classes[int(np.argmin(counts))]} has {b} labelled row(s); the few-label "
                         f"check {CV_REFUSAL} (1 label per class is not defined for selection)", param="labels")
    return b, min(MAX_FOLDS, b), knn_k(b)


def _features(x: Any, what: str, param: str | None = None) -> np.ndarray:
    a = to_numpy(x, np.float64)
    if a.ndim != 2 or not a.size:
        raise InputError(f"{what}: representations of shape {a.shape}; need a 2-D (rows × features) array",
                         param=param or what)
    if not np.isfinite(a).all():
        raise InputError(f"{what}: representations contain NaN or Inf; drop or fix those rows first",
                         param=param or what, kind="non-finite")
    return a


def cv_accuracies(x: Any, idx: Any, labels: Any, seed: int = 0, n_boot: int = N_BOOT) -> CVAccuracy:
    """Linear and k-NN accuracy of one candidate's representations ``x`` (n × d) by stratified cross-validation
    inside the labelled rows ``idx`` (labels ``labels``): min(5, B) shuffled folds (``seed``), B the smallest class
    count; k = min(5, B − 1). The accuracy is the pooled out-of-fold accuracy (the folds are equal when B is).

    Examples:
        >>> x = np.r_[-np.ones((4, 2)), np.ones((4, 2))] + np.arange(8)[:, None] * [0.01, -0.01]
        >>> r = cv_accuracies(x, np.arange(8), [0, 0, 0, 0, 1, 1, 1, 1], n_boot=0)
        >>> r.linear, r.knn, r.folds, r.k
        (100.0, 100.0, 4, 3)
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    rows = np.asarray(idx)
    feats = _features(x, "x")
    if rows.ndim != 1 or rows.dtype.kind not in "iu" or (rows.size and not 0 <= rows.min() <= rows.max() < len(feats)):
        raise InputError(f"idx: need 1-D row indices in [0, {len(feats)}) into x", param="idx")
    y = np.asarray(labels)
    if y.shape != rows.shape:
        raise InputError(f"labels: {y.size} label(s) for {rows.size} labelled row(s); need one per row of idx",
                         param="labels", names=("idx",))
    _, folds, k = _plan(y)
    xs = feats[rows]
    lin, knn = np.zeros(len(y), bool), np.zeros(len(y), bool)
    with warnings.catch_warnings(), threadpool_limits(1):  # small fits: BLAS threads cost more than they save
        warnings.simplefilter("ignore", ConvergenceWarning)
        for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(xs, y):
            lin[te] = linear_model(LINEAR_C).fit(xs[tr], y[tr]).predict(xs[te]) == y[te]
            knn[te] = knn_model(k).fit(xs[tr], y[tr]).predict(xs[te]) == y[te]
    means = bootstrap_means(np.stack([lin, knn]), seed, n_boot)
    return CVAccuracy(100.0 * float(lin.mean()), 100.0 * float(knn.mean()), lin, knn, _interval(means[0]),
                      _interval(means[1]), folds, k)


def few_shot_accuracies(x_train: Any, labels: Any, x_test: Any, y_test: Any) -> tuple[float, float]:
    """Test accuracy (%) of the two classifiers fitted on all the labelled rows (``x_train``, ``labels``): the
    few-shot accuracy, for analysis only, never for selection (k from the smallest class count).

    Examples:
        >>> x = np.r_[-np.ones((2, 2)), np.ones((2, 2))] + [[0, 0.1], [0.1, 0], [0, 0.1], [0.1, 0]]
        >>> few_shot_accuracies(x, [0, 0, 1, 1], x, [0, 0, 1, 1])
        (100.0, 100.0)
    """
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    xtr, y = _features(x_train, "x_train"), np.asarray(labels)
    xte, yte = _features(x_test, "x_test"), np.asarray(y_test)
    k = knn_k(int(_classes(y)[1].min()))
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        lin = linear_model(LINEAR_C).fit(xtr, y).score(xte, yte)
        return 100.0 * float(lin), 100.0 * float(knn_model(k).fit(xtr, y).score(xte, yte))


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
