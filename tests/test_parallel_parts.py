"""The pieces of parallel runs that need no MPI: partitioners, the kernel's doors, the wire format."""

from __future__ import annotations

import numpy as np
import pytest

from nnsim.errors import LinkError, ParamError, StateError
from nnsim.parallel import make_partition, partitioners, register_partitioner
from nnsim.parallel.partition import check_partition
from nnsim.parallel.wire import pack, pack_events, unpack, unpack_events
from nnsim.sim import Component, Port, Simulation
from nnsim.state import Decoder, Encoder


class Relay(Component):
    """Sends what it gets on ``a`` out of ``b`` and the other way; records what it got."""

    type_name = "test.Relay"
    ports = (Port("a", "one side", handler="on_a"), Port("b", "other side", handler="on_b"))

    def build(self) -> None:
        self.got: list = []

    def on_a(self, event) -> None:
        self.got.append(("a", self.sim.now, event))

    def on_b(self, event) -> None:
        self.got.append(("b", self.sim.now, event))


class Sink(Component):
    """Receives on ``a``; ``b`` only sends (no handler)."""

    type_name = "test.Sink"
    ports = (Port("a", "where events arrive", handler="on_a"), Port("b", "send only"))

    def on_a(self, event) -> None:
        pass


def chain(count: int = 6, latency: str = "1ns") -> Simulation:
    sim = Simulation(seed=1)
    for index in range(count):
        sim.add(Relay, f"r{index}")
    for index in range(count - 1):
        sim.connect(f"r{index}.b", f"r{index + 1}.a", latency=latency)
    return sim


def test_nnsims_four_partitioners_are_registered_by_name():
    assert {"linear", "roundrobin", "self", "graph"} <= set(partitioners())


def test_linear_keeps_build_order_contiguous_and_roundrobin_deals():
    sim = chain(6)
    assert list(make_partition(sim, 3, "linear").assignment.values()) == [0, 0, 1, 1, 2, 2]
    assert list(make_partition(sim, 3, "roundrobin").assignment.values()) == [0, 1, 2, 0, 1, 2]


def test_linear_balances_weights():
    sim = chain(4)
    sim.place("r0", weight=3.0)
    assert list(make_partition(sim, 2, "linear").assignment.values()) == [0, 1, 1, 1]


def test_a_group_stays_on_one_rank_with_every_partitioner_but_self():
    sim = chain(6)
    for name in ("r0", "r3", "r5"):
        sim.place(name, group="node0")
    for name in ("linear", "roundrobin", "graph"):
        assignment = make_partition(sim, 2, name).assignment
        assert len({assignment[n] for n in ("r0", "r3", "r5")}) == 1, name


def test_graph_balances_and_cuts_few_links():
    sim = chain(8)
    partition = make_partition(sim, 2, "graph")
    ranks = list(partition.assignment.values())
    assert ranks.count(0) == ranks.count(1) == 4
    assert len(partition.cut) == 1  # a chain cut once


def test_self_takes_the_script_s_ranks_and_names_what_has_none():
    sim = chain(3)
    sim.place("r0", rank=1)
    sim.place("r1", rank=0)
    with pytest.raises(ParamError, match="r2 have no rank; give each component one"):
        make_partition(sim, 2, "self")
    sim.place("r2", rank=1)
    assert make_partition(sim, 2, "self").assignment == {"r0": 1, "r1": 0, "r2": 1}


def test_the_partition_names_cut_links_and_their_lookahead():
    sim = chain(4, latency="1ns")
    sim.connect("r0.a", "r3.b", latency="250ps")
    partition = make_partition(sim, 2, "linear")
    assert sorted(cut.link.name for cut in partition.cut) == ["r0.a--r3.b", "r1.b--r2.a"]
    assert partition.lookahead == 250
    assert partition.to_json()["lookahead_ps"] == 250


