"""TOML tables bound to nested dataclasses: read in layers, typed, range-checked, written back.

Generic: nothing here knows nnsim's keys. A config is a dataclass whose
fields are values or further dataclasses (its tables); each value field may
carry rules (`option`): a range, choices, "this is an input path", another
TOML key than the attribute name. A section may also hold keys that depend
on its other values (`extras`): which settings an optimizer has depends on
which optimizer is named, so their schema is asked of the section once its
fixed keys are known.

Layers, lowest first, are applied by `Binder.load`: the dataclass defaults,
then each `Layer` in order (a TOML file's table, flags as dotted keys, then
``KEY=VALUE`` texts parsed as their key's type). Every key is checked: an
unknown one is an error naming its dotted path and the closest valid key; a
value of the wrong type names the key, the type wanted and the value given.
Nothing is turned into text and back: a TOML value, a flag's Python value
and a ``KEY=VALUE`` text parsed once by its key's type are what the
dataclass holds. `Binder.to_toml` writes a config that reads back equal.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

__all__ = [
    "BindError",
    "Binder",
    "Layer",
    "IGNORE",
    "Option",
    "REQUIRED",
    "Rule",
    "complete",
    "extras",
    "option",
    "show",
    "toml_value",
    "tomllib",
]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""The default of an `Option` that must be given."""


class BindError(ValueError):
    """A key that does not exist, or a value of the wrong type or out of range (one line)."""


@dataclass(frozen=True)
class Rule:
    """What a value must be beyond its type.

    ``min``/``max`` bound numbers (each item of a list), ``min_exclusive``
    makes ``min`` strict, ``choices`` is a tuple or a function returning one
    (asked when checking, so a registry can grow), ``path`` marks an input
    path (made absolute against its layer's base folder), ``key`` is the TOML
    key when it differs from the attribute (``async``), ``describe`` replaces
    the type's description in messages, ``check`` is any further test: it
    raises ValueError with the reason (``"must be ..., got ..."``).
    """

    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    choices: tuple | Callable[[], tuple] | None = None
    path: bool = False
    key: str | None = None
    describe: str | None = None
    check: Callable[[Any], None] | None = None

    def allowed(self) -> tuple | None:
        return self.choices() if callable(self.choices) else self.choices

    def reasons(self, value: Any) -> str | None:
        """Why ``value`` breaks this rule (``"must be >= 1, got 0"``), or None."""
        for each in value if isinstance(value, list) else [value]:
            if isinstance(each, float) and not math.isfinite(each):
                return f"must be a finite number, got {each}"
            if self.min is not None and self.min_exclusive and each <= self.min:
                return f"must be > {self.min!r}, got {show(each)}"
            if self.min is not None and each < self.min:
                return f"must be >= {self.min!r}, got {show(each)}"
            if self.max is not None and each > self.max:
                return f"must be <= {self.max!r}, got {show(each)}"
            choices = self.allowed()
            if choices is not None and each not in choices:
                names = [str(choice) for choice in choices]
                close = difflib.get_close_matches(str(each), names, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                return f"must be one of {', '.join(names)}, got {show(each)}{hint}"
        if self.check is not None:
            try:
                self.check(value)
            except ValueError as error:
                return str(error)
        return None


@dataclass(frozen=True)
class Option:
    """One key of an `extras` schema: its type, default and rule."""

    kind: Any
    default: Any
    rule: Rule = Rule()
    help: str = ""


def option(default: Any, *, rule: Rule | None = None, **rules: Any) -> Any:
    """A dataclass field with a `Rule` (``min=``, ``max=``, ``choices=``, ``path=``, ``key=``...,
    or a ready ``rule=``)."""
    metadata = {"rule": rule if rule is not None else Rule(**rules)}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


IGNORE: Any = object()
"""What an `extras` ``unknown`` hook returns for a key to accept and drop."""


def extras(schema: Callable[[Any], Mapping[str, Option]], unknown=None) -> Any:
    """A ``dict`` field holding the keys ``schema(section)`` declares for this section's values.

    The dict always holds every key of the schema (defaults filled in:
    `complete`). ``unknown(section, key, value)`` may explain a key the
    schema does not have: a reason (``"is not a setting of adam"``), None for
    the usual "unknown config key" message, or `IGNORE` to drop it.
    """
    return field(default_factory=dict, metadata={"extras": schema, "unknown": unknown})


def complete(section: Any) -> None:
    """Fill the `extras` dicts of ``section`` with their schema's defaults (call from
    ``__post_init__``, so that a section made in Python is whole too)."""
    for item in dataclasses.fields(section):
        schema = item.metadata.get("extras")
        if schema is not None:
            given = getattr(section, item.name)
            declared = schema(section)
            for key, each in declared.items():
                given.setdefault(key, _copy(each.default))


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


# Types -----------------------------------------------------------------------------
def _alternatives(kind: Any) -> tuple:
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        return typing.get_args(kind)
    return (kind,)


_NAMES = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    list[int]: "a list of integers",
    list[float]: "a list of numbers",
    list[str]: "a list of strings",
}


