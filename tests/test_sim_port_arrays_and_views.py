"""Kernel hooks any element library can use: port arrays, state views, where watches are checked, clusters."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from nnsim.checkpoint import open_storage
from nnsim.checkpoint.manager import enable
from nnsim.console import Console
from nnsim.sim import Component, Event, Param, Port, Simulation, StateView, register, unregister
from nnsim.sim.report import to_dot
from nnsim.state import restore


@dataclass(slots=True)
class Ping(Event):
    hops: int


class Hub(Component):
    """Sends a ping round its ``spokes`` port array; counts what comes back."""

    params = (Param("spokes", int, 2, "ports", min=0, fixed=True),)
    ports = (Port("spoke", "to one neighbour", handler="on_ping", count="spokes"),)

    def build(self) -> None:
        self.seen = 0
        self.values = np.arange(3, dtype=np.float64)

    def setup(self) -> None:
        if self.name == "a":
            self.links["spoke1"].send(Ping(5), 10)

    def on_ping(self, ping: Ping) -> None:
        self.seen += 1
        if ping.hops:
            self.links[f"spoke{ping.hops % self.spokes}"].send(Ping(ping.hops - 1), 10)

    def views(self) -> dict:
        return {"first": FirstValue(self)}

    def graph_members(self) -> list[str]:
        return ["x", "y"] if self.name == "a" else []


class FirstValue(StateView):
    kind = "first value"

    def __init__(self, hub: Hub):
        self.hub = hub

    def fields(self) -> dict:
        def write(value):
            self.hub.values[0] = value

        return {"value": (self.hub.values[0], write), "seen": (self.hub.seen, None)}


class Watcher(Component):
    """Holds no handlers: its state is what ``a`` counts (``watched_at``)."""

    graph_drawn = False

    def build(self) -> None:
        self.note = 0

    def watched_at(self) -> tuple[str, ...]:
        return ("a",)


@pytest.fixture
def types():
    register("test.Hub")(Hub)
    register("test.Watcher")(Watcher)
    yield
    unregister("test.Hub")
    unregister("test.Watcher")


def build(sim: Simulation) -> Simulation:
    sim.add("test.Hub", "a", spokes=2)
    sim.add("test.Hub", "b", spokes=2)
    sim.add("test.Watcher", "w")
    sim.connect("a.spoke0", "b.spoke0", latency=5)
    sim.connect("a.spoke1", "b.spoke1", latency=7)
    return sim


def test_a_port_array_makes_one_port_per_count_and_checkpoints(types, tmp_path):
    sim = build(Simulation())
    assert sorted(sim.components["a"].links) == ["spoke0", "spoke1"]
    straight = build(Simulation())
    straight.run()
    enable(sim, str(tmp_path / "ck"), announce=False)
    sim.run(until=30)
    name = sim.checkpoint()
    again = restore(*open_storage(str(tmp_path / "ck")).load(name))  # schema-checked
    again.run()
    assert again.now == straight.now
    assert [again.components[n].seen for n in "ab"] == [straight.components[n].seen for n in "ab"]


def test_views_are_shown_and_written_but_never_saved(types):
    sim = build(Simulation())
    console = Console(sim)
    console.execute("cd a")
    assert "first/ (first value)" in console.execute("ls")
    console.execute("cd /")
    assert console.execute("set a/first/value 2.5") == "value = 2.5"
    assert sim.components["a"].values[0] == 2.5
    assert "read-only" in console.execute("set a/first/seen 3")
    from nnsim.state import capture

    sim.start()
    body, _ = capture(sim)
    assert "first" not in body["components"]["a"]["state"]


def test_a_watch_on_a_component_without_handlers_is_checked_where_it_changes(types):
    sim = build(Simulation())
    console = Console(sim)
    console.execute("watch w/note changed")
    sim.start()
    sim.components["w"].note = 1  # changed before a's next handler runs
    assert sim.run() == "break"
    assert "w" not in sim.hooks.observed() and "a" in sim.hooks.observed()


def test_graph_clusters_and_hidden_components(types):
    dot = to_dot(build(Simulation()))
    assert 'subgraph "cluster_a"' in dot and '"a:x"' in dot
    assert '"b" [label=' in dot and '"w"' not in dot
    assert 'lhead="cluster_a"' in dot or 'ltail="cluster_a"' in dot
