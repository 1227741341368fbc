"""Neuron-level dataflow models: a graph of one vertex per neuron, folded onto hardware nodes.

``graph`` builds the vertices and edges of a dense model (``nnsim.interop``
reads the weights); ``hardware`` describes the nodes and links; a mapping
places every vertex on a node; the timing model runs it on nnsim's kernel.
"""

from nnsim.dataflow.build import build_dataflow
from nnsim.dataflow.graph import GRANULARITIES, DataflowGraph, Vertex
from nnsim.dataflow.hardware import Hardware, HardwareError, LinkType, NodeType
from nnsim.dataflow.result import DataflowResult, LayerReport, LinkReport, NodeReport, PathStep
from nnsim.dataflow.run import run_dataflow

__all__ = [
    "GRANULARITIES",
    "DataflowGraph",
    "DataflowResult",
    "LayerReport",
    "LinkReport",
    "NodeReport",
    "PathStep",
    "build_dataflow",
    "run_dataflow",
    "Hardware",
    "HardwareError",
    "LinkType",
    "NodeType",
    "Vertex",
]
