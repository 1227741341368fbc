"""The one error type of checkpoint storage."""

from nnsim.errors import NnsimError


class CheckpointError(NnsimError):
    """A checkpoint that cannot be written or read: missing, incomplete, tampered, too new.

    The message is one line naming the checkpoint and what to do; nothing is
    loaded from a checkpoint that raised it, and nothing half-written is left
    visible by a save that raised it.
    """
