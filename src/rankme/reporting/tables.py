"""Tables: one number format, aligned text tables for the terminal, markdown tables for reports and docs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["fmt", "format_table", "short_name", "to_markdown"]


def fmt(v: Any) -> str:
    """The one number format of tables: integers as integers, else 4 decimals (4 significant digits when very
    large or small); strings as they are.

    Examples:
        >>> fmt(3.0), fmt(2.345678), fmt(1.5e-5), fmt(float("nan")), fmt("x")
        ('3', '2.3457', '1.5e-05', 'nan', 'x')
    """
    if not isinstance(v, float):
        return str(v)
    if math.isinf(v) or math.isnan(v):
        return str(v)
    if v.is_integer() and abs(v) < 1e15:
        return f"{int(v)}"
    return f"{v:.4g}" if abs(v) >= 1e5 or abs(v) < 1e-3 else f"{v:.4f}"


def _column_formats(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> dict[str, bool]:
    """Per column: True when its floats are shown with decimals (one of them is not a whole number), so a column
    never mixes ``96`` and ``96.2000``."""
    out = {}
    for c in columns:
        vals = [r.get(c) for r in rows]
        out[c] = any(isinstance(v, float) and math.isfinite(v) and not v.is_integer() for v in vals)
    return out


def _cell(v: Any, decimals: bool) -> str:
    if decimals and isinstance(v, float) and math.isfinite(v) and v.is_integer() and abs(v) < 1e5:
        return f"{v:.4f}"
    return fmt(v)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Plain aligned text table; every number of a column in one format.

    Examples:
        >>> print(format_table([{"a": "x", "b": 1.5}, {"a": "y", "b": 96.0}], ["a", "b"]))
        a  b
        x  1.5000
        y  96.0000
    """
    dec = _column_formats(rows, columns)
    cells = [[str(c) for c in columns]]
    for r in rows:
        cells.append([_cell(r.get(c, ""), dec[c]) for c in columns])
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def to_markdown(rows: Sequence[dict[str, Any]], cols: Sequence[str]) -> str:
    """A markdown table.

    Examples:
        >>> print(to_markdown([{"a": 1, "b": 0.5}], ["a", "b"]))
        | a | b |
        |---|---|
        | 1 | 0.5000 |
    """
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    dec = _column_formats(rows, cols)
    lines += ["| " + " | ".join(_cell(r.get(c, ""), dec[c]).replace("|", "/") for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def short_name(name: str, width: int = 48) -> str:
    """A long path shortened for tables and legends (the full name stays in JSON).

    Examples:
        >>> short_name("st:/usr/lib/python3/site-packages/pkg/model", width=20)
        'st:…/pkg/model'
    """
    if len(name) <= width or "/" not in name:
        return name
    scheme, sep, rest = name.partition(":")
    head = scheme + sep if sep and "/" not in scheme else ""
    tail = (rest if head else name).rstrip("/").split("/")[-2:]
    return f"{head}…/{'/'.join(tail)}"
