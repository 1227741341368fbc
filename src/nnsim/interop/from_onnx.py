"""ONNX dense networks: Gemm or MatMul+Add layers, Relu, Softmax, Flatten and Identity.

The graph is followed from its one input to its output, node by node, the
way the values flow; nodes off that path are ignored. On the path:

* ``Gemm(x, B, C)`` is a layer with weights ``alpha * B`` (``B.T`` when
  ``transB=1``) and biases ``beta * C`` (zeros without ``C``); ``transA=1``
  would transpose the batch itself, which no per-sample layer does, and is
  refused;
* ``MatMul(x, W)`` is a layer's weights, and an ``Add`` of a constant
  right after it (either operand order) its biases (zeros without one);
* ``Relu`` and ``Softmax`` (over the last axis) are the activation of the
  layer before them; ``Flatten`` (``axis=1``) and ``Identity`` change nothing
  for a batch of rows, and neither does an inference ``Dropout``.

Weights must be initializers (or ``Constant`` nodes); anything else on the
path is one line naming the node and its op. The file is read with
``load_external_data=False`` and a model whose tensors live in external
files is refused: nnsim reads one file, never paths a stranger wrote into it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnsim.checkpoint import read_regular
from nnsim.interop.model import MAX_WEIGHTS_PER_LAYER, DenseLayer, DenseModel, ModelError

MAX_FILE_BYTES = 1 << 31  # protobuf's own limit for one message
SUPPORTED = "Gemm, MatMul+Add, Relu, Softmax, Flatten, Identity"


def load_onnx(path: Path) -> DenseModel:
    """The dense network of an ``.onnx`` file."""
    import onnx

    source = str(path)
    data = read_regular(path, f"ONNX file '{source}'", MAX_FILE_BYTES, follow_links=True)
    try:
        model = onnx.load_model_from_string(data)
    except Exception as error:
        raise ModelError(f"'{source}' is not an ONNX model ({_first_line(error)})") from error
    _refuse_external_data(model.graph, source)
    try:
        onnx.checker.check_model(model)
    except Exception as error:
        raise ModelError(f"'{source}' is not a valid ONNX model ({_first_line(error)})") from error
    return _Walk(model.graph, source).model()


def _refuse_external_data(graph, source: str) -> None:
    from onnx import TensorProto

    for tensor in graph.initializer:
        if tensor.data_location == TensorProto.EXTERNAL:
            raise ModelError(
                f"'{source}': initializer '{tensor.name}' is stored in an external file; "
                "nnsim reads self-contained ONNX files only (save with all tensors inside)"
            )


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:200]


class _Walk:
    """One pass along the graph from its input to its output, collecting dense layers."""

    def __init__(self, graph, source: str):
        self.source = source
        self.graph = graph
        self.constants = {tensor.name: tensor for tensor in graph.initializer}
        self.consumers: dict[str, list] = {}
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        inputs = [v.name for v in graph.input if v.name not in self.constants]
        outputs = [v.name for v in graph.output]
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(
                f"'{source}': the graph has {len(inputs)} inputs and {len(outputs)} outputs; "
                "nnsim imports networks with one input and one output"
            )
        self.input, self.output = inputs[0], outputs[0]
        self.layers: list[dict] = []

    def model(self) -> DenseModel:
        current, steps = self.input, 0
        while current != self.output:
            steps += 1
            if steps > len(self.graph.node):
                raise ModelError(f"'{self.source}': the graph loops")
            node = self._next(current)
            current = self._take(node, current)
        dense = tuple(
            DenseLayer(layer["name"], layer["weights"], layer["biases"], layer["activation"])
            for layer in self.layers
        )
        model = DenseModel(dense, self.source)
        declared = self._declared_width()
        if declared is not None and declared != model.input_size:
            raise ModelError(
                f"'{self.source}': the input '{self.input}' has {declared} values per sample "
                f"but the first layer takes {model.input_size}"
            )
        return model

    def _next(self, value: str):
        nodes = self.consumers.get(value, [])
        if len(nodes) != 1:
            what = "no node reads it" if not nodes else f"{len(nodes)} nodes read it"
            raise ModelError(
                f"'{self.source}': value '{value}' does not lead to the output '{self.output}' "
                f"along one path ({what}); nnsim imports chains of layers only"
            )
        return nodes[0]

    def _take(self, node, current: str) -> str:
        """Apply ``node`` (which reads ``current``) and return the value it gives."""
        op, label = node.op_type, node.name or node.output[0]
        if node.domain not in ("", "ai.onnx"):
            self._refuse(node)
        attributes = _attributes(node)
        if op in ("Identity", "Flatten", "Dropout"):
            if op == "Flatten" and attributes.get("axis", 1) != 1:
                raise ModelError(
                    f"'{self.source}': ONNX node '{label}' flattens from axis "
                    f"{attributes['axis']}; nnsim keeps the batch axis (axis=1)"
                )
            return node.output[0]
        if op in ("Relu", "Softmax"):
            activation = op.lower()
            if op == "Softmax" and attributes.get("axis", -1) not in (-1, 1):
                raise ModelError(
                    f"'{self.source}': ONNX node '{label}' takes a softmax over axis "
                    f"{attributes['axis']}; nnsim's is over each sample's values"
                )
            if not self.layers or self.layers[-1]["activation"] != "linear":
                raise ModelError(
                    f"'{self.source}': ONNX node '{label}' ({op}) does not follow a dense layer; "
                    "nnsim imports dense layers each followed by at most one activation"
                )
            self.layers[-1]["activation"] = activation
            return node.output[0]
        if op == "Gemm":
            return self._gemm(node, current, attributes, label)
        if op == "MatMul":
            return self._matmul(node, current, label)
        self._refuse(node)
        raise AssertionError("unreachable")

    def _refuse(self, node) -> None:
        label = node.name or node.output[0]
        domain = f" (domain {node.domain})" if node.domain not in ("", "ai.onnx") else ""
        raise ModelError(
            f"'{self.source}': ONNX node '{label}' is a {node.op_type}{domain}; "
            f"nnsim imports dense networks only ({SUPPORTED})"
        )

    def _gemm(self, node, current: str, attributes: dict, label: str) -> str:
        if list(node.input[:1]) != [current]:
            raise ModelError(
                f"'{self.source}': ONNX node '{label}' (Gemm) multiplies a constant by the "
                "samples; nnsim's layers take the samples as the first input"
            )
        if attributes.get("transA", 0):
            raise ModelError(
                f"'{self.source}': ONNX node '{label}' (Gemm) has transA=1, which transposes "
                "the batch; nnsim imports per-sample layers (transA=0)"
            )
        weights = self._constant(node.input[1], label, matrix=True)
        if attributes.get("transB", 0):
            weights = weights.T
        weights = np.float32(attributes.get("alpha", 1.0)) * weights.astype(np.float32)
        if len(node.input) > 2 and node.input[2]:
            biases = self._bias(node.input[2], weights.shape[1], label)
            biases = np.float32(attributes.get("beta", 1.0)) * biases
        else:
            biases = np.zeros(weights.shape[1], dtype=np.float32)
        self._add_layer(label, weights, biases)
        return node.output[0]

    def _matmul(self, node, current: str, label: str) -> str:
        if node.input[0] != current:
            raise ModelError(
                f"'{self.source}': ONNX node '{label}' (MatMul) multiplies a constant by the "
                "samples; nnsim's layers compute samples @ weights"
            )
        weights = self._constant(node.input[1], label, matrix=True)
        output = node.output[0]
        nodes = self.consumers.get(output, [])
        biases = None
        if output != self.output and len(nodes) == 1 and nodes[0].op_type == "Add":
            add = nodes[0]
            other = [name for name in add.input if name != output]
            if len(other) == 1 and self._is_constant(other[0]):
                label = add.name or add.output[0]  # nnsim's export names the Add after the layer
                biases = self._bias(other[0], weights.shape[1], label)
                output = add.output[0]
        if biases is None:
            biases = np.zeros(weights.shape[1], dtype=np.float32)
        self._add_layer(label, weights, biases)
        return output

    def _add_layer(self, label: str, weights: np.ndarray, biases: np.ndarray) -> None:
        self.layers.append(
            {"name": label, "weights": weights, "biases": biases, "activation": "linear"}
        )

    def _is_constant(self, name: str) -> bool:
        return name in self.constants or any(
            n.op_type == "Constant" and name in n.output for n in self.graph.node
        )

    def _constant(self, name: str, label: str, matrix: bool = False) -> np.ndarray:
        """The array of initializer (or Constant node) ``name``, its size checked first."""
        from onnx import numpy_helper

        tensor = self.constants.get(name)
        if tensor is None:
            for node in self.graph.node:
                if node.op_type == "Constant" and name in node.output:
                    values = [a.t for a in node.attribute if a.name == "value"]
                    tensor = values[0] if values else None
        if tensor is None:
            raise ModelError(
                f"'{self.source}': ONNX node '{label}' takes '{name}', which is not a constant "
                "(an initializer); nnsim imports trained weights, not computed ones"
            )
        dims = tuple(int(d) for d in tensor.dims)
        count = int(np.prod(dims, dtype=np.float64))
        if len(dims) > 2 or count > MAX_WEIGHTS_PER_LAYER:
            raise ModelError(
                f"'{self.source}': tensor '{name}' of node '{label}' has shape {dims}; "
                f"a dense layer's have at most 2 dimensions and {MAX_WEIGHTS_PER_LAYER} values"
            )
        array = numpy_helper.to_array(tensor)
        if array.dtype.kind != "f":
            raise ModelError(
                f"'{self.source}': tensor '{name}' of node '{label}' is {array.dtype}, "
                "not floating point"
            )
        if matrix and array.ndim != 2:
            raise ModelError(
                f"'{self.source}': the weights '{name}' of node '{label}' have shape "
                f"{array.shape}, not [in, out]"
            )
        return array

    def _bias(self, name: str, width: int, label: str) -> np.ndarray:
        """A bias of ``[out]``, ``[1, out]`` or one value broadcast, as float32 ``[out]``."""
        array = self._constant(name, label).astype(np.float32)
        if array.size == 1:
            return np.full(width, array.reshape(-1)[0], dtype=np.float32)
        if array.shape not in ((width,), (1, width)):
            raise ModelError(
                f"'{self.source}': the biases '{name}' of node '{label}' have shape "
                f"{array.shape}; a layer of {width} outputs needs [{width}]"
            )
        return array.reshape(-1)

    def _declared_width(self) -> int | None:
        """Values per sample of the graph input when all its dimensions after the batch are known."""
        (value,) = [v for v in self.graph.input if v.name == self.input]
        dims = value.type.tensor_type.shape.dim
        if len(dims) < 2 or not all(d.HasField("dim_value") for d in dims[1:]):
            return None
        return int(np.prod([d.dim_value for d in dims[1:]]))


def _attributes(node) -> dict:
    from onnx import helper

    return {attribute.name: helper.get_attribute_value(attribute) for attribute in node.attribute}
