"""The event queue: entries ordered by (time, priority, source id, sequence).

``EventQueue`` and ``Sender`` are the compiled ones from ``_cqueue.c`` when it
was built (the normal install) and ``PyEventQueue``/``PySender`` otherwise;
``NNSIM_PURE_PYTHON=1`` forces the Python ones. An entry is ``(time, priority,
source, seq, target, payload)``; running the queue calls ``target(payload)``
for each entry in order, with ``now`` set to its time.

Both implementations behave the same on every path, which
``tests/test_sim_queue.py`` checks case by case:

* the four key fields, ``now``, ``delivered`` and a sender's numbers are
  integers (anything with ``__index__``; a float is a ``TypeError``) that fit
  in 64 bits (else ``OverflowError``), and come back as plain ``int``;
* ``now`` and latencies are never negative, an event is never scheduled
  before ``now`` or past the last 64-bit time (``ValueError``/``OverflowError``);
* the key ``(time, priority, source, seq)`` must be unique: the order is then
  total and never looks at the target or payload. When the next entry due has
  a twin with the same key, ``pop`` and ``run`` raise ``ValueError`` naming the
  key and deliver neither (a tie would be broken differently by the two heaps,
  and by a restarted run);
* ``entries()`` lists the pending entries in delivery order;
* ``run_before(time, priority)`` delivers only the entries whose (time,
  priority) is below the pair (a parallel run's window), ``first_key()`` is
  the next entry's key (or None) and ``key`` the key of the entry being
  delivered;
* calls with the wrong number of arguments, or keywords where the C
  functions take none, raise ``TypeError`` (the message names the class).
"""

from __future__ import annotations

import heapq
import itertools
import operator
import os
from typing import Any

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _int64(value: Any, what: str) -> int:
    """``value`` as a 64-bit int, with the errors of ``_cqueue.c``'s ``as_int64``."""
    if type(value) is not int:
        value = operator.index(value)  # TypeError: 'float' object cannot be interpreted ...
    if not INT64_MIN <= value <= INT64_MAX:
        raise OverflowError(f"{what} {value} does not fit in a 64-bit integer")
    return value


def _duplicate_error(entry: tuple) -> ValueError:
    time, priority, source, seq = entry[:4]
    return ValueError(
        f"two events share the key (time {time} ps, priority {priority}, source {source}, "
        f"seq {seq}); each event's (time, priority, source, seq) must be unique"
    )


def _top_is_duplicate(heap: list) -> bool:
    """Whether the first entry has a twin: if so, it is a child of the root."""
    key = heap[0][:4]
    return heap[1][:4] == key or (len(heap) > 2 and heap[2][:4] == key)


