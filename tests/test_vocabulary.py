"""One vocabulary: the Python API takes the command line's names and writes nothing unasked, every command agrees
on its exit status, every option says what it does, ``--help`` lists what is read, renamed keywords keep working
with a DeprecationWarning, and flags are keyword-only."""

from __future__ import annotations

import argparse
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

import rankme
from conftest import write_runs
from rankme.cli import main
from rankme.cli.errors import flag_text
from rankme.cli.main import COMMANDS, build_parser
from rankme.io.files import READERS, STORE_FORMATS, STORE_READERS
from rankme.io.stores import DIRECTORY_FORMATS

SELECT_DOC = Path(__file__).resolve().parents[1] / "docs" / "select.md"


def _runs(root: Path) -> Path:
    write_runs(root, {f"lr={r / 10}.npy": r for r in (2, 5, 3)}, n=60, k=8)
    return root


def _files(root: Path) -> list[Path]:
    return sorted(root.iterdir())


# ---- rankme.select: the CLI's names, nothing written unasked -------------------------------------------------

def test_select_writes_nothing_unless_out_is_given(tmp_path, monkeypatch):
    runs = _runs(tmp_path / "runs")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    res = rankme.select(runs, param="lr", progress=False)
    assert res.best.params["lr"] == 0.5
    assert list(cwd.iterdir()) == [] and [p.name for p in _files(runs)] == ["lr=0.2.npy", "lr=0.3.npy", "lr=0.5.npy"]


def test_select_out_holds_the_cache_and_the_report_as_the_cli_does(tmp_path):
    runs, out = _runs(tmp_path / "runs"), tmp_path / "sel"
    first = rankme.select(runs, out=out, progress=False)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith("cache.sqlite-")) == \
        ["cache.sqlite", "report.html"]
    assert not any(c.cached for c in first.candidates)
    again = rankme.select(runs, out=out, report=False, progress=False)
    assert all(c.cached for c in again.candidates)
    assert [c.metrics["rankme"] for c in again.candidates] == [c.metrics["rankme"] for c in first.candidates]
    only_cache = tmp_path / "only-cache"
    rankme.select(runs, out=only_cache, report=False, progress=False)
    assert (only_cache / "cache.sqlite").is_file() and not (only_cache / "report.html").exists()


def test_select_cache_is_a_deprecated_alias(tmp_path):
    runs, cache = _runs(tmp_path / "runs"), tmp_path / "c.sqlite"
    with pytest.warns(DeprecationWarning, match=r"cache= is deprecated: use out=FOLDER"):
        rankme.select(runs, cache=cache, progress=False)
    assert cache.is_file()
    with pytest.warns(DeprecationWarning):
        assert all(c.cached for c in rankme.select(runs, cache=cache, progress=False).candidates)
    with pytest.raises(rankme.InputError, match=r"give only out=") as err:
        rankme.select(runs, cache=cache, out=tmp_path / "o", progress=False)
    assert err.value.param == "cache"


