"""Training from a config into a run folder, and resuming a run folder where it stopped.

``train(config)`` builds the model (`nnsim.train.build`), starts the
simulation (which reads the datasets: bad input fails before anything is
written), creates the run folder, turns on checkpoints with the config's
policy into ``<run>/checkpoints`` (keeping ``best`` and ``last`` linked),
records every epoch (``metrics.csv``, TensorBoard), runs to the end, and
writes ``predictions.csv`` and ``plots/training.png``.

``resume(run_dir)`` restores the run's newest checkpoint and does the same
from there. The checkpoint holds the whole simulation (weights, optimizer
moments, the controller's position and RNG, the event queue), so the resumed
run finishes exactly as an uninterrupted one: the same weights, the same
metrics rows (but ``wall_seconds``), the same checkpoint names.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnsim.checkpoint.manager import Policy, continue_lineage, enable
from nnsim.errors import Interrupted
from nnsim.progress import ProgressDisplay, choose_mode
from nnsim.sim import Simulation
from nnsim.train.build import build_simulation, dataset_overrides, find_controller
from nnsim.train.config import Config, ConfigError
from nnsim.train.metrics import MetricsLog
from nnsim.train.predictions import prediction_rows, write_predictions
from nnsim.train.runfolder import (
    BEST,
    CHECKPOINTS,
    PLOTS,
    RunCheckpoints,
    create_run_folder,
    open_run_folder,
)
from nnsim.units import format_time

CHECKPOINT_PREFIX = "checkpoint"
TRAINING_PLOT = "training.png"


class TrainingInterrupted(Interrupted):
    """The run was interrupted (Ctrl-C); its run folder can be resumed."""


@dataclass
class TrainResult:
    """What a training run left behind."""

    run_dir: Path
    sim: Simulation
    metrics: list[dict[str, Any]]
    predictions: list[dict[str, str]] = field(default_factory=list)
    finished: bool = True
    wall_seconds: float = 0.0
    resumed_from: str | None = None


class _Discard:
    """An output stream that keeps nothing (the simulation's prints in ``--quiet`` mode)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def _mode(progress: str) -> str:
    return choose_mode() if progress == "auto" else progress


def train(
    config: Config,
    *,
    progress: str = "auto",
    stop_after_epochs: int | None = None,
    console: Any = None,
) -> TrainResult:
    """Train ``config``'s model into a new run folder (see the module docstring).

    ``progress`` is ``auto``, ``rich``, ``plain`` or ``quiet``
    (`nnsim.progress`). ``stop_after_epochs=N`` leaves the run as a
    crash right after epoch N's checkpoint would (for tests and notebooks
    that exercise `resume`): no predictions, no plot.
    """
    mode = _mode(progress)
    sim = build_simulation(config, output=_Discard() if mode == "quiet" else None)
    sim.start()
    run_dir = create_run_folder(config)
    return _run(sim, run_dir, config, 0, mode, stop_after_epochs, console)


def resume(
    run_dir: str | Path,
    *,
    progress: str = "auto",
    stop_after_epochs: int | None = None,
    console: Any = None,
) -> TrainResult:
    """Continue the run in ``run_dir`` from its newest checkpoint (``checkpoints/last``)."""
    from nnsim.state import restore

    mode = _mode(progress)
    run_dir, config = open_run_folder(run_dir)
    storage = RunCheckpoints(run_dir / CHECKPOINTS, monitor=config.checkpoint.monitor)
    name = storage.latest()
    if name is None:
        raise ConfigError(
            f"run folder '{run_dir}' has no checkpoint to resume from; start it again with: "
            f"nnsim train {run_dir / 'config.toml'} --run-name NEW_NAME"
        )
    body, tensors = storage.load(name)
    sim = restore(
        body,
        tensors,
        output=_Discard() if mode == "quiet" else None,
        overrides=dataset_overrides(body, config),
    )
    continue_lineage(sim, body)  # retention keeps pruning the checkpoints before the resume
    controller = find_controller(sim)
    if controller.epoch >= controller.epochs and (run_dir / PLOTS / TRAINING_PLOT).exists():
        raise ConfigError(
            f"run '{run_dir}' already finished its {controller.epochs} epochs; "
            f"test it with: nnsim test --load {run_dir / CHECKPOINTS / BEST}"
        )
    result = _run(sim, run_dir, config, controller.epoch, mode, stop_after_epochs, console)
    result.resumed_from = name
    return result


def _run(
    sim: Simulation,
    run_dir: Path,
    config: Config,
    first_epoch: int,
    mode: str,
    stop_after_epochs: int | None,
    console: Any,
) -> TrainResult:
    options = config.checkpoint
    storage = RunCheckpoints(run_dir / CHECKPOINTS, monitor=options.monitor)
    policy = Policy(
        every_epochs=options.every_epochs,
        every_steps=options.every_steps,
        keep_last=options.keep_last,
        keep_best=options.keep_best,
        monitor=options.monitor,
    )
    manager = enable(
        sim, storage, prefix=CHECKPOINT_PREFIX, policy=policy, asynchronous=options.asynchronous
    )
    controller = find_controller(sim)
    progress = ProgressDisplay(
        mode, epochs=controller.epochs, done=first_epoch, console=console
    ).attach(sim)
    log = MetricsLog(run_dir, sim, first_epoch)
    sim.observe("epoch_end", log.epoch_end)
    if stop_after_epochs is not None:

        def stop(**metrics: Any) -> None:
            if metrics["epoch"] + 1 >= stop_after_epochs:
                sim.request_break(after_this_time=True)  # after this epoch's checkpoint

        sim.observe("epoch_end", stop)
    started = time.perf_counter()
    try:
        reason = sim.run()
    except KeyboardInterrupt:
        raise TrainingInterrupted(
            f"training interrupted in epoch {controller.epoch}; continue it with: "
            f"nnsim train --resume {run_dir}"
        ) from None
    finally:
        progress.close()
        log.close()
        manager.close()
    result = TrainResult(
        run_dir, sim, log.rows, wall_seconds=time.perf_counter() - started, finished=False
    )
    if reason == "break":
        return result
    if controller.eval_paths:
        write_predictions(run_dir, controller.eval_paths, controller.predicted)
        result.predictions = prediction_rows(controller.eval_paths, controller.predicted)
    from nnsim.train.plots import plot_training

    plot_training(log.rows, run_dir / PLOTS / TRAINING_PLOT, title=f"Training: {run_dir.name}")
    result.finished = True
    return result


def validated_on(sim: Simulation) -> str:
    """``on the test set`` or ``on 2000 held-out training images``: what the val_* metrics are."""
    controller = find_controller(sim)
    if controller.validation_split:
        return f"on {controller.validation_images} held-out training images"
    return "on the test set"


def summary(result: TrainResult, config: Config) -> list[str]:
    """The lines ``nnsim train`` ends with (all that ``--quiet`` prints)."""
    lines = [f"run folder: {result.run_dir}"]
    if result.metrics:
        last = result.metrics[-1]
        lines.append(
            f"epoch {last['epoch']}: training acc {last['train_acc']:.3f} "
            f"loss {last['train_loss']:.3f}, validation acc {last['val_acc']:.3f} "
            f"loss {last['val_loss']:.3f} ({validated_on(result.sim)})"
        )
    best = result.run_dir / CHECKPOINTS / BEST
    if best.is_symlink():
        monitor = config.checkpoint.monitor
        storage = RunCheckpoints(best.parent, monitor=monitor)
        name = best.resolve().name
        value = storage.load_manifest(name, verify=False).get("metrics", {}).get(monitor)
        shown = f" ({monitor} {value:.4f})" if isinstance(value, float) else ""
        lines.append(f"best checkpoint: {best} -> {name}{shown}")
    right = [row for row in result.predictions if row["true"]]
    if right:
        correct = sum(row["true"] == row["predicted"] for row in right)
        lines.append(f"evaluation images: {correct}/{len(right)} predicted right")
    lines.append(
        f"simulated time {format_time(result.sim.now)}, wall time {result.wall_seconds:.1f} s"
    )
    return lines
