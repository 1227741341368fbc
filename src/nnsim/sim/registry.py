"""Which component types exist: the ``nnsim.components`` entry-point group.

Element libraries (``nnsim.nn`` included) register their types the same way
a third-party package would, so the kernel never imports them. Loading a
checkpoint will instantiate only types found here.
"""

from __future__ import annotations

import difflib
from importlib.metadata import entry_points

from nnsim.errors import ParamError

ENTRY_POINT_GROUP = "nnsim.components"

_types: dict[str, type] = {}
_entry_points_loaded = False


def register(type_name: str):
    """Class decorator: make a component type known by name (for scripts and tests)."""

    def decorate(cls: type) -> type:
        cls.type_name = type_name
        _types[type_name] = cls
        return cls

    return decorate


def unregister(type_name: str) -> None:
    """Forget a type registered with `register` (a test's or a notebook's own)."""
    _types.pop(type_name, None)


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in _types:
            continue
        cls = entry.load()
        if getattr(cls, "type_name", "") != entry.name:
            cls.type_name = entry.name
        _types[entry.name] = cls


def lookup(type_name: str) -> type:
    """The class registered as ``type_name`` (e.g. ``"nn.Dense"``)."""
    if type_name not in _types:
        _load_entry_points()
    try:
        return _types[type_name]
    except KeyError:
        hint = difflib.get_close_matches(type_name, list(_types), n=1)
        suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
        raise ParamError(
            f"unknown component type '{type_name}'{suggestion} (run 'nnsim info' for the list)"
        ) from None


def registered_types() -> dict[str, type]:
    """All known types by name, sorted."""
    _load_entry_points()
    return dict(sorted(_types.items()))
