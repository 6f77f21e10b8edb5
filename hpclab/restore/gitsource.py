"""Finding a run's commit and checking it out into a fresh directory.

The user's repository is only read: the commit is looked up with ``git cat-file`` and the
target is a separate clone (a local clone hard-links objects, so it costs little and
survives a ``git gc`` of the original). Remotes are tried only when no local repository
has the commit, each with a short timeout and no prompts, so a login node without network
fails fast and says so.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hpclab.errors import RestoreError
from hpclab.restore.safety import remove_contents

REMOTE_TIMEOUT_S = 20.0
_USERINFO_RE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^/@:]*)(:[^/@]*)?@")


@dataclass(frozen=True)
class CommitSource:
    """Where a commit was found: a local repository path or a remote URL."""

    kind: str  # "local" or "remote"
    location: str
    name: str | None = None  # the remote's name

    def describe(self) -> str:
        if self.kind == "local":
            return f"local repository {self.location}"
        return f"remote {self.name} ({self.location})" if self.name else f"remote {self.location}"


def git_env() -> dict[str, str]:
    """An environment for git that never prompts, never takes optional locks, and starts
    repository discovery where it is told (no inherited ``GIT_DIR``)."""
    env = dict(os.environ)
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_PREFIX"):
        env.pop(name, None)
    env.update(GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_PAGER="cat")
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes -o ConnectTimeout=10")
    return env


def git(
    args: Sequence[str], cwd: Path | None = None, *, timeout: float | None = 300.0
) -> subprocess.CompletedProcess[bytes]:
    """Run git (never raising on its exit status; a timeout raises TimeoutExpired)."""
    cmd = ["git", "--no-pager", "-c", "safe.directory=*", "-c", "core.fsmonitor=false",
           "-c", "advice.detachedHead=false", *args]  # fmt: skip
    return subprocess.run(
        cmd, cwd=cwd, env=git_env(), capture_output=True, timeout=timeout, check=False
    )


def _err(proc: subprocess.CompletedProcess[bytes]) -> str:
    text = proc.stderr.decode(errors="replace").strip().splitlines()
    return text[-1] if text else f"exit {proc.returncode}"


def has_commit(repo: Path, commit: str) -> bool:
    """Whether the repository at ``repo`` holds ``commit`` (read-only)."""
    if not repo.is_dir():
        return False
    return git(["cat-file", "-e", f"{commit}^{{commit}}"], repo, timeout=60).returncode == 0


def remote_url(url: str) -> str:
    """A recorded remote URL made usable again: the snapshot redacted the password, so
    drop the whole password (git's credential helpers may supply it)."""
    return _USERINFO_RE.sub(lambda m: f"{m['scheme']}{m['user']}@" if m["user"] else m["scheme"],
                            url)  # fmt: skip


def find_local(commit: str, repos: Iterable[Path]) -> tuple[CommitSource | None, list[str]]:
    """The first of ``repos`` holding ``commit``: (its source, or None; why each candidate
    before it did not have it)."""
    reasons: list[str] = []
    for repo in repos:
        if not repo.exists():
            reasons.append(f"{repo} does not exist")
        elif has_commit(repo, commit):
            return CommitSource("local", str(repo)), reasons
        else:
            reasons.append(f"{repo} does not have it")
    return None, reasons


def clone_local(source: Path, target: Path, commit: str, *, shared: bool = False) -> None:
    """Clone ``source`` into the empty ``target`` and check out ``commit`` detached
    (``shared``: borrow ``source``'s objects through alternates instead of copying them)."""
    opts = ["--shared"] if shared else []
    proc = git(["clone", "--no-checkout", "-q", *opts, "--", str(source), str(target)])
    if proc.returncode != 0:
        raise RestoreError(f"git clone {source} failed: {_err(proc)}")
    checkout(target, commit)


def clone_remote(
    name: str | None, url: str, target: Path, commit: str, timeout: float
) -> str | None:
    """Clone ``url`` into the empty ``target`` and check out ``commit``; None on success,
    else why not (the target is emptied again)."""
    try:
        proc = git(["clone", "--no-checkout", "-q", "--", remote_url(url), str(target)],
                   timeout=timeout)  # fmt: skip
    except subprocess.TimeoutExpired:
        remove_contents(target)
        return f"{name or url}: no answer within {timeout:g} s"
    if proc.returncode != 0:
        remove_contents(target)
        return f"{name or url}: {_err(proc)}"
    if not has_commit(target, commit):
        remove_contents(target)
        return f"{name or url}: cloned, but it does not have the commit"
    checkout(target, commit)
    return None


def checkout(repo: Path, commit: str) -> None:
    proc = git(["checkout", "-q", "--detach", commit], repo)
    if proc.returncode != 0:
        raise RestoreError(f"git checkout {commit[:12]} in {repo} failed: {_err(proc)}")
    head = git(["rev-parse", "HEAD"], repo).stdout.decode().strip()
    if head != commit:
        raise RestoreError(f"{repo}: checked out {head[:12]}, expected {commit[:12]}")


def apply_patch(repo: Path, patch: Path) -> None:
    """Apply a binary-safe git patch to the working tree of ``repo`` (not its index).

    ``git apply`` itself refuses paths outside the working tree and beyond symlinks; the
    caller has checked every path already so that the error names it.
    """
    proc = git(["apply", "--whitespace=nowarn", "-p1", "--", str(patch)], repo)
    if proc.returncode != 0:
        raise RestoreError(f"{patch}: git apply failed in {repo}: {_err(proc)}")


def exclude_locally(repo: Path, pattern: str) -> None:
    """Add ``pattern`` to the clone's own ``.git/info/exclude`` (never the user's files)."""
    exclude = repo / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    with open(exclude, "a", encoding="utf-8") as f:
        f.write(f"\n{pattern}\n")
