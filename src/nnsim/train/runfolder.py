"""The run folder: one per training run, holding everything the run produced.

::

    <project>/<model>_<dataset>_<YYYY-MM-DD_HHMMSS>/
        config.toml          the resolved config (reads back to the same config)
        checkpoints/         the policy's checkpoints, plus the links best and last
        metrics.csv          one row per epoch
        tensorboard/         TensorBoard event files (the same scalars, step = epoch)
        plots/training.png   loss and accuracy curves, train vs validation
        plots/confusion.png  written by ``nnsim test``
        predictions.csv      the evaluation images' predicted (and true) classes

Paths in ``config.toml`` and ``predictions.csv`` that lie inside the
project (the folder that holds ``project_dir``, i.e. two levels above the
run folder) are stored relative to the run folder and read relative to it,
so a project moved or copied as a whole, with its data, keeps working;
paths outside it (``/usr/share/datasets/...``) stay absolute.

``checkpoints/best`` and ``checkpoints/last`` are relative symbolic links to
checkpoint folders, so every tool that takes a checkpoint takes them as
they are (``nnsim run``, ``nnsim test --load``, ``nnsim predict``,
``nnsim checkpoint ...``). `RunCheckpoints` moves them atomically after
every checkpoint written or deleted; the checkpoint storage does not list
them as checkpoints of their own.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import numpy as np

from nnsim.checkpoint import CheckpointError, DirStorage, Storage
from nnsim.checkpoint.manager import Policy
from nnsim.files import write_text
from nnsim.train.config import Config, ConfigError, load_config, map_paths, to_toml

CONFIG_FILE = "config.toml"
CHECKPOINTS = "checkpoints"
METRICS_FILE = "metrics.csv"
TENSORBOARD = "tensorboard"
PLOTS = "plots"
PREDICTIONS_FILE = "predictions.csv"
BEST, LAST = "best", "last"


def model_label(config: Config) -> str:
    """``mlp-128x128`` for hidden layers of 128 and 128, ``linear`` for none, a script's stem."""
    if config.model.script:
        return Path(config.model.script).stem
    hidden = config.model.hidden
    return "mlp-" + "x".join(str(size) for size in hidden) if hidden else "linear"


def run_folder_name(config: Config, when: datetime | None = None) -> str:
    """``<model>_<dataset>_<YYYY-MM-DD_HHMMSS>``, or ``output.run_name`` when set."""
    if config.output.run_name:
        return config.output.run_name
    stamp = (when or datetime.now()).strftime("%Y-%m-%d_%H%M%S")
    return f"{model_label(config)}_{config.dataset.name}_{stamp}"


def portable_path(path: str, run_dir: str | os.PathLike) -> str:
    """``path`` as a run folder stores it: relative to ``run_dir`` when inside its project.

    The project is the folder two levels above the run folder (the one that
    holds ``project_dir``); paths outside it, and relative or empty ones, are
    returned as they are.
    """
    if not path or not os.path.isabs(path):
        return path
    folder = os.path.abspath(run_dir)
    project = os.path.dirname(os.path.dirname(folder))
    if os.path.commonpath([os.path.abspath(path), project]) != project:
        return path
    return os.path.relpath(path, folder)


def create_run_folder(config: Config, when: datetime | None = None) -> Path:
    """Make a new run folder under ``output.project_dir`` and write ``config.toml`` into it."""
    project = Path(config.output.project_dir).expanduser()
    name = run_folder_name(config, when)
    folder = project / name
    try:
        project.mkdir(parents=True, exist_ok=True)
        if config.output.run_name:
            folder.mkdir()
        else:  # two runs started in the same second get -2, -3, ...
            for number in range(1, 1000):
                folder = project / (name if number == 1 else f"{name}-{number}")
                try:
                    folder.mkdir()
                    break
                except FileExistsError:
                    continue
    except FileExistsError:
        raise ConfigError(
            f"run folder '{folder}' already exists; choose another --run-name "
            f"or continue it with: nnsim train --resume {folder}"
        ) from None
    except OSError as error:
        raise ConfigError(
            f"cannot create run folder '{folder}' ({error.strerror or error}); "
            "check output.project_dir (--project-dir)"
        ) from None
    header = "nnsim training config, resolved (defaults < config file < command line)"
    portable = map_paths(config, lambda path: portable_path(path, folder))
    write_text(folder / CONFIG_FILE, to_toml(portable, header))
    return folder


def open_run_folder(folder: str | os.PathLike) -> tuple[Path, Config]:
    """(folder, its resolved config) of an existing run folder."""
    folder = Path(folder)
    if not (folder / CONFIG_FILE).is_file():
        what = "does not exist" if not folder.exists() else f"has no {CONFIG_FILE}"
        raise ConfigError(
            f"run folder '{folder}' {what}; pass a folder made by nnsim train "
            "(<project>/<model>_<dataset>_<time>)"
        )
    return folder, load_config(folder / CONFIG_FILE)


def run_folder_of(storage: Storage) -> Path | None:
    """The run folder whose ``checkpoints/`` ``storage`` is, or None (a bare checkpoint folder)."""
    if isinstance(storage, DirStorage):
        folder = storage.root.parent
        if storage.root.name == CHECKPOINTS and (folder / CONFIG_FILE).is_file():
            return folder
    return None


class RunCheckpoints(DirStorage):
    """A run's ``checkpoints/`` folder: a `DirStorage` that keeps ``best`` and ``last`` pointing right.

    ``last`` is the newest checkpoint; ``best`` the one with the best
    ``monitor`` metric (the policy's direction: max for accuracies, min
    otherwise; the earliest of equals). A link whose checkpoint is gone is
    moved or removed.
    """

    def __init__(self, location: str | os.PathLike, monitor: str = "val_loss"):
        super().__init__(location)
        self.policy = Policy(monitor=monitor)

    def save(self, name: str, manifest: Mapping, tensors: Mapping[str, np.ndarray]) -> dict:
        final = super().save(name, manifest, tensors)
        self.update_links()
        return final

    def delete(self, name: str) -> None:
        super().delete(name)
        self.update_links()

    def best(self) -> str | None:
        """The checkpoint with the best monitored metric, or None if none has it."""
        best, best_value = None, None
        for name in self.list():
            try:
                value = self.load_manifest(name, verify=False).get("metrics", {})
            except CheckpointError:
                continue
            value = value.get(self.policy.monitor) if isinstance(value, dict) else None
            if not isinstance(value, int | float) or value != value:
                continue
            if best_value is None or self.policy.better(value, best_value):
                best, best_value = name, value
        return best

    def update_links(self) -> None:
        names = self.list()
        self._link(LAST, names[-1] if names else None)
        self._link(BEST, self.best())

    def _link(self, link: str, target: str | None) -> None:
        path = self.root / link
        if target is None:
            if path.is_symlink():
                path.unlink()
            return
        if path.is_symlink() and os.readlink(path) == target:
            return
        temporary = self.root / f".tmp-{link}-{os.getpid()}-{secrets.token_hex(4)}"
        os.symlink(target, temporary, target_is_directory=True)
        try:
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
