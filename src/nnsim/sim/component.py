"""Components and subcomponents: the things a model is made of.

A component's state is its attributes (DESIGN.md rule 1). Declared parameters
become attributes of the same name, so the console shows and sets them like
any other state. Attributes whose names start with ``_`` are caches the
component rebuilds itself (bound links, loaded datasets); names listed in
``transient`` are public but not saved either.

Subclasses override the phase hooks they need: ``build`` (right after the
parameters are set: create weights, register clocks), ``init(phase)``,
``setup``, ``complete(phase)``, ``finish``.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from nnsim.errors import LinkError, ParamError
from nnsim.sim.clock import Clock
from nnsim.sim.declare import Array, Param, Port, Slot, Statistic, resolve_params
from nnsim.sim.link import LinkEnd

if TYPE_CHECKING:
    from nnsim.sim.simulation import Simulation


def _collect(cls: type, attribute: str) -> dict[str, Any]:
    """Merge a declaration tuple over the class hierarchy, base classes first."""
    merged: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        for item in vars(klass).get(attribute, ()):
            merged[item.name] = item
    return merged


class Element:
    """What components and subcomponents share: a name, parameters, statistics, a RNG."""

    type_name: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    statistics: ClassVar[tuple[Statistic, ...]] = ()
    slots: ClassVar[tuple[Slot, ...]] = ()
    arrays: ClassVar[tuple[Array, ...]] = ()
    transient: ClassVar[tuple[str, ...]] = ()

    def __init__(self, sim: Simulation, name: str, **params: Any):
        self.sim = sim
        self.name = name
        self._init_params = dict(params)  # as given: how a checkpoint rebuilds this element
        values = resolve_params(self.describe(), self.kind(), self.declared_params(), params)
        for key, value in values.items():
            setattr(self, key, value)
        self.stats = {stat: 0 for stat in self.declared_statistics()}
        seed_key = zlib.crc32(name.encode())
        self.rng = np.random.default_rng(np.random.SeedSequence(sim.seed, spawn_key=(seed_key,)))
        self.subcomponents: dict[str, SubComponent] = {}
        for slot in self.declared_slots().values():
            if slot.default is not None:
                self.set_subcomponent(slot.name, slot.default)

    # Declarations, merged over base classes.
    @classmethod
    def kind(cls) -> str:
        return cls.type_name or f"{cls.__module__}.{cls.__qualname__}"

    @classmethod
    def declared_params(cls) -> dict[str, Param]:
        return _collect(cls, "params")

    @classmethod
    def declared_statistics(cls) -> dict[str, Statistic]:
        return _collect(cls, "statistics")

    @classmethod
    def declared_slots(cls) -> dict[str, Slot]:
        return _collect(cls, "slots")

    @classmethod
    def declared_arrays(cls) -> dict[str, Array]:
        return _collect(cls, "arrays")

    def describe(self) -> str:
        return f"{self.name} ({self.kind()})"

    def set_subcomponent(self, slot: str, type_name: str | type, **params: Any) -> SubComponent:
        """Fill ``slot`` with a new subcomponent named ``<name>/<slot>`` (also an attribute)."""
        from nnsim.sim.registry import lookup

        if slot not in self.declared_slots():
            raise ParamError(f"{self.describe()} has no subcomponent slot '{slot}'")
        cls = lookup(type_name) if isinstance(type_name, str) else type_name
        if not issubclass(cls, SubComponent):
            raise ParamError(
                f"{cls.kind()} is not a subcomponent type; it cannot fill slot '{slot}'"
            )
        sub = cls(self.sim, f"{self.name}/{slot}", parent=self, **params)
        self.subcomponents[slot] = sub
        setattr(self, slot, sub)
        return sub

    # Phase hooks; subclasses override what they need.
    def build(self) -> None:
        """Called once the parameters are attributes: create weights, clocks, links."""

    def init(self, phase: int) -> None:
        """Untimed exchange round ``phase``; rounds repeat until none sends anything."""

    def setup(self) -> None:
        """Last step before time starts."""

    def complete(self, phase: int) -> None:
        """Untimed exchange round after the run, like ``init``."""

    def finish(self) -> None:
        """Last call: write results."""

    def restore(self) -> None:
        """Called after a restart from a checkpoint: re-create what was not saved.

        The saved attributes are back in place; rebuild caches and re-read
        transient data (datasets, say). Links and clocks are restored by the kernel.
        """

    def print(self, line: str) -> None:
        """Write a line of the simulation's output."""
        self.sim.print(line)


class SubComponent(Element):
    """A part that fills a slot of a component (an optimizer, say); it has no links."""

    def __init__(self, sim: Simulation, name: str, *, parent: Element, **params: Any):
        self.parent = parent
        super().__init__(sim, name, **params)
        self.build()


class Component(Element):
    """A simulated unit with ports, clocks and optional primary status."""

    ports: ClassVar[tuple[Port, ...]] = ()

    def __init__(self, sim: Simulation, name: str, **params: Any):
        super().__init__(sim, name, **params)
        self.links: dict[str, LinkEnd] = {}
        for port in self.declared_ports().values():
            self.links[port.name] = LinkEnd(self, port.name, sim._next_id(), port.handler)
        self.clocks: list[Clock] = []
        self.primary = False
        self.build()

    @classmethod
    def declared_ports(cls) -> dict[str, Port]:
        return _collect(cls, "ports")

    def status(self) -> str:
        """One line for the console's ``printStatus``; components may say more."""
        clocks = ", ".join("on" if clock.active else "off" for clock in self.clocks) or "none"
        sent = sum(end.sent for end in self.links.values())
        return f"{self.name} ({self.kind()}): clock {clocks}, events sent {sent}"

    def link(self, port: str) -> LinkEnd:
        """The end of the link on ``port`` (connected or not)."""
        try:
            return self.links[port]
        except KeyError:
            raise LinkError(
                f"{self.describe()} has no port '{port}'; its ports are "
                f"{', '.join(self.links) or 'none'}"
            ) from None

    def register_clock(self, frequency: str, handler: str, start: bool = True) -> Clock:
        """Call method ``handler(cycle)`` every period of ``frequency`` while the clock is on."""
        clock = Clock(self, self.sim._next_id(), frequency, handler)
        self.clocks.append(clock)
        if start:
            self.sim._on_start(clock.wake)
        return clock

    # Primary components decide when the simulation may end (SST semantics).
    def register_as_primary(self) -> None:
        if not self.primary:
            self.primary = True
            self.sim._primaries += 1

    def primary_component_do_not_end_sim(self) -> None:
        self.sim._primary_blocks(self, True)

    def primary_component_ok_to_end_sim(self) -> None:
        self.sim._primary_blocks(self, False)
