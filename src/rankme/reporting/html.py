"""A self-contained HTML page: headings, paragraphs, markdown tables rendered as HTML, embedded PNG figures."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from pathlib import Path

__all__ = ["RENDER_PROBE_JS", "markdown_table_html", "write_report"]


def _inline(text: str) -> str:
    """Escape, then the inline markups the reports use: **bold**, *italics* and `code`.

    Examples:
        >>> _inline("**RankMe**: *edge* (a * b) `x*y`")
        '<strong>RankMe</strong>: <em>edge</em> (a * b) <code>x*y</code>'
    """
    out = html.escape(text)
    code: list[str] = []

    def stash(m: re.Match[str]) -> str:
        code.append(f"<code>{m.group(1)}</code>")
        return f"\x00{len(code) - 1}\x00"

    out = re.sub(r"`(.+?)`", stash, out)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"(?<![*\w])\*(?=[^\s*])([^*]*?[^\s*])\*(?![*\w])", r"<em>\1</em>", out)
    return re.sub("\x00(\\d+)\x00", lambda m: code[int(m.group(1))], out)


_BREAK_AFTER = re.compile(r"([/_=:]|\.(?=\D))(?=.)")


def _cell(text: str) -> str:
    """A table cell's text, escaped; long identifiers get line-break opportunities (``<wbr>``) after ``/ _ = :``
    and after a ``.`` not followed by a digit, so a narrow column wraps at those and never inside a word or a number.

    Examples:
        >>> _cell("temperature=0.05"), _cell("0.model.encoder.layer.5"), _cell("a<b")
        ('temperature=<wbr>0.05', '0.<wbr>model.<wbr>encoder.<wbr>layer.5', 'a&lt;b')
    """
    words = re.split(r"(\s+)", text)
    return "".join(html.escape(_BREAK_AFTER.sub("\\1\x00", w) if len(w) > 12 else w).replace("\x00", "<wbr>")
                   for w in words)


def _paragraph(chunk: str) -> str:
    lines = [ln for ln in chunk.strip().splitlines() if ln.strip()]
    if all(ln.lstrip().startswith("- ") for ln in lines):
        return "<ul>" + "".join(f"<li>{_inline(ln.lstrip()[2:])}</li>" for ln in lines) + "</ul>"
    return f"<p>{_inline(chunk)}</p>"


# A table with a column headed "pick" highlights the rows picked without labels: those whose pick cell names
# anything but these (the label oracle and the reference output are shown, not picked).
_NOT_PICKS = frozenset({"", "reference", "oracle", "label oracle"})


def _is_pick(cell: str) -> bool:
    return any(p.strip() not in _NOT_PICKS for p in cell.split(","))


def markdown_table_html(md: str) -> str:
    r"""A markdown table as an HTML table (rows picked without labels highlighted when a ``pick`` column names them).

    Examples:
        >>> markdown_table_html("| a | pick |\n|---|---|\n| 1 | keep |").count("<tr")
        2
    """
    rows = [ln for ln in md.splitlines() if ln.startswith("|") and not set(ln) <= set("|-: ")]
    if not rows:
        return f"<p>{html.escape(md)}</p>"
    cells = [[c.strip() for c in r.strip("|").split("|")] for r in rows]
    head = "".join(f"<th>{_cell(c)}</th>" for c in cells[0])
    pick = cells[0].index("pick") if "pick" in cells[0] else None
    body = "".join(("<tr class=\"pick\">" if pick is not None and pick < len(r) and _is_pick(r[pick]) else "<tr>")
                   + "".join(f"<td>{_cell(c)}</td>" for c in r) + "</tr>" for r in cells[1:])
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
        parts.extend(markdown_table_html(chunk) if chunk.lstrip().startswith("|") else _paragraph(chunk)
                     for chunk in body.split("\n\n") if chunk.strip())
    for caption, png in images:
        data = base64.b64encode(Path(png).read_bytes()).decode()
        parts.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222;"
             "line-height:1.45}table{border-collapse:collapse;margin:1em 0;max-width:100%;font-size:12.5px}"
             "td,th{border:1px solid #bbb;padding:3px 6px;text-align:right}"
             "td:nth-child(2),th:nth-child(2){text-align:left}th{background:#eee}img{max-width:100%}"
             "tr.pick td{font-weight:bold;background:#ffe9a8}"
             "p{max-width:75em}")
    out = Path(path)
    out.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                   f"<style>{style}</style><script>{RENDER_PROBE_JS}</script></head>"
                   f"<body>{''.join(parts)}</body></html>", encoding="utf-8")
    return out
