"""Which classes may appear in saved state, and how they are named there.

Loading instantiates only classes known here (DESIGN.md rule 3): component
types from the ``nnsim.components`` entry points, every subclass of
``nnsim.sim.Event``, and classes (dataclasses, enums, small records) marked
with ``@serializable``. A name in a file is looked up, never imported.
"""

from __future__ import annotations

import sys
from enum import Enum

from nnsim.errors import StateError
from nnsim.sim import Element, Event, registered_types

_marked: dict[str, type] = {}
# Event classes found by name before: a parallel run decodes events every window, and
# walking every Event subclass each time costs more than the event.
_resolved: dict[str, type] = {}


def type_key(cls: type) -> str:
    """The stable name of a class in saved state: ``module:QualName``."""
    return f"{cls.__module__}:{cls.__qualname__}"


def serializable(cls: type) -> type:
    """Class decorator: allow instances of ``cls`` (a dataclass, enum or record) in saved state."""
    _marked[type_key(cls)] = cls
    return cls


def is_serializable(cls: type) -> bool:
    return (
        type_key(cls) in _marked
        or issubclass(cls, Event)
        or (issubclass(cls, Element) and cls in registered_types().values())
    )


def _subclasses(base: type) -> list[type]:
    found, stack = [], [base]
    while stack:
        for sub in stack.pop().__subclasses__():
            found.append(sub)
            stack.append(sub)
    return found


def _is_current(cls: type) -> bool:
    """``cls`` is the class its module defines under its name now.

    ``@dataclass(slots=True)`` replaces the class it decorates by a new one;
    the old one stays among ``Event.__subclasses__()`` until the garbage
    collector frees it, with the same ``module:QualName``. Without this
    check, which of the two a saved event is decoded into would depend on
    import order and memory layout.
    """
    owner: object = sys.modules.get(cls.__module__)
    for part in cls.__qualname__.split("."):
        owner = getattr(owner, part, None)
    return owner is cls


def resolve_type(key: str, path: str) -> type:
    """The class saved as ``key``; a key that names no allowed class is refused."""
    if key in _marked:
        return _marked[key]
    known = _resolved.get(key)
    if known is not None and _is_current(known):  # still the class its module defines
        return known
    registered_types()  # importing the element libraries defines their events
    matches = [cls for cls in _subclasses(Event) if type_key(cls) == key]
    for cls in matches:
        if _is_current(cls):
            _resolved[key] = cls
            return cls
    if matches:  # a class not reachable by its name (defined in a function)
        return matches[-1]
    raise StateError(
        f"{path}: saved state names class '{key}', which is not a registered serializable "
        "type here (is the element library that defines it installed?)"
    )


def is_enum(cls: type) -> bool:
    return isinstance(cls, type) and issubclass(cls, Enum)
