"""A dataflow model under ``nnsim run``: the console, checkpoints, graphs and traces work on it."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO
from dataflow_runs import assert_same_result

from nnsim.checkpoint import open_storage
from nnsim.console import Console
from nnsim.dataflow import DataflowResult
from nnsim.runner import CheckpointOptions, run_simulation
from nnsim.sim import Simulation
from nnsim.sim.report import to_dot

SCRIPT = REPO / "examples" / "dataflow" / "model.py"
ARGS = ["--sizes", "16,8,4", "--limit", "6", "--nodes", "3"]


def nnsim(*args: str, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nnsim.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


REPLAY = """\
ls
cd dense1
print n5/sum
cd /
watch dense1/n5/sum changed
run
print dense1/n5/image
print dense1/n5/sum
confirm false
unwatch
watch sink/classified changed
run
print sink/classified
print sink/last_image
unwatch
run
"""


def test_the_console_navigates_nodes_and_neurons_and_watches_the_sink(tmp_path):
    replay = tmp_path / "session.in"
    replay.write_text(REPLAY)
    done = nnsim("run", str(SCRIPT), "--replay", str(replay), "--", *ARGS)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for component in ("source/", "dense1/", "dense2/", "sink/", "node0/", "node2/"):
        assert f"{component} (dataflow." in out
    assert "sum = 0.0 (float32)" in out  # before any image
    assert "reason: watchpoint 0 (dense1/n5/sum changed)" in out
    assert "image = 0 (int)" in out  # the first change is image 0's sum
    assert "reason: watchpoint 1 (sink/classified changed)" in out
    assert "classified = 1 (int)" in out
    assert "Simulation is complete" in out


def test_a_neuron_view_reads_and_writes_the_state_where_it_is_saved():
    sim = Simulation()
    from nnsim.script import build_from_script

    build_from_script(sim, SCRIPT, ARGS)
    console = Console(sim)
    assert console.execute("set dense1/n5/bias 0.25") == "bias = 0.25"
    console.execute("set dense1/n5/weights[3] 0.5")
    layer = sim.components["dense1"]
    assert layer.biases[5] == 0.25 and layer.weights[3, 5] == 0.5
    console.execute("cd dense1/n5")
    listing = console.execute("ls")
    assert "inputs_received = 0 (int)" in listing and "weights/ (float64[16])" in listing
    assert "read-only" in console.execute("set node node3")
    sim.run(until="30ns")
    node = sim.components[f"node{layer.host_node[5]}"]
    group, position = int(layer.host_group[5]), int(layer.host_pos[5])
    value = node.sums[group][position]
    assert value != 0 and console.execute("print sum") == f"sum = {str(value)} (float32)"
    from nnsim.state import capture

    _, tensors = capture(sim)
    assert not any("/n5" in name for name in tensors)  # views are never saved
    assert "dense1/weights" in tensors


def test_a_restart_under_nnsim_run_gives_the_straight_result(tmp_path):
    straight = DataflowResult.from_simulation(run_simulation(SCRIPT, ARGS, progress="quiet"))
    folder = tmp_path / "ckpt"
    run_simulation(
        SCRIPT,
        ARGS,
        progress="quiet",
        checkpoint=CheckpointOptions(directory=str(folder), period="40ns"),
    )
    names = open_storage(str(folder)).list()
    assert names
    restarted = run_simulation(load_checkpoint=str(folder / names[0]), progress="quiet")
    again = DataflowResult.from_simulation(restarted)
    assert_same_result(straight, again)


def test_nnsim_graph_draws_the_nodes_as_clusters_of_their_vertices(tmp_path):
    done = nnsim("graph", str(SCRIPT), "--", *ARGS)
    assert done.returncode == 0, done.stderr
    dot = done.stdout
    assert 'subgraph "cluster_node0"' in dot and '"node0:source"' in dot
    assert '"node2:sink"' in dot
    assert '"dense1" [' not in dot  # the layers hold state; the nodes are what is drawn
    assert 'lhead="cluster_node1"' in dot


def test_trace_events_and_statistics_cover_the_nodes(tmp_path):
    trace, stats = tmp_path / "trace.json", tmp_path / "stats.json"
    done = nnsim(
        "run", str(SCRIPT), "--trace-events", str(trace), "--statistics", str(stats), "--", *ARGS
    )
    assert done.returncode == 0, done.stderr
    events = json.loads(trace.read_text())
    events = events["traceEvents"] if isinstance(events, dict) else events
    assert any("node1" in json.dumps(event) for event in events)
    table = json.loads(stats.read_text())["statistics"]
    assert table["node0"]["handler.on_self.calls"] > 0
    assert table["node0"]["tasks"] == 6 and table["node0"]["macs"] == 6 * 3 * 16  # 3 of dense1


def test_the_plain_kernel_graph_keeps_its_boxes():
    sim = Simulation()
    from nnsim.script import build_from_script

    build_from_script(sim, REPO / "examples" / "fashion_mnist" / "nn.py", ["--hiddenLayers", "1"])
    assert "cluster" not in to_dot(sim)


def test_a_crash_set_from_the_console_takes_effect_and_fixed_hardware_is_refused():
    sim = Simulation()
    from nnsim.script import build_from_script

    build_from_script(sim, SCRIPT, ARGS)
    console = Console(sim)
    assert "fixed" in console.execute("set node1/macs_per_cycle 64")
    sim.run(until="30ns")
    console.execute("set node1/crash_at 30000")
    sim.run()
    result = DataflowResult.from_simulation(sim)
    assert result.missing.size > 0 and result.nodes[1].crash_at_ps == 30000
    assert sim.components["node0"].crash_times[1] == 30000  # every node knows the link is down


def test_periodic_checkpoints_do_not_move_the_end_of_the_run(tmp_path):
    plain = DataflowResult.from_simulation(run_simulation(SCRIPT, ARGS, progress="quiet"))
    folder = tmp_path / "ckpt"
    sim = run_simulation(
        SCRIPT, ARGS, progress="quiet", checkpoint=CheckpointOptions(str(folder), period="7ns")
    )
    assert sim.now > plain.end_ps  # the last checkpoint came after the last event
    assert_same_result(plain, DataflowResult.from_simulation(sim))


def test_nnsim_graph_of_a_checkpoint_draws_the_clusters_of_the_live_model(tmp_path):
    folder = tmp_path / "ckpt"
    run_simulation(
        SCRIPT, ARGS, progress="quiet", checkpoint=CheckpointOptions(str(folder), period="40ns")
    )
    name = open_storage(str(folder)).list()[0]
    saved = nnsim("graph", str(folder / name))
    live = nnsim("graph", str(SCRIPT), "--", *ARGS)
    assert saved.returncode == 0, saved.stderr
    assert 'subgraph "cluster_node0"' in saved.stdout and '"node2:sink"' in saved.stdout
    assert saved.stdout == live.stdout
