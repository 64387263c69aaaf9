"""The ranked table and the HTML report of ``rankme select``: spectra, rank per layer, rank vs hyperparameter."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rankme.reporting.figures import figure, plot_spectra
from rankme.reporting.html import write_report
from rankme.reporting.tables import short_name, to_markdown
from rankme.selection.candidates import Candidate
from rankme.selection.rules import Selection

__all__ = ["selection_rows", "write_select_report"]


def selection_rows(sel: Selection, metrics: Sequence[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows (best first) and column names of the ranked table.

    Examples:
        >>> from rankme.selection.rules import choose
        >>> rows, cols = selection_rows(choose([Candidate("a", "", 10, 4, {"rankme": 3.0})]), ["rankme"])
        >>> cols, rows[0]["pick"]
        (['#', 'candidate', 'N', 'K', 'rankme', 'rank/min(N,K)', 'pick', 'note'], 'argmax')
    """
    params = sorted(set().union(*(c.params for c in sel.candidates)))
    has_probe = any(c.probe_acc is not None for c in sel.candidates)
    has_layers = any(c.tap for c in sel.candidates)
    cols = ["#", "candidate", *(["layer"] if has_layers else []), *params, "N", "K", *metrics, "rank/min(N,K)"]
    cols += ["probe acc (%)"] if has_probe else []
    cols += ["pick", "note"]
    rows = []
    for i, c in enumerate(sel.candidates, 1):
        picks = [name for name, p in (("argmax", sel.best), ("plateau", sel.plateau), ("oracle", sel.oracle))
                 if p is c]
        row: dict[str, Any] = {"#": i, "candidate": short_name(c.name), "layer": c.tap, "N": c.n, "K": c.dim,
                               **c.params,
                               **{m: float(c.metrics[m]) for m in metrics},
                               "rank/min(N,K)": float(c.metrics["rankme"]) / max(min(c.n, c.dim), 1),
                               "pick": ", ".join(picks), "note": "; ".join(_short(n) for n in c.notes)}
        if has_probe:
            row["probe acc (%)"] = float("nan") if c.probe_acc is None else float(c.probe_acc)
        rows.append(row)
    return rows, cols


def _short(note: str) -> str:
    return note.split(":")[0]


def _plot_spectra(cands: Sequence[Candidate], path: Path) -> Path:
    shown = list(cands) if len(cands) <= 10 else [*cands[:5], *cands[-5:]]
    return plot_spectra([(f"{short_name(c.label, 32)}: {c.metrics['rankme']:.1f}", c.singular_values) for c in shown],
                        path, "singular-value spectra (legend: RankMe)")


def _plot_layers(cands: Sequence[Candidate], path: Path) -> Path:
    def draw(ax: Any) -> None:
        for name in dict.fromkeys(c.name for c in cands):
            mine = [c for c in cands if c.name == name]
            ax.plot(range(len(mine)), [c.metrics["rankme"] for c in mine], marker="o", label=name)
            ax.set_xticks(range(len(mine)), [c.tap for c in mine], rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("RankMe")

    return figure(path, "RankMe per layer (forward order)", draw)


def _plot_param(cands: Sequence[Candidate], param: str, path: Path) -> Path:
    def draw(ax: Any) -> None:
        xs = [float(c.params[param]) for c in cands]
        ax.scatter(xs, [c.metrics["rankme"] for c in cands], color="C0", label="RankMe")
        if xs and min(xs) > 0 and max(xs) / min(xs) > 20:
            ax.set_xscale("log")
        ax.set_xlabel(param)
        ax.set_ylabel("RankMe", color="C0")
        if any(c.probe_acc is not None for c in cands):
            ax2 = ax.twinx()
            ax2.scatter(xs, [math.nan if c.probe_acc is None else c.probe_acc for c in cands], color="C1",
                        marker="x", label="probe accuracy")
            ax2.set_ylabel("probe accuracy (%)", color="C1")

    return figure(path, f"RankMe vs {param}", draw, legend_size=None)


def write_select_report(sel: Selection, path: str | Path, metrics: Sequence[str], command: str = "") -> Path:
    """A self-contained HTML report of a selection (table, picks, oracle check, plots embedded)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows, cols = selection_rows(sel, metrics)
    picks = [f"argmax RankMe: {sel.best.label} (RankMe {sel.best.metrics['rankme']:.2f})"]
    if sel.plateau is not None:
        picks.append(f"plateau rule over {sel.param}: {sel.plateau.label}")
    if sel.oracle is not None and sel.correlations is not None:
        c = sel.correlations
        picks.append(f"label oracle (linear probe): {sel.oracle.label} ({sel.oracle.probe_acc:.2f}%); regret of the "
                     f"RankMe pick {sel.regret:.2f} points; Spearman {c['spearman']:.2f} "
                     f"[{c['spearman_lo']:.2f}, {c['spearman_hi']:.2f}], Kendall {c['kendall']:.2f} "
                     f"[{c['kendall_lo']:.2f}, {c['kendall_hi']:.2f}] (bootstrap 95% CIs)")
    sections = [("Candidates ranked by RankMe", to_markdown(rows, cols)), ("Picks", "\n\n".join(picks))]
    if command:
        sections.append(("Command", command))
    stem = out.with_suffix("")
    images = [("Singular-value spectra", _plot_spectra(sel.candidates, Path(f"{stem}-spectra.png")))]
    ordered = sorted(sel.candidates, key=lambda c: (c.name, c.index))
    if any(c.tap not in ("", "output") for c in sel.candidates):
        images.append(("RankMe per layer", _plot_layers(ordered, Path(f"{stem}-layers.png"))))
    if sel.param is not None:
        images.append((f"RankMe vs {sel.param}", _plot_param(sel.candidates, sel.param, Path(f"{stem}-param.png"))))
    write_report(out, "rankme select", sections, images)
    for _, png in images:
        png.unlink(missing_ok=True)
    return out

