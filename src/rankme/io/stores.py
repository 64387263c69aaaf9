"""Embeddings where they live at scale: HDF5, Zarr, Hugging Face ``datasets`` directories, Lance tables, FAISS
indexes. Each is behind its extra and read in chunks (rows stream; nothing is loaded whole unless the format
only offers that), with the same bad-input behaviour as the other formats.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rankme.core.optional import require
from rankme.core.validation import EmbeddingError
from rankme.io.tabular import arrow_columns, choose_columns

__all__ = ["DIRECTORY_FORMATS", "RowReader", "directory_format", "read_faiss", "read_hdf5", "read_hf_dataset",
           "read_lance", "read_zarr"]

DIRECTORY_FORMATS = ("zarr", "hf-dataset", "lance")


class RowReader:
    """An N×K array-like over a store that reads rows on demand: ``shape``, ``dtype`` and ``[a:b]`` / ``[rows]``
    (sorted row indices), which is all the engine's streaming needs."""

    def __init__(self, shape: tuple[int, int], dtype: Any, read: Any, take: Any = None, owner: Any = None) -> None:
        self.shape, self.dtype = (int(shape[0]), int(shape[1])), np.dtype(dtype)
        self._read, self._take = read, take
        self._owner = owner  # keeps the store object (e.g. a FAISS index) alive while rows are read
        self.ndim = 2

    def __getitem__(self, index: Any) -> np.ndarray:
        if isinstance(index, slice):
            start, stop, step = index.indices(self.shape[0])
            if step != 1:
                raise IndexError("only contiguous row slices are read")
            out: np.ndarray = np.asarray(self._read(start, max(stop - start, 0)))
            return out
        rows = np.asarray(index, dtype=np.int64)
        if self._take is not None:
            return np.asarray(self._take(rows))
        return np.concatenate([self._read(int(r), 1) for r in rows]) if rows.size else self[0:0]

    def __len__(self) -> int:
        return self.shape[0]


def directory_format(path: Path) -> str | None:
    """Which store a directory holds (``zarr``, ``hf-dataset``, ``lance``), by its marker files, or ``None``.

    Examples:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp()); _ = (d / "zarr.json").write_text("{}")
        >>> directory_format(d)
        'zarr'
    """
    names = {p.name for p in path.iterdir()} if path.is_dir() else set()
    if path.suffix == ".zarr" or names & {"zarr.json", ".zarray", ".zgroup"}:
        return "zarr"
    if {"dataset_info.json", "state.json"} <= names or "dataset_dict.json" in names:
        return "hf-dataset"
    if path.suffix == ".lance" or "_versions" in names:
        return "lance"
    return None


def _pick_array(path: str, arrays: dict[str, Any], key: str | None, what: str) -> tuple[str, Any]:
    if key is not None:
        if key not in arrays:
            raise EmbeddingError(f"{path}: has no {what} {key!r}; available: {sorted(arrays)}")
        return key, arrays[key]
    two_d = {k: a for k, a in arrays.items() if len(a.shape) == 2}
    if len(two_d) == 1:
        return next(iter(two_d.items()))
    if not arrays:
        raise EmbeddingError(f"{path}: holds no {what}s")
    raise EmbeddingError(f"{path}: holds several {what}s {sorted(arrays)}: choose one with --key")


def read_hdf5(path: str, key: str | None) -> tuple[str, Any]:
    """An HDF5 dataset (``key`` = its path in the file; the one 2-D dataset by default), read by chunks."""
    h5py = require("h5py", "hdf5", f"{path}: reading HDF5")
    try:
        fh = h5py.File(path, "r")
    except OSError as e:
        raise EmbeddingError(f"{path}: is not a readable HDF5 file ({e})") from e
    arrays: dict[str, Any] = {}

    def visit(name: str, obj: Any) -> None:  # returning anything but None would stop the walk
        if isinstance(obj, h5py.Dataset):
            arrays[name] = obj

    fh.visititems(visit)
    name, ds = _pick_array(path, arrays, key.lstrip("/") if key else None, "dataset")
    if ds.dtype.kind not in "iuf":
        raise EmbeddingError(f"{path}[{name}]: dataset of dtype {ds.dtype} is not numeric")
    return name, ds


def read_zarr(path: str, key: str | None) -> tuple[str, Any]:
    """A Zarr (v3 or v2) array, or one array of a group (``key`` = its path), read by chunks."""
    zarr = require("zarr", "zarr", f"{path}: reading Zarr")
    try:
        node = zarr.open(path, mode="r")
    except Exception as e:  # zarr raises several kinds for a missing or broken store
        raise EmbeddingError(f"{path}: is not a readable Zarr store ({type(e).__name__}: {e})") from e
    if hasattr(node, "shape"):
        name, arr = (key or "array"), node
    else:
        arrays = {p: a for p, a in node.arrays()} if hasattr(node, "arrays") else {}
        name, arr = _pick_array(path, arrays, key, "array")
    if len(arr.shape) != 2:
        return name, np.asarray(arr)  # the shape check then names the fix
    return name, RowReader(arr.shape, arr.dtype, lambda a, n: arr[a : a + n],
                           lambda rows: arr.get_orthogonal_selection((rows, slice(None))))


