"""Chrome trace-event files: what each component did over simulated time.

``EventTracer(sim)`` wraps every component's clock handlers and the handlers
of its connected ports (the ``target`` of the peer's ``Sender``, also in the
entries already queued), as the console's watchpoints do, and records one
slice per handler execution. ``write(path)`` writes the trace in the JSON
Object Format of the Trace Event Format, which Perfetto (ui.perfetto.dev) and
chrome://tracing open: one track (thread) per component, in component order;
``ts`` is the simulated time of the handler in microseconds; a clock tick
lasts its clock period (the tick occupies its cycle) and an event handler a
notional 1 ns (less when the component's next handler comes sooner). The
wall-clock time the handler took is in the slice's ``args.wall_us``.
``close()`` puts the original handlers back.

Nothing here runs unless a tracer is created: a simulation without one runs
the unwrapped kernel (DESIGN.md rule 5).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nnsim.sim.simulation import Simulation

PID = 1
EVENT_SLICE_PS = 1000  # an event handler is drawn 1 ns wide
_PS_PER_US = 1_000_000


class EventTracer:
    """Records every handler execution of ``sim``'s components until ``close``."""

    def __init__(self, sim: Simulation):
        self.sim = sim
        # One record per handler execution: (handler index, time in ps, cycle or event, wall ns).
        self.records: list[tuple[int, int, Any, int]] = []
        # What a handler index stands for: (tid, kind, port or clock index, handler name, width ps).
        self.handlers: list[tuple[int, str, Any, str, int]] = []
        self.tracks: list[tuple[int, str, str]] = []  # (tid, component name, type)
        self._undo: list[tuple[Any, str, Any, Any]] = []
        self._install()

    # Wrapping -----------------------------------------------------------------
    def _install(self) -> None:
        queue = self.sim._queue
        for tid, component in enumerate(self.sim.components.values(), start=1):
            self.tracks.append((tid, component.name, component.kind()))
            for index, clock in enumerate(component.clocks):
                handler = self._describe(tid, "clock", index, clock.handler_name, clock.period)
                wrapper = self._clock_wrapper(clock._handler, handler)
                self._undo.append((clock, "_handler", clock._handler, wrapper))
                clock._handler = wrapper
            for end in component.links.values():
                peer = end.peer
                if peer is None or end.handler_name is None:
                    continue
                handler = self._describe(tid, "event", end.port, end.handler_name, EVENT_SLICE_PS)
                original = peer.send.target
                wrapper = self._event_wrapper(original, handler)
                peer.send.target = wrapper
                queue.replace_target(original, wrapper)  # events already in flight too
                self._undo.append((peer.send, "target", original, wrapper))

    def _describe(self, tid: int, kind: str, where: Any, name: str, width: int) -> int:
        self.handlers.append((tid, kind, where, name, width))
        return len(self.handlers) - 1

    def _clock_wrapper(self, original, handler: int):
        record, queue, clock_ns = self.records.append, self.sim._queue, time.perf_counter_ns

        def traced_tick(cycle: int) -> Any:
            started = clock_ns()
            result = original(cycle)
            record((handler, queue.now, cycle, clock_ns() - started))
            return result

        return traced_tick

    def _event_wrapper(self, original, handler: int):
        record, queue, clock_ns = self.records.append, self.sim._queue, time.perf_counter_ns

        def traced_event(event: Any) -> None:
            started = clock_ns()
            original(event)
            record((handler, queue.now, type(event), clock_ns() - started))

        # So that `-vv` still names the handler (``dense1.on_event(Batch)``).
        traced_event.__self__ = getattr(original, "__self__", original)
        traced_event.__name__ = getattr(original, "__name__", traced_event.__name__)
        return traced_event

    def close(self) -> None:
        """Put the original handlers back (those nobody has wrapped again since)."""
        queue = self.sim._queue
        for owner, attribute, original, wrapper in reversed(self._undo):
            if getattr(owner, attribute) is not wrapper:
                continue  # wrapped again on top (a watchpoint): leave the chain intact
            setattr(owner, attribute, original)
            if attribute == "target":
                queue.replace_target(wrapper, original)
        self._undo.clear()

    def __enter__(self) -> EventTracer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # Output -------------------------------------------------------------------
    def slice_count(self) -> int:
        """Handler executions recorded so far."""
        return len(self.records)

    def metadata(self) -> list[dict]:
        """The ``M`` events: the process, and each component's track name and order."""
        events = [
            {"ph": "M", "name": "process_name", "pid": PID, "tid": 0, "args": {"name": "nnsim"}}
        ]
        for tid, name, kind in self.tracks:
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
                head = {"name": title, "cat": kind, "ph": "X", "pid": PID, "tid": tid}
                text = json.dumps({**head, "args": args}, separators=(",", ":"))
                # Cut before the args' closing braces (and a clock's cycle number) to fill in.
                prefix = text[: -len("0}}")] if kind == "clock" else text[: -len("}}")]
                prefixes[key] = prefix
            cycle = detail if kind == "clock" else ""
            wall = round(wall_ns / 1000, 3)
            ts, dur = time_ps / _PS_PER_US, width / _PS_PER_US
            yield f'{prefix}{cycle},"wall_us":{wall!r}}},"ts":{ts!r},"dur":{dur!r}}}'

    def write(self, path: str | Path) -> None:
        """Write the trace as Chrome trace-event JSON (Perfetto, chrome://tracing).

        One event per line; nothing is left at ``path`` if writing fails.
        """
        other = {
            "generator": "nnsim",
            "time": "simulated (ts in us); args.wall_us is the handler's wall-clock time",
            "simulated_time_ps": self.sim.now,
        }
        path = Path(path)
        partial = path.with_name(f".{path.name}.partial")
        try:
            with partial.open("w") as handle:
                handle.write('{"traceEvents":[\n')
                lines = (json.dumps(event, separators=(",", ":")) for event in self.metadata())
                handle.write(",\n".join(lines))
                for line in self._slice_lines():
                    handle.write(",\n")
                    handle.write(line)
                handle.write(f'\n],"displayTimeUnit":"ns","otherData":{json.dumps(other)}}}\n')
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
