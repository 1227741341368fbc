"""Saved state names classes; loading finds the class the module really holds."""

from __future__ import annotations

import gc
import sys
import types
from dataclasses import dataclass

from nnsim.sim import Event
from nnsim.state.types import resolve_type, type_key


def test_a_slots_dataclass_event_resolves_to_the_class_its_module_holds():
    """``@dataclass(slots=True)`` makes a new class; the replaced one lingers until a GC.

    Before the fix, loading a checkpoint could pick the stale class, whose
    instances fail ``type(event) is Batch``: a restarted run then sent its
    first batch backwards (only when the GC had not run yet).
    """
    module = types.ModuleType("nnsim_test_slots_events")
    sys.modules[module.__name__] = module
    enabled = gc.isenabled()
    gc.disable()  # keep the replaced class alive, as before a collection
    try:

        @dataclass(slots=True)
        class Ping(Event):
            value: int = 0

        Ping.__module__ = module.__name__
        Ping.__qualname__ = "Ping"
        module.Ping = Ping
        stale = [
            cls for cls in Event.__subclasses__() if cls.__name__ == "Ping" and cls is not Ping
        ]
        for cls in stale:  # the replaced class, under the same name
            cls.__module__, cls.__qualname__ = module.__name__, "Ping"
        assert stale, "dataclass(slots=True) left no replaced class to confuse the lookup"
        assert resolve_type(type_key(Ping), "<queue>/0") is Ping
    finally:
        if enabled:
            gc.enable()
        del sys.modules[module.__name__]
