"""A run's details as the run page gets them (``data/details/<project>/<run_id>.json``):
status, config and its diff against the parent, the code snapshot's commit and patch,
artifacts with hashes, data fingerprints, notes, hypotheses, its seed group (label, role,
the group's other runs) and its values on the project's Pareto objectives (the compare
page computes the front of a selection from them), and how to restore it.

The page shows only what is safe to publish: the environment's variables are never
copied here, and the patch, config values, overrides and error message pass through the
secret scanner (:mod:`hpclab.tracking.secrets`) again, so a run snapshotted before a rule
existed, or with a secret in its config, publishes a marker instead. A project with
``site: {publish_code: false}`` in project.yaml publishes no code details at all (the
store keeps them: restore still works). A patch is cut at ``MAX_PATCH_BYTES``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hpclab.errors import StoreError
from hpclab.site.data import Key, SiteData, config_diff, finite, iso, loads
from hpclab.site.eval_pages import evaluation_doc, latency_doc
from hpclab.site.logtail import log_doc
from hpclab.site.media import media_doc
from hpclab.site.redact import redact_config_value, redact_patch, redact_text, redact_value
from hpclab.store.atomic import read_json
from hpclab.store.textlog import read_text_log
from hpclab.store.views import code_origin, dropped_warnings

MAX_PATCH_BYTES = 200_000


MAX_MEMBERS = 50  # of a seed group, listed in each member's details (and how many more)


@dataclass
class GroupMembers:
    head: list[dict[str, Any]]
    total: int
    repros: dict[str, list[dict[str, Any]]]


@dataclass
class DetailsCache:
    """What many runs' details share, made once per build (each run of a 100-run seed
    group listed its members again: ~2.5 ms a run at 10,000): a group's member list, and
    config values through the secret scanner (a sweep's runs share most of them)."""

    # a group's first MAX_MEMBERS members, its size, and its reproductions by the run of
    # the seed they repeat
    members: dict[tuple[str, str], GroupMembers] = field(default_factory=dict)
    config: dict[tuple[str, Any], Any] = field(default_factory=dict)

    def redact(self, path: str, value: Any) -> Any:
        try:
            return self.config[(path, value)]
        except KeyError:
            out = self.config[(path, value)] = redact_config_value(path, value)
            return out
        except TypeError:  # an unhashable value: scanned each time
            return redact_config_value(path, value)


def _resources(res: dict[str, Any] | None) -> dict[str, Any] | None:
    """The run's Slurm accounting for the efficiency card, and the advice line when it
    used under a quarter of what it asked for (:func:`hpclab.launch.resources.advice`)."""
    if res is None:
        return None
    from hpclab.launch.resources import advice

    doc = {k: _plain(v) for k, v in res.items() if k not in ("project", "run_id")}
    doc["advice"] = advice(doc)
    return doc


def run_details(data: SiteData, key: Key, cache: DetailsCache | None = None) -> dict[str, Any]:
    """The details document of one run (``cache``: shared with the other runs' of the
    same build)."""
    cache = cache or DetailsCache()
    project, run_id = key
    run = dict(data.by_key[key])
    paths = data.store.run_paths(project, run_id)
    publish = data.publish_code.get(project, True)
    if run.get("error_message"):
        run["error_message"] = redact_text(str(run["error_message"]))[0]
    if not publish:
        run = {k: v for k, v in run.items() if not k.startswith("git_")}
    summary = [
        {
            "name": name,
            "last": finite(m["last"]),
            "best": finite(m["best"]),
            "min": finite(m["min"]),
            "max": finite(m["max"]),
            "n": m["n"],
            "last_step": m["last_step"],
            "direction": m["direction"],
            "source": m.get("source") or "logged",
        }
        for name, m in sorted(data.summary.get(key, {}).items())
    ]
    sweep = None
    if run.get("sweep_id"):
        points = data.sweep_points.get((project, run["sweep_id"]), [])
        mine = [p for p in points if p["run_id"] == run_id]
        sweep = {
            "id": run["sweep_id"],
            "point": run.get("sweep_index"),
            "overrides": redact_value(mine[0]["overrides"]) if mine else None,
        }
    hyps = []
    for hk in data.run_hypotheses.get(key, []):
        h = next((x for x in data.hypotheses if (x["project"], x["hypothesis_id"]) == hk), {})
        status = data.hypothesis_status.get(hk, {})
        units = []  # the comparisons the run is a sample of, on either side
        for e in data.evidence.get(hk, []):
            side = (
                "treatment"
                if run_id in (e.get("runs") or [])
                else "baseline"
                if run_id in (e.get("baseline_runs") or [])
                else None
            )
            if side is None:
                continue
            contribution = finite(e.get("contribution"))
            units.append(
                f"{e['metric']}: {e.get('label')} vs {e.get('baseline_label')} "
                f"({e['n']} vs {e['n_baseline']}; this run: {side} sample), "
                f"{e.get('verdict')}, contribution "
                + ("–" if contribution is None else f"{contribution:+.3g}")
            )
        hyps.append(
            {
                "id": hk[1],
                "title": h.get("title"),
                "status": status.get("status") or "Proposed",
                "units": units,
            }
        )
    note = data.notes.get(key)
    repro = data.reproductions.get(key)
    return {
        "run": {k: _plain(v) for k, v in run.items() if k != "fingerprint"},
        "summary": summary,
        "dropped": _dropped(data, paths),
        "config": sorted(
            (path, cache.redact(path, value)) for path, value in data.features.get(key, {}).items()
        ),
        "diff": [
            {
                **d,
                "old": cache.redact(d["path"], d.get("old")),
                "new": cache.redact(d["path"], d.get("new")),
            }
            for d in config_diff(data, key)
        ],
        "children": data.children.get(key, []),
        "sweep": sweep,
        "code": _code(paths) if publish else {"published": False},
        "artifacts": [
            {"path": a["path"], "sha256": a["sha256"], "size": a["size"]}
            for a in data.artifacts.get(key, [])
        ],
        "datasets": [
            {k: s[k] for k in ("name", "path", "sha256", "size", "n_files")}
            for s in data.datasets.get(key, [])
        ],
        "notes": {"tags": list(note["tags"] or []), "text": note["text"]} if note else None,
        "hypotheses": hyps,
        "seed_group": seed_group(data, key, cache),
        "pareto": pareto_point(data, key),
        "reproduction": _plain_dict(repro),
        "resources": _resources(data.resources.get(key)),
        "evaluation": evaluation_doc(data, key, paths),  # issue 19: hpclab.eval
        "latency": latency_doc(data, key, paths),  # hpclab.profile
        "restore": restore_commands(project, run_id, run.get("git_commit") if publish else None),
        "logs": log_doc(paths),
        "text": _text(paths),
        "media": media_doc(paths),
    }


def seed_group(
    data: SiteData, key: Key, cache: DetailsCache | None = None
) -> dict[str, Any] | None:
    """The run's seed_groups row (group, label, seed, role, of_run, size) and the group's
    runs by creation (``members``: run_id, seed, role, of_run), samples before their
    reproductions: the first MAX_MEMBERS and the reproductions of this run, with
    ``n_members`` saying how many there are (a group gathers its config's runs from every
    sweep: listing 1,000 members in each of their details was O(runs x group size));
    None before the run is grouped."""
    row = data.seed_groups.get(key)
    if row is None:
        return None
    out = _plain_dict(row) or {}
    group = (key[0], row["group_id"])
    members = cache.members.get(group) if cache else None
    if members is None:
        every = [
            {
                k: _plain(loads(m[k]) if k == "seed" else m[k])
                for k in ("run_id", "seed", "role", "of_run")
            }
            for m in data.group_runs.get(group, [])
        ]
        repros: dict[str, list[dict[str, Any]]] = {}
        for m in every[MAX_MEMBERS:]:
            if m["role"] == "reproduction" and m["of_run"]:
                repros.setdefault(str(m["of_run"]), []).append(m)
        members = GroupMembers(every[:MAX_MEMBERS], len(every), repros)
        if cache:
            cache.members[group] = members
    out["members"] = members.head + members.repros.get(key[1], [])
    out["n_members"] = members.total
    return out


def pareto_point(data: SiteData, key: Key) -> dict[str, Any] | None:
    """The run's values on its project's Pareto objectives, as the catalog's project-wide
    front holds them (a completed run with a finite value of each); None otherwise."""
    project, run_id = key
    p = _run_rows(data.pareto.get((project, "project", ""), [])).get(run_id)
    if p is None:
        return None
    values = [finite(v) for v in p.get("values") or []]
    if not values or any(v is None for v in values):
        return None
    return {
        "objectives": [str(o) for o in p.get("objectives") or []],
        "values": values,
        "rank": p.get("rank"),
    }


_RUN_ROWS: list[tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]] = []


