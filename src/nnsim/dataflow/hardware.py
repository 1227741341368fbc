"""Hardware as data: a few nodes with fixed capabilities, and the links between them.

A hardware file is TOML, in the spirit of SCALE-Sim's config: one node type
(every node is alike, as the PEs of an array are), a link type, and a
topology. ``--nodes H`` (or ``count``) says how many nodes there are::

    name = "edge-16"
    word_bits = 32          # bits of one value on a link

    [node]
    clock = "1GHz"
    macs_per_cycle = 16     # a hosted neuron takes ceil(fan_in / macs_per_cycle) cycles
    memory_words = 65536    # weights + activations a node can hold
    input_ports = 4         # links a node can receive on
    output_ports = 4        # links a node can send on
    count = 16              # default number of nodes
    max_macs_per_image = 20000  # optional: the MACs a node may spend on one image
    image_buffers = 2       # images a node holds in flight (credit-based flow control)

    [link]
    latency = 2             # cycles per hop (of the sending node's clock)
    width = 64              # bits per cycle

    [topology]
    kind = "mesh2d"         # full | ring | mesh2d | torus2d
    shape = [4, 4]          # mesh2d/torus2d: rows x columns (default: the squarest that fits)

``max_macs_per_image`` is a compute budget (absent: no limit): a node may
host neurons whose fan-ins add up to at most this many multiply-accumulates
per image, e.g. to hold a frame rate (20,000 MACs at 16 MACs/cycle and 1 GHz
is 1.25 µs of compute per image). The capacity check refuses a mapping that
breaks it, as it refuses one that overflows ``memory_words`` or the ports
(``dataflow/capacity.py`` says what each counts).

Routes are fixed and deterministic (dimension order on meshes, the shorter
way round a ring, clockwise on a tie), so a mapping always gives the same
traffic on the same links.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nnsim.errors import NnsimError, UnitError
from nnsim.units import period_of

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TOPOLOGIES = ("full", "ring", "mesh2d", "torus2d")
MAX_NODES = 4096
MAX_FILE_BYTES = 1 << 20


class HardwareError(NnsimError):
    """A hardware file or value that does not describe usable hardware."""


@dataclass(frozen=True)
class NodeType:
    clock: str = "1GHz"
    macs_per_cycle: int = 16
    memory_words: int = 1 << 20
    input_ports: int = 4
    output_ports: int = 4
    max_macs_per_image: int | None = None  # None: no compute budget per image
    image_buffers: int = 2  # images in flight per node (`nnsim.dataflow.node`: flow control)

    @property
    def period(self) -> int:
        """One cycle in ps."""
        return period_of(self.clock)


@dataclass(frozen=True)
class LinkType:
    latency: int = 1  # cycles per hop
    width: int = 32  # bits per cycle


@dataclass(frozen=True)
class Hardware:
    """``count`` identical nodes on a topology; ``with_nodes(H)`` gives the same hardware with H nodes."""

    name: str = "hardware"
    node: NodeType = NodeType()
    link: LinkType = LinkType()
    topology: str = "full"
    shape: tuple[int, int] | None = None
    count: int = 1
    word_bits: int = 32

    def __post_init__(self) -> None:
        _check_hardware(self)

    @classmethod
    def load(cls, path: str | Path) -> Hardware:
        """Read a hardware TOML file; a bad one is one line naming the file and the key."""
        return _load(Path(path))

    def with_nodes(self, count: int) -> Hardware:
        """This hardware with ``count`` nodes (a mesh/torus shape is re-derived unless it fits)."""
        shape = self.shape if self.shape and self.shape[0] * self.shape[1] == count else None
        return replace(self, count=count, shape=shape)

    @property
    def grid(self) -> tuple[int, int]:
        """Rows x columns of a mesh2d/torus2d (the squarest grid holding ``count`` nodes)."""
        if self.shape:
            return self.shape
        return squarest(self.count)

    def node_name(self, node: int) -> str:
        return f"node{node}"

    def route(self, source: int, target: int) -> list[tuple[int, int]]:
        """The directed hops ``[(a, b), ...]`` a frame takes from node ``source`` to ``target``."""
        if source == target:
            return []
        if self.topology == "full":
            return [(source, target)]
        path = [source]
        if self.topology == "ring":
            n = self.count
            forward = (target - source) % n
            step = 1 if forward <= n - forward else -1
            while path[-1] != target:
                path.append((path[-1] + step) % n)
        else:
            rows, cols = self.grid
            wrap = self.topology == "torus2d"
            (r, c), (tr, tc) = divmod(source, cols), divmod(target, cols)
            for axis in (1, 0):  # dimension order: columns first, then rows
                while (c if axis else r) != (tc if axis else tr):
                    here, goal, size = (c, tc, cols) if axis else (r, tr, rows)
                    step = _step(here, goal, size, wrap)
                    if axis:
                        c = (c + step) % cols
                    else:
                        r = (r + step) % rows
                    path.append(r * cols + c)
        return list(zip(path[:-1], path[1:], strict=True))

    def hops(self, source: int, target: int) -> int:
        return len(self.route(source, target))

    def neighbours(self, node: int) -> list[int]:
        """Nodes one physical link away, sorted (every other node on ``full``).

        Links are bidirectional, so this is both whom ``node`` sends to and
        whom it receives from: its physical degree is ``len(neighbours)``.
        """
        if self.topology == "full":
            return [other for other in range(self.count) if other != node]
        if self.topology == "ring":
            found = {(node - 1) % self.count, (node + 1) % self.count}
        else:
            rows, cols = self.grid
            wrap = self.topology == "torus2d"
            r, c = divmod(node, cols)
            found = set()
            for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                rr, cc = r + dr, c + dc
                if wrap:
                    rr, cc = rr % rows, cc % cols
                if 0 <= rr < rows and 0 <= cc < cols:
                    found.add(rr * cols + cc)
        found.discard(node)
        return sorted(found)

    def frame_cycles(self, words: int) -> int:
        """Cycles one hop takes for a frame of ``words`` values: latency + ceil(words·bits / width)."""
        return self.link.latency + -(-words * self.word_bits // self.link.width)

    def describe(self) -> str:
        shape = "x".join(map(str, self.grid)) if self.topology in ("mesh2d", "torus2d") else ""
        return (
            f"{self.name}: {self.count} nodes ({self.topology}{' ' + shape if shape else ''}), "
            f"{self.node.macs_per_cycle} MACs/cycle at {self.node.clock}, "
            f"{self.node.memory_words} words each"
            + (
                f" and at most {self.node.max_macs_per_image} MACs per image"
                if self.node.max_macs_per_image is not None
                else ""
            )
            + f"; links {self.link.latency} cycles + "
            f"{self.link.width} bits/cycle"
        )


def squarest(count: int) -> tuple[int, int]:
    """Rows x columns with rows * columns == count and rows <= columns as close as can be."""
    rows = int(math.isqrt(count))
    while count % rows:
        rows -= 1
    return rows, count // rows


def _step(here: int, goal: int, size: int, wrap: bool) -> int:
    if not wrap:
        return 1 if goal > here else -1
    forward = (goal - here) % size
    return 1 if forward <= size - forward else -1


# Validation -------------------------------------------------------------------
def _positive_int(value: Any, what: str, *, at_least: int = 1, at_most: int = 2**40) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise HardwareError(f"{what} must be a whole number, not {value!r}")
    if not at_least <= value <= at_most:
        raise HardwareError(f"{what} must be between {at_least} and {at_most}, not {value}")
    return value


def _check_hardware(hw: Hardware) -> None:
    _positive_int(hw.count, "count (nodes)", at_most=MAX_NODES)
    _positive_int(hw.word_bits, "word_bits", at_most=1024)
    _positive_int(hw.node.macs_per_cycle, "node.macs_per_cycle", at_most=2**20)
    _positive_int(hw.node.memory_words, "node.memory_words")
    _positive_int(hw.node.input_ports, "node.input_ports", at_most=MAX_NODES)
    _positive_int(hw.node.output_ports, "node.output_ports", at_most=MAX_NODES)
    _positive_int(hw.node.image_buffers, "node.image_buffers", at_most=1 << 16)
    if hw.node.max_macs_per_image is not None:
        _positive_int(hw.node.max_macs_per_image, "node.max_macs_per_image")
    _positive_int(hw.link.latency, "link.latency (cycles)", at_least=1, at_most=2**30)
    _positive_int(hw.link.width, "link.width (bits per cycle)", at_most=2**20)
    try:
        period = period_of(hw.node.clock)
    except UnitError as error:
        raise HardwareError(f"node.clock: {error}") from None
    if period <= 0:
        raise HardwareError(f"node.clock '{hw.node.clock}' is faster than 1 ps, nnsim's time unit")
    if hw.topology not in TOPOLOGIES:
        raise HardwareError(f"topology '{hw.topology}' is not one of {', '.join(TOPOLOGIES)}")
    if hw.shape is not None:
        rows, cols = hw.shape
        if rows * cols != hw.count:
            raise HardwareError(
                f"topology shape {rows}x{cols} holds {rows * cols} nodes, not {hw.count}"
            )


def _load(path: Path) -> Hardware:
    from nnsim.dataflow.textfile import read_text

    text = read_text(path, "hardware file", MAX_FILE_BYTES, HardwareError)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise HardwareError(f"{path}: not a TOML hardware file ({error})") from None
    try:
        return _from_table(data, path.stem)
    except HardwareError as error:
        raise HardwareError(f"{path}: {error}") from None


def _from_table(data: dict, default_name: str) -> Hardware:
    known = {"name", "word_bits", "node", "link", "topology"}
    _no_unknown(data, known, "")
    node_table = _table(data, "node")
    link_table = _table(data, "link")
    topology_table = _table(data, "topology")
    _no_unknown(node_table, {*NodeType.__dataclass_fields__, "count"}, "node.")
    _no_unknown(link_table, set(LinkType.__dataclass_fields__), "link.")
    _no_unknown(topology_table, {"kind", "shape"}, "topology.")
    count = node_table.pop("count", 1)
    node = NodeType(**node_table)
    if not isinstance(node.clock, str):
        raise HardwareError(f"node.clock must be a string such as '1GHz', not {node.clock!r}")
    shape = topology_table.get("shape")
    if shape is not None:
        if not (isinstance(shape, list) and len(shape) == 2):
            raise HardwareError(f"topology.shape must be [rows, columns], not {shape!r}")
        shape = (
            _positive_int(shape[0], "topology.shape rows", at_most=MAX_NODES),
            _positive_int(shape[1], "topology.shape columns", at_most=MAX_NODES),
        )
        if count == 1 and "count" not in _table(data, "node"):
            count = shape[0] * shape[1]
    name = data.get("name", default_name)
    if not isinstance(name, str):
        raise HardwareError(f"name must be a string, not {name!r}")
    return Hardware(
        name=name,
        node=node,
        link=LinkType(**link_table),
        topology=topology_table.get("kind", "full"),
        shape=shape,
        count=count,
        word_bits=data.get("word_bits", 32),
    )


def _table(data: dict, key: str) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise HardwareError(f"[{key}] must be a table")
    return dict(value)


def _no_unknown(table: dict, known: set[str], prefix: str) -> None:
    from nnsim.errors import did_you_mean

    for key in table:
        if key not in known:
            raise HardwareError(f"unknown key '{prefix}{key}'{did_you_mean(key, known, prefix)}")
