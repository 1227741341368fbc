"""numpy ``.npz`` tables (`nnsim.interop.table` says which names and orders are read).

The zip is checked before numpy reads it: at most `MAX_ENTRIES` members,
each a ``.npy`` whose header declares a numeric array of at most two
dimensions and `MAX_WEIGHTS_PER_LAYER` values, and whose uncompressed size
(from the zip directory, which bounds what zipfile will inflate) fits that
array. Only then does ``np.load(..., allow_pickle=False)`` read it, so a
zip bomb or a header declaring a terabyte is refused before anything is
allocated.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from nnsim.interop.model import MAX_WEIGHTS_PER_LAYER, DenseModel, ModelError
from nnsim.interop.table import model_from_table

MAX_ENTRIES = 8192
MAX_HEADER_SLACK = 1 << 16  # a .npy header is a few hundred bytes


def is_npz(head: bytes) -> bool:
    """A zip whose first member is a ``.npy`` (as ``np.savez`` writes)."""
    return head.startswith(b"PK\x03\x04") and _first_member(head).endswith(b".npy")


def _first_member(head: bytes) -> bytes:
    length = int.from_bytes(head[26:28], "little")
    return head[30 : 30 + length]


def checked_members(archive: zipfile.ZipFile, source: str) -> list[str]:
    """The array names of an npz, each header checked as the module docstring says."""
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        raise ModelError(f"'{source}' holds {len(infos)} entries (at most {MAX_ENTRIES} are read)")
    names = []
    for info in infos:
        if not info.filename.endswith(".npy") or info.is_dir():
            raise ModelError(f"'{source}': member '{info.filename}' is not a .npy array")
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(member)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(member)
        what = f"'{source}': array '{info.filename[:-4]}'"
        if dtype.hasobject or dtype.kind not in "fiu" or dtype.fields is not None:
            raise ModelError(f"{what} is {dtype}, not numbers")
        count = int(np.prod(shape, dtype=np.float64))  # float: no overflow on a forged shape
        if len(shape) > 2 or count > MAX_WEIGHTS_PER_LAYER:
            raise ModelError(
                f"{what} declares shape {tuple(shape)}; a dense layer's arrays have at most "
                f"2 dimensions and {MAX_WEIGHTS_PER_LAYER} values"
            )
        if (
            not count * dtype.itemsize
            <= info.file_size
            <= count * dtype.itemsize + MAX_HEADER_SLACK
        ):
            raise ModelError(
                f"{what} declares shape {tuple(shape)} {dtype} but holds {info.file_size} bytes"
            )
        names.append(info.filename[:-4])
    return names


def load_npz(path: Path) -> DenseModel:
    """The dense model in an ``.npz`` of weights and biases."""
    source = str(path)
    with zipfile.ZipFile(path) as archive:
        names = checked_members(archive, source)
    with np.load(path, allow_pickle=False) as arrays:
        tensors = {name: arrays[name] for name in names}
    return model_from_table(tensors, source)
