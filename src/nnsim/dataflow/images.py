"""The images a dataflow run classifies: the Fashion-MNIST test set, or a folder.

``--images test`` is the test split of the default dataset (Debian's
``dataset-fashion-mnist``, or ``$NNSIM_FASHION_MNIST_DIR``), 10,000 images
with their labels; a folder is read by what it holds, with the `nnsim.data`
readers every other command uses:

- IDX files of a test split (``t10k-images-idx3-ubyte[.gz]`` and labels);
- PNGs directly in it (an evaluation folder: any size, made 28x28; a
  label when the file name names a class, ``sneaker-2.png``);
- class folders of PNGs (``<dir>/<class>/*.png``, labelled by folder).

Pixels are scaled as (x - 127.5) / 127.5, as the models were trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnsim.data import (
    CLASS_NAMES,
    class_from_file_name,
    find_idx_files,
    load_split,
    read_class_folders,
    read_eval_folder,
    read_idx_split,
    scale_pixels,
)
from nnsim.errors import DataError

UNLABELED = -1
TEST_SET = "test"


@dataclass(frozen=True)
class ImageSet:
    """Scaled images ``pixels [N, 784]`` float32, ``labels [N]`` (-1: unknown) and their names."""

    pixels: np.ndarray
    labels: np.ndarray
    names: tuple[str, ...]
    source: str
    spec: str = TEST_SET  # what was asked for: "test" or the folder, to read them again

    def __len__(self) -> int:
        return len(self.names)

    def first(self, count: int) -> ImageSet:
        """The first ``count`` images (all of them if there are fewer)."""
        keep = slice(0, count)
        return ImageSet(
            self.pixels[keep], self.labels[keep], self.names[keep], self.source, self.spec
        )

    @property
    def labeled(self) -> bool:
        return bool((self.labels != UNLABELED).all()) and len(self) > 0


def load_images(spec: str | Path, limit: int | None = None) -> ImageSet:
    """The images ``--images`` names (``test`` or a folder), the first ``limit`` of them."""
    if limit is not None and (isinstance(limit, bool) or limit < 1):
        raise DataError(f"--limit must be at least 1, not {limit}")
    text = str(spec)
    if text == TEST_SET:
        data = load_split("test")
        names = [f"test/{index}" for index in range(len(data))]
        return _image_set(data.images, data.labels, names, data.source, limit, TEST_SET)
    folder = Path(text)
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise DataError(
            f"images folder '{folder}' {what}; pass --images test (the Fashion-MNIST test set) "
            "or a folder of PNGs, of class folders of PNGs, or of IDX files"
        )
    spec = str(folder.resolve())
    if find_idx_files(folder, "test") is not None:
        data = read_idx_split(folder, "test")
        names = [f"{folder}/{index}" for index in range(len(data))]
        return _image_set(data.images, data.labels, names, data.source, limit, spec)
    if any(entry.suffix.lower() == ".png" and entry.is_file() for entry in folder.iterdir()):
        found = read_eval_folder(folder)
        labels = [class_from_file_name(path) for path in found.paths]
        numbers = [UNLABELED if name is None else CLASS_NAMES.index(name) for name in labels]
        return _image_set(found.images, np.asarray(numbers), found.paths, str(folder), limit, spec)
    data = read_class_folders(folder)
    names = [f"{CLASS_NAMES[label]}/{index}" for index, label in enumerate(data.labels)]
    return _image_set(data.images, data.labels, names, data.source, limit, spec)


def _image_set(images, labels, names, source: str, limit: int | None, spec: str) -> ImageSet:
    if limit is not None and limit > len(images):
        raise DataError(f"'{source}' holds {len(images)} images, fewer than the {limit} asked")
    keep = slice(None) if limit is None else slice(0, limit)
    return ImageSet(
        pixels=scale_pixels(images[keep]),
        labels=np.asarray(labels, dtype=np.int64)[keep],
        names=tuple(names[keep]),
        source=source,
        spec=spec,
    )
