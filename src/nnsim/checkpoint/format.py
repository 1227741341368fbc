"""The checkpoint format, written once on top of any backend's byte-level operations.

A backend (`nnsim.checkpoint.storage.Storage`) only moves bytes: it writes
a file into a staging area and commits it, reads a file bounded, lists and
removes entries, and reads and replaces the ``latest`` pointer. Everything
a checkpoint *means* lives here, the same for every backend:

* **save**: tensors are sharded (`shard_tensors`) and laid out as
  safetensors files (`plan_file`); each file is written by the backend
  while a second thread hashes the same memory (SHA-256 is the slow part);
  the manifest (`build_manifest`: format, version, file and tensor tables,
  its own SHA-256) is written last; the backend commits; then ``latest``.
  The steps are public (`plan_files`, `staged`, `write_files`, `commit`,
  `point_latest`) so that the ranks of a parallel run can each write
  their own files into one staging area (`nnsim.parallel.checkpoint`).
* **load / verify / load_manifest**: the manifest is read bounded and
  checked (`parse_manifest`, schema included); each file's size, then with
  ``verify`` its SHA-256 (files hashed in parallel threads), then its
  header against the manifest (`check_header`) before any array is made.
* **scan**: every entry that is or looks like a checkpoint, usable or with
  its one-line problem; nothing is raised for a bad entry.
* **the pointer**: ``latest`` holds one checkpoint name.

The errors are the same one-line `CheckpointError` texts for every backend.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from nnsim.checkpoint.errors import CheckpointError
from nnsim.checkpoint.manifest import (
    MANIFEST_FILE,
    build_manifest,
    check_header,
    check_name,
    digest_error,
    hash_workers,
    is_valid_name,
    order_key,
    parse_checkpoint_name,
    parse_manifest,
    shard_tensors,
    size_error,
    tensor_entries,
)
from nnsim.checkpoint.safefile import MAX_MANIFEST_BYTES, MAX_POINTER_BYTES, too_large
from nnsim.checkpoint.tensorfile import arrays_from_buffer, hash_buffer, parse_header, plan_file


class Storage(Protocol):
    """What the format needs of a backend: `nnsim.checkpoint.storage.Storage` provides it.

    Named here as a protocol, so that the format does not import the storage
    module that builds on it (no import cycle).
    """

    url: str

    def begin(self, checkpoint: str) -> object: ...
    def write_file(self, staging: object, file: str, chunks) -> None: ...
    def commit(self, staging: object) -> None: ...
    def abort(self, staging: object) -> None: ...
    def read_file(self, checkpoint: str, file: str, what: str, limit: int) -> bytes: ...
    def file_size(self, checkpoint: str, file: str, what: str) -> int: ...
    def map_file(self, checkpoint: str, file: str, what: str, size: int): ...
    def has_file(self, checkpoint: str, file: str) -> bool: ...
    def has_leftovers(self, checkpoint: str) -> bool: ...
    def list_entries(self) -> list: ...
    def remove(self, checkpoint: str) -> None: ...
    def read_latest(self, what: str, limit: int) -> bytes: ...
    def write_latest(self, data: bytes) -> None: ...
    def exists(self, name: str) -> bool: ...
    def list(self) -> list[str]: ...
    def location(self, name: str) -> str: ...
    def pointer_failed(self, name: str, error: OSError) -> None: ...


#: Names of entries being written (or deleted) start with this; they are never checkpoints.
STAGING_PREFIX = ".tmp-"
#: The problem of a link found among the checkpoints.
LINK = "a symbolic link"


@dataclass(frozen=True)
class CheckpointEntry:
    """One entry of a storage: a usable checkpoint (``manifest``) or why it is not (``problem``).

    ``problem`` is the one line a reader of it would get: a newer format, a
    malformed or tampered manifest, an incomplete write, a file that is a
    link or a FIFO. Exactly one of ``manifest`` and ``problem`` is set.
    """

    name: str
    manifest: dict | None = None
    problem: str | None = None

    @property
    def usable(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class Listed:
    """One entry a backend lists: ``kind`` None for a folder (it may hold a checkpoint), else what it is.

    ``kind`` is said to people: ``"a symbolic link"`` (`LINK`), ``"a FIFO
    (named pipe)"``, ``"a file"``. A backend leaves out its staging areas
    and entries that are not checkpoints by its own conventions (the
    directory backend's aliases such as ``best -> ckpt_3_100``).
    """

    name: str
    kind: str | None = None


def _file_label(file: str, label: str) -> str:
    return f"tensor file '{file}' of checkpoint '{label}'"


# Writing ----------------------------------------------------------------------------
def save(store: Storage, name: str, manifest: Mapping, tensors: Mapping[str, np.ndarray]) -> dict:
    """Write checkpoint ``name`` through ``store``'s byte operations; return its final manifest."""
    check_name(name)
    plans = plan_files(tensors, name)
    with staged(store, name) as staging:
        files, entries = write_files(store, staging, plans)
        final = commit(store, staging, name, manifest, files, entries)
    point_latest(store, name)
    return final


def plan_files(tensors: Mapping[str, np.ndarray], name: str, prefix: str = "tensors") -> dict:
    """The safetensors files (``{file: plan}``) that hold ``tensors`` in checkpoint ``name``.

    ``prefix`` starts each file's name: the parallel run gives each rank its
    own (``tensors-rank00001``), so that every rank writes its own files.
    """
    shards = shard_tensors(tensors, prefix)
    return {file: plan_file(group, {"nnsim_checkpoint": name}) for file, group in shards.items()}


@contextlib.contextmanager
def staged(store: Storage, name: str):
    """A staging area of ``store`` for checkpoint ``name``, aborted if the block fails.

    Errors come out as the one-line `CheckpointError` of a failed write.
    """
    label = store.location(name)
    if store.exists(name):
        raise duplicate(store, name)
    try:
        staging = store.begin(name)
        try:
            yield staging
        except FileExistsError:
            store.abort(staging)
            raise duplicate(store, name) from None
        except BaseException:
            store.abort(staging)
            raise
    except OSError as error:
        raise write_error(store, name, label, error) from error


def write_error(store: Storage, name: str, label: str, error: OSError) -> CheckpointError:
    return CheckpointError(
        f"cannot write checkpoint '{label}' ({getattr(error, 'strerror', None) or error}); "
        f"check the free space and permissions of '{store.url}'"
    )


def write_files(store: Storage, staging: object, plans: dict) -> tuple[dict, dict]:
    """Write planned files into ``staging``: the manifest's ``files`` and ``tensors`` entries.

    An OSError goes up as it is (`staged` says it in one line)."""
    entries: dict[str, dict] = {}
    for file, plan in plans.items():
        entries.update(tensor_entries(file, plan.entries))
    return _write_shards(store, staging, plans), entries


def commit(
    store: Storage, staging: object, name: str, manifest: Mapping, files: dict, entries: dict
) -> dict:
    """Write the manifest (the files' table and tensors' entries) and commit ``staging``."""
    final, text = build_manifest(manifest, name, files, entries, store.location(name))
    store.write_file(staging, MANIFEST_FILE, [memoryview(text)])
    store.commit(staging)
    return final


def point_latest(store: Storage, name: str) -> None:
    """Point ``latest`` at the committed ``name``: a failure here loses nothing (a warning)."""
    try:
        store.write_latest(f"{name}\n".encode())
    except OSError as error:
        store.pointer_failed(name, error)


def _write_shards(store: Storage, staging: object, plans: dict) -> dict[str, dict]:
    """Write every planned file into ``staging``; return the manifest's ``files`` table.

    Each file gets a writer thread and a hasher thread reading the same
    array memory: hashing a file is sequential, so the hashes of several
    shards run side by side while the writers stream the data (file
    writes and hashlib both release the GIL).
    """
    if not plans:
        return {}
    with ThreadPoolExecutor(2 * len(plans), thread_name_prefix="nnsim-checkpoint") as pool:
        digests = {file: pool.submit(plan.sha256) for file, plan in plans.items()}
        writes = [pool.submit(store.write_file, staging, f, p.pieces()) for f, p in plans.items()]
        for write in writes:
            write.result()
        return {
            file: {"sha256": digests[file].result(), "bytes": plan.nbytes}
            for file, plan in plans.items()
        }


def duplicate(store: Storage, name: str) -> CheckpointError:
    return CheckpointError(
        f"checkpoint '{store.location(name)}' already exists; choose another name or delete it first"
    )


def delete(store: Storage, name: str) -> None:
    """Remove checkpoint ``name`` (the backend makes it disappear at once, then frees its files)."""
    check_name(name)
    try:
        store.remove(name)
    except FileNotFoundError:
        raise missing(store, name, incomplete=False) from None
    except OSError as error:
        raise CheckpointError(
            f"cannot delete checkpoint '{store.location(name)}' "
            f"({getattr(error, 'strerror', None) or error}); check the permissions of the storage"
        ) from error


# Reading ----------------------------------------------------------------------------
def read_bounded(store: Storage, name: str, file: str, what: str, limit: int) -> bytes:
    """The bytes of ``file``, refused above ``limit`` whatever the backend's own bound."""
    data = store.read_file(name, file, what, limit)
    if len(data) > limit:
        raise too_large(what, limit)
    return data


def read_manifest(store: Storage, name: str, *, verify: bool) -> dict:
    """The parsed manifest of ``name`` (its checksum checked with ``verify``)."""
    if isinstance(name, str) and name.startswith(STAGING_PREFIX):
        raise missing(store, name, incomplete=True)
    check_name(name)
    label = store.location(name)
    try:
        data = read_bounded(
            store,
            name,
            MANIFEST_FILE,
            f"{MANIFEST_FILE} of checkpoint '{label}'",
            MAX_MANIFEST_BYTES,
        )
    except FileNotFoundError:
        raise missing(store, name, incomplete=store.has_leftovers(name)) from None
    return parse_manifest(data, label, verify=verify)


def file_size(store: Storage, name: str, file: str) -> int | None:
    """The size of tensor file ``file`` of ``name``, None if it is missing."""
    try:
        return store.file_size(name, file, _file_label(file, store.location(name)))
    except FileNotFoundError:
        return None


def load_manifest(store: Storage, name: str, *, verify: bool = True) -> dict:
    """The manifest of ``name``; with ``verify``, its checksum and its files' sizes are checked."""
    manifest = read_manifest(store, name, verify=verify)
    if verify:
        for file, entry in manifest["files"].items():
            size = file_size(store, name, file)
            if size != entry["bytes"]:
                raise size_error(file, store.location(name), size, entry["bytes"])
    return manifest


def open_files(store: Storage, name: str, *, verify: bool) -> tuple[dict, dict]:
    """The checked manifest and each file's (buffer, header); nothing unchecked escapes."""
    manifest = load_manifest(store, name, verify=True)
    label = store.location(name)

    def fetch(item):
        file, entry = item
        expected = entry["bytes"]
        if expected < 8:
            raise size_error(file, label, expected, 8)
        try:
            buffer = store.map_file(name, file, _file_label(file, label), expected)
        except FileNotFoundError:
            raise size_error(file, label, None, expected) from None
        if len(buffer) != expected:
            raise size_error(file, label, len(buffer), expected)
        if verify and hash_buffer(buffer) != entry["sha256"]:
            raise digest_error(file, label)
        return file, buffer

    files = manifest["files"]
    if not files:
        return manifest, {}
    with ThreadPoolExecutor(hash_workers(len(files))) as pool:
        buffers = dict(pool.map(fetch, files.items()))
    opened = {}
    for file, buffer in buffers.items():
        header = parse_header(buffer, len(buffer), _file_label(file, label))
        check_header(manifest, file, header, label)
        opened[file] = (buffer, header)
    return manifest, opened


def load(store: Storage, name: str, *, verify: bool = True) -> tuple[dict, dict[str, np.ndarray]]:
    """(manifest, tensors) of ``name``: views of the buffers the backend gave (writable)."""
    manifest, opened = open_files(store, name, verify=verify)
    tensors: dict[str, np.ndarray] = {}
    for buffer, header in opened.values():
        tensors.update(arrays_from_buffer(buffer, header))
    return manifest, tensors


def scan(store: Storage) -> list[CheckpointEntry]:
    """Every checkpoint entry of ``store``, usable or not, in commit order (`order_key`).

    Listed: each folder holding a manifest, each entry with a numbered
    name (``<prefix>_<n>_<time>``) even without one, and each link (never
    followed). Other files and folders are not checkpoints.
    """
    found = []
    for listed in store.list_entries():
        name = listed.name
        if not is_valid_name(name):
            continue
        numbered = parse_checkpoint_name(name) is not None
        label = store.location(name)
        if listed.kind == LINK:
            found.append(
                CheckpointEntry(
                    name,
                    problem=f"'{label}' is a symbolic link, not a checkpoint folder; "
                    "nnsim does not follow links in a checkpoint folder",
                )
            )
            continue
        if listed.kind is not None:
            if numbered:
                problem = f"'{label}' is {listed.kind}, not a checkpoint folder"
                found.append(CheckpointEntry(name, problem=problem))
            continue
        if not numbered and not store.has_file(name, MANIFEST_FILE):
            continue  # a folder that is not a checkpoint
        try:
            found.append(CheckpointEntry(name, manifest=load_manifest(store, name, verify=True)))
        except CheckpointError as error:
            found.append(CheckpointEntry(name, problem=str(error)))
    return sorted(found, key=lambda entry: order_key(entry.name))


def read_pointer(store: Storage) -> str | None:
    """The name the ``latest`` pointer holds (read bounded), or None if there is none."""
    what = f"the latest pointer of '{store.url}'"
    try:
        data = store.read_latest(what, MAX_POINTER_BYTES)
    except FileNotFoundError:
        return None
    if len(data) > MAX_POINTER_BYTES:
        raise too_large(what, MAX_POINTER_BYTES)
    return pointer_name(data, what)


def pointer_name(data: bytes, what: str) -> str:
    """The checkpoint name in the bytes of a ``latest`` pointer; CheckpointError if there is none."""
    try:
        name = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        name = None
    if not is_valid_name(name):
        raise CheckpointError(
            f"{what} does not hold a checkpoint name; it is ignored (the next checkpoint "
            "written replaces it)"
        )
    return name


def missing(store: Storage, name: str, incomplete: bool) -> CheckpointError:
    """The error for a checkpoint that is not there, or was never committed."""
    label = store.location(name)
    if incomplete:
        return CheckpointError(
            f"checkpoint '{label}' is incomplete: it has no {MANIFEST_FILE} (its write was "
            "interrupted before it was committed, or the file was removed); "
            "load another checkpoint"
        )
    names = store.list()
    if not names:
        hint = f"'{store.url}' holds no complete checkpoint"
    else:
        hint = f"the latest ones there: {', '.join(names[-5:])}"
    return CheckpointError(
        f"checkpoint '{label}' does not exist; {hint} (it was never written, or was "
        "deleted since, e.g. by a keep-last/keep-best policy)"
    )
