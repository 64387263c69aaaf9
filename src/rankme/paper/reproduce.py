"""The paper's experiment at this machine's scale: sweep one hyperparameter at a time, store every run, select
without labels, compare with the label oracle, and say how far to trust each pick (``rankme demo`` is its small
version, ``--protocol long`` its pre-registered long form)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rankme.core.optional import MissingExtraError
from rankme.io.results_db import ResultStore
from rankme.paper.config import RunConfig
from rankme.paper.fewlabel_study import few_label_study, format_few_label_study
from rankme.paper.longrun import (
    SUCCESS_REGRET,
    format_warning_study,
    runs_at_epoch,
    seed_spread,
    warning_study,
)
from rankme.paper.protocols import Sweep
from rankme.paper.recommend import format_rule_study, rule_study
from rankme.paper.report import (
    DOCUMENTED,
    GLOSSARY,
    meaning,
    plot_best_worst_spectra,
    plot_rank_vs_accuracy,
    plot_training_length,
)
from rankme.paper.runner import run_sweeps, sweep_runs
from rankme.paper.tables import (
    format_agreement,
    format_correlations,
    format_picks,
    format_runs,
    format_selection,
    selection_tables,
)
from rankme.paper.train import train_and_evaluate
from rankme.reporting.html import write_report

__all__ = ["analyse", "run_reproduction"]


def _without_extremes(sweeps: Sequence[Sweep]) -> list[Sweep]:
    return [replace(s, values=tuple(sorted(s.values))[1:-1]) for s in sweeps if len(s.values) > 3]


def analyse(runs: Sequence[dict[str, Any]], sweeps: Sequence[Sweep], seeds: Sequence[int],
            checkpoints: Sequence[int] = ()) -> dict[str, Any]:
    """Tables of the stored runs: at the final epoch (with the seed spread and ties when there are ≥ 2 seeds),
    and, with ``checkpoints``, at every checkpoint epoch, the warnings study and a labelled diagnostic without each
    grid's extreme values; ``fewlabel``: the pre-registered few-label study at the final epoch (``None`` when the
    runs do not store few-label accuracies); ``rule``: the recommendation rule's decisions at every scored epoch
    (:func:`rankme.paper.recommend.rule_study`; ``None`` with one seed, where no seed spread defines a tie)."""
    final_epoch = max(int(s.base.epochs) for s in sweeps)
    final = runs_at_epoch(runs, final_epoch)
    spread, configs = seed_spread(final) if len(seeds) > 1 else (float("nan"), 0)
    tie = spread if configs else None
    out: dict[str, Any] = {"final": selection_tables(final, sweeps, tie=tie), "spread": spread,
                           "spread_configs": configs, "final_epoch": final_epoch,
                           "fewlabel": few_label_study(final, sweeps, seeds, tie),
                           "rule": rule_study(runs, sweeps, [*sorted(checkpoints), final_epoch], seeds)
                           if len(seeds) > 1 else None}
    if checkpoints:
        epochs = [*sorted(checkpoints), final_epoch]
        per_epoch = {}
        for e in epochs:
            at = runs_at_epoch(runs, e)
            s_e, n_e = seed_spread(at) if len(seeds) > 1 else (float("nan"), 0)
            per_epoch[e] = selection_tables(at, sweeps, tie=s_e if n_e else None)
        out["per_epoch"] = per_epoch
        out["study"] = warning_study(runs, sweeps, epochs, seeds, tie=(spread * 2**0.5) if configs else 0.0)
        out["no_extremes"] = selection_tables(final, _without_extremes(sweeps), tie=tie)
    return out


def _epoch_table(per_epoch: dict[int, dict[str, Any]]) -> str:
    epochs = sorted(per_epoch)
    head = "| sweep | " + " | ".join(f"epoch {e}: RankMe pick / oracle pick, regret" for e in epochs) + " |"
    lines = [head, "|" + "---|" * (len(epochs) + 1)]
    names = [r["sweep"] for r in per_epoch[epochs[-1]]["sweeps"]]
    for name in names:
        cells = []
        for e in epochs:
            r = next((x for x in per_epoch[e]["sweeps"] if x["sweep"] == name), None)
            cells.append("—" if r is None else f"{r['pick_rankme']:g} / {r['pick_oracle']:g}, {r['regret_rankme']:.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    means = " | ".join(f"{per_epoch[e]['mean_regret_rankme']:.2f}" for e in epochs)
    lines.append(f"| mean regret | {means} |")
    return "\n".join(lines)


def run_reproduction(out_dir: str | Path, sweeps: Sequence[Sweep], seeds: Sequence[int] = (0,),
                     title: str = "rankme: label-free hyperparameter selection",
                     log: Callable[[str], None] = print,
                     train: Callable[[RunConfig], dict[str, Any]] | None = None,  # default: train_and_evaluate
                     workers: int = 1, checkpoints: Sequence[int] = ()) -> dict[str, Any]:
    """Run (or resume) the sweeps into ``out_dir/results.sqlite``, then write tables, plots and ``report.html``.

    Returns the final tables plus ``text`` (what the CLI prints: the same facts as the report), ``analysis`` and
    the paths written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    store = ResultStore(out / "results.sqlite")
    try:
        counts = run_sweeps(store, sweeps, seeds, log=log, workers=workers, train=train or train_and_evaluate)
        stored = list(store.runs())
    finally:
        store.close()
    keys = {r["key"] for s in sweeps for r in sweep_runs(stored, s)}
    runs = [r for r in stored if r["key"] in keys and r["config"]["seed"] in seeds]
    res = analyse(runs, sweeps, seeds, checkpoints)
    tables = res["final"]
    data = sweeps[0].base.dataset if sweeps else "?"
    intro = (f"{len(runs)} runs on {data} ({counts['ran']} trained now, {counts['cached']} from the store, "
             f"{counts['seconds']:.0f} s); {len(seeds)} seed(s) per value, averaged. RankMe is computed on "
             f"{sweeps[0].base.rank_samples} unlabeled training embeddings; accuracy is a linear probe on "
             "representations (labels used only to check the picks).")
    if res["spread_configs"]:
        intro += (f" The probe's seed-to-seed spread is {res['spread']:.2f} points (pooled over "
                  f"{res['spread_configs']} configs); regrets within it count as ties.")
    picks, per_run = format_picks(tables), format_runs(tables)
    warn_lines = "\n".join(f"- {r['sweep']}: {w}" for r in tables["sweeps"] for w in r["warnings"]) or "none fired"
    sections = [("What was done", intro), ("What it means", meaning(tables) + "\n\n" + DOCUMENTED),
                ("The picks", picks), ("When not to trust the pick (warnings on RankMe's pick)", warn_lines),
                ("Every run (seeds averaged)", per_run),
                ("In-distribution probe accuracy (%) of the picked run", format_selection(tables)),
                ("Out-of-distribution probe accuracy (%) of the picked run", format_selection(tables, ood=True)),
                ("Agreement of RankMe with accuracy, and regret (oracle − pick, points)", format_correlations(tables)),
                ("All label-free metrics: agreement with accuracy and regret of their pick", format_agreement(tables))]
    text = [intro, "What it means: " + meaning(tables), "Picks:\n" + picks, "Warnings:\n" + warn_lines,
            "Every run:\n" + per_run, format_correlations(tables), "All label-free metrics:\n" + format_agreement(tables)]
    if checkpoints:
        mean = tables.get("mean_tie_regret_rankme", tables["mean_regret_rankme"])
        verdict = (f"Pre-registered verdict at epoch {res['final_epoch']}: tie-adjusted mean regret {mean:.2f} points "
                   f"(raw {tables['mean_regret_rankme']:.2f}); success needs ≤ {SUCCESS_REGRET}: "
                   f"{'MET' if mean <= SUCCESS_REGRET else 'NOT MET'}.")
        study = format_warning_study(res["study"])
        diag = format_picks(res["no_extremes"])
        sections[1:1] = [("Verdict (pre-registered long protocol)", verdict)]
        sections += [("Training length: picks and regrets at every checkpoint", _epoch_table(res["per_epoch"])),
                     ("How often each warning fires on bad and on good picks (every sweep × epoch × seed)", study),
                     ("Diagnostic only, not the verdict: without each grid's smallest and largest value", diag)]
        text[1:1] = [verdict]
        text += ["Training length:\n" + _epoch_table(res["per_epoch"]), "Warnings, hits and false alarms:\n" + study]
    if res["fewlabel"] is not None:
        few = format_few_label_study(res["fewlabel"])
        sections.append((f"Few labels against RankMe (pre-registered few-label study, epoch {res['final_epoch']})", few))
        text.append("Few labels against RankMe (pre-registered few-label study):\n" + few)
    if res["rule"] is not None and res["rule"]["decisions"]:
        rule = format_rule_study(res["rule"])
        head = ("The recommendation rule (pre-registered in docs/select.md): mean regret, tie-adjusted (raw), "
                "beside RankMe's pick and the few-label pick on the same instances")
        sections.append((head, rule))
        text.append(head + ":\n" + rule)
    sections.append(("Glossary", GLOSSARY))
    images = []
    try:
        images = [("RankMe vs linear-probe accuracy: one panel per sweep, each point one value (label), star = "
                   "label oracle, circle = RankMe's pick", plot_rank_vs_accuracy(tables, out / "rank_vs_accuracy.png")),
                  ("Singular-value spectra of the best and worst run of each method",
                   plot_best_worst_spectra(runs_at_epoch(runs, res["final_epoch"]), out / "spectra.png"))]
        if checkpoints:
            images += [("RankMe against training epoch (one line per value)",
                        plot_training_length(res["per_epoch"], sweeps, out / "epochs_rankme.png")),
                       ("Probe accuracy against training epoch (one line per value)",
                        plot_training_length(res["per_epoch"], sweeps, out / "epochs_accuracy.png", key="acc"))]
    except MissingExtraError as e:
        text.append(f"(figures skipped: {e})")
    report = write_report(out / "report.html", title, sections, images)
    text.append(f"Report (with a glossary and figures): {report}")
    return {**tables, "text": "\n\n".join(text), "report": str(report), "counts": counts, "analysis": res}
