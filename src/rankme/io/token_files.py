"""Read token states from files: (N, T, K) arrays of N sequences of T token states, with their attention mask.

Formats: ``.npy`` (memory-mapped, read by blocks of sequences), ``.npz``, ``.pt``/``.pth``
(``torch.load(weights_only=True)``), ``.safetensors``, HDF5 datasets and Zarr arrays (``key`` = their path; read by
blocks of sequences), and Parquet / Arrow IPC / Feather tables with a list-of-list column (one row per sequence: a
list of T_i token vectors of K numbers; ragged allowed). Nothing is executed.

Which array holds the token states: ``key`` when given; else the file's one array besides its mask; else its one
3-D array (with a note naming the others). The mask (1/True = real token, 0/False = padding, as a tokenizer's
``attention_mask``), in order of precedence: ``mask=`` (a file of any array format above holding one (N, T) array,
or an array named :data:`MASK_KEY`; or an array in memory); else an array named :data:`MASK_KEY` in the same file
(next to the states, or at its top; a table's list column of that name), used with a note; else every token
position is real (with a note for padded arrays). A mask that does not fit is one line naming ``mask=``.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rankme.core.errors import EmbeddingError, InputError, Note
from rankme.core.optional import has_module, require, to_numpy
from rankme.io.primitives import check_regular, file_error, load_npy, npz_shape, tensors_by_path
from rankme.io.stores import directory_format, read_hdf5, read_zarr
from rankme.io.tabular import arrow_stream
from rankme.io.token_source import TokenSource

__all__ = ["MASK_KEY", "MASK_SUFFIXES", "TOKEN_SUFFIXES", "load_mask", "load_tokens"]

MASK_KEY = "attention_mask"
"""The name under which a mask stored with the token states is found (a tokenizer's output key)."""
MASK_SUFFIXES = (".npy", ".npz", ".pt", ".pth", ".safetensors", ".h5", ".hdf5")
"""Array files (and Zarr stores) that hold token states or a mask."""
TABLE_SUFFIXES = (".parquet", ".arrow", ".feather", ".ipc")
TOKEN_SUFFIXES = (*MASK_SUFFIXES, *TABLE_SUFFIXES)
"""Token-state files :func:`load_tokens` reads (besides Zarr stores)."""

Catalog = tuple[dict[str, tuple[int, ...]], Callable[[str], Any]]
"""What an array file holds: each array's shape by name, and a reader of one array by name (lazy where the
format allows: a memory map, an HDF5 or Zarr reader)."""


def _torch_load(path: str) -> Any:
    torch = require("torch", "torch", "reading .pt files", path=path)
    try:
        return torch, torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise file_error(path, "would run code or build arbitrary objects when unpickled; rankme only loads tensors "
                          "(torch.load(weights_only=True)): save plain tensors or a dict of tensors", e) from e
    except (RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
        raise file_error(path, "is not a readable PyTorch file: truncated or corrupt", e) from e


@contextlib.contextmanager
def _catalog(path: str, fill_missing: bool, notes: list[str]) -> Iterator[Catalog]:
    """The arrays of an array file or Zarr store (open while the context lasts)."""
    suffix = Path(path).suffix.lower()
    if Path(path).is_dir():
        zarr = require("zarr", "zarr", "reading Zarr", path=path)
        try:
            node = zarr.open(path, mode="r")
        except Exception as e:  # zarr raises several kinds for a broken store
            raise file_error(path, "is not a readable Zarr store", e) from e
        arrays = {"": node} if hasattr(node, "shape") else \
            {p: a for p, a in node.members(max_depth=None) if hasattr(a, "shape")}
        yield ({k: tuple(a.shape) for k, a in arrays.items()},
               lambda k: read_zarr(path, k or None, notes, fill_missing=fill_missing)[1])
    elif suffix == ".npy":
        arr = load_npy(path, path)
        yield {"": tuple(arr.shape)}, lambda k: arr
    elif suffix == ".npz":
        try:
            npz = np.load(path, allow_pickle=False)
            shapes = {k: npz_shape(npz, k) for k in npz.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError) as e:
            raise file_error(path, "is not a readable .npz archive: truncated or corrupt", e) from e
        with npz:
            yield shapes, lambda k: npz[k]
    elif suffix in (".pt", ".pth"):
        torch, obj = _torch_load(path)
        tensors = {"tensor": obj} if isinstance(obj, torch.Tensor) else \
            tensors_by_path(obj, torch.Tensor) if isinstance(obj, dict) else None
        if tensors is None:
            raise file_error(path, f"holds a {type(obj).__name__}, not a tensor or a dict of tensors")
        yield {k: tuple(t.shape) for k, t in tensors.items()}, tensors.__getitem__
    elif suffix == ".safetensors":
        safe_open = require("safetensors", "safetensors", "reading .safetensors files", path=path).safe_open
        framework = "pt" if "torch" in sys.modules or has_module("torch") else "np"
        try:
            fh = safe_open(path, framework=framework)
            shapes = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
        except Exception as e:  # safetensors raises its own SafetensorError, OSError, or ValueError
            raise file_error(path, "is not a readable .safetensors file: truncated or corrupt", e) from e
        with fh:
            yield shapes, fh.get_tensor
    else:  # HDF5
        h5py = require("h5py", "hdf5", "reading HDF5", path=path)
        try:
            fh = h5py.File(path, "r")
        except OSError as e:
            raise file_error(path, "is not a readable HDF5 file", e) from e
        with fh:
            found: dict[str, tuple[int, ...]] = {}
            fh.visititems(lambda k, o: found.update({k: tuple(o.shape)}) if isinstance(o, h5py.Dataset) else None)
            yield found, lambda k: read_hdf5(path, k, notes, fill_missing=fill_missing)[1]


def _whole(arr: Any) -> np.ndarray:
    """A (mask) array read whole, as numpy."""
    if hasattr(arr, "_read") and hasattr(arr, "shape"):  # a store's row reader
        return np.asarray(arr[0:int(arr.shape[0])])
    return to_numpy(arr)


def _choose(path: str, shapes: dict[str, tuple[int, ...]], key: str | None, notes: list[str]) -> tuple[str, str | None]:
    """The array of token states (``key``, the one array besides a mask, or the one 3-D array) and the mask
    stored next to it (its group's :data:`MASK_KEY`, else the top level's), or ``None``."""
    masks = {k for k in shapes if k.rsplit("/", 1)[-1] == MASK_KEY}
    if key is not None and key.strip("/"):
        dotted = {k.replace("/", "."): k for k in shapes}
        name = dotted.get(key, key.strip("/"))
        if name not in shapes:
            raise EmbeddingError(f"{path}: has no array {key!r}; available: {sorted(shapes)}", param="key", path=path)
    else:
        others = [k for k in shapes if k not in masks]
        three = [k for k in others if len(shapes[k]) == 3]
        if len(others) == 1:
            name = others[0]
        elif len(three) == 1:
            name = three[0]
            notes.append(Note(f"{path}: read the one 3-D array {name!r} as token states; ignored "
                              f"{sorted(set(others) - {name})} (key= chooses another)", names=("key",), path=path))
        elif not others:
            raise EmbeddingError(f"{path}: holds no token states (only {sorted(shapes)})", path=path)
        else:
            raise EmbeddingError(f"{path}: holds several arrays {sorted(others)}: choose the token states with key=",
                                 param="key", path=path)
    group = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
    mask = next((m for m in (f"{group}{MASK_KEY}", MASK_KEY) if m in shapes and m != name), None)
    return name, mask


def load_mask(path: str | os.PathLike[str], *, fill_missing: bool = False) -> np.ndarray:
    """The attention mask stored in a file (``.npy``, ``.npz``, ``.pt``/``.pth``, ``.safetensors``, HDF5, Zarr): its
    one array, or its array named :data:`MASK_KEY`; read whole (it is N×T). Checked against the token states by
    :class:`~rankme.io.token_source.TokenSource`.

    Raises:
        InputError: naming ``mask=`` and the file: missing, unreadable, of another type, or holding several arrays.

    Examples:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "m.npy"; np.save(p, np.array([[1, 0]]))
        >>> load_mask(p).tolist()
        [[1, 0]]
    """
    p = str(path)
    try:
        if Path(p).is_dir() and directory_format(Path(p)) == "zarr":
            pass
        elif not Path(p).exists():
            raise EmbeddingError(f"{p}: no such file", path=p)
        else:
            check_regular(p)
            if Path(p).suffix.lower() not in MASK_SUFFIXES:
                raise EmbeddingError(f"{p}: a mask is read from {' '.join(MASK_SUFFIXES)} files or a Zarr store, not "
                                     f"{Path(p).suffix or 'a file without a suffix'}", path=p)
        with _catalog(p, fill_missing, []) as (shapes, get):
            names = list(shapes)
            if len(names) != 1 and MASK_KEY not in names:
                raise EmbeddingError(f"{p}: holds several arrays {sorted(names)}: save the mask alone, or name it "
                                     f"{MASK_KEY!r}", path=p)
            return _whole(get(names[0] if len(names) == 1 else MASK_KEY))
    except EmbeddingError as e:
        raise InputError(f"mask= {e}", param="mask", names=e.names, path=e.path) from e


def _arrow_table(path: str) -> Any:
    kind = "parquet" if path.lower().endswith(".parquet") else "arrow"
    reader = require("pyarrow.parquet" if kind == "parquet" else "pyarrow.feather", "parquet", f"reading {kind} files",
                     path=path)
    try:
        return reader.read_table(path) if kind == "parquet" else reader.read_table(path, memory_map=True)
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError for corrupt files
        table = arrow_stream(path) if kind == "arrow" else None
        if table is None:
            raise file_error(path, f"is not a readable {kind} file", e) from e
        return table


def _flat_lists(path: str, name: str, col: Any, pc: Any, what: str) -> tuple[Any, np.ndarray]:
    """(values, lengths) of a list column: its elements flattened one level, and each row's length."""
    if col.null_count:
        row = int(np.flatnonzero(np.asarray(col.is_null()))[0])
        raise EmbeddingError(f"{path}: column {name!r} has {col.null_count} missing {what}(s), first in row {row}",
                             path=path, row=row)
    return pc.list_flatten(col), np.asarray(pc.list_value_length(col), dtype=np.int64)


def _arrow_tokens(path: str, key: str | None, notes: list[str]) -> tuple[str, np.ndarray, np.ndarray, Any]:
    """A table's list-of-list column as ragged token states: (its name, the flat (tokens, K) rows, the offsets of
    each sequence, its :data:`MASK_KEY` list column flattened, or ``None``)."""
    pa = require("pyarrow", "parquet", "reading Arrow data", path=path)
    pc = require("pyarrow.compute", "parquet", "reading Arrow data", path=path)
    table = _arrow_table(path)

    def is_list(t: Any) -> bool:
        return bool(pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t))

    def numeric(t: Any) -> bool:
        return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t))

    nested = [f.name for f in table.schema if is_list(f.type) and is_list(f.type.value_type)
              and numeric(f.type.value_type.value_type)]
    if key is not None:
        if key not in table.schema.names:
            raise EmbeddingError(f"{path}: has no column {key!r}; columns: {table.schema.names}", param="key",
                                 path=path)
        if key not in nested:
            raise EmbeddingError(f"{path}: column {key!r} is not a list of token vectors (list<list<number>>: one row "
                                 "per sequence)", param="key", path=path)
        name = key
    elif len(nested) != 1:
        why = "no list-of-list column (one row per sequence: a list of token vectors)" if not nested else \
            f"several list-of-list columns {nested}: choose the token states with key="
        raise EmbeddingError(f"{path}: has {why}; columns: {table.schema.names}", param="key" if nested else None,
                             path=path)
    else:
        name = nested[0]
    tokens, lengths = _flat_lists(path, name, table.column(name).combine_chunks(), pc, "sequence")
    values, widths = _flat_lists(path, name, tokens, pc, "token vector")
    if widths.size and (widths != widths[0]).any():
        at = int(np.flatnonzero(widths != widths[0])[0])
        seq = int(np.searchsorted(np.cumsum(lengths), at, side="right"))
        raise EmbeddingError(f"{path}: column {name!r} holds token vectors of different lengths ({widths[0]} and "
                             f"{widths[at]}, in sequence {seq}); every token state needs the same K", path=path, row=seq)
    if values.null_count:
        raise EmbeddingError(f"{path}: column {name!r} has {values.null_count} missing value(s) in its token vectors",
                             path=path)
    flat = np.asarray(values.to_numpy(zero_copy_only=False)).reshape(int(lengths.sum()), int(widths[0]) if
                                                                       widths.size else 0)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    mask = None
    if MASK_KEY in table.schema.names and MASK_KEY != name:
        if not is_list(table.schema.field(MASK_KEY).type):
            raise EmbeddingError(f"{path}: column {MASK_KEY!r} is not a list column (one 0/1 per token)",
                                 param="mask", path=path)
        flags, count = _flat_lists(path, MASK_KEY, table.column(MASK_KEY).combine_chunks(), pc, "mask")
        if (count != lengths).any():
            row = int(np.flatnonzero(count != lengths)[0])
            raise EmbeddingError(f"{path}: column {MASK_KEY!r} has {count[row]} entries in row {row} but {name!r} has "
                                 f"{lengths[row]} tokens: the mask does not fit (check mask=)", param="mask",
                                 path=path, row=row)
        mask = np.asarray(flags.to_numpy(zero_copy_only=False))
        bad = ~((mask == 0) | (mask == 1))
        if bad.any():
            raise EmbeddingError(f"{path}: column {MASK_KEY!r} must hold 1/True for a real token and 0/False for "
                                 f"padding; it holds {mask[bad][0].item()!r} (check mask=)", param="mask", path=path)
        mask = mask != 0
    return name, flat, offsets, mask


