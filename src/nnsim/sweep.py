"""Parameter sweeps: run one model script once per value, in parallel, and rank the runs.

``run_sweep(script, ["1e-4", "1e-3"], variable="loss/optimizer/learning_rate")``
builds a fresh simulation from the script for each value in worker processes
(the ``spawn`` start method), sets the variable with ``nnsim.state.paths.set_value``
as ``nnsim run --set`` does, runs it with the same seed for every value, and
returns one ``RunResult`` per value, best first (final validation accuracy,
then loss). With ``template=`` instead of ``variable=``, ``{value}`` in the
template text is replaced per run and the result is replayed in the console
at time 0 (``nnsim run --replay FILE``, off a terminal).

``format_table``, ``rich_table`` and ``write_csv`` present the results;
``nnsim sweep`` (``nnsim.cli.sweep``) is the command line over them.

Metrics come from the ``epoch_end`` notifications of the element library and
predictions from its ``prediction`` notifications (``image``, ``predicted``),
structured data rather than the printed lines, so nothing here depends on
``nnsim.nn`` or on the wording of its output. The runs happen in local worker
processes or, with ``executor="mpi"``, in MPI processes (``nnsim.sweep_workers``);
workers start with one BLAS thread each (OMP_NUM_THREADS=1 and friends), so
parallel runs do not fight over cores and a run's bits do not depend on
``--jobs`` or the executor. As with any ``spawn`` pool,
a plain script that calls ``run_sweep`` needs the ``if __name__ == "__main__":``
guard (notebooks and ``nnsim sweep`` do not).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nnsim.data.classes import class_from_file_name
from nnsim.errors import ModelScriptError, NnsimError, ParamError
from nnsim.files import atomic_write, write_text
from nnsim.sweep_workers import ONE_BLAS_THREAD, environment, make_executor, stop

CSV_COLUMNS = (
    "value",
    "val_acc",
    "val_loss",
    "train_acc",
    "train_loss",
    "sim_time_ps",
    "sim_time",
    "wall_seconds",
    "right",
    "predictions",
    "error",
)


def expected_class(image: str | Path) -> str | None:
    """The class an evaluation file's name states (``eval2/ankle_boot.png`` -> ANKLE_BOOT), or None."""
    return class_from_file_name(image)


@dataclass
class Prediction:
    image: str
    predicted: str

    @property
    def expected(self) -> str | None:
        return expected_class(self.image)

    @property
    def right(self) -> bool | None:
        """True or False when the file name names a class; None ("?") when it does not."""
        expected = self.expected
        return None if expected is None else expected == self.predicted

    def describe(self) -> str:
        mark = {True: "ok", False: "wrong", None: "?"}[self.right]
        return f"{Path(self.image).name}={self.predicted} {mark}"


@dataclass
class RunResult:
    """One run of a sweep: its metrics and predictions, or the one-line error that stopped it."""

    index: int  # position in the list of values
    value: str
    val_acc: float | None = None
    val_loss: float | None = None
    train_acc: float | None = None
    train_loss: float | None = None
    sim_time: int | None = None  # picoseconds
    wall_seconds: float = 0.0
    predictions: list[Prediction] = field(default_factory=list)
    error: str | None = None
    output: str = ""  # what the run printed (and, with a template, the console's output)

    @property
    def ok(self) -> bool:
        return self.error is None

    def right(self) -> str:
        """``right/known``: how many predictions whose file names a class were right."""
        known = [p.right for p in self.predictions if p.right is not None]
        return f"{sum(known)}/{len(known)}" if known else "?" if self.predictions else ""

    def metrics(self) -> tuple:
        """Everything that must be identical when the same sweep runs again (no wall time)."""
        return (
            self.value,
            self.val_acc,
            self.val_loss,
            self.train_acc,
            self.train_loss,
            self.sim_time,
            [(p.image, p.predicted) for p in self.predictions],
            self.error,
        )


def sort_key(result: RunResult) -> tuple:
    """Best first: runs with validation metrics by accuracy (high) then loss (low); then
    runs without metrics; failed runs last; ties keep the order of the values."""
    if result.error is not None:
        return (2, 0.0, 0.0, result.index)
    if result.val_acc is None:
        return (1, 0.0, 0.0, result.index)
    loss = result.val_loss if result.val_loss is not None else float("inf")
    return (0, -result.val_acc, loss, result.index)


def parse_values(text: str) -> list[str]:
    """``"1e-4, 1e-3"`` -> ``["1e-4", "1e-3"]``; empty values are refused."""
    values = [value.strip() for value in text.split(",")]
    if not values or any(not value for value in values):
        raise ParamError(f"values must be a comma-separated list such as 1e-4,1e-3, not {text!r}")
    return values


def parse_assignment(text: str) -> tuple[str, list[str]]:
    """``--set NAME=V1,V2,...`` -> (NAME, [V1, V2, ...])."""
    name, sep, values = text.partition("=")
    if not sep or not name.strip():
        raise ParamError(
            f"--set takes NAME=V1,V2,... (e.g. loss/optimizer/learning_rate=1e-4,1e-3), "
            f"not {text!r}"
        )
    return name.strip(), parse_values(values)


