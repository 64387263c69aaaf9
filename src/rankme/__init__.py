"""rankme: exact, streaming, distributed RankMe — judge learned representations without labels.

The package is layered; each folder imports only from the ones above it in this list:
``core`` (engine) → ``metrics`` (formulas, states and the registry) → ``io`` → ``scoring`` (the one path) →
``monitor`` → ``models`` → ``selection`` → ``reporting`` → ``cli`` / ``integrations`` / ``paper``.

Examples:
    >>> import numpy as np, rankme
    >>> round(rankme.rankme(np.eye(4)), 4)
    4.0
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from rankme.core import __version__

if TYPE_CHECKING:  # the names below are imported on first use (``__getattr__``): ``rankme --version`` needs no numpy
    from rankme.core.compute import compute_spectrum
    from rankme.core.errors import EmbeddingError, InputError, SampleSizeWarning
    from rankme.core.formula import (
        RANKME_EPS,
        rankme_from_singular_values,
        rankme_from_spectrum,
        spectral_entropy,
    )
    from rankme.core.guidance import isotropic_rankme_fraction, rankme_standard_error, sample_size_note
    from rankme.core.spectrum import SpectrumAccumulator
    from rankme.core.spectrum_types import Spectrum
    from rankme.core.tokens import token_rows
    from rankme.metrics.collapse import std_of_l2_normalized
    from rankme.metrics.diff_erank import DiffERank, diff_erank, per_sequence_erank
    from rankme.metrics.lidar import LidarAccumulator, invariance_ratio, lidar
    from rankme.metrics.registry import METRICS, compute_metrics
    from rankme.metrics.sequence import SequenceRanks, per_sequence_rankme
    from rankme.metrics.spectral import (
        alpha_req,
        components_for_variance,
        condition_number,
        lidar_effective_rank,
        nesum,
        numerical_rank,
        participation_ratio,
        rankme,
        stable_rank,
    )
    from rankme.reporting.select_api import select

_LAZY = {  # module: the public names it provides
    "rankme.core.compute": "compute_spectrum",
    "rankme.core.formula": "RANKME_EPS rankme_from_singular_values rankme_from_spectrum spectral_entropy",
    "rankme.core.guidance": "isotropic_rankme_fraction rankme_standard_error sample_size_note",
    "rankme.core.spectrum": "SpectrumAccumulator",
    "rankme.core.spectrum_types": "Spectrum",
    "rankme.core.tokens": "token_rows",
    "rankme.core.errors": "EmbeddingError InputError SampleSizeWarning",
    "rankme.metrics.collapse": "std_of_l2_normalized",
    "rankme.metrics.diff_erank": "DiffERank diff_erank per_sequence_erank",
    "rankme.metrics.lidar": "LidarAccumulator invariance_ratio lidar",
    "rankme.metrics.registry": "METRICS compute_metrics",
    "rankme.metrics.sequence": "SequenceRanks per_sequence_rankme",
    "rankme.metrics.spectral": "alpha_req components_for_variance condition_number lidar_effective_rank nesum numerical_rank "
                               "participation_ratio rankme stable_rank",
    "rankme.reporting.select_api": "select",
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names.split()}


def __getattr__(name: str) -> object:
    """The public names are imported on first use (PEP 562), so that ``import rankme`` (and ``rankme --version``)
    loads neither numpy nor scipy; ``rankme.select`` pulls in the selection and reporting layers (the pipeline
    :func:`rankme.selection.select.select`, its result rendering itself)."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'rankme' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next look-up is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULE_OF})


__all__ = [
    "METRICS",
    "RANKME_EPS",
    "DiffERank",
    "EmbeddingError",
    "InputError",
    "LidarAccumulator",
    "SampleSizeWarning",
    "SequenceRanks",
    "Spectrum",
    "SpectrumAccumulator",
    "__version__",
    "alpha_req",
    "components_for_variance",
    "compute_metrics",
    "compute_spectrum",
    "condition_number",
    "diff_erank",
    "invariance_ratio",
    "isotropic_rankme_fraction",
    "lidar",
    "lidar_effective_rank",
    "nesum",
    "numerical_rank",
    "participation_ratio",
    "per_sequence_erank",
    "per_sequence_rankme",
    "rankme",
    "rankme_from_singular_values",
    "rankme_from_spectrum",
    "rankme_standard_error",
    "sample_size_note",
    "select",
    "spectral_entropy",
    "stable_rank",
    "std_of_l2_normalized",
    "token_rows",
]
