"""Checkpoints in a local directory: the default storage.

Layout of a storage root::

    <root>/<name>/manifest.json
    <root>/<name>/tensors-00000-of-0000N.safetensors
    <root>/latest                          the name of the last committed checkpoint
    <root>/.tmp-<name>-<pid>-<random>/     a checkpoint being written (or deleted)

A save writes everything into a temporary folder (tensor shards in parallel
threads, each file fsynced, ``manifest.json`` last), renames the folder to
``<root>/<name>`` and fsyncs the root: the rename is the commit, so a reader
or a crash sees the whole checkpoint or none of it. Then ``latest`` is
replaced atomically. A temporary folder left by a killed writer is removed
by the next save once its process is gone (or by `DirStorage.cleanup`).

Loading memory-maps the shards copy-on-write: arrays are writable, changing
them never touches the files, and only the pages used are read. nnsim never
modifies a committed file in place; deleting a checkpoint whose arrays are
still in use is safe.
"""

from __future__ import annotations

import mmap
import os
import secrets
import shutil
import stat
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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
from nnsim.checkpoint.safefile import (
    MAX_MANIFEST_BYTES,
    MAX_POINTER_BYTES,
    kind_of,
    read_regular,
    regular_size,
)
from nnsim.checkpoint.storage import CheckpointEntry, Storage, pointer_name
from nnsim.checkpoint.tensorfile import (
    Header,
    TensorFilePlan,
    arrays_from_buffer,
    hash_buffer,
    map_file,
    parse_header,
    plan_file,
)

TEMP_PREFIX = ".tmp-"
LATEST = "latest"
#: Temporary files older than this process, of writers no longer running, are leftovers.
_PROCESS_START = time.time()


