"""Nothing private reaches the website: a run snapshotted from a repository full of
secrets (committed, in the diff, untracked), with secrets in its config, overrides and
error message, and a run whose patch was stored unredacted (an older hpclab) are built
into a site; every file the site holds is searched for every secret value. A project
with ``site: {publish_code: false}`` publishes no code at all."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from helpers import git, write
from secret_fixtures import fake_secrets, python_lines, secret_repo, secret_values

import hpclab
from hpclab.catalog.connect import connect
from hpclab.catalog.indexer import index_store
from hpclab.launch.sweep import PlannedPoint, plan_sweep
from hpclab.site.build import build
from hpclab.site.layout import SiteLayout
from hpclab.store import Store

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture(autouse=True)
def snapshots_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPCLAB_SNAPSHOT_CODE", "1")


def _site_files(site: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in sorted(site.rglob("*")) if p.is_file()]


def test_no_secret_reaches_the_site(weird_tmp_path: Path) -> None:
    repo = secret_repo(weird_tmp_path)
    store = Store(weird_tmp_path / "store")
    cfg = fake_secrets("F")  # in config values, overrides and an error message
    config = {
        "db": {"password": cfg["password"], "url": f"postgres://u:{cfg['basic-auth']}@db/x"},
        "wandb": {"api_key": cfg["api-key"]},
        "hf_token": cfg["hf-token"],
        "tokenizer": {"name": "gpt2"},  # a key that only looks secret stays
        "lr": 0.1,
    }
    plan = plan_sweep(
        store,
        "p",
        [PlannedPoint(0, [f"db.password={cfg['password']}", "lr=0.1"], config)],
        launcher="local",
        meta={"argv": ["hpclab.launch", "-m", f"+github={cfg['github-token']}"]},
    )
    with pytest.raises(RuntimeError):
        with hpclab.Run(
            project="p", config=config, store=store.root, code_dir=repo,
            run_id=plan.points[0].run_id, sweep_id=plan.id,
        ) as run:  # fmt: skip
            run.log({"loss": 1.0}, step=0)
            raise RuntimeError(f"cannot reach https://bob:{cfg['basic-auth']}@host/x")
    # a second group whose config differs only in the password: the password is what
    # sets the groups apart, so it is in their labels (config diffs), and must be redacted
    other = fake_secrets("P")
    with hpclab.Run(
        project="p", config={**config, "db": {**config["db"], "password": other["password"]}},
        store=store.root, code_dir=repo, name="other-password",
    ) as other_run:  # fmt: skip
        other_run.log({"loss": 1.5}, step=0)
    # an older snapshot, stored before patches were redacted: the site scans it again
    old = fake_secrets("O")
    with hpclab.Run(project="p", store=store.root, code_dir=repo, name="old") as old_run:
        old_run.log({"loss": 2.0}, step=0)
    _, paths = store.find_run(old_run.id)
    patch = "".join(f"+{line}\n" for line in python_lines(old))
    paths.code_patch.write_text(
        f"diff --git a/old.py b/old.py\n--- a/old.py\n+++ b/old.py\n"
        f"@@ -0,0 +1,{len(python_lines(old))} @@\n{patch}"
    )
    index_store(store)
    build(store)

    values = secret_values("C", "R", "D", "U", "K", "S", "F", "O")
    values["P:password"] = other["password"]
    files = _site_files(store.site_dir)
    assert any(p.name == f"{old_run.id}.json" and "details" in p.parts for p, _ in files)
    for what, value in values.items():
        for path, data in files:
            assert value.encode() not in data, f"{what} reached the site: {path}"
    layout = SiteLayout(store.site_dir)
    details = json.loads(layout.details_json("p", run.id).read_text())
    assert details["code"]["published"] and "[redacted: " in details["code"]["patch"]
    assert details["code"]["redacted"] > 0
    config_shown = dict(details["config"])
    assert "[redacted" in config_shown["db.password"] and "[redacted" in config_shown["hf_token"]
    assert "gpt2" in config_shown["tokenizer.name"]
    redacted = "db.password=[redacted: secret-key-name] lr=0.1"
    assert details["sweep"]["overrides"] == redacted
    # the first group is the labels' baseline: its own value of the path the other varies
    assert details["seed_group"]["label"] == "db.password=[redacted: secret-key-name]"
    other_details = json.loads(layout.details_json("p", other_run.id).read_text())
    assert other_details["seed_group"]["label"] == "db.password=[redacted: secret-key-name]"
    con = connect(store.root)
    labels = {r[0] for r in con.execute("SELECT label FROM seed_groups").fetchall()}
    assert {cfg["password"], other["password"]} <= {lab.split("=", 1)[-1] for lab in labels}, (
        "the premise: the catalog's labels hold the passwords (the store is private)"
    )
    error = details["run"]["error_message"]
    assert error == "cannot reach https://bob:[redacted: basic-auth]@host/x"
    old_details = json.loads(layout.details_json("p", old_run.id).read_text())
    assert old_details["code"]["patch"].count("[redacted: ") >= 8


def test_a_project_can_keep_its_code_off_the_site(weird_tmp_path: Path) -> None:
    repo = weird_tmp_path / "repo"
    repo.mkdir()
    write(repo / "train.py", "print('hi')\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    write(repo / "train.py", "print('private change')\n")
    store = Store(weird_tmp_path / "store")
    with hpclab.Run(project="p", store=store.root, code_dir=repo) as run:
        run.log({"loss": 1.0}, step=0)
    commit = git(repo, "rev-parse", "HEAD")
    store.project_yaml("p").write_text(yaml.safe_dump({"site": {"publish_code": False}}))
    index_store(store)
    build(store)
    for path, data in _site_files(store.site_dir):
        assert b"private change" not in data and commit.encode() not in data, path
    details = json.loads(SiteLayout(store.site_dir).details_json("p", run.id).read_text())
    assert details["code"] == {"published": False}
    assert not any("git checkout" in c for c in details["restore"])
    # the store keeps it: restore still has the change
    _, paths = store.find_run(run.id)
    assert "private change" in paths.code_patch.read_text()

    store.project_yaml("p").write_text(yaml.safe_dump({"site": {"publish_code": "no"}}))
    from hpclab.catalog.project_config import load_project_config
    from hpclab.errors import ConfigError

    with pytest.raises(ConfigError, match="site.publish_code: expected true or false"):
        load_project_config(store.project_yaml("p"))
