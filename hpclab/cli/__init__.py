"""The ``hpclab`` command: thin commands over the library.

Each command parses its arguments, calls one library function and prints. Errors a user
can cause (:class:`~hpclab.errors.HpclabError`) become one line on stderr and exit 1;
anything else is a bug and keeps its traceback. The library logs its warnings to the
``hpclab`` logger (``logging.getLogger(__name__)`` in each module); while a command runs,
one handler prints them to stderr as ``hpclab: warning: <message>``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from hpclab import __version__
from hpclab.cli.terminal import printable
from hpclab.errors import HpclabError
from hpclab.settings import unknown_env_vars
from hpclab.store import Store


class _StderrHandler(logging.Handler):
    """``hpclab: warning: <message>`` on the stderr of the moment (click's, so a test's
    CliRunner sees it too)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = f"hpclab: {record.levelname.lower()}: {record.getMessage()}"
            click.echo(printable(text), err=True)
        except Exception:
            self.handleError(record)


class _Group(click.Group):
    """A click group that turns domain errors into one clean line."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("standalone_mode", True)
        logger = logging.getLogger("hpclab")
        handler = _StderrHandler(logging.WARNING)
        logger.addHandler(handler)
        for line in unknown_env_vars():  # a typo like HPCLAB_STOER: warn, others' vars leak
            click.echo(f"hpclab: warning: {line}", err=True)
        try:
            return super().main(*args, **{**kwargs, "standalone_mode": False})
        except HpclabError as e:
            click.echo(printable(f"hpclab: error: {e}"), err=True)
            sys.exit(e.exit_code)
        except click.exceptions.Abort:
            click.echo("hpclab: aborted", err=True)
            sys.exit(130)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        finally:
            logger.removeHandler(handler)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="hpclab")
@click.option(
    "--store",
    envvar="HPCLAB_STORE",
    default=None,
    metavar="DIR",
    help="Store root (default: $HPCLAB_STORE, else ./hpclab-store).",
)
@click.pass_context
def cli(ctx: click.Context, store: str | None) -> None:
    """hpclab: experiments on Slurm, tracked beside the runs, with no server.

    Example: hpclab --store /shared/hpclab runs list
    """
    ctx.obj = Store.resolve(store)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="hpclab")


from hpclab.cli import alerting as _alerting  # noqa: E402
from hpclab.cli import catalog as _catalog  # noqa: E402
from hpclab.cli import command as _command  # noqa: E402
from hpclab.cli import importing as _importing  # noqa: E402
from hpclab.cli import jobs as _jobs  # noqa: E402
from hpclab.cli import launching as _launching  # noqa: E402
from hpclab.cli import logs as _logs  # noqa: E402
from hpclab.cli import research as _research  # noqa: E402
from hpclab.cli import restore as _restore  # noqa: E402
from hpclab.cli import runs as _runs  # noqa: E402
from hpclab.cli import search as _search  # noqa: E402
from hpclab.cli import site as _site  # noqa: E402
from hpclab.cli.guard import guard_commands  # noqa: E402

cli.add_command(_runs.runs)
cli.add_command(_command.run)
cli.add_command(_jobs.status)
cli.add_command(_jobs.cancel)
cli.add_command(_logs.logs)
cli.add_command(_launching.preflight)
cli.add_command(_launching.cluster)
cli.add_command(_catalog.index)
cli.add_command(_catalog.sql)
cli.add_command(_catalog.note)
cli.add_command(_catalog.watch)
cli.add_command(_alerting.alerts)
cli.add_command(_site.site)
cli.add_command(_research.dag)
cli.add_command(_research.hypothesis)
cli.add_command(_restore.restore)
cli.add_command(_restore.rerun)
cli.add_command(_restore.repro)
cli.add_command(_restore.env)
cli.add_command(_search.search)
cli.add_command(_importing.import_)
guard_commands(cli)  # typos are errors: hpclab/cli/guard.py, last

__all__ = ["cli", "main"]
