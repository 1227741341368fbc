"""The batch controller: the primary component that drives training, validation and prediction.

State machine (as in SST's neural-network example)::

    TRAINING -> VALIDATION -> TRAINING ... -> PRECHECK_EVALUATION -> EVALUATION -> COMPLETE

Every epoch trains on all batches, then validates in batches on the whole
validation set: the test set (as in SST's example), or with
``validation_split`` a fraction of the training images held out (chosen by
the seed alone, so a restart holds out the same ones). After the last epoch the controller waits one tick in
PRECHECK_EVALUATION (longer while ``pause_before_evaluation`` is set: its
clock is then off, so waiting costs nothing, and a ``set`` of the flag to
false wakes it through ``on_set``), optionally re-reads the evaluation
images from ``eval_images``, then predicts them one per step. A paused
controller with nothing else scheduled stalls the run, which then ends (or
enters the console) saying so.
The datasets are re-read on restart, not saved: they are ``transient``.

Progress is told, not drawn: the controller notifies ``phase`` (``name``,
``total`` steps, ``done``) when a phase begins and ``step`` (``done``) after
each step, besides ``step_end``, ``epoch_end`` and ``prediction``; a
display such as `nnsim.progress.ProgressDisplay` observes them. Its lines
go through ``sim.print``.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from nnsim.data import CLASS_NAMES, hold_out, load_split, read_eval_folder, scale_pixels
from nnsim.errors import StateError
from nnsim.nn.clocked import Clocked
from nnsim.nn.events import Batch, Gradient, Mode, Outcome
from nnsim.nn.layers import DTYPES
from nnsim.sim import Array, Param, Port, Statistic, Wait
from nnsim.state import serializable


@serializable
class State(IntEnum):
    TRAINING = 0
    VALIDATION = 1
    PRECHECK_EVALUATION = 2
    EVALUATION = 3
    COMPLETE = 4


class BatchController(Clocked):
    """Feeds batches into the chain, collects metrics, prints epochs and predictions."""

    type_name = "nn.BatchController"
    params = (
        Param("batch_size", int, 128, "samples per training and validation batch", min=1),
        Param("epochs", int, 10, "passes over the training set", min=0),
        Param("class_image_limit", int, 0, "images per class to use (0: all)", min=0),
        Param(
            "training_images", str, "", "IDX folder or folder of class folders ('' : Fashion-MNIST)"
        ),
        Param("test_images", str, "", "IDX folder or folder of class folders ('' : Fashion-MNIST)"),
        Param(
            "validation_split",
            float,
            0.0,
            "fraction of the training images held out to validate on (0: the test set)",
            min=0.0,
            max=1.0,
        ),
        Param("eval_images", str, "", "flat folder of PNGs to predict after training ('' : none)"),
        Param("invert_eval_images", bool, False, "invert evaluation images (dark object on light)"),
        Param("shuffle", bool, True, "shuffle the training set every epoch"),
        Param("dtype", str, "float32", "floating-point type of the pixels", choices=DTYPES),
        Param("pause_before_evaluation", bool, False, "hold in PRECHECK_EVALUATION while set"),
        Param(
            "reload_eval_images",
            bool,
            False,
            "re-read eval_images when leaving PRECHECK_EVALUATION",
        ),
        Param(
            "progress",
            bool,
            True,
            "let nnsim run/train draw progress bars when output is a terminal",
        ),
    )
    ports = (
        Port("forward_out", "batches to the input layer"),
        Port("backward_in", "end of each training step, with its metrics", handler="on_event"),
        Port("result_in", "validation and prediction outcomes", handler="on_event"),
    )
    statistics = (
        Statistic("training_steps", "training batches completed"),
        Statistic("validation_steps", "validation batches completed"),
        Statistic("predictions", "evaluation images predicted"),
    )
    arrays = (Array("order", (None,), "int64", "this epoch's order of the training images"),)
    transient = ("train_x", "train_y", "val_x", "val_y", "eval_x", "eval_paths")
    _announced = True  # the current phase was notified (restore clears it: not saved)

    def build(self) -> None:
        super().build()
        self._forward_out = self.links["forward_out"]
        self.state = State.TRAINING
        self.epoch = 0
        self.step = 0
        self.awaiting = False  # a batch is in the chain
        self.order = np.zeros(0, dtype=np.int64)
        self.loss_sum = 0.0
        self.reg_loss = 0.0
        self.correct = 0
        self.count = 0
        self.predicted: list[str] = []
        self.precheck_ticks = 0
        self.validation_images = 0  # how many images validate (nnsim test reports it)
        self.last_training: dict[str, float] = {}

    # Phases -------------------------------------------------------------------
    def setup(self) -> None:
        self.load_datasets()
        self.register_as_primary()
        self.primary_component_do_not_end_sim()
        if self.epochs == 0:
            self.state = State.PRECHECK_EVALUATION
        self._check_position("cannot start")  # a --set step or batch size must fit the data
        self._announced = True  # each phase is announced as it begins
        self._clock.wake()

    def status(self) -> str:
        return (
            f"{super().status()}; state {self.state.name}, epoch {self.epoch}/{self.epochs}, "
            f"step {self.step}"
        )

    def restore(self) -> None:
        """After a restart: re-read the datasets (not saved), and announce the phase it is in.

        The saved position must fit the datasets as they are now (another
        ``training_images`` or ``batch_size`` may leave fewer steps). The
        phase under way is announced (with the steps done) at the next step,
        when the displays of the restarted run observe.
        """
        super().restore()
        self.load_datasets()
        self._check_position("cannot continue from this checkpoint")
        self._announced = False

    def on_set(self, name: str) -> None:
        """Clearing ``pause_before_evaluation`` while paused wakes the clock (it is off)."""
        if (
            name == "pause_before_evaluation"
            and not self.pause_before_evaluation
            and self.state == State.PRECHECK_EVALUATION
            and self.sim.phase == "run"
        ):
            self._clock.wake()

    def waiting_for(self) -> Wait:
        if self.state == State.PRECHECK_EVALUATION and self.pause_before_evaluation:
            return Wait(
                f"{self.name} is paused (pause_before_evaluation = true)",
                (f"{self.name}/pause_before_evaluation", "false"),
            )
        return super().waiting_for()

    def load_datasets(self) -> None:
        """(Re-)read the datasets; they are not part of the saved state.

        A controller with ``epochs=0`` (prediction from trained weights) reads
        only its evaluation images, not the training and test sets.
        """
        limit = self.class_image_limit or None
        dtype = np.dtype(self.dtype)
        if self.epochs == 0:
            self.train_x = self.val_x = np.zeros((0, 0), dtype=dtype)
            self.train_y = self.val_y = np.zeros(0, dtype=np.int64)
            self.load_eval_images()
            return
        train = load_split("train", self.training_images or None, limit)
        if self.validation_split:
            train, validation = hold_out(train, self.validation_split, self.sim.seed)
        else:
            validation = load_split("test", self.test_images or None, limit)
        self.train_x, self.train_y = scale_pixels(train.images, dtype), train.labels
        self.val_x, self.val_y = scale_pixels(validation.images, dtype), validation.labels
        self.validation_images = len(validation)
        self.load_eval_images()

    def load_eval_images(self) -> None:
        if self.eval_images:
            found = read_eval_folder(self.eval_images, invert=self.invert_eval_images)
            self.eval_x = scale_pixels(found.images, np.dtype(self.dtype))
            self.eval_paths = found.paths
        else:
            self.eval_x, self.eval_paths = None, []

    def check_change(self, name: str, value: object) -> None:
        """Refuse a change the running state machine could not honour (it would hang or break).

        The step must stay inside the current phase's batches (with the
        batch size it will have), the state must have batches to send, and
        ``awaiting`` (a batch is in the chain) is the controller's own
        bookkeeping; ``order`` holds indices of training images. (Fewer
        ``epochs`` than the current one is fine: the run ends after the epoch
        it is in.)
        """
        super().check_change(name, value)
        if self.sim.phase != "run":
            return  # before the start nothing runs yet: the parameters alone decide
        # The datasets are loaded at setup and re-read on restore: until then
        # (--set on a restart), restore() checks the position instead.
        if name == "awaiting" and value != self.awaiting:
            raise ValueError("awaiting is kept by the controller (a batch is in the chain)")
        images = len(getattr(self, "train_x", ()))
        if name.startswith("order[") and not 0 <= value < images:
            raise ValueError(
                f"order holds indices of the {images} training images, 0 to {images - 1}"
            )
        if name in ("step", "state", "batch_size") and "train_x" in vars(self):
            after = {"step": self.step, "state": self.state, "batch_size": self.batch_size}
            after[name] = value
            problem = self._position_problem(**after)
            if problem:
                raise ValueError(problem)

    def _check_position(self, what: str) -> None:
        """StateError if the step (set before the start, or saved) does not fit the datasets."""
        problem = self._position_problem(self.step, self.state, self.batch_size)
        if problem:
            raise StateError(f"{self.name} {what}: {problem}")

    def _position_problem(self, step: int, state: State, batch_size: int) -> str | None:
        """Why ``step`` cannot be a position in ``state`` with ``batch_size`` (None: it can)."""
        if step < 0:
            return f"step must be >= 0, got {step}"
        phase, batches = self._batches(state, batch_size)
        if batches is not None and step >= batches:
            steps = f"steps 0 to {batches - 1}" if batches else "no steps"
            return f"{phase} has {steps} and the controller would be at step {step}"
        return None

    def _batches(self, state: State, batch_size: int) -> tuple[str, int | None]:
        """The phase ``state`` runs and how many steps it takes (None: it takes no steps)."""
        if state == State.TRAINING:
            return f"epoch {self.epoch} training", -(-len(self.train_x) // batch_size)
        if state == State.VALIDATION:
            return f"epoch {self.epoch} validation", -(-len(self.val_x) // batch_size)
        if state == State.EVALUATION:
            return "evaluation", len(self.eval_paths)
        return state.name, None

    # Counting -----------------------------------------------------------------
    @property
    def training_batches(self) -> int:
        return -(-len(self.train_x) // self.batch_size)

    @property
    def validation_batches(self) -> int:
        return -(-len(self.val_x) // self.batch_size)

    def _reset_metrics(self) -> None:
        self.loss_sum, self.reg_loss, self.correct, self.count = 0.0, 0.0, 0, 0

    # The state machine ------------------------------------------------------------
    def handle(self, event: Gradient | Outcome) -> None:
        self.awaiting = False
        self.loss_sum += event.loss_sum
        self.correct += event.correct
        self.count += event.count
        self.step += 1
        if not self._announced:
            self._announce(self.step - 1)
        self.sim.notify("step", done=self.step)
        if type(event) is Gradient:
            self.reg_loss = event.reg_loss
            self.stats["training_steps"] += 1
            self.sim.notify("step_end", step=self.stats["training_steps"], epoch=self.epoch)
            if self.step == self.training_batches:
                self._end_training_epoch(event)
        elif event.mode == Mode.VALIDATE:
            self.stats["validation_steps"] += 1
            if self.step == self.validation_batches:
                self._end_validation()
        else:
            self._report_prediction(event)

    def advance(self) -> bool:
        """Run the state machine one tick: send the next batch if the chain is free,
        move between phases; keep the clock ticking only while paused."""
        if self.awaiting:
            return True
        if not self._announced and self.step > 0:
            self._announce(self.step)
        state = self.state
        if state == State.TRAINING:
            if self.step == 0:
                self._start_epoch()
            self._send_training_batch()
        elif state == State.VALIDATION:
            if self.step == 0:
                self._announce(0)
            self._send(
                Mode.VALIDATE,
                self.val_x,
                self.val_y,
                self.step * self.batch_size,
                self.batch_size,
            )
        elif state == State.PRECHECK_EVALUATION:
            self.precheck_ticks += 1
            if self.precheck_ticks == 1:
                return False  # stay at least one tick
            if self.pause_before_evaluation:
                return True  # clock off while paused; on_set wakes it
            if self.reload_eval_images:
                self.load_eval_images()
            self.state = State.EVALUATION if self.eval_paths else State.COMPLETE
            self.step = 0
            return self.advance()
        elif state == State.EVALUATION:
            if self.step == 0:
                self._announce(0)
            self._send(Mode.PREDICT, self.eval_x, None, self.step, 1)
        else:
            self.primary_component_ok_to_end_sim()
        return True

    def _start_epoch(self) -> None:
        self._reset_metrics()
        count = len(self.train_x)
        self.order = self.rng.permutation(count) if self.shuffle else np.arange(count)
        self._announce(0)

    def _announce(self, done: int) -> None:
        """Notify ``phase``: the phase of the current state begins (``done`` steps in)."""
        self._announced = True
        name, total = self._batches(self.state, self.batch_size)
        if total is not None:
            self.sim.notify("phase", name=name, total=total, done=done)

    def _send_training_batch(self) -> None:
        start = self.step * self.batch_size
        indices = self.order[start : start + self.batch_size]
        self._send_batch(Mode.TRAIN, self.train_x[indices], self.train_y[indices])

    def _send(self, mode: Mode, images: np.ndarray, labels, start: int, size: int) -> None:
        stop = start + size
        self._send_batch(mode, images[start:stop], None if labels is None else labels[start:stop])

    def _send_batch(self, mode: Mode, inputs: np.ndarray, targets) -> None:
        self.awaiting = True
        self._forward_out.send(Batch(mode, self.step, inputs, targets))

    def _end_training_epoch(self, last: Gradient) -> None:
        data_loss = self.loss_sum / self.count
        self.last_training = {
            "train_loss": data_loss + self.reg_loss,
            "train_acc": self.correct / self.count,
            "learning_rate": last.update.learning_rate,
        }
        self.sim.print(
            f"epoch {self.epoch} training:\tacc: {self.correct / self.count:.3f} "
            f"loss: {data_loss + self.reg_loss:.3f} (data_loss: {data_loss:.3f} "
            f"reg_loss: {self.reg_loss:.3f}) lr: {last.update.learning_rate:.10f}"
        )
        self.state = State.VALIDATION
        self.step = 0
        self._reset_metrics()

    def _end_validation(self) -> None:
        val_loss, val_acc = self.loss_sum / self.count, self.correct / self.count
        self.sim.print(f"epoch {self.epoch} validation:\tacc: {val_acc:.3f} loss: {val_loss:.3f}")
        self.sim.notify(
            "epoch_end",
            epoch=self.epoch,
            step=self.stats["training_steps"],
            val_loss=val_loss,
            val_acc=val_acc,
            **self.last_training,
        )
        self.epoch += 1
        self.step = 0
        self._reset_metrics()
        self.state = State.TRAINING if self.epoch < self.epochs else State.PRECHECK_EVALUATION

    def _report_prediction(self, outcome: Outcome) -> None:
        self.stats["predictions"] += 1
        path = self.eval_paths[outcome.index]
        name = CLASS_NAMES[int(outcome.predictions[0])]
        self.predicted.append(name)
        self.sim.print(f"Prediction for {path} ...\tSurvey says ### {name}")
        self.sim.notify("prediction", image=path, predicted=name)
        if self.step == len(self.eval_paths):
            self.state = State.COMPLETE
