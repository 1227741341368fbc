"""``nnsim predict``: classify a folder of images with the trained weights of a checkpoint."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import click
import numpy as np

from nnsim.data import CLASS_NAMES, class_from_file_name
from nnsim.errors import NnsimError


@dataclass
class Prediction:
    """One image: the simulated network's class, its probabilities, the class its name names."""

    path: str
    predicted: str
    probabilities: np.ndarray  # one per class of CLASS_NAMES
    true: str | None  # from the file name (``ankle_boot.png``), None if it names no class

    @property
    def probability(self) -> float:
        return float(self.probabilities[CLASS_NAMES.index(self.predicted)])

    def top(self, k: int) -> list[tuple[str, float]]:
        """The ``k`` most likely classes, most likely first (ties: the lower label first)."""
        order = np.argsort(-self.probabilities, kind="stable")[:k]
        return [(CLASS_NAMES[i], float(self.probabilities[i])) for i in order]


def predict_checkpoint(
    location: str,
    images: str | Path,
    *,
    invert: bool = False,
    output: TextIO | None = None,
) -> list[Prediction]:
    """Predict every PNG in ``images`` with the checkpoint's trained network.

    Rebuilds the saved model graph, puts the trained dense weights in, and
    runs the controller straight to evaluation (``epochs=0``): no training or
    test data is read. Prints the example's ``Prediction for ...`` lines. The
    class is the simulation's; the probabilities come from the same trained
    chain's forward math (``nnsim.train.evaluate.network``) on the same
    images, since the simulation's outcome events carry only the winner.
    """
    from nnsim.checkpoint import open_checkpoint
    from nnsim.interop.export import trained_parameters
    from nnsim.state.snapshot import build_model
    from nnsim.train.evaluate import network

    storage, name = open_checkpoint(location)
    body, tensors = storage.load(name)
    parameters = trained_parameters(body, tensors)
    sim = build_model(body, output=output)
    for key, values in parameters.items():
        layer, _, attribute = key.partition(".")
        component = sim.components[layer]
        current = getattr(component, attribute)
        setattr(component, attribute, values.reshape(current.shape).astype(current.dtype))
    controllers = [c for c in sim.components.values() if c.kind() == "nn.BatchController"]
    if len(controllers) != 1:
        raise NnsimError(
            f"checkpoint {name} has {len(controllers)} nn.BatchController components; "
            "prediction needs exactly one"
        )
    controller = controllers[0]
    controller.epochs = 0
    controller.eval_images = str(images)
    controller.invert_eval_images = invert
    controller.pause_before_evaluation = False
    controller.reload_eval_images = False
    sim.run()
    pixels = controller.eval_x.reshape(len(controller.eval_paths), -1)
    probabilities = network(body, tensors)(pixels)
    return [
        Prediction(path, predicted, row, class_from_file_name(path))
        for path, predicted, row in zip(
            controller.eval_paths, controller.predicted, probabilities, strict=True
        )
    ]


def summary_lines(predictions: list[Prediction]) -> list[str]:
    """How many images whose names name a class were predicted right (nothing if none do)."""
    named = [p for p in predictions if p.true is not None]
    if not named:
        return []
    right = sum(p.predicted == p.true for p in named)
    line = f"accuracy: {right}/{len(named)} = {right / len(named):.3f} (classes from file names"
    others = len(predictions) - len(named)
    line += f"; {others} image{'s' if others != 1 else ''} without one)" if others else ")"
    wrong = [
        f"{Path(p.path).name} ({p.true}) as {p.predicted}" for p in named if p.predicted != p.true
    ]
    return [line] + ([f"wrong: {', '.join(wrong)}"] if wrong else [])


CSV_COLUMNS = ("path", "predicted", "probability", "true", "correct")


def predictions_csv(predictions: list[Prediction]) -> str:
    """path, predicted, probability, true, correct, then one probability column per class."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *(f"p_{name}" for name in CLASS_NAMES)])
    for p in predictions:
        correct = "" if p.true is None else ("yes" if p.predicted == p.true else "no")
        writer.writerow(
            [
                p.path,
                p.predicted,
                f"{p.probability:.6f}",
                p.true or "",
                correct,
                *(f"{value:.6f}" for value in p.probabilities),
            ]
        )
    return out.getvalue()


@click.command(
    "predict",
    epilog=(
        "Example: nnsim predict --checkpoint checkpoints --images examples/fashion_mnist/eval2 "
        "--top 3 --csv predictions.csv"
    ),
)
@click.option(
    "--checkpoint",
    "location",
    required=True,
    metavar="PATH|URL",
    help="A checkpoint, or a folder of checkpoints (its latest is used).",
)
@click.option(
    "--images",
    required=True,
    metavar="DIR",
    help="Flat folder of PNG images of any size (each is made 28x28 grayscale).",
)
@click.option("--invert", is_flag=True, help="Invert the images (photos of dark objects on light).")
@click.option(
    "--top",
    type=click.IntRange(1, len(CLASS_NAMES)),
    metavar="K",
    help="Also show the K most likely classes of each image with their probabilities.",
)
@click.option(
    "--csv",
    "csv_file",
    metavar="FILE",
    help="Write path, predicted, probability, true, correct and each class's probability.",
)
def predict(location: str, images: str, invert: bool, top: int | None, csv_file: str) -> None:
    """Classify a folder of images with a checkpoint's weights.

    The checkpoint's model is rebuilt with its trained weights and runs
    straight to evaluation; it prints one "Prediction for IMAGE ...  Survey
    says ### CLASS" line per image, as the training run does. When file
    names name classes (ankle_boot.png, sneaker-2.png, tshirt.png), an
    accuracy line follows.
    """
    if csv_file and not Path(csv_file).resolve().parent.is_dir():
        raise NnsimError(f"the folder of --csv '{csv_file}' does not exist")
    predictions = predict_checkpoint(location, images, invert=invert)
    if top:
        width = max(len(p.path) for p in predictions)
        for p in predictions:
            ranked = "  ".join(f"{name} {value:.3f}" for name, value in p.top(top))
            click.echo(f"{p.path:<{width}}  {ranked}")
    for line in summary_lines(predictions):
        click.echo(line)
    if csv_file:
        from nnsim.files import write_text

        write_text(csv_file, predictions_csv(predictions))
        click.echo(f"wrote {csv_file}")
