"""Regenerate the evaluation images shipped in this folder.

The images are real Fashion-MNIST test images, so a trained network should
classify them correctly, and shipping them lets the example predict
"photos" without a camera:

* ``eval/tshirt.png`` and ``eval/pants.png``: the first TOP and the first
  TROUSER of the test set, standing in for the SST example's photos of a
  t-shirt and of a pair of pants;
* ``eval2/<class>.png``: the first test image of each of the 10 classes.

The choice depends only on the test set's file order, and PNGs written by
Pillow carry no timestamp, so running this again gives the same bytes:

    python examples/fashion_mnist/make_eval_images.py [--source DIR] [--out DIR]

``--source`` defaults to the installed dataset (Debian's dataset-fashion-mnist
or $NNSIM_FASHION_MNIST_DIR); ``--out`` defaults to this script's folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from nnsim.data import CLASS_NAMES, default_dataset_dir, read_idx_split

HERE = Path(__file__).resolve().parent


def first_of_each_class(labels: np.ndarray) -> list[int]:
    """The test-set position of the first image of every class, by class index."""
    return [int(np.flatnonzero(labels == label)[0]) for label in range(len(CLASS_NAMES))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=None, help="folder of the IDX files")
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write eval/ and eval2/")
    args = parser.parse_args()

    test = read_idx_split(args.source or default_dataset_dir(), "test")
    first = first_of_each_class(test.labels)
    wanted = {
        Path("eval/tshirt.png"): first[CLASS_NAMES.index("TOP")],
        Path("eval/pants.png"): first[CLASS_NAMES.index("TROUSER")],
    }
    for label, index in enumerate(first):
        wanted[Path("eval2") / f"{CLASS_NAMES[label].lower()}.png"] = index

    for relative, index in wanted.items():
        path = args.out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(test.images[index]).save(path)
        print(f"{relative}: test image {index} ({CLASS_NAMES[test.labels[index]]})")


if __name__ == "__main__":
    main()
