"""What a finished (or running) simulation can tell about itself: dot graph, statistics.

Statistics are the components' declared counters plus what the kernel counts
anyway: events sent and received per port, ticks handled per clock.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from nnsim.sim.simulation import Simulation
from nnsim.units import format_time


def to_dot(sim: Simulation) -> str:
    """The component graph in Graphviz dot: one node per component, one edge per link."""
    lines = ["digraph nnsim {", "  rankdir=LR;", '  node [shape=box, fontname="Helvetica"];']
    for name, component in sim.components.items():
        label = f"{name}\\n{component.kind()}"
        lines.append(f'  "{name}" [label="{label}"];')
    for link in sim.link_list:
        left, right = link.ends
        label = f"{left.port} -> {right.port}\\n{format_time(left.latency)}"
        lines.append(f'  "{left.owner.name}" -> "{right.owner.name}" [label="{label}"];')
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
        for element in (component, *component.subcomponents.values()):
            rows.extend((element.name, stat, value) for stat, value in element.stats.items())
    return rows


def write_statistics(sim: Simulation, path: str | Path) -> None:
    """Write the statistics as CSV, or JSON when the file name ends in ``.json``."""
    path = Path(path)
    rows = collect_statistics(sim)
    if path.suffix.lower() == ".json":
        tree: dict[str, dict[str, float]] = {}
        for element, stat, value in rows:
            tree.setdefault(element, {})[stat] = value
        document = {"simulated_time_ps": sim.now, "statistics": tree}
        path.write_text(json.dumps(document, indent=2) + "\n")
        return
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["component", "statistic", "value"])
        writer.writerows(rows)