def _run_rows(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A scope's run rows by run id, made once per build for all its runs' details (the
    last scope's index is kept, by the identity of its row list)."""
    if _RUN_ROWS and _RUN_ROWS[0][0] is rows:
        return _RUN_ROWS[0][1]
    index = {str(r["run_id"]): r for r in rows if r.get("kind") == "run" and r.get("run_id")}
    _RUN_ROWS[:] = [(rows, index)]
    return index


MAX_TEXT_ENTRIES = 50


def _text(paths: Any) -> list[dict[str, Any]]:
    """The run's last text entries (``run.log_text``, TensorBoard ``add_text``), each
    through the secret scanner; a malformed text log publishes nothing rather than
    failing the site."""
    try:
        entries = read_text_log(paths)
    except StoreError:
        return []
    return [
        {"tag": t["tag"], "step": t["step"], "text": redact_text(t["text"])[0]}
        for t in entries[-MAX_TEXT_ENTRIES:]
    ]


def restore_commands(project: str, run_id: str, commit: str | None) -> list[str]:
    """How to get the run's code back and run it again."""
    out = [
        f"hpclab restore {run_id} --project {project}",
        f"hpclab rerun {run_id} --project {project}",
    ]
    if commit:
        out.append(f"git checkout {commit}  # then apply the run's snapshot/uncommitted.patch")
    return out


def _dropped(data: SiteData, paths: Any) -> list[str]:
    """The step rule's dropped points, one warning line per metric (from run.json: the
    catalog does not hold them)."""
    try:
        return dropped_warnings(data.store.read_record(paths))
    except Exception:  # an unreadable record: the catalog's row still makes the page
        return []


def _code(paths: Any) -> dict[str, Any]:
    """Commit, branch, dirty flag and the uncommitted patch of the code snapshot."""
    out: dict[str, Any] = {"published": True}
    try:
        code = read_json(paths.code_json) if paths.code_json.is_file() else {}
    except Exception:  # unreadable snapshot metadata: the page says there is none
        code = {}
    git = code.get("git") or {}
    out["kind"] = code.get("kind")
    out["commit"] = git.get("commit")
    out["branch"] = git.get("branch")
    out["dirty"] = git.get("is_dirty")
    out["skipped"] = len(code.get("skipped") or [])
    iso: dict[str, Any] = code.get("isolation") or {}
    iso = iso if isinstance(iso, dict) else {}
    out["origin"] = code_origin(code)  # where the code came from (isolation), in words
    out["changed_since_submit"] = iso.get("code_changed_since_submit") is True
    out["imported_outside"] = [str(m) for m in iso.get("imported_outside") or []][:20]
    out["patch"] = None
    out["patch_truncated"] = False
    if paths.code_patch.is_file():
        with open(paths.code_patch, "rb") as f:
            raw = f.read(MAX_PATCH_BYTES + 1)
        out["patch_truncated"] = len(raw) > MAX_PATCH_BYTES
        patch, findings = redact_patch(raw[:MAX_PATCH_BYTES].decode("utf-8", errors="replace"))
        out["patch"] = patch
        out["redacted"] = len(findings) + len(code.get("redactions") or [])
    return out


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, int)):  # most values: as they are
        return value
    if hasattr(value, "isoformat"):
        return iso(value)
    if isinstance(value, float):
        return finite(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _plain_dict(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {k: _plain(loads(v) if k == "seed" else v) for k, v in row.items()}