class PyEventQueue:
    """The same queue in pure Python (heapq), for platforms without a compiler.

    Heap items are ``(time, priority, source, seq, order, target, payload)``:
    ``order`` (insertion order) only keeps heapq from ever comparing targets
    when two entries share a key; such a pair is refused when it comes due.
    """

    __slots__ = ("_heap", "_now", "_delivered", "_order", "_current")

    def __init__(self) -> None:
        self._heap: list[tuple] = []
        self._now = 0
        self._delivered = 0
        self._order = itertools.count()
        self._current: tuple = (0, 0, 0, 0)  # the heap item being delivered

    @property
    def now(self) -> int:
        """Time of the entry being delivered (ps)."""
        return self._now

    @now.setter
    def now(self, value: Any) -> None:
        value = _int64(value, "now")
        if value < 0:
            raise ValueError(f"now cannot be negative ({value} ps)")
        self._now = value

    @now.deleter
    def now(self) -> None:
        raise AttributeError("cannot delete now")

    @property
    def delivered(self) -> int:
        """Entries delivered so far."""
        return self._delivered

    @property
    def key(self) -> tuple[int, int, int, int]:
        """Key (time, priority, source, seq) of the entry being delivered (the last one taken)."""
        return (self._now, *self._current[1:4])

    @delivered.setter
    def delivered(self, value: Any) -> None:
        self._delivered = _int64(value, "delivered")

    @delivered.deleter
    def delivered(self) -> None:
        raise AttributeError("cannot delete delivered")

    def _insert(self, time: int, priority: int, source: int, seq: int, target, payload) -> None:
        heapq.heappush(
            self._heap, (time, priority, source, seq, next(self._order), target, payload)
        )

    def push(
        self, delay: Any, priority: Any, source: Any, seq: Any, target: Any, payload: Any, /
    ) -> None:
        """Queue ``target(payload)`` at ``now + delay``."""
        delay = _int64(delay, "delay")
        priority, source, seq = (
            _int64(priority, "priority"),
            _int64(source, "source"),
            _int64(seq, "seq"),
        )
        if delay < 0:
            raise ValueError(f"cannot schedule an event with a negative delay ({delay} ps)")
        if delay > INT64_MAX - self._now:
            raise OverflowError(
                f"cannot schedule an event {delay} ps after {self._now} ps: "
                "the time does not fit in a 64-bit integer"
            )
        self._insert(self._now + delay, priority, source, seq, target, payload)

    def push_at(
        self, time: Any, priority: Any, source: Any, seq: Any, target: Any, payload: Any, /
    ) -> None:
        """Queue ``target(payload)`` at an absolute time (not before ``now``)."""
        time = _int64(time, "time")
        priority, source, seq = (
            _int64(priority, "priority"),
            _int64(source, "source"),
            _int64(seq, "seq"),
        )
        if time < self._now:
            raise ValueError(f"cannot schedule an event at {time} ps, before now ({self._now} ps)")
        self._insert(time, priority, source, seq, target, payload)

    def pop(self) -> tuple:
        """Remove the first entry, set ``now`` to its time and return it as a 6-tuple."""
        heap = self._heap
        if not heap:
            raise IndexError("pop from an empty event queue")
        if len(heap) > 1 and _top_is_duplicate(heap):
            raise _duplicate_error(heap[0])
        self._current = heapq.heappop(heap)
        time, priority, source, seq, _, target, payload = self._current
        self._now = time
        self._delivered += 1
        return (time, priority, source, seq, target, payload)

    def run(self) -> None:
        """Call ``target(payload)`` for each entry in order until empty or a call raises."""
        heap, pop = self._heap, heapq.heappop
        while heap:
            if len(heap) > 1 and _top_is_duplicate(heap):
                raise _duplicate_error(heap[0])
            self._current = entry = pop(heap)
            self._now = entry[0]
            self._delivered += 1
            entry[5](entry[6])

    def run_before(self, time: Any, priority: Any, /) -> None:
        """As ``run``, but only while the next entry's (time, priority) is below the given pair."""
        end = (_int64(time, "time"), _int64(priority, "priority"))
        heap, pop = self._heap, heapq.heappop
        while heap and heap[0][:2] < end:
            if len(heap) > 1 and _top_is_duplicate(heap):
                raise _duplicate_error(heap[0])
            self._current = entry = pop(heap)
            self._now = entry[0]
            self._delivered += 1
            entry[5](entry[6])

    def first_key(self) -> tuple[int, int, int, int] | None:
        """The key (time, priority, source, seq) of the next entry, or None when empty."""
        return self._heap[0][:4] if self._heap else None

    def entries(self) -> list[tuple]:
        """The pending entries as 6-tuples, in delivery order."""
        return [entry[:4] + entry[5:] for entry in sorted(self._heap)]

    def remove_target(self, target: Any, /) -> int:
        """Remove every entry whose target is ``target``; return how many."""
        kept = [entry for entry in self._heap if entry[5] is not target]
        removed = len(self._heap) - len(kept)
        self._heap[:] = kept
        heapq.heapify(self._heap)
        return removed

    def replace_target(self, old: Any, new: Any, /) -> int:
        """Entries for ``old`` go to ``new``; return how many."""
        replaced = 0
        for index, entry in enumerate(self._heap):
            if entry[5] is old:
                self._heap[index] = (*entry[:5], new, entry[6])
                replaced += 1
        return replaced

    def clear(self) -> None:
        """Remove every entry."""
        self._heap.clear()

    def __len__(self) -> int:
        return len(self._heap)


class PySender:
    """A link end's ``send``: numbers its events and queues them for the peer's handler.

    Calling it is the whole cost of sending; the compiled ``Sender`` does the
    same without entering a Python frame.
    """

    __slots__ = ("_queue", "_source", "_priority", "_latency", "_sent", "target")

    def __init__(self, queue: Any, source: Any, priority: Any, latency: Any, target: Any):
        if not isinstance(queue, PyEventQueue):
            raise TypeError(f"a Sender's queue must be an EventQueue, not {type(queue).__name__}")
        self._queue = queue
        self._source = _int64(source, "source")
        self._priority = _int64(priority, "priority")
        self.latency = latency
        self._sent = 0
        self.target = target

    @property
    def queue(self) -> PyEventQueue:
        """The event queue."""
        return self._queue

    @property
    def source(self) -> int:
        """Stable id of the sending end."""
        return self._source

    @source.setter
    def source(self, value: Any) -> None:
        self._source = _int64(value, "source")

    @property
    def priority(self) -> int:
        """Queue priority."""
        return self._priority

    @priority.setter
    def priority(self, value: Any) -> None:
        self._priority = _int64(value, "priority")

    @property
    def latency(self) -> int:
        """Latency in ps."""
        return self._latency

    @latency.setter
    def latency(self, value: Any) -> None:
        value = _int64(value, "latency")
        if value < 0:
            raise ValueError(f"latency cannot be negative ({value} ps)")
        self._latency = value

    @property
    def sent(self) -> int:
        """Events sent (the sequence number of the last one)."""
        return self._sent

    @sent.setter
    def sent(self, value: Any) -> None:
        self._sent = _int64(value, "sent")

    def __call__(self, event: Any, /, delay: Any = 0) -> None:
        if delay.__class__ is not int or delay:
            delay = _int64(delay, "delay")
            if delay < 0:
                raise ValueError(f"cannot send an event with a negative delay ({delay} ps)")
        queue, latency = self._queue, self._latency
        room = INT64_MAX - queue._now
        if latency > room or delay > room - latency:
            raise OverflowError(
                f"cannot send an event {latency} + {delay} ps after {queue._now} ps: "
                "the time does not fit in a 64-bit integer"
            )
        self._sent += 1
        queue._insert(
            queue._now + latency + delay,
            self._priority,
            self._source,
            self._sent,
            self.target,
            event,
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
