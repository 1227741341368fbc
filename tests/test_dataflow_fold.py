"""Folding strategies: every one gives a valid mapping, multicast is counted once, METIS is deterministic."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dataflow_models import graph, hardware

from nnsim.dataflow import (
    CapacityError,
    FoldError,
    Hardware,
    Mapping,
    check_mapping,
    cut_words,
    fold,
    register_strategy,
    strategies,
    unregister_strategy,
)
from nnsim.dataflow.placement import Placement, refine, repair

FOLDS = ("layer", "balanced", "metis", "greedy")
REPO = Path(__file__).resolve().parent.parent
PRESETS = REPO / "examples" / "dataflow" / "hw"


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


def test_none_puts_each_vertex_on_its_own_node():
    g = graph(16, 8, 4)
    assert fold(g, hardware(len(g)), "none").node_of.tolist() == list(range(len(g)))


def test_none_refuses_another_node_count_and_says_the_one_it_needs():
    with pytest.raises(
        FoldError,
        match=r"one vertex on each node, so the 16-8-4 neuron graph needs 14 nodes, not 4 \(use --nodes 14\)",
    ):
        fold(graph(16, 8, 4), hardware(4), "none")


def test_layer_gives_each_layer_its_own_nodes_in_proportion_to_its_weights():
    g = graph(784, 128, 10)
    node_of = fold(g, hardware(16), "layer").node_of
    first = set(node_of[list(g.layer_vertices(0))])
    second = set(node_of[list(g.layer_vertices(1))])
    assert first == set(range(15)) and second == {15}  # 100,480 weights against 1,290
    assert node_of[g.source.id] == 0 and node_of[g.sink.id] == 15
    assert set(np.bincount(node_of[list(g.layer_vertices(0))])) == {8, 9}  # 128 neurons / 15 nodes


def test_layer_puts_the_pixels_with_the_first_layer():
    g = graph(16, 8, 4, granularity="pixel")
    node_of = fold(g, hardware(4), "layer").node_of
    first = set(node_of[list(g.layer_vertices(0))])
    assert set(node_of[list(g.pixel_vertices)]) == first == {0, 1, 2}
    assert set(node_of[list(g.layer_vertices(1))]) == {3}


def test_layer_gives_no_layer_more_nodes_than_neurons_and_shares_when_nodes_are_few():
    g = graph(16, 8, 4)
    node_of = fold(g, hardware(16), "layer").node_of
    assert len(set(node_of[list(g.layer_vertices(0))])) == 8
    assert len(set(node_of[list(g.layer_vertices(1))])) == 4
    assert set(fold(graph(8, 6, 4, 2), hardware(2), "layer").node_of) == {0, 1}


@pytest.mark.parametrize("count", [2, 3, 5, 8])
def test_balanced_gives_contiguous_runs_with_equal_macs(count):
    g = graph(16, 8, 4)
    node_of = fold(g, hardware(count), "balanced").node_of
    assert (np.diff(node_of) >= 0).all()  # contiguous in vertex order
    macs = np.bincount(node_of, g.macs(), minlength=count)
    assert macs.max() - macs.min() <= g.macs().max()  # within one neuron of equal


def test_greedy_puts_each_vertex_where_the_least_room_is_left():
    # memory 30: node0 takes the source and 4 dense1 neurons (6 + 4 x 8 = 30 words);
    # dense1/n3 starts node1 (14); dense2/n0 fits node1 (23, 7 left) and node2 (10, 20 left): node1;
    # dense2/n1 on node1 (29); dense2/n2 only fits node2; the sink fits node1 exactly (30)
    g = graph(6, 4, 3)
    assert fold(g, hardware(3, memory=30), "greedy").node_of.tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 1]


def test_greedy_packs_onto_as_few_nodes_as_memory_allows():
    g = graph(16, 8, 4)
    assert set(fold(g, hardware(8), "greedy").node_of) == {0}


def test_greedy_refuses_a_vertex_that_fits_nowhere_naming_the_node_and_the_memory():
    with pytest.raises(
        CapacityError,
        match="cannot place 'dense1/n0': node0, the node with most room, would need 4 more words of memory than its 10",
    ):
        fold(graph(6, 4, 3), hardware(3, memory=10), "greedy")


def test_greedy_refuses_a_vertex_over_every_mac_budget_naming_the_macs():
    with pytest.raises(
        CapacityError,
        match="cannot place 'dense1/n2': it needs 6 MACs per image and node0, the node with most left, has 4 of its max_macs_per_image 16",
    ):
        fold(graph(6, 4, 3), hardware(1, max_macs_per_image=16), "greedy")


def test_greedy_keeps_to_the_mac_budget():
    g = graph(6, 4, 3)
    node_of = fold(g, hardware(3, max_macs_per_image=12), "greedy").node_of
    assert np.bincount(node_of, g.macs()).max() <= 12


@pytest.mark.parametrize("granularity", ["neuron", "pixel"])
def test_metis_is_deterministic(granularity):
    g = graph(16, 8, 4, granularity=granularity)
    first = fold(g, hardware(4), "metis").node_of
    again = fold(graph(16, 8, 4, granularity=granularity), hardware(4), "metis").node_of
    assert first.tolist() == again.tolist()


def test_metis_gives_the_same_mapping_in_every_process():
    script = (
        "import sys; sys.path.insert(0, 'tests');"
        "from dataflow_models import graph, hardware; from nnsim.dataflow import fold;"
        "print(fold(graph(16, 8, 4, granularity='pixel'), hardware(4), 'metis').node_of.tolist())"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-W", "ignore", "-c", script],
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    ]
    assert runs[0] == runs[1] != ""


@pytest.mark.parametrize("count", [4, 8])
def test_metis_cuts_less_than_balanced_on_a_small_mlp(count):
    """Balanced splits the 8 hidden neurons in vertex order; METIS + refinement keeps each node's share
    of the image and hidden values together, so the real (multicast) cut is lower."""
    g = graph(16, 8, 4)
    metis = cut_words(g, fold(g, hardware(count), "metis"))
    assert metis < cut_words(g, fold(g, hardware(count), "balanced"))


@pytest.mark.parametrize("strategy", FOLDS)
def test_a_strategy_refuses_what_no_folding_can_hold_with_the_memory_line(strategy):
    with pytest.raises(CapacityError, match="node0 needs .* words of memory|cannot place"):
        fold(graph(16, 8, 4), hardware(1, memory=100), strategy)


def test_repair_moves_vertices_off_an_overfull_node_until_every_node_fits():
    g = graph(6, 4, 3)
    hw = hardware(3, memory=30)  # the whole graph needs 56 words
    placement = repair(Placement.of(g, hw, np.zeros(len(g), dtype=np.int64)))
    used = check_mapping(g, hw, Mapping(placement.node_of, 3))
    assert used.memory_words.max() <= 30
    unchanged = repair(Placement.of(g, hw, placement.node_of))
    assert unchanged.node_of.tolist() == placement.node_of.tolist()


def test_repair_leaves_what_it_cannot_fix_to_the_capacity_check():
    g = graph(6, 4, 3)
    hw = hardware(2, memory=20)
    placement = repair(Placement.of(g, hw, np.zeros(len(g), dtype=np.int64)))
    with pytest.raises(CapacityError, match="words of memory"):
        check_mapping(g, hw, Mapping(placement.node_of, 2))


def test_repair_with_a_mac_limit_evens_out_compute():
    g = graph(16, 8, 4)
    hw = hardware(4)
    placement = repair(Placement.of(g, hw, np.zeros(len(g), dtype=np.int64)), macs_limit=60)
    assert placement.macs.max() <= 60  # 160 MACs in all, 16 per hidden neuron, 8 per output
    assert placement.macs.sum() == g.macs().sum()


@pytest.mark.parametrize("granularity", ["neuron", "pixel"])
def test_metis_keeps_every_node_within_one_neuron_of_the_mean_macs(granularity):
    g = graph(784, 128, 10, granularity=granularity)
    node_of = fold(g, hardware(16), "metis").node_of
    macs = np.bincount(node_of, g.macs(), minlength=16)
    assert macs.max() <= macs.mean() + g.macs().max()


def test_refine_only_lowers_the_cut_and_keeps_the_balance():
    g = graph(16, 8, 4, granularity="pixel")
    hw = hardware(4)
    start = np.random.default_rng(0).integers(0, 4, size=len(g))
    placement = Placement.of(g, hw, start)
    limit = max(placement.macs.max(), 1.03 * placement.macs.sum() / 4)
    refine(placement, 1.03 * placement.macs.sum() / 4)
    assert cut_words(g, placement.node_of) < cut_words(g, start)
    assert placement.macs.max() <= limit


def test_a_registered_strategy_is_folded_by_name_and_checked():
    def everything_on_node0(g, hw):
        return Mapping(np.zeros(len(g), dtype=np.int32), hw.count, "node0")

    register_strategy("node0", everything_on_node0)
    try:
        assert "node0" in strategies()
        assert set(fold(graph(6, 4, 3), hardware(2), "node0").node_of) == {0}
        with pytest.raises(
            CapacityError, match="node0 needs 56 words of memory, 26 more than its 30"
        ):
            fold(graph(6, 4, 3), hardware(2, memory=30), "node0")
    finally:
        unregister_strategy("node0")
    assert "node0" not in strategies()


def test_a_strategy_that_returns_no_mapping_is_refused():
    register_strategy("broken", lambda g, hw: g)
    try:
        with pytest.raises(FoldError, match="'broken' returned DataflowGraph, not a Mapping"):
            fold(graph(6, 4, 3), hardware(2), "broken")
    finally:
        unregister_strategy("broken")


def test_an_unknown_strategy_is_one_line_with_a_suggestion():
    with pytest.raises(
        FoldError, match=r"unknown folding strategy 'metsi'; did you mean 'metis'\?"
    ):
        fold(graph(6, 4, 3), hardware(2), "metsi")


@pytest.mark.parametrize("preset", ["mesh16", "ring8", "torus16", "full"])
def test_784_128_10_folds_onto_every_preset_from_two_nodes_up(preset):
    g = graph(784, 128, 10)
    hw = Hardware.load(PRESETS / f"{preset}.toml")
    for count in (2, 4, 8, 16):
        for strategy in FOLDS:
            check_mapping(g, hw.with_nodes(count), fold(g, hw.with_nodes(count), strategy))
    with pytest.raises(
        CapacityError, match="node0 needs 102,692 words of memory, 292 more than its 102,400"
    ):
        fold(g, hw.with_nodes(1), "balanced")


def test_784_128_10_one_to_one_fits_the_full_preset():
    g = graph(784, 128, 10)
    used = check_mapping(
        g,
        Hardware.load(PRESETS / "full.toml"),
        fold(g, Hardware.load(PRESETS / "full.toml"), "none"),
    )
    assert used.ports_out.max() == 128 and used.ports_in.max() == 128
    assert (
        used.memory_words.max() == 785 + 784 + 1
    )  # a first-layer neuron: weights, bias, image, output


def test_a_broken_strategy_plugin_is_one_line(monkeypatch):
    import importlib
    from importlib.metadata import EntryPoint

    fold_module = importlib.import_module("nnsim.dataflow.fold")  # the module, not fold()

    broken = EntryPoint("broken", "nnsim.no_such_module:fold", fold_module.ENTRY_POINT_GROUP)
    monkeypatch.setattr(fold_module, "entry_points", lambda group: [broken])
    fold_module._from_entry_points.cache_clear()
    try:
        with pytest.raises(
            FoldError,
            match=r"'broken' \(nnsim.no_such_module:fold\) cannot be loaded: No module named",
        ):
            strategies()
    finally:
        monkeypatch.undo()
        fold_module._from_entry_points.cache_clear()
    assert "metis" in strategies()
