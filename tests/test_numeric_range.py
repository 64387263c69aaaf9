"""RankMe stays the float64 SVD's value over the whole numeric range: any finite scale (one-shot, streamed, merged),
exactly low rank, every dtype, memory layout and chunking, and bfloat16 from JAX-style libraries."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rankme
from conftest import SMALL_Z, make_matrix, reference_rankme
from rankme import SpectrumAccumulator


def test_numerical_rank_of_exactly_rank_8_matrices():
    z = make_matrix("lowrank", 500, 64, seed=1, rank=8)
    assert rankme.compute_metrics(z, ["numerical_rank"])["numerical_rank"] == 8
    assert rankme.compute_metrics(z.astype(np.float32), ["numerical_rank"])["numerical_rank"] == 8
    acc = SpectrumAccumulator(64)
    for part in np.array_split(z, 7):
        acc.update(part)
    assert rankme.compute_metrics(acc, ["numerical_rank"])["numerical_rank"] == 8  # streaming: Gram floor


@pytest.mark.parametrize("rank", [1, 2, 10])
def test_exactly_low_rank_one_shot_meets_1e6(rank):
    z = make_matrix("lowrank", 300, 300, seed=2, rank=rank)
    assert rankme.rankme(z) == pytest.approx(reference_rankme(z), rel=1e-6)
    assert rankme.rankme(z, center=True) == pytest.approx(reference_rankme(z, center=True), rel=1e-6)


# the one place scale invariance is tested
@pytest.mark.parametrize(("n", "k", "rank", "noise"), [(4096, 256, 32, 1e-6), (4096, 256, 100, 0.0), (150, 600, 16, 1e-6)])
def test_float32_tail_that_cannot_move_rankme_keeps_the_gram_route(n, k, rank, noise):
    """Low rank + tiny noise in float32: the smallest σ sit at the Gram's floor (the old trigger ran the data's SVD),
    but they cannot move RankMe by 1e-6, so the Gram's spectrum is kept, and it is within 1e-6 of the float64 SVD."""
    from rankme.core.compute import TAIL_TOL, compute_spectrum
    g = np.random.default_rng(rank)
    z = (g.standard_normal((n, rank)) @ g.standard_normal((rank, k)) + noise * g.standard_normal((n, k)))
    z = z.astype(np.float32)
    spec = compute_spectrum(z)
    sv = spec.singular_values
    assert sv[-1] <= 4.0 * spec.rel_floor * sv[0]  # at the floor: what used to start the SVD
    assert spec.rel_floor > 0  # the Gram route's spectrum was kept
    assert rankme.rankme(z) == pytest.approx(reference_rankme(z), rel=TAIL_TOL)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tail_that_can_move_rankme_or_the_rank_count_gets_the_data_svd(dtype):
    """Exactly rank 2 (float32: 254 values at the floor would move RankMe by ~1e-5) and float64 rank 8 + 1e-9 noise
    (the numerical rank counts values below the Gram's floor): both re-solved by the data's SVD."""
    from rankme.core.compute import compute_spectrum
    g = np.random.default_rng(3)
    rank, noise = (2, 0.0) if dtype == np.float32 else (8, 1e-9)
    z = (g.standard_normal((3000, rank)) @ g.standard_normal((rank, 256)) + noise * g.standard_normal((3000, 256)))
    z = z.astype(dtype)
    assert compute_spectrum(z).rel_floor == 0.0
    assert rankme.rankme(z) == pytest.approx(reference_rankme(z), rel=1e-6)
    if dtype == np.float64:
        ref = np.linalg.svd(z, compute_uv=False)
        want = int((ref > ref[0] * 3000 * np.finfo(np.float64).eps).sum())
        assert rankme.compute_metrics(z, ["numerical_rank"])["numerical_rank"] == want == 256


