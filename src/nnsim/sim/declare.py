"""Declarations a component class makes about itself, SST Element-Library style.

Parameters, ports, subcomponent slots and statistics are data on the class,
each with a one-line description, so that validation, ``nnsim info`` and the
README's component table all come from one place.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnsim.errors import ParamError, UnitError
from nnsim.units import parse_frequency, parse_time


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


class Time:
    """Parameter type: a simulated time, stored as int ps (``"1us"`` or an int)."""


class Frequency:
    """Parameter type: a clock frequency string such as ``"1GHz"``, validated."""


_TYPE_NAMES = {
    int: "int",
    float: "float",
    bool: "bool",
    str: "str",
    Time: "time",
    Frequency: "frequency",
}
INT_LIMIT = 2**63 - 1
"""Integer parameters fit a signed 64-bit integer (what numpy and the checkpoint hold)."""
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


@dataclass(frozen=True)
class Param:
    """One documented parameter: its type, default, allowed range and help line.

    Numbers are refused when not finite (nan, inf) or outside ``min``..``max``
    (``min_exclusive``: strictly above ``min``, as Adam's epsilon must be).
    ``fixed`` marks a parameter the component was built from (a layer's size:
    its arrays are shaped by it); changing it on a built component is refused
    (`Element.check_change`), since the change could not be honoured.
    """

    name: str
    type: type
    default: Any = REQUIRED
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None
    min_exclusive: bool = False
    fixed: bool = False

    @property
    def type_name(self) -> str:
        return _TYPE_NAMES.get(self.type, self.type.__name__)

    @property
    def allowed(self) -> str:
        """The values ``convert`` accepts beyond the type, for people: ``>= 1``, ``0.0 to 1.0``,
        ``one of float32, float64`` (joined by ``; ``), or ``""`` when any value of the type is.
        """
        parts = []
        if self.choices is not None:
            parts.append(f"one of {', '.join(map(str, self.choices))}")
        above = ">" if self.min_exclusive else ">="
        if self.min is not None and self.max is not None:
            below = f"above {self.min!r}" if self.min_exclusive else f"{self.min!r}"
            parts.append(f"{below} to {self.max!r}")
        elif self.min is not None:
            parts.append(f"{above} {self.min!r}")
        elif self.max is not None:
            parts.append(f"<= {self.max!r}")
        return "; ".join(parts)

    def convert(self, value: Any) -> Any:
        """Return ``value`` as this parameter's type; raise ValueError with a short reason."""
        kind = self.type
        if kind is bool:
            if isinstance(value, bool):
                result = value
            elif isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                result = value.strip().lower() in _TRUE
            elif isinstance(value, int) and value in (0, 1):
                result = bool(value)
            else:
                raise ValueError(f"expected true or false, got {value!r}")
        elif kind is int:
            if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
                raise ValueError(f"expected an int, got {value!r}")
            try:
                result = int(value)
            except (TypeError, ValueError):
                raise ValueError(f"expected an int, got {value!r}") from None
            if not -INT_LIMIT <= result <= INT_LIMIT:
                raise ValueError(f"{result} is out of range (a 64-bit integer at most)")
        elif kind is float:
            if isinstance(value, bool):
                raise ValueError(f"expected a number, got {value!r}")
            try:
                result = float(value)
            except (TypeError, ValueError, OverflowError):
                raise ValueError(f"expected a number, got {value!r}") from None
            if not math.isfinite(result):
                raise ValueError(f"expected a finite number, got {value!r}")
        elif kind is str:
            if not isinstance(value, str):
                raise ValueError(f"expected a string, got {value!r}")
            if "\x00" in value:
                raise ValueError("a string cannot hold a NUL byte (\\x00)")
            result = value
        elif kind is Time:
            try:
                result = parse_time(value)
            except UnitError as error:
                raise ValueError(str(error)) from None
        elif kind is Frequency:
            try:
                parse_frequency(str(value))
            except UnitError as error:
                raise ValueError(str(error)) from None
            result = str(value)
        else:
            raise ValueError(f"unsupported parameter type {kind!r}")
        if self.choices is not None and result not in self.choices:
            raise ValueError(f"expected one of {', '.join(map(str, self.choices))}, got {result!r}")
        if self.min is not None and self.min_exclusive and result <= self.min:
            raise ValueError(f"must be > {self.min}, got {result!r}")
        if self.min is not None and result < self.min:
            raise ValueError(f"must be >= {self.min}, got {result!r}")
        if self.max is not None and result > self.max:
            raise ValueError(f"must be <= {self.max}, got {result!r}")
        return result

    def check(self, value: Any) -> Any:
        """``value`` if it already is a valid value of this parameter, else ValueError.

        For values read back from a checkpoint: nothing is parsed (``"64"`` is
        not an int here, ``nan`` not a float), then `convert` applies the same
        range and choices as construction.
        """
        kind = self.type
        if kind is bool:
            typed = isinstance(value, bool | np.bool_)
        elif kind is int or kind is Time:
            typed = isinstance(value, int | np.integer) and not isinstance(value, bool)
        elif kind is float:
            typed = (
                isinstance(value, int | float | np.integer | np.floating)
                and not isinstance(value, bool)
                and math.isfinite(value)
            )
        elif kind is str or kind is Frequency:
            typed = isinstance(value, str)
        else:
            typed = False
        if not typed:
            raise ValueError(f"expected a value of type {self.type_name}, got {_short(value)}")
        return self.convert(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class Array:
    """A numpy array a component keeps as state, with the shape and dtype its parameters imply.

    ``shape`` holds one entry per axis: an int (a fixed size), the name of an
    int parameter (``"input_size"``), or None (any size: a batch). ``dtype``
    is the name of a str parameter holding a dtype name (``"dtype"``), a
    numpy dtype name (``"int64"``) or None (any). ``optional`` arrays may
    also be None.
    Restoring a checkpoint checks every declared array against the saved
    parameters before anything is built, so a forged parameter cannot make
    the component allocate more than the checkpoint holds.
    """

    name: str
    shape: tuple[int | str | None, ...]
    dtype: str | None
    help: str = ""
    optional: bool = False

    def expected(self, params: dict[str, Any]) -> tuple[tuple[int | None, ...], np.dtype | None]:
        """The shape (None: any size) and dtype (None: any) that ``params`` imply."""
        shape = tuple(params[axis] if isinstance(axis, str) else axis for axis in self.shape)
        if self.dtype is None:
            return shape, None
        return shape, np.dtype(params.get(self.dtype, self.dtype))


@dataclass(frozen=True)
class Port:
    """A named port. ``handler`` names the method that receives its events (None: send only).

    ``count`` makes it a port *array* (SST's ``port%d`` ports): the name of an
    int parameter, and the component then has ports ``<name>0`` ...
    ``<name>{count-1}``, all with this handler (a dataflow node's links, one
    per neighbour). ``names(params)`` lists the ports a component built with
    ``params`` has.
    """

    name: str
    help: str = ""
    handler: str | None = None
    count: str | None = None

    def names(self, params: dict[str, Any]) -> list[str]:
        if self.count is None:
            return [self.name]
        return [f"{self.name}{index}" for index in range(int(params[self.count]))]


@dataclass(frozen=True)
class Statistic:
    """A named counter the component keeps; written at the end on request."""

    name: str
    help: str = ""
    unit: str = "count"


@dataclass(frozen=True)
class Slot:
    """A subcomponent slot (a layer's optimizer, say) with the type used when none is set."""

    name: str
    help: str = ""
    default: str | None = None


def resolve_params(who: str, type_name: str, declared: dict[str, Param], given: dict) -> dict:
    """Validate ``given`` against the declarations and fill in defaults.

    ``who`` names the instance in messages, e.g. ``"dense1 (nn.Dense)"``.
    """
    for key in given:
        if key not in declared:
            hint = difflib.get_close_matches(key, list(declared), n=1)
            suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
            raise ParamError(
                f"{who} has no parameter '{key}'{suggestion} "
                f"(run 'nnsim info {type_name}' for the list)"
            )
    values = {}
    for name, param in declared.items():
        if name in given:
            try:
                values[name] = param.convert(given[name])
            except ValueError as error:
                raise ParamError(f"parameter '{name}' of {who}: {error}") from None
        elif param.default is REQUIRED:
            raise ParamError(f"{who} needs parameter '{name}' ({param.help or param.type_name})")
        else:
            values[name] = param.default
    return values
