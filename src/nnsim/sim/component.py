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

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from nnsim.errors import LinkError, ParamError
from nnsim.sim.clock import Clock
from nnsim.sim.declare import Array, Param, Port, Slot, Statistic, resolve_params
from nnsim.sim.link import LinkEnd
from nnsim.sim.rng import component_rng

if TYPE_CHECKING:
    from nnsim.sim.simulation import Simulation


def _collect(cls: type, attribute: str) -> dict[str, Any]:
    """Merge a declaration tuple over the class hierarchy, base classes first."""
    merged: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        for item in vars(klass).get(attribute, ()):
            merged[item.name] = item
    return merged


@dataclass(frozen=True)
class Wait:
    """What a primary component waits for when nothing is scheduled, and the setting that wakes it.

    ``why`` is a clause a sentence can carry ("controller is paused
    (pause_before_evaluation = true)"); ``setting`` is a state path and the value
    that lets the component go on (``("controller/pause_before_evaluation",
    "false")``), or None when no setting helps.
    """

    why: str
    setting: tuple[str, str] | None = None


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
        self.rng = component_rng(sim.seed, name)  # seed + full name (nnsim.sim.rng)
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

    def check_change(self, name: str, value: Any) -> None:
        """Refuse, with ValueError(reason), setting attribute ``name`` to ``value`` now.

        Tools that change a built element's state from outside — the console's
        ``set``, ``--set`` — ask first, so that a value the running state
        cannot honour (a step beyond the epoch) is refused rather than left to
        hang or break the run. ``name`` is an attribute, or ``attribute[index]``
        for one element of an array attribute (as typed: ``order[3]``). The
        default refuses any change to a parameter declared ``fixed``;
        subclasses add their own rules and call this too.
        """
        param = self.declared_params().get(name)
        if param is not None and param.fixed and value != getattr(self, name, value):
            raise ValueError(
                f"{name} is fixed once {self.name} is built (its state was shaped by it); "
                f"change it in the model and start a new run"
            )

    def restore(self) -> None:
        """Called after a restart from a checkpoint: re-create what was not saved.

        The saved attributes are back in place; rebuild caches and re-read
        transient data (datasets, say). Links and clocks are restored by the kernel.
        """

    def views(self) -> dict[str, Any]:
        """Named `nnsim.sim.view.StateView` objects the console shows next to the attributes.

        None by default. Views show state saved elsewhere in another shape
        (one neuron of a vectorized layer); they are never saved themselves.
        """
        return {}

    def print(self, line: str) -> None:
        """Write a line of the simulation's output."""
        self.sim.print(line)

    # Changes made from outside the simulation's own handlers.
    def assign(self, name: str, value: Any) -> None:
        """Set attribute ``name`` as a tool does (console ``set``, ``--set``, sweeps), then ``on_set``."""
        setattr(self, name, value)
        self.on_set(name)

    def set_param(self, name: str, value: Any) -> None:
        """Set declared parameter ``name`` to the typed ``value``, as a tool does (`assign`).

        The typed door for Python callers (a training config applied to a
        script's model): ``value`` is checked by its declaration as it is
        (`Param.check`: an int, a float, a bool, a str; no text is parsed),
        then the element has its say (`check_change`). ParamError names the
        parameter and the reason; nothing changes then.
        """
        param = self.declared_params().get(name)
        if param is None:
            hint = difflib.get_close_matches(name, list(self.declared_params()), n=1)
            suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
            raise ParamError(f"{self.describe()} has no parameter '{name}'{suggestion}")
        try:
            value = param.check(value)
            self.check_change(name, value)
        except ValueError as error:
            raise ParamError(f"parameter '{name}' of {self.describe()}: {error}") from None
        self.assign(name, value)

    def on_set(self, name: str) -> None:
        """Called after a tool changed attribute ``name`` of this element (see ``assign``).

        The default does nothing. A component whose clock is off while it waits
        on a flag wakes here, so waiting costs nothing and a ``set`` resumes it
        (the batch controller's ``pause_before_evaluation``). It may be called in
        any phase, also before the run starts.
        """


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
        for name, port in self.ports_for(vars(self)).items():
            self.links[name] = LinkEnd(self, name, sim._next_id(), port.handler)
        self.clocks: list[Clock] = []
        self.primary = False
        self.build()

    @classmethod
    def declared_ports(cls) -> dict[str, Port]:
        return _collect(cls, "ports")

    @classmethod
    def ports_for(cls, params: dict[str, Any]) -> dict[str, Port]:
        """Every port a component built with ``params`` has, by name (port arrays expanded)."""
        return {name: port for port in cls.declared_ports().values() for name in port.names(params)}

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
            self.sim.on_start(clock.wake)
        return clock

    # Primary components decide when the simulation may end (SST semantics).
    # The primary-component protocol and its names are SST's (registerAsPrimaryComponent,
    # primaryComponentDoNotEndSim, primaryComponentOKToEndSim): the run ends when every
    # primary component has said it is OK to end.
    def register_as_primary(self) -> None:
        """Take part in deciding when the run ends (SST's registerAsPrimaryComponent)."""
        if not self.primary:
            self.primary = True
            self.sim._primaries += 1

    def primary_component_do_not_end_sim(self) -> None:
        """Hold the run open until this component says it is OK to end."""
        self.sim._primary_blocks(self, True)

    def primary_component_ok_to_end_sim(self) -> None:
        """Let the run end once every primary component has said so."""
        self.sim._primary_blocks(self, False)

    # Hooks for tools that show the model: the console's watchpoints, the dot graph.
    graph_drawn: ClassVar[bool] = True
    """False: ``nnsim graph`` leaves this component out (it only holds state others compute)."""

    graph_state: ClassVar[tuple[str, ...]] = ()
    """Saved attributes that `graph_members` reads: ``nnsim graph CHECKPOINT`` restores
    just these (plain JSON values of the manifest, no tensors) to draw the clusters."""

    def graph_members(self) -> list[str]:
        """Names drawn inside this component's box as a cluster (a hardware node's vertices).

        Empty by default: a plain box.
        """
        return []

    def watched_at(self) -> tuple[str, ...]:
        """The components whose handlers change this component's state.

        A watchpoint on a variable of this component is checked at their
        handlers. By default the component itself; a component that only
        holds state which others compute (a dataflow layer, whose neurons run
        on hardware nodes) names them.
        """
        return (self.name,)

    def waiting_for(self) -> Wait:
        """Why this primary component still keeps the run going when nothing is scheduled.

        Asked only then (``Simulation.waiting``); components that wait on purpose
        (a pause flag) say what and which setting wakes them.
        """
        return Wait(f"{self.name} ({self.kind()}) has not said the run may end")
