"""The experiment runner across processes: two processes sharing a store train each run once, workers die with their
parent (even under kill -9), and a stop (SIGTERM, Ctrl-C) ends the workers at once and releases their claims.
(DDP misuse: test_distributed.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")

import torch.multiprocessing as mp

from rankme.io.results_db import ResultStore
from rankme.paper.config import RunConfig
from rankme.paper.protocols import Sweep
from rankme.paper.runner import run_sweeps

pytestmark = pytest.mark.slow  # each test starts worker processes that import torch: 5-10 s apiece on 2 cores
TESTS = Path(__file__).resolve().parent
SWEEP = (Sweep("fake", "lr", (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2), RunConfig()),)


def _share(store_path: str, log: str) -> None:
    os.environ["RANKME_TEST_LOG"] = log
    sys.path.insert(0, str(TESTS))
    import fake_runs

    run_sweeps(ResultStore(store_path), SWEEP, log=lambda m: None, train=fake_runs.quick_train, poll_seconds=0.2)


def test_two_processes_on_one_store_train_each_run_once(tmp_path):
    ctx = mp.get_context("spawn")
    log = tmp_path / "log"
    procs = [ctx.Process(target=_share, args=(str(tmp_path / "r.sqlite"), str(log))) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    lines = log.read_text().split()
    keys, pids = lines[::2], lines[1::2]
    assert sorted(keys) == sorted({c.key() for c in SWEEP[0].configs([0])})  # 6 runs, each trained once
    assert len(set(pids)) == 2  # both processes worked
    assert len(ResultStore(tmp_path / "r.sqlite")) == 6


_RUNNER = """
import os, sys
sys.path.insert(0, {tests!r})
import fake_runs
from rankme.io.results_db import ResultStore
from rankme.paper.runner import run_sweeps
from test_runner_processes import SWEEP
os.environ["RANKME_TEST_LOG"] = {log!r}
run_sweeps(ResultStore({store!r}), SWEEP, log=print, train=fake_runs.{train}, workers=2)
"""


def _start(tmp_path: Path, train: str) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / "log"
    code = _RUNNER.format(tests=str(TESTS), log=str(log), store=str(tmp_path / "r.sqlite"), train=train)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and (not log.exists() or len(log.read_text().split()) < 4):
        time.sleep(0.2)
    assert log.exists() and len(log.read_text().split()) >= 4, "workers did not start"
    return proc, log


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is dead
        return fh.read().split()[2] != "Z"


def _workers_die(log: Path, within: float = 15.0) -> bool:
    pids = {int(p) for p in log.read_text().split()[1::2]}
    deadline = time.time() + within
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    return not any(_alive(p) for p in pids)


def test_workers_die_when_the_parent_is_killed(tmp_path):
    proc, log = _start(tmp_path, "hang_train")
    proc.kill()  # kill -9: no handler runs in the parent
    proc.wait(10)
    assert _workers_die(log)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_ends_workers_at_once_and_releases_claims(tmp_path, sig):
    proc, log = _start(tmp_path, "hang_train")
    t0 = time.time()
    proc.send_signal(sig)
    proc.wait(20)
    assert time.time() - t0 < 15  # the in-flight runs are not waited for
    assert _workers_die(log)
    store = ResultStore(tmp_path / "r.sqlite")
    assert store.claimed_elsewhere([c.key() for c in SWEEP[0].configs([0])]) == []  # nothing left claimed
    assert all(store.claim(c.key()) for c in SWEEP[0].configs([0]))