def _fsync_dir(path: Path) -> None:
    if not hasattr(os, "O_DIRECTORY"):  # Windows: directories cannot be fsynced
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_new_file(path: Path, write) -> None:
    """Create ``path`` (it must not exist), ``write(fd)`` into it and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
    try:
        write(fd)
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_bytes(data: bytes):
    def write(fd: int) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    return write


def _process_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _writer_pid(entry: str) -> int | None:
    """The pid in a ``.tmp-<name>-<pid>-<hex>`` or ``latest.tmp-<pid>-<hex>`` name."""
    parts = entry.rsplit("-", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


class DirStorage(Storage):
    """Checkpoints as folders of a local directory (see the module docstring)."""

    scheme = "dir"

    def __init__(self, location: str | os.PathLike):
        location = os.fspath(location)
        if "://" in location:  # file:///abs/path, dir://relative/path
            location = location.split("://", 1)[1]
            if location.startswith("localhost/"):
                location = location[len("localhost") :]
        self.root = Path(location or ".").absolute()
        self.url = str(self.root)

    def location(self, name: str) -> str:
        return str(self.root / name)

    # Writing ----------------------------------------------------------------------
    def save(self, name: str, manifest: Mapping, tensors: Mapping[str, np.ndarray]) -> dict:
        """Write checkpoint ``name`` atomically and point ``latest`` at it; return its manifest."""
        check_name(name)
        label = self.location(name)
        if (self.root / name).exists():
            raise self._duplicate(name)
        shards = shard_tensors(tensors)
        plans = {
            file: plan_file(group, {"nnsim_checkpoint": name}) for file, group in shards.items()
        }
        entries: dict[str, dict] = {}
        for file, plan in plans.items():
            entries.update(tensor_entries(file, plan.entries))
        temp = self.root / f"{TEMP_PREFIX}{name}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._cleanup(written_before=_PROCESS_START)
            temp.mkdir()
            try:
                files = _write_shards(temp, plans)
                final, text = build_manifest(manifest, name, files, entries, label)
                _write_new_file(temp / MANIFEST_FILE, _write_bytes(text))
                _fsync_dir(temp)
                if (self.root / name).exists():
                    raise self._duplicate(name)
                os.rename(temp, self.root / name)
            except BaseException:
                shutil.rmtree(temp, ignore_errors=True)
                raise
            _fsync_dir(self.root)
        except OSError as error:
            raise CheckpointError(
                f"cannot write checkpoint '{label}' ({error.strerror or error}); "
                f"check the free space and permissions of '{self.url}'"
            ) from error
        try:  # the checkpoint is committed: a failure here loses nothing
            self._point_latest(name)
        except OSError as error:
            self._pointer_failed(name, error)
        return final

    def _duplicate(self, name: str) -> CheckpointError:
        return CheckpointError(
            f"checkpoint '{self.location(name)}' already exists; choose another name or delete it first"
        )

    def _point_latest(self, name: str) -> None:
        temp = self.root / f"{LATEST}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            _write_new_file(temp, _write_bytes(f"{name}\n".encode()))
            os.replace(temp, self.root / LATEST)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        _fsync_dir(self.root)

    def delete(self, name: str) -> None:
        """Remove checkpoint ``name``; it disappears atomically, then its files are removed."""
        check_name(name)
        folder = self.root / name
        if not folder.is_dir():
            raise self._missing(name, incomplete=False)
        trash = self.root / f"{TEMP_PREFIX}{name}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            os.rename(folder, trash)
            _fsync_dir(self.root)
        except OSError as error:
            raise CheckpointError(
                f"cannot delete checkpoint '{self.location(name)}' ({error.strerror or error}); "
                "check the permissions of its folder"
            ) from error
        shutil.rmtree(trash, ignore_errors=True)

    def cleanup(self) -> list[str]:
        """Remove what killed writers left behind (temporary folders and files); return their names.

        Only entries whose writing process is no longer running are removed;
        complete checkpoints are never touched.
        """
        return self._cleanup(written_before=None)

    def _cleanup(self, written_before: float | None) -> list[str]:
        removed = []
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return removed
        for entry in entries:
            if not (entry.name.startswith(TEMP_PREFIX) or entry.name.startswith(f"{LATEST}.tmp-")):
                continue
            pid = _writer_pid(entry.name)
            if pid is None or pid == os.getpid() or _process_running(pid):
                continue
            try:
                if written_before is not None and entry.stat().st_mtime >= written_before:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
            except OSError:
                continue  # another process cleaned it up first, or it is not ours to remove
            removed.append(entry.name)
        return removed

    # Reading ----------------------------------------------------------------------
    # Every file is opened through nnsim.checkpoint.safefile: regular files only,
    # no link followed inside a checkpoint folder, every read bounded.
    def _folder(self, name: str) -> Path:
        """The folder of checkpoint ``name``: a folder, or a link to one the caller named."""
        folder = self.root / name
        try:
            mode = folder.stat().st_mode
        except FileNotFoundError:
            return folder  # reported as missing by the reader
        except OSError as error:
            raise CheckpointError(
                f"cannot read checkpoint '{self.location(name)}' ({error.strerror or error}); "
                "check the permissions of its folder"
            ) from None
        if not stat.S_ISDIR(mode):
            raise CheckpointError(
                f"'{self.location(name)}' is {kind_of(mode)}, not a checkpoint folder; "
                "load another checkpoint"
            )
        return folder

    def _read_manifest(self, name: str, verify: bool) -> dict:
        if isinstance(name, str) and name.startswith(TEMP_PREFIX):
            raise self._missing(name, incomplete=True)
        check_name(name)
        folder = self._folder(name)
        label = self.location(name)
        try:
            data = read_regular(
                folder / MANIFEST_FILE,
                f"{MANIFEST_FILE} of checkpoint '{label}'",
                MAX_MANIFEST_BYTES,
            )
        except FileNotFoundError:
            interrupted = folder.is_dir() or any(self.root.glob(f"{TEMP_PREFIX}{name}-*"))
            raise self._missing(name, incomplete=interrupted) from None
        return parse_manifest(data, label, verify=verify)

    def _check_sizes(self, name: str, manifest: dict) -> None:
        label = self.location(name)
        for file, entry in manifest["files"].items():
            try:
                size = regular_size(
                    self.root / name / file, f"tensor file '{file}' of checkpoint '{label}'"
                )
            except FileNotFoundError:
                size = None
            if size != entry["bytes"]:
                raise size_error(file, label, size, entry["bytes"])

    def load_manifest(self, name: str, *, verify: bool = True) -> dict:
        """The manifest of ``name``; with ``verify``, its checksum and its files' sizes are checked.

        ``verify=False`` shows the manifest of a damaged checkpoint (to inspect it).
        """
        manifest = self._read_manifest(name, verify)
        if verify:
            self._check_sizes(name, manifest)
        return manifest

    def _open(self, name: str, verify: bool) -> tuple[dict, dict[str, tuple[mmap.mmap, Header]]]:
        """The checked manifest and each tensor file's map and header; nothing unchecked escapes."""
        manifest = self.load_manifest(name, verify=True)
        label = self.location(name)
        maps = {}
        for file, entry in manifest["files"].items():
            if entry["bytes"] < 8:
                raise size_error(file, label, entry["bytes"], 8)
            try:
                maps[file] = map_file(
                    self.root / name / file, f"tensor file '{file}' of checkpoint '{label}'"
                )
            except FileNotFoundError:
                raise size_error(file, label, None, entry["bytes"]) from None
            if len(maps[file]) != entry["bytes"]:
                raise size_error(file, label, len(maps[file]), entry["bytes"])
        if verify and maps:
            with ThreadPoolExecutor(hash_workers(len(maps))) as pool:
                digests = dict(zip(maps, pool.map(hash_buffer, maps.values()), strict=True))
            for file, digest in digests.items():
                if digest != manifest["files"][file]["sha256"]:
                    raise digest_error(file, label)
        opened = {}
        for file, mapped in maps.items():
            header = parse_header(
                mapped, len(mapped), f"tensor file '{file}' of checkpoint '{label}'"
            )
            check_header(manifest, file, header, label)
            opened[file] = (mapped, header)
        return manifest, opened

    def load(self, name: str, *, verify: bool = True) -> tuple[dict, dict[str, np.ndarray]]:
        """(manifest, tensors) of ``name``; tensors are copy-on-write maps of the files.

        With ``verify`` (the default) every file's SHA-256 is checked first,
        in parallel threads; without it, sizes and headers still are.
        """
        manifest, opened = self._open(name, verify)
        tensors: dict[str, np.ndarray] = {}
        for mapped, header in opened.values():
            tensors.update(arrays_from_buffer(mapped, header))
        return manifest, tensors

    def verify(self, name: str) -> None:
        """CheckpointError unless every file of ``name`` is present, unmodified and consistent."""
        self._open(name, verify=True)

    def exists(self, name: str) -> bool:
        """A ``manifest.json`` entry is in folder ``name`` (loading it may still be refused)."""
        return is_valid_name(name) and os.path.lexists(self.root / name / MANIFEST_FILE)

    def scan(self) -> list[CheckpointEntry]:
        """Every checkpoint entry, usable or not, in commit order (`order_key`).

        Listed: each folder holding a ``manifest.json`` (of any kind: a link
        or a FIFO there is a problem, not a reason to hide it), each entry
        with a numbered name (``<prefix>_<n>_<time>``) even without one, and
        each symbolic link that is not an alias. Aliases (links to a bare
        name in this folder, such as a run folder's ``best`` and ``last``)
        and other files are not listed; links are never followed.
        """
        try:
            entries = list(os.scandir(self.root))
        except (FileNotFoundError, NotADirectoryError):
            return []
        found = []
        for entry in entries:
            name = entry.name
            if not is_valid_name(name):
                continue
            numbered = parse_checkpoint_name(name) is not None
            label = self.location(name)
            try:
                if entry.is_symlink():
                    if _is_alias(self.root, name):
                        continue
                    found.append(
                        CheckpointEntry(
                            name,
                            problem=f"'{label}' is a symbolic link, not a checkpoint folder; "
                            "nnsim does not follow links in a checkpoint folder",
                        )
                    )
                    continue
                if not entry.is_dir(follow_symlinks=False):
                    if numbered:
                        kind = kind_of(entry.stat(follow_symlinks=False).st_mode)
                        found.append(
                            CheckpointEntry(
                                name, problem=f"'{label}' is {kind}, not a checkpoint folder"
                            )
                        )
                    continue
                if not numbered and not os.path.lexists(os.path.join(entry.path, MANIFEST_FILE)):
                    continue  # a folder that is not a checkpoint
            except OSError:
                continue  # removed while scanning
            try:
                found.append(CheckpointEntry(name, manifest=self.load_manifest(name, verify=True)))
            except CheckpointError as error:
                found.append(CheckpointEntry(name, problem=str(error)))
        return sorted(found, key=lambda entry: order_key(entry.name))

    def read_pointer(self) -> str | None:
        """The name in ``latest`` (read as a regular file of at most a few KiB), or None."""
        what = f"the latest pointer of '{self.url}'"
        try:
            data = read_regular(self.root / LATEST, what, MAX_POINTER_BYTES)
        except FileNotFoundError:
            return None
        return pointer_name(data, what)


def _is_alias(root: Path, name: str) -> bool:
    """``root/name`` is a link to a bare name in ``root`` (``best -> checkpoint_3_100``)."""
    try:
        target = os.readlink(root / name)
    except OSError:
        return False
    return is_valid_name(target) and os.sep not in target


def _write_shards(folder: Path, plans: dict[str, TensorFilePlan]) -> dict[str, dict]:
    """Write and fsync every planned file into ``folder``; return the manifest's ``files``.

    Each file gets a writer thread and a hasher thread reading the same
    array memory: SHA-256 is the slow part, and hashing a file is
    sequential, so the hashes of several shards run side by side while the
    writers stream the data (and the fsyncs wait on the disk) — the GIL is
    released by both file writes and hashlib.
    """
    with ThreadPoolExecutor(2 * len(plans), thread_name_prefix="nnsim-checkpoint") as pool:
        digests = {file: pool.submit(plan.sha256) for file, plan in plans.items()}
        writes = [pool.submit(_write_new_file, folder / f, p.write_fd) for f, p in plans.items()]
        for write in writes:
            write.result()
        return {
            file: {"sha256": digests[file].result(), "bytes": plan.nbytes}
            for file, plan in plans.items()
        }
