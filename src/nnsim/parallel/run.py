"""One simulation over the ranks: conservative windows, events and lines exchanged at their ends.

Every rank runs the model script and the init and setup phases on the whole
model (as every SST rank reads the whole configuration), so all ranks start
time with the same state. The partition then gives each component a rank;
a rank delivers only the events of its own components (`Simulation.localize`),
and a send to another rank's component goes to an outbox
(`LinkEnd.send_to_outbox`) with the exact key it would have had serially.

**Windows.** At every exchange each rank tells all the others its next
entry's time and, per rank, the earliest event it sends there, so every
rank knows Q_s, where each live rank s's queue starts now. Within a window
a rank delivers only what it holds, and what it sends is queued by the
receiver at the next exchange, so an event travels one hop per window; but
over later windows an event may hop on, through any ranks, back to its
start included. So nothing can ever arrive at rank r before

    bound_r = min over live ranks s (r included) of Q_s + D(s, r),

D(s, r) being the shortest path from s to r over the cut links, each hop
the latency of the end that sends it, and D(r, r) the shortest round trip
(`Partition.distances`, from the partition, once). Rank r delivers its
entries below bound_r, at least the global lowest Q plus the lookahead (the
smallest cut latency) and longer where the ranks that feed r are further on
or far away; a rank no path reaches is bounded only by the sync points
below and the leader's lag. A rank that has ended adds nothing (it
delivers, so relays, nothing more). Then the outboxes are
exchanged and queued with their keys: one ``Alltoall`` of fixed-size blocks
carries every rank's status row and the crossing events (their keys as
binary words, their payloads as the state walk encodes them), and an
``Alltoallv`` follows only for what does not fit in a block. The
order of events is the serial one: (time, priority, sending end, sequence)
does not depend on the partition.

**Sync points.** A checkpoint (``--checkpoint-period``, the epoch and
step triggers, rank 0's ``--checkpoint-wall-period``) and the console
(``--interactive-start``, ``run TIME``; Ctrl-C and a watchpoint at the end
of the window they happened in, a flag in the status row) are points every
rank stops at before going on. At a checkpoint every rank writes its own tensor files
and rank 0 the one manifest (`nnsim.parallel.checkpoint`); for the console
the whole state is gathered to rank 0, which runs it and then sends each
rank its components back; the console's ``checkpoint`` and ``shutdown`` are
orders every rank follows there (`ParallelRun.resume`).

**The end.** ``--stop-at`` is known to every rank, which stops at it by
itself. An empty queue everywhere ends the run at the next exchange. The
end requested by the primary components happens at one event on one rank
— all primaries share a rank (the *leader*, checked by the partitioner) —
and the other ranks must not deliver anything serial would not have: so
they run one window behind the leader, never past the point the leader
has reached without ending, and once it has ended, exactly up to its end
(time t, the end check's priority). Without primaries there is no leader
and no lag.

**Output.** Lines a component prints are tagged with the key of the event
that printed them and merged on rank 0 in key order, i.e. in serial order;
other ranks print nothing themselves. A rank's window end is a bound on
every key it will still deliver, so rank 0 prints the lines below the
smallest window end any rank reached, whatever each rank's own bound was. At the end the components' states and
the entries still queued are gathered to rank 0 through the checkpoint
walk (`nnsim.state.capture_components`), so rank 0's simulation is the
serial one: it runs the complete and finish phases, writes statistics and
holds the predictions and weights.

A rank that raises reports at the next exchange; every rank then ends with
the same one-line error (`RankFailed`) instead of waiting for it.
"""

from __future__ import annotations

import heapq
import json
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnsim.errors import ParamError, StateError
from nnsim.parallel.checkpoint import ParallelCheckpoints
from nnsim.parallel.partition import (
    Partition,
    check_partition,
    make_partition,
    write_partition,
)
from nnsim.parallel.wire import pack, pack_events, unpack, unpack_events
from nnsim.parallel.world import RankFailed, World, describe_failure
from nnsim.sim import (
    ACTION_PRIORITY,
    EXIT_PRIORITY,
    STOP_PRIORITY,
    Pending,
    Simulation,
    registered_types,
)
from nnsim.state import Decoder, Encoder, capture_components, restore_components
from nnsim.state.rows import RecordReader, RecordWriter

