"""Saved events decode into the classes their modules define, whatever the import order."""

from __future__ import annotations

import gc
from dataclasses import dataclass

import nnsim.nn.events as events
from nnsim.sim import Event
from nnsim.state.types import resolve_type


def test_a_slots_dataclass_event_resolves_to_the_class_its_module_exports():
    """``@dataclass(slots=True)`` leaves the undecorated class alive among Event's subclasses.

    That stale twin has the same ``module:QualName``; decoding into it made
    ``type(event) is Batch`` false in a restored run (a resume that sent a
    batch backwards), depending only on import order.
    """
    gc.disable()  # keep any stale twin alive for the test
    try:

        @dataclass(slots=True)
        class Twin(Event):  # its own stale twin exists now
            value: int = 0

        for cls in (events.Batch, events.Gradient, events.Outcome):
            assert resolve_type(f"{cls.__module__}:{cls.__qualname__}", "<test>") is cls
        key = f"{Twin.__module__}:{Twin.__qualname__}"
        assert resolve_type(key, "<test>") is Twin  # a local class still resolves: the newest
    finally:
        gc.enable()
