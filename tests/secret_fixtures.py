"""A git repository holding every kind of secret the scanner knows, committed, in the
uncommitted diff and untracked, for the leak tests of test_secrets and test_restore.

Every value is built from pieces here and is obviously fake ("Fake", "Hpclab"), so this
file itself does not trip secret scanners; each is unique to where it is placed (a tag
letter: C committed, R committed then removed, D in the diff, U untracked), so a leak
says where it came from.
"""

from __future__ import annotations

import gzip
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

from helpers import git, write

B64 = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ9876543210"


def _fill(start: str, n: int, chars: str = B64) -> str:
    """``start`` padded to ``n`` characters from ``chars`` (deterministic, not sequential)."""
    out = start + chars * ((n // len(chars)) + 1)
    return out[:n]


def fake_secrets(tag: str) -> dict[str, str]:
    """One obviously fake value of each kind, unique to ``tag`` (an upper-case letter)."""
    t = tag
    return {
        "aws-access-key": "AKIA" + f"FAKE{t}HPCLAB{t}TEST",
        "aws-secret-key": _fill(f"fake{t}Secret" + "AccessKey" + "Hpclab", 40),
        "password": "hunter2" + t.lower() + "x",
        "github-token": "ghp_" + _fill(f"FakeHpclab{t}Token", 36),
        "gitlab-token": "glpat-" + f"FakeHpclab{t}Token2024",
        "slack-token": "xoxb-" + "1029384756-" + "5647382910123-" + f"FakeHpclab{t}Slack",
        "hf-token": "hf_" + _fill(f"FakeHpclab{t}HuggingFace", 34),
        "openai-key": "sk-" + "proj-" + _fill(f"Fake0Hpclab{t}OpenAI", 40),
        "basic-auth": "pa55w0rd" + t,
        "api-key": _fill(f"Zq8Xk2Lm9Pw4{t}", 26),
        "high-entropy-secret": _fill(f"Rt7Vb3Nc6Hy1{t}", 28, B64[::-1]),
        "private-key": _fill("MIIEpAIBAAKCAQEA" + f"fakeHpclab{t}", 64),
    }


def key_block(s: dict[str, str], kind: str = "RSA") -> list[str]:
    """A PEM private key block (fake body lines from ``s``)."""
    body = [s["private-key"], _fill(s["private-key"][::-1], 64), "Zm9v" + s["private-key"][16:40]]
    label = f"{kind} PRIVATE KEY" if kind else "PRIVATE KEY"
    return [f"-----BEGIN {label}-----", *body, f"-----END {label}-----"]


def python_lines(s: dict[str, str]) -> list[str]:
    """Python assignments holding each secret of ``s`` (rule -> value)."""
    return [
        f'AWS_ACCESS_KEY_ID = "{s["aws-access-key"]}"',
        f'AWS_SECRET_ACCESS_KEY = "{s["aws-secret-key"]}"',
        f'token = "{s["github-token"]}"',
        f'GITLAB = "{s["gitlab-token"]}"',
        f'SLACK = "{s["slack-token"]}"',
        f'HF = "{s["hf-token"]}"',
        f'OPENAI = "{s["openai-key"]}"',
        f'DATABASE_URL = "postgres://u:{s["basic-auth"]}@db/x"',
        f'api_key = "{s["api-key"]}"',
        f'MY_TOKEN = "{s["high-entropy-secret"]}"',
        'KEY = """',
        *key_block(s),
        '"""',
    ]


def yaml_lines(s: dict[str, str]) -> list[str]:
    return [f"password: {s['password']}", f"aws_secret_access_key: {s['aws-secret-key']}"]


def rules_of(lines: list[str], s: dict[str, str]) -> dict[int, str]:
    """1-based line number -> rule, for each line of ``lines`` holding a value of ``s``
    (every line of a key block, BEGIN to END, is a private-key line)."""
    out = {}
    inside = False
    for i, line in enumerate(lines, start=1):
        inside = inside or ("BEGIN" in line and "PRIVATE KEY" in line)
        if inside:
            out[i] = "private-key"
            inside = not ("END" in line and "PRIVATE KEY" in line)
            continue
        for rule, value in s.items():
            if rule != "private-key" and value in line:
                out[i] = rule
    return out


def service_account_json() -> str:
    """A (fake) service-account key, as a cloud console downloads it."""
    key = "\n".join(key_block(fake_secrets("S"), "")) + "\n"
    return json.dumps({
        "type": "service" + "_account", "project_id": "fake-project",
        "private_key_id": _fill("fakeKeyIdHpclab", 40, "0123456789abcdef"),
        "private_key": key, "client_email": "x@fake.iam.example",
    }, indent=2)  # fmt: skip


# Untracked files that are credentials by nature: never archived, whatever they hold.
CREDENTIAL_FILES = (
    "id_ecdsa", "keys/id_dsa", ".git-credentials", ".npmrc", ".pypirc", ".dockercfg",
    ".docker/config.json", "secrets.yaml", "conf/secrets.yml", "secret-token.json",
    ".kube/config", ".ssh/config", "app.keystore", ".aws/credentials", ".htpasswd",
    "infra/terraform.tfstate", "infra/terraform.tfstate.backup",
)  # fmt: skip


def credential_payload(rel: str) -> str:
    return f"credential-file-payload-{rel.replace('/', '-')}-Fake\n"


def lines_text(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def secret_repo(base: Path) -> Path:
    """The repository: committed secrets (C; R is removed in the diff), a dirty tree
    adding D secrets, untracked files with U secrets and credential files."""
    repo = base / "secret repo"
    repo.mkdir()
    git(repo, "init", "-q")
    c, r, d, u = (fake_secrets(t) for t in "CRDU")
    write(repo / "committed.py", lines_text(python_lines(c)))
    settings = ["name: demo", *yaml_lines(c), f"old_token: {r['github-token']}", "epochs: 1"]
    write(repo / "settings.yaml", lines_text(settings))
    write(repo / "train.py", "import os\n\n\ndef main():\n    print('train')\n")
    write(repo / "config.yaml", "lr: 0.1\nbatch: 8\n")
    write(repo / ".gitignore", "*.log\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "initial")
    # the diff: added lines with D secrets; settings.yaml changes beside C secrets
    train = ["import os", "", *python_lines(d), "", "def main():", "    print('train')"]
    write(repo / "train.py", lines_text(train))
    write(repo / "config.yaml", lines_text(["lr: 0.1", *yaml_lines(d), "batch: 8"]))
    settings = ["name: demo", *yaml_lines(c), "epochs: 2"]
    write(repo / "settings.yaml", lines_text(settings))
    # untracked
    allowed = 'demo_password = "not-a-real-one"  # hpclab: allow-secret'
    write(repo / "notes" / "untracked.py", lines_text([*python_lines(u), allowed]))
    write(repo / "untracked.yaml", lines_text(yaml_lines(u)))
    ssh = fake_secrets("K")
    write(repo / "deploy_key.txt", lines_text(key_block(ssh, "OPENSSH")))
    for rel in CREDENTIAL_FILES:
        write(repo / rel, credential_payload(rel))
    write(repo / "sa-key.json", service_account_json())  # a credential by its content
    return repo


def secret_values(*tags: str) -> dict[str, str]:
    """Every secret value of ``tags`` (key lines included): description -> value."""
    out = {}
    for tag in tags:
        for rule, value in fake_secrets(tag).items():
            out[f"{tag}:{rule}"] = value
        for i, line in enumerate(key_block(fake_secrets(tag))[1:-1]):
            out[f"{tag}:key line {i}"] = line
    return out


def find_line(path: Path, value: str) -> int:
    """The 1-based line of ``path`` holding ``value``."""
    lines = path.read_text().split("\n")
    return next(i for i, line in enumerate(lines, start=1) if value in line)


def store_blobs(root: Path) -> Iterator[tuple[str, bytes]]:
    """Every file under ``root``, archives and gzip files also decompressed: what a leak
    check must search."""
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        yield str(path), data
        if path.name.endswith(".tar.gz"):
            with tarfile.open(path) as tar:
                for m in tar.getmembers():
                    yield f"{path}:{m.name}", m.name.encode() + m.linkname.encode()
                    f = tar.extractfile(m) if m.isfile() else None
                    if f is not None:
                        yield f"{path}:{m.name}", f.read()
        elif path.name.endswith(".gz"):
            yield f"{path}:gunzip", gzip.decompress(data)
