"""The ranked table and the HTML report of ``rankme select``: spectra, rank per layer, rank vs hyperparameter."""

from __future__ import annotations

import html
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rankme.core.guidance import isotropic_rankme_fraction
from rankme.core.optional import MissingExtraError
from rankme.reporting.figures import figure, plot_spectra
from rankme.reporting.html import markdown_table_html, write_report
from rankme.reporting.tables import format_table, short_name, to_markdown
from rankme.selection.candidates import Candidate
from rankme.selection.record import RENDERERS, Selection
from rankme.selection.rules import NOTHING_TO_COMPARE
from rankme.selection.warnings import evidence, no_warning_text

__all__ = ["FEW_LABEL_COLUMNS", "recommendation_lines", "register", "render_repr_html", "render_table", "render_text",
           "selection_rows", "selection_text", "write_select_report"]


def _note(c: Candidate) -> str:
    """A short note for the table (the full sentences go under it)."""
    out = []
    if c.n < 2 * c.dim:
        frac = isotropic_rankme_fraction(c.n, c.dim) * min(c.n, c.dim) / c.dim
        out.append(f"N{'<' if c.n < c.dim else '<2'}K: reads ~{100 * (1 - frac):.0f}% low")
    if c.merged:
        out.append("= " + ", ".join(c.merged))
    if c.warnings:
        out.append("⚠ " + ", ".join(dict.fromkeys(w.code for w in c.warnings)))  # each code once
    return "; ".join(out)


