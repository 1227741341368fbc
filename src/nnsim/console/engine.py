"""The console's engine: reads a command line, expands history, dispatches, prints.

The engine knows no command. Each command is a function registered with
``@command(...)`` into ``COMMANDS`` (long name -> ``Command``) and
``ALIASES`` (long or short name -> long name); the modules of
``nnsim.console.commands`` register CONSOLE.md's groups when imported.
``nnsim.console.console`` is the engine with all of them registered.

Besides dispatch, the engine holds what commands share: the current
directory in the object map, the watchpoints and their hooks, yes/no
questions answered from the input stream, replay files, and running the
simulation until it comes back to the console.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from nnsim.console.history import History
from nnsim.console.objectmap import (
    MapError,
    ObjectMap,
    Place,
    is_scalar,
    join,
    show_scalar,
    type_name,
)
from nnsim.console.triggers import Trigger, TriggerError, Variable
from nnsim.console.watch import Hooks, TraceBuffer, WatchPoint
from nnsim.errors import NnsimError
from nnsim.sim import Simulation
from nnsim.units import format_time


def stalled_reason(sim: Simulation) -> str:
    """The console's reason line for a stalled run: what waits, and the ``set`` that wakes it."""
    waits = sim.waiting()
    why = "; ".join(wait.why for wait in waits) + " and nothing else is scheduled"
    sets = [f"set {path} {value}" for path, value in (w.setting for w in waits if w.setting)]
    todo = f"'{' then '.join(sets)}' then 'run' continues, " if sets else ""
    return f"{why}; {todo}'shutdown' ends the run"


class ConsoleError(NnsimError):
    """A command that cannot run as typed; the console prints it and carries on."""


CommandFunction = Callable[["Console", list[str], str], None]
"""A command's body: the console, the words after the command name, and the raw rest of the line."""


@dataclass
class Command:
    """One registered command, with the texts ``help`` shows."""

    name: str
    short: str
    usage: str
    summary: str
    details: str
    run: CommandFunction


COMMANDS: dict[str, Command] = {}
"""Every registered command by lower-case long name, in registration (and ``help``) order."""
ALIASES: dict[str, str] = {}
"""Lower-case long and short names -> the lower-case long name in ``COMMANDS``."""


def command(
    name: str, short: str, usage: str, summary: str, details: str = ""
) -> Callable[[CommandFunction], CommandFunction]:
    """Register a console command under its long and short names (case-insensitive)."""

    def register(function: CommandFunction) -> CommandFunction:
        COMMANDS[name.lower()] = Command(name, short, usage, summary, details, function)
        ALIASES[name.lower()] = name.lower()
        ALIASES[short.lower()] = name.lower()
        return function

    return register


MAX_REPLAY_DEPTH = 32
"""Replay files may replay others, this many deep (a chain longer is a mistake or a trap)."""
MAX_REPLAY_BYTES = 16 * 2**20
"""The largest replay file read: console commands, not data."""


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
        # How run/continue/exit advance the simulation, how shutdown ends it and how a
        # checkpoint is written (None: here, on ``sim``). A parallel run
        # (nnsim.parallel.console) sets its own: every rank takes part in each.
        self.advance: Callable[[int | None, bool], str] | None = None
        self.end_run: Callable[[], None] | None = None
        self.write_checkpoint: Callable[[str | None], str] | None = None
        # A parallel run also checks a new watchpoint (raising ConsoleError if its variables
        # span ranks) and breaks at the next sync point instead of after this time.
        self.check_watchpoint: Callable[[WatchPoint], None] | None = None
        self.break_at_sync: Callable[[WatchPoint], None] | None = None

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
        if self.advance is not None:
            reason = self.advance(until, to_the_end)
        else:
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

    def shutdown(self) -> None:
        """End the run now: the complete and finish phases run (on every rank of a parallel run)."""
        if self.end_run is not None:
            self.end_run()
        else:
            self.sim.shutdown()

    def checkpoint(self, name: str | None = None) -> str:
        """Write a checkpoint now (every rank its part in a parallel run); return its name."""
        if self.sim.checkpointer is None:
            raise ConsoleError(
                "checkpoints are not enabled; start nnsim run with --checkpoint-enable"
            )
        if self.write_checkpoint is not None:
            return self.write_checkpoint(name)
        return self.sim.checkpointer.checkpoint_now("console", name=name)

    # Watchpoints ----------------------------------------------------------------------------
    def add_watchpoint(
        self,
        trigger: Trigger,
        action: str,
        run: Callable[[WatchPoint], None],
        trace: TraceBuffer | None = None,
    ) -> WatchPoint:
        """Number and arm a watchpoint (a trace if ``trace`` is given); numbers are never reused."""
        watchpoint = WatchPoint(self._next_index, trigger, action, run, trace=trace)
        if self.check_watchpoint is not None:
            self.check_watchpoint(watchpoint)
        self._next_index += 1
        self.watchpoints[watchpoint.index] = watchpoint
        self.hooks.update()
        return watchpoint

    def watchpoint(self, text: str) -> WatchPoint:
        """The watchpoint numbered ``text`` (as typed); ConsoleError if there is none."""
        try:
            index = int(text)
        except ValueError:
            raise ConsoleError(f"'{text}' is not a watchpoint number (see watchlist)") from None
        if index not in self.watchpoints:
            raise ConsoleError(f"there is no watchpoint {index} (see watchlist)")
        return self.watchpoints[index]

    def remove_watchpoint(self, watchpoint: WatchPoint) -> None:
        del self.watchpoints[watchpoint.index]
        self.hooks.update()

    def clear_watchpoints(self) -> None:
        self.watchpoints.clear()
        self.hooks.update()

    def enter_from_watchpoint(self, watchpoint: WatchPoint) -> None:
        """The ``interactive`` action: break into the console after the current time."""
        if watchpoint.trace is not None:
            watchpoint.trace.keep_after_fire = True
        if self._break_requested_at == self.sim.now:
            return  # held again at this time (another handler point): one entry is enough
        self._break_requested_at = self.sim.now
        self.entry_reason = f"watchpoint {watchpoint.index} ({watchpoint.trigger.describe()})"
        if self.break_at_sync is not None:
            self.break_at_sync(watchpoint)
            return
        self.sim.request_break(after_this_time=True)  # after a checkpoint the same check asked for

    def report_check(self, watchpoint: WatchPoint, point: str, time: int, holds: bool) -> None:
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

    # Replay ---------------------------------------------------------------------------------
    def replay(self, path: Path) -> None:
        """Run the commands of ``path`` as if typed; a confirm question reads its next line."""
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
