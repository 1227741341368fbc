"""Names of state as people write them: ``loss/optimizer/learning_rate``, ``dense1/weights[3,4]``.

The first part names a component, the next parts subcomponent slots, then an
attribute; attributes may be containers walked further by key or index. The
same paths serve ``--set`` on restart, ``nnsim sweep`` and the console.
"""

from __future__ import annotations

import math
import re
from enum import Enum
from typing import Any

import numpy as np

from nnsim.errors import StateError, did_you_mean
from nnsim.sim import Element, Simulation
from nnsim.sim.declare import INT_LIMIT
from nnsim.state.items import state_items

_INDEX = re.compile(r"^(?P<name>[^\[\]]+)(?:\[(?P<index>[^\]]*)\])?$")


def resolve_element(sim: Simulation, parts: list[str]) -> tuple[Element, list[str]]:
    """The component or subcomponent a path starts with, and the parts after it."""
    if not parts or parts[0] not in sim.components:
        known = ", ".join(sim.components)
        first = parts[0] if parts else ""
        rest = "/" + "/".join(parts[1:]) if len(parts) > 1 else ""
        hint = did_you_mean(first, sim.components)
        if hint and rest:
            hint = hint[:-2] + rest + "'?"
        raise StateError(f"no component named '{first}'{hint} (components: {known})")
    element: Element = sim.components[parts[0]]
    rest = parts[1:]
    while rest and rest[0] in element.subcomponents:
        element = element.subcomponents[rest[0]]
        rest = rest[1:]
    return element, rest


def split(path: str) -> list[str]:
    return [part for part in path.strip().strip("/").split("/") if part]


def convert_like(current: Any, text: str, what: str) -> Any:
    """Parse ``text`` as the type of ``current`` (the console's and ``--set``'s rule).

    Numbers must be finite and fit the type: nan, inf, 1e39 for a float32 or
    2**70 for an int are refused, as a parameter declaration would refuse them.
    """
    try:
        if isinstance(current, bool | np.bool_):
            lowered = text.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise ValueError
            return lowered in ("true", "1", "yes", "on")
        if isinstance(current, Enum):
            cls = type(current)
            name = text.strip().upper()
            if name in cls.__members__:
                return cls[name]
            return cls(int(text))
        if isinstance(current, np.floating):
            return current.dtype.type(
                _finite(float(text.strip()), float(np.finfo(current.dtype).max))
            )
        if isinstance(current, np.generic):
            return current.dtype.type(text.strip())
        if isinstance(current, int):
            number = int(text.strip())
            if not -INT_LIMIT <= number <= INT_LIMIT:
                raise StateError(f"cannot set {what} to {text!r}: out of range (64-bit integers)")
            return number
        if isinstance(current, float):
            return _finite(float(text.strip()), None)
        if isinstance(current, str):
            if "\x00" in text:
                raise StateError(f"cannot set {what}: a string cannot hold a NUL byte")
            return text
    except _NotFinite:
        raise StateError(
            f"cannot set {what} to {text!r}: expected a finite {type(current).__name__}"
            " that fits its type"
        ) from None
    except (ValueError, KeyError, OverflowError):
        kind = type(current).__name__
        choices = (
            f" (one of {', '.join(type(current).__members__)})" if isinstance(current, Enum) else ""
        )
        raise StateError(f"cannot set {what} to {text!r}: expected {kind}{choices}") from None
    raise StateError(f"{what} is a {type(current).__name__}, not a scalar that can be set")


class _NotFinite(Exception):
    pass


def _finite(number: float, largest: float | None) -> float:
    if not math.isfinite(number) or (largest is not None and abs(number) > largest):
        raise _NotFinite
    return number


def convert_attribute(element: Element, name: str, text: str, what: str) -> Any:
    """``text`` as the new value of attribute ``name`` of ``element``; StateError if refused.

    A declared parameter is parsed by its declaration (type, range); any other
    attribute as its current type (`convert_like`). The element then has its
    say (`check_change`): a value its running state cannot honour is refused.
    Nothing is written here.
    """
    declared = element.declared_params().get(name)
    if declared is not None:
        try:
            value = declared.convert(text)
        except ValueError as error:
            raise StateError(f"cannot set {what}: {error}") from None
    else:
        value = convert_like(state_items(element)[name], text, what)
    check_change(element, name, value, what)
    return value


def check_change(element: Element, name: str, value: Any, what: str) -> None:
    """StateError unless ``element`` accepts ``value`` for ``name`` now (`Element.check_change`)."""
    try:
        element.check_change(name, value)
    except ValueError as error:
        raise StateError(f"cannot set {what}: {error}") from None


def set_value(sim: Simulation, path: str, text: str) -> Any:
    """Set the scalar at ``path`` from ``text``, parsed as its current type; return the new value.

    A declared parameter is parsed by its declaration (so ranges are checked),
    and the element may refuse the change (`convert_attribute`). Nothing
    changes when the value does not parse or is refused.
    """
    element, rest = resolve_element(sim, split(path))
    if len(rest) != 1:
        hint = ""
        if rest and element.subcomponents:  # a misspelt slot: loss/optimzer/learning_rate
            prefix = path.strip().strip("/").rsplit("/".join(rest), 1)[0]
            hint = did_you_mean(rest[0], element.subcomponents, prefix)
            if hint and len(rest) > 1:
                hint = hint[:-2] + "/" + "/".join(rest[1:]) + "'?"
        raise StateError(f"'{path}' does not name an attribute of {element.name}{hint}")
    match = _INDEX.match(rest[0])
    if not match:
        raise StateError(f"cannot read '{rest[0]}' in '{path}'")
    name, index = match.group("name"), match.group("index")
    items = state_items(element)
    if name not in items:
        prefix = path.strip().strip("/")[: -len(rest[0])]
        raise StateError(
            f"{element.name} has no attribute '{name}'" + did_you_mean(name, items, prefix)
        )
    current = items[name]
    if index is not None:
        if not isinstance(current, np.ndarray):
            raise StateError(f"{path}: only arrays take an index")
        try:
            key = tuple(int(part) for part in index.split(","))
            old = current[key]
        except (ValueError, IndexError, OverflowError):
            raise StateError(
                f"{path}: index [{index}] is not valid for shape {current.shape}"
            ) from None
        value = convert_like(old, text, path)
        check_change(element, f"{name}[{index}]", value, path)
        current[key] = value
        return current[key]
    value = convert_attribute(element, name, text, path)
    element.assign(name, value)  # tells the element (a paused component wakes)
    return value
