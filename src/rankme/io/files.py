"""Read embedding matrices from files without loading more than needed, and never executing code.

Formats: ``.npy`` (memory-mapped), ``.npz``, ``.pt``/``.pth`` (``torch.load(weights_only=True)``),
``.safetensors``, tables (``.parquet``, ``.csv``, ``.tsv``, Arrow IPC / Feather: see :mod:`rankme.io.tabular` for
which columns are read), stores read by chunks (HDF5, Zarr, Hugging Face ``datasets`` directories, Lance tables,
FAISS indexes: :mod:`rankme.io.stores`) and ``-`` for a ``.npy`` on standard input. Only regular files (and those
store directories) are read.
"""

from __future__ import annotations

import io
import pickle
import sys
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rankme.core.arrays import as_embeddings, check_shape, numpy_dtype_of
from rankme.core.errors import EmbeddingError, Note
from rankme.core.optional import has_module, require
from rankme.io.pick import pick_array
from rankme.io.primitives import (
    NPY_MAGIC,
    check_regular,
    file_error,
    load_npy,
    npz_shape,
    read_rows,
    tensors_by_path,
)
from rankme.io.stdin import read_stdin
from rankme.io.stores import (
    DIRECTORY_FORMATS,
    directory_format,
    read_faiss,
    read_hdf5,
    read_hf_dataset,
    read_lance,
    read_zarr,
)
from rankme.io.tabular import choose_columns, read_arrow, refuse_compressed
from rankme.io.text_tables import read_csv

__all__ = ["READERS", "STORE_FORMATS", "STORE_READERS", "SUFFIXES", "EmbeddingSource", "ReadRequest", "Reader",
           "file_fingerprint", "load_embeddings", "strip_suffix"]

TABLE_SUFFIXES = (".parquet", ".csv", ".tsv", ".arrow", ".feather", ".ipc")
"""Tables, read with the column rules of :mod:`rankme.io.tabular`."""
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors", ".bin")
"""Checkpoint suffixes (``rankme select --factory``)."""


