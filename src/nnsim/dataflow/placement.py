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

    def limits(self, macs_limit: float | None = None) -> tuple[int, float]:
        """Memory words and MACs per image one node may take: its capacity, its MAC budget
        (none: no limit) and ``macs_limit`` if given, whichever is lower."""
        budget = self.hardware.node.max_macs_per_image
        mac_cap = float("inf") if budget is None else float(budget)
        if macs_limit is not None:
            mac_cap = min(mac_cap, macs_limit)
        return self.hardware.node.memory_words, mac_cap

    def room(self, vertex: int, macs_limit: float | None = None) -> np.ndarray:
        """Nodes other than its own that could take ``vertex`` within memory and MACs."""
        memory_cap, mac_cap = self.limits(macs_limit)
        room = (self.memory + self.cost(vertex) <= memory_cap) & (
            self.macs + self.vertex_macs[vertex] <= mac_cap
        )
        if self.node_of[vertex] >= 0:
            room[self.node_of[vertex]] = False
        return room

    def move(self, vertex: int, node: int) -> None:
        self.remove(vertex)
        self.place(vertex, node)

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


def repair(placement: Placement, macs_limit: float | None = None) -> Placement:
    """Move vertices off over-full nodes, each move adding the fewest cut words per word it frees.

    Over-full means more memory than the node has, or more MACs than its
    budget. The most over-full node's vertices are priced once (cut words
    added per word freed, on the best node with room), then moved cheapest
    first, each move checked again, until the node fits; then the next
    node. A vertex moves only to a node that still holds it afterwards and
    only if the move frees memory (or MACs) on the over-full node, so the
    loop ends; when no such move is left the placement is returned as it
    is, and the capacity check names what is still over. ``macs_limit``
    (e.g. a little above the mean) makes it even out compute as well.
    """
    memory_cap, mac_cap = placement.limits(macs_limit)
    while True:
        over = np.maximum(placement.memory - memory_cap, 0) + np.maximum(
            placement.macs - mac_cap, 0
        )
        if not over.any():
            return placement
        node = int(np.argmax(over))
        priced = []
        for vertex in np.flatnonzero(placement.node_of == node).tolist():
            move = _best_move(placement, vertex, macs_limit)
            if move is not None:
                priced.append((move[0], vertex))
        moved = False
        for _, vertex in sorted(priced):
            if placement.memory[node] <= memory_cap and placement.macs[node] <= mac_cap:
                break
            move = _best_move(placement, vertex, macs_limit)
            if move is not None:
                placement.move(vertex, move[1])
                moved = True
        if not moved:
            return placement


def _best_move(
    placement: Placement, vertex: int, macs_limit: float | None
) -> tuple[float, int] | None:
    """``(cut words added per word freed, target node)`` of moving ``vertex`` off its node, or None."""
    memory_cap, mac_cap = placement.limits(macs_limit)
    node = int(placement.node_of[vertex])
    memory_over = placement.memory[node] - memory_cap
    frees = placement.freed(vertex) if memory_over > 0 else placement.vertex_macs[vertex]
    room = placement.room(vertex, macs_limit)
    if frees <= 0 or not room.any():
        return None
    change = np.where(room, placement.cut_change(vertex), np.iinfo(np.int64).max)
    target = int(np.argmin(change))
    excess = memory_over if memory_over > 0 else placement.macs[node] - mac_cap
    return float(change[target]) / min(frees, excess), target


def refine(placement: Placement, macs_limit: float, passes: int = 8) -> Placement:
    """Single-vertex moves that lower the real (multicast) cut, keeping MACs balanced.

    A move is taken when it lowers the cut words and leaves the target
    within memory, the MAC budget, and MACs at most ``macs_limit`` (or the
    busiest node's MACs, if that is already higher). Vertices are visited in
    order, up to ``passes`` times, until none moves.
    """
    balance = max(float(placement.macs.max()), macs_limit)
    never = np.iinfo(np.int64).max
    for _ in range(passes):
        moved = False
        for vertex in range(len(placement.node_of)):
            room = placement.room(vertex, balance)
            if not room.any():
                continue
            change = np.where(room, placement.cut_change(vertex), never)
            target = int(np.argmin(change))
            if change[target] < 0:
                placement.move(vertex, target)
                moved = True
        if not moved:
            break
    return placement
