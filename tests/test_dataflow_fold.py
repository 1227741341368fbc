"""Folding strategies: every one gives a valid mapping, multicast is counted once, METIS is deterministic."""

from __future__ import annotations

import pytest
from dataflow_models import graph, hardware

from nnsim.dataflow import (
    check_mapping,
    fold,
    strategies,
)

FOLDS = ("layer", "balanced", "metis", "greedy")


def test_nnsims_five_strategies_are_registered_through_the_entry_point_group():
    assert {"none", "layer", "balanced", "metis", "greedy"} <= set(strategies())


@pytest.mark.parametrize("granularity", ["neuron", "pixel"])
@pytest.mark.parametrize("strategy", FOLDS)
@pytest.mark.parametrize("count", [1, 2, 3, 4, 8])
def test_every_strategy_gives_a_valid_mapping_of_every_vertex(granularity, strategy, count):
    g = graph(16, 8, 4, granularity=granularity)
    hw = hardware(count, memory=4096)
    mapping = fold(g, hw, strategy)
    assert mapping.strategy == strategy
    assert mapping.node_of.shape == (len(g),)
    assert mapping.nodes == count
    assert mapping.node_of.min() >= 0 and mapping.node_of.max() < count
    check_mapping(g, hw, mapping)
