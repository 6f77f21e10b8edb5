"""The one secret scanner: what a code snapshot, the environment capture and the site may
publish.

* **Credential files by name** are never archived: ``.env*``, keys and certificates
  (``*.pem``, ``*.key``, ``id_rsa*``, ``id_ecdsa*``, …), ``.netrc``, ``.git-credentials``,
  ``.npmrc``, ``.pypirc``, ``secrets.yaml``, ``.ssh/``, ``.kube/config``,
  ``.aws/credentials``, Terraform state, and service-account JSON keys (by content);
  see :data:`CREDENTIAL_PATTERNS`.
* **Secrets in text** (patches, untracked and source files) are replaced by a marker
  naming the rule, ``[redacted: aws-secret-key]``, and reported as
  :class:`SecretFinding` (file, line, rule). The rules are detect-secrets' plugins plus a
  few of hpclab's own (:mod:`hpclab.tracking.secret_rules`).
* **Binary files** are scanned for the text they hold (ASCII and UTF-16 strings); one
  with a secret, or a compressed one (gzip, zip, xz, …: its text cannot be read), is
  left out with its reason.
* **Environment values** are redacted whole (``<redacted>``) by name
  (:data:`SECRET_NAME_RE`) or by value shape; URL passwords are cut out of the rest.

Adding patterns: in ``.hpclabignore`` (in the code directory), a line
``secret: REGEX`` redacts every match of the Python regular expression (its first group
when it has one); other lines are ignore globs. In the project's ``project.yaml``::

    secrets:
      patterns: ['corp-[0-9a-f]{32}']   # more regexes, as above
      files: ['*.vault', 'deploy/*.ini']  # more credential file globs

Keeping a false positive: put ``# hpclab: allow-secret`` (or ``// hpclab: allow-secret``)
on the line.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hpclab.errors import ConfigError, check_keys
from hpclab.tracking import patchtext
from hpclab.tracking.secret_rules import (
    ALLOW_RE,
    Span,
    apply_spans,
    find_spans,
    has_secret_shape,
)

REDACTED = "<redacted>"
SECRET_NAME_RE = re.compile(
    r"TOKEN|KEY|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|COOKIE|SESSION|PRIVATE", re.IGNORECASE
)
# Matched case-insensitively against every path component (a pattern with "/" against
# consecutive components), so a secret directory (``credentials/``) goes whole.
CREDENTIAL_PATTERNS = (
    ".env", ".env.*", "*.pem", "*.key", "id_rsa*", "id_ed25519*", "id_ecdsa*", "id_dsa*",
    "*.p12", "*.pfx", "*.keystore", "*.jks", ".netrc", ".pgpass", "credentials*", "*.kdbx",
    ".git-credentials", ".npmrc", ".pypirc", ".dockercfg", ".docker/config.json",
    "secrets.y*ml", "secret*.json", ".kube/config", ".ssh", ".aws/credentials", ".htpasswd",
    "terraform.tfstate*", "*.tfstate", ".vault-token", ".s3cfg", ".boto",
    "application_default_credentials.json",
)  # fmt: skip
IGNORE_FILE = ".hpclabignore"
SECRET_LINE_PREFIX = "secret:"
_SERVICE_ACCOUNT_RE = re.compile(rb'"type"\s*:\s*"service_account"')
# scheme://userinfo@ where userinfo runs to the last "@" before the path, so a password
# holding an unencoded "@" is still cut whole.
_URL_USERINFO_RE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/\s?#]*)@")
# gzip, zip, xz, zstd, 7z, rar, lz4 (bzip2 below): compressed text cannot be scanned
_COMPRESSED = (b"\x1f\x8b\x08", b"PK\x03\x04", b"PK\x05\x06", b"\xfd7zXZ\x00",
               b"\x28\xb5\x2f\xfd", b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07",
               b"\x04\x22\x4d\x18")  # fmt: skip
_STRINGS_RE = re.compile(rb"[\x20-\x7e\t]{6,}|(?:[\x20-\x7e]\x00){6,}|(?:\x00[\x20-\x7e]){6,}")
_SETTING_KEYS = ("files", "patterns")


@dataclass(frozen=True)
class SecretFinding:
    """A secret replaced by a marker: where it was and which rule found it.

    ``line`` is 1-based in the file as it is in the working tree; in a patch it is the
    line in the new file, except for a removed line (``source == "removed"``: the line
    in the old file). ``source`` says what was redacted: ``file`` (an archived file),
    ``added``/``context``/``removed`` (a patch line of that kind), ``heading`` (the text
    after a hunk's ``@@``, which git copies from the old file) or ``preamble`` (text
    before a patch's first file).
    """

    path: str
    line: int
    rule: str
    source: str = "file"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "rule": self.rule, "source": self.source}


@dataclass(frozen=True)
class SecretRules:
    """Patterns added by the user: redaction regexes and credential file globs."""

    patterns: tuple[re.Pattern[str], ...] = ()
    files: tuple[str, ...] = ()

    @classmethod
    def load(
        cls,
        code_dir: Path | None = None,
        project: Mapping[str, Any] | None = None,
        *,
        project_file: str = "project.yaml",
    ) -> SecretRules:
        """The rules of ``code_dir/.hpclabignore`` (``secret: REGEX`` lines) and of the
        ``secrets`` setting of ``project`` (a parsed ``project.yaml``). A malformed setting
        or a bad regex is a :class:`~hpclab.errors.ConfigError` naming the file."""
        patterns: list[re.Pattern[str]] = []
        files: list[str] = []
        ignore = code_dir / IGNORE_FILE if code_dir is not None else None
        if ignore is not None and ignore.is_file():
            for line in ignore.read_text(errors="replace").splitlines():
                if line.strip().startswith(SECRET_LINE_PREFIX):
                    regex = line.strip()[len(SECRET_LINE_PREFIX) :].strip()
                    patterns.append(_compile(regex, str(ignore)))
        setting = (project or {}).get("secrets")
        if setting is not None:
            where = f"{project_file}: secrets"
            if not isinstance(setting, Mapping):
                raise ConfigError(
                    f"{where}: expected a mapping with keys {', '.join(_SETTING_KEYS)}"
                )
            check_keys(setting, _SETTING_KEYS, where)
            patterns += [
                _compile(p, f"{where}.patterns") for p in _strings(setting, "patterns", where)
            ]
            files += _strings(setting, "files", where)
        return cls(tuple(patterns), tuple(files))

    @classmethod
    def read(cls, code_dirs: Iterable[Path], project_yaml: Path | None = None) -> SecretRules:
        """:meth:`load` for several code directories and a ``project.yaml`` on disk."""
        from hpclab.store.atomic import read_yaml

        rules = cls()
        if project_yaml is not None and project_yaml.is_file():
            data = read_yaml(project_yaml)
            if data is not None and not isinstance(data, Mapping):
                raise ConfigError(f"{project_yaml}: expected a mapping at the top level")
            rules = cls.load(None, data, project_file=str(project_yaml))
        for d in dict.fromkeys(code_dirs):
            rules = rules | cls.load(d)
        return rules

    def __or__(self, other: SecretRules) -> SecretRules:
        return SecretRules(self.patterns + other.patterns, self.files + other.files)


def _compile(regex: Any, where: str) -> re.Pattern[str]:
    if not isinstance(regex, str) or not regex:
        raise ConfigError(f"{where}: expected a regular expression, got {regex!r}")
    try:
        compiled = re.compile(regex)
    except re.error as e:
        raise ConfigError(f"{where}: bad secret pattern {regex!r}: {e}") from None
    if compiled.fullmatch("") is not None:
        raise ConfigError(f"{where}: secret pattern {regex!r} matches the empty string")
    return compiled


def _strings(setting: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = setting.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}.{key}: expected a list of strings")
    return list(value)


# -- files ------------------------------------------------------------------------------


def is_credential_file(
    rel: str, data: bytes | None = None, rules: SecretRules | None = None
) -> bool:
    """Whether the relative posix path ``rel`` is a credential by its name (or a path
    component's), or, given its content ``data``, a service-account JSON key."""
    parts = rel.lower().split("/")
    patterns = CREDENTIAL_PATTERNS + (rules.files if rules else ())
    for pattern in patterns:
        pat = pattern.lower().strip("/").split("/")
        for i in range(len(parts) - len(pat) + 1):
            if all(fnmatch.fnmatchcase(p, q) for p, q in zip(parts[i:], pat, strict=False)):
                return True
    return (
        data is not None
        and parts[-1].endswith(".json")
        and b'"private_key"' in data
        and _SERVICE_ACCOUNT_RE.search(data) is not None
    )


def redact_text(
    text: str, *, path: str = "", rules: SecretRules | None = None
) -> tuple[str, list[SecretFinding]]:
    """``text`` (a file's content) with every secret replaced by its marker, and what was
    replaced. Lines and line endings are kept; a line with ``# hpclab: allow-secret`` is
    left alone."""
    lines = patchtext.split_lines(text)
    contents = [ln.rstrip("\n") for ln in lines]
    spans = find_spans(contents, path, rules.patterns if rules else ())
    if not spans:
        return text, []
    findings: list[SecretFinding] = []
    for i, found in sorted(spans.items()):
        lines[i] = apply_spans(contents[i], found) + lines[i][len(contents[i]) :]
        findings += _findings(path, i + 1, found, "file")
    return "".join(lines), findings


@dataclass(frozen=True)
class FileVerdict:
    """What may be stored of one file: ``data`` (redacted; None: nothing), or ``reason``."""

    data: bytes | None
    reason: str | None = None
    findings: tuple[SecretFinding, ...] = ()


def scan_file(rel: str, data: bytes, rules: SecretRules | None = None) -> FileVerdict:
    """Decide what of the file ``rel`` with content ``data`` may be archived."""
    if is_credential_file(rel, data, rules):
        return FileVerdict(None, "secret")
    if b"\0" in data:
        why = binary_verdict(data, rules)
        return FileVerdict(None if why else data, why)
    text, findings = redact_text(patchtext.decode(data), path=rel, rules=rules)
    return FileVerdict(patchtext.encode(text) if findings else data, None, tuple(findings))


def binary_verdict(data: bytes, rules: SecretRules | None = None) -> str | None:
    """Why a binary file must not be published (None: it may be, unchanged): it is
    compressed (its text cannot be read), or its strings hold a secret."""
    if data.startswith(_COMPRESSED) or (data[:3] == b"BZh" and data[3:4].isdigit()):
        return "unscannable (compressed)"
    runs = [m.group(0).replace(b"\0", b"").decode("ascii") for m in _STRINGS_RE.finditer(data)]
    spans = find_spans(runs, "", rules.patterns if rules else ())
    return "secret in binary" if spans else None


# -- patches ----------------------------------------------------------------------------


@dataclass
class SectionScan:
    """One file section of a patch after scanning: the text to store ("" when the section
    is left out, then ``dropped`` says why), what was redacted, and the redacted contents
    of added lines by new-file line number (what a restore will write)."""

    path: str
    text: str
    findings: list[SecretFinding] = field(default_factory=list)
    dropped: str | None = None
    added: dict[int, str] = field(default_factory=dict)


def redact_patch(patch: str, rules: SecretRules | None = None) -> tuple[str, list[SecretFinding]]:
    """A unified git diff with every secret in its lines (added, context and removed; the
    hunk headings too) replaced by its marker; headers and line counts are unchanged, so
    the result is still a patch. Binary sections are left out (they cannot be scanned
    here: :func:`redact_sections` can, given the files)."""
    out: list[str] = []
    findings: list[SecretFinding] = []
    for scan in redact_sections(patchtext.split_lines(patch), rules):
        out.append(scan.text)
        findings += scan.findings
    return "".join(out), findings


def redact_sections(
    lines: Iterable[str],
    rules: SecretRules | None = None,
    *,
    binary_content: Callable[[str], bytes | None] | None = None,
) -> Iterator[SectionScan]:
    """:func:`redact_patch`, one file section at a time (a huge patch is never held
    whole). ``binary_content(path)`` gives a binary file's new content, so that its
    section can be scanned and kept (forward hunk only: the reverse one holds the old
    content, which the commit has); without it binary sections are dropped."""
    custom = rules.patterns if rules else ()
    for section in patchtext.iter_sections(lines):
        path = section.path
        if section.header and not section.header[0].startswith("diff --git "):
            # text before the first file (a mail's body, a commit message): plain text
            text, findings = redact_text("".join(section.header), rules=rules)
            yield SectionScan("", text, [replace(f, source="preamble") for f in findings])
            continue
        if section.binary is not None:
            yield _binary_section(section, path, rules, binary_content)
            continue
        scan = SectionScan(path, "")
        for hunk in section.hunks:
            _redact_hunk(hunk, path, custom, scan)
        scan.text = section.render()
        yield scan


def _redact_hunk(
    hunk: patchtext.Hunk, path: str, custom: Sequence[re.Pattern[str]], scan: SectionScan
) -> None:
    entries = [ln for ln in hunk.lines if ln.kind != "\\"]
    contents = [ln.content for ln in entries]
    # a private key block is followed along each side of the hunk
    new_side = [i for i, ln in enumerate(entries) if ln.kind != "-"]
    old_side = [i for i, ln in enumerate(entries) if ln.kind != "+"]
    spans = find_spans(contents, path, custom, blocks=(new_side, old_side))
    for i, found in sorted(spans.items()):
        ln = entries[i]
        ln.content = apply_spans(ln.content, found)
        source = {"+": "added", "-": "removed", " ": "context"}.get(ln.kind, "patch")
        number = ln.old if ln.kind == "-" else ln.new
        scan.findings += _findings(path, number or 0, found, source)
        if ln.kind == "+" and ln.new is not None:
            scan.added[ln.new] = ln.content
    if hunk.heading.strip() and not ALLOW_RE.search(hunk.heading):
        heading = find_spans([hunk.heading], path, custom).get(0)
        if heading:
            hunk.heading = apply_spans(hunk.heading, heading)
            scan.findings += _findings(path, hunk.new_start, heading, "heading")


def _binary_section(
    section: patchtext.Section,
    path: str,
    rules: SecretRules | None,
    binary_content: Callable[[str], bytes | None] | None,
) -> SectionScan:
    assert section.binary is not None
    why: str | None = "unscannable (binary)"
    if binary_content is not None:
        why = None
        if not section.is_deletion:
            data = binary_content(path)
            if data is None:
                why = "unreadable"
            elif is_credential_file(path, data, rules):
                why = "secret"
            else:
                why = binary_verdict(data, rules)
    if why is not None:
        return SectionScan(path, "", dropped=why)
    section.binary = patchtext.forward_binary(section.binary)
    return SectionScan(path, section.render())


def _findings(path: str, line: int, spans: Iterable[Span], source: str) -> list[SecretFinding]:
    rules = dict.fromkeys(s.rule for s in spans)
    return [SecretFinding(path, line, rule, source) for rule in rules]


# -- environment --------------------------------------------------------------------------


def redact_env_value(name: str, value: str) -> str:
    """An environment variable's value as it may be published: ``<redacted>`` when the
    name looks secret (:data:`SECRET_NAME_RE`) or the value holds a token, key or
    ``name=secret`` assignment; otherwise the value with URL passwords cut out."""
    if SECRET_NAME_RE.search(name):
        return REDACTED
    value = redact_url(value)
    return REDACTED if has_secret_shape(value) else value


def redact_url(value: str) -> str:
    """Replace the password of every ``scheme://user:password@host`` URL in ``value``."""

    def _cut(m: re.Match[str]) -> str:
        user, sep, _ = m["userinfo"].partition(":")
        return f"{m['scheme']}{user}:{REDACTED}@" if sep else m.group(0)

    return _URL_USERINFO_RE.sub(_cut, value) if "://" in value else value
