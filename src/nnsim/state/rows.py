"""Records of plain numbers as JSON rows: the short form of events that cross ranks.

Most events that cross ranks in a window are small records of a few ints and
floats (a dataflow frame carrying one neuron's output, a PHOLD token). The
checkpoint walk (`nnsim.state.encode`) writes each as a tagged object,
``{"__object__": "module:Class", "fields": {...}}``, and checks every field
against its annotation on the way back: right for a checkpoint, read once,
but for a frame that crosses ranks it costs several times the event itself.

`RowEncoder` writes such a record as ``[class index, value, ...]`` — its
slots in order, each a plain ``bool``/``int``/``float``, a list of floats
(JSON keeps them exact: a float's shortest repr round-trips) or an array
(through the message's tensor table, as the checkpoint walk writes it) —
with one table of class names per message. `RowDecoder` accepts a row only for a class the state walk may
load (`resolve_type`: registered, never imported by name), with exactly its
slots, each value of a type its annotation admits (`fits`), checked by a
per-class table of admitted types instead of walking the annotation every
time. Anything else — a string or a nested record, an unset slot, a class
with declared arrays — is left to the checkpoint walk (``encode`` returns
None).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np

from nnsim.errors import StateError
from nnsim.state.encode import Encoder, field_types, fits
from nnsim.state.items import slot_names
from nnsim.state.types import is_serializable, resolve_type, type_key

SCALARS = frozenset({bool, int, float})
MAX_CLASSES = 4096  # a message naming more classes than this is refused
_SAMPLES = ((bool, True), (int, 1), (float, 1.0), (list, [1.0]), (np.ndarray, np.zeros(1)))


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
def _admitted(cls: type, names: tuple[str, ...]) -> tuple[frozenset[type], ...]:
    """Per slot, the types of `_SAMPLES` its annotation admits (all of them when it has none)."""
    hints = field_types(cls)
    return tuple(
        frozenset(
            kind for kind, sample in _SAMPLES if name not in hints or fits(sample, hints[name])
        )
        for name in names
    )


def _floats(items: list) -> bool:
    """Is every item a plain float (a list field a row may hold)?"""
    return all(type(item) is float for item in items)


class RowEncoder:
    """Writes records as rows for one message; ``classes`` is its table of class names,
    ``encoder``'s tensor table holds the arrays."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.classes: list[str] = []
        self._index: dict[type, tuple[int, tuple[str, ...]] | None] = {}

    def encode(self, value: Any, path: str) -> list | None:
        """``[class index, *slots]`` for a record of plain numbers; None for anything else."""
        cls = type(value)
        known = self._index.get(cls, False)
        if known is False:
            names = _row_fields(cls)
            known = None if names is None else (len(self.classes), names)
            if known is not None:
                self.classes.append(type_key(cls))
            self._index[cls] = known
        if known is None:
            return None
        index, names = known
        row = [index]
        for name in names:
            item = getattr(value, name, None)
            kind = type(item)
            if kind is np.ndarray:
                item = self.encoder.encode(item, f"{path}/{name}")
            elif kind not in SCALARS and not (kind is list and _floats(item)):
                return None
            row.append(item)
        return row


class RowDecoder:
    """Reads the rows of one message, whose class table is ``classes`` and whose arrays
    are in ``tensors``."""

    def __init__(self, classes: Any, path: str, tensors: dict[str, np.ndarray]):
        self._tensors = tensors
        if not isinstance(classes, list) or len(classes) > MAX_CLASSES:
            raise StateError(f"{path}: the table of record classes is not readable")
        self._classes = []
        for key in classes:
            if not isinstance(key, str):
                raise StateError(f"{path}: {key!r} is not a class name")
            cls = resolve_type(key, path)
            names = _row_fields(cls)
            if names is None:
                raise StateError(f"{path}: a {cls.__name__} cannot be sent as a row")
            self._classes.append((cls, names, _admitted(cls, names)))

    def decode(self, row: list, path: str) -> Any:
        """The record ``row`` holds; StateError for a row that is not one of its classes'."""
        index = row[0] if row else None
        if type(index) is not int or not 0 <= index < len(self._classes):
            raise StateError(f"{path}: a row must start with the index of its class")
        cls, names, admitted = self._classes[index]
        if len(row) != len(names) + 1:
            raise StateError(
                f"{path}: a {cls.__name__} row holds {len(row) - 1} values, not {len(names)}"
            )
        instance = cls.__new__(cls)
        for name, kinds, item in zip(names, admitted, row[1:], strict=True):
            if type(item) is dict:
                item = self._tensor(item, f"{path}/{name}")
            if type(item) not in kinds or (type(item) is list and not _floats(item)):
                raise StateError(
                    f"{path}/{name}: a {type(item).__name__} is not what a {cls.__name__} holds"
                )
            object.__setattr__(instance, name, item)
        return instance

    def _tensor(self, item: dict, path: str) -> np.ndarray:
        name = item.get("__tensor__") if len(item) == 1 else None
        array = self._tensors.get(name) if type(name) is str else None
        if array is None:
            raise StateError(f"{path}: not an array of this message")
        return array
