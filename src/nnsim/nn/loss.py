"""The loss component: end of the forward chain, start of the backward one.

Training batches turn into the combined softmax + cross-entropy gradient,
stamped with the optimizer's update rule for this step; validation and
prediction batches turn into an ``Outcome`` sent straight to the controller
(so those steps are one hop shorter than a training round trip).
"""

from __future__ import annotations

from nnsim.errors import DataError
from nnsim.nn import functional as F
from nnsim.nn.clocked import Clocked
from nnsim.nn.events import Batch, Gradient, Mode, Outcome
from nnsim.sim import Port, Slot, Statistic


class CategoricalCrossEntropy(Clocked):
    """Categorical cross-entropy with accuracy; owns the optimizer (``loss/optimizer``)."""

    type_name = "nn.CategoricalCrossEntropy"
    ports = (
        Port("forward_in", "class probabilities from the softmax", handler="on_event"),
        Port("backward_out", "gradient to the softmax"),
        Port("result_out", "validation and prediction outcomes to the controller"),
    )
    slots = (Slot("optimizer", "optimizer that decides every layer's update", default="nn.Adam"),)
    statistics = (
        Statistic("training_batches", "training batches scored"),
        Statistic("evaluated_batches", "validation and prediction batches scored"),
    )

    def build(self) -> None:
        super().build()
        self._backward_out = self.links["backward_out"]
        self._result_out = self.links["result_out"]

    def handle(self, batch: Batch) -> None:
        probabilities, targets = batch.inputs, batch.targets
        if batch.mode == Mode.PREDICT:
            self.stats["evaluated_batches"] += 1
            self._result_out.send(
                Outcome(
                    batch.mode,
                    batch.index,
                    0.0,
                    0,
                    len(probabilities),
                    probabilities.argmax(axis=1),
                    probabilities.max(axis=1),
                )
            )
            return
        if (
            targets is None
            or len(targets) != len(probabilities)
            or len(targets)
            and not 0 <= int(targets.min()) <= int(targets.max()) < probabilities.shape[1]
        ):
            raise DataError(
                f"{self.name} got a batch whose targets are missing, of another length or not "
                f"class indexes below {probabilities.shape[1]}; check the labels (or the checkpoint)"
            )
        loss_sum = float(F.cross_entropy(probabilities, targets).sum())
        correct = F.correct_predictions(probabilities, targets)
        if batch.mode == Mode.VALIDATE:
            self.stats["evaluated_batches"] += 1
            self._result_out.send(
                Outcome(
                    batch.mode,
                    batch.index,
                    loss_sum,
                    correct,
                    len(targets),
                    probabilities.argmax(axis=1),
                    probabilities.max(axis=1),
                )
            )
            return
        self.stats["training_batches"] += 1
        dinputs = F.softmax_cross_entropy_backward(probabilities, targets)
        rule = self.optimizer.begin_step()
        self._backward_out.send(
            Gradient(batch.index, dinputs, rule, loss_sum, batch.reg_loss, correct, len(targets))
        )
        self.optimizer.end_step()
