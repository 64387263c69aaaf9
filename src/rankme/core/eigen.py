"""The eigen step: eigenvalues of the accumulated state (G upper triangle, Σz, n), raw or centred.

Shared by the exact path (:mod:`rankme.core.spectrum`) and the fast option's small-K fallback
(:mod:`rankme.core.estimate`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import eigvalsh

from rankme.core.optional import is_torch_tensor, loaded_torch

__all__ = ["state_eigenvalues"]


def state_eigenvalues(gram: Any, colsum: Any, n: int, center: bool = False) -> np.ndarray:
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
        torch = loaded_torch()
        t = torch.triu(gram.to(torch.float64))
        t = t + torch.triu(t, 1).T
        if center:
            cs = torch.as_tensor(colsum, dtype=torch.float64, device=t.device)
            t = t - torch.outer(cs, cs) / n
        lam = torch.linalg.eigvalsh(t).cpu().numpy()
    else:
        g = np.asarray(gram).astype(np.float64, copy=center)
        if center:
            # subtract s sᵀ / n on the upper triangle the eigen solver reads
            g -= np.triu(np.outer(colsum, colsum)) / n
        lam = eigvalsh(g, lower=False, overwrite_a=center, check_finite=False, driver="evd")
    return np.ascontiguousarray(np.clip(lam[::-1][:m], 0.0, None))
