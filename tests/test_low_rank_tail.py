"""Exactly low-rank matrices too big for the data's SVD (``rankme.core.tail``): the one-pass split resolves the tail
the Gram route reads at its rounding floor. Checked against numpy's float64 SVD, with the size limit lowered so
small matrices take the big-matrix route (``SVD_MAX_ENTRIES``); the fallbacks are checked to give the Gram route's
value, and bad rows the usual one-line error."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rankme.core import compute, tail
from rankme.core.errors import EmbeddingError
from rankme.core.formula import rankme_from_singular_values
from rankme.core.spectrum import SpectrumAccumulator

TOL = tail.TAIL_TOL


def _low_rank(n: int, k: int, r: int, noise: float, seed: int = 0, offset: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, r)) @ rng.standard_normal((r, k)) + offset
    return z + noise * rng.standard_normal((n, k))


def _ref(z: np.ndarray, center: bool) -> float:
    a = np.asarray(z, dtype=np.float64)
    return rankme_from_singular_values(np.linalg.svd(a - a.mean(axis=0) if center else a, compute_uv=False))


@pytest.fixture
def big_route(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Send every matrix down the big-matrix route and record whether the split was used (True) or fell back."""
    monkeypatch.setattr(compute, "SVD_MAX_ENTRIES", 0)
    used: list[bool] = []
    real = compute.low_rank_spectrum

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        out = real(*args, **kwargs)
        used.append(out is not None)
        return out

    monkeypatch.setattr(compute, "low_rank_spectrum", spy)
    return used


def test_the_gram_route_alone_misses_this_case() -> None:
    """The reason for the split: rank 3 in K = 1 024, null space at the float64 Gram's floor."""
    z = _low_rank(2000, 1024, 3, 0.0)
    acc = SpectrumAccumulator(1024)
    acc.update(z)
    assert abs(acc.rankme() / _ref(z, False) - 1) > TOL


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("center", [False, True])
@pytest.mark.parametrize(("r", "noise"), [(3, 0.0), (1, 1e-9), (8, 1e-7), (3, 1e-5)])
def test_split_matches_the_svd(big_route: list, dtype: type, center: bool, r: int, noise: float) -> None:
    z = _low_rank(2000, 1024, r, noise, offset=3.0 if center else 0.0).astype(dtype)
    spec = compute.compute_spectrum(z, center=center)
    assert big_route == [True]
    assert abs(rankme_from_singular_values(spec.singular_values) / _ref(z, center) - 1) < TOL
    assert spec.rel_floor < 1e-6  # the tail is resolved far below the Gram's floor (~1e-6 here)


def test_split_reads_torch_tensors_and_leaves_inputs_alone(big_route: list) -> None:
    torch = pytest.importorskip("torch")
    z = _low_rank(2000, 1024, 3, 0.0)
    before = z.copy()
    value = rankme_from_singular_values(compute.compute_spectrum(z).singular_values)
    t = torch.from_numpy(z.copy()).requires_grad_(True)
    from_torch = rankme_from_singular_values(compute.compute_spectrum(t).singular_values)
    assert big_route == [True, True]
    np.testing.assert_array_equal(z, before)  # float64 rows are copied before the projection is subtracted
    assert t.grad is None
    assert abs(value / _ref(z, False) - 1) < TOL and value == from_torch


def test_first_rows_low_rank_later_rows_not(big_route: list) -> None:
    """The directions come from the first rows; when the rest disagree, the bounds fail and the Gram route runs."""
    rng = np.random.default_rng(3)
    z = np.vstack([_low_rank(300, 1024, 3, 0.0), rng.standard_normal((1700, 1024))])
    spec = compute.compute_spectrum(z)
    assert big_route == [False]
    assert abs(rankme_from_singular_values(spec.singular_values) / _ref(z, False) - 1) < 1e-10


def _sorted_by_class(n: int, k: int, classes: int = 2, seed: int = 0) -> np.ndarray:
    """Exactly rank K/64, rows sorted by class, each class spanning its own share of the rank: the first rows
    span 1/classes of it (issue 28)."""
    rng = np.random.default_rng(seed)
    r = k // 64
    y = np.sort(rng.integers(0, classes, n))
    lat = np.zeros((n, r))
    share = r // classes
    for c in range(classes):
        lat[y == c, c * share:(c + 1) * share] = rng.standard_normal(((y == c).sum(), share))
    return lat @ rng.standard_normal((r, k))


