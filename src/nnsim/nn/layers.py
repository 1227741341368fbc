"""Layer components: thin adapters from events to the math in ``functional``.

These are the classes registered as ``nn.Input``, ``nn.Dense``, ``nn.ReLU``
and ``nn.Softmax``. A model script does not call them: it writes the
builder's specs of the same names, ``nnsim.nn.Dense(128)``, and
``Sequential.build`` creates these (see ``nnsim.nn``).

Each has ``forward_in``/``forward_out`` and ``backward_in``/``backward_out``
ports. Training batches leave the inputs cached for the backward pass;
validation and prediction batches do not.

Each layer class is the one place that knows its layer, as a Keras layer
knows its ``call`` and ``compute_output_shape``: `Layer.call` is its forward
math on plain arrays, `Layer.output_size` its width, `Layer.wiring` what a
builder must tell it about the layer before it, `Layer.trained` the names of
its trained arrays, and `Layer.onnx_nodes` its ONNX form. The builder's shape
inference, ``nnsim test``'s network and the ONNX export all ask the class, so
a layer type added by registering it works in all three.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from nnsim.errors import DataError, ParamError, StateError
from nnsim.nn import functional as F
from nnsim.nn.clocked import Clocked
from nnsim.nn.dtypes import DTYPES
from nnsim.nn.events import Batch, Gradient, Mode
from nnsim.nn.optimizers import apply_update
from nnsim.sim import Array, Param, Port, Statistic

MAX_UNITS = 2**20
"""The most values per sample a layer takes or gives (a sane bound, not a hardware one)."""
MAX_WEIGHTS = 2**26
"""The most weights one dense layer may hold (256 MiB of float32, four such arrays with Adam)."""

# (op type, inputs, outputs, attributes): an ONNX node as plain data, so that
# the layers need no onnx import. "{x}" is the layer's input, "{y}" its output,
# "{name}" the layer's name; trained arrays are named "{name}.<array>".
OnnxNode = tuple[str, list[str], list[str], dict[str, Any]]


class Layer(Clocked):
    """A link in the chain: batches go forward, gradients come back."""

    ports = (
        Port("forward_in", "activations from the previous layer", handler="on_event"),
        Port("forward_out", "activations to the next layer"),
        Port("backward_in", "gradients from the next layer", handler="on_event"),
        Port("backward_out", "gradients to the previous layer"),
    )
    statistics = (
        Statistic("forward_batches", "batches passed forward"),
        Statistic("backward_batches", "gradients passed backward"),
        Statistic("samples", "samples passed forward", "samples"),
    )

    trained: tuple[str, ...] = ()  # attributes holding trained arrays (a state_dict's entries)

    @classmethod
    def output_size(cls, params: Mapping[str, Any], input_size: int) -> int:
        """Values per sample this layer emits, given its parameters and its input's width."""
        return input_size

    @classmethod
    def wiring(cls, input_size: int, dtype: str, after_trained: bool) -> dict[str, Any]:
        """Parameters a builder sets from the chain: the input width, the dtype, and whether a
        trained layer comes before this one (only then is an input gradient worth sending)."""
        return {}

    @staticmethod
    def call(inputs: np.ndarray, *trained: np.ndarray) -> np.ndarray:
        """The forward math on a batch ``[N, input_size]``, with the arrays named in ``trained``."""
        raise NotImplementedError

    @classmethod
    def onnx_nodes(cls) -> list[OnnxNode] | None:
        """This layer in ONNX, or None when it has no ONNX form."""
        return None

    @classmethod
    def exported(cls, name: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The trained arrays as they leave nnsim (checked, in their exchange shapes)."""
        return arrays

    def build(self) -> None:
        super().build()
        self._forward_out = self.links["forward_out"]
        self._backward_out = self.links["backward_out"]

    def handle(self, event: Batch | Gradient) -> None:
        stats = self.stats
        if type(event) is Batch:
            stats["forward_batches"] += 1
            stats["samples"] += len(event.inputs)
            self.forward(event)
        else:
            stats["backward_batches"] += 1
            self.backward(event)

    def forward(self, batch: Batch) -> None:
        raise NotImplementedError

    def backward(self, gradient: Gradient) -> None:
        raise NotImplementedError

    def _check_inputs(self, gradient: Gradient) -> None:
        """The inputs kept by the forward pass match the gradient (a restored state may not)."""
        inputs, dvalues = getattr(self, "inputs", None), gradient.dvalues
        if inputs is None or dvalues is None or len(inputs) != len(dvalues):
            raise StateError(
                f"{self.name} got a gradient for a batch it did not pass forward (its saved "
                "inputs are missing or of another size); restart from another checkpoint"
            )


class Input(Layer):
    """Entry of the network: checks the sample size and passes batches on."""

    type_name = "nn.Input"
    params = (
        Param(
            "size",
            int,
            784,
            "values per sample (28x28 pixels: 784)",
            min=1,
            max=MAX_UNITS,
            fixed=True,
        ),
    )

    @classmethod
    def output_size(cls, params: Mapping[str, Any], input_size: int) -> int:
        return int(params.get("size", 784))

    @staticmethod
    def call(inputs: np.ndarray, *trained: np.ndarray) -> np.ndarray:
        return inputs

    @classmethod
    def onnx_nodes(cls) -> list[OnnxNode] | None:
        return [("Identity", ["{x}"], ["{y}"], {})]

    def forward(self, batch: Batch) -> None:
        if batch.inputs.shape[1] != self.size:
            raise DataError(
                f"{self.name} got samples of {batch.inputs.shape[1]} values but its size is "
                f"{self.size}; make Input(size) match the images"
            )
        self._forward_out.send(batch)

    def backward(self, gradient: Gradient) -> None:
        self._backward_out.send(gradient)


class Dense(Layer):
    """Fully connected layer: inputs @ weights + biases, with optional L1/L2 penalties.

    Holds its own optimizer moment buffers; the update rule comes with the gradient.
    The buffers keep the names of the nnfs book ("Neural Networks from Scratch"),
    whose model SST's example and nnsim follow, so its code reads across:
    ``weight_momentums``/``bias_momentums`` are Adam's first moments (SGD's
    velocity), ``weight_cache``/``bias_cache`` Adam's second moments (the squared
    gradients' running average), not a cache of anything.
    """

    type_name = "nn.Dense"
    params = (
        Param("input_size", int, help="inputs per sample", min=1, max=MAX_UNITS, fixed=True),
        Param(
            "output_size",
            int,
            help="neurons (outputs per sample)",
            min=1,
            max=MAX_UNITS,
            fixed=True,
        ),
        Param("weight_scale", float, 0.01, "initial weights are weight_scale * N(0, 1)", min=0.0),
        Param("l1_weight", float, 0.0, "L1 penalty on weights", min=0.0),
        Param("l2_weight", float, 0.0, "L2 penalty on weights", min=0.0),
        Param("l1_bias", float, 0.0, "L1 penalty on biases", min=0.0),
        Param("l2_bias", float, 0.0, "L2 penalty on biases", min=0.0),
        Param(
            "propagate_gradient",
            bool,
            True,
            "send the input gradient back (off for the first layer)",
        ),
        Param(
            "dtype",
            str,
            "float32",
            "floating-point type of weights and math",
            choices=DTYPES,
            fixed=True,
        ),
    )
    arrays = (
        Array("weights", ("input_size", "output_size"), "dtype", "the weights"),
        Array("biases", (1, "output_size"), "dtype", "the biases"),
        Array("weight_momentums", ("input_size", "output_size"), "dtype", "optimizer moments"),
        Array("weight_cache", ("input_size", "output_size"), "dtype", "optimizer caches"),
        Array("bias_momentums", (1, "output_size"), "dtype", "optimizer moments"),
        Array("bias_cache", (1, "output_size"), "dtype", "optimizer caches"),
        Array("inputs", (None, "input_size"), "dtype", "inputs kept for backward", optional=True),
    )
    trained = ("weights", "biases")

    @classmethod
    def output_size(cls, params: Mapping[str, Any], input_size: int) -> int:
        return int(params["output_size"])

    @classmethod
    def wiring(cls, input_size: int, dtype: str, after_trained: bool) -> dict[str, Any]:
        return {"input_size": input_size, "dtype": dtype, "propagate_gradient": after_trained}

    @staticmethod
    def call(inputs: np.ndarray, *trained: np.ndarray) -> np.ndarray:
        weights, biases = trained
        return F.dense_forward(inputs, weights, biases)

    @classmethod
    def onnx_nodes(cls) -> list[OnnxNode] | None:
        return [
            ("MatMul", ["{x}", "{name}.weights"], ["{name}_matmul"], {}),
            ("Add", ["{name}_matmul", "{name}.biases"], ["{y}"], {}),
        ]

    @classmethod
    def exported(cls, name: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Weights ``[in, out]`` and biases ``[out]`` (kept as ``[1, out]`` inside)."""
        weights, biases = arrays["weights"], arrays["biases"].reshape(-1)
        if weights.ndim != 2 or biases.shape != (weights.shape[1],):
            raise DataError(
                f"{name}: weights {weights.shape} and biases {biases.shape} do not make a dense layer"
            )
        return {"weights": weights, "biases": biases}

    def build(self) -> None:
        super().build()
        if self.input_size * self.output_size > MAX_WEIGHTS:
            raise ParamError(
                f"{self.describe()}: {self.input_size} x {self.output_size} weights are more "
                f"than the {MAX_WEIGHTS} one dense layer may hold; use smaller layers"
            )
        dtype = np.dtype(self.dtype)
        initial = self.weight_scale * self.rng.standard_normal((self.input_size, self.output_size))
        self.weights = initial.astype(dtype)
        self.biases = np.zeros((1, self.output_size), dtype=dtype)
        self.weight_momentums = np.zeros_like(self.weights)
        self.weight_cache = np.zeros_like(self.weights)
        self.bias_momentums = np.zeros_like(self.biases)
        self.bias_cache = np.zeros_like(self.biases)
        self.inputs: np.ndarray | None = None

    @property
    def regularized(self) -> bool:
        return bool(self.l1_weight or self.l2_weight or self.l1_bias or self.l2_bias)

    def forward(self, batch: Batch) -> None:
        inputs = batch.inputs
        if inputs.ndim != 2 or inputs.shape[1] != self.input_size:
            raise DataError(
                f"{self.name} got samples of shape {list(inputs.shape[1:])} but its input_size "
                f"is {self.input_size}; make the layer sizes match"
            )
        reg_loss = batch.reg_loss
        if batch.mode == Mode.TRAIN:
            self.inputs = inputs
            if self.regularized:
                reg_loss += F.regularization_loss(self.weights, self.l1_weight, self.l2_weight)
                reg_loss += F.regularization_loss(self.biases, self.l1_bias, self.l2_bias)
        outputs = self.call(inputs, self.weights, self.biases)
        self._forward_out.send(Batch(batch.mode, batch.index, outputs, batch.targets, reg_loss))

    def backward(self, gradient: Gradient) -> None:
        self._check_inputs(gradient)
        dweights, dbiases, dinputs = F.dense_backward(
            self.inputs, self.weights, gradient.dvalues, self.propagate_gradient
        )
        if self.regularized:
            F.add_regularization_gradient(dweights, self.weights, self.l1_weight, self.l2_weight)
            F.add_regularization_gradient(dbiases, self.biases, self.l1_bias, self.l2_bias)
        rule = gradient.update
        apply_update(rule, self.weights, dweights, self.weight_momentums, self.weight_cache)
        apply_update(rule, self.biases, dbiases, self.bias_momentums, self.bias_cache)
        self.inputs = None
        self._backward_out.send(
            Gradient(
                gradient.index,
                dinputs,
                rule,
                gradient.loss_sum,
                gradient.reg_loss,
                gradient.correct,
                gradient.count,
            )
        )


