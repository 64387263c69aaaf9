"""Figures of the reproduction: RankMe against probe accuracy, and the spectra of the best and worst runs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rankme.reporting.figures import draw_spectra, panels

__all__ = ["METHOD_NAMES", "plot_rank_vs_accuracy", "plot_spectra"]

METHOD_NAMES = {"simclr": "SimCLR", "vicreg": "VICReg", "dino": "DINO"}


def _by_method(runs: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[dict[str, Any]]]]:
    methods = sorted({r["config"]["method"] for r in runs})
    return [METHOD_NAMES.get(m, m) for m in methods], [[r for r in runs if r["config"]["method"] == m]
                                                        for m in methods]


def plot_rank_vs_accuracy(runs: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Scatter of RankMe vs linear-probe accuracy, one panel per method, one colour per sweep (paper Fig. 1)."""
    titles, groups = _by_method(runs)

    def draw(ax: Any, i: int) -> None:
        mine = groups[i]
        for sw in sorted({r["sweep"] for r in mine}):
            pts = [r for r in mine if r["sweep"] == sw]
            ax.scatter([p["metrics"]["rankme"] for p in pts], [p["metrics"]["probe_acc"] for p in pts], label=sw, s=22)
        ax.set_xlabel("RankMe (no labels)")
        ax.set_ylabel("linear probe accuracy (%)")

    return panels(path, titles, draw)


def plot_spectra(runs: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Normalised singular-value spectra of the highest- and lowest-accuracy run of each method (log-log)."""
    titles, groups = _by_method(runs)

    def draw(ax: Any, i: int) -> None:
        mine = [r for r in groups[i] if r["metrics"].get("singular_values")]
        if not mine:
            return
        best = max(mine, key=lambda r: r["metrics"]["probe_acc"])
        worst = min(mine, key=lambda r: r["metrics"]["probe_acc"])
        draw_spectra(ax, [(f"{label}: {r['sweep']} RankMe {r['metrics']['rankme']:.0f}, "
                           f"acc {r['metrics']['probe_acc']:.1f}%", r["metrics"]["singular_values"])
                          for label, r in (("best", best), ("worst", worst))])

    return panels(path, titles, draw)
