"""MkDocs hook: the Sphinx roles in rankme's docstrings become cross-references in the API pages.

The docstrings write ``:func:`gram_floor```, ``:class:`~rankme.core.spectrum.Spectrum``` and so on (Sphinx roles);
mkdocstrings renders them as ``:func:<code>gram_floor</code>``. :func:`convert_roles` turns each one into a
mkdocs-autorefs reference (``<autoref identifier="rankme.core.numerics.gram_floor" optional>``), which autorefs
resolves to a link once every page is rendered (its ``on_env``); an identifier no page renders (a private helper)
becomes plain text there, as ``optional`` asks. Names are resolved as Python would look them up from where the
docstring sits: the documented object, its parents, then rankme's objects whose dotted path ends with the name
(:class:`ObjectIndex`, built statically by griffe). A name that is ambiguous or not rankme's (``DeprecationWarning``,
``scipy.stats.spearmanr``) stays plain ``<code>``. A ``~`` shows only the last component, as in Sphinx.

It also reads ``\\|`` in the code spans of table cells as ``|``, as GitHub does (:func:`unescape_table_pipes`).
"""

from __future__ import annotations

import bisect
import html
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

ROLES = ("func", "class", "mod", "meth", "attr", "data", "exc", "obj")

# What mkdocstrings makes of :role:`target` (the backticks became <code>).
ROLE_RE = re.compile(r":(?P<role>" + "|".join(ROLES) + r"):<code>(?P<tilde>~?)(?P<target>[A-Za-z_][\w.]*)"
                     r"(?P<call>\(\))?</code>")
# mkdocstrings' headings carry the documented object's path as their id: the context of the text under them.
HEADING_RE = re.compile(r"<h[1-6]\b(?=[^>]*\bclass=\"[^\"]*\bdoc-heading\b)[^>]*\bid=\"(?P<path>[\w.]+)\"")
CELL_RE = re.compile(r"<t(?P<tag>[dh])(?P<attrs>[^>]*)>(?P<body>.*?)</t(?P=tag)>", re.DOTALL)
CODE_RE = re.compile(r"<code>[^<]*</code>")


class ObjectIndex:
    """rankme's objects by dotted path: every path (aliases included) to the object's canonical path, and every
    dotted suffix of a canonical path (``gram_floor``, ``numerics.gram_floor``) to the canonical paths it ends.

    Args:
        paths: pairs ``(path, canonical path)``; a canonical object is listed with itself.
    """

    def __init__(self, paths: Iterable[tuple[str, str]]) -> None:
        self.canonical: dict[str, str] = {}
        self.by_suffix: dict[str, set[str]] = defaultdict(set)
        for path, canonical in paths:
            self.canonical.setdefault(path, canonical)
            parts = canonical.split(".")
            for i in range(len(parts)):
                self.by_suffix[".".join(parts[i:])].add(canonical)

    def resolve(self, name: str, context: str | None = None) -> str | None:
        """The canonical path ``name`` refers to from the docstring of ``context`` (a dotted path), or None when
        it is unknown or ambiguous.

        Looked up in ``context`` and each of its parents (a method's docstring naming ``reset`` means its class's
        ``reset``; a module's names include what it imports), then as a full path, then as the one canonical
        path that ends with ``name``.
        """
        scope = context
        while scope:
            found = self.lookup(f"{scope}.{name}")
            if found is not None:
                return found
            scope = scope.rpartition(".")[0]
        found = self.lookup(name)
        if found is not None:
            return found
        matches = self.by_suffix.get(name, set())
        return next(iter(matches)) if len(matches) == 1 else None

    def lookup(self, path: str, depth: int = 0) -> str | None:
        """The canonical path of the full dotted ``path``, also through an alias in it (``rankme.monitor.
        CollapseAlarm.state_dict``: ``rankme.monitor.CollapseAlarm`` is an import of ``rankme.monitor.alarm.
        CollapseAlarm``, whose ``state_dict`` it names); None when there is no such object."""
        if path in self.canonical:
            return self.canonical[path]
        parts = path.split(".")
        for i in range(len(parts) - 1, 0, -1):
            head = ".".join(parts[:i])
            target = self.canonical.get(head)
            if target is not None and target != head and depth < 8:
                return self.lookup(".".join([target, *parts[i:]]), depth + 1)
        return None


def griffe_paths(package: str = "rankme", search_paths: Iterable[str | Path] = ("src",)) -> Iterator[tuple[str, str]]:
    """Every object of ``package`` found statically by griffe, as ``(path, canonical path)``; an alias whose
    target lies outside the package (``np``, ``torch``) or cannot be resolved is left out."""
    import griffe

    root = griffe.load(package, search_paths=[str(p) for p in search_paths])
    prefix = package + "."
    seen: set[str] = set()

    def walk(obj: Any) -> Iterator[tuple[str, str]]:
        for member in obj.members.values():
            if member.is_alias:
                target = member.target_path
                if target == package or target.startswith(prefix):
                    yield member.path, target
                continue
            yield member.path, member.path
            if member.path not in seen and (member.is_module or member.is_class):
                seen.add(member.path)
                yield from walk(member)

    yield package, package
    yield from walk(root)


def convert_roles(page_html: str, index: ObjectIndex) -> str:
    """``page_html`` with every rendered Sphinx role replaced: an ``<autoref ... optional>`` when ``index``
    resolves its target (from the object whose heading precedes it), else the target as plain ``<code>``."""
    headings = [(m.start(), m.group("path")) for m in HEADING_RE.finditer(page_html)]
    starts = [start for start, _ in headings]

    def context(pos: int) -> str | None:
        i = bisect.bisect_left(starts, pos)
        return headings[i - 1][1] if i else None

    def replace(m: re.Match[str]) -> str:
        target, call = m.group("target"), m.group("call") or ""
        title = (target.rpartition(".")[2] if m.group("tilde") else target) + call
        code = f"<code>{html.escape(title)}</code>"
        found = index.resolve(target, context(m.start()))
        if found is None:
            return code
        return f'<autoref identifier="{html.escape(found)}" optional>{code}</autoref>'

    return ROLE_RE.sub(replace, page_html)


def unescape_table_pipes(page_html: str) -> str:
    """``page_html`` with ``\\|`` in the code spans of table cells read as ``|``.

    A pipe inside a table cell is written ``\\|`` (README.md's tables: `` `;`/tab/`\\|` ``). GitHub drops the
    backslash, code span or not; Python-Markdown keeps it inside code spans, so docs/score.md, which includes the
    README's tables, would show ``\\|``."""

    def cell(m: re.Match[str]) -> str:
        body = CODE_RE.sub(lambda c: c.group(0).replace("\\|", "|"), m.group("body"))
        return f"<t{m.group('tag')}{m.group('attrs')}>{body}</t{m.group('tag')}>"

    return CELL_RE.sub(cell, page_html) if "\\|" in page_html else page_html


_INDEX: dict[str, ObjectIndex] = {}


def on_page_content(output: str, page: Any, config: Any, files: Any) -> str:
    """MkDocs event: convert the roles of every page (only the API pages have any), and read ``\\|`` in table
    cells' code as ``|``."""
    output = unescape_table_pipes(output)
    if ":<code>" not in output:
        return output
    src = str(Path(config.config_file_path).parent / "src")
    if src not in _INDEX:
        _INDEX[src] = ObjectIndex(griffe_paths("rankme", [src]))
    return convert_roles(output, _INDEX[src])