class ReLU(Layer):
    """Rectified linear activation: max(x, 0)."""

    type_name = "nn.ReLU"
    arrays = (Array("inputs", (None, None), None, "kept for backward", optional=True),)

    @staticmethod
    def call(inputs: np.ndarray, *trained: np.ndarray) -> np.ndarray:
        return F.relu_forward(inputs)

    @classmethod
    def onnx_nodes(cls) -> list[OnnxNode] | None:
        return [("Relu", ["{x}"], ["{y}"], {})]

    def build(self) -> None:
        super().build()
        self.inputs: np.ndarray | None = None

    def forward(self, batch: Batch) -> None:
        if batch.mode == Mode.TRAIN:
            self.inputs = batch.inputs
        outputs = self.call(batch.inputs)
        self._forward_out.send(
            Batch(batch.mode, batch.index, outputs, batch.targets, batch.reg_loss)
        )

    def backward(self, gradient: Gradient) -> None:
        self._check_inputs(gradient)
        dinputs = F.relu_backward(self.inputs, gradient.dvalues)
        self.inputs = None
        self._backward_out.send(
            Gradient(
                gradient.index,
                dinputs,
                gradient.update,
                gradient.loss_sum,
                gradient.reg_loss,
                gradient.correct,
                gradient.count,
            )
        )


class Softmax(Layer):
    """Softmax over each sample's outputs.

    Backward passes the gradient through unchanged: the cross-entropy loss
    after it sends the combined softmax + cross-entropy gradient (p - onehot) / n.
    """

    type_name = "nn.Softmax"

    @staticmethod
    def call(inputs: np.ndarray, *trained: np.ndarray) -> np.ndarray:
        return F.softmax_forward(inputs)

    @classmethod
    def onnx_nodes(cls) -> list[OnnxNode] | None:
        return [("Softmax", ["{x}"], ["{y}"], {"axis": -1})]

    def forward(self, batch: Batch) -> None:
        outputs = self.call(batch.inputs)
        self._forward_out.send(
            Batch(batch.mode, batch.index, outputs, batch.targets, batch.reg_loss)
        )

    def backward(self, gradient: Gradient) -> None:
        self._backward_out.send(gradient)
