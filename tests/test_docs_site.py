"""The documentation site: docs/hooks.py (Sphinx roles -> cross-references, ``\\|`` in table code), the built site
(no raw role left on any page, the README's tables included whole in docs/score.md, the home page's code not
clipped at 1 280 px), and docs/score.md's option table against ``rankme score --help``."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
RAW_ROLE_RE = re.compile(r":(func|class|mod|meth|attr|data|exc|obj):(<code>|&lt;code&gt;|`)")


def load_hooks() -> ModuleType:
    """docs/hooks.py, imported by its path (it is not a package module)."""
    spec = importlib.util.spec_from_file_location("rankme_docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = load_hooks()

# A small made-up package: two classes with a state_dict each, a function, an alias of it in another module.
TOY = hooks.ObjectIndex([
    ("pkg", "pkg"), ("pkg.core", "pkg.core"), ("pkg.core.Acc", "pkg.core.Acc"),
    ("pkg.core.Acc.state_dict", "pkg.core.Acc.state_dict"), ("pkg.core.Acc.reset", "pkg.core.Acc.reset"),
    ("pkg.alarm", "pkg.alarm"), ("pkg.alarm.Alarm", "pkg.alarm.Alarm"),
    ("pkg.alarm.Alarm.state_dict", "pkg.alarm.Alarm.state_dict"),
    ("pkg.core.floor", "pkg.core.floor"), ("pkg.Acc", "pkg.core.Acc"), ("pkg.alarm.floor", "pkg.core.floor"),
])


def test_roles_become_autorefs_with_the_right_title() -> None:
    html = "<p>see :func:<code>floor</code> and :class:<code>~pkg.core.Acc</code> or :mod:<code>pkg.core</code></p>"
    assert hooks.convert_roles(html, TOY) == (
        '<p>see <autoref identifier="pkg.core.floor" optional><code>floor</code></autoref> and '
        '<autoref identifier="pkg.core.Acc" optional><code>Acc</code></autoref> or '
        '<autoref identifier="pkg.core" optional><code>pkg.core</code></autoref></p>')


def test_short_names_resolve_from_the_documented_object() -> None:
    page = ('<h3 id="pkg.core.Acc" class="doc doc-heading">Acc</h3><p>:meth:<code>state_dict</code></p>'
            '<h3 id="pkg.alarm.Alarm" class="doc doc-heading">Alarm</h3><p>:meth:<code>state_dict</code></p>')
    out = hooks.convert_roles(page, TOY)
    assert out.index('identifier="pkg.core.Acc.state_dict"') < out.index('identifier="pkg.alarm.Alarm.state_dict"')
    assert ":meth:" not in out


def test_ambiguous_unknown_and_aliased_names() -> None:
    # state_dict outside any class is ambiguous; DeprecationWarning is not the package's: both plain <code>
    html = ":meth:<code>state_dict</code> :class:<code>DeprecationWarning</code> :func:<code>()</code>"
    assert hooks.convert_roles(html, TOY) == "<code>state_dict</code> <code>DeprecationWarning</code> :func:<code>()</code>"
    assert TOY.resolve("pkg.Acc.reset") == "pkg.core.Acc.reset"  # a member named through an alias
    assert TOY.resolve("floor", "pkg.alarm") == "pkg.core.floor"  # an import of the module in context
    assert TOY.resolve("pkg.Acc.nothing") is None


def test_table_pipes_unescaped_in_code_only() -> None:
    html = r"<td>a <code>;</code>/<code>\|</code> b \| c</td><p><code>a\|b</code></p>"
    assert hooks.unescape_table_pipes(html) == r"<td>a <code>;</code>/<code>|</code> b \| c</td><p><code>a\|b</code></p>"


def test_the_real_index() -> None:
    pytest.importorskip("griffe")
    index = hooks.ObjectIndex(hooks.griffe_paths("rankme", [ROOT / "src"]))
    assert index.resolve("gram_floor") == "rankme.core.numerics.gram_floor"
    assert index.resolve("rankme.monitor.CollapseAlarm.state_dict") == "rankme.monitor.alarm.CollapseAlarm.state_dict"
    assert index.resolve("state_dict") is None  # several classes have one
    assert index.resolve("state_dict", "rankme.core.spectrum.SpectrumAccumulator.reset") == \
        "rankme.core.spectrum.SpectrumAccumulator.state_dict"


def test_score_page_lists_every_option() -> None:
    from rankme.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    score = sub.choices["score"]  # type: ignore[index]
    flags = {s for a in score._actions for s in a.option_strings if s.startswith("--") and s != "--help"}
    page = (ROOT / "docs" / "score.md").read_text(encoding="utf-8")
    table = page[page.index("## Options"):page.index("## Exit status")]
    assert flags and not {f for f in flags if f"`{f}" not in table}, "options of rankme score missing from score.md"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built --strict into a temporary folder (about 5-10 s)."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    pytest.importorskip("pymdownx.snippets")
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def test_no_raw_role_on_any_page(site: Path) -> None:
    pages = [p for p in site.rglob("*") if p.suffix in {".html", ".json"}]
    assert len(pages) > 20
    raw = {str(p.relative_to(site)): RAW_ROLE_RE.findall(p.read_text(encoding="utf-8")) for p in pages}
    assert not {k: v for k, v in raw.items() if v}
    api = "".join(p.read_text(encoding="utf-8") for p in (site / "api").rglob("*.html"))
    assert len(re.findall(r'<a class="autorefs autorefs-internal"[^>]*><code>', api)) > 150
    assert 'href="../core/#rankme.core.numerics.gram_floor"><code>gram_floor</code></a>' in api


def _table_rows(section: str) -> int:
    return sum(1 for line in section.splitlines() if line.startswith("|")) - 2  # less the header and rule


def test_score_page_includes_the_readme_tables_whole(site: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    page = (site / "score" / "index.html").read_text(encoding="utf-8")
    assert "--8<--" not in page
    tables = {re.search(r"<th>([^<]*)</th>", t).group(1): t.count("<tr>") - 1  # type: ignore[union-attr]
              for t in re.findall(r"<table>.*?</table>", page, re.DOTALL)}
    for name, header in (("bad-input", "input"), ("exit-status", "status")):
        section = readme.split(f"<!-- --8<-- [start:{name}] -->")[1].split(f"<!-- --8<-- [end:{name}] -->")[0]
        assert tables[header] == _table_rows(section) > 3
    assert "Formats: <code>.npy</code>" in page
    assert r"<code>\|</code>" not in page and "<code>|</code>" in page


def test_notebook_page_shows_the_rendered_selection(site: Path) -> None:
    page = (site / "notebook" / "index.html").read_text(encoding="utf-8")
    assert '<div class="notebook-output">\n<div class=\'rankme-select\'>' in page
    assert "--8<--" not in page and 'class="rankme-table"' in page


def test_home_page_code_is_not_clipped(site: Path) -> None:
    from browser import render_dom

    # The page itself, plus a script that lists the code blocks wider than their box once laid out.
    probe = site / "index-clip-probe.html"
    script = ("<script>addEventListener('load', () => { const bad = [...document.querySelectorAll('pre > code')]"
              ".filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.textContent.slice(0, 40));"
              " document.body.setAttribute('data-clipped', JSON.stringify(bad)); });</script></body>")
    probe.write_text((site / "index.html").read_text(encoding="utf-8").replace("</body>", script), encoding="utf-8")
    dom = render_dom(probe, width=1280)
    m = re.search(r'data-clipped="([^"]*)"', dom)
    assert m is not None, "the probe script did not run"
    assert m.group(1) == "[]", f"code clipped at 1280 px: {m.group(1)}"
    assert dom.count("<pre") >= 3
