"""A mapping: which hardware node hosts each vertex of a dataflow graph.

A mapping is data, as Timeloop's map files are: written by a folding
strategy, saved as JSON, edited by hand, loaded and evaluated again. It is
only ever used after a capacity check against the hardware
(`nnsim.dataflow.capacity.check_mapping`).

The JSON file (``FORMAT``, version ``VERSION``)::

    {
      "format": "nnsim-dataflow-mapping",
      "version": 1,
      "graph": {"sizes": [784, 128, 10], "granularity": "neuron",
                "vertices": 140, "edges": 1418},
      "hardware": {"name": "mesh16", "nodes": 16},
      "strategy": "metis",
      "assignment": {"source": 0, "dense1/n0": 0, ..., "sink": 15}
    }

``assignment`` maps every vertex name (the graph's stable paths) to a node
number ``0..nodes-1``; move a vertex by editing its number. Loading refuses,
in one line, a file that is not this format, a newer version, a graph or
hardware other than the one given, an unknown, missing or repeated vertex, a
node out of range, and a file too big to be a mapping of this graph.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnsim.dataflow.graph import GRANULARITIES, DataflowGraph
from nnsim.dataflow.hardware import Hardware
from nnsim.errors import NnsimError, did_you_mean

FORMAT = "nnsim-dataflow-mapping"
VERSION = 1
_KEYS = ("format", "version", "graph", "hardware", "strategy", "assignment")


class MappingError(NnsimError):
    """A mapping file or value that does not place this graph on this hardware."""


@dataclass(frozen=True, eq=False)
class Mapping:
    """``node_of[v]`` is the node (0..nodes-1) hosting vertex ``v``; ``strategy`` says who made it.

    Two mappings are equal when they place every vertex alike on as many
    nodes, whoever made them.
    """

    node_of: np.ndarray  # [vertices] int32
    nodes: int
    strategy: str = "manual"

    def __post_init__(self) -> None:
        object.__setattr__(self, "node_of", np.asarray(self.node_of, dtype=np.int32))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return self.nodes == other.nodes and np.array_equal(self.node_of, other.node_of)

    __hash__ = None  # type: ignore[assignment]  # mutable array inside

    def hosted(self, node: int) -> np.ndarray:
        """Vertex ids on ``node``, in vertex order (the order the node computes them in)."""
        return np.flatnonzero(self.node_of == node)

    def used_nodes(self) -> np.ndarray:
        return np.unique(self.node_of)

    # As data ------------------------------------------------------------------
    def to_json(self, graph: DataflowGraph, hardware: Hardware) -> dict:
        """The JSON document of this mapping (see the module docstring)."""
        if not fits(graph, hardware, self):
            raise MappingError(
                f"this mapping ({len(self.node_of)} vertices on {self.nodes} nodes) does not "
                f"place the {len(graph)}-vertex graph on the {hardware.count} nodes of {hardware.name}"
            )
        return {
            "format": FORMAT,
            "version": VERSION,
            "graph": _graph_facts(graph),
            "hardware": {"name": hardware.name, "nodes": hardware.count},
            "strategy": self.strategy,
            "assignment": {v.name: int(self.node_of[v.id]) for v in graph.vertices},
        }

    def save(self, path: str | os.PathLike, graph: DataflowGraph, hardware: Hardware) -> Path:
        """Write the mapping as JSON to ``path`` atomically (a crash leaves the old file whole)."""
        from nnsim.files import atomic_write

        with atomic_write(path) as handle:
            handle.write(dumps(self.to_json(graph, hardware)))
        return Path(path)

    @classmethod
    def from_json(
        cls, document: object, graph: DataflowGraph, hardware: Hardware, where: str = "mapping"
    ) -> Mapping:
        """The mapping a JSON document describes, or one `MappingError` line prefixed by ``where``."""
        try:
            return _parse(document, graph, hardware)
        except MappingError as error:
            raise MappingError(f"{where}: {error}") from None

    @classmethod
    def load(cls, path: str | os.PathLike, graph: DataflowGraph, hardware: Hardware) -> Mapping:
        """Read a mapping file written by `save` (or by hand) for ``graph`` on ``hardware``."""
        from nnsim.dataflow.textfile import read_text

        text = read_text(path, "mapping file", max_file_bytes(graph), MappingError)
        try:
            document = json.loads(text, object_pairs_hook=_no_repeats)
        except MappingError as error:
            raise MappingError(f"{path}: {error}") from None
        except (ValueError, RecursionError) as error:
            raise MappingError(f"{path}: not a JSON mapping file ({error})") from None
        return cls.from_json(document, graph, hardware, where=str(path))


def dumps(document: dict) -> str:
    """The JSON text of a mapping document: one line per key, one line per vertex (for editing)."""
    lines = [f"  {json.dumps(key)}: {json.dumps(value)}," for key, value in document.items()]
    assignment = document.get("assignment")
    if isinstance(assignment, dict) and lines[-1].startswith('  "assignment"'):
        rows = [f"    {json.dumps(name)}: {node}" for name, node in assignment.items()]
        lines[-1] = '  "assignment": {\n' + ",\n".join(rows) + "\n  }"
    else:
        lines[-1] = lines[-1].rstrip(",")
    return "{\n" + "\n".join(lines) + "\n}\n"


def max_file_bytes(graph: DataflowGraph) -> int:
    """The largest mapping file read for ``graph``: a generous line per vertex, nothing unbounded."""
    longest = max(len(v.name) for v in graph.vertices)
    return 4096 + len(graph) * (longest + 64)


def fits(graph: DataflowGraph, hardware: Hardware, mapping: Mapping) -> bool:
    """Shape check only: one node per vertex, every node id inside the hardware."""
    return (
        mapping.node_of.shape == (len(graph),)
        and mapping.nodes == hardware.count
        and bool(((mapping.node_of >= 0) & (mapping.node_of < hardware.count)).all())
    )


def _graph_facts(graph: DataflowGraph) -> dict:
    return {
        "sizes": list(graph.model.sizes),
        "granularity": graph.granularity,
        "vertices": len(graph),
        "edges": graph.edge_count,
    }


def _shown(value: object) -> str:
    """``value`` quoted for a one-line message: escaped, and cut short if it is long."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _no_repeats(pairs: list[tuple[str, object]]) -> dict:
    table: dict = {}
    for key, value in pairs:
        if key in table:
            raise MappingError(f"{_shown(key)} is given twice")
        table[key] = value
    return table


