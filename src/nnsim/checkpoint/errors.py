"""The one error type of checkpoint storage."""

from nnsim.errors import NnsimError


class CheckpointError(NnsimError):
    """A checkpoint that cannot be written or read: missing, incomplete, tampered, too new.

    The message is one line naming the checkpoint and what to do; nothing is
    loaded from a checkpoint that raised it, and nothing half-written is left
    visible by a save that raised it.
    """


class CheckpointWarning(UserWarning):
    """Something a user should know that does not stop the run.

    A checkpoint skipped because it cannot be read, another run's
    checkpoints kept in a reused folder, a committed checkpoint whose
    ``latest`` pointer could not be updated. The ``nnsim`` command prints
    each as one ``nnsim: warning: ...`` line on stderr.
    """


def warn(message: str) -> None:
    """Issue ``message`` as a `CheckpointWarning` (one line, no source location)."""
    import warnings

    warnings.warn(CheckpointWarning(message), stacklevel=2)
