"""The accumulator's state stays right: an update that fails adds nothing, centred values are exact whatever the
mean (a shifted state, merged and reduced exactly), a state survives ``torch.save``/``torch.load``, and a malformed
state or a misused accumulator is refused naming what is wrong."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rankme
from conftest import SMALL_REF, SMALL_Z, make_matrix, reference_rankme
from rankme import SpectrumAccumulator
from rankme.core.errors import EmbeddingError

K = 12


def _rows(n: int = 400, seed: int = 0) -> np.ndarray:
    return make_matrix("powerlaw", n, K, seed=seed) * 3.0 + make_matrix("isotropic", n, K, seed=seed + 1) * 0.1


def _streamed(z: np.ndarray, cuts: list[int], **kw) -> SpectrumAccumulator:
    acc = SpectrumAccumulator(z.shape[1], **kw)
    for a, b in zip([0, *cuts], [*cuts, len(z)], strict=True):
        acc.update(z[a:b])
    return acc


# -- an update is all-or-nothing ----------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["nan", "inf", "overflow"])
@pytest.mark.parametrize("device", [None, "cpu"])
def test_a_refused_batch_leaves_the_state_as_it_was(bad, device):
    if device is not None:
        pytest.importorskip("torch")
    z = _rows()
    acc = SpectrumAccumulator(K, device=device)
    acc.update(z[:100])
    before = (acc.n, acc.rankme(), acc.rankme(center=True))
    batch = z[100:300].copy()
    if bad == "nan":
        batch[150, 3] = np.nan  # in the batch's fourth chunk: the first three were added before the fix
    elif bad == "inf":
        batch[199, 0] = np.inf
    else:  # a float32 batch scaled past float32's range: the cast makes Inf in its last rows
        with np.errstate(over="ignore"):
            batch = (batch * np.r_[np.ones(150), np.full(50, 1e200)][:, None]).astype(np.float32)
    with pytest.raises(EmbeddingError, match="non-finite"):
        acc.update(batch, chunk_rows=50)
    assert (acc.n, acc.rankme(), acc.rankme(center=True)) == before
    acc.update(z[100:300])  # and going on gives the value of the rows actually added
    assert acc.rankme() == pytest.approx(reference_rankme(z[:300]), rel=1e-9)


# -- centred values are exact whatever the mean -------------------------------------------------------------
@pytest.mark.parametrize("offset", [0.0, 1e3, 1e6, 1e9, -1e12])
def test_centred_value_is_exact_under_a_large_common_offset(offset):
    z = _rows() + offset
    truth = reference_rankme(z, center=True)
    acc = _streamed(z, [37, 111, 250])
    assert acc.rankme(center=True) == pytest.approx(truth, rel=1e-6)
    assert rankme.rankme(z, center=True) == pytest.approx(truth, rel=1e-6)


def test_centred_covariance_metrics_are_exact_under_an_offset():
    z = _rows() + 1e6
    lam = np.linalg.svd(z - z.mean(0), compute_uv=False) ** 2
    acc = _streamed(z, [100, 200])
    got = rankme.compute_metrics(acc, ["nesum", "participation_ratio"])
    assert got["nesum"] == pytest.approx(lam.sum() / lam[0], rel=1e-6)
    assert got["participation_ratio"] == pytest.approx(lam.sum() ** 2 / (lam**2).sum(), rel=1e-6)


def test_ordinary_embeddings_are_accumulated_about_the_origin():
    """Rows whose mean is small next to their spread keep the unshifted state (bit-identical raw Gram)."""
    z = _rows()
    acc = _streamed(z, [200])
    assert acc.state_dict()["shift"] is None
    assert acc.rankme() == pytest.approx(reference_rankme(z), rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(offset=st.sampled_from([0.0, 1e4, 1e8]), drift=st.sampled_from([0.0, 3.0]),
       cuts=st.lists(st.integers(1, 299), max_size=4, unique=True), order=st.permutations(range(3)),
       center=st.booleans())
def test_merge_of_states_about_different_points_equals_one_pass(offset, drift, cuts, order, center):
    z = _rows(300) + offset
    z[150:] += drift  # later rows have another mean: their states keep other points
    cuts = sorted(cuts)
    bounds = list(zip([0, *cuts], [*cuts, 300], strict=True))
    parts = [SpectrumAccumulator(K) for _ in range(3)]
    for i, (a, b) in enumerate(bounds):
        parts[i % 3].update(z[a:b])
    total = SpectrumAccumulator(K)
    for i in order:
        total.merge(parts[i])
    assert total.n == 300
    truth = reference_rankme(z, center=center)
    assert total.rankme(center=center) == pytest.approx(truth, rel=1e-6 if center or not offset else 1e-4)


def test_torch_state_keeps_the_same_point():
    torch = pytest.importorskip("torch")
    z = _rows() + 1e7
    host = _streamed(z, [123])
    dev = SpectrumAccumulator(K, device="cpu")
    dev.update(torch.from_numpy(z[:123]))
    dev.update(z[123:])
    assert dev.rankme(center=True) == pytest.approx(host.rankme(center=True), rel=1e-9)
    assert dev.rankme(center=True) == pytest.approx(reference_rankme(z, center=True), rel=1e-6)


def test_a_shifted_state_round_trips_and_rescales():
    z = _rows() + 1e6
    acc = _streamed(z, [50])
    copy = SpectrumAccumulator()
    copy.load_state_dict(acc.state_dict())
    assert copy.rankme(center=True) == acc.rankme(center=True)
    acc.update(z[:10] * 1e100)  # rescales the state (and its point) by a power of two
    ref = np.vstack([z, z[:10] * 1e100])
    assert acc.rankme(center=True) == pytest.approx(reference_rankme(ref, center=True), rel=1e-6)


def test_state_dict_round_trips_through_default_torch_load(tmp_path):
    torch = pytest.importorskip("torch")
    acc = SpectrumAccumulator(8)
    acc.update(SMALL_Z * 1e-200)
    torch.save(acc.state_dict(), tmp_path / "acc.pt")
    back = SpectrumAccumulator()
    back.load_state_dict(torch.load(tmp_path / "acc.pt"))  # default: weights_only=True
    assert back.n == 120 and back.rankme() == pytest.approx(SMALL_REF, rel=1e-9)


# -- a malformed state or a misused accumulator is refused naming what is wrong -------------------------------------------------------
def test_state_without_a_key_is_refused_naming_it():
    acc = _streamed(_rows(), [])
    state = acc.state_dict()
    del state["gram"]
    with pytest.raises(ValueError, match=r"lacks 'gram'"):
        SpectrumAccumulator().load_state_dict(state)


def test_merging_an_array_and_loading_a_state_of_another_width_or_count_are_refused():
    torch = pytest.importorskip("torch")
    acc = SpectrumAccumulator(4)
    with pytest.raises(TypeError, match="update"):
        acc.merge(np.eye(4))  # type: ignore[arg-type]
    state = acc.state_dict()
    with pytest.raises(ValueError, match="K=4"):
        acc.load_state_dict({**state, "gram": torch.zeros(3, 3)})
    with pytest.raises(ValueError, match="non-negative"):
        acc.load_state_dict({**state, "n": -1})


def test_state_written_before_shifted_states_loads_about_the_origin():
    z = _rows()
    acc = _streamed(z, [])
    state = acc.state_dict()
    del state["shift"]
    old = SpectrumAccumulator()
    old.load_state_dict(state)
    assert old.rankme() == acc.rankme()


def test_state_with_a_bad_shift_is_refused():
    state = _streamed(_rows() + 1e6, []).state_dict()
    state["shift"] = np.zeros(K + 1)
    with pytest.raises(ValueError, match="shift"):
        SpectrumAccumulator().load_state_dict(state)


def test_cli_center_and_nesum_of_offset_rows_are_exact(tmp_path, capsys):
    """The file path streams through the accumulator: `--center` and the covariance metrics see the offset too."""
    import json

    from rankme.cli import main

    z = _rows(3000) + 1e6
    p = tmp_path / "offset.npy"
    np.save(p, z)
    assert main(["score", str(p), "--json", "--center", "--metric", "rankme", "--metric", "nesum"]) == 0
    got = json.loads(capsys.readouterr().out)[0]["metrics"]
    lam = np.linalg.svd(z - z.mean(0), compute_uv=False) ** 2
    assert got["rankme[center=True]"] == pytest.approx(reference_rankme(z, center=True), rel=1e-6)
    assert got["nesum"] == pytest.approx(lam.sum() / lam[0], rel=1e-6)
