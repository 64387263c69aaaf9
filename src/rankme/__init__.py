"""rankme: exact, streaming, distributed RankMe — judge learned representations without labels.

>>> import numpy as np, rankme
>>> round(rankme.rankme(np.eye(4)), 4)
4.0
"""

from rankme._validate import EmbeddingError, SampleSizeWarning
from rankme.guidance import isotropic_rankme_fraction, sample_size_note
from rankme.lidar import LidarAccumulator, lidar
from rankme.metrics import (
    METRICS,
    RANKME_EPS,
    alpha_req,
    compute_metrics,
    condition_number,
    lidar_effective_rank,
    nesum,
    numerical_rank,
    participation_ratio,
    rankme,
    rankme_from_singular_values,
    rankme_from_spectrum,
    spectral_entropy,
    stable_rank,
)
from rankme.spectrum import Spectrum, SpectrumAccumulator, compute_spectrum

__version__ = "0.1.0"

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
    "isotropic_rankme_fraction",
    "lidar",
    "lidar_effective_rank",
    "nesum",
    "numerical_rank",
    "participation_ratio",
    "rankme",
    "rankme_from_singular_values",
    "rankme_from_spectrum",
    "sample_size_note",
    "spectral_entropy",
    "stable_rank",
]
