"""``nnsim graph``: draw the component graph of a model script, a checkpoint or a run folder."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import click

from nnsim.errors import NnsimError
from nnsim.files import atomic_write_with, write_text
from nnsim.sim import Simulation
from nnsim.sim.report import RANKDIRS, to_dot

INSTALL_HINT = "install graphviz (apt-get install graphviz)"
DEFAULT_DPI = 150  # Graphviz draws PNGs at 96 dpi, where 10 pt labels are hard to read


def load_graph(location: str | Path, script_args: list[str] | tuple[str, ...] = ()) -> Simulation:
    """The constructed (not run) simulation of a model script, checkpoint or run folder.

    A run folder is one with a ``checkpoints/`` subfolder: its latest
    checkpoint is drawn. A checkpoint's graph is rebuilt from its manifest
    alone (its tensors are not read).
    """
    from nnsim.runner import looks_like_checkpoint

    location = os.fspath(location)
    path = Path(location)
    if path.is_dir() and (path / "checkpoints").is_dir():
        location = str(path / "checkpoints")
    elif path.is_file() and path.name != "manifest.json":
        from nnsim.script import build_from_script

        sim = Simulation()
        build_from_script(sim, path, list(script_args))
        return sim
    elif not (looks_like_checkpoint(location) or path.name == "manifest.json"):
        raise NnsimError(
            f"'{location}' is not a model script, a checkpoint or a run folder; "
            "pass a .py model script, a checkpoint folder, or a folder with checkpoints/"
        )
    from nnsim.checkpoint import open_checkpoint
    from nnsim.state.snapshot import build_model

    storage, name = open_checkpoint(location)
    manifest = storage.load_manifest(name)
    sim = build_model(manifest)
    restore_graph_state(sim, manifest)
    return sim


def restore_graph_state(sim: Simulation, manifest: dict) -> None:
    """Put back the saved attributes each component's drawing reads (`Component.graph_state`:
    a dataflow node's vertices, drawn as its cluster), from the manifest alone."""
    from nnsim.state import Decoder

    decoder = Decoder({}, {})
    saved = manifest.get("components") or {}
    for name, component in sim.components.items():
        state = (saved.get(name) or {}).get("state") or {}
        for attribute in component.graph_state:
            if attribute not in state:
                continue
            try:
                value = decoder.decode(state[attribute], f"{name}/{attribute}")
            except Exception as error:  # a tampered manifest: one line, no traceback
                raise NnsimError(
                    f"checkpoint: {name}/{attribute} cannot be read ({error})"
                ) from None
            setattr(component, attribute, value)


def dot_program() -> str:
    """The path of Graphviz's ``dot``, or an error that says how to get it."""
    program = shutil.which("dot")
    if program is None:
        raise NnsimError(
            "drawing a PNG or SVG needs Graphviz's 'dot' program, which is not installed; "
            f"{INSTALL_HINT}, or write the dot text with --dot FILE"
        )
    return program


def render(dot_text: str, path: str | Path, fmt: str, dpi: int | None = None) -> None:
    """Draw ``dot_text`` into ``path`` as ``fmt`` (png, svg) with Graphviz; nothing is left on failure.

    ``dpi`` sets the resolution of a PNG (an SVG scales by itself).
    """
    resolution = [f"-Gdpi={dpi}"] if dpi and fmt == "png" else []
    program = dot_program()

    def draw(temporary: str) -> None:
        result = subprocess.run(
            [program, f"-T{fmt}", *resolution, "-o", temporary],
            input=dot_text,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            reason = (result.stderr.strip().splitlines() or ["no message"])[0]
            raise NnsimError(f"Graphviz could not draw '{path}': {reason}")

    atomic_write_with(path, draw)


def write_graph(
    sim: Simulation,
    *,
    png: str | Path | None = None,
    svg: str | Path | None = None,
    dot: str | Path | None = None,
    dpi: int = DEFAULT_DPI,
    rankdir: str = "LR",
) -> str:
    """Write the graph of ``sim`` to the files asked for; return the dot text."""
    text = to_dot(sim, rankdir=rankdir)
    if png or svg:
        dot_program()  # before writing anything
    for target in (dot, png, svg):
        if target and not Path(target).resolve().parent.is_dir():
            raise NnsimError(f"cannot write '{target}': its folder does not exist")
    if dot:
        write_text(dot, text)
    if png:
        render(text, png, "png", dpi=dpi)
    if svg:
        render(text, svg, "svg")
    return text


@click.command(
    "graph",
    epilog=(
        "Examples: nnsim graph examples/fashion_mnist/nn.py --png graph.png -- --hiddenLayers 3\n\n"
        "nnsim graph runs/mlp_fashion-mnist_2025-01-01_120000 --svg graph.svg"
    ),
)
@click.argument("run_or_script")
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--png", metavar="FILE", help="Draw the graph as PNG (needs Graphviz).")
@click.option("--svg", metavar="FILE", help="Draw the graph as SVG (needs Graphviz).")
@click.option("--dot", "dot_file", metavar="FILE", help="Write the graph in Graphviz dot.")
@click.option(
    "--dpi",
    type=click.IntRange(36, 1200),
    default=DEFAULT_DPI,
    show_default=True,
    help="Resolution of the PNG.",
)
@click.option(
    "--rankdir",
    type=click.Choice(RANKDIRS, case_sensitive=False),
    default="LR",
    show_default=True,
    help="Direction of the forward chain: LR left to right, TB top to bottom (RL, BT reversed).",
)
def graph(run_or_script, script_args, png, svg, dot_file, dpi, rankdir) -> None:
    """Draw the component graph of RUN_OR_SCRIPT without running it.

    RUN_OR_SCRIPT is a model script (arguments after -- go to it), a
    checkpoint, or a run folder (its latest checkpoint). Forward links are
    solid, backward links dashed, result links dotted. Without --png, --svg
    or --dot the dot text is printed; otherwise one line names each file
    written.
    """
    if png or svg:
        dot_program()  # fail before building the model
    sim = load_graph(run_or_script, script_args)
    text = write_graph(sim, png=png, svg=svg, dot=dot_file, dpi=dpi, rankdir=rankdir.upper())
    if not (png or svg or dot_file):
        click.echo(text, nl=False)
    for what, target in (("dot text", dot_file), ("PNG", png), ("SVG", svg)):
        if target:
            click.echo(f"wrote {what} to {target}")
