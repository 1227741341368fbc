"""PNG readers: class folders of training images, and a flat folder to predict.

Every Pillow failure is turned into a `DataError` naming the file, so a
corrupt or mislabeled PNG stops a run with one line instead of a traceback
from inside an image plugin. An image larger than `MAX_IMAGE_PIXELS` (a
decompression bomb: a small file that decodes to gigabytes) is refused the
same way, before it is decoded; Pillow's own warning never reaches stderr.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from nnsim.data.classes import CLASS_NAMES, IMAGE_SHAPE, class_index
from nnsim.data.records import EvalImages, LabeledImages, check_class_image_limit
from nnsim.errors import DataError

_LAYOUT = "<folder>/<class index 0-9 or class name>/*.png"
MAX_IMAGE_PIXELS = 8192 * 8192
"""The largest image read (64 Mpixel: any photo, resized to 28x28 anyway)."""


def read_class_folders(
    root: str | os.PathLike[str], class_image_limit: int | None = None
) -> LabeledImages:
    """Read `root/<class>/*.png` into labeled 28x28 images, class by class.

    A class folder is named by the class index ("0".."9", the SST example's
    layout) or the class name in any case ("TOP", "ankle_boot"). Files are
    taken in name order, at most `class_image_limit` per class; hidden entries
    and non-PNG files are ignored, anything else unexpected is an error.
    """
    check_class_image_limit(class_image_limit)
    root = _existing_folder(root, "images folder", f"pass a folder laid out as {_LAYOUT}")
    folders = _class_folders(root)
    images: list[np.ndarray] = []
    labels: list[int] = []
    for label, folder in sorted(folders.items()):
        files = _png_files(folder)[:class_image_limit]
        images.extend(_read_exact(path) for path in files)
        labels.extend([label] * len(files))
    if not images:
        raise DataError(
            f"images folder '{root}' has class folders but no .png files in them; "
            f"put the images in {_LAYOUT}"
        )
    return LabeledImages(np.stack(images), np.asarray(labels, dtype=np.int64), str(root))


def read_eval_folder(folder: str | os.PathLike[str], invert: bool = False) -> EvalImages:
    """Read every PNG in `folder` (by name) as a 28x28 grayscale image to predict.

    Images of another size are resized, as the SST example does for its
    photos. `invert=True` returns 255 - x, for photos of a dark object on a
    light background (Fashion-MNIST is a light object on black).
    """
    directory = _existing_folder(folder, "evaluation images folder", "pass a folder of .png files")
    files = _png_files(directory)
    if not files:
        raise DataError(
            f"evaluation images folder '{directory}' has no .png files; "
            "put the images to predict in it"
        )
    images = np.stack([_read_resized(path) for path in files])
    if invert:
        images = 255 - images
    return EvalImages(images, [str(Path(folder) / path.name) for path in files])


def _existing_folder(folder: str | os.PathLike[str], what: str, fix: str) -> Path:
    path = Path(folder)
    if not path.is_dir():
        state = "is not a folder" if path.exists() else "does not exist"
        raise DataError(f"{what} '{path}' {state}; {fix}")
    return path


def _class_folders(root: Path) -> dict[int, Path]:
    """Label -> folder for every class folder of `root`."""
    folders: dict[int, Path] = {}
    for entry in _list(root):
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        label = class_index(entry.name)
        if label is None:
            raise DataError(
                f"folder '{entry}' is not a class folder; name class folders 0 to "
                f"{len(CLASS_NAMES) - 1} or {', '.join(CLASS_NAMES)}"
            )
        if label in folders:
            raise DataError(
                f"folders '{folders[label]}' and '{entry}' are both class "
                f"{label} ({CLASS_NAMES[label]}); merge them into one"
            )
        folders[label] = entry
    if not folders:
        raise DataError(f"images folder '{root}' has no class folders; lay it out as {_LAYOUT}")
    return folders


def _png_files(folder: Path) -> list[Path]:
    return [
        entry
        for entry in _list(folder)
        if entry.suffix.lower() == ".png" and not entry.name.startswith(".") and entry.is_file()
    ]


def _list(folder: Path) -> list[Path]:
    """The entries of `folder` sorted by name; an unreadable folder is a DataError."""
    try:
        return sorted(folder.iterdir())
    except OSError as exc:
        raise DataError(f"cannot list folder '{folder}': {exc.strerror or exc}") from exc


def _read_exact(path: Path) -> np.ndarray:
    """A training image, which must already be 28x28."""
    image = _open_gray(path)
    if image.size != IMAGE_SHAPE[::-1]:
        width, height = image.size
        raise DataError(
            f"image '{path}' is {width}x{height}, expected "
            f"{IMAGE_SHAPE[1]}x{IMAGE_SHAPE[0]}; resize it or remove it"
        )
    return np.asarray(image, dtype=np.uint8)


def _read_resized(path: Path) -> np.ndarray:
    """An evaluation image, resized to 28x28 if it is not already."""
    image = _open_gray(path)
    size = IMAGE_SHAPE[::-1]
    if image.size != size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8)


def _open_gray(path: Path) -> Image.Image:
    """The decoded image at `path` in 8-bit grayscale ("L")."""
    try:
        with _bomb_limit(), Image.open(path) as image:
            # convert() also detaches the pixels from the file being closed.
            return image.convert("L")
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise DataError(
            f"image '{path}' has more than {MAX_IMAGE_PIXELS} pixels (8192x8192), the most "
            "nnsim reads (a decompression bomb?); resize it or remove it"
        ) from None
    # Image plugins raise a zoo of exception types for malformed files
    # (OSError, SyntaxError, ValueError, struct.error, zlib.error...); all
    # of them mean "this file is not a usable image", which is the user's to fix.
    except Exception as exc:
        raise DataError(
            f"cannot read image '{path}' ({type(exc).__name__}: {exc}); "
            "replace it with a valid PNG or remove it"
        ) from exc


@contextlib.contextmanager
def _bomb_limit() -> Iterator[None]:
    """Pillow's pixel limit at `MAX_IMAGE_PIXELS`, its bomb warning raised as an exception."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved
