"""Watchpoints and traces, checked only where they can change.

A watchpoint is checked at the handlers of the top-level component that
holds its variables — before/after its clock handlers (``bc``/``ac``) and
before/after its event handlers (``be``/``ae``). Checking is installed by
wrapping exactly those handlers when the first watchpoint on a component is
created and unwrapped when the last one goes, so a simulation with no
watchpoints runs the unwrapped kernel: they cost nothing at all.

A trace keeps a circular buffer of samples of its variables, taken at every
check. When its trigger holds it takes ``postdelay`` more samples, then runs
its action. Samples are tagged ``-`` before the trigger, ``!`` the trigger
sample, ``+`` after it, and ``o`` for samples after the trigger that
overwrote it (the buffer was smaller than the post delay: an overrun).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nnsim.console.triggers import Trigger, Variable
from nnsim.sim.hooks import HandlerHook

if TYPE_CHECKING:
    from nnsim.sim import Component, Simulation

HANDLER_POINTS = ("bc", "ac", "be", "ae")
POINT_LABELS = {"bc": "BC", "ac": "AC", "be": "BE", "ae": "AE"}


@dataclass(eq=False)
class Sample:
    point: str
    time: int
    tag: str
    values: list[Any]


@dataclass
class TraceBuffer:
    """The samples of a trace; ``post_delay`` more are taken once the trigger holds."""

    size: int
    post_delay: int
    variables: list[Variable]
    samples: deque = field(default_factory=deque)
    triggered_at: Sample | None = None
    remaining: int = 0  # post samples still to take
    fired: bool = False  # the action ran; the buffer resets at the next sample
    keep_after_fire: bool = False  # the console is being entered: keep it for printTrace
    overrun: bool = False
    # The trigger and samples of the last firing, kept for printTrace once it re-arms.
    last_capture: tuple[Sample, list[Sample]] | None = None

    def sample(self, point: str, time: int, trigger_holds: bool) -> bool:
        """Take a sample; return True when the action should run now."""
        if self.fired:
            if self.keep_after_fire:
                return False
            capture = (self.triggered_at, list(self.samples))
            self.reset()
            self.last_capture = capture
        values = [variable.read() for variable in self.variables]
        if self.triggered_at is None:
            if trigger_holds:
                self.triggered_at = Sample(point, time, "!", values)
                self._append(self.triggered_at)
                self.remaining = self.post_delay
                return self._done()
            self._append(Sample(point, time, "-", values))
            return False
        if len(self.samples) == self.size and self.samples[0] is self.triggered_at:
            self.overrun = True  # this sample pushes the trigger sample out
        self._append(Sample(point, time, "o" if self.overrun else "+", values))
        self.remaining -= 1
        return self._done()

    def _append(self, sample: Sample) -> None:
        if len(self.samples) == self.size:
            self.samples.popleft()
        self.samples.append(sample)

    def _done(self) -> bool:
        if self.remaining <= 0:
            self.fired = True
            return True
        return False

    def reset(self) -> None:
        self.samples.clear()
        self.triggered_at = None
        self.remaining = 0
        self.fired = False
        self.keep_after_fire = False
        self.overrun = False
        self.last_capture = None

    def lines(self) -> list[str]:
        """The trigger record and the samples, oldest first.

        After the action has run and the trace has re-armed (any action but
        ``interactive``), this is the capture of that last firing, so that
        printTrace shows what the trigger saw rather than "not yet".
        """
        names = [variable.path for variable in self.variables]
        trigger, samples, note = self.triggered_at, list(self.samples), ""
        if trigger is None and self.last_capture is not None:
            trigger, samples = self.last_capture
            note = f" (fired; re-armed since, {len(self.samples)} new samples)"
        if trigger is not None:
            out = [
                f"trigger: {POINT_LABELS[trigger.point]} @{trigger.time} "
                + _pairs(names, trigger.values)
                + note
            ]
        else:
            out = ["trigger: not yet"]
        for index, sample in enumerate(samples):
            out.append(
                f"buf[{index}] {POINT_LABELS[sample.point]} @{sample.time} ({sample.tag}) "
                + _pairs(names, sample.values)
            )
        return out


def _pairs(names: list[str], values: list[Any]) -> str:
    from nnsim.console.objectmap import show_scalar

    return " ".join(
        f"{name}={show_scalar(value)}" for name, value in zip(names, values, strict=True)
    )


@dataclass(eq=False)
class WatchPoint:
    """A trigger, an action, the handler points it is checked at, maybe a trace."""

    index: int
    trigger: Trigger
    action: str  # the action's text: interactive, printTrace, checkpoint, set VAR VALUE, ...
    run_action: Callable[[WatchPoint], None]
    points: set[str] = field(default_factory=lambda: set(HANDLER_POINTS))
    trace: TraceBuffer | None = None

    @property
    def components(self) -> set[str]:
        found = {variable.component for variable in self.trigger.variables()}
        if self.trace is not None:
            found.update(variable.component for variable in self.trace.variables)
        return found

    def check(
        self,
        point: str,
        time: int,
        report: Callable[[WatchPoint, str, int, bool], None] | None = None,
    ) -> None:
        if point not in self.points:
            return
        holds = self.trigger.holds()
        if report is not None:
            report(self, point, time, holds)
        if self.trace is None:
            if holds:
                self.run_action(self)
            return
        if self.trace.sample(point, time, holds):
            self.run_action(self)

    def describe(self) -> str:
        handlers = " ".join(POINT_LABELS[p] for p in HANDLER_POINTS if p in self.points)
        if self.trace is None:
            return f"{self.index}: {handlers} : {self.trigger.describe()} : {self.action}"
        variables = " ".join(variable.path for variable in self.trace.variables)
        return (
            f"{self.index}: {handlers} : {self.trigger.describe()} : bufsize = {self.trace.size} "
            f"postDelay = {self.trace.post_delay} : {variables} : {self.action}"
        )


class Hooks(HandlerHook):
    """Checks the watchpoints at the handlers of the components they watch.

    A kernel handler hook (`nnsim.sim.hooks`) on exactly those components:
    the others, and a run without watchpoints, run the plain kernel.
    """

    def __init__(self, sim: Simulation, watchpoints: Callable[[], list[WatchPoint]]):
        self.sim = sim
        self.watchpoints = watchpoints
        self.report: Callable[[WatchPoint, str, int, bool], None] | None = None  # `verbose`
        self._installed: set[str] = set()

    def _handlers_of(self, components: set[str]) -> set[str]:
        """Where the state of ``components`` changes (`Component.watched_at`)."""
        found: set[str] = set()
        for name in components:
            found.update(self.sim.components[name].watched_at())
        return found

    def update(self) -> None:
        """Hook the components that have watchpoints; unhook the others."""
        wanted = set()
        for watchpoint in self.watchpoints():
            wanted |= self._handlers_of(watchpoint.components)
        for name in self._installed - wanted:
            self.sim.hooks.remove(self.sim.components[name], self)
        for name in wanted - self._installed:
            self.sim.hooks.add(self.sim.components[name], self)
        self._installed = wanted

    def _check(self, component: str, point: str) -> None:
        time = self.sim.now
        for watchpoint in list(self.watchpoints()):
            if component in self._handlers_of(watchpoint.components):
                watchpoint.check(point, time, self.report)

    def before_clock(self, component: Component, clock: int, cycle: int) -> None:
        self._check(component.name, "bc")

    def after_clock(self, component: Component, clock: int, cycle: int) -> None:
        self._check(component.name, "ac")

    def before_event(self, component: Component, port: str, event: Any) -> None:
        self._check(component.name, "be")

    def after_event(self, component: Component, port: str, event: Any) -> None:
        self._check(component.name, "ae")

    def remove_all(self) -> None:
        for name in self._installed:
            self.sim.hooks.remove(self.sim.components[name], self)
        self._installed = set()
