"""The fault options as values: ``--crash NODE@TIME`` and ``--corrupt-rate P``.

A crash names a hardware node by number (``3``) or by name (``node3``) and
a simulated time with its unit (``5us``); at that time the node stops and
its links go down (the timing model's business). Parsed here so that a
malformed one is refused before anything is built.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from nnsim.errors import NnsimError, UnitError
from nnsim.units import format_time, parse_time

MAX_CRASHES = 4096
_NODE = re.compile(r"(?:node)?(\d{1,6})")


@dataclass(frozen=True)
class Crash:
    """Node ``node`` stops at ``time`` ps."""

    node: int
    time: int

    def __str__(self) -> str:
        return f"node{self.node}@{format_time(self.time)}"


def parse_crash(text: str, nodes: int | None = None) -> Crash:
    """``node3@5us`` (or ``3@5us``) as a `Crash`; one line naming the fix when it is not one."""
    usage = "write NODE@TIME, e.g. node3@5us or 3@5us"
    where, at, when = str(text).partition("@")
    match = _NODE.fullmatch(where.strip())
    if not at or match is None:
        raise NnsimError(f"--crash '{text}': {usage}")
    node = int(match.group(1))
    if nodes is not None and node >= nodes:
        raise NnsimError(
            f"--crash '{text}': the hardware has nodes 0 to {nodes - 1} (node{nodes - 1}), "
            f"not node{node}"
        )
    try:
        time = parse_time(when.strip())
    except UnitError as error:
        raise NnsimError(f"--crash '{text}': {error}") from None
    if time < 0:
        raise NnsimError(f"--crash '{text}': the time must not be negative")
    return Crash(node, time)


def parse_crashes(texts: list[str] | tuple[str, ...], nodes: int | None = None) -> list[Crash]:
    if len(texts) > MAX_CRASHES:
        raise NnsimError(f"--crash is given {len(texts)} times; at most {MAX_CRASHES}")
    return [parse_crash(text, nodes) for text in texts]


def check_corrupt_rate(rate: float) -> float:
    """A probability per transmitted bit, 0 <= P <= 1 (one line otherwise)."""
    if not (isinstance(rate, (int, float)) and math.isfinite(rate) and 0.0 <= rate <= 1.0):
        raise NnsimError(f"--corrupt-rate must be a probability between 0 and 1, not {rate}")
    return float(rate)
