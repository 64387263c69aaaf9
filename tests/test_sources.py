"""Where embeddings live: every new source scores a file written by its own library to the same value as the .npy
of the same matrix (1e-9); shards score as one matrix (sampling uniform over all rows); a real Dask LocalCluster
equals one process."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rankme
from conftest import reference_rankme, score_file
from rankme import EmbeddingError
from rankme.cli import main
from rankme.io.files import load_embeddings
from rankme.io.shards import open_shards
from rankme.scoring.source import score_source

Z = (np.random.default_rng(5).standard_normal((600, 24)) * np.arange(1, 25) ** -0.7).astype(np.float32)
REF = reference_rankme(Z)



def test_hdf5_dataset_by_path(tmp_path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "e.h5", "w") as fh:
        fh.create_dataset("model/emb", data=Z, chunks=(64, 24))
        fh.create_dataset("model/ids", data=np.arange(600))
    assert score_file(tmp_path / "e.h5") == pytest.approx(REF, rel=1e-9)  # the one 2-D dataset
    with h5py.File(tmp_path / "e.h5", "a") as fh:
        fh.create_dataset("model/logits", data=np.zeros((600, 3)))
    with pytest.raises(EmbeddingError, match=r"several datasets.*key=") as err:
        load_embeddings(tmp_path / "e.h5")
    assert err.value.param == "key"
    assert score_file(tmp_path / "e.h5", key="model/emb") == pytest.approx(REF, rel=1e-9)
    with h5py.File(tmp_path / "one.hdf5", "w") as fh:
        fh.create_dataset("x", data=Z)
    assert score_file(tmp_path / "one.hdf5") == pytest.approx(REF, rel=1e-9)
    res = score_source(load_embeddings(tmp_path / "one.hdf5"), ["rankme"], samples=100, seed=3, progress=False)
    rows = rankme.scoring.source.sample_rows(600, 100, 3)
    assert res.metrics["rankme"] == pytest.approx(reference_rankme(Z[rows]), rel=1e-9)


def test_zarr_v3_array_and_group(tmp_path):
    zarr = pytest.importorskip("zarr")
    arr = zarr.create_array(store=str(tmp_path / "a.zarr"), shape=Z.shape, chunks=(100, 24), dtype="float32")
    arr[:] = Z
    assert score_file(tmp_path / "a.zarr") == pytest.approx(REF, rel=1e-9)
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("emb", shape=Z.shape, chunks=(128, 24), dtype="float32")[:] = Z
    group.create_array("other", shape=(600, 3), dtype="float32")[:] = 0
    assert score_file(tmp_path / "g.zarr", key="emb") == pytest.approx(REF, rel=1e-9)
    res = score_source(load_embeddings(tmp_path / "g.zarr", key="emb"), ["rankme"], samples=77, seed=1,
                       progress=False)
    assert res.metrics["rankme"] == pytest.approx(reference_rankme(Z[rankme.scoring.source.sample_rows(600, 77, 1)]),
                                                  rel=1e-9)


def test_arrow_ipc_and_feather(tmp_path):
    pa = pytest.importorskip("pyarrow")
    feather = pytest.importorskip("pyarrow.feather")
    table = pa.table({"id": np.arange(600), "embedding": list(Z.astype(np.float64))})
    feather.write_feather(table, tmp_path / "e.feather")
    with pa.ipc.new_file(str(tmp_path / "e.arrow"), table.schema) as w:
        w.write_table(table)
    for name in ("e.feather", "e.arrow"):
        assert score_file(tmp_path / name) == pytest.approx(REF, rel=1e-9)


def test_huggingface_dataset_directory(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"text": [f"doc {i}" for i in range(600)], "emb": Z.tolist()})
    ds.save_to_disk(str(tmp_path / "ds"))
    assert score_file(tmp_path / "ds") == pytest.approx(REF, rel=1e-6)  # float32 list column
    datasets.DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "dd"))
    assert score_file(tmp_path / "dd", key="train/emb") == pytest.approx(score_file(tmp_path / "ds"), rel=1e-12)


def test_lance_table(tmp_path):
    lance = pytest.importorskip("lance")
    pa = pytest.importorskip("pyarrow")
    vec = pa.FixedSizeListArray.from_arrays(pa.array(Z.ravel()), 24)
    lance.write_dataset(pa.table({"id": np.arange(600), "vector": vec}), str(tmp_path / "t.lance"))
    src = load_embeddings(tmp_path / "t.lance")
    assert src.dim == 24 and any("vector column 'vector'" in n for n in src.notes)
    assert score_source(src, ["rankme"], progress=False).metrics["rankme"] == pytest.approx(REF, rel=1e-9)


def test_faiss_flat_and_ivf_flat_reconstruct_and_compressed_indexes_are_refused(tmp_path):
    faiss = pytest.importorskip("faiss")
    flat = faiss.IndexFlatL2(24)
    flat.add(Z)
    faiss.write_index(flat, str(tmp_path / "flat.faiss"))
    assert score_file(tmp_path / "flat.faiss") == pytest.approx(REF, rel=1e-9)
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatL2(24), 24, 4)
    ivf.train(Z)
    ivf.add(Z)
    faiss.write_index(ivf, str(tmp_path / "ivf.faiss"))
    assert score_file(tmp_path / "ivf.faiss") == pytest.approx(REF, rel=1e-9)  # rows in list order: same matrix
    pq = faiss.IndexPQ(24, 4, 8)
    pq.train(Z)
    pq.add(Z)
    faiss.write_index(pq, str(tmp_path / "pq.faiss"))
    with pytest.raises(EmbeddingError, match=r"compressed codes.*approximate"):
        load_embeddings(tmp_path / "pq.faiss")


def _shards(tmp_path, sizes=(100, 250, 1, 249)):
    d = tmp_path / "shards"
    d.mkdir()
    start = 0
    for i, n in enumerate(sizes):
        np.save(d / f"part-{i:03d}.npy", Z[start : start + n])
        start += n
    return d


def test_shards_as_one_matrix_with_uniform_samples(tmp_path, capsys):
    d = _shards(tmp_path)
    src = open_shards([d])
    assert (src.n_rows, src.dim) == (600, 24)
    assert score_source(src, ["rankme"], progress=False).metrics["rankme"] == pytest.approx(REF, rel=1e-9)
    np.save(tmp_path / "all.npy", Z)
    one = score_source(load_embeddings(tmp_path / "all.npy"), ["rankme"], samples=200, seed=9, progress=False)
    many = score_source(open_shards([str(d / "part-*.npy")]), ["rankme"], samples=200, seed=9, progress=False)
    assert many.metrics["rankme"] == pytest.approx(one.metrics["rankme"], rel=1e-12)  # the same global rows
    np.save(d / "part-999.npy", np.zeros((5, 7)))
    assert main(["score", str(d), "--as-one", "--no-progress"]) == 2  # no shard set scored
    assert "part-999.npy: has K=7 features" in capsys.readouterr().err
    (d / "part-999.npy").unlink()
    assert main(["score", str(d), "--as-one", "--json", "--no-progress"]) == 0
    res = json.loads(capsys.readouterr().out)[0]
    assert res["n"] == 600 and res["metrics"]["rankme"] == pytest.approx(REF, rel=1e-9)


def test_a_missing_pyarrow_is_named_as_the_extra_not_as_a_damaged_file(tmp_path, monkeypatch):
    pytest.importorskip("pyarrow.parquet")
    import pandas as pd

    pd.DataFrame(Z).to_parquet(tmp_path / "z.parquet")
    monkeypatch.setitem(__import__("sys").modules, "pyarrow.parquet", None)  # as without the extra
    with pytest.raises(ImportError, match=r"pip install 'rankme\[parquet\]'") as err:
        load_embeddings(tmp_path / "z.parquet")
    assert "not a readable" not in str(err.value)


def test_a_store_in_a_shard_folder_counts_once(tmp_path):
    """A folder of shards that holds a `datasets` directory: its inner .arrow file is not a second shard."""
    datasets = pytest.importorskip("datasets")
    d = tmp_path / "shards"
    datasets.Dataset.from_dict({"emb": Z[:300].tolist()}).save_to_disk(str(d / "part-0"))
    np.save(d / "part-1.npy", Z[300:])
    src = open_shards([d])
    assert [p.rsplit("/", 1)[-1] for p in src.shards] == ["part-0", "part-1.npy"]
    assert src.n_rows == 600
    assert score_source(src, ["rankme"], progress=False).metrics["rankme"] == pytest.approx(REF, rel=1e-6)


@pytest.mark.slow
def test_dask_local_cluster_equals_one_process(tmp_path, capsys):
    pytest.importorskip("distributed")
    da = pytest.importorskip("dask.array")
    from rankme.integrations.dask import connect, score_array, score_shards

    d = _shards(tmp_path)
    client = connect("local", workers=2)
    try:
        assert len(client.scheduler_info()["workers"]) == 2
        res = score_shards([d], ["rankme", "nesum"], client=client)
        single = score_source(open_shards([d]), ["rankme", "nesum"], progress=False)
        assert res.metrics["rankme"] == pytest.approx(single.metrics["rankme"], rel=1e-9)
        assert res.metrics["nesum"] == pytest.approx(single.metrics["nesum"], rel=1e-9)
        sampled = score_shards([d], client=client, samples=150, seed=4)
        local = score_source(open_shards([d]), ["rankme"], samples=150, seed=4, progress=False)
        assert sampled.metrics["rankme"] == pytest.approx(local.metrics["rankme"], rel=1e-9)
        arr = score_array(da.from_array(Z, chunks=(97, 24)), client=client)
        assert arr.n == 600 and arr.metrics["rankme"] == pytest.approx(REF, rel=1e-9)
    finally:
        client.close()
        client.cluster.close()
    assert main(["score", str(d), "--as-one", "--dask", "local", "--json", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["metrics"]["rankme"] == pytest.approx(REF, rel=1e-9)
