"""The method page (docs/statistics.md) published with every site, the links to it, the
compare page's Pareto front of a selection and the run page's seed-group facts.

- every built site has ``statistics.html``, built from docs/statistics.md itself (one
  text: the template's ``statistics.md`` is a link to it, a copy in the wheel), in the
  navigation, with the anchors pages link to (``#seed-groups`` ... ``#pareto``);
- every ``hl-stats-link`` of the built pages (reports, hypotheses) and of the rendered run
  page resolves to ``statistics.html`` and an id that exists there;
- in headless Chromium, the compare page draws the front of the selected runs only: a
  selection whose runs are all dominated in the project has a front of its own;
- the run page says the run's seed group: label, role (sample, or reproduction of its
  sample, linked), size, and links to the group's other samples.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlparse

import numpy as np
import pytest
import yaml
from site_fixtures import make_site_store

import hpclab
from hpclab.catalog.connect import connect
from hpclab.catalog.indexer import index_store
from hpclab.catalog.stats import pareto_ranks
from hpclab.site.build import build
from hpclab.site.chromium import Chromium, find_chromium
from hpclab.site.html import STATISTICS_PAGE
from hpclab.site.serve import make_server, serve_in_thread, url_of
from hpclab.store import Store

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "statistics.md"
# the sections pages link to (MkDocs' ids of the ## headings), and the explicit #pareto
ANCHORS = [
    "seed-groups",
    "labels",
    "intervals-and-tests",
    "comparisons",
    "verdicts",
    "evidence",
    "stability",
    "pareto-fronts",
    "pareto",
]
needs_chromium = pytest.mark.skipif(
    find_chromium() is None,
    reason="Chromium is not installed (scripts/test.sh installs Debian's chromium)",
)


class _Page(HTMLParser):
    """The ids, the ``a`` hrefs (with their classes) and the text of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[tuple[str, str]] = []  # (href, class)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and "href" in a:
            self.links.append((a["href"], a.get("class", "")))


def parse(path: Path) -> _Page:
    p = _Page()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def resolve(html_root: Path, page: Path, href: str) -> tuple[Path, str]:
    """The file and fragment a relative ``href`` on ``page`` points at."""
    base = "file://" + str(page.parent) + "/"
    target = urlparse(urljoin(base, href))
    return Path(unquote(target.path)).resolve(), target.fragment


