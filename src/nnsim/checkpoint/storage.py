"""Checkpoint storage: the backend API, the backend registry, and opening by location.

A storage holds named checkpoints. A checkpoint is a JSON-able ``manifest``
dict plus named numpy ``tensors``; the storage writes both atomically and
verifiably, and gives them back only if nothing was changed or lost.

Opening
-------
``open_storage(location)`` picks the backend from the location: a plain path
is the local directory backend (`DirStorage`); ``scheme://...`` uses the
backend registered for ``scheme``, else the generic fsspec backend
(``memory://``, ``s3://`` with s3fs, ...). ``open_checkpoint(location)``
takes the location of one checkpoint (``runs/a/ckpt_3_1234``) or of a
storage (``runs/a``, meaning its latest checkpoint).

Writing a backend
-----------------
Subclass `Storage`, implement its abstract methods, and register the class
under the URL scheme it serves in your package's ``pyproject.toml``::

    [project.entry-points."nnsim.checkpoint_backends"]
    mystore = "mypackage.storage:MyStorage"

``open_storage("mystore://bucket/run1")`` then calls
``MyStorage("mystore://bucket/run1")``: the constructor takes the location
string, sets ``self.url``, and must not create anything (only `save`
does). The contract each method must keep:

* ``save(name, manifest, tensors)``: refuse (CheckpointError) a name that
  exists; complete the manifest with `nnsim.checkpoint.manifest.build_manifest`
  (it adds format, version, file and tensor tables and the manifest's own
  SHA-256); write tensor files with `nnsim.checkpoint.tensorfile.plan_file`
  (safetensors; ``shard_tensors`` splits large sets); commit atomically: a
  reader must see either the whole checkpoint or nothing (write the
  manifest last, or rename a finished temporary folder); then point
  ``latest`` at it. Return the final manifest.
* ``load(name, verify=True)``: check the manifest with ``parse_manifest``;
  check every file's size, and with ``verify`` its SHA-256, before making
  any array; check each file's header with ``check_header``. Raise
  CheckpointError (one line, naming the checkpoint and what to do) for a
  missing, incomplete, modified, truncated or too-new checkpoint. Never
  execute anything from the data.
* ``load_manifest(name, verify=True)``: the manifest alone; with ``verify``
  its own checksum and the tensor files' presence and sizes are checked.
* ``verify(name)``: like ``load`` with ``verify=True``, keeping nothing.
* ``list()``: the committed checkpoints with a valid manifest, sorted by
  ``order_key`` (commit order); never one being written.
* ``delete(name)``: remove a checkpoint, so that it is never seen half-deleted.
* ``latest()``: the checkpoint the ``latest`` pointer names if it is listed,
  else the last listed one, else None.
* ``exists(name)`` (optional to override): a committed checkpoint of that name
  is there (it may still fail verification).

The tests in ``tests/test_checkpoint_storage.py`` run against any backend.
"""

from __future__ import annotations

import abc
import os
import re
from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np

from nnsim.checkpoint.errors import CheckpointError
from nnsim.checkpoint.manifest import (
    MANIFEST_FILE,
    checkpoint_name,
    is_valid_name,
    parse_checkpoint_name,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Storage",
    "backend_class",
    "checkpoint_name",
    "open_checkpoint",
    "open_storage",
    "parse_checkpoint_name",
]

ENTRY_POINT_GROUP = "nnsim.checkpoint_backends"
#: Used when the entry points are not installed (running from a source tree).
BUILTIN_BACKENDS = {
    "dir": "nnsim.checkpoint.dir_backend:DirStorage",
    "file": "nnsim.checkpoint.dir_backend:DirStorage",
    "fsspec": "nnsim.checkpoint.fsspec_backend:FsspecStorage",
}
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


