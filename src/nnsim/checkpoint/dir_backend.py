"""Checkpoints in a local directory: the default storage.

Layout of a storage root::

    <root>/<name>/manifest.json
    <root>/<name>/tensors-00000-of-0000N.safetensors      (a parallel run: tensors-rank0000R-...)
    <root>/latest                          the name of the last committed checkpoint
    <root>/.tmp-<name>-<pid>-<random>/     a checkpoint being written (or deleted)

This module only moves bytes (the format is `nnsim.checkpoint.format`). A
save's staging area is a temporary folder (each file streamed with
writeback hints and fsynced, in parallel threads); the commit fsyncs it,
renames it to ``<root>/<name>`` and fsyncs the root: the rename is the
commit, so a reader or a crash sees the whole checkpoint or none of it.
``latest`` is replaced atomically (temporary file, fsync, rename). A
temporary folder left by a killed writer is removed by the next save once
its process is gone (or by `DirStorage.cleanup`).

Every read goes through `nnsim.checkpoint.safefile` (regular files only,
no link followed inside a checkpoint folder, bounded). Loading memory-maps
the shards copy-on-write (`DirStorage.map_file`): arrays are writable,
changing them never touches the files, and only the pages used are read. nnsim never
modifies a committed file in place; deleting a checkpoint whose arrays are
still in use is safe.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import time
from collections.abc import Iterable
from pathlib import Path

from nnsim.checkpoint.errors import CheckpointError
from nnsim.checkpoint.format import LINK, STAGING_PREFIX, Listed
from nnsim.checkpoint.manifest import is_valid_name
from nnsim.checkpoint.safefile import kind_of, map_regular, read_regular, regular_size
from nnsim.checkpoint.storage import Storage
from nnsim.checkpoint.tensorfile import write_chunks

TEMP_PREFIX = STAGING_PREFIX
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


def _write_chunks(chunks: Iterable[memoryview]):
    """A writer of ``chunks`` to a descriptor, with writeback hints (`tensorfile.write_chunks`)."""

    def write(fd: int) -> None:
        write_chunks(fd, chunks)

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

    # Writing: a temporary folder renamed into place ------------------------------------
    def begin(self, checkpoint: str) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        self._cleanup(written_before=_PROCESS_START)
        temp = self.root / f"{TEMP_PREFIX}{checkpoint}-{os.getpid()}-{secrets.token_hex(4)}"
        temp.mkdir()
        return temp

    def write_file(self, staging: Path, file: str, chunks: Iterable[memoryview]) -> None:
        _write_new_file(staging / file, _write_chunks(chunks))

    def staging_token(self, staging: Path) -> str:
        return str(staging)

    def join_staging(self, checkpoint: str, token: str) -> Path:
        """Rank 0's temporary folder, which this process must see (one machine, or a shared
        filesystem); it is checked to be a folder (no link) of this root for ``checkpoint``."""
        staging = Path(token)
        try:
            seen = stat.S_ISDIR(os.lstat(staging).st_mode)
        except OSError:
            seen = False
        if not (
            seen
            and staging.parent == self.root
            and staging.name.startswith(f"{TEMP_PREFIX}{checkpoint}-")
        ):
            raise CheckpointError(
                f"the folder rank 0 writes checkpoint '{self.location(checkpoint)}' into is not "
                "visible here; parallel checkpoints need a folder every rank sees "
                "(one machine, or a shared filesystem)"
            )
        return staging

    def commit(self, staging: Path) -> None:
        """fsync the folder, rename it to its checkpoint name, fsync the root."""
        name = staging.name[len(TEMP_PREFIX) :].rsplit("-", 2)[0]
        _fsync_dir(staging)
        if (self.root / name).exists():
            raise FileExistsError(name)
        os.rename(staging, self.root / name)
        _fsync_dir(self.root)

    def abort(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)

    def write_latest(self, data: bytes) -> None:
        temp = self.root / f"{LATEST}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            _write_new_file(temp, _write_chunks([memoryview(data)]))
            os.replace(temp, self.root / LATEST)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        _fsync_dir(self.root)

    def remove(self, checkpoint: str) -> None:
        """Rename the folder away (atomic), then remove its files."""
        folder = self.root / checkpoint
        if not folder.is_dir():
            raise FileNotFoundError(str(folder))
        trash = self.root / f"{TEMP_PREFIX}{checkpoint}-{os.getpid()}-{secrets.token_hex(4)}"
        os.rename(folder, trash)
        _fsync_dir(self.root)
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

    # Reading: every file through nnsim.checkpoint.safefile -------------------------------
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

    def read_file(self, checkpoint: str, file: str, what: str, limit: int) -> bytes:
        return read_regular(self._folder(checkpoint) / file, what, limit)

    def file_size(self, checkpoint: str, file: str, what: str) -> int:
        return regular_size(self._folder(checkpoint) / file, what)

    def map_file(self, checkpoint: str, file: str, what: str, size: int):
        """A copy-on-write memory map: only the pages used are read, writes never reach the file."""
        return map_regular(self._folder(checkpoint) / file, what)

    def has_file(self, checkpoint: str, file: str) -> bool:
        return os.path.lexists(self.root / checkpoint / file)

    def has_leftovers(self, checkpoint: str) -> bool:
        return (self.root / checkpoint).is_dir() or any(
            self.root.glob(f"{TEMP_PREFIX}{checkpoint}-*")
        )

    def read_latest(self, what: str, limit: int) -> bytes:
        return read_regular(self.root / LATEST, what, limit)

    def list_entries(self) -> list[Listed]:
        """Folders, links that are not aliases, and other files by what they are; links never followed.

        Aliases (links to a bare name in this folder, such as a run folder's
        ``best`` and ``last``) are left out: they name checkpoints listed
        under their own names.
        """
        try:
            entries = list(os.scandir(self.root))
        except (FileNotFoundError, NotADirectoryError):
            return []
        listed = []
        for entry in entries:
            if entry.name.startswith(TEMP_PREFIX) or not is_valid_name(entry.name):
                continue
            try:
                if entry.is_symlink():
                    if not _is_alias(self.root, entry.name):
                        listed.append(Listed(entry.name, LINK))
                elif entry.is_dir(follow_symlinks=False):
                    listed.append(Listed(entry.name))
                else:
                    listed.append(
                        Listed(entry.name, kind_of(entry.stat(follow_symlinks=False).st_mode))
                    )
            except OSError:
                continue  # removed while scanning
        return listed


def _is_alias(root: Path, name: str) -> bool:
    """``root/name`` is a link to a bare name in ``root`` (``best -> checkpoint_3_100``)."""
    try:
        target = os.readlink(root / name)
    except OSError:
        return False
    return is_valid_name(target) and os.sep not in target
