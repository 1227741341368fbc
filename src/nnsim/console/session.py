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

from nnsim.console.console import ALIASES, COMMANDS, Console
from nnsim.console.objectmap import children, is_scalar
from nnsim.sim import Simulation
from nnsim.units import format_time


def history_file() -> Path:
    """Where the terminal history persists across sessions (the XDG state directory)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "nnsim" / "console_history"


def _plain_lines(stream: TextIO) -> Iterator[str]:
    for line in stream:
        yield line.rstrip("\n")


def _terminal_lines(console: Console) -> Iterator[str]:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import Completer, Completion
    from prompt_toolkit.history import FileHistory

    class ConsoleCompleter(Completer):
        """Command names first; then names at the current level (or along a typed path)."""

        def get_completions(self, document, complete_event):
            text = document.text_before_cursor
            words = text.split()
            if len(words) == 0 or (len(words) == 1 and not text.endswith(" ")):
                prefix = words[0] if words else ""
                for name in sorted(set(ALIASES)):
                    spelled = COMMANDS[ALIASES[name]].name if name == ALIASES[name] else name
                    if spelled.lower().startswith(prefix.lower()):
                        yield Completion(spelled, start_position=-len(prefix))
                return
            current = "" if text.endswith(" ") else words[-1]
            base, _, partial = current.rpartition("/")
            try:
                place = console.place(base) if base else console.place()
            except Exception:  # noqa: BLE001 - completion must never break the prompt
                return
            for name, (value, _) in children(place.value).items():
                if name.startswith(partial):
                    suffix = "" if is_scalar(value) else "/"
                    yield Completion(name + suffix, start_position=-len(partial))

    path = history_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    session = PromptSession(history=FileHistory(str(path)), completer=ConsoleCompleter())
    while True:
        try:
            line = session.prompt(console.prompt())
        except KeyboardInterrupt:
            continue  # Ctrl-C at the prompt clears the line
        except EOFError:
            return
        yield line


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

    def lines(self) -> Iterator[str]:
        if self._lines is None:
            self._lines = (
                _terminal_lines(self.console) if self.terminal else _plain_lines(self.stdin)
            )
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
                reason = sim.run()
                if reason == "break":
                    self._enter()
        finally:
            signal.signal(signal.SIGINT, previous)

    def _on_interrupt(self, signum, frame) -> None:
        self._interrupts += 1
        if self._input_exhausted or (self._interrupts > 1 and not self.terminal):
            self.sim.request_shutdown()  # no console to come back to: stop cleanly
            return
        self.console.entry_reason = "interrupted (Ctrl-C)"
        self.sim.request_break()

    def _enter(self) -> None:
        console = self.console
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
