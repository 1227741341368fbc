"""Extending nnsim without editing it: an optimizer and a layer defined here, registered as a user would.

The optimizer (RMSprop, not shipped with nnsim) trains, and a checkpoint
taken mid-training restarts bit for bit; the layer (a leaky ReLU) is used by
the builder's shape inference, ``nnsim test``'s network and the ONNX export,
because each of them asks the layer class.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from nnsim import nn
from nnsim.interop.export import onnx_model, trained_parameters
from nnsim.nn.layers import Layer
from nnsim.nn.optimizers import Optimizer
from nnsim.sim import Param, Simulation, register, unregister
from nnsim.state import capture, restore
from nnsim.train.evaluate import network


class RMSprop(Optimizer):
    """Root-mean-square propagation: a running mean of squared gradients scales each step."""

    params = (
        Param("rho", float, 0.9, "decay of the squared-gradient mean", min=0.0, max=1.0),
        Param("epsilon", float, 1e-7, "added to the denominator", min=0.0),
    )

    def settings(self) -> dict[str, float]:
        return {"rho": self.rho, "epsilon": self.epsilon}

    @staticmethod
    def update(rule, param, grad, momentum, cache) -> None:
        rho, epsilon = rule.settings["rho"], rule.settings["epsilon"]
        cache *= rho
        cache += (1 - rho) * grad**2
        param -= rule.learning_rate * grad / (np.sqrt(cache) + epsilon)


class LeakyReLU(Layer):
    """max(x, 0.1 x): the forward math here is the only copy nnsim needs."""

    def build(self) -> None:
        super().build()
        self.inputs = None

    @staticmethod
    def call(inputs, *trained):
        return np.where(inputs > 0, inputs, inputs * inputs.dtype.type(0.1))

    @classmethod
    def onnx_nodes(cls):
        return [("LeakyRelu", ["{x}"], ["{y}"], {"alpha": 0.1})]

    def forward(self, batch) -> None:
        self.inputs = batch.inputs
        outputs = self.call(batch.inputs)
        self._forward_out.send(
            type(batch)(batch.mode, batch.index, outputs, batch.targets, batch.reg_loss)
        )

    def backward(self, gradient) -> None:
        gradient.dvalues = np.where(self.inputs > 0, gradient.dvalues, gradient.dvalues * 0.1)
        self.inputs = None
        self._backward_out.send(gradient)


@pytest.fixture(autouse=True)
def registered():
    """Registered as a user would, for these tests only (other tests list every type)."""
    register("test.RMSprop")(RMSprop)
    register("test.LeakyReLU")(LeakyReLU)
    yield
    unregister("test.RMSprop")
    unregister("test.LeakyReLU")


def build(dataset, output, layer="nn.ReLU") -> Simulation:
    sim = Simulation(seed=5, output=output)
    nn.Sequential(
        [
            nn.Input(784),
            nn.Dense(16, weight_scale=0.1),
            nn.Spec(layer, {}, "act"),
            nn.Dense(10, weight_scale=0.1),
            nn.Softmax(),
        ],
        optimizer=nn.Spec("test.RMSprop", {"learning_rate": 0.001, "rho": 0.9}, "optimizer"),
        controller=nn.BatchController(
            batch_size=32,
            epochs=4,
            training_images=str(dataset),
            test_images=str(dataset),
            progress=False,
        ),
    ).build(sim)
    return sim


def accuracies(text: str) -> list[float]:
    return [
        float(line.split("acc: ")[1].split()[0]) for line in text.splitlines() if "valid" in line
    ]


def test_a_registered_third_party_optimizer_trains(toy_dataset):
    output = io.StringIO()
    sim = build(toy_dataset, output)
    before = sim.components["dense1"].weights.copy()
    sim.run()
    assert sim.components["loss"].optimizer.kind() == "test.RMSprop"
    assert not np.array_equal(sim.components["dense1"].weights, before)
    first, *_, last = accuracies(output.getvalue())
    assert last >= 0.6 and last > first + 0.2  # chance is 0.1


def test_a_third_party_optimizer_restarts_bit_for_bit_from_a_checkpoint(toy_dataset):
    straight_output = io.StringIO()
    straight = build(toy_dataset, straight_output)
    straight.run()

    first = build(toy_dataset, io.StringIO())
    assert first.run(until="40us") == "paused"  # mid-epoch, gradients in flight
    body, tensors = capture(first)
    body = json.loads(json.dumps(body))  # what a manifest holds
    assert "test.RMSprop" in json.dumps(body)
    restarted_output = io.StringIO()
    restarted = restore(body, {k: np.array(v) for k, v in tensors.items()}, output=restarted_output)
    restarted.run()
    for name in ("dense1", "dense2"):
        for attribute in ("weights", "biases", "weight_cache"):
            assert np.array_equal(
                getattr(restarted.components[name], attribute),
                getattr(straight.components[name], attribute),
            ), f"{name}.{attribute}"
    assert straight_output.getvalue().endswith(restarted_output.getvalue())


def test_a_registered_layer_is_known_to_the_builder_the_test_network_and_onnx(toy_dataset):
    sim = build(toy_dataset, io.StringIO(), layer="test.LeakyReLU")
    assert sim.components["dense2"].input_size == 16  # shape inference passed through the layer
    assert sim.run(until="300us") == "paused"  # trained for a while
    body, tensors = capture(sim)
    images = np.random.default_rng(0).uniform(-1, 1, (5, 784)).astype(np.float32)
    parameters = trained_parameters(body, tensors)
    hidden = images @ parameters["dense1.weights"] + parameters["dense1.biases"]
    logits = LeakyReLU.call(hidden) @ parameters["dense2.weights"] + parameters["dense2.biases"]
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(network(body, tensors)(images), expected, rtol=1e-5)

    onnxruntime = pytest.importorskip("onnxruntime")
    model = onnx_model(body, tensors)
    assert "LeakyRelu" in [node.op_type for node in model.graph.node]
    session = onnxruntime.InferenceSession(model.SerializeToString())
    (probabilities,) = session.run(None, {"images": images})
    np.testing.assert_allclose(probabilities, expected, rtol=1e-5, atol=1e-7)
