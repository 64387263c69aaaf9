"""Text tables (CSV/TSV/text) parsed into the columns of :mod:`rankme.io.tabular`, which chooses among them.

A UTF-8 BOM is stripped, lines starting with ``#`` are comments (``numpy.savetxt``'s header is read from the last
one before the data when it has one name per column), the delimiter is sniffed among ``,`` ``;`` tab ``|`` (else
runs of whitespace, ``numpy.savetxt``'s default). The first line is a header when it has a non-numeric cell, an
empty first cell above rows that all have one (pandas' index column), or only integers that are exactly ``0..K-1``
(pandas' default column names) or stand above non-integer data in every column (the CSV sniffer's rule); otherwise
it is data. Compressed files are refused: decompress them first.

Numbers written with a decimal comma (``to_csv(sep=";", decimal=",")``, Excel's default in much of Europe) are
read as such, with a note, when the delimiter is ``;``, tab or ``|`` and every data cell is such a number; in a
comma-delimited file (where the cells are quoted) they are refused, naming the decimal comma. A cell that pandas
reads as missing (:data:`MISSING_CELLS`: blank, ``NA``, ``N/A``, ``null``, ``#N/A``, ``nan``, ...; also ``-``) is
missing wherever it is: an error naming its column and row when the column is scored. A column of numbers with
other text in it (quoted thousands separators ``"1,234.5"``, ``#DIV/0!``) is an error naming the column and the
cell, never a silently dropped column. Two header lines (pandas' MultiIndex columns) are refused with the fix.
Leading integer (or text) columns that together identify each row, ahead of non-integer data, are a pandas index
(a named or MultiIndex index written by ``to_csv()``), excluded with a note.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import numpy as np

from rankme.core.errors import EmbeddingError
from rankme.io.tabular import Column, non_feature_reason, refuse_compressed

__all__ = ["MISSING_CELLS", "read_csv"]

MISSING_CELLS = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                           "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null", "-"})
"""The cells that are missing values: pandas' default ``na_values`` (``pandas.read_csv``), and ``-``."""
_INT = re.compile(r"\s*[+-]?\d+\s*$")
_DECIMAL_COMMA = re.compile(r"\s*[+-]?(\d+,\d*|,\d+|\d+)([eE][+-]?\d+)?\s*$")
_THOUSANDS = re.compile(r"\s*[+-]?\d{1,3}(,\d{3})+(\.\d*)?([eE][+-]?\d+)?\s*$")
_INDEX_WHY = "a pandas index: leading integer column(s) that identify each row"


def _number(x: str) -> float | None:
    try:
        return float(x)
    except ValueError:
        return None


def _is_text(x: str) -> bool:
    """A cell that is neither a number nor missing."""
    x = x.strip()
    return x not in MISSING_CELLS and _number(x) is None


def _decimal_comma(lines: list[str], tab: bool) -> str | None:
    """The delimiter (``;``, tab, ``|``) of a table whose numbers are written with a decimal comma, or None: every
    line splits into one number of fields, some number has a comma and none has a decimal point."""
    for delim in ("\t",) if tab else (";", "\t", "|"):
        rows = _split(lines, delim)
        width = len(rows[0])
        if (width < 2 and not tab) or any(len(r) != width for r in rows):
            continue
        cells = [x for r in rows for x in r if x.strip() not in MISSING_CELLS]
        if (any("," in x and _DECIMAL_COMMA.match(x) for x in cells)
                and not any(_number(x) is not None and not _DECIMAL_COMMA.match(x) for x in cells)):
            return delim
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
    body = rows[1:51]
    words = [j for j, x in enumerate(first) if _is_text(x) and not (_DECIMAL_COMMA.match(x) or _THOUSANDS.match(x))]
    if words:  # a header, unless its words stand above text only and a non-integer number is among its cells
        above_text = body and all(all(j < len(r) and (_is_text(r[j]) or r[j].strip() in MISSING_CELLS) for r in body)
                                  for j in words)
        if not above_text or not any(_number(x) is not None and not _INT.match(x) for x in first):
            return first
        return None
    if not first[0].strip() and len(rows) > 1 and all(r and r[0].strip() for r in rows[1:]):
        return first  # pandas' to_csv() with numeric column names: ",0,1,2" above rows that all start with an index
    if comment is not None and len(comment) == width:
        return comment  # numpy.savetxt(header=...)
    if width < 2 or not all(_INT.match(x) for x in first):
        return None
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


def _refuse_two_headers(path: str, rows: list[list[str]]) -> None:
    """Refuse pandas' MultiIndex columns: a second header line, without numbers, naming most columns that hold
    numbers below it."""
    second = rows[1] if len(rows) > 2 else []
    if len(second) != len(rows[0]) or any(not _is_text(x) and x.strip() not in MISSING_CELLS for x in second):
        return
    numeric = [j for j in range(len(second)) if any(j < len(r) and not _is_text(r[j]) and r[j].strip()
                                                    not in MISSING_CELLS for r in rows[2:52])]
    named = [j for j in numeric if _is_text(second[j])]
    if named and 2 * len(named) >= len(numeric):
        j = named[0]
        raise EmbeddingError(f"{path}: has two header lines ({rows[0][j].strip()!r} above {second[j].strip()!r}): "
                             "pandas writes one per level of MultiIndex columns; flatten the names before writing, "
                             "e.g. df.columns = ['_'.join(map(str, c)) for c in df.columns]", path=path)


