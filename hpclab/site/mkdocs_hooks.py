"""MkDocs hooks (``hooks:`` in the generated mkdocs.yml): hpclab's pages are HTML, so
their body bypasses Markdown, and their table of contents comes from the front matter.

Markdown would interpret user text that is already escaped HTML (backticks, ``{: }``
attribute lists, ``[x](javascript:...)``); bypassing it also keeps a 10,000-row table
from being parsed cell by cell.
"""

from __future__ import annotations

from typing import Any

from hpclab.site.page import MARKER

_BODIES: dict[int, str] = {}


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if not page.meta.get(MARKER):
        return markdown
    _BODIES[id(page)] = markdown
    return ""  # Markdown renders nothing; on_page_content puts the HTML back


def on_page_content(html: str, page: Any, **kwargs: Any) -> str:
    body = _BODIES.pop(id(page), None)
    if body is None:
        return html
    from mkdocs.structure.toc import get_toc

    tokens: list[dict[str, Any]] = []
    for level, anchor, title in page.meta.get("hpclab_toc") or []:
        token = {"level": level, "id": anchor, "name": title, "children": []}
        if level > 2 and tokens:
            tokens[-1]["children"].append(token)
        else:
            tokens.append(token)
    page.toc = get_toc(tokens)  # type: ignore[arg-type]
    return body