@dataclass
class _Job:
    index: int
    value: str
    script: str
    args: list[str]
    seed: int
    variable: str | None = None
    replay: str | None = None  # console commands, the template with the value in


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def run_one(job: _Job) -> RunResult:
    """Build the script's simulation, set the value (or replay the template), run it, measure.

    Runs in a worker process, but is an ordinary function: calling it directly
    runs the job in this process.
    """
    result = RunResult(job.index, job.value)
    printed, console_output = io.StringIO(), io.StringIO()
    metrics: dict = {}
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            sim = _run_job(job, printed, console_output, metrics, result.predictions)
        result.sim_time = sim.now
    except NnsimError as error:
        result.error = _one_line(str(error)) or type(error).__name__
    except SystemExit as error:  # e.g. the script's argparse refused its arguments
        said = _one_line(printed.getvalue())
        result.error = f"model script '{job.script}' exited with status {error.code}" + (
            f": {said}" if said else ""
        )
    except Exception as error:  # noqa: BLE001 - a bug in the run: still one row, one line
        result.error = f"{type(error).__name__}: {_one_line(str(error))}"
    result.wall_seconds = time.perf_counter() - start
    result.output = printed.getvalue() + console_output.getvalue()
    if result.error is None:
        console_errors = [
            line for line in console_output.getvalue().splitlines() if line.startswith("Error: ")
        ]
        if console_errors:
            result.error = f"replay: {console_errors[0][len('Error: ') :]}"
    result.val_acc = metrics.get("val_acc")
    result.val_loss = metrics.get("val_loss")
    result.train_acc = metrics.get("train_acc")
    result.train_loss = metrics.get("train_loss")
    return result


def run_point(point: dict) -> dict:
    """`run_one` from plain data to plain data: what the executors send between processes.

    ``point`` holds the fields of a job (strings, ints, a list of strings); the
    answer holds those of its `RunResult` (numbers, strings, a list of dicts).
    The executors pickle the two over pipes or MPI messages between the
    processes of one sweep, in memory and never into a file; keeping them to
    builtins means a worker unpickles no nnsim object and the sweep point is
    readable data (DESIGN.md rule 3 is about files; this is the function call
    of mpi4py.futures and concurrent.futures).
    """
    result = asdict(run_one(_Job(**point)))
    for name in ("val_acc", "val_loss", "train_acc", "train_loss"):
        if result[name] is not None:
            result[name] = float(result[name])  # a numpy scalar is not a builtin
    if result["sim_time"] is not None:
        result["sim_time"] = int(result["sim_time"])
    return result


def _result(answer: dict) -> RunResult:
    """A `run_point` answer as a `RunResult` again."""
    predictions = [Prediction(**prediction) for prediction in answer["predictions"]]
    return RunResult(**{**answer, "predictions": predictions})


def _run_job(job: _Job, printed, console_output, metrics: dict, predictions: list):
    from nnsim.script import build_from_script
    from nnsim.sim import Simulation

    sim = Simulation(seed=job.seed, output=printed)
    build_from_script(sim, job.script, list(job.args))
    sim.observe("epoch_end", lambda **data: metrics.update(data))
    sim.observe(
        "prediction",
        lambda image, predicted, **_: predictions.append(Prediction(str(image), str(predicted))),
    )
    if job.replay is None:
        from nnsim.state.paths import set_value

        set_value(sim, job.variable, job.value)
        sim.run()
        return sim
    from nnsim.console.session import ConsoleSession

    # Written where the run happens (an MPI worker may be on another machine).
    with tempfile.TemporaryDirectory(prefix="nnsim-sweep-") as folder:
        replay_file = str(Path(folder) / f"run{job.index}.in")
        write_text(replay_file, job.replay)
        session = ConsoleSession(
            sim,
            interactive_start=0,
            replay=replay_file,
            stdin=io.StringIO(""),
            stdout=console_output,
        )
        session.run()
    return sim


