"""The statistics as the site shows them: a 3-seed parent group and its child groups (3
seeds each, and one of 2), a rerun of one seed, a hypothesis over the children, and an
unrelated sweep whose runs dominate every child in the project. Asserted on the built
HTML of the sweep report, the hypothesis report and the Hypotheses tab: labels (config
diffs, never hashes), intervals as computed ("low to high", asymmetric), "too few seeds"
for 2 vs 3, the links to docs/statistics.md, and a sweep's own Pareto front."""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import hpclab
from hpclab.catalog.connect import connect
from hpclab.catalog.indexer import index_store
from hpclab.catalog.stats import mean_ci
from hpclab.launch.sweep import PlannedPoint, plan_sweep
from hpclab.site.build import build
from hpclab.site.layout import SiteLayout
from hpclab.store import Store

PROJECT = "lab"
METRIC = "val/loss"
PARENT = [0.50, 0.52, 0.60]
CHILDREN = {0.03: [0.40, 0.41, 0.47], 0.01: [0.45, 0.44, 0.52]}
TWO_SEEDS = (0.003, [0.30, 0.36])  # 2 seeds against the parent's 3: too few seeds
RERUN_VALUE = 0.95  # seed 0 of optim.lr=0.03 again: a reproduction, never a sample
FAST = [0.10, 0.11, 0.12]  # another sweep, smaller model and lower loss: dominates all
SETTINGS = {"snapshot_env": False}


@dataclass
class Built:
    store: Store
    html: Path
    children_sweep: str
    fast_sweep: str
    rerun: str
    rerun_of: str

    def page(self, rel: str) -> str:
        return (self.html / rel).read_text()

    def report(self, sweep_id: str) -> str:
        return self.page(f"reports/{PROJECT}/{sweep_id}.html")


def _config(lr: float, width: int, seed: int) -> dict:
    return {"optim": {"lr": lr, "name": "adam"}, "model": {"width": width}, "seed": seed}


def _log(run: hpclab.Run, final: float) -> None:
    for step in range(10):  # a curve that settles on ``final`` (its last value)
        run.log({METRIC: final + 0.02 * (9 - step)}, step=step)
    run.finish()


def _sweep(
    store: Store, code: Path, points: list[tuple[dict, float]], parent: str | None = None
) -> list[str]:
    plan = plan_sweep(
        store,
        PROJECT,
        [
            PlannedPoint(i, [f"optim.lr={c['optim']['lr']}", f"seed={c['seed']}"], c)
            for i, (c, _) in enumerate(points)
        ],
        launcher="local",
        meta={"argv": ["hpclab.launch", "-m"]},
        run_fields={"parent": parent} if parent else None,
    )
    ids = []
    for point, (config, final) in zip(plan.points, points, strict=True):
        run = hpclab.init(PROJECT, config, store=store.root, run_id=point.run_id, sweep_id=plan.id)
        _log(run, final)
        ids.append(run.id)
    return ids


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    tmp = tmp_path_factory.mktemp("site statistics")
    store = Store(tmp / "store")
    code = tmp / "code"  # every run's code: one tree, so one code id (one seed group)
    code.mkdir()
    (code / "train.py").write_text("print('train')\n")
    here = os.getcwd()
    os.chdir(code)  # a sweep's planned runs snapshot the working directory
    try:
        return _build(tmp, store, code)
    finally:
        os.chdir(here)


def _build(tmp: Path, store: Store, code: Path) -> Built:
    store.project_yaml(PROJECT).parent.mkdir(parents=True)
    store.project_yaml(PROJECT).write_text(
        yaml.safe_dump(
            {
                "key_metrics": [{"name": METRIC, "direction": "minimize"}],
                "pareto": [
                    {"name": METRIC, "direction": "minimize"},
                    {"name": "model.width", "direction": "minimize"},
                ],
            }
        )
    )
    parents = _sweep(store, code, [(_config(0.1, 64, s), v) for s, v in enumerate(PARENT)])
    children = [
        (_config(lr, 64, s), v) for lr, vals in CHILDREN.items() for s, v in enumerate(vals)
    ]
    lr2, vals2 = TWO_SEEDS
    children += [(_config(lr2, 64, s), v) for s, v in enumerate(vals2)]
    child_ids = _sweep(store, code, children, parent=parents[0])
    rerun = hpclab.init(
        PROJECT, _config(0.03, 64, 0), store=store.root, settings=SETTINGS, code_dir=code
    )
    _log(rerun, RERUN_VALUE)
    fast = _sweep(store, code, [(_config(0.1, 8, s), v) for s, v in enumerate(FAST)])
    store.hypotheses_dir(PROJECT).mkdir(parents=True, exist_ok=True)
    children_sweep = str(store.read_record(store.run_paths(PROJECT, child_ids[0])).sweep_id)
    store.hypothesis_yaml(PROJECT, "lower-lr").write_text(
        yaml.safe_dump(
            {
                "title": "A lower learning rate lowers val/loss",
                "metrics": [{"name": METRIC, "direction": "minimize"}],
                "baseline": "parent",
                "select": [{"sweep": children_sweep}],
            }
        )
    )
    index_store(store)
    build(store)
    fast_sweep = str(store.read_record(store.run_paths(PROJECT, fast[0])).sweep_id)
    return Built(
        store,
        SiteLayout(store.site_dir).html,
        children_sweep,
        fast_sweep,
        rerun.id,
        child_ids[0],
    )


