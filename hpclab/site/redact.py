"""What the site shows of values a run or a user wrote that may hold a secret: config
values, overrides, command lines, error messages and patches go through the same scanner
as code snapshots (:mod:`hpclab.tracking.secrets`) before they reach a page or a data
file. The store keeps them as they are."""

from __future__ import annotations

import re
from typing import Any

from hpclab.tracking.secrets import redact_patch, redact_text

__all__ = ["redact_config_value", "redact_patch", "redact_text", "redact_value"]


# A config leaf that names a credential (``db.password``, ``wandb.api_key``, ``hf_token``),
# but not ``tokenizer``, ``max_tokens`` or ``key_column``: configs are full of those.
SECRET_KEY_RE = re.compile(
    r"(?:^|[_\-])(?:password|passwd|pwd|secret|secret[_\-]?key|api[_\-]?key|apikey|"
    r"access[_\-]?key|private[_\-]?key|token|auth[_\-]?token|access[_\-]?token|"
    r"credentials?)$",
    re.IGNORECASE,
)
MARKER = "[redacted: secret-key-name]"


def redact_config_value(path: str, value: Any) -> Any:
    """A config value as the site may show it: a value under a key that names a
    credential becomes a marker, and so does a part shaped like one."""
    if value is None:
        return None
    if SECRET_KEY_RE.search(path.rsplit(".", 1)[-1]):
        return MARKER
    return redact_text(str(value))[0]


_ASSIGN_RE = re.compile(r"(?P<key>[\w.\-+~]+)=(?P<value>[^\s,]+)")


def _assignments(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        leaf = m.group("key").lstrip("+~").rsplit(".", 1)[-1]
        return f"{m.group('key')}={MARKER}" if SECRET_KEY_RE.search(leaf) else m.group()

    return _ASSIGN_RE.sub(one, text)


def redact_value(value: Any) -> Any:
    """Strings (also inside lists: overrides, a command line) with secrets in them,
    redacted: ``db.password=...`` by its key, a token by its shape."""
    if isinstance(value, str):
        return redact_text(_assignments(value))[0]
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    return value
