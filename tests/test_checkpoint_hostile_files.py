"""A checkpoint folder crafted by a stranger: links, FIFOs, devices and huge files are refused in one line.

Every reader opens only regular files directly in the checkpoint folder
(no link followed, a FIFO never blocks, every read bounded), and no error
quotes the size or bytes of a file outside the checkpoint. Anything that
could hang runs in a subprocess or a thread with a time bound, so a hang
fails the test instead of the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import run_nnsim

from nnsim.checkpoint import (
    CheckpointError,
    DirStorage,
    FsspecStorage,
    open_checkpoint,
    read_safetensors,
    write_safetensors,
)
from nnsim.checkpoint.safefile import MAX_MANIFEST_BYTES, open_regular, read_regular

BOUND = 60  # seconds: far more than any of these needs, far less than a hang
SHARD = "tensors-00000-of-00001.safetensors"
NAME = "ckpt_1_100"


def bounded(function, *args, **kwargs):
    """``function(*args, **kwargs)`` in a thread that must finish within BOUND seconds."""
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = function(*args, **kwargs)
        except BaseException as error:  # handed to the test
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(BOUND)
    assert not thread.is_alive(), f"{function.__name__} hangs"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def one_line(error: pytest.ExceptionInfo) -> str:
    text = str(error.value)
    assert "\n" not in text
    return text


@pytest.fixture(params=["dir", "fsspec"])
def storage(request, tmp_path: Path):
    """A storage holding one checkpoint NAME (a float32 tensor of 1000 values) in a local folder."""
    root = tmp_path / "ckpt"
    store = DirStorage(root) if request.param == "dir" else FsspecStorage(f"file://{root}")
    store.save(NAME, {"simulated_time_ps": 100}, {"w": np.arange(1000, dtype=np.float32)})
    store.folder = root / NAME  # the checkpoint's folder, for the test to tamper with
    return store


def replace(path: Path, make) -> None:
    """Replace the file ``path`` by what ``make(path)`` creates (a link, a FIFO, a folder)."""
    path.unlink()
    make(path)


def readers(storage):
    """Every way a checkpoint is read through a storage."""
    return {
        "load": lambda: storage.load(NAME),
        "verify": lambda: storage.verify(NAME),
        "load_manifest": lambda: storage.load_manifest(NAME),
    }


# Files that are not what they seem -------------------------------------------------
def test_a_fifo_manifest_is_refused_by_every_reader_without_blocking(storage):
    replace(storage.folder / "manifest.json", os.mkfifo)
    for reader, read in readers(storage).items():
        with pytest.raises(CheckpointError) as error:
            bounded(read)
        assert "manifest.json" in one_line(error), reader
        assert "not a regular file" in str(error.value) or "not a plain file" in str(error.value)


def test_a_fifo_shard_is_refused_without_blocking(storage):
    replace(storage.folder / SHARD, os.mkfifo)
    for reader, read in readers(storage).items():
        with pytest.raises(CheckpointError) as error:
            bounded(read)
        assert SHARD in one_line(error), reader


def test_a_shard_linked_to_the_zero_device_is_refused_without_reading_it(storage):
    replace(storage.folder / SHARD, lambda path: path.symlink_to("/dev/zero"))
    for reader, read in readers(storage).items():
        with pytest.raises(CheckpointError, match="symbolic link") as error:
            bounded(read)
        assert SHARD in one_line(error), reader


def test_a_shard_linked_outside_the_folder_is_refused_and_its_size_never_shown(storage, tmp_path):
    outside = tmp_path / "secret.bin"
    outside.write_bytes(b"S" * 631)
    replace(storage.folder / SHARD, lambda path: path.symlink_to(outside))
    for reader, read in readers(storage).items():
        with pytest.raises(CheckpointError, match="symbolic link") as error:
            bounded(read)
        text = one_line(error)
        assert "631" not in text and "SSSS" not in text and "secret" not in text, reader


def test_a_manifest_linked_to_a_valid_manifest_elsewhere_is_refused(storage, tmp_path):
    elsewhere = tmp_path / "elsewhere.json"
    shutil.copy(storage.folder / "manifest.json", elsewhere)
    replace(storage.folder / "manifest.json", lambda path: path.symlink_to(elsewhere))
    with pytest.raises(CheckpointError, match="manifest.json .* is a symbolic link"):
        bounded(storage.load, NAME)


def test_a_folder_in_place_of_a_file_is_refused(storage):
    replace(storage.folder / SHARD, os.mkdir)
    with pytest.raises(CheckpointError, match="is a folder"):
        bounded(storage.load, NAME)


def test_a_manifest_beyond_the_size_bound_is_refused_without_reading_it(storage):
    manifest = storage.folder / "manifest.json"
    with open(manifest, "r+b") as file:
        file.truncate(MAX_MANIFEST_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(CheckpointError, match=f"larger than {MAX_MANIFEST_BYTES} bytes"):
        bounded(storage.load_manifest, NAME)


def test_a_fifo_latest_pointer_is_ignored_and_the_checkpoint_still_found(storage):
    root = storage.folder.parent
    replace(root / "latest", os.mkfifo)
    assert bounded(storage.latest) == NAME
    name, skipped = bounded(storage.find_latest)
    assert name == NAME and [entry.name for entry in skipped] == ["latest"]
    assert "FIFO" in skipped[0].problem or "not a plain file" in skipped[0].problem


def test_a_latest_pointer_linked_to_a_huge_device_is_never_read(storage):
    root = storage.folder.parent
    replace(root / "latest", lambda path: path.symlink_to("/dev/zero"))
    assert bounded(storage.latest) == NAME


def test_a_checkpoint_folder_that_is_a_link_inside_the_storage_is_not_followed(storage, tmp_path):
    """Only the folder a user names may be a link; one planted in a folder of checkpoints is not used."""
    root = storage.folder.parent
    planted = tmp_path / "planted"
    shutil.copytree(storage.folder, planted)
    (root / "ckpt_9_900").symlink_to(planted, target_is_directory=True)
    assert storage.list() == [NAME]
    assert bounded(storage.latest) == NAME
    problems = {entry.name: entry.problem for entry in storage.scan() if not entry.usable}
    assert "symbolic link" in problems["ckpt_9_900"]


def test_a_checkpoint_folder_the_user_names_may_be_a_link(tmp_path):
    """``run/checkpoints/best`` is a link the user chose: it is followed, its files still checked."""
    root = tmp_path / "ckpt"
    store = DirStorage(root)
    store.save(NAME, {}, {"w": np.ones(3, dtype=np.float32)})
    (root / "best").symlink_to(NAME, target_is_directory=True)
    found, name = open_checkpoint(root / "best")
    assert name == "best" and found.load(name)[1]["w"].tolist() == [1, 1, 1]
    assert store.list() == [NAME]  # an alias is not a checkpoint of its own
    assert all(entry.name != "best" for entry in store.scan())


# The one helper every reader uses ---------------------------------------------------
def test_open_regular_refuses_links_fifos_devices_and_folders(tmp_path):
    regular = tmp_path / "file"
    regular.write_bytes(b"data")
    (tmp_path / "link").symlink_to(regular)
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "device").symlink_to("/dev/null")
    (tmp_path / "folder").mkdir()
    os.close(open_regular(regular, "the file"))
    for name, kind in [
        ("link", "a symbolic link"),
        ("fifo", "a FIFO"),
        ("folder", "a folder"),
        ("device", "a symbolic link"),
    ]:
        with pytest.raises(CheckpointError, match=f"the {name} is {kind}"):
            bounded(open_regular, tmp_path / name, f"the {name}")
    with pytest.raises(CheckpointError, match="is a device"):
        open_regular(tmp_path / "device", "the device", follow_links=True)
    with pytest.raises(FileNotFoundError):
        open_regular(tmp_path / "nothing", "nothing")


def test_read_regular_never_reads_more_than_its_bound(tmp_path):
    path = tmp_path / "file"
    path.write_bytes(b"x" * 100)
    assert read_regular(path, "the file", 100) == b"x" * 100
    with pytest.raises(CheckpointError, match="the file is larger than 99 bytes"):
        read_regular(path, "the file", 99)


def test_read_safetensors_follows_a_link_the_caller_passes_but_refuses_a_fifo(tmp_path):
    path = tmp_path / "w.safetensors"
    write_safetensors(path, {"w": np.arange(4, dtype=np.float32)})
    (tmp_path / "link.safetensors").symlink_to(path)
    tensors, _ = read_safetensors(tmp_path / "link.safetensors")
    assert tensors["w"].tolist() == [0, 1, 2, 3]
    os.mkfifo(tmp_path / "fifo.safetensors")
    with pytest.raises(CheckpointError, match="FIFO"):
        bounded(read_safetensors, tmp_path / "fifo.safetensors")


# Through the real CLI ---------------------------------------------------------------
def assert_refused(result, *fragments: str) -> str:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnsim: error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def crafted(tmp_path: Path) -> Path:
    """A folder of checkpoints whose only checkpoint has a FIFO for its manifest."""
    root = tmp_path / "ckpt"
    DirStorage(root).save(NAME, {"simulated_time_ps": 100}, {"w": np.zeros(8, np.float32)})
    replace(root / NAME / "manifest.json", os.mkfifo)
    return root


@pytest.mark.parametrize(
    "command",
    [
        ["checkpoint", "verify"],
        ["checkpoint", "inspect"],
        ["run"],
        ["predict", "--images", "/nonexistent-images", "--checkpoint"],
    ],
)
def test_every_command_refuses_a_fifo_manifest_in_one_line_without_hanging(crafted, command):
    for target in (crafted / NAME, crafted):
        result = run_nnsim(*command, str(target), timeout=BOUND)
        assert_refused(result, "FIFO")


def test_list_shows_a_fifo_manifest_as_unusable_without_hanging(crafted):
    os.mkfifo(crafted / "latest.fifo")  # not an entry; only there to be ignored
    replace(crafted / "latest", os.mkfifo)
    result = run_nnsim("checkpoint", "list", str(crafted), timeout=BOUND)
    assert result.returncode == 0, result.stderr
    row = [line for line in result.stdout.splitlines() if line.startswith(NAME)]
    assert len(row) == 1 and "UNUSABLE" in row[0] and "FIFO" in row[0]
    assert "nnsim: warning: the latest pointer" in result.stderr
    assert "Traceback" not in result.stderr


def test_verify_of_a_shard_linked_to_a_root_only_file_does_not_reveal_its_size(tmp_path):
    root = tmp_path / "ckpt"
    DirStorage(root).save(NAME, {}, {"w": np.zeros(8, np.float32)})
    secret = Path("/etc/shadow") if Path("/etc/shadow").exists() else Path("/etc/passwd")
    replace(root / NAME / SHARD, lambda path: path.symlink_to(secret))
    line = assert_refused(
        run_nnsim("checkpoint", "verify", str(root / NAME), timeout=BOUND), "symbolic link"
    )
    assert str(os.lstat(secret).st_size) not in line.replace(NAME, "")
    assert "bytes, expected" not in line and str(secret) not in line


def test_a_manifest_that_is_the_zero_device_is_refused_through_the_cli(tmp_path):
    root = tmp_path / "ckpt"
    DirStorage(root).save(NAME, {}, {"w": np.zeros(8, np.float32)})
    replace(root / NAME / "manifest.json", lambda path: path.symlink_to("/dev/zero"))
    assert_refused(
        run_nnsim("checkpoint", "inspect", str(root / NAME), timeout=BOUND), "symbolic link"
    )
    # and a manifest that says nothing it should: still one line
    (root / NAME / "manifest.json").unlink()
    (root / NAME / "manifest.json").write_text(json.dumps([1, 2]))
    assert_refused(run_nnsim("checkpoint", "inspect", str(root / NAME), timeout=BOUND))
