"""A dataflow model script for ``nnsim run``: a dense model folded onto hardware nodes.

    nnsim run examples/dataflow/model.py --statistics stats.csv -- \\
        --weights weights.npz --hardware examples/dataflow/hw/mesh16.toml \\
        --fold balanced --nodes 4 --images test --limit 100

Everything ``nnsim run`` offers works on it: ``--interactive-start`` (then
``ls dense1/n5``, ``print sink/classified``), ``--checkpoint-*`` and
``--load-checkpoint``, ``--trace-events``, ``--output-dot``, and ``nnsim
graph`` draws the nodes as clusters of their vertices. ``--weights`` is an
``.npz`` of ``<layer>.weights [in, out]`` and ``<layer>.biases [out]`` in
forward order (what ``nnsim.interop`` writes); without it, ``--sizes``
makes random weights (for trying the machinery, not for accuracy).
"""

import numpy as np

import nnsim
from nnsim.dataflow import DataflowGraph, Hardware, NodeType, build_dataflow, fold
from nnsim.dataflow.mapping import Mapping
from nnsim.interop.model import DenseLayer, DenseModel
from nnsim.script import ArgumentParser, finite_float, int_between


def load_model(path: str, sizes: str, seed: int) -> DenseModel:
    if path:
        with np.load(path, allow_pickle=False) as arrays:
            names = [key[: -len(".weights")] for key in arrays.files if key.endswith(".weights")]
            layers = [
                DenseLayer(name, arrays[f"{name}.weights"], arrays[f"{name}.biases"])
                for name in names
            ]
        last = layers[-1]
        layers[-1] = DenseLayer(last.name, last.weights, last.biases, "linear")
        return DenseModel(tuple(layers), source=path)
    widths = [int(part) for part in sizes.split(",")]
    rng = np.random.default_rng(seed)
    return DenseModel(
        tuple(
            DenseLayer(
                f"dense{number + 1}",
                (rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32),
                np.zeros(b, dtype=np.float32),
                "relu" if number < len(widths) - 2 else "linear",
            )
            for number, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=False))
        )
    )


parser = ArgumentParser(prog="dataflow model.py", description=__doc__.splitlines()[0])
parser.add_argument("--weights", default="", help=".npz of <layer>.weights/.biases")
parser.add_argument("--sizes", default="784,128,10", help="random weights of these widths")
parser.add_argument("--weights-seed", type=int_between(0), default=0)
parser.add_argument("--granularity", choices=("neuron", "pixel"), default="neuron")
parser.add_argument("--hardware", default="", help="hardware TOML (default: a full crossbar)")
parser.add_argument("--nodes", type=int_between(1, 4096), default=None)
parser.add_argument("--fold", default="balanced", help="folding strategy")
parser.add_argument("--mapping", default="", help="mapping JSON (instead of --fold)")
parser.add_argument("--images", default="random", help="'test', a folder, or 'random'")
parser.add_argument("--limit", type=int_between(1), default=None)
parser.add_argument("--interval", default=None, help="inject at this interval (e.g. 2us)")
parser.add_argument("--corrupt-rate", type=finite_float, default=0.0)
parser.add_argument("--crash", action="append", default=[], metavar="NODE@TIME")
args = parser.parse_args()

model = load_model(args.weights, args.sizes, args.weights_seed)
graph = DataflowGraph.from_model(model, args.granularity)
if args.hardware:
    hardware = Hardware.load(args.hardware)
else:
    hardware = Hardware(name="full", count=4, node=NodeType(input_ports=4096, output_ports=4096))
if args.nodes:
    hardware = hardware.with_nodes(args.nodes)
if args.mapping:
    mapping = Mapping.load(args.mapping, graph, hardware)
else:
    if args.fold == "none":
        hardware = hardware.with_nodes(len(graph))
    mapping = fold(graph, hardware, args.fold)
images = args.images
if images == "random":
    count = args.limit or 10
    images = np.random.default_rng(args.weights_seed + 1).uniform(-1, 1, (count, model.input_size))
crashes = []
for item in args.crash:
    node, at, time = item.partition("@")
    if not at:
        parser.error(f"--crash takes NODE@TIME (e.g. node3@5us), not {item!r}")
    crashes.append((node, time))
build_dataflow(
    nnsim.simulation(),
    graph,
    hardware,
    mapping,
    images,
    limit=args.limit,
    interval=args.interval,
    corrupt_rate=args.corrupt_rate,
    crashes=crashes,
)
