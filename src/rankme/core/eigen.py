"""The eigen step: eigenvalues of the accumulated state (G upper triangle, Σz, n), raw or centred.

Shared by the exact path (:mod:`rankme.core.spectrum`, :mod:`rankme.core.compute`) and the fast option's small-K
fallback (:mod:`rankme.core.estimate`). One solver choice for host matrices (:func:`symmetric_eigenvalues`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import eigvalsh

from rankme.core.optional import has_module, is_torch_tensor, loaded_torch, require

__all__ = ["TORCH_EIGEN_MIN_DIM", "state_eigenvalues", "state_matrix", "symmetric_eigenvalues"]

TORCH_EIGEN_MIN_DIM = 4096
"""From this size on, a host (numpy) matrix is eigen-decomposed by torch's LAPACK when torch is installed (MKL
in the x86 wheels; scipy links OpenBLAS). Measured here (``python bench/bench_eigen.py``, 2 threads, float64
``eigvalsh``, scipy ``evd`` vs torch): 3.80 s vs 2.11 s at K = 4 096 and 33.8 s vs 14.3 s at K = 8 192, eigenvalues
equal to 3e-14 of the largest; below 2 048 scipy is faster, and importing torch (1.8 s once, ``python -X importtime -c 'import torch'``) pays off from here on."""


def _large_solver(dim: int) -> Any:
    """torch, for a matrix of this size when it is installed and importable; else ``None`` (scipy solves it)."""
    if dim < TORCH_EIGEN_MIN_DIM:
        return None
    torch = loaded_torch()
    if torch is None and has_module("torch"):
        try:
            torch = require("torch", "torch", "the eigen step")
        except ImportError:  # a broken install: scipy gives the same values
            return None
    return torch


def symmetric_eigenvalues(a: np.ndarray, *, overwrite: bool = False) -> np.ndarray:
    """Eigenvalues (ascending) of the symmetric float64 matrix whose upper triangle is ``a``'s; the lower one is
    not read.

    LAPACK's divide-and-conquer solver: scipy's for small matrices, torch's from :data:`TORCH_EIGEN_MIN_DIM` on
    when torch is installed (the same algorithm, 2.4x faster at K = 8 192 here). Both are exact to float64
    rounding, so the choice moves no result beyond ~1e-13.

    Args:
        a: a square float64 matrix (only its upper triangle is read).
        overwrite: ``a`` may be destroyed (saves a copy on the scipy route).

    Returns:
        The eigenvalues, ascending.

    Examples:
        >>> symmetric_eigenvalues(np.array([[2.0, 1.0], [-9.0, 2.0]])).tolist()
        [1.0, 3.0]
    """
    torch = _large_solver(int(a.shape[0]))
    if torch is not None:
        t = torch.from_numpy(a if a.flags.writeable else a.copy())  # torch wants writable memory
        out: np.ndarray = torch.linalg.eigvalsh(t, UPLO="U").numpy()
        return out
    lam: np.ndarray = eigvalsh(a, lower=False, overwrite_a=overwrite, check_finite=False, driver="evd")
    return lam


def state_eigenvalues(gram: Any, colsum: Any, n: int, *, center: bool = False) -> np.ndarray:
    """Eigenvalues (descending, clamped at 0, top min(n, K)) from the state (G upper triangle, Σz, n).

    ``center`` uses the scatter matrix G − Σz Σzᵀ / n. Accepts numpy or torch state; torch state is
    eigen-decomposed on its own device in float64.

    Examples:
        >>> g = np.array([[4.0, 0.0], [0.0, 1.0]])
        >>> state_eigenvalues(g, np.zeros(2), n=5).tolist()
        [4.0, 1.0]
    """
    dim = int(gram.shape[0])
    m = min(int(n), dim)
    if is_torch_tensor(gram):
        lam = loaded_torch().linalg.eigvalsh(state_matrix(gram, colsum, n, center=center)).cpu().numpy()
    else:
        g = np.asarray(gram).astype(np.float64, copy=center)
        if center:
            # subtract s sᵀ / n on the upper triangle the eigen solver reads
            g -= np.triu(np.outer(colsum, colsum)) / n
        lam = symmetric_eigenvalues(g, overwrite=center)
    return np.ascontiguousarray(np.clip(lam[::-1][:m], 0.0, None))


def state_matrix(gram: Any, colsum: Any, n: int, *, center: bool = False) -> Any:
    """The full symmetric float64 matrix the eigen step solves (G, or G − Σz Σzᵀ / n when ``center``) from the
    state's upper triangle; a torch state stays on its device.

    Examples:
        >>> state_matrix(np.array([[4.0, 1.0], [-7.0, 2.0]]), np.array([2.0, 0.0]), n=2, center=True).tolist()
        [[2.0, 1.0], [1.0, 2.0]]
    """
    if is_torch_tensor(gram):
        torch = loaded_torch()
        t = torch.triu(gram.to(torch.float64))
        t = t + torch.triu(t, 1).T
        if center:
            cs = torch.as_tensor(colsum, dtype=torch.float64, device=t.device)
            t = t - torch.outer(cs, cs) / n
        return t
    g = np.triu(np.asarray(gram, dtype=np.float64))
    g = g + np.triu(g, 1).T
    if center:
        s = np.asarray(colsum, dtype=np.float64)
        g = g - np.outer(s, s) / n
    return g
