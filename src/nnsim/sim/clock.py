"""Clocks: a handler called every period while the clock is on.

As in SST, a handler returns True to turn its clock off; ``wake()`` (usually
from a link event handler) turns it back on at the next period boundary after
now. An idle layer therefore costs nothing, and an arrived event is handled
on the next tick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nnsim.sim.event import CLOCK_PRIORITY
from nnsim.units import period_of

if TYPE_CHECKING:
    from nnsim.sim.component import Component


class Clock:
    """A component's clock; ``ticks`` counts the ticks it has handled (its busy cycles)."""

    __slots__ = (
        "owner",
        "id",
        "frequency",
        "period",
        "handler_name",
        "active",
        "scheduled",
        "ticks",
        "seq",
        "_handler",
        "_tick",
        "_queue",
    )

    def __init__(self, owner: Component, clock_id: int, frequency: str, handler_name: str):
        self.owner = owner
        self.id = clock_id
        self.frequency = frequency
        self.period = period_of(frequency)
        self.handler_name = handler_name
        self.active = False
        self.scheduled = False  # a tick is in the queue
        self.ticks = 0
        self.seq = 0
        self._handler = getattr(owner, handler_name)
        self._tick = self.deliver  # one bound method, so queue entries can be found by target
        self._queue = owner.sim._queue

    def wake(self) -> None:
        """Turn the clock on; the first tick is at the next period boundary after now."""
        self.active = True
        if self.scheduled:
            return
        self.scheduled = True
        self.seq += 1
        queue, period = self._queue, self.period
        queue.push_at(
            (queue.now // period + 1) * period, CLOCK_PRIORITY, self.id, self.seq, self._tick, None
        )

    def stop(self) -> None:
        """Turn the clock off (same as the handler returning True)."""
        self.active = False

    def deliver(self, _unused: None) -> None:
        if not self.active:
            self.scheduled = False
            return
        self.ticks += 1
        if self._handler(self.ticks) or not self.active:
            self.active = False
            self.scheduled = False
            return
        self.seq += 1
        self._queue.push(self.period, CLOCK_PRIORITY, self.id, self.seq, self._tick, None)
