"""Dataflow models on the kernel: the same predictions whatever the folding, and the timing model."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO
from dataflow_runs import dense_model, graph, hardware, images

from nnsim.dataflow import (
    DataflowGraph,
    DataflowResult,
    Hardware,
    LinkType,
    NodeType,
    build_dataflow,
    fold,
    run_dataflow,
    strategies,
)
from nnsim.dataflow.mapping import Mapping
from nnsim.errors import NnsimError
from nnsim.sim import Simulation

SIZES = ((16, 8, 4), (12, 6, 3))


def hand_made(g: DataflowGraph) -> dict[str, Mapping]:
    """All on one node, one vertex per node, and a split of every layer over three nodes."""
    count = len(g)
    return {
        "one node": Mapping(np.zeros(count, dtype=np.int32), 1),
        "one to one": Mapping(np.arange(count, dtype=np.int32), count),
        "split": Mapping((np.arange(count) % 3).astype(np.int32), 3),
    }


def agrees(result: DataflowResult, model, x: np.ndarray) -> None:
    reference = model.logits(x)
    assert np.array_equal(result.predictions, model.predict(x))
    np.testing.assert_allclose(result.logits, reference, rtol=1e-5, atol=1e-6)
    assert result.missing.size == 0


@pytest.mark.parametrize("granularity", ["neuron", "pixel"])
@pytest.mark.parametrize("sizes", SIZES)
def test_hand_made_mappings_predict_what_the_dense_model_predicts(sizes, granularity):
    model = dense_model(sizes)
    g = DataflowGraph.from_model(model, granularity)
    x = images(12, sizes[0])
    logits = []
    for mapping in hand_made(g).values():
        result = run_dataflow(g, hardware(mapping.nodes), mapping, x)
        agrees(result, model, x)
        logits.append(result.logits)
    for other in logits[1:]:  # folding changes timing, never results: the same bits
        assert np.array_equal(other, logits[0])


@pytest.mark.parametrize("granularity", ["neuron", "pixel"])
def test_every_folding_strategy_gives_the_same_results_and_its_own_timing(granularity):
    model = dense_model((16, 8, 4))
    g = DataflowGraph.from_model(model, granularity)
    x = images(10, 16)
    ends, reference = {}, None
    for strategy in sorted(strategies()):
        nodes = len(g) if strategy == "none" else 4
        if strategy == "metis":
            pytest.importorskip("pymetis")
        hw = hardware(nodes, "ring" if strategy == "balanced" else "full")
        result = run_dataflow(g, hw, fold(g, hw, strategy), x)
        agrees(result, model, x)
        if reference is None:
            reference = result.logits
        assert np.array_equal(result.logits, reference), strategy
        ends[strategy] = result.end_ps
    assert len(set(ends.values())) > 1, ends  # the foldings time differently


def test_a_softmax_output_layer_predicts_the_argmax_of_its_logits():
    model = dense_model((12, 6, 3), output="softmax")
    g = DataflowGraph.from_model(model)
    x = images(8, 12)
    agrees(
        run_dataflow(g, hardware(2), Mapping((np.arange(len(g)) % 2).astype(np.int32), 2), x),
        model,
        x,
    )


def two_node_example() -> tuple[DataflowGraph, Hardware, Mapping, np.ndarray]:
    """4-2-2: node0 holds the source and dense1, node1 dense2 and the sink."""
    g = graph((4, 2, 2))
    hw = Hardware(
        count=2,
        node=NodeType(clock="1GHz", macs_per_cycle=2),
        link=LinkType(latency=3, width=32),
        word_bits=32,
    )
    # vertices: source, dense1/n0, dense1/n1, dense2/n0, dense2/n1, sink
    mapping = Mapping(np.array([0, 0, 0, 1, 1, 1], dtype=np.int32), 2)
    return g, hw, mapping, images(3, 4)


def test_the_timing_of_a_two_node_example_is_the_hand_computed_one():
    g, hw, mapping, x = two_node_example()
    result = run_dataflow(g, hw, mapping, x)
    ns = 1000  # ps per cycle at 1 GHz
    # A dense1 neuron: ceil(4 inputs / 2 MACs) = 2 cycles; node0's task (both neurons) 4 cycles.
    # A dense2 neuron: ceil(2 / 2) = 1 cycle, task 2 cycles; the sink: ceil(2 / 2) = 1 cycle.
    # A frame of one word holds the link for ceil(32 bits / 32 bits per cycle) = 1 cycle and
    # arrives 3 cycles (the latency) after that: links are pipelined.
    # Image 0: injected at 0, consumed on node0 itself: dense1 0-4; its two outputs leave at 4
    # one after the other on the one link: 4-5 (arrives 8) and 5-6 (arrives 9); dense2 9-11;
    # sink 11-12. Image 1 is injected when node0 starts image 0 (at 0, nothing to wait for on
    # a link); dense1 runs 4-8, frames 8-9 and 9-10 (arrive 12, 13), dense2 13-15, sink 15-16.
    # Image 2 is injected when node0 starts image 1 (4): dense1 8-12; node1 holds two images
    # (0 and 1) until it is done with image 0 at 12, and its credit takes 3 cycles back: the
    # frames wait at node0 until 15, leave 15-16 and 16-17 (arrive 19, 20); dense2 20-22, sink
    # 22-23. The credit round trip is the bottleneck here, not the link.
    assert result.inject_ps.tolist() == [0, 0, 4 * ns]
    assert result.done_ps.tolist() == [12 * ns, 16 * ns, 23 * ns]
    assert result.end_ps == 23 * ns
    busy = {node.name: node.busy_ps for node in result.nodes}
    assert busy == {"node0": 3 * 4 * ns, "node1": 3 * (2 + 1) * ns}
    (forward,) = [link for link in result.links if link.source == "node0"]
    assert (forward.frames, forward.words, forward.busy_ps) == (6, 6, 6 * 1 * ns)
    path = [(s.kind, s.name, s.start_ps // ns, s.end_ps // ns) for s in result.critical_path]
    assert path == [
        ("vertex", "source", 0, 0),
        ("vertex", "dense1/n1", 0, 4),  # its output is the second frame: the last to arrive
        ("link", "node0->node1", 5, 9),  # starts across at 5, its last word arrives at 9
        ("vertex", "dense2/n1", 9, 11),
        ("vertex", "sink", 11, 12),
    ]
    assert result.layers[0].first_image_done_ps == 4 * ns
    assert result.first_latency_ps == 12 * ns


def test_a_fixed_interval_injects_at_that_rate_and_frames_queue_on_a_link():
    g, hw, mapping, x = two_node_example()
    result = run_dataflow(g, hw, mapping, x, interval="2ns")
    ns = 1000
    assert result.inject_ps.tolist() == [0, 2 * ns, 4 * ns]
    # dense1 of image 1 waits for the MAC array (4-8), image 2 runs 8-12. An image's second
    # frame waits for the first to leave: 4-5 then 5-6 (image 0), 8-9 then 9-10 (image 1);
    # image 2's wait for node1's credit (its two buffers hold images 0 and 1 until 12, the
    # credit arrives at 15): 15-16 and 16-17, arriving 19 and 20, dense2 20-22, sink 22-23.
    assert result.done_ps.tolist() == [12 * ns, 16 * ns, 23 * ns]


def test_a_multi_hop_route_is_store_and_forward():
    """source on node0, dense1 on node1, dense2 and sink on node2 of a 3-node line (ring)."""
    g = graph((4, 2, 2))
    hw = Hardware(
        count=4,
        topology="ring",
        node=NodeType(macs_per_cycle=2),
        link=LinkType(latency=3, width=32),
    )
    mapping = Mapping(np.array([0, 2, 2, 2, 2, 2], dtype=np.int32), 4)
    result = run_dataflow(g, hw, mapping, images(1, 4))
    ns = 1000
    # The image (4 words): 3 + ceil(128 / 32) = 7 cycles per hop, node0 -> node1 -> node2.
    hops = [
        (s.name, s.start_ps // ns, s.end_ps // ns) for s in result.critical_path if s.kind == "link"
    ]
    assert hops == [("node0->node1", 0, 7), ("node1->node2", 7, 14)]
    assert result.done_ps.tolist() == [(14 + 4 + 2 + 1) * ns]
    relay = {(link.source, link.target): link.frames for link in result.links}
    assert relay[("node1", "node2")] == 1 and relay[("node1", "node0")] == 0


def test_multicast_sends_a_value_once_per_node():
    g = graph((4, 3, 2))
    # source on node0; the three dense1 neurons on node1: the image crosses once.
    mapping = Mapping(np.array([0, 1, 1, 1, 1, 1, 1], dtype=np.int32), 2)
    result = run_dataflow(g, hardware(2), mapping, images(5, 4))
    (link,) = [each for each in result.links if each.source == "node0"]
    assert (link.frames, link.words) == (5, 5 * 4)


def test_a_mapping_that_does_not_fit_is_refused_before_anything_is_built():
    g = graph((16, 8, 4))
    tiny = Hardware(count=1, node=NodeType(memory_words=50))
    sim = Simulation()
    with pytest.raises(NnsimError, match="node0 needs .* words of memory"):
        build_dataflow(sim, g, tiny, Mapping(np.zeros(len(g), dtype=np.int32), 1), images(2, 16))
    assert sim.components == {}
    with pytest.raises(NnsimError, match="does not fit the graph"):
        build_dataflow(sim, g, hardware(2), Mapping(np.zeros(3, dtype=np.int32), 2), images(2, 16))


def test_images_of_the_wrong_width_are_one_clear_error():
    g = graph((16, 8, 4))
    with pytest.raises(NnsimError, match="model takes rows of 16"):
        run_dataflow(g, hardware(1), Mapping(np.zeros(len(g), dtype=np.int32), 1), images(2, 12))


def test_the_pure_python_queue_gives_the_same_run():
    script = """
import numpy as np, sys
sys.path.insert(0, "tests")
from dataflow_runs import dense_model, hardware, images
from nnsim.dataflow import DataflowGraph, run_dataflow
from nnsim.dataflow.mapping import Mapping
from nnsim.sim.queue import EventQueue
model = dense_model((12, 6, 3))
g = DataflowGraph.from_model(model, "pixel")
r = run_dataflow(g, hardware(3), Mapping((np.arange(len(g)) % 3).astype(np.int32), 3), images(6, 12),
                 corrupt_rate=0.01, seed=3)
print(EventQueue.__module__, r.end_ps, r.events, r.bits_flipped, r.predictions.tolist(),
      r.done_ps.tolist())
"""
    outputs = []
    for pure in ("", "1"):
        env = {**os.environ, "NNSIM_PURE_PYTHON": pure}
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, env=env,
            timeout=120, check=True,
        )  # fmt: skip
        outputs.append(done.stdout.split(" ", 1))
    assert outputs[0][0] != outputs[1][0]  # the compiled queue, then the Python one
    assert outputs[0][1] == outputs[1][1]