def test_rank_distances_take_the_shortest_path_round_trips_included():
    """``distances()[s][r]``: how soon an event from rank s can reach rank r over any path."""
    sim = chain(4, latency="1ns")
    sim.connect("r0.a", "r3.b", latency="5ns")  # rank 0 to rank 2 directly, but slower
    assignment = {"r0": 0, "r1": 1, "r2": 2, "r3": 2}
    distances = check_partition(sim, 4, "test", assignment).distances()
    never = 2**63 - 1  # rank 3 runs nothing: nothing reaches it, nothing leaves it
    assert distances == [
        [2000, 1000, 2000, never],  # 0 -> 2 through rank 1 (2 ns), not the 5 ns link
        [1000, 2000, 1000, never],
        [2000, 1000, 2000, never],  # a rank's own entry: the shortest round trip
        [never, never, never, never],
    ]


def test_a_one_way_link_gives_a_distance_one_way_only():
    sim = Simulation(seed=1)
    sim.add(Relay, "r0")
    sim.add(Sink, "r1")
    sim.connect("r0.b", "r1.b", latency="3ns")  # r1.b has no handler: what r0 sends is lost
    distances = check_partition(sim, 2, "test", {"r0": 0, "r1": 1}).distances()
    never = 2**63 - 1
    assert distances == [[never, never], [3000, never]]


def test_a_zero_latency_link_between_ranks_is_refused_at_partition_time():
    sim = chain(4)
    sim.connect("r0.a", "r3.b", latency=0)
    with pytest.raises(ParamError, match="link 'r0.a--r3.b' crosses from rank 0 to rank 1"):
        make_partition(sim, 2, "linear")
    assert make_partition(sim, 1, "linear").lookahead  # one rank: nothing crosses


def test_a_registered_partitioner_is_used_by_name_and_checked():
    @register_partitioner("test-backwards")
    def backwards(sim, ranks):
        return {name: ranks - 1 - index % ranks for index, name in enumerate(sim.components)}

    assert list(make_partition(chain(4), 2, "test-backwards").assignment.values()) == [1, 0, 1, 0]
    register_partitioner("test-bad", lambda sim, ranks: dict.fromkeys(sim.components, ranks))
    with pytest.raises(ParamError, match="put 'r0' on rank 2, but the run has 2 rank"):
        make_partition(chain(2), 2, "test-bad")
    with pytest.raises(ParamError, match="unknown partitioner 'nope'"):
        make_partition(chain(2), 2, "nope")


def test_place_refuses_bad_hints_in_one_line():
    sim = chain(2)
    with pytest.raises(LinkError, match="no component named 'x'"):
        sim.place("x", rank=0)
    for hint, match in (
        ({"rank": -1}, "rank of 'r0'"),
        ({"rank": 1.0}, "rank of 'r0'"),
        ({"weight": 0}, "weight of 'r0'"),
        ({"weight": float("nan")}, "weight of 'r0'"),
        ({"group": ""}, "group of 'r0'"),
    ):
        with pytest.raises(ParamError, match=match):
            sim.place("r0", **hint)


def test_a_localized_simulation_delivers_only_its_components_and_sends_others_to_the_outbox():
    sim = chain(3)
    sim.start()
    for name in ("r0", "r2"):
        sim.components[name].links["a" if name == "r2" else "b"].send(f"to {name}'s peer")
    outbox: list = []
    sim.components["r0"].links["b"].send_to_outbox(outbox)  # r1 lives elsewhere
    sim.localize(["r0"])
    assert sim.next_key() is None  # the queued event was for r1, run elsewhere
    sim.components["r0"].links["b"].send("later", 5)
    assert outbox == [(1005, 50, sim.components["r0"].links["b"].id, 2, "later")]
    assert sim.components["r0"].links["b"].sent == 2


def test_run_window_stops_below_a_time_and_current_key_names_the_event():
    sim = chain(2)
    sim.start()
    relay = sim.components["r1"]
    end = sim.components["r0"].links["b"]
    for delay in (0, 10, 20):
        end.send(delay, delay)
    assert sim.run_window(1010) is None
    assert [got[2] for got in relay.got] == [0]
    assert sim.next_key() == (1010, 50, end.id, 2)
    assert sim.run_window(1010, 51) is None  # the priority bound includes the time's events
    assert sim.current_key == (1010, 50, end.id, 2)
    assert [got[2] for got in relay.got] == [0, 10]


def test_messages_between_ranks_round_trip_events_with_tensors_and_refuse_garbage():
    encoder = Encoder()
    tree = {"events": [encoder.encode((np.arange(6, dtype=np.float32).reshape(2, 3), 7), "e")]}
    data = pack(tree, encoder.tensors)
    back, tensors = unpack(data)
    array, number = Decoder(tensors, {}).decode(back["events"][0], "e")
    assert array.dtype == np.float32 and array.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert number == 7
    for broken in (data[:5], data[:-4], b"\xff" * 16):
        with pytest.raises(StateError, match="message between ranks"):
            unpack(broken)


def test_a_gathered_state_replaces_one_of_another_kind():
    """What rank 0 holds of another rank's component may be an array where it is None now."""
    from nnsim.state import capture_components, restore_components

    owner, here = chain(2), chain(2)
    for sim in (owner, here):
        sim.start()
    here.components["r1"].got = np.zeros(3)  # gathered at an earlier checkpoint
    owner.components["r1"].got = None  # what the owner holds now
    owner.components["r0"].links["b"].send("in flight", 7)
    part, tensors = capture_components(owner, ["r1"])
    restore_components(here, part, tensors)
    assert here.components["r1"].got is None
    assert here.components["r0"].links["b"].sent == 0  # r0 was not in the part
    assert [entry.payload for entry in here.pending()] == ["in flight"]  # the owner's queue came


def test_an_outbox_send_takes_the_delays_a_queued_send_takes():
    sim = chain(2)
    sim.start()
    outbox: list = []
    end = sim.components["r0"].links["b"]
    end.send_to_outbox(outbox)
    end.send("numpy delay", np.int64(3))
    assert outbox[0][0] == 1003 and type(outbox[0][0]) is int
    for delay, error in ((1.5, TypeError), (-1, ValueError)):
        with pytest.raises(error):
            end.send("bad", delay)
    assert end.sent == 1


def test_graph_keeps_a_busy_link_inside_a_rank():
    sim = chain(4)
    for link in sim.link_list:
        link.traffic = 100 if link.name == "r1.b--r2.a" else 1
    assignment = make_partition(sim, 2, "graph").assignment
    assert assignment["r1"] == assignment["r2"]
    assert sorted(assignment.values()) == [0, 0, 1, 1]


def test_nnsim_and_its_command_line_do_not_import_mpi4py():
    import subprocess
    import sys

    code = (
        "import sys, nnsim, nnsim.parallel, nnsim.runner, nnsim.cli.main; "
        "print('mpi4py' in sys.modules, nnsim.parallel.launched())"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["False", "False"], result.stderr


def test_events_between_ranks_travel_as_binary_keys_and_encoded_payloads():
    encoder = Encoder()
    keys = [(1010, 50, 7, 2), (2**62, -3, 9, 1)]
    payloads = [encoder.encode(np.arange(3.0), "a"), encoder.encode({"n": 4}, "b")]
    data = pack_events(keys, payloads, encoder.tensors, {"lines": [[1, 2, 3, 4, 5, "hi"]]})
    back, tree, tensors = unpack_events(data)
    assert back == [list(key) for key in keys]
    decoder = Decoder(tensors, {})
    assert decoder.decode(tree["payloads"][0], "a").tolist() == [0.0, 1.0, 2.0]
    assert decoder.decode(tree["payloads"][1], "b") == {"n": 4}
    assert tree["lines"] == [[1, 2, 3, 4, 5, "hi"]]
    forged = (2**40).to_bytes(8, "little") + data[8:]  # more keys than the message holds
    for broken in (data[:5], data[:40], b"\xff" * 16, forged):
        with pytest.raises(StateError, match="message between ranks"):
            unpack_events(broken)