def load_tokens(path: str | os.PathLike[str], *, key: str | None = None, mask: Any = None,
                fill_missing: bool = False) -> TokenSource:
    """Open a file of token states as a :class:`~rankme.io.token_source.TokenSource` (``.npy`` stays memory-mapped,
    HDF5 and Zarr are read by blocks of sequences).

    Args:
        path: a file (suffix in :data:`TOKEN_SUFFIXES`) or a Zarr store.
        key: the array of token states (``.npz``, ``.pt``: ``out/emb`` or ``out.emb``, ``.safetensors``, an HDF5
            dataset or Zarr array path) or a table's list-of-list column.
        mask: the attention mask: a file (:func:`load_mask`) or an (N, T) array; by default the file's own
            :data:`MASK_KEY` array, if any.
        fill_missing: Zarr and HDF5: read chunks (rows) never written as the fill value, with a note.

    Returns:
        The source, with notes on where its mask came from and anything ignored.

    Raises:
        EmbeddingError: naming the file, for a file that does not hold token states.
        InputError: naming ``mask=``, for a mask that cannot be read or does not fit.

    Examples:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "t.npz"
        >>> np.savez(p, states=np.ones((2, 3, 4)), attention_mask=np.array([[1, 1, 0], [1, 1, 1]]))
        >>> src = load_tokens(p)
        >>> src.name.endswith("t.npz[states]"), src.lengths.tolist(), src.notes[0].split(": ", 1)[1]
        (True, [2, 3], "padding from its 'attention_mask' (1 = real token; mask= chooses another)")
    """
    p = str(path)
    notes: list[str] = []
    stdin = p == "-"
    if stdin or not Path(p).exists():
        raise EmbeddingError(f"{p}: no such file" + (" (tokens= reads files, not standard input)" if stdin else ""),
                             names=("tokens",) if stdin else (), path=p)
    store = Path(p).is_dir()
    if store and directory_format(Path(p)) != "zarr":
        raise EmbeddingError(f"{p}: is a directory, not a Zarr store: token states are read from "
                             f"{' '.join(TOKEN_SUFFIXES)} files or Zarr stores", path=p)
    suffix = Path(p).suffix.lower()
    if not store:
        check_regular(p)
        if suffix not in TOKEN_SUFFIXES:
            raise EmbeddingError(f"{p}: tokens= reads {' '.join(TOKEN_SUFFIXES)} files and Zarr stores, not "
                                 f"{suffix or 'a file without a suffix'}", param="tokens", path=p)
    user_mask = load_mask(mask) if isinstance(mask, (str, os.PathLike)) else mask
    offsets, found = None, None
    if suffix in TABLE_SUFFIXES and not store:
        name, states, offsets, found = _arrow_tokens(p, key, notes)
        mask_name = MASK_KEY if found is not None else None
    else:
        with _catalog(p, fill_missing, notes) as (shapes, get):
            if key is not None and len(shapes) == 1 and set(shapes) <= {"", "tensor"}:
                notes.append(Note(f"{p}: key={key!r} ignored: it holds one array", names=("key",), path=p))
                key = None
            name, mask_name = _choose(p, shapes, key, notes)
            states = get(name)
            found = None if mask_name is None or user_mask is not None else _whole(get(mask_name))
    label = p if name in ("", "tensor") else f"{p}[{name}]"
    if user_mask is not None and mask_name is not None:
        notes.append(Note(f"{p}: its {mask_name!r} ignored: mask= given", names=("mask",), path=p))
    elif mask_name is not None:
        notes.append(Note(f"{p}: padding from its {mask_name!r} (1 = real token; mask= chooses another)",
                          names=("mask",), path=p))
    elif user_mask is None and offsets is None and len(states.shape) == 3:
        notes.append(Note(f"{p}: no mask: all {states.shape[1]} token positions of each sequence are real tokens "
                          "(pass mask= if the sequences are padded)", names=("mask",), path=p))
    try:
        return TokenSource(label, states, user_mask if user_mask is not None else found, offsets, notes, path=p)
    except EmbeddingError:
        raise
    except InputError as e:
        raise e.said_of(label, path=p) from e
