"""What one run contributes to the catalog, read from its files.

Everything here is a pure function of the run directory: the indexer calls it for runs
whose fingerprint changed, and a cold index on a fresh catalog gets the same rows.
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpclab.store import RunPaths, RunRecord, Store
from hpclab.store.atomic import read_json, read_yaml
from hpclab.store.config_twin import read_config
from hpclab.store.record import is_iso_timestamp, parse_iso
from hpclab.store.views import planned_steps, total_steps
from hpclab.tracking.media import read_media_index

# The files whose sizes and mtimes make a run's fingerprint (metrics: the commit record,
# which the writer replaces after every flush).
_REL = RunPaths(Path(""))  # the paths relative to a run directory
FINGERPRINT_FILES = tuple(
    str(p)
    for p in (
        _REL.run_json,
        _REL.config_yaml,
        _REL.overrides_yaml,
        _REL.notes_yaml,
        _REL.artifacts_manifest,
        _REL.code_json,
        _REL.datasets_json,
        _REL.metrics_commit,
        _REL.repro_json,
        _REL.resources_json,
        _REL.media_index,
        _REL.eval_metrics_json,  # hpclab.eval (issue 19)
        _REL.eval_slices_json,
        _REL.profile_dir,  # a profile written (atomically: a rename) changes its mtime
    )
)


_RUN_JSON = FINGERPRINT_FILES[0]
assert _RUN_JSON == str(_REL.run_json)  # record_present reads the first part
# each file with the name in the run directory it is under (itself, or its directory)
_FINGERPRINT_HEADS = tuple((rel, rel.split(os.sep, 1)[0]) for rel in FINGERPRINT_FILES)
_NOTHING = "|".join("-" for _ in FINGERPRINT_FILES)

_CONFIG, _NOTES, _ARTIFACTS, _CODE, _DATASETS, _REPRO, _RESOURCES, _MEDIA = (
    str(_REL.config_yaml),
    str(_REL.notes_yaml),
    str(_REL.artifacts_manifest),
    str(_REL.code_json),
    str(_REL.datasets_json),
    str(_REL.repro_json),
    str(_REL.resources_json),
    str(_REL.media_index),
)
_EVAL_METRICS, _EVAL_SLICES, _PROFILE = (
    str(_REL.eval_metrics_json),
    str(_REL.eval_slices_json),
    str(_REL.profile_dir),
)


def absent_files(fp: str | None) -> frozenset[str]:
    """The files a fingerprint found missing (paths relative to the run directory).

    A pass reads only what its fingerprint saw, so a run with none of the optional files
    (most runs) costs no failed opens (on NFS, a lookup round trip each); a file created
    since changes the fingerprint, and the next pass reads it."""
    if not fp:
        return frozenset()
    parts = fp.split("|")
    if len(parts) != len(FINGERPRINT_FILES):
        return frozenset()
    return frozenset(rel for rel, part in zip(FINGERPRINT_FILES, parts, strict=True) if part == "-")


def fingerprint(paths: RunPaths) -> str:
    """A cheap change detector: ``size:mtime_ns`` of each file that feeds the catalog
    (``-``: absent; a ``run.json`` that is not a regular file is absent too).

    One listing of the run directory, then a ``stat`` only of the files under a name it
    holds: a run has 4 or 5 of the 14 (on NFS, each missing file's ``stat`` is a lookup
    round trip; a listing is one). A directory that may be entered but not listed
    (another user's run, mode 711) has each file stat'ed."""
    return fingerprint_dir(str(paths.dir))


def fingerprint_dir(base: str) -> str:
    """:func:`fingerprint` of the run directory ``base`` (a pass over 10,000 runs builds
    no paths for the runs it leaves alone)."""
    present: set[str] | None
    try:
        with os.scandir(base) as entries:
            present = {e.name for e in entries}
    except (FileNotFoundError, NotADirectoryError):
        return _NOTHING
    except OSError:  # listing refused (another user's run, mode 711): stat each file
        present = None
    parts = []
    base += os.sep
    for rel, head in _FINGERPRINT_HEADS:
        if present is not None and head not in present:
            parts.append("-")
            continue
        try:
            st = os.stat(base + rel)
        except OSError:
            parts.append("-")
            continue
        if rel is _RUN_JSON and not stat.S_ISREG(st.st_mode):
            parts.append("-")
            continue
        parts.append(f"{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def record_present(fp: str) -> bool:
    """The fingerprint saw the run's ``run.json`` as a regular file (a directory without
    one is not a run, or not one yet: it is not indexed)."""
    return not fp.startswith("-|")


@dataclass
class RunRows:
    """Rows of the small tables for one run (metric rows live in the run's Parquet).

    Each row is keyed by its table's column names (``project`` and ``run_id`` left out:
    the indexer adds them), features aside: (path, JSON value, number) tuples, the shape
    the knowledge layer compares and hashes."""

    created_at: str  # the record's: with run_id, which incarnation of the run this is
    runs: dict[str, Any]
    returned: dict[str, float] = field(default_factory=dict)  # the record's return values
    features: list[tuple[str, str, float | None]] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, Any] | None = None
    repro: dict[str, Any] | None = None  # hpclab repro's verdict on this rerun
    resources: dict[str, Any] | None = None  # the Slurm job's accounting (resources.json)
    media: list[dict[str, Any]] = field(default_factory=list)  # media/index.jsonl
    eval_metrics: list[dict[str, Any]] = field(default_factory=list)  # eval/metrics.json
    eval_slices: list[dict[str, Any]] = field(default_factory=list)  # eval/slices.json
    latency: list[dict[str, Any]] = field(default_factory=list)  # profile/<name>.json


def extract_run(store: Store, project: str, paths: RunPaths, fp: str | None = None) -> RunRows:
    """Parse one run's files (raises StoreError naming the file when one is malformed).

    ``fp``: the fingerprint this read answers for; files it found missing are not opened
    (:func:`absent_files`)."""
    absent = absent_files(fp)

    def optional(read: Callable[[Path], Any], attr: str, rel: str) -> Any:
        # the path is built only for a file the fingerprint saw (most runs have few)
        return None if rel in absent else _optional(read, getattr(paths, attr))

    record = store.read_record(paths)
    runs = _run_row(record, paths, None if _CODE in absent else paths.code_json)
    # what the indexer keeps of the record besides the runs row (a restarted indexer has
    # no more: the published tables hold the rest)
    rows = RunRows(created_at=record.created_at, runs=runs, returned=record.returned)
    # the writer's parse (config.json) while config.yaml is the file it parsed
    config = None if _CONFIG in absent else _optional(read_config, paths)
    if config is not None:
        rows.features = list(flatten_features(config))
    runs["total_steps"] = planned_steps(record, total_steps(config))
    artifacts = optional(read_json, "artifacts_manifest", _ARTIFACTS)
    if artifacts is not None:
        for a in _list(artifacts):
            rows.artifacts.append(
                {
                    "path": str(a.get("path")),
                    "sha256": _text(a.get("sha256")) or None,  # None: a reference not hashed
                    "size": _count(a.get("size") or 0),
                }
            )
    datasets = optional(read_json, "datasets_json", _DATASETS)
    if datasets is not None:
        for d in _list(datasets):
            rows.datasets.append(
                {
                    "name": str(d.get("name")),
                    "path": _text(d.get("path")),
                    "sha256": _text(d.get("sha256")),
                    "size": _count(d.get("size")),
                    "n_files": _count(d.get("n_files")),
                    "schema": json.dumps(_schemas(d), sort_keys=True, default=str),
                }
            )
    r = optional(read_json, "repro_json", _REPRO)
    if r is not None:
        if isinstance(r, Mapping):
            rows.repro = {
                "of_run": _text(r.get("of")),
                "verdict": _text(r.get("verdict")),
                "max_abs_diff": _num(r.get("max_abs_diff")),
                "max_rel_diff": _num(r.get("max_rel_diff")),
                "worst_metric": _text(r.get("worst_metric")),
                "worst_step": _count(r.get("worst_step")),
                "n_compared": _count(r.get("n_compared")),
                "rtol": _num(r.get("rtol")),
                "atol": _num(r.get("atol")),
                "checked_at": _iso_or_none(r.get("checked_at")),
            }
    if _MEDIA not in absent:
        rows.media = [_media_row(m) for m in read_media_index(paths.media_dir)]
    res = optional(read_json, "resources_json", _RESOURCES)
    if isinstance(res, Mapping):
        rows.resources = _resources_row(res)
    rows.eval_metrics, rows.eval_slices = _eval_rows(paths, absent)
    if _PROFILE not in absent:
        rows.latency = _latency_rows(paths)
    notes = optional(read_yaml, "notes_yaml", _NOTES)
    if notes is not None:
        notes = notes or {}
        if isinstance(notes, Mapping):
            raw_tags = notes.get("tags") or []
            tags = [str(t) for t in raw_tags] if isinstance(raw_tags, list) else []
            rows.notes = {
                "tags": tags,
                "text": str(notes.get("text") or ""),
                "updated_at": _iso_or_none(notes.get("updated_at")),
            }
            runs["tags"] = sorted(set(runs["tags"]) | set(tags))
    return rows


def _run_row(record: RunRecord, paths: RunPaths, code_json: Path | None) -> dict[str, Any]:
    """The ``runs`` row. The record's own fields are validated (RunRecord.from_dict); the
    objects inside it and ``code.json`` are free-form: a value of the wrong type is null."""
    sched = {k: _text(v) for k, v in (record.scheduler or {}).items()}
    submission = {k: _text(v) for k, v in (record.submission or {}).items()}
    job_id = None
    if sched.get("array_job_id") and sched.get("array_task_id") is not None:
        job_id = f"{sched['array_job_id']}_{sched['array_task_id']}"
    job_id = job_id or sched.get("job_id") or submission.get("job_id")
    code: dict[str, Any] = {}
    try:
        loaded = _optional(read_json, code_json) if code_json is not None else None
        code = loaded if isinstance(loaded, dict) else {}
    except Exception:
        code = {}
    git_doc = code.get("git")
    git: Mapping[str, Any] = git_doc if isinstance(git_doc, Mapping) else {}
    started = parse_iso(record.started_at)
    ended = parse_iso(record.ended_at) or parse_iso(record.heartbeat_at)
    state = {k: _text(v) for k, v in (record.scheduler_state or {}).items()}
    error = record.error or {}
    return {
        "name": record.name,
        "stored_status": record.status.value,
        "sweep_id": record.sweep_id,
        "sweep_index": record.sweep_index,
        "parent": record.parent,  # the DAG's parent replaces it when published
        "stored_parent": record.parent,
        "tags": list(record.tags),
        "created_at": record.created_at,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "heartbeat_at": record.heartbeat_at,
        "heartbeat_interval": record.heartbeat_interval,
        "duration_s": (ended - started) if started is not None and ended is not None else None,
        "attempt": record.attempt,
        "step": record.step if record.step >= 0 else None,
        "host": record.host,
        "user": record.user,
        "scheduler": sched.get("kind") or submission.get("scheduler"),
        "job_id": job_id,
        "array_job_id": sched.get("array_job_id") or submission.get("array_job_id"),
        "array_task_id": sched.get("array_task_id"),
        "scheduler_state": state.get("state"),
        "scheduler_reason": state.get("reason"),
        "error_type": _text(error.get("type")),
        "error_message": _text(error.get("message")),
        "git_commit": _text(git.get("commit")),
        "git_dirty": git.get("is_dirty") if isinstance(git.get("is_dirty"), bool) else None,
        **_isolation_fields(code),
        "dir": str(paths.dir),
    }


def _isolation_fields(code: Mapping[str, Any]) -> dict[str, Any]:
    """Where the run's code came from (``code.json`` ``isolation``)."""
    iso = code.get("isolation")
    iso = iso if isinstance(iso, Mapping) else {}
    changed = iso.get("code_changed_since_submit")
    code_id = code.get("code_id") or iso.get("code_id")
    return {
        "code_id": code_id if isinstance(code_id, str) else None,
        "code_isolation": iso.get("mode") if isinstance(iso.get("mode"), str) else None,
        "code_changed_since_submit": changed if isinstance(changed, bool) else None,
    }


