"""``rankme score`` end to end: which shards ``--as-one`` reads (each physical file once, hidden entries skipped,
every skip noted), results that are never lost (an unwritable ``--plot``, Ctrl-C), NaN shards named with their row
(also under Dask), and the note on exact duplicate rows."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import make_matrix, reference_rankme
from rankme.cli import main
from rankme.core.errors import EmbeddingError
from rankme.io.files import load_embeddings
from rankme.io.shards import expand_shards, open_shards
from rankme.scoring.duplicates import duplicate_rows_note, row_digests
from rankme.scoring.source import score_source

Z = make_matrix("powerlaw", 400, 12, seed=5)


def _json_out(capsys) -> list[dict]:
    return json.loads(capsys.readouterr().out)


def _messy_folder(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A shard folder with a link to a shard, a hidden checkpoint folder, a linked subfolder, an upper-case suffix
    and a README; returns it and the matrix its physical shards hold."""
    d, other = tmp_path / "d", tmp_path / "other"
    (d / ".ipynb_checkpoints").mkdir(parents=True)
    other.mkdir()
    np.save(d / "part-001.npy", Z[:100])
    np.save(d / "part-002.npy", Z[100:220])
    with open(d / "PART-004.NPY", "wb") as fh:  # np.save would append ".npy" to the name
        np.save(fh, Z[220:230])
    np.save(other / "part-003.npy", Z[230:260])
    np.save(d / ".ipynb_checkpoints" / "part-001-checkpoint.npy", Z[300:350])
    np.save(d / ".hidden.npy", Z[350:360])
    os.symlink(d / "part-001.npy", d / "link.npy")
    os.symlink(other, d / "linked")
    (d / "README.md").write_text("shards\n")
    return d, Z[:260]


def test_as_one_counts_each_physical_file_once_and_notes_every_skip(tmp_path, capsys):
    d, truth = _messy_folder(tmp_path)
    assert main(["score", str(d), str(d / "part-001.npy"), "--as-one", "--json", "--no-progress"]) == 0
    res = _json_out(capsys)[0]
    assert res["n"] == 260  # was 425: the link and the named file counted twice, the hidden ones read, the rest lost
    assert res["metrics"]["rankme"] == pytest.approx(reference_rankme(truth), rel=1e-9)
    notes = "\n".join(res["notes"])
    assert f"{d}/link.npy: the same file as {d}/part-001.npy (a link or a repeated name): counted once" in notes
    assert f"{d}/part-001.npy: named more than once: counted once" in notes
    assert "hidden file(s)/folder(s): " in notes and ".ipynb_checkpoints/" in notes and ".hidden.npy" in notes
    assert "1 file(s) of other types: README.md" in notes
    shards = [Path(p).name for p in open_shards([d]).shards]
    assert shards == ["PART-004.NPY", "part-003.npy", "part-001.npy", "part-002.npy"]  # the linked folder's too


def test_a_link_loop_and_a_glob_are_walked_once(tmp_path):
    d, truth = _messy_folder(tmp_path)
    os.symlink(d, d / "loop")  # a link to an ancestor: searched once, not forever
    notes: list[str] = []
    assert len(expand_shards([d], notes)) == 4
    assert any(n.endswith("/loop: a link to a folder already searched: not searched again") for n in notes)
    src = open_shards([str(d / "*")])  # the glob matches README.md and the linked folder
    assert src.n_rows == 260
    assert any("skipped 1 file(s) of other types: README.md" in n for n in src.notes)
    res = score_source(src, ["rankme"], progress=False)
    assert res.metrics["rankme"] == pytest.approx(reference_rankme(truth), rel=1e-9)


def test_a_folder_with_only_hidden_shards_says_so(tmp_path):
    (tmp_path / "d" / ".ipynb_checkpoints").mkdir(parents=True)
    np.save(tmp_path / "d" / ".ipynb_checkpoints" / "a.npy", Z)
    with pytest.raises(EmbeddingError, match=r"no embedding files .* in this folder \(skipped 1 hidden"):
        expand_shards([tmp_path / "d"])


