"""Checkpoint storage: named (manifest, tensors) pairs, written atomically and verified on load.

    from nnsim.checkpoint import open_storage, checkpoint_name

    storage = open_storage("runs/a")                 # a folder; or "memory://x", "s3://bucket/run"
    name = checkpoint_name("ckpt", 3, 1_234_000)     # "ckpt_3_1234000"
    storage.save(name, {"step": 3}, {"w": weights})
    manifest, tensors = storage.load(storage.latest())

See `nnsim.checkpoint.storage` for the byte-level backend API (and how to
add one), `nnsim.checkpoint.format` for how a checkpoint is saved, loaded,
verified and scanned on top of it (once, for every backend),
`nnsim.checkpoint.manifest` for the manifest, `nnsim.checkpoint.tensorfile`
for the safetensors reader and writer, `nnsim.checkpoint.safefile` for how
every checkpoint file is opened (regular files only, no links, bounded reads).
"""

from nnsim.checkpoint.dir_backend import DirStorage
from nnsim.checkpoint.errors import CheckpointError, CheckpointWarning
from nnsim.checkpoint.fsspec_backend import FsspecStorage
from nnsim.checkpoint.manifest import (
    FORMAT,
    FORMAT_VERSION,
    checkpoint_name,
    order_key,
    parse_checkpoint_name,
)
from nnsim.checkpoint.safefile import open_regular, read_regular
from nnsim.checkpoint.storage import (
    CheckpointEntry,
    Listed,
    Storage,
    open_checkpoint,
    open_storage,
    register_backend,
)
from nnsim.checkpoint.tensorfile import read_safetensors, write_safetensors

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "CheckpointEntry",
    "CheckpointError",
    "CheckpointWarning",
    "DirStorage",
    "FsspecStorage",
    "Listed",
    "Storage",
    "checkpoint_name",
    "open_checkpoint",
    "open_regular",
    "open_storage",
    "order_key",
    "parse_checkpoint_name",
    "read_regular",
    "read_safetensors",
    "register_backend",
    "write_safetensors",
]
