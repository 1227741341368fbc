"""Hardware files: the presets load, every bad key or value is one line, routes are the documented ones."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnsim.dataflow import Hardware, HardwareError
from nnsim.dataflow.hardware import MAX_FILE_BYTES, squarest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PRESETS = Path(__file__).resolve().parent.parent / "examples" / "dataflow" / "hw"

GOOD = """\
name = "tiny"
word_bits = 16

[node]
clock = "500MHz"
macs_per_cycle = 8
memory_words = 4096
input_ports = 2
output_ports = 3
count = 6
max_macs_per_image = 900

[link]
latency = 3
width = 32

[topology]
kind = "mesh2d"
shape = [2, 3]
"""


def write(tmp_path: Path, text: str, name: str = "hw.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_preset_loads_and_says_what_it_is():
    presets = sorted(PRESETS.glob("*.toml"))
    assert {p.stem for p in presets} >= {"full", "mesh16", "ring8", "torus16"}
    for path in presets:
        text = path.read_text()
        assert text.startswith("# "), f"{path.name} has no comment line saying what it is"
        hardware = Hardware.load(path)
        assert hardware.name == path.stem
    assert Hardware.load(PRESETS / "full.toml").count == 140
    assert Hardware.load(PRESETS / "torus16.toml").grid == (4, 4)


def test_a_hardware_file_sets_every_field(tmp_path):
    hw = Hardware.load(write(tmp_path, GOOD))
    assert (hw.name, hw.word_bits, hw.count, hw.topology, hw.grid) == (
        "tiny",
        16,
        6,
        "mesh2d",
        (2, 3),
    )
    assert (hw.node.clock, hw.node.period, hw.node.macs_per_cycle) == ("500MHz", 2000, 8)
    assert (hw.node.memory_words, hw.node.input_ports, hw.node.output_ports) == (4096, 2, 3)
    assert hw.node.max_macs_per_image == 900
    assert (hw.link.latency, hw.link.width) == (3, 32)
    assert hw.frame_cycles(5) == 3 + 3  # ceil(5 words * 16 bits / 32 bits per cycle)
    assert hw.describe() == (
        "tiny: 6 nodes (mesh2d 2x3), 8 MACs/cycle at 500MHz, 4096 words each and at most "
        "900 MACs per image; links 3 cycles + 32 bits/cycle"
    )


def test_defaults_name_from_the_file_and_no_mac_budget(tmp_path):
    hw = Hardware.load(write(tmp_path, "[node]\ncount = 3\n", "lab.toml"))
    assert (hw.name, hw.count, hw.topology, hw.node.max_macs_per_image) == ("lab", 3, "full", None)


def test_a_shape_alone_gives_the_node_count(tmp_path):
    hw = Hardware.load(write(tmp_path, '[topology]\nkind = "torus2d"\nshape = [3, 5]\n'))
    assert hw.count == 15


BAD = [
    ('nam = "x"', r"unknown key 'nam'; did you mean 'name'\?"),
    ("[node]\nmemory = 5", r"unknown key 'node.memory'; did you mean 'node.memory_words'\?"),
    ("[link]\nlatncy = 5", r"unknown key 'link.latncy'; did you mean 'link.latency'\?"),
    ("[topology]\nkinds = 'ring'", r"unknown key 'topology.kinds'; did you mean 'topology.kind'\?"),
    ("node = 3", r"\[node\] must be a table"),
    ("[node]\nmacs_per_cycle = 0", "node.macs_per_cycle must be between 1 and"),
    ("[node]\nmacs_per_cycle = 1.5", "node.macs_per_cycle must be a whole number, not 1.5"),
    ("[node]\nmacs_per_cycle = '16'", "node.macs_per_cycle must be a whole number, not '16'"),
    ("[node]\nmacs_per_cycle = true", "node.macs_per_cycle must be a whole number, not True"),
    ("[node]\nmemory_words = -4", "node.memory_words must be between 1 and"),
    ("[node]\ninput_ports = 0", "node.input_ports must be between 1 and"),
    ("[node]\noutput_ports = 0", "node.output_ports must be between 1 and"),
    ("[node]\nmax_macs_per_image = 0", "node.max_macs_per_image must be between 1 and"),
    ("[node]\nmax_macs_per_image = 'lots'", "node.max_macs_per_image must be a whole number"),
    ("[node]\ncount = 0", r"count \(nodes\) must be between 1 and 4096, not 0"),
    ("[node]\ncount = 5000", r"count \(nodes\) must be between 1 and 4096, not 5000"),
    ("[node]\nclock = 5", "node.clock must be a string such as '1GHz', not 5"),
    ("[node]\nclock = 'fast'", "node.clock: cannot read 'fast'"),
    ("[node]\nclock = '3THz'", "node.clock: the period of '3THz' is not a whole number"),
    ("[link]\nlatency = 0", r"link.latency \(cycles\) must be between 1 and"),
    ("[link]\nwidth = 0", r"link.width \(bits per cycle\) must be between 1 and"),
    ("word_bits = 0", "word_bits must be between 1 and 1024"),
    ("name = 3", "name must be a string, not 3"),
    (
        "[topology]\nkind = 'hypercube'",
        "topology 'hypercube' is not one of full, ring, mesh2d, torus2d",
    ),
    ("[topology]\nkind = 'mesh2d'\nshape = [4]", r"topology.shape must be \[rows, columns\]"),
    (
        "[topology]\nkind = 'mesh2d'\nshape = [4, 'x']",
        "topology.shape columns must be a whole number",
    ),
    ("[node]\ncount = 16\n[topology]\nshape = [3, 3]", "shape 3x3 holds 9 nodes, not 16"),
    ("[node\ncount = 1", "not a TOML hardware file"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m for _, m in BAD])
def test_every_bad_key_or_value_is_refused_in_one_line(tmp_path, text, message):
    path = write(tmp_path, text + "\n")
    with pytest.raises(HardwareError, match=message) as refused:
        Hardware.load(path)
    assert "\n" not in str(refused.value)
    assert str(refused.value).startswith(str(path))


def test_files_that_are_not_hardware_files_are_refused(tmp_path):
    with pytest.raises(HardwareError, match=r"hardware file '.*missing.toml' does not exist"):
        Hardware.load(tmp_path / "missing.toml")
    with pytest.raises(HardwareError, match="is a folder, not a regular file"):
        Hardware.load(tmp_path)
    big = write(tmp_path, "# " + "x" * MAX_FILE_BYTES, "big.toml")
    with pytest.raises(HardwareError, match=f"larger than {MAX_FILE_BYTES:,} bytes"):
        Hardware.load(big)
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(HardwareError, match="is not UTF-8 text"):
        Hardware.load(latin)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "hw.toml"
    os.mkfifo(fifo)
    with pytest.raises(HardwareError, match="is a FIFO"):
        Hardware.load(fifo)


def hw(topology: str, count: int, shape=None) -> Hardware:
    return Hardware(topology=topology, count=count, shape=shape)


def path_of(route):
    return [route[0][0], *(b for _, b in route)] if route else []


def test_full_routes_are_one_hop():
    full = hw("full", 6)
    assert full.route(2, 5) == [(2, 5)]
    assert full.route(3, 3) == []
    assert full.neighbours(4) == [0, 1, 2, 3, 5]


def test_ring_routes_take_the_shorter_way_round_clockwise_on_a_tie():
    ring = hw("ring", 8)
    assert path_of(ring.route(0, 3)) == [0, 1, 2, 3]
    assert path_of(ring.route(0, 5)) == [0, 7, 6, 5]
    assert path_of(ring.route(6, 1)) == [6, 7, 0, 1]
    assert path_of(ring.route(0, 4)) == [0, 1, 2, 3, 4]  # tie: clockwise
    assert ring.neighbours(0) == [1, 7]
    assert hw("ring", 2).neighbours(0) == [1]
    assert hw("ring", 1).neighbours(0) == []


def test_mesh_routes_go_along_the_row_first_then_the_column():
    mesh = hw("mesh2d", 12, (3, 4))  # node = row * 4 + column
    assert path_of(mesh.route(0, 11)) == [0, 1, 2, 3, 7, 11]
    assert path_of(mesh.route(11, 0)) == [11, 10, 9, 8, 4, 0]
    assert path_of(mesh.route(5, 6)) == [5, 6]
    assert mesh.hops(0, 11) == 5
    assert mesh.neighbours(5) == [1, 4, 6, 9]
    assert mesh.neighbours(0) == [1, 4]
    assert mesh.neighbours(11) == [7, 10]


def test_torus_routes_wrap_round_the_shorter_way():
    torus = hw("torus2d", 16, (4, 4))
    assert path_of(torus.route(0, 3)) == [0, 3]  # wrap left
    assert path_of(torus.route(0, 12)) == [0, 12]  # wrap up
    assert path_of(torus.route(5, 15)) == [5, 6, 7, 11, 15]  # ties: forward
    assert torus.hops(0, 10) == 4
    assert torus.neighbours(0) == [1, 3, 4, 12]
    assert hw("torus2d", 4, (2, 2)).neighbours(0) == [1, 2]


@pytest.mark.parametrize(
    "hardware",
    [hw("full", 5), hw("ring", 7), hw("mesh2d", 12, (3, 4)), hw("torus2d", 15, (3, 5))],
    ids=["full", "ring", "mesh2d", "torus2d"],
)
def test_neighbours_are_exactly_the_nodes_one_hop_away_and_routes_use_only_links(hardware):
    for a in range(hardware.count):
        assert hardware.neighbours(a) == [
            b for b in range(hardware.count) if hardware.hops(a, b) == 1
        ]
        for b in range(hardware.count):
            for x, y in hardware.route(a, b):
                assert y in hardware.neighbours(x)


def test_with_nodes_rederives_a_grid_that_no_longer_fits():
    mesh = Hardware.load(PRESETS / "mesh16.toml")
    assert mesh.with_nodes(6).grid == (2, 3)
    assert mesh.with_nodes(16).grid == (4, 4)
    assert squarest(7) == (1, 7)


TOML_VALUES = st.recursive(
    st.booleans()
    | st.integers(-3, 70000)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text("abc", max_size=3), inner, max_size=2)
    ),
    max_leaves=6,
)
KEYS = [
    ("", "name"),
    ("", "word_bits"),
    ("", "node"),
    ("node", "clock"),
    ("node", "macs_per_cycle"),
    ("node", "memory_words"),
    ("node", "input_ports"),
    ("node", "count"),
    ("node", "max_macs_per_image"),
    ("link", "latency"),
    ("link", "width"),
    ("topology", "kind"),
    ("topology", "shape"),
]


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(where=st.sampled_from(KEYS), value=TOML_VALUES)
def test_any_value_of_any_key_is_loaded_or_refused_in_one_line(tmp_path, where, value):
    table, key = where
    document = tomllib.loads(GOOD)
    (document[table] if table else document)[key] = value
    path = tmp_path / "fuzz.toml"
    path.write_text(_toml(document))
    try:
        Hardware.load(path)
    except HardwareError as error:
        assert "\n" not in str(error)


def _toml(document: dict) -> str:
    """A small TOML writer for the fuzz test (values as inline JSON-like TOML)."""

    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return "{" + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + "}"

    lines = [f"{k} = {value(v)}" for k, v in document.items() if not isinstance(v, dict)]
    for name, table in document.items():
        if isinstance(table, dict):
            lines.append(f"[{name}]")
            lines += [f"{json.dumps(k)} = {value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def test_the_example_in_the_module_docstring_loads(tmp_path):
    import textwrap

    from nnsim.dataflow import hardware as module

    example = module.__doc__.split("::\n\n", 1)[1].split("\n\n``max_macs")[0]
    hw = Hardware.load(write(tmp_path, textwrap.dedent(example)))
    assert (hw.name, hw.count, hw.topology, hw.grid) == ("edge-16", 16, "mesh2d", (4, 4))
    assert hw.node.max_macs_per_image == 20000
