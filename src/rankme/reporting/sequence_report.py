"""The per-layer table, the figure and the HTML report of a per-sequence layer scan
(:class:`~rankme.selection.sequence_record.SequenceScan`, ``rankme select --layers ... --tokens per-sequence``):
one row per layer (the distribution of the samples' own effective ranks), and a box plot per layer."""

from __future__ import annotations

import html
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rankme.core.errors import Note
from rankme.core.optional import MissingExtraError
from rankme.reporting.figures import plt, saved_path
from rankme.reporting.html import markdown_table_html, write_report
from rankme.reporting.tables import format_table, short_name, to_markdown
from rankme.selection.record import RENDERERS
from rankme.selection.sequence_record import FIGURE_FILE, LayerSequences, SequenceScan

__all__ = ["SEQUENCE_COLUMNS", "WHAT", "plot_layer_sequences", "register", "render_sequence_repr_html",
           "render_sequence_table", "render_sequence_text", "sequence_rows", "write_sequence_report"]

SEQUENCE_COLUMNS = ("#", "candidate", "layer", "sequences", "tokens/seq", "K", "mean", "std", "q05", "q25", "median",
                    "q75", "q95", "mean/min(L,K)", "note")
"""The per-layer table's columns: each layer's sequences, their mean real tokens, K, the distribution of their
values (mean, population std, quantiles), the mean of each value over its bound min(L, K), and a note."""

WHAT = Note("per-sequence RankMe: each sample's effective rank on its own real tokens in each layer (padding masked "
            "out); no layer is picked from these distributions (RankMe's selection rule reads one matrix per "
            "candidate: tokens=all, or the pooled default)", names=("tokens",))
"""What a per-sequence scan is, said above its table (``say`` writes ``tokens=`` as the command line's flag)."""


def sequence_rows(scan: SequenceScan) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows (one per layer, in forward order) and columns (:data:`SEQUENCE_COLUMNS`) of the per-layer table.

    Examples:
        >>> from rankme.metrics.sequence import SequenceRanks
        >>> layer = LayerSequences("m", "0", 4, SequenceRanks(np.array([2.0, 4.0]), np.array([3, 5])), np.arange(2))
        >>> rows, cols = sequence_rows(SequenceScan([layer], "d.txt"))
        >>> rows[0]["mean"], rows[0]["tokens/seq"], round(rows[0]["mean/min(L,K)"], 4)
        (3.0, 4.0, 0.8333)
    """
    rows = []
    for i, x in enumerate(scan.layers, 1):
        m = x.metrics
        note = [f"= {', '.join(x.merged)}"] if x.merged else []
        rows.append({"#": i, "candidate": short_name(x.name, 40), "layer": x.layer, "sequences": x.n,
                     "tokens/seq": float(np.mean(x.ranks.lengths)), "K": x.dim, "mean": m["rankme_mean"],
                     "std": m["rankme_std"], "q05": m["rankme_q05"], "q25": m["rankme_q25"],
                     "median": m["rankme_q50"], "q75": m["rankme_q75"], "q95": m["rankme_q95"],
                     "mean/min(L,K)": m["rankme_fraction_mean"], "note": "; ".join(note)})
    return rows, list(SEQUENCE_COLUMNS)


def _short_layers(layers: Sequence[LayerSequences]) -> tuple[list[str], str]:
    """The layers' names without their common dotted prefix (for the axis), and that prefix."""
    parts = [x.layer.split(".") for x in layers]
    common = 0
    while all(len(p) > common + 1 for p in parts) and len({p[common] for p in parts}) == 1:
        common += 1
    prefix = ".".join(parts[0][:common])
    return [".".join(p[common:]) for p in parts], prefix


