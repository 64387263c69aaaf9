"""Run a jupytext "percent" script (``# %%`` cells) cell by cell, as a notebook would, and keep each code cell's
outputs: the text it printed and the HTML of what it displayed (an object's ``_repr_html_``). docs/notebook.md
shows the cells of ``examples/select_in_a_notebook.py`` with these outputs; regenerate them with

    python tests/notebook_cells.py examples/select_in_a_notebook.py docs/data/notebook

(``PYTHONPATH=src`` to use this checkout). For code cell ``i`` (counted from 1, markdown cells skipped) it
writes ``cell-i.py`` (the code), ``cell-i.txt`` (what it printed, when it printed) and ``cell-i.html`` (what it
displayed as HTML, when it did).
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CELL_RE = re.compile(r"^# %%(?P<rest>.*)$", re.MULTILINE)


@dataclass
class Cell:
    """One cell: ``markdown`` or ``code``, its source, and (code cells, once run) its outputs."""

    kind: str
    source: str
    text: str = ""
    html: list[str] = field(default_factory=list)


def split_cells(script: str) -> list[Cell]:
    """The cells of a percent-format script, in order (the text before the first ``# %%`` is its header)."""
    marks = list(CELL_RE.finditer(script))
    cells = []
    for m, nxt in zip(marks, [*marks[1:], None], strict=True):
        body = script[m.end():nxt.start() if nxt else len(script)].strip("\n")
        kind = "markdown" if "[markdown]" in m.group("rest") else "code"
        cells.append(Cell(kind, body))
    return cells


def run_cells(path: str | Path) -> list[Cell]:
    """Run the code cells of ``path`` in one namespace, in order; returns every cell with its outputs.

    ``display`` is in the builtins, as IPython puts it: ``display(obj)`` records ``obj._repr_html_()`` when it has
    one (else prints ``obj``), as a notebook shows it. The working directory is restored afterwards (a cell may
    change it)."""
    cells = split_cells(Path(path).read_text(encoding="utf-8"))
    current: list[Cell] = []

    def display(obj: Any) -> None:
        html = getattr(obj, "_repr_html_", None)
        if callable(html):
            current[-1].html.append(html())
        else:
            print(obj)

    namespace: dict[str, Any] = {"__name__": "__main__"}
    cwd = os.getcwd()
    builtins.display = display  # type: ignore[attr-defined]  # where IPython puts its own
    try:
        for i, cell in enumerate(c for c in cells if c.kind == "code"):
            current.append(cell)
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(cell.source, f"{path} (code cell {i + 1})", "exec"), namespace)
            cell.text = out.getvalue()
    finally:
        os.chdir(cwd)
        del builtins.display  # type: ignore[attr-defined]
    return cells


def outputs(cells: list[Cell]) -> dict[str, str]:
    """The files ``run_cells``' outputs are kept in: name -> content (without a final newline: a snippet
    included into a code block would show it as an empty last line)."""
    files = {}
    for i, cell in enumerate((c for c in cells if c.kind == "code"), start=1):
        files[f"cell-{i}.py"] = cell.source.rstrip("\n")
        if cell.text:
            files[f"cell-{i}.txt"] = cell.text.rstrip("\n")
        if cell.html:
            files[f"cell-{i}.html"] = "\n".join(cell.html)
    return files


def main(argv: list[str]) -> int:
    """``notebook_cells.py SCRIPT OUT_DIR``: run SCRIPT's cells and write their outputs into OUT_DIR."""
    script, out_dir = Path(argv[0]).resolve(), Path(argv[1]).resolve()
    files = outputs(run_cells(script))
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("cell-*"):
        old.unlink()
    for name, content in files.items():
        (out_dir / name).write_text(content, encoding="utf-8")
    print(f"{len(files)} files written to {out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
