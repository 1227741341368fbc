"""Optimizers: subcomponents that own the learning schedule.

One optimizer state (learning rate, decay, iteration count) lives at
``loss/optimizer``; at each training step it decides an ``UpdateRule`` that
travels back with the gradient, and each dense layer applies it to its own
weights with its own moment buffers.
"""

from __future__ import annotations

import numpy as np

from nnsim.nn import functional as F
from nnsim.nn.events import UpdateRule
from nnsim.sim import Param, SubComponent


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
        raise NotImplementedError


class Adam(Optimizer):
    """Adam with bias correction, as in Kingma & Ba (and the nnfs book the SST example follows)."""

    type_name = "nn.Adam"
    params = (
        Param(
            "epsilon", float, 1e-7, "added to the denominator (> 0)", min=0.0, min_exclusive=True
        ),
        Param("beta_1", float, 0.9, "decay of the first moment", min=0.0, max=1.0),
        Param("beta_2", float, 0.999, "decay of the second moment", min=0.0, max=1.0),
    )

    def rule(self) -> UpdateRule:
        return UpdateRule(
            "adam",
            self.current_learning_rate,
            self.iterations,
            self.beta_1,
            self.beta_2,
            self.epsilon,
        )


class SGD(Optimizer):
    """Stochastic gradient descent, with momentum when ``momentum`` > 0."""

    type_name = "nn.SGD"
    params = (
        Param("learning_rate", float, 1.0, "base learning rate", min=0.0),
        Param("momentum", float, 0.0, "velocity decay (0: plain SGD)", min=0.0, max=1.0),
    )

    def rule(self) -> UpdateRule:
        return UpdateRule(
            "sgd", self.current_learning_rate, self.iterations, momentum=self.momentum
        )


def apply_update(
    rule: UpdateRule, param: np.ndarray, grad: np.ndarray, momentum: np.ndarray, cache: np.ndarray
) -> None:
    """Apply ``rule`` to one parameter array in place, using the layer's buffers."""
    if rule.kind == "adam":
        F.adam_update(
            param,
            grad,
            momentum,
            cache,
            rule.learning_rate,
            rule.step,
            rule.beta_1,
            rule.beta_2,
            rule.epsilon,
        )
    elif rule.kind == "sgd":
        F.sgd_update(
            param, grad, momentum if rule.momentum else None, rule.learning_rate, rule.momentum
        )
    else:
        raise ValueError(f"unknown update rule {rule.kind!r}")
