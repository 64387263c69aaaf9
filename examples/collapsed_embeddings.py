"""Healthy vs collapsed embeddings of real digit images, scored without labels (a 10-second example).

Run: .venv/bin/python examples/collapsed_embeddings.py

A fixed random-feature encoder and copies of its embeddings squeezed through rank-r bottlenecks. RankMe is computed
without labels; a linear probe (which uses labels) is shown next to it, to see that the label-free number orders the
embeddings the way the labelled one does.
"""

from __future__ import annotations

import numpy as np

from rankme.core.compute import compute_spectrum
from rankme.metrics.spectral import rankme, stable_rank
from rankme.reporting.tables import format_table

__all__ = ["demo_embeddings", "run_demo"]


def demo_embeddings(seed: int = 0, width: int = 512) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Embeddings of ``load_digits`` by a random ReLU feature map, plus copies squeezed to rank 32/8/2/1.

    >>> embs, y = demo_embeddings(width=64)
    >>> sorted(embs), embs["healthy"].shape, y.shape
    (['collapsed to rank 1', 'collapsed to rank 2', 'collapsed to rank 32', 'collapsed to rank 8', 'healthy'], (1797, 64), (1797,))
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover
        raise ImportError("the demo needs scikit-learn: pip install 'rankme[demo]'") from e
    x, y = load_digits(return_X_y=True)
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((x.shape[1], width)) / np.sqrt(x.shape[1])
    z = np.maximum(x @ w, 0.0).astype(np.float32)
    out = {"healthy": z}
    for r in (32, 8, 2, 1):
        a = rng.standard_normal((width, r)) / np.sqrt(width)
        b = rng.standard_normal((r, width))
        out[f"collapsed to rank {r}"] = (z @ a @ b).astype(np.float32)
    return out, y


def _probe_accuracy(z: np.ndarray, y: np.ndarray, seed: int) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ztr, zte, ytr, yte = train_test_split(z, y, test_size=0.3, random_state=seed, stratify=y)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
    clf.fit(ztr, ytr)
    return 100.0 * float(clf.score(zte, yte))


def run_demo(seed: int = 0) -> str:
    """Score the demo embeddings and return the report text."""
    from scipy.stats import spearmanr

    embs, y = demo_embeddings(seed)
    rows = []
    for name, z in embs.items():
        s = compute_spectrum(z)
        rows.append({"embeddings": name, "RankMe": rankme(z), "stable rank": stable_rank(s.singular_values),
                     "probe acc. %": _probe_accuracy(z, y, seed)})
    ranks = [float(r["RankMe"]) for r in rows]  # type: ignore[arg-type]
    accs = [float(r["probe acc. %"]) for r in rows]  # type: ignore[arg-type]
    rho = float(spearmanr(ranks, accs).statistic)
    n, k = embs["healthy"].shape
    lines = [
        f"rankme demo: {n} real 8x8 digit images (sklearn load_digits) -> {k}-d embeddings",
        "by a fixed random ReLU feature map, and copies squeezed through rank-r bottlenecks",
        "(what dimensional collapse looks like). RankMe needs no labels; the linear-probe",
        "accuracy (uses labels, 70/30 split) is shown only to check it.",
        "",
        format_table(rows, ["embeddings", "RankMe", "stable rank", "probe acc. %"]),
        "",
        f"Spearman correlation of RankMe with probe accuracy: {rho:.2f}",
        f"Pick by RankMe -> {rows[int(np.argmax(ranks))]['embeddings']}; "
        f"pick by labels -> {rows[int(np.argmax(accs))]['embeddings']}",
        "Score your own files with: rankme score embeddings.npy",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run_demo())
