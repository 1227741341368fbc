"""Trained weights out of a snapshot: a ``state_dict``-like table, safetensors, npz, ONNX.

Everything works on ``(body, tensors)`` as ``nnsim.state.capture`` returns them
or a checkpoint holds them, without rebuilding the simulation. The layers are
found by following the ``forward_out -> forward_in`` links from the
``nn.Input`` component, so hand-wired chains export as well as built ones.
An exported network expects pixels scaled as (x - 127.5) / 127.5.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from nnsim import __version__
from nnsim.errors import NnsimError
from nnsim.files import atomic_write, atomic_write_with
from nnsim.interop.model import DenseModel
from nnsim.nn.layers import Layer
from nnsim.sim import registered_types

ONNX_OPSET = 17
ONNX_IR_VERSION = 8  # what opset 17 came with; readable by onnxruntime >= 1.13


def layer_chain(body: dict) -> list[tuple[str, str]]:
    """``[(name, type), ...]`` of the layers from the ``nn.Input`` on, in forward order.

    The chain ends at the first component that is not a layer (the loss) or
    whose ``forward_out`` is not connected.
    """
    components = {spec["name"]: spec["type"] for spec in body["model"]["components"]}
    inputs = [name for name, kind in components.items() if kind == "nn.Input"]
    if len(inputs) != 1:
        found = "none" if not inputs else ", ".join(inputs)
        raise NnsimError(
            f"exporting a network needs exactly one nn.Input component in the model (found {found})"
        )
    following = {}
    for link in body["model"]["links"]:
        ends = [tuple(link["left"][:2]), tuple(link["right"][:2])]
        for (source, port), (target, target_port) in (ends, ends[::-1]):
            if port == "forward_out" and target_port == "forward_in":
                following[source] = target
    types = registered_types()
    chain: list[tuple[str, str]] = []
    name: str | None = inputs[0]
    while name is not None and name not in dict(chain):
        kind = components[name]
        if kind not in types:
            raise NnsimError(
                f"component '{name}' is of type {kind}, which is not installed here; "
                "install the element library that defines it"
            )
        if not issubclass(types[kind], Layer):
            break
        chain.append((name, kind))
        name = following.get(name)
    return chain


def trained_parameters(body: dict, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``{"dense1.weights": [in, out], "dense1.biases": [out], ...}`` in forward order.

    Each layer type names its trained arrays (`Layer.trained`) and their
    exchange shapes (`Layer.exported`).
    """
    types = registered_types()
    parameters: dict[str, np.ndarray] = {}
    for name, kind in layer_chain(body):
        layer = types[kind]
        if not layer.trained:
            continue
        state = body["components"][name]["state"]
        arrays = {array: _tensor(state, array, name, tensors) for array in layer.trained}
        for array, value in layer.exported(name, arrays).items():
            parameters[f"{name}.{array}"] = np.ascontiguousarray(value)
    return parameters


def _tensor(state: dict, attribute: str, layer: str, tensors: dict[str, np.ndarray]) -> np.ndarray:
    ref = state.get(attribute)
    if not (isinstance(ref, dict) and "__tensor__" in ref):
        raise NnsimError(f"{layer}/{attribute} is not an array in this snapshot")
    try:
        return np.asarray(tensors[ref["__tensor__"]])
    except KeyError:
        raise NnsimError(
            f"{layer}/{attribute}: tensor '{ref['__tensor__']}' is missing from the snapshot"
        ) from None


def chain_text(body: dict) -> str:
    """``input:nn.Input -> dense1:nn.Dense -> ...``: the chain as one line (file metadata)."""
    return " -> ".join(f"{name}:{kind}" for name, kind in layer_chain(body))


# Files --------------------------------------------------------------------------
def export_safetensors(body: dict, tensors: dict[str, np.ndarray], path: str | Path) -> Path:
    """The trained weights as safetensors, with the layer chain in the metadata."""
    from safetensors.numpy import save_file

    parameters = trained_parameters(body, tensors)
    metadata = {"format": "nnsim", "layers": chain_text(body), "nnsim_version": __version__}
    return atomic_write_with(path, lambda target: save_file(parameters, target, metadata=metadata))


def export_npz(body: dict, tensors: dict[str, np.ndarray], path: str | Path) -> Path:
    """The trained weights as a numpy ``.npz`` (plain arrays: loads with allow_pickle=False)."""
    parameters = trained_parameters(body, tensors)

    with atomic_write(path, "wb") as file:  # a file object: np.savez adds no ".npz" suffix
        np.savez(file, **parameters)
    return Path(path)


