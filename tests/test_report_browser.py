"""HTML reports opened in a real headless Chromium: tables and embedded plots must actually render."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from browser import assert_not_blank, body_counts, render_dom, require_chromium, screenshot, with_probe
from rankme.reporting.html import write_report

pytest.importorskip("matplotlib")
pytest.importorskip("PIL")

DOCS_REPORT = Path(__file__).resolve().parents[1] / "docs" / "reproduction-report.html"
CELLS = ["selector", "probe acc. (%)", "RankMe β-test", "oracle <labels> & co", "63.7", "12.5"]
TABLE = ("| selector | probe acc. (%) |\n|---|---:|\n| RankMe β-test | 63.7 |\n"
         "| oracle <labels> & co | 12.5 |")


def _plots(tmp_path: Path) -> list[tuple[str, Path]]:
    from rankme.reporting.figures import plt as _plt

    plt = _plt()
    out = []
    for i, kind in enumerate(("line", "scatter")):
        fig, ax = plt.subplots(figsize=(4, 3))
        xs = list(range(1, 21))
        if kind == "line":
            ax.plot(xs, [x**-1.0 for x in xs], color="tab:blue")
        else:
            ax.scatter(xs, [(7 * x) % 11 for x in xs], color="tab:red")
        ax.set_title(f"plot {i}")
        path = tmp_path / f"plot{i}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        out.append((f"caption {i}: {kind}", path))
    return out


def _cell_texts(dom: str) -> list[str]:
    return [html.unescape(c) for c in re.findall(r"<t[dh]>(.*?)</t[dh]>", dom, flags=re.S)]


def _no_external_resources(text: str) -> None:
    external = re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", text, flags=re.I)
    assert not external, f"report is not self-contained: {external}"


def test_report_renders_table_and_plots_in_chromium(tmp_path):
    require_chromium()
    page = write_report(tmp_path / "report.html", "Browser check", [
        ("Summary", "Some text before the table.\n\n" + TABLE), ("Notes", "plain paragraph")], _plots(tmp_path))
    _no_external_resources(page.read_text(encoding="utf-8"))

    dom = render_dom(page)
    assert body_counts(dom) == {"images-total": 2, "images-loaded": 2, "tables": 1}, dom[:2000]
    cells = _cell_texts(dom)
    assert all(c in cells for c in CELLS), cells
    assert re.search(r'<table class="rankme-table">', dom)
    assert "caption 0: line" in dom and "caption 1: scatter" in dom

    assert_not_blank(screenshot(page, tmp_path / "shot.png"))


@pytest.mark.parametrize("name", ["reproduction-report.html", "reproduction-report-rerun.html",
                                  "reproduction-report-full.html", "reproduction-report-long.html"])
def test_committed_reproduction_report_renders(tmp_path, name):
    require_chromium()
    report = DOCS_REPORT.with_name(name)
    source = report.read_text(encoding="utf-8")
    _no_external_resources(source)
    n_tables, n_images = source.count("<table"), source.count("<img")
    assert n_tables >= 1 and n_images >= 2

    # The committed file may predate report.py's load script: render a copy that carries it.
    page = with_probe(report, tmp_path / name)
    dom = render_dom(page)
    assert body_counts(dom) == {"images-total": n_images, "images-loaded": n_images, "tables": n_tables}
    assert "oracle (labels)" in _cell_texts(dom)

    assert_not_blank(screenshot(page, tmp_path / "shot.png"))


def test_select_report_renders_table_and_plots_in_chromium(tmp_path):
    """`rankme select` with a layer scan and a named hyperparameter writes a report whose three plots load."""
    import numpy as np
    import torch

    from rankme.io.inputs import InputData
    from rankme.models.encoders import Encoder
    from rankme.reporting.select_report import write_select_report
    from rankme.selection.candidates import score_models
    from rankme.selection.rules import choose

    require_chromium()
    x = np.random.default_rng(0).standard_normal((120, 10)).astype(np.float32)
    data = InputData("x", "array", 120, lambda idx: x[idx], "fp-x")
    encs, params = [], []
    for width in (2, 6):
        torch.manual_seed(width)
        net = torch.nn.Sequential(torch.nn.Linear(10, width), torch.nn.ReLU(), torch.nn.Linear(width, 8))
        encs.append(Encoder(net, name=f"width={width}", modality="array"))
        params.append({"width": width})
    sel = choose(score_models(encs, data, layers="all", params=params, progress=False), param="width")
    report = write_select_report(sel, tmp_path / "report.html", ["rankme"], "rankme select --layers all")
    dom = render_dom(report)
    assert body_counts(dom) == {"images-total": 3, "images-loaded": 3, "tables": 1}
    cells = _cell_texts(dom)
    assert "width=6" in cells and "= output" in cells and "argmax" in " ".join(cells)  # layer 2 is the output
    assert not list(tmp_path.glob("*.png"))  # plots are embedded, not left beside the report
    _no_external_resources(report.read_text())
    assert_not_blank(screenshot(report, tmp_path / "shot.png"))


def test_select_report_of_a_long_layer_scan_fits_1280_px(tmp_path):
    """Long model names, many layers and every default metric: the main table must not overflow a 1 280 px window."""
    import numpy as np
    import torch

    from browser import layout
    from rankme.io.inputs import InputData
    from rankme.models.encoders import Encoder
    from rankme.reporting.select_report import write_select_report
    from rankme.selection.candidates import score_models
    from rankme.selection.rules import choose

    require_chromium()
    x = np.random.default_rng(0).standard_normal((60, 10)).astype(np.float32)  # N < K for the wide layers
    data = InputData("x", "array", 60, lambda idx: x[idx], "fp-x")
    torch.manual_seed(0)
    net = torch.nn.Sequential(*[torch.nn.Sequential(torch.nn.Linear(10 if i == 0 else 96, 96), torch.nn.GELU())
                                for i in range(6)], torch.nn.Linear(96, 32))
    name = "torch:/home/someone/very/long/path/to/a/project/checkpoints/encoder_factory_module:build_the_model"
    enc = Encoder(net, name=name, modality="array")
    sel = choose(score_models([enc], data, ["rankme", "stable_rank", "nesum", "participation_ratio"], layers="all",
                              progress=False))
    report = write_select_report(sel, tmp_path / "report.html", ["rankme", "stable_rank", "nesum",
                                                                 "participation_ratio"])
    box = layout(render_dom(report, width=1280))
    assert box["viewport"] == 1280
    assert box["overflow"] == 0 and box["table-right"] <= 1280, box
    text = report.read_text(encoding="utf-8")
    assert "compares runs of one method" in text and "reads ~" in text  # the caveat and the N < K under-read
    assert "/home/someone" not in text.split("<h2>Notes")[0].split("<table")[1]  # short names in the table
