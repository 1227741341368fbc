"""One call for a whole dataflow run: build it on a new simulation, run it, read the result."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnsim.dataflow.build import build_dataflow
from nnsim.dataflow.graph import DataflowGraph
from nnsim.dataflow.hardware import Hardware
from nnsim.dataflow.mapping import Mapping
from nnsim.dataflow.result import DataflowResult
from nnsim.sim import Simulation


def run_dataflow(
    graph: DataflowGraph,
    hardware: Hardware,
    mapping: Mapping,
    images: np.ndarray | str,
    labels: np.ndarray | None = None,
    *,
    seed: int = 0,
    **options: Any,
) -> DataflowResult:
    """`build_dataflow` on a new ``Simulation(seed)``, run to the end, `DataflowResult` of it.

    ``options`` are `build_dataflow`'s (``interval``, ``corrupt_rate``,
    ``crashes``, ``limit``). For checkpoints, the console or tracing, build
    on your own simulation (or a model script under ``nnsim run``) instead.
    """
    sim = Simulation(seed=seed)
    build_dataflow(sim, graph, hardware, mapping, images, labels, **options)
    sim.run()
    return DataflowResult.from_simulation(sim)
