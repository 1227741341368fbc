"""``nnsim run``: build a simulation from a model script (or a checkpoint), run it, report.

Only the options live here; what they do is `nnsim.runner`.
"""

from __future__ import annotations

import click

from nnsim.cli.options import TIME, ScriptCommand
from nnsim.runner import CheckpointOptions, parse_overrides, resolve_location, run_simulation

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
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of every component's random generator.",
)
@click.option(
    "--stop-at",
    type=TIME,
    metavar="TIME",
    help="End the run at this simulated time (e.g. 5ms; a unit is required).",
)
@click.option("-v", "--verbose", count=True, help="Phase notes; -vv traces every event.")
@click.option("--debug", is_flag=True, help="Show the Python traceback of errors.")
@click.option("--output-dot", metavar="FILE", help="Write the component graph in Graphviz dot.")
@click.option(
    "--statistics",
    metavar="FILE",
    help="Write per-component statistics at the end (.csv, or .json).",
)
@click.option(
    "--trace-events",
    metavar="FILE.json",
    help="Write every handler execution as Chrome trace-event JSON (Perfetto, chrome://tracing).",
)
@click.option(
    "--set",
    "overrides",
    metavar="NAME=VALUE",
    multiple=True,
    help="Set a value before running, e.g. controller/epochs=12 (repeatable).",
)
@click.option(
    "--interactive-start",
    is_flag=False,
    flag_value="0",
    default=None,
    type=TIME,
    metavar="[TIME]",
    help="Enter the console before the first event at or after TIME, e.g. 20us (alone or 0: at the start).",
)
@click.option(
    "--replay", metavar="FILE", help="At the first console entry, run the commands of FILE."
)
@click.option(
    "--load-checkpoint",
    metavar="PATH|URL",
    help=(
        "Restart from a checkpoint (a script is not needed; with one, the script's model and "
        "arguments must build the checkpoint's model)."
    ),
)
@click.option(
    "--checkpoint-enable",
    is_flag=True,
    help="Allow checkpoints (and take those the options below ask for).",
)
@click.option(
    "--checkpoint-dir",
    default="checkpoints",
    show_default=True,
    metavar="DIR|URL",
    help="Where checkpoints go (a folder, or an fsspec URL such as memory://ckpt).",
)
@click.option(
    "--checkpoint-prefix",
    default="checkpoint",
    show_default=True,
    metavar="NAME",
    help="Checkpoint names are NAME_<n>_<time in ps>.",
)
@click.option(
    "--checkpoint-period",
    type=TIME,
    metavar="SIMTIME",
    help="Checkpoint every SIMTIME of simulated time (e.g. 5ms).",
)
@click.option(
    "--checkpoint-wall-period",
    type=float,
    metavar="SECONDS",
    help="Checkpoint every SECONDS of wall-clock time.",
)
@click.option(
    "--checkpoint-every-epochs",
    type=int,
    default=0,
    metavar="N",
    help="Checkpoint after every N epochs.",
)
@click.option(
    "--checkpoint-every-steps",
    type=int,
    default=0,
    metavar="N",
    help="Checkpoint after every N training steps.",
)
@click.option(
    "--checkpoint-keep-last",
    type=int,
    default=0,
    metavar="K",
    help="Keep only the K newest (0: all).",
)
@click.option(
    "--checkpoint-keep-best",
    type=int,
    default=0,
    metavar="K",
    help="Also keep the K best by --checkpoint-monitor.",
)
@click.option(
    "--checkpoint-monitor",
    default="val_loss",
    show_default=True,
    metavar="METRIC",
    help="val_loss (lower is better) or val_acc (higher), train_loss, train_acc.",
)
@click.option(
    "--checkpoint-async", is_flag=True, help="Write checkpoints in the background (one at a time)."
)
@click.option(
    "--partitioner",
    default="linear",
    show_default=True,
    metavar="NAME",
    help=(
        "Parallel runs (mpiexec -n R nnsim run ...): how components are spread over the ranks: "
        "linear (contiguous in build order), roundrobin, self (sim.place(name, rank=R) in the "
        "script), graph (METIS: balanced, fewest links cut), or a registered one."
    ),
)
@click.option(
    "--output-partition",
    metavar="FILE.json",
    help="Parallel runs: write component -> rank, the links cut and the lookahead as JSON.",
)
@click.pass_context
def run(
    ctx,
    script,
    script_args,
    seed,
    stop_at,
    verbose,
    debug,
    output_dot,
    statistics,
    trace_events,
    overrides,
    interactive_start,
    replay,
    load_checkpoint,
    partitioner,
    output_partition,
    **checkpoint,
) -> None:
    """Run the model script SCRIPT (or restart a checkpoint); arguments after -- go to the script.

    The script builds the simulation (see nnsim.simulation()); nnsim runs it
    through its init, setup, run, complete and finish phases and prints the
    simulated time at the end. SCRIPT may also be a checkpoint (a folder with
    manifest.json, a folder of checkpoints, or a URL): the run continues from it.

    Started by mpiexec (mpiexec -n R nnsim run SCRIPT -- ARGS), the run is
    parallel: components are partitioned over R ranks and the results are
    the serial run's, bit for bit.
    """
    if debug:
        ctx.find_root().meta["debug"] = True
    script, load_checkpoint = resolve_location(script, load_checkpoint)
    options = CheckpointOptions.from_flags(checkpoint)
    run_simulation(
        script,
        script_args,
        load_checkpoint=load_checkpoint,
        overrides=parse_overrides(overrides),
        seed=seed,
        stop_at=stop_at,
        verbose=verbose,
        output_dot=output_dot,
        statistics=statistics,
        trace_events=trace_events,
        checkpoint=options,
        interactive_start=interactive_start,
        replay=replay,
        partitioner=partitioner,
        output_partition=output_partition,
    )
