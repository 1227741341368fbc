"""Records of plain numbers as JSON rows: the short form of the events that cross ranks.

Most events that cross ranks in a window are small records of a few ints and
floats (a dataflow frame carrying one neuron's output, a PHOLD token). The
checkpoint walk (`nnsim.state.encode`) writes each as a tagged object,
``{"__object__": "module:Class", "fields": {...}}``, and checks every field
against its annotation on the way back: right for a checkpoint, read once,
but for a frame that crosses ranks it costs several times the event itself.

A `RecordWriter` takes the values of one message in order and writes each
as one item of a JSON list:

- a record whose slots each hold a plain ``bool``/``int``/``float``, a list
  of floats (JSON keeps them exact: a float's shortest repr round-trips) or
  an array (through the message's tensor table, as the walk writes it) is a
  *row*, ``[class index, value, ...]``, with one table of class names per
  message;
- the same object written again (one frame multicast to several receivers)
  is ``{"same": k}``, the k-th value, and comes back as that one object, as
  the receivers share it serially;
- anything else is ``{"walked": tree}``, the checkpoint walk's tree.

`RecordReader` accepts a row only of a class the state walk may load
(`resolve_type`: registered, never imported by name), with exactly its
slots, each value of a type its annotation admits (`fits`). The check is
made once per class and combination of value types, then looked up: a
window's rows cost a tuple of their types and a dictionary hit each.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from typing import Any

import numpy as np

from nnsim.errors import StateError
from nnsim.state.encode import Decoder, Encoder, field_types, fits
from nnsim.state.items import slot_names
from nnsim.state.types import is_serializable, resolve_type, type_key

MAX_CLASSES = 4096  # a message naming more classes than this is refused
SCALARS = frozenset({bool, int, float})
# The types a slot of a row may hold (an array travels as its tensor table entry, a dict),
# each with a sample the slot's annotation is checked against (`fits`).
SAMPLES = {bool: True, int: 1, float: 1.0, list: [1.0], np.ndarray: np.zeros(1)}


@functools.cache
def _row_fields(cls: type) -> tuple[str, ...] | None:
    """The slots a record of ``cls`` is written with as a row, or None when it cannot be."""
    if not (dataclasses.is_dataclass(cls) and is_serializable(cls)) or getattr(cls, "arrays", ()):
        return None
    names = slot_names(cls)
    if not names or set(names) != {field.name for field in dataclasses.fields(cls)}:
        return None
    return names


@functools.cache
def _admits(cls: type, name: str, kind: type) -> bool:
    """Does the annotation of ``cls``'s slot ``name`` admit a value of type ``kind``?"""
    hints = field_types(cls)
    return name not in hints or fits(SAMPLES[kind], hints[name])


@functools.cache
def _getter(cls: type) -> Any:
    """The values of a row's slots, as a tuple, in one call."""
    names = _row_fields(cls)
    get = operator.attrgetter(*names)
    return get if len(names) > 1 else lambda value: (get(value),)


@functools.cache
def _plan(cls: type, types: tuple[type, ...]) -> tuple[int, ...] | None:
    """The slots of a row with values of ``types`` holding a list or an array (to check
    or convert), or None when values of these types make no row."""
    if not all(kind in SAMPLES for kind in types):
        return None
    return tuple(slot for slot, kind in enumerate(types) if kind not in SCALARS)


def _floats(items: list) -> bool:
    """Is every item a plain float (what a list in a row may hold)?"""
    return set(map(type, items)) <= _FLOAT


_FLOAT = frozenset({float})


@functools.lru_cache(maxsize=4096)  # keyed by what a message holds: bounded
def _checked(cls: type, types: tuple[type, ...]) -> tuple[int, ...] | str:
    """For a row read with values of ``types`` (its class index first): the slots holding
    a list or an array, once the types are checked against ``cls``'s annotations; or
    the end of the one-line refusal when a type is not what the class holds."""
    names = _row_fields(cls)
    if len(types) != len(names) + 1:
        return f": a {cls.__name__} row holds {len(types) - 1} values, not {len(names)}"
    plan = []
    for slot, (name, kind) in enumerate(zip(names, types[1:], strict=True)):
        sample = np.ndarray if kind is dict else kind
        if sample not in SAMPLES or not _admits(cls, name, sample):
            return f"/{name}: a {kind.__name__} is not what a {cls.__name__} holds"
        if kind not in SCALARS:
            plan.append(slot)
    return tuple(plan)


