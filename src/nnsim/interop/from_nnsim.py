"""nnsim's own checkpoints: a checkpoint, a folder of them, or a ``nnsim train`` run folder.

Read through the checkpoint package's public, bounded and verified reader
(`nnsim.checkpoint.open_checkpoint`, `Storage.load`); the trained arrays
and the layer chain come from the same functions the exporters use
(`trained_parameters`, `layer_chain`), so a checkpoint imports exactly as
it exports. A run folder (it holds ``config.toml`` and ``checkpoints/``)
gives its ``checkpoints/best``, else ``checkpoints/last``, else the newest
checkpoint in ``checkpoints/``: the one ``nnsim test`` would be pointed at.
"""

from __future__ import annotations

import os
from pathlib import Path

from nnsim.checkpoint import open_checkpoint
from nnsim.interop.export import layer_chain, trained_parameters
from nnsim.interop.model import DenseLayer, DenseModel
from nnsim.interop.table import dense_chain

# The run-folder layout of `nnsim.train.runfolder` (interop may not import train/).
RUN_CONFIG, RUN_CHECKPOINTS, RUN_LINKS = "config.toml", "checkpoints", ("best", "last")


def checkpoint_location(location: str | os.PathLike) -> str:
    """The checkpoint (or checkpoint folder) that ``location`` stands for (run folders resolved)."""
    folder = Path(location)
    if "://" in str(location) or not (folder / RUN_CONFIG).is_file():
        return os.fspath(location)
    checkpoints = folder / RUN_CHECKPOINTS
    for link in RUN_LINKS:
        if (checkpoints / link).is_dir():
            return os.fspath(checkpoints / link)
    return os.fspath(checkpoints)


def load_nnsim(path: str | os.PathLike) -> DenseModel:
    """The trained dense network of an nnsim checkpoint, checkpoint folder or run folder."""
    location = checkpoint_location(path)
    storage, name = open_checkpoint(location)
    body, tensors = storage.load(name)
    source = storage.location(name)
    parameters = trained_parameters(body, tensors)
    layers = tuple(
        DenseLayer(layer, parameters[f"{layer}.weights"], parameters[f"{layer}.biases"], activation)
        for layer, activation in dense_chain(layer_chain(body), source)
    )
    return DenseModel(layers, source)
