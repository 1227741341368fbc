"""The figures of a dataflow run, as a summary table and as CSV reports.

`metrics` condenses a run to the numbers ``explore`` ranks and the benchmark
prints; `summary_lines` is what ``nnsim dataflow run`` prints; `write_reports`
writes, each file atomically (`nnsim.files`):

- ``nodes.csv``, after SCALE-Sim's COMPUTE_REPORT (one row per layer there,
  per hardware node here): NodeID, Vertices, Neurons, MACs per image,
  Total Cycles, Busy Cycles, Stall Cycles (idle), Overall Util %, Memory
  Words, Memory Util %, Ports In, Ports Out;
- ``links.csv``, after its BANDWIDTH_REPORT (one row per directed link
  that carried traffic): Link, Source, Target, Frames, Words, Busy Cycles,
  Util %, Avg BW (words/cycle);
- ``layers.csv``: LayerID, Layer, Neurons, Fan In, MACs per image, Nodes,
  Start Cycle, Stop Cycle, Total Cycles, Compute Util % (first input in,
  last output out, over all images);
- ``predictions.csv``: image, name, label, prediction, correct,
  inject_ps, done_ps, latency_ps (an image the sink never classified, under
  a crash, has an empty prediction).

Cycles are of the nodes' clock; times in ps are simulated time.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from nnsim.data import CLASS_NAMES
from nnsim.units import format_time

NODE_COLUMNS = (
    "NodeID",
    "Vertices",
    "Neurons",
    "MACs per image",
    "Total Cycles",
    "Busy Cycles",
    "Stall Cycles",
    "Overall Util %",
    "Memory Words",
    "Memory Util %",
    "Ports In",
    "Ports Out",
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
    "Fan In",
    "MACs per image",
    "Nodes",
    "Start Cycle",
    "Stop Cycle",
    "Total Cycles",
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


def metrics(setup, result) -> dict:
    """The run in numbers: latency (first, mean), throughput, utilization, traffic, accuracy."""
    done = np.asarray(result.done_ps, dtype=np.int64)
    inject = np.asarray(result.inject_ps, dtype=np.int64)
    answered = np.asarray(result.predictions) >= 0
    latency = (done - inject)[answered]
    span = int(done[answered].max() - inject.min()) if answered.any() else 0
    busy = np.asarray(result.node_busy_ps, dtype=np.float64)
    elapsed = max(int(result.elapsed_ps), 1)
    utilization = busy / elapsed
    labels = setup.images.labels
    predictions = np.asarray(result.predictions)
    known = answered & (labels >= 0)
    return {
        "images": int(len(done)),
        "classified": int(answered.sum()),
        "first_latency_ps": int(latency[0]) if latency.size else 0,
        "mean_latency_ps": float(latency.mean()) if latency.size else 0.0,
        "throughput": float(answered.sum()) * 1e12 / span if span else 0.0,
        "min_utilization": float(utilization.min()),
        "mean_utilization": float(utilization.mean()),
        "max_utilization": float(utilization.max()),
        "link_frames": int(np.sum(result.link_frames)),
        "link_words": int(np.sum(result.link_words)),
        "max_memory_words": int(np.max(setup.usage.memory_words)),
        "correct": int((predictions[known] == labels[known]).sum()),
        "judged": int(known.sum()),
        "accuracy": float((predictions[known] == labels[known]).mean()) if known.any() else None,
        "events": int(result.events),
        "elapsed_ps": int(result.elapsed_ps),
    }


def summary_lines(run) -> list[str]:
    """The table ``nnsim dataflow run`` prints after its run."""
    setup, result = run.setup, run.result
    m = metrics(setup, result)
    hw, usage = setup.hardware, setup.usage
    util = f"min {m['min_utilization']:.1%}  mean {m['mean_utilization']:.1%}  max {m['max_utilization']:.1%}"
    memory = np.asarray(usage.memory_words)
    capacity = hw.node.memory_words
    links = np.flatnonzero(np.asarray(result.link_frames))
    busiest = ""
    if links.size:
        index = int(np.argmax(np.asarray(result.link_busy_ps)))
        a, b = result.links[index]
        share = result.link_busy_ps[index] / max(m["elapsed_ps"], 1)
        busiest = f"; busiest {hw.node_name(a)}->{hw.node_name(b)} {share:.1%} busy"
    rows = [
        ("model", f"{setup.graph.describe()}"),
        ("hardware", hw.describe()),
        (
            "mapping",
            f"{setup.mapping.strategy}: {len(setup.mapping.used_nodes())} of {hw.count} nodes used",
        ),
        ("images", f"{m['images']} from {setup.images.source}"),
        (
            "latency",
            f"first {format_time(m['first_latency_ps'])}  mean {format_time(round(m['mean_latency_ps']))}",
        ),
        ("throughput", f"{m['throughput']:,.0f} images/s (simulated)"),
        ("utilization", util),
        (
            "link traffic",
            f"{m['link_frames']:,} frames, {m['link_words']:,} words on {links.size} links{busiest}",
        ),
        (
            "memory/node",
            f"min {int(memory.min()):,}  mean {memory.mean():,.0f}  max {int(memory.max()):,} "
            f"words of {capacity:,}",
        ),
        ("critical path", critical_path_text(setup, result)),
    ]
    if m["accuracy"] is not None:
        rows.append(("accuracy", f"{m['accuracy']:.4f} ({m['correct']}/{m['judged']})"))
    missing = m["images"] - m["classified"]
    if missing:
        names = [setup.images.names[i] for i in np.flatnonzero(np.asarray(result.predictions) < 0)]
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        rows.append(("missing", f"{missing} images not classified: {shown}"))
    rows.append(("events", f"{m['events']:,} in {run.wall_seconds:.2f} s wall"))
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    lines += [agreement.line(setup.images.names) for agreement in run.agreements]
    lines += [f"wrote {path}" for path in run.written]
    return lines


def critical_path_text(setup, result) -> str:
    """``source -> dense1/n5 (node3) -> ... -> sink: 1.23 us`` from the result's critical path."""
    path = result.critical_path
    if not path:
        return "-"
    node_of = setup.mapping.node_of
    hops = [
        f"{setup.graph.vertices[vertex].name} ({setup.hardware.node_name(int(node_of[vertex]))})"
        for vertex in path.vertices
    ]
    return f"{' -> '.join(hops)}: {format_time(path.length_ps)}"


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