def _column(name: str, cells: list[str], line_of: Any) -> Column:
    """One column from its cells: numbers with missing cells marked, text, or numbers mixed with text (a problem
    named when the column would be scored)."""
    missing = np.array([x in MISSING_CELLS for x in cells], dtype=bool)
    nums = [None if m else _number(x) for x, m in zip(cells, missing, strict=True)]
    text = [i for i, (v, m) in enumerate(zip(nums, missing, strict=True)) if v is None and not m]
    if not text:
        vals = np.array([np.nan if v is None else v for v in nums], dtype=np.float64)
        return Column(name, vals, missing if missing.any() else None)
    first = text[0]
    where = f"{cells[first]!r} at data row {first}{line_of(first)}"
    if all(_THOUSANDS.match(cells[i]) for i in text):
        return Column(name, text=True, problem=f"holds numbers with thousands separators, e.g. {where}: rankme does "
                      "not guess what a separator means; write the numbers without them")
    if all(_DECIMAL_COMMA.match(cells[i]) for i in text):
        return Column(name, text=True, problem=f"holds numbers written with a decimal comma, e.g. {where}: rankme "
                      "reads a decimal comma only in a file delimited by ';', tab or '|' whose numbers all use it; "
                      "write it so (pandas: to_csv(sep=';', decimal=',')) or with decimal points")
    if len(text) * 2 <= len(cells) - int(missing.sum()):
        return Column(name, text=True, problem=f"holds numbers and the text {where}: fix or drop that cell "
                      "(rankme never guesses a value)")
    return Column(name, text=True)


def _index_levels(cols: list[Column], cells: list[list[str]], n: int) -> None:
    """Mark the leading columns that form a pandas index (see the module docstring) as not features."""
    if n < 3:
        return
    names = [c.name for c in cols]

    def integer(c: Column) -> bool:
        return c.values is not None and c.nulls is None and bool(np.all(c.values == np.round(c.values)))

    keys: list[tuple[str, ...]] = [() for _ in range(n)]
    for j, c in enumerate(cols[: min(4, len(cols) - 1)]):
        if not (c.text or integer(c)):
            return
        keys = [(*k, x) for k, x in zip(keys, cells[j], strict=True)]
        if len(set(keys)) == n:
            break
    else:
        return
    levels = cols[: j + 1]
    if any(c.values is not None and not integer(c) for c in cols[j + 1:]):
        for c in levels:
            if c.values is not None and c.why is None and non_feature_reason(c.name, c.values, names) is None:
                c.why = _INDEX_WHY


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
        >>> notes = []; cols, _ = read_csv("eu.csv", b"a;b\\n0,5;-1,25\\n2;3,0\\n", notes=notes)
        >>> [(c.name, c.values.tolist()) for c in cols], notes
        ([('a', [0.5, 2.0]), ('b', [-1.25, 3.0])], ["eu.csv: read ',' as the decimal separator (delimiter ';')"])
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
    comma = _decimal_comma([ln for _, ln in lines], tab)
    delimiter = comma or _delimiter([ln for _, ln in lines], tab)
    rows = _split([ln for _, ln in lines], delimiter)
    if comma is not None:
        rows = [[x.replace(",", ".") if _DECIMAL_COMMA.match(x) else x for x in r] for r in rows]
        notes.append(f"{path}: read ',' as the decimal separator (delimiter {comma!r})")
    comment = _split([leading[-1].lstrip().lstrip("#").strip()], delimiter)[0] if leading else None
    header = _header(path, rows, comment, notes)
    skip = int(header is rows[0])
    if skip:
        _refuse_two_headers(path, rows)
    body, width = rows[skip:], len(header if header is not None else rows[0])
    ragged = [i for i, r in enumerate(body) if len(r) != width]
    if ragged:
        i = ragged[0]
        sep = "whitespace" if delimiter is None else repr(delimiter)
        raise EmbeddingError(f"{path}: line {lines[i + skip][0]} has {len(body[i])} fields, the header or first "
                             f"line {width} (delimiter {sep})", path=path)
    names = ([h.strip() or f"Unnamed: {j}" for j, h in enumerate(header)] if header is not None
             else [str(j) for j in range(width)])
    data_lines = [no for no, _ in lines[skip:]]

    def line_of(row: int) -> str:
        return f" (line {data_lines[row]})" if 0 <= row < len(data_lines) else ""

    cells = [[r[j].strip() for r in body] for j in range(width)]
    cols = [_column(name, cells[j], line_of) for j, name in enumerate(names)]
    first = cols[0].values if cols else None
    if (header is None and width > 1 and first is not None and first.size >= 3
            and np.array_equal(np.sort(first), np.arange(first.size))):
        cols[0].why = "a pandas index written without a header (0..N-1 in some order)"
    _index_levels(cols, cells, len(body))
    if all(c.text for c in cols) and delimiter == "," and width == 1:
        notes.append(f"{path}: one text column per line: if the file is delimited by something else than , ; "
                     "tab, | or spaces, convert it first")
    return cols, line_of

