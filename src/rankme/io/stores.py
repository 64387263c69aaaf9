"""Embeddings where they live at scale: HDF5, Zarr, Hugging Face ``datasets`` directories, Lance tables, FAISS
indexes. Each is behind its extra and read in chunks (rows stream; nothing is loaded whole unless the format
only offers that), with the same bad-input behaviour as the other formats.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rankme.core.errors import EmbeddingError, InputError, Note
from rankme.core.optional import require
from rankme.io.pick import pick_array
from rankme.io.tabular import arrow_columns, choose_columns

__all__ = ["DIRECTORY_FORMATS", "RowReader", "directory_format", "read_faiss", "read_hdf5", "read_hf_dataset",
           "read_lance", "read_zarr"]

DIRECTORY_FORMATS: dict[str, str] = {"zarr": "Zarr", "hf-dataset": "Hugging Face datasets", "lance": "Lance"}
"""The store directories :func:`directory_format` recognises → the name ``rankme score --help`` shows (their
readers: :data:`rankme.io.files.STORE_READERS`)."""


class RowReader:
    """An array-like over a store that reads rows on demand: ``shape``, ``dtype`` and ``[a:b]`` / ``[rows]``
    (sorted row indices), which is all the engine's streaming needs. An N-D reader (N ≠ 2) is refused by the
    shape check, or flattened to (N, -1) rows by :meth:`reshape` (``flatten=True``)."""

    def __init__(self, shape: tuple[int, ...], dtype: Any, read: Any, take: Any = None, owner: Any = None) -> None:
        self.shape, self.dtype = tuple(int(s) for s in shape), np.dtype(dtype)
        self._read, self._take = read, take
        self._owner = owner  # keeps the store object (e.g. a FAISS index) alive while rows are read
        self.ndim = len(self.shape)

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
        return _take_by_windows(self._read, rows, self[0:0])

    def __len__(self) -> int:
        return self.shape[0]

    def reshape(self, n: int, k: int) -> RowReader:
        """The rows flattened: ``reshape(shape[0], -1)`` (the only reshape offered)."""
        width = int(np.prod(self.shape[1:], dtype=np.int64))
        if n != self.shape[0] or k not in (-1, width):
            raise InputError(f"a store reader reshapes only to ({self.shape[0]}, -1)", param="k", names=("n",))

        def flat(block: np.ndarray) -> np.ndarray:
            return np.asarray(block).reshape(-1, width)

        return RowReader((n, width), self.dtype, lambda a, m: flat(self._read(a, m)),
                         None if self._take is None else (lambda rows: flat(self._take(rows))), owner=self)


def _take_by_windows(read: Any, rows: np.ndarray, empty: np.ndarray, window: int = 4096) -> np.ndarray:
    """Sorted ``rows`` read as contiguous blocks, each spanning at most ``window`` rows."""
    parts, i = [], 0
    while i < rows.size:
        j = int(np.searchsorted(rows, rows[i] + window, side="left"))
        first = int(rows[i])
        block = np.asarray(read(first, int(rows[j - 1]) - first + 1))
        parts.append(block[rows[i:j] - first])
        i = j
    return np.concatenate(parts) if parts else empty


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


def _rows_of(arr: Any, take: Any = None, owner: Any = None) -> RowReader:
    """A :class:`RowReader` over an array that slices by rows (an HDF5 dataset, a Zarr array)."""
    return RowReader(arr.shape, arr.dtype, lambda a, n: arr[a : a + n], take, owner=owner)


def _hdf5_key(h5py: Any, fh: Any, path: str, key: str, available: list[str]) -> Any:
    """The dataset ``key`` names, through soft and external links, or a one-line refusal saying why not."""
    link = fh.get(key, getlink=True) if key else None
    if link is None:
        raise EmbeddingError(f"{path}: has no dataset {key!r}; available: {available}", param="key", path=path)
    try:
        obj = fh[key]
    except (KeyError, OSError) as e:
        if isinstance(link, h5py.SoftLink):
            raise EmbeddingError(f"{path}: key={key!r} is a soft link to {link.path!r}, which does not exist; "
                                 f"available: {available}", param="key", path=path) from e
        if isinstance(link, h5py.ExternalLink):
            raise EmbeddingError(f"{path}: key={key!r} is an external link to {link.filename}:{link.path}, "
                                 f"which cannot be opened ({str(e).splitlines()[0]}); put that file next to this "
                                 "one", param="key", path=path) from e
        raise EmbeddingError(f"{path}: key={key!r} cannot be read ({e})", param="key", path=path) from e
    if not isinstance(obj, h5py.Dataset):
        raise EmbeddingError(f"{path}: key={key!r} is a group, not a dataset; available: {available}", param="key",
                             path=path)
    return obj


def _hdf5_missing(h5py: Any, path: str, ds: Any, fill: Any) -> tuple[str, str] | None:
    """What of dataset ``ds`` HDF5 would read as its fill value because it was never written (and the fix), or
    None: the rows of
    a virtual dataset's missing source file or dataset, chunks never allocated, or the trailing rows that all equal
    the fill value (a dataset created at its final size and only partly filled; HDF5 keeps no record of which rows
    were written, so these rows are the evidence)."""
    n = int(ds.shape[0]) if ds.ndim else 0
    if n == 0:
        return None
    if ds.is_virtual:
        for vs in ds.virtual_sources():
            found = [f for f in (Path(path).resolve().parent / vs.file_name, Path(vs.file_name)) if f.is_file()]
            try:
                with h5py.File(path if vs.file_name == "." else found[0], "r") as fh:
                    ok = vs.dset_name in fh
            except (OSError, IndexError):
                ok = False
            if not ok:
                (a, *_), (b, *_) = vs.vspace.get_select_bounds()
                return (f"rows {a}..{b} of virtual dataset {ds.name.lstrip('/')!r} come from {vs.file_name} "
                        f"[{vs.dset_name}], which is missing, and read as the fill value {fill!r}",
                        "put that file next to this one")
        return None
    if ds.chunks is not None:
        grid = [-(-int(s) // int(c)) for s, c in zip(ds.shape, ds.chunks, strict=True)]
        total = int(np.prod(grid, dtype=np.int64))
        stored = ds.id.get_num_chunks()
        if stored < total:
            have = {tuple(ds.id.get_chunk_info(i).chunk_offset) for i in range(stored)}
            first = next(ix for ix in np.ndindex(*grid)
                         if tuple(i * size for i, size in zip(ix, ds.chunks, strict=True)) not in have)
            row = first[0] * ds.chunks[0]
            return (f"{total - stored} of {total} chunks of dataset {ds.name.lstrip('/')!r} (first: chunk {first}, "
                    f"rows from {row}) were never written and read as the fill value {fill!r}", "write them")
    last = n
    while last > 0:
        block = np.asarray(ds[max(0, last - 4096) : last]).reshape(min(last, 4096), -1)
        unwritten = np.all(block == np.asarray(fill), axis=1)
        if not unwritten.all():
            last -= int(np.argmin(unwritten[::-1]))
            break
        last -= block.shape[0]
    if last == n:
        return None
    return (f"the last {n - last} of {n} rows of dataset {ds.name.lstrip('/')!r} (rows {last}..{n - 1}) all read "
            f"as the fill value {fill!r}, as rows never written do (a dataset created at its final size and only "
            "partly filled?)", "write only the rows you have")


def read_hdf5(path: str, key: str | None, notes: list[str] | None = None, *,
              fill_missing: bool = False) -> tuple[str, Any]:
    """An HDF5 dataset, read by chunks: ``key`` is its path in the file (soft and external links are followed);
    by default the one the rule of :func:`~rankme.io.pick.pick_array` picks.

    Rows never written read as the dataset's fill value (:func:`_hdf5_missing` says how they are found): that is
    an error naming the dataset and rows, unless ``fill_missing`` (CLI ``--fill-missing``) accepts the fill value,
    with a note, as for a Zarr chunk missing from its store.
    """
    h5py = require("h5py", "hdf5", "reading HDF5", path=path)
    notes = [] if notes is None else notes
    try:
        fh = h5py.File(path, "r")
    except OSError as e:
        raise EmbeddingError(f"{path}: is not a readable HDF5 file ({e})", path=path) from e
    try:  # a refusal closes the file (it could not be rewritten while the error is alive)
        return _hdf5_dataset(h5py, fh, path, key, notes, fill_missing)
    except BaseException:
        fh.close()
        raise


def _hdf5_dataset(h5py: Any, fh: Any, path: str, key: str | None, notes: list[str],
                  fill_missing: bool) -> tuple[str, Any]:
    arrays: dict[str, Any] = {}

    def visit(name: str, obj: Any) -> None:  # returning anything but None would stop the walk
        if isinstance(obj, h5py.Dataset):
            arrays[name] = obj

    fh.visititems(visit)
    if key is not None and key.strip("/"):
        name = key.strip("/")
        ds = _hdf5_key(h5py, fh, path, name, sorted(arrays))
    else:
        name = pick_array(path, arrays, None, lambda k: tuple(arrays[k].shape), what="dataset", notes=notes)
        ds = arrays[name]
    if ds.dtype.kind not in "iuf":
        raise EmbeddingError(f"{path}[{name}]: dataset of dtype {ds.dtype} is not numeric", path=path)
    missing = _hdf5_missing(h5py, path, ds, np.asarray(ds.fillvalue).tolist())
    if missing is not None:
        what, fix = missing
        if not fill_missing:
            raise EmbeddingError(f"{path}: {what}: {fix}, or pass fill_missing=True if they are data",
                                 names=("fill_missing",), path=path)
        notes.append(Note(f"{path}: {what} (accepted: fill_missing=True)", names=("fill_missing",), path=path))
    return name, _rows_of(ds, owner=fh)


def _missing_chunks(root: Path, arr: Any) -> tuple[list[tuple[int, ...]], int]:
    """Chunk coordinates (shards, for a sharded array) of ``arr`` whose object is absent from the store, and the
    number of chunks."""
    storage = getattr(arr, "shards", None) or arr.chunks
    grid = [-(-int(s) // int(c)) for s, c in zip(arr.shape, storage, strict=True)]
    base = root / arr.path if arr.path else root
    present = {f.relative_to(base).as_posix() for f in base.rglob("*") if f.is_file()}
    missing = [c for c in np.ndindex(*grid) if arr.metadata.encode_chunk_key(c) not in present]
    return missing, int(np.prod(grid, dtype=np.int64))


def read_zarr(path: str, key: str | None, notes: list[str] | None = None, *,
              fill_missing: bool = False) -> tuple[str, Any]:
    """A Zarr (v3 or v2) array, or one array of a group, however deeply nested (``key`` = its path, e.g.
    ``enc/layer1/emb``; by default the one array), read by chunks.

    A chunk missing from the store would read as the array's fill value: that is an error naming the array and
    chunk, unless ``fill_missing`` (CLI ``--fill-missing``) accepts the fill value (Zarr leaves out chunks whose
    values all equal it), with a note.
    """
    zarr = require("zarr", "zarr", "reading Zarr", path=path)
    notes = [] if notes is None else notes
    try:
        node = zarr.open(path, mode="r")
    except Exception as e:  # zarr raises several kinds for a missing or broken store
        raise EmbeddingError(f"{path}: is not a readable Zarr store ({type(e).__name__}: {e})", path=path) from e
    if hasattr(node, "shape"):
        name, arr = "array", node
        if key is not None and key.strip("/"):
            notes.append(Note(f"{path}: key={key!r} ignored: the store is one array", names=("key",), path=path))
    else:
        arrays = {p: a for p, a in node.members(max_depth=None) if hasattr(a, "shape")}
        name = pick_array(path, arrays, key.strip("/") if key is not None else None, lambda k: tuple(arrays[k].shape),
                          notes=notes)
        arr = arrays[name]
    missing, total = _missing_chunks(Path(path), arr)
    if missing:
        key_of = arr.metadata.encode_chunk_key(missing[0])
        what = f"{len(missing)} of {total} chunks of array {name!r} (first: chunk {missing[0]}, key {key_of!r})"
        fill = np.asarray(arr.fill_value).tolist()
        if not fill_missing:
            raise EmbeddingError(f"{path}: {what} are missing from the store and would read as the fill value "
                                 f"{fill!r}: restore them, or pass fill_missing=True if they were left out because "
                                 "all their values equal the fill value (Zarr does not write such chunks)",
                                 names=("fill_missing",), path=path)
        notes.append(Note(f"{path}: {len(missing)} chunk(s) of array {name!r} missing from the store read as the "
                          f"fill value {fill!r} (fill_missing=True)", names=("fill_missing",), path=path))
    return name, _rows_of(arr, lambda rows: arr.get_orthogonal_selection((rows, *[slice(None)] * (arr.ndim - 1))))


def read_hf_dataset(path: str, key: str | None, notes: list[str], columns: Sequence[str] | None,
                    exclude: Sequence[str]) -> tuple[str, Any]:
    """A Hugging Face ``datasets`` directory written by ``save_to_disk``, read through its Arrow table with the
    column rules of :mod:`rankme.io.tabular`. ``key`` is a column; for a ``DatasetDict`` it is ``split/column``, a
    split (its column found by those rules), or, with one split, a column of it. A ``key`` is always honoured
    (or refused, naming the splits or columns)."""
    datasets = require("datasets", "datasets", "reading a Hugging Face dataset", path=path)
    try:
        ds = datasets.load_from_disk(path)
    except Exception as e:
        raise EmbeddingError(f"{path}: is not a readable datasets directory ({type(e).__name__}: {e})",
                             path=path) from e
    label = ""
    if isinstance(ds, datasets.DatasetDict):
        splits = sorted(ds)
        head, sep, tail = (key or "").partition("/")
        if key is not None and sep and head in ds:
            split, key = head, tail
        elif key is not None and key in ds:
            split, key = key, None
        elif len(ds) == 1:
            split = splits[0]
        else:
            raise EmbeddingError(f"{path}: holds splits {splits}: choose one with key=SPLIT/COLUMN (or "
                                 "key=SPLIT)", param="key", path=path)
        ds, label = ds[split], f"{split}/"
    name, arr = choose_columns(path, arrow_columns(path, ds.data.table), key=key or None, columns=columns,
                               exclude=exclude, notes=notes)
    return label + name, arr


def read_lance(path: str, key: str | None, notes: list[str]) -> tuple[str, Any]:
    """A Lance table (LanceDB's storage): the vector column (a fixed-size list) is found by itself; ``key`` names
    another. Rows are read by batches."""
    lance = require("lance", "lance", "reading a Lance table", path=path)
    pa = require("pyarrow", "parquet", "reading a Lance table", path=path)
    try:
        ds = lance.dataset(path)
    except Exception as e:
        raise EmbeddingError(f"{path}: is not a readable Lance dataset ({type(e).__name__}: {e})", path=path) from e
    lists = [f.name for f in ds.schema if pa.types.is_fixed_size_list(f.type) or pa.types.is_list(f.type)]
    if key is None:
        if len(lists) != 1:
            raise EmbeddingError(f"{path}: {'no' if not lists else 'several'} vector columns {lists}: choose one "
                                 "with key=", param="key", path=path)
        key = lists[0]
    if key not in ds.schema.names:
        raise EmbeddingError(f"{path}: has no column {key!r}; columns: {ds.schema.names}", param="key", path=path)
    others = [c for c in ds.schema.names if c != key]
    if others:
        notes.append(f"{path}: scored the vector column {key!r}; ignored {others}")
    col = key

    def take(rows: np.ndarray) -> np.ndarray:
        return choose_columns(path, arrow_columns(path, ds.take(rows.tolist(), columns=[col])), key=col)[1]

    first = take(np.array([0])) if ds.count_rows() else np.zeros((0, 0))
    return key, RowReader((ds.count_rows(), first.shape[1]), np.float64,
                          lambda a, n: take(np.arange(a, a + n)), take)


def _ivf_flat_rows(faiss: Any, ivf: Any, path: str) -> tuple[int, Any, Any]:
    """Rows of an IVF-Flat index straight from its inverted lists, in order of their ids (any ids: sequential,
    ``add_with_ids``, or with gaps after ``remove_ids``), without a direct map. Returns (n, read, take)."""
    d, inv = int(ivf.d), ivf.invlists
    if int(ivf.code_size) != 4 * d:
        raise EmbeddingError(f"{path}: an {type(ivf).__name__} whose codes are not float32 vectors cannot be read",
                             path=path)
    sizes = np.array([inv.list_size(i) for i in range(ivf.nlist)], dtype=np.int64)
    views: dict[int, np.ndarray] = {}
    ids = []
    for i in np.flatnonzero(sizes):
        n_i = int(sizes[i])
        views[int(i)] = faiss.rev_swig_ptr(inv.get_codes(int(i)), n_i * 4 * d).view(np.float32).reshape(n_i, d)
        ids.append(faiss.rev_swig_ptr(inv.get_ids(int(i)), n_i).copy())
    order = np.argsort(np.concatenate(ids) if ids else np.zeros(0, np.int64), kind="stable")
    list_of = np.repeat(np.arange(sizes.size), sizes)[order]
    offset = (np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes))[order]

    def take(rows: np.ndarray) -> np.ndarray:
        out = np.empty((rows.size, d), np.float32)
        lists, offs = list_of[rows], offset[rows]
        by_list = np.argsort(lists, kind="stable")
        cuts = np.flatnonzero(np.diff(lists[by_list])) + 1
        for group in np.split(by_list, cuts) if rows.size else []:
            out[group] = views[int(lists[group[0]])][offs[group]]
        return out

    return int(sizes.sum()), (lambda a, m: take(np.arange(a, a + m))), take


def read_faiss(path: str) -> tuple[str, Any]:
    """The vectors stored in a FAISS index, read in chunks (an IVF-Flat index: from its inverted lists, rows in
    order of their ids, so ``add_with_ids`` and ``remove_ids`` are read right). Index types that keep only
    compressed codes (PQ, scalar quantisers, ...) are refused: their reconstruction is an approximation, and its
    RankMe would not be that of your vectors."""
    faiss = require("faiss", "faiss", "reading a FAISS index", path=path)
    try:
        index = faiss.read_index(path)
    except Exception as e:  # faiss raises RuntimeError for anything unreadable
        raise EmbeddingError(f"{path}: is not a readable FAISS index ({str(e).splitlines()[0][:200]})",
                             path=path) from e
    inner = faiss.downcast_index(index)
    while hasattr(inner, "index") and type(inner).__name__.startswith("IndexIDMap"):
        inner = faiss.downcast_index(inner.index)
    kind = type(inner).__name__
    if "Flat" not in kind or "PQ" in kind or "SQ" in kind:
        raise EmbeddingError(f"{path}: a {kind} index keeps compressed codes, not the vectors: its reconstruction "
                             "is approximate, so its RankMe would not be your embeddings'. Score the vectors the "
                             "index was built from, or an exact (Flat) index", path=path)
    d = int(inner.d)
    if hasattr(inner, "invlists"):
        n, read, take = _ivf_flat_rows(faiss, inner, path)
    else:
        n, read, take = int(inner.ntotal), inner.reconstruct_n, None
    if n == 0:
        raise EmbeddingError(f"{path}: the index holds no vectors", path=path)
    return kind, RowReader((n, d), np.float32, read, take, owner=index)
