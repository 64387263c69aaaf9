"""How many samples are enough: the finite-N under-read of RankMe, from random-matrix theory.

For an isotropic Gaussian N×K matrix the squared singular values follow the Marchenko–Pastur law with ratio
γ = min(N, K)/max(N, K), so RankMe ≈ min(N, K) · m · exp(−E[s log s]/m) with m = E[s] over that law
(ε = 1e-7 is negligible here). Its large-N value is K, so this fraction tells how low a finite sample reads.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.integrate import quad

from rankme.core.deprecation import UNSET, renamed
from rankme.core.errors import EmbeddingError, InputError
from rankme.core.spectrum import SpectrumAccumulator

__all__ = ["JACKKNIFE_GROUPS", "PAPER_SAMPLES", "isotropic_rankme_fraction", "rankme_standard_error",
           "sample_size_note"]

JACKKNIFE_GROUPS = 10
"""Row groups of the grouped jackknife that estimates RankMe's sampling noise."""

PAPER_SAMPLES = 25_600
"""Number of samples the paper scores (Appendix G: 'a highly accurate estimate')."""


@lru_cache(maxsize=256)
def _fraction(gamma: float) -> float:
    if gamma <= 0.0:
        return 1.0
    a, b = (1 - math.sqrt(gamma)) ** 2, (1 + math.sqrt(gamma)) ** 2
    lo, hi = math.sqrt(a), math.sqrt(b)

    def density(s: float) -> float:  # density of s = sqrt(λ), λ ~ Marchenko–Pastur(γ), unit variance
        inside = (b - s * s) * (s * s - a)
        return math.sqrt(max(inside, 0.0)) / (math.pi * gamma * s) if s > 0 else (
            math.sqrt(b) / math.pi if a == 0.0 else 0.0
        )

    m = quad(lambda s: s * density(s), lo, hi, limit=200)[0]
    e_slogs = quad(lambda s: s * math.log(s) * density(s) if s > 0 else 0.0, lo, hi, limit=200)[0]
    return float(m * math.exp(-e_slogs / m))


def isotropic_rankme_fraction(n: int, dim: int | None = None, *, k: int | None = None) -> float:
    """Expected RankMe / min(N, K) for isotropic Gaussian embeddings of N samples and K features.

    Large N gives 1 (RankMe → K); N = K gives about 0.80.

    Args:
        n: samples N.
        dim: features K (the embedding width).
        k: deprecated name of ``dim``.

    Returns:
        The expected RankMe / min(N, K).

    Examples:
        >>> round(isotropic_rankme_fraction(1024, 1024) * 1024)
        824
        >>> round(isotropic_rankme_fraction(10**9, 1024), 3)
        1.0
    """
    k = _dim(dim, k)
    if n < 1 or k < 1:
        raise InputError(f"n and dim must be positive, got n={n}, dim={k}", param="n" if n < 1 else "dim",
                         names=("n", "dim"))
    return _fraction(min(n, k) / max(n, k))


def _dim(dim: int | None, k: int | None) -> int:
    """``dim``, or the deprecated ``k`` (the caller's caller is warned); one of them is required."""
    if k is not None:
        return int(renamed("k", "dim", k, UNSET if dim is None else dim, stacklevel=4))
    if dim is None:
        raise TypeError("missing the embedding width: pass dim=")
    return int(dim)


def sample_size_note(n: int, dim: int | None = None, *, k: int | None = None) -> str | None:
    """A sentence on how far RankMe at N samples may sit from its large-N value, or ``None`` when N ≥ 2K.

    Args:
        n: samples N.
        dim: features K (the embedding width).
        k: deprecated name of ``dim``.

    Returns:
        The note, or ``None``.

    Examples:
        >>> sample_size_note(1024, 1024)
        'N=1024 < 2K=2048: even isotropic embeddings read about 824 here instead of 1024 (19.5% low); score more samples (the paper uses 25 600)'
    """
    k = _dim(dim, k)
    if n >= 2 * k:
        return None
    iso = isotropic_rankme_fraction(n, k) * min(n, k)
    low = 100.0 * (1.0 - iso / k)
    head = f"N={n} < K={k}: RankMe is at most N and biased low" if n < k else f"N={n} < 2K={2 * k}"
    return (
        f"{head}: even isotropic embeddings read about {iso:.0f} here instead of {k} ({low:.1f}% low); "
        f"score more samples (the paper uses {PAPER_SAMPLES:,})".replace(",", " ")
    )


def _merged(parts: list[SpectrumAccumulator]) -> SpectrumAccumulator:
    out = SpectrumAccumulator(parts[0].dim)
    for part in parts:
        out.merge(part)
    return out


def rankme_standard_error(z: Any, groups: int = JACKKNIFE_GROUPS) -> float:
    """Sampling noise of RankMe over rows: grouped-jackknife standard error.

    The rows are cut into ``groups`` contiguous groups (shuffle them first if their order means something);
    RankMe is recomputed with each group left out, from the merged states of the other groups, and
    SE = √((g − 1)/g · Σ (θ₋ᵢ − θ̄)²). It measures how much RankMe would move on another sample of the same
    size from the same distribution — not training noise (another seed).

    Args:
        z: the scored N×K rows.
        groups: jackknife groups (≥ 2, each with ≥ 2 rows).

    Returns:
        The standard error of RankMe (NaN when it is undefined: leaving one group out leaves only zeros).

    Raises:
        InputError: with too few rows for the groups.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> se = rankme_standard_error(rng.standard_normal((2000, 16)))
        >>> 0.0 < se < 0.05
        True
    """
    n = int(z.shape[0])
    if groups < 2 or n < 2 * groups:
        raise InputError(f"the jackknife needs at least 2 rows in each of {groups} groups, got {n} rows",
                         param="groups" if groups < 2 else "z", names=("groups",))
    bounds = np.linspace(0, n, groups + 1).round().astype(int)
    parts = [SpectrumAccumulator(int(z.shape[1])) for _ in range(groups)]
    for part, a, b in zip(parts, bounds[:-1], bounds[1:], strict=True):
        part.update(z[a:b])
    try:
        thetas = np.array([_merged(parts[:i] + parts[i + 1 :]).rankme() for i in range(groups)])
    except EmbeddingError:  # a group holds every non-zero row: leaving it out leaves nothing to score
        return float("nan")
    return float(np.sqrt((groups - 1) / groups * np.square(thetas - thetas.mean()).sum()))
