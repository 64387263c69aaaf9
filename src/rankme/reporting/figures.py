"""Figures (matplotlib, PNG): one figure helper and one spectrum plot, shared by every report.

matplotlib is optional (extra ``report``); without it, :func:`plt` raises
:class:`~rankme.core.optional.MissingExtraError` and callers print their tables without the figures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rankme.core.numerics import gram_floor
from rankme.core.optional import require

__all__ = ["draw_spectra", "figure", "panels", "plot_spectra", "plt", "saved_path"]


def plt() -> Any:
    """``matplotlib.pyplot`` with the non-interactive Agg backend (raises naming the extra when missing)."""
    matplotlib = require("matplotlib", "report", "figures")
    matplotlib.use("Agg")
    return require("matplotlib.pyplot", "report", "figures")


def saved_path(path: str | Path) -> Path:
    """The file matplotlib writes for ``path``: ``path`` itself, or, without a suffix (``--plot DIR``, ``fig``),
    ``path`` + ``.png`` (matplotlib appends its default format's suffix).

    Examples:
        >>> saved_path("out/fig"), saved_path("out/fig.svg")
        (PosixPath('out/fig.png'), PosixPath('out/fig.svg'))
    """
    out = Path(path)
    return out if out.suffix else out.with_name(out.name + ".png")


def figure(path: str | Path, title: str, draw: Callable[[Any], None], *, legend_size: float | None = 7,
           size: tuple[float, float] = (7, 4.2)) -> Path:
    """One panel: ``draw(ax)`` fills it; titled, gridded, saved as PNG at ``path``.

    Examples:
        >>> import tempfile
        >>> p = figure(Path(tempfile.mkdtemp()) / "f.png", "t", lambda ax: ax.plot([1, 2], label="x"))
        >>> p.stat().st_size > 0
        True
    """
    pyplot = plt()
    fig, ax = pyplot.subplots(figsize=size)
    draw(ax)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if legend_size is not None and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=legend_size)
    fig.tight_layout()
    out = saved_path(path)
    fig.savefig(out, dpi=100)
    pyplot.close(fig)
    return out


def panels(path: str | Path, titles: Sequence[str], draw: Callable[[Any, int], None], *,
           width: float = 4.2, height: float = 3.6, columns: int | None = None) -> Path:
    """A row (or grid, with ``columns``) of panels: ``draw(ax, i)`` fills panel ``i``; saved as PNG."""
    pyplot = plt()
    n = max(len(titles), 1)
    cols = min(n, columns or n)
    rows = -(-n // cols)
    fig, axes = pyplot.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= len(titles):
            ax.set_visible(False)
            continue
        draw(ax, i)
        ax.set_title(titles[i], fontsize=9)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
    fig.tight_layout()
    out = saved_path(path)
    fig.savefig(out, dpi=100)
    pyplot.close(fig)
    return out


def draw_spectra(ax: Any, series: Sequence[tuple[str, Sequence[float]]]) -> None:
    """Singular-value spectra σ_k/σ₁ against k, log-log, one line per (label, σ) pair; each line stops at the
    rounding floor of its spectrum (:func:`~rankme.core.numerics.gram_floor`, ≈3e-7 at K = 384): the values below
    it are noise, and drawing them down to 1e-11 squeezed what tells the curves apart into the top of the panel."""
    for label, sv in series:
        s = np.asarray(sv, dtype=np.float64)
        top = float(s.max()) if s.size else 0.0
        if top <= 0:
            continue
        keep = s / top > gram_floor(s.size)
        ax.plot(np.arange(1, s.size + 1)[keep], s[keep] / top, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("k")
    ax.set_ylabel("σ_k / σ₁")


def plot_spectra(series: Sequence[tuple[str, Sequence[float]]], path: str | Path,
                 title: str = "singular-value spectra") -> Path:
    """The spectrum plot of every report: one line per (label, singular values).

    Examples:
        >>> import tempfile
        >>> p = plot_spectra([("a", [3.0, 2.0, 1.0])], Path(tempfile.mkdtemp()) / "s.png")
        >>> head = p.read_bytes()[:24]  # a PNG of the default 7 × 4.2 inches at 100 dpi: width, height in IHDR
        >>> head[1:4], int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        (b'PNG', 700, 420)
    """
    return figure(path, title, lambda ax: draw_spectra(ax, series), legend_size=6)
