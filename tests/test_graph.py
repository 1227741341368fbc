"""`nnsim graph` and `to_dot`: pictures of the component graph."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_nnsim
from PIL import Image

from nnsim.cli.graph import load_graph
from nnsim.sim.report import to_dot

EXAMPLE = "examples/fashion_mnist/nn.py"
CHAIN = ["controller", "input", "dense1", "relu1", "dense2", "relu2", "dense3", "softmax", "loss"]

requires_graphviz = pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz's dot is not installed (apt-get install graphviz)"
)


def toy_args(dataset: Path, *extra: str) -> list[str]:
    return [
        f"--trainingImages={dataset}",
        f"--testImages={dataset}",
        "--classImageLimit=0",
        "--batchSize=32",
        "--hiddenLayerSize=16",
        "--evalImages=",
        *extra,
    ]


def run_without_graphviz(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """The CLI with a PATH that has no ``dot`` on it."""
    return subprocess.run(
        [sys.executable, "-m", "nnsim.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": os.devnull},
    )


def _edges(dot: str, source: str, target: str) -> list[str]:
    return [
        line for line in dot.splitlines() if line.strip().startswith(f'"{source}" -> "{target}"')
    ]


def test_dot_draws_the_chain_left_to_right_with_styled_backward_and_result_links(toy_dataset):
    sim = load_graph(EXAMPLE, toy_args(toy_dataset, "--hiddenLayers=1"))
    dot = to_dot(sim)
    assert dot.startswith("digraph nnsim {") and "rankdir=LR" in dot
    chain = ["controller", "input", "dense1", "relu1", "dense2", "softmax", "loss"]
    for name in chain:
        assert f'"{name}" [label="{name}\\n' in dot
    assert '"dense1" [label="dense1\\nnn.Dense\\n784 x 16 weights"]' in dot
    assert '"dense2" [label="dense2\\nnn.Dense\\n16 x 10 weights"]' in dot
    assert "optimizer: nn.Adam" in dot
    for upstream, downstream in zip(chain, chain[1:], strict=False):
        forward, backward = _edges(dot, upstream, downstream)
        assert "style" not in forward  # solid
        assert "style=dashed" in backward and "dir=back" in backward
    (result,) = _edges(dot, "controller", "loss")
    assert "style=dotted" in result and "dir=back" in result
    assert "solid: forward" in dot and "dashed: backward" in dot and "dotted: result" in dot
    assert dot.count(" -> ") == len(sim.link_list)  # plain x_out -> x_in pairs: latency only


def test_graph_of_a_script_prints_dot_and_writes_it_with_script_arguments(toy_dataset, tmp_path):
    out = tmp_path / "graph.dot"
    result = run_without_graphviz(
        "graph", EXAMPLE, "--dot", str(out), "--", *toy_args(toy_dataset, "--hiddenLayers=3")
    )
    assert result.returncode == 0, result.stderr
    dot = out.read_text()
    for name in [*CHAIN[:-3], "relu3", "dense4", "softmax", "loss"]:
        assert f'"{name}"' in dot
    printed = run_nnsim("graph", EXAMPLE, "--", *toy_args(toy_dataset))
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.startswith("digraph nnsim {")


@requires_graphviz
def test_png_and_svg_are_drawn_with_graphviz(toy_dataset, tmp_path):
    png, svg = tmp_path / "graph.png", tmp_path / "graph.svg"
    result = run_nnsim(
        "graph", EXAMPLE, "--png", str(png), "--svg", str(svg), "--", *toy_args(toy_dataset)
    )
    assert result.returncode == 0, result.stderr
    with Image.open(png) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert width > 3 * height > 0  # a left-to-right chain
    assert "<svg" in svg.read_text() and ">dense1<" in svg.read_text()
    assert not list(tmp_path.glob(".*partial"))


def test_without_graphviz_png_is_one_clear_error_and_nothing_is_written(toy_dataset, tmp_path):
    png, dot = tmp_path / "graph.png", tmp_path / "graph.dot"
    result = run_without_graphviz(
        "graph", EXAMPLE, "--png", str(png), "--dot", str(dot), "--", *toy_args(toy_dataset)
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnsim: error: ")
    assert "apt-get install graphviz" in lines[0] and "--dot" in lines[0]
    assert not png.exists() and not dot.exists()


def test_graph_of_a_checkpoint_and_of_a_run_folder(toy_dataset, tmp_path):
    run_dir = tmp_path / "run"
    result = run_nnsim(
        "run",
        EXAMPLE,
        "--checkpoint-enable",
        f"--checkpoint-dir={run_dir / 'checkpoints'}",
        "--checkpoint-every-epochs=1",
        "--",
        *toy_args(toy_dataset, "--epochs=1"),
    )
    assert result.returncode == 0, result.stderr
    checkpoint = next(p for p in (run_dir / "checkpoints").iterdir() if p.is_dir())
    for location in (run_dir, checkpoint, checkpoint / "manifest.json"):
        printed = run_without_graphviz("graph", str(location))
        assert printed.returncode == 0, printed.stderr
        assert '"dense1" [label="dense1\\nnn.Dense\\n784 x 16 weights"]' in printed.stdout
        for name in CHAIN:
            assert f'"{name}"' in printed.stdout


def test_a_location_that_is_not_a_model_is_one_clear_error(tmp_path):
    result = run_nnsim("graph", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"nnsim: error: '{tmp_path}' is not a model script, a checkpoint or a run folder; "
        "pass a .py model script, a checkpoint folder, or a folder with checkpoints/"
    ]


@requires_graphviz
def test_graph_says_where_it_wrote_and_takes_dpi_and_rankdir(toy_dataset, tmp_path):
    small, large, tall = tmp_path / "small.png", tmp_path / "large.png", tmp_path / "tall.png"
    dot = tmp_path / "graph.dot"
    args = ["--", *toy_args(toy_dataset)]
    result = run_nnsim(
        "graph", EXAMPLE, "--png", str(small), "--dpi", "72", "--dot", str(dot), *args
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"wrote dot text to {dot}", f"wrote PNG to {small}"]
    assert run_nnsim("graph", EXAMPLE, "--png", str(large), "--dpi", "144", *args).returncode == 0
    with Image.open(small) as first, Image.open(large) as second:
        assert abs(second.size[0] / first.size[0] - 2) < 0.05  # twice the dpi, twice the pixels
    default = tmp_path / "default.png"
    run_nnsim("graph", EXAMPLE, "--png", str(default), *args)
    with Image.open(default) as image, Image.open(small) as first:
        assert image.size[0] > 2 * first.size[0]  # 150 dpi by default: labels large enough

    result = run_nnsim("graph", EXAMPLE, "--png", str(tall), "--rankdir", "TB", *args)
    assert result.returncode == 0, result.stderr
    with Image.open(tall) as image:
        width, height = image.size
    assert height > 2 * width  # the chain from top to bottom
    printed = run_nnsim("graph", EXAMPLE, "--rankdir", "tb", *args)
    assert "rankdir=TB;" in printed.stdout and "wrote" not in printed.stdout
    assert "rankdir=LR;" in dot.read_text() and "fontsize=10" in dot.read_text()

    bad = run_nnsim("graph", EXAMPLE, "--rankdir", "UP", *args)
    assert bad.returncode == 2 and "Invalid value for '--rankdir': 'UP'" in bad.stderr
    missing = tmp_path / "nope" / "g.png"
    nowhere = run_nnsim("graph", EXAMPLE, "--png", str(missing), *args)
    assert nowhere.returncode == 1
    assert nowhere.stderr == f"nnsim: error: cannot write '{missing}': its folder does not exist\n"
