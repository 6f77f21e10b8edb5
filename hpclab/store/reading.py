"""Reading a store document (JSON, YAML) with limits, so no file can hang a reader.

Store files are user-editable and may be hostile. A reader here only reads a regular file
(a FIFO is opened without blocking and refused; a symlink to ``/dev/zero`` is a device,
refused), at most :data:`MAX_JSON_BYTES` / :data:`MAX_YAML_BYTES` of it, and a YAML
document's aliases may not expand it past :data:`MAX_YAML_NODES` nodes (a billion-laughs
bomb is a few hundred bytes that expand to 10**9 nodes when walked). Every refusal and
every malformed document is a :class:`~hpclab.errors.StoreError` naming the file;
``FileNotFoundError`` stays itself (readers treat a missing file as absent).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from hpclab.errors import StoreError
from hpclab.store.yaml_plain import NOT_PLAIN, load_plain

MAX_JSON_BYTES = 256 * 2**20
"""The largest JSON document read (``artifacts.json`` of a run with 10**6 files fits)."""
MAX_YAML_BYTES = 64 * 2**20
"""The largest YAML document read (a config is kilobytes)."""
MAX_YAML_NODES = 1_000_000
"""The most nodes a YAML document may have with its aliases expanded."""

_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster


def read_regular(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes."""
    # O_NONBLOCK: opening a FIFO nobody writes to returns at once (then refused) instead
    # of waiting for a writer; it changes nothing for a regular file
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise StoreError(f"{path}: not a regular file ({_kind(st.st_mode)}); not read")
        if st.st_size > limit:
            raise StoreError(f"{path}: {st.st_size} bytes, over the {limit}-byte limit; not read")
        # reads sized by fstat, not 1 MiB buffers (a cold index reads 30,000 small
        # documents): the first asks one byte more than the file holds, so a file that
        # grew is read on; one that grows past the limit is cut there, then refused
        chunks, total, left, want = [], 0, limit + 1, st.st_size + 1
        while left > 0:
            chunk = os.read(fd, min(left, want))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            left -= len(chunk)
            if total == st.st_size and len(chunk) < want:
                break  # all fstat promised, and a short read: the end, no extra read()
            want = 2**16
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise StoreError(f"{path}: over the {limit}-byte limit; not read")
    return data


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"


def read_json(path: Path) -> Any:
    """Read a JSON file; a malformed or refused file is a :class:`StoreError` naming it."""
    data = read_regular(path, MAX_JSON_BYTES)
    try:
        return json.loads(data)
    except json.JSONDecodeError as e:
        raise StoreError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except UnicodeDecodeError:
        raise StoreError(f"{path}: not valid JSON (not UTF-8 text)") from None
    except (ValueError, RecursionError) as e:  # an int of 5,000 digits; [[[[...]]]] nested
        raise StoreError(f"{path}: not valid JSON ({_first_line(e)})") from None


def read_yaml(path: Path) -> Any:
    """Read a YAML file; a malformed or refused file is a :class:`StoreError` naming it."""
    return load_yaml(read_regular(path, MAX_YAML_BYTES), str(path))


def load_yaml(data: bytes | str, where: str) -> Any:
    """Parse YAML text with the alias limit; a :class:`StoreError` naming ``where``."""
    try:
        raw = data.encode() if isinstance(data, str) else data
        plain = load_plain(raw)  # a config as safe_dump writes it: 2-3x faster
        if plain is not NOT_PLAIN:
            return plain
        if b"&" not in raw or b"*" not in raw:  # no anchor or no alias: nothing expands
            return yaml.load(raw, Loader=_SafeLoader)
        loader = _SafeLoader(raw)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_expansion(node, where)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise StoreError(f"{where}: not valid YAML{at}") from None
    except (ValueError, RecursionError) as e:  # a date out of range; nesting too deep
        raise StoreError(f"{where}: not valid YAML ({_first_line(e)})") from None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_expansion(root: yaml.Node, where: str) -> None:
    """Refuse a document whose aliases expand it past :data:`MAX_YAML_NODES` nodes, or
    refer to themselves (an alias inside its own anchor's node: an endless structure).

    Each distinct node is visited once (aliases share their anchor's node object), its
    expanded size the sum of its children's: linear in the text, whatever it expands to."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_nodes.discard(key)
            size = 1 + sum(sizes[id(c)] for c in _children(node))
            if size > MAX_YAML_NODES:
                raise StoreError(
                    f"{where}: YAML aliases expand it past {MAX_YAML_NODES} nodes; not read"
                )
            sizes[key] = size
            continue
        if key in sizes:
            continue
        if key in open_nodes:  # popped again while its own children are open: a cycle
            raise StoreError(f"{where}: a YAML alias refers to its own anchor; not read")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__
