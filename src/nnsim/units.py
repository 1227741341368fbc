"""Simulated time as integer ticks of 1 ps, and the strings people write for it.

Integer picoseconds make time exact: no rounding drift over millions of
events, so a restarted run lands on the same ticks as a straight one.
Strings follow SST's habits: ``"1us"``, ``"2.5 ns"``, ``"1GHz"`` (a frequency
read as its period where a time is wanted), and ``32.2803 ms`` on output.
"""

from __future__ import annotations

import re
from fractions import Fraction

from nnsim.errors import UnitError

PS_PER_SECOND = 10**12
MAX_TIME = 2**63 - 1
"""The latest time the kernel's queue can hold (a signed 64-bit count of ps, ~106 days)."""

_TIME_UNITS = {
    "ps": Fraction(1),
    "ns": Fraction(10**3),
    "us": Fraction(10**6),
    "ms": Fraction(10**9),
    "s": Fraction(10**12),
}
_FREQUENCY_UNITS = {"hz": 1, "khz": 10**3, "mhz": 10**6, "ghz": 10**9, "thz": 10**12}
_QUANTITY = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zA-Zµ]*)\s*$")


def _split(text: str) -> tuple[Fraction, str]:
    match = _QUANTITY.match(text)
    if not match:
        raise UnitError(f"cannot read {text!r} as a time or frequency; write e.g. '1us' or '1GHz'")
    number, unit = match.groups()
    mantissa, _, exponent = number.lower().partition("e")
    # Fraction("1e9999999") takes seconds and then fails with a plain ValueError.
    if len(mantissa) > 40 or len(exponent.lstrip("+-").lstrip("0")) > 2:
        raise UnitError(f"the number in {text!r} is out of range; write e.g. '1us' or '1GHz'")
    return Fraction(number), unit.replace("µ", "u")


TIME_UNITS_HELP = "units: ps, ns, us, ms, s; or a frequency such as 1GHz for its period"


def parse_time(value: str | int) -> int:
    """Return ``value`` in ps. An int is already ps; ``"1GHz"`` means its period.

    A string needs its unit: ``"5"`` is refused rather than read as 5 ps, the
    silent surprise of ``--stop-at 5``. Only ``"0"`` may stand alone (the
    start, as in ``--interactive-start=0``): zero is the same in every unit.
    """
    if isinstance(value, bool):
        raise UnitError(f"cannot read {value!r} as a time; write e.g. '1us'")
    if isinstance(value, int):
        if value < 0:
            raise UnitError(f"time {value} ps is negative; times must be >= 0")
        return _bounded(value, value)
    number, unit = _split(str(value))
    if unit.lower() in _FREQUENCY_UNITS:
        return period_of(value)
    if unit == "":
        if number != 0:  # zero is zero in any unit; any other bare number is ambiguous
            raise UnitError(
                f"time {str(value).strip()!r} has no unit; write e.g. "
                f"'{str(value).strip()}us' ({TIME_UNITS_HELP})"
            )
        unit = "ps"
    if unit not in _TIME_UNITS:
        raise UnitError(f"unknown time unit {unit!r} in {value!r}; use ps, ns, us, ms or s")
    ticks = number * _TIME_UNITS[unit]
    if ticks.denominator != 1:
        raise UnitError(f"time {value!r} is not a whole number of picoseconds")
    return _bounded(int(ticks), value)


def _bounded(ticks: int, value: str | int) -> int:
    """``ticks``, unless the kernel cannot hold that time (past `MAX_TIME`)."""
    if ticks > MAX_TIME:
        shown = f"{value} ps" if isinstance(value, int) else repr(value)
        raise UnitError(
            f"time {shown} is too far: simulated time ends at {format_time(MAX_TIME)} "
            f"({MAX_TIME} ps)"
        )
    return ticks


def parse_frequency(value: str) -> Fraction:
    """Return a frequency in Hz, exactly (``"2.5GHz"`` -> 2500000000)."""
    number, unit = _split(str(value))
    if unit == "mHz":
        raise UnitError(f"{value!r}: millihertz is not supported; did you mean MHz?")
    scale = _FREQUENCY_UNITS.get(unit.lower())
    if scale is None:
        raise UnitError(f"unknown frequency unit {unit!r} in {value!r}; use Hz, kHz, MHz or GHz")
    if number <= 0:
        raise UnitError(f"frequency {value!r} must be positive")
    return number * scale


def period_of(frequency: str) -> int:
    """The clock period in ps of a frequency string, which must be whole ps."""
    hertz = parse_frequency(frequency)
    period = Fraction(PS_PER_SECOND) / hertz
    if period.denominator != 1:
        raise UnitError(f"the period of {frequency!r} is not a whole number of picoseconds")
    return int(period)


def format_time(ps: int, digits: int = 6) -> str:
    """``32280300000`` -> ``'32.2803 ms'``: the largest unit that keeps the value >= 1."""
    for unit in ("s", "ms", "us", "ns"):
        scale = _TIME_UNITS[unit]
        if ps >= scale:
            return f"{float(ps / scale):.{digits}g} {unit}"
    return f"{ps} ps"
