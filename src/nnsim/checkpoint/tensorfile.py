"""safetensors files, written by streaming and read by memory-mapping.

The format (https://huggingface.co/docs/safetensors) is simple enough to own:

    8 bytes   N, the header length, unsigned little-endian
    N bytes   JSON: {"<tensor>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]},
                     ..., "__metadata__": {"<str>": "<str>"}}, padded with spaces
    the rest  the tensors' raw little-endian C-order bytes, back to back; offsets count
              from the end of the header and cover the rest exactly

``safetensors.numpy.save_file`` first copies every array into one ``bytes``;
here a `TensorFilePlan` streams each array's own memory to the file in chunks
(no copy), and its SHA-256 is computed from the same memory, so a checkpoint
costs one write of the data plus one hash pass. Tensors are laid out by
item size (largest first), then name, as the safetensors library does, so
every tensor is aligned for its dtype when the file is memory-mapped.

Reading validates the header completely (dtypes, shapes, offsets inside the
file, no gaps or overlaps) before it makes any array; arrays are views of a
copy-on-write memory map (`map_safetensors`) or of a buffer
(`arrays_from_buffer`). Nothing in a file is ever executed.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
import mmap
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from nnsim.checkpoint.errors import CheckpointError
from nnsim.checkpoint.safefile import map_regular, regular_size

#: safetensors dtype code -> the numpy dtype of its little-endian bytes.
DTYPES: dict[str, np.dtype] = {
    code: np.dtype(spec)
    for code, spec in {
        "BOOL": "|b1",
        "U8": "|u1",
        "I8": "|i1",
        "U16": "<u2",
        "I16": "<i2",
        "F16": "<f2",
        "U32": "<u4",
        "I32": "<i4",
        "F32": "<f4",
        "U64": "<u8",
        "I64": "<i8",
        "F64": "<f8",
    }.items()
}
_CODES = {dtype.str: code for code, dtype in DTYPES.items()}

#: Bytes handed to one write() or hash update(): large enough that the per-call
#: cost vanishes, small enough to stay in the CPU caches between calls.
CHUNK = 8 << 20
#: Bytes written between two requests to start writing back to disk.
WRITEBACK = 16 << 20
#: The safetensors library refuses larger headers; so do we.
MAX_HEADER = 100 << 20
METADATA_KEY = "__metadata__"


def _sync_file_range():
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):  # not Linux
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_SYNC_FILE_RANGE = _sync_file_range() if sys.platform.startswith("linux") else None
_SYNC_FILE_RANGE_WRITE = 2


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the OS to start writing a range of a file to disk, without waiting (a hint).

    Linux's sync_file_range(SYNC_FILE_RANGE_WRITE): the disk then works
    while the writer keeps writing and hashing, instead of all at the final
    fsync. Elsewhere this does nothing. Durability still comes from fsync.
    """
    if _SYNC_FILE_RANGE is not None:
        _SYNC_FILE_RANGE(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def dtype_code(dtype: np.dtype, tensor: str = "?") -> str:
    """The safetensors code of ``dtype`` ("F32", ...); CheckpointError if it has none."""
    dtype = np.dtype(dtype)
    if dtype.byteorder == ">":
        dtype = dtype.newbyteorder("<")
    code = _CODES.get(dtype.str)
    if code is None:
        raise CheckpointError(
            f"tensor {tensor!r} has dtype {dtype} which a checkpoint cannot store; "
            f"convert it to one of {', '.join(str(d) for d in DTYPES.values())}"
        )
    return code


def _storable(name: object, array: object) -> np.ndarray:
    """``array`` as C-contiguous little-endian bytes of a supported dtype (copied only if needed)."""
    if not isinstance(name, str) or name == METADATA_KEY:
        raise CheckpointError(f"tensor name {name!r} is not allowed; tensor names are strings")
    if not isinstance(array, np.ndarray):
        raise CheckpointError(f"tensor {name!r} is a {type(array).__name__}, not a numpy array")
    code = dtype_code(array.dtype, name)
    dtype = DTYPES[code]
    if array.dtype != dtype or array.dtype.byteorder == ">":
        array = array.astype(dtype)
    # 0-d arrays are always contiguous: good, as ascontiguousarray would make them 1-d
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    return array


@dataclass(frozen=True)
class TensorFilePlan:
    """The exact bytes of one safetensors file, before any is written.

    ``header`` is the length prefix and padded JSON; ``arrays`` are the
    tensors in file order, each C-contiguous and little-endian; ``nbytes`` is
    the file's size. The plan only references the arrays: they must not
    change until the file is written and hashed.
    """

    header: bytes
    arrays: tuple[tuple[str, np.ndarray], ...]
    entries: dict[str, dict]
    nbytes: int

    def pieces(self, chunk: int = CHUNK) -> Iterator[memoryview]:
        """The file's bytes in order, as zero-copy views of at most ``chunk`` bytes."""
        yield memoryview(self.header)
        for _, array in self.arrays:
            raw = memoryview(array.reshape(-1).view(np.uint8))
            for start in range(0, len(raw), chunk):
                yield raw[start : start + chunk]

    def sha256(self) -> str:
        """The hex SHA-256 of the whole file (hashlib releases the GIL: run it in a thread)."""
        digest = hashlib.sha256()
        for piece in self.pieces():
            digest.update(piece)
        return digest.hexdigest()

    def write_fd(self, fd: int, writeback: int = WRITEBACK) -> None:
        """Write the file through the OS file descriptor ``fd``, which must be at offset 0."""
        write_chunks(fd, self.pieces(), writeback)


def write_chunks(fd: int, chunks: Iterable[memoryview], writeback: int = WRITEBACK) -> None:
    """Write ``chunks`` through the OS file descriptor ``fd``, all of each, in order.

    Every ``writeback`` bytes the disk is asked to start writing what is
    already written (`start_writeback`), so a final fsync has little left
    to wait for; 0 leaves it all to the fsync.
    """
    written = flushed = 0
    for chunk in chunks:
        view = memoryview(chunk).cast("B")
        while view:
            count = os.write(fd, view)
            view = view[count:]
            written += count
        if writeback and written - flushed >= writeback:
            start_writeback(fd, flushed, written - flushed)
            flushed = written


def plan_file(
    tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None
) -> TensorFilePlan:
    """Lay out ``tensors`` (and string ``metadata``) as one safetensors file.

    Non-contiguous and big-endian arrays are copied; all others are used in
    place. Unsupported dtypes and non-array values raise CheckpointError
    naming the tensor.
    """
    arrays = [(name, _storable(name, array)) for name, array in tensors.items()]
    arrays.sort(key=lambda item: (-item[1].dtype.itemsize, item[0]))
    entries: dict[str, dict] = {}
    offset = 0
    for name, array in arrays:
        end = offset + array.nbytes
        entries[name] = {
            "dtype": dtype_code(array.dtype),
            "shape": list(array.shape),
            "data_offsets": [offset, end],
        }
        offset = end
    header: dict = dict(entries)
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise CheckpointError("safetensors metadata must map strings to strings")
        header[METADATA_KEY] = dict(metadata)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    prefix = len(text).to_bytes(8, "little") + text
    return TensorFilePlan(prefix, tuple(arrays), entries, len(prefix) + offset)


def write_safetensors(
    path: str | os.PathLike,
    tensors: Mapping[str, np.ndarray],
    metadata: Mapping[str, str] | None = None,
    *,
    fsync: bool = True,
) -> tuple[str, int]:
    """Write ``tensors`` to a new safetensors file; return (hex SHA-256, bytes).

    The data is streamed from the arrays' memory while a second thread hashes
    the same memory, so the cost is about one write, not write + copy + hash.
    """
    plan = plan_file(tensors, metadata)
    with ThreadPoolExecutor(1) as pool:
        digest = pool.submit(plan.sha256)
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o644
        )
        try:
            plan.write_fd(fd)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        return digest.result(), plan.nbytes


