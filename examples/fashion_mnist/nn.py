"""Fashion-MNIST classifier, as in SST's neural-network example, as an nnsim model script.

Run it with:

    nnsim run examples/fashion_mnist/nn.py -- --epochs 10

The chain is controller -> input -> (dense -> relu) x hiddenLayers -> dense
-> softmax -> loss; the controller trains, validates after every epoch (on
the test set, or with --validation-split on held-out training images), then
predicts the images of --evalImages.
"""

import argparse
import os
from pathlib import Path

import nnsim
from nnsim import nn
from nnsim.script import ArgumentParser, finite_float, int_between

HERE = Path(__file__).resolve().parent


def validation_split(text: str) -> float:
    """``test`` (0: validate on the test set, as SST's example does) or a fraction of training."""
    if text == "test":
        return 0.0
    try:
        fraction = float(text)
    except ValueError:
        fraction = -1.0
    if not 0 < fraction < 1:
        raise argparse.ArgumentTypeError(
            f"expected 'test' or a fraction between 0 and 1, not {text!r}"
        )
    return fraction


# nnsim's ArgumentParser: a bad argument is one line; finite_float refuses nan and inf.
parser = ArgumentParser(prog="nn.py", description=__doc__.splitlines()[0])
parser.add_argument(
    "--classImageLimit", type=int_between(0), default=2000, help="images per class (0: all)"
)
parser.add_argument("--batchSize", type=int_between(1), default=128)
parser.add_argument("--epochs", type=int_between(0), default=10)
parser.add_argument(
    "--hiddenLayers", type=int_between(0, 100), default=2, help="number of hidden dense+relu layers"
)
parser.add_argument("--hiddenLayerSize", type=int_between(1), default=128)
parser.add_argument("--initialWeightScaling", type=finite_float, default=0.01)
parser.add_argument("--learningRate", type=finite_float, default=0.001)
parser.add_argument(
    "--decay", type=finite_float, default=0.001, help="learning-rate decay per step"
)
parser.add_argument(
    "--trainingImages", default="", help="IDX folder or class folders (default: Fashion-MNIST)"
)
parser.add_argument(
    "--testImages", default="", help="IDX folder or class folders (default: Fashion-MNIST)"
)
parser.add_argument(
    "--validation-split",
    type=validation_split,
    default="test",
    metavar="test|FRACTION",
    help="validate on the test set (default, as SST's example) or on this fraction of the "
    "training images, held out (e.g. 0.1)",
)
parser.add_argument(
    "--evalImages", default=os.path.relpath(HERE / "eval"), help="folder of PNGs to predict"
)
parser.add_argument(
    "--invertEvalImages", action="store_true", help="for photos of dark objects on light"
)
parser.add_argument("--dtype", default="float32", choices=nn.DTYPES)
parser.add_argument("--verbose", action="store_true", help="print the model before training")
args = parser.parse_args()

sim = nnsim.simulation()
scale = args.initialWeightScaling
hidden = []
for _ in range(args.hiddenLayers):
    hidden += [nn.Dense(args.hiddenLayerSize, weight_scale=scale), nn.ReLU()]

model = nn.Sequential(
    [nn.Input(784), *hidden, nn.Dense(10, weight_scale=scale), nn.Softmax()],
    loss=nn.CategoricalCrossEntropy(),
    optimizer=nn.Adam(learning_rate=args.learningRate, decay=args.decay),
    controller=nn.BatchController(
        batch_size=args.batchSize,
        epochs=args.epochs,
        class_image_limit=args.classImageLimit,
        training_images=args.trainingImages,
        test_images=args.testImages,
        validation_split=args.validation_split,
        eval_images=args.evalImages,
        invert_eval_images=args.invertEvalImages,
    ),
)
components = model.build(sim, dtype=args.dtype)

if args.verbose:
    for name, component in components.items():
        weights = getattr(component, "weights", None)
        size = f"  {weights.shape[0]}x{weights.shape[1]} weights" if weights is not None else ""
        print(f"{name:<12} {component.kind()}{size}")
