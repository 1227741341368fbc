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
* ``scan()``: every entry that is or looks like a checkpoint, as
  `CheckpointEntry` (name, manifest or the one-line problem), sorted by
  ``order_key``; a bad entry is reported there, never raised, and reading
  it must not block or read without bound (see `nnsim.checkpoint.safefile`).
  Never one being written.
* ``delete(name)``: remove a checkpoint, so that it is never seen half-deleted.
* ``read_pointer()`` (optional): the name the ``latest`` pointer holds, or None.
* ``exists(name)`` (optional to override): a committed checkpoint of that name
  is there (it may still fail verification).

``list()`` (the usable checkpoints) and ``latest()`` (the one ``latest``
names if it is usable, else the newest usable one) are built on these.

The tests in ``tests/test_checkpoint_storage.py`` run against any backend.
"""

from __future__ import annotations

import abc
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np

from nnsim.checkpoint.errors import CheckpointError, warn
from nnsim.checkpoint.manifest import (
    MANIFEST_FILE,
    checkpoint_name,
    is_valid_name,
    order_key,
    parse_checkpoint_name,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "CheckpointEntry",
    "Storage",
    "backend_class",
    "checkpoint_name",
    "open_checkpoint",
    "open_storage",
    "parse_checkpoint_name",
    "pointer_name",
]

ENTRY_POINT_GROUP = "nnsim.checkpoint_backends"
#: Used when the entry points are not installed (running from a source tree).
BUILTIN_BACKENDS = {
    "dir": "nnsim.checkpoint.dir_backend:DirStorage",
    "file": "nnsim.checkpoint.dir_backend:DirStorage",
    "fsspec": "nnsim.checkpoint.fsspec_backend:FsspecStorage",
}
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


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
    def scan(self) -> list[CheckpointEntry]:
        """Every checkpoint entry, usable or not, in commit order; never raises for a bad one."""

    @abc.abstractmethod
    def delete(self, name: str) -> None:
        """Remove checkpoint ``name`` (complete or not)."""

    def read_pointer(self) -> str | None:
        """The name the ``latest`` pointer holds (None: no pointer); CheckpointError if unreadable."""
        return None

    def list(self) -> list[str]:
        """Names of the usable checkpoints (complete, valid manifest), in commit order."""
        return [entry.name for entry in self.scan() if entry.usable]

    def latest(self) -> str | None:
        """The checkpoint ``latest`` points to if it is usable, else the newest usable one."""
        return self.find_latest()[0]

    def find_latest(
        self, entries: list[CheckpointEntry] | None = None
    ) -> tuple[str | None, list[CheckpointEntry]]:
        """(`latest`, the unusable entries it passed over): those newer than it, or pointed to.

        A ``latest`` pointer that cannot be read is passed over too, as an
        entry named ``latest``. ``entries`` is a `scan` already made.
        """
        entries = self.scan() if entries is None else entries
        usable = [entry.name for entry in entries if entry.usable]
        skipped: list[CheckpointEntry] = []
        try:
            pointed = self.read_pointer()
        except CheckpointError as error:
            pointed = None
            skipped.append(CheckpointEntry("latest", problem=str(error)))
        chosen = pointed if pointed in usable else (usable[-1] if usable else None)
        for entry in entries:
            if entry.usable:
                continue
            if chosen is None or entry.name == pointed or order_key(entry.name) > order_key(chosen):
                skipped.append(entry)
        return chosen, skipped

    def exists(self, name: str) -> bool:
        """True if a committed checkpoint ``name`` is here (it may still fail verification)."""
        return name in self.list()

    def location(self, name: str) -> str:
        """The location of checkpoint ``name``, as `open_checkpoint` takes it."""
        return f"{self.url.rstrip('/')}/{name}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # Shared by the built-in backends -------------------------------------------
    def _pointer_failed(self, name: str, error: OSError) -> None:
        """Warn that ``name`` is committed but ``latest`` still names an older checkpoint."""
        warn(
            f"checkpoint '{self.location(name)}' is written, but the latest pointer of "
            f"'{self.url}' could not be updated ({getattr(error, 'strerror', None) or error}); "
            "the run goes on: restart from that checkpoint by its name, and check the free space"
        )

    def _missing(self, name: str, incomplete: bool) -> CheckpointError:
        """The error for a checkpoint that is not there, or was never committed."""
        label = self.location(name)
        if incomplete:
            return CheckpointError(
                f"checkpoint '{label}' is incomplete: it has no {MANIFEST_FILE} (its write was "
                "interrupted before it was committed, or the file was removed); "
                "load another checkpoint"
            )
        names = self.list()
        if not names:
            hint = f"'{self.url}' holds no complete checkpoint"
        else:
            shown = ", ".join(names[-5:])
            hint = f"the latest ones there: {shown}"
        return CheckpointError(
            f"checkpoint '{label}' does not exist; {hint} (it was never written, or was "
            "deleted since, e.g. by a keep-last/keep-best policy)"
        )


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
    For a storage, unusable entries newer than the one chosen (or named by
    ``latest``) are skipped with a `CheckpointWarning` each; if none is
    usable, the error names the newest one and why. A folder that is
    neither is "not a checkpoint".
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
    name, skipped = storage.find_latest()
    if name is not None:
        for entry in skipped:
            warn(f"skipped {entry.name}: {entry.problem}")
        return storage, name
    if parent_storage is not None and parse_checkpoint_name(base) is not None:
        parent_storage.load_manifest(base)  # raises the precise error: missing or incomplete
    if skipped:
        newest = skipped[-1]
        raise CheckpointError(
            f"no usable checkpoint at '{location}' ({_count(len(skipped))} unusable; "
            f"the newest, {newest.name}: {newest.problem})"
        )
    if _SCHEME.match(location) is None:
        path = Path(location)
        if not path.exists():
            raise CheckpointError(
                f"no complete checkpoint at '{location}' (it does not exist); pass a checkpoint "
                "folder (.../<prefix>_<number>_<time_ps>) or a folder that holds checkpoints"
            )
        if path.is_dir():
            raise CheckpointError(
                f"not a checkpoint: '{location}' has no {MANIFEST_FILE} and holds no checkpoints; "
                "pass a checkpoint folder (.../<prefix>_<number>_<time_ps>) or a folder that holds them"
            )
        raise CheckpointError(
            f"not a checkpoint: '{location}' is a file; pass a checkpoint folder "
            "(.../<prefix>_<number>_<time_ps>) or a folder that holds checkpoints"
        )
    raise CheckpointError(
        f"no complete checkpoint at '{location}'; pass a checkpoint "
        "(.../<prefix>_<number>_<time_ps>) or a folder that holds checkpoints"
    )


def _count(number: int) -> str:
    return f"{number} entry" if number == 1 else f"{number} entries"
