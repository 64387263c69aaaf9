"""The :class:`Spectrum` record that the engine produces and every metric reads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Spectrum"]


@dataclass(frozen=True)
class Spectrum:
    """Singular values (descending) of an N×K matrix, with what metrics need to interpret them.

    ``input_eps`` is the machine epsilon of the coarsest input dtype seen (for the numerical-rank threshold).
    """

    singular_values: np.ndarray
    n: int
    dim: int
    centered: bool = False
    input_eps: float = float(np.finfo(np.float32).eps)
    weights: np.ndarray | None = None
    """Multiplicities of the values when the spectrum is estimated (the fast option); ``None``: all 1."""

    @property
    def eigenvalues(self) -> np.ndarray:
        """Squared singular values (eigenvalues of ZᵀZ; of the scatter matrix when centred)."""
        out: np.ndarray = np.square(self.singular_values)
        return out
