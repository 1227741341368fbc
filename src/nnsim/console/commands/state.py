"""Reading and changing state (CONSOLE.md): ``time``, ``set``.

``converted_value`` is also what a trace's ``set VAR VALUE`` action uses, so
a value is checked the same way whether typed or fired.
"""

from __future__ import annotations

from typing import Any

from nnsim.console.engine import Console, ConsoleError, command
from nnsim.console.objectmap import Place, children, is_scalar, show_scalar, type_name
from nnsim.sim import Element
from nnsim.state.paths import check_change, convert_attribute, convert_like
from nnsim.units import format_time


@command("time", "tm", "time", "Show the current simulated time.")
def _time(console: Console, args: list[str], rest: str) -> None:
    console.emit(f"current time = {console.sim.now} ({format_time(console.sim.now)})")


@command(
    "set",
    "s",
    "set NAME VALUE",
    "Set a scalar or one array element; VALUE is read as its current type.",
    "A string takes the rest of the line. Bad values change nothing.",
)
def _set(console: Console, args: list[str], rest: str) -> None:
    if len(args) < 2:
        raise ConsoleError("usage: set NAME VALUE")
    name = args[0]
    text = rest.split(None, 1)[1] if len(rest.split(None, 1)) > 1 else ""
    place = console.place(name)
    if not is_scalar(place.value):
        raise ConsoleError(
            f"'{name}' is a {type_name(place.value)}; set works on scalars and array elements"
        )
    if place.write is None:
        raise ConsoleError(f"'{name}' is read-only")
    value = converted_value(console, place, text)
    place.write(value)
    console.emit(f"{place.name} = {show_scalar(console.map.place(place.path).value)}")


def converted_value(console: Console, place: Place, text: str) -> Any:
    """Parse as the current type; an element's attribute also by its declaration and its rules."""
    owner_path, _, attribute = place.path.rpartition("/")
    owner = console.map.place(owner_path).value if owner_path else None
    if isinstance(owner, Element) and attribute in children(owner):
        return convert_attribute(owner, attribute, text, place.path)
    value = convert_like(place.value, text, place.path)
    if isinstance(owner, Element):  # an element of an array attribute: "order[3]"
        check_change(owner, attribute, value, place.path)
    return value
