"""Shared helpers: an independent float64 SVD reference for RankMe and its variants."""

from __future__ import annotations

import numpy as np
import pytest


def reference_rankme(z, *, center=False, eps=1e-7, eigen=False, normalized=False) -> float:
    """RankMe straight from the paper's formula on numpy's float64 SVD (independent of rankme's engine)."""
    z = np.asarray(z, dtype=np.float64)
    if center:
        z = z - z.mean(axis=0)
    s = np.linalg.svd(z, compute_uv=False)
    v = s**2 if eigen else s
    p = v / v.sum() + eps
    value = float(np.exp(-(p * np.log(p)).sum()))
    return value / len(s) if normalized else value


def make_matrix(kind: str, n: int, k: int, seed: int = 0, rank: int = 8) -> np.ndarray:
    """Test matrices: isotropic Gaussian, power-law spectrum, exactly rank-``rank``."""
    rng = np.random.default_rng(seed)
    if kind == "isotropic":
        return rng.standard_normal((n, k))
    if kind == "powerlaw":
        return rng.standard_normal((n, k)) * np.arange(1, k + 1) ** -1.0
    if kind == "lowrank":
        return rng.standard_normal((n, rank)) @ rng.standard_normal((rank, k))
    raise ValueError(kind)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
