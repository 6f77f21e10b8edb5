"""A run's ``config.yaml`` parsed once, by its writer: ``config.json`` beside it.

``config.json`` holds what hpclab's YAML reader makes of ``config.yaml`` and the size,
mtime, ctime, device and inode the YAML file had when it was parsed. A reader (the
indexer reads 10,000 configs in a cold pass; JSON parses about ten times faster than
YAML) takes the JSON only while ``config.yaml`` still has them (an open and ``fstat``),
so the YAML stays the record: a config edited or replaced since, a run from before this
file existed, a twin that is missing, malformed or not a regular file, all read the YAML,
with the same result. A parse that JSON cannot carry exactly (dates, integer keys) or
that the readers' limits refuse gets no twin.
"""

from __future__ import annotations

import json
import math
import os
import stat
from typing import Any

from hpclab.errors import StoreError
from hpclab.store.atomic import read_json, read_yaml, write_bytes_atomic, write_yaml_atomic
from hpclab.store.layout import RunPaths

FORMAT = 1


def write_config(paths: RunPaths, doc: Any, *, fsync: bool = True) -> None:
    """Write ``config.yaml`` (atomically) and its twin. The old twin goes first: a writer
    killed in between leaves the YAML alone, which readers parse."""
    try:
        os.unlink(paths.config_json)
    except FileNotFoundError:
        pass
    write_yaml_atomic(paths.config_yaml, doc, fsync=fsync)
    write_twin(paths, fsync=fsync)


def write_twin(paths: RunPaths, *, fsync: bool = True) -> bool:
    """Parse ``config.yaml`` as readers do and write ``config.json`` with its stamp;
    False (none written) when the parse does not survive JSON or the file changed while
    it was parsed."""
    before = os.stat(paths.config_yaml)
    try:
        parsed = read_yaml(paths.config_yaml)
    except (StoreError, RecursionError):  # past the readers' limits: they parse it (and say so)
        return False
    after = os.stat(paths.config_yaml)
    if stamp(before) != stamp(after):
        return False
    try:
        text = json.dumps({"format": FORMAT, "yaml": stamp(after), "config": parsed})
    except (TypeError, ValueError):  # a date, a set: not JSON
        return False
    if not same(json.loads(text)["config"], parsed):  # integer keys become text
        return False
    write_bytes_atomic(paths.config_json, text.encode(), fsync=fsync)
    return True


def read_config(paths: RunPaths) -> Any:
    """The parsed ``config.yaml``: the twin's when its stamp is the YAML file's now, else
    the YAML parsed. FileNotFoundError when there is no config.yaml."""
    # an open, not a stat: on NFS an open revalidates the attributes (close-to-open), a
    # stat may be answered from a cache another host's rewrite has made stale
    fd = os.open(paths.config_yaml, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(st.st_mode):
        return read_yaml(paths.config_yaml)  # refused there, with the file named
    yaml_stamp = stamp(st)
    try:
        twin = read_json(paths.config_json)
    except (OSError, StoreError):
        twin = None
    if isinstance(twin, dict) and twin.get("format") == FORMAT and twin.get("yaml") == yaml_stamp:
        return twin.get("config")
    return read_yaml(paths.config_yaml)


def stamp(st: os.stat_result) -> str:
    """``size:mtime_ns:ctime_ns:device:inode``: a rewrite changes one (a replacement by
    rename, as editors and hpclab write, the inode; an edit in place the ctime, which no
    ``utime``/``cp -p``/``rsync -t`` can set back)."""
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_dev}:{st.st_ino}"


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types all the way down (NaN equals NaN; 1 is not True)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(type(k) is str and same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)
