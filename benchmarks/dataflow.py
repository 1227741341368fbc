"""Neuron-level dataflow runs of a freshly trained 784-128-10 model; one JSON line per configuration.

First the model is trained with nnsim (``nnsim.train``, 2 epochs on 1,000
images per class: a few seconds) into a temporary run folder and read back
with `nnsim.interop.load_model`, as a user would. Then, in the same
process, the peers are measured: onnxruntime's wall time for the whole
test set once, and PHOLD's events per second on nnsim's kernel
(`benchmarks/phold.py`'s model) right before and right after each
configuration (the mean is the peer; both are in the line, as the machine
is shared and its load moves). Every configuration then classifies the Fashion-MNIST test
set on its dataflow graph and reports its agreement with onnxruntime (which
must be 100%), simulated latency, throughput and utilization, wall seconds
and events per second (against PHOLD's):

- ``neuron`` graph one-to-one (``none``, 140 nodes on ``full.toml``), the
  10,000 images: target <= 60 s;
- every folding (``layer``, ``balanced``, ``metis``, ``greedy``) with H in
  {2, 4, 8, 16} nodes of ``mesh16.toml``, the 10,000 images: <= 20 s each;
- the ``pixel`` graph (``balanced`` on 16 nodes) on ``--pixel-images``
  images (1,000): events per second >= 50% of PHOLD's.

Run: ``.venv/bin/python benchmarks/dataflow.py [--images 10000 --pixel-images 1000]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
try:
    import nnsim  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(HERE))

import phold  # noqa: E402  (benchmarks/phold.py: the peer's model, reused)

HW = ROOT / "examples" / "dataflow" / "hw"
FOLDINGS = ("layer", "balanced", "metis", "greedy")
NODE_COUNTS = (2, 4, 8, 16)
TARGET_ONE_TO_ONE_S = 60.0
TARGET_FOLDED_S = 20.0
TARGET_PIXEL_OVER_PHOLD = 0.5


def train_model(folder: Path) -> Path:
    """784-128-10 trained by nnsim (2 epochs, 1,000 images per class); its run folder."""
    from nnsim.train import load_config, train

    config = load_config(
        ROOT / "examples" / "fashion_mnist" / "train.toml",
        sets=[
            "model.hidden=128",
            "training.epochs=2",
            "dataset.class_image_limit=1000",
            "dataset.eval=",
            f"output.project_dir={folder}",
            "output.run_name=mlp-128",
        ],
    )
    return train(config, progress="quiet").run_dir


def phold_events_per_second(repeat: int = 3) -> float:
    """PHOLD (64 LPs, 16 tokens each, 2 us) on nnsim's kernel: the best of ``repeat`` runs."""
    from nnsim.units import parse_time

    shape = (64, 16, parse_time("1ns"), parse_time("1ns"), parse_time("2us"), 1)
    best = 0.0
    for _ in range(repeat):
        events, seconds = phold.run_nnsim(phold.build_nnsim(*shape))
        best = max(best, events / seconds)
    return best


