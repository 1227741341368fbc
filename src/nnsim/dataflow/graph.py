"""The neuron-level graph of a dense model: a source, one vertex per neuron, a sink.

This is bittide aegir's ``nn_classifier`` as data: the source distributes each
image, every neuron of every dense layer is a vertex, the sink picks the
prediction, and every edge is a link. Two granularities:

- ``neuron`` (default, as aegir's code): each first-layer neuron receives the
  whole image from the source as one message. 784-128-10 gives 140 vertices
  (source + 128 + 10 + sink) and 1,418 edges.
- ``pixel`` (as aegir's README): 784 input vertices too, one edge per weight,
  so 784-128-10 gives 924 vertices and 102,426 edges.

Vertices are numbered in a fixed order (source, pixels, layer by layer,
sink) and named by stable paths: ``source``, ``input/p17``, ``dense1/n5``,
``sink``. Edges are numpy arrays, because the pixel graph has ~100,000 of
them. Every edge carries a *value* (an id in ``value_words``): a neuron's
output, one pixel, or the whole image. Edges that carry the same value to
several vertices on one hardware node cross a link once (multicast), so
traffic is counted per (value, destination node), never per edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from nnsim.errors import NnsimError
from nnsim.interop.model import DenseModel

GRANULARITIES = ("neuron", "pixel")

SOURCE, PIXEL, NEURON, SINK = "source", "pixel", "neuron", "sink"


@dataclass(frozen=True)
class Vertex:
    """One vertex: where it sits in the network and what it costs.

    ``layer`` is the index of its dense layer in the model (0 for the first),
    -1 for the source and the pixels, ``len(model.layers)`` for the sink.
    ``fan_in`` is the number of input values it combines per image (its MACs
    for a neuron; the sink compares ``fan_in`` values).
    ``weight_words`` is what it stores whatever the image: a neuron's weights
    row and bias.
    """

    id: int
    name: str
    kind: str
    layer: int
    index: int
    fan_in: int
    weight_words: int


@dataclass(frozen=True)
class DataflowGraph:
    """Vertices and edges of one model at one granularity; build with ``from_model``."""

    model: DenseModel
    granularity: str
    vertices: tuple[Vertex, ...]
    edge_src: np.ndarray  # [E] int32 vertex ids
    edge_dst: np.ndarray  # [E] int32 vertex ids
    edge_value: np.ndarray  # [E] int32 value ids
    value_words: np.ndarray  # [V] int64 words per value per image
    value_producer: np.ndarray  # [V] int32 vertex id that sends the value
    _by_name: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_model(cls, model: DenseModel, granularity: str = "neuron") -> DataflowGraph:
        if granularity not in GRANULARITIES:
            raise NnsimError(
                f"granularity '{granularity}' is not one of {', '.join(GRANULARITIES)}"
            )
        return _build(model, granularity)

    # Look-ups -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.vertices)

    @property
    def edge_count(self) -> int:
        return int(self.edge_src.size)

    def vertex(self, name: str) -> Vertex:
        """The vertex of a path such as ``dense1/n5``; one clear line if there is none."""
        if not self._by_name:
            self._by_name.update({v.name: v.id for v in self.vertices})
        try:
            return self.vertices[self._by_name[name]]
        except KeyError:
            from nnsim.errors import did_you_mean

            raise NnsimError(
                f"the graph has no vertex '{name}'{did_you_mean(name, self._by_name)}"
            ) from None

    @property
    def source(self) -> Vertex:
        return self.vertices[0]

    @property
    def sink(self) -> Vertex:
        return self.vertices[-1]

    def layer_vertices(self, layer: int) -> range:
        """Vertex ids of dense layer ``layer`` (0-based), in neuron order."""
        first = self._layer_starts[layer]
        return range(first, first + self.model.layers[layer].output_size)

    @property
    def pixel_vertices(self) -> range:
        """Vertex ids of the input pixels (empty at ``neuron`` granularity)."""
        return range(1, self._layer_starts[0])

    @cached_property
    def _layer_starts(self) -> list[int]:
        starts = []
        for vertex in self.vertices:
            if vertex.kind == NEURON and vertex.index == 0:
                starts.append(vertex.id)
        return starts

    @cached_property
    def in_edges(self) -> list[np.ndarray]:
        """For each vertex, the ids of its incoming edges in input order (the weights' row order)."""
        order = np.argsort(self.edge_dst, kind="stable")
        bounds = np.searchsorted(self.edge_dst[order], np.arange(len(self.vertices) + 1))
        return [order[bounds[v] : bounds[v + 1]] for v in range(len(self.vertices))]

    @cached_property
    def out_edges(self) -> list[np.ndarray]:
        """For each vertex, the ids of its outgoing edges in edge order."""
        order = np.argsort(self.edge_src, kind="stable")
        bounds = np.searchsorted(self.edge_src[order], np.arange(len(self.vertices) + 1))
        return [order[bounds[v] : bounds[v + 1]] for v in range(len(self.vertices))]

    def macs(self) -> np.ndarray:
        """MACs per image of every vertex (a neuron's fan-in; 0 for source, pixels and sink)."""
        return np.array(
            [v.fan_in if v.kind == NEURON else 0 for v in self.vertices], dtype=np.int64
        )

    def describe(self) -> str:
        sizes = "-".join(str(size) for size in self.model.sizes)
        return f"{sizes} {self.granularity} graph: {len(self.vertices)} vertices, {self.edge_count} edges"


def _build(model: DenseModel, granularity: str) -> DataflowGraph:
    vertices: list[Vertex] = [Vertex(0, "source", SOURCE, -1, 0, 0, 0)]
    src: list[np.ndarray] = []
    dst: list[np.ndarray] = []
    val: list[np.ndarray] = []
    value_words: list[np.ndarray] = []
    value_producer: list[np.ndarray] = []

    def new_values(producers: np.ndarray, words: int) -> np.ndarray:
        first = sum(len(chunk) for chunk in value_words)
        value_words.append(np.full(len(producers), words, dtype=np.int64))
        value_producer.append(producers.astype(np.int32))
        return np.arange(first, first + len(producers), dtype=np.int32)

    def connect(senders: np.ndarray, values: np.ndarray, receivers: range) -> None:
        """Every sender's value to every receiver, receiver-major (a weights column in row order)."""
        count = len(senders)
        src.append(np.tile(senders, len(receivers)).astype(np.int32))
        val.append(np.tile(values, len(receivers)).astype(np.int32))
        dst.append(np.repeat(np.arange(receivers.start, receivers.stop), count).astype(np.int32))

    size = model.input_size
    if granularity == PIXEL:
        pixels = range(1, 1 + size)
        vertices += [Vertex(i, f"input/p{i - 1}", PIXEL, -1, i - 1, 1, 0) for i in pixels]
        pixel_values = new_values(np.zeros(size, dtype=np.int32), 1)  # the source sends pixel i
        src.append(np.zeros(size, dtype=np.int32))
        dst.append(np.arange(pixels.start, pixels.stop, dtype=np.int32))
        val.append(pixel_values)
        senders = np.arange(pixels.start, pixels.stop, dtype=np.int32)
        values = new_values(senders, 1)  # pixel vertex i forwards its pixel
    else:
        senders = np.zeros(1, dtype=np.int32)
        values = new_values(senders, size)  # the whole image, one message
    for number, layer in enumerate(model.layers):
        first = len(vertices)
        vertices += [
            Vertex(first + j, f"{layer.name}/n{j}", NEURON, number, j, layer.input_size,
                   layer.input_size + 1)
            for j in range(layer.output_size)
        ]  # fmt: skip
        receivers = range(first, first + layer.output_size)
        connect(senders, values, receivers)
        senders = np.arange(receivers.start, receivers.stop, dtype=np.int32)
        values = new_values(senders, 1)
    sink = len(vertices)
    vertices.append(Vertex(sink, "sink", SINK, len(model.layers), 0, model.output_size, 0))
    connect(senders, values, range(sink, sink + 1))
    return DataflowGraph(
        model=model,
        granularity=granularity,
        vertices=tuple(vertices),
        edge_src=np.concatenate(src),
        edge_dst=np.concatenate(dst),
        edge_value=np.concatenate(val),
        value_words=np.concatenate(value_words),
        value_producer=np.concatenate(value_producer),
    )
