"""``nnsim dataflow``: neuron-level dataflow models of pre-trained weights, folded onto hardware.

Only the options live here; what they do is `nnsim.dataflow_runner.run_model`
and `nnsim.dataflow.explore.explore`.
"""

from __future__ import annotations

import click

from nnsim.cli.options import (
    TIME,
    checkpoint_options,
    debug_option,
    option_group,
    run_settings,
    seed_option,
    simulation_options,
)


@click.group("dataflow")
def dataflow() -> None:
    """Neuron-level dataflow models: one vertex per neuron, folded onto hardware nodes.

    The weights come from anywhere nnsim imports them (an nnsim run folder or
    checkpoint, npz, safetensors, ONNX, Keras); the hardware is a TOML file
    (examples/dataflow/hw/); a mapping puts every vertex on a node. `run`
    classifies images on it in simulated time and reports latency,
    throughput, utilization and traffic; `explore` compares foldings.
    """


_model_options = option_group(
    [
        click.option(
            "--weights",
            metavar="PATH",
            help="Trained weights: a run folder, checkpoint, .npz, .safetensors, .onnx, .keras, .h5.",
        ),
        click.option("--hardware", metavar="HW.toml", help="The hardware file."),
        click.option(
            "--granularity",
            default="neuron",
            show_default=True,
            metavar="neuron|pixel",
            help="neuron: the source sends each neuron the image; pixel: 784 input vertices, one edge per weight.",
        ),
        click.option(
            "--images",
            default="test",
            show_default=True,
            metavar="DIR|test",
            help="test: the Fashion-MNIST test set; or a folder of PNGs, of class folders, or of IDX files.",
        ),
        click.option(
            "--interval",
            type=TIME,
            metavar="TIME",
            help="Inject an image every TIME (default: as soon as the first nodes can take it).",
        ),
        click.option(
            "--output", metavar="DIR", help="Write the reports (CSV, and PNG for explore) here."
        ),
    ]
)
"""What a dataflow graph is made of and run on, for both commands."""


@dataflow.command(
    "run",
    epilog=(
        "Example: nnsim dataflow run --weights runs/mlp-128 --hardware "
        "examples/dataflow/hw/mesh16.toml --fold balanced --nodes 8 --limit 1000 "
        "--compare onnxruntime --output report"
    ),
)
@_model_options
@click.option(
    "--fold", metavar="STRATEGY", help="Fold with STRATEGY: none, layer, balanced, metis, greedy."
)
@click.option(
    "--mapping", "mapping_file", metavar="FILE", help="Use this mapping JSON instead of folding."
)
@click.option(
    "--nodes", type=int, metavar="H", help="Number of hardware nodes (default: the file's count)."
)
@click.option("--limit", type=int, metavar="N", help="Classify only the first N images.")
@click.option(
    "--compare",
    multiple=True,
    metavar="onnxruntime|layer",
    help="Run the same weights through onnxruntime or nnsim's layer math and report agreement (repeatable).",
)
@click.option("--save-mapping", metavar="FILE", help="Write the mapping used as JSON.")
@click.option(
    "--corrupt-rate",
    type=float,
    default=0.0,
    metavar="P",
    help="Flip bits of link frames at random with probability P (seeded by --seed).",
)
@click.option(
    "--crash",
    "crashes",
    multiple=True,
    metavar="NODE@TIME",
    help="Stop a node at a simulated time, e.g. node3@5us (repeatable).",
)
@simulation_options
@checkpoint_options
@click.pass_context
def run(ctx, **options) -> None:
    """Classify images on a neuron-level dataflow graph of WEIGHTS folded onto HARDWARE.

    Builds the graph (source, one vertex per neuron, sink), places it on the
    hardware's nodes (--fold or --mapping; every capacity is checked), runs
    it in simulated time with images pipelined, and prints a summary:
    latency of the first image and the mean, throughput in images per second
    of simulated time, node utilization, link traffic, memory per node, the
    critical path. --output DIR gets nodes.csv, links.csv, layers.csv and
    predictions.csv. The run is a simulation like any: --interactive-start,
    --trace-events, --statistics and checkpoints work as for nnsim run.
    """
    from nnsim.dataflow_runner import run_model

    settings = run_settings(ctx, options)
    outcome = run_model(
        weights=options.pop("weights"),
        hardware=options.pop("hardware"),
        fold=options.pop("fold"),
        mapping=options.pop("mapping_file"),
        nodes=options.pop("nodes"),
        granularity=options.pop("granularity"),
        images=options.pop("images"),
        limit=options.pop("limit"),
        interval=options.pop("interval"),
        compare=options.pop("compare"),
        output=options.pop("output"),
        save_mapping=options.pop("save_mapping"),
        corrupt_rate=options.pop("corrupt_rate"),
        crashes=options.pop("crashes"),
        **settings,
    )
    if outcome.result is None:  # a rank other than 0 of a parallel run: rank 0 reports
        return
    for line in outcome.summary_lines():
        click.echo(line)


@dataflow.command(
    "explore",
    epilog=(
        "Example: nnsim dataflow explore --weights runs/mlp-128 --hardware "
        "examples/dataflow/hw/mesh16.toml --nodes 1,2,4,8,16 --fold layer,balanced,metis,greedy "
        "--output explore"
    ),
)
@_model_options
@click.option(
    "--nodes",
    default="1,2,4,8,16",
    show_default=True,
    metavar="H1,H2,...",
    help="Node counts to try.",
)
@click.option(
    "--fold",
    default="layer,balanced,metis,greedy",
    show_default=True,
    metavar="S1,S2,...",
    help="Folding strategies to try.",
)
@click.option(
    "--metric",
    default="latency",
    show_default=True,
    metavar="latency|throughput|utilization|traffic",
    help="Rank the table by this (best first).",
)
@click.option(
    "--limit",
    type=int,
    default=1000,
    show_default=True,
    metavar="N",
    help="Classify the first N images (or all, if fewer) in every configuration.",
)
@seed_option
@debug_option
@click.pass_context
def explore(ctx, debug, **options) -> None:
    """Evaluate every strategy x node count and print them best first by --metric.

    A configuration that does not fit the hardware (a capacity refused) is a
    row saying why. --output DIR gets explore.csv and explore.png: latency
    and throughput against node count per strategy, the Pareto front (low
    latency, high throughput) marked.
    """
    from nnsim.dataflow.explore import explore as explore_foldings

    if debug:
        ctx.find_root().meta["debug"] = True
    outcome = explore_foldings(**options)
    for line in outcome.summary_lines():
        click.echo(line)