def strip_suffix(name: str) -> str:
    """A file name without a known embedding, store (``.zarr``, ``.lance``) or checkpoint suffix.

    Examples:
        >>> strip_suffix("lr=0.1.npy"), strip_suffix("epoch=3.ckpt"), strip_suffix("lr=0.5")
        ('lr=0.1', 'epoch=3', 'lr=0.5')
        >>> strip_suffix("lr=0.1.zarr")
        'lr=0.1'
    """
    for suffix in (*SUFFIXES, *CHECKPOINT_SUFFIXES, ".zarr", ".lance"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def file_fingerprint(path: str | Path, full_hash_limit: int = 1 << 30) -> str:
    """A content hash of a file, or of a directory (a store: Zarr, Hugging Face dataset, Lance) as its files'
    relative paths and contents; over ``full_hash_limit`` bytes in all: paths, sizes and mtimes. For cache keys.

    Examples:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "a.txt"; _ = p.write_text("hi")
        >>> file_fingerprint(p)[:12], file_fingerprint(p.parent) == file_fingerprint(p.parent)
        ('8f434346648f', True)
    """
    import functools
    import hashlib

    p = Path(path)
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    stats = [f.stat() for f in files]
    h = hashlib.sha256()
    if sum(st.st_size for st in stats) > full_hash_limit:
        meta = (f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}" for f, st in zip(files, stats, strict=True))
        return hashlib.sha256("\n".join(meta).encode()).hexdigest()
    for f, st in zip(files, stats, strict=True):
        if f != p:  # a directory's file: its relative path and size delimit its bytes
            h.update(f"{f.relative_to(p).as_posix()}\0{st.st_size}\0".encode())
        with open(f, "rb") as fh:
            for block in iter(functools.partial(fh.read, 1 << 20), b""):
                h.update(block)
    return h.hexdigest()


@dataclass
class EmbeddingSource:
    """A 2-D embedding array (possibly memory-mapped) with its name and notes from loading.

    Examples:
        >>> src = EmbeddingSource("x", np.ones((5, 2)))
        >>> src.n_rows, src.dim, [c.shape for c in src.chunks(chunk_rows=2)]
        (5, 2, [(2, 2), (2, 2), (1, 2)])
    """

    name: str
    array: Any
    notes: list[str] = field(default_factory=list)
    path: str | None = None
    """The file (or store) read, when there is one: where :class:`EmbeddingError` says a bad row lies."""

    def __post_init__(self) -> None:
        self.array = as_embeddings(self.array)
        numpy_dtype_of(self.array)
        check_shape(tuple(self.array.shape))

    @property
    def n_rows(self) -> int:
        return int(self.array.shape[0])

    @property
    def dim(self) -> int:
        return int(self.array.shape[1])

    def chunks(self, chunk_rows: int, rows: np.ndarray | None = None) -> Iterator[Any]:
        """Yield consecutive row blocks (or blocks of the sorted row ``rows``), each at most ``chunk_rows``.

        A C-ordered memory-mapped ``.npy`` is read sequentially into one reused buffer, so resident memory stays
        at one chunk however large the file is (pages touched through a memmap would count as resident).
        """
        arr = self.array
        if rows is None and isinstance(arr, np.memmap) and arr.flags.c_contiguous and arr.filename:
            yield from read_rows(str(arr.filename), int(arr.offset), arr.dtype, arr.shape, chunk_rows)
        elif rows is None:
            for start in range(0, self.n_rows, chunk_rows):
                yield arr[start : start + chunk_rows]
        else:
            for start in range(0, len(rows), chunk_rows):
                yield arr[rows[start : start + chunk_rows]]


def _flatten(arr: Any, name: str, flatten: bool, notes: list[str]) -> Any:
    if flatten and len(arr.shape) > 2:
        notes.append(f"{name}: flattened shape {tuple(arr.shape)} to ({arr.shape[0]}, -1)")
        return arr.reshape(arr.shape[0], -1)
    return arr


def _load_npz(req: ReadRequest) -> tuple[str, Any]:
    path = req.path
    try:
        with np.load(path, allow_pickle=False) as npz:
            name = pick_array(path, npz.files, req.key, lambda k: npz_shape(npz, k), notes=req.notes)
            return name, npz[name]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError) as e:
        if isinstance(e, EmbeddingError):
            raise
        raise file_error(path, "is not a readable .npz archive: truncated or corrupt", e) from e


