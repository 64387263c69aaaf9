"""Processes opening one new results store at the same moment: SQLite answers some of them SQLITE_BUSY at once,
without its busy wait (switching the journal to WAL, or upgrading a read lock, would deadlock). Before the store
retried that step, 23 of 60 rounds of three such processes failed here with "busy … for over a minute"."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

from rankme.io.results_db import ResultStore


def _open_and_write(path: str, go: mp.synchronize.Event) -> None:
    go.wait()
    ResultStore(path).put(f"k{mp.current_process().pid}", "s", {}, {"rankme": 1.0})


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="needs the fork start method")
def test_processes_creating_one_store_at_once_all_write(tmp_path):
    ctx = mp.get_context("fork")
    for i in range(10):
        path = tmp_path / f"r{i}.sqlite"
        go = ctx.Event()
        procs = [ctx.Process(target=_open_and_write, args=(str(path), go)) for _ in range(3)]
        for p in procs:
            p.start()
        go.set()
        for p in procs:
            p.join(90)
        assert [p.exitcode for p in procs] == [0, 0, 0], f"round {i}"
        assert len(ResultStore(path)) == 3


def test_a_store_held_by_a_reader_opens_once_the_reader_is_done(tmp_path):
    import sqlite3
    import threading

    path = tmp_path / "r.sqlite"
    reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    reader.execute("CREATE TABLE x(i)")
    reader.execute("BEGIN")
    reader.execute("SELECT * FROM x").fetchall()  # a read lock: switching to WAL must wait for it
    done = threading.Timer(0.3, lambda: reader.execute("COMMIT"))
    done.start()
    store = ResultStore(Path(path))
    done.join()
    store.put("k", "s", {}, {"rankme": 2.0})
    assert store.get("k")["metrics"] == {"rankme": 2.0}
