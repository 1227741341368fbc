"""Checkpoint storage: named (manifest, tensors) pairs, written atomically and verified on load.

    from nnsim.checkpoint import open_storage, checkpoint_name

    storage = open_storage("runs/a")                 # a folder; or "memory://x", "s3://bucket/run"
    name = checkpoint_name("ckpt", 3, 1_234_000)     # "ckpt_3_1234000"
    storage.save(name, {"step": 3}, {"w": weights})
    manifest, tensors = storage.load(storage.latest())

See `nnsim.checkpoint.storage` for the backend API (and how to add one),
`nnsim.checkpoint.manifest` for the format, `nnsim.checkpoint.tensorfile`
for the safetensors reader and writer.
"""

from nnsim.checkpoint.dir_backend import DirStorage
from nnsim.checkpoint.errors import CheckpointError
from nnsim.checkpoint.fsspec_backend import FsspecStorage
from nnsim.checkpoint.manifest import (
    FORMAT,
    FORMAT_VERSION,
    checkpoint_name,
    order_key,
    parse_checkpoint_name,
)
from nnsim.checkpoint.storage import Storage, open_checkpoint, open_storage
from nnsim.checkpoint.tensorfile import read_safetensors, write_safetensors

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "CheckpointError",
    "DirStorage",
    "FsspecStorage",
    "Storage",
    "checkpoint_name",
    "open_checkpoint",
    "open_storage",
    "order_key",
    "parse_checkpoint_name",
    "read_safetensors",
    "write_safetensors",
]
