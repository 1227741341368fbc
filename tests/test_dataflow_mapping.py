"""Mapping files: a JSON round trip, hand edits accepted, every malformed file refused in one line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from dataflow_models import graph, hardware
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnsim.dataflow import Mapping, MappingError, fold
from nnsim.dataflow.mapping import max_file_bytes

G = graph(6, 4, 3)
HW = hardware(3)


def saved(tmp_path: Path, mapping: Mapping | None = None) -> Path:
    mapping = mapping or fold(G, HW, "balanced")
    return mapping.save(tmp_path / "map.json", G, HW)


def edited(tmp_path: Path, change) -> Path:
    path = saved(tmp_path)
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))
    return path


def refused(path: Path, message: str, g=G, hw=HW) -> str:
    with pytest.raises(MappingError, match=message) as error:
        Mapping.load(path, g, hw)
    text = str(error.value)
    assert "\n" not in text
    assert str(path) in text
    return text


def test_a_saved_mapping_loads_back_identical(tmp_path):
    mapping = fold(G, HW, "metis")
    path = saved(tmp_path, mapping)
    loaded = Mapping.load(path, G, HW)
    assert np.array_equal(loaded.node_of, mapping.node_of)
    assert (loaded.nodes, loaded.strategy) == (3, "metis")
    assert os.listdir(tmp_path) == ["map.json"]  # no temporary file left behind


def test_the_file_says_what_it_maps_and_lists_one_vertex_per_line(tmp_path):
    path = saved(tmp_path)
    document = json.loads(path.read_text())
    assert document["format"] == "nnsim-dataflow-mapping"
    assert document["version"] == 1
    assert document["graph"] == {
        "sizes": [6, 4, 3],
        "granularity": "neuron",
        "vertices": 9,
        "edges": 19,
    }
    assert document["hardware"] == {"name": "test", "nodes": 3}
    assert list(document["assignment"]) == [v.name for v in G.vertices]
    assert '    "dense1/n2": ' in path.read_text().splitlines()[7 + 3]


def test_a_hand_edited_file_is_accepted(tmp_path):
    path = saved(tmp_path)
    text = path.read_text().replace('"dense2/n1": 2', '"dense2/n1": 0')
    text = text.replace('"strategy": "balanced"', '"strategy": "by hand"')
    path.write_text(text)
    loaded = Mapping.load(path, G, HW)
    assert loaded.node_of[G.vertex("dense2/n1").id] == 0
    assert loaded.strategy == "by hand"
    # key order does not matter either
    document = json.loads(text)
    document["assignment"] = dict(reversed(list(document["assignment"].items())))
    path.write_text(json.dumps(dict(reversed(list(document.items())))))
    assert np.array_equal(Mapping.load(path, G, HW).node_of, loaded.node_of)


def test_saving_a_mapping_of_another_graph_is_refused(tmp_path):
    with pytest.raises(MappingError, match="does not place the 9-vertex graph"):
        Mapping(np.zeros(4, dtype=np.int32), 3).save(tmp_path / "m.json", G, HW)
    assert not (tmp_path / "m.json").exists()


def set_node(name, node):
    return lambda d: d["assignment"].__setitem__(name, node)


def delete(*keys):
    def change(d):
        table = d
        for key in keys[:-1]:
            table = table[key]
        del table[keys[-1]]

    return change


MALFORMED = [
    (
        set_node("dense1/m2", 0),
        r"names vertex 'dense1/m2', which the graph does not have; did you mean 'dense1/n2'\?",
    ),
    (delete("assignment", "dense2/n0"), "vertex 'dense2/n0' has no node; every vertex needs one"),
    (lambda d: d["assignment"].clear(), r"vertex 'source' has no node \(and 8 more\)"),
    (set_node("sink", 3), r"vertex 'sink' is on node 3, outside the hardware's 0..2"),
    (set_node("sink", -1), r"vertex 'sink' is on node -1, outside the hardware's 0..2"),
    (set_node("sink", "1"), "vertex 'sink' is on node '1', not a node number"),
    (set_node("sink", 1.0), "vertex 'sink' is on node 1.0, not a node number"),
    (set_node("sink", True), "vertex 'sink' is on node True, not a node number"),
    (lambda d: d.__setitem__("assignment", [0, 1]), "'assignment' must be a table"),
    (lambda d: d.__setitem__("format", "timeloop-map"), "not an nnsim mapping"),
    (lambda d: d.__setitem__("version", 2), "format version 2 is newer than this nnsim reads"),
    (lambda d: d.__setitem__("version", "1"), "version must be a whole number from 1, not '1'"),
    (lambda d: d.__setitem__("extra", 1), "unknown key 'extra'"),
    (lambda d: d.__setitem__("stratgy", 1), r"unknown key 'stratgy'; did you mean 'strategy'\?"),
    (delete("strategy"), "'strategy' is missing"),
    (lambda d: d.__setitem__("strategy", 7), "strategy must be a name, not 7"),
    (
        lambda d: d["graph"].__setitem__("sizes", [6, 5, 3]),
        r"made for the 6-5-3 neuron graph \(9 vertices, 19 edges\), not for this 6-4-3 neuron graph",
    ),
    (lambda d: d["graph"].__setitem__("granularity", "pixel"), "made for the 6-4-3 pixel graph"),
    (lambda d: d["graph"].__setitem__("edges", 20), "20 edges"),
    (lambda d: d["graph"].__setitem__("layers", 2), "unknown key 'graph.layers'"),
    (lambda d: d.__setitem__("graph", "6-4-3"), "'graph' must be a table"),
    (
        lambda d: d["hardware"].__setitem__("nodes", 4),
        r"made for 4 nodes, not for the 3 nodes given \(use --nodes",
    ),
    (lambda d: d["hardware"].__setitem__("name", "ring8"), "made for hardware 'ring8', not 'test'"),
    (
        lambda d: d.__setitem__("hardware", {"name": "test"}),
        "'hardware' must be a table of exactly name and nodes",
    ),
]


@pytest.mark.parametrize(("change", "message"), MALFORMED, ids=[m[:40] for _, m in MALFORMED])
def test_every_malformed_mapping_is_refused_in_one_line(tmp_path, change, message):
    refused(edited(tmp_path, change), message)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not a JSON mapping file"),
        ("", "not a JSON mapping file"),
        ("[1, 2]", "not an nnsim mapping"),
        ("[" * 2000 + "]" * 2000, "not a JSON mapping file"),
        ('{"format": "nnsim-dataflow-mapping", "format": "x"}', "'format' is given twice"),
        ("NaN", "not an nnsim mapping"),
    ],
    ids=["truncated", "empty", "a list", "deeply nested", "repeated key", "NaN"],
)
def test_files_that_are_not_json_mappings_are_refused(tmp_path, text, message):
    path = tmp_path / "map.json"
    path.write_text(text)
    refused(path, message)


def test_a_repeated_vertex_is_refused(tmp_path):
    path = saved(tmp_path)
    path.write_text(path.read_text().replace('"dense1/n1": ', '"dense1/n0": '))
    refused(path, "'dense1/n0' is given twice")


def test_a_file_too_big_for_a_mapping_of_this_graph_is_refused_unread(tmp_path):
    path = saved(tmp_path)
    limit = max_file_bytes(G)
    path.write_text(path.read_text() + " " * limit)
    refused(path, f"larger than {limit:,} bytes")


def test_missing_files_and_folders_are_one_line(tmp_path):
    refused(tmp_path / "none.json", "mapping file '.*none.json' does not exist")
    with pytest.raises(MappingError, match="is a folder"):
        Mapping.load(tmp_path, G, HW)


def test_a_mapping_of_the_pixel_graph_round_trips(tmp_path):
    g = graph(6, 4, 3, granularity="pixel")
    mapping = fold(g, HW, "layer")
    path = mapping.save(tmp_path / "pixel.json", g, HW)
    assert np.array_equal(Mapping.load(path, g, HW).node_of, mapping.node_of)
    refused(path, "made for the 6-4-3 pixel graph", G, HW)


def test_mappings_are_equal_when_they_place_every_vertex_alike():
    mapping = fold(G, HW, "balanced")
    assert mapping == Mapping(mapping.node_of.tolist(), 3, "by hand")
    assert mapping != Mapping(np.zeros(len(G)), 3)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    key=st.sampled_from(["format", "version", "graph", "hardware", "strategy", "assignment", "x"]),
    value=JSON,
)
def test_any_value_in_any_field_is_loaded_or_refused_in_one_line(tmp_path, key, value):
    document = fold(G, HW, "balanced").to_json(G, HW)
    document[key] = value
    path = tmp_path / "fuzz.json"
    path.write_text(json.dumps(document))
    try:
        Mapping.load(path, G, HW)
    except MappingError as error:
        assert "\n" not in str(error)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=300))
def test_any_bytes_are_refused_in_one_line(tmp_path, data):
    path = tmp_path / "fuzz.json"
    path.write_bytes(data)
    with pytest.raises(MappingError) as error:
        Mapping.load(path, G, HW)
    assert "\n" not in str(error.value)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=st.sampled_from([v.name for v in G.vertices]), node=JSON)
def test_any_node_value_of_any_vertex_is_loaded_or_refused_in_one_line(tmp_path, name, node):
    document = fold(G, HW, "balanced").to_json(G, HW)
    document["assignment"][name] = node
    path = tmp_path / "fuzz.json"
    path.write_text(json.dumps(document))
    try:
        loaded = Mapping.load(path, G, HW)
    except MappingError as error:
        assert "\n" not in str(error)
    else:
        assert loaded.node_of[G.vertex(name).id] == node
