"""Layer components: thin adapters from events to the math in ``functional``.

Each has ``forward_in``/``forward_out`` and ``backward_in``/``backward_out``
ports. Training batches leave the inputs cached for the backward pass;
validation and prediction batches do not.
"""

from __future__ import annotations

import numpy as np

from nnsim.errors import DataError, StateError
from nnsim.nn import functional as F
from nnsim.nn.clocked import Clocked
from nnsim.nn.events import Batch, Gradient, Mode
from nnsim.nn.optimizers import apply_update
from nnsim.sim import Array, Param, Port, Statistic

DTYPES = ("float32", "float64")


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
    params = (Param("size", int, 784, "values per sample (28x28 pixels: 784)", min=1),)

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
    """

    type_name = "nn.Dense"
    params = (
        Param("input_size", int, help="inputs per sample", min=1),
        Param("output_size", int, help="neurons (outputs per sample)", min=1),
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
        Param("dtype", str, "float32", "floating-point type of weights and math", choices=DTYPES),
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

    def build(self) -> None:
        super().build()
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
        outputs = F.dense_forward(inputs, self.weights, self.biases)
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

    def build(self) -> None:
        super().build()
        self.inputs: np.ndarray | None = None

    def forward(self, batch: Batch) -> None:
        if batch.mode == Mode.TRAIN:
            self.inputs = batch.inputs
        outputs = F.relu_forward(batch.inputs)
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

    def forward(self, batch: Batch) -> None:
        outputs = F.softmax_forward(batch.inputs)
        self._forward_out.send(
            Batch(batch.mode, batch.index, outputs, batch.targets, batch.reg_loss)
        )

    def backward(self, gradient: Gradient) -> None:
        self._backward_out.send(gradient)
