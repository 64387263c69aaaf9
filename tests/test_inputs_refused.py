"""Bad in-memory input gets a one-line error naming the problem and the fix (or a documented answer), never a silent
wrong number: NaN/Inf with its row, empty, 1-D, 3-D, all-zero, non-real, masked or date arrays, objects that are not
arrays, sparse or meta tensors, and matrices whose Gram state would not fit in memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rankme
from conftest import SMALL_REF, SMALL_Z
from rankme import EmbeddingError, SpectrumAccumulator
from rankme.cli import main
from rankme.core.resources import check_state_fits


def test_nan_and_inf_report_count_and_first_row():
    z = np.ones((50, 4))
    z[17, 2] = np.nan
    z[30, 0] = np.inf
    z[30, 1] = -np.inf
    with pytest.raises(EmbeddingError, match=r"1 NaN, 2 Inf.*2 row\(s\).*first bad row index: 17"):
        rankme.rankme(z)


def test_nan_row_index_is_global_across_batches():
    acc = SpectrumAccumulator(3)
    acc.update(np.ones((10, 3)))
    bad = np.ones((10, 3))
    bad[4, 1] = np.nan
    with pytest.raises(EmbeddingError, match="first bad row index: 14"):
        acc.update(bad, chunk_rows=3)


def test_nan_in_torch_tensor_and_n_less_than_k_path():
    z = torch.ones(5, 10)
    z[3, 3] = float("nan")
    with pytest.raises(EmbeddingError, match="NaN"):
        rankme.rankme(z)


def test_empty_matrix():
    with pytest.raises(EmbeddingError, match="no rows"):
        rankme.rankme(np.zeros((0, 8)))
    with pytest.raises(EmbeddingError, match="no features"):
        rankme.rankme(np.zeros((8, 0)))


def test_one_dimensional_input_says_how_to_reshape():
    with pytest.raises(EmbeddingError, match=r"reshape\(-1, 1\)"):
        rankme.rankme(np.ones(10))


def test_three_dimensional_input_is_refused_with_flatten_hint():
    with pytest.raises(EmbeddingError, match=r"flatten=True") as err:
        rankme.rankme(np.ones((4, 3, 2)))
    assert err.value.names == ("flatten",) and "--" not in str(err.value)
    with pytest.raises(EmbeddingError, match=r"3-D"):
        rankme.rankme(torch.ones(4, 3, 2))


def test_zero_matrix_is_an_error_not_nan():
    with pytest.raises(EmbeddingError, match="complete collapse"):
        rankme.rankme(np.zeros((10, 4)))


def test_single_feature_scores_one():
    value = rankme.rankme(np.arange(1.0, 11.0).reshape(-1, 1))
    assert value == pytest.approx(1.0, abs=1e-6)
    assert value <= 1.0


def test_single_row_scores_one_with_warning():
    with pytest.warns(rankme.SampleSizeWarning):
        assert rankme.rankme(np.arange(1.0, 6.0).reshape(1, -1)) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("z,match", [
    (np.ones((3, 3), dtype=bool), "boolean"),
    (np.ones((3, 3), dtype=complex), "complex"),
    (np.array([["a", "b"], ["c", "d"]]), "numeric"),
    (torch.ones(3, 3, dtype=torch.complex64), "not supported"),
])
def test_non_real_dtypes_are_refused(z, match):
    with pytest.raises(EmbeddingError, match=match):
        rankme.rankme(z)


def test_masked_dated_and_non_finite_options_are_refused():
    with pytest.raises(EmbeddingError, match="masked array"):
        rankme.rankme(np.ma.masked_array(SMALL_Z, mask=SMALL_Z > 1.5))
    assert rankme.rankme(np.ma.masked_array(SMALL_Z)) == pytest.approx(SMALL_REF, rel=1e-9)  # nothing masked: fine
    with pytest.raises(EmbeddingError, match="dates or durations"):
        rankme.rankme(np.arange(12).reshape(4, 3).astype("timedelta64[s]"))
    with pytest.raises(ValueError, match="finite"):
        rankme.rankme(SMALL_Z, eps=float("nan"))
    with pytest.raises(ValueError, match="finite"):
        rankme.rankme_from_singular_values([1.0, 2.0], eps=float("inf"))
    with pytest.raises(SystemExit):
        main(["score", "x.npy", "--eps", "nan"])


def test_lists_and_jax_style_arrays_are_read_and_other_objects_refused():
    assert rankme.rankme(SMALL_Z.tolist()) == pytest.approx(SMALL_REF, rel=1e-9)

    class ArrayLike:  # what JAX arrays and others expose
        def __init__(self, a):
            self.a = a

        def __array__(self, dtype=None, copy=None):
            return self.a

    assert rankme.rankme(ArrayLike(SMALL_Z)) == pytest.approx(SMALL_REF, rel=1e-9)
    with pytest.raises(EmbeddingError, match="same number of features"):
        rankme.rankme([[1.0, 2.0], [3.0]])
    with pytest.raises(EmbeddingError, match="cannot read embeddings from a dict"):
        rankme.rankme({"a": 1})


def test_sparse_and_meta_tensors_are_refused():
    with pytest.raises(EmbeddingError, match=r"sparse.*to_dense"):
        rankme.rankme(torch.eye(4).to_sparse())
    with pytest.raises(EmbeddingError, match="meta"):
        rankme.rankme(torch.empty(4, 4, device="meta"))


def test_huge_width_refused_before_allocating(monkeypatch):
    monkeypatch.setattr("rankme.core.resources.available_memory_bytes", lambda: 2 * 1024**3)
    with pytest.raises(EmbeddingError, match=r"K=100000 features need a 100000x100000 float64 Gram state of 80.0 GB"):
        SpectrumAccumulator(100_000)
    check_state_fits(1000)  # a small one passes


def test_memory_guard_on_the_rows_side_and_torchmetrics(monkeypatch):
    monkeypatch.setattr("rankme.core.resources.available_memory_bytes", lambda: 1 << 20)
    with pytest.raises(EmbeddingError, match="600x600"):
        rankme.rankme(np.ones((600, 900)))  # N < K: the N×N side would not fit
    pytest.importorskip("torchmetrics")
    from rankme.integrations.torchmetrics import RankMe

    with pytest.raises(EmbeddingError, match="K=5000"):
        RankMe(dim=5000)
