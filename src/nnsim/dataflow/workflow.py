"""The pieces of a dataflow run, as functions: prepare, build, collect, compare, report.

`prepare` reads the weights (`nnsim.interop.load_model`), builds the
neuron-level graph, the hardware with ``--nodes`` nodes, the mapping (a
folding strategy's, or a JSON file), checks it against every capacity and
reads the images; `build` puts the timing model on a `Simulation`,
`collect` reads its `DataflowResult`, `compare_result` compares it with a
reference. ``nnsim dataflow run`` strings them together around nnsim's run
orchestration (`nnsim.dataflow_runner.run_model`); ``explore`` and the
benchmark call them directly.

Every refusal (a missing file, an unknown strategy, a mapping for another
graph, a capacity exceeded, ``--nodes 0``) is one `NnsimError` line, raised
before anything is simulated or written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nnsim.dataflow.capacity import Usage
from nnsim.dataflow.compare import Agreement, compare
from nnsim.dataflow.fold import get_strategy
from nnsim.dataflow.graph import GRANULARITIES, DataflowGraph
from nnsim.dataflow.hardware import Hardware
from nnsim.dataflow.images import ImageSet, load_images
from nnsim.dataflow.mapping import Mapping
from nnsim.dataflow.result import DataflowResult
from nnsim.errors import NnsimError
from nnsim.interop.model import DenseModel


@dataclass
class Setup:
    """Everything a dataflow run is made of, checked: what `prepare` returns."""

    model: DenseModel
    graph: DataflowGraph
    hardware: Hardware
    mapping: Mapping
    images: ImageSet
    usage: Usage | None = None  # the capacity check's: memory, ports, MACs per node


@dataclass
class DataflowRun:
    """A finished run: its setup, the timing model's result, the comparisons, the files written."""

    setup: Setup
    result: DataflowResult | None  # None on the ranks other than 0 of a parallel run
    agreements: list[Agreement] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    wall_seconds: float = 0.0

    def summary_lines(self) -> list[str]:
        from nnsim.dataflow.report import summary_lines

        return summary_lines(self)


def prepare(
    *,
    weights: str | Path,
    hardware: str | Path,
    fold: str | None = None,
    mapping: str | Path | None = None,
    nodes: int | None = None,
    granularity: str = "neuron",
    images: str | Path = "test",
    limit: int | None = None,
) -> Setup:
    """Load, build, fold (or read the mapping) and check; nothing is simulated yet."""
    from nnsim.interop import load_model

    if (fold is None) == (mapping is None):
        raise NnsimError("give either --fold STRATEGY or --mapping FILE")
    if weights is None or hardware is None:
        raise NnsimError("give --weights PATH and --hardware HW.toml")
    if granularity not in GRANULARITIES:
        raise NnsimError(f"granularity '{granularity}' is not one of {', '.join(GRANULARITIES)}")
    if fold is not None:
        get_strategy(fold)  # an unknown name is refused before anything is read
    hw = Hardware.load(hardware)
    if nodes is not None:
        if nodes < 1:
            raise NnsimError(f"--nodes must be at least 1, not {nodes}")
        hw = hw.with_nodes(nodes)
    model = load_model(weights)
    pictures = load_images(images, limit)
    if pictures.pixels.shape[1] != model.input_size:
        raise NnsimError(
            f"the model in '{weights}' takes {model.input_size} inputs but the images have "
            f"{pictures.pixels.shape[1]} pixels"
        )
    graph = DataflowGraph.from_model(model, granularity)
    if mapping is not None:
        placed = load_mapping(mapping, graph, hw)
    else:
        placed = fold_graph(fold, graph, hw)
    usage = check(graph, hw, placed)
    return Setup(model, graph, hw, placed, pictures, usage)


def fold_graph(strategy: str, graph: DataflowGraph, hardware: Hardware) -> Mapping:
    """The mapping the registered folding strategy ``strategy`` makes (did-you-mean if unknown)."""
    from nnsim.dataflow.fold import fold

    return fold(graph, hardware, strategy)


def load_mapping(path: str | Path, graph: DataflowGraph, hardware: Hardware) -> Mapping:
    """A mapping JSON file, refused in one line when it is for another graph or hardware."""
    return Mapping.load(path, graph, hardware)


def check(graph: DataflowGraph, hardware: Hardware, mapping: Mapping):
    """The capacity check: every node's memory, ports and MACs (one line for the first excess)."""
    from nnsim.dataflow.capacity import check_mapping

    return check_mapping(graph, hardware, mapping)


def compare_result(name: str, setup: Setup, predictions, *, answered=None) -> Agreement:
    return compare(
        name, setup.model, setup.images.pixels, np.asarray(predictions), answered=answered
    )


def build(sim, setup: Setup, *, interval=None, corrupt_rate=0.0, crashes=()) -> None:
    """The timing model of ``setup`` on ``sim`` (`nnsim.dataflow.build.build_dataflow`).

    The images go by name (``test``, a folder) and count, so a checkpoint
    holds no pixels and a restart reads them again.
    """
    from nnsim.dataflow.build import build_dataflow

    build_dataflow(
        sim,
        setup.graph,
        setup.hardware,
        setup.mapping,
        setup.images.spec,
        limit=len(setup.images),
        interval=interval,
        corrupt_rate=corrupt_rate,
        crashes=[(crash.node, crash.time) for crash in crashes],
    )


def collect(sim):
    """The `DataflowResult` of a run (finished, stopped or restored)."""
    from nnsim.dataflow.result import DataflowResult

    return DataflowResult.from_simulation(sim)


def output_folder(output: str | Path | None) -> Path | None:
    """The report folder; its parent must exist (the folder itself is made at the end)."""
    if output is None:
        return None
    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise NnsimError(f"--output '{folder}' is a file; give a folder")
    if not folder.exists():
        check_parent(folder, "--output")
    return folder


def check_parent(path: str | Path, option: str) -> None:
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise NnsimError(f"the folder of {option} '{path}' does not exist")
