"""The run folder's pictures, drawn with matplotlib's Agg backend (no display needed).

Figures are made with ``matplotlib.figure.Figure`` directly, not pyplot, so
nothing global changes in the caller's matplotlib, and each file is written
with `nnsim.files.atomic_write_with` (a temporary name and a rename).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nnsim.files import atomic_write_with


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_with(path, lambda temporary: figure.savefig(temporary, format="png"))
    return path


def plot_training(rows: Sequence[dict], path: str | os.PathLike, title: str = "") -> Path:
    """Loss and accuracy per epoch, training vs validation, side by side."""
    epochs = [row["epoch"] for row in rows]
    figure = _figure(11, 4.2)
    loss_axes, acc_axes = figure.subplots(1, 2)
    marker = "o" if len(rows) <= 30 else None
    for axes, metric, label in ((loss_axes, "loss", "loss"), (acc_axes, "acc", "accuracy")):
        axes.plot(epochs, [r[f"train_{metric}"] for r in rows], marker=marker, label="training")
        axes.plot(epochs, [r[f"val_{metric}"] for r in rows], marker=marker, label="validation")
        axes.set_title(label.capitalize())
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        axes.grid(True, alpha=0.3)
        axes.legend()
        if epochs:
            axes.xaxis.get_major_locator().set_params(integer=True)
    acc_axes.set_ylim(top=min(1.0, acc_axes.get_ylim()[1]) + 0.02)
    figure.suptitle(title or "Training")
    return _save(figure, Path(path))


def plot_confusion(
    matrix: np.ndarray, classes: Sequence[str], path: str | os.PathLike, title: str = ""
) -> Path:
    """A confusion-matrix heatmap (rows: true class, columns: predicted), counts written in."""
    matrix = np.asarray(matrix)
    figure = _figure(9, 8)
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap="Blues", vmin=0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="images")
    ticks = np.arange(len(classes))
    axes.set_xticks(ticks, labels=classes, rotation=45, ha="right", rotation_mode="anchor")
    axes.set_yticks(ticks, labels=classes)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    threshold = matrix.max() / 2 if matrix.size and matrix.max() else 1
    for row in range(matrix.shape[0]):
        for column in range(matrix.shape[1]):
            count = int(matrix[row, column])
            axes.text(
                column,
                row,
                str(count),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if count > threshold else ("black" if count else "0.6"),
            )
    figure.suptitle(title or "Confusion matrix")
    return _save(figure, Path(path))
