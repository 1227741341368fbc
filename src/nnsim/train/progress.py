"""What ``nnsim train`` shows while it runs: rich bars, plain lines, or nothing.

`TrainingProgress` stands in for the batch controller's own progress bar
(``nnsim.nn.progress.ProgressBar``: ``phase``, ``advance``, ``print``,
``close``), so the controller drives it exactly as it drives its own, and
adds an overall bar over the epochs (advanced by the ``epoch_end``
notification). Modes:

* ``rich``: on a terminal, two bars (epochs, and the current phase's steps)
  with counts, rate, elapsed time and ETA; the run's lines print above them.
* ``plain``: the run's lines (``epoch N training: ...``) and nothing else.
* ``quiet``: nothing; the caller prints a summary at the end.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

MODES = ("auto", "rich", "plain", "quiet")


def choose_mode(quiet: bool = False, stream: Any = None) -> str:
    """``quiet``, else ``rich`` on a terminal, else ``plain``."""
    if quiet:
        return "quiet"
    stream = stream or sys.stdout
    return "rich" if getattr(stream, "isatty", lambda: False)() else "plain"


class TrainingProgress:
    """Progress of a training run, in one of the modes above (see the module docstring)."""

    def __init__(
        self,
        mode: str,
        print_line: Callable[[str], None],
        *,
        epochs: int,
        done: int = 0,
        console: Any = None,
    ):
        if mode not in MODES:
            raise ValueError(f"progress mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = choose_mode() if mode == "auto" else mode
        self._print = print_line
        self._progress = None
        self._epochs_task = None
        self._phase_task = None
        if self.mode == "rich":
            self._start(epochs, done, console)

    def _start(self, epochs: int, done: int, console: Any) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.text import Text

        def per_second(task) -> float | None:
            """Steps: rich's recent speed. Epochs: the average over this run's finished epochs."""
            if task.fields.get("unit") != "epochs":
                return task.finished_speed or task.speed
            seconds = task.fields.get("seconds_per_epoch")
            return 1 / seconds if seconds else None

        class RateColumn(ProgressColumn):
            def render(self, task) -> Text:
                speed, unit = per_second(task), task.fields.get("unit", "steps")
                if not speed:
                    shown = ""
                elif speed < 1:
                    shown = f"{1 / speed:.1f} s/{unit.rstrip('s')}"
                else:
                    shown = f"{speed:.1f} {unit}/s"
                return Text(shown, style="progress.data.speed")

        class EtaColumn(ProgressColumn):
            def render(self, task) -> Text:
                speed = per_second(task)
                if task.finished:
                    seconds = 0.0
                elif not speed or task.total is None:
                    return Text("ETA -:--:--", style="progress.remaining")
                else:
                    seconds = (task.total - task.completed) / speed
                    if "epoch_ended_at" in task.fields:  # time into the current epoch
                        seconds = max(0.0, seconds - task.elapsed + task.fields["epoch_ended_at"])
                minutes, secs = divmod(int(seconds + 0.5), 60)
                hours, minutes = divmod(minutes, 60)
                return Text(f"ETA {hours}:{minutes:02d}:{secs:02d}", style="progress.remaining")

        self._progress = Progress(
            TextColumn("{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeElapsedColumn(),
            EtaColumn(),
            console=console,
            transient=True,
        )
        self._epochs_task = self._progress.add_task(
            "epochs", total=epochs, completed=done, unit="epochs", first=done
        )
        self._progress.start()

    # The controller's progress-bar interface -----------------------------------------
    def phase(self, description: str, total: int) -> None:
        if self._progress is None:
            return
        if self._phase_task is not None:
            self._progress.remove_task(self._phase_task)
        self._phase_task = self._progress.add_task(description, total=total, unit="steps")

    def advance(self) -> None:
        if self._phase_task is not None:
            self._progress.advance(self._phase_task)

    def print(self, line: str) -> None:
        if self.mode == "quiet":
            return
        if self._progress is not None:
            self._progress.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            self._print(line)

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
            self._phase_task = None

    # Observer of the run ---------------------------------------------------------------
    def epoch_done(self, **_metrics: Any) -> None:
        """``epoch_end`` observer: advance the overall bar."""
        if self._progress is None:
            return
        progress, task_id = self._progress, self._epochs_task
        progress.advance(task_id)
        task = next(task for task in progress.tasks if task.id == task_id)
        elapsed = task.elapsed or 0.0
        done = task.completed - task.fields["first"]
        progress.update(task_id, seconds_per_epoch=elapsed / done, epoch_ended_at=elapsed)
