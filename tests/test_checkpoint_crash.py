"""Crash safety: a writer killed (SIGKILL) at random moments never leaves a bad checkpoint visible.

A subprocess saves ~24 MiB checkpoints in a loop (and deletes old ones,
keeping three, as a retention policy would); the test kills it after a
seeded random delay, many times, and after every kill checks what a
restarted run would see.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nnsim.checkpoint import DirStorage, open_checkpoint

SRC = Path(__file__).resolve().parents[1] / "src"
KILLS = 18

WRITER = """
import sys
import numpy as np
from nnsim.checkpoint import DirStorage, checkpoint_name, parse_checkpoint_name

storage = DirStorage(sys.argv[1])
names = storage.list()
number = parse_checkpoint_name(names[-1])[1] + 1 if names else 0
print("ready", flush=True)
while True:
    tensors = {
        "weight": np.full((1500, 2000), number, np.float32),       # 12 MB
        "adam.m": np.full((1500, 2000), -number, np.float32),      # 12 MB
        "step": np.array(number, np.int64),
    }
    storage.save(checkpoint_name("ckpt", number, number * 1000), {"number": number}, tensors)
    for old in storage.list()[:-3]:
        storage.delete(old)
    number += 1
"""


def check_consistent(storage: DirStorage) -> list[str]:
    """Everything listed loads, verifies and holds what its writer put there."""
    names = storage.list()
    assert not [name for name in names if name.startswith(".")]
    for name in names:
        manifest, tensors = storage.load(name, verify=True)
        number = manifest["number"]
        assert name == f"ckpt_{number}_{number * 1000}"
        assert tensors["step"] == number
        assert (tensors["weight"] == number).all() and (tensors["adam.m"] == -number).all()
    latest = storage.latest()
    assert (latest is None) == (not names)
    if latest is not None:
        assert latest in names
        found, name = open_checkpoint(storage.url)
        assert name == latest
        found.verify(name)
    return names


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_writer_killed_at_random_moments_never_leaves_a_bad_checkpoint_visible(tmp_path: Path):
    root = tmp_path / "ckpts"
    storage = DirStorage(root)
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    rng = random.Random(20240611)
    newest_seen = -1
    incomplete_seen = 0
    for _ in range(KILLS):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(root)], env=env, stdout=subprocess.PIPE, text=True
        )
        try:
            assert writer.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.0, 0.35))
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait()
            writer.stdout.close()
        assert writer.returncode == -signal.SIGKILL, "the writer stopped on its own"
        names = check_consistent(storage)
        if names:
            number = int(names[-1].split("_")[1])
            assert number >= newest_seen  # a committed checkpoint never disappears on its own
            newest_seen = number
        incomplete_seen += sum(1 for p in root.iterdir() if p.name.startswith(".tmp-"))
    assert newest_seen >= KILLS // 2, "the writer hardly ever committed: kills came too early"
    assert incomplete_seen > 0, "no kill interrupted a write: the test tested nothing"

    storage.cleanup()
    assert (
        sorted(p.name for p in root.iterdir() if p.name.startswith((".tmp-", "latest.tmp"))) == []
    )
    check_consistent(storage)


def test_loading_while_a_writer_runs_sees_only_complete_checkpoints(tmp_path: Path):
    root = tmp_path / "ckpts"
    storage = DirStorage(root)
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 1.5
        loads = 0
        while time.monotonic() < deadline:
            name = storage.latest()
            if name is None:
                continue
            try:
                manifest, tensors = storage.load(name)
            except Exception as error:  # deleted by retention between latest() and load()
                assert "does not exist" in str(error), error
                continue
            assert (tensors["weight"] == manifest["number"]).all()
            loads += 1
        assert loads > 0
    finally:
        writer.kill()
        writer.wait()
        writer.stdout.close()
    assert np.all([n.startswith("ckpt_") for n in storage.list()])
