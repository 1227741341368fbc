"""When checkpoints are taken and which are kept, for a running simulation.

Triggers: a simulated-time period (``--checkpoint-period``), a wall-clock
period (``--checkpoint-wall-period``), every N epochs or steps (the element
library notifies ``epoch_end``/``step_end``), or a request from Python or the
console. Every trigger only queues a marker at the current time; the
snapshot is taken when the marker comes up, between events, after every
event of that time — a safe point by construction.

Retention, like Keras/Lightning/Orbax: keep the last K, keep the best K by a
monitored metric (``val_loss`` min, ``val_acc`` max), and always keep the
newest. Retention deletes only this run's own checkpoints: each manager has
a ``lineage`` (a random id, recorded in every manifest it writes as
``"lineage"``; a run restored from a checkpoint continues that checkpoint's
lineage), and keep-last/keep-best rank only the checkpoints of its lineage
and prefix. Checkpoints of other runs in the same folder, and entries that
cannot be read, are kept and reported once as warnings.

Async mode copies the state on the simulation thread and writes it in a
background thread, one write in flight at most; a failed write stops the
run cleanly (complete and finish still run) and is reported.
"""

from __future__ import annotations

import contextlib
import math
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from nnsim.checkpoint.errors import CheckpointError, warn
from nnsim.checkpoint.manifest import check_name
from nnsim.checkpoint.storage import (
    CheckpointEntry,
    Storage,
    open_storage,
    parse_checkpoint_name,
)
from nnsim.errors import ParamError
from nnsim.sim import ACTION_PRIORITY, Simulation
from nnsim.state import capture
from nnsim.units import format_time, parse_time

MARKER_PRIORITY = ACTION_PRIORITY  # after every event of the same time, before the end check
#: The metrics nn's batch controller reports at the end of every epoch, that can be monitored.
MONITORS = ("val_loss", "val_acc", "train_loss", "train_acc")
#: The manifest key that holds the identity of the run (lineage) that wrote a checkpoint.
LINEAGE_KEY = "lineage"


def lineage_of(manifest: dict) -> str | None:
    """The lineage (run identity) recorded in a checkpoint's manifest, or None (a foreign one)."""
    value = manifest.get(LINEAGE_KEY) if isinstance(manifest, dict) else None
    return value if isinstance(value, str) and value else None


def check_count(option: str, value: object) -> int:
    """``value`` as a count >= 0 (0: not used); ParamError naming ``option`` otherwise."""
    if type(value) is not int or value < 0:
        raise ParamError(f"{option} must be a whole number >= 0 (0: not used), not {value!r}")
    return value