def test_an_unwritable_plot_keeps_the_results(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    np.save(tmp_path / "z.npy", Z)
    bad = tmp_path / "no" / "such" / "s.png"
    assert main(["score", str(tmp_path / "z.npy"), "--json", "--plot", str(bad), "--no-progress"]) == 1
    out = capsys.readouterr()
    res, err = json.loads(out.out)
    assert res["metrics"]["rankme"] == pytest.approx(reference_rankme(Z), rel=1e-9)
    assert err["plot"] == str(bad) and err["error"].startswith(f"--plot {bad}: could not write the figure")
    assert "Traceback" not in out.err and len(out.err.strip().splitlines()) == 1
    assert main(["score", str(tmp_path / "z.npy"), "--plot", str(bad), "--no-progress"]) == 1
    out = capsys.readouterr()
    assert "z.npy" in out.out and f"{reference_rankme(Z):.4f}" in out.out


def _three_files(tmp_path: Path) -> list[str]:
    paths = []
    for i, (lo, hi) in enumerate(((0, 150), (150, 400), (0, 400))):
        np.save(tmp_path / f"f{i}.npy", Z[lo:hi])
        paths.append(str(tmp_path / f"f{i}.npy"))
    return paths


@pytest.mark.parametrize("as_json", [False, True])
def test_ctrl_c_prints_the_files_that_finished(tmp_path, capsys, monkeypatch, as_json):
    import rankme.io.files as files  # rankme.cli.score imports its reader when the command runs

    paths = _three_files(tmp_path)
    real = files.load_embeddings

    def third_interrupted(path, **kw):
        if str(path) == paths[2]:
            raise KeyboardInterrupt
        return real(path, **kw)

    monkeypatch.setattr(files, "load_embeddings", third_interrupted)
    assert main(["score", *paths, "--no-progress"] + (["--json"] if as_json else [])) == 130
    out = capsys.readouterr()
    assert f"rankme: interrupted while scoring {paths[2]}: the 2 finished result(s) are printed; 1 not scored" in out.err
    assert "saved" not in out.err and "resume" not in out.err
    want = [reference_rankme(Z[:150]), reference_rankme(Z[150:])]
    if as_json:
        rows = json.loads(out.out)
        assert [r["metrics"]["rankme"] for r in rows[:2]] == pytest.approx(want, rel=1e-9)
        assert rows[2] == {"file": paths[2], "error": f"{paths[2]}: not scored (interrupted)"}
    else:
        assert all(f"{w:.4f}" in out.out for w in want) and "not scored" in out.out


@pytest.mark.parametrize(("sig", "parent_ignores_sigint"), [(signal.SIGINT, False), (signal.SIGINT, True),
                                                           (signal.SIGTERM, False)])
def test_ctrl_c_in_a_real_process(tmp_path, sig, parent_ignores_sigint):
    """SIGINT while `rankme score a b -` waits on standard input: a and b are printed, the exit status is 130.
    SIGTERM (`timeout`, SLURM, `docker stop`) does the same. The child gets the default SIGINT handler even when
    this test runner was started with SIGINT ignored (`nohup`, a background job, some CI runners), as a shell
    gives an interactive command: the test measures the product, not how pytest was launched."""
    dup = np.concatenate([Z[:40]] * 3)  # duplicate rows: each file's note on stderr says it has finished
    np.save(tmp_path / "a.npy", dup)
    np.save(tmp_path / "b.npy", dup[:100])
    before = signal.signal(signal.SIGINT, signal.SIG_IGN) if parent_ignores_sigint else None
    try:
        proc = subprocess.Popen([sys.executable, "-m", "rankme.cli", "score", "a.npy", "b.npy", "-", "--no-progress"],
                                cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    finally:
        if before is not None:
            signal.signal(signal.SIGINT, before)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stderr or ()], daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not lines.get(timeout=max(0.1, deadline - time.monotonic())).startswith("note: b.npy: only"):
            pass  # each file's note says it finished; then `-` waits on standard input
        proc.send_signal(sig)
        proc.wait(timeout=60)
        out = proc.stdout.read() if proc.stdout else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    err = "".join(lines.queue)
    assert proc.returncode == 130
    assert "rankme: interrupted while scoring -: the 2 finished result(s) are printed; 1 not scored" in err
    assert f"{reference_rankme(dup):.4f}" in out and f"{reference_rankme(dup[:100]):.4f}" in out
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["score", "select", "demo", "other"])
def test_sigterm_stops_every_command_as_ctrl_c_does(monkeypatch, capsys, command):
    """Every command runs with SIGTERM turned into Ctrl-C's KeyboardInterrupt (what it kept is said, exit 130);
    the handler is removed when the command ends. Checked by calling the handler the command sees, so the default
    action (which would end this test process) is never taken."""
    import argparse
    import importlib

    cli_main = importlib.import_module("rankme.cli.main")
    seen = []

    def terminated(args):
        handler = signal.getsignal(signal.SIGTERM)
        seen.append(handler)
        assert callable(handler), "SIGTERM keeps its default action: the process would die without a word"
        handler(signal.SIGTERM, None)
        return 0

    parser = argparse.ArgumentParser()
    parser.set_defaults(command=command, func=terminated)
    monkeypatch.setattr(cli_main, "build_parser", lambda *commands: parser)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert cli_main.main([]) == 130
    assert "rankme: interrupted;" in capsys.readouterr().err
    assert len(seen) == 1 and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # removed again


