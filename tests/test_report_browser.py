"""HTML reports opened in a real headless Chromium (tables and embedded plots must actually render, wrap only between
words at 1 280 px and highlight the pick), and what their figures draw."""

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
                                  "reproduction-report-full.html", "reproduction-report-long.html",
                                  "reproduction-report-long-fewlabel.html"])
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
    from rankme.selection.pipelines import score_models
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
    report = write_select_report(sel.with_(command="rankme select --layers all"), tmp_path / "report.html")
    dom = render_dom(report)
    assert body_counts(dom) == {"images-total": 3, "images-loaded": 3, "tables": 1}
    cells = _cell_texts(dom)
    assert "width=6" in cells and "= output" in cells and "argmax" in " ".join(cells)  # layer 2 is the output
    assert not list(tmp_path.glob("*.png"))  # plots are embedded, not left beside the report
    _no_external_resources(report.read_text())
    assert_not_blank(screenshot(report, tmp_path / "shot.png"))


@pytest.fixture(scope="module")
def long_layer_scan(tmp_path_factory) -> tuple[Path, object]:
    """The select report of a long-named model scanned at 7 layers with every default metric (N < K for some)."""
    import numpy as np
    import torch

    from rankme.io.inputs import InputData
    from rankme.models.encoders import Encoder
    from rankme.reporting.select_report import write_select_report
    from rankme.selection.pipelines import score_models
    from rankme.selection.rules import choose

    require_chromium()
    x = np.random.default_rng(0).standard_normal((60, 10)).astype(np.float32)  # N < K for the wide layers
    data = InputData("x", "array", 60, lambda idx: x[idx], "fp-x")
    torch.manual_seed(0)
    net = torch.nn.Sequential(*[torch.nn.Sequential(torch.nn.Linear(10 if i == 0 else 96, 96), torch.nn.GELU())
                                for i in range(6)], torch.nn.Linear(96, 32))
    name = "torch:/home/someone/very/long/path/to/a/project/checkpoints/encoder_factory_module:build_the_model"
    enc = Encoder(net, name=name, modality="array")
    metrics = ["rankme", "stable_rank", "nesum", "participation_ratio"]
    sel = choose(score_models([enc], data, metrics, layers="all", progress=False)).with_(metrics=metrics)
    report = write_select_report(sel, tmp_path_factory.mktemp("scan") / "report.html")
    return report, sel


def test_select_report_of_a_long_layer_scan_fits_1280_px(long_layer_scan):
    """Long model names, many layers and every default metric: the main table must not overflow a 1 280 px window."""
    from browser import layout

    require_chromium()
    report, _ = long_layer_scan
    box = layout(render_dom(report, width=1280))
    assert box["viewport"] == 1280
    assert box["overflow"] == 0 and box["table-right"] <= 1280, box
    text = report.read_text(encoding="utf-8")
    assert "compares runs of one method" in text and "reads ~" in text  # the caveat and the N < K under-read
    assert "/home/someone" not in text.split("<h2>Notes")[0].split("<table")[1]  # short names in the table


def test_select_report_wraps_only_between_words_and_highlights_the_pick(long_layer_scan, tmp_path):
    """The same long scan at 1 280 px: no cell or header breaks inside a word or number, and each width's pick is
    bold on a coloured background (no other row is)."""
    from browser import text_layout

    require_chromium()
    report, sel = long_layer_scan
    broken, rows = text_layout(report, tmp_path, width=1280)
    assert broken == [], broken
    assert len(sel.picks) == 2  # widths 96 and 32 are ranked apart: one pick each
    _assert_highlighted(rows, [[f"K={k} #1", rows[0]["cells"][1], c.layer] for k, c in sel.picks.items()], "ranked")
    assert_not_blank(screenshot(report, tmp_path / "select.png", size=(1280, 1800)))


def _fake_run(cfg) -> dict:
    """A stored run's metrics without training (every registry metric, a spectrum, probe accuracies), fixed by the
    config, so a demo-shaped report is built in a second."""
    import zlib

    import numpy as np

    from rankme.metrics.registry import METRICS

    g = np.random.default_rng(zlib.crc32(repr(cfg).encode()))
    sv = np.exp(-np.arange(64) * g.uniform(0.02, 0.3)) * g.uniform(1, 50)
    out = {name: float(g.uniform(1, 60)) for name in METRICS}
    p = sv / sv.sum() + 1e-7
    out.update({"rankme": float(np.exp(-(p * np.log(p)).sum())), "invariance": float(g.uniform(0, 1)),
                "singular_values": sv.tolist(), "rankme_se": 0.3, "probe_acc": float(g.uniform(40, 70)),
                "ood_probe_acc": float(g.uniform(20, 35))})
    return out


