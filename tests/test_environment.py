"""Environment capture: content, redaction, GPU sources."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hpclab.store.layout import RunPaths, Store
from hpclab.tracking.environment import (
    REDACTED,
    capture_environment,
    installed_packages,
    redact_environ,
    redact_url,
)

REPO = Path(__file__).resolve().parents[1]


def run_paths(tmp_path: Path) -> RunPaths:
    return Store(tmp_path / "we ird 'store'").create_run_dir("proj")


@pytest.mark.parametrize(
    "name",
    ["GITHUB_TOKEN", "hf_token", "AWS_SECRET_ACCESS_KEY", "WANDB_API_KEY", "DB_PASSWORD",
     "MYSQL_PASSWD", "GOOGLE_APPLICATION_CREDENTIALS", "AUTH_HEADER", "Session_Id",
     "SSH_PRIVATE", "cookie_jar", "x_Key_y"],
)  # fmt: skip
def test_secret_names_are_redacted(name: str) -> None:
    assert redact_environ({name: "s3cr3t", "HOME": "/home/me"}) == {
        name: REDACTED,
        "HOME": "/home/me",
    }


def test_plain_values_are_kept_and_sorted() -> None:
    env = {"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": "0,1", "EMPTY": ""}
    out = redact_environ(env)
    assert out == env and list(out) == ["CUDA_VISIBLE_DEVICES", "EMPTY", "PATH"]


def test_url_passwords_are_redacted_in_any_value() -> None:
    env = {
        "PIP_INDEX_URL": "https://bob:hunter2@pypi.internal/simple",
        "MIRRORS": "http://a:p1@x.org/a ftp://b:p2@y.org",
        "UNENCODED_AT": "https://u:p@ss@host.example/path?q=a@b",
        "USER_ONLY": "https://user@host.example/x",
        "SCP_STYLE": "git@github.com:lab/repo.git",
    }
    out = redact_environ(env)
    assert out["PIP_INDEX_URL"] == f"https://bob:{REDACTED}@pypi.internal/simple"
    assert out["MIRRORS"] == f"http://a:{REDACTED}@x.org/a ftp://b:{REDACTED}@y.org"
    assert out["UNENCODED_AT"] == f"https://u:{REDACTED}@host.example/path?q=a@b"
    assert out["USER_ONLY"] == env["USER_ONLY"] and out["SCP_STYLE"] == env["SCP_STYLE"]
    assert "hunter2" not in json.dumps(out) and "p1" not in json.dumps(out)
    assert redact_url("postgres://u:pw@db:5432/x") == f"postgres://u:{REDACTED}@db:5432/x"


def test_values_shaped_like_secrets_are_redacted_whatever_the_name() -> None:
    token = "ghp_" + "FakeTokenForTests" + "0123456789abcdefABC"
    key = "\n".join(["-----BEGIN OPENSSH PRIVATE KEY-----", "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUA",
                     "-----END OPENSSH PRIVATE KEY-----"])  # fmt: skip
    env = {
        "MY_VAR": token, "DEPLOY": key, "JAVA_OPTS": "-Xmx2g -Dpassword=hunter2x",
        "NOTIFY": "xoxb-" + "1029384756-5647382910123-FakeSlackValue",
        "HF_HOME": "/scratch/hf", "PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": "0,1",
        "LS_COLORS": "rs=0:di=01;34:ln=01;36:mh=00", "PYTHONPATH": "/opt/tokenizers/src",
        "PIP_INDEX_URL": "https://bob:hunter2@pypi.internal/simple",
    }  # fmt: skip

    out = redact_environ(env)

    assert {k for k, v in out.items() if v == REDACTED} == {"MY_VAR", "DEPLOY", "JAVA_OPTS",
                                                            "NOTIFY"}  # fmt: skip
    for name in ("HF_HOME", "PATH", "CUDA_VISIBLE_DEVICES", "LS_COLORS", "PYTHONPATH"):
        assert out[name] == env[name]
    assert out["PIP_INDEX_URL"] == f"https://bob:{REDACTED}@pypi.internal/simple"


def test_the_scanner_leaves_the_programs_warnings_alone() -> None:
    # detect-secrets' logger switches on logging.captureWarnings when it is imported
    code = (
        "import warnings; before = warnings.showwarning\n"
        "from hpclab.tracking.environment import redact_environ\n"
        "redact_environ({'A': 'b'})\n"
        "assert warnings.showwarning is before, 'warnings now go to logging'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ,
                   PYTHONPATH=str(REPO)))  # fmt: skip


def test_capture_environment_writes_what_it_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    monkeypatch.setenv("MY_API_TOKEN", "tok-abcdef-123456")
    monkeypatch.setenv("DATABASE_URL", "postgres://u:pw-987654@db/x")
    hf = "hf_" + "FakeHuggingFaceValue" + "0123456789abcd"
    monkeypatch.setenv("MY_VAR", hf)
    paths = run_paths(tmp_path)

    env = capture_environment(paths)

    text = paths.environment_json.read_text()
    assert json.loads(text) == env
    assert "tok-abcdef-123456" not in text and "pw-987654" not in text and hf not in text
    assert env["environ"]["MY_API_TOKEN"] == env["environ"]["MY_VAR"] == REDACTED
    assert env["slurm"] == {"SLURM_ARRAY_TASK_ID": "3", "SLURM_JOB_ID": "4242"}
    assert env["python"]["executable"] == sys.executable
    assert env["python"]["version_info"] == list(sys.version_info[:3])
    assert env["platform"]["hostname"] and env["platform"]["system"]
    packages = env["packages"]
    assert packages["numpy"] == importlib.metadata.version("numpy")
    assert list(packages) == sorted(packages, key=str.lower)
    lines = paths.requirements_txt.read_text().splitlines()
    assert f"numpy=={packages['numpy']}" in lines and len(lines) == len(packages)


def test_installed_packages_match_importlib_metadata() -> None:
    expected = {d.metadata["Name"].lower(): d.version for d in importlib.metadata.distributions()}
    got = {name.lower(): version for name, version in installed_packages().items()}
    assert got == expected


def test_gpu_info_from_an_already_imported_torch(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")

    gpu = capture_environment(run_paths(tmp_path))["gpu"]

    assert gpu["source"] == "torch" and gpu["torch_version"] == str(torch.__version__)
    assert gpu["cuda_available"] == torch.cuda.is_available()
    assert gpu["device_count"] == (torch.cuda.device_count() if gpu["cuda_available"] else 0)
    assert len(gpu["devices"]) == gpu["device_count"]


FAKE_SMI_OK = """#!/bin/sh
echo "NVIDIA H100 80GB HBM3, 81559 MiB, 550.54.15"
echo "NVIDIA H100 80GB HBM3, 81559 MiB, 550.54.15"
"""
FAKE_SMI_FAIL = """#!/bin/sh
echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver" >&2
exit 9
"""
CHILD = """
import json, sys
from pathlib import Path
from hpclab.store.layout import RunPaths
from hpclab.tracking.environment import capture_environment
env = capture_environment(RunPaths(Path(sys.argv[1])))
print(json.dumps({"gpu": env["gpu"], "torch_imported": "torch" in sys.modules}))
"""


@pytest.mark.parametrize("script", [FAKE_SMI_OK, FAKE_SMI_FAIL])
def test_nvidia_smi_without_torch(tmp_path: Path, script: str) -> None:
    # A fresh interpreter: this test process may have imported torch already.
    bin_dir = tmp_path / "bin dir"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(script)
    smi.chmod(0o755)
    paths = run_paths(tmp_path)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=str(REPO))  # fmt: skip

    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(paths.dir)],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip

    result = json.loads(out)
    assert result["torch_imported"] is False
    gpu = result["gpu"]
    if script is FAKE_SMI_OK:
        assert gpu == {
            "source": "nvidia-smi",
            "device_count": 2,
            "devices": [
                {"name": "NVIDIA H100 80GB HBM3", "memory_total": "81559 MiB",
                 "driver_version": "550.54.15"},
            ] * 2,
        }  # fmt: skip
    else:
        assert gpu["source"] == "nvidia-smi" and "couldn't communicate" in gpu["error"]
    assert json.loads(paths.environment_json.read_text())["gpu"] == gpu
