"""One file of the store corrupted at a time, every kind of file, deterministic mutations
(truncated, binary garbage, another JSON type, huge integers, hostile YAML): ``hpclab
index``, ``runs list`` and ``status`` never show a traceback or hang, and the runs the
corruption did not touch are still indexed and listed (issue 20)."""

from __future__ import annotations

import json
import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from helpers import hpclab_cli

import hpclab
from hpclab.store import Store

Mutation = Callable[[bytes, random.Random], bytes]


def _truncate(raw: bytes, rng: random.Random) -> bytes:
    return raw[: rng.randrange(0, max(1, len(raw)))]


def _garbage(raw: bytes, rng: random.Random) -> bytes:
    return bytes(rng.randrange(256) for _ in range(max(8, len(raw) // 2)))


def _other_type(raw: bytes, rng: random.Random) -> bytes:
    return rng.choice([b"[1, 2, 3]", b'"a string"', b"null", b"42", b"{}"])


def _huge_numbers(raw: bytes, rng: random.Random) -> bytes:
    return re.sub(rb"(?<![\w.])\d+(?![\w.])", str(2**70).encode(), raw)


def _swap_types(raw: bytes, rng: random.Random) -> bytes:
    """Every JSON/YAML value of one kind turned into another (numbers to text, text to lists)."""
    text = raw.decode("utf-8", "replace")
    text = re.sub(r'": "([^"]*)"', r'": ["\1", {"x": 1}]', text)
    return re.sub(r"(: )(-?\d+(\.\d+)?)", r'\1"not a number"', text).encode()


def _hostile_yaml(raw: bytes, rng: random.Random) -> bytes:
    return rng.choice(
        [
            b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
            b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c]\n",
            b"x: !!python/object/apply:os.system ['echo pwned']\n",
            b"[" * 5000 + b"]" * 5000,
            b"key: [unclosed\n",
        ]
    )


MUTATIONS: dict[str, Mutation] = {
    "truncate": _truncate,
    "garbage": _garbage,
    "other-type": _other_type,
    "huge-numbers": _huge_numbers,
    "swap-types": _swap_types,
    "hostile-yaml": _hostile_yaml,
}


def _base_store(root: Path) -> tuple[Store, list[str]]:
    """Three runs (metrics, notes, an artifact-free snapshot-free record), a project.yaml
    with a key metric, a dag.yaml, a hypothesis and a sweep file."""
    ids = []
    for i in range(3):
        run = hpclab.init("fz", {"optim": {"lr": 10.0 ** -(i + 2)}, "seed": i}, store=root)
        for step in range(5):
            run.log({"loss": 1.0 / (step + 1 + i)}, step=step)
        run.finish()
        ids.append(run.id)
    store = Store(root)
    store.project_yaml("fz").write_text(
        yaml.safe_dump({"key_metrics": [{"name": "loss", "direction": "minimize"}]})
    )
    store.run_paths("fz", ids[0]).notes_yaml.write_text(yaml.safe_dump({"tags": ["A"]}))
    store.dag_yaml("fz").write_text(yaml.safe_dump({"parents": {ids[1]: ids[0]}}))
    store.hypotheses_dir("fz").mkdir(parents=True, exist_ok=True)
    store.hypothesis_yaml("fz", "h1").write_text(
        yaml.safe_dump({"title": "t", "metrics": [{"name": "loss"}], "runs": ids[:2]})
    )
    store.sweeps_dir("fz").mkdir(parents=True, exist_ok=True)
    store.sweep_json("fz", "sweep-20260101-000000-abcd").write_text(
        json.dumps(
            {
                "id": "sweep-20260101-000000-abcd",
                "project": "fz",
                "launcher": "local",
                "n_points": 1,
                "created_at": "2026-01-01T00:00:00+00:00",
                "points": [{"index": 0, "run_id": ids[2], "overrides": ["seed=2"]}],
            }
        )
    )
    return store, ids


def _targets(store: Store, victim: str) -> dict[str, Path]:
    """Every kind of file the store holds, the run-level ones of ``victim``."""
    paths = store.run_paths("fz", victim)
    out = {
        "run.json": paths.run_json,
        "config.yaml": paths.config_yaml,
        "notes.yaml": store.run_paths("fz", victim).notes_yaml,
        "metrics commit (zarr.json)": paths.metrics_commit,
        "project.yaml": store.project_yaml("fz"),
        "dag.yaml": store.dag_yaml("fz"),
        "hypothesis": store.hypothesis_yaml("fz", "h1"),
        "sweep": store.sweep_json("fz", "sweep-20260101-000000-abcd"),
    }
    arrays = sorted(p for p in paths.metrics_zarr.glob("*/zarr.json"))
    if arrays:
        out["array metadata"] = arrays[0]
    for name in ("overrides.yaml",):
        p = paths.dir / name
        if p.exists():
            out[name] = p
    return out


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("fuzz") / "store"
    _, ids = _base_store(root)
    return root, ids


KINDS = [
    "run.json", "config.yaml", "notes.yaml", "metrics commit (zarr.json)", "project.yaml",
    "dag.yaml", "hypothesis", "sweep", "array metadata",
]  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_a_corrupted_file_never_crashes_and_the_other_runs_stay(
    base: tuple[Path, list[str]], tmp_path: Path, kind: str
) -> None:
    root, ids = base
    victim = ids[0]
    rng = random.Random(f"{kind}")  # deterministic per kind
    for name, mutate in MUTATIONS.items():
        copy = tmp_path / name / "store"
        shutil.copytree(root, copy)
        store = Store(copy)
        target = _targets(store, victim)[kind]
        target.write_bytes(mutate(target.read_bytes(), rng))
        where = f"{kind} / {name}"
        for args in (("index",), ("runs", "list", "--json"), ("status",)):
            res = hpclab_cli(copy, *args)  # an exception would be raised here, traceback and all
            assert res.returncode in (0, 1), (where, args, res.stderr[-500:])
            assert "Traceback" not in res.stderr, (where, args)
        listed = hpclab_cli(copy, "runs", "list", "--json")
        if listed.returncode == 0:
            shown = {json.loads(line)["run_id"] for line in listed.stdout.splitlines() if line}
            assert set(ids[1:]) <= shown, (where, shown)  # the untouched runs are there
        else:  # only a store-wide file may stop the listing, with one line naming it
            assert kind in ("project.yaml",) and len(listed.stderr.strip().splitlines()) == 1
