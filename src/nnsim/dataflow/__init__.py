"""Neuron-level dataflow models: a graph of one vertex per neuron, folded onto hardware nodes.

``graph`` builds the vertices and edges of a dense model (``nnsim.interop``
reads the weights); ``hardware`` describes the nodes and links; a
``mapping`` places every vertex on a node (JSON, editable by hand), made by a
folding strategy (``fold``) and checked against every node's memory, ports
and MACs (``capacity``); ``traffic`` says what crosses each link; the timing
model runs it on nnsim's kernel.
"""

from nnsim.dataflow.build import build_dataflow
from nnsim.dataflow.capacity import CapacityError, Usage, check_mapping, usage
from nnsim.dataflow.fold import (
    FoldError,
    fold,
    get_strategy,
    register_strategy,
    strategies,
    unregister_strategy,
)
from nnsim.dataflow.graph import GRANULARITIES, DataflowGraph, Vertex
from nnsim.dataflow.hardware import Hardware, HardwareError, LinkType, NodeType
from nnsim.dataflow.mapping import Mapping, MappingError
from nnsim.dataflow.result import DataflowResult, LayerReport, LinkReport, NodeReport, PathStep
from nnsim.dataflow.run import run_dataflow
from nnsim.dataflow.traffic import Traffic, cut_words, traffic

__all__ = [
    "GRANULARITIES",
    "CapacityError",
    "DataflowGraph",
    "DataflowResult",
    "FoldError",
    "Hardware",
    "HardwareError",
    "LayerReport",
    "LinkReport",
    "LinkType",
    "Mapping",
    "MappingError",
    "NodeReport",
    "NodeType",
    "PathStep",
    "Traffic",
    "Usage",
    "Vertex",
    "build_dataflow",
    "check_mapping",
    "cut_words",
    "fold",
    "get_strategy",
    "register_strategy",
    "run_dataflow",
    "strategies",
    "traffic",
    "unregister_strategy",
    "usage",
]