NEVER = 2**63 - 1  # no next entry; also "no bound"
# Status fields each rank shares after every exchange.
# Then, one per rank r, the earliest time of the events sent to r at that exchange.
FIELDS = 14
NEXT, BOUND_TIME, BOUND_PRIORITY, DONE, FAILED, NOW, BLOCKING, END, REQUEST, WALL = range(10)
INTERRUPT, WATCH_INDEX, WATCH_TIME = range(10, 13)  # Ctrl-C, a watchpoint that held
QUEUED = 13  # this rank's own next entry (NEVER once it has ended), what came in aside
DONE_CODES = {None: 0, "stop-at": 1, "primaries done": 2}
REASONS = {code: reason for reason, code in DONE_CODES.items()}


@dataclass
class RankReport:
    """What one rank did (the ``-v`` lines): windows, events, time spent synchronizing."""

    rank: int
    size: int
    components: int
    windows: int = 0
    events: int = 0
    busiest: int = 0
    sync_seconds: float = 0.0

    def line(self) -> str:
        per_window = self.events / self.windows if self.windows else 0.0
        sync_us = 1e6 * self.sync_seconds / self.windows if self.windows else 0.0
        return (
            f"rank {self.rank} of {self.size}: {self.components} component"
            f"{'' if self.components == 1 else 's'}, "
            f"{self.windows} windows, {self.events} events ({per_window:.1f} per window, "
            f"at most {self.busiest}), sync {self.sync_seconds:.3f} s ({sync_us:.0f} us per window)"
        )

    def to_json(self) -> dict:
        return {
            "rank": self.rank,
            "size": self.size,
            "components": self.components,
            "windows": self.windows,
            "events": self.events,
            "busiest": self.busiest,
            "sync_seconds": self.sync_seconds,
        }


