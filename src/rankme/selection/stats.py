"""Agreement statistics between a label-free score and accuracy: Spearman/Kendall with bootstrap CIs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import kendalltau, rankdata, spearmanr

__all__ = ["rank_correlations"]


def rank_correlations(x: Sequence[float], y: Sequence[float], n_boot: int = 1000,
                      seed: int = 0) -> dict[str, float]:
    """Spearman ρ and Kendall τ of x vs y with bootstrap 95% CIs (resampling pairs).

    Examples:
        >>> r = rank_correlations([1, 2, 3, 4, 5], [2, 4, 5, 8, 9])
        >>> round(r["spearman"], 9), round(r["kendall"], 9)
        (1.0, 1.0)
    """
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = ~(np.isnan(xa) | np.isnan(ya))
    xa, ya = xa[keep], ya[keep]
    if len(xa) < 3 or np.ptp(xa) == 0 or np.ptp(ya) == 0:  # undefined: too few points, or a constant score
        nan = float("nan")
        return {"spearman": nan, "spearman_lo": nan, "spearman_hi": nan, "kendall": nan, "kendall_lo": nan,
                "kendall_hi": nan, "n": float(len(xa))}
    rng = np.random.default_rng(seed)
    idx = np.array([rng.integers(0, len(xa), len(xa)) for _ in range(n_boot)], dtype=np.intp).reshape(n_boot, len(xa))
    bx, by = xa[idx], ya[idx]
    ok = (np.ptp(bx, axis=1) > 0) & (np.ptp(by, axis=1) > 0)  # a constant resample has no correlation: skipped
    boots = {"spearman": _spearman_rows(bx[ok], by[ok]), "kendall": _kendall_rows(bx[ok], by[ok])}
    out = {"spearman": float(spearmanr(xa, ya).statistic), "kendall": float(kendalltau(xa, ya).statistic),
           "n": float(len(xa))}
    for k, vals in boots.items():
        lo, hi = np.percentile(vals, [2.5, 97.5]) if vals.size else (float("nan"), float("nan"))
        out[f"{k}_lo"], out[f"{k}_hi"] = float(lo), float(hi)
    return out


def _spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman ρ of each row pair (average ranks for ties), as :func:`scipy.stats.spearmanr` computes it."""
    rx, ry = rankdata(x, axis=1), rankdata(y, axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    return np.asarray((rx * ry).sum(axis=1) / np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1)))


def _kendall_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall τ-b of each row pair, as :func:`scipy.stats.kendalltau` computes it (ties in x or y excluded)."""
    sx = np.sign(x[:, :, None] - x[:, None, :])
    sy = np.sign(y[:, :, None] - y[:, None, :])
    num = (sx * sy).sum(axis=(1, 2))
    den = np.sqrt(np.abs(sx).sum(axis=(1, 2)) * np.abs(sy).sum(axis=(1, 2)))
    return np.asarray(num / den)
