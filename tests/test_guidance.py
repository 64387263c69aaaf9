"""The finite-N under-read from Marchenko–Pastur agrees with simulation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import rankme
from rankme.core.guidance import isotropic_rankme_fraction, sample_size_note


@pytest.mark.parametrize("n,k", [pytest.param(1024, 1024, marks=pytest.mark.slow), (2048, 512), (300, 600)])  # 1024²: 10 s
def test_isotropic_fraction_matches_simulation(n, k):
    z = np.random.default_rng(0).standard_normal((n, k))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rankme.SampleSizeWarning)
        simulated = rankme.rankme(z) / min(n, k)
    assert isotropic_rankme_fraction(n, k) == pytest.approx(simulated, rel=0.01)


def test_notes():
    assert sample_size_note(25600, 2048) is None
    assert "824" in (sample_size_note(1024, 1024) or "")
    assert "at most N" in (sample_size_note(100, 1024) or "")
    with pytest.raises(ValueError):
        isotropic_rankme_fraction(0, 3)
