"""The secret scanner's rules, and the engine that finds them in lines of text.

The rules are the ``detect-secrets`` library's (its plugins' regular expressions, keyword
tables and false-positive filters), used as data rather than through its scanning API,
which keeps global settings and costs milliseconds per line. Added here only where
``detect-secrets`` 1.5 has no rule: Hugging Face (``hf_``), current OpenAI (``sk-proj-``),
GitHub fine-grained (``github_pat_``), Google API and npm tokens, bearer tokens, URL
passwords with any character, unquoted AWS secret keys, and high-entropy values assigned
to names like ``*token*``, ``*secret*``, ``*password*``, ``*key*``. Private key blocks
(``BEGIN … PRIVATE KEY`` to ``END …``) are redacted whole.

Each rule has a short kebab-case name, the one a marker shows: ``[redacted: github-token]``.
A line holding ``# hpclab: allow-secret`` (or ``// hpclab: allow-secret``, or
detect-secrets' own ``pragma: allowlist secret``) is never redacted.

Speed: each rule first runs over the whole text at once (C speed) to find the few lines
that may hold a match; only those are examined line by line.
"""

from __future__ import annotations

import bisect
import functools
import logging
import re
import string
import warnings
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MARKER_RE = re.compile(r"\[redacted: [a-z0-9-]+\]")
ALLOW_RE = re.compile(r"(?:#|//)\s*hpclab:\s*allow-secret|pragma:\s*allowlist[ -]secret", re.I)
CUSTOM = "custom"
PRIVATE_KEY = "private-key"

# value-like characters a token may continue with past what its rule matched
_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "_-")
# searched in the lower-cased text: case-insensitive regexes are several times slower
_KEYWORD_TRIGGER = re.compile(r"key|pass|pwd|secret|token|auth|cred|contrase")
_LONG_VALUE_RE = re.compile(r"[A-Za-z0-9+/=_\-]{16}")
_MAX_KEYWORD_LINE = 2000  # longer lines (minified code) get the token rules only
# A literal every match of a rule holds (lower case): the rule is skipped, at C speed,
# for a text without it. Only used when the rule's own pattern spells it out.
_LITERALS = {
    "slack-token": ("xox", "hooks.slack"), "mailchimp-key": ("-us",), "telegram-token": (":",),
    "basic-auth": ("://",), "aws-secret-key": ("aws",), "openai-key": ("sk-",),
    "stripe-key": ("k_live_",), "sendgrid-key": ("sg.",), "jwt": ("eyj",),
    "azure-storage-key": ("accountkey=",), "square-oauth-secret": ("sq0csp-",),
    "pypi-token": ("pypi-",), "npm-token": ("npm_", "_authtoken"), "hf-token": ("hf_",),
    "google-api-key": ("aiza",), "bearer-token": ("earer",), "github-token": ("github_pat_",),
}  # fmt: skip
_PLACEHOLDERS = frozenset({"null", "none", "nil", "true", "false", "undefined", "<redacted>"})
_SHELL_SUFFIXES = (".sh", ".bash", ".zsh", ".env", ".envrc", ".slurm", ".sbatch")
_BEGIN_RE = re.compile(
    r"-*[ \t]*BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?[ \t]*-*|PuTTY-User-Key-File-\d+:"
)
_END_RE = re.compile(r"-*[ \t]*END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?[ \t]*-*|Private-MAC:[ \t]*\w*")
# a base64 line, maybe quoted or concatenated; written so that no two parts can take the
# same characters (a long line of "+" must not make the regex engine backtrack forever)
_KEY_BODY_RE = re.compile(
    r"[\s\"'`,+]*[A-Za-z0-9/=](?:[A-Za-z0-9+/=]*[A-Za-z0-9/=])?(?:\\n|[\s\"'`,+])*"
)
_PEM_HEADER_RE = re.compile(r"\s*[A-Z][A-Za-z-]+: \S")
# name = value, name: value, name := value, "name": "value", name => value
_ASSIGN_RE = re.compile(
    r"(?P<name>[A-Za-z_$][\w$.\-]*)[\"'\]]{0,2}\s*(?::=|=>|==|=|:)\s*@?(?P<q>[\"'`]?)"
    r"(?P<value>[A-Za-z0-9+/=_\-]{16,})(?P=q)(?![A-Za-z0-9+/=_\-])"
)
_NAME_WORDS = frozenset({
    "token", "tokens", "secret", "secrets", "key", "keys", "apikey", "password", "passwd",
    "pwd", "pass", "passphrase", "auth", "credential", "credentials", "creds", "pat",
})  # fmt: skip
_NAME_ENDINGS = ("token", "secret", "password", "passwd", "apikey", "accesskey", "secretkey",
                 "privatekey")  # fmt: skip
