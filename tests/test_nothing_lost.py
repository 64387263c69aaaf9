"""Nothing lost on any exit (issue 28): a label check the labels cannot serve, a metric undefined on small spectra,
a bad ``--tol``, argparse's usage errors under ``--json`` and the ``--plot`` path printed are each a note or a
one-line error that keeps (or never starts) the scoring — never a ranked table lost after everything was scored.
Values are checked against a float64 SVD (``conftest.reference_rankme``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import rankme
from conftest import reference_rankme
from rankme.cli import main
from rankme.core.errors import InputError
from rankme.metrics.registry import compute_metrics

N, K = 200, 8


def _runs(root: Path, n: int = N, k: int = K) -> list[Path]:
    """Three runs lr=0.1/0.3/1.0 of n×k rows (full rank)."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for lr in (0.1, 0.3, 1.0):
        np.save(root / f"lr={lr}.npy", rng.standard_normal((n, k)) * np.linspace(1.0, 2.0, k))
        paths.append(root / f"lr={lr}.npy")
    return paths


# ---- item 6: every row labelled, a class too small for the oracle's stratified splits ----------------------------

@pytest.mark.parametrize(("y", "said"), [
    (np.r_[np.zeros(100, int), np.ones(99, int), 2], "3 classes in 200 rows, the smallest (2) with 1 row(s)"),
    (np.arange(N) % 60, "60 classes in 200 rows, the smallest (20, 21, 22, 23, 24 and 35 more) with 3 row(s)"),
])  # a class of one row; more classes than the 50 test rows
def test_a_class_too_small_for_the_oracle_is_a_note_and_the_table_is_kept(tmp_path, capsys, y, said):
    pytest.importorskip("sklearn")
    paths = _runs(tmp_path / "runs")
    np.save(tmp_path / "y.npy", y)
    argv = ["select", *map(str, paths), "--labels", str(tmp_path / "y.npy"), "--no-cache", "--no-report",
            "--no-progress"]
    assert main(argv) == 0  # every candidate scored and ranked
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "error" not in out.err
    for p in paths:
        assert f"{reference_rankme(np.load(p)):.4f}" in out.out  # the ranked table is printed
    assert "full-label oracle" in out.out and "is skipped" in out.out and said in out.out
    assert main([*argv, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [c["probe_acc"] for c in d["candidates"]] == [None] * 3 and d["oracle"] is None
    assert any("full-label oracle" in n and "--labels" not in n for n in d["notes"])
    res = rankme.select(paths, labels=y, progress=False)
    assert all(c.probe_acc is None for c in res.candidates)
    assert any("oracle" in n and "labels" in getattr(n, "names", ()) for n in res.notes)


def test_labels_the_oracle_can_split_still_get_the_oracle(tmp_path):
    pytest.importorskip("sklearn")
    paths = _runs(tmp_path / "runs")
    y = np.r_[np.zeros(100, int), np.ones(90, int), np.full(10, 2)]
    res = rankme.select(paths, labels=y, progress=False)
    assert all(c.probe_acc is not None for c in res.candidates)
    assert not any("oracle" in n for n in res.notes)


# ---- item 7: α-ReQ undefined at min(N, K) ≤ 12 is a note on that metric -------------------------------------------

def test_alpha_req_on_a_small_spectrum_is_a_note_in_rankme_score(tmp_path, capsys):
    paths = _runs(tmp_path / "runs")
    argv = ["score", *map(str, paths), "--metric", "rankme", "--metric", "alpha_req", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr()
    for p in paths:
        assert f"{reference_rankme(np.load(p)):.4f}" in out.out
    notes = [line for line in out.err.splitlines() if "'alpha_req' (--metric) is undefined here" in line]
    assert len(notes) == 3 and "ranks 11..100" in notes[0] and "fit_range" not in out.err
    assert main([*argv, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)  # strict JSON: the undefined value is null, not NaN
    assert [r["metrics"]["alpha_req"] for r in rows] == [None] * 3
    assert [r["metrics"]["rankme"] for r in rows] == pytest.approx([reference_rankme(np.load(p)) for p in paths],
                                                                   rel=1e-9)


def test_alpha_req_on_a_small_spectrum_is_a_note_in_rankme_select(tmp_path, capsys):
    paths = _runs(tmp_path / "runs")
    argv = ["select", *map(str, paths), "--metric", "rankme", "--metric", "alpha_req", "--no-cache", "--no-report",
            "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr()
    assert "error" not in out.err
    assert "the metric 'alpha_req' (--metric) is NaN for 3 of 3 candidate(s)" in out.out
    for p in paths:
        assert f"{reference_rankme(np.load(p)):.4f}" in out.out
    res = rankme.select(paths, metrics=["rankme", "alpha_req"], progress=False)
    assert all(math.isnan(c.metrics["alpha_req"]) for c in res.candidates)
    assert [c.metrics["rankme"] for c in res.candidates] == pytest.approx(
        sorted((reference_rankme(np.load(p)) for p in paths), reverse=True), rel=1e-9)


@pytest.mark.parametrize(("n", "k"), [(200, 10), (200, 12), (12, 200), (13, 200)])
def test_compute_metrics_says_when_alpha_req_is_undefined(n, k):
    z = np.random.default_rng(1).standard_normal((n, k))
    notes: list = []
    values = compute_metrics(z, ["rankme", "alpha_req"], notes=notes)
    assert values["rankme"] == pytest.approx(reference_rankme(z), rel=1e-9)
    assert math.isnan(values["alpha_req"]) and len(notes) == 1 and notes[0].names == ("metrics",)
    with pytest.raises(InputError, match="needs 3 there") as err:  # without notes=, the library raises
        compute_metrics(z, ["alpha_req"])
    assert err.value.kind == "undefined" and err.value.param == "metrics"


# ---- item 8: --tol -0.5 / nan refused before anything is scored --------------------------------------------------

@pytest.mark.parametrize("tol", ["-0.5", "nan", "inf"])
def test_a_bad_tol_is_a_usage_error_naming_the_flag(tmp_path, capsys, tol):
    paths = _runs(tmp_path / "runs")
    with pytest.raises(SystemExit) as err:
        main(["select", *map(str, paths), "--tol", tol, "--no-cache", "--no-report"])
    assert err.value.code == 2
    assert f"rankme select: error: argument --tol: must be a finite number >= 0, got '{tol}'" in capsys.readouterr().err


@pytest.mark.parametrize("tol", [-0.5, float("nan"), float("inf"), True, "0.1"])
def test_a_bad_tol_is_an_input_error_in_python(tmp_path, monkeypatch, tol):
    import rankme.selection.select as pipeline

    paths = _runs(tmp_path / "runs")
    monkeypatch.setattr(pipeline, "score_files", lambda *a, **kw: pytest.fail("scored before tol was checked"))
    with pytest.raises(InputError, match=r"^tol must be a finite number >= 0") as err:
        rankme.select(paths, tol=tol, progress=False)
    assert err.value.param == "tol"


def test_a_good_tol_still_picks_on_the_plateau(tmp_path):
    paths = _runs(tmp_path / "runs")
    assert rankme.select(paths, param="lr", tol=0.0, progress=False).selection.plateau is not None


# ---- item 10: argparse's usage errors print the JSON error with --json -------------------------------------------

@pytest.mark.parametrize("bad", [["--samples", "2.5"], ["--metric", "nosuch"], ["--eps", "-1"], ["--nosuch"]])
def test_argparse_usage_errors_print_json_in_rankme_score(tmp_path, capsys, bad):
    np.save(tmp_path / "z.npy", np.eye(4))
    with pytest.raises(SystemExit) as err:
        main(["score", str(tmp_path / "z.npy"), "--json", *bad])
    assert err.value.code == 2
    out = capsys.readouterr()
    (row,) = json.loads(out.out)  # a list, as for every other rankme score --json failure
    assert set(row) == {"error"} and row["error"] in out.err and bad[0] in row["error"]
    assert "usage: rankme" in out.err


@pytest.mark.parametrize("bad", [["--tol", "-0.5"], ["--metric", "nosuch"], ["--batch-size", "x"]])
def test_argparse_usage_errors_print_json_in_rankme_select(tmp_path, capsys, bad):
    with pytest.raises(SystemExit) as err:
        main(["select", str(tmp_path), "--jso", *bad])  # any prefix argparse accepts
    assert err.value.code == 2
    out = capsys.readouterr()
    obj = json.loads(out.out)  # an object, as for every other rankme select --json failure
    assert set(obj) == {"error"} and obj["error"] in out.err and bad[0] in obj["error"]


def test_without_json_a_usage_error_prints_nothing_on_stdout(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["score", str(tmp_path / "z.npy"), "--samples", "2.5"])
    assert capsys.readouterr().out == ""


# ---- item 12: the --plot path printed is the file written --------------------------------------------------------

@pytest.mark.parametrize("name", ["DIR", "fig", "fig.svg"])
def test_plot_prints_the_file_it_wrote(tmp_path, capsys, name):
    pytest.importorskip("matplotlib")
    np.save(tmp_path / "z.npy", np.random.default_rng(0).standard_normal((50, 6)))
    (tmp_path / "DIR").mkdir()
    assert main(["score", str(tmp_path / "z.npy"), "--plot", str(tmp_path / name), "--no-progress"]) == 0
    want = tmp_path / (name if name.endswith(".svg") else name + ".png")
    assert f"plot: {want}\n" in capsys.readouterr().err
    assert want.is_file() and want.stat().st_size > 0
