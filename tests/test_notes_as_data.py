"""Notes are data too: the library's notes (``res.notes``, ``run.notes``, caveats) name Python parameters as its
errors do (``samples=``, ``key=``, ``columns=``; never a flag) and carry them in ``names``
(:class:`rankme.core.errors.Note`, a ``str``); the CLI writes them as its flags through the same
:func:`rankme.cli.errors.user_message` (tests/test_errors_as_data.py covers the errors and the flag table)."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

import rankme
from conftest import write_runs
from rankme.cli import main
from rankme.cli.errors import FLAGS, PYTHON_ONLY, user_message
from rankme.core.errors import Note
from rankme.io.files import load_embeddings
from rankme.metrics import registry
from rankme.reporting.select_report import selection_text
from rankme.scoring.source import score_source

SRC = Path(rankme.__file__).parent
Z = np.random.default_rng(0).standard_normal((120, 6))


def _note(notes: list[str], words: str) -> Note:
    (note,) = [n for n in notes if words in n]
    assert isinstance(note, Note), f"{note!r} names a parameter but carries no names"
    return note


def _runs(folder: Path) -> Path:
    write_runs(folder, {"rank=2.npy": 2, "rank=4.npy": 4}, n=120, k=6)
    return folder


# ---- Python: parameters, never flags, and their names as data ------------------------------------------------


def test_score_notes_name_samples_and_key_as_parameters(tmp_path):
    np.save(tmp_path / "samples=2.npy", Z)  # a file name that looks like a parameter stays as it is
    res = score_source(load_embeddings(tmp_path / "samples=2.npy", key="x"), samples=500)
    below = _note(res.notes, "is not below")
    assert below == f"samples=500 is not below the 120 rows of {tmp_path / 'samples=2.npy'}: all rows scored"
    assert below.names == ("samples",) and below.path == str(tmp_path / "samples=2.npy")
    ignored = _note(res.notes, "ignored")
    assert ignored.startswith(f"{tmp_path / 'samples=2.npy'}: key='x' ignored") and ignored.names == ("key",)
    assert not any("--" in n for n in res.notes), res.notes
    assert user_message(below) == f"--samples 500 is not below the 120 rows of {tmp_path / 'samples=2.npy'}: all rows scored"


def test_the_paper_sample_note_says_samples_equals(tmp_path):
    np.save(tmp_path / "big.npy", np.random.default_rng(1).standard_normal((25_601, 2)).astype(np.float32))
    res = score_source(load_embeddings(tmp_path / "big.npy"))
    note = _note(res.notes, "the paper uses")
    assert "(pass samples=25600 to compare with its numbers)" in note and note.names == ("samples",)
    assert "(pass --samples 25600 to compare" in user_message(note)


def test_npz_and_table_notes_name_key_and_columns(tmp_path):
    np.savez(tmp_path / "z.npz", emb=Z, ids=np.arange(len(Z)))
    note = _note(load_embeddings(tmp_path / "z.npz").notes, "one 2-D array")
    assert note.endswith("(key= chooses another)") and note.names == ("key",) and "--" not in note
    assert user_message(note).endswith("(--key chooses another)")
    (tmp_path / "t.csv").write_text("a,b,label\n" + "".join(f"{i},{i * i % 7},{i % 2}\n" for i in range(20)))
    note = _note(load_embeddings(tmp_path / "t.csv").notes, "excluded column(s) ['label']")
    assert note.endswith("; pass columns= to choose columns yourself") and note.names == ("columns",)
    assert user_message(note).endswith("; pass --columns to choose columns yourself")


def test_a_skipped_metric_names_the_metrics_parameter(monkeypatch):
    monkeypatch.setattr(registry, "has_module", lambda name: False)
    ok, (note,) = registry.split_available(["rankme", "cluster"])
    assert ok == ["rankme"] and note.names == ("metrics",) and "--" not in note
    assert note.startswith("the metric 'cluster' (metrics=) needs 'sklearn'")
    assert user_message(note).startswith("the metric 'cluster' (--metric) needs 'sklearn'")


def test_select_caveats_and_the_no_warning_line_name_parameters(tmp_path):
    res = rankme.select(_runs(tmp_path / "runs"), progress=False)
    caveat = _note(res.selection.caveats, "the edge check read rank")
    assert caveat.endswith("(name it, or another, with param=)") and caveat.names == ("param",)
    quiet = dataclasses.replace(res.selection, warnings=[])
    python_lines = selection_text(quiet)
    assert any(line.endswith("check the pick with a few labels (labels=)") for line in python_lines)
    assert not any("--" in line for line in python_lines) and "with param=)" in str(res)
    assert any(c.endswith("with param=)") for c in res.to_dict()["caveats"])
    cli_lines = selection_text(quiet, user_message)
    assert any(line.endswith("check the pick with a few labels (--labels)") for line in cli_lines)
    assert any(line.endswith("(name it, or another, with --param)") for line in cli_lines)


# ---- the CLI: the same notes, as flags ------------------------------------------------------------------------


def test_rankme_score_shows_the_flags_in_text_and_json(tmp_path, capsys):
    np.save(tmp_path / "z.npy", Z)
    args = ["score", str(tmp_path / "z.npy"), "--samples", "500", "--key", "x", "--no-progress"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "note: --samples 500 is not below the 120 rows" in err and "--key 'x' ignored" in err
    assert "samples=" not in err and "key=" not in err
    assert main([*args, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert any(n.startswith("--samples 500 is not below") for n in row["notes"])
    assert any("--key 'x' ignored" in n for n in row["notes"]) and not any("=" in n for n in row["notes"])


def test_rankme_select_shows_the_flags_in_text_json_and_report(tmp_path, capsys):
    runs = _runs(tmp_path / "runs")
    assert main(["select", str(runs), "--no-cache", "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "(name it, or another, with --param)" in out and "param=" not in out
    assert main(["select", str(runs), "--no-cache", "--no-report", "--json"]) == 0
    caveats = json.loads(capsys.readouterr().out)["caveats"]
    assert any(c.endswith("with --param)") for c in caveats) and not any("param=" in c for c in caveats)
    assert main(["select", str(runs), "--no-cache", "--out", str(tmp_path / "o")]) == 0
    html = next((tmp_path / "o").glob("*.html")).read_text()
    assert "with --param)" in html and "with param=)" not in html
    rankme.select(runs, out=tmp_path / "py", progress=False)  # the Python API's report: Python's words
    html = next((tmp_path / "py").glob("*.html")).read_text()
    assert "with param=)" in html and "with --param)" not in html


# ---- no note in the library names a flag; the table covers every name a note carries -------------------------


def _library_strings() -> list[tuple[str, str]]:
    """Every string literal of the library outside ``cli/`` and the reproduction report (``paper/``, which names
    its own commands), docstrings (of modules, functions, classes and attributes) left out: (file, text)."""
    found = []
    for path in SRC.rglob("*.py"):
        if {"cli", "paper"} & set(path.relative_to(SRC).parts):
            continue
        tree = ast.parse(path.read_text())
        docs = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
        found += [(path.name, n.value) for n in ast.walk(tree)
                  if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]
    return found


def test_no_library_message_names_a_flag():
    flagged = [(f, s) for f, s in _library_strings() if re.search(r"(?<![\w-])--[a-z]", s)]
    assert flagged == []


def _note_names() -> set[str]:
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "Note":
                found |= {c.value for kw in node.keywords if kw.arg == "names" for c in ast.walk(kw.value)
                          if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    return found


def test_the_flag_table_covers_every_parameter_a_note_names():
    names = _note_names()
    assert {"samples", "key", "columns", "fill_missing", "param", "labels", "metrics"} <= names  # the scan sees them
    assert names - set(FLAGS) - PYTHON_ONLY == set()


@pytest.mark.parametrize("name", sorted(FLAGS))
def test_each_flagged_parameter_is_renamed_in_a_note(name):
    note = Note(f"x.npy: pass {name}=3 or {name}= again", names=(name,), path="x.npy")
    assert user_message(note) == f"x.npy: pass {FLAGS[name]} 3 or {FLAGS[name]} again"
