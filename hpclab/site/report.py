"""``hpclab site report``: one sweep's or hypothesis's report as a standalone file.

The report page's HTML body (the same one the site shows) goes into one HTML file with the
site's CSS inlined; each chart becomes an SVG drawn by vl-convert (line charts get their
series filled in from the runs' metrics first). The HTML needs no script and no network,
and its Content-Security-Policy allows neither. A PDF is that HTML printed by headless
Chromium.
"""

from __future__ import annotations

import html as htmlmod
import json
import re
from pathlib import Path
from typing import Any

from hpclab.errors import SiteError
from hpclab.site.build import template_dir
from hpclab.site.charts import lone_flags
from hpclab.site.cost import accounting
from hpclab.site.data import SiteData, load
from hpclab.site.html import Html, empty, h, visible
from hpclab.site.registry import generate
from hpclab.site.research import hypothesis_report_path, sweep_report_path
from hpclab.site.series import run_series
from hpclab.store import Store

CHART_RE = re.compile(
    r'<div class="hl-chart"(?P<attrs>[^>]*)>'
    r'<script type="application/json">(?P<spec>.*?)</script></div>',
    re.S,
)
ATTR_RE = re.compile(r'data-(runs|metrics)="([^"]*)"')


def find_report(data: SiteData, ident: str) -> str:
    """The report page (path under docs/) of a sweep id or hypothesis id."""
    for s in data.sweeps:
        if ident in (s["sweep_id"], f"{s['project']}/{s['sweep_id']}"):
            return sweep_report_path(s["project"], s["sweep_id"])
    for hyp in data.hypotheses:
        if ident in (hyp["hypothesis_id"], f"{hyp['project']}/{hyp['hypothesis_id']}"):
            return hypothesis_report_path(hyp["project"], hyp["hypothesis_id"])
    known = [s["sweep_id"] for s in data.sweeps] + [h["hypothesis_id"] for h in data.hypotheses]
    hint = f" (known: {', '.join(known[:8])}{', ...' if len(known) > 8 else ''})" if known else ""
    raise SiteError(f"no sweep or hypothesis {ident!r} in the catalog{hint}")


PAPER = {"a4": "A4", "letter": "letter"}  # CSS @page sizes; Chromium's own default is Letter


def export(store: Store, ident: str, out: Path, *, paper: str = "a4") -> Path:
    """Write the report of ``ident`` to ``out`` (.html, or .pdf through Chromium); ``paper``
    (a4 or letter) sizes its printed pages, the PDF's and the HTML's when printed."""
    if paper not in PAPER:
        raise SiteError(f"paper {paper!r}: use one of {', '.join(PAPER)}")
    out = Path(out)
    check_out(out)  # before the catalog is read and Chromium started
    data = load(store)
    page = find_report(data, ident)
    body = generate(data, accounting(data)).pages[page].body
    doc = standalone_html(store, body, title=ident, paper=paper)
    try:
        if out.suffix.lower() == ".pdf":
            return _pdf(doc, out)
        out.write_text(doc, encoding="utf-8")
    except OSError as e:
        raise SiteError(f"{out}: cannot write the report: {e.strerror or e}") from e
    return out


def check_out(out: Path) -> None:
    """SiteError unless ``out`` can be a report file: .html or .pdf, not a directory, in
    a directory that exists (a mistyped path is not created)."""
    if out.is_dir():
        raise SiteError(f"{out}: is a directory; give a file name ending in .html or .pdf")
    if out.suffix.lower() not in (".html", ".htm", ".pdf"):
        raise SiteError(f"{out}: the report is written as .html or .pdf")
    parent = out.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "no such directory"
        raise SiteError(f"{out}: {parent}: {what}")


# A standalone report runs no script and loads nothing: styles and SVG charts are inline.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"


def standalone_html(store: Store, body: Html, *, title: str, paper: str = "a4") -> str:
    text = CHART_RE.sub(lambda m: _svg(store, m), str(body))
    text = text.replace('<p class="hl-noprint">', '<p class="hl-noprint" hidden>')
    text = re.sub(r'href="\.\./\.\./[^"]*"', 'href="#"', text)  # site links lead nowhere here
    css = (template_dir() / "assets" / "hpclab" / "hpclab.css").read_text(encoding="utf-8")
    page = h(
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="{}">'
        "<title>{}</title><style>{}</style></head>"
        '<body><main class="md-typeset">{}</main></body></html>',
        REPORT_CSP,
        title,
        Html(f"{BASE_CSS}{css}@page {{ size: {PAPER[paper]}; margin: 1.5cm; }}"),
        Html(text),
    )
    return str(page)


def _svg(store: Store, m: re.Match[str]) -> Html:
    import vl_convert

    spec: dict[str, Any] = json.loads(m.group("spec"))
    attrs = dict(ATTR_RE.findall(m.group("attrs")))
    if "runs" in attrs:
        runs = [r for r in htmlmod.unescape(attrs["runs"]).split(",") if r]
        metrics = json.loads(htmlmod.unescape(attrs.get("metrics", "null")))
        values = []
        for key in runs:
            project, run_id = key.split("/", 1)
            doc = run_series(store, project, run_id, max_points=400)
            for name, s in doc["metrics"].items():
                if metrics and name not in metrics:
                    continue
                lone = lone_flags(s["value"])
                for step, value, alone in zip(s["step"], s["value"], lone, strict=True):
                    values.append(
                        {
                            "run": run_id,
                            "metric": visible(name),
                            "key": f"{key}|{name}",
                            "step": step,
                            "value": value,
                            "lone": alone,
                        }
                    )
        if not values:
            return empty("No points logged yet.")
        spec["data"] = {"name": "series", "values": values}
    spec["width"] = 640
    svg = vl_convert.vegalite_to_svg(spec)
    return h('<figure class="hl-figure">{}</figure>', Html(svg))  # vl-convert escapes its text


def _pdf(doc: str, out: Path) -> Path:
    import tempfile

    from hpclab.site.chromium import Chromium

    with tempfile.TemporaryDirectory(prefix="hpclab-report-") as tmp:
        page_file = Path(tmp) / "report.html"
        page_file.write_text(doc, encoding="utf-8")
        with Chromium() as browser:
            page = browser.new_page()
            page.goto(page_file.as_uri())
            page.pdf(out)
    return out


BASE_CSS = """
body { font: 14px/1.5 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: #1f2328;
       margin: 0; background: #fff; }
main { max-width: 60rem; margin: 2rem auto; padding: 0 1.5rem; }
h1 { font-weight: 400; font-size: 1.9rem; } h2 { margin-top: 2rem; font-weight: 500; }
code { font-family: ui-monospace, 'DejaVu Sans Mono', monospace; font-size: 0.88em; }
pre { background: #f6f8fa; padding: 0.6em; overflow-x: auto; }
figure.hl-figure { margin: 0.5rem 0 1.5rem; }
figure.hl-figure svg { max-width: 100%; height: auto; }
"""
