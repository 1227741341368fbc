"""One exception hierarchy for everything a person can fix.

The CLI catches `NnsimError` at the top and prints its message as one line;
anything else is a bug and keeps its traceback.
"""


class NnsimError(Exception):
    """Bad input or a bad request: the message names the thing and what to do."""


class Interrupted(NnsimError):
    """The user stopped the run (Ctrl-C): not an error; the CLI exits with status 130."""


class UnitError(NnsimError, ValueError):
    """A time or frequency string that does not parse."""


class ParamError(NnsimError, ValueError):
    """An unknown, missing or ill-typed component parameter."""


class LinkError(NnsimError):
    """A link to a port that does not exist, or a port used but not connected."""


class DataError(NnsimError):
    """A dataset folder or file that is missing, empty or malformed."""


class ModelScriptError(NnsimError):
    """A model script that cannot be read or that raised while building."""


class StateError(NnsimError):
    """Simulation state that cannot be saved or restored, named by its path."""


class CheckpointError(NnsimError):
    """A checkpoint that cannot be written or read: missing, incomplete, tampered, too new.

    The message is one line naming the checkpoint and what to do; nothing is
    loaded from a checkpoint that raised it, and nothing half-written is left
    visible by a save that raised it. Defined here (and re-exported by
    ``nnsim.checkpoint``) so that ``nnsim.state`` can refuse a checkpoint's
    state with the same error as the storage refuses its files.
    """


def did_you_mean(name: str, candidates, prefix: str = "") -> str:
    """``"; did you mean 'prefix+closest'?"`` for a misspelt ``name``, or ``""``.

    One wording for every "unknown name" error (console paths, ``--set``,
    sweeps), so a typo gets the same help wherever it is typed.
    """
    import difflib

    close = difflib.get_close_matches(name, [str(c) for c in candidates], n=1)
    return f"; did you mean '{prefix}{close[0]}'?" if close else ""
