"""What ``nnsim run`` does, as functions: build a simulation from a model script or a
checkpoint, run it with the console a Ctrl-C away, report.

The command line (`nnsim.cli.run`) only reads options and calls these;
tests and notebooks call them directly::

    from nnsim.runner import CheckpointOptions, run_simulation

    sim = run_simulation("examples/fashion_mnist/nn.py", ["--epochs", "1"],
                         checkpoint=CheckpointOptions(every_epochs=1))
    sim.components["controller"].predicted

`run_simulation` builds (or restores, `load_simulation`), applies ``--set``
values, writes the dot graph, enables checkpoints and event tracing, draws
progress bars on a terminal (`nnsim.progress`), runs through
`nnsim.console.session.ConsoleSession`, prints the last line (complete, or
why it stopped and how to continue, `stalled_line`) and writes statistics
and the trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnsim.errors import ParamError
from nnsim.files import write_text
from nnsim.script import build_from_script
from nnsim.sim import Simulation
from nnsim.sim.report import to_dot, write_statistics
from nnsim.units import format_time, parse_time


@dataclass
class CheckpointOptions:
    """The ``--checkpoint-*`` options: where checkpoints go, what triggers them, what is kept."""

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

    @classmethod
    def from_flags(cls, flags: dict[str, Any]) -> CheckpointOptions | None:
        """The options ``nnsim run``'s ``checkpoint_*`` flags ask for (None: checkpoints off).

        ``flags`` maps ``checkpoint_enable``, ``checkpoint_dir`` ... as click
        names them. Bad values are refused first (`check_checkpoint_options`);
        a trigger or retention flag without ``checkpoint_enable`` is a
        ParamError saying so.
        """
        check_checkpoint_options(flags)
        if flags["checkpoint_enable"]:
            return cls(
                directory=flags["checkpoint_dir"],
                prefix=flags["checkpoint_prefix"],
                period=flags["checkpoint_period"],
                wall_period=flags["checkpoint_wall_period"],
                every_epochs=flags["checkpoint_every_epochs"],
                every_steps=flags["checkpoint_every_steps"],
                keep_last=flags["checkpoint_keep_last"],
                keep_best=flags["checkpoint_keep_best"],
                monitor=flags["checkpoint_monitor"],
                asynchronous=flags["checkpoint_async"],
            )
        if any(
            value
            for key, value in flags.items()
            if key not in ("checkpoint_dir", "checkpoint_prefix", "checkpoint_monitor")
        ):
            raise ParamError("the --checkpoint-* options need --checkpoint-enable")
        return None


def looks_like_checkpoint(location: str) -> bool:
    """A URL, or a folder holding a checkpoint (manifest.json) or checkpoints (latest)."""
    path = Path(location)
    return "://" in location or (
        path.is_dir() and ((path / "manifest.json").exists() or (path / "latest").exists())
    )


def resolve_location(
    script: str | None, load_checkpoint: str | None
) -> tuple[str | None, str | None]:
    """``(script, load_checkpoint)``: a SCRIPT that is a checkpoint (or any folder) is restarted.

    A model script is never a folder: a folder without a manifest is then
    reported as "not a checkpoint" rather than as a missing script.
    """
    if script and not load_checkpoint and (looks_like_checkpoint(script) or Path(script).is_dir()):
        return None, script
    return script, load_checkpoint


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
    """``--set NAME=VALUE`` pairs as a dict; ParamError for a pair without ``=`` or name."""
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
    progress: str = "auto",
    partitioner: str = "linear",
    output_partition: str | Path | None = None,
) -> Simulation:
    """Everything ``nnsim run`` does, as a function: build or restore, run, report.

    ``progress`` is a `nnsim.progress` mode (``auto``: bars on a terminal);
    a component's ``progress = false`` parameter turns the bars off. Started
    by ``mpiexec``, the run is parallel (`run_parallel_simulation`).
    """
    if parallel_launched():
        return run_parallel_simulation(
            script,
            args,
            load_checkpoint=load_checkpoint,
            overrides=overrides,
            seed=seed,
            stop_at=stop_at,
            verbose=verbose,
            output_dot=output_dot,
            statistics=statistics,
            partitioner=partitioner,
            output_partition=output_partition,
            checkpoint=checkpoint,
            interactive_start=interactive_start,
            replay=replay,
            trace_events=trace_events,
        )
    if output_partition or partitioner != "linear":
        raise ParamError(
            "--partitioner and --output-partition are for parallel runs: "
            "mpiexec -n R nnsim run SCRIPT --partitioner NAME ..."
        )
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
        sim = build_simulation(script, args, seed=seed, stop_at=stop_at, verbose=verbose)
        apply_overrides(sim, overrides)
    return run_prepared(
        sim,
        output_dot=output_dot,
        statistics=statistics,
        trace_events=trace_events,
        checkpoint=checkpoint,
        interactive_start=interactive_start,
        replay=replay,
        progress=progress,
    )


def run_prepared(
    sim: Simulation,
    *,
    output_dot: str | Path | None = None,
    statistics: str | Path | None = None,
    trace_events: str | Path | None = None,
    checkpoint: CheckpointOptions | None = None,
    interactive_start: str | None = None,
    replay: str | None = None,
    progress: str = "auto",
) -> Simulation:
    """Run a simulation that is already built (or restored) as ``nnsim run`` runs one.

    The second half of `run_simulation`, for commands that build their
    simulation another way (``nnsim dataflow run`` builds it from weights
    and a hardware file): the dot graph, checkpoints, event tracing,
    progress bars, the console a Ctrl-C away, the last line, statistics.
    """
    if output_dot:
        write_text(output_dot, to_dot(sim))  # atomic: no half-written file
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
    display = attach_progress(sim, progress)
    try:
        # The console is always a Ctrl-C away; it costs nothing until it is entered.
        from nnsim.console.session import ConsoleSession
        from nnsim.units import parse_time

        start = None if interactive_start is None else parse_time(interactive_start or 0)
        ConsoleSession(sim, interactive_start=start, replay=replay).run()
    finally:
        if display is not None:
            display.close()
        if manager is not None:
            manager.close()
        if tracer is not None:
            tracer.close()
    report_end(sim, statistics, manager)
    if tracer is not None:
        tracer.write(trace_events)
    return sim


def report_end(sim: Simulation, statistics: str | Path | None, manager: Any = None) -> None:
    """The run's last line (complete, or why it stopped), then the statistics file."""
    if sim.stalled:
        sim.print(stalled_line(sim, manager))
    else:
        sim.print(f"Simulation is complete, simulated time: {format_time(sim.now)}")
    if statistics:
        write_statistics(sim, statistics)


