"""When checkpoints are taken and which are kept, for a running simulation.

Triggers: a simulated-time period (``--checkpoint-period``), a wall-clock
period (``--checkpoint-wall-period``), every N epochs or steps (the element
library notifies ``epoch_end``/``step_end``), or a request from Python or the
console. Every trigger only queues a marker at the current time; the
snapshot is taken when the marker comes up, between events, after every
event of that time — a safe point by construction.

Retention, like Keras/Lightning/Orbax: keep the last K, keep the best K by a
monitored metric (``val_loss`` min, ``val_acc`` max), and always keep the
newest. Async mode copies the state on the simulation thread and writes it
in a background thread, one write in flight at most; a failed write stops
the run cleanly (complete and finish still run) and is reported.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from nnsim.checkpoint.errors import CheckpointError
from nnsim.checkpoint.storage import Storage, open_storage, parse_checkpoint_name
from nnsim.sim import ACTION_PRIORITY, Simulation
from nnsim.state import capture
from nnsim.units import format_time, parse_time

MARKER_PRIORITY = ACTION_PRIORITY  # after every event of the same time, before the end check


@dataclass
class Policy:
    """What to checkpoint and what to keep (0 means "not used")."""

    every_epochs: int = 0
    every_steps: int = 0
    keep_last: int = 0
    keep_best: int = 0
    monitor: str = "val_loss"
    mode: str = "auto"  # "min", "max", or "auto": max for accuracies, min otherwise

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
    ):
        self.sim = sim
        self.storage = open_storage(location) if isinstance(location, str) else location
        self.prefix = prefix
        self.period = parse_time(period) if period not in (None, "", 0) else None
        if self.period == 0:
            raise CheckpointError("--checkpoint-period must be longer than 0")
        self.wall_period = wall_period
        self.policy = policy or Policy()
        self.asynchronous = asynchronous
        self.announce = announce
        self.written: list[str] = []
        self.stall_seconds = 0.0  # time the simulation waited for checkpoints
        self.error: BaseException | None = None
        self._metrics: dict[str, float] | None = None  # monitored metric of each kept checkpoint
        self._latest_metrics: dict[str, Any] = {}
        self._number = self._last_number()
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

    def _marker_fired(self, marker: _Marker) -> None:
        if marker.reason == "period":
            self._schedule_period()
        if self.error is not None:
            return  # the run is already stopping
        with contextlib.suppress(CheckpointError):  # recorded; the stop marker ends the run
            self.checkpoint_now(marker.reason, metrics=marker.metrics, name=marker.name)

    # Taking and writing ----------------------------------------------------------------
    def _last_number(self) -> int:
        numbers = [0]
        for name in self.storage.list():
            parsed = parse_checkpoint_name(name)
            if parsed and parsed[0] == self.prefix:
                numbers.append(parsed[1])
        return max(numbers)

    def checkpoint_now(
        self, reason: str = "requested", *, metrics: dict | None = None, name: str | None = None
    ) -> str:
        """Snapshot now (the caller guarantees a safe point) and write it; return its name."""
        if self.error is not None:
            raise CheckpointError(f"checkpoints stopped after an earlier failure: {self.error}")
        stalled_from = time.perf_counter()
        self._wait_for_writer()
        self._number += 1
        name = name or f"{self.prefix}_{self._number}_{self.sim.now}"
        body, tensors = capture(self.sim, copy_tensors=self.asynchronous)
        body["reason"] = reason
        body["metrics"] = dict(metrics if metrics is not None else self._latest_metrics)
        now = time.perf_counter()
        if self.announce:
            self.sim.print(
                f"# Simulation Checkpoint: Simulated Time {format_time(self.sim.now)} "
                f"(Real CPU time since last checkpoint {now - self._last_wall:.2f} seconds)"
            )
        self._last_wall = now
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

    def _write(self, name: str, body: dict, tensors: dict) -> None:
        try:
            self.storage.save(name, body, tensors)
            self.written.append(name)
            self._retain(name, body["metrics"])
        except BaseException as error:  # reported, and the run stops cleanly
            self.error = error
            if self.sim.phase == "run":
                self.sim.request_stop("checkpoint failed")

    def _wait_for_writer(self) -> None:
        if self._writer is not None:
            self._writer.join()
            self._writer = None

    def _known_metrics(self) -> dict[str, float]:
        """The monitored metric of this prefix's checkpoints (read once from their manifests)."""
        if self._metrics is None:
            self._metrics = {}
            for name in self.storage.list():
                if (parse_checkpoint_name(name) or ("",))[0] != self.prefix:
                    continue
                value = (
                    self.storage.load_manifest(name, verify=False)
                    .get("metrics", {})
                    .get(self.policy.monitor)
                )
                if isinstance(value, int | float) and not math.isnan(value):
                    self._metrics[name] = value
        return self._metrics

    def _retain(self, newest: str, metrics: dict) -> None:
        policy = self.policy
        known = self._known_metrics()
        value = metrics.get(policy.monitor)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            known[newest] = value
        if not (policy.keep_last or policy.keep_best):
            return
        mine = [
            name
            for name in self.storage.list()
            if (parse_checkpoint_name(name) or ("",))[0] == self.prefix
        ]
        keep = {newest}
        if policy.keep_last:
            keep.update(mine[-policy.keep_last :])
        if policy.keep_best:
            ranked = sorted(
                (name for name in mine if name in known),
                key=lambda name: known[name],
                reverse=policy.better(1.0, 0.0),
            )
            keep.update(ranked[: policy.keep_best])
        for name in mine:
            if name not in keep:
                self.storage.delete(name)
                known.pop(name, None)

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
    """Turn checkpoints on for ``sim`` (see ``CheckpointManager``); ``sim.checkpoint()`` works after."""
    return CheckpointManager(sim, location, **options).attach()
