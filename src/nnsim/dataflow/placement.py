"""Vertices placed on nodes one at a time, with memory and cut words kept up to date.

The greedy fold adds vertices one by one and the METIS repair moves them;
both need, for one vertex, what it would cost on *every* node at once
(numpy over the nodes) under the memory model of
`nnsim.dataflow.capacity`: a vertex brings its weights and every value it
produces or reads that the node does not hold yet. Keeping per (value,
node) counts of holders and readers makes that one small matrix product per
vertex, instead of re-measuring the whole mapping. ``memory`` here always
equals `capacity.usage`'s ``memory_words`` for the same assignment (tested).
"""

from __future__ import annotations

import numpy as np

from nnsim.dataflow.graph import NEURON, DataflowGraph
from nnsim.dataflow.hardware import Hardware


class Placement:
    """A partial or complete assignment of ``graph``'s vertices to ``hardware``'s nodes."""

    def __init__(self, graph: DataflowGraph, hardware: Hardware) -> None:
        count, values = hardware.count, len(graph.value_words)
        self.graph, self.hardware = graph, hardware
        self.words = graph.value_words.astype(np.int64)
        self.weights = np.array([v.weight_words for v in graph.vertices], dtype=np.int64)
        self.vertex_macs = np.array(
            [v.fan_in if v.kind == NEURON else 0 for v in graph.vertices], dtype=np.int64
        )
        self.reads = [graph.edge_value[edges].astype(np.int64) for edges in graph.in_edges]
        by_producer = np.argsort(graph.value_producer, kind="stable")
        bounds = np.searchsorted(graph.value_producer[by_producer], np.arange(len(graph) + 1))
        self.makes = [by_producer[bounds[v] : bounds[v + 1]] for v in range(len(graph))]
        self.node_of = np.full(len(graph), -1, dtype=np.int64)
        self.holders = np.zeros((values, count), dtype=np.int32)  # producer + readers per node
        self.readers = np.zeros((values, count), dtype=np.int32)
        self.maker_node = np.full(values, -1, dtype=np.int64)
        self.memory = np.zeros(count, dtype=np.int64)
        self.macs = np.zeros(count, dtype=np.int64)

    @classmethod
    def of(cls, graph: DataflowGraph, hardware: Hardware, node_of: np.ndarray) -> Placement:
        placement = cls(graph, hardware)
        for vertex, node in enumerate(np.asarray(node_of)):
            placement.place(vertex, int(node))
        return placement

    def held(self, vertex: int) -> np.ndarray:
        return np.concatenate([self.reads[vertex], self.makes[vertex]])

    def cost(self, vertex: int) -> np.ndarray:
        """Words of memory ``vertex`` would add to each node (it is not placed)."""
        values = self.held(vertex)
        return self.weights[vertex] + self.words[values] @ (self.holders[values] == 0)

    def place(self, vertex: int, node: int) -> None:
        values = self.held(vertex)
        self.memory[node] += self.weights[vertex] + self.words[values] @ (
            self.holders[values, node] == 0
        )
        self.holders[values, node] += 1
        self.readers[self.reads[vertex], node] += 1
        self.maker_node[self.makes[vertex]] = node
        self.macs[node] += self.vertex_macs[vertex]
        self.node_of[vertex] = node

    def remove(self, vertex: int) -> int:
        """Take ``vertex`` off its node; return the node."""
        node = int(self.node_of[vertex])
        values = self.held(vertex)
        self.holders[values, node] -= 1
        self.readers[self.reads[vertex], node] -= 1
        self.memory[node] -= self.weights[vertex] + self.words[values] @ (
            self.holders[values, node] == 0
        )
        self.macs[node] -= self.vertex_macs[vertex]
        self.maker_node[self.makes[vertex]] = -1
        self.node_of[vertex] = -1
        return node

    def freed(self, vertex: int) -> int:
        """Words of memory removing the placed ``vertex`` would free on its node."""
        node = int(self.node_of[vertex])
        values = self.held(vertex)
        return int(self.weights[vertex] + self.words[values] @ (self.holders[values, node] == 1))

    def cut_change(self, vertex: int) -> np.ndarray:
        """Change of the cut words if the placed ``vertex`` moved to each node (0 for its own)."""
        here = int(self.node_of[vertex])
        nodes = np.arange(self.hardware.count)
        reads = self.reads[vertex]
        makers = self.maker_node[reads][:, None]
        readers = self.readers[reads]
        words = self.words[reads]
        leaves = words @ ((readers[:, here] == 1) & (makers[:, 0] != here))
        arrives = words @ ((readers == 0) & (makers != nodes))
        makes = self.makes[vertex]
        sent = self.readers[makes] > 0
        words_made = self.words[makes]
        change = arrives - leaves + words_made @ sent[:, here] - words_made @ sent
        change[here] = 0
        return change
