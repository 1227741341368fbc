"""The neural-network element library: layers, loss, optimizers, controller, builder.

Its component types are registered through the ``nnsim.components`` entry-point
group like any third-party library; the kernel never imports this package.
"""

from nnsim.nn.builder import (
    SGD,
    Adam,
    BatchController,
    CategoricalCrossEntropy,
    Dense,
    Input,
    ReLU,
    Sequential,
    Softmax,
    Spec,
)
from nnsim.nn.dtypes import DTYPES

__all__ = [
    "DTYPES",
    "SGD",
    "Adam",
    "BatchController",
    "CategoricalCrossEntropy",
    "Dense",
    "Input",
    "ReLU",
    "Sequential",
    "Softmax",
    "Spec",
]
