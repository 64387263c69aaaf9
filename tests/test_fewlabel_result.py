"""The few-label study's published result is recomputed from the committed store and must match docs/reproduction.md.

The store (`docs/data/fewlabel-full/results.sqlite`) holds every run of `rankme reproduce --full` with the few-label
accuracies of the pre-registration; the table in the docs was printed from it.
"""

from pathlib import Path

import pytest

from conftest import committed_runs
from rankme.paper.fewlabel_study import format_few_label_study
from rankme.paper.protocols import FULL_SWEEPS
from rankme.paper.reproduce import analyse

ROOT = Path(__file__).resolve().parents[1]
STORE = ROOT / "docs" / "data" / "fewlabel-full" / "results.sqlite"
DOC = ROOT / "docs" / "reproduction.md"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    runs = committed_runs(STORE, tmp_path_factory.mktemp("fewlabel"))
    return analyse(runs, FULL_SWEEPS, [0, 1])["fewlabel"]


@pytest.mark.slow
def test_the_study_covers_every_instance_of_the_two_seed_protocol(study):
    assert len(study["instances"]) == 2 * len(FULL_SWEEPS)
    assert all(s["instances"] == 2 * len(FULL_SWEEPS) for s in study["budgets"].values())


@pytest.mark.slow
def test_the_documented_table_is_the_store_s(study):
    section = DOC.read_text(encoding="utf-8").split("## Result of the few-label study")[1].split("\n## ")[0]
    for line in format_few_label_study(study).splitlines():
        if line.startswith("|"):
            assert line in section, line
