"""A PyTorch/Keras-like builder that emits the SST-style chain of components.

``Sequential([Input(784), Dense(128), ReLU(), Dense(10), Softmax()])`` becomes
``controller -> input -> dense1 -> relu1 -> dense2 -> softmax -> loss``, with
forward links down the chain, backward links up it, and a result link from
the loss to the controller. Manual wiring with ``sim.add``/``sim.connect``
stays available for other graphs.

The functions here are named after the component types they describe, as
Keras names ``Dense`` in a ``Sequential`` list: ``Dense(128)`` returns a
`Spec` for the registered type ``nn.Dense``, whose class is
``nnsim.nn.layers.Dense``; the builder creates that component in ``build``.
So ``nnsim info nn.Dense`` documents the parameters of ``Dense(...)``, and
``isinstance`` checks and subclasses use the class in ``nnsim.nn.layers``
(``nnsim.nn.loss``, ``.optimizers``, ``.controller`` for the others).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nnsim.errors import ParamError
from nnsim.nn.layers import Layer
from nnsim.sim import Component, Element, Simulation, lookup, registered_types


@dataclass
class Spec:
    """A component to create: its registered type, parameters and base name."""

    type_name: str
    params: dict[str, Any] = field(default_factory=dict)
    base_name: str = ""
    numbered: bool = False


def Input(size: int = 784) -> Spec:  # noqa: N802 - reads like a layer class
    """Spec of an ``nn.Input`` (class ``nnsim.nn.layers.Input``): ``size`` values per sample."""
    return Spec("nn.Input", {"size": size}, "input")


def Dense(units: int, **params: Any) -> Spec:  # noqa: N802
    """Spec of an ``nn.Dense`` of ``units`` neurons (class ``nnsim.nn.layers.Dense``).

    ``params`` as in ``nnsim info nn.Dense``; the builder fills in ``input_size``.
    """
    return Spec("nn.Dense", {"output_size": units, **params}, "dense", numbered=True)


def ReLU() -> Spec:  # noqa: N802
    """Spec of an ``nn.ReLU`` (class ``nnsim.nn.layers.ReLU``)."""
    return Spec("nn.ReLU", {}, "relu", numbered=True)


def Softmax() -> Spec:  # noqa: N802
    """Spec of an ``nn.Softmax`` (class ``nnsim.nn.layers.Softmax``)."""
    return Spec("nn.Softmax", {}, "softmax")


def CategoricalCrossEntropy(**params: Any) -> Spec:  # noqa: N802
    """Spec of an ``nn.CategoricalCrossEntropy`` (class ``nnsim.nn.loss.CategoricalCrossEntropy``)."""
    return Spec("nn.CategoricalCrossEntropy", params, "loss")


def Adam(**params: Any) -> Spec:  # noqa: N802
    """Spec of an ``nn.Adam`` (class ``nnsim.nn.optimizers.Adam``): learning_rate, decay, epsilon,
    beta_1, beta_2."""
    return Spec("nn.Adam", params, "optimizer")


def SGD(**params: Any) -> Spec:  # noqa: N802
    """Spec of an ``nn.SGD`` (class ``nnsim.nn.optimizers.SGD``): learning_rate, decay, momentum."""
    return Spec("nn.SGD", params, "optimizer")


def BatchController(**params: Any) -> Spec:  # noqa: N802
    """Spec of the ``nn.BatchController`` (class ``nnsim.nn.controller.BatchController``):
    batch_size, epochs, ... (see ``nnsim info nn.BatchController``)."""
    return Spec("nn.BatchController", params, "controller")


SPEC_FACTORIES = (Input, Dense, ReLU, Softmax, CategoricalCrossEntropy, Adam, SGD, BatchController)
"""The builder's functions, each named after the component type its specs describe."""


def checked_spec(value: Any, role: str) -> Spec:
    """``value`` if it is a Spec; else one line saying what to write instead.

    The likely slips are the two things that share a spec's name: the function
    itself, uncalled (``nn.Dense``), and the component class
    (``nnsim.nn.layers.Dense``).
    """
    if isinstance(value, Spec):
        return value
    if any(value is factory for factory in SPEC_FACTORIES):
        raise ParamError(
            f"Sequential's {role} is the function nn.{value.__name__} itself; "
            f"call it: nn.{value.__name__}(...)"
        )
    if isinstance(value, type) and issubclass(value, Element):
        names = [name for name, cls in registered_types().items() if cls is value]
        factories = [f for f in SPEC_FACTORIES if names and names[0] == f"nn.{f.__name__}"]
        if factories:
            instead = f"nn.{factories[0].__name__}(...)"
        else:
            instead = f"Spec({names[0]!r}, {{...}})" if names else "a Spec of its registered type"
        raise ParamError(
            f"Sequential's {role} is the component class {value.__module__}.{value.__qualname__}; "
            f"give its spec instead, {instead}, and the builder creates it"
        )
    raise ParamError(f"Sequential's {role} must be a spec such as nn.Dense(128), not {value!r}")


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
        if isinstance(layers, (Spec, str)) or not hasattr(layers, "__iter__"):
            raise ParamError("Sequential takes a list of layers: Sequential([nn.Input(784), ...])")
        layers = [checked_spec(layer, f"layers[{index}]") for index, layer in enumerate(layers)]
        if not layers or layers[0].type_name != "nn.Input":
            raise ParamError("Sequential needs an Input(size) as its first layer")
        self.layers = layers
        self.loss = checked_spec(loss, "loss") if loss is not None else CategoricalCrossEntropy()
        self.optimizer = checked_spec(optimizer, "optimizer") if optimizer is not None else Adam()
        self.controller = (
            checked_spec(controller, "controller") if controller is not None else BatchController()
        )

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
