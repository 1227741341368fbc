"""A PyTorch/Keras-like builder that emits the SST-style chain of components.

``Sequential([Input(784), Dense(128), ReLU(), Dense(10), Softmax()])`` becomes
``controller -> input -> dense1 -> relu1 -> dense2 -> softmax -> loss``, with
forward links down the chain, backward links up it, and a result link from
the loss to the controller. Each spec is just a type name and parameters;
manual wiring with ``sim.add``/``sim.connect`` stays available for other graphs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nnsim.errors import ParamError
from nnsim.nn.layers import Layer
from nnsim.sim import Component, Simulation, lookup


@dataclass
class Spec:
    """A component to create: its registered type, parameters and base name."""

    type_name: str
    params: dict[str, Any] = field(default_factory=dict)
    base_name: str = ""
    numbered: bool = False


def Input(size: int = 784) -> Spec:  # noqa: N802 - reads like a layer class
    return Spec("nn.Input", {"size": size}, "input")


def Dense(units: int, **params: Any) -> Spec:  # noqa: N802
    """A dense layer of ``units`` neurons; ``params`` as in ``nnsim info nn.Dense``."""
    return Spec("nn.Dense", {"output_size": units, **params}, "dense", numbered=True)


def ReLU() -> Spec:  # noqa: N802
    return Spec("nn.ReLU", {}, "relu", numbered=True)


def Softmax() -> Spec:  # noqa: N802
    return Spec("nn.Softmax", {}, "softmax")


def CategoricalCrossEntropy(**params: Any) -> Spec:  # noqa: N802
    return Spec("nn.CategoricalCrossEntropy", params, "loss")


def Adam(**params: Any) -> Spec:  # noqa: N802
    """Adam: learning_rate, decay, epsilon, beta_1, beta_2."""
    return Spec("nn.Adam", params, "optimizer")


def SGD(**params: Any) -> Spec:  # noqa: N802
    """SGD: learning_rate, decay, momentum."""
    return Spec("nn.SGD", params, "optimizer")


def BatchController(**params: Any) -> Spec:  # noqa: N802
    """The controller: batch_size, epochs, ... (see ``nnsim info nn.BatchController``)."""
    return Spec("nn.BatchController", params, "controller")


class Sequential:
    """A chain of layers trained by a batch controller against a loss with an optimizer."""

    def __init__(
        self,
        layers: list[Spec],
        *,
        loss: Spec | None = None,
        optimizer: Spec | None = None,
        controller: Spec | None = None,
    ):
        if not layers or layers[0].type_name != "nn.Input":
            raise ParamError("Sequential needs an Input(size) as its first layer")
        self.layers = layers
        self.loss = loss or CategoricalCrossEntropy()
        self.optimizer = optimizer or Adam()
        self.controller = controller or BatchController()

    def build(
        self,
        sim: Simulation,
        *,
        latency: str | int = "1us",
        clock: str = "1GHz",
        dtype: str = "float32",
    ) -> dict[str, Component]:
        """Add the components and links to ``sim``; return the components by name."""
        created: dict[str, Component] = {}
        counters: dict[str, int] = {}

        def add(spec: Spec, extra: dict[str, Any]) -> Component:
            name = spec.base_name
            if spec.numbered:
                counters[name] = counters.get(name, 0) + 1
                name = f"{name}{counters[name]}"
            params = {"clock": clock, **extra, **spec.params}
            component = sim.add(spec.type_name, name, **params)
            created[name] = component
            return component

        controller = add(self.controller, {"dtype": dtype})
        chain = [controller]
        width, after_trained = 0, False
        for spec in self.layers:
            layer = lookup(spec.type_name)
            if not (isinstance(layer, type) and issubclass(layer, Layer)):
                raise ParamError(f"{spec.type_name} is not a layer type; Sequential chains layers")
            chain.append(add(spec, layer.wiring(width, dtype, after_trained)))
            width = layer.output_size(spec.params, width)
            after_trained = after_trained or bool(layer.trained)
        loss = add(self.loss, {})
        loss.set_subcomponent("optimizer", self.optimizer.type_name, **self.optimizer.params)
        chain.append(loss)

        for upstream, downstream in zip(chain, chain[1:], strict=False):
            sim.connect((upstream, "forward_out"), (downstream, "forward_in"), latency)
            sim.connect((downstream, "backward_out"), (upstream, "backward_in"), latency)
        sim.connect((loss, "result_out"), (controller, "result_in"), latency)
        return created
