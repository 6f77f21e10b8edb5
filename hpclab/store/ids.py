"""Run ids: unique with no server, readable, sortable by creation time.

An id is ``YYYYMMDD-HHMMSS-xxxx``: the UTC creation time plus four random characters
from an alphabet without look-alikes. Uniqueness does not rest on the randomness:
the run directory is created with ``mkdir``, which is atomic on POSIX filesystems
(NFS, Lustre and GPFS included), and a collision simply draws again.
"""

from __future__ import annotations

import re
import secrets
import time

ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
SUFFIX_LEN = 4
RUN_ID_RE = re.compile(r"^\d{8}-\d{6}-[0-9a-z]{4,}$")
# Ids chosen by users (``run_id=``) or launchers: conservative so they are safe as
# directory names everywhere and in shell commands.
CUSTOM_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
KEY_RE = CUSTOM_ID_RE


def new_run_id(now: float | None = None) -> str:
    """Return a fresh candidate id for a run created at ``now`` (epoch seconds)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    suffix = "".join(secrets.choice(ALPHABET) for _ in range(SUFFIX_LEN))
    return f"{stamp}-{suffix}"


def is_valid_run_id(run_id: str) -> bool:
    """Whether ``run_id`` may name a run directory (generated or custom)."""
    return bool(CUSTOM_ID_RE.match(run_id)) and run_id not in {".", ".."}