def _parse(document: object, graph: DataflowGraph, hardware: Hardware) -> Mapping:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise MappingError(f'not an nnsim mapping (no "format": "{FORMAT}")')
    version = document.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise MappingError(f"version must be a whole number from 1, not {_shown(version)}")
    if version > VERSION:
        raise MappingError(
            f"format version {version} is newer than this nnsim reads ({VERSION}); upgrade nnsim"
        )
    for key in document:
        if key not in _KEYS:
            raise MappingError(f"unknown key {_shown(key)}{did_you_mean(key, _KEYS)}")
    for key in _KEYS:
        if key not in document:
            raise MappingError(f"'{key}' is missing")
    _same_graph(document["graph"], graph)
    _same_hardware(document["hardware"], hardware)
    strategy = document["strategy"]
    if not isinstance(strategy, str) or not strategy or len(strategy) > 200:
        raise MappingError(f"strategy must be a name, not {_shown(strategy)}")
    return Mapping(_assignment(document["assignment"], graph, hardware), hardware.count, strategy)


def _same_graph(facts: object, graph: DataflowGraph) -> None:
    want = _graph_facts(graph)
    if not isinstance(facts, dict):
        raise MappingError("'graph' must be a table of sizes, granularity, vertices and edges")
    for key in facts:
        if key not in want:
            raise MappingError(
                f"unknown key {_shown('graph.' + key)}{did_you_mean(key, want, 'graph.')}"
            )
    have = {key: facts.get(key) for key in want}
    if have != want:

        def show(f: dict) -> str:
            sizes, kind = f["sizes"], f["granularity"]
            whole = isinstance(sizes, list) and all(type(n) is int for n in sizes)
            sizes = "-".join(map(str, sizes)) if whole else _shown(sizes)
            kind = kind if kind in GRANULARITIES else _shown(kind)
            counts = [n if type(n) is int else _shown(n) for n in (f["vertices"], f["edges"])]
            return f"{sizes} {kind} graph ({counts[0]} vertices, {counts[1]} edges)"

        raise MappingError(f"made for the {show(have)}, not for this {show(want)}")


def _same_hardware(facts: object, hardware: Hardware) -> None:
    if not isinstance(facts, dict) or set(facts) != {"name", "nodes"}:
        raise MappingError("'hardware' must be a table of exactly name and nodes")
    if facts["nodes"] != hardware.count or isinstance(facts["nodes"], bool):
        raise MappingError(
            f"made for {_shown(facts['nodes'])} nodes, not for the {hardware.count} nodes given "
            "(use --nodes to match it, or fold again)"
        )
    if facts["name"] != hardware.name:
        raise MappingError(
            f"made for hardware {_shown(facts['name'])}, not {hardware.name!r} "
            "(edit hardware.name in the file if it is meant for this hardware)"
        )


def _assignment(table: object, graph: DataflowGraph, hardware: Hardware) -> np.ndarray:
    if not isinstance(table, dict):
        raise MappingError("'assignment' must be a table of vertex name -> node number")
    node_of = np.full(len(graph), -1, dtype=np.int32)
    names = {v.name: v.id for v in graph.vertices}
    for name, node in table.items():
        if name not in names:
            raise MappingError(
                f"assignment names vertex {_shown(name)}, which the graph does not have"
                f"{did_you_mean(name, names)}"
            )
        if isinstance(node, bool) or not isinstance(node, int):
            raise MappingError(f"vertex '{name}' is on node {_shown(node)}, not a node number")
        if not 0 <= node < hardware.count:
            raise MappingError(
                f"vertex '{name}' is on node {node}, outside the hardware's 0..{hardware.count - 1}"
            )
        node_of[names[name]] = node
    missing = np.flatnonzero(node_of < 0)
    if missing.size:
        more = f" (and {missing.size - 1} more)" if missing.size > 1 else ""
        raise MappingError(
            f"vertex '{graph.vertices[missing[0]].name}' has no node{more}; every vertex needs one"
        )
    return node_of
