"""Labeled splits of Fashion-MNIST, from IDX files or from class folders of PNGs.

`load_split` is the one entry point the batch controller and the CLI use: it
hides whether the data came from Debian's IDX files or from a folder tree like
the SST example's, and it guarantees that both give the same arrays for the
same images (see `select_per_class`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from nnsim.data.classes import CLASS_NAMES, IMAGE_SHAPE, default_dataset_dir
from nnsim.data.idx import read_idx
from nnsim.data.images import read_class_folders
from nnsim.data.records import LabeledImages, check_class_image_limit
from nnsim.errors import DataError

Split = Literal["train", "test"]

_IDX_PREFIX = {"train": "train", "test": "t10k"}
_SPLIT_FLAG = {"train": "--trainingImages", "test": "--testImages"}
_SPLIT_WHAT = {"train": "training images", "test": "test images"}


def load_split(
    split: Split,
    folder: str | os.PathLike[str] | None = None,
    class_image_limit: int | None = None,
) -> LabeledImages:
    """Load the training or test split.

    `folder=None` reads the default Fashion-MNIST folder (Debian's
    ``dataset-fashion-mnist``, or ``$NNSIM_FASHION_MNIST_DIR``). A folder that
    holds the split's IDX files is read as IDX; any other folder is read as
    class folders of PNGs. With `class_image_limit`, at most that many images
    of each class are kept and the result is ordered class by class; without
    it, IDX data keeps the file's order.
    """
    if split not in _IDX_PREFIX:
        raise DataError(f"unknown dataset split '{split}'; use 'train' or 'test'")
    check_class_image_limit(class_image_limit)
    if folder is None:
        directory = default_dataset_dir()
        if find_idx_files(directory, split) is None:
            raise DataError(
                f"Fashion-MNIST not found in {directory}; install the Debian package "
                "dataset-fashion-mnist (sudo apt-get install dataset-fashion-mnist) "
                "or pass --trainingImages/--testImages"
            )
    else:
        directory = Path(folder)
        if not directory.is_dir():
            what = "is not a folder" if directory.exists() else "does not exist"
            raise DataError(
                f"{_SPLIT_WHAT[split]} folder '{directory}' {what}; pass {_SPLIT_FLAG[split]} "
                "a folder of IDX files or of class folders of PNGs, "
                "or install dataset-fashion-mnist"
            )
        if find_idx_files(directory, split) is None:
            return read_class_folders(directory, class_image_limit)
    data = read_idx_split(directory, split)
    if class_image_limit is None:
        return data
    keep = select_per_class(data.labels, class_image_limit)
    return LabeledImages(data.images[keep], data.labels[keep], data.source)


_HOLD_OUT_KEY = 0x76616C  # "val": the seed stream of the validation split, apart from all others


def hold_out(
    data: LabeledImages, fraction: float, seed: int
) -> tuple[LabeledImages, LabeledImages]:
    """Split ``fraction`` of ``data`` off as a validation set: ``(the rest, the held-out part)``.

    Which images are held out is a random choice fixed by ``seed`` alone (not
    by how far a run has got), so a restarted run holds out the same ones; both
    parts keep the original order. Round(fraction * N) images are held out.
    """
    count = len(data)
    held = round(count * fraction)
    if not 0 < fraction < 1 or held == 0 or held == count:
        raise DataError(
            f"a validation split of {fraction:g} of {count} training images leaves "
            f"{held} for validation and {count - held} for training; use a fraction "
            "between 0 and 1 that leaves images on both sides (or validate on the test set)"
        )
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_HOLD_OUT_KEY,)))
    chosen = np.zeros(count, dtype=bool)
    chosen[rng.permutation(count)[:held]] = True
    rest = LabeledImages(data.images[~chosen], data.labels[~chosen], data.source)
    held_out = LabeledImages(data.images[chosen], data.labels[chosen], data.source)
    return rest, held_out


def find_idx_files(folder: str | os.PathLike[str], split: Split) -> tuple[Path, Path] | None:
    """The (images, labels) IDX files of `split` in `folder`, or None if absent.

    Looks for the canonical names, gzip-compressed first, then un-gzipped. A
    folder with the images file but not the labels file is an error rather
    than "not an IDX folder", since falling back to PNG folders would hide it.
    """
    folder = Path(folder)
    prefix = _IDX_PREFIX[split]
    images = _first_existing(folder, f"{prefix}-images-idx3-ubyte")
    labels = _first_existing(folder, f"{prefix}-labels-idx1-ubyte")
    if images is None and labels is None:
        return None
    if labels is None:
        raise DataError(_half_split(images, f"{prefix}-labels-idx1-ubyte[.gz]"))
    if images is None:
        raise DataError(_half_split(labels, f"{prefix}-images-idx3-ubyte[.gz]"))
    return images, labels


def read_idx_split(folder: str | os.PathLike[str], split: Split) -> LabeledImages:
    """All images and labels of `split` from the IDX files in `folder`, in file order."""
    found = find_idx_files(folder, split)
    if found is None:
        raise DataError(
            f"no Fashion-MNIST IDX files for the {split} split in '{folder}'; "
            f"expected {_IDX_PREFIX[split]}-images-idx3-ubyte.gz and "
            f"{_IDX_PREFIX[split]}-labels-idx1-ubyte.gz"
        )
    images_path, labels_path = found
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise DataError(
            f"IDX file '{images_path}' holds {images.dtype} {list(images.shape)}, expected "
            f"uint8 [N, {IMAGE_SHAPE[0]}, {IMAGE_SHAPE[1]}]; pass Fashion-MNIST image files"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"IDX file '{labels_path}' holds {labels.dtype} {list(labels.shape)}, expected "
            f"uint8 [{len(images)}] to match '{images_path}'; pass the matching labels file"
        )
    if len(labels) and labels.max() >= len(CLASS_NAMES):
        raise DataError(
            f"IDX file '{labels_path}' has label {int(labels.max())}, expected 0 to "
            f"{len(CLASS_NAMES) - 1}; pass a Fashion-MNIST labels file"
        )
    return LabeledImages(images, labels.astype(np.int64), str(images_path))


def select_per_class(labels: np.ndarray, class_image_limit: int) -> np.ndarray:
    """Indices of the first `class_image_limit` items of each class, class by class.

    Within a class the original order is kept (a stable sort), which is also
    the order of file names that `export_png` writes; that is what makes an
    IDX load and a load of its exported PNGs bit-identical.
    """
    check_class_image_limit(class_image_limit)
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    first_of_class = np.searchsorted(sorted_labels, sorted_labels, side="left")
    rank_in_class = np.arange(len(order)) - first_of_class
    return order[rank_in_class < class_image_limit]


def scale_pixels(images: np.ndarray, dtype: npt.DTypeLike = np.float32) -> np.ndarray:
    """Pixels 0..255 as (x - 127.5) / 127.5 in [-1, 1], one flat row per image.

    The arithmetic runs in `dtype` itself, so float32 input to a float32
    network is float32 math throughout, as in the SST example.
    """
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"scale_pixels needs a floating dtype, got {dtype}")
    images = np.asarray(images)
    half = dtype.type(127.5)
    flat = images.reshape(images.shape[0], math.prod(images.shape[1:])).astype(dtype)
    return (flat - half) / half


def _half_split(found: Path, missing: str) -> str:
    return (
        f"found '{found}' but not {missing} next to it in '{found.parent}'; "
        "put both IDX files of the split in the folder"
    )


def _first_existing(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None