def test_dask_partial_state_names_the_shard_and_its_row(tmp_path):
    pytest.importorskip("distributed")
    from rankme.integrations.dask import partial_state

    z = Z[:50].copy()
    z[7, 3] = np.nan
    np.save(tmp_path / "part-002.npy", z)
    p = str(tmp_path / "part-002.npy")
    with pytest.raises(EmbeddingError, match=rf"^{p}: embeddings contain non-finite .* first bad row index: 7$"):
        partial_state(p)
    with pytest.raises(EmbeddingError, match=rf"^{p}: .* first bad row index: 2 \(that is row 7 of the file\)$"):
        partial_state(p, np.array([1, 4, 7, 9]))


def test_a_nan_shard_is_named_with_its_row(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    z = Z[:80].copy()
    z[13, 0] = np.inf
    np.save(d / "a.npy", Z[:100])
    np.save(d / "b.npy", z)
    with pytest.raises(EmbeddingError, match=r"first bad row index: 113 \(that is row 13 of .*/d/b\.npy\)$"):
        score_source(open_shards([d]), progress=False)


@pytest.mark.slow
def test_a_nan_shard_under_dask_names_the_shard(tmp_path, capsys):
    pytest.importorskip("distributed")
    d = tmp_path / "d"
    d.mkdir()
    z = Z[:80].copy()
    z[13, 0] = np.nan
    np.save(d / "a.npy", Z[:100])
    np.save(d / "b.npy", z)
    assert main(["score", str(d), "--as-one", "--dask", "local", "--json", "--no-progress"]) == 2  # no shard set scored
    err = _json_out(capsys)[0]["error"]
    assert err.startswith(f"{d}/b.npy: embeddings contain non-finite") and err.endswith("first bad row index: 13")


def test_exact_duplicate_rows_get_a_note(tmp_path, capsys):
    z = np.concatenate([Z[:50]] * 10)[np.random.default_rng(0).permutation(500)]
    np.save(tmp_path / "dup.npy", z)
    res = score_source(load_embeddings(tmp_path / "dup.npy"), chunk_rows=7, progress=False)  # repeats across chunks
    assert res.metrics["rankme"] == pytest.approx(reference_rankme(z), rel=1e-9)
    assert (f"{tmp_path}/dup.npy: only 50 distinct rows among the 500 scored (450 exact duplicates, 90%)"
            in "\n".join(res.notes))
    sampled = score_source(load_embeddings(tmp_path / "dup.npy"), samples=120, seed=3, progress=False)
    rows = z[np.sort(np.random.default_rng(3).choice(500, 120, replace=False))]
    distinct = len(np.unique(rows, axis=0))
    assert f"only {distinct} distinct rows among the 120 scored" in "\n".join(sampled.notes)
    np.save(tmp_path / "z.npy", Z)
    assert main(["score", str(tmp_path / "z.npy"), str(tmp_path / "dup.npy"), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "dup.npy: only 50 distinct rows" in err and "z.npy: only" not in err


def test_the_duplicate_rule_is_more_than_one_percent():
    z = np.asarray(Z[:300])
    three, four = np.concatenate([z, z[:3]]), np.concatenate([z, z[:4]])
    assert duplicate_rows_note("z", len(np.unique(row_digests(three))), len(three)) is None  # 3 of 303 <= 1 %
    assert duplicate_rows_note("z", len(np.unique(row_digests(four))), len(four)) == (
        "z: only 300 distinct rows among the 304 scored (4 exact duplicates, 1%); RankMe counts every copy: if they "
        "are not separate samples, drop them (np.unique(z, axis=0)) and score again")
    assert duplicate_rows_note("z", 9, 10) is not None  # one repeat in ten rows is worth saying
    torch = pytest.importorskip("torch")
    t = torch.tensor(np.concatenate([z[:3], z[:3]])).to(torch.bfloat16)
    assert len(np.unique(row_digests(t))) == 3
    one_ulp = row_digests(np.array([[0.0, 1.0], [0.0, 1.0], [0.0, np.nextafter(1.0, 2.0)]]))
    assert one_ulp[0] == one_ulp[1] != one_ulp[2]


def test_json_usage_errors_and_multiline_errors_are_one_json_line(tmp_path, capsys, monkeypatch):
    import rankme.io.files as files  # rankme.cli.score imports its reader when the command runs

    np.save(tmp_path / "z.npy", Z)
    assert main(["score", str(tmp_path / "z.npy"), "--dask", "local", "--json"]) == 2
    assert _json_out(capsys) == [{"error": "--dask scores shards of one matrix: add --as-one"}]

    def broken(path, **kw):
        raise RuntimeError("first line\nsecond line")

    monkeypatch.setattr(files, "load_embeddings", broken)
    assert main(["score", str(tmp_path / "z.npy"), "--json", "--no-progress"]) == 2  # no file scored
    (row,) = _json_out(capsys)
    assert row["error"] == f"{tmp_path}/z.npy: could not be scored (RuntimeError: first line second line)"


@pytest.mark.parametrize(("command", "kept"), [("select", "in the cache"), ("demo", "saved in the store"),
                                               ("other", "nothing was saved")])
def test_an_interrupt_says_what_that_command_kept(monkeypatch, capsys, command, kept):
    import argparse
    import importlib

    cli_main = importlib.import_module("rankme.cli.main")

    def interrupted(args):
        raise KeyboardInterrupt

    parser = argparse.ArgumentParser()
    parser.set_defaults(command=command, func=interrupted)
    monkeypatch.setattr(cli_main, "build_parser", lambda *commands: parser)
    assert cli_main.main([]) == 130
    assert kept in capsys.readouterr().err


_SIGNAL_TO_ANOTHER_THREAD = r'''
import signal, threading, time
from rankme.io.stdin import read_stdin
idle = threading.Thread(target=threading.Event().wait, daemon=True)
idle.start()
threading.Thread(target=lambda: (time.sleep(0.5), signal.pthread_kill(idle.ident, signal.SIGINT)), daemon=True).start()
try:
    read_stdin()
    print("read")
except KeyboardInterrupt:
    print("interrupted")
'''


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs pthread_kill")
def test_a_signal_that_lands_on_another_thread_still_stops_the_wait_on_stdin():
    """The kernel may hand a process's SIGINT/SIGTERM to any of its threads (BLAS and OpenMP start some). A blocking
    read of standard input wakes only for a signal on the main thread: with ``sys.stdin.buffer.read()`` here this
    child waited on for ever (measured: still waiting after 10 s); ``read_stdin`` stops within 0.2 s."""
    proc = subprocess.Popen([sys.executable, "-c", _SIGNAL_TO_ANOTHER_THREAD], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)  # standard input stays open: the read would wait
    try:
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert proc.stdout is not None and proc.stdout.read().strip() == "interrupted"
