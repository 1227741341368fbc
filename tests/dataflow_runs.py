"""Small dense models, images and hardware for the dataflow timing tests, made in the test."""

from __future__ import annotations

import dataclasses

import numpy as np

from nnsim.dataflow import DataflowGraph, DataflowResult, Hardware, LinkType, NodeType
from nnsim.interop.model import DenseLayer, DenseModel


def dense_model(sizes: tuple[int, ...], seed: int = 0, output: str = "linear") -> DenseModel:
    """Random weights (scaled so that ReLUs are neither all on nor all off)."""
    rng = np.random.default_rng(seed)
    layers = []
    for index, (inputs, outputs) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        last = index == len(sizes) - 2
        layers.append(
            DenseLayer(
                f"dense{index + 1}",
                (rng.standard_normal((inputs, outputs)) / np.sqrt(inputs)).astype(np.float32),
                (0.1 * rng.standard_normal(outputs)).astype(np.float32),
                output if last else "relu",
            )
        )
    return DenseModel(tuple(layers))


def images(count: int, size: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (count, size)).astype(np.float32)


def hardware(count: int, topology: str = "full", **node: int) -> Hardware:
    """Hardware with room for any small mapping (ports and memory are not what is tested)."""
    settings = {"input_ports": 64, "output_ports": 64, "macs_per_cycle": 4, **node}
    return Hardware(
        count=count,
        topology=topology,
        node=NodeType(**settings),
        link=LinkType(latency=2, width=32),
    )


def graph(sizes: tuple[int, ...], granularity: str = "neuron", seed: int = 0) -> DataflowGraph:
    return DataflowGraph.from_model(dense_model(sizes, seed), granularity)


def assert_same_result(a: DataflowResult, b: DataflowResult) -> None:
    """Every field equal (arrays bit for bit, NaN rows included)."""
    for field in dataclasses.fields(DataflowResult):
        left, right = getattr(a, field.name), getattr(b, field.name)
        if isinstance(left, np.ndarray):
            assert np.array_equal(left, right, equal_nan=True), field.name
        else:
            assert left == right, field.name
