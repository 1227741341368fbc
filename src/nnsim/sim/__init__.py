"""The discrete-event kernel: simulation, components, links, clocks, declarations."""

from nnsim.sim.clock import Clock
from nnsim.sim.component import Component, Element, SubComponent
from nnsim.sim.declare import REQUIRED, Array, Frequency, Param, Port, Slot, Statistic, Time
from nnsim.sim.event import Event
from nnsim.sim.link import Link, LinkEnd
from nnsim.sim.registry import lookup, register, registered_types
from nnsim.sim.simulation import FINISHED_REASONS, Simulation

__all__ = [
    "REQUIRED",
    "FINISHED_REASONS",
    "Array",
    "Clock",
    "Component",
    "Element",
    "Event",
    "Frequency",
    "Link",
    "LinkEnd",
    "Param",
    "Port",
    "Simulation",
    "Slot",
    "Statistic",
    "SubComponent",
    "Time",
    "lookup",
    "register",
    "registered_types",
]
