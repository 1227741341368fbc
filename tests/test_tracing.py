"""`--trace-events`: Chrome trace-event JSON of every handler execution; handler-count statistics."""

from __future__ import annotations

import csv
import inspect
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import run_nnsim

from nnsim.cli.run import run_simulation
from nnsim.sim import Component, Event, Param, Port, Simulation, tracing
from nnsim.sim.report import collect_statistics, write_statistics
from nnsim.sim.tracing import EventTracer

EXAMPLE = "examples/fashion_mnist/nn.py"
COMPONENTS = ["controller", "input", "dense1", "relu1", "dense2", "relu2", "dense3", "softmax"]
COMPONENTS += ["loss"]


def toy_args(dataset: Path, epochs: int = 1) -> list[str]:
    return [
        f"--trainingImages={dataset}",
        f"--testImages={dataset}",
        "--classImageLimit=0",
        "--batchSize=32",
        "--hiddenLayerSize=16",
        f"--epochs={epochs}",
        "--evalImages=",
    ]


@dataclass(slots=True)
class Ping(Event):
    value: int = 0


class Ticker(Component):
    """Sends a ping on every tick of its clock, ``count`` times."""

    params = (
        Param("clock", str, "10MHz", "clock frequency"),
        Param("count", int, 20, "pings to send"),
    )
    ports = (Port("out", "pings"),)

    def build(self) -> None:
        self.register_clock(self.clock, "on_tick")

    def on_tick(self, cycle: int) -> bool:
        self.link("out").send(Ping(cycle))
        return cycle >= self.count


class SlowListener(Component):
    """Receives pings while a slow clock ticks ``ticks`` times."""

    params = (Param("ticks", int, 3, "ticks of the slow clock"),)
    ports = (Port("in", "pings", handler="on_ping"),)

    def build(self) -> None:
        self.register_clock("1MHz", "on_tick")
        self.pings = 0

    def on_ping(self, event: Ping) -> None:
        self.pings += 1

    def on_tick(self, cycle: int) -> bool:
        return cycle >= self.ticks


def _pinging_sim() -> Simulation:
    """Pings arrive inside the listener's 1 us ticks, one of them 0.5 ns before a tick ends."""
    sim = Simulation()
    sim.add(Ticker, "ticker")
    sim.add(SlowListener, "listener")
    sim.connect("ticker.out", "listener.in", latency="99500ps")
    return sim


def _slices(document: dict) -> list[dict]:
    return [event for event in document["traceEvents"] if event["ph"] == "X"]


def _track_names(document: dict) -> dict[int, str]:
    return {
        event["tid"]: event["args"]["name"]
        for event in document["traceEvents"]
        if event["ph"] == "M" and event["name"] == "thread_name"
    }


def _handler_calls(rows) -> dict[str, int]:
    calls: Counter = Counter()
    for component, stat, value in rows:
        if stat.startswith("handler.") and stat.endswith(".calls"):
            calls[component] += int(value)
    return dict(calls)


