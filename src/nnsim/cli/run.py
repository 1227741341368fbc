"""``nnsim run model.py [options] -- [script args]``: build a simulation from a script, run it."""

from __future__ import annotations

from pathlib import Path

import click

from nnsim.script import build_from_script
from nnsim.sim import Simulation
from nnsim.sim.report import to_dot, write_statistics
from nnsim.units import format_time


def run_script(
    script: str | Path,
    args: list[str] | tuple[str, ...] = (),
    *,
    seed: int = 0,
    stop_at: str | None = None,
    verbose: int = 0,
    output_dot: str | Path | None = None,
    statistics: str | Path | None = None,
) -> Simulation:
    """Everything ``nnsim run`` does, as a function: build, run, report; return the simulation."""
    sim = Simulation(seed=seed, stop_at=stop_at, verbose=verbose)
    build_from_script(sim, script, list(args))
    if output_dot:
        Path(output_dot).write_text(to_dot(sim))
    sim.run()
    sim.print(f"Simulation is complete, simulated time: {format_time(sim.now)}")
    if statistics:
        write_statistics(sim, statistics)
    return sim


@click.command(
    "run",
    context_settings={"ignore_unknown_options": False},
    epilog="Example: nnsim run examples/fashion_mnist/nn.py --seed 1 -- --epochs 2",
)
@click.argument("script", type=click.Path(dir_okay=False))
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of every component's random generator.",
)
@click.option("--stop-at", metavar="TIME", help="End the run at this simulated time (e.g. 5ms).")
@click.option("-v", "--verbose", count=True, help="More output; repeat for more.")
@click.option("--debug", is_flag=True, help="Show the Python traceback of errors.")
@click.option("--output-dot", metavar="FILE", help="Write the component graph in Graphviz dot.")
@click.option(
    "--statistics",
    metavar="FILE",
    help="Write per-component statistics at the end (.csv, or .json).",
)
@click.pass_context
def run(ctx, script, script_args, seed, stop_at, verbose, debug, output_dot, statistics) -> None:
    """Run the model script SCRIPT; arguments after -- go to the script.

    The script builds the simulation (see nnsim.simulation()); nnsim then runs
    it through its init, setup, run, complete and finish phases and prints the
    simulated time at the end.
    """
    if debug:
        ctx.find_root().meta["debug"] = True
    run_script(
        script,
        script_args,
        seed=seed,
        stop_at=stop_at,
        verbose=verbose,
        output_dot=output_dot,
        statistics=statistics,
    )
