"""``nnsim sweep``: run a model script once per value in parallel and rank the runs."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from nnsim.cli.options import ScriptCommand
from nnsim.errors import ParamError
from nnsim.sweep import (
    format_table,
    parse_assignment,
    parse_values,
    rich_table,
    run_sweep,
    write_csv,
)
from nnsim.sweep_workers import EXECUTORS, MPI_LAUNCH


@click.command(
    "sweep",
    cls=ScriptCommand,
    epilog=(
        "Examples: nnsim sweep examples/fashion_mnist/nn.py "
        "--set loss/optimizer/learning_rate=0.0001,0.0004,0.001 --jobs 3 -- --epochs 2\n\n"
        "nnsim sweep examples/fashion_mnist/nn.py --replay-template lr.in --values 1e-4,1e-3\n\n"
        f"{MPI_LAUNCH}"
    ),
)
@click.argument("script")
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "--set",
    "assignment",
    metavar="NAME=V1,V2,...",
    help="The state path to sweep and its values, e.g. loss/optimizer/learning_rate=1e-4,1e-3.",
)
@click.option(
    "--replay-template",
    metavar="FILE",
    type=click.Path(exists=True, dir_okay=False),
    help="Console commands replayed at time 0 in each run, {value} replaced by the run's value.",
)
@click.option("--values", metavar="V1,V2,...", help="The values for --replay-template.")
@click.option(
    "--jobs",
    "-j",
    type=int,
    default=None,
    metavar="N",
    help="Runs at once (default: one per value, at most one per CPU); 1 runs them in order.",
)
@click.option(
    "--executor",
    type=click.Choice(EXECUTORS),
    default="local",
    show_default=True,
    help=(
        "Where the runs happen: local processes, or MPI processes through mpi4py.futures "
        "(spawned, --jobs of them; or the ranks of mpiexec -n K python -m mpi4py.futures "
        "-m nnsim.cli sweep …). The results are the same."
    ),
)
@click.option("--csv", "csv_file", metavar="FILE", help="Also write the table as CSV.")
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of every run (the same for all, so the sweep is deterministic).",
)
def sweep(
    script, script_args, assignment, replay_template, values, jobs, executor, csv_file, seed
) -> None:
    """Run SCRIPT once per value of one variable and print the runs best first.

    Each run builds the simulation from SCRIPT (arguments after -- go to it),
    sets the variable (as nnsim run --set does) or replays the template's
    console commands, and runs to the end in its own process. The table
    ranks the runs by final validation accuracy, then loss, and shows the
    training metrics, simulated and wall time, and the predictions (right or
    wrong when an evaluation file is named after its class). A run that fails
    shows its error instead; the exit status is then 1.
    """
    if (assignment is None) == (replay_template is None):
        raise ParamError("give either --set NAME=V1,V2,... or --replay-template FILE --values ...")
    if assignment is not None:
        if values is not None:
            raise ParamError("--values goes with --replay-template; with --set write NAME=V1,V2")
        variable, swept = parse_assignment(assignment)
        template = None
    else:
        if values is None:
            raise ParamError("--replay-template needs --values V1,V2,...")
        variable, swept = None, parse_values(values)
        template = Path(replay_template).read_text()
        if "{value}" not in template:
            raise ParamError(f"replay template '{replay_template}' has no {{value}} to replace")
    if csv_file and not Path(csv_file).resolve().parent.is_dir():
        raise ParamError(f"the folder of --csv '{csv_file}' does not exist")

    results = _run_with_progress(
        script,
        swept,
        variable=variable,
        template=template,
        args=list(script_args),
        seed=seed,
        jobs=jobs,
        executor=executor,
    )
    title = variable or "value"
    if sys.stdout.isatty():
        from rich.console import Console

        Console().print(rich_table(results, title))
    else:
        click.echo(format_table(results, title))
    if csv_file:
        write_csv(results, csv_file)
    failed = sum(1 for result in results if not result.ok)
    if failed:
        click.echo(f"nnsim: error: {failed} of {len(results)} runs failed", err=True)
        sys.exit(1)


def _run_with_progress(script, swept, **options):
    """A progress bar on a terminal (stderr); nothing in logs and pipes."""
    if not sys.stderr.isatty():
        return run_sweep(script, swept, **options)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("sweep", total=len(swept))
        return run_sweep(script, swept, on_result=lambda result: progress.advance(task), **options)
