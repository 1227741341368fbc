"""Opening the files of a checkpoint so that a crafted folder can neither hang, escape nor flood a reader.

A checkpoint folder may come from a stranger. Every reader of checkpoint
files goes through this module, which opens only **regular files**, never
follows a symbolic link in the last path component (``O_NOFOLLOW``),
opens with ``O_NONBLOCK`` so that a FIFO cannot block the open, checks the
file type with ``fstat`` on the opened descriptor (so a file swapped in
between the check and the open is caught too), and reads at most a given
number of bytes. Checkpoint readers open ``<folder>/<file>`` with a file
name checked to have no path separator, so the file is always directly in
the checkpoint folder; the folder itself may be a link the user chose
(``run/checkpoints/best``).

Errors are `CheckpointError` lines that name the file and what it is (a
symbolic link, a FIFO, a device, a folder); they never quote the size or
the bytes of what a link points to, since that may be outside the
checkpoint. A missing file raises ``FileNotFoundError`` for the caller to
word (missing, incomplete, interrupted).

The same checks for fsspec filesystems (`fsspec_regular_size`,
`read_fsspec`) use the filesystem's ``info``: there is no descriptor to
check, so a file swapped in between the check and the read is caught only
by the size bound and the SHA-256.
"""

from __future__ import annotations

import errno
import mmap
import os
import stat
from typing import Any

from nnsim.checkpoint.errors import CheckpointError

#: The largest ``manifest.json`` nnsim reads: far above a real one (the graph,
#: scalar state and queue of a model; tensors are in the shards), far below
#: what would exhaust memory when parsed.
MAX_MANIFEST_BYTES = 64 << 20
#: The largest ``latest`` pointer nnsim reads (it holds one name of at most 200 characters).
MAX_POINTER_BYTES = 4096

_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_NOCTTY", 0)
)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
#: errno values of opening a symbolic link with O_NOFOLLOW (Linux: ELOOP, FreeBSD: EMLINK, NetBSD: EFTYPE).
_LINK_ERRNOS = {errno.ELOOP, errno.EMLINK} | ({errno.EFTYPE} if hasattr(errno, "EFTYPE") else set())


def kind_of(mode: int) -> str:
    """What a file of stat mode ``mode`` is, for people: ``"a FIFO (named pipe)"``, ..."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def not_regular(what: str, kind: str) -> CheckpointError:
    """The error for a checkpoint file that is a link, FIFO, device or folder."""
    return CheckpointError(
        f"{what} is {kind}, not a regular file; nnsim reads only the checkpoint's own files "
        "(replace it with the real file or load another checkpoint)"
    )


def open_regular(path: str | os.PathLike, what: str, *, follow_links: bool = False) -> int:
    """An OS file descriptor of the regular file ``path``, open for reading.

    ``what`` names the file in errors ("manifest.json of checkpoint 'x'").
    Refused with a `CheckpointError`: a symbolic link (unless
    ``follow_links``, for a path the user typed), a FIFO, a device, a socket
    or a folder. ``FileNotFoundError`` if there is nothing at ``path``;
    other ``OSError`` (permissions) become a `CheckpointError` too.
    """
    try:
        before = os.stat(path) if follow_links else os.lstat(path)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise _unreadable(what, error) from None
    if not stat.S_ISREG(before.st_mode):  # refused before it is ever opened
        raise not_regular(what, kind_of(before.st_mode))
    try:
        fd = os.open(path, _FLAGS | (0 if follow_links else _NOFOLLOW))
    except FileNotFoundError:
        raise
    except OSError as error:
        if error.errno in _LINK_ERRNOS and not follow_links:
            raise not_regular(what, "a symbolic link") from None
        raise _unreadable(what, error) from None
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise not_regular(what, kind_of(opened.st_mode))
        if (opened.st_dev, opened.st_ino) != (before.st_dev, before.st_ino):
            raise CheckpointError(
                f"{what} was replaced while it was being opened; load the checkpoint again"
            )
    except BaseException:
        os.close(fd)
        raise
    return fd


def _unreadable(what: str, error: OSError) -> CheckpointError:
    return CheckpointError(f"cannot read {what} ({error.strerror or error}); check its permissions")


def read_regular(
    path: str | os.PathLike, what: str, limit: int, *, follow_links: bool = False
) -> bytes:
    """The bytes of the regular file ``path``, refused if it holds more than ``limit`` bytes.

    At most ``limit + 1`` bytes are ever read, even from a file that grows
    while it is read.
    """
    fd = open_regular(path, what, follow_links=follow_links)
    try:
        if os.fstat(fd).st_size > limit:
            raise too_large(what, limit)
        chunks, got = [], 0
        while got <= limit:
            try:
                chunk = os.read(fd, limit + 1 - got)
            except OSError as error:
                raise _unreadable(what, error) from None
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    finally:
        os.close(fd)
    if got > limit:
        raise too_large(what, limit)
    return b"".join(chunks)


def too_large(what: str, limit: int) -> CheckpointError:
    return CheckpointError(
        f"{what} is larger than {limit} bytes, more than nnsim ever writes there; "
        "it is not an nnsim file: load another checkpoint"
    )


def map_regular(path: str | os.PathLike, what: str, *, follow_links: bool = False) -> mmap.mmap:
    """A copy-on-write memory map of the whole regular file ``path`` (writes never reach the file).

    The caller checks the map's length against the size it expects before
    reading any of it; an empty file cannot be mapped and is refused.
    """
    fd = open_regular(path, what, follow_links=follow_links)
    try:
        if os.fstat(fd).st_size == 0:
            raise CheckpointError(f"{what} is empty; it is damaged: use another copy")
        try:
            return mmap.mmap(fd, 0, access=mmap.ACCESS_COPY)
        except (OSError, ValueError) as error:
            raise CheckpointError(f"cannot map {what} into memory ({error})") from None
    finally:
        os.close(fd)


def regular_size(path: str | os.PathLike, what: str, *, follow_links: bool = False) -> int:
    """The size of the regular file ``path``, checked like `open_regular` (the file is opened)."""
    fd = open_regular(path, what, follow_links=follow_links)
    try:
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


# fsspec ---------------------------------------------------------------------------
def fsspec_regular_size(fs: Any, path: str, what: str) -> int:
    """The size of file ``path`` on fsspec filesystem ``fs``; refused unless it is a plain file.

    ``FileNotFoundError`` if there is nothing there. Local filesystems
    report links (``islink``) and FIFOs or devices (type ``other``).
    """
    try:
        info = fs.info(path)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise CheckpointError(f"cannot read {what} ({error})") from None
    kind = info.get("type")
    if info.get("islink"):
        raise not_regular(what, "a symbolic link")
    if kind != "file":
        raise not_regular(what, "a folder" if kind == "directory" else "not a plain file")
    size = info.get("size")
    if type(size) is not int or size < 0:
        raise CheckpointError(f"{what} has no known size; check the storage")
    return size


def read_fsspec(fs: Any, path: str, what: str, limit: int) -> bytes:
    """The bytes of file ``path`` on ``fs``, checked like `fsspec_regular_size`, at most ``limit``."""
    if fsspec_regular_size(fs, path, what) > limit:
        raise too_large(what, limit)
    try:
        with fs.open(path, "rb") as stream:
            data = stream.read(limit + 1)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise CheckpointError(f"cannot read {what} ({error})") from None
    if len(data) > limit:
        raise too_large(what, limit)
    return data