def flatten_features(config: Any, prefix: str = "") -> Iterator[tuple[str, str, float | None]]:
    """(path, JSON value, numeric value) for every leaf of a config: ``optim.lr``,
    ``layers[1]``; empty dicts and lists are leaves too."""
    out: list[tuple[str, str, float | None]] = []
    _flatten(config, prefix, out)
    return iter(out)


def _flatten(config: Any, prefix: str, out: list[tuple[str, str, float | None]]) -> None:
    # one list, not nested generators, and the plain leaves (most of a config) encoded in
    # the loop that meets them: a cold index flattens 10,000 configs
    kind = type(config)
    if kind is dict or (kind not in _LEAVES and kind is not list and isinstance(config, Mapping)):
        if config:
            for key, value in config.items():
                path = f"{prefix}.{key}" if prefix else str(key)
                if type(value) in _LEAVES:
                    if path:  # a top-level "" key names no path: no feature, as ever
                        out.append(_leaf(path, value))
                else:
                    _flatten(value, path, out)
            return
    elif kind is list or (kind not in _LEAVES and isinstance(config, list)):
        if config:
            for i, value in enumerate(config):
                path = f"{prefix}[{i}]"
                if type(value) in _LEAVES:
                    out.append(_leaf(path, value))
                else:
                    _flatten(value, path, out)
            return
    if prefix:
        if kind in _LEAVES:
            out.append(_leaf(prefix, config))
            return
        num = None
        if isinstance(config, (int, float)) and not isinstance(config, bool):
            num = _num(config)
        out.append((prefix, json.dumps(config, sort_keys=True, default=str), num))


