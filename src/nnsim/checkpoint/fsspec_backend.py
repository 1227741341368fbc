"""Checkpoints on any fsspec filesystem: ``memory://``, ``s3://`` (with s3fs), ``gcs://``, ...

Same layout as the directory backend (``<root>/<name>/manifest.json``,
tensor shards, ``<root>/latest``), but object stores have no atomic rename,
so the commit is the manifest: tensor files are written first, then
``manifest.json``, then ``latest``. A checkpoint without a manifest is
incomplete: `list` never shows it, loading it is refused, and saving the
same name again replaces its leftovers. Deleting removes the manifest first.

Loading reads each file into memory (no mmap) and hashes it there; the
arrays are writable views of that memory.

fsspec is an optional dependency: ``pip install 'nnsim[remote]'``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

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
    fsspec_regular_size,
    read_fsspec,
)
from nnsim.checkpoint.storage import CheckpointEntry, Storage, pointer_name
from nnsim.checkpoint.tensorfile import (
    CHUNK,
    arrays_from_buffer,
    hash_buffer,
    parse_header,
    plan_file,
)

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

    # Writing ----------------------------------------------------------------------
    def save(self, name: str, manifest: Mapping, tensors: Mapping[str, np.ndarray]) -> dict:
        """Write tensor files, then the manifest (the commit), then ``latest``; return the manifest."""
        check_name(name)
        label = self.location(name)
        shards = shard_tensors(tensors)
        plans = {
            file: plan_file(group, {"nnsim_checkpoint": name}) for file, group in shards.items()
        }
        entries: dict[str, dict] = {}
        for file, plan in plans.items():
            entries.update(tensor_entries(file, plan.entries))
        folder = self._path(name)
        try:
            if self.fs.exists(self._path(name, MANIFEST_FILE)):
                raise CheckpointError(
                    f"checkpoint '{label}' already exists; choose another name or delete it first"
                )
            if self.fs.exists(folder):  # leftovers of an interrupted save of this name
                self.fs.rm(folder, recursive=True)
            self.fs.makedirs(folder, exist_ok=True)

            def write(item):
                file, plan = item
                with self.fs.open(self._path(name, file), "wb") as stream:
                    return file, {"sha256": plan.write_to(stream), "bytes": plan.nbytes}

            with ThreadPoolExecutor(len(plans)) as pool:
                files = dict(pool.map(write, plans.items()))
            final, text = build_manifest(manifest, name, files, entries, label)
            self.fs.pipe_file(self._path(name, MANIFEST_FILE), text)
        except OSError as error:
            raise CheckpointError(
                f"cannot write checkpoint '{label}' ({error}); check the storage's space and permissions"
            ) from error
        try:  # the checkpoint is committed: a failure here loses nothing
            self.fs.pipe_file(self._path(LATEST), f"{name}\n".encode())
        except OSError as error:
            self._pointer_failed(name, error)
        return final

    def delete(self, name: str) -> None:
        """Remove checkpoint ``name``: its manifest first, so it is never seen half-deleted."""
        check_name(name)
        folder = self._path(name)
        if not self.fs.exists(folder):
            raise self._missing(name, incomplete=False)
        try:
            if self.fs.exists(self._path(name, MANIFEST_FILE)):
                self.fs.rm(self._path(name, MANIFEST_FILE))
            self.fs.rm(folder, recursive=True)
        except OSError as error:
            raise CheckpointError(
                f"cannot delete checkpoint '{self.location(name)}' ({error}); check the storage's permissions"
            ) from error

    # Reading ----------------------------------------------------------------------
    # Every file is checked to be a plain file (fs.info) and read with a bound:
    # see nnsim.checkpoint.safefile.
    def _read_manifest(self, name: str, verify: bool) -> dict:
        check_name(name)
        label = self.location(name)
        try:
            data = read_fsspec(
                self.fs,
                self._path(name, MANIFEST_FILE),
                f"{MANIFEST_FILE} of checkpoint '{label}'",
                MAX_MANIFEST_BYTES,
            )
        except FileNotFoundError:
            raise self._missing(name, incomplete=self.fs.exists(self._path(name))) from None
        return parse_manifest(data, label, verify=verify)

    def _size(self, name: str, file: str) -> int | None:
        what = f"tensor file '{file}' of checkpoint '{self.location(name)}'"
        try:
            return fsspec_regular_size(self.fs, self._path(name, file), what)
        except FileNotFoundError:
            return None

    def _sizes(self, name: str, manifest: dict) -> None:
        for file, entry in manifest["files"].items():
            size = self._size(name, file)
            if size != entry["bytes"]:
                raise size_error(file, self.location(name), size, entry["bytes"])

    def load_manifest(self, name: str, *, verify: bool = True) -> dict:
        """The manifest of ``name``; with ``verify``, its checksum and its files' sizes are checked."""
        manifest = self._read_manifest(name, verify)
        if verify:
            self._sizes(name, manifest)
        return manifest

    def _read_file(self, name: str, file: str, expected: int) -> bytearray:
        size = self._size(name, file)  # a plain file, checked again just before it is read
        if size != expected:
            raise size_error(file, self.location(name), size, expected)
        buffer = bytearray(expected)
        view = memoryview(buffer)
        got = 0
        try:
            with self.fs.open(self._path(name, file), "rb") as stream:
                while got < expected:
                    count = stream.readinto(view[got : got + CHUNK])
                    if not count:
                        break
                    got += count
                extra = stream.read(1)
        except FileNotFoundError:
            raise size_error(file, self.location(name), None, expected) from None
        if got != expected or extra:
            raise size_error(file, self.location(name), got + len(extra), expected)
        return buffer

    def load(self, name: str, *, verify: bool = True) -> tuple[dict, dict[str, np.ndarray]]:
        """(manifest, tensors) of ``name``; with ``verify``, every file's SHA-256 is checked first."""
        manifest = self.load_manifest(name, verify=True)
        label = self.location(name)

        def fetch(item):
            file, entry = item
            buffer = self._read_file(name, file, entry["bytes"])
            if verify and hash_buffer(buffer) != entry["sha256"]:
                raise digest_error(file, label)
            return file, buffer

        files = manifest["files"]
        with ThreadPoolExecutor(hash_workers(len(files))) as pool:
            buffers = dict(pool.map(fetch, files.items()))
        headers = {}
        for file, buffer in buffers.items():
            headers[file] = parse_header(
                buffer, len(buffer), f"tensor file '{file}' of checkpoint '{label}'"
            )
            check_header(manifest, file, headers[file], label)
        tensors: dict[str, np.ndarray] = {}
        for file, buffer in buffers.items():
            tensors.update(arrays_from_buffer(buffer, headers[file]))
        return manifest, tensors

    def exists(self, name: str) -> bool:
        return is_valid_name(name) and self.fs.exists(self._path(name, MANIFEST_FILE))

    def scan(self) -> list[CheckpointEntry]:
        """Every checkpoint entry, usable or not, in commit order (`order_key`).

        Listed: each folder holding a ``manifest.json``, and each entry with
        a numbered name (``<prefix>_<n>_<time>``) even without one; links
        (on local filesystems) are reported, never followed.
        """
        try:
            entries = self.fs.ls(self._path(), detail=True)
        except (FileNotFoundError, NotADirectoryError):
            return []
        found = []
        for entry in entries:
            name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
            if not is_valid_name(name):
                continue
            numbered = parse_checkpoint_name(name) is not None
            label = self.location(name)
            if entry.get("islink"):
                found.append(
                    CheckpointEntry(
                        name,
                        problem=f"'{label}' is a symbolic link, not a checkpoint folder; "
                        "nnsim does not follow links in a checkpoint folder",
                    )
                )
                continue
            if entry.get("type") != "directory":
                if numbered:
                    found.append(
                        CheckpointEntry(name, problem=f"'{label}' is not a checkpoint folder")
                    )
                continue
            if not numbered and not self.exists(name):
                continue  # a folder that is not a checkpoint
            try:
                found.append(CheckpointEntry(name, manifest=self.load_manifest(name, verify=True)))
            except CheckpointError as error:
                found.append(CheckpointEntry(name, problem=str(error)))
        return sorted(found, key=lambda entry: order_key(entry.name))

    def read_pointer(self) -> str | None:
        """The name in ``latest`` (a plain file of at most a few KiB), or None."""
        what = f"the latest pointer of '{self.url}'"
        try:
            data = read_fsspec(self.fs, self._path(LATEST), what, MAX_POINTER_BYTES)
        except FileNotFoundError:
            return None
        return pointer_name(data, what)
