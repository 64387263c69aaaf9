"""docs/quickstart.md runs as written: its ```bash and ```python blocks run in order in one empty folder, each exits
0, and each ```text block right after one of them is what that block printed.

The rule (also at the top of the page): every line of a ```text block must appear in the block's output, in order,
with runs of spaces counted as one; ``…`` stands for text left out of a line, a line ``…`` alone for lines left
out. ``rankme`` and ``python`` are this checkout's (``python -m rankme.cli``, ``PYTHONPATH=src``).
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "quickstart.md"
RUN = ("bash", "python")
FENCE_RE = re.compile(r"^```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


@dataclass
class Block:
    """One code block of the page to run, and the output the page shows for it (None: none shown)."""

    lang: str
    code: str
    line: int
    shown: str | None = None


def page_blocks(text: str) -> list[Block]:
    """The blocks to run, in order, each with the ```text block that follows it."""
    blocks: list[Block] = []
    for m in FENCE_RE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        if m.group("lang") in RUN:
            blocks.append(Block(m.group("lang"), m.group("body"), line))
        elif m.group("lang") == "text":
            assert blocks and blocks[-1].shown is None, f"quickstart.md:{line}: a text block follows no block to run"
            blocks[-1].shown = m.group("body")
    return blocks


def _squash(s: str) -> str:
    return " ".join(s.split())


def missing_lines(shown: str, output: str) -> list[str]:
    """The lines of ``shown`` not found in ``output`` under the page's rule (in order; ``…`` = text left out)."""
    out = [_squash(x) for x in output.splitlines()]
    missing, at = [], 0
    for raw in shown.splitlines():
        pieces = [p for p in (_squash(x) for x in raw.split("…")) if p]
        if not pieces:
            continue  # blank, or "…" alone

        def has(line: str, pieces: list[str] = pieces) -> bool:
            pos = 0
            for p in pieces:
                pos = line.find(p, pos)
                if pos < 0:
                    return False
                pos += len(p)
            return True

        found = next((i for i in range(at, len(out)) if has(out[i])), None)
        if found is None:
            missing.append(raw)
        else:
            at = found + 1
    return missing


def _shims(bin_dir: Path) -> None:
    """``python`` and ``rankme`` on PATH: this interpreter and ``python -m rankme.cli``."""
    bin_dir.mkdir()
    for name, args in (("python", ""), ("rankme", " -m rankme.cli")):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}"{args} "$@"\n')
        shim.chmod(shim.stat().st_mode | stat.S_IXUSR)


def run_block(block: Block, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run one block in ``cwd``; standard error merged into standard output, as a terminal shows them."""
    cmd = ["bash", "-e", "-c", block.code] if block.lang == "bash" else ["python", "-"]
    stdin = None if block.lang == "bash" else block.code
    return subprocess.run(cmd, input=stdin, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300, check=False)


def test_page_has_the_three_recipes() -> None:
    blocks = page_blocks(PAGE.read_text(encoding="utf-8"))
    codes = "\n".join(b.code for b in blocks)
    assert "rankme score emb.npy" in codes
    assert "rankme select runs --param lr" in codes
    assert 'rankme.select("runs", param="lr")' in codes
    assert "RankMeMonitor(model" in codes
    assert all(b.shown for b in blocks if "rankme" in b.code), "every block using rankme shows its output"


def test_missing_lines_rule() -> None:
    out = "file     N     K    rankme\nemb.npy  5000  128  30.9049\nnote: x\n"
    assert missing_lines("file N K rankme\n…\nemb.npy  5000  …  30.9049", out) == []
    assert missing_lines("emb.npy  5000  128  30.9049\nfile N K rankme", out) == ["file N K rankme"]  # order
    assert missing_lines("emb.npy 5000 128 31.0000", out) == ["emb.npy 5000 128 31.0000"]
    assert missing_lines("5000 … emb.npy", out) == ["5000 … emb.npy"]  # pieces in order within one line


def test_quickstart_runs_as_written(tmp_path: Path) -> None:
    blocks = page_blocks(PAGE.read_text(encoding="utf-8"))
    assert len(blocks) >= 4
    pytest.importorskip("torch")  # the monitor recipe (installed by `make setup`)
    _shims(tmp_path / "bin")
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}", PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
    for block in blocks:
        proc = run_block(block, work, env)
        where = f"quickstart.md:{block.line} ({block.lang} block)"
        assert proc.returncode == 0, f"{where} exited {proc.returncode}:\n{proc.stdout[-3000:]}"
        if block.shown is not None:
            missing = missing_lines(block.shown, proc.stdout)
            assert not missing, f"{where}: the page shows lines its output lacks:\n" + "\n".join(missing) + \
                f"\n--- output ---\n{proc.stdout[-4000:]}"
