"""``nnsim test``: test a trained checkpoint on the test set and draw its confusion matrix."""

from __future__ import annotations

import sys
from pathlib import Path

import click


def checkpoint_folder(storage) -> Path:
    """Where a bare checkpoint's plots go: the folder that holds it (the current one if remote)."""
    from nnsim.checkpoint import DirStorage

    return storage.root if isinstance(storage, DirStorage) else Path.cwd()


@click.command(
    "test",
    epilog=(
        "Examples: nnsim test --load runs/mlp-128x128_fashion-mnist_2025-01-31_120000/checkpoints/best\n\n"
        "nnsim test --load ckpt --config train.toml --out results"
    ),
)
@click.option(
    "--load",
    "location",
    required=True,
    metavar="CKPT",
    help="A checkpoint, a run's checkpoints/best or /last, or a folder of checkpoints (its latest).",
)
@click.option(
    "--config",
    metavar="CONFIG.toml",
    help="Test on this config's dataset instead of the checkpoint's own test set.",
)
@click.option(
    "--out",
    metavar="DIR",
    help="Write DIR/plots/confusion.png (default: the run folder, or the checkpoint's folder).",
)
def test(location: str, config: str | None, out: str | None) -> None:
    """Test a checkpoint's trained network: loss, accuracy, per-class accuracy, confusion matrix.

    The network's forward math runs over the whole test set with the trained
    weights (no simulated time). The test set is the run's own (its
    config.toml's, in a run folder) unless --config names another; the output
    says whether the run validated (and chose its best checkpoint) on that
    same test set or on training images it held out. plots/confusion.png goes
    into the run folder, for a bare checkpoint into the folder that holds it,
    or into --out; the last line says where.
    """
    from nnsim.checkpoint import open_checkpoint
    from nnsim.train.config import load_config
    from nnsim.train.evaluate import evaluate_checkpoint, report_lines, rich_report
    from nnsim.train.plots import plot_confusion
    from nnsim.train.runfolder import PLOTS, run_folder_of

    dataset = load_config(config).dataset if config else None
    report = evaluate_checkpoint(location, dataset=dataset)
    if out:
        folder = Path(out)
    else:
        storage, _ = open_checkpoint(location)
        folder = run_folder_of(storage) or checkpoint_folder(storage)
    path = plot_confusion(
        report.confusion,
        report.classes,
        folder / PLOTS / "confusion.png",
        title=f"Confusion matrix of {report.name}\n"
        f"test accuracy {report.accuracy:.1%} on {report.count} images",
    )
    if sys.stdout.isatty():
        from rich.console import Console

        console = Console()
        lines = report_lines(report)
        for line in lines[: lines.index("")]:
            console.print(line, markup=False, highlight=False)
        console.print(rich_report(report))
    else:
        for line in report_lines(report):
            click.echo(line)
    shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
    click.echo(f"confusion matrix: {shown}")
