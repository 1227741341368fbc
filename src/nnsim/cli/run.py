"""``nnsim run``: build a simulation from a model script (or a checkpoint), run it, report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from nnsim.cli.options import TIME, ScriptCommand
from nnsim.errors import ParamError
from nnsim.files import write_text as atomic_write_text
from nnsim.script import build_from_script
from nnsim.sim import Simulation
from nnsim.sim.report import to_dot, write_statistics
from nnsim.units import format_time


@dataclass
class CheckpointOptions:
    """The ``--checkpoint-*`` options."""

    directory: str = "checkpoints"
    prefix: str = "checkpoint"
    period: str | None = None
    wall_period: float | None = None
    every_epochs: int = 0
    every_steps: int = 0
    keep_last: int = 0
    keep_best: int = 0
    monitor: str = "val_loss"
    asynchronous: bool = False


def looks_like_checkpoint(location: str) -> bool:
    """A URL, or a folder holding a checkpoint (manifest.json) or checkpoints (latest)."""
    path = Path(location)
    return "://" in location or (
        path.is_dir() and ((path / "manifest.json").exists() or (path / "latest").exists())
    )


def check_checkpoint_options(options: dict) -> None:
    """ParamError (one line naming the option) for a negative count, a period <= 0, an unknown metric."""
    from nnsim.checkpoint.manager import MONITORS, check_count, check_seconds
    from nnsim.units import parse_time

    for key in ("every_epochs", "every_steps", "keep_last", "keep_best"):
        check_count(f"--checkpoint-{key.replace('_', '-')}", options[f"checkpoint_{key}"])
    check_seconds("--checkpoint-wall-period", options["checkpoint_wall_period"])
    period = options["checkpoint_period"]
    if period is not None and parse_time(period) <= 0:
        raise ParamError(f"--checkpoint-period must be longer than 0, not {period!r}")
    monitor = options["checkpoint_monitor"]
    if monitor not in MONITORS:
        raise ParamError(
            f"--checkpoint-monitor {monitor!r} is not a metric nnsim reports; "
            f"use one of {', '.join(MONITORS)}"
        )


def parse_overrides(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ParamError(f"--set takes NAME=VALUE (e.g. controller/epochs=12), not {pair!r}")
        overrides[name.strip()] = value
    return overrides


def load_simulation(
    location: str,
    *,
    script: str | None = None,
    script_args: list[str] | tuple[str, ...] = (),
    overrides: dict[str, str] | None = None,
    verbose: int = 0,
) -> Simulation:
    """Rebuild a simulation from a checkpoint (into the script's model when one is given)."""
    from nnsim.checkpoint import open_checkpoint
    from nnsim.checkpoint.manager import continue_lineage
    from nnsim.state import restore
    from nnsim.train.build import run_folder_overrides

    storage, name = open_checkpoint(location)
    body, tensors = storage.load(name)
    # A run folder's checkpoint reads its data where the run's config.toml says (it may have moved).
    overrides = {**run_folder_overrides(storage, body), **(overrides or {})}
    sim = None
    if script:
        sim = Simulation(seed=body["model"]["seed"], verbose=verbose)
        build_from_script(sim, script, list(script_args))
    sim = restore(body, tensors, sim=sim, overrides=overrides, verbose=verbose)
    return continue_lineage(sim, body)


def run_simulation(
    script: str | Path | None = None,
    args: list[str] | tuple[str, ...] = (),
    *,
    load_checkpoint: str | None = None,
    overrides: dict[str, str] | None = None,
    seed: int = 0,
    stop_at: str | None = None,
    verbose: int = 0,
    output_dot: str | Path | None = None,
    statistics: str | Path | None = None,
    trace_events: str | Path | None = None,
    checkpoint: CheckpointOptions | None = None,
    interactive_start: str | None = None,
    replay: str | None = None,
) -> Simulation:
    """Everything ``nnsim run`` does, as a function: build or restore, run, report."""
    if load_checkpoint:
        sim = load_simulation(
            load_checkpoint,
            script=script and str(script),
            script_args=args,
            overrides=overrides,
            verbose=verbose,
        )
        sim.set_stop_at(stop_at)
    else:
        if script is None:
            raise ParamError("give a model script or --load-checkpoint PATH")
        sim = Simulation(seed=seed, stop_at=stop_at, verbose=verbose)
        build_from_script(sim, script, list(args))
        if overrides:
            from nnsim.state.paths import set_value

            for path, text in overrides.items():
                set_value(sim, path, text)
    if output_dot:
        atomic_write_text(output_dot, to_dot(sim))
    manager = None
    if checkpoint is not None:
        from nnsim.checkpoint.manager import Policy, enable

        policy = Policy(
            every_epochs=checkpoint.every_epochs,
            every_steps=checkpoint.every_steps,
            keep_last=checkpoint.keep_last,
            keep_best=checkpoint.keep_best,
            monitor=checkpoint.monitor,
        )
        manager = enable(
            sim,
            checkpoint.directory,
            prefix=checkpoint.prefix,
            period=checkpoint.period,
            wall_period=checkpoint.wall_period,
            policy=policy,
            asynchronous=checkpoint.asynchronous,
        )
    tracer = None
    if trace_events:
        from nnsim.sim.tracing import EventTracer

        tracer = EventTracer(sim)  # wraps the handlers only now: no cost without the option
    try:
        # The console is always a Ctrl-C away; it costs nothing until it is entered.
        from nnsim.console.session import ConsoleSession
        from nnsim.units import parse_time

        start = None if interactive_start is None else parse_time(interactive_start or 0)
        ConsoleSession(sim, interactive_start=start, replay=replay).run()
    finally:
        if manager is not None:
            manager.close()
        if tracer is not None:
            tracer.close()
    if sim.stalled:
        sim.print(stalled_line(sim, manager))
    else:
        sim.print(f"Simulation is complete, simulated time: {format_time(sim.now)}")
    if statistics:
        write_statistics(sim, statistics)
    if tracer is not None:
        tracer.write(trace_events)
    return sim


def stalled_line(sim: Simulation, manager=None) -> str:
    """The last line of a run that stopped waiting: what waited, and how to go on from there.

    ``manager`` is the run's checkpoint manager (or None): its newest
    checkpoint is the one to restart from with the waking setting.
    """
    waits = sim.waiting()
    why = "; ".join(wait.why for wait in waits) + " and nothing else is scheduled"
    sets = " ".join(
        f"--set {path}={value}" for path, value in (w.setting for w in waits if w.setting)
    )
    line = f"Simulation stopped at {format_time(sim.now)}: {why}"
    if not sets:
        return line
    if manager is not None and manager.written:
        where = manager.storage.location(manager.written[-1])
        if Path(where).is_absolute() and Path(where).is_relative_to(Path.cwd()):
            where = str(Path(where).relative_to(Path.cwd()))
        return f"{line}; continue from its checkpoint with: nnsim run {where} {sets}"
    return (
        f"{line}; nothing was checkpointed: run with --checkpoint-enable and a trigger "
        f"(e.g. --checkpoint-every-epochs 1), then restart the newest checkpoint with {sets}"
    )


def run_script(script: str | Path, args: list[str] | tuple[str, ...] = (), **options) -> Simulation:
    """Build ``script`` and run it (``run_simulation`` without a checkpoint)."""
    return run_simulation(script, args, **options)


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
    **checkpoint,
) -> None:
    """Run the model script SCRIPT (or restart a checkpoint); arguments after -- go to the script.

    The script builds the simulation (see nnsim.simulation()); nnsim runs it
    through its init, setup, run, complete and finish phases and prints the
    simulated time at the end. SCRIPT may also be a checkpoint (a folder with
    manifest.json, a folder of checkpoints, or a URL): the run continues from it.
    """
    if debug:
        ctx.find_root().meta["debug"] = True
    if script and not load_checkpoint and (looks_like_checkpoint(script) or Path(script).is_dir()):
        # a model script is never a folder: one without a manifest is "not a checkpoint"
        load_checkpoint, script = script, None
    check_checkpoint_options(checkpoint)
    options = None
    if checkpoint.pop("checkpoint_enable"):
        options = CheckpointOptions(
            directory=checkpoint["checkpoint_dir"],
            prefix=checkpoint["checkpoint_prefix"],
            period=checkpoint["checkpoint_period"],
            wall_period=checkpoint["checkpoint_wall_period"],
            every_epochs=checkpoint["checkpoint_every_epochs"],
            every_steps=checkpoint["checkpoint_every_steps"],
            keep_last=checkpoint["checkpoint_keep_last"],
            keep_best=checkpoint["checkpoint_keep_best"],
            monitor=checkpoint["checkpoint_monitor"],
            asynchronous=checkpoint["checkpoint_async"],
        )
    elif any(
        value
        for key, value in checkpoint.items()
        if key not in ("checkpoint_dir", "checkpoint_prefix", "checkpoint_monitor")
    ):
        raise ParamError("the --checkpoint-* options need --checkpoint-enable")
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
    )