def build_simulation(
    script: str | Path | None,
    args: list[str] | tuple[str, ...] = (),
    *,
    seed: int = 0,
    stop_at: str | None = None,
    verbose: int = 0,
) -> Simulation:
    """A new simulation built by the model script ``script`` with its arguments."""
    if script is None:
        raise ParamError("give a model script or --load-checkpoint PATH")
    sim = Simulation(seed=seed, stop_at=stop_at, verbose=verbose)
    build_from_script(sim, script, list(args))
    return sim


def apply_overrides(sim: Simulation, overrides: dict[str, str] | None) -> None:
    """``--set NAME=VALUE`` values, set as the console's ``set`` does."""
    if overrides:
        from nnsim.state.paths import set_value

        for path, text in overrides.items():
            set_value(sim, path, text)


def run_parallel_simulation(
    script: str | Path | None,
    args: list[str] | tuple[str, ...] = (),
    *,
    load_checkpoint: str | None = None,
    overrides: dict[str, str] | None = None,
    seed: int = 0,
    stop_at: str | None = None,
    verbose: int = 0,
    output_dot: str | Path | None = None,
    statistics: str | Path | None = None,
    partitioner: str = "linear",
    output_partition: str | Path | None = None,
    checkpoint: CheckpointOptions | None = None,
    interactive_start: str | None = None,
    replay: str | None = None,
    trace_events: str | Path | None = None,
    refused: dict[str, Any] | None = None,
) -> Simulation:
    """``nnsim run`` started by ``mpiexec -n R``: one simulation over R ranks (`nnsim.parallel`).

    Every rank builds the model (or restores ``load_checkpoint``, which may
    have been written by a serial run); rank 0 alone prints (the run's lines
    in serial order), writes the dot graph, the partition, the statistics and
    the checkpoints' manifests (every rank writes its own tensor files:
    one checkpoint of the whole model, restartable on any number of ranks;
    by period, wall clock, epochs or steps, in the background with
    ``asynchronous``) and the event trace (one file, a process per rank),
    and runs the console at sync points (``--interactive-start``,
    ``--replay``). Ranks other than 0 write nothing to stdout or stderr: an
    error on any rank is reported once, by rank 0. ``refused`` names options
    the calling command does not support in parallel runs, with their values
    (a value set is refused in one line).
    """
    import os
    import sys

    from nnsim.parallel import run_parallel, world

    mpi = world()
    if not mpi.root:  # rank 0 speaks for every rank
        sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the process's life

    def build() -> Simulation:
        for option, value in (refused or {}).items():
            if value:
                raise ParamError(f"{option} is not available in parallel runs yet; run serially")
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
            sim = build_simulation(script, args, seed=seed, stop_at=stop_at, verbose=verbose)
            apply_overrides(sim, overrides)
        if output_dot and mpi.root:
            write_text(output_dot, to_dot(sim))
        return sim

    sim = mpi.together(build)

    def checkpointer() -> Any:
        """Rank 0's checkpoint manager, with no triggers of its own: the parallel run calls it."""
        if checkpoint is None or not mpi.root:
            return None
        from nnsim.checkpoint.manager import Policy, enable

        policy = Policy(
            keep_last=checkpoint.keep_last,
            keep_best=checkpoint.keep_best,
            monitor=checkpoint.monitor,
        )
        return enable(sim, checkpoint.directory, prefix=checkpoint.prefix, policy=policy)

    manager = mpi.together(checkpointer, name_rank=False)

    def writer() -> Any:
        """Every rank's side of the checkpoints: its own tensor files (`nnsim.parallel.checkpoint`)."""
        if checkpoint is None:
            return None
        from nnsim.checkpoint import open_storage
        from nnsim.parallel.checkpoint import ParallelCheckpoints

        storage = manager.storage if mpi.root else open_storage(checkpoint.directory)
        return ParallelCheckpoints(mpi, storage, manager, asynchronous=checkpoint.asynchronous)

    checkpoints = mpi.together(writer, name_rank=False)
    tracer = None
    if trace_events:
        from nnsim.sim.tracing import EventTracer

        tracer = EventTracer(sim, pid=mpi.rank + 1, process=f"rank {mpi.rank}")
    try:
        run_parallel(
            sim,
            mpi,
            partitioner=partitioner,
            output_partition=output_partition and str(output_partition),
            checkpoint_period=parse_time(checkpoint.period)
            if checkpoint and checkpoint.period
            else None,
            writer=checkpoints,
            every_epochs=checkpoint.every_epochs if checkpoint else 0,
            every_steps=checkpoint.every_steps if checkpoint else 0,
            wall_period=checkpoint.wall_period if checkpoint else None,
            interactive_start=None if interactive_start is None else parse_time(interactive_start),
            replay=replay,
        )
    finally:
        if manager is not None:
            manager.close()
        if tracer is not None:
            tracer.close()
    if mpi.root:
        report_end(sim, statistics, manager)
    if tracer is not None:  # one file: each rank's slices under its own pid
        parts = mpi.gather_bytes(tracer.part().encode())
        mpi.together(
            lambda: (
                tracer.write(trace_events, [p.decode() for p in parts[1:]], used_only=True)
                if mpi.root
                else None
            ),
            name_rank=False,
        )
    return sim


def parallel_launched() -> bool:
    """Started by ``mpiexec`` (`nnsim.parallel.launched`), without importing mpi4py."""
    from nnsim.parallel.world import launched

    return launched()


def attach_progress(sim: Simulation, mode: str = "auto") -> Any:
    """The run's progress bars (`nnsim.progress.ProgressDisplay`), observing ``sim``.

    None when a component turned them off (its ``progress`` parameter);
    off a terminal (``auto``) the display draws nothing and the output is
    exactly the run's lines.
    """
    from nnsim.progress import ProgressDisplay, progress_wanted

    if not progress_wanted(sim):
        return None
    return ProgressDisplay(mode).attach(sim)


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
