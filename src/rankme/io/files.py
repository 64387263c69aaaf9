"""Read embedding matrices from files without loading more than needed, and never executing code.

Formats: ``.npy`` (memory-mapped), ``.npz``, ``.pt``/``.pth`` (``torch.load(weights_only=True)``),
``.safetensors``, ``.parquet`` (numeric columns, or one list column), ``.csv`` (numeric columns) and ``-`` for
a ``.npy`` on standard input.
"""

from __future__ import annotations

import csv
import io
import pickle
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rankme.core.optional import has_module, require
from rankme.core.validation import EmbeddingError, check_shape, numpy_dtype_of

__all__ = ["SUFFIXES", "EmbeddingSource", "file_fingerprint", "load_embeddings", "strip_suffix"]

SUFFIXES = (".npy", ".npz", ".pt", ".pth", ".safetensors", ".parquet", ".csv")
"""Embedding-file suffixes ``rankme score`` reads (the one list; folders are searched for these)."""
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors", ".bin")
"""Checkpoint suffixes (``rankme select --factory``)."""


def strip_suffix(name: str) -> str:
    """A file name without a known embedding or checkpoint suffix.

    >>> strip_suffix("lr=0.1.npy"), strip_suffix("epoch=3.ckpt"), strip_suffix("lr=0.5")
    ('lr=0.1', 'epoch=3', 'lr=0.5')
    """
    for suffix in (*SUFFIXES, *CHECKPOINT_SUFFIXES):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def file_fingerprint(path: str | Path, full_hash_limit: int = 1 << 30) -> str:
    """A content hash of a file (files over ``full_hash_limit`` bytes: path, size and mtime), for cache keys.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "a.txt"; _ = p.write_text("hi")
    >>> file_fingerprint(p)[:12]
    '8f434346648f'
    """
    import hashlib

    p = Path(path)
    st = p.stat()
    if st.st_size > full_hash_limit:
        return hashlib.sha256(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class EmbeddingSource:
    """A 2-D embedding array (possibly memory-mapped) with its name and notes from loading.

    >>> src = EmbeddingSource("x", np.ones((5, 2)))
    >>> src.n_rows, src.dim, [c.shape for c in src.chunks(chunk_rows=2)]
    (5, 2, [(2, 2), (2, 2), (1, 2)])
    """

    name: str
    array: Any
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
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
            yield from _read_rows(str(arr.filename), int(arr.offset), arr.dtype, arr.shape, chunk_rows)
        elif rows is None:
            for start in range(0, self.n_rows, chunk_rows):
                yield arr[start : start + chunk_rows]
        else:
            for start in range(0, len(rows), chunk_rows):
                yield arr[rows[start : start + chunk_rows]]


def _read_rows(path: str, offset: int, dtype: np.dtype, shape: tuple[int, ...], chunk_rows: int) -> Iterator[Any]:
    n = int(shape[0])
    row_items = int(np.prod(shape[1:], dtype=np.int64))
    buf = np.empty((min(chunk_rows, n), *shape[1:]), dtype=dtype)
    with open(path, "rb", buffering=0) as fh:
        fh.seek(offset)
        for start in range(0, n, chunk_rows):
            m = min(chunk_rows, n - start)
            view = buf[:m]
            mem = memoryview(view.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
            got, want = 0, m * row_items * dtype.itemsize
            while got < want:
                step = fh.readinto(mem[got:])
                if not step:
                    raise EmbeddingError(f"{path}: file ended early near row {start} (truncated .npy)")
                got += step
            yield view


def _fail(path: str, what: str, err: BaseException | None = None) -> EmbeddingError:
    detail = f" ({type(err).__name__}: {err})" if err is not None else ""
    return EmbeddingError(f"{path}: {what}{detail}")


def _pick(path: str, arrays: dict[str, Any], key: str | None) -> tuple[str, Any]:
    if not arrays:
        raise _fail(path, "holds no arrays")
    if key is not None:
        if key not in arrays:
            raise _fail(path, f"has no array named {key!r}; available: {sorted(arrays)}")
        return key, arrays[key]
    if len(arrays) == 1:
        return next(iter(arrays.items()))
    raise _fail(path, f"holds several arrays {sorted(arrays)}: choose one with --key (key=)")


def _flatten(arr: Any, name: str, flatten: bool, notes: list[str]) -> Any:
    if flatten and len(arr.shape) > 2:
        notes.append(f"{name}: flattened shape {tuple(arr.shape)} to ({arr.shape[0]}, -1)")
        return arr.reshape(arr.shape[0], -1)
    return arr


def _load_npy(path: str, data: Any) -> Any:
    try:
        return np.load(data, mmap_mode="r" if isinstance(data, str) else None, allow_pickle=False)
    except (ValueError, OSError, EOFError, pickle.UnpicklingError) as e:
        msg = str(e)
        if "pickle" in msg or "Object arrays" in msg or "Python objects" in msg:
            raise _fail(path, "is not a plain numeric .npy (it would need unpickling); refusing to load it") from e
        raise _fail(path, "is not a readable .npy array: truncated or corrupt", e) from e


def _load_npz(path: str, key: str | None) -> tuple[str, Any]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            name, _ = _pick(path, {k: None for k in npz.files}, key)
            return name, npz[name]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError) as e:
        if isinstance(e, EmbeddingError):
            raise
        raise _fail(path, "is not a readable .npz archive: truncated or corrupt", e) from e


def _load_pt(path: str, key: str | None) -> tuple[str, Any]:
    torch = require("torch", "torch", f"{path}: reading .pt files")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise _fail(
            path,
            "would run code or build arbitrary objects when unpickled; rankme only loads tensors "
            "(torch.load(weights_only=True)). Save plain tensors, e.g. torch.save(z, path) or a dict of tensors",
            e,
        ) from e
    except (RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
        raise _fail(path, "is not a readable PyTorch file: truncated or corrupt", e) from e
    if isinstance(obj, torch.Tensor):
        return "tensor", obj
    if isinstance(obj, dict):
        tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        return _pick(path, tensors, key)
    raise _fail(path, f"holds a {type(obj).__name__}, not a tensor or a dict of tensors")


def _load_safetensors(path: str, key: str | None) -> tuple[str, Any]:
    safe_open = require("safetensors", "safetensors", f"{path}: reading .safetensors files").safe_open
    framework = "pt" if "torch" in sys.modules or has_module("torch") else "np"
    try:
        with safe_open(path, framework=framework) as fh:
            name, _ = _pick(path, {k: None for k in fh.keys()}, key)
            return name, fh.get_tensor(name)
    except EmbeddingError:
        raise
    except Exception as e:  # safetensors raises its own SafetensorError, OSError, or ValueError
        raise _fail(path, "is not a readable .safetensors file: truncated or corrupt", e) from e


def _load_parquet(path: str, key: str | None, notes: list[str]) -> tuple[str, Any]:
    pa = require("pyarrow", "parquet", f"{path}: reading Parquet files")
    pq = require("pyarrow.parquet", "parquet", f"{path}: reading Parquet files")
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError for corrupt files
        raise _fail(path, "is not a readable Parquet file", e) from e
    lists = [f.name for f in table.schema if pa.types.is_list(f.type) or pa.types.is_fixed_size_list(f.type)
             or pa.types.is_large_list(f.type)]
    numeric = [f.name for f in table.schema if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)]
    if key is not None or (lists and not numeric):
        name, _ = _pick(path, {c: None for c in lists}, key)
        col = table.column(name).combine_chunks()
        lengths = np.asarray(pa.compute.list_value_length(col))
        if col.null_count or (lengths.size and (lengths != lengths[0]).any()):
            raise _fail(path, f"list column {name!r} has missing values or rows of different lengths")
        flat = np.asarray(pa.compute.list_flatten(col))
        return name, flat.reshape(len(col), -1 if len(col) else 0)
    if not numeric:
        raise _fail(path, "has no numeric columns and no list column")
    dropped = [f.name for f in table.schema if f.name not in numeric]
    if dropped:
        notes.append(f"{path}: ignored non-numeric columns {dropped}")
    cols = [table.column(c).to_numpy(zero_copy_only=False) for c in numeric]
    return f"{len(numeric)} columns", np.column_stack(cols).astype(np.float64, copy=False)


def _load_csv(path: str, notes: list[str]) -> tuple[str, Any]:
    try:
        with open(path, newline="") as fh:
            rows = [r for r in csv.reader(fh) if r]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise _fail(path, "is not a readable CSV text file", e) from e
    if not rows:
        raise _fail(path, "is empty")

    def num(x: str) -> float | None:
        try:
            return float(x)
        except ValueError:
            return None

    header = rows[0] if any(num(x) is None for x in rows[0]) else None
    body = rows[1:] if header else rows
    width = len(rows[0])
    if any(len(r) != width for r in body):
        raise _fail(path, "rows have different numbers of fields")
    names = header or [str(i) for i in range(width)]
    keep = [j for j in range(width) if all(num(r[j]) is not None for r in body)]
    if not keep:
        raise _fail(path, "has no numeric columns")
    if len(keep) < width:
        notes.append(f"{path}: ignored non-numeric columns {[names[j] for j in range(width) if j not in keep]}")
    return f"{len(keep)} columns", np.array([[float(r[j]) for j in keep] for r in body], dtype=np.float64)


def load_embeddings(path: str | Path, *, key: str | None = None, flatten: bool = False) -> EmbeddingSource:
    """Open an embedding file as an :class:`EmbeddingSource` (``.npy`` stays memory-mapped).

    ``key`` picks an array in multi-array files; ``flatten`` reshapes >2-D arrays to (N, -1).
    """
    p = str(path)
    notes: list[str] = []
    if p == "-":
        arr = _load_npy("<stdin>", io.BytesIO(sys.stdin.buffer.read()))
        return EmbeddingSource("<stdin>", _flatten(arr, "<stdin>", flatten, notes), notes)
    if not Path(p).exists():
        raise EmbeddingError(f"{p}: no such file")
    if Path(p).is_dir():
        raise EmbeddingError(f"{p}: is a directory, not an embedding file")
    suffix = Path(p).suffix.lower()
    name: str | None = None
    if suffix == ".npy":
        arr = _load_npy(p, p)
    elif suffix == ".npz":
        name, arr = _load_npz(p, key)
    elif suffix in (".pt", ".pth"):
        name, arr = _load_pt(p, key)
    elif suffix == ".safetensors":
        name, arr = _load_safetensors(p, key)
    elif suffix == ".parquet":
        name, arr = _load_parquet(p, key, notes)
    elif suffix == ".csv":
        name, arr = _load_csv(p, notes)
    else:
        raise EmbeddingError(f"{p}: unknown file type {suffix!r}; supported: {', '.join(SUFFIXES)} and '-' (stdin)")
    label = p if name is None or name in ("tensor",) else f"{p}[{name}]"
    try:
        return EmbeddingSource(label, _flatten(arr, label, flatten, notes), notes)
    except EmbeddingError as e:
        raise EmbeddingError(f"{label}: {e}") from e
