"""IDX files: the raw format MNIST and Fashion-MNIST are distributed in.

Layout (all integers big-endian): two zero bytes, a type code, the number of
dimensions, one 32-bit size per dimension, then the values in C order. The
reader checks every part of that against the file's length, so a truncated
download or a wrong file gives a `DataError` naming the file instead of a
reshape error deep inside numpy.

The header also bounds the read: a gzip file is inflated in chunks and
never past the size its header declares (nor past `MAX_IDX_BYTES`), so a
few kilobytes that inflate to gigabytes are refused in one line, not with
a MemoryError.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import math
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from nnsim.errors import DataError
from nnsim.files import write_bytes

IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
"""IDX type code -> the big-endian numpy dtype of the values."""

_GZIP_MAGIC = b"\x1f\x8b"
MAX_IDX_BYTES = 2**31
"""The most data one IDX file may declare (2 GiB; Fashion-MNIST's largest holds 47 MB)."""
_CHUNK = 2**20


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, plain or gzip-compressed, into a native-endian array.

    Compression is recognised by the gzip magic bytes, not the file name, so a
    renamed file still reads. The result is a writable copy in native byte
    order (uint8 for the image and label files of Fashion-MNIST).
    """
    path = Path(path)
    with _open(path) as stream:
        head = _read_upto(path, stream, 4)
        ndim = head[3] if len(head) == 4 else 0
        raw = head + _read_upto(path, stream, 4 * ndim)
        dtype, shape, offset = _parse_header(path, raw)
        expected = math.prod(shape) * dtype.itemsize
        if expected > MAX_IDX_BYTES:
            raise DataError(
                f"IDX file '{path}' declares {list(shape)} values ({expected} bytes), more than "
                f"the {MAX_IDX_BYTES // 2**30} GiB nnsim reads; the file is corrupt or not a dataset"
            )
        data = _read_upto(path, stream, expected)
        held = f"{len(data)} bytes"
        if _read_upto(path, stream, 1):  # more than declared (how much, if not inflated)
            if isinstance(stream, io.BufferedReader):
                held = f"{os.fstat(stream.fileno()).st_size - offset} bytes"
            else:
                held = f"more than {expected} bytes (inflated)"
    if held != f"{expected} bytes":
        raise DataError(
            f"IDX file '{path}' holds {held} of data but its header "
            f"{list(shape)} needs {expected}; the file is truncated or corrupt, "
            "download or install it again"
        )
    values = np.frombuffer(data, dtype=dtype, count=math.prod(shape))
    return values.reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write `array` as an IDX file (gzip-compressed if the name ends in .gz).

    The inverse of `read_idx`; used to build small datasets in tests and to
    repackage data in the format the Fashion-MNIST tooling expects.
    """
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None or array.ndim == 0 or array.ndim > 255:
        raise DataError(
            f"cannot write {array.dtype} array of shape {array.shape} to IDX file '{path}'; "
            "IDX holds 1 to 255 dimensions of uint8, int8, int16, int32, float32 or float64"
        )
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(IDX_DTYPES[code]).tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        # mtime=0 keeps the bytes identical from run to run.
        payload = gzip.compress(payload, mtime=0)
    write_bytes(path, payload)


@contextlib.contextmanager
def _open(path: Path) -> Iterator[BinaryIO]:
    """The file's byte stream, inflated if it is gzip; every I/O failure is a DataError."""
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise DataError(f"IDX file '{path}' {what}; pass the path of an IDX file")
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise DataError(f"cannot read IDX file '{path}': {exc.strerror or exc}") from exc
    with handle:
        magic = _read_upto(path, handle, 2)
        handle.seek(0)
        if magic != _GZIP_MAGIC:
            yield handle
            return
        with gzip.GzipFile(fileobj=handle, mode="rb") as inflated:
            yield inflated


def _read_upto(path: Path, stream: BinaryIO, size: int) -> bytearray:
    """Up to ``size`` bytes, read in chunks (a declared size is never allocated up front)."""
    data = bytearray()
    try:
        while len(data) < size:
            chunk = stream.read(min(size - len(data), _CHUNK))
            if not chunk:
                break
            data += chunk
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(
            f"IDX file '{path}' is not a valid gzip file ({exc}); download or install it again"
        ) from exc
    except OSError as exc:
        raise DataError(f"cannot read IDX file '{path}': {exc.strerror or exc}") from exc
    return data


def _parse_header(path: Path, raw: bytes) -> tuple[np.dtype, tuple[int, ...], int]:
    """The value dtype, the shape and the offset of the data in `raw`."""
    if len(raw) < 4 or raw[0:2] != b"\x00\x00":
        raise DataError(
            f"'{path}' is not an IDX file (it does not start with the IDX magic 00 00); "
            "pass an IDX file such as train-images-idx3-ubyte.gz"
        )
    code, ndim = raw[2], raw[3]
    dtype = IDX_DTYPES.get(code)
    if dtype is None:
        raise DataError(
            f"IDX file '{path}' has unknown type code 0x{code:02X}; "
            "the file is corrupt or not an IDX file"
        )
    if ndim == 0:
        raise DataError(f"IDX file '{path}' declares 0 dimensions; the file is corrupt")
    offset = 4 + 4 * ndim
    if len(raw) < offset:
        raise DataError(
            f"IDX file '{path}' ends inside its header ({len(raw)} of {offset} bytes); "
            "the file is truncated, download or install it again"
        )
    shape = tuple(int(size) for size in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    return dtype, shape, offset