@pytest.mark.parametrize("scale", [1e-300, 1e-200, 1e-150, 1e-45, 1e-30, 1e-6, 3.0, 1e30, 1e38, 1e150, 1e200, 1e300])
def test_scale_invariance_at_extreme_finite_scales(scale):
    z = make_matrix("powerlaw", 200, 12, seed=3)
    base = rankme.rankme(z)
    assert rankme.rankme(z * scale) == pytest.approx(base, rel=1e-12)  # no overflow, no underflow
    for precision in ("float64", "float32"):
        acc = SpectrumAccumulator(12, precision=precision)
        acc.update(z * scale)
        assert acc.rankme() == pytest.approx(base, rel=1e-5 if precision == "float32" else 1e-12)
    if 1e-37 < scale < 1e37:  # representable as float32 input
        acc = SpectrumAccumulator(12, precision="float32")
        acc.update((z * scale).astype(np.float32))
        assert acc.rankme() == pytest.approx(base, rel=1e-5)


def test_state_scale_survives_merges_and_growing_magnitudes():
    z = make_matrix("isotropic", 300, 6, seed=4)
    whole = rankme.rankme(z)
    acc = SpectrumAccumulator(6)
    acc.update(z[:100] * 1e-250)
    other = SpectrumAccumulator(6)
    other.update(z[100:] * 1e-250)
    acc.merge(other)
    assert acc.rankme() == pytest.approx(whole, rel=1e-9)
    mixed = SpectrumAccumulator(6)
    mixed.update(z[:100])
    mixed.update(z[100:] * 1e280)  # the first rows become negligible: the value is the big rows'
    assert mixed.rankme() == pytest.approx(rankme.rankme(z[100:]), rel=1e-9)


@settings(max_examples=320, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 60), k=st.integers(1, 24), dtype=st.sampled_from(["float64", "float32", "float16", "int16"]),
       log_scale=st.integers(-30, 30), offset=st.sampled_from([0.0, 1.0, -50.0]),
       layout=st.sampled_from(["C", "F", "strided", "list", "torch"]), chunk=st.integers(1, 64),
       rank=st.integers(0, 24), center=st.booleans(), seed=st.integers(0, 2**16))
def test_rankme_equals_float64_svd_over_shapes_dtypes_scales_layouts(n, k, dtype, log_scale, offset, layout, chunk,
                                                                    rank, center, seed):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, k))
    if 0 < rank < min(n, k):
        base = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, k))
    scale = 10.0 ** (log_scale if dtype in ("float64",) else max(min(log_scale, 3), -3))
    with np.errstate(over="ignore", invalid="ignore"):
        z = (base * scale + offset * scale).astype(dtype)
    if not np.isfinite(z).all():
        return  # the cast overflowed the dtype (float16 beyond 65 504): non-finite input is refused, tested elsewhere
    if not np.any(z):
        return  # all zero: refused (tested elsewhere)
    ref_input = np.asarray(z, dtype=np.float64)
    if center and not np.any(ref_input - ref_input.mean(0)):
        return
    expected = reference_rankme(ref_input, center=center)
    x: object = z
    if layout == "F":
        x = np.asfortranarray(z)
    elif layout == "strided":
        wide = np.zeros((n, 2 * k), dtype=z.dtype)
        wide[:, ::2] = z
        x = wide[:, ::2]
    elif layout == "list":
        x = z.tolist()
    elif layout == "torch":
        torch = pytest.importorskip("torch")
        x = torch.from_numpy(np.ascontiguousarray(z))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rankme.SampleSizeWarning)
        got = rankme.rankme(x, center=center)
        acc = SpectrumAccumulator(k)
        for part in np.array_split(np.asarray(z), max(1, n // chunk)):
            acc.update(part, chunk_rows=max(1, chunk // 3))
        streamed = acc.rankme(center=center)
    # one-shot: exact (SVD of small matrices at the Gram floor); streaming: the Gram route's documented bound,
    # min(N, K) values each off by at most the spectrum's rounding floor f: RankMe moves by ≤ m·f·(1 + ln 1/f)
    assert got == pytest.approx(expected, rel=1e-6)
    f = acc.spectrum(center=center).rel_floor
    bound = max(1e-6, 2 * min(n, k) * f * (1 + np.log(1 / f)))
    assert streamed == pytest.approx(expected, rel=bound)


def test_bfloat16_arrays_from_jax_style_libraries():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    z = SMALL_Z.astype(ml_dtypes.bfloat16)  # what jax.numpy bfloat16 arrays are when converted
    assert rankme.rankme(z) == pytest.approx(reference_rankme(z.astype(np.float32)), rel=1e-6)