def describe(kind: Any) -> str:
    """``"an integer"``, ``"a string or a number"``: what a value of ``kind`` is, for messages."""
    return " or ".join(_NAMES[each] for each in _alternatives(kind))


def _fits(kind: Any, value: Any) -> bool:
    if kind is int:
        return type(value) is int
    if kind is float:
        return type(value) in (int, float)
    if kind in (bool, str):
        return type(value) is kind
    item = typing.get_args(kind)[0]
    return type(value) is list and all(_fits(item, each) for each in value)


def typed(kind: Any, value: Any) -> Any:
    """``value`` (as TOML reads it) as ``kind``; ValueError when it is not one."""
    for each in _alternatives(kind):
        if _fits(each, value):
            if each is float:
                return float(value)
            if each == list[float]:
                return [float(item) for item in value]
            return _copy(value)
    raise ValueError


def parse_text(kind: Any, text: str) -> Any:
    """``text`` from the command line as a TOML value of ``kind``, or None when it is not one.

    Strings take the text as it is; lists may drop their brackets
    (``64,32``); a list of strings may be bare words (``--epochs,3``).
    """
    alternatives = _alternatives(kind)
    if kind is str:
        return text
    source = text
    listed = any(typing.get_origin(each) is list for each in alternatives)
    if listed and not text.strip().startswith("["):
        source = f"[{text}]"
    try:
        value = tomllib.loads(f"value = {source}")["value"]
    except tomllib.TOMLDecodeError:
        if list[str] in alternatives:
            return [item.strip() for item in source.strip()[1:-1].split(",") if item.strip()]
        return text if str in alternatives else None
    if str in alternatives and (
        type(value) is str or not any(_fits(k, value) for k in alternatives)
    ):
        return text  # the text itself, quotes and all, when no other type reads it
    return value