def _section(page: str, anchor: str) -> str:
    """The HTML from ``<h2 id=anchor>`` to the next ``<h2``."""
    start = page.index(f'<h2 id="{anchor}">')
    end = page.find("<h2", start + 1)
    return page[start : end if end > 0 else len(page)]


def _text(fragment: str) -> str:
    """Tags dropped, entities decoded, whitespace collapsed: what a reader sees."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _rows(con: object, query: str, *params: object) -> list[dict]:
    cur = con.execute(query, list(params))  # type: ignore[attr-defined]
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def test_seed_groups_show_labels_reproductions_and_asymmetric_intervals(built: Built) -> None:
    report = built.report(built.children_sweep)
    groups = _section(report, "seed-groups")
    text = _text(groups)
    con = connect(built.store)
    ids = [r["group_id"] for r in _rows(con, "SELECT DISTINCT group_id FROM seed_groups")]
    assert len(ids) == 5
    for gid in ids:  # labels, never the groups' hashes, anywhere in the report
        assert gid not in report
    assert not re.search(r"\b[0-9a-f]{12}\b", text)
    for label in ("optim.lr=0.03", "optim.lr=0.01", "optim.lr=0.003"):
        assert f'<span class="hl-label">{label}</span>' in groups
    # the rerun of seed 0 is shown beside its sample, linked to it, and counted nowhere
    row = next(r for r in groups.split("<tr>") if built.rerun in r)
    assert "optim.lr=0.03" in row and "(of <a href=" in row and built.rerun_of in row
    # every child group's mean and interval as computed from its samples' values
    for lr, vals in CHILDREN.items():
        ci = mean_ci(vals)  # the rerun's 0.95 is not a sample
        assert ci.low is not None and ci.high is not None
        shown = f"{ci.mean:.4g} (95% CI {ci.low:.4g} to {ci.high:.4g})"
        assert shown in text, (lr, shown)
    parent = mean_ci(PARENT)
    assert parent.low is not None and parent.high is not None
    assert f"{parent.mean:.4g} (95% CI {parent.low:.4g} to {parent.high:.4g})" in text
    # intervals are printed "low to high" as computed (asymmetric ones too: bootstrap
    # intervals from 5 samples, tests/test_stats.py), never as mean ± half-width
    assert "±" not in report
    assert 'href="../../statistics.html#seed-groups"' in groups
    # the interval chart has one row per group label
    assert text.count("optim.lr=0.03") >= 2  # the members table and the statistics table
    spec = re.findall(r'<script type="application/json">(.*?)</script>', groups)
    assert any('"label":"optim.lr=0.003"' in s and '"ci_low"' in s for s in spec)


def test_significance_says_too_few_seeds_for_two_against_three(built: Built) -> None:
    report = built.report(built.children_sweep)
    sig = _section(report, "significance-against-the-baseline")
    table, words = sig.split("</table>", 1)
    rows = [_text(r) for r in table.split("<tr>")[2:]]
    reasons = [_text(r) for r in words.split("<li>")[1:]]
    assert rows and len(reasons) == len(rows), "the sweep's comparisons, each in words"
    two = [r for r in rows if "optim.lr=0.003 vs optim.lr=0.1" in r and "2 vs 3" in r]
    assert two, rows
    for r in two:
        assert r.endswith("too few seeds") and "better" not in r and "significant" not in r
    (why,) = [r for r in reasons if r.startswith("optim.lr=0.003 vs optim.lr=0.1")]
    assert "too few seeds (2 vs 3, fewer than 3 a side)" in why and "significant" not in why
    con = connect(built.store)
    family = _rows(
        con,
        "SELECT label_a, label_b, verdict FROM group_comparisons WHERE family = ?",
        f"sweep:{built.children_sweep}",
    )
    assert len(rows) == len(family)  # exactly the report's family, nothing else
    for c in family:
        assert any(r.startswith(f"{c['label_a']} vs {c['label_b']} (val/loss): ") for r in reasons)
        assert any(f"{c['label_a']} vs {c['label_b']}" in r and c["verdict"] in r for r in rows)
    assert 'href="../../statistics.html#comparisons"' in sig


def test_a_dominated_sweep_report_shows_its_own_front(built: Built) -> None:
    con = connect(built.store)
    project_front = {
        r["run_id"]
        for r in _rows(
            con,
            "SELECT run_id FROM pareto WHERE scope = 'project' AND kind = 'run' AND on_front",
        )
    }
    sweep_runs = {
        r["run_id"]
        for r in _rows(con, "SELECT run_id FROM runs WHERE sweep_id = ?", built.children_sweep)
    }
    assert project_front and not project_front & sweep_runs, "the premise: all dominated"
    pareto = _section(built.report(built.children_sweep), "pareto-front")
    front_table = pareto.split("run on the front", 1)[1].split("</table>", 1)[0]
    shown = set(re.findall(r'id=([^"&]+)"', front_table.replace("&amp;", "&")))
    expected = {
        r["run_id"]
        for r in _rows(
            con,
            "SELECT run_id FROM pareto WHERE scope = 'sweep' AND scope_id = ? AND kind = 'run' "
            "AND on_front",
            built.children_sweep,
        )
    }
    assert expected and shown == expected and shown <= sweep_runs
    assert "seed group on the front" in pareto and "optim.lr=0.003" in pareto
    spec = re.findall(r'<script type="application/json">(.*?)</script>', pareto)
    assert spec and '"errorbar"' in spec[0] and '"front":"front"' in spec[0]
    assert 'href="../../statistics.html#pareto"' in pareto


def test_hypothesis_pages_show_e_with_its_interval_and_each_unit(built: Built) -> None:
    con = connect(built.store)
    (st,) = _rows(con, "SELECT * FROM hypothesis_status WHERE hypothesis_id = 'lower-lr'")
    units = _rows(con, "SELECT * FROM evidence WHERE hypothesis_id = 'lower-lr'")
    assert len(units) == 3 and st["status"] == "Inconclusive"
    e_text = f"E = {st['evidence']:+.3g}"
    if st["evidence_low"] is not None:
        e_text += f" (95% CI {st['evidence_low']:.3g} to {st['evidence_high']:.3g})"
    for page in ("hypotheses.html", f"reports/{PROJECT}/hypothesis-lower-lr.html"):
        body = built.page(page)
        text = _text(body)
        assert e_text in text
        assert _text(html.escape(st["reason"])) in text  # the catalog's words
        assert "±" not in body
        for u in units:
            assert f"{u['label']}" in text and f"{u['n']} vs {u['n_baseline']}" in text
        assert text.count("too few seeds") >= len(units)
        root = "" if page == "hypotheses.html" else "../../"
        assert f'href="{root}statistics.html#evidence"' in body
    # the waterfall: one bar per unit, named by the treatment group's label
    hyp = built.page("hypotheses.html")
    spec = next(s for s in re.findall(r'<script type="application/json">(.*?)</script>', hyp)
                if '"contribution"' in s)  # fmt: skip
    for u in units:
        assert f'"label":"{u["label"]}"' in spec


def test_the_level_and_redacted_labels_on_the_pages_are_the_catalogs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text("print('train')\n")
    monkeypatch.chdir(code)
    store = Store(tmp_path / "store")
    store.project_yaml(PROJECT).parent.mkdir(parents=True)
    store.project_yaml(PROJECT).write_text(
        yaml.safe_dump(
            {
                "key_metrics": [{"name": METRIC, "direction": "minimize"}],
                "statistics": {"level": 0.9},
            }
        )
    )
    parents = _sweep(store, code, [(_config(0.1, 64, s), v) for s, v in enumerate(PARENT)])
    vals = CHILDREN[0.03]
    secret = "hunter2-not-for-the-site"  # the children also change a password: in the label
    children = [
        ({**_config(0.03, 64, s), "db": {"password": secret}}, v) for s, v in enumerate(vals)
    ]
    # a third group without the password: most groups lack the path, so the baseline
    # config does not hold it and the children's label names it
    children += [(_config(0.01, 64, s), v) for s, v in enumerate(CHILDREN[0.01])]
    ids = _sweep(store, code, children, parents[0])
    index_store(store)
    (label,) = (
        connect(store)
        .execute("SELECT DISTINCT label FROM seed_groups WHERE run_id = ?", [ids[0]])
        .fetchone()
    )
    assert secret in label, "the premise: the catalog's label names the secret"
    build(store)
    sweep = str(store.read_record(store.run_paths(PROJECT, ids[0])).sweep_id)
    html_dir = SiteLayout(store.site_dir).html
    report = (html_dir / f"reports/{PROJECT}/{sweep}.html").read_text()
    ci = mean_ci(vals, level=0.9)
    assert ci.low is not None and ci.high is not None
    groups = _text(_section(report, "seed-groups"))
    assert f"{ci.mean:.4g} (90% CI {ci.low:.4g} to {ci.high:.4g})" in groups
    assert "95%" not in groups and "95%" not in _section(
        report, "significance-against-the-baseline"
    )
    assert "db.password=[redacted" in groups and "optim.lr=0.03" in groups
    for page in html_dir.rglob("*.html"):
        assert secret not in page.read_text(), page


def test_a_disagreement_is_shown_as_such_and_labels_are_text(tmp_path: Path) -> None:
    from hpclab.site.data import SiteData
    from hpclab.site.research import sweep_report

    data = SiteData(store=Store(tmp_path))
    sweep = {"project": "p", "sweep_id": "s", "n_points": 0, "launcher": "local"}
    hostile = "optim.name=<script>alert(1)</script>"
    data.family_comparisons[("p", "sweep:s")] = [
        {
            "project": "p", "family": "sweep:s", "metric": "val/loss", "group_a": "a",
            "group_b": "b", "label_a": hostile, "label_b": "optim.name=sgd",
            "basis": "sweep_best", "n_a": 4, "n_b": 4, "diff": 0.1, "ci_low": 0.02,
            "ci_high": 0.3, "level": 0.95, "paired": False, "p_welch": 0.01,
            "p_permutation": 0.09, "p_holm": 0.09, "alpha": 0.05, "verdict": "tests disagree",
            "reason": "tests disagree: +0.1 (95% CI 0.02 to 0.3), 4 vs 4 seeds, Welch p=0.01, "
            "permutation p=0.09",
        }
    ]  # fmt: skip
    body = str(sweep_report(data, sweep, {}).body)
    sig = _section(body, "significance-against-the-baseline")
    row = _text(sig.split("</table>")[0].split("<tr>")[2])
    assert row == (
        f"val/loss: {hostile} vs optim.name=sgd 4 vs 4 seeds · sweep_best "
        "+0.1 (95% CI 0.02 to 0.3) Welch p=0.01, permutation p=0.09 Holm p=0.09 tests disagree"
    )
    assert "<script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in sig
    assert "significant" not in row and "alpha = 0.05" in _text(sig)


def test_run_data_names_every_unit_the_run_is_a_sample_of(built: Built) -> None:
    """An evidence unit is a comparison of groups: each sample on either side shows it,
    none is given the whole contribution (the run page renders these lines as text)."""
    import json

    con = connect(built.store)
    units = _rows(con, "SELECT * FROM evidence WHERE hypothesis_id = 'lower-lr'")
    assert units
    data = built.html / "data" / "details" / PROJECT
    for u in units:
        for side, runs in (("treatment", u["runs"]), ("baseline", u["baseline_runs"])):
            for run_id in runs:
                d = json.loads((data / f"{run_id}.json").read_text())
                (h,) = [h for h in d["hypotheses"] if h["id"] == "lower-lr"]
                line = f"{u['label']} vs {u['baseline_label']} ({u['n']} vs {u['n_baseline']}"
                mine = [t for t in h["units"] if line in t]
                assert mine and f"this run: {side} sample" in mine[0], (run_id, h["units"])
                assert "contribution" not in h  # no per-run share of a group's comparison
    rerun = json.loads((data / f"{built.rerun}.json").read_text())
    assert all(not h["units"] for h in rerun["hypotheses"]), "a reproduction is no sample"
