"""The paper's experiment at this machine's scale: sweep one hyperparameter at a time, store every run, select
without labels, and compare with the label oracle (``rankme demo`` is its small version)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rankme.io.store import ResultStore
from rankme.paper.protocols import Sweep
from rankme.paper.report import plot_rank_vs_accuracy, plot_spectra
from rankme.paper.runner import run_sweeps, sweep_runs
from rankme.paper.tables import format_agreement, format_correlations, format_selection, selection_tables
from rankme.paper.train import RunConfig, train_and_evaluate
from rankme.reporting.html import write_report

__all__ = ["run_reproduction"]


def run_reproduction(out_dir: str | Path, sweeps: Sequence[Sweep], seeds: Sequence[int] = (0,),
                     title: str = "rankme: label-free hyperparameter selection",
                     log: Callable[[str], None] = print,
                     train: Callable[[RunConfig], dict[str, Any]] = train_and_evaluate,
                     workers: int = 1) -> dict[str, Any]:
    """Run (or resume) the sweeps into ``out_dir/results.sqlite``, then write tables, plots and ``report.html``.

    Returns the tables plus ``text`` (what the CLI prints) and the paths written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    store = ResultStore(out / "results.sqlite")
    try:
        counts = run_sweeps(store, sweeps, seeds, log=log, train=train, workers=workers)
        tables = selection_tables(store, sweeps)
        stored = list(store.runs())
        keys = {r["key"] for s in sweeps for r in sweep_runs(stored, s)}
        runs = [r for r in stored if r["key"] in keys]
    finally:
        store.close()
    id_table, ood_table, corr = format_selection(tables), format_selection(tables, ood=True), format_correlations(tables)
    agree = format_agreement(tables)
    scatter = plot_rank_vs_accuracy(runs, out / "rank_vs_accuracy.png")
    spectra = plot_spectra(runs, out / "spectra.png")
    data = sweeps[0].base.dataset if sweeps else "?"
    intro = (f"{len(runs)} runs on {data} ({counts['ran']} trained now, {counts['cached']} from the store, "
             f"{counts['seconds']:.0f} s). RankMe is computed on {sweeps[0].base.rank_samples} unlabeled training "
             "embeddings; accuracy is a linear probe on representations (labels used only here).")
    report = write_report(out / "report.html", title, [
        ("Setup", intro),
        ("In-distribution probe accuracy (%) of the picked run", id_table),
        ("Out-of-distribution probe accuracy (%) of the picked run", ood_table),
        ("Agreement of RankMe with accuracy, and regret (oracle − pick, points)", corr),
        ("All label-free metrics: agreement with accuracy and regret of their pick", agree),
    ], [("RankMe vs linear-probe accuracy (each point is one run)", scatter),
        ("Singular-value spectra of the best and worst run of each method", spectra)])
    text = "\n\n".join([intro, "In-distribution probe accuracy (%) of the picked run:\n" + id_table,
                        "Out-of-distribution probe accuracy (%):\n" + ood_table, corr,
                        "All label-free metrics:\n" + agree, f"Report: {report}"])
    return {**tables, "text": text, "report": str(report), "counts": counts}
