"""A progress bar for a terminal, and nothing at all in logs and pipes.

Lines printed while the bar is shown go above it, so the output reads the
same with or without a terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class ProgressBar:
    """rich's progress bar when stdout is a terminal; otherwise lines pass straight through."""

    def __init__(self, enabled: bool, fallback_print: Callable[[str], None]):
        self._print = fallback_print
        self._progress = None
        self._task = None
        if enabled and sys.stdout.isatty():
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                transient=True,
            )
            self._progress.start()

    def phase(self, description: str, total: int) -> None:
        if self._progress is None:
            return
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(description, total=total)

    def advance(self) -> None:
        if self._task is not None:
            self._progress.advance(self._task)

    def print(self, line: str) -> None:
        if self._progress is None:
            self._print(line)
        else:
            self._progress.console.print(line, markup=False, highlight=False)

    def pause(self, paused: bool = True) -> None:
        """Stop redrawing while the console prompt waits (it would overwrite the prompt)."""
        if self._progress is not None:
            if paused:
                self._progress.stop()
            else:
                self._progress.start()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None
