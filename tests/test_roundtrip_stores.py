"""Stores by construction: each library writes the same matrix across its options (chunking, compression, groups,
links, formats, splits, columns, index types), and ``rankme score`` either gives the float64 RankMe of the matrix
that was meant (1e-9) or refuses in one line naming the file and the fix. Never a silently different number."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import reference_rankme, score_file
from rankme import EmbeddingError
from rankme.cli import main
from rankme.io.files import load_embeddings
from rankme.scoring.source import sample_rows, score_source

Z = np.random.default_rng(11).standard_normal((60, 6)) * np.array([3.0, 2.0, 1.0, 0.5, 0.2, 0.05])
Z32 = Z.astype(np.float32)
W = np.random.default_rng(12).standard_normal((60, 4))  # a second, different matrix in the same store


def _truth(z) -> float:
    return reference_rankme(np.asarray(z, dtype=np.float64))



def _refused(path, match: str, **kw) -> str:
    with pytest.raises(EmbeddingError, match=match) as err:
        load_embeddings(path, **kw)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg
    assert err.value.path == str(path) and "--" not in msg  # the file as data; Python names, never CLI flags
    return msg


def _cli(capsys, *args) -> tuple[int, dict, str]:
    rc = main(["score", *map(str, args), "--json", "--no-progress"])
    cap = capsys.readouterr()
    return rc, json.loads(cap.out)[0], cap.err


# ---------------------------------------------------------------------------------------------------- HDF5 (h5py)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("where", ["x", "g/x", "g/h/x"])
@pytest.mark.parametrize("storage", [{}, {"chunks": (16, 6)}, {"chunks": (7, 4), "compression": "gzip"},
                                     {"compression": "lzf"}], ids=["contiguous", "chunked", "gzip", "lzf"])
def test_hdf5_layouts_score_the_written_matrix(tmp_path, dtype, where, storage):
    h5py = pytest.importorskip("h5py")
    z = Z.astype(dtype)
    with h5py.File(tmp_path / "e.h5", "w") as fh:
        fh.create_dataset(where, data=z, **storage)
    assert score_file(tmp_path / "e.h5") == pytest.approx(_truth(z), rel=1e-9)  # the one dataset, found by itself
    assert score_file(tmp_path / "e.h5", key=where) == pytest.approx(_truth(z), rel=1e-9)
    assert score_file(tmp_path / "e.h5", key="/" + where) == pytest.approx(_truth(z), rel=1e-9)
    res = score_source(load_embeddings(tmp_path / "e.h5"), ["rankme"], samples=25, seed=2, progress=False)
    assert res.metrics["rankme"] == pytest.approx(_truth(z[sample_rows(60, 25, 2)]), rel=1e-9)


def test_hdf5_soft_and_external_links_are_accepted_as_key(tmp_path, capsys, monkeypatch):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "other.h5", "w") as fh:
        fh.create_dataset("deep/emb", data=W)
    with h5py.File(tmp_path / "e.h5", "w") as fh:
        fh.create_dataset("g/x", data=Z)
        fh["best"] = h5py.SoftLink("/g/x")
        fh["ext"] = h5py.ExternalLink("other.h5", "/deep/emb")
        fh["gone"] = h5py.SoftLink("/nowhere")
    assert score_file(tmp_path / "e.h5", key="best") == pytest.approx(_truth(Z), rel=1e-9)
    assert score_file(tmp_path / "e.h5", key="/best") == pytest.approx(_truth(Z), rel=1e-9)
    assert score_file(tmp_path / "e.h5", key="ext") == pytest.approx(_truth(W), rel=1e-9)
    _refused(tmp_path / "e.h5", r"'gone'.*soft link to '/nowhere'", key="gone")
    _refused(tmp_path / "e.h5", r"no dataset 'nope'; available: \['g/x'\]", key="nope")
    monkeypatch.chdir(tmp_path.parent)  # the external file is found next to the file, not in the working directory
    rc, res, _ = _cli(capsys, tmp_path / "e.h5", "--key", "ext")
    assert rc == 0 and res["metrics"]["rankme"] == pytest.approx(_truth(W), rel=1e-9)


def test_hdf5_one_1d_or_3d_dataset_is_named_as_such_and_3d_flattens(tmp_path, capsys):
    h5py = pytest.importorskip("h5py")
    cube = Z.reshape(60, 3, 2)
    with h5py.File(tmp_path / "one.h5", "w") as fh:
        fh.create_dataset("v", data=Z[:, 0])
    with h5py.File(tmp_path / "cube.h5", "w") as fh:
        fh.create_dataset("g/c", data=cube, chunks=(8, 3, 2))
    msg = _refused(tmp_path / "one.h5", r"1-D shape \(60,\)")
    assert "several" not in msg
    msg = _refused(tmp_path / "cube.h5", r"3-D shape \(60, 3, 2\).*flatten=True")
    assert "several" not in msg
    src = load_embeddings(tmp_path / "cube.h5", flatten=True)
    assert (src.n_rows, src.dim) == (60, 6) and any("flattened" in n for n in src.notes)
    assert score_source(src, ["rankme"], progress=False).metrics["rankme"] == pytest.approx(_truth(Z), rel=1e-9)
    rc, res, _ = _cli(capsys, tmp_path / "cube.h5", "--flatten", "--samples", "30")
    assert rc == 0 and res["metrics"]["rankme"] == pytest.approx(_truth(Z[sample_rows(60, 30, 0)]), rel=1e-9)
    rc, res, err = _cli(capsys, tmp_path / "cube.h5")
    assert rc == 2 and "--flatten" in res["error"] and "Traceback" not in err


def test_hdf5_several_datasets_name_the_available_keys(tmp_path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "e.h5", "w") as fh:
        fh.create_dataset("a", data=Z)
        fh.create_dataset("g/b", data=W)
    _refused(tmp_path / "e.h5", r"several datasets \['a', 'g/b'\]: choose one with key=")
    assert score_file(tmp_path / "e.h5", key="g/b") == pytest.approx(_truth(W), rel=1e-9)



@pytest.mark.parametrize("storage", [{}, {"chunks": (16, 6)}, {"chunks": True}, {"chunks": (7, 4), "compression": "gzip"},
                                     {"maxshape": (None, 6)}], ids=["contiguous", "chunked", "auto", "gzip", "maxshape"])
def test_hdf5_rows_never_written_are_an_error_unless_fill_values_are_asked_for(tmp_path, storage, capsys):
    """A dataset created at its final size and filled part-way (a loop over batches that stopped): its unwritten rows
    read as the fill value. Refused naming the dataset and rows, as a missing Zarr chunk is; accepted with
    ``fill_missing=True`` (with a note), the matrix is then the written rows and zeros."""
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "e.h5", "w") as fh:
        ds = fh.create_dataset("g/emb", shape=Z.shape, dtype="float64", **storage)
        ds[:40] = Z[:40]  # rows 40..59 never written
        rows = ds.chunks[0] if ds.chunks is not None and ds.chunks[0] < 60 else None  # chunks left unwritten
    msg = _refused(tmp_path / "e.h5", r"dataset 'g/emb'.*fill value 0\.0.*fill_missing=True")
    assert ("rows 40..59" if rows is None else f"rows from {-(-40 // rows) * rows}") in msg, msg
    holed = Z.copy()
    holed[40:] = 0.0
    src = load_embeddings(tmp_path / "e.h5", fill_missing=True)
    assert any("g/emb" in n and "fill_missing=True" in n for n in src.notes), src.notes
    assert score_file(tmp_path / "e.h5", fill_missing=True) == pytest.approx(_truth(holed), rel=1e-9)
    rc, res, err = _cli(capsys, tmp_path / "e.h5")
    assert rc == 2 and "'g/emb'" in res["error"] and "--fill-missing" in res["error"] and "Traceback" not in err
    rc, res, _ = _cli(capsys, tmp_path / "e.h5", "--fill-missing")
    assert rc == 0 and res["metrics"]["rankme"] == pytest.approx(_truth(holed), rel=1e-9)
    del src
    with h5py.File(tmp_path / "e.h5", "a") as fh:
        fh["g/emb"][40:] = Z[40:]  # the rest written: the matrix, no note
    assert score_file(tmp_path / "e.h5") == pytest.approx(_truth(Z), rel=1e-9)


def test_hdf5_virtual_dataset_with_a_missing_source_is_refused(tmp_path, capsys, monkeypatch):
    """A virtual dataset reads a missing source file as its fill value: refused naming the rows and the file; with
    every source present it is the matrix (sources found next to the file, from any working directory)."""
    h5py = pytest.importorskip("h5py")
    layout = h5py.VirtualLayout(shape=Z.shape, dtype="float64")
    for i, (a, b) in enumerate(((0, 25), (25, 60))):
        with h5py.File(tmp_path / f"part{i}.h5", "w") as fh:
            fh["x"] = Z[a:b]
        layout[a:b] = h5py.VirtualSource(f"part{i}.h5", "x", shape=(b - a, 6))
    with h5py.File(tmp_path / "v.h5", "w") as fh:
        fh.create_virtual_dataset("emb", layout, fillvalue=0.0)
    monkeypatch.chdir(tmp_path.parent)
    assert score_file(tmp_path / "v.h5") == pytest.approx(_truth(Z), rel=1e-9)
    (tmp_path / "part1.h5").unlink()
    _refused(tmp_path / "v.h5", r"rows 25..59 of virtual dataset 'emb' come from part1.h5 \[x\], which is missing.*"
                                r"fill_missing=True")
    holed = Z.copy()
    holed[25:] = 0.0
    assert score_file(tmp_path / "v.h5", fill_missing=True) == pytest.approx(_truth(holed), rel=1e-9)
    rc, res, _ = _cli(capsys, tmp_path / "v.h5")
    assert rc == 2 and "part1.h5" in res["error"] and "--fill-missing" in res["error"]

# ---------------------------------------------------------------------------------------------------- Zarr


def _zarr_write(zarr, root, fmt, where, z, **kw):
    if not where:
        arr = zarr.create_array(store=str(root), shape=z.shape, dtype=z.dtype, zarr_format=fmt, **kw)
    else:
        group = zarr.open_group(str(root), mode="w", zarr_format=fmt)
        arr = group.create_array(where, shape=z.shape, dtype=z.dtype, **kw)
    arr[:] = z
    return arr


@pytest.mark.parametrize("chunks", [(16, 4), (60, 6), (7, 6)])
@pytest.mark.parametrize("where", ["", "x", "a/x", "a/b/x"])
@pytest.mark.parametrize("fmt", [2, 3])
def test_zarr_layouts_score_the_written_matrix(tmp_path, fmt, where, chunks):
    zarr = pytest.importorskip("zarr")
    root = tmp_path / "e.zarr"
    _zarr_write(zarr, root, fmt, where, Z32, chunks=chunks)
    assert score_file(root) == pytest.approx(_truth(Z32), rel=1e-9)  # found by itself: the one array, however deep
    if where:
        assert score_file(root, key=where) == pytest.approx(_truth(Z32), rel=1e-9)
        assert score_file(root, key="/" + where) == pytest.approx(_truth(Z32), rel=1e-9)


@pytest.mark.parametrize("fmt", [2, 3])
def test_zarr_nested_groups_need_a_key_naming_the_paths(tmp_path, fmt, capsys):
    zarr = pytest.importorskip("zarr")
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w", zarr_format=fmt)
    group.create_array("enc/layer1/emb", shape=Z.shape, dtype="float64", chunks=(16, 6))[:] = Z
    group.create_array("head/logits", shape=W.shape, dtype="float64")[:] = W
    _refused(tmp_path / "g.zarr", r"several arrays \['enc/layer1/emb', 'head/logits'\]: choose one with key=")
    _refused(tmp_path / "g.zarr", r"no array 'emb'; available: \['enc/layer1/emb', 'head/logits'\]", key="emb")
    assert score_file(tmp_path / "g.zarr", key="enc/layer1/emb") == pytest.approx(_truth(Z), rel=1e-9)
    rc, res, _ = _cli(capsys, tmp_path / "g.zarr", "--key", "head/logits")
    assert rc == 0 and res["metrics"]["rankme"] == pytest.approx(_truth(W), rel=1e-9)


def test_zarr_3d_flattens_and_sharded_arrays_read_whole(tmp_path):
    zarr = pytest.importorskip("zarr")
    _zarr_write(zarr, tmp_path / "c.zarr", 3, "g/cube", Z.reshape(60, 3, 2), chunks=(16, 3, 2))
    _refused(tmp_path / "c.zarr", r"3-D shape \(60, 3, 2\).*flatten=True")
    src = load_embeddings(tmp_path / "c.zarr", flatten=True)
    assert score_source(src, ["rankme"], progress=False).metrics["rankme"] == pytest.approx(_truth(Z), rel=1e-9)
    res = score_source(src, ["rankme"], samples=20, seed=1, progress=False)
    assert res.metrics["rankme"] == pytest.approx(_truth(Z[sample_rows(60, 20, 1)]), rel=1e-9)
    _zarr_write(zarr, tmp_path / "s.zarr", 3, "", Z, chunks=(8, 6), shards=(32, 6))
    assert score_file(tmp_path / "s.zarr") == pytest.approx(_truth(Z), rel=1e-9)
    (tmp_path / "s.zarr" / "c" / "1" / "0").unlink()  # the second shard: rows 32..59
    _refused(tmp_path / "s.zarr", r"1 of 2 chunks .*chunk \(1, 0\).*missing")


def _chunk_file(root, fmt, where, coords):
    sep = "." if fmt == 2 else "/"
    inner = sep.join(map(str, coords)) if fmt == 2 else "c/" + "/".join(map(str, coords))
    return root / where / inner if where else root / inner


@pytest.mark.parametrize("where", ["", "a/b/x"])
@pytest.mark.parametrize("fmt", [2, 3])
def test_zarr_missing_chunk_is_an_error_unless_fill_values_are_asked_for(tmp_path, fmt, where, capsys):
    zarr = pytest.importorskip("zarr")
    root = tmp_path / "e.zarr"
    _zarr_write(zarr, root, fmt, where, Z, chunks=(16, 6))
    _chunk_file(root, fmt, where, (2, 0)).unlink()  # rows 32..47 are gone
    msg = _refused(root, r"chunk \(2, 0\).*missing.*fill_missing=True")
    assert repr(where or "array") in msg or where in msg
    holed = Z.copy()
    holed[32:48] = 0.0  # the fill value the user accepts
    assert score_file(root, fill_missing=True) == pytest.approx(_truth(holed), rel=1e-9)
    src = load_embeddings(root, fill_missing=True)
    assert any("1 chunk" in n and "fill value" in n for n in src.notes)
    rc, res, err = _cli(capsys, root)
    assert rc == 2 and "chunk (2, 0)" in res["error"] and "Traceback" not in err
    assert "--fill-missing" in res["error"] and "fill_missing" not in res["error"]  # the CLI names its flag
    rc, res, _ = _cli(capsys, root, "--fill-missing")
    assert rc == 0 and res["metrics"]["rankme"] == pytest.approx(_truth(holed), rel=1e-9)


def test_zarr_chunks_skipped_because_they_equal_the_fill_value_need_the_opt_in(tmp_path):
    """Zarr does not write a chunk whose values all equal the fill value: such a store reads the intended matrix
    only when the user says so (rankme cannot tell it from a lost chunk)."""
    zarr = pytest.importorskip("zarr")
    z = Z.copy()
    z[16:32] = 0.0
    _zarr_write(zarr, tmp_path / "e.zarr", 3, "", z, chunks=(16, 6))
    _refused(tmp_path / "e.zarr", r"chunk \(1, 0\).*fill value.*fill_missing=True")
    assert score_file(tmp_path / "e.zarr", fill_missing=True) == pytest.approx(_truth(z), rel=1e-9)


@pytest.mark.parametrize("fmt", [2, 3])
def test_zarr_explicit_fill_value(tmp_path, fmt):
    zarr = pytest.importorskip("zarr")
    root = tmp_path / "e.zarr"
    _zarr_write(zarr, root, fmt, "x", Z, chunks=(16, 6), fill_value=2.5)
    assert score_file(root) == pytest.approx(_truth(Z), rel=1e-9)  # every chunk written: the fill value is unused
    _chunk_file(root, fmt, "x", (0, 0)).unlink()
    _refused(root, r"'x'.*chunk \(0, 0\).*fill value 2\.5")
    holed = Z.copy()
    holed[:16] = 2.5
    assert score_file(root, fill_missing=True) == pytest.approx(_truth(holed), rel=1e-9)


# ---------------------------------------------------------------------------------------------------- HF datasets


def _hf(tmp_path, name, columns, splits=None):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict(columns)
    if splits is None:
        ds.save_to_disk(str(tmp_path / name))
    else:
        datasets.DatasetDict({s: ds if i == 0 else datasets.Dataset.from_dict(splits[s])
                              for i, s in enumerate(splits)}).save_to_disk(str(tmp_path / name))
    return tmp_path / name


def test_hf_dataset_list_and_scalar_columns(tmp_path):
    p = _hf(tmp_path, "one", {"text": [f"t{i}" for i in range(60)], "emb": Z.tolist()})
    assert score_file(p) == pytest.approx(_truth(Z), rel=1e-9)
    p = _hf(tmp_path, "two", {"a": Z.tolist(), "b": W.tolist(), "x": Z[:, 0].tolist()})
    _refused(p, r"several list columns \['a', 'b'\]: choose the embedding with key=")
    assert score_file(p, key="b") == pytest.approx(_truth(W), rel=1e-9)
    assert score_file(p, key="x") == pytest.approx(_truth(Z[:, :1]), rel=1e-9)
    _refused(p, r"no column 'c'; columns: \['a', 'b', 'x'\]", key="c")
    p = _hf(tmp_path, "scalars", {f"f{j}": Z[:, j].tolist() for j in range(6)})
    assert score_file(p) == pytest.approx(_truth(Z), rel=1e-9)
    assert score_file(p, key="f2") == pytest.approx(_truth(Z[:, 2:3]), rel=1e-9)


@pytest.mark.parametrize("key,want", [("x", Z[:, :1]), ("b", W), ("a", Z), ("train/b", W), ("train/x", Z[:, :1])])
def test_hf_dataset_dict_with_one_split_honours_key(tmp_path, key, want, capsys):
    p = _hf(tmp_path, "dd", {"a": Z.tolist(), "b": W.tolist(), "x": Z[:, 0].tolist()}, splits={"train": None})
    assert score_file(p, key=key) == pytest.approx(_truth(want), rel=1e-9)
    rc, res, _ = _cli(capsys, p, "--key", key)
    assert rc == 0 and res["metrics"]["rankme"] == pytest.approx(_truth(want), rel=1e-9)
    assert not any("scored the list column" in n for n in res["notes"])


def test_hf_dataset_dict_one_split_key_x_next_to_one_list_column(tmp_path, capsys):
    """The reported case: ``--key x`` must score x, not the list column beside it."""
    p = _hf(tmp_path, "dd", {"emb": W.tolist(), "x": Z[:, 0].tolist()}, splits={"train": None})
    assert score_file(p) == pytest.approx(_truth(W), rel=1e-9)
    rc, res, err = _cli(capsys, p, "--key", "x")
    assert rc == 0 and res["metrics"]["rankme"] == pytest.approx(_truth(Z[:, :1]), rel=1e-9)
    assert "scored the list column" not in err
    assert res["name"].endswith("[train/x]")
    _refused(p, r"no column 'y'; columns: \['emb', 'x'\]", key="y")


def test_hf_dataset_dict_with_several_splits(tmp_path, capsys):
    p = _hf(tmp_path, "dd", {"emb": Z.tolist()}, splits={"train": None, "test": {"emb": W.tolist()}})
    _refused(p, r"splits \['test', 'train'\]: choose one with key=SPLIT/COLUMN")
    _refused(p, r"splits \['test', 'train'\]: choose one with key=SPLIT/COLUMN", key="emb")
    assert score_file(p, key="test") == pytest.approx(_truth(W), rel=1e-9)  # a split: its one list column
    assert score_file(p, key="train/emb") == pytest.approx(_truth(Z), rel=1e-9)
    _refused(p, r"no column 'nope'; columns: \['emb'\]", key="test/nope")
    rc, res, _ = _cli(capsys, p, "--key", "test/emb")
    assert rc == 0 and res["metrics"]["rankme"] == pytest.approx(_truth(W), rel=1e-9)


# ---------------------------------------------------------------------------------------------------- Lance


def _vectors(pa, z):
    return pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(z).ravel()), z.shape[1])


def test_lance_plain_table_and_several_vector_columns(tmp_path, capsys):
    lance = pytest.importorskip("lance")
    pa = pytest.importorskip("pyarrow")
    lance.write_dataset(pa.table({"id": np.arange(60), "vector": _vectors(pa, Z)}), str(tmp_path / "t.lance"))
    assert score_file(tmp_path / "t.lance") == pytest.approx(_truth(Z), rel=1e-9)
    res = score_source(load_embeddings(tmp_path / "t.lance"), ["rankme"], samples=20, seed=5, progress=False)
    assert res.metrics["rankme"] == pytest.approx(_truth(Z[sample_rows(60, 20, 5)]), rel=1e-9)
    table = pa.table({"id": np.arange(60), "img": _vectors(pa, Z), "txt": pa.array(list(W)), "s": W[:, 0]})
    lance.write_dataset(table, str(tmp_path / "m.lance"))
    _refused(tmp_path / "m.lance", r"several vector columns \['img', 'txt'\]: choose one with key=")
    assert score_file(tmp_path / "m.lance", key="img") == pytest.approx(_truth(Z), rel=1e-9)
    assert score_file(tmp_path / "m.lance", key="txt") == pytest.approx(_truth(W), rel=1e-9)
    _refused(tmp_path / "m.lance", r"no column 'x'; columns: \['id', 'img', 'txt', 's'\]", key="x")
    rc, res, _ = _cli(capsys, tmp_path / "m.lance", "--key", "txt")
    assert rc == 0 and res["metrics"]["rankme"] == pytest.approx(_truth(W), rel=1e-9)


# ---------------------------------------------------------------------------------------------------- FAISS


def _faiss_file(tmp_path, faiss, index, name):
    faiss.write_index(index, str(tmp_path / name))
    return tmp_path / name


@pytest.mark.parametrize("kind", ["IndexFlatL2", "IndexFlatIP"])
def test_faiss_flat_indexes(tmp_path, kind):
    faiss = pytest.importorskip("faiss")
    index = getattr(faiss, kind)(6)
    index.add(Z32)
    assert score_file(_faiss_file(tmp_path, faiss, index, "f.faiss")) == pytest.approx(_truth(Z32), rel=1e-9)


def _ivf(faiss):
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatL2(6), 6, 3)
    ivf.train(Z32)
    return ivf


def test_faiss_ivf_flat_with_ids_reads_the_vectors_in_id_order(tmp_path, capsys):
    faiss = pytest.importorskip("faiss")
    ids = np.random.default_rng(0).permutation(60).astype(np.int64) * 7 + 1000
    ivf = _ivf(faiss)
    ivf.add_with_ids(Z32, ids)
    p = _faiss_file(tmp_path, faiss, ivf, "ids.faiss")
    in_id_order = Z32[np.argsort(ids)]
    assert score_file(p) == pytest.approx(_truth(Z32), rel=1e-9)
    res = score_source(load_embeddings(p), ["rankme"], samples=25, seed=3, progress=False)
    assert res.metrics["rankme"] == pytest.approx(_truth(in_id_order[sample_rows(60, 25, 3)]), rel=1e-9)
    rc, res, err = _cli(capsys, p)
    assert rc == 0 and res["metrics"]["rankme"] == pytest.approx(_truth(Z32), rel=1e-9)
    assert "DirectMap" not in err


@pytest.mark.parametrize("with_ids", [False, True])
def test_faiss_after_remove_ids_reads_the_remaining_vectors(tmp_path, with_ids):
    faiss = pytest.importorskip("faiss")
    gone = np.array([0, 5, 17, 59], dtype=np.int64)
    keep = np.setdiff1d(np.arange(60), gone)
    for name, index in [("ivf", _ivf(faiss)), ("idmap", faiss.IndexIDMap(faiss.IndexFlatL2(6))),
                        ("flat", faiss.IndexFlatL2(6))]:
        if with_ids and name != "flat":
            index.add_with_ids(Z32, np.arange(60, dtype=np.int64) + 100)
            index.remove_ids(gone + 100)
        elif name == "idmap":
            index.add_with_ids(Z32, np.arange(60, dtype=np.int64))
            index.remove_ids(gone)
        else:
            index.add(Z32)
            index.remove_ids(gone)
        assert index.ntotal == 56
        p = _faiss_file(tmp_path, faiss, index, f"{name}.faiss")
        assert score_file(p) == pytest.approx(_truth(Z32[keep]), rel=1e-9), name


def test_faiss_compressed_indexes_are_refused_with_the_reason(tmp_path):
    faiss = pytest.importorskip("faiss")
    pq = faiss.IndexPQ(6, 2, 4)
    pq.train(Z32)
    pq.add(Z32)
    _refused(_faiss_file(tmp_path, faiss, pq, "pq.faiss"), r"IndexPQ index keeps compressed codes.*approximate")
    ivfpq = faiss.IndexIVFPQ(faiss.IndexFlatL2(6), 6, 2, 2, 4)
    ivfpq.train(np.tile(Z32, (3, 1)))
    ivfpq.add_with_ids(Z32, np.arange(60, dtype=np.int64) * 3)
    _refused(_faiss_file(tmp_path, faiss, ivfpq, "ivfpq.faiss"), r"IndexIVFPQ index keeps compressed codes")


def test_store_copied_without_its_chunks_is_not_scored_as_zeros(tmp_path):
    """A Zarr directory copied without its chunk files (metadata only): every chunk is missing."""
    zarr = pytest.importorskip("zarr")
    _zarr_write(zarr, tmp_path / "e.zarr", 3, "", Z, chunks=(16, 6))
    shutil.rmtree(tmp_path / "e.zarr" / "c")
    _refused(tmp_path / "e.zarr", r"4 of 4 chunks.*missing")
