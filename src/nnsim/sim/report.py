"""What a finished (or running) simulation can tell about itself: dot graph, statistics.

Statistics are the components' declared counters plus what the kernel counts
anyway: events sent and received per port, ticks handled per clock, and from
those the calls of each handler method (a port's events received are its
handler's calls, a clock's ticks its handler's).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from nnsim.files import atomic_write, write_text
from nnsim.sim.simulation import Simulation
from nnsim.units import format_time

# How a link is drawn, by the name of its ports: forward (solid), backward (dashed), result (dotted).
_EDGE_STYLES = {
    "forward": "",
    "backward": ', style=dashed, color="#b03a2e", fontcolor="#b03a2e"',
    "result": ', style=dotted, penwidth=1.5, color="#1f618d", fontcolor="#1f618d"',
}
_LEGEND = {
    "backward": "dashed: backward",
    "result": "dotted: result",
}


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _link_kind(*ports: str) -> str:
    for kind in ("backward", "result"):
        if any(port.startswith(kind) for port in ports):
            return kind
    return "forward"


def _node_label(component) -> str:
    lines = [component.name, component.kind()]
    weights = getattr(component, "weights", None)
    shape = getattr(weights, "shape", None)
    if shape is not None and len(shape) == 2:
        lines.append(f"{shape[0]} x {shape[1]} weights")
    for slot, sub in component.subcomponents.items():
        lines.append(f"{slot}: {sub.kind()}")
    return "\\n".join(_quote(line) for line in lines)


RANKDIRS = ("LR", "TB", "RL", "BT")
"""Graphviz directions: left to right (the default), top to bottom, and their reverses."""


def to_dot(sim: Simulation, rankdir: str = "LR") -> str:
    """The component graph in Graphviz dot, drawn along the forward links (``rankdir``).

    One node per component (name, type, weight shape, subcomponents) — or,
    for a component that names ``graph_members()`` (a dataflow node's
    vertices), a cluster box holding them; components with ``graph_drawn``
    false are left out — one edge
    per link from its sending port to its receiving one, labelled with the
    sender's latency (and the ports, unless they are a plain ``x_out -> x_in``
    pair). Links on ``backward_*`` ports are dashed
    and ``result_*`` ones dotted; both are laid out against the forward
    direction so that the forward chain reads from left to right. Edge labels
    are 10 pt on a white box with room between the ranks, so that they stay
    readable next to the arrows in a PNG.
    """
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, not {rankdir!r}")
    lines = [
        "digraph nnsim {",
        f"  rankdir={rankdir};",
        '  graph [fontname="Helvetica", fontsize=11, nodesep=0.4, ranksep=0.8, pad=0.2];',
        '  node [shape=box, style="rounded,filled", fillcolor="#eef3f8", fontname="Helvetica", '
        "fontsize=12];",
        '  edge [fontname="Helvetica", fontsize=10, arrowsize=0.7, fontcolor="#222222"];',
    ]
    clusters = set()
    for name, component in sim.components.items():
        if not component.graph_drawn:
            continue
        members = component.graph_members()
        if not members:
            lines.append(f'  "{_quote(name)}" [label="{_node_label(component)}"];')
            continue
        clusters.add(name)  # a box of its members; links attach to an invisible anchor
        lines.append(f'  subgraph "cluster_{_quote(name)}" {{')
        lines.append(f'    label="{_node_label(component)}"; style="rounded"; color="#7f8c8d";')
        lines.append(f'    "{_quote(name)}" [shape=point, style=invis, width=0];')
        for member in members:
            lines.append(
                f'    "{_quote(name)}:{_quote(member)}" [label="{_quote(member)}", fontsize=10];'
            )
        lines.append("  }")
    if clusters:
        lines.insert(2, "  compound=true;")
    kinds = set()
    for link in sim.link_list:
        tail, head = link.ends
        if tail.owner is head.owner and tail.owner.name in clusters:
            continue  # a node's link to itself (its reminders) says nothing in the picture
        if tail.handler_name is not None and head.handler_name is None:
            tail, head = head, tail  # draw from the port that sends to the one that receives
        kind = _link_kind(tail.port, head.port)
        kinds.add(kind)
        label = format_time(tail.latency)
        if not (tail.port.endswith("_out") and head.port == tail.port[:-4] + "_in"):
            label = f"{tail.port} -> {head.port}\\n{label}"  # the ports say more than the style
        source, target = _quote(tail.owner.name), _quote(head.owner.name)
        ends = "".join(
            f', {side}="cluster_{name}"'
            for side, name in (("ltail", source), ("lhead", target))
            if name in clusters
        )
        if tail.handler_name is not None and head.handler_name is not None:
            ends += ", dir=both"  # both ends receive: frames go either way
        if kind == "forward":
            lines.append(f'  "{source}" -> "{target}" [label="{label}"{ends}];')
        else:  # a feedback link: laid out as if it went forward, arrow reversed
            lines.append(
                f'  "{target}" -> "{source}" [label="{label}", dir=back{_EDGE_STYLES[kind]}];'
            )
    legend = [_LEGEND[kind] for kind in ("backward", "result") if kind in kinds]
    if legend:
        lines.append(f'  label="solid: forward   {"   ".join(legend)}"; labelloc=b;')
    lines.append("}")
    return "\n".join(lines) + "\n"


def collect_statistics(sim: Simulation) -> list[tuple[str, str, float]]:
    """Rows of (element, statistic, value), in component order."""
    rows: list[tuple[str, str, float]] = []
    for component in sim.components.values():
        for end in component.links.values():
            rows.append((component.name, f"{end.port}.events_sent", end.sent))
            rows.append((component.name, f"{end.port}.events_received", end.received))
        for index, clock in enumerate(component.clocks):
            rows.append((component.name, f"clock{index}.busy_ticks", clock.ticks))
        rows.extend((component.name, stat, value) for stat, value in _handler_calls(component))
        for element in (component, *component.subcomponents.values()):
            rows.extend((element.name, stat, value) for stat, value in element.stats.items())
    return rows


def _handler_calls(component) -> list[tuple[str, int]]:
    """``handler.<name>.calls`` per handler method: events received on its ports, clock ticks."""
    calls: dict[str, int] = {}
    for end in component.links.values():
        if end.handler_name is not None:
            key = f"handler.{end.handler_name}.calls"
            calls[key] = calls.get(key, 0) + end.received
    for clock in component.clocks:
        key = f"handler.{clock.handler_name}.calls"
        calls[key] = calls.get(key, 0) + clock.ticks
    return list(calls.items())


def write_statistics(sim: Simulation, path: str | Path) -> None:
    """Write the statistics as CSV, or JSON when the file name ends in ``.json``."""
    path = Path(path)
    rows = collect_statistics(sim)
    if path.suffix.lower() == ".json":
        tree: dict[str, dict[str, float]] = {}
        for element, stat, value in rows:
            tree.setdefault(element, {})[stat] = value
        document = {"simulated_time_ps": sim.now, "statistics": tree}
        write_text(path, json.dumps(document, indent=2) + "\n")
        return
    with atomic_write(path, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["component", "statistic", "value"])
        writer.writerows(rows)
