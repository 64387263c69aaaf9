"""examples/select_in_a_notebook.py: it runs as a plain script, it is a jupytext "percent" notebook, and the cell
outputs docs/notebook.md includes (docs/data/notebook/) are what its cells produce now."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from notebook_cells import outputs, run_cells, split_cells

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "select_in_a_notebook.py"
KEPT = ROOT / "docs" / "data" / "notebook"
REGENERATE = "PYTHONPATH=src python tests/notebook_cells.py examples/select_in_a_notebook.py docs/data/notebook"


def test_runs_as_a_script(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, str(EXAMPLE)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # without a notebook, display() prints the text rendering: the table, the evidence, then the one-line answer
    assert "recommendation: keep temperature=0.2 (mean of 2 runs)" in proc.stdout
    assert "warning [edge] RankMe picks the smallest temperature swept (0.05)" in proc.stdout
    assert "\nkeep temperature=0.2 (mean of 2 runs) — the participation ratio's pick — how sure:" in proc.stdout
    assert list(tmp_path.iterdir()) == [], "the example writes into its own temporary folder"


def test_is_a_percent_notebook() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert "format_name: percent" in text.split("# %%")[0]
    cells = split_cells(text)
    assert [c.kind for c in cells].count("code") == 6 and cells[0].kind == "markdown"
    if _has("jupytext"):  # the real reader, where installed
        import jupytext

        nb = jupytext.read(EXAMPLE)
        assert [c.cell_type for c in nb.cells] == [c.kind for c in cells]


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_docs_outputs_are_current() -> None:
    fresh = outputs(run_cells(EXAMPLE))
    kept = {p.name: p.read_text(encoding="utf-8") for p in KEPT.glob("cell-*")}
    assert sorted(fresh) == sorted(kept), f"cells changed: regenerate with `{REGENERATE}`"
    stale = [name for name in fresh if fresh[name] != kept[name]]
    assert not stale, f"outputs changed in {stale}: regenerate with `{REGENERATE}`"
    html = fresh["cell-3.html"]
    assert html.startswith("<div class='rankme-select'><p><strong>keep temperature=0.2 (mean of 2 runs)")
    assert '<tr class="pick"><td>5</td>' in html  # the kept runs' rows are marked


def test_docs_page_includes_every_output() -> None:
    page = (ROOT / "docs" / "notebook.md").read_text(encoding="utf-8")
    included = set(re.findall(r'--8<-- "docs/data/notebook/(cell-[^"]+)"', page))
    assert included == {p.name for p in KEPT.glob("cell-*")}