def read_hf_dataset(path: str, key: str | None, notes: list[str], columns: Sequence[str] | None,
                    exclude: Sequence[str]) -> tuple[str, Any]:
    """A Hugging Face ``datasets`` directory written by ``save_to_disk`` (``key`` = the column; for a DatasetDict,
    ``split/column``), read through its Arrow table with the column rules of :mod:`rankme.io.tabular`."""
    datasets = require("datasets", "datasets", f"{path}: reading a Hugging Face dataset")
    try:
        ds = datasets.load_from_disk(path)
    except Exception as e:
        raise EmbeddingError(f"{path}: is not a readable datasets directory ({type(e).__name__}: {e})") from e
    label = ""
    if isinstance(ds, datasets.DatasetDict):
        split, _, key = (key or "").partition("/") if key and "/" in key else (key or "", "", None)
        if split not in ds:
            if len(ds) != 1:
                raise EmbeddingError(f"{path}: holds splits {sorted(ds)}: choose one with --key SPLIT/COLUMN")
            split = next(iter(ds))
        ds, label = ds[split], f"{split}/"
    name, arr = choose_columns(path, arrow_columns(path, ds.data.table), key=key or None, columns=columns,
                               exclude=exclude, notes=notes)
    return label + name, arr


def read_lance(path: str, key: str | None, notes: list[str]) -> tuple[str, Any]:
    """A Lance table (LanceDB's storage): the vector column (a fixed-size list) is found by itself; ``key`` names
    another. Rows are read by batches."""
    lance = require("lance", "lance", f"{path}: reading a Lance table")
    pa = require("pyarrow", "parquet", f"{path}: reading a Lance table")
    try:
        ds = lance.dataset(path)
    except Exception as e:
        raise EmbeddingError(f"{path}: is not a readable Lance dataset ({type(e).__name__}: {e})") from e
    lists = [f.name for f in ds.schema if pa.types.is_fixed_size_list(f.type) or pa.types.is_list(f.type)]
    if key is None:
        if len(lists) != 1:
            raise EmbeddingError(f"{path}: {'no' if not lists else 'several'} vector columns {lists}: choose one "
                                 "with --key")
        key = lists[0]
    if key not in ds.schema.names:
        raise EmbeddingError(f"{path}: has no column {key!r}; columns: {ds.schema.names}")
    others = [c for c in ds.schema.names if c != key]
    if others:
        notes.append(f"{path}: scored the vector column {key!r}; ignored {others}")
    col = key

    def take(rows: np.ndarray) -> np.ndarray:
        return choose_columns(path, arrow_columns(path, ds.take(rows.tolist(), columns=[col])), key=col)[1]

    first = take(np.array([0])) if ds.count_rows() else np.zeros((0, 0))
    return key, RowReader((ds.count_rows(), first.shape[1]), np.float64,
                          lambda a, n: take(np.arange(a, a + n)), take)


def read_faiss(path: str) -> tuple[str, Any]:
    """The vectors stored in a FAISS index, reconstructed in chunks. Index types that keep only compressed codes
    (PQ, scalar quantisers, ...) are refused: their reconstruction is an approximation, and its RankMe would not
    be that of your vectors."""
    faiss = require("faiss", "faiss", f"{path}: reading a FAISS index")
    try:
        index = faiss.read_index(path)
    except Exception as e:  # faiss raises RuntimeError for anything unreadable
        raise EmbeddingError(f"{path}: is not a readable FAISS index ({str(e).splitlines()[0][:200]})") from e
    inner = faiss.downcast_index(index)
    while hasattr(inner, "index") and type(inner).__name__.startswith("IndexIDMap"):
        inner = faiss.downcast_index(inner.index)
    kind = type(inner).__name__
    if "Flat" not in kind or "PQ" in kind or "SQ" in kind:
        raise EmbeddingError(f"{path}: a {kind} index keeps compressed codes, not the vectors: its reconstruction "
                             "is approximate, so its RankMe would not be your embeddings'. Score the vectors the "
                             "index was built from, or an exact (Flat) index")
    if hasattr(inner, "make_direct_map"):
        inner.make_direct_map()  # IVF-Flat: rows by id
    n, d = int(inner.ntotal), int(inner.d)
    if n == 0:
        raise EmbeddingError(f"{path}: the index holds no vectors")
    return kind, RowReader((n, d), np.float32, lambda a, m: inner.reconstruct_n(a, m),
                           lambda rows: np.stack([inner.reconstruct(int(r)) for r in rows]) if rows.size
                           else np.zeros((0, d), np.float32), owner=index)