_NAME_SPLIT_RE = re.compile(r"[_\-$.]+|(?<=[a-z0-9])(?=[A-Z])")


@dataclass(frozen=True)
class Span:
    """Characters ``start:end`` of one line hold a secret that rule ``rule`` found."""

    start: int
    end: int
    rule: str


@dataclass(frozen=True)
class Rule:
    """A value-shape rule: ``pattern`` matches within one line; ``group`` is the secret."""

    name: str
    pattern: re.Pattern[str]
    group: int | str = 0
    check: Callable[[str], bool] | None = None
    widen: bool = False  # extend the match over following token characters
    literal: str = ""  # lower case; in every match (see _LITERALS)

    def with_literal(self) -> Rule:
        source = self.pattern.pattern.replace("\\", "").lower()
        found = next((lit for lit in _LITERALS.get(self.name, ()) if lit in source), "")
        return Rule(self.name, self.pattern, self.group, self.check, self.widen, found)


@dataclass(frozen=True)
class _Tables:
    """Everything loaded from detect-secrets, once per process."""

    tokens: tuple[Rule, ...]
    begin: tuple[re.Pattern[str], ...]
    keywords_by_type: Mapping[Any, Mapping[re.Pattern[str], int]]
    keywords_default: Mapping[re.Pattern[str], int]
    keywords_config: Mapping[re.Pattern[str], int]
    file_type: Callable[[str], Any]
    b64_entropy: Callable[[str], float]
    hex_entropy: Callable[[str], float]
    filters: Mapping[str, Callable[..., bool]]


def find_spans(
    lines: Sequence[str],
    path: str = "",
    custom: Sequence[re.Pattern[str]] = (),
    *,
    config: bool = False,
    blocks: bool | Sequence[Sequence[int]] = True,
) -> dict[int, list[Span]]:
    """Secrets in ``lines`` (contents without line endings): line index -> spans.

    ``path`` picks the keyword rules by file type (quotes optional in YAML, INI, shell);
    ``config`` forces the quotes-optional ones (environment values). ``custom`` are the
    user's patterns (group 1 when they have one, else the whole match). Private key
    blocks are followed through all lines, or through each of ``blocks`` (lists of line
    indices: the two sides of a hunk).
    """
    if not lines:
        return {}
    t = tables()
    text = "\n".join(lines)
    lower = text.lower()
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)

    def hit_lines(pattern: re.Pattern[str], within: str = text) -> list[int]:
        where = (m.start() for m in pattern.finditer(within))
        return sorted({bisect.bisect_right(starts, pos) - 1 for pos in where})

    allowed = set(hit_lines(ALLOW_RE)) if "allow" in lower else set()
    found: dict[int, list[Span]] = defaultdict(list)
    for rule in t.tokens:
        if rule.literal and rule.literal not in lower:
            continue
        for i in hit_lines(rule.pattern):
            if i not in allowed:
                found[i] += _rule_spans(rule, lines[i], t)
    keywords = t.keywords_config if config or path.endswith(_SHELL_SUFFIXES) else None
    if keywords is None:
        keywords = t.keywords_by_type.get(t.file_type(path), t.keywords_default)
    for i in hit_lines(_KEYWORD_TRIGGER, lower):
        if i not in allowed:
            found[i] += _keyword_spans(lines[i], keywords, t) + _entropy_spans(lines[i], t)
    for pattern in custom:
        group = 1 if pattern.groups else 0
        for i, line in enumerate(lines):
            if i not in allowed:
                found[i] += [Span(*m.span(group), CUSTOM) for m in pattern.finditer(line)
                             if m.start(group) >= 0 and m.end(group) > m.start(group)]  # fmt: skip
    groups: Sequence[Sequence[int]] = [range(len(lines))] if blocks is True else blocks or []
    if "PRIVATE KEY" not in text and "PuTTY-User-Key-File" not in text:
        groups = []  # every block rule needs one of these
    for side in groups:
        idx = list(side)
        skip = {k for k, i in enumerate(idx) if i in allowed}
        for k, spans in key_block_spans([lines[i] for i in idx], skip).items():
            found[idx[k]] += spans
    return {i: merged for i, spans in found.items() if (merged := _merge(lines[i], spans))}


