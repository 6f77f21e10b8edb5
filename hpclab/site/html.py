"""The one way user text reaches a page: :class:`Html`, MarkupSafe's ``Markup`` with
the site's escaping rules. Every piece of a page (tables, badges, numbers, links) is an
``Html``; a plain ``str`` put into one (``Html.format``, ``join``, ``+``) is escaped, so
text and markup are different types and a name cannot become markup by accident.

Pages are HTML from top to bottom: nothing generated here goes through Markdown (a
backtick in a metric name would close a code span, ``{: onclick=... }`` would become an
attribute). MkDocs gets each page as a raw block that its hook passes through untouched
(:mod:`hpclab.site.mkdocs_hooks`).

Escaping also makes invisible characters visible: Unicode bidirectional controls (the
"Trojan Source" characters, U+202A-U+202E, U+2066-U+2069, ...) in a run name could make
it read as another run's; they show as ``⟨U+202E⟩``. Links go through :func:`safe_href`:
only ``http(s):``, ``mailto:`` and relative targets.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import markupsafe

from hpclab.site.layout import run_href

# Bidi controls and other zero-width format characters that reorder or hide text.
_INVISIBLE_RE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\u061c\ufeff]")
_URL_JUNK_RE = re.compile(r"[\x00-\x20\x7f]+")  # browsers drop these inside a scheme
_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
_LINKIFY_RE = re.compile(r"\b(?:https?://|mailto:)[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")


def visible(text: str) -> str:
    """``text`` with bidi controls and zero-width characters shown as ``⟨U+202E⟩``: for
    text that reaches a reader without HTML escaping (chart labels, SVG)."""
    return _INVISIBLE_RE.sub(lambda m: f"⟨U+{ord(m.group()):04X}⟩", text)


class Html(markupsafe.Markup):
    """Markup that is safe to put into a page. ``Html("<b>{}</b>").format(name)``
    escapes ``name``; so do ``join`` and ``+`` for anything that is not ``Html``."""

    __slots__ = ()

    @classmethod
    def escape(cls, s: Any) -> Html:
        if hasattr(s, "__html__"):
            return cls(s.__html__())
        return cls(markupsafe.escape(visible("" if s is None else str(s))))


def e(value: Any) -> Html:
    """``value`` as text in a page (None is empty)."""
    return Html.escape(value)


def h(template: str, *args: Any, **kwargs: Any) -> Html:
    """``template`` (markup written here, never user text) with its ``{}`` fields filled
    in escaped: ``h('<a href="{}">{}</a>', href, label)``."""
    return Html(template).format(*args, **kwargs)


def join(parts: Iterable[Any], sep: str = "") -> Html:
    """The parts one after another; any that is not ``Html`` is escaped."""
    return Html(sep).join(parts)


def safe_href(url: Any) -> str:
    """``url`` if it is ``http(s):``, ``mailto:`` or relative, else ``"#"``. Control
    characters and spaces are dropped first, as a browser drops them (``java\\tscript:``
    is ``javascript:``). The result still needs escaping as an attribute value."""
    text = "" if url is None else str(url).strip()
    probe = _URL_JUNK_RE.sub("", text)
    m = _SCHEME_RE.match(probe)
    if m and m.group(1).lower() not in SAFE_SCHEMES:
        return "#"
    if probe.startswith(("//", "\\\\", "/\\", "\\/")):  # scheme-relative: another host
        return "#"
    return text


def link(href: Any, label: Any, *, cls: str = "") -> Html:
    attrs = h(' class="{}"', cls) if cls else Html("")
    return h('<a href="{}"{}>{}</a>', safe_href(href), attrs, label)


def text_block(text: Any, *, cls: str = "hl-text") -> Html:
    """User prose (a description, a note) as escaped text that keeps its line breaks;
    ``http(s)://`` and ``mailto:`` addresses become links, nothing else is interpreted."""
    raw = "" if text is None else str(text)
    parts: list[Any] = []
    pos = 0
    for m in _LINKIFY_RE.finditer(raw):
        parts += [raw[pos : m.start()], link(m.group(), m.group())]
        pos = m.end()
    parts.append(raw[pos:])
    return h('<p class="{}">{}</p>', cls, join(parts))


MISSING = Html('<span class="hl-missing" title="missing (NaN or not logged)">–</span>')


def num(value: Any, digits: int = 4) -> Html:
    """A number for a table cell; missing, NaN and inf show as a dash."""
    if value is None:
        return MISSING
    try:
        f = float(value)
    except (TypeError, ValueError):
        return e(value)
    if math.isnan(f) or math.isinf(f):
        return MISSING
    if f == int(f) and abs(f) < 1e12 and isinstance(value, int):
        return Html(str(int(f)))
    return Html(f"{f:.{digits}g}")