class ParallelRun:
    """This rank's share of one simulation; `run` drives it to the end with the other ranks."""

    def __init__(
        self,
        sim: Simulation,
        world: World,
        partition: Partition,
        *,
        checkpoint_period: int | None = None,
        writer: ParallelCheckpoints | None = None,
        every_epochs: int = 0,
        every_steps: int = 0,
        wall_period: float | None = None,
    ):
        """``checkpoint_period`` (ps) takes a checkpoint at every multiple of it,
        ``every_epochs``/``every_steps`` after every N epochs/steps the element library
        reports (as the serial triggers), ``wall_period`` every so many seconds of rank
        0's wall clock; every rank's ``writer`` writes them (`nnsim.parallel.checkpoint`)."""
        self.sim = sim
        self.world = world
        self.partition = partition
        self.checkpoint_period = checkpoint_period
        self.writer = writer
        self.wall_period = wall_period
        self.next_wall = None if wall_period is None else time.perf_counter() + wall_period
        self.wall_at: int | None = None  # where every rank stops for a wall-clock checkpoint
        self.next_checkpoint = (
            None
            if checkpoint_period is None
            else (sim.now // checkpoint_period + 1) * checkpoint_period
        )
        self.every_epochs, self.every_steps = every_epochs, every_steps
        self.checkpoints = checkpoint_period is not None or bool(every_epochs or every_steps)
        self.checkpoints |= wall_period is not None
        self.request: tuple[int, str, dict | None] | None = None  # this rank's trigger
        self.requested_at: int | None = None  # a trigger's time, known to every rank
        self.latest_metrics: dict = {}  # the last epoch's, what checkpoints are ranked by
        self.next_break: int | None = None  # where every rank stops for the console
        # Why the console is entered at next_break, when not asked by time: ("interrupt",) or
        # ("watch", index, time) -- a Ctrl-C or a watchpoint seen at the last exchange.
        self.break_cause: tuple | None = None
        self.interrupted = False  # Ctrl-C here since the last exchange (`interrupt`)
        self.watch_hit: tuple[int, int] | None = None  # (index, time) of a watchpoint here
        self.watching: Any = None  # this rank's own watchpoints (`nnsim.parallel.console`)
        self.trace_states: dict[str, dict] = {}  # rank 0: the other ranks' traces, by index
        self.reports: list[RankReport] | None = None  # once the end is gathered
        self.status = None  # every rank's row from the last exchange
        self.done: str | None = None  # why this rank stopped ("stop-at", "primaries done")
        self.owned = partition.owned(world.rank)
        # How soon an event from each rank can reach this one, over any path (`_bound`).
        self.reach = [row[world.rank] for row in partition.distances()]
        self.outboxes: list[list] = [[] for _ in range(world.size)]
        self.lines: list[tuple] = []  # (time, priority, source, seq, n, text) printed here
        self.ends = {end.id: end for c in sim.components.values() for end in c.links.values()}
        self.peer_owner = {
            end.path: end.peer.owner.name for end in self.ends.values() if end.peer is not None
        }
        self.elements = {}
        for component in sim.components.values():
            self.elements[component.name] = component
            for sub in component.subcomponents.values():
                self.elements[sub.name] = sub
        primaries = {partition.assignment[c.name] for c in sim.components.values() if c.primary}
        self.leader = primaries.pop() if primaries else None
        self.report = RankReport(world.rank, world.size, len(self.owned))
        registered_types()  # the element libraries' events, imported before the first window
        self.error: str | None = None  # this rank's failure, reported at the next exchange
        self._printed = 0
        self._printer = sim.printer  # how lines are printed for real (rank 0)
        self._pending_lines: list[tuple] = []  # rank 0: lines not yet safe to print

    def localize(self) -> None:
        """Route the cut links to outboxes and keep only this rank's components' entries."""
        assignment, rank = self.partition.assignment, self.world.rank
        for name in self.owned:
            for end in self.sim.components[name].links.values():
                if end.peer is not None and assignment[end.peer.owner.name] != rank:
                    end.send_to_outbox(self.outboxes[assignment[end.peer.owner.name]])
        self.sim.localize(self.owned)
        if self.checkpoints:
            self.sim.observe("epoch_end", self._on_epoch_end)
            self.sim.observe("step_end", self._on_step_end)

    def _capture_line(self, text: str) -> None:
        self._printed += 1
        self.lines.append((*self.sim.current_key, self._printed, text))

    # The loop -----------------------------------------------------------------------
    def run(self) -> str:
        """Run windows until every rank is at the next console break ("break"; the whole
        state is then on rank 0) or the whole run has ended (why, as `Simulation.run` says)."""
        sim = self.sim
        sim.printer = self._capture_line
        try:
            if self.status is None:
                self.status = self._exchange(None, (0, STOP_PRIORITY))
            while (reason := self._finished(self.status)) is None:
                if self._at_break(self.status):
                    self._pause()
                    return "break"
                if self._at_checkpoint(self.status):
                    self._checkpoint()
                bound = self._bound(self.status)
                reached = bound
                if not self.done and self.error is None:
                    try:
                        self.done, reached = self._window(bound, self.status)
                    except Exception as failure:  # every rank reports it at the exchange
                        self.error = describe_failure(failure)
                started = time.perf_counter()
                self.status = self._exchange(self.done, (NEVER, 0) if self.done else reached)
                self.report.sync_seconds += time.perf_counter() - started
        finally:
            sim.printer = self._printer
        return reason

    def _bound(self, status) -> tuple[int, int]:
        """Where this rank's next window ends: (time, priority), exclusive.

        Nothing can arrive here before the earliest, over every live rank s
        (this one included), of s's next entry plus the time an event takes
        from s to here (`Partition.distances`); a follower also stays below
        what the leader has reached without ending, or exactly at the
        leader's end.
        """
        queued = [NEVER if row[DONE] else row[QUEUED] for row in status]
        for row in status:  # what each rank sent is the receiver's to deliver from now on
            for rank, earliest in enumerate(row[FIELDS:]):
                if earliest < queued[rank] and not status[rank][DONE]:
                    queued[rank] = earliest
        arrival = min(
            (t + d for t, d in zip(queued, self.reach, strict=True) if t != NEVER and d != NEVER),
            default=NEVER,
        )
        bound = (min(NEVER, arrival), 0)
        point = self._next_point()
        if point is not None:  # every rank stops where the checkpoint is taken
            bound = min(bound, (point, ACTION_PRIORITY))
        if self.next_break is not None:  # ... and where the console is entered
            bound = min(bound, (self.next_break, STOP_PRIORITY))
        if self.leader is None or self.world.rank == self.leader:
            return bound
        leader = status[self.leader]
        if leader[DONE] == DONE_CODES["primaries done"]:
            reached = (leader[END], EXIT_PRIORITY)
        else:  # the bound it ran to, or (NEVER, 0) once it has stopped at --stop-at
            reached = (leader[BOUND_TIME], leader[BOUND_PRIORITY])
        return min(bound, reached)

    def _window(self, bound: tuple[int, int], status) -> tuple[str | None, tuple[int, int]]:
        """Deliver this rank's entries below ``bound``; return "stop-at"/"primaries done"
        (or None) and the point reached: ``bound``, or where a checkpoint trigger fired."""
        sim = self.sim
        before = sim.delivered
        reason = sim.run_window(*bound)
        events = sim.delivered - before
        self.report.windows += 1
        self.report.events += events
        self.report.busiest = max(self.report.busiest, events)
        if reason is None:
            leader = status[self.leader] if self.leader is not None else None
            if (
                leader is not None
                and leader[DONE] == DONE_CODES["primaries done"]
                and bound == (leader[END], EXIT_PRIORITY)
            ):
                return "primaries done", bound  # this follower reached the leader's end
            return None, bound
        if reason == "break" and self.request is not None:
            return None, (self.request[0], ACTION_PRIORITY)
        if reason not in DONE_CODES:
            raise ParamError(f"the run stopped for '{reason}', which parallel runs do not support")
        return reason, bound

    def _exchange(self, done: str | None, bound: tuple[int, int]):
        """Send the outboxes (and to rank 0 the lines printed here) with this rank's status;
        queue what came; return every rank's status row.

        Every rank takes part in the collectives whatever happened. A rank's
        failure (``self.error``) travels in its status, and every rank then
        raises the same one-line error here; one found while queueing what
        came is reported at the next exchange. Rank 0 prints the lines that
        no rank can precede any more.
        """
        sent = [min((event[0] for event in outbox), default=NEVER) for outbox in self.outboxes]
        try:
            outgoing = [self._packet(rank) for rank in range(self.world.size)]
        except Exception as failure:
            self.error = self.error or describe_failure(failure)
            outgoing = [b""] * self.world.size
        key = self.sim.next_key()
        row = [0] * FIELDS + sent
        row[QUEUED] = NEVER if done or key is None else key[0]
        row[NEXT] = NEVER if done else min(row[QUEUED], *sent)
        row[BOUND_TIME], row[BOUND_PRIORITY] = bound
        row[DONE] = DONE_CODES[done]
        row[FAILED] = self.error is not None
        row[NOW] = self.sim.now
        row[BLOCKING] = len(self.sim.kernel_state()["blockers"])
        row[END] = self.sim.now if done == "primaries done" else -1
        row[REQUEST] = self.request[0] if self.request is not None else -1
        row[WALL] = self._wall_due()
        row[INTERRUPT] = self.interrupted
        row[WATCH_INDEX], row[WATCH_TIME] = self.watch_hit or (-1, -1)
        self.interrupted, self.watch_hit = False, None
        incoming, status = self.world.exchange(outgoing, row)
        if any(row[FAILED] for row in status):
            self.world.raise_if_failed(self.error)
        requests = [row[REQUEST] for row in status if row[REQUEST] >= 0]
        self.requested_at = min(requests) if requests else None
        if status[0][WALL] and not any(row[DONE] for row in status):
            # No rank has delivered anything after the latest time any has reached.
            self.wall_at = max(row[NOW] for row in status)
        try:
            for data in incoming:
                if data:
                    self._receive(*unpack_events(data))
        except Exception as failure:
            self.error = describe_failure(failure)
        if self.world.root:
            self._flush_lines(below=min((r[BOUND_TIME], r[BOUND_PRIORITY]) for r in status))
        self._break_if_asked(status)  # once per exchange, so one Ctrl-C is one break
        return status

    def _packet(self, rank: int) -> bytes:
        """The events for ``rank`` (keys as binary words, payloads as rows where they are
        records of plain numbers, `nnsim.state.rows`, else through the state walk's
        encoder) and, to rank 0, the lines printed here; empty when there is neither."""
        outbox = self.outboxes[rank]
        lines = rank == 0 and bool(self.lines) and not self.world.root
        if not outbox and not lines:
            return b""
        encoder = Encoder()
        records = RecordWriter(encoder)
        for _, _, source, seq, event in outbox:
            records.write(event, f"<event {source}/{seq}>")
        keys = [entry[:4] for entry in outbox]
        outbox.clear()
        extra = {"lines": [list(line) for line in self.lines]} if lines else {}
        if lines:
            self.lines.clear()
        return pack_events(keys, records.tree(), encoder.tensors, extra)

    def _receive(self, keys: list[list[int]], tree: dict, tensors: dict) -> None:
        decoder = Decoder(tensors, self.elements)
        events = RecordReader(tree["payloads"], tensors, decoder, "<events>").read()
        if len(events) != len(keys):
            raise StateError(f"<events>: a message holds {len(keys)} keys, {len(events)} events")
        requeue, ends = self.sim.requeue, self.ends
        for (t, p, source, seq), event in zip(keys, events, strict=True):
            end = ends.get(source)
            if end is None:
                raise StateError(f"<event {source}/{seq}>: sent by a link end not in the model")
            requeue(Pending(t, p, seq, "link", end=end, payload=event))
        for line in tree.get("lines", ()):
            heapq.heappush(self._pending_lines, tuple(line))

    # Checkpoints at sync points -------------------------------------------------------
    def _next_point(self) -> int | None:
        """The time of the next checkpoint: the period's, a trigger's that a rank reported,
        or the wall clock's that rank 0 asked for."""
        points = [
            t for t in (self.next_checkpoint, self.requested_at, self.wall_at) if t is not None
        ]
        return min(points) if points else None

    def _wall_due(self) -> bool:
        """Rank 0: the wall-clock period is over and no wall checkpoint is on its way.

        Only rank 0's clock counts; the decision travels in its status row,
        and every rank then stops at the same point (`_exchange`): when the
        checkpoint is taken depends on the wall clock, what it holds does not.
        """
        return (
            self.world.root
            and self.next_wall is not None
            and self.wall_at is None
            and time.perf_counter() >= self.next_wall
        )

    def _on_epoch_end(self, **metrics: Any) -> None:
        self.latest_metrics = metrics
        if self.every_epochs and (metrics["epoch"] + 1) % self.every_epochs == 0:
            self._trigger(f"epoch {metrics['epoch']}", metrics)

    def _on_step_end(self, **data: Any) -> None:
        if self.every_steps and data["step"] % self.every_steps == 0:
            self._trigger(f"step {data['step']}", None)

    def _trigger(self, reason: str, metrics: dict | None) -> None:
        """A checkpoint after the events of this time, as the serial trigger's marker: this
        rank's window stops there and tells the others, who stop there too."""
        sim = self.sim
        if self.leader is None or self.world.rank != self.leader:
            raise ParamError(
                f"checkpoint trigger '{reason}' came from a rank that does not run the primary "
                "components; parallel runs take these triggers only from their rank"
            )

        def fire() -> None:
            if self.request is None:
                self.request = (sim.now, reason, metrics)
                sim.request_break()  # the window ends here: (now, after the actions before)

        sim.schedule(fire, priority=ACTION_PRIORITY)

    def _at_checkpoint(self, status) -> bool:
        """Every rank has delivered everything before the next checkpoint, and none has ended."""
        if self._next_point() is None:
            return False
        point = (self._next_point(), ACTION_PRIORITY)
        return all(
            not row[DONE] and (row[BOUND_TIME], row[BOUND_PRIORITY]) == point for row in status
        )

    def _checkpoint(self) -> None:
        """Every rank writes its components' tensors, rank 0 the manifest of the whole model.

        It is the serial run's checkpoint at the same point (a period marker
        runs after every event of its time): restarted on any number of
        ranks, serially included, it continues as the serial run does.
        """
        sim, at = self.sim, self._next_point()
        period, requested = self.next_checkpoint == at, self.requested_at == at
        wall = self.wall_at == at

        def choose(shares: list[dict]) -> list[tuple[str, dict]]:
            latest = next((t["metrics"] for t in shares if t["metrics"]), {})
            chosen = []
            if period:  # scheduled before any trigger of its time, so written first
                chosen.append(("period", latest))
            if requested:
                reason, metrics = next(t["request"] for t in shares if t["request"])
                chosen.append((reason, metrics or latest))
            if wall:
                chosen.append(("wall", latest))
            return chosen

        capture, sim.printer = sim.printer, self._printer  # its line prints now, in order
        try:
            go_on = self.writer.take(
                sim, self.owned, at, period + requested + wall, self._own_share(), choose
            )
        finally:
            sim.printer = capture
        if period:
            self.next_checkpoint = at + self.checkpoint_period if go_on else None
        if requested:
            self.request = self.requested_at = None
        if wall:
            self.wall_at = None
            self.next_wall = time.perf_counter() + self.wall_period

    def _merge(self, parts: list[bytes], now: int) -> list[dict]:
        """Rank 0: put the other ranks' shares into this simulation, at time ``now``;
        return what else they said (reports, metrics, triggers), one dict per rank."""
        sim = self.sim
        blockers, trees = set(sim.kernel_state()["blockers"]), []
        for data in parts[1:]:
            tree, tensors = unpack(data)
            restore_components(sim, tree, tensors)
            blockers.update(tree["blockers"])
            trees.append({key: tree[key] for key in ("report", "metrics", "request")})
            self.trace_states.update(tree.get("traces", {}))
        sim.adopt_run_state(now, blockers)
        return trees

    # The console at sync points ------------------------------------------------------
    def interrupt(self, *_signal: Any) -> None:
        """Ctrl-C (a SIGINT handler): every rank stops for the console at the next sync point."""
        self.interrupted = True

    def watchpoint_held(self, index: int) -> None:
        """A watchpoint with the ``interactive`` action held on this rank: as `interrupt`."""
        if self.watch_hit is None:  # the first of the window is the earliest
            self.watch_hit = (index, self.sim.now)

    def _break_if_asked(self, status) -> None:
        """Ctrl-C or a watchpoint on any rank: every rank breaks at the end of this window.

        That is the furthest point a rank has reached (a follower catches up
        with its leader first; a rank whose window had no end, as one no
        other rank links to, counts as just after its last event); no rank
        can stop earlier, since each has delivered its window, so the
        console opens there, not at the event.
        """
        live = [row for row in status if not row[DONE]]
        hits = sorted((row[WATCH_TIME], row[WATCH_INDEX]) for row in live if row[WATCH_INDEX] >= 0)
        if not hits and not any(row[INTERRUPT] for row in live):
            return
        point = max(
            row[NOW] + 1  # a window without end: all delivered, nothing can come any more
            if row[BOUND_TIME] == NEVER
            else row[BOUND_TIME] + (row[BOUND_PRIORITY] > STOP_PRIORITY)
            for row in live
        )
        if self.next_break is None or point <= self.next_break:
            self.next_break = point
            self.break_cause = ("watch", hits[0][1], hits[0][0]) if hits else ("interrupt",)

    def _at_break(self, status) -> bool:
        """Every rank has delivered everything before the console's break, and none has ended."""
        if self.next_break is None:
            return False
        point = (self.next_break, STOP_PRIORITY)
        return all(
            not row[DONE] and (row[BOUND_TIME], row[BOUND_PRIORITY]) == point for row in status
        )

    def _pause(self, at: int | None = None) -> None:
        """Gather the whole state to rank 0 for the console (at the break's time, or ``at``)."""
        world, at = self.world, self.next_break if at is None else at
        parts = world.gather_bytes(world.together(self._share))
        world.together(lambda: self._merge(parts, at) if world.root else None, name_rank=False)
        self.next_break = None

    def resume(self, until: int | None = None, watch: list | None = None) -> str:
        """Go on after the console: to ``until`` (rank 0's word counts), or to the end.

        Rank 0 sends every rank its components as the console left them (a
        ``set`` included) and its watchpoints (``watch``: `watch_specs`), which
        each rank arms on the components it runs; then the windows go on
        (`run`), and the result is "break" again or why the run ended. The
        other ranks call it at every break and follow what rank 0's console
        ordered: a run, a checkpoint (`checkpoint_at_break`, then "break"
        again) or the end (`shutdown_at_break`, "shutdown").
        """
        order = {"do": "run", "until": NEVER if until is None else until, "watch": watch or []}
        return self._follow(order)

    def checkpoint_at_break(self, name: str | None = None) -> str:
        """Rank 0's console: a checkpoint of the whole run here, at the break; its name."""
        self._follow({"do": "checkpoint", "name": name, "at": self.sim.now})
        return self.writer.names[0]

    def shutdown_at_break(self) -> None:
        """Rank 0's console: end the run here on every rank, as the serial ``shutdown``."""
        self._follow({"do": "shutdown"})

    def _follow(self, order: dict) -> str:
        """Rank 0's ``order`` to every rank (the others' own argument is not used)."""
        word = json.dumps(order).encode() if self.world.root else None
        order = json.loads(self.world.broadcast_bytes(word))
        if order["do"] == "checkpoint":
            try:
                self._take_at_break(order["name"], order["at"])
            except RankFailed:  # the same on every rank: rank 0's console says it, all go on
                if self.world.root:
                    raise
            return "break"
        if order["do"] == "shutdown":
            self._end_at_break()
            return "shutdown"
        self._scatter()
        self.world.together(lambda: self._arm(order["watch"]))
        self.next_break = None if order["until"] == NEVER else order["until"]
        self.break_cause, self.interrupted, self.watch_hit = None, False, None
        return self.run()

    def _take_at_break(self, name: str | None, at: int) -> None:
        """The console's ``checkpoint``: the one a period would write at this point.

        Each rank gets its components back (`_scatter`) and writes its own
        tensor files, rank 0 the manifest (`ParallelCheckpoints.take`, as
        `_checkpoint`); then the whole state is on rank 0 again for the console.
        """
        self._scatter()

        def choose(shares: list[dict]) -> list[tuple]:
            latest = next((t["metrics"] for t in shares if t["metrics"]), {})
            return [("console", latest, name)]

        try:
            self.writer.take(self.sim, self.owned, at, 1, self._own_share(), choose)
        finally:
            self._pause(at)

    def _end_at_break(self) -> None:
        """The console's ``shutdown``: rank 0 holds the whole state and ends it there (complete
        and finish); the others send their reports and end, their shares already there."""
        world = self.world
        if self.writer is not None:
            self.writer.wait()
        self._flush_lines(everything=True)
        reports = world.gather_bytes(json.dumps(self.report.to_json()).encode())
        self.reports = []
        if world.root:
            self.reports = [RankReport(**json.loads(data)) for data in reports]
            self.sim.shutdown()

    def _arm(self, specs: list) -> None:
        from nnsim.parallel.console import arm

        if not self.world.root:  # rank 0's console checks its own components itself
            self.watching = arm(
                self.sim, set(self.owned), specs, self.watchpoint_held, previous=self.watching
            )

    def _scatter(self) -> None:
        sim, world = self.sim, self.world

        def shares() -> list[bytes]:
            if not world.root:
                return [b""] * world.size
            blockers, outgoing = sim.kernel_state()["blockers"], [b""]
            for rank in range(1, world.size):
                owned = set(self.partition.owned(rank))
                part, tensors = capture_components(sim, sorted(owned))
                part["queue"] = [
                    entry for entry in part["queue"] if self._queued_for(entry, owned, rank)
                ]
                part["blockers"] = blockers
                outgoing.append(pack(part, tensors))
            return outgoing

        incoming, _ = world.exchange(world.together(shares, name_rank=False), ())

        def take() -> None:
            if not world.root:
                tree, tensors = unpack(incoming[0])
                sim.localize([])  # its entries come back from rank 0, with what the console added
                restore_components(sim, tree, tensors)
                sim.adopt_run_state(sim.now, tree["blockers"])
            sim.localize(self.owned)

        world.together(take)

    def _queued_for(self, entry: dict, owned: set[str], rank: int) -> bool:
        """Whether a captured queue entry is delivered by ``rank`` (which owns ``owned``)."""
        if entry["kind"] == "link":
            return self.peer_owner[entry["source"]] in owned
        if entry["kind"] == "clock":
            return entry["component"] in owned
        return rank == self.leader  # the end the primaries requested

    def _share(self) -> bytes:
        """This rank's components, its queued entries and its report, as bytes for rank 0."""
        if self.error is not None:
            raise ParamError(self.error)
        sim = self.sim
        part, tensors = capture_components(sim, [] if self.world.root else self.owned)
        part.update(self._own_share(), now=sim.now, blockers=sim.kernel_state()["blockers"])
        part["traces"] = self._trace_states()
        return pack(part, tensors)

    def _trace_states(self) -> dict:
        """This rank's traces' buffers, for rank 0's console (`nnsim.parallel.console`)."""
        from nnsim.parallel.console import trace_states

        return trace_states(self.watching)

    def _own_share(self) -> dict:
        """What this rank says besides its state: its report, metrics and trigger.

        Metrics are the element library's epoch numbers (`plain_metrics`).
        """
        metrics = plain_metrics(self.latest_metrics)
        request = None
        if self.request is not None:
            _, reason, trigger_metrics = self.request
            request = [reason, plain_metrics(trigger_metrics or {}) or None]
        return {"report": self.report.to_json(), "metrics": metrics, "request": request}

    def _finished(self, status) -> str | None:
        """Why the whole run ended (None: it goes on)."""
        codes = [row[DONE] for row in status]
        if all(codes):
            return "primaries done" if DONE_CODES["primaries done"] in codes else "stop-at"
        if not any(codes) and all(row[NEXT] == NEVER for row in status):
            return "stalled" if any(row[BLOCKING] for row in status) else "queue empty"
        return None

    # Printed lines (rank 0) ---------------------------------------------------------
    def _flush_lines(self, below: tuple[int, int] = (NEVER, 0), everything: bool = False) -> None:
        if not self.world.root:
            return
        for line in self.lines:
            heapq.heappush(self._pending_lines, line)
        self.lines.clear()
        pending, sim = self._pending_lines, self.sim
        capture, sim.printer = sim.printer, self._printer  # print for real, not capture again
        try:
            while pending and (everything or tuple(pending[0][:2]) < below):
                sim.print(heapq.heappop(pending)[5])
        finally:
            sim.printer = capture

    # The end ------------------------------------------------------------------------
    def gather(self, reason: str) -> list[RankReport]:
        """Bring every rank's components and queued entries to rank 0 and end the run there.

        Rank 0's simulation then is the serial one at its end, and runs the
        complete and finish phases. Returns every rank's report (on rank 0).
        """
        if self.reports is not None:
            return self.reports  # already gathered (the console's last run did)
        sim, world = self.sim, self.world
        if self.writer is not None:
            self.writer.wait()  # the last background write, its failure said by every rank
        self._flush_lines(everything=True)
        parts = world.gather_bytes(world.together(self._share))
        self.reports = []
        if world.root:
            now = max([sim.now] + [unpack(data)[0]["now"] for data in parts[1:]])
            trees = self._merge(parts, now)
            self.reports = [self.report] + [RankReport(**tree["report"]) for tree in trees]
            sim.stop_reason = reason
            sim.end()
        return self.reports


def plain_metrics(metrics: dict) -> dict:
    """Epoch metrics as plain JSON numbers (numpy scalars as their values; others left out)."""
    plain = {}
    for key, value in metrics.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, int | float | str | bool):
            plain[key] = value
    return plain


