"""Traffic per image: a value crosses to a node once however many of its vertices read it."""

from __future__ import annotations

import numpy as np
from dataflow_models import graph, hardware

from nnsim.dataflow import Mapping, cut_words, traffic
from nnsim.dataflow.traffic import messages

G = graph(6, 4, 3)
# node0: source, dense1/n0, n1 | node1: dense1/n2, n3, dense2/n0 | node2: dense2/n1, n2, sink
NODE_OF = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2], dtype=np.int32)


def test_pairs_count_each_value_once_per_destination_node():
    t = traffic(G, hardware(3), Mapping(NODE_OF, 3))
    # 0 -> 1: the image (6 words) once for dense1/n2 and n3, dense1/n0 and n1's outputs for dense2/n0
    # 0 -> 2: dense1/n0 and n1's outputs, once each for dense2/n1 and n2
    # 1 -> 2: dense1/n2, n3 and dense2/n0's outputs
    assert t.pairs == ((0, 1), (0, 2), (1, 2))
    assert t.pair_words.tolist() == [8, 2, 3]
    assert t.pair_messages.tolist() == [3, 2, 3]
    assert (t.pair(0, 1), t.pair(1, 0)) == ((8, 3), (0, 0))
    assert t.words == cut_words(G, NODE_OF) == 13
    assert t.links == ((0, 1), (0, 2), (1, 2))


def test_links_carry_every_message_routed_over_them():
    ring = hardware(4, topology="ring")
    t = traffic(G, ring, Mapping(NODE_OF, 4))  # 0 -> 2 goes round through node1 (a tie: clockwise)
    assert t.links == ((0, 1), (1, 2))
    assert t.link(0, 1) == (8 + 2, 3 + 2)
    assert t.link(1, 2) == (2 + 3, 2 + 3)
    assert t.link(2, 3) == (0, 0)
    assert (t.words, t.word_hops) == (13, 15)


def test_the_image_goes_once_to_a_node_of_many_first_layer_neurons():
    g = graph(784, 128, 10)
    node_of = np.zeros(len(g), dtype=np.int32)
    node_of[list(g.layer_vertices(0))] = 1  # all 128 neurons on node1, the source on node0
    value, from_node, to_node = messages(g, node_of)
    image = from_node == 0
    assert (value[image].tolist(), to_node[image].tolist()) == ([0], [1])  # one message
    assert (to_node[~image] == 0).all() and (~image).sum() == 128  # each hidden output once
    assert (
        cut_words(g, node_of) == 784 + 128
    )  # the image in, every hidden output back to the sink's layer


def test_pixel_values_cross_once_per_node_too():
    g = graph(6, 4, 3, granularity="pixel")
    node_of = np.zeros(len(g), dtype=np.int32)
    node_of[list(g.layer_vertices(0))] = [1, 1, 2, 2]
    t = traffic(g, hardware(3), Mapping(node_of, 3))
    assert t.pair(0, 1)[0] == t.pair(0, 2)[0] == 6  # 6 pixels to each node, not to each neuron
    assert t.pair(1, 0)[0] == t.pair(2, 0)[0] == 2  # the hidden outputs back to dense2
    assert cut_words(g, node_of) == 16


def test_nothing_crosses_when_everything_is_on_one_node():
    t = traffic(G, hardware(1), Mapping(np.zeros(9, dtype=np.int32), 1))
    assert (t.words, t.word_hops, t.links) == (0, 0, ())
