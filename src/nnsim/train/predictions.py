"""``predictions.csv``: each evaluation image, its predicted class, and its true class if known.

The true class is read from the file name when it names one: ``ankle_boot.png``
is ANKLE_BOOT, ``sneaker-2.png`` is SNEAKER, ``tshirt.png`` TOP and
``pants.png`` TROUSER (the example's eval images); otherwise it is left empty.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from nnsim.data import class_from_file_name
from nnsim.files import write_text
from nnsim.train.runfolder import PREDICTIONS_FILE, portable_path

COLUMNS = ("path", "predicted", "true")


def true_class(path: str | Path) -> str | None:
    """The class an image's file name names, or None (see ``nnsim.data.class_from_file_name``)."""
    return class_from_file_name(path)


def prediction_rows(paths: Sequence[str], predicted: Sequence[str]) -> list[dict[str, str]]:
    return [
        {"path": str(path), "predicted": name, "true": true_class(path) or ""}
        for path, name in zip(paths, predicted, strict=False)
    ]


def write_predictions(run_dir: Path, paths: Sequence[str], predicted: Sequence[str]) -> Path:
    """Write ``<run>/predictions.csv`` (path, predicted, true) and return its path.

    Image paths inside the project are written relative to the run folder
    (``nnsim.train.runfolder.portable_path``).
    """
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(prediction_rows([portable_path(path, run_dir) for path in paths], predicted))
    path = run_dir / PREDICTIONS_FILE
    write_text(path, out.getvalue())
    return path