def key_block_spans(
    lines: Sequence[str], skip: set[int] | frozenset[int] = frozenset()
) -> dict[int, list[Span]]:
    """Private key blocks, whole: from ``BEGIN … PRIVATE KEY`` through the key-looking lines
    after it to ``END …`` (a line that is not part of a key ends the block early: a program
    that only mentions the header keeps its code). An ``END`` whose ``BEGIN`` is not in
    ``lines`` (a hunk that starts inside a key) takes the key-looking lines before it."""
    t = tables()
    out: dict[int, list[Span]] = {}
    inside = False
    for i, line in enumerate(lines):
        if i in skip:
            continue
        lead = len(line) - len(line.lstrip())
        if inside:
            e = _END_RE.search(line)
            if e is not None or _KEY_BODY_RE.fullmatch(line) or _PEM_HEADER_RE.match(line):
                out[i] = [Span(lead, e.end() if e else len(line), PRIVATE_KEY)]
                inside = e is None
                continue
            inside = not line.strip()  # a blank line may sit between headers and body
            if inside:
                continue
        b = _BEGIN_RE.search(line) or next((m for p in t.begin if (m := p.search(line))), None)
        if b is not None:
            e = _END_RE.search(line, b.end())
            out[i] = [Span(b.start(), e.end() if e else len(line), PRIVATE_KEY)]
            inside = e is None
        elif "PRIVATE KEY" in line and (e := _END_RE.search(line)) is not None:
            out[i] = [Span(lead, e.end(), PRIVATE_KEY)]
            k = i - 1
            while k >= 0 and k not in out and k not in skip and _KEY_BODY_RE.fullmatch(lines[k]):
                if k < i - 1 and len(lines[k].strip()) < 16:
                    break
                out[k] = [Span(0, len(lines[k]), PRIVATE_KEY)]
                k -= 1
    return out


def apply_spans(line: str, spans: Sequence[Span]) -> str:
    """``line`` with every span replaced by its marker (spans from :func:`find_spans`)."""
    for span in sorted(spans, key=lambda s: s.start, reverse=True):
        line = line[: span.start] + marker(span.rule) + line[span.end :]
    return line


def marker(rule: str) -> str:
    return f"[redacted: {rule}]"


def has_secret_shape(value: str) -> bool:
    """Whether an environment value holds a token, key or ``name=secret`` assignment."""
    return bool(find_spans(value.split("\n"), config=True))


# -- rules --------------------------------------------------------------------------------


def _rule_spans(rule: Rule, line: str, t: _Tables) -> list[Span]:
    out = []
    for m in rule.pattern.finditer(line):
        start, end = m.span(rule.group)
        if start < 0 or end <= start:
            continue
        if rule.widen:
            while end < len(line) and line[end] in _TOKEN_CHARS:
                end += 1
        value = line[start:end]
        if t.filters["sequential"](value) or (rule.check is not None and not rule.check(value)):
            continue
        out.append(Span(start, end, rule.name))
    return out


