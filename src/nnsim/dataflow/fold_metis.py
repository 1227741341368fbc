"""The ``metis`` folding strategy: a min-cut partition of the traffic-weighted graph (pymetis).

The graph METIS sees has one vertex per dataflow vertex, weighted by its
MACs (at least 1), and one undirected edge per (producer, reader) pair;
multicast edges are collapsed to these pairs first, so the pixel graph's
~100,000 edges are handed over once, in CSR form. METIS cuts edges, while
a value read by several vertices of one node crosses a link once, so an
edge carries its value's words divided by the value's number of readers
(scaled to whole numbers): a value read everywhere costs what it costs once.
The part weights are the nodes' shares of the total capacity (equal, as
the nodes are alike), so METIS balances MACs like ``balanced`` does, but
picks which vertices share a node by the cut.

Then, on the real traffic (`nnsim.dataflow.traffic.cut_words`, multicast
counted once): `placement.repair` moves vertices off any node METIS
overfilled (memory, or the MAC budget), each move adding the fewest cut
words per word freed; then off any node with more MACs than the mean plus
one neuron (METIS can leave nodes idle when a few heavy vertices dominate);
and `placement.refine` takes single-vertex moves that lower the cut while
MACs stay within 3% of the mean (or the busiest node's MACs). If the repair cannot make room, the
strategy refuses with the capacity line naming the node and the resource.
METIS runs with a fixed seed: the same graph and hardware give the same
mapping.
"""

from __future__ import annotations

import numpy as np

from nnsim.dataflow.fold import FoldError, checked
from nnsim.dataflow.graph import DataflowGraph
from nnsim.dataflow.hardware import Hardware
from nnsim.dataflow.mapping import Mapping
from nnsim.dataflow.placement import Placement, refine, repair

SEED = 0
SLACK = 0.03  # MACs per node may exceed the mean by this much (METIS's own default tolerance)
EDGE_SCALE = 1024  # edge weight = words * EDGE_SCALE / readers, rounded, at least 1


def metis(graph: DataflowGraph, hardware: Hardware) -> Mapping:
    """``metis``: min-cut over the traffic-weighted graph, then memory repaired and the cut refined."""
    try:
        import pymetis
    except ImportError:
        raise FoldError("the 'metis' fold needs pymetis: pip install 'nnsim[dataflow]'") from None
    count = hardware.count
    if count == 1:
        return checked(graph, hardware, np.zeros(len(graph), dtype=np.int64), "metis")
    xadj, adjncy, eweights = _csr(graph)
    if hasattr(pymetis, "CSRAdjacency"):  # pymetis >= 2025.2
        shape = {"adjacency": pymetis.CSRAdjacency(xadj, adjncy)}
    else:
        shape = {"xadj": xadj, "adjncy": adjncy}
    capacity = np.full(count, float(hardware.node.memory_words))
    _, parts = pymetis.part_graph(
        count,
        **shape,
        eweights=eweights,
        vweights=np.maximum(graph.macs(), 1).tolist(),
        tpwgts=(capacity / capacity.sum()).tolist(),
        options=pymetis.Options(seed=SEED),
    )
    placement = Placement.of(graph, hardware, np.asarray(parts, dtype=np.int64))
    macs = graph.macs()
    even = max((1 + SLACK) * macs.sum() / count, macs.sum() / count + macs.max())
    repair(placement)  # memory and the MAC budget: hard limits
    repair(placement, macs_limit=even)  # compute evened out where memory allows
    refine(placement, macs_limit=(1 + SLACK) * macs.sum() / count)
    return checked(graph, hardware, placement.node_of, "metis")


def _csr(graph: DataflowGraph) -> tuple[list[int], list[int], list[int]]:
    """The undirected (producer, reader) graph as METIS's xadj/adjncy/eweights lists."""
    size = len(graph)
    producer = graph.value_producer[graph.edge_value].astype(np.int64)
    reader = graph.edge_dst.astype(np.int64)
    readers = np.bincount(graph.edge_value, minlength=len(graph.value_words))
    share = graph.value_words[graph.edge_value] * EDGE_SCALE / readers[graph.edge_value]
    keys = np.concatenate([producer * size + reader, reader * size + producer])
    keys, where = np.unique(keys, return_inverse=True)
    weights = np.bincount(where, np.concatenate([share, share]))
    rows, cols = keys // size, keys % size
    xadj = np.searchsorted(rows, np.arange(size + 1))
    weights = np.clip(np.round(weights), 1, 1 << 24).astype(np.int64)
    return xadj.tolist(), cols.tolist(), weights.tolist()
