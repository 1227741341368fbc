"""What the layers send each other: batches forward, gradients back, outcomes to the controller.

Plain data (DESIGN.md rule 1), so that events in flight are part of a checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from nnsim.sim import Array, Event
from nnsim.state import serializable


@serializable
class Mode(IntEnum):
    """What a batch is for; layers cache inputs for the backward pass only when training."""

    TRAIN = 0
    VALIDATE = 1
    PREDICT = 2


@serializable
@dataclass(slots=True)
class UpdateRule:
    """The optimizer's decision for one step, carried to every dense layer on the gradient.

    The optimizer (at ``loss/optimizer``) owns the schedule; layers own their
    moment buffers. Because the rule travels with the gradient, changing the
    learning rate there changes the update of every layer. ``optimizer`` is
    the registered type of the optimizer that decided it: that type's
    ``update`` method applies the rule (`nnsim.nn.optimizers.apply_update`),
    with its own ``settings`` (Adam's betas and epsilon, SGD's momentum).
    """

    optimizer: str
    learning_rate: float
    step: int
    settings: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class Batch(Event):
    """Activations moving forward; ``reg_loss`` collects the dense layers' penalties."""

    mode: Mode
    index: int
    inputs: np.ndarray
    targets: np.ndarray | None
    reg_loss: float = 0.0
    arrays = (
        Array("inputs", (None, None), None, "one row per sample"),
        Array("targets", (None,), "int64", "class index per sample", optional=True),
    )


@dataclass(slots=True)
class Gradient(Event):
    """The loss gradient moving backward, with the batch's metrics for the controller."""

    index: int
    dvalues: np.ndarray | None
    update: UpdateRule
    loss_sum: float
    reg_loss: float
    correct: int
    count: int
    arrays = (Array("dvalues", (None, None), None, "gradient per sample", optional=True),)


@dataclass(slots=True)
class Outcome(Event):
    """Validation or prediction results, sent from the loss straight to the controller."""

    mode: Mode
    index: int
    loss_sum: float
    correct: int
    count: int
    predictions: np.ndarray
    confidences: np.ndarray
    arrays = (
        Array("predictions", (None,), "int64", "predicted class per sample"),
        Array("confidences", (None,), None, "its probability"),
    )
