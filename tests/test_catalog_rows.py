"""Catalog rows are matched to their table's columns by name (hpclab.catalog.rows)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import pytest

from hpclab.catalog.evidence import Unit, Verdict
from hpclab.catalog.rows import as_dict, columns, names, positional, renamed, row
from hpclab.catalog.schema import TABLES
from hpclab.catalog.stats import compare, mean_ci
from hpclab.errors import SchemaMismatch


@dataclass(frozen=True)
class Artifact:
    size: int
    path: str
    sha256: str


def test_a_row_follows_the_schema_order_whatever_the_field_order() -> None:
    a = Artifact(size=3, path="model.pt", sha256="ab")
    got = row("artifacts", a, project="lab", run_id="r1")
    assert got == ("lab", "r1", "model.pt", "ab", 3)
    assert names("artifacts") == tuple(c.name for c in TABLES["artifacts"])
    # a mapping, keywords: the same row
    assert (
        row(
            "artifacts", {"sha256": "ab", "size": 3, "path": "model.pt"}, run_id="r1", project="lab"
        )
        == got
    )
    assert row("artifacts", project="lab", run_id="r1", path="model.pt", sha256="ab", size=3) == got


def test_later_parts_and_keywords_replace_earlier_ones() -> None:
    got = row(
        "artifacts",
        {"path": "a", "sha256": "x", "size": 1},
        {"size": 2},
        project="p",
        run_id="r",
        path="b",
    )
    assert got == ("p", "r", "b", "x", 2)


def test_an_unknown_field_is_an_error_naming_the_table_and_the_field() -> None:
    with pytest.raises(SchemaMismatch, match=r"artifacts: no column 'sizee'"):
        row("artifacts", project="p", run_id="r", path="a", sha256="x", sizee=1)
    with pytest.raises(SchemaMismatch, match=r"artifacts: no column 'extra'"):
        row("artifacts", Artifact(1, "a", "x"), {"extra": 0}, project="p", run_id="r")


def test_a_missing_field_is_an_error_naming_the_table_and_the_column() -> None:
    with pytest.raises(SchemaMismatch, match=r"artifacts: no value for column 'run_id'"):
        row("artifacts", Artifact(1, "a", "x"), project="p")
    with pytest.raises(SchemaMismatch, match=r"sweeps: no value for column 'project'.*command"):
        row("sweeps", sweep_id="s")
    with pytest.raises(SchemaMismatch, match="no catalog table 'nope'"):
        row("nope", project="p")


def test_evidence_dataclasses_fill_their_tables() -> None:
    """Every field of an evidence unit and a verdict lands in its own column."""
    for cls, table, extra in ((Unit, "evidence", {}), (Verdict, "hypothesis_status", {})):
        values = {f.name: f"v:{f.name}" for f in dataclasses.fields(cls)}
        got = as_dict(table, row(table, cls(**values), project="lab", **extra))
        assert list(got) == list(names(table))
        assert got["project"] == "lab"
        assert all(got[name] == v for name, v in values.items())


def test_statistics_fill_their_tables_with_renamed_fields() -> None:
    ci = mean_ci([1.0, 2.0, 3.0])
    stats = as_dict(
        "seed_group_stats",
        row(
            "seed_group_stats",
            renamed(ci, low="ci_low", high="ci_high", method="ci_method"),
            project="p",
            group_id="g",
            label="optim.lr=0.1",
            metric="m",
        ),
    )
    assert (stats["n"], stats["mean"], stats["ci_low"], stats["ci_high"]) == (
        3,
        2.0,
        ci.low,
        ci.high,
    )
    assert stats["ci_method"] == ci.method and stats["level"] == 0.95
    c = compare([1.0, 2.0, 3.0], [2.0, 3.0, 4.0])
    fields = dict(
        project="p", family="group:a", metric="m", group_a="a", group_b="b", label_a="x=1",
        label_b="x=2", basis="parent", direction="minimize", p_holm=0.5, alpha=0.05,
        verdict="too few seeds", reason="too few seeds",
    )  # fmt: skip
    own = {
        k: v
        for k, v in renamed(c, low="ci_low", high="ci_high").items()
        if k not in ("std_a", "std_b", "se", "pooled_std")
    }
    cmp = as_dict("group_comparisons", row("group_comparisons", own, **fields))
    assert cmp["diff"] == c.diff and cmp["ci_low"] == c.low and cmp["p_welch"] == c.p_welch
    extra = ("std_a", "std_b", "se", "pooled_std")
    unrenamed = {k: v for k, v in dataclasses.asdict(c).items() if k not in extra}
    with pytest.raises(SchemaMismatch, match="no column 'high' .*: high, low"):
        row("group_comparisons", unrenamed, **fields)
    with pytest.raises(SchemaMismatch, match="Comparison has no field 'lo'"):
        renamed(c, lo="ci_low")


def test_rows_become_columns_and_back() -> None:
    rows = [
        row("artifacts", project="p", run_id="r", path=f"f{i}", sha256="x", size=i)
        for i in range(3)
    ]
    cols = columns("artifacts", rows)
    assert list(cols) == list(names("artifacts"))
    assert cols["path"] == ["f0", "f1", "f2"] and cols["size"] == [0, 1, 2]
    assert columns("artifacts", []) == {n: [] for n in names("artifacts")}
    assert as_dict("artifacts", rows[1])["path"] == "f1"
    with pytest.raises(SchemaMismatch, match="artifacts: a row of 2 values for 5 columns"):
        as_dict("artifacts", ("p", "r"))
    with pytest.raises(TypeError, match="dataclasses and mappings"):
        row("artifacts", ("p", "r", "a", "x", 1))
    assert math.isnan(row("metric_summary", dict.fromkeys(names("metric_summary"), math.nan))[3])


def test_positional_rows_are_checked_once_and_follow_the_schema_order() -> None:
    make = positional("artifacts", "size", "path", "sha256", "run_id", "project")
    assert make(3, "model.pt", "ab", "r1", "lab") == row(
        "artifacts", project="lab", run_id="r1", path="model.pt", sha256="ab", size=3
    )
    same = positional("artifacts", *names("artifacts"))
    assert same("lab", "r1", "model.pt", "ab", 3) == ("lab", "r1", "model.pt", "ab", 3)
    with pytest.raises(SchemaMismatch, match="artifacts: no column 'bytes'"):
        positional("artifacts", "project", "run_id", "path", "sha256", "bytes")
    with pytest.raises(SchemaMismatch, match="artifacts: no value for column 'size'"):
        positional("artifacts", "project", "run_id", "path", "sha256")
    with pytest.raises(SchemaMismatch, match="named twice"):
        positional("artifacts", "project", "run_id", "path", "sha256", "size", "size")


def test_columns_refuse_a_row_of_the_wrong_width() -> None:
    good = row("artifacts", project="lab", run_id="r1", path="a", sha256="b", size=1)
    with pytest.raises(SchemaMismatch, match="artifacts"):
        columns("artifacts", [good, good[:-1]])
    assert columns("artifacts", iter([good]))["size"] == [1]
    assert columns("artifacts", []) == {n: [] for n in names("artifacts")}
