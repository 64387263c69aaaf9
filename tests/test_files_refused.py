"""A file that cannot be scored is refused in one line naming it and the fix, and never hides the other files'
results: unreadable or truncated arrays, objects that are not arrays, sparse and meta tensors, NaN rows (named with
their row), special files, missing paths, damaged stores."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

import rankme
from conftest import SMALL_REF, SMALL_Z
from rankme import EmbeddingError
from rankme.cli import main
from rankme.io.files import load_embeddings


@pytest.mark.parametrize("content,match", [
    (b"", "truncated or corrupt"),
    (b"hello, not an array", "is not a .npy file"),
])
def test_cli_bad_npy_files(tmp_path, capsys, content, match):
    p = tmp_path / "bad.npy"
    p.write_bytes(content)
    assert main(["score", str(p)]) == 2  # no file scored
    assert "rankme: error:" in capsys.readouterr().err
    with pytest.raises(EmbeddingError, match=match):
        load_embeddings(p)


def test_truncated_npy_and_corrupt_pt(tmp_path):
    p = tmp_path / "t.npy"
    np.save(p, SMALL_Z)
    p.write_bytes(p.read_bytes()[:-500])
    with pytest.raises(EmbeddingError, match="truncated or corrupt"):
        load_embeddings(p)
    q = tmp_path / "t.pt"
    torch.save(torch.from_numpy(SMALL_Z.copy()), q)
    q.write_bytes(q.read_bytes()[:200])
    with pytest.raises(EmbeddingError, match="truncated or corrupt"):
        load_embeddings(q)



def test_pt_nested_dicts_and_lists_of_batches(tmp_path, capsys):
    """``{"out": {"emb": t}}`` is read by itself or by ``key="out/emb"`` / ``"out.emb"``; a wrong key lists the nested
    keys; a list of batch tensors is refused with the ``torch.cat`` hint (not "holds no arrays")."""
    t = torch.from_numpy(SMALL_Z.copy())
    torch.save({"out": {"emb": t, "ids": torch.arange(120)}, "epoch": 3}, tmp_path / "n.pt")
    for key in (None, "out/emb", "out.emb", "/out/emb"):
        src = load_embeddings(tmp_path / "n.pt", key=key)
        assert rankme.rankme(np.asarray(src.array)) == pytest.approx(SMALL_REF, rel=1e-9), key
    with pytest.raises(EmbeddingError, match=r"n.pt: has no array 'out.x'; available: \['out/emb', 'out/ids'\]"):
        load_embeddings(tmp_path / "n.pt", key="out.x")
    assert main(["score", str(tmp_path / "n.pt"), "--key", "out.emb", "--json", "--no-progress"]) == 0
    (res,) = json.loads(capsys.readouterr().out)
    assert res["metrics"]["rankme"] == pytest.approx(SMALL_REF, rel=1e-9)
    for batches in ([t[:60], t[60:]], (t[:60], t[60:])):
        torch.save(batches, tmp_path / "b.pt")
        with pytest.raises(EmbeddingError, match=r"b.pt: holds a (list|tuple) of 2 tensors, not one matrix: .*"
                                                 r"torch.save\(torch.cat\(batches\), path\)"):
            load_embeddings(tmp_path / "b.pt")

def test_object_npy_is_refused(tmp_path):
    p = tmp_path / "o.npy"
    np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(EmbeddingError, match="unpickling"):
        load_embeddings(p)


def test_missing_unknown_and_directory_paths(tmp_path):
    with pytest.raises(EmbeddingError, match="no such file"):
        load_embeddings(tmp_path / "nope.npy")
    (tmp_path / "x.txt").write_text("1 2 3")
    with pytest.raises(EmbeddingError, match="unknown file type"):
        load_embeddings(tmp_path / "x.txt")
    with pytest.raises(EmbeddingError, match="directory"):
        load_embeddings(tmp_path)


def test_one_bad_file_does_not_hide_the_good_ones(tmp_path, capsys):
    good = tmp_path / "good.npy"
    np.save(good, SMALL_Z)
    assert main(["score", str(good), str(tmp_path / "missing.npy")]) == 1
    captured = capsys.readouterr()
    assert str(good) in captured.out and "missing.npy: no such file" in captured.err


def test_score_keeps_good_results_next_to_files_of_unexpected_kinds(tmp_path, capsys):
    good = tmp_path / "good.npy"
    np.save(good, SMALL_Z)
    torch.save(torch.eye(4).to_sparse(), tmp_path / "sparse.pt")
    torch.save(torch.empty(4, 4, device="meta"), tmp_path / "meta.pt")
    neg = tmp_path / "neg.npy"
    np.save(neg, np.zeros((2, 2)))
    neg.write_bytes(neg.read_bytes().replace(b"(2, 2)", b"(-2, 2)"))
    files = [str(good), str(tmp_path / "sparse.pt"), str(tmp_path / "meta.pt"), str(neg)]
    assert main(["score", *files, "--json", "--no-progress"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out[0]["metrics"]["rankme"] == pytest.approx(SMALL_REF, rel=1e-9)
    assert [("error" in r) for r in out] == [False, True, True, True]
    assert "to_dense" in out[1]["error"] and "meta" in out[2]["error"] and str(neg) in out[3]["error"]
    assert main(["score", *files, "--no-progress"]) == 1
    cap = capsys.readouterr()
    assert "good.npy" in cap.out and "see above" in cap.out and cap.err.count("rankme: error:") == 3
    with pytest.raises(SystemExit) as usage:  # a usage error, argparse's own (the constraints table), as JSON
        main(["score", str(good), "--metric", "lidar", "--views", "0", "--json"])
    assert usage.value.code == 2
    assert "argument --views: must be an integer >= 2, got '0'" in json.loads(capsys.readouterr().out)[0]["error"]


def test_nan_errors_name_the_file_and_the_row(tmp_path, capsys):
    z = SMALL_Z.copy()
    z[77, 3] = np.nan
    np.save(tmp_path / "nan.npy", z)
    assert main(["score", str(tmp_path / "nan.npy"), "--no-progress"]) == 2  # no file scored
    err = capsys.readouterr().err
    assert "nan.npy" in err and "first bad row index: 77" in err
    assert main(["score", str(tmp_path / "nan.npy"), "--samples", "100", "--no-progress"]) == 2  # no file scored
    assert "row 77 of the file" in capsys.readouterr().err


def test_special_files_are_refused(tmp_path):
    fifo = tmp_path / "pipe.npy"
    os.mkfifo(fifo)
    with pytest.raises(EmbeddingError, match="not a regular file"):
        load_embeddings(fifo)  # used to block forever
    (tmp_path / "zero.csv").symlink_to("/dev/zero")
    with pytest.raises(EmbeddingError, match="not a regular file"):
        load_embeddings(tmp_path / "zero.csv")  # used to grow memory without bound


def test_stdin_that_is_not_npy_is_refused(monkeypatch, capsys):
    """(Random bytes in a ``.npy`` file: ``test_cli_bad_npy_files`` below.)"""
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", type("S", (), {"buffer": io.BytesIO(b"a,b\n1,2\n")})())
    assert main(["score", "-"]) == 2  # no file scored
    assert "does not hold a .npy array" in capsys.readouterr().err


def test_damaged_stores_are_named_in_one_line(tmp_path, capsys):
    bad = tmp_path / "r"
    bad.mkdir()
    (bad / "results.sqlite").write_bytes(b"this is not a database" * 100)
    assert main(["reproduce", "--out", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "results.sqlite: damaged" in err and "move it aside" in err
    cache = tmp_path / "sel"
    cache.mkdir()
    (cache / "cache.sqlite").write_bytes(b"garbage" * 100)
    np.save(tmp_path / "a.npy", SMALL_Z)
    assert main(["select", str(tmp_path / "a.npy"), "--out", str(cache)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cache.sqlite: damaged" in err
