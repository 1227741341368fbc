"""Option types and command classes shared by the subcommands.

``TIME`` checks a simulated-time option when it is parsed, so ``--stop-at 5``
fails at once naming the option (a bare number is not a time: see
``nnsim.units.parse_time``). ``ScriptCommand`` is a command that passes
arguments after ``--`` to a model script; an unknown option tells the user
to put script arguments after ``--``, the usual slip.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

import click

from nnsim.errors import UnitError
from nnsim.units import parse_time


class SimTime(click.ParamType):
    """A simulated time such as ``5ms`` or ``1GHz``; the option keeps the text as written."""

    name = "time"

    def convert(self, value, param, ctx):
        if value is None:
            return None
        try:
            parse_time(str(value))
        except UnitError as error:
            option = param.opts[0] if param is not None and param.opts else "time"
            raise UnitError(f"{option}: {error}") from None
        return str(value)


TIME = SimTime()


class ScriptCommand(click.Command):
    """A command with a SCRIPT argument whose own arguments go after ``--``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        typed = list(args)  # the parser consumes ``args``
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as error:
            # click's cutoff offers --csv for --epochs; only a near miss is worth naming here
            close = difflib.get_close_matches(
                error.option_name, sorted(error.possibilities or ()), n=1, cutoff=0.75
            )
            ours = f" Did you mean {' or '.join(close)}?" if close else ""
            raise click.UsageError(
                f"No such option: {error.option_name}.{ours} Script arguments go after '--': "
                f"nnsim {ctx.info_name} {self._script(typed)} -- {error.option_name} …",
                ctx,
            ) from None

    def _script(self, args: list[str]) -> str:
        """The first argument that is not an option or an option's value, as typed."""
        takes_value = {
            name
            for param in self.params
            if isinstance(param, click.Option) and not (param.is_flag or param.count)
            for name in param.opts
        }
        skip = False
        for arg in args:
            if skip:
                skip = False
            elif arg.startswith("-"):
                skip = arg in takes_value
            else:
                return arg
        return "SCRIPT"


def option_group(options: list) -> Callable:
    """One decorator applying ``options`` (``click.option`` decorators) in the order listed."""

    def decorate(command: Callable) -> Callable:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


seed_option = click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of every component's random generator.",
)
debug_option = click.option("--debug", is_flag=True, help="Show the Python traceback of errors.")

SIMULATION_OPTIONS = [
    seed_option,
    click.option(
        "--stop-at",
        type=TIME,
        metavar="TIME",
        help="End the run at this simulated time (e.g. 5ms; a unit is required).",
    ),
    click.option("-v", "--verbose", count=True, help="Phase notes; -vv traces every event."),
    debug_option,
    click.option("--output-dot", metavar="FILE", help="Write the component graph in Graphviz dot."),
    click.option(
        "--statistics",
        metavar="FILE",
        help="Write per-component statistics at the end (.csv, or .json).",
    ),
    click.option(
        "--trace-events",
        metavar="FILE.json",
        help="Write every handler execution as Chrome trace-event JSON (Perfetto, chrome://tracing).",
    ),
    click.option(
        "--set",
        "overrides",
        metavar="NAME=VALUE",
        multiple=True,
        help="Set a value before running, e.g. controller/epochs=12 (repeatable).",
    ),
    click.option(
        "--interactive-start",
        is_flag=False,
        flag_value="0",
        default=None,
        type=TIME,
        metavar="[TIME]",
        help="Enter the console before the first event at or after TIME, e.g. 20us (alone or 0: at the start).",
    ),
    click.option(
        "--replay", metavar="FILE", help="At the first console entry, run the commands of FILE."
    ),
    click.option(
        "--partitioner",
        default=None,
        metavar="NAME",
        help=(
            "Parallel runs (mpiexec -n R nnsim ...): how components are spread over the ranks: "
            "linear (contiguous in build order; the default), roundrobin, self "
            "(sim.place(name, rank=R) in the script), graph (METIS: balanced, fewest links cut), "
            "or a registered one; a dataflow model is placed by hardware node."
        ),
    ),
    click.option(
        "--output-partition",
        metavar="FILE.json",
        help="Parallel runs: write component -> rank, the links cut and the lookahead as JSON.",
    ),
]
"""The options of every command that runs a simulation: seed, stop, verbosity, outputs, console."""

