"""The evaluation harness (issue 19): ``hpclab.eval.evaluate`` writes metrics with
percentile bootstrap CIs, per-slice values tested against the rest of the set (Holm),
and the worst examples with their inputs, beside a real run; values are checked against
closed-form formulas and SciPy (``scipy.stats.bootstrap``, ``permutation_test``) on data
with a known answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

import hpclab
from hpclab.errors import EvalError
from hpclab.eval import evaluate
from hpclab.eval.bootstrap import holm
from hpclab.store import Store


def _run(root: Path, **kw: Any) -> hpclab.Run:
    return hpclab.Run(store=root, project="ev", **kw)


def _finished_dir(root: Path) -> Path:
    with _run(root) as run:
        run.log({"train/loss": 1.0}, step=0)
    assert run.paths is not None
    return run.paths.dir


def _classification_data(n: int = 600, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    p = np.where(rng.random(n) < 0.7, y, rng.integers(0, 3, n))
    return p, y


def test_classification_metrics_match_their_formulas(store_root: Path) -> None:
    # a confusion matrix written out by hand: rows true class, columns predicted
    cm = np.array([[5, 2, 0], [1, 3, 1], [0, 2, 6]])
    y = np.concatenate([[t] * int(cm[t].sum()) for t in range(3)])
    p = np.concatenate([[c] * int(cm[t, c]) for t in range(3) for c in range(3)])
    ev = evaluate(_finished_dir(store_root), p, y, n_boot=50)
    tp = np.diag(cm).astype(float)
    precision = tp / cm.sum(axis=0)
    recall = tp / cm.sum(axis=1)
    f1 = 2 * precision * recall / (precision + recall)
    m = {k: v["value"] for k, v in ev.metrics.items()}
    assert m["accuracy"] == pytest.approx(14 / 20)
    assert m["macro_precision"] == pytest.approx(precision.mean())
    assert m["macro_recall"] == pytest.approx(recall.mean())
    assert m["macro_f1"] == pytest.approx(f1.mean())


def test_a_class_never_predicted_counts_zero_precision(store_root: Path) -> None:
    y = np.array(["cat", "cat", "dog", "dog", "emu"])
    p = np.array(["cat", "cat", "dog", "cat", "dog"])
    ev = evaluate(_finished_dir(store_root), p, y, n_boot=20)
    # precision: cat 2/3, dog 1/2, emu 0 (never predicted); recall: 1, 1/2, 0
    assert ev.metrics["macro_precision"]["value"] == pytest.approx((2 / 3 + 1 / 2) / 3)
    assert ev.metrics["macro_recall"]["value"] == pytest.approx(0.5)


def test_regression_metrics_match_their_formulas(store_root: Path) -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    p = np.array([1.5, 1.0, 3.0, 6.0, 9.0])
    ev = evaluate(_finished_dir(store_root), p, y, task="regression", n_boot=50)
    e = p - y
    r2 = 1 - (e**2).sum() / ((y - y.mean()) ** 2).sum()
    assert ev.metrics["mae"]["value"] == pytest.approx(np.abs(e).mean())
    assert ev.metrics["rmse"]["value"] == pytest.approx(np.sqrt((e**2).mean()))
    assert ev.metrics["r2"]["value"] == pytest.approx(r2)


def test_bootstrap_ci_agrees_with_scipy_percentile_bootstrap(store_root: Path) -> None:
    p, y = _classification_data(n=800)
    ev = evaluate(_finished_dir(store_root), p, y, n_boot=4000, seed=1)
    correct = (p == y).astype(float)
    ref = stats.bootstrap(
        (correct,), np.mean, n_resamples=20000, method="percentile", random_state=0
    ).confidence_interval
    acc = ev.metrics["accuracy"]
    # the two differ only by Monte Carlo error (about 0.002 at these sizes)
    assert acc["ci_low"] == pytest.approx(ref.low, abs=0.006)
    assert acc["ci_high"] == pytest.approx(ref.high, abs=0.006)
    assert acc["ci_low"] < acc["value"] < acc["ci_high"]
    # regression: MAE's interval against scipy's on the absolute errors
    rng = np.random.default_rng(5)
    yt = rng.normal(size=600)
    pr = yt + rng.normal(scale=0.5, size=600)
    ev = evaluate(_finished_dir(store_root), pr, yt, task="regression", n_boot=4000, seed=2)
    ref = stats.bootstrap(
        (np.abs(pr - yt),), np.mean, n_resamples=20000, method="percentile", random_state=0
    ).confidence_interval
    assert ev.metrics["mae"]["ci_low"] == pytest.approx(ref.low, abs=0.004)
    assert ev.metrics["mae"]["ci_high"] == pytest.approx(ref.high, abs=0.004)


def test_files_state_the_method_and_are_reproducible(store_root: Path) -> None:
    p, y = _classification_data()
    d = _finished_dir(store_root)
    first = evaluate(d, p, y, n_boot=300, seed=7)
    doc = json.loads(first.paths.eval_metrics_json.read_text())
    assert doc["method"] == "percentile bootstrap"
    assert (doc["n_boot"], doc["seed"], doc["confidence"], doc["n"]) == (300, 7, 0.95, 600)
    again = evaluate(d, p, y, n_boot=300, seed=7)
    other = evaluate(d, p, y, n_boot=300, seed=8)
    assert again.metrics == first.metrics
    assert other.metrics["accuracy"]["ci_low"] != first.metrics["accuracy"]["ci_low"] or (
        other.metrics["accuracy"]["ci_high"] != first.metrics["accuracy"]["ci_high"]
    )


def test_a_worse_slice_is_flagged_and_its_p_value_agrees_with_scipy(store_root: Path) -> None:
    rng = np.random.default_rng(11)
    n = 900
    y = rng.integers(0, 2, n)
    group = np.array(["young", "middle", "old"])[np.arange(n) % 3]
    good = rng.random(n) < np.where(group == "old", 0.6, 0.85)  # old: clearly worse
    p = np.where(good, y, 1 - y)
    ev = evaluate(_finished_dir(store_root), p, y, slices={"age": group}, n_boot=2000)
    acc = {r["slice_value"]: r for r in ev.slices if r["metric"] == "accuracy"}
    assert acc["old"]["flagged"] and not acc["young"]["flagged"]
    assert not acc["middle"]["flagged"]
    assert acc["old"]["n"] == 300
    assert acc["old"]["value"] == pytest.approx(float(good[group == "old"].mean()))
    # the raw p of a borderline slice against SciPy's permutation test of the means
    correct = (p == y).astype(float)
    for value in ("young", "middle"):
        inside, rest = correct[group == value], correct[group != value]
        ref = stats.permutation_test(
            (inside, rest),
            lambda a, b: np.mean(b) - np.mean(a),
            permutation_type="independent",
            alternative="greater",
            n_resamples=9999,
            random_state=0,
        ).pvalue
        assert acc[value]["p_raw"] == pytest.approx(ref, abs=0.03)
    # the stored p is Holm's over the three values
    raws = [acc[v]["p_raw"] for v in ("middle", "old", "young")]
    assert [acc[v]["p_value"] for v in ("middle", "old", "young")] == pytest.approx(holm(raws))
    doc = json.loads(ev.paths.eval_slices_json.read_text())
    assert "Holm" in doc["test"] and doc["alpha"] == 0.05


def test_holm_by_hand() -> None:
    # sorted 0.01, 0.03, 0.04 -> 3 x 0.01, 2 x 0.03, max(0.06, 1 x 0.04); NaN untouched
    out = holm([0.04, 0.01, float("nan"), 0.03])
    assert out[0] == pytest.approx(0.06) and out[1] == pytest.approx(0.03)
    assert np.isnan(out[2]) and out[3] == pytest.approx(0.06)
    assert holm([0.9, 0.8]) == [1.0, 1.0]


def test_worst_examples_carry_their_inputs(store_root: Path) -> None:
    y = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    p = np.array([0.1, 3.0, 2.0, 3.5, -4.0])
    rows = [{"text": "a" * 5000, "vec": np.arange(200)}, "b", {"x": object()}, [1, 2], b"\x00"]
    ev = evaluate(_finished_dir(store_root), p, y, task="regression", data=rows, worst=3)
    doc = json.loads(ev.paths.eval_failures_json.read_text())
    assert [e["index"] for e in doc["examples"]] == [4, 1, 3]  # |e| 8, 2, 0.5
    assert doc["examples"][0]["input"] == repr(b"\x00")
    assert doc["examples"][1]["input"] == "b"
    ev = evaluate(_finished_dir(store_root), p, y, task="regression", data=rows, worst=5)
    first = next(e for e in ev.failures if e["index"] == 0)["input"]
    assert len(first["text"]) == 2001 and len(first["vec"]) == 64  # capped
    assert isinstance(next(e for e in ev.failures if e["index"] == 2)["input"]["x"], str)
    # columns as a dict, class scores: the misclassified by their true class's score
    scores = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.45, 0.55]])
    labels = np.array([0, 0, 0, 1])
    ev = evaluate(_finished_dir(store_root), scores, labels, data={"id": ["a", "b", "c", "d"]})
    assert [(e["index"], e["input"]) for e in ev.failures] == [(2, {"id": "c"}), (1, {"id": "b"})]
    assert ev.failures[0]["true_class_score"] == pytest.approx(0.2)


def test_headline_metrics_go_into_the_summary_not_the_metrics(store_root: Path) -> None:
    p, y = _classification_data(n=100)
    with _run(store_root) as run:
        ev = evaluate(run, p, y, n_boot=50)
        assert run.summary["eval/accuracy"] == ev.metrics["accuracy"]["value"]
    assert run.paths is not None
    store = Store(store_root)
    record = store.read_record(run.paths)
    assert record.summary["eval/accuracy"] == pytest.approx(float((p == y).mean()))
    assert not (run.paths.metrics_zarr / "eval").exists()  # not a logged series
    d = _finished_dir(store_root)
    evaluate(d, p, y, task="classification", n_boot=20)
    evaluate(d, p.astype(float), y.astype(float), task="regression", n_boot=20)
    summary = store.read_record(store.find_run(Path(d).name)[1]).summary
    assert {"eval/accuracy", "eval/mae", "eval/r2", "train/loss"} <= summary.keys()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"predictions": [0, 1, 1], "labels": [0, 1]}, "predictions: 3 values for 2 labels"),
        ({"task": "ranking"}, "task: 'ranking' is not one of classification, regression"),
        ({"labels": [0.0, float("nan"), 1.0]}, "labels: 1 NaN or missing values"),
        ({"slices": {"age": [1, 2]}}, "slices['age']: 2 values for 3 predictions"),
        ({"data": ["a"]}, "data: 1 rows for 3 predictions"),
        ({"n_boot": 0}, "n_boot: a positive integer, not 0"),
        ({"slices": {"id": list(range(3))}, "predictions": list(range(3))}, None),
    ],
)
def test_bad_input_is_one_named_line(
    store_root: Path, kwargs: dict[str, Any], message: str | None
) -> None:
    args: dict[str, Any] = {"predictions": [0, 1, 1], "labels": [0, 1, 0], **kwargs}
    d = _finished_dir(store_root)
    if message is None:  # a fine call for contrast
        evaluate(d, **args)
        return
    with pytest.raises(EvalError) as e:
        evaluate(d, **args)
    assert str(e.value) == message and "\n" not in str(e.value)
    with pytest.raises(EvalError, match="not a run directory"):
        evaluate(store_root, [0], [0])


def test_too_many_slice_values_asks_to_bin(store_root: Path) -> None:
    n = 500
    with pytest.raises(EvalError, match=r"slices\['x'\]: 500 distinct values .*bin"):
        evaluate(_finished_dir(store_root), [0] * n, [0] * n, slices={"x": np.arange(n)})


def test_the_catalog_indexes_metrics_and_slices_and_follows_a_new_evaluation(
    store_root: Path,
) -> None:
    from hpclab.catalog.connect import connect
    from hpclab.catalog.indexer import index_store
    from hpclab.site.data import load

    p, y = _classification_data(n=300)
    group = np.where(np.arange(300) < 100, "a", "b")
    p[:100] = (y[:100] + 1) % 3  # slice a: all wrong
    d = _finished_dir(store_root)
    ev = evaluate(d, p, y, slices={"grp": group}, n_boot=200)
    store = Store(store_root)
    index_store(store)
    con = connect(store)
    got = con.execute(
        "SELECT metric, value, ci_low, ci_high, n, method FROM eval_metrics ORDER BY metric"
    ).fetchall()
    assert [g[0] for g in got] == sorted(ev.metrics)
    acc = next(g for g in got if g[0] == "accuracy")
    m = ev.metrics["accuracy"]
    assert acc[1:5] == (m["value"], m["ci_low"], m["ci_high"], 300)
    assert acc[5] == "percentile bootstrap, 200 resamples"
    flagged = con.execute(
        "SELECT slice, slice_value, metric FROM eval_slices WHERE flagged ORDER BY metric"
    ).fetchall()
    assert flagged and {(s, v) for s, v, _ in flagged} == {("grp", "a")}
    con.close()
    # a second evaluation of the same run replaces the rows on the next pass
    evaluate(d, p[::-1].copy(), y, task="classification", n_boot=100)
    index_store(store)
    con = connect(store)
    assert con.execute("SELECT count(*) FROM eval_slices").fetchone() == (0,)
    assert con.execute("SELECT DISTINCT method FROM eval_metrics").fetchall() == [
        ("percentile bootstrap, 100 resamples",)
    ]
    con.close()
    site = load(store)
    key = ("ev", Path(d).name)
    assert {m["metric"] for m in site.eval_metrics[key]} == set(ev.metrics)


HOSTILE = "<img src=x onerror=window.__hlRan=1>"


def test_run_and_compare_pages_show_the_evaluation_in_chromium(
    store_root: Path, tmp_path: Path
) -> None:
    from site_fixtures import served_site

    from hpclab.site.chromium import Chromium, find_chromium

    if find_chromium() is None:
        pytest.skip("no Chromium")
    rng = np.random.default_rng(2)
    n = 300
    y = rng.integers(0, 2, n)
    group = np.where(np.arange(n) % 3 == 0, HOSTILE, "plain")
    good = rng.random(n) < np.where(group == HOSTILE, 0.4, 0.9)
    a = _finished_dir(store_root)
    ev_a = evaluate(
        a,
        np.where(good, y, 1 - y),
        y,
        slices={"grp": group},
        data=[{"text": HOSTILE, "api_key": "sk-secret-value"} for _ in range(n)],
        n_boot=300,
    )
    b = _finished_dir(store_root)
    ev_b = evaluate(b, y, y, n_boot=100)  # a perfect run
    store = Store(store_root)
    ra, rb = Path(a).name, Path(b).name
    with served_site(store, tmp_path / "site") as base, Chromium() as browser:
        page = browser.new_page()
        page.goto(f"{base}runs/run.html?p=ev&id={ra}")
        page.wait_for("!!document.querySelector('#hl-run .hl-eval-card')", timeout=30)
        metrics = page.evaluate(
            "Array.from(document.querySelectorAll('table.hl-eval-metrics tbody tr'),"
            " tr => Array.from(tr.cells, c => c.textContent))"
        )
        shown = {r[0]: float(r[1]) for r in metrics}
        assert shown["accuracy"] == pytest.approx(ev_a.metrics["accuracy"]["value"], rel=1e-3)
        assert metrics[0][2].startswith("[")
        flagged = page.evaluate(
            "Array.from(document.querySelectorAll('table.hl-eval-slices tr.hl-eval-flagged'),"
            " tr => tr.cells[1].textContent)"
        )
        assert flagged and set(flagged) == {HOSTILE}  # as text, and only that slice
        inputs = page.evaluate(
            "Array.from(document.querySelectorAll('table.hl-eval-failures code'),"
            " c => c.textContent)"
        )
        assert inputs and HOSTILE in inputs[0] and "sk-secret-value" not in inputs[0]
        # the card sits after the Metrics section
        order = page.evaluate(
            "Array.from(document.querySelectorAll('#hl-run > h2, #hl-run > div > h2'),"
            " h => h.textContent)"
        )
        assert order.index("Evaluation") == order.index("Metrics") + 1
        assert page.evaluate("window.__hlRan === undefined")
        assert page.errors == [], page.errors
        page.goto(f"{base}runs/compare.html?r=ev/{ra},ev/{rb}")
        page.wait_for(
            "(document.querySelector('.hl-eval-radar') || {dataset: {}}).dataset.rendered === '1'",
            timeout=30,
        )
        radar = page.evaluate(
            "(() => { const r = document.querySelector('.hl-eval-radar');"
            " return {runs: JSON.parse(r.dataset.runs), metrics: JSON.parse(r.dataset.metrics),"
            " lines: r.querySelectorAll('path[aria-roledescription=\"line mark\"]').length,"
            " dots: r.querySelectorAll('path[aria-roledescription=\"circle\"]').length}; })()"
        )
        assert radar["runs"] == [ra, rb]
        assert radar["metrics"] == ["accuracy", "macro_f1", "macro_precision", "macro_recall"]
        assert radar["dots"] == 8  # a point per run and metric
        rows = page.evaluate(
            "Array.from(document.querySelectorAll('table.hl-eval-compare-table tbody tr'),"
            " tr => Array.from(tr.cells, c => c.textContent))"
        )
        assert [r[0] for r in rows] == [ra, rb]
        assert rows[1][1].startswith("1 ")  # the perfect run's accuracy
        assert ev_b.metrics["accuracy"]["value"] == 1.0
        assert page.errors == [], page.errors
        page.close()


def test_the_readme_example_runs(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### Evaluating predictions and profiling latency", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    env = {**os.environ, "HPCLAB_STORE": str(tmp_path / "store")}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("{'value': 0.8") and len(lines) == 3
    store = Store(tmp_path / "store")
    (paths,) = [p for _, p in store.iter_runs("demo")]
    assert paths.eval_slices_json.is_file() and paths.latency_json("predict").is_file()
    summary = store.read_record(paths).summary
    assert {"eval/accuracy", "latency/predict/p99_ms"} <= summary.keys()
