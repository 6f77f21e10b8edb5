"""The site's one escaping path (:mod:`hpclab.site.html`): text and markup are different
types, links are filtered by scheme, JSON in a page cannot end its script element, and no
module of the site builds HTML with an f-string."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

import hpclab.site
from hpclab.site.html import Html, e, h, join, json_script, link, safe_href, table, text_block
from hpclab.site.page import Page, split_source

PAYLOAD = '<img src=x onerror="alert(1)">'


def test_text_is_escaped_wherever_it_meets_markup() -> None:
    esc = "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;"
    assert str(e(PAYLOAD)) == esc
    assert str(h("<b>{}</b>", PAYLOAD)) == f"<b>{esc}</b>"
    assert str(join(["<i>", Html("<br>")])) == "&lt;i&gt;<br>"
    assert str(Html("<p>") + PAYLOAD) == f"<p>{esc}"
    assert str(h("<b>{}</b>", Html("<i>ok</i>"))) == "<b><i>ok</i></b>"  # markup stays markup
    cell = str(table([PAYLOAD], [[PAYLOAD, Html("<code>x</code>")]]))
    assert "<img" not in cell and cell.count(esc) == 2 and "<code>x</code>" in cell
    assert str(e(None)) == ""


def test_bidi_controls_and_invisible_characters_are_made_visible() -> None:
    assert str(e("run\u202egnp.exe")) == "run⟨U+202E⟩gnp.exe"
    assert str(h("{}", "a\u2066b\u200bc")) == "a⟨U+2066⟩b⟨U+200B⟩c"
    assert str(e("نموذج")) == "نموذج"  # right-to-left text itself is left alone


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        " JaVaScRiPt:alert(1)",
        "java\tscript:alert(1)",
        "java\nscript:alert(1)",
        "\x01javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
        "//evil.example/x",
        "\\\\evil.example\\x",
    ],
)
def test_unsafe_link_targets_become_a_dead_link(url: str) -> None:
    assert safe_href(url) == "#"
    assert 'href="#"' in str(link(url, "x"))


@pytest.mark.parametrize(
    "url",
    ["https://example.org/a?b=1&c=2", "http://x", "mailto:a@b.org", "runs/run.html?p=a&id=b",
     "../x.html", "#anchor", "/abs/path"],
)  # fmt: skip
def test_safe_link_targets_are_kept(url: str) -> None:
    assert safe_href(url) == url
    assert f'href="{e(url)}"' in str(link(url, "x"))


def test_prose_keeps_its_text_and_links_only_web_addresses() -> None:
    out = str(text_block("[x](javascript:alert(1)) see https://example.org/a?b=1&c=2.\nnext"))
    assert out.count("<a ") == 1
    assert '<a href="https://example.org/a?b=1&amp;c=2">' in out  # the dot ends the sentence
    assert "[x](javascript:alert(1))" in out and "\nnext" in out


def test_json_in_a_page_cannot_end_its_script_element() -> None:
    doc = {"name": "</script><script>alert(1)</script><!--", "amp": "a&b"}
    out = str(json_script(doc, "hl-x"))
    inner = re.match(r'<script type="application/json" class="hl-x">(.*)</script>$', out, re.S)
    assert inner is not None
    assert "<" not in inner.group(1) and ">" not in inner.group(1)
    assert json.loads(inner.group(1)) == doc


def test_a_page_takes_markup_only() -> None:
    page = Page("Sweep <x>")
    with pytest.raises(TypeError, match="must be Html"):
        page.add("<p>forgot to escape</p>")  # type: ignore[arg-type]
    page.heading(2, "a {: onclick=x }").add(h("<p>{}</p>", PAYLOAD))
    meta, body = split_source(page.source())
    assert meta["title"] == "Sweep &lt;x&gt;"  # the theme prints titles as HTML
    assert meta["hpclab_toc"] == [[2, "a-onclick-x", "a {: onclick=x }"]]
    assert "<img" not in body and '<h2 id="a-onclick-x">a {: onclick=x }</h2>' in body


def _fstrings_with_markup(path: Path) -> list[int]:
    """Lines of f-strings whose literal parts contain an HTML tag."""
    tag = re.compile(r"<[a-zA-Z/!]")
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.JoinedStr):
            text = "".join(
                v.value
                for v in node.values
                if isinstance(v, ast.Constant) and isinstance(v.value, str)
            )
            if tag.search(text):
                lines.append(node.lineno)
    return lines


def test_no_site_module_builds_html_with_an_fstring() -> None:
    """An f-string does not escape: markup is built with ``h()``/``Html.format`` only."""
    site = Path(hpclab.site.__file__).parent
    found = {p.name: _fstrings_with_markup(p) for p in sorted(site.glob("*.py"))}
    assert {name: lines for name, lines in found.items() if lines} == {}
