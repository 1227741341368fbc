"""Watchpoints and traces (CONSOLE.md): ``watch``, ``trace``, ``watchlist``, ...

The engine keeps the watchpoints and their hooks; this module parses what
the commands type and builds a trace's action (``action_runner``).
"""

from __future__ import annotations

from collections.abc import Callable

from nnsim.console.commands.state import converted_value
from nnsim.console.engine import Console, ConsoleError, command
from nnsim.console.objectmap import is_scalar
from nnsim.console.triggers import parse_trigger
from nnsim.console.watch import HANDLER_POINTS, TraceBuffer, WatchPoint
from nnsim.errors import NnsimError
from nnsim.units import format_time

ACTIONS = ("interactive", "printTrace", "checkpoint", "set", "printStatus", "shutdown")


@command(
    "watch",
    "w",
    "watch TRIGGER",
    "Stop in the console when TRIGGER holds.",
    "TRIGGER: CMP [(&& | ||) CMP]..., CMP is 'VAR changed', 'VAR OP VALUE' or 'VAR OP VAR',\n"
    "OP one of < <= > >= == !=; evaluated left to right, no precedence.",
)
def _watch(console: Console, args: list[str], rest: str) -> None:
    trigger = parse_trigger(rest.split(), console.variable)
    watchpoint = console.add_watchpoint(trigger, "interactive", console.enter_from_watchpoint)
    console.emit(f"Added watchpoint #{watchpoint.index}")


@command(
    "trace",
    "t",
    "trace TRIGGER : BUFSIZE POSTDELAY : VAR... : ACTION",
    "Keep BUFSIZE samples of the VARs; when TRIGGER holds take POSTDELAY more, then ACTION.",
    "ACTION: interactive, printTrace, checkpoint, set VAR VALUE, printStatus, shutdown.",
)
def _trace(console: Console, args: list[str], rest: str) -> None:
    fields = [field.strip() for field in rest.split(":")]
    if len(fields) != 4 or not all(fields):
        raise ConsoleError(
            "usage: trace TRIGGER : BUFSIZE POSTDELAY : VAR... : ACTION (four fields)"
        )
    trigger = parse_trigger(fields[0].split(), console.variable)
    sizes = fields[1].split()
    if len(sizes) != 2 or not all(size.isdigit() for size in sizes) or int(sizes[0]) < 1:
        raise ConsoleError("BUFSIZE and POSTDELAY must be whole numbers, BUFSIZE at least 1")
    variables = [console.variable(name) for name in fields[2].split()]
    action_args = fields[3].split()
    runner = action_runner(console, action_args[0], action_args)
    trace = TraceBuffer(int(sizes[0]), int(sizes[1]), variables)
    watchpoint = console.add_watchpoint(trigger, fields[3], runner, trace=trace)
    console.emit(f"Added watchpoint #{watchpoint.index}")


@command("watchlist", "wl", "watchlist", "List watchpoints and traces.")
def _watchlist(console: Console, args: list[str], rest: str) -> None:
    if not console.watchpoints:
        console.emit("no watchpoints")
    for watchpoint in console.watchpoints.values():
        console.emit(watchpoint.describe())


@command("addTraceVar", "add", "addTraceVar IDX VAR...", "Add variables to a trace.")
def _add_trace_var(console: Console, args: list[str], rest: str) -> None:
    if len(args) < 2:
        raise ConsoleError("usage: addTraceVar IDX VAR...")
    watchpoint = console.watchpoint(args[0])
    if watchpoint.trace is None:
        raise ConsoleError(f"watchpoint {watchpoint.index} is not a trace")
    watchpoint.trace.variables.extend(console.variable(name) for name in args[1:])
    watchpoint.trace.reset()
    console.hooks.update()


@command("printWatchPoint", "prw", "printWatchPoint IDX", "Show one watchpoint.")
def _print_watchpoint(console: Console, args: list[str], rest: str) -> None:
    if len(args) != 1:
        raise ConsoleError("usage: printWatchPoint IDX")
    console.emit(console.watchpoint(args[0]).describe())


