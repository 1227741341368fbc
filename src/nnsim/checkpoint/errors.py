"""The one error type of checkpoint storage (defined in `nnsim.errors`, shared with `nnsim.state`)."""

from nnsim.errors import CheckpointError


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


__all__ = ["CheckpointError", "CheckpointWarning", "warn"]
