"""Values to JSON-able trees and back; arrays go to a tensor table by path.

Plain JSON values stay as they are. Everything else becomes a one-key dict
tagged with a ``__kind__`` key, so a tree reads well in ``manifest.json`` and
in ``nnsim checkpoint inspect``:

- numpy arrays: ``{"__tensor__": "dense1/weights"}`` (the array goes to the
  tensor table; the same array object reached twice is stored once),
- numpy scalars: ``{"__np__": "<f4", "value": 0.5}``,
- tuples: ``{"__tuple__": [...]}``, dicts with keys that are not plain
  strings: ``{"__items__": [[key, value], ...]}``,
- enums: ``{"__enum__": "module:Class", "name": "TRAINING"}``,
- random generators: ``{"__rng__": {bit generator state}}``,
- registered records and events: ``{"__object__": "module:Class", "fields": {...}}``,
- references to components and subcomponents: ``{"__ref__": "loss/optimizer"}``.

Anything else cannot be saved: ``StateError`` names its path.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from enum import Enum
from typing import Any

import numpy as np

from nnsim.errors import StateError
from nnsim.sim import Element
from nnsim.state.items import object_fields
from nnsim.state.types import is_enum, is_serializable, resolve_type, type_key

TAGS = (
    "__tensor__",
    "__np__",
    "__tuple__",
    "__items__",
    "__enum__",
    "__rng__",
    "__object__",
    "__ref__",
)
#: The numpy scalar types saved state may hold (``Encoder`` writes only these),
#: each a few bytes: a forged ``{"__np__": "V", "value": 2000000000}`` is refused.
NP_SCALARS = {
    np.dtype(code).str: np.dtype(code)
    for code in ("?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8")
}
BIT_GENERATORS = {
    "PCG64": np.random.PCG64,
    "PCG64DXSM": np.random.PCG64DXSM,
    "Philox": np.random.Philox,
}


class Encoder:
    """Encodes values reached from one snapshot; owns its tensor table."""

    def __init__(self, copy_tensors: bool = False):
        self.tensors: dict[str, np.ndarray] = {}
        self._names_by_id: dict[int, str] = {}
        self._keep_alive: list[np.ndarray] = []
        self.copy_tensors = copy_tensors

    def encode(self, value: Any, path: str) -> Any:
        if value is None or type(value) in (bool, int, float, str):
            return value
        if isinstance(value, np.ndarray):
            return {"__tensor__": self._tensor(value, path)}
        if isinstance(value, np.generic):
            if value.dtype.kind not in "biuf":
                raise StateError(
                    f"cannot save {path}: numpy scalar of type {value.dtype} is not supported"
                )
            return {"__np__": value.dtype.str, "value": value.item()}
        if isinstance(value, Enum):
            self._check_allowed(type(value), path)
            return {"__enum__": type_key(type(value)), "name": value.name}
        if isinstance(value, int | float | str):  # subclasses of the builtins (not enums)
            raise StateError(f"cannot save {path}: {type(value).__name__} is not a plain value")
        if isinstance(value, list):
            return [self.encode(item, f"{path}/{index}") for index, item in enumerate(value)]
        if isinstance(value, tuple):
            return {
                "__tuple__": [
                    self.encode(item, f"{path}/{index}") for index, item in enumerate(value)
                ]
            }
        if isinstance(value, dict):
            if all(type(key) is str and not key.startswith("__") for key in value):
                return {key: self.encode(item, f"{path}/{key}") for key, item in value.items()}
            return {
                "__items__": [
                    [self.encode(key, f"{path}/<key>"), self.encode(item, f"{path}/{key}")]
                    for key, item in value.items()
                ]
            }
        if isinstance(value, np.random.Generator):
            return {"__rng__": value.bit_generator.state}
        if isinstance(value, Element):
            return {"__ref__": value.name}
        cls = type(value)
        if is_serializable(cls):
            fields = object_fields(value)
            return {
                "__object__": type_key(cls),
                "fields": {
                    name: self.encode(item, f"{path}/{name}") for name, item in fields.items()
                },
            }
        raise StateError(
            f"cannot save {path}: a {cls.__module__}.{cls.__qualname__} is not serializable; "
            "mark it transient (a leading _ or the class's `transient`) or register its class "
            "with @nnsim.state.serializable"
        )

    def _check_allowed(self, cls: type, path: str) -> None:
        if not is_serializable(cls):
            raise StateError(
                f"cannot save {path}: {type_key(cls)} is not registered; "
                "decorate it with @nnsim.state.serializable"
            )

    def _tensor(self, array: np.ndarray, path: str) -> str:
        if array.dtype.kind not in "biuf" or array.dtype.byteorder == ">":
            raise StateError(f"cannot save {path}: arrays of dtype {array.dtype} are not supported")
        known = self._names_by_id.get(id(array))
        if known is not None:
            return known
        name = path
        self._names_by_id[id(array)] = name
        self._keep_alive.append(array)  # ids stay unique while the snapshot is built
        self.tensors[name] = array.copy() if self.copy_tensors else array
        return name


class Decoder:
    """Decodes a tree saved by ``Encoder``; resolves references through ``elements``."""

    def __init__(self, tensors: dict[str, np.ndarray], elements: dict[str, Element]):
        self.tensors = tensors
        self.elements = elements

    def decode(self, value: Any, path: str) -> Any:
        if isinstance(value, list):
            return [self.decode(item, f"{path}/{index}") for index, item in enumerate(value)]
        if not isinstance(value, dict):
            return value
        tag = next((key for key in value if key in TAGS), None)
        if tag is None:
            return {key: self.decode(item, f"{path}/{key}") for key, item in value.items()}
        body = value[tag]
        if tag == "__tensor__":
            try:
                return self.tensors[body]
            except (KeyError, TypeError):
                raise StateError(
                    f"{path}: tensor {_short(body)} is missing from the checkpoint"
                ) from None
        if tag == "__np__":
            return make_scalar(body, value.get("value"), path)
        if tag == "__tuple__":
            if not isinstance(body, list):
                raise StateError(f"{path}: a saved tuple must hold a list")
            return tuple(self.decode(item, f"{path}/{index}") for index, item in enumerate(body))
        if tag == "__items__":
            return self._items(body, path)
        if tag == "__enum__":
            cls = resolve_type(body, path) if isinstance(body, str) else None
            if cls is None or not is_enum(cls):
                raise StateError(f"{path}: {_short(body)} is not an enum")
            name = value.get("name")
            if not isinstance(name, str) or name not in cls.__members__:
                raise StateError(
                    f"{path}: {_short(name)} is not a member of {cls.__name__} "
                    f"(one of {', '.join(cls.__members__)})"
                )
            return cls[name]
        if tag == "__rng__":
            return make_generator(body, path)
        if tag == "__ref__":
            try:
                return self.elements[body]
            except (KeyError, TypeError):
                raise StateError(
                    f"{path}: refers to {_short(body)}, which is not in the model"
                ) from None
        if not isinstance(body, str):
            raise StateError(f"{path}: {_short(body)} is not a class name")
        cls = resolve_type(body, path)
        fields = value.get("fields")
        if not isinstance(fields, dict):
            raise StateError(f"{path}: a saved {cls.__name__} must hold its fields")
        known = record_fields(cls)
        if known is not None and set(fields) != known:
            unknown, missing = sorted(set(fields) - known), sorted(known - set(fields))
            why = f"unknown field {unknown[0]!r}" if unknown else f"missing field {missing[0]!r}"
            raise StateError(
                f"{path}: a saved {cls.__name__} has fields {', '.join(sorted(known))} ({why})"
            )
        instance = cls.__new__(cls)
        hints = field_types(cls)
        for name, item in fields.items():
            decoded = self.decode(item, f"{path}/{name}")
            if name in hints and not fits(decoded, hints[name]):
                raise StateError(
                    f"{path}/{name}: a {type(decoded).__name__} where a {cls.__name__} "
                    f"holds {_hint_name(hints[name])}"
                )
            object.__setattr__(instance, name, decoded)
        for array in getattr(cls, "arrays", ()):
            check_array(getattr(instance, array.name, None), array, f"{path}/{array.name}")
        return instance

    def _items(self, body: Any, path: str) -> dict:
        if not isinstance(body, list) or not all(
            isinstance(pair, list) and len(pair) == 2 for pair in body
        ):
            raise StateError(f"{path}: a saved mapping must hold [key, value] pairs")
        result = {}
        for key, item in body:
            decoded = self.decode(key, path)
            try:
                result[decoded] = self.decode(item, f"{path}/{decoded}")
            except TypeError:
                raise StateError(f"{path}: a {type(decoded).__name__} cannot be a key") from None
        return result


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@functools.cache
def record_fields(cls: type) -> frozenset[str] | None:
    """The field names a registered record or event must be saved with (None: not known)."""
    if dataclasses.is_dataclass(cls):
        return frozenset(field.name for field in dataclasses.fields(cls))
    return None


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """The annotated field types of a record class ({} if they cannot be resolved)."""
    try:
        return typing.get_type_hints(cls)
    except Exception:  # an annotation naming something not importable here: check nothing
        return {}


_NUMBER_FITS = {
    int: (int, np.integer),
    float: (int, float, np.integer, np.floating),
    bool: (bool, np.bool_),
}


def fits(value: Any, hint: Any) -> bool:
    """Does ``value`` have the annotated type ``hint``? Plain classes, unions and Optional;
    other annotations (generics, Any) are not checked."""
    if hint is Any:  # a class since Python 3.11, but no isinstance check
        return True
    if hint is type(None) or hint is None:
        return value is None
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(fits(value, arm) for arm in typing.get_args(hint))
    if not isinstance(hint, type):
        origin = typing.get_origin(hint)
        return not isinstance(origin, type) or isinstance(value, origin)
    if hint in _NUMBER_FITS:
        return isinstance(value, _NUMBER_FITS[hint]) and (
            hint is bool or not isinstance(value, bool | np.bool_)
        )
    return isinstance(value, hint)


def check_array(value: Any, array: Any, path: str, params: dict | None = None) -> None:
    """StateError unless ``value`` is the array ``array`` (an `nnsim.sim.Array`) declares."""
    if value is None and array.optional:
        return
    if not isinstance(value, np.ndarray):
        raise StateError(f"{path}: must be an array, not {_short(value)}")
    shape, dtype = array.expected(params or {})
    if dtype is not None and value.dtype != dtype:
        raise StateError(f"{path}: must be {dtype.name}, not {value.dtype.name}")
    if value.ndim != len(shape) or any(
        want is not None and got != want for got, want in zip(value.shape, shape, strict=True)
    ):
        expected = ", ".join("*" if n is None else str(n) for n in shape)
        raise StateError(f"{path}: must have shape [{expected}], not {list(value.shape)}")


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("numpy.", "np.")


def make_scalar(code: Any, value: Any, path: str) -> np.generic:
    """A numpy scalar of a closed list of small types, with a value it can hold exactly."""
    dtype = NP_SCALARS.get(code) if isinstance(code, str) else None
    if dtype is None:
        raise StateError(
            f"{path}: numpy scalar type {_short(code)} is not one of {', '.join(NP_SCALARS)}"
        )
    if dtype.kind == "b":
        fits = isinstance(value, bool)
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        fits = type(value) is int and info.min <= value <= info.max
    else:
        fits = type(value) is float or type(value) is int and abs(value) < 2**1000
    if not fits:
        raise StateError(f"{path}: {_short(value)} is not a value of numpy type {dtype.name}")
    return dtype.type(value)


def make_generator(state: dict, path: str) -> np.random.Generator:
    """A numpy Generator in exactly the saved state; StateError if the state is not one."""
    kind = state.get("bit_generator") if isinstance(state, dict) else None
    if not isinstance(kind, str) or kind not in BIT_GENERATORS:
        raise StateError(
            f"{path}: unknown random bit generator {_short(kind)} "
            f"(one of {', '.join(BIT_GENERATORS)})"
        )
    if kind.startswith("PCG64") and not _pcg64_state(state):
        raise StateError(
            f"{path}: malformed {kind} state (needs state and inc below 2**128, "
            "has_uint32 0 or 1, uinteger below 2**32)"
        )
    bit_generator = BIT_GENERATORS[kind]()
    try:
        bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError):
        raise StateError(f"{path}: malformed {kind} state") from None
    return np.random.Generator(bit_generator)


def _pcg64_state(state: dict) -> bool:
    inner = state.get("state")

    def integer(value: Any, bound: int) -> bool:
        return type(value) is int and 0 <= value < bound

    return (
        set(state) == {"bit_generator", "state", "has_uint32", "uinteger"}
        and isinstance(inner, dict)
        and set(inner) == {"state", "inc"}
        and integer(inner["state"], 1 << 128)
        and integer(inner["inc"], 1 << 128)
        and integer(state["has_uint32"], 2)
        and integer(state["uinteger"], 1 << 32)
    )
