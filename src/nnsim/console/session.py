"""Running a simulation with the console available: entering it, reading commands.

The console is entered between events: at ``--interactive-start`` (before
the first event at or after that time), when a watchpoint's action is
``interactive``, or on Ctrl-C (after the current event). On a terminal,
prompt_toolkit gives line editing, persistent history and tab completion;
off a terminal, commands are read line by line with no prompt, and the end
of input continues the run to its end.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from nnsim.console.complete import completions
from nnsim.console.console import Console, stalled_reason
from nnsim.sim import Simulation
from nnsim.units import format_time


def history_file() -> Path:
    """Where the terminal history persists across sessions (the XDG state directory)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "nnsim" / "console_history"


def _plain_lines(stream: TextIO) -> Iterator[str]:
    """The lines of ``stream``; bytes that are not UTF-8 read as U+FFFD, never as a crash."""
    raw = getattr(stream, "buffer", None)  # the bytes under sys.stdin
    lines = (line.decode("utf-8", errors="replace") for line in raw) if raw else stream
    for line in lines:
        yield line.rstrip("\n")


class _Terminal:
    """prompt_toolkit input: commands with editing, history and completion; answers apart.

    The history file's earlier lines are loaded into the console's history
    too, so ``history`` and ``!n`` see what the arrow keys see. A yes/no
    question is its own prompt (no time, no path) with no history or
    completion, and its answers stay out of the history file.
    """

    def __init__(self, console: Console):
        from prompt_toolkit import PromptSession
        from prompt_toolkit.completion import Completer, Completion
        from prompt_toolkit.history import FileHistory

        class ConsoleCompleter(Completer):
            """prompt_toolkit's view of ``nnsim.console.complete.completions``."""

            def get_completions(self, document, complete_event):
                for text, replaced in completions(console, document.text_before_cursor):
                    yield Completion(text, start_position=-replaced)

        path = history_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        history = FileHistory(str(path))
        console.history.load(list(reversed(list(history.load_history_strings()))))
        self.console = console
        self.commands = PromptSession(history=history, completer=ConsoleCompleter())
        self.answers = PromptSession()

    def lines(self) -> Iterator[str]:
        while True:
            try:
                line = self.commands.prompt(self.console.prompt())
            except KeyboardInterrupt:
                continue  # Ctrl-C at the prompt clears the line
            except EOFError:
                return
            yield line

    def answer(self, question: str) -> str:
        try:
            return self.answers.prompt(question)
        except (KeyboardInterrupt, EOFError):
            return "no"  # Ctrl-C or Ctrl-D at a question: leave things as they are


class ConsoleSession:
    """Drives one simulation run with the console: entry points, input, Ctrl-C."""

    def __init__(
        self,
        sim: Simulation,
        *,
        interactive_start: int | None = None,
        replay: str | None = None,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
    ):
        self.sim = sim
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.replay_file = replay
        self.interactive_start = 0 if interactive_start is None and replay else interactive_start
        self.terminal = self.stdin.isatty() and self.stdout.isatty()
        self.console = Console(sim, echo=self.stdout)
        self._lines: Iterator[str] | None = None
        self._interrupts = 0
        self._input_exhausted = False
        self._entered = False

    def lines(self) -> Iterator[str]:
        if self._lines is None:
            if self.terminal:
                terminal = _Terminal(self.console)
                self.console.read_answer = terminal.answer
                self._lines = terminal.lines()
            else:
                self._lines = _plain_lines(self.stdin)
        return self._lines

    def run(self) -> None:
        """Run to the end, entering the console whenever asked."""
        sim = self.sim
        sim.start()
        if self.interactive_start is not None:
            sim.request_break(at=self.interactive_start)
            self.console.entry_reason = (
                f"--interactive-start={format_time(self.interactive_start)}"
                if self.interactive_start
                else "start"
            )
        previous = signal.signal(signal.SIGINT, self._on_interrupt)
        try:
            while not sim.finished:
                reason = sim.run(end_when_stalled=not self.attached)
                if reason == "stalled" and not sim.finished:
                    self.console.entry_reason = stalled_reason(sim)
                    self._enter()
                elif reason == "break":
                    self._enter()
        finally:
            signal.signal(signal.SIGINT, previous)

    @property
    def attached(self) -> bool:
        """Someone can answer the console: a terminal, or an input that was read and is not used up.

        A stalled run (a paused component, nothing scheduled) enters the
        console then; otherwise it ends, saying why.
        """
        return self.terminal or (self._entered and not self._input_exhausted)

    def _on_interrupt(self, signum, frame) -> None:
        self._interrupts += 1
        if self._input_exhausted or (self._interrupts > 1 and not self.terminal):
            self.sim.request_shutdown()  # no console to come back to: stop cleanly
            return
        self.console.entry_reason = "interrupted (Ctrl-C)"
        self.sim.request_break()

    def _enter(self) -> None:
        console = self.console
        self._entered = True
        self.sim.notify(
            "console_prompt", active=True
        )  # live displays stop while the console is open
        if self.terminal:
            self._interrupts = 0
        console.emit(f"Entering interactive mode at time {self.sim.now}")
        console.emit(f"  reason: {console.entry_reason}")
        console.answers = self.lines()
        console.finished_session = False
        if self.replay_file is not None:
            replay, self.replay_file = self.replay_file, None
            console.execute(f"replay {replay}")
        while not (console.finished_session or self.sim.finished):
            line = next(self.lines(), None)
            if line is None:  # end of input: continue the run to its end
                self._input_exhausted = True
                self.sim.notify("console_prompt", active=False)
                console.clear_watchpoints()
                while not self.sim.finished:
                    self.sim.run()
                return
            console.execute(line)
            if self.terminal:
                self._interrupts = 0
        self.sim.notify("console_prompt", active=False)
