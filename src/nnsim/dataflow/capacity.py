"""Does a mapping fit the hardware? Memory, ports and compute per node, and by how much it does not.

The model of what a node holds and spends for one image (the same model the
folding strategies place vertices with, see `nnsim.dataflow.placement`):

- **memory** (words): the weights row and bias of every hosted neuron, plus
  every *value* the node holds for one image, each counted once however many
  of its vertices use it (multicast): the values its vertices produce (a
  neuron's output word, a pixel; the source's one image) and the values they
  read (the image once for all first-layer neurons on the node, each
  upstream neuron's output once). So a node hosting the source holds one
  image, a node hosting the sink holds the sink's ``fan_in`` values, and a
  value produced and read on the same node is held once.
- **ports**: on a ``full`` topology, the number of distinct nodes a node
  sends to (output ports) and receives from (input ports), from the traffic
  of the mapping. On ``ring``, ``mesh2d`` and ``torus2d`` the wires are
  fixed: a node's ports are its physical links (its degree in the topology),
  whatever the mapping, and traffic to farther nodes travels through the
  intermediate nodes' links.
- **MACs**: a hosted neuron costs its ``fan_in`` multiply-accumulates per
  image; they must fit the optional ``node.max_macs_per_image`` budget.
  Cycles per image are ``sum(ceil(fan_in / macs_per_cycle))`` over the hosted
  neurons (reported, not limited: the timing model turns them into time).

`usage` measures; `check_mapping` measures and refuses the first resource a
node overflows (the most overflowing node of it) with one line naming the
node, the resource and the excess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnsim.dataflow.graph import NEURON, DataflowGraph
from nnsim.dataflow.hardware import Hardware
from nnsim.dataflow.mapping import Mapping, MappingError
from nnsim.dataflow.traffic import messages
from nnsim.errors import NnsimError


class CapacityError(NnsimError):
    """A mapping that asks a node for more memory, ports or MACs than it has."""


@dataclass(frozen=True)
class Usage:
    """What each node of the hardware uses for one image (arrays of ``hardware.count``)."""

    hardware: Hardware
    vertices: np.ndarray  # hosted vertices
    neurons: np.ndarray  # hosted neurons
    weight_words: np.ndarray  # weights + biases of hosted neurons
    value_words: np.ndarray  # distinct values held for one image
    ports_in: np.ndarray
    ports_out: np.ndarray
    macs: np.ndarray  # per image
    cycles: np.ndarray  # per image: sum of ceil(fan_in / macs_per_cycle)

    @property
    def memory_words(self) -> np.ndarray:
        return self.weight_words + self.value_words

    def rows(self) -> list[dict[str, int | str]]:
        """One dict per node, for reports: name, vertices, memory, ports, MACs, cycles."""
        return [
            {
                "node": self.hardware.node_name(n),
                "vertices": int(self.vertices[n]),
                "neurons": int(self.neurons[n]),
                "memory_words": int(self.memory_words[n]),
                "weight_words": int(self.weight_words[n]),
                "value_words": int(self.value_words[n]),
                "ports_in": int(self.ports_in[n]),
                "ports_out": int(self.ports_out[n]),
                "macs": int(self.macs[n]),
                "cycles": int(self.cycles[n]),
            }
            for n in range(self.hardware.count)
        ]


def usage(graph: DataflowGraph, hardware: Hardware, mapping: Mapping) -> Usage:
    """Measure ``mapping`` on ``hardware`` without judging it."""
    node_of = _checked_nodes(graph, hardware, mapping)
    count = hardware.count
    kinds = np.array([v.kind == NEURON for v in graph.vertices])
    fan_in = np.array([v.fan_in for v in graph.vertices], dtype=np.int64)
    weights = np.array([v.weight_words for v in graph.vertices], dtype=np.int64)
    macs = np.where(kinds, fan_in, 0)
    cycles = np.where(kinds, -(-fan_in // hardware.node.macs_per_cycle), 0)
    return Usage(
        hardware=hardware,
        vertices=np.bincount(node_of, minlength=count),
        neurons=np.bincount(node_of, kinds.astype(np.int64), minlength=count).astype(np.int64),
        weight_words=_sum_by(node_of, weights, count),
        value_words=held_value_words(graph, node_of, count),
        ports_in=_ports(graph, hardware, node_of, 1),
        ports_out=_ports(graph, hardware, node_of, 0),
        macs=_sum_by(node_of, macs, count),
        cycles=_sum_by(node_of, cycles, count),
    )


def check_mapping(graph: DataflowGraph, hardware: Hardware, mapping: Mapping) -> Usage:
    """The `Usage` of ``mapping``, or a `CapacityError` for the first resource a node overflows."""
    used = usage(graph, hardware, mapping)
    node = hardware.node
    where = f" ({_describe(graph, hardware, mapping)})"
    memory = used.memory_words
    if (memory > node.memory_words).any():
        n = int(np.argmax(memory))
        raise CapacityError(
            f"{hardware.node_name(n)} needs {memory[n]:,} words of memory, "
            f"{memory[n] - node.memory_words:,} more than its {node.memory_words:,}{where}"
        )
    full = hardware.topology == "full"
    for ports, limit, verb, kind in (
        (used.ports_out, node.output_ports, "sends to", "output"),
        (used.ports_in, node.input_ports, "receives from", "input"),
    ):
        if (ports > limit).any():
            n = int(np.argmax(ports))
            needs = (
                f"{verb} {ports[n]:,} nodes"
                if full
                else f"has {ports[n]:,} {kind} links on a {hardware.topology} of {hardware.count}"
            )
            raise CapacityError(
                f"{hardware.node_name(n)} {needs}, {ports[n] - limit:,} more than its "
                f"{limit:,} {kind} ports{where}"
            )
    budget = node.max_macs_per_image
    if budget is not None and (used.macs > budget).any():
        n = int(np.argmax(used.macs))
        raise CapacityError(
            f"{hardware.node_name(n)} needs {used.macs[n]:,} MACs per image, "
            f"{used.macs[n] - budget:,} more than its max_macs_per_image {budget:,}{where}"
        )
    return used


def held_value_words(graph: DataflowGraph, node_of: np.ndarray, count: int) -> np.ndarray:
    """Words of the distinct values each node holds for one image (produced or read there)."""
    produced = np.arange(len(graph.value_words), dtype=np.int64)
    values = np.concatenate([produced, graph.edge_value.astype(np.int64)])
    nodes = np.concatenate([node_of[graph.value_producer], node_of[graph.edge_dst]])
    keys = np.unique(values * count + nodes)
    return _sum_by(keys % count, graph.value_words[keys // count], count)


def _ports(graph: DataflowGraph, hardware: Hardware, node_of: np.ndarray, axis: int) -> np.ndarray:
    """Ports each node uses: distinct peers on ``full`` (``axis`` 0: out, 1: in), else its degree."""
    count = hardware.count
    if hardware.topology != "full":
        return np.array([len(hardware.neighbours(n)) for n in range(count)], dtype=np.int64)
    _, from_node, to_node = messages(graph, node_of)
    pairs = np.unique(from_node * count + to_node)
    ends = pairs % count if axis else pairs // count
    return np.bincount(ends, minlength=count).astype(np.int64)


def _sum_by(nodes: np.ndarray, amounts: np.ndarray, count: int) -> np.ndarray:
    return np.bincount(nodes, amounts, minlength=count).round().astype(np.int64)


def _checked_nodes(graph: DataflowGraph, hardware: Hardware, mapping: Mapping) -> np.ndarray:
    node_of = np.asarray(mapping.node_of)
    if node_of.shape != (len(graph),):
        raise MappingError(
            f"the mapping places {node_of.size} vertices but the graph has {len(graph)}"
        )
    if mapping.nodes != hardware.count:
        raise MappingError(
            f"the mapping is for {mapping.nodes} nodes but the hardware has {hardware.count}"
        )
    if node_of.size and (node_of.min() < 0 or node_of.max() >= hardware.count):
        bad = int(np.flatnonzero((node_of < 0) | (node_of >= hardware.count))[0])
        raise MappingError(
            f"vertex '{graph.vertices[bad].name}' is on node {int(node_of[bad])}, "
            f"outside the hardware's 0..{hardware.count - 1}"
        )
    return node_of.astype(np.int64)


def _describe(graph: DataflowGraph, hardware: Hardware, mapping: Mapping) -> str:
    sizes = "-".join(map(str, graph.model.sizes))
    return (
        f"fold '{mapping.strategy}' of the {sizes} {graph.granularity} graph on "
        f"{hardware.count} node{'s' if hardware.count != 1 else ''} of {hardware.name}"
    )
