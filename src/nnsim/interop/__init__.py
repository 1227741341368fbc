"""Weights in and out of nnsim: ``state_dict``-like tables, safetensors, npz, ONNX.

Export lives here (`nnsim.interop.export`); importers of other frameworks'
files (Keras, ONNX) will live beside it, so that import and export of a
format are one module's business. Everything works on ``(body, tensors)``
as ``nnsim.state.capture`` returns them or a checkpoint holds them.
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

__all__ = [
    "EXPORTERS",
    "export_npz",
    "export_onnx",
    "export_safetensors",
    "layer_chain",
    "onnx_model",
    "trained_parameters",
]
