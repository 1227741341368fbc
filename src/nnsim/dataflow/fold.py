"""Folding strategies: put the vertices of a dataflow graph on the H nodes of the hardware.

A strategy is a function ``strategy(graph, hardware) -> Mapping`` using
``hardware.count`` nodes. Strategies are found by name in a registry that
`register_strategy` adds to and that the ``nnsim.folding_strategies``
entry-point group fills (nnsim's own five are registered there, as a
third-party package would register its own). `fold` runs one by name and
checks what it returns against every capacity, so no strategy, built-in or
not, can hand out a mapping the hardware cannot hold.

nnsim's strategies:

- ``none``: one vertex per node, as bittide aegir's one-to-one allocation
  (needs exactly as many nodes as vertices).
- ``layer``: each dense layer on its own group of consecutive nodes, the
  nodes shared out in proportion to the layers' weights (a neuron's weights
  row and bias: its MACs + 1), at least one node per layer and no more than
  it has neurons; inside a group the neurons are split into equal
  contiguous runs. The source and the pixels go with the first layer's
  group (the source on its first node), the sink on the last node of the
  last layer's group. With fewer nodes than layers, consecutive layers share.
- ``balanced``: equal MACs per node, in vertex order, so each node holds a
  contiguous run of neurons and layers stay together where they can.
- ``metis``: min-cut over the traffic-weighted graph with METIS
  (`nnsim.dataflow.fold_metis`), memory repaired afterwards.
- ``greedy``: best fit: vertices in order, each on the node with the least
  room left that still holds it (memory, and the MAC budget when the
  hardware has one). It packs: it uses as few nodes as it can.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib.metadata import entry_points

import numpy as np

from nnsim.dataflow.capacity import CapacityError, check_mapping
from nnsim.dataflow.graph import DataflowGraph
from nnsim.dataflow.hardware import Hardware
from nnsim.dataflow.mapping import Mapping
from nnsim.dataflow.placement import Placement
from nnsim.errors import NnsimError, did_you_mean

ENTRY_POINT_GROUP = "nnsim.folding_strategies"

Strategy = Callable[[DataflowGraph, Hardware], Mapping]

_strategies: dict[str, Strategy] = {}


class FoldError(NnsimError):
    """A folding strategy that does not exist or cannot fold this graph onto this hardware."""


def register_strategy(name: str, function: Strategy) -> None:
    """Make ``function(graph, hardware) -> Mapping`` available as ``--fold name``."""
    if not name or not isinstance(name, str):
        raise ValueError(f"a folding strategy needs a name, not {name!r}")
    _strategies[name] = function


def unregister_strategy(name: str) -> None:
    """Forget a strategy registered with `register_strategy` (a test's or a notebook's own)."""
    _strategies.pop(name, None)


def strategies() -> dict[str, Strategy]:
    """Every known strategy, sorted by name (a registered one hides an entry point of its name)."""
    return dict(sorted({**_from_entry_points(), **_strategies}.items()))


def get_strategy(name: str) -> Strategy:
    known = strategies()
    if name not in known:
        raise FoldError(
            f"unknown folding strategy '{name}'{did_you_mean(name, known)} "
            f"(known: {', '.join(known)})"
        )
    return known[name]


def fold(graph: DataflowGraph, hardware: Hardware, strategy: str) -> Mapping:
    """The mapping strategy ``strategy`` makes for ``graph`` on ``hardware``, capacity-checked."""
    mapping = get_strategy(strategy)(graph, hardware)
    if not isinstance(mapping, Mapping):
        raise FoldError(
            f"folding strategy '{strategy}' returned {type(mapping).__name__}, not a Mapping"
        )
    check_mapping(graph, hardware, mapping)
    return mapping


@functools.cache
def _from_entry_points() -> dict[str, Strategy]:
    found = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            found[entry.name] = entry.load()
        except Exception as error:  # a broken plugin is one line, not a traceback
            raise FoldError(
                f"folding strategy '{entry.name}' ({entry.value}) cannot be loaded: {error}"
            ) from None
    return found


# nnsim's strategies -------------------------------------------------------------
def checked(graph: DataflowGraph, hardware: Hardware, node_of, strategy: str) -> Mapping:
    """``node_of`` as a `Mapping` made by ``strategy``, after the capacity check (or its error)."""
    mapping = Mapping(np.asarray(node_of, dtype=np.int32), hardware.count, strategy)
    check_mapping(graph, hardware, mapping)
    return mapping


def one_to_one(graph: DataflowGraph, hardware: Hardware) -> Mapping:
    """``none``: vertex i on node i."""
    if hardware.count != len(graph):
        sizes = "-".join(map(str, graph.model.sizes))
        raise FoldError(
            f"the 'none' fold puts one vertex on each node, so the {sizes} {graph.granularity} "
            f"graph needs {len(graph)} nodes, not {hardware.count} (use --nodes {len(graph)})"
        )
    return checked(graph, hardware, np.arange(len(graph)), "none")


def by_layer(graph: DataflowGraph, hardware: Hardware) -> Mapping:
    """``layer``: each layer on its own group of nodes, in proportion to its weights."""
    layers = graph.model.layers
    count = hardware.count
    node_of = np.zeros(len(graph), dtype=np.int64)
    if count < len(layers):
        groups = [(number * count // len(layers), 1) for number in range(len(layers))]
    else:
        shares = _apportion(
            [layer.output_size * (layer.input_size + 1) for layer in layers],
            [layer.output_size for layer in layers],
            count,
        )
        starts = np.concatenate([[0], np.cumsum(shares)[:-1]])
        groups = list(zip(starts.tolist(), shares, strict=True))
    for number, (start, size) in enumerate(groups):
        ids = np.asarray(graph.layer_vertices(number))
        node_of[ids] = start + np.arange(ids.size) * size // ids.size
    first, size = groups[0]
    pixels = np.asarray(graph.pixel_vertices)
    if pixels.size:
        node_of[pixels] = first + np.arange(pixels.size) * size // pixels.size
    node_of[graph.source.id] = first
    node_of[graph.sink.id] = sum(groups[-1]) - 1
    return checked(graph, hardware, node_of, "layer")


def _apportion(loads: list[int], caps: list[int], count: int) -> list[int]:
    """``count`` nodes shared in proportion to ``loads``: each at least 1, at most its cap."""
    shares = [1] * len(loads)
    spare = count - len(loads)
    total = float(sum(loads))
    while spare > 0:
        # the layer furthest below its proportional share (largest remainder), that can grow
        open_layers = [i for i in range(len(loads)) if shares[i] < caps[i]]
        if not open_layers:
            break  # more nodes than neurons: the rest stay idle
        best = max(open_layers, key=lambda i: (count * loads[i] / total - shares[i], -i))
        shares[best] += 1
        spare -= 1
    return shares


def balanced(graph: DataflowGraph, hardware: Hardware) -> Mapping:
    """``balanced``: contiguous runs of vertices with equal MACs per node."""
    macs = graph.macs().astype(np.float64)
    before = np.cumsum(macs) - macs
    middle = (before + macs / 2) * hardware.count / macs.sum()
    node_of = np.clip(np.floor(middle), 0, hardware.count - 1).astype(np.int64)
    return checked(graph, hardware, node_of, "balanced")


def greedy(graph: DataflowGraph, hardware: Hardware) -> Mapping:
    """``greedy``: best fit by capacity, vertices in order."""
    placement = Placement(graph, hardware)
    memory_cap = hardware.node.memory_words
    mac_cap = hardware.node.max_macs_per_image
    for vertex in range(len(graph)):
        memory_left = memory_cap - placement.memory - placement.cost(vertex)
        room = memory_left / memory_cap
        fits = memory_left >= 0
        if mac_cap is not None:
            macs_left = mac_cap - placement.macs - placement.vertex_macs[vertex]
            fits &= macs_left >= 0
            room = np.minimum(room, macs_left / mac_cap)
        if not fits.any():
            raise _no_room(graph, hardware, vertex, memory_left, placement)
        placement.place(vertex, int(np.argmin(np.where(fits, room, np.inf))))
    return checked(graph, hardware, placement.node_of, "greedy")


def _no_room(
    graph: DataflowGraph,
    hardware: Hardware,
    vertex: int,
    memory_left: np.ndarray,
    placement: Placement,
) -> CapacityError:
    """The greedy fold's refusal: the resource that is short on the node with most of it left."""
    name = graph.vertices[vertex].name
    if (memory_left >= 0).any():  # memory would do: the MAC budget is what is short
        budget = hardware.node.max_macs_per_image
        left = budget - placement.macs
        node = int(np.argmax(left))
        return CapacityError(
            f"the 'greedy' fold cannot place '{name}': it needs "
            f"{placement.vertex_macs[vertex]:,} MACs per image and "
            f"{hardware.node_name(node)}, the node with most left, has {left[node]:,} of its "
            f"max_macs_per_image {budget:,}"
        )
    node = int(np.argmax(memory_left))
    return CapacityError(
        f"the 'greedy' fold cannot place '{name}': {hardware.node_name(node)}, the node with "
        f"most room, would need {-memory_left[node]:,} more words of memory than its "
        f"{hardware.node.memory_words:,}"
    )