# -- the method page in a built site -------------------------------------------------------
@pytest.fixture(scope="module")
def bench_site(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """The site tests' store (two sweeps, a hypothesis, a parent and child), built."""
    store = make_site_store(tmp_path_factory.mktemp("stats") / "st ore")
    build(store)
    return store


def test_every_site_has_the_method_page_with_its_anchors(bench_site: Store) -> None:
    html = bench_site.site_dir / "html"
    page = html / "statistics.html"
    assert page.is_file()
    parsed = parse(page)
    missing = [a for a in ANCHORS if a not in parsed.ids]
    assert missing == [], f"anchors missing from statistics.html: {missing}"
    text = page.read_text(encoding="utf-8")
    # the page is the doc itself: every section heading of docs/statistics.md is in it
    headings = re.findall(r"^#{2,3} (.+)$", DOC.read_text(encoding="utf-8"), flags=re.M)
    assert len(headings) > len(ANCHORS)
    for heading in headings:
        plain = re.sub(r"`([^`]*)`", r"\1", heading)
        assert plain.replace("'", "&#39;") in text or plain in text, heading
    # the doc's own links to its sections land on ids of the built page
    fragments = set(re.findall(r"\]\(#([^)]+)\)", DOC.read_text(encoding="utf-8")))
    assert fragments and fragments - parsed.ids == set()
    # built as Markdown: code spans are code, tables are tables
    assert "<table>" in text and "<code>" in text
    # reachable without a link: in the navigation of every page
    nav = [h for h, _ in parse(html / "index.html").links if h.split("#")[0] == "statistics.html"]
    assert nav, "statistics.html is not in the site's navigation"


def test_the_source_tree_and_the_template_hold_one_text() -> None:
    """The template's statistics.md is docs/statistics.md (a link), not a copy."""
    from hpclab.site.build import statistics_text, template_dir

    linked = template_dir() / STATISTICS_PAGE
    assert linked.resolve() == DOC.resolve()
    assert statistics_text() == DOC.read_text(encoding="utf-8")


def test_every_stats_link_on_the_built_pages_reaches_its_section(bench_site: Store) -> None:
    html = (bench_site.site_dir / "html").resolve()
    ids = parse(html / "statistics.html").ids
    checked: dict[str, int] = {}
    for page in sorted(html.rglob("*.html")):
        for href, cls in parse(page).links:
            if "hl-stats-link" not in cls.split():
                continue
            target, fragment = resolve(html, page, href)
            rel = str(page.relative_to(html))
            assert target == html / "statistics.html", f"{rel}: {href} -> {target}"
            assert not fragment or fragment in ids, f"{rel}: {href}: no id {fragment!r}"
            checked[rel] = checked.get(rel, 0) + 1
    reports = [p for p in checked if p.startswith("reports/") and p != "reports/index.html"]
    assert reports, f"no report page links to the method: {sorted(checked)}"


@pytest.mark.slow
# (a wheel carries the page's text and builds it: tests/test_site.py's wheel test)


# -- the worked example of the evidence section ---------------------------------------------
def test_the_worked_evidence_example_is_what_the_code_computes() -> None:
    """docs/statistics.md's example (a 5-seed parent, a paired 5-seed child and a 3-seed
    child) through the real evidence model: the numbers the doc prints."""
    import json
    import statistics

    from hpclab.catalog.evidence import Context, Settings, evaluate
    from hpclab.catalog.groups import Member, group_runs
    from hpclab.catalog.hypotheses import Hypothesis, Target
    from hpclab.catalog.knowledge import compare_groups
    from hpclab.catalog.project_config import ProjectConfig

    values: dict[str, float] = {}
    members = []
    groups = {"b": (0.1, range(5), [0.520, 0.531, 0.515, 0.527, 0.522])}
    groups["a"] = (0.03, range(5), [0.498, 0.505, 0.492, 0.510, 0.501])
    groups["c"] = (0.01, range(5, 8), [0.512, 0.519, 0.508])
    noise = {"b": 0.005, "a": 0.004, "c": 0.006}
    for prefix, (lr, seeds, vals) in groups.items():
        for seed, v in zip(seeds, vals, strict=True):
            run = f"{prefix}{seed}"
            feats = [("optim.lr", json.dumps(lr), lr), ("seed", json.dumps(seed), float(seed))]
            members.append(Member(run, "completed", run, feats, "c0de", ()))
            values[run] = v
    ctx = Context(
        group_runs(members, ProjectConfig()),
        {m.run_id: m.status for m in members},
        lambda run, metric, aggregation, direction: values.get(run),
        lambda run, metric: noise[run[0]],
        lambda run: "b0" if run[0] in "ac" else None,
        lambda run: "b0",
        lambda metric: "minimize",
        lambda a, b, pairs: compare_groups(a, b, pairs, 0.95),
    )
    h = Hypothesis("h", "a lower learning rate lowers val/loss", (Target("val/loss"),))
    linked = [m.run_id for m in members if m.run_id[0] in "ac"]
    units, verdict = evaluate(h, linked, ctx, Settings(1.0, -1.0, 0.05, 0.95, 3))
    by = {u.label: u for u in units}
    u1, u2 = by["optim.lr=0.03"], by["optim.lr=0.01"]
    doc = " ".join(DOC.read_text(encoding="utf-8").split())
    assert (u1.paired, u1.verdict, u2.paired, u2.verdict) == (
        True,
        "better",
        False,
        "not significant",
    )
    assert statistics.median([0.004] * 5 + [0.005] * 5) == pytest.approx(0.0045)
    # se(E) from the units, as the doc writes it; E's interval is E +- z se(E)
    se_e = math.sqrt(sum((u.weight * u.confidence * u.se) ** 2 for u in (u1, u2)))
    assert verdict.evidence_high - verdict.evidence == pytest.approx(1.959964 * se_e, rel=1e-5)
    printed = {
        f"| `nd` = delta / scale (Hedges' g) | {u1.normalized_delta:.3f} | "
        f"{u2.normalized_delta:.3f} |",
        f"| `scale` = s_p / J | {u1.scale:.6f} | {u2.scale:.6f} |",
        f"| stability = 1 / (1 + noise/scale) | {u1.stability:.3f} | {u2.stability:.3f} |",
        f"| `p_holm` (2 units) | {u1.p_holm:.4f} | {u2.p_holm:.4f} |",
        f"| contribution = weight × confidence × nd | {u1.contribution:.3f} | "
        f"{u2.contribution:.3f} |",
        f"`E = {u1.contribution:.3f} + {u2.contribution:.3f} = {verdict.evidence:.2f}`",
        f"= {verdict.evidence_low:.2f} to {verdict.evidence_high:.2f}.",
        f"+{u1.delta:.4f}, 95% CI {u1.ci_low:.4f} to {u1.ci_high:.4f}",
        verdict.reason.split(";")[0],  # the reason's first part, as the doc quotes it
        f"+{u2.delta:.4f}, 95% CI {u2.ci_low:.3g} to {u2.ci_high:.3g} (Welch's t: 3 values)",
        f"| Welch p, permutation p | {u1.p_welch:.2g}, {u1.p_permutation:.2g} (exact: 252 "
        f"splits) | {u2.p_welch:.2g}, {u2.p_permutation:.2g} (exact: 56 splits) |",
        f"| paired t p, sign-flip p (beside) | {u1.p_paired_t:.2g}, "
        f"{u1.p_paired_permutation:.4f} | – |",
        f"= {u1.se:.3f} | √(8/15 + {u2.normalized_delta:.3f}²/16) = {u2.se:.3f} |",
        f"| confidence | {u1.n_confidence:.3f} × {u1.agreement:g} × {u1.stability:.3f} = "
        f"{u1.confidence:.3f} | {u2.n_confidence:.2f} × {u2.agreement:g} × "
        f"{u2.stability:.3f} = {u2.confidence:.3f} |",
        f"(0.5 × {u2.confidence:.3f} × {u2.se:.3f})²) = {se_e:.3f}`",
    }
    assert [line for line in printed if line not in doc] == []
    assert verdict.status == "Supported"
    assert f"E={verdict.evidence:+.3g} (95% CI {verdict.evidence_low:.3g} to" in verdict.reason


# -- a project made for the front and the seed groups ----------------------------------------
PROJECT = "pf"
# name -> (lr, seed, val/loss, val/acc): c0 dominates every other run on (loss down,
# acc up), so the project's front is {c0}; among a0, b0, d0 the front is {a0, b0}
POINTS: dict[str, tuple[float, int, float, float | None]] = {
    "a0": (0.1, 0, 1.0, 0.5),
    "a1": (0.1, 1, 1.1, 0.55),
    "a0-again": (0.1, 0, 1.02, 0.5),  # created after a0, same seed: a reproduction of it
    "b0": (0.2, 0, 2.0, 0.6),
    "c0": (0.3, 0, 0.5, 0.9),
    "d0": (0.4, 0, 3.0, 0.4),
    "e0": (0.5, 0, 0.8, None),  # no val/acc: no point on the objectives
}
SELECTION = ["a0", "b0", "d0", "e0"]
HOSTILE = {"e0": "<img src=x onerror=alert(1)>"}  # a config value: in e0's group label


@pytest.fixture(scope="module")
def front_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, dict, str]]:
    root = tmp_path_factory.mktemp("front") / "st 'ore"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HPCLAB_SNAPSHOT_CODE", "0")
        ids = {}
        for name, (lr, seed, loss, acc) in POINTS.items():
            config: dict[str, Any] = {"lr": lr, "seed": seed}
            if name in HOSTILE:
                config["note"] = HOSTILE[name]
            run = hpclab.init(PROJECT, config, name=name, store=root)
            for step in range(5):
                values = {"val/loss": loss + (4 - step) * 0.1}
                if acc is not None:
                    values["val/acc"] = acc - (4 - step) * 0.01
                run.log(values, step=step)
            run.finish()
            ids[name] = run.id
    store = Store(root)
    store.project_yaml(PROJECT).write_text(
        yaml.safe_dump(
            {
                "key_metrics": [{"name": "val/loss", "direction": "minimize"}],
                "pareto": [
                    {"name": "val/loss", "direction": "minimize"},
                    {"name": "val/acc", "direction": "maximize"},
                ],
            }
        )
    )
    index_store(store)
    build(store)
    server = make_server(store.site_dir / "html", port=0)
    serve_in_thread(server)
    try:
        yield store, ids, url_of(server)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    with Chromium() as b:
        yield b


