"""Writing a whole file so that a write that fails half way loses nothing.

Every file nnsim writes in one piece (weight exports, traces, statistics,
dot text, plots, run-folder files, sweep and prediction CSVs, exported PNGs)
goes through this module: the bytes go to a hidden temporary file in the
target's own folder (``.<name>.<pid>.<thread>.<random>.tmp``, so two
processes or threads never share one), which is flushed, ``fsync``-ed, given
the mode a new file gets under the umask, and renamed over the target with
``os.replace``; then the folder is ``fsync``-ed so the rename survives a
crash. A reader sees the old file or the new one, never half of one, and on
any exception (Ctrl-C included) the temporary file is removed and the
previous file stays as it was.

Two doors: `atomic_write` yields a file object (for code that writes text or
bytes itself), `atomic_write_with` hands a path to a library that wants one
(matplotlib's ``savefig``, safetensors' ``save_file``, Graphviz's ``-o``).
A folder that does not exist or cannot be written, and an ``OSError`` while
writing (a full disk), become one `NnsimError` line naming the file.

A target that exists and is not a regular file or folder (``/dev/stdout``, a
named pipe) is written directly: there is no previous file to keep, and a
rename would replace the device node. Appending logs (the console's
``logging``, TensorBoard event files) are not whole-file writes and do not
come here; checkpoints commit whole folders in ``nnsim.checkpoint``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from nnsim.errors import NnsimError

__all__ = ["atomic_write", "atomic_write_with", "write_bytes", "write_text"]

_MODES = ("w", "wb")


def _target(path: str | os.PathLike[str]) -> Path:
    """The file to replace: a symbolic link's target, so the link itself stays a link."""
    target = Path(path)
    if target.is_symlink():
        target = Path(os.path.realpath(target))
    return target


def _folder(target: Path) -> Path:
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise NnsimError(
            f"cannot write '{target}': folder '{folder}' does not exist; "
            "create it or choose another path"
        )
    if target.is_dir():
        raise NnsimError(f"cannot write '{target}': it is a folder; give a file name")
    return folder


def _is_special(target: Path) -> bool:
    """True for an existing device, FIFO or socket: written in place, never renamed over."""
    try:
        mode = target.stat().st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _failed(target: Path, error: OSError) -> NnsimError:
    reason = error.strerror or str(error)
    return NnsimError(
        f"cannot write '{target}': {reason}; check the folder's permissions and free space"
    )


def _create_temporary(target: Path, folder: Path) -> tuple[str, int]:
    """A new hidden file next to ``target`` and its open descriptor (mode 0666 less the umask)."""
    name = f".{target.name}.{os.getpid()}.{threading.get_ident()}.{secrets.token_hex(4)}.tmp"
    temporary = str(folder / name)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        return temporary, os.open(temporary, flags, 0o666)
    except OSError as error:
        raise _failed(target, error) from error


def _open_temporary(descriptor: int, mode: str, encoding: str | None, newline: str | None) -> IO:
    """The file object over the temporary file (its own function: tests make it fail)."""
    if mode == "wb":
        return os.fdopen(descriptor, "wb")
    return os.fdopen(descriptor, "w", encoding=encoding, newline=newline)


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable; a filesystem that cannot sync a folder is left as it is."""
    try:
        descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _finish(temporary: str, target: Path, folder: Path, mode: int | None, durable: bool) -> None:
    if mode is not None:
        os.chmod(temporary, mode)
    os.replace(temporary, target)
    if durable:
        _fsync_folder(folder)


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str],
    mode: str = "w",
    *,
    encoding: str | None = "utf-8",
    newline: str | None = None,
    durable: bool = True,
) -> Iterator[IO[Any]]:
    """A file object whose bytes replace ``path`` only when the ``with`` block ends normally.

    ``mode`` is ``"w"`` (text, ``encoding`` and ``newline`` as for `open`) or
    ``"wb"``. ``durable=False`` skips the two ``fsync`` calls, for many small
    files inside a folder that is itself committed later (an image export).
    """
    if mode not in _MODES:
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', not {mode!r}")
    target = _target(path)
    folder = _folder(target)
    if _is_special(target):
        try:
            text = {} if mode == "wb" else {"encoding": encoding, "newline": newline}
            with open(target, mode, **text) as handle:
                yield handle
        except OSError as error:
            raise _failed(target, error) from error
        return
    temporary, descriptor = _create_temporary(target, folder)
    try:
        try:
            handle = _open_temporary(descriptor, mode, encoding, newline)
        except BaseException:
            os.close(descriptor)
            raise
        with handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        _finish(temporary, target, folder, None, durable)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise _failed(target, error) from error
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_with(
    path: str | os.PathLike[str],
    writer: Callable[[str], object],
    *,
    durable: bool = True,
) -> Path:
    """Call ``writer(temporary_path)``, then move what it wrote to ``path``; return ``path``.

    The temporary file exists (empty) when ``writer`` is called; the writer
    may overwrite or recreate it. Its mode is set back to the umask's (a
    library such as safetensors creates files with 0600).
    """
    target = _target(path)
    folder = _folder(target)
    if _is_special(target):
        try:
            writer(str(target))
        except OSError as error:
            raise _failed(target, error) from error
        return Path(path)
    temporary, descriptor = _create_temporary(target, folder)
    try:
        mode = stat.S_IMODE(os.fstat(descriptor).st_mode)
        os.close(descriptor)
        writer(temporary)
        if durable:
            synced = os.open(temporary, os.O_RDONLY)
            try:
                os.fsync(synced)
            finally:
                os.close(synced)
        _finish(temporary, target, folder, mode, durable)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise _failed(target, error) from error
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return Path(path)


def write_text(
    path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8", newline: str | None = None
) -> None:
    """``Path.write_text``, atomically."""
    with atomic_write(path, "w", encoding=encoding, newline=newline) as handle:
        handle.write(text)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """``Path.write_bytes``, atomically."""
    with atomic_write(path, "wb") as handle:
        handle.write(data)
