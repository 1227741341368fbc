"""The records the data readers return, and the checks they share.

Apart from the readers so that the IDX reader (`dataset`) and the PNG reader
(`images`) can both use them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnsim.errors import DataError


@dataclass
class LabeledImages:
    """Images with their class labels, and where they were read from.

    `images` is uint8 [N, 28, 28], `labels` int64 [N] in 0..9, `source` the
    file or folder they came from (for messages and run metadata).
    """

    images: np.ndarray
    labels: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class EvalImages:
    """Unlabeled images to predict, with the path each one came from.

    `images` is uint8 [N, 28, 28]; `paths[i]` names `images[i]` in reports.
    """

    images: np.ndarray
    paths: list[str]

    def __len__(self) -> int:
        return len(self.paths)


def check_class_image_limit(class_image_limit: int | None) -> None:
    """Reject a limit that is not a whole number >= 1 (None means no limit)."""
    if class_image_limit is None:
        return
    if isinstance(class_image_limit, bool) or not isinstance(class_image_limit, (int, np.integer)):
        raise DataError(
            f"class image limit must be a whole number, got {class_image_limit!r}; "
            "pass --classImageLimit N with N >= 1"
        )
    if class_image_limit < 1:
        raise DataError(
            f"class image limit must be at least 1, got {class_image_limit}; "
            "pass --classImageLimit N with N >= 1 or leave it out for all images"
        )