@command(
    "printTrace",
    "prt",
    "printTrace IDX",
    "Print a trace's trigger record and samples, oldest first.",
)
def _print_trace_command(console: Console, args: list[str], rest: str) -> None:
    if len(args) != 1:
        raise ConsoleError("usage: printTrace IDX")
    print_trace(console, console.watchpoint(args[0]))


@command("resetTrace", "rst", "resetTrace IDX", "Empty a trace's buffer and re-arm its trigger.")
def _reset_trace(console: Console, args: list[str], rest: str) -> None:
    if len(args) != 1:
        raise ConsoleError("usage: resetTrace IDX")
    watchpoint = console.watchpoint(args[0])
    if watchpoint.trace is None:
        raise ConsoleError(f"watchpoint {watchpoint.index} is not a trace")
    watchpoint.trace.reset()


@command(
    "setHandler",
    "shn",
    "setHandler IDX bc|ac|be|ae|all...",
    "Where a watchpoint is checked: before/after clock (bc/ac) or event (be/ae) handlers.",
)
def _set_handler(console: Console, args: list[str], rest: str) -> None:
    if len(args) < 2:
        raise ConsoleError("usage: setHandler IDX bc|ac|be|ae|all...")
    watchpoint = console.watchpoint(args[0])
    points: set[str] = set()
    for arg in args[1:]:
        lowered = arg.lower()
        if lowered == "all":
            points.update(HANDLER_POINTS)
        elif lowered in HANDLER_POINTS:
            points.add(lowered)
        else:
            raise ConsoleError(f"'{arg}' is not a handler point; use bc, ac, be, ae or all")
    watchpoint.points = points


@command(
    "unwatch", "uw", "unwatch [IDX]", "Remove one watchpoint, or all (asks unless confirm false)."
)
def _unwatch(console: Console, args: list[str], rest: str) -> None:
    if len(args) > 1:
        raise ConsoleError("usage: unwatch [IDX]")
    if args:
        console.remove_watchpoint(console.watchpoint(args[0]))
        return
    if console.ask("Remove all watchpoints?"):
        console.clear_watchpoints()


def action_runner(console: Console, action: str, args: list[str]) -> Callable[[WatchPoint], None]:
    """What a trace does when its trigger fires; refused now if it could not run then."""
    name = args[0] if args else action
    if name == "interactive":
        return console.enter_from_watchpoint
    if name == "printTrace":
        return lambda wp: print_trace(console, wp)
    if name == "printStatus":
        return lambda wp: print_status(console)
    if name == "shutdown":
        return lambda wp: console.sim.request_shutdown()
    if name == "checkpoint":
        if console.sim.checkpointer is None:
            raise ConsoleError(
                "the checkpoint action needs checkpoints enabled (--checkpoint-enable)"
            )
        return lambda wp: console.sim.checkpointer.request(f"watchpoint {wp.index}")
    if name == "set":
        if len(args) < 3:
            raise ConsoleError("the set action needs a variable and a value: set VAR VALUE")
        target = console.place(args[1])
        if target.write is None or not is_scalar(target.value):
            raise ConsoleError(f"'{args[1]}' is not a settable scalar")
        text, path = " ".join(args[2:]), target.path
        converted_value(console, target, text)  # refused now if it cannot parse

        def set_when_fired(watchpoint: WatchPoint) -> None:
            place = console.map.place(path)  # checked again: the state has moved on
            try:
                value = converted_value(console, place, text)
            except NnsimError as error:
                console.emit(f"Error: watchpoint {watchpoint.index}: {error}")
                return
            place.write(value)

        return set_when_fired
    raise ConsoleError(f"unknown action '{name}'; use one of {', '.join(ACTIONS)}")


def print_trace(console: Console, watchpoint: WatchPoint) -> None:
    """``printTrace``, the command and the action: the trigger record, then the samples."""
    if watchpoint.trace is None:
        raise ConsoleError(f"watchpoint {watchpoint.index} is not a trace")
    console.emit("\n".join(watchpoint.trace.lines()))


def print_status(console: Console) -> None:
    """The ``printStatus`` action: the time, then each component's status line."""
    console.emit(f"time {console.sim.now} ps ({format_time(console.sim.now)})")
    for component in console.sim.components.values():
        console.emit("  " + component.status())
