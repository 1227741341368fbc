"""IDX files: the raw format MNIST and Fashion-MNIST are distributed in.

Layout (all integers big-endian): two zero bytes, a type code, the number of
dimensions, one 32-bit size per dimension, then the values in C order. The
reader checks every part of that against the file's length, so a truncated
download or a wrong file gives a `DataError` naming the file instead of a
reshape error deep inside numpy.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from nnsim.errors import DataError

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


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, plain or gzip-compressed, into a native-endian array.

    Compression is recognised by the gzip magic bytes, not the file name, so a
    renamed file still reads. The result is a writable copy in native byte
    order (uint8 for the image and label files of Fashion-MNIST).
    """
    path = Path(path)
    raw = _read_bytes(path)
    dtype, shape, offset = _parse_header(path, raw)
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - offset != expected:
        raise DataError(
            f"IDX file '{path}' holds {len(raw) - offset} bytes of data but its header "
            f"{list(shape)} needs {expected}; the file is truncated or corrupt, "
            "download or install it again"
        )
    values = np.frombuffer(raw, dtype=dtype, count=math.prod(shape), offset=offset)
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
    path.write_bytes(payload)


def _read_bytes(path: Path) -> bytes:
    """The decompressed bytes of `path`, with every I/O failure as a DataError."""
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise DataError(f"IDX file '{path}' {what}; pass the path of an IDX file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read IDX file '{path}': {exc.strerror or exc}") from exc
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"IDX file '{path}' is not a valid gzip file ({exc}); download or install it again"
        ) from exc


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
