"""A generated page: its title (text), its body (:class:`~hpclab.site.html.Html`) and
its table of contents, written as the ``.md`` file MkDocs reads.

The file is front matter plus the body as it is; :mod:`hpclab.site.mkdocs_hooks` hands
the body to the theme untouched (Markdown never sees it) and sets the table of contents
from the front matter. MkDocs' templates print titles as HTML, so they are written
escaped.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import markupsafe
import yaml

from hpclab.site.html import Html, e, heading, status_vocabulary

MARKER = "hpclab_page"  # front matter key: the body is HTML, not Markdown


@dataclass
class Page:
    """One page under construction. ``add`` takes only ``Html``: a ``str`` is an error,
    not something to escape silently, so a forgotten ``e()`` shows up in the tests."""

    title: str
    wide: bool = False
    parts: list[Html] = field(default_factory=list)
    toc: list[tuple[int, str, str]] = field(default_factory=list)
    _anchors: Counter[str] = field(default_factory=Counter)

    def add(self, *parts: Html) -> Page:
        for part in parts:
            if not isinstance(part, markupsafe.Markup):
                raise TypeError(
                    f"a page part must be Html, not {type(part).__name__}: {part!r:.80}"
                )
            self.parts.append(Html(part))
        return self

    def heading(self, level: int, text: Any, *, cls: str = "", in_toc: bool = True) -> Page:
        """A heading with an anchor; levels 2 and 3 go into the table of contents."""
        anchor = self._anchor(str(text))
        self.parts.append(heading(level, text, anchor, cls=cls))
        if in_toc and level in (2, 3):
            self.toc.append((level, anchor, str(text)))
        return self

    def _anchor(self, text: str) -> str:
        slug = re.sub(r"[^\w-]+", "-", text.lower(), flags=re.ASCII).strip("-")[:60] or "s"
        self._anchors[slug] += 1
        n = self._anchors[slug]
        return slug if n == 1 else f"{slug}-{n}"

    @property
    def body(self) -> Html:
        return Html("\n").join(self.parts)

    def source(self) -> str:
        """The ``.md`` file: front matter, then the HTML body and the status vocabulary
        hpclab.js reads (:func:`~hpclab.site.html.status_vocabulary`)."""
        meta: dict[str, Any] = {"title": str(e(self.title)), MARKER: True}
        if self.wide:
            meta["hide"] = ["navigation", "toc"]
        if self.toc:
            meta["hpclab_toc"] = [[lvl, a, str(e(t))] for lvl, a, t in self.toc]
        front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
        return f"---\n{front}---\n{self.body}\n{status_vocabulary()}\n"


def split_source(text: str) -> tuple[dict[str, Any], str]:
    """Front matter and body of a page written by :meth:`Page.source`."""
    if text.startswith("---\n"):
        head, _, body = text[4:].partition("\n---\n")
        return yaml.safe_load(head) or {}, body
    return {}, text
