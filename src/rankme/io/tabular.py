"""Tables of embeddings (CSV/TSV/text, Parquet, Arrow) read with explicit column semantics.

Which columns are the embedding, in order of precedence:

1. ``key``: one list (or fixed-size-list) column, e.g. ``embedding``;
2. ``columns``: exactly these numeric columns (this overrides every automatic exclusion below);
3. otherwise, when the table has exactly one list column, that column (how embeddings are usually stored next to
   an id); several list columns need ``key``;
4. otherwise every numeric column except the ``exclude`` ones (which add to the automatic exclusions), and the
   columns that are not features: by name (:data:`NON_FEATURE_COLUMNS`, the one list: indexes, identifiers,
   labels and targets), by the pandas metadata of a Parquet/Arrow file (its stored index), and, in a text table
   without a header, a leading column holding a permutation of 0..N-1 (pandas' index written by
   ``to_csv(header=False)``).

Every exclusion is reported in a note. Missing values are an error naming the column and row; list rows must
all have one length.

Text tables: a UTF-8 BOM is stripped, lines starting with ``#`` are comments (``numpy.savetxt``'s header is read
from the last one before the data when it has one name per column), the delimiter is sniffed among ``,`` ``;``
tab ``|`` (else runs of whitespace, ``numpy.savetxt``'s default). The first line is a header when it has a
non-numeric cell, an empty first cell above rows that all have one (pandas' index column), or only integers that
are exactly ``0..K-1`` (pandas' default column names) or stand above non-integer data in every column (the CSV
sniffer's rule); otherwise it is data. Compressed files are refused: decompress them first.
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
from rankme.core.validation import EmbeddingError, Note

__all__ = ["NON_FEATURE_COLUMNS", "Column", "arrow_columns", "choose_columns",
           "non_feature_reason", "read_arrow", "read_csv", "refuse_compressed"]

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
_INT = re.compile(r"\s*[+-]?\d+\s*$")


@dataclass
class Column:
    """One column: its name, and either 1-D numeric values (with a null mask) or 2-D rows of a list column;
    ``text`` for a column that is neither; ``why`` when the reader knows it is not a feature (and why)."""

    name: str
    values: np.ndarray | None = None
    nulls: np.ndarray | None = None
    rows: np.ndarray | None = None
    text: bool = False
    why: str | None = None


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
        rankme.core.validation.EmbeddingError: z.csv.gz: is gzip-compressed: decompress it first (with gunzip): rankme reads files uncompressed
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


def _number(x: str) -> float | None:
    try:
        return float(x)
    except ValueError:
        return None


def _delimiter(lines: list[str], tab: bool) -> str | None:
    """The sniffed delimiter among , ; tab |, else None (runs of whitespace) when that splits every line alike."""
    if tab:
        return "\t"
    try:
        return csv.Sniffer().sniff("\n".join(lines[:50]), delimiters=",;\t|").delimiter
    except csv.Error:
        return None if all(len(ln.split()) > 1 for ln in lines[:50]) else ","


def _split(lines: list[str], delimiter: str | None) -> list[list[str]]:
    if delimiter is None:
        return [ln.split() for ln in lines]
    return list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))


def _header(path: str, rows: list[list[str]], comment: list[str] | None, notes: list[str]) -> list[str] | None:
    """The header by the rules of this module (``comment``: the names in the last leading comment line)."""
    first, width = rows[0], len(rows[0])
    if any(x.strip() and _number(x) is None for x in first):
        return first
    if not first[0].strip() and len(rows) > 1 and all(r and r[0].strip() for r in rows[1:]):
        return first  # pandas' to_csv() with numeric column names: ",0,1,2" above rows that all start with an index
    if comment is not None and len(comment) == width:
        return comment  # numpy.savetxt(header=...)
    if width < 2 or not all(_INT.match(x) for x in first):
        return None
    body = rows[1:51]
    if [int(x) for x in first] == list(range(width)):  # pandas' default column names
        if all(_INT.match(x) for r in body for x in r):
            notes.append(f"{path}: read the first line 0..{width - 1} as column names (pandas' default); if it is "
                         "data, add a header line")
        return first
    if body and all(any(j < len(r) and not _INT.match(r[j]) for r in body) for j in range(width)):
        notes.append(f"{path}: read the first line {[x.strip() for x in first][:8]} as column names (integers above "
                     "non-integer data); if it is data, add a header line")
        return first
    return None


def read_csv(path: str, data: bytes, *, tab: bool = False, notes: list[str] | None = None) -> tuple[list[Column], Any]:
    """Parse a text table (CSV/TSV/whitespace) by the rules of this module.

    Returns the columns and ``line_of(row)`` (the text line of a data row, for messages).

    Examples:
        >>> cols, _ = read_csv("x.csv", "\\ufeff1;2\\n3;4\\n".encode())
        >>> [(c.name, c.values.tolist()) for c in cols]
        [('0', [1.0, 3.0]), ('1', [2.0, 4.0])]
        >>> cols, _ = read_csv("s.txt", b"# a b\\n1.5 2\\n3 4.25\\n")
        >>> [(c.name, c.values.tolist()) for c in cols]
        [('a', [1.5, 3.0]), ('b', [2.0, 4.25])]
    """
    notes = [] if notes is None else notes
    refuse_compressed(path, data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise EmbeddingError(f"{path}: not a UTF-8 text file ({e}); is it really a CSV?", path=path) from e
    numbered = [(i + 1, ln) for i, ln in enumerate(text.splitlines()) if ln.strip()]
    lines = [(no, ln) for no, ln in numbered if not ln.lstrip().startswith("#")]
    if not lines:
        raise EmbeddingError(f"{path}: is empty" if not numbered else f"{path}: holds only comment lines (#)",
                             path=path)
    leading = [ln for no, ln in numbered if no < lines[0][0]]
    delimiter = _delimiter([ln for _, ln in lines], tab)
    rows = _split([ln for _, ln in lines], delimiter)
    comment = _split([leading[-1].lstrip().lstrip("#").strip()], delimiter)[0] if leading else None
    header = _header(path, rows, comment, notes)
    skip = int(header is rows[0])
    body, width = rows[skip:], len(header if header is not None else rows[0])
    ragged = [i for i, r in enumerate(body) if len(r) != width]
    if ragged:
        i = ragged[0]
        sep = "whitespace" if delimiter is None else repr(delimiter)
        raise EmbeddingError(f"{path}: line {lines[i + skip][0]} has {len(body[i])} fields, the header or first "
                             f"line {width} (delimiter {sep})", path=path)
    names = ([h.strip() or f"Unnamed: {j}" for j, h in enumerate(header)] if header is not None
             else [str(j) for j in range(width)])
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
    first = cols[0].values if cols else None
    if (header is None and width > 1 and first is not None and first.size >= 3
            and np.array_equal(np.sort(first), np.arange(first.size))):
        cols[0].why = "a pandas index written without a header (0..N-1 in some order)"
    if all(c.text for c in cols) and delimiter == "," and width == 1:
        notes.append(f"{path}: one text column per line: if the file is delimited by something else than , ; "
                     "tab, | or spaces, convert it first")
    data_lines = [no for no, _ in lines[skip:]]
    return cols, (lambda row: f" (line {data_lines[row]})" if 0 <= row < len(data_lines) else "")


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


def read_arrow(path: str, kind: str, key: str | None, notes: list[str], columns: Sequence[str] | None,
               exclude: Sequence[str]) -> tuple[str, Any]:
    """A table in an Arrow-family file (``parquet``, ``arrow`` IPC / Feather, memory-mapped), with the column rules
    of this module."""
    name = {"parquet": "Parquet", "arrow": "Arrow IPC / Feather"}[kind]
    reader = require("pyarrow.parquet" if kind == "parquet" else "pyarrow.feather", "parquet",
                     f"reading {name} files", path=path)  # outside the try: a missing extra is not a damaged file
    try:
        table = reader.read_table(path) if kind == "parquet" else reader.read_table(path, memory_map=True)
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError for corrupt files
        raise EmbeddingError(f"{path}: is not a readable {name} file ({type(e).__name__}: {e})", path=path) from e
    return choose_columns(path, arrow_columns(path, table), key=key, columns=columns, exclude=exclude, notes=notes)