def test_select_out_on_a_file_names_out(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(rankme.InputError, match=r"^out=.*a-file is a file, not a folder; choose another out=$") as e:
        rankme.select(_runs(tmp_path / "runs"), out=blocker, progress=False)
    assert e.value.param == "out"
    assert flag_text(str(e.value), ["out"]) == f"--out {blocker} is a file, not a folder; choose another --out"


def _select_options() -> dict[str, argparse.Action]:
    sub = next(a for a in build_parser(["select"])._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in sub.choices["select"]._actions if not isinstance(a, argparse._HelpAction)}


def test_docs_table_pairs_every_select_option_with_a_keyword_of_rankme_select():
    text = SELECT_DOC.read_text(encoding="utf-8")
    table = text.split("### The same names in Python", 1)[1].split("\n\n", 3)[2]
    rows = [line.split("|")[1:3] for line in table.splitlines()[2:]]
    flags = {f for cli, _ in rows for f in re.findall(r"--[a-z-]+", cli)}
    options = _select_options()
    assert flags == {o for a in options.values() for o in a.option_strings}, "docs/select.md's table"
    params = set(inspect.signature(rankme.select).parameters)
    keywords = {k for _, py in rows for k in re.findall(r"`(\w+)=", py)} | {"sources"}
    assert keywords <= params
    for dest in options:  # each option's dest is the keyword of the same name, metrics the one plural
        if dest not in ("json", "no_cache", "no_report", "no_progress"):
            assert (dest if dest != "metric" else "metrics") in params, dest


# ---- exit status: the same in every command ------------------------------------------------------------------

def _bad(tmp_path: Path) -> Path:
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not an array")
    return bad


@pytest.mark.parametrize("command", ["score", "select"])
def test_exit_status_agrees_across_commands(tmp_path, capsys, command):
    runs = _runs(tmp_path / "runs")
    good = [str(p) for p in _files(runs)]
    quiet = ["--no-progress"] + (["--no-cache", "--no-report"] if command == "select" else [])
    assert main([command, *good, *quiet]) == 0
    with pytest.raises(SystemExit) as bad:  # a bad option: argparse's usage error, nothing scored
        main([command, *good, "--samples", "0", *quiet])
    assert bad.value.code == 2
    assert main([command, str(_bad(tmp_path)), *quiet]) == 2  # every input refused: nothing scored
    assert main([command, *good, str(_bad(tmp_path)), *quiet]) == 1  # some refused, the others' results printed
    err = capsys.readouterr().err
    assert "argument --samples: must be a positive integer, got '0'" in err and "Traceback" not in err


@pytest.mark.parametrize("command", COMMANDS)
def test_argparse_usage_errors_exit_2_in_every_command(command, capsys):
    bad = {"score": ["z.npy", "--samples", "x"], "select": ["--image-size", "0"],
           "demo": ["--workers", "0"], "reproduce": ["--workers", "0"]}[command]
    with pytest.raises(SystemExit) as err:
        build_parser([command]).parse_args([command, *bad])
    assert err.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(f"rankme {command}: error: argument")


# ---- help ----------------------------------------------------------------------------------------------------

def test_every_option_of_every_command_has_help():
    missing = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sub in a.choices.items():
                    walk(sub, f"{path} {name}")
            elif not isinstance(a, argparse._HelpAction) and not (a.help or "").strip():
                missing.append(f"{path} {'/'.join(a.option_strings) or a.dest}")

    walk(build_parser(), "rankme")
    assert missing == []


def test_score_help_lists_every_format_it_reads(capsys):
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(suffix in text for suffix in READERS)
    assert set(STORE_READERS) == set(DIRECTORY_FORMATS)
    assert all(name in text for name in STORE_FORMATS)
    assert {"Zarr", "Hugging Face datasets", "Lance"} <= set(STORE_FORMATS)


# ---- renamed keywords: the new name, the old one deprecated ----------------------------------------------------

def test_eigen_replaces_spectrum():
    z = np.random.default_rng(0).standard_normal((50, 6))
    new = rankme.rankme(z, center=True, eigen=True)
    with pytest.warns(DeprecationWarning, match=r"spectrum= is deprecated: use eigen=True"):
        assert rankme.rankme(z, center=True, spectrum="eigen") == new
    with pytest.warns(DeprecationWarning):
        assert rankme.rankme_from_singular_values([3.0, 1.0], spectrum="eigen") == \
            rankme.rankme_from_singular_values([3.0, 1.0], eigen=True)


def test_dim_replaces_k_and_center_replaces_centered():
    with pytest.warns(DeprecationWarning, match=r"k= is deprecated: use dim="):
        assert rankme.isotropic_rankme_fraction(100, k=50) == rankme.isotropic_rankme_fraction(100, dim=50)
    with pytest.warns(DeprecationWarning):
        assert rankme.sample_size_note(100, k=64) == rankme.sample_size_note(100, 64)
    from rankme.metrics.states import Spectra

    sp = Spectra(np.eye(3))
    with pytest.warns(DeprecationWarning, match=r"centered= is deprecated: use center="):
        assert sp(centered=True) is sp(center=True)


def test_names_replaces_labels_and_layer_replaces_tap():
    from rankme.selection.candidates import Candidate
    from rankme.selection.warnings import selection_warnings

    kw = {"secondary": {"stable_rank": [3.0, 1.0, 2.0], "nesum": [3.0, 1.0, 2.0]}}
    new = [str(w) for w in selection_warnings([1.0, 3.0, 2.0], names=["a", "b", "c"], **kw)]
    assert new and "a" in new[0]
    with pytest.warns(DeprecationWarning, match=r"labels= is deprecated: use names="):
        assert [str(w) for w in selection_warnings([1.0, 3.0, 2.0], labels=["a", "b", "c"], **kw)] == new
    c = Candidate("m", "encoder.layer.2", 10, 4, {"rankme": 3.0})
    assert c.layer == "encoder.layer.2" and "layer" in c.to_dict() and "tap" not in c.to_dict()
    with pytest.warns(DeprecationWarning, match=r"Candidate.tap is deprecated"):
        assert c.tap == "encoder.layer.2"


def test_plot_spectra_is_defined_once():
    src = Path(rankme.__file__).parent
    defs = [str(p.relative_to(src)) for p in src.rglob("*.py") if re.search(r"^def plot_spectra\(", p.read_text(),
                                                                             flags=re.M)]
    assert defs == ["reporting/figures.py"]


# ---- flags are keyword-only ----------------------------------------------------------------------------------

def test_boolean_flags_are_keyword_only(tmp_path):
    from rankme.io.stores import read_zarr
    from rankme.selection.candidates import candidate_from_record
    from rankme.selection.features import feature_jobs
    from rankme.selection.warnings import no_warning_text

    calls = [lambda: read_zarr(str(tmp_path / "x.zarr"), None, [], True),
             lambda: candidate_from_record("a", "", {}, ["rankme"], {}, True),
             lambda: feature_jobs(["rankme"], None, np.arange(3), 0, True),
             lambda: no_warning_text(True)]
    for call in calls:
        with pytest.raises(TypeError, match=r"positional argument"):
            call()
