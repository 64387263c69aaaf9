"""Cluster learnability: a cheap non-spectral label-free score (self-cluster / CLID-style).

Cluster the embeddings with k-means, then measure how well a k-NN classifier predicts those pseudo-labels on
held-out rows. Embeddings that form learnable clusters score near 1; structureless ones lower. Needs the rows
themselves (not a spectrum) and scikit-learn (extra ``demo``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rankme.core.arrays import check_finite, check_shape
from rankme.core.errors import EmbeddingError
from rankme.core.optional import require, to_numpy

__all__ = ["cluster_learnability"]


def cluster_learnability(z: Any, n_clusters: int = 10, n_neighbors: int = 10, seed: int = 0,
                         test_fraction: float = 0.5) -> float:
    """k-NN accuracy (held-out ``test_fraction`` of rows) at predicting k-means cluster labels of ``z``.

    Args:
        z: N×K embeddings.
        n_clusters: k-means clusters.
        n_neighbors: k of the k-NN classifier.
        seed: seed of k-means and of the split.
        test_fraction: held-out fraction of the rows.

    Returns:
        The accuracy, in [0, 1].

    Raises:
        EmbeddingError: with too few rows, or NaN/Inf.
        MissingExtraError: without scikit-learn (extra ``demo``).

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> blobs = np.repeat(np.eye(4) * 10, 50, axis=0) + rng.standard_normal((200, 4))
        >>> cluster_learnability(blobs, n_clusters=4)
        1.0
    """
    KMeans = require("sklearn.cluster", "demo", "cluster learnability").KMeans
    train_test_split = require("sklearn.model_selection", "demo", "cluster learnability").train_test_split
    KNeighborsClassifier = require("sklearn.neighbors", "demo", "cluster learnability").KNeighborsClassifier
    x = to_numpy(z, np.float64)
    n, _ = check_shape(x.shape)
    check_finite(x, 0)
    if n < 2 * n_clusters or n < 2 * n_neighbors:
        raise EmbeddingError(f"{n} rows are too few for {n_clusters} clusters and {n_neighbors} neighbours")
    labels = KMeans(n_clusters=n_clusters, n_init=4, random_state=seed).fit_predict(x)
    xtr, xte, ytr, yte = train_test_split(x, labels, test_size=test_fraction, random_state=seed)
    knn = KNeighborsClassifier(n_neighbors=n_neighbors).fit(xtr, ytr)
    return float(knn.score(xte, yte))