def _load_pt(req: ReadRequest) -> tuple[str, Any]:
    path = req.path
    torch = require("torch", "torch", "reading .pt files", path=path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise file_error(
            path,
            "would run code or build arbitrary objects when unpickled; rankme only loads tensors "
            "(torch.load(weights_only=True)). Save plain tensors, e.g. torch.save(z, path) or a dict of tensors",
            e,
        ) from e
    except (RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
        raise file_error(path, "is not a readable PyTorch file: truncated or corrupt", e) from e
    if isinstance(obj, torch.Tensor):
        return "tensor", obj
    if isinstance(obj, dict):
        tensors = tensors_by_path(obj, torch.Tensor)  # nested dicts: keys "out/emb"; key= may also say "out.emb"
        dotted = {k.replace("/", "."): k for k in tensors}
        key = None if req.key is None else dotted.get(req.key, req.key.strip("/"))
        name = pick_array(path, tensors, key, lambda k: tuple(tensors[k].shape), notes=req.notes)
        return name, tensors[name]
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(t, torch.Tensor) for t in obj):
        raise file_error(path, f"holds a {type(obj).__name__} of {len(obj)} tensors, not one matrix: if they are batches "
                          "of rows, save them as one, torch.save(torch.cat(batches), path)")
    raise file_error(path, f"holds a {type(obj).__name__}, not a tensor or a dict of tensors")


def _load_safetensors(req: ReadRequest) -> tuple[str, Any]:
    path = req.path
    safe_open = require("safetensors", "safetensors", "reading .safetensors files", path=path).safe_open
    framework = "pt" if "torch" in sys.modules or has_module("torch") else "np"
    try:
        with safe_open(path, framework=framework) as fh:
            name = pick_array(path, fh.keys(), req.key, lambda k: tuple(fh.get_slice(k).get_shape()),
                              notes=req.notes)
            return name, fh.get_tensor(name)
    except EmbeddingError:
        raise
    except Exception as e:  # safetensors raises its own SafetensorError, OSError, or ValueError
        raise file_error(path, "is not a readable .safetensors file: truncated or corrupt", e) from e


def _load_csv(req: ReadRequest) -> tuple[str, Any]:
    path, notes = req.path, req.notes
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as e:
        raise file_error(path, "is not readable", e) from e
    cols, line_of = read_csv(path, data, tab=path.lower().endswith(".tsv"), notes=notes)
    if all(c.text and c.problem is None for c in cols):
        raise file_error(path, f"has no numeric columns (columns: {[c.name for c in cols][:8]}); if its delimiter is not "
                          "one of , ; tab |, convert it first")
    return choose_columns(path, cols, key=req.key, columns=req.columns, exclude=req.exclude, notes=notes,
                          line_of=line_of)


@dataclass
class ReadRequest:
    """What every reader of :data:`READERS` gets: the path, ``key``, the notes to add to, and the table and Zarr
    options."""

    path: str
    key: str | None = None
    notes: list[str] = field(default_factory=list)
    columns: Sequence[str] | None = None
    exclude: Sequence[str] = ()
    fill_missing: bool = False

    def one_array(self, name: str | None, arr: Any) -> tuple[str | None, Any]:
        """What a format that holds one array read: ``key`` is noted as ignored."""
        if self.key is not None:
            self.notes.append(Note(f"{self.path}: key={self.key!r} ignored: a {Path(self.path).suffix.lower()} "
                                   "holds one array", names=("key",), path=self.path))
        return name, arr


Reader = Callable[[ReadRequest], tuple[str | None, Any]]
"""A reader: the request in, (the name of the array read or ``None``, the array or row reader) out."""


def _read_arrow(req: ReadRequest) -> tuple[str, Any]:
    fmt = "parquet" if req.path.lower().endswith(".parquet") else "arrow"
    return read_arrow(req.path, fmt, req.key, req.notes, req.columns, req.exclude)


READERS: dict[str, Reader] = {
    ".npy": lambda r: r.one_array(None, load_npy(r.path, r.path)),
    ".npz": _load_npz,
    ".pt": _load_pt,
    ".pth": _load_pt,
    ".safetensors": _load_safetensors,
    ".parquet": _read_arrow,
    ".csv": _load_csv,
    ".tsv": _load_csv,
    ".h5": lambda r: read_hdf5(r.path, r.key, r.notes, fill_missing=r.fill_missing),
    ".hdf5": lambda r: read_hdf5(r.path, r.key, r.notes, fill_missing=r.fill_missing),
    ".arrow": _read_arrow,
    ".feather": _read_arrow,
    ".ipc": _read_arrow,
    ".faiss": lambda r: r.one_array(*read_faiss(r.path)),
}
"""THE suffix → reader table of embedding files (one signature: :data:`Reader`)."""
STORE_READERS: dict[str, Reader] = {
    "zarr": lambda r: read_zarr(r.path, r.key, r.notes, fill_missing=r.fill_missing),
    "hf-dataset": lambda r: read_hf_dataset(r.path, r.key, r.notes, r.columns, r.exclude),
    "lance": lambda r: read_lance(r.path, r.key, r.notes),
}
"""Store directories (:func:`rankme.io.stores.directory_format`) → reader."""
SUFFIXES = tuple(READERS)
"""Embedding-file suffixes ``rankme score`` reads (the one list; folders are searched for these)."""
STORE_FORMATS = tuple(DIRECTORY_FORMATS[kind] for kind in STORE_READERS)
"""The names of the store directories ``rankme score`` reads, from :data:`STORE_READERS` (``--help`` lists them)."""


def load_embeddings(path: str | Path, *, key: str | None = None, flatten: bool = False,
                    columns: Sequence[str] | None = None, exclude: Sequence[str] = (),
                    fill_missing: bool = False) -> EmbeddingSource:
    """Open an embedding file as an :class:`EmbeddingSource` (``.npy`` stays memory-mapped).

    Args:
        path: a file (suffix in :data:`SUFFIXES`), or ``"-"`` for a ``.npy`` on standard input.
        key: the array (``.npz``, ``.pt``: in nested dicts ``out/emb`` or ``out.emb``, ``.safetensors``) or list
            column (tables) to read.
        flatten: reshape >2-D arrays to (N, -1) instead of refusing them.
        columns: tables: exactly these numeric columns.
        exclude: tables: leave these columns out.
        fill_missing: Zarr and HDF5: read chunks missing from the store (HDF5: rows never written) as the fill
            value instead of refusing (with a note).

    Returns:
        The source, with notes on anything excluded or changed.

    Raises:
        EmbeddingError: naming the file and what to do, for any file that cannot be read as embeddings.
    """
    p = str(path)
    notes: list[str] = []
    if key is not None and (columns or exclude):
        raise EmbeddingError(f"{p}: key= picks one list column; it cannot be combined with columns=/exclude=",
                             param="key", names=("columns", "exclude"), path=p)
    if p == "-":
        data = read_stdin()
        if not data.startswith(NPY_MAGIC):
            raise EmbeddingError("<stdin>: standard input does not hold a .npy array (it starts with "
                                 f"{data[:8]!r}); 'rankme score -' reads .npy only: save other formats to a file",
                                 path="<stdin>")
        arr = load_npy("<stdin>", io.BytesIO(data))
        return EmbeddingSource("<stdin>", _flatten(arr, "<stdin>", flatten, notes), notes, path="<stdin>")
    if not Path(p).exists():
        raise EmbeddingError(f"{p}: no such file", path=p)
    req = ReadRequest(p, key, notes, columns, exclude, fill_missing)
    if Path(p).is_dir():
        kind = directory_format(Path(p))
        if kind is None:
            raise EmbeddingError(f"{p}: is a directory, not an embedding store (Zarr, Hugging Face dataset, Lance); "
                                 "to score the files in it as one matrix, read them as shards "
                                 "(rankme.io.shards.open_shards)",
                                 path=p)
        return _source(p, *STORE_READERS[kind](req), flatten, notes)
    check_regular(p)
    suffix = Path(p).suffix.lower()
    if (columns or exclude) and suffix not in TABLE_SUFFIXES:
        raise EmbeddingError(f"{p}: columns=/exclude= apply to tables ({', '.join(TABLE_SUFFIXES)})",
                             param="columns" if columns else "exclude", names=("columns", "exclude"), path=p)
    if suffix not in READERS:
        refuse_compressed(p)
        raise EmbeddingError(f"{p}: unknown file type {suffix!r}; supported: {', '.join(SUFFIXES)} and '-' (stdin)",
                             path=p)
    return _source(p, *READERS[suffix](req), flatten, notes)


def _source(p: str, name: str | None, arr: Any, flatten: bool, notes: list[str]) -> EmbeddingSource:
    label = p if name is None or name in ("tensor",) else f"{p}[{name}]"
    try:
        return EmbeddingSource(label, _flatten(arr, label, flatten, notes), notes, path=p)
    except EmbeddingError as e:
        raise e.said_of(label, path=p) from e