@contextmanager
def interrupts_to(parallel: ParallelRun) -> Iterator[None]:
    """Ctrl-C (SIGINT, which ``mpiexec`` passes to every rank) opens the console at the
    next sync point instead of ending the rank (`ParallelRun.interrupt`)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only
        return
    previous = signal.signal(signal.SIGINT, parallel.interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def note(sim: Simulation, text: str) -> None:
    """A ``# ...`` line of ``-v`` output."""
    if sim.verbose:
        sim.print(f"# {text}")


def run_parallel(
    sim: Simulation,
    world: World,
    *,
    partitioner: str = "linear",
    output_partition: str | None = None,
    checkpoint_period: int | None = None,
    writer: ParallelCheckpoints | None = None,
    every_epochs: int = 0,
    every_steps: int = 0,
    wall_period: float | None = None,
    interactive_start: int | None = None,
    replay: str | None = None,
) -> list[RankReport]:
    """Run ``sim`` (built the same way on every rank) to its end over ``world``'s ranks.

    On rank 0 the simulation is afterwards the serial run's at its end
    (states, statistics, predictions; complete and finish have run) and the
    result is every rank's `RankReport`; the other ranks' simulations are
    their shares, left in the run phase, and the result is empty. With
    ``checkpoint_period`` (ps), ``every_epochs``, ``every_steps`` or
    ``wall_period`` (seconds), every rank's ``writer``
    (`nnsim.parallel.checkpoint.ParallelCheckpoints`) writes its share of a
    checkpoint of the whole model at those points. With
    ``interactive_start`` (ps) or ``replay`` the console is entered at that
    sync point, driven from rank 0 (`nnsim.parallel.console`).
    """
    world.together(sim.start)  # init and setup, on the whole model in every rank
    # Rank 0 partitions (a partitioner need not be deterministic), every rank checks.
    chosen = world.together(
        lambda: (
            json.dumps(make_partition(sim, world.size, partitioner).assignment).encode()
            if world.root
            else None
        ),
        name_rank=False,
    )
    assignment = json.loads(world.broadcast_bytes(chosen))
    partition = world.together(lambda: check_partition(sim, world.size, partitioner, assignment))
    if output_partition:  # rank 0 writes; a failure ends every rank
        world.together(
            lambda: write_partition(partition, output_partition) if world.root else None,
            name_rank=False,
        )
    note(sim, f"parallel run on {world.size} ranks: {partition.describe()}")
    parallel = ParallelRun(
        sim,
        world,
        partition,
        checkpoint_period=checkpoint_period,
        writer=writer,
        every_epochs=every_epochs,
        every_steps=every_steps,
        wall_period=wall_period,
    )
    world.together(parallel.localize)
    if replay is not None and interactive_start is None:
        interactive_start = 0  # the replay's commands run at the start, as serially
    parallel.next_break = interactive_start
    with interrupts_to(parallel):
        reason = parallel.run()
        if reason == "break" and world.root:
            from nnsim.parallel.console import drive

            reason = drive(parallel, interactive_start, replay)
        while reason == "break":  # the other ranks follow rank 0's console
            reason = parallel.resume()
        reports = parallel.gather(reason)
    for report in reports:
        note(sim, report.line())
    return reports
