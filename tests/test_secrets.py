"""Secret scanning: nothing private reaches the store, through a real run of a real git
repository holding every kind of secret (committed, in the diff, untracked)."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import git, git_env, write
from secret_fixtures import (
    CREDENTIAL_FILES,
    credential_payload,
    fake_secrets,
    find_line,
    key_block,
    lines_text,
    python_lines,
    rules_of,
    secret_repo,
    secret_values,
    store_blobs,
    yaml_lines,
)

import hpclab
from hpclab.errors import ConfigError
from hpclab.store import Store
from hpclab.tracking.patchtext import iter_sections, split_lines
from hpclab.tracking.secrets import (
    SecretFinding,
    SecretRules,
    is_credential_file,
    redact_patch,
    redact_text,
)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture(autouse=True)
def snapshots_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPCLAB_SNAPSHOT_CODE", "1")


def snapshot_run(store: Path, code_dir: Path) -> tuple[str, dict]:
    with hpclab.Run(project="p", store=store, code_dir=code_dir) as run:
        run.log({"loss": 1.0}, step=0)
    _, paths = Store(store).find_run(run.id)
    return run.id, json.loads(paths.code_json.read_text())


def stored_patch(store: Path, run_id: str) -> str:
    _, paths = Store(store).find_run(run_id)
    return paths.code_patch.read_text()


# -- the whole store -------------------------------------------------------------------


def test_no_secret_value_reaches_the_store(
    weird_tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = secret_repo(weird_tmp_path)
    store = weird_tmp_path / "store"

    run_id, info = snapshot_run(store, repo)

    # C: committed (git holds them: the store has the commit id only), R: committed and
    # removed in the diff, D: added in the diff, U/K/S: untracked files
    values = secret_values("C", "R", "D", "U", "K", "S")
    values |= {f"credential file {rel}": credential_payload(rel) for rel in CREDENTIAL_FILES}
    blobs = list(store_blobs(store))
    assert any("untracked.tar.gz:notes/untracked.py" in where for where, _ in blobs)
    for what, value in values.items():
        for where, data in blobs:
            assert value.encode() not in data, f"{what} leaked into {where}"
    assert info["git"]["commit"] == git(repo, "rev-parse", "HEAD")

    # what was redacted, and where: file, line (in the working tree), rule, source
    found = {(r["path"], r["line"], r["rule"], r["source"]) for r in info["redactions"]}
    d, u = fake_secrets("D"), fake_secrets("U")
    train = (repo / "train.py").read_text().splitlines()
    expected = {("train.py", n, rule, "added") for n, rule in rules_of(train, d).items()}
    untracked = (repo / "notes" / "untracked.py").read_text().splitlines()
    expected |= {("notes/untracked.py", n, rule, "file")
                 for n, rule in rules_of(untracked, u).items()}  # fmt: skip
    expected |= {("deploy_key.txt", n, "private-key", "file") for n in range(1, 6)}
    c = fake_secrets("C")
    expected |= {
        ("settings.yaml", find_line(repo / "settings.yaml", c["password"]), "password", "context"),
        ("settings.yaml", 4, "github-token", "removed"),  # old_token, line 4 of the commit
        ("config.yaml", find_line(repo / "config.yaml", d["password"]), "password", "added"),
    }
    assert expected <= found, expected - found
    rules = {r for _, _, r, _ in found}
    assert {"aws-access-key", "aws-secret-key", "password", "github-token", "gitlab-token",
            "slack-token", "hf-token", "openai-key", "basic-auth", "api-key",
            "high-entropy-secret", "private-key"} <= rules  # fmt: skip

    # markers in the stored patch, which keeps its shape
    patch = stored_patch(store, run_id)
    for rule in ("github-token", "aws-secret-key", "private-key", "password", "basic-auth"):
        assert f"[redacted: {rule}]" in patch
    # credential files by name (and one by content) are skipped, never archived
    reasons = {s["path"]: s["reason"] for s in info["skipped"]}
    for rel in (*CREDENTIAL_FILES, "sa-key.json"):
        assert reasons.get(rel) == "secret", rel
    # the allow-listed line is kept as it was
    _, paths = Store(store).find_run(run_id)
    archived = {where.rsplit(":", 1)[-1]: data for where, data in store_blobs(paths.snapshot_dir)
                if ".tar.gz:" in where}  # fmt: skip
    assert (
        b'demo_password = "not-a-real-one"  # hpclab: allow-secret'
        in archived["notes/untracked.py"]
    )
    # one warning line for the redactions (and one for the skipped files)
    err = [ln for ln in capsys.readouterr().err.splitlines() if "redacted" in ln]
    assert len(err) == 1 and err[0].startswith(
        f"hpclab: code snapshot redacted {len(info['redactions'])} secret(s) in "
    )
    assert "github-token" in err[0] and str(paths.code_json) in err[0]


def test_redacted_patch_still_applies_to_the_commit(weird_tmp_path: Path) -> None:
    repo = weird_tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    write(repo / "train.py", "import os\n\nprint('v1')\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    d = fake_secrets("D")
    write(repo / "train.py", lines_text(["import os", *python_lines(d), "", "print('v2')"]))
    store = weird_tmp_path / "store"

    run_id, info = snapshot_run(store, repo)

    patch_file = Store(store).find_run(run_id)[1].code_patch
    clone = weird_tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True, env=git_env(),
                   capture_output=True)  # fmt: skip
    check = subprocess.run(["git", "apply", "--check", str(patch_file)], cwd=clone,
                           capture_output=True, text=True, env=git_env())  # fmt: skip
    assert check.returncode == 0, check.stderr
    git(clone, "apply", str(patch_file))
    restored = (clone / "train.py").read_text().splitlines()
    original = (repo / "train.py").read_text().splitlines()
    assert len(restored) == len(original)
    lost = {r["line"] for r in info["redactions"]}
    for n, (got, want) in enumerate(zip(restored, original, strict=True), start=1):
        assert (got == want) is (n not in lost), n
        if n in lost:
            assert "[redacted: " in got


# -- user patterns ---------------------------------------------------------------------


def test_hpclabignore_and_project_setting_add_patterns(weird_tmp_path: Path) -> None:
    repo = weird_tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    write(repo / "tracked_scratch.txt", "v1\n")
    write(repo / ".hpclabignore", "scratch/\ntracked_scratch.txt\nsecret: corp-[0-9a-f]{16}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    ours = "corp-" + "0badc0ffee0ddf00"
    theirs = "ACME" + "QWERTYUIOPAS"
    write(repo / "tool.py", f'URL = "https://x/{ours}"\nID = "acme_{theirs}"\n')
    write(repo / "deploy" / "prod.vault", "opaque\n")
    write(repo / "scratch" / "junk.txt", "junk\n")
    write(repo / "tracked_scratch.txt", "v2\n")
    store = weird_tmp_path / "store"
    write(store / "p" / "project.yaml", "secrets:\n  patterns: ['acme_([A-Z]{16})']\n"
                                        "  files: ['*.vault']\n")  # fmt: skip

    run_id, info = snapshot_run(store, repo)

    for where, data in store_blobs(store / "p" / "runs"):
        assert ours.encode() not in data and theirs.encode() not in data, where
    found = {(r["path"], r["line"], r["rule"]) for r in info["redactions"]}
    assert found == {("tool.py", 1, "custom"), ("tool.py", 2, "custom")}
    reasons = {s["path"]: s["reason"] for s in info["skipped"]}
    assert reasons == {"deploy/prod.vault": "secret", "tracked_scratch.txt": "ignored"}
    _, paths = Store(store).find_run(run_id)
    assert "scratch/junk.txt" not in json.loads(paths.code_manifest.read_text())["files"]
    archived = dict((w.rsplit(":", 1)[-1], d) for w, d in store_blobs(paths.snapshot_dir))
    expected = b'URL = "https://x/[redacted: custom]"\nID = "acme_[redacted: custom]"\n'
    assert archived["tool.py"] == expected


@pytest.mark.parametrize(
    ("ignore", "project", "message"),
    [("secret: corp-(unclosed\n", None, "bad secret pattern 'corp-(unclosed'"),
     ("secret: .*\n", None, "matches the empty string"),
     ("", "secrets:\n  pattern: [x]\n", "unknown key 'pattern' (valid: files, patterns)"),
     ("", "secrets:\n  patterns: x\n", "secrets.patterns: expected a list of strings")],
)  # fmt: skip
def test_bad_secret_settings_are_config_errors(
    weird_tmp_path: Path, ignore: str, project: str | None, message: str
) -> None:
    code = weird_tmp_path / "code"
    write(code / "a.py", "a = 1\n")
    write(code / ".hpclabignore", ignore)
    store = weird_tmp_path / "store"
    if project is not None:
        write(store / "p" / "project.yaml", project)
    where = ".hpclabignore" if ignore else "project.yaml"
    with pytest.raises(ConfigError, match=rf"{where}.*{re.escape(message)}"):
        snapshot_run(store, code)


# -- binary and unscannable ------------------------------------------------------------


def test_binary_files_are_scanned_or_left_out(weird_tmp_path: Path) -> None:
    repo = weird_tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    write(repo / "weights.bin", bytes(range(256)) * 4)
    write(repo / "fixture.bin", b"\0\1\2" * 100)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    token = fake_secrets("B")["github-token"]
    write(repo / "weights.bin", bytes(reversed(range(256))) * 4)  # changed, no secret: kept
    write(repo / "fixture.bin", b"\0\1" + f"token={token}".encode() + b"\0\2")
    write(repo / "plot.bin", b"\x89PNG\0\0" + bytes(range(200)))
    write(repo / "cache.gz", gzip.compress(f"token = '{token}'".encode()))
    write(repo / "blob.bin", b"\0" + token.encode() + b"\0")
    store = weird_tmp_path / "store"

    run_id, info = snapshot_run(store, repo)

    reasons = {s["path"]: s["reason"] for s in info["skipped"]}
    assert reasons == {
        "fixture.bin": "secret in binary", "cache.gz": "unscannable (compressed)",
        "blob.bin": "secret in binary",
    }  # fmt: skip
    for where, data in store_blobs(store / "p" / "runs"):
        assert token.encode() not in data, where
    _, paths = Store(store).find_run(run_id)
    patch = paths.code_patch.read_text()
    assert "weights.bin" in patch and "fixture.bin" not in patch
    hunks = patch.count("\nliteral ") + patch.count("\ndelta ")
    assert hunks == 1, "the reverse hunk (the old content) is not stored"
    clone = weird_tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True, env=git_env(),
                   capture_output=True)  # fmt: skip
    git(clone, "apply", "--binary", str(paths.code_patch))
    assert (clone / "weights.bin").read_bytes() == (repo / "weights.bin").read_bytes()
    files = json.loads(paths.code_manifest.read_text())["files"]
    assert "plot.bin" in files and "fixture.bin" not in files


# -- the scanner ---------------------------------------------------------------------------


def test_private_key_block_is_redacted_whole() -> None:
    block = key_block(fake_secrets("P"), "OPENSSH")
    text = lines_text(["before = 1", 'KEY = """', *block, '"""', "after = 2"])

    redacted, findings = redact_text(text, path="deploy.py")

    lines = redacted.splitlines()
    assert len(lines) == len(block) + 4 and lines[0] == "before = 1" and lines[-1] == "after = 2"
    assert lines[2 : 2 + len(block)] == ["[redacted: private-key]"] * len(block)
    assert [f.line for f in findings] == list(range(3, 3 + len(block)))
    one_line = '{"private_key": "' + "\\n".join(block) + '\\n", "x": 1}'
    assert redact_text(one_line)[0] == '{"private_key": "[redacted: private-key]\\n", "x": 1}'
    # a program that only names the header keeps its code
    code = 'HEADER = "-----BEGIN RSA PRIVATE KEY-----"\nif x:\n    parse(x)\n'
    assert redact_text(code, path="k.py")[0].splitlines()[1:] == ["if x:", "    parse(x)"]


def test_allow_comment_and_false_positives_are_kept() -> None:
    gh = fake_secrets("A")["github-token"]
    text = (
        f'token = "{gh}"  # hpclab: allow-secret\n'
        f'token = "{gh}"  // hpclab: allow-secret\n'
        'tokenizer = "meta-llama/Llama-2-7b-hf"\n'
        'auth_method = "oauth2_client_credentials"\n'
        'password = os.environ["DB_PASSWORD"]\n'
        "password: ${DB_PASSWORD}\n"
        "sha = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'\n"
    )
    assert redact_text(text, path="settings.yaml") == (text, [])
    plain = text.replace("  # hpclab: allow-secret", "").replace("  // hpclab: allow-secret", "")
    assert redact_text(plain, path="a.py")[1] == [
        SecretFinding("a.py", 1, "github-token"),
        SecretFinding("a.py", 2, "github-token"),
    ]


def test_redact_patch_keeps_every_hunk_and_header(weird_tmp_path: Path) -> None:
    repo = weird_tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    c, d = fake_secrets("C"), fake_secrets("D")
    old = ["a: 1", *yaml_lines(c), "b: 2", "c: 3", "d: 4", "e: 5", "f: 6", "g: 7", "h: 8"]
    write(repo / "s.yaml", lines_text(old))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    new = ["a: 1", yaml_lines(c)[0], "b: 2", "c: 3", "d: 4", "e: 5", "f: 6", "g: 7",
           *yaml_lines(d), "h: 8"]  # fmt: skip
    write(repo / "s.yaml", lines_text(new))
    raw = subprocess.run(["git", "diff", "HEAD"], cwd=repo, env=git_env(), capture_output=True,
                         text=True, check=True).stdout  # fmt: skip

    redacted, findings = redact_patch(raw)

    for before, after in zip(iter_sections(split_lines(raw)), iter_sections(split_lines(redacted)),
                             strict=True):  # fmt: skip
        assert before.header == after.header
        assert [(h.old_start, h.new_start, h.head, len(h.lines)) for h in before.hunks] == [
            (h.old_start, h.new_start, h.head, len(h.lines)) for h in after.hunks
        ]
    for value in (c["password"], c["aws-secret-key"], d["password"], d["aws-secret-key"]):
        assert value not in redacted
    assert set(findings) >= {
        SecretFinding("s.yaml", 2, "password", "context"),
        SecretFinding("s.yaml", 3, "aws-secret-key", "removed"),  # old-file line
        SecretFinding("s.yaml", new.index(yaml_lines(d)[0]) + 1, "password", "added"),
    }
    assert redact_patch(redacted) == (redacted, []), "redacting twice changes nothing"
    mail = f"Subject: fix\n\nkey: {c['aws-access-key']}\n" + raw
    text, found = redact_patch(mail)
    assert c["aws-access-key"] not in text and text.endswith(redacted)
    assert SecretFinding("", 3, "aws-access-key", "preamble") in found


@pytest.mark.parametrize(
    ("rel", "secret"),
    [("id_ecdsa", True), ("a/id_dsa.pub", True), (".git-credentials", True), (".npmrc", True),
     (".pypirc", True), (".dockercfg", True), ("h/.docker/config.json", True),
     ("secrets.yaml", True), ("k8s/secrets.yml", True), ("secret-key.json", True),
     (".kube/config", True), ("x/.ssh/known_hosts", True), ("app.keystore", True),
     (".aws/credentials", True), (".htpasswd", True), ("terraform.tfstate", True),
     ("terraform.tfstate.backup", True), ("prod.tfstate", True), (".env", True),
     ("docker/config.json", False), ("kube/config", False), ("config.json", False),
     ("secretary.py", False), ("ssh_utils.py", False), ("token.py", False)],
)  # fmt: skip
def test_credential_files_by_name(rel: str, secret: bool) -> None:
    assert is_credential_file(rel) is secret


def test_service_account_key_by_content_and_user_globs() -> None:
    sa = b'{"type": "service_account", "private_key": "x"}'
    assert is_credential_file("gcp.json", sa) and not is_credential_file("gcp.json", b"{}")
    assert not is_credential_file("gcp.txt", sa)
    rules = SecretRules(files=("*.vault", "deploy/prod.ini"))
    assert is_credential_file("a/b.vault", rules=rules)
    assert is_credential_file("x/deploy/prod.ini", rules=rules)
    assert not is_credential_file("prod.ini", rules=rules)
