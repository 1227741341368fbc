"""What a checkpoint's manifest may hold, checked before anything is read or built.

Two layers, both run by `check_manifest` (which ``parse_manifest`` calls, so
every reader — ``run``, ``predict``, ``checkpoint inspect/verify``, ``list``
— sees the same refusals):

1. **Structure**, as a JSON Schema (`MANIFEST_SCHEMA`, draft 2020-12,
   validated with the ``jsonschema`` library): every field's type, range and
   size — times and counters are integers in ``[0, 2**63)``, latencies ``>= 0``,
   strings, lists and objects have length limits, tensors have at most
   `MAX_RANK` axes and a dtype from a closed list, clock indexes are small,
   queue entries have exactly the keys of their kind. ``integer`` means a
   JSON integer here (``1.0`` is not a time).
2. **Meaning**, as code: what a schema cannot say. Tensor element counts fit
   the bytes of the files that hold them; for a simulation snapshot, every
   component type is registered and its parameters pass the same `Param`
   validation as construction; saved parameters have their declared type
   (``batch_size = "64"`` is refused) and range; declared arrays
   (`nnsim.sim.Array`) have the dtype and shape the parameters imply — so a
   forged ``input_size`` cannot make a layer allocate more than the
   checkpoint holds; links name declared ports; statistics are the declared
   ones; queue entries name existing components, connected ports with a
   handler and existing clocks, at times no earlier than the checkpoint's.
   Every saved value is decoded once by `nnsim.state.Decoder` (nothing is
   allocated from it): numpy scalars come from a closed list of small types
   (a forged ``{"__np__": "V", "value": 2000000000}`` allocates nothing),
   enums name existing members, random generator states are well formed,
   records have exactly their fields, references name existing elements and
   tensors name entries of the tensor table.

jsonschema was chosen over pydantic because the manifest *is* a JSON
document kept as plain dicts (``restore`` walks dicts, not models): a JSON
Schema states its rules as data, in the format's own terms, and its errors
carry the JSON path of the offending field, which is what the one-line
refusal must name.

Every refusal is a `CheckpointError`: ``manifest of checkpoint 'C' is invalid
(components/dense1/state/batch_size: expected a value of type int, got '64');
load another checkpoint``.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any

import numpy as np

from nnsim.checkpoint.errors import CheckpointError
from nnsim.checkpoint.tensorfile import DTYPES
from nnsim.errors import NnsimError, StateError
from nnsim.sim import Event
from nnsim.state.encode import Decoder
from nnsim.state.snapshot import SNAPSHOT_KIND

#: Bounds of the fields (real checkpoints stay far below every one).
MAX_INT = 2**63 - 1
MAX_STRING = 1 << 16
MAX_ITEMS = 1 << 22
MAX_KEYS = 1 << 16
MAX_RANK = 16
MAX_TENSORS = 1 << 16
MAX_COMPONENTS = 1 << 16

_COUNT = {"type": "integer", "minimum": 0, "maximum": MAX_INT}
_TIME = _COUNT
_SHORT = {"type": "string", "maxLength": 400}
_NAME = {"type": "string", "maxLength": 200, "pattern": r"^[^/.\s](?:[^/.]*[^/.\s])?$"}
#: Saved values (state, parameters, payloads) are self-describing trees whose
#: tags (``__tensor__``, ``__np__``, ``__rng__``, ...) the state decoder checks
#: when the snapshot's meaning is checked; a recursive schema here would cost
#: tens of milliseconds per manifest for what the decoder checks anyway.
_VALUE: dict = {}
_IDENTIFIER = {"type": "string", "maxLength": 100, "pattern": r"^[A-Za-z][A-Za-z0-9_]*$"}


def _closed(properties: dict, required: list[str] | None = None) -> dict:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


_STATE = {
    "type": "object",
    "maxProperties": MAX_KEYS,
    "propertyNames": _IDENTIFIER,
    "additionalProperties": _VALUE,
}
_PARAMS = {
    "type": "object",
    "maxProperties": 256,
    "propertyNames": _IDENTIFIER,
    "additionalProperties": _VALUE,
}
_LINK_END = {
    "type": "array",
    "prefixItems": [_NAME, _IDENTIFIER, _TIME],
    "minItems": 3,
    "maxItems": 3,
}

SNAPSHOT_SCHEMA = {
    "type": "object",
    "required": [
        "kind",
        "simulated_time_ps",
        "model",
        "model_signature",
        "simulation",
        "components",
        "queue",
    ],
    "properties": {
        "kind": {"const": SNAPSHOT_KIND},
        "simulated_time_ps": _TIME,
        "model_signature": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "model": _closed(
            {
                "seed": {"type": "integer", "minimum": 0, "maximum": 2**128 - 1},
                "components": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_COMPONENTS,
                    "items": _closed(
                        {
                            "name": _NAME,
                            "type": _SHORT,
                            "params": _PARAMS,
                            "subcomponents": {
                                "type": "array",
                                "maxItems": 256,
                                "items": _closed(
                                    {"slot": _IDENTIFIER, "type": _SHORT, "params": _PARAMS}
                                ),
                            },
                        }
                    ),
                },
                "links": {
                    "type": "array",
                    "maxItems": MAX_COMPONENTS * 16,
                    "items": _closed({"name": _SHORT, "left": _LINK_END, "right": _LINK_END}),
                },
            }
        ),
        "simulation": _closed(
            {
                "seed": {"type": "integer", "minimum": 0, "maximum": 2**128 - 1},
                "now": _TIME,
                "delivered": _COUNT,
                "primaries": _COUNT,
                "blockers": {
                    "type": "array",
                    "maxItems": MAX_COMPONENTS,
                    "uniqueItems": True,
                    "items": _NAME,
                },
                "markers": _COUNT,
                "last_id": _COUNT,
            }
        ),
        "components": {
            "type": "object",
            "maxProperties": MAX_COMPONENTS,
            "propertyNames": _NAME,
            "additionalProperties": _closed(
                {
                    "state": _STATE,
                    "subcomponents": {
                        "type": "object",
                        "maxProperties": 256,
                        "propertyNames": _IDENTIFIER,
                        "additionalProperties": _STATE,
                    },
                    "links": {
                        "type": "object",
                        "maxProperties": 1024,
                        "propertyNames": _IDENTIFIER,
                        "additionalProperties": _closed({"latency": _TIME, "sent": _COUNT}),
                    },
                    "clocks": {
                        "type": "array",
                        "maxItems": 256,
                        "items": _closed(
                            {
                                "frequency": _SHORT,
                                "active": {"type": "boolean"},
                                "scheduled": {"type": "boolean"},
                                "ticks": _COUNT,
                                "seq": _COUNT,
                            }
                        ),
                    },
                    "primary": {"type": "boolean"},
                }
            ),
        },
        "queue": {
            "type": "array",
            "maxItems": MAX_ITEMS,
            "items": {
                "type": "object",
                "required": ["kind", "time", "priority", "seq"],
                "properties": {
                    "kind": {"enum": ["link", "clock", "exit"]},
                    "time": _TIME,
                    "priority": {"type": "integer", "minimum": -(2**31), "maximum": 2**31},
                    "seq": _COUNT,
                },
                "allOf": [
                    {
                        "if": {"properties": {"kind": {"const": "link"}}},
                        "then": _closed(
                            {
                                "kind": {},
                                "time": {},
                                "priority": {},
                                "seq": {},
                                "source": _SHORT,
                                "payload": _VALUE,
                            }
                        ),
                    },
                    {
                        "if": {"properties": {"kind": {"const": "clock"}}},
                        "then": _closed(
                            {
                                "kind": {},
                                "time": {},
                                "priority": {},
                                "seq": {},
                                "component": _NAME,
                                "clock": {"type": "integer", "minimum": 0, "maximum": 255},
                            }
                        ),
                    },
                    {
                        "if": {"properties": {"kind": {"const": "exit"}}},
                        "then": _closed({"kind": {}, "time": {}, "priority": {}, "seq": {}}),
                    },
                ],
            },
        },
    },
}

#: Every manifest: the storage layer's keys; a simulation snapshot also `SNAPSHOT_SCHEMA`.
MANIFEST_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "nnsim checkpoint manifest",
    "type": "object",
    "maxProperties": 256,
    "required": ["format", "format_version", "files", "tensors"],
    "properties": {
        "format": {"const": "nnsim-checkpoint"},
        "format_version": {"type": "integer", "minimum": 1},
        "nnsim_version": {"type": "string", "maxLength": 64},
        "name": {"type": "string", "maxLength": 200},
        "created_at": {"type": "string", "maxLength": 64},
        # Written by the checkpoint manager; read by `checkpoint list/inspect` and retention.
        "reason": {"type": "string", "maxLength": 1000},
        "lineage": {"type": "string", "maxLength": 200},
        "monitor": {"type": "string", "maxLength": 200},
        "metrics": {"type": "object", "maxProperties": 256, "propertyNames": {"maxLength": 200}},
        "manifest_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "files": {
            "type": "object",
            "maxProperties": 4096,
            "additionalProperties": _closed(
                {"sha256": {"type": "string"}, "bytes": {"type": "integer", "minimum": 0}}
            ),
        },
        "tensors": {
            "type": "object",
            "maxProperties": MAX_TENSORS,
            "propertyNames": {"maxLength": 1000},
            "additionalProperties": _closed(
                {
                    "file": {"type": "string"},
                    "dtype": {"enum": list(DTYPES)},
                    "shape": {
                        "type": "array",
                        "maxItems": MAX_RANK,
                        "items": {"type": "integer", "minimum": 0, "maximum": MAX_INT},
                    },
                }
            ),
        },
    },
    "additionalProperties": _VALUE,
    "if": {"properties": {"kind": {"const": SNAPSHOT_KIND}}, "required": ["kind"]},
    "then": SNAPSHOT_SCHEMA,
}


@functools.cache
def _validator():
    """A draft 2020-12 validator whose ``integer`` is a JSON integer, never ``1.0`` or ``true``."""
    from jsonschema import Draft202012Validator, validators

    checker = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: type(value) is int
    )
    cls = validators.extend(Draft202012Validator, type_checker=checker)
    return cls(MANIFEST_SCHEMA)


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return f"an object with {len(value)} keys"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(error) -> str:
    """One short sentence for a jsonschema error (its own message may quote a whole subtree)."""
    keyword, bound, value = error.validator, error.validator_value, error.instance
    if keyword == "type":
        kinds = bound if isinstance(bound, list) else [bound]
        return f"expected {' or '.join(kinds)}, got {_short(value)}"
    if keyword in ("minimum", "maximum"):
        return f"{_short(value)} is {'below' if keyword == 'minimum' else 'above'} {bound}"
    if keyword in ("enum", "const"):
        choices = bound if keyword == "enum" else [bound]
        listed = ", ".join(str(choice) for choice in choices[:12])
        return f"{_short(value)} is not one of {listed}"
    if keyword in ("maxLength", "maxItems", "maxProperties", "minItems"):
        unit = "characters" if keyword == "maxLength" else "entries"
        limit = "at least" if keyword == "minItems" else "at most"
        return f"has {len(value)} {unit}, {limit} {bound} allowed"
    if keyword == "pattern":
        return f"{_short(value)} is not a valid name"
    return error.message[:200]  # required, additionalProperties, ...: short messages


def _path(parts) -> str:
    return "/".join(str(part) for part in parts) or "<top>"


def refusal(label: str, path: str, why: str) -> CheckpointError:
    """The one-line error for field ``path`` of checkpoint ``label``."""
    return CheckpointError(
        f"manifest of checkpoint '{label}' is invalid ({path}: {why}); load another checkpoint"
    )


def check_manifest(manifest: dict, label: str) -> None:
    """CheckpointError (one line naming ``label``, the field and the fault) unless ``manifest`` is valid.

    The structure first (`MANIFEST_SCHEMA`), then tensor sizes against their
    files, then — for a simulation snapshot — its meaning (`check_snapshot`).
    """
    from jsonschema.exceptions import best_match

    error = best_match(itertools.islice(_validator().iter_errors(manifest), 100))
    if error is not None:
        raise refusal(label, _path(error.absolute_path), _describe(error))
    _check_tensor_sizes(manifest, label)
    if manifest.get("kind") == SNAPSHOT_KIND:
        check_snapshot(manifest, label)


def _check_tensor_sizes(manifest: dict, label: str) -> None:
    """The tensors of each file fit in its bytes: a shape cannot claim more than is stored."""
    used = dict.fromkeys(manifest["files"], 0)
    for name, entry in manifest["tensors"].items():
        count = math.prod(entry["shape"])
        size = count * DTYPES[entry["dtype"]].itemsize
        used[entry["file"]] += size
        if used[entry["file"]] > manifest["files"][entry["file"]]["bytes"]:
            raise refusal(
                label,
                f"tensors/{name}/shape",
                f"{entry['dtype']}{entry['shape']} is larger than its file "
                f"'{entry['file']}' ({manifest['files'][entry['file']]['bytes']} bytes)",
            )


def check_snapshot(manifest: dict, label: str) -> None:
    """The checks of a simulation snapshot that need the registered component classes."""
    _Snapshot(manifest, label).check()


class _Snapshot:
    def __init__(self, manifest: dict, label: str):
        self.manifest = manifest
        self.label = label
        self.classes: dict[str, type] = {}
        self.specs: dict[str, dict] = {}
        self.model_params: dict[str, dict] = {}
        self.ports: dict[str, dict] = {}  # component -> its ports by name (port arrays expanded)

    def fail(self, path: str, why: str) -> CheckpointError:
        return refusal(self.label, path, why)

    def check(self) -> None:
        manifest = self.manifest
        simulation = manifest["simulation"]
        if simulation["now"] != manifest["simulated_time_ps"]:
            raise self.fail(
                "simulation/now",
                f"{simulation['now']} is not simulated_time_ps {manifest['simulated_time_ps']}",
            )
        self._model()
        components = manifest["components"]
        if set(components) != set(self.classes):
            odd = sorted(set(components) ^ set(self.classes))[0]
            why = (
                "state is saved for it, but the model has no such component"
                if odd in components
                else "the model has this component, but no state is saved for it"
            )
            raise self.fail(f"components/{odd}", why)
        element_names = set(components)
        for name, saved in components.items():
            element_names.update(f"{name}/{slot}" for slot in saved["subcomponents"])
        # Decoded once to check every saved value; each tensor stands in as a view of one
        # zero with its dtype and shape (no memory for its elements).
        placeholders = {
            name: np.broadcast_to(np.zeros((), DTYPES[entry["dtype"]]), entry["shape"])
            for name, entry in manifest["tensors"].items()
        }
        self.decoder = Decoder(placeholders, dict.fromkeys(element_names))
        for name in self.classes:
            self._component(name, components[name])
        primaries = sum(1 for state in components.values() if state["primary"])
        if simulation["primaries"] != primaries:
            raise self.fail(
                "simulation/primaries",
                f"{simulation['primaries']}, but {primaries} components are primary",
            )
        for index, blocker in enumerate(simulation["blockers"]):
            if blocker not in components or not components[blocker]["primary"]:
                raise self.fail(
                    f"simulation/blockers/{index}", f"{blocker!r} is not a primary component"
                )
        self._check_queue()

    # The model graph: what will be built ---------------------------------------
    def _model(self) -> None:
        from nnsim.sim import Component, SubComponent
        from nnsim.sim.declare import resolve_params

        model = self.manifest["model"]
        for index, spec in enumerate(model["components"]):
            path = f"model/components/{index}"
            name = spec["name"]
            if name in self.classes:
                raise self.fail(f"{path}/name", f"component {name!r} appears twice")
            cls = self._class(spec["type"], Component, f"{path}/type")
            params = self._decode(spec["params"], f"{path}/params")
            try:
                self.model_params[name] = resolve_params(
                    f"{name} ({cls.kind()})", cls.kind(), cls.declared_params(), params
                )
            except NnsimError as error:
                raise self.fail(f"{path}/params", str(error)) from None
            self.ports[name] = cls.ports_for(self.model_params[name])
            slots = set()
            for number, sub in enumerate(spec["subcomponents"]):
                where = f"{path}/subcomponents/{number}"
                if sub["slot"] not in cls.declared_slots() or sub["slot"] in slots:
                    raise self.fail(
                        f"{where}/slot", f"{cls.kind()} has no (other) slot {sub['slot']!r}"
                    )
                slots.add(sub["slot"])
                sub_cls = self._class(sub["type"], SubComponent, f"{where}/type")
                sub_params = self._decode(sub["params"], f"{where}/params")
                try:
                    resolve_params(
                        sub["slot"], sub_cls.kind(), sub_cls.declared_params(), sub_params
                    )
                except NnsimError as error:
                    raise self.fail(f"{where}/params", str(error)) from None
            self.classes[name] = cls
            self.specs[name] = spec
        self.peers: dict[tuple[str, str], tuple[str, str]] = {}
        names = set()
        for index, link in enumerate(model["links"]):
            if link["name"] in names:
                raise self.fail(f"model/links/{index}/name", f"link {link['name']!r} appears twice")
            names.add(link["name"])
            ends = []
            for side in ("left", "right"):
                component, port, _latency = link[side]
                where = f"model/links/{index}/{side}"
                if component not in self.classes:
                    raise self.fail(where, f"no component named {component!r}")
                if port not in self.ports[component]:
                    raise self.fail(where, f"{component} has no port {port!r}")
                if (component, port) in self.peers:
                    raise self.fail(where, f"port {component}.{port} is linked twice")
                ends.append((component, port))
                self.peers[(component, port)] = None
            self.peers[ends[0]], self.peers[ends[1]] = ends[1], ends[0]

    def _class(self, type_name: str, base: type, path: str) -> type:
        from nnsim.sim import lookup

        try:
            cls = lookup(type_name)
        except NnsimError as error:
            raise self.fail(path, str(error)) from None
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise self.fail(path, f"{type_name!r} is not a {base.__name__.lower()} type")
        return cls

    def _decode(self, value: Any, path: str) -> Any:
        decoder = getattr(self, "decoder", None) or Decoder({}, {})
        try:
            return decoder.decode(value, path)
        except StateError as error:
            raise self.fail(path, str(error).removeprefix(f"{path}: ")) from None

    # Saved state: what will be put back ------------------------------------------
    def _component(self, name: str, saved: dict) -> None:
        cls = self.classes[name]
        path = f"components/{name}"
        ports = set(self.ports[name])
        if set(saved["links"]) != ports:
            odd = sorted(set(saved["links"]) ^ ports)[0]
            raise self.fail(
                f"{path}/links/{odd}", f"{cls.kind()} has ports {', '.join(sorted(ports))}"
            )
        slots = {sub["slot"] for sub in self.specs[name]["subcomponents"]}
        slots |= {slot.name for slot in cls.declared_slots().values() if slot.default}
        if set(saved["subcomponents"]) != slots:
            odd = sorted(set(saved["subcomponents"]) ^ slots)[0]
            raise self.fail(
                f"{path}/subcomponents/{odd}",
                f"the model fills slots {', '.join(sorted(slots)) or 'none'}",
            )
        self._element(cls, saved["state"], f"{path}/state", self.model_params[name])
        for slot, state in saved["subcomponents"].items():
            sub_cls = self._sub_class(name, slot)
            self._element(sub_cls, state, f"{path}/subcomponents/{slot}", None)

    def _sub_class(self, name: str, slot: str) -> type:
        from nnsim.sim import lookup

        for sub in self.specs[name]["subcomponents"]:
            if sub["slot"] == slot:
                return lookup(sub["type"])
        default = self.classes[name].declared_slots()[slot].default
        return lookup(default) if isinstance(default, str) else default

    def _element(self, cls: type, state: dict, path: str, built: dict | None) -> None:
        decoded = {key: self._decode(value, f"{path}/{key}") for key, value in state.items()}
        params = {}
        for key, param in cls.declared_params().items():
            if key not in decoded:
                raise self.fail(f"{path}/{key}", "missing (a declared parameter)")
            try:
                params[key] = param.check(decoded[key])
            except ValueError as error:
                raise self.fail(f"{path}/{key}", str(error)) from None
        if "rng" not in decoded:
            raise self.fail(f"{path}/rng", "missing (every element has a random generator)")
        stats = decoded.get("stats")
        declared = set(cls.declared_statistics())
        if not isinstance(stats, dict) or set(stats) != declared:
            raise self.fail(
                f"{path}/stats", f"must count exactly {', '.join(sorted(declared)) or 'nothing'}"
            )
        for key, value in stats.items():
            if type(value) not in (int, float) or not value >= 0:
                raise self.fail(f"{path}/stats/{key}", f"{_short(value)} is not a count >= 0")
        for key, array in cls.declared_arrays().items():
            self._array(array, state.get(key, _MISSING), f"{path}/{key}", params, built)

    def _array(self, array, saved: Any, path: str, params: dict, built: dict | None) -> None:
        if saved is _MISSING:
            raise self.fail(path, "missing (a declared array)")
        if saved is None:
            if array.optional:
                return
            raise self.fail(path, "must be an array, not null")
        if not (isinstance(saved, dict) and "__tensor__" in saved):
            raise self.fail(path, f"must be an array, not {_short(saved)}")
        entry = self.manifest["tensors"][saved["__tensor__"]]
        dtype, shape = DTYPES[entry["dtype"]], entry["shape"]
        for source, values in (("saved", params), ("model", built)):
            if values is None:
                continue
            want_shape, want_dtype = array.expected(values)
            if want_dtype is not None and dtype != want_dtype:
                raise self.fail(
                    path, f"is {dtype.name}, but the {source} parameters make it {want_dtype.name}"
                )
            if len(shape) != len(want_shape) or any(
                want is not None and got != want
                for got, want in zip(shape, want_shape, strict=False)
            ):
                expected = ", ".join("*" if n is None else str(n) for n in want_shape)
                raise self.fail(
                    path, f"has shape {shape}, but the {source} parameters make it [{expected}]"
                )

    # The queue: what will happen next ---------------------------------------------
    def _check_queue(self) -> None:
        now = self.manifest["simulation"]["now"]
        components = self.manifest["components"]
        for index, entry in enumerate(self.manifest["queue"]):
            path = f"queue/{index}"
            if entry["time"] < now:
                raise self.fail(
                    f"{path}/time", f"{entry['time']} is before the checkpoint's time {now}"
                )
            if entry["kind"] == "link":
                component, _, port = entry["source"].partition(".")
                if component not in self.classes or port not in self.ports[component]:
                    raise self.fail(f"{path}/source", f"no port {entry['source']!r} in the model")
                peer = self.peers.get((component, port))
                if peer is None:
                    raise self.fail(f"{path}/source", f"port {entry['source']!r} is not linked")
                handler = self.ports[peer[0]][peer[1]].handler
                if handler is None or not callable(getattr(self.classes[peer[0]], handler, None)):
                    raise self.fail(
                        f"{path}/source", f"{peer[0]}.{peer[1]} has no handler for events"
                    )
                payload = self._decode(entry["payload"], f"{path}/payload")
                if not isinstance(payload, Event):
                    raise self.fail(f"{path}/payload", f"{_short(payload)} is not an event")
            elif entry["kind"] == "clock":
                component = entry["component"]
                if component not in components:
                    raise self.fail(f"{path}/component", f"no component named {component!r}")
                if entry["clock"] >= len(components[component]["clocks"]):
                    raise self.fail(
                        f"{path}/clock",
                        f"{component} has {len(components[component]['clocks'])} clocks, not {entry['clock'] + 1}",
                    )


_MISSING = object()
