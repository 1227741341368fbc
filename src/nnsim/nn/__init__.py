"""The neural-network element library: layers, loss, optimizers, controller, builder.

Its component types are registered through the ``nnsim.components`` entry-point
group like any third-party library; the kernel never imports this package.

Two kinds of thing carry a layer's name, and this is how they are told apart:

* ``nnsim.nn.Dense(128)`` (and ``Input``, ``ReLU``, ``Softmax``,
  ``CategoricalCrossEntropy``, ``Adam``, ``SGD``, ``BatchController``) is what a
  model script writes, as a Keras user writes ``Dense(128)`` in a
  ``Sequential`` list. It returns a `Spec`: the registered type name
  ``"nn.Dense"`` and parameters. ``Sequential.build`` turns specs into
  components, as the simulation creates every component.
* The component class registered as ``nn.Dense`` is ``nnsim.nn.layers.Dense``
  (losses in ``nnsim.nn.loss``, optimizers in ``nnsim.nn.optimizers``, the
  controller in ``nnsim.nn.controller``). ``sim.add("nn.Dense", ...)``,
  ``nnsim info nn.Dense``, ``isinstance`` checks and subclasses use it; the
  console and checkpoints show and store its registered name ``nn.Dense``.

So the name a model script calls is the name ``nnsim info`` documents and
``ls`` shows; only Python's ``isinstance`` needs the class's module. The
builder functions keep these names, rather than ``DenseSpec`` and the like,
because they are the public call the README and the examples use, and
``Sequential`` names the slip of passing the function uncalled or the class
in one line. `DTYPES` are the floating-point types a model may compute in.
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
