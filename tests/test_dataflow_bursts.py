"""Bursts: a task's one-word outputs to one node delivered as one event change no report.

`Node._burst_plan` is the optimization's one switch: with it off, every value
is its own `Frame` event. Both runs must report the same times, traffic and
predictions; only the kernel's event count (``events``) may differ, and must
be lower with bursts.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from dataflow_runs import assert_same_result, graph, hardware, images

from nnsim.dataflow import fold, run_dataflow
from nnsim.dataflow.mapping import Mapping
from nnsim.dataflow.node import Node


def without_events(result):
    return dataclasses.replace(result, events=0)


@pytest.mark.parametrize(
    ("granularity", "topology", "strategy", "nodes"),
    [
        ("neuron", "full", "balanced", 4),
        ("neuron", "full", "alternate", 3),  # runs of two value ids per node
        ("neuron", "mesh2d", "balanced", 4),  # multi-hop routes keep their frames
        ("pixel", "full", "balanced", 4),
    ],
)
def test_bursts_report_exactly_what_one_event_per_frame_reports(
    monkeypatch, granularity, topology, strategy, nodes
):
    g = graph((12, 9, 4), granularity)
    hw = hardware(nodes, topology)
    if strategy == "alternate":  # source, dense1 n0..n8 two by two on nodes 0 and 1, rest on 2
        node_of = [0] + [j // 2 % 2 for j in range(9)] + [2] * 5
        mapping = Mapping(np.array(node_of, dtype=np.int32), nodes)
    else:
        mapping = fold(g, hw, strategy)
    x = images(12, 12)
    with_bursts = run_dataflow(g, hw, mapping, x)
    monkeypatch.setattr(Node, "_burst_plan", lambda self, group: None)
    one_per_frame = run_dataflow(g, hw, mapping, x)
    assert_same_result(without_events(with_bursts), without_events(one_per_frame))
    assert np.all(with_bursts.predictions >= 0)
    if topology == "full":  # some task's outputs went as bursts: fewer kernel events
        assert with_bursts.events < one_per_frame.events


def test_bursts_in_flight_survive_a_checkpoint_and_the_restart_goes_on_identically(tmp_path):
    from nnsim.checkpoint import open_storage
    from nnsim.checkpoint.manager import enable
    from nnsim.dataflow import DataflowResult, build_dataflow
    from nnsim.dataflow.events import Burst
    from nnsim.sim import Simulation
    from nnsim.state import restore

    g = graph((12, 9, 4))
    hw = hardware(3)
    mapping = fold(g, hw, "balanced")
    x = images(10, 12)

    def build() -> Simulation:
        sim = Simulation(seed=3)
        build_dataflow(sim, g, hw, mapping, x)
        return sim

    straight = build()
    straight.run()
    paused = build()
    enable(paused, str(tmp_path / "ckpt"), announce=False)
    for stop in range(1000, 200_000, 1000):  # to a moment with a burst on a link
        assert paused.run(until=stop) == "paused"
        if any(type(entry.payload) is Burst for entry in paused.pending()):
            break
    else:
        pytest.fail("no burst was ever in flight")
    name = paused.checkpoint()
    restarted = restore(*open_storage(str(tmp_path / "ckpt")).load(name))
    restarted.run()
    assert_same_result(
        DataflowResult.from_simulation(restarted), DataflowResult.from_simulation(straight)
    )
