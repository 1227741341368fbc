"""A hardware node: the component that runs its hosted vertices, in simulated time.

The timing model
----------------

Time is nnsim's integer picoseconds; a *cycle* is one period of the node
clock (all nodes are alike, `nnsim.dataflow.hardware`).

*Values and frames.* Every edge of the graph carries a value of one image:
the whole image (``neuron`` granularity: ``input_size`` words, one message),
one pixel, or one neuron's output (one word each). A value goes to each node
that consumes it **once** (multicast): one frame per (image, value,
destination node), however many vertices of that node use it. A value
consumed on the node that produced it costs nothing and arrives at once.

*Links.* A frame of W words arrives ``latency + ceil(W * word_bits /
width)`` cycles after it starts across a hop (`Hardware.frame_cycles`):
``ceil(W * word_bits / width)`` cycles to put its words on the wire
(serialization) and ``latency`` cycles for its last word to cross it. Links
are pipelined, as wires and SerDes lanes are: a directed link holds a frame
only while it serializes it, so the next frame may start as soon as the
last word of the one before has left, and many frames are on a long link at
once. A frame that finds its link serializing another waits, first come
first served (frames a node sends at the same time queue in the order it
sends them: values in vertex order, each to its destination nodes in node
order). Routes are the hardware's fixed routes; a multi-hop frame is stored
at each intermediate node and sent on as soon as it has arrived
(forwarding takes no MAC cycles), queuing for the next link like any
frame. A link's busy time (``links.csv``) is the time it serialized.

*Bursts (how, not what).* When a task's outputs are one word each, all go
to the same nodes one hop away and none is used here, its frames to one
node leave back to back as the model says, and reach the kernel as one
`Burst` event per run of consecutive value ids, delivered when the last
of them arrives: the node there needs every one of them before any task
can use them, so no time, count or result changes, only the number of
kernel events (and of crossings between ranks in a parallel run). Image
0 (whose hops the critical path records), bit flips and crashes keep one
event per frame.

*Compute.* A node's hosted neurons of one layer form a *group*; for one
image the group is one *task*, ready once all the group's inputs of that
image have arrived (the neurons of a dense layer all take the same inputs).
The node's MAC array runs one task at a time: its neurons one after
another in vertex order, each ``ceil(fan_in / macs_per_cycle)`` cycles, so
the task takes the sum of those; the sink takes ``ceil(classes /
macs_per_cycle)`` cycles to compare the logits. A task that becomes ready
while the array is idle starts at once; when the array frees, it starts the
ready task of the **oldest image first**, and for one image the earliest
layer first. The task's outputs leave when the task ends, in
vertex order. Pixel vertices and the source compute nothing: a pixel is
forwarded the moment it arrives.

*Images are pipelined, in bounded buffers.* A node that computes has room
for ``image_buffers`` images in flight (a hardware key, default 2) and
admits them **in order**: it holds images ``released .. released + B - 1``,
``released`` being the number of images it is done with (every hosted
group computed it, and no frame of it waits here). Credit-based flow
control: whenever ``released`` grows, the node sends a credit (its new
window, ``released + B``) to every node that sends it values its groups
consume and, for a first-layer node, to the source's node, over a credit
link whose latency is that of the route's hops (a credit takes no link
time from the frames). A frame for an image its destination has no room
for yet (by the last credit the sender heard) waits at the sender, which
keeps its links free for other frames; when the credit comes, the waiting
frames leave in the order they were made. Frames relayed on the way and
pixels forwarded to the first layer need no room (a pixel's forwarding
node waits for the first layer's credit instead). Links stay FIFO.

The source injects image 0 at time 0 and image ``i+1`` at ``i+1`` times
the fixed ``interval``, or (no interval) as soon as the first nodes have
taken image ``i``: when every link its frames left by is free again (the
last of them has been put on its first link) and, if the source's node itself
hosts first-layer neurons, when it has started computing them on image
``i``; either way only once every first-layer node has room for image
``i+1``. So the number of images in flight is bounded, and latency does
not grow with the number of images: it is the pipeline's, at the
bottleneck's rate.

*It cannot deadlock.* Let m be the oldest image some computing node is not
done with (the least ``released``). Every node has released at least m
images, so m is inside every node's window and no frame of m ever waits
for credit; its tasks run as soon as their inputs are in (the MAC array
takes the oldest image first), and the frames ahead of its own on a link
are of images already admitted, which drain. So m finishes everywhere and
m grows. Admitting images in arrival order would not do: a node of one
buffer that took image 1's first-layer inputs could no longer take image
0's second-layer inputs, and image 0 would never finish.

*Math.* The result of a task does not depend on the folding or on the order
in which inputs arrive: the inputs are gathered into a vector in the
weights' row order, and each group computes ``inputs @ weights + biases``
in float64 and rounds to float32 (then ReLU for hidden layers), vectorized
over the group's neurons and over every image whose inputs are complete.

*Faults.* With ``corrupt_rate`` P, every bit of every word of a frame (the
32 bits of its float32 value) flips with probability P on each hop, drawn
from the sending node's ``rng`` (seeded, restored by a checkpoint). A node
with ``crash_at`` stops at that time: it computes, sends and forwards
nothing more, and frames arriving over a link that touches it from then on
are lost (``frames_lost``), including frames already on the wire.
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np

from nnsim.dataflow.events import Burst, Credit, Done, Frame, Inject
from nnsim.errors import StateError
from nnsim.sim import Component, Frequency, Param, Port, Statistic

NEVER = 2**63 - 1
"""``crash_at`` of a node that never crashes, as the hot path compares it."""
FORWARD = -2
"""``consume_group`` of a value a hosted pixel vertex forwards."""
NOT_HERE = -1
"""``consume_group`` of a value this node does not consume."""


class Node(Component):
    """One hardware node: MAC array, memory, links to its neighbours; runs its hosted vertices."""

    type_name = "dataflow.Node"
    params = (
        Param("index", int, 0, "node number (its name is node<index>)", min=0),
        Param("link_ports", int, 0, "link ports, one per neighbour", min=0, max=4096, fixed=True),
        Param("clock", Frequency, "1GHz", "the node clock (a cycle is one period)", fixed=True),
        Param("macs_per_cycle", int, 16, "multiply-accumulates per cycle", min=1, fixed=True),
        Param("memory_words", int, 1 << 20, "words the node can hold", min=1, fixed=True),
        Param("link_latency", int, 1, "cycles per hop", min=1, fixed=True),
        Param("link_width", int, 32, "bits per cycle of a link", min=1, fixed=True),
        Param("word_bits", int, 32, "bits of one value on a link", min=1, fixed=True),
        Param("image_buffers", int, 2, "images it holds in flight", min=1, max=1 << 16, fixed=True),
        Param("credit_ports", int, 0, "credit ports, one per flow-control peer", min=0, fixed=True),
        Param("corrupt_rate", float, 0.0, "probability that a frame bit flips", min=0.0, max=1.0),
        Param(
            "crash_at",
            int,
            -1,
            "simulated time (ps) the node stops (-1: never; settable from the console)",
            min=-1,
        ),
    )
    statistics = (
        Statistic("tasks", "groups computed (a layer's neurons on this node, for one image)"),
        Statistic("macs", "multiply-accumulates done", "MACs"),
        Statistic("busy_ps", "time the MAC array computed", "ps"),
        Statistic("frames_sent", "frames sent on its links (forwarded ones included)", "frames"),
        Statistic("frames_lost", "frames lost to a crash at either end of a link", "frames"),
        Statistic("bits_flipped", "bits flipped in the frames it sent (corrupt_rate)", "bits"),
    )
    ports = (
        Port(
            "link",
            "frames to and from one neighbour (ports link0, link1, ...)",
            handler="on_frame",
            count="link_ports",
        ),
        Port(
            "credit",
            "credits to and from one flow-control peer (ports credit0, credit1, ...)",
            handler="on_credit",
            count="credit_ports",
        ),
        Port("self_out", "reminders to itself: a task done, the next image to inject"),
        Port("self_in", "the reminders", handler="on_self"),
    )

    # Construction -------------------------------------------------------------
    def build(self) -> None:
        i32, i64 = np.int32, np.int64
        # The node's part of the graph (set by build_dataflow; plain arrays, saved).
        self.hosted = np.zeros(0, dtype=i32)  # vertex ids, in vertex order
        self.vertices: list[str] = []  # their names
        self.memory_used = 0  # words held for one image (`nnsim.dataflow.capacity.usage`)
        self.load = 1  # events per image (`nnsim.dataflow.build.place_by_node`)
        self.peer = np.zeros(self.link_ports, dtype=i32)  # the neighbour on each link port
        self.next_port = np.zeros(0, dtype=i32)  # [nodes]: the port towards each node (-1: self)
        self.value_words = np.zeros(0, dtype=i64)  # [values]: words per value
        self.consume_group = np.zeros(0, dtype=i32)  # [values]: group using it here, or -1/-2
        self.consume_pos = np.zeros(0, dtype=i32)  # [values]: its place in the group's inputs
        self.dest_ptr = np.zeros(1, dtype=i64)  # [values + 1]: CSR of the nodes each value goes to
        self.dest_nodes = np.zeros(0, dtype=i32)
        self.group_layer = np.zeros(0, dtype=i32)  # [groups]: layer index (len(layers): sink)
        self.group_ptr = np.zeros(1, dtype=i64)  # [groups + 1]: CSR over the group's neurons
        self.group_cols = np.zeros(0, dtype=i32)  # neuron index in its layer
        self.group_values = np.zeros(0, dtype=i32)  # the value each one produces
        self.group_need = np.zeros(0, dtype=i64)  # [groups]: input values per image
        self.group_size = np.zeros(0, dtype=i64)  # [groups]: input words per image
        self.group_cycles = np.zeros(0, dtype=i64)  # [groups]: cycles per task
        self.group_macs = np.zeros(0, dtype=i64)  # [groups]: MACs per task
        self.source_values = np.zeros(0, dtype=i32)  # values the source emits (if hosted here)
        self.layers: list = []  # the Layer components, by layer index (weights: read only)
        self.source: Any = None  # the Source component, if hosted here (images: read only)
        self.sink: Any = None  # the Sink component, if hosted here (labels: read only)
        self.crash_times: list[int] = []  # every node's crash_at (a link down at either end)
        # Flow control (set by build_dataflow): who tells whom it has room.
        self.credit_peer = np.zeros(self.credit_ports, dtype=i32)  # the node on each credit port
        self.credit_to = np.zeros(0, dtype=i32)  # credit ports of the nodes that send to it
        self.dest_gated = np.zeros(0, dtype=np.int8)  # [dest_nodes]: the frame needs credit
        self.first_nodes = np.zeros(0, dtype=i32)  # nodes of the first layer (source: its gate)
        # Run state.
        self.waiting: list[dict] = []  # per group: {image: [inputs missing, inputs, result]}
        self.ready: list = []  # heap of (image, group) whose inputs are complete
        self.running: list = []  # [image, group, start] of the task on the MAC array
        self.free_at = [0] * self.link_ports  # per link port: when it can take the next frame
        # Per link port, beyond one word per frame (the kernel counts the frames: `link_totals`).
        self.extra_words = [0] * self.link_ports
        self.extra_frames = [0] * self.link_ports  # frames beyond one per kernel event (Burst)
        self.extra_busy = [0] * self.link_ports  # ps beyond a one-word frame's time
        self.busy_ps = 0
        self.macs = 0
        self.tasks = 0
        self.frames_lost = 0
        self.bits_flipped = 0
        self.sums: list[np.ndarray] = []  # per group: the latest task's sums (pre-activation)
        self.outputs: list[np.ndarray] = []  # and outputs
        self.last_image: list[int] = []  # per group: the image of those (-1: none yet)
        self.computed: list[int] = []  # per group: tasks done
        # The state of the vertices hosted here, which the holders show as views
        # (`nnsim.dataflow.vertices`): a node changes only its own state, so the
        # nodes interact through their links alone and can run on separate ranks.
        self.done_ps: list[np.ndarray] = []  # per group: when each image's task ended (-1)
        self.inject_ps = np.zeros(0, dtype=i64)  # the source, if here: each image's injection
        self.injected = 0  # ... and the images injected
        self.sink_logits = np.zeros((0, 0), dtype=np.float32)  # the sink, if here: per image
        self.sink_predictions = np.zeros(0, dtype=i64)  # (-1: not classified)
        self.sink_done_ps = np.zeros(0, dtype=i64)  # when it classified the image (-1)
        self.sink_classified = 0
        self.sink_correct = 0
        self.sink_last_image = -1
        self.sink_last_prediction = -1
        self.await_take = -1  # the image whose first-layer start lets the source go on
        self.take_at = 0  # when the source's links are free for the next image (or its slot)
        self.pending_inject = -1  # the next image, waiting for the above and for credits
        self.window: list[int] = []  # per node: it has room for the images below this
        self.released = 0  # images below this are done here (tasks ended, frames sent)
        self.held: list[list] = []  # [dest, words, frame] waiting for credit, in order
        self.held_count = np.zeros(0, dtype=i64)  # per image: frames of it held here
        self.trace: list = []  # image 0's steps, for its critical path

    def configure(self) -> None:
        """Fill the run state for the graph set by build_dataflow, then `prepare`."""
        groups = len(self.group_layer)
        self.waiting = [{} for _ in range(groups)]
        self.sums, self.outputs = [], []
        for g in range(groups):
            width = int(self.group_ptr[g + 1] - self.group_ptr[g])
            self.sums.append(np.zeros(width, dtype=np.float32))
            self.outputs.append(np.zeros(width, dtype=np.float32))
        self.last_image = [-1] * groups
        self.computed = [0] * groups
        images = int(self.layers[0].images) if self.layers else 0
        self.window = [int(self.image_buffers)] * len(self.crash_times)
        self.held_count = np.zeros(images, dtype=np.int64)
        self.done_ps = [np.full(images, -1, dtype=np.int64) for _ in range(groups)]
        if self.source is not None:
            self.inject_ps = np.full(images, -1, dtype=np.int64)
        if self.sink is not None:
            self.sink_logits = np.full((images, int(self.sink.classes)), np.nan, dtype=np.float32)
            self.sink_predictions = np.full(images, -1, dtype=np.int64)
            self.sink_done_ps = np.full(images, -1, dtype=np.int64)
        self.prepare()

    def restore(self) -> None:
        """Rebuild the look-up lists; saved tables that do not fit each other are refused."""
        try:
            self.prepare()
            self.place()
        except (IndexError, KeyError, TypeError, ValueError) as error:
            raise StateError(
                f"{self.name}: its saved tables do not fit together ({error}); "
                "restart from another checkpoint"
            ) from None

    def place(self) -> None:
        """A parallel run keeps this node whole on one rank, weighted by its load."""
        self.sim.place(self.name, group=self.name, weight=float(max(1, int(self.load))))

    def on_set(self, name: str) -> None:
        """A crash time or corrupt rate set from the console takes effect at once.

        Every node keeps every node's crash time (a link is down when either
        end has crashed), so a new ``crash_at`` is told to all of them.
        """
        if name not in ("crash_at", "corrupt_rate") or not hasattr(self, "_ends"):
            return
        nodes = [c for c in self.sim.components.values() if isinstance(c, Node)]
        for node in nodes:
            if len(node.crash_times) > self.index:
                node.crash_times[self.index] = int(self.crash_at)
            node.prepare()

    def prepare(self) -> None:
        """Build the hot path's lookup lists from the saved arrays (not saved themselves)."""
        self._index = int(self.index)
        self._crash = NEVER if self.crash_at < 0 else int(self.crash_at)
        self._crashes = [NEVER if t < 0 else int(t) for t in self.crash_times]
        self._ends = [self.links[f"link{i}"] for i in range(self.link_ports)]
        self._self = self.links["self_out"]
        self._cends = [self.links[f"credit{i}"] for i in range(self.credit_ports)]
        period = _period(self.clock)
        self._latency = int(self.link_latency) * period
        self._next = self.next_port.tolist()
        self._words = self.value_words.tolist()
        self._cg = self.consume_group.tolist()
        self._cp = self.consume_pos.tolist()
        ptr = self.dest_ptr.tolist()
        nodes = self.dest_nodes.tolist()
        self._dests = [nodes[ptr[v] : ptr[v + 1]] for v in range(len(ptr) - 1)]
        gated = self.dest_gated.tolist()
        self._gated = [  # per value: the destinations that admit it by credit
            [
                d
                for d, g in zip(nodes[ptr[v] : ptr[v + 1]], gated[ptr[v] : ptr[v + 1]], strict=True)
                if g
            ]
            for v in range(len(ptr) - 1)
        ]
        self._credit_to = [self._cends[port] for port in self.credit_to.tolist()]
        self._first_nodes = self.first_nodes.tolist()
        self._groups = len(self.group_layer)
        # Per value consumed here: (group, its inputs by image, place in them), or for a
        # hosted pixel vertex (FORWARD, None, the value it sends on).
        self._cons = [
            (group, None if group < 0 else self.waiting[group], position)
            for group, position in zip(self._cg, self._cp, strict=True)
        ]
        # The link ends, not their bound ``send``: a parallel run re-points the ends of
        # links to other ranks at an outbox after this (`LinkEnd.send_to_outbox`).
        # Per destination node, for a frame to relay: (port, end); None for this node itself
        # and, last (``dest`` -1 indexes it), for a one-hop frame, which is always for here.
        self._hops = [
            (port, self._ends[port]) if port >= 0 and dest != self._index else None
            for dest, port in enumerate(self._next)
        ] + [None]
        # Per value: (destination node, link port, the port's end, one hop?) of each frame.
        peers = self.peer.tolist()
        self._routes = [
            [
                (dest, port, self._ends[port], peers[port] == dest)
                for dest, port in ((dest, self._next[dest]) for dest in dests)
            ]
            for dests in self._dests
        ]
        self._cost: dict[int, int] = {}
        for words in set(self._words):
            serial = -(-words * int(self.word_bits) // int(self.link_width))
            self._cost[words] = serial * period  # the link is busy while it serializes
        self._vcost = [self._cost[words] for words in self._words]
        self._cost1 = -(-int(self.word_bits) // int(self.link_width)) * period
        self._corrupt = float(self.corrupt_rate) > 0.0
        gptr = self.group_ptr.tolist()
        self._gvalues = [
            self.group_values[gptr[g] : gptr[g + 1]].tolist() for g in range(len(gptr) - 1)
        ]
        self._gcols = [
            _columns(self.group_cols[gptr[g] : gptr[g + 1]]) for g in range(len(gptr) - 1)
        ]
        self._gneed = self.group_need.tolist()
        self._gsize = self.group_size.tolist()
        self._gcost = [int(c) * period for c in self.group_cycles]
        self._gmacs = self.group_macs.tolist()
        self._faulty = any(t != NEVER for t in self._crashes) or self._crash != NEVER
        self._grelu = [
            layer < len(self.layers) - 1 and self.layers[layer].activation == "relu"
            for layer in self.group_layer.tolist()
        ]
        self._glayer = [
            self.layers[layer] if layer < len(self.layers) else None
            for layer in self.group_layer.tolist()
        ]
        self._first = -1  # the group of first-layer neurons fed by the source on this node
        source_ports = set()
        for value in self.source_values.tolist():
            group = self._cg[value]
            if group >= 0 and self.group_layer[group] == 0:
                self._first = group
            source_ports.update(self._next[dest] for dest in self._dests[value])
        self._source_ports = sorted(source_ports)
        self._bursts = [self._burst_plan(g) for g in range(len(gptr) - 1)]

    def _burst_plan(self, group: int) -> list | None:
        """How ``group``'s outputs of one image leave as `Burst`s, or None when they cannot.

        They can when every output is one word, consumed on other nodes only,
        each a hop away, all by the same nodes, and no node can crash (a
        crash between two frames' arrivals loses some of them, not all).
        The plan: the runs of consecutive value ids, as (first value, start,
        end) over the group's outputs.
        """
        values = self._gvalues[group]
        if not values or self._faulty or self._glayer[group] is None:
            return None
        routes = self._routes[values[0]]
        if not routes or not all(direct for _, _, _, direct in routes):
            return None
        for value in values:
            if self._words[value] != 1 or self._cg[value] != NOT_HERE:
                return None
            if [r[:2] for r in self._routes[value]] != [r[:2] for r in routes]:
                return None
            if self._gated[value] != self._gated[values[0]]:
                return None
        runs, start = [], 0
        for k in range(1, len(values) + 1):
            if k == len(values) or values[k] != values[k - 1] + 1:
                runs.append((values[start], start, k))
                start = k
        if len(runs) == len(values):  # no run of two: `_emit`'s shared frames are cheaper
            return None
        return runs

    def setup(self) -> None:
        if self.source is not None and self.source.count > 0:
            self._self.send(Inject(0), 0)

    def finish(self) -> None:
        """The counters, as ``--statistics`` writes them."""
        self.stats.update(
            tasks=self.tasks,
            macs=self.macs,
            busy_ps=self.busy_ps,
            frames_sent=sum(end.sent for end in self._ends),
            frames_lost=self.frames_lost,
            bits_flipped=self.bits_flipped,
        )

    graph_state = ("vertices",)

    def graph_members(self) -> list[str]:
        return list(self.vertices)

    def status(self) -> str:
        running = f"image {self.running[0]} group {self.running[1]}" if self.running else "idle"
        return (
            f"{super().status()}; {len(self.hosted)} vertices, MAC array {running}, "
            f"{len(self.ready)} tasks ready, {self.tasks} done"
        )

    def inputs_received(self, group: int) -> int:
        """Input values received for the oldest image the group still waits for (0: none)."""
        waiting = [image for image, entry in self.waiting[group].items() if entry[0] > 0]
        if not waiting:
            return 0
        return int(self._gneed[group] - self.waiting[group][min(waiting)][0])

    # Handlers -------------------------------------------------------------------
    def on_frame(self, frame: Frame | Burst) -> None:
        # The hot path: a handful of list look-ups per frame (see `prepare`).
        if self._faulty and self._lost(frame):
            return
        if type(frame) is Burst:
            self._take_burst(frame)
            return
        hop = self._hops[frame.dest]
        if hop is not None:  # store and forward (`_send`, written out): most events
            frame.sender = self._index
            now = self.sim.now
            if frame.image == 0 or self._corrupt:
                self._send(frame, frame.dest, self._words[frame.value], now)
                return
            port, link = hop
            free = self.free_at
            start = free[port]
            if start < now:
                start = now
            cost = self._vcost[frame.value]
            free[port] = end = start + cost
            if cost != self._cost1:
                self._count_extra(port, self._words[frame.value], cost)
            link.send(frame, end - now)  # arrives ``latency`` after its last word left
            return
        image, value = frame.image, frame.value
        group, waiting, position = self._cons[value]
        if waiting is None:  # a pixel vertex forwards its pixel at once
            self._forward(image, value, frame.data, self.sim.now)
            return
        entry = waiting.get(image)
        if entry is None:
            entry = self._open(image, group, value, frame.data)
            if entry is None:
                return
        entry[1][position] = frame.data
        entry[0] -= 1
        if not entry[0]:
            self._ready(image, group, value, self.sim.now)

    def _take_burst(self, burst: Burst) -> None:
        """The values of a `Burst`, each as `on_frame` takes a one-hop frame's."""
        image, now, deliver = burst.image, self.sim.now, self._deliver
        for value, data in enumerate(burst.data, burst.value):
            deliver(image, value, data, now)

    def _lost(self, frame: Frame) -> bool:
        """A frame over a link that is down: this node or the sender has crashed."""
        now = self.sim.now
        if now >= self._crash or self._crashes[frame.sender] <= now:
            self.frames_lost += 1
            return True
        return False

    def on_credit(self, credit: Credit) -> None:
        """A node has room for more images: send what was held for it, then go on."""
        if self.sim.now >= self._crash or credit.window <= self.window[credit.node]:
            return
        self.window[credit.node] = credit.window
        now, node, window = self.sim.now, credit.node, credit.window
        keep, counts = [], self.held_count
        for entry in self.held:
            dest, words, frame = entry
            if dest == node and frame.image < window:
                counts[frame.image] -= 1
                self._send(frame, dest, words, now)
            else:
                keep.append(entry)
        self.held = keep
        self._release(now)
        self._try_inject(now)

    def on_self(self, event: Done | Inject) -> None:
        if type(event) is Done:
            self._finish(event.image, event.group)
        else:
            self._inject(event.image)

    # The work ---------------------------------------------------------------------
    def _open(self, image: int, group: int, value: int, data: Any) -> list | None:
        """The inputs of ``group`` for ``image``: the first value of it has arrived.

        A group that takes one value of several words (the whole image) is
        ready at once and keeps the array as it came (None is returned);
        otherwise the inputs are a list with one word per value, filled in
        the weights' row order as the values arrive.
        """
        need = self._gneed[group]
        if need == 1 and type(data) is not float:
            self.waiting[group][image] = [0, data, None]
            self._ready(image, group, value, self.sim.now)
            return None
        entry = self.waiting[group][image] = [need, [0.0] * self._gsize[group], None]
        return entry

    def _deliver(self, image: int, value: int, data: Any, now: int) -> None:
        """Value ``value`` of ``image``, produced here or brought by a `Burst`, goes to the
        group that uses it here."""
        group, waiting, position = self._cons[value]  # as `on_frame` does for a frame
        if waiting is None:
            self._forward(image, value, data, now)
            return
        entry = waiting.get(image)
        if entry is None:
            entry = self._open(image, group, value, data)
            if entry is None:
                return
        entry[1][position] = data
        entry[0] -= 1
        if not entry[0]:
            self._ready(image, group, value, now)

    def _forward(self, image: int, value: int, data: Any, now: int) -> None:
        """A pixel vertex hosted here sends the pixel ``value`` on as its own value."""
        output = self._cp[value]
        if image == 0:
            self.trace.append(("forward", value, output, now))
        self._emit(image, output, data, now)

    def _ready(self, image: int, group: int, value: int, now: int) -> None:
        if image == 0:
            self.trace.append(("ready", group, value, now))
        heapq.heappush(self.ready, (image, group))
        if not self.running and now < self._crash:
            self._start(now)

    def _start(self, now: int) -> None:
        image, group = heapq.heappop(self.ready)
        entry = self.waiting[group][image]
        if entry[2] is None:
            self._compute(group)
        self.running = [image, group, now]
        if image == 0:
            self.trace.append(("start", group, now))
        self._self.send(Done(image, group), self._gcost[group])
        if group == self._first and image == self.await_take:
            self.await_take = -1
            self._try_inject(now)

    def _compute(self, group: int) -> None:
        """Results of every image whose inputs for ``group`` are complete, in one numpy call."""
        done = [e for e in self.waiting[group].values() if e[0] == 0 and e[2] is None]
        if len(done) == 1:
            inputs = np.asarray(done[0][1], dtype=np.float64)[None]
        else:
            inputs = np.array([entry[1] for entry in done], dtype=np.float64)
        layer = self._glayer[group]
        if layer is None:  # the sink: compare the logits
            logits = inputs.astype(np.float32)
            for entry, row, best in zip(
                done, logits, np.argmax(logits, axis=1).tolist(), strict=True
            ):
                entry[2] = [row, best]
            return
        cols = self._gcols[group]
        if type(cols) is slice or 4 * len(cols) < layer.output_size:
            products = inputs @ layer.weights[:, cols]
        else:  # many scattered neurons: the whole layer is cheaper than gathering their weights
            products = (inputs @ layer.weights)[:, cols]
        sums = (products + layer.biases[cols]).astype(np.float32)
        outputs = np.maximum(sums, np.float32(0)) if self._grelu[group] else sums
        for k, entry in enumerate(done):
            entry[2] = [sums[k], outputs[k]]

    def _finish(self, image: int, group: int) -> None:
        now = self.sim.now
        self.running = []
        if now >= self._crash:
            return
        entry = self.waiting[group].pop(image)
        self.busy_ps += self._gcost[group]
        self.tasks += 1
        self.macs += self._gmacs[group]
        if image == 0:
            self.trace.append(("done", group, now))
        self.last_image[group] = image
        self.computed[group] += 1
        self.done_ps[group][image] = now
        if self._glayer[group] is None:
            self._classify(image, *entry[2], now)
        else:
            sums, outputs = entry[2]
            self.sums[group], self.outputs[group] = sums, outputs
            words, plan = outputs.tolist(), self._bursts[group]
            if plan is not None and image and not self._corrupt and self._room(group, image):
                self._emit_bursts(image, group, plan, words, now)
            else:
                for value, data in zip(self._gvalues[group], words, strict=True):
                    self._emit(image, value, data, now)
        self._release(now)
        if self.ready and not self.running:
            self._start(now)

    def _release(self, now: int) -> None:
        """Free the buffers of the oldest images done here, in order, and say so upstream.

        An image is done on a node when every hosted group has computed it
        and no frame of it waits here for credit.
        """
        released, count = self.released, len(self.held_count)
        if not self._groups:
            return
        done, held = self.done_ps, self.held_count
        while released < count and not held[released]:
            if any(done[g][released] < 0 for g in range(self._groups)):
                break
            released += 1
        if released == self.released:
            return
        self.released = released
        window = released + int(self.image_buffers)
        self.window[self._index] = window
        for end in self._credit_to:
            end.send(Credit(self._index, window), 0)
        if self.source is not None:
            self._try_inject(now)

    def _classify(self, image: int, logits: np.ndarray, prediction: int, now: int) -> None:
        """The sink (hosted here) has compared the logits of ``image``."""
        self.sink_logits[image] = logits
        self.sink_predictions[image] = prediction
        self.sink_done_ps[image] = now
        self.sink_classified += 1
        if prediction == self.sink.labels[image]:
            self.sink_correct += 1
        self.sink_last_image = image
        self.sink_last_prediction = prediction

    def _inject(self, image: int) -> None:
        now = self.sim.now
        if now >= self._crash:
            return
        source = self.source
        row = source.image(image)
        self.inject_ps[image] = now
        self.injected = image + 1
        if image == 0:
            self.trace.append(("inject", now))
        values = self.source_values.tolist()
        if len(values) == 1:
            self._emit(image, values[0], row, now)
        else:
            for value, pixel in zip(values, row.tolist(), strict=True):
                self._emit(image, value, pixel, now)
        following = image + 1
        if following >= source.count:
            return
        self.pending_inject = following
        if source.interval:
            self.take_at = following * int(source.interval)
        else:
            self.take_at = max([now] + [self.free_at[port] for port in self._source_ports])
            if self._first >= 0 and not self._started(image):
                self.await_take = image
        self._try_inject(now)

    def _try_inject(self, now: int) -> None:
        """Inject the next image once the first nodes can take it: its slot or free links,
        the first-layer start here, and room (credit) on every first-layer node."""
        following = self.pending_inject
        if following < 0 or self.await_take >= 0 or now >= self._crash:
            return
        window = self.window
        for node in self._first_nodes:
            if following >= window[node]:
                return
        self.pending_inject = -1
        self._self.send(Inject(following), max(self.take_at, now) - now)

    def _started(self, image: int) -> bool:
        """Has the MAC array started (or done) the first-layer task of ``image``?"""
        entry = self.waiting[self._first].get(image)
        return entry is None or (bool(self.running) and self.running[:2] == [image, self._first])

    def _emit(self, image: int, value: int, data: Any, now: int) -> None:
        """A value produced here: to the group that uses it here, and one frame per other node.

        The frames are `_send`'s, written out here for the one place where
        most frames start (the loop runs once per destination node).
        """
        if self._cg[value] != NOT_HERE:
            self._deliver(image, value, data, now)
        routes = self._routes[value]
        if not routes:
            return
        window = self.window
        for dest in self._gated[value]:
            if image >= window[dest]:  # a node without room for it: hold those frames
                self._emit_gated(image, value, data, now)
                return
        if self._corrupt or image == 0:
            index = self._index
            words = self._words[value]
            for dest, _, _, _ in routes:
                self._send(Frame(image, value, dest, index, data), dest, words, now)
            return
        cost, free = self._vcost[value], self.free_at
        index = self._index
        shared = Frame(image, value, -1, index, data)  # one object for every one-hop frame
        for dest, port, link, direct in routes:
            start = free[port]
            if start < now:
                start = now
            free[port] = end = start + cost
            link.send(shared if direct else Frame(image, value, dest, index, data), end - now)
        if cost != self._cost1:
            for _, port, _, _ in routes:
                self._count_extra(port, self._words[value], cost)

    def _room(self, group: int, image: int) -> bool:
        """Every node ``group``'s outputs go to that admits by credit has room for ``image``."""
        window = self.window
        return all(image < window[dest] for dest in self._gated[self._gvalues[group][0]])

    def _emit_bursts(self, image: int, group: int, plan: list, words: list, now: int) -> None:
        """``group``'s one-word outputs of ``image``: per destination, `_emit`'s frames back
        to back on its link, delivered as one `Burst` per run of value ids when the last
        of them arrives (see `_burst_plan`)."""
        cost, free, extra, index = self._cost1, self.free_at, self.extra_frames, self._index
        bursts = [  # one object per run, for every destination (as `_emit` shares a frame)
            (Burst(image, first, index, words[begin:end]), end - begin)
            for first, begin, end in plan
        ]
        for _, port, link, _ in self._routes[self._gvalues[group][0]]:
            start = free[port]
            if start < now:
                start = now
            for burst, count in bursts:
                start += count * cost  # the run's frames, one after another
                link.send(burst, start - now)
                extra[port] += count - 1
            free[port] = start

    def _emit_gated(self, image: int, value: int, data: Any, now: int) -> None:
        """`_emit`'s frames when some destination has no room for ``image``: those wait here."""
        index, words, window = self._index, self._words[value], self.window
        gated = self._gated[value]
        for dest, _, _, _ in self._routes[value]:
            frame = Frame(image, value, dest, index, data)
            if dest in gated and image >= window[dest]:
                self.held.append([dest, words, frame])
                self.held_count[image] += 1
            else:
                self._send(frame, dest, words, now)

    def _send(self, frame: Frame, dest: int, words: int, now: int) -> None:
        """Queue ``frame`` on the link towards ``dest``: it leaves when the link is free."""
        port = self._next[dest]
        start = self.free_at[port]
        if start < now:
            start = now
        cost = self._cost[words]
        end = start + cost
        self.free_at[port] = end
        if cost != self._cost1:
            self._count_extra(port, words, cost)
        if self._corrupt:
            self._flip_bits(frame, words)
        if frame.image == 0:
            peer = int(self.peer[port])
            arrival = end + self._latency
            self.trace.append(("hop", frame.value, self._index, peer, frame.dest, start, arrival))
        self._ends[port].send(frame, end - now)  # the kernel link adds the latency

    def _count_extra(self, port: int, words: int, cost: int) -> None:
        """A frame longer than one word: what it adds to its link's words and busy time."""
        self.extra_words[port] += words - 1
        self.extra_busy[port] += cost - self._cost1

    def link_totals(self, port: int) -> tuple[int, int, int]:
        """(frames, words, busy ps) sent on link port ``port`` so far.

        The kernel counts the frames (``LinkEnd.sent``); a frame costs one
        word and one word's time on the link, plus what the node noted for
        longer frames — so the hot path counts nothing for one-word frames.
        """
        frames = self._ends[port].sent + self.extra_frames[port]
        return (
            frames,
            frames + self.extra_words[port],
            frames * self._cost1 + self.extra_busy[port],
        )

    def _flip_bits(self, frame: Frame, words: int) -> None:
        """Flip each of the frame's ``32 * words`` bits with probability ``corrupt_rate``."""
        bits = 32 * words
        flips = int(self.rng.binomial(bits, self.corrupt_rate))
        if flips == 0:
            return
        positions = self.rng.choice(bits, size=flips, replace=False)
        data = np.array(frame.data, dtype=np.float32).reshape(-1)  # a copy: the value is shared
        raw = data.view(np.uint32)
        np.bitwise_xor.at(raw, positions // 32, np.left_shift(1, positions % 32).astype(np.uint32))
        frame.data = float(data[0]) if type(frame.data) is float else data
        self.bits_flipped += flips


def _columns(cols: np.ndarray) -> slice | np.ndarray:
    """A run of consecutive neurons as a slice (a view of the weights), else the indices."""
    if len(cols) and np.array_equal(cols, np.arange(cols[0], cols[0] + len(cols))):
        return slice(int(cols[0]), int(cols[0]) + len(cols))
    return cols


def _period(clock: str) -> int:
    from nnsim.units import period_of

    return period_of(clock)