def _demo_report(tmp_path: Path) -> tuple[Path, dict]:
    from rankme.paper.protocols import DEMO_SWEEPS
    from rankme.paper.reproduce import run_reproduction

    result = run_reproduction(tmp_path / "demo", DEMO_SWEEPS, log=lambda m: None, train=_fake_run)
    return Path(result["report"]), result


def _assert_highlighted(rows: list[dict], picked: list[list[str]], table: str) -> None:
    """The rows whose cells begin with one of ``picked`` are bold on a coloured background; no other row is."""
    plain = ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)", "transparent")
    hits = [r for r in rows if any(r["cells"][: len(p)] == p for p in picked)]
    assert len(hits) == len(picked), (table, picked, [r["cells"] for r in rows])
    for r in hits:
        assert r["weight"] >= 600 and r["background"] not in plain, (table, r)
    others = [r for r in rows if r not in hits and (r["weight"] >= 600 or r["background"] not in plain)]
    assert not others, (table, others)


def test_demo_report_wraps_only_between_words_and_highlights_the_pick(tmp_path):
    """The demo's report at 1 280 px: no header or cell breaks inside a word or number (it did: "RankM e",
    "temperature=0.0 5"); in "Every run" the values RankMe picked are bold on a coloured background; the
    glossary's *italics* render as italics, not as literal asterisks."""
    from browser import text_layout

    require_chromium()
    report, result = _demo_report(tmp_path)
    text = report.read_text(encoding="utf-8")
    assert "*edge*" not in text and "<em>edge</em>" in text
    broken, rows = text_layout(report, tmp_path, width=1280)
    assert broken == [], broken
    every = [r for r in rows if len(r["cells"]) > 10]  # "Every run" is the only table this wide
    picked = [[s["sweep"], f"{s['param']}={s['pick_rankme']:g}"] for s in result["sweeps"]]
    _assert_highlighted(every, picked, "Every run")
    assert_not_blank(screenshot(report, tmp_path / "demo.png", size=(1280, 1800)))


def test_spectra_are_drawn_relative_to_sigma_1_down_to_the_rounding_floor():
    """The spectrum figure of every report draws σ_k/σ₁ and stops at the rounding floor √(K·ε) (it drew
    σ_k/‖σ‖₁ down to 1e-11, seven overlapping curves in the MiniLM layer scan)."""
    import numpy as np

    from rankme.reporting.figures import draw_spectra, plt

    sv = [6.0, 3.0, 1.5, 6e-9, 6e-13]  # the last two are below √(5·2.2e-16)·σ₁ ≈ 3.3e-8·6
    fig, ax = plt().subplots()
    draw_spectra(ax, [("a", sv)])
    (line,) = ax.get_lines()
    assert list(line.get_xdata()) == [1, 2, 3]
    assert np.allclose(line.get_ydata(), [1.0, 0.5, 0.25], rtol=1e-12, atol=0)
    plt().close(fig)


def test_rank_vs_accuracy_point_labels_stay_inside_their_panel(tmp_path, monkeypatch):
    """Every point label of the RankMe-vs-accuracy panels lies inside its axes (the label of a point at the right
    or top edge was drawn across the frame and clipped)."""
    import matplotlib.figure

    from rankme.paper.report import plot_rank_vs_accuracy

    def sweep(name: str, values: list[float], ranks: list[float], accs: list[float]) -> dict:
        pts = [{"value": v, "acc": a, "scores": {"rankme": r}} for v, r, a in zip(values, ranks, accs, strict=True)]
        best = max(pts, key=lambda p: p["scores"]["rankme"])["value"]
        return {"sweep": name, "param": "lr", "points": pts, "pick_rankme": best,
                "pick_oracle": max(pts, key=lambda p: p["acc"])["value"]}

    tables = {"sweeps": [sweep("SimCLR lr", [0.0001, 0.0003, 0.001, 0.003], [108.0, 98.7, 83.8, 67.9],
                               [65.0, 70.7, 76.0, 76.4]),
                         sweep("DINO teacher temp.", [0.01, 0.02, 0.04, 0.07, 0.1], [48.4, 50.3, 51.9, 52.1, 13.2],
                               [67.8, 66.9, 69.0, 70.0, 60.8])]}
    outside: list[str] = []
    save = matplotlib.figure.Figure.savefig

    def checked_savefig(fig, *args, **kwargs):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        for ax in fig.axes:
            box = ax.get_window_extent(renderer)
            for t in ax.texts:
                b = t.get_window_extent(renderer)
                if b.x0 < box.x0 or b.x1 > box.x1 or b.y0 < box.y0 or b.y1 > box.y1:
                    outside.append(f"{ax.get_title()}: {t.get_text()}")
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", checked_savefig)
    plot_rank_vs_accuracy(tables, tmp_path / "r.png")
    assert outside == []
