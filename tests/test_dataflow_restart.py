"""Dataflow runs checkpoint mid-test-set and restart exactly; faults are seeded and deterministic."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_idx_dataset
from dataflow_runs import assert_same_result, dense_model, hardware, images

from nnsim.checkpoint import open_storage
from nnsim.checkpoint.manager import enable
from nnsim.dataflow import DataflowGraph, DataflowResult, build_dataflow, run_dataflow
from nnsim.dataflow.mapping import Mapping
from nnsim.errors import NnsimError
from nnsim.sim import Simulation
from nnsim.state import restore


def split(g: DataflowGraph, nodes: int) -> Mapping:
    return Mapping((np.arange(len(g)) % nodes).astype(np.int32), nodes)


def straight_and_restarted(tmp_path, build, stop_at: int):
    sim = Simulation(seed=7)
    build(sim)
    sim.run()
    straight = DataflowResult.from_simulation(sim)

    sim = Simulation(seed=7)
    build(sim)
    enable(sim, str(tmp_path / "ckpt"), announce=False)
    assert sim.run(until=stop_at) == "paused"
    name = sim.checkpoint()
    half = DataflowResult.from_simulation(sim)
    storage = open_storage(str(tmp_path / "ckpt"))
    restarted = restore(*storage.load(name))
    restarted.run()
    return straight, half, DataflowResult.from_simulation(restarted)


@pytest.mark.parametrize("granularity", ["neuron", "pixel"])
def test_a_checkpoint_mid_test_set_restarts_with_the_same_result(tmp_path, granularity):
    model = dense_model((16, 8, 4))
    g = DataflowGraph.from_model(model, granularity)
    x, labels = images(20, 16), np.arange(20) % 4

    def build(sim):
        build_dataflow(sim, g, hardware(3, "ring"), split(g, 3), x, labels)

    straight, half, restarted = straight_and_restarted(tmp_path, build, straight_end(build) // 2)
    assert 0 < half.classified < 20  # the checkpoint was taken mid-test-set
    assert_same_result(straight, restarted)
    assert np.array_equal(restarted.predictions, model.predict(x))


def straight_end(build) -> int:
    sim = Simulation(seed=7)
    build(sim)
    sim.run()
    return sim.now


def test_faults_are_restored_too_bit_flips_and_crashes(tmp_path):
    model = dense_model((16, 8, 4))
    g = DataflowGraph.from_model(model, "neuron")
    x = images(30, 16)

    def build(sim):
        build_dataflow(
            sim, g, hardware(3), split(g, 3), x, corrupt_rate=0.002, crashes=[("node2", "400ns")]
        )

    straight, half, restarted = straight_and_restarted(tmp_path, build, 300_000)
    assert straight.bits_flipped > half.bits_flipped > 0
    assert straight.missing.size > 0 and straight.frames_lost > 0
    assert_same_result(straight, restarted)


def test_images_read_from_a_folder_are_read_again_on_restart_not_saved(tmp_path):
    folder = make_idx_dataset(tmp_path / "data", train_per_class=1, test_per_class=1)
    model = dense_model((784, 6, 10))
    g = DataflowGraph.from_model(model)

    def build(sim):
        build_dataflow(sim, g, hardware(2), split(g, 2), str(folder))

    straight, _, restarted = straight_and_restarted(tmp_path, build, 20_000)
    assert_same_result(straight, restarted)
    assert (straight.labels >= 0).all()  # the labels came with the images
    manifest = open_storage(str(tmp_path / "ckpt")).load_manifest(
        open_storage(str(tmp_path / "ckpt")).list()[0]
    )
    assert manifest["components"]["source"]["state"]["given_images"]["__tensor__"]
    tensors = open_storage(str(tmp_path / "ckpt")).load(
        open_storage(str(tmp_path / "ckpt")).list()[0]
    )[1]
    assert tensors["source/given_images"].size == 0  # the images themselves are not in it


def test_bit_flips_follow_the_seed():
    model = dense_model((16, 8, 4))
    g = DataflowGraph.from_model(model)
    x = images(40, 16)

    def flipped(seed):
        result = run_dataflow(g, hardware(3), split(g, 3), x, corrupt_rate=0.01, seed=seed)
        return result.bits_flipped, result.logits

    first, again, other = flipped(1), flipped(1), flipped(2)
    assert first[0] > 0
    assert first[0] == again[0] and np.array_equal(first[1], again[1], equal_nan=True)
    assert not np.array_equal(first[1], other[1], equal_nan=True)
    clean = run_dataflow(g, hardware(3), split(g, 3), x)
    assert not np.array_equal(clean.logits, first[1], equal_nan=True)  # the flips changed values


def test_a_crashed_node_loses_its_images_and_the_result_lists_them():
    model = dense_model((16, 8, 4))
    g = DataflowGraph.from_model(model)
    x, labels = images(20, 16), model.predict(images(20, 16))
    mapping = split(g, 3)
    clean = run_dataflow(g, hardware(3), mapping, x, labels)
    crash = int(clean.done_ps[9]) + 1  # after image 9 was classified
    result = run_dataflow(g, hardware(3), mapping, x, labels, crashes=[(1, crash)])
    assert result.predictions[:10].tolist() == clean.predictions[:10].tolist()
    assert result.missing.size > 0 and result.missing.min() >= 10
    assert result.accuracy == pytest.approx(1 - result.missing.size / 20)
    assert result.nodes[1].crash_at_ps == crash and result.frames_lost > 0


@pytest.mark.parametrize(
    "options, message",
    [
        ({"crashes": [("nodeX", "1us")]}, "'nodeX' is not a node name"),
        ({"crashes": [(7, "1us")]}, "node 7 is not one of node0..node2"),
        ({"crashes": [(1, "-1us")]}, "crash of node1: cannot read '-1us'"),
        ({"crashes": [(1, -5)]}, "crash of node1: time -5 ps is negative"),
        ({"crashes": [(1, "5")]}, "crash of node1: .* has no unit"),
        ({"corrupt_rate": 1.5}, "probability from 0 to 1"),
        ({"corrupt_rate": float("nan")}, "probability from 0 to 1"),
        ({"interval": "-2ns"}, "injection interval: cannot read"),
        ({"interval": "fast"}, "injection interval: cannot read"),
    ],
)
def test_bad_fault_and_interval_options_are_one_line_errors(options, message):
    g = DataflowGraph.from_model(dense_model((16, 8, 4)))
    sim = Simulation()
    with pytest.raises(NnsimError, match=message):
        build_dataflow(sim, g, hardware(3), split(g, 3), images(2, 16), **options)
    assert sim.components == {}
