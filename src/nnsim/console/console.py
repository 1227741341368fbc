"""The interactive debug console (CONSOLE.md): commands over a live simulation.

``Console(sim).execute("cd loss/optimizer")`` runs one command line and
returns the text it printed, so tests and notebooks drive it exactly as a
person at the prompt does. Commands never raise: bad input gives one line
and changes nothing. The terminal front end is ``nnsim.console.session``.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from nnsim.console.history import History
from nnsim.console.objectmap import (
    MapError,
    ObjectMap,
    Place,
    children,
    is_scalar,
    join,
    show_scalar,
    type_name,
)
from nnsim.console.triggers import TriggerError, Variable, parse_trigger
from nnsim.console.watch import HANDLER_POINTS, Hooks, TraceBuffer, WatchPoint
from nnsim.errors import NnsimError
from nnsim.sim import Element, Simulation
from nnsim.units import MAX_TIME, format_time, parse_time

ACTIONS = ("interactive", "printTrace", "checkpoint", "set", "printStatus", "shutdown")


def stalled_reason(sim: Simulation) -> str:
    """The console's reason line for a stalled run: what waits, and the ``set`` that wakes it."""
    waits = sim.waiting()
    why = "; ".join(wait.why for wait in waits) + " and nothing else is scheduled"
    sets = [f"set {path} {value}" for path, value in (w.setting for w in waits if w.setting)]
    todo = f"'{' then '.join(sets)}' then 'run' continues, " if sets else ""
    return f"{why}; {todo}'shutdown' ends the run"


class ConsoleError(NnsimError):
    """A command that cannot run as typed; the console prints it and carries on."""


@dataclass
class Command:
    name: str
    short: str
    usage: str
    summary: str
    details: str
    run: Callable[[Console, list[str], str], None]


COMMANDS: dict[str, Command] = {}
ALIASES: dict[str, str] = {}


def command(name: str, short: str, usage: str, summary: str, details: str = ""):
    """Register a console command under its long and short names (case-insensitive)."""

    def register(function: Callable[[Console, list[str], str], None]):
        COMMANDS[name.lower()] = Command(name, short, usage, summary, details, function)
        ALIASES[name.lower()] = name.lower()
        ALIASES[short.lower()] = name.lower()
        return function

    return register


