"""What dataflow nodes send: frames over links, and reminders to themselves.

Plain data (DESIGN.md rule 1), so frames in flight are part of a checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnsim.sim import Event


@dataclass(slots=True)
class Frame(Event):
    """One value of one image crossing one hop, from node ``sender`` towards node ``dest``.

    ``dest`` -1 means the node that receives it (a one-hop route): then one
    frame object serves every destination of the value, as a multicast
    would.

    ``value`` is the graph's value id (``DataflowGraph.value_words`` says its
    size); ``data`` is the value itself: a float for a one-word value, a
    float32 array for a larger one (the whole image at ``neuron``
    granularity). Frames that reach a node which is not ``dest`` are stored
    and forwarded on the next hop of the route.
    """

    image: int
    value: int
    dest: int
    sender: int
    data: float | np.ndarray


@dataclass(slots=True)
class Burst(Event):
    """Consecutive one-word frames of one image over one hop, delivered as one event.

    The values ``value``, ``value + 1``, ... (one per item of ``data``) left
    ``sender`` back to back, when one task ended, for the node at the other
    end, which needs every one of them before it can use any. The link
    carries them exactly as separate `Frame`s (each takes its serialization
    time, `links.csv` counts each); delivering them together at the arrival
    of the last one changes no time the model reports, and takes one
    kernel event, one crossing between ranks, instead of one per value.
    """

    image: int
    value: int
    sender: int
    data: list[float]


@dataclass(slots=True)
class Done(Event):
    """A node's MAC array finishes task ``group`` (a group of hosted vertices) for ``image``."""

    image: int
    group: int


@dataclass(slots=True)
class Inject(Event):
    """The node hosting the source injects ``image`` now."""

    image: int


@dataclass(slots=True)
class Credit(Event):
    """Node ``node`` has room for every image below ``window`` (credit-based flow control)."""

    node: int
    window: int