def check_seconds(option: str, value: object) -> float | None:
    """``value`` as a finite number of seconds > 0, or None; ParamError naming ``option``."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ParamError(f"{option} must be a number of seconds > 0, not {value!r}")
    return float(value)


@dataclass
class Policy:
    """What to checkpoint and what to keep (0 means "not used").

    Counts must be whole numbers >= 0 and ``mode`` one of min, max, auto;
    anything else is a ParamError naming the field.
    """

    every_epochs: int = 0
    every_steps: int = 0
    keep_last: int = 0
    keep_best: int = 0
    monitor: str = "val_loss"
    mode: str = "auto"  # "min", "max", or "auto": max for accuracies, min otherwise

    def __post_init__(self) -> None:
        for field in ("every_epochs", "every_steps", "keep_last", "keep_best"):
            check_count(f"checkpoint policy {field}", getattr(self, field))
        if not isinstance(self.monitor, str) or not self.monitor:
            raise ParamError(
                f"checkpoint policy monitor must be a metric name, not {self.monitor!r}"
            )
        if self.mode not in ("min", "max", "auto"):
            raise ParamError(f"checkpoint policy mode must be min, max or auto, not {self.mode!r}")

    def better(self, a: float, b: float) -> bool:
        maximize = self.mode == "max" or (self.mode == "auto" and "acc" in self.monitor)
        return a > b if maximize else a < b


class _Marker:
    """A scheduled action that takes a checkpoint when it comes up."""

    __slots__ = ("manager", "reason", "metrics", "name")

    def __init__(
        self, manager: CheckpointManager, reason: str, metrics: dict | None, name: str | None
    ):
        self.manager, self.reason, self.metrics, self.name = manager, reason, metrics, name

    def __call__(self) -> None:
        self.manager._marker_fired(self)


class CheckpointManager:
    """Takes, writes and prunes the checkpoints of one simulation."""

    def __init__(
        self,
        sim: Simulation,
        location: str | Storage,
        *,
        prefix: str = "checkpoint",
        period: str | int | None = None,
        wall_period: float | None = None,
        policy: Policy | None = None,
        asynchronous: bool = False,
        announce: bool = True,
        lineage: str | None = None,
    ):
        """``lineage`` is the run identity written into every manifest: by default the
        lineage of the checkpoint ``sim`` was restored from (``sim.checkpoint_lineage``),
        else a new random one. Periods must be > 0; see `Policy` for the counts.
        """
        self.sim = sim
        self.storage = open_storage(location) if isinstance(location, str) else location
        self.prefix = prefix
        self.period = parse_time(period) if period not in (None, "", 0) else None
        if self.period is not None and self.period <= 0:
            raise CheckpointError("--checkpoint-period must be longer than 0")
        self.wall_period = check_seconds("checkpoint wall_period", wall_period)
        self.policy = policy or Policy()
        self.asynchronous = asynchronous
        self.announce = announce
        self.lineage = lineage or getattr(sim, "checkpoint_lineage", None) or secrets.token_hex(8)
        self.written: list[str] = []
        self.stall_seconds = 0.0  # time the simulation waited for checkpoints
        self.error: BaseException | None = None
        self._latest_metrics: dict[str, Any] = {}
        self._reported: set[str] = set()  # entries already warned about
        self._number = self._survey()
        self._period_parked = False
        self._last_wall = time.perf_counter()
        self._writer: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        self._closed = False

    # Wiring ---------------------------------------------------------------------
    def attach(self) -> CheckpointManager:
        """Install the triggers on the simulation (before or during its run)."""
        sim = self.sim
        sim.checkpointer = self
        sim.observe("epoch_end", self._on_epoch_end)
        if self.policy.every_steps:
            sim.observe("step_end", self._on_step_end)
        if self.period is not None:
            sim.on_start(self._schedule_period)
            sim.observe("resumed", self._resume_period)
        if self.wall_period:
            self._start_timer()
        return self

    def _schedule_period(self) -> None:
        now = self.sim.now
        next_time = (now // self.period + 1) * self.period
        self._push(_Marker(self, "period", None, None), at=next_time)

    def _start_timer(self) -> None:
        self._timer = threading.Timer(self.wall_period, self._on_wall_timer)
        self._timer.daemon = True
        self._timer.start()

    def _on_wall_timer(self) -> None:
        if self._closed or self.sim.phase != "run":
            return
        self._push(_Marker(self, "wall", None, None))  # from this thread: safe under the GIL
        self._start_timer()

    def _push(self, marker: _Marker, at: int | None = None) -> None:
        self.sim.schedule(marker, at=at, priority=MARKER_PRIORITY)

    # Triggers from the element library -----------------------------------------------
    def _on_epoch_end(self, **metrics: Any) -> None:
        self._latest_metrics = metrics  # what non-epoch checkpoints are ranked by
        every = self.policy.every_epochs
        if every and (metrics["epoch"] + 1) % every == 0:
            self.request(f"epoch {metrics['epoch']}", metrics)

    def _on_step_end(self, **data: Any) -> None:
        if data["step"] % self.policy.every_steps == 0:
            self.request(f"step {data['step']}")

    def request(self, reason: str, metrics: dict | None = None, name: str | None = None) -> None:
        """Checkpoint at the next safe point (after the events of the current time)."""
        self._push(_Marker(self, reason, metrics, name))

    def _resume_period(self) -> None:
        if self._period_parked and self.sim.model_events_pending():
            self._period_parked = False
            self._schedule_period()

    def _marker_fired(self, marker: _Marker) -> None:
        if marker.reason == "period":
            if self.sim.model_events_pending():
                self._schedule_period()
            else:  # the model went quiet (a paused run): do not keep it alive; see "resumed"
                self._period_parked = True
        if self.error is not None:
            return  # the run is already stopping
        with contextlib.suppress(CheckpointError):  # recorded; the stop marker ends the run
            self.checkpoint_now(marker.reason, metrics=marker.metrics, name=marker.name)

    # Taking and writing ----------------------------------------------------------------
    def _survey(self) -> int:
        """The last number used in the folder; warns once about entries this run will not touch."""
        entries = self.storage.scan()
        numbers = [0]
        for entry in entries:
            parsed = parse_checkpoint_name(entry.name)
            if parsed and parsed[0] == self.prefix:
                numbers.append(parsed[1])  # bad entries too: their names stay taken
        self._report(entries)
        foreign = [entry for entry in entries if entry.usable and not self._is_mine(entry)]
        if foreign:
            count = f"{len(foreign)} checkpoint{'s' if len(foreign) > 1 else ''}"
            shown = ", ".join(entry.name for entry in foreign[-3:])
            more = ", ..." if len(foreign) > 3 else ""
            warn(
                f"'{self.storage.url}' already holds {count} of other runs ({shown}{more}); "
                "they are kept: retention deletes only this run's checkpoints"
            )
        return max(numbers)

    def _report(self, entries: list[CheckpointEntry]) -> None:
        """Warn once about each entry that cannot be read (it is skipped, never deleted)."""
        for entry in entries:
            if not entry.usable and entry.name not in self._reported:
                self._reported.add(entry.name)
                warn(f"skipped {entry.name}: {entry.problem}")

    def _is_mine(self, entry: CheckpointEntry) -> bool:
        """``entry`` is a checkpoint of this run's lineage and prefix (one retention may delete)."""
        parsed = parse_checkpoint_name(entry.name)
        return (
            entry.usable
            and parsed is not None
            and parsed[0] == self.prefix
            and lineage_of(entry.manifest) == self.lineage
        )

    def checkpoint_now(
        self, reason: str = "requested", *, metrics: dict | None = None, name: str | None = None
    ) -> str:
        """Snapshot now (the caller guarantees a safe point) and write it; return its name.

        A ``name`` that is invalid or already taken is refused before anything
        is written: the mistake is the caller's, and checkpoints go on.
        """
        stalled_from = time.perf_counter()
        name, extras = self.begin_checkpoint(reason, metrics=metrics, name=name)
        body, tensors = capture(self.sim, copy_tensors=self.asynchronous)
        body.update(extras)
        self.announce_checkpoint(self.sim.now)
        if self.asynchronous:
            self._writer = threading.Thread(
                target=self._write, args=(name, body, tensors), daemon=True
            )
            self._writer.start()
        else:
            self._write(name, body, tensors)
        self.stall_seconds += time.perf_counter() - stalled_from
        if self.error is not None and not self.asynchronous:
            raise CheckpointError(f"could not write checkpoint {name}: {self.error}")
        return name

    def begin_checkpoint(
        self,
        reason: str,
        *,
        metrics: dict | None = None,
        name: str | None = None,
        now: int | None = None,
    ) -> tuple[str, dict]:
        """The name of the next checkpoint (at simulated time ``now``, by default the
        simulation's) and what its manifest says besides the state: reason, metrics,
        lineage, monitor. Waits for the write in flight.

        `checkpoint_now` calls it; so does a parallel run's rank 0, which writes the
        checkpoint with the other ranks (`nnsim.parallel.checkpoint`), then calls
        `committed`. `announce_checkpoint` prints its line once the state is taken.
        """
        if self.error is not None:
            raise CheckpointError(f"checkpoints stopped after an earlier failure: {self.error}")
        if name is not None:
            check_name(name)
            if self.storage.exists(name):
                raise CheckpointError(
                    f"a checkpoint named {name} already exists in {self.storage.url}; "
                    "choose another name"
                )
        self._wait_for_writer()
        now = self.sim.now if now is None else now
        self._number += 1
        name = name or f"{self.prefix}_{self._number}_{now}"
        extras = {
            "reason": reason,
            "metrics": dict(metrics if metrics is not None else self._latest_metrics),
            LINEAGE_KEY: self.lineage,
            "monitor": self.policy.monitor,  # how `nnsim checkpoint list` picks the best
        }
        return name, extras

    def announce_checkpoint(self, now: int) -> None:
        """Print the ``# Simulation Checkpoint`` line (unless ``announce`` is off)."""
        wall = time.perf_counter()
        if self.announce:
            self.sim.print(
                f"# Simulation Checkpoint: Simulated Time {format_time(now)} "
                f"(Real CPU time since last checkpoint {wall - self._last_wall:.2f} seconds)"
            )
        self._last_wall = wall

    def committed(self, name: str) -> None:
        """Checkpoint ``name`` is written: count it and apply retention."""
        self.written.append(name)
        self._retain(name)

    def _write(self, name: str, body: dict, tensors: dict) -> None:
        try:
            self.storage.save(name, body, tensors)
            self.committed(name)
        except BaseException as error:  # reported, and the run stops cleanly
            self.error = error
            if self.sim.phase == "run":
                self.sim.request_stop("checkpoint failed")

    def _wait_for_writer(self) -> None:
        if self._writer is not None:
            self._writer.join()
            self._writer = None

    def _retain(self, newest: str) -> None:
        """Delete this run's checkpoints that keep-last and keep-best do not keep.

        Only checkpoints of this run's lineage and prefix are candidates;
        the newest is always kept. A deletion that fails is a warning.
        """
        policy = self.policy
        if not (policy.keep_last or policy.keep_best):
            return
        entries = self.storage.scan()
        self._report(entries)
        mine = [entry for entry in entries if self._is_mine(entry)]
        names = [entry.name for entry in mine]
        keep = {newest}
        if policy.keep_last:
            keep.update(names[-policy.keep_last :])
        if policy.keep_best:
            known = {}
            for entry in mine:
                metrics = entry.manifest.get("metrics")
                value = metrics.get(policy.monitor) if isinstance(metrics, dict) else None
                if (
                    isinstance(value, int | float)
                    and not isinstance(value, bool)
                    and not math.isnan(value)
                ):
                    known[entry.name] = value
            ranked = sorted(known, key=known.__getitem__, reverse=policy.better(1.0, 0.0))
            keep.update(ranked[: policy.keep_best])
        for name in names:
            if name not in keep:
                try:
                    self.storage.delete(name)
                except CheckpointError as error:
                    warn(f"old checkpoint {name} is kept: {error}")

    def close(self) -> None:
        """Wait for the last write and stop the wall timer; raise if a write failed."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        self._wait_for_writer()
        if self.error is not None:
            raise CheckpointError(
                f"a checkpoint could not be written: {self.error}"
            ) from self.error


def enable(sim: Simulation, location: str | Storage, **options: Any) -> CheckpointManager:
    """Turn checkpoints on for ``sim`` (see ``CheckpointManager``); ``sim.checkpoint()`` works after.

    A simulation restored from a checkpoint continues its lineage when
    ``sim.checkpoint_lineage`` is set (`continue_lineage`), so retention
    keeps pruning the checkpoints written before the restart.
    """
    return CheckpointManager(sim, location, **options).attach()


def continue_lineage(sim: Simulation, manifest: dict) -> Simulation:
    """Mark ``sim`` (restored from ``manifest``) as continuing that checkpoint's run; return it.

    A `CheckpointManager` on ``sim`` then writes the same lineage, so its
    retention treats the checkpoints before the restart as its own.
    """
    sim.checkpoint_lineage = lineage_of(manifest)
    return sim
