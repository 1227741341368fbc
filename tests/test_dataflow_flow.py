"""Bounded input buffers: credit-based flow control keeps latency flat and cannot deadlock."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from dataflow_runs import dense_model, hardware, images

from nnsim.dataflow import DataflowGraph, Hardware, fold, run_dataflow
from nnsim.dataflow.hardware import HardwareError
from nnsim.dataflow.mapping import Mapping


def with_buffers(hw: Hardware, buffers: int) -> Hardware:
    return dataclasses.replace(hw, node=dataclasses.replace(hw.node, image_buffers=buffers))


def bottlenecked() -> tuple[DataflowGraph, Hardware, Mapping]:
    """The pixel graph of a 64-32-10 model by layer on a ring of 3: the source outruns dense1."""
    g = DataflowGraph.from_model(dense_model((64, 32, 10)), "pixel")
    hw = hardware(3, "ring")
    return g, hw, fold(g, hw, "layer")


def test_latency_stays_flat_with_the_image_count_and_throughput_is_the_bottlenecks():
    g, hw, mapping = bottlenecked()
    short = run_dataflow(g, hw, mapping, images(50, 64))
    long = run_dataflow(g, hw, mapping, images(200, 64))
    assert long.classified == 200
    assert long.mean_latency_ps == pytest.approx(short.mean_latency_ps, rel=0.01)
    # Unbounded buffers (room for every image) queue the later images ever longer.
    unbounded = with_buffers(hw, 1 << 16)
    growing = [run_dataflow(g, unbounded, mapping, images(n, 64)) for n in (50, 200)]
    assert growing[1].mean_latency_ps > 2 * growing[0].mean_latency_ps
    # Backpressure does not slow the pipeline: the bottleneck sets the rate either way.
    assert long.throughput == pytest.approx(growing[1].throughput, rel=0.01)
    assert np.array_equal(long.predictions, growing[1].predictions)


@pytest.mark.parametrize("granularity", ["neuron", "pixel"])
def test_one_buffer_per_node_never_deadlocks_where_layers_share_nodes(granularity):
    """Every node hosts part of every layer: a node admitting images in arrival order would
    fill its one buffer with image 1's first-layer inputs while image 0's second-layer
    inputs wait for room on it, and image 0 could never finish. In order, it can."""
    model = dense_model((16, 8, 4))
    g = DataflowGraph.from_model(model, granularity)
    mapping = Mapping((np.arange(len(g)) % 3).astype(np.int32), 3)
    x = images(12, 16)
    tight = run_dataflow(g, with_buffers(hardware(3), 1), mapping, x)
    roomy = run_dataflow(g, hardware(3), mapping, x)
    assert tight.classified == 12 and np.array_equal(tight.predictions, model.predict(x))
    assert np.array_equal(tight.logits, roomy.logits)
    assert tight.end_ps >= roomy.end_ps  # one buffer can only wait more


def test_image_buffers_is_a_hardware_key_checked_in_one_line(tmp_path):
    path = tmp_path / "hw.toml"
    path.write_text('[node]\nimage_buffers = 0\ncount = 2\n[topology]\nkind = "full"\n')
    with pytest.raises(HardwareError, match="image_buffers must be between 1 and"):
        Hardware.load(path)
    path.write_text('[node]\nimage_buffers = 3\ncount = 2\n[topology]\nkind = "full"\n')
    assert Hardware.load(path).node.image_buffers == 3


def test_one_buffer_in_the_two_node_example_gives_the_hand_computed_timing():
    from test_dataflow_sim import two_node_example

    g, hw, mapping, x = two_node_example()
    result = run_dataflow(g, with_buffers(hw, 1), mapping, x)
    ns = 1000  # ps per cycle at 1 GHz
    # As in test_dataflow_sim's example: dense1 takes 4 cycles on node0, a frame holds the link
    # 1 cycle and arrives 3 later, dense2 takes 2 and the sink 1 on node1; a credit from node1
    # reaches node0 in 1 hop x 3 = 3.
    # Image 0: inject 0, dense1 0-4, frames 4-5 and 5-6 (arrive 8, 9), dense2 9-11, sink 11-12:
    # done 12. node0 is done with image 0 at 4 (task ended, frames sent): its one buffer is
    # free, so image 1 goes in at 4 (not at 0), dense1 4-8. Its frames wait at node0: node1's
    # one buffer holds image 0 until 12, its credit arrives at 15; frames 15-16 and 16-17
    # (arrive 19, 20), dense2 20-22, sink 22-23. node0 is done with image 1 at 15 (its frames
    # left): image 2 in at 15, dense1 15-19, frames wait for node1's credit of 23 (arrives 26):
    # 26-27 and 27-28 (arrive 30, 31), dense2 31-33, sink 33-34.
    assert result.inject_ps.tolist() == [0, 4 * ns, 15 * ns]
    assert result.done_ps.tolist() == [12 * ns, 23 * ns, 34 * ns]
    assert result.mean_latency_ps == (12 + 19 + 19) * ns / 3
