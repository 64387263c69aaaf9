"""CUDA path (runs only where a GPU is present; the suite never needs one)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rankme
from conftest import make_matrix, reference_rankme

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def test_cuda_tensor_is_accumulated_on_device_and_exact():
    z = make_matrix("lowrank", 4000, 256, rank=32).astype(np.float32)
    acc = rankme.SpectrumAccumulator()
    acc.update(torch.from_numpy(z).cuda().half())
    assert acc.on_device
    ref = reference_rankme(torch.from_numpy(z).half().float().numpy())
    assert acc.rankme() == pytest.approx(ref, rel=1e-6)
    assert rankme.rankme(torch.from_numpy(z).cuda()) == pytest.approx(reference_rankme(z), rel=1e-6)