def _keyword_spans(line: str, regexes: Mapping[re.Pattern[str], int], t: _Tables) -> list[Span]:
    """detect-secrets' KeywordDetector: ``password = "…"``, ``secret: …`` and the like,
    with its filters (templates, ``$VAR``, ``f(x)`` references, ids, sequences)."""
    if len(line) > _MAX_KEYWORD_LINE or t.filters["indirect"](line):
        return []
    out = []
    for regex, group in regexes.items():
        for m in regex.finditer(line):
            start, end = m.span(group)
            value = line[start:end]
            if start < 0 or not _plausible(value, line, t):
                continue
            words = m.group(0)[: start - m.start()].lower()
            name = "password" if re.search(r"pass|pwd|contrase", words) else (
                "api-key" if "api" in words else "secret")  # fmt: skip
            out.append(Span(start, end, name))
    return out


def _entropy_spans(line: str, t: _Tables) -> list[Span]:
    """Random-looking values assigned to secret-sounding names (``hf_token = "…"``)."""
    out: list[Span] = []
    if len(line) > _MAX_KEYWORD_LINE or _LONG_VALUE_RE.search(line) is None:
        return out
    for m in _ASSIGN_RE.finditer(line):
        if not _secret_name(m["name"]):
            continue
        value = m["value"]
        if not _plausible(value, line, t) or t.filters["uuid"](value):
            continue
        if all(c in string.hexdigits for c in value):
            random_looking = len(value) >= 20 and t.hex_entropy(value) > 3.0
        else:
            classes = sum(any(f(c) for c in value) for f in (str.isupper, str.islower,
                                                             str.isdigit))  # fmt: skip
            random_looking = (
                classes >= (2 if len(value) >= 32 else 3) and t.b64_entropy(value) > 3.5
            )
        if random_looking:
            out.append(Span(*m.span("value"), "high-entropy-secret"))
    return out


