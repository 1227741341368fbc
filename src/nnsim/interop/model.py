"""A dense network as plain arrays: what every importer returns and the dataflow graph is built from.

Weights trained elsewhere (Keras, ONNX, safetensors, an nnsim run) all come
down to the same thing: a chain of dense layers, each ``inputs @ weights +
biases`` followed by an activation. Keeping that as one small, validated
value type means an importer only has to find the arrays, and everything
downstream (the neuron-level graph, the reference forward pass that the
dataflow simulation is compared with) trusts its shapes.

Conventions are nnsim's own: weights ``[in, out]`` (as ``nn.Dense`` and
Keras ``Dense.kernel``), biases ``[out]``, float32 math, inputs scaled as
(x - 127.5) / 127.5 for the Fashion-MNIST models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnsim.errors import NnsimError
from nnsim.nn import functional as F

HIDDEN_ACTIVATIONS = ("relu", "linear")
OUTPUT_ACTIVATIONS = ("linear", "softmax")
MAX_VALUES_PER_LAYER = 2**20  # the layer cap of nn.Dense (output_size)
MAX_WEIGHTS_PER_LAYER = 2**26  # the weight cap of nn.Dense


class ModelError(NnsimError):
    """Weights that do not make a dense network (shapes, values, activations, ops)."""


@dataclass(frozen=True)
class DenseLayer:
    """One fully connected layer: ``activation(inputs @ weights + biases)``."""

    name: str
    weights: np.ndarray  # [in, out], float32
    biases: np.ndarray  # [out], float32
    activation: str = "relu"

    @property
    def input_size(self) -> int:
        return int(self.weights.shape[0])

    @property
    def output_size(self) -> int:
        return int(self.weights.shape[1])


@dataclass(frozen=True)
class DenseModel:
    """A validated chain of dense layers; ``source`` says where it was read from (for messages)."""

    layers: tuple[DenseLayer, ...]
    source: str = ""

    def __post_init__(self) -> None:
        where = f" in {self.source}" if self.source else ""
        if not self.layers:
            raise ModelError(f"no dense layers found{where}")
        checked = []
        for index, layer in enumerate(self.layers):
            checked.append(_checked_layer(layer, index, len(self.layers), where))
            if index and checked[index - 1].output_size != layer.input_size:
                raise ModelError(
                    f"layer '{layer.name}'{where} takes {layer.input_size} inputs but "
                    f"'{checked[index - 1].name}' gives {checked[index - 1].output_size}"
                )
        object.__setattr__(self, "layers", tuple(checked))

    @property
    def input_size(self) -> int:
        return self.layers[0].input_size

    @property
    def output_size(self) -> int:
        return self.layers[-1].output_size

    @property
    def sizes(self) -> tuple[int, ...]:
        """``(784, 128, 10)``: the input size, then each layer's output size."""
        return (self.input_size, *(layer.output_size for layer in self.layers))

    def logits(self, inputs: np.ndarray) -> np.ndarray:
        """The last layer's pre-activation outputs ``[n, out]`` for ``inputs [n, in]`` (float32)."""
        values = self._check_inputs(inputs)
        for layer in self.layers[:-1]:
            values = _activate(F.dense_forward(values, layer.weights, layer.biases), layer)
        last = self.layers[-1]
        return F.dense_forward(values, last.weights, last.biases)

    def forward(self, inputs: np.ndarray) -> np.ndarray:
        """The network's outputs (after the last activation, e.g. softmax probabilities)."""
        return _activate(self.logits(inputs), self.layers[-1])

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """The predicted class of each input row (argmax of the logits; softmax keeps the order)."""
        return np.argmax(self.logits(inputs), axis=1)

    def parameters(self) -> dict[str, np.ndarray]:
        """``{"dense1.weights": [in, out], "dense1.biases": [out], ...}`` in forward order."""
        table: dict[str, np.ndarray] = {}
        for layer in self.layers:
            table[f"{layer.name}.weights"] = layer.weights
            table[f"{layer.name}.biases"] = layer.biases
        return table

    def _check_inputs(self, inputs: np.ndarray) -> np.ndarray:
        values = np.asarray(inputs, dtype=np.float32)
        if values.ndim != 2 or values.shape[1] != self.input_size:
            raise ModelError(
                f"the model takes rows of {self.input_size} values, not an array of shape {values.shape}"
            )
        return values


def _activate(values: np.ndarray, layer: DenseLayer) -> np.ndarray:
    if layer.activation == "relu":
        return F.relu_forward(values)
    if layer.activation == "softmax":
        return F.softmax_forward(values)
    return values


def _checked_layer(layer: DenseLayer, index: int, count: int, where: str) -> DenseLayer:
    """The layer with float32 contiguous arrays, or a ModelError naming what is wrong."""
    name = layer.name or f"dense{index + 1}"
    allowed = OUTPUT_ACTIVATIONS if index == count - 1 else HIDDEN_ACTIVATIONS
    role = "the output layer" if index == count - 1 else "a hidden layer"
    if layer.activation not in allowed:
        raise ModelError(
            f"layer '{name}'{where}: activation '{layer.activation}' is not supported for "
            f"{role} (supported: {', '.join(allowed)})"
        )
    weights, biases = np.asarray(layer.weights), np.asarray(layer.biases)
    if weights.ndim != 2 or 0 in weights.shape:
        raise ModelError(
            f"layer '{name}'{where}: weights of shape {weights.shape} are not [in, out]"
        )
    if weights.shape[1] > MAX_VALUES_PER_LAYER or weights.size > MAX_WEIGHTS_PER_LAYER:
        raise ModelError(
            f"layer '{name}'{where}: {weights.shape[0]}x{weights.shape[1]} weights exceed "
            f"nnsim's layer limits ({MAX_VALUES_PER_LAYER} outputs, {MAX_WEIGHTS_PER_LAYER} weights)"
        )
    if biases.reshape(-1).shape != (weights.shape[1],):
        raise ModelError(
            f"layer '{name}'{where}: {biases.size} biases for {weights.shape[1]} outputs"
        )
    for label, array in (("weights", weights), ("biases", biases)):
        if array.dtype.kind not in "fiu":
            raise ModelError(f"layer '{name}'{where}: {label} are {array.dtype}, not numbers")
        if not np.isfinite(array).all():
            raise ModelError(f"layer '{name}'{where}: {label} hold NaN or infinite values")
    return DenseLayer(
        name=name,
        weights=np.ascontiguousarray(weights, dtype=np.float32),
        biases=np.ascontiguousarray(biases.reshape(-1), dtype=np.float32),
        activation=layer.activation,
    )
