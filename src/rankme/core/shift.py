"""Shifted sufficient statistics: the state of rows ``z`` kept about a point ``c`` (``Σ (z−c)ᵀ(z−c)``, ``Σ (z−c)``).

Centring reads ``G − s sᵀ / n``. Accumulated about the origin, that difference cancels when the column means are
large next to the spread (a common offset of 1e6 loses ~12 of float64's 16 digits). Kept about a point near the
mean, both terms stay small and the centred spectrum is exact whatever the mean. Moving the point is exact
algebra (Chan, Golub & LeVeque's pairwise update): for ``δ = c' − c``,

    G' = G − δ sᵀ − s δᵀ + n δ δᵀ,      s' = s − n δ,

so states about different points merge, and the raw statistics are the state moved to the origin.
These functions work on numpy arrays and torch tensors alike (the operands share one backend).
"""

from __future__ import annotations

from typing import Any

__all__ = ["SHIFT_RATIO", "SHIFT_ROWS", "choose_shift", "move_state"]

SHIFT_ROWS = 1024
"""Rows the point is chosen from: any point near the mean keeps the centred state exact (the moves are exact
algebra), so a few rows decide it, and a 25 600-row chunk does not pay two full-size temporaries for it."""

SHIFT_RATIO = 100.0
"""A new state is kept about its first rows' mean when ‖μ‖² exceeds this many times their spread Σ var."""


def move_state(gram: Any, colsum: Any, n: int, delta: Any) -> tuple[Any, Any]:
    """The statistics of the same rows kept about a point moved by ``delta`` (new point = old point + delta).

    Args:
        gram: ``Σ (z−c)ᵀ(z−c)`` (K×K; when only its upper triangle is valid, so is the result's).
        colsum: ``Σ (z−c)`` (K).
        n: the number of rows.
        delta: ``c' − c`` (K).

    Returns:
        ``(gram', colsum')`` about ``c' = c + delta`` (new arrays).

    Examples:
        >>> import numpy as np
        >>> z = np.array([[1.0, 2.0], [3.0, 5.0]])
        >>> g, s = move_state(z.T @ z, z.sum(0), 2, np.array([2.0, 3.0]))   # about the point (2, 3)
        >>> np.allclose(g, (z - [2.0, 3.0]).T @ (z - [2.0, 3.0])), s.tolist()
        (True, [0.0, 1.0])
    """
    cross = delta[:, None] * colsum[None, :]
    return gram - cross - cross.T + n * (delta[:, None] * delta[None, :]), colsum - n * delta


def choose_shift(chunk: Any) -> Any | None:
    """The point a new state keeps its rows about: the column mean of the chunk's first :data:`SHIFT_ROWS` rows
    when it carries over 100 times their spread (``‖μ‖² > 100 · Σ var``: centring about the origin would cost over
    two digits), else ``None`` (the origin: the Gram of ordinary embeddings is accumulated exactly as without a shift, so raw values
    and their merges across processes stay bit-for-bit what they were).

    Args:
        chunk: the state's first rows, float64, in the state's units (numpy or torch).

    Returns:
        The point (same backend), or ``None``.

    Examples:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> choose_shift(rng.standard_normal((100, 3))) is None
        True
        >>> choose_shift(1e6 + rng.standard_normal((100, 3))).round(-3).tolist()
        [1000000.0, 1000000.0, 1000000.0]
    """
    chunk = chunk[:SHIFT_ROWS]
    mu = chunk.mean(0)
    spread = float(((chunk - mu) ** 2).sum()) / max(int(chunk.shape[0]), 1)
    return mu if float((mu * mu).sum()) > SHIFT_RATIO * spread else None
