"""Export Fashion-MNIST IDX files as the SST example's tree of class folders of PNGs.

The tree is what the SST neural-network example (and anyone without an IDX
reader) consumes; file names carry each image's position in the IDX file, so
an exported image can always be traced back to the original.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from nnsim.data.classes import CLASS_NAMES, default_dataset_dir
from nnsim.data.dataset import find_idx_files, read_idx_split, select_per_class
from nnsim.data.records import LabeledImages, check_class_image_limit
from nnsim.errors import DataError, NnsimError
from nnsim.files import atomic_write

SPLITS = ("train", "test")


def export_png(
    out_dir: str | os.PathLike[str],
    source_folder: str | os.PathLike[str] | None = None,
    class_image_limit: int | None = None,
) -> int:
    """Write ``out_dir/{train,test}/<CLASS_NAME>/<index:05d>.png``; return the count.

    `source_folder` holds the IDX files (default: the Fashion-MNIST folder).
    With `class_image_limit`, only the first that many images of each class are
    written. Both splits are read and checked before anything is written, the
    tree is built in a hidden temporary folder inside `out_dir` and moved into
    place at the end, so a failure leaves no half-written tree behind. Existing
    ``train``/``test`` folders are never overwritten.
    """
    check_class_image_limit(class_image_limit)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DataError(f"export folder '{out}' is a file; pass --out a folder")
    for split in SPLITS:
        if (out / split).exists():
            raise DataError(
                f"'{out / split}' already exists; pass --out a new or empty folder "
                "or remove the old export first"
            )
    splits = {split: _selected(source_folder, split, class_image_limit) for split in SPLITS}

    created_out = not out.exists()
    moved: list[Path] = []
    staging: Path | None = None
    try:
        out.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".export-png-", dir=out))
        written = sum(
            _write_tree(staging / split, data, indices) for split, (data, indices) in splits.items()
        )
        for split in SPLITS:
            (staging / split).rename(out / split)
            moved.append(out / split)
    except (OSError, NnsimError) as exc:
        for path in moved:
            shutil.rmtree(path, ignore_errors=True)
        moved.clear()
        cause = exc.__cause__ if isinstance(exc, NnsimError) and exc.__cause__ else exc
        raise DataError(
            f"cannot write PNGs to '{out}': {getattr(cause, 'strerror', None) or cause}; "
            "check the folder's permissions and free space"
        ) from exc
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if created_out and not moved:
            shutil.rmtree(out, ignore_errors=True)
    return written


def _selected(
    source_folder: str | os.PathLike[str] | None, split: str, class_image_limit: int | None
) -> tuple[LabeledImages, Sequence[int]]:
    """The split's data and the IDX positions of the images to write."""
    source = default_dataset_dir() if source_folder is None else Path(source_folder)
    if not source.is_dir() or find_idx_files(source, split) is None:
        raise DataError(
            f"Fashion-MNIST IDX files for the {split} split not found in '{source}'; "
            "install the Debian package dataset-fashion-mnist "
            "(sudo apt-get install dataset-fashion-mnist) or pass --source a folder with them"
        )
    data = read_idx_split(source, split)
    if class_image_limit is None:
        return data, range(len(data))
    return data, select_per_class(data.labels, class_image_limit).tolist()


def _write_tree(folder: Path, data: LabeledImages, indices: Sequence[int]) -> int:
    """Write the images at `indices` into ``folder/<CLASS_NAME>/<index:05d>.png``.

    Names are zero-padded to at least 5 digits (enough for Fashion-MNIST) and
    to the width of the largest index, so that name order is file order.
    """
    width = max(5, len(str(len(data) - 1)))
    for name in CLASS_NAMES:
        (folder / name).mkdir(parents=True)
    for index in indices:
        path = folder / CLASS_NAMES[data.labels[index]] / f"{index:0{width}d}.png"
        # Not fsync-ed one by one: the staging folder is the unit that is committed.
        with atomic_write(path, "wb", durable=False) as file:
            Image.fromarray(data.images[index]).save(file, format="PNG")
    return len(indices)
