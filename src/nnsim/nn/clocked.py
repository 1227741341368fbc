"""The timing model every layer shares: events arrive, the next clock tick handles them.

A layer's clock is off while it is idle; an arriving event wakes it, and the
layer handles everything that arrived on its next tick (DESIGN.md: a hop
costs link latency + one clock period).
"""

from __future__ import annotations

from typing import Any

from nnsim.errors import StateError
from nnsim.sim import Component, Event, Frequency, Param


class Clocked(Component):
    """Queues arriving events and hands them to ``handle`` on the next tick."""

    params = (
        Param(
            "clock",
            Frequency,
            "1GHz",
            "clock that handles arrived events on its next tick",
            fixed=True,
        ),
    )

    def build(self) -> None:
        self.pending: list = []
        self._clock = self.register_clock(self.clock, "on_tick", start=False)

    def restore(self) -> None:
        """After a restart: the saved events waiting for the next tick must be events."""
        if not isinstance(self.pending, list) or not all(
            isinstance(event, Event) for event in self.pending
        ):
            raise StateError(
                f"{self.name}/pending holds something that is not an event; "
                "restart from another checkpoint"
            )

    def on_event(self, event: Any) -> None:
        self.pending.append(event)
        self._clock.wake()

    def on_tick(self, cycle: int) -> bool:
        pending = self.pending
        self.pending = []
        for event in pending:
            self.handle(event)
        return self.advance()

    def handle(self, event: Any) -> None:
        raise NotImplementedError

    def advance(self) -> bool:
        """This tick's own work, after the arrived events: True turns the clock off.

        A layer has none (the clock sleeps until the next event); the batch
        controller runs its state machine here. (Not a clock handler: the
        clock's handler, the name a checkpoint stores, is ``on_tick``.)
        """
        return True
