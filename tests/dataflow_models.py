"""Small dense models for the dataflow tests, made in the test from a seed."""

from __future__ import annotations

import numpy as np

from nnsim.dataflow import DataflowGraph, Hardware
from nnsim.interop.model import DenseLayer, DenseModel


def dense_model(*sizes: int, seed: int = 0) -> DenseModel:
    """A ReLU MLP of ``sizes`` (input first) with seeded random weights, logits out."""
    rng = np.random.default_rng(seed)
    layers = []
    for number, (inputs, outputs) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(
            DenseLayer(
                f"dense{number + 1}",
                rng.normal(0, 0.3, size=(inputs, outputs)).astype(np.float32),
                rng.normal(0, 0.1, size=outputs).astype(np.float32),
                "relu" if number < len(sizes) - 2 else "linear",
            )
        )
    return DenseModel(tuple(layers))


def graph(*sizes: int, granularity: str = "neuron") -> DataflowGraph:
    return DataflowGraph.from_model(dense_model(*sizes), granularity)


def hardware(count: int, topology: str = "full", memory: int = 1 << 20, **node) -> Hardware:
    """Identical nodes with ``memory`` words and generous ports unless told otherwise."""
    from nnsim.dataflow import NodeType

    ports = {"input_ports": 64, "output_ports": 64, **node}
    return Hardware(
        name="test", node=NodeType(memory_words=memory, **ports), topology=topology, count=count
    )
