"""The catalog's tables: names, columns, types and what each column means.

This module is the one source of truth for the schema: the indexer writes exactly these
columns, ``connect()`` exposes them (empty when nothing is indexed yet), and the README's
schema reference is checked against it by a test. Names are a public contract.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    doc: str


def _cols(*specs: tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(*s) for s in specs)


RUN_KEY = (("project", "VARCHAR", "project name"), ("run_id", "VARCHAR", "run id"))

TABLES: dict[str, tuple[Column, ...]] = {
    "runs": _cols(
        *RUN_KEY,
        ("name", "VARCHAR", "human name given at init"),
        (
            "status",
            "VARCHAR",
            "effective status: the stored one, except a running run with a "
            "stale heartbeat shows how the scheduler says it ended, or 'lost'",
        ),
        ("stored_status", "VARCHAR", "status in run.json"),
        ("stale", "BOOLEAN", "running, but the heartbeat is older than 3 intervals"),
        ("sweep_id", "VARCHAR", "sweep the run is a point of"),
        ("sweep_index", "BIGINT", "its point number in the sweep"),
        ("parent", "VARCHAR", "parent run id in the experiment DAG (see dag_edges.rule)"),
        ("stored_parent", "VARCHAR", "parent recorded by the run (init(parent=), hpclab.parent)"),
        ("parent_rule", "VARCHAR", "what made the parent: manual, explicit, sweep or naming"),
        ("root_id", "VARCHAR", "root of the run's tree in the DAG (itself for a root)"),
        ("depth", "BIGINT", "edges between the run and its root"),
        ("seed_group", "VARCHAR", "runs whose configs are identical except the seed share it"),
        ("tags", "VARCHAR[]", "tags given at init and in notes.yaml"),
        ("created_at", "TIMESTAMP", "run directory created (UTC)"),
        ("started_at", "TIMESTAMP", "first attempt started (UTC)"),
        ("ended_at", "TIMESTAMP", "ended, last attempt (UTC)"),
        ("heartbeat_at", "TIMESTAMP", "last heartbeat (UTC)"),
        ("heartbeat_interval", "DOUBLE", "seconds between heartbeats"),
        ("duration_s", "DOUBLE", "ended_at (or last heartbeat) minus started_at"),
        ("attempt", "BIGINT", "0 for the first attempt, +1 per resume"),
        ("step", "BIGINT", "highest step logged"),
        (
            "total_steps",
            "BIGINT",
            "planned steps: run.total_steps, else the config's hpclab.total_steps, else a "
            "known config key (train.steps, trainer.max_steps, ...)",
        ),
        ("host", "VARCHAR", "host of the last attempt"),
        ("user", "VARCHAR", "user who ran it"),
        ("scheduler", "VARCHAR", "slurm or local"),
        ("job_id", "VARCHAR", "scheduler job id (array task: 123_4)"),
        ("array_job_id", "VARCHAR", "Slurm array job id"),
        ("array_task_id", "VARCHAR", "Slurm array task id"),
        (
            "scheduler_state",
            "VARCHAR",
            "the scheduler's state of the job (PENDING, RUNNING, COMPLETED, ...) as "
            "hpclab index/watch/status last saw it",
        ),
        ("scheduler_reason", "VARCHAR", "why pending (Resources, Priority) or how it ended"),
        ("error_type", "VARCHAR", "exception type of a failed run"),
        ("error_message", "VARCHAR", "exception message of a failed run"),
        ("git_commit", "VARCHAR", "commit of the code snapshot (null outside git)"),
        ("git_dirty", "BOOLEAN", "uncommitted or untracked changes were snapshotted"),
        ("code_id", "VARCHAR", "content hash of the code tree (equal ids: identical trees)"),
        (
            "code_isolation",
            "VARCHAR",
            "sweep: ran from the copy taken at submission; in-place: ran in the working tree",
        ),
        (
            "code_changed_since_submit",
            "BOOLEAN",
            "in-place runs: the tree differed from the one submitted (null: not known)",
        ),
        ("n_metrics", "BIGINT", "number of metrics"),
        ("dir", "VARCHAR", "run directory"),
        ("fingerprint", "VARCHAR", "sizes and mtimes of the run's files when indexed"),
    ),
    "metrics": _cols(
        *RUN_KEY,
        ("name", "VARCHAR", "metric name (train/loss)"),
        ("step", "BIGINT", "step"),
        ("value", "DOUBLE", "value (NaN and inf kept)"),
        ("wall_time", "DOUBLE", "epoch seconds when logged"),
    ),
    "metric_summary": _cols(
        *RUN_KEY,
        ("name", "VARCHAR", "metric name"),
        ("last", "DOUBLE", "value at the last step"),
        ("best", "DOUBLE", "min or max by the project's direction for the metric"),
        ("mean", "DOUBLE", "mean of finite values"),
        ("min", "DOUBLE", "minimum of finite values"),
        ("max", "DOUBLE", "maximum of finite values"),
        ("n", "BIGINT", "number of points"),
        ("last_step", "BIGINT", "last step"),
        ("direction", "VARCHAR", "minimize or maximize (project.yaml, else by name)"),
        ("key_value", "DOUBLE", "the project's aggregation (last|best|mean) for key metrics"),
        ("is_key", "BOOLEAN", "a key metric of the project"),
        (
            "source",
            "VARCHAR",
            "logged (points only), return (the task's return value only; n=1, last_step "
            "null), or logged+return (last is the returned value, the rest the logged points)",
        ),
    ),
    "features": _cols(
        *RUN_KEY,
        ("path", "VARCHAR", "dotted path in the resolved config (optim.lr, layers[1])"),
        ("value", "VARCHAR", "the value as JSON text"),
        ("value_num", "DOUBLE", "the value when it is a number (else null)"),
    ),
    "sweeps": _cols(
        ("project", "VARCHAR", "project name"),
        ("sweep_id", "VARCHAR", "sweep id"),
        ("status", "VARCHAR", "planned or queued (as recorded at submission)"),
        ("launcher", "VARCHAR", "slurm or local"),
        ("job_id", "VARCHAR", "Slurm array job id"),
        ("n_points", "BIGINT", "number of points"),
        ("created_at", "TIMESTAMP", "when it was submitted (UTC)"),
        ("command", "VARCHAR", "the command line"),
    ),
    "sweep_points": _cols(
        ("project", "VARCHAR", "project name"),
        ("sweep_id", "VARCHAR", "sweep id"),
        ("point", "BIGINT", "point number"),
        ("run_id", "VARCHAR", "the point's run"),
        ("overrides", "VARCHAR", "the point's overrides, space-separated"),
        ("job_id", "VARCHAR", "scheduler job id of the point"),
    ),
    "artifacts": _cols(
        *RUN_KEY,
        ("path", "VARCHAR", "path under the run's artifacts/"),
        ("sha256", "VARCHAR", "content hash"),
        ("size", "BIGINT", "bytes"),
    ),
    "datasets": _cols(
        *RUN_KEY,
        ("name", "VARCHAR", "dataset name"),
        ("path", "VARCHAR", "absolute path when tracked"),
        ("sha256", "VARCHAR", "combined sha256 of its files"),
        ("size", "BIGINT", "total bytes"),
        ("n_files", "BIGINT", "number of files"),
        ("schema", "VARCHAR", "detected schema (JSON)"),
    ),
    "notes": _cols(
        *RUN_KEY,
        ("tags", "VARCHAR[]", "tags set with hpclab note (PUBLISH, BAD, ...)"),
        ("text", "VARCHAR", "free text"),
        ("updated_at", "TIMESTAMP", "last edit (UTC)"),
    ),
    "dag_edges": _cols(
        ("project", "VARCHAR", "project name"),
        ("parent_id", "VARCHAR", "parent run id"),
        ("child_id", "VARCHAR", "child run id"),
        (
            "rule",
            "VARCHAR",
            "manual (hpclab dag set-parent), explicit (init(parent=) / hpclab.parent), "
            "sweep (the sweep's base run) or naming (project.yaml naming.regex)",
        ),
        ("detail", "VARCHAR", "the matched name or sweep id behind the rule"),
    ),
    "feature_diffs": _cols(
        *RUN_KEY,
        ("parent_id", "VARCHAR", "the parent the run is compared with"),
        ("path", "VARCHAR", "dotted config path (optim.lr, layers[1])"),
        ("change", "VARCHAR", "added, changed or removed"),
        ("old", "VARCHAR", "the parent's value as JSON (null when added)"),
        ("new", "VARCHAR", "the run's value as JSON (null when removed)"),
    ),
    "hypotheses": _cols(
        ("project", "VARCHAR", "project name"),
        ("hypothesis_id", "VARCHAR", "id (the file name under hypotheses/)"),
        ("title", "VARCHAR", "one-line claim"),
        ("description", "VARCHAR", "free text"),
        ("author", "VARCHAR", "who wrote it"),
        ("metrics", "VARCHAR[]", "target metrics"),
        ("targets", "VARCHAR", "target metrics with direction, weight, aggregation (JSON)"),
        ("baseline", "VARCHAR", "parent, root, best or a run id"),
        ("selectors", "VARCHAR", "how runs are linked: run ids, sweeps, feature conditions (JSON)"),
        ("runs", "VARCHAR[]", "the linked runs"),
        ("status_override", "VARCHAR", "status set by hand (null: computed)"),
        ("created_at", "TIMESTAMP", "created (UTC)"),
        ("updated_at", "TIMESTAMP", "last edit (UTC)"),
        ("file", "VARCHAR", "the hypothesis file"),
    ),
    "evidence": _cols(
        ("project", "VARCHAR", "project name"),
        ("hypothesis_id", "VARCHAR", "hypothesis"),
        ("metric", "VARCHAR", "target metric"),
        ("direction", "VARCHAR", "minimize or maximize"),
        ("group_id", "VARCHAR", "the treatment seed group (linked runs)"),
        ("label", "VARCHAR", "what the treatment group sets, against the baseline group"),
        ("baseline_group", "VARCHAR", "the seed group it is compared with"),
        ("baseline_label", "VARCHAR", "the baseline group's values of the same config paths"),
        ("run_id", "VARCHAR", "the treatment group's first sample (all of them: runs)"),
        ("runs", "VARCHAR[]", "the treatment group's samples (one run per seed)"),
        ("baseline_runs", "VARCHAR[]", "the baseline group's samples"),
        ("n", "BIGINT", "treatment samples with a value"),
        ("n_baseline", "BIGINT", "baseline samples with a value"),
        ("value", "DOUBLE", "mean of the treatment samples' values (the target's aggregation)"),
        ("baseline", "DOUBLE", "mean of the baseline samples' values"),
        ("delta", "DOUBLE", "maximize: value - baseline; minimize: baseline - value (+ = better)"),
        ("ci_low", "DOUBLE", "bootstrap CI of delta, low (null: too few values)"),
        ("ci_high", "DOUBLE", "bootstrap CI of delta, high"),
        (
            "ci_method",
            "VARCHAR",
            "bca, expanded (percentile), percentile, t, welch-t, exact or none",
        ),
        ("scale", "DOUBLE", "pooled within-group sd / Hedges' J: normalized_delta is Hedges' g"),
        ("scale_kind", "VARCHAR", "pooled_sd, or baseline_abs / unit when there is no spread"),
        ("normalized_delta", "DOUBLE", "delta / scale"),
        (
            "se",
            "DOUBLE",
            "standard error of normalized_delta (Hedges & Olkin; null: one run a side)",
        ),
        ("paired", "BOOLEAN", "both groups have the same seeds: the paired tests are beside"),
        ("p_welch", "DOUBLE", "Welch's t-test p-value (two-sided)"),
        ("p_permutation", "DOUBLE", "permutation test p-value (two-sided)"),
        ("p_paired_t", "DOUBLE", "paired t-test p-value (two-sided; paired only)"),
        ("p_paired_permutation", "DOUBLE", "sign-flip permutation p-value (paired only)"),
        ("hedges_g", "DOUBLE", "effect size: Hedges' g (bias-corrected standardized difference)"),
        ("p_holm", "DOUBLE", "max(Welch p, permutation p), Holm-adjusted over the hypothesis"),
        ("verdict", "VARCHAR", "better, worse, not significant, too few seeds or tests disagree"),
        ("weight", "DOUBLE", "the target's weight / the target's comparisons (sums to 1)"),
        ("stability", "DOUBLE", "1 / (1 + tail noise / scale): noise in the last 10% of steps"),
        (
            "agreement",
            "DOUBLE",
            "1 when Welch and permutation both ran and agree at alpha, else 0.5",
        ),
        ("n_confidence", "DOUBLE", "m / (m + 1), m the smaller number of samples"),
        ("confidence", "DOUBLE", "n_confidence * agreement * stability, in [0, 1]"),
        (
            "contribution",
            "DOUBLE",
            "weight * confidence * normalized_delta (the contributions sum to E)",
        ),
    ),
    "hypothesis_status": _cols(
        ("project", "VARCHAR", "project name"),
        ("hypothesis_id", "VARCHAR", "hypothesis"),
        ("status", "VARCHAR", "Proposed, Testing, Supported, Refuted or Inconclusive"),
        ("computed_status", "VARCHAR", "the status the evidence gives"),
        ("override", "VARCHAR", "status set by hand (null: none)"),
        ("evidence", "DOUBLE", "E = sum of contributions: weighted mean of confidence x nd"),
        ("evidence_low", "DOUBLE", "E - z * se(E) (null: a comparison has no standard error)"),
        ("evidence_high", "DOUBLE", "E + z * se(E)"),
        ("n_runs", "BIGINT", "linked runs"),
        ("n_units", "BIGINT", "evidence units (comparisons: treatment group x metric)"),
        ("n_for", "BIGINT", "units significantly better than their baseline"),
        ("n_against", "BIGINT", "units significantly worse than their baseline"),
        ("n_pending", "BIGINT", "linked runs not finished yet"),
        ("supported_at", "DOUBLE", "threshold T_support: E above it (and a unit for) supports"),
        ("refuted_at", "DOUBLE", "threshold T_refute: E below it (and a unit against) refutes"),
        ("alpha", "DOUBLE", "significance level (project.yaml statistics.alpha)"),
        ("reason", "VARCHAR", "why this status, in words, with the CI, tests and n per side"),
    ),
    "seed_groups": _cols(
        *RUN_KEY,
        (
            "group_id",
            "VARCHAR",
            "hash of the config without the seed paths, the code id and the data fingerprints",
        ),
        ("seed", "VARCHAR", "the run's seed values (JSON)"),
        (
            "role",
            "VARCHAR",
            "sample (the earliest completed run of its seed), reproduction (a later run "
            "of the same seed: a rerun, a repro, a relaunch) or pending (not completed)",
        ),
        ("of_run", "VARCHAR", "a reproduction's sample (the run of the same seed it repeats)"),
        ("size", "BIGINT", "samples in the group (distinct seeds of completed runs)"),
        ("label", "VARCHAR", "the config diff against the project baseline (optim.lr=0.03)"),
        ("code_id", "VARCHAR", "the group's code identity (code.json code_id; null: unknown)"),
    ),
    "seed_group_stats": _cols(
        ("project", "VARCHAR", "project name"),
        ("group_id", "VARCHAR", "seed group"),
        ("label", "VARCHAR", "the group's label"),
        ("metric", "VARCHAR", "metric (its key value, else its last value)"),
        ("n", "BIGINT", "samples with a finite value (one run per seed)"),
        ("mean", "DOUBLE", "mean over the samples"),
        ("std", "DOUBLE", "sample standard deviation (null for one run)"),
        ("ci_low", "DOUBLE", "bootstrap CI of the mean, low (asymmetric in general)"),
        ("ci_high", "DOUBLE", "bootstrap CI of the mean, high"),
        (
            "ci_method",
            "VARCHAR",
            "bca, expanded (percentile), percentile, t, welch-t, exact or none",
        ),
        ("level", "DOUBLE", "confidence level of the interval (project.yaml statistics.level)"),
    ),
    "group_comparisons": _cols(
        ("project", "VARCHAR", "project name"),
        (
            "family",
            "VARCHAR",
            "what the Holm correction runs over: sweep:<id> (a sweep report) or group:<id>",
        ),
        ("metric", "VARCHAR", "metric"),
        ("group_a", "VARCHAR", "seed group compared"),
        ("group_b", "VARCHAR", "the group it is compared with"),
        ("label_a", "VARCHAR", "a's values of the config paths where a and b differ"),
        ("label_b", "VARCHAR", "b's values of those paths"),
        ("basis", "VARCHAR", "parent (b holds a's parents) or sweep_best (b: best in sweep)"),
        ("direction", "VARCHAR", "minimize or maximize"),
        ("n_a", "BIGINT", "samples in a"),
        ("n_b", "BIGINT", "samples in b"),
        ("mean_a", "DOUBLE", "mean of a"),
        ("mean_b", "DOUBLE", "mean of b"),
        ("diff", "DOUBLE", "mean_a - mean_b"),
        ("ci_low", "DOUBLE", "bootstrap CI of the difference, low"),
        ("ci_high", "DOUBLE", "bootstrap CI of the difference, high"),
        (
            "ci_method",
            "VARCHAR",
            "bca, expanded (percentile), percentile, t, welch-t, exact or none",
        ),
        ("level", "DOUBLE", "confidence level"),
        (
            "paired",
            "BOOLEAN",
            "same seeds on both sides: paired tests reported (Welch/perm. decide)",
        ),
        ("n_pairs", "BIGINT", "seeds in both groups"),
        ("p_welch", "DOUBLE", "Welch's t-test p-value (two-sided)"),
        ("p_permutation", "DOUBLE", "permutation test p-value (two-sided)"),
        ("permutation_exact", "BOOLEAN", "every relabelling enumerated (else 5,000 random)"),
        ("p_paired_t", "DOUBLE", "paired t-test p-value (paired only)"),
        ("p_paired_permutation", "DOUBLE", "sign-flip permutation p-value (paired only)"),
        ("hedges_g", "DOUBLE", "effect size: Hedges' g"),
        ("p_holm", "DOUBLE", "max(Welch p, permutation p), Holm-adjusted over the family"),
        ("alpha", "DOUBLE", "significance level"),
        ("verdict", "VARCHAR", "better, worse, not significant, too few seeds or tests disagree"),
        ("reason", "VARCHAR", "the verdict in words, with the CI, the tests and n per side"),
    ),
    "pareto": _cols(
        ("project", "VARCHAR", "project name"),
        ("scope", "VARCHAR", "what the front is computed within: project, sweep or hypothesis"),
        ("scope_id", "VARCHAR", "the sweep or hypothesis id ('' for the project)"),
        ("kind", "VARCHAR", "run (one run's values) or group (a seed group's means)"),
        ("run_id", "VARCHAR", "the run (kind run; null for a group)"),
        ("group_id", "VARCHAR", "the run's or the group's seed group"),
        ("label", "VARCHAR", "the group's label"),
        (
            "objectives",
            "VARCHAR[]",
            "objective names (project.yaml pareto, default: first key metric and duration_s)",
        ),
        ("values", "DOUBLE[]", "the run's value, or the group's mean, of each objective"),
        ("ci_low", "DOUBLE[]", "groups: the CI of each objective's mean, low (null for runs)"),
        ("ci_high", "DOUBLE[]", "groups: the CI of each objective's mean, high"),
        ("n", "BIGINT", "samples behind the values (1 for a run)"),
        ("rank", "BIGINT", "non-dominated sorting layer within the scope: 0 is the Pareto front"),
        ("on_front", "BOOLEAN", "rank = 0"),
    ),
    "reproductions": _cols(
        *RUN_KEY,
        ("of_run", "VARCHAR", "the original run the rerun reproduces"),
        ("verdict", "VARCHAR", "reproduced or drifted"),
        ("max_abs_diff", "DOUBLE", "largest absolute difference over compared points"),
        ("max_rel_diff", "DOUBLE", "largest relative difference"),
        ("worst_metric", "VARCHAR", "metric of the point furthest outside its tolerance"),
        ("worst_step", "BIGINT", "its step (null: a final value)"),
        ("n_compared", "BIGINT", "points compared"),
        ("rtol", "DOUBLE", "relative tolerance"),
        ("atol", "DOUBLE", "absolute tolerance"),
        ("checked_at", "TIMESTAMP", "when (UTC)"),
    ),
    "media": _cols(
        *RUN_KEY,
        ("kind", "VARCHAR", "image, histogram or table (hpclab.tracking.media)"),
        ("name", "VARCHAR", "the name it was logged under"),
        ("step", "BIGINT", "the step it was logged at"),
        ("file", "VARCHAR", "where, under the run's media/ (a histogram: its Zarr array)"),
        ("row", "BIGINT", "a histogram's row in its array"),
        ("sha256", "VARCHAR", "the content's hash (images and tables are stored once)"),
        ("bytes", "BIGINT", "stored size"),
        ("width", "BIGINT", "an image's width in pixels"),
        ("height", "BIGINT", "an image's height in pixels"),
        ("n_rows", "BIGINT", "a table's rows"),
        ("bins", "BIGINT", "a histogram's bins"),
        ("low", "DOUBLE", "a histogram's lowest finite value"),
        ("high", "DOUBLE", "a histogram's highest finite value"),
        ("logged_at", "TIMESTAMP", "when (UTC)"),
    ),
    "run_resources": _cols(
        *RUN_KEY,
        ("job_id", "VARCHAR", "the Slurm job (an array task: 12_3)"),
        ("state", "VARCHAR", "the job's final state in accounting"),
        ("exit_code", "VARCHAR", "code:signal"),
        ("elapsed_s", "DOUBLE", "wall time of the allocation (whole seconds)"),
        ("nodes", "BIGINT", "nodes allocated"),
        ("node_list", "VARCHAR", "which"),
        ("alloc_cpus", "BIGINT", "CPUs allocated (AllocTRES cpu=)"),
        ("alloc_gpus", "BIGINT", "GPUs allocated (AllocTRES gres/gpu=)"),
        ("alloc_mem_mb", "DOUBLE", "memory allocated (AllocTRES mem=), when accounted"),
        ("req_mem_mb", "DOUBLE", "memory requested (ReqTRES mem=, else ReqMem)"),
        ("cpu_used_s", "DOUBLE", "CPU time used, user + system, over every step (TotalCPU)"),
        ("max_rss_mb", "DOUBLE", "peak resident memory of the largest step (MaxRSS)"),
        ("gpu_util_pct", "DOUBLE", "TRESUsageInTot gres/gpuutil, where the site tracks it"),
        ("gpu_mem_mb", "DOUBLE", "TRESUsageInTot gres/gpumem, where the site tracks it"),
        ("cpu_efficiency", "DOUBLE", "cpu_used_s / (alloc_cpus x elapsed_s), as seff"),
        ("mem_efficiency", "DOUBLE", "max_rss_mb / req_mem_mb (or alloc_mem_mb), as seff"),
        ("cpu_hours", "DOUBLE", "alloc_cpus x elapsed: CPU-hours charged"),
        ("gpu_hours", "DOUBLE", "alloc_gpus x elapsed: GPU-hours allocated"),
        ("source", "VARCHAR", "sacct: Slurm accounting over every step of the job"),
        ("checked_at", "TIMESTAMP", "when accounting was read (UTC)"),
    ),
}

SMALL_TABLES = tuple(t for t in TABLES if t != "metrics")
# the tables of runs' rows (from each run's files): published as a base file + a delta of
# the runs changed since it was written
RUN_KEYED: tuple[str, ...] = ("runs", "features", "artifacts", "datasets", "notes")
RUN_KEYED += ("reproductions", "run_resources", "media", "metric_summary")


def empty_select(table: str) -> str:
    """A SELECT with the table's columns and no rows (before anything is indexed)."""
    cols = ", ".join(f"CAST(NULL AS {c.type}) AS {quote(c.name)}" for c in TABLES[table])
    return f"SELECT {cols} WHERE false"


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
