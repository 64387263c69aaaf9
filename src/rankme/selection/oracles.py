"""Label oracles on frozen representations: a linear probe (C chosen on a validation split) and k-NN.

These use labels: they exist to check a label-free pick, never to make it. The two classifiers,
:func:`linear_model` and :func:`knn_model`, live in :mod:`rankme.scoring.fewlabel` (the few-label check and the
training monitor's probe use the same ones) and are importable from here as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rankme.core.optional import to_numpy
from rankme.scoring.fewlabel import knn_model, label_fits, linear_model

__all__ = ["C_GRID", "PROBE_TEST_FRACTION", "VAL_FRACTION", "knn_accuracy", "knn_model", "linear_model",
           "linear_probe_accuracy", "oracle_problem", "oracle_split"]

C_GRID = (0.01, 0.1, 1.0)
"""Inverse regularisation strengths tried by the linear probe."""
PROBE_TEST_FRACTION = 0.25
"""The label oracle's test split: the probe is fitted on 75 % of the scored rows (stratified) and tested on 25 %."""
VAL_FRACTION = 0.2
"""The share of the linear probe's training rows its C is chosen on (a stratified validation split)."""


def linear_probe_accuracy(x_train: Any, y_train: Any, x_test: Any, y_test: Any, *, c_grid: Sequence[float] = C_GRID,
                          val_fraction: float = VAL_FRACTION, seed: int = 0, max_iter: int = 500) -> float:
    """Test accuracy (%) of a standardised multinomial logistic regression whose C is chosen on a validation
    split of the training set, then refit on the whole training set.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.standard_normal((300, 5)); y = (x[:, 0] > 0).astype(int)
        >>> linear_probe_accuracy(x[:200], y[:200], x[200:], y[200:]) > 95
        True
    """
    from sklearn.model_selection import train_test_split

    xtr, ytr, xte, yte = to_numpy(x_train), to_numpy(y_train), to_numpy(x_test), to_numpy(y_test)
    fit_x, val_x, fit_y, val_y = train_test_split(xtr, ytr, test_size=val_fraction, random_state=seed, stratify=ytr)

    with label_fits():
        scores = [linear_model(c, max_iter).fit(fit_x, fit_y).score(val_x, val_y) for c in c_grid]
        best = c_grid[int(np.argmax(scores))]
        return 100.0 * float(linear_model(best, max_iter).fit(xtr, ytr).score(xte, yte))


def oracle_split(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test positions of the full-label oracle's split of rows labelled ``labels``:
    :data:`PROBE_TEST_FRACTION` tested, stratified when every class has 2 rows (scikit-learn's split: the same
    rows whatever the features).

    Examples:
        >>> tr, te = oracle_split(np.repeat([0, 1], 10), 0); len(tr), len(te)
        (15, 5)
    """
    from sklearn.model_selection import train_test_split

    _, counts = np.unique(labels, return_counts=True)
    train, test = train_test_split(np.arange(len(labels)), test_size=PROBE_TEST_FRACTION, random_state=seed,
                                   stratify=labels if counts.min() >= 2 else None)
    return np.asarray(train), np.asarray(test)


def oracle_problem(labels: Any, seed: int) -> str | None:
    """Why the full-label oracle cannot run on rows labelled ``labels`` with ``seed`` — its test split, then the
    linear probe's stratified validation split of the training rows (:func:`linear_probe_accuracy`), need enough
    rows of every class — or ``None`` when it can. Depends on the labels and the seed only: checked before
    anything is scored.

    Examples:
        >>> oracle_problem(np.repeat([0, 1], 10), 0) is None
        True
        >>> oracle_problem(np.r_[np.repeat([0, 1], 10), 2], 1)   # the one row of class 2 among the training rows
        '3 classes in 21 rows, the smallest (2) with 1 row(s)'
        >>> oracle_problem(np.arange(20) % 10, 0)   # 10 classes, 5 test rows
        '10 classes in 20 rows, the smallest (0, 1, 2, 3, 4 and 5 more) with 2 row(s)'
    """
    from sklearn.model_selection import train_test_split

    y = np.asarray(labels)
    try:
        train, _ = oracle_split(y, seed)
        train_test_split(y[train], test_size=VAL_FRACTION, random_state=seed, stratify=y[train])
    except ValueError:
        classes, counts = np.unique(y, return_counts=True)
        few = classes[counts == counts.min()]
        shown = ", ".join(map(str, few[:5].tolist())) + (f" and {len(few) - 5} more" if len(few) > 5 else "")
        return f"{len(classes)} classes in {len(y)} rows, the smallest ({shown}) with {counts.min()} row(s)"
    return None


def knn_accuracy(x_train: Any, y_train: Any, x_test: Any, y_test: Any, k: int = 20) -> float:
    """Test accuracy (%) of a k-NN classifier (cosine distance on standardised features).

    Examples:
        >>> x = np.r_[np.zeros((20, 2)), np.ones((20, 2))] + [1, -1]; y = np.r_[np.zeros(20), np.ones(20)]
        >>> knn_accuracy(x, y, x, y, k=3)
        100.0
    """
    clf = knn_model(k)
    with label_fits():
        return 100.0 * float(clf.fit(to_numpy(x_train), to_numpy(y_train)).score(to_numpy(x_test), to_numpy(y_test)))
