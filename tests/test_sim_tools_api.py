"""A tool written by a user, through the kernel's public API alone: schedule, break, hook, state.

Nothing here touches a ``_``-prefixed name of ``nnsim.sim``: that is the
point. The probe pauses a run at a simulated time, counts handler calls with
a hook, and schedules actions of its own next to the kernel's run control.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from nnsim.errors import NnsimError, ParamError
from nnsim.sim import (
    ACTION_PRIORITY,
    Component,
    Event,
    HandlerHook,
    Param,
    Port,
    Simulation,
)

NS = 1000


@dataclass(slots=True)
class Ball(Event):
    hits: int = 0


class Player(Component):
    """Returns the ball until ``rounds`` hits; ticks its clock once per hit received."""

    params = (Param("serve", bool, False, "send the first ball in setup"),)
    ports = (Port("net", "the ball comes and goes here", handler="on_ball"),)

    def build(self) -> None:
        self.clock_handle = self.register_clock("1GHz", "on_tick")
        self.received = 0

    def setup(self) -> None:
        if self.serve:
            self.link("net").send(Ball(0))

    def on_ball(self, ball: Ball) -> None:
        self.received += 1
        self.clock_handle.wake()
        if ball.hits < 40:
            self.link("net").send(Ball(ball.hits + 1))

    def on_tick(self, cycle: int) -> bool:
        return True  # one tick per ball, then off


def build() -> Simulation:
    sim = Simulation(seed=1)
    sim.add(Player, "left", serve=True)
    sim.add(Player, "right")
    sim.connect(("left", "net"), ("right", "net"), "10ns")
    return sim


class Probe(HandlerHook):
    """Counts what a component's handlers did, and when."""

    def __init__(self):
        self.calls: list[tuple[str, str, int]] = []

    def before_event(self, component, port, event):
        self.calls.append(("event", f"{component.name}.{port}", event.hits))

    def after_clock(self, component, clock, cycle):
        self.calls.append(("tick", component.name, clock))


def test_a_probe_sees_every_handler_of_the_component_it_hooks_and_nothing_after_removal():
    sim = build()
    probe = Probe()
    right = sim.components["right"]
    sim.hooks.add(right, probe)
    assert sim.run(until="200ns") == "paused"
    events = [call for call in probe.calls if call[0] == "event"]
    assert events and all(where == "right.net" for _, where, _ in events)
    assert [hits for *_, hits in events] == list(range(0, 2 * len(events), 2))
    assert len(events) == right.received
    assert ("tick", "right", 0) in probe.calls
    assert not any(where.startswith("left") for _, where, _ in probe.calls)
    seen = len(probe.calls)
    sim.hooks.remove(right, probe)
    assert sim.hooks.observed() == []
    sim.run()
    assert len(probe.calls) == seen  # unhooked: the plain kernel again
    assert right.received == 21  # hits 0, 2, ... 40


def test_a_hooked_run_ends_exactly_like_an_unhooked_one():
    plain, hooked = build(), build()
    hooked.hooks.add(hooked.components["left"], Probe())
    hooked.hooks.add(hooked.components["right"], Probe())
    plain.run()
    hooked.run()
    assert (plain.now, plain.delivered) == (hooked.now, hooked.delivered)


def test_a_break_at_a_time_pauses_there_and_the_run_continues():
    sim = build()
    sim.start()
    sim.request_break(at="95ns")
    assert sim.run() == "break"
    assert sim.now == 95 * NS  # before the first event at or after 95 ns
    assert sim.components["right"].received == 5
    assert sim.run() == "queue empty"
    assert sim.components["left"].received == 20


def test_a_cancelled_break_does_not_stop_the_run():
    sim = build()
    sim.start()
    entry = sim.request_break(at="95ns")
    sim.cancel(entry)
    assert sim.run() == "queue empty"


def test_scheduled_actions_run_after_the_events_of_their_time_in_the_order_scheduled():
    sim = build()
    sim.start()
    seen = []
    for label in ("first", "second", "third"):  # three tools at one time: keys never tie
        sim.schedule(
            lambda label=label: seen.append((label, sim.now, sim.components["right"].received)),
            at="10ns",
        )
    sim.schedule(lambda: seen.append(("later", sim.now, 0)), delay=50 * NS)
    sim.run()
    assert seen[:3] == [("first", 10 * NS, 1), ("second", 10 * NS, 1), ("third", 10 * NS, 1)]
    assert seen[3][:2] == ("later", 50 * NS)


def test_an_action_can_stop_the_run_with_its_own_reason():
    sim = build()
    sim.schedule(lambda: sim.request_stop("probe says stop"), at="35ns")
    assert sim.run() == "probe says stop"
    assert sim.finished and sim.now == 35 * NS


def test_scheduling_in_the_past_or_with_a_bad_time_is_one_clear_error():
    sim = build()
    sim.start()
    sim.run(until="100ns")
    with pytest.raises(ParamError, match="before now"):
        sim.schedule(lambda: None, at="50ns")
    with pytest.raises(NnsimError, match="cannot read 'soon' as a time"):
        sim.schedule(lambda: None, at="soon")
    assert ACTION_PRIORITY > 0


def test_kernel_state_and_pending_entries_rebuild_the_same_run():
    straight = build()
    straight.run()
    first = build()
    first.run(until="155ns")
    state, pending = first.kernel_state(), first.pending()
    assert {entry.kind for entry in pending} <= {"link", "clock"}
    second = build()
    # Components' own state (``received``) is the state walk's business; here, the kernel's.
    for name in ("left", "right"):
        second.components[name].received = first.components[name].received
    second.restore_kernel_state(state)
    ends = {e.path: e for c in second.components.values() for e in c.links.values()}
    for entry in pending:
        if entry.kind == "link":
            second.requeue(
                type(entry)(
                    entry.time,
                    entry.priority,
                    entry.seq,
                    "link",
                    end=ends[entry.end.path],
                    payload=entry.payload,
                )
            )
    assert second.run() == "queue empty"
    assert second.components["left"].received == straight.components["left"].received
    assert second.now == straight.now
