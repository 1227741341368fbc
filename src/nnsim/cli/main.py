"""The ``nnsim`` command: subcommands over the Python API, errors as one line."""

from __future__ import annotations

import sys
import warnings

import click

from nnsim import __version__
from nnsim.checkpoint.errors import CheckpointWarning
from nnsim.cli.checkpoint import checkpoint
from nnsim.cli.data import data
from nnsim.cli.dataflow import dataflow
from nnsim.cli.graph import graph
from nnsim.cli.info import info
from nnsim.cli.predict import predict
from nnsim.cli.run import run
from nnsim.cli.sweep import sweep
from nnsim.cli.test import test
from nnsim.cli.train import train
from nnsim.errors import Interrupted, NnsimError

INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C


class _Group(click.Group):
    """Prints an NnsimError as one line and exits 1; ``--debug`` keeps the traceback.

    nnsim's own warnings (`CheckpointWarning`: a checkpoint skipped, another
    run's checkpoints kept) are printed as one ``nnsim: warning:`` line each.
    Ctrl-C is not an error: one line saying so (and how to go on, when the
    command knows) and exit status 130.
    """

    def invoke(self, ctx: click.Context):
        with warnings.catch_warnings():
            warnings.simplefilter("always", CheckpointWarning)
            warnings.showwarning = _one_line_warnings(warnings.showwarning)
            try:
                return super().invoke(ctx)
            except Interrupted as error:
                if ctx.meta.get("debug"):
                    raise
                click.echo(f"nnsim: {error}", err=True)
                sys.exit(INTERRUPTED)
            except KeyboardInterrupt:
                if ctx.meta.get("debug"):
                    raise
                click.echo("nnsim: interrupted", err=True)
                sys.exit(INTERRUPTED)
            except NnsimError as error:
                if ctx.meta.get("debug"):
                    raise
                click.echo(f"nnsim: error: {error}", err=True)
                sys.exit(1)


def _one_line_warnings(show):
    """A ``warnings.showwarning`` that prints nnsim's warnings as one line, others as ``show`` does."""

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, CheckpointWarning):
            click.echo(f"nnsim: warning: {message}", err=True)
        else:
            show(message, category, filename, lineno, file, line)

    return showwarning


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nnsim")
@click.option("--debug", is_flag=True, help="Show the Python traceback of errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """nnsim: neural networks as discrete-event simulations."""
    ctx.meta["debug"] = debug


cli.add_command(run)
cli.add_command(info)
cli.add_command(data)
cli.add_command(checkpoint)
cli.add_command(predict)
cli.add_command(graph)
cli.add_command(sweep)
cli.add_command(train)
cli.add_command(test)
cli.add_command(dataflow)


def main() -> None:
    from nnsim.parallel.world import launched_rank

    if launched_rank() not in (None, 0):  # under mpiexec, rank 0 speaks for every rank
        import os

        sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the process's life
    cli(prog_name="nnsim")
