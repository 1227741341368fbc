"""The figures of a dataflow run, as a summary table and as CSV reports.

`metrics` condenses a run (a `nnsim.dataflow.DataflowResult`) to the numbers
``explore`` ranks and the benchmark prints; `summary_lines` is what
``nnsim dataflow run`` prints; `write_reports` writes, each file atomically
(`nnsim.files`):

- ``nodes.csv``, after SCALE-Sim's COMPUTE_REPORT (one row per layer there,
  per hardware node here): NodeID, Vertices, Neurons, MACs, Total Cycles,
  Busy Cycles, Stall Cycles (idle), Overall Util %, Memory Words, Memory
  Util %, Frames Received, Frames Lost, Bits Flipped;
- ``links.csv``, after its BANDWIDTH_REPORT (one row per directed link
  that carried traffic): Link, Source, Target, Frames, Words, Busy Cycles,
  Util %, Avg BW (words/cycle);
- ``layers.csv``: LayerID, Layer, Neurons, MACs per image, Nodes, First
  Image Done Cycle, Mean Latency Cycles, Images Done, Compute Util % (the
  layer's MACs over what its nodes could have done in the run);
- ``predictions.csv``: image, name, label, prediction, correct,
  inject_ps, done_ps, latency_ps (an image the sink never classified, under
  a crash, has an empty prediction).

Cycles are of the nodes' clock; times in ps are simulated time.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from nnsim.data import CLASS_NAMES
from nnsim.units import format_time

NODE_COLUMNS = (
    "NodeID",
    "Vertices",
    "Neurons",
    "MACs",
    "Total Cycles",
    "Busy Cycles",
    "Stall Cycles",
    "Overall Util %",
    "Memory Words",
    "Memory Util %",
    "Frames Received",
    "Frames Lost",
    "Bits Flipped",
)
LINK_COLUMNS = (
    "Link",
    "Source",
    "Target",
    "Frames",
    "Words",
    "Busy Cycles",
    "Util %",
    "Avg BW (words/cycle)",
)
LAYER_COLUMNS = (
    "LayerID",
    "Layer",
    "Neurons",
    "MACs per image",
    "Nodes",
    "First Image Done Cycle",
    "Mean Latency Cycles",
    "Images Done",
    "Compute Util %",
)
PREDICTION_COLUMNS = (
    "image",
    "name",
    "label",
    "prediction",
    "correct",
    "inject_ps",
    "done_ps",
    "latency_ps",
)
REPORTS = ("nodes.csv", "links.csv", "layers.csv", "predictions.csv")


def metrics(result) -> dict:
    """The run in numbers: latency (first, mean), throughput, utilization, traffic, accuracy."""
    utilization = np.array([node.utilization for node in result.nodes], dtype=np.float64)
    memory = [node.memory_words for node in result.nodes]
    known = result.labels >= 0
    mean = result.mean_latency_ps
    return {
        "images": int(result.images),
        "classified": int(result.classified),
        "first_latency_ps": int(result.first_latency_ps),
        "mean_latency_ps": 0.0 if math.isnan(mean) else float(mean),
        "throughput": float(result.throughput),
        "min_utilization": float(utilization.min()),
        "mean_utilization": float(utilization.mean()),
        "max_utilization": float(utilization.max()),
        "link_frames": int(sum(link.frames for link in result.links)),
        "link_words": int(sum(link.words for link in result.links)),
        "max_memory_words": int(max(memory)),
        "correct": int((result.predictions[known] == result.labels[known]).sum()),
        "judged": int(known.sum()),
        "accuracy": float(result.accuracy) if known.any() else None,
        "events": int(result.events),
        "end_ps": int(result.end_ps),
        "frames_lost": int(result.frames_lost),
        "bits_flipped": int(result.bits_flipped),
    }


def summary_lines(run) -> list[str]:
    """The table ``nnsim dataflow run`` prints after its run."""
    setup, result = run.setup, run.result
    m = metrics(result)
    hw = setup.hardware
    util = (
        f"min {m['min_utilization']:.1%}  mean {m['mean_utilization']:.1%}  "
        f"max {m['max_utilization']:.1%}"
    )
    memory = np.array([node.memory_words for node in result.nodes])
    used = [link for link in result.links if link.frames]
    traffic = f"{m['link_frames']:,} frames, {m['link_words']:,} words on {len(used)} links"
    if used:
        busiest = max(used, key=lambda link: link.busy_ps)
        traffic += f"; busiest {busiest.source}->{busiest.target} {busiest.utilization:.1%} busy"
    rows = [
        ("model", setup.graph.describe()),
        ("hardware", hw.describe()),
        (
            "mapping",
            f"{setup.mapping.strategy}: {len(setup.mapping.used_nodes())} of {hw.count} nodes used",
        ),
        ("images", f"{m['images']} from {setup.images.source}"),
        (
            "latency",
            f"first {format_time(m['first_latency_ps'])}  "
            f"mean {format_time(round(m['mean_latency_ps']))}",
        ),
        ("throughput", f"{m['throughput']:,.0f} images/s (simulated)"),
        ("utilization", util),
        ("link traffic", traffic),
        (
            "memory/node",
            f"min {int(memory.min()):,}  mean {memory.mean():,.0f}  max {int(memory.max()):,} "
            f"words of {hw.node.memory_words:,}",
        ),
        ("critical path", critical_path_text(result)),
    ]
    if m["accuracy"] is not None:
        rows.append(("accuracy", f"{m['accuracy']:.4f} ({m['correct']}/{m['judged']})"))
    if m["frames_lost"] or m["bits_flipped"]:
        rows.append(
            ("faults", f"{m['bits_flipped']:,} bits flipped, {m['frames_lost']:,} frames lost")
        )
    missing = result.missing
    if missing.size:
        names = [setup.images.names[i] for i in missing]
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        rows.append(("missing", f"{missing.size} images not classified: {shown}"))
    rows.append(("events", f"{m['events']:,} in {run.wall_seconds:.2f} s wall"))
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    lines += [agreement.line(setup.images.names) for agreement in run.agreements]
    lines += [f"wrote {path}" for path in run.written]
    return lines


def critical_path_text(result) -> str:
    """``source (node0) -> dense1/n5 (node3) -> ... -> sink (node7): 1.23 us`` for image 0."""
    steps = [step for step in result.critical_path if step.kind == "vertex"]
    if not steps:
        return "- (image 0 was not classified)"
    hops = sum(1 for step in result.critical_path if step.kind == "link")
    chain = " -> ".join(f"{step.name} ({step.node})" for step in steps)
    length = steps[-1].end_ps - steps[0].start_ps
    return f"{chain}: {format_time(length)}, {hops} link hops"


def write_reports(run, folder: str | Path) -> list[Path]:
    """The four CSV reports in ``folder`` (made if needed), each written atomically."""
    from nnsim.files import write_text

    folder = Path(folder)
    folder.mkdir(exist_ok=True)
    texts = {
        "nodes.csv": nodes_csv(run),
        "links.csv": links_csv(run),
        "layers.csv": layers_csv(run),
        "predictions.csv": predictions_csv(run),
    }
    for name, text in texts.items():
        write_text(folder / name, text)
    return [folder / name for name in texts]


def _csv(header, rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _percent(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.2f}" if whole else "0.00"


def nodes_csv(run) -> str:
    period = run.setup.hardware.node.period
    total = run.result.end_ps // period
    rows = []
    for node in run.result.nodes:
        busy = node.busy_ps // period
        neurons = sum(1 for name in node.vertices if "/n" in name)
        rows.append(
            [
                node.name,
                len(node.vertices),
                neurons,
                node.macs,
                total,
                busy,
                total - busy,
                _percent(busy, total),
                node.memory_words,
                _percent(node.memory_words, node.memory_capacity),
                node.frames_received,
                node.frames_lost,
                node.bits_flipped,
            ]
        )
    return _csv(NODE_COLUMNS, rows)


def links_csv(run) -> str:
    period = run.setup.hardware.node.period
    total = run.result.end_ps // period
    rows = []
    for link in run.result.links:
        if not link.frames:
            continue
        busy = link.busy_ps // period
        rows.append(
            [
                f"{link.source}->{link.target}",
                link.source,
                link.target,
                link.frames,
                link.words,
                busy,
                _percent(busy, total),
                f"{link.words / total:.4f}" if total else "0.0000",
            ]
        )
    return _csv(LINK_COLUMNS, rows)


def layers_csv(run) -> str:
    hw, result = run.setup.hardware, run.result
    period, total = hw.node.period, result.end_ps // hw.node.period
    rows = []
    for number, layer in enumerate(result.layers):
        work = layer.images_done * layer.macs_per_image / hw.node.macs_per_cycle
        first = layer.first_image_done_ps
        mean = layer.mean_latency_ps
        rows.append(
            [
                number,
                layer.name,
                layer.neurons,
                layer.macs_per_image,
                len(layer.nodes),
                first // period if first >= 0 else "",
                "" if math.isnan(mean) else f"{mean / period:.1f}",
                layer.images_done,
                _percent(work, total * len(layer.nodes)),
            ]
        )
    return _csv(LAYER_COLUMNS, rows)


def predictions_csv(run) -> str:
    images, result = run.setup.images, run.result
    rows = []
    for image in range(result.images):
        label, predicted = int(result.labels[image]), int(result.predictions[image])
        inject, done = int(result.inject_ps[image]), int(result.done_ps[image])
        answered = predicted >= 0
        rows.append(
            [
                image,
                images.names[image],
                _class(label),
                _class(predicted),
                "" if label < 0 or not answered else ("yes" if predicted == label else "no"),
                inject if inject >= 0 else "",
                done if answered else "",
                done - inject if answered else "",
            ]
        )
    return _csv(PREDICTION_COLUMNS, rows)


def _class(index: int) -> str:
    """The class name of a label or prediction (its number past the ten; '' for -1)."""
    if index < 0:
        return ""
    return CLASS_NAMES[index] if index < len(CLASS_NAMES) else str(index)
