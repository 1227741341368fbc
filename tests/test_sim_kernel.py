"""The kernel: links, clocks, event order, phases, stopping, pausing, reports, RNG streams."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from nnsim.errors import LinkError, ParamError
from nnsim.sim import Component, Event, Param, Port, Simulation, Slot, Statistic, SubComponent
from nnsim.sim.report import to_dot, write_statistics

NS = 1000  # ps


@dataclass(slots=True)
class Msg(Event):
    value: int = 0


class Recorder(Component):
    """Logs (time, what) for everything that reaches it; can echo and run a clock."""

    params = (
        Param("clock", str, "", "frequency of a clock that logs its ticks; '' for none"),
        Param("ticks", int, 0, "return True (clock off) after this many ticks; 0: never"),
        Param("echo", bool, False, "send every message back on the port it came from"),
    )
    ports = (
        Port("in1", "first input", handler="on_in1"),
        Port("in2", "second input", handler="on_in2"),
        Port("out", "send only"),
    )
    statistics = (Statistic("messages", "messages received"),)

    def build(self) -> None:
        self.log: list[tuple[int, str]] = []
        self.timer = self.register_clock(self.clock, "on_tick") if self.clock else None

    def on_in1(self, event: Msg) -> None:
        self._arrived("in1", event)

    def on_in2(self, event: Msg) -> None:
        self._arrived("in2", event)

    def _arrived(self, port: str, event: Msg) -> None:
        self.stats["messages"] += 1
        self.log.append((self.sim.now, f"{port}:{event.value}"))
        if self.echo:
            self.link(port).send(Msg(event.value + 1))
        if self.timer is not None:
            self.timer.wake()

    def on_tick(self, cycle: int) -> bool:
        self.log.append((self.sim.now, f"tick{cycle}"))
        return self.ticks > 0 and cycle >= self.ticks


class Sender(Component):
    """Sends `count` messages in setup, numbered from `first`, with `delay` extra each."""

    params = (
        Param("count", int, 1, "messages to send in setup"),
        Param("first", int, 0, "number of the first message"),
        Param("delay", int, 0, "extra delay in ps"),
    )
    ports = (Port("out", "messages out"), Port("back", "replies", handler="on_back"))

    def build(self) -> None:
        self.log: list[tuple[int, str]] = []

    def setup(self) -> None:
        for index in range(self.count):
            self.link("out").send(Msg(self.first + index), delay=self.delay)

    def on_back(self, event: Msg) -> None:
        self.log.append((self.sim.now, f"back:{event.value}"))


def test_delivery_time_is_send_time_plus_the_senders_latency_plus_delay() -> None:
    sim = Simulation()
    sim.add(Sender, "a", count=1, delay=5 * NS)
    receiver = sim.add(Recorder, "b")
    sim.connect(("a", "out", "2us"), ("b", "in1", "3us"))
    sim.run()
    assert receiver.log == [(2_005 * NS, "in1:0")]


def test_each_end_of_a_link_has_its_own_latency() -> None:
    sim = Simulation()
    left = sim.add(Recorder, "left", echo=True)
    right = sim.add(Recorder, "right", echo=True)
    sim.connect(("left", "in1", "2ns"), ("right", "in1", "3ns"))
    sim.start()
    left.link("in1").send(Msg(0), delay=1 * NS)
    sim.run(until="20ns")
    assert right.log[:2] == [(3 * NS, "in1:0"), (8 * NS, "in1:2")]
    assert left.log[:2] == [(6 * NS, "in1:1"), (11 * NS, "in1:3")]


def test_connect_latency_applies_to_both_ends_unless_an_end_gives_its_own() -> None:
    sim = Simulation()
    sim.add(Recorder, "a")
    sim.add(Recorder, "b")
    sim.add(Recorder, "c")
    sim.connect("a.out", "b.in1", latency="4ns")
    sim.connect(("b", "out", "7ns"), "c.in1", latency=9 * NS)
    assert sim.components["a"].link("out").latency == 4 * NS
    assert sim.components["b"].link("in1").latency == 4 * NS
    assert sim.components["b"].link("out").latency == 7 * NS
    assert sim.components["c"].link("in1").latency == 9 * NS


def test_default_link_latency_is_one_microsecond() -> None:
    sim = Simulation()
    sim.add(Sender, "a")
    receiver = sim.add(Recorder, "b")
    sim.connect("a.out", "b.in1")
    sim.run()
    assert receiver.log == [(1_000 * NS, "in1:0")]


def test_a_clock_ticks_at_period_boundaries_until_its_handler_returns_true() -> None:
    sim = Simulation()
    ticker = sim.add(Recorder, "t", clock="2.5GHz", ticks=3)
    assert sim.run() == "queue empty"
    assert ticker.log == [(400, "tick1"), (800, "tick2"), (1200, "tick3")]
    assert ticker.clocks[0].ticks == 3
    assert not ticker.clocks[0].active


def test_a_link_event_wakes_a_stopped_clock_at_the_next_boundary_after_now() -> None:
    sim = Simulation()
    sim.add(Sender, "s", count=1)
    ticker = sim.add(Recorder, "t", clock="1GHz", ticks=1)
    sim.connect("s.out", "t.in1", latency=2500)
    sim.run()
    # tick1 at 1 ns turns the clock off; the event at 2.5 ns wakes it for 3 ns.
    assert ticker.log == [(1 * NS, "tick1"), (2500, "in1:0"), (3 * NS, "tick2")]


def test_an_event_on_a_clock_boundary_gets_its_tick_one_period_later() -> None:
    sim = Simulation()
    sim.add(Sender, "s", count=1)
    ticker = sim.add(Recorder, "t", clock="1GHz", ticks=1)
    sim.connect("s.out", "t.in1", latency=3 * NS)
    sim.run()
    assert ticker.log == [(1 * NS, "tick1"), (3 * NS, "in1:0"), (4 * NS, "tick2")]


def test_waking_a_running_clock_does_not_add_ticks() -> None:
    sim = Simulation()
    ticker = sim.add(Recorder, "t", clock="1GHz", ticks=3)
    sim.start()
    for _ in range(5):
        ticker.timer.wake()
    sim.run()
    assert [entry for entry in ticker.log] == [(1000, "tick1"), (2000, "tick2"), (3000, "tick3")]


def test_clocks_run_before_link_events_at_the_same_time() -> None:
    sim = Simulation()
    sim.add(Sender, "s", count=1)
    ticker = sim.add(Recorder, "t", clock="1GHz", ticks=3)
    sim.connect("s.out", "t.in1", latency=2 * NS)
    sim.run()
    assert ticker.log[:3] == [(1 * NS, "tick1"), (2 * NS, "tick2"), (2 * NS, "in1:0")]


def _same_time_order(send_order: list[str]) -> list[str]:
    """Three senders created as a, b, c; they send in `send_order`, all arriving at 1 ns."""
    sim = Simulation()
    senders = {name: sim.add(Sender, name, count=0) for name in ("a", "b", "c")}
    hub = sim.add(Recorder, "hub")
    sim.add(Recorder, "hub2")
    sim.connect("a.out", "hub.in1", latency=NS)
    sim.connect("b.out", "hub.in2", latency=NS)
    sim.connect("c.out", "hub2.in1", latency=NS)
    sim.connect(("hub2", "out", 0), ("hub", "out", NS))  # unused, keeps every port wired
    sim.start()
    for number, name in enumerate(send_order):
        senders[name].link("out").send(Msg(number))
    sim.run()
    return [what for _, what in hub.log]


def test_events_at_the_same_time_arrive_by_sender_id_then_sequence_not_by_send_order() -> None:
    # b sends twice (messages 0 and 2), a once (message 1): a was created first.
    assert _same_time_order(["b", "a", "b"]) == ["in1:1", "in2:0", "in2:2"]
    assert _same_time_order(["a", "b", "b"]) == ["in1:0", "in2:1", "in2:2"]


class Talker(Component):
    """Sends untimed data in the first `talk` init rounds (and `talk` complete rounds)."""

    params = (Param("talk", int, 0, "rounds in which to send"),)
    ports = (Port("peer", "the other talker"),)

    def build(self) -> None:
        self.init_phases: list[int] = []
        self.complete_phases: list[int] = []
        self.heard: list[tuple[str, int, object]] = []
        self.setups = 0
        self.finishes = 0

    def _round(self, kind: str, phase: int, phases: list[int]) -> None:
        phases.append(phase)
        while (data := self.link("peer").recv_untimed()) is not None:
            self.heard.append((kind, phase, data))
        if phase < self.talk:
            self.link("peer").send_untimed(f"{self.name}{phase}")

    def init(self, phase: int) -> None:
        self._round("init", phase, self.init_phases)

    def complete(self, phase: int) -> None:
        self._round("complete", phase, self.complete_phases)

    def setup(self) -> None:
        self.setups += 1

    def finish(self) -> None:
        self.finishes += 1


def test_init_and_complete_rounds_continue_while_data_is_sent_and_stop_when_quiet() -> None:
    sim = Simulation()
    chatty = sim.add(Talker, "chatty", talk=3)
    quiet = sim.add(Talker, "quiet", talk=0)
    sim.connect("chatty.peer", "quiet.peer")
    sim.run()
    # Rounds 0-2 send; round 3 receives the last data and is quiet, so it is the last.
    assert chatty.init_phases == quiet.init_phases == [0, 1, 2, 3]
    assert chatty.complete_phases == quiet.complete_phases == [0, 1, 2, 3]
    assert quiet.heard == [
        ("init", 1, "chatty0"),
        ("init", 2, "chatty1"),
        ("init", 3, "chatty2"),
        ("complete", 1, "chatty0"),
        ("complete", 2, "chatty1"),
        ("complete", 3, "chatty2"),
    ]
    assert chatty.heard == []


def test_a_quiet_model_has_exactly_one_init_round() -> None:
    sim = Simulation()
    one = sim.add(Talker, "one")
    sim.run()
    assert one.init_phases == [0]
    assert one.complete_phases == [0]


class Part(SubComponent):
    def build(self) -> None:
        self.setups = 0
        self.finishes = 0

    def setup(self) -> None:
        self.setups += 1

    def finish(self) -> None:
        self.finishes += 1


class Holder(Talker):
    slots = (Slot("part", "a part with its own hooks", default=None),)


def test_setup_and_finish_are_called_once_on_components_and_subcomponents() -> None:
    sim = Simulation()
    holder = sim.add(Holder, "holder")
    part = holder.set_subcomponent("part", Part)
    assert sim.run() == "queue empty"
    assert sim.run() == "queue empty"  # a finished simulation stays finished
    sim.shutdown()
    assert (holder.setups, holder.finishes) == (1, 1)
    assert (part.setups, part.finishes) == (1, 1)
    assert sim.finished


class Primary(Component):
    """A primary component that says it is done after `done_after` ticks."""

    params = (Param("done_after", int, 1, "ticks until it is OK to end"),)

    def build(self) -> None:
        self.register_as_primary()
        self.primary_component_do_not_end_sim()
        self.register_clock("1GHz", "on_tick")

    def on_tick(self, cycle: int) -> bool:
        if cycle == self.done_after:
            self.primary_component_ok_to_end_sim()
        return False  # keeps ticking: only the primaries can end this run


def test_the_run_ends_when_all_primaries_say_ok_and_not_before() -> None:
    sim = Simulation()
    early = sim.add(Primary, "early", done_after=3)
    late = sim.add(Primary, "late", done_after=5)
    assert sim.run() == "primaries done"
    assert sim.now == 5 * NS
    assert early.clocks[0].ticks == 5
    assert late.clocks[0].ticks == 5
    assert sim.stop_reason == "primaries done"
    assert sim.finished


def test_the_run_ends_when_the_queue_is_empty() -> None:
    sim = Simulation()
    sim.add(Sender, "s", count=2)
    sim.add(Recorder, "r")
    sim.connect("s.out", "r.in1", latency="3ns")
    assert sim.run() == "queue empty"
    assert sim.now == 3 * NS
    assert sim.pending_events == 0


def test_stop_at_ends_the_run_at_that_time_and_nothing_later_runs() -> None:
    sim = Simulation(stop_at="10ns")
    ticker = sim.add(Recorder, "t", clock="1GHz")
    assert sim.run() == "stop-at"
    assert sim.now == 10 * NS
    assert max(time for time, _ in ticker.log) <= 10 * NS
    assert sim.finished


def test_pausing_at_the_stop_time_ends_the_run() -> None:
    sim = Simulation(stop_at="10ns")
    sim.add(Recorder, "t", clock="1GHz")
    assert sim.run(until="10ns") == "stop-at"
    assert sim.now == 10 * NS


class Hopper(Component):
    """A ring member: forwards each token left or right after a random delay."""

    ports = (
        Port("left", "to the left neighbour", handler="on_token"),
        Port("right", "to the right neighbour", handler="on_token"),
    )
    statistics = (Statistic("hops", "tokens forwarded"),)

    def build(self) -> None:
        self.timer = self.register_clock("1GHz", "on_tick")
        self.draws: list[float] = []

    def setup(self) -> None:
        self.on_token(Msg(0))

    def on_token(self, event: Msg) -> None:
        self.stats["hops"] += 1
        draw = float(self.rng.random())
        self.draws.append(draw)
        port = "left" if draw < 0.5 else "right"
        self.link(port).send(Msg(event.value + 1), delay=int(draw * 3000))
        self.timer.wake()

    def on_tick(self, cycle: int) -> bool:
        return cycle % 3 == 0


def _ring(seed: int = 7, size: int = 4) -> Simulation:
    sim = Simulation(seed, stop_at="200ns")
    for index in range(size):
        sim.add(Hopper, f"h{index}")
    for index in range(size):
        sim.connect(f"h{index}.right", f"h{(index + 1) % size}.left", latency="1ns")
    return sim


def _snapshot(sim: Simulation) -> dict:
    state = {"now": sim.now, "reason": sim.stop_reason}
    for name, component in sim.components.items():
        state[name] = (
            [(end.sent, end.received) for end in component.links.values()],
            [clock.ticks for clock in component.clocks],
            dict(component.stats),
            component.draws,
            component.rng.bit_generator.state,
        )
    return state


def test_a_paused_run_continues_to_the_same_final_state_as_an_uninterrupted_one() -> None:
    straight = _ring()
    assert straight.run() == "stop-at"
    paused = _ring()
    assert paused.run(until="33ns") == "paused"
    assert paused.now == 33 * NS
    assert not paused.finished
    assert paused.run(until="33ns") == "paused"  # pausing again at the same time is harmless
    assert paused.run(until="120.5ns") == "paused"
    assert paused.run() == "stop-at"
    assert _snapshot(paused) == _snapshot(straight)
    assert straight.components["h0"].stats["hops"] > 10


def test_pausing_after_the_last_event_advances_now_and_the_next_run_ends_at_once() -> None:
    sim = Simulation()
    sim.add(Sender, "s")
    receiver = sim.add(Recorder, "r")
    sim.connect("s.out", "r.in1", latency="1ns")
    assert sim.run(until="1ms") == "paused"  # like SimPy's run(until=...): now becomes 1 ms
    assert sim.now == 1_000_000 * NS
    assert receiver.log == [(1 * NS, "in1:0")]
    assert sim.run() == "queue empty"
    assert sim.finished


def test_a_pending_pause_is_dropped_when_the_run_ends_first() -> None:
    sim = Simulation(stop_at="5ns")
    sim.add(Recorder, "t", clock="1GHz")
    assert sim.run(until="1ms") == "stop-at"
    assert sim.now == 5 * NS
    assert all(entry[0] < 1_000_000 * NS for entry in sim._queue.entries())


def test_sending_on_an_unconnected_port_names_the_component_and_port() -> None:
    sim = Simulation()
    sim.add(Sender, "lonely")
    with pytest.raises(LinkError, match=r"lonely .*port 'out'.* not connected"):
        sim.run()


def test_sending_untimed_data_on_an_unconnected_port_names_it() -> None:
    sim = Simulation()
    sim.add(Talker, "mute", talk=1)
    with pytest.raises(LinkError, match="mute .*'peer'"):
        sim.run()


def test_an_event_on_a_send_only_port_names_the_component_and_port() -> None:
    sim = Simulation()
    sim.add(Sender, "a")
    sim.add(Sender, "b", count=0)
    sim.connect("a.out", "b.out")
    with pytest.raises(LinkError, match=r"b received Msg on port 'out'"):
        sim.run()


def test_connecting_a_port_that_does_not_exist_names_it_and_lists_the_ports() -> None:
    sim = Simulation()
    sim.add(Sender, "a")
    sim.add(Recorder, "b")
    with pytest.raises(LinkError, match=r"b .*has no port 'input'; its ports are in1, in2, out"):
        sim.connect("a.out", "b.input")
    with pytest.raises(LinkError, match="no component named 'c'"):
        sim.connect("a.out", "c.in1")


def test_connecting_a_port_twice_is_refused() -> None:
    sim = Simulation()
    sim.add(Sender, "a")
    sim.add(Recorder, "b")
    sim.add(Recorder, "c")
    sim.connect("a.out", "b.in1")
    with pytest.raises(LinkError, match=r"a\.out is already connected to b\.in1"):
        sim.connect("a.out", "c.in1")
    with pytest.raises(LinkError, match=r"b\.in1 is already connected"):
        sim.connect("c.out", "b.in1")
    with pytest.raises(LinkError, match="to itself"):
        sim.connect("c.in2", "c.in2")


def test_the_model_cannot_change_once_started() -> None:
    sim = Simulation()
    sim.add(Recorder, "a")
    sim.add(Recorder, "b")
    sim.run()
    with pytest.raises(ParamError, match="has started"):
        sim.add(Recorder, "c")
    with pytest.raises(LinkError, match="has started"):
        sim.connect("a.out", "b.in1")


def _counted_run() -> Simulation:
    sim = Simulation()
    sim.add(Sender, "s", count=3)
    sim.add(Recorder, "r", clock="1GHz", ticks=2)
    sim.connect("s.out", "r.in1", latency="10ns")
    sim.run()
    return sim


def test_statistics_are_written_as_csv(tmp_path: Path) -> None:
    sim = _counted_run()
    path = tmp_path / "stats.csv"
    write_statistics(sim, path)
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["component", "statistic", "value"]
    values = {(element, stat): value for element, stat, value in rows[1:]}
    assert values[("s", "out.events_sent")] == "3"
    assert values[("r", "in1.events_received")] == "3"
    assert values[("r", "in2.events_received")] == "0"
    # Two ticks, then off; the messages at 10 ns wake it for one more (cycle 3 >= 2).
    assert values[("r", "clock0.busy_ticks")] == "3"
    assert values[("r", "messages")] == "3"


def test_statistics_are_written_as_json(tmp_path: Path) -> None:
    sim = _counted_run()
    path = tmp_path / "stats.json"
    write_statistics(sim, path)
    document = json.loads(path.read_text())
    assert document["simulated_time_ps"] == sim.now
    assert document["statistics"]["s"]["out.events_sent"] == 3
    assert document["statistics"]["r"]["in1.events_received"] == 3
    assert document["statistics"]["r"]["clock0.busy_ticks"] == 3
    assert document["statistics"]["r"]["messages"] == 3


def test_dot_output_names_every_component_and_link() -> None:
    sim = _ring(size=5)
    dot = to_dot(sim)
    assert dot.startswith("digraph")
    for name in sim.components:
        assert f'"{name}" [label="{name}\\n' in dot
    for index in range(5):
        assert f'"h{index}" -> "h{(index + 1) % 5}" [label="right -> left' in dot
    assert dot.count(" -> ") - dot.count("right -> left") == len(sim.link_list)


def _draws(seed: int, names: list[str], which: str) -> np.ndarray:
    sim = Simulation(seed)
    for name in names:
        sim.add(Recorder, name)
    return sim.components[which].rng.random(8)


def test_the_same_seed_gives_the_same_component_random_streams() -> None:
    np.testing.assert_array_equal(_draws(5, ["a", "b"], "a"), _draws(5, ["a", "b"], "a"))
    np.testing.assert_array_equal(_draws(5, ["a", "b"], "b"), _draws(5, ["a", "b"], "b"))


def test_different_seeds_or_names_give_different_streams() -> None:
    assert not np.array_equal(_draws(5, ["a", "b"], "a"), _draws(6, ["a", "b"], "a"))
    assert not np.array_equal(_draws(5, ["a", "b"], "a"), _draws(5, ["a", "b"], "b"))


def test_a_component_stream_depends_only_on_seed_and_name_not_on_creation_order() -> None:
    alone = _draws(11, ["a"], "a")
    np.testing.assert_array_equal(_draws(11, ["z", "b", "a"], "a"), alone)
    np.testing.assert_array_equal(_draws(11, ["a", "y"], "a"), alone)


def test_subcomponents_have_their_own_stream() -> None:
    sim = Simulation(3)
    holder = sim.add(Holder, "holder")
    part = holder.set_subcomponent("part", Part)
    assert not np.array_equal(holder.rng.random(4), part.rng.random(4))


def test_a_negative_seed_is_a_parameter_error() -> None:
    with pytest.raises(ParamError, match="seed -1 is negative"):
        Simulation(seed=-1)
