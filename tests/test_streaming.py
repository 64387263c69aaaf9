"""Streaming, merging and checkpointing give the one-shot answer, for any chunking and merge order."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rankme
from conftest import make_matrix, reference_rankme
from rankme import EmbeddingError, SpectrumAccumulator


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 120),
    k=st.integers(1, 24),
    cuts=st.lists(st.integers(0, 120), max_size=6),
    order_seed=st.integers(0, 1000),
    center=st.booleans(),
    kind=st.sampled_from(["isotropic", "powerlaw", "lowrank"]),
)
def test_any_chunking_and_merge_order_equals_one_shot(n, k, cuts, order_seed, center, kind):
    z = make_matrix(kind, n, k, seed=order_seed, rank=3)
    bounds = sorted({0, n, *(c for c in cuts if c <= n)})
    parts = [z[a:b] for a, b in itertools.pairwise(bounds)]
    accs = []
    for p in parts:
        a = SpectrumAccumulator(k)
        a.update(p, chunk_rows=max(1, len(p) // 2 or 1))
        accs.append(a)
    rng = np.random.default_rng(order_seed)
    total = SpectrumAccumulator(k)
    for i in rng.permutation(len(accs)):
        total.merge(accs[i])
    assert total.n == n
    one = SpectrumAccumulator(k)
    one.update(z)
    np.testing.assert_allclose(total.eigenvalues(center=center), one.eigenvalues(center=center),
                               rtol=1e-9, atol=1e-9 * max(1.0, one.eigenvalues(center=center)[0]))
    if np.abs(z).max() > 0 and (not center or n > 1):
        # exactly rank-deficient inputs put float64 rounding noise (~1e-8 σ_max) in the null space, which moves
        # RankMe by up to a few 1e-7: the engine's documented accuracy is 1e-6 relative
        assert total.rankme(center=center) == pytest.approx(one.rankme(center=center), rel=1e-6)


def test_streamed_value_matches_reference_svd():
    z = make_matrix("powerlaw", 5000, 128).astype(np.float32)
    acc = SpectrumAccumulator(128)
    for start in range(0, 5000, 333):
        acc.update(z[start : start + 333])
    assert acc.rankme() == pytest.approx(reference_rankme(z), rel=1e-9)
    assert acc.rankme(center=True, eigen=True) == pytest.approx(
        reference_rankme(z, center=True, eigen=True), rel=1e-8)


def test_dim_inferred_from_first_batch_and_enforced():
    acc = SpectrumAccumulator()
    acc.update(np.ones((3, 4)))
    assert acc.dim == 4
    with pytest.raises(EmbeddingError, match="K=5"):
        acc.update(np.ones((3, 5)))
    with pytest.raises(EmbeddingError, match="cannot merge"):
        acc.merge(SpectrumAccumulator(7))


def test_empty_batches_and_empty_accumulators_are_harmless():
    acc = SpectrumAccumulator(6)
    acc.update(np.zeros((0, 6)))
    acc.merge(SpectrumAccumulator())
    assert acc.n == 0
    with pytest.raises(EmbeddingError, match="no rows"):
        acc.rankme()


def test_state_dict_round_trip_and_pickle():
    z = make_matrix("isotropic", 100, 10)
    acc = SpectrumAccumulator(10)
    acc.update(z[:60])
    state = pickle.loads(pickle.dumps(acc.state_dict()))
    restored = SpectrumAccumulator()
    restored.load_state_dict(state)
    restored.update(z[60:])
    assert restored.n == 100
    assert restored.rankme() == pytest.approx(reference_rankme(z), rel=1e-10)
    acc.reset()
    assert acc.n == 0 and acc.dim == 10


def test_constructor_rejects_bad_arguments():
    with pytest.raises(ValueError, match="dim"):
        SpectrumAccumulator(0)
    with pytest.raises(ValueError, match="precision"):
        SpectrumAccumulator(3, precision="float16")  # type: ignore[arg-type]


def test_float32_accumulators_merge_and_refuse_mixing():
    z = make_matrix("isotropic", 400, 12)
    a, b = SpectrumAccumulator(12, precision="float32"), SpectrumAccumulator(12, precision="float32")
    a.update(z[:200])
    b.update(z[200:])
    assert a.merge(b).rankme() == pytest.approx(rankme.rankme(z), rel=1e-5)
    with pytest.raises(ValueError, match="precision"):
        a.merge(SpectrumAccumulator(12))


def test_torch_state_path_equals_numpy_path():
    """The torch accumulation path (used on CUDA) run on CPU, against the BLAS path."""
    import torch

    z = make_matrix("powerlaw", 700, 40).astype(np.float32)
    host = SpectrumAccumulator(40)
    host.update(z)
    dev = SpectrumAccumulator(40, device="cpu")
    dev.update(torch.from_numpy(z[:300]), chunk_rows=128)
    other = SpectrumAccumulator(40)
    other.update(z[300:])
    dev.merge(other)
    assert dev.on_device and dev.n == 700
    assert dev.rankme() == pytest.approx(host.rankme(), rel=1e-10)
    assert dev.rankme(center=True) == pytest.approx(host.rankme(center=True), rel=1e-10)
    host.merge(dev)
    assert host.n == 1400
    bad = torch.from_numpy(z[:10].copy())
    bad[6, 0] = float("inf")
    with pytest.raises(EmbeddingError, match="first bad row index: 706"):
        dev.update(bad)
    restored = SpectrumAccumulator(device="cpu")
    restored.load_state_dict(dev.state_dict())
    assert restored.rankme() == pytest.approx(dev.rankme(), rel=1e-12)


def test_spectrum_flags_and_fields_are_keyword_only():
    """A bare True/False says nothing at the call site: the centring and fast-option flags, and every field of a
    Spectrum, must be named (a positional call is a TypeError, not a silently different spectrum)."""
    from rankme.core.eigen import state_eigenvalues, state_matrix
    from rankme.core.estimate import quadrature_eigenvalues
    from rankme.core.spectrum_types import Spectrum
    from rankme.metrics.states import Spectra

    z = np.diag([3.0, 2.0, 1.0])
    acc = SpectrumAccumulator(3)
    acc.update(z)
    g, s = acc.statistics()
    for positional in (lambda: acc.spectrum(True), lambda: acc.spectrum(False, True), lambda: acc.statistics(True),
                       lambda: acc.eigenvalues(True), lambda: acc.singular_values(True),
                       lambda: state_eigenvalues(g, s, 3, True), lambda: state_matrix(g, s, 3, True),
                       lambda: quadrature_eigenvalues(g, s, 3, True), lambda: Spectra(z)(True),
                       lambda: Spectrum(np.ones(3), 3, 3)):
        with pytest.raises(TypeError):
            positional()
    spec = Spectrum(singular_values=np.array([3.0, 2.0, 1.0]), n=3, dim=3)
    assert (spec.centered, spec.weights, spec.scale_exp, spec.rel_floor) == (False, None, 0, 0.0)  # the defaults
    assert acc.spectrum(center=False).singular_values.tolist() == spec.singular_values.tolist()
    assert Spectra(z)(center=False).singular_values.tolist() == [3.0, 2.0, 1.0]
    inner = Spectra(z)  # a Spectra wrapping a Spectra shares its memo (it is called by keyword, not as a callable)
    assert Spectra(inner)(center=True) is inner(center=True)