class Console:
    """A console attached to one simulation.

    ``confirm`` questions are answered by the next line of a running replay
    file, else by ``read_answer(question)`` (the terminal session shows the
    question as its own prompt, unlike the command prompt), else by the next
    of ``answers`` (a plain input stream); with none of them the answer is
    yes. ``echo`` writes output as it happens (the terminal session); it is
    always returned by ``execute`` as well.
    """

    def __init__(
        self,
        sim: Simulation,
        *,
        answers: Iterator[str] | None = None,
        read_answer: Callable[[str], str | None] | None = None,
        echo: TextIO | None = None,
    ):
        self.sim = sim
        self.map = ObjectMap(sim)
        self.cwd = ""
        self.confirm = True
        self.verbose = 0
        self.history = History()
        self.watchpoints: dict[int, WatchPoint] = {}
        self._next_index = 0
        self.hooks = Hooks(sim, lambda: list(self.watchpoints.values()))
        self.answers = answers
        self.read_answer = read_answer
        self.echo = echo
        self.log_file: Path | None = None
        self.entry_reason = "start"
        self.finished_session = False
        self._replaying: list[Path] = []
        self._pending_lines: list[list[str]] = []
        self._output: list[str] = []
        self._break_requested_at: int | None = None  # one break per time, however many fire

    # Output ---------------------------------------------------------------------------
    def emit(self, text: str) -> None:
        self._output.append(text)
        if self.echo is not None:
            print(text, file=self.echo, flush=True)

    # Running commands -------------------------------------------------------------------
    def execute(self, line: str) -> str:
        """Run one command line; return what it printed (errors are one line)."""
        start = len(self._output)
        self._execute(line, record=True)
        text = "\n".join(self._output[start:])
        del self._output[start:]
        return text

    def _execute(self, line: str, record: bool) -> None:
        stripped = line.split("#", 1)[0].strip()
        if not stripped:
            return
        try:
            expanded, print_only = self.history.expand(stripped)
        except NnsimError as error:
            self.emit(f"Error: {error}")
            return
        if print_only or expanded != stripped:
            self.emit(expanded)  # as bash does: show what !! or !n stands for
        if print_only:
            return
        if record:
            self.history.add(expanded)
            if self.log_file is not None:
                self._log(expanded)
        self._dispatch(expanded)

    def _log(self, line: str) -> None:
        """Append ``line`` to the log file; if that fails, say so once and stop logging."""
        try:
            with self.log_file.open("a", encoding="utf-8", errors="backslashreplace") as handle:
                handle.write(line + "\n")
        except OSError as error:
            self.emit(f"Error: cannot log to '{self.log_file}': {error.strerror}; logging stopped")
            self.log_file = None

    def _dispatch(self, line: str) -> None:
        word, _, rest = line.partition(" ")
        name = ALIASES.get(word.lower())
        if name is None:
            self.emit(f"Error: unknown command {word!r}; type 'help' for the list")
            return
        try:
            args = shlex.split(rest, posix=True) if rest.strip() else []
        except ValueError:
            args = rest.split()
        try:
            COMMANDS[name].run(self, args, rest.strip())
        except NnsimError as error:
            self.emit(f"Error: {error}")

    def ask(self, question: str) -> bool:
        """Ask yes/no until the answer is y, yes, n or no; no input left means yes."""
        if not self.confirm:
            return True
        prompt = f"{question} (yes/no) "
        while True:
            answer = self._answer(prompt)
            if answer is None:
                return True
            word = answer.strip().lower()
            if word in ("y", "yes"):
                return True
            if word in ("n", "no"):
                return False
            self.emit(f"Please answer yes or no (y/n), not {answer.strip()!r}.")

    def _answer(self, prompt: str) -> str | None:
        """The next answer line: a running replay file's, the terminal's, or the input's."""
        for lines in reversed(self._pending_lines):
            if lines:
                line = lines.pop(0)
                self.emit(prompt + line.strip())  # a transcript shows question and answer
                return line
        if self.read_answer is not None:
            return self.read_answer(prompt)
        self.emit(prompt.rstrip())
        if self.answers is not None:
            return next(self.answers, None)
        return None

    # The object map ------------------------------------------------------------------------
    def place(self, name: str | None = None) -> Place:
        path = self.cwd if name is None else join(self.cwd, name)
        if name is not None and "[" in name:
            base, bracket, rest = name.partition("[")
            path = join(self.cwd, base) + bracket + rest
        return self.map.place(path)

    def variable(self, name: str) -> Variable:
        """A scalar for a trigger or a trace, resolved relative to the current directory."""
        try:
            place = self.place(name)
        except MapError as error:
            raise TriggerError(str(error)) from None
        if not is_scalar(place.value):
            raise TriggerError(
                f"'{name}' is a {type_name(place.value)}, not a scalar; watch scalars only"
            )
        if place.component is None:
            raise TriggerError(f"'{name}' is not inside a component")
        path = place.path
        object_map = self.map
        return Variable(path, lambda: object_map.place(path).value, place.component)

    def prompt(self) -> str:
        return f"[{format_time(self.sim.now)}] /{self.cwd}> "

    # Entering and running -------------------------------------------------------------------
    def run_simulation(self, until: int | None = None, *, to_the_end: bool = False) -> str:
        """Continue the simulation; return why it stopped.

        A stalled run (nothing scheduled, a component waiting, e.g. paused)
        comes back to the console with the reason, unless ``to_the_end``
        (``exit``): then it ends.
        """
        if self.sim.finished:
            raise ConsoleError("the simulation has finished")
        self.entry_reason = "run time elapsed" if until is not None else "end"
        self.sim.notify("console_prompt", active=False)  # progress bars may draw while it runs
        reason = self.sim.run(until=until, end_when_stalled=to_the_end)
        self.sim.notify("console_prompt", active=True)
        if reason == "stalled" and not self.sim.finished:
            self.entry_reason = stalled_reason(self.sim)
        if reason in ("paused", "break") or not self.sim.finished:
            self.emit(f"Entering interactive mode at time {self.sim.now}")
            self.emit(f"  reason: {self.entry_reason}")
        else:
            self.finished_session = True
            self.emit(f"Simulation ended at {format_time(self.sim.now)} ({reason})")
        return reason

    def clear_watchpoints(self) -> None:
        self.watchpoints.clear()
        self.hooks.update()

    # Actions --------------------------------------------------------------------------------
    def _action_runner(self, action: str, args: list[str]) -> Callable[[WatchPoint], None]:
        name = args[0] if args else action
        if name == "interactive":
            return self._enter_from_watchpoint
        if name == "printTrace":
            return lambda wp: self._print_trace(wp)
        if name == "printStatus":
            return lambda wp: self._print_status()
        if name == "shutdown":
            return lambda wp: self.sim.request_shutdown()
        if name == "checkpoint":
            if self.sim.checkpointer is None:
                raise ConsoleError(
                    "the checkpoint action needs checkpoints enabled (--checkpoint-enable)"
                )
            return lambda wp: self.sim.checkpointer.request(f"watchpoint {wp.index}")
        if name == "set":
            if len(args) < 3:
                raise ConsoleError("the set action needs a variable and a value: set VAR VALUE")
            target = self.place(args[1])
            if target.write is None or not is_scalar(target.value):
                raise ConsoleError(f"'{args[1]}' is not a settable scalar")
            text, path = " ".join(args[2:]), target.path
            _converted_value(self, target, text)  # refused now if it cannot parse

            def set_when_fired(watchpoint: WatchPoint) -> None:
                place = self.map.place(path)  # checked again: the state has moved on
                try:
                    value = _converted_value(self, place, text)
                except NnsimError as error:
                    self.emit(f"Error: watchpoint {watchpoint.index}: {error}")
                    return
                place.write(value)

            return set_when_fired
        raise ConsoleError(f"unknown action '{name}'; use one of {', '.join(ACTIONS)}")

    def _enter_from_watchpoint(self, watchpoint: WatchPoint) -> None:
        if watchpoint.trace is not None:
            watchpoint.trace.keep_after_fire = True
        if self._break_requested_at == self.sim.now:
            return  # held again at this time (another handler point): one entry is enough
        self._break_requested_at = self.sim.now
        self.entry_reason = f"watchpoint {watchpoint.index} ({watchpoint.trigger.describe()})"
        self.sim.request_break(after_this_time=True)  # after a checkpoint the same check asked for

    def _report_check(self, watchpoint: WatchPoint, point: str, time: int, holds: bool) -> None:
        """``verbose``: one line per trigger evaluation (mask 2) or per one that holds (mask 1)."""
        if not (self.verbose & 2 or (self.verbose & 1 and holds)):
            return
        values = " ".join(
            f"{variable.path}={show_scalar(variable.read())}"
            for variable in watchpoint.trigger.variables()
        )
        self.emit(
            f"  check wp {watchpoint.index} {point.upper()} @{time}: {watchpoint.trigger.describe()} "
            f"-> {'true' if holds else 'false'} ({values})"
        )

    def _print_trace(self, watchpoint: WatchPoint) -> None:
        if watchpoint.trace is None:
            raise ConsoleError(f"watchpoint {watchpoint.index} is not a trace")
        self.emit("\n".join(watchpoint.trace.lines()))

    def _print_status(self) -> None:
        self.emit(f"time {self.sim.now} ps ({format_time(self.sim.now)})")
        for component in self.sim.components.values():
            self.emit("  " + component.status())

    def _add_watchpoint(self, watchpoint: WatchPoint) -> None:
        self.watchpoints[watchpoint.index] = watchpoint
        self.hooks.update()

    def _watchpoint(self, text: str) -> WatchPoint:
        try:
            index = int(text)
        except ValueError:
            raise ConsoleError(f"'{text}' is not a watchpoint number (see watchlist)") from None
        if index not in self.watchpoints:
            raise ConsoleError(f"there is no watchpoint {index} (see watchlist)")
        return self.watchpoints[index]

    def replay(self, path: Path) -> None:
        try:
            resolved = path.resolve()
        except (OSError, ValueError, RuntimeError):
            raise ConsoleError(f"cannot read replay file '{path}': not a usable path") from None
        if resolved in self._replaying:
            raise ConsoleError(f"replay file '{path}' includes itself; refused")
        if len(self._replaying) >= MAX_REPLAY_DEPTH:
            raise ConsoleError(
                f"replay file '{path}' would nest replays deeper than {MAX_REPLAY_DEPTH}; refused"
            )
        lines = read_replay_file(path)
        self._replaying.append(resolved)
        self._pending_lines.append(lines)
        try:
            while lines:
                line = lines.pop(0)
                if line.split("#", 1)[0].strip():
                    self.emit(self.prompt() + line.strip())  # reads like a typed session
                self._execute(line, record=True)
                if self.finished_session:
                    break
        finally:
            self._pending_lines.pop()
            self._replaying.pop()


