"""The simulation: the event queue, the phases and the run loop.

The queue (``queue.py``, compiled from ``_cqueue.c``) holds
``(time, priority, source id, sequence, target, payload)`` entries. The first
four fields are unique per entry, so the order is total and the same on every
run (DESIGN.md rule 4); ``target(payload)`` is the whole of what the loop does
per event. Stops (``--stop-at``, a pause, the end
requested by the primary components) are entries too, which raise to leave
the loop: the hot path has no flag checks.

A run whose queue empties while a primary component still keeps it going is
*stalled*: nothing scheduled can ever change that, so ``run`` ends it (or,
when asked, returns ``"stalled"`` so a console can change a setting and
continue) and ``waiting()`` says what the components wait for.

The public door for tools (checkpoints, the console, tracing, a user's own
probe) — no tool needs a ``_``-prefixed name of ``sim/``:

* scheduling: ``schedule(action, at=..., delay=..., priority=...)`` runs
  ``action()`` between events; ``request_break(at=...)``, ``request_shutdown()``
  and ``request_stop(reason)`` control the run loop. All of them are kernel
  entries (source 0) numbered by one sequence, so their keys are unique by
  construction; ``cancel(entry)`` takes one back.
* handler hooks: ``hooks.add(component, hook)`` (`nnsim.sim.hooks`).
* kernel state: ``kernel_state()`` / ``restore_kernel_state(state)`` (time,
  counters, primaries), ``pending()`` (the queued entries, classified) and
  ``requeue(entry, payload)`` — what the state walk saves and restores.
* parallel runs (``nnsim.parallel``): ``place(name, rank=, group=, weight=)``
  (hints for partitioners, ignored serially), ``localize(owned)`` (run only
  these components here), ``LinkEnd.send_to_outbox`` (a peer in another
  process), ``run_window(end)`` (deliver what comes before a time, never end
  the run), ``next_key()``, ``current_key`` (the key of the event being
  handled, which orders printed lines across processes) and
  ``adopt_run_state(now, blockers)`` (the whole run's end, on the process
  that finishes it).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TextIO

from nnsim.errors import LinkError, ParamError
from nnsim.sim.clock import Clock
from nnsim.sim.component import Component, Wait
from nnsim.sim.event import ACTION_PRIORITY, EXIT_PRIORITY, STOP_PRIORITY
from nnsim.sim.hooks import HandlerHooks
from nnsim.sim.link import Link, LinkEnd
from nnsim.sim.queue import EventQueue
from nnsim.sim.registry import lookup
from nnsim.units import format_time, parse_time

DEFAULT_LATENCY = "1us"


class _Stop(Exception):
    def __init__(self, reason: str):
        self.reason = reason


class _StopMarker:
    """A queue entry that ends (or pauses) the run loop when its time comes."""

    __slots__ = ("reason", "sim")

    def __init__(self, sim: Simulation, reason: str):
        self.sim = sim
        self.reason = reason

    def __call__(self, _unused: Any) -> None:
        if self.reason == "primaries done" and self.sim._blocking:
            return  # a primary changed its mind at the same time
        raise _Stop(self.reason)


class Scheduled:
    """A tool's action in the queue (``Simulation.schedule``); ``cancel`` takes it back."""

    __slots__ = ("action", "sim")

    def __init__(self, sim: Simulation, action: Callable[[], Any]):
        self.sim = sim
        self.action = action

    def __call__(self, _unused: Any) -> None:
        self.action()

    def cancel(self) -> None:
        self.sim.cancel(self)


@dataclass(frozen=True)
class Pending:
    """One queued entry as the state walk sees it: its exact key and what it delivers.

    ``kind`` is ``"link"`` (an event from ``end`` to its peer's handler),
    ``"clock"`` (a tick of ``clock``) or ``"exit"`` (the end requested by the
    primary components). Tools' actions and run-control markers are not
    pending state: they belong to the run that scheduled them.
    """

    time: int
    priority: int
    seq: int
    kind: str
    end: LinkEnd | None = None
    clock: Clock | None = None
    payload: Any = None


