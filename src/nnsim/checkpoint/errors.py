"""The one error type of checkpoint storage (defined in `nnsim.errors`, shared with `nnsim.state`)."""

from nnsim.errors import CheckpointError

__all__ = ["CheckpointError"]
