"""Tables of embeddings (CSV/TSV/text, Parquet, Arrow) read with explicit column semantics.

Which columns are the embedding, in order of precedence:

1. ``key``: one list (or fixed-size-list) column, e.g. ``embedding``;
2. ``columns``: exactly these numeric columns (this overrides every automatic exclusion below);
3. otherwise, when the table has exactly one list column, that column (how embeddings are usually stored next to
   an id); several list columns need ``key``;
4. otherwise every numeric column except the ``exclude`` ones (which add to the automatic exclusions), and the
   columns that are not features: by name (:data:`NON_FEATURE_COLUMNS`, the one list: indexes, identifiers,
   labels and targets), by the pandas metadata of a Parquet/Arrow file (its stored index), and, in a text table,
   a pandas index written by ``to_csv()``: a header-less file's leading column holding a permutation of 0..N-1,
   or leading integer columns that together identify each row (a named or MultiIndex index).

Every exclusion is reported in a note. Missing values are an error naming the column and row; list rows must
all have one length; a column of numbers that cannot be read as such (:attr:`Column.problem`: thousands
separators, a stray text cell) is an error naming the column and the cell when it would be scored. Text tables are
parsed by :mod:`rankme.io.text_tables`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rankme.core.errors import EmbeddingError, Note
from rankme.core.optional import require

__all__ = ["NON_FEATURE_COLUMNS", "Column", "arrow_columns", "arrow_stream", "choose_columns",
           "non_feature_reason", "read_arrow", "refuse_compressed"]

NON_FEATURE_COLUMNS = {
    "an index": r"|index|idx|row|unnamed: \d+|__index_level_\d+__",
    "an identifier": r"id|ids|uuid|key|row_id|.*[_\-\s]id",
    "a label or target": r"labels?|targets?|y|class(es)?",
}
"""Column names (case-insensitive, whole name, surrounding spaces ignored) that are not features, by kind; ``y``
is a feature (a coordinate) when the table also has an ``x`` column."""
_NON_FEATURE = {kind: re.compile(pattern, re.IGNORECASE) for kind, pattern in NON_FEATURE_COLUMNS.items()}
_COMPRESSED = {".gz": (rb"\x1f\x8b", "gzip", "gunzip"), ".bz2": (rb"BZh[1-9]", "bzip2", "bunzip2"),
               ".xz": (rb"\xfd7zXZ\x00", "xz", "unxz"), ".zip": (rb"PK\x03\x04", "zip", "unzip"),
               ".zst": (rb"\x28\xb5\x2f\xfd", "zstd", "unzstd")}


@dataclass
class Column:
    """One column: its name, and either 1-D numeric values (with a null mask) or 2-D rows of a list column;
    ``text`` for a column that is neither; ``why`` when the reader knows it is not a feature (and why);
    ``problem``: why a column of numbers cannot be read as such (an error when it would be scored)."""

    name: str
    values: np.ndarray | None = None
    nulls: np.ndarray | None = None
    rows: np.ndarray | None = None
    text: bool = False
    why: str | None = None
    problem: str | None = None


def non_feature_reason(name: str, values: np.ndarray | None = None, names: Sequence[str] = ()) -> str | None:
    """Why a column named ``name`` (``values``; in a table of columns ``names``) is not a feature
    (:data:`NON_FEATURE_COLUMNS`), or None when it may be one.

    Examples:
        >>> non_feature_reason("Label"), non_feature_reason("user_id"), non_feature_reason("f0")
        ('a label or target', 'an identifier', None)
        >>> non_feature_reason("Unnamed: 0", np.arange(4.0)), non_feature_reason("__index_level_0__")
        ('a pandas default index (0..N-1)', 'an index')
        >>> non_feature_reason("y", names=["x", "y"]) is None
        True
    """
    kind = next((k for k, rx in _NON_FEATURE.items() if rx.fullmatch(name.strip())), None)
    if kind is not None and name.strip().lower() == "y" and any(n.strip().lower() == "x" for n in names):
        return None
    if kind == "an index":
        default = values is not None and values.size > 0 and np.array_equal(values, np.arange(values.size))
        return "a pandas default index (0..N-1)" if default else "an index"
    return kind


def refuse_compressed(path: str, data: bytes | None = None) -> None:
    """Raise for a compressed file, known by its suffix or (given ``data``) by its first bytes.

    Examples:
        >>> refuse_compressed("z.csv", b"0,1\\n")
        >>> refuse_compressed("z.csv.gz")
        Traceback (most recent call last):
        ...
        rankme.core.errors.EmbeddingError: z.csv.gz: is gzip-compressed: decompress it first (with gunzip): rankme reads files uncompressed
    """
    for suffix, (magic, kind, tool) in _COMPRESSED.items():
        if path.lower().endswith(suffix) or (data is not None and re.match(magic, data[:8])):
            raise EmbeddingError(f"{path}: is {kind}-compressed: decompress it first (with {tool}): rankme reads "
                                 "files uncompressed", path=path)


def _check_nulls(path: str, col: Column, line_of: Any) -> None:
    if col.nulls is not None and col.nulls.any():
        row = int(np.flatnonzero(col.nulls)[0])
        count = int(col.nulls.sum())
        raise EmbeddingError(f"{path}: column {col.name!r} has {count} missing value(s), first at data row {row}"
                             f"{line_of(row)}: fill or drop them first (rankme never guesses a value)", path=path,
                             row=row)


def _refuse_problem(path: str, col: Column) -> None:
    if col.problem is not None:
        raise EmbeddingError(f"{path}: column {col.name!r} {col.problem}; or leave the column out with exclude=",
                             names=("exclude",), path=path)


def choose_columns(path: str, cols: Sequence[Column], *, key: str | None = None, columns: Sequence[str] | None = None,
                   exclude: Sequence[str] = (), notes: list[str] | None = None,
                   line_of: Any = lambda row: "") -> tuple[str, np.ndarray]:
    """Pick the embedding columns of a table by the rules of this module; returns (label, N×K float64 array).

    Examples:
        >>> cols = [Column("Unnamed: 0", np.arange(3.0)), Column("a", np.array([1.0, 2.0, 4.0])),
        ...         Column("b", np.array([0.0, 1.0, 1.0])), Column("label", np.array([1.0, 0.0, 1.0]))]
        >>> notes = []; label, z = choose_columns("t.csv", cols, notes=notes)
        >>> label, z.shape
        ('2 columns', (3, 2))
        >>> print(*notes, sep="\\n")
        t.csv: excluded column(s) ['Unnamed: 0'] (a pandas default index (0..N-1)); pass columns= to choose columns yourself
        t.csv: excluded column(s) ['label'] (a label or target); pass columns= to choose columns yourself
    """
    notes = [] if notes is None else notes
    by_name = {c.name: c for c in cols}
    lists = [c for c in cols if c.rows is not None]
    if key is not None:
        if key not in by_name:
            raise EmbeddingError(f"{path}: has no column {key!r}; columns: {list(by_name)}", param="key", path=path)
        chosen = by_name[key]
        _refuse_problem(path, chosen)
        if chosen.rows is None:
            if chosen.values is None:
                raise EmbeddingError(f"{path}: column {key!r} is not numeric", param="key", path=path)
            _check_nulls(path, chosen, line_of)
            return key, chosen.values.reshape(-1, 1)
        return key, chosen.rows
    if columns:
        missing = [c for c in columns if c not in by_name]
        if missing:
            raise EmbeddingError(f"{path}: no column(s) {missing}; columns: {list(by_name)}", param="columns",
                                 path=path)
        picked = [by_name[c] for c in columns]
        for c in picked:
            _refuse_problem(path, c)
        bad = [c.name for c in picked if c.values is None]
        if bad:
            raise EmbeddingError(f"{path}: column(s) {bad} are not numeric (a list column is read with key=)",
                                 param="columns", names=("key",), path=path)
        for c in picked:
            _check_nulls(path, c, line_of)
        return f"{len(picked)} columns", np.column_stack([c.values for c in picked if c.values is not None]).astype(np.float64)
    if lists:
        if len(lists) > 1:
            raise EmbeddingError(f"{path}: has several list columns {[c.name for c in lists]}: choose the embedding "
                                 "with key=", param="key", path=path)
        others = [c.name for c in cols if c is not lists[0]]
        if others:
            notes.append(f"{path}: scored the list column {lists[0].name!r}; ignored {others}")
        assert lists[0].rows is not None
        return lists[0].name, lists[0].rows
    reasons: dict[str, str] = {}
    for c in cols:
        why = ("listed to exclude" if c.name in exclude else "not numeric" if c.text or c.values is None
               else "empty: every cell blank" if c.nulls is not None and c.nulls.all()
               else c.why or non_feature_reason(c.name, c.values, list(by_name)))
        if why == "not numeric" and c.why is None and non_feature_reason(c.name, None, list(by_name)) is None:
            _refuse_problem(path, c)
        if why is not None:
            reasons[c.name] = why
    unknown = [e for e in exclude if e not in by_name]
    if unknown:
        raise EmbeddingError(f"{path}: exclude= names no column(s) {unknown}; columns: {list(by_name)}",
                             param="exclude", path=path)
    keep = [c for c in cols if c.name not in reasons]
    if not keep:
        raise EmbeddingError(f"{path}: no numeric feature columns ({'; '.join(f'{k}: {v}' for k, v in reasons.items())})"
                             "; pass columns= to choose columns yourself", names=("columns",), path=path)
    for why in dict.fromkeys(reasons.values()):
        names = [k for k, v in reasons.items() if v == why]
        notes.append(f"{path}: ignored non-numeric columns {names}" if why == "not numeric" else
                     Note(f"{path}: excluded column(s) {names} ({why}); pass columns= to choose columns yourself",
                          names=("columns",), path=path))
    for c in keep:
        _check_nulls(path, c, line_of)
    return f"{len(keep)} columns", np.column_stack([c.values for c in keep if c.values is not None]).astype(np.float64)


def arrow_columns(path: str, table: Any) -> list[Column]:
    """Columns of an Arrow table: numeric ones as values (nulls marked), list columns as rows, others as text;
    the index columns named in its pandas metadata are marked as not features."""
    pa = require("pyarrow", "parquet", "reading Arrow data", path=path)
    pc = require("pyarrow.compute", "parquet", "reading Arrow data", path=path)
    try:
        meta = table.schema.pandas_metadata or {}
    except (ValueError, TypeError):  # damaged pandas metadata: read the columns by name only
        meta = {}
    index = {c for c in meta.get("index_columns", []) if isinstance(c, str)}
    cols = []
    for field_ in table.schema:
        col = table.column(field_.name).combine_chunks()
        t = field_.type
        if pa.types.is_integer(t) or pa.types.is_floating(t):
            nulls = np.asarray(col.is_null())
            values = np.asarray(col.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.float64)
            cols.append(Column(field_.name, values, nulls if nulls.any() else None))
        elif (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)) and (
                pa.types.is_integer(t.value_type) or pa.types.is_floating(t.value_type)):
            cols.append(Column(field_.name, rows=_list_rows(path, field_.name, col, pc)))
        else:
            cols.append(Column(field_.name, text=True))
        if field_.name in index:
            cols[-1].why = "a pandas index, by the file's pandas metadata"
    return cols


def _list_rows(path: str, name: str, col: Any, pc: Any) -> np.ndarray:
    if col.null_count:
        row = int(np.flatnonzero(np.asarray(col.is_null()))[0])
        raise EmbeddingError(f"{path}: list column {name!r} has {col.null_count} missing row(s), first at row {row}",
                             path=path, row=row)
    lengths = np.asarray(pc.list_value_length(col))
    if lengths.size and (lengths != lengths[0]).any():
        row = int(np.flatnonzero(lengths != lengths[0])[0])
        raise EmbeddingError(f"{path}: list column {name!r} has rows of different lengths ({lengths[0]} in row 0, "
                             f"{lengths[row]} in row {row}); every embedding needs the same width", path=path, row=row)
    flat = pc.list_flatten(col)
    if flat.null_count:
        pos = int(np.flatnonzero(np.asarray(flat.is_null()))[0])
        row = pos // max(int(lengths[0]), 1)
        raise EmbeddingError(f"{path}: list column {name!r} has a missing value in row {row}", path=path, row=row)
    out: np.ndarray = np.asarray(flat.to_numpy(zero_copy_only=False), dtype=np.float64).reshape(
        len(col), int(lengths[0]) if lengths.size else 0)
    return out


def arrow_stream(path: str) -> Any:
    """The table of an Arrow IPC *stream* (``pyarrow.ipc.new_stream``), or None when the file is not one (an IPC
    file, Feather, anything else: the caller says what it is not).

    Examples:
        >>> import os, tempfile
        >>> import pyarrow as pa
        >>> path = os.path.join(tempfile.mkdtemp(), "t.arrows")
        >>> with pa.OSFile(path, "wb") as sink, pa.ipc.new_stream(sink, pa.schema([("a", pa.int64())])) as w:
        ...     w.write_table(pa.table({"a": [1, 2]}))
        >>> arrow_stream(path).num_rows
        2
    """
    ipc = require("pyarrow.ipc", "parquet", "reading Arrow IPC streams", path=path)
    try:
        with open(path, "rb") as fh:
            return ipc.open_stream(fh).read_all()
    except Exception:  # not a stream either: the caller says what the file is not
        return None


def read_arrow(path: str, kind: str, key: str | None, notes: list[str], columns: Sequence[str] | None,
               exclude: Sequence[str]) -> tuple[str, Any]:
    """A table in an Arrow-family file (``parquet``, ``arrow`` IPC / Feather, memory-mapped, or an IPC stream), with
    the column rules of this module."""
    name = {"parquet": "Parquet", "arrow": "Arrow IPC (file or stream) / Feather"}[kind]
    reader = require("pyarrow.parquet" if kind == "parquet" else "pyarrow.feather", "parquet",
                     f"reading {name} files", path=path)  # outside the try: a missing extra is not a damaged file
    try:
        table = reader.read_table(path) if kind == "parquet" else reader.read_table(path, memory_map=True)
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError for corrupt files
        table = arrow_stream(path) if kind == "arrow" else None
        if table is None:
            raise EmbeddingError(f"{path}: is not a readable {name} file ({type(e).__name__}: {e})",
                                 path=path) from e
    return choose_columns(path, arrow_columns(path, table), key=key, columns=columns, exclude=exclude, notes=notes)