def catalog_front(store: Store, scope: str = "project") -> set[str]:
    con = connect(store)
    try:
        rows = con.execute(
            "SELECT run_id FROM pareto WHERE project = ? AND scope = ? AND kind = 'run'"
            " AND on_front",
            [PROJECT, scope],
        ).fetchall()
    finally:
        con.close()
    return {r[0] for r in rows}


def rendered(browser: Chromium, url: str, root_id: str) -> Any:
    page = browser.new_page()
    page.goto(url)
    page.wait_for(f"document.getElementById('{root_id}')?.dataset.rendered === '1'", timeout=30)
    return page


@needs_chromium
def test_the_compare_page_draws_the_front_of_its_selection(
    browser: Chromium, front_site: tuple[Store, dict, str]
) -> None:
    store, ids, base = front_site
    by_id = {v: k for k, v in ids.items()}
    # the project's front (the catalog's) is c0 alone: the selection's runs are all off it
    assert catalog_front(store) == {ids["c0"]}
    # the selection's front, recomputed here from the objectives' last values
    chosen = [n for n in SELECTION if POINTS[n][3] is not None]
    pts = np.array([[POINTS[n][2], POINTS[n][3]] for n in chosen])
    expected = {n for n, r in zip(chosen, pareto_ranks(pts, [False, True]), strict=True) if r == 0}
    assert expected == {"a0", "b0"}
    keys = ",".join(f"{PROJECT}/{ids[n]}" for n in SELECTION)
    page = rendered(browser, f"{base}runs/compare.html?r={keys}", "hl-compare")
    try:
        box = ".hl-compare-pareto"
        page.wait_for(f"document.querySelector('{box}')?.dataset.rendered === '1'")
        front = page.evaluate(f"document.querySelector('{box}').dataset.front")
        assert {by_id[k.split("/")[1]] for k in front.split(",")} == expected
        # the table says which runs are on it, d0 is dominated, e0 is left out by name
        rows = page.evaluate(
            "Array.from(document.querySelectorAll('table.hl-pareto-selection tbody tr'),"
            " r => [r.cells[0].innerText, r.cells[3].innerText])"
        )
        assert {name: where for name, where in rows} == {
            "a0": "on the front",
            "b0": "on the front",
            "d0": "dominated",
        }
        left = page.evaluate("document.querySelector('.hl-pareto-left').innerText")
        assert "e0" in left and "no value of every objective" in left
        note = page.evaluate("document.querySelector('.hl-pareto-note').innerText")
        assert "this selection" in note and "val/loss ↓" in note and "val/acc ↑" in note
        # drawn: one symbol per run with a point, axes titled with the objectives
        marks = page.evaluate(
            f"document.querySelectorAll('{box} g.mark-symbol.role-mark path').length"
        )
        assert marks == len(chosen)
        axes = page.evaluate(
            f"Array.from(document.querySelectorAll('{box} .role-axis-title'), t => t.textContent)"
        )
        assert sorted(axes) == ["val/acc", "val/loss"]
        # the method link beside it reaches statistics.html#pareto
        href = page.evaluate(
            "document.querySelector('.hl-pareto-note a.hl-stats-link').getAttribute('href')"
        )
        assert urlparse(href).path.endswith("/statistics.html") and href.endswith("#pareto")
        assert page.errors == [], page.errors
    finally:
        page.close()


