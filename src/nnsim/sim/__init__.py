"""The discrete-event kernel: simulation, components, links, clocks, declarations."""

from nnsim.sim.clock import Clock
from nnsim.sim.component import Component, Element, SubComponent, Wait
from nnsim.sim.declare import REQUIRED, Array, Frequency, Param, Port, Slot, Statistic, Time
from nnsim.sim.event import ACTION_PRIORITY, EXIT_PRIORITY, STOP_PRIORITY, Event
from nnsim.sim.hooks import HandlerHook
from nnsim.sim.link import Link, LinkEnd, OutboxSender
from nnsim.sim.registry import lookup, register, registered_types, unregister
from nnsim.sim.rng import component_rng, component_seed_sequence
from nnsim.sim.simulation import FINISHED_REASONS, Pending, Placement, Scheduled, Simulation
from nnsim.sim.view import StateView

__all__ = [
    "ACTION_PRIORITY",
    "EXIT_PRIORITY",
    "STOP_PRIORITY",
    "REQUIRED",
    "FINISHED_REASONS",
    "Array",
    "Clock",
    "Component",
    "Element",
    "Event",
    "Frequency",
    "HandlerHook",
    "Link",
    "LinkEnd",
    "OutboxSender",
    "Param",
    "Pending",
    "Placement",
    "Port",
    "Scheduled",
    "Simulation",
    "Slot",
    "StateView",
    "Statistic",
    "SubComponent",
    "Time",
    "Wait",
    "component_rng",
    "component_seed_sequence",
    "lookup",
    "register",
    "registered_types",
    "unregister",
]
