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
            except KeyError:
                raise StateError(
                    f"{path}: tensor '{body}' is missing from the checkpoint"
                ) from None
        if tag == "__np__":
            return np.dtype(body).type(value["value"])
        if tag == "__tuple__":
            return tuple(self.decode(item, f"{path}/{index}") for index, item in enumerate(body))
        if tag == "__items__":
            return {self.decode(key, path): self.decode(item, path) for key, item in body}
        if tag == "__enum__":
            cls = resolve_type(body, path)
            if not is_enum(cls):
                raise StateError(f"{path}: '{body}' is not an enum")
            return cls[value["name"]]
        if tag == "__rng__":
            return make_generator(body, path)
        if tag == "__ref__":
            try:
                return self.elements[body]
            except KeyError:
                raise StateError(f"{path}: refers to '{body}', which is not in the model") from None
        cls = resolve_type(body, path)
        instance = cls.__new__(cls)
        for name, item in value["fields"].items():
            object.__setattr__(instance, name, self.decode(item, f"{path}/{name}"))
        return instance


def make_generator(state: dict, path: str) -> np.random.Generator:
    """A numpy Generator in exactly the saved state."""
    kind = state.get("bit_generator") if isinstance(state, dict) else None
    if kind not in BIT_GENERATORS:
        raise StateError(f"{path}: unknown random bit generator {kind!r}")
    bit_generator = BIT_GENERATORS[kind]()
    bit_generator.state = state
    return np.random.Generator(bit_generator)