def _cycles(setup, ps) -> int:
    return int(ps) // setup.hardware.node.period


def nodes_csv(run) -> str:
    setup, result, usage = run.setup, run.result, run.setup.usage
    total = _cycles(setup, result.elapsed_ps)
    capacity = setup.hardware.node.memory_words
    rows = []
    for node in range(setup.hardware.count):
        busy = _cycles(setup, result.node_busy_ps[node])
        rows.append(
            [
                setup.hardware.node_name(node),
                int(usage.vertices[node]),
                int(usage.neurons[node]),
                int(usage.macs[node]),
                total,
                busy,
                total - busy,
                f"{100.0 * busy / total:.2f}" if total else "0.00",
                int(usage.memory_words[node]),
                f"{100.0 * usage.memory_words[node] / capacity:.2f}",
                int(usage.ports_in[node]),
                int(usage.ports_out[node]),
            ]
        )
    return _csv(NODE_COLUMNS, rows)


def links_csv(run) -> str:
    setup, result = run.setup, run.result
    total = _cycles(setup, result.elapsed_ps)
    rows = []
    for index, (a, b) in enumerate(result.links):
        frames = int(result.link_frames[index])
        if not frames:
            continue
        busy = _cycles(setup, result.link_busy_ps[index])
        words = int(result.link_words[index])
        name = f"{setup.hardware.node_name(a)}->{setup.hardware.node_name(b)}"
        rows.append(
            [
                name,
                setup.hardware.node_name(a),
                setup.hardware.node_name(b),
                frames,
                words,
                busy,
                f"{100.0 * busy / total:.2f}" if total else "0.00",
                f"{words / total:.4f}" if total else "0.0000",
            ]
        )
    return _csv(LINK_COLUMNS, rows)


def layers_csv(run) -> str:
    setup, result = run.setup, run.result
    graph, node_of = setup.graph, setup.mapping.node_of
    macs_per_cycle = setup.hardware.node.macs_per_cycle
    images = len(setup.images)
    rows = []
    for number, layer in enumerate(graph.model.layers):
        ids = np.asarray(graph.layer_vertices(number))
        start, stop = result.layer_start_ps[number], result.layer_stop_ps[number]
        cycles = max(_cycles(setup, stop) - _cycles(setup, start), 0)
        nodes = len(np.unique(node_of[ids]))
        work = images * layer.output_size * layer.input_size / macs_per_cycle
        possible = cycles * nodes
        rows.append(
            [
                number,
                layer.name,
                layer.output_size,
                layer.input_size,
                layer.output_size * layer.input_size,
                nodes,
                _cycles(setup, start),
                _cycles(setup, stop),
                cycles,
                f"{100.0 * work / possible:.2f}" if possible else "0.00",
            ]
        )
    return _csv(LAYER_COLUMNS, rows)


def predictions_csv(run) -> str:
    setup, result = run.setup, run.result
    rows = []
    for image in range(len(setup.images)):
        label = int(setup.images.labels[image])
        predicted = int(result.predictions[image])
        done = int(result.done_ps[image])
        inject = int(result.inject_ps[image])
        answered = predicted >= 0
        rows.append(
            [
                image,
                setup.images.names[image],
                CLASS_NAMES[label] if 0 <= label < len(CLASS_NAMES) else "",
                (CLASS_NAMES[predicted] if predicted < len(CLASS_NAMES) else str(predicted))
                if answered
                else "",
                "" if label < 0 or not answered else ("yes" if predicted == label else "no"),
                inject,
                done if answered else "",
                done - inject if answered else "",
            ]
        )
    return _csv(PREDICTION_COLUMNS, rows)
