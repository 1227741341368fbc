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


def resolve_type(key: str, path: str) -> type:
    """The class saved as ``key``; a key that names no allowed class is refused."""
    if key in _marked:
        return _marked[key]
    registered_types()  # importing the element libraries defines their events and records
    if key in _marked:
        return _marked[key]
    found = [cls for cls in _subclasses(Event) if type_key(cls) == key]
    # ``@dataclass(slots=True)`` replaces the class it decorates; the replaced one
    # lingers among the subclasses until collected. The module's own is the one.
    for cls in found:
        module = sys.modules.get(cls.__module__)
        if module is not None and getattr(module, cls.__qualname__, None) is cls:
            return cls
    if found:
        return found[-1]
    raise StateError(
        f"{path}: saved state names class '{key}', which is not a registered serializable "
        "type here (is the element library that defines it installed?)"
    )


def is_enum(cls: type) -> bool:
    return isinstance(cls, type) and issubclass(cls, Enum)
