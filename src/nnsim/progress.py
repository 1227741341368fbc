"""Progress bars for a run, drawn from its notifications: the run itself knows nothing of them.

An element library tells tools what happens through the simulation's
notifications (``sim.notify``); nnsim's batch controller sends:

* ``phase`` (``name``, ``total``, ``done``): a phase of steps begins, e.g.
  ``epoch 0 training`` with 24 batches (``done`` > 0 after a restart);
* ``step`` (``done``): a step of the current phase ended;
* ``epoch_end`` (metrics): an epoch ended (training and validation).

The console sends ``console_prompt`` (``active``) when its prompt opens and
closes. `ProgressDisplay` observes these and draws rich bars on a terminal:
the current phase's steps and, given ``epochs``, an overall bar over the
epochs (``nnsim train``). While it draws, the run's lines
(``Simulation.print``) go above the bars through ``sim.printer``; while the
console prompt is open it stops drawing (a redraw would overwrite the
prompt). Modes:

* ``rich``: the bars, with counts, rate, elapsed time and ETA (they vanish
  when the run ends), and the run's lines above them;
* ``plain``: nothing is drawn; the run's lines print as they would anyway;
* ``quiet``: nothing is drawn either (the caller discards the run's lines);
* ``auto``: ``rich`` on a terminal, else ``plain``.

Nothing starts drawing before the first ``phase`` notification, so a run
without phases (no controller) shows no bar.
"""

from __future__ import annotations

import sys
from typing import Any

MODES = ("auto", "rich", "plain", "quiet")


def choose_mode(quiet: bool = False, stream: Any = None) -> str:
    """``quiet``, else ``rich`` on a terminal, else ``plain``."""
    if quiet:
        return "quiet"
    stream = stream or sys.stdout
    return "rich" if getattr(stream, "isatty", lambda: False)() else "plain"


def progress_wanted(sim: Any) -> bool:
    """False when a component that declares a ``progress`` parameter has it turned off.

    It is how a model script (or ``--set controller/progress=false``) keeps
    the bars away, e.g. under a terminal test that reads the screen.
    """
    for component in sim.components.values():
        if "progress" in component.declared_params() and not component.progress:
            return False
    return True


class ProgressDisplay:
    """Bars of a run, in one of the modes above (see the module docstring).

    ``epochs`` (with ``done`` of them already run) adds the overall bar;
    ``console`` is the rich Console to draw on (default: stdout's).
    """

    def __init__(
        self,
        mode: str = "auto",
        *,
        epochs: int | None = None,
        done: int = 0,
        console: Any = None,
    ):
        if mode not in MODES:
            raise ValueError(f"progress mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = choose_mode() if mode == "auto" else mode
        self.epochs = epochs
        self.first_epoch = done
        self.console = console
        self.sim: Any = None
        self._progress: Any = None  # rich's Progress, made at the first phase
        self._epochs_task: Any = None
        self._phase_task: Any = None
        self._drawing = False
        self._paused = False
        self._closed = False
        self._previous_printer: Any = None

    def attach(self, sim: Any) -> ProgressDisplay:
        """Observe ``sim``'s notifications (only in ``rich`` mode: the others draw nothing)."""
        self.sim = sim
        if self.mode == "rich":
            sim.observe("phase", self.phase)
            sim.observe("step", self.step)
            sim.observe("epoch_end", self.epoch_end)
            sim.observe("console_prompt", self.console_prompt)
        return self

    @property
    def drawing(self) -> bool:
        """The bars are on the screen now (not before the first phase, not at the prompt)."""
        return self._drawing

    # Observers ---------------------------------------------------------------------------
    def phase(self, name: str, total: int, done: int = 0, **_data: Any) -> None:
        """``phase``: show a bar of ``total`` steps for ``name`` in place of the last phase's."""
        if self._closed:
            return
        if self._progress is None:
            self._create()
        if self._phase_task is not None:
            self._progress.remove_task(self._phase_task)
        self._phase_task = self._progress.add_task(name, total=total, completed=done, unit="steps")
        if not self._paused:
            self._start()

    def step(self, done: int, **_data: Any) -> None:
        """``step``: ``done`` steps of the current phase have ended."""
        if self._phase_task is not None and not self._closed:
            self._progress.update(self._phase_task, completed=done)

    def epoch_end(self, **_metrics: Any) -> None:
        """``epoch_end``: advance the overall bar, and time the epochs for its rate and ETA."""
        if self._epochs_task is None or self._closed:
            return
        progress, task_id = self._progress, self._epochs_task
        progress.advance(task_id)
        task = next(task for task in progress.tasks if task.id == task_id)
        elapsed = task.elapsed or 0.0
        ran = task.completed - task.fields["first"]
        progress.update(task_id, seconds_per_epoch=elapsed / ran, epoch_ended_at=elapsed)

    def console_prompt(self, active: bool, **_data: Any) -> None:
        """``console_prompt``: stop redrawing while the prompt waits, draw again after."""
        self._paused = active
        if active:
            self._stop()
        elif self._progress is not None and not self._closed:
            self._start()

    def close(self) -> None:
        """Stop drawing for good (the bars are transient: they leave the screen)."""
        self._stop()
        self._closed = True

    # Drawing -------------------------------------------------------------------------------
    def _print_above(self, line: str) -> None:
        self._progress.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def _start(self) -> None:
        if self._drawing:
            return
        self._progress.start()
        self._drawing = True
        self._previous_printer, self.sim.printer = self.sim.printer, self._print_above

    def _stop(self) -> None:
        if not self._drawing:
            return
        self._progress.stop()
        self._drawing = False
        self.sim.printer = self._previous_printer

    def _create(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        rate_column, eta_column = _columns()
        self._progress = Progress(
            TextColumn("{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            rate_column(),
            TimeElapsedColumn(),
            eta_column(),
            console=self.console,
            transient=True,
        )
        if self.epochs is not None:
            self._epochs_task = self._progress.add_task(
                "epochs",
                total=self.epochs,
                completed=self.first_epoch,
                unit="epochs",
                first=self.first_epoch,
            )


def _per_second(task: Any) -> float | None:
    """Steps: rich's recent speed. Epochs: the average over this run's finished epochs."""
    if task.fields.get("unit") != "epochs":
        return task.finished_speed or task.speed
    seconds = task.fields.get("seconds_per_epoch")
    return 1 / seconds if seconds else None


def _columns() -> tuple[type, type]:
    """The rate and ETA columns (rich is imported only when a bar is drawn)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        """``12.3 steps/s``, or ``4.2 s/epoch`` when slower than one a second."""

        def render(self, task) -> Text:
            speed, unit = _per_second(task), task.fields.get("unit", "steps")
            if not speed:
                shown = ""
            elif speed < 1:
                shown = f"{1 / speed:.1f} s/{unit.rstrip('s')}"
            else:
                shown = f"{speed:.1f} {unit}/s"
            return Text(shown, style="progress.data.speed")

    class EtaColumn(ProgressColumn):
        """``ETA h:mm:ss`` from the rate (for epochs, less the time into the current one)."""

        def render(self, task) -> Text:
            speed = _per_second(task)
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

    return RateColumn, EtaColumn