@pytest.mark.parametrize("center", [False, True])
@pytest.mark.parametrize(("n", "k", "classes"), [(2000, 1024, 2), (3000, 512, 8)])
def test_rows_sorted_by_class_are_split_exactly(big_route: list, n: int, k: int, classes: int, center: bool) -> None:
    """The first rows span part of the rank only; rows read at a stride bring the rest into the directions, so the
    split runs and is exact (the Gram route alone: ~2e-6 here)."""
    z = _sorted_by_class(n, k, classes)
    found = tail.low_rank_directions(z, 0, center=center)
    assert found is not None and found[0].shape == (k, k // 64)
    spec = compute.compute_spectrum(z, center=center)
    assert big_route == [True]
    assert abs(rankme_from_singular_values(spec.singular_values) / _ref(z, center) - 1) < TOL


def test_strided_rows_cover_the_whole_matrix() -> None:
    z = np.arange(20_000.0)[:, None] * np.ones((1, 1024))
    rows = tail.strided_rows(z)
    assert rows.shape == (tail.sample_rows(20_000, 1024), 1024) and np.shares_memory(rows, z)
    assert rows[0, 0] == 0 and rows[-1, 0] > 19_000 - 20_000 // rows.shape[0]
    assert tail.strided_rows(z[:50]).shape[0] == 50  # fewer rows than the sample: every row, once


@pytest.mark.parametrize("z", [
    np.random.default_rng(0).standard_normal((500, 256)),                  # full rank
    _low_rank(500, 256, 8, 0.0),                                            # rank 8 > K/64
    _low_rank(500, 256, 2, 0.0) + 1e-3 * np.random.default_rng(1).standard_normal((500, 256)),  # no clear gap
])
def test_directions_only_for_clearly_low_rank_rows(z: np.ndarray) -> None:
    assert tail.low_rank_directions(z, 0) is None and tail.low_rank_directions(z, 0, center=True) is None


def test_directions_are_orthonormal_and_span_the_rows() -> None:
    z = _low_rank(500, 512, 5, 0.0)
    found = tail.low_rank_directions(z, 0)
    assert found is not None
    v, point = found
    assert v.shape == (512, 5) and not point.any()
    np.testing.assert_allclose(v.T @ v, np.eye(5), atol=1e-13)
    assert np.linalg.norm(z - (z @ v) @ v.T) < 1e-12 * np.linalg.norm(z)


def test_bad_rows_still_get_the_row_named(big_route: list) -> None:
    z = _low_rank(2000, 1024, 3, 0.0)
    z[1500, 7] = np.nan
    with pytest.raises(EmbeddingError, match="1500"):
        compute.compute_spectrum(z)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("offset", [0.01, 3.0, 100.0])
def test_a_poor_split_is_refused_not_trusted(dtype: type, offset: float) -> None:
    """Centred rows split about the origin put the mean among the directions: centring then cancels in AᵀA. The
    bounds must see it: whatever the split returns is within TAIL_TOL of the SVD, and here it returns nothing."""
    z = _low_rank(2000, 1024, 3, 0.0, offset=offset).astype(dtype)
    found = tail.low_rank_directions(z, 0)
    assert found is not None
    out = tail.low_rank_spectrum(z, (found[0], np.zeros(1024)), 0, center=True)
    assert out is None or abs(rankme_from_singular_values(out[0]) / _ref(z, True) - 1) < TOL
    good = tail.low_rank_spectrum(z, tail.low_rank_directions(z, 0, center=True), 0, center=True)
    assert good is not None and abs(rankme_from_singular_values(good[0]) / _ref(z, True) - 1) < 1e-10


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(k=st.sampled_from([128, 256, 512]), ratio=st.floats(1.0, 3.0), r_frac=st.floats(0.0, 1.0),
       noise=st.sampled_from([0.0, 1e-12, 1e-9, 1e-6, 1e-3]), center=st.booleans(), f32=st.booleans(),
       offset=st.sampled_from([0.0, 0.5, 50.0]), seed=st.integers(0, 2**16))
def test_whatever_the_split_returns_is_exact(k: int, ratio: float, r_frac: float, noise: float, center: bool,
                                             f32: bool, offset: float, seed: int) -> None:
    """Property: over shapes, ranks up to K/64, noise, offsets and dtypes, a value the split returns is within
    TAIL_TOL of the float64 SVD (it may refuse; then the Gram route runs, covered elsewhere)."""
    r = 1 + int(r_frac * (k // 64 - 1))
    z = _low_rank(int(k * ratio), k, r, noise, seed=seed, offset=offset)
    z = z.astype(np.float32) if f32 else z
    split = tail.low_rank_directions(z, 0, center=center)
    if split is None:
        return
    out = tail.low_rank_spectrum(z, split, 0, center=center, chunk_rows=97)
    if out is not None:
        assert abs(rankme_from_singular_values(out[0]) / _ref(z, center) - 1) < TOL
