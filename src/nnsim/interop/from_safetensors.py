"""safetensors tables, read with nnsim's own validated reader (`nnsim.checkpoint.read_safetensors`).

The header is checked before any tensor is touched (known dtypes, byte
ranges that match the shapes and tile the file exactly) and the tensors
are memory-mapped, so a forged shape cannot make nnsim allocate anything.
nnsim's export writes ``layers`` metadata (the layer chain), which then
gives the order and the activations; any other file is read by the rules
of `nnsim.interop.table`.
"""

from __future__ import annotations

from pathlib import Path

from nnsim.checkpoint import read_safetensors
from nnsim.interop.model import DenseModel
from nnsim.interop.table import model_from_table, parse_chain

MAX_HEADER = 100_000_000  # as the safetensors format itself


def is_safetensors(head: bytes) -> bool:
    """Eight bytes of header length, then a JSON object."""
    if len(head) < 10:
        return False
    length = int.from_bytes(head[:8], "little")
    return 2 <= length <= MAX_HEADER and head[8:9] == b"{"


def load_safetensors(path: Path) -> DenseModel:
    """The dense model in a ``.safetensors`` file of weights and biases."""
    source = str(path)
    tensors, metadata = read_safetensors(path, f"weights file '{source}'")
    chain = parse_chain(metadata["layers"], source) if metadata.get("layers") else None
    return model_from_table(tensors, source, chain)
