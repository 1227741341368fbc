"""Per-epoch metrics of a training run: ``metrics.csv`` and TensorBoard event files.

`MetricsLog` observes the element library's ``epoch_end`` notification and,
at every epoch, rewrites ``metrics.csv`` with one more row through
`nnsim.files.write_text` (a temporary file and a rename: a run killed or a
disk filled while writing leaves the previous file whole) and adds the
TensorBoard values (step = epoch), flushed, so a run that is killed keeps
every epoch it finished. TensorBoard event files are append-only logs that
tensorboardX appends to for the whole run (each record carries its own
CRC, so a reader stops at a torn last record); they are not whole-file
writes and do not go through the atomic helper.

TensorBoard tags are grouped as TensorBoard's dashboard groups them, by the
part before the slash (``TENSORBOARD_TAGS``): ``loss/train`` next to
``loss/val``, ``accuracy/train`` next to ``accuracy/val``. TensorBoard
scalars are float32 (24 bits of mantissa), which cannot hold a simulated
time such as 32280300000 ps exactly; so the exact time is written as text
(``time/simulated_ps``, as in ``metrics.csv``) and the scalar
``time/simulated_ms`` is only for plotting. On resume it first drops the rows of epochs that
will run again (those after the checkpoint) and opens TensorBoard with
``purge_step`` so that TensorBoard hides the stale events too.
"""

from __future__ import annotations

import csv
import io
import os
import sys
import time
from pathlib import Path
from typing import Any

from nnsim.errors import NnsimError
from nnsim.files import write_text
from nnsim.sim import Simulation
from nnsim.train.runfolder import METRICS_FILE, TENSORBOARD

COLUMNS = (
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "learning_rate",
    "simulated_time_ps",
    "wall_seconds",
)
TENSORBOARD_TAGS = {
    "train_loss": "loss/train",
    "val_loss": "loss/val",
    "train_acc": "accuracy/train",
    "val_acc": "accuracy/val",
    "learning_rate": "optimizer/learning_rate",
    "wall_seconds": "time/wall_seconds",
}
"""metrics.csv column -> TensorBoard scalar tag (float32)."""
SIMULATED_MS_TAG = "time/simulated_ms"  # float32 scalar: for plots, rounded
SIMULATED_PS_TAG = "time/simulated_ps"  # text: the exact integer


def read_metrics(path: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of a ``metrics.csv`` as numbers (``epoch`` and the time in ps as ints)."""
    path = Path(path)
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as file:
        rows = []
        for row in csv.DictReader(file):
            rows.append(
                {
                    key: int(value) if key in ("epoch", "simulated_time_ps") else float(value)
                    for key, value in row.items()
                    if key in COLUMNS
                }
            )
        return rows


def _csv_text(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def summary_writer_class():
    """tensorboardX's SummaryWriter, imported without torch when torch is not loaded yet.

    tensorboardX imports torch (about a second) only to accept torch tensors;
    nnsim logs Python floats, so a torch that is installed but unused is
    hidden for the duration of the import.
    """
    hide = "torch" not in sys.modules
    if hide:
        sys.modules["torch"] = None  # type: ignore[assignment]  # makes `import torch` fail
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise NnsimError(
            "writing TensorBoard logs needs tensorboardX: pip install 'tensorboardX>=2.6'"
        ) from None
    finally:
        if hide:
            del sys.modules["torch"]
    return SummaryWriter


class MetricsLog:
    """Writes ``metrics.csv`` and the TensorBoard events of a run folder, epoch by epoch."""

    def __init__(self, run_dir: Path, sim: Simulation, first_epoch: int = 0):
        self.path = run_dir / METRICS_FILE
        self.sim = sim
        kept = [row for row in read_metrics(self.path) if row["epoch"] < first_epoch]
        write_text(self.path, _csv_text(kept))
        self.rows: list[dict[str, Any]] = kept
        self._wall_offset = kept[-1]["wall_seconds"] if kept else 0.0
        self._started = time.perf_counter()
        writer = summary_writer_class()
        self._tensorboard = writer(
            logdir=str(run_dir / TENSORBOARD),
            purge_step=first_epoch or None,
            flush_secs=10,
            filename_suffix=f".{os.getpid()}.{time.time_ns()}",
        )

    def epoch_end(self, **metrics: Any) -> None:
        """``epoch_end`` observer: one row and its scalars, flushed."""
        row = {
            "epoch": metrics["epoch"],
            "train_loss": metrics.get("train_loss", float("nan")),
            "train_acc": metrics.get("train_acc", float("nan")),
            "val_loss": metrics["val_loss"],
            "val_acc": metrics["val_acc"],
            "learning_rate": metrics.get("learning_rate", float("nan")),
            "simulated_time_ps": self.sim.now,
            "wall_seconds": round(self._wall_offset + time.perf_counter() - self._started, 3),
        }
        self.rows.append(row)
        write_text(self.path, _csv_text(self.rows))
        for column, tag in TENSORBOARD_TAGS.items():
            self._tensorboard.add_scalar(tag, float(row[column]), row["epoch"])
        ps = row["simulated_time_ps"]
        self._tensorboard.add_scalar(SIMULATED_MS_TAG, ps / 10**9, row["epoch"])
        self._tensorboard.add_text(SIMULATED_PS_TAG, str(ps), row["epoch"])
        self._tensorboard.flush()

    def close(self) -> None:
        self._tensorboard.close()