def _describe(target: Any, payload: Any) -> str | None:
    """``dense1.on_event(Batch)`` or ``dense1.on_tick (clock)`` for a queue entry.

    ``None`` for the kernel's and tools' own entries (stop markers,
    checkpoint requests): they are not the model's events, so ``-vv`` does
    not show them.
    """
    target = getattr(target, "__wrapped__", target)  # a handler wrapped by a tool (functools.wraps)
    owner = getattr(target, "__self__", target)
    if isinstance(owner, Clock):
        return f"{owner.owner.name}.{owner.handler_name} (clock)"
    if not isinstance(owner, Component):
        return None
    return f"{owner.name}.{getattr(target, '__name__', '')}({type(payload).__name__})"


@dataclass
class Placement:
    """Hints for partitioning a parallel run (`Simulation.place`); a serial run ignores them.

    ``rank`` pins the component (the ``self`` partitioner); ``group`` keeps
    components together on one rank (a hardware node of a dataflow mapping:
    every partitioner honours it); ``weight`` is its relative cost, which the
    ``linear`` and ``graph`` partitioners balance.
    """

    rank: int | None = None
    group: str | None = None
    weight: float = 1.0


# Why `run` returned. "paused" (a time limit) and "break" (a request to stop
# between events, e.g. for the console) leave the simulation resumable.
# "stalled" (nothing scheduled, but a primary component waits) ends the run
# unless ``run(end_when_stalled=False)`` was asked to return it resumable.
RESUMABLE_REASONS = ("paused", "break")
FINISHED_REASONS = ("primaries done", "queue empty", "stalled", "stop-at", "shutdown")


