"""A mapping: which hardware node hosts each vertex of a dataflow graph.

A mapping is data, as Timeloop's map files are: written by a folding
strategy, saved as JSON, edited by hand, loaded and evaluated again. It is
only ever used after a capacity check against the hardware.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnsim.dataflow.graph import DataflowGraph
from nnsim.dataflow.hardware import Hardware


@dataclass(frozen=True)
class Mapping:
    """``node_of[v]`` is the node (0..nodes-1) hosting vertex ``v``; ``strategy`` says who made it."""

    node_of: np.ndarray  # [vertices] int32
    nodes: int
    strategy: str = "manual"

    def hosted(self, node: int) -> np.ndarray:
        """Vertex ids on ``node``, in vertex order (the order the node computes them in)."""
        return np.flatnonzero(self.node_of == node)

    def used_nodes(self) -> np.ndarray:
        return np.unique(self.node_of)


def fits(graph: DataflowGraph, hardware: Hardware, mapping: Mapping) -> bool:
    """Shape check only: one node per vertex, every node id inside the hardware."""
    return (
        mapping.node_of.shape == (len(graph),)
        and mapping.nodes == hardware.count
        and bool(((mapping.node_of >= 0) & (mapping.node_of < hardware.count)).all())
    )