def _leaf(path: str, value: Any) -> tuple[str, str, float | None]:
    """A leaf of one of the exact types of _LEAVES, as json.dumps writes it."""
    kind = type(value)
    if kind is float:
        return (path, _float_json(value), value)
    if kind is str:
        return (path, _str_json(value), None)
    if kind is int:  # 10**400 in a config is a value, not a number a DOUBLE holds
        return (path, repr(value), float(value) if abs(value) < 2**1023 else None)
    return (path, "null" if value is None else "true" if value else "false", None)


_LEAVES = frozenset({float, str, int, bool, type(None)})  # exact types: a subclass is not one


# json.dumps of a leaf, without an encoder per call (a cold index flattens 10,000 configs)
_str_json: Callable[[str], str] = json.encoder.encode_basestring_ascii
_FLOAT_JSON = {math.inf: "Infinity", -math.inf: "-Infinity"}


def _float_json(x: float) -> str:
    return "NaN" if x != x else _FLOAT_JSON.get(x) or float.__repr__(x)


_RESOURCE_NUMBERS = (
    "elapsed_s", "alloc_mem_mb", "req_mem_mb", "cpu_used_s", "max_rss_mb", "gpu_util_pct",
    "gpu_mem_mb", "cpu_efficiency", "mem_efficiency", "cpu_hours", "gpu_hours",
    "gpu_hours_used",
)  # fmt: skip
_RESOURCE_COUNTS = ("nodes", "alloc_cpus", "alloc_gpus")


