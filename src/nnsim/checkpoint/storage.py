"""Checkpoint storage: the byte-level backend API, the backend registry, and opening by location.

A storage holds named checkpoints. A checkpoint is a JSON-able ``manifest``
dict plus named numpy ``tensors``; the storage writes both atomically and
verifiably, and gives them back only if nothing was changed or lost.

Opening
-------
``open_storage(location)`` picks the backend from the location: a plain path
is the local directory backend (`DirStorage`); ``scheme://...`` uses the
backend registered for ``scheme`` (`register_backend`, then the
``nnsim.checkpoint_backends`` entry points), else the generic fsspec
backend (``memory://``, ``s3://`` with s3fs, ...). ``open_checkpoint(location)``
takes the location of one checkpoint (``runs/a/ckpt_3_1234``) or of a
storage (``runs/a``, meaning its latest checkpoint).

Writing a backend
-----------------
A backend moves bytes; the format (manifest, shards, SHA-256 checks, the
``latest`` pointer, bad-entry reporting) lives once in
`nnsim.checkpoint.format` and is the same for every backend. Subclass
`Storage` and implement its byte-level operations. ``checkpoint`` is a
checked checkpoint name and ``file`` a file name without a path separator
(``manifest.json``, ``tensors-00000-of-00001.safetensors``); ``what``
names the file in an error. Required:

* ``begin(checkpoint)`` -> a staging handle (anything): a place to write
  checkpoint ``checkpoint`` that no reader sees.
* ``write_file(staging, file, chunks)``: write the bytes of the iterable
  ``chunks`` (memoryviews) as ``file``; durably, if the medium has
  durability. It is called from several threads at once, one per file.
  The manifest is written last.
* ``commit(staging)``: make the whole checkpoint visible at once; raise
  ``FileExistsError`` if a committed checkpoint of that name appeared
  meanwhile. A store with no atomic rename may treat writing the manifest
  as the commit (readers treat a checkpoint without one as incomplete).
* ``read_file(checkpoint, file, what, limit)`` -> bytes: a committed file,
  never reading more than ``limit + 1`` bytes (refuse a larger file with
  ``safefile.too_large``); ``FileNotFoundError`` if it is not there;
  `CheckpointError` if it is not a plain file (a link, a FIFO, a folder):
  never follow a link and never block.
* ``file_size(checkpoint, file, what)`` -> int, checked the same way.
* ``list_entries()`` -> the `Listed` entries at the top (checkpoint folders
  with ``kind=None``; anything else with what it is); never staging areas.
* ``remove(checkpoint)``: make it disappear at once (then free its
  files); ``FileNotFoundError`` if it is not there.
* ``read_latest(what, limit)`` / ``write_latest(data)``: the bytes of the
  ``latest`` pointer (bounded, ``FileNotFoundError`` if none), and
  replacing them atomically.

Optional, with generic defaults: ``abort(staging)`` (drop a failed save),
``staging_token(staging)`` and ``join_staging(checkpoint, token)`` (let the
ranks of a parallel run write their files into one staging area; without
them rank 0 writes every rank's files),
``map_file(checkpoint, file, what, size)`` (a writable buffer of the file
whose changes never reach it: the directory backend memory-maps it
copy-on-write; the default copies `read_file` into a bytearray),
``has_file`` and ``has_leftovers`` (an interrupted write of that name is
there: loading it says "incomplete").

The constructor takes the location string, sets ``self.url`` and must not
create anything (only a save does). Register the class under its URL
scheme in your package's ``pyproject.toml``::

    [project.entry-points."nnsim.checkpoint_backends"]
    mystore = "mypackage.storage:MyStorage"

or, in a script or a test, ``register_backend("mystore", MyStorage)``.
``open_storage("mystore://bucket/run1")`` then calls
``MyStorage("mystore://bucket/run1")``. The public methods (`Storage.save`,
``load``, ``load_manifest``, ``verify``, ``scan``, ``list``, ``latest``,
``delete``, ``exists``) come from the format on top of these operations.
``tests/test_checkpoint_storage.py`` runs the same tests against ``dir``,
``fsspec`` and a backend defined in the test file.
"""

from __future__ import annotations

import abc
import os
import re
from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np