# Reading ----------------------------------------------------------------------
@dataclass(frozen=True)
class TensorInfo:
    """One tensor's entry in a safetensors header; offsets are absolute in the file."""

    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass(frozen=True)
class Header:
    """A validated safetensors header."""

    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]
    data_start: int


def _bad(source: str, why: str) -> CheckpointError:
    return CheckpointError(
        f"{source} is not a valid safetensors file ({why}); it is damaged: use another copy"
    )


def parse_header(buffer, file_size: int, source: str = "tensor file") -> Header:
    """Validate the header at the start of ``buffer`` (bytes-like) of a file of ``file_size`` bytes.

    Refuses, with a CheckpointError naming ``source``: a file too short for
    its header, a header that is not a JSON object, unknown dtypes, shapes
    that do not match the byte ranges, and byte ranges that leave gaps,
    overlap or leave the file.
    """
    if file_size < 8 or len(buffer) < 8:
        raise _bad(source, f"{file_size} bytes is too short")
    length = int.from_bytes(bytes(buffer[:8]), "little")
    if length > MAX_HEADER or 8 + length > file_size or 8 + length > len(buffer):
        raise _bad(source, f"header length {length} does not fit in {file_size} bytes")
    try:
        header = json.loads(bytes(buffer[8 : 8 + length]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise _bad(source, f"header is not JSON: {error}") from None
    if not isinstance(header, dict):
        raise _bad(source, "header is not a JSON object")
    metadata = header.pop(METADATA_KEY, None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise _bad(source, "__metadata__ is not a map of strings")
    data_start = 8 + length
    tensors: dict[str, TensorInfo] = {}
    for name, entry in header.items():
        try:
            dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
            valid = (
                dtype in DTYPES
                and isinstance(shape, list)
                and all(type(n) is int and n >= 0 for n in shape)
                and type(begin) is int
                and type(end) is int
                and 0 <= begin <= end
            )
        except (TypeError, KeyError, ValueError):
            valid = False
        if not valid:
            raise _bad(source, f"tensor {name!r} has a malformed entry")
        if math.prod(shape) * DTYPES[dtype].itemsize != end - begin:
            raise _bad(source, f"tensor {name!r} has {end - begin} bytes for shape {shape} {dtype}")
        tensors[name] = TensorInfo(dtype, tuple(shape), data_start + begin, data_start + end)
    position = data_start
    for name, info in sorted(tensors.items(), key=lambda item: (item[1].begin, item[1].end)):
        if info.begin != position:
            raise _bad(source, f"tensor {name!r} does not start where the previous one ends")
        position = info.end
    if position != file_size:
        raise _bad(source, f"its tensors end at byte {position} of {file_size}")
    return Header(tensors, metadata, data_start)


def arrays_from_buffer(buffer, header: Header) -> dict[str, np.ndarray]:
    """Views of the tensors in ``buffer`` (the whole file); writable iff the buffer is."""
    raw = np.frombuffer(buffer, dtype=np.uint8)
    return {
        name: raw[info.begin : info.end].view(DTYPES[info.dtype]).reshape(info.shape)
        for name, info in header.tensors.items()
    }


def map_file(
    path: str | os.PathLike, what: str | None = None, *, follow_links: bool = False
) -> mmap.mmap:
    """A copy-on-write memory map of the whole regular file (writes to it never reach the file).

    Opened through `nnsim.checkpoint.safefile.map_regular`: a symbolic link
    (unless ``follow_links``), a FIFO, a device or a folder is refused with a
    CheckpointError naming ``what``.
    """
    return map_regular(path, what or f"tensor file '{path}'", follow_links=follow_links)


def hash_buffer(buffer, chunk: int = CHUNK) -> str:
    """Hex SHA-256 of a bytes-like object, in chunks that release the GIL."""
    view = memoryview(buffer).cast("B")
    digest = hashlib.sha256()
    for start in range(0, len(view), chunk):
        digest.update(view[start : start + chunk])
    return digest.hexdigest()


def read_safetensors(
    path: str | os.PathLike, source: str | None = None
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(tensors, metadata) of a safetensors file, memory-mapped copy-on-write.

    The arrays are writable; changing them never changes the file. Files too
    short to map are refused like any other malformed file, and so is a path
    that is not a regular file (a FIFO, a device, a folder); a symbolic link
    the caller passes is followed.
    """
    source = source or f"tensor file '{path}'"
    size = regular_size(path, source, follow_links=True)
    if size < 8:
        raise _bad(source, f"{size} bytes is too short")
    mapped = map_file(path, source, follow_links=True)
    size = len(mapped)
    header = parse_header(mapped, size, source)
    return arrays_from_buffer(mapped, header), header.metadata


def safetensors_from_bytes(
    buffer, source: str = "tensor data"
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(tensors, metadata) from the bytes of a safetensors file, without copying.

    Arrays are read-only views if ``buffer`` is ``bytes``, writable views if it
    is a ``bytearray``.
    """
    header = parse_header(buffer, len(buffer), source)
    return arrays_from_buffer(buffer, header), header.metadata