def run_configuration(label, graph, hardware, strategy, images, *, onnx_seconds):
    """One configuration's JSON-ready dict (no target yet).

    PHOLD is measured right before and right after the run and their mean is
    the peer: the machine is shared, and its load changes from minute to minute.
    """
    from nnsim.dataflow.report import metrics
    from nnsim.dataflow.workflow import Setup, build, check, collect, compare_result, fold_graph
    from nnsim.sim import Simulation

    phold_before = phold_events_per_second()
    gc.collect()
    # The training run and the images stay alive in this process: leave them out of the
    # collector's scans (a `nnsim dataflow run` process has no training heap); what this
    # configuration builds from here on is scanned as in any run.
    gc.freeze()
    start = time.perf_counter()
    mapping = fold_graph(strategy, graph, hardware)
    setup = Setup(graph.model, graph, hardware, mapping, images, check(graph, hardware, mapping))
    sim = Simulation(seed=0)
    build(sim, setup)
    built = time.perf_counter()
    try:
        sim.run()
    finally:
        gc.unfreeze()
    ran = time.perf_counter()
    result = collect(sim)
    seconds = time.perf_counter() - start
    phold_after = phold_events_per_second()
    phold_rate = (phold_before + phold_after) / 2
    agreement = compare_result("onnxruntime", setup, result.predictions)
    m = metrics(result)
    events_per_s = m["events"] / (ran - built)
    return {
        "benchmark": "dataflow",
        "config": label,
        "granularity": graph.granularity,
        "strategy": strategy,
        "nodes": hardware.count,
        "hardware": hardware.name,
        "images": m["images"],
        "agreement_onnxruntime": agreement.agree,
        "agreement_percent": round(agreement.percent, 4),
        "accuracy": None if m["accuracy"] is None else round(m["accuracy"], 4),
        "first_latency_ps": m["first_latency_ps"],
        "mean_latency_ps": round(m["mean_latency_ps"]),
        "throughput_images_per_s": round(m["throughput"]),
        "utilization": {
            "min": round(m["min_utilization"], 4),
            "mean": round(m["mean_utilization"], 4),
            "max": round(m["max_utilization"], 4),
        },
        "link_words": m["link_words"],
        "wall_seconds": round(seconds, 3),
        "build_seconds": round(built - start, 3),
        "events": m["events"],
        "events_per_s": round(events_per_s),
        "phold_events_per_s": round(phold_rate),
        "phold_before_after": [round(phold_before), round(phold_after)],
        "events_per_s_over_phold": round(events_per_s / phold_rate, 3),
        "onnxruntime_wall_seconds": round(onnx_seconds, 4),
        "wall_over_onnxruntime": round(seconds / onnx_seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10000, help="test images per configuration")
    parser.add_argument("--pixel-images", type=int, default=1000, help="images of the pixel graph")
    parser.add_argument("--only", default="", help="run only configurations whose label has this")
    args = parser.parse_args(argv)

    from nnsim.dataflow.compare import onnxruntime_outputs, onnxruntime_session
    from nnsim.dataflow.graph import DataflowGraph
    from nnsim.dataflow.hardware import Hardware
    from nnsim.dataflow.images import load_images
    from nnsim.interop import load_model

    with tempfile.TemporaryDirectory() as folder:
        model = load_model(train_model(Path(folder)))
    images = load_images("test", args.images)
    pixel_images = load_images("test", min(args.pixel_images, args.images))
    session = onnxruntime_session(model)
    onnx_seconds = float("inf")
    for _ in range(3):  # the best of three, the session made once (as a user would)
        start = time.perf_counter()
        onnxruntime_outputs(model, images.pixels, session)
        onnx_seconds = min(onnx_seconds, time.perf_counter() - start)

    neuron = DataflowGraph.from_model(model, "neuron")
    mesh = Hardware.load(HW / "mesh16.toml")
    plan = [("neuron none H=140", neuron, Hardware.load(HW / "full.toml"), "none", images)]
    plan += [
        (f"neuron {strategy} H={count}", neuron, mesh.with_nodes(count), strategy, images)
        for strategy in FOLDINGS
        for count in NODE_COUNTS
    ]
    plan.append(
        (
            "pixel balanced H=16",
            DataflowGraph.from_model(model, "pixel"),
            mesh,
            "balanced",
            pixel_images,
        )
    )
    for label, graph, hardware, strategy, pictures in plan:
        if args.only and args.only not in label:
            continue
        line = run_configuration(
            label,
            graph,
            hardware,
            strategy,
            pictures,
            onnx_seconds=onnx_seconds * len(pictures) / len(images),
        )
        if graph.granularity == "pixel":
            line["target"] = {"events_per_s_over_phold_min": TARGET_PIXEL_OVER_PHOLD}
            met = line["events_per_s_over_phold"] >= TARGET_PIXEL_OVER_PHOLD
        else:
            limit = TARGET_ONE_TO_ONE_S if strategy == "none" else TARGET_FOLDED_S
            line["target"] = {"wall_seconds_max": limit}
            met = line["wall_seconds"] <= limit
        line["target_met"] = bool(met and line["agreement_percent"] == 100.0)
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