def test_trace_of_a_training_run_has_one_track_per_component_and_one_slice_per_handler_call(
    toy_dataset, tmp_path
):
    trace, stats = tmp_path / "trace.json", tmp_path / "stats.csv"
    result = run_nnsim(
        "run",
        EXAMPLE,
        f"--trace-events={trace}",
        f"--statistics={stats}",
        "--",
        *toy_args(toy_dataset),
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(trace.read_text())
    assert document["displayTimeUnit"] in ("ms", "ns")
    names = _track_names(document)
    assert [name.split(" ")[0] for _, name in sorted(names.items())] == COMPONENTS
    slices = _slices(document)
    assert {event["tid"] for event in slices} <= set(names)
    assert all(event["pid"] == 1 and event["dur"] > 0 for event in slices)
    last: dict[int, float] = {}
    for event in slices:
        assert event["ts"] >= last.get(event["tid"], 0.0), event
        last[event["tid"]] = event["ts"]
    with stats.open(newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    per_track = Counter(names[event["tid"]].split(" ")[0] for event in slices)
    assert per_track == _handler_calls(rows)
    clock = next(event for event in slices if event["cat"] == "clock")
    assert clock["dur"] == pytest.approx(0.001)  # one period of the 1 GHz layer clock
    assert set(clock["args"]) == {"clock", "cycle", "wall_us"}
    event = next(event for event in slices if event["cat"] == "event")
    assert event["name"] == "on_event(Batch)"
    assert event["args"]["port"] == "forward_in" and event["args"]["event"] == "Batch"
    assert event["args"]["wall_us"] >= 0


def test_slices_on_a_track_nest_and_ts_is_simulated_time_in_microseconds(tmp_path):
    sim = _pinging_sim()
    with EventTracer(sim) as tracer:
        sim.run()
    tracer.write(tmp_path / "trace.json")
    document = json.loads((tmp_path / "trace.json").read_text())
    slices = _slices(document)
    assert len(slices) == tracer.slice_count() == 20 + 20 + 3
    listener = [event for event in slices if event["tid"] == 2]
    ticks = [event for event in listener if event["cat"] == "clock"]
    assert [(event["ts"], event["dur"]) for event in ticks] == [(1.0, 1.0), (2.0, 1.0), (3.0, 1.0)]
    first_ping = next(event for event in listener if event["cat"] == "event")
    assert first_ping["ts"] == pytest.approx(0.1995)  # sent at 100 ns, 99.5 ns on the link
    # The ping at 1999.5 ns would end 0.5 ns after the tick it starts in: it is cut to nest.
    cut = next(event for event in listener if event["ts"] == pytest.approx(1.9995))
    assert cut["dur"] == pytest.approx(0.0005)
    for track in {event["tid"] for event in slices}:
        ends: list[float] = []
        for event in (e for e in slices if e["tid"] == track):
            start, end = event["ts"], event["ts"] + event["dur"]
            while ends and ends[-1] <= start + 1e-9:
                ends.pop()
            assert not ends or end <= ends[-1] + 1e-9, f"{event} overlaps its parent"
            ends.append(end)


def test_the_tracer_puts_every_handler_back_and_traces_events_already_queued():
    sim = _pinging_sim()
    sim.run(until="150ns")  # the first ping is in flight
    tracer = EventTracer(sim)
    queued = [entry[4] for entry in sim._queue.entries() if entry[2] != 0]
    assert any(getattr(target, "__name__", "") == "on_ping" for target in queued)
    assert not any(inspect.ismethod(target) and target.__name__ == "on_ping" for target in queued)
    sim.run()
    tracer.close()
    assert tracer.slice_count() == 20 + 19 + 3  # the ticker's first tick was before the tracer
    _assert_unwrapped(sim)


def _assert_unwrapped(sim: Simulation) -> None:
    for component in sim.components.values():
        for clock in component.clocks:
            assert inspect.ismethod(clock._handler) and clock._handler.__self__ is component
        for end in component.links.values():
            if end.peer is not None:
                assert end.peer.send.target is end._handler


def test_without_the_option_no_handler_is_wrapped(toy_dataset, monkeypatch, capsys):
    def refuse(*_args, **_kwargs):
        raise AssertionError("a tracer was created without --trace-events")

    monkeypatch.setattr(tracing.EventTracer, "__init__", refuse)
    sim = run_simulation(EXAMPLE, toy_args(toy_dataset))
    assert sim.finished
    _assert_unwrapped(sim)


def test_with_the_option_the_handlers_are_back_after_the_run(toy_dataset, tmp_path, capsys):
    sim = run_simulation(EXAMPLE, toy_args(toy_dataset), trace_events=tmp_path / "t.json")
    _assert_unwrapped(sim)
    slices = _slices(json.loads((tmp_path / "t.json").read_text()))
    assert len(slices) == sum(_handler_calls(collect_statistics(sim)).values())


def test_statistics_count_handler_calls_in_csv_and_json(tmp_path):
    sim = _pinging_sim()
    sim.run()
    write_statistics(sim, tmp_path / "stats.csv")
    write_statistics(sim, tmp_path / "stats.json")
    with (tmp_path / "stats.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["component", "statistic", "value"]
    values = {(component, stat): value for component, stat, value in rows[1:]}
    assert values[("ticker", "handler.on_tick.calls")] == "20"
    assert values[("listener", "handler.on_ping.calls")] == "20"
    assert values[("listener", "handler.on_tick.calls")] == "3"
    assert values[("listener", "in.events_received")] == "20"
    assert values[("listener", "clock0.busy_ticks")] == "3"
    document = json.loads((tmp_path / "stats.json").read_text())["statistics"]
    assert document["listener"]["handler.on_ping.calls"] == 20
    assert document["ticker"]["handler.on_tick.calls"] == 20
    assert "handler.on_ping.calls" not in document["ticker"]  # a send-only port has no handler


def test_handlers_shared_by_ports_add_up(toy_dataset, capsys):
    sim = run_simulation(EXAMPLE, toy_args(toy_dataset))
    stats = {(c, s): v for c, s, v in collect_statistics(sim)}
    assert stats[("controller", "handler.on_event.calls")] == (
        stats[("controller", "backward_in.events_received")]
        + stats[("controller", "result_in.events_received")]
    )
    assert stats[("dense1", "handler.on_tick.calls")] == stats[("dense1", "clock0.busy_ticks")]