def badge(status: Any) -> Html:
    s = str(status or "unknown")
    return h('<span class="hl-badge hl-s-{}">{}</span>', css_token(s.lower()), s)


def css_token(text: str) -> str:
    """A class-name-safe form of ``text`` (a status is user-reachable through run.json)."""
    return re.sub(r"[^a-z0-9_-]", "-", text)[:40]


def run_link(project: str, run_id: str, root: str, label: Any = None) -> Html:
    return link(run_href(project, run_id, root), label or run_id, cls="hl-run")


def page_href(path: str) -> str:
    """A relative link to a generated page (``reports/p/x.md`` -> its ``.html``)."""
    base = path[: -len(".md")] + ".html" if path.endswith(".md") else path
    return quote(base, safe="/._-~")


def code(value: Any) -> Html:
    return h("<code>{}</code>", value)


def when(value: Any) -> Html:
    """A timestamp as ``YYYY-MM-DD HH:MM`` (UTC), with the full value as a tooltip."""
    if value is None:
        return MISSING
    text = (
        value.isoformat(sep=" ", timespec="seconds") if isinstance(value, datetime) else str(value)
    )
    return h('<time title="{} UTC">{}</time>', text, text[:16])


def duration(seconds: Any) -> Html:
    if seconds is None:
        return MISSING
    s = float(seconds)
    if s != s:
        return MISSING
    if s < 60:
        return Html(f"{s:.0f} s")
    if s < 3600:
        return Html(f"{s / 60:.1f} min")
    return Html(f"{s / 3600:.1f} h")


def table(
    headers: Sequence[Any],
    body: Iterable[Sequence[Any]],
    *,
    cls: str = "",
    sort: Sequence[str] | None = None,
) -> Html:
    """An HTML table; headers and cells are escaped unless they are ``Html``. ``sort``
    gives each column's sort type (``text``, ``num``, ``none``) for the tables' script."""
    head = join(
        h('<th data-sort="{}">{}</th>', sort[i], x) if sort else h("<th>{}</th>", x)
        for i, x in enumerate(headers)
    )
    rows = join((h("<tr>{}</tr>", join(h("<td>{}</td>", c) for c in r)) for r in body), sep="\n")
    return h(
        '<div class="hl-table-wrap"><table class="hl-table {}">'
        "<thead><tr>{}</tr></thead>\n<tbody>\n{}\n</tbody></table></div>",
        cls,
        head,
        rows,
    )


def empty(message: Any) -> Html:
    return h('<p class="hl-empty">{}</p>', message)


def heading(level: int, text: Any, anchor: str = "", *, cls: str = "") -> Html:
    attrs = join([h(' id="{}"', anchor) if anchor else "", h(' class="{}"', cls) if cls else ""])
    return h("<h{}{}>{}</h{}>", level, attrs, text, level)


def facts(items: Iterable[Any]) -> Html:
    """A line of facts separated by dots."""
    return h('<p class="hl-facts">{}</p>', join(items, " · "))


def json_script(doc: Any, cls: str = "") -> Html:
    """``doc`` as JSON in a ``<script type="application/json">`` the page's script reads.
    ``<``, ``>`` and ``&`` are written as ``\\u003c``... so no text in it can end the
    element or open a comment that swallows the rest of the page."""
    import json

    body = json.dumps(doc, separators=(",", ":"))
    body = body.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    attrs = h(' class="{}"', cls) if cls else Html("")
    return h('<script type="application/json"{}>{}</script>', attrs, Html(body))


def status_vocabulary() -> Html:
    """The run status vocabulary (:mod:`hpclab.store.record`) as JSON for hpclab.js, which
    reads it instead of naming statuses itself. Every page carries it (:class:`Page`).
    Lists keep the lifecycle order of ``all``; colours are hpclab.css's ``--hl-<status>``."""
    from hpclab.store.record import (
        ACTIVE_STATUSES,
        ENDED_STATUSES,
        FAILED_STATUSES,
        STATUSES,
        WAITING_STATUSES,
    )

    def ordered(group: frozenset[str]) -> list[str]:
        return [s for s in STATUSES if s in group]

    doc = {
        "all": list(STATUSES),
        "active": ordered(ACTIVE_STATUSES),
        "waiting": ordered(WAITING_STATUSES),
        "ended": ordered(ENDED_STATUSES),
        "failed": ordered(FAILED_STATUSES),
    }
    return json_script(doc, "hl-statuses")


STATISTICS_PAGE = "statistics.md"  # docs/statistics.md, published with every site


def stats_link(root: str, anchor: str = "", label: str = "how this is computed") -> Html:
    """A link to the site's copy of docs/statistics.md (at ``anchor``: seed-groups,
    comparisons, evidence, pareto, ...), put beside every number the page defines."""
    href = root + page_href(STATISTICS_PAGE) + (f"#{anchor}" if anchor else "")
    return link(href, label, cls="hl-stats-link")
