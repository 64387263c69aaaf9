"""A collapse check that reads the rows, not a spectrum: the standard deviation of L2-normalised embeddings.

SimSiam (Chen & He, CVPR 2021, §4.1) watches it to see collapse; lightly ships it as
``lightly.utils.debug.std_of_l2_normalized``. Each row is scaled to unit L2 norm, then the standard deviation of
each column is taken over the rows and averaged over the K columns: ≈ 1/√K when the rows are spread in every
direction (isotropic), 0 when they collapsed to one direction. It is not a function of the spectrum (the mean of
per-column deviations depends on the basis), so its registry entry reads the rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rankme.core.arrays import check_finite, check_shape
from rankme.core.errors import EmbeddingError
from rankme.core.optional import to_numpy

__all__ = ["std_of_l2_normalized"]


def std_of_l2_normalized(z: Any) -> float:
    """Mean over the K columns of the standard deviation (over rows, ddof = 1) of the L2-normalised rows.

    As lightly's ``std_of_l2_normalized``: rows scaled by 1/max(‖z‖₂, 1e-12) (``torch.nn.functional.normalize``;
    a zero row stays zero), then ``torch.std`` (Bessel-corrected) per column, then the mean; computed here in
    float64.

    Args:
        z: N×K embeddings (numpy array, torch tensor, nested list; any real dtype), N ≥ 2.

    Returns:
        The mean standard deviation: ≈ 1/√K for isotropic rows, 0 for collapsed ones.

    Raises:
        EmbeddingError: on fewer than 2 rows, a bad shape, or NaN/Inf values.

    Examples:
        >>> round(std_of_l2_normalized(np.ones((10, 4)) * [1.0, 2.0, 3.0, 4.0]), 12)   # one direction: collapsed
        0.0
        >>> z = np.random.default_rng(0).standard_normal((20000, 64))
        >>> round(std_of_l2_normalized(z) * 8, 2)                 # isotropic: 1/√K = 1/8
        1.0
    """
    x = to_numpy(z, np.float64)
    n, _ = check_shape(x.shape)
    check_finite(x, 0)
    if n < 2:
        raise EmbeddingError(f"the standard deviation of L2-normalised rows needs at least 2 rows, got {n}")
    u = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return float(u.std(axis=0, ddof=1).mean())
