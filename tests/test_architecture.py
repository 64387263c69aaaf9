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


def test_modules_stay_below_the_backstop():
    """One concept per module is a review rule (docs/architecture.md); this is only a generous backstop."""
    big = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > 600}
    assert big == {}


def test_no_module_imports_the_old_validation_path():
    """``rankme.core.validation`` is kept for users' old imports only: rankme imports each name from its module."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("rankme")
    importers = graph.find_modules_that_directly_import("rankme.core.validation")
    assert sorted(importers) == []
    text = {str(p.relative_to(SRC)): p.read_text() for p in SRC.rglob("*.py") if p.name != "validation.py"}
    assert [p for p, t in text.items() if "core.validation" in t or "core import validation" in t] == []


def test_old_validation_imports_keep_working_with_a_warning():
    import rankme
    from rankme.core import arrays, checks, errors, resources

    moved = {"InputError": errors, "EmbeddingError": errors, "Note": errors, "SampleSizeWarning": errors,
             "all_zero_error": errors, "as_embeddings": arrays, "numpy_dtype_of": arrays, "check_shape": arrays,
             "check_finite": arrays, "check_positive": checks, "check_views": checks, "check_views_layout": checks,
             "check_labels": checks, "warn_sample_size": checks, "available_memory_bytes": resources,
             "check_state_fits": resources}
    validation = __import__("rankme.core.validation", fromlist=["_"])
    for name, module in moved.items():
        with pytest.warns(DeprecationWarning, match=rf"import {name} from {module.__name__}$"):
            assert getattr(validation, name) is getattr(module, name)
    assert (rankme.InputError, rankme.EmbeddingError, rankme.SampleSizeWarning) == (
        errors.InputError, errors.EmbeddingError, errors.SampleSizeWarning)
    with pytest.raises(AttributeError):
        validation.row_digests  # noqa: B018 - moved to the scoring layer (rankme.scoring.duplicates)


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
