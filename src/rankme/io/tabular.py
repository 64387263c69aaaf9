"""Tables of embeddings (CSV/TSV, Parquet, Arrow) read with explicit column semantics.

Which columns are the embedding, in order of precedence:

1. ``key``: one list (or fixed-size-list) column, e.g. ``embedding``;
2. ``columns``: exactly these numeric columns;
3. otherwise, when the table has exactly one list column, that column (how embeddings are usually stored next to
   an id); several list columns need ``key``;
4. otherwise every numeric column except a pandas default index (an unnamed or ``Unnamed: 0`` leading column
   equal to 0..N−1), identifier columns (named ``id``, ``*_id``, ``idx``, ``index``, ``uuid`` or ``key`` and
   holding distinct integers) and the ``exclude`` ones.

Every exclusion is reported in a note. Missing values are an error naming the column and row; list rows must
all have one length.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rankme.core.optional import require
from rankme.core.validation import EmbeddingError

__all__ = ["Column", "arrow_columns", "choose_columns", "read_arrow", "read_csv"]

_ID_NAME = re.compile(r"^(id|idx|index|uuid|key|row|row_id|.*[_\-\s]id)$", re.IGNORECASE)
_INDEX_NAMES = ("", "Unnamed: 0", "index")


@dataclass
class Column:
    """One column: its name, and either 1-D numeric values (with a null mask) or 2-D rows of a list column;
    ``text`` for a column that is neither."""

    name: str
    values: np.ndarray | None = None
    nulls: np.ndarray | None = None
    rows: np.ndarray | None = None
    text: bool = False


def _is_pandas_index(col: Column, position: int) -> bool:
    v = col.values
    return (position == 0 and col.name in _INDEX_NAMES and v is not None and v.size > 0
            and np.array_equal(v, np.arange(v.size)))


def _is_identifier(col: Column) -> bool:
    v = col.values
    if v is None or not _ID_NAME.match(col.name.strip()) or v.size == 0:
        return False
    return bool(np.all(np.isfinite(v)) and np.all(v == np.round(v)) and np.unique(v).size == v.size)


def _check_nulls(path: str, col: Column, line_of: Any) -> None:
    if col.nulls is not None and col.nulls.any():
        row = int(np.flatnonzero(col.nulls)[0])
        count = int(col.nulls.sum())
        raise EmbeddingError(f"{path}: column {col.name!r} has {count} missing value(s), first at data row {row}"
                             f"{line_of(row)}: fill or drop them first (rankme never guesses a value)")


def choose_columns(path: str, cols: Sequence[Column], *, key: str | None = None, columns: Sequence[str] | None = None,
                   exclude: Sequence[str] = (), notes: list[str] | None = None,
                   line_of: Any = lambda row: "") -> tuple[str, np.ndarray]:
    """Pick the embedding columns of a table by the rules of this module; returns (label, N×K float64 array).

    Examples:
        >>> cols = [Column("Unnamed: 0", np.arange(3.0)), Column("a", np.array([1.0, 2.0, 4.0])),
        ...         Column("b", np.array([0.0, 1.0, 1.0]))]
        >>> notes = []; label, z = choose_columns("t.csv", cols, notes=notes)
        >>> label, z.shape, notes
        ('2 columns', (3, 2), ["t.csv: excluded column(s) ['Unnamed: 0'] (a pandas default index (0..N-1)); pass --columns to choose columns yourself"])
    """
    notes = [] if notes is None else notes
    by_name = {c.name: c for c in cols}
    lists = [c for c in cols if c.rows is not None]
    if key is not None:
        if key not in by_name:
            raise EmbeddingError(f"{path}: has no column {key!r}; columns: {list(by_name)}")
        chosen = by_name[key]
        if chosen.rows is None:
            if chosen.values is None:
                raise EmbeddingError(f"{path}: column {key!r} is not numeric")
            _check_nulls(path, chosen, line_of)
            return key, chosen.values.reshape(-1, 1)
        return key, chosen.rows
    if columns:
        missing = [c for c in columns if c not in by_name]
        if missing:
            raise EmbeddingError(f"{path}: no column(s) {missing}; columns: {list(by_name)}")
        picked = [by_name[c] for c in columns]
        bad = [c.name for c in picked if c.values is None]
        if bad:
            raise EmbeddingError(f"{path}: column(s) {bad} are not numeric (a list column is read with --key)")
        for c in picked:
            _check_nulls(path, c, line_of)
        return f"{len(picked)} columns", np.column_stack([c.values for c in picked if c.values is not None]).astype(np.float64)
    if lists:
        if len(lists) > 1:
            raise EmbeddingError(f"{path}: has several list columns {[c.name for c in lists]}: choose the embedding "
                                 "with --key")
        others = [c.name for c in cols if c is not lists[0]]
        if others:
            notes.append(f"{path}: scored the list column {lists[0].name!r}; ignored {others}")
        assert lists[0].rows is not None
        return lists[0].name, lists[0].rows
    reasons: dict[str, str] = {}
    for i, c in enumerate(cols):
        if c.name in exclude:
            reasons[c.name] = "--exclude"
        elif c.text or c.values is None:
            reasons[c.name] = "not numeric"
        elif _is_pandas_index(c, i):
            reasons[c.name] = "a pandas default index (0..N-1)"
        elif _is_identifier(c):
            reasons[c.name] = "an identifier: distinct integers under an id-like name"
    unknown = [e for e in exclude if e not in by_name]
    if unknown:
        raise EmbeddingError(f"{path}: --exclude names no column(s) {unknown}; columns: {list(by_name)}")
    keep = [c for c in cols if c.name not in reasons]
    if not keep:
        raise EmbeddingError(f"{path}: no numeric feature columns ({'; '.join(f'{k}: {v}' for k, v in reasons.items())})")
    for why in dict.fromkeys(reasons.values()):
        names = [k for k, v in reasons.items() if v == why]
        notes.append(f"{path}: ignored non-numeric columns {names}" if why == "not numeric" else
                     f"{path}: excluded column(s) {names} ({why}); pass --columns to choose columns yourself")
    for c in keep:
        _check_nulls(path, c, line_of)
    return f"{len(keep)} columns", np.column_stack([c.values for c in keep if c.values is not None]).astype(np.float64)


def _number(x: str) -> float | None:
    try:
        return float(x)
    except ValueError:
        return None


def read_csv(path: str, data: bytes, *, tab: bool = False, notes: list[str] | None = None) -> tuple[list[Column], Any]:
    """Parse CSV/TSV bytes: strip a UTF-8 BOM, sniff the delimiter (``,`` ``;`` tab ``|``), detect a header row.

    Returns the columns and ``line_of(row)`` (the text line of a data row, for messages).

    Examples:
        >>> cols, _ = read_csv("x.csv", "\\ufeff1;2\\n3;4\\n".encode())
        >>> [(c.name, c.values.tolist()) for c in cols]
        [('0', [1.0, 3.0]), ('1', [2.0, 4.0])]
    """
    notes = [] if notes is None else notes
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise EmbeddingError(f"{path}: not a UTF-8 text file ({e}); is it really a CSV?") from e
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise EmbeddingError(f"{path}: is empty")
    if tab:
        delimiter = "\t"
    else:
        try:
            delimiter = csv.Sniffer().sniff("\n".join(lines[:50]), delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))
    width = len(rows[0])
    first = rows[0]
    texty = any(x.strip() and _number(x) is None for x in first)
    # pandas' to_csv() of a frame with numeric column names: ",0,1,2" above rows that all start with an index
    pandas_header = not first[0].strip() and len(rows) > 1 and all(r and r[0].strip() for r in rows[1:])
    header = first if texty or pandas_header else None
    body = rows[1:] if header is not None else rows
    ragged = [i for i, r in enumerate(body) if len(r) != width]
    if ragged:
        i = ragged[0]
        raise EmbeddingError(f"{path}: line {i + 1 + (header is not None)} has {len(body[i])} fields, the first "
                             f"line {width} (delimiter {delimiter!r})")
    names = [h.strip() for h in header] if header is not None else [str(j) for j in range(width)]
    cols = []
    for j, name in enumerate(names):
        cells = [r[j].strip() for r in body]
        nums = [_number(x) if x else None for x in cells]
        blanks = np.array([not x for x in cells], dtype=bool)
        if any(x and v is None for x, v in zip(cells, nums, strict=True)):
            cols.append(Column(name, text=True))
            continue
        vals = np.array([np.nan if v is None else v for v in nums], dtype=np.float64)
        cols.append(Column(name, vals, blanks if blanks.any() else None))
    if all(c.text for c in cols) and delimiter == "," and width == 1:
        notes.append(f"{path}: one text column per line: if the file is delimited by something else than , ; "
                     "tab or |, convert it first")
    offset = 1 + (header is not None)
    return cols, (lambda row: f" (line {row + offset})")


def arrow_columns(path: str, table: Any) -> list[Column]:
    """Columns of an Arrow table: numeric ones as values (nulls marked), list columns as rows, others as text."""
    pa = require("pyarrow", "parquet", f"{path}: reading Arrow data")
    pc = require("pyarrow.compute", "parquet", f"{path}: reading Arrow data")
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
    return cols


def _list_rows(path: str, name: str, col: Any, pc: Any) -> np.ndarray:
    if col.null_count:
        row = int(np.flatnonzero(np.asarray(col.is_null()))[0])
        raise EmbeddingError(f"{path}: list column {name!r} has {col.null_count} missing row(s), first at row {row}")
    lengths = np.asarray(pc.list_value_length(col))
    if lengths.size and (lengths != lengths[0]).any():
        row = int(np.flatnonzero(lengths != lengths[0])[0])
        raise EmbeddingError(f"{path}: list column {name!r} has rows of different lengths ({lengths[0]} in row 0, "
                             f"{lengths[row]} in row {row}); every embedding needs the same width")
    flat = pc.list_flatten(col)
    if flat.null_count:
        pos = int(np.flatnonzero(np.asarray(flat.is_null()))[0])
        raise EmbeddingError(f"{path}: list column {name!r} has a missing value in row {pos // max(int(lengths[0]), 1)}")
    out: np.ndarray = np.asarray(flat.to_numpy(zero_copy_only=False), dtype=np.float64).reshape(
        len(col), int(lengths[0]) if lengths.size else 0)
    return out


def read_arrow(path: str, kind: str, key: str | None, notes: list[str], columns: Sequence[str] | None,
               exclude: Sequence[str]) -> tuple[str, Any]:
    """A table in an Arrow-family file (``parquet``, ``arrow`` IPC / Feather, memory-mapped), with the column rules
    of this module."""
    name = {"parquet": "Parquet", "arrow": "Arrow IPC / Feather"}[kind]
    reader = require("pyarrow.parquet" if kind == "parquet" else "pyarrow.feather", "parquet",
                     f"{path}: reading {name} files")  # outside the try: a missing extra is not a damaged file
    try:
        table = reader.read_table(path) if kind == "parquet" else reader.read_table(path, memory_map=True)
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError for corrupt files
        raise EmbeddingError(f"{path}: is not a readable {name} file ({type(e).__name__}: {e})") from e
    return choose_columns(path, arrow_columns(path, table), key=key, columns=columns, exclude=exclude, notes=notes)
