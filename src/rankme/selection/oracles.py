"""Label oracles on frozen representations: a linear probe (C chosen on a validation split) and k-NN.

These use labels: they exist to check a label-free pick, never to make it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rankme.core.optional import to_numpy

__all__ = ["C_GRID", "knn_accuracy", "knn_model", "linear_model", "linear_probe_accuracy"]

C_GRID = (0.01, 0.1, 1.0)
"""Inverse regularisation strengths tried by the linear probe."""


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


def linear_probe_accuracy(x_train: Any, y_train: Any, x_test: Any, y_test: Any, *, c_grid: Sequence[float] = C_GRID,
                          val_fraction: float = 0.2, seed: int = 0, max_iter: int = 500) -> float:
    """Test accuracy (%) of a standardised multinomial logistic regression whose C is chosen on a validation
    split of the training set, then refit on the whole training set.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.standard_normal((300, 5)); y = (x[:, 0] > 0).astype(int)
        >>> linear_probe_accuracy(x[:200], y[:200], x[200:], y[200:]) > 95
        True
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from threadpoolctl import threadpool_limits

    xtr, ytr, xte, yte = to_numpy(x_train), to_numpy(y_train), to_numpy(x_test), to_numpy(y_test)
    fit_x, val_x, fit_y, val_y = train_test_split(xtr, ytr, test_size=val_fraction, random_state=seed, stratify=ytr)

    # small fits: BLAS threads cost far more than they save (10× slower on a loaded 2-core machine)
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = [linear_model(c, max_iter).fit(fit_x, fit_y).score(val_x, val_y) for c in c_grid]
        best = c_grid[int(np.argmax(scores))]
        return 100.0 * float(linear_model(best, max_iter).fit(xtr, ytr).score(xte, yte))


def knn_accuracy(x_train: Any, y_train: Any, x_test: Any, y_test: Any, k: int = 20) -> float:
    """Test accuracy (%) of a k-NN classifier (cosine distance on standardised features).

    Examples:
        >>> x = np.r_[np.zeros((20, 2)), np.ones((20, 2))] + [1, -1]; y = np.r_[np.zeros(20), np.ones(20)]
        >>> knn_accuracy(x, y, x, y, k=3)
        100.0
    """
    from threadpoolctl import threadpool_limits

    clf = knn_model(k)
    with threadpool_limits(1):
        return 100.0 * float(clf.fit(to_numpy(x_train), to_numpy(y_train)).score(to_numpy(x_test), to_numpy(y_test)))
