"""The interactive debug console (CONSOLE.md): the engine with every command registered.

``Console(sim).execute("cd loss/optimizer")`` runs one command line and
returns the text it printed, so tests and notebooks drive it exactly as a
person at the prompt does. Commands never raise: bad input gives one line
and changes nothing. The terminal front end is ``nnsim.console.session``.

Where things are: the engine (dispatch, history expansion, output, yes/no
questions, watchpoints, replay, running the simulation) is
``nnsim.console.engine``; the commands are ``nnsim.console.commands.*``,
one module per CONSOLE.md group. Importing this module registers them all.
"""

from __future__ import annotations

import nnsim.console.commands  # noqa: F401 - registers every command on the engine
from nnsim.console.engine import (
    ALIASES,
    COMMANDS,
    MAX_REPLAY_BYTES,
    MAX_REPLAY_DEPTH,
    Command,
    Console,
    ConsoleError,
    command,
    read_replay_file,
    stalled_reason,
)

__all__ = [
    "ALIASES",
    "COMMANDS",
    "MAX_REPLAY_BYTES",
    "MAX_REPLAY_DEPTH",
    "Command",
    "Console",
    "ConsoleError",
    "command",
    "read_replay_file",
    "stalled_reason",
]
