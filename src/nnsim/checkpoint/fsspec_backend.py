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
    parse_manifest,
    shard_tensors,
    size_error,
    tensor_entries,
)
from nnsim.checkpoint.storage import Storage
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
            self.fs.pipe_file(self._path(LATEST), f"{name}\n".encode())
        except OSError as error:
            raise CheckpointError(
                f"cannot write checkpoint '{label}' ({error}); check the storage's space and permissions"
            ) from error
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
    def _read_manifest(self, name: str, verify: bool) -> dict:
        check_name(name)
        try:
            data = self.fs.cat_file(self._path(name, MANIFEST_FILE))
        except FileNotFoundError:
            raise self._missing(name, incomplete=self.fs.exists(self._path(name))) from None
        except OSError as error:
            raise CheckpointError(
                f"cannot read checkpoint '{self.location(name)}' ({error}); check the storage's permissions"
            ) from error
        return parse_manifest(data, self.location(name), verify=verify)

    def _sizes(self, name: str, manifest: dict) -> None:
        for file, entry in manifest["files"].items():
            try:
                size = self.fs.size(self._path(name, file))
            except FileNotFoundError:
                size = None
            if size != entry["bytes"]:
                raise size_error(file, self.location(name), size, entry["bytes"])

    def load_manifest(self, name: str, *, verify: bool = True) -> dict:
        """The manifest of ``name``; with ``verify``, its checksum and its files' sizes are checked."""
        manifest = self._read_manifest(name, verify)
        if verify:
            self._sizes(name, manifest)
        return manifest

    def _read_file(self, name: str, file: str, expected: int) -> bytearray:
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

    def list(self) -> list[str]:
        """Checkpoints with a valid manifest, in commit order (`order_key`)."""
        try:
            entries = self.fs.ls(self._path(), detail=True)
        except (FileNotFoundError, NotADirectoryError):
            return []
        names = []
        for entry in entries:
            base = entry["name"].rstrip("/").rsplit("/", 1)[-1]
            if entry.get("type") != "directory" or not is_valid_name(base):
                continue
            try:
                self._read_manifest(base, verify=True)
            except CheckpointError:
                continue
            names.append(base)
        return sorted(names, key=order_key)

    def latest(self) -> str | None:
        """The checkpoint ``latest`` names if it is complete, else the newest complete one."""
        try:
            pointed = self.fs.cat_file(self._path(LATEST)).decode("utf-8").strip()
        except (OSError, UnicodeDecodeError):
            pointed = ""
        if is_valid_name(pointed):
            try:
                self._read_manifest(pointed, verify=True)
                return pointed
            except CheckpointError:
                pass
        names = self.list()
        return names[-1] if names else None
