"""Decoding names a class as its module names it, however many copies Python still holds."""

from __future__ import annotations

import gc
from dataclasses import dataclass

from nnsim.sim import Event
from nnsim.state.types import resolve_type, type_key


class Probe(Event):
    value: int = 0


DROPPED = Probe  # what @dataclass(slots=True) leaves behind: a class of the same name
Probe = dataclass(slots=True)(Probe)  # noqa: F811 - exactly what the decorator does


def test_the_class_its_module_names_wins_over_the_one_slots_dropped():
    gc.collect()
    same_name = [c for c in Event.__subclasses__() if type_key(c) == type_key(Probe)]
    assert DROPPED in same_name and Probe in same_name  # both alive, both listed
    assert same_name.index(DROPPED) < same_name.index(Probe)  # the dropped one comes first
    assert resolve_type(type_key(Probe), "<test>") is Probe
