"""The built wheel in a clean virtual environment with the core dependencies only (numpy, scipy, threadpoolctl,
tqdm): every command prints what it can and says in one line which extra to install, never a traceback."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def core_env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("core")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp / "dist"), str(ROOT)], check=True, capture_output=True)
    wheel = next((tmp / "dist").glob("rankme-*.whl"))
    venv.create(tmp / "venv", with_pip=True)
    py = tmp / "venv" / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt"), str(wheel)],
                   check=True, capture_output=True)
    return tmp, py


def _run(env, *args, code: str | None = None):
    tmp, py = env
    cmd = [str(py), "-c", code] if code is not None else [str(py.parent / "rankme"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, timeout=300)


def _one_line_error(proc, needle: str) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("rankme")]
    assert len(lines) == 1 and needle in lines[0], proc.stderr


def test_core_install_has_no_optional_dependency(core_env):
    proc = _run(core_env, code="import importlib.util as u; print([m for m in ('torch', 'sklearn', 'matplotlib', "
                               "'pyarrow') if u.find_spec(m)])")
    assert proc.stdout.strip() == "[]", proc.stderr


def test_commands_print_what_they_can_and_name_the_extra(core_env):
    tmp, _ = core_env
    rng = np.random.default_rng(0)
    (tmp / "runs").mkdir(exist_ok=True)
    for lr, r in ((0.1, 3), (0.3, 6), (1.0, 4)):
        np.save(tmp / "runs" / f"lr={lr}.npy", rng.standard_normal((300, r)) @ rng.standard_normal((r, 16)))
    one = str(tmp / "runs" / "lr=0.3.npy")
    proc = _run(core_env, "score", one)
    assert proc.returncode == 0 and "rankme" in proc.stdout and "Traceback" not in proc.stderr
    proc = _run(core_env, "score", one, "--metric", "rankme", "--metric", "cluster")
    assert proc.returncode == 0 and "rankme" in proc.stdout  # the table, without the metric it cannot compute
    _one_line_error(proc, "pip install 'rankme[demo]'")
    proc = _run(core_env, "select", str(tmp / "runs"), "--param", "lr", "--out", str(tmp / "sel"))
    assert proc.returncode == 0 and "lr=0.3" in proc.stdout and "pick (argmax RankMe)" in proc.stdout
    assert "figures" in (tmp / "sel" / "report.html").read_text() and "Traceback" not in proc.stderr
    for args, extra in ((["demo"], "demo"), (["reproduce"], "demo"),
                        (["select", "--model", "torch:os:getcwd", "--data", one], "torch")):
        proc = _run(core_env, *args)
        assert proc.returncode == 2
        _one_line_error(proc, f"pip install 'rankme[{extra}]'")
    (tmp / "x.parquet").write_bytes(b"PAR1")
    proc = _run(core_env, "score", str(tmp / "x.parquet"))
    assert proc.returncode == 2 and "pip install 'rankme[parquet]'" in proc.stderr and "Traceback" not in proc.stderr


def test_python_api_without_torch(core_env):
    code = ("import numpy as np, rankme; acc = rankme.SpectrumAccumulator(3); acc.update(np.eye(3)); "
            "acc.all_reduce(); print(round(acc.rankme(), 4), round(rankme.rankme(np.eye(5)), 4))")
    proc = _run(core_env, code=code)
    assert proc.stdout.split() == ["3.0", "5.0"], proc.stderr
