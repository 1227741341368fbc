"""What crosses the links for one image, a value sent to several vertices of one node counted once.

A *message* is one value (a neuron's output, a pixel, the whole image at
``neuron`` granularity) going from the node of its producer to another node
that hosts at least one vertex reading it. However many vertices on that
node read the value, it crosses once (multicast inside a node); a value
needed on k other nodes is k messages, each following the hardware's fixed
route hop by hop (no multicast tree across nodes). Values used on the node
that produced them cost no link.

Per image, `traffic` gives the words and messages of every (source node,
destination node) pair, end to end, and of every directed physical link
(each message counted on every hop of its route). `cut_words` is the total
words crossing between nodes, the quantity a folding strategy minimises.
Everything is vectorised over the edges (the pixel graph has ~100,000).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnsim.dataflow.graph import DataflowGraph
from nnsim.dataflow.hardware import Hardware


def messages(graph: DataflowGraph, node_of) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(value, from_node, to_node)`` of every message of one image, sorted by value then node."""
    node_of = _node_array(graph, node_of)
    nodes = int(node_of.max()) + 1
    to_node = node_of[graph.edge_dst]
    from_node = node_of[graph.value_producer[graph.edge_value]]
    crossing = from_node != to_node
    keys = np.unique(graph.edge_value[crossing].astype(np.int64) * nodes + to_node[crossing])
    value = keys // nodes
    return value, node_of[graph.value_producer[value]], keys % nodes


def cut_words(graph: DataflowGraph, mapping) -> int:
    """Words per image that cross between nodes (``mapping``: a `Mapping` or a node-of array)."""
    value, _, _ = messages(graph, mapping)
    return int(graph.value_words[value].sum())


@dataclass(frozen=True)
class Traffic:
    """One image's traffic, end to end per node pair and per directed physical link.

    Both are sparse (only what carries something, sorted): a 4,096-node
    machine would need 16 M entries for a dense pair matrix.
    """

    pairs: tuple[tuple[int, int], ...]  # (from node, to node) that exchange anything
    pair_words: np.ndarray  # [len(pairs)] int64
    pair_messages: np.ndarray  # [len(pairs)] int64: messages (frames) end to end
    links: tuple[tuple[int, int], ...]  # directed physical links that carry anything
    link_words: np.ndarray  # [len(links)] int64
    link_messages: np.ndarray  # [len(links)] int64: messages summed over their hops

    @property
    def words(self) -> int:
        """Words crossing between nodes (each message once, whatever its hops): the cut."""
        return int(self.pair_words.sum())

    @property
    def word_hops(self) -> int:
        """Words times hops: what the links carry in all."""
        return int(self.link_words.sum())

    def pair(self, a: int, b: int) -> tuple[int, int]:
        """``(words, messages)`` node ``a`` sends node ``b`` end to end (zeros if nothing)."""
        return _look_up(self.pairs, self.pair_words, self.pair_messages, (a, b))

    def link(self, a: int, b: int) -> tuple[int, int]:
        """``(words, messages)`` on the directed link ``a -> b`` (zeros if it carries nothing)."""
        return _look_up(self.links, self.link_words, self.link_messages, (a, b))


def traffic(graph: DataflowGraph, hardware: Hardware, mapping) -> Traffic:
    """The `Traffic` of one image of ``graph`` folded by ``mapping`` onto ``hardware``."""
    value, from_node, to_node = messages(graph, mapping)
    count = hardware.count
    keys, where = np.unique(from_node * count + to_node, return_inverse=True)
    pair_words = np.bincount(where, graph.value_words[value], minlength=keys.size)
    pair_words = pair_words.round().astype(np.int64)
    pair_messages = np.bincount(where, minlength=keys.size).astype(np.int64)
    pairs = tuple((int(k // count), int(k % count)) for k in keys)
    on_links: dict[tuple[int, int], list[int]] = {}
    for (a, b), words, sent in zip(pairs, pair_words.tolist(), pair_messages.tolist(), strict=True):
        for hop in hardware.route(a, b):
            totals = on_links.setdefault(hop, [0, 0])
            totals[0] += words
            totals[1] += sent
    links = tuple(sorted(on_links))
    return Traffic(
        pairs=pairs,
        pair_words=pair_words,
        pair_messages=pair_messages,
        links=links,
        link_words=np.array([on_links[k][0] for k in links], dtype=np.int64),
        link_messages=np.array([on_links[k][1] for k in links], dtype=np.int64),
    )


def _look_up(keys, words, sent, key) -> tuple[int, int]:
    try:
        at = keys.index(key)
    except ValueError:
        return 0, 0
    return int(words[at]), int(sent[at])


def _node_array(graph: DataflowGraph, mapping) -> np.ndarray:
    node_of = np.asarray(getattr(mapping, "node_of", mapping), dtype=np.int64)
    if node_of.shape != (len(graph),):
        raise ValueError(f"a node for each of the {len(graph)} vertices, not {node_of.shape}")
    return node_of
