"""The console's object map: the live simulation state as a tree of names.

It is the state walk's view (``nnsim.state.items``): what a checkpoint saves
is what the console shows, and nothing else. Paths are resolved from the
root on every use, so the map always reflects the live state — a ``set``
that replaces a value, or a restart, never leaves it stale.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from nnsim.errors import NnsimError, did_you_mean
from nnsim.sim import Element, Event, Simulation, StateView
from nnsim.state.items import object_fields, state_items
from nnsim.state.types import is_serializable

_NAME_WITH_INDEX = re.compile(r"^(?P<name>[^\[\]]*)(?:\[(?P<index>[^\]]*)\])?$")


class MapError(NnsimError):
    """A name that is not in the object map, or an operation its value does not allow."""


@dataclass
class Place:
    """A value in the map and how to write it back."""

    path: str  # absolute, without the leading "/"
    value: Any
    write: Callable[[Any], None] | None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1] if self.path else "/"

    @property
    def component(self) -> str | None:
        """The top-level component holding this place (where watchpoints are checked)."""
        return self.path.split("/", 1)[0] if self.path else None


def is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str | Enum | np.generic)


def children(value: Any) -> dict[str, tuple[Any, Callable[[Any], None] | None]]:
    """The named members of a container or object, with a writer for each."""
    if isinstance(value, Simulation):
        return {name: (component, None) for name, component in value.components.items()}
    if isinstance(value, Element):
        members = {
            name: (item, _element_writer(value, name)) for name, item in state_items(value).items()
        }
        for name, view in value.views().items():
            members.setdefault(name, (view, None))  # a view never hides an attribute
        return members
    if isinstance(value, StateView):
        return value.fields()
    if isinstance(value, dict):
        return {str(key): (item, _item_writer(value, key)) for key, item in value.items()}
    if isinstance(value, list):
        return {str(index): (item, _item_writer(value, index)) for index, item in enumerate(value)}
    if isinstance(value, tuple):
        return {str(index): (item, None) for index, item in enumerate(value)}
    if isinstance(value, Event) or is_serializable(type(value)):
        return {
            name: (item, _attribute_writer(value, name))
            for name, item in object_fields(value).items()
        }
    return {}


def _attribute_writer(owner: Any, name: str) -> Callable[[Any], None]:
    return lambda new: object.__setattr__(owner, name, new)


def _element_writer(owner: Element, name: str) -> Callable[[Any], None]:
    return lambda new: owner.assign(name, new)  # the element hears of it (a pause flag wakes)


def _item_writer(owner: Any, key: Any) -> Callable[[Any], None]:
    def write(new: Any) -> None:
        owner[key] = new

    return write


def type_name(value: Any) -> str:
    """How ``ls`` and ``pwd`` name a value's type: ``nn.Adam``, ``float32[128,10]``, ``int``."""
    if isinstance(value, Simulation):
        return "Simulation"
    if isinstance(value, Element):
        return value.kind()
    if isinstance(value, StateView):
        return value.kind
    if isinstance(value, np.ndarray):
        return f"{value.dtype}[{','.join(map(str, value.shape))}]"
    if isinstance(value, np.generic):
        return str(value.dtype)
    if isinstance(value, Enum):
        return type(value).__name__
    if isinstance(value, list | tuple | dict):
        return f"{type(value).__name__}[{len(value)}]"
    return type(value).__name__


def show_scalar(value: Any) -> str:
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, str):
        return value
    return str(value)


def join(base: str, relative: str) -> str:
    """Resolve ``relative`` (``..``, ``/``, ``a/b``) against the absolute path ``base``."""
    parts = [] if relative.startswith("/") else [p for p in base.split("/") if p]
    for part in relative.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


def parse_index(text: str, shape: tuple[int, ...]) -> tuple:
    """``3,4`` or ``0,:5`` to a numpy index; refuse anything else."""
    index: list[Any] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if ":" in part:
                pieces = [int(piece) if piece.strip() else None for piece in part.split(":")]
                if len(pieces) > 3:
                    raise ValueError
                if len(pieces) == 3 and pieces[2] == 0:
                    raise MapError(f"index [{text}] has a slice step of 0; use a step of 1 or more")
                index.append(slice(*pieces))
            else:
                index.append(int(part))
        except ValueError:
            raise MapError(f"cannot read index [{text}]; write e.g. [3,4] or [0,:5]") from None
    if len(index) > len(shape):
        raise MapError(
            f"index [{text}] has {len(index)} parts but the array has {len(shape)} dimensions"
        )
    return tuple(index)


class ObjectMap:
    """Looks up paths in a live simulation."""

    def __init__(self, sim: Simulation):
        self.sim = sim

    def place(self, path: str) -> Place:
        """The value at an absolute path; a trailing ``[i,j]`` selects array elements."""
        value: Any = self.sim
        write: Callable[[Any], None] | None = None
        walked: list[str] = []
        parts = [part for part in path.split("/") if part]
        for position, part in enumerate(parts):
            match = _NAME_WITH_INDEX.match(part)
            name, index = (match.group("name"), match.group("index")) if match else (part, None)
            members = children(value)
            if name not in members:
                where = "/".join(walked) or "/"
                raise MapError(f"no '{name}' in {where}" + _suggest(name, members))
            value, write = members[name]
            walked.append(name)
            if index is not None:
                if position != len(parts) - 1:
                    raise MapError(f"an index can only end a path: '{path}'")
                if not isinstance(value, np.ndarray):
                    raise MapError(
                        f"'{'/'.join(walked)}' is not an array; only arrays take [index]"
                    )
                array, key = value, parse_index(index, value.shape)
                try:
                    selected = array[key]
                except (IndexError, OverflowError, ValueError) as error:
                    raise MapError(
                        f"index [{index}] is out of range for shape {array.shape}: {error}"
                    ) from None
                write = _array_writer(array, key) if np.ndim(selected) == 0 else None
                return Place("/".join(walked) + f"[{index}]", selected, write)
        return Place("/".join(walked), value, write)


def _array_writer(array: np.ndarray, key: tuple) -> Callable[[Any], None]:
    def write(new: Any) -> None:
        array[key] = new

    return write


def _suggest(name: str, members: dict) -> str:
    return did_you_mean(name, members)
