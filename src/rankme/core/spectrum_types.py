"""The :class:`Spectrum` record that the engine produces and every metric reads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Spectrum"]


@dataclass(frozen=True, kw_only=True)
class Spectrum:
    """Singular values (descending) of an N×K matrix, with what metrics need to interpret them.

    ``input_eps`` is the machine epsilon of the coarsest input dtype seen (for the numerical-rank threshold).
    The values are in units of ``2**scale_exp`` (0 for inputs of ordinary magnitude; every metric is
    scale-invariant, so none needs the true σ, :attr:`true_singular_values`). ``rel_floor`` is the relative
    level σ/σ_max below which the route that produced them cannot resolve a value (the Gram's rounding floor;
    0 for an SVD of the data). Every field is keyword-only: ``Spectrum(singular_values=sv, n=n, dim=k)``.
    """

    singular_values: np.ndarray
    n: int
    dim: int
    centered: bool = False
    input_eps: float = float(np.finfo(np.float32).eps)
    weights: np.ndarray | None = None
    """Multiplicities of the values when the spectrum is estimated (the fast option); ``None``: all 1."""
    scale_exp: int = 0
    rel_floor: float = 0.0

    @property
    def true_singular_values(self) -> np.ndarray:
        """σ in the input's own units (over/underflows beyond float64's range)."""
        out: np.ndarray = np.ldexp(self.singular_values, self.scale_exp)
        return out

    @property
    def eigenvalues(self) -> np.ndarray:
        """Squared singular values (eigenvalues of ZᵀZ; of the scatter matrix when centred)."""
        out: np.ndarray = np.square(self.singular_values)
        return out
