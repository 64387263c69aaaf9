"""The eigen step: eigenvalues of the accumulated state (G upper triangle, Σz, n), raw or centred.

Shared by the exact path (:mod:`rankme.core.spectrum`) and the fast option's small-K fallback
(:mod:`rankme.core.estimate`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import eigvalsh

from rankme.core.optional import is_torch_tensor, loaded_torch

__all__ = ["state_eigenvalues", "state_matrix"]


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
        lam = eigvalsh(g, lower=False, overwrite_a=center, check_finite=False, driver="evd")
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