from nnsim.checkpoint import format as fmt
from nnsim.checkpoint.errors import CheckpointError, warn
from nnsim.checkpoint.format import CheckpointEntry, Listed, pointer_name
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
    "Listed",
    "Storage",
    "backend_class",
    "checkpoint_name",
    "open_checkpoint",
    "open_storage",
    "parse_checkpoint_name",
    "pointer_name",
    "register_backend",
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
    """A place that holds named checkpoints: byte-level operations below, the format on top.

    See the module docstring for what a backend implements.
    """

    url: str

    # The byte-level operations a backend implements ----------------------------------
    @abc.abstractmethod
    def begin(self, checkpoint: str) -> object:
        """A staging handle to write checkpoint ``checkpoint`` into, invisible to readers."""

    @abc.abstractmethod
    def write_file(self, staging: object, file: str, chunks: Iterable[memoryview]) -> None:
        """Write ``file`` into ``staging`` from ``chunks`` (durably, where the medium allows)."""

    @abc.abstractmethod
    def commit(self, staging: object) -> None:
        """Make the staged checkpoint visible at once; FileExistsError if its name is taken."""

    def abort(self, staging: object) -> None:  # noqa: B027 - optional, nothing to drop by default
        """Drop a staged checkpoint whose save failed (called for any failure before the commit)."""

    @abc.abstractmethod
    def read_file(self, checkpoint: str, file: str, what: str, limit: int) -> bytes:
        """The bytes of a committed plain file, at most ``limit``; FileNotFoundError if absent."""

    @abc.abstractmethod
    def file_size(self, checkpoint: str, file: str, what: str) -> int:
        """The size of a committed plain file; FileNotFoundError if absent."""

    def map_file(self, checkpoint: str, file: str, what: str, size: int):
        """A writable buffer of the file (``size`` bytes expected); changing it never changes the file."""
        return bytearray(self.read_file(checkpoint, file, what, size))

    def staging_token(self, staging: object) -> str | None:
        """A string other processes turn back into ``staging`` (`join_staging`), or None.

        The ranks of a parallel run each write their own tensor files into
        the staging area rank 0 began. None (the default) says that other
        processes cannot reach it (``memory://``): rank 0 then writes every
        rank's files, from the bytes they send it.
        """
        return None

    def join_staging(self, checkpoint: str, token: str) -> object:
        """The staging area of ``checkpoint`` that another process began (its `staging_token`)."""
        raise CheckpointError(
            f"checkpoint storage '{self.url}' cannot be written by several processes"
        )

    def has_file(self, checkpoint: str, file: str) -> bool:
        """Something is at ``file`` of ``checkpoint`` (it may not be a plain file)."""
        try:
            self.file_size(checkpoint, file, f"'{file}' of '{self.location(checkpoint)}'")
        except FileNotFoundError:
            return False
        except CheckpointError:
            return True
        return True

    def has_leftovers(self, checkpoint: str) -> bool:
        """Files of an uncommitted (interrupted) write of ``checkpoint`` are there."""
        return False

    @abc.abstractmethod
    def list_entries(self) -> list[Listed]:
        """The entries at the top of the storage, staging areas excluded."""

    @abc.abstractmethod
    def remove(self, checkpoint: str) -> None:
        """Make ``checkpoint`` disappear at once, then free its files; FileNotFoundError if absent."""

    @abc.abstractmethod
    def read_latest(self, what: str, limit: int) -> bytes:
        """The bytes of the ``latest`` pointer, at most ``limit``; FileNotFoundError if none."""

    @abc.abstractmethod
    def write_latest(self, data: bytes) -> None:
        """Replace the ``latest`` pointer by ``data`` atomically."""

    # The format, once for every backend (nnsim.checkpoint.format) -----------------------
    def save(self, name: str, manifest: Mapping, tensors: Mapping[str, np.ndarray]) -> dict:
        """Write checkpoint ``name`` atomically and point ``latest`` at it; return its final manifest."""
        return fmt.save(self, name, manifest, tensors)

    def load(self, name: str, *, verify: bool = True) -> tuple[dict, dict[str, np.ndarray]]:
        """(manifest, tensors) of checkpoint ``name``; with ``verify``, every file's SHA-256 is checked first.

        Without it, sizes and headers still are. The arrays are writable;
        changing them never changes a file.
        """
        return fmt.load(self, name, verify=verify)

    def load_manifest(self, name: str, *, verify: bool = True) -> dict:
        """The manifest of ``name``; with ``verify``, its checksum and its files' sizes are checked.

        ``verify=False`` shows the manifest of a damaged checkpoint (to inspect it).
        """
        return fmt.load_manifest(self, name, verify=verify)

    def verify(self, name: str) -> None:
        """CheckpointError if anything in checkpoint ``name`` is missing, changed or corrupt."""
        fmt.open_files(self, name, verify=True)

    def scan(self) -> list[CheckpointEntry]:
        """Every checkpoint entry, usable or not, in commit order; never raises for a bad one."""
        return fmt.scan(self)

    def delete(self, name: str) -> None:
        """Remove checkpoint ``name`` (complete or not); it is never seen half-deleted."""
        fmt.delete(self, name)

    def read_pointer(self) -> str | None:
        """The name the ``latest`` pointer holds (None: no pointer); CheckpointError if unreadable."""
        return fmt.read_pointer(self)

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
        return is_valid_name(name) and self.has_file(name, MANIFEST_FILE)

    def location(self, name: str) -> str:
        """The location of checkpoint ``name``, as `open_checkpoint` takes it."""
        return f"{self.url.rstrip('/')}/{name}"

    def pointer_failed(self, name: str, error: OSError) -> None:
        """Warn that ``name`` is committed but ``latest`` still names an older checkpoint."""
        warn(
            f"checkpoint '{self.location(name)}' is written, but the latest pointer of "
            f"'{self.url}' could not be updated ({getattr(error, 'strerror', None) or error}); "
            "the run goes on: restart from that checkpoint by its name, and check the free space"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


_REGISTERED: dict[str, type[Storage]] = {}


def register_backend(scheme: str, cls: type[Storage]) -> None:
    """Serve ``scheme://...`` locations with ``cls`` in this process (before any entry point)."""
    if not (isinstance(cls, type) and issubclass(cls, Storage)):
        raise TypeError(f"a checkpoint backend must be a Storage subclass, not {cls!r}")
    _REGISTERED[scheme.lower()] = cls


def backend_class(scheme: str) -> type[Storage] | None:
    """The storage class registered for URL ``scheme`` (`register_backend`, entry points), or None."""
    if scheme in _REGISTERED:
        return _REGISTERED[scheme]
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
