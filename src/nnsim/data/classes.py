"""The Fashion-MNIST vocabulary: class names, image shape, where the data lives.

Kept apart from the readers so that code that only needs the names (reports,
the console, prediction output) does not import Pillow or touch the disk.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

CLASS_NAMES: tuple[str, ...] = (
    "TOP",
    "TROUSER",
    "PULLOVER",
    "DRESS",
    "COAT",
    "SANDAL",
    "SHIRT",
    "SNEAKER",
    "BAG",
    "ANKLE_BOOT",
)
"""Label ``i`` of Fashion-MNIST is ``CLASS_NAMES[i]`` (the SST example's names)."""

IMAGE_SHAPE: tuple[int, int] = (28, 28)
"""Height and width of every image the readers return."""

DEFAULT_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
"""Where Debian's ``dataset-fashion-mnist`` package installs the IDX files."""

FASHION_MNIST_DIR_ENV = "NNSIM_FASHION_MNIST_DIR"
"""Environment variable that points the default dataset somewhere else."""


def default_dataset_dir() -> Path:
    """The folder ``load_split`` reads when no folder is given.

    An environment variable rather than a config key so that tests, CI and
    machines without root (no Debian package) can redirect it without
    touching any command line.
    """
    return Path(os.environ.get(FASHION_MNIST_DIR_ENV) or DEFAULT_FASHION_MNIST_DIR)


def class_index(name: str) -> int | None:
    """The label a class folder name stands for, or None if it names no class.

    Both layouts in the wild are accepted: the class index ("0".."9", as in the
    SST example and nnfs' ``fashion_mnist_images``) and the class name in any
    case ("TOP", "ankle_boot").
    """
    if name.isdigit() and name.isascii():
        index = int(name)
        return index if index < len(CLASS_NAMES) and name == str(index) else None
    upper = name.upper()
    return CLASS_NAMES.index(upper) if upper in CLASS_NAMES else None


# Evaluation file names that name a class without spelling it as in CLASS_NAMES.
FILE_NAME_ALIASES = {
    "TSHIRT": "TOP",
    "T_SHIRT": "TOP",
    "SHIRT_TOP": "TOP",
    "PANTS": "TROUSER",
    "TROUSERS": "TROUSER",
    "JEANS": "TROUSER",
    "SNEAKERS": "SNEAKER",
    "SANDALS": "SANDAL",
    "BOOT": "ANKLE_BOOT",
    "BOOTS": "ANKLE_BOOT",
    "HANDBAG": "BAG",
}


def class_from_file_name(path: str | os.PathLike[str]) -> str | None:
    """The class an image's file name names (``eval2/ankle_boot.png``, ``pants2.png``), or None.

    How a sweep or a training run tells whether a prediction was right.
    """
    stem = re.sub(r"[\s-]+", "_", Path(path).stem.upper())
    for candidate in (stem, re.sub(r"_?\d+$", "", stem)):
        candidate = FILE_NAME_ALIASES.get(candidate, candidate)
        if candidate in CLASS_NAMES:
            return candidate
    return None
