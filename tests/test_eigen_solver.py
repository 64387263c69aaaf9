"""The eigen step's one solver choice (``rankme.core.eigen.symmetric_eigenvalues``): torch's LAPACK from
``TORCH_EIGEN_MIN_DIM`` on when torch is installed, scipy's below or without torch. Both routes are checked against
numpy's float64 eigen solver / SVD, read only the upper triangle (C and Fortran order), and every way into the
eigen step (one-shot N ≥ K, the N < K row side, a streamed accumulator, centred) gives the same RankMe on either."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import rankme
from rankme.core import eigen
from rankme.core.compute import TAIL_TOL
from rankme.core.formula import rankme_from_singular_values
from rankme.core.spectrum import SpectrumAccumulator

torch = pytest.importorskip("torch")


@pytest.fixture
def torch_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """Lower the threshold so small matrices take torch's route, and record each torch eigvalsh call."""
    monkeypatch.setattr(eigen, "TORCH_EIGEN_MIN_DIM", 8)
    calls: list[tuple[int, ...]] = []
    real = torch.linalg.eigvalsh

    def spy(a, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(tuple(a.shape))
        return real(a, *args, **kwargs)

    monkeypatch.setattr(torch.linalg, "eigvalsh", spy)
    return calls


def _upper_with_garbage(k: int, order: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A symmetric matrix stored as its upper triangle with nonsense below, and its true eigenvalues."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k + 5, k))
    sym = a.T @ a
    stored = np.array(np.triu(sym) - 1e3 * np.tril(np.ones((k, k)), -1), order=order)
    return stored, np.linalg.eigvalsh(sym)


@pytest.mark.parametrize("order", ["C", "F"])
def test_torch_route_reads_the_upper_triangle(torch_calls: list, order: str) -> None:
    stored, truth = _upper_with_garbage(20, order)
    lam = eigen.symmetric_eigenvalues(stored)
    assert torch_calls == [(20, 20)]
    np.testing.assert_allclose(lam, truth, rtol=0, atol=1e-12 * truth.max())


@pytest.mark.parametrize("order", ["C", "F"])
def test_scipy_route_below_the_threshold(torch_calls: list, order: str) -> None:
    stored, truth = _upper_with_garbage(6, order)
    lam = eigen.symmetric_eigenvalues(stored)
    assert torch_calls == []
    np.testing.assert_allclose(lam, truth, rtol=0, atol=1e-12 * truth.max())


def test_read_only_state_is_copied_not_warned(torch_calls: list) -> None:
    stored, truth = _upper_with_garbage(12, "F")
    stored.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns on non-writable numpy memory
        lam = eigen.symmetric_eigenvalues(stored)
    assert torch_calls == [(12, 12)]
    np.testing.assert_allclose(lam, truth, rtol=0, atol=1e-12 * truth.max())


@pytest.mark.parametrize("installed", [False, True])
def test_without_a_working_torch_scipy_solves_it(monkeypatch: pytest.MonkeyPatch, installed: bool) -> None:
    monkeypatch.setattr(eigen, "TORCH_EIGEN_MIN_DIM", 8)
    monkeypatch.setattr(eigen, "loaded_torch", lambda: None)
    monkeypatch.setattr(eigen, "has_module", lambda name: installed)

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ImportError("torch is broken")

    monkeypatch.setattr(eigen, "require", broken)
    stored, truth = _upper_with_garbage(20, "F")
    np.testing.assert_allclose(eigen.symmetric_eigenvalues(stored), truth, rtol=0, atol=1e-12 * truth.max())


def _reference(z: np.ndarray, center: bool) -> float:
    a = z.astype(np.float64)
    if center:
        a = a - a.mean(axis=0)
    return rankme_from_singular_values(np.linalg.svd(a, compute_uv=False))


@pytest.mark.parametrize("shape", [(300, 40), (20, 60)])  # N ≥ K: the K×K state; N < K: the N×N row side
@pytest.mark.parametrize("center", [False, True])
def test_every_route_gives_the_same_rankme(torch_calls: list, shape: tuple[int, int], center: bool) -> None:
    rng = np.random.default_rng(1)
    z = (rng.standard_normal(shape) * np.linspace(3.0, 0.1, shape[1])).astype(np.float32)
    with_torch = rankme.rankme(z, center=center)
    assert torch_calls, "the lowered threshold should have sent the eigen step to torch"
    acc = SpectrumAccumulator(shape[1])
    for start in range(0, shape[0], 7):
        acc.update(z[start : start + 7])
    streamed = acc.rankme(center=center)
    eigen.TORCH_EIGEN_MIN_DIM = 10**9  # restored by monkeypatch: scipy's route for the same inputs
    with_scipy = rankme.rankme(z, center=center)
    ref = _reference(z, center)
    # centred N < K has one exact zero (rank N - 1) read at the Gram's floor: the documented TAIL_TOL contract
    tol = TAIL_TOL if center and shape[0] < shape[1] else 1e-10
    for value in (with_torch, with_scipy, streamed):
        assert abs(value / ref - 1) < tol
    assert abs(with_torch / with_scipy - 1) < tol
