"""Testing a trained checkpoint: loss, accuracy, per-class accuracy and the confusion matrix.

The test runs the network's forward math (``nnsim.nn.functional``) over the
whole test set with the checkpoint's trained weights, in batches, outside the
simulation: the chain is read from the checkpoint's graph (``nn.Input``,
``nn.Dense``, ``nn.ReLU``, ``nn.Softmax``), so it is the same computation the
simulated validation pass does, without simulated time. The test set is the
checkpoint's controller's (its ``test_images``, ``class_image_limit`` and
``dtype``; in a run folder, its ``config.toml``'s), unless a config's dataset
section is given instead. The report
also says what the run validated on — the test set itself (SST's way, so
the score is on the images that chose the best checkpoint) or training
images held out (``validation_split``), which leave the test set unseen.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnsim.data import CLASS_NAMES, load_split, scale_pixels
from nnsim.errors import NnsimError
from nnsim.interop.export import layer_chain, trained_parameters
from nnsim.nn import functional as F
from nnsim.nn.layers import Layer
from nnsim.sim import lookup
from nnsim.train.config import DatasetConfig
from nnsim.train.runfolder import open_run_folder, run_folder_of

BATCH = 1024


@dataclass
class EvaluationReport:
    """The result of testing one checkpoint."""

    checkpoint: str  # its location, as given (a run's checkpoints/best, say)
    name: str  # the checkpoint itself (checkpoint_10_32262231000)
    loss: float
    accuracy: float
    confusion: np.ndarray  # [true class, predicted class] counts
    classes: tuple[str, ...] = CLASS_NAMES
    test_images: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)  # the checkpoint's own
    validation_split: float = 0.0  # the run's: 0 validated on the test set
    validation_images: int = 0  # how many images it validated on
    own_test_set: bool = True  # the score is on the checkpoint's own test set

    def validation(self) -> str:
        """One line: which data validated (and chose the best checkpoint), which data scored."""
        if self.validation_split:
            return (
                f"validated on: {self.validation_images} training images held out "
                f"(validation = {self.validation_split:g}); this score is on a test set "
                "that neither training nor choosing the best checkpoint saw"
            )
        if not self.own_test_set:
            return "validated on: the run's own test set; this score is on another test set"
        return (
            'validated on: the test set itself (validation = "test", as in SST\'s example), '
            "so this score is on the images that chose the best checkpoint; hold out "
            "training images (dataset.validation = 0.1) for a score on unseen images"
        )

    @property
    def count(self) -> int:
        return int(self.confusion.sum())

    def per_class(self) -> list[tuple[str, int, int, float]]:
        """``(class, images, correct, accuracy)`` per class (accuracy NaN without images)."""
        rows = []
        for index, name in enumerate(self.classes):
            images = int(self.confusion[index].sum())
            correct = int(self.confusion[index, index])
            rows.append((name, images, correct, correct / images if images else math.nan))
        return rows


def _controller_setting(body: dict, name: str, default: Any) -> Any:
    """A setting of the checkpoint's batch controller: its saved state, else its parameters."""
    for spec in body["model"]["components"]:
        if spec["type"] == "nn.BatchController":
            state = body["components"][spec["name"]]["state"]
            value = state.get(name, spec["params"].get(name, default))
            return value if isinstance(value, str | int | float) else default
    raise NnsimError("this checkpoint has no nn.BatchController, so it names no test set")


