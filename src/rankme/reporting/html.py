"""A self-contained HTML page: headings, paragraphs, markdown tables rendered as HTML, embedded PNG figures."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from pathlib import Path

__all__ = ["RENDER_PROBE_JS", "write_report"]


def _inline(text: str) -> str:
    """Escape, then the two inline markups the reports use: **bold** and `code`."""
    out = html.escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def _paragraph(chunk: str) -> str:
    lines = [ln for ln in chunk.strip().splitlines() if ln.strip()]
    if all(ln.lstrip().startswith("- ") for ln in lines):
        return "<ul>" + "".join(f"<li>{_inline(ln.lstrip()[2:])}</li>" for ln in lines) + "</ul>"
    return f"<p>{_inline(chunk)}</p>"


def _md_table_to_html(md: str) -> str:
    rows = [ln for ln in md.splitlines() if ln.startswith("|") and not set(ln) <= set("|-: ")]
    if not rows:
        return f"<p>{html.escape(md)}</p>"
    cells = [[c.strip() for c in r.strip("|").split("|")] for r in rows]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cells[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in cells[1:])
    return f'<table class="rankme-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


# After the page has loaded, record on <body> what actually rendered, so that a headless-browser test can
# read it back from the DOM: data-images-loaded / data-images-total (an <img> counts as loaded when it is
# complete and has decoded to a non-zero width) and data-tables (tables with at least one body row).
RENDER_PROBE_JS = (
    "addEventListener('load',function(){var b=document.body,im=[].slice.call(document.images);"
    "b.setAttribute('data-images-total',im.length);"
    "b.setAttribute('data-images-loaded',im.filter(function(i){return i.complete&&i.naturalWidth>0}).length);"
    "b.setAttribute('data-tables',[].filter.call(document.querySelectorAll('table'),"
    "function(t){return t.querySelector('tbody tr')}).length);"
    "b.setAttribute('data-viewport',innerWidth);"
    "b.setAttribute('data-overflow',Math.max(0,document.documentElement.scrollWidth-innerWidth));"
    "var w=[].map.call(document.querySelectorAll('table'),function(t){return t.getBoundingClientRect().right});"
    "b.setAttribute('data-table-right',Math.ceil(Math.max.apply(null,w.concat([0]))))})"
)


def write_report(path: str | Path, title: str, sections: Sequence[tuple[str, str]],
                 images: Sequence[tuple[str, Path]]) -> Path:
    r"""Write one HTML file: ``sections`` are (heading, markdown table or text); PNGs are embedded as base64.

    The page needs nothing outside itself; a small inline script marks on ``<body>`` how many images and
    tables rendered (``data-images-loaded``, ``data-images-total``, ``data-tables``), the viewport width, any
    horizontal overflow of the page and the right edge of the widest table (``data-viewport``, ``data-overflow``,
    ``data-table-right``) once it has loaded.

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     page = write_report(Path(d) / "r.html", "t", [("Scores", "| a | b |\n|---|---|\n| 1 | 2 |")], [])
        ...     text = page.read_text(encoding="utf-8")
        >>> '<table class="rankme-table">' in text and "<td>2</td>" in text and "data-images-loaded" in text
        True
    """
    parts = [f"<h1>{html.escape(title)}</h1>"]
    for heading, body in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.extend(_md_table_to_html(chunk) if chunk.lstrip().startswith("|") else _paragraph(chunk)
                     for chunk in body.split("\n\n") if chunk.strip())
    for caption, png in images:
        data = base64.b64encode(Path(png).read_bytes()).decode()
        parts.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222;"
             "line-height:1.45}table{border-collapse:collapse;margin:1em 0;max-width:100%;font-size:12.5px}"
             "td,th{border:1px solid #bbb;padding:3px 6px;text-align:right;overflow-wrap:anywhere}"
             "td:nth-child(2),th:nth-child(2){text-align:left}th{background:#eee}img{max-width:100%}"
             "p{max-width:75em}")
    out = Path(path)
    out.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                   f"<style>{style}</style><script>{RENDER_PROBE_JS}</script></head>"
                   f"<body>{''.join(parts)}</body></html>", encoding="utf-8")
    return out
