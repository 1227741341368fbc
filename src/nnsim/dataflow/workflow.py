"""What ``nnsim dataflow run`` does, as one function: `run_model`.

Weights in (`nnsim.interop.load_model`), the neuron-level graph, the
hardware with ``--nodes`` nodes, a mapping (a folding strategy's, or a JSON
file), the capacity check, the images; then the timing model is built on a
`Simulation` and run exactly as ``nnsim run`` runs a model script
(`nnsim.runner.run_prepared`: checkpoints, event tracing, statistics, the
console), and the outcome is compared with the references asked for and
written as reports::

    from nnsim.dataflow.workflow import run_model

    outcome = run_model(weights="runs/mlp-128", hardware="examples/dataflow/hw/mesh16.toml",
                        fold="balanced", nodes=8, limit=500, compare=["onnxruntime"])
    outcome.result.predictions, outcome.agreements[0].percent
    print("\\n".join(outcome.summary_lines()))

Every refusal (a missing file, an unknown strategy, a mapping for another
graph, a capacity exceeded, ``--nodes 0``) is one `NnsimError` line, raised
before anything is simulated or written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nnsim.dataflow.compare import Agreement, check_reference, compare
from nnsim.dataflow.faults import check_corrupt_rate, parse_crashes
from nnsim.dataflow.graph import DataflowGraph
from nnsim.dataflow.hardware import Hardware
from nnsim.dataflow.images import ImageSet, load_images
from nnsim.dataflow.mapping import Mapping
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
    usage: object = None  # the capacity check's Usage (memory, ports, MACs per node)


@dataclass
class DataflowRun:
    """A finished run: its setup, the timing model's result, the comparisons, the files written."""

    setup: Setup
    result: object  # nnsim.dataflow DataflowResult
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


def run_model(
    *,
    weights: str | Path | None = None,
    hardware: str | Path | None = None,
    fold: str | None = None,
    mapping: str | Path | None = None,
    nodes: int | None = None,
    granularity: str = "neuron",
    images: str | Path = "test",
    limit: int | None = None,
    interval: str | None = None,
    compare: list[str] | tuple[str, ...] = (),
    output: str | Path | None = None,
    save_mapping: str | Path | None = None,
    corrupt_rate: float = 0.0,
    crashes: list[str] | tuple[str, ...] = (),
    seed: int = 0,
    stop_at: str | None = None,
    verbose: int = 0,
    load_checkpoint: str | None = None,
    overrides: dict[str, str] | None = None,
    progress: str = "auto",
    **run_options,
) -> DataflowRun:
    """Everything ``nnsim dataflow run`` does: prepare, simulate, compare, report.

    ``run_options`` are `nnsim.runner.run_prepared`'s (``statistics``,
    ``trace_events``, ``checkpoint``, ``interactive_start``, ``replay``,
    ``output_dot``).
    """
    from nnsim.runner import run_prepared
    from nnsim.sim import Simulation

    wanted = list(dict.fromkeys(compare))
    for name in wanted:
        check_reference(name)
    check_corrupt_rate(corrupt_rate)
    out = _output_folder(output)
    if save_mapping is not None:
        _check_parent(save_mapping, "--save-mapping")
    start = time.perf_counter()
    setup = prepare(
        weights=weights,
        hardware=hardware,
        fold=fold,
        mapping=mapping,
        nodes=nodes,
        granularity=granularity,
        images=images,
        limit=limit,
    )
    faults = parse_crashes(crashes, setup.hardware.count)
    if load_checkpoint:
        sim = restore_run(
            load_checkpoint, setup, stop_at=stop_at, verbose=verbose, overrides=overrides
        )
    else:
        sim = Simulation(seed=seed, stop_at=stop_at, verbose=verbose)
        build(sim, setup, interval=interval, corrupt_rate=corrupt_rate, crashes=faults)
        if overrides:
            from nnsim.state.paths import set_value

            for path, text in overrides.items():
                set_value(sim, path, text)
    if save_mapping is not None:
        setup.mapping.save(save_mapping, setup.graph, setup.hardware)
    run_prepared(sim, progress=progress, **run_options)
    result = collect(sim)
    outcome = DataflowRun(setup, result, wall_seconds=time.perf_counter() - start)
    answered = np.asarray(result.predictions) >= 0
    for name in wanted:
        outcome.agreements.append(
            compare_result(name, setup, result.predictions, answered=answered)
        )
    if out is not None:
        from nnsim.dataflow.report import write_reports

        outcome.written = write_reports(outcome, out)
    return outcome


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


def restore_run(location: str, setup: Setup, *, stop_at=None, verbose: int = 0, overrides=None):
    """The dataflow simulation of a checkpoint, checked to be the run ``setup`` describes.

    A checkpoint rebuilds the model from registered types alone; the
    options that built the run give the setup the reports and comparisons
    need, and must describe the same graph, mapping and images.
    """
    from nnsim.runner import load_simulation

    sim = load_simulation(location, overrides=overrides, verbose=verbose)
    sim.set_stop_at(stop_at)
    sink, source = sim.components.get("sink"), sim.components.get("source")
    if sink is None or source is None or not hasattr(sink, "node_of"):
        raise NnsimError(f"checkpoint '{location}' is not of a dataflow run (no source and sink)")
    same = (
        np.array_equal(np.asarray(sink.node_of), setup.mapping.node_of)
        and int(sink.count) == len(setup.images)
        and len(sink.vertex_names) == len(setup.graph)
    )
    if not same:
        raise NnsimError(
            f"checkpoint '{location}' is of another dataflow run ({len(sink.vertex_names)} "
            f"vertices, {int(sink.count)} images); give the --weights, --hardware, --fold or "
            "--mapping, --nodes, --images and --limit of the run that wrote it"
        )
    return sim


def _output_folder(output: str | Path | None) -> Path | None:
    """The report folder; its parent must exist (the folder itself is made at the end)."""
    if output is None:
        return None
    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise NnsimError(f"--output '{folder}' is a file; give a folder")
    if not folder.exists():
        _check_parent(folder, "--output")
    return folder


def _check_parent(path: str | Path, option: str) -> None:
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise NnsimError(f"the folder of {option} '{path}' does not exist")
