"""The event queue: entries ordered by (time, priority, source id, sequence).

``EventQueue`` and ``Sender`` are the compiled ones from ``_cqueue.c`` when it
was built (the normal install) and ``PyEventQueue``/``PySender`` otherwise;
both behave the same, which the tests check (``NNSIM_PURE_PYTHON=1`` forces
the Python ones). An entry is ``(time, priority, source, seq, target,
payload)``; running the queue calls ``target(payload)`` for each entry in
order, with ``now`` set to its time. The first four fields are unique per
entry, so the order is total and never looks at the target or payload.
"""

from __future__ import annotations

import heapq
import os
from typing import Any


class PyEventQueue:
    """The same queue in pure Python (heapq), for platforms without a compiler."""

    __slots__ = ("_heap", "now", "delivered")

    def __init__(self) -> None:
        self._heap: list[tuple] = []
        self.now = 0
        self.delivered = 0

    def push(
        self, delay: int, priority: int, source: int, seq: int, target: Any, payload: Any
    ) -> None:
        if delay < 0:
            raise ValueError(f"cannot schedule an event {-delay} ps in the past")
        heapq.heappush(self._heap, (self.now + delay, priority, source, seq, target, payload))

    def push_at(
        self, time: int, priority: int, source: int, seq: int, target: Any, payload: Any
    ) -> None:
        if time < self.now:
            raise ValueError(f"cannot schedule an event at {time} ps, before now ({self.now} ps)")
        heapq.heappush(self._heap, (time, priority, source, seq, target, payload))

    def pop(self) -> tuple:
        entry = heapq.heappop(self._heap)
        self.now = entry[0]
        self.delivered += 1
        return entry

    def run(self) -> None:
        heap, pop = self._heap, heapq.heappop
        while heap:
            entry = pop(heap)
            self.now = entry[0]
            self.delivered += 1
            entry[4](entry[5])

    def entries(self) -> list[tuple]:
        return list(self._heap)

    def remove_target(self, target: Any) -> int:
        kept = [entry for entry in self._heap if entry[4] is not target]
        removed = len(self._heap) - len(kept)
        self._heap[:] = kept
        heapq.heapify(self._heap)
        return removed

    def replace_target(self, old: Any, new: Any) -> int:
        replaced = 0
        for index, entry in enumerate(self._heap):
            if entry[4] is old:
                self._heap[index] = (*entry[:4], new, entry[5])
                replaced += 1
        return replaced

    def clear(self) -> None:
        self._heap.clear()

    def __len__(self) -> int:
        return len(self._heap)


class PySender:
    """A link end's ``send``: numbers its events and queues them for the peer's handler.

    Calling it is the whole cost of sending; the compiled ``Sender`` does the
    same without entering a Python frame.
    """

    __slots__ = ("queue", "source", "priority", "latency", "sent", "target")

    def __init__(self, queue: Any, source: int, priority: int, latency: int, target: Any):
        self.queue = queue
        self.source = source
        self.priority = priority
        self.latency = latency
        self.sent = 0
        self.target = target

    def __call__(self, event: Any, delay: int = 0) -> None:
        if delay < 0:
            raise ValueError(f"cannot send an event with a negative delay ({delay} ps)")
        self.sent += 1
        self.queue.push(
            self.latency + delay, self.priority, self.source, self.sent, self.target, event
        )


EventQueue: type
Sender: type
if os.environ.get("NNSIM_PURE_PYTHON"):
    EventQueue, Sender = PyEventQueue, PySender
else:
    try:
        from nnsim.sim._cqueue import EventQueue, Sender
    except ImportError:  # not compiled: same behaviour, slower
        EventQueue, Sender = PyEventQueue, PySender
