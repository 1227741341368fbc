"""Checkpoint storage backends: the contract every backend keeps, tampering, registry, opening.

The contract tests run against the directory backend, the fsspec backend
(``memory://``) and `DictStorage`, a third-party backend defined here that
implements only the byte-level operations and is registered as a user
would (`register_backend`): the format is the same for all of them.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnsim.checkpoint.storage as storage_module
from nnsim.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    DirStorage,
    FsspecStorage,
    Storage,
    checkpoint_name,
    open_checkpoint,
    open_storage,
    parse_checkpoint_name,
)
from nnsim.checkpoint.manifest import manifest_digest
from nnsim.checkpoint.safefile import MAX_MANIFEST_BYTES, too_large
from nnsim.checkpoint.storage import Listed, register_backend


class DictStorage(Storage):
    """A third-party backend: checkpoints as dicts of bytes in this process, under ``dict://``.

    It implements only the byte-level operations; saving, loading,
    verifying, scanning and the ``latest`` pointer come from nnsim's format.
    Every storage opened at one URL shares the same space.
    """

    spaces: dict[str, dict] = {}

    def __init__(self, location: str):
        self.url = location.rstrip("/")
        space = DictStorage.spaces.setdefault(self.url, {"lock": threading.Lock()})
        self.lock = space["lock"]
        self.committed: dict[str, dict[str, bytes]] = space.setdefault("committed", {})
        self.pointer: dict[str, bytes] = space.setdefault("pointer", {})

    def begin(self, checkpoint: str) -> tuple[str, dict]:
        return checkpoint, {}

    def write_file(
        self, staging: tuple[str, dict], file: str, chunks: Iterable[memoryview]
    ) -> None:
        data = b"".join(bytes(chunk) for chunk in chunks)
        with self.lock:
            staging[1][file] = data

    def commit(self, staging: tuple[str, dict]) -> None:
        name, files = staging
        with self.lock:
            if name in self.committed:
                raise FileExistsError(name)
            self.committed[name] = files

    def _file(self, checkpoint: str, file: str) -> bytes:
        try:
            return self.committed[checkpoint][file]
        except KeyError:
            raise FileNotFoundError(f"{checkpoint}/{file}") from None

    def read_file(self, checkpoint: str, file: str, what: str, limit: int) -> bytes:
        data = self._file(checkpoint, file)
        if len(data) > limit:
            raise too_large(what, limit)
        return data

    def file_size(self, checkpoint: str, file: str, what: str) -> int:
        return len(self._file(checkpoint, file))

    def list_entries(self) -> list[Listed]:
        return [Listed(name) for name in list(self.committed)]

    def remove(self, checkpoint: str) -> None:
        with self.lock:
            if self.committed.pop(checkpoint, None) is None:
                raise FileNotFoundError(checkpoint)

    def read_latest(self, what: str, limit: int) -> bytes:
        if "latest" not in self.pointer:
            raise FileNotFoundError("latest")
        return self.pointer["latest"][: limit + 1]

    def write_latest(self, data: bytes) -> None:
        self.pointer["latest"] = bytes(data)


register_backend("dict", DictStorage)
BACKENDS = ["dir", "memory", "dict"]


def root_of(backend: str, tmp_path: Path, folder: str) -> str:
    """A fresh storage location of ``backend``."""
    if backend == "dir":
        return str(tmp_path / folder)
    scheme = "memory" if backend == "memory" else "dict"
    return f"{scheme}://nnsim-test-{uuid.uuid4().hex}/{folder}"


@pytest.fixture(params=BACKENDS)
def storage(request, tmp_path: Path) -> Storage:
    return open_storage(root_of(request.param, tmp_path, "ckpts"))


# Raw access to a checkpoint's files, to damage them as a disk or a person could.
def read_raw(storage: Storage, name: str, file: str) -> bytes:
    if isinstance(storage, DirStorage):
        return (storage.root / name / file).read_bytes()
    if isinstance(storage, DictStorage):
        return storage.committed[name][file]
    return storage.fs.cat_file(storage._path(name, file))


def write_raw(storage: Storage, name: str, file: str, data: bytes) -> None:
    if isinstance(storage, DirStorage):
        (storage.root / name / file).write_bytes(data)
    elif isinstance(storage, DictStorage):
        storage.committed.setdefault(name, {})[file] = data
    else:
        storage.fs.pipe_file(storage._path(name, file), data)


def remove_raw(storage: Storage, name: str, file: str) -> None:
    if isinstance(storage, DirStorage):
        (storage.root / name / file).unlink()
    elif isinstance(storage, DictStorage):
        del storage.committed[name][file]
    else:
        storage.fs.rm(storage._path(name, file))


def state(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "dense1.weight": rng.standard_normal((8, 5)).astype(np.float32),
        "dense1.bias": np.zeros(5, np.float32),
        "steps": np.array(12, np.int64),
        "mask": rng.integers(0, 2, 7).astype(bool),
        "empty": np.zeros((0, 3), np.float16),
    }


MANIFEST = {
    "rng": {"bit_generator": "PCG64", "state": 2**127 + 3, "inc": 2**128 - 1},
    "huge": -(2**200),
    "floats": [0.1, 1e-310, -0.0, 1 / 3, 2.5e300, math.inf, -math.inf],
    "nested": {"queue": [[1000, 0, "dense1", "fwd"], [2000, 1, "relu", "bwd"]]},
    "text": "ünïcödé ✓",
    "flag": True,
    "none": None,
}


def assert_same_tensors(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for name, array in want.items():
        assert got[name].dtype == array.dtype and got[name].shape == array.shape, name
        assert np.array_equal(got[name], array), name


# The contract ---------------------------------------------------------------------
def test_save_then_load_round_trips_manifest_and_tensors_exactly(storage: Storage):
    tensors = state()
    saved = storage.save("ckpt_1_1000", {**MANIFEST, "nan": math.nan}, tensors)
    manifest, loaded = storage.load("ckpt_1_1000")
    assert_same_tensors(loaded, tensors)
    for key, value in MANIFEST.items():
        assert manifest[key] == value, key
    assert repr(manifest["floats"]) == repr(MANIFEST["floats"])  # -0.0 and 1e-310 exactly
    assert math.isnan(manifest["nan"])
    assert json.dumps(manifest, sort_keys=True) == json.dumps(saved, sort_keys=True)


def test_saved_manifest_records_format_files_tensors_and_its_own_checksum(storage: Storage):
    saved = storage.save("ckpt_1_1000", {"step": 3}, state())
    assert saved["format"] == "nnsim-checkpoint"
    assert saved["format_version"] == FORMAT_VERSION
    assert saved["name"] == "ckpt_1_1000"
    assert saved["created_at"].endswith("Z")
    assert saved["tensors"]["dense1.weight"] == {
        "file": "tensors-00000-of-00001.safetensors",
        "dtype": "F32",
        "shape": [8, 5],
    }
    ((file, entry),) = saved["files"].items()
    assert entry["bytes"] == len(read_raw(storage, "ckpt_1_1000", file))
    assert saved["manifest_sha256"] == manifest_digest(saved)
    assert storage.load_manifest("ckpt_1_1000") == saved


def test_the_returned_manifest_is_what_loading_gives_back(storage: Storage):
    saved = storage.save(
        "a_1_0", {"pair": (1, 2), 5: "int key", "created_at": "2020-01-01T00:00:00Z"}, {}
    )
    assert saved["pair"] == [1, 2] and saved["5"] == "int key"
    assert saved["created_at"] == "2020-01-01T00:00:00Z"
    assert storage.load("a_1_0")[0] == saved


def test_a_manifest_that_is_not_json_is_refused_and_nothing_is_written(storage: Storage):
    with pytest.raises(CheckpointError, match="cannot be saved as JSON"):
        storage.save("a_1_0", {"step": np.int64(3)}, state())
    with pytest.raises(CheckpointError, match="'x'.*numpy array"):
        storage.save("a_1_0", {}, {"x": [1, 2]})
    with pytest.raises(CheckpointError, match="'z'"):
        storage.save("a_1_0", {}, {"z": np.zeros(2, np.complex64)})
    assert storage.list() == []
    assert not storage.exists("a_1_0")
    if isinstance(storage, DirStorage) and storage.root.exists():
        assert [p.name for p in storage.root.iterdir() if p.name.startswith(".tmp-")] == []


def test_a_name_that_exists_is_refused_and_the_original_kept(storage: Storage):
    storage.save("ckpt_1_1000", {"v": 1}, state(1))
    with pytest.raises(CheckpointError, match="already exists"):
        storage.save("ckpt_1_1000", {"v": 2}, state(2))
    manifest, tensors = storage.load("ckpt_1_1000")
    assert manifest["v"] == 1
    assert_same_tensors(tensors, state(1))


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "..", "latest", "-x", "a b", "x" * 300])
def test_invalid_names_are_refused(storage: Storage, name: str):
    with pytest.raises(CheckpointError, match="invalid checkpoint name"):
        storage.save(name, {}, {})


def test_list_is_in_commit_order_by_number_then_time(storage: Storage):
    for name in ["ckpt_10_5", "ckpt_2_900", "ckpt_2_1000", "ckpt_1_99999", "best_3_7"]:
        storage.save(name, {}, {})
    assert storage.list() == ["ckpt_1_99999", "ckpt_2_900", "ckpt_2_1000", "best_3_7", "ckpt_10_5"]


def test_latest_is_the_last_saved_and_falls_back_to_the_newest_listed(storage: Storage):
    assert storage.list() == [] and storage.latest() is None
    storage.save("ckpt_2_200", {}, {})
    storage.save("ckpt_1_100", {}, {})
    assert storage.latest() == "ckpt_1_100"
    storage.delete("ckpt_1_100")
    assert storage.list() == ["ckpt_2_200"]
    assert storage.latest() == "ckpt_2_200"
    storage.save("ckpt_3_300", {}, {})
    write_raw(storage, "ckpt_3_300", "manifest.json", b"garbage")  # latest now names a broken one
    assert storage.latest() == "ckpt_2_200"


def test_delete_removes_a_checkpoint_and_refuses_a_missing_one(storage: Storage):
    storage.save("ckpt_1_100", {}, state())
    storage.delete("ckpt_1_100")
    assert storage.list() == [] and not storage.exists("ckpt_1_100")
    with pytest.raises(CheckpointError, match="does not exist"):
        storage.delete("ckpt_1_100")
    storage.save("ckpt_1_100", {"again": True}, {})  # the name is free again
    assert storage.load_manifest("ckpt_1_100")["again"] is True


def test_a_missing_checkpoint_is_refused_naming_the_ones_there(storage: Storage):
    with pytest.raises(CheckpointError, match="holds no complete checkpoint"):
        storage.load("ckpt_9_9")
    storage.save("ckpt_1_100", {}, {})
    with pytest.raises(CheckpointError, match=r"ckpt_9_9' does not exist; .*ckpt_1_100") as error:
        storage.load("ckpt_9_9")
    assert "\n" not in str(error.value)


def test_large_tensor_sets_are_sharded_and_load_back_identical(storage: Storage):
    rng = np.random.default_rng(5)
    tensors = {f"layer{i}.w": rng.standard_normal((1024, 2560), dtype=np.float32) for i in range(8)}
    tensors["bias"] = np.ones(3, np.float64)
    saved = storage.save("big_1_0", {}, tensors)  # 80 MiB
    assert len(saved["files"]) > 1
    assert len({entry["file"] for entry in saved["tensors"].values()}) == len(saved["files"])
    _, loaded = storage.load("big_1_0")
    assert_same_tensors(loaded, tensors)


def test_loaded_arrays_are_writable_and_changing_them_changes_no_file(storage: Storage):
    storage.save("ckpt_1_100", {}, state())
    _, tensors = storage.load("ckpt_1_100")
    tensors["dense1.weight"][:] = 42.0
    storage.verify("ckpt_1_100")
    _, again = storage.load("ckpt_1_100")
    assert_same_tensors(again, state())


# Tampering ---------------------------------------------------------------------------
def only_file(storage: Storage, name: str) -> str:
    (file,) = storage.load_manifest(name, verify=False)["files"]
    return file


def refused(storage: Storage, name: str, match: str, *, also_unverified: bool = True) -> None:
    """Loading and verifying ``name`` raise a one-line CheckpointError matching ``match``."""
    attempts = [lambda: storage.load(name), lambda: storage.verify(name)]
    if also_unverified:
        attempts.append(lambda: storage.load(name, verify=False))
    for attempt in attempts:
        with pytest.raises(CheckpointError, match=match) as error:
            attempt()
        assert "\n" not in str(error.value) and name in str(error.value)


def test_a_flipped_byte_in_a_tensor_file_is_refused(storage: Storage):
    storage.save("ckpt_1_100", {}, state())
    file = only_file(storage, "ckpt_1_100")
    data = bytearray(read_raw(storage, "ckpt_1_100", file))
    data[-20] ^= 0x01  # inside a tensor: the header still parses
    write_raw(storage, "ckpt_1_100", file, bytes(data))
    refused(storage, "ckpt_1_100", r"truncated/corrupt \(SHA-256 mismatch\)", also_unverified=False)


def test_a_truncated_tensor_file_is_refused(storage: Storage):
    storage.save("ckpt_1_100", {}, state())
    file = only_file(storage, "ckpt_1_100")
    write_raw(storage, "ckpt_1_100", file, read_raw(storage, "ckpt_1_100", file)[:-7])
    refused(storage, "ckpt_1_100", "is truncated/corrupt")
    with pytest.raises(CheckpointError, match="truncated"):
        storage.load_manifest("ckpt_1_100")


def test_a_deleted_tensor_file_is_refused(storage: Storage):
    storage.save("ckpt_1_100", {}, state())
    remove_raw(storage, "ckpt_1_100", only_file(storage, "ckpt_1_100"))
    refused(storage, "ckpt_1_100", "tensor file .* is missing")


def test_an_edited_manifest_is_refused(storage: Storage):
    storage.save("ckpt_1_100", {"learning_rate": 0.001}, state())
    text = read_raw(storage, "ckpt_1_100", "manifest.json").decode()
    assert '"learning_rate": 0.001' in text
    write_raw(storage, "ckpt_1_100", "manifest.json", text.replace("0.001", "0.1").encode())
    refused(storage, "ckpt_1_100", "manifest of checkpoint .* was modified or is corrupt")
    assert storage.list() == []
    assert (
        storage.load_manifest("ckpt_1_100", verify=False)["learning_rate"] == 0.1
    )  # to inspect it


def test_a_manifest_that_is_not_json_is_refused(storage: Storage):
    storage.save("ckpt_1_100", {}, state())
    write_raw(storage, "ckpt_1_100", "manifest.json", b'{"format": "nnsim-checkpoint", ')
    refused(storage, "ckpt_1_100", r"manifest of checkpoint .* is corrupt \(not a JSON object\)")


def rewrite_manifest(storage: Storage, name: str, change) -> None:
    """Change the manifest and recompute its checksum, as a careful forger would."""
    manifest = json.loads(read_raw(storage, name, "manifest.json"))
    change(manifest)
    manifest["manifest_sha256"] = manifest_digest(manifest)
    write_raw(storage, name, "manifest.json", json.dumps(manifest).encode())


def test_a_newer_format_is_refused_with_an_upgrade_hint(storage: Storage):
    storage.save("ckpt_1_100", {}, state())
    rewrite_manifest(storage, "ckpt_1_100", lambda m: m.update(format_version=FORMAT_VERSION + 1))
    refused(
        storage,
        "ckpt_1_100",
        rf"written by a newer nnsim \(format {FORMAT_VERSION + 1}\); upgrade nnsim",
    )


def test_a_tensor_file_that_disagrees_with_the_manifest_is_refused(storage: Storage):
    storage.save("ckpt_1_100", {}, state())

    def change(manifest):
        manifest["tensors"]["dense1.weight"]["shape"] = [5, 8]

    rewrite_manifest(storage, "ckpt_1_100", change)
    refused(
        storage,
        "ckpt_1_100",
        r"disagrees with the manifest \(tensor 'dense1.weight' is F32\[8, 5\]",
    )


@pytest.mark.parametrize("file", ["../../escape.safetensors", "/etc/passwd", "manifest.json"])
def test_file_names_in_a_forged_manifest_cannot_leave_the_checkpoint(storage: Storage, file: str):
    storage.save("ckpt_1_100", {}, state())

    def change(manifest):
        entry = manifest["files"].popitem()[1]
        manifest["files"][file] = entry
        for tensor in manifest["tensors"].values():
            tensor["file"] = file

    rewrite_manifest(storage, "ckpt_1_100", change)
    refused(storage, "ckpt_1_100", r"is malformed \(file name")


def test_a_manifest_is_data_and_cannot_cause_code_execution(storage: Storage, tmp_path: Path):
    marker = tmp_path / "PWNED"
    hostile = {
        "__reduce__": ["os.system", [f"touch {marker}"]],
        "py/object": "subprocess.Popen",
        "__class__": "os.system",
        "!!python/object/apply:os.system": [f"touch {marker}"],
        "type": "nnsim.checkpoint.dir_backend:DirStorage",
        "__import__": "os",
    }
    storage.save(
        "ckpt_1_100", hostile, {"cmd": np.frombuffer(f"touch {marker}".encode(), np.uint8)}
    )
    manifest, tensors = storage.load("ckpt_1_100")
    assert {key: manifest[key] for key in hostile} == hostile
    assert all(type(value) in (str, list) for value in (manifest[key] for key in hostile))
    assert bytes(tensors["cmd"]) == f"touch {marker}".encode()
    assert not marker.exists()


def write_raw_pointer(storage: Storage, data: bytes) -> None:
    if isinstance(storage, DirStorage):
        (storage.root / "latest").write_bytes(data)
    elif isinstance(storage, DictStorage):
        storage.pointer["latest"] = data
    else:
        storage.fs.pipe_file(storage._path("latest"), data)


def test_a_manifest_beyond_the_size_bound_is_refused_and_reported_by_scan(storage: Storage):
    storage.save("ckpt_1_100", {}, state())
    write_raw(storage, "ckpt_1_100", "manifest.json", b" " * (MAX_MANIFEST_BYTES + 1))
    with pytest.raises(CheckpointError, match=f"larger than {MAX_MANIFEST_BYTES} bytes"):
        storage.load_manifest("ckpt_1_100", verify=False)
    (entry,) = storage.scan()
    assert not entry.usable and "larger than" in entry.problem


def test_a_pointer_that_holds_no_name_is_passed_over(storage: Storage):
    storage.save("ckpt_1_100", {}, {})
    storage.save("ckpt_2_200", {}, {})
    for data in [b"\xff\xfe", b"../../etc", b"x" * 10_000]:
        write_raw_pointer(storage, data)
        name, skipped = storage.find_latest()
        assert name == "ckpt_2_200" and [entry.name for entry in skipped] == ["latest"]
        assert "\n" not in skipped[0].problem


def test_a_save_that_fails_half_way_leaves_nothing_and_the_name_free(storage: Storage, monkeypatch):
    storage.save("ckpt_1_100", {}, state())
    write_file = type(storage).write_file

    def failing(self, staging, file, chunks):
        if file == "manifest.json":
            raise OSError(28, "No space left on device")
        write_file(self, staging, file, chunks)

    monkeypatch.setattr(type(storage), "write_file", failing)
    with pytest.raises(CheckpointError, match=r"cannot write checkpoint .*ckpt_2_200.*space"):
        storage.save("ckpt_2_200", {}, state(2))
    assert storage.list() == ["ckpt_1_100"] and storage.latest() == "ckpt_1_100"
    assert not storage.exists("ckpt_2_200")
    monkeypatch.setattr(type(storage), "write_file", write_file)
    storage.save("ckpt_2_200", {"again": True}, state(2))
    manifest, tensors = storage.load("ckpt_2_200")
    assert manifest["again"] and storage.latest() == "ckpt_2_200"
    assert_same_tensors(tensors, state(2))


def test_the_format_bounds_reads_even_if_a_backend_ignores_the_limit(monkeypatch):
    storage = open_storage(f"dict://nnsim-test-{uuid.uuid4().hex}")
    storage.save("ckpt_1_100", {}, {})
    storage.committed["ckpt_1_100"]["manifest.json"] = b" " * (MAX_MANIFEST_BYTES + 1)
    monkeypatch.setattr(DictStorage, "read_file", lambda self, c, f, what, limit: self._file(c, f))
    with pytest.raises(CheckpointError, match=f"larger than {MAX_MANIFEST_BYTES} bytes"):
        storage.load_manifest("ckpt_1_100", verify=False)


# Interrupted writes --------------------------------------------------------------
def test_an_fsspec_save_interrupted_before_its_manifest_is_invisible_and_can_be_redone():
    storage = FsspecStorage(f"memory://nnsim-test-{uuid.uuid4().hex}")
    storage.save("ckpt_1_100", {}, state())
    storage.save("ckpt_2_200", {}, state())
    remove_raw(storage, "ckpt_2_200", "manifest.json")  # as if killed before the commit
    assert storage.list() == ["ckpt_1_100"]
    assert storage.latest() == "ckpt_1_100"
    with pytest.raises(CheckpointError, match="ckpt_2_200' is incomplete"):
        storage.load("ckpt_2_200")
    storage.save("ckpt_2_200", {"redone": True}, state(3))
    manifest, tensors = storage.load("ckpt_2_200")
    assert manifest["redone"] and storage.list() == ["ckpt_1_100", "ckpt_2_200"]
    assert_same_tensors(tensors, state(3))


def dead_pid() -> int:
    return int(
        subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )


def test_leftovers_of_killed_dir_writers_are_removed_but_never_complete_checkpoints(tmp_path: Path):
    storage = DirStorage(tmp_path)
    storage.save("ckpt_1_100", {}, state())
    pid = dead_pid()
    stale = tmp_path / f".tmp-ckpt_2_200-{pid}-0badf00d"
    stale.mkdir()
    (stale / "tensors-00000-of-00001.safetensors").write_bytes(b"partial")
    (tmp_path / f"latest.tmp-{pid}-12345678").write_text("ckpt_2_200\n")
    running = tmp_path / f".tmp-ckpt_3_300-{os.getppid()}-deadbeef"  # a live writer's
    running.mkdir()
    old = time.time() - 3600
    for path in (stale, running, tmp_path / f"latest.tmp-{pid}-12345678"):
        os.utime(path, (old, old))

    assert storage.list() == ["ckpt_1_100"]
    with pytest.raises(CheckpointError, match="ckpt_2_200' is incomplete"):
        storage.load("ckpt_2_200")
    with pytest.raises(CheckpointError, match="incomplete"):
        open_checkpoint(str(stale))
    storage.save("ckpt_4_400", {}, {})
    assert not stale.exists() and running.exists()
    assert not (tmp_path / f"latest.tmp-{pid}-12345678").exists()
    assert storage.list() == ["ckpt_1_100", "ckpt_4_400"]
    storage.verify("ckpt_1_100")


def test_cleanup_removes_leftovers_of_any_age_of_writers_no_longer_running(tmp_path: Path):
    storage = DirStorage(tmp_path)
    storage.save("ckpt_1_100", {}, {})
    leftover = tmp_path / f".tmp-ckpt_2_200-{dead_pid()}-00000000"
    leftover.mkdir()
    assert storage.cleanup() == [leftover.name]
    assert storage.list() == ["ckpt_1_100"]


# Names, registry, opening -------------------------------------------------------
@given(
    prefix=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_]{0,20}", fullmatch=True),
    number=st.integers(0, 10**12),
    time_ps=st.integers(0, 10**18),
)
def test_checkpoint_names_parse_back(prefix: str, number: int, time_ps: int):
    name = checkpoint_name(prefix, number, time_ps)
    assert name == f"{prefix}_{number}_{time_ps}"
    assert parse_checkpoint_name(name) == (prefix, number, time_ps)


@pytest.mark.parametrize("name", ["ckpt", "ckpt_1", "ckpt_x_2", "_1_2x", ".tmp-a_1_2-3-4"])
def test_other_names_do_not_parse(name: str):
    assert parse_checkpoint_name(name) is None


def test_checkpoint_name_refuses_negative_numbers():
    with pytest.raises(CheckpointError):
        checkpoint_name("ckpt", -1, 0)


def test_open_storage_picks_the_backend_from_the_location(tmp_path: Path):
    assert isinstance(open_storage(str(tmp_path)), DirStorage)
    assert isinstance(open_storage(tmp_path), DirStorage)
    local = open_storage(f"file://{tmp_path}")
    assert isinstance(local, DirStorage) and local.root == tmp_path
    assert isinstance(open_storage("memory://somewhere"), FsspecStorage)
    with pytest.raises(CheckpointError, match="cannot open checkpoint storage 'bogus://x'"):
        open_storage("bogus://x")


class RecordingStorage(FsspecStorage):
    """A third-party backend: keeps checkpoints in memory, under its own scheme."""

    opened: list[str] = []

    def __init__(self, location: str):
        RecordingStorage.opened.append(location)
        super().__init__("memory://recording/" + location.split("://", 1)[1])
        self.url = location


def test_a_backend_registered_by_entry_point_serves_its_scheme(monkeypatch):
    entry = EntryPoint("vault", f"{__name__}:RecordingStorage", storage_module.ENTRY_POINT_GROUP)
    monkeypatch.setattr(storage_module, "entry_points", lambda group: [entry])
    storage = open_storage("vault://run1")
    assert isinstance(storage, RecordingStorage) and RecordingStorage.opened[-1] == "vault://run1"
    storage.save("ckpt_1_1", {"x": 1}, state())
    found, name = open_checkpoint("vault://run1/ckpt_1_1")
    assert name == "ckpt_1_1" and found.load(name)[0]["x"] == 1


def test_a_broken_backend_registration_is_reported(monkeypatch):
    entry = EntryPoint("vault", "no_such_module:Storage", storage_module.ENTRY_POINT_GROUP)
    monkeypatch.setattr(storage_module, "entry_points", lambda group: [entry])
    with pytest.raises(CheckpointError, match="backend 'vault'.*cannot be loaded"):
        open_storage("vault://x")


def test_the_fsspec_backend_without_fsspec_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "fsspec", None)
    with pytest.raises(CheckpointError, match=r"needs fsspec: pip install 'nnsim\[remote\]'"):
        open_storage("memory://x")


@pytest.mark.parametrize("backend", BACKENDS)
def test_open_checkpoint_takes_a_checkpoint_its_manifest_or_its_storage(backend, tmp_path: Path):
    root = root_of(backend, tmp_path, "run")
    storage = open_storage(root)
    storage.save("ckpt_1_100", {}, {})
    storage.save("ckpt_2_200", {}, {})
    for location, name in [
        (storage.location("ckpt_1_100"), "ckpt_1_100"),
        (storage.location("ckpt_1_100") + "/", "ckpt_1_100"),
        (storage.location("ckpt_1_100") + "/manifest.json", "ckpt_1_100"),
        (root, "ckpt_2_200"),
    ]:
        found, found_name = open_checkpoint(location)
        assert (found.url, found_name) == (storage.url, name), location
    with pytest.raises(CheckpointError, match="ckpt_3_300' does not exist"):
        open_checkpoint(storage.location("ckpt_3_300"))
    with pytest.raises(CheckpointError, match="no complete checkpoint at"):
        open_checkpoint(root + "/elsewhere")