def selection_rows(sel: Selection, metrics: Sequence[str] | None = None,
                   failed: Sequence[tuple[str, str]] | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows (ranked within each width K, best first) and column names of the ranked table; candidates that
    could not be scored (``failed``: name, reason) close it, marked ``not scored`` (reasons go under the table).

    Examples:
        >>> from rankme.selection.rules import choose
        >>> rows, cols = selection_rows(choose([Candidate("a", "", 10, 4, {"rankme": 3.0})]), ["rankme"])
        >>> cols, rows[0]["pick"]
        (['#', 'candidate', 'N', 'K', 'rankme', 'rank/min(N,K)', 'pick', 'note'], 'keep, argmax')
    """
    metrics = sel.metrics if metrics is None else metrics
    failed = sel.failed if failed is None else failed
    params = sorted(set().union(*(c.params for c in sel.candidates)))
    has_probe = any(c.probe_acc is not None for c in sel.candidates)
    has_layers = any(c.layer for c in sel.candidates)
    has_inv = any(c.invariance is not None for c in sel.candidates)
    few = iter(sel.few_label.candidates if sel.few_label is not None else ())
    mixed = len(sel.picks) > 1
    cols = ["#", "candidate", *(["layer"] if has_layers else []), *params, "N", "K", *metrics, "rank/min(N,K)"]
    cols += ["view invariance"] if has_inv else []
    cols += ["probe acc (%)"] if has_probe else []
    cols += list(FEW_LABEL_COLUMNS) if sel.few_label is not None else []
    cols += ["pick", "note"]
    rows = []
    position: dict[int, int] = {}
    for c in sel.candidates:
        position[c.dim] = position.get(c.dim, 0) + 1
        picks = [name for name, p in (("argmax", sel.best), ("plateau", sel.plateau), ("oracle", sel.oracle))
                 if p is c]
        if sel.recommendation is not None and c.label in sel.recommendation.candidates:
            picks.insert(0, "keep")
        if mixed and sel.picks.get(c.dim) is c and c is not sel.best:
            picks.insert(0, f"best of K={c.dim}")
        if c.layer == "output" and c not in sel.picks.values() and any(o.layer not in ("", "output")
                                                                     for o in sel.candidates if o.name == c.name):
            picks.append("reference")
        row: dict[str, Any] = {"#": f"K={c.dim} #{position[c.dim]}" if mixed else position[c.dim],
                               "candidate": short_name(c.name, 40), "layer": c.layer, "N": c.n, "K": c.dim,
                               **c.params, **{m: float(c.metrics[m]) for m in metrics},
                               "rank/min(N,K)": float(c.metrics["rankme"]) / max(min(c.n, c.dim), 1),
                               "pick": ", ".join(picks), "note": _note(c)}
        if has_inv:
            row["view invariance"] = float("nan") if c.invariance is None else float(c.invariance)
        if has_probe:
            row["probe acc (%)"] = float("nan") if c.probe_acc is None else float(c.probe_acc)
        if c.few_label is not None and sel.few_label is not None:
            a = next(few)
            row.update(zip(FEW_LABEL_COLUMNS, (_interval(a.linear, a.linear_lo, a.linear_hi),
                                               _interval(a.knn, a.knn_lo, a.knn_hi)), strict=True))
        rows.append(row)
    rows += [{"#": "-", "candidate": short_name(name, 40), "note": "not scored: error below"}
             for name, _ in failed]
    return rows, cols


FEW_LABEL_COLUMNS = ("few-label linear (%)", "few-label k-NN (%)")
"""The table's columns of the few-label check: cross-validated accuracy [95% bootstrap interval]."""


def _interval(v: float, lo: float, hi: float, unit: str = "") -> str:
    return f"{v:.1f}{unit} [{lo:.1f}, {hi:.1f}]"


def _few_label_lines(sel: Selection) -> list[str]:
    """The few-label pick and the plain statement on RankMe's pick (empty without the few-label check)."""
    f = sel.few_label
    if f is None:
        return []
    a = f.candidates[f.pick]
    return [f"few-label pick (cross-validated linear probe on {f.n_labelled} labelled rows of {f.classes} classes, "
            f"≥ {f.per_class} per class, {f.folds} folds; ties to the higher RankMe): {a.name} (linear "
            f"{_interval(a.linear, a.linear_lo, a.linear_hi, '%')}, k-NN (k={f.k}) "
            f"{_interval(a.knn, a.knn_lo, a.knn_hi, '%')}; 95% bootstrap intervals)", f.statement]


def recommendation_lines(sel: Selection) -> list[str]:
    """The recommendation block: what to keep, the rule that chose it, how sure, what labels would buy (empty
    for a selection without one)."""
    r = sel.recommendation
    if r is None:
        return []
    lines = [f"recommendation: keep {r.keep}", f"  chosen by {r.rule}", f"  how sure: {r.how_sure}"]
    return lines + ([f"  {r.labels}"] if r.labels else [])


def _plateau_line(sel: Selection) -> str | None:
    """The plateau pick: the swept value it chose (its seeds averaged), never one seed's file."""
    p = sel.plateau
    if p is None or sel.param is None:
        return None
    value = float(p.params[sel.param])
    group = [c for c in sel.candidates if c.dim == p.dim and sel.param in c.params
             and float(c.params[sel.param]) == value]
    runs = f"mean of {len(group)} runs" if len(group) > 1 else p.label
    return f"plateau rule over {sel.param}: {sel.param}={value:g} ({runs})"


def selection_text(sel: Selection, say: Callable[[str], str] = str) -> list[str]:
    """The recommendation (what to keep, the rule, how sure, what labels would buy), then the evidence under it:
    RankMe's pick, the plateau pick (a value, its seeds averaged), with labels the oracle's and the few-label pick,
    the warnings on RankMe's pick and the caveats, one sentence each (what the CLI prints under the table and the
    report shows above it). A single candidate gets its caveat instead of the no-warning line. ``say`` writes the
    notes that name parameters (the caveats, the no-warning line): as they are, or the CLI's flags."""
    lines = [*recommendation_lines(sel)]
    lines += ["evidence (the other picks and checks, not rival answers):"] if lines else []
    lines += [f"RankMe's pick ({sel.best_rule}): {sel.best.label} (RankMe {sel.best.metrics['rankme']:.2f})"]
    if len(sel.picks) > 1:
        lines += [f"best of width K={k}: {c.label} (RankMe {c.metrics['rankme']:.2f})" for k, c in sel.picks.items()]
    plateau = _plateau_line(sel)
    lines += [plateau] if plateau else []
    if sel.oracle is not None and sel.correlations is not None:
        c = sel.correlations
        lines.append(f"label oracle (linear probe): {sel.oracle.label} ({sel.oracle.probe_acc:.2f}%); regret of the "
                     f"RankMe pick {sel.regret:.2f} points; Spearman {c['spearman']:.2f} [{c['spearman_lo']:.2f}, "
                     f"{c['spearman_hi']:.2f}], Kendall {c['kendall']:.2f} (bootstrap 95% CIs)")
    lines += _few_label_lines(sel)
    labelled = sel.oracle is not None or sel.few_label is not None
    single = NOTHING_TO_COMPARE in sel.caveats
    lines += [f"warning {w} ({evidence(w.code)})" for w in sel.warnings] or ([] if single else
                                                                             [say(no_warning_text(labels=labelled))])
    lines += [f"caveat: {say(c)}" for c in sel.caveats]
    return lines


def _plot_candidate_spectra(cands: Sequence[Candidate], path: Path) -> Path:
    shown = list(cands) if len(cands) <= 10 else [*cands[:5], *cands[-5:]]
    one_model = len({c.name for c in shown}) == 1 and all(c.layer for c in shown)  # a layer scan: name the layers

    def label(c: Candidate) -> str:
        return f"{c.layer if one_model else short_name(c.label, 32)}: {c.metrics['rankme']:.1f}"

    title = f"{short_name(shown[0].name, 40)}: spectra per layer" if one_model else "singular-value spectra"
    return plot_spectra([(label(c), c.singular_values) for c in shown], path, title + " (legend: RankMe)")


def _plot_layers(cands: Sequence[Candidate], path: Path) -> Path:
    def draw(ax: Any) -> None:
        for name in dict.fromkeys(c.name for c in cands):
            mine = [c for c in cands if c.name == name]
            ax.plot(range(len(mine)), [c.metrics["rankme"] for c in mine], marker="o", label=short_name(name, 32))
            ax.set_xticks(range(len(mine)), [c.layer for c in mine], rotation=60, ha="right", fontsize=7)
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


def write_select_report(sel: Selection, path: str | Path, say: Callable[[Any], str] = str) -> Path:
    """A self-contained HTML report of a selection: first the recommendation, then the evidence (picks, warnings
    and caveats), the ranked table (fits 1 280 px), every note in full (``notes``: the run's own, e.g. duplicate
    rows; then each candidate's), the candidates not scored and why (its ``failures``), its ``command``, and figures (spectra, RankMe per layer,
    RankMe vs the hyperparameter). Without matplotlib the report is written without figures and says which extra
    to install. ``say`` writes the notes (as :func:`selection_text`).

    The figures are drawn in a private temporary folder and the page is written to a temporary file that
    replaces ``path`` at once: two runs sharing an output folder never read or delete each other's files.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    failed, notes, command = [(f.name, f.message(say)) for f in sel.failures], sel.notes, sel.command
    rows, cols = selection_rows(sel, sel.metrics, failed)
    per_candidate = [f"{c.label}: " + "; ".join(map(say, c.notes)) for c in sel.candidates if c.notes]
    all_notes = "\n\n".join([*map(say, notes), *per_candidate])
    text = selection_text(sel, say)
    rec = recommendation_lines(sel)
    sections = ([("Recommendation", "\n\n".join([sel.recommendation.line(), *(x.strip() for x in rec[1:])]))]
                if sel.recommendation is not None else [])
    sections += [("Evidence: the other picks, warnings and caveats", "\n\n".join(text[len(rec) + bool(rec):])),
                ("Candidates ranked by RankMe" + (" (within each width K)" if len(sel.picks) > 1 else ""),
                 to_markdown(rows, cols))]
    if failed:
        sections.append(("Not scored", "\n\n".join(msg for _, msg in failed)))
    if all_notes:
        sections.append(("Notes", all_notes))
    if command:
        sections.append(("Command", command))
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-") as tmp:
        images: list[tuple[str, Path]] = []
        try:
            images.append(("Singular-value spectra σ_k/σ₁ (each stops at its rounding floor)",
                           _plot_candidate_spectra(sel.candidates, Path(tmp, "spectra.png"))))
            ordered = sorted(sel.candidates, key=lambda c: (c.name, c.index))
            if any(c.layer not in ("", "output") for c in sel.candidates):
                images.append(("RankMe per layer", _plot_layers(ordered, Path(tmp, "layers.png"))))
            if sel.param is not None:
                images.append((f"RankMe vs {sel.param}", _plot_param(sel.candidates, sel.param,
                                                                     Path(tmp, "param.png"))))
        except MissingExtraError as e:
            sections.append(("Figures", f"not drawn: {e}"))
        page = write_report(Path(tmp, "report.html"), "rankme select", sections, images)
        os.replace(page, out)
    return out


def render_table(sel: Selection) -> str:
    """The ranked table as aligned text (``result.table()``)."""
    rows, cols = selection_rows(sel)
    return format_table(rows, cols)


def render_text(sel: Selection, say: Callable[[Any], str] = str) -> str:
    """What ``rankme select`` prints (``str(result)``): the table, the recommendation and the evidence under it,
    the candidates not scored, the run's notes, how many results came from the cache, and last the
    recommendation in one line. ``say`` writes the notes and errors (as they are, or the command line's flags)."""
    cached = sum(c.cached for c in sel.candidates)
    tail = [f"{cached} of {len(sel.candidates)} results from the cache"] if cached else []
    errors = [f"not scored: {f.message(say)}" for f in sel.failures]
    last = ["", sel.recommendation.line()] if sel.recommendation is not None else []
    rows, cols = selection_rows(sel, None, [(f.name, f.message(say)) for f in sel.failures])
    return "\n".join([format_table(rows, cols), "", *selection_text(sel, say), *errors, *map(say, sel.notes), *tail,
                      *last])


def render_repr_html(sel: Selection) -> str:
    """A notebook's rendering (``result._repr_html_()``): the recommendation in one line, the evidence, the table."""
    rows, cols = selection_rows(sel)
    rec = sel.recommendation
    head = "" if rec is None else f"<p><strong>{html.escape(rec.line())}</strong></p>"
    text = "".join(f"<li>{html.escape(x)}</li>" for x in selection_text(sel))
    return f"<div class='rankme-select'>{head}<ul>{text}</ul>{markdown_table_html(to_markdown(rows, cols))}</div>"


def register() -> None:
    """Register these renderers for :class:`~rankme.selection.record.Selection` (its ``str``, ``table()``,
    ``to_html()`` and notebook rendering); done when this module is imported."""
    RENDERERS.update(text=render_text, table=render_table, html=write_select_report, repr_html=render_repr_html)


register()