CHECKPOINT_OPTIONS = [
    click.option(
        "--load-checkpoint",
        metavar="PATH|URL",
        help=(
            "Restart from a checkpoint (what built the run, a script or --weights, is not needed; "
            "given, it must build the checkpoint's model)."
        ),
    ),
    click.option(
        "--checkpoint-enable",
        is_flag=True,
        help="Allow checkpoints (and take those the options below ask for).",
    ),
    click.option(
        "--checkpoint-dir",
        default="checkpoints",
        show_default=True,
        metavar="DIR|URL",
        help="Where checkpoints go (a folder, or an fsspec URL such as memory://ckpt).",
    ),
    click.option(
        "--checkpoint-prefix",
        default="checkpoint",
        show_default=True,
        metavar="NAME",
        help="Checkpoint names are NAME_<n>_<time in ps>.",
    ),
    click.option(
        "--checkpoint-period",
        type=TIME,
        metavar="SIMTIME",
        help="Checkpoint every SIMTIME of simulated time (e.g. 5ms).",
    ),
    click.option(
        "--checkpoint-wall-period",
        type=float,
        metavar="SECONDS",
        help="Checkpoint every SECONDS of wall-clock time.",
    ),
    click.option(
        "--checkpoint-every-epochs",
        type=int,
        default=0,
        metavar="N",
        help="Checkpoint after every N epochs.",
    ),
    click.option(
        "--checkpoint-every-steps",
        type=int,
        default=0,
        metavar="N",
        help="Checkpoint after every N training steps.",
    ),
    click.option(
        "--checkpoint-keep-last",
        type=int,
        default=0,
        metavar="K",
        help="Keep only the K newest (0: all).",
    ),
    click.option(
        "--checkpoint-keep-best",
        type=int,
        default=0,
        metavar="K",
        help="Also keep the K best by --checkpoint-monitor.",
    ),
    click.option(
        "--checkpoint-monitor",
        default="val_loss",
        show_default=True,
        metavar="METRIC",
        help="val_loss (lower is better) or val_acc (higher), train_loss, train_acc.",
    ),
    click.option(
        "--checkpoint-async",
        is_flag=True,
        help="Write checkpoints in the background (one at a time).",
    ),
]
"""``--load-checkpoint`` and the ``--checkpoint-*`` triggers and retention of `nnsim.runner`."""

simulation_options = option_group(SIMULATION_OPTIONS)
checkpoint_options = option_group(CHECKPOINT_OPTIONS)


def run_settings(ctx: click.Context, values: dict[str, Any]) -> dict[str, Any]:
    """Take the values of the options above out of ``values``: keyword arguments of
    `nnsim.runner.run_simulation` (``--debug`` is applied to the context here).

    ``--set`` pairs and the ``--checkpoint-*`` flags are checked now, so a bad
    one is refused before anything is built.
    """
    from nnsim.runner import CheckpointOptions, parse_overrides

    if values.pop("debug"):
        ctx.find_root().meta["debug"] = True
    flags = {key: values.pop(key) for key in list(values) if key.startswith("checkpoint_")}
    settings = {
        key: values.pop(key)
        for key in (
            "seed",
            "stop_at",
            "verbose",
            "output_dot",
            "statistics",
            "trace_events",
            "interactive_start",
            "replay",
            "load_checkpoint",
            "partitioner",
            "output_partition",
        )
    }
    settings["overrides"] = parse_overrides(values.pop("overrides"))
    settings["checkpoint"] = CheckpointOptions.from_flags(flags)
    return settings