def onnx_model(body: dict, tensors: dict[str, np.ndarray]):
    """The inference network as an ``onnx.ModelProto``: ``images`` [N, size] -> ``probabilities``."""
    chain = layer_chain(body)
    parameters = trained_parameters(body, tensors)
    specs = {spec["name"]: spec for spec in body["model"]["components"]}
    size = int(specs[chain[0][0]]["params"].get("size", 784))
    types = registered_types()
    stages, width = [], size
    for name, kind in chain[1:]:
        layer = types[kind]
        arrays = {array: parameters[f"{name}.{array}"] for array in layer.trained}
        width = layer.output_size(specs[name]["params"], width)
        stages.append((name, kind, layer, arrays, width))
    return _onnx_from_stages(stages, size, "probabilities", f"layers: {chain_text(body)}")


def dense_model_onnx(model: DenseModel):
    """A `DenseModel` (whatever it was imported from) as an ``onnx.ModelProto``:
    ``images`` [N, in] -> ``outputs`` [N, out] (after the last activation).

    The same node builder as `onnx_model`, fed with nnsim's own layer types
    (`nnsim.nn.layers.Dense`, `ReLU`, `Softmax` and their `Layer.onnx_nodes`),
    so a dataflow run can be compared with onnxruntime on exactly the weights
    it ran, with no second description of a layer in ONNX.
    """
    from nnsim.nn.layers import Dense, ReLU, Softmax

    activations = {"relu": ("relu", ReLU), "softmax": ("softmax", Softmax)}
    stages = []
    for layer in model.layers:
        arrays = {"weights": layer.weights, "biases": layer.biases}
        stages.append((layer.name, "nn.Dense", Dense, arrays, layer.output_size))
        if layer.activation in activations:
            suffix, kind = activations[layer.activation]
            stages.append((f"{layer.name}_{suffix}", kind.type_name, kind, {}, layer.output_size))
    sizes = "-".join(map(str, model.sizes))
    return _onnx_from_stages(stages, model.input_size, "outputs", f"dense model {sizes}")


def _onnx_from_stages(stages: list, size: int, output_name: str, described: str):
    """The ONNX model of ``stages`` ``[(name, type name, layer class, arrays, width), ...]``."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise NnsimError("ONNX export needs the onnx package: pip install 'nnsim[onnx]'") from None

    arrays = [array for stage in stages for array in stage[3].values()]
    dtype = arrays[0].dtype if arrays else np.dtype(np.float32)
    element_type = {np.float32: TensorProto.FLOAT, np.float64: TensorProto.DOUBLE}[dtype.type]
    nodes, initializers = [], []
    current = "images"
    width: int = stages[-1][4] if stages else size
    for name, kind, layer, trained, _width in stages:
        output = f"{name}_out"
        steps = layer.onnx_nodes()
        if steps is None:
            raise NnsimError(
                f"cannot export layer '{name}' to ONNX: its type {kind} has no ONNX form "
                "(Layer.onnx_nodes)"
            )
        initializers += [
            numpy_helper.from_array(values.astype(dtype), f"{name}.{array}")
            for array, values in trained.items()
        ]
        for index, (op, inputs, outputs, attributes) in enumerate(steps):
            fill = {"x": current, "y": output, "name": name}
            nodes.append(
                helper.make_node(
                    op,
                    [text.format(**fill) for text in inputs],
                    [text.format(**fill) for text in outputs],
                    name=name if index == len(steps) - 1 else f"{name}_{op.lower()}",
                    **attributes,
                )
            )
        current = output
    if nodes:
        nodes[-1].output[0] = output_name
    else:
        nodes.append(helper.make_node("Identity", ["images"], [output_name], name="identity"))

    graph = helper.make_graph(
        nodes,
        "nnsim",
        [helper.make_tensor_value_info("images", element_type, ["N", size])],
        [helper.make_tensor_value_info(output_name, element_type, ["N", width])],
        initializer=initializers,
        doc_string=f"inputs are pixels scaled to [-1, 1] as (x - 127.5) / 127.5; {described}",
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
        producer_name="nnsim",
        producer_version=__version__,
    )
    model.ir_version = ONNX_IR_VERSION
    onnx.checker.check_model(model)
    return model


def export_onnx(body: dict, tensors: dict[str, np.ndarray], path: str | Path) -> Path:
    """The inference network as an ONNX model (opset 17), checked with ``onnx.checker``."""
    model = onnx_model(body, tensors)
    with atomic_write(path, "wb") as file:
        file.write(model.SerializeToString())
    return Path(path)


EXPORTERS: dict[str, Callable[[dict, dict, str | Path], Path]] = {
    "safetensors": export_safetensors,
    "npz": export_npz,
    "onnx": export_onnx,
}
