"""Links: the only way components talk, each end with its own latency.

A ``LinkEnd`` belongs to one port of one component (SST calls it the
component's ``Link*``). ``send`` puts the event in the queue at
now + latency (+ extra delay) addressed to the peer end, keyed by the sending
end's stable id and its own sequence number, so the total order of events
never depends on object identity or on how the model is partitioned.
"""

from __future__ import annotations

from heapq import heappush
from typing import TYPE_CHECKING, Any

from nnsim.errors import LinkError
from nnsim.sim.event import EVENT_PRIORITY

if TYPE_CHECKING:
    from nnsim.sim.component import Component


class LinkEnd:
    """One port's end of a link: sends to the peer end, delivers to a handler."""

    __slots__ = (
        "owner",
        "port",
        "id",
        "latency",
        "peer",
        "link",
        "handler_name",
        "sent",
        "received",
        "_handler",
        "_sim",
        "_untimed_in",
        "_untimed_next",
    )

    def __init__(self, owner: Component, port: str, end_id: int, handler_name: str | None):
        self.owner = owner
        self.port = port
        self.id = end_id
        self.latency = 0
        self.peer: LinkEnd | None = None
        self.link: Link | None = None
        self.handler_name = handler_name
        self.sent = 0
        self.received = 0
        self._sim = owner.sim
        self._handler = getattr(owner, handler_name) if handler_name else self._no_handler
        self._untimed_in: list = []
        self._untimed_next: list = []

    @property
    def path(self) -> str:
        return f"{self.owner.name}.{self.port}"

    @property
    def connected(self) -> bool:
        return self.peer is not None

    def send(self, event: Any, delay: int = 0) -> None:
        """Deliver ``event`` to the peer's handler after latency + ``delay`` ps."""
        peer = self.peer
        if peer is None:
            raise LinkError(
                f"{self.owner.name} sent an event on port '{self.port}', which is not "
                "connected; connect it in the model script"
            )
        sim = self._sim
        self.sent += 1
        heappush(
            sim._queue,
            (sim.now + self.latency + delay, EVENT_PRIORITY, self.id, self.sent, peer, event),
        )

    def deliver(self, event: Any) -> None:
        self.received += 1
        self._handler(event)

    def _no_handler(self, event: Any) -> None:
        raise LinkError(
            f"{self.owner.name} received {type(event).__name__} on port '{self.port}', "
            "which has no handler (it is a send-only port); check the model's wiring"
        )

    # Untimed data for the init and complete phases (SST's sendUntimedData).
    def send_untimed(self, data: Any) -> None:
        """Send ``data`` to the peer; it can be received in the next init/complete round."""
        if self.peer is None:
            raise LinkError(
                f"{self.owner.name} sent untimed data on unconnected port '{self.port}'"
            )
        self.peer._untimed_next.append(data)
        self._sim._untimed_sent += 1

    def recv_untimed(self) -> Any:
        """The oldest untimed data received in the previous round, or None."""
        return self._untimed_in.pop(0) if self._untimed_in else None


class Link:
    """A connection between two ends; the name is what the console and dot output show."""

    __slots__ = ("name", "ends")

    def __init__(self, name: str, left: LinkEnd, right: LinkEnd):
        self.name = name
        self.ends = (left, right)

    def __repr__(self) -> str:
        left, right = self.ends
        return f"Link({self.name}: {left.path} -> {right.path})"