def show(value: Any) -> str:
    """A value as a message quotes it: ``'ten'``, ``2.5``, ``true``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)


# Writing ---------------------------------------------------------------------------
def toml_value(value: Any) -> str:
    """``value`` as TOML text that reads back exactly (floats by ``repr``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # round-trips exactly; finite by validation
    if isinstance(value, str):
        # A TOML basic string: JSON's escapes are TOML's; TOML also wants DEL escaped.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


# The schema ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Key:
    """One TOML key of a section: a field (``attr``), a table, or a key of an extras dict."""

    key: str
    attr: str
    kind: Any
    rule: Rule
    extra: str | None = None  # the extras field holding it


def _static(cls: type) -> dict[str, _Key]:
    """``{toml key: _Key}`` of a section class's own fields (extras dicts left out)."""
    hints = get_type_hints(cls)
    keys = {}
    for item in dataclasses.fields(cls):
        if "extras" in item.metadata:
            continue
        rule = item.metadata.get("rule", Rule())
        key = rule.key or item.name
        keys[key] = _Key(key, item.name, hints[item.name], rule)
    return keys


def _extras(section: Any) -> dict[str, _Key]:
    keys = {}
    for item in dataclasses.fields(section):
        schema = item.metadata.get("extras")
        if schema is not None:
            for key, each in schema(section).items():
                keys[key] = _Key(key, key, each.kind, each.rule, extra=item.name)
    return keys


def _keys(section: Any) -> dict[str, _Key]:
    """Every key of a section instance: its fields', then its extras'."""
    return {**_static(type(section)), **_extras(section)}


def _has_extras(cls: type) -> bool:
    return any("extras" in item.metadata for item in dataclasses.fields(cls))


def _get(section: Any, key: _Key) -> Any:
    if key.extra is not None:
        return getattr(section, key.extra)[key.key]
    return getattr(section, key.attr)


def _put(section: Any, key: _Key, value: Any) -> None:
    if key.extra is not None:
        getattr(section, key.extra)[key.key] = value
    else:
        setattr(section, key.attr, value)


@dataclass(frozen=True)
class Layer:
    """One source of values: a TOML table, flags by dotted key, or ``KEY=VALUE`` texts.

    ``where`` prefixes its messages (``"train.toml: "``); ``base`` is the folder
    its input paths are relative to (None: kept as given).
    """

    values: Mapping[str, Any] | Iterable[str]
    where: str = ""
    base: Path | None = None
    texts: bool = False  # ``values`` are KEY=VALUE texts


@dataclass
class _Pending:
    """A key of an extras section, checked once the section's own keys are all known.

    ``name`` is the key in its section; ``path`` the dotted path as given (longer
    when it reached below the key: ``training.optimizer.beta_2.x``).
    """

    name: str
    path: str
    value: Any
    layer: Layer


class Binder:
    """Reads, checks and writes configs of dataclass ``root``; errors are ``error`` (one line)."""

    def __init__(
        self, root: type, error: type[Exception] = BindError, *, example: str = "KEY=VALUE"
    ) -> None:
        self.root = root
        self.error = error
        self.example = example  # a KEY=VALUE pair shown when --set gets something else

    # Keys -------------------------------------------------------------------------
    def all_keys(self, section: Any = None, prefix: str = "") -> list[str]:
        """Every dotted key of the defaults, tables included: ``["model", "model.hidden", ...]``."""
        section = self.root() if section is None else section
        found = []
        for key, each in _keys(section).items():
            found.append(prefix + key)
            if dataclasses.is_dataclass(each.kind):
                found += self.all_keys(getattr(section, each.attr), f"{prefix}{key}.")
        return found

    def unknown(self, path: str, here: Iterable[str], where: str) -> Exception:
        """'unknown config key X; did you mean Y?' (closest in its table, else anywhere)."""
        table, _, key = path.rpartition(".")
        prefix = f"{table}." if table else ""
        close = difflib.get_close_matches(key, list(here), n=1, cutoff=0.6)
        if close:
            hint = f"; did you mean '{prefix}{close[0]}'?"
        else:
            close = difflib.get_close_matches(path, self.all_keys(), n=1, cutoff=0.6)
            valid = ", ".join(here)
            hint = f"; did you mean '{close[0]}'?" if close else f" (valid keys there: {valid})"
        return self.error(f"{where}unknown config key '{path}'{hint}")

    def _wrong_type(self, where: str, path: str, key: _Key, value: Any) -> Exception:
        wanted = key.rule.describe or describe(key.kind)
        return self.error(f"{where}{path} must be {wanted}, got {show(value)}")

    def option_of(self, path: str, where: str = "") -> Option:
        """The type, default and rule of the key at dotted ``path`` in the defaults.

        A table's kind is its section class and its default the section.
        """
        section: Any = self.root()
        parts = path.split(".")
        found = Option(self.root, section)
        for depth, part in enumerate(parts):
            if not dataclasses.is_dataclass(found.kind):
                raise self.error(f"{where}{'.'.join(parts[:depth])} is not a table")
            keys = _keys(section)
            if part not in keys:
                raise self.unknown(".".join(parts[: depth + 1]), keys, where)
            key = keys[part]
            section = _get(section, key)
            found = Option(key.kind, section, key.rule)
        return found

    def kind_of(self, path: str) -> Any:
        """The type of the key at dotted ``path`` of the defaults (a section class for a table)."""
        return self.option_of(path, "--set: ").kind

    def parse_set(self, pair: str) -> tuple[str, Any]:
        """``"a.b=0.99"`` -> ``("a.b", 0.99)``: the text parsed as its key's type in the defaults."""
        path, text = self._split(pair)
        kind = self.kind_of(path)
        if dataclasses.is_dataclass(kind):
            return path, text
        value = parse_text(kind, text)
        if value is None:
            raise self.error(f"--set: {path} must be {describe(kind)}, got {text!r}")
        return path, value

    def _split(self, pair: str) -> tuple[str, str]:
        path, sep, text = pair.partition("=")
        path = path.strip()
        if not sep or not path:
            raise self.error(f"--set takes KEY=VALUE (e.g. {self.example}), not {pair!r}")
        return path, text

    # Reading ----------------------------------------------------------------------
    def load(self, layers: Iterable[Layer]) -> Any:
        """The defaults with each layer's values applied in order; every key checked.

        Ranges are not checked here (`check_ranges`), except for the keys an
        extras schema depends on, which must be valid before it is asked.
        """
        config = self.root()
        pending: dict[str, list[_Pending]] = {}
        for layer in layers:
            for path, value in self._entries(layer):
                self._apply(config, path, value, layer, pending)
        self._resolve_extras(config, "", pending)
        return config

    def _entries(self, layer: Layer) -> Iterator[tuple[str, Any]]:
        if layer.texts:
            for pair in layer.values:
                yield self._split(pair)
        else:
            yield from layer.values.items()

    def _apply(
        self,
        config: Any,
        path: str,
        value: Any,
        layer: Layer,
        pending: dict[str, list[_Pending]],
    ) -> None:
        """Set dotted ``path`` of ``config`` (a table for a section), or keep it for later
        when it belongs to a section's extras."""
        where = layer.where
        parts = path.split(".")
        section: Any = config
        for depth, part in enumerate(parts):
            keys = _static(type(section))
            done = ".".join(parts[: depth + 1])
            last = depth == len(parts) - 1
            if part not in keys:
                if _has_extras(type(section)):
                    entry = _Pending(part, path, value, layer)
                    pending.setdefault(".".join(parts[:depth]), []).append(entry)
                    return
                raise self.unknown(done, _keys(section), where)
            key = keys[part]
            if dataclasses.is_dataclass(key.kind):
                inner = getattr(section, key.attr)
                if last:
                    if not isinstance(value, dict):
                        first = next(iter(_keys(inner)))
                        raise self.error(
                            f"{where}{done} is a table; set its keys, e.g. {done}.{first}"
                        )
                    for name, item in value.items():
                        self._apply(config, f"{done}.{name}", item, layer, pending)
                    return
                section = inner
                continue
            if not last:
                raise self.error(f"{where}{done} is not a table: it is {describe(key.kind)}")
            _put(section, key, self._typed(done, key, value, layer))
            return

    def _typed(self, path: str, key: _Key, value: Any, layer: Layer) -> Any:
        where = layer.where
        if layer.texts:
            parsed = parse_text(key.kind, value)
            if parsed is None:
                wanted = key.rule.describe or describe(key.kind)
                raise self.error(f"{where}{path} must be {wanted}, got {value!r}")
            value = parsed
        try:
            value = typed(key.kind, value)
        except ValueError:
            raise self._wrong_type(where, path, key, value) from None
        if key.rule.path and value and layer.base is not None:
            value = os.path.normpath(layer.base / Path(value).expanduser())
        return value

    def _resolve_extras(self, section: Any, prefix: str, pending: dict[str, list[_Pending]]):
        """Check and set the keys kept for extras sections, now that their own keys are final."""
        for key in _static(type(section)).values():
            if dataclasses.is_dataclass(key.kind):
                self._resolve_extras(getattr(section, key.attr), f"{prefix}{key.key}.", pending)
        if not _has_extras(type(section)):
            return
        for key in _static(type(section)).values():  # what the schema is asked with
            if not dataclasses.is_dataclass(key.kind):
                self._check(prefix + key.key, key, getattr(section, key.attr))
        for item in dataclasses.fields(section):
            if "extras" in item.metadata:
                setattr(section, item.name, {})
        complete(section)
        keys = _keys(section)
        explain = next(
            item.metadata["unknown"]
            for item in dataclasses.fields(section)
            if "extras" in item.metadata
        )
        table = prefix.rstrip(".")
        for entry in pending.get(table, []):
            key = keys.get(entry.name)
            where = entry.layer.where
            if key is None:
                value = entry.value
                if entry.layer.texts:
                    value = parse_text(int | float | bool | str, value)
                reason = explain(section, entry.name, value) if explain else None
                if reason is IGNORE:
                    continue
                if reason:
                    raise self.error(f"{where}{table}.{entry.name} {reason}")
                raise self.unknown(f"{table}.{entry.name}", keys, where)
            if entry.path != f"{table}.{entry.name}":
                raise self.error(
                    f"{where}{table}.{entry.name} is not a table: it is {describe(key.kind)}"
                )
            _put(section, key, self._typed(entry.path, key, entry.value, entry.layer))
        for name, key in keys.items():
            if key.extra is not None and _get(section, key) is REQUIRED:
                raise self.error(f"{table}.{name} has no default; set it")

    # Checking ---------------------------------------------------------------------
    def _check(self, path: str, key: _Key, value: Any) -> None:
        reason = key.rule.reasons(value)
        if reason is not None:
            raise self.error(f"{path} {reason}")

    def check_ranges(self, section: Any, prefix: str = "") -> None:
        """An error for the first value that breaks its rule (range, choices, finite)."""
        for name, key in _keys(section).items():
            value = _get(section, key)
            if dataclasses.is_dataclass(key.kind):
                self.check_ranges(value, f"{prefix}{name}.")
            else:
                self._check(prefix + name, key, value)

    def map_paths(self, config: Any, function: Callable[[str], str]) -> Any:
        """A copy of ``config`` with ``function(path)`` applied to every input path."""

        def walk(section: Any) -> Any:
            section = dataclasses.replace(section)
            for item in dataclasses.fields(section):
                if "extras" in item.metadata:
                    setattr(section, item.name, dict(getattr(section, item.name)))
            for key in _keys(section).values():
                value = _get(section, key)
                if dataclasses.is_dataclass(key.kind):
                    _put(section, key, walk(value))
                elif key.rule.path:
                    _put(section, key, function(value))
            return section

        return walk(config)

    # Writing ----------------------------------------------------------------------
    def to_toml(self, config: Any, header: str = "") -> str:
        """``config`` as TOML text that `load` reads back to an equal config."""
        lines = [f"# {line}" for line in header.splitlines()]
        if lines:
            lines.append("")
        self._table(config, "", lines)
        return "\n".join(lines)

    def _table(self, section: Any, name: str, lines: list[str]) -> None:
        """``[name]`` and its values, then its tables (the root has no header)."""
        tables = []
        if name:
            lines.append(f"[{name}]")
        for key, each in _keys(section).items():
            value = _get(section, each)
            if dataclasses.is_dataclass(each.kind):
                tables.append((f"{name}.{key}" if name else key, value))
            else:
                lines.append(f"{key} = {toml_value(value)}")
        if name or len(lines) and lines[-1]:
            lines.append("")
        for table_name, table in tables:
            self._table(table, table_name, lines)