class Storage(abc.ABC):
    """A place that holds named checkpoints; see the module docstring for the contract."""

    url: str

    @abc.abstractmethod
    def save(self, name: str, manifest: Mapping, tensors: Mapping[str, np.ndarray]) -> dict:
        """Write checkpoint ``name`` atomically; return its final manifest."""

    @abc.abstractmethod
    def load(self, name: str, *, verify: bool = True) -> tuple[dict, dict[str, np.ndarray]]:
        """(manifest, tensors) of checkpoint ``name``; with ``verify``, every file's SHA-256 is checked first."""

    @abc.abstractmethod
    def load_manifest(self, name: str, *, verify: bool = True) -> dict:
        """The manifest of checkpoint ``name``, without its tensors."""

    def verify(self, name: str) -> None:
        """CheckpointError if anything in checkpoint ``name`` is missing, changed or corrupt."""
        self.load(name, verify=True)

    @abc.abstractmethod
    def list(self) -> list[str]:
        """Names of the complete checkpoints, in commit order."""

    @abc.abstractmethod
    def delete(self, name: str) -> None:
        """Remove checkpoint ``name`` (complete or not)."""

    @abc.abstractmethod
    def latest(self) -> str | None:
        """The checkpoint ``latest`` points to if it is complete, else the newest complete one."""

    def exists(self, name: str) -> bool:
        """True if a committed checkpoint ``name`` is here (it may still fail verification)."""
        return name in self.list()

    def location(self, name: str) -> str:
        """The location of checkpoint ``name``, as `open_checkpoint` takes it."""
        return f"{self.url.rstrip('/')}/{name}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # Shared by the built-in backends -------------------------------------------
    def _missing(self, name: str, incomplete: bool) -> CheckpointError:
        """The error for a checkpoint that is not there, or was never committed."""
        label = self.location(name)
        if incomplete:
            return CheckpointError(
                f"checkpoint '{label}' is incomplete (its write was interrupted before it was "
                "committed); load another checkpoint"
            )
        names = self.list()
        if not names:
            hint = f"'{self.url}' holds no complete checkpoint"
        else:
            shown = ", ".join(names[-5:])
            hint = f"the latest ones there: {shown}"
        return CheckpointError(f"checkpoint '{label}' does not exist; {hint}")


def backend_class(scheme: str) -> type[Storage] | None:
    """The storage class registered for URL ``scheme``, or None."""
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == scheme:
            target = entry.value
            break
    else:
        target = BUILTIN_BACKENDS.get(scheme)
        if target is None:
            return None
    module, _, attr = target.partition(":")
    try:
        cls = getattr(__import__(module, fromlist=[attr]), attr)
    except (ImportError, AttributeError) as error:
        raise CheckpointError(
            f"checkpoint backend '{scheme}' ({target}) cannot be loaded ({error}); "
            "reinstall the package that provides it"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, Storage)):
        raise CheckpointError(
            f"checkpoint backend '{scheme}' ({target}) is not a Storage class; "
            "fix the package that registers it"
        )
    return cls


def open_storage(location: str | os.PathLike) -> Storage:
    """The storage at ``location``: a path -> `DirStorage`; ``scheme://...`` -> its backend or fsspec."""
    location = os.fspath(location)
    match = _SCHEME.match(location)
    scheme = match[1].lower() if match else "dir"
    cls = backend_class(scheme) or backend_class("fsspec")
    return cls(location)


def _split(location: str) -> tuple[str | None, str]:
    """(parent location, last component) of a path or URL."""
    match = _SCHEME.match(location)
    if match:
        rest = location[match.end() :].rstrip("/")
        if "/" not in rest:
            return (match[0], rest) if rest else (None, "")
        parent, _, base = rest.rpartition("/")
        return match[0] + parent, base
    path = Path(location)
    if path.name in ("", ".", ".."):
        return None, ""
    return str(path.parent), path.name


def open_checkpoint(location: str | os.PathLike) -> tuple[Storage, str]:
    """(storage, name) of one checkpoint.

    ``location`` is a checkpoint (``runs/a/ckpt_3_1234``, or its
    ``manifest.json``) or a storage (``runs/a``: its `Storage.latest`).
    """
    location = os.fspath(location)
    parent, base = _split(location)
    if base == MANIFEST_FILE and parent is not None:
        location = parent
        parent, base = _split(location)
    if base.startswith(".tmp-"):
        raise CheckpointError(
            f"'{location}' is an incomplete checkpoint (an interrupted write); "
            "pass a complete checkpoint or the folder that holds them"
        )
    parent_storage = None
    if parent is not None and is_valid_name(base):
        parent_storage = open_storage(parent)
        if parent_storage.exists(base):
            return parent_storage, base
    storage = open_storage(location)
    name = storage.latest()
    if name is not None:
        return storage, name
    if parent_storage is not None and parse_checkpoint_name(base) is not None:
        parent_storage.load_manifest(base)  # raises the precise error: missing or incomplete
    raise CheckpointError(
        f"no complete checkpoint at '{location}'; pass a checkpoint "
        "(.../<prefix>_<number>_<time_ps>) or a folder that holds checkpoints"
    )
