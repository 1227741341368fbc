"""What a dataflow run measured, as plain data: `DataflowResult.from_simulation(sim)`.

It is read from the simulation's state alone (the nodes, the vertex holders
and the kernel's counters), so it is the same for a run that went straight
through and for one restarted from a checkpoint, and can be taken at any
time (mid-run it covers what has happened so far). Times are integer ps of
simulated time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nnsim.dataflow.node import Node
from nnsim.dataflow.vertices import Layer, Sink, Source
from nnsim.errors import NnsimError
from nnsim.sim import Simulation


@dataclass(frozen=True)
class NodeReport:
    """One hardware node.

    ``busy_ps``: time its MAC array computed; ``utilization``: busy_ps /
    the run's ``end_ps``; ``macs``: multiply-accumulates done; ``tasks``:
    groups computed (a group is the node's neurons of one layer, or the
    sink, for one image); ``memory_words``: what it holds for one
    image, as the capacity check counts it (``memory_capacity``: the
    hardware's); ``frames_received`` (over its links, forwarded ones included; mid-run,
    frames still on the wire count too) / ``frames_lost`` (to a crash) /
    ``bits_flipped`` (by ``corrupt_rate``, on the frames it sent);
    ``crash_at_ps``: -1 if it never crashed.
    """

    name: str
    index: int
    vertices: tuple[str, ...]
    busy_ps: int
    utilization: float
    macs: int
    tasks: int
    memory_words: int
    memory_capacity: int
    frames_received: int
    frames_lost: int
    bits_flipped: int
    crash_at_ps: int


@dataclass(frozen=True)
class LinkReport:
    """One directed link ``source -> target`` (a built link is two of these).

    ``frames`` and ``words`` sent over it (a multicast value counts once per
    destination node, a multi-hop frame once per link it crosses);
    ``busy_ps``: the time it carried frames; ``utilization``: busy_ps / end_ps.
    """

    source: str
    target: str
    frames: int
    words: int
    busy_ps: int
    utilization: float


@dataclass(frozen=True)
class LayerReport:
    """One dense layer: ``neurons``, ``macs_per_image``, the ``nodes`` hosting it,
    ``first_image_done_ps`` (when image 0 left the layer: its last neuron's
    task ended; -1: never), ``mean_latency_ps`` (mean of done - inject over
    the images that left it; nan if none) and ``images_done``."""

    name: str
    neurons: int
    macs_per_image: int
    nodes: tuple[str, ...]
    first_image_done_ps: int
    mean_latency_ps: float
    images_done: int


@dataclass(frozen=True)
class PathStep:
    """One step of a critical path: a vertex computing, or a value crossing a link.

    ``kind`` is ``"vertex"`` (``name`` a vertex path such as ``dense1/n5``,
    ``node`` where it ran: its task's start and end; ready at ``ready_ps``)
    or ``"link"`` (``name`` ``"node1->node4"``, ``node`` the sender, the
    frame carrying ``value`` from ``start_ps`` to ``end_ps``).
    """

    kind: str
    name: str
    node: str
    start_ps: int
    end_ps: int
    ready_ps: int = -1
    value: int = -1


@dataclass(frozen=True)
class DataflowResult:
    """Everything a dataflow run measured; arrays are indexed by image (0..images-1).

    Per image: ``inject_ps`` (-1: never injected), ``done_ps`` (the sink
    classified it; -1: missing), ``predictions`` (-1: missing), ``logits``
    ``[images, classes]`` float32 (NaN rows when missing), ``labels`` (-1:
    unknown). Per part: ``nodes``, ``links``, ``layers`` (the reports
    above). The run: ``end_ps`` (the model's last activity: an injection,
    a task's end or a frame's arrival; `activity_end`), ``events`` (events
    delivered to the nodes: frames, per hop, and their task-done and
    injection reminders; `model_events`), ``critical_path`` of image 0 (source to sink, empty
    if it was not classified), ``frames_lost``, ``bits_flipped``,
    ``granularity``. Derived: ``latency_ps``, ``missing``, ``accuracy``,
    ``throughput``, ``first_latency_ps``, ``mean_latency_ps``.
    """

    granularity: str
    images: int
    inject_ps: np.ndarray
    done_ps: np.ndarray
    predictions: np.ndarray
    logits: np.ndarray
    labels: np.ndarray
    nodes: tuple[NodeReport, ...]
    links: tuple[LinkReport, ...]
    layers: tuple[LayerReport, ...]
    end_ps: int
    events: int
    critical_path: tuple[PathStep, ...]
    frames_lost: int
    bits_flipped: int

    # Derived figures -------------------------------------------------------------
    @property
    def latency_ps(self) -> np.ndarray:
        """done - inject per image; -1 for the missing ones."""
        return np.where(self.done_ps >= 0, self.done_ps - self.inject_ps, -1)

    @property
    def missing(self) -> np.ndarray:
        """Indices of the images the sink could not classify."""
        return np.flatnonzero(self.predictions < 0)

    @property
    def classified(self) -> int:
        return int((self.predictions >= 0).sum())

    @property
    def accuracy(self) -> float:
        """Correct predictions over the labelled images (a missing one counts as wrong); nan without labels."""
        known = self.labels >= 0
        if not known.any():
            return float("nan")
        return float((self.predictions[known] == self.labels[known]).mean())

    @property
    def first_latency_ps(self) -> int:
        return int(self.latency_ps[0]) if self.images else -1

    @property
    def mean_latency_ps(self) -> float:
        done = self.latency_ps[self.done_ps >= 0]
        return float(done.mean()) if done.size else float("nan")

    @property
    def throughput(self) -> float:
        """Images classified per second of simulated time, from the first injection to the last result."""
        done = self.done_ps[self.done_ps >= 0]
        if done.size == 0:
            return 0.0
        span = int(done.max()) - int(self.inject_ps[self.inject_ps >= 0].min())
        return float(done.size / (span * 1e-12)) if span > 0 else float("inf")

    # Reading a simulation --------------------------------------------------------
    @classmethod
    def from_simulation(cls, sim: Simulation) -> DataflowResult:
        """The result of the dataflow model in ``sim`` (built by `build_dataflow`)."""
        components = sim.components
        sink, source = components.get("sink"), components.get("source")
        if not isinstance(sink, Sink) or not isinstance(source, Source):
            raise NnsimError("this simulation holds no dataflow model (no source and sink)")
        nodes = [c for c in components.values() if isinstance(c, Node)]
        layers = [c for c in components.values() if isinstance(c, Layer)]
        end = activity_end(sim, nodes, layers, sink, source)
        node_reports, link_reports = [], []
        arrived: dict[str, int] = {}  # frames that reached each node over its links
        for node in nodes:
            for port, peer in enumerate(node.peer.tolist()):
                frames = node.link_totals(port)[0]
                arrived[f"node{peer}"] = arrived.get(f"node{peer}", 0) + frames
        for node in nodes:
            node_reports.append(
                NodeReport(
                    name=node.name,
                    index=int(node.index),
                    vertices=tuple(node.vertices),
                    busy_ps=int(node.busy_ps),
                    utilization=_share(node.busy_ps, end),
                    macs=int(node.macs),
                    tasks=int(node.tasks),
                    memory_words=int(node.memory_used),
                    memory_capacity=int(node.memory_words),
                    frames_received=arrived.get(node.name, 0) - int(node.frames_lost),
                    frames_lost=int(node.frames_lost),
                    bits_flipped=int(node.bits_flipped),
                    crash_at_ps=int(node.crash_at),
                )
            )
            for port, peer in enumerate(node.peer.tolist()):
                frames, words, busy = node.link_totals(port)
                link_reports.append(
                    LinkReport(
                        source=node.name,
                        target=f"node{peer}",
                        frames=int(frames),
                        words=int(words),
                        busy_ps=int(busy),
                        utilization=_share(busy, end),
                    )
                )
        inject = source.inject_ps.copy()
        layer_reports = []
        for layer in layers:
            left = layer.done_ps >= 0
            latency = (layer.done_ps - inject)[left]
            layer_reports.append(
                LayerReport(
                    name=layer.name,
                    neurons=int(layer.output_size),
                    macs_per_image=int(layer.input_size * layer.output_size),
                    nodes=tuple(layer.hosts),
                    first_image_done_ps=int(layer.done_ps[0]) if len(layer.done_ps) else -1,
                    mean_latency_ps=float(latency.mean()) if latency.size else float("nan"),
                    images_done=int(left.sum()),
                )
            )
        return cls(
            granularity=sink.granularity,
            images=int(sink.count),
            inject_ps=inject,
            done_ps=sink.done_ps.copy(),
            predictions=sink.predictions.copy(),
            logits=sink.logits.copy(),
            labels=sink.labels.copy(),
            nodes=tuple(node_reports),
            links=tuple(link_reports),
            layers=tuple(layer_reports),
            end_ps=end,
            events=model_events(sim, nodes),
            critical_path=tuple(critical_path(sim)),
            frames_lost=sum(n.frames_lost for n in node_reports),
            bits_flipped=sum(n.bits_flipped for n in node_reports),
        )


def activity_end(sim: Simulation, nodes: list, layers: list, sink: Sink, source: Source) -> int:
    """When the model last did something: an injection, a task's end, a frame's arrival.

    Not ``sim.now``, which tools move on (a periodic checkpoint after the
    last event), so that a run with checkpoints and one without, or a
    restarted one, end at the same time. Mid-run it is at most now.
    """
    times = [0, int(source.inject_ps.max(initial=0)), int(sink.done_ps.max(initial=0))]
    times += [int(layer.done_ps.max(initial=0)) for layer in layers]
    times += [max(node.free_at, default=0) for node in nodes]
    return min(max(times), int(sim.now))


def model_events(sim: Simulation, nodes: list[Node]) -> int:
    """Events delivered to the nodes so far: frames and their own reminders.

    What was sent on their ports less what is still in flight; the kernel's
    own entries (pauses, checkpoint requests) do not count, so a restarted
    run counts what the straight one counts.
    """
    ends = {id(end) for node in nodes for end in node.links.values()}
    sent = sum(end.sent for node in nodes for end in node.links.values())
    in_flight = sum(1 for entry in sim.pending() if entry.kind == "link" and id(entry.end) in ends)
    return sent - in_flight


def _share(part: int, whole: int) -> float:
    return float(part) / whole if whole > 0 else 0.0


def critical_path(sim: Simulation) -> list[PathStep]:
    """Image 0's chain from the source to the sink: each step waited for the one before.

    From the sink back: the task that classified image 0 became ready when
    its last input value arrived; that value crossed these links after the
    task that produced it ended; that task became ready when its own last
    input arrived; and so on to the injection. Empty if image 0 was not
    classified.
    """
    sink: Sink = sim.components["sink"]
    if not len(sink.done_ps) or sink.done_ps[0] < 0:
        return []
    nodes = {c.index: c for c in sim.components.values() if isinstance(c, Node)}
    names, node_of, producer = sink.vertex_names, sink.node_of, sink.value_producer
    records: dict[int, dict[str, list]] = {}
    for index, node in nodes.items():
        kinds: dict[str, list] = {}
        for record in node.trace:
            kinds.setdefault(record[0], []).append(record[1:])
        records[index] = kinds
    layer_of = {name: number for number, name in enumerate(sink.layer_names)}

    def task(node: int, layer: int) -> tuple[int, int, int, int]:
        """(value that made it ready, ready, start, end) of the group of ``layer`` on ``node``."""
        group = int(np.flatnonzero(nodes[node].group_layer == layer)[0])
        ready = next(r for r in records[node].get("ready", []) if r[0] == group)
        start = next(r for r in records[node].get("start", []) if r[0] == group)
        done = next(r for r in records[node].get("done", []) if r[0] == group)
        return ready[1], ready[2], start[1], done[1]

    steps: list[PathStep] = []
    here = int(node_of[-1])
    value, ready, start, end = task(here, len(sink.layer_names))
    steps.append(PathStep("vertex", "sink", f"node{here}", start, end, ready))
    while True:
        vertex = int(producer[value])
        origin = int(node_of[vertex])
        hops = sorted(
            (
                r
                for n in records
                for r in records[n].get("hop", [])
                if r[0] == value and r[3] == here
            ),
            key=lambda r: r[4],
        )
        for _, a, b, _, hop_start, hop_end in reversed(hops):
            steps.append(
                PathStep("link", f"node{a}->node{b}", f"node{a}", hop_start, hop_end, value=value)
            )
        name = names[vertex]
        here = origin
        if vertex == 0:
            (time,) = records[origin]["inject"][0]
            steps.append(PathStep("vertex", name, f"node{origin}", time, time, time))
            break
        if name.startswith("input/"):
            forward = next(r for r in records[origin]["forward"] if r[1] == value)
            steps.append(
                PathStep("vertex", name, f"node{origin}", forward[2], forward[2], forward[2])
            )
            value = forward[0]
            continue
        layer = layer_of[name.split("/", 1)[0]]
        value, ready, start, end = task(origin, layer)
        steps.append(PathStep("vertex", name, f"node{origin}", start, end, ready))
    steps.reverse()
    return steps


def summary(result: DataflowResult) -> dict[str, Any]:
    """A few headline figures as a JSON-able dict (benchmarks print it)."""
    return {
        "images": result.images,
        "classified": result.classified,
        "accuracy": result.accuracy,
        "first_latency_ps": result.first_latency_ps,
        "mean_latency_ps": result.mean_latency_ps,
        "throughput_per_s": result.throughput,
        "end_ps": result.end_ps,
        "events": result.events,
    }
