"""Checkpoints on any fsspec filesystem: ``memory://``, ``s3://`` (with s3fs), ``gcs://``, ...

The byte-level operations of `nnsim.checkpoint.storage.Storage` on an
fsspec filesystem; the format is `nnsim.checkpoint.format`. Same layout as
the directory backend (``<root>/<name>/manifest.json``, tensor shards,
``<root>/latest``), but object stores have no atomic rename, so the commit
is the manifest, which the format writes last: tensor files are written
first, then ``manifest.json``, then ``latest``. A checkpoint without a
manifest is incomplete: `list` never shows it, loading it is refused, and
saving the same name again replaces its leftovers. Removing deletes the
manifest first.

Every file is checked to be a plain file (``fs.info``: no link, no FIFO)
and read with a bound (`nnsim.checkpoint.safefile`). Loading reads each
file into memory (no mmap); the arrays are writable views of that memory.

fsspec is an optional dependency: ``pip install 'nnsim[remote]'``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable

from nnsim.checkpoint.errors import CheckpointError
from nnsim.checkpoint.format import LINK, Listed
from nnsim.checkpoint.manifest import MANIFEST_FILE
from nnsim.checkpoint.safefile import fsspec_regular_size, read_fsspec
from nnsim.checkpoint.storage import Storage
from nnsim.checkpoint.tensorfile import CHUNK

LATEST = "latest"


class FsspecStorage(Storage):
    """Checkpoints under an fsspec URL (see the module docstring)."""

    scheme = "fsspec"

    def __init__(self, location: str, **storage_options):
        try:
            import fsspec
        except ImportError:
            raise CheckpointError(
                f"the fsspec backend needs fsspec: pip install 'nnsim[remote]' (to open '{location}')"
            ) from None
        try:
            self.fs, root = fsspec.core.url_to_fs(location, **storage_options)
        except (ImportError, ValueError) as error:
            raise CheckpointError(
                f"cannot open checkpoint storage '{location}' ({error}); "
                "install the fsspec filesystem for that URL scheme or check the URL"
            ) from None
        self.root = root.rstrip("/")
        self.url = location.rstrip("/")

    def _path(self, *parts: str) -> str:
        return posixpath.join(self.root or self.fs.root_marker, *parts)

    # Writing: files first, the manifest (written last by the format) is the commit -----
    def begin(self, checkpoint: str) -> str:
        folder = self._path(checkpoint)
        if self.fs.exists(folder):  # leftovers of an interrupted save of this name
            self.fs.rm(folder, recursive=True)
        self.fs.makedirs(folder, exist_ok=True)
        return checkpoint

    def write_file(self, staging: str, file: str, chunks: Iterable[memoryview]) -> None:
        with self.fs.open(self._path(staging, file), "wb") as stream:
            for chunk in chunks:
                stream.write(chunk)

    def staging_token(self, staging: str) -> str | None:
        """The checkpoint's name, where other processes see the same filesystem (not memory://)."""
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        return None if "memory" in protocols else staging

    def join_staging(self, checkpoint: str, token: str) -> str:
        if token != checkpoint:
            raise CheckpointError(f"'{token}' is not the staging area of checkpoint {checkpoint}")
        return token

    def commit(self, staging: str) -> None:
        """Nothing left to do: writing the manifest was the commit."""

    def abort(self, staging: str) -> None:
        try:
            if not self.fs.exists(self._path(staging, MANIFEST_FILE)):
                self.fs.rm(self._path(staging), recursive=True)
        except OSError:
            pass  # the next save of that name removes the leftovers

    def write_latest(self, data: bytes) -> None:
        self.fs.pipe_file(self._path(LATEST), data)

    def remove(self, checkpoint: str) -> None:
        """The manifest first, so the checkpoint is never seen half-deleted."""
        folder = self._path(checkpoint)
        if not self.fs.exists(folder):
            raise FileNotFoundError(folder)
        if self.fs.exists(self._path(checkpoint, MANIFEST_FILE)):
            self.fs.rm(self._path(checkpoint, MANIFEST_FILE))
        self.fs.rm(folder, recursive=True)

    # Reading: plain files only, bounded (nnsim.checkpoint.safefile) ----------------------
    def read_file(self, checkpoint: str, file: str, what: str, limit: int) -> bytes:
        return read_fsspec(self.fs, self._path(checkpoint, file), what, limit)

    def file_size(self, checkpoint: str, file: str, what: str) -> int:
        return fsspec_regular_size(self.fs, self._path(checkpoint, file), what)

    def map_file(self, checkpoint: str, file: str, what: str, size: int) -> bytearray:
        """The file read into a bytearray: its ``size`` bytes expected, at most one more read."""
        self.file_size(checkpoint, file, what)  # a plain file, checked again just before it is read
        buffer = bytearray(size + 1)
        got = 0
        with memoryview(buffer) as view, self.fs.open(self._path(checkpoint, file), "rb") as stream:
            while got <= size:
                count = stream.readinto(view[got : min(got + CHUNK, size + 1)])
                if not count:
                    break
                got += count
        del buffer[got:]
        return buffer

    def has_file(self, checkpoint: str, file: str) -> bool:
        return self.fs.exists(self._path(checkpoint, file))

    def has_leftovers(self, checkpoint: str) -> bool:
        return self.fs.exists(self._path(checkpoint))

    def read_latest(self, what: str, limit: int) -> bytes:
        return read_fsspec(self.fs, self._path(LATEST), what, limit)

    def list_entries(self) -> list[Listed]:
        """Folders; links (on local filesystems) and other files by what they are."""
        try:
            entries = self.fs.ls(self._path(), detail=True)
        except (FileNotFoundError, NotADirectoryError):
            return []
        listed = []
        for entry in entries:
            name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
            if entry.get("islink"):
                listed.append(Listed(name, LINK))
            elif entry.get("type") == "directory":
                listed.append(Listed(name))
            else:
                listed.append(Listed(name, "a file"))
        return listed