def _secret_name(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    parts = [p.lower() for p in _NAME_SPLIT_RE.split(last) if p]
    return any(p in _NAME_WORDS or p.endswith(_NAME_ENDINGS) for p in parts)


def _plausible(value: str, line: str, t: _Tables) -> bool:
    """Not a template, variable, placeholder, marker, id or sequence."""
    f = t.filters
    if not value.strip() or value.lower() in _PLACEHOLDERS or MARKER_RE.search(value):
        return False
    if f["templated"](value) or f["dollar"](value) or f["not_alnum"](value):
        return False
    return not (f["sequential"](value) or f["likely_id"](value, line))


def _merge(line: str, spans: list[Span]) -> list[Span]:
    """Overlapping spans joined (the first rule in rule order names the result); spans
    inside an existing marker dropped, so redacting twice changes nothing."""
    markers = [m.span() for m in MARKER_RE.finditer(line)]
    spans = [s for s in spans if not any(a < s.end and s.start < b for a, b in markers)]
    out: list[Span] = []
    for s in sorted(spans, key=lambda s: (s.start, -s.end)):
        if out and s.start < out[-1].end:
            last = out[-1]
            out[-1] = Span(last.start, max(last.end, s.end), last.rule)
        else:
            out.append(s)
    return out


def _not_template(value: str) -> bool:
    return not (value[:1] in "${<%*" or value.lower() in _PLACEHOLDERS)


def _mixed(value: str) -> bool:
    return all(any(f(c) for c in value) for f in (str.isupper, str.islower, str.isdigit))


def _own_rules() -> list[Rule]:
    c = re.compile
    return [
        Rule("github-token", c(r"github_pat_[A-Za-z0-9_]{22,}")),
        # the literal first, then the look-behind: re finds a literal prefix fast
        Rule("hf-token", c(r"hf_(?<![A-Za-z0-9]hf_)[A-Za-z0-9]{30,}"), widen=True),
        Rule("openai-key", c(r"sk-(?<![\w-]sk-)[A-Za-z0-9_-]{32,}"), check=_mixed),
        Rule("google-api-key", c(r"AIza[0-9A-Za-z_-]{35}"), widen=True),
        Rule("npm-token", c(r"npm_(?<![A-Za-z0-9]npm_)[A-Za-z0-9]{36}")),
        Rule("npm-token", c(r"//\S+/:_authToken=[ \t]*([^\s\"']+)"), group=1),
        Rule("bearer-token", c(r"[Bb]earer[ \t]+([A-Za-z0-9._~+/-]{20,}=*)"), group=1,
             check=_mixed),  # fmt: skip
        Rule("aws-secret-key", c(r"aws.{0,20}?(?:secret|key).{0,20}?[=:][ \t]*[\"']?"
                                 r"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])", re.I), group=1),
        # userinfo runs to the last "@" before the path: a password may hold "@" or "!"
        Rule("basic-auth", c(r"[A-Za-z][A-Za-z0-9+.\-]{0,30}://[^:/\s?#@\"'<>]*:"
                             r"(?P<pw>[^/\s?#\"'<>]+)@"), group="pw", check=_not_template),
    ]  # fmt: skip


@functools.cache
def tables() -> _Tables:
    """Load the rules from detect-secrets (first call: ~0.15 s of imports)."""
    shown = warnings.showwarning
    from detect_secrets.filters import heuristic as h
    from detect_secrets.plugins import (
        aws,
        azure_storage_key,
        basic_auth,
        discord,
        github_token,
        gitlab_token,
        jwt,
        mailchimp,
        openai,
        private_key,
        pypi_token,
        sendgrid,
        slack,
        square_oauth,
        stripe,
        telegram_token,
        twilio,
    )
    from detect_secrets.plugins import keyword as kw
    from detect_secrets.plugins.high_entropy_strings import (
        Base64HighEntropyString,
        HexHighEntropyString,
    )
    from detect_secrets.util.filetype import determine_file_type

    if warnings.showwarning is not shown:
        # detect-secrets' logger turns on logging.captureWarnings; the user's program
        # must keep seeing its warnings as before
        logging.captureWarnings(False)
    access_id, secret = aws.AWSKeyDetector.denylist
    rules = [Rule("aws-access-key", access_id, widen=True), Rule("aws-secret-key", secret, 1)]
    named: list[tuple[type[Any], str]] = [
        (github_token.GitHubTokenDetector, "github-token"),
        (gitlab_token.GitLabTokenDetector, "gitlab-token"),
        (slack.SlackDetector, "slack-token"),
        (openai.OpenAIDetector, "openai-key"),
        (pypi_token.PypiTokenDetector, "pypi-token"),
        (jwt.JwtTokenDetector, "jwt"),
        (stripe.StripeDetector, "stripe-key"),
        (sendgrid.SendGridDetector, "sendgrid-key"),
        (twilio.TwilioKeyDetector, "twilio-key"),
        (discord.DiscordBotTokenDetector, "discord-token"),
        (azure_storage_key.AzureStorageKeyDetector, "azure-storage-key"),
        (mailchimp.MailchimpDetector, "mailchimp-key"),
        (telegram_token.TelegramBotTokenDetector, "telegram-token"),
        (square_oauth.SquareOAuthDetector, "square-oauth-secret"),
    ]
    for plugin, name in named:
        rules += [Rule(name, p, widen=True) for p in plugin.denylist]
    rules += [
        Rule("basic-auth", p, 1, _not_template) for p in basic_auth.BasicAuthDetector.denylist
    ]
    rules += _own_rules()
    b64 = Base64HighEntropyString()
    hexa = HexHighEntropyString()
    return _Tables(
        tokens=tuple(r.with_literal() for r in rules),
        begin=tuple(private_key.PrivateKeyDetector.denylist),
        keywords_by_type=kw.REGEX_BY_FILETYPE,
        keywords_default=kw.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP,
        keywords_config=kw.CONFIG_DENYLIST_REGEX_TO_GROUP,
        file_type=determine_file_type,
        b64_entropy=b64.calculate_shannon_entropy,
        hex_entropy=hexa.calculate_shannon_entropy,
        filters={
            "templated": h.is_templated_secret,
            "dollar": h.is_prefixed_with_dollar_sign,
            "indirect": h.is_indirect_reference,
            "sequential": h.is_sequential_string,
            "not_alnum": h.is_not_alphanumeric_string,
            "uuid": h.is_potential_uuid,
            "likely_id": lambda secret, line: h.is_likely_id_string(secret, line),
        },
    )
