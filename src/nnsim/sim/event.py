"""The base class of everything sent over a link, and the queue's priorities.

Events are plain data (DESIGN.md rule 1): subclasses are small dataclasses
with ``slots=True``, holding numbers, strings, enums and numpy arrays, so that
events in flight can be checkpointed like any other state.
"""

from __future__ import annotations

# Priorities order entries that share a time; lower runs first (SST's order:
# clocks before link events, the end-of-simulation check after both).
STOP_PRIORITY = 0
CLOCK_PRIORITY = 40
EVENT_PRIORITY = 50
ACTION_PRIORITY = 99  # tools' actions: after every event of their time, before the end check
EXIT_PRIORITY = 100


class Event:
    """Base class of link events; subclass with ``@dataclass(slots=True)``."""

    __slots__ = ()