class Simulation:
    """A model under construction, then running, then finished.

    Build it with ``add`` and ``connect`` (or ``nnsim.nn.Sequential(...).build``),
    then ``run()``. ``run(until=...)`` pauses at a simulated time and a later
    ``run()`` continues; the run ends when the primary components agree, the
    queue is empty, or ``stop_at`` is reached, and then the complete and finish
    phases run.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        stop_at: int | str | None = None,
        verbose: int = 0,
        output: TextIO | None = None,
    ):
        if int(seed) < 0:
            raise ParamError(f"seed {seed} is negative; use a seed >= 0")
        self.seed = int(seed)
        self.verbose = verbose
        self.stop_at = None if stop_at is None else parse_time(stop_at)
        self.output = output
        # A live display (a progress bar) that shows the run's lines above itself; see print().
        self.printer: Callable[[str], None] | None = None
        self.phase = "construction"
        self.stop_reason: str | None = None
        self.components: dict[str, Component] = {}
        self.link_list: list[Link] = []
        self._queue = EventQueue()
        self._last_id = 0
        self._primaries = 0
        self._blocking = 0
        self._blockers: set[str] = set()
        self._untimed_sent = 0
        self._start_actions: list = []
        self._observers: dict[str, list] = {}
        self.checkpointer: Any = None  # set by nnsim.checkpoint when checkpoints are enabled
        self.checkpoint_lineage: str | None = None  # the run a restored simulation continues
        self._stalled = False  # run() returned "stalled" and the run may go on
        self._markers = 0  # the one sequence of kernel entries (source 0): keys never tie
        self._markers_lock = threading.Lock()  # tools schedule from timer threads too
        self.hooks = HandlerHooks(self)
        self.placement: dict[str, Placement] = {}  # partitioning hints, see place()

    # Kernel entries: tools' actions and run control ---------------------------
    def _kernel_entry(self, target: Any, time: int | None, delay: int, priority: int) -> None:
        """Queue ``target`` as a kernel entry (source 0) with the next kernel sequence number."""
        if time is None:
            time = self.now + int(delay)
        elif delay:
            raise ParamError("give a time or a delay, not both")
        if type(time) is not int:
            raise ParamError(f"a time in ps is an integer, not {time!r}")
        if time < self.now:
            raise ParamError(
                f"cannot schedule at {format_time(time)}, before now ({format_time(self.now)})"
            )
        with self._markers_lock:
            self._markers += 1
            self._queue.push_at(time, priority, 0, self._markers, target, None)

    def _push_marker(self, time: int, priority: int, reason: str) -> _StopMarker:
        marker = _StopMarker(self, reason)
        self._kernel_entry(marker, time, 0, priority)
        return marker

    def schedule(
        self,
        action: Callable[[], Any],
        *,
        at: int | str | None = None,
        delay: int | str = 0,
        priority: int = ACTION_PRIORITY,
    ) -> Scheduled:
        """Run ``action()`` between events at simulated time ``at`` (or ``delay`` from now).

        Safe from handlers and from other threads (a wall-clock timer).
        ``priority`` orders it among the entries of its time (lower first):
        the default runs after every event of that time and before the end
        check, which is where a checkpoint or a probe sees a settled state.
        """
        entry = Scheduled(self, action)
        time = None if at is None else parse_time(at)
        self._kernel_entry(entry, time, parse_time(delay), priority)
        return entry

    def cancel(self, entry: Scheduled | Any) -> None:
        """Take a scheduled action (or a pause) out of the queue; no-op if it already ran."""
        self._queue.remove_target(entry)

    def on_start(self, action: Callable[[], Any]) -> None:
        """Call ``action()`` when the run phase starts (now, if it has): where tools
        schedule their first entries."""
        if self.phase in ("construction", "init", "setup"):
            self._start_actions.append(action)
        else:
            action()

    def _next_id(self) -> int:
        self._last_id += 1
        return self._last_id

    def add(self, type_name: str | type, name: str, **params: Any) -> Component:
        """Create a component of a registered type (``"nn.Dense"``) or class."""
        if self.phase != "construction":
            raise ParamError(f"cannot add component '{name}': the simulation has started")
        if not name or "/" in name or "." in name or name != name.strip():
            raise ParamError(
                f"component name {name!r} is not allowed; use letters, digits, _ and -"
            )
        if name in self.components:
            raise ParamError(f"a component named '{name}' already exists")
        cls = lookup(type_name) if isinstance(type_name, str) else type_name
        if not (isinstance(cls, type) and issubclass(cls, Component)):
            raise ParamError(f"{type_name!r} is not a component type")
        component = cls(self, name, **params)
        self.components[name] = component
        return component

    def place(
        self,
        name: str,
        *,
        rank: int | None = None,
        group: str | None = None,
        weight: float | None = None,
    ) -> Placement:
        """Hint how a parallel run places component ``name`` (see `Placement`).

        ``sim.place("dense1", rank=1)`` is what ``--partitioner self`` reads;
        ``group`` and ``weight`` guide the other partitioners. A serial run
        ignores placements, so a model script may always give them.
        """
        self.component(name)  # LinkError naming it when there is none
        hint = self.placement.setdefault(name, Placement())
        if rank is not None:
            if type(rank) is not int or rank < 0:
                raise ParamError(f"the rank of '{name}' must be a whole number >= 0, not {rank!r}")
            hint.rank = rank
        if group is not None:
            if not isinstance(group, str) or not group:
                raise ParamError(f"the group of '{name}' must be a non-empty name, not {group!r}")
            hint.group = group
        if weight is not None:
            if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
                raise ParamError(f"the weight of '{name}' must be a number > 0, not {weight!r}")
            if weight == float("inf"):
                raise ParamError(f"the weight of '{name}' must be finite")
            hint.weight = float(weight)
        return hint

    def component(self, name: str) -> Component:
        try:
            return self.components[name]
        except KeyError:
            raise LinkError(f"there is no component named '{name}'") from None

    def _end(self, ref: Any) -> tuple[LinkEnd, int | None]:
        """Resolve ``"comp.port"``, ``(comp, "port")`` or ``(comp, "port", latency)``."""
        latency = None
        if isinstance(ref, LinkEnd):
            return ref, None
        if isinstance(ref, str):
            component_name, _, port = ref.partition(".")
            component = self.component(component_name)
        elif isinstance(ref, tuple) and len(ref) in (2, 3):
            component, port = ref[0], ref[1]
            if isinstance(component, str):
                component = self.component(component)
            if len(ref) == 3:
                latency = parse_time(ref[2])
        else:
            raise LinkError(f"cannot read {ref!r} as a port; write 'component.port'")
        return component.link(port), latency

    def connect(
        self, left: Any, right: Any, latency: int | str = DEFAULT_LATENCY, name: str | None = None
    ) -> Link:
        """Link two ports; ``latency`` applies to both ends unless an end gives its own."""
        if self.phase != "construction":
            raise LinkError("cannot connect ports: the simulation has started")
        default = parse_time(latency)
        (a, a_latency), (b, b_latency) = self._end(left), self._end(right)
        for end in (a, b):
            if end.peer is not None:
                raise LinkError(f"port {end.path} is already connected to {end.peer.path}")
        if a is b:
            raise LinkError(f"cannot connect port {a.path} to itself")
        a.latency = default if a_latency is None else a_latency
        b.latency = default if b_latency is None else b_latency
        link = Link(name or f"{a.path}--{b.path}", a, b)
        a.connect_to(b, link)
        b.connect_to(a, link)
        self.link_list.append(link)
        return link

    # Output -----------------------------------------------------------------
    def print(self, line: str) -> None:
        """One line of the run's output: to ``output`` (stdout), or through ``printer`` when set.

        A progress display sets ``printer`` while it draws so that lines go
        above its bars, and clears it when it stops; the text is the same.
        """
        if self.printer is not None:
            self.printer(line)
        else:
            print(line, file=self.output or sys.stdout, flush=True)

    # Notifications: how an element library tells tools (checkpoint policies) what happened.
    def observe(self, topic: str, callback) -> None:
        """Call ``callback(**data)`` whenever an element calls ``notify(topic, **data)``."""
        self._observers.setdefault(topic, []).append(callback)

    def notify(self, topic: str, **data: Any) -> None:
        """Tell observers of ``topic`` (e.g. ``"epoch_end"`` with metrics); cheap when none."""
        for callback in self._observers.get(topic, ()):
            callback(**data)

    def checkpoint(self, name: str | None = None) -> str:
        """Write a checkpoint now (between events); needs checkpoints enabled."""
        if self.checkpointer is None:
            raise ParamError(
                "checkpoints are not enabled for this simulation; use "
                "nnsim.checkpoint.enable(sim, DIR) or 'nnsim run --checkpoint-enable'"
            )
        return self.checkpointer.checkpoint_now(reason="requested", name=name)

    # Primary components -----------------------------------------------------
    def _primary_blocks(self, component: Component, blocks: bool) -> None:
        if blocks:
            self._blockers.add(component.name)
        else:
            self._blockers.discard(component.name)
        self._blocking = len(self._blockers)
        if not blocks and self._blocking == 0 and self.phase == "run":
            self._push_marker(self.now, EXIT_PRIORITY, "primaries done")

    # Phases -----------------------------------------------------------------
    def _elements(self):
        for component in self.components.values():
            yield component
            yield from component.subcomponents.values()

    def _untimed_rounds(self, hook: str) -> None:
        """Call ``hook(phase)`` on every element until a round sends nothing."""
        phase = 0
        while True:
            self._untimed_sent = 0
            for element in self._elements():
                getattr(element, hook)(phase)
            for component in self.components.values():
                for end in component.links.values():
                    end._untimed_in, end._untimed_next = end._untimed_next, []
            if self._untimed_sent == 0:
                self._note(1, f"{hook}: {phase + 1} round(s)")
                return
            phase += 1

    def _note(self, level: int, text: str) -> None:
        """A ``# ...`` line of ``--verbose`` output (never on the hot path)."""
        if self.verbose >= level:
            self.print(f"# {text}")

    def start(self) -> None:
        """Run the init rounds and setup, and schedule the first clock ticks."""
        if self.phase != "construction":
            return
        if not self.components:
            raise ParamError("the model has no components; the model script must add some")
        self._note(
            1,
            f"{len(self.components)} components, {len(self.link_list)} links, seed {self.seed}",
        )
        self.phase = "init"
        self._untimed_rounds("init")
        self.phase = "setup"
        for element in self._elements():
            element.setup()
        self.phase = "run"
        for action in self._start_actions:
            action()
        self._start_actions.clear()
        if self.stop_at is not None:
            self._push_marker(self.stop_at, STOP_PRIORITY, "stop-at")
        self._note(1, "setup done; running")

    def request_break(
        self, after_this_time: bool = False, *, at: int | str | None = None
    ) -> _StopMarker:
        """Stop the run loop after the current event (safe from handlers, threads and signals).

        ``run`` then returns ``"break"`` and a later ``run`` continues. With
        ``after_this_time``, stop after every event of the current time instead
        (and after tools' actions of that time, such as a checkpoint request).
        With ``at``, stop before the first event at or after that time
        (``--interactive-start``); ``cancel`` the returned entry to take it back.
        """
        priority = EXIT_PRIORITY if after_this_time else STOP_PRIORITY
        time = self.now if at is None else max(self.now, parse_time(at))
        return self._push_marker(time, priority, "break")

    def request_shutdown(self) -> None:
        """End the run cleanly after the current event: complete and finish still run."""
        self._push_marker(self.now, STOP_PRIORITY, "shutdown")

    def request_stop(self, reason: str) -> None:
        """End the run after the current event; ``run`` returns ``reason`` (e.g. a tool's failure).

        Like a shutdown, the complete and finish phases still run.
        """
        if reason in RESUMABLE_REASONS:
            raise ParamError(f"'{reason}' does not end a run; use request_break")
        self._push_marker(self.now, STOP_PRIORITY, reason)

    def set_stop_at(self, stop_at: int | str | None) -> None:
        """End the run at this time (also after a restart, where ``start`` has already run)."""
        self.stop_at = None if stop_at is None else parse_time(stop_at)
        if self.stop_at is not None and self.phase == "run":
            if self.stop_at < self.now:
                raise ParamError(
                    f"--stop-at {format_time(self.stop_at)} is before the current time {format_time(self.now)}"
                )
            self._push_marker(self.stop_at, STOP_PRIORITY, "stop-at")

    def run(self, until: int | str | None = None, *, end_when_stalled: bool = True) -> str:
        """Advance simulated time; return why it stopped (see ``FINISHED_REASONS``).

        With ``until`` (a time), pause before the first event after it and
        return ``"paused"``; call ``run`` again to continue. A stalled run
        (nothing scheduled, a primary component waiting: see ``waiting``) ends
        as ``"stalled"``; with ``end_when_stalled=False`` it returns
        ``"stalled"`` and stays resumable, for a tool that can change a setting.
        """
        self.start()
        if self.phase != "run":
            return self.stop_reason or "finished"
        if self._stalled:
            self._stalled = False
            self.notify("resumed")  # tools that went quiet with the model may start again
        pause = None
        if until is not None:
            pause = self._push_marker(max(self.now, parse_time(until)), STOP_PRIORITY, "paused")
        delivered, started = self._queue.delivered, time.perf_counter()
        reason = self._loop() if self.verbose < 2 else self._traced_loop()
        if reason == "queue empty" and self._blocking:
            reason = "stalled"
        self._note(
            1,
            f"run stopped at {format_time(self.now)} ({reason}): "
            f"{self._queue.delivered - delivered} events in {time.perf_counter() - started:.3f} s",
        )
        if pause is not None and reason != "paused":
            self._discard(pause)
        if reason in RESUMABLE_REASONS:
            return reason
        if reason == "stalled" and not end_when_stalled:
            self._stalled = True
            return reason
        self.stop_reason = reason
        self.end()
        return reason

    def _loop(self) -> str:
        try:
            self._queue.run()
        except _Stop as stop:
            return stop.reason
        return "queue empty"

    def _traced_loop(self, end: int | None = None, priority: int = 0) -> str:
        """The loop of ``--verbose --verbose``: one ``#`` line per event (slow, for debugging).

        With ``end``, only the entries below (end, priority), as `run_window`.
        """
        queue = self._queue
        try:
            while len(queue):
                if end is not None and queue.first_key()[:2] >= (end, priority):
                    return "window"
                time_ps, _, _, _, target, payload = queue.pop()
                described = _describe(target, payload)
                if described is not None:
                    self.print(f"# @{time_ps} ps {described}")
                target(payload)
        except _Stop as stop:
            return stop.reason
        return "queue empty"

    # Parallel runs: one process's share of the simulation ------------------------------
    def run_window(self, end: int, priority: int = STOP_PRIORITY) -> str | None:
        """Deliver the queued entries whose (time, priority) is below (``end``, ``priority``).

        One synchronization window of a parallel run: the entries from that
        point on stay queued. Returns None when the point is reached, or the
        reason a stop entry gave on the way ("primaries done", "stop-at", ...).
        Unlike `run` it never ends the run: the caller decides when the whole
        run is over, sets ``stop_reason`` and calls `end`.
        """
        self.start()
        if self.verbose >= 2:
            reason = self._traced_loop(end, priority)
            return None if reason in ("window", "queue empty") else reason
        try:
            self._queue.run_before(end, priority)
        except _Stop as stop:
            return stop.reason
        return None

    def next_key(self) -> tuple[int, int, int, int] | None:
        """The key (time, priority, source, seq) of the next queued entry, or None."""
        return self._queue.first_key()

    @property
    def current_key(self) -> tuple[int, int, int, int]:
        """The key (time, priority, source, seq) of the entry being handled.

        It is unique and the same however the model is partitioned, so a
        parallel run orders the lines its processes print by it.
        """
        return self._queue.key

    def localize(self, owned: Iterable[str]) -> None:
        """Run only the ``owned`` components in this process; other processes run the rest.

        Called by ``nnsim.parallel`` once the run phase has started (the init
        and setup phases ran on the whole model in every process): queued
        ticks and events of the other components are dropped, and their
        primary status no longer holds this process's run open (the process
        that runs them counts it; a queued end requested by the primaries
        stays only with them). Links to them must send to an outbox
        (`LinkEnd.send_to_outbox`). It may be called again, after the state
        of the whole run was gathered here for a checkpoint.
        """
        if self.phase != "run":
            raise ParamError("a simulation is localized once its run phase has started")
        owned = set(owned)
        unknown = owned - set(self.components)
        if unknown:
            raise ParamError(f"there is no component named '{sorted(unknown)[0]}'")
        owner: dict[int, str] = {}
        for component in self.components.values():
            for end in component.links.values():
                if end.peer is not None:
                    owner[end.id] = end.peer.owner.name  # an event from end goes to its peer
            for clock in component.clocks:
                owner[clock.id] = component.name
        leads = any(self.components[name].primary for name in owned)

        def kept_here(entry: tuple) -> bool:
            if entry[2] != 0:
                return owner.get(entry[2]) in owned
            # Kernel entries stay, but the end the primaries requested belongs to their process.
            target = entry[4]
            return leads or not (
                isinstance(target, _StopMarker) and target.reason == "primaries done"
            )

        kept = [entry for entry in self._queue.entries() if kept_here(entry)]
        self._queue.clear()
        for entry in kept:
            self._queue.push_at(*entry)
        self._blockers &= owned
        self._blocking = len(self._blockers)

    def adopt_run_state(self, now: int, blockers: Iterable[str]) -> None:
        """Take the end of a whole parallel run into this process's simulation.

        ``now`` is the run's final time and ``blockers`` the primary
        components that still hold it open, over every process; with the
        components' states gathered (`nnsim.state.restore_components`) this
        simulation then reports as the serial run would.
        """
        self._queue.now = max(self._queue.now, int(now))
        self._blockers = set(blockers)
        self._blocking = len(self._blockers)

    def waiting(self) -> list[Wait]:
        """What each primary component that still keeps the run going waits for."""
        return [self.components[name].waiting_for() for name in sorted(self._blockers)]

    @property
    def stalled(self) -> bool:
        """Nothing is scheduled for the model, but a primary component still waits.

        True after a ``"stalled"`` end, and also after ``--stop-at`` or a
        shutdown reached while the model was waiting.
        """
        return bool(self._blocking) and not self.model_events_pending()

    def model_events_pending(self) -> bool:
        """True while a link event or a clock tick is queued (tools' markers do not count).

        A tool that schedules itself periodically (a checkpoint period) stops
        when this is False, so it does not keep a stalled run alive.
        """
        return any(entry[2] != 0 for entry in self._queue.entries())

    def _discard(self, marker: _StopMarker) -> None:
        self._queue.remove_target(marker)

    def shutdown(self) -> None:
        """End the run cleanly now: the complete and finish phases still run."""
        if self.phase == "run":
            self.stop_reason = "shutdown"
            self.end()

    def end(self) -> None:
        """Run the complete rounds and finish (once)."""
        if self.phase != "run":
            return
        self.phase = "complete"
        self._untimed_rounds("complete")
        self.phase = "finish"
        for element in self._elements():
            element.finish()
        self.phase = "done"
        self._note(1, "finish done")

    @property
    def finished(self) -> bool:
        return self.phase == "done"

    @property
    def pending_events(self) -> int:
        return len(self._queue)

    @property
    def delivered(self) -> int:
        """Events (and ticks and kernel entries) handled so far."""
        return self._queue.delivered

    # Kernel state: what the state walk saves and restores ------------------------------
    def kernel_state(self) -> dict[str, Any]:
        """The kernel's own counters as plain data (with ``pending()``, its whole state)."""
        return {
            "now": self.now,
            "delivered": self._queue.delivered,
            "primaries": self._primaries,
            "blockers": sorted(self._blockers),
            "markers": self._markers,
            "last_id": self._last_id,
        }

    def restore_kernel_state(self, state: dict[str, Any]) -> None:
        """Put saved counters back into a constructed, not started simulation of the same model.

        The simulation is then in its run phase with an empty queue, to be
        filled with ``requeue``; clocks come back from the queue, not from
        their registration.
        """
        if self.phase != "construction":
            raise ParamError("kernel state can be restored only before the simulation starts")
        if state["last_id"] != self._last_id:
            raise ParamError("the rebuilt model numbers its ports differently from the saved one")
        self._primaries = state["primaries"]
        self._blockers = set(state["blockers"])
        self._blocking = len(self._blockers)
        self._markers = state["markers"]
        self._start_actions.clear()
        self.phase = "run"
        self._queue.now = state["now"]
        self._queue.delivered = state["delivered"]

    def pending(self) -> list[Pending]:
        """The queued entries that are simulation state, in queue order (see `Pending`)."""
        ends = {end.id: end for c in self.components.values() for end in c.links.values()}
        clocks = {clock.id: clock for c in self.components.values() for clock in c.clocks}
        entries = []
        for time_ps, priority, source, seq, target, payload in sorted(
            self._queue.entries(), key=lambda entry: entry[:4]
        ):
            if source == 0:
                if isinstance(target, _StopMarker) and target.reason == "primaries done":
                    entries.append(Pending(time_ps, priority, seq, "exit"))
            elif source in ends:
                entries.append(
                    Pending(time_ps, priority, seq, "link", end=ends[source], payload=payload)
                )
            elif source in clocks:
                entries.append(Pending(time_ps, priority, seq, "clock", clock=clocks[source]))
            else:
                raise ParamError(f"the queue holds an entry from unknown source {source}")
        return entries

    def requeue(self, entry: Pending) -> None:
        """Queue a saved entry again with its exact key (after ``restore_kernel_state``)."""
        if entry.kind == "link":
            end = entry.end
            self._queue.push_at(
                entry.time, entry.priority, end.id, entry.seq, end.send.target, entry.payload
            )
        elif entry.kind == "clock":
            clock = entry.clock
            self._queue.push_at(entry.time, entry.priority, clock.id, entry.seq, clock._tick, None)
        elif entry.kind == "exit":
            marker = _StopMarker(self, "primaries done")
            self._queue.push_at(entry.time, EXIT_PRIORITY, 0, entry.seq, marker, None)
        else:
            raise ParamError(f"unknown queue entry kind {entry.kind!r}")

    @property
    def now(self) -> int:
        """The current simulated time in ps (the time of the event being handled)."""
        return self._queue.now