def plot_layer_sequences(scan: SequenceScan, path: str | Path) -> Path:
    """Two panels, one box per layer (each model's layers in forward order): left, each sample's per-sequence
    RankMe; right, the same over its bound min(real tokens, K), which takes the sequences' lengths out. Box:
    quartiles and median; whiskers: 5 % and 95 %; ▲: mean. Saved as PNG at ``path``."""
    pyplot = plt()
    layers = scan.layers
    names, prefix = _short_layers(layers)
    several = len({x.name for x in layers}) > 1
    labels = [f"{short_name(x.name, 16)}\n{n}" if several else n for x, n in zip(layers, names, strict=True)]
    series = ([x.ranks.values for x in layers],
              [x.ranks.values / np.minimum(x.ranks.lengths, x.dim) for x in layers])
    width = max(4.5, 0.55 * len(layers) + 2)
    fig, axes = pyplot.subplots(1, 2, figsize=(2 * width, 4.6))
    for ax, values, ylabel in zip(axes, series, ("RankMe of one sequence's tokens", "RankMe / min(tokens, K)"),
                                  strict=True):
        ax.boxplot(values, whis=(5, 95), showmeans=True, widths=0.6, flierprops={"markersize": 2, "alpha": 0.4},
                   meanprops={"marker": "^", "markerfacecolor": "C1", "markeredgecolor": "C1"})
        tilt = len(labels) > 8 or several
        ax.set_xticks(range(1, len(labels) + 1), labels, rotation=30 if tilt else 0, ha="right" if tilt else "center",
                      fontsize=8)
        ax.set_xlabel(f"layer: {prefix}.<label> (forward order)" if prefix else "layer (forward order)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    model = "" if several else f"{short_name(layers[0].name, 40)}: "
    fig.suptitle(f"{model}per-sequence RankMe per layer, {layers[0].n} sequences "
                 "(box: quartiles, line: median, whiskers: 5–95 %, ▲: mean)", fontsize=10)
    fig.tight_layout()
    out = saved_path(path)
    fig.savefig(out, dpi=100)
    pyplot.close(fig)
    return out


def render_sequence_table(scan: SequenceScan) -> str:
    """The per-layer table as aligned text (``scan.table()``)."""
    rows, cols = sequence_rows(scan)
    return format_table(rows, cols)


def render_sequence_text(scan: SequenceScan, say: Callable[[Any], str] = str) -> str:
    """What ``rankme select --tokens per-sequence`` prints (``str(scan)``): the table, what it is, the run's notes
    (written by ``say``), and how many layers came from the cache."""
    cached = sum(x.cached for x in scan.layers)
    tail = [f"{cached} of {len(scan.layers)} layers from the cache"] if cached else []
    return "\n".join([render_sequence_table(scan), "", say(WHAT), *map(say, scan.notes), *tail])


def write_sequence_report(scan: SequenceScan, path: str | Path, say: Callable[[Any], str] = str,
                          figure_path: str | Path | None = None) -> Path:
    """A self-contained HTML report: what the scan is, the per-layer table, the notes, the command and the box plot
    per layer; with ``figure_path`` the PNG is also saved there. Written through a temporary file that replaces
    ``path`` at once; without matplotlib, without the figure (the report says which extra to install)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows, cols = sequence_rows(scan)
    sections = [("What this is", say(WHAT)), ("Per-sequence RankMe per layer", to_markdown(rows, cols))]
    if scan.notes:
        sections.append(("Notes", "\n\n".join(map(say, scan.notes))))
    if scan.command:
        sections.append(("Command", scan.command))
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-") as tmp:
        images: list[tuple[str, Path]] = []
        try:
            png = plot_layer_sequences(scan, Path(tmp, FIGURE_FILE))
            images.append(("Per-sequence RankMe per layer: box = quartiles, whiskers = 5–95 %, ▲ = mean", png))
            if figure_path is not None:
                Path(figure_path).write_bytes(png.read_bytes())
        except MissingExtraError as e:
            sections.append(("Figures", f"not drawn: {e}"))
        page = write_report(Path(tmp, "report.html"), "rankme select: per-sequence RankMe per layer", sections,
                            images)
        os.replace(page, out)
    return out


def render_sequence_repr_html(scan: SequenceScan) -> str:
    """A notebook's rendering (``scan._repr_html_()``): what it is, and the table."""
    rows, cols = sequence_rows(scan)
    return (f"<div class='rankme-select'><p>{html.escape(WHAT)}</p>"
            f"{markdown_table_html(to_markdown(rows, cols))}</div>")


def register() -> None:
    """Register these renderers for :class:`~rankme.selection.sequence_record.SequenceScan`; done when this
    module is imported."""
    RENDERERS.update(sequence_text=render_sequence_text, sequence_table=render_sequence_table,
                     sequence_html=write_sequence_report, sequence_repr_html=render_sequence_repr_html)


register()
