"""The ``metis`` folding strategy: a min-cut partition of the traffic-weighted graph (pymetis).

The graph METIS sees has one vertex per dataflow vertex and one undirected
edge per (producer, reader) pair, weighted by the words of the value it
carries per image (multicast edges are collapsed to these pairs first, so
the pixel graph's ~100,000 edges are handed over once, in CSR form).
METIS cuts edges, not values, so a value read by several vertices of one
node counts once per reader in its objective; the real cut
(`nnsim.dataflow.traffic.cut_words`) counts it once, and is what the
repair step and the reports use.

Vertex weights are the memory a vertex brings wherever it goes (its
weights row and bias, and the values it produces), and the part weights
are the nodes' memory capacities (equal, since the nodes are alike), so
METIS balances memory within its default 3% tolerance. It can still
overflow a node (shared inputs are held once per node, which METIS does
not know): `nnsim.dataflow.fold.repair` then moves vertices to nodes with
room, each move adding the fewest cut words; if it cannot, the strategy
refuses with the capacity line. METIS runs with a fixed seed, so the same
graph and hardware give the same mapping.
"""

from __future__ import annotations

import numpy as np

from nnsim.dataflow.fold import FoldError, checked, repair
from nnsim.dataflow.graph import DataflowGraph
from nnsim.dataflow.hardware import Hardware
from nnsim.dataflow.mapping import Mapping

SEED = 0


def metis(graph: DataflowGraph, hardware: Hardware) -> Mapping:
    """``metis``: min-cut over the traffic-weighted graph, then memory repaired."""
    try:
        import pymetis
    except ImportError:
        raise FoldError("the 'metis' fold needs pymetis: pip install 'nnsim[dataflow]'") from None
    count = hardware.count
    if count == 1:
        return checked(graph, hardware, np.zeros(len(graph), dtype=np.int64), "metis")
    xadj, adjncy, eweights = _csr(graph)
    own = np.array([v.weight_words for v in graph.vertices], dtype=np.int64)
    own += np.bincount(graph.value_producer, graph.value_words, minlength=len(graph)).astype(
        np.int64
    )
    options = pymetis.Options(seed=SEED)
    capacity = np.full(count, float(hardware.node.memory_words))
    if hasattr(pymetis, "CSRAdjacency"):  # pymetis >= 2025.2
        shape = {"adjacency": pymetis.CSRAdjacency(xadj, adjncy)}
    else:
        shape = {"xadj": xadj, "adjncy": adjncy}
    _, parts = pymetis.part_graph(
        count,
        **shape,
        eweights=eweights,
        vweights=np.maximum(own, 1).tolist(),
        tpwgts=(capacity / capacity.sum()).tolist(),
        options=options,
    )
    node_of = repair(graph, hardware, np.asarray(parts, dtype=np.int64))
    return checked(graph, hardware, node_of, "metis")


def _csr(graph: DataflowGraph) -> tuple[list[int], list[int], list[int]]:
    """The undirected (producer, reader) graph weighted by words, as METIS's xadj/adjncy/eweights."""
    size = len(graph)
    producer = graph.value_producer[graph.edge_value].astype(np.int64)
    reader = graph.edge_dst.astype(np.int64)
    words = graph.value_words[graph.edge_value].astype(np.int64)
    keys = np.concatenate([producer * size + reader, reader * size + producer])
    keys, where = np.unique(keys, return_inverse=True)
    weights = np.bincount(where, np.concatenate([words, words])).astype(np.int64)
    rows, cols = keys // size, keys % size
    xadj = np.searchsorted(rows, np.arange(size + 1))
    return xadj.tolist(), cols.tolist(), np.maximum(weights, 1).tolist()
