"""Open HTML reports in a real headless Chromium: the rendered DOM, a screenshot, and a blank-page check.

Chromium is found as ``$RANKME_CHROMIUM``, ``chromium`` or ``chromium-browser`` on ``PATH``. Without it the
tests that need it are skipped, unless ``RANKME_REQUIRE_BROWSER=1`` (set by ``.ci/run``): then they fail,
so CI can never pass by skipping them silently.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

TIMEOUT_S = 60

# No network: nothing in a report may need it, and this machine's network is closed anyway.
_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--disable-extensions", "--hide-scrollbars", "--mute-audio"]


def find_chromium() -> str | None:
    """Path of the Chromium binary, or None."""
    env = os.environ.get("RANKME_CHROMIUM")
    if env:
        return shutil.which(env) or (env if Path(env).is_file() else None)
    return shutil.which("chromium") or shutil.which("chromium-browser")


def require_chromium() -> str:
    """The Chromium binary; skips the test without one (fails instead when RANKME_REQUIRE_BROWSER=1)."""
    exe = find_chromium()
    if exe is None:
        msg = "headless Chromium not found (install Debian's `chromium` or set RANKME_CHROMIUM)"
        if os.environ.get("RANKME_REQUIRE_BROWSER") == "1":
            pytest.fail(msg + "; RANKME_REQUIRE_BROWSER=1 forbids skipping", pytrace=False)
        pytest.skip(msg)
    return exe


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    exe = require_chromium()
    with tempfile.TemporaryDirectory(prefix="rankme-chromium-") as profile:
        try:
            proc = subprocess.run([exe, *_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                                  text=True, timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            pytest.fail(f"chromium did not finish within {TIMEOUT_S} s: {args}", pytrace=False)
    if proc.returncode != 0:
        pytest.fail(f"chromium exited {proc.returncode}: {args}\n{proc.stderr[-3000:]}", pytrace=False)
    return proc


def render_dom(html_path: str | Path, width: int | None = None) -> str:
    """The DOM of ``html_path`` as Chromium serialises it after the page loaded and its scripts ran (laid out in a
    window ``width`` pixels wide when given)."""
    url = Path(html_path).resolve().as_uri()
    size = [f"--window-size={width},900"] if width else []
    dom = _run(["--dump-dom", "--virtual-time-budget=10000", *size, url]).stdout
    assert "<body" in dom, f"chromium printed no DOM for {url}"
    return dom


def screenshot(html_path: str | Path, png_path: str | Path, size: tuple[int, int] = (1200, 1600)) -> Path:
    """A PNG screenshot of ``html_path`` rendered at ``size`` (width, height)."""
    out = Path(png_path).resolve()
    _run([f"--screenshot={out}", f"--window-size={size[0]},{size[1]}", "--virtual-time-budget=10000",
          Path(html_path).resolve().as_uri()])
    assert out.is_file() and out.stat().st_size > 0, f"chromium wrote no screenshot to {out}"
    return out


def assert_not_blank(png_path: str | Path, min_colours: int = 8) -> None:
    """Fail when the screenshot is (nearly) one colour, i.e. nothing was painted."""
    from PIL import Image

    with Image.open(png_path) as im:
        rgb = im.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 16)
        bbox = Image.eval(rgb, lambda v: 255 - v).getbbox()  # box of everything not pure white
    n = len(colours) if colours is not None else 1 << 16
    assert n >= min_colours, f"screenshot {png_path} has only {n} colours: blank page?"
    assert bbox is not None, f"screenshot {png_path} is all white"


def body_counts(dom: str) -> dict[str, int]:
    """The ``data-*`` counts that report.py's load script puts on ``<body>``; missing ones are absent."""
    body = re.search(r"<body\b([^>]*)>", dom)
    assert body, "no <body> in the rendered DOM"
    return {k: int(v) for k, v in re.findall(r'data-(images-loaded|images-total|tables)="(\d+)"', body.group(1))}


def layout(dom: str) -> dict[str, int]:
    """The viewport width, the page's horizontal overflow and the right edge of its widest table (pixels), as the
    report's load script measured them."""
    body = re.search(r"<body\b([^>]*)>", dom)
    assert body, "no <body> in the rendered DOM"
    return {k: int(v) for k, v in re.findall(r'data-(viewport|overflow|table-right)="(\d+)"', body.group(1))}


def with_probe(html_path: str | Path, out_path: str | Path) -> Path:
    """A copy of ``html_path`` that carries report.py's load script (older reports were written without it)."""
    from rankme.reporting.html import RENDER_PROBE_JS as _RENDER_PROBE_JS

    text = Path(html_path).read_text(encoding="utf-8")
    if _RENDER_PROBE_JS not in text:
        text = text.replace("</head>", f"<script>{_RENDER_PROBE_JS}</script></head>", 1)
    out = Path(out_path)
    out.write_text(text, encoding="utf-8")
    return out


# After load, for every table cell: each word (a run of letters and digits, a decimal number kept whole) whose
# characters sit on more than one line, and for every body row: its cells' text and the computed font weight and
# background colour of its first cell. Written as JSON on <body> (data-broken-words, data-rows).
_TEXT_PROBE_JS = (
    "addEventListener('load',function(){var bad=[],rows=[];"
    "[].forEach.call(document.querySelectorAll('td,th'),function(cell){"
    "var w=document.createTreeWalker(cell,NodeFilter.SHOW_TEXT),n;while((n=w.nextNode())){"
    "var re=/[\\p{L}\\p{N}]+(?:[.,]\\p{N}+)*/gu,m;while((m=re.exec(n.data))){var r=document.createRange();"
    "r.setStart(n,m.index);r.setEnd(n,m.index+m[0].length);var tops={};"
    "[].forEach.call(r.getClientRects(),function(q){if(q.width>0)tops[Math.round(q.top)]=1});"
    "if(Object.keys(tops).length>1)bad.push(m[0]+' in '+JSON.stringify(cell.textContent))}}});"
    "[].forEach.call(document.querySelectorAll('tbody tr'),function(tr){var s=getComputedStyle(tr.cells[0]);"
    "rows.push({cells:[].map.call(tr.cells,function(c){return c.textContent}),weight:parseInt(s.fontWeight),"
    "background:s.backgroundColor})});"
    "document.body.setAttribute('data-broken-words',JSON.stringify(bad));"
    "document.body.setAttribute('data-rows',JSON.stringify(rows))})"
)


def text_layout(html_path: str | Path, out_dir: str | Path, width: int = 1280) -> tuple[list[str], list[dict]]:
    """Render ``html_path`` in a window ``width`` px wide: (words of table cells broken across two lines, each
    body row as ``{"cells", "weight", "background"}`` with its first cell's computed font weight and colour)."""
    import html as _html
    import json

    text = Path(html_path).read_text(encoding="utf-8")
    page = Path(out_dir) / f"probed-{Path(html_path).name}"
    page.write_text(text.replace("</head>", f"<script>{_TEXT_PROBE_JS}</script></head>", 1), encoding="utf-8")
    body = re.search(r"<body\b([^>]*)>", render_dom(page, width=width))
    assert body, "no <body> in the rendered DOM"
    found = {k: json.loads(_html.unescape(v)) for k, v in re.findall(r'data-(broken-words|rows)="([^"]*)"',
                                                                     body.group(1))}
    assert set(found) == {"broken-words", "rows"}, f"the probe did not run on {page}"
    return found["broken-words"], found["rows"]
