"""Bytes between ranks: a JSON tree plus raw tensors, never pickle.

Everything that crosses ranks — events in flight, printed lines, the
components' final state — is first encoded by the checkpoint walk's
`nnsim.state.Encoder` (plain JSON values, tagged objects, arrays in a tensor
table), then framed here:

    8 bytes: length N of the header (little-endian)
    N bytes: JSON {"tree": ..., "tensors": {name: [dtype, shape, offset]}}
    the tensors' bytes, one after another

Events in flight are framed by `pack_events`: their keys as binary words
ahead of that framing, so a window's events cost one small JSON text.
The receiving side decodes with `nnsim.state.Decoder`, which instantiates
only registered classes, exactly as a checkpoint is loaded.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from nnsim.errors import StateError
from nnsim.state.encode import NP_SCALARS

_LENGTH = 8


def pack(tree: Any, tensors: dict[str, np.ndarray] | None = None) -> bytes:
    """``tree`` (JSON-able) and its tensor table as one bytes object."""
    table, chunks, offset = {}, [], 0
    for name, array in (tensors or {}).items():
        data = np.ascontiguousarray(array).tobytes()
        table[name] = [array.dtype.str, list(array.shape), offset]
        chunks.append(data)
        offset += len(data)
    header = json.dumps({"tree": tree, "tensors": table}, separators=(",", ":")).encode()
    return b"".join([len(header).to_bytes(_LENGTH, "little"), header, *chunks])


def unpack(data: bytes | memoryview) -> tuple[Any, dict[str, np.ndarray]]:
    """The (tree, tensors) that `pack` framed; StateError for anything else."""
    data = memoryview(data)
    if len(data) < _LENGTH:
        raise StateError("a message between ranks is truncated")
    size = int.from_bytes(data[:_LENGTH], "little")
    if size > len(data) - _LENGTH:
        raise StateError("a message between ranks is truncated")
    try:
        header = json.loads(bytes(data[_LENGTH : _LENGTH + size]))
        tree, table = header["tree"], header["tensors"]
    except (ValueError, KeyError, TypeError):
        raise StateError("a message between ranks is not readable") from None
    body = data[_LENGTH + size :]
    tensors = {}
    for name, (code, shape, offset) in table.items():
        dtype = NP_SCALARS.get(code)
        if dtype is None or not all(type(n) is int and n >= 0 for n in shape):
            raise StateError(f"a message between ranks holds a malformed tensor '{name}'")
        nbytes = math.prod(shape) * dtype.itemsize
        if not 0 <= offset <= len(body) - nbytes:
            raise StateError(f"a message between ranks holds a truncated tensor '{name}'")
        tensors[name] = (
            np.frombuffer(body[offset : offset + nbytes], dtype=dtype).reshape(shape).copy()
        )
    return tree, tensors


def pack_events(
    keys: list[tuple[int, int, int, int]],
    payloads: Any,
    tensors: dict[str, np.ndarray] | None = None,
    extra: dict | None = None,
) -> bytes:
    """Events in flight: their keys as little-endian int64 words, then `pack` of
    ``{"payloads": ..., **extra}`` (the payloads as `nnsim.state.rows.RecordWriter`
    writes them; the receiver checks there is one per key).

        8 bytes: the number n of events
        n x 4 int64: each event's (time, priority, sending end, sequence)
        the rest: `pack` framing
    """
    count = len(keys)
    words = np.array(keys, dtype="<i8").tobytes() if count else b""
    framed = pack({"payloads": payloads, **(extra or {})}, tensors)
    return b"".join([count.to_bytes(_LENGTH, "little"), words, framed])


def unpack_events(data: bytes | memoryview) -> tuple[list[list[int]], Any, dict[str, np.ndarray]]:
    """The (keys, tree, tensors) that `pack_events` framed; StateError for anything else."""
    data = memoryview(data)
    if len(data) < _LENGTH:
        raise StateError("a message between ranks is truncated")
    count = int.from_bytes(data[:_LENGTH], "little")
    if count > (len(data) - _LENGTH) // 32:
        raise StateError("a message between ranks is truncated")
    end = _LENGTH + 32 * count
    keys = np.frombuffer(data[_LENGTH:end], dtype="<i8").reshape(count, 4).tolist()
    tree, tensors = unpack(data[end:])
    if not isinstance(tree, dict) or "payloads" not in tree:
        raise StateError("a message between ranks is not readable")
    return keys, tree, tensors