@needs_chromium
def test_the_run_page_says_the_seed_group(
    browser: Chromium, front_site: tuple[Store, dict, str]
) -> None:
    store, ids, base = front_site
    html = (store.site_dir / "html").resolve()
    stats_ids = parse(html / "statistics.html").ids
    facts = {}
    for name in ("a0", "a0-again"):
        page = rendered(browser, f"{base}runs/run.html?p={PROJECT}&id={ids[name]}", "hl-run")
        try:
            facts[name] = page.evaluate(
                "(() => { const g = document.querySelector('.hl-seed-group'); return {"
                " text: g.innerText,"
                " role: g.querySelector('.hl-sg-role').dataset.role,"
                " size: g.querySelector('.hl-sg-size').innerText,"
                " samples: Array.from(g.querySelectorAll('.hl-sg-samples a'),"
                "   a => new URLSearchParams(a.search).get('id')),"
                " repros: Array.from(g.querySelectorAll('.hl-sg-repros a'),"
                "   a => new URLSearchParams(a.search).get('id')),"
                " roleLinks: Array.from(g.querySelectorAll('.hl-sg-role a'),"
                "   a => new URLSearchParams(a.search).get('id')),"
                " method: g.querySelector('a.hl-stats-link').getAttribute('href') }; })()"
            )
            assert page.errors == [], page.errors
        finally:
            page.close()
    a0, again = facts["a0"], facts["a0-again"]
    # a0 is the sample of seed 0; a1 the group's other sample; a0-again its reproduction
    assert a0["role"] == "sample" and a0["size"] == "2 samples"
    assert a0["samples"] == [ids["a1"]] and a0["repros"] == [ids["a0-again"]]
    assert "lr=0.1" in a0["text"]
    assert again["role"] == "reproduction" and again["roleLinks"] == [ids["a0"]]
    assert "reproduction of " + ids["a0"] in again["text"]
    assert sorted(again["samples"]) == sorted([ids["a0"], ids["a1"]])
    # the catalog agrees: two samples, a0-again a reproduction of a0
    con = connect(store)
    try:
        roles = dict(
            con.execute(
                "SELECT run_id, role || ':' || coalesce(of_run, '') || ':' || size"
                " FROM seed_groups WHERE project = ?",
                [PROJECT],
            ).fetchall()
        )
    finally:
        con.close()
    assert roles[ids["a0"]] == "sample::2"
    assert roles[ids["a0-again"]] == f"reproduction:{ids['a0']}:2"
    # a label is text: e0's (its config holds markup) shows the markup as written
    page = rendered(browser, f"{base}runs/run.html?p={PROJECT}&id={ids['e0']}", "hl-run")
    try:
        label = page.evaluate("document.querySelector('.hl-seed-group code').textContent")
        images = page.evaluate("document.querySelectorAll('.hl-seed-group img').length")
        assert HOSTILE["e0"] in label and images == 0
        assert page.errors == [], page.errors
    finally:
        page.close()
    # the method link is this site's statistics.html#seed-groups, an id the page has
    link = urlparse(a0["method"])
    assert link.path == urlparse(base).path + "statistics.html"
    assert link.fragment == "seed-groups" and link.fragment in stats_ids