class RecordWriter:
    """Writes the values of one message; ``classes`` is its table of class names, the
    ``encoder``'s tensor table holds its arrays."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.classes: list[str] = []
        self.values: list = []
        self._index: dict[type, int | None] = {}  # class -> its place in ``classes``
        self._seen: dict[int, int] = {}  # id(value) -> where it was first written
        self._keep: list = []  # what was written, so that its ids stay its own

    def write(self, value: Any, path: str) -> None:
        """Append ``value``: as a row, a repeat of an earlier value, or the walk's tree."""
        first = self._seen.get(id(value))
        if first is not None:
            self.values.append({"same": first})
            return
        self._seen[id(value)] = len(self.values)
        self._keep.append(value)
        row = self._row(value, path)
        self.values.append({"walked": self.encoder.encode(value, path)} if row is None else row)

    def tree(self) -> dict:
        """The message's JSON-able part: ``{"classes": [...], "values": [...]}``."""
        return {"classes": self.classes, "values": self.values}

    def _class_index(self, cls: type) -> int | None:
        index = None
        if _row_fields(cls) is not None:
            index = len(self.classes)
            self.classes.append(type_key(cls))
        self._index[cls] = index
        return index

    def _row(self, value: Any, path: str) -> list | None:
        cls = type(value)
        index = self._index[cls] if cls in self._index else self._class_index(cls)
        if index is None:
            return None
        items = _getter(cls)(value)
        plan = _plan(cls, tuple(map(type, items)))
        if plan is None:
            return None
        row = [index, *items]
        for slot in plan:  # lists and arrays
            item = items[slot]
            if type(item) is list:
                if not _floats(item):
                    return None
            else:
                row[slot + 1] = self.encoder.encode(item, f"{path}/{_row_fields(cls)[slot]}")
        return row


class RecordReader:
    """Reads back the values of one message that a `RecordWriter` wrote: ``tree`` its
    JSON part, ``tensors`` its arrays, ``decoder`` for the walk's trees."""

    def __init__(self, tree: Any, tensors: dict[str, np.ndarray], decoder: Decoder, path: str):
        self._tensors, self._decoder, self._path = tensors, decoder, path
        classes = tree.get("classes") if isinstance(tree, dict) else None
        self._values = tree.get("values") if isinstance(tree, dict) else None
        if not isinstance(classes, list) or not isinstance(self._values, list):
            raise StateError(f"{path}: the values are not readable")
        if len(classes) > MAX_CLASSES:
            raise StateError(f"{path}: the table of record classes is too long")
        self._classes = [self._class(key) for key in classes]

    def _class(self, key: Any) -> tuple:
        if not isinstance(key, str):
            raise StateError(f"{self._path}: {key!r} is not a class name")
        cls = resolve_type(key, self._path)
        names = _row_fields(cls)
        if names is None:
            raise StateError(f"{self._path}: a {cls.__name__} cannot be sent as a row")
        return cls, names

    def read(self) -> list:
        """Every value of the message, in the order written; StateError for a forged one."""
        values: list = []
        for position, item in enumerate(self._values):
            path = f"{self._path}/{position}"
            if type(item) is list:
                values.append(self._record(item, path))
            elif type(item) is dict and len(item) == 1 and "walked" in item:
                values.append(self._decoder.decode(item["walked"], path))
            elif type(item) is dict and len(item) == 1 and type(item.get("same")) is int:
                if not 0 <= item["same"] < position:
                    raise StateError(f"{path}: repeats a value that is not before it")
                values.append(values[item["same"]])
            else:
                raise StateError(f"{path}: not a row, a repeat or a walked value")
        return values

    def _record(self, row: list, path: str) -> Any:
        index = row[0] if row else None
        if type(index) is not int or not 0 <= index < len(self._classes):
            raise StateError(f"{path}: a row must start with the index of its class")
        cls, names = self._classes[index]
        plan = _checked(cls, tuple(map(type, row)))
        if type(plan) is str:
            raise StateError(f"{path}{plan}")
        instance = cls.__new__(cls)
        for name, item in zip(names, row[1:], strict=True):
            object.__setattr__(instance, name, item)
        for slot in plan:  # lists and arrays
            item = row[slot + 1]
            if type(item) is list:
                if not _floats(item):
                    raise StateError(f"{path}/{names[slot]}: a list of other than floats")
            else:
                object.__setattr__(instance, names[slot], self._tensor(item, path))
        return instance

    def _tensor(self, item: dict, path: str) -> np.ndarray:
        name = item.get("__tensor__") if len(item) == 1 else None
        array = self._tensors.get(name) if type(name) is str else None
        if array is None:
            raise StateError(f"{path}: not an array of this message")
        return array
