"""Seed groups, labels, verdicts and evidence, unit level, on cases whose answer is worked
out by hand (docs/statistics.md): one sample per seed, reproductions beside; labels are
config diffs; evidence is a weighted mean per comparison, not a sum per run."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pytest
from scipy import stats as sp

from hpclab.catalog.evidence import Context, Settings, evaluate
from hpclab.catalog.groups import Member, group_runs, pair_labels
from hpclab.catalog.hypotheses import Hypothesis, Target
from hpclab.catalog.knowledge import compare_groups, tail_noise
from hpclab.catalog.project_config import ProjectConfig
from hpclab.catalog.stats import compare
from hpclab.catalog.verdicts import judge, smallest_permutation_p

CONFIG = ProjectConfig()
SETTINGS = Settings(supported_at=1.0, refuted_at=-1.0, alpha=0.05, level=0.95, min_seeds=3)


def _member(
    run: str,
    config: Mapping[str, object],
    *,
    seed: int,
    status: str = "completed",
    code: str | None = "c0de" * 4,
    data: tuple[tuple[str, str], ...] = (),
    created: str | None = None,
) -> Member:
    import json

    feats = [(k, json.dumps(v), float(v) if isinstance(v, (int, float)) else None)
             for k, v in config.items()]  # fmt: skip
    feats.append(("seed", json.dumps(seed), float(seed)))
    feats.append(("hpclab.parent", json.dumps("x"), None))  # ignored: bookkeeping
    return Member(run, status, created or run, feats, code, data)


BASE = {"optim.lr": 0.1, "model.width": 64, "optim.name": "adam"}


# -- groups ---------------------------------------------------------------------------------
def test_one_sample_per_seed_reruns_and_repros_are_reproductions() -> None:
    members = [
        _member("r1", BASE, seed=0),
        _member("r2", BASE, seed=1),
        _member("r3", BASE, seed=0),  # a rerun of seed 0, later
        _member("r4", BASE, seed=0),  # a repro
        _member("r5", BASE, seed=2, status="running"),
    ]
    g = group_runs(members, CONFIG)
    assert len(g.groups) == 1
    (group,) = g.groups.values()
    assert sorted(group.samples.values()) == ["r1", "r2"]
    assert [(g.roles[r].role, g.roles[r].of_run) for r in ("r1", "r3", "r4", "r5")] == [
        ("sample", None),
        ("reproduction", "r1"),
        ("reproduction", "r1"),
        ("pending", None),
    ]


def test_the_earliest_completed_run_of_a_seed_is_its_sample() -> None:
    # r2 was created first but failed; the later completed r9 is the sample
    members = [
        _member("r2", BASE, seed=0, status="failed", created="2026-01-01"),
        _member("r9", BASE, seed=0, created="2026-01-02"),
        _member("r5", BASE, seed=0, created="2026-01-03"),
    ]
    g = group_runs(members, CONFIG)
    assert g.roles["r9"].role == "sample" and g.roles["r5"].of_run == "r9"


def test_code_and_data_split_groups_and_labels_say_why() -> None:
    members = [
        _member("a0", BASE, seed=0, code="aaaa1111" * 2),
        _member("a1", BASE, seed=1, code="aaaa1111" * 2),
        _member("b0", BASE, seed=0, code="bbbb2222" * 2),  # model.py edited between tasks
        _member("d0", BASE, seed=0, code="aaaa1111" * 2, data=(("train", "dddd" * 16),)),
    ]
    g = group_runs(members, CONFIG)
    assert len(g.groups) == 3
    label = {r: g.groups[g.roles[r].group_id].label for r in ("a0", "b0", "d0")}
    assert len(set(label.values())) == 3  # never the same label for different groups
    assert "code=aaaa1111" in label["a0"] and "code=bbbb2222" in label["b0"]
    assert "data.train=dddddddd" in label["d0"]
    for text in label.values():
        assert not any(len(w) == 12 and all(c in "0123456789abcdef" for c in w)
                       for w in text.split())  # fmt: skip


def test_labels_are_config_diffs_against_the_most_common_values() -> None:
    lr_03 = {**BASE, "optim.lr": 0.03}
    lr_03_wide = {**BASE, "optim.lr": 0.03, "model.width": 128}
    members = [
        _member("base0", BASE, seed=0),
        _member("base1", BASE, seed=1),
        _member("x0", lr_03, seed=0),
        _member("y0", lr_03_wide, seed=0),
        _member("z0", {**BASE, "optim.name": "sgd"}, seed=0),
    ]
    g = group_runs(members, CONFIG)
    label = {r: g.groups[g.roles[r].group_id].label for r in ("base0", "x0", "y0", "z0")}
    assert label["x0"] == "optim.lr=0.03"
    assert label["y0"] == "model.width=128 optim.lr=0.03"  # both set lr=0.03: not one row
    assert label["z0"] == "optim.name=sgd"  # strings unquoted
    # the baseline group: its own values of the paths the others vary
    assert label["base0"] == "model.width=64 optim.lr=0.1 optim.name=adam"
    x, y = (g.groups[g.roles[r].group_id] for r in ("x0", "y0"))
    assert pair_labels(x, y) == ("model.width=64", "model.width=128")


def test_a_project_baseline_run_sets_what_labels_are_diffs_against() -> None:
    members = [_member("base0", BASE, seed=0), _member("x0", {**BASE, "optim.lr": 0.03}, seed=0)]
    members += [_member(f"x{i}", {**BASE, "optim.lr": 0.03}, seed=i) for i in (1, 2)]
    cfg = dataclasses.replace(CONFIG, baseline_run="x0")
    g = group_runs(members, cfg)
    assert g.groups[g.roles["base0"].group_id].label == "optim.lr=0.1"


def test_seed_keys_match_leaf_names_and_globs() -> None:
    cfg = dataclasses.replace(CONFIG, seed_keys=("seed", "data.*_seed"))
    a = _member("a", {**BASE, "data.shuffle_seed": 1}, seed=0)
    b = _member("b", {**BASE, "data.shuffle_seed": 2}, seed=1)
    g = group_runs([a, b], cfg)
    assert len(g.groups) == 1 and len(next(iter(g.groups.values())).samples) == 2


def test_members_given_their_kept_features_group_as_members_without() -> None:
    """The knowledge layer hands each run's features with features.ignore already applied
    (``Member.kept``): the grouping is the same as matching them here, a run whose only
    features are ignored included (it has a config: not a group of its own)."""
    cfg = dataclasses.replace(CONFIG, feature_ignore=("hpclab", "data.note"))
    members = [
        _member("a0", BASE, seed=0),
        _member("a1", {**BASE, "data.note": "x"}, seed=1),  # ignored path: same group
        _member("b0", {**BASE, "optim.lr": 0.5}, seed=0),
        _member("a2", BASE, seed=0),  # a rerun of seed 0
        Member("n0", "completed", "n0", [("hpclab.parent", '"x"', None)], None, ()),
        Member("e0", "completed", "e0", [], None, ()),  # no config at all
    ]
    ignored = cfg.feature_ignore
    pre = [
        dataclasses.replace(
            m, kept=[f for f in m.features if not any(f[0] == p or f[0].startswith(p + ".")
                                                      for p in ignored)]
        )
        for m in members
    ]  # fmt: skip
    plain, given = group_runs(members, cfg), group_runs(pre, cfg)
    assert given.roles == plain.roles
    assert {k: (g.config, g.members, g.samples, g.label) for k, g in given.groups.items()} == {
        k: (g.config, g.members, g.samples, g.label) for k, g in plain.groups.items()
    }
    assert plain.roles["a1"].group_id == plain.roles["a0"].group_id
    assert plain.roles["a2"].role == "reproduction"
    assert plain.roles["n0"].group_id != plain.roles["e0"].group_id
    assert "no config" not in plain.groups[plain.roles["n0"].group_id].label
    assert "no config" in plain.groups[plain.roles["e0"].group_id].label


# -- verdicts ---------------------------------------------------------------------------------
def test_the_smallest_permutation_p_makes_3_vs_3_too_few_seeds() -> None:
    assert smallest_permutation_p(3, 3) == pytest.approx(0.1)
    assert smallest_permutation_p(4, 4) == pytest.approx(2 / 70)
    a, b = [1.0, 1.1, 0.9], [0.5, 0.55, 0.45]  # clearly apart: Welch p ~ 0.002
    c = compare(a, b)
    assert c.p_welch is not None and c.p_welch < 0.01
    j = judge(c, "minimize", -1.0, c.p_permutation, alpha=0.05, min_seeds=3)
    assert j.verdict == "too few seeds" and "cannot go below p=0.1" in j.reason


def test_tests_disagree_is_never_significant() -> None:
    c = compare([1.0, 1.1, 0.9, 1.0, 1.2], [0.5, 0.55, 0.45, 0.5, 0.6])
    c = dataclasses.replace(c, p_welch=0.001, p_permutation=0.2)
    j = judge(c, "minimize", -1.0, 0.2, alpha=0.05, min_seeds=3)
    assert j.verdict == "tests disagree" and j.agreement == 0.5
    assert "Welch p=0.001" in j.reason and "permutation p=0.2" in j.reason


# -- evidence ---------------------------------------------------------------------------------
# A 4-seed parent group P (val/loss 1.0, 1.1, 0.9, 1.0) and a 4-seed child group C whose
# hyperparameter differs (0.70, 0.75, 0.65, 0.70), other seeds (unpaired). Minimize:
#   delta = 1.0 - 0.7 = 0.3; pooled sd = sqrt((3 * 0.02/3 + 3 * 0.005/3) / 6) = 0.0645497
#   J = 1 - 3 / (4 * 8 - 9) = 20/23; scale = pooled / J = 0.0742322; nd = Hedges' g = 4.0414
#   se(g) = sqrt(8/16 + g^2/16) = 1.1300; every C below every P: exact permutation
#   p = 2 / C(8, 4) = 0.028571; n_confidence = 4/5; agreement 1; no curve noise:
#   stability 1 -> confidence 0.8; one unit of weight 1: E = 0.8 g, se(E) = 0.8 se(g)
P_VALUES = [1.0, 1.1, 0.9, 1.0]
C_VALUES = [0.70, 0.75, 0.65, 0.70]


def _project(
    children: Sequence[Sequence[float]],
    parent: Sequence[float] = P_VALUES,
    *,
    child_seed0: int = 10,
    repro: float | None = None,
) -> tuple[Context, dict[str, float]]:
    values: dict[str, float] = {}
    members = []
    for i, v in enumerate(parent):
        members.append(_member(f"p{i}", BASE, seed=i))
        values[f"p{i}"] = v
    for k, vals in enumerate(children):
        cfg = {**BASE, "optim.lr": 0.01 * (k + 1)}
        for i, v in enumerate(vals):
            members.append(_member(f"c{k}{i}", cfg, seed=child_seed0 + i))
            values[f"c{k}{i}"] = v
    if repro is not None:  # a later run of the first child's seed (a rerun)
        members.append(_member("c0r", {**BASE, "optim.lr": 0.01}, seed=child_seed0))
        values["c0r"] = repro
    grouping = group_runs(members, CONFIG)

    def value(run: str, metric: str, aggregation: str | None, direction: str) -> float | None:
        return values.get(run) if metric == "val/loss" else None

    ctx = Context(
        grouping,
        {m.run_id: m.status for m in members},
        value,
        lambda run, metric: 0.0,
        lambda run: "p0" if run.startswith("c") else None,
        lambda run: "p0",
        lambda metric: "minimize",
        lambda a, b, pairs: compare_groups(a, b, pairs, 0.95),
    )
    return ctx, values


def test_evidence_unit_is_a_comparison_of_groups_matching_the_hand_computed_case() -> None:
    ctx, _ = _project([C_VALUES])
    h = Hypothesis("h", "lower lr helps", (Target("val/loss"),))
    linked = ["c00", "c01", "c02", "c03"]
    units, verdict = evaluate(h, linked, ctx, SETTINGS)
    assert len(units) == 1  # one unit per comparison, not one per run
    (u,) = units
    assert sorted(u.baseline_runs) == ["p0", "p1", "p2", "p3"]  # the whole parent group
    assert (u.n, u.n_baseline, u.paired) == (4, 4, False)
    pooled = math.sqrt((3 * np.var(P_VALUES, ddof=1) + 3 * np.var(C_VALUES, ddof=1)) / 6)
    assert u.delta == pytest.approx(0.3)
    j = 1 - 3 / (4 * 8 - 9)
    assert u.scale == pytest.approx(pooled / j) and u.scale_kind == "pooled_sd"
    g = j * 0.3 / pooled
    assert u.normalized_delta == pytest.approx(g) == pytest.approx(-u.hedges_g)
    ref = sp.ttest_ind(C_VALUES, P_VALUES, equal_var=False)
    assert u.p_welch == pytest.approx(ref.pvalue)
    assert u.p_permutation == pytest.approx(2 / 70)
    assert u.verdict == "better" and u.p_holm == pytest.approx(2 / 70)
    assert (u.n_confidence, u.agreement, u.stability) == (pytest.approx(0.8), 1.0, 1.0)
    assert u.ci_low is not None and u.ci_high is not None and 0 < u.ci_low < 0.3 < u.ci_high
    se = math.sqrt(8 / 16 + g * g / 16)
    assert u.se == pytest.approx(se)
    assert verdict.evidence == pytest.approx(0.8 * g) == pytest.approx(u.contribution)
    assert verdict.evidence_low == pytest.approx(0.8 * g - 1.959964 * 0.8 * se, rel=1e-6)
    assert verdict.status == "Supported" and verdict.n_for == 1
    assert "4 vs 4 seeds" in verdict.reason and "95% CI" in verdict.reason
    assert "Welch p=" in verdict.reason and "permutation p=0.029" in verdict.reason


def test_more_seeds_or_groups_do_not_grow_the_evidence() -> None:
    h = Hypothesis("h", "t", (Target("val/loss"),))
    ctx, _ = _project([C_VALUES])
    _, one = evaluate(h, [f"c0{i}" for i in range(4)], ctx, SETTINGS)
    ctx2, _ = _project([C_VALUES, C_VALUES])  # a second child group, the same values
    units, two = evaluate(h, [f"c{k}{i}" for k in range(2) for i in range(4)], ctx2, SETTINGS)
    assert len(units) == 2 and sum(u.weight for u in units) == pytest.approx(1.0)
    assert two.evidence == pytest.approx(one.evidence)  # a mean: a sum would double it
    assert sum(u.contribution for u in units) == pytest.approx(two.evidence)


def test_paired_seeds_are_reported_but_welch_and_permutation_decide() -> None:
    ctx, _ = _project([C_VALUES], child_seed0=0)  # the children reuse the parent's seeds
    h = Hypothesis("h", "t", (Target("val/loss"),))
    (u,), _ = evaluate(h, [f"c0{i}" for i in range(4)], ctx, SETTINGS)
    assert u.paired
    d = np.array(C_VALUES) - np.array(P_VALUES)
    assert u.p_paired_t == pytest.approx(sp.ttest_rel(C_VALUES, P_VALUES).pvalue)
    assert u.p_paired_permutation == pytest.approx(2 / 16)  # every d < 0: 2 of 2^4 flips
    assert d.max() < 0 and u.verdict == "better"  # decided by Welch + permutation


def test_two_against_three_seeds_is_too_few_never_significant() -> None:
    ctx, _ = _project([[0.5, 0.52]], parent=[1.0, 1.1, 0.9])
    h = Hypothesis("h", "t", (Target("val/loss"),))
    (u,), verdict = evaluate(h, ["c00", "c01"], ctx, SETTINGS)
    assert u.p_welch is not None and u.p_welch < 0.05  # Welch alone would say significant
    assert u.verdict == "too few seeds" and verdict.status == "Inconclusive"
    assert "too few seeds" in verdict.reason and "2 vs 3" in verdict.reason


def test_reproductions_are_not_samples_in_evidence() -> None:
    h = Hypothesis("h", "t", (Target("val/loss"),))
    ctx, _ = _project([C_VALUES])
    (plain,), _ = evaluate(h, [f"c0{i}" for i in range(4)], ctx, SETTINGS)
    ctx, _ = _project([C_VALUES], repro=5.0)  # a wild rerun of seed 10
    (u,), _ = evaluate(h, [*(f"c0{i}" for i in range(4)), "c0r"], ctx, SETTINGS)
    assert u.n == 4 and "c0r" not in u.runs
    assert u.value == pytest.approx(plain.value) == pytest.approx(np.mean(C_VALUES))


def test_weights_split_over_targets_and_units() -> None:
    ctx, _ = _project([C_VALUES, C_VALUES])
    h = Hypothesis("h", "t", (Target("val/loss", weight=3.0), Target("val/acc", weight=1.0)))
    units, _ = evaluate(h, [f"c{k}{i}" for k in range(2) for i in range(4)], ctx, SETTINGS)
    assert [(u.metric, u.weight) for u in units] == [("val/loss", 0.375), ("val/loss", 0.375)]


def test_baseline_best_root_and_override() -> None:
    ctx, _ = _project([C_VALUES, [0.9, 0.95, 0.85, 0.9]])
    best = Hypothesis("h", "t", (Target("val/loss"),), baseline="best")
    units, _ = evaluate(best, [f"c1{i}" for i in range(4)], ctx, SETTINGS)
    # the best group not linked: c0 (mean 0.7)
    assert [u.baseline_runs for u in units] == [["c00", "c01", "c02", "c03"]]
    assert units[0].delta == pytest.approx(0.7 - 0.9) and units[0].verdict == "worse"
    forced = Hypothesis("h", "t", (Target("val/loss"),), status="Refuted")
    _, v = evaluate(forced, [f"c0{i}" for i in range(4)], ctx, SETTINGS)
    assert (v.status, v.computed_status) == ("Refuted", "Supported")
    assert evaluate(forced, [], ctx, SETTINGS)[1].computed_status == "Proposed"


# -- stability ----------------------------------------------------------------------------------
def test_stability_uses_the_last_tenth_of_steps_with_at_least_three_points() -> None:
    steps = np.arange(100, dtype=float)
    values = 0.1 + 0.9 * np.exp(-steps / 10)  # a first drop ...
    values[90:] += 0.01 * (-1.0) ** np.arange(10)  # ... then noise of +-0.01
    pts = np.column_stack([steps, values])
    window = values[90:]  # steps >= 99 - 0.1 * 99 = 89.1
    expect = np.std(np.diff(window), ddof=1) / math.sqrt(2)
    assert tail_noise(pts, 0.1) == pytest.approx(expect)
    # 20 evaluations 5 steps apart: the window (>= 85.5) holds 2 points: the last 3 count
    sparse = pts[::5]
    expect = np.std(np.diff(sparse[-3:, 1]), ddof=1) / math.sqrt(2)
    assert tail_noise(sparse, 0.1) == pytest.approx(expect)
    # the whole curve's noise would be dominated by the drop
    assert tail_noise(sparse, 1.0) > 4 * tail_noise(sparse, 0.1)
    assert tail_noise(pts[:2], 0.1) == 0.0


def test_agreement_needs_both_deciding_tests() -> None:
    c = compare([1.0] * 4, [2.0] * 4)  # no spread: no Welch, a permutation p of 2/70
    assert c.p_welch is None and c.p_permutation == pytest.approx(2 / 70)
    j = judge(c, "minimize", -1.0, c.p_permutation, alpha=0.05, min_seeds=3)
    # the permutation test alone is valid (and rejects), but nothing confirms it
    assert j.agreement == 0.5 and j.verdict == "better"


def test_holm_runs_over_the_family_and_the_unshown_pairs() -> None:
    from hpclab.catalog.verdicts import judge_family

    far = compare([1.0, 1.1, 0.9, 1.0, 1.05], [2.0, 2.1, 1.9, 2.0, 2.05])  # perm. p 2/252
    few = compare([1.0, 1.1], [2.0, 2.1, 1.9])
    items = [(far, "minimize", -1.0), (far, "minimize", -1.0), (few, "minimize", -1.0)]
    judged = judge_family(items, alpha=0.05, min_seeds=3)
    # the 2-vs-3 comparison can never reject: not counted; m = 2
    assert [j.p_holm for j in judged] == [pytest.approx(4 / 252)] * 2 + [None]
    assert [j.verdict for j in judged] == ["better", "better", "too few seeds"]
    assert "over 2" in judged[0].reason
    # four unshown pairs of the sweep's groups (vs-best chosen after the data): m = 6
    judged = judge_family(items[:1], alpha=0.05, min_seeds=3, untested=4)
    assert judged[0].p_holm == pytest.approx(5 * 2 / 252) and judged[0].verdict == "better"
    # m = 7: 7 x 2/252 = 0.056 >= alpha: nothing in this family can be significant
    judged = judge_family(items[:1], alpha=0.05, min_seeds=3, untested=6)
    assert judged[0].verdict == "too few seeds" and "for 7 comparisons" in judged[0].reason


def test_labels_never_collide_on_look_alike_values_or_data() -> None:
    members = [
        _member("n0", {**BASE, "optim.lr": 0.03}, seed=0),
        _member("s0", {**BASE, "optim.lr": "0.03"}, seed=0),  # a string that reads as 0.03
        _member("b0", BASE, seed=0),
        _member("b1", BASE, seed=1),
    ]
    g = group_runs(members, CONFIG)
    label = {r: g.groups[g.roles[r].group_id].label for r in ("n0", "s0")}
    assert label == {"n0": "optim.lr=0.03", "s0": 'optim.lr="0.03"'}
    a, x, y = ("aaaa1111" * 2, ("train", "x" * 64), ("train", "y" * 64))
    members = [
        _member("ax", BASE, seed=0, code=a, data=(x,)),
        _member("ay", BASE, seed=0, code=a, data=(y,)),
        _member("bx", BASE, seed=0, code="bbbb2222" * 2, data=(x,)),
        _member("a_", BASE, seed=0, code=a),  # no data set at all
    ]
    g = group_runs(members, CONFIG)
    labels = [g.groups[g.roles[r].group_id].label for r in ("ax", "ay", "bx", "a_")]
    assert len(set(labels)) == 4 and not any("data=none" in t for t in labels)
    assert "data.train=xxxxxxxx" in labels[0] and "~data.train" in labels[3]


def test_seed_0_and_seed_0_0_are_one_seed() -> None:
    members = [_member("i", BASE, seed=0), _member("f", BASE, seed=0)]
    members[1].features[-2] = ("seed", "0.0", 0.0)  # type: ignore[index]
    g = group_runs(members, CONFIG)
    assert g.roles["i"].role == "reproduction" and g.roles["i"].of_run == "f"  # f first


def test_one_value_on_a_side_still_gives_a_unit_without_a_standard_error() -> None:
    ctx, _ = _project([[0.5, 0.52]], parent=[1.0])  # 2 vs 1: J has no degree of freedom
    h = Hypothesis("h", "t", (Target("val/loss"),))
    (u,), verdict = evaluate(h, ["c00", "c01"], ctx, SETTINGS)
    assert u.scale_kind == "pooled_sd" and u.se is None and u.verdict == "too few seeds"
    ss = 2 * np.var([0.5, 0.52])  # squared deviations; the single baseline value adds none
    assert u.scale == pytest.approx(math.sqrt(ss / (3 - 2)))  # pooled sd, n_a + n_b - 2 df
    assert verdict.evidence_low is None and verdict.status == "Inconclusive"
