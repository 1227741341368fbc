"""Optimizers: subcomponents that own the learning schedule and their update rule.

One optimizer state (learning rate, decay, iteration count) lives at
``loss/optimizer``; at each training step it decides an ``UpdateRule`` that
travels back with the gradient, and each dense layer applies it to its own
weights with its own moment buffers, through the ``update`` method of the
optimizer type that decided it.

Writing an optimizer: subclass `Optimizer`, give it a ``type_name`` and its
``params``, return its hyperparameters from ``settings()`` and implement
``update(rule, param, grad, momentum, cache)``; register it (``@register`` in
a script, or the ``nnsim.components`` entry-point group of your package), and
use it with ``Sequential(..., optimizer=nn.Spec("my.Optimizer", {...},
"optimizer"))``. Nothing in nnsim needs editing.
"""

from __future__ import annotations

import numpy as np

from nnsim.nn import functional as F
from nnsim.nn.events import UpdateRule
from nnsim.sim import Param, SubComponent, lookup


class Optimizer(SubComponent):
    """Learning-rate schedule shared by all layers: lr / (1 + decay * iterations).

    ``current_learning_rate``, ``decay`` and ``iterations`` (training steps so
    far) keep the nnfs book's names, as do Adam's ``beta_1``, ``beta_2`` and
    ``epsilon``: the SST example this repository follows took them from there.
    """

    params = (
        Param("learning_rate", float, 0.001, "base learning rate", min=0.0),
        Param("decay", float, 0.0, "learning-rate decay per iteration", min=0.0),
    )
    statistics = ()

    def build(self) -> None:
        self.current_learning_rate = self.learning_rate
        self.iterations = 0

    def begin_step(self) -> UpdateRule:
        """Decide this step's rule from the current settings (so `set` takes effect at once)."""
        if self.decay:
            self.current_learning_rate = self.learning_rate * (
                1.0 / (1.0 + self.decay * self.iterations)
            )
        else:
            self.current_learning_rate = self.learning_rate
        return self.rule()

    def end_step(self) -> None:
        self.iterations += 1

    def rule(self) -> UpdateRule:
        """This step's decision, for every layer: schedule, step number and settings."""
        return UpdateRule(
            self.type_name, self.current_learning_rate, self.iterations, self.settings()
        )

    def settings(self) -> dict[str, float]:
        """The hyperparameters ``update`` needs besides the learning rate and step."""
        return {}

    @staticmethod
    def update(
        rule: UpdateRule,
        param: np.ndarray,
        grad: np.ndarray,
        momentum: np.ndarray,
        cache: np.ndarray,
    ) -> None:
        """Apply ``rule`` to one parameter array in place, with the layer's two buffers."""
        raise NotImplementedError


class Adam(Optimizer):
    """Adam with bias correction, as in Kingma & Ba (and the nnfs book the SST example follows)."""

    type_name = "nn.Adam"
    params = (
        Param("epsilon", float, 1e-7, "added to the denominator", min=0.0, min_exclusive=True),
        Param("beta_1", float, 0.9, "decay of the first moment", min=0.0, max=1.0),
        Param("beta_2", float, 0.999, "decay of the second moment", min=0.0, max=1.0),
    )

    def settings(self) -> dict[str, float]:
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}

    @staticmethod
    def update(rule, param, grad, momentum, cache) -> None:
        """``momentum`` and ``cache`` are the first and second moments (the nnfs book's names)."""
        settings = rule.settings
        F.adam_update(
            param,
            grad,
            momentum,
            cache,
            rule.learning_rate,
            rule.step,
            settings["beta_1"],
            settings["beta_2"],
            settings["epsilon"],
        )


class SGD(Optimizer):
    """Stochastic gradient descent, with momentum when ``momentum`` > 0."""

    type_name = "nn.SGD"
    params = (
        Param("learning_rate", float, 1.0, "base learning rate", min=0.0),
        Param("momentum", float, 0.0, "velocity decay (0: plain SGD)", min=0.0, max=1.0),
    )

    def settings(self) -> dict[str, float]:
        return {"momentum": self.momentum}

    @staticmethod
    def update(rule, param, grad, momentum, cache) -> None:
        """``momentum`` holds the velocity; ``cache`` is unused."""
        beta = rule.settings["momentum"]
        F.sgd_update(param, grad, momentum if beta else None, rule.learning_rate, beta)


def apply_update(
    rule: UpdateRule, param: np.ndarray, grad: np.ndarray, momentum: np.ndarray, cache: np.ndarray
) -> None:
    """Apply ``rule`` to one parameter array in place: the deciding optimizer type's ``update``."""
    lookup(rule.optimizer).update(rule, param, grad, momentum, cache)
