"""rankme: exact, streaming, distributed RankMe — judge learned representations without labels.

The package is layered; each folder imports only from the ones above it in this list:
``core`` (engine) → ``metrics`` (formulas and the registry) → ``io`` / ``monitor`` / ``models`` → ``selection`` →
``reporting`` → ``cli`` / ``integrations`` / ``paper``.

Examples:
    >>> import numpy as np, rankme
    >>> round(rankme.rankme(np.eye(4)), 4)
    4.0
"""

from rankme.core import __version__
from rankme.core.compute import compute_spectrum
from rankme.core.formula import (
    RANKME_EPS,
    rankme_from_singular_values,
    rankme_from_spectrum,
    spectral_entropy,
)
from rankme.core.guidance import isotropic_rankme_fraction, rankme_standard_error, sample_size_note
from rankme.core.spectrum import SpectrumAccumulator
from rankme.core.spectrum_types import Spectrum
from rankme.core.validation import EmbeddingError, SampleSizeWarning
from rankme.metrics.lidar import LidarAccumulator, invariance_ratio, lidar
from rankme.metrics.registry import METRICS, compute_metrics
from rankme.metrics.spectral import (
    alpha_req,
    condition_number,
    lidar_effective_rank,
    nesum,
    numerical_rank,
    participation_ratio,
    rankme,
    stable_rank,
)


def __getattr__(name: str) -> object:
    """``rankme.select`` is imported on first use: it pulls in the selection and reporting layers."""
    if name == "select":
        from rankme.reporting.select_api import select

        return select
    raise AttributeError(f"module 'rankme' has no attribute {name!r}")


__all__ = [
    "METRICS",
    "RANKME_EPS",
    "EmbeddingError",
    "LidarAccumulator",
    "SampleSizeWarning",
    "Spectrum",
    "SpectrumAccumulator",
    "__version__",
    "alpha_req",
    "compute_metrics",
    "compute_spectrum",
    "condition_number",
    "invariance_ratio",
    "isotropic_rankme_fraction",
    "lidar",
    "lidar_effective_rank",
    "nesum",
    "numerical_rank",
    "participation_ratio",
    "rankme",
    "rankme_from_singular_values",
    "rankme_from_spectrum",
    "rankme_standard_error",
    "sample_size_note",
    "select",
    "spectral_entropy",
    "stable_rank",
]
