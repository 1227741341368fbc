"""`nnsim data ...`: dataset tools, a thin layer over `nnsim.data`.

`DataError`s are left to propagate: the main CLI prints any `NnsimError` as
one line and exits non-zero.
"""

from __future__ import annotations

from pathlib import Path

import click

from nnsim.data import export_png


@click.group("data", help="Dataset tools.")
def data() -> None:
    """Dataset tools."""


@data.command("export-png")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder to write train/<CLASS>/*.png and test/<CLASS>/*.png into.",
)
@click.option(
    "--source",
    "source_folder",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder with the Fashion-MNIST IDX files (default: the installed dataset).",
)
@click.option(
    "--classImageLimit",
    "class_image_limit",
    type=click.IntRange(min=1),
    default=None,
    help="Export only the first N images of each class.",
)
def export_png_command(
    out_dir: Path, source_folder: Path | None, class_image_limit: int | None
) -> None:
    """Export Fashion-MNIST as class folders of PNGs (the SST example's layout)."""
    count = export_png(out_dir, source_folder, class_image_limit)
    click.echo(f"wrote {count} images to {out_dir}")
