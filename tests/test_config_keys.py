"""Unknown keys (typos) in project.yaml and hypothesis files are errors naming the file,
the key, the valid names and the closest one, never silently ignored."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import hpclab_cli

import hpclab
from hpclab.catalog.hypotheses import read_hypothesis
from hpclab.catalog.project_config import load_project_config
from hpclab.errors import ConfigError, HypothesisError, check_keys
from hpclab.store import Store


def test_check_keys_names_the_valid_keys_and_the_closest() -> None:
    check_keys({"a": 1}, ("a", "b"), "f.yaml")
    with pytest.raises(ConfigError) as e:
        check_keys({"key_metric": 1}, ("key_metrics", "naming"), "f.yaml")
    assert str(e.value) == (
        "f.yaml: unknown key 'key_metric' (valid: key_metrics, naming); did you mean 'key_metrics'?"
    )
    with pytest.raises(HypothesisError, match=r"^f.yaml: unknown key 'zzz' \(valid: a, b\)$"):
        check_keys({"zzz": 1}, ("a", "b"), "f.yaml", HypothesisError)


@pytest.mark.parametrize(
    ("text", "where", "key", "closest"),
    [
        ("key_metric: [val/loss]\n", "", "key_metric", "key_metrics"),
        ("naming: {regx: '^(?P<id>\\d+)'}\n", "naming: ", "regx", "regex"),
        ("evidence: {suported: 2}\n", "evidence: ", "suported", "supported"),
        ("features: {seed: [s]}\n", "features: ", "seed", "seeds"),
        ("statistics: {min_seed: 4}\n", "statistics: ", "min_seed", "min_seeds"),
        ("site: {publish-code: false}\n", "site: ", "publish-code", "publish_code"),
        ("key_metrics: [{name: m, directon: maximize}]\n", "key_metrics[0]: ", "directon",
         "direction"),
        ("pareto: [{name: m, aggregation: best}]\n", "pareto[0]: ", "aggregation", None),
        ("secrets: {pattern: [x]}\n", "secrets: ", "pattern", "patterns"),
    ],
)  # fmt: skip
def test_unknown_project_yaml_key(
    tmp_path: Path, text: str, where: str, key: str, closest: str | None
) -> None:
    path = tmp_path / "project.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_project_config(path)
    message = str(e.value)
    assert message.startswith(f"{path}: {where}unknown key {key!r} (valid: ")
    assert message.endswith(f"; did you mean {closest!r}?" if closest else ")")
    if not where:
        valid = (
            "key_metrics, naming, evidence, statistics, features, pareto, site, secrets, "
            "alerts, notify"
        )
        assert f"(valid: {valid})" in message


def test_every_documented_project_yaml_key_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "project.yaml"
    path.write_text(
        "key_metrics: [{name: val/loss, direction: minimize, aggregation: last}, val/acc]\n"
        "naming: {regex: '^(?P<id>\\d+)(_from_(?P<parent>\\d+))?', id_group: id,"
        " parent_group: parent}\n"
        "evidence: {supported: 1.0, refuted: -1.0}\n"
        "features: {ignore: [hpclab], seeds: [seed, '*.seed']}\n"
        "statistics: {alpha: 0.01, level: 0.9, min_seeds: 5, stability_fraction: 0.2,"
        " baseline: 20261122-101500-ab12}\n"
        "pareto: [{name: val/loss, direction: minimize}, duration_s]\n"
        "site: {publish_code: true}\n"
        "secrets: {patterns: ['tok_[0-9a-f]{32}'], files: ['*.secret']}\n"
    )
    cfg = load_project_config(path)
    assert cfg.pareto[1].name == "duration_s"
    assert (cfg.alpha, cfg.level, cfg.min_seeds, cfg.stability_fraction, cfg.baseline_run) == (
        0.01, 0.9, 5, 0.2, "20261122-101500-ab12"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("statistics: {alpha: 0.7}\n", "statistics.alpha: 0.7 is not between 0 and 0.5"),
        ("statistics: {level: 95}\n", "statistics.level: 95 is not between 0.5 and 1"),
        ("statistics: {min_seeds: 1}\n", "statistics.min_seeds: expected a whole number >= 2"),
        ("statistics: {baseline: ../x}\n", "statistics.baseline: '../x' is not a run id"),
        ("statistics: [1]\n", "statistics: expected a mapping"),
    ],
)
def test_bad_statistics_settings_name_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "project.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(f"{path}: {field}")):
        load_project_config(path)


HYPOTHESIS = "title: t\nmetrics: [m]\n"


@pytest.mark.parametrize(
    ("extra", "where", "key", "closest"),
    [
        ("baseine: parent\n", "", "baseine", "baseline"),
        ("statuss: Supported\n", "", "statuss", "status"),
        ("select: [{tags: x}]\n", "select[0]: ", "tags", "tag"),
    ],
)
def test_unknown_hypothesis_key(
    tmp_path: Path, extra: str, where: str, key: str, closest: str
) -> None:
    store = Store(tmp_path / "store")
    path = store.hypothesis_yaml("p", "h1")
    path.parent.mkdir(parents=True)
    path.write_text(HYPOTHESIS + extra)
    with pytest.raises(HypothesisError) as e:
        read_hypothesis(store, "p", "h1")
    assert str(e.value).startswith(f"{path}: {where}unknown key {key!r} (valid: ")
    assert str(e.value).endswith(f"; did you mean {closest!r}?")


def test_unknown_hypothesis_metric_key(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    path = store.hypothesis_yaml("p", "h1")
    path.parent.mkdir(parents=True)
    path.write_text("title: t\nmetrics: [{name: m, wieght: 2}]\n")
    with pytest.raises(HypothesisError) as e:
        read_hypothesis(store, "p", "h1")
    assert str(e.value) == (
        f"{path}: metrics[0]: unknown key 'wieght' (valid: name, direction, weight, "
        "aggregation); did you mean 'weight'?"
    )


def _one_run(store_root: Path) -> None:
    run = hpclab.init(project="p", store=store_root, settings={"snapshot_env": False})
    run.finish()


def test_index_reports_a_project_yaml_typo_in_one_line(store_root: Path) -> None:
    _one_run(store_root)
    path = Store(store_root).project_yaml("p")
    path.write_text("key_metrics: [val/loss]\nnaming: {regx: x}\n")

    out = hpclab_cli(store_root, "index")

    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if str(path) in line]
    assert lines == [
        f"hpclab: warning: {path}: naming: unknown key 'regx' (valid: regex, id_group, "
        "parent_group); did you mean 'regex'?"
    ]


def test_index_reports_a_hypothesis_typo_in_one_line(store_root: Path) -> None:
    _one_run(store_root)
    path = Store(store_root).hypothesis_yaml("p", "h1")
    path.parent.mkdir(parents=True)
    path.write_text("title: t\nmetric: [val/loss]\n")

    out = hpclab_cli(store_root, "index")

    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if str(path) in line]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"hpclab: warning: {path}: unknown key 'metric' (valid: title,")
    assert lines[0].endswith("did you mean 'metrics'?")
