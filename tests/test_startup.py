"""Start-up: each command imports only what it needs (``rankme --version`` no numpy; ``score --help`` no scipy.stats,
torch, pandas or matplotlib). Asserted on the modules loaded, not on seconds (see docs/benchmarks.md for times)."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

HEAVY = ("numpy", "scipy", "scipy.stats", "torch", "pandas", "matplotlib", "sklearn", "pyarrow")


def _loaded_after(argv: list[str]) -> tuple[str, set[str]]:
    code = ("import sys\nfrom rankme.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            f"print(sorted(m for m in sys.modules if m in {HEAVY!r}))")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True).stdout
    *printed, loaded = out.strip().splitlines()
    return "\n".join(printed), set(ast.literal_eval(loaded))


def test_version_imports_no_numpy():
    printed, loaded = _loaded_after(["--version"])
    assert printed.startswith("rankme ")
    assert loaded == set()


@pytest.mark.parametrize("argv", [["--vers"], ["--version", "score"]])
def test_version_prefix_and_position_print_the_version(argv):
    printed, loaded = _loaded_after(argv)
    assert printed.startswith("rankme ") and loaded == set()


def test_score_help_imports_neither_statistics_nor_optional_libraries():
    printed, loaded = _loaded_after(["score", "--help"])
    assert "usage: rankme score" in printed and "--metric" in printed
    assert loaded <= {"numpy", "scipy"}  # the readers and the registry need numpy (and scipy.linalg), nothing else


def test_import_rankme_is_lazy_and_the_public_names_still_resolve():
    code = ("import sys, rankme; before = 'numpy' in sys.modules; import numpy as np; "
            "print(before, abs(rankme.rankme(np.eye(4)) - 4.000000618070706) < 1e-12, "
            "rankme.rankme is rankme.metrics.spectral.rankme, "
            "rankme.select is rankme.reporting.select_api.select, set(rankme.__all__) <= set(dir(rankme)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True", "True", "True", "True"]


def test_top_level_help_and_a_mistyped_command_still_list_every_command(capsys):
    from rankme.cli import main

    with pytest.raises(SystemExit):
        main(["scroe"])
    err = capsys.readouterr().err
    assert all(c in err for c in ("'score'", "'select'", "'demo'", "'reproduce'"))
