"""Running the simulation (CONSOLE.md): ``run``, ``continue``, ``exit``, ``quit``, ``shutdown``, ``checkpoint``."""

from __future__ import annotations

from nnsim.console.engine import Console, ConsoleError, command
from nnsim.errors import NnsimError
from nnsim.units import MAX_TIME, format_time, parse_time


@command(
    "run",
    "r",
    "run [TIME]",
    "Continue; with TIME (e.g. 4us, the unit required) stop again after that much simulated time.",
)
def _run(console: Console, args: list[str], rest: str) -> None:
    if len(args) > 1:
        raise ConsoleError("usage: run [TIME]")
    until = None
    if args:
        try:
            until = console.sim.now + parse_time(args[0])
        except NnsimError as error:
            raise ConsoleError(str(error)) from None
        if until > MAX_TIME:
            raise ConsoleError(
                f"run {args[0]} would go past the end of simulated time "
                f"({format_time(MAX_TIME)}); give a shorter time"
            )
    console.run_simulation(until)


@command("continue", "c", "continue", "Same as run.")
def _continue(console: Console, args: list[str], rest: str) -> None:
    _run(console, args, rest)


@command(
    "exit", "e", "exit", "Clear all watchpoints (asks unless confirm false) and run to the end."
)
def _exit(console: Console, args: list[str], rest: str) -> None:
    if console.watchpoints and not console.ask("Remove all watchpoints and run to the end?"):
        return
    console.clear_watchpoints()
    if console.sim.finished:
        console.finished_session = True
        return
    console.run_simulation(to_the_end=True)  # comes back early only for a Ctrl-C, into the console


@command("quit", "q", "quit", "Same as exit.")
def _quit(console: Console, args: list[str], rest: str) -> None:
    _exit(console, args, rest)


@command(
    "shutdown", "shutd", "shutdown", "End the simulation cleanly now (complete and finish run)."
)
def _shutdown(console: Console, args: list[str], rest: str) -> None:
    console.shutdown()
    console.finished_session = True
    console.emit(f"Simulation shut down at {format_time(console.sim.now)}")


@command(
    "checkpoint", "cpt", "checkpoint [NAME]", "Write a checkpoint now (needs --checkpoint-enable)."
)
def _checkpoint(console: Console, args: list[str], rest: str) -> None:
    if len(args) > 1:
        raise ConsoleError("usage: checkpoint [NAME]")
    name = console.checkpoint(args[0] if args else None)
    console.emit(f"wrote checkpoint {name}")