def run_sweep(
    script: str | Path,
    values: Sequence[str],
    *,
    variable: str | None = None,
    template: str | None = None,
    args: Sequence[str] = (),
    seed: int = 0,
    jobs: int | None = None,
    executor: str = "local",
    on_result: Callable[[RunResult], None] | None = None,
) -> list[RunResult]:
    """Run ``script`` once per value and return the results best first.

    Give ``variable`` (a state path set before the run) or ``template`` (the
    text of a console replay file with ``{value}`` placeholders). ``jobs``
    worker processes run at once (default: one per value, at most one per
    CPU); with ``jobs=1`` the runs happen one after the other, in order.
    ``executor`` is where they run: ``"local"`` processes or ``"mpi"``
    processes through mpi4py.futures (`nnsim.sweep_workers`); the results
    are the same.
    ``on_result`` is called as each run ends (in completion order).
    """
    if (variable is None) == (template is None):
        raise ParamError("a sweep needs one of variable= (a state path) or template= (replay text)")
    if not Path(script).is_file():
        raise ModelScriptError(f"model script '{script}' does not exist")
    values = [str(value) for value in values]
    if not values:
        raise ParamError("a sweep needs at least one value")
    if jobs is not None and jobs < 1:
        raise ParamError(f"--jobs must be at least 1, not {jobs}")
    workers = min(len(values), jobs or os.cpu_count() or 1)
    batch = [
        _Job(
            index,
            value,
            str(script),
            list(args),
            seed,
            variable,
            None if template is None else template.replace("{value}", value),
        )
        for index, value in enumerate(values)
    ]
    results = _run_jobs(make_executor(executor, jobs, workers), batch, on_result)
    return sorted(results, key=sort_key)


def _run_jobs(executor, batch: list[_Job], on_result) -> list[RunResult]:
    results: list[RunResult] = []
    try:
        with environment(ONE_BLAS_THREAD):  # local workers start at the first submits
            futures = [executor.submit(run_point, asdict(job)) for job in batch]
        jobs = dict(zip(futures, batch, strict=True))
        pending = set(futures)
        while pending:
            # A timeout, so that Ctrl-C is seen: an untimed wait is not interrupted by signals.
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda future: jobs[future].index):
                job = jobs[future]
                try:
                    result = _result(future.result())
                except Exception as error:  # noqa: BLE001 - a worker that died: one row
                    result = RunResult(job.index, job.value, error=f"worker failed: {error}")
                results.append(result)
                if on_result is not None:
                    on_result(result)
    except BaseException:  # Ctrl-C (or a bug): stop the runs in flight, start no more
        stop(executor)
        raise
    executor.shutdown()
    return results


# Presenting results ---------------------------------------------------------------------------
def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _time(picoseconds: int | None) -> str:
    from nnsim.units import format_time

    return "-" if picoseconds is None else format_time(picoseconds)


def table_rows(results: Sequence[RunResult]) -> list[list[str]]:
    """The table's cells as text, one row per run (errors in the predictions column)."""
    rows = []
    for result in results:
        if result.error is not None:
            rows.append(
                [result.value, "-", "-", "-", "-", "-", f"{result.wall_seconds:.2f}", "-"]
                + [f"error: {result.error}"]
            )
            continue
        rows.append(
            [
                result.value,
                _number(result.val_acc),
                _number(result.val_loss),
                _number(result.train_acc),
                _number(result.train_loss),
                _time(result.sim_time),
                f"{result.wall_seconds:.2f}",
                result.right(),
                ", ".join(prediction.describe() for prediction in result.predictions),
            ]
        )
    return rows


def table_header(variable: str = "value") -> list[str]:
    return [
        variable,
        "val acc",
        "val loss",
        "train acc",
        "train loss",
        "sim time",
        "wall s",
        "right",
        "predictions",
    ]


def format_table(results: Sequence[RunResult], variable: str = "value") -> str:
    """Plain aligned text (for logs and pipes): numbers right-aligned, text left-aligned."""
    rows = [table_header(variable), *table_rows(results)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    lines = []
    for number, row in enumerate(rows):
        cells = []
        for column, width in enumerate(widths):
            text = row[column]
            left = column == 0 or number == 0
            cells.append(text.ljust(width) if left else text.rjust(width))
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def rich_table(results: Sequence[RunResult], variable: str = "value"):
    """The same table as a ``rich.table.Table`` (for a terminal)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"sweep over {variable}", title_justify="left")
    for number, name in enumerate(table_header(variable)):
        numeric = 0 < number < 7
        table.add_column(name, justify="right" if numeric else "left", no_wrap=number < 8)
    for result, row in zip(results, table_rows(results), strict=True):
        style = "red" if result.error is not None else None
        table.add_row(*row[:-1], Text(row[-1], style=style))
    return table


def csv_rows(results: Sequence[RunResult]) -> list[dict[str, str]]:
    """The table as CSV records: full-precision numbers, simulated time in ps and as text."""
    rows = []
    for result in results:
        rows.append(
            {
                "value": result.value,
                "val_acc": _raw(result.val_acc),
                "val_loss": _raw(result.val_loss),
                "train_acc": _raw(result.train_acc),
                "train_loss": _raw(result.train_loss),
                "sim_time_ps": "" if result.sim_time is None else str(result.sim_time),
                "sim_time": "" if result.sim_time is None else _time(result.sim_time),
                "wall_seconds": f"{result.wall_seconds:.3f}",
                "right": result.right(),
                "predictions": "; ".join(p.describe() for p in result.predictions),
                "error": result.error or "",
            }
        )
    return rows


def _raw(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def write_csv(results: Sequence[RunResult], path: str | Path) -> None:
    """Write the table as CSV, atomically (a reader never sees half a file)."""
    with atomic_write(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(csv_rows(results))
