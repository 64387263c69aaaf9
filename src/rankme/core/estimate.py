"""The fast option: the eigenvalue distribution of the exact Gram matrix, estimated instead of fully solved.

RankMe needs every singular value, but only through a sum over the spectrum, so the K×K eigensolver (O(K³),
~32 s at K = 8 192 on 2 cores) can be replaced by a quadrature of the spectrum:

1. the ``top`` largest eigenvalues by randomized subspace iteration (two power steps) and Rayleigh–Ritz, each
   with weight 1 — they carry most of ‖σ‖₁ for collapsed or low-rank embeddings;
2. the rest by stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017) on the matrix deflated by that subspace:
   ``probes`` Rademacher vectors, ``steps`` Lanczos steps each (fully reorthogonalised), run as one block so each
   step reads G once. Each probe's tridiagonal matrix gives Gauss nodes (eigenvalue estimates) and weights
   (their multiplicities); the weights are rescaled to sum to exactly K − ``top``.

The statistics (G, Σz, n) stay exact float64; only the eigen step is estimated, in O(K²·(top + probes·steps)).
Errors measured by ``bench/bench_spectrum.py`` are in docs/benchmarks.md. Requires n ≥ K (otherwise the exact
path, which then uses the cheaper N×N side, is used).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.linalg import blas, eigh_tridiagonal, qr

from rankme.core.eigen import state_eigenvalues

__all__ = ["ESTIMATE_PROBES", "ESTIMATE_STEPS", "ESTIMATE_TOP", "quadrature_eigenvalues"]

ESTIMATE_TOP = 128
ESTIMATE_PROBES = 32
ESTIMATE_STEPS = 32
EXACT_BELOW = 2048
"""At K ≤ this (or ≤ 2·(top + probes·steps)) the exact eigen step is cheap: it is used instead."""


def _multiplier(upper: np.ndarray, colsum: np.ndarray, n: int, center: bool) -> Callable[[np.ndarray], np.ndarray]:
    """x ↦ G x reading only G's upper triangle (BLAS dsymm: no K×K copy); centred: (G − s sᵀ/n) x."""
    g = np.asfortranarray(upper, dtype=np.float64)
    s = np.asarray(colsum, dtype=np.float64)

    def matmul(x: np.ndarray) -> np.ndarray:
        y = np.asarray(blas.dsymm(1.0, g, np.asfortranarray(x), side=0, lower=0))
        if center:
            y -= np.outer(s, s @ x) / n
        return y

    return matmul


def quadrature_eigenvalues(gram_upper: np.ndarray, colsum: np.ndarray, n: int, *, center: bool = False,
                           top: int = ESTIMATE_TOP, probes: int = ESTIMATE_PROBES, steps: int = ESTIMATE_STEPS,
                           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues of G (its upper triangle given) as (values, weights): descending values ≥ 0 whose weights
    (multiplicities) sum to K. Small matrices (see ``EXACT_BELOW``) are solved exactly: weights 1, top min(n, K).

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> z = rng.standard_normal((3000, 2100))  # K = 2 100 > EXACT_BELOW: the estimator runs
        >>> g = z.T @ z
        >>> vals, w = quadrature_eigenvalues(g, z.sum(0), 3000, top=64, probes=8, steps=24)
        >>> nuclear = np.sqrt(np.linalg.eigvalsh(g)).sum()  # exact: Σσ from all K eigenvalues (LAPACK)
        >>> round(float(w.sum())), bool(abs((np.sqrt(vals) * w).sum() / nuclear - 1) < 1e-2)
        (2100, True)
    """
    k = int(gram_upper.shape[0])
    if k <= max(EXACT_BELOW, 2 * (top + probes * steps)):
        lam = state_eigenvalues(gram_upper, colsum, n, center=center)  # top min(n, K), as the exact path
        return lam, np.ones(len(lam))
    g = _multiplier(gram_upper, colsum, n, center)
    rng = np.random.default_rng(seed)
    s = top + 16  # oversampling for the subspace iteration
    y = g(rng.standard_normal((k, s)))
    for _ in range(2):
        q, _ = qr(y, mode="economic", check_finite=False)
        y = g(q)
    q, _ = qr(y, mode="economic", check_finite=False)
    ritz, u = np.linalg.eigh(q.T @ g(q))
    order = np.argsort(ritz)[::-1][:top]
    v = q @ u[:, order]  # top Ritz vectors, orthonormal
    top_vals = ritz[order]

    def project(x: np.ndarray) -> np.ndarray:
        out: np.ndarray = x - v @ (v.T @ x)
        return out

    z = project(rng.choice([-1.0, 1.0], size=(k, probes)))
    norms2 = np.einsum("ij,ij->j", z, z)
    basis = np.zeros((probes, steps, k))  # per probe, its Lanczos vectors as rows (batched BLAS reorth)
    basis[:, 0] = (z / np.sqrt(norms2)).T
    alpha, beta = np.zeros((steps, probes)), np.zeros((steps, probes))
    length = np.full(probes, steps)
    for j in range(steps):
        cur = basis[:, j].T  # (k, probes)
        w = project(g(cur))
        alpha[j] = np.einsum("ij,ij->j", w, cur)
        # full reorthogonalisation (twice is enough) against this probe's previous Lanczos vectors
        prev = basis[:, : j + 1]  # (probes, j + 1, k)
        for _ in range(2):
            coef = np.matmul(prev, w.T[:, :, None])  # (probes, j + 1, 1)
            w -= np.matmul(prev.transpose(0, 2, 1), coef)[:, :, 0].T
        if j + 1 == steps:
            break
        beta[j] = np.sqrt(np.einsum("ij,ij->j", w, w))
        # an invariant subspace was found: this probe's quadrature is exact with j + 1 nodes
        done = (beta[j] <= 1e-10 * max(float(top_vals[0]), 1e-300)) & (length == steps)
        length[done] = j + 1
        beta[j][length <= j + 1] = 0.0
        basis[:, j + 1] = np.where(beta[j] > 0, w / np.where(beta[j] > 0, beta[j], 1.0), 0.0).T
    nodes, weights = [], []
    for p in range(probes):
        m = int(length[p])
        theta, vec = eigh_tridiagonal(alpha[:m, p], beta[: m - 1, p], check_finite=False)
        nodes.append(theta)
        weights.append(norms2[p] * vec[0] ** 2)
    rest_vals, rest_w = np.concatenate(nodes), np.concatenate(weights)
    rest_w *= (k - top) / rest_w.sum()
    vals = np.clip(np.concatenate([top_vals, rest_vals]), 0.0, None)
    wts = np.concatenate([np.ones(top), rest_w])
    order = np.argsort(vals)[::-1]
    return vals[order], wts[order]