def _resources_row(r: Mapping[str, Any]) -> dict[str, Any]:
    """``resources.json`` as a ``run_resources`` row (a malformed field: null, not a
    failed pass)."""
    out: dict[str, Any] = {
        k: (str(r[k]) if r.get(k) is not None else None)
        for k in ("job_id", "state", "exit_code", "node_list", "source", "gpu_used_source")
    }
    out.update({k: _num(r.get(k)) for k in _RESOURCE_NUMBERS})
    out.update({k: _count(r.get(k)) for k in _RESOURCE_COUNTS})
    out["checked_at"] = _iso_or_none(r.get("checked_at"))
    return out


def _eval_rows(
    paths: RunPaths, absent: frozenset[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``eval/metrics.json`` and ``eval/slices.json`` as rows (a malformed field: null)."""
    metrics: list[dict[str, Any]] = []
    doc = None if _EVAL_METRICS in absent else _optional(read_json, paths.eval_metrics_json)
    if isinstance(doc, Mapping) and isinstance(doc.get("metrics"), Mapping):
        method = f"{_text(doc.get('method'))}, {_count(doc.get('n_boot'))} resamples"
        for name, m in sorted(doc["metrics"].items()):
            m = m if isinstance(m, Mapping) else {}
            metrics.append(
                {
                    "metric": str(name),
                    "value": _num(m.get("value")),
                    "ci_low": _num(m.get("ci_low")),
                    "ci_high": _num(m.get("ci_high")),
                    "n": _count(doc.get("n")),
                    "method": method,
                }
            )
    slices: list[dict[str, Any]] = []
    doc = None if _EVAL_SLICES in absent else _optional(read_json, paths.eval_slices_json)
    if isinstance(doc, Mapping):
        for r in _list(doc.get("slices")):
            slices.append(
                {
                    "slice": _text(r.get("slice")),
                    "slice_value": _text(r.get("slice_value")),
                    "n": _count(r.get("n")),
                    "metric": _text(r.get("metric")),
                    **{k: _num(r.get(k)) for k in ("value", "ci_low", "ci_high", "p_value")},
                    "flagged": r.get("flagged") is True,
                }
            )
    return metrics, slices


_LATENCY_NUMBERS = (
    "p50_ms", "p95_ms", "p99_ms", "mean_ms", "min_ms", "max_ms", "wall_s", "throughput_per_s",
)  # fmt: skip


def _latency_rows(paths: RunPaths) -> list[dict[str, Any]]:
    """Each ``profile/<name>.json`` as a ``latency`` row (name: the file's)."""
    try:
        names = sorted(
            e.name[:-5]
            for e in os.scandir(paths.profile_dir)
            if e.name.endswith(".json") and not e.name.startswith(".") and e.is_file()
        )
    except OSError:  # no profile/
        return []
    out = []
    for name in names:
        doc = _optional(read_json, paths.latency_json(name))
        if not isinstance(doc, Mapping):
            continue
        row: dict[str, Any] = {"name": name}
        row.update({k: _count(doc.get(k)) for k in ("calls", "warmup", "concurrency")})
        row.update({k: _num(doc.get(k)) for k in _LATENCY_NUMBERS})
        out.append(row)
    return out


def _iso_or_none(value: Any) -> str | None:
    return value if is_iso_timestamp(value) else None


def _text(value: Any) -> str | None:
    """A VARCHAR value: a string, a number as text, else (objects, lists) null."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _media_row(m: dict[str, Any]) -> dict[str, Any]:
    """A ``media/index.jsonl`` entry as a ``media`` row (malformed fields: null)."""
    return {
        "kind": str(m.get("kind")),
        "name": str(m.get("name")),
        "step": _count(m.get("step")),
        "file": m.get("file") if isinstance(m.get("file"), str) else None,
        "row": _count(m.get("row")),
        "sha256": m.get("sha256") if isinstance(m.get("sha256"), str) else None,
        "bytes": _count(m.get("bytes")),
        "width": _count(m.get("width")),
        "height": _count(m.get("height")),
        "n_rows": _count(m.get("rows")),
        "bins": _count(m.get("bins")),
        "low": _num(m.get("low")),
        "high": _num(m.get("high")),
        "logged_at": _iso_or_none(m.get("logged_at")),
    }


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value) if math.isfinite(value) and abs(value) < 2**62 else None


def _optional(read: Callable[[Any], Any], path: Any) -> Any:
    """The parsed file, or None when it does not exist (one open, no stat first)."""
    try:
        return read(path)
    except FileNotFoundError:
        return None


def _list(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _schemas(dataset: Mapping[str, Any]) -> Any:
    files = dataset.get("files")
    files = files if isinstance(files, list) else []
    return [
        f.get("schema") for f in files if isinstance(f, dict) and f.get("schema")
    ] or dataset.get("schema")


def _num(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def finite_or_nan(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan
    return out
