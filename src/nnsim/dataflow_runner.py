"""What ``nnsim dataflow run`` does, as one function: `run_model`.

The dataflow run's pieces (`nnsim.dataflow.workflow`: weights, graph,
hardware, mapping, capacity check, images, the timing model) driven by the
same orchestration as ``nnsim run`` (`nnsim.runner.run_prepared`:
checkpoints, event tracing, statistics, progress, the console a Ctrl-C
away), then compared with the references asked for and written as
reports::

    from nnsim.dataflow_runner import run_model

    outcome = run_model(weights="runs/mlp-128", hardware="examples/dataflow/hw/mesh16.toml",
                        fold="balanced", nodes=8, limit=500, compare=["onnxruntime"])
    outcome.result.predictions, outcome.agreements[0].percent
    print("\\n".join(outcome.summary_lines()))

Started by ``mpiexec -n R``, the run is parallel (`nnsim.runner.run_parallel_prepared`):
every rank builds the model, each hardware node runs on one rank (the
nodes' placement hints, `nnsim.dataflow.build.place_by_node`), and rank 0
ends with the serial run's state, so its result, reports and comparisons
are the serial ones; the other ranks return no result.

It sits beside `nnsim.runner`, not inside ``dataflow/``, because it drives
the runner (which also knows training's run folders): ``dataflow/`` itself
never reaches ``train/``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from nnsim.dataflow.compare import check_reference
from nnsim.dataflow.faults import check_corrupt_rate, parse_crashes
from nnsim.dataflow.workflow import (
    DataflowRun,
    Setup,
    build,
    check_parent,
    collect,
    compare_result,
    output_folder,
    prepare,
)
from nnsim.errors import NnsimError


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
    partitioner: str | None = None,
    output_partition: str | Path | None = None,
    **run_options,
) -> DataflowRun:
    """Everything ``nnsim dataflow run`` does: prepare, simulate, compare, report.

    ``run_options`` are `nnsim.runner.run_prepared`'s (``statistics``,
    ``trace_events``, ``checkpoint``, ``interactive_start``, ``replay``,
    ``output_dot``); ``partitioner`` and ``output_partition`` are for
    parallel runs. Under ``mpiexec``, ranks other than 0 return a run
    whose ``result`` is None (rank 0 has the whole result).
    """
    from nnsim.errors import ParamError
    from nnsim.runner import parallel_launched, run_parallel_prepared, run_prepared
    from nnsim.sim import Simulation

    wanted = list(dict.fromkeys(compare))
    for name in wanted:
        check_reference(name)
    check_corrupt_rate(corrupt_rate)
    out = output_folder(output)
    if save_mapping is not None:
        check_parent(save_mapping, "--save-mapping")
    if load_checkpoint and (weights is None or hardware is None):
        raise NnsimError(
            "restarting a dataflow run takes the options that built it: --weights, --hardware, "
            "--fold or --mapping, and --nodes, --images, --limit as they were"
        )
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

    def make() -> Simulation:
        if load_checkpoint:
            return restore_run(
                load_checkpoint, setup, stop_at=stop_at, verbose=verbose, overrides=overrides
            )
        sim = Simulation(seed=seed, stop_at=stop_at, verbose=verbose)
        build(sim, setup, interval=interval, corrupt_rate=corrupt_rate, crashes=faults)
        if overrides:
            from nnsim.state.paths import set_value

            for path, text in overrides.items():
                set_value(sim, path, text)
        return sim

    parallel = parallel_launched()
    root = True
    if parallel:
        from nnsim.parallel import world

        root = world().root
        sim = run_parallel_prepared(
            make,
            partitioner=partitioner,
            output_partition=output_partition,
            **run_options,
        )
    else:
        if partitioner is not None or output_partition:
            raise ParamError(
                "--partitioner and --output-partition are for parallel runs: "
                "mpiexec -n R nnsim dataflow run ... --partitioner NAME"
            )
        sim = make()
    if save_mapping is not None and root:
        setup.mapping.save(save_mapping, setup.graph, setup.hardware)
    if not parallel:
        run_prepared(sim, progress=progress, **run_options)
    if not root:
        return DataflowRun(setup, None, wall_seconds=time.perf_counter() - start)
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
