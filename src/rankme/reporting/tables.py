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


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Plain aligned text table.

    Examples:
        >>> print(format_table([{"a": "x", "b": 1.5}], ["a", "b"]))
        a  b
        x  1.5000
    """
    cells = [[str(c) for c in columns]]
    for r in rows:
        cells.append([fmt(r.get(c, "")) for c in columns])
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
    lines += ["| " + " | ".join(fmt(r.get(c, "")).replace("|", "/") for c in cols) + " |" for r in rows]
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
