"""Chrome trace-event files: what each component did over simulated time.

``EventTracer(sim)`` is a handler hook (`nnsim.sim.hooks`) on every
component, as the console's watchpoints are, and records one slice per
handler execution. ``write(path)`` writes the trace in the JSON
Object Format of the Trace Event Format, which Perfetto (ui.perfetto.dev) and
chrome://tracing open: one track (thread) per component, in component order;
``ts`` is the simulated time of the handler in microseconds; a clock tick
lasts its clock period (the tick occupies its cycle) and an event handler a
notional 1 ns (less when the component's next handler comes sooner). The
wall-clock time the handler took is in the slice's ``args.wall_us``.
``close()`` removes the hooks (the original handlers are back).

Nothing here runs unless a tracer is created: a simulation without one runs
the unwrapped kernel (DESIGN.md rule 5).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnsim.files import atomic_write
from nnsim.sim.hooks import HandlerHook

if TYPE_CHECKING:
    from nnsim.sim.component import Component
    from nnsim.sim.simulation import Simulation

PID = 1
EVENT_SLICE_PS = 1000  # an event handler is drawn 1 ns wide
_PS_PER_US = 1_000_000


class EventTracer(HandlerHook):
    """Records every handler execution of ``sim``'s components until ``close``."""

    def __init__(self, sim: Simulation, *, pid: int = PID, process: str = "nnsim"):
        """``pid`` and ``process`` name the trace's process: a parallel run gives each rank
        its own (``pid`` rank + 1, ``"rank R"``), and its tracks then sit under it."""
        self.sim = sim
        self.pid, self.process = pid, process
        # One record per handler execution: (handler index, time in ps, cycle or event, wall ns).
        self.records: list[tuple[int, int, Any, int]] = []
        # What a handler index stands for: (tid, kind, port or clock index, handler name, width ps).
        self.handlers: list[tuple[int, str, Any, str, int]] = []
        self.tracks: list[tuple[int, str, str]] = []  # (tid, component name, type)
        self._index: dict[tuple[str, str, Any], int] = {}  # (component, kind, where) -> handler
        self._started: list[int] = []  # wall ns at each open handler (events nest in ticks)
        self._clock_ns = time.perf_counter_ns
        self._install()

    def _install(self) -> None:
        for tid, component in enumerate(self.sim.components.values(), start=1):
            self.tracks.append((tid, component.name, component.kind()))
            for index, clock in enumerate(component.clocks):
                self._describe(
                    tid, component.name, "clock", index, clock.handler_name, clock.period
                )
            for end in component.links.values():
                if end.peer is not None and end.handler_name is not None:
                    self._describe(
                        tid, component.name, "event", end.port, end.handler_name, EVENT_SLICE_PS
                    )
            self.sim.hooks.add(component, self)

    def _describe(self, tid: int, component: str, kind: str, where: Any, name: str, width: int):
        self.handlers.append((tid, kind, where, name, width))
        self._index[(component, kind, where)] = len(self.handlers) - 1

    # The hook ---------------------------------------------------------------------
    def before_clock(self, component: Component, clock: int, cycle: int) -> None:
        self._started.append(self._clock_ns())

    def after_clock(self, component: Component, clock: int, cycle: int) -> None:
        wall = self._clock_ns() - self._started.pop()
        handler = self._index[(component.name, "clock", clock)]
        self.records.append((handler, self.sim.now, cycle, wall))

    def before_event(self, component: Component, port: str, event: Any) -> None:
        self._started.append(self._clock_ns())

    def after_event(self, component: Component, port: str, event: Any) -> None:
        wall = self._clock_ns() - self._started.pop()
        handler = self._index[(component.name, "event", port)]
        self.records.append((handler, self.sim.now, type(event), wall))

    def close(self) -> None:
        """Stop recording: remove the hooks (watchpoints on the same components stay)."""
        self.sim.hooks.remove_everywhere(self)

    def __enter__(self) -> EventTracer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # Output -------------------------------------------------------------------
    def slice_count(self) -> int:
        """Handler executions recorded so far."""
        return len(self.records)

    def metadata(self, used_only: bool = False) -> list[dict]:
        """The ``M`` events: the process, and each component's track name and order
        (``used_only``: the tracks with a slice, e.g. a parallel rank's own components)."""
        PID, used = self.pid, {self.handlers[record[0]][0] for record in self.records}
        events = [
            {
                "ph": "M",
                "name": "process_name",
                "pid": PID,
                "tid": 0,
                "args": {"name": self.process},
            },
            {
                "ph": "M",
                "name": "process_sort_index",
                "pid": PID,
                "tid": 0,
                "args": {"sort_index": PID},
            },
        ]
        for tid, name, kind in self.tracks:
            if used_only and tid not in used:
                continue
            label = {"name": f"{name} ({kind})"}
            events.append({"ph": "M", "name": "thread_name", "pid": PID, "tid": tid, "args": label})
            order = {"sort_index": tid}
            events.append(
                {"ph": "M", "name": "thread_sort_index", "pid": PID, "tid": tid, "args": order}
            )
        return events

    def _layout(self) -> Iterator[tuple[int, int, int, Any, int]]:
        """(handler, start ps, width ps, cycle or event type, wall ns) per record, nested.

        Viewers need the slices of a track to nest: an event handler's
        notional 1 ns ends before the track's next slice starts, and a slice
        that starts inside another (an event during a clock tick) ends with it
        at the latest.
        """
        handlers, records = self.handlers, self.records
        next_start: list[int | None] = [None] * len(records)
        upcoming: dict[int, int] = {}
        for index in range(len(records) - 1, -1, -1):
            handler, time_ps = records[index][0], records[index][1]
            tid = handlers[handler][0]
            next_start[index] = upcoming.get(tid)
            upcoming[tid] = time_ps
        open_ends: dict[int, list[int]] = {tid: [] for tid, _, _ in self.tracks}
        for index, (handler, time_ps, detail, wall_ns) in enumerate(records):
            tid, kind, _, _, width = handlers[handler]
            following = next_start[index]
            if kind == "event" and following is not None and following > time_ps:
                width = min(width, following - time_ps)
            stack = open_ends[tid]
            while stack and stack[-1] <= time_ps:
                stack.pop()
            if stack:
                width = min(width, stack[-1] - time_ps)
            stack.append(time_ps + width)
            yield handler, time_ps, width, detail, wall_ns

    def _slice_lines(self) -> Iterator[str]:
        """Each ``X`` event as JSON text, from a per-handler prefix (a trace can be millions)."""
        prefixes: dict[tuple[int, Any], str] = {}
        for handler, time_ps, width, detail, wall_ns in self._layout():
            tid, kind, where, name, _ = self.handlers[handler]
            key = (handler, None if kind == "clock" else detail)
            prefix = prefixes.get(key)
            if prefix is None:
                if kind == "clock":
                    title, args = name, {"clock": where, "cycle": 0}
                else:
                    title = f"{name}({detail.__name__})"
                    args = {"port": where, "event": detail.__name__}
                head = {"name": title, "cat": kind, "ph": "X", "pid": self.pid, "tid": tid}
                text = json.dumps({**head, "args": args}, separators=(",", ":"))
                # Cut before the args' closing braces (and a clock's cycle number) to fill in.
                prefix = text[: -len("0}}")] if kind == "clock" else text[: -len("}}")]
                prefixes[key] = prefix
            cycle = detail if kind == "clock" else ""
            wall = round(wall_ns / 1000, 3)
            ts, dur = time_ps / _PS_PER_US, width / _PS_PER_US
            yield f'{prefix}{cycle},"wall_us":{wall!r}}},"ts":{ts!r},"dur":{dur!r}}}'

    def part(self) -> str:
        """This tracer's events (its used tracks only) as the text `write` puts in a file.

        A parallel run's ranks send theirs to rank 0, whose ``write`` adds them.
        """
        lines = [json.dumps(event, separators=(",", ":")) for event in self.metadata(True)]
        return ",\n".join([*lines, *self._slice_lines()])

    def write(
        self, path: str | Path, others: list[str] | tuple[str, ...] = (), used_only: bool = False
    ) -> None:
        """Write the trace as Chrome trace-event JSON (Perfetto, chrome://tracing).

        One event per line; nothing is left at ``path`` if writing fails.
        ``others`` are other tracers' `part` texts, written into the same file
        (a parallel run: one process per rank, on one time axis), and
        ``used_only`` keeps this tracer's tracks without a slice out.
        """
        other = {
            "generator": "nnsim",
            "time": "simulated (ts in us); args.wall_us is the handler's wall-clock time",
            "simulated_time_ps": self.sim.now,
        }
        with atomic_write(path) as handle:
            handle.write('{"traceEvents":[\n')
            lines = (json.dumps(event, separators=(",", ":")) for event in self.metadata(used_only))
            handle.write(",\n".join(lines))
            for line in self._slice_lines():
                handle.write(",\n")
                handle.write(line)
            for text in others:
                if text:
                    handle.write(",\n")
                    handle.write(text)
            handle.write(f'\n],"displayTimeUnit":"ns","otherData":{json.dumps(other)}}}\n')
