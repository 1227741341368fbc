"""One walk over the live simulation state, for checkpoints, the console and diffs.

``items.state_items`` decides what an element's state is; ``encode`` turns
values into JSON-able trees plus a tensor table; ``snapshot`` captures and
restores a whole simulation; ``types`` says which classes may be loaded.
"""

from nnsim.state.encode import Decoder, Encoder
from nnsim.state.items import state_items
from nnsim.state.snapshot import (
    capture,
    capture_components,
    combine_shares,
    model_graph,
    model_signature,
    restore,
    restore_components,
)
from nnsim.state.types import serializable

__all__ = [
    "Decoder",
    "Encoder",
    "capture",
    "capture_components",
    "combine_shares",
    "model_graph",
    "model_signature",
    "restore",
    "restore_components",
    "serializable",
    "state_items",
]
