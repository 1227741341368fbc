"""Watchpoint triggers, SST's grammar: ``CMP [(&& | ||) CMP]...``, strictly left to right.

``CMP`` is ``VAR changed``, ``VAR OP VALUE`` or ``VAR OP VAR`` with ``OP`` one
of ``< <= > >= == !=``. There is no precedence: ``a && b || c`` is
``(a && b) || c`` and ``a || b && c`` is ``(a || b) && c``. ``changed``
compares with the value at the previous check (initially the value when the
watchpoint was created).

Parsing needs a ``resolve(name) -> Variable`` that finds a scalar in the
object map; evaluation reads the variables live.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from nnsim.errors import NnsimError

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
JOINERS = ("&&", "||")


class TriggerError(NnsimError):
    """A trigger that does not parse, or names something that is not a scalar."""


@dataclass
class Variable:
    """A scalar in the live state: how to read it, and which component holds it."""

    path: str
    read: Callable[[], Any]
    component: str  # the top-level component whose handlers check the trigger

    def parse_value(self, text: str) -> Any:
        """Read ``text`` as a value of this variable's current type."""
        from nnsim.state.paths import convert_like

        current = self.read()
        try:
            return convert_like(current, text, self.path)
        except NnsimError as error:
            raise TriggerError(str(error)) from None


@dataclass
class Comparison:
    left: Variable
    op: str  # an OPERATORS key, or "changed"
    right: Variable | None = None
    value: Any = None
    last: Any = None  # for "changed": the value at the previous check

    def holds(self) -> bool:
        current = self.left.read()
        if self.op == "changed":
            changed = _differs(current, self.last)
            self.last = current
            return changed
        other = self.right.read() if self.right is not None else self.value
        try:
            return bool(OPERATORS[self.op](_comparable(current), _comparable(other)))
        except TypeError:
            return False

    def describe(self) -> str:
        if self.op == "changed":
            return f"{self.left.path} changed"
        right = self.right.path if self.right is not None else _show(self.value)
        return f"{self.left.path} {self.op} {right}"


@dataclass
class Trigger:
    """Comparisons joined left to right."""

    first: Comparison
    rest: list[tuple[str, Comparison]] = field(default_factory=list)

    def holds(self) -> bool:
        """Evaluate left to right; every ``changed`` updates its memory on every check."""
        result = self.first.holds()
        for joiner, comparison in self.rest:
            value = comparison.holds()
            result = (result and value) if joiner == "&&" else (result or value)
        return result

    def comparisons(self) -> list[Comparison]:
        return [self.first, *(comparison for _, comparison in self.rest)]

    def variables(self) -> list[Variable]:
        found = []
        for comparison in self.comparisons():
            found.append(comparison.left)
            if comparison.right is not None:
                found.append(comparison.right)
        return found

    def describe(self) -> str:
        text = self.first.describe()
        for joiner, comparison in self.rest:
            text += f" {joiner} {comparison.describe()}"
        return text


def parse_trigger(tokens: list[str], resolve: Callable[[str], Variable]) -> Trigger:
    """Parse whitespace-separated tokens into a trigger; raise TriggerError with the reason."""
    if not tokens:
        raise TriggerError("a trigger is needed, e.g. 'state changed' or 'epoch >= 3'")
    comparisons: list[Comparison] = []
    joiners: list[str] = []
    position = 0
    while True:
        comparison, position = _parse_comparison(tokens, position, resolve)
        comparisons.append(comparison)
        if position == len(tokens):
            break
        joiner = tokens[position]
        if joiner not in JOINERS:
            raise TriggerError(
                f"expected && or || after '{comparison.describe()}', found '{joiner}'"
            )
        joiners.append(joiner)
        position += 1
        if position == len(tokens):
            raise TriggerError(f"a comparison must follow '{joiner}'")
    return Trigger(comparisons[0], list(zip(joiners, comparisons[1:], strict=True)))


def _parse_comparison(tokens: list[str], position: int, resolve) -> tuple[Comparison, int]:
    name = tokens[position]
    if name in JOINERS or name in OPERATORS or name == "changed":
        raise TriggerError(f"expected a variable name, found '{name}'")
    left = resolve(name)
    if position + 1 >= len(tokens):
        raise TriggerError(f"'{name}' needs 'changed' or an operator (< <= > >= == !=) and a value")
    op = tokens[position + 1]
    if op == "changed":
        return Comparison(left, "changed", last=left.read()), position + 2
    if op not in OPERATORS:
        raise TriggerError(
            f"unknown operator '{op}' after '{name}'; use changed, <, <=, >, >=, == or !="
        )
    if position + 2 >= len(tokens):
        raise TriggerError(f"'{name} {op}' needs a value or a variable")
    operand = tokens[position + 2]
    if operand in JOINERS or operand in OPERATORS or operand == "changed":
        raise TriggerError(f"'{name} {op}' needs a value or a variable, found '{operand}'")
    try:
        right = resolve(operand)
    except NnsimError:
        right = None
    if right is not None:
        return Comparison(left, op, right=right), position + 3
    return Comparison(left, op, value=left.parse_value(operand)), position + 3


def _comparable(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    return value


def _differs(a: Any, b: Any) -> bool:
    try:
        return bool(a != b)
    except (TypeError, ValueError):
        return a is not b


def _show(value: Any) -> str:
    return value.name if isinstance(value, Enum) else str(value)
