"""Links: the only way components talk, each end with its own latency.

A ``LinkEnd`` belongs to one port of one component (SST calls it the
component's ``Link*``). ``send`` puts the event in the queue at
now + latency (+ extra delay) addressed to the peer end, keyed by the sending
end's stable id and its own sequence number, so the total order of events
never depends on object identity or on how the model is partitioned.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any

from nnsim.errors import LinkError
from nnsim.sim.event import EVENT_PRIORITY
from nnsim.sim.queue import Sender

if TYPE_CHECKING:
    from nnsim.sim.component import Component


class LinkEnd:
    """One port's end of a link: ``send(event, delay=0)`` queues the event for the peer's handler.

    Once connected, ``send`` is a ``Sender`` (compiled when available): the
    call numbers the event and queues it without entering a Python frame.
    """

    __slots__ = (
        "owner",
        "port",
        "id",
        "peer",
        "link",
        "handler_name",
        "send",
        "_latency",
        "_handler",
        "_sim",
        "_untimed_in",
        "_untimed_next",
    )

    def __init__(self, owner: Component, port: str, end_id: int, handler_name: str | None):
        self.owner = owner
        self.port = port
        self.id = end_id
        self._latency = 0
        self.peer: LinkEnd | None = None
        self.link: Link | None = None
        self.handler_name = handler_name
        self.send = self._send_unconnected
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

    @property
    def latency(self) -> int:
        """Latency in ps of events sent from this end."""
        return self._latency

    @latency.setter
    def latency(self, value: int) -> None:
        self._latency = value
        if self.peer is not None:
            self.send.latency = value

    @property
    def sent(self) -> int:
        """Events sent from this end; also the sequence number of the last one."""
        return self.send.sent if self.peer is not None else 0

    @property
    def received(self) -> int:
        """Events delivered to this end: what the peer sent, less what is still in flight."""
        if self.peer is None:
            return 0
        source = self.peer.id
        in_flight = sum(1 for entry in self._sim._queue.entries() if entry[2] == source)
        return self.peer.sent - in_flight

    def connect_to(self, peer: LinkEnd, link: Link) -> None:
        self.peer = peer
        self.link = link
        self.send = Sender(self._sim._queue, self.id, EVENT_PRIORITY, self._latency, peer._handler)

    def send_to_outbox(self, outbox: list) -> None:
        """From now on, events sent on this end go to ``outbox`` instead of the queue.

        For a peer that lives in another process (``nnsim.parallel``): each
        send appends ``(time, priority, source, seq, event)``, the exact key
        the event would have had in this queue, and the other process queues
        it with ``Simulation.requeue``. Numbering and ``sent`` go on as before.
        """
        if self.peer is None:
            raise LinkError(f"port {self.path} is not connected")
        outbox_sender = OutboxSender(self._sim._queue, self.send, outbox)
        self.send = outbox_sender

    def _send_unconnected(self, event: Any, delay: int = 0) -> None:
        raise LinkError(
            f"{self.owner.name} sent an event on port '{self.port}', which is not "
            "connected; connect it in the model script"
        )

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


class OutboxSender:
    """A link end's ``send`` whose peer is in another process (`LinkEnd.send_to_outbox`).

    It has a ``Sender``'s attributes (``latency``, ``sent``, ``target``,
    ``source``, ``priority``) and its checks, so tools and the state walk see
    no difference; the event goes to a list instead of the queue.
    """

    __slots__ = ("_queue", "source", "priority", "latency", "sent", "target", "outbox")

    def __init__(self, queue: Any, sender: Any, outbox: list):
        self._queue = queue
        self.source = sender.source
        self.priority = sender.priority
        self.latency = sender.latency
        self.sent = sender.sent
        self.target = sender.target
        self.outbox = outbox

    def __call__(self, event: Any, /, delay: int = 0) -> None:
        delay = operator.index(delay)  # as the Sender: a numpy integer is fine, a float is not
        if delay < 0:
            raise ValueError(f"cannot send an event with a negative delay ({delay} ps)")
        self.sent += 1
        time = self._queue.now + self.latency + delay
        self.outbox.append((time, self.priority, self.source, self.sent, event))


class Link:
    """A connection between two ends; the name is what the console and dot output show.

    ``traffic`` is the expected relative number of events on the link, a hint
    for the ``graph`` partitioner of parallel runs (default 1); a model
    script may set it on the link ``connect`` returns.
    """

    __slots__ = ("name", "ends", "traffic")

    def __init__(self, name: str, left: LinkEnd, right: LinkEnd):
        self.name = name
        self.ends = (left, right)
        self.traffic = 1

    def __repr__(self) -> str:
        left, right = self.ends
        return f"Link({self.name}: {left.path} -> {right.path})"
