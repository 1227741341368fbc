"""One bad checkpoint never hides or breaks the others, and every message says what really happened.

A folder of real checkpoints (three epochs of the example on a toy dataset)
is copied for each test and spoiled one entry at a time: a newer format, a
manifest that is not JSON, an interrupted write, a FIFO. ``list`` shows
each with its reason, ``run DIR`` restarts from the newest usable one with
a warning line, and a new run checkpointing into the folder skips them.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLE, checkpointed_run, example_args, make_idx_dataset, run_nnsim
from test_checkpoint_run import build, results

from nnsim.checkpoint import CheckpointError, DirStorage, open_checkpoint, open_storage
from nnsim.checkpoint.errors import CheckpointWarning
from nnsim.checkpoint.manager import Policy, enable
from nnsim.checkpoint.manifest import manifest_digest

BOUND = 120  # seconds for one CLI run: a hang fails the test


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """Three epochs with a checkpoint after each (checkpoint_1.., _2.., _3..)."""
    root = tmp_path_factory.mktemp("bad_entries")
    dataset = make_idx_dataset(root / "toy")
    checkpoints = root / "checkpoints"
    names = checkpointed_run(checkpoints, example_args(dataset, None, "--epochs=3"))
    return {"dir": checkpoints, "dataset": dataset, "names": names}


@pytest.fixture
def folder(original, tmp_path) -> Path:
    copy = tmp_path / "checkpoints"
    shutil.copytree(original["dir"], copy)
    return copy


def reseal(manifest_path: Path, **changes) -> None:
    """Change manifest fields and recompute its own SHA-256, as a forger would."""
    manifest = json.loads(manifest_path.read_text())
    manifest.update(changes)
    manifest["manifest_sha256"] = manifest_digest(manifest)
    manifest_path.write_text(json.dumps(manifest))


def spoil_all(folder: Path, names: list[str]) -> None:
    """checkpoint 3: newer format; 2: not JSON; plus an interrupted write (7) and a FIFO manifest (8)."""
    reseal(folder / names[2] / "manifest.json", format_version=99)
    (folder / names[1] / "manifest.json").write_text("{not json")
    (folder / "checkpoint_7_0").mkdir()
    shutil.copytree(folder / names[0], folder / "checkpoint_8_0")
    (folder / "checkpoint_8_0" / "manifest.json").unlink()
    os.mkfifo(folder / "checkpoint_8_0" / "manifest.json")


def warnings_of(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("nnsim: warning: ")]


# list ------------------------------------------------------------------------------
def test_list_shows_every_entry_and_why_the_bad_ones_cannot_be_used(folder, original):
    names = original["names"]
    spoil_all(folder, names)
    result = run_nnsim("checkpoint", "list", str(folder), timeout=BOUND)
    assert result.returncode == 0, result.stderr
    rows = {
        line.split()[0]: line
        for line in result.stdout.splitlines()[1:]
        if not line.startswith("best:")
    }
    assert list(rows) == [*names, "checkpoint_7_0", "checkpoint_8_0"]
    assert "UNUSABLE" not in rows[names[0]] and "epoch 0" in rows[names[0]]
    assert "UNUSABLE" in rows[names[2]] and "newer nnsim (format 99)" in rows[names[2]]
    assert "UNUSABLE" in rows[names[1]] and "corrupt" in rows[names[1]]
    assert "UNUSABLE" in rows["checkpoint_7_0"] and "incomplete" in rows["checkpoint_7_0"]
    assert "UNUSABLE" in rows["checkpoint_8_0"] and "FIFO" in rows["checkpoint_8_0"]
    assert "Traceback" not in result.stderr


# run DIR ---------------------------------------------------------------------------
def test_run_dir_skips_a_newer_format_latest_with_a_warning_and_restarts_the_one_before(
    folder, original
):
    names = original["names"]
    reseal(folder / names[2] / "manifest.json", format_version=99)
    direct = run_nnsim("run", str(folder / names[1]), timeout=BOUND)
    assert direct.returncode == 0, direct.stderr
    result = run_nnsim("run", str(folder), timeout=BOUND)
    assert result.returncode == 0, result.stderr
    assert results(result.stdout) == results(direct.stdout)
    (warning,) = warnings_of(result.stderr)
    assert f"skipped {names[2]}" in warning and "newer nnsim" in warning


def test_run_dir_whose_entries_are_all_bad_names_the_reason_in_one_line(folder, original):
    names = original["names"]
    spoil_all(folder, names)
    shutil.rmtree(folder / names[0])
    result = run_nnsim("run", str(folder), timeout=BOUND)
    assert result.returncode == 1, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("nnsim: error: no usable checkpoint at")
    assert "4 entries unusable" in line and "checkpoint_8_0" in line and "FIFO" in line


def test_a_new_checkpointing_run_into_a_folder_with_bad_entries_skips_them(folder, original):
    names = original["names"]
    spoil_all(folder, names)
    result = run_nnsim(
        "run",
        EXAMPLE,
        "--checkpoint-enable",
        "--checkpoint-every-epochs=1",
        "--checkpoint-keep-last=1",
        f"--checkpoint-dir={folder}",
        "--",
        *example_args(original["dataset"], None, "--epochs=2"),
        timeout=BOUND,
    )
    assert result.returncode == 0, result.stderr
    warned = warnings_of(result.stderr)
    for name in (names[1], names[2], "checkpoint_7_0", "checkpoint_8_0"):
        assert sum(f"skipped {name}:" in line for line in warned) == 1, (name, warned)
        assert os.path.lexists(folder / name)  # never deleted
    assert (folder / names[0]).is_dir()  # another run's checkpoint: kept
    storage = DirStorage(folder)
    mine = [name for name in storage.list() if name != names[0]]
    assert len(mine) == 1 and mine[0].startswith("checkpoint_10_")  # numbered after 8, 9 pruned


# Honest messages ---------------------------------------------------------------------
def test_run_of_a_folder_without_a_manifest_says_it_is_not_a_checkpoint(tmp_path):
    empty = tmp_path / "C"
    empty.mkdir()
    (empty / "notes.txt").write_text("hello")
    result = run_nnsim("run", str(empty), timeout=BOUND)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"nnsim: error: not a checkpoint: '{empty}' has no manifest.json")
    assert "script" not in line


def test_a_pruned_checkpoint_is_reported_as_missing_not_as_interrupted(tmp_path):
    storage = DirStorage(tmp_path / "ckpt")
    for number in (1, 2):
        storage.save(f"checkpoint_{number}_{number}00", {}, {"w": np.zeros(2, np.float32)})
    storage.delete("checkpoint_1_100")  # what keep-last does
    with pytest.raises(CheckpointError) as error:
        open_checkpoint(storage.location("checkpoint_1_100"))
    text = str(error.value)
    assert "does not exist" in text and "keep-last" in text and "checkpoint_2_200" in text
    assert "interrupted" not in text and "incomplete" not in text
    result = run_nnsim("run", "--load-checkpoint", storage.location("checkpoint_1_100"))
    assert result.returncode == 1 and "does not exist" in result.stderr
    assert "interrupted" not in result.stderr


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_a_committed_checkpoint_whose_latest_pointer_fails_is_a_warning_and_the_run_goes_on(
    tmp_path, monkeypatch, asynchronous
):
    dataset = make_idx_dataset(tmp_path / "toy")

    def disk_full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(DirStorage, "write_latest", disk_full)
    sim = build(dataset, io.StringIO(), epochs=2)
    manager = enable(
        sim, str(tmp_path / "ckpt"), policy=Policy(every_epochs=1), asynchronous=asynchronous
    )
    with pytest.warns(CheckpointWarning, match="latest pointer .* could not be updated") as caught:
        reason = sim.run()
        manager.close()  # no error: nothing was lost
    assert reason != "checkpoint failed" and sim.finished
    assert len([w for w in caught if issubclass(w.category, CheckpointWarning)]) == 2
    storage = open_storage(str(tmp_path / "ckpt"))
    assert len(storage.list()) == 2
    for name in storage.list():
        storage.verify(name)


def test_a_committed_checkpoint_whose_latest_pointer_fails_is_one_warning_line_in_the_cli(
    tmp_path,
):
    """Through the real CLI: `latest` is a folder, so replacing it fails; the run still ends well."""
    dataset = make_idx_dataset(tmp_path / "toy")
    folder = tmp_path / "ckpt"
    (folder / "latest").mkdir(parents=True)
    (folder / "latest" / "keep").write_text("x")  # a non-empty folder cannot be replaced
    result = run_nnsim(
        "run",
        EXAMPLE,
        "--checkpoint-enable",
        "--checkpoint-every-epochs=1",
        f"--checkpoint-dir={folder}",
        "--",
        *example_args(dataset, None, "--epochs=2"),
        timeout=BOUND,
    )
    assert result.returncode == 0, result.stderr
    assert "Simulation is complete" in result.stdout
    warned = [line for line in warnings_of(result.stderr) if "latest pointer" in line]
    assert len(warned) == 2 and all("is written" in line for line in warned)
    assert len(DirStorage(folder).list()) == 2
