"""The capacity check: hand-computed memory, ports and MACs; every violation named with its exact excess."""

from __future__ import annotations

import numpy as np
import pytest
from dataflow_models import graph, hardware

from nnsim.dataflow import CapacityError, Mapping, MappingError, check_mapping, cut_words, usage
from nnsim.dataflow.placement import Placement

G = graph(6, 4, 3)  # source, dense1/n0..n3 (7 words each), dense2/n0..n2 (5 words each), sink
# node0: source, dense1/n0, n1 | node1: dense1/n2, n3, dense2/n0 | node2: dense2/n1, n2, sink
THREE = Mapping(np.array([0, 0, 0, 1, 1, 1, 2, 2, 2], dtype=np.int32), 3, "by hand")


def refused(message: str, mapping: Mapping = THREE, **node) -> None:
    with pytest.raises(CapacityError, match=message) as error:
        check_mapping(G, hardware(mapping.nodes, **node), mapping)
    assert "\n" not in str(error.value)


def test_memory_is_weights_plus_each_value_once_per_node():
    used = check_mapping(G, hardware(3), THREE)
    # node0: 2 x 7 weights; the image (6) once for both neurons; their 2 outputs
    # node1: 2 x 7 + 5; the image once; all 4 dense1 outputs (2 made here) and dense2/n0's
    # node2: 2 x 5; the 4 dense1 outputs read by both; 3 dense2 outputs (the sink's inputs)
    assert used.weight_words.tolist() == [14, 19, 10]
    assert used.value_words.tolist() == [6 + 2, 6 + 4 + 1, 4 + 3]
    assert used.memory_words.tolist() == [22, 30, 17]
    assert used.vertices.tolist() == [3, 3, 3]
    assert used.neurons.tolist() == [2, 3, 2]


def test_the_whole_graph_on_one_node_holds_every_value_once():
    used = usage(G, hardware(1), Mapping(np.zeros(9, dtype=np.int32), 1))
    assert used.memory_words.tolist() == [4 * 7 + 3 * 5 + 6 + 4 + 3]


def test_macs_cycles_and_ports_per_node():
    used = check_mapping(G, hardware(3, macs_per_cycle=4), THREE)
    assert used.macs.tolist() == [12, 6 + 6 + 4, 8]
    assert used.cycles.tolist() == [
        2 + 2,
        2 + 2 + 1,
        1 + 1,
    ]  # ceil(6/4) per dense1, ceil(4/4) per dense2
    assert used.ports_out.tolist() == [2, 1, 0]
    assert used.ports_in.tolist() == [0, 1, 2]
    row = used.rows()[1]
    assert row == {
        "node": "node1",
        "vertices": 3,
        "neurons": 3,
        "memory_words": 30,
        "weight_words": 19,
        "value_words": 11,
        "ports_in": 1,
        "ports_out": 1,
        "macs": 16,
        "cycles": 5,
    }


def test_memory_overflow_names_the_node_and_the_excess():
    refused(
        r"^node1 needs 30 words of memory, 1 more than its 29 \(fold 'by hand' of the 6-4-3 neuron graph on 3 nodes of test\)$",
        memory=29,
    )


def test_the_most_overfull_node_is_named():
    refused("node1 needs 30 words of memory, 10 more than its 20", memory=20)


def test_big_numbers_are_grouped_as_people_read_them():
    g = graph(784, 128, 10)
    with pytest.raises(
        CapacityError, match="node0 needs 102,692 words of memory, 37,156 more than its 65,536"
    ):
        check_mapping(g, hardware(1, memory=65536), Mapping(np.zeros(len(g), dtype=np.int32), 1))


def test_output_ports_on_a_full_topology_are_the_nodes_a_node_sends_to():
    refused("node0 sends to 2 nodes, 1 more than its 1 output ports", output_ports=1)


def test_input_ports_on_a_full_topology_are_the_nodes_a_node_receives_from():
    refused("node2 receives from 2 nodes, 1 more than its 1 input ports", input_ports=1)


def test_ports_on_a_ring_are_its_physical_links_whatever_the_mapping():
    refused(
        "node0 has 2 output links on a ring of 3, 1 more than its 1 output ports",
        topology="ring",
        output_ports=1,
    )
    refused(
        "node0 has 2 input links on a ring of 3, 1 more than its 1 input ports",
        topology="ring",
        input_ports=1,
    )
    alone = Mapping(np.zeros(9, dtype=np.int32), 3)  # no traffic at all: the wires are still there
    refused("node0 has 2 output links", alone, topology="ring", output_ports=1)
    mesh = check_mapping(
        G, hardware(4, topology="mesh2d", input_ports=2, output_ports=2), Mapping(THREE.node_of, 4)
    )
    assert mesh.ports_in.tolist() == [2, 2, 2, 2]


def test_the_mac_budget_names_the_node_and_the_excess():
    refused(
        "node1 needs 16 MACs per image, 1 more than its max_macs_per_image 15",
        max_macs_per_image=15,
    )
    check_mapping(G, hardware(3, max_macs_per_image=16), THREE)


def test_memory_is_checked_before_ports_and_macs():
    refused("words of memory", memory=29, output_ports=1, max_macs_per_image=1)


def test_a_mapping_of_another_shape_is_refused():
    with pytest.raises(MappingError, match="places 4 vertices but the graph has 9"):
        check_mapping(G, hardware(3), Mapping(np.zeros(4, dtype=np.int32), 3))
    with pytest.raises(MappingError, match="for 2 nodes but the hardware has 3"):
        check_mapping(G, hardware(3), Mapping(np.zeros(9, dtype=np.int32), 2))
    with pytest.raises(
        MappingError, match="vertex 'sink' is on node 3, outside the hardware's 0..2"
    ):
        check_mapping(G, hardware(3), Mapping(np.array([0] * 8 + [3], dtype=np.int32), 3))


@pytest.mark.parametrize("granularity", ["neuron", "pixel"])
def test_placements_keep_the_same_memory_as_the_capacity_check(granularity):
    g = graph(7, 5, 3, granularity=granularity)
    hw = hardware(4)
    rng = np.random.default_rng(3)
    for _ in range(5):
        node_of = rng.integers(0, 4, size=len(g))
        placement = Placement.of(g, hw, node_of)
        assert placement.memory.tolist() == usage(g, hw, Mapping(node_of, 4)).memory_words.tolist()
        vertex = int(rng.integers(len(g)))
        target = (placement.node_of[vertex] + 1) % 4
        cost = placement.cost(vertex)[target]
        freed = placement.freed(vertex)
        before = placement.memory.copy()
        placement.move(vertex, target)
        moved = usage(g, hw, Mapping(placement.node_of, 4)).memory_words
        assert placement.memory.tolist() == moved.tolist()
        assert moved[target] - before[target] == cost
        assert before[node_of[vertex]] - moved[node_of[vertex]] == freed


@pytest.mark.parametrize("granularity", ["neuron", "pixel"])
def test_placements_predict_the_cut_change_of_every_move(granularity):
    g = graph(7, 5, 3, granularity=granularity)
    hw = hardware(4)
    rng = np.random.default_rng(5)
    for _ in range(4):
        node_of = rng.integers(0, 4, size=len(g))
        placement = Placement.of(g, hw, node_of)
        before = cut_words(g, node_of)
        for vertex in rng.choice(len(g), size=6, replace=False).tolist():
            predicted = placement.cut_change(vertex)
            for target in range(4):
                moved = node_of.copy()
                moved[vertex] = target
                assert predicted[target] == cut_words(g, moved) - before
