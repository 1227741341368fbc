"""``nnsim run``: build a simulation from a model script (or a checkpoint), run it, report.

Only the options live here; what they do is `nnsim.runner`.
"""

from __future__ import annotations

import click

from nnsim.cli.options import (
    ScriptCommand,
    checkpoint_options,
    run_settings,
    simulation_options,
)
from nnsim.runner import resolve_location, run_simulation

__all__ = ["run", "run_simulation"]  # run_simulation: the function behind the command


@click.command(
    "run",
    cls=ScriptCommand,
    epilog=(
        "Examples: nnsim run examples/fashion_mnist/nn.py --seed 1 -- --epochs 2\n\n"
        "nnsim run --load-checkpoint checkpoints --set controller/eval_images=examples/fashion_mnist/eval2"
    ),
)
@click.argument("script", required=False)
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED)
@simulation_options
@checkpoint_options
@click.pass_context
def run(ctx, script, script_args, **options) -> None:
    """Run the model script SCRIPT (or restart a checkpoint); arguments after -- go to the script.

    The script builds the simulation (see nnsim.simulation()); nnsim runs it
    through its init, setup, run, complete and finish phases and prints the
    simulated time at the end. SCRIPT may also be a checkpoint (a folder with
    manifest.json, a folder of checkpoints, or a URL): the run continues from it.

    Started by mpiexec (mpiexec -n R nnsim run SCRIPT -- ARGS), the run is
    parallel: components are partitioned over R ranks and the results are
    the serial run's, bit for bit.
    """
    settings = run_settings(ctx, options)
    script, settings["load_checkpoint"] = resolve_location(script, settings["load_checkpoint"])
    run_simulation(script, script_args, **settings)
