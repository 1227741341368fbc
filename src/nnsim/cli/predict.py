"""``nnsim predict``: classify a folder of images with the trained weights of a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import click

from nnsim.errors import NnsimError


def predict_checkpoint(
    location: str,
    images: str | Path,
    *,
    invert: bool = False,
    output: TextIO | None = None,
) -> list[tuple[str, str]]:
    """Predict every PNG in ``images`` with the checkpoint's trained network.

    Rebuilds the saved model graph, puts the trained dense weights in, and
    runs the controller straight to evaluation (``epochs=0``): no training or
    test data is read. Prints the example's ``Prediction for ...`` lines and
    returns ``[(image path, class name), ...]``.
    """
    from nnsim.checkpoint import open_checkpoint
    from nnsim.nn.export import trained_parameters
    from nnsim.state.snapshot import build_model

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
    return list(zip(controller.eval_paths, controller.predicted, strict=True))


@click.command(
    "predict",
    epilog="Example: nnsim predict --checkpoint checkpoints --images examples/fashion_mnist/eval",
)
@click.option(
    "--checkpoint",
    "location",
    required=True,
    metavar="PATH|URL",
    help="A checkpoint, or a folder of checkpoints (its latest is used).",
)
@click.option(
    "--images", required=True, metavar="DIR", help="Flat folder of 28x28 PNGs to classify."
)
@click.option("--invert", is_flag=True, help="Invert the images (photos of dark objects on light).")
def predict(location: str, images: str, invert: bool) -> None:
    """Classify a folder of images with a checkpoint's weights.

    The checkpoint's model is rebuilt with its trained weights and runs
    straight to evaluation; it prints one "Prediction for IMAGE ...  Survey
    says ### CLASS" line per image, as the training run does.
    """
    predict_checkpoint(location, images, invert=invert)
