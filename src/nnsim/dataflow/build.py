"""Put a mapped dataflow graph on nnsim's kernel: components, links, and their tables.

`build_dataflow` adds to a `nnsim.sim.Simulation` (a model script's, under
``nnsim run``, or a test's):

- ``node0`` ... ``node{H-1}`` (`dataflow.Node`): one per hardware node;
- ``source``, ``input`` (``pixel`` granularity only), one component per
  dense layer named after it (``dense1``, ...), and ``sink``: they hold the
  vertices' state, whatever node computes them, so ``dense1/n5`` is the
  same path under every folding (`nnsim.dataflow.vertices`);
- one link between two nodes for every pair of neighbours a frame crosses
  (the hardware's routes; a link no frame uses is not built), with the
  hop latency of the sending node's clock, and each node's loop-back link
  for its own reminders.

The nodes interact through their links alone, so a parallel run
(``mpiexec -n R``, `nnsim.parallel`) can give each node its own rank: every
component is placed in its hardware node's group (the holders with node0),
weighted by the events a node handles per image (`place_by_node`), and each link's ``traffic`` is the frames per image it
carries; every partitioner then keeps a node whole, ``linear`` (the default)
gives each rank a run of consecutive nodes of about equal load, and
``graph`` also cuts the fewest frames.

Everything a restart needs is in the parameters and the saved state, so a
checkpoint rebuilds the model from registered types alone (images given by
path are read again). The timing model is `nnsim.dataflow.node`'s.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

import numpy as np

from nnsim.dataflow.capacity import check_mapping
from nnsim.dataflow.graph import NEURON, PIXEL, SINK, SOURCE, DataflowGraph
from nnsim.dataflow.hardware import Hardware, HardwareError
from nnsim.dataflow.mapping import Mapping, fits
from nnsim.dataflow.node import FORWARD, NOT_HERE, Node
from nnsim.dataflow.vertices import Layer, Pixels, Sink, Source, read_images
from nnsim.errors import DataError, NnsimError
from nnsim.sim import Simulation
from nnsim.units import parse_time

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
RESERVED = ("source", "input", "sink")


def build_dataflow(
    sim: Simulation,
    graph: DataflowGraph,
    hardware: Hardware,
    mapping: Mapping,
    images: np.ndarray | str,
    labels: np.ndarray | None = None,
    *,
    interval: int | str | None = None,
    corrupt_rate: float = 0.0,
    crashes: Iterable[tuple[int | str, int | str]] = (),
    limit: int | None = None,
) -> None:
    """Add the dataflow model of ``graph`` folded by ``mapping`` onto ``hardware`` to ``sim``.

    ``images`` is an array ``[n, input_size]`` (float32 pixels in [-1, 1]),
    or ``"test"`` / a folder (read with `nnsim.dataflow.vertices.read_images`,
    labels included, and read again on a restart); ``limit`` keeps the
    first images. ``interval`` (ps or ``"2us"``) injects at a fixed rate
    instead of as soon as the first nodes take each image. ``corrupt_rate``
    is the probability of a bit flip per frame bit per hop; ``crashes`` lists
    ``(node, time)`` pairs (``3`` or ``"node3"``, ps or ``"5us"``).
    """
    if not fits(graph, hardware, mapping):
        raise NnsimError(
            f"the mapping ({mapping.strategy}, {mapping.nodes} nodes, {mapping.node_of.shape[0]} "
            f"vertices) does not fit the graph ({len(graph)} vertices) on {hardware.count} nodes"
        )
    used = check_mapping(graph, hardware, mapping)  # one line naming node, resource, excess
    pixels, given_labels, path = _images(images, graph.model.input_size, limit)
    if labels is None:
        labels = given_labels
    count = len(pixels)  # already the first ``limit``
    crash_at = _crashes(crashes, hardware.count)
    period = hardware.node.period
    try:
        interval_ps = 0 if interval is None else parse_time(interval)
    except NnsimError as error:
        raise NnsimError(f"the injection interval: {error}") from None
    if isinstance(corrupt_rate, bool) or not 0.0 <= float(corrupt_rate) <= 1.0:
        raise NnsimError(f"the corrupt rate is a probability from 0 to 1, not {corrupt_rate!r}")
    node_of = mapping.node_of.astype(np.int64)
    model = graph.model
    for layer in model.layers:
        if not _NAME.match(layer.name) or layer.name in RESERVED or layer.name.startswith("node"):
            raise NnsimError(
                f"layer name '{layer.name}' cannot name a component (it would clash or hold "
                "'/' or '.'); rename the layer"
            )

    # The vertex holders.
    source = sim.add(
        Source,
        "source",
        size=model.input_size,
        count=count,
        images_path=path,
        interval=interval_ps,
    )
    if path == "":
        source.given_images = np.ascontiguousarray(pixels, dtype=np.float32)
    holder = sim.add(Pixels, "input", size=model.input_size) if graph.granularity == PIXEL else None
    layers = []
    for number, layer in enumerate(model.layers):
        component = sim.add(
            Layer,
            layer.name,
            layer=number,
            input_size=layer.input_size,
            output_size=layer.output_size,
            activation=layer.activation,
            images=count,
        )
        component.weights = layer.weights.astype(np.float64)
        component.biases = layer.biases.astype(np.float64)
        layers.append(component)
    sink = sim.add(Sink, "sink", classes=model.output_size, count=count)
    if labels is not None:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(labels) < count:
            raise DataError(f"{len(labels)} labels for {count} images")
        sink.labels = labels[:count].copy()

    # The nodes and their links.
    pairs = _links(graph, hardware, node_of)
    neighbours: list[list[int]] = [[] for _ in range(hardware.count)]
    for a, b in pairs:
        neighbours[a].append(b)
        neighbours[b].append(a)
    for row in neighbours:
        row.sort()
    credit_peers = _credit_peers(graph, node_of, hardware.count)
    nodes: list[Node] = []
    for index in range(hardware.count):
        nodes.append(
            sim.add(
                Node,
                hardware.node_name(index),
                index=index,
                link_ports=len(neighbours[index]),
                clock=hardware.node.clock,
                macs_per_cycle=hardware.node.macs_per_cycle,
                memory_words=hardware.node.memory_words,
                link_latency=hardware.link.latency,
                link_width=hardware.link.width,
                word_bits=hardware.word_bits,
                image_buffers=hardware.node.image_buffers,
                credit_ports=len(credit_peers[index]),
                corrupt_rate=float(corrupt_rate),
                crash_at=crash_at[index],
            )
        )
    hop_latency = hardware.link.latency * period
    for a, b in sorted(pairs):
        sim.connect(
            (nodes[a], f"link{neighbours[a].index(b)}"),
            (nodes[b], f"link{neighbours[b].index(a)}"),
            latency=hop_latency,
            name=f"node{a}--node{b}",
        )
    for node in nodes:
        sim.connect((node, "self_out"), (node, "self_in"), latency=0, name=f"{node.name}.self")
    for a in range(hardware.count):
        for b in credit_peers[a]:
            if a < b:  # a credit crosses the route's hops, taking no link time from frames
                hops = len(hardware.route(b, a))
                sim.connect(
                    (nodes[a], f"credit{credit_peers[a].index(b)}"),
                    (nodes[b], f"credit{credit_peers[b].index(a)}"),
                    latency=hops * hop_latency,
                    name=f"node{a}~~node{b}",
                )

    _fill_nodes(graph, hardware, node_of, nodes, neighbours, layers, source, sink, crash_at)
    _fill_credits(graph, node_of, nodes, credit_peers)
    for node in nodes:
        node.memory_used = int(used.memory_words[node.index])
    _fill_holders(graph, node_of, nodes, layers, holder, source, sink)
    source.load()
    for node in nodes:
        node.configure()
    place_by_node(sim, graph, hardware, node_of, nodes, [source, holder, *layers, sink])


# Inputs ---------------------------------------------------------------------------
def _images(images: Any, size: int, limit: int | None) -> tuple[np.ndarray, Any, str]:
    """(pixels, labels or None, path or '')."""
    if limit is not None and (isinstance(limit, bool) or int(limit) < 0):
        raise DataError(f"limit must be a number of images >= 0, not {limit!r}")
    if isinstance(images, str):
        pixels, labels = read_images(images, limit)
        # A folder is kept absolute, so that a restart from elsewhere reads the same images.
        path = images if images == "test" else os.path.abspath(images)
    else:
        pixels, labels, path = np.asarray(images), None, ""
        if limit is not None:
            pixels = pixels[: int(limit)]
    if pixels.ndim != 2 or pixels.shape[1] != size:
        raise DataError(
            f"the images are {list(pixels.shape)} values but the model takes rows of {size}"
        )
    if pixels.dtype.kind != "f" or not np.isfinite(pixels).all():
        raise DataError("the images must be finite floating-point pixels")
    return pixels.astype(np.float32, copy=False), labels, path


def _crashes(crashes: Iterable[tuple[Any, Any]], count: int) -> list[int]:
    crash_at = [-1] * count
    for node, time in crashes:
        if isinstance(node, str):
            match = re.fullmatch(r"node(\d+)", node.strip())
            if not match:
                raise HardwareError(f"crash: '{node}' is not a node name such as node3")
            node = int(match.group(1))
        if (
            isinstance(node, bool)
            or not isinstance(node, int | np.integer)
            or not 0 <= node < count
        ):
            raise HardwareError(f"crash: node {node!r} is not one of node0..node{count - 1}")
        try:
            at = parse_time(time)
        except NnsimError as error:
            raise HardwareError(f"crash of node{node}: {error}") from None
        crash_at[int(node)] = at
    return crash_at


# Links ------------------------------------------------------------------------------
def _value_dests(graph: DataflowGraph, node_of: np.ndarray) -> list[np.ndarray]:
    """For each value: the nodes it must reach (those hosting a consumer), sorted."""
    pairs = np.unique(
        np.stack([graph.edge_value.astype(np.int64), node_of[graph.edge_dst]], axis=1), axis=0
    )
    bounds = np.searchsorted(pairs[:, 0], np.arange(len(graph.value_words) + 1))
    return [pairs[bounds[v] : bounds[v + 1], 1] for v in range(len(graph.value_words))]


def _links(graph: DataflowGraph, hardware: Hardware, node_of: np.ndarray) -> set[tuple[int, int]]:
    """Unordered node pairs one hop apart that some frame crosses."""
    origin = node_of[graph.value_producer]
    routes = set()
    for value, dests in enumerate(_value_dests(graph, node_of)):
        for dest in dests.tolist():
            if dest != origin[value]:
                routes.add((int(origin[value]), dest))
    pairs = set()
    for a, b in routes:
        for hop in hardware.route(a, b):
            pairs.add((min(hop), max(hop)))
    return pairs


# Placement for parallel runs ----------------------------------------------------------
TASK_EVENTS = 4
"""What a task weighs against one frame event (a numpy call against a few list look-ups)."""


def place_by_node(
    sim: Simulation,
    graph: DataflowGraph,
    hardware: Hardware,
    node_of: np.ndarray,
    nodes: list[Node],
    holders: list,
) -> None:
    """Partitioning hints: one group per hardware node, weighted by its events per image.

    A node's weight is the frames that arrive at it per image (relays
    included) plus `TASK_EVENTS` per task; a link's ``traffic`` is the frames
    per image it carries both ways. A holder joins node0's group
    (`VertexHolder.place`).
    """
    origin = node_of[graph.value_producer]
    arrivals = np.zeros(hardware.count, dtype=np.int64)
    crossing: dict[tuple[int, int], int] = {}
    routes: dict[tuple[int, int], list] = {}
    for value, dests in enumerate(_value_dests(graph, node_of)):
        start = int(origin[value])
        for dest in dests.tolist():
            if dest == start:
                continue
            if (start, dest) not in routes:
                routes[start, dest] = hardware.route(start, dest)
            for a, b in routes[start, dest]:
                arrivals[b] += 1
                pair = (min(a, b), max(a, b))
                crossing[pair] = crossing.get(pair, 0) + 1
    for node in nodes:
        node.load = int(arrivals[node.index]) + TASK_EVENTS * len(node.group_layer) + 1
        node.place()
    for link in sim.link_list:
        a, b = (end.owner for end in link.ends)
        if a is not b:
            link.traffic = crossing.get((min(a.index, b.index), max(a.index, b.index)), 1)
    for holder in holders:
        if holder is not None:
            holder.place()


# Flow control ------------------------------------------------------------------------
def _upstream(graph: DataflowGraph, node_of: np.ndarray, count: int) -> list[set[int]]:
    """Per node: the nodes that must know when it has room, i.e. that send it values its
    groups consume (a pixel's forwarding node included), and the source's node for a
    node of the first layer."""
    vertices = graph.vertices
    senders = node_of[graph.value_producer]  # who sends each value (a pixel: its forwarder)
    source_node = int(node_of[0])
    upstream: list[set[int]] = [set() for _ in range(count)]
    consumers = node_of[graph.edge_dst]
    for edge, value in enumerate(graph.edge_value.tolist()):
        if vertices[graph.edge_dst[edge]].kind == PIXEL:
            continue
        d = int(consumers[edge])
        upstream[d].add(int(senders[value]))
        if vertices[graph.edge_dst[edge]].layer == 0:
            upstream[d].add(source_node)
    for d, nodes in enumerate(upstream):
        nodes.discard(d)
    return upstream


def _credit_peers(graph: DataflowGraph, node_of: np.ndarray, count: int) -> list[list[int]]:
    """Per node, sorted: the nodes it exchanges credits with (either way)."""
    peers: list[set[int]] = [set() for _ in range(count)]
    for d, senders in enumerate(_upstream(graph, node_of, count)):
        for s in senders:
            peers[d].add(s)
            peers[s].add(d)
    return [sorted(row) for row in peers]


def _fill_credits(
    graph: DataflowGraph, node_of: np.ndarray, nodes: list[Node], credit_peers: list[list[int]]
) -> None:
    """Each node's credit tables: whom it tells, which of its frames need room."""
    upstream = _upstream(graph, node_of, len(nodes))
    vertices = graph.vertices
    first = sorted({int(node_of[v]) for v in graph.layer_vertices(0)})
    for node in nodes:
        n = node.index
        node.credit_peer = np.array(credit_peers[n], dtype=np.int32)
        node.credit_to = np.array(
            [credit_peers[n].index(s) for s in sorted(upstream[n])], dtype=np.int32
        )
        ptr, dests = node.dest_ptr.tolist(), node.dest_nodes.tolist()
        gated = np.zeros(len(dests), dtype=np.int8)
        for value in range(len(ptr) - 1):
            for k in range(ptr[value], ptr[value + 1]):
                gated[k] = nodes[dests[k]].consume_group[value] >= 0
        node.dest_gated = gated
        if vertices[0].kind == SOURCE and int(node_of[0]) == n:
            node.first_nodes = np.array(first, dtype=np.int32)


# Tables -----------------------------------------------------------------------------
def _fill_nodes(
    graph: DataflowGraph,
    hardware: Hardware,
    node_of: np.ndarray,
    nodes: list[Node],
    neighbours: list[list[int]],
    layers: list,
    source: Source,
    sink: Sink,
    crash_at: list[int],
) -> None:
    vertices = graph.vertices
    values = len(graph.value_words)
    value_dests = _value_dests(graph, node_of)
    producer_node = node_of[graph.value_producer]
    in_edges = graph.in_edges
    produced_by = np.full(len(vertices), -1, dtype=np.int64)
    for value, vertex in enumerate(graph.value_producer.tolist()):
        if vertices[vertex].kind != SOURCE:
            produced_by[vertex] = value  # a pixel's or a neuron's output value
    macs = hardware.node.macs_per_cycle
    for node in nodes:
        n = node.index
        hosted = np.flatnonzero(node_of == n).astype(np.int32)
        node.hosted = hosted
        node.vertices = [vertices[v].name for v in hosted.tolist()]
        node.peer = np.array(neighbours[n], dtype=np.int32)
        node.next_port = _next_ports(hardware, n, neighbours)
        node.value_words = graph.value_words.astype(np.int64)
        node.crash_times = list(crash_at)
        node.layers = list(layers)
        consume_group = np.full(values, NOT_HERE, dtype=np.int32)
        consume_pos = np.zeros(values, dtype=np.int32)
        groups: dict[int, list[int]] = {}  # layer index (len(layers): sink) -> hosted vertices
        for v in hosted.tolist():
            vertex = vertices[v]
            if vertex.kind == NEURON:
                groups.setdefault(vertex.layer, []).append(v)
            elif vertex.kind == SINK:
                groups.setdefault(len(layers), []).append(v)
                node.sink = sink
            elif vertex.kind == PIXEL:
                (edge,) = in_edges[v].tolist()
                consume_group[graph.edge_value[edge]] = FORWARD
                consume_pos[graph.edge_value[edge]] = produced_by[v]
            elif vertex.kind == SOURCE:
                node.source = source
        group_layer, group_ptr, cols, outs = [], [0], [], []
        need, size, cycles, group_macs = [], [], [], []
        for g, layer in enumerate(sorted(groups)):
            members = groups[layer]
            inputs = graph.edge_value[in_edges[members[0]]]
            for v in members[1:]:
                if not np.array_equal(graph.edge_value[in_edges[v]], inputs):
                    raise NnsimError(f"vertex {vertices[v].name} does not take its layer's inputs")
            words = graph.value_words[inputs]
            consume_group[inputs] = g
            consume_pos[inputs] = np.concatenate([[0], np.cumsum(words)[:-1]]).astype(np.int32)
            fan_in = vertices[members[0]].fan_in
            group_layer.append(layer)
            cols.extend(vertices[v].index for v in members)
            outs.extend(int(produced_by[v]) if vertices[v].kind == NEURON else -1 for v in members)
            group_ptr.append(len(cols))
            need.append(len(inputs))
            size.append(int(words.sum()))
            per_vertex = -(-fan_in // macs)
            cycles.append(per_vertex * len(members))
            group_macs.append(fan_in * len(members) if layer < len(layers) else 0)
        node.group_layer = np.array(group_layer, dtype=np.int32)
        node.group_ptr = np.array(group_ptr, dtype=np.int64)
        node.group_cols = np.array(cols, dtype=np.int32)
        node.group_values = np.array(outs, dtype=np.int32)
        node.group_need = np.array(need, dtype=np.int64)
        node.group_size = np.array(size, dtype=np.int64)
        node.group_cycles = np.array(cycles, dtype=np.int64)
        node.group_macs = np.array(group_macs, dtype=np.int64)
        node.consume_group = consume_group
        node.consume_pos = consume_pos
        dest_ptr, dest_nodes = [0], []
        for value in range(values):
            if producer_node[value] == n or consume_group[value] == FORWARD:
                dest_nodes.extend(d for d in value_dests[value].tolist() if d != n)
            dest_ptr.append(len(dest_nodes))
        node.dest_ptr = np.array(dest_ptr, dtype=np.int64)
        node.dest_nodes = np.array(dest_nodes, dtype=np.int32)
        if node.source is not None:
            node.source_values = np.flatnonzero(graph.value_producer == 0).astype(np.int32)


def _next_ports(hardware: Hardware, node: int, neighbours: list[list[int]]) -> np.ndarray:
    """``[nodes]``: the link port of ``node`` towards each node (-1: itself, or no built link)."""
    ports = np.full(hardware.count, -1, dtype=np.int32)
    mine = {peer: port for port, peer in enumerate(neighbours[node])}
    for dest in range(hardware.count):
        if dest == node:
            continue
        route = hardware.route(node, dest)
        following = hardware.route(route[0][1], dest)
        if following != route[1:]:
            raise HardwareError(
                f"the route from node{node} to node{dest} does not continue as the route from "
                f"node{route[0][1]}; dataflow runs need routes that can be followed hop by hop"
            )
        ports[dest] = mine.get(route[0][1], -1)
    return ports


def _fill_holders(
    graph: DataflowGraph,
    node_of: np.ndarray,
    nodes: list[Node],
    layers: list,
    holder: Pixels | None,
    source: Source,
    sink: Sink,
) -> None:
    def names(ids: Any) -> list[str]:
        return [f"node{n}" for n in sorted(set(node_of[ids].tolist()))]

    for number, layer in enumerate(layers):
        ids = np.array(list(graph.layer_vertices(number)))
        layer.host_node = node_of[ids].astype(np.int32)
        layer.hosts = names(ids)
        for j, v in enumerate(ids.tolist()):
            node = nodes[int(node_of[v])]
            g = int(np.flatnonzero(node.group_layer == number)[0])
            first = int(node.group_ptr[g])
            position = int(np.flatnonzero(node.group_cols[first : node.group_ptr[g + 1]] == j)[0])
            layer.host_group[j], layer.host_pos[j] = g, position
    if holder is not None:
        ids = np.array(list(graph.pixel_vertices))
        holder.host_node = node_of[ids].astype(np.int32)
        holder.hosts = names(ids)
    source.host_node = node_of[[0]].astype(np.int32)
    source.hosts = names([0])
    sink.host_node = node_of[[len(graph) - 1]].astype(np.int32)
    sink.hosts = names([len(graph) - 1])
    sink.granularity = graph.granularity
    sink.vertex_names = [vertex.name for vertex in graph.vertices]
    sink.node_of = node_of.astype(np.int32)
    sink.value_producer = graph.value_producer.astype(np.int32)
    sink.layer_names = [layer.name for layer in layers]
    sink.layer_macs = np.array(
        [layer.input_size * layer.output_size for layer in layers], dtype=np.int64
    )