def network(body: dict, tensors: dict[str, np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """The trained network as a function: scaled pixels [N, inputs] -> probabilities [N, classes]."""
    parameters = trained_parameters(body, tensors)
    steps: list[tuple[Callable[..., np.ndarray], tuple[np.ndarray, ...]]] = []
    for name, kind in layer_chain(body)[1:]:
        layer = lookup(kind)
        if layer.call is Layer.call:
            raise NnsimError(
                f"cannot test layer '{name}': its type {kind} defines no forward math (Layer.call)"
            )
        arrays = tuple(parameters[f"{name}.{array}"] for array in layer.trained)
        steps.append((layer.call, arrays))

    def forward(inputs: np.ndarray) -> np.ndarray:
        for call, arrays in steps:
            inputs = call(inputs, *arrays)
        return inputs

    return forward


def evaluate(
    forward: Callable[[np.ndarray], np.ndarray], images: np.ndarray, labels: np.ndarray
) -> tuple[float, np.ndarray]:
    """(mean cross-entropy, confusion matrix) of ``forward`` over a labelled set, in batches."""
    classes = len(CLASS_NAMES)
    confusion = np.zeros((classes, classes), dtype=np.int64)
    loss_sum = 0.0
    for start in range(0, len(images), BATCH):
        probabilities = forward(images[start : start + BATCH])
        targets = labels[start : start + BATCH]
        loss_sum += float(F.cross_entropy(probabilities, targets).sum())
        np.add.at(confusion, (targets, probabilities.argmax(axis=1)), 1)
    return loss_sum / max(len(images), 1), confusion


def evaluate_checkpoint(location: str, *, dataset: DatasetConfig | None = None) -> EvaluationReport:
    """Test the checkpoint at ``location`` (a checkpoint, a link to one, or a folder of them)."""
    from nnsim.checkpoint import open_checkpoint

    storage, name = open_checkpoint(location)
    body, tensors = storage.load(name)
    resolved = Path(storage.location(name))
    resolved_name = os.readlink(resolved) if resolved.is_symlink() else name
    own_test_set = dataset is None
    run = run_folder_of(storage)
    if dataset is None and run is not None:
        dataset = open_run_folder(run)[1].dataset  # its paths hold after the run folder moved
    if dataset is None:
        folder = _controller_setting(body, "test_images", "")
        limit = int(_controller_setting(body, "class_image_limit", 0))
    else:
        folder, limit = dataset.test, dataset.class_image_limit
    dtype = np.dtype(_controller_setting(body, "dtype", "float32"))
    test = load_split("test", folder or None, limit or None)
    images = scale_pixels(test.images, dtype).reshape(len(test.labels), -1)
    loss, confusion = evaluate(network(body, tensors), images, test.labels.astype(np.int64))
    accuracy = float(np.trace(confusion) / max(confusion.sum(), 1))
    return EvaluationReport(
        checkpoint=storage.location(name),
        name=resolved_name,
        loss=loss,
        accuracy=accuracy,
        confusion=confusion,
        test_images=folder or "fashion-mnist",
        metrics=dict(body.get("metrics") or {}),
        validation_split=float(_controller_setting(body, "validation_split", 0.0)),
        validation_images=int(_controller_setting(body, "validation_images", 0)),
        own_test_set=own_test_set,
    )


def report_lines(report: EvaluationReport) -> list[str]:
    """The report as plain text: the totals and a per-class table."""
    lines = [
        f"checkpoint: {report.checkpoint}"
        + ("" if report.checkpoint.endswith(report.name) else f" -> {report.name}"),
        f"test set: {report.test_images} ({report.count} images)",
        f"test loss: {report.loss:.4f}  accuracy: {report.accuracy:.4f}",
        report.validation(),
        "",
    ]
    width = max(len(name) for name in report.classes)
    lines.append(f"{'class':<{width}}  {'images':>6}  {'correct':>7}  {'accuracy':>8}")
    for name, images, correct, accuracy in report.per_class():
        shown = "-" if math.isnan(accuracy) else f"{accuracy:.3f}"
        lines.append(f"{name:<{width}}  {images:>6}  {correct:>7}  {shown:>8}")
    return lines


def rich_report(report: EvaluationReport):
    """The per-class table as a rich ``Table`` (for a terminal)."""
    from rich.table import Table

    table = Table(title="per-class accuracy")
    table.add_column("class")
    table.add_column("images", justify="right")
    table.add_column("correct", justify="right")
    table.add_column("accuracy", justify="right")
    for name, images, correct, accuracy in report.per_class():
        shown = "-" if math.isnan(accuracy) else f"{accuracy:.3f}"
        table.add_row(name, str(images), str(correct), shown)
    return table
