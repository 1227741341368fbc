"""The neuron-level graph: sizes, names, edge order and values, as aegir's nn_classifier has them."""

from __future__ import annotations

import numpy as np
import pytest
from dataflow_models import dense_model, graph

from nnsim.dataflow import DataflowGraph
from nnsim.errors import NnsimError


def test_784_128_10_neuron_graph_has_140_vertices_and_1418_edges():
    g = graph(784, 128, 10)
    assert (len(g), g.edge_count) == (140, 1418)  # 128 + 128*10 + 10
    assert g.describe() == "784-128-10 neuron graph: 140 vertices, 1418 edges"


def test_784_128_10_pixel_graph_has_924_vertices_and_102426_edges():
    g = graph(784, 128, 10, granularity="pixel")
    assert (len(g), g.edge_count) == (924, 784 + 784 * 128 + 128 * 10 + 10)
    assert g.edge_count == 102_426


def test_vertices_are_named_by_stable_paths_in_a_fixed_order():
    g = graph(3, 2, 2, granularity="pixel")
    assert [v.name for v in g.vertices] == [
        "source",
        "input/p0",
        "input/p1",
        "input/p2",
        "dense1/n0",
        "dense1/n1",
        "dense2/n0",
        "dense2/n1",
        "sink",
    ]
    assert g.vertex("dense2/n1").id == 7
    assert list(g.layer_vertices(1)) == [6, 7]
    assert list(g.pixel_vertices) == [1, 2, 3]


def test_an_unknown_vertex_name_is_one_line_with_a_suggestion():
    with pytest.raises(NnsimError, match=r"no vertex 'dense1/m1'; did you mean 'dense1/n1'\?"):
        graph(4, 3, 2).vertex("dense1/m1")


def test_an_unknown_granularity_is_refused():
    with pytest.raises(NnsimError, match="granularity 'weights' is not one of neuron, pixel"):
        DataflowGraph.from_model(dense_model(4, 2), "weights")


@pytest.mark.parametrize("granularity", ["neuron", "pixel"])
def test_in_edges_come_in_weight_row_order(granularity):
    """Input k of a neuron is row k of its weights: the k-th pixel or the k-th upstream neuron."""
    g = graph(5, 4, 3, granularity=granularity)
    for layer in range(2):
        for neuron in g.layer_vertices(layer):
            edges = g.in_edges[neuron]
            producers = g.value_producer[g.edge_value[edges]]
            if layer == 1:
                assert producers.tolist() == list(g.layer_vertices(0))
            elif granularity == "pixel":
                assert producers.tolist() == list(g.pixel_vertices)
            else:
                assert producers.tolist() == [0]  # the whole image from the source
                assert g.value_words[g.edge_value[edges]].tolist() == [5]


def test_one_value_per_producer_shared_by_all_its_readers():
    g = graph(6, 4, 2)
    image = g.edge_value[g.in_edges[g.vertex("dense1/n0").id]][0]
    readers = g.edge_dst[g.edge_value == image]
    assert readers.tolist() == list(g.layer_vertices(0))
    assert g.value_words[image] == 6
    assert (g.value_words[g.edge_value[g.in_edges[g.sink.id]]] == 1).all()


def test_costs_of_a_vertex():
    g = graph(6, 4, 2)
    neuron = g.vertex("dense2/n1")
    assert (neuron.fan_in, neuron.weight_words, neuron.layer) == (4, 5, 1)
    assert g.sink.fan_in == 2
    assert g.macs().tolist() == [0] + [6] * 4 + [4] * 2 + [0]
    assert np.sum(g.macs()) == 6 * 4 + 4 * 2
