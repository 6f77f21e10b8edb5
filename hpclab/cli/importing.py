"""``hpclab import``: bring a lab's past runs in from other tools."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from hpclab.cli.terminal import echo
from hpclab.store import Store

if TYPE_CHECKING:
    from hpclab.importers.common import ImportReport


@click.group("import")
def import_() -> None:
    """Import past runs from other tools: TensorBoard, MLflow, W&B offline runs.

    Example: hpclab import tensorboard runs/ --project old
    """


def _start(store: Store, project: str) -> None:
    from hpclab.store.layout import check_project_name

    check_project_name(project)
    store.ensure_version()


def _say(report: ImportReport, project: str) -> None:
    for run_id, source in report.imported:
        echo(f"imported {source} as run {run_id}")
    for source in report.skipped:
        echo(f"skipped {source} (imported before)")
    done, skipped = len(report.imported), len(report.skipped)
    echo(f"{done} run(s) imported into project {project}, {skipped} skipped")


@import_.command("tensorboard")
@click.argument("dirs", nargs=-1, required=True, type=click.Path())
@click.option("--project", "-p", default="imported", show_default=True, help="Target project.")
@click.pass_obj
def import_tensorboard(store: Store, dirs: tuple[str, ...], project: str) -> None:
    """Every directory with TensorBoard event files under DIRS becomes a run: its scalars
    at their own steps and wall times, named by its path; one imported before is skipped.

    Example: hpclab import tensorboard ~/old-logs/lightning_logs --project mnist
    """
    from hpclab.importers.tensorboard import import_tensorboard as run_import

    _start(store, project)
    _say(run_import(store, project, dirs), project)


@import_.command("mlflow")
@click.argument("path")
@click.option("--project", "-p", default="imported", show_default=True, help="Target project.")
@click.option(
    "--experiment", "-e", "experiments", multiple=True, help="Only this experiment (repeatable)."
)
@click.pass_obj
def import_mlflow(store: Store, path: str, project: str, experiments: tuple[str, ...]) -> None:
    """Every run of the MLflow store at PATH (an mlruns directory or a SQLite .db) becomes a
    run: parameters as config, every metric point, times, status and tags.

    Example: hpclab import mlflow ~/old/mlruns --project mnist
    """
    from hpclab.importers.mlflow import import_mlflow as run_import

    _start(store, project)
    _say(run_import(store, project, path, experiments), project)


@import_.command("wandb")
@click.argument("dirs", nargs=-1, required=True, type=click.Path())
@click.option("--project", "-p", default="imported", show_default=True, help="Target project.")
@click.pass_obj
def import_wandb(store: Store, dirs: tuple[str, ...], project: str) -> None:
    """Every W&B offline run (wandb/offline-run-*) under DIRS becomes a run: its config,
    tags, every logged number at its _step and _timestamp, summary and exit code.

    Example: hpclab import wandb ~/project/wandb --project mnist
    """
    from hpclab.importers.wandb import import_wandb as run_import

    _start(store, project)
    _say(run_import(store, project, dirs), project)
