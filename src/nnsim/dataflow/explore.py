"""What ``nnsim dataflow explore`` does: every folding strategy at every node count, ranked.

The weights, images and graph are read once; each configuration folds the
graph, checks the mapping against the hardware's capacities, and runs the
timing model on the same images in its own `Simulation` (no console, no
progress: a sweep of many short runs). A configuration the hardware cannot
hold (a strategy refuses it, or the capacity check does) is a row with the
reason, not a failure of the whole exploration.

The table is sorted best first by the metric asked for (lowest mean
latency, highest throughput, highest mean utilization, least link traffic);
refused rows come last. The picture (`plot`) draws mean latency and
throughput against node count, one line per strategy, and rings the
configurations on the Pareto front: those no other configuration beats on
both latency (lower) and throughput (higher).
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass, field
from pathlib import Path

from nnsim.dataflow.graph import DataflowGraph
from nnsim.dataflow.hardware import Hardware
from nnsim.dataflow.images import load_images
from nnsim.errors import NnsimError
from nnsim.units import format_time

METRICS = {
    # name: (key in Row.metrics, higher is better)
    "latency": ("mean_latency_ps", False),
    "throughput": ("throughput", True),
    "utilization": ("mean_utilization", True),
    "traffic": ("link_words", False),
}
MAX_CONFIGURATIONS = 256

CSV_COLUMNS = (
    "strategy",
    "nodes",
    "feasible",
    "first_latency_ps",
    "mean_latency_ps",
    "throughput_images_per_s",
    "min_utilization",
    "mean_utilization",
    "max_utilization",
    "link_frames",
    "link_words",
    "max_memory_words",
    "accuracy",
    "events",
    "wall_seconds",
    "pareto",
    "reason",
)


@dataclass
class Row:
    """One configuration: its figures (`nnsim.dataflow.report.metrics`), or why it was refused."""

    strategy: str
    nodes: int
    metrics: dict | None = None
    reason: str = ""
    wall_seconds: float = 0.0
    pareto: bool = False

    @property
    def feasible(self) -> bool:
        return self.metrics is not None


@dataclass
class Exploration:
    rows: list[Row]
    metric: str
    written: list[Path] = field(default_factory=list)

    def summary_lines(self) -> list[str]:
        return format_table(self.rows, self.metric) + [f"wrote {path}" for path in self.written]


def parse_list(text: str, option: str) -> list[str]:
    values = [value.strip() for value in str(text).split(",") if value.strip()]
    if not values:
        raise NnsimError(f"{option} needs at least one value, e.g. {option} 1,2,4")
    return list(dict.fromkeys(values))


def parse_nodes(text: str) -> list[int]:
    counts = []
    for value in parse_list(text, "--nodes"):
        if not value.isdigit() or int(value) < 1:
            raise NnsimError(f"--nodes takes whole numbers >= 1 such as 1,2,4,8, not '{value}'")
        counts.append(int(value))
    return counts


def explore(
    *,
    weights: str | Path | None,
    hardware: str | Path | None,
    nodes: str | list[int] = "1,2,4,8,16",
    fold: str | list[str] = "layer,balanced,metis,greedy",
    metric: str = "latency",
    granularity: str = "neuron",
    images: str | Path = "test",
    limit: int | None = 1000,
    interval: str | None = None,
    output: str | Path | None = None,
    seed: int = 0,
) -> Exploration:
    """Run every (strategy, node count) and rank them; write CSV and PNG into ``output``."""
    from nnsim.dataflow.fold import get_strategy
    from nnsim.dataflow.workflow import output_folder
    from nnsim.errors import did_you_mean
    from nnsim.interop import load_model

    if metric not in METRICS:
        raise NnsimError(
            f"--metric '{metric}' is not one of {', '.join(METRICS)}{did_you_mean(metric, METRICS)}"
        )
    counts = parse_nodes(nodes) if isinstance(nodes, str) else list(nodes)
    names = parse_list(fold, "--fold") if isinstance(fold, str) else list(fold)
    for name in names:
        get_strategy(name)  # an unknown name is refused now, with a did-you-mean
    if len(counts) * len(names) > MAX_CONFIGURATIONS:
        raise NnsimError(
            f"{len(counts) * len(names)} configurations; explore at most {MAX_CONFIGURATIONS}"
        )
    if weights is None or hardware is None:
        raise NnsimError("give --weights PATH and --hardware HW.toml")
    out = output_folder(output)
    base = Hardware.load(hardware)
    for count in counts:
        base.with_nodes(count)  # a count the topology cannot take is refused before any run
    model = load_model(weights)
    if limit is not None and limit < 1:
        raise NnsimError(f"--limit must be at least 1, not {limit}")
    pictures = load_images(images)
    if limit is not None:
        pictures = pictures.first(limit)  # at most: a small folder is explored whole
    graph = DataflowGraph.from_model(model, granularity)
    rows = [
        evaluate(graph, base.with_nodes(count), name, pictures, interval=interval, seed=seed)
        for name in names
        for count in counts
    ]
    mark_pareto(rows)
    exploration = Exploration(ranked(rows, metric), metric)
    if out is not None:
        from nnsim.files import write_text

        out.mkdir(exist_ok=True)
        write_text(out / "explore.csv", to_csv(exploration.rows))
        plot(rows, out / "explore.png", title=f"{graph.describe()} on {base.name}")
        exploration.written = [out / "explore.csv", out / "explore.png"]
    return exploration


def evaluate(graph, hardware: Hardware, strategy: str, images, *, interval=None, seed=0) -> Row:
    """One configuration's row: fold, check, simulate; a refusal becomes the row's reason."""
    from nnsim.dataflow.report import metrics
    from nnsim.dataflow.workflow import Setup, build, check, collect, fold_graph
    from nnsim.sim import Simulation

    start = time.perf_counter()
    try:
        mapping = fold_graph(strategy, graph, hardware)
        usage = check(graph, hardware, mapping)
    except NnsimError as refused:
        return Row(strategy, hardware.count, reason=str(refused))
    setup = Setup(graph.model, graph, hardware, mapping, images, usage)
    sim = Simulation(seed=seed)
    build(sim, setup, interval=interval)
    sim.run()
    result = collect(sim)
    return Row(
        strategy,
        hardware.count,
        metrics=metrics(result),
        wall_seconds=time.perf_counter() - start,
    )


def mark_pareto(rows: list[Row]) -> None:
    """Mark the feasible rows no other row beats on both mean latency and throughput."""
    feasible = [row for row in rows if row.feasible]
    for row in feasible:
        latency, rate = row.metrics["mean_latency_ps"], row.metrics["throughput"]
        row.pareto = not any(
            other.metrics["mean_latency_ps"] <= latency
            and other.metrics["throughput"] >= rate
            and (other.metrics["mean_latency_ps"] < latency or other.metrics["throughput"] > rate)
            for other in feasible
        )


def ranked(rows: list[Row], metric: str) -> list[Row]:
    """Best first by ``metric``; ties by strategy then node count; refused rows last."""
    key, higher = METRICS[metric]

    def order(row: Row):
        if not row.feasible:
            return (1, 0.0, row.strategy, row.nodes)
        value = row.metrics[key]
        return (0, -value if higher else value, row.strategy, row.nodes)

    return sorted(rows, key=order)


def format_table(rows: list[Row], metric: str) -> list[str]:
    header = (
        "strategy",
        "nodes",
        "latency first",
        "latency mean",
        "images/s",
        "util min/mean/max",
        "link words",
        "accuracy",
        "wall s",
        "pareto",
    )
    table = [header]
    for row in rows:
        if not row.feasible:
            table.append((row.strategy, str(row.nodes), f"refused: {row.reason}"))
            continue
        m = row.metrics
        table.append(
            (
                row.strategy,
                str(row.nodes),
                format_time(m["first_latency_ps"]),
                format_time(round(m["mean_latency_ps"])),
                f"{m['throughput']:,.0f}",
                f"{m['min_utilization']:.1%}/{m['mean_utilization']:.1%}/{m['max_utilization']:.1%}",
                f"{m['link_words']:,}",
                "" if m["accuracy"] is None else f"{m['accuracy']:.4f}",
                f"{row.wall_seconds:.2f}",
                "*" if row.pareto else "",
            )
        )
    full = [line for line in table if len(line) == len(header)]
    widths = [max(len(line[i]) for line in full) for i in range(len(header))]
    lines = [f"ranked by {metric} (best first); * = on the Pareto front (latency, throughput)"]
    for line in table:
        if len(line) == len(header):
            cells = [
                cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i])
                for i, cell in enumerate(line)
            ]
            lines.append("  ".join(cells).rstrip())
        else:
            lines.append("  ".join([line[0].ljust(widths[0]), line[1].ljust(widths[1]), line[2]]))
    return lines


def to_csv(rows: list[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        m = row.metrics or {}
        writer.writerow(
            [
                row.strategy,
                row.nodes,
                "yes" if row.feasible else "no",
                m.get("first_latency_ps", ""),
                "" if not m else f"{m['mean_latency_ps']:.1f}",
                "" if not m else f"{m['throughput']:.3f}",
                "" if not m else f"{m['min_utilization']:.6f}",
                "" if not m else f"{m['mean_utilization']:.6f}",
                "" if not m else f"{m['max_utilization']:.6f}",
                m.get("link_frames", ""),
                m.get("link_words", ""),
                m.get("max_memory_words", ""),
                "" if m.get("accuracy") is None else f"{m['accuracy']:.6f}",
                m.get("events", ""),
                f"{row.wall_seconds:.3f}",
                "yes" if row.pareto else "no",
                row.reason,
            ]
        )
    return out.getvalue()


def plot(rows: list[Row], path: Path, *, title: str = "") -> Path:
    """Latency and throughput against node count per strategy, the Pareto front ringed.

    A configuration that was refused is a grey cross on the node axis.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from nnsim.files import atomic_write_with

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    strategies = list(dict.fromkeys(row.strategy for row in rows))
    for name in strategies:
        mine = sorted((r for r in rows if r.strategy == name and r.feasible), key=lambda r: r.nodes)
        if not mine:
            continue
        x = [r.nodes for r in mine]
        (line,) = left.plot(
            x, [r.metrics["mean_latency_ps"] / 1e6 for r in mine], marker="o", label=name
        )
        right.plot(x, [r.metrics["throughput"] for r in mine], marker="o", color=line.get_color())
    front = [r for r in rows if r.pareto]
    if front:
        style = {"s": 160, "facecolors": "none", "edgecolors": "black", "linewidths": 1.5}
        left.scatter(
            [r.nodes for r in front],
            [r.metrics["mean_latency_ps"] / 1e6 for r in front],
            label="Pareto front",
            **style,
        )
        right.scatter([r.nodes for r in front], [r.metrics["throughput"] for r in front], **style)
    refused = sorted({r.nodes for r in rows if not r.feasible})
    if refused:
        for axis in (left, right):
            axis.scatter(
                refused,
                [0.03] * len(refused),
                transform=axis.get_xaxis_transform(),
                marker="x",
                color="grey",
                label="refused (does not fit)" if axis is left else None,
            )
    counts = sorted({row.nodes for row in rows})
    left.set_yscale("log")  # queueing can make one configuration's mean latency 100x another's
    for axis, label in (
        (left, "mean latency (µs, log)"),
        (right, "throughput (images/s, simulated)"),
    ):
        axis.set_xscale("log", base=2)
        axis.set_xlim(counts[0] / 1.5, counts[-1] * 1.5)
        axis.set_xticks(counts, [str(c) for c in counts])
        axis.set_xlabel("hardware nodes")
        axis.set_ylabel(label)
        axis.grid(True, alpha=0.3)
    left.legend(fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    atomic_write_with(path, lambda target: figure.savefig(target, format="png"))
    plt.close(figure)
    return path