MAX_REPLAY_DEPTH = 32
"""Replay files may replay others, this many deep (a chain longer is a mistake or a trap)."""
MAX_REPLAY_BYTES = 16 * 2**20
"""The largest replay file read: console commands, not data."""


def read_replay_file(path: Path) -> list[str]:
    """The command lines of a replay file; ConsoleError unless it is readable UTF-8 text."""
    if path.exists() and not path.is_file():  # a folder, or a pipe that would block forever
        raise ConsoleError(f"cannot read replay file '{path}': not a regular file")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_REPLAY_BYTES + 1)
    except OSError as error:
        raise ConsoleError(f"cannot read replay file '{path}': {error.strerror or error}") from None
    except ValueError:  # a NUL byte in the name
        raise ConsoleError(f"cannot read replay file '{path}': not a usable path") from None
    if len(raw) > MAX_REPLAY_BYTES:
        raise ConsoleError(
            f"replay file '{path}' is larger than {MAX_REPLAY_BYTES // 2**20} MiB; "
            "a replay file holds console commands"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConsoleError(
            f"replay file '{path}' is not UTF-8 text (byte {error.start}); "
            "a replay file holds console commands"
        ) from None
    if "\x00" in text:
        raise ConsoleError(
            f"replay file '{path}' holds NUL bytes; a replay file holds console commands"
        )
    return text.splitlines()


def _describe_entry(name: str, value: Any, long: bool) -> str:
    if is_scalar(value):
        return f"{name} = {show_scalar(value)} ({type_name(value)})"
    if long and isinstance(value, np.ndarray) and value.size and value.dtype.kind in "biuf":
        return (
            f"{name}/ ({type_name(value)}) min {value.min():.6g} max {value.max():.6g} "
            f"mean {value.mean():.6g}"
        )
    return f"{name}/ ({type_name(value)})"


def _print_value(name: str, value: Any, depth: int, indent: str = "") -> list[str]:
    if is_scalar(value):
        return [f"{indent}{name} = {show_scalar(value)} ({type_name(value)})"]
    if isinstance(value, np.ndarray):
        body = np.array2string(value, threshold=64, edgeitems=3, max_line_width=100)
        lines = body.splitlines()
        return [
            f"{indent}{name} ({type_name(value)}) = {lines[0]}",
            *(indent + "  " + line for line in lines[1:]),
        ]
    lines = [f"{indent}{name}/ ({type_name(value)})"]
    if depth <= 0:
        return lines
    for child, (item, _) in children(value).items():
        lines.extend(_print_value(child, item, depth - 1, indent + "  "))
    return lines


# Commands ---------------------------------------------------------------------------------------
@command("help", "?", "help [CMD]", "List the commands, or show one in detail.")
def _help(console: Console, args: list[str], rest: str) -> None:
    if args:
        name = ALIASES.get(args[0].lower())
        if name is None:
            raise ConsoleError(f"no command '{args[0]}'; type 'help' for the list")
        cmd = COMMANDS[name]
        console.emit(f"{cmd.name} | {cmd.short}: {cmd.usage}\n  {cmd.summary}")
        if cmd.details:
            console.emit("\n".join("  " + line for line in cmd.details.strip().splitlines()))
        return
    for cmd in COMMANDS.values():
        console.emit(f"  {cmd.name + ' | ' + cmd.short:<26} {cmd.summary}")


@command(
    "confirm",
    "cfm",
    "confirm true|false",
    "Ask yes/no before unwatch (all) and exit.",
    "The question is its own prompt, asked again until the answer is y, yes, n or no;\n"
    "answers come from the input stream, so a replay file can answer. Default true.",
)
def _confirm(console: Console, args: list[str], rest: str) -> None:
    if len(args) != 1 or args[0].lower() not in ("true", "false"):
        raise ConsoleError("usage: confirm true|false")
    console.confirm = args[0].lower() == "true"


@command(
    "verbose",
    "v",
    "verbose [MASK]",
    "Show trigger evaluation details (0 turns it off).",
    "MASK 1: print each check whose trigger holds; 2: print every check, with the\n"
    "values of the trigger's variables. Without MASK, show the current mask.",
)
def _verbose(console: Console, args: list[str], rest: str) -> None:
    if len(args) > 1:
        raise ConsoleError("usage: verbose [MASK]")
    if args:
        try:
            console.verbose = int(args[0], 0)
        except ValueError:
            raise ConsoleError(f"'{args[0]}' is not a number") from None
        console.hooks.report = console._report_check if console.verbose else None
    console.emit(f"verbose = {console.verbose}")


@command("pwd", "pwd", "pwd", "Show the current path and its type.")
def _pwd(console: Console, args: list[str], rest: str) -> None:
    place = console.place()
    console.emit(f"{place.path or '/'} ({type_name(place.value)})")


@command("cd", "chdir", "cd NAME|..|/|a/b", "Change the current object ('..' up, '/' to the root).")
def _cd(console: Console, args: list[str], rest: str) -> None:
    if len(args) != 1:
        raise ConsoleError("usage: cd NAME (one name, '..', '/', or a path such as loss/optimizer)")
    place = console.place(args[0])
    if is_scalar(place.value):
        raise ConsoleError(
            f"'{args[0]}' is a scalar ({type_name(place.value)}); cd goes into objects only"
        )
    if isinstance(place.value, np.ndarray):
        raise ConsoleError(f"'{args[0]}' is an array; print it, or elements with p NAME[i,j]")
    console.cwd = place.path


@command(
    "ls", "list", "ls [-l]", "List the current object: scalars as name = value, objects as name/."
)
def _ls(console: Console, args: list[str], rest: str) -> None:
    long = "-l" in args
    others = [arg for arg in args if arg != "-l"]
    if others:
        raise ConsoleError("usage: ls [-l]")
    for name, (value, _) in children(console.place().value).items():
        console.emit(_describe_entry(name, value, long))


@command(
    "print",
    "p",
    "print [-rN] [NAME]",
    "Print a value, an array (p w[0,:5]) or an object N levels deep.",
    "-r alone prints 4 levels. Large arrays are elided.",
)
def _print(console: Console, args: list[str], rest: str) -> None:
    depth = 1
    names = []
    for arg in args:
        if arg.startswith("-r"):
            try:
                depth = int(arg[2:]) if len(arg) > 2 else 4
            except ValueError:
                raise ConsoleError(f"'{arg}': write -r or -rN with a number N") from None
        else:
            names.append(arg)
    if len(names) > 1:
        raise ConsoleError("usage: print [-rN] [NAME]")
    place = console.place(names[0] if names else None)
    name = place.name if place.path else ""  # the root prints as "/", not "//"
    console.emit("\n".join(_print_value(name, place.value, depth)))


@command("time", "tm", "time", "Show the current simulated time.")
def _time(console: Console, args: list[str], rest: str) -> None:
    console.emit(f"current time = {console.sim.now} ({format_time(console.sim.now)})")


@command(
    "set",
    "s",
    "set NAME VALUE",
    "Set a scalar or one array element; VALUE is read as its current type.",
    "A string takes the rest of the line. Bad values change nothing.",
)
def _set(console: Console, args: list[str], rest: str) -> None:
    if len(args) < 2:
        raise ConsoleError("usage: set NAME VALUE")
    name = args[0]
    text = rest.split(None, 1)[1] if len(rest.split(None, 1)) > 1 else ""
    place = console.place(name)
    if not is_scalar(place.value):
        raise ConsoleError(
            f"'{name}' is a {type_name(place.value)}; set works on scalars and array elements"
        )
    if place.write is None:
        raise ConsoleError(f"'{name}' is read-only")
    value = _converted_value(console, place, text)
    place.write(value)
    console.emit(f"{place.name} = {show_scalar(console.map.place(place.path).value)}")


def _converted_value(console: Console, place: Place, text: str) -> Any:
    """Parse as the current type; an element's attribute also by its declaration and its rules."""
    from nnsim.state.paths import check_change, convert_attribute, convert_like

    owner_path, _, attribute = place.path.rpartition("/")
    owner = console.map.place(owner_path).value if owner_path else None
    if isinstance(owner, Element) and attribute in children(owner):
        return convert_attribute(owner, attribute, text, place.path)
    value = convert_like(place.value, text, place.path)
    if isinstance(owner, Element):  # an element of an array attribute: "order[3]"
        check_change(owner, attribute, value, place.path)
    return value


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
    index = console._next_index
    console._next_index += 1
    console._add_watchpoint(
        WatchPoint(index, trigger, "interactive", console._enter_from_watchpoint)
    )
    console.emit(f"Added watchpoint #{index}")


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
    runner = console._action_runner(action_args[0], action_args)
    index = console._next_index
    console._next_index += 1
    trace = TraceBuffer(int(sizes[0]), int(sizes[1]), variables)
    console._add_watchpoint(WatchPoint(index, trigger, fields[3], runner, trace=trace))
    console.emit(f"Added watchpoint #{index}")


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
    watchpoint = console._watchpoint(args[0])
    if watchpoint.trace is None:
        raise ConsoleError(f"watchpoint {watchpoint.index} is not a trace")
    watchpoint.trace.variables.extend(console.variable(name) for name in args[1:])
    watchpoint.trace.reset()
    console.hooks.update()


@command("printWatchPoint", "prw", "printWatchPoint IDX", "Show one watchpoint.")
def _print_watchpoint(console: Console, args: list[str], rest: str) -> None:
    if len(args) != 1:
        raise ConsoleError("usage: printWatchPoint IDX")
    console.emit(console._watchpoint(args[0]).describe())


@command(
    "printTrace",
    "prt",
    "printTrace IDX",
    "Print a trace's trigger record and samples, oldest first.",
)
def _print_trace_command(console: Console, args: list[str], rest: str) -> None:
    if len(args) != 1:
        raise ConsoleError("usage: printTrace IDX")
    console._print_trace(console._watchpoint(args[0]))


@command("resetTrace", "rst", "resetTrace IDX", "Empty a trace's buffer and re-arm its trigger.")
def _reset_trace(console: Console, args: list[str], rest: str) -> None:
    if len(args) != 1:
        raise ConsoleError("usage: resetTrace IDX")
    watchpoint = console._watchpoint(args[0])
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
    watchpoint = console._watchpoint(args[0])
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
        watchpoint = console._watchpoint(args[0])
        del console.watchpoints[watchpoint.index]
        console.hooks.update()
        return
    if console.ask("Remove all watchpoints?"):
        console.clear_watchpoints()


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
    console.sim.shutdown()
    console.finished_session = True
    console.emit(f"Simulation shut down at {format_time(console.sim.now)}")


@command(
    "checkpoint", "cpt", "checkpoint [NAME]", "Write a checkpoint now (needs --checkpoint-enable)."
)
def _checkpoint(console: Console, args: list[str], rest: str) -> None:
    if len(args) > 1:
        raise ConsoleError("usage: checkpoint [NAME]")
    if console.sim.checkpointer is None:
        raise ConsoleError("checkpoints are not enabled; start nnsim run with --checkpoint-enable")
    name = console.sim.checkpointer.checkpoint_now("console", name=args[0] if args else None)
    console.emit(f"wrote checkpoint {name}")


@command(
    "logging",
    "log",
    "logging [FILE]",
    "Append every command entered to FILE (default nnsim-console.out).",
)
def _logging(console: Console, args: list[str], rest: str) -> None:
    if len(args) > 1:
        raise ConsoleError("usage: logging [FILE]")
    path = Path(args[0] if args else "nnsim-console.out")
    if path.is_fifo():  # opening it would wait for a reader
        raise ConsoleError(f"cannot log to '{path}': it is a named pipe; give a regular file")
    try:
        with path.open("a"):
            pass  # the file can be written: later commands will be
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or "not a usable path"
        raise ConsoleError(
            f"cannot log to '{path}': {reason}; give a file in a folder that exists"
        ) from None
    console.log_file = path
    console.emit(f"logging commands to {console.log_file}")


@command("replay", "rep", "replay [FILE]", "Run the commands of FILE (default nnsim-console.in).")
def _replay(console: Console, args: list[str], rest: str) -> None:
    if len(args) > 1:
        raise ConsoleError("usage: replay [FILE]")
    console.replay(Path(args[0] if args else "nnsim-console.in"))


@command(
    "history",
    "h",
    "history [N]",
    "Show the last N commands (200 kept); !! !n !-n !str ?str, :p prints.",
)
def _history(console: Console, args: list[str], rest: str) -> None:
    if len(args) > 1 or (args and not args[0].isdigit()):
        raise ConsoleError("usage: history [N]")
    for number, line in console.history.last(int(args[0]) if args else None):
        console.emit(f"{number:>4}  {line}")
