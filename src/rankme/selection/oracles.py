"""Label oracles on frozen representations: a linear probe (C chosen on a validation split) and k-NN.

These use labels: they exist to check a label-free pick, never to make it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rankme.core.optional import to_numpy

__all__ = ["C_GRID", "knn_accuracy", "linear_probe_accuracy"]

C_GRID = (0.01, 0.1, 1.0)
"""Inverse regularisation strengths tried by the linear probe."""


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
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xtr, ytr, xte, yte = to_numpy(x_train), to_numpy(y_train), to_numpy(x_test), to_numpy(y_test)
    fit_x, val_x, fit_y, val_y = train_test_split(xtr, ytr, test_size=val_fraction, random_state=seed, stratify=ytr)

    def model(c: float) -> Any:
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = [model(c).fit(fit_x, fit_y).score(val_x, val_y) for c in c_grid]
        best = c_grid[int(np.argmax(scores))]
        return 100.0 * float(model(best).fit(xtr, ytr).score(xte, yte))


def knn_accuracy(x_train: Any, y_train: Any, x_test: Any, y_test: Any, k: int = 20) -> float:
    """Test accuracy (%) of a k-NN classifier (cosine distance on standardised features).

    Examples:
        >>> x = np.r_[np.zeros((20, 2)), np.ones((20, 2))] + [1, -1]; y = np.r_[np.zeros(20), np.ones(20)]
        >>> knn_accuracy(x, y, x, y, k=3)
        100.0
    """
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=k, metric="cosine"))
    return 100.0 * float(clf.fit(to_numpy(x_train), to_numpy(y_train)).score(to_numpy(x_test), to_numpy(y_test)))
