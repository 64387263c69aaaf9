"""The folder tree is the architecture: every module sits in a layer, no import cycles (lazy imports included),
the core imports without torch, and each metric name is defined once, in the registry."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rankme"
LAYERS = ("core", "metrics", "io", "monitor", "models", "scoring", "selection", "reporting", "cli", "integrations",
          "paper")


def test_every_module_sits_in_a_layer_folder():
    outside = [p.name for p in SRC.glob("*.py") if p.name != "__init__.py"]
    assert outside == []
    assert sorted(p.name for p in SRC.iterdir() if p.is_dir() and p.name != "__pycache__") == sorted(LAYERS)


def test_modules_stay_small():
    big = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > 420}
    assert big == {}


def test_no_import_cycles_lazy_imports_included():
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("rankme")
    modules = sorted(m for m in graph.modules if m.startswith("rankme."))
    deps = {m: {d for d in graph.find_modules_directly_imported_by(m) if d.startswith("rankme.")} for m in modules}
    for m in modules:  # a package's __init__ re-exporting its own submodules is not a cycle
        deps[m] = {d for d in deps[m] if not d.startswith(m + ".")}
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(m: str, path: list[str]) -> bool:
        state[m] = 1
        for d in sorted(deps.get(m, ())):
            if state.get(d) == 1:
                cycle.extend([*path[path.index(d):], d] if d in path else [m, d])
                return True
            if state.get(d) is None and visit(d, [*path, d]):
                return True
        state[m] = 2
        return False

    for m in modules:
        if state.get(m) is None and visit(m, [m]):
            break
    assert cycle == []


def test_core_and_top_level_import_without_torch():
    code = ("import sys, numpy as np, rankme, rankme.core.spectrum, rankme.io.files, rankme.scoring.source; "
            "rankme.rankme(np.eye(3)); print('torch' in sys.modules, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_each_metric_name_is_declared_once_in_the_registry():
    from rankme.metrics.registry import METRICS

    text = {p: p.read_text() for p in SRC.rglob("*.py")}
    for name in METRICS:
        declared = [p.name for p, t in text.items() if re.search(rf'Metric\(\s*"{name}"', t)]
        assert declared == ["registry.py"], name
    # no other hard-coded list of metric names (a tuple or list literal holding two or more of them)
    names = "|".join(METRICS)
    literal = re.compile(rf'[\(\[]\s*"({names})"\s*,\s*"({names})"')

    def code(t: str) -> str:  # without __all__ lists (function names) and doctest lines
        t = re.sub(r"__all__ = \[[^\]]*\]", "", t)
        return "\n".join(ln for ln in t.splitlines() if not ln.lstrip().startswith((">>>", "...")))

    offenders = [str(p.relative_to(SRC)) for p, t in text.items() if p.name != "registry.py" and literal.search(code(t))]
    assert offenders == []
