"""Weights in and out of nnsim: nnsim checkpoints, safetensors, npz, ONNX, Keras.

Import: `load_model` reads a dense network from wherever it was trained and
returns a `DenseModel` (a validated chain of `DenseLayer` s: weights
``[in, out]``, biases, an activation), what the dataflow graph is built
from and what its results are compared with::

    from nnsim.interop import load_model

    model = load_model("runs/mlp-128_fashion-mnist_2026-12-01_120000")  # a run folder
    model = load_model("classifier.keras")          # or .weights.h5, .h5, .onnx, .npz, .safetensors
    model.sizes                                     # (784, 128, 10)
    model.predict(images)                           # classes, with numpy math

One importer per format (`nnsim.interop.from_*`), each registered by name
with `register_importer`, which a user calls to add a format of their own.

Export (`nnsim.interop.export`) works on ``(body, tensors)`` as
``nnsim.state.capture`` returns them or a checkpoint holds them, so import
and export of a format are one package's business.
"""

from nnsim.interop.export import (
    EXPORTERS,
    export_npz,
    export_onnx,
    export_safetensors,
    layer_chain,
    onnx_model,
    trained_parameters,
)
from nnsim.interop.load import ImporterInfo, importers, load_model, register_importer
from nnsim.interop.model import DenseLayer, DenseModel, ModelError

__all__ = [
    "EXPORTERS",
    "DenseLayer",
    "DenseModel",
    "ImporterInfo",
    "ModelError",
    "export_npz",
    "export_onnx",
    "export_safetensors",
    "importers",
    "layer_chain",
    "load_model",
    "onnx_model",
    "register_importer",
    "trained_parameters",
]
