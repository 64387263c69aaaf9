"""The few-label computation, label-only: the "unlabelled" rule, drawing B labels per class, the two classifiers,
and their stratified cross-validated accuracies with bootstrap intervals. The one implementation that
``rankme select --labels`` (:mod:`rankme.selection.fewlabel`, :mod:`rankme.selection.labelcheck`) and the training
monitor's few-label probe (:class:`rankme.monitor.RankMeMonitor` with ``labels=``) both call.

The rules are pre-registered in docs/reproduction.md ("the few-label study"): B labels per class drawn stratified
from the labelled rows; a standardised multinomial logistic regression (C = 1, lbfgs) and a k-NN (k = min(5, B − 1),
cosine on standardised features), both scored by stratified cross-validation inside the labelled rows with
min(5, B) shuffled folds; 95 % intervals from 2 000 bootstrap resamples of the labelled rows' out-of-fold
correctness. Accuracies are in percent, differences in points. scikit-learn is imported inside the functions that
fit (it is optional). Labels check a label-free pick or watch a training run here; they never make a pick.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from rankme.core.errors import InputError
from rankme.core.optional import to_numpy
from rankme.core.resources import one_thread

__all__ = ["CV_REFUSAL", "LINEAR_C", "MAX_FOLDS", "MAX_K", "N_BOOT", "CVAccuracy", "bootstrap_means",
           "cv_accuracies", "draw_budget", "few_label_rows", "few_shot_accuracies", "knn_k", "knn_model",
           "label_fits", "labelled_rows", "linear_model", "paired_difference"]

LINEAR_C, MAX_FOLDS, MAX_K = 1.0, 5, 5
N_BOOT = 2000
"""Bootstrap resamples of the labelled rows (the pre-registered 2 000)."""
CV_REFUSAL = "needs ≥ 2 labels per class for cross-validation"
_CHUNK = 2**22  # bootstrap indices generated at most this many at a time (n ≤ 2 097 rows: one call)


def linear_model(c: float = 1.0, max_iter: int = 500) -> Any:
    """The (unfitted) linear probe every label check here uses: standardised features, then a multinomial
    logistic regression (lbfgs) with inverse regularisation ``c``.

    Examples:
        >>> [name for name, _ in linear_model().steps]
        ['standardscaler', 'logisticregression']
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))


def knn_model(k: int) -> Any:
    """The (unfitted) k-NN classifier every label check here uses: ``k`` neighbours by cosine distance on
    standardised features.

    Examples:
        >>> knn_model(3).steps[1][1].n_neighbors
        3
    """
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=k, metric="cosine"))


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


@contextlib.contextmanager
def label_fits() -> Iterator[None]:
    """The context of every label fit here and in the full-label oracle: one BLAS/OpenMP thread (small fits:
    threads cost far more than they save, 10x on a loaded 2-core machine) and scikit-learn's convergence warnings
    silenced (the probes run a fixed number of iterations by design).

    Examples:
        >>> with label_fits():
        ...     linear_model().fit([[0.0], [1.0], [0.1], [0.9]], [0, 1, 0, 1]).predict([[0.95]]).tolist()
        [1]
    """
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(), one_thread():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


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
    from sklearn.model_selection import StratifiedKFold

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
    with label_fits():
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
    xtr, y = _features(x_train, "x_train"), np.asarray(labels)
    xte, yte = _features(x_test, "x_test"), np.asarray(y_test)
    k = knn_k(int(_classes(y)[1].min()))
    with label_fits():
        lin = linear_model(LINEAR_C).fit(xtr, y).score(xte, yte)
        return 100.0 * float(lin), 100.0 * float(knn_model(k).fit(xtr, y).score(xte, yte))


def few_label_rows(y: Any, idx: np.ndarray | None, budget: int | None,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """The few-label check's rows among the scored rows ``idx`` (positions into them, sorted), their labels and the
    smallest class count: every labelled row, or ``budget`` per class drawn from them with ``seed``.

    Examples:
        >>> pos, lab, b = few_label_rows(np.array([0, -1, 1, 0, 1, -1]), None, None); pos.tolist(), lab.tolist(), b
        ([0, 2, 3, 4], [0, 1, 0, 1], 2)
    """
    arr = np.asarray(y)
    sub = arr if idx is None else arr[np.asarray(idx)]
    pos, lab = labelled_rows(sub)
    classes = np.unique(lab)
    if len(classes) < 2 and len(pos) < len(sub):
        raise InputError(f"labels: the {len(pos)} labelled row(s) of {len(sub)} scored hold {len(classes)} class(es) "
                         "(-1, NaN and empty mark unlabelled rows); label rows of at least two classes (if -1 is a "
                         "class, as in ±1 labels, recode them as 0/1)", param="labels")
    if budget is not None:
        counts = {c: int(n) for c, n in zip(*np.unique(lab, return_counts=True), strict=True)}
        small = min(counts, key=lambda c: counts[c])
        if counts[small] < budget:  # said with the keyword the caller gave (draw_budget's own is budget=)
            raise InputError(f"label_budget={budget}: class {small} has only {counts[small]} labelled row(s) among "
                             f"the scored rows; choose label_budget={counts[small]} or fewer, or label more rows",
                             param="label_budget", names=("labels",))
        drawn = draw_budget(sub, budget, seed)
        pos, lab = drawn, lab[np.searchsorted(pos, drawn)]
    return pos, lab, _plan(lab)[0]
