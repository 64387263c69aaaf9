"""Agreement statistics between a label-free score and accuracy: Spearman/Kendall with bootstrap CIs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import kendalltau, spearmanr

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
    boots: dict[str, list[float]] = {"spearman": [], "kendall": []}
    for _ in range(n_boot):
        idx = rng.integers(0, len(xa), len(xa))
        if np.ptp(xa[idx]) == 0 or np.ptp(ya[idx]) == 0:
            continue
        boots["spearman"].append(float(spearmanr(xa[idx], ya[idx]).statistic))
        boots["kendall"].append(float(kendalltau(xa[idx], ya[idx]).statistic))
    out = {"spearman": float(spearmanr(xa, ya).statistic), "kendall": float(kendalltau(xa, ya).statistic),
           "n": float(len(xa))}
    for k, vals in boots.items():
        lo, hi = np.percentile(vals, [2.5, 97.5]) if vals else (float("nan"), float("nan"))
        out[f"{k}_lo"], out[f"{k}_hi"] = float(lo), float(hi)
    return out
